// Shared helpers for the engine tests: assertClose (shapes first) and a Float64 gradient check
// of a scalar made from an op's output with fixed random weights.
import Testing
@testable import Core

typealias T64 = TensorOf<Double>

/// The elements of `a` that differ from `b` by more than atol + rtol·|b|: how many, and the worst
/// (largest |a − b| / (atol + rtol·|b|); a NaN against a number, or an infinity against anything
/// else, counts as +∞). Two NaNs, or two equal infinities, agree.
func closeViolations(_ a: [Double], _ b: [Double], rtol: Double, atol: Double) -> (count: Int, worst: Int, ratio: Double) {
    precondition(a.count == b.count)
    var count = 0, worst = -1, worstRatio = 0.0
    for i in 0..<a.count {
        let x = a[i], y = b[i]
        let ratio: Double
        if x.isNaN || y.isNaN { ratio = x.isNaN && y.isNaN ? 0 : .infinity }
        else if x.isInfinite || y.isInfinite { ratio = x == y ? 0 : .infinity }
        else { ratio = Swift.abs(x - y) / (atol + rtol * Swift.abs(y)) }
        guard ratio > 1 else { continue }
        count += 1
        if worst < 0 || ratio > worstRatio { worst = i; worstRatio = ratio }
    }
    return (count, worst, worstRatio)
}

/// Checks shapes, then |a − b| ≤ atol + rtol·|b| elementwise; reports the worst element (largest
/// violation, not the first) and how many elements fail.
func assertClose<S>(_ a: TensorOf<S>, _ b: TensorOf<S>, rtol: Double = 1e-5, atol: Double = 1e-6,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    let x = a.data.map { Double($0) }, y = b.data.map { Double($0) }
    let v = closeViolations(x, y, rtol: rtol, atol: atol)
    let worst = v.worst >= 0 ? "\(x[v.worst]) vs \(y[v.worst])" : ""
    #expect(v.count == 0, "\(v.count) of \(x.count) elements differ; worst element \(v.worst): \(worst) (ratio \(v.ratio))",
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
