-- The analogue of the paper's Table 6 (appendix 6.8): each committee member's pairwise accuracy
-- against each true dimension, the overall truth and the human labels, on held-out pairs of a world
-- dataset with a fresh seed (the members were trained on seed 100, the default world is seed 0).
--   semidpo run recipes/table6.lua [--set pairs=4000] [--set data_seed=1] [--set members=clip,aesthetic]   (--help-settings)
local semidpo = require "semidpo"
local S = semidpo.settings{
  pairs = 4000,                              -- held-out pairs
  data_seed = 1,                             -- their world seed (the members were trained on seed 100)
  dir = semidpo.optional("string"),          -- dataset directory (default data/world-<pairs>-seed<data_seed>)
  members = { "clip", "aesthetic", "imagereward", "hps", "pickscore" },
  models = semidpo.optional("string"),       -- reward checkpoints (default models/rewards beside recipes/)
}

local pairs_n = S.pairs
local data_seed = S.data_seed
local dir = S.dir or string.format("data/world-%d-seed%d", pairs_n, data_seed)
local names = S.members

local ds = semidpo.world.dataset{ dir = dir, pairs = pairs_n, seed = data_seed }
local committee = semidpo.committee.new{ members = names, models = S.models or (semidpo.recipe_dir .. "/../models/rewards") }
print(tostring(ds) .. "\n" .. tostring(committee))

local rows = committee:accuracy_table(ds, {
  out = "table6",
  title = string.format("Table 6 analogue: pairwise accuracy (%%) of the reward committee on %d held-out pairs (world seed %d)", pairs_n, data_seed),
})
print(string.format("%-12s %8s %10s %9s %7s %7s", "member", "overall", "aesthetics", "alignment", "detail", "human"))
for _, r in ipairs(rows) do
  print(string.format("%-12s %8.2f %10.2f %9.2f %7.2f %7.2f", r.member, r.overall, r.aesthetics, r.alignment, r.detail, r.human))
end
print("wrote table6.md and table6.csv in " .. semidpo.out)
