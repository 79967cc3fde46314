-- The controls of Semi-DPO's gain (issue 16 item 5; `require "semidpo.controls"`, run by
-- recipes/ablations/semi_dpo_controls.lua): arms on Semi-DPO's schedule that each change one thing —
-- the data, the labels on Semi-DPO's selected pairs, the reference — as cached stages on top of
-- `semidpo.recipes`, sharing Semi-DPO, Diffusion-DPO/KTO and the evaluations with paper.lua.
--
-- Label orientation: every pair is stored winner first by its human label, so a label +1 keeps the
-- human label, −1 reverses it and 0 leaves the pair out at that anchor (docs/recipes.md `dpo.labels`).
local semidpo = require "semidpo"
local R = require "semidpo.recipes"

local C = {}

--- The arms, in table order. `kind` names how each is built (C.arm).
C.ARMS = {
  { id = "A1", kind = "dpo_all", label = "A1 iterative DPO, all pairs, human labels",
    what = "Diffusion-DPO on every pair with its human label (the clean-test pairs included, as the Diffusion-DPO baseline), 1 + iterations rounds, each from the previous round's model against it" },
  { id = "A2", kind = "dpo_clean", label = "A2 iterative DPO, clean pairs only",
    what = "the same schedule on the consensus-clean pairs only (round 0 is Semi-DPO's iteration 0)" },
  { id = "A3", kind = "human", label = "A3 Semi-DPO mask, human labels",
    what = "Semi-DPO's rounds with the human label (+1) on every pair and anchor Semi-DPO selected" },
  { id = "A4", kind = "truth", label = "A4 Semi-DPO mask, true overall labels",
    what = "Semi-DPO's rounds with the world's true overall preference on the selected pairs (the ceiling)" },
  { id = "A5", kind = "random", label = "A5 Semi-DPO mask, random labels",
    what = "Semi-DPO's rounds with seeded random ±1 labels on the selected pairs" },
  { id = "A6", kind = "semi", label = "A6 Semi-DPO",
    what = "Semi-DPO itself (paper.lua's stages)" },
  { id = "A7", kind = "dpo", label = "A7 Diffusion-DPO, fixed reference, same total steps",
    what = "Diffusion-DPO on every pair, steps0 + iterations × steps steps against the base model" },
  { id = "A8", kind = "kto", label = "A8 Diffusion-KTO, fixed reference, same total steps",
    what = "Diffusion-KTO on every pair, steps0 + iterations × steps steps against the base model" },
}
C.BY_ID = {}
for _, a in ipairs(C.ARMS) do C.BY_ID[a.id] = a end

--- splitmix64's output function on a 64-bit integer (wrapping arithmetic, logical shifts):
--- C.mix(0) = 0xE220A8397B1DCDAF, the first output of splitmix64 seeded with 0.
function C.mix(x)
  x = x + 0x9E3779B97F4A7C15
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end

--- A5's label of pair `id` at `anchor` in round `round` of seed `seed`: +1 or −1, each with odds ½,
--- independent of the order the pairs are visited in (a hash of the four integers).
function C.random_sign(seed, round, id, anchor)
  local h = C.mix(C.mix(C.mix(C.mix(seed) ~ round) ~ id) ~ anchor)
  return (h >> 63) == 0 and 1 or -1
end

