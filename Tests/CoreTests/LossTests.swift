// Golden values and finite-difference checks for the preference losses (DPO family with the
// authors' GCE/SCE, our earlier variants, a custom per-pair loss; KTO), and the behaviours the
// authors' own loss tests check.
import Foundation
import Testing
@testable import Core

/// One pair: β = 10, mse_θ(w) = 0.30, mse_θ(l) = 0.32, mse_ref(w) = mse_ref(l) = 0.31
/// ⇒ z = 10 · ((0.31 − 0.31) − (0.30 − 0.32)) = 0.2; σ = σ(0.2). Goldens from Python's math module
/// (`s = 1/(1+math.exp(-0.2)); ce = math.log1p(math.exp(-0.2))`):
///   sigmoid:  ce                                         = 0.5981388693815918
///   hinge:    1 − 0.2                                    = 0.8
///   ipo:      (0.2/10 − 1/20)²                           = 0.0009
///   gce:      w = 1, q = 0.5: (1 − s^0.5)/0.5            = 0.5169841574514749
///   sce:      ce + 0.5 · (−(1 − s) · (−6))               = 1.9486368774441578
///   gce_pure: (1 − s^0.7)/0.7                            = 0.4887094676905819
///   sce_ours: 0.1·ce + 4·(1 − s)                         = 1.8604778976882475
private let goldens: [(PreferenceLossKind, Double)] = [
    (.sigmoid, 0.5981388693815918), (.hinge, 0.8), (.ipo, 0.0009), (.gce, 0.5169841574514749),
    (.sce, 1.9486368774441578), (.gcePure, 0.4887094676905819), (.sceOurs, 1.8604778976882475),
]

private func onePair(_ config: PreferenceLossConfig, weight: Double? = nil) throws -> PreferenceLossResult {
    try preferenceLoss(policyWinner: [0.30], policyLoser: [0.32], referenceWinner: [0.31], referenceLoser: [0.31],
                       labels: [1], weights: weight.map { [$0] }, config: config)
}

@Test(arguments: goldens)
func dpoGoldenValue(kind: PreferenceLossKind, expected: Double) throws {
    let r = try onePair(PreferenceLossConfig(kind: kind, beta: 10))
    #expect(abs(r.z[0] - 0.2) < 1e-12)
    #expect(abs(r.loss - expected) < 1e-12)
    #expect(r.implicitAccuracy == 1)
}

/// The authors' GCE mixes per pair: w = 0.25 ⇒ 0.75·ce + 0.25·(1 − s^0.5)/0.5 = 0.5778501913990626
/// (python as above); w = 0 and q = 0 are both plain CE.
@Test func gceMixesCEAndGCEPerPair() throws {
    let config = PreferenceLossConfig(kind: .gce, beta: 10)
    #expect(abs(try onePair(config, weight: 0.25).loss - 0.5778501913990626) < 1e-12)
    #expect(abs(try onePair(config, weight: 0).loss - 0.5981388693815918) < 1e-12)
    var q0 = config; q0.gceQ = 0
    #expect(abs(try onePair(q0, weight: 0.7).loss - 0.5981388693815918) < 1e-12)
    #expect(config.gceQ == 0.5 && config.sceBeta == 0.5 && config.logZero == -6)
    #expect(PreferenceLossConfig(kind: .gcePure).gceQ == 0.7)
}

/// Outside the robust window GCE (q → 0) and SCE (sce_beta → 0) are CE.
@Test func withoutRobustTermIsCE() throws {
    for kind in [PreferenceLossKind.gce, .sce] {
        let c = PreferenceLossConfig(kind: kind, beta: 10).withoutRobustTerm
        #expect(abs(try onePair(c).loss - 0.5981388693815918) < 1e-12, "\(kind)")
    }
}

