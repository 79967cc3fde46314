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
    /// Each seed: category → per prompt → its images' passes (1 or 0). A prompt's value is its images' pass
    /// rate, and the bootstrap resamples prompts (seeds, then prompts within each seed), never single images:
    /// the images of one prompt share its text and are not independent. Columns = labelColumns + the
    /// categories of the first row (in `GenEvalCategory` order, then any others sorted) + "overall"; every
    /// row and seed must have them, with the same prompts and images per category. After the rows, four
    /// rows state what backs each column: "prompts" (per seed), "images per prompt" (a range "a–b" when
    /// the prompts differ), "images" (per seed) and "seeds".
    public static func geneval(title: String, labelColumns: [String], rows: [(labels: [String], seeds: [GenevalPasses])], percent: Bool = true,
                               config: BootstrapConfig = BootstrapConfig(), decimals: Int = 1) throws -> ResultTable {
        guard let first = rows.first?.seeds.first else { throw CoreError("GenEval table: no rows (or a row without seeds)") }
        guard !labelColumns.isEmpty else { throw CoreError("GenEval table: give at least one label column (it also labels the rows prompts, images, seeds)") }
        let order = GenEvalCategory.allCases.map(\.rawValue)
        let cats = first.keys.filter { order.contains($0) }.sorted { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! }
            + first.keys.filter { !order.contains($0) }.sorted()
        guard !cats.isEmpty else { throw CoreError("GenEval table: the first row has no categories") }
        let shape = { (seed: GenevalPasses, c: String) in seed[c]!.map(\.count) }     // images per prompt of a category
        var t = ResultTable(title: title, columns: labelColumns + cats + ["overall"])
        let k = percent ? 100.0 : 1.0
        for r in rows {
            let name = r.labels.joined(separator: " / ")
            guard r.labels.count == labelColumns.count else { throw CoreError("row '\(name)': \(r.labels.count) labels for \(labelColumns.count) label columns") }
            guard r.seeds.count == rows[0].seeds.count else {
                throw CoreError("row '\(name)': \(r.seeds.count) seeds, the first row has \(rows[0].seeds.count)")
            }
            for (s, seed) in r.seeds.enumerated() {
                guard Set(seed.keys) == Set(cats) else { throw CoreError("row '\(name)', seed \(s + 1): categories \(seed.keys.sorted()), the table has \(cats.sorted())") }
                for c in cats {
                    if let bad = seed[c]!.firstIndex(where: { $0.isEmpty }) { throw CoreError("row '\(name)', seed \(s + 1), \(c): prompt \(bad + 1) has no images") }
                    guard shape(seed, c) == shape(first, c) else {
                        throw CoreError("row '\(name)', seed \(s + 1), \(c): \(seed[c]!.count) prompts with \(seed[c]!.map(\.count).reduce(0, +)) images, "
                                        + "the first row's first seed has \(first[c]!.count) with \(first[c]!.map(\.count).reduce(0, +)); every cell must score the same prompts and images")
                    }
                }
            }
            var cells: [ResultTable.Cell] = r.labels.map { .text($0) }
            do {
                let perPrompt = r.seeds.map { seed in seed.mapValues { $0.map { Metrics.mean($0) } } }
                for c in cats {
                    var e = try Statistics.bootstrapMean(try columns(perPrompt, c, row: name), config: config).scaled(by: k)
                    e.images = r.seeds.map { $0[c]!.map(\.count).reduce(0, +) }
                    cells.append(.estimate(e, decimals: decimals))
                }
                let overall = perPrompt.map { seed in SeedSample(strata: cats.map { Stratum(seed[$0]!, weight: 1 / Double(cats.count)) }) }
                var e = try Statistics.bootstrap(overall, config: config).scaled(by: k)
                e.images = r.seeds.map { seed in cats.map { seed[$0]!.map(\.count).reduce(0, +) }.reduce(0, +) }
                cells.append(.estimate(e, decimals: decimals))
            } catch let e as CoreError {
                throw CoreError(e.message.hasPrefix("row '") ? e.message : "row '\(name)': \(e.message)")
            }
            t.addRow(cells)
        }
        func count(_ n: Int) -> ResultTable.Cell { .number(Double(n), decimals: 0) }
        func perPrompt(_ counts: [Int]) -> ResultTable.Cell {
            let lo = counts.min()!, hi = counts.max()!
            return lo == hi ? count(lo) : .text("\(lo)–\(hi)")
        }
        func footer(_ label: String, _ cells: [ResultTable.Cell]) {
            t.addRow([.text(label)] + [ResultTable.Cell](repeating: .empty, count: labelColumns.count - 1) + cells)
        }
        let shapes: [[Int]] = cats.map { shape(first, $0) }
        let all: [Int] = shapes.flatMap { $0 }
        footer("prompts", shapes.map { count($0.count) } + [count(all.count)])
        footer("images per prompt", shapes.map(perPrompt) + [perPrompt(all)])
        footer("images", shapes.map { count($0.reduce(0, +)) } + [count(all.reduce(0, +))])
        footer("seeds", [ResultTable.Cell](repeating: count(rows[0].seeds.count), count: cats.count + 1))
        return t
    }

    /// `geneval` with one image per prompt: each seed is category → 1 (pass) or 0 per prompt.
    public static func geneval(title: String, labelColumns: [String], rows: [(labels: [String], seeds: [SeedScores])], percent: Bool = true,
                               config: BootstrapConfig = BootstrapConfig(), decimals: Int = 1) throws -> ResultTable {
        try geneval(title: title, labelColumns: labelColumns, rows: rows.map { ($0.labels, $0.seeds.map { $0.mapValues { $0.map { [$0] } } }) },
                    percent: percent, config: config, decimals: decimals)
    }
}

/// One seed's GenEval-like checks: category → per prompt (in prompt order) → 1 (pass) or 0 per image of that prompt.
public typealias GenevalPasses = [String: [[Double]]]

extension EvalScores {
    /// The GenEval-like check per category: category → per prompt, in order of first appearance → its
    /// images' passes (1 or 0) in list order; one image per prompt unless the list repeats prompts
    /// (`Evaluation.suitePrompts(minImages:)`). A prompt is its (seed index, text). Empty for a suite
    /// without categories.
    public var genevalPasses: GenevalPasses {
        var out: GenevalPasses = [:]
        var slot: [String: [String: Int]] = [:]            // category → prompt key → position in out[category]
        for p in prompts.indices {
            guard let c = prompts[p].prompt.category?.rawValue else { continue }
            let key = "\(prompts[p].seedIndex) \(prompts[p].text)"
            if let i = slot[c]?[key] { out[c]![i].append(genevalPass[p] ? 1 : 0); continue }
            slot[c, default: [:]][key] = out[c, default: []].count
            out[c, default: []].append([genevalPass[p] ? 1 : 0])
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
