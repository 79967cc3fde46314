-- The paper's Table 7 on the world: accuracy per timestep anchor on the clean test split of the models that pseudo-labelled.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table7.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table7(P.config()))
