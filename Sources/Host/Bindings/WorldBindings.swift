// semidpo.world: the synthetic preference world in Lua — vocabulary, prompt suites, building and
// opening pair datasets, label-noise statistics and contact sheets.
import Core
import Foundation

extension Dataset: LuaObject {
    public static let luaTypeName = "Dataset"
    public static let luaMethods: [LuaFunction] = [
        LuaFunction("count", dataset_count),
        LuaFunction("dir", dataset_dir),
        LuaFunction("statistics", dataset_statistics),
        LuaFunction("split_by_prompt", dataset_split_by_prompt),
        LuaFunction("prompt", dataset_prompt),
        LuaFunction("label", dataset_label),
        LuaFunction("truth", dataset_truth),
        LuaFunction("contact_sheet", dataset_contact_sheet),
        LuaFunction("pairs", dataset_pairs),
    ]
    public var luaDescription: String { "Dataset(\(count) pairs, \(prompts.count) prompts, \(directory))" }
}

enum WorldBindings: LuaBindings {
    static let module: String? = "world"
    static let functions: [LuaFunction] = [
        LuaFunction("vocabulary", world_vocabulary),
        LuaFunction("suites", world_suites),
        LuaFunction("training_prompts", world_training_prompts),
        LuaFunction("dataset", world_dataset),
        LuaFunction("open_dataset", world_open_dataset),
    ]
}

/// Dataset directories are caches shared between runs: a relative path resolves against the
/// current working directory (not the run directory).
private func datasetPath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// The paper's 851,293 pairs over 58,960 prompts: the default prompt count keeps that ratio.
func defaultPromptCount(pairs: Int) -> Int {
    min(PromptSuites.maxTrainingPrompts, max(1, Int((Double(pairs) * 58_960 / 851_293).rounded())))
}

/// `semidpo.world.vocabulary() -> {word, …}` (token id k+1 is word k; 0 is padding).
private func world_vocabulary(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "vocabulary") { args in
        try args.push(Vocabulary.words)
        return 1
    }
}

/// `semidpo.world.suites{world_seed = 0, size = 500} -> {pickapic = {...}, hpsv2 = {...}, parti = {...},
/// geneval = {{text = , category = }, ...}}`: the evaluation prompt suites.
private func world_suites(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "suites") { args in
        let o = try args.options(1, allowed: ["world_seed", "size"])
        let seed = try o.integer("world_seed", default: 0)
        let size = try o.integer("size", default: 500)
        guard size >= 1 else { throw args.error(1, "option 'size': expected ≥ 1, got \(size)") }
        let s = PromptSuites(seed: UInt64(seed), suiteSize: size)
        let geneval: [Any] = s.geneval.map { ["text": $0.text, "category": $0.category?.rawValue ?? ""] as [String: Any] }
        try args.push(["pickapic": s.pickapicTest.map(\.text), "hpsv2": s.hpsv2.map(\.text),
                       "parti": s.parti.map(\.text), "geneval": geneval] as [String: Any])
        return 1
    }
}

/// `semidpo.world.training_prompts(count [, seed = 0]) -> {text, …}`: training prompts, disjoint
/// from every evaluation suite.
private func world_training_prompts(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "training_prompts") { args in
        let count = try args.integer(1)
        let seed = try args.optional(2) { try args.integer($0, in: 0...Int.max) } ?? 0
        guard count >= 1, count <= PromptSuites.maxTrainingPrompts else {
            throw args.error(1, "expected a count in 1…\(PromptSuites.maxTrainingPrompts), got \(count)")
        }
        try args.push(try PromptSuites(seed: UInt64(seed)).training(count: count).map(\.text))
        return 1
    }
}

