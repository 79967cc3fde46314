// semidpo.stats: seeded bootstrap intervals (pooled over seeds), win rates with ties ½, paired permutation and
// sign tests, mean ± sd over seeds, and the claim checker (issue 16; definitions in docs/method.md "Uncertainty").
import Core
import Foundation

enum StatsBindings: LuaBindings {
    static let module: String? = "stats"
    static let functions: [LuaFunction] = [
        LuaFunction("bootstrap", stats_bootstrap),
        LuaFunction("win_rate", stats_win_rate),
        LuaFunction("permutation_test", stats_permutation_test),
        LuaFunction("sign_test", stats_sign_test),
        LuaFunction("over_seeds", stats_over_seeds),
        LuaFunction("claims", stats_claims),
        LuaFunction("paper_claims", stats_paper_claims),
    ]
}

private let bootstrapOptions = ["resamples", "level", "seed", "pooling"]

// MARK: - converting arguments

/// Per-seed lists from a `values` option: a list of numbers is one seed; a list of lists is one list per seed.
func statsSeedLists(_ v: Any?, option: String, args: LuaArgs, index: Int32 = 1) throws -> [[Double]] {
    func numbers(_ a: [Any], _ at: String) throws -> [Double] {
        try a.enumerated().map { i, e in
            if let d = e as? Double { return d }
            if let n = e as? Int { return Double(n) }
            throw args.error(index, "option '\(option)': \(at)element \(i + 1) is a \(LuaOptions.luaTypeName(of: e)), expected a number")
        }
    }
    guard let v else { throw args.error(index, "option '\(option)' is required") }
    guard let list = v as? [Any], !list.isEmpty else {
        throw args.error(index, "option '\(option)': expected a non-empty list of numbers (one seed) or of lists (one per seed)")
    }
    if list.allSatisfy({ $0 is [Any] }) {
        return try list.enumerated().map { s, e in
            let a = e as! [Any]
            guard !a.isEmpty else { throw args.error(index, "option '\(option)': seed \(s + 1) has no values") }
            return try numbers(a, "seed \(s + 1), ")
        }
    }
    return [try numbers(list, "")]
}

/// The bootstrap settings of an options table (`seed` defaults to the run's seed, `semidpo.seed`).
func statsBootstrapConfig(_ o: LuaOptions, args: LuaArgs) throws -> BootstrapConfig {
    var c = BootstrapConfig()
    c.resamples = try o.integer("resamples", default: 1000)
    guard c.resamples >= 10 && c.resamples <= 10_000_000 else { throw args.error(1, "option 'resamples': expected 10…10000000, got \(c.resamples)") }
    c.level = try o.number("level", default: 0.95)
    guard c.level > 0 && c.level < 1 else { throw args.error(1, "option 'level': expected a number in (0, 1), got \(c.level)") }
    c.seed = try statsSeed(o, args: args)
    let pooling = try o.string("pooling", default: Pooling.seedsAndPrompts.rawValue)
    guard let p = Pooling(rawValue: pooling) else {
        throw args.error(1, "option 'pooling': expected \(Pooling.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")), got '\(pooling)'")
    }
    c.pooling = p
    return c
}

private func statsSeed(_ o: LuaOptions, args: LuaArgs) throws -> UInt64 {
    let runSeed = ((try? args.lua.field("seed")) as? Int) ?? 0
    let seed = try o.integer("seed", default: runSeed)
    guard seed >= 0 else { throw args.error(1, "option 'seed': expected ≥ 0, got \(seed)") }
    return UInt64(seed)
}

/// `values` (− `paired_with`, when given: the paired difference) as one `SeedSample` per seed.
private func statsSamples(_ o: LuaOptions, args: LuaArgs) throws -> [SeedSample] {
    let a = try statsSeedLists(o.values["values"], option: "values", args: args)
    guard o.has("paired_with") else { return a.map(SeedSample.mean) }
    let b = try statsSeedLists(o.values["paired_with"], option: "paired_with", args: args)
    return try pairedLists(a, b, args: args).map { try SeedSample.paired($0.0, $0.1) }
}

private func pairedLists(_ a: [[Double]], _ b: [[Double]], args: LuaArgs) throws -> [([Double], [Double])] {
    guard a.count == b.count else { throw args.error(1, "option 'paired_with': \(b.count) seeds, 'values' has \(a.count)") }
    for s in a.indices where a[s].count != b[s].count {
        throw args.error(1, "option 'paired_with': \(a.count > 1 ? "seed \(s + 1) has " : "")\(b[s].count) values, 'values' has \(a[s].count); pair the same prompts in the same order")
    }
    return Array(zip(a, b))
}

// MARK: - converting results

