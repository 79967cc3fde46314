-- Benchmark of pseudo-label selection at Pick-a-Pic scale: times semidpo.pseudolabel.select_file (wall, CPU,
-- peak RSS) and, with --set python=true, the authors' selection in Python + numpy, comparing the label files byte for byte.
--
--   semidpo run recipes/bench_select.lua --set confidence=/tmp/tab_conf --set test_confidence=/tmp/tab_conf_test \
--     --set clean=/tmp/tab_part/clean.json [--set past=labels1.json] [--set values=80] [--set python=true]
local semidpo = require "semidpo"
local timing = require "semidpo.timing"
local args = semidpo.settings{
  confidence = semidpo.optional("string"),       -- required: confidence shards (file or directory; docs/formats.md)
  test_confidence = semidpo.optional("string"),  -- the clean test split's confidences (enables the accuracy guard)
  clean = semidpo.optional("string"),            -- JSON id list of clean pairs
  past = semidpo.optional("list"),               -- earlier iterations' label files, later files win: a.json,b.json
  values = { 80.0 },                             -- one value, or one per anchor: 80,80,90
  mode = "percentile",                           -- percentile, threshold or top_k
  repeats = 3,
  labels = "labels.json",                        -- the label file, inside the run directory
  python = false,                                -- also run bench/authors_select.py and compare byte for byte
}

local confidence = args.confidence or error("--set confidence=DIR_OR_FILE is required (confidence shards; see docs/formats.md)")
local repeats = args.repeats
local mode = args.mode
local out = args.labels
local values = args.values
local past = args.past

-- The Swift stage, `repeats` times (default accuracy guard when test_confidence is given).
local timed = timing.repeated(repeats, function()
  return semidpo.pseudolabel.select_file{ confidence = confidence, mode = mode, values = values, past = past,
                                          clean = args.clean, test_confidence = args.test_confidence, out = out }
end)
local report, walls, cpus, best = timed.result, timed.walls, timed.cpus, timed.best
local peak, baseline = timed.peak, timed.baseline

io.write(report.summary)
print(string.format("select_file: %d pairs × %d anchors in, %d labelled pairs out; best %.3f s wall of %d; peak RSS %.0f MiB (baseline %.0f MiB)",
  report.pairs_in, #report.anchors, report.pairs_out, best, repeats, peak, baseline))

local results = {
  confidence = confidence, pairs_in = report.pairs_in, pairs_out = report.pairs_out, per_anchor = report.per_anchor,
  wall_seconds = walls, cpu_seconds = cpus, best_wall_seconds = best, peak_rss_mib = peak, baseline_rss_mib = baseline,
  labels = report.out,
}

-- The Python reference (bench/authors_select.py) on the same inputs; its labels must equal ours byte for byte.
if args.python then
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local script = semidpo.recipe_dir .. "/../bench/authors_select.py"
  local vals = values
  local parts = { "python3", q(script), "--confidence", q(confidence), "--mode", mode, "--values" }
  for _, v in ipairs(vals) do parts[#parts + 1] = tostring(v) end
  if past then parts[#parts + 1] = "--past"; for _, p in ipairs(past) do parts[#parts + 1] = q(p) end end
  if args.clean then parts[#parts + 1] = "--clean " .. q(args.clean) end
  if args.test_confidence then parts[#parts + 1] = "--test_confidence " .. q(args.test_confidence) end
  local pyOut = semidpo.path("python_labels.json")
  parts[#parts + 1] = "--out " .. q(pyOut) .. " --compare " .. q(report.out) .. " 2>&1"
  local load = timing.loadavg()
  local t0 = semidpo.clock()
  local p = assert(io.popen(table.concat(parts, " ")))
  local text = p:read("a")
  local ok = p:close()
  local wall = semidpo.clock() - t0
  io.write(text)
  if not ok then error("the Python reference failed or its labels differ:\n" .. text) end
  local py, pyPeak = text:match("out, ([%d.]+) s, peak RSS (%d+) MiB")
  py, pyPeak = tonumber(py), tonumber(pyPeak)
  local same = text:match("swift output byte%-identical: True") ~= nil
  print(string.format("python reference: %.2f s, peak RSS %d MiB (%.2f s with interpreter start) [load %s]; swift best %.3f s → %.1f× faster",
    py, pyPeak, wall, load, best, py / best))
  if not same then error("Swift and Python label files are not byte-identical (see above)") end
  os.remove(pyOut)
  results.python_seconds, results.python_peak_rss_mib, results.speedup, results.byte_identical = py, pyPeak, py / best, true
end

semidpo.write_text("bench_select.yaml", semidpo.yaml.dump(results))
