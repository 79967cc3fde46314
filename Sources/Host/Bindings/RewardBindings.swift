// semidpo.reward (reward models: create, train with a rater, save/load, score, accuracy) and the
// committee on world datasets in semidpo.committee (new, score with a disk cache, partition, reports).
import Core
import Foundation

/// A reward model in Lua, with what its checkpoint will say (name, rater, training record).
final class RewardModelObject: LuaObject {
    static let luaTypeName = "RewardModel"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("save", reward_save),
        LuaFunction("info", reward_info),
        LuaFunction("score", reward_score),
        LuaFunction("accuracy", reward_accuracy),
        LuaFunction("parameters", reward_parameters),
    ]
    let model: RewardModel
    var info: RewardCheckpointInfo
    init(_ model: RewardModel, info: RewardCheckpointInfo) { self.model = model; self.info = info }
    var luaDescription: String {
        "RewardModel(\(info.name.isEmpty ? "unnamed" : info.name), \(model.config.usesPrompt ? "image+prompt" : "image only"), \(model.parameterCount) parameters)"
    }
}

extension Committee: LuaObject {
    public static let luaTypeName = "Committee"
    public static let luaMethods: [LuaFunction] = [
        LuaFunction("members", committee_members),
        LuaFunction("score", committee_score),
        LuaFunction("partition", committee_partition),
        LuaFunction("accuracy_table", committee_accuracy_table),
        LuaFunction("stats", committee_stats),
    ]
    public var luaDescription: String { "Committee(\(names.joined(separator: ", ")))" }
}

/// A committee's score table in Lua.
final class ScoresObject: LuaObject {
    static let luaTypeName = "Scores"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("count", scores_count),
        LuaFunction("members", scores_members),
        LuaFunction("pair", scores_pair),
        LuaFunction("write", scores_write),
    ]
    let table: ScoreTable
    init(_ table: ScoreTable) { self.table = table }
    var luaDescription: String { "Scores(\(table.count) pairs × \(table.members.count) members)" }
}

/// A consensus partition of a world dataset: clean (train), clean test and noisy pair ids, and the
/// truth report.
final class PartitionObject: LuaObject {
    static let luaTypeName = "Partition"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("clean", partition_clean),
        LuaFunction("test", partition_test),
        LuaFunction("noisy", partition_noisy),
        LuaFunction("ids", partition_ids),
        LuaFunction("clean_fraction", partition_clean_fraction),
        LuaFunction("report", partition_report),
        LuaFunction("write", partition_write),
    ]
    let dataset: Dataset
    let split: ConsensusSplit
    let report: PartitionTruthReport
    init(dataset: Dataset, split: ConsensusSplit, report: PartitionTruthReport) {
        self.dataset = dataset; self.split = split; self.report = report
    }
    var luaDescription: String {
        "Partition(clean \(split.clean.count), test \(split.test.count), noisy \(split.noisy.count) of \(report.total); \(report.rule))"
    }
}

enum RewardBindings: LuaBindings {
    static let module: String? = "reward"
    static let functions: [LuaFunction] = [
        LuaFunction("new", reward_new),
        LuaFunction("load", reward_load),
        LuaFunction("train", reward_train),
    ]
}

/// The committee functions on world datasets, added to `semidpo.committee` beside the tabular ones.
enum RewardCommitteeBindings: LuaBindings {
    static let module: String? = "committee"
    static let functions: [LuaFunction] = [
        LuaFunction("new", committee_new),
    ]
}

/// Where bare member names live: `models/rewards` under the current directory unless `models =` says otherwise.
private let defaultModelsDirectory = "models/rewards"

private func worldTokenizer() throws -> Tokenizer { try Tokenizer(vocabulary: Vocabulary.words, maxLength: Vocabulary.maxTokens) }

/// 0-based pair ids of argument/option `what`, checked against the dataset.
private func checkedIDs(_ args: LuaArgs, _ index: Int32, _ ids: [Int], _ ds: Dataset, _ what: String) throws -> [Int] {
    if let bad = ids.first(where: { $0 < 0 || $0 >= ds.count }) {
        throw args.error(index, "\(what): pair id \(bad) outside 0…\(ds.count - 1) (ids are 0-based)")
    }
    return ids
}