/// An estimate as a Lua table: {mean, lo, hi, level, half_width, per_seed, sd (over seeds; nil for one seed),
/// seeds, n (units per seed), resamples, pooling}.
func statsEstimateTable(_ e: Estimate) -> [String: Any] {
    var t: [String: Any] = ["mean": e.mean, "lo": e.lo, "hi": e.hi, "level": e.level, "half_width": e.halfWidth, "per_seed": e.perSeed,
                            "seeds": e.seeds, "n": e.counts, "resamples": e.resamples, "pooling": e.pooling.rawValue]
    if e.seeds > 1 { t["sd"] = e.sdOverSeeds }
    return t
}

/// An interval cell from a Lua table with at least `mean`, `lo`, `hi` (what `semidpo.stats.bootstrap` returns).
func statsEstimate(from d: [String: Any], at: String, args: LuaArgs, index: Int32 = 1) throws -> Estimate {
    func num(_ k: String) -> Double? { (d[k] as? Double) ?? (d[k] as? Int).map(Double.init) }
    guard let mean = num("mean"), let lo = num("lo"), let hi = num("hi") else {
        throw args.error(index, "\(at): an interval cell needs numbers 'mean', 'lo' and 'hi' (a result of semidpo.stats.bootstrap)")
    }
    guard lo <= hi || !(lo.isFinite && hi.isFinite) else { throw args.error(index, "\(at): interval lo \(lo) > hi \(hi)") }
    let perSeed = (d["per_seed"] as? [Any])?.compactMap { ($0 as? Double) ?? ($0 as? Int).map(Double.init) } ?? [mean]
    let counts: [Int]
    if let n = d["n"] as? Int { counts = Array(repeating: n, count: max(1, perSeed.count)) } else { counts = (d["n"] as? [Any])?.compactMap { $0 as? Int } ?? [] }
    return Estimate(mean: mean, lo: lo, hi: hi, level: num("level") ?? 0.95, perSeed: perSeed, counts: counts,
                    resamples: d["resamples"] as? Int ?? 0, pooling: (d["pooling"] as? String).flatMap(Pooling.init(rawValue:)) ?? .seedsAndPrompts)
}

private func claimTable(_ r: ClaimResult) -> [String: Any] {
    var t: [String: Any] = ["name": r.name, "statement": r.statement, "verdict": r.verdict.rawValue]
    if let e = r.estimate { for (k, v) in statsEstimateTable(e) { t[k] = v } }
    if let d = r.direction { t["direction"] = d.rawValue }
    if let th = r.threshold { t["threshold"] = th }
    if let n = r.note { t["note"] = n }
    if !r.parts.isEmpty { t["parts"] = r.parts.map(claimTable) }
    return t
}

// MARK: - functions

/// `semidpo.stats.bootstrap{values = {…} | {{…}, …} [, paired_with = same shape], resamples = 1000, level = 0.95,
/// seed = semidpo.seed, pooling = "seeds_and_prompts" | "prompts"} -> {mean, lo, hi, level, half_width, per_seed, sd, seeds, n, …}`
private func stats_bootstrap(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "bootstrap") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["values", "paired_with"] + bootstrapOptions)
        let config = try statsBootstrapConfig(o, args: args)
        let samples = try statsSamples(o, args: args)
        do { try args.push(statsEstimateTable(try Statistics.bootstrap(samples, config: config))) } catch let e as CoreError {
            throw args.error(1, e.message)
        }
        return 1
    }
}

/// `semidpo.stats.win_rate{values = A, paired_with = B, ties = 0.5, …bootstrap options} -> estimate table`:
/// the share of prompts where A scores higher than B, a tie counting `ties` (0 = the authors' strict count).
private func stats_win_rate(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "win_rate") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["values", "paired_with", "ties"] + bootstrapOptions)
        let config = try statsBootstrapConfig(o, args: args)
        let tie = try o.number("ties", default: 0.5)
        guard tie >= 0 && tie <= 1 else { throw args.error(1, "option 'ties': expected a number in [0, 1], got \(tie)") }
        let a = try statsSeedLists(o.values["values"], option: "values", args: args)
        let b = try statsSeedLists(o.values["paired_with"], option: "paired_with", args: args)
        let pairs = try pairedLists(a, b, args: args)
        do {
            try args.push(statsEstimateTable(try Statistics.winRate(pairs.map(\.0), over: pairs.map(\.1), tie: tie, config: config)))
        } catch let e as CoreError { throw args.error(1, e.message) }
        return 1
    }
}

