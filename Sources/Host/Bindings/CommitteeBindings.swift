// semidpo.committee: the multi-reward consensus split over the official per-pair score JSONL
// (`partition_scores`, with a Lua function as a rule) and id-list files.
import CLua
import Core
import Foundation

enum CommitteeBindings: LuaBindings {
    static let module: String? = "committee"
    static let functions: [LuaFunction] = [
        LuaFunction("partition_scores", committee_partition_scores),
        LuaFunction("read_ids", committee_read_ids),
        LuaFunction("write_ids", committee_write_ids),
    ]
}

/// An input path: absolute, or relative to the current directory (where `semidpo` was started),
/// like `semidpo.yaml.load`. Outputs instead resolve in the run directory (`args.run.resolve`).
func inputPath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

private let partitionOptions = ["path", "out", "members", "rule", "k", "tie_tolerance", "test_fraction", "seed", "skip_malformed"]

/// `semidpo.committee.partition_scores{ path =, out =, members =?, rule = "unanimous" | "k_of_n" | function(pair),
/// k =?, tie_tolerance = 1e-6, test_fraction = 0.02, seed = semidpo.seed, skip_malformed = false } -> report`
///
/// Reads the official score JSONL (`path`, relative to the current directory), writes `clean.json`,
/// `clean_test.json`, `noisy.json` and `stats.yaml` into `out` (relative to the run directory; each
/// recorded as a run output). A function rule is called once per pair, in file order, with
/// `{idx =, winner = 0|1, scores = {name = {s0, s1}}, deltas = {name = s_winner - s_loser}}` and
/// must return a boolean (true = clean).
private func committee_partition_scores(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "partition_scores") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: partitionOptions)
        guard let path = try o.string("path") else { throw args.error(1, "option 'path' is required (the score JSONL)") }
        guard let out = try o.string("out") else { throw args.error(1, "option 'out' is required (a directory for the id lists)") }
        let members = try o.strings("members")
        if let members, members.isEmpty { throw args.error(1, "option 'members': expected at least one member name") }
        let skip = try o.boolean("skip_malformed", default: false)
        let source = inputPath(path)
        let dir = try args.run.resolve(out)
        // The member keys the parser will use, to name the scores in a rule function's pair table.
        let split = try PartitionOptions(o, args, index: 1, names: { members?.map(scoreKey) ?? firstLineScoreKeys(source) })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let report = try partitionScores(path: source, out: dir, members: members, rule: split.rule,
                                         testFraction: split.testFraction, seed: split.seed, skipMalformed: skip)
        let run = try args.run
        for p in report.outputs { run.recordOutput(p) }
        try args.push(partitionReportTable(report, dir: dir))
        return 1
    }
}

/// The consensus options shared by `committee.partition_scores` and `committee:partition` (one parser):
/// `rule` ("unanimous", "k_of_n" with `k` in 1…members, or a Lua function), `tie_tolerance` (built-in
/// rules only), `test_fraction`, `seed` (default `semidpo.seed`). `names` gives the members' score keys
/// (called only for `k_of_n` and a function rule; empty when a score file cannot be read yet).
struct PartitionOptions {
    let rule: ConsensusRule
    let testFraction: Double
    let seed: UInt64

    init(_ o: LuaOptions, _ args: LuaArgs, index: Int32, names: () throws -> [String]) throws {
        let tolerance = try o.number("tie_tolerance", default: defaultTieTolerance)
        if !(tolerance >= 0) { throw args.error(index, "option 'tie_tolerance': must be ≥ 0 (got \(tolerance))") }
        let test = try o.number("test_fraction", default: 0.02)
        if !(test >= 0) || !test.isFinite { throw args.error(index, "option 'test_fraction': must be a fraction in [0, 1) or a count ≥ 1 (got \(test))") }
        let seed = try o.integer("seed") ?? args.runSeed
        if seed < 0 { throw args.error(index, "option 'seed': must be ≥ 0 (got \(seed))") }
        testFraction = test
        self.seed = UInt64(seed)
        let ruleValue = o.values["rule"]
        if let f = ruleValue as? LuaRef {
            if o.has("k") { throw args.error(index, "option 'k' applies only to rule = \"k_of_n\"") }
            if o.has("tie_tolerance") { throw args.error(index, "option 'tie_tolerance' applies only to the built-in rules (a function rule sees the raw scores)") }
            rule = luaConsensusRule(f, names: try names(), on: args.L)
        } else if let name = ruleValue as? String ?? (ruleValue == nil ? "unanimous" : nil) {
            switch name {
            case "unanimous":
                if o.has("k") { throw args.error(index, "option 'k' applies only to rule = \"k_of_n\"") }
                rule = .unanimous(tieTolerance: tolerance)
            case "k_of_n":
                guard let k = try o.integer("k") else { throw args.error(index, "rule \"k_of_n\" needs option 'k' (how many members must agree)") }
                let n = try names().count      // 0: the file is unreadable, and its reader says so
                guard k >= 1 && (n == 0 || k <= n) else { throw args.error(index, "option 'k': must be in 1…\(n) (got \(k))") }
                rule = .kOfN(k: k, tieTolerance: tolerance)
            default:
                throw args.error(index, "option 'rule': unknown rule \"\(name)\"; expected \"unanimous\", \"k_of_n\" or a function")
            }
        } else {
            throw args.error(index, "option 'rule': expected string or function, got \(LuaOptions.luaTypeName(of: ruleValue!))")
        }
    }
}

