-- Baseline: Diffusion-KTO (Li et al. 2024): every pair's winner is a desirable image and its loser an
-- undesirable one; utility 1 − σ(±β(g − KL)) with g = mse_ref − mse_θ and KL the clamped batch mean of g.
-- The same run as recipes/diffusion_dpo.lua with the KTO objective; it takes the same --set options.
--   semidpo run recipes/diffusion_kto.lua [--set pairs=6000] [--set steps=600] [--set beta=2500] …   (--help-settings)
require("semidpo.recipes").alignment_recipe("kto")