/// Random MSEs for a batch of 5 pairs, labels [1, −1, 1, 0, −1] and weights [0.5, …].
private let batch = (pw: [0.30, 0.41, 0.25, 0.5, 0.33], pl: [0.32, 0.40, 0.27, 0.1, 0.31],
                     rw: [0.31, 0.42, 0.26, 0.2, 0.30], rl: [0.30, 0.39, 0.28, 0.3, 0.35])

/// Every loss's slope against central differences in Float64 (h = 1e-6), labels ±1/0 and weights 0.5 and 0.8.
@Test(arguments: PreferenceLossKind.allCases)
func dpoGradientMatchesFiniteDifference(kind: PreferenceLossKind) throws {
    let labels: [Int8] = [1, -1, 1, 0, -1]
    let weights = [0.5, 0.8, 0.5, 0.5, 0.3]
    let config = PreferenceLossConfig(kind: kind, beta: 20)
    func loss(_ a: [Double], _ b: [Double]) throws -> PreferenceLossResult {
        try preferenceLoss(policyWinner: a, policyLoser: b, referenceWinner: batch.rw, referenceLoser: batch.rl,
                           labels: labels, weights: weights, config: config)
    }
    let r = try loss(batch.pw, batch.pl)
    let h = 1e-6
    for i in 0..<5 {
        for side in 0..<2 {
            var a = batch.pw, b = batch.pl
            if side == 0 { a[i] += h } else { b[i] += h }
            let up = try loss(a, b).loss
            if side == 0 { a[i] -= 2 * h } else { b[i] -= 2 * h }
            let down = try loss(a, b).loss
            let numeric = (up - down) / (2 * h)
            let analytic = side == 0 ? r.dPolicyWinner[i] : r.dPolicyLoser[i]
            #expect(abs(numeric - analytic) < 1e-6 * max(1, abs(numeric)), "\(kind) pair \(i) side \(side)")
        }
    }
}

/// The sigmoid loss is −log σ(β[(ref_w − ref_l) − (pol_w − pol_l)]) averaged over the pairs.
@Test func sigmoidIsTheMeanOfMinusLogSigmoid() throws {
    let beta = 20.0
    let r = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: [1, 1, 1, 1, 1], config: PreferenceLossConfig(beta: beta))
    var expected = 0.0
    for i in 0..<5 {
        let z = beta * ((batch.rw[i] - batch.rl[i]) - (batch.pw[i] - batch.pl[i]))
        expected += -log(1 / (1 + exp(-z)))
    }
    #expect(abs(r.loss - expected / 5) < 1e-12)
}

/// All +1 labels equal no labels (nil weights, and the trainer's default labels).
@Test(arguments: PreferenceLossKind.allCases)
func allPlusOneLabelsEqualNoLabels(kind: PreferenceLossKind) throws {
    let c = PreferenceLossConfig(kind: kind, beta: 20)
    let a = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: [1, 1, 1, 1, 1], config: c)
    let b = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: [Int8](repeating: 1, count: 5), weights: [1, 1, 1, 1, 1], config: c)
    #expect(a.loss == b.loss && a.dPolicyWinner == b.dPolicyWinner)
}

/// A −1 label equals swapping winner and loser (policy and reference) with label +1; a 0 label equals
/// dropping the pair, and the labelled count excludes it.
@Test(arguments: PreferenceLossKind.allCases)
func minusOneSwapsAndZeroDrops(kind: PreferenceLossKind) throws {
    let c = PreferenceLossConfig(kind: kind, beta: 20)
    let neg = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                                 referenceLoser: batch.rl, labels: [-1, -1, -1, -1, -1], config: c)
    let swapped = try preferenceLoss(policyWinner: batch.pl, policyLoser: batch.pw, referenceWinner: batch.rl,
                                     referenceLoser: batch.rw, labels: [1, 1, 1, 1, 1], config: c)
    #expect(abs(neg.loss - swapped.loss) < 1e-15)
    for i in 0..<5 { #expect(abs(neg.dPolicyWinner[i] - swapped.dPolicyLoser[i]) < 1e-12) }
    let masked = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                                    referenceLoser: batch.rl, labels: [1, 1, 0, 1, 1], config: c)
    let keep = [0, 1, 3, 4]
    let dropped = try preferenceLoss(policyWinner: keep.map { batch.pw[$0] }, policyLoser: keep.map { batch.pl[$0] },
                                     referenceWinner: keep.map { batch.rw[$0] }, referenceLoser: keep.map { batch.rl[$0] },
                                     labels: [1, 1, 1, 1], config: c)
    #expect(masked.labelled == 4 && dropped.labelled == 4)
    #expect(abs(masked.loss - dropped.loss) < 1e-15)
    #expect(masked.dPolicyWinner[2] == 0 && masked.dPolicyLoser[2] == 0)
}

