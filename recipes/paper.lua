-- The paper's experiments on the synthetic world, end to end: Tables 1–7 with 95% intervals, the claim checker
-- (claims.md: (a)–(e) hold / fail / inconclusive from the intervals), the Figure-3 sample grid and the label-noise
-- audit, into one run directory (table*.md/.csv, claims.md, one tables.json, figure3.png, audit*.md/.csv).
-- `--set seeds=0,1,2` runs the whole pipeline once per seed (world pairs, committee split, training, sampling noise
-- all drawn from it; each seed's stages cached apart) and pools the seeds in every interval; the default is the
-- run's --seed alone.
-- Every trained model and every evaluation is a cached stage (recipes/lib/semidpo/recipes.lua, `semidpo.stage`):
-- a second run, or recipes/tables/table*.lua, loads them; an interrupted run resumes at the first
-- unfinished stage. Settings: recipes/paper.yaml (estimated time per stage at its end), or --set (--help-settings lists them).
--   semidpo run recipes/paper.lua --threads 2 --set seeds=0,1,2        # the documented run (estimate: paper.yaml)
--   semidpo run recipes/paper.lua --threads 2 [--set cache=DIR] [--set pairs=300 --set steps=4 …]
local semidpo = require "semidpo"
local P = require "semidpo.paper"
local c = P.config()
print(string.format("semidpo %s — training seeds %s, %d threads, BLAS %s", semidpo.version, table.concat(c.seeds, ","), semidpo.threads, semidpo.blas.core))
print(semidpo.yaml.dump{ settings = c })
local t_start = semidpo.clock()

-- In order of need: the four main models and their evaluations first, then the ablations.
local done = {}
local function step(name, f)
  local t0 = semidpo.clock()
  done[#done + 1] = { name, f(c) }
  print(string.format("== %s in %.1f min (%.1f min so far)", name, (semidpo.clock() - t0) / 60, (semidpo.clock() - t_start) / 60))
end
step("Table 1", P.table1)
step("Table 2", P.table2)
step("Table 3", P.table3)
step("Table 4", P.table4)
step("Over seeds", P.seeds_table)
step("Table 7", P.table7)
step("Table 5", P.table5)
step("Table 6", P.table6)
step("Claims", P.claims)
step("Figure 3", P.figure3)
if c.table8 then step("Table 8", P.table8) end   -- online Semi-DPO (issue 19): off by default, recipes/tables/table8.lua (paper.yaml)
local audit = { P.audit(c) }

for _, d in ipairs(done) do
  for k = 2, #d do
    if type(d[k]) == "table" and d[k].markdown then P.show(d[k]) end
  end
end
P.show(table.unpack(audit))
print(string.format("paper.lua finished in %.1f min; tables and claims.md in %s (tables.json), Figure 3 in figure3.png",
                    (semidpo.clock() - t_start) / 60, semidpo.out))
