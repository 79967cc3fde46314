// DDPM noise schedules (scaled-linear, linear, cosine), forward-noising coefficients, timestep
// sampling, and the DDIM / ancestral-DDPM update coefficients.
import Foundation

/// A discrete DDPM noise schedule over T steps, t ∈ {0, …, T−1}.
///
/// reference: Ho et al. 2020 (DDPM); Song et al. 2021 (DDIM); Nichol & Dhariwal 2021 (cosine).
/// `alphaBar[t] = ∏_{s ≤ t} (1 − β_s)`; forward noising `x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε`.
public struct NoiseSchedule: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        /// Stable Diffusion's: β_t = (linspace(sqrt(β_start), sqrt(β_end), T))².
        case scaledLinear = "scaled_linear"
        /// β_t = linspace(β_start, β_end, T).
        case linear
        /// ᾱ(t) = cos²(((t/T + s)/(1 + s)) · π/2), s = 0.008, β clipped at 0.999.
        case cosine
    }

    public let kind: Kind
    public let steps: Int
    public let betaStart: Double
    public let betaEnd: Double
    /// β_t for t = 0 … T−1.
    public let betas: [Double]
    /// ᾱ_t for t = 0 … T−1.
    public let alphaBar: [Double]

    /// Stable Diffusion's schedule: scaled-linear, β 0.00085 → 0.012, T = 1000.
    public static let stableDiffusion = try! NoiseSchedule(kind: .scaledLinear, steps: 1000, betaStart: 0.00085, betaEnd: 0.012)

    public init(kind: Kind, steps: Int = 1000, betaStart: Double = 0.00085, betaEnd: Double = 0.012) throws {
        guard steps >= 2 else { throw CoreError("noise schedule: steps must be at least 2 (got \(steps))") }
        guard betaStart > 0, betaEnd > betaStart, betaEnd < 1 else {
            throw CoreError("noise schedule: need 0 < beta_start < beta_end < 1 (got \(betaStart), \(betaEnd))")
        }
        self.kind = kind
        self.steps = steps
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        var b = [Double](repeating: 0, count: steps)
        switch kind {
        case .scaledLinear:
            let a = betaStart.squareRoot(), z = betaEnd.squareRoot()
            for t in 0..<steps { let v = a + (z - a) * Double(t) / Double(steps - 1); b[t] = v * v }
        case .linear:
            for t in 0..<steps { b[t] = betaStart + (betaEnd - betaStart) * Double(t) / Double(steps - 1) }
        case .cosine:
            let s = 0.008
            func f(_ t: Double) -> Double { let c = cos((t / Double(steps) + s) / (1 + s) * Double.pi / 2); return c * c }
            for t in 0..<steps { b[t] = min(1 - f(Double(t + 1)) / f(Double(t)), 0.999) }
        }
        betas = b
        var ab = [Double](repeating: 0, count: steps)
        var p = 1.0
        for t in 0..<steps { p *= 1 - b[t]; ab[t] = p }
        alphaBar = ab
    }

    /// sqrt(ᾱ_t) and sqrt(1 − ᾱ_t): the coefficients of x_0 and ε in x_t.
    @inlinable public func noisingCoefficients(_ t: Int) -> (signal: Float, noise: Float) {
        (Float(alphaBar[t].squareRoot()), Float((1 - alphaBar[t]).squareRoot()))
    }

    /// A timestep drawn uniformly from {0, …, T−1} with the `index`-th draw of `key`.
    public func sampleTimestep(_ key: RandomKey, _ index: UInt64) -> Int {
        min(Int(key.uniform(index) * Double(steps)), steps - 1)
    }

    /// `count` evenly spaced sampling timesteps, descending, as diffusers' "leading" spacing:
    /// t_i = i · (T / count) for i = count−1 … 0.
    public func samplingTimesteps(count: Int) throws -> [Int] {
        guard count >= 1, count <= steps else { throw CoreError("sampling steps must be in 1…\(steps) (got \(count))") }
        let stride = steps / count
        return (0..<count).reversed().map { $0 * stride }
    }

    /// DDIM update from x_t to x_{prev} given the predicted noise, with stochasticity η.
    /// x̂_0 = (x_t − sqrt(1−ᾱ_t) ε̂)/sqrt(ᾱ_t);  σ = η·sqrt((1−ᾱ_prev)/(1−ᾱ_t))·sqrt(1−ᾱ_t/ᾱ_prev);
    /// x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1−ᾱ_prev−σ²) ε̂ + σ z.   (ᾱ_prev = 1 when prev < 0.)
    /// Returns the coefficients (cx, ceps, cz) with x_prev = cx·x_t + ceps·ε̂ + cz·z.
    public func ddimCoefficients(t: Int, prev: Int, eta: Double) -> (cx: Float, ceps: Float, cz: Float) {
        let at = alphaBar[t]
        let ap = prev >= 0 ? alphaBar[prev] : 1.0
        let sigma = eta * ((1 - ap) / (1 - at)).squareRoot() * (1 - at / ap).squareRoot()
        let cx = (ap / at).squareRoot()
        let dir = max(1 - ap - sigma * sigma, 0).squareRoot()
        let ceps = dir - cx * (1 - at).squareRoot()
        return (Float(cx), Float(ceps), Float(sigma))
    }

    /// Ancestral DDPM update x_t → x_{t−1}: μ = (x_t − β_t/sqrt(1−ᾱ_t) ε̂)/sqrt(1−β_t),
    /// σ² = β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t). Returns (cx, ceps, cz) with x_{t−1} = cx x_t + ceps ε̂ + cz z.
    public func ddpmCoefficients(t: Int) -> (cx: Float, ceps: Float, cz: Float) {
        let bt = betas[t], at = alphaBar[t]
        let aprev = t > 0 ? alphaBar[t - 1] : 1.0
        let cx = 1 / (1 - bt).squareRoot()
        let ceps = -cx * bt / (1 - at).squareRoot()
        let variance = t > 0 ? bt * (1 - aprev) / (1 - at) : 0
        return (Float(cx), Float(ceps), Float(variance.squareRoot()))
    }
}
