// Preference training of a policy denoiser against a frozen reference: Diffusion-DPO (all loss
// kinds), Diffusion-KTO and SFT, with per-pair or per-anchor (pseudo-)labels, the composite
// Semi-DPO objective, gradient accumulation, AdamW, clipping, a CSV/SVG log, checkpoints and resume.
import Foundation

/// What the trainer optimises. β follows the convention documented on `PreferenceLossKind`:
/// z = β·label·[(mse_ref(x_w) − mse_ref(x_l)) − (mse_θ(x_w) − mse_θ(x_l))] ("no ½").
public enum PreferenceObjective: Equatable, Sendable {
    /// Diffusion-DPO and its variants (sigmoid, hinge, IPO, GCE, SCE) — `preferenceLoss`.
    case dpo(PreferenceLossConfig)
    /// Diffusion-KTO — `ktoLoss`: the preferred image of each labelled pair is desirable, the other
    /// undesirable (label +1: winner desirable, loser undesirable; −1 the reverse).
    case kto(beta: Double)
    /// Supervised fine-tuning: plain ε-MSE on the preferred image of each labelled pair (the winner
    /// for label +1, the loser for −1). Needs no reference model.
    case sft

    /// β used for the loss and for the implicit accuracy in the log (nil for SFT).
    public var beta: Double? {
        switch self {
        case .dpo(let c): return c.beta
        case .kto(let b): return b
        case .sft: return nil
        }
    }

    public var name: String {
        switch self {
        case .dpo(let c): return "dpo-\(c.kind.rawValue)"
        case .kto: return "kto"
        case .sft: return "sft"
        }
    }

    public func validate() throws {
        switch self {
        case .dpo(let c): try c.validate()
        case .kto(let b): guard b > 0, b.isFinite else { throw CoreError("beta must be a positive number (got \(b))") }
        case .sft: break
        }
    }
}

/// The objective evaluated on one batch of pairs.
public struct PairEvaluation: Sendable {
    /// Loss averaged over the labelled pairs (0 when none is labelled).
    public var loss: Double
    /// z per pair with its label applied (0 where masked; all 0 for SFT without a reference).
    public var z: [Double]
    /// Share of labelled pairs with z > 0, ties ½ (NaN when nothing is labelled or no reference).
    public var implicitAccuracy: Double
    /// Pairs with a non-zero label.
    public var labelled: Int
    /// Per-pair MSEs; NaN where not computed (SFT computes only the preferred image, stored as winner).
    public var policyWinner: [Double]
    public var policyLoser: [Double]
    public var referenceWinner: [Double]
    public var referenceLoser: [Double]
}