--- The labels of one control on Semi-DPO's selection, row by row:
---   o = { kind = "human" | "truth" | "random" | "pseudo", rows = {{label per anchor} per pair} (Semi-DPO's
---         pseudo-labels: the mask is label ≠ 0), anchors = {…}, ids = {pair id per row},
---         truth = {sign per row} ("truth": sign of the true overall score of winner − loser, 0 on a tie),
---         seed =, round = ("random") }
--- Returns new rows: 0 wherever Semi-DPO's label is 0; elsewhere +1 (human), the row's true sign
--- (truth; a true tie leaves the pair out at that anchor: 0), a seeded ±1 (random) or the pseudo-label
--- itself (pseudo: the identity, which reproduces Semi-DPO's own round).
function C.relabel_rows(o)
  local kind = o.kind
  assert(kind == "human" or kind == "truth" or kind == "random" or kind == "pseudo",
         "relabel: kind must be \"human\", \"truth\", \"random\" or \"pseudo\", got " .. tostring(kind))
  assert(kind ~= "truth" or (o.truth and #o.truth == #o.rows),
         "relabel: kind \"truth\" needs truth = {sign per row} with one entry per row")
  assert(kind ~= "random" or (math.type(o.seed) == "integer" and math.type(o.round) == "integer" and o.ids and o.anchors),
         "relabel: kind \"random\" needs integer seed and round, ids and anchors")
  local out = {}
  for i, row in ipairs(o.rows) do
    local new = {}
    for j, l in ipairs(row) do
      if l == 0 or kind == "pseudo" then new[j] = l
      elseif kind == "human" then new[j] = 1
      elseif kind == "truth" then new[j] = o.truth[i]
      else new[j] = C.random_sign(o.seed, o.round, o.ids[i], o.anchors[j]) end
    end
    out[i] = new
  end
  return out
end

--- The sign of the true overall score of winner − loser for each pair of `pair_set` (world pairs, in order).
function C.truth_signs(pair_set)
  local t = pair_set:truth()
  local k
  for i, d in ipairs(t.dimensions) do if d == "overall" then k = i end end
  assert(k, "the world's truth has no 'overall' dimension")
  local signs = {}
  for i = 1, #t.winner do
    local d = t.winner[i][k] - t.loser[i][k]
    signs[i] = d > 0 and 1 or (d < 0 and -1 or 0)
  end
  return signs
end

--- `pseudo` (Labels aligned to `pair_set`, Semi-DPO's round `round`) relabelled by `kind`, as Labels
--- aligned to `pair_set` (C.relabel_rows).
function C.relabel(kind, pseudo, pair_set, seed, round)
  local ids = pair_set:ids()
  local rows = C.relabel_rows{ kind = kind, rows = pseudo:rows(), anchors = pseudo:anchors(), ids = ids,
                               truth = kind == "truth" and C.truth_signs(pair_set) or nil, seed = seed, round = round }
  return semidpo.dpo.labels{ anchors = pseudo:anchors(), labels = rows, ids = ids, pairs = pair_set }
end

--- Human labels (+1 at every anchor) for every pair of `pair_set`: what DPO trains on, as Labels for the audit.
function C.human_labels(pair_set, anchors)
  local rows = {}
  for i = 1, pair_set:count() do
    local r = {}
    for j = 1, #anchors do r[j] = 1 end
    rows[i] = r
  end
  return semidpo.dpo.labels{ anchors = anchors, labels = rows, ids = pair_set:ids(), pairs = pair_set }
end

local function model_file(s) return s.dir .. "/model.safetensors" end

-- A copy of `c` with `baseline_steps` set: R.baseline's stage for that many steps (the same stage as
-- paper.lua's Diffusion-DPO/KTO when the step counts agree).
local function with_steps(c, steps)
  local d = {}
  for k, v in pairs(c) do d[k] = v end
  d.baseline_steps = steps
  return d
end

--- Semi-DPO, iterations 0 … c.iterations (paper.lua's stages).
function C.semi(c) return R.semi(c, c.committee, c.iterations) end

-- Round i ≥ 1 of an iterative arm: a copy of round i − 1's model trained `c.steps` steps against it on
-- `pair_set(split)` with the human labels (A1: every pair, A2: the clean pairs).
local function iterative_round(c, kind, i, prev)
  local settings = { data = R.data_settings(c), train = R.train_settings(c), steps = c.steps, iteration = i, arm = kind }
  if kind == "dpo_clean" then settings.committee = c.committee; settings.clean_anchor = c.clean_anchor end
  return semidpo.stage{
    name = "ctl_" .. kind .. "_iter" .. i, settings = settings, inputs = { previous = prev },
    run = function(dir)
      local model = R.load_frozen(model_file(prev))
      local pair_set = kind == "dpo_all" and R.dataset(c):pairs() or R.labelled_set(c, R.split(c, c.committee), i)
      local next_model, summary = R.finetune(c, model, model, pair_set, c.steps, { log = dir .. "/train" })
      next_model:save(model_file{ dir = dir })
      return R.summary_outputs(summary)
    end,
  }
end

-- Round i ≥ 1 of a relabelled arm: Semi-DPO's round i (`semi[i + 1]`: its selection, its labelled set, its
-- seed) with the selected pairs' signs replaced by `kind`, from this arm's round i − 1 model against it.
-- The relabelled labels are kept as labels.json.
local function relabelled_round(c, kind, i, prev, semi)
  local mask = semi[i + 1]
  local settings = { data = R.data_settings(c), train = R.train_settings(c), committee = c.committee, clean_anchor = c.clean_anchor,
                     steps = c.steps, unlabeled_weight = c.unlabeled_weight, iteration = i, arm = kind }
  return semidpo.stage{
    name = "ctl_" .. kind .. "_iter" .. i, settings = settings, inputs = { previous = prev, mask = mask },
    run = function(dir)
      local split = R.split(c, c.committee)
      local noisy = split:noisy()
      local pseudo = semidpo.dpo.labels{ file = mask.dir .. "/pseudo_labels.json", pairs = noisy }
      local labels = C.relabel(kind, pseudo, noisy, c.seed, i)
      labels:write(dir .. "/labels.json")
      local model = R.load_frozen(model_file(prev))
      local next_model, summary = R.finetune(c, model, model, R.labelled_set(c, split, i), c.steps,
                                             { unlabeled = noisy, pseudo = labels, unlabeled_weight = c.unlabeled_weight,
                                               log = dir .. "/train" })
      next_model:save(model_file{ dir = dir })
      return R.summary_outputs(summary)
    end,
  }
end

--- The stages of one arm (`id` "A1" … "A8", or kind "pseudo": Semi-DPO's labels through the control
--- machinery, a check that it reproduces Semi-DPO) for the settings `c` of one seed, round 0 first.
--- Returns {stage, …} (the last is the arm's model) — A6: Semi-DPO's iterations; A7/A8: one stage.
--- Round 0 is shared: A1's is Diffusion-DPO at steps0 steps, A2–A5's Semi-DPO's iteration 0.
function C.arm(c, id, semi)
  semi = semi or C.semi(c)
  local kind = C.BY_ID[id] and C.BY_ID[id].kind or id
  if kind == "semi" then return semi end
  if kind == "dpo" or kind == "kto" then return { R.baseline(with_steps(c, c.steps0 + c.iterations * c.steps), kind) } end
  local rounds = { kind == "dpo_all" and R.baseline(with_steps(c, c.steps0), "dpo") or semi[1] }
  for i = 1, c.iterations do
    if kind == "dpo_all" or kind == "dpo_clean" then rounds[i + 1] = iterative_round(c, kind, i, rounds[i])
    else rounds[i + 1] = relabelled_round(c, kind, i, rounds[i], semi) end
  end
  return rounds
end

-- Sums agreement counts of `labels` on `pair_set` into `acc` (semidpo.dpo.audit's pooled row × its count).
local function add_audit(acc, pair_set, labels)
  local audit = semidpo.dpo.audit{ truth = pair_set:truth(), labels = { labels } }
  for _, r in ipairs(audit.rows) do
    if r.anchor == nil and r.labelled > 0 then
      acc.labels = acc.labels + r.labelled
      for _, d in ipairs{ "alignment", "aesthetics", "detail", "overall" } do acc[d] = acc[d] + r.labelled * (r.accuracy[d] or 0.5) end
    end
  end
  local human = 0
  for _, row in ipairs(labels:rows()) do for _, l in ipairs(row) do if l == 1 then human = human + 1 end end end
  acc.human = acc.human + human
end

local function new_acc() return { labels = 0, alignment = 0, aesthetics = 0, detail = 0, overall = 0, human = 0 } end

--- The label audit of arm `id`'s training labels for the settings `c` of one seed, from its finished
--- stages `rounds` (C.arm's list) and Semi-DPO's `semi`: every (pair, anchor) label it trains on, pooled over its rounds, against each true dimension
--- (semidpo.dpo.audit: a true tie counts ½), and the share equal to the human label. Returns
--- {all = counts, noisy = counts} — `noisy` only the labels on Semi-DPO's selected noisy pairs (A3–A6).
--- A human-labelled pair counts once per anchor, as it is trained at every timestep; the counts are not
--- weighted by how often the trainer draws each set (Semi-DPO draws a clean and a noisy batch per step).
function C.audit(c, id, rounds, semi)
  local kind = C.BY_ID[id].kind
  local split = R.split(c, c.committee)
  local noisy_pairs = split:noisy()
  local anchors = semidpo.dpo.labels{ file = semi[2].dir .. "/pseudo_labels.json", pairs = noisy_pairs }:anchors()
  local all, noisy = new_acc(), new_acc()
  local count = (kind == "dpo" or kind == "kto") and 1 or (c.iterations + 1)
  for i = 0, count - 1 do
    local human_set = (kind == "dpo_all" or kind == "dpo" or kind == "kto") and R.dataset(c):pairs() or R.labelled_set(c, split, i)
    add_audit(all, human_set, C.human_labels(human_set, anchors))
    if i >= 1 and kind ~= "dpo_all" and kind ~= "dpo_clean" then
      local file = kind == "semi" and (semi[i + 1].dir .. "/pseudo_labels.json") or (rounds[i + 1].dir .. "/labels.json")
      local labels = semidpo.dpo.labels{ file = file, pairs = noisy_pairs }
      add_audit(all, noisy_pairs, labels)
      add_audit(noisy, noisy_pairs, labels)
    end
  end
  return { all = all, noisy = noisy }
end

return C
