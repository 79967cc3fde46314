-- Baseline: Diffusion-DPO (Wallace et al. 2024) on every preference pair with its human label, from the
-- base model with the base model as the frozen reference. Also the SFT-on-winners baseline with
-- --set objective=sft, and the robust loss variants with --set loss=hinge|ipo|gce|sce.
--   semidpo run recipes/diffusion_dpo.lua [--set pairs=6000] [--set steps=600] [--set beta=2500] …
local semidpo = require "semidpo"
local A = semidpo.args

local settings = {
  data_pairs = A.pairs or 6000,
  objective = A.objective or "dpo",   -- "dpo", "kto" (recipes/diffusion_kto.lua) or "sft"
  loss = A.loss or "sigmoid",         -- DPO loss variant
  beta = A.beta or 2500,              -- "no ½" convention, docs/method.md
  lr = A.lr or 2e-5,
  batch_size = A.batch_size or 16,
  steps = A.steps or 600,
  warmup = A.warmup or 30,
  base = A.base or "models/base.safetensors",
}
print(semidpo.yaml.dump{ settings = settings })

local data = semidpo.world.dataset{ dir = A.data or ("data/world-" .. settings.data_pairs .. "-seed" .. semidpo.seed),
                                    pairs = settings.data_pairs, seed = semidpo.seed }
local base = semidpo.diffusion.load(settings.base)
base:freeze()
local model = base:clone()
model:unfreeze()                      -- a clone keeps the frozen flag of its source
local summary = semidpo.dpo.train{ policy = model, reference = base, pairs = data:pairs(), objective = settings.objective,
                                   loss = settings.loss, beta = settings.beta, lr = settings.lr,
                                   batch_size = settings.batch_size, steps = settings.steps, warmup = settings.warmup,
                                   seed = semidpo.seed, log = "train" }
model:save("model.safetensors")
print(semidpo.yaml.dump{ result = summary })