// MARK: - semidpo.reward

/// `semidpo.reward.new{ name = "", uses_prompt = true, image_size = 16, channels = {8, 16, 32}, groups = 4,
/// embed_dimension = 32, heads = 2, seed = 0 } -> RewardModel` (fresh weights from `seed`).
private func reward_new(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "new") { args in
        let o = try args.options(1, allowed: ["name", "uses_prompt", "image_size", "channels", "groups", "embed_dimension", "heads", "seed"])
        let config = RewardModelConfig(imageSize: try o.integer("image_size", default: 16),
                                       channels: try o.integers("channels", in: 1...65_536) ?? [8, 16, 32],
                                       groups: try o.integer("groups", default: 4),
                                       embedDimension: try o.integer("embed_dimension", default: 32),
                                       heads: try o.integer("heads", default: 2),
                                       usesPrompt: try o.boolean("uses_prompt", default: true))
        do { try config.validate() } catch let e as CoreError { throw args.error(1, e.message) }
        let seed = try o.integer("seed") ?? args.runSeed
        guard seed >= 0 else { throw args.error(1, "option 'seed': must be ≥ 0 (got \(seed))") }
        let model = try RewardModel(config: config, key: RandomKey(seed: UInt64(seed)).child("reward-init"))
        try args.push(RewardModelObject(model, info: RewardCheckpointInfo(name: try o.string("name", default: ""), config: config, rater: .human)))
        return 1
    }
}

/// `semidpo.reward.load(spec [, models_dir]) -> RewardModel`: `spec` is a member name
/// (`<models_dir>/<spec>.safetensors`, default `models/rewards`) or a checkpoint path; relative
/// paths resolve against the current directory.
private func reward_load(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "load") { args in
        let spec = try args.string(1)
        let dir = try args.optional(2, args.string) ?? defaultModelsDirectory
        let (model, info) = try RewardModel.load(from: inputPath(RewardMember.resolve(spec, modelsDirectory: dir)))
        try args.push(RewardModelObject(model, info: info))
        return 1
    }
}

/// A rater from Lua: `"human"` or `{ weights = {alignment, aesthetics, detail}, temperature = τ, seed = 0 }`.
private func parseRater(_ args: LuaArgs, _ index: Int32, _ value: Any?) throws -> RewardRater {
    if let s = value as? String {
        guard s == "human" else { throw args.error(index, "option 'rater': unknown rater \"\(s)\"; expected \"human\" or {weights =, temperature =}") }
        return .human
    }
    guard let t = value as? [String: Any] else {
        throw args.error(index, "option 'rater': expected \"human\" or a table {weights = {a, e, d}, temperature = τ, seed = n}")
    }
    for k in t.keys where !["weights", "temperature", "seed"].contains(k) {
        throw args.error(index, "option 'rater': unknown field '\(k)' (allowed: weights, temperature, seed)")
    }
    guard let w = (t["weights"] as? [Any])?.compactMap({ ($0 as? Double) ?? ($0 as? Int).map(Double.init) }), w.count == 3,
          (t["weights"] as? [Any])?.count == 3 else {
        throw args.error(index, "option 'rater': 'weights' must be three numbers {alignment, aesthetics, detail}")
    }
    guard let tau = (t["temperature"] as? Double) ?? (t["temperature"] as? Int).map(Double.init) else {
        throw args.error(index, "option 'rater': 'temperature' (a number > 0) is required")
    }
    var seed = 0
    if let v = t["seed"] {
        switch LuaInteger.convert(v, range: 0...Int.max) {
        case .success(let i): seed = i
        case .failure(let p): throw args.error(index, "option 'rater': 'seed': \(p.text)")
        }
    }
    let r = RewardRater.weighted(weights: w, temperature: tau, seed: UInt64(seed))
    do { try r.validate() } catch let e as CoreError { throw args.error(index, "option 'rater': " + e.message) }
    return r
}

