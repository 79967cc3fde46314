-- Data-parallel timing on one machine (docs/scaling.md): DPO steps and a confidence pass of the base
-- UNet, the gradient's byte size, and the time of a fixed-order allreduce of a tensor that size.
--
--   semidpo run recipes/bench_mpi.lua --threads 2                                  # np = 1 × 2 threads
--   semidpo run recipes/bench_mpi.lua --threads 2 --set grad_shards=2              # same numbers as np = 2
--   mpirun -np 2 semidpo run recipes/bench_mpi.lua --threads 1                     # np = 2 × 1 thread
-- Rank 0 prints the figures and writes bench_mpi.yaml into the run directory.
local semidpo = require "semidpo"
local timing = require "semidpo.timing"
local mpi = semidpo.mpi
local S = semidpo.settings{
  model = "models/base.safetensors",   -- policy and reference start from it
  data = "data/bench_mpi",             -- the world dataset (built once, reused)
  pairs = 128,
  steps = 5,                           -- timed DPO steps, after one untimed warm-up step
  batch_size = 16,                     -- global batch (pairs per step)
  grad_shards = semidpo.optional("integer"),   -- default: the rank count
  repeats = 5,                         -- allreduce timings
}

local policy = semidpo.diffusion.load(S.model)
local reference = semidpo.diffusion.load(S.model):freeze()
local size = policy:config().image_size
local ds = semidpo.world.dataset{dir = S.data, pairs = S.pairs, prompts = 32, seed = 1, image_size = size}
local pairs = ds:pairs()

local function timed(run)
  mpi.barrier()
  local t0 = semidpo.clock()
  local r = run()
  mpi.barrier()
  return semidpo.clock() - t0, r
end

-- DPO: one warm-up step, then S.steps timed steps (the same optimizer state on every rank).
local function train(steps)
  return semidpo.dpo.train{policy = policy, reference = reference, pairs = pairs, steps = steps,
                           batch_size = S.batch_size, grad_shards = S.grad_shards, lr = 1e-5, beta = 2500, seed = 3}
end
local load = timing.loadavg()
train(1)
local dpo_seconds = timed(function() return train(S.steps) end)

local conf_seconds = timed(function()
  return semidpo.dpo.confidence{model = policy, reference = reference, pairs = pairs, beta = 2500, batch_size = 16, seed = 5}
end)

-- The gradient's size, and a fixed-order allreduce (gather + ordered sum) of a tensor that size.
local count = policy:parameter_count()
local g = semidpo.tensor.full({count}, 1.0 / (mpi.rank() + 1))
local walls = {}
for i = 1, S.repeats do walls[i] = timed(function() return mpi.allreduce(g) end) end
table.sort(walls)

local result = {
  ranks = mpi.size(), threads = semidpo.threads, grad_shards = S.grad_shards or mpi.size(),
  batch_size = S.batch_size, dpo_step_ms = 1000 * dpo_seconds / S.steps,
  confidence_pairs = S.pairs, confidence_ms_per_pair = 1000 * conf_seconds / S.pairs,
  parameters = count, gradient_mb = count * 4 / 1e6, allreduce_ms_median = 1000 * walls[(#walls + 1) // 2],
  load = load,
}
if mpi.rank() == 0 then
  print(string.format("np %d × %d threads, grad_shards %d: DPO step %.1f ms (batch %d), confidence %.2f ms/pair, "
    .. "gradient %.2f MB, allreduce %.1f ms [load %s]", result.ranks, result.threads, result.grad_shards,
    result.dpo_step_ms, result.batch_size, result.confidence_ms_per_pair, result.gradient_mb,
    result.allreduce_ms_median, load))
end
semidpo.write_text("bench_mpi.yaml", semidpo.inspect(result))
