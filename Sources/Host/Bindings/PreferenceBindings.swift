// semidpo.dpo: preference pairs and labels, DPO/KTO/SFT training (with the Semi-DPO composite
// objective), the timestep-conditional confidence pass, accuracy per anchor, and the pseudo-label audit.
import Core

extension InMemoryPairs: LuaObject {
    public static let luaTypeName = "Pairs"
    public static let luaMethods: [LuaFunction] = [
        LuaFunction("count", pairs_count),
        LuaFunction("ids", pairs_ids),
        LuaFunction("subset", pairs_subset),
    ]
    public var luaDescription: String { "Pairs(\(count) pairs of \(imageShape.map(String.init).joined(separator: "×")))" }
}

/// Per-anchor labels as a Lua object (Core's `AnchorLabels` is a value type).
final class LabelsObject: LuaObject {
    static let luaTypeName = "Labels"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("count", labels_count),
        LuaFunction("anchors", labels_anchors),
        LuaFunction("row", labels_row),
    ]
    let labels: AnchorLabels
    init(_ labels: AnchorLabels) { self.labels = labels }
    var luaDescription: String { "Labels(\(labels.rows) pairs × \(labels.anchors.count) anchors)" }
}

/// A confidence pass's z table as a Lua object.
final class ConfidenceObject: LuaObject {
    static let luaTypeName = "Confidence"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("count", confidence_count),
        LuaFunction("anchors", confidence_anchors),
        LuaFunction("ids", confidence_ids),
        LuaFunction("values", confidence_values),
        LuaFunction("accuracy", confidence_accuracy),
        LuaFunction("accuracy_table", confidence_accuracy_table),
        LuaFunction("write", confidence_write),
    ]
    let scores: ConfidenceTable
    init(_ scores: ConfidenceTable) { self.scores = scores }
    var luaDescription: String { "Confidence(\(scores.count) pairs × \(scores.anchors.count) anchors)" }
}

enum PreferenceBindings: LuaBindings {
    static let module: String? = "dpo"
    static let functions: [LuaFunction] = [
        LuaFunction("pairs", dpo_pairs),
        LuaFunction("labels", dpo_labels),
        LuaFunction("train", dpo_train),
        LuaFunction("confidence", dpo_confidence),
        LuaFunction("read_confidence", dpo_read_confidence),
        LuaFunction("audit", dpo_audit),
    ]
}

// MARK: - Pairs and labels

/// `semidpo.dpo.pairs{ winners = {…}, losers = {…}, shape = {C, H, W}, tokens = {…}, token_length = L [, ids = {…}] } -> Pairs`
/// Images are flat (N, C, H, W) number arrays; tokens a flat (N, L) integer array.
private func dpo_pairs(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "pairs") { args in
        let o = try args.options(1, allowed: ["winners", "losers", "shape", "tokens", "token_length", "ids"])
        guard let w = try o.numbers("winners"), let l = try o.numbers("losers") else {
            throw args.error(1, "options 'winners' and 'losers' are required")
        }
        guard let shape = try o.integers("shape", in: 1...LuaInteger.maxImageSize), shape.count == 3 else {
            throw args.error(1, "option 'shape' must be {C, H, W} with positive sizes")
        }
        let m = shape.reduce(1, *)
        guard w.count == l.count, w.count % m == 0, !w.isEmpty else {
            throw args.error(1, "'winners' and 'losers' must hold the same whole number of \(shape) images (got \(w.count) and \(l.count) values)")
        }
        let n = w.count / m
        let length = try o.integer("token_length", default: 1)
        let tokens = try o.integers("tokens", in: 0...Int(Int32.max))?.map { Int32($0) } ?? [Int32](repeating: TokenBatch.pad, count: n * length)
        guard length >= 1, tokens.count == n * length else {
            throw args.error(1, "'tokens' must hold \(n) rows of token_length = \(length) ids (got \(tokens.count))")
        }
        let ids = try o.integers("ids")?.map { Int64($0) }
        let full = [n] + shape
        try args.push(try InMemoryPairs(winners: Tensor(shape: full, data: w.map(Float.init)),
                                        losers: Tensor(shape: full, data: l.map(Float.init)),
                                        tokens: TokenBatch(ids: tokens, batch: n, length: length), ids: ids))
        return 1
    }
}

