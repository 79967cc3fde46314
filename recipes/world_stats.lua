-- World statistics: builds (or reopens) a preference dataset of the synthetic world and reports how
-- noisy its holistic labels are against the known per-dimension truth (the paper's section 3.2).
--   semidpo run recipes/world_stats.lua [--set pairs=100000] [--set dir=data/world-100k]   (--help-settings)
local semidpo = require "semidpo"
local S = semidpo.settings{
  pairs = 20000,                   -- pairs drawn from the world (seed = --seed)
  dir = semidpo.optional("string"),  -- dataset directory (default data/world-<pairs>-seed<seed>)
}

local pairs_n = S.pairs
local dir = S.dir or ("data/world-" .. pairs_n .. "-seed" .. semidpo.seed)

local t0 = semidpo.clock()
local ds = semidpo.world.dataset{ dir = dir, pairs = pairs_n, seed = semidpo.seed }
local built = semidpo.clock() - t0
print(string.format("%s (ready in %.1f s)", tostring(ds), built))

local st = ds:statistics()
print(st.summary)

local lines = {
  "# World statistics", "",
  string.format("Dataset: `%s`, %d pairs, seed %d.", dir, st.pairs, semidpo.seed), "",
  "| statistic | value |", "|---|---|",
  string.format("| ties dropped | %.1f%% (%d of %d drawn) |", 100 * st.tie_rate, st.ties, st.candidates),
}
for _, k in ipairs{ "alignment", "aesthetics", "detail" } do
  lines[#lines + 1] = string.format("| conflict rate p_c,k, %s | %.1f%% |", k, 100 * st.conflict[k])
end
lines[#lines + 1] = string.format("| label agrees with the overall truth | %.1f%% |", 100 * st.overall_agreement)
lines[#lines + 1] = string.format("| label opposes at least one dimension | %.1f%% |", 100 * st.any_conflict)
semidpo.write_text("world_stats.md", table.concat(lines, "\n") .. "\n")
semidpo.write_text("world_stats.yaml", semidpo.yaml.dump(st))
ds:contact_sheet("contact_sheet.png")
print("wrote world_stats.md, world_stats.yaml, contact_sheet.png in " .. semidpo.out)
