// The evaluation API of issue 8: samples a prompt suite with fixed per-prompt seeds, scores every image
// with the reward committee, the oracle and the GenEval-like check, paired win rates, and table files.
import Foundation

/// One evaluation prompt and the index its sampling noise is drawn from (`SampleID(seed, seedIndex)`):
/// its position in the full suite (or list), so a `limit` never changes which noise a prompt gets.
public struct EvalPrompt: Sendable, Equatable {
    public let prompt: Prompt
    public let seedIndex: Int
    /// Which image of this prompt (0 = the only one of an evaluation without extra images): its noise is
    /// `SampleID(seed:, index: seedIndex, image:)`. A list with several images per prompt repeats the prompt.
    public let image: Int
    public init(prompt: Prompt, seedIndex: Int, image: Int = 0) { self.prompt = prompt; self.seedIndex = seedIndex; self.image = image }
    public var text: String { prompt.text }
}

/// Per-prompt scores of one model on one prompt list: `values[m][p]` is metric `metrics[m]` of prompt p.
public struct EvalScores: Sendable {
    public let prompts: [EvalPrompt]
    /// Metric names in column order: committee members (in committee order), then the oracle's
    /// `alignment`, `aesthetics`, `detail`, `overall` (the MPS role).
    public let metrics: [String]
    public let values: [[Double]]
    /// The oracle's GenEval-like exact check per prompt (count, shape, colour, position/relation).
    public let genevalPass: [Bool]
    /// The sampling seed and settings the images came from (for the record).
    public let seed: UInt64
    public let steps: Int
    public let guidance: Double?

    public init(prompts: [EvalPrompt], metrics: [String], values: [[Double]], genevalPass: [Bool], seed: UInt64,
                steps: Int, guidance: Double?) throws {
        guard metrics.count == values.count else { throw CoreError("eval scores: \(metrics.count) metrics but \(values.count) columns") }
        guard Set(metrics).count == metrics.count else { throw CoreError("eval scores: metric names repeat: \(metrics)") }
        for (m, v) in zip(metrics, values) where v.count != prompts.count {
            throw CoreError("eval scores: metric '\(m)' has \(v.count) values for \(prompts.count) prompts")
        }
        guard genevalPass.count == prompts.count else { throw CoreError("eval scores: \(genevalPass.count) GenEval checks for \(prompts.count) prompts") }
        self.prompts = prompts; self.metrics = metrics; self.values = values; self.genevalPass = genevalPass
        self.seed = seed; self.steps = steps; self.guidance = guidance
    }

    public var count: Int { prompts.count }

    /// The per-prompt column of `metric` (error naming the known metrics otherwise).
    public func column(_ metric: String) throws -> [Double] {
        guard let m = metrics.firstIndex(of: metric) else {
            throw CoreError("unknown metric '\(metric)' (known: \(metrics.joined(separator: ", ")))")
        }
        return values[m]
    }

    /// Metric → mean over prompts, in column order.
    public var means: [(metric: String, mean: Double)] { zip(metrics, values).map { ($0, Metrics.mean($1)) } }

    /// GenEval-like pass rates: one entry per category present (in `GenEvalCategory` order), then
    /// `overall` = the mean of the category rates (GenEval's overall). Without categories (not the
    /// geneval suite) only `overall` = the share of prompts passing.
    /// With several images per prompt a category's rate is the mean over its prompts of each prompt's
    /// share of passing images (= the share of its images passing when every prompt has as many images).
    public var genevalRates: [(category: String, rate: Double)] {
        var out: [(String, Double)] = []
        let passes = genevalPasses
        for c in GenEvalCategory.allCases {
            guard let perPrompt = passes[c.rawValue] else { continue }
            out.append((c.rawValue, Metrics.mean(perPrompt.map { Metrics.mean($0) })))
        }
        if out.isEmpty {
            out.append(("overall", count == 0 ? .nan : Double(genevalPass.filter { $0 }.count) / Double(count)))
        } else {
            out.append(("overall", Metrics.mean(out.map(\.1))))
        }
        return out
    }