/// `semidpo.stats.permutation_test{values = {…} | {{…}, …} [, paired_with =], resamples = 10000, seed = semidpo.seed,
/// exact_limit = 20} -> {p, exact, resamples, statistic}`: two-sided paired sign-flip test (values are the
/// differences when `paired_with` is absent); exact for ≤ exact_limit differences, Monte-Carlo with +1 otherwise.
private func stats_permutation_test(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "permutation_test") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["values", "paired_with", "resamples", "seed", "exact_limit"])
        let d = try statsSamples(o, args: args).map { $0.strata[0].values }
        let resamples = try o.integer("resamples", default: 10_000)
        guard resamples >= 10 && resamples <= 10_000_000 else { throw args.error(1, "option 'resamples': expected 10…10000000, got \(resamples)") }
        let limit = try o.integer("exact_limit", default: 20)
        guard limit >= 0 && limit <= 24 else { throw args.error(1, "option 'exact_limit': expected 0…24, got \(limit)") }
        do {
            let r = try Statistics.permutationTest(d, resamples: resamples, seed: try statsSeed(o, args: args), exactLimit: limit)
            try args.push(["p": r.p, "exact": r.exact, "resamples": r.resamples, "statistic": r.statistic] as [String: Any])
        } catch let e as CoreError { throw args.error(1, e.message) }
        return 1
    }
}

/// `semidpo.stats.sign_test{values = {…} | {{…}, …} [, paired_with =]} -> {p, positive, negative, ties}`:
/// two-sided exact binomial sign test on the paired differences (zeros left out), pooled over seeds.
private func stats_sign_test(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "sign_test") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["values", "paired_with"])
        do {
            let r = try Statistics.signTest(try statsSamples(o, args: args).map { $0.strata[0].values })
            try args.push(["p": r.p, "positive": r.positive, "negative": r.negative, "ties": r.ties] as [String: Any])
        } catch let e as CoreError { throw args.error(1, e.message) }
        return 1
    }
}

/// `semidpo.stats.over_seeds{values = {x_seed1, …} | {{per-prompt of seed 1}, …} [, paired_with =], …bootstrap options}
/// -> {mean, sd, seeds, per_seed [, lo, hi, level, n, …]}`: mean ± sd (n − 1) of the per-seed statistics; given
/// per-prompt lists, also the pooled interval over seeds × prompts.
private func stats_over_seeds(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "over_seeds") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["values", "paired_with"] + bootstrapOptions)
        guard let list = o.values["values"] as? [Any], !list.isEmpty else {
            throw args.error(1, "option 'values': expected a non-empty list of per-seed numbers or of per-seed lists")
        }
        if list.allSatisfy({ $0 is Double || $0 is Int }) {
            guard !o.has("paired_with") else { throw args.error(1, "option 'paired_with' needs per-prompt lists in 'values'") }
            let per = list.map { ($0 as? Double) ?? Double($0 as! Int) }
            let s = Statistics.overSeeds(per)
            var t: [String: Any] = ["mean": s.mean, "seeds": s.seeds, "per_seed": per]
            if s.seeds > 1 { t["sd"] = s.sd }
            try args.push(t)
            return 1
        }
        guard list.allSatisfy({ $0 is [Any] }) else { throw args.error(1, "option 'values': mix of numbers and lists; give one number or one list per seed") }
        let config = try statsBootstrapConfig(o, args: args)
        let samples = try statsSamples(o, args: args)
        do { try args.push(statsEstimateTable(try Statistics.bootstrap(samples, config: config))) } catch let e as CoreError {
            throw args.error(1, e.message)
        }
        return 1
    }
}

/// One claim from its Lua table: `{name =, statement =, all = {claim, …}}` or
/// `{name =, quantity =, values =, paired_with =, above = x | below = x}`.
private func parseClaim(_ v: Any, at: String, args: LuaArgs) throws -> Claim {
    guard let d = v as? [String: Any] else { throw args.error(1, "\(at): expected a table {name =, …}, got \(LuaOptions.luaTypeName(of: v))") }
    guard let name = d["name"] as? String, !name.isEmpty else { throw args.error(1, "\(at): field 'name' (a string) is required") }
    let at = "\(at) ('\(name)')"
    if let all = d["all"] {
        let known: Set<String> = ["name", "statement", "all"]
        if let k = d.keys.sorted().first(where: { !known.contains($0) }) { throw args.error(1, "\(at): unknown field '\(k)' in an all-of claim (name, statement, all)") }
        guard let parts = all as? [Any], !parts.isEmpty else { throw args.error(1, "\(at): field 'all' must be a non-empty list of claims") }
        return .allOf(name: name, statement: d["statement"] as? String ?? name,
                      parts: try parts.enumerated().map { try parseClaim($1, at: "\(at), part \($0 + 1)", args: args) })
    }
    let known: Set<String> = ["name", "quantity", "values", "paired_with", "above", "below"]
    if let k = d.keys.sorted().first(where: { !known.contains($0) }) {
        throw args.error(1, "\(at): unknown field '\(k)' (name, quantity, values, paired_with, above | below; or name, statement, all)")
    }
    func num(_ k: String) throws -> Double? {
        guard let x = d[k] else { return nil }
        if let x = x as? Double { return x }
        if let x = x as? Int { return Double(x) }
        throw args.error(1, "\(at): field '\(k)' must be a number, got \(LuaOptions.luaTypeName(of: x))")
    }
    let above = try num("above"), below = try num("below")
    guard (above == nil) != (below == nil) else { throw args.error(1, "\(at): give exactly one of 'above' or 'below' (the claimed side of a threshold)") }
    let a = try statsSeedLists(d["values"], option: "\(at) values", args: args)
    var samples = a.map(SeedSample.mean)
    if let pw = d["paired_with"] {
        let b = try statsSeedLists(pw, option: "\(at) paired_with", args: args)
        samples = try pairedLists(a, b, args: args).map { try SeedSample.paired($0.0, $0.1) }
    }
    let quantity = d["quantity"] as? String ?? (d["paired_with"] != nil ? "\(name): difference" : name)
    return .test(name: name, quantity: quantity, samples: samples, direction: above != nil ? .above : .below, threshold: above ?? below!)
}

