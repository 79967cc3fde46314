// Group normalisation (NCHW) and layer normalisation (last axis); forward caches mean and rstd
// (llm.c), backward uses them. Statistics are accumulated in Double, one group/row per task.
import CKernels

/// GroupNorm: x (B, C, …) split into `groups` groups of C/groups channels; per (b, group):
/// y = (x − μ)/sqrt(σ² + eps) · weight[c] + bias[c], σ² the biased variance.
/// reference: Wu & He 2018, "Group Normalization".
public func groupNorm<S>(_ x: TensorOf<S>, groups: Int, weight: TensorOf<S>, bias: TensorOf<S>,
                         eps: Double = 1e-5) -> TensorOf<S> {
    groupNormOp("groupNorm", x, groups: groups, weight: weight, bias: bias, eps: eps, silu: false, modulation: nil,
                inputOffset: nil)
}

/// A per-(sample, channel) modulation z·(1 + scale) + shift applied after the norm's own affine
/// (FiLM / scale-shift norm); scale and shift are (B, C).
struct GroupNormModulation<S: TensorScalar> {
    let scale: TensorOf<S>, shift: TensorOf<S>
    /// 1 + scale per (b, c), as the unfused `z * (scale + 1) + shift` computes it.
    let onePlusScale: [S]
    init(scale: TensorOf<S>, shift: TensorOf<S>) {
        self.scale = scale; self.shift = shift
        onePlusScale = scale.data.map { $0 + 1 }
    }
}

/// groupNorm, optionally of x + inputOffset (a (B, C) value added to every pixel of its channel),
/// optionally modulated, and optionally followed by SiLU — all in the same passes (`groupNormSiLU`,
/// `groupNormModulatedSiLU`).
private func groupNormOp<S>(_ name: String, _ x: TensorOf<S>, groups: Int, weight: TensorOf<S>, bias: TensorOf<S>,
                            eps: Double, silu: Bool, modulation: GroupNormModulation<S>?,
                            inputOffset: TensorOf<S>?) -> TensorOf<S> {
    precondition(x.rank >= 2, "\(name): input must be (B, C, …), got \(x.shape)")
    let b = x.shape[0], c = x.shape[1]
    precondition(groups >= 1 && c % groups == 0, "\(name): \(c) channels not divisible into \(groups) groups")
    precondition(weight.shape == [c] && bias.shape == [c], "\(name): weight/bias must be (\(c)), got \(weight.shape), \(bias.shape)")
    if let m = modulation {
        precondition(m.scale.shape == [b, c] && m.shift.shape == [b, c],
                     "\(name): scale/shift must be (\(b), \(c)), got \(m.scale.shape), \(m.shift.shape)")
    }
    if let o = inputOffset {
        precondition(o.shape == [b, c], "\(name): inputOffset must be (\(b), \(c)), got \(o.shape)")
    }
    let (y, mean, rstd) = groupNormForward(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu,
                                           modulation: modulation, inputOffset: inputOffset)
    let out = TensorOf(shape: x.shape, data: y)
    if needsGrad(x, weight, bias, modulation?.scale, modulation?.shift, inputOffset) {
        attachGroupNormBackward(out, x, groups: groups, weight: weight, bias: bias, mean: mean, rstd: rstd, silu: silu,
                                modulation: modulation, inputOffset: inputOffset)
    }
    return out
}

