-- Semi-DPO end to end (the paper's §3.3 and appendix 6.9) from the base model:
--   1. multi-reward consensus splits the preference data into clean / clean-test / noisy pairs;
--   2. iteration 0: Diffusion-DPO on the clean pairs only;
--   3. iteration i ≥ 1: the previous model scores every noisy pair at the anchors t = 50 … 950 (z = its
--      implicit DPO logit), its accuracy per anchor is measured on the clean test pairs, thresholds are
--      set per anchor (80th percentile, raised to the 90th where accuracy < 70%), pseudo-labels are the
--      signs of z above the thresholds, and the model is retrained on clean + pseudo-labelled pairs.
-- Writes per-iteration logs, the official confidence shards and pseudo-label files, the accuracy-per-anchor
-- table (Table 7), the pseudo-label audit against the world's truth, and the models.
--
--   semidpo run recipes/semi_dpo.lua [--set pairs=2000] [--set iterations=2] [--set steps=200] …
local semidpo = require "semidpo"
local A = semidpo.args

local settings = {
  data_pairs = A.pairs or 2000,          -- preference pairs drawn from the world
  iterations = A.iterations or 2,        -- self-training rounds after iteration 0 (the paper: 2)
  beta = A.beta or 2500,                 -- DPO β ("no ½" convention, docs/method.md)
  lr = A.lr or 2e-5,
  batch_size = A.batch_size or 16,
  steps0 = A.steps0 or 200,              -- iteration 0 steps (clean pairs only)
  steps = A.steps or 200,                -- steps of each later iteration
  warmup = A.warmup or 30,
  percentile = A.percentile or 80,       -- starting threshold per anchor
  floor = A.floor or 0.70,               -- accuracy guard: anchors below this accuracy …
  raise_to = A.raise_to or 90,           -- … use this percentile instead
  unlabeled_weight = A.unlabeled_weight or 1.0,
  reference = A.reference or "previous", -- "previous" (the paper's SD1.5 runs) or "base"
  clean_anchor = A.clean_anchor or "all",-- "all" or "thirds" (disjoint thirds per iteration, as the official runs)
  base = A.base or "models/base.safetensors",
  members = { "clip", "aesthetic", "hps", "imagereward", "pickscore" },
}
print(semidpo.yaml.dump{ settings = settings })

-- Stage 1: the data and the multi-reward consensus.
local data = semidpo.world.dataset{ dir = A.data or ("data/world-" .. settings.data_pairs .. "-seed" .. semidpo.seed),
                                    pairs = settings.data_pairs, seed = semidpo.seed }
local committee = semidpo.committee.new{ members = settings.members }
local split = committee:partition(data, { rule = "unanimous", test = 0.02, seed = semidpo.seed })
split:write("partition")
print(split:report().markdown)
local clean, test, noisy = split:clean(), split:test(), split:noisy()

-- The clean anchor set of iteration i: all clean pairs, or the i-th of three disjoint thirds.
local function clean_anchor(i)
  if settings.clean_anchor == "all" then return clean end
  assert(settings.clean_anchor == "thirds", "clean_anchor must be \"all\" or \"thirds\"")
  local ids, part = clean:ids(), {}
  local third = i % 3
  for k, id in ipairs(ids) do
    if (k - 1) % 3 == third then part[#part + 1] = id end
  end
  return clean:subset(part)
end

local function train(policy, reference, labelled, extra)
  local opts = { policy = policy, reference = reference, pairs = labelled, beta = settings.beta, lr = settings.lr,
                 batch_size = settings.batch_size, warmup = settings.warmup, seed = semidpo.seed }
  for k, v in pairs(extra) do opts[k] = v end
  return semidpo.dpo.train(opts)
end

-- Stage 2, iteration 0: DPO on the clean set only.
local base = semidpo.diffusion.load(settings.base)
base:freeze()
local model = base:clone()
model:unfreeze()             -- a clone keeps the frozen flag of its source
local reference = base
train(model, reference, clean_anchor(0), { steps = settings.steps0, log = "iter0/train" })
model:save("iter0/model.safetensors")

local tables, audits, past = {}, {}, {}
for i = 1, settings.iterations do
  local dir = "iter" .. i .. "/"
  -- The previous model's confidence on the noisy pairs and its accuracy per anchor on the clean test pairs.
  local conf = semidpo.dpo.confidence{ model = model, reference = reference, pairs = noisy, beta = settings.beta, seed = semidpo.seed + i }
  local conf_test = semidpo.dpo.confidence{ model = model, reference = reference, pairs = test, beta = settings.beta, seed = semidpo.seed + i }
  local shards = conf:write(dir .. "confidence")
  local test_file = conf_test:write(dir .. "test_confidence.jsonl")
  tables[#tables + 1] = conf_test:accuracy_table(string.format("Accuracy per anchor of the iteration-%d model (clean test pairs)", i - 1))

  -- Dynamic thresholds with the automatic accuracy guard, then pseudo-labels.
  local selection = semidpo.pseudolabel.select_file{
    confidence = shards, test_confidence = test_file, mode = "percentile", values = settings.percentile,
    guard = { floor = settings.floor, raise_to = settings.raise_to }, past = (#past > 0) and past or nil,
    out = dir .. "pseudo_labels.json" }
  print(selection.summary)
  past[#past + 1] = selection.out
  local pseudo = semidpo.dpo.labels{ file = selection.out, pairs = noisy }
  audits[#audits + 1] = pseudo

  -- Retrain from the previous model on clean + pseudo-labelled pairs.
  local next_model = model:clone()
  next_model:unfreeze()
  local next_reference = settings.reference == "base" and base or model
  if next_reference == model then model:freeze() end
  train(next_model, next_reference, clean_anchor(i), {
    steps = settings.steps, unlabeled = noisy, pseudo = pseudo, unlabeled_weight = settings.unlabeled_weight,
    log = dir .. "train" })
  next_model:save(dir .. "model.safetensors")
  model, reference = next_model, next_reference
end

-- The audit no peer can run: pseudo-label accuracy per iteration, anchor and true dimension.
if #audits > 0 then
  local audit = semidpo.dpo.audit{ truth = noisy:truth(), labels = audits }
  semidpo.write_text("audit.md", audit.markdown)
  semidpo.write_text("audit.csv", audit.csv)
  print(audit.markdown)
end
semidpo.write_text("table7.md", table.concat(tables, "\n\n"))
print(table.concat(tables, "\n\n"))
print("Semi-DPO finished; outputs in " .. semidpo.out)
