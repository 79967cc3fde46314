// Model benchmarks (not tests): the reference diffusion model's training step, forward pass, DPO step
// and guided sampling throughput. `bench/torch_reference.py --model` times the same work in PyTorch.
import Foundation

/// One model benchmark: the median over timed iterations after warm-up.
public struct ModelBenchResult: Codable, Sendable, CustomStringConvertible {
    public let name: String
    /// Images per iteration (train, forward), pairs (dpo_step), or denoiser rows per step (sampling).
    public let batch: Int
    /// What `perSecond` counts: "images", "pairs" or "denoiser evaluations".
    public let unit: String
    /// Median wall time of one iteration, in milliseconds.
    public let milliseconds: Double
    /// Fastest iteration: the least disturbed by other work on the machine.
    public let bestMilliseconds: Double
    /// Median CPU time of all the process's threads per iteration.
    public let cpuMilliseconds: Double
    /// `batch` per second from the median.
    public let perSecond: Double
    /// Achieved GFLOP/s from the model's analytic FLOP count (backward = 2× forward).
    public let gflops: Double
    public let threads: Int
    public let blasCore: String
    public var description: String {
        name.padding(toLength: 22, withPad: " ", startingAt: 0)
            + String(format: " batch %4d  %8.2f ms (best %8.2f, cpu %8.2f)  %8.1f %@/s  %6.1f GFLOP/s",
                     batch, milliseconds, bestMilliseconds, cpuMilliseconds, perSecond, unit, gflops)
    }
}

/// Sizes of the model benchmarks (SPEC §4 / issue 3 defaults).
public struct ModelBenchSizes: Sendable {
    public var trainBatch = 32
    public var forwardBatch = 64
    public var dpoPairs = 16
    public var samplingBatch = 64
    public var samplingSteps = 4
    public var iterations = 5
    public init() {}
}

