// Shared helpers for the engine tests: assertClose (shapes first) and a Float64 gradient check
// of a scalar made from an op's output with fixed random weights.
import Testing
@testable import Core

typealias T64 = TensorOf<Double>

/// Checks shapes, then |a − b| ≤ atol + rtol·|b| elementwise; reports the worst element.
func assertClose<S>(_ a: TensorOf<S>, _ b: TensorOf<S>, rtol: Double = 1e-5, atol: Double = 1e-6,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    var worst = -1, worstExcess = 0.0
    for i in 0..<a.count {
        let x = Double(a.data[i]), y = Double(b.data[i])
        let excess = Swift.abs(x - y) - (atol + rtol * Swift.abs(y))
        if excess > worstExcess || (x.isNaN != y.isNaN) { worst = i; worstExcess = max(excess, 1) }
    }
    #expect(worst < 0, "element \(worst): \(worst >= 0 ? Double(a.data[worst]) : 0) vs \(worst >= 0 ? Double(b.data[worst]) : 0)",
            sourceLocation: sourceLocation)
}

func assertClose<S>(_ a: TensorOf<S>, _ b: [Double], shape: [Int], rtol: Double = 1e-5, atol: Double = 1e-6,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    assertClose(a.converted(to: Double.self), T64(shape: shape, data: b), rtol: rtol, atol: atol, sourceLocation: sourceLocation)
}

/// A Float64 leaf ~ N(0, scale²) that requires grad.
func leaf(_ shape: [Int], seed: UInt64, scale: Double = 1, shift: Double = 0) -> T64 {
    let t = T64.normal(shape, key: RandomKey(seed: seed), mean: shift, std: scale)
    t.requiresGrad = true
    return t
}

/// Gradient-checks `f` on the named tensors through loss = Σ f(…) ⊙ W with fixed random W
/// (so every output element gets a different weight), and expects a pass.
func expectGradients(_ tensors: [(String, T64)], maxPerTensor: Int = 24, rtol: Double = 1e-5, atol: Double = 1e-7,
                     sourceLocation: SourceLocation = #_sourceLocation, _ f: () -> T64) {
    let probe = noGrad { f() }
    let w = T64.normal(probe.shape, key: RandomKey(seed: 777))
    let report = gradientCheck(tensors, rtol: rtol, atol: atol, maxPerTensor: maxPerTensor) { sum(f() * w) }
    #expect(report.passed, "\(report)", sourceLocation: sourceLocation)
    #expect(report.checked > 0, sourceLocation: sourceLocation)
}
