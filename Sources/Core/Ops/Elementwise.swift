// Elementwise unary ops (activations, exp/log, scale, clamp…): forward y = f(x) and backward
// dx += f'(x) · dy, side by side, as small function structs the compiler inlines into one loop.

/// A pointwise function with its derivative expressed through the input x and the output y.
protocol UnaryFunction {
    associatedtype S: TensorScalar
    func f(_ x: S) -> S
    /// dy/dx at x, given y = f(x).
    func df(_ x: S, _ y: S) -> S
}

/// y = f(x) elementwise; backward dx += f'(x, y) · dy. Saves x and y (by reference, no copy).
@inline(__always)
func unary<F: UnaryFunction>(_ x: TensorOf<F.S>, _ fn: F) -> TensorOf<F.S> {
    let n = x.count
    // x: (any), y: same shape
    let y: [F.S] = x.data.withUnsafeBufferPointer { xp in
        uninitializedArray(n) { yp in
            parallelFor(n, grain: 32_768) { r in for i in r { yp[i] = fn.f(xp[i]) } }
        }
    }
    let out = TensorOf(shape: x.shape, data: y)
    if needsGrad(x) {
        out.attach([x]) { dout in
            // Each element of dx is reached once: a new gradient is written, not added to zeros.
            x.accumulateGrad(orWrite: { dx, fresh in
                x.data.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in dout.withUnsafeBufferPointer { dp in
                    parallelFor(n, grain: 32_768) { r in
                        if fresh {
                            for i in r { (dx + i).initialize(to: fn.df(xp[i], yp[i]) * dp[i]) }
                        } else {
                            for i in r { dx[i] += fn.df(xp[i], yp[i]) * dp[i] }
                        }
                    }
                } } }
            })
        }
    }
    return out
}

/// σ(x) without overflow for any x: `TensorScalar.sigmoid` (vectorisable for Float, libm for Double).
@inline(__always) func stableSigmoid<S: TensorScalar>(_ x: S) -> S { S.sigmoid(x) }

struct SigmoidFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { stableSigmoid(x) }
    func df(_ x: S, _ y: S) -> S { y * (1 - y) }
}
struct LogSigmoidFn<S: TensorScalar>: UnaryFunction {
    // log σ(x) = min(x, 0) - log1p(exp(-|x|)), finite for all x.
    func f(_ x: S) -> S { Swift.min(x, 0) - S.log1p(S.exp(-Swift.abs(x))) }
    func df(_ x: S, _ y: S) -> S { stableSigmoid(-x) }
}
struct SiLUFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { x * stableSigmoid(x) }
    func df(_ x: S, _ y: S) -> S { let s = stableSigmoid(x); return s * (1 + x * (1 - s)) }
}
struct GELUFn<S: TensorScalar>: UnaryFunction {
    // reference: Hendrycks & Gimpel 2016, exact form GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)).
    func f(_ x: S) -> S { S(0.5) * x * (1 + S.erf(x * S(0.7071067811865476))) }
    func df(_ x: S, _ y: S) -> S {
        S(0.5) * (1 + S.erf(x * S(0.7071067811865476))) + x * S(0.3989422804014327) * S.exp(S(-0.5) * x * x)
    }
}
struct ReLUFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { x > 0 ? x : 0 }
    func df(_ x: S, _ y: S) -> S { x > 0 ? 1 : 0 }
}
struct TanhFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { S.tanh(x) }
    func df(_ x: S, _ y: S) -> S { 1 - y * y }
}
struct ExpFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { S.exp(x) }
    func df(_ x: S, _ y: S) -> S { y }
}
struct LogFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { S.log(x) }
    func df(_ x: S, _ y: S) -> S { 1 / x }
}
struct SqrtFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { x.squareRoot() }
    func df(_ x: S, _ y: S) -> S { S(0.5) / y }
}
struct SquareFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { x * x }
    func df(_ x: S, _ y: S) -> S { 2 * x }
}
struct AbsFn<S: TensorScalar>: UnaryFunction {
    func f(_ x: S) -> S { Swift.abs(x) }
    func df(_ x: S, _ y: S) -> S { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
struct AffineFn<S: TensorScalar>: UnaryFunction {
    let scale: S, shift: S
    func f(_ x: S) -> S { scale * x + shift }
    func df(_ x: S, _ y: S) -> S { scale }
}
struct ClampFn<S: TensorScalar>: UnaryFunction {
    let low: S, high: S
    func f(_ x: S) -> S { Swift.min(Swift.max(x, low), high) }
    func df(_ x: S, _ y: S) -> S { (x >= low && x <= high) ? 1 : 0 }
}

/// σ(x) = 1 / (1 + e^{-x}), computed without overflow for any x.
public func sigmoid<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, SigmoidFn<S>()) }
/// log σ(x) = min(x, 0) − log(1 + e^{−|x|}); d/dx = σ(−x). Stable for large |x| (DPO's loss).
public func logSigmoid<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, LogSigmoidFn<S>()) }
/// SiLU(x) = x · σ(x).  // reference: Elfwing et al. 2017 / Hendrycks & Gimpel 2016
public func silu<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, SiLUFn<S>()) }
/// GELU(x) = ½x(1 + erf(x/√2)) (exact, PyTorch's default).
public func gelu<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, GELUFn<S>()) }
/// max(x, 0).
public func relu<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, ReLUFn<S>()) }
public func tanh<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, TanhFn<S>()) }
public func exp<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, ExpFn<S>()) }
/// Natural log (x > 0).
public func log<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, LogFn<S>()) }
public func sqrt<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, SqrtFn<S>()) }
public func square<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, SquareFn<S>()) }
public func abs<S>(_ x: TensorOf<S>) -> TensorOf<S> { unary(x, AbsFn<S>()) }
/// min(max(x, low), high); gradient 1 inside [low, high], 0 outside.
public func clamp<S>(_ x: TensorOf<S>, min low: S, max high: S) -> TensorOf<S> {
    precondition(low <= high, "clamp: min \(low) > max \(high)")
    return unary(x, ClampFn(low: low, high: high))
}
/// scale · x + shift.
public func affine<S>(_ x: TensorOf<S>, scale: S, shift: S = 0) -> TensorOf<S> {
    unary(x, AffineFn(scale: scale, shift: shift))
}

public prefix func - <S>(x: TensorOf<S>) -> TensorOf<S> { affine(x, scale: -1) }
public func * <S>(x: TensorOf<S>, c: S) -> TensorOf<S> { affine(x, scale: c) }
public func * <S>(c: S, x: TensorOf<S>) -> TensorOf<S> { affine(x, scale: c) }
public func / <S>(x: TensorOf<S>, c: S) -> TensorOf<S> { affine(x, scale: 1 / c) }
public func + <S>(x: TensorOf<S>, c: S) -> TensorOf<S> { affine(x, scale: 1, shift: c) }
public func + <S>(c: S, x: TensorOf<S>) -> TensorOf<S> { affine(x, scale: 1, shift: c) }
public func - <S>(x: TensorOf<S>, c: S) -> TensorOf<S> { affine(x, scale: 1, shift: -c) }
public func - <S>(c: S, x: TensorOf<S>) -> TensorOf<S> { affine(x, scale: -1, shift: c) }