/// Evaluates `objective` on a batch where pair i uses `timesteps[i]` and the noise row
/// `noise[i]` (C, H, W) for BOTH its winner and its loser: the policy sees the 2B samples
/// [winners; losers] with noise [ε; ε] and timesteps [t; t] in one forward pass, the reference the
/// same under `noGrad`. If `backwardScale` is given, s·∂loss/∂θ is accumulated into the policy's
/// parameter gradients (through `mse.backward(gradient:)`); otherwise the policy runs under `noGrad`.
public func evaluatePairs(policy: Denoiser, reference: Denoiser?, batch: PairBatch, labels: [Int8],
                          timesteps: [Int], noise: Tensor, objective: PreferenceObjective,
                          backwardScale: Double? = nil) throws -> PairEvaluation {
    let b = batch.count
    try policy.checkTokens(batch.tokens)
    try reference?.checkTokens(batch.tokens)
    guard labels.count == b, timesteps.count == b else {
        throw CoreError("evaluatePairs: \(b) pairs but \(labels.count) labels and \(timesteps.count) timesteps")
    }
    guard noise.shape == batch.winners.shape else {
        throw CoreError("evaluatePairs: noise \(noise.shape) must match the images \(batch.winners.shape)")
    }
    let steps = policy.schedule.steps
    for t in timesteps where t < 0 || t >= steps { throw CoreError("evaluatePairs: timestep \(t) outside 0..<\(steps)") }
    for v in labels where v < -1 || v > 1 { throw CoreError("evaluatePairs: label \(v) is not -1, 0 or +1") }
    if case .sft = objective {} else if reference == nil {
        throw CoreError("\(objective.name) needs a reference model")
    }
    let nan = [Double](repeating: .nan, count: b)
    let labelled = labels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    let train = backwardScale != nil

    if case .sft = objective {
        // Preferred image of each labelled pair: x (n, C, H, W).
        let rows = labels.indices.filter { labels[$0] != 0 }
        var out = PairEvaluation(loss: 0, z: [Double](repeating: 0, count: b), implicitAccuracy: .nan, labelled: labelled,
                                 policyWinner: nan, policyLoser: nan, referenceWinner: nan, referenceLoser: nan)
        guard !rows.isEmpty else { return out }
        let m = batch.winners.count / b
        var x = [Float](), eps = [Float](), ids = [Int32]()
        for i in rows {
            let src = labels[i] > 0 ? batch.winners.data : batch.losers.data
            x.append(contentsOf: src[(i * m)..<((i + 1) * m)])
            eps.append(contentsOf: noise.data[(i * m)..<((i + 1) * m)])
            ids.append(contentsOf: batch.tokens.ids[(i * batch.tokens.length)..<((i + 1) * batch.tokens.length)])
        }
        let shape = [rows.count] + Array(batch.winners.shape.dropFirst())
        let forward = {
            policy.perSampleMSE(x0: Tensor(shape: shape, data: x), noise: Tensor(shape: shape, data: eps),
                                timesteps: rows.map { timesteps[$0] },
                                tokens: TokenBatch(ids: ids, batch: rows.count, length: batch.tokens.length))
        }
        let mse = train ? forward() : noGrad(forward)
        let values = mse.data.map(Double.init)
        out.loss = values.reduce(0, +) / Double(rows.count)
        for (k, i) in rows.enumerated() { out.policyWinner[i] = values[k] }
        if let s = backwardScale {
            guard mse.requiresGrad else { throw CoreError("training: the policy has no parameters that require grad") }
            mse.backward(gradient: [Float](repeating: Float(s / Double(rows.count)), count: rows.count))
        }
        return out
    }

    // DPO and KTO: 2B samples [winners; losers], shared noise and timesteps.
    let x = concat([batch.winners, batch.losers], axis: 0)
    let eps = concat([noise, noise], axis: 0)
    let ts = timesteps + timesteps
    let tokens = batch.tokens.appending(batch.tokens)
    let forward = { policy.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens) }
    let referenceForward = { noGrad { reference!.perSampleMSE(x0: x, noise: eps, timesteps: ts, tokens: tokens) } }
    var mse: Tensor, ref: Tensor                                                     // (2B,) each
    if let p = policy as? DiffusionModel, let r = reference as? DiffusionModel, p !== r {
        // Two independent forwards of models that share nothing: one per core (same numbers as in turn).
        var m: Tensor?, rf: Tensor?
        concurrently({ m = train ? forward() : noGrad(forward) }, { rf = referenceForward() })
        mse = m!; ref = rf!
    } else {
        mse = train ? forward() : noGrad(forward)
        ref = referenceForward()
    }
    let pw = (0..<b).map { Double(mse.data[$0]) }, pl = (0..<b).map { Double(mse.data[b + $0]) }
    let rw = (0..<b).map { Double(ref.data[$0]) }, rl = (0..<b).map { Double(ref.data[b + $0]) }
    var dmse = [Double](repeating: 0, count: 2 * b)
    var out: PairEvaluation
    switch objective {
    case .dpo(let config):
        try config.validate()
        let r = preferenceLoss(policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl,
                               labels: labels, config: config)
        out = PairEvaluation(loss: r.loss, z: r.z, implicitAccuracy: r.implicitAccuracy, labelled: r.labelled,
                             policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl)
        for i in 0..<b { dmse[i] = r.dPolicyWinner[i]; dmse[b + i] = r.dPolicyLoser[i] }
    case .kto(let beta):
        try objective.validate()
        // For the log: z and implicit accuracy in the DPO convention with the same β.
        let r = preferenceLoss(policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl,
                               labels: labels, config: PreferenceLossConfig(kind: .sigmoid, beta: beta))
        out = PairEvaluation(loss: 0, z: r.z, implicitAccuracy: r.implicitAccuracy, labelled: r.labelled,
                             policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl)
        let rows = labels.indices.filter { labels[$0] != 0 }
        if !rows.isEmpty {
            // Images: winners of labelled pairs, then their losers.
            let k = ktoLoss(policy: rows.map { pw[$0] } + rows.map { pl[$0] },
                            reference: rows.map { rw[$0] } + rows.map { rl[$0] },
                            desirable: rows.map { labels[$0] > 0 } + rows.map { labels[$0] < 0 }, beta: beta)
            out.loss = k.loss
            for (j, i) in rows.enumerated() { dmse[i] = k.dPolicy[j]; dmse[b + i] = k.dPolicy[rows.count + j] }
        }
    case .sft:
        fatalError("unreachable: SFT handled above")
    }
    if let s = backwardScale, labelled > 0 {
        guard mse.requiresGrad else { throw CoreError("training: the policy has no parameters that require grad") }
        mse.backward(gradient: dmse.map { Float($0 * s) })
    }
    return out
}

