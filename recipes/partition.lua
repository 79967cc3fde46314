-- Stage 1 of Semi-DPO on the default world: score every pair with the reward committee (cached in
-- <dataset>/scores), split into clean / clean test / noisy, and report — since the world knows the
-- truth — how often each part's human labels agree with each true dimension and the overall truth.
--   semidpo run recipes/partition.lua [--set pairs=20000] [--set rule=k_of_n --set k=4] [--set test=0.02]
local semidpo = require "semidpo"
local args = semidpo.args

local pairs_n = tonumber(args.pairs or 20000)
local dir = args.dir or ("data/world-" .. pairs_n .. "-seed" .. semidpo.seed)
local names = {}
for name in string.gmatch(args.members or "clip,aesthetic,hps,imagereward,pickscore", "[^,]+") do names[#names + 1] = name end

local ds = semidpo.world.dataset{ dir = dir, pairs = pairs_n, seed = semidpo.seed }
local committee = semidpo.committee.new{ members = names, models = args.models or (semidpo.recipe_dir .. "/../models/rewards") }
print(tostring(ds) .. "\n" .. tostring(committee))

local t0 = semidpo.clock()
local part = committee:partition(ds, {
  rule = args.rule or "unanimous", k = args.k and tonumber(args.k) or nil,
  test = tonumber(args.test or 0.02), seed = 42,
  on_progress = function(member, done, total)
    if done == total then print(string.format("  scored %s: %d pairs", member, total)) end
  end,
})
print(string.format("%s in %.1f s (scores cached in %s/scores)", tostring(part), semidpo.clock() - t0, dir))
local rep = part:report()
print(rep.markdown)
print(string.format("clean fraction %.1f%% (the paper: 21%%)", 100 * rep.clean_fraction))
part:write("partition")
print("wrote partition/{clean,clean_test,noisy}.json and partition/partition.{md,csv} in " .. semidpo.out)