private func cpuNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Times, on the reference architecture (or `config`) with a 40-word vocabulary:
/// - `train_step`: ε-MSE forward + backward + gradient clip + AdamW update at `trainBatch` (images/s);
/// - `forward`: ε̂ under `noGrad` at `forwardBatch` (images/s);
/// - `dpo_step`: one Diffusion-DPO update on `dpoPairs` pairs through `evaluatePairs` — policy forward +
///   backward on the 2·pairs images, reference forward under `noGrad` — then clip + AdamW (pairs/s);
/// - `sampling_guided_ddim`: guided DDIM steps on `samplingBatch` images, i.e. forwards of
///   2·samplingBatch rows (denoiser evaluations/s = rows/s), with the sampler's Winograd 3×3
///   convolutions; `sampling_im2col` the same with the training path's im2col convolutions.
public func runModelBenchmarks(config: DiffusionConfig? = nil, sizes: ModelBenchSizes = ModelBenchSizes()) throws -> [ModelBenchResult] {
    guard sizes.trainBatch > 0, sizes.forwardBatch > 0, sizes.dpoPairs > 0, sizes.samplingBatch > 0,
          sizes.samplingSteps > 0, sizes.iterations > 0 else { throw CoreError("runModelBenchmarks: sizes must be > 0") }
    let vocabulary = (0..<40).map { "w\($0)" }
    let model = try DiffusionModel(config: config ?? DiffusionConfig(vocabulary: vocabulary), seed: 1)
    let key = RandomKey(seed: 77)
    let size = model.config.imageSize, channels = model.config.imageChannels
    let iterations = sizes.iterations
    func prompts(_ n: Int) -> [String] {
        (0..<n).map { i in i % 10 == 0 ? "" : (0..<(3 + i % 4)).map { model.config.vocabulary[(i * 7 + $0 * 3) % model.config.vocabulary.count] }.joined(separator: " ") }
    }
    var results: [ModelBenchResult] = []
    let perImage = model.forwardFLOPs
    /// Warm-up twice (scratch buffers, page faults), then `iterations` timed runs; `divide` splits
    /// one run into that many steps (sampling).
    func measure(_ name: String, batch: Int, unit: String, flops: Double, divide: Double = 1, _ body: () throws -> Void) rethrows {
        try body(); try body()
        var times: [Double] = [], cpu: [Double] = []
        for _ in 0..<iterations {
            let c0 = cpuNanoseconds(), t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / divide)
            cpu.append(Double(cpuNanoseconds() - c0) / 1e6 / divide)
        }
        let ms = times.sorted()[times.count / 2]
        results.append(ModelBenchResult(name: name, batch: batch, unit: unit, milliseconds: ms, bestMilliseconds: times.min()!,
                                        cpuMilliseconds: cpu.sorted()[cpu.count / 2], perSecond: Double(batch) / (ms / 1000),
                                        gflops: flops / (ms * 1e6), threads: Engine.threads, blasCore: Engine.blasCoreName))
    }

    do {
        var cfg = PretrainConfig(); cfg.batchSize = sizes.trainBatch; cfg.optimizer.warmup = 0; cfg.checkpointEvery = 0
        let trainer = try Pretrainer(model: model.clone(), config: cfg)
        let batch = PretrainBatch(images: Tensor.uniform([sizes.trainBatch, channels, size, size], key: key.child("x"), low: -1, high: 1),
                                  prompts: prompts(sizes.trainBatch))
        try measure("train_step", batch: sizes.trainBatch, unit: "images", flops: 3 * perImage * Double(sizes.trainBatch)) {
            _ = try trainer.trainStep(batch)
        }
    }
    do {
        let n = sizes.forwardBatch
        let x = Tensor.normal([n, channels, size, size], key: key.child("f"))
        let tokens = try model.tokenize(prompts(n))
        let ts = (0..<n).map { ($0 * 37) % model.schedule.steps }
        measure("forward", batch: n, unit: "images", flops: perImage * Double(n)) {
            _ = noGrad { model.predictNoise(x, timesteps: ts, tokens: tokens) }
        }
    }
    do {
        let n = sizes.dpoPairs
        let policy = model.clone()
        let reference = model.clone(); reference.freeze()
        let shape = [n, channels, size, size]
        let batch = try PairBatch(winners: Tensor.uniform(shape, key: key.child("w"), low: -1, high: 1),
                                  losers: Tensor.uniform(shape, key: key.child("l"), low: -1, high: 1),
                                  tokens: try model.tokenize(prompts(n)), ids: (0..<n).map(Int64.init))
        let labels = (0..<n).map { Int8($0 % 3 == 2 ? -1 : 1) }
        let timesteps = (0..<n).map { ($0 * 61 + 13) % model.schedule.steps }
        let noise = Tensor.normal(shape, key: key.child("e"))
        let optimizer = AdamW(config: AdamWConfig(learningRate: 1e-5, weightDecay: 0))
        let params = policy.parameters()
        try measure("dpo_step", batch: n, unit: "pairs", flops: 4 * perImage * Double(2 * n)) {
            zeroGrad(params)
            _ = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: labels, timesteps: timesteps,
                                  noise: noise, objective: .dpo(PreferenceLossConfig()), backwardScale: 1)
            _ = clipGradNorm(params, maxNorm: 1)
            optimizer.update(params)
        }
    }
    do {
        let n = sizes.samplingBatch, steps = sizes.samplingSteps
        let tokens = try model.tokenize(prompts(n))
        let ids = (0..<n).map { SampleID(seed: 3, index: $0) }
        // The sampler's default (Winograd 3×3 convolutions), then the training path's im2col ones.
        for (name, winograd) in [("sampling_guided_ddim", true), ("sampling_im2col", false)] {
            let sc = SamplerConfig(method: .ddim(eta: 0), steps: steps, guidanceScale: 3, batchSize: n, winograd: winograd)
            try measure(name, batch: 2 * n, unit: "denoiser evaluations", flops: perImage * Double(2 * n),
                        divide: Double(steps)) {
                _ = try Sampler.sample(model, tokens: tokens, ids: ids, imageShape: model.imageShape, config: sc)
            }
        }
    }
    return results
}