/// Settings of a preference-training run.
public struct PreferenceTrainingConfig: Equatable, Sendable {
    public var objective: PreferenceObjective = .dpo(PreferenceLossConfig())
    /// Optimizer updates to run in total.
    public var steps: Int = 100
    /// Pairs per micro-batch from the labelled (clean) set.
    public var batchSize: Int = 16
    /// Pairs per micro-batch from the unlabelled (pseudo-labelled) set; nil = `batchSize`.
    public var unlabeledBatchSize: Int? = nil
    /// Micro-batches per optimizer update (gradient accumulation): effective batch = batchSize × accumulation.
    public var accumulation: Int = 1
    /// w in L = L_labeled + w · L_unlabeled.
    public var unlabeledWeight: Double = 1
    /// AdamW settings, including the learning-rate schedule (warmup, constant or cosine).
    public var optimizer = AdamWConfig(learningRate: 1e-5, weightDecay: 0)
    /// Global gradient-norm clip (nil = no clipping).
    public var maxGradNorm: Double? = 1
    /// Half-width of an anchor's interval: anchor a stands for [a − h, a + h).
    public var intervalHalfWidth: Int = 50
    /// Seed of every random draw (pair order, t, noise).
    public var seed: UInt64 = 0
    /// Write a checkpoint every this many steps (0 = never) to `checkpointPath`.
    public var checkpointEvery: Int = 0
    public var checkpointPath: String? = nil

    public init() {}

    public func validate() throws {
        try objective.validate()
        guard steps >= 0 else { throw CoreError("steps must be ≥ 0 (got \(steps))") }
        guard batchSize >= 1 else { throw CoreError("batch_size must be ≥ 1 (got \(batchSize))") }
        if let u = unlabeledBatchSize, u < 1 { throw CoreError("unlabeled_batch_size must be ≥ 1 (got \(u))") }
        guard accumulation >= 1 else { throw CoreError("accumulation must be ≥ 1 (got \(accumulation))") }
        guard unlabeledWeight >= 0, unlabeledWeight.isFinite else {
            throw CoreError("unlabeled_weight must be a finite number ≥ 0 (got \(unlabeledWeight))")
        }
        if let m = maxGradNorm, !(m > 0) { throw CoreError("max_grad_norm must be > 0 (got \(m))") }
        guard intervalHalfWidth >= 1 else { throw CoreError("interval half-width must be ≥ 1 (got \(intervalHalfWidth))") }
        guard checkpointEvery >= 0 else { throw CoreError("checkpoint_every must be ≥ 0 (got \(checkpointEvery))") }
        if checkpointEvery > 0 && checkpointPath == nil { throw CoreError("checkpoint_every is set but no checkpoint path is given") }
    }
}

