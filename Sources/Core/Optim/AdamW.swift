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
    /// First and second moments by parameter name, created at a parameter's first update.
    public private(set) var firstMoment: [String: [S]] = [:]
    public private(set) var secondMoment: [String: [S]] = [:]

    public init(config: AdamWConfig) { self.config = config }

    /// The learning rate the next update will use.
    public var currentLearningRate: Double { config.learningRate * config.schedule.factor(step: step + 1) }

    /// One update of all parameters from their `grad`.
    public func update(_ parameters: [(String, TensorOf<S>)]) {
        step += 1
        let t = Double(step), c = config
        let lr = c.learningRate * c.schedule.factor(step: step)
        let decay = S(1 - lr * c.weightDecay)
        let b1 = S(c.beta1), b2 = S(c.beta2), ob1 = S(1 - c.beta1), ob2 = S(1 - c.beta2)
        let bc1 = 1 - _pow(c.beta1, t), bc2 = 1 - _pow(c.beta2, t)
        let stepSize = S(lr / bc1), invSqrtBc2 = S(1 / bc2.squareRoot()), eps = S(c.epsilon)
        for (name, p) in parameters {
            guard let g = p.grad else { continue }
            precondition(g.count == p.count, "AdamW: gradient of \(name) has \(g.count) elements, parameter \(p.shape)")
            if firstMoment[name] == nil {
                firstMoment[name] = [S](repeating: 0, count: p.count)
                secondMoment[name] = [S](repeating: 0, count: p.count)
            }
            precondition(firstMoment[name]!.count == p.count, "AdamW: state for \(name) has the wrong size for \(p.shape)")
            let n = p.count
            p.data.withUnsafeMutableBufferPointer { pb in firstMoment[name]!.withUnsafeMutableBufferPointer { mb in
                secondMoment[name]!.withUnsafeMutableBufferPointer { vb in g.withUnsafeBufferPointer { gb in
                    let pp = pb.baseAddress!, mp = mb.baseAddress!, vp = vb.baseAddress!, gp = gb.baseAddress!
                    parallelFor(n, grain: 32_768) { r in
                        for i in r {
                            let gi = gp[i]
                            let m = b1 * mp[i] + ob1 * gi, v = b2 * vp[i] + ob2 * gi * gi
                            mp[i] = m; vp[i] = v
                            pp[i] = pp[i] * decay - stepSize * m / (v.squareRoot() * invSqrtBc2 + eps)
                        }
                    }
                } }
            } }
        }
    }

    /// The state as named tensors: "step" (1 element) and "m.<name>", "v.<name>" per parameter,
    /// sorted by name, ready for a safetensors checkpoint.
    public func state() -> [(String, TensorOf<S>)] {
        var out: [(String, TensorOf<S>)] = [("step", TensorOf(shape: [1], data: [S(step)]))]
        for name in firstMoment.keys.sorted() {
            let m = firstMoment[name]!, v = secondMoment[name]!
            out.append(("m.\(name)", TensorOf(shape: [m.count], data: m)))
            out.append(("v.\(name)", TensorOf(shape: [v.count], data: v)))
        }
        return out
    }

    /// Restores what `state()` produced. Throws on a missing step or an unpaired moment.
    public func loadState(_ state: [(String, TensorOf<S>)]) throws {
        var m: [String: [S]] = [:], v: [String: [S]] = [:]
        var loadedStep: Int?
        for (name, t) in state {
            if name == "step" { loadedStep = Int(Double(t.item())) }
            else if name.hasPrefix("m.") { m[String(name.dropFirst(2))] = t.data }
            else if name.hasPrefix("v.") { v[String(name.dropFirst(2))] = t.data }
            else { throw CoreError("AdamW.loadState: unexpected entry '\(name)'") }
        }
        guard let s = loadedStep else { throw CoreError("AdamW.loadState: no 'step' entry") }
        guard Set(m.keys) == Set(v.keys) else { throw CoreError("AdamW.loadState: first and second moments name different parameters") }
        for (k, a) in m where v[k]!.count != a.count { throw CoreError("AdamW.loadState: moments of '\(k)' differ in size") }
        step = s; firstMoment = m; secondMoment = v
    }
}

public typealias AdamW = AdamWOf<Float>

/// Exponential moving average of parameters: shadow ← decay · shadow + (1 − decay) · p.
public final class EMAOf<S: TensorScalar> {
    public let decay: Double
    public private(set) var shadow: [String: [S]] = [:]
    public init(decay: Double) {
        precondition(decay >= 0 && decay < 1, "EMA: decay must be in [0, 1), got \(decay)")
        self.decay = decay
    }
    /// Updates the averages (the first call copies the parameters).
    public func update(_ parameters: [(String, TensorOf<S>)]) {
        let d = S(decay), od = S(1 - decay)
        for (name, p) in parameters {
            if shadow[name] == nil { shadow[name] = p.data; continue }
            shadow[name]!.withUnsafeMutableBufferPointer { s in
                for i in 0..<p.count { s[i] = d * s[i] + od * p.data[i] }
            }
        }
    }
    /// Writes the averages into the parameters (e.g. before evaluation or saving).
    public func copy(to parameters: [(String, TensorOf<S>)]) {
        for (name, p) in parameters { if let s = shadow[name] { p.data = s } }
    }
}
public typealias EMA = EMAOf<Float>
