// Bradley–Terry training of a reward model on pairs labelled by its rater, batched scoring of
// pairs, and pairwise accuracy against labels or the world's true dimensions.
import Foundation

/// Pairs a reward model can be trained on or score: two images and one prompt per row.
public protocol RewardPairData: AnyObject {
    var count: Int { get }
    var imageSize: Int { get }
    /// Rows `rows`: image 0 and image 1 as (B, 3, S, S), and the rows' prompt tokens.
    func rewardBatch(_ rows: [Int]) throws -> (image0: Tensor, image1: Tensor, tokens: RewardTokens)
}

extension Dataset: RewardPairData {
    /// Images as stored (not oriented by the label) and prompt tokens from the prompt texts.
    public func rewardBatch(_ rows: [Int]) throws -> (image0: Tensor, image1: Tensor, tokens: RewardTokens) {
        let (a, b) = try batch(rows, oriented: false)
        var ids: [Int] = []
        ids.reserveCapacity(rows.count * Vocabulary.maxTokens)
        for r in rows { ids += try RewardTokens.row(prompts[promptIndex[r]].text) }
        let shape = [rows.count, 3, imageSize, imageSize]
        return (Tensor(shape: shape, data: a), Tensor(shape: shape, data: b), try RewardTokens(ids: ids, batch: rows.count))
    }
}

/// Pairs held in memory (tests, small experiments): image0, image1 (N, 3, S, S) and token rows.
public final class RewardPairArrays: RewardPairData {
    public let image0: [Float], image1: [Float]
    public let tokenIds: [Int]
    public let count: Int, imageSize: Int

    public init(image0: [Float], image1: [Float], tokens: RewardTokens, imageSize: Int) throws {
        let d = 3 * imageSize * imageSize
        guard image0.count == image1.count, image0.count == tokens.batch * d else {
            throw CoreError("reward pairs: \(image0.count)/\(image1.count) values for \(tokens.batch) pairs of 3×\(imageSize)×\(imageSize)")
        }
        self.image0 = image0; self.image1 = image1; self.tokenIds = tokens.ids; count = tokens.batch; self.imageSize = imageSize
    }

    public func rewardBatch(_ rows: [Int]) throws -> (image0: Tensor, image1: Tensor, tokens: RewardTokens) {
        let d = 3 * imageSize * imageSize, l = Vocabulary.maxTokens
        var a = [Float](), b = [Float](), t = [Int]()
        for r in rows {
            guard r >= 0 && r < count else { throw CoreError("reward pairs: row \(r) outside 0..<\(count)") }
            a += image0[(r * d)..<((r + 1) * d)]; b += image1[(r * d)..<((r + 1) * d)]; t += tokenIds[(r * l)..<((r + 1) * l)]
        }
        let shape = [rows.count, 3, imageSize, imageSize]
        return (Tensor(shape: shape, data: a), Tensor(shape: shape, data: b), try RewardTokens(ids: t, batch: rows.count))
    }
}

/// Training hyperparameters of a reward model.
public struct RewardTrainingConfig: Sendable, Equatable {
    public var steps: Int = 2000
    /// Pairs per step (each step scores 2·batchSize images).
    public var batchSize: Int = 64
    /// AdamW, schedule and clip, shared with the other trainers; defaults `OptimizerSettings.reward`
    /// (lr 3e-3, weight decay 1e-4, 100 warm-up steps, cosine to 10% at `steps`, clip 1). No EMA.
    public var optimizer = OptimizerSettings.reward
    /// Seed of the batch order.
    public var seed: UInt64 = 0
    /// Gradient shards per step (`GradientShards`; default one per MPI rank, 1 without a launcher):
    /// the same value gives the same weights at any rank count. Must divide the batch.
    public var gradShards: Int = GradientShards.perRank
    public init(steps: Int = 2000, batchSize: Int = 64, optimizer: OptimizerSettings = .reward, seed: UInt64 = 0) {
        self.steps = steps; self.batchSize = batchSize; self.optimizer = optimizer; self.seed = seed
    }
    public func validate() throws {
        guard steps >= 1 else { throw CoreError("reward training: steps must be ≥ 1, got \(steps)") }
        guard batchSize >= 1 else { throw CoreError("reward training: batch_size must be ≥ 1, got \(batchSize)") }
        do { try optimizer.validate() } catch let e as CoreError { throw CoreError("reward training: \(e.message)") }
        guard optimizer.lr > 0 else { throw CoreError("reward training: 'lr' must be > 0, got \(optimizer.lr)") }
        guard optimizer.warmup < steps else { throw CoreError("reward training: 'warmup' must be in 0..<steps, got \(optimizer.warmup)") }
        guard optimizer.emaDecay == 0 else { throw CoreError("reward training: 'ema_decay' is not supported (got \(optimizer.emaDecay))") }
        do { _ = try GradientShards(count: gradShards) } catch let e as CoreError { throw CoreError("reward training: \(e.message)") }
    }
}

