// What `semidpo bench` reports beyond the per-op rows: whole-model throughput figures (filled by the
// model benchmarks once the reference UNet exists) and the process's peak resident memory.
import Foundation

/// Whole-model throughput of the reference UNet (SPEC §4): what `semidpo bench --json` tracks.
public struct ModelBenchFigures: Codable, Sendable {
    /// Training steps (forward + backward + AdamW) at batch 32, in images per second.
    public var trainImagesPerSecond: Double
    /// Forward passes under `noGrad` at batch 64, in images per second.
    public var inferImagesPerSecond: Double
    /// Diffusion-DPO steps at 16 pairs (policy forward+backward, reference forward), pairs per second.
    public var dpoPairsPerSecond: Double
    /// Achieved GFLOP/s of the training step, if the model knows its FLOP count.
    public var trainGFLOPS: Double?
    /// Per-part timings (forward, backward, optimizer …) to print under the figures.
    public var details: [BenchResult]

    public init(trainImagesPerSecond: Double, inferImagesPerSecond: Double, dpoPairsPerSecond: Double,
                trainGFLOPS: Double? = nil, details: [BenchResult] = []) {
        self.trainImagesPerSecond = trainImagesPerSecond
        self.inferImagesPerSecond = inferImagesPerSecond
        self.dpoPairsPerSecond = dpoPairsPerSecond
        self.trainGFLOPS = trainGFLOPS
        self.details = details
    }
}

public enum ProcessMemory {
    /// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status); nil where
    /// /proc is unavailable.
    public static func peakResidentMB() -> Double? { statusField("VmHWM") }
    /// Current resident set size in MiB (`VmRSS`).
    public static func residentMB() -> Double? { statusField("VmRSS") }

    private static func statusField(_ key: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            // "VmHWM:     123456 kB"
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return nil
    }
}
