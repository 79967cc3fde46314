-- Timing helpers shared by the benchmark recipes: load average, and a stage run `repeats` times with
-- wall time, CPU time and peak resident memory (the mark reset first, so the peak is this stage's).
--   local timing = require "semidpo.timing"
--   local t = timing.repeated(3, function(i) return semidpo.committee.partition_scores{...} end)
--   -- t.result (the last run's), t.walls, t.cpus, t.best, t.peak, t.baseline (MiB)
local semidpo = require "semidpo"
local timing = {}

-- "1.20 0.95 0.80", or "?" where /proc/loadavg is unavailable. The cores are shared, so every figure
-- is labelled with it.
function timing.loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return "?" end
  local l = f:read("l"); f:close()
  return l:match("^(%S+ %S+ %S+)")
end

function timing.repeated(repeats, run)
  assert(math.type(repeats) == "integer" and repeats >= 1, "--set repeats=N needs an integer ≥ 1")
  semidpo.reset_peak_rss()
  local t = { walls = {}, cpus = {}, baseline = semidpo.peak_rss_mb() }
  for i = 1, repeats do
    local load = timing.loadavg()
    local t0, c0 = semidpo.clock(), semidpo.cpu_seconds()
    t.result = run(i)
    t.walls[i], t.cpus[i] = semidpo.clock() - t0, semidpo.cpu_seconds() - c0
    print(string.format("run %d: %.3f s wall, %.3f s CPU [load %s]", i, t.walls[i], t.cpus[i], load))
  end
  t.peak = semidpo.peak_rss_mb()
  t.best = math.min(table.unpack(t.walls))
  return t
end

return timing
