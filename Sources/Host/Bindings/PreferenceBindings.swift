// semidpo.dpo: preference pairs and labels, DPO/KTO/SFT training (with the Semi-DPO composite
// objective), the timestep-conditional confidence pass, accuracy per anchor, and the pseudo-label audit.
import Core
import Foundation

/// Per-anchor labels as a Lua object (Core's `AnchorLabels` is a value type): rows aligned to a pair
/// set, the ids of those rows when known, and the id-keyed labels they came from (a selection or a
/// label file) — what `past` and `labels:write` use.
final class LabelsObject: LuaObject {
    static let luaTypeName = "Labels"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("count", labels_count),
        LuaFunction("anchors", labels_anchors),
        LuaFunction("row", labels_row),
        LuaFunction("rows", labels_rows),
        LuaFunction("ids", labels_ids),
        LuaFunction("write", labels_write),
    ]
    let labels: AnchorLabels
    let ids: [Int64]?
    let source: PseudoLabels?
    init(_ labels: AnchorLabels, ids: [Int64]? = nil, source: PseudoLabels? = nil) {
        self.labels = labels
        self.ids = ids
        self.source = source
    }
    var luaDescription: String { "Labels(\(labels.rows) pairs × \(labels.anchors.count) anchors)" }

    /// The labels keyed by pair id: the selection or file they came from, else the rows with their ids.
    func idKeyed(_ what: String) throws -> PseudoLabels {
        if let source { return source }
        guard let ids else { throw CoreError("\(what): these Labels have no pair ids (build them with ids = … or from a selection)") }
        return try PseudoLabels(anchors: labels.anchors, ids: ids, labels: labels.labels)
    }
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
        try args.push(PairsObject(try InMemoryPairs(winners: Tensor(shape: full, data: w.map(Float.init)),
                                                    losers: Tensor(shape: full, data: l.map(Float.init)),
                                                    tokens: TokenBatch(ids: tokens, batch: n, length: length), ids: ids)))
        return 1
    }
}

/// `semidpo.dpo.labels{ anchors = {50, …}, labels = {{l_50, …} per pair} [, ids = {…}, pairs = Pairs] } -> Labels`
/// Rows in the layout of `conf:values()` (one row per pair, one value per anchor, each −1, 0 or +1).
/// With `ids` and `pairs`, rows are matched to the pairs by id (missing ids unlabelled).
/// `semidpo.dpo.labels{ file = "pseudo_labels.json" [, pairs = Pairs] }` reads the official pseudo-label JSON:
/// rows aligned to `pairs`, or the file's pairs in file order.
private func dpo_labels(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "labels") { args in
        let o = try args.options(1, allowed: ["anchors", "labels", "ids", "pairs", "file"])
        let pairs = try o.object("pairs", PairSource.self)
        if let file = try o.string("file") {
            let pseudo = try PseudoLabels.read(file)
            let rowIds = pairs?.ids ?? pseudo.ids
            try args.push(LabelsObject(try AnchorLabels(pseudo, alignedTo: rowIds), ids: rowIds, source: pseudo))
            return 1
        }
        guard let anchors = try o.integers("anchors") else { throw args.error(1, "option 'anchors' is required") }
        guard let rows = o.values["labels"] as? [Any] else { throw args.error(1, "option 'labels' is required (one row per pair: {{l_50, …}, …})") }
        var labels: [Int8] = []
        labels.reserveCapacity(rows.count * anchors.count)
        for (i, r) in rows.enumerated() {
            guard let row = r as? [Any] else {
                throw args.error(1, "option 'labels': expected one row per pair, {{l_50, l_150, …}, …} (the layout of conf:values()), got a \(LuaOptions.luaTypeName(of: r)) at [\(i + 1)]")
            }
            guard row.count == anchors.count else {
                throw args.error(1, "option 'labels': row \(i + 1) has \(row.count) values for \(anchors.count) anchors")
            }
            for v in row {
                let x = (v as? Int).map(Double.init) ?? (v as? Double) ?? .nan
                guard x == -1 || x == 0 || x == 1 else { throw args.error(1, "option 'labels': row \(i + 1): \(v) is not -1, 0 or 1") }
                labels.append(Int8(x))
            }
        }
        if let ids = try o.integers("ids") {
            guard let pairs else { throw args.error(1, "option 'ids' needs option 'pairs'") }
            let idList = ids.map { Int64($0) }
            let source = try PseudoLabels(anchors: anchors, ids: idList, labels: labels)
            try args.push(LabelsObject(try AnchorLabels(anchors: anchors, ids: idList, labels: labels, alignedTo: pairs.ids),
                                       ids: pairs.ids, source: source))
        } else {
            try args.push(LabelsObject(try AnchorLabels(anchors: anchors, labels: labels), ids: pairs?.ids))
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

/// `labels:rows() -> {{label per anchor} per pair}` (the layout `dpo.labels{labels =}` takes).
private func labels_rows(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "rows") { args in
        let l = try args.this(LabelsObject.self).labels
        try args.push((0..<l.rows).map { l.row($0).map { Int($0) } } as [Any])
        return 1
    }
}

/// `labels:ids() -> {pair id per row}` (nil when the rows have no ids).
private func labels_ids(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "ids") { args in
        try args.push(try args.this(LabelsObject.self).ids?.map { Int($0) })
        return 1
    }
}

