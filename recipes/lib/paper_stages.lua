-- The stages of the paper's experiments (models trained, suites evaluated) and the seven tables, the
-- Figure-3 grid and the label-noise audit built from them. Shared by recipes/paper.lua and
-- recipes/tables/table*.lua: every trained model and every evaluation is a `semidpo.stage`, keyed by
-- its settings and inputs, so whichever recipe needs it first computes it and the others load it.
--   local P = dofile(semidpo.recipe_dir .. "/lib/paper_stages.lua")   -- (from recipes/tables: "/../lib/paper_stages.lua")
--   local c = P.config()          -- recipes/paper.yaml, then --set overrides
--   P.table1(c)
local semidpo = require "semidpo"

local P = {}
P.dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

-- Settings that are lists may be given on the command line as comma-separated words.
local list_settings = { committee = true, suites = true, grid_prompts = true, grid_seeds = true }

--- recipes/paper.yaml (beside lib/) with the run's --set values on top; `seed` is the run's --seed.
function P.config()
  local c = semidpo.yaml.load(P.dir .. "/../paper.yaml")
  for k, v in pairs(semidpo.args) do
    if list_settings[k] and type(v) ~= "table" then
      local items = {}
      for w in string.gmatch(tostring(v), "[^,]+") do items[#items + 1] = tonumber(w) or w end
      v = items
    end
    c[k] = v
  end
  c.seed = semidpo.seed
  return c
end

-- Memoised within one run: a stage asked for twice (e.g. by two tables in paper.lua) is resolved once.
-- The memo id stands for what the stage key hashes: name, settings, input paths and upstream keys.
local memo = {}
local function light(v)
  if type(v) ~= "table" then return v end
  if v.key and v.dir then return "stage:" .. v.key end
  local out = {}
  for k, x in pairs(v) do out[k] = light(x) end
  return out
end
local function stage(spec)
  local id = spec.name .. "\0" .. semidpo.inspect({ spec.settings, light(spec.inputs) })
  if not memo[id] then
    memo[id] = semidpo.stage{ name = spec.name, settings = spec.settings, inputs = spec.inputs, run = spec.run }
  end
  return memo[id]
end

-- Member names of a committee → their checkpoint files (stage inputs: retrained rewards rerun the stages).
local function reward_files(members)
  local files = {}
  for i, m in ipairs(members) do files[i] = "models/rewards/" .. m .. ".safetensors" end
  return files
end

-- The world dataset (its directory is its own cache) and a committee's consensus split of it.
local datasets, splits = {}, {}
function P.dataset(c)
  local dir = string.format("data/paper-%d-seed%d", c.pairs, c.seed)
  datasets[dir] = datasets[dir] or semidpo.world.dataset{ dir = dir, pairs = c.pairs, seed = c.seed }
  return datasets[dir]
end

function P.split(c, members)
  local id = table.concat(members, "+")
  if not splits[id] then
    local committee = semidpo.committee.new{ members = members }
    splits[id] = committee:partition(P.dataset(c), { rule = "unanimous", test = c.test_fraction, seed = c.seed })
  end
  return splits[id]
end

-- What identifies the data and the optimiser in every training stage's key.
local function data_settings(c) return { pairs = c.pairs, world_seed = c.seed, test_fraction = c.test_fraction } end
local function train_settings(c)
  return { beta = c.beta, lr = c.lr, batch_size = c.batch_size, warmup = c.warmup, seed = c.seed }
end

local function load_frozen(path)
  local m = semidpo.diffusion.load(path)
  m:freeze()
  return m
end

local function finetune(c, dir, init, reference, pair_set, steps, extra)
  local model = init:clone()
  model:unfreeze()                      -- a clone keeps the frozen flag of its source
  local opts = { policy = model, reference = reference, pairs = pair_set, beta = c.beta, lr = c.lr, batch_size = c.batch_size,
                 warmup = c.warmup, seed = c.seed, steps = steps, log = dir .. "/train" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local summary = semidpo.dpo.train(opts)
  model:save(dir .. "/model.safetensors")
  return { steps = summary.steps, mean_loss_last_tenth = summary.mean_loss_last_tenth,
           mean_accuracy_last_tenth = summary.mean_accuracy_last_tenth }
end

--- Training steps of the baselines: `baseline_steps` when set, otherwise `steps` (one Semi-DPO iteration's).
function P.baseline_steps(c) return c.baseline_steps or c.steps end

--- Diffusion-DPO ("dpo") or Diffusion-KTO ("kto") on every pair with its human label, from the base model.
function P.baseline(c, objective)
  return stage{
    name = objective,
    settings = { data = data_settings(c), train = train_settings(c), steps = P.baseline_steps(c), objective = objective },
    inputs = { base = c.base },
    run = function(dir)
      local base = load_frozen(c.base)
      return finetune(c, dir, base, base, P.dataset(c):pairs(), P.baseline_steps(c), { objective = objective })
    end,
  }
end

--- Semi-DPO with committee `members`, iterations 0 … `upto`: a list of stage results (index i + 1 = iteration i).
--- Iteration 0: DPO on the clean pairs. Iteration i ≥ 1: confidence of model i−1 (against its reference) on the
--- noisy and clean-test pairs, per-anchor percentile thresholds with the accuracy guard, pseudo-labels, and
--- training from model i−1 (reference: model i−1, as the paper's SD1.5 runs) on clean + pseudo-labelled pairs.
function P.semi(c, members, upto)
  local common = { data = data_settings(c), train = train_settings(c), committee = members }
  local inputs0 = { base = c.base, rewards = reward_files(members) }
  local runs = {}
  runs[1] = stage{
    name = "semi_iter0",
    settings = { common = common, steps = c.steps0 },
    inputs = inputs0,
    run = function(dir)
      local base = load_frozen(c.base)
      return finetune(c, dir, base, base, P.split(c, members):clean(), c.steps0)
    end,
  }
  for i = 1, upto do
    local prev = runs[i]
    local prev_ref = runs[i - 1]      -- nil for i = 1: the base model was iteration 0's reference
    runs[i + 1] = stage{
      name = "semi_iter" .. i,
      settings = { common = common, steps = c.steps, percentile = c.percentile, guard_floor = c.guard_floor,
                   guard_raise_to = c.guard_raise_to, unlabeled_weight = c.unlabeled_weight, iteration = i },
      inputs = { previous = prev, base = c.base },
      run = function(dir)
        local split = P.split(c, members)
        local noisy, test = split:noisy(), split:test()
        local model = load_frozen(prev.dir .. "/model.safetensors")
        local reference = load_frozen(prev_ref and (prev_ref.dir .. "/model.safetensors") or c.base)
        local conf = semidpo.dpo.confidence{ model = model, reference = reference, pairs = noisy, beta = c.beta, seed = c.seed + i }
        local conf_test = semidpo.dpo.confidence{ model = model, reference = reference, pairs = test, beta = c.beta, seed = c.seed + i }
        local past = {}
        for j = 2, i do past[#past + 1] = runs[j].dir .. "/pseudo_labels.json" end
        local selection = semidpo.pseudolabel.select_file{
          confidence = conf:write(dir .. "/confidence"), test_confidence = conf_test:write(dir .. "/test_confidence.jsonl"),
          mode = "percentile", values = c.percentile, guard = { floor = c.guard_floor, raise_to = c.guard_raise_to },
          past = (#past > 0) and past or nil, out = dir .. "/pseudo_labels.json" }
        print(selection.summary)
        local pseudo = semidpo.dpo.labels{ file = selection.out, pairs = noisy }
        local out = finetune(c, dir, model, model, split:clean(), c.steps,
                             { unlabeled = noisy, pseudo = pseudo, unlabeled_weight = c.unlabeled_weight })
        out.anchors = conf_test:anchors()
        out.test_accuracy = conf_test:accuracy()     -- of model i − 1 on the clean test pairs (Table 7)
        out.test_pairs = conf_test:count()
        out.pseudo_pairs = selection.pairs_out
        return out
      end,
    }
  end
  return runs
end

--- One model's evaluation on one suite: committee, oracle and GenEval scores per prompt (`semidpo.eval.run`),
--- kept as per-prompt lists so tables and win rates come from the stage record.
--- `model` is a stage result or the base model's path.
function P.evaluate(c, model, suite)
  local limit = suite == "geneval" and c.geneval_per_category or c.eval_prompts
  return stage{
    name = "eval_" .. suite,
    settings = { suite = suite, limit = limit, steps = c.eval_steps, guidance = c.guidance, seed = c.seed,
                 suite_size = c.suite_size, committee = c.committee },
    inputs = { model = model, rewards = reward_files(c.committee) },
    run = function(dir)
      local m = semidpo.diffusion.load(type(model) == "table" and (model.dir .. "/model.safetensors") or model)
      local scores = semidpo.eval.run{ model = m, suite = suite, committee = semidpo.committee.new{ members = c.committee },
                                       seed = c.seed, steps = c.eval_steps, guidance = c.guidance, limit = limit,
                                       size = c.suite_size }
      scores:write(dir .. "/scores.csv")
      local per_prompt = {}
      for _, metric in ipairs(scores:metrics()) do per_prompt[metric] = scores:per_prompt(metric) end
      return { metrics = scores:metrics(), means = scores:means(), geneval = scores:geneval(), prompts = scores:prompts(),
               per_prompt = per_prompt }
    end,
  }
end

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

-- The four models of Tables 1–3 and Figure 3: {label, stage result or base path}.
function P.models(c)
  local semi = P.semi(c, c.committee, c.iterations)
  return {
    { "Base", c.base },
    { "Diffusion-DPO", P.baseline(c, "dpo") },
    { "Diffusion-KTO", P.baseline(c, "kto") },
    { "Semi-DPO", semi[#semi] },
  }, semi
end

local function metric_columns(c)
  local cols = {}
  for _, m in ipairs(c.committee) do cols[#cols + 1] = m end
  for _, m in ipairs{ "alignment", "aesthetics", "detail", "overall" } do cols[#cols + 1] = m end
  return cols
end

local function heading(c)
  return string.format("%d prompts per suite, DDIM-%d, guidance %s, seed %d; %d pairs; steps: baselines %d, Semi-DPO iteration 0 %d, later iterations %d",
                       c.eval_prompts, c.eval_steps, tostring(c.guidance), c.seed, c.pairs, P.baseline_steps(c), c.steps0, c.steps)
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
    local sets = P.split(c, members):report().sets
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
  local dir = string.format("data/world-%d-seed%d", c.table6_pairs, c.table6_seed)
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
    local path = type(entry[2]) == "table" and (entry[2].dir .. "/model.safetensors") or entry[2]
    list[i] = { entry[1], semidpo.diffusion.load(path) }
  end
  return semidpo.eval.grid{ models = list, prompts = c.grid_prompts, seeds = c.grid_seeds, path = "figure3.png",
                            steps = c.eval_steps, guidance = c.guidance }
end

--- The label-noise audit: how the human labels of the consensus sets agree with the world's truth, and
--- how accurate Semi-DPO's pseudo-labels are per iteration and true dimension.
function P.audit(c)
  local split = P.split(c, c.committee)
  local rows = {}
  for _, s in ipairs(split:report().sets) do
    rows[#rows + 1] = { s.set, s.pairs, s.share, s.alignment, s.aesthetics, s.detail, s.overall, s["conflict ≥1 dim"] }
  end
  local t1 = semidpo.eval.table{ title = "Audit: human labels of the consensus sets (" .. table.concat(c.committee, ", ") .. ") vs the true dimensions (%)",
                                 path = "audit_partition", columns = { "set", "pairs", "share", "alignment", "aesthetics", "detail", "overall", "conflict >= 1 dim" },
                                 rows = rows, decimals = 1 }
  local semi = P.semi(c, c.committee, c.iterations)
  if #semi < 2 then return t1 end
  local noisy, labels = split:noisy(), {}
  for i = 2, #semi do labels[#labels + 1] = semidpo.dpo.labels{ file = semi[i].dir .. "/pseudo_labels.json", pairs = noisy } end
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