private func pairs_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(InMemoryPairs.self).count); return 1 }
}

private func pairs_ids(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "ids") { args in try args.push(try args.this(InMemoryPairs.self).ids.map { Int($0) }); return 1 }
}

/// `pairs:subset(ids) -> Pairs`: the pairs with these ids (as `pairs:ids()` lists them), in the given
/// order — the same contract as a world dataset's `pairs:subset(ids)`.
private func pairs_subset(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "subset") { args in
        let p = try args.this(InMemoryPairs.self)
        var rowOf: [Int64: Int] = [:]
        for (row, id) in p.ids.enumerated() where rowOf.updateValue(row, forKey: id) != nil {
            throw args.error(1, "pair id \(id) appears twice in this set; subset needs unique ids")
        }
        let rows = try args.integers(2).map { id in
            guard let row = rowOf[Int64(id)] else { throw args.error(2, "no pair with id \(id) in this set of \(p.count)") }
            return row
        }
        try args.push(try p.subset(rows))
        return 1
    }
}

/// `semidpo.dpo.labels{ anchors = {50, …}, labels = {flat −1/0/+1 per pair and anchor} [, ids = {…}, pairs = Pairs] } -> Labels`
/// With `ids` and `pairs`, rows are matched to the pairs by id (missing ids unlabelled).
/// `semidpo.dpo.labels{ file = "pseudo_labels.json", pairs = Pairs }` reads the official pseudo-label JSON.
private func dpo_labels(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "labels") { args in
        let o = try args.options(1, allowed: ["anchors", "labels", "ids", "pairs", "file"])
        if let file = try o.string("file") {
            guard let pairs = try o.object("pairs", PairSource.self) else { throw args.error(1, "option 'file' needs option 'pairs'") }
            try args.push(LabelsObject(try AnchorLabels(try PseudoLabels.read(file), alignedTo: pairs.ids)))
            return 1
        }
        guard let anchors = try o.integers("anchors") else { throw args.error(1, "option 'anchors' is required") }
        guard let values = try o.numbers("labels") else { throw args.error(1, "option 'labels' is required") }
        for v in values where v != -1 && v != 0 && v != 1 { throw args.error(1, "option 'labels': \(v) is not -1, 0 or 1") }
        let labels = values.map { Int8($0) }
        if let ids = try o.integers("ids") {
            guard let pairs = try o.object("pairs", PairSource.self) else { throw args.error(1, "option 'ids' needs option 'pairs'") }
            try args.push(LabelsObject(try AnchorLabels(anchors: anchors, ids: ids.map { Int64($0) }, labels: labels,
                                                        alignedTo: pairs.ids)))
        } else {
            try args.push(LabelsObject(try AnchorLabels(anchors: anchors, labels: labels)))
        }
        return 1
    }
}

private func labels_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(LabelsObject.self).labels.rows); return 1 }
}

private func labels_anchors(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "anchors") { args in try args.push(try args.this(LabelsObject.self).labels.anchors); return 1 }
}

/// `labels:row(i) -> {label per anchor}` (1-based).
private func labels_row(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "row") { args in
        let l = try args.this(LabelsObject.self).labels
        let r = try args.integer(2)
        guard r >= 1 && r <= l.rows else { throw args.error(2, "row \(r) outside 1..\(l.rows)") }
        try args.push(l.row(r - 1).map { Int($0) })
        return 1
    }
}

// MARK: - Training

private let trainOptions = [
    "policy", "reference", "pairs", "labels", "unlabeled", "pseudo", "objective", "loss", "beta", "steps",
    "batch_size", "unlabeled_batch_size", "accumulation", "unlabeled_weight", "lr", "weight_decay", "warmup",
    "schedule", "min_lr_factor", "max_grad_norm", "seed", "interval_half_width", "checkpoint", "checkpoint_every",
    "resume", "log", "on_step",
]