/// Checks `claims`, writes `<path>.md` and the `tables.json` entry when `path` is given, returns the result tables.
private func checkAndWrite(_ claims: [Claim], _ o: LuaOptions, args: LuaArgs) throws -> Int32 {
    let config = try statsBootstrapConfig(o, args: args)
    let decimals = try o.integer("decimals", default: 4)
    guard decimals >= 0 && decimals <= 12 else { throw args.error(1, "option 'decimals': expected 0…12, got \(decimals)") }
    let results: [ClaimResult]
    do { results = try claims.map { try ClaimChecker.check($0, config: config) } } catch let e as CoreError { throw args.error(1, e.message) }
    var out: [String: Any] = ["claims": results.map(claimTable)]
    if let path = try o.string("path") {
        let files: (markdown: String, json: String)
        do {
            files = try ClaimChecker.write(results, name: path, directory: try args.run.outputDirectory,
                                           title: try o.string("title", default: "Claims"), decimals: decimals)
        } catch let e as CoreError { throw args.error(1, e.message) }
        for p in [files.markdown, files.json] { try args.run.recordOutput(p) }
        out["markdown"] = files.markdown
        out["json"] = files.json
    }
    try args.push(out)
    return 1
}

/// `semidpo.stats.claims{claims = {claim, …}, path = "claims"?, title = "Claims", decimals = 4, …bootstrap options}
/// -> {claims = {{name, statement, verdict, mean, lo, hi, …, parts}, …}, markdown =, json =}`
private func stats_claims(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "claims") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["claims", "path", "title", "decimals"] + bootstrapOptions)
        guard let list = o.values["claims"] as? [Any], !list.isEmpty else { throw args.error(1, "option 'claims': expected a non-empty list of claims") }
        let claims = try list.enumerated().map { try parseClaim($1, at: "option 'claims': claim \($0 + 1)", args: args) }
        return try checkAndWrite(claims, o, args: args)
    }
}

/// `semidpo.stats.paper_claims{seeds = {tables, …}, semi = "Semi-DPO", baselines = {"Diffusion-DPO", "Diffusion-KTO"},
/// minority = 0.5, late_after = 650, path =, title =, decimals =, …bootstrap options} -> as `claims`.
/// Each seed's tables: {kept = {bool per pair}, agrees = {1|0|0.5 per pair}, scores = {suite = {method = {per prompt}}},
/// iterations = {suite = {{iter 0}, {iter 1}, {iter 2}}}, committees = {suite = {{2 members}, {3}, …}},
/// anchors = {{t = 50, values = {per pair} | accuracy}, …}} (any part may be absent from every seed).
private func stats_paper_claims(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "paper_claims") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["seeds", "semi", "baselines", "minority", "late_after", "path", "title", "decimals"] + bootstrapOptions)
        var paper = PaperClaims()
        paper.semi = try o.string("semi", default: paper.semi)
        paper.baselines = try o.strings("baselines") ?? paper.baselines
        guard !paper.baselines.isEmpty else { throw args.error(1, "option 'baselines': expected at least one method name") }
        paper.minority = try o.number("minority", default: paper.minority)
        paper.lateAfter = try o.integer("late_after", default: paper.lateAfter)
        guard let list = o.values["seeds"] as? [Any], !list.isEmpty else { throw args.error(1, "option 'seeds': expected a non-empty list of per-seed tables") }
        let seeds = try list.enumerated().map { s, v in try parseSeedTables(v, at: "option 'seeds': seed \(s + 1)", args: args) }
        let claims: [Claim]
        do { claims = try paper.claims(seeds) } catch let e as CoreError { throw args.error(1, e.message) }
        return try checkAndWrite(claims, o, args: args)
    }
}

