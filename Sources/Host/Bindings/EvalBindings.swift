// semidpo.eval: evaluate a model on a prompt suite (committee, oracle, GenEval-like scores per prompt),
// paired win rates between two evaluations, and result tables written as Markdown, CSV and tables.json.
import Core
import Foundation

/// One model's evaluation in Lua (`semidpo.eval.run`).
final class EvalScoresObject: LuaObject {
    static let luaTypeName = "EvalScores"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("means", evalscores_means),
        LuaFunction("per_prompt", evalscores_per_prompt),
        LuaFunction("geneval", evalscores_geneval),
        LuaFunction("metrics", evalscores_metrics),
        LuaFunction("prompts", evalscores_prompts),
        LuaFunction("count", evalscores_count),
        LuaFunction("write", evalscores_write),
        LuaFunction("oracle_report", evalscores_oracle_report),
    ]
    let scores: EvalScores
    /// The sampled images ((N, 3, S, S) flat) and their prompts, for `oracle_report`.
    let images: [Float]
    let prompts: [EvalPrompt]
    let imageSize: Int
    init(_ scores: EvalScores, images: [Float], prompts: [EvalPrompt], imageSize: Int) {
        self.scores = scores
        self.images = images
        self.prompts = prompts
        self.imageSize = imageSize
    }
    var luaDescription: String { "EvalScores(\(scores.count) prompts × \(scores.metrics.count) metrics, seed \(scores.seed))" }
}

enum EvalBindings: LuaBindings {
    static let module: String? = "eval"
    static let functions: [LuaFunction] = [
        LuaFunction("run", eval_run),
        LuaFunction("win_rate", eval_win_rate),
        LuaFunction("table", eval_table),
        LuaFunction("grid", eval_grid),
    ]
}

private let runOptions = ["model", "suite", "committee", "seed", "steps", "guidance", "eta", "limit", "world_seed", "size", "batch_size",
                          "winograd", "min_images"]