/// What a training run did.
public struct RewardTrainingResult: Sendable {
    /// Bradley–Terry loss per step.
    public var losses: [Double]
    /// Share of the last ≤ 100 steps' pairs ordered as their labels say (a running train accuracy).
    public var recentAccuracy: Double
    public var seconds: Double
}

/// The Bradley–Terry loss of a batch of score pairs with labels y ∈ {−1, +1} (+1: image 0 preferred):
///
///     L = mean_i −log σ(y_i · (r(x0_i) − r(x1_i)))          (= −log σ(r(x_w) − r(x_l)))
public func bradleyTerryLoss<S>(_ r0: TensorOf<S>, _ r1: TensorOf<S>, labels: [Int8]) -> TensorOf<S> {
    precondition(r0.shape == r1.shape && r0.count == labels.count, "bradleyTerryLoss: \(r0.shape), \(r1.shape) for \(labels.count) labels")
    let y = TensorOf<S>(shape: r0.shape, data: labels.map { S(Int($0)) })
    return -1 * mean(logSigmoid(y * (r0 - r1)))
}

/// Trains `model` with the Bradley–Terry loss on `rows` of `data` labelled by `labels` (one ±1 per
/// entry of `rows`, e.g. from `RewardRater.labels`). Batches are drawn without replacement per epoch
/// from a stream seeded by `config.seed`; AdamW with `config.optimizer`'s schedule and clip. `onStep(step, loss)` is
/// called after every step (1-based); throwing stops training.
@discardableResult
public func trainRewardModel(_ model: RewardModel, data: RewardPairData, rows: [Int], labels: [Int8],
                             config: RewardTrainingConfig,
                             onStep: ((Int, Double) throws -> Void)? = nil) throws -> RewardTrainingResult {
    try config.validate()
    guard !rows.isEmpty else { throw CoreError("reward training: no training pairs") }
    guard rows.count == labels.count else { throw CoreError("reward training: \(rows.count) rows but \(labels.count) labels") }
    for l in labels where l != 1 && l != -1 { throw CoreError("reward training: label \(l) is not ±1") }
    guard data.imageSize == model.config.imageSize else {
        throw CoreError("reward training: data has \(data.imageSize)-pixel images, the model expects \(model.config.imageSize)")
    }
    let start = Date()
    let optimizer = AdamW(config: config.optimizer.adamW(totalSteps: config.steps))
    var rng = RandomStream(RandomKey(seed: config.seed).child("reward-batches"))
    var order = Array(0..<rows.count), cursor = order.count
    var losses: [Double] = [], recent: [(Int, Int)] = []
    let params = model.parameters()
    for step in 1...config.steps {
        var pick: [Int] = []
        while pick.count < min(config.batchSize, rows.count) {
            if cursor == order.count { rng.shuffle(&order); cursor = 0 }
            pick.append(order[cursor]); cursor += 1
        }
        let b = pick.count
        // Gradient shards (one, in place, without MPI): shard g scores pairs [g·b/G, (g+1)·b/G) and
        // weighs its mean by its share of the batch, so the shards sum to the batch's gradient.
        let shards = try GradientShards(count: config.gradShards)
        let perShard = try shards.run(params) { g in
            let part = shards.count == 1 ? 0..<b : try shards.slice(g, of: b, what: "reward training: batch_size")
            let sub = Array(pick[part])
            let batch = try data.rewardBatch(sub.map { rows[$0] })
            let y = sub.map { labels[$0] }
            let n = sub.count
            // One forward over [image0; image1] so both sides share the pass.
            let r = model(concat([batch.image0, batch.image1], axis: 0), tokens: batch.tokens.doubled())
            let r0 = r.slice(batch: 0..<n), r1 = r.slice(batch: n..<(2 * n))
            let mean = bradleyTerryLoss(r0, r1, labels: y)
            let loss = shards.count == 1 ? mean : scaledTotal(mean, Double(n) / Double(b))
            var right = 0
            for i in 0..<n where (r0.data[i] - r1.data[i]) * Float(y[i]) > 0 { right += 1 }
            loss.backward()
            return [Double(loss.item()), Double(right)]
        }
        var lossValue: Float = 0, right = 0
        for v in perShard { lossValue += Float(v[0]); right += Int(v[1]) }
        if let clip = config.optimizer.clip { clipGradNorm(params, maxNorm: clip) }
        optimizer.update(params)
        let l = Double(lossValue)
        guard l.isFinite else { throw CoreError("reward training: loss became \(l) at step \(step)") }
        losses.append(l)
        recent.append((right, b)); if recent.count > 100 { recent.removeFirst() }
        try onStep?(step, l)
    }
    let (num, den) = recent.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    return RewardTrainingResult(losses: losses, recentAccuracy: Double(num) / Double(max(den, 1)),
                                seconds: Date().timeIntervalSince(start))
}