/// Labels [+1, −1, 0] on two identical pairs and one other: z = [0.2, −0.2, masked];
/// loss = (log(1 + e^−0.2) + log(1 + e^0.2))/2 = 0.6981388693815919; accuracy = 1/2.
@Test func labelsMultiplySwapAndMask() throws {
    let r = try preferenceLoss(policyWinner: [0.30, 0.30, 0.5], policyLoser: [0.32, 0.32, 0.1],
                               referenceWinner: [0.31, 0.31, 0.2], referenceLoser: [0.31, 0.31, 0.2],
                               labels: [1, -1, 0], config: PreferenceLossConfig(kind: .sigmoid, beta: 10))
    #expect(r.labelled == 2)
    #expect(abs(r.loss - 0.6981388693815919) < 1e-12)
    #expect(r.implicitAccuracy == 0.5)
}

/// A fully masked batch: loss 0, no labelled pair, zero gradient — for every loss.
@Test(arguments: PreferenceLossKind.allCases)
func allMaskedGivesZeroLossAndNoGradient(kind: PreferenceLossKind) throws {
    let r = try preferenceLoss(policyWinner: [0.3, 0.2], policyLoser: [0.2, 0.4], referenceWinner: [0.1, 0.3],
                               referenceLoser: [0.4, 0.1], labels: [0, 0], config: PreferenceLossConfig(kind: kind))
    #expect(r.loss == 0 && r.labelled == 0 && r.implicitAccuracy.isNaN && r.dPolicyWinner == [0, 0] && r.dPolicyLoser == [0, 0])
}

/// Every loss is finite with a per-pair weight of 0.5, even at large |z| (β = 2500).
@Test(arguments: PreferenceLossKind.allCases)
func everyLossFiniteWithWeightOneHalf(kind: PreferenceLossKind) throws {
    let r = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: [1, -1, 1, 0, -1], weights: [Double](repeating: 0.5, count: 5),
                               config: PreferenceLossConfig(kind: kind, beta: 2500))
    #expect(r.loss.isFinite && (r.dPolicyWinner + r.dPolicyLoser).allSatisfy(\.isFinite), "\(kind)")
}

/// GCE with q = 0 is the sigmoid loss, value and gradient.
@Test func gceWithQZeroIsSigmoid() throws {
    var gce = PreferenceLossConfig(kind: .gce, beta: 20); gce.gceQ = 0
    let labels: [Int8] = [1, -1, 1, 0, -1]
    let a = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: labels, weights: [0.5, 1, 0.2, 0, 1], config: gce)
    let b = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: labels, config: PreferenceLossConfig(kind: .sigmoid, beta: 20))
    #expect(a.loss == b.loss && a.dPolicyWinner == b.dPolicyWinner && a.dPolicyLoser == b.dPolicyLoser)
}

/// Committee disagreement: scores [[1, 0], [1, 0]] (both members prefer the human winner) → 0;
/// [[0, 1], [1, 0]] → 1/2; a tie counts as disagreeing → [[1, 1]] → 1.
@Test func committeeDisagreementOnHandCases() throws {
    #expect(try committeeDisagreement([(1, 0), (1, 0)]) == 0)
    #expect(try committeeDisagreement([(0, 1), (1, 0)]) == 0.5)
    #expect(try committeeDisagreement([(1, 1)]) == 1)
    #expect(throws: CoreError.self) { try committeeDisagreement([]) }
}

