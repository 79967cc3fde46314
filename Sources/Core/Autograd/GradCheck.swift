// Central-difference gradient check in Float64 (Torch's Jacobian test, tinygrad's gradcheck), for
// ops and modules: compares backward() against (f(x+h) - f(x-h)) / 2h element by element.

/// The worst disagreement found by `gradientCheck`.
public struct GradCheckReport: CustomStringConvertible {
    /// max over checked elements of |analytic - numeric| / (atol + rtol·|numeric|); ≤ 1 passes.
    /// A NaN or infinite analytic or numeric value counts as ratio +∞ (a failure), wherever it is.
    public var worstRatio = 0.0
    public var worstName = ""
    public var worstIndex = 0
    public var analytic = 0.0
    public var numeric = 0.0
    public var checked = 0
    public var passed: Bool { worstRatio <= 1 }
    public var description: String {
        "gradcheck \(passed ? "ok" : "FAILED"): \(checked) elements, worst \(worstName)[\(worstIndex)] " +
        "analytic \(analytic) numeric \(numeric) (ratio \(worstRatio))"
    }
}

/// Checks d loss / d tensor for every named tensor (which must require grad), on up to
/// `maxPerTensor` evenly spaced elements of each. `loss` must rebuild the graph from the tensors'
/// current `data` and return a scalar.
public func gradientCheck(_ tensors: [(String, TensorOf<Double>)], step: Double = 1e-6,
                          rtol: Double = 1e-5, atol: Double = 1e-7, maxPerTensor: Int = 24,
                          loss: () -> TensorOf<Double>) -> GradCheckReport {
    for (name, t) in tensors {
        precondition(t.requiresGrad, "gradientCheck: \(name) does not require grad")
        t.grad = nil
    }
    let l = loss()
    l.backward()
    let analytic = tensors.map { $0.1.grad ?? [Double](repeating: 0, count: $0.1.count) }
    var report = GradCheckReport()
    for (ti, (name, t)) in tensors.enumerated() {
        let n = t.count
        let stride = max(1, n / maxPerTensor)
        for i in Swift.stride(from: 0, to: n, by: stride) {
            let saved = t.data[i]
            t.data[i] = saved + step
            let plus = noGrad { loss().item() }
            t.data[i] = saved - step
            let minus = noGrad { loss().item() }
            t.data[i] = saved
            let numeric = (plus - minus) / (2 * step)
            let a = analytic[ti][i]
            let ratio = gradCheckRatio(analytic: a, numeric: numeric, rtol: rtol, atol: atol)
            report.checked += 1
            if report.checked == 1 || ratio > report.worstRatio {
                report.worstRatio = ratio
                report.worstName = name; report.worstIndex = i
                report.analytic = a; report.numeric = numeric
            }
        }
    }
    for (_, t) in tensors { t.grad = nil }
    return report
}

/// |analytic − numeric| / (atol + rtol·|numeric|), or +∞ when either value is NaN or infinite, so
/// that a non-finite gradient fails the check wherever it is (a NaN ratio would compare false).
func gradCheckRatio(analytic a: Double, numeric: Double, rtol: Double, atol: Double) -> Double {
    guard a.isFinite, numeric.isFinite else { return .infinity }
    return abs(a - numeric) / (atol + rtol * abs(numeric))
}
