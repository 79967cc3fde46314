// Label-noise statistics of a preference dataset against the world's per-dimension truth
// (the conflict rates p_c,k of the paper's section 3.2).

/// Measured label statistics. Pairs with label 0 are not counted (they are dropped ties).
public struct WorldStatistics: Sendable, Equatable {
    /// Labelled (non-tie) pairs.
    public var pairs: Int
    /// Pairs drawn before dropping ties, and the share of ties among them.
    public var candidates: Int
    public var ties: Int
    public var tieRate: Double { candidates > 0 ? Double(ties) / Double(candidates) : 0 }
    /// p_c,k: share of labelled pairs whose label opposes dimension k (Δr_k < 0 for the winner),
    /// in the order alignment, aesthetics, detail.
    public var conflictRate: [Double]
    /// p_a,k: share whose label agrees with dimension k (Δr_k > 0); the rest are exact ties on k.
    public var agreeRate: [Double]
    /// Share of labelled pairs whose winner has the higher equal-weight overall truth.
    public var overallAgreement: Double
    /// Share of labelled pairs that disagree with at least one dimension (1 − this is the share a
    /// perfect per-dimension consensus filter would keep as clean).
    public var anyConflictRate: Double

    /// Computes the statistics from labels (+1: image0 preferred, -1: image1, 0: tie) and the true
    /// scores of both images. `candidates`/`ties` describe ties already dropped before these arrays.
    public static func measure(labels: [Int], truth0: [QualityScores], truth1: [QualityScores],
                               droppedTies: Int = 0) throws -> WorldStatistics {
        guard labels.count == truth0.count, labels.count == truth1.count else {
            throw CoreError("statistics: \(labels.count) labels but \(truth0.count)/\(truth1.count) truths")
        }
        var n = 0, ties = droppedTies, overall = 0, any = 0
        var conflict = [Int](repeating: 0, count: 3), agree = [Int](repeating: 0, count: 3)
        for i in labels.indices {
            let l = labels[i]
            guard l == 1 || l == -1 else {
                if l == 0 { ties += 1; continue }
                throw CoreError("statistics: label \(l) at pair \(i) is not -1, 0 or +1")
            }
            n += 1
            let a = truth0[i].array, b = truth1[i].array
            var anyHere = false
            for k in 0..<3 {
                let d = Float(l) * (a[k] - b[k])
                if d < 0 { conflict[k] += 1; anyHere = true } else if d > 0 { agree[k] += 1 }
            }
            if anyHere { any += 1 }
            if Float(l) * (truth0[i].overall - truth1[i].overall) > 0 { overall += 1 }
        }
        let dn = Double(max(n, 1))
        return WorldStatistics(pairs: n, candidates: n + ties, ties: ties,
                               conflictRate: conflict.map { Double($0) / dn }, agreeRate: agree.map { Double($0) / dn },
                               overallAgreement: Double(overall) / dn, anyConflictRate: Double(any) / dn)
    }

    /// A short human-readable summary.
    public var summary: String {
        func p(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
        let names = QualityScores.dimensionNames
        return "pairs \(pairs) (of \(candidates) drawn), ties \(p(tieRate)); conflict p_c,k: " +
            (0..<3).map { "\(names[$0]) \(p(conflictRate[$0]))" }.joined(separator: ", ") +
            "; label agrees with overall truth \(p(overallAgreement)); disagrees with ≥1 dimension \(p(anyConflictRate))"
    }
}