/// A custom per-pair loss is used exactly like a built-in: a Swift copy of the sigmoid loss gives the
/// same value and gradient, it receives the label and weight, and a non-finite result is an error.
@Test func customPairLossActsLikeABuiltIn() throws {
    var seen: [(Int8, Double)] = []
    var c = PreferenceLossConfig(beta: 20)
    c.custom = CustomPairLoss(name: "copy") { z, y, w in
        seen.append((y, w))
        return (softplus(-z), sigmoid(z) - 1)
    }
    let labels: [Int8] = [1, -1, 1, 0, -1]
    let a = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: labels, weights: [0.1, 0.2, 0.3, 0.4, 0.5], config: c)
    let b = try preferenceLoss(policyWinner: batch.pw, policyLoser: batch.pl, referenceWinner: batch.rw,
                               referenceLoser: batch.rl, labels: labels, config: PreferenceLossConfig(beta: 20))
    #expect(a.loss == b.loss && a.dPolicyWinner == b.dPolicyWinner)
    #expect(seen.map(\.0) == [1, -1, 1, -1] && seen.map(\.1) == [0.1, 0.2, 0.3, 0.5])
    #expect(c.name == "custom:copy")
    c.custom = CustomPairLoss(name: "bad") { _, _, _ in (.nan, 0) }
    #expect(throws: CoreError.self) {
        try preferenceLoss(policyWinner: [0.3], policyLoser: [0.2], referenceWinner: [0.3], referenceLoser: [0.2],
                           labels: [1], config: c)
    }
}

@Test func tiesCountHalfInImplicitAccuracy() throws {
    let r = try preferenceLoss(policyWinner: [0.3, 0.3], policyLoser: [0.3, 0.2], referenceWinner: [0.3, 0.3],
                               referenceLoser: [0.3, 0.3], labels: [1, 1], config: PreferenceLossConfig(beta: 10))
    #expect(r.implicitAccuracy == 0.25)  // one tie (½) and one wrong (0) over two pairs
}

@Test func lossSettingsAreValidated() {
    var c = PreferenceLossConfig(kind: .gce); c.gceQ = 1.5
    #expect(throws: CoreError.self) { try c.validate() }
    c = PreferenceLossConfig(kind: .gcePure); c.gceQ = 0
    #expect(throws: CoreError.self) { try c.validate() }
    c = PreferenceLossConfig(kind: .sce); c.logZero = 1
    #expect(throws: CoreError.self) { try c.validate() }
}

/// KTO, β = 10: mse_θ = [0.3, 0.5], mse_ref = [0.4, 0.45], desirable = [true, false]
/// ⇒ g = [0.1, −0.05], KL = max(0, 0.025) = 0.025, u = [10·0.075, −10·(−0.075)] = [0.75, 0.75],
/// loss = 1 − σ(0.75) = 0.32082130082460697; ∂loss/∂mse_θ,0 = σ(0.75)(1−σ(0.75))·10/2 = 1.0894749688090701
@Test func ktoGoldenValue() {
    let r = ktoLoss(policy: [0.3, 0.5], reference: [0.4, 0.45], desirable: [true, false], beta: 10)
    #expect(abs(r.kl - 0.025) < 1e-12)
    #expect(abs(r.loss - 0.32082130082460697) < 1e-12)
    #expect(abs(r.dPolicy[0] - 1.0894749688090701) < 1e-9)
    #expect(abs(r.dPolicy[1] + 1.0894749688090701) < 1e-9)
}

@Test func ktoReferencePointIsClampedAtZero() {
    let r = ktoLoss(policy: [0.5, 0.5], reference: [0.4, 0.4], desirable: [true, true], beta: 10)
    #expect(r.kl == 0)
}
