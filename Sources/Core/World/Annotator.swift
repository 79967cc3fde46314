// Simulated annotators: one holistic label per pair from a person who weighs the three quality
// dimensions with Dirichlet weights and chooses by a Bradley–Terry draw; near-ties become ties.

/// Settings of the simulated annotator pool.
public struct AnnotatorConfig: Sendable, Equatable {
    /// Dirichlet concentration per dimension; small values make one dimension dominate.
    public var concentration: Double = 0.2
    /// Bradley–Terry temperature τ: P(image0 preferred) = σ(Δ / τ).
    public var temperature: Double = 0.05
    /// |Δ| below this is recorded as a tie (and the pair dropped); 0.03 gives ≈ 12% ties at the
    /// other defaults (measured, docs/world.md).
    public var tieTolerance: Double = 0.03
    public init(concentration: Double = 0.2, temperature: Double = 0.05, tieTolerance: Double = 0.03) {
        self.concentration = concentration; self.temperature = temperature; self.tieTolerance = tieTolerance
    }
    public func validate() throws {
        guard concentration > 0, concentration.isFinite else { throw CoreError("annotator: concentration must be > 0, got \(concentration)") }
        guard temperature > 0, temperature.isFinite else { throw CoreError("annotator: temperature must be > 0, got \(temperature)") }
        guard tieTolerance >= 0, tieTolerance.isFinite else { throw CoreError("annotator: tieTolerance must be ≥ 0, got \(tieTolerance)") }
    }
}

/// One annotation.
public struct Annotation: Sendable, Equatable {
    /// +1: image0 preferred, -1: image1 preferred, 0: tie.
    public var label: Int
    /// The annotator's attention weights over (alignment, aesthetics, detail), summing to 1.
    public var weights: [Double]
    /// Weighted score difference Δ = Σ_k w_k (s_k(image0) - s_k(image1)).
    public var difference: Double
}

public enum Annotator {
    /// Labels a pair from the true scores of both images:
    ///   w ~ Dirichlet(α, α, α),  Δ = Σ_k w_k (s_k(x0) - s_k(x1)),
    ///   tie if |Δ| < tolerance, else label = +1 with probability σ(Δ / τ), -1 otherwise.
    public static func annotate(_ s0: QualityScores, _ s1: QualityScores, config: AnnotatorConfig, _ rng: inout RandomStream) -> Annotation {
        let a = config.concentration
        let w = rng.dirichlet([a, a, a])
        let d0 = s0.array, d1 = s1.array
        var diff = 0.0
        for k in 0..<3 { diff += w[k] * Double(d0[k] - d1[k]) }
        let u = rng.uniform()
        if abs(diff) < config.tieTolerance { return Annotation(label: 0, weights: w, difference: diff) }
        let p = 1 / (1 + _exp(-diff / config.temperature))
        return Annotation(label: u < p ? 1 : -1, weights: w, difference: diff)
    }
}
