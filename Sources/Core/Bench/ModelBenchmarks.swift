// Model benchmarks (not tests): the reference diffusion model's training step, forward pass and
// guided sampling throughput. `bench/torch_reference.py` times the same architecture in PyTorch.
import Foundation

/// One model benchmark: the median over timed iterations after warm-up.
public struct ModelBenchResult: Codable, Sendable, CustomStringConvertible {
    public let name: String
    /// Images (or denoiser rows) per iteration.
    public let batch: Int
    public let milliseconds: Double
    /// Images per second (for "sampling": denoiser row evaluations per second).
    public let perSecond: Double
    /// Achieved GFLOP/s from the model's analytic FLOP count (training = 3× forward).
    public let gflops: Double
    public let threads: Int
    public let blasCore: String
    public var description: String {
        name.padding(toLength: 22, withPad: " ", startingAt: 0)
            + String(format: " batch %4d  %8.2f ms  %8.1f /s  %6.1f GFLOP/s  (%d threads, ", batch, milliseconds, perSecond, gflops, threads)
            + blasCore + ")"
    }
}

/// Times, on the reference architecture (or `config`) with a 40-word vocabulary:
/// - `train_step`: ε-MSE forward + backward + gradient clip + AdamW update at `trainBatch` (images/s);
/// - `forward`: ε̂ under `noGrad` at `forwardBatch` (images/s);
/// - `sampling`: guided DDIM steps on `forwardBatch` images, i.e. forwards of 2·forwardBatch rows
///   (denoiser evaluations/s = rows/s).
public func runModelBenchmarks(config: DiffusionConfig? = nil, trainBatch: Int = 32, forwardBatch: Int = 64,
                               iterations: Int = 5) throws -> [ModelBenchResult] {
    guard trainBatch > 0, forwardBatch > 0, iterations > 0 else { throw CoreError("runModelBenchmarks: sizes must be > 0") }
    let vocabulary = (0..<40).map { "w\($0)" }
    let model = try DiffusionModel(config: config ?? DiffusionConfig(vocabulary: vocabulary), seed: 1)
    let key = RandomKey(seed: 77)
    let size = model.config.imageSize, channels = model.config.imageChannels
    func prompts(_ n: Int) -> [String] {
        (0..<n).map { i in i % 10 == 0 ? "" : (0..<(3 + i % 4)).map { model.config.vocabulary[(i * 7 + $0 * 3) % model.config.vocabulary.count] }.joined(separator: " ") }
    }
    func timed(_ body: () throws -> Void) rethrows -> Double {
        try body()
        var times: [Double] = []
        for _ in 0..<iterations {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }
    func result(_ name: String, _ batch: Int, _ ms: Double, flops: Double) -> ModelBenchResult {
        ModelBenchResult(name: name, batch: batch, milliseconds: ms, perSecond: Double(batch) / (ms / 1000),
                         gflops: flops / (ms * 1e6), threads: Engine.threads, blasCore: Engine.blasCoreName)
    }
    var results: [ModelBenchResult] = []
    let perImage = model.forwardFLOPs

    do {
        var cfg = PretrainConfig(); cfg.batchSize = trainBatch; cfg.warmupSteps = 0; cfg.checkpointEvery = 0
        let trainer = try Pretrainer(model: model, config: cfg)
        let batch = PretrainBatch(images: Tensor.uniform([trainBatch, channels, size, size], key: key.child("x"), low: -1, high: 1),
                                  prompts: prompts(trainBatch))
        let ms = try timed { try trainer.trainStep(batch) }
        results.append(result("train_step", trainBatch, ms, flops: 3 * perImage * Double(trainBatch)))
    }
    do {
        let x = Tensor.normal([forwardBatch, channels, size, size], key: key.child("f"))
        let tokens = try model.tokenize(prompts(forwardBatch))
        let ts = (0..<forwardBatch).map { ($0 * 37) % model.schedule.steps }
        let ms = timed { _ = noGrad { model.predictNoise(x, timesteps: ts, tokens: tokens) } }
        results.append(result("forward", forwardBatch, ms, flops: perImage * Double(forwardBatch)))
    }
    do {
        let steps = 4
        let tokens = try model.tokenize(prompts(forwardBatch))
        let ids = (0..<forwardBatch).map { SampleID(seed: 3, index: $0) }
        let sc = SamplerConfig(method: .ddim(eta: 0), steps: steps, guidanceScale: 3, batchSize: forwardBatch)
        let ms = try timed { _ = try Sampler.sample(model, tokens: tokens, ids: ids, imageShape: model.imageShape, config: sc) } / Double(steps)
        results.append(result("sampling_guided_ddim", 2 * forwardBatch, ms, flops: perImage * Double(2 * forwardBatch)))
    }
    return results
}
