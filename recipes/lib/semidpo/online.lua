-- Online Semi-DPO (the paper's §6.7 proposal) as cached stages (`require "semidpo.online"`), shared by
-- recipes/online_semi_dpo.lua and paper.lua's Table 8 (recipes/tables/table8.lua):
--   cold start   Semi-DPO's iteration 0 (`semi_iter0` of semidpo.recipes: DPO on the committee's clean pairs);
--   round r      stage `online_round<r>`: model r−1 samples two images for each of P fresh training prompts
--                (disjoint from every evaluation suite); the implicit reward models of rounds r−1 and r−2 (the
--                couples (model, reference) of those rounds; round 1 has only the cold start's) score every
--                pair per timestep anchor; an ensemble combiner ("agree" or "mean") gives one z; per-anchor
--                percentile thresholds with the accuracy guard on the clean test pairs select self-labels;
--                model r = model r−1 trained on clean + self-labelled pairs (the composite objective, c.steps
--                steps); the self-labels are audited against the oracle's truth per dimension, beside what the
--                world's simulated raters would have said about the same pairs.
-- Each round records the wall time of its phases (generate, confidence, select, train; the audit apart), its
-- CPU seconds and the load average in its stage outputs, so a cached round still says where its time went.
-- `c` is a settings table as semidpo.recipes reads it (seed, pairs, test_fraction, committee, base, beta, lr,
-- batch_size, warmup, steps, steps0, percentile, guard, unlabeled_weight, reference) plus `c.online`:
--   { pairs =, ensemble = "pair" | "alone", combine = "agree" | "mean", prompt_seed =, winograd =,
--     sample_steps =, guidance = }
local semidpo = require "semidpo"
local R = require "semidpo.recipes"
local timing = require "semidpo.timing"

local O = {}

-- The training prompts of round r with P pairs per round: prompts (r−1)·P + 1 … r·P of one fixed list.
local function round_prompts(r, P, prompt_seed)
  local all = semidpo.world.training_prompts(r * P, prompt_seed)
  return table.move(all, (r - 1) * P + 1, r * P, 1, {})
end

local function select_labels(c, conf, conf_test)
  return semidpo.pseudolabel.select{ confidence = conf, test_confidence = conf_test, mode = "percentile", values = c.percentile,
                                     guard = { floor = c.guard.floor, raise_to = c.guard.raise_to } }
end

-- The pooled (all anchors) audit row of each label set, as plain values for the stage outputs.
local function pooled_rows(audit)
  local out = {}
  for _, row in ipairs(audit.rows) do
    if row.anchor == nil then
      out[row.set] = { labelled = row.labelled, accuracy = row.accuracy, rater_accuracy = row.rater_accuracy, agreement = row.agreement }
    end
  end
  return out
end

--- The checks of `c.online`, with errors naming the setting.
function O.check(c)
  local o = c.online
  local function check(ok, message) if not ok then error(message, 3) end end
  check(o.ensemble == "pair" or o.ensemble == "alone", "setting 'online.ensemble' must be \"pair\" or \"alone\", got '" .. tostring(o.ensemble) .. "'")
  check(o.combine == "agree" or o.combine == "mean", "setting 'online.combine' must be \"agree\" or \"mean\", got '" .. tostring(o.combine) .. "'")
  check(math.type(o.pairs) == "integer" and o.pairs >= 1, "setting 'online.pairs' must be an integer ≥ 1, got " .. tostring(o.pairs))
  check(math.type(o.rounds) == "integer" and o.rounds >= 0, "setting 'online.rounds' must be an integer ≥ 0, got " .. tostring(o.rounds))
  check((c.reference or "previous") == "previous" or c.reference == "base",
        "setting 'reference' must be \"previous\" or \"base\", got '" .. tostring(c.reference) .. "'")
end

local memo = {}

--- Online Semi-DPO rounds 1 … `rounds` after the cold start: a list of stage results, index r + 1 = round r
--- (index 1: the cold start, `semi_iter0`). `v` overrides fields of `c.online` (pairs, ensemble) for an ablation.
--- Round 1 has one couple whatever the ensemble, so its key leaves the ensemble out: every variant with the
--- same pairs per round shares it. Outputs of each round: steps, pair_gradients, pairs (generated), couples,
--- time = {generate, confidence, select, train, total, cpu, audit, load}, pooled = {set → {labelled, accuracy,
--- rater_accuracy, agreement}} for the sets "selected", "selected by model r-1 alone" (two couples) and
--- "every sign (no threshold)", raters (the simulated raters on every pair), and the training summary.
function O.rounds(c, rounds, v)
  local o = {}
  for k, x in pairs(c.online) do o[k] = x end
  for k, x in pairs(v or {}) do o[k] = x end
  local base_settings = { data = R.data_settings(c), train = R.train_settings(c), committee = c.committee, steps = c.steps,
                          percentile = c.percentile, guard = c.guard, unlabeled_weight = c.unlabeled_weight,
                          reference = c.reference or "previous", pairs = o.pairs, prompt_seed = o.prompt_seed,
                          sample = { steps = o.sample_steps, guidance = o.guidance }, winograd = o.winograd }
  -- Memoised within one run (Table 8 asks for the same rounds several times): what the stage keys hash.
  local id = semidpo.inspect{ base_settings, c.base, c.steps0, c.data_root or "data", o.ensemble, o.combine, rounds }
  if memo[id] then return memo[id] end
  local runs = { R.semi(c, c.committee, 0)[1] }
  for r = 1, rounds do
    local settings = { common = base_settings, round = r }
    if r >= 2 then settings.ensemble, settings.combine = o.ensemble, o.ensemble == "pair" and o.combine or nil end
    local previous = { table.unpack(runs, 1, r) }      -- the cold start and rounds 1 … r−1
    runs[r + 1] = semidpo.stage{
      name = "online_round" .. r,
      settings = settings,
      inputs = { previous = previous, base = c.base },
      run = function(dir) return O.round(c, o, r, previous, dir) end,
    }
  end
  memo[id] = runs
  return runs
end

--- The work of round r (the body of stage `online_round<r>`): `previous` = the stages of rounds 0 … r−1,
--- files written into `dir` (model.safetensors, train.csv, selection.txt, audit.md/.csv).
function O.round(c, o, r, previous, dir)
  local base = R.load_frozen(c.base)
  local loaded = {}
  local function model(k)              -- model k (0 = the cold start), loaded once when needed
    loaded[k] = loaded[k] or R.load_frozen(previous[k + 1].dir .. "/model.safetensors")
    return loaded[k]
  end
  local function reference(k)          -- the reference model k was trained against
    if k == 0 or c.reference == "base" then return base end
    return model(k - 1)
  end
  local split = R.split(c, c.committee)
  local t = { load = timing.loadavg() }
  local cpu0 = semidpo.cpu_seconds()
  local c0 = semidpo.clock()
  local gen = semidpo.online.generate{ model = model(r - 1), prompts = round_prompts(r, o.pairs, o.prompt_seed), seed = c.seed + r,
                                       first_id = (r - 1) * o.pairs, steps = o.sample_steps, guidance = o.guidance, eta = 0 }
  t.generate = semidpo.clock() - c0
  -- The labellers: round r−1's implicit reward model, and round r−2's with the §6.7 ensemble.
  local couples = { { model = model(r - 1), reference = reference(r - 1) } }
  if o.ensemble == "pair" and r >= 2 then couples[2] = { model = model(r - 2), reference = reference(r - 2) } end
  c0 = semidpo.clock()
  local conf, members = semidpo.online.confidence{ couples = couples, pairs = gen, combine = o.combine, beta = c.beta, seed = c.seed + r,
                                                   winograd = o.winograd }
  local conf_test, members_test = semidpo.online.confidence{ couples = couples, pairs = split:test(), combine = o.combine, beta = c.beta,
                                                             seed = c.seed + r, winograd = o.winograd }
  t.confidence = semidpo.clock() - c0
  c0 = semidpo.clock()
  local labels, report = select_labels(c, conf, conf_test)
  t.select = semidpo.clock() - c0
  semidpo.write_text(dir .. "/selection.txt", report.summary)
  c0 = semidpo.clock()
  local trained, summary = R.finetune(c, model(r - 1), c.reference == "base" and base or model(r - 1), split:clean(), c.steps,
                                    { unlabeled = gen, pseudo = labels, unlabeled_weight = c.unlabeled_weight, log = dir .. "/train" })
  t.train = semidpo.clock() - c0
  t.total = t.generate + t.confidence + t.select + t.train
  t.cpu = semidpo.cpu_seconds() - cpu0   -- CPU seconds of the round's four phases, every thread
  trained:save(dir .. "/model.safetensors")

  -- The audit (not part of the method: it reads the world's truth): the selected self-labels, what round r−1's
  -- model alone would have selected (with two couples), and the signs of every z before any threshold.
  c0 = semidpo.clock()
  local sets, names = { labels }, { "selected" }
  if #couples > 1 then sets[#sets + 1], names[#names + 1] = select_labels(c, members[1], members_test[1]), "selected by model r-1 alone" end
  sets[#sets + 1], names[#names + 1] = semidpo.pseudolabel.select{ confidence = conf, mode = "threshold", values = 0, guard = false },
                                       "every sign (no threshold)"
  local audit = semidpo.online.audit{ pairs = gen, labels = sets, names = names, raters = { seed = c.seed + r } }
  t.audit = semidpo.clock() - c0
  semidpo.write_text(dir .. "/audit.md", audit.markdown)
  semidpo.write_text(dir .. "/audit.csv", audit.csv)
  print(string.format("online round %d (seed %d, %d pairs, %d couple%s): generate %.1f s, confidence %.1f s, select %.2f s, train %.1f s → %.1f s (%.1f CPU s); audit %.1f s [load %s]",
                      r, c.seed, gen:count(), #couples, #couples > 1 and "s" or "", t.generate, t.confidence, t.select, t.train, t.total, t.cpu,
                      t.audit, t.load))
  local out = R.summary_outputs(summary)
  out.pair_gradients = c.steps * c.batch_size * 2
  out.pairs, out.couples, out.time = gen:count(), #couples, t
  out.pooled = pooled_rows(audit)
  out.raters = { accuracy = audit.raters.accuracy, pairs = audit.raters.pairs }
  return out
end

local function pct(x) return x and 100 * x or false end   -- a share in percent; an empty cell when there is none

--- Two tables of the rounds of each seed ({{seed =, runs =}, …}, runs as `O.rounds` returns): where the time of
--- each round went (`<path>_timing`), and the self-labels against the world's truth (`<path>_self_labels`,
--- all anchors pooled, % of (pair, anchor) entries; "raters" = the world's simulated raters). Returns both.
function O.round_tables(per_seed, title, path)
  local rows, drift = {}, {}
  for _, s in ipairs(per_seed) do
    for r = 2, #s.runs do
      local o = s.runs[r].outputs
      local t = o.time
      rows[#rows + 1] = { tostring(s.seed), tostring(r - 1), o.pairs, o.couples, t.generate, t.confidence, t.select, t.train, t.total, t.cpu,
                          t.audit, tonumber(t.load:match("^%S+")) or false }
      for _, set in ipairs{ "selected", "selected by model r-1 alone", "every sign (no threshold)" } do
        local p = o.pooled[set]
        if p then
          local a, ra = p.accuracy, p.rater_accuracy
          drift[#drift + 1] = { tostring(s.seed), tostring(r - 1), set, p.labelled, pct(a.alignment), pct(a.aesthetics), pct(a.detail), pct(a.overall),
                                pct(ra.overall), pct(p.agreement), pct(o.raters.accuracy.overall) }
        end
      end
    end
  end
  local t1 = semidpo.eval.table{ title = title .. ": wall seconds per phase of each round (the round's four phases; the audit apart)",
                                 path = path .. "_timing", decimals = 1,
                                 columns = { "seed", "round", "pairs", "couples", "generate", "confidence", "select", "train", "round total",
                                             "round CPU s", "audit", "load (1 min) at start" }, rows = rows }
  local t2 = semidpo.eval.table{ title = title .. ": self-labels against the world's truth (all anchors pooled, % of (pair, anchor) entries)",
                                 path = path .. "_self_labels", decimals = 1,
                                 columns = { "seed", "round", "labels", "entries", "alignment", "aesthetics", "detail", "overall",
                                             "raters overall (same pairs)", "self = raters", "raters overall (every pair)" },
                                 rows = drift }
  return t1, t2
end

return O
