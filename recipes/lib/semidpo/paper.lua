-- The paper's seven tables, the Figure-3 grid and the label-noise audit (`require "semidpo.paper"`),
-- built from the cached stages of `semidpo.recipes` (trained models, evaluations). Shared by
-- recipes/paper.lua and recipes/tables/table*.lua:
--   local P = require "semidpo.paper"
--   local c = P.config()          -- recipes/paper.yaml as declared settings (--set overrides, checked)
--   P.show(P.table1(c))
-- The stages live in semidpo/recipes.lua, so editing a table here does not rerun them (their keys hash
-- the code they can run, docs/recipes.md "semidpo.stage").
local semidpo = require "semidpo"
local R = require "semidpo.recipes"

local P = {}
P.dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*/[^/]*/[^/]*$") or "."   -- recipes/ (this file: recipes/lib/semidpo/paper.lua)

--- recipes/paper.yaml declared as the run's settings (`semidpo.settings`: --set keys are checked and
--- typed; lists as comma-separated words); `seed` is the run's --seed.
--- The library reads optional fields (`data_prefix`, `reference`, …) that paper.yaml does not declare,
--- so the settings are copied into a plain table.
function P.config()
  local c = {}
  for k, v in pairs(semidpo.settings(P.dir .. "/paper.yaml")) do c[k] = v end
  c.seed = semidpo.seed
  return c
end

P.baseline_steps = R.baseline_steps
P.baseline = R.baseline
P.semi = R.semi
P.evaluate = R.evaluate
P.models = R.models