    /// Paired win rates of `self` (A) over `other` (B) per metric: the share of prompts where A
    /// scores strictly higher (ties are not wins). Both must score the same prompts with the same
    /// noise; `metrics` defaults to every metric both have, in A's order.
    public func winRates(over other: EvalScores, metrics wanted: [String]? = nil) throws -> [(metric: String, rate: Double)] {
        guard prompts.count == other.prompts.count else {
            throw CoreError("win rate: A scored \(prompts.count) prompts, B \(other.prompts.count); evaluate both on the same suite and limit")
        }
        if let i = prompts.indices.first(where: { prompts[$0] != other.prompts[$0] }) {
            throw CoreError("win rate: prompt \(i + 1) differs (A '\(prompts[i].text)' #\(prompts[i].seedIndex), B '\(other.prompts[i].text)' #\(other.prompts[i].seedIndex))")
        }
        guard seed == other.seed else { throw CoreError("win rate: A was sampled with seed \(seed), B with seed \(other.seed); use one seed so both start from the same noise") }
        let names = wanted ?? metrics.filter { other.metrics.contains($0) }
        guard !names.isEmpty else { throw CoreError("win rate: A and B share no metric") }
        return try names.map { m in
            guard metrics.contains(m) else { throw CoreError("win rate: A has no metric '\(m)' (known: \(metrics.joined(separator: ", ")))") }
            guard other.metrics.contains(m) else { throw CoreError("win rate: B has no metric '\(m)' (known: \(other.metrics.joined(separator: ", ")))") }
            return (m, try Metrics.winRate(try column(m), over: try other.column(m)))
        }
    }

    /// The per-prompt table (prompt × metric), with the noise index and the GenEval check.
    public var perPromptTable: ResultTable {
        // The `image` column only when some prompt has several images, so one-image files keep their layout.
        let images = prompts.contains { $0.image != 0 }
        var t = ResultTable(title: "Per-prompt scores (seed \(seed), \(steps) steps)",
                            columns: ["prompt", "seed_index"] + (images ? ["image"] : []) + ["category"] + metrics + ["geneval_pass"])
        for p in prompts.indices {
            t.addRow([.text(prompts[p].text), .number(Double(prompts[p].seedIndex), decimals: 0)]
                     + (images ? [.number(Double(prompts[p].image), decimals: 0)] : [])
                     + [.text(prompts[p].prompt.category?.rawValue ?? "")]
                     + values.map { .number($0[p], decimals: 4) } + [.number(genevalPass[p] ? 1 : 0, decimals: 0)])
        }
        return t
    }
}

public enum Evaluation {
    /// The suites `suitePrompts` knows, in the paper's order of roles.
    public static let suiteNames = ["pickapic", "hpsv2", "parti", "geneval"]
    /// The oracle's metric names (the last is the equal-weight overall, the MPS role).
    public static let oracleMetrics = ["alignment", "aesthetics", "detail", "overall"]