/// `semidpo.dpo.train{ policy = Model, reference = Model, pairs = Pairs, … } -> summary`
///
/// Trains `policy` in place. `pairs` (clean, labels `labels` per pair or all +1, t ~ U{0..T−1}) and/or
/// `unlabeled` with per-anchor `pseudo` Labels (t drawn from the labelled intervals); the loss is
/// L_labeled + unlabeled_weight · L_unlabeled. `objective` = "dpo" (with `loss` = sigmoid, hinge,
/// ipo, gce, sce), "kto" or "sft" (no reference needed). `beta` in the no-½ convention.
/// `log = "name"` writes name.csv and name.svg in the run directory; `checkpoint`/`checkpoint_every`
/// save, `resume` loads a checkpoint first. `on_step(step, total, metrics)` after every update.
private func dpo_train(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "train") { args in
        let o = try args.options(1, allowed: trainOptions)
        guard let policy = try o.object("policy", Denoiser.self) else { throw args.error(1, "option 'policy' (a model) is required") }
        let reference = try o.object("reference", Denoiser.self)
        var config = PreferenceTrainingConfig()
        let beta = try o.number("beta", default: 2500)
        switch try o.string("objective", default: "dpo") {
        case "dpo":
            let name = try o.string("loss", default: "sigmoid")
            guard let kind = PreferenceLossKind(rawValue: name) else {
                throw args.error(1, "option 'loss': '\(name)' is not one of \(PreferenceLossKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.objective = .dpo(PreferenceLossConfig(kind: kind, beta: beta))
        case "kto": config.objective = .kto(beta: beta)
        case "sft": config.objective = .sft
        case let other: throw args.error(1, "option 'objective': '\(other)' is not dpo, kto or sft")
        }
        config.steps = try o.integer("steps", default: 100)
        config.batchSize = try o.integer("batch_size", default: 16)
        config.unlabeledBatchSize = try o.integer("unlabeled_batch_size")
        config.accumulation = try o.integer("accumulation", default: 1)
        config.unlabeledWeight = try o.number("unlabeled_weight", default: 1)
        let lr = try o.number("lr", default: 1e-5), decay = try o.number("weight_decay", default: 0)
        let warmup = try o.integer("warmup", default: 0)
        guard lr >= 0, decay >= 0, warmup >= 0 else { throw args.error(1, "lr, weight_decay and warmup must be ≥ 0") }
        var schedule = LearningRateSchedule(warmupSteps: warmup)
        switch try o.string("schedule", default: "constant") {
        case "constant": break
        case "cosine":
            let minimum = try o.number("min_lr_factor", default: 0)
            guard config.steps > warmup, minimum >= 0, minimum <= 1 else {
                throw args.error(1, "a cosine schedule needs steps > warmup and 0 ≤ min_lr_factor ≤ 1")
            }
            schedule = LearningRateSchedule(warmupSteps: warmup, decay: .cosine(totalSteps: config.steps, minimumFactor: minimum))
        case let other: throw args.error(1, "option 'schedule': '\(other)' is not constant or cosine")
        }
        config.optimizer = AdamWConfig(learningRate: lr, weightDecay: decay, schedule: schedule)
        let clip = try o.number("max_grad_norm", default: 1)
        config.maxGradNorm = clip > 0 ? clip : nil
        config.seed = UInt64(truncatingIfNeeded: try o.integer("seed", default: 0))
        config.intervalHalfWidth = try o.integer("interval_half_width", default: 50)
        if let path = try o.string("checkpoint") { config.checkpointPath = try args.run.resolve(path) }
        config.checkpointEvery = try o.integer("checkpoint_every", default: 0)

        var labeled: LabelledPairs?
        if let pairs = try o.object("pairs", PairSource.self) {
            let labels = try o.numbers("labels")
            for v in labels ?? [] where v != -1 && v != 0 && v != 1 { throw args.error(1, "option 'labels': \(v) is not -1, 0 or 1") }
            labeled = try LabelledPairs(pairs, labels: labels.map { .perPair($0.map { Int8($0) }) })
        }
        var unlabeled: LabelledPairs?
        if let pairs = try o.object("unlabeled", PairSource.self) {
            guard let pseudo = try o.object("pseudo", LabelsObject.self) else { throw args.error(1, "option 'unlabeled' needs 'pseudo' Labels") }
            unlabeled = try LabelledPairs(pairs, labels: .perAnchor(pseudo.labels))
        }
        let trainer = try PreferenceTrainer(policy: policy, reference: reference, labeled: labeled, unlabeled: unlabeled, config: config)
        if let resume = try o.string("resume") { try trainer.loadCheckpoint(try args.run.resolve(resume)) }
        let onStep = try o.function("on_step")
        var bar: ProgressBar?
        try trainer.train { step, total, m in
            if bar == nil { bar = ProgressBar(total: total - step + 1, label: "train \(config.objective.name)") }
            bar?.advance()
            _ = try onStep?.call([step, total, metricsTable(m)], results: 0, on: args.L)
        }
        bar?.finish()
        if config.checkpointPath != nil {
            try trainer.saveCheckpoint(config.checkpointPath!)
            try args.run.recordOutput(config.checkpointPath!)
        }
        if let name = try o.string("log") {
            let csv = try args.run.resolve(name + ".csv"), svg = try args.run.resolve(name + ".svg")
            try trainer.writeLog(csv: csv, svg: svg)
            try args.run.recordOutput(csv); try args.run.recordOutput(svg)
        }
        var summary: [String: Any] = ["steps": trainer.step]
        if let last = trainer.history.last { summary["last"] = metricsTable(last) }
        let tail = trainer.history.suffix(max(1, trainer.history.count / 10))
        summary["mean_loss_last_tenth"] = Metrics.mean(tail.map(\.loss))
        summary["mean_accuracy_last_tenth"] = Metrics.mean(tail.map(\.implicitAccuracy).filter { !$0.isNaN })
        try args.push(summary)
        return 1
    }
}

/// A log line as a Lua table keyed by the CSV column names.
private func metricsTable(_ m: TrainingStepMetrics) -> [String: Any] {
    var t: [String: Any] = [:]
    for (k, v) in zip(TrainingStepMetrics.csvColumns, m.csvValues) where !v.isNaN { t[k] = k == "step" ? Int(v) as Any : v as Any }
    return t
}

// MARK: - Confidence

/// `semidpo.dpo.confidence{ model = Model, reference = Model, pairs = Pairs [, anchors = {50, …, 950}, beta = 2500,
/// batch_size = 32, seed = semidpo.seed, on_batch = function(done, total) end] } -> Confidence`
private func dpo_confidence(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "confidence") { args in
        let o = try args.options(1, allowed: ["model", "reference", "pairs", "anchors", "beta", "batch_size", "seed", "on_batch"])
        guard let model = try o.object("model", Denoiser.self) else { throw args.error(1, "option 'model' is required") }
        guard let reference = try o.object("reference", Denoiser.self) else { throw args.error(1, "option 'reference' is required") }
        guard let pairs = try o.object("pairs", PairSource.self) else { throw args.error(1, "option 'pairs' is required") }
        var config = ConfidencePassConfig()
        if let a = try o.integers("anchors") { config.anchors = a }
        config.beta = try o.number("beta", default: 2500)
        config.batchSize = try o.integer("batch_size", default: 32)
        config.seed = UInt64(truncatingIfNeeded: try o.integer("seed", default: 0))
        let onBatch = try o.function("on_batch")
        let bar = ProgressBar(total: pairs.count, label: "confidence (\(config.anchors.count) anchors)")
        let scores = try confidencePass(model: model, reference: reference, pairs: pairs, config: config) { done, total in
            bar.advance(by: done - bar.count)
            _ = try onBatch?.call([done, total], results: 0, on: args.L)
        }
        bar.finish()
        try args.push(ConfidenceObject(scores))
        return 1
    }
}

