// 2-d convolution (any square kernel, stride, zero padding) as im2col + GEMM over cache-sized groups
// of samples, the groups split across the engine's threads; backward recomputes the columns (saves
// memory), transposed convolution or col2im. 3×3 stride-1 padding-1 Float convolutions go through
// Winograd F(4×4, 3×3) instead, forward and both gradients (winograd.c). NCHW.
import CKernels

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
    if g.stride == 1 && g.wo == g.w { im2colSampleSameWidth(x, g, col, ld: ld); return }
    // Index arithmetic unchecked (&*, &+): every offset is inside the sample's input plane or its
    // column block, whose sizes were computed (checked) when the buffers were made.
    for c in 0..<g.cin {
        let plane = x + c &* g.h &* g.w
        for ky in 0..<g.k {
            for kx in 0..<g.k {
                let row = col + ((c &* g.k &+ ky) &* g.k &+ kx) &* ld
                let (lo, hi) = g.validColumns(kx)
                for oy in 0..<g.ho {
                    let dst = row + oy &* g.wo
                    let iy = oy &* g.stride &+ ky &- g.pad
                    if iy < 0 || iy >= g.h || lo >= hi { dst.update(repeating: 0, count: g.wo); continue }
                    if lo > 0 { dst.update(repeating: 0, count: lo) }
                    if hi < g.wo { (dst + hi).update(repeating: 0, count: g.wo - hi) }
                    let line = plane + (iy &* g.w &+ kx &- g.pad)   // line[ox·s] = x[c, iy, ox·s + kx − p]
                    if g.stride == 1 {
                        (dst + lo).update(from: line + lo, count: hi - lo)
                    } else {
                        for ox in lo..<hi { dst[ox] = line[ox &* g.stride] }   // < W: cannot overflow
                    }
                }
            }
        }
    }
}

/// im2colSample for stride 1 with Wo = W (a "same"-width convolution, e.g. 3×3 padding 1, 1×1
/// padding 0): the valid rows oy of one col row read one contiguous run of the input plane,
///   col[r, oy·W + ox] = x[c, oy + ky − p, ox + kx − p] = plane[oy·W + ox + (ky − p)·W + kx − p],
/// so each (c, ky, kx) is one block copy, then the few columns whose ox + kx − p falls outside the
/// row (they picked up a neighbouring row's pixel) are zeroed, and the rows above/below are zero.
@inline(__always)
func im2colSampleSameWidth<S: TensorScalar>(_ x: UnsafePointer<S>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<S>, ld: Int) {
    // Index arithmetic unchecked (&*, &+, &-), as in im2colSample: offsets inside the buffers.
    let w = g.w, ho = g.ho
    for ky in 0..<g.k {
        // valid output rows: 0 ≤ oy + ky − p < H
        let oy0 = max(0, g.pad &- ky), oy1 = min(ho, g.h &+ g.pad &- ky)
        for kx in 0..<g.k {
            let (lo, hi) = g.validColumns(kx)
            for c in 0..<g.cin {
                let dst = col + ((c &* g.k &+ ky) &* g.k &+ kx) &* ld
                if oy0 >= oy1 || lo >= hi { dst.update(repeating: 0, count: ho &* w); continue }
                if oy0 > 0 { dst.update(repeating: 0, count: oy0 &* w) }
                if oy1 < ho { (dst + oy1 &* w).update(repeating: 0, count: (ho &- oy1) &* w) }
                // Elements oy0·W + lo … (oy1 − 1)·W + hi − 1 are all inside the plane.
                let first = oy0 &* w &+ lo, last = (oy1 &- 1) &* w &+ hi
                let shift = (ky &- g.pad) &* w &+ kx &- g.pad
                (dst + first).update(from: x + (c &* g.h &* w &+ first &+ shift), count: last &- first)
                // Column by column (stride W) so the compiler does not turn each 1-element row
                // fix-up into a memset call. oy·W + ox < Ho·W, the column block's size: the index
                // arithmetic cannot overflow and is left unchecked.
                for ox in 0..<lo { for oy in oy0..<oy1 { dst[oy &* w &+ ox] = 0 } }
                for ox in hi..<w { for oy in oy0..<oy1 { dst[oy &* w &+ ox] = 0 } }
            }
        }
    }
}