private func raterTable(_ r: RewardRater) -> [String: Any] {
    switch r {
    case .human: return ["kind": "human"]
    case let .weighted(w, t, s): return ["kind": "weighted", "weights": w, "temperature": t, "seed": Int(s)]
    }
}

/// `semidpo.reward.train(model, dataset, { rater = "human" | {weights =, temperature =, seed =}, ids = {…}?,
/// steps = 2000, batch_size = 64, seed = semidpo.seed, on_progress = function(step, total, {loss =}) end,
/// lr = 3e-3, warmup = 100, schedule = "cosine", min_lr_factor = 0.1, weight_decay = 1e-4, adam_beta1 = 0.9,
/// adam_beta2 = 0.999, adam_epsilon = 1e-8, grad_clip = 1 }) -> { losses = {…}, final_loss =, recent_accuracy =, seconds = }`
///
/// Bradley–Terry training, −log σ(r(x_w) − r(x_l)), on the dataset's pairs (or `ids`, 0-based)
/// labelled by `rater`. The optimizer options are the ones every trainer shares (`OptimizerSettings`;
/// `ema_decay` is not supported here). The rater and the training settings are kept for `model:save`.
private func reward_train(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "train") { args in
        let obj = try args.object(1, RewardModelObject.self)
        let ds = try args.object(2, Dataset.self)
        let o = try trainerOptions(args, 3, allowed: ["rater", "ids", "steps", "batch_size", "seed", "on_progress", "grad_shards"])
        let rater = try parseRater(args, 3, try o.required("rater", o.values["rater"]))
        let rows = try o.integers("ids").map { try checkedIDs(args, 3, $0, ds, "option 'ids'") } ?? Array(0..<ds.count)
        let seed = try o.integer("seed", default: runSeed(args.L))
        guard seed >= 0 else { throw args.error(3, "option 'seed': must be ≥ 0 (got \(seed))") }
        var config = RewardTrainingConfig(steps: try o.integer("steps", default: 2000), batchSize: try o.integer("batch_size", default: 64),
                                          optimizer: try optimizerSettings(o, defaults: .reward), seed: UInt64(seed))
        config.gradShards = try o.integer("grad_shards", default: GradientShards.perRank)
        do { try config.validate() } catch let e as CoreError { throw args.error(3, e.message) }
        let onProgress = try o.function("on_progress")
        let labels = try rater.labels(labels: ds.labels, truth0: ds.truth0, truth1: ds.truth1, rows: rows)
        let L = args.L
        let result = try trainRewardModel(obj.model, data: ds, rows: rows, labels: labels, config: config) { step, loss in
            _ = try onProgress?.call([step, config.steps, ["loss": loss] as [String: Any]], results: 0, on: L)
        }
        obj.info.rater = rater
        var record = config.optimizer.record
        record["ema_decay"] = nil
        record.merge(["steps": "\(config.steps)", "batch_size": "\(config.batchSize)", "seed": "\(config.seed)",
                      "pairs": "\(rows.count)", "dataset": ds.directory, "dataset_seed": "\(ds.manifest.seed)",
                      "seconds": String(format: "%.2f", result.seconds),
                      "final_loss": String(format: "%.4f", result.losses.last ?? .nan)]) { _, new in new }
        obj.info.training.merge(record) { _, new in new }
        try args.push(["losses": result.losses, "final_loss": result.losses.last ?? Double.nan,
                       "recent_accuracy": result.recentAccuracy, "seconds": result.seconds] as [String: Any])
        return 1
    }
}

/// `model:save(path [, { name =, training = {key = value} }])` -> absolute path. Writes the weights and
/// the metadata (architecture, rater, training record); `path` relative to the run directory.
private func reward_save(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "save") { args in
        let obj = try args.this(RewardModelObject.self)
        let path = try args.string(2)
        let o = try args.options(3, allowed: ["name", "training"])
        if let n = try o.string("name") { obj.info.name = n }
        if let t = o.values["training"] {
            guard let d = t as? [String: Any] else { throw args.error(3, "option 'training': expected a table of key = value") }
            for (k, v) in d { obj.info.training[k] = "\(v)" }
        }
        let run = try args.run
        let full = run.resolve(path)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try obj.model.save(to: full, info: obj.info)
        run.recordOutput(full)
        try args.push(full)
        return 1
    }
}

