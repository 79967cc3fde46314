// The claim checker (issue 16): a claim is a directional test on a bootstrap interval over seeds × prompts,
// or an all-of over such tests; verdicts holds / fails / inconclusive, never from a point estimate.
import Foundation

/// The verdict of a claim.
public enum Verdict: String, Sendable {
    /// The whole interval lies on the claimed side of the threshold.
    case holds
    /// The whole interval lies on the other side.
    case fails
    /// The interval contains the threshold (or there was nothing to resample).
    case inconclusive
}

/// Which side of the threshold a test claims.
public enum ClaimDirection: String, Sendable {
    /// "θ > threshold" (a difference is positive, a share exceeds a value).
    case above
    /// "θ < threshold" (x decreases, a share is a minority).
    case below
    var symbol: String { self == .above ? ">" : "<" }
}

/// A claim: one directional test on the pooled interval of a statistic, or all of several claims.
public indirect enum Claim: Sendable {
    /// `quantity` (e.g. "Semi-DPO − Diffusion-DPO, overall, hpsv2") of `samples` (one per seed) claimed
    /// `direction` of `threshold`.
    case test(name: String, quantity: String, samples: [SeedSample], direction: ClaimDirection, threshold: Double)
    /// Holds when every part holds, fails when any part fails, inconclusive otherwise.
    case allOf(name: String, statement: String, parts: [Claim])

    public var name: String {
        switch self {
        case .test(let n, _, _, _, _), .allOf(let n, _, _): return n
        }
    }
}

/// The checked claim: its verdict, and for a test the interval and the numbers used.
public struct ClaimResult: Sendable {
    public var name: String
    /// For a test: "quantity > threshold"; for an all-of: the statement.
    public var statement: String
    public var verdict: Verdict
    public var estimate: Estimate?
    public var direction: ClaimDirection?
    public var threshold: Double?
    /// Why a test is inconclusive without an interval (e.g. one value and one seed).
    public var note: String?
    public var parts: [ClaimResult]
}

public enum ClaimChecker {
    /// The verdict of "θ `direction` threshold" from θ's interval [lo, hi]: holds if the whole interval is on the
    /// claimed side (lo > t for above, hi < t for below), fails if the whole interval is on the other side
    /// (hi < t, resp. lo > t), inconclusive otherwise (an end exactly at t is inconclusive).
    public static func verdict(_ e: Estimate, _ direction: ClaimDirection, _ threshold: Double) -> Verdict {
        switch direction {
        case .above: return e.lo > threshold ? .holds : (e.hi < threshold ? .fails : .inconclusive)
        case .below: return e.hi < threshold ? .holds : (e.lo > threshold ? .fails : .inconclusive)
        }
    }

    /// Checks a claim with the bootstrap `config` (every test uses the same seed: a deterministic report).
    public static func check(_ claim: Claim, config: BootstrapConfig = BootstrapConfig()) throws -> ClaimResult {
        switch claim {
        case let .test(name, quantity, samples, direction, threshold):
            let statement = "\(quantity) \(direction.symbol) \(format(threshold))"
            guard Statistics.canResample(samples, pooling: config.pooling) else {
                return ClaimResult(name: name, statement: statement, verdict: .inconclusive, estimate: nil, direction: direction,
                                   threshold: threshold,
                                   note: samples.count > 1 ? "no interval: one value per seed with pooling 'prompts'" : "no interval: one value and one seed",
                                   parts: [])
            }
            do {
                let e = try Statistics.bootstrap(samples, config: config)
                return ClaimResult(name: name, statement: statement, verdict: verdict(e, direction, threshold), estimate: e,
                                   direction: direction, threshold: threshold, note: nil, parts: [])
            } catch let e as CoreError {
                throw CoreError("claim '\(name)': \(e.message)")
            }
        case let .allOf(name, statement, parts):
            guard !parts.isEmpty else { throw CoreError("claim '\(name)': an all-of claim needs at least one part") }
            let results = try parts.map { try check($0, config: config) }
            let v: Verdict = results.contains { $0.verdict == .fails } ? .fails
                : (results.allSatisfy { $0.verdict == .holds } ? .holds : .inconclusive)
            return ClaimResult(name: name, statement: statement, verdict: v, estimate: nil, direction: nil, threshold: nil,
                               note: nil, parts: results)
        }
    }