/// One optimizer step's log line. Losses are means over the step's micro-batches; accuracies and
/// MSEs are over all pairs drawn in the step.
public struct TrainingStepMetrics: Equatable, Sendable {
    /// 1-based number of the update this line describes.
    public var step: Int
    /// L_labeled + w · L_unlabeled.
    public var loss: Double
    public var labeledLoss: Double
    public var unlabeledLoss: Double
    /// Implicit accuracy on the labelled-set pairs of the step (z > 0, ties ½).
    public var implicitAccuracy: Double
    /// Implicit accuracy on the pseudo-labelled pairs of the step (against their pseudo-labels).
    public var unlabeledAccuracy: Double
    public var policyMSEWinner: Double
    public var policyMSELoser: Double
    public var referenceMSEWinner: Double
    public var referenceMSELoser: Double
    public var learningRate: Double
    /// Gradient norm before clipping.
    public var gradNorm: Double

    public static let csvColumns = ["step", "loss", "labeled_loss", "unlabeled_loss", "implicit_accuracy",
                                    "unlabeled_accuracy", "policy_mse_winner", "policy_mse_loser",
                                    "reference_mse_winner", "reference_mse_loser", "learning_rate", "grad_norm"]

    /// The values in `csvColumns` order.
    public var csvValues: [Double] {
        [Double(step), loss, labeledLoss, unlabeledLoss, implicitAccuracy, unlabeledAccuracy, policyMSEWinner,
         policyMSELoser, referenceMSEWinner, referenceMSELoser, learningRate, gradNorm]
    }

    init(csvValues v: [Double]) {
        step = Int(v[0]); loss = v[1]; labeledLoss = v[2]; unlabeledLoss = v[3]; implicitAccuracy = v[4]
        unlabeledAccuracy = v[5]; policyMSEWinner = v[6]; policyMSELoser = v[7]; referenceMSEWinner = v[8]
        referenceMSELoser = v[9]; learningRate = v[10]; gradNorm = v[11]
    }

    init(step: Int) {
        self.init(csvValues: [Double(step)] + [Double](repeating: .nan, count: 11))
    }

