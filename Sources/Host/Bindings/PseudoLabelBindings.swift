// semidpo.pseudolabel: pseudo-label selection over the official confidence shards and label JSON
// (`select_file`, with the accuracy guard as a table or a Lua function), numpy's percentile, and accuracy per anchor.
import CLua
import Core
import Foundation

enum PseudoLabelBindings: LuaBindings {
    static let module: String? = "pseudolabel"
    static let functions: [LuaFunction] = [
        LuaFunction("select", pseudolabel_select),
        LuaFunction("select_file", pseudolabel_select_file),
        LuaFunction("percentile", pseudolabel_percentile),
        LuaFunction("accuracy", pseudolabel_accuracy),
    ]
}

/// One anchor's ranking magnitudes as a guard function sees them: `m:percentile(q)` (numpy's
/// linear rule over the anchor's non-zero |z|).
final class AnchorMagnitudes: LuaObject {
    static let luaTypeName = "AnchorMagnitudes"
    static let luaMethods: [LuaFunction] = [LuaFunction("percentile", magnitudes_percentile)]
    let anchor: Int
    let percentile: (Double) -> Double
    init(anchor: Int, percentile: @escaping (Double) -> Double) { self.anchor = anchor; self.percentile = percentile }
    var luaDescription: String { "AnchorMagnitudes: timestep_\(anchor)" }
}

/// `m:percentile(q) -> cutoff`, q in [0, 100].
private func magnitudes_percentile(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "percentile") { args in
        let m = try args.this(AnchorMagnitudes.self)
        let q = try args.number(2)
        if !(q >= 0 && q <= 100) { throw args.error(2, "percentile must be in [0, 100], got \(q)") }
        try args.push(m.percentile(q))
        return 1
    }
}

/// The selection options shared by `select` and `select_file`, parsed and checked.
private struct SelectionOptions {
    var mode: SelectionMode
    var values: [Double]
    var pastRule: PastRule
    var accuracyGuard: AccuracyGuard?

    /// `hasTest`: whether `test_confidence` was given (the accuracy guard needs it).
    init(_ o: LuaOptions, _ args: LuaArgs, hasTest: Bool) throws {
        do { mode = try SelectionMode(name: o.string("mode", default: "percentile")) } catch let e as CoreError {
            throw args.error(1, "option 'mode': \(e.message)")
        }
        if let v = try? o.number("values") { values = [v] } else if let v = try? o.numbers("values") { values = v } else if o.has("values") {
            throw args.error(1, "option 'values': expected number or array of numbers, got \(LuaOptions.luaTypeName(of: o.values["values"]!))")
        } else if mode == .percentile { values = [80] } else {
            throw args.error(1, "option 'values' is required for mode \"\(mode.rawValue)\"")
        }
        if values.isEmpty { throw args.error(1, "option 'values': expected at least one value") }
        let pr = try o.string("past_rule", default: "key_present")
        guard let parsed = PastRule(rawValue: pr) else {
            throw args.error(1, "option 'past_rule': unknown rule \"\(pr)\"; expected \"key_present\" or \"non_zero\"")
        }
        pastRule = parsed
        switch o.values["guard"] {
        case nil: accuracyGuard = AccuracyGuard()
        case let b as Bool: accuracyGuard = b ? AccuracyGuard() : nil
        case let t as [String: Any]:
            for k in t.keys.sorted() where k != "floor" && k != "raise_to" {
                throw args.error(1, "option 'guard': unknown field '\(k)'; expected floor, raise_to")
            }
            func num(_ k: String, _ d: Double) throws -> Double {
                guard let v = t[k] else { return d }
                if let x = v as? Double { return x }
                if let x = v as? Int { return Double(x) }
                throw args.error(1, "option 'guard': field '\(k)' expected number, got \(LuaOptions.luaTypeName(of: v))")
            }
            let floor = try num("floor", 0.70), raiseTo = try num("raise_to", 90)
            if !(floor >= 0 && floor <= 1) { throw args.error(1, "option 'guard': floor is an accuracy in [0, 1], got \(floor)") }
            if !(raiseTo >= 0 && raiseTo <= 100) { throw args.error(1, "option 'guard': raise_to is a percentile in [0, 100], got \(raiseTo)") }
            if !hasTest {
                throw args.error(1, "option 'guard': the accuracy guard needs 'test_confidence' (the clean test split's confidences)")
            }
            accuracyGuard = AccuracyGuard(floor: floor, raiseTo: raiseTo)
        case let f as LuaRef:
            let L = args.L
            accuracyGuard = AccuracyGuard(rule: { stats in try callGuard(f, stats, on: L) })
        case let v?:
            throw args.error(1, "option 'guard': expected table, boolean or function, got \(LuaOptions.luaTypeName(of: v))")
        }
    }
}

private let selectFileOptions = ["confidence", "mode", "values", "past", "clean", "test_confidence", "guard", "past_rule", "out"]