    static func format(_ x: Double, _ decimals: Int = 4) -> String {
        guard x.isFinite else { return "—" }
        var s = String(format: "%.\(decimals)f", x)
        while s.contains("."), s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s == "-0" ? "0" : s
    }

    // MARK: output

    /// `claims.md`: one section per claim with its verdict and a table of its tests (interval, per-seed
    /// values, units), then how the intervals were made.
    public static func markdown(_ results: [ClaimResult], title: String = "Claims", decimals: Int = 4) -> String {
        var s = "# \(title)\n\n"
        s += "| claim | verdict |\n|---|---|\n"
        for r in results { s += "| \(r.name): \(r.statement) | **\(r.verdict.rawValue)** |\n" }
        for r in results {
            s += "\n## \(r.name) — \(r.verdict.rawValue)\n\n\(r.statement)\n\n"
            let tests = r.parts.isEmpty ? [r] : leaves(r)
            s += "| test | mean | interval | per seed | units per seed | verdict |\n|---|---|---|---|---|---|\n"
            for t in tests {
                if let e = t.estimate {
                    s += "| \(t.statement) | \(format(e.mean, decimals)) | [\(format(e.lo, decimals)), \(format(e.hi, decimals))] | "
                    s += e.perSeed.map { format($0, decimals) }.joined(separator: ", ") + " | "
                    s += e.counts.map(String.init).joined(separator: ", ") + " | \(t.verdict.rawValue) |\n"
                } else {
                    s += "| \(t.statement) | — | \(t.note ?? "—") | — | — | \(t.verdict.rawValue) |\n"
                }
            }
        }
        if let e = results.lazy.flatMap({ $0.parts.isEmpty ? [$0] : leaves($0) }).compactMap(\.estimate).first {
            s += "\nIntervals: \(Int((e.level * 100).rounded()))% percentile bootstrap, \(e.resamples) resamples, "
            s += e.pooling == .prompts ? "prompts (pairs) resampled within each seed, seeds kept; "
                                       : "seeds resampled, then prompts (pairs) within each drawn seed; "
            s += "the statistic is the mean over seeds of each seed's value. A claim holds when its whole interval is on the claimed side, "
            s += "fails when its whole interval is on the other side, and is inconclusive otherwise; an all-of claim holds when every test holds "
            s += "and fails when any fails.\n"
        }
        return s
    }

    /// The tests under an all-of claim, depth first.
    static func leaves(_ r: ClaimResult) -> [ClaimResult] { r.parts.isEmpty ? [r] : r.parts.flatMap(leaves) }

    /// The entry of `tables.json`: {claim: {verdict, statement, tests: {test statement: {verdict, mean, lo, hi, …}}}}.
    public static func json(_ results: [ClaimResult]) -> JSONValue {
        .object(results.map { r in
            var fields: [(key: String, value: JSONValue)] = [("verdict", .string(r.verdict.rawValue)), ("statement", .string(r.statement))]
            fields.append(("tests", .object(leaves(r).map { t in
                var f: [(key: String, value: JSONValue)] = [("verdict", .string(t.verdict.rawValue))]
                if let d = t.direction, let th = t.threshold { f += [("direction", .string(d.rawValue)), ("threshold", .number(th))] }
                if let e = t.estimate { f += e.jsonFields }
                if let n = t.note { f.append(("note", .string(n))) }
                return (t.statement, JSONValue.object(f))
            })))
            return (r.name, JSONValue.object(fields))
        })
    }
}

// MARK: - The paper's claims

