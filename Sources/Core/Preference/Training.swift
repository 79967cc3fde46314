// Preference training of a policy denoiser against a reference: Diffusion-DPO (all loss kinds, and a
// recipe's own loss), Diffusion-KTO and SFT, with per-pair or per-anchor (pseudo-)labels, the
// composite Semi-DPO objective, gradient accumulation, AdamW, clipping, reference refresh, label
// swaps, dropped pairs, an EMA, in-training validation, a CSV/SVG log, checkpoints and resume.
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
        case .dpo(let c): return "dpo-\(c.name)"
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
/// `weights` are the pairs' robust weights for the DPO loss (see `preferenceLoss`; nil = all 1).
public func evaluatePairs(policy: Denoiser, reference: Denoiser?, batch: PairBatch, labels: [Int8],
                          weights: [Double]? = nil, timesteps: [Int], noise: Tensor, objective: PreferenceObjective,
                          backwardScale: Double? = nil) throws -> PairEvaluation {
    let b = batch.count
    try policy.checkTokens(batch.tokens)
    try reference?.checkTokens(batch.tokens)
    guard labels.count == b, timesteps.count == b, (weights?.count ?? b) == b else {
        throw CoreError("evaluatePairs: \(b) pairs but \(labels.count) labels, \(timesteps.count) timesteps and \(weights?.count ?? b) weights")
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
        let r = try preferenceLoss(policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl,
                                   labels: labels, weights: weights, config: config)
        out = PairEvaluation(loss: r.loss, z: r.z, implicitAccuracy: r.implicitAccuracy, labelled: r.labelled,
                             policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl)
        for i in 0..<b { dmse[i] = r.dPolicyWinner[i]; dmse[b + i] = r.dPolicyLoser[i] }
    case .kto(let beta):
        try objective.validate()
        // For the log: z and implicit accuracy in the DPO convention with the same β.
        let r = try preferenceLoss(policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl,
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
    /// Gradient shards per update (`GradientShards`): each micro-batch is cut into this many equal
    /// slices whose gradients are summed in slice order, spread over the MPI ranks. 1 = the whole
    /// micro-batch in one pass (the single-process numbers); the same value gives the same weights at
    /// any rank count. Must divide both batch sizes and be a multiple of the rank count; not for KTO.
    public var gradShards: Int = 1
    /// w in L = L_labeled + w · L_unlabeled.
    public var unlabeledWeight: Double = 1
    /// AdamW, schedule, gradient clip (0 = off) and EMA of the policy (0 = off).
    public var optimizer = OptimizerSettings.preference
    /// Half-width of an anchor's interval: anchor a stands for [a − h, a + h).
    public var intervalHalfWidth: Int = 50
    /// Seed of every random draw (pair order, t, noise, label swaps).
    public var seed: UInt64 = 0
    /// Write a checkpoint every this many steps (0 = never) to `checkpointPath`.
    public var checkpointEvery: Int = 0
    public var checkpointPath: String? = nil
    /// Copy the policy's weights into the reference after every this many steps (0 = never; the
    /// last step never copies). The authors' `--update_ref_model_steps`.
    public var referenceUpdateEvery: Int = 0
    /// Copy the policy into the reference after every epoch of the main set (the labelled set, else
    /// the unlabelled one): every ⌊active pairs / (batch size · accumulation)⌋ steps (at least 1).
    /// The authors' `--update_ref_model_per_epoch`; ignored when `referenceUpdateEvery` > 0, as theirs.
    public var referenceUpdatePerEpoch: Bool = false
    /// Probability of swapping each labelled-set pair's label (per pair, fixed for the run, keyed by
    /// (seed, pair id)). The authors' `--random_swap_label_prob` label-noise ablation. Per-pair labels only.
    public var labelSwapProbability: Double = 0
    /// Pair ids never trained on (as if their labels were 0), in either set. The authors' `--filter_bad_samples`.
    public var droppedIDs: [Int64] = []
    /// The robust term of `gce`/`sce` is active for the update that starts after s completed steps
    /// when robustStart ≤ s ≤ robustEnd; outside, the loss is CE (authors' `--robust_loss_start_step`,
    /// `--robust_loss_end_step`).
    public var robustStart: Int = 0
    public var robustEnd: Int = Int.max
    /// A pair's robust weight is 0 when its timestep t ≥ this (nil = never; authors' `--truncate_timesteps`).
    public var robustTimestepCutoff: Int? = nil
    /// Robust weight w per row of the labelled / unlabelled set (nil = 1), e.g. `committeeDisagreement`
    /// (authors' `--use_reward_scores`).
    public var labeledRobustWeights: [Double]? = nil
    public var unlabeledRobustWeights: [Double]? = nil

    public init() {}

    public func validate() throws {
        try objective.validate()
        guard steps >= 0 else { throw CoreError("steps must be ≥ 0 (got \(steps))") }
        guard batchSize >= 1 else { throw CoreError("batch_size must be ≥ 1 (got \(batchSize))") }
        if let u = unlabeledBatchSize, u < 1 { throw CoreError("unlabeled_batch_size must be ≥ 1 (got \(u))") }
        guard accumulation >= 1 else { throw CoreError("accumulation must be ≥ 1 (got \(accumulation))") }
        let shards = try GradientShards(count: gradShards)
        if gradShards > 1 {
            if case .kto = objective {
                throw CoreError("grad_shards = \(gradShards): KTO's reference point (the batch's mean KL) is a statistic of the whole batch; use grad_shards = 1 (one rank)")
            }
            _ = try shards.slice(0, of: batchSize, what: "batch_size")
            _ = try shards.slice(0, of: unlabeledBatchSize ?? batchSize, what: "unlabeled_batch_size")
        }
        guard unlabeledWeight >= 0, unlabeledWeight.isFinite else {
            throw CoreError("unlabeled_weight must be a finite number ≥ 0 (got \(unlabeledWeight))")
        }
        try optimizer.validate(totalSteps: steps)
        guard intervalHalfWidth >= 1 else { throw CoreError("interval half-width must be ≥ 1 (got \(intervalHalfWidth))") }
        guard checkpointEvery >= 0 else { throw CoreError("checkpoint_every must be ≥ 0 (got \(checkpointEvery))") }
        if checkpointEvery > 0 && checkpointPath == nil { throw CoreError("checkpoint_every is set but no checkpoint path is given") }
        guard referenceUpdateEvery >= 0 else { throw CoreError("ref_update_every must be ≥ 0 (got \(referenceUpdateEvery))") }
        guard labelSwapProbability >= 0, labelSwapProbability <= 1 else {
            throw CoreError("label_swap must be a probability in [0, 1] (got \(labelSwapProbability))")
        }
        guard robustStart <= robustEnd else { throw CoreError("robust_start (\(robustStart)) is after robust_end (\(robustEnd))") }
        if let c = robustTimestepCutoff, c < 1 { throw CoreError("robust_max_timestep must be ≥ 1 (got \(c))") }
        for (name, w) in [("labelled", labeledRobustWeights), ("unlabelled", unlabeledRobustWeights)] {
            for v in w ?? [] where !(v >= 0 && v <= 1) { throw CoreError("robust weights of the \(name) set must be in [0, 1] (got \(v))") }
        }
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

/// The pairs, timesteps, labels, robust weights and noise of one sub-batch: a pure function of
/// (seed, set, step, micro-batch, slot), so a resumed run draws exactly what an uninterrupted one would.
struct DrawnPairs {
    var rows: [Int]
    var timesteps: [Int]
    var labels: [Int8]
    var weights: [Double]
    /// (B, C, H, W)
    var noise: Tensor
}

/// In-training validation: `run(step)` returns named scores (e.g. a committee's mean scores of images
/// sampled from fixed prompts), called after every `every` steps; the scores become `val_<name>`
/// columns of the log and series of its SVG.
public struct TrainingValidation {
    public var every: Int
    public var run: (Int) throws -> [(String, Double)]
    public init(every: Int, run: @escaping (Int) throws -> [(String, Double)]) { self.every = every; self.run = run }
}

/// Trains a policy denoiser on preference pairs against a reference.
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
/// After each update: the EMA shadow moves toward the policy (if `ema_decay` > 0), the reference
/// takes the policy's weights when a refresh is due, validation runs when due, a checkpoint is
/// written when due.
///
/// Randomness: pair order is a fresh permutation of the set's active rows per epoch, keyed by
/// (seed, set, epoch); t and ε are keyed by (seed, set, position) with position =
/// (step · accumulation + micro) · batch + slot. Same seed and thread count ⇒ same numbers, and
/// resuming from a checkpoint reproduces the uninterrupted run bit for bit.
public final class PreferenceTrainer {
    public let policy: Denoiser
    public let reference: Denoiser?
    /// The sets as trained: labels after swaps and dropped ids.
    public let labeled: LabelledPairs?
    public let unlabeled: LabelledPairs?
    public let config: PreferenceTrainingConfig
    public let optimizer: AdamW
    /// Completed optimizer steps.
    public private(set) var step = 0
    /// One line per completed step.
    public private(set) var history: [TrainingStepMetrics] = []
    /// EMA of the policy's parameters (same names), when `optimizer.emaDecay` > 0.
    public private(set) var ema: [(String, Tensor)]?
    /// Labelled-set pairs whose label the swap ablation flipped.
    public let swappedLabels: Int
    /// Steps after which the reference takes the policy's weights (0 = never).
    public let referenceUpdateInterval: Int
    /// Called after every `validation.every` steps.
    public var validation: TrainingValidation?
    /// Scores of every validation, by step.
    public private(set) var validationHistory: [(step: Int, scores: [(String, Double)])] = []

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
        let key = RandomKey(seed: config.seed).child("preference-training")
        // Dropped ids and label swaps change the sets' labels before anything is drawn.
        var unknown = Set(config.droppedIDs)
        for set in [labeled, unlabeled] { for id in set?.source.ids ?? [] { unknown.remove(id) } }
        if let id = unknown.sorted().first { throw CoreError("drop: no pair with id \(id) in the training sets") }
        let dropped = Set(config.droppedIDs)
        var swapped = 0
        func prepared(_ set: LabelledPairs?, swap: Bool) throws -> LabelledPairs? {
            guard let set else { return nil }
            if !swap && dropped.isEmpty { return set }
            let ids = set.source.ids
            switch set.labels {
            case .perPair(var l):
                for r in l.indices {
                    if dropped.contains(ids[r]) { l[r] = 0; continue }
                    if swap && key.child("label-swap").uniform(UInt64(bitPattern: ids[r])) < config.labelSwapProbability {
                        l[r] = -l[r]; swapped += l[r] != 0 ? 1 : 0
                    }
                }
                return try LabelledPairs(set.source, labels: .perPair(l))
            case .perAnchor(let a):
                if swap { throw CoreError("label_swap applies to per-pair labels, not to per-anchor pseudo-labels") }
                let k = a.anchors.count
                var flat = [Int8]()
                for r in 0..<a.rows { flat += dropped.contains(ids[r]) ? [Int8](repeating: 0, count: k) : Array(a.row(r)) }
                return try LabelledPairs(set.source, labels: .perAnchor(try AnchorLabels(anchors: a.anchors, labels: flat)))
            }
        }
        let labeled = try prepared(labeled, swap: config.labelSwapProbability > 0)
        let unlabeled = try prepared(unlabeled, swap: false)
        for (name, set, weights) in [("labelled", labeled, config.labeledRobustWeights), ("unlabelled", unlabeled, config.unlabeledRobustWeights)] {
            guard let set else {
                if weights != nil { throw CoreError("robust weights are given for the \(name) set, which is absent") }
                continue
            }
            guard set.activeRows.count > 0 else { throw CoreError("the \(name) pair set has no pair with a non-zero label") }
            guard set.source.imageShape.count == 3 else { throw CoreError("the \(name) pair set's images must be (C, H, W)") }
            if let model = policy as? DiffusionModel {
                // A mismatch would otherwise stop the process inside the model (a precondition), not the run.
                guard set.source.imageShape == model.imageShape else {
                    throw CoreError("the \(name) pairs' images are \(set.source.imageShape), the model makes \(model.imageShape)")
                }
                let length = try set.source.batch([set.activeRows[0]]).tokens.length
                guard length == model.config.maxTokens else {
                    throw CoreError("the \(name) pairs' prompts have \(length) tokens per row, the model reads \(model.config.maxTokens) (build the pairs with the model's tokenizer)")
                }
            }
            if let w = weights, w.count != set.source.count {
                throw CoreError("\(w.count) robust weights for the \(name) set of \(set.source.count) pairs")
            }
        }
        // Reference refresh copies parameters by position: the two must have the same layout.
        let main = labeled ?? unlabeled!
        let mainBatch = (labeled != nil ? config.batchSize : (config.unlabeledBatchSize ?? config.batchSize)) * config.accumulation
        referenceUpdateInterval = config.referenceUpdateEvery > 0 ? config.referenceUpdateEvery
            : (config.referenceUpdatePerEpoch ? max(1, main.activeRows.count / mainBatch) : 0)
        if referenceUpdateInterval > 0 {
            guard let r = reference else { throw CoreError("a reference refresh needs a reference model") }
            let rp = r.parameters()
            guard rp.count == params.count, zip(rp, params).allSatisfy({ $0.0 == $1.0 && $0.1.shape == $1.1.shape }) else {
                throw CoreError("a reference refresh needs a reference with the policy's parameters (same names and shapes)")
            }
        }
        self.policy = policy
        self.reference = reference
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.swappedLabels = swapped
        self.config = config
        self.optimizer = AdamW(config: config.optimizer.adamW(totalSteps: config.steps))
        self.key = key
        if config.optimizer.emaDecay > 0 { ema = params.map { ($0.0, Tensor(shape: $0.1.shape, data: $0.1.data)) } }
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
        let robust = tag == 0 ? config.labeledRobustWeights : config.unlabeledRobustWeights
        let n = set.activeRows.count
        let m = set.source.imageShape.reduce(1, *)
        let tKey = key.child("timestep").child(tag), noiseKey = key.child("noise").child(tag)
        let steps = policy.schedule.steps
        var d = DrawnPairs(rows: [], timesteps: [], labels: [], weights: [], noise: Tensor.zeros([0]))
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
            let cut = config.robustTimestepCutoff.map { d.timesteps[slot] >= $0 } ?? false
            d.weights.append(cut ? 0 : (robust?[row] ?? 1))
            d.rows.append(row)
            noise.append(contentsOf: Tensor.normal([m], key: noiseKey.child(UInt64(position))).data)
        }
        d.noise = Tensor(shape: [size] + set.source.imageShape, data: noise)
        return d
    }

    /// The objective of the update that starts after `step` completed steps: outside the robust
    /// window [robustStart, robustEnd], GCE and SCE fall back to CE.
    func objective(atStep step: Int) -> PreferenceObjective {
        if case .dpo(let c) = config.objective, !(config.robustStart <= step && step <= config.robustEnd) {
            return .dpo(c.withoutRobustTerm)
        }
        return config.objective
    }

    /// Runs one optimizer update and returns its log line. The gradient is `config.gradShards` shards
    /// (`GradientShards`): shard g takes slots [g·B/G, (g+1)·B/G) of every micro-batch of both sets,
    /// its loss scaled by its share of the micro-batch's labelled pairs, so the shards sum to the
    /// gradient of the mean over the whole batch.
    @discardableResult
    public func trainStep() throws -> TrainingStepMetrics {
        let params = policy.parameters()
        let a = Double(config.accumulation), w = config.unlabeledWeight
        let objective = objective(atStep: step)
        let shards = try GradientShards(count: config.gradShards)
        var labLoss = 0.0, unlLoss = 0.0
        var labCorrect = 0.0, labN = 0, unlCorrect = 0.0, unlN = 0
        var pw = [Double](), pl = [Double](), rw = [Double](), rl = [Double]()
        // The micro-batches of both sets, drawn whole on every rank (draws are cheap, keyed by position).
        var draws: [(tag: UInt64, set: LabelledPairs, d: DrawnPairs)] = []
        for micro in 0..<config.accumulation {
            for tag: UInt64 in [0, 1] {
                guard let set = tag == 0 ? labeled : unlabeled else { continue }
                draws.append((tag, set, draw(tag: tag, step: step, micro: micro)))
            }
        }
        // Per shard and draw: loss, labelled, implicit accuracy, then the four MSE arrays of its slots.
        let perShard = try shards.run(params) { g in
            var out = [Double]()
            for (tag, set, d) in draws {
                let size = d.rows.count
                let r = shards.count == 1 ? 0..<size : try shards.slice(g, of: size, what: tag == 0 ? "batch_size" : "unlabeled_batch_size")
                let m = d.noise.count / max(size, 1)
                let labels = Array(d.labels[r])
                let total = d.labels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }, here = labels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
                var scale = (tag == 0 ? 1 : w) / a
                if shards.count > 1 { scale *= Double(here) / Double(max(total, 1)) }
                let robust = (tag == 0 ? config.labeledRobustWeights : config.unlabeledRobustWeights) != nil
                    || config.robustTimestepCutoff != nil
                let noise = shards.count == 1 ? d.noise
                    : Tensor(shape: [r.count] + Array(d.noise.shape.dropFirst()), data: Array(d.noise.data[(r.lowerBound * m)..<(r.upperBound * m)]))
                let e = try evaluatePairs(policy: policy, reference: reference, batch: try set.source.batch(Array(d.rows[r])),
                                          labels: labels, weights: robust ? Array(d.weights[r]) : nil,
                                          timesteps: Array(d.timesteps[r]), noise: noise, objective: objective, backwardScale: scale)
                out += [e.loss, Double(e.labelled), e.implicitAccuracy]
                out += e.policyWinner + e.policyLoser + e.referenceWinner + e.referenceLoser
            }
            return out
        }
        var offsets = [Int](repeating: 0, count: shards.count)
        for (tag, _, d) in draws {
            let total = d.labels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
            let n = d.rows.count / shards.count
            var loss = 0.0
            for g in 0..<shards.count {
                let v = perShard[g], o = offsets[g]
                let (eLoss, labelled, accuracy) = (v[o], Int(v[o + 1]), v[o + 2])
                if shards.count == 1 { loss = eLoss } else { loss += eLoss * Double(labelled) / Double(max(total, 1)) }
                if labelled > 0 && !accuracy.isNaN {
                    if tag == 0 { labCorrect += accuracy * Double(labelled); labN += labelled }
                    else { unlCorrect += accuracy * Double(labelled); unlN += labelled }
                }
                pw += v[(o + 3)..<(o + 3 + n)]; pl += v[(o + 3 + n)..<(o + 3 + 2 * n)]
                rw += v[(o + 3 + 2 * n)..<(o + 3 + 3 * n)]; rl += v[(o + 3 + 3 * n)..<(o + 3 + 4 * n)]
                offsets[g] = o + 3 + 4 * n
            }
            if tag == 0 { labLoss += loss / a } else { unlLoss += loss / a }
        }
        let norm = config.optimizer.clip.map { clipGradNorm(params, maxNorm: $0) } ?? gradNorm(params)
        guard norm.isFinite else { throw CoreError("training diverged at step \(step + 1): the gradient norm is \(norm)") }
        let lr = optimizer.currentLearningRate
        optimizer.update(params)
        if let ema { updateEMA(ema, toward: params, decay: config.optimizer.emaDecay) }
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
        if referenceUpdateInterval > 0, step % referenceUpdateInterval == 0, step < config.steps, let r = reference {
            for ((_, q), (_, p)) in zip(r.parameters(), params) { q.data = p.data }
        }
        if let v = validation, v.every > 0, step % v.every == 0 {
            validationHistory.append((step, try v.run(step)))
        }
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

    /// Names of the validation scores in the log, in order of first appearance.
    public var validationNames: [String] {
        var names: [String] = []
        for (_, scores) in validationHistory { for (n, _) in scores where !names.contains(n) { names.append(n) } }
        return names
    }

    /// The log as CSV (columns `TrainingStepMetrics.csvColumns`, then `val_<name>` per validation
    /// score, empty where no validation ran), numbers at full precision.
    public var logCSV: String {
        let names = validationNames
        var byStep: [Int: [String: Double]] = [:]
        for (s, scores) in validationHistory { byStep[s] = Dictionary(scores, uniquingKeysWith: { a, _ in a }) }
        var s = (TrainingStepMetrics.csvColumns + names.map { "val_\($0)" }).joined(separator: ",") + "\n"
        for m in history {
            var cells = m.csvValues.map { "\($0)" }
            let v = byStep[m.step]
            cells += names.map { n in v?[n].map { "\($0)" } ?? "" }
            s += cells.joined(separator: ",") + "\n"
        }
        return s
    }

    /// Writes the CSV log and/or an SVG of loss, implicit accuracy and validation scores against the step.
    public func writeLog(csv: String? = nil, svg: String? = nil) throws {
        if let csv { try AtomicFile.write(logCSV, to: csv) }
        if let svg {
            let x = history.map { Double($0.step) }
            var series = [PlotSeries(name: "loss", points: Array(zip(x, history.map(\.loss))).map { ($0.0, $0.1) }),
                          PlotSeries(name: "implicit accuracy", points: Array(zip(x, history.map(\.implicitAccuracy))).map { ($0.0, $0.1) })]
            if unlabeled != nil {
                series.append(PlotSeries(name: "pseudo-label accuracy", points: Array(zip(x, history.map(\.unlabeledAccuracy))).map { ($0.0, $0.1) }))
            }
            for name in validationNames {
                let points = validationHistory.compactMap { v in v.scores.first { $0.0 == name }.map { (Double(v.step), $0.1) } }
                series.append(PlotSeries(name: "validation \(name)", points: points))
            }
            try SVGPlot.write(svg, title: "\(config.objective.name) training", xLabel: "step", yLabel: "value", series: series)
        }
    }

    /// Reads `logCSV` back: the step lines and the validation scores.
    static func parseLog(_ text: String) throws -> (history: [TrainingStepMetrics], validation: [(step: Int, scores: [(String, Double)])]) {
        var out: [TrainingStepMetrics] = []
        var validation: [(step: Int, scores: [(String, Double)])] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let base = TrainingStepMetrics.csvColumns
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init),
              Array(header.prefix(base.count)) == base, header.dropFirst(base.count).allSatisfy({ $0.hasPrefix("val_") }) else {
            throw CoreError("checkpoint log: bad header")
        }
        let names = header.dropFirst(base.count).map { String($0.dropFirst(4)) }
        for (n, line) in lines.enumerated() where n > 0 {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let v = cells.prefix(base.count).map { Double($0) }
            guard cells.count == header.count, v.allSatisfy({ $0 != nil }) else {
                throw CoreError("checkpoint log: bad line \(n + 1): \(line)")
            }
            let m = TrainingStepMetrics(csvValues: v.map { $0! })
            out.append(m)
            var scores: [(String, Double)] = []
            for (k, cell) in cells.dropFirst(base.count).enumerated() where !cell.isEmpty {
                guard let x = Double(cell) else { throw CoreError("checkpoint log: bad line \(n + 1): \(line)") }
                scores.append((names[k], x))
            }
            if !scores.isEmpty { validation.append((m.step, scores)) }
        }
        return (out, validation)
    }

    // MARK: - Checkpoints

    /// The settings a checkpoint must agree with to resume this run.
    private var fingerprint: [String: String] {
        ["seed": "\(config.seed)", "batch_size": "\(config.batchSize)",
         "unlabeled_batch_size": "\(config.unlabeledBatchSize ?? config.batchSize)",
         "accumulation": "\(config.accumulation)", "objective": config.objective.name]
    }

    /// Writes policy parameters (`policy.<name>`), optimizer state (`optimizer.<name>`), the EMA
    /// (`ema.<name>`) and, when the reference is refreshed during training, the reference
    /// (`reference.<name>`), plus the step and the log (metadata) to a safetensors file, atomically.
    public func saveCheckpoint(_ path: String) throws {
        var tensors = policy.parameters().map { NamedTensor(name: "policy.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        tensors += optimizer.state().map { NamedTensor(name: "optimizer.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        tensors += (ema ?? []).map { NamedTensor(name: "ema.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        if referenceUpdateInterval > 0, let r = reference {
            tensors += r.parameters().map { NamedTensor(name: "reference.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        }
        var meta = fingerprint
        meta["format"] = "semidpo.preference-trainer.v1"
        meta["step"] = "\(step)"
        meta["log"] = logCSV
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Restores a checkpoint written by `saveCheckpoint` of a run with the same seed, batch sizes,
    /// accumulation and objective; training then continues from its step. A checkpoint without
    /// `ema.` or `reference.` tensors leaves the EMA (a copy of the restored policy) and the reference as they are.
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
        if let ema {
            for (name, e) in ema { e.data = (byName["ema.\(name)"]?.data) ?? byName["policy.\(name)"]!.data }
        }
        if let r = reference, byName.keys.contains(where: { $0.hasPrefix("reference.") }) {
            for (name, q) in r.parameters() {
                guard let t = byName["reference.\(name)"], t.shape == q.shape else { throw CoreError("\(path): bad or missing reference '\(name)'") }
                q.data = t.data
            }
        }
        step = s
        history = log.history
        validationHistory = log.validation
        permutationCache = [:]
    }
}