private func parseSeedTables(_ v: Any, at: String, args: LuaArgs) throws -> PaperSeedTables {
    guard let d = v as? [String: Any] else { throw args.error(1, "\(at): expected a table {scores =, …}, got \(LuaOptions.luaTypeName(of: v))") }
    let known: Set<String> = ["kept", "agrees", "scores", "iterations", "committees", "anchors"]
    if let k = d.keys.sorted().first(where: { !known.contains($0) }) {
        throw args.error(1, "\(at): unknown field '\(k)' (kept, agrees, scores, iterations, committees, anchors)")
    }
    func numbers(_ x: Any?, _ what: String) throws -> [Double] {
        guard let a = x as? [Any], !a.isEmpty else { throw args.error(1, "\(at): \(what): expected a non-empty list of numbers") }
        return try a.enumerated().map { i, e in
            if let n = e as? Double { return n }
            if let n = e as? Int { return Double(n) }
            throw args.error(1, "\(at): \(what): element \(i + 1) is a \(LuaOptions.luaTypeName(of: e)), expected a number")
        }
    }
    func bySuite(_ key: String) throws -> [String: Any] {
        guard let x = d[key] else { return [:] }
        if let a = x as? [Any], a.isEmpty { return [:] }
        guard let t = x as? [String: Any] else { throw args.error(1, "\(at): '\(key)' must be a table {suite = …}") }
        return t
    }
    var t = PaperSeedTables()
    if let k = d["kept"] {
        guard let a = k as? [Any], !a.isEmpty, a.allSatisfy({ $0 is Bool }) else { throw args.error(1, "\(at): 'kept' must be a non-empty list of booleans (one per pair)") }
        t.kept = a.map { $0 as! Bool }
    }
    if d["agrees"] != nil { t.agrees = try numbers(d["agrees"], "'agrees'") }
    for (suite, methods) in try bySuite("scores") {
        guard let m = methods as? [String: Any] else { throw args.error(1, "\(at): scores.\(suite) must be a table {method = {per-prompt scores}}") }
        var byMethod: [String: [Double]] = [:]
        for (name, v) in m { byMethod[name] = try numbers(v, "scores.\(suite)[\"\(name)\"]") }
        t.scores[suite] = byMethod
    }
    for (key, assign) in [("iterations", 0), ("committees", 1)] {
        for (suite, lists) in try bySuite(key) {
            guard let l = lists as? [Any], !l.isEmpty else { throw args.error(1, "\(at): \(key).\(suite) must be a list of per-prompt lists") }
            let cols = try l.enumerated().map { try numbers($1, "\(key).\(suite)[\($0 + 1)]") }
            if assign == 0 { t.iterations[suite] = cols } else { t.committees[suite] = cols }
        }
    }
    if let a = d["anchors"] {
        guard let list = a as? [Any] else { throw args.error(1, "\(at): 'anchors' must be a list of {t =, values =}") }
        t.anchors = try list.enumerated().map { i, e in
            guard let x = e as? [String: Any], let ti = x["t"] as? Int else { throw args.error(1, "\(at): anchors[\(i + 1)] must be {t = integer, values = …}") }
            if let acc = x["values"] as? Double { return (ti, [acc]) }
            return (ti, try numbers(x["values"], "anchors[\(i + 1)].values"))
        }
    }
    return t
}

// MARK: - semidpo.eval tables with intervals

/// `semidpo.eval.means_table` and `semidpo.eval.win_rate_table`: the paper's score and win-rate tables with
/// intervals over seeds × prompts, from evaluations (EvalScores) or their per-prompt records.
enum EvalIntervalBindings: LuaBindings {
    static let module: String? = "eval"
    static let functions: [LuaFunction] = [
        LuaFunction("means_table", eval_means_table),
        LuaFunction("win_rate_table", eval_win_rate_table),
        LuaFunction("geneval_table", eval_geneval_table),
        LuaFunction("geneval_passes", eval_geneval_passes),
    ]
}

/// One method's per-seed scores: a list of seeds, each an EvalScores or a table {metric = {score per prompt}};
/// a single EvalScores or metric table is one seed. Returns the scores and, per seed, the EvalScores if given.
private func seedScores(_ v: Any?, at: String, args: LuaArgs) throws -> ([SeedScores], [EvalScores?]) {
    func one(_ e: Any, _ where_: String) throws -> (SeedScores, EvalScores?) {
        if let o = e as? EvalScoresObject {
            return (Dictionary(uniqueKeysWithValues: zip(o.scores.metrics, o.scores.values)), o.scores)
        }
        guard let d = e as? [String: Any] else {
            throw args.error(1, "\(where_): expected EvalScores or a table {metric = {score per prompt}}, got \(LuaOptions.luaTypeName(of: e))")
        }
        var out: SeedScores = [:]
        for (metric, list) in d {
            guard let l = list as? [Any], !l.isEmpty else { throw args.error(1, "\(where_): metric '\(metric)' must be a non-empty list of scores") }
            out[metric] = try l.enumerated().map { i, x in
                if let x = x as? Double { return x }
                if let x = x as? Int { return Double(x) }
                throw args.error(1, "\(where_): metric '\(metric)', prompt \(i + 1) is a \(LuaOptions.luaTypeName(of: x)), expected a number")
            }
        }
        return (out, nil)
    }
    guard let v else { throw args.error(1, "\(at) is required (a list of per-seed evaluations)") }
    if let list = v as? [Any] {
        guard !list.isEmpty else { throw args.error(1, "\(at): no seeds") }
        let got = try list.enumerated().map { try one($1, "\(at), seed \($0 + 1)") }
        return (got.map(\.0), got.map(\.1))
    }
    let got = try one(v, at)
    return ([got.0], [got.1])
}

