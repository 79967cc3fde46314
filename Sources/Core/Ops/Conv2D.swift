// 2-d convolution (any square kernel, stride, zero padding) as im2col + one GEMM over the whole
// batch; backward recomputes the columns (saves memory) and uses col2im. NCHW throughout.

/// Output size of a convolution along one axis: ⌊(n + 2·padding − kernel) / stride⌋ + 1.
@inline(__always)
public func convOutputSize(_ n: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (n + 2 * padding - kernel) / stride + 1
}

struct ConvGeometry {
    let batch, cin, h, w, cout, k, stride, pad, ho, wo: Int
    var rows: Int { cin * k * k }          // im2col rows
    var pixels: Int { ho * wo }            // im2col columns of one sample

    /// For kernel column kx: the output columns [lo, hi) whose input column ox·s + kx − p is inside.
    @inline(__always) func validColumns(_ kx: Int) -> (lo: Int, hi: Int) {
        let first = pad - kx                       // ox·s ≥ first
        let lo = first <= 0 ? 0 : (first + stride - 1) / stride
        let last = w - 1 + pad - kx                // ox·s ≤ last
        let hi = last < 0 ? 0 : min(wo, last / stride + 1)
        return (min(lo, hi), hi)
    }
}

/// col[c·K·K + ky·K + kx, oy·Wo + ox] = x[c, oy·s + ky − p, ox·s + kx − p] (0 outside), for one
/// sample x: (C, H, W); col rows are `ld` apart (the sample's Ho·Wo columns of a wider matrix).
/// Contiguous copies for the inside of each row, zeros at the edges.
@inline(__always)
func im2colSample<S: TensorScalar>(_ x: UnsafePointer<S>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<S>, ld: Int) {
    for c in 0..<g.cin {
        let plane = x + c * g.h * g.w
        for ky in 0..<g.k {
            for kx in 0..<g.k {
                let row = col + ((c * g.k + ky) * g.k + kx) * ld
                let (lo, hi) = g.validColumns(kx)
                for oy in 0..<g.ho {
                    let dst = row + oy * g.wo
                    let iy = oy * g.stride + ky - g.pad
                    if iy < 0 || iy >= g.h || lo >= hi { dst.update(repeating: 0, count: g.wo); continue }
                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                    if hi < g.wo { (dst + hi).update(repeating: 0, count: g.wo - hi) }
                    let line = plane + iy * g.w + kx - g.pad   // line[ox·s] = x[c, iy, ox·s + kx − p]
                    if g.stride == 1 {
                        (dst + lo).update(from: line + lo, count: hi - lo)
                    } else {
                        for ox in lo..<hi { dst[ox] = line[ox * g.stride] }
                    }
                }
            }
        }
    }
}

/// dx[c, iy, ix] += Σ dcol over the (ky, kx, oy, ox) that read it, for one sample dx: (C, H, W);
/// dcol rows are `ld` apart.
@inline(__always)
func col2imSampleAccumulate<S: TensorScalar>(_ dcol: UnsafePointer<S>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<S>, ld: Int) {
    for c in 0..<g.cin {
        let plane = dx + c * g.h * g.w
        for ky in 0..<g.k {
            for kx in 0..<g.k {
                let row = dcol + ((c * g.k + ky) * g.k + kx) * ld
                let (lo, hi) = g.validColumns(kx)
                if lo >= hi { continue }
                for oy in 0..<g.ho {
                    let iy = oy * g.stride + ky - g.pad
                    if iy < 0 || iy >= g.h { continue }
                    let src = row + oy * g.wo
                    let line = plane + iy * g.w + kx - g.pad
                    if g.stride == 1 {
                        for ox in lo..<hi { line[ox] += src[ox] }
                    } else {
                        for ox in lo..<hi { line[ox * g.stride] += src[ox] }
                    }
                }
            }
        }
    }
}