    /// A suite of `PromptSuites(seed: worldSeed, suiteSize:)`. `limit` keeps the first `limit`
    /// prompts — for geneval the first `limit` of each category, so every category stays present.
    /// Seed indices are positions in the full suite.
    ///
    /// `minImages` (geneval only; GenEval samples several images per prompt): each category's prompts get
    /// ⌈minImages / prompts in the category⌉ images each (images 0, 1, …, each prompt's images together),
    /// so every category has ≥ minImages images with the fewest images per prompt; 1 (or nil) = one image.
    public static func suitePrompts(_ name: String, worldSeed: UInt64 = 0, suiteSize: Int = 500, limit: Int? = nil,
                                    minImages: Int? = nil) throws -> [EvalPrompt] {
        guard suiteSize >= 1 else { throw CoreError("suite size must be ≥ 1 (got \(suiteSize))") }
        if let limit, limit < 1 { throw CoreError("limit must be ≥ 1 (got \(limit))") }
        if let minImages {
            guard minImages >= 1 else { throw CoreError("min images must be ≥ 1 (got \(minImages))") }
            guard name == "geneval" || minImages == 1 else { throw CoreError("min images: only the geneval suite samples several images per prompt (suite '\(name)')") }
        }
        let s = PromptSuites(seed: worldSeed, suiteSize: suiteSize)
        let all: [Prompt]
        switch name {
        case "pickapic": all = s.pickapicTest
        case "hpsv2": all = s.hpsv2
        case "parti": all = s.parti
        case "geneval":
            var taken: [GenEvalCategory: Int] = [:]
            var out: [EvalPrompt] = []
            for (i, p) in s.geneval.enumerated() {
                let c = p.category!
                if let limit, taken[c, default: 0] >= limit { continue }
                taken[c, default: 0] += 1
                out.append(EvalPrompt(prompt: p, seedIndex: i))
            }
            guard let minImages, minImages > 1 else { return out }
            return out.flatMap { p -> [EvalPrompt] in
                let k = (minImages + taken[p.prompt.category!]! - 1) / taken[p.prompt.category!]!
                return (0..<k).map { EvalPrompt(prompt: p.prompt, seedIndex: p.seedIndex, image: $0) }
            }
        default: throw CoreError("unknown suite '\(name)' (\(suiteNames.joined(separator: ", ")), or a list of prompts)")
        }
        return all.prefix(limit ?? all.count).enumerated().map { EvalPrompt(prompt: $1, seedIndex: $0) }
    }

    /// Prompts from texts of the world's grammar (error naming the element that does not parse);
    /// the seed index is the position in the list.
    public static func listPrompts(_ texts: [String], limit: Int? = nil) throws -> [EvalPrompt] {
        guard !texts.isEmpty else { throw CoreError("the prompt list is empty") }
        if let limit, limit < 1 { throw CoreError("limit must be ≥ 1 (got \(limit))") }
        return try texts.prefix(limit ?? texts.count).enumerated().map { i, t in
            do { return EvalPrompt(prompt: try Prompt(parsing: t), seedIndex: i) } catch let e as CoreError {
                throw CoreError("prompt \(i + 1) ('\(t)'): \(e.message)")
            }
        }
    }

    /// Samples one image per prompt, image p from `SampleID(seed, prompts[p].seedIndex, prompts[p].image)`: two models
    /// (or two runs) get identical starting noise per prompt. Returns (N, C, S, S) in [−1, 1].
    /// Under MPI each rank samples its block of prompts (`Cluster.block`) and the images are gathered
    /// in prompt order on every rank (an image depends only on its prompt, its noise and the model).
    public static func generate(model: DiffusionModel, prompts: [EvalPrompt], seed: UInt64, sampler: SamplerConfig) throws -> Tensor {
        guard !prompts.isEmpty else { throw CoreError("generate: no prompts") }
        let mine = Cluster.block(of: prompts.count)
        let part = Array(prompts[mine])
        let local = part.isEmpty ? [] : try generate(denoiser: model, tokens: model.tokenize(part.map(\.text)), imageShape: model.imageShape,
                                                     prompts: part, seed: seed, sampler: sampler).data
        guard Cluster.size > 1 else { return Tensor(shape: [prompts.count] + model.imageShape, data: local) }
        let all = Cluster.allgather(local).flatMap { $0 }
        guard all.count == prompts.count * model.imageShape.reduce(1, *) else {
            throw CoreError("generate: gathered \(all.count) values from the ranks for \(prompts.count) images")
        }
        return Tensor(shape: [prompts.count] + model.imageShape, data: all)
    }

    /// `generate` for any denoiser with its token rows (one per prompt): the noise of row p is
    /// `SampleID(seed, prompts[p].seedIndex, prompts[p].image)`, whatever the denoiser.
    public static func generate(denoiser: Denoiser, tokens: TokenBatch, imageShape: [Int], prompts: [EvalPrompt], seed: UInt64,
                                sampler: SamplerConfig) throws -> Tensor {
        guard !prompts.isEmpty else { throw CoreError("generate: no prompts") }
        return try Sampler.sample(denoiser, tokens: tokens, ids: prompts.map { SampleID(seed: seed, index: $0.seedIndex, image: $0.image) },
                                  imageShape: imageShape, config: sampler)
    }