/// The forward pass shared by `groupNorm`, `groupNormSiLU` and `groupNormModulatedSiLU`: y = z, SiLU(z)
/// or SiLU(z·(1 + s) + h) with z = (x' − μ)·rstd·weight + bias per (sample, group), x' = x or
/// x + inputOffset[b, c], and the (B, G) mean and rstd backward needs. With an offset, x' of one group
/// is written to a group-sized scratch (≤ a few KB, in L1) and never stored whole. Statistics in
/// Double, one (sample, group) per task — identical for any thread count.
private func groupNormForward<S>(_ x: TensorOf<S>, groups: Int, weight: TensorOf<S>, bias: TensorOf<S>,
                                 eps: Double, silu: Bool, modulation: GroupNormModulation<S>?,
                                 inputOffset: TensorOf<S>?) -> (y: [S], mean: [S], rstd: [S]) {
    let b = x.shape[0], c = x.shape[1], hw = x.count / max(1, b * c)
    let cpg = c / groups, n = cpg * hw
    var mean = [S](repeating: 0, count: b * groups), rstd = [S](repeating: 0, count: b * groups)  // (B, G)
    let onePlusScale = modulation?.onePlusScale ?? [], shiftM = modulation?.shift.data ?? []   // (B, C) each
    let offset = inputOffset?.data ?? []                                                         // (B, C) or empty
    let y: [S] = x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in bias.data.withUnsafeBufferPointer { bp in
        mean.withUnsafeMutableBufferPointer { mp in rstd.withUnsafeMutableBufferPointer { rp in
            uninitializedArray(x.count) { yp in  // y: (B, C, …)
                parallelFor(b * groups, grain: max(1, 16_384 / max(1, n))) { r in
                    // x' of one group: (cpg, HW), only with an offset.
                    let shifted = UnsafeMutablePointer<S>.allocate(capacity: offset.isEmpty ? 0 : n)
                    defer { shifted.deallocate() }
                    for bg in r {
                        let base = bg * n  // group bg is contiguous: channels g·cpg… of sample b
                        let c0 = (bg % groups) * cpg, bi = bg / groups
                        let g: UnsafePointer<S>
                        if offset.isEmpty {
                            g = UnsafePointer(xp.baseAddress! + base)
                        } else {
                            groupWithOffset(xp.baseAddress! + base, offset, bi * c + c0, cpg: cpg, hw: hw, into: shifted)
                            g = UnsafePointer(shifted)
                        }
                        let mu = laneSum(n) { Double(g[$0]) } / Double(n)
                        let v = laneSum(n) { let d = Double(g[$0]) - mu; return d * d }
                        let rs = 1 / (v / Double(n) + eps).squareRoot()
                        mp[bg] = S(mu); rp[bg] = S(rs)
                        let m = S(mu), rsS = S(rs)
                        for cc in 0..<cpg {
                            let scale = wp[c0 + cc] * rsS, shift = bp[c0 + cc] - m * scale
                            let xc = g + cc * hw, yc = yp + base + cc * hw   // offsets outside the loops
                            if !onePlusScale.isEmpty {
                                let s1 = onePlusScale[bi * c + c0 + cc], h = shiftM[bi * c + c0 + cc]
                                if siluModulatedAVX512(xc, yc, hw, scale, shift, s1, h) { continue }
                                for i in 0..<hw {
                                    let z = (xc[i] * scale + shift) * s1 + h
                                    yc[i] = z * stableSigmoid(z)
                                }
                            } else if silu {
                                if siluAffineAVX512(xc, yc, hw, scale, shift) { continue }
                                for i in 0..<hw {
                                    let z = xc[i] * scale + shift
                                    yc[i] = z * stableSigmoid(z)
                                }
                            } else {
                                for i in 0..<hw { yc[i] = xc[i] * scale + shift }
                            }
                        }
                    }
                }
            }
        } }
    } } }
    return (y, mean, rstd)
}

/// True when the SiLU loops of GroupNorm + SiLU run as AVX-512 C kernels (Sources/CKernels/fused.c):
/// on CPUs with AVX-512F, unless SEMIDPO_NO_AVX512=1. The kernels give the Swift loops' bits.
let groupNormSiLUUsesAVX512 = ck_fused_avx512() != 0

/// y = z·σ(z), z = x·scale + shift over n floats by the AVX-512 kernel; false (nothing done) when
/// S is not Float or the CPU lacks AVX-512 — the caller then runs its Swift loop.
@inline(__always)
func siluAffineAVX512<S: TensorScalar>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, _ n: Int,
                                               _ scale: S, _ shift: S) -> Bool {
    guard S.self == Float.self, groupNormSiLUUsesAVX512 else { return false }
    ck_silu_affine_avx512(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                          UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), n,
                          unsafeBitCast(scale, to: Float.self), unsafeBitCast(shift, to: Float.self))
    return true
}

