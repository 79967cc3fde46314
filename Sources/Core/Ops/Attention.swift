// Multi-head scaled dot-product attention on already-projected q, k, v (self or cross), with an
// optional key padding mask. Heads are column slices of D, read in place through GEMM strides.

/// out = softmax(Q_h K_hᵀ / sqrt(d_h) + mask) V_h for each head h (columns h·d_h ..< (h+1)·d_h).
/// q: (B, Tq, D), k: (B, Tk, D), v: (B, Tk, D) → (B, Tq, D). `keyPaddingMask` (B·Tk, row-major
/// (B, Tk)): true = padding, the key is ignored (PyTorch's convention); a query whose keys are all
/// padding gets zeros. Saves the probabilities P (B, H, Tq, Tk) for backward.
/// reference: Vaswani et al. 2017, "Attention Is All You Need", eq. 1.
public func attention<S>(_ q: TensorOf<S>, _ k: TensorOf<S>, _ v: TensorOf<S>, heads: Int,
                         keyPaddingMask: [Bool]? = nil) -> TensorOf<S> {
    precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention: q, k, v must be (B, T, D): \(q.shape) \(k.shape) \(v.shape)")
    let b = q.shape[0], tq = q.shape[1], dm = q.shape[2], tk = k.shape[1]
    precondition(k.shape == [b, tk, dm] && v.shape == k.shape, "attention: k \(k.shape) and v \(v.shape) must be (\(b), Tk, \(dm))")
    precondition(heads >= 1 && dm % heads == 0, "attention: model dim \(dm) not divisible by \(heads) heads")
    if let m = keyPaddingMask { precondition(m.count == b * tk, "attention: keyPaddingMask needs B·Tk = \(b * tk) entries, got \(m.count)") }
    let dh = dm / heads, scale = 1 / S(Double(dh).squareRoot())
    let record = needsGrad(q, k, v)
    precondition(!record || (q !== k && q !== v && k !== v), "attention: q, k, v must be distinct tensors when recording gradients")
    // P: (B, H, Tq, Tk), every element written below (the scores GEMM has beta 0): no zero-fill.
    var probs: [S] = uninitializedArray(b * heads * tq * tk) { _ in }
    let mask = keyPaddingMask ?? []
    let y: [S] = q.data.withUnsafeBufferPointer { qp in k.data.withUnsafeBufferPointer { kp in v.data.withUnsafeBufferPointer { vp in
        probs.withUnsafeMutableBufferPointer { pp in
            uninitializedArray(b * tq * dm) { yp in
                parallelFor(b * heads, grain: 1) { r in
                    for bh in r {
                        let bi = bh / heads, h = bh % heads
                        let p = pp.baseAddress! + bh * tq * tk  // (Tq, Tk)
                        let qh = qp.baseAddress! + bi * tq * dm + h * dh, kh = kp.baseAddress! + bi * tk * dm + h * dh
                        let vh = vp.baseAddress! + bi * tk * dm + h * dh
                        S.gemm(transA: false, transB: true, m: tq, n: tk, k: dh, alpha: scale, a: qh, lda: dm,
                               b: kh, ldb: dm, beta: 0, c: p, ldc: tk)
                        if !mask.isEmpty {
                            for j in 0..<tk where mask[bi * tk + j] { for i in 0..<tq { p[i * tk + j] = -S.infinity } }
                        }
                        softmaxRows(p, rows: tq, d: tk)
                        S.gemm(transA: false, transB: false, m: tq, n: dh, k: tk, alpha: 1, a: p, lda: tk,
                               b: vh, ldb: dm, beta: 0, c: yp + bi * tq * dm + h * dh, ldc: dm)
                    }
                }
            }
        }
    } } }
    let out = TensorOf(shape: [b, tq, dm], data: y)
    if record {
        out.attach([q, k, v]) { dout in
            // Gradients of inputs that need none go to a throwaway buffer.
            var scratchQ = q.requiresGrad ? [] : [S](repeating: 0, count: q.count)
            var scratchK = k.requiresGrad ? [] : [S](repeating: 0, count: k.count)
            var scratchV = v.requiresGrad ? [] : [S](repeating: 0, count: v.count)
            func gradPointer(_ t: TensorOf<S>, _ scratch: inout [S], _ body: (UnsafeMutablePointer<S>) -> Void) {
                if t.requiresGrad { t.accumulateGrad(body) } else { scratch.withUnsafeMutableBufferPointer { body($0.baseAddress!) } }
            }
            q.data.withUnsafeBufferPointer { qp in k.data.withUnsafeBufferPointer { kp in v.data.withUnsafeBufferPointer { vp in
            probs.withUnsafeBufferPointer { pp in dout.withUnsafeBufferPointer { dp in
            gradPointer(q, &scratchQ) { dq in gradPointer(k, &scratchK) { dk in gradPointer(v, &scratchV) { dv in
                parallelFor(b * heads, grain: 1) { r in
                    let ds = UnsafeMutablePointer<S>.allocate(capacity: tq * tk)  // dP / dS: (Tq, Tk), one per chunk
                    defer { ds.deallocate() }
                        for bh in r {
                            let bi = bh / heads, h = bh % heads, off = h * dh
                            let p = pp.baseAddress! + bh * tq * tk
                            let qh = qp.baseAddress! + bi * tq * dm + off, kh = kp.baseAddress! + bi * tk * dm + off
                            let vh = vp.baseAddress! + bi * tk * dm + off, doh = dp.baseAddress! + bi * tq * dm + off
                            // dV_h (Tk, dh) += Pᵀ (Tk, Tq) · dO_h (Tq, dh)
                            S.gemm(transA: true, transB: false, m: tk, n: dh, k: tq, alpha: 1, a: p, lda: tk,
                                   b: doh, ldb: dm, beta: 1, c: dv + bi * tk * dm + off, ldc: dm)
                            // dP (Tq, Tk) = dO_h · V_hᵀ
                            S.gemm(transA: false, transB: true, m: tq, n: tk, k: dh, alpha: 1, a: doh, lda: dm,
                                   b: vh, ldb: dm, beta: 0, c: ds, ldc: tk)
                            // dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                            for i in 0..<tq {
                                var dot: S = 0
                                for j in 0..<tk { dot += ds[i * tk + j] * p[i * tk + j] }
                                for j in 0..<tk { ds[i * tk + j] = p[i * tk + j] * (ds[i * tk + j] - dot) * scale }
                            }
                            // dQ_h += dS · K_h ; dK_h += dSᵀ · Q_h
                            S.gemm(transA: false, transB: false, m: tq, n: dh, k: tk, alpha: 1, a: ds, lda: tk,
                                   b: kh, ldb: dm, beta: 1, c: dq + bi * tq * dm + off, ldc: dm)
                            S.gemm(transA: true, transB: false, m: tk, n: dh, k: tq, alpha: 1, a: ds, lda: tk,
                                   b: qh, ldb: dm, beta: 1, c: dk + bi * tk * dm + off, ldc: dm)
                        }
                }
            } } }
            } }
            } } }
        }
    }
    return out
}