--- Paired win rate of evaluation A over B on `metric`: the share of prompts where A scores strictly
--- higher (ties are not wins), as `semidpo.eval.win_rate` and the authors compute it.
function P.win_rate(a, b, metric)
  local pa, pb = a.outputs.per_prompt[metric], b.outputs.per_prompt[metric]
  assert(#pa == #pb and #pa > 0, "win rate: the evaluations scored different prompt counts")
  local wins = 0
  for i = 1, #pa do
    assert(a.outputs.prompts[i] == b.outputs.prompts[i], "win rate: prompt " .. i .. " differs")
    if pa[i] > pb[i] then wins = wins + 1 end
  end
  return wins / #pa
end

local function metric_columns(c)
  local cols = {}
  for _, m in ipairs(c.committee) do cols[#cols + 1] = m end
  for _, m in ipairs{ "alignment", "aesthetics", "detail", "overall" } do cols[#cols + 1] = m end
  return cols
end

local function heading(c)
  return string.format("%d prompts per suite, DDIM-%d, guidance %g, seed %d; %d pairs; steps: baselines %d, Semi-DPO iteration 0 %d, later iterations %d",
                       c.eval_prompts, c.eval_steps, c.guidance, c.seed, c.pairs, P.baseline_steps(c), c.steps0, c.steps)
end

-- Rows "suite / method" with the committee's and the oracle's mean scores.
local function score_rows(c, labelled)
  local rows = {}
  for _, suite in ipairs(c.suites) do
    for _, entry in ipairs(labelled) do
      local means = P.evaluate(c, entry[2], suite).outputs.means
      local row = { suite, entry[1] }
      for _, col in ipairs(metric_columns(c)) do row[#row + 1] = means[col] end
      rows[#rows + 1] = row
    end
  end
  return rows
end

local function score_columns(c, first)
  local cols = { "suite", first }
  for _, m in ipairs(metric_columns(c)) do cols[#cols + 1] = m == "overall" and "overall (MPS role)" or m end
  return cols
end

--- Table 1: mean scores (committee members as the paper's reward models, the oracle's dimensions and
--- overall as MPS) of Base, Diffusion-DPO, Diffusion-KTO and Semi-DPO on each suite.
function P.table1(c)
  local models = P.models(c)
  return semidpo.eval.table{ title = "Table 1: mean scores per suite — " .. heading(c), path = "table1",
                             columns = score_columns(c, "method"), rows = score_rows(c, models) }
end

--- Table 2: paired win rates (%) — (a) each method over Base, (b) Semi-DPO over the two baselines.
function P.table2(c)
  local models = P.models(c)
  local cols = { "suite", "method 1", "method 2" }
  for _, m in ipairs(metric_columns(c)) do cols[#cols + 1] = m end
  local rows = {}
  for _, suite in ipairs(c.suites) do
    local ev = {}
    for i, entry in ipairs(models) do ev[i] = P.evaluate(c, entry[2], suite) end
    local pairs_ = { { 2, 1 }, { 3, 1 }, { 4, 1 }, { 4, 2 }, { 4, 3 } }
    for _, p in ipairs(pairs_) do
      local row = { suite, models[p[1]][1], models[p[2]][1] }
      for _, m in ipairs(metric_columns(c)) do row[#row + 1] = 100 * P.win_rate(ev[p[1]], ev[p[2]], m) end
      rows[#rows + 1] = row
    end
  end
  return semidpo.eval.table{ title = "Table 2: win rate (%) of method 1 over method 2 (share of prompts scored strictly higher) — " .. heading(c),
                             path = "table2", columns = cols, rows = rows, decimals = 1 }
end

--- Table 3: GenEval-like pass rates (%) per category.
function P.table3(c)
  local models = P.models(c)
  local cats = { "single_object", "two_objects", "counting", "colors", "position", "color_attr", "overall" }
  local cols = { "method" }
  for _, k in ipairs(cats) do cols[#cols + 1] = k end
  local rows = {}
  for _, entry in ipairs(models) do
    local g = P.evaluate(c, entry[2], "geneval").outputs.geneval
    local row = { entry[1] }
    for _, k in ipairs(cats) do row[#row + 1] = g[k] and 100 * g[k] or false end
    rows[#rows + 1] = row
  end
  return semidpo.eval.table{ title = string.format("Table 3: GenEval-like pass rates (%%), %d prompts per category, DDIM-%d",
                                                   c.geneval_per_category, c.eval_steps),
                             path = "table3", columns = cols, rows = rows, decimals = 1 }
end

--- Table 4: Semi-DPO iterations 0 … c.iterations.
function P.table4(c)
  local semi = P.semi(c, c.committee, c.iterations)
  local labelled = {}
  for i, s in ipairs(semi) do labelled[i] = { "Semi-DPO (iter " .. (i - 1) .. ")", s } end
  return semidpo.eval.table{ title = "Table 4: Semi-DPO iterations — " .. heading(c), path = "table4",
                             columns = score_columns(c, "method"), rows = score_rows(c, labelled) }
end

--- Table 5: committees of 2, 3, 4, 5 members in the paper's order (the first k of c.committee), each
--- a Semi-DPO run with that committee's clean set, reported at iteration c.table5_iteration (the
--- paper's Table 5 rows equal its Table 4 iteration-0 rows, so the default is 0), with the clean set's
--- size and its labels' agreement with the world's overall truth.
function P.table5(c)
  local labelled = { { "Base", c.base } }
  local clean = {}
  for k = 2, #c.committee do
    local members = {}
    for i = 1, k do members[i] = c.committee[i] end
    local runs = P.semi(c, members, c.table5_iteration)
    local label = table.concat(members, "+")
    labelled[#labelled + 1] = { label, runs[c.table5_iteration + 1] }
    local sets = R.split(c, members):report().sets
    for _, s in ipairs(sets) do if s.set == "clean" then clean[label] = s end end
  end
  local rows = score_rows(c, labelled)
  local cols = score_columns(c, "committee")
  cols[#cols + 1] = "clean pairs"
  cols[#cols + 1] = "clean labels = overall truth (%)"
  for _, row in ipairs(rows) do
    local s = clean[row[2]]
    row[#row + 1] = s and s.pairs or false
    row[#row + 1] = s and s.overall or false
  end
  return semidpo.eval.table{ title = string.format("Table 5: consensus committees of 2–%d members, Semi-DPO iteration %d — %s",
                                                   #c.committee, c.table5_iteration, heading(c)),
                             path = "table5", columns = cols, rows = rows }
end

--- Table 6: each committee member's pairwise accuracy (%) against the true dimensions on held-out pairs.
function P.table6(c)
  local dir = string.format("%s/world-%d-seed%d", c.data_root or "data", c.table6_pairs, c.table6_seed)
  local ds = semidpo.world.dataset{ dir = dir, pairs = c.table6_pairs, seed = c.table6_seed }
  local rows = {}
  for _, r in ipairs(semidpo.committee.new{ members = c.committee }:accuracy_table(ds)) do
    rows[#rows + 1] = { r.member, r.overall, r.aesthetics, r.alignment, r.detail, r.human }
  end
  return semidpo.eval.table{ title = string.format("Table 6: reward models' pairwise accuracy (%%) against the true dimensions, %d held-out pairs (world seed %d)",
                                                   c.table6_pairs, c.table6_seed),
                             path = "table6", columns = { "member", "overall", "aesthetics", "alignment", "detail", "human label" },
                             rows = rows, decimals = 2 }
end

--- Table 7: accuracy (%) per timestep anchor on the clean test split of the models that pseudo-labelled
--- (iteration i − 1's model, measured by iteration i's stage).
function P.table7(c)
  local semi = P.semi(c, c.committee, c.iterations)
  assert(#semi >= 2, "Table 7 needs at least one self-training iteration (iterations ≥ 1)")
  local anchors = semi[2].outputs.anchors
  local cols = { "model" }
  for _, a in ipairs(anchors) do cols[#cols + 1] = "t=" .. a end
  cols[#cols + 1] = "test pairs"
  local rows = {}
  for i = 2, #semi do
    local o = semi[i].outputs
    local row = { "Semi-DPO iter " .. (i - 2) }
    for k = 1, #anchors do row[#row + 1] = 100 * o.test_accuracy[k] end
    row[#row + 1] = o.test_pairs
    rows[#rows + 1] = row
  end
  return semidpo.eval.table{ title = "Table 7: accuracy (%) per timestep anchor on the clean test split", path = "table7",
                             columns = cols, rows = rows, decimals = 1 }
end

--- Figure 3: the same prompts and seeds for the four models, one PNG.
function P.figure3(c)
  local models = P.models(c)
  local list = {}
  for i, entry in ipairs(models) do
    list[i] = { entry[1], semidpo.diffusion.load(R.model_path(entry[2])) }
  end
  return semidpo.eval.grid{ models = list, prompts = c.grid_prompts, seeds = c.grid_seeds, path = "figure3.png",
                            steps = c.eval_steps, guidance = c.guidance }
end

--- The label-noise audit: how the human labels of the consensus sets agree with the world's truth, and
--- how accurate Semi-DPO's pseudo-labels are per iteration and true dimension.
function P.audit(c)
  local split = R.split(c, c.committee)
  local rows = {}
  for _, s in ipairs(split:report().sets) do
    rows[#rows + 1] = { s.set, s.pairs, s.share, s.alignment, s.aesthetics, s.detail, s.overall, s["conflict ≥1 dim"] }
  end
  local t1 = semidpo.eval.table{ title = "Audit: human labels of the consensus sets (" .. table.concat(c.committee, ", ") .. ") vs the true dimensions (%)",
                                 path = "audit_partition", columns = { "set", "pairs", "share", "alignment", "aesthetics", "detail", "overall", "conflict >= 1 dim" },
                                 rows = rows, decimals = 1 }
  local semi = P.semi(c, c.committee, c.iterations)
  if #semi < 2 then return t1 end
  local noisy = split:noisy()
  local labels = R.pseudo_labels(semi, noisy)
  local audit = semidpo.dpo.audit{ truth = noisy:truth(), labels = labels }
  semidpo.write_text("audit_pseudo_labels_per_anchor.md", audit.markdown)
  semidpo.write_text("audit_pseudo_labels_per_anchor.csv", audit.csv)
  local prow = {}
  for _, r in ipairs(audit.rows) do
    if r.anchor == nil then
      prow[#prow + 1] = { "iteration " .. r.iteration, r.labelled, 100 * (r.accuracy.alignment or 0 / 0),
                          100 * (r.accuracy.aesthetics or 0 / 0), 100 * (r.accuracy.detail or 0 / 0), 100 * (r.accuracy.overall or 0 / 0),
                          100 * (r.human_accuracy or 0 / 0), r.flipped_right, r.opposed, r.flipped_wrong, r.agreed }
    end
  end
  local t2 = semidpo.eval.table{ title = "Audit: Semi-DPO pseudo-labels on the noisy pairs vs the true dimensions (%), pooled over anchors",
                                 path = "audit_pseudo_labels",
                                 columns = { "iteration", "labels", "alignment", "aesthetics", "detail", "overall", "human label vs overall",
                                             "wrong human labels flipped right", "wrong human labels", "right ones flipped wrong", "right human labels" },
                                 rows = prow, decimals = 1 }
  return t1, t2
end

--- Prints the Markdown of tables returned by `semidpo.eval.table` (any number of them).
function P.show(...)
  for _, files in ipairs{ ... } do
    local f = assert(io.open(files.markdown))
    print(f:read("a"))
    f:close()
  end
end

return P
