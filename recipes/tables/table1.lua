-- The paper's Table 1 on the world: mean scores (committee, oracle dimensions, overall) of Base, Diffusion-DPO, Diffusion-KTO and Semi-DPO per suite.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table1.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table1(P.config()))