/// A row `{label, …, key = …}`: its string labels (keys 1…k) and the fields.
private func rowParts(_ v: Any, _ i: Int, labels k: Int, args: LuaArgs) throws -> ([String], [String: Any]) {
    guard let d = v as? [String: Any] else { throw args.error(1, "option 'rows': row \(i + 1) must be {label, …, seeds = …} (labels and named fields)") }
    let labels = try (1...max(k, 1)).prefix(k).map { j -> String in
        guard let s = d[String(j)] as? String else { throw args.error(1, "option 'rows': row \(i + 1) needs \(k) text labels first, label \(j) is missing or not a string") }
        return s
    }
    if let extra = d.keys.compactMap(Int.init).first(where: { $0 > k }) {
        throw args.error(1, "option 'rows': row \(i + 1) has \(extra) labels for \(k) label columns")
    }
    return (labels, d)
}

private func tableCommon(_ o: LuaOptions, args: LuaArgs) throws -> (title: String, path: String, labels: [String], metrics: [String], style: ResultTable.IntervalStyle, unit: String) {
    let title = try o.required("title", o.string("title"))
    let path = try o.required("path", o.string("path"))
    let labels = try o.required("columns", o.strings("columns"))
    let metrics = try o.required("metrics", o.strings("metrics"))
    guard !metrics.isEmpty else { throw args.error(1, "option 'metrics': expected at least one metric name") }
    let style = try o.string("interval", default: "range")
    guard let s = ResultTable.IntervalStyle(rawValue: style) else { throw args.error(1, "option 'interval': expected 'range' or 'pm', got '\(style)'") }
    return (title, path, labels, metrics, s, try o.string("unit", default: "prompts"))
}

/// `headers = {metric = "column header", …}`: prints a metric's column under another name (e.g. `overall` as
/// "overall (MPS role)"); `tables.json` uses the header too, as it does for `semidpo.eval.table`.
private func renameColumns(_ table: inout ResultTable, _ o: LuaOptions, args: LuaArgs) throws {
    guard let h = o.values["headers"] else { return }
    guard let d = h as? [String: Any] else { throw args.error(1, "option 'headers': expected a table {metric = \"header\"}") }
    for (metric, v) in d {
        guard let name = v as? String else { throw args.error(1, "option 'headers': header of '\(metric)' must be a string") }
        guard table.columns.contains(metric) else { throw args.error(1, "option 'headers': no column '\(metric)' (columns: \(table.columns.joined(separator: ", ")))") }
        table.columns = table.columns.map { $0 == metric ? name : ($0 == "Δ " + metric ? "Δ " + name : ($0 == "p " + metric ? "p " + name : $0)) }
    }
}

private func writeTable(_ table: ResultTable, path: String, args: LuaArgs) throws -> Int32 {
    let files: (markdown: String, csv: String, json: String)
    do { files = try TableFiles.write(table, name: path, directory: try args.run.outputDirectory) } catch let e as CoreError { throw args.error(1, e.message) }
    for p in [files.markdown, files.csv, files.json] { try args.run.recordOutput(p) }
    try args.push(["markdown": files.markdown, "csv": files.csv, "json": files.json] as [String: Any])
    return 1
}

/// `semidpo.eval.means_table{title =, path =, columns = {label column, …}, metrics = {metric, …},
/// rows = {{label, …, seeds = {EvalScores | {metric = {…}}, …}}, …}, decimals = 3, interval = "range" | "pm",
/// unit = "prompts", headers = {metric = header}?, …bootstrap options} -> {markdown =, csv =, json =}`: each cell the mean of a metric
/// over prompts, pooled over seeds, with its interval.
private func eval_means_table(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "means_table") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["title", "path", "columns", "metrics", "rows", "decimals", "interval", "unit", "headers"] + bootstrapOptions)
        let c = try tableCommon(o, args: args)
        let config = try statsBootstrapConfig(o, args: args)
        let decimals = try o.integer("decimals", default: 3)
        guard decimals >= 0 && decimals <= 12 else { throw args.error(1, "option 'decimals': expected 0…12, got \(decimals)") }
        guard let list = o.values["rows"] as? [Any] else { throw args.error(1, "option 'rows': expected a list of rows") }
        let rows = try list.enumerated().map { i, v -> (labels: [String], seeds: [SeedScores]) in
            let (labels, d) = try rowParts(v, i, labels: c.labels.count, args: args)
            if let k = d.keys.first(where: { Int($0) == nil && $0 != "seeds" }) { throw args.error(1, "option 'rows': row \(i + 1): unknown field '\(k)' (seeds)") }
            return (labels, try seedScores(d["seeds"], at: "option 'rows': row \(i + 1) field 'seeds'", args: args).0)
        }
        var table: ResultTable
        do {
            table = try IntervalTables.means(title: c.title, labelColumns: c.labels, metrics: c.metrics, rows: rows, config: config, decimals: decimals)
        } catch let e as CoreError { throw args.error(1, e.message) }
        table.intervalStyle = c.style
        table.unit = c.unit
        try renameColumns(&table, o, args: args)
        return try writeTable(table, path: c.path, args: args)
    }
}

