// AdamW with decoupled weight decay (Torch-style: a config value plus explicit, lazily created
// state), state exposed as named tensors for checkpoints; and an EMA of parameters.

/// AdamW hyperparameters. reference: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization".
public struct AdamWConfig: Sendable, Equatable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    public var schedule: LearningRateSchedule

    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.01, schedule: LearningRateSchedule = .constant) {
        precondition(learningRate >= 0, "AdamW: learningRate must be ≥ 0, got \(learningRate)")
        precondition(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "AdamW: betas must be in [0, 1), got \(beta1), \(beta2)")
        precondition(epsilon > 0 && weightDecay >= 0, "AdamW: epsilon must be > 0 and weightDecay ≥ 0")
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay; self.schedule = schedule
    }
}

/// AdamW over named parameters. Each `step` (t = 1, 2, …), for every parameter p with gradient g:
///   lr_t = learningRate · schedule.factor(t)
///   p ← p · (1 − lr_t · weightDecay)
///   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
///   p ← p − lr_t · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
/// Parameters without a gradient are skipped (their moments untouched), as in PyTorch.
public final class AdamWOf<S: TensorScalar> {
    public var config: AdamWConfig
    /// Number of updates done so far.
    public private(set) var step = 0
    /// First and second moments of one parameter (a class, so that updates of different parameters
    /// can run on different threads).
    final class Moments {
        var m: [S], v: [S]
        init(m: [S], v: [S]) { self.m = m; self.v = v }
    }
    /// Moments by parameter name, created at a parameter's first update.
    private var moments: [String: Moments] = [:]

    public init(config: AdamWConfig) { self.config = config }

    /// The learning rate the next update will use.
    public var currentLearningRate: Double { config.learningRate * config.schedule.factor(step: step + 1) }

    /// One update of all parameters from their `grad`. Parameters are updated independently, spread
    /// over the engine's threads whole (the result does not depend on the thread count).
    public func update(_ parameters: [(String, TensorOf<S>)]) {
        step += 1
        let t = Double(step), c = config
        let lr = c.learningRate * c.schedule.factor(step: step)
        let decay = S(1 - lr * c.weightDecay)
        let b1 = S(c.beta1), b2 = S(c.beta2), ob1 = S(1 - c.beta1), ob2 = S(1 - c.beta2)
        let bc1 = 1 - _pow(c.beta1, t), bc2 = 1 - _pow(c.beta2, t)
        let stepSize = S(lr / bc1), invSqrtBc2 = S(1 / bc2.squareRoot()), eps = S(c.epsilon)
        var work: [(p: TensorOf<S>, g: [S], state: Moments)] = []
        for (name, p) in parameters {
            guard let g = p.grad else { continue }
            precondition(g.count == p.count, "AdamW: gradient of \(name) has \(g.count) elements, parameter \(p.shape)")
            let state: Moments
            if let existing = moments[name] {
                precondition(existing.m.count == p.count, "AdamW: state for \(name) has the wrong size for \(p.shape)")
                state = existing
            } else {
                state = Moments(m: [S](repeating: 0, count: p.count), v: [S](repeating: 0, count: p.count))
                moments[name] = state
            }
            work.append((p, g, state))
        }
        parallelForItems(sizes: work.map { $0.g.count }) { item in
            let (p, g, state) = work[item]
            p.data.withUnsafeMutableBufferPointer { pp in state.m.withUnsafeMutableBufferPointer { mp in
                state.v.withUnsafeMutableBufferPointer { vp in g.withUnsafeBufferPointer { gp in
                    for i in 0..<gp.count {
                        let gi = gp[i]
                        let m = b1 * mp[i] + ob1 * gi, v = b2 * vp[i] + ob2 * gi * gi
                        mp[i] = m; vp[i] = v
                        pp[i] = pp[i] * decay - stepSize * m / (v.squareRoot() * invSqrtBc2 + eps)
                    }
                } }
            } }
        }
    }

