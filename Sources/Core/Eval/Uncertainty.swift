// Uncertainty for the paper tables (issue 16): seeded percentile-bootstrap intervals over prompts (or
// pairs), pooled over seeds; paired permutation and sign tests; win rates with ties ½; mean ± sd over seeds.
import Foundation

/// One stratum of a seed's data: `weight · mean(values)` is its share of the seed's statistic.
public struct Stratum: Sendable, Equatable {
    public var values: [Double]
    public var weight: Double
    public init(_ values: [Double], weight: Double = 1) { self.values = values; self.weight = weight }
}

/// One seed's data for a linear statistic  θ_s = Σ_k weight_k · mean(stratum_k).
/// The bootstrap resamples each stratum's values (its prompts or pairs) with replacement, on its own.
/// - a mean over prompts: one stratum (`.mean`);
/// - a paired difference A − B on the same prompts: one stratum of per-prompt differences (`.paired`);
/// - any paired contrast Σ_m w_m·score_m (a second difference, a slope over committee sizes): one
///   stratum of per-prompt contrasts (`.contrast`);
/// - a difference of two means on *different* units (kept pairs vs the rest): two strata, +1 and −1
///   (`.unpaired`), resampled separately (a stratified bootstrap: each group keeps its size).
public struct SeedSample: Sendable, Equatable {
    public var strata: [Stratum]
    public init(strata: [Stratum]) { self.strata = strata }

    public static func mean(_ values: [Double]) -> SeedSample { SeedSample(strata: [Stratum(values)]) }

    /// Per-prompt differences a_i − b_i (the paired difference of two methods on the same prompts).
    public static func paired(_ a: [Double], _ b: [Double]) throws -> SeedSample {
        guard a.count == b.count else {
            throw CoreError("paired values: \(a.count) values against \(b.count); pair the same prompts in the same order")
        }
        return .mean(zip(a, b).map { $0 - $1 })
    }

    /// Per-unit contrasts Σ_m weights[m] · columns[m][i] (every column scores the same units in the same order).
    public static func contrast(_ columns: [[Double]], weights: [Double]) throws -> SeedSample {
        guard !columns.isEmpty, columns.count == weights.count else {
            throw CoreError("contrast: \(columns.count) columns for \(weights.count) weights")
        }
        let n = columns[0].count
        if let m = columns.firstIndex(where: { $0.count != n }) {
            throw CoreError("contrast: column \(m + 1) has \(columns[m].count) values, column 1 has \(n); score the same units in the same order")
        }
        return .mean((0..<n).map { i in zip(columns, weights).reduce(0) { $0 + $1.1 * $1.0[i] } })
    }

    /// mean(a) − mean(b) for two groups of different units, each resampled on its own.
    public static func unpaired(_ a: [Double], _ b: [Double]) -> SeedSample {
        SeedSample(strata: [Stratum(a, weight: 1), Stratum(b, weight: -1)])
    }

    /// The statistic on the data as given: Σ_k weight_k · mean(stratum_k).
    public var statistic: Double { strata.reduce(0) { $0 + $1.weight * Metrics.mean($1.values) } }
    /// How many units (prompts, pairs) back this seed's statistic.
    public var count: Int { strata.reduce(0) { $0 + $1.values.count } }
}

/// How a bootstrap resample treats several seeds.
public enum Pooling: String, Sendable, CaseIterable {
    /// Each resample keeps every seed and resamples the prompts within each one: the interval of *these*
    /// trained models' mean over a fresh draw of prompts (evaluation noise only).
    case prompts
    /// Each resample draws S seeds with replacement, then the prompts within each drawn seed (a two-level
    /// bootstrap): it also covers how much the result moves from one training seed to another, and is
    /// the honest interval for a claim about a *method*. With one seed it is `prompts`.
    case seedsAndPrompts = "seeds_and_prompts"
}

/// Settings of a percentile bootstrap.
public struct BootstrapConfig: Sendable, Equatable {
    public var resamples: Int
    public var level: Double
    public var seed: UInt64
    public var pooling: Pooling
    public init(resamples: Int = 1000, level: Double = 0.95, seed: UInt64 = 0, pooling: Pooling = .seedsAndPrompts) {
        self.resamples = resamples; self.level = level; self.seed = seed; self.pooling = pooling
    }
    public func validate() throws {
        guard resamples >= 10 && resamples <= 10_000_000 else { throw CoreError("bootstrap: resamples must be 10…10,000,000, got \(resamples)") }
        guard level > 0 && level < 1 else { throw CoreError("bootstrap: level must be in (0, 1), got \(level)") }
    }
}

