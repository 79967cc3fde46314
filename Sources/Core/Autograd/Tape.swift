// Reverse-mode autograd: each op output holds its inputs and a backward closure; `backward()` walks
// them in reverse topological order from a scalar (micrograd/teenygrad style).

/// The calling thread's gradient-recording switch (see `noGrad`), like PyTorch's thread-local grad mode.
public enum Autograd {
    public internal(set) static var isEnabled: Bool {
        get { ThreadContext.current.gradEnabled }
        set { ThreadContext.current.gradEnabled = newValue }
    }
}

/// Runs `body` without recording: op outputs have no backward links and ops save no buffers.
/// Use for reference models, sampling and evaluation. Nests; restores the previous mode.
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = Autograd.isEnabled
    Autograd.isEnabled = false
    defer { Autograd.isEnabled = previous }
    return try body()
}

/// Runs `body` with recording on (e.g. inside a `noGrad` scope).
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = Autograd.isEnabled
    Autograd.isEnabled = true
    defer { Autograd.isEnabled = previous }
    return try body()
}

/// True if an op on these inputs must record a backward link.
@inline(__always)
func needsGrad<S>(_ tensors: TensorOf<S>?...) -> Bool {
    guard Autograd.isEnabled else { return false }
    for t in tensors where t?.requiresGrad == true { return true }
    return false
}

extension TensorOf {
    /// Links this (freshly made) output to its inputs. `backward` receives d(out) and must
    /// accumulate into the inputs' gradients (through `accumulateGrad`).
    func attach(_ inputs: [TensorOf<S>], _ backward: @escaping ([S]) -> Void) {
        self.requiresGrad = true
        self.inputs = inputs
        self.backwardFn = backward
    }

    /// Gives `body` this tensor's gradient buffer (created as zeros if absent) to accumulate into.
    /// Does nothing if the tensor does not require grad.
    @inline(__always)
    func accumulateGrad(_ body: (UnsafeMutablePointer<S>) -> Void) {
        guard requiresGrad else { return }
        if grad == nil { grad = [S](repeating: 0, count: count) }
        grad!.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    /// For backward passes that reach every gradient element exactly once: `body(dx, fresh)` adds into
    /// the gradient buffer, or — when there is no gradient yet (`fresh`) — writes into new, uninitialised
    /// storage, with no zero-fill and no read of zeros. The same values as adding to zeros but for
    /// the sign of zero (a −0 written stays −0).
    @inline(__always)
    func accumulateGrad(orWrite body: (UnsafeMutablePointer<S>, _ fresh: Bool) -> Void) {
        guard requiresGrad else { return }
        if grad == nil {
            grad = uninitializedArray(count) { body($0, true) }
            return
        }
        grad!.withUnsafeMutableBufferPointer { body($0.baseAddress!, false) }
    }

    /// grad += gradient (same count) — the backward of ops whose partial derivative is 1 (add,
    /// reshape). With no gradient yet, the array itself becomes the gradient (shared copy-on-write,
    /// no zero-fill and no pass): the same values as 0 + gradient but for the sign of zero (−0 stays
    /// −0, where 0 + (−0) = +0).
    func accumulateGrad(adding gradient: [S]) {
        guard requiresGrad else { return }
        precondition(gradient.count == count, "accumulateGrad: \(gradient.count) values for shape \(shape)")
        if grad == nil { grad = gradient; return }
        grad!.withUnsafeMutableBufferPointer { g in gradient.withUnsafeBufferPointer { d in
            let gp = g.baseAddress!, dp = d.baseAddress!
            parallelFor(count, grain: 32_768) { r in for i in r { gp[i] += dp[i] } }
        } }
    }

    /// Backpropagates from this scalar: every tensor that requires grad and leads here gets
    /// `grad += ∂self/∂tensor`. Intermediate links, gradients and saved buffers are freed afterwards.
    public func backward() {
        precondition(count == 1, "backward(): needs a scalar loss, got shape \(shape); use backward(gradient:)")
        backward(gradient: [1])
    }

    /// Backpropagates a given upstream gradient `d(self)` (same count as `data`).
    public func backward(gradient: [S]) {
        precondition(gradient.count == count,
                     "backward(gradient:): gradient has \(gradient.count) elements, tensor shape \(shape)")
        precondition(requiresGrad, "backward(): tensor does not require grad (made under noGrad, or from constants)")
        // Reverse topological order by iterative depth-first search.
        var order: [TensorOf<S>] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(TensorOf<S>, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (t, next) = stack.popLast() {
            if next < t.inputs.count {
                stack.append((t, next + 1))
                let child = t.inputs[next]
                if child.backwardFn != nil, visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(t)
            }
        }
        accumulateGrad { g in for i in 0..<count { g[i] += gradient[i] } }
        for t in order.reversed() {
            guard let fn = t.backwardFn else { continue }
            if let g = t.grad {
                precondition(g.count == t.count, "backward: gradient of shape \(t.shape) has \(g.count) elements")
                fn(g)
            }
            t.backwardFn = nil
            t.inputs = []
            if t !== self { t.grad = nil }
        }
    }
}

// MARK: - Parameter helpers

/// Drops the gradients of these parameters (PyTorch's `zero_grad(set_to_none=True)`).
public func zeroGrad<S>(_ parameters: [(String, TensorOf<S>)]) {
    for (_, p) in parameters { p.grad = nil }
}

/// Global L2 norm of the gradients, ‖g‖ = sqrt(Σ_p Σ_i g_pi²): each parameter's sum in Double (the
/// parameters spread over the engine's threads), the sums added in parameter order.
public func gradNorm<S>(_ parameters: [(String, TensorOf<S>)]) -> Double {
    var sums = [Double](repeating: 0, count: parameters.count)
    sums.withUnsafeMutableBufferPointer { out in
        parallelForItems(sizes: parameters.map { $0.1.grad?.count ?? 0 }) { item in
            guard let g = parameters[item].1.grad else { return }
            var s = 0.0
            for v in g { s += Double(v) * Double(v) }
            out[item] = s
        }
    }
    var total = 0.0
    for s in sums { total += s }
    return total.squareRoot()
}

/// Scales all gradients by min(1, maxNorm / (‖g‖ + 1e-6)) (PyTorch's `clip_grad_norm_`).
/// Returns the norm before clipping.
@discardableResult
public func clipGradNorm<S>(_ parameters: [(String, TensorOf<S>)], maxNorm: Double) -> Double {
    precondition(maxNorm > 0, "clipGradNorm: maxNorm must be > 0, got \(maxNorm)")
    let norm = gradNorm(parameters)
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        let f = S(factor)
        parallelForItems(sizes: parameters.map { $0.1.grad?.count ?? 0 }) { item in
            let p = parameters[item].1
            guard p.grad != nil else { return }
            p.grad!.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] *= f } }
        }
    }
    return norm
}
