// 2-d convolution (any square kernel, stride, zero padding) as im2col + one batched GEMM over the
// whole batch; backward recomputes the columns (saves memory) and uses col2im. NCHW throughout.

/// Output size of a convolution along one axis: ⌊(n + 2·padding − kernel) / stride⌋ + 1.
@inline(__always)
public func convOutputSize(_ n: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (n + 2 * padding - kernel) / stride + 1
}

struct ConvGeometry {
    let batch, cin, h, w, cout, k, stride, pad, ho, wo: Int
    var rows: Int { cin * k * k }          // im2col rows
    var pixels: Int { ho * wo }
    var columns: Int { batch * ho * wo }  // im2col columns
}

/// cols (C·K·K, B·Ho·Wo)[c·K·K + ky·K + kx, b·Ho·Wo + oy·Wo + ox] = x[b, c, oy·s + ky − p, ox·s + kx − p] (0 outside).
func im2col<S: TensorScalar>(_ x: UnsafePointer<S>, _ g: ConvGeometry, _ cols: UnsafeMutablePointer<S>) {
    let kk = g.k * g.k, ncol = g.columns
    parallelFor(g.rows, grain: max(1, 65_536 / max(1, ncol))) { r in
        for row in r {
            let c = row / kk, ky = (row / g.k) % g.k, kx = row % g.k
            for b in 0..<g.batch {
                let src = x + (b * g.cin + c) * g.h * g.w
                for oy in 0..<g.ho {
                    let dst = cols + row * ncol + b * g.pixels + oy * g.wo
                    let iy = oy * g.stride + ky - g.pad
                    if iy < 0 || iy >= g.h { for ox in 0..<g.wo { dst[ox] = 0 }; continue }
                    let line = src + iy * g.w
                    if g.stride == 1 {
                        let shift = kx - g.pad
                        for ox in 0..<g.wo {
                            let ix = ox + shift
                            dst[ox] = (ix >= 0 && ix < g.w) ? line[ix] : 0
                        }
                    } else {
                        for ox in 0..<g.wo {
                            let ix = ox * g.stride + kx - g.pad
                            dst[ox] = (ix >= 0 && ix < g.w) ? line[ix] : 0
                        }
                    }
                }
            }
        }
    }
}

/// dx[b, c, iy, ix] += Σ dcols over the (ky, kx, oy, ox) that read it. Channels split across threads.
func col2imAccumulate<S: TensorScalar>(_ dcols: UnsafePointer<S>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<S>) {
    let kk = g.k * g.k, ncol = g.columns
    parallelFor(g.cin, grain: max(1, 65_536 / max(1, kk * ncol))) { r in
        for c in r {
            for ky in 0..<g.k { for kx in 0..<g.k {
                let row = c * kk + ky * g.k + kx
                for b in 0..<g.batch {
                    let dst = dx + (b * g.cin + c) * g.h * g.w
                    for oy in 0..<g.ho {
                        let iy = oy * g.stride + ky - g.pad
                        if iy < 0 || iy >= g.h { continue }
                        let src = dcols + row * ncol + b * g.pixels + oy * g.wo
                        let line = dst + iy * g.w
                        for ox in 0..<g.wo {
                            let ix = ox * g.stride + kx - g.pad
                            if ix >= 0 && ix < g.w { line[ix] += src[ox] }
                        }
                    }
                }
            } }
        }
    }
}

/// y = conv2d(x, weight) + bias.
/// x: (B, Cin, H, W), weight: (Cout, Cin, K, K), bias: (Cout) → y: (B, Cout, Ho, Wo),
/// Ho = ⌊(H + 2p − K)/s⌋ + 1. Forward: Y (Cout, B·Ho·Wo) = W (Cout, Cin·K·K) · cols.
/// Backward: dW += dY · colsᵀ, dbias += Σ dY, dcols = Wᵀ · dY then col2im into dx.
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
    let outCount = g.batch * g.cout * g.pixels

    let y: [S] = x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in
        uninitializedArray(outCount) { yp in
            let cols = Workspace.buffer(0, g.rows * g.columns, S.self)   // (rows, B·Ho·Wo)
            im2col(xp.baseAddress!, g, cols)
            let prod = Workspace.buffer(1, g.cout * g.columns, S.self)   // (Cout, B·Ho·Wo)
            S.gemm(transA: false, transB: false, m: g.cout, n: g.columns, k: g.rows, alpha: 1,
                   a: wp.baseAddress!, lda: g.rows, b: cols, ldb: g.columns, beta: 0, c: prod, ldc: g.columns)
            // (Cout, B, HoWo) → (B, Cout, HoWo), adding the bias.
            let biasValues = bias?.data ?? [S](repeating: 0, count: g.cout)
            biasValues.withUnsafeBufferPointer { bp in
                parallelFor(g.batch * g.cout, grain: max(1, 32_768 / g.pixels)) { r in
                    for bc in r {
                        let b = bc / g.cout, co = bc % g.cout
                        let src = prod + co * g.columns + b * g.pixels, dst = yp + bc * g.pixels
                        let bv = bp[co]
                        for i in 0..<g.pixels { dst[i] = src[i] + bv }
                    }
                }
            }
        }
    } }
    let out = TensorOf(shape: [g.batch, g.cout, ho, wo], data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight] + (bias.map { [$0] } ?? [])) { dout in
            dout.withUnsafeBufferPointer { dp in
                // dY permuted: (B, Cout, HoWo) → (Cout, B·HoWo)
                let dprod = Workspace.buffer(1, g.cout * g.columns, S.self)
                parallelFor(g.batch * g.cout, grain: max(1, 32_768 / g.pixels)) { r in
                    for bc in r {
                        let b = bc / g.cout, co = bc % g.cout
                        (dprod + co * g.columns + b * g.pixels).update(from: dp.baseAddress! + bc * g.pixels, count: g.pixels)
                    }
                }
                bias?.accumulateGrad { dbias in
                    parallelFor(g.cout, grain: max(1, 32_768 / g.columns)) { r in
                        for co in r {
                            var s: S = 0
                            let row = dprod + co * g.columns
                            for i in 0..<g.columns { s += row[i] }
                            dbias[co] += s
                        }
                    }
                }
                weight.accumulateGrad { dweight in  // dW (Cout, rows) += dY (Cout, N) · colsᵀ (N, rows)
                    let cols = Workspace.buffer(0, g.rows * g.columns, S.self)
                    x.data.withUnsafeBufferPointer { xp in im2col(xp.baseAddress!, g, cols) }
                    S.gemm(transA: false, transB: true, m: g.cout, n: g.rows, k: g.columns, alpha: 1,
                           a: dprod, lda: g.columns, b: cols, ldb: g.columns, beta: 1, c: dweight, ldc: g.rows)
                }
                x.accumulateGrad { dx in  // dcols (rows, N) = Wᵀ (rows, Cout) · dY (Cout, N)
                    let dcols = Workspace.buffer(2, g.rows * g.columns, S.self)
                    weight.data.withUnsafeBufferPointer { wp in
                        S.gemm(transA: true, transB: false, m: g.rows, n: g.columns, k: g.cout, alpha: 1,
                               a: wp.baseAddress!, lda: g.rows, b: dprod, ldb: g.columns, beta: 0, c: dcols, ldc: g.columns)
                    }
                    col2imAccumulate(dcols, g, dx)
                }
            }
        }
    }
    return out
}
