// Paper tables with intervals from per-seed, per-prompt scores: mean scores (Tables 1, 4, 5) and paired
// win rates with the difference and a permutation p-value (Table 2), pooled over seeds.
import Foundation

/// One seed's per-prompt scores of one method on one suite: metric → scores in prompt order.
public typealias SeedScores = [String: [Double]]

public enum IntervalTables {
    /// Per-seed columns of `metric` (error naming the row, seed and the metrics it has).
    static func columns(_ seeds: [SeedScores], _ metric: String, row: String, side: String = "") throws -> [[Double]] {
        guard !seeds.isEmpty else { throw CoreError("row '\(row)'\(side): no seeds") }
        return try seeds.enumerated().map { s, scores in
            guard let c = scores[metric] else {
                throw CoreError("row '\(row)'\(side), seed \(s + 1): no metric '\(metric)' (has \(scores.keys.sorted().joined(separator: ", ")))")
            }
            return c
        }
    }

    /// Mean of each metric per row with its interval: columns = labelColumns + metrics.
    public static func means(title: String, labelColumns: [String], metrics: [String], rows: [(labels: [String], seeds: [SeedScores])],
                             config: BootstrapConfig = BootstrapConfig(), decimals: Int = 3) throws -> ResultTable {
        var t = ResultTable(title: title, columns: labelColumns + metrics)
        for r in rows {
            guard r.labels.count == labelColumns.count else {
                throw CoreError("row '\(r.labels.joined(separator: " / "))': \(r.labels.count) labels for \(labelColumns.count) label columns")
            }
            let name = r.labels.joined(separator: " / ")
            t.addRow(r.labels.map { .text($0) } + (try metrics.map { m in
                do { return .estimate(try Statistics.bootstrapMean(try columns(r.seeds, m, row: name), config: config), decimals: decimals) } catch let e as CoreError {
                    throw CoreError(e.message.hasPrefix("row '") ? e.message : "row '\(name)', metric '\(m)': \(e.message)")
                }
            }))
        }
        return t
    }

    /// Paired win rate of A over B per metric (ties count `tie`; ×100 when `percent`), and, for `testMetric`,
    /// the paired difference A − B with its interval and the permutation-test p-value:
    /// columns = labelColumns + metrics (+ "Δ <testMetric>", "p <testMetric>").
    public static func winRates(title: String, labelColumns: [String], metrics: [String],
                                rows: [(labels: [String], a: [SeedScores], b: [SeedScores])], tie: Double = 0.5, percent: Bool = true,
                                testMetric: String? = "overall", config: BootstrapConfig = BootstrapConfig(), permutationResamples: Int = 10_000,
                                decimals: Int = 1, differenceDecimals: Int = 3) throws -> ResultTable {
        var cols = labelColumns + metrics
        if let m = testMetric { cols += ["Δ \(m)", "p \(m)"] }
        var t = ResultTable(title: title, columns: cols)
        for r in rows {
            guard r.labels.count == labelColumns.count else {
                throw CoreError("row '\(r.labels.joined(separator: " / "))': \(r.labels.count) labels for \(labelColumns.count) label columns")
            }
            let name = r.labels.joined(separator: " / ")
            guard r.a.count == r.b.count else { throw CoreError("row '\(name)': A has \(r.a.count) seeds, B \(r.b.count)") }
            func wrap<T>(_ m: String, _ body: () throws -> T) throws -> T {
                do { return try body() } catch let e as CoreError {
                    throw CoreError(e.message.hasPrefix("row '") ? e.message : "row '\(name)', metric '\(m)': \(e.message)")
                }
            }
            var cells: [ResultTable.Cell] = r.labels.map { .text($0) }
            for m in metrics {
                cells.append(try wrap(m) {
                    let e = try Statistics.winRate(try columns(r.a, m, row: name, side: " (A)"), over: try columns(r.b, m, row: name, side: " (B)"),
                                                   tie: tie, config: config)
                    return .estimate(percent ? e.scaled(by: 100) : e, decimals: decimals)
                })
            }
            if let m = testMetric {
                let a = try wrap(m) { try columns(r.a, m, row: name, side: " (A)") }, b = try wrap(m) { try columns(r.b, m, row: name, side: " (B)") }
                cells.append(try wrap(m) { .estimate(try Statistics.bootstrapDifference(a, b, config: config), decimals: differenceDecimals) })
                let p = try wrap(m) { try Statistics.permutationTest(zip(a, b).map { zip($0, $1).map { $0 - $1 } }, resamples: permutationResamples, seed: config.seed).p }
                cells.append(.number(p, decimals: 4))
            }
            t.addRow(cells)
        }
        return t
    }
}

