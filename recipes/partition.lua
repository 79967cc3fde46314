-- Stage 1 of Semi-DPO on the default world: score every pair with the reward committee (cached in
-- <dataset>/scores), split into clean / clean test / noisy, and report — since the world knows the
-- truth — how often each part's human labels agree with each true dimension and the overall truth.
--   semidpo run recipes/partition.lua [--set pairs=20000] [--set rule=k_of_n --set k=4] [--set test_fraction=0.02]
local semidpo = require "semidpo"
local S = semidpo.settings{
  pairs = 20000,                             -- pairs drawn from the world (seed = --seed)
  dir = semidpo.optional("string"),          -- dataset directory (default data/world-<pairs>-seed<seed>)
  members = { "clip", "aesthetic", "hps", "imagereward", "pickscore" },
  models = semidpo.optional("string"),       -- reward checkpoints (default models/rewards beside recipes/)
  rule = "unanimous",                        -- "unanimous" or "k_of_n"
  k = semidpo.optional("integer"),           -- members that must agree for k_of_n
  test_fraction = 0.02,                      -- held-out share of the clean pairs
}

local pairs_n = S.pairs
local dir = S.dir or ("data/world-" .. pairs_n .. "-seed" .. semidpo.seed)
local names = S.members

local ds = semidpo.world.dataset{ dir = dir, pairs = pairs_n, seed = semidpo.seed }
local committee = semidpo.committee.new{ members = names, models = S.models or (semidpo.recipe_dir .. "/../models/rewards") }
print(tostring(ds) .. "\n" .. tostring(committee))

local t0 = semidpo.clock()
local part = committee:partition(ds, {
  rule = S.rule, k = S.k, test_fraction = S.test_fraction, seed = semidpo.seed,
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
