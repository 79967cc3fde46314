-- The paper's seven tables with their intervals over training seeds and prompts (pairs), the claim checker,
-- the Figure-3 grid and the label-noise audit (`require "semidpo.paper"`), built from the cached stages of
-- `semidpo.recipes` (trained models, evaluations), one pipeline per seed of `c.seeds`. Shared by
-- recipes/paper.lua and recipes/tables/*.lua:
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
--- typed; lists as comma-separated words). `c.seeds` is the list of training seeds (`--set seeds=0,1,2`;
--- default: the run's --seed alone) and `c.seed` the first of them.
--- The library reads optional fields (`data_prefix`, `reference`, …) that paper.yaml does not declare,
--- so the settings are copied into a plain table.
function P.config()
  local c = {}
  for k, v in pairs(semidpo.settings(P.dir .. "/paper.yaml")) do c[k] = v end
  local seeds, seen = {}, {}
  for i, s in ipairs(c.seeds) do
    if math.type(s) ~= "integer" or s < 0 then
      error(string.format("setting 'seeds': element %d is %s, expected a non-negative integer (e.g. --set seeds=0,1,2)", i, tostring(s)), 2)
    end
    if seen[s] then error(string.format("setting 'seeds': seed %d is listed twice", s), 2) end
    seen[s] = true
    seeds[i] = s
  end
  if #seeds == 0 then seeds = { semidpo.seed } end
  c.seeds = seeds
  c.seed = seeds[1]
  return c
end

--- One settings table per seed of `c.seeds`: a copy of `c` with `seed` set. The seed draws the world's
--- pairs, the committee's test split, the training order and noise, the confidence noise and the
--- evaluation's sampling noise, and it is in every stage's key: each seed's stages are cached apart.
function P.per_seed(c)
  local out = {}
  for i, s in ipairs(c.seeds) do
    local cs = {}
    for k, v in pairs(c) do cs[k] = v end
    cs.seed = s
    out[i] = cs
  end
  return out
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

-- The bootstrap options of every interval: a fixed resample seed (`stats_seed`), so the intervals do not move
-- with the training seeds, and `resamples`.
local function stats_options(c, t)
  t.seed = c.stats_seed
  t.resamples = c.resamples
  return t
end

local function seeds_text(c)
  local s = {}
  for i, x in ipairs(c.seeds) do s[i] = tostring(x) end
  return (#s == 1 and "seed " or "seeds ") .. table.concat(s, ", ")
end

local function heading(c)
  return string.format("%d prompts per suite, DDIM-%d, guidance %g, %s; %d pairs; steps: baselines %d, Semi-DPO iteration 0 %d, later iterations %d; 95%% intervals: bootstrap over seeds and prompts",
                       c.eval_prompts, c.eval_steps, c.guidance, seeds_text(c), c.pairs, P.baseline_steps(c), c.steps0, c.steps)
end

-- Rows {suite, label, seeds = {per-prompt scores of each seed}} for the models `labelled(cs)` returns
-- per seed ({{label, stage or path}, …}, the same labels for every seed).
local function score_rows(c, labelled)
  local per_seed, lists = P.per_seed(c), {}
  for i, cs in ipairs(per_seed) do lists[i] = labelled(cs) end
  local rows = {}
  for _, suite in ipairs(c.suites) do
    for j, entry in ipairs(lists[1]) do
      local seeds = {}
      for i, cs in ipairs(per_seed) do seeds[i] = P.evaluate(cs, lists[i][j][2], suite).outputs.per_prompt end
      rows[#rows + 1] = { suite, entry[1], seeds = seeds }
    end
  end
  return rows
end

-- A means table (Tables 1, 4, 5) of `rows` from score_rows: every metric's mean with its interval.
local function means_table(c, title, path, first, rows)
  return semidpo.eval.means_table(stats_options(c, {
    title = title, path = path, columns = { "suite", first }, metrics = metric_columns(c), rows = rows,
    headers = { overall = "overall (MPS role)" } }))
end

local function semi_iterations(cs)
  local labelled = {}
  for i, s in ipairs(P.semi(cs, cs.committee, cs.iterations)) do labelled[i] = { "Semi-DPO (iter " .. (i - 1) .. ")", s } end
  return labelled
end

--- Table 1: mean scores (committee members as the paper's reward models, the oracle's dimensions and
--- overall as MPS) of Base, Diffusion-DPO, Diffusion-KTO and Semi-DPO on each suite, with intervals.
function P.table1(c)
  return means_table(c, "Table 1: mean scores per suite — " .. heading(c), "table1", "method",
                     score_rows(c, function(cs) return (P.models(cs)) end))
end

--- Table 2: paired win rates (%) — (a) each method over Base, (b) Semi-DPO over the two baselines — with
--- their intervals, the paired difference of the overall score and its permutation-test p-value.
function P.table2(c)
  local per_seed, lists = P.per_seed(c), {}
  for i, cs in ipairs(per_seed) do lists[i] = P.models(cs) end
  local rows = {}
  for _, suite in ipairs(c.suites) do
    for _, p in ipairs{ { 2, 1 }, { 3, 1 }, { 4, 1 }, { 4, 2 }, { 4, 3 } } do
      local a, b = {}, {}
      for i, cs in ipairs(per_seed) do
        a[i] = P.evaluate(cs, lists[i][p[1]][2], suite).outputs.per_prompt
        b[i] = P.evaluate(cs, lists[i][p[2]][2], suite).outputs.per_prompt
      end
      rows[#rows + 1] = { suite, lists[1][p[1]][1], lists[1][p[2]][1], a = a, b = b }
    end
  end
  return semidpo.eval.win_rate_table(stats_options(c, {
    title = "Table 2: win rate (%) of method 1 over method 2 (share of prompts scored strictly higher: ties are not wins, as the authors count), "
            .. "Δ overall = method 1 − method 2 (paired), p = two-sided paired permutation test — " .. heading(c),
    path = "table2", columns = { "suite", "method 1", "method 2" }, metrics = metric_columns(c), rows = rows, ties = 0,
    test_metric = "overall", headers = { overall = "overall (MPS role)" } }))
end

--- Table 3: GenEval-like pass rates (%) per category and overall (the mean of the category rates), with intervals;
--- ⌈geneval_min_images / the category's prompts⌉ images per prompt, a prompt's value being its images' pass rate
--- (the bootstrap resamples prompts). The rows after the methods state prompts, images per prompt, images, seeds.
function P.table3(c)
  local per_seed, lists = P.per_seed(c), {}
  for i, cs in ipairs(per_seed) do lists[i] = P.models(cs) end
  local rows = {}
  for j, entry in ipairs(lists[1]) do
    local seeds = {}
    for i, cs in ipairs(per_seed) do seeds[i] = P.evaluate(cs, lists[i][j][2], "geneval").outputs.geneval_passes end
    rows[#rows + 1] = { entry[1], seeds = seeds }
  end
  return semidpo.eval.geneval_table(stats_options(c, {
    title = string.format("Table 3: GenEval-like pass rates (%%), up to %d prompts per category (the world's suite has fewer for some), "
                          .. "%s, DDIM-%d, %s; 95%% intervals: bootstrap over seeds and prompts (a prompt's value: its images' pass rate)",
                          c.geneval_per_category, (c.geneval_min_images or 1) > 1
                            and string.format("⌈%d / prompts⌉ images per prompt (≥ %d images per category)", c.geneval_min_images, c.geneval_min_images)
                            or "one image per prompt", c.eval_steps, seeds_text(c)),
    path = "table3", columns = { "method" }, rows = rows }))
end

--- Table 4: Semi-DPO iterations 0 … c.iterations, with intervals.
function P.table4(c)
  return means_table(c, "Table 4: Semi-DPO iterations — " .. heading(c), "table4", "method", score_rows(c, semi_iterations))
end

--- Over seeds: the overall score (MPS role) of every model of Tables 1 and 4 per suite — each seed's mean over
--- prompts, their mean ± sd over seeds (n − 1), and the pooled 95% interval over seeds and prompts
--- (`semidpo.stats.over_seeds`). With one seed the sd column is empty.
function P.seeds_table(c)
  local function labelled(cs)
    local models, semi = P.models(cs)
    local out = { models[1], models[2], models[3] }
    for i, s in ipairs(semi) do out[#out + 1] = { "Semi-DPO (iter " .. (i - 1) .. ")", s } end
    return out
  end
  local cols = { "suite", "method" }
  for _, s in ipairs(c.seeds) do cols[#cols + 1] = "seed " .. s end
  for _, x in ipairs{ "mean over seeds", "sd over seeds", "pooled interval" } do cols[#cols + 1] = x end
  local rows = {}
  for _, r in ipairs(score_rows(c, labelled)) do
    local values = {}
    for i, per_prompt in ipairs(r.seeds) do values[i] = per_prompt.overall end
    local o = semidpo.stats.over_seeds(stats_options(c, { values = values }))
    local row = { r[1], r[2] }
    for _, x in ipairs(o.per_seed) do row[#row + 1] = x end
    row[#row + 1] = o.mean
    row[#row + 1] = o.sd or false
    row[#row + 1] = o
    rows[#rows + 1] = row
  end
  return semidpo.eval.table{ title = "Overall score (MPS role) per training seed, mean ± sd over seeds and the pooled 95% interval (bootstrap over seeds and prompts) — " .. heading(c),
                             path = "seeds_overall", columns = cols, rows = rows, decimals = 3 }
end

-- Committees of 2 … #c.committee members in the paper's order, as {label, members}.
local function committees(c)
  local out = {}
  for k = 2, #c.committee do
    local members = {}
    for i = 1, k do members[i] = c.committee[i] end
    out[#out + 1] = { table.concat(members, "+"), members }
  end
  return out
end

-- Per pair of the dataset of `cs`: kept by the committee `members` (clean train or clean test), and whether its
-- human label agrees with the world's true overall preference (1, ½ on an exact tie, 0).
local function kept_and_agrees(cs, members)
  local split = R.split(cs, members)
  local kept_ids = {}
  for _, set in ipairs{ split:clean(), split:test() } do
    for _, id in ipairs(set:ids()) do kept_ids[id] = true end
  end
  local all = R.dataset(cs):pairs()
  local truth = all:truth()
  local overall
  for i, d in ipairs(truth.dimensions) do if d == "overall" then overall = i end end
  local kept, agrees = {}, {}
  for p, id in ipairs(all:ids()) do
    kept[p] = kept_ids[id] == true
    local w, l = truth.winner[p][overall], truth.loser[p][overall]   -- winner = the human label's
    agrees[p] = w > l and 1 or (w == l and 0.5 or 0)
  end
  return kept, agrees
end

--- Table 5: committees of 2, 3, 4, 5 members in the paper's order (the first k of c.committee), each
--- a Semi-DPO run with that committee's clean set, reported at iteration c.table5_iteration (the
--- paper's Table 5 rows equal its Table 4 iteration-0 rows, so the default is 0), with intervals; and
--- `table5_clean`: each committee's clean set — its size, the share of pairs it keeps and how often its
--- human labels agree with the world's overall truth, with intervals over pairs and seeds.
function P.table5(c)
  local function labelled(cs)
    local out = { { "Base", cs.base } }
    for _, k in ipairs(committees(cs)) do out[#out + 1] = { k[1], P.semi(cs, k[2], cs.table5_iteration)[cs.table5_iteration + 1] } end
    return out
  end
  local t = means_table(c, string.format("Table 5: consensus committees of 2–%d members, Semi-DPO iteration %d — %s",
                                         #c.committee, c.table5_iteration, heading(c)), "table5", "committee", score_rows(c, labelled))
  local rows = {}
  for _, k in ipairs(committees(c)) do
    local kept_share, clean_agree, counts = {}, {}, 0
    for i, cs in ipairs(P.per_seed(c)) do
      local kept, agrees = kept_and_agrees(cs, k[2])
      kept_share[i], clean_agree[i] = {}, {}
      for p = 1, #kept do
        kept_share[i][p] = kept[p] and 100 or 0
        if kept[p] then clean_agree[i][#clean_agree[i] + 1] = 100 * agrees[p] end
      end
      counts = counts + #clean_agree[i]
    end
    rows[#rows + 1] = { k[1], counts / #c.seeds,
                        semidpo.stats.bootstrap(stats_options(c, { values = kept_share })),
                        semidpo.stats.bootstrap(stats_options(c, { values = clean_agree })) }
  end
  local clean = semidpo.eval.table{ title = string.format("Table 5 (clean sets): each committee's clean set (train + test) on the %d pairs — its size (mean over %s), the share of pairs kept (%%) and its human labels' agreement with the world's overall truth (%%), 95%% intervals over seeds and pairs",
                                            c.pairs, seeds_text(c)),
                      path = "table5_clean", columns = { "committee", "clean pairs", "kept (%)", "clean labels = overall truth (%)" },
                      rows = rows, decimals = 1, unit = "pairs" }
  return t, clean
end

--- Table 6: each committee member's pairwise accuracy (%) against the true dimensions on held-out pairs, each
--- cell the mean over pairs of 1 (the member prefers the truly better image), ½ (equal scores), 0, with its
--- bootstrap interval over pairs (pairs with an exact truth tie on a column are left out of that column, as
--- `committee:accuracy_table` does). The committee and the held-out world are fixed: no seed axis.
function P.table6(c)
  local dir = string.format("%s/world-%d-seed%d", c.data_root or "data", c.table6_pairs, c.table6_seed)
  local ds = semidpo.world.dataset{ dir = dir, pairs = c.table6_pairs, seed = c.table6_seed }
  local committee = semidpo.committee.new{ members = c.committee }
  local scores = committee:score(ds)
  local columns = { "overall", "aesthetics", "alignment", "detail", "human" }
  local correct = {}                   -- member → column → {100 | 50 | 0 per pair}
  for _, m in ipairs(c.committee) do
    correct[m] = {}
    for _, col in ipairs(columns) do correct[m][col] = {} end
  end
  for id = 0, ds:count() - 1 do
    local truth, pair = ds:truth(id), scores:pair(id)
    for _, col in ipairs(columns) do
      local ref = col == "human" and ds:label(id) or (truth.image0[col] - truth.image1[col])
      if ref ~= 0 then
        for _, m in ipairs(c.committee) do
          local s = pair.scores[m:match("_score$") and m or m .. "_score"]
          local d = s[1] - s[2]
          local list = correct[m][col]
          list[#list + 1] = d == 0 and 50 or (((d > 0) == (ref > 0)) and 100 or 0)
        end
      end
    end
  end
  local rows = {}
  for _, r in ipairs(committee:accuracy_table(ds)) do
    local row = { r.member }
    for _, col in ipairs(columns) do
      local cell = semidpo.stats.bootstrap(stats_options(c, { values = { correct[r.member][col] } }))
      assert(math.abs(cell.mean - r[col]) < 1e-6, string.format("Table 6: %s %s: %.6f per pair vs %.6f from accuracy_table", r.member, col, cell.mean, r[col]))
      row[#row + 1] = cell
    end
    rows[#rows + 1] = row
  end
  return semidpo.eval.table{ title = string.format("Table 6: reward models' pairwise accuracy (%%) against the true dimensions, %d held-out pairs (world seed %d), 95%% intervals over pairs",
                                                   c.table6_pairs, c.table6_seed),
                             path = "table6", columns = { "member", "overall", "aesthetics", "alignment", "detail", "human label" },
                             rows = rows, decimals = 2, unit = "pairs" }
end

--- Table 7: accuracy (%) per timestep anchor on the clean test split of the models that pseudo-labelled
--- (iteration i − 1's model, measured by iteration i's stage), each cell the mean over test pairs and
--- seeds of the per-pair correctness (z > 0: 1, z = 0: ½, z < 0: 0) with its bootstrap interval.
function P.table7(c)
  local per_seed, semis = P.per_seed(c), {}
  for i, cs in ipairs(per_seed) do semis[i] = P.semi(cs, cs.committee, cs.iterations) end
  assert(#semis[1] >= 2, "Table 7 needs at least one self-training iteration (iterations ≥ 1)")
  local anchors = semis[1][2].outputs.anchors
  local cols = { "model" }
  for _, a in ipairs(anchors) do cols[#cols + 1] = "t=" .. a end
  cols[#cols + 1] = "test pairs"
  local rows = {}
  for it = 2, #semis[1] do
    local row, pairs_ = { "Semi-DPO iter " .. (it - 2) }, 0
    for k = 1, #anchors do
      local values = {}
      for i = 1, #per_seed do
        local o = semis[i][it].outputs
        assert(o.test_correct, "Table 7: stage " .. semis[i][it].name .. " has no per-pair correctness (test_correct)")
        values[i] = {}
        for p, x in ipairs(o.test_correct[k]) do values[i][p] = 100 * x end
      end
      row[#row + 1] = semidpo.stats.bootstrap(stats_options(c, { values = values }))
    end
    for i = 1, #per_seed do pairs_ = pairs_ + semis[i][it].outputs.test_pairs end
    row[#row + 1] = pairs_ / #per_seed
    rows[#rows + 1] = row
  end
  return semidpo.eval.table{ title = string.format("Table 7: accuracy (%%) per timestep anchor on the clean test split (test pairs: mean over %s), 95%% intervals over seeds and pairs",
                                                   seeds_text(c)),
                             path = "table7", columns = cols, rows = rows, decimals = 1, unit = "pairs" }
end

--- The paper's claims (a)–(e) (`semidpo.stats.paper_claims`, docs/method.md "Uncertainty") from each seed's
--- results: (a) the five-member committee's kept pairs and label agreement, (b) the overall score per
--- prompt of Semi-DPO, Diffusion-DPO and Diffusion-KTO per suite, (c) Semi-DPO iterations 0–2, (d) the
--- committees of 2 … 5 members at iteration c.table5_iteration, (e) the per-pair correctness per anchor of
--- iteration 0's model on the clean test pairs. Writes claims.md and the `claims` entry of tables.json;
--- each verdict (holds / fails / inconclusive) comes from an interval over seeds and prompts (or pairs).
function P.claims(c)
  local seeds = {}
  for i, cs in ipairs(P.per_seed(c)) do
    local models, semi = P.models(cs)
    -- (c) needs iterations 0 and 1, (d) two committee sizes, (e) a self-training round: a claim without its data is left out.
    local sizes = committees(cs)
    local t = { scores = {}, iterations = #semi >= 2 and {} or nil, committees = #sizes >= 2 and {} or nil }
    t.kept, t.agrees = kept_and_agrees(cs, cs.committee)
    local function overall(model, suite) return P.evaluate(cs, model, suite).outputs.per_prompt.overall end
    for _, suite in ipairs(cs.suites) do
      t.scores[suite] = {}
      for j = 2, 4 do t.scores[suite][models[j][1]] = overall(models[j][2], suite) end
      if t.iterations then
        t.iterations[suite] = {}
        for it, s in ipairs(semi) do t.iterations[suite][it] = overall(s, suite) end
      end
      if t.committees then
        t.committees[suite] = {}
        for k, m in ipairs(sizes) do
          t.committees[suite][k] = overall(P.semi(cs, m[2], cs.table5_iteration)[cs.table5_iteration + 1], suite)
        end
      end
    end
    if #semi >= 2 then
      local o = semi[2].outputs
      assert(o.test_correct, "claims: stage " .. semi[2].name .. " has no per-pair correctness (test_correct)")
      t.anchors = {}
      for k, a in ipairs(o.anchors) do t.anchors[k] = { t = a, values = o.test_correct[k] } end
    end
    seeds[i] = t
  end
  return semidpo.stats.paper_claims(stats_options(c, {
    seeds = seeds, path = "claims",
    title = string.format("The paper's claims on the world — %s; a verdict holds or fails only when its whole 95%% interval (bootstrap over seeds and prompts/pairs) is on one side",
                          seeds_text(c)) }))
end

--- Figure 3: the same prompts and seeds for the four models of the first training seed (`c.seed`), one PNG.
function P.figure3(c)
  local models = P.models(c)
  local list = {}
  for i, entry in ipairs(models) do
    list[i] = { entry[1], semidpo.diffusion.load(R.model_path(entry[2])) }
  end
  return semidpo.eval.grid{ models = list, prompts = c.grid_prompts, seeds = c.grid_seeds, path = "figure3.png",
                            steps = c.eval_steps, guidance = c.guidance }
end

--- The label-noise audit of the first training seed (`c.seed`): how the human labels of the consensus sets
--- agree with the world's truth, and how accurate Semi-DPO's pseudo-labels are per iteration and true dimension.
function P.audit(c)
  local split = R.split(c, c.committee)
  local rows = {}
  for _, s in ipairs(split:report().sets) do
    rows[#rows + 1] = { s.set, s.pairs, s.share, s.alignment, s.aesthetics, s.detail, s.overall, s["conflict ≥1 dim"] }
  end
  local t1 = semidpo.eval.table{ title = "Audit: human labels of the consensus sets (" .. table.concat(c.committee, ", ") .. ") vs the true dimensions (%), seed " .. c.seed,
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
  local t2 = semidpo.eval.table{ title = "Audit: Semi-DPO pseudo-labels on the noisy pairs vs the true dimensions (%), pooled over anchors, seed " .. c.seed,
                                 path = "audit_pseudo_labels",
                                 columns = { "iteration", "labels", "alignment", "aesthetics", "detail", "overall", "human label vs overall",
                                             "wrong human labels flipped right", "wrong human labels", "right ones flipped wrong", "right human labels" },
                                 rows = prow, decimals = 1 }
  return t1, t2
end

--- A means table like Table 1 (intervals over seeds and prompts) of the models `labelled(cs)` returns for each
--- seed ({{label, stage result or path}, …}, the same labels for every seed); for recipes with rows of their own
--- (recipes/online_semi_dpo.lua's ablations).
function P.means(c, title, path, first, labelled)
  return means_table(c, title .. " — " .. heading(c), path, first, score_rows(c, labelled))
end

--- Table 8 (issue 19): online Semi-DPO (`semidpo.online`: the cold start = Semi-DPO's iteration 0, then
--- c.online.rounds rounds of c.steps steps on c.online.pairs self-generated, self-labelled pairs each) against
--- offline Semi-DPO (iterations 0 … c.iterations on the dataset's noisy pairs) and Diffusion-DPO, every model of a
--- seed evaluated like Table 1 (same prompts, same noise; the same `eval_<suite>` stages), with intervals over
--- seeds and prompts; `table8_win_rates` (online's last round over each arm, as Table 2); `table8_compute`: what
--- each arm trained (optimizer steps, pair gradients, data) and its stages' wall time; and per round and seed
--- `table8_rounds_timing` (where the time of each round went) and `table8_rounds_self_labels` (the audit).
--- With online.rounds = iterations the online and offline Semi-DPO runs take the same steps and pair gradients.
function P.table8(c)
  local O = require "semidpo.online"
  O.check(c)
  local rounds = c.online.rounds
  if rounds < 1 then error("Table 8 needs online rounds: --set online.rounds=N with N ≥ 1 (got " .. rounds .. ")", 2) end
  local function offline_label(cs) return string.format("Semi-DPO offline (iter %d)", cs.iterations) end
  local function labelled(cs)
    local semi, online = R.semi(cs, cs.committee, cs.iterations), O.rounds(cs, rounds)
    local out = { { "Base", cs.base }, { "Diffusion-DPO", R.baseline(cs, "dpo") }, { "Semi-DPO (iter 0) = online cold start", semi[1] } }
    if cs.iterations >= 1 then out[#out + 1] = { offline_label(cs), semi[#semi] } end
    for r = 1, rounds do out[#out + 1] = { string.format("Online Semi-DPO (round %d)", r), online[r + 1] } end
    return out, semi, online
  end
  local means = means_table(c, string.format("Table 8: online vs offline Semi-DPO vs Diffusion-DPO (online: %d generated pairs per round, %d steps per round; %s) — %s",
                                             c.online.pairs, c.steps, c.online.ensemble == "pair" and ("labelled by the ensemble of rounds r−1 and r−2, " .. c.online.combine)
                                               or "labelled by model r−1 alone", heading(c)),
                            "table8", "method", score_rows(c, labelled))
  -- Win rates of the last online round over each other arm, per suite.
  local per_seed, lists = P.per_seed(c), {}
  for i, cs in ipairs(per_seed) do lists[i] = labelled(cs) end
  local last, wins = #lists[1], {}
  for _, suite in ipairs(c.suites) do
    for j = 1, last - 1 do
      local a, b = {}, {}
      for i, cs in ipairs(per_seed) do
        a[i] = P.evaluate(cs, lists[i][last][2], suite).outputs.per_prompt
        b[i] = P.evaluate(cs, lists[i][j][2], suite).outputs.per_prompt
      end
      wins[#wins + 1] = { suite, lists[1][last][1], lists[1][j][1], a = a, b = b }
    end
  end
  local win_rates = semidpo.eval.win_rate_table(stats_options(c, {
    title = "Table 8b: win rate (%) of the last online round over each arm (ties are not wins), Δ overall (paired), p = two-sided paired permutation test — " .. heading(c),
    path = "table8_win_rates", columns = { "suite", "method 1", "method 2" }, metrics = metric_columns(c), rows = wins, ties = 0,
    test_metric = "overall", headers = { overall = "overall (MPS role)" } }))
  -- What each arm trained, and the wall time of its training stages (mean over seeds; a cached stage counts
  -- the time it took when it ran, sampling and confidence passes included).
  local B, noisy = c.batch_size, 0
  local seconds = {}
  for i, cs in ipairs(per_seed) do
    noisy = noisy + R.split(cs, cs.committee):noisy():count() / #per_seed
    local _, semi, online = labelled(cs)
    local function sum(list, upto) local s = 0; for k = 1, upto do s = s + list[k].seconds end; return s end
    local row = { 0, R.baseline(cs, "dpo").seconds, semi[1].seconds }
    if cs.iterations >= 1 then row[#row + 1] = sum(semi, #semi) end
    for r = 1, rounds do row[#row + 1] = sum(online, r + 1) end   -- online[1] is semi[1], the cold start
    for k, s in ipairs(row) do seconds[k] = (seconds[k] or 0) + s / #per_seed end
  end
  local bs = P.baseline_steps(c)
  local work = {
    { "Base", 0, 0, "none" },
    { "Diffusion-DPO", bs, bs * B, string.format("all %d pairs, human labels", c.pairs) },
    { "Semi-DPO (iter 0) = online cold start", c.steps0, c.steps0 * B, "clean pairs (committee consensus)" },
  }
  if c.iterations >= 1 then
    work[#work + 1] = { offline_label(c), c.steps0 + c.iterations * c.steps, c.steps0 * B + c.iterations * c.steps * 2 * B,
                        string.format("clean + pseudo-labelled noisy pairs (%.0f noisy, mean over seeds)", noisy) }
  end
  for r = 1, rounds do
    work[#work + 1] = { string.format("Online Semi-DPO (round %d)", r), c.steps0 + r * c.steps, c.steps0 * B + r * c.steps * 2 * B,
                        string.format("clean + %d self-generated, self-labelled pairs", r * c.online.pairs) }
  end
  for k, row in ipairs(work) do row[5] = seconds[k] end
  local compute = semidpo.eval.table{ title = "Table 8c: what each arm trained (optimizer steps; pair gradients = steps × batch, × 2 with a self-labelled batch) and the wall time of its training stages (mean over "
                                              .. seeds_text(c) .. "; Semi-DPO and online stages include their confidence passes and sampling)",
                                      path = "table8_compute", decimals = 1, columns = { "method", "optimizer steps", "pair gradients", "data", "stage wall s" },
                                      rows = work }
  local runs = {}
  for i, cs in ipairs(per_seed) do runs[i] = { seed = cs.seed, runs = O.rounds(cs, rounds) } end
  local timing, self_labels = O.round_tables(runs, "Table 8 online rounds", "table8_rounds")
  return means, win_rates, compute, timing, self_labels
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
