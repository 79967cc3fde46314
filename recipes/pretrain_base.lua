-- Pretrains the base text-to-image model (SPEC §4 reference UNet) on the world's mixed-quality renders
-- (a web-like mix: the grammar's 40% single-object prompts, mostly-aligned content, aesthetics and detail
-- fully mixed), then writes a sample grid and an oracle quality report (model samples beside world renders).
--   semidpo run recipes/pretrain_base.lua --threads 2 [--set steps=6500] [--set install=true]
-- (≈ 17 min on the idle 2-core machine, 26 min when shared; docs/results.md "Base model").
-- install=true copies the shipped weights to models/base.safetensors and the grid to docs/img/.
local semidpo = require "semidpo"
local diffusion = semidpo.diffusion

local settings = semidpo.settings{
  config = semidpo.recipe_dir .. "/configs/unet_film.yaml",  -- SPEC §4's UNet + scale-shift (FiLM)
  steps = 6500,
  batch_size = 32,
  lr = 2e-3,
  warmup = 100,
  schedule = "cosine",
  ema_decay = 0.995,
  dropout = 0.1,
  prompts = 20000,       -- distinct training prompts of the world (seed world_seed)
  single_share = 0.4,  -- share of renders from single-object prompts (the grammar's own
                                         -- 40%; the distinct-prompt list alone holds only ~11%, see below)
  alignment_min = 0.5,  -- renders' alignment latent ~ U(alignment_min, 1): a mostly-aligned
                                         -- web-like mix (0 = the world's U(0, 1)); aesthetics, detail stay U(0, 1)
  world_seed = 0,
  checkpoint_every = 250,
  resume = semidpo.optional("string"),   -- a checkpoint file or directory to continue from
  loss_weighting = "min_snr",  -- "min_snr" (min-SNR-γ, Hang et al. 2023) or "none" (L_simple)
  min_snr_gamma = 5.0,
  ship = "ema",             -- which weights to ship: "ema" or "raw" (raw for runs under ~1,000 steps:
                                         -- the EMA still holds 0.995^n of the random init)
  eval_count = 200,   -- prompts per evaluation suite
  eval_steps = 25,    -- DDIM steps for the evaluation samples
  grid_steps = 50,    -- DDIM steps for the sample grid
  guidance = 5.0,
  install = false,
}
settings.seed = semidpo.seed                -- model init, render draws, timesteps, noise, dropout
print(semidpo.inspect(settings))

-- 1. Training prompt mix. `training_prompts(n)` lists n *distinct* texts; single-object texts are few
-- (a few thousand wordings), so in the first 20,000 only ~11% are single-object although the grammar
-- draws 40%. Large single objects are where shape is visible at 16×16, so the mix restores the
-- grammar's share by repeating the single-object texts (the source draws uniformly from the list).
local all = semidpo.world.training_prompts(settings.prompts, settings.world_seed)
local singles, pairs_ = {}, {}
for _, p in ipairs(all) do
  local two = p:find(" and ") or p:find("left of") or p:find("right of") or p:find(" above ") or p:find(" below ")
  if two then pairs_[#pairs_ + 1] = p else singles[#singles + 1] = p end
end
local train_prompts = all
if settings.single_share > 0 and #singles > 0 and #pairs_ > 0 then
  local copies = math.max(1, math.floor(settings.single_share / (1 - settings.single_share) * #pairs_ / #singles + 0.5))
  train_prompts = {}
  for _, p in ipairs(pairs_) do train_prompts[#train_prompts + 1] = p end
  for _ = 1, copies do for _, p in ipairs(singles) do train_prompts[#train_prompts + 1] = p end end
  print(string.format("prompt mix: %d two-object + %d single-object texts ×%d = %.1f%% single-object renders",
    #pairs_, #singles, copies, 100 * copies * #singles / #train_prompts))
end

-- 2. Model and pretraining.
local model = diffusion.new{config = settings.config, seed = settings.seed}
local t0 = semidpo.clock()
local run = diffusion.pretrain{
  model = model, latents = {alignment = {settings.alignment_min, 1}}, steps = settings.steps, batch_size = settings.batch_size, lr = settings.lr,
  warmup = settings.warmup, schedule = settings.schedule, ema_decay = settings.ema_decay, dropout = settings.dropout,
  prompts = train_prompts, world_seed = settings.world_seed, seed = settings.seed,
  checkpoint_every = settings.checkpoint_every, resume = settings.resume, log = "pretrain",
  loss_weighting = settings.loss_weighting, min_snr_gamma = settings.min_snr_gamma,
}
local train_seconds = semidpo.clock() - t0
print(string.format("pretrained %d steps (from %d) in %.1f s, %.1f images/s; loss %.4f (mean of the last 100)",
  run.steps, run.start_step, run.seconds, run.images_per_second, run.recent_loss))

local shipped = model
if settings.ship == "ema" then
  assert(run.ema, "ship = 'ema' needs ema > 0")
  shipped = run.ema
elseif settings.ship ~= "raw" then
  error("ship must be 'ema' or 'raw', got '" .. tostring(settings.ship) .. "'")
end
local meta = {
  recipe = "recipes/pretrain_base.lua", seed = settings.seed, steps = run.steps, batch_size = settings.batch_size,
  lr = settings.lr, ema = settings.ema_decay, weights = settings.ship, prompts = settings.prompts,
  single_share = settings.single_share, alignment_min = settings.alignment_min,
  world_seed = settings.world_seed, train_seconds = string.format("%.1f", train_seconds),
  loss_weighting = settings.loss_weighting,
  min_snr_gamma = settings.loss_weighting == "min_snr" and settings.min_snr_gamma or nil,
}
local base_path = shipped:save("base.safetensors", meta)

-- 2. Sample grid: prompts (rows) × seeds (columns), 16×16 upscaled ×4 nearest-neighbour.
local grid_prompts = {
  "a red circle", "a blue square", "a green triangle", "a yellow diamond",
  "a purple cross on the left", "a cyan ring at the top", "a red square and a blue circle",
  "two orange circles", "a pink triangle above a green square", "",
}
local g0 = semidpo.clock()
local grid = shipped:grid{prompts = grid_prompts, seeds = {1, 2, 3, 4, 5, 6}, path = "base_samples.png",
                          steps = settings.grid_steps, guidance = settings.guidance, scale = 4}
print(string.format("grid %s (%.1f s)", grid, semidpo.clock() - g0))

-- 3. Oracle quality report: model samples vs one mixed-quality render per prompt.
local suites = {
  {name = "pickapic", what = "held-out prompts of the training distribution"},
  {name = "hpsv2", what = "simple single-object prompts"},
}
local reports = {}
local e0 = semidpo.clock()
for _, s in ipairs(suites) do
  local renders = diffusion.evaluate_renders{suite = s.name, limit = settings.eval_count, world_seed = settings.world_seed, seed = 1}
  local samples = semidpo.eval.run{model = shipped, suite = s.name, limit = settings.eval_count, world_seed = settings.world_seed,
                                   seed = 1, steps = settings.eval_steps, guidance = settings.guidance}:oracle_report()
  reports[#reports + 1] = {suite = s.name, what = s.what, samples = samples, renders = renders}
  print(string.format("%s: samples overall %.3f (colour %.2f vs chance %.2f, shape %.2f vs chance %.2f); renders overall %.3f",
    s.name, samples.overall, samples.colour_correct, samples.chance_colour, samples.shape_correct,
    samples.chance_shape, renders.overall))
end
local eval_seconds = semidpo.clock() - e0

local function f(x) return (x ~= x) and "–" or string.format("%.3f", x) end
local lines = {
  "## Base model", "",
  string.format("`semidpo run recipes/pretrain_base.lua --seed %d --set steps=%d%s` — %d steps of batch %d "
    .. "(%d images) in %.1f s (%.1f min, %.1f images/s), %s weights shipped; loss %.4f (mean of the last 100 steps, "
    .. "first 100: see pretrain.csv).", settings.seed, settings.steps, settings.install and " --set install=true" or "",
    run.steps, settings.batch_size, run.steps * settings.batch_size, train_seconds, train_seconds / 60,
    run.images_per_second, settings.ship, run.recent_loss),
  "",
  string.format("Oracle report: %d prompts per suite, one image per prompt; samples with DDIM-%d, guidance %g, "
    .. "sample seed 1; renders with random quality latents (the pretraining distribution), render seed 1. "
    .. "Chance = the same images checked against another prompt of the list. Evaluation took %.1f s.",
    settings.eval_count, settings.eval_steps, settings.guidance, eval_seconds),
  "",
}
for _, r in ipairs(reports) do
  local S, R = r.samples, r.renders
  lines[#lines + 1] = string.format("**%s** (%s)", r.suite, r.what)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "| oracle score | base model samples | world renders |"
  lines[#lines + 1] = "|---|---:|---:|"
  for _, row in ipairs{
    {"alignment", "alignment"}, {"aesthetics", "aesthetics"}, {"detail", "detail"}, {"overall", "overall"},
    {"correct colour", "colour_correct"}, {"correct colour, chance", "chance_colour"},
    {"correct shape", "shape_correct"}, {"correct shape, chance", "chance_shape"},
    {"exact pass (count, shape, colour, place)", "exact_pass"},
  } do
    lines[#lines + 1] = string.format("| %s | %s | %s |", row[1], f(S[row[2]]), f(R[row[2]]))
  end
  lines[#lines + 1] = ""
end
local report_md = table.concat(lines, "\n")
semidpo.write_text("base_report.md", report_md)
semidpo.write_text("base_report.yaml", semidpo.yaml.dump{
  settings = settings, steps = run.steps, train_seconds = train_seconds, recent_loss = run.recent_loss,
  final_loss = run.final_loss, images_per_second = run.images_per_second, eval_seconds = eval_seconds,
  reports = reports,
})
print(report_md)

-- 4. Install into the repository (models/ and docs/img/), relative to this recipe's directory (atomic copies).
if settings.install then
  local root = semidpo.recipe_dir .. "/.."
  semidpo.copy_file(base_path, root .. "/models/base.safetensors")
  semidpo.copy_file(grid, root .. "/docs/img/base_samples.png")
  semidpo.copy_file("pretrain.svg", root .. "/docs/img/base_pretrain_loss.svg")
  print("installed " .. root .. "/models/base.safetensors, docs/img/base_samples.png and docs/img/base_pretrain_loss.svg")
end
print("base model: " .. base_path)