/// `model:info() -> { name, uses_prompt, parameters, image_size, rater = {kind, weights, temperature, seed}, training = {…} }`
private func reward_info(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "info") { args in
        let obj = try args.this(RewardModelObject.self)
        try args.push(["name": obj.info.name, "uses_prompt": obj.model.config.usesPrompt, "parameters": obj.model.parameterCount,
                       "image_size": obj.model.config.imageSize, "rater": raterTable(obj.info.rater),
                       "training": obj.info.training as [String: Any]] as [String: Any])
        return 1
    }
}

/// `model:parameters() -> count`
private func reward_parameters(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "parameters") { args in try args.push(try args.this(RewardModelObject.self).model.parameterCount); return 1 }
}

/// `model:score(dataset [, ids]) -> {s0, s1, s0, s1, …}`: both images of each pair (all, or the 0-based ids).
private func reward_score(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "score") { args in
        let obj = try args.this(RewardModelObject.self)
        let ds = try args.object(2, Dataset.self)
        let rows = args.isNoneOrNil(3) ? Array(0..<ds.count) : try checkedIDs(args, 3, try args.integers(3), ds, "ids")
        try args.push(try scorePairs(obj.model, data: ds, rows: rows).map(Double.init))
        return 1
    }
}

/// `model:accuracy(dataset [, ids]) -> { alignment =, aesthetics =, detail =, overall =, human = }`: pairwise
/// accuracy (0…1) against each true dimension, the overall truth and the human labels.
private func reward_accuracy(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "accuracy") { args in
        let obj = try args.this(RewardModelObject.self)
        let ds = try args.object(2, Dataset.self)
        let rows = args.isNoneOrNil(3) ? Array(0..<ds.count) : try checkedIDs(args, 3, try args.integers(3), ds, "ids")
        let s = try scorePairs(obj.model, data: ds, rows: rows)
        var out: [String: Any] = [:]
        for (k, ref) in truthReferences(ds, rows: rows) { out[k] = try pairwiseAccuracy(scores: s, reference: ref) }
        try args.push(out)
        return 1
    }
}

// MARK: - semidpo.committee on datasets

/// `semidpo.committee.new{ members = {"clip", "aesthetic", "path/to/x.safetensors", …}, models = "models/rewards" } -> Committee`
/// Members in the given order; a bare name is `<models>/<name>.safetensors` (relative to the current directory).
private func committee_new(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "new") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["members", "models"])
        let specs = try o.required("members", o.strings("members"))
        guard !specs.isEmpty else { throw args.error(1, "option 'members': expected at least one member") }
        let dir = try o.string("models", default: defaultModelsDirectory)
        let members = try specs.map { try RewardMember(path: inputPath(RewardMember.resolve($0, modelsDirectory: dir))) }
        do { try args.push(try Committee(members: members)) } catch let e as CoreError { throw args.error(1, e.message) }
        return 1
    }
}

private func committee_members(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "members") { args in try args.push(try args.this(Committee.self).names); return 1 }
}

/// `committee:stats() -> { computed_batches =, cache_hits = }` since the committee was made.
private func committee_stats(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "stats") { args in
        let c = try args.this(Committee.self)
        try args.push(["computed_batches": c.computedBatches, "cache_hits": c.cacheHits] as [String: Any])
        return 1
    }
}

private let scoringOptions = ["batch_size", "cache", "on_progress"]

/// Scores with the scoring options of `o` (batch_size = 512, cache = true, on_progress = function(member, done, total)).
private func scoreWith(_ args: LuaArgs, _ index: Int32, _ o: LuaOptions, _ c: Committee, _ ds: Dataset) throws -> ScoreTable {
    let batch = try o.integer("batch_size", default: 512)
    guard batch >= 1 else { throw args.error(index, "option 'batch_size': must be ≥ 1 (got \(batch))") }
    let cache = try o.boolean("cache", default: true)
    let onProgress = try o.function("on_progress")
    let L = args.L
    return try c.score(ds, batchSize: batch, useCache: cache) { name, done, total in
        _ = try onProgress?.call([name, done, total], results: 0, on: L)
    }
}

