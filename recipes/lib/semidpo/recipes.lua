-- The recipe library (`require "semidpo.recipes"`): the Semi-DPO loop, fine-tuning and the cached
-- stages of the paper's experiments, written once and used by recipes/quickstart.lua, semi_dpo.lua,
-- paper.lua and tables/*.lua. Tables and figures built from these stages are in `semidpo.paper`.
--
-- Every trained model and every evaluation is a `semidpo.stage` keyed by its settings, inputs and this
-- file's code: whichever recipe needs a stage first computes it, the others load it. `c` below is a
-- recipe's settings table (semidpo.settings) with `c.seed` set to the run's seed; the fields a function
-- reads are listed beside it.
local semidpo = require "semidpo"

local R = {}

--- A frozen copy of the model stored at `path`.
function R.load_frozen(path)
  local m = semidpo.diffusion.load(path)
  m:freeze()
  return m
end

--- The model file of a stage result, or `model` itself when it is a path (the base model).
function R.model_path(model)
  return type(model) == "table" and (model.dir .. "/model.safetensors") or model
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

--- The world dataset of `c.pairs` pairs drawn with seed `c.seed`, in
--- `<c.data_root or "data">/<c.data_prefix or "paper">-<pairs>-seed<seed>` (a dataset directory is its own cache).
function R.dataset(c)
  local dir = string.format("%s/%s-%d-seed%d", c.data_root or "data", c.data_prefix or "paper", c.pairs, c.seed)
  datasets[dir] = datasets[dir] or semidpo.world.dataset{ dir = dir, pairs = c.pairs, seed = c.seed }
  return datasets[dir]
end

--- The unanimous consensus split of `R.dataset(c)` by the committee `members` (held-out share
--- `c.test_fraction`, seed `c.seed`), computed once per run and dataset (one per seed of a multi-seed run).
function R.split(c, members)
  local id = string.format("%s\0%s\0%d\0%d\0%s\0%.17g", table.concat(members, "+"), c.data_root or "data", c.pairs, c.seed,
                           c.data_prefix or "paper", c.test_fraction)
  if not splits[id] then
    local committee = semidpo.committee.new{ members = members }
    splits[id] = committee:partition(R.dataset(c), { rule = "unanimous", test_fraction = c.test_fraction, seed = c.seed })
  end
  return splits[id]
end

--- Fine-tuning: a copy of `init` (unfrozen) trained with `semidpo.dpo.train` against `reference` on
--- `pair_set`, with the optimiser settings of `c` (beta, lr, batch_size, warmup, seed), `steps`, and any
--- further dpo.train options in `extra` (objective, unlabeled, pseudo, unlabeled_weight, log, …).
--- Returns the trained model and dpo.train's summary.
function R.finetune(c, init, reference, pair_set, steps, extra)
  local model = init:clone()
  local opts = { policy = model, reference = reference, pairs = pair_set, beta = c.beta, lr = c.lr, batch_size = c.batch_size,
                 warmup = c.warmup, seed = c.seed, steps = steps }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local summary = semidpo.dpo.train(opts)
  return model, summary
end

--- One Semi-DPO self-training round (iteration i ≥ 1, the paper's §3.3 and appendix 6.9): the previous
--- model scores every noisy pair at the anchors (z = its implicit DPO logit against `reference`), its
--- accuracy per anchor is measured on the clean test pairs, per-anchor percentile thresholds with the
--- accuracy guard select pseudo-labels (`semidpo.pseudolabel.select`, in memory), and a copy of the
--- previous model is retrained on `labelled` + the pseudo-labelled noisy pairs.
---   o = { c =, iteration =, model =, reference =, train_reference =, noisy =, test =, labelled =, past = {Labels, …},
---         guard = {floor =, raise_to =} | function, files = dir? , log = name? }
--- `c`: beta, seed, percentile, steps, unlabeled_weight (+ finetune's). `train_reference` (default `model`)
--- is the retraining's reference. With `files`, the official files are written there too: confidence
--- shards, test_confidence.jsonl, pseudo_labels.json.
--- Returns the new model and {labels =, selection =, conf_test =, summary =}.
function R.semi_round(o)
  local c, i = o.c, o.iteration
  local conf = semidpo.dpo.confidence{ model = o.model, reference = o.reference, pairs = o.noisy, beta = c.beta, seed = c.seed + i }
  local conf_test = semidpo.dpo.confidence{ model = o.model, reference = o.reference, pairs = o.test, beta = c.beta, seed = c.seed + i }
  local labels, selection = semidpo.pseudolabel.select{
    confidence = conf, test_confidence = conf_test, mode = "percentile", values = c.percentile,
    guard = o.guard, past = (#o.past > 0) and o.past or nil }
  print(selection.summary)
  if o.files then
    conf:write(o.files .. "/confidence")
    conf_test:write(o.files .. "/test_confidence.jsonl")
    labels:write(o.files .. "/pseudo_labels.json")
  end
  local model, summary = R.finetune(c, o.model, o.train_reference or o.model, o.labelled, c.steps,
                                    { unlabeled = o.noisy, pseudo = labels, unlabeled_weight = c.unlabeled_weight, log = o.log })
  return model, { labels = labels, selection = selection, conf_test = conf_test, summary = summary }
end

-- What identifies the data and the optimiser in every training stage's key.
local function data_settings(c) return { pairs = c.pairs, world_seed = c.seed, test_fraction = c.test_fraction, data = c.data_prefix } end
local function train_settings(c)
  return { beta = c.beta, lr = c.lr, batch_size = c.batch_size, warmup = c.warmup, seed = c.seed }
end

local function summary_outputs(s)
  return { steps = s.steps, mean_loss_last_tenth = s.mean_loss_last_tenth, mean_accuracy_last_tenth = s.mean_accuracy_last_tenth }
end

-- For stages built on these (recipes/lib/semidpo/controls.lua): the same key parts and outputs.
R.data_settings, R.train_settings, R.summary_outputs = data_settings, train_settings, summary_outputs

--- Training steps of the baselines: `c.baseline_steps` when set and > 0, otherwise `c.steps` (one Semi-DPO iteration's).
function R.baseline_steps(c) return (c.baseline_steps or 0) > 0 and c.baseline_steps or c.steps end

--- Stage `dpo` or `kto`: Diffusion-DPO / Diffusion-KTO on every pair with its human label, from the base
--- model `c.base` against itself.
function R.baseline(c, objective)
  return stage{
    name = objective,
    settings = { data = data_settings(c), train = train_settings(c), steps = R.baseline_steps(c), objective = objective },
    inputs = { base = c.base },
    run = function(dir)
      local base = R.load_frozen(c.base)
      local model, summary = R.finetune(c, base, base, R.dataset(c):pairs(), R.baseline_steps(c),
                                        { objective = objective, log = dir .. "/train" })
      model:save(dir .. "/model.safetensors")
      return summary_outputs(summary)
    end,
  }
end

-- The labelled set of iteration i: all clean pairs, or (c.clean_anchor == "thirds") the i-th of three
-- disjoint thirds, as the official runs.
local function labelled_set(c, split, i)
  local clean = split:clean()
  if (c.clean_anchor or "all") == "all" then return clean end
  assert(c.clean_anchor == "thirds", "clean_anchor must be \"all\" or \"thirds\"")
  local part = {}
  for k, id in ipairs(clean:ids()) do
    if (k - 1) % 3 == i % 3 then part[#part + 1] = id end
  end
  return clean:subset(part)
end
R.labelled_set = labelled_set

--- Per anchor, per pair of a Confidence: 1 when z > 0 (the model prefers the labelled winner), ½ when
--- z = 0, 0 when z < 0 — the per-pair terms whose mean is `conf:accuracy()` (ties ½).
function R.correct_per_anchor(conf)
  local out = {}
  for k = 1, #conf:anchors() do out[k] = {} end
  for p, row in ipairs(conf:values()) do
    for k, z in ipairs(row) do out[k][p] = z > 0 and 1 or (z == 0 and 0.5 or 0) end
  end
  return out
end

--- Semi-DPO with committee `members`, iterations 0 … `upto`: a list of stage results (index i + 1 = iteration i).
--- Iteration 0 (`semi_iter0`): DPO on the clean pairs from the base model. Iteration i ≥ 1 (`semi_iter<i>`):
--- `R.semi_round` from model i−1 (confidence against its own reference: the base model for i = 1), retrained
--- against model i−1 (the paper's SD1.5 runs; `c.reference = "base"`: against the base model).
--- `c`: base, steps0, steps, percentile, guard = {floor, raise_to}, unlabeled_weight, clean_anchor ("all"),
--- reference ("previous") + data and optimiser settings. `guard` (optional) replaces c.guard by a Lua rule.
--- Each iteration's outputs: training summary, anchors, test_accuracy (model i−1 on the clean test pairs:
--- Table 7), test_pairs, test_correct (`R.correct_per_anchor`: per anchor, 1 | ½ | 0 per test pair), pseudo_pairs.
function R.semi(c, members, upto, guard)
  local common = { data = data_settings(c), train = train_settings(c), committee = members }
  if (c.clean_anchor or "all") ~= "all" then common.clean_anchor = c.clean_anchor end
  if (c.reference or "previous") ~= "previous" then common.reference = c.reference end
  local runs = {}
  runs[1] = stage{
    name = "semi_iter0",
    settings = { common = common, steps = c.steps0 },
    inputs = { base = c.base, rewards = reward_files(members) },
    run = function(dir)
      local base = R.load_frozen(c.base)
      local model, summary = R.finetune(c, base, base, labelled_set(c, R.split(c, members), 0), c.steps0, { log = dir .. "/train" })
      model:save(dir .. "/model.safetensors")
      return summary_outputs(summary)
    end,
  }
  for i = 1, upto do
    local prev = runs[i]
    local prev_ref = runs[i - 1]      -- nil for i = 1: the base model was iteration 0's reference
    runs[i + 1] = stage{
      name = "semi_iter" .. i,
      settings = { common = common, steps = c.steps, percentile = c.percentile, guard = type(guard) == "function" and "function" or c.guard,
                   unlabeled_weight = c.unlabeled_weight, iteration = i },
      inputs = { previous = prev, base = c.base },
      run = function(dir)
        local split = R.split(c, members)
        local model = R.load_frozen(prev.dir .. "/model.safetensors")
        local reference = R.load_frozen(prev_ref and (prev_ref.dir .. "/model.safetensors") or c.base)
        local past = {}
        for j = 2, i do past[#past + 1] = semidpo.dpo.labels{ file = runs[j].dir .. "/pseudo_labels.json" } end
        local train_reference = (c.reference or "previous") == "base" and R.load_frozen(c.base) or model
        local next_model, r = R.semi_round{ c = c, iteration = i, model = model, reference = reference, train_reference = train_reference,
                                             noisy = split:noisy(), test = split:test(), labelled = labelled_set(c, split, i),
                                             past = past, guard = guard or c.guard, files = dir, log = dir .. "/train" }
        next_model:save(dir .. "/model.safetensors")
        local out = summary_outputs(r.summary)
        out.anchors = r.conf_test:anchors()
        out.test_accuracy = r.conf_test:accuracy()     -- of model i − 1 on the clean test pairs (Table 7)
        out.test_pairs = r.conf_test:count()
        out.test_correct = R.correct_per_anchor(r.conf_test)   -- per anchor, per test pair: 1 | ½ | 0 (Table 7's intervals)
        out.pseudo_pairs = r.selection.pairs_out
        return out
      end,
    }
  end
  return runs
end

--- Stage `eval_<suite>`: one model's evaluation on one suite — committee, oracle and GenEval scores per
--- prompt (`semidpo.eval.run`), kept as per-prompt lists so tables, intervals and win rates come from the stage record (the geneval suite also keeps `geneval_passes`, `semidpo.eval.geneval_passes`).
--- `model` is a stage result or the base model's path. `c`: eval_prompts, geneval_per_category, geneval_min_images
--- (optional, default 1: GenEval images per category, ⌈it / the category's prompts⌉ images per prompt), eval_steps,
--- guidance, seed, suite_size, committee. The sampling noise of prompt p is drawn from `c.seed` (SampleID(c.seed, p)):
--- every model of one seed starts from the same noise, and each seed of a multi-seed run from its own.
function R.evaluate(c, model, suite)
  local limit = suite == "geneval" and c.geneval_per_category or c.eval_prompts
  -- absent from the key at 1 image per prompt (those stages keep their keys); a bad value fails in eval.run
  local min_images = suite == "geneval" and c.geneval_min_images ~= 1 and c.geneval_min_images or nil
  return stage{
    name = "eval_" .. suite,
    settings = { suite = suite, limit = limit, steps = c.eval_steps, guidance = c.guidance, seed = c.seed,
                 suite_size = c.suite_size, committee = c.committee, min_images = min_images },
    inputs = { model = model, rewards = reward_files(c.committee) },
    run = function(dir)
      local m = semidpo.diffusion.load(R.model_path(model))
      local scores = semidpo.eval.run{ model = m, suite = suite, committee = semidpo.committee.new{ members = c.committee },
                                       seed = c.seed, steps = c.eval_steps, guidance = c.guidance, limit = limit,
                                       size = c.suite_size, min_images = min_images }
      scores:write(dir .. "/scores.csv")
      local per_prompt = {}
      for _, metric in ipairs(scores:metrics()) do per_prompt[metric] = scores:per_prompt(metric) end
      return { metrics = scores:metrics(), means = scores:means(), geneval = scores:geneval(), prompts = scores:prompts(),
               per_prompt = per_prompt, geneval_passes = suite == "geneval" and semidpo.eval.geneval_passes(scores) or nil }
    end,
  }
end

--- The four models of Tables 1–3 and Figure 3 ({label, stage result or base path}) and the Semi-DPO iterations.
function R.models(c)
  local semi = R.semi(c, c.committee, c.iterations)
  return {
    { "Base", c.base },
    { "Diffusion-DPO", R.baseline(c, "dpo") },
    { "Diffusion-KTO", R.baseline(c, "kto") },
    { "Semi-DPO", semi[#semi] },
  }, semi
end

--- The pseudo-labels of Semi-DPO iterations 1 … (`semi` as `R.semi` returns), rows aligned to `pairs`.
function R.pseudo_labels(semi, pair_set)
  local labels = {}
  for i = 2, #semi do labels[#labels + 1] = semidpo.dpo.labels{ file = semi[i].dir .. "/pseudo_labels.json", pairs = pair_set } end
  return labels
end

--- The body of recipes/diffusion_dpo.lua and diffusion_kto.lua: declares their settings (`objective`
--- defaults to the recipe's), trains a copy of the base model on every pair of the world dataset with
--- its human label against the frozen base model, and writes train.csv/.svg and model.safetensors.
function R.alignment_recipe(objective)
  local S = semidpo.settings{
    pairs = 6000,                       -- preference pairs drawn from the world (seed = --seed)
    data_root = "data",                 -- the dataset directory: <data_root>/<data_prefix>-<pairs>-seed<seed>
    data_prefix = "world",
    objective = objective,              -- "dpo", "kto" or "sft"
    loss = "sigmoid",                   -- DPO loss variant: sigmoid, hinge, ipo, gce, sce
    beta = 2500,                        -- "no ½" convention, docs/method.md
    lr = 2e-5,
    batch_size = 16,
    steps = 600,
    warmup = 30,
    base = "models/base.safetensors",
  }
  print(semidpo.yaml.dump{ settings = S })
  local data = semidpo.world.dataset{ dir = string.format("%s/%s-%d-seed%d", S.data_root, S.data_prefix, S.pairs, semidpo.seed),
                                      pairs = S.pairs, seed = semidpo.seed }
  local base = R.load_frozen(S.base)
  local c = { beta = S.beta, lr = S.lr, batch_size = S.batch_size, warmup = S.warmup, seed = semidpo.seed }
  local model, summary = R.finetune(c, base, base, data:pairs(), S.steps, { objective = S.objective, loss = S.loss, log = "train" })
  model:save("model.safetensors")
  print(semidpo.yaml.dump{ result = summary })
  return summary
end

return R
