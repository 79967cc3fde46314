-- Baseline: Diffusion-KTO (Li et al. 2024): every pair's winner is a desirable image and its loser an
-- undesirable one; utility 1 − σ(±β(g − KL)) with g = mse_ref − mse_θ and KL the clamped batch mean of g.
--   semidpo run recipes/diffusion_kto.lua [--set pairs=6000] [--set steps=600] [--set beta=2500] …
local semidpo = require "semidpo"
local A = semidpo.args

local settings = {
  data_pairs = A.pairs or 6000,
  beta = A.beta or 2500,
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
model:unfreeze()
local summary = semidpo.dpo.train{ policy = model, reference = base, pairs = data:pairs(), objective = "kto",
                                   beta = settings.beta, lr = settings.lr, batch_size = settings.batch_size,
                                   steps = settings.steps, warmup = settings.warmup, seed = semidpo.seed, log = "train" }
model:save("model.safetensors")
print(semidpo.yaml.dump{ result = summary })