    /// NaN-aware equality (a log read back from a checkpoint equals the one written).
    public static func == (a: Self, b: Self) -> Bool {
        zip(a.csvValues, b.csvValues).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

/// The pairs, timesteps, labels and noise of one sub-batch: a pure function of
/// (seed, set, step, micro-batch, slot), so a resumed run draws exactly what an uninterrupted one would.
struct DrawnPairs {
    var rows: [Int]
    var timesteps: [Int]
    var labels: [Int8]
    /// (B, C, H, W)
    var noise: Tensor
}

/// Trains a policy denoiser on preference pairs against a frozen reference.
///
/// Each optimizer step runs `accumulation` micro-batches. A micro-batch has up to two sub-batches,
/// forwarded separately: `batchSize` pairs from `labeled` and `unlabeledBatchSize` pairs from
/// `unlabeled`. Per sub-batch, the loss is averaged over its labelled pairs; the step minimises
///
///     L = L_labeled + w · L_unlabeled        (Semi-DPO Eq. 8 with a weight w on the second term)
///
/// with gradients scaled by 1/accumulation. For a per-pair-labelled set, t ~ U{0, …, T−1}; for a
/// per-anchor-labelled set, t is uniform over the union of the pair's labelled intervals and the
/// pair takes that interval's label. Winner and loser always share one ε and one t.
///
/// Randomness: pair order is a fresh permutation of the set's active rows per epoch, keyed by
/// (seed, set, epoch); t and ε are keyed by (seed, set, position) with position =
/// (step · accumulation + micro) · batch + slot. Same seed and thread count ⇒ same numbers, and
/// resuming from a checkpoint reproduces the uninterrupted run bit for bit.
public final class PreferenceTrainer {
    public let policy: Denoiser
    public let reference: Denoiser?
    public let labeled: LabelledPairs?
    public let unlabeled: LabelledPairs?
    public let config: PreferenceTrainingConfig
    public let optimizer: AdamW
    /// Completed optimizer steps.
    public private(set) var step = 0
    /// One line per completed step.
    public private(set) var history: [TrainingStepMetrics] = []

    let key: RandomKey
    private var permutationCache: [UInt64: (epoch: Int, order: [Int])] = [:]
    private var intervalsUnlabeled: AnchorIntervals?
    private var intervalsLabeled: AnchorIntervals?

    /// `reference` may be nil only for SFT and must not be the policy object itself (pass a copy:
    /// the base model, or the previous iteration's weights). At least one pair set is required.
    public init(policy: Denoiser, reference: Denoiser?, labeled: LabelledPairs?, unlabeled: LabelledPairs? = nil,
                config: PreferenceTrainingConfig) throws {
        try config.validate()
        if let r = reference, r === policy {
            throw CoreError("the reference model must be a frozen copy, not the policy itself")
        }
        if case .sft = config.objective {} else if reference == nil {
            throw CoreError("\(config.objective.name) needs a reference model")
        }
        guard labeled != nil || unlabeled != nil else { throw CoreError("training needs a labelled or an unlabelled pair set") }
        let params = policy.parameters()
        guard params.contains(where: { $0.1.requiresGrad }) else {
            throw CoreError("the policy has no parameters that require grad")
        }
        for (name, set) in [("labelled", labeled), ("unlabelled", unlabeled)] {
            guard let set else { continue }
            guard set.activeRows.count > 0 else { throw CoreError("the \(name) pair set has no pair with a non-zero label") }
            guard set.source.imageShape.count == 3 else { throw CoreError("the \(name) pair set's images must be (C, H, W)") }
        }
        self.policy = policy
        self.reference = reference
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.config = config
        self.optimizer = AdamW(config: config.optimizer)
        self.key = RandomKey(seed: config.seed).child("preference-training")
        let steps = policy.schedule.steps
        if let l = labeled, case .perAnchor(let a) = l.labels {
            intervalsLabeled = try AnchorIntervals(anchors: a.anchors, halfWidth: config.intervalHalfWidth, steps: steps)
        }
        if let u = unlabeled, case .perAnchor(let a) = u.labels {
            intervalsUnlabeled = try AnchorIntervals(anchors: a.anchors, halfWidth: config.intervalHalfWidth, steps: steps)
        }
    }

    /// The epoch's order of the set's active rows.
    private func permutation(_ set: LabelledPairs, tag: UInt64, epoch: Int) -> [Int] {
        if let c = permutationCache[tag], c.epoch == epoch { return c.order }
        var order = set.activeRows
        var stream = RandomStream(key.child("order").child(tag).child(UInt64(epoch)))
        stream.shuffle(&order)
        permutationCache[tag] = (epoch, order)
        return order
    }

    /// Draws sub-batch `micro` of update `step` (0-based) from set `tag` (0 labelled, 1 unlabelled).
    func draw(tag: UInt64, step: Int, micro: Int) -> DrawnPairs {
        let set = tag == 0 ? labeled! : unlabeled!
        let size = tag == 0 ? config.batchSize : (config.unlabeledBatchSize ?? config.batchSize)
        let intervals = tag == 0 ? intervalsLabeled : intervalsUnlabeled
        let n = set.activeRows.count
        let m = set.source.imageShape.reduce(1, *)
        let tKey = key.child("timestep").child(tag), noiseKey = key.child("noise").child(tag)
        let steps = policy.schedule.steps
        var d = DrawnPairs(rows: [], timesteps: [], labels: [], noise: Tensor.zeros([0]))
        var noise = [Float]()
        noise.reserveCapacity(size * m)
        for slot in 0..<size {
            let position = (step * config.accumulation + micro) * size + slot
            let row = permutation(set, tag: tag, epoch: position / n)[position % n]
            let u = tKey.uniform(UInt64(position))
            switch set.labels {
            case .perPair(let l):
                d.timesteps.append(min(Int(u * Double(steps)), steps - 1))
                d.labels.append(l[row])
            case .perAnchor(let a):
                let (t, label) = intervals!.draw(labels: a.row(row), u: u)!  // active rows have a label
                d.timesteps.append(t)
                d.labels.append(label)
            }
            d.rows.append(row)
            noise.append(contentsOf: Tensor.normal([m], key: noiseKey.child(UInt64(position))).data)
        }
        d.noise = Tensor(shape: [size] + set.source.imageShape, data: noise)
        return d
    }

    /// Runs one optimizer update and returns its log line.
    @discardableResult
    public func trainStep() throws -> TrainingStepMetrics {
        let params = policy.parameters()
        zeroGrad(params)
        let a = Double(config.accumulation), w = config.unlabeledWeight
        var labLoss = 0.0, unlLoss = 0.0
        var labCorrect = 0.0, labN = 0, unlCorrect = 0.0, unlN = 0
        var pw = [Double](), pl = [Double](), rw = [Double](), rl = [Double]()
        for micro in 0..<config.accumulation {
            for tag: UInt64 in [0, 1] {
                guard let set = tag == 0 ? labeled : unlabeled else { continue }
                let d = draw(tag: tag, step: step, micro: micro)
                let batch = try set.source.batch(d.rows)
                let scale = (tag == 0 ? 1 : w) / a
                let e = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: d.labels,
                                          timesteps: d.timesteps, noise: d.noise, objective: config.objective,
                                          backwardScale: scale)
                if tag == 0 {
                    labLoss += e.loss / a
                    if e.labelled > 0 && !e.implicitAccuracy.isNaN { labCorrect += e.implicitAccuracy * Double(e.labelled); labN += e.labelled }
                } else {
                    unlLoss += e.loss / a
                    if e.labelled > 0 && !e.implicitAccuracy.isNaN { unlCorrect += e.implicitAccuracy * Double(e.labelled); unlN += e.labelled }
                }
                pw += e.policyWinner; pl += e.policyLoser; rw += e.referenceWinner; rl += e.referenceLoser
            }
        }
        let norm = config.maxGradNorm.map { clipGradNorm(params, maxNorm: $0) } ?? gradNorm(params)
        guard norm.isFinite else { throw CoreError("training diverged at step \(step + 1): the gradient norm is \(norm)") }
        let lr = optimizer.currentLearningRate
        optimizer.update(params)
        step += 1
        func mean(_ v: [Double]) -> Double { let f = v.filter { !$0.isNaN }; return f.isEmpty ? .nan : f.reduce(0, +) / Double(f.count) }
        var m = TrainingStepMetrics(step: step)
        m.labeledLoss = labeled == nil ? 0 : labLoss
        m.unlabeledLoss = unlabeled == nil ? 0 : unlLoss
        m.loss = m.labeledLoss + w * m.unlabeledLoss
        m.implicitAccuracy = labN > 0 ? labCorrect / Double(labN) : .nan
        m.unlabeledAccuracy = unlN > 0 ? unlCorrect / Double(unlN) : .nan
        m.policyMSEWinner = mean(pw); m.policyMSELoser = mean(pl)
        m.referenceMSEWinner = mean(rw); m.referenceMSELoser = mean(rl)
        m.learningRate = lr
        m.gradNorm = norm
        history.append(m)
        if config.checkpointEvery > 0, step % config.checkpointEvery == 0, let path = config.checkpointPath {
            try saveCheckpoint(path)
        }
        return m
    }

    /// Runs updates until `config.steps` (or `until`, if smaller) are done, calling
    /// `progress(step, total, metrics)` after each. A throwing callback stops the run.
    public func train(until: Int? = nil,
                      progress: ((Int, Int, TrainingStepMetrics) throws -> Void)? = nil) throws {
        let end = min(until ?? config.steps, config.steps)
        while step < end {
            let m = try trainStep()
            try progress?(step, config.steps, m)
        }
    }

    // MARK: - Log

    /// The log as CSV (columns `TrainingStepMetrics.csvColumns`), numbers at full precision.
    public var logCSV: String {
        var s = TrainingStepMetrics.csvColumns.joined(separator: ",") + "\n"
        for m in history { s += m.csvValues.map { "\($0)" }.joined(separator: ",") + "\n" }
        return s
    }

    /// Writes the CSV log and/or an SVG of loss and implicit accuracy against the step.
    public func writeLog(csv: String? = nil, svg: String? = nil) throws {
        if let csv { try AtomicFile.write(logCSV, to: csv) }
        if let svg {
            let x = history.map { Double($0.step) }
            var series = [PlotSeries(name: "loss", points: Array(zip(x, history.map(\.loss))).map { ($0.0, $0.1) }),
                          PlotSeries(name: "implicit accuracy", points: Array(zip(x, history.map(\.implicitAccuracy))).map { ($0.0, $0.1) })]
            if unlabeled != nil {
                series.append(PlotSeries(name: "pseudo-label accuracy", points: Array(zip(x, history.map(\.unlabeledAccuracy))).map { ($0.0, $0.1) }))
            }
            try SVGPlot.write(svg, title: "\(config.objective.name) training", xLabel: "step", yLabel: "value", series: series)
        }
    }

    static func parseLog(_ text: String) throws -> [TrainingStepMetrics] {
        var out: [TrainingStepMetrics] = []
        for (n, line) in text.split(separator: "\n").enumerated() where n > 0 {
            let v = line.split(separator: ",").map { Double(String($0)) }
            guard v.count == TrainingStepMetrics.csvColumns.count, v.allSatisfy({ $0 != nil }) else {
                throw CoreError("checkpoint log: bad line \(n + 1): \(line)")
            }
            out.append(TrainingStepMetrics(csvValues: v.map { $0! }))
        }
        return out
    }

    // MARK: - Checkpoints

    /// The settings a checkpoint must agree with to resume this run.
    private var fingerprint: [String: String] {
        ["seed": "\(config.seed)", "batch_size": "\(config.batchSize)",
         "unlabeled_batch_size": "\(config.unlabeledBatchSize ?? config.batchSize)",
         "accumulation": "\(config.accumulation)", "objective": config.objective.name]
    }

    /// Writes policy parameters (`policy.<name>`), optimizer state (`optimizer.<name>`), the step and
    /// the log (metadata) to a safetensors file, atomically.
    public func saveCheckpoint(_ path: String) throws {
        var tensors = policy.parameters().map { NamedTensor(name: "policy.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        tensors += optimizer.state().map { NamedTensor(name: "optimizer.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        var meta = fingerprint
        meta["format"] = "semidpo.preference-trainer.v1"
        meta["step"] = "\(step)"
        meta["log"] = logCSV
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Restores a checkpoint written by `saveCheckpoint` of a run with the same seed, batch sizes,
    /// accumulation and objective; training then continues from its step.
    public func loadCheckpoint(_ path: String) throws {
        let (tensors, meta) = try Safetensors.read(path)
        guard meta["format"] == "semidpo.preference-trainer.v1" else {
            throw CoreError("\(path): not a preference-trainer checkpoint")
        }
        for (k, v) in fingerprint where meta[k] != v {
            throw CoreError("\(path): checkpoint has \(k) = \(meta[k] ?? "nothing"), this run has \(v)")
        }
        guard let s = meta["step"].flatMap(Int.init), s >= 0 else { throw CoreError("\(path): bad step in metadata") }
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let params = policy.parameters()
        for (name, p) in params {
            guard let t = byName["policy.\(name)"] else { throw CoreError("\(path): missing parameter '\(name)'") }
            guard t.shape == p.shape else { throw CoreError("\(path): '\(name)' has shape \(t.shape), model expects \(p.shape)") }
        }
        let log = try Self.parseLog(meta["log"] ?? "")
        try optimizer.loadState(tensors.filter { $0.name.hasPrefix("optimizer.") }
            .map { (String($0.name.dropFirst("optimizer.".count)), Tensor(shape: $0.shape, data: $0.data)) }, for: params)
        for (name, p) in params { p.data = byName["policy.\(name)"]!.data }
        step = s
        history = log
        permutationCache = [:]
    }
}
