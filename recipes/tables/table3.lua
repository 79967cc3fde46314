-- The paper's Table 3 on the world: GenEval-like pass rates per category of the four models.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table3.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table3(P.config()))
