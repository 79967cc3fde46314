// The timestep-conditional confidence pass: z(t) of every pair at a list of anchor timesteps, one
// noise draw per pair (keyed by its id) reused across anchors, into a `ConfidenceTable`; Table 7's layout.
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

extension ConfidenceTable {
    /// Accuracy per anchor as a one-row table in percent, like the paper's Table 7 (see `accuracy()`:
    /// acc(t) = (#{z > 0} + ½·#{z = 0}) / #{pairs with a value}).
    public func accuracyTable(title: String = "Accuracy per anchor on the clean test pairs (%)") -> ResultTable {
        var table = ResultTable(title: title, columns: ["Timesteps"] + anchors.map(String.init))
        table.addRow([.text("Accuracy (%)")] + accuracy().map { .number(($0 ?? .nan) * 100, decimals: 1) })
        return table
    }
}

/// The noise of pair `id` in a confidence pass: ε ~ N(0, I) of `shape` (C, H, W), a pure function
/// of (seed, id) — independent of batching and of the pair's position.
public func confidenceNoise(id: Int64, seed: UInt64, shape: [Int]) -> Tensor {
    Tensor.normal(shape, key: RandomKey(seed: seed).child("confidence-noise").child(UInt64(bitPattern: id)))
}

/// One batch of a confidence pass: winners and losers stacked [x_w; x_l] (2B samples), pair i's noise
/// ε_i (`confidenceNoise`) for both its images, the tokens twice; the token ids are checked against
/// every model that will see them.
struct ConfidenceBatch {
    let x: Tensor        // (2B, C, H, W)
    let eps: Tensor      // (2B, C, H, W)
    let tokens: TokenBatch
    let count: Int       // B

    init(_ pairs: PairSource, rows: [Int], seed: UInt64, models: [Denoiser]) throws {
        let batch = try pairs.batch(rows)
        for m in models { try m.checkTokens(batch.tokens) }
        let noise = Tensor(shape: batch.winners.shape,
                           data: batch.ids.flatMap { confidenceNoise(id: $0, seed: seed, shape: pairs.imageShape).data })
        x = concat([batch.winners, batch.losers], axis: 0)
        eps = concat([noise, noise], axis: 0)
        tokens = batch.tokens.appending(batch.tokens)
        count = rows.count
    }
}

/// The rows this MPI rank scores in a confidence pass over `count` pairs: a contiguous block of whole
/// batches of `batchSize` (`Cluster.block` over the batches); all rows on one process.
public func confidenceRows(count: Int, batchSize: Int) -> Range<Int> {
    let batches = Cluster.block(of: (count + batchSize - 1) / max(1, batchSize))
    return min(count, batches.lowerBound * batchSize)..<min(count, batches.upperBound * batchSize)
}

/// Computes z(t) for every pair of `pairs` at every anchor, under `noGrad`:
///
///     z(t) = β · [ (mse_ref(x_w, t) − mse_ref(x_l, t)) − (mse_θ(x_w, t) − mse_θ(x_l, t)) ]
///
/// (label +1: z > 0 means the model agrees with the human label; |z| is the confidence). The result
/// is the tabular stage's `ConfidenceTable` in the source's row order, ready for selection and for
/// the official shard files (`write(to:shards:)`). Pair i uses one noise
/// ε_i (`confidenceNoise`) at all anchors, for both its images. Batches of `batchSize` pairs; for
/// each batch and anchor the model and the reference each see 2B samples [winners; losers].
/// `progress(done, total)` is called after each batch with pairs done so far; throwing stops.
/// Under MPI (`Cluster.size` > 1) each rank scores a contiguous block of whole batches (`done`/`total`
/// count that rank's pairs) and every rank returns the whole table, identical to one process's, with
/// `scoredRows` set to its block.
public func confidencePass(model: Denoiser, reference: Denoiser, pairs: PairSource, config: ConfidencePassConfig,
                           progress: ((Int, Int) throws -> Void)? = nil) throws -> ConfidenceTable {
    try config.validate(steps: model.schedule.steps)
    guard reference.schedule.steps == model.schedule.steps else {
        throw CoreError("confidence: model and reference have different schedules")
    }
    let n = pairs.count, a = config.anchors.count
    // Under MPI, rank r scores a contiguous block of whole batches (the same batches as one process
    // would form, so the same numbers); the blocks are then gathered in rank order.
    let mine = confidenceRows(count: n, batchSize: config.batchSize)
    var values = [Double](repeating: 0, count: n * a)
    let loss = PreferenceLossConfig(kind: .sigmoid, beta: config.beta)
    try noGrad {
        var start = mine.lowerBound
        while start < mine.upperBound {
            let rows = Array(start..<min(mine.upperBound, start + config.batchSize))
            let cb = try ConfidenceBatch(pairs, rows: rows, seed: config.seed, models: [model, reference])
            let (x, eps, tokens, b) = (cb.x, cb.eps, cb.tokens, cb.count)
            for (j, t) in config.anchors.enumerated() {
                let ts = [Int](repeating: t, count: 2 * b)
                let m = model.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens)
                let r = reference.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens)
                let res = try preferenceLoss(policyWinner: (0..<b).map { Double(m.data[$0]) },
                                         policyLoser: (0..<b).map { Double(m.data[b + $0]) },
                                         referenceWinner: (0..<b).map { Double(r.data[$0]) },
                                         referenceLoser: (0..<b).map { Double(r.data[b + $0]) },
                                         labels: [Int8](repeating: 1, count: b), config: loss)
                for (k, row) in rows.enumerated() { values[row * a + j] = res.z[k] }
            }
            start += b
            try progress?(start - mine.lowerBound, mine.count)
        }
    }
    guard Cluster.size > 1 else { return try ConfidenceTable(anchors: config.anchors, ids: pairs.ids, values: values) }
    let all = Cluster.allgather(Array(values[(mine.lowerBound * a)..<(mine.upperBound * a)])).flatMap { $0 }
    guard all.count == n * a else { throw CoreError("confidence: gathered \(all.count) values from the ranks, expected \(n * a)") }
    var table = try ConfidenceTable(anchors: config.anchors, ids: pairs.ids, values: all)
    if table.count == n { table.scoredRows = mine }
    return table
}
