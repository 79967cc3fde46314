// Preference losses on per-sample denoising errors: Diffusion-DPO (sigmoid, hinge, IPO, and the
// authors' robust GCE and SCE mixes, plus our earlier pure-GCE and SCE variants under their own
// names), a per-pair loss supplied by a recipe, and Diffusion-KTO, with labels in {-1, 0, +1}; each
// returns the loss and its gradient with respect to the policy's per-sample MSEs, which the trainer
// feeds back into the autograd tape.
import Foundation

/// The β convention, stated once for the whole project ("no ½" convention):
///
///     z = β · label · [ (mse_ref(x_w) − mse_ref(x_l)) − (mse_θ(x_w) − mse_θ(x_l)) ]
///     L_DPO = −log σ(z)
///
/// The paper uses β = 2500 for SD1.5; the official Diffusion-DPO code writes
/// `-0.5 * beta_dpo * (model_diff - ref_diff)` with `beta_dpo = 5000`, the same number.
/// `z > 0` means the policy agrees with the pair's label. The name is `beta` everywhere.
///
/// CE below is −log σ(z); w is the pair's robust weight (1 unless the trainer sets it, e.g. to the
/// share of a reward committee that disagrees with the human label).
public enum PreferenceLossKind: String, CaseIterable, Sendable {
    /// −log σ(z)   (Diffusion-DPO)
    case sigmoid
    /// max(0, 1 − z)
    case hinge
    /// (z/β − 1/(2β))²   (IPO, Azar et al. 2023, on the unscaled log-ratio difference z/β)
    case ipo
    /// (1 − w)·CE + w·(1 − σ(z)^q)/q with q = 0.5; q = 0 gives CE. The Semi-DPO authors' GCE
    /// (generalized cross entropy, Zhang & Sabuncu 2018, mixed per pair).
    case gce
    /// CE + sceBeta · rce with rce = −σ(−z) · logZero (sceBeta = 0.5, logZero = −6). The Semi-DPO
    /// authors' SCE (symmetric cross entropy, Wang et al. 2019).
    case sce
    /// (1 − σ(z)^q)/q with q = 0.7, no per-pair weight: this project's GCE before the authors'
    /// definition was adopted (named `gce` until then).
    case gcePure = "gce_pure"
    /// α·CE + b·A·(1 − σ(z)) with α = 0.1, b = 1, A = 4: this project's SCE before the authors'
    /// definition was adopted (named `sce` until then).
    case sceOurs = "sce_ours"
}

/// A per-pair loss defined outside Core (a recipe's Lua function): `(z, label, weight)` → the loss
/// ℓ(z) and its slope dℓ/dz, for one labelled pair (label ±1, already folded into z). Compared by
/// identity.
public final class CustomPairLoss: @unchecked Sendable, Equatable {
    public let name: String
    public let body: (Double, Int8, Double) throws -> (value: Double, slope: Double)
    public init(name: String, _ body: @escaping (Double, Int8, Double) throws -> (value: Double, slope: Double)) {
        self.name = name; self.body = body
    }
    public static func == (a: CustomPairLoss, b: CustomPairLoss) -> Bool { a === b }
}

/// Settings of a DPO-family loss.
public struct PreferenceLossConfig: Equatable, Sendable {
    public var kind: PreferenceLossKind = .sigmoid
    /// β of the convention above.
    public var beta: Double = 2500
    /// GCE exponent q: in [0, 1] for `gce` (0 = CE; default 0.5), in (0, 1] for `gce_pure` (default 0.7).
    public var gceQ: Double = 0.5
    /// `sce`: weight of the reverse CE and the value taken for log 0.
    public var sceBeta: Double = 0.5
    public var logZero: Double = -6
    /// `sce_ours`: weights α on CE, b on reverse CE; A is the reverse-CE constant.
    public var sceAlpha: Double = 0.1
    public var sceB: Double = 1.0
    public var sceA: Double = 4.0
    /// A recipe-defined loss; when set it replaces `kind`.
    public var custom: CustomPairLoss? = nil

    public init(kind: PreferenceLossKind = .sigmoid, beta: Double = 2500) {
        self.kind = kind
        self.beta = beta
        if kind == .gcePure { gceQ = 0.7 }
    }

    /// The loss's name in logs and checkpoints: the kind, or "custom:<name>".
    public var name: String { custom.map { "custom:\($0.name)" } ?? kind.rawValue }

