-- Quickstart: a shortened paper run on the synthetic world (a few minutes on 2 cores).
-- Builds a small preference dataset, splits it with the five-member reward committee, aligns the
-- shipped base model with Diffusion-DPO, Diffusion-KTO and Semi-DPO (iterations 0, 1, 2), scores
-- every model's samples with the world's oracle on one prompt suite, and prints the analogues of the
-- paper's Table 1 (methods) and Table 4 (iterations). Settings: recipes/quickstart.yaml (--help-settings
-- lists them). The models are cached stages of the recipe library (recipes/lib/semidpo/recipes.lua), so
-- a second run with the same settings loads them and only evaluates.
--   semidpo run recipes/quickstart.lua [--set pairs=1000] [--set steps=100] [--set eval_prompts=100]
local semidpo = require "semidpo"
local R = require "semidpo.recipes"

local S = semidpo.settings(semidpo.recipe_dir .. "/quickstart.yaml")
print(string.format("semidpo %s — seed %d, %d threads, BLAS %s", semidpo.version, semidpo.seed, semidpo.threads, semidpo.blas.core))
print(semidpo.yaml.dump{ settings = S })
local t_start = semidpo.clock()

-- The library's configuration: every fine-tuning run takes `steps` steps (baselines, iteration 0, later ones).
local c = {
  data_root = S.data_root, data_prefix = "quickstart", pairs = S.pairs, test_fraction = S.test_fraction, committee = S.committee, base = S.base,
  beta = S.beta, lr = S.lr, batch_size = S.batch_size, warmup = S.warmup, seed = semidpo.seed,
  steps0 = S.steps, steps = S.steps, iterations = S.iterations, percentile = S.percentile, guard = S.guard,
  unlabeled_weight = 1.0,
}

-- Data and the multi-reward consensus.
print(R.dataset(c):statistics().summary)
print(R.split(c, c.committee):report().markdown)

-- Diffusion-DPO and -KTO on all pairs with the human labels; Semi-DPO iteration 0 on the clean pairs,
-- then the pseudo-labelling rounds (R.semi: confidence → selection with the accuracy guard → retraining).
local models, semi = R.models(c)
for i = 2, #semi do
  print(string.format("Accuracy per anchor of iteration %d (clean test pairs): %s", i - 2,
                      table.concat(semi[i].outputs.test_accuracy, " ")))
end

-- Evaluation: the oracle's per-dimension scores (the world's "multi-dimensional preference", the role
-- MPS plays in the paper) of one sample per prompt, identical starting noise for every model.
local function evaluate(model)
  local m = semidpo.diffusion.load(R.model_path(model))
  return semidpo.eval.run{ model = m, suite = S.suite, limit = S.eval_prompts, steps = S.eval_steps,
                           guidance = S.guidance, seed = semidpo.seed }:means()
end
local columns = { "alignment", "aesthetics", "detail", "overall" }
local function table_of(title, rows)
  local lines = { "**" .. title .. "**", "", "| Method | Alignment | Aesthetics | Detail | Overall (MPS role) |", "|---|---|---|---|---|" }
  for _, r in ipairs(rows) do
    local cells = {}
    for _, col in ipairs(columns) do cells[#cells + 1] = string.format("%.3f", r[2][col]) end
    lines[#lines + 1] = "| " .. r[1] .. " | " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n"
end

local table1 = {}
for _, m in ipairs(models) do table1[#table1 + 1] = { m[1], evaluate(m[2]) } end
local table4 = { { "Semi-DPO (iter 0)", evaluate(semi[1]) } }
for i = 2, #semi - 1 do table4[#table4 + 1] = { "Semi-DPO (iter " .. (i - 1) .. ")", evaluate(semi[i]) } end
table4[#table4 + 1] = { "Semi-DPO (iter " .. (#semi - 1) .. ")", table1[#table1][2] }

local suite = string.format(" — suite %s, %d prompts, DDIM-%d, guidance %g", S.suite, S.eval_prompts, S.eval_steps, S.guidance)
local text = table_of("Table 1 analogue: oracle scores of each method" .. suite, table1) .. "\n"
          .. table_of("Table 4 analogue: Semi-DPO iterations" .. suite, table4)
semidpo.write_text("tables.md", text)
print(text)
print(string.format("quickstart finished in %.1f min; outputs in %s", (semidpo.clock() - t_start) / 60, semidpo.out))
