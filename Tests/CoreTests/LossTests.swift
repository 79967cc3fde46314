// Golden values and finite-difference checks for the preference losses (DPO family, KTO).
import Testing
@testable import Core

/// One pair: β = 10, mse_θ(w) = 0.30, mse_θ(l) = 0.32, mse_ref(w) = mse_ref(l) = 0.31
/// ⇒ z = 10 · ((0.31 − 0.31) − (0.30 − 0.32)) = 0.2. Goldens from Python's math module:
///   sigmoid: log(1 + e^−0.2)                       = 0.5981388693815918
///   hinge:   1 − 0.2                                 = 0.8
///   ipo:     (0.2/10 − 1/20)²                        = 0.0009
///   gce:     (1 − σ(0.2)^0.7)/0.7                    = 0.4887094676905819
///   sce:     0.1·log(1 + e^−0.2) + 4·(1 − σ(0.2))    = 1.8604778976882475
private let goldens: [(PreferenceLossKind, Double)] = [
    (.sigmoid, 0.5981388693815918), (.hinge, 0.8), (.ipo, 0.0009),
    (.gce, 0.4887094676905819), (.sce, 1.8604778976882475),
]

@Test(arguments: goldens)
func dpoGoldenValue(kind: PreferenceLossKind, expected: Double) {
    let r = preferenceLoss(policyWinner: [0.30], policyLoser: [0.32], referenceWinner: [0.31],
                           referenceLoser: [0.31], labels: [1], config: PreferenceLossConfig(kind: kind, beta: 10))
    #expect(abs(r.z[0] - 0.2) < 1e-12)
    #expect(abs(r.loss - expected) < 1e-12)
    #expect(r.implicitAccuracy == 1)
}

@Test(arguments: PreferenceLossKind.allCases)
func dpoGradientMatchesFiniteDifference(kind: PreferenceLossKind) {
    let pw = [0.30, 0.41, 0.25], pl = [0.32, 0.40, 0.27], rw = [0.31, 0.42, 0.26], rl = [0.30, 0.39, 0.28]
    let labels: [Int8] = [1, -1, 1]
    let config = PreferenceLossConfig(kind: kind, beta: 20)
    let r = preferenceLoss(policyWinner: pw, policyLoser: pl, referenceWinner: rw, referenceLoser: rl,
                           labels: labels, config: config)
    let h = 1e-6
    for i in 0..<3 {
        for side in 0..<2 {
            var a = pw, b = pl
            if side == 0 { a[i] += h } else { b[i] += h }
            let up = preferenceLoss(policyWinner: a, policyLoser: b, referenceWinner: rw, referenceLoser: rl,
                                    labels: labels, config: config).loss
            if side == 0 { a[i] -= 2 * h } else { b[i] -= 2 * h }
            let down = preferenceLoss(policyWinner: a, policyLoser: b, referenceWinner: rw, referenceLoser: rl,
                                      labels: labels, config: config).loss
            let numeric = (up - down) / (2 * h)
            let analytic = side == 0 ? r.dPolicyWinner[i] : r.dPolicyLoser[i]
            #expect(abs(numeric - analytic) < 1e-6 * max(1, abs(numeric)), "\(kind) pair \(i) side \(side)")
        }
    }
}

/// Labels [+1, −1, 0] on two identical pairs and one other: z = [0.2, −0.2, masked];
/// loss = (log(1 + e^−0.2) + log(1 + e^0.2))/2 = 0.6981388693815919; accuracy = 1/2.
@Test func labelsMultiplySwapAndMask() {
    let r = preferenceLoss(policyWinner: [0.30, 0.30, 0.5], policyLoser: [0.32, 0.32, 0.1],
                           referenceWinner: [0.31, 0.31, 0.2], referenceLoser: [0.31, 0.31, 0.2],
                           labels: [1, -1, 0], config: PreferenceLossConfig(kind: .sigmoid, beta: 10))
    #expect(r.labelled == 2)
    #expect(abs(r.loss - 0.6981388693815919) < 1e-12)
    #expect(r.implicitAccuracy == 0.5)
    #expect(r.dPolicyWinner[2] == 0 && r.dPolicyLoser[2] == 0)
    // Label −1 equals swapping winner and loser with label +1.
    let swapped = preferenceLoss(policyWinner: [0.32], policyLoser: [0.30], referenceWinner: [0.31],
                                 referenceLoser: [0.31], labels: [1], config: PreferenceLossConfig(kind: .sigmoid, beta: 10))
    #expect(abs(swapped.z[0] - r.z[1]) < 1e-12)
}

@Test func allMaskedGivesZeroLossAndNoGradient() {
    let r = preferenceLoss(policyWinner: [0.3], policyLoser: [0.2], referenceWinner: [0.1], referenceLoser: [0.4],
                           labels: [0], config: PreferenceLossConfig())
    #expect(r.loss == 0 && r.labelled == 0 && r.implicitAccuracy.isNaN && r.dPolicyWinner == [0])
}

@Test func tiesCountHalfInImplicitAccuracy() {
    let r = preferenceLoss(policyWinner: [0.3, 0.3], policyLoser: [0.3, 0.2], referenceWinner: [0.3, 0.3],
                           referenceLoser: [0.3, 0.3], labels: [1, 1], config: PreferenceLossConfig(beta: 10))
    #expect(r.implicitAccuracy == 0.25)  // one tie (½) and one wrong (0) over two pairs
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