/// The elements of `array` (nil stays nil) for the duration of `body`.
@inline(__always)
func withOptionalBuffer<S, R>(_ array: [S]?, _ body: (UnsafePointer<S>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// y = conv2d(x, weight) + bias.
/// x: (B, Cin, H, W), weight: (Cout, Cin, K, K), bias: (Cout) → y: (B, Cout, Ho, Wo),
/// Ho = ⌊(H + 2p − K)/s⌋ + 1. With cols (Cin·K·K, B·Ho·Wo) from im2col (samples in parallel):
///   forward  Y (Cout, B·HoWo) = W (Cout, Cin·K·K) · cols, then permuted to NCHW with the bias;
///   backward dW += dY · colsᵀ, dbias += Σ dY, dcols = Wᵀ · dY then col2im into dx.
/// The GEMMs are whole-batch calls to the threaded BLAS: OpenBLAS's rounding depends on its thread
/// count, so calling it per sample from our own threads (or toggling its threads) would make
/// results depend on scheduling; one wide GEMM is also where OpenBLAS is fastest.
public func conv2d<S>(_ x: TensorOf<S>, _ weight: TensorOf<S>, _ bias: TensorOf<S>?,
                      stride: Int = 1, padding: Int = 0) -> TensorOf<S> {
    precondition(x.rank == 4, "conv2d: input must be (B, C, H, W), got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3],
                 "conv2d: weight must be (Cout, Cin, K, K), got \(weight.shape)")
    precondition(weight.shape[1] == x.shape[1], "conv2d: input has \(x.shape[1]) channels, weight expects \(weight.shape[1])")
    precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride), padding \(padding)")
    let k = weight.shape[2]
    let ho = convOutputSize(x.shape[2], kernel: k, stride: stride, padding: padding)
    let wo = convOutputSize(x.shape[3], kernel: k, stride: stride, padding: padding)
    precondition(ho > 0 && wo > 0, "conv2d: output would be empty for input \(x.shape), kernel \(k)")
    let g = ConvGeometry(batch: x.shape[0], cin: x.shape[1], h: x.shape[2], w: x.shape[3], cout: weight.shape[0],
                         k: k, stride: stride, pad: padding, ho: ho, wo: wo)
    if let bias { precondition(bias.shape == [g.cout], "conv2d: bias must be (\(g.cout)), got \(bias.shape)") }
    let inSize = g.cin * g.h * g.w, outSize = g.cout * g.pixels, ncol = g.batch * g.pixels

    /// cols (rows, B·HoWo) for the whole batch, one sample per parallel item.
    func columns(_ xp: UnsafePointer<S>) -> UnsafeMutablePointer<S> {
        let cols = Workspace.buffer(0, g.rows * ncol, S.self)
        parallelFor(g.batch, grain: max(1, 16_384 / max(1, g.rows * g.pixels))) { r in
            for b in r { im2colSample(xp + b * inSize, g, cols + b * g.pixels, ld: ncol) }
        }
        return cols
    }

    let y: [S] = x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
        uninitializedArray(g.batch * outSize) { yp in
            let cols = columns(xb.baseAddress!)
            let prod = Workspace.buffer(1, g.cout * ncol, S.self)   // (Cout, B·HoWo)
            S.gemm(transA: false, transB: false, m: g.cout, n: ncol, k: g.rows, alpha: 1,
                   a: wb.baseAddress!, lda: g.rows, b: cols, ldb: ncol, beta: 0, c: prod, ldc: ncol)
            // (Cout, B, HoWo) → (B, Cout, HoWo), adding the bias.
            withOptionalBuffer(bias?.data) { bp in
                parallelFor(g.batch * g.cout, grain: max(1, 32_768 / g.pixels)) { r in
                    for bc in r {
                        let b = bc / g.cout, co = bc % g.cout
                        let src = prod + co * ncol + b * g.pixels, dst = yp + bc * g.pixels
                        let bv = bp?[co] ?? 0
                        for i in 0..<g.pixels { dst[i] = src[i] + bv }
                    }
                }
            }
        }
    } }
    let out = TensorOf(shape: [g.batch, g.cout, ho, wo], data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight] + (bias.map { [$0] } ?? [])) { dout in
            dout.withUnsafeBufferPointer { db in
                // dY permuted: (B, Cout, HoWo) → (Cout, B·HoWo)
                let dprod = Workspace.buffer(1, g.cout * ncol, S.self)
                parallelFor(g.batch * g.cout, grain: max(1, 32_768 / g.pixels)) { r in
                    for bc in r {
                        let b = bc / g.cout, co = bc % g.cout
                        (dprod + co * ncol + b * g.pixels).update(from: db.baseAddress! + bc * g.pixels, count: g.pixels)
                    }
                }
                bias?.accumulateGrad { dbias in
                    parallelFor(g.cout, grain: max(1, 32_768 / ncol)) { r in
                        for co in r {
                            var s: S = 0
                            let row = dprod + co * ncol
                            for i in 0..<ncol { s += row[i] }
                            dbias[co] += s
                        }
                    }
                }
                weight.accumulateGrad { dweight in  // dW (Cout, rows) += dY (Cout, N) · colsᵀ (N, rows)
                    let cols = x.data.withUnsafeBufferPointer { columns($0.baseAddress!) }
                    S.gemm(transA: false, transB: true, m: g.cout, n: g.rows, k: ncol, alpha: 1,
                           a: dprod, lda: ncol, b: cols, ldb: ncol, beta: 1, c: dweight, ldc: g.rows)
                }
                x.accumulateGrad { dx in
                    if g.stride == 1 && g.pad <= g.k - 1 {
                        transposedConvolutionAccumulate(db.baseAddress!, weight, g, dx)
                        return
                    }
                    // dcols (rows, N) = Wᵀ (rows, Cout) · dY (Cout, N), then col2im
                    let dcols = Workspace.buffer(2, g.rows * ncol, S.self)
                    weight.data.withUnsafeBufferPointer { wp in
                        S.gemm(transA: true, transB: false, m: g.rows, n: ncol, k: g.cout, alpha: 1,
                               a: wp.baseAddress!, lda: g.rows, b: dprod, ldb: ncol, beta: 0, c: dcols, ldc: ncol)
                    }
                    parallelFor(g.batch, grain: max(1, 16_384 / max(1, g.rows * g.pixels))) { r in
                        for b in r { col2imSampleAccumulate(dcols + b * g.pixels, g, dx + b * inSize, ld: ncol) }
                    }
                }
            }
        }
    }
    return out
}