/// `committee:score(dataset [, { batch_size = 512, cache = true, on_progress = function(member, done, total) }]) -> Scores`
/// Scores are cached in `<dataset>/scores/<member>-<checkpoint sha256 prefix>.safetensors`.
private func committee_score(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "score") { args in
        let c = try args.this(Committee.self)
        let ds = try args.object(2, Dataset.self)
        let o = try args.options(3, allowed: scoringOptions)
        try args.push(ScoresObject(try scoreWith(args, 3, o, c, ds)))
        return 1
    }
}

/// `committee:partition(dataset [, { rule = "unanimous" | "k_of_n" | function(pair) -> boolean, k =, tie_tolerance = 1e-6,
/// test_fraction = 0.02, seed = semidpo.seed, batch_size =, cache =, on_progress = }]) -> Partition`
///
/// A function rule gets `{idx =, winner = 0|1, scores = {clip_score = {s0, s1}, …}, deltas = {clip_score = s_w − s_l, …}}`
/// per pair (as `partition_scores`) and returns true for clean.
private func committee_partition(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "partition") { args in
        let c = try args.this(Committee.self)
        let ds = try args.object(2, Dataset.self)
        let o = try args.options(3, allowed: scoringOptions + ["rule", "k", "tie_tolerance", "test_fraction", "seed"])
        let options = try PartitionOptions(o, args, index: 3, names: { c.names.map(scoreKey) })
        let rule = options.rule
        let table = try scoreWith(args, 3, o, c, ds)
        let split = try table.partition(rule: rule, testFraction: options.testFraction, seed: options.seed)
        let report = try partitionTruthReport(dataset: ds, split: split, rule: rule.description, members: c.names)
        try args.push(PartitionObject(dataset: ds, split: split, report: report))
        return 1
    }
}

/// `committee:accuracy_table(dataset [, { ids = {…}, out = "table6", title = "…", batch_size = 512 }]) -> { {member =, rater =,
/// overall =, aesthetics =, alignment =, detail =, human =}, … }` (percent). With `out`, writes `<out>.md` and `<out>.csv`
/// in the run directory.
private func committee_accuracy_table(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "accuracy_table") { args in
        let c = try args.this(Committee.self)
        let ds = try args.object(2, Dataset.self)
        let o = try args.options(3, allowed: ["ids", "out", "title", "batch_size"])
        let rows = try o.integers("ids").map { try checkedIDs(args, 3, $0, ds, "option 'ids'") }
        let batch = try o.integer("batch_size", default: 512)
        guard batch >= 1 else { throw args.error(3, "option 'batch_size': must be ≥ 1 (got \(batch))") }
        var t = try rewardAccuracyTable(c, dataset: ds, rows: rows, batchSize: batch)
        if let title = try o.string("title") { t.title = title }
        if let out = try o.string("out") {
            let run = try args.run
            try run.writeText(t.markdown, to: out + ".md")
            try run.writeText(t.csv, to: out + ".csv")
        }
        try args.push(resultRows(t))
        return 1
    }
}

/// Rows of a result table as Lua tables keyed by column (numbers as numbers).
private func resultRows(_ t: ResultTable) -> [Any] {
    t.rows.map { r in
        var d: [String: Any] = [:]
        for (k, cell) in zip(t.columns, r) {
            switch cell {
            case .text(let s): d[k] = s
            case .number(let v, 0) where v == v.rounded() && abs(v) < 1e15: d[k] = Int(v)   // counts stay integers
            case .number(let v, _): d[k] = v
            case .estimate(let e, _): d[k] = statsEstimateTable(e)
            case .empty: break
            }
        }
        return d as Any
    }
}

// MARK: - Scores

private func scores_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(ScoresObject.self).table.count); return 1 }
}

private func scores_members(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "members") { args in try args.push(try args.this(ScoresObject.self).table.members); return 1 }
}