private func confidence_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(ConfidenceObject.self).scores.count); return 1 }
}

private func confidence_anchors(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "anchors") { args in try args.push(try args.this(ConfidenceObject.self).scores.anchors); return 1 }
}

private func confidence_ids(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "ids") { args in try args.push(try args.this(ConfidenceObject.self).scores.ids.map { Int($0) }); return 1 }
}

/// `conf:values() -> {{z per anchor} per pair}`.
private func confidence_values(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "values") { args in
        let s = try args.this(ConfidenceObject.self).scores
        let a = s.anchors.count
        try args.push((0..<s.count).map { Array(s.values[($0 * a)..<(($0 + 1) * a)]) } as [Any])
        return 1
    }
}

/// `conf:accuracy() -> {share of z > 0 (ties ½) per anchor}` — Table 7 on the clean test pairs.
private func confidence_accuracy(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "accuracy") { args in try args.push(try args.this(ConfidenceObject.self).scores.accuracy().map { $0 ?? .nan }); return 1 }
}

/// `conf:write(path [, shards = 1]) -> path`: the official shard format (`{"idx": 12, "timestep_50": 1.7, …}`
/// per line), one file when `path` ends in `.jsonl`, else `shards` files `confidence_rank000.jsonl`, … in the
/// directory `path` (relative paths inside the run directory).
private func confidence_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let s = try args.this(ConfidenceObject.self).scores
        let path = try args.run.resolve(try args.string(2))
        let shards = try args.optional(3, args.integer) ?? 1
        guard shards >= 1 else { throw args.error(3, "expected a shard count ≥ 1, got \(shards)") }
        try s.write(to: path, shards: shards)
        if path.hasSuffix(".jsonl") { try args.run.recordOutput(path) }
        else { for f in try ConfidenceTable.shardPaths(path) { try args.run.recordOutput(f) } }
        try args.push(path)
        return 1
    }
}

