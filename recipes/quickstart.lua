-- Quickstart: a shortened paper run on the synthetic world (a few minutes on 2 cores).
-- Builds a small preference dataset, splits it with the five-member reward committee, aligns the
-- shipped base model with Diffusion-DPO, Diffusion-KTO and Semi-DPO (iterations 0, 1, 2), scores
-- every model's samples with the world's oracle on one prompt suite, and prints the analogues of the
-- paper's Table 1 (methods) and Table 4 (iterations). Settings: recipes/quickstart.yaml or --set.
--   semidpo run recipes/quickstart.lua [--set pairs=1000] [--set steps=100] [--set eval_prompts=100]
local semidpo = require "semidpo"

local config = semidpo.yaml.load(semidpo.recipe_dir .. "/quickstart.yaml")
for key, value in pairs(semidpo.args) do config[key] = value end
print(string.format("semidpo %s — seed %d, %d threads, BLAS %s", semidpo.version, semidpo.seed, semidpo.threads, semidpo.blas.core))
print(semidpo.yaml.dump{ settings = config })
local t_start = semidpo.clock()

-- Data and the multi-reward consensus.
local data = semidpo.world.dataset{ dir = "data/quickstart-" .. config.pairs .. "-seed" .. semidpo.seed,
                                    pairs = config.pairs, seed = semidpo.seed }
print(data:statistics().summary)
local committee = semidpo.committee.new{ members = config.committee }
local split = committee:partition(data, { rule = "unanimous", test = config.test_fraction, seed = semidpo.seed })
print(split:report().markdown)
local clean, test, noisy = split:clean(), split:test(), split:noisy()

local base = semidpo.diffusion.load(config.base)
base:freeze()

local function finetune(reference, pair_set, extra)
  local model = (extra.init or base):clone()
  model:unfreeze()
  local opts = { policy = model, reference = reference, pairs = pair_set, beta = config.beta, lr = config.lr,
                 batch_size = config.batch_size, steps = config.steps, warmup = config.warmup, seed = semidpo.seed }
  for k, v in pairs(extra) do if k ~= "init" then opts[k] = v end end
  semidpo.dpo.train(opts)
  model:freeze()
  return model
end

-- Baselines on all pairs with the human labels.
local models = { { "Base", base } }
models[#models + 1] = { "Diffusion-DPO", finetune(base, data:pairs(), { log = "dpo" }) }
models[#models + 1] = { "Diffusion-KTO", finetune(base, data:pairs(), { objective = "kto", log = "kto" }) }

-- Semi-DPO: iteration 0 on the clean pairs, then pseudo-labelling rounds.
local iterations = { finetune(base, clean, { log = "semi_iter0" }) }
local references = { base }
local past = {}
for i = 1, config.iterations do
  local prev, prev_ref = iterations[i], references[i]
  local conf = semidpo.dpo.confidence{ model = prev, reference = prev_ref, pairs = noisy, beta = config.beta, seed = semidpo.seed + i }
  local conf_test = semidpo.dpo.confidence{ model = prev, reference = prev_ref, pairs = test, beta = config.beta, seed = semidpo.seed + i }
  print(conf_test:accuracy_table(string.format("Accuracy per anchor of iteration %d (clean test pairs)", i - 1)))
  local selection = semidpo.pseudolabel.select_file{
    confidence = conf:write("iter" .. i .. "/confidence"), test_confidence = conf_test:write("iter" .. i .. "/test_confidence.jsonl"),
    mode = "percentile", values = config.percentile, guard = { floor = config.guard_floor, raise_to = config.guard_raise_to },
    past = (#past > 0) and past or nil, out = "iter" .. i .. "/pseudo_labels.json" }
  past[#past + 1] = selection.out
  local pseudo = semidpo.dpo.labels{ file = selection.out, pairs = noisy }
  iterations[i + 1] = finetune(prev, clean, { init = prev, unlabeled = noisy, pseudo = pseudo, log = "semi_iter" .. i })
  references[i + 1] = prev
end
models[#models + 1] = { "Semi-DPO", iterations[#iterations] }

-- Evaluation: the oracle's per-dimension scores (the world's "multi-dimensional preference", the role
-- MPS plays in the paper) of one sample per prompt, identical starting noise for every model.
local function evaluate(model)
  return semidpo.diffusion.evaluate{ model = model, prompts = config.suite, count = config.eval_prompts,
                                     steps = config.eval_steps, guidance = config.guidance, seed = semidpo.seed }
end
local columns = { "alignment", "aesthetics", "detail", "overall" }
local function table_of(title, rows)
  local lines = { "**" .. title .. "**", "", "| Method | Alignment | Aesthetics | Detail | Overall (MPS role) |", "|---|---|---|---|---|" }
  for _, r in ipairs(rows) do
    local cells = {}
    for _, c in ipairs(columns) do cells[#cells + 1] = string.format("%.3f", r[2][c]) end
    lines[#lines + 1] = "| " .. r[1] .. " | " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n"
end

local table1 = {}
for _, m in ipairs(models) do table1[#table1 + 1] = { m[1], evaluate(m[2]) } end
local table4 = { { "Semi-DPO (iter 0)", evaluate(iterations[1]) } }
for i = 2, #iterations - 1 do table4[#table4 + 1] = { "Semi-DPO (iter " .. (i - 1) .. ")", evaluate(iterations[i]) } end
table4[#table4 + 1] = { "Semi-DPO (iter " .. (#iterations - 1) .. ")", table1[#table1][2] }

local suite = string.format(" — suite %s, %d prompts, DDIM-%d, guidance %s", config.suite, config.eval_prompts, config.eval_steps, config.guidance)
local text = table_of("Table 1 analogue: oracle scores of each method" .. suite, table1) .. "\n"
          .. table_of("Table 4 analogue: Semi-DPO iterations" .. suite, table4)
semidpo.write_text("tables.md", text)
print(text)
print(string.format("quickstart finished in %.1f min; outputs in %s", (semidpo.clock() - t_start) / 60, semidpo.out))