/// dz = σ(z)(1 + z(1 − σ(z)))·dy, z = x·scale + shift by the AVX-512 kernel; false as above.
@inline(__always)
func siluAffineBackwardAVX512<S: TensorScalar>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>,
                                                       _ dz: UnsafeMutablePointer<S>, _ n: Int, _ scale: S, _ shift: S) -> Bool {
    guard S.self == Float.self, groupNormSiLUUsesAVX512 else { return false }
    ck_silu_affine_backward_avx512(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                   UnsafeRawPointer(dy).assumingMemoryBound(to: Float.self),
                                   UnsafeMutableRawPointer(dz).assumingMemoryBound(to: Float.self), n,
                                   unsafeBitCast(scale, to: Float.self), unsafeBitCast(shift, to: Float.self))
    return true
}

/// u = (x·scale + shift)·s1 + h, y = u·σ(u) by the AVX-512 kernel (the FiLM form); false as above.
@inline(__always)
func siluModulatedAVX512<S: TensorScalar>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, _ n: Int,
                                          _ scale: S, _ shift: S, _ s1: S, _ h: S) -> Bool {
    guard S.self == Float.self, groupNormSiLUUsesAVX512 else { return false }
    ck_silu_modulated_avx512(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                             UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), n,
                             unsafeBitCast(scale, to: Float.self), unsafeBitCast(shift, to: Float.self),
                             unsafeBitCast(s1, to: Float.self), unsafeBitCast(h, to: Float.self))
    return true
}

/// du = σ(u)(1 + u(1 − σ(u)))·dy with u as above, by the AVX-512 kernel; false as above.
@inline(__always)
func siluModulatedBackwardAVX512<S: TensorScalar>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ du: UnsafeMutablePointer<S>,
                                                  _ n: Int, _ scale: S, _ shift: S, _ s1: S, _ h: S) -> Bool {
    guard S.self == Float.self, groupNormSiLUUsesAVX512 else { return false }
    ck_silu_modulated_backward_avx512(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                      UnsafeRawPointer(dy).assumingMemoryBound(to: Float.self),
                                      UnsafeMutableRawPointer(du).assumingMemoryBound(to: Float.self), n,
                                      unsafeBitCast(scale, to: Float.self), unsafeBitCast(shift, to: Float.self),
                                      unsafeBitCast(s1, to: Float.self), unsafeBitCast(h, to: Float.self))
    return true
}

/// x' = x + offset[first + cc] for the cpg channels (each hw long) of one group: the sums the unfused
/// broadcast add `x + offset.reshaped([B, C, 1, 1])` makes, in the same order.
@inline(__always)
private func groupWithOffset<S: TensorScalar>(_ x: UnsafePointer<S>, _ offset: [S], _ first: Int, cpg: Int, hw: Int,
                                              into out: UnsafeMutablePointer<S>) {
    for cc in 0..<cpg {
        let e = offset[first + cc], src = x + cc * hw, dst = out + cc * hw
        for i in 0..<hw { dst[i] = src[i] + e }
    }
}

