-- Baseline: Diffusion-DPO (Wallace et al. 2024) on every preference pair with its human label, from the
-- base model with the base model as the frozen reference. Also the SFT-on-winners baseline with
-- --set objective=sft, and the robust loss variants with --set loss=hinge|ipo|gce|sce.
-- The recipe is `alignment_recipe` of the recipe library (recipes/lib/semidpo/recipes.lua), shared with
-- recipes/diffusion_kto.lua.
--   semidpo run recipes/diffusion_dpo.lua [--set pairs=6000] [--set steps=600] [--set beta=2500] …   (--help-settings)
require("semidpo.recipes").alignment_recipe("dpo")
