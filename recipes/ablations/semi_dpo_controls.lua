-- What carries Semi-DPO's gain (issue 16 item 5): eight arms on Semi-DPO's schedule — 1 + iterations
-- rounds of the same steps, each round starting from the previous round's model and using it as the
-- reference — evaluated like Table 1 (paper.lua's evaluation stage: the same suites, prompts and sampling
-- noise) over several seeds, with the label audit of each arm's training labels.
--   A1 iterative Diffusion-DPO on all pairs, human labels    A5 Semi-DPO's selection, random ±1 labels
--   A2 iterative DPO on the clean pairs only                  A6 Semi-DPO itself
--   A3 Semi-DPO's selection, human labels (+1)               A7 Diffusion-DPO, (1 + iterations) × steps, fixed reference (base)
--   A4 Semi-DPO's selection, the world's true overall label  A8 Diffusion-KTO, the same
--
-- The masks. A3–A5 take Semi-DPO's own selection in every round: round i uses exactly the (pair, anchor)
-- entries Semi-DPO's round i selected (from the confidence of Semi-DPO's model i − 1) with the same
-- labelled set, batch order and seed; only the sign of each selected label differs (A3: +1, the human
-- label — pairs are stored winner first by it; A4: sign of winner − loser in the true overall score, a
-- true tie leaves that entry out; A5: a seeded hash of seed, round, pair id and anchor). Each arm's later
-- rounds still start from, and are referenced to, that arm's own previous model. This is the clean
-- control of label *content*: re-selecting with each arm's own model would change which pairs are
-- trained on as well as their labels. Round 1 of a relabelled arm with Semi-DPO's signs reproduces
-- semi_iter1's training log byte for byte (tested). Round 0 is shared: A2–A5's is Semi-DPO's iteration 0, A1's is
-- Diffusion-DPO at steps0 steps; A6/A7/A8 are paper.lua's stages (`semi_iter*`, `dpo`/`kto` with
-- baseline_steps = steps0 + iterations × steps), so with paper.yaml's settings and the same cache
-- nothing is computed twice. The library: recipes/lib/semidpo/controls.lua.
--
-- Outputs (run directory): controls.md/.csv — per suite and pooled over suites, each arm's overall
-- score, Δ vs Semi-DPO (paired over prompts, interval over seeds and prompts), win rate vs Semi-DPO and
-- the permutation p; controls_scores.md/.csv — Table 1's means (oracle dimensions and the committee)
-- with intervals; controls_audit.md/.csv — each arm's training labels against the true dimensions;
-- controls_gain.md — "what carries the gain", generated from the intervals only; tables.json.
--
-- Budget (issue 16: 3 seeds under 45 min on the 2-core machine). Rates from docs/results.md's stage
-- timings (2 threads, idle machine): a DPO step (batch 16) 0.21 s (dpo/kto, 200 steps: 41–43 s), a
-- Semi-DPO round step (clean + pseudo-labelled batch) 0.42 s, the confidence pass 0.067 s a pair
-- (semi_iter2: 165 s for 1,210 pairs and 200 steps), one 100-prompt evaluation 5–9 s. At paper.yaml's
-- settings (2,000 pairs, 200 steps a round) one seed is ≈ 23 min of training (Semi-DPO 6.4 min, A3–A5
-- 3 × 2.9 min, A1 2.2, A2 1.5, A7/A8 2 × 2.2) plus ≈ 3.5 min of evaluation: ≈ 80 min for 3 seeds.
-- The cut: steps0 = steps = 80 (the quickstart's; total 240 per arm) and 1,000 pairs (≈ 440 clean,
-- ≈ 560 noisy; halves the confidence passes), keeping all eight arms, the three suites and 100 prompts
-- each (the intervals are what this recipe is for, and evaluation is the cheap part). Per seed then:
-- data 0.3 min, Semi-DPO 3.1 (iteration 0 20 s, iterations 1–2 2 × 82 s), A3–A5 3.8, A1 1.0, A2 0.7,
-- A7/A8 1.8, evaluations of 9 models × 3 suites 2.3–4 min: ≈ 13–14.5 min, ≈ 40–44 min for 3 seeds on a
-- quiet machine (fewer if paper.lua already ran the same settings into the same cache; much more while
-- other jobs share the cores). Least informative to cut next: A8 (`--set arms=A1,A2,A3,A4,A5,A7`, −1.5 min
-- a seed), then a suite.
--
--   semidpo run recipes/ablations/semi_dpo_controls.lua --threads 2 [--set seeds=0,1,2] [--set cache=DIR]
--   paper-size arms, sharing paper.lua's stages: … --set pairs=2000 --set steps=200 --set steps0=200 --set warmup=30
local semidpo = require "semidpo"
local R = require "semidpo.recipes"
local C = require "semidpo.controls"