/// The backward pass shared by `groupNorm` (`silu` false: the gradient at z is dy), `groupNormSiLU`
/// (true: dz = dy · SiLU'(z), z recomputed from x, mean and rstd into a per-group scratch) and
/// `groupNormModulatedSiLU` (with u = z·(1 + s) + h: du = dy · SiLU'(u), ds = Σ z·du, dh = Σ du over
/// the pixels, dz = (1 + s)·du). With an input offset, x' = x + offset is recomputed per group, dx
/// gets dx' and d(offset)[b, c] = Σ dx' over the channel's pixels (a Float sum in pixel order, as the
/// unfused broadcast add sums). Per-(b, c) partial sums for dweight/dbias are reduced over b in order:
/// identical for any thread count.
private func attachGroupNormBackward<S>(_ out: TensorOf<S>, _ x: TensorOf<S>, groups: Int, weight: TensorOf<S>,
                                        bias: TensorOf<S>, mean: [S], rstd: [S], silu: Bool,
                                        modulation: GroupNormModulation<S>?, inputOffset: TensorOf<S>?) {
    let b = x.shape[0], c = x.shape[1], hw = x.count / max(1, b * c)
    let cpg = c / groups, n = cpg * hw
    let onePlusScale = modulation?.onePlusScale ?? [], shiftM = modulation?.shift.data ?? []   // (B, C) each
    let offset = inputOffset?.data ?? []                                                         // (B, C) or empty
    let modulated = modulation != nil, recompute = silu || modulated, shifted = inputOffset != nil
    out.attach([x, weight, bias] + (modulation.map { [$0.scale, $0.shift] } ?? []) + (inputOffset.map { [$0] } ?? [])) { dout in
        // Per-(b, c) partial sums for dweight/dbias, reduced over b in order afterwards.
        var pw = [S](repeating: 0, count: b * c), pb = [S](repeating: 0, count: b * c)  // (B, C)
        // Per-(b, c) gradients of the modulation's scale and shift, and of the input offset.
        var ds = [S](repeating: 0, count: modulated ? b * c : 0), dh = [S](repeating: 0, count: modulated ? b * c : 0)
        var doff = [S](repeating: 0, count: shifted ? b * c : 0)
        let needX = x.requiresGrad
        x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wp in bias.data.withUnsafeBufferPointer { bp in
        dout.withUnsafeBufferPointer { db in
        mean.withUnsafeBufferPointer { mp in rstd.withUnsafeBufferPointer { rp in
        pw.withUnsafeMutableBufferPointer { pwb in pb.withUnsafeMutableBufferPointer { pbb in
        ds.withUnsafeMutableBufferPointer { dsb in dh.withUnsafeMutableBufferPointer { dhb in
        doff.withUnsafeMutableBufferPointer { dob in
            let pwp = pwb.baseAddress!, pbp = pbb.baseAddress!, xp = xb.baseAddress!, dp = db.baseAddress!
            let dsp = dsb.baseAddress, dhp = dhb.baseAddress, dop = dob.baseAddress  // nil unless used
            // dx: the gradient buffer to add into, or (fresh) new storage to write, or nil.
            let body = { (dx: UnsafeMutablePointer<S>?, fresh: Bool) in
                parallelFor(b * groups, grain: max(1, 8_192 / max(1, n))) { r in
                    // With SiLU, dz: (cpg, HW) — the gradient at z for one group, kept in cache.
                    let dz = UnsafeMutablePointer<S>.allocate(capacity: recompute ? n : 0)
                    // With an offset, x' of the group (cpg, HW) and one channel's dx' (HW).
                    let xs = UnsafeMutablePointer<S>.allocate(capacity: shifted ? n + hw : 0)
                    defer { dz.deallocate(); xs.deallocate() }
                    for bg in r {
                        let base = bg * n, m = mp[bg], rs = rp[bg]
                        let c0 = (bg % groups) * cpg, bi = bg / groups
                        let g: UnsafePointer<S>   // x' of this group: (cpg, HW)
                        if shifted {
                            groupWithOffset(xp + base, offset, bi * c + c0, cpg: cpg, hw: hw, into: xs)
                            g = UnsafePointer(xs)
                        } else {
                            g = xp + base
                        }
                        var sdy: S = 0, sdyx: S = 0  // Σ dz·γ, Σ dz·γ·x̂ over the group
                        for cc in 0..<cpg {
                            let ch = c0 + cc, o = base + cc * hw
                            let scale = wp[ch] * rs, shift = bp[ch] - m * scale
                            let xc = g + cc * hw, dc = dp + o
                            var zc = UnsafePointer(dc)  // the gradient at z: dy, or dy · SiLU'(z)
                            if modulated {
                                // u = z·s1 + h; du = dy · SiLU'(u); ds += z·du, dh += du (Float, in
                                // pixel order, as the unfused broadcast ops sum); dz = s1·du.
                                let k = bi * c + ch, s1 = onePlusScale[k], h = shiftM[k]
                                let zm = dz + cc * hw
                                if !siluModulatedBackwardAVX512(xc, dc, zm, hw, scale, shift, s1, h) {
                                    for i in 0..<hw {   // du (vectorises; the sums below cannot)
                                        let z = xc[i] * scale + shift, u = z * s1 + h, s = stableSigmoid(u)
                                        zm[i] = s * (1 + u * (1 - s)) * dc[i]
                                    }
                                }
                                var sumS: S = 0, sumH: S = 0
                                for i in 0..<hw { sumS += (xc[i] * scale + shift) * zm[i]; sumH += zm[i] }
                                for i in 0..<hw { zm[i] = s1 * zm[i] }
                                dsp![k] = sumS; dhp![k] = sumH
                                zc = UnsafePointer(zm)
                            } else if silu {
                                // dz = dy · SiLU'(z), SiLU'(z) = σ(z)(1 + z(1 − σ(z)))
                                let zm = dz + cc * hw
                                if !siluAffineBackwardAVX512(xc, dc, zm, hw, scale, shift) {
                                    for i in 0..<hw {
                                        let z = xc[i] * scale + shift, s = stableSigmoid(z)
                                        zm[i] = s * (1 + z * (1 - s)) * dc[i]
                                    }
                                }
                                zc = UnsafePointer(zm)
                            }
                            let sw = S(laneSum(hw) { Double(zc[$0]) * Double((xc[$0] - m) * rs) })
                            let sb = S(laneSum(hw) { Double(zc[$0]) })
                            pwp[bi * c + ch] = sw; pbp[bi * c + ch] = sb
                            sdy += sb * wp[ch]; sdyx += sw * wp[ch]
                        }
                        if dx == nil && !shifted { continue }
                        // dx' = rstd · (dz·γ − mean(dz·γ) − x̂ · mean(dz·γ·x̂))
                        let a = sdy / S(n), bb = sdyx / S(n)
                        for cc in 0..<cpg {
                            let ch = c0 + cc, o = base + cc * hw, gm = wp[ch]
                            let zc = recompute ? UnsafePointer(dz + cc * hw) : dp + o
                            let xc = g + cc * hw   // offsets outside the loop: no checked o + i
                            if shifted {
                                let v = xs + n     // dx' of this channel
                                for i in 0..<hw {
                                    let xhat = (xc[i] - m) * rs
                                    v[i] = rs * (zc[i] * gm - a - xhat * bb)
                                }
                                if let dx {
                                    let dxc = dx + o
                                    if fresh { dxc.update(from: v, count: hw) } else { for i in 0..<hw { dxc[i] += v[i] } }
                                }
                                var sum: S = 0
                                for i in 0..<hw { sum += v[i] }
                                dop![bi * c + ch] = sum
                            } else if let dx, fresh {
                                let dxc = dx + o
                                for i in 0..<hw {
                                    let xhat = (xc[i] - m) * rs
                                    dxc[i] = rs * (zc[i] * gm - a - xhat * bb)
                                }
                            } else if let dx {
                                let dxc = dx + o
                                for i in 0..<hw {
                                    let xhat = (xc[i] - m) * rs
                                    dxc[i] += rs * (zc[i] * gm - a - xhat * bb)
                                }
                            }
                        }
                    }
                }
            }
            // Every element of dx is written once: a new gradient is written, not added to zeros.
            if needX { x.accumulateGrad(orWrite: { body($0, $1) }) } else { body(nil, false) }
        }
        } }
        } }
        } }
        } } } }
        if let m = modulation {
            m.scale.accumulateGrad { g in for k in 0..<(b * c) { g[k] += ds[k] } }
            m.shift.accumulateGrad { g in for k in 0..<(b * c) { g[k] += dh[k] } }
        }
        inputOffset?.accumulateGrad { g in for k in 0..<(b * c) { g[k] += doff[k] } }
        weight.accumulateGrad { dweight in for bi in 0..<b { for ch in 0..<c { dweight[ch] += pw[bi * c + ch] } } }
        bias.accumulateGrad { dbias in for bi in 0..<b { for ch in 0..<c { dbias[ch] += pb[bi * c + ch] } } }
    }
}

