// Softmax over the last axis, with the max subtracted for stability; backward
// dx += y ⊙ (dy − Σ_j dy_j y_j) per row.

/// In-place stable softmax of each `d`-long row of p (rows whose entries are all −∞ become 0).
@inline(__always)
func softmaxRows<S: TensorScalar>(_ p: UnsafeMutablePointer<S>, rows: Int, d: Int) {
    for row in 0..<rows {
        let o = p + row * d
        var mx = -S.infinity
        for j in 0..<d { mx = Swift.max(mx, o[j]) }
        if mx == -S.infinity { for j in 0..<d { o[j] = 0 }; continue }
        var s: S = 0
        for j in 0..<d { let e = S.exp(o[j] - mx); o[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<d { o[j] *= inv }
    }
}

/// softmax(x)_j = e^{x_j − max x} / Σ_k e^{x_k − max x} over the last axis. x: (…, D).
public func softmax<S>(_ x: TensorOf<S>) -> TensorOf<S> {
    precondition(x.rank >= 1, "softmax: needs at least one axis")
    let d = x.shape[x.rank - 1], rows = x.count / max(1, d)
    var y = x.data
    y.withUnsafeMutableBufferPointer { yp in
        parallelFor(rows, grain: max(1, 8_192 / max(1, d))) { r in
            softmaxRows(yp.baseAddress! + r.lowerBound * d, rows: r.count, d: d)
        }
    }
    let out = TensorOf(shape: x.shape, data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in
            x.accumulateGrad { dx in
                y.withUnsafeBufferPointer { yp in dout.withUnsafeBufferPointer { dp in
                    parallelFor(rows, grain: max(1, 8_192 / max(1, d))) { r in
                        for row in r {
                            let o = row * d
                            var dot: S = 0
                            for j in o..<(o + d) { dot += dp[j] * yp[j] }
                            for j in o..<(o + d) { dx[j] += yp[j] * (dp[j] - dot) }
                        }
                    }
                } }
            }
        }
    }
    return out
}