    /// A reward model's score of each single image ((N, 3, S, S) flat) for its prompt, in batches —
    /// the same forward as the pair path (`scorePairs`), one image per row.
    public static func scoreImages(_ model: RewardModel, images: [Float], texts: [String], batchSize: Int = 256) throws -> [Float] {
        guard batchSize >= 1 else { throw CoreError("reward scoring: batchSize must be ≥ 1, got \(batchSize)") }
        let s = model.config.imageSize, d = 3 * s * s, n = texts.count
        guard images.count == n * d else {
            throw CoreError("reward scoring: \(n) prompts need \(n) images of 3×\(s)×\(s) (\(n * d) values), got \(images.count)")
        }
        var out = [Float](repeating: 0, count: n)
        try noGrad {
            var start = 0
            while start < n {
                let end = min(n, start + batchSize)
                let tokens = try RewardTokens(texts: Array(texts[start..<end]))
                let x = Tensor(shape: [end - start, 3, s, s], data: Array(images[(start * d)..<(end * d)]))
                let r = model(x, tokens: tokens).data
                for i in 0..<(end - start) { out[start + i] = r[i] }
                start = end
            }
        }
        return out
    }

    /// Scores images ((N, 3, S, S) flat, prompt order) with each committee member, the oracle per
    /// dimension and overall, and the GenEval-like check. Oracle work is split over `threads`.
    /// Under MPI each rank scores its block of prompts and the scores are gathered in prompt order on
    /// every rank (every score is a function of one image and its prompt).
    public static func score(images: [Float], prompts: [EvalPrompt], imageSize: Int, committee: Committee?,
                             seed: UInt64, steps: Int, guidance: Double?, threads: Int = 2) throws -> EvalScores {
        let n = prompts.count, d = 3 * imageSize * imageSize
        guard n >= 1 else { throw CoreError("score: no prompts") }
        guard images.count == n * d else { throw CoreError("score: \(n) prompts need \(n * d) values (3×\(imageSize)×\(imageSize) each), got \(images.count)") }
        guard Cluster.size > 1 else {
            return try scoreLocal(images: images, prompts: prompts, imageSize: imageSize, committee: committee,
                                  seed: seed, steps: steps, guidance: guidance, threads: threads)
        }
        // Per rank: its block's values, metric by metric, then its GenEval checks as 0/1.
        let metrics = (committee?.members.map(\.name) ?? []) + oracleMetrics
        let mine = Cluster.block(of: n)
        var local: [Double] = []
        if !mine.isEmpty {
            let part = try scoreLocal(images: Array(images[(mine.lowerBound * d)..<(mine.upperBound * d)]), prompts: Array(prompts[mine]),
                                      imageSize: imageSize, committee: committee, seed: seed, steps: steps, guidance: guidance, threads: threads)
            guard part.metrics == metrics else { throw CoreError("score: metrics \(part.metrics), expected \(metrics)") }
            local = part.values.flatMap { $0 } + part.genevalPass.map { $0 ? 1 : 0 }
        }
        var values = [[Double]](repeating: [], count: metrics.count), geneval: [Bool] = []
        for (r, part) in Cluster.allgather(local).enumerated() {
            let k = Cluster.block(of: n, rank: r).count
            guard part.count == (metrics.count + 1) * k else { throw CoreError("score: rank \(r) sent \(part.count) values for \(k) prompts") }
            for m in metrics.indices { values[m] += part[(m * k)..<((m + 1) * k)] }
            geneval += part[(metrics.count * k)...].map { $0 != 0 }
        }
        return try EvalScores(prompts: prompts, metrics: metrics, values: values, genevalPass: geneval,
                              seed: seed, steps: steps, guidance: guidance)
    }