/// One seed's tables for the paper's claims (a)–(e), as plain per-unit values.
public struct PaperSeedTables: Sendable {
    /// (a) Per pair of the training set: kept by the consensus (the clean set), and whether its human
    /// label agrees with the world's true overall preference (1, 0, ½ for a true tie).
    public var kept: [Bool]?
    public var agrees: [Double]?
    /// (b) suite → method → per-prompt overall score (the same prompts in the same order for every method).
    public var scores: [String: [String: [Double]]]
    /// (c) suite → per-prompt overall score of Semi-DPO iterations 0, 1, 2, … in order.
    public var iterations: [String: [[Double]]]
    /// (d) suite → per-prompt overall score of committees of increasing size (2, 3, 4, 5 members), in order.
    public var committees: [String: [[Double]]]
    /// (e) Per timestep anchor t: the per-pair correctness (1, 0, ½) on the clean test pairs (the same pairs at
    /// every anchor), or a single accuracy (then the interval comes from the seeds alone).
    public var anchors: [(t: Int, values: [Double])]

    public init(kept: [Bool]? = nil, agrees: [Double]? = nil, scores: [String: [String: [Double]]] = [:],
                iterations: [String: [[Double]]] = [:], committees: [String: [[Double]]] = [:], anchors: [(t: Int, values: [Double])] = []) {
        self.kept = kept; self.agrees = agrees; self.scores = scores; self.iterations = iterations
        self.committees = committees; self.anchors = anchors
    }
}

/// The paper's five claims as tests; which methods and timesteps they name.
public struct PaperClaims: Sendable {
    public var semi = "Semi-DPO"
    public var baselines = ["Diffusion-DPO", "Diffusion-KTO"]
    /// (a) "a minority": the kept share must be below this.
    public var minority = 0.5
    /// (e) anchors t > lateAfter are "late" (the paper's manual threshold rule changes at t > 650).
    public var lateAfter = 650
    public init() {}

