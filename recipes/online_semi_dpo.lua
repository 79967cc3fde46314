-- Online Semi-DPO: the paper's §6.7 proposal, built on the world and checked against its truth
-- (recipes/lib/semidpo/online.lua; every round a cached stage, so a killed run resumes at its first unfinished round):
--   cold start   DPO on the committee's clean pairs (Semi-DPO's iteration 0, stage `semi_iter0`), from the base model;
--   round r      (stage `online_round<r>`) model r−1 samples two images for each of P fresh training prompts
--                (disjoint from every evaluation suite); the implicit reward models of rounds r−1 and r−2 score every
--                pair per timestep anchor; an ensemble combiner ("agree" or "mean") gives one z; per-anchor percentile
--                thresholds with the accuracy guard on the clean test pairs select self-labels; model r = model r−1
--                trained on clean + self-labelled pairs; the self-labels are audited against the oracle's truth per
--                dimension, beside what the world's simulated raters would have said about the same pairs.
-- Each round records the wall time of its phases (generate, confidence, select, train, audit): online_timing.md.
-- Then (compare = true) Table 8 as paper.lua builds it (recipes/tables/table8.lua): online vs offline Semi-DPO vs
-- Diffusion-DPO (here trained for as many pair gradients as the Semi-DPO runs), evaluated like Table 1 (same prompts,
-- same noise) with 95% intervals over prompts; and the ablations: ensemble vs model r−1 alone, rounds, pairs per round.
--   semidpo run recipes/online_semi_dpo.lua [--set rounds=2] [--set round_pairs=1000] [--set ablations=none] …
local semidpo = require "semidpo"
local P = require "semidpo.paper"
local O = require "semidpo.online"
local timing = require "semidpo.timing"

local S = semidpo.settings(semidpo.recipe_dir .. "/online_semi_dpo.yaml")
local function check(ok, message) if not ok then error(message, 2) end end
check(S.rounds >= 1, "setting 'rounds' must be ≥ 1, got " .. S.rounds)
local ablate = {}
for _, a in ipairs(S.ablations) do
  check(a == "ensemble" or a == "rounds" or a == "pairs" or a == "none",
        "setting 'ablations': unknown ablation '" .. tostring(a) .. "' (known: ensemble, rounds, pairs, none)")
  ablate[a] = true
end
print(string.format("semidpo %s — seed %d, %d threads, BLAS %s, load %s", semidpo.version, semidpo.seed, semidpo.threads,
                    semidpo.blas.core, timing.loadavg()))
local t_start = semidpo.clock()

-- The settings in the recipe library's names (semidpo.recipes, semidpo.online, semidpo.paper).
local c = {
  seed = semidpo.seed, seeds = { semidpo.seed }, pairs = S.pairs, data_root = S.data_root, data_prefix = "online",
  test_fraction = S.test_fraction, committee = S.committee, base = S.base, beta = S.beta, lr = S.lr, batch_size = S.batch_size,
  warmup = S.warmup, steps0 = S.steps0, steps = S.round_steps, iterations = S.rounds, percentile = S.percentile,
  guard = { floor = S.guard.floor, raise_to = S.guard.raise_to }, unlabeled_weight = S.unlabeled_weight, reference = S.reference,
  baseline_steps = S.steps0 + 2 * S.rounds * S.round_steps,   -- Diffusion-DPO: as many pair gradients as either Semi-DPO run
  suites = S.eval.suites, eval_prompts = S.eval.prompts, eval_steps = S.eval.steps, guidance = S.eval.guidance,
  suite_size = S.eval.suite_size, stats_seed = S.stats_seed, resamples = S.resamples,
  online = { rounds = S.rounds, pairs = S.round_pairs, ensemble = S.ensemble, combine = S.combine, prompt_seed = S.prompt_seed,
             winograd = S.confidence_winograd, sample_steps = S.generate.steps, guidance = S.generate.guidance },
}
O.check(c)

-- One online run's rounds: its tables, and each round's audit and selection copied from its stage.
local function report(runs, name)
  for r = 2, #runs do
    for _, f in ipairs{ "audit.md", "audit.csv", "selection.txt" } do
      semidpo.copy_file(runs[r].dir .. "/" .. f, string.format("%s/round%d/%s", name, r - 1, f))
    end
  end
  return O.round_tables({ { seed = c.seed, runs = runs } }, name, name)
end

local main = O.rounds(c, S.rounds)
P.show(report(main, "online"))
semidpo.copy_file(main[#main].dir .. "/model.safetensors", "online/model.safetensors")

if S.compare then P.show(P.table8(c)) end

-- Ablations: each changes one thing of the main online run and is evaluated like Table 8.
local variants = {}
if ablate.rounds then
  for r = 0, S.rounds do variants[#variants + 1] = { string.format("online, after round %d", r), main[r + 1] } end
end
if ablate.ensemble then
  local other = S.ensemble == "pair" and "alone" or "pair"
  local runs = O.rounds(c, S.rounds, { ensemble = other })
  report(runs, "online_" .. other)
  variants[#variants + 1] = { "online, labeller " .. S.ensemble, main[#main] }
  variants[#variants + 1] = { "online, labeller " .. other, runs[#runs] }
end
if ablate.pairs then
  for _, n in ipairs(S.ablation_pairs) do
    if n ~= S.round_pairs then
      local runs = O.rounds(c, S.rounds, { pairs = n })
      report(runs, "online_p" .. n)
      variants[#variants + 1] = { string.format("online, %d pairs per round", n), runs[#runs] }
    end
  end
  variants[#variants + 1] = { string.format("online, %d pairs per round", S.round_pairs), main[#main] }
end
if #variants > 0 then
  P.show(P.means(c, "Online Semi-DPO ablations (mean scores; same prompts and noise)", "online_ablations", "variant",
                 function() return variants end))
end
print(string.format("online Semi-DPO finished in %.1f min; outputs in %s", (semidpo.clock() - t_start) / 60, semidpo.out))