extension IntervalTables {
    /// GenEval-like pass rates per category with intervals, and `overall` = the mean of the category rates
    /// (GenEval's overall; bootstrapped as strata of weight 1/K, each category's prompts resampled apart).
    /// Each seed: category → per-prompt pass (1 or 0). Columns = labelColumns + the categories of the first
    /// row (in `GenEvalCategory` order, then any others sorted) + "overall"; every row and seed must have them.
    public static func geneval(title: String, labelColumns: [String], rows: [(labels: [String], seeds: [SeedScores])], percent: Bool = true,
                               config: BootstrapConfig = BootstrapConfig(), decimals: Int = 1) throws -> ResultTable {
        guard let first = rows.first?.seeds.first else { throw CoreError("GenEval table: no rows (or a row without seeds)") }
        let order = GenEvalCategory.allCases.map(\.rawValue)
        let cats = first.keys.filter { order.contains($0) }.sorted { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! }
            + first.keys.filter { !order.contains($0) }.sorted()
        guard !cats.isEmpty else { throw CoreError("GenEval table: the first row has no categories") }
        var t = ResultTable(title: title, columns: labelColumns + cats + ["overall"])
        let k = percent ? 100.0 : 1.0
        for r in rows {
            let name = r.labels.joined(separator: " / ")
            guard r.labels.count == labelColumns.count else { throw CoreError("row '\(name)': \(r.labels.count) labels for \(labelColumns.count) label columns") }
            for (s, seed) in r.seeds.enumerated() where Set(seed.keys) != Set(cats) {
                throw CoreError("row '\(name)', seed \(s + 1): categories \(seed.keys.sorted()), the table has \(cats.sorted())")
            }
            var cells: [ResultTable.Cell] = r.labels.map { .text($0) }
            do {
                for c in cats { cells.append(.estimate(try Statistics.bootstrapMean(try columns(r.seeds, c, row: name), config: config).scaled(by: k), decimals: decimals)) }
                let overall = r.seeds.map { seed in SeedSample(strata: cats.map { Stratum(seed[$0]!, weight: 1 / Double(cats.count)) }) }
                cells.append(.estimate(try Statistics.bootstrap(overall, config: config).scaled(by: k), decimals: decimals))
            } catch let e as CoreError {
                throw CoreError(e.message.hasPrefix("row '") ? e.message : "row '\(name)': \(e.message)")
            }
            t.addRow(cells)
        }
        return t
    }
}

extension EvalScores {
    /// The GenEval-like check per category: category → 1 (pass) or 0 per prompt of that category, in prompt
    /// order (empty for a suite without categories).
    public var genevalPasses: SeedScores {
        var out: SeedScores = [:]
        for p in prompts.indices {
            guard let c = prompts[p].prompt.category else { continue }
            out[c.rawValue, default: []].append(genevalPass[p] ? 1 : 0)
        }
        return out
    }
}

extension Estimate {
    /// The same estimate in other units (e.g. ×100 for a percentage): mean, lo, hi and per-seed values scaled.
    public func scaled(by k: Double) -> Estimate {
        var e = self
        e.mean *= k; e.lo *= k; e.hi *= k
        e.perSeed = perSeed.map { $0 * k }
        if k < 0 { swap(&e.lo, &e.hi) }
        return e
    }
}