    /// The claims the data supports, in order (a)…(e); a claim whose data no seed has is left out, one that
    /// some seeds lack is an error (naming the seed).
    ///
    /// - (a) all of: kept share < `minority`; agreement(kept) − agreement(rest) > 0 (two groups resampled apart).
    /// - (b) all of, per suite and baseline: Semi-DPO − baseline > 0 (paired per prompt).
    /// - (c) all of, per suite: iteration 1 − iteration 0 > 0; and (iteration 2 − iteration 1) −
    ///   (iteration 1 − iteration 0) < 0 (the per-prompt second difference, weights 1, −2, 1).
    /// - (d) all of, per suite: the least-squares slope of the per-prompt score on committee position k
    ///   (0, 1, …; sizes 2, 3, … members) > 0, i.e. per prompt Σ_k (k − k̄)·x_k / Σ_k (k − k̄)².
    /// - (e) mean accuracy over anchors t > `lateAfter` − mean over the other anchors < 0 (paired per pair).
    public func claims(_ seeds: [PaperSeedTables]) throws -> [Claim] {
        guard !seeds.isEmpty else { throw CoreError("paper claims: no seeds") }
        func present<T>(_ what: String, _ get: (PaperSeedTables) -> T?) throws -> [T]? {
            let got = seeds.map(get)
            if got.allSatisfy({ $0 == nil }) { return nil }
            if let s = got.firstIndex(where: { $0 == nil }) { throw CoreError("paper claims: seed \(s + 1) has no \(what) (seed \(got.firstIndex { $0 != nil }! + 1) has)") }
            return got.map { $0! }
        }
        func suites(_ what: String, _ tables: [[String: Any]]) throws -> [String] {
            let names = tables[0].keys.sorted()
            for (s, t) in tables.enumerated() where t.keys.sorted() != names {
                throw CoreError("paper claims: seed \(s + 1) has \(what) suites \(t.keys.sorted()), seed 1 has \(names)")
            }
            return names
        }
        func atSeed<T>(_ s: Int, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as CoreError { throw CoreError("seed \(s + 1): \(e.message)") }
        }
        var out: [Claim] = []

        // (a)
        if let kept = try present("'kept'", { $0.kept }) {
            guard let agrees = try present("'agrees'", { $0.agrees }) else { throw CoreError("paper claims: 'kept' needs 'agrees' (per pair)") }
            var share: [SeedSample] = [], cleaner: [SeedSample] = []
            for s in seeds.indices {
                guard kept[s].count == agrees[s].count else {
                    throw CoreError("paper claims: seed \(s + 1): 'kept' has \(kept[s].count) pairs, 'agrees' \(agrees[s].count)")
                }
                let k = zip(kept[s], agrees[s]).filter { $0.0 }.map(\.1), rest = zip(kept[s], agrees[s]).filter { !$0.0 }.map(\.1)
                guard !k.isEmpty, !rest.isEmpty else { throw CoreError("paper claims: seed \(s + 1): the consensus kept \(k.count) of \(kept[s].count) pairs; (a) needs both kept and rejected pairs") }
                share.append(.mean(kept[s].map { $0 ? 1 : 0 }))
                cleaner.append(.unpaired(k, rest))
            }
            out.append(.allOf(name: "(a)", statement: "the consensus keeps a minority of pairs, and their labels are cleaner", parts: [
                .test(name: "(a) minority", quantity: "share of pairs kept", samples: share, direction: .below, threshold: minority),
                .test(name: "(a) cleaner", quantity: "label agreement with the truth, kept − rest", samples: cleaner, direction: .above, threshold: 0),
            ]))
        }

        // (b)
        if seeds.contains(where: { !$0.scores.isEmpty }) {
            let names = try suites("'scores'", seeds.map { $0.scores })
            var parts: [Claim] = []
            for suite in names {
                for base in baselines {
                    let samples = try seeds.indices.map { s in
                        try atSeed(s) {
                            guard let a = seeds[s].scores[suite]?[semi] else { throw CoreError("scores of suite '\(suite)' have no method '\(semi)'") }
                            guard let b = seeds[s].scores[suite]?[base] else { throw CoreError("scores of suite '\(suite)' have no method '\(base)'") }
                            return try SeedSample.paired(a, b)
                        }
                    }
                    parts.append(.test(name: "(b) \(suite)", quantity: "\(suite): \(semi) − \(base)", samples: samples, direction: .above, threshold: 0))
                }
            }
            out.append(.allOf(name: "(b)", statement: "\(semi) beats \(baselines.joined(separator: " and ")) on the overall score on every suite", parts: parts))
        }

        // (c)
        if seeds.contains(where: { !$0.iterations.isEmpty }) {
            let names = try suites("'iterations'", seeds.map { $0.iterations })
            var parts: [Claim] = []
            for suite in names {
                let k = seeds[0].iterations[suite]!.count
                for (s, t) in seeds.enumerated() where t.iterations[suite]!.count != k {
                    throw CoreError("paper claims: seed \(s + 1) has \(t.iterations[suite]!.count) iterations on '\(suite)', seed 1 has \(k)")
                }
                guard k >= 2 else { throw CoreError("paper claims: (c) needs iterations 0 and 1 on '\(suite)', got \(k) iteration(s)") }
                parts.append(.test(name: "(c) \(suite) iteration 1", quantity: "\(suite): iteration 1 − iteration 0",
                                   samples: try seeds.indices.map { s in try atSeed(s) { try .contrast(Array(seeds[s].iterations[suite]![0...1]), weights: [-1, 1]) } },
                                   direction: .above, threshold: 0))
                if k >= 3 {
                    parts.append(.test(name: "(c) \(suite) iteration 2", quantity: "\(suite): (iteration 2 − iteration 1) − (iteration 1 − iteration 0)",
                                       samples: try seeds.indices.map { s in try atSeed(s) { try .contrast(Array(seeds[s].iterations[suite]![0...2]), weights: [1, -2, 1]) } },
                                       direction: .below, threshold: 0))
                }
            }
            out.append(.allOf(name: "(c)", statement: "iteration 1 beats iteration 0, and iteration 2 adds less than iteration 1", parts: parts))
        }

        // (d)
        if seeds.contains(where: { !$0.committees.isEmpty }) {
            let names = try suites("'committees'", seeds.map { $0.committees })
            var parts: [Claim] = []
            for suite in names {
                let k = seeds[0].committees[suite]!.count
                for (s, t) in seeds.enumerated() where t.committees[suite]!.count != k {
                    throw CoreError("paper claims: seed \(s + 1) has \(t.committees[suite]!.count) committees on '\(suite)', seed 1 has \(k)")
                }
                guard k >= 2 else { throw CoreError("paper claims: (d) needs at least 2 committee sizes on '\(suite)', got \(k)") }
                let mid = Double(k - 1) / 2
                let ss = (0..<k).reduce(0.0) { $0 + (Double($1) - mid) * (Double($1) - mid) }
                let w = (0..<k).map { (Double($0) - mid) / ss }
                parts.append(.test(name: "(d) \(suite)", quantity: "\(suite): slope of the score per committee member added",
                                   samples: try seeds.indices.map { s in try atSeed(s) { try .contrast(seeds[s].committees[suite]!, weights: w) } },
                                   direction: .above, threshold: 0))
            }
            out.append(.allOf(name: "(d)", statement: "larger committees do better", parts: parts))
        }

        // (e)
        if seeds.contains(where: { !$0.anchors.isEmpty }) {
            let ts = seeds[0].anchors.map(\.t)
            for (s, t) in seeds.enumerated() where t.anchors.map(\.t) != ts {
                throw CoreError("paper claims: seed \(s + 1) has anchors \(t.anchors.map(\.t)), seed 1 has \(ts)")
            }
            let late = ts.filter { $0 > lateAfter }.count, early = ts.count - late
            guard late > 0 && early > 0 else { throw CoreError("paper claims: (e) needs anchors on both sides of t = \(lateAfter), got \(ts)") }
            let w = ts.map { $0 > lateAfter ? 1 / Double(late) : -1 / Double(early) }
            out.append(.allOf(name: "(e)", statement: "accuracy falls at late timesteps", parts: [
                .test(name: "(e)", quantity: "accuracy at t > \(lateAfter) − accuracy at t ≤ \(lateAfter)",
                      samples: try seeds.indices.map { s in try atSeed(s) { try .contrast(seeds[s].anchors.map(\.values), weights: w) } },
                      direction: .below, threshold: 0),
            ]))
        }
        guard !out.isEmpty else { throw CoreError("paper claims: the seeds hold no data for any claim (kept/agrees, scores, iterations, committees, anchors)") }
        return out
    }
}