    /// The same loss with its robust part switched off (GCE's q = 0 and SCE's sceBeta = 0, both
    /// then CE), as the authors' trainer does outside the robust-loss window.
    public var withoutRobustTerm: PreferenceLossConfig {
        var c = self
        if c.kind == .gce { c.gceQ = 0 }
        if c.kind == .sce { c.sceBeta = 0 }
        return c
    }

    public func validate() throws {
        guard beta > 0, beta.isFinite else { throw CoreError("beta must be a positive number (got \(beta))") }
        switch kind {
        case .gce: guard gceQ >= 0, gceQ <= 1 else { throw CoreError("gce_q must be in [0, 1] for loss gce (got \(gceQ))") }
        case .gcePure: guard gceQ > 0, gceQ <= 1 else { throw CoreError("gce_q must be in (0, 1] for loss gce_pure (got \(gceQ))") }
        case .sce:
            guard sceBeta >= 0, sceBeta.isFinite else { throw CoreError("sce_beta must be a finite number ≥ 0 (got \(sceBeta))") }
            guard logZero.isFinite, logZero < 0 else { throw CoreError("log_zero must be a finite negative number (got \(logZero))") }
        default: break
        }
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}

/// log(1 + e^x) without overflow.
@inline(__always) func softplus(_ x: Double) -> Double {
    x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))
}

/// Per-pair loss ℓ(z) and its derivative ℓ'(z) for a pair with label y (±1) and robust weight w.
func pairLoss(_ z: Double, label y: Int8, weight w: Double, _ c: PreferenceLossConfig) throws -> (value: Double, slope: Double) {
    if let f = c.custom {
        let (v, s) = try f.body(z, y, w)
        guard v.isFinite, s.isFinite else {
            throw CoreError("loss '\(f.name)' returned value \(v) and slope \(s) at z = \(z); both must be finite numbers")
        }
        return (v, s)
    }
    let ce = (value: softplus(-z), slope: sigmoid(z) - 1)   // −log σ(z), dCE/dz = σ(z) − 1
    switch c.kind {
    case .sigmoid:
        return ce
    case .hinge:
        return z < 1 ? (1 - z, -1) : (0, 0)
    case .ipo:
        let d = z / c.beta - 1 / (2 * c.beta)
        return (d * d, 2 * d / c.beta)
    case .gce:
        guard c.gceQ > 0 else { return ce }
        let s = sigmoid(z), sq = pow(s, c.gceQ)
        // d/dz (1 − σ^q)/q = −σ^q (1 − σ)
        let gce = (value: (1 - sq) / c.gceQ, slope: -sq * (1 - s))
        return ((1 - w) * ce.value + w * gce.value, (1 - w) * ce.slope + w * gce.slope)
    case .sce:
        // rce = −σ(−z)·logZero = −(1 − σ(z))·logZero; d rce/dz = logZero · σ(z)(1 − σ(z))
        let s = sigmoid(z)
        return (ce.value + c.sceBeta * (-(1 - s) * c.logZero), ce.slope + c.sceBeta * c.logZero * s * (1 - s))
    case .gcePure:
        let s = sigmoid(z), sq = pow(s, c.gceQ)
        return ((1 - sq) / c.gceQ, -sq * (1 - s))
    case .sceOurs:
        let s = sigmoid(z)
        return (c.sceAlpha * ce.value + c.sceB * c.sceA * (1 - s),
                c.sceAlpha * ce.slope - c.sceB * c.sceA * s * (1 - s))
    }
}

/// The share of a reward committee that disagrees with a pair's human label: with `scores[k]` =
/// (member k's score of the human winner, of the loser),
///
///     w = 1 − (1/K) · #{k : s_w,k > s_l,k}          (a tie counts as disagreeing)
///
/// — the authors' `--use_reward_scores` weight of the GCE mix.
public func committeeDisagreement(_ scores: [(winner: Double, loser: Double)]) throws -> Double {
    guard !scores.isEmpty else { throw CoreError("committee disagreement needs at least one member's scores") }
    let agree = scores.reduce(0) { $0 + ($1.winner > $1.loser ? 1 : 0) }
    return 1 - Double(agree) / Double(scores.count)
}

