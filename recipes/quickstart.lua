-- Quickstart: exercises the host until the engine lands — reads the YAML config, prints a table,
-- shows a progress bar, and writes a result file (and manifest.yaml) into the run directory.
local semidpo = require "semidpo"

-- Settings: the YAML file, overridden by --set key=value.
local config = semidpo.yaml.load(semidpo.recipe_dir .. "/quickstart.yaml")
for key, value in pairs(semidpo.args) do config[key] = value end

-- The timestep anchors of the confidence analysis (50, 150, …, 950) and a toy per-anchor
-- threshold rule: percentile rises by 10 for the noisy late-timestep intervals.
local rows = {}
for i = 0, config.anchors.count - 1 do
  local t = config.anchors.first + i * config.anchors.step
  local percentile = t > 650 and config.threshold_percentile + 10 or config.threshold_percentile
  rows[#rows + 1] = {anchor = t, interval = string.format("[%d, %d)", t - 50, t + 50), percentile = percentile}
end

print(string.format("semidpo %s — %s, seed %d, %d BLAS threads (%s kernels)",
  semidpo.version, config.experiment, semidpo.seed, semidpo.threads, semidpo.blas.core))
print(string.format("committee (%d): %s", #config.committee, table.concat(config.committee, ", ")))
print()
print("| anchor | interval    | percentile |")
print("|-------:|-------------|-----------:|")
for _, r in ipairs(rows) do
  print(string.format("| %6d | %-11s | %10d |", r.anchor, r.interval, r.percentile))
end
print()

-- A progress bar over a small busy loop (a stand-in for training steps).
local progress = semidpo.progress(config.steps, "warm-up")
local acc = 0.0
for step = 1, config.steps do
  for k = 1, 50000 do acc = acc + math.sin(step * k) end
  progress:advance(1)
end
progress:finish()

-- Results: a YAML file and a Markdown table, both listed in manifest.yaml.
semidpo.write_text("thresholds.yaml", semidpo.yaml.dump({experiment = config.experiment, anchors = rows}))
local lines = {"| anchor | percentile |", "|---:|---:|"}
for _, r in ipairs(rows) do lines[#lines + 1] = string.format("| %d | %d |", r.anchor, r.percentile) end
semidpo.write_text("thresholds.md", table.concat(lines, "\n") .. "\n")
print("wrote " .. semidpo.path("thresholds.yaml") .. " and thresholds.md")
