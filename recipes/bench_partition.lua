-- Benchmark of stage 1 at Pick-a-Pic scale: times semidpo.committee.partition_scores (wall, CPU, peak RSS)
-- and, with --set python=true, the authors' rule in plain Python on the same file, comparing the id lists.
--
--   semidpo run recipes/bench_partition.lua --set scores=/tmp/tab_scores.jsonl [--set repeats=3] [--set python=true]
local semidpo = require "semidpo"
local timing = require "semidpo.timing"
local args = semidpo.settings{
  scores = semidpo.optional("string"),   -- required: the per-pair score JSONL (docs/formats.md)
  repeats = 3,
  out_dir = "partition",                 -- inside the run directory
  tie_tolerance = 1e-6,
  python = false,                        -- also run bench/authors_partition.py and compare the id lists
}

local scores = args.scores or error("--set scores=PATH is required (the per-pair score JSONL; see docs/formats.md)")
local repeats = args.repeats
local out = args.out_dir
local tolerance = args.tie_tolerance

-- The Swift stage, `repeats` times; peak RSS over all repetitions after resetting the mark.
local timed = timing.repeated(repeats, function()
  return semidpo.committee.partition_scores{ path = scores, out = out, tie_tolerance = tolerance }
end)
local report, walls, cpus, best = timed.result, timed.walls, timed.cpus, timed.best
local peak, baseline = timed.peak, timed.baseline

print(string.format("partition_scores: %d pairs × %d members (%s), %d clean (%.4f), %d held out, %d noisy",
  report.total, #report.members, table.concat(report.members, ", "), report.clean, report.clean_fraction,
  report.clean_test, report.noisy))
print(string.format("best %.3f s wall of %d; peak RSS %.0f MiB (baseline %.0f MiB)", best, repeats, peak, baseline))

local results = {
  scores = scores, pairs = report.total, members = report.members, clean = report.clean,
  clean_fraction = report.clean_fraction, wall_seconds = walls, cpu_seconds = cpus, best_wall_seconds = best,
  peak_rss_mib = peak, baseline_rss_mib = baseline, outputs = report.paths,
}

-- The Python reference (bench/authors_partition.py) on the same file, compared with the Swift id lists.
if args.python then
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local script = semidpo.recipe_dir .. "/../bench/authors_partition.py"
  local dir = report.paths.clean:match("^(.*)/clean%.json$")
  local cmd = string.format("python3 %s --scores %s --compare %s 2>&1", q(script), q(scores), q(dir))
  local load = timing.loadavg()
  local t0 = semidpo.clock()
  local p = assert(io.popen(cmd))
  local text = p:read("a")
  local ok = p:close()
  local wall = semidpo.clock() - t0
  io.write(text)
  if not ok then error("the Python reference failed:\n" .. text) end
  local py = tonumber(text:match("clean %([%d.]+%), ([%d.]+) s"))
  local checks, passed = 0, 0
  for verdict in text:gmatch("identical to reference[^\n]*: (%a+)") do
    checks = checks + 1
    if verdict == "True" then passed = passed + 1 end
  end
  local same = checks == 2 and passed == 2
  print(string.format("python reference: %.2f s (loop), %.2f s with interpreter start [load %s]; swift best %.3f s → %.1f× faster",
    py, wall, load, best, py / best))
  if not same then error("Swift and Python clean/noisy ids differ (see above)") end
  results.python_seconds, results.python_wall_seconds, results.speedup, results.identical = py, wall, py / best, true
end

semidpo.write_text("bench_partition.yaml", semidpo.yaml.dump(results))
