// Broadcasting binary ops (add, sub, mul, div), NumPy rules. Fast paths for equal shapes and for an
// operand that is constant over an inner block and periodic over the outer ones — per-channel bias
// (1,C,1,1) or (C), per-sample embedding (B,C,1,1), mask (B,T,1), scalar. Other patterns expand first.

/// a ∘ b with partial derivatives ∂/∂a and ∂/∂b.
protocol BinaryFunction {
    associatedtype S: TensorScalar
    func f(_ a: S, _ b: S) -> S
    func da(_ a: S, _ b: S) -> S
    func db(_ a: S, _ b: S) -> S
    /// True when ∂/∂a is 1 everywhere (add, sub): backward then hands d(out) to a's gradient as it is
    /// (`accumulateGrad(adding:)`), no multiply, no pass when a has no gradient yet.
    static var unitPartialA: Bool { get }
    /// The same for ∂/∂b (add).
    static var unitPartialB: Bool { get }
}
extension BinaryFunction {
    static var unitPartialA: Bool { false }
    static var unitPartialB: Bool { false }
}
struct AddFn<S: TensorScalar>: BinaryFunction {
    func f(_ a: S, _ b: S) -> S { a + b }
    func da(_ a: S, _ b: S) -> S { 1 }
    func db(_ a: S, _ b: S) -> S { 1 }
    static var unitPartialA: Bool { true }
    static var unitPartialB: Bool { true }
}
struct SubFn<S: TensorScalar>: BinaryFunction {
    func f(_ a: S, _ b: S) -> S { a - b }
    func da(_ a: S, _ b: S) -> S { 1 }
    func db(_ a: S, _ b: S) -> S { -1 }
    static var unitPartialA: Bool { true }
}
struct MulFn<S: TensorScalar>: BinaryFunction {
    func f(_ a: S, _ b: S) -> S { a * b }
    func da(_ a: S, _ b: S) -> S { b }
    func db(_ a: S, _ b: S) -> S { a }
}
struct DivFn<S: TensorScalar>: BinaryFunction {
    func f(_ a: S, _ b: S) -> S { a / b }
    func da(_ a: S, _ b: S) -> S { 1 / b }
    func db(_ a: S, _ b: S) -> S { -a / (b * b) }
}

/// NumPy broadcast of two shapes (right-aligned; each dimension equal or 1).
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        precondition(da == db || da == 1 || db == 1, "broadcast: shapes \(a) and \(b) are incompatible")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// How an operand of shape `s` maps into an output of shape `out`: element i of the output reads
/// operand element (i / inner) % period. nil if the operand is not of that form.
func blockPattern(_ s: [Int], _ out: [Int]) -> (period: Int, inner: Int)? {
    let padded = [Int](repeating: 1, count: out.count - s.count) + s
    // Classify the non-trivial output dims as kept (K) or broadcast (B); allow B* K* B* only.
    var phase = 0  // 0: leading B, 1: K, 2: trailing B
    var period = 1, inner = 1
    for d in 0..<out.count where out[d] != 1 {
        let kept = padded[d] == out[d]
        switch (phase, kept) {
        case (0, true): phase = 1; period *= out[d]
        case (1, true): period *= out[d]
        case (1, false), (2, false): phase = 2; inner *= out[d]
        case (0, false): break
        case (2, true): return nil
        default: return nil
        }
    }
    return (period, inner)
}

@inline(__always)
func binary<F: BinaryFunction>(_ a: TensorOf<F.S>, _ b: TensorOf<F.S>, _ fn: F) -> TensorOf<F.S> {
    typealias S = F.S
    let outShape = broadcastShape(a.shape, b.shape)
    let n = shapeCount(outShape)
    if a.shape == b.shape {
        // a, b, out: same shape
        let y: [S] = a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in
            uninitializedArray(n) { yp in parallelFor(n, grain: 32_768) { r in for i in r { yp[i] = fn.f(ap[i], bp[i]) } } }
        } }
        let out = TensorOf(shape: outShape, data: y)
        if needsGrad(a, b) {
            out.attach([a, b]) { dout in
                // 1 · dy is dy exactly: unit partials pass d(out) on as it is.
                if F.unitPartialA { a.accumulateGrad(adding: dout) }
                if F.unitPartialB { b.accumulateGrad(adding: dout) }
                a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in dout.withUnsafeBufferPointer { dp in
                    if !F.unitPartialA {
                        a.accumulateGrad { da in parallelFor(n, grain: 32_768) { r in for i in r { da[i] += fn.da(ap[i], bp[i]) * dp[i] } } }
                    }
                    if !F.unitPartialB {
                        b.accumulateGrad { db in parallelFor(n, grain: 32_768) { r in for i in r { db[i] += fn.db(ap[i], bp[i]) * dp[i] } } }
                    }
                } } }
            }
        }
        return out
    }
    if a.count == n, let pb = blockPattern(b.shape, outShape) { return fullAndBlock(a, b, fn, outShape, pb) }
    if b.count == n, let pa = blockPattern(a.shape, outShape) {
        return fullAndBlock(b, a, SwappedFn(inner: fn), outShape, pa)
    }
    // General case: materialise the broadcast of both operands, then combine.
    return binary(expand(a, to: outShape), expand(b, to: outShape), fn)
}