/// `scores:pair(id) -> {idx =, winner =, scores = {clip_score = {s0, s1}, …}, deltas = {…}}` (the rule function's view).
private func scores_pair(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "pair") { args in
        let s = try args.this(ScoresObject.self)
        let i = try args.integer(2)
        guard i >= 0 && i < s.table.count else { throw args.error(2, "pair id \(i) outside 0…\(s.table.count - 1) (ids are 0-based)") }
        try args.push(RulePair(pair: s.table.pair(i), names: s.table.members))
        return 1
    }
}

/// `scores:write(path) -> absolute path`: the official per-pair score JSONL (`idx`, `human_scores`, `<member>_score`),
/// readable by `semidpo.committee.partition_scores`; `path` relative to the run directory.
private func scores_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let s = try args.this(ScoresObject.self)
        let run = try args.run
        let full = run.resolve(try args.string(2))
        try s.table.write(path: full)
        run.recordOutput(full)
        try args.push(full)
        return 1
    }
}

// MARK: - Partition

private func partitionPairs(_ args: LuaArgs, _ ids: [Int64]) throws -> PairsObject {
    let p = try args.this(PartitionObject.self)
    return PairsObject(try DatasetPairs(p.dataset, rows: ids.map { Int($0) }, tokenizer: try worldTokenizer()))
}

/// `part:clean() -> Pairs`: the clean training pairs (winner first by the human label).
private func partition_clean(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "clean") { args in try args.push(try partitionPairs(args, try args.this(PartitionObject.self).split.clean)); return 1 }
}

/// `part:test() -> Pairs`: the held-out clean test pairs.
private func partition_test(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "test") { args in try args.push(try partitionPairs(args, try args.this(PartitionObject.self).split.test)); return 1 }
}

/// `part:noisy() -> Pairs`: the noisy (unlabelled) pairs.
private func partition_noisy(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "noisy") { args in try args.push(try partitionPairs(args, try args.this(PartitionObject.self).split.noisy)); return 1 }
}

/// `part:ids(which) -> {id, …}` with which = "clean" | "test" | "noisy" (0-based dataset ids).
private func partition_ids(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "ids") { args in
        let p = try args.this(PartitionObject.self)
        let which = try args.string(2)
        switch which {
        case "clean": try args.push(p.split.clean.map { Int($0) })
        case "test": try args.push(p.split.test.map { Int($0) })
        case "noisy": try args.push(p.split.noisy.map { Int($0) })
        default: throw args.error(2, "expected \"clean\", \"test\" or \"noisy\", got \"\(which)\"")
        }
        return 1
    }
}

/// `part:clean_fraction() -> (clean + test) / all`.
private func partition_clean_fraction(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "clean_fraction") { args in try args.push(try args.this(PartitionObject.self).report.cleanFraction); return 1 }
}

/// `part:report() -> { rule =, members =, total =, clean_fraction =, sets = { {set =, pairs =, share =, alignment =, …}, … }, markdown = }`
/// (agreements in percent, as in the written table).
private func partition_report(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "report") { args in
        let r = try args.this(PartitionObject.self).report
        try args.push(["rule": r.rule, "members": r.members, "total": r.total, "clean_fraction": r.cleanFraction,
                       "sets": resultRows(r.table), "markdown": r.table.markdown] as [String: Any])
        return 1
    }
}

/// `part:write(dir) -> dir`: `clean.json`, `clean_test.json`, `noisy.json` (the official id lists) and
/// `partition.md` / `partition.csv` (the truth report) in `dir` (relative to the run directory).
private func partition_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let p = try args.this(PartitionObject.self)
        let run = try args.run
        let dir = run.resolve(try args.string(2))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, ids) in [("clean.json", p.split.clean), ("clean_test.json", p.split.test), ("noisy.json", p.split.noisy)] {
            try writeIdList(ids, to: dir + "/" + name)
            run.recordOutput(dir + "/" + name)
        }
        try run.writeText(p.report.table.markdown, to: dir + "/partition.md")
        try run.writeText(p.report.table.csv, to: dir + "/partition.csv")
        try args.push(dir)
        return 1
    }
}
