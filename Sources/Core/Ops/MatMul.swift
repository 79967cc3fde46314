// Matrix products on BLAS GEMM: matmul (2-d and batched 3-d) and linear (x·Wᵀ + b, PyTorch layout).
// A single product is split over the engine's threads by `parallelGemm`, a batch by its entries.

/// C_i = alpha · op(A_i) · op(B_i) + beta · C_i for i in 0..<batch, the operands `strideA`,
/// `strideB`, `strideC` elements apart; entries are spread over the engine's threads (one entry:
/// `parallelGemm` splits it).
private func batchedGemm<S: TensorScalar>(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: S,
                                          a: UnsafePointer<S>, lda: Int, strideA: Int, b: UnsafePointer<S>, ldb: Int, strideB: Int,
                                          beta: S, c: UnsafeMutablePointer<S>, ldc: Int, strideC: Int) {
    if batch == 1 {
        parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                     beta: beta, c: c, ldc: ldc)
        return
    }
    parallelFor(batch, grain: max(1, (1 << 18) / max(1, m * n * k))) { r in
        for i in r {
            S.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a + i * strideA, lda: lda,
                   b: b + i * strideB, ldb: ldb, beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }
}

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
            batchedGemm(batch: batch, transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: k, strideA: m * k,
                        b: bp.baseAddress!, ldb: n, strideB: k * n, beta: 0, c: yp, ldc: n, strideC: m * n)
        }
    } }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(a, b) {
        out.attach([a, b]) { dout in
            a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in dout.withUnsafeBufferPointer { dp in
                a.accumulateGrad { da in  // da (M,K) += dout (M,N) · bᵀ (N,K)
                    batchedGemm(batch: batch, transA: false, transB: true, m: m, n: k, k: n, alpha: 1, a: dp.baseAddress!, lda: n, strideA: m * n,
                                b: bp.baseAddress!, ldb: n, strideB: k * n, beta: 1, c: da, ldc: k, strideC: m * k)
                }
                b.accumulateGrad { db in  // db (K,N) += aᵀ (K,M) · dout (M,N)
                    batchedGemm(batch: batch, transA: true, transB: false, m: k, n: n, k: m, alpha: 1, a: ap.baseAddress!, lda: k, strideA: m * k,
                                b: dp.baseAddress!, ldb: n, strideB: m * n, beta: 1, c: db, ldc: n, strideC: k * n)
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
            parallelGemm(transA: false, transB: true, m: rows, n: outF, k: inF, alpha: 1, a: xp.baseAddress!, lda: inF,
                         b: wp.baseAddress!, ldb: inF, beta: beta, c: yp, ldc: outF)
        }
    } }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight] + (bias.map { [$0] } ?? [])) { dout in
            x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in dout.withUnsafeBufferPointer { dp in
                x.accumulateGrad { dx in  // dx (rows,in) += dy (rows,out) · W (out,in)
                    parallelGemm(transA: false, transB: false, m: rows, n: inF, k: outF, alpha: 1, a: dp.baseAddress!, lda: outF,
                                 b: wp.baseAddress!, ldb: inF, beta: 1, c: dx, ldc: inF)
                }
                weight.accumulateGrad { dweight in  // dW (out,in) += dyᵀ (out,rows) · x (rows,in)
                    parallelGemm(transA: true, transB: false, m: outF, n: inF, k: rows, alpha: 1, a: dp.baseAddress!, lda: outF,
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
