// Preference losses on per-sample denoising errors: Diffusion-DPO (sigmoid, hinge, IPO, GCE, SCE),
// Diffusion-KTO, with labels in {-1, 0, +1}; each returns the loss and its gradient with respect to
// the policy's per-sample MSEs, which the trainer feeds back into the autograd tape.
import Foundation

/// The β convention, stated once for the whole project ("no ½" convention):
///
///     z = β · label · [ (mse_ref(x_w) − mse_ref(x_l)) − (mse_θ(x_w) − mse_θ(x_l)) ]
///     L_DPO = −log σ(z)
///
/// The paper uses β = 2500 for SD1.5; the official Diffusion-DPO code writes
/// `-0.5 * beta_dpo * (model_diff - ref_diff)` with `beta_dpo = 5000`, the same number.
/// `z > 0` means the policy agrees with the pair's label. The name is `beta` everywhere.
public enum PreferenceLossKind: String, CaseIterable, Sendable {
    /// −log σ(z)   (Diffusion-DPO)
    case sigmoid
    /// max(0, 1 − z)
    case hinge
    /// (z/β − 1/(2β))²   (IPO, Azar et al. 2023, on the unscaled log-ratio difference z/β)
    case ipo
    /// (1 − σ(z)^q)/q   (generalized cross entropy, Zhang & Sabuncu 2018)
    case gce
    /// α·(−log σ(z)) + b·A·(1 − σ(z)): symmetric cross entropy (Wang et al. 2019), CE plus the
    /// reverse CE in which log 0 is taken as −A (A = 4 by default).
    case sce
}

/// Settings of a DPO-family loss.
public struct PreferenceLossConfig: Equatable, Sendable {
    public var kind: PreferenceLossKind = .sigmoid
    /// β of the convention above.
    public var beta: Double = 2500
    /// GCE exponent q ∈ (0, 1].
    public var gceQ: Double = 0.7
    /// SCE weights: α on CE, b on reverse CE; A is the reverse-CE constant.
    public var sceAlpha: Double = 0.1
    public var sceB: Double = 1.0
    public var sceA: Double = 4.0

    public init(kind: PreferenceLossKind = .sigmoid, beta: Double = 2500) {
        self.kind = kind
        self.beta = beta
    }

    public func validate() throws {
        guard beta > 0, beta.isFinite else { throw CoreError("beta must be a positive number (got \(beta))") }
        guard gceQ > 0, gceQ <= 1 else { throw CoreError("gce q must be in (0, 1] (got \(gceQ))") }
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}

/// log(1 + e^x) without overflow.
@inline(__always) func softplus(_ x: Double) -> Double {
    x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))
}

/// Per-pair loss ℓ(z) and its derivative ℓ'(z).
func pairLoss(_ z: Double, _ c: PreferenceLossConfig) -> (value: Double, slope: Double) {
    switch c.kind {
    case .sigmoid:
        return (softplus(-z), sigmoid(z) - 1)
    case .hinge:
        return z < 1 ? (1 - z, -1) : (0, 0)
    case .ipo:
        let d = z / c.beta - 1 / (2 * c.beta)
        return (d * d, 2 * d / c.beta)
    case .gce:
        let s = sigmoid(z), sq = pow(s, c.gceQ)
        return ((1 - sq) / c.gceQ, -sq * (1 - s))
    case .sce:
        let s = sigmoid(z)
        return (c.sceAlpha * softplus(-z) + c.sceB * c.sceA * (1 - s),
                c.sceAlpha * (s - 1) - c.sceB * c.sceA * s * (1 - s))
    }
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
/// pair out; the loss is averaged over labelled pairs only.
public func preferenceLoss(policyWinner pw: [Double], policyLoser pl: [Double],
                           referenceWinner rw: [Double], referenceLoser rl: [Double],
                           labels: [Int8], config: PreferenceLossConfig) -> PreferenceLossResult {
    let n = pw.count
    precondition(pl.count == n && rw.count == n && rl.count == n && labels.count == n,
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
        let (v, slope) = pairLoss(z, config)
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