/// A statistic with its confidence interval, the per-seed values it pools, and what backs it.
public struct Estimate: Sendable, Equatable {
    /// The statistic on the data as given: the mean over seeds of each seed's statistic.
    public var mean: Double
    public var lo: Double
    public var hi: Double
    public var level: Double
    /// Each seed's statistic (one entry per seed).
    public var perSeed: [Double]
    /// Units (prompts or pairs) behind each seed's statistic.
    public var counts: [Int]
    /// Images behind each seed's statistic when a unit (a prompt) stands for several images whose mean is
    /// its value (GenEval's images per prompt); empty when each unit is one observation.
    public var images: [Int] = []
    public var resamples: Int
    public var pooling: Pooling

    public init(mean: Double, lo: Double, hi: Double, level: Double = 0.95, perSeed: [Double], counts: [Int], resamples: Int = 0,
                pooling: Pooling = .seedsAndPrompts) {
        self.mean = mean; self.lo = lo; self.hi = hi; self.level = level; self.perSeed = perSeed; self.counts = counts
        self.resamples = resamples; self.pooling = pooling
    }

    /// (hi − lo) / 2: what `mean ± half-width` prints (the percentile interval need not be symmetric).
    public var halfWidth: Double { (hi - lo) / 2 }
    public var seeds: Int { perSeed.count }
    /// Sample standard deviation of the per-seed statistics (n − 1; NaN for one seed).
    public var sdOverSeeds: Double { Statistics.overSeeds(perSeed).sd }
}

public enum Statistics {
    // MARK: bootstrap

    /// Percentile bootstrap interval of θ = (1/S) Σ_s θ_s, θ_s = Σ_k w_k · mean(stratum_k of seed s).
    ///
    /// Resample b (b = 0 … B−1) draws from its own stream `RandomStream(RandomKey(seed: config.seed).child(b))`:
    /// with `.seedsAndPrompts` and S > 1, first S seed indices (each `int(S)`), then, for each drawn seed in
    /// order and each of its strata in order, n_k unit indices (each `int(n_k)`); with `.prompts` the seeds
    /// are 0 … S−1 and only the units are drawn. θ*_b is θ on that resample. Sorted θ*_(1) ≤ … ≤ θ*_(B), the
    /// interval at level 1 − α is [θ*_(⌈B·α/2⌉), θ*_(⌈B·(1 − α/2)⌉)] (the inverse empirical CDF; B = 1000,
    /// α = 0.05: the 25th and 975th). Same data + same config ⇒ the same interval, bit for bit.
    public static func bootstrap(_ seeds: [SeedSample], config: BootstrapConfig = BootstrapConfig()) throws -> Estimate {
        try config.validate()
        guard !seeds.isEmpty else { throw CoreError("bootstrap: no seeds (no values)") }
        for (s, sample) in seeds.enumerated() {
            let at = seeds.count > 1 ? " in seed \(s + 1)" : ""
            guard !sample.strata.isEmpty else { throw CoreError("bootstrap: no values\(at)") }
            for (k, st) in sample.strata.enumerated() {
                let group = sample.strata.count > 1 ? " (group \(k + 1))" : ""
                guard !st.values.isEmpty else { throw CoreError("bootstrap: no values\(at)\(group)") }
                guard st.weight.isFinite else { throw CoreError("bootstrap: weight \(st.weight)\(at)\(group) is not finite") }
                if let i = st.values.firstIndex(where: { !$0.isFinite }) {
                    throw CoreError("bootstrap: value \(i + 1)\(at)\(group) is \(st.values[i]); every value must be finite")
                }
            }
        }
        let S = seeds.count
        let resampleSeeds = config.pooling == .seedsAndPrompts && S > 1
        guard canResample(seeds, pooling: config.pooling) else {
            throw CoreError("bootstrap: one value per \(S == 1 ? "seed and only one seed" : "seed with pooling 'prompts'") — nothing to resample, so no interval; give per-prompt values or more seeds")
        }
        let perSeed = seeds.map(\.statistic)
        let root = RandomKey(seed: config.seed)
        var stats = [Double](repeating: 0, count: config.resamples)
        for b in 0..<config.resamples {
            var r = RandomStream(root.child(UInt64(b)))
            let chosen = resampleSeeds ? (0..<S).map { _ in r.int(S) } : Array(0..<S)
            var total = 0.0
            for s in chosen {
                for st in seeds[s].strata {
                    let n = st.values.count
                    var sum = 0.0
                    st.values.withUnsafeBufferPointer { v in
                        for _ in 0..<n { sum += v[r.int(n)] }
                    }
                    total += st.weight * sum / Double(n)
                }
            }
            stats[b] = total / Double(S)
        }
        stats.sort()
        let alpha = 1 - config.level
        return Estimate(mean: Metrics.mean(perSeed), lo: orderStatistic(stats, alpha / 2), hi: orderStatistic(stats, 1 - alpha / 2),
                        level: config.level, perSeed: perSeed, counts: seeds.map(\.count), resamples: config.resamples,
                        pooling: config.pooling)
    }