    /// `score` in this process alone.
    private static func scoreLocal(images: [Float], prompts: [EvalPrompt], imageSize: Int, committee: Committee?,
                                   seed: UInt64, steps: Int, guidance: Double?, threads: Int) throws -> EvalScores {
        let n = prompts.count, d = 3 * imageSize * imageSize
        var metrics: [String] = [], values: [[Double]] = []
        for member in committee?.members ?? [] {
            guard !oracleMetrics.contains(member.name) else {
                throw CoreError("committee member '\(member.name)' has the name of an oracle metric; rename its checkpoint")
            }
            guard member.model.config.imageSize == imageSize else {
                throw CoreError("committee member '\(member.name)' scores \(member.model.config.imageSize)-pixel images, the model makes \(imageSize)")
            }
            metrics.append(member.name)
            values.append(try scoreImages(member.model, images: images, texts: prompts.map(\.text)).map(Double.init))
        }
        let oracle = try Oracle(size: imageSize)
        var reports = [OracleReport?](repeating: nil, count: n)
        var failure: Error?
        let lock = NSLock()
        let parts = max(1, min(threads, n))
        reports.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            let body = { (t: Int) in
                for i in (t * n / parts)..<((t + 1) * n / parts) {
                    do { base[i] = try oracle.evaluate(Array(images[(i * d)..<((i + 1) * d)]), scene: prompts[i].prompt.scene) } catch {
                        lock.lock(); if failure == nil { failure = error }; lock.unlock()
                    }
                }
            }
            if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
        }
        if let failure { throw failure }
        let r = reports.map { $0! }
        metrics += oracleMetrics
        values.append(r.map { Double($0.scores.alignment) })
        values.append(r.map { Double($0.scores.aesthetics) })
        values.append(r.map { Double($0.scores.detail) })
        values.append(r.map { Double($0.scores.overall) })
        return try EvalScores(prompts: prompts, metrics: metrics, values: values, genevalPass: r.map(\.genevalPass),
                              seed: seed, steps: steps, guidance: guidance)
    }

    /// Generates and scores: the whole evaluation of one model on one prompt list.
    public static func run(model: DiffusionModel, prompts: [EvalPrompt], committee: Committee?, seed: UInt64,
                           sampler: SamplerConfig, threads: Int = 2) throws -> EvalScores {
        guard model.config.imageChannels == 3 else {
            throw CoreError("the oracle and reward models score RGB images, the model makes \(model.config.imageChannels) channels")
        }
        let images = try generate(model: model, prompts: prompts, seed: seed, sampler: sampler)
        return try score(images: images.data, prompts: prompts, imageSize: model.config.imageSize, committee: committee,
                         seed: seed, steps: sampler.steps, guidance: sampler.guidanceScale, threads: threads)
    }
}

// MARK: - Table files

/// Writes result tables into a run directory: `<name>.md` and `<name>.csv` (atomically), and merges
/// every number into the run's `tables.json` = {table name: {row key: {column: number}}} (rewritten
/// atomically each time). The row key is the row's text cells joined by " / ".
public enum TableFiles {
    public static let jsonName = "tables.json"
    private static let lock = NSLock()

    /// The row keys and numeric cells of `table` (error on a repeated row key): a number as a JSON number,
    /// an interval cell as {mean, lo, hi, level, per_seed, sd_over_seeds, n, resamples, pooling}.
    public static func numbers(of table: ResultTable) throws -> [(row: String, cells: [(column: String, value: JSONValue)])] {
        var seen = Set<String>()
        return try table.rows.enumerated().map { i, row in
            var labels: [String] = [], cells: [(String, JSONValue)] = []
            for (c, cell) in row.enumerated() {
                switch cell {
                case .text(let s): labels.append(s)
                case .number(let v, _): cells.append((table.columns[c], v.isFinite ? .number(v) : .null))
                case .estimate(let e, _): cells.append((table.columns[c], .object(e.jsonFields)))
                case .empty: break
                }
            }
            let key = labels.isEmpty ? "row \(i + 1)" : labels.joined(separator: " / ")
            guard seen.insert(key).inserted else { throw CoreError("table '\(table.title)': row key '\(key)' repeats (row \(i + 1)); make the text cells unique") }
            return (key, cells)
        }
    }