/// `labels:write(path) -> path`: the official pseudo-label JSON of the id-keyed labels (a selection's
/// kept pairs, or the file they were read from), relative paths inside the run directory.
private func labels_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let l = try args.this(LabelsObject.self)
        let path = try args.run.resolve(try args.string(2))
        let pseudo: PseudoLabels
        do { pseudo = try l.idKeyed("labels:write") } catch let e as CoreError { throw args.error(1, e.message) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try pseudo.write(path)
        try args.run.recordOutput(path)
        try args.push(path)
        return 1
    }
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
    "policy", "reference", "pairs", "labels", "unlabeled", "pseudo", "objective", "loss", "beta", "gce_q", "sce_beta",
    "log_zero", "robust_start", "robust_end", "robust_max_timestep", "robust_scores", "steps", "batch_size",
    "unlabeled_batch_size", "accumulation", "unlabeled_weight", "seed", "interval_half_width", "checkpoint",
    "checkpoint_every", "resume", "log", "on_progress", "ref_update_every", "label_swap", "drop", "validation",
    "grad_shards",
]

/// `semidpo.dpo.train{ policy = Model, reference = Model, pairs = Pairs, … } -> summary`
///
/// Trains `policy` in place. `pairs` (clean, labels `labels` per pair or all +1, t ~ U{0..T−1}) and/or
/// `unlabeled` with per-anchor `pseudo` Labels (t drawn from the labelled intervals); the loss is
/// L_labeled + unlabeled_weight · L_unlabeled. `objective` = "dpo" (with `loss` = sigmoid, hinge,
/// ipo, gce, sce, gce_pure, sce_ours, or a function(z, label, weight) returning value, slope),
/// "kto" or "sft" (no reference needed). `beta` in the no-½ convention. The optimizer options are
/// `OptimizerSettings.names` (lr = 1e-5, warmup = 0, schedule = "constant", min_lr_factor = 0,
/// weight_decay = 0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8, grad_clip = 1,
/// ema_decay = 0). `ref_update_every` = N | "epoch" copies the policy into the reference;
/// `label_swap` = p swaps labels; `drop` = {pair ids}; `validation` = {every = N, run = function(step)
/// return {name = score, …} end}. `log = "name"` writes name.csv and name.svg in the run directory;
/// `checkpoint`/`checkpoint_every` save, `resume` loads a checkpoint first. `grad_shards` = G (default:
/// the MPI rank count, 1 without mpirun) cuts each micro-batch into G gradient shards summed in order —
/// the same G gives the same weights at any rank count (docs/recipes.md, "semidpo.mpi").
/// `on_progress(step, total, metrics)` after every update. See docs/recipes.md for every option.
private func dpo_train(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "train") { args in
        let o = try trainerOptions(args, 1, allowed: trainOptions)
        guard let policy = try o.object("policy", Denoiser.self) else { throw args.error(1, "option 'policy' (a model) is required") }
        var reference = try o.object("reference", Denoiser.self)
        var config = PreferenceTrainingConfig()
        let beta = try o.number("beta", default: 2500)
        switch try o.string("objective", default: "dpo") {
        case "dpo":
            var loss = PreferenceLossConfig(beta: beta)
            if let f = o.values["loss"] as? LuaRef {
                let place = definitionPlace(f, args.L), L = args.L
                loss.custom = CustomPairLoss(name: place) { z, label, weight in
                    let r = try f.call([z, Int(label), weight], results: 2, on: L)
                    func number(_ v: Any??) -> Double? { (v as? Double) ?? (v as? Int).map(Double.init) }
                    guard r.count == 2, let value = number(r[0]), let slope = number(r[1]) else {
                        throw CoreError("the loss function defined at \(place) must return two numbers (value, slope), got \(r.map { $0.map { "\($0)" } ?? "nil" })")
                    }
                    return (value, slope)
                }
            } else {
                let name = try o.string("loss", default: "sigmoid")
                guard let kind = PreferenceLossKind(rawValue: name) else {
                    throw args.error(1, "option 'loss': '\(name)' is not one of \(PreferenceLossKind.allCases.map(\.rawValue).joined(separator: ", ")) or a function")
                }
                loss = PreferenceLossConfig(kind: kind, beta: beta)
            }
            loss.gceQ = try o.number("gce_q", default: loss.gceQ)
            loss.sceBeta = try o.number("sce_beta", default: loss.sceBeta)
            loss.logZero = try o.number("log_zero", default: loss.logZero)
            config.objective = .dpo(loss)
        case "kto": config.objective = .kto(beta: beta)
        case "sft": config.objective = .sft
        case let other: throw args.error(1, "option 'objective': '\(other)' is not dpo, kto or sft")
        }
        config.steps = try o.integer("steps", default: 100)
        config.batchSize = try o.integer("batch_size", default: 16)
        config.unlabeledBatchSize = try o.integer("unlabeled_batch_size")
        config.accumulation = try o.integer("accumulation", default: 1)
        // Default: one gradient shard per MPI rank (1 without a launcher — the single-process numbers).
        config.gradShards = try o.integer("grad_shards", default: GradientShards.perRank)
        config.unlabeledWeight = try o.number("unlabeled_weight", default: 1)
        config.optimizer = try optimizerSettings(o, defaults: .preference, steps: config.steps)
        config.seed = UInt64(truncatingIfNeeded: try o.integer("seed", default: runSeed(args.L)))
        config.intervalHalfWidth = try o.integer("interval_half_width", default: 50)
        if let path = try o.string("checkpoint") { config.checkpointPath = try args.run.resolve(path) }
        config.checkpointEvery = try o.integer("checkpoint_every", default: 0)
        if let v = o.values["ref_update_every"] {
            if let s = v as? String {
                guard s == "epoch" else { throw args.error(1, "option 'ref_update_every': expected a step count or \"epoch\", got '\(s)'") }
                config.referenceUpdatePerEpoch = true
            } else {
                config.referenceUpdateEvery = try o.integer("ref_update_every") ?? 0
                guard config.referenceUpdateEvery >= 1 else {
                    throw args.error(1, "option 'ref_update_every': expected a step count ≥ 1 or \"epoch\", got \(config.referenceUpdateEvery)")
                }
            }
        }
        if config.referenceUpdateEvery > 0 || config.referenceUpdatePerEpoch, let r = reference as? DiffusionModel {
            // The refresh overwrites the trainer's reference: work on a copy, so the Model the recipe
            // passed (often its base model) keeps its weights.
            let copy = r.clone()
            copy.freeze()
            reference = copy
        }
        config.labelSwapProbability = try o.number("label_swap", default: 0)
        config.droppedIDs = try o.numbers("drop")?.map { Int64($0) } ?? []
        config.robustStart = try o.integer("robust_start", default: 0)
        config.robustEnd = try o.integer("robust_end", default: Int.max)
        config.robustTimestepCutoff = try o.integer("robust_max_timestep")

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
        if let scores = try o.object("robust_scores", ScoresObject.self) {
            let table = scores.table
            let rowOf = Dictionary(table.ids.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
            func weights(_ set: LabelledPairs?) throws -> [Double]? {
                guard let set else { return nil }
                return try set.source.ids.map { id in
                    guard let r = rowOf[id] else { throw args.error(1, "option 'robust_scores': no scores for pair id \(id)") }
                    let p = table.pair(r)
                    return try committeeDisagreement(p.scores.map { p.winner == 0 ? ($0.0, $0.1) : ($0.1, $0.0) })
                }
            }
            config.labeledRobustWeights = try weights(labeled)
            config.unlabeledRobustWeights = try weights(unlabeled)
        }
        do { try config.validate() } catch let e as CoreError { throw args.error(1, e.message) }
        let trainer = try PreferenceTrainer(policy: policy, reference: reference, labeled: labeled, unlabeled: unlabeled, config: config)
        if let v = o.values["validation"] {
            guard let t = v as? [String: Any], let every = t["every"] as? Int, every >= 1, let run = t["run"] as? LuaRef,
                  t.keys.allSatisfy({ $0 == "every" || $0 == "run" }) else {
                throw args.error(1, "option 'validation': expected {every = steps ≥ 1, run = function(step) return {name = score, …} end}")
            }
            let place = definitionPlace(run, args.L), L = args.L
            trainer.validation = TrainingValidation(every: every) { step in
                let r = try run.call([step], results: 1, on: L)
                guard let table = r.first as? [String: Any] else {
                    throw CoreError("the validation function defined at \(place) must return a table {name = score, …}")
                }
                return try table.keys.sorted().map { k in
                    guard let x = (table[k] as? Double) ?? (table[k] as? Int).map(Double.init) else {
                        throw CoreError("the validation function defined at \(place) returned a non-number for '\(k)'")
                    }
                    return (k, x)
                }
            }
        }
        if let resume = try o.string("resume") { try trainer.loadCheckpoint(try args.run.resolve(resume)) }
        let onProgress = try o.function("on_progress")
        var bar: ProgressBar?
        try trainer.train { step, total, m in
            if bar == nil { bar = ProgressBar(total: total - step + 1, label: "train \(config.objective.name)") }
            bar?.advance()
            var t = metricsTable(m)
            if let v = trainer.validationHistory.last, v.step == step { for (k, x) in v.scores { t["val_\(k)"] = x } }
            _ = try onProgress?.call([step, total, t], results: 0, on: args.L)
        }
        bar?.finish()
        var summary: [String: Any] = ["steps": trainer.step, "swapped_labels": trainer.swappedLabels,
                                      "ref_update_every": trainer.referenceUpdateInterval]
        if let path = config.checkpointPath {
            try trainer.saveCheckpoint(path)
            try args.run.recordOutput(path)
        }
        if let ema = trainer.ema {
            // The EMA as a Model beside the policy (a DiffusionModel clone with the shadow weights);
            // with `checkpoint`, also saved as <checkpoint>_ema.safetensors.
            if let model = policy as? DiffusionModel {
                let copy = model.clone()
                for ((_, p), (_, e)) in zip(copy.parameters(), ema) { p.data = e.data }
                copy.freeze()
                summary["ema"] = copy
                if let path = config.checkpointPath {
                    let emaPath = (path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) : path) + "_ema.safetensors"
                    try copy.save(path: emaPath, metadata: ["ema_decay": "\(config.optimizer.emaDecay)", "steps": "\(trainer.step)"])
                    try args.run.recordOutput(emaPath)
                    summary["ema_path"] = emaPath
                }
            }
        }
        if let name = try o.string("log") {
            let csv = try args.run.resolve(name + ".csv"), svg = try args.run.resolve(name + ".svg")
            try trainer.writeLog(csv: csv, svg: svg)
            try args.run.recordOutput(csv); try args.run.recordOutput(svg)
        }
        if let last = trainer.history.last { summary["last"] = metricsTable(last) }
        let tail = trainer.history.suffix(max(1, trainer.history.count / 10))
        summary["mean_loss_last_tenth"] = Metrics.mean(tail.map(\.loss))
        summary["mean_accuracy_last_tenth"] = Metrics.mean(tail.map(\.implicitAccuracy).filter { !$0.isNaN })
        if !trainer.validationHistory.isEmpty {
            summary["validation"] = trainer.validationHistory.map { v -> Any in
                var row: [String: Any] = ["step": v.step]
                for (k, x) in v.scores { row[k] = x }
                return row
            }
        }
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
/// batch_size = 32, seed = semidpo.seed, on_progress = function(done, total) end] } -> Confidence`
private func dpo_confidence(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "confidence") { args in
        let o = try args.options(1, allowed: ["model", "reference", "pairs", "anchors", "beta", "batch_size", "seed", "on_progress"])
        guard let model = try o.object("model", Denoiser.self) else { throw args.error(1, "option 'model' is required") }
        guard let reference = try o.object("reference", Denoiser.self) else { throw args.error(1, "option 'reference' is required") }
        guard let pairs = try o.object("pairs", PairSource.self) else { throw args.error(1, "option 'pairs' is required") }
        var config = ConfidencePassConfig()
        if let a = try o.integers("anchors") { config.anchors = a }
        config.beta = try o.number("beta", default: 2500)
        config.batchSize = try o.integer("batch_size", default: 32)
        config.seed = UInt64(truncatingIfNeeded: try o.integer("seed") ?? args.runSeed)
        let onBatch = try o.function("on_progress")
        // Under MPI the bar (rank 0's) counts this rank's block of pairs.
        let bar = ProgressBar(total: confidenceRows(count: pairs.count, batchSize: max(1, config.batchSize)).count,
                              label: "confidence (\(config.anchors.count) anchors)")
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
/// directory `path` (relative paths inside the run directory). Under MPI (directory path) every rank
/// writes `confidence_rank<rank>.jsonl` with the pairs it scored.
private func confidence_write(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "write") { args in
        let s = try args.this(ConfidenceObject.self).scores
        let path = try args.run.resolve(try args.string(2))
        let shards = try args.optional(3, args.integer) ?? 1
        guard shards >= 1 else { throw args.error(3, "expected a shard count ≥ 1, got \(shards)") }
        if Cluster.size > 1 && !path.hasSuffix(".jsonl") {
            // Under MPI: every rank writes the rows it scored as confidence_rank<rank>.jsonl (the
            // authors' layout); rank 0 waits for the others and records every shard.
            guard args.isNoneOrNil(3) || shards == Cluster.size else {
                throw args.error(3, "under MPI each of the \(Cluster.size) ranks writes its own shard; leave the shard count out (got \(shards))")
            }
            try s.writeRankShard(to: path, rank: Cluster.rank, rows: s.scoredRows ?? Cluster.block(of: s.count))
            Cluster.barrier()
            for r in 0..<Cluster.size { try args.run.recordOutput(URL(fileURLWithPath: path).appendingPathComponent(String(format: "confidence_rank%03d.jsonl", r)).path) }
            try args.push(path)
            return 1
        }
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