/// `semidpo.eval.run{model =, suite = "pickapic"|"hpsv2"|"parti"|"geneval" | {prompt, …}, committee = Committee?,
/// seed = semidpo.seed, steps = 20, guidance = 5 | false, eta = 0, limit = N?, world_seed = 0, size = 500, batch_size = 64,
/// winograd = true, min_images = 1} -> EvalScores`
///
/// Samples one image per prompt with DDIM (image p from (seed, p's index in the full suite or list))
/// and scores it with every committee member, the oracle (alignment, aesthetics, detail, overall) and
/// the GenEval-like check. `limit` keeps the first N prompts (geneval: the first N per category).
/// `min_images` (geneval only, as GenEval samples several images per prompt): each category's prompts get
/// ⌈min_images / its prompts⌉ images each, so every category has ≥ min_images images; image k of a prompt
/// has its own noise (`SampleID.image`), image 0 the noise of the one-image evaluation. The scores then
/// have one row per image (the prompt repeated); `geneval_passes` groups them by prompt.
/// The one evaluator of a model (issue 15): `scores:oracle_report()` gives the colour/shape
/// correctness report `semidpo.diffusion.evaluate` used to return.
private func eval_run(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "run") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: runOptions)
        guard let model = try o.object("model", DiffusionModel.self) else { throw args.error(1, "option 'model' (a Model) is required") }
        let committee = try o.object("committee", Committee.self)
        let seed = try o.integer("seed") ?? args.runSeed
        guard seed >= 0 else { throw args.error(1, "option 'seed': expected ≥ 0, got \(seed)") }
        let limit = try o.integer("limit")
        if let limit, limit < 1 { throw args.error(1, "option 'limit': expected ≥ 1, got \(limit)") }
        let steps = try o.integer("steps", default: 20)
        guard steps >= 1 && steps <= model.schedule.steps else { throw args.error(1, "option 'steps': expected 1…\(model.schedule.steps), got \(steps)") }
        let eta = try o.number("eta", default: 0)
        guard eta >= 0 && eta.isFinite else { throw args.error(1, "option 'eta': expected ≥ 0, got \(eta)") }
        var guidance: Double? = 5
        if let v = o.values["guidance"] {
            if let b = v as? Bool {
                guard !b else { throw args.error(1, "option 'guidance': expected a number or false, got true") }
                guidance = nil
            } else {
                guidance = try o.number("guidance")
                guard guidance!.isFinite else { throw args.error(1, "option 'guidance': expected a finite number") }
            }
        }
        let minImages = try o.integer("min_images", default: 1)
        guard minImages >= 1 else { throw args.error(1, "option 'min_images': expected ≥ 1, got \(minImages)") }
        let batch = try o.integer("batch_size", default: 64)
        guard batch >= 1 else { throw args.error(1, "option 'batch_size': expected ≥ 1, got \(batch)") }
        let prompts: [EvalPrompt]
        do {
            switch o.values["suite"] {
            case nil: throw args.error(1, "option 'suite' (a suite name or a list of prompts) is required")
            case let name as String:
                let worldSeed = try o.integer("world_seed", default: 0)
                guard worldSeed >= 0 else { throw args.error(1, "option 'world_seed': expected ≥ 0, got \(worldSeed)") }
                let size = try o.integer("size", default: 500)
                guard size >= 1 else { throw args.error(1, "option 'size': expected ≥ 1, got \(size)") }
                guard name == "geneval" || minImages == 1 else {
                    throw args.error(1, "option 'min_images': only the 'geneval' suite samples several images per prompt (suite '\(name)')")
                }
                prompts = try Evaluation.suitePrompts(name, worldSeed: UInt64(worldSeed), suiteSize: size, limit: limit, minImages: minImages)
            case let list as [Any]:
                let texts = try list.enumerated().map { i, e -> String in
                    if let s = e as? String { return s }
                    if let t = e as? [String: Any], let s = t["text"] as? String { return s }
                    throw args.error(1, "option 'suite': element \(i + 1) is not a prompt string (or a table with 'text')")
                }
                guard minImages == 1 else { throw args.error(1, "option 'min_images': only the 'geneval' suite samples several images per prompt (got a prompt list)") }
                prompts = try Evaluation.listPrompts(texts, limit: limit)
            case let other?:
                throw args.error(1, "option 'suite': expected a suite name or a list of prompts, got \(LuaOptions.luaTypeName(of: other))")
            }
        } catch let e as CoreError { throw args.error(1, "option 'suite': \(e.message)") }
        let sampler = SamplerConfig(method: .ddim(eta: eta), steps: steps, guidanceScale: guidance, batchSize: batch,
                                    winograd: try o.boolean("winograd", default: true))
        let t0 = Date()
        let scores: EvalScores
        let images: [Float]
        do {
            // Evaluation.run's two steps, keeping the images for oracle_report.
            guard model.config.imageChannels == 3 else {
                throw CoreError("the oracle and reward models score RGB images, the model makes \(model.config.imageChannels) channels")
            }
            images = try Evaluation.generate(model: model, prompts: prompts, seed: UInt64(seed), sampler: sampler).data
            scores = try Evaluation.score(images: images, prompts: prompts, imageSize: model.config.imageSize, committee: committee,
                                          seed: UInt64(seed), steps: sampler.steps, guidance: sampler.guidanceScale,
                                          threads: max(1, Engine.threads))
        } catch let e as CoreError { throw args.error(1, e.message) }
        let distinct = Set(prompts.map { "\($0.seedIndex) \($0.text)" }).count
        print(String(format: "eval: %@, %d steps, guidance %@, %d metrics in %.1f s",
                     distinct == prompts.count ? "\(prompts.count) prompts" : "\(distinct) prompts, \(prompts.count) images", steps,
                     guidance.map { String($0) } ?? "off", scores.metrics.count, Date().timeIntervalSince(t0)))
        try args.push(EvalScoresObject(scores, images: images, prompts: prompts, imageSize: model.config.imageSize))
        return 1
    }
}

/// `semidpo.eval.win_rate(a, b [, metric | {metric, …}]) -> {metric = rate, …}`: the share of prompts where
/// A scores strictly higher than B (ties are not wins), per metric (default: every metric both have).
/// A and B must come from the same prompts and seed.
private func eval_win_rate(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "win_rate") { args in
        let a = try args.object(1, EvalScoresObject.self).scores
        let b = try args.object(2, EvalScoresObject.self).scores
        var wanted: [String]? = nil
        if !args.isNoneOrNil(3) {
            if let s = try? args.string(3) { wanted = [s] } else { wanted = try args.strings(3) }
        }
        let rates: [(metric: String, rate: Double)]
        do { rates = try a.winRates(over: b, metrics: wanted) } catch let e as CoreError {
            throw args.error(wanted != nil && e.message.contains("no metric") ? 3 : 2, e.message)
        }
        var out: [String: Any] = [:]
        for r in rates { out[r.metric] = r.rate }
        try args.push(out)
        return 1
    }
}

