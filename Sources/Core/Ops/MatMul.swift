// Matrix products on BLAS GEMM: matmul (2-d and batched 3-d) and linear (x·Wᵀ + b, PyTorch layout).

/// a (M, K) · b (K, N) → (M, N); or batched a (B, M, K) · b (B, K, N) → (B, M, N).
/// Backward: da += dout · bᵀ, db += aᵀ · dout.
public func matmul<S>(_ a: TensorOf<S>, _ b: TensorOf<S>) -> TensorOf<S> {
    precondition((a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0]),
                 "matmul: expected (M,K)·(K,N) or (B,M,K)·(B,K,N), got \(a.shape) · \(b.shape)")
    let batch = a.rank == 3 ? a.shape[0] : 1
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
    precondition(b.shape[b.rank - 2] == k, "matmul: inner dimensions differ: \(a.shape) · \(b.shape)")
    let outShape = a.rank == 3 ? [batch, m, n] : [m, n]
    let y: [S] = a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in
        uninitializedArray(batch * m * n) { yp in
            for i in 0..<batch {
                S.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress! + i * m * k, lda: k,
                       b: bp.baseAddress! + i * k * n, ldb: n, beta: 0, c: yp + i * m * n, ldc: n)
            }
        }
    } }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(a, b) {
        out.attach([a, b]) { dout in
            a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in dout.withUnsafeBufferPointer { dp in
                a.accumulateGrad { da in  // da (M,K) += dout (M,N) · bᵀ (N,K)
                    for i in 0..<batch {
                        S.gemm(transA: false, transB: true, m: m, n: k, k: n, alpha: 1, a: dp.baseAddress! + i * m * n, lda: n,
                               b: bp.baseAddress! + i * k * n, ldb: n, beta: 1, c: da + i * m * k, ldc: k)
                    }
                }
                b.accumulateGrad { db in  // db (K,N) += aᵀ (K,M) · dout (M,N)
                    for i in 0..<batch {
                        S.gemm(transA: true, transB: false, m: k, n: n, k: m, alpha: 1, a: ap.baseAddress! + i * m * k, lda: k,
                               b: dp.baseAddress! + i * m * n, ldb: n, beta: 1, c: db + i * k * n, ldc: n)
                    }
                }
            } } }
        }
    }
    return out
}

/// y = x · Wᵀ + b over the last axis: x (…, in), weight (out, in), bias (out) → (…, out).
/// Backward: dx += dy · W, dweight += dyᵀ · x, dbias += Σ_rows dy.
public func linear<S>(_ x: TensorOf<S>, _ weight: TensorOf<S>, _ bias: TensorOf<S>?) -> TensorOf<S> {
    precondition(weight.rank == 2, "linear: weight must be (out, in), got \(weight.shape)")
    let outF = weight.shape[0], inF = weight.shape[1]
    precondition(x.rank >= 1 && x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF) (weight \(weight.shape))")
    if let bias { precondition(bias.shape == [outF], "linear: bias must be (\(outF)), got \(bias.shape)") }
    let rows = x.count / inF
    var outShape = x.shape; outShape[outShape.count - 1] = outF
    // x: (rows, in), y: (rows, out)
    let y: [S] = x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in
        uninitializedArray(rows * outF) { yp in
            var beta: S = 0
            if let bias {
                bias.data.withUnsafeBufferPointer { bp in
                    for r in 0..<rows { (yp + r * outF).update(from: bp.baseAddress!, count: outF) }
                }
                beta = 1
            }
            S.gemm(transA: false, transB: true, m: rows, n: outF, k: inF, alpha: 1, a: xp.baseAddress!, lda: inF,
                   b: wp.baseAddress!, ldb: inF, beta: beta, c: yp, ldc: outF)
        }
    } }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight] + (bias.map { [$0] } ?? [])) { dout in
            x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in dout.withUnsafeBufferPointer { dp in
                x.accumulateGrad { dx in  // dx (rows,in) += dy (rows,out) · W (out,in)
                    S.gemm(transA: false, transB: false, m: rows, n: inF, k: outF, alpha: 1, a: dp.baseAddress!, lda: outF,
                           b: wp.baseAddress!, ldb: inF, beta: 1, c: dx, ldc: inF)
                }
                weight.accumulateGrad { dweight in  // dW (out,in) += dyᵀ (out,rows) · x (rows,in)
                    S.gemm(transA: true, transB: false, m: outF, n: inF, k: rows, alpha: 1, a: dp.baseAddress!, lda: outF,
                           b: xp.baseAddress!, ldb: inF, beta: 1, c: dweight, ldc: inF)
                }
                bias?.accumulateGrad { dbias in  // fixed row order
                    for r in 0..<rows { for o in 0..<outF { dbias[o] += dp[r * outF + o] } }
                }
            } } }
        }
    }
    return out
}