extension Estimate {
    /// The numbers of an interval cell in `tables.json`.
    public var jsonFields: [(key: String, value: JSONValue)] {
        func num(_ x: Double) -> JSONValue { x.isFinite ? .number(x) : .null }
        return [("mean", num(mean)), ("lo", num(lo)), ("hi", num(hi)), ("level", .number(level)),
                ("per_seed", .array(perSeed.map(num))), ("sd_over_seeds", num(sdOverSeeds)),
                ("n", .array(counts.map { .number(Double($0)) })), ("resamples", .number(Double(resamples))),
                ("pooling", .string(pooling.rawValue))] + (images.isEmpty ? [] : [("images", .array(images.map { .number(Double($0)) }))])
    }
}

extension ClaimChecker {
    /// Writes `<name>.md` (the Markdown above) into `directory` atomically and merges `json(results)` into
    /// its `tables.json` under `name`. Returns the two absolute paths.
    @discardableResult
    public static func write(_ results: [ClaimResult], name: String = "claims", directory: String, title: String = "Claims",
                             decimals: Int = 4) throws -> (markdown: String, json: String) {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
            throw CoreError("claims name '\(name)' must be a non-empty relative path inside the run directory")
        }
        let md = (directory as NSString).appendingPathComponent(name) + ".md"
        try AtomicFile.write(markdown(results, title: title, decimals: decimals), to: md)
        try TableFiles.merge(json(results), name: name, directory: directory)
        return (md, (directory as NSString).appendingPathComponent(TableFiles.jsonName))
    }
}