/// `semidpo.eval.table{title =, columns = {…}, rows = {{…}, …}, path = "name", decimals = 3, interval = "range" | "pm",
/// unit = "prompts"} -> {markdown = abs_path, csv = abs_path, json = abs_path}`
///
/// Cells are strings (text), numbers, intervals (tables {mean, lo, hi, …} from `semidpo.stats`), or false (empty). Writes `<path>.md` and `<path>.csv` into the
/// run directory atomically and merges every number into the run's `tables.json` under
/// table `path` → row (its text cells joined by " / ") → column.
private func eval_table(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "table") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["title", "columns", "rows", "path", "decimals", "interval", "unit"])
        let title = try o.required("title", o.string("title"))
        let columns = try o.required("columns", o.strings("columns"))
        guard !columns.isEmpty else { throw args.error(1, "option 'columns': expected at least one column name") }
        let path = try o.required("path", o.string("path"))
        let decimals = try o.integer("decimals", default: 3)
        guard decimals >= 0 && decimals <= 12 else { throw args.error(1, "option 'decimals': expected 0…12, got \(decimals)") }
        guard let rowValues = o.values["rows"] as? [Any] else {
            throw args.error(1, "option 'rows': expected a list of rows (each a list of cells)\(o.has("rows") ? "" : ", got nil")")
        }
        let style = try o.string("interval", default: "range")
        guard let intervalStyle = ResultTable.IntervalStyle(rawValue: style) else {
            throw args.error(1, "option 'interval': expected 'range' or 'pm', got '\(style)'")
        }
        var table = ResultTable(title: title, columns: columns, intervalStyle: intervalStyle, unit: try o.string("unit", default: "prompts"))
        for (i, rv) in rowValues.enumerated() {
            guard let cells = rv as? [Any] else { throw args.error(1, "option 'rows': row \(i + 1) is not a list of cells") }
            guard cells.count == columns.count else {
                throw args.error(1, "option 'rows': row \(i + 1) has \(cells.count) cells for \(columns.count) columns")
            }
            table.addRow(try cells.enumerated().map { j, c -> ResultTable.Cell in
                switch c {
                case let s as String: return .text(s)
                case let d as Double: return .number(d, decimals: decimals)
                case let n as Int: return .number(Double(n), decimals: 0)   // a Lua integer (a count) prints as one
                case let b as Bool where !b: return .empty
                case let d as [String: Any]:   // an interval: a result of semidpo.stats.bootstrap
                    return .estimate(try statsEstimate(from: d, at: "option 'rows': row \(i + 1), column \(j + 1) ('\(columns[j])')", args: args),
                                     decimals: decimals)
                default:
                    throw args.error(1, "option 'rows': row \(i + 1), column \(j + 1) ('\(columns[j])'): expected a string, number or false, got \(LuaOptions.luaTypeName(of: c))\(c is [Any] ? " (an interval cell is a table with mean, lo, hi)" : "")")
                }
            })
        }
        let files: (markdown: String, csv: String, json: String)
        do { files = try TableFiles.write(table, name: path, directory: try args.run.outputDirectory) } catch let e as CoreError {
            throw args.error(1, e.message)
        }
        for p in [files.markdown, files.csv, files.json] { try args.run.recordOutput(p) }
        try args.push(["markdown": files.markdown, "csv": files.csv, "json": files.json] as [String: Any])
        return 1
    }
}

