// Shape ops: reshape (shares storage), concatenation, batch slicing, transposing (B, N, C) ↔ (B, C, N),
// nearest-neighbour ×2 upsampling. Backward routes gradients back to where values came from.

extension TensorOf {
    /// The same elements under a new shape (one dimension may be −1). Shares storage (copy-on-write).
    public func reshaped(_ newShape: [Int]) -> TensorOf<S> {
        var shape = newShape
        if let i = shape.firstIndex(of: -1) {
            let known = shape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot infer −1 in \(newShape) for \(count) elements")
            shape[i] = count / known
        }
        precondition(shapeCount(shape) == count, "reshape: \(self.shape) (\(count) elements) cannot become \(newShape)")
        let out = TensorOf(shape: shape, data: data)
        if needsGrad(self) {
            out.attach([self]) { dout in
                self.accumulateGrad(adding: dout)
            }
        }
        return out
    }

    /// Rows `range` of the first axis: x (B, …) → (range.count, …).
    public func slice(batch range: Range<Int>) -> TensorOf<S> {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice(batch:): range \(range) out of bounds for shape \(shape)")
        let inner = count / max(1, shape[0])
        var outShape = shape; outShape[0] = range.count
        let lo = range.lowerBound * inner, n = range.count * inner
        let out = TensorOf(shape: outShape, data: Array(data[lo..<(lo + n)]))
        if needsGrad(self) {
            out.attach([self]) { dout in
                self.accumulateGrad { dx in for i in 0..<n { dx[lo + i] += dout[i] } }
            }
        }
        return out
    }
}

/// Concatenates tensors along `axis` (all other dims equal). Channels: axis 1 of NCHW.
public func concat<S>(_ tensors: [TensorOf<S>], axis axisIn: Int) -> TensorOf<S> {
    precondition(!tensors.isEmpty, "concat: no tensors")
    let first = tensors[0]
    let axis = axisIn < 0 ? axisIn + first.rank : axisIn
    precondition(axis >= 0 && axis < first.rank, "concat: axis \(axisIn) out of range for shape \(first.shape)")
    for t in tensors {
        precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == axis || t.shape[$0] == first.shape[$0] },
                     "concat: shapes \(tensors.map(\.shape)) differ outside axis \(axis)")
    }
    let outer = shapeCount(Array(first.shape[..<axis])), inner = shapeCount(Array(first.shape[(axis + 1)...]))
    let widths = tensors.map { $0.shape[axis] * inner }   // each input: (outer, width)
    let total = widths.reduce(0, +)
    var outShape = first.shape; outShape[axis] = tensors.map { $0.shape[axis] }.reduce(0, +)
    let grain = max(1, 32_768 / max(1, total))   // rows of `total` elements per chunk
    // One parallel region for all inputs: row o of the output is the inputs' rows o side by side.
    let y: [S] = withBufferPointers(tensors.map(\.data)) { sources in
        uninitializedArray(outer * total) { yp in
            parallelFor(outer, grain: grain) { r in
                for o in r {
                    var offset = 0
                    for (src, w) in zip(sources, widths) {
                        (yp + o * total + offset).initialize(from: src + o * w, count: w)
                        offset += w
                    }
                }
            }
        }
    }
    let out = TensorOf(shape: outShape, data: y)
    if Autograd.isEnabled && tensors.contains(where: { $0.requiresGrad }) {
        out.attach(tensors) { dout in
            dout.withUnsafeBufferPointer { db in
                let dp = db.baseAddress!
                var offset = 0
                for (t, w) in zip(tensors, widths) {
                    let off = offset
                    // Each element of dx is reached once: a new gradient is a copy of its slices.
                    t.accumulateGrad(orWrite: { dx, fresh in
                        parallelFor(outer, grain: grain) { r in
                            for o in r {
                                let d = dx + o * w, src = dp + o * total + off
                                if fresh { d.initialize(from: src, count: w) } else { for j in 0..<w { d[j] += src[j] } }
                            }
                        }
                    })
                    offset += w
                }
            }
        }
    }
    return out
}