/// Fused GroupNorm + SiLU: y = SiLU(z), z = groupNorm(x, groups, weight, bias) — the pair every
/// ResBlock and the UNet's output head apply before a conv. One pass writes y (z is never stored) and
/// one pass computes dx, dweight, dbias; the values equal the unfused `silu(groupNorm(…))` bit for bit
/// (the same expressions in the same order; z is recomputed from x, mean and rstd in backward).
/// Forward saves mean and rstd (B, G) as `groupNorm` does.
public func groupNormSiLU<S>(_ x: TensorOf<S>, groups: Int, weight: TensorOf<S>, bias: TensorOf<S>,
                             eps: Double = 1e-5) -> TensorOf<S> {
    groupNormOp("groupNormSiLU", x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true, modulation: nil,
                inputOffset: nil)
}

/// Fused offset + GroupNorm + SiLU: y = SiLU(groupNorm(x + inputOffset)) with inputOffset (B, C), one
/// value per sample and channel added to all its pixels — a ResBlock's second norm, whose input is
/// conv1's output plus the projected time embedding. x + inputOffset is never stored (recomputed per
/// group in L1, forward and backward); equal to the unfused
/// `silu(groupNorm(x + inputOffset.reshaped([B, C, 1, 1])))` in every value and gradient (up to the
/// sign of zero gradients: the unfused adds them to a zero-filled buffer, which turns −0 into +0).
public func groupNormSiLU<S>(_ x: TensorOf<S>, inputOffset: TensorOf<S>, groups: Int, weight: TensorOf<S>,
                             bias: TensorOf<S>, eps: Double = 1e-5) -> TensorOf<S> {
    groupNormOp("groupNormSiLU", x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true, modulation: nil,
                inputOffset: inputOffset)
}