local S = semidpo.settings(semidpo.recipe_dir .. "/semi_dpo_controls.yaml")
print(string.format("semidpo %s — %d threads, BLAS %s", semidpo.version, semidpo.threads, semidpo.blas.core))
print(semidpo.yaml.dump{ settings = S })

-- Checks the lists before any work.
assert(#S.seeds >= 1, "setting 'seeds': give at least one seed (--set seeds=0,1,2)")
local seen = {}
for _, s in ipairs(S.seeds) do
  assert(math.type(s) == "integer", "setting 'seeds': expected integers, got " .. tostring(s))
  assert(not seen[s], "setting 'seeds': seed " .. s .. " is listed twice")
  seen[s] = true
end
local wanted = { A6 = true }
for _, id in ipairs(S.arms) do
  assert(C.BY_ID[id], "setting 'arms': unknown arm '" .. tostring(id) .. "' (known: A1, A2, A3, A4, A5, A6, A7, A8)")
  wanted[id] = true
end
local arms = {}
for _, a in ipairs(C.ARMS) do if wanted[a.id] then arms[#arms + 1] = a end end
local listed = {}
for _, suite in ipairs(S.suites) do
  assert(suite == "pickapic" or suite == "hpsv2" or suite == "parti",
         "setting 'suites': Table 1's suites are pickapic, hpsv2 and parti, got '" .. tostring(suite) .. "'")
  assert(not listed[suite], "setting 'suites': '" .. suite .. "' is listed twice")
  listed[suite] = true
end
assert(S.iterations >= 1, "setting 'iterations' must be ≥ 1 (the relabelled arms change Semi-DPO's rounds 1 …)")

-- The library's settings table for one seed (plain fields, as paper.lua's P.config).
local function config(seed)
  local c = {}
  for k, v in pairs(S) do c[k] = v end
  c.seeds, c.arms, c.resamples, c.permutation_resamples = nil, nil, nil, nil
  c.seed = seed
  return c
end

local metrics = { "alignment", "aesthetics", "detail", "overall" }
for _, m in ipairs(S.committee) do metrics[#metrics + 1] = m end
-- The comparison groups: the suites' prompts pooled ("all suites", when there are several), then each suite.
local pooled = #S.suites > 1 and "all suites" or S.suites[1]
local groups = { pooled }
if #S.suites > 1 then for _, s in ipairs(S.suites) do groups[#groups + 1] = s end end

-- scores[label][group][k]: per-prompt record {metric = {score per prompt}} of seed k ("all suites": the
-- suites' prompts one after another); audits[id][k]: C.audit's counts.
local scores, audits = {}, {}
local labels = { "Base" }
for _, a in ipairs(arms) do labels[#labels + 1] = a.label end
for _, l in ipairs(labels) do scores[l] = {} for _, g in ipairs(groups) do scores[l][g] = {} end end
for _, a in ipairs(arms) do audits[a.id] = {} end

local t_start = semidpo.clock()
for k, seed in ipairs(S.seeds) do
  local t0 = semidpo.clock()
  local c = config(seed)
  local semi = C.semi(c)
  local models = { { "Base", c.base } }
  for _, a in ipairs(arms) do
    local rounds = C.arm(c, a.id, semi)
    models[#models + 1] = { a.label, rounds[#rounds] }
    audits[a.id][k] = C.audit(c, a.id, rounds, semi)
  end
  for _, entry in ipairs(models) do
    local all = {}
    for _, m in ipairs(metrics) do all[m] = {} end
    for _, suite in ipairs(S.suites) do
      local per_prompt = R.evaluate(c, entry[2], suite).outputs.per_prompt
      scores[entry[1]][suite][k] = per_prompt
      for _, m in ipairs(metrics) do
        assert(per_prompt[m], "evaluation of " .. entry[1] .. " on " .. suite .. " has no metric " .. m)
        for _, x in ipairs(per_prompt[m]) do all[m][#all[m] + 1] = x end
      end
    end
    if #S.suites > 1 then scores[entry[1]][pooled][k] = all end
  end
  print(string.format("== seed %d in %.1f min (%.1f min so far)", seed, (semidpo.clock() - t0) / 60, (semidpo.clock() - t_start) / 60))
end

local semi_label = C.BY_ID.A6.label
local boot = { resamples = S.resamples, seed = semidpo.seed }
local function opts(t)
  for k, v in pairs(boot) do t[k] = v end
  return t
end
local function overall(label, group)
  local out = {}
  for k, r in ipairs(scores[label][group]) do out[k] = r.overall end
  return out
end
-- Δ overall of `a` − `b` (paired over prompts) with its interval, win rate and permutation p.
local function contrast(a, b, group)
  local va, vb = overall(a, group), overall(b, group)
  return semidpo.stats.bootstrap(opts{ values = va, paired_with = vb }),
         semidpo.stats.win_rate(opts{ values = va, paired_with = vb }),
         semidpo.stats.permutation_test{ values = va, paired_with = vb, resamples = S.permutation_resamples, seed = semidpo.seed }.p
end

local heading = string.format("%d seed(s) (%s), %d pairs, steps per round %d (round 0: %d), %d rounds, %d prompts per suite, DDIM-%d, guidance %g",
                              #S.seeds, table.concat(S.seeds, ", "), S.pairs, S.steps, S.steps0, S.iterations + 1, S.eval_prompts,
                              S.eval_steps, S.guidance)

-- 1. Controls: overall, Δ vs Semi-DPO, win rate, p — pooled over suites, then per suite.
local rows, deltas = {}, {}
for _, g in ipairs(groups) do
  deltas[g] = {}
  for _, l in ipairs(labels) do
    local m = semidpo.stats.bootstrap(opts{ values = overall(l, g) })
    if l == semi_label then
      rows[#rows + 1] = { g, l, m, false, false, false }
    else
      local d, w, p = contrast(l, semi_label, g)
      deltas[g][l] = { d = d, p = p }
      rows[#rows + 1] = { g, l, m, d, w, p }
    end
  end
end
local controls = semidpo.eval.table{
  title = "Controls: overall score (MPS role) of each arm, and vs " .. semi_label .. " (paired over prompts; 95% intervals over seeds and prompts) — " .. heading,
  path = "controls", columns = { "suite", "arm", "overall", "Δ overall vs A6", "win rate vs A6", "p (permutation)" },
  rows = rows, decimals = 3, interval = "range", unit = "prompts" }

-- 2. Table 1's means per arm (oracle dimensions, then the committee), with intervals.
local mrows = {}
for _, g in ipairs(groups) do
  for _, l in ipairs(labels) do mrows[#mrows + 1] = { g, l, seeds = scores[l][g] } end
end
local means = semidpo.eval.means_table(opts{
  title = "Controls: mean scores per arm (Table 1's metrics; 95% intervals over seeds and prompts) — " .. heading,
  path = "controls_scores", columns = { "suite", "arm" }, metrics = metrics, rows = mrows, interval = "pm",
  headers = { overall = "overall (MPS role)" } })

-- 3. The label audit: each arm's training labels (pooled over rounds; mean over seeds) vs the truth.
local arows = {}
local audit_means = {}
for _, a in ipairs(arms) do
  audit_means[a.id] = {}
  for _, part in ipairs{ "all", "noisy" } do
    local sum = { labels = 0, alignment = 0, aesthetics = 0, detail = 0, overall = 0, human = 0 }
    local n = 0
    for k = 1, #S.seeds do
      local acc = audits[a.id][k][part]
      if acc.labels > 0 then
        n = n + 1
        sum.labels = sum.labels + acc.labels
        for _, d in ipairs{ "alignment", "aesthetics", "detail", "overall", "human" } do sum[d] = sum[d] + acc[d] / acc.labels end
      end
    end
    if n > 0 then
      local row = { a.label, part == "all" and "all training labels" or "labels on selected noisy pairs", sum.labels // n }
      for _, d in ipairs{ "alignment", "aesthetics", "detail", "overall", "human" } do row[#row + 1] = 100 * sum[d] / n end
      arows[#arows + 1] = row
      audit_means[a.id][part] = { overall = 100 * sum.overall / n, human = 100 * sum.human / n }
    end
  end
end
local audit = semidpo.eval.table{
  title = "Controls: label audit — each arm's training labels (pair × anchor, pooled over rounds, mean over seeds) vs the world's true dimensions (%; a true tie counts ½)",
  path = "controls_audit", columns = { "arm", "which labels", "labels per seed", "alignment", "aesthetics", "detail", "overall", "= human label" },
  rows = arows, decimals = 1 }

-- 4. What carries the gain, read from the intervals only (pooled over suites).
local function verdict(d)
  if d.lo > 0 then return "above" elseif d.hi < 0 then return "below" else return "within" end
end
local function fmt(d) return string.format("Δ = %+.3g [%+.3g, %+.3g]", d.mean, d.lo, d.hi) end
local g = pooled
local lines = { "# What carries Semi-DPO's gain", "",
                "Generated from the 95% intervals of the overall score (MPS role), paired over the " ..
                "prompts of " .. (#S.suites > 1 and "all suites, " or pooled .. ", ") .. heading .. ". An interval that contains 0 is read as " ..
                "\"no detectable difference\", never as a direction; with few seeds the intervals span " ..
                "roughly the range of the per-seed values (docs/method.md \"Uncertainty\").", "" }
local said = {
  A1 = { above = "the schedule alone (iterative DPO on every pair with its human label, reference refreshed each round) does better than Semi-DPO",
         within = "the schedule alone (iterative DPO on every pair with its human label, reference refreshed each round) matches Semi-DPO within the interval: the schedule alone could account for the gain",
         below = "the schedule alone (iterative DPO on every pair with its human label, reference refreshed each round) falls short of Semi-DPO: the schedule does not carry all of the gain" },
  A2 = { above = "iterating on the clean pairs alone does better than Semi-DPO: the pseudo-labelled noisy pairs cost more than they give",
         within = "iterating on the clean pairs alone matches Semi-DPO within the interval: the pseudo-labelled noisy pairs add nothing detectable",
         below = "iterating on the clean pairs alone falls short of Semi-DPO: the pseudo-labelled noisy pairs add to the gain" },
  A3 = { above = "the human labels on Semi-DPO's selected pairs do better than its pseudo-labels: the pseudo-labels' content is not what carries the gain",
         within = "the human labels on Semi-DPO's selected pairs do as well as its pseudo-labels (no detectable difference): pseudo-label content is not shown to matter",
         below = "the human labels on Semi-DPO's selected pairs do worse than its pseudo-labels: pseudo-label content matters" },
  A4 = { above = "the world's true overall labels on the selected pairs do better: more accurate labels would add to the gain (the ceiling)",
         within = "even the world's true overall labels on the selected pairs do no detectably better: label accuracy on these pairs is not shown to be the bottleneck",
         below = "the world's true overall labels on the selected pairs do worse than the pseudo-labels: agreement with the truth is not what makes the pseudo-labels work" },
  A5 = { above = "random labels on the selected pairs do better than the pseudo-labels",
         within = "random labels on the selected pairs do as well as the pseudo-labels (no detectable difference): label content on these pairs is not shown to matter — what is left is which pairs are added, their images, and the schedule",
         below = "random labels on the selected pairs do worse than the pseudo-labels: the label content matters" },
  A7 = { above = "compute-matched Diffusion-DPO with a fixed reference does better than Semi-DPO",
         within = "compute-matched Diffusion-DPO with a fixed reference matches Semi-DPO",
         below = "compute-matched Diffusion-DPO with a fixed reference falls short of Semi-DPO: the extra steps alone do not explain the gain" },
  A8 = { above = "compute-matched Diffusion-KTO with a fixed reference does better than Semi-DPO",
         within = "compute-matched Diffusion-KTO with a fixed reference matches Semi-DPO",
         below = "compute-matched Diffusion-KTO with a fixed reference falls short of Semi-DPO: the extra steps alone do not explain the gain" },
}
local base_d = deltas[g]["Base"]
if base_d then
  lines[#lines + 1] = string.format("- Base vs A6: %s, p = %.3g — Semi-DPO's gain over the base model is %s.", fmt(base_d.d), base_d.p,
                                    verdict(base_d.d) == "below" and "resolved" or "not resolved at this resolution")
end
for _, a in ipairs(arms) do
  local d = deltas[g][a.label]
  if d and said[a.id] then
    local au = audit_means[a.id].noisy
    local note = au and string.format(" (its selected-pair labels agree with the true overall on %.1f%%)", au.overall) or ""
    lines[#lines + 1] = string.format("- %s vs A6: %s, p = %.3g: %s%s.", a.label, fmt(d.d), d.p, said[a.id][verdict(d.d)], note)
  end
end
if audit_means.A6 and audit_means.A6.noisy then
  lines[#lines + 1] = string.format("- Semi-DPO's pseudo-labels on the selected pairs agree with the true overall on %.1f%% and with the human label on %.1f%%.",
                                    audit_means.A6.noisy.overall, audit_means.A6.noisy.human)
end
-- Two contrasts between controls: the reference refresh (A1 − A7: same data and steps) and label accuracy
-- on the same mask (A4 − A3).
for _, pair in ipairs{ { "A1", "A7", "refreshing the reference each round (same data, same total steps)" },
                       { "A4", "A3", "true instead of human labels on the same selected pairs" } } do
  local a, b = C.BY_ID[pair[1]], C.BY_ID[pair[2]]
  if wanted[a.id] and wanted[b.id] then
    local d, _, p = contrast(a.label, b.label, g)
    local v = verdict(d)
    lines[#lines + 1] = string.format("- %s − %s (%s): %s, p = %.3g — %s.", a.id, b.id, pair[3], fmt(d), p,
                                      v == "within" and "no detectable effect" or (v == "above" and "it helps" or "it hurts"))
  end
end
lines[#lines + 1] = ""
local gain = table.concat(lines, "\n")
semidpo.write_text("controls_gain.md", gain)

local parts = {}
for _, t in ipairs{ controls, means, audit } do
  local f = assert(io.open(t.markdown))
  parts[#parts + 1] = f:read("a")
  f:close()
end
parts[#parts + 1] = gain
local report = table.concat(parts, "\n")
semidpo.write_text("controls_report.md", report)
print(report)
print(string.format("semi_dpo_controls.lua finished in %.1f min; tables in %s (controls*.md/.csv, tables.json, controls_gain.md)",
                    (semidpo.clock() - t_start) / 60, semidpo.out))