/// fn with its arguments swapped, so `fullAndBlock` can treat either side as the full one.
struct SwappedFn<Inner: BinaryFunction>: BinaryFunction {
    let inner: Inner
    static var unitPartialA: Bool { Inner.unitPartialB }
    static var unitPartialB: Bool { Inner.unitPartialA }
    func f(_ a: Inner.S, _ b: Inner.S) -> Inner.S { inner.f(b, a) }
    func da(_ a: Inner.S, _ b: Inner.S) -> Inner.S { inner.db(b, a) }
    func db(_ a: Inner.S, _ b: Inner.S) -> Inner.S { inner.da(b, a) }
}

/// out[i] = fn(a[i], b[(i / inner) % period]) where a has the output's shape.
@inline(__always)
func fullAndBlock<F: BinaryFunction>(_ a: TensorOf<F.S>, _ b: TensorOf<F.S>, _ fn: F, _ outShape: [Int],
                                     _ pattern: (period: Int, inner: Int)) -> TensorOf<F.S> {
    typealias S = F.S
    let n = a.count, (period, inner) = pattern
    let blocks = n / inner  // block k uses b[k % period]
    let y: [S] = a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in
        uninitializedArray(n) { yp in
            parallelFor(blocks, grain: max(1, 32_768 / inner)) { r in
                for k in r {
                    let bv = bp[k % period], base = k * inner
                    for j in base..<(base + inner) { yp[j] = fn.f(ap[j], bv) }
                }
            }
        }
    } }
    let out = TensorOf(shape: outShape, data: y)
    if needsGrad(a, b) {
        out.attach([a, b]) { dout in
            a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in dout.withUnsafeBufferPointer { dp in
                // da: (out shape) — elementwise
                if F.unitPartialA { a.accumulateGrad(adding: dout) } else { a.accumulateGrad { da in
                    parallelFor(blocks, grain: max(1, 32_768 / inner)) { r in
                        for k in r {
                            let bv = bp[k % period], base = k * inner
                            for j in base..<(base + inner) { da[j] += fn.da(ap[j], bv) * dp[j] }
                        }
                    }
                } }
                // db: (period,) — each entry sums its blocks in a fixed order; entries split across threads.
                b.accumulateGrad { db in
                    let outer = blocks / period
                    parallelFor(period, grain: max(1, 32_768 / max(1, outer * inner))) { r in
                        for m in r {
                            var s: S = 0
                            let bv = bp[m]
                            for o in 0..<outer {
                                let base = (o * period + m) * inner
                                for j in base..<(base + inner) { s += fn.db(ap[j], bv) * dp[j] }
                            }
                            db[m] += s
                        }
                    }
                }
            } } }
        }
    }
    return out
}

/// Broadcast `x` to `shape` (a copy); backward sums over the broadcast dimensions.
public func expand<S>(_ x: TensorOf<S>, to shape: [Int]) -> TensorOf<S> {
    precondition(broadcastShape(x.shape, shape) == shape, "expand: cannot broadcast \(x.shape) to \(shape)")
    if x.shape == shape { return x }
    let r = shape.count, n = shapeCount(shape)
    let padded = [Int](repeating: 1, count: r - x.rank) + x.shape
    // Source strides with 0 on broadcast dims.
    var strides = [Int](repeating: 0, count: r)
    var acc = 1
    for d in stride(from: r - 1, through: 0, by: -1) {
        strides[d] = padded[d] == 1 ? 0 : acc
        acc *= padded[d]
    }
    func sourceIndex(_ i: Int) -> Int {
        var rem = i, src = 0
        for d in stride(from: r - 1, through: 0, by: -1) {
            src += (rem % shape[d]) * strides[d]
            rem /= shape[d]
        }
        return src
    }
    let y: [S] = x.data.withUnsafeBufferPointer { xp in uninitializedArray(n) { yp in for i in 0..<n { yp[i] = xp[sourceIndex(i)] } } }
    let out = TensorOf(shape: shape, data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in x.accumulateGrad { dx in for i in 0..<n { dx[sourceIndex(i)] += dout[i] } } }
    }
    return out
}

/// a + b with broadcasting.
public func + <S>(a: TensorOf<S>, b: TensorOf<S>) -> TensorOf<S> { binary(a, b, AddFn<S>()) }
/// a − b with broadcasting.
public func - <S>(a: TensorOf<S>, b: TensorOf<S>) -> TensorOf<S> { binary(a, b, SubFn<S>()) }
/// a · b (elementwise) with broadcasting.
public func * <S>(a: TensorOf<S>, b: TensorOf<S>) -> TensorOf<S> { binary(a, b, MulFn<S>()) }
/// a / b (elementwise) with broadcasting.
public func / <S>(a: TensorOf<S>, b: TensorOf<S>) -> TensorOf<S> { binary(a, b, DivFn<S>()) }