/// Fused scale-shift (FiLM) GroupNorm + SiLU: y = SiLU(groupNorm(x)·(1 + scale) + shift) with scale
/// and shift (B, C), one value per sample and channel — a ResBlock's second norm with
/// `scale_shift_norm`. One forward pass, one backward pass (into x, weight, bias, scale and shift);
/// equal bit for bit to the unfused `silu(groupNorm(x) * (scale + 1) + shift)` with scale and shift
/// reshaped to (B, C, 1, 1).
public func groupNormModulatedSiLU<S>(_ x: TensorOf<S>, groups: Int, weight: TensorOf<S>, bias: TensorOf<S>,
                                      scale: TensorOf<S>, shift: TensorOf<S>, eps: Double = 1e-5) -> TensorOf<S> {
    groupNormOp("groupNormModulatedSiLU", x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true,
                modulation: GroupNormModulation(scale: scale, shift: shift), inputOffset: nil)
}

/// LayerNorm over the last axis: x (…, D); per row y = (x − μ)/sqrt(σ² + eps) · weight + bias.
/// reference: Ba, Kiros & Hinton 2016, "Layer Normalization".
public func layerNorm<S>(_ x: TensorOf<S>, weight: TensorOf<S>, bias: TensorOf<S>, eps: Double = 1e-5) -> TensorOf<S> {
    precondition(x.rank >= 1, "layerNorm: input must have a feature axis")
    let d = x.shape[x.rank - 1], rows = x.count / max(1, d)
    precondition(weight.shape == [d] && bias.shape == [d], "layerNorm: weight/bias must be (\(d)), got \(weight.shape), \(bias.shape)")
    var mean = [S](repeating: 0, count: rows), rstd = [S](repeating: 0, count: rows)  // (rows,)
    let y: [S] = x.data.withUnsafeBufferPointer { xp in weight.data.withUnsafeBufferPointer { wp in bias.data.withUnsafeBufferPointer { bp in
        mean.withUnsafeMutableBufferPointer { mp in rstd.withUnsafeMutableBufferPointer { rp in
            uninitializedArray(x.count) { yp in
                parallelFor(rows, grain: max(1, 16_384 / max(1, d))) { r in
                    for row in r {
                        let o = row * d
                        var s = 0.0
                        for i in o..<(o + d) { s += Double(xp[i]) }
                        let mu = s / Double(d)
                        var v = 0.0
                        for i in o..<(o + d) { let t = Double(xp[i]) - mu; v += t * t }
                        let rs = 1 / (v / Double(d) + eps).squareRoot()
                        mp[row] = S(mu); rp[row] = S(rs)
                        let m = S(mu), rsS = S(rs)
                        let xr = xp.baseAddress! + o, yr = yp + o   // offsets outside the loop: no checked o + j
                        for j in 0..<d { yr[j] = (xr[j] - m) * rsS * wp[j] + bp[j] }
                    }
                }
            }
        } }
    } } }
    let out = TensorOf(shape: x.shape, data: y)
    if needsGrad(x, weight, bias) {
        out.attach([x, weight, bias]) { dout in
            // dweight/dbias partials per fixed block of 16 rows, summed in block order.
            let blockRows = 16, blocks = (rows + blockRows - 1) / blockRows
            var pw = [S](repeating: 0, count: blocks * d), pb = [S](repeating: 0, count: blocks * d)  // (blocks, D)
            let needX = x.requiresGrad
            x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wp in dout.withUnsafeBufferPointer { db in
            mean.withUnsafeBufferPointer { mp in rstd.withUnsafeBufferPointer { rp in
            pw.withUnsafeMutableBufferPointer { pwb in pb.withUnsafeMutableBufferPointer { pbb in
                let pwp = pwb.baseAddress!, pbp = pbb.baseAddress!, xp = xb.baseAddress!, dp = db.baseAddress!
                // dx: the gradient buffer to add into, or (fresh) new storage to write, or nil.
                let body = { (dx: UnsafeMutablePointer<S>?, fresh: Bool) in
                    parallelFor(blocks, grain: max(1, 8_192 / max(1, d * blockRows))) { r in
                        for blk in r {
                            for row in (blk * blockRows)..<min(rows, (blk + 1) * blockRows) {
                                let o = row * d, m = mp[row], rs = rp[row]
                                // Row and block offsets outside the loops: no checked o + j.
                                let xr = xp + o, dr = dp + o, pwr = pwp + blk * d, pbr = pbp + blk * d
                                var sdy: S = 0, sdyx: S = 0
                                for j in 0..<d {
                                    let xhat = (xr[j] - m) * rs, g = dr[j]
                                    pwr[j] += g * xhat; pbr[j] += g
                                    sdy += g * wp[j]; sdyx += g * wp[j] * xhat
                                }
                                guard let dx else { continue }
                                let a = sdy / S(d), bb = sdyx / S(d)
                                let dxr = dx + o
                                if fresh {
                                    for j in 0..<d {
                                        let xhat = (xr[j] - m) * rs
                                        dxr[j] = rs * (dr[j] * wp[j] - a - xhat * bb)
                                    }
                                } else {
                                    for j in 0..<d {
                                        let xhat = (xr[j] - m) * rs
                                        dxr[j] += rs * (dr[j] * wp[j] - a - xhat * bb)
                                    }
                                }
                            }
                        }
                    }
                }
                if needX { x.accumulateGrad(orWrite: { body($0, $1) }) } else { body(nil, false) }
            } }
            } }
            } } }
            weight.accumulateGrad { dweight in for blk in 0..<blocks { for j in 0..<d { dweight[j] += pw[blk * d + j] } } }
            bias.accumulateGrad { dbias in for blk in 0..<blocks { for j in 0..<d { dbias[j] += pb[blk * d + j] } } }
        }
    }
    return out
}

/// Σ_{i < n} term(i) with eight independent accumulators combined in a fixed order: the same result
/// for any thread count, and the compiler can vectorise it (a single running sum is one long
/// dependency chain). The index arithmetic is unchecked (`&+`, checked release builds keep
/// overflow checks elsewhere): 0 ≤ i ≤ n − 8 inside the loop, so i + 7 < n cannot overflow.
@inline(__always)
func laneSum(_ n: Int, _ term: (Int) -> Double) -> Double {
    var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0
    var i = 0
    while i <= n &- 8 {
        a0 += term(i); a1 += term(i &+ 1); a2 += term(i &+ 2); a3 += term(i &+ 3)
        a4 += term(i &+ 4); a5 += term(i &+ 5); a6 += term(i &+ 6); a7 += term(i &+ 7)
        i &+= 8
    }
    var tail = 0.0
    while i < n { tail += term(i); i &+= 1 }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + tail
}
