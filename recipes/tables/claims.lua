-- The paper's claims (a)–(e) on the world, each judged holds / fails / inconclusive from its 95% interval over
-- training seeds and prompts (pairs), never from a point estimate: claims.md and the `claims` entry of tables.json.
-- Trained models and evaluations are cached stages (recipes/lib/semidpo/recipes.lua), shared with recipes/paper.lua.
--   semidpo run recipes/tables/claims.lua --set seeds=0,1,2 [--set key=value …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.claims(P.config()))