/// A Lua rule function as a consensus rule: called per pair with `RulePair`'s table; must return a
/// boolean (true = clean). An error inside it keeps its own line, with the pair's idx appended.
func luaConsensusRule(_ f: LuaRef, names: [String], on L: OpaquePointer) -> ConsensusRule {
    .custom { pair in
        let result: [Any?]
        do { result = try f.call([RulePair(pair: pair, names: names)], results: 1, on: L) } catch let e as LuaError {
            throw e.inContext("in the rule function, pair idx \(pair.id)")
        }
        guard let verdict = result.first as? Bool else {
            let got = result.first.flatMap { $0 }.map(LuaOptions.luaTypeName(of:)) ?? "nil"
            throw CoreError("the rule function must return a boolean (true = clean), got \(got) for pair idx \(pair.id)")
        }
        return verdict
    }
}

/// The table a Lua rule function receives: `{idx =, winner =, scores = {name = {s0, s1}}, deltas = {name = s_w - s_l}}`.
/// Built with the C API directly: pushing the same shape as a `[String: Any]` through `LuaStack.push`
/// made the 851,293-pair file take 80 s CPU (each nested dictionary is bridged to NSDictionary in its
/// dynamic casts); this way the whole run, parse and Lua calls included, takes 4.2 s CPU.
struct RulePair: LuaPushable {
    let pair: ConsensusPair
    let names: [String]

    func push(to L: OpaquePointer) throws {
        guard lua_checkstack(L, 4) != 0 else { throw CoreError("Lua stack overflow building a rule pair") }
        let m = pair.scores.count
        lua_createtable(L, 0, 4)
        // stack: …, pair
        lua_pushinteger(L, lua_Integer(pair.id)); lua_setfield(L, -2, "idx")
        lua_pushinteger(L, lua_Integer(pair.winner)); lua_setfield(L, -2, "winner")
        lua_createtable(L, 0, Int32(m))
        lua_createtable(L, 0, Int32(m))
        // stack: …, pair, scores, deltas
        for (k, (s0, s1)) in pair.scores.enumerated() {
            let name = k < names.count ? names[k] : "member_\(k + 1)"
            lua_createtable(L, 2, 0)
            lua_pushnumber(L, s0); lua_rawseti(L, -2, 1)
            lua_pushnumber(L, s1); lua_rawseti(L, -2, 2)
            // stack: …, pair, scores, deltas, {s0, s1}
            lua_setfield(L, -3, name)
            lua_pushnumber(L, pair.winner == 0 ? s0 - s1 : s1 - s0)
            lua_setfield(L, -2, name)
        }
        // stack: …, pair, scores, deltas
        lua_setfield(L, -3, "deltas")
        lua_setfield(L, -2, "scores")
        // stack: …, pair
    }
}

/// The `*_score` keys of the first non-blank line, in order ([] if unreadable: `partitionScores`
/// then reports the problem with its file and line before any rule is called).
func firstLineScoreKeys(_ path: String) -> [String] {
    guard let file = try? MappedFile(path: path) else { return [] }
    let bytes = file.bytes
    var start = 0
    while start < bytes.count {
        var end = start
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        if line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) {
            guard case let .object(members)? = try? JSON.parse(bytes: line, name: path) else { return [] }
            return members.map(\.key).filter { $0.hasSuffix("_score") }
        }
        start = end + 1
    }
    return []
}

/// The report table of `partition_scores`.
func partitionReportTable(_ r: PartitionReport, dir: String) -> [String: Any] {
    var agreement: [String: Any] = [:], ties: [String: Any] = [:]
    for (k, name) in r.members.enumerated() { agreement[name] = r.agreementWithHuman[k]; ties[name] = r.ties[k] }
    return [
        "source": r.source, "members": r.members, "rule": r.rule,
        "total": r.total, "clean": r.clean, "clean_train": r.cleanTrain, "clean_test": r.cleanTest, "noisy": r.noisy,
        "clean_fraction": r.cleanFraction, "test_fraction": r.testFraction, "seed": Int(r.seed),
        "skipped_lines": r.skippedLines, "skipped_messages": r.skippedMessages,
        "missing_human_label": r.missingHumanLabel, "agreement_with_human": agreement, "ties": ties,
        "paths": ["clean": dir + "/clean.json", "clean_test": dir + "/clean_test.json",
                  "noisy": dir + "/noisy.json", "stats": dir + "/stats.yaml"],
    ]
}

/// `semidpo.committee.read_ids(path) -> {id, …}`: a JSON array of integer ids (ints or numeric
/// strings), e.g. `clean.json`; `path` relative to the current directory.
private func committee_read_ids(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "read_ids") { args in
        let path = try args.string(1)
        try args.push(try readIdList(inputPath(path)).map { Int($0) })
        return 1
    }
}

/// `semidpo.committee.write_ids(ids, path) -> absolute path`: writes `[1, 2, 3]` atomically, relative
/// to the run directory, recorded as a run output.
private func committee_write_ids(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "write_ids") { args in
        let ids = try args.integers(1)   // exact 64-bit integers, as read_ids reads them back
        let path = try args.run.resolve(args.string(2))
        try writeIdList(ids.map { Int64($0) }, to: path)
        try args.run.recordOutput(path)
        try args.push(path)
        return 1
    }
}