/// `semidpo.world.dataset{dir =, pairs =, prompts = ?, seed = 0, image_size = 16, shard_size = 10000,
/// concentration = 0.2, temperature = 0.05, tie_tolerance = 0.03, rebuild = false} -> Dataset`
///
/// Opens the dataset in `dir` when it was built with the same settings; builds it (with a progress
/// bar) when `dir` holds none. A dataset built with other settings is an error unless `rebuild`.
private func world_dataset(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "dataset") { args in
        let o = try args.options(1, allowed: ["dir", "pairs", "prompts", "seed", "image_size", "shard_size",
                                              "concentration", "temperature", "tie_tolerance", "rebuild"])
        let dir = datasetPath(try o.required("dir", o.string("dir")))
        let pairs = try o.required("pairs", o.integer("pairs"))
        guard pairs >= 1 else { throw args.error(1, "option 'pairs': expected ≥ 1, got \(pairs)") }
        let promptCount = try o.integer("prompts", default: defaultPromptCount(pairs: pairs))
        guard promptCount >= 1, promptCount <= PromptSuites.maxTrainingPrompts else {
            throw args.error(1, "option 'prompts': expected 1…\(PromptSuites.maxTrainingPrompts), got \(promptCount)")
        }
        let seed = try o.integer("seed") ?? args.runSeed
        let annotator = AnnotatorConfig(concentration: try o.number("concentration", default: 0.2),
                                        temperature: try o.number("temperature", default: 0.05),
                                        tieTolerance: try o.number("tie_tolerance", default: 0.03))
        try annotator.validate()
        let config = WorldConfig(imageSize: try o.integer("image_size", default: 16), seed: UInt64(seed), annotator: annotator)
        let shardSize = try o.integer("shard_size", default: 10_000)
        let rebuild = try o.boolean("rebuild", default: false)

        // Under MPI rank 0 looks and builds; the other ranks wait for it, then open the same files.
        var exists = FileManager.default.fileExists(atPath: dir + "/dataset.json")
        if Cluster.size > 1 { exists = Cluster.broadcast([UInt8(exists ? 1 : 0)], root: 0) == [1] }
        if exists && !rebuild {
            let ds = try Dataset(directory: dir)
            let m = ds.manifest
            var differences: [String] = []
            if m.pairs != pairs { differences.append("pairs \(m.pairs) ≠ \(pairs)") }
            if m.prompts != promptCount { differences.append("prompts \(m.prompts) ≠ \(promptCount)") }
            if m.seed != config.seed { differences.append("seed \(m.seed) ≠ \(config.seed)") }
            if m.imageSize != config.imageSize { differences.append("image_size \(m.imageSize) ≠ \(config.imageSize)") }
            if m.annotator != annotator { differences.append("annotator settings differ") }
            guard differences.isEmpty else {
                throw CoreError("dataset in \(dir) was built with other settings (\(differences.joined(separator: ", "))); "
                                + "use another dir or rebuild = true")
            }
            try args.push(ds)
            return 1
        }
        if Cluster.rank == 0 {
            let prompts = try PromptSuites(seed: UInt64(seed)).training(count: promptCount)
            let bar = ProgressBar(total: pairs, label: "building dataset")
            try DatasetBuilder.build(directory: dir, pairs: pairs, prompts: prompts, config: config,
                                     shardSize: shardSize, threads: max(1, Engine.threads)) { done, _ in
                bar.advance(by: done - bar.count)
            }
            bar.finish()
        }
        Cluster.barrier()
        try args.push(try Dataset(directory: dir))
        return 1
    }
}

/// `semidpo.world.open_dataset(dir) -> Dataset`.
private func world_open_dataset(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "open_dataset") { args in
        try args.push(try Dataset(directory: datasetPath(try args.string(1))))
        return 1
    }
}

/// `ds:count() -> pairs`.
private func dataset_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in
        try args.push(try args.this(Dataset.self).count)
        return 1
    }
}

/// `ds:dir() -> directory`.
private func dataset_dir(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "dir") { args in
        try args.push(try args.this(Dataset.self).directory)
        return 1
    }
}

/// Checks 0-based pair ids against the dataset.
private func pairIDs(_ args: LuaArgs, _ index: Int32, _ ds: Dataset) throws -> [Int] {
    let ids = try args.integers(index)
    if let bad = ids.first(where: { $0 < 0 || $0 >= ds.count }) {
        throw args.error(index, "pair id \(bad) outside 0…\(ds.count - 1) (ids are 0-based)")
    }
    return ids
}

/// Checks one 0-based pair id against the dataset.
private func pairID(_ args: LuaArgs, _ index: Int32, _ ds: Dataset) throws -> Int {
    let i = try args.integer(index)
    guard i >= 0 && i < ds.count else { throw args.error(index, "pair id \(i) outside 0…\(ds.count - 1) (ids are 0-based)") }
    return i
}