/// The result of a DPO-family loss over a batch of pairs.
public struct PreferenceLossResult: Sendable {
    /// Mean loss over labelled pairs (0 when none is labelled).
    public var loss: Double
    /// z per pair (label applied; 0 for masked pairs).
    public var z: [Double]
    /// Share of labelled pairs with z > 0, ties counting ½ (NaN when none is labelled).
    public var implicitAccuracy: Double
    /// Number of pairs with a non-zero label.
    public var labelled: Int
    /// ∂loss/∂mse_θ(x_w) and ∂loss/∂mse_θ(x_l) per pair.
    public var dPolicyWinner: [Double]
    public var dPolicyLoser: [Double]
}

/// Diffusion-DPO and its variants on per-pair MSEs (all arrays of length B).
///
/// A label multiplies both differences: +1 keeps the pair, −1 swaps winner and loser, 0 masks the
/// pair out; the loss is averaged over labelled pairs only. `weights` are the pairs' robust weights
/// w (used by `gce` and a custom loss; nil = all 1).
public func preferenceLoss(policyWinner pw: [Double], policyLoser pl: [Double],
                           referenceWinner rw: [Double], referenceLoser rl: [Double],
                           labels: [Int8], weights: [Double]? = nil,
                           config: PreferenceLossConfig) throws -> PreferenceLossResult {
    let n = pw.count
    precondition(pl.count == n && rw.count == n && rl.count == n && labels.count == n && (weights?.count ?? n) == n,
                 "preferenceLoss: arrays must have equal lengths")
    let labelled = labels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    var r = PreferenceLossResult(loss: 0, z: [Double](repeating: 0, count: n),
                                 implicitAccuracy: .nan, labelled: labelled,
                                 dPolicyWinner: [Double](repeating: 0, count: n),
                                 dPolicyLoser: [Double](repeating: 0, count: n))
    guard labelled > 0 else { return r }
    var total = 0.0, correct = 0.0
    for i in 0..<n where labels[i] != 0 {
        let y = Double(labels[i])
        let z = config.beta * y * ((rw[i] - rl[i]) - (pw[i] - pl[i]))
        r.z[i] = z
        let (v, slope) = try pairLoss(z, label: labels[i], weight: weights?[i] ?? 1, config)
        total += v
        correct += z > 0 ? 1 : (z == 0 ? 0.5 : 0)
        // ∂z/∂pw = −β·y, ∂z/∂pl = +β·y
        r.dPolicyWinner[i] = slope * (-config.beta * y) / Double(labelled)
        r.dPolicyLoser[i] = slope * (config.beta * y) / Double(labelled)
    }
    r.loss = total / Double(labelled)
    r.implicitAccuracy = correct / Double(labelled)
    return r
}

/// The result of Diffusion-KTO over a batch of single images.
public struct KTOLossResult: Sendable {
    public var loss: Double
    /// The reference point: max(0, mean_i g_i), treated as a constant (no gradient).
    public var kl: Double
    /// ∂loss/∂mse_θ per image.
    public var dPolicy: [Double]
}

/// Diffusion-KTO on per-image MSEs: g_i = mse_ref,i − mse_θ,i, KL = max(0, mean(g)) (detached),
/// loss_i = 1 − σ(β · y_i · (g_i − KL)) with y_i = +1 for desirable (winners) and −1 for
/// undesirable (losers); averaged over images.
/// reference: Li et al. 2024, "Aligning Diffusion Models by Optimizing Human Utility".
public func ktoLoss(policy: [Double], reference: [Double], desirable: [Bool], beta: Double) -> KTOLossResult {
    let n = policy.count
    precondition(reference.count == n && desirable.count == n, "ktoLoss: arrays must have equal lengths")
    guard n > 0 else { return KTOLossResult(loss: 0, kl: 0, dPolicy: []) }
    var g = [Double](repeating: 0, count: n)
    for i in 0..<n { g[i] = reference[i] - policy[i] }
    let kl = max(0, g.reduce(0, +) / Double(n))
    var total = 0.0
    var d = [Double](repeating: 0, count: n)
    for i in 0..<n {
        let y = desirable[i] ? 1.0 : -1.0
        let s = sigmoid(beta * y * (g[i] - kl))
        total += 1 - s
        // ∂(1 − σ(u))/∂mse_θ = −σ(u)(1 − σ(u)) · ∂u/∂mse_θ, ∂u/∂mse_θ = −β·y
        d[i] = s * (1 - s) * beta * y / Double(n)
    }
    return KTOLossResult(loss: total / Double(n), kl: kl, dPolicy: d)
}
