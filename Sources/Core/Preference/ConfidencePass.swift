// The timestep-conditional confidence pass: z(t) of every pair at a list of anchor timesteps, one
// noise draw per pair (keyed by its id) reused across anchors; and accuracy per anchor (Table 7).
import Foundation

/// Settings of a confidence pass.
public struct ConfidencePassConfig: Equatable, Sendable {
    /// Anchor timesteps (default 50, 150, …, 950).
    public var anchors: [Int] = AnchorIntervals.paperAnchors
    /// β of the convention on `PreferenceLossKind`.
    public var beta: Double = 2500
    /// Pairs per forward pass (2·batchSize samples for the policy, as many for the reference).
    public var batchSize: Int = 32
    /// Seed of the per-pair noise.
    public var seed: UInt64 = 0

    public init(anchors: [Int] = AnchorIntervals.paperAnchors, beta: Double = 2500, batchSize: Int = 32, seed: UInt64 = 0) {
        self.anchors = anchors; self.beta = beta; self.batchSize = batchSize; self.seed = seed
    }

    public func validate(steps: Int) throws {
        guard !anchors.isEmpty else { throw CoreError("confidence: no anchors") }
        guard Set(anchors).count == anchors.count else { throw CoreError("confidence: anchors listed twice: \(anchors)") }
        for a in anchors where a < 0 || a >= steps { throw CoreError("confidence: anchor \(a) outside 0..<\(steps)") }
        guard beta > 0, beta.isFinite else { throw CoreError("beta must be a positive number (got \(beta))") }
        guard batchSize >= 1 else { throw CoreError("confidence: batch_size must be ≥ 1 (got \(batchSize))") }
    }
}

/// z per pair and anchor, pairs × anchors, in the source's row order.
///
///     z(t) = β · [ (mse_ref(x_w, t) − mse_ref(x_l, t)) − (mse_θ(x_w, t) − mse_θ(x_l, t)) ]
///
/// (label +1: z > 0 means the model agrees with the human label; |z| is the confidence.)
public struct ConfidenceScores: Equatable, Sendable {
    public let anchors: [Int]
    public let ids: [Int64]
    /// (pairs, anchors) row-major.
    public let values: [Double]

    public init(anchors: [Int], ids: [Int64], values: [Double]) throws {
        guard values.count == ids.count * anchors.count else {
            throw CoreError("confidence: \(values.count) values for \(ids.count) pairs × \(anchors.count) anchors")
        }
        self.anchors = anchors; self.ids = ids; self.values = values
    }

    public var count: Int { ids.count }
    public func value(row: Int, anchor a: Int) -> Double { values[row * anchors.count + a] }

    /// Accuracy per anchor — the paper's Table 7 when the pairs are the clean test split:
    /// acc(t) = (#{z > 0} + ½·#{z = 0}) / #{pairs}, NaN values skipped; NaN if no pair has a value.
    public func accuracyPerAnchor() -> [Double] {
        anchorAccuracy(values: values, anchors: anchors.count)
    }

    /// Accuracy per anchor as a one-row table (percent), like the paper's Table 7.
    public func accuracyTable(title: String = "Accuracy per anchor on the clean test pairs (%)") -> ResultTable {
        var table = ResultTable(title: title, columns: ["Timesteps"] + anchors.map(String.init))
        table.addRow([.text("Accuracy (%)")] + accuracyPerAnchor().map { .number($0 * 100, decimals: 1) })
        return table
    }
}

/// acc_j = (#{z_ij > 0} + ½·#{z_ij = 0}) / #{i : z_ij not NaN} for a row-major (pairs, anchors) table.
public func anchorAccuracy(values: [Double], anchors: Int) -> [Double] {
    precondition(anchors > 0 && values.count % anchors == 0, "anchorAccuracy: \(values.count) values for \(anchors) anchors")
    let n = values.count / anchors
    return (0..<anchors).map { j in
        var seen = 0, right = 0.0
        for i in 0..<n {
            let z = values[i * anchors + j]
            if z.isNaN { continue }
            seen += 1
            right += z > 0 ? 1 : (z == 0 ? 0.5 : 0)
        }
        return seen == 0 ? .nan : right / Double(seen)
    }
}

/// The noise of pair `id` in a confidence pass: ε ~ N(0, I) of `shape` (C, H, W), a pure function
/// of (seed, id) — independent of batching and of the pair's position.
public func confidenceNoise(id: Int64, seed: UInt64, shape: [Int]) -> Tensor {
    Tensor.normal(shape, key: RandomKey(seed: seed).child("confidence-noise").child(UInt64(bitPattern: id)))
}

/// Computes z(t) for every pair of `pairs` at every anchor, under `noGrad`. Pair i uses one noise
/// ε_i (`confidenceNoise`) at all anchors, for both its images. Batches of `batchSize` pairs; for
/// each batch and anchor the model and the reference each see 2B samples [winners; losers].
/// `progress(done, total)` is called after each batch with pairs done so far; throwing stops.
public func confidencePass(model: Denoiser, reference: Denoiser, pairs: PairSource, config: ConfidencePassConfig,
                           progress: ((Int, Int) throws -> Void)? = nil) throws -> ConfidenceScores {
    try config.validate(steps: model.schedule.steps)
    guard reference.schedule.steps == model.schedule.steps else {
        throw CoreError("confidence: model and reference have different schedules")
    }
    let n = pairs.count, a = config.anchors.count
    var values = [Double](repeating: 0, count: n * a)
    let loss = PreferenceLossConfig(kind: .sigmoid, beta: config.beta)
    try noGrad {
        var start = 0
        while start < n {
            let rows = Array(start..<min(n, start + config.batchSize))
            let batch = try pairs.batch(rows)
            let noise = Tensor(shape: batch.winners.shape,
                               data: batch.ids.flatMap { confidenceNoise(id: $0, seed: config.seed, shape: pairs.imageShape).data })
            let x = concat([batch.winners, batch.losers], axis: 0)
            let eps = concat([noise, noise], axis: 0)
            let tokens = batch.tokens.appending(batch.tokens)
            let b = rows.count
            for (j, t) in config.anchors.enumerated() {
                let ts = [Int](repeating: t, count: 2 * b)
                let m = model.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens)
                let r = reference.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens)
                let res = preferenceLoss(policyWinner: (0..<b).map { Double(m.data[$0]) },
                                         policyLoser: (0..<b).map { Double(m.data[b + $0]) },
                                         referenceWinner: (0..<b).map { Double(r.data[$0]) },
                                         referenceLoser: (0..<b).map { Double(r.data[b + $0]) },
                                         labels: [Int8](repeating: 1, count: b), config: loss)
                for (k, row) in rows.enumerated() { values[row * a + j] = res.z[k] }
            }
            start += b
            try progress?(start, n)
        }
    }
    return try ConfidenceScores(anchors: config.anchors, ids: pairs.ids, values: values)
}
