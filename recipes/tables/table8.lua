-- Table 8 (issue 19): online Semi-DPO (the paper's §6.7 proposal) vs offline Semi-DPO vs Diffusion-DPO, evaluated
-- like Table 1 (same prompts and noise per seed) with 95% intervals over seeds and prompts, the online arm's win
-- rates, what each arm trained, and per online round where the time went and how its self-labels fare against the
-- world's truth. The cold start, offline Semi-DPO, Diffusion-DPO and the evaluations are paper.lua's cached stages
-- (recipes/lib/semidpo/recipes.lua): after a paper.lua run with the same settings only the online rounds
-- (recipes/lib/semidpo/online.lua) and their evaluations are computed.
--   semidpo run recipes/tables/table8.lua --threads 2 --set seeds=0,1,2 [--set online.rounds=2 …]   (settings: recipes/paper.yaml)
local semidpo = require "semidpo"
local P = require "semidpo.paper"
P.show(P.table8(P.config()))