/// Calls `body` with the base addresses of all `arrays` at once (nested `withUnsafeBufferPointer`).
private func withBufferPointers<S, R>(_ arrays: [[S]], _ body: ([UnsafePointer<S>]) -> R) -> R {
    func nest(_ i: Int, _ pointers: [UnsafePointer<S>]) -> R {
        if i == arrays.count { return body(pointers) }
        return arrays[i].withUnsafeBufferPointer { nest(i + 1, pointers + [$0.baseAddress!]) }
    }
    return nest(0, [])
}

/// Swaps the last two axes of a rank-3 tensor: (B, N, C) → (B, C, N). Used to turn feature maps
/// (B, C, H·W) into tokens (B, H·W, C) for attention and back.
public func transposeLastTwo<S>(_ x: TensorOf<S>) -> TensorOf<S> {
    precondition(x.rank == 3, "transposeLastTwo: expected (B, N, C), got \(x.shape)")
    let b = x.shape[0], n = x.shape[1], c = x.shape[2]
    let y: [S] = x.data.withUnsafeBufferPointer { xp in
        uninitializedArray(x.count) { yp in
            parallelFor(b, grain: max(1, 16_384 / max(1, n * c))) { r in
                for bi in r { for i in 0..<n { for j in 0..<c { yp[bi * n * c + j * n + i] = xp[bi * n * c + i * c + j] } } }
            }
        }
    }
    let out = TensorOf(shape: [b, c, n], data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in
            dout.withUnsafeBufferPointer { db in
                let dp = db.baseAddress!
                // Each element of dx is reached once: a new gradient is the transposed d(out).
                x.accumulateGrad(orWrite: { dx, fresh in
                    parallelFor(b, grain: max(1, 16_384 / max(1, n * c))) { r in
                        for bi in r {
                            let d = dx + bi * n * c, src = dp + bi * n * c
                            if fresh {
                                for i in 0..<n { for j in 0..<c { (d + i * c + j).initialize(to: src[j * n + i]) } }
                            } else {
                                for i in 0..<n { for j in 0..<c { d[i * c + j] += src[j * n + i] } }
                            }
                        }
                    }
                })
            }
        }
    }
    return out
}

/// Nearest-neighbour ×2 upsampling: x (B, C, H, W) → (B, C, 2H, 2W), y[2i+a, 2j+b] = x[i, j].
/// Backward: dx[i, j] += Σ of the four dy it was copied to.
public func upsampleNearest2x<S>(_ x: TensorOf<S>) -> TensorOf<S> {
    precondition(x.rank == 4, "upsampleNearest2x: expected (B, C, H, W), got \(x.shape)")
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let y: [S] = x.data.withUnsafeBufferPointer { xp in
        uninitializedArray(planes * 4 * h * w) { yp in
            parallelFor(planes, grain: max(1, 8_192 / max(1, h * w))) { r in
                for p in r {
                    let src = xp.baseAddress! + p * h * w, dst = yp + p * 4 * h * w
                    for i in 0..<h { for a in 0..<2 {
                        let row = dst + (2 * i + a) * 2 * w
                        for j in 0..<w { let v = src[i * w + j]; row[2 * j] = v; row[2 * j + 1] = v }
                    } }
                }
            }
        }
    }
    let out = TensorOf(shape: [x.shape[0], x.shape[1], 2 * h, 2 * w], data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in
            // Each element of dx is reached once: a new gradient is written, not added to zeros.
            x.accumulateGrad(orWrite: { dx, fresh in
                dout.withUnsafeBufferPointer { dp in
                    parallelFor(planes, grain: max(1, 8_192 / max(1, h * w))) { r in
                        for p in r {
                            let src = dp.baseAddress! + p * 4 * h * w, dst = dx + p * h * w
                            for i in 0..<h { for j in 0..<w {
                                let t = src + 2 * i * 2 * w + 2 * j
                                let g = t[0] + t[1] + t[2 * w] + t[2 * w + 1]
                                if fresh { (dst + i * w + j).initialize(to: g) } else { dst[i * w + j] += g }
                            } }
                        }
                    }
                }
            })
        }
    }
    return out
}