/// dx[c, iy, ix] += Σ dcol over the (ky, kx, oy, ox) that read it, for one sample dx: (C, H, W);
/// dcol rows are `ld` apart.
@inline(__always)
func col2imSampleAccumulate<S: TensorScalar>(_ dcol: UnsafePointer<S>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<S>, ld: Int) {
    // Index arithmetic unchecked (&*, &+, &-), as in im2colSample: offsets inside the buffers.
    for c in 0..<g.cin {
        let plane = dx + c &* g.h &* g.w
        for ky in 0..<g.k {
            for kx in 0..<g.k {
                let row = dcol + ((c &* g.k &+ ky) &* g.k &+ kx) &* ld
                let (lo, hi) = g.validColumns(kx)
                if lo >= hi { continue }
                for oy in 0..<g.ho {
                    let iy = oy &* g.stride &+ ky &- g.pad
                    if iy < 0 || iy >= g.h { continue }
                    let src = row + oy &* g.wo
                    let line = plane + (iy &* g.w &+ kx &- g.pad)
                    if g.stride == 1 {
                        for ox in lo..<hi { line[ox] += src[ox] }
                    } else {
                        for ox in lo..<hi { line[ox &* g.stride] += src[ox] }   // < W: cannot overflow
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

/// Samples per GEMM: as many as keep the im2col columns (Cin·K·K, G·Ho·Wo) within ~512 KB, so they
/// are still in cache when the GEMM reads them. Depends only on the shapes, never on threads.
@inline(__always)
func convGroupSize(_ g: ConvGeometry) -> Int {
    max(1, min(g.batch, 131_072 / max(1, g.rows * g.pixels)))
}

/// Runs `body(part, b0, gs)` for every group of `group` samples (the last may be smaller) of a batch,
/// the groups split into `convParts` contiguous parts, one per thread. `part` says which part a group
/// belongs to (for per-part weight-gradient buffers). The partition depends only on the batch, the
/// group size and the thread count; `runParts` hands each part to whichever thread is free
/// (with the other core busy, the calling thread runs both), which changes no result.
@inline(__always)
func forEachSampleGroup(batch: Int, group: Int, _ body: (_ part: Int, _ b0: Int, _ gs: Int) -> Void) {
    let groups = (batch + group - 1) / group, parts = convParts(batch: batch, group: group)
    func run(_ part: Int) {
        for gi in (groups * part / parts)..<(groups * (part + 1) / parts) {
            body(part, gi * group, min(group, batch - gi * group))
        }
    }
    if parts <= 1 { run(0); return }
    runParts(parts, run)
}

/// How many parts `forEachSampleGroup` splits a batch into: one per thread, at most one per group.
@inline(__always)
func convParts(batch: Int, group: Int) -> Int {
    max(1, min(Engine.threads, (batch + group - 1) / group))
}

/// y = conv2d(x, weight) + bias.
/// x: (B, Cin, H, W), weight: (Cout, Cin, K, K), bias: (Cout) → y: (B, Cout, Ho, Wo),
/// Ho = ⌊(H + 2p − K)/s⌋ + 1. The batch is processed in groups of G samples (`convGroupSize`);
/// with cols (Cin·K·K, G·HoWo) from im2col (samples in parallel):
///   forward  Y (Cout, G·HoWo) = W (Cout, Cin·K·K) · cols, then permuted to NCHW with the bias
///            (G = 1: the GEMM writes the sample's NCHW output directly);
///   backward dW += dY_g · cols_gᵀ group by group, dbias += Σ dY, dx by the transposed convolution
///            (stride 1) or dcols = Wᵀ · dY then col2im.
/// Groups are spread over the engine's threads (`forEachSampleGroup`), each thread doing its groups'
/// im2col and single-threaded GEMMs in its own scratch buffers. The forward output and the input
/// gradient of a sample do not depend on the thread count; the weight gradient is accumulated per
/// part and the parts are added in order, so it is bit-identical for a given thread count.
/// A 3×3 stride-1 padding-1 Float convolution — recorded or not — is computed by Winograd instead
/// (`winogradForward`, `winogradInputGradient`, `winogradWeightGradient`; all three independent of
/// the thread count) unless inside `withWinogradConvolutions(false)`.
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
    let inSize = g.cin * g.h * g.w, outSize = g.cout * g.pixels
    let group = convGroupSize(g)
    // One rule, whether or not gradients are recorded: every 3×3 stride-1 padding-1 Float
    // convolution goes through Winograd (forward, dx and dW) unless `withWinogradConvolutions(false)`.
    let winograd = isWinogradGeometry(g, S.self) && !ConvolutionPath.im2col

    /// cols (rows, gs·HoWo) for samples b0 ..< b0 + gs, in the calling thread's scratch buffer.
    func columns(_ xp: UnsafePointer<S>, _ b0: Int, _ gs: Int) -> UnsafeMutablePointer<S> {
        let n = gs * g.pixels
        let cols = Workspace.buffer(0, g.rows * n, S.self)
        for j in 0..<gs { im2colSample(xp + (b0 + j) * inSize, g, cols + j * g.pixels, ld: n) }
        return cols
    }

    let y: [S] = winograd ? winogradForward(x, weight, bias, g) :
        x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
        withOptionalBuffer(bias?.data) { bp in
            uninitializedArray(g.batch * outSize) { yp in
                forEachSampleGroup(batch: g.batch, group: group) { _, b0, gs in
                    let n = gs * g.pixels
                    let cols = columns(xb.baseAddress!, b0, gs)
                    if gs == 1 {  // (Cout, HoWo) is the sample's NCHW output: bias first, then += W·cols
                        let dst = yp + b0 * outSize
                        for co in 0..<g.cout {
                            let row = dst + co * g.pixels, bv = bp?[co] ?? 0
                            for i in 0..<g.pixels { row[i] = bv }
                        }
                        S.gemm(transA: false, transB: false, m: g.cout, n: n, k: g.rows, alpha: 1,
                               a: wb.baseAddress!, lda: g.rows, b: cols, ldb: n, beta: 1, c: dst, ldc: n)
                        return
                    }
                    let prod = Workspace.buffer(1, g.cout * n, S.self)   // (Cout, gs·HoWo)
                    S.gemm(transA: false, transB: false, m: g.cout, n: n, k: g.rows, alpha: 1,
                           a: wb.baseAddress!, lda: g.rows, b: cols, ldb: n, beta: 0, c: prod, ldc: n)
                    // (Cout, gs, HoWo) → (gs, Cout, HoWo), adding the bias.
                    for j in 0..<gs {
                        for co in 0..<g.cout {
                            let src = prod + co * n + j * g.pixels, dst = yp + (b0 + j) * outSize + co * g.pixels
                            let bv = bp?[co] ?? 0
                            for i in 0..<g.pixels { dst[i] = src[i] + bv }
                        }
                    }
                }
            }
        }
    } }
    let out = TensorOf(shape: [g.batch, g.cout, ho, wo], data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight] + (bias.map { [$0] } ?? [])) { dout in
            dout.withUnsafeBufferPointer { db in
                let dyp = db.baseAddress!
                bias?.accumulateGrad { dbias in  // dbias[co] += Σ_b Σ_i dy[b, co, i]
                    parallelFor(g.cout, grain: max(1, 32_768 / max(1, g.batch * g.pixels))) { r in
                        for co in r {
                            var s: S = 0
                            for b in 0..<g.batch {
                                let row = dyp + b * outSize + co * g.pixels
                                for i in 0..<g.pixels { s += row[i] }
                            }
                            dbias[co] += s
                        }
                    }
                }
                /// dY of samples b0 ..< b0 + gs as (Cout, gs·HoWo) (the calling thread's scratch buffer).
                func dyGroup(_ b0: Int, _ gs: Int) -> UnsafeMutablePointer<S> {
                    if gs == 1 { return UnsafeMutablePointer(mutating: dyp + b0 * outSize) }
                    let n = gs * g.pixels
                    let dprod = Workspace.buffer(1, g.cout * n, S.self)
                    for j in 0..<gs {
                        for co in 0..<g.cout {
                            (dprod + co * n + j * g.pixels).update(from: dyp + (b0 + j) * outSize + co * g.pixels, count: g.pixels)
                        }
                    }
                    return dprod
                }
                weight.accumulateGrad { dweight in  // dW (Cout, rows) += dY_g (Cout, n) · cols_gᵀ (n, rows)
                    if winograd { winogradWeightGradient(x, dyp, g, dweight); return }
                    // Part 0 accumulates into dW, part p > 0 into its own zeroed buffer; the
                    // buffers are then added to dW in part order.
                    let size = g.cout * g.rows, parts = convParts(batch: g.batch, group: group)
                    let partials = Workspace.buffer(5, (parts - 1) * size, S.self)  // (parts − 1, Cout, rows)
                    partials.update(repeating: 0, count: (parts - 1) * size)
                    x.data.withUnsafeBufferPointer { xb in
                        forEachSampleGroup(batch: g.batch, group: group) { part, b0, gs in
                            let n = gs * g.pixels
                            let cols = columns(xb.baseAddress!, b0, gs)
                            let dprod = dyGroup(b0, gs)
                            S.gemm(transA: false, transB: true, m: g.cout, n: g.rows, k: n, alpha: 1,
                                   a: dprod, lda: n, b: cols, ldb: n, beta: 1,
                                   c: part == 0 ? dweight : partials + (part - 1) * size, ldc: g.rows)
                        }
                    }
                    for part in 1..<max(1, parts) {
                        let src = partials + (part - 1) * size
                        for i in 0..<size { dweight[i] += src[i] }
                    }
                }
                x.accumulateGrad { dx in
                    if winograd { winogradInputGradient(dyp, weight, g, dx); return }
                    if g.stride == 1 && g.pad <= g.k - 1 {
                        transposedConvolutionAccumulate(dyp, weight, g, dx)
                        return
                    }
                    weight.data.withUnsafeBufferPointer { wp in
                        forEachSampleGroup(batch: g.batch, group: group) { _, b0, gs in
                            let n = gs * g.pixels
                            let dprod = dyGroup(b0, gs)
                            // dcols (rows, n) = Wᵀ (rows, Cout) · dY_g (Cout, n), then col2im
                            let dcols = Workspace.buffer(2, g.rows * n, S.self)
                            S.gemm(transA: true, transB: false, m: g.rows, n: n, k: g.cout, alpha: 1,
                                   a: wp.baseAddress!, lda: g.rows, b: dprod, ldb: n, beta: 0, c: dcols, ldc: n)
                            for j in 0..<gs { col2imSampleAccumulate(dcols + j * g.pixels, g, dx + (b0 + j) * inSize, ld: n) }
                        }
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
    let dySize = g.cout * g.pixels, dxSize = g.cin * t.pixels
    // wt (Cin, Cout·K·K): wt[ci, (co·K + ky)·K + kx] = W[co, ci, K−1−ky, K−1−kx]
    let wt = Workspace.buffer(4, g.cin * t.rows, S.self)  // the calling thread's; read by all threads
    weight.data.withUnsafeBufferPointer { wb in
        let w = wb.baseAddress!
        for co in 0..<g.cout { for ci in 0..<g.cin { for j in 0..<kk {
            wt[ci * t.rows + co * kk + j] = w[(co * g.cin + ci) * kk + (kk - 1 - j)]
        } } }
    }
    forEachSampleGroup(batch: g.batch, group: convGroupSize(t)) { _, b0, gs in
        let n = gs * t.pixels
        let cols = Workspace.buffer(2, t.rows * n, S.self)   // (Cout·K·K, gs·H·W), this thread's
        for j in 0..<gs { im2colSample(dy + (b0 + j) * dySize, t, cols + j * t.pixels, ld: n) }
        if gs == 1 {  // dx_b (Cin, H·W) += wt · cols directly
            S.gemm(transA: false, transB: false, m: g.cin, n: n, k: t.rows, alpha: 1,
                   a: wt, lda: t.rows, b: cols, ldb: n, beta: 1, c: dx + b0 * dxSize, ldc: n)
            return
        }
        let prod = Workspace.buffer(3, g.cin * n, S.self)    // (Cin, gs·H·W)
        S.gemm(transA: false, transB: false, m: g.cin, n: n, k: t.rows, alpha: 1,
               a: wt, lda: t.rows, b: cols, ldb: n, beta: 0, c: prod, ldc: n)
        // (Cin, gs, HW) → dx (gs, Cin, HW), accumulating.
        for j in 0..<gs {
            for ci in 0..<g.cin {
                let src = prod + ci * n + j * t.pixels, dst = dx + (b0 + j) * dxSize + ci * t.pixels
                for i in 0..<t.pixels { dst[i] += src[i] }
            }
        }
    }
}

/// Which path 3×3 stride-1 padding-1 Float convolutions take in the current scope
/// (`withWinogradConvolutions`): Winograd unless `im2col`.
enum ConvolutionPath {
    @TaskLocal static var im2col = false
}

/// Runs `body` with the calling thread's 3×3, stride-1, padding-1 Float convolutions — forward,
/// input and weight gradients, recorded or not — computed by Winograd F(4×4, 3×3) when `enabled`
/// (the default outside any scope), by im2col + GEMM otherwise. Nests; restores the previous mode.
public func withWinogradConvolutions<R>(_ enabled: Bool = true, _ body: () throws -> R) rethrows -> R {
    try ConvolutionPath.$im2col.withValue(!enabled, operation: body)
}

/// The geometry the Winograd kernels compute: 3×3, stride 1, padding 1, Float.
@inline(__always)
func isWinogradGeometry<S>(_ g: ConvGeometry, _ type: S.Type) -> Bool {
    g.k == 3 && g.stride == 1 && g.pad == 1 && g.cin >= 1 && S.self == Float.self
}

/// Samples per vector in the Winograd kernels (lane = sample).
private let winogradLanes = 8

/// y (B, Cout, H, W) = conv3×3(x, the filters transformed into `u`) + bias, or y += conv3×3(x, u)
/// when `accumulate`, by `ck_winograd43_conv`: samples in groups of 8 (one per vector lane), the
/// groups split over the engine's threads. A sample's result depends on neither the thread count nor
/// the group it is in.
private func winogradConvolve(_ x: UnsafePointer<Float>, batch: Int, cin: Int, h: Int, w: Int,
                              u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, cout: Int,
                              _ y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let inSize = cin * h * w, outSize = cout * h * w
    let scratchCount = ck_winograd43_scratch_size(Int32(cin), Int32(cout), Int32(h), Int32(w))
    forEachSampleGroup(batch: batch, group: winogradLanes) { _, b0, gs in
        let scratch = Workspace.buffer(6, scratchCount, Float.self)
        ck_winograd43_conv(x + b0 * inSize, Int32(gs), Int32(cin), Int32(h), Int32(w), u, bias,
                           Int32(cout), y + b0 * outSize, scratch, accumulate ? 1 : 0)
    }
}

/// The Winograd-domain filters of w (cout, cin, 3, 3) in the calling thread's scratch slot 7
/// (`ck_winograd43_weights`, blocks of 4 output channels split over the threads).
private func winogradFilters(_ w: UnsafePointer<Float>, cout: Int, cin: Int) -> UnsafeMutablePointer<Float> {
    let u = Workspace.buffer(7, ck_winograd43_weights_size(Int32(cout), Int32(cin)), Float.self)
    parallelFor((cout + 3) / 4, grain: max(1, 64 / cin)) { r in
        ck_winograd43_weights(w, Int32(cout), Int32(cin), u, r.lowerBound, r.upperBound)
    }
    return u
}

/// The Float storage of a tensor whose scalar is Float (`isWinogradGeometry` checked it).
@inline(__always)
private func floats<S>(_ p: UnsafePointer<S>) -> UnsafePointer<Float> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}

/// y = conv2d(x, weight, bias, stride 1, padding 1) for a 3×3 Float filter bank by Winograd
/// F(4×4, 3×3) (`ck_winograd43_conv`): 36 multiply-adds per 4×4 output tile and channel pair instead
/// of 144 in the channel sums (the tile transforms add some back). The rounding differs from the
/// im2col path's (max difference ≈ 4–9e-6 of the output's largest value, see `WinogradTests`).
func winogradForward<S>(_ x: TensorOf<S>, _ weight: TensorOf<S>, _ bias: TensorOf<S>?, _ g: ConvGeometry) -> [S] {
    x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
        withOptionalBuffer(bias?.data) { bp in
            let u = winogradFilters(floats(wb.baseAddress!), cout: g.cout, cin: g.cin)
            return uninitializedArray(g.batch * g.cout * g.pixels) { (yp: UnsafeMutablePointer<S>) in
                winogradConvolve(floats(xb.baseAddress!), batch: g.batch, cin: g.cin, h: g.h, w: g.w, u: u,
                                 bias: bp.map { floats($0) }, cout: g.cout,
                                 UnsafeMutableRawPointer(yp).assumingMemoryBound(to: Float.self), accumulate: false)
            }
        }
    } }
}

/// dx += conv_transpose(dy, W) of a 3×3 stride-1 padding-1 convolution, which is the 3×3 stride-1
/// padding-1 convolution of dy with the flipped, transposed filters
///   wt[ci, co, j] = W[co, ci, 8 − j]   (j = 3·ky + kx),
/// computed by the same Winograd kernel (accumulating into dx).
func winogradInputGradient<S>(_ dy: UnsafePointer<S>, _ weight: TensorOf<S>, _ g: ConvGeometry,
                              _ dx: UnsafeMutablePointer<S>) {
    let wt = Workspace.buffer(4, g.cin * g.cout * 9, Float.self)
    weight.data.withUnsafeBufferPointer { wb in
        let w = floats(wb.baseAddress!)
        for co in 0..<g.cout { for ci in 0..<g.cin { for j in 0..<9 {
            wt[(ci &* g.cout &+ co) &* 9 &+ j] = w[(co &* g.cin &+ ci) &* 9 &+ (8 &- j)]
        } } }
    }
    let u = winogradFilters(wt, cout: g.cin, cin: g.cout)
    winogradConvolve(floats(dy), batch: g.batch, cin: g.cout, h: g.h, w: g.w, u: u, bias: nil, cout: g.cin,
                     UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self), accumulate: true)
}

/// dW (Cout, Cin, 3, 3) += the weight gradient of a 3×3 stride-1 padding-1 convolution of x with
/// output gradient dy, by Winograd F(3×3, 4×4) (`ck_winograd43_wgrad_*`): the groups of 8 samples
/// are transformed in parallel, then the 36 transform-domain GEMMs are split over the threads by
/// (ξ, block of 4 output channels) — each element of the result is one fixed sequence of
/// operations, so dW does not depend on the thread count.
func winogradWeightGradient<S>(_ x: TensorOf<S>, _ dy: UnsafePointer<S>, _ g: ConvGeometry,
                               _ dw: UnsafeMutablePointer<S>) {
    let groups = (g.batch + winogradLanes - 1) / winogradLanes
    let (cin, cout, h, w) = (Int32(g.cin), Int32(g.cout), Int32(g.h), Int32(g.w))
    let ve = Workspace.buffer(5, ck_winograd43_wgrad_size(Int32(groups), cin, cout, h, w), Float.self)
    let m = Workspace.buffer(1, g.cout * g.cin * 36, Float.self)
    let scratchCount = ck_winograd43_wgrad_scratch_size(cin, cout, h, w)
    let inSize = g.cin * g.h * g.w, outSize = g.cout * g.pixels
    x.data.withUnsafeBufferPointer { xb in
        let xf = floats(xb.baseAddress!), dyf = floats(dy)
        forEachSampleGroup(batch: g.batch, group: winogradLanes) { _, b0, gs in
            let scratch = Workspace.buffer(6, scratchCount, Float.self)
            ck_winograd43_wgrad_transform(xf + b0 * inSize, dyf + b0 * outSize, Int32(gs), Int32(b0 / winogradLanes),
                                          Int32(groups), cin, cout, h, w, ve, scratch)
        }
    }
    let tasks = 36 * ((g.cout + 3) / 4)
    parallelFor(tasks, grain: 1) { r in
        ck_winograd43_wgrad_gemm(ve, Int32(groups), cin, cout, h, w, m, r.lowerBound, r.upperBound)
    }
    let dwf = UnsafeMutableRawPointer(dw).assumingMemoryBound(to: Float.self)
    parallelFor(g.cout, grain: max(1, 256 / g.cin)) { r in
        ck_winograd43_wgrad_output(m, cout, cin, dwf, r.lowerBound, r.upperBound)
    }
}
