-- The paper's Table 2 on the world: paired win rates of each method over Base and of Semi-DPO over the baselines, per suite.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/table2.lua [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table2(P.config()))