    /// False when a bootstrap would have nothing to resample: one value per stratum and either one seed or
    /// pooling `prompts` (the interval would be a point).
    public static func canResample(_ seeds: [SeedSample], pooling: Pooling) -> Bool {
        (pooling == .seedsAndPrompts && seeds.count > 1) || seeds.contains { $0.strata.contains { $0.values.count > 1 } }
    }

    /// θ_(⌈B·p⌉) of sorted values (1-based), with ⌈·⌉ forgiving rounding error in B·p (1000·0.025 = 25, not 26).
    static func orderStatistic(_ sorted: [Double], _ p: Double) -> Double {
        let k = Int((Double(sorted.count) * p - 1e-9).rounded(.up))
        return sorted[min(max(k, 1), sorted.count) - 1]
    }

    /// Interval of a mean over prompts, pooled over seeds (`values[s]` = seed s's per-prompt values).
    public static func bootstrapMean(_ values: [[Double]], config: BootstrapConfig = BootstrapConfig()) throws -> Estimate {
        try bootstrap(values.map(SeedSample.mean), config: config)
    }

    /// Interval of the paired difference mean(A − B) on the same prompts, pooled over seeds.
    public static func bootstrapDifference(_ a: [[Double]], _ b: [[Double]], config: BootstrapConfig = BootstrapConfig()) throws -> Estimate {
        guard a.count == b.count else { throw CoreError("paired values: \(a.count) seeds against \(b.count)") }
        return try bootstrap(zip(a, b).enumerated().map { s, ab in
            do { return try SeedSample.paired(ab.0, ab.1) } catch let e as CoreError {
                throw CoreError(a.count > 1 ? "seed \(s + 1): \(e.message)" : e.message)
            }
        }, config: config)
    }

    // MARK: win rate

    /// Per-prompt win credit of A over B: 1 if a > b, `tie` if a = b, 0 if a < b.
    public static func winCredits(_ a: [Double], over b: [Double], tie: Double = 0.5) throws -> [Double] {
        guard a.count == b.count else {
            throw CoreError("win rate: \(a.count) scores against \(b.count); score the same prompts in the same order")
        }
        guard !a.isEmpty else { throw CoreError("win rate: no prompts scored") }
        guard tie >= 0 && tie <= 1 else { throw CoreError("win rate: a tie's credit must be in [0, 1], got \(tie)") }
        return zip(a, b).map { $0 > $1 ? 1 : ($0 == $1 ? tie : 0) }
    }

    /// Win rate of A over B with its interval: the mean win credit (ties count `tie`, ½ by default;
    /// 0 is the authors' strict count of `Metrics.winRate`), bootstrapped over prompts and pooled over seeds.
    public static func winRate(_ a: [[Double]], over b: [[Double]], tie: Double = 0.5,
                               config: BootstrapConfig = BootstrapConfig()) throws -> Estimate {
        guard a.count == b.count else { throw CoreError("win rate: \(a.count) seeds against \(b.count)") }
        return try bootstrap(zip(a, b).enumerated().map { s, ab in
            do { return .mean(try winCredits(ab.0, over: ab.1, tie: tie)) } catch let e as CoreError {
                throw CoreError(a.count > 1 ? "seed \(s + 1): \(e.message)" : e.message)
            }
        }, config: config)
    }

    // MARK: tests

    /// A paired permutation test's result.
    public struct PermutationResult: Sendable, Equatable {
        public var p: Double
        /// True when every sign pattern was enumerated; false for Monte-Carlo.
        public var exact: Bool
        /// Sign patterns drawn (Monte-Carlo) or enumerated (2^n).
        public var resamples: Int
        /// The observed statistic T = (1/S) Σ_s mean(d_s).
        public var statistic: Double
    }

