// Reductions: sum / mean over everything or one axis, and the per-sample MSE of diffusion losses.
// Sums are deterministic: fixed 4096-element blocks summed in Double, blocks combined in order.

/// Σ_i x_i over fixed blocks (independent of the thread count).
func deterministicSum<S: TensorScalar>(_ p: UnsafeBufferPointer<S>) -> Double {
    let n = p.count, block = 4096
    let blocks = (n + block - 1) / block
    if blocks <= 1 { var s = 0.0; for v in p { s += Double(v) }; return s }
    var partial = [Double](repeating: 0, count: blocks)
    partial.withUnsafeMutableBufferPointer { pp in
        parallelFor(blocks, grain: 4) { r in
            for k in r {
                var s = 0.0
                for i in (k * block)..<min(n, (k + 1) * block) { s += Double(p[i]) }
                pp[k] = s
            }
        }
    }
    return partial.reduce(0, +)
}

/// Σ x over all elements → scalar (shape []).
public func sum<S>(_ x: TensorOf<S>) -> TensorOf<S> { scaledTotal(x, 1) }

/// (1/n) Σ x over all elements → scalar.
public func mean<S>(_ x: TensorOf<S>) -> TensorOf<S> {
    precondition(x.count > 0, "mean: empty tensor of shape \(x.shape)")
    return scaledTotal(x, 1 / Double(x.count))
}

func scaledTotal<S>(_ x: TensorOf<S>, _ factor: Double) -> TensorOf<S> {
    let s = x.data.withUnsafeBufferPointer { deterministicSum($0) } * factor
    let out = TensorOf<S>.scalar(S(s))
    if needsGrad(x) {
        out.attach([x]) { dout in
            let g = dout[0] * S(factor), n = x.count
            x.accumulateGrad { dx in parallelFor(n, grain: 65_536) { r in for i in r { dx[i] += g } } }
        }
    }
    return out
}

/// Σ over one axis (removed from the shape): x (outer, n, inner) → (outer, inner).
public func sum<S>(_ x: TensorOf<S>, axis: Int) -> TensorOf<S> { axisReduce(x, axis, mean: false) }
/// Mean over one axis (removed from the shape).
public func mean<S>(_ x: TensorOf<S>, axis: Int) -> TensorOf<S> { axisReduce(x, axis, mean: true) }

func axisReduce<S>(_ x: TensorOf<S>, _ axisIn: Int, mean: Bool) -> TensorOf<S> {
    let axis = axisIn < 0 ? axisIn + x.rank : axisIn
    precondition(axis >= 0 && axis < x.rank, "sum/mean: axis \(axisIn) out of range for shape \(x.shape)")
    let n = x.shape[axis]
    let outer = shapeCount(Array(x.shape[..<axis])), inner = shapeCount(Array(x.shape[(axis + 1)...]))
    var outShape = x.shape; outShape.remove(at: axis)
    let factor: S = mean ? 1 / S(max(n, 1)) : 1
    // x: (outer, n, inner) → y: (outer, inner)
    let y: [S] = x.data.withUnsafeBufferPointer { xp in
        uninitializedArray(outer * inner) { yp in
            parallelFor(outer, grain: max(1, 32_768 / max(1, n * inner))) { r in
                for o in r {
                    for j in 0..<inner { yp[o * inner + j] = 0 }
                    for k in 0..<n {
                        let src = (o * n + k) * inner
                        for j in 0..<inner { yp[o * inner + j] += xp[src + j] }
                    }
                    for j in 0..<inner { yp[o * inner + j] *= factor }
                }
            }
        }
    }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in
            x.accumulateGrad { dx in
                parallelFor(outer, grain: max(1, 32_768 / max(1, n * inner))) { r in
                    for o in r { for k in 0..<n {
                        let dst = (o * n + k) * inner
                        for j in 0..<inner { dx[dst + j] += dout[o * inner + j] * factor }
                    } }
                }
            }
        }
    }
    return out
}

/// Per-sample mean squared error: pred, target (B, …) → (B,), mse_b = mean over non-batch dims of
/// (pred − target)². The diffusion loss of SPEC §2 (mse_θ(x, t)).
public func mseLossPerSample<S>(_ pred: TensorOf<S>, _ target: TensorOf<S>) -> TensorOf<S> {
    precondition(pred.shape == target.shape, "mseLossPerSample: pred \(pred.shape) vs target \(target.shape)")
    precondition(pred.rank >= 1, "mseLossPerSample: needs a batch dimension, got shape \(pred.shape)")
    let b = pred.shape[0], m = pred.count / max(b, 1)
    let inv = 1 / Double(max(m, 1))
    // pred, target: (B, m) → y: (B,)
    let y: [S] = pred.data.withUnsafeBufferPointer { pp in target.data.withUnsafeBufferPointer { tp in
        uninitializedArray(b) { yp in
            parallelFor(b, grain: max(1, 32_768 / max(1, m))) { r in
                for s in r {
                    var acc = 0.0
                    for i in (s * m)..<((s + 1) * m) { let d = Double(pp[i] - tp[i]); acc += d * d }
                    yp[s] = S(acc * inv)
                }
            }
        }
    } }
    let out = TensorOf(shape: [b], data: y)
    if needsGrad(pred, target) {
        out.attach([pred, target]) { dout in
            pred.data.withUnsafeBufferPointer { pp in target.data.withUnsafeBufferPointer { tp in
                // d/dpred = 2 (pred − target) / m · dout_b ; d/dtarget = −that
                pred.accumulateGrad { dp in
                    parallelFor(b, grain: max(1, 32_768 / max(1, m))) { r in for s in r {
                        let g = 2 * dout[s] * S(inv)
                        for i in (s * m)..<((s + 1) * m) { dp[i] += g * (pp[i] - tp[i]) }
                    } }
                }
                target.accumulateGrad { dt in
                    parallelFor(b, grain: max(1, 32_768 / max(1, m))) { r in for s in r {
                        let g = 2 * dout[s] * S(inv)
                        for i in (s * m)..<((s + 1) * m) { dt[i] -= g * (pp[i] - tp[i]) }
                    } }
                }
            } }
        }
    }
    return out
}