/// `semidpo.dpo.read_confidence(path [, anchors]) -> Confidence`: a shard file or directory in the official format.
private func dpo_read_confidence(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "read_confidence") { args in
        let path = try args.string(1)
        let anchors = try args.optional(2, args.integers)
        try args.push(ConfidenceObject(try ConfidenceTable.read(path, anchors: anchors)))
        return 1
    }
}

/// `conf:accuracy_table([title]) -> markdown` (percent per anchor).
private func confidence_accuracy_table(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "accuracy_table") { args in
        let s = try args.this(ConfidenceObject.self).scores
        let table = try args.optional(2, args.string).map { s.accuracyTable(title: $0) } ?? s.accuracyTable()
        try args.push(table.markdown)
        return 1
    }
}

// MARK: - Audit

/// `semidpo.dpo.audit{ truth = {dimensions = {…}, winner = {{…}}, loser = {{…}} [, overall = index (1-based)]},
/// labels = {Labels, …} [, iterations = {1, 2, …}] } -> {markdown =, csv =, rows = {…}}`
private func dpo_audit(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "audit") { args in
        let o = try args.options(1, allowed: ["truth", "labels", "iterations"])
        guard let truth = o.values["truth"] as? [String: Any] else { throw args.error(1, "option 'truth' must be a table") }
        guard let dims = truth["dimensions"] as? [Any], let dimensions = dims as? [String] else {
            throw args.error(1, "truth.dimensions must be a list of names")
        }
        func scores(_ key: String) throws -> [[Float]] {
            guard let rows = truth[key] as? [Any] else { throw args.error(1, "truth.\(key) must be a list of score lists") }
            return try rows.map { row in
                guard let r = row as? [Any] else { throw args.error(1, "truth.\(key) must be a list of score lists") }
                return try r.map { v in
                    if let d = v as? Double { return Float(d) }
                    if let i = v as? Int { return Float(i) }
                    throw args.error(1, "truth.\(key) holds a non-number")
                }
            }
        }
        let overall = (truth["overall"] as? Int).map { $0 - 1 }
        let t = try PairTruth(dimensions: dimensions, winner: scores("winner"), loser: scores("loser"), overall: overall)
        guard let list = o.values["labels"] as? [Any] else { throw args.error(1, "option 'labels' must be a list of Labels") }
        let labels = try list.map { v -> AnchorLabels in
            guard let l = v as? LabelsObject else { throw args.error(1, "option 'labels' must be a list of Labels") }
            return l.labels
        }
        let iterations = try o.integers("iterations")
        let audit = try auditPseudoLabels(truth: t, labels: labels, iterations: iterations)
        let rows: [Any] = audit.rows.map { r in
            var d: [String: Any] = ["iteration": r.iteration, "labelled": r.labelled, "opposed": r.opposed,
                                    "flipped_right": r.flippedRight, "agreed": r.agreed, "flipped_wrong": r.flippedWrong]
            if let a = r.anchor { d["anchor"] = a }
            if !r.humanAccuracy.isNaN { d["human_accuracy"] = r.humanAccuracy }
            var acc: [String: Any] = [:]
            for (name, v) in zip(dimensions, r.accuracy) where !v.isNaN { acc[name] = v }
            d["accuracy"] = acc
            return d
        }
        try args.push(["markdown": audit.table.markdown, "csv": audit.table.csv, "rows": rows] as [String: Any])
        return 1
    }
}
