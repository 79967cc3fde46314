-- The paper's Table 1 on the world: mean scores (committee, oracle dimensions, overall) of Base, Diffusion-DPO, Diffusion-KTO and Semi-DPO per suite.
-- Trained models and evaluations are cached stages (recipes/lib/paper_stages.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table1.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = dofile(semidpo.recipe_dir .. "/../lib/paper_stages.lua")
P.show(P.table1(P.config()))