    /// Writes `<name>.md`, `<name>.csv` under `directory` and merges the numbers into
    /// `directory/tables.json` under key `name`. Returns the three absolute paths.
    @discardableResult
    public static func write(_ table: ResultTable, name: String, directory: String) throws -> (markdown: String, csv: String, json: String) {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
            throw CoreError("table name '\(name)' must be a non-empty relative path inside the run directory")
        }
        let rows = try numbers(of: table)
        let base = (directory as NSString).appendingPathComponent(name)
        let md = base + ".md", csv = base + ".csv"
        let json = (directory as NSString).appendingPathComponent(jsonName)
        try AtomicFile.write(table.markdown, to: md)
        try AtomicFile.write(table.csv, to: csv)
        try merge(.object(rows.map { r in (r.row, JSONValue.object(r.cells.map { ($0.column, $0.value) })) }), name: name, directory: directory)
        return (md, csv, json)
    }

    /// Sets `tables.json`[name] = entry under `directory`, keeping the other entries (rewritten atomically).
    public static func merge(_ entry: JSONValue, name: String, directory: String) throws {
        let json = (directory as NSString).appendingPathComponent(jsonName)
        lock.lock(); defer { lock.unlock() }
        var top: [(key: String, value: JSONValue)] = []
        if FileManager.default.fileExists(atPath: json) {
            guard case let .object(m) = try JSON.parse(file: json) else { throw CoreError("\(json): expected a JSON object of tables") }
            top = m
        }
        if let i = top.firstIndex(where: { $0.key == name }) { top[i].value = entry } else { top.append((name, entry)) }
        try AtomicFile.write(JSON.serialize(.object(top), indent: 2) + "\n", to: json)
    }
}

// MARK: - Comparison grid

extension Evaluation {
    /// The paper's Figure 3: the same prompts and seeds sampled by several models, in one picture.
    /// One block of rows per prompt, one row per model inside it (labelled `model: prompt`), one
    /// column per seed; image (model, p, s) starts from `SampleID(seed: s, index: p)` for every model,
    /// so differences within a block come from the models alone.
    public static func comparisonGrid(models: [(name: String, model: DiffusionModel)], prompts: [String], seeds: [UInt64],
                                      sampler: SamplerConfig, scale: Int = 4) throws -> RGBImage {
        guard !models.isEmpty else { throw CoreError("comparison grid: no models") }
        guard !prompts.isEmpty, !seeds.isEmpty else { throw CoreError("comparison grid: needs at least one prompt and one seed") }
        let shape = models[0].model.imageShape
        guard shape[0] == 3 else { throw CoreError("comparison grid: the models make \(shape[0])-channel images, not RGB") }
        if let other = models.first(where: { $0.model.imageShape != shape }) {
            throw CoreError("comparison grid: model '\(other.name)' makes \(other.model.imageShape) images, '\(models[0].name)' \(shape)")
        }
        let samples = try models.map { try $0.model.sampleGrid(prompts: prompts, seeds: seeds, config: sampler).data }
        let per = shape.reduce(1, *), row = seeds.count * per
        var data: [Float] = []
        data.reserveCapacity(models.count * prompts.count * row)
        var labels: [String] = []
        for p in prompts.indices {
            for (m, entry) in models.enumerated() {
                data += samples[m][(p * row)..<((p + 1) * row)]
                labels.append("\(entry.name): \(prompts[p].isEmpty ? "(null)" : prompts[p])")
            }
        }
        let images = Tensor(shape: [models.count * prompts.count * seeds.count] + shape, data: data)
        return try Sampler.grid(images, columns: seeds.count, scale: scale, rowLabels: labels)
    }
}
