-- The paper's Table 4 on the world: Semi-DPO iterations 0, 1, 2 per suite.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table4.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table4(P.config()))