/// `semidpo.eval.win_rate_table{title =, path =, columns = {label column, …}, metrics = {…},
/// rows = {{label, …, a = seeds, b = seeds}, …}, ties = 0.5, percent = true, test_metric = "overall" | false,
/// permutation_resamples = 10000, decimals = 1, interval =, unit =, …bootstrap options} -> {markdown =, csv =, json =}`:
/// per metric the win rate of A over B with its interval; for `test_metric` also Δ = A − B with its interval and
/// the permutation p-value. EvalScores on both sides must have scored the same prompts with the same seed.
private func eval_win_rate_table(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "win_rate_table") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["title", "path", "columns", "metrics", "rows", "ties", "percent", "test_metric",
                                               "permutation_resamples", "decimals", "interval", "unit", "headers"] + bootstrapOptions)
        let c = try tableCommon(o, args: args)
        let config = try statsBootstrapConfig(o, args: args)
        let tie = try o.number("ties", default: 0.5)
        guard tie >= 0 && tie <= 1 else { throw args.error(1, "option 'ties': expected a number in [0, 1], got \(tie)") }
        var testMetric: String? = "overall"
        if let b = o.values["test_metric"] as? Bool {
            guard !b else { throw args.error(1, "option 'test_metric': expected a metric name or false, got true") }
            testMetric = nil
        } else if o.has("test_metric") {
            testMetric = try o.string("test_metric")
        }
        let resamples = try o.integer("permutation_resamples", default: 10_000)
        guard resamples >= 10 && resamples <= 10_000_000 else { throw args.error(1, "option 'permutation_resamples': expected 10…10000000, got \(resamples)") }
        let decimals = try o.integer("decimals", default: 1)
        guard decimals >= 0 && decimals <= 12 else { throw args.error(1, "option 'decimals': expected 0…12, got \(decimals)") }
        guard let list = o.values["rows"] as? [Any] else { throw args.error(1, "option 'rows': expected a list of rows") }
        let rows = try list.enumerated().map { i, v -> (labels: [String], a: [SeedScores], b: [SeedScores]) in
            let (labels, d) = try rowParts(v, i, labels: c.labels.count, args: args)
            if let k = d.keys.first(where: { Int($0) == nil && $0 != "a" && $0 != "b" }) { throw args.error(1, "option 'rows': row \(i + 1): unknown field '\(k)' (a, b)") }
            let a = try seedScores(d["a"], at: "option 'rows': row \(i + 1) field 'a'", args: args)
            let b = try seedScores(d["b"], at: "option 'rows': row \(i + 1) field 'b'", args: args)
            for (s, pair) in zip(a.1, b.1).enumerated() {
                guard let x = pair.0, let y = pair.1 else { continue }
                guard x.prompts == y.prompts && x.seed == y.seed else {
                    throw args.error(1, "option 'rows': row \(i + 1), seed \(s + 1): A and B did not score the same prompts with the same sampling seed")
                }
            }
            return (labels, a.0, b.0)
        }
        var table: ResultTable
        do {
            table = try IntervalTables.winRates(title: c.title, labelColumns: c.labels, metrics: c.metrics, rows: rows, tie: tie,
                                                percent: try o.boolean("percent", default: true), testMetric: testMetric, config: config,
                                                permutationResamples: resamples, decimals: decimals)
        } catch let e as CoreError { throw args.error(1, e.message) }
        table.intervalStyle = c.style
        table.unit = c.unit
        try renameColumns(&table, o, args: args)
        return try writeTable(table, path: c.path, args: args)
    }
}

/// `semidpo.eval.geneval_passes(scores) -> {category = {{1 | 0 per image of the prompt}, … per prompt of that category}}`:
/// the GenEval-like checks to keep in a stage record (for `geneval_table`), grouped by prompt (several images per
/// prompt with `eval.run{min_images =}`; otherwise one per prompt).
private func eval_geneval_passes(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "geneval_passes") { args in
        let o = try args.object(1, EvalScoresObject.self)
        guard !o.scores.genevalPasses.isEmpty else { throw args.error(1, "these scores have no GenEval categories (evaluate the 'geneval' suite)") }
        try args.push(passesTable(o))
        return 1
    }
}

