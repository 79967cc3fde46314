-- Online Semi-DPO: the paper's §6.7 proposal, built on the world and checked against its truth.
--   cold start   DPO on the committee's clean pairs (Semi-DPO's iteration 0), from the base model;
--   round r      model r−1 samples two images for each of P fresh training prompts (disjoint from every
--                evaluation suite); the implicit reward models of rounds r−1 and r−2 (the couples
--                (model, reference) of those rounds; round 1 has only the cold start's) score every pair
--                per timestep anchor; an ensemble combiner ("agree" or "mean") gives one z; per-anchor
--                percentile thresholds with the accuracy guard on the clean test pairs select self-labels;
--                model r = model r−1 trained on clean + self-labelled pairs (the composite objective);
--                the self-labels are audited against the oracle's truth per dimension, beside what the
--                world's simulated raters would have said about the same pairs.
-- Then (compare = true) online vs offline Semi-DPO vs Diffusion-DPO at equal training pairs, evaluated like
-- Table 1 (same prompts, same noise), and the ablations: ensemble vs model i alone, rounds, pairs per round.
-- Each round prints and records the wall time of its phases (generate, confidence, select, train, audit).
--   semidpo run recipes/online_semi_dpo.lua [--set rounds=2] [--set round_pairs=1000] [--set ablations=none] …
local semidpo = require "semidpo"
local timing = require "semidpo.timing"

local S = semidpo.settings(semidpo.recipe_dir .. "/online_semi_dpo.yaml")
local function check(ok, message) if not ok then error(message, 2) end end
check(S.reference == "previous" or S.reference == "base", "setting 'reference' must be \"previous\" or \"base\", got '" .. S.reference .. "'")
check(S.ensemble == "pair" or S.ensemble == "alone", "setting 'ensemble' must be \"pair\" or \"alone\", got '" .. S.ensemble .. "'")
check(S.combine == "agree" or S.combine == "mean", "setting 'combine' must be \"agree\" or \"mean\", got '" .. S.combine .. "'")
check(S.rounds >= 1 and S.round_pairs >= 1, "settings 'rounds' and 'round_pairs' must be ≥ 1")
local ablate = {}
for _, a in ipairs(S.ablations) do
  check(a == "ensemble" or a == "rounds" or a == "pairs" or a == "none",
        "setting 'ablations': unknown ablation '" .. tostring(a) .. "' (known: ensemble, rounds, pairs, none)")
  ablate[a] = true
end
print(string.format("semidpo %s — seed %d, %d threads, BLAS %s, load %s", semidpo.version, semidpo.seed, semidpo.threads,
                    semidpo.blas.core, timing.loadavg()))
local t_start = semidpo.clock()

-- Data, the multi-reward consensus and the base model.
local data = semidpo.world.dataset{ dir = S.data_dir ~= "" and S.data_dir or string.format("data/online-%d-seed%d", S.pairs, semidpo.seed),
                                    pairs = S.pairs, seed = semidpo.seed }
local committee = semidpo.committee.new{ members = S.committee }
local split = committee:partition(data, { rule = "unanimous", test_fraction = S.test_fraction, seed = semidpo.seed })
local clean, test, noisy = split:clean(), split:test(), split:noisy()
print(string.format("consensus: %d clean pairs, %d clean test pairs, %d noisy pairs", clean:count(), test:count(), noisy:count()))
local base = semidpo.diffusion.load(S.base):freeze()
local guard = { floor = S.guard.floor, raise_to = S.guard.raise_to }

-- Work done by each method: optimizer steps, pair gradients, wall and CPU seconds.
local function meter() return { steps = 0, pairs = 0, wall = 0, cpu = 0 } end
local function timed(m, f)
  local w, c = semidpo.clock(), semidpo.cpu_seconds()
  local r = table.pack(f())
  m.wall, m.cpu = m.wall + semidpo.clock() - w, m.cpu + semidpo.cpu_seconds() - c
  return table.unpack(r, 1, r.n)
end

-- DPO with the shared optimiser settings; `extra` adds or overrides options.
local function train(m, policy, reference, extra)
  local opts = { policy = policy, reference = reference, pairs = clean, beta = S.beta, lr = S.lr, batch_size = S.batch_size,
                 warmup = S.warmup }
  for k, v in pairs(extra) do opts[k] = v end
  local summary = semidpo.dpo.train(opts)
  m.steps = m.steps + opts.steps
  m.pairs = m.pairs + opts.steps * S.batch_size * (opts.unlabeled and 2 or 1)
  return summary
end

-- Cold start: DPO on the clean set (Semi-DPO's iteration 0), shared by the online and offline runs.
local cold_meter = meter()
local cold = base:clone()
timed(cold_meter, function() train(cold_meter, cold, base, { steps = S.steps0, log = "cold_start/train" }) end)
cold:freeze()
cold:save("cold_start/model.safetensors")

-- The training prompts of round r with P pairs per round: prompts (r−1)·P + 1 … r·P of one fixed list.
local function round_prompts(r, P)
  local all = semidpo.world.training_prompts(r * P, S.prompt_seed)
  return table.move(all, (r - 1) * P + 1, r * P, 1, {})
end

local function select_labels(conf, conf_test)
  return semidpo.pseudolabel.select{ confidence = conf, test_confidence = conf_test, mode = "percentile", values = S.percentile,
                                     guard = guard }
end

-- One online run: `v` = {name, rounds, pairs, ensemble, audit}. Returns the models of rounds 0…R, the
-- per-round timings and audit summaries, and the run's meter (cold start included).
local function online(v)
  local m = meter()
  m.steps, m.pairs, m.wall, m.cpu = cold_meter.steps, cold_meter.pairs, cold_meter.wall, cold_meter.cpu
  local models, refs, rounds = { [0] = cold }, { [0] = base }, {}
  for r = 1, v.rounds do
    local dir = string.format("%s/round%d/", v.name, r)
    local prev, prev_ref = models[r - 1], refs[r - 1]
    local t = { number = r, load = timing.loadavg() }
    local cpu0 = semidpo.cpu_seconds()
    local c0 = semidpo.clock()
    local gen = timed(m, function()
      return semidpo.online.generate{ model = prev, prompts = round_prompts(r, v.pairs), seed = semidpo.seed + r,
                                      first_id = (r - 1) * v.pairs, steps = S.generate.steps, guidance = S.generate.guidance,
                                      eta = S.generate.eta }
    end)
    t.generate = semidpo.clock() - c0
    -- The labellers: round r−1's implicit reward model, and round r−2's with the §6.7 ensemble.
    local couples = { { model = prev, reference = prev_ref } }
    if v.ensemble == "pair" and r >= 2 then couples[2] = { model = models[r - 2], reference = refs[r - 2] } end
    c0 = semidpo.clock()
    local conf, members, conf_test, members_test = timed(m, function()
      local a, b = semidpo.online.confidence{ couples = couples, pairs = gen, combine = S.combine, beta = S.beta, seed = semidpo.seed + r,
                                              winograd = S.confidence_winograd }
      local c, d = semidpo.online.confidence{ couples = couples, pairs = test, combine = S.combine, beta = S.beta, seed = semidpo.seed + r,
                                              winograd = S.confidence_winograd }
      return a, b, c, d
    end)
    t.confidence = semidpo.clock() - c0
    c0 = semidpo.clock()
    local labels, report = timed(m, function() return select_labels(conf, conf_test) end)
    t.select = semidpo.clock() - c0
    semidpo.write_text(dir .. "selection.txt", report.summary)
    c0 = semidpo.clock()
    local model = prev:clone()
    local reference = S.reference == "base" and base or prev
    timed(m, function()
      train(m, model, reference, { steps = S.round_steps, unlabeled = gen, pseudo = labels, unlabeled_weight = S.unlabeled_weight,
                                   log = dir .. "train" })
    end)
    t.train = semidpo.clock() - c0
    model:freeze()
    models[r], refs[r] = model, reference
    t.total = t.generate + t.confidence + t.select + t.train
    t.cpu = semidpo.cpu_seconds() - cpu0   -- CPU seconds of the round's four phases, both threads

    -- The audit (not part of the method: it reads the world's truth): the selected self-labels, the signs
    -- of every z before any threshold, and (with two couples) what round r−1's model alone would have selected.
    c0 = semidpo.clock()
    local sets, names = { labels }, { "selected" }
    if v.audit and #couples > 1 then
      sets[#sets + 1], names[#names + 1] = select_labels(members[1], members_test[1]), "selected by model r-1 alone"
    end
    sets[#sets + 1], names[#names + 1] = semidpo.pseudolabel.select{ confidence = conf, mode = "threshold", values = 0, guard = false },
                                         "every sign (no threshold)"
    local audit = semidpo.online.audit{ pairs = gen, labels = sets, names = names, raters = { seed = semidpo.seed + r } }
    t.audit = semidpo.clock() - c0
    semidpo.write_text(dir .. "audit.md", audit.markdown)
    semidpo.write_text(dir .. "audit.csv", audit.csv)
    local pooled = {}
    for _, row in ipairs(audit.rows) do if row.anchor == nil then pooled[row.set] = row end end
    t.pooled, t.raters, t.couples, t.pairs = pooled, audit.raters, #couples, gen:count()
    rounds[r] = t
    print(string.format("%s round %d: generate %.1f s, confidence %.1f s, select %.2f s, train %.1f s → %.1f s (%.1f CPU s); audit %.1f s [load %s]",
                        v.name, r, t.generate, t.confidence, t.select, t.train, t.total, t.cpu, t.audit, t.load))
    local function percent(x) return x and string.format("%.1f%%", 100 * x) or "n/a" end
    print(string.format("  self-labels: %d (pair, anchor) entries, overall accuracy %s; raters on the same pairs %s, on every pair %s",
                        pooled.selected.labelled, percent(pooled.selected.accuracy.overall),
                        percent(pooled.selected.rater_accuracy.overall), percent(audit.raters.accuracy.overall)))
  end
  return { models = models, rounds = rounds, meter = m, name = v.name, variant = v }
end

-- Tables of one run's rounds: where the time goes, and the self-labels against the truth.
local function pct(x) return x and 100 * x or false end   -- a share in percent; an empty cell when there is none
local function round_tables(run)
  local rows, drift = {}, {}
  for _, t in ipairs(run.rounds) do
    rows[#rows + 1] = { tostring(t.number), t.pairs, t.couples, t.generate, t.confidence, t.select, t.train, t.total, t.cpu, t.audit, t.load }
    for _, set in ipairs{ "selected", "selected by model r-1 alone", "every sign (no threshold)" } do
      local p = t.pooled[set]
      if p then
        local a, ra = p.accuracy, p.rater_accuracy
        drift[#drift + 1] = { tostring(t.number), set, p.labelled, pct(a.alignment), pct(a.aesthetics), pct(a.detail), pct(a.overall),
                              pct(ra.overall), pct(p.agreement), pct(t.raters.accuracy.overall) }
      end
    end
  end
  semidpo.eval.table{ title = run.name .. ": wall seconds per phase of each round", path = run.name .. "/timing", decimals = 1,
                      columns = { "round", "pairs", "couples", "generate", "confidence", "select", "train", "round", "round CPU s", "audit", "load" },
                      rows = rows }
  local d = semidpo.eval.table{ title = run.name .. ": self-labels against the world's truth (all anchors pooled, %)",
                      path = run.name .. "/self_labels", decimals = 1,
                      columns = { "round", "labels", "entries", "alignment", "aesthetics", "detail", "overall",
                                  "raters overall (same pairs)", "self = raters", "raters overall (every pair)" },
                      rows = drift }
  print(d.markdown)
end

local main = online{ name = "online", rounds = S.rounds, pairs = S.round_pairs, ensemble = S.ensemble, audit = true }
round_tables(main)
local final = main.models[S.rounds]
final:save("online/model.safetensors")

-- Evaluation like Table 1: every model on the same prompts with the same noise.
local eval_committee = S.eval.committee and committee or nil
local metrics   -- the evaluation's metric names (committee members, then the oracle's), set by the first evaluation
local evaluations = {}   -- per model: each model is evaluated once
local function evaluate(model)
  if evaluations[model] then return evaluations[model] end
  local out = {}
  evaluations[model] = out
  for _, suite in ipairs(S.eval.suites) do
    out[suite] = semidpo.eval.run{ model = model, suite = suite, committee = eval_committee, seed = semidpo.seed,
                                   steps = S.eval.steps, guidance = S.eval.guidance, limit = S.eval.prompts }
    metrics = metrics or out[suite]:metrics()
  end
  return out
end
local function score_rows(entries)
  local rows = {}
  for _, suite in ipairs(S.eval.suites) do
    for _, e in ipairs(entries) do
      local s = e.scores[suite]
      local means, row = s:means(), { suite, e.name }
      for _, k in ipairs(metrics) do row[#row + 1] = means[k] end
      rows[#rows + 1] = row
    end
  end
  return rows
end
local function columns(first) local c = { "suite", first }; for _, k in ipairs(metrics) do c[#c + 1] = k end; return c end

local methods = {}
if S.compare then
  -- Offline Semi-DPO: the same cold start, then R iterations on the dataset's noisy pairs (one couple, as the paper).
  local offline_meter = meter()
  offline_meter.steps, offline_meter.pairs, offline_meter.wall, offline_meter.cpu = cold_meter.steps, cold_meter.pairs, cold_meter.wall, cold_meter.cpu
  local model, reference, past = cold, base, {}
  for i = 1, S.rounds do
    timed(offline_meter, function()
      local conf = semidpo.dpo.confidence{ model = model, reference = reference, pairs = noisy, beta = S.beta, seed = semidpo.seed + i }
      local conf_test = semidpo.dpo.confidence{ model = model, reference = reference, pairs = test, beta = S.beta, seed = semidpo.seed + i }
      local labels = semidpo.pseudolabel.select{ confidence = conf, test_confidence = conf_test, mode = "percentile", values = S.percentile,
                                                 guard = guard, past = (#past > 0) and past or nil }
      past[#past + 1] = labels
      local next_model = model:clone()
      local next_reference = S.reference == "base" and base or model
      train(offline_meter, next_model, next_reference, { steps = S.round_steps, unlabeled = noisy, pseudo = labels,
                                                         unlabeled_weight = S.unlabeled_weight, log = "offline/iter" .. i })
      next_model:freeze()
      model, reference = next_model, next_reference
    end)
  end
  model:save("offline/model.safetensors")
  -- Diffusion-DPO on every pair with its human label, for as many pair gradients as the Semi-DPO runs.
  local dpo_meter = meter()
  local dpo = base:clone()
  timed(dpo_meter, function()
    train(dpo_meter, dpo, base, { pairs = data:pairs(), steps = S.steps0 + 2 * S.rounds * S.round_steps, log = "dpo/train" })
  end)
  dpo:freeze()
  dpo:save("dpo/model.safetensors")
  methods = {
    { name = "Base", model = base, meter = meter() },
    { name = "Diffusion-DPO", model = dpo, meter = dpo_meter },
    { name = "Semi-DPO (offline)", model = model, meter = offline_meter },
    { name = "Online Semi-DPO", model = final, meter = main.meter },
  }
  for _, e in ipairs(methods) do e.scores = evaluate(e.model) end
  semidpo.eval.table{ title = "Table 8: online vs offline Semi-DPO vs Diffusion-DPO (mean scores; same prompts and noise)",
                      path = "table8", columns = columns("method"), rows = score_rows(methods) }
  -- Paired win rates (%) of the online model over each other method.
  local wins = {}
  for _, suite in ipairs(S.eval.suites) do
    for k = 1, #methods - 1 do
      local wr, row = semidpo.eval.win_rate(methods[#methods].scores[suite], methods[k].scores[suite]), { suite, methods[k].name }
      for _, key in ipairs(metrics) do row[#row + 1] = 100 * wr[key] end
      wins[#wins + 1] = row
    end
  end
  semidpo.eval.table{ title = "Table 8b: win rate (%) of Online Semi-DPO over each method", path = "table8_win_rates", decimals = 1,
                      columns = columns("versus"), rows = wins }
  local work = {}
  for _, e in ipairs(methods) do
    work[#work + 1] = { e.name, e.meter.steps, e.meter.pairs, e.meter.wall, e.meter.cpu }
  end
  local w = semidpo.eval.table{ title = "Table 8c: work per method (optimizer steps, pair gradients, wall and CPU seconds incl. sampling and confidence)",
                                path = "table8_compute", decimals = 1, columns = { "method", "steps", "pair gradients", "wall s", "CPU s" }, rows = work }
  print(w.markdown)
end

-- Ablations: each changes one thing of the main online run and is evaluated like Table 8.
local ablations = {}
if ablate.rounds then
  for r = 0, S.rounds do ablations[#ablations + 1] = { name = string.format("online, after round %d", r), model = main.models[r] } end
end
if ablate.ensemble then
  local other = S.ensemble == "pair" and "alone" or "pair"
  local run = online{ name = "online_" .. other, rounds = S.rounds, pairs = S.round_pairs, ensemble = other, audit = false }
  round_tables(run)
  ablations[#ablations + 1] = { name = "online, labeller " .. S.ensemble, model = final }
  ablations[#ablations + 1] = { name = "online, labeller " .. other, model = run.models[S.rounds] }
end
if ablate.pairs then
  for _, P in ipairs(S.ablation_pairs) do
    if P ~= S.round_pairs then
      local run = online{ name = "online_p" .. P, rounds = S.rounds, pairs = P, ensemble = S.ensemble, audit = false }
      round_tables(run)
      ablations[#ablations + 1] = { name = string.format("online, %d pairs per round", P), model = run.models[S.rounds] }
    end
  end
  ablations[#ablations + 1] = { name = string.format("online, %d pairs per round", S.round_pairs), model = final }
end
if #ablations > 0 then
  for _, e in ipairs(ablations) do e.scores = evaluate(e.model) end
  local t = semidpo.eval.table{ title = "Online Semi-DPO ablations (mean scores; same prompts and noise)", path = "online_ablations",
                                columns = columns("variant"), rows = score_rows(ablations) }
  print(t.markdown)
end
print(string.format("online Semi-DPO finished in %.1f min; outputs in %s", (semidpo.clock() - t_start) / 60, semidpo.out))
