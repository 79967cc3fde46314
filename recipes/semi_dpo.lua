-- Semi-DPO end to end (the paper's §3.3 and appendix 6.9) from the base model:
--   1. multi-reward consensus splits the preference data into clean / clean-test / noisy pairs;
--   2. iteration 0: Diffusion-DPO on the clean pairs only;
--   3. iteration i ≥ 1: the previous model scores every noisy pair at the anchors t = 50 … 950 (z = its
--      implicit DPO logit), its accuracy per anchor is measured on the clean test pairs, thresholds are
--      set per anchor (80th percentile, raised to the 90th where accuracy < 70%), pseudo-labels are the
--      signs of z above the thresholds, and the model is retrained on clean + pseudo-labelled pairs.
-- Every iteration is a cached stage of the recipe library (recipes/lib/semidpo/recipes.lua, `R.semi`):
-- a sweep over a later iteration's settings reuses the finished earlier iterations, and a second run loads
-- them all. Writes the partition, each iteration's model and official pseudo-label file (copied from its
-- stage directory, which also holds the confidence shards and training logs), the accuracy-per-anchor
-- table (Table 7) and the pseudo-label audit against the world's truth.
--
--   semidpo run recipes/semi_dpo.lua [--set pairs=2000] [--set iterations=2] [--set steps=200] …   (--help-settings)
local semidpo = require "semidpo"
local R = require "semidpo.recipes"

local S = semidpo.settings{
  pairs = 2000,                -- preference pairs drawn from the world (seed = --seed)
  data_root = "data",          -- the dataset directory: <data_root>/<data_prefix>-<pairs>-seed<seed>
  data_prefix = "world",
  test_fraction = 0.02,        -- share of the clean pairs held out (accuracy per anchor, the guard)
  committee = { "clip", "aesthetic", "hps", "imagereward", "pickscore" },
  iterations = 2,              -- self-training rounds after iteration 0 (the paper: 2)
  beta = 2500,                 -- DPO β ("no ½" convention, docs/method.md)
  lr = 2e-5,
  batch_size = 16,
  steps0 = 200,                -- iteration 0 steps (clean pairs only)
  steps = 200,                 -- steps of each later iteration
  warmup = 30,
  percentile = 80.0,           -- starting threshold per anchor (a percentile of |z|)
  guard = { floor = 0.70, raise_to = 90.0 },  -- accuracy guard: anchors below `floor` use percentile `raise_to`
  unlabeled_weight = 1.0,
  reference = "previous",      -- "previous" (the paper's SD1.5 runs) or "base"
  clean_anchor = "all",        -- "all" or "thirds" (disjoint thirds per iteration, as the official runs)
  base = "models/base.safetensors",
}
print(semidpo.yaml.dump{ settings = S })
local c = {}
for k, v in pairs(S) do c[k] = v end
c.seed = semidpo.seed

-- Stage 1: the data and the multi-reward consensus.
local split = R.split(c, c.committee)
split:write("partition")
print(split:report().markdown)

-- Stages 2 and 3: iteration 0, then the self-training rounds (each a cached stage).
local semi = R.semi(c, c.committee, c.iterations)
local tables = {}
for i, run in ipairs(semi) do
  local dir = "iter" .. (i - 1) .. "/"
  semidpo.copy_file(run.dir .. "/model.safetensors", dir .. "model.safetensors")
  if i > 1 then
    semidpo.copy_file(run.dir .. "/pseudo_labels.json", dir .. "pseudo_labels.json")
    local o = run.outputs
    local cells = {}
    for k, a in ipairs(o.anchors) do cells[#cells + 1] = string.format("| t=%d | %.1f |", a, 100 * o.test_accuracy[k]) end
    tables[#tables + 1] = string.format("**Accuracy per anchor of the iteration-%d model (%d clean test pairs)**\n\n| anchor | accuracy (%%) |\n|---|---|\n%s\n",
                                        i - 2, o.test_pairs, table.concat(cells, "\n"))
  end
end

-- The audit no peer can run: pseudo-label accuracy per iteration, anchor and true dimension.
if #semi > 1 then
  local noisy = split:noisy()
  local audit = semidpo.dpo.audit{ truth = noisy:truth(), labels = R.pseudo_labels(semi, noisy) }
  semidpo.write_text("audit.md", audit.markdown)
  semidpo.write_text("audit.csv", audit.csv)
  print(audit.markdown)
end
semidpo.write_text("table7.md", table.concat(tables, "\n"))
print(table.concat(tables, "\n"))
print("Semi-DPO finished; outputs in " .. semidpo.out)