/// Scores both images of `rows` under `noGrad`, in batches of `batchSize` pairs (the engine's ops
/// use all its threads inside each batch). Returns (s0, s1) per row as a flat [s0, s1, s0, s1, …].
/// `progress(done, total)` is called after each batch; throwing stops.
public func scorePairs(_ model: RewardModel, data: RewardPairData, rows: [Int], batchSize: Int = 256,
                       progress: ((Int, Int) throws -> Void)? = nil) throws -> [Float] {
    guard batchSize >= 1 else { throw CoreError("reward scoring: batchSize must be ≥ 1, got \(batchSize)") }
    guard data.imageSize == model.config.imageSize else {
        throw CoreError("reward scoring: data has \(data.imageSize)-pixel images, the model expects \(model.config.imageSize)")
    }
    var out = [Float](repeating: 0, count: 2 * rows.count)
    try noGrad {
        var start = 0
        while start < rows.count {
            let chunk = Array(rows[start..<min(rows.count, start + batchSize)])
            let batch = try data.rewardBatch(chunk)
            let b = chunk.count
            let r = model(concat([batch.image0, batch.image1], axis: 0), tokens: batch.tokens.doubled())
            for i in 0..<b { out[2 * (start + i)] = r.data[i]; out[2 * (start + i) + 1] = r.data[b + i] }
            start += b
            try progress?(start, rows.count)
        }
    }
    return out
}

/// Pairwise accuracy of score pairs `scores = [s0, s1, …]` against a reference preference per pair
/// (`reference[i] > 0`: image 0 better, < 0: image 1 better, = 0: no preference, skipped):
///
///     acc = (#{sign(s0 − s1) = sign(ref)} + ½ #{s0 = s1}) / #{ref ≠ 0}
public func pairwiseAccuracy(scores: [Float], reference: [Float]) throws -> Double {
    guard scores.count == 2 * reference.count else { throw CoreError("pairwise accuracy: \(scores.count / 2) score pairs for \(reference.count) references") }
    var right = 0.0, n = 0
    for i in reference.indices where reference[i] != 0 {
        n += 1
        let d = scores[2 * i] - scores[2 * i + 1]
        if d == 0 { right += 0.5 } else if (d > 0) == (reference[i] > 0) { right += 1 }
    }
    return n == 0 ? 0 : right / Double(n)
}

/// The reference preferences of a dataset's `rows` for `pairwiseAccuracy`: for each true dimension
/// (alignment, aesthetics, detail), the overall truth (equal-weight mean) and the human label —
/// keyed "alignment", "aesthetics", "detail", "overall", "human".
public func truthReferences(_ dataset: Dataset, rows: [Int]) -> [String: [Float]] {
    var out: [String: [Float]] = [:]
    for (k, name) in QualityScores.dimensionNames.enumerated() {
        out[name] = rows.map { dataset.truth0[$0].array[k] - dataset.truth1[$0].array[k] }
    }
    out["overall"] = rows.map { dataset.truth0[$0].overall - dataset.truth1[$0].overall }
    out["human"] = rows.map { Float(dataset.labels[$0]) }
    return out
}