    /// The state as named tensors: "step" (1 element) and "m.<name>", "v.<name>" per parameter,
    /// sorted by name, ready for a safetensors checkpoint.
    public func state() -> [(String, TensorOf<S>)] {
        var out: [(String, TensorOf<S>)] = [("step", TensorOf(shape: [1], data: [S(step)]))]
        for name in moments.keys.sorted() {
            let state = moments[name]!
            out.append(("m.\(name)", TensorOf(shape: [state.m.count], data: state.m)))
            out.append(("v.\(name)", TensorOf(shape: [state.v.count], data: state.v)))
        }
        return out
    }

    /// Restores what `state()` produced for `parameters` (the ones the optimizer updates). Every
    /// entry is checked before anything changes: a step that is a whole number ≥ 0, moments paired,
    /// each naming one of `parameters` and holding exactly as many values as it (a shorter moment
    /// would be read past its end by `update`).
    public func loadState(_ state: [(String, TensorOf<S>)], for parameters: [(String, TensorOf<S>)]) throws {
        var m: [String: [S]] = [:], v: [String: [S]] = [:]
        var loadedStep: Int?
        for (name, t) in state {
            if name == "step" {
                let x = t.count == 1 ? Double(t.data[0]) : .nan
                guard x.isFinite, x >= 0, x.rounded() == x, x <= 1e15 else {
                    throw CoreError("AdamW.loadState: 'step' must be one whole number ≥ 0, got \(t.count == 1 ? "\(x)" : "\(t.count) values")")
                }
                loadedStep = Int(x)
            }
            else if name.hasPrefix("m.") { m[String(name.dropFirst(2))] = t.data }
            else if name.hasPrefix("v.") { v[String(name.dropFirst(2))] = t.data }
            else { throw CoreError("AdamW.loadState: unexpected entry '\(name)'") }
        }
        guard let s = loadedStep else { throw CoreError("AdamW.loadState: no 'step' entry") }
        guard Set(m.keys) == Set(v.keys) else { throw CoreError("AdamW.loadState: first and second moments name different parameters") }
        for (k, a) in m where v[k]!.count != a.count { throw CoreError("AdamW.loadState: moments of '\(k)' differ in size") }
        let sizes = Dictionary(parameters.map { ($0.0, $0.1.count) }, uniquingKeysWith: { a, _ in a })
        for (k, a) in m.sorted(by: { $0.key < $1.key }) {
            guard let n = sizes[k] else { throw CoreError("AdamW.loadState: moments for '\(k)', which is not a parameter of this model") }
            guard a.count == n else {
                throw CoreError("AdamW.loadState: moments of '\(k)' have \(a.count) values, the parameter has \(n)")
            }
        }
        step = s
        moments = Dictionary(uniqueKeysWithValues: m.map { ($0.key, Moments(m: $0.value, v: v[$0.key]!)) })
    }
}

public typealias AdamW = AdamWOf<Float>

/// One step of an exponential moving average of parameters, shadow ← decay · shadow + (1 − decay) · p,
/// matched by position (the shadow is e.g. a frozen clone of the model). Parameters are spread over
/// the engine's threads whole (the result does not depend on the thread count).
public func updateEMA<S>(_ shadow: [(String, TensorOf<S>)], toward parameters: [(String, TensorOf<S>)], decay: Double) {
    precondition(decay >= 0 && decay < 1, "updateEMA: decay must be in [0, 1), got \(decay)")
    precondition(shadow.count == parameters.count, "updateEMA: \(shadow.count) shadow tensors for \(parameters.count) parameters")
    for ((sn, s), (pn, p)) in zip(shadow, parameters) {
        precondition(s.count == p.count && s !== p, "updateEMA: shadow \(sn) \(s.shape) does not match parameter \(pn) \(p.shape)")
    }
    let d = S(decay), od = S(1 - decay)
    parallelForItems(sizes: parameters.map { $0.1.count }) { item in
        let s = shadow[item].1, p = parameters[item].1
        s.data.withUnsafeMutableBufferPointer { sp in p.data.withUnsafeBufferPointer { pp in
            for i in sp.indices { sp[i] = d * sp[i] + od * pp[i] }
        } }
    }
}