/// The `seeds` of a `geneval_table` row: EvalScores, or a table {category = {per prompt: 1 | 0 (one image) or
/// {1 | 0 per image}}} (what `geneval_passes` returns), or a list of these (one per seed).
private func genevalSeeds(_ v: Any?, at: String, args: LuaArgs) throws -> [GenevalPasses] {
    func one(_ e: Any, _ where_: String) throws -> GenevalPasses {
        if let o = e as? EvalScoresObject { return o.scores.genevalPasses }
        guard let d = e as? [String: Any] else {
            throw args.error(1, "\(where_): expected EvalScores or a table {category = {pass per prompt}}, got \(LuaOptions.luaTypeName(of: e))")
        }
        func pass(_ x: Any, _ what: String) throws -> Double {
            if let x = x as? Double { return x }
            if let x = x as? Int { return Double(x) }
            throw args.error(1, "\(where_): \(what) is a \(LuaOptions.luaTypeName(of: x)), expected 1 or 0 (or a list of them, one per image)")
        }
        var out: GenevalPasses = [:]
        for (category, list) in d {
            guard let l = list as? [Any], !l.isEmpty else { throw args.error(1, "\(where_): category '\(category)' must be a non-empty list (one entry per prompt)") }
            out[category] = try l.enumerated().map { i, x in
                guard let images = x as? [Any] else { return [try pass(x, "category '\(category)', prompt \(i + 1)")] }
                guard !images.isEmpty else { throw args.error(1, "\(where_): category '\(category)', prompt \(i + 1) has no images") }
                return try images.enumerated().map { try pass($1, "category '\(category)', prompt \(i + 1), image \($0 + 1)") }
            }
        }
        return out
    }
    guard let v else { throw args.error(1, "\(at) is required (a list of per-seed evaluations)") }
    if let list = v as? [Any] {
        guard !list.isEmpty else { throw args.error(1, "\(at): no seeds") }
        return try list.enumerated().map { try one($1, "\(at), seed \($0 + 1)") }
    }
    return [try one(v, at)]
}

/// `semidpo.eval.geneval_table{title =, path =, columns = {label column, …}, rows = {{label, …, seeds = {EvalScores |
/// geneval_passes table, …}}, …}, percent = true, decimals = 1, interval =, unit =, …bootstrap options}
/// -> {markdown =, csv =, json =}`: pass rate per category and overall (the mean of the category rates) with intervals,
/// a prompt's value being its images' pass rate (prompts are resampled, not images), then the rows "prompts",
/// "images per prompt", "images" and "seeds" (`IntervalTables.geneval`).
private func eval_geneval_table(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "geneval_table") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["title", "path", "columns", "rows", "percent", "decimals", "interval", "unit"] + bootstrapOptions)
        let title = try o.required("title", o.string("title"))
        let path = try o.required("path", o.string("path"))
        let labels = try o.required("columns", o.strings("columns"))
        let style = try o.string("interval", default: "range")
        guard let intervalStyle = ResultTable.IntervalStyle(rawValue: style) else { throw args.error(1, "option 'interval': expected 'range' or 'pm', got '\(style)'") }
        let config = try statsBootstrapConfig(o, args: args)
        let decimals = try o.integer("decimals", default: 1)
        guard decimals >= 0 && decimals <= 12 else { throw args.error(1, "option 'decimals': expected 0…12, got \(decimals)") }
        guard let list = o.values["rows"] as? [Any], !list.isEmpty else { throw args.error(1, "option 'rows': expected a non-empty list of rows") }
        let rows = try list.enumerated().map { i, v -> (labels: [String], seeds: [GenevalPasses]) in
            let (l, d) = try rowParts(v, i, labels: labels.count, args: args)
            if let k = d.keys.first(where: { Int($0) == nil && $0 != "seeds" }) { throw args.error(1, "option 'rows': row \(i + 1): unknown field '\(k)' (seeds)") }
            return (l, try genevalSeeds(d["seeds"], at: "option 'rows': row \(i + 1) field 'seeds'", args: args))
        }
        var table: ResultTable
        do {
            table = try IntervalTables.geneval(title: title, labelColumns: labels, rows: rows, percent: try o.boolean("percent", default: true),
                                               config: config, decimals: decimals)
        } catch let e as CoreError { throw args.error(1, e.message) }
        table.intervalStyle = intervalStyle
        table.unit = try o.string("unit", default: "prompts")
        return try writeTable(table, path: path, args: args)
    }
}

private func passesTable(_ o: EvalScoresObject) -> [String: Any] { o.scores.genevalPasses.mapValues { $0.map { $0.map { $0 as Any } as Any } } as [String: Any] }