/// `semidpo.eval.grid{models = {{name, Model}, …}, prompts = {…}, seeds = {1, 2, 3, 4}, path =, steps = 20,
/// guidance = 5 | false, eta = 0, batch_size = 64, scale = 4} -> abs_path`
///
/// The paper's Figure 3 as one PNG: a block of rows per prompt, a row per model (`model: prompt`), a
/// column per seed; every model starts image (prompt p, seed s) from the same noise `SampleID(s, p)`.
private func eval_grid(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "grid") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["models", "prompts", "seeds", "path", "steps", "guidance", "eta", "batch_size", "scale",
                                               "winograd"])
        guard let list = o.values["models"] as? [Any], !list.isEmpty else {
            throw args.error(1, "option 'models': expected a non-empty list of {name, Model}")
        }
        let models = try list.enumerated().map { i, e -> (name: String, model: DiffusionModel) in
            guard let pair = e as? [Any], pair.count == 2, let name = pair[0] as? String, let model = pair[1] as? DiffusionModel else {
                throw args.error(1, "option 'models': element \(i + 1) is not {name, Model}")
            }
            return (name, model)
        }
        let prompts = try o.required("prompts", o.strings("prompts"))
        let seeds = try o.integers("seeds", in: 0...Int.max) ?? [1, 2, 3, 4]
        guard !seeds.isEmpty, seeds.allSatisfy({ $0 >= 0 }) else { throw args.error(1, "option 'seeds': expected a non-empty list of integers ≥ 0") }
        let path = try args.run.resolve(try o.required("path", o.string("path")))
        let steps = try o.integer("steps", default: 20)
        guard steps >= 1 && steps <= models[0].model.schedule.steps else { throw args.error(1, "option 'steps': expected 1…\(models[0].model.schedule.steps), got \(steps)") }
        let eta = try o.number("eta", default: 0)
        var guidance: Double? = 5
        if let b = o.values["guidance"] as? Bool {
            guard !b else { throw args.error(1, "option 'guidance': expected a number or false, got true") }
            guidance = nil
        } else if o.has("guidance") {
            guidance = try o.number("guidance")
        }
        let batch = try o.integer("batch_size", default: 64)
        let scale = try o.integer("scale", default: 4)
        guard scale >= 1 && scale <= 32, batch >= 1 else { throw args.error(1, "options 'scale' (1…32) and 'batch_size' (≥ 1) out of range") }
        let sampler = SamplerConfig(method: .ddim(eta: eta), steps: steps, guidanceScale: guidance, batchSize: batch,
                                    winograd: try o.boolean("winograd", default: true))
        do {
            let image = try Evaluation.comparisonGrid(models: models, prompts: prompts, seeds: seeds.map(UInt64.init), sampler: sampler, scale: scale)
            try PNG.write(image, to: path)
        } catch let e as CoreError { throw args.error(1, e.message) }
        try args.run.recordOutput(path)
        try args.push(path)
        return 1
    }
}

/// `scores:means() -> {metric = mean, …}`.
private func evalscores_means(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "means") { args in
        var out: [String: Any] = [:]
        for m in try args.this(EvalScoresObject.self).scores.means { out[m.metric] = m.mean }
        try args.push(out)
        return 1
    }
}

/// `scores:per_prompt(metric) -> {score, …}` in prompt order.
private func evalscores_per_prompt(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "per_prompt") { args in
        let s = try args.this(EvalScoresObject.self).scores
        let metric = try args.string(2)
        do { try args.push(try s.column(metric)) } catch let e as CoreError { throw args.error(2, e.message) }
        return 1
    }
}

/// `scores:geneval() -> {single_object =, two_objects =, counting =, colors =, position =, color_attr =, overall =}`:
/// pass rates of the categories present, overall = their mean (a non-geneval list: overall only).
private func evalscores_geneval(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "geneval") { args in
        var out: [String: Any] = [:]
        for r in try args.this(EvalScoresObject.self).scores.genevalRates { out[r.category] = r.rate }
        try args.push(out)
        return 1
    }
}

/// `scores:metrics() -> {name, …}` in column order (members, then alignment, aesthetics, detail, overall).
private func evalscores_metrics(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "metrics") { args in try args.push(try args.this(EvalScoresObject.self).scores.metrics); return 1 }
}

/// `scores:prompts() -> {text, …}` in order.
private func evalscores_prompts(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "prompts") { args in try args.push(try args.this(EvalScoresObject.self).scores.prompts.map(\.text)); return 1 }
}

/// `scores:count() -> number of prompts`.
private func evalscores_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(EvalScoresObject.self).scores.count); return 1 }
}

/// `scores:write(path) -> abs_path`: the per-prompt table (prompt, seed_index, category, metrics…,
/// geneval_pass) as CSV, atomically, relative to the run directory.
private func evalscores_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let s = try args.this(EvalScoresObject.self).scores
        try args.push(try args.run.writeText(s.perPromptTable.csv, to: try args.string(2)))
        return 1
    }
}

/// `scores:oracle_report() -> {count, alignment, aesthetics, detail, overall, colour_correct, shape_correct,
/// chance_colour, chance_shape, exact_pass, colour_groups, shape_groups}`: the world oracle's report of
/// the evaluated images (`SampleEval`): means of its scores, the share of object groups whose colour /
/// shape appears, the same checked against another prompt of the list (chance), and exact passes.
private func evalscores_oracle_report(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "oracle_report") { args in
        let s = try args.this(EvalScoresObject.self)
        let report = try SampleEval.evaluate(images: s.images, scenes: s.prompts.map(\.prompt.scene), size: s.imageSize,
                                             threads: max(1, Engine.threads))
        try args.push(report.dictionary)
        return 1
    }
}
