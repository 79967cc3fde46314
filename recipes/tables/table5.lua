-- The paper's Table 5 on the world: committees of 2, 3, 4 and 5 members (CLIP+Aesthetic, +HPS, +ImageReward, +PickScore), each a Semi-DPO run.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table5.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table5(P.config()))