/// `semidpo.pseudolabel.select_file{ confidence =, mode = "percentile", values = 80 | {…}, past = FILE | {FILE, …}?,
/// clean = FILE?, test_confidence = FILE?, guard = {floor = 0.70, raise_to = 90} | false | function(stats) -> rule,
/// past_rule = "key_present" | "non_zero", out = FILE } -> report`
///
/// Inputs resolve relative to the current directory; `out` relative to the run directory (recorded
/// as a run output). Without `guard` the paper's guard applies whenever `test_confidence` is given.
/// A guard function is called once per anchor with `{anchor, accuracy (nil without test_confidence),
/// proposed = {mode, value}, count, positive_share, mean_abs, max_abs, magnitudes}` (`magnitudes:percentile(q)`)
/// and returns a rule `{mode =, value =}` or a number (the proposed mode with that value).
private func pseudolabel_select_file(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "select_file") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: selectFileOptions)
        guard let confidence = try o.string("confidence") else {
            throw args.error(1, "option 'confidence' is required (a confidence shard file or directory)")
        }
        guard let out = try o.string("out") else { throw args.error(1, "option 'out' is required (the pseudo-label JSON to write)") }
        let past: [String]
        if let p = try? o.string("past") { past = [p] } else if let p = try? o.strings("past") { past = p } else if o.has("past") {
            throw args.error(1, "option 'past': expected file name or array of file names, got \(LuaOptions.luaTypeName(of: o.values["past"]!))")
        } else { past = [] }
        let clean = try o.string("clean")
        let testConfidence = try o.string("test_confidence")
        let sel = try SelectionOptions(o, args, hasTest: testConfidence != nil)

        let run = try args.run
        let outPath = run.resolve(out)
        try FileManager.default.createDirectory(atPath: (outPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let report = try selectFile(confidence: inputPath(confidence), mode: sel.mode, values: sel.values, past: past.map(inputPath),
                                    clean: clean.map(inputPath), out: outPath, testConfidence: testConfidence.map(inputPath),
                                    accuracyGuard: sel.accuracyGuard, pastRule: sel.pastRule)
        run.recordOutput(outPath)
        try args.push(selectionReportTable(report.result, pairsIn: report.pairsIn, out: report.output, summary: report.summary))
        return 1
    }
}

/// `semidpo.pseudolabel.select{ confidence = Confidence, mode =, values =, past = Labels | {Labels, …}?,
/// clean = {id, …} | Pairs?, test_confidence = Confidence?, guard =, past_rule =, pairs = Pairs? } -> Labels, report`
///
/// The selection of `select_file` on confidence objects in memory: the same rules, guard, past and
/// clean semantics and the same labels (a test checks both routes agree). The Labels' rows are the
/// confidence's pairs in its order (or `pairs`' order when given), ready for `dpo.train{unlabeled =, pseudo =}`;
/// `labels:write(path)` writes the official file, and the Labels go into a later `past`.
private func pseudolabel_select(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "select") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["confidence", "mode", "values", "past", "clean", "test_confidence", "guard", "past_rule", "pairs"])
        guard let confidence = try o.object("confidence", ConfidenceObject.self) else {
            throw args.error(1, "option 'confidence' is required (a Confidence from semidpo.dpo.confidence; files go to select_file)")
        }
        let test = try o.object("test_confidence", ConfidenceObject.self)
        let sel = try SelectionOptions(o, args, hasTest: test != nil)
        var pastList: [PseudoLabels] = []
        switch o.values["past"] {
        case nil: break
        case let l as LabelsObject: pastList = [try l.idKeyed("past")]
        case let a as [Any]:
            for (i, v) in a.enumerated() {
                guard let l = v as? LabelsObject else {
                    throw args.error(1, "option 'past': element \(i + 1) is a \(LuaOptions.luaTypeName(of: v)), expected Labels")
                }
                pastList.append(try l.idKeyed("past[\(i + 1)]"))
            }
        case let v?: throw args.error(1, "option 'past': expected Labels or a list of Labels, got \(LuaOptions.luaTypeName(of: v))")
        }
        var clean: [Int64] = []
        switch o.values["clean"] {
        case nil: break
        case let p as PairSource: clean = p.ids
        case let a as [Any]:
            clean = try a.enumerated().map { i, v in
                guard let id = v as? Int else { throw args.error(1, "option 'clean': element \(i + 1) is not an integer id") }
                return Int64(id)
            }
        case let v?: throw args.error(1, "option 'clean': expected a list of ids or Pairs, got \(LuaOptions.luaTypeName(of: v))")
        }
        let result = try selectPseudoLabels(confidence.scores, mode: sel.mode, values: sel.values,
                                            past: pastList.isEmpty ? nil : PseudoLabels.merged(pastList), clean: clean,
                                            testTable: test?.scores, accuracyGuard: sel.accuracyGuard, pastRule: sel.pastRule)
        let rowIds = try o.object("pairs", PairSource.self)?.ids ?? confidence.scores.ids
        try args.push(LabelsObject(try AnchorLabels(result.labels, alignedTo: rowIds), ids: rowIds, source: result.labels))
        let summary = "\(confidence.scores.count) pairs in, \(result.labels.count) out\n" + result.summary
        try args.push(selectionReportTable(result, pairsIn: confidence.scores.count, out: nil, summary: summary))
        return 2
    }
}