    /// Two-sided paired permutation (sign-flip) test of "A and B are exchangeable on each prompt".
    ///
    /// `differences[s]` = seed s's per-prompt differences a − b. T = (1/S) Σ_s mean(d_s) = Σ_i w_i d_i with
    /// w_i = 1/(S·n_s); under H0 every d_i's sign is equally likely ±. With n = Σ n_s ≤ `exactLimit` all 2^n
    /// sign patterns are enumerated and p = #{|T*| ≥ |T|} / 2^n (the identity counts); otherwise B patterns
    /// are drawn (pattern r flips unit i when bit i mod 64 of `RandomKey(seed: seed).child(r).bits(⌊i/64⌋)` is set) and
    /// p = (1 + #{|T*| ≥ |T|}) / (B + 1). |T*| ≥ |T| allows a relative 1e-12 for rounding.
    public static func permutationTest(_ differences: [[Double]], resamples: Int = 10_000, seed: UInt64 = 0,
                                       exactLimit: Int = 20) throws -> PermutationResult {
        guard !differences.isEmpty, differences.allSatisfy({ !$0.isEmpty }) else {
            throw CoreError("permutation test: no paired values\(differences.count > 1 ? " in seed \(differences.firstIndex(where: \.isEmpty)! + 1)" : "")")
        }
        guard exactLimit >= 0 && exactLimit <= 24 else { throw CoreError("permutation test: exactLimit must be 0…24, got \(exactLimit)") }
        var a: [Double] = []   // w_i · d_i
        for d in differences {
            if let i = d.firstIndex(where: { !$0.isFinite }) { throw CoreError("permutation test: difference \(i + 1) is \(d[i]); every value must be finite") }
            let w = 1 / (Double(differences.count) * Double(d.count))
            a += d.map { w * $0 }
        }
        let observed = a.reduce(0, +)
        let tol = 1e-12 * a.reduce(0) { $0 + abs($1) }
        let threshold = abs(observed) - tol
        let n = a.count
        if n <= exactLimit {
            var extreme = 0
            let patterns = 1 << n
            for mask in 0..<patterns {
                var t = 0.0
                for i in 0..<n { t += (mask >> i) & 1 == 1 ? -a[i] : a[i] }
                if abs(t) >= threshold { extreme += 1 }
            }
            return PermutationResult(p: Double(extreme) / Double(patterns), exact: true, resamples: patterns, statistic: observed)
        }
        guard resamples >= 10 && resamples <= 10_000_000 else { throw CoreError("permutation test: resamples must be 10…10,000,000, got \(resamples)") }
        let root = RandomKey(seed: seed)
        var extreme = 0
        for r in 0..<resamples {
            let key = root.child(UInt64(r))
            var t = 0.0
            var word: UInt64 = 0
            for i in 0..<n {
                if i & 63 == 0 { word = key.bits(UInt64(i >> 6)) }
                t += (word >> UInt64(i & 63)) & 1 == 1 ? -a[i] : a[i]
            }
            if abs(t) >= threshold { extreme += 1 }
        }
        return PermutationResult(p: Double(1 + extreme) / Double(1 + resamples), exact: false, resamples: resamples, statistic: observed)
    }

    /// A sign test's result.
    public struct SignTestResult: Sendable, Equatable {
        public var p: Double
        public var positive: Int
        public var negative: Int
        /// Zero differences, left out.
        public var ties: Int
    }

    /// Two-sided exact sign test on paired differences (pooled over seeds): with n₊ positive and n₋ negative
    /// differences (zeros dropped), n = n₊ + n₋ and X ~ Binomial(n, ½),
    /// p = min(1, 2 · P(X ≤ min(n₊, n₋))); p = 1 when n = 0.
    public static func signTest(_ differences: [[Double]]) throws -> SignTestResult {
        let d = differences.flatMap { $0 }
        guard !d.isEmpty else { throw CoreError("sign test: no paired values") }
        if let i = d.firstIndex(where: { $0.isNaN }) { throw CoreError("sign test: difference \(i + 1) is NaN") }
        let pos = d.filter { $0 > 0 }.count, neg = d.filter { $0 < 0 }.count
        let n = pos + neg
        guard n > 0 else { return SignTestResult(p: 1, positive: 0, negative: 0, ties: d.count) }
        return SignTestResult(p: min(1, 2 * binomialCDF(min(pos, neg), n: n)), positive: pos, negative: neg, ties: d.count - n)
    }

    /// P(X ≤ k) for X ~ Binomial(n, ½), summed in log space (exact to rounding for any n).
    static func binomialCDF(_ k: Int, n: Int) -> Double {
        var logP = -Double(n) * log(2.0)       // log P(X = 0)
        var sum = exp(logP)
        if k >= 1 {
            for j in 0..<k {                   // P(X = j+1) = P(X = j) · (n − j)/(j + 1)
                logP += log(Double(n - j)) - log(Double(j + 1))
                sum += exp(logP)
            }
        }
        return min(1, sum)
    }

    // MARK: seeds

    /// Mean and sample standard deviation (n − 1) of per-seed values; sd is NaN for one seed.
    public static func overSeeds(_ values: [Double]) -> (mean: Double, sd: Double, seeds: Int) {
        let m = Metrics.mean(values)
        guard values.count >= 2 else { return (m, .nan, values.count) }
        let ss = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (m, (ss / Double(values.count - 1)).squareRoot(), values.count)
    }
}