/// `ds:statistics([ids]) -> {pairs, ties, tie_rate, conflict = {alignment=, aesthetics=, detail=},
/// agree = {...}, overall_agreement, any_conflict, summary}` over all pairs or the given ids.
private func dataset_statistics(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "statistics") { args in
        let ds = try args.this(Dataset.self)
        let st = args.isNoneOrNil(2) ? try ds.statistics() : try ds.statistics(of: try pairIDs(args, 2, ds))
        let names = QualityScores.dimensionNames
        func byName(_ v: [Double]) -> [String: Any] { Dictionary(uniqueKeysWithValues: zip(names, v.map { $0 as Any })) }
        try args.push(["pairs": st.pairs, "candidates": st.candidates, "ties": st.ties, "tie_rate": st.tieRate,
                       "conflict": byName(st.conflictRate), "agree": byName(st.agreeRate),
                       "overall_agreement": st.overallAgreement, "any_conflict": st.anyConflictRate,
                       "summary": st.summary] as [String: Any])
        return 1
    }
}

/// `ds:split_by_prompt(test_fraction, seed) -> train_ids, test_ids` (0-based pair ids; no prompt
/// is in both parts).
private func dataset_split_by_prompt(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "split_by_prompt") { args in
        let ds = try args.this(Dataset.self)
        let (train, test) = try ds.splitByPrompt(testFraction: try args.number(2), seed: UInt64(try args.optional(3) { try args.integer($0, in: 0...Int.max) } ?? 0))
        try args.push(train)
        try args.push(test)
        return 2
    }
}

/// `ds:prompt(id) -> text`.
private func dataset_prompt(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "prompt") { args in
        let ds = try args.this(Dataset.self)
        let i = try pairID(args, 2, ds)
        try args.push(ds.prompts[ds.promptIndex[i]].text)
        return 1
    }
}

/// `ds:label(id) -> +1 (image 0 preferred) or -1`.
private func dataset_label(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "label") { args in
        let ds = try args.this(Dataset.self)
        try args.push(ds.labels[try pairID(args, 2, ds)])
        return 1
    }
}

/// `ds:truth(id) -> {image0 = {alignment=, aesthetics=, detail=, overall=}, image1 = {...}}`.
private func dataset_truth(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "truth") { args in
        let ds = try args.this(Dataset.self)
        let i = try pairID(args, 2, ds)
        func t(_ q: QualityScores) -> [String: Any] {
            ["alignment": Double(q.alignment), "aesthetics": Double(q.aesthetics), "detail": Double(q.detail), "overall": Double(q.overall)]
        }
        try args.push(["image0": t(ds.truth0[i]), "image1": t(ds.truth1[i])] as [String: Any])
        return 1
    }
}

/// `ds:contact_sheet(path [, ids = first 16] [, columns = 4]) -> path`: the paper's Figure 7 for
/// this world — both images, the label as a green/red frame, the true scores under each image.
private func dataset_contact_sheet(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "contact_sheet") { args in
        let ds = try args.this(Dataset.self)
        let path = try args.string(2)
        let ids = args.isNoneOrNil(3) ? Array(0..<min(16, ds.count)) : try pairIDs(args, 3, ds)
        let columns = try args.optional(4, args.integer) ?? 4
        guard !ids.isEmpty else { throw args.error(3, "no pair ids") }
        var sheet: [SheetPair] = []
        for i in ids {
            let (a, b) = try ds.pair(i)
            sheet.append(SheetPair(prompt: ds.prompts[ds.promptIndex[i]].text, image0: a, image1: b, label: ds.labels[i],
                                   truth0: ds.truth0[i], truth1: ds.truth1[i]))
        }
        let out = try args.run.writeData(try PNG.encode(try ContactSheet.render(sheet, size: ds.imageSize, columns: columns)), to: path)
        try args.push(out)
        return 1
    }
}

/// `ds:pairs([ids]) -> Pairs`: the pairs (all, or the given 0-based ids) as a pair source for
/// `semidpo.dpo.train` / `confidence`, winner first by the human label, prompts tokenized over the
/// world's vocabulary.
private func dataset_pairs(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "pairs") { args in
        let ds = try args.this(Dataset.self)
        let ids = args.isNoneOrNil(2) ? nil : try pairIDs(args, 2, ds)
        try args.push(PairsObject(try DatasetPairs(ds, rows: ids, tokenizer: try Tokenizer(vocabulary: Vocabulary.words, maxLength: Vocabulary.maxTokens))))
        return 1
    }
}