/// Calls a Lua guard function for one anchor and converts its answer to a rule.
private func callGuard(_ f: LuaRef, _ s: AnchorStatistics, on L: OpaquePointer) throws -> AnchorRule {
    var stats: [String: Any] = [
        "anchor": s.anchor, "proposed": ["mode": s.proposed.mode.rawValue, "value": s.proposed.value] as [String: Any],
        "count": s.count, "positive_share": s.positiveShare, "mean_abs": s.meanAbs, "max_abs": s.maxAbs,
        "magnitudes": AnchorMagnitudes(anchor: s.anchor, percentile: s.absPercentile),
    ]
    if let a = s.accuracy { stats["accuracy"] = a }
    let result: [Any?]
    do { result = try f.call([stats], results: 1, on: L) } catch let e as LuaError {
        throw LuaError(kind: e.kind, message: e.message + " (in the guard function, anchor \(s.anchor))", traceback: e.traceback)
    }
    let where_ = "the guard function (anchor \(s.anchor))"
    switch result.first ?? nil {
    case let x as Double: return AnchorRule(s.proposed.mode, x)
    case let x as Int: return AnchorRule(s.proposed.mode, Double(x))
    case let t as [String: Any]:
        for k in t.keys.sorted() where k != "mode" && k != "value" {
            throw CoreError("\(where_) returned a rule with unknown field '\(k)'; expected mode, value")
        }
        let mode: SelectionMode
        if let m = t["mode"] {
            guard let name = m as? String else { throw CoreError("\(where_) returned mode of type \(LuaOptions.luaTypeName(of: m)), expected string") }
            mode = try SelectionMode(name: name)
        } else { mode = s.proposed.mode }
        guard let v = t["value"] else { throw CoreError("\(where_) returned a rule without 'value'") }
        guard let x = (v as? Double) ?? (v as? Int).map(Double.init) else {
            throw CoreError("\(where_) returned value of type \(LuaOptions.luaTypeName(of: v)), expected number")
        }
        return AnchorRule(mode, x)
    case let v?:
        throw CoreError("\(where_) must return a rule {mode =, value =} or a number, got \(LuaOptions.luaTypeName(of: v))")
    case nil:
        throw CoreError("\(where_) must return a rule {mode =, value =} or a number, got nil")
    }
}

/// The report table of `select_file` and `select`: totals and one row per anchor.
func selectionReportTable(_ res: SelectionResult, pairsIn: Int, out: String?, summary: String) -> [String: Any] {
    let rows: [Any] = res.labels.anchors.enumerated().map { j, t in
        var row: [String: Any] = [
            "anchor": t, "mode": res.rules[j].mode.rawValue, "value": res.rules[j].value,
            "plus": res.histogram[j][2], "minus": res.histogram[j][0], "zero": res.histogram[j][1],
        ]
        if !res.targets[j].isNaN { row["target"] = res.targets[j] }
        if !res.cutoffs[j].isNaN { row["cutoff"] = res.cutoffs[j] }
        if let a = res.accuracy[j] { row["accuracy"] = a }
        return row
    }
    var t: [String: Any] = ["pairs_in": pairsIn, "pairs_out": res.labels.count, "clean": res.cleanCount,
                             "anchors": res.labels.anchors, "per_anchor": rows, "summary": summary]
    if let out { t["out"] = out }
    return t
}

/// `semidpo.pseudolabel.percentile(values, q) -> number`: numpy's default (linear) percentile,
/// `np.percentile(values, q)` bit for bit; q in [0, 100].
private func pseudolabel_percentile(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "percentile") { args in
        var x = try args.numbers(1)
        if x.isEmpty { throw args.error(1, "expected a non-empty array of numbers") }
        if let i = x.firstIndex(where: { $0.isNaN }) { throw args.error(1, "element \(i + 1) is NaN") }
        let q = try args.number(2)
        if !(q >= 0 && q <= 100) { throw args.error(2, "percentile must be in [0, 100], got \(q)") }
        try args.push(numpyPercentile(&x, q))
        return 1
    }
}

/// `semidpo.pseudolabel.accuracy(confidence) -> {{anchor =, accuracy =}, …}`: the share of z > 0
/// (ties ½) per anchor of a confidence file or directory (the paper's Table 7 on the clean test
/// split); `accuracy` is nil at an anchor without values.
private func pseudolabel_accuracy(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "accuracy") { args in
        let table = try ConfidenceTable.read(inputPath(try args.string(1)))
        let acc = table.accuracy()
        let rows: [Any] = table.anchors.enumerated().map { j, t in
            var row: [String: Any] = ["anchor": t]
            if let a = acc[j] { row["accuracy"] = a }
            return row
        }
        try args.push(rows)
        return 1
    }
}