/// dx += conv_transpose(dy, W) for a stride-1 convolution, computed as a convolution of dy with the
/// flipped, transposed kernel and padding K−1−p:
///   dx[ci, iy, ix] = Σ_{co, ky, kx} W[co, ci, K−1−ky, K−1−kx] · dy[co, iy + ky − (K−1−p), ix + kx − (K−1−p)].
/// One well-shaped GEMM (Cin, Cout·K²)·(Cout·K², B·H·W) replaces the thin dcols = Wᵀ·dY (inner
/// dimension Cout) and the scatter of col2im, and the columns are read straight from NCHW dy.
/// dy: (B, Cout, Ho, Wo), weight: (Cout, Cin, K, K), dx: (B, Cin, H, W).
func transposedConvolutionAccumulate<S: TensorScalar>(_ dy: UnsafePointer<S>, _ weight: TensorOf<S>,
                                                      _ g: ConvGeometry, _ dx: UnsafeMutablePointer<S>) {
    let k = g.k, kk = k * k
    let t = ConvGeometry(batch: g.batch, cin: g.cout, h: g.ho, w: g.wo, cout: g.cin, k: k, stride: 1,
                         pad: k - 1 - g.pad, ho: g.h, wo: g.w)
    precondition(t.ho == g.h && t.wo == g.w, "conv2d backward: transposed geometry \(t) does not give \(g.h)×\(g.w)")
    let ncol = g.batch * t.pixels, dySize = g.cout * g.pixels, dxSize = g.cin * t.pixels
    // wt (Cin, Cout·K·K): wt[ci, (co·K + ky)·K + kx] = W[co, ci, K−1−ky, K−1−kx]
    let wt = Workspace.buffer(4, g.cin * t.rows, S.self)
    weight.data.withUnsafeBufferPointer { wb in
        let w = wb.baseAddress!
        for co in 0..<g.cout { for ci in 0..<g.cin { for j in 0..<kk {
            wt[ci * t.rows + co * kk + j] = w[(co * g.cin + ci) * kk + (kk - 1 - j)]
        } } }
    }
    let cols = Workspace.buffer(2, t.rows * ncol, S.self)   // (Cout·K·K, B·H·W)
    parallelFor(g.batch, grain: max(1, 16_384 / max(1, t.rows * t.pixels))) { r in
        for b in r { im2colSample(dy + b * dySize, t, cols + b * t.pixels, ld: ncol) }
    }
    let prod = Workspace.buffer(3, g.cin * ncol, S.self)    // (Cin, B·H·W)
    S.gemm(transA: false, transB: false, m: g.cin, n: ncol, k: t.rows, alpha: 1,
           a: wt, lda: t.rows, b: cols, ldb: ncol, beta: 0, c: prod, ldc: ncol)
    // (Cin, B, HW) → dx (B, Cin, HW), accumulating.
    parallelFor(g.batch * g.cin, grain: max(1, 32_768 / t.pixels)) { r in
        for bc in r {
            let b = bc / g.cin, ci = bc % g.cin
            let src = prod + ci * ncol + b * t.pixels, dst = dx + b * dxSize + ci * t.pixels
            for i in 0..<t.pixels { dst[i] += src[i] }
        }
    }
}
