// What `semidpo bench` reports beyond the per-op rows: whole-model throughput figures of the
// reference UNet and the process's peak resident memory.
import Foundation

/// Whole-model throughput of the reference UNet (SPEC §4): what `semidpo bench --json` tracks.
public struct ModelBenchFigures: Codable, Sendable {
    /// Training steps (forward + backward + clip + AdamW) at batch 32, in images per second.
    public var trainImagesPerSecond: Double
    /// Forward passes under `noGrad` at batch 64, in images per second.
    public var inferImagesPerSecond: Double
    /// Diffusion-DPO steps at 16 pairs (policy forward+backward, reference forward, AdamW), pairs per second.
    public var dpoPairsPerSecond: Double
    /// Guided DDIM sampling at batch 64: denoiser row evaluations per second (2 rows per image per step).
    public var samplingEvaluationsPerSecond: Double
    /// Achieved GFLOP/s of the training step from the model's analytic FLOP count.
    public var trainGFLOPS: Double?
    /// Every model benchmark row.
    public var results: [ModelBenchResult]

    /// The figures from `runModelBenchmarks`' rows (train_step, forward, dpo_step, sampling_guided_ddim).
    public init(results: [ModelBenchResult]) throws {
        func row(_ name: String) throws -> ModelBenchResult {
            guard let r = results.first(where: { $0.name == name }) else { throw CoreError("model benchmarks: no '\(name)' row") }
            return r
        }
        let train = try row("train_step")
        trainImagesPerSecond = train.perSecond
        trainGFLOPS = train.gflops
        inferImagesPerSecond = try row("forward").perSecond
        dpoPairsPerSecond = try row("dpo_step").perSecond
        samplingEvaluationsPerSecond = try row("sampling_guided_ddim").perSecond
        self.results = results
    }
}
