// Pseudo-label selection from a confidence table: per-anchor cutoffs (percentile, absolute threshold,
// top-k), the automatic accuracy guard, past labels ranked last, clean pairs +1, unlabelled pairs dropped.
import Foundation

/// How an anchor's cutoff is chosen (the authors' `--mode`).
public enum SelectionMode: String, CaseIterable {
    /// Cutoff = numpy's default (linear) percentile of the anchor's ranking magnitudes; keep |z| ≥ cutoff.
    case percentile
    /// Cutoff = the value itself; keep |z| ≥ value.
    case threshold
    /// The k most confident pairs (ties broken by file order).
    case topK = "top_k"

    public init(name: String) throws {
        guard let m = SelectionMode(rawValue: name) ?? (name == "topk" || name == "topK" ? .topK : nil) else {
            throw CoreError("unknown selection mode \"\(name)\"; expected percentile, threshold or top_k")
        }
        self = m
    }
}

/// The selection applied at one anchor.
public struct AnchorRule: Equatable, CustomStringConvertible {
    public var mode: SelectionMode
    public var value: Double
    public init(_ mode: SelectionMode, _ value: Double) { self.mode = mode; self.value = value }
    public static func percentile(_ q: Double) -> AnchorRule { AnchorRule(.percentile, q) }
    public static func threshold(_ x: Double) -> AnchorRule { AnchorRule(.threshold, x) }
    public static func topK(_ k: Int) -> AnchorRule { AnchorRule(.topK, Double(k)) }
    public var description: String { "\(mode.rawValue) \(value)" }

    func validate(anchor: Int) throws {
        switch mode {
        case .percentile: if !(value >= 0 && value <= 100) { throw CoreError("anchor \(anchor): percentile must be in [0, 100] (got \(value))") }
        case .threshold: if value.isNaN { throw CoreError("anchor \(anchor): threshold is NaN") }
        case .topK: if !(value >= 0) || value.isInfinite { throw CoreError("anchor \(anchor): top_k must be ≥ 0 (got \(value))") }
        }
    }
}

/// One value for every anchor, or one per anchor (the authors' `--values`).
public func anchorRules(mode: SelectionMode, values: [Double], anchors: [Int]) throws -> [AnchorRule] {
    guard values.count == 1 || values.count == anchors.count else {
        throw CoreError("expected 1 or \(anchors.count) selection values (one per anchor \(anchors)), got \(values.count)")
    }
    let rules = anchors.indices.map { AnchorRule(mode, values.count == 1 ? values[0] : values[$0]) }
    for (r, t) in zip(rules, anchors) { try r.validate(anchor: t) }
    return rules
}

/// numpy's default percentile (`method="linear"`, numpy ≥ 1.22), reproduced operation for operation:
/// q' = q/100, v = (n−1)·q', i = ⌊v⌋, γ = v − i, a = x₍ᵢ₎, b = x₍ᵢ₊₁₎ (order statistics, both x₍ₙ₋₁₎
/// when v ≥ n−1), result = a + (b−a)·γ, or b − (b−a)·(1−γ) when γ ≥ ½ (numpy's `_lerp`).
/// `x` is reordered in place. Returns 0 for an empty array (the authors' convention).
public func numpyPercentile(_ x: inout [Double], _ q: Double) -> Double {
    let n = x.count
    if n == 0 { return 0 }
    let v = Double(n - 1) * (q / 100)
    var i = Int(v.rounded(.down))
    let gamma = v - Double(i)
    if v >= Double(n - 1) { i = n - 1 }
    if v < 0 { i = 0 }
    let a = quickselect(&x, i)
    let b: Double
    if i + 1 < n && v < Double(n - 1) {
        var m = x[i + 1]
        for k in (i + 2)..<max(i + 2, n) { m = min(m, x[k]) }
        b = m
    } else { b = a }
    let d = b - a
    return gamma >= 0.5 ? b - d * (1 - gamma) : a + d * gamma
}

/// Reorders `x` so that x[k] is the k-th smallest, everything before ≤ it and after ≥ it; returns x[k].
func quickselect(_ x: inout [Double], _ k: Int) -> Double {
    x.withUnsafeMutableBufferPointer { p in
        var lo = 0, hi = p.count - 1
        while hi > lo {
            if hi - lo < 16 {  // insertion sort
                for i in lo + 1...hi { let t = p[i]; var j = i - 1; while j >= lo && p[j] > t { p[j + 1] = p[j]; j -= 1 }; p[j + 1] = t }
                break
            }
            let mid = lo + (hi - lo) / 2
            if p[mid] < p[lo] { p.swapAt(mid, lo) }
            if p[hi] < p[lo] { p.swapAt(hi, lo) }
            if p[hi] < p[mid] { p.swapAt(hi, mid) }
            let pivot = p[mid]
            var i = lo, j = hi
            while i <= j {
                while p[i] < pivot { i += 1 }
                while p[j] > pivot { j -= 1 }
                if i <= j { p.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return p[k]
    }
}

/// What an accuracy-guard rule sees about one anchor.
public struct AnchorStatistics {
    public let anchor: Int
    /// Accuracy on the clean test split (nil if no test confidences were given).
    public let accuracy: Double?
    /// The rule from `mode`/`values` before the guard.
    public let proposed: AnchorRule
    /// Pairs with a non-zero z at this anchor (the ranking's size).
    public let count: Int
    /// Share of those with z > 0 (the model agrees with the human label).
    public let positiveShare: Double
    public let meanAbs: Double
    public let maxAbs: Double
    /// numpy-linear percentile q ∈ [0, 100] of the anchor's ranking magnitudes.
    public let absPercentile: (Double) -> Double
}

/// The automatic accuracy guard: an anchor whose clean-test accuracy is below `floor` gets its
/// percentile raised to `raiseTo` (paper App. 6.9: 80th everywhere, 90th where accuracy < 70%).
/// A `rule` replaces the built-in logic entirely (the Lua binding passes a Lua function here).
public struct AccuracyGuard {
    public var floor: Double
    public var raiseTo: Double
    public var rule: ((AnchorStatistics) throws -> AnchorRule)?

    public init(floor: Double = 0.70, raiseTo: Double = 90, rule: ((AnchorStatistics) throws -> AnchorRule)? = nil) {
        self.floor = floor; self.raiseTo = raiseTo; self.rule = rule
    }

    /// Built-in: percentile rules at anchors with accuracy < floor become percentile max(q, raiseTo).
    public func apply(_ s: AnchorStatistics) throws -> AnchorRule {
        if let rule { return try rule(s) }
        guard s.proposed.mode == .percentile, let acc = s.accuracy, acc < floor else { return s.proposed }
        return .percentile(max(s.proposed.value, raiseTo))
    }
}

/// When a pair counts as "labelled at an anchor in an earlier iteration".
public enum PastRule: String {
    /// The past file has the anchor's key for the pair, whatever its value — exactly the authors'
    /// `key in past_labels.get(idx, {})`. Their files hold every anchor key for each kept pair, so a
    /// pair kept in any earlier iteration is ranked last at every anchor.
    case keyPresent = "key_present"
    /// The past label at the anchor is non-zero (the paper's wording).
    case nonZero = "non_zero"
}

/// What a selection did, per anchor.
public struct SelectionResult {
    public var labels: PseudoLabels
    public var rules: [AnchorRule]
    /// Per anchor: the percentile value / threshold / k-th magnitude that was compared against.
    public var targets: [Double]
    /// Per anchor: the smallest ranking magnitude kept (the authors' reported cutoff), NaN if none.
    public var cutoffs: [Double]
    /// Per anchor: counts of labels −1, 0, +1 over the kept pairs (the authors' histogram).
    public var histogram: [[Int]]
    public var accuracy: [Double?]
    public var cleanCount: Int

    public var summary: String {
        var s = "anchor      rule              cutoff        +1        -1         0  accuracy\n"
        for (j, t) in labels.anchors.enumerated() {
            s += String(format: "%6d  %-16@ %10.4f %9d %9d %9d  %@\n", t, rules[j].description as NSString, cutoffs[j],
                        histogram[j][2], histogram[j][0], histogram[j][1], (accuracy[j].map { String(format: "%.4f", $0) } ?? "-") as NSString)
        }
        return s + "kept \(labels.count) pairs (\(cleanCount) clean)\n"
    }
}

/// Selects pseudo-labels (reference: `select_pseudo_labels` in the authors' `semi_dpo/pseudo_labels.py`).
///
/// Per anchor t, over the pairs with z ≠ 0 in table order, a ranking magnitude m = |z|, or m = 0 for
/// pairs labelled at t in `past` (ranked last). Percentile: cutoff = numpyPercentile(all m, q), keep
/// m ≥ cutoff; threshold: keep m ≥ value; top_k: the k largest m, ties in table order. A kept pair gets
/// sign(z) at t, all others 0. Then every `clean` id gets +1 at every anchor (added after the table's
/// pairs if absent), and pairs with no non-zero label are dropped.
public func selectPseudoLabels(_ table: ConfidenceTable, rules: [AnchorRule], past: PseudoLabels? = nil,
                               clean: [Int64] = [], pastRule: PastRule = .keyPresent,
                               accuracy: [Double?]? = nil) throws -> SelectionResult {
    let a = table.anchors.count, n = table.count
    guard rules.count == a else { throw CoreError("\(rules.count) rules for \(a) anchors") }
    for (r, t) in zip(rules, table.anchors) { try r.validate(anchor: t) }
    // Past rows per table row and past anchor column per table anchor.
    var pastRow = [Int32](repeating: -1, count: n)
    var pastCol = [Int](repeating: -1, count: a)
    if let past {
        var index = IdIndex(capacity: past.count)
        for (r, id) in past.ids.enumerated() { _ = index.insert(id, row: Int32(r)) }
        for r in 0..<n { pastRow[r] = index.find(table.ids[r]) ?? -1 }
        for (j, t) in table.anchors.enumerated() { pastCol[j] = past.anchors.firstIndex(of: t) ?? -1 }
    }
    var labels = [Int8](repeating: 0, count: n * a)
    var targets = [Double](repeating: .nan, count: a), cutoffs = targets
    let pastAnchors = past?.anchors.count ?? 0
    let pastLabels = past?.labels ?? []
    table.values.withUnsafeBufferPointer { vals in
        labels.withUnsafeMutableBufferPointer { out in
            targets.withUnsafeMutableBufferPointer { tgt in
                cutoffs.withUnsafeMutableBufferPointer { cut in
                    DispatchQueue.concurrentPerform(iterations: a) { j in
                        do {  // one anchor per task; anchors are independent
                            var m = [Double](), rows = [Int32]()
                            m.reserveCapacity(n); rows.reserveCapacity(n)
                            for r in 0..<n {
                                let z = vals[r * a + j]
                                if z == 0 || z.isNaN { continue }  // authors: row.get(key, 0.0) == 0 → skipped
                                var labelled = false
                                if pastRow[r] >= 0 && pastCol[j] >= 0 {
                                    let l = pastLabels[Int(pastRow[r]) * pastAnchors + pastCol[j]]
                                    labelled = pastRule == .keyPresent ? l != PseudoLabels.absent : (l != 0 && l != PseudoLabels.absent)
                                }
                                m.append(labelled ? 0 : abs(z)); rows.append(Int32(r))
                            }
                            let rule = rules[j]
                            var target: Double
                            var chosen = [Bool](repeating: false, count: m.count)
                            switch rule.mode {
                            case .percentile, .threshold:
                                if rule.mode == .percentile { var tmp = m; target = numpyPercentile(&tmp, rule.value) } else { target = rule.value }
                                for i in m.indices where m[i] >= target { chosen[i] = true }
                            case .topK:
                                let k = Int(rule.value)
                                if k >= m.count {
                                    for i in m.indices { chosen[i] = true }
                                    target = m.isEmpty ? .nan : (m.min() ?? .nan)
                                } else if k > 0 {
                                    var tmp = m
                                    target = quickselect(&tmp, m.count - k)  // the k-th largest
                                    var left = k
                                    for i in m.indices where m[i] > target { chosen[i] = true; left -= 1 }
                                    for i in m.indices where left > 0 && m[i] == target { chosen[i] = true; left -= 1 }
                                } else { target = .nan }
                            }
                            var lowest = Double.infinity
                            for i in m.indices where chosen[i] {
                                let r = Int(rows[i])
                                out[r * a + j] = vals[r * a + j] > 0 ? 1 : -1
                                lowest = min(lowest, m[i])
                            }
                            tgt[j] = target
                            cut[j] = lowest.isInfinite ? .nan : lowest
                        }
                    }
                }
            }
        }
    }
    // Clean pairs: +1 at every anchor (overwriting, or appended in clean-list order).
    var ids = table.ids
    var index = IdIndex(capacity: n + clean.count)
    for (r, id) in ids.enumerated() { _ = index.insert(id, row: Int32(r)) }
    for id in clean {
        let (row, inserted) = index.insert(id, row: Int32(ids.count))
        if inserted { ids.append(id); labels.append(contentsOf: repeatElement(1, count: a)) } else {
            for j in 0..<a { labels[Int(row) * a + j] = 1 }
        }
    }
    // Drop pairs with no non-zero label; count the histogram over the kept ones.
    var keepIds: [Int64] = [], keepLabels: [Int8] = []
    keepIds.reserveCapacity(ids.count); keepLabels.reserveCapacity(labels.count)
    var histogram = [[Int]](repeating: [0, 0, 0], count: a)
    for r in ids.indices {
        let row = labels[r * a..<(r + 1) * a]
        if !row.contains(where: { $0 != 0 }) { continue }
        keepIds.append(ids[r]); keepLabels.append(contentsOf: row)
        for (j, l) in row.enumerated() { histogram[j][Int(l) + 1] += 1 }
    }
    return SelectionResult(labels: try PseudoLabels(anchors: table.anchors, ids: keepIds, labels: keepLabels),
                           rules: rules, targets: targets, cutoffs: cutoffs, histogram: histogram,
                           accuracy: accuracy ?? Array(repeating: nil, count: a), cleanCount: clean.count)
}

/// Applies an accuracy guard to proposed rules: per anchor, the statistics of the table's non-zero z
/// and the accuracy (from the clean test split's table, matched by anchor value) go to `guard.apply`.
public func guardedRules(_ table: ConfidenceTable, proposed: [AnchorRule], accuracy: [Double?],
                         guard g: AccuracyGuard) throws -> [AnchorRule] {
    let a = table.anchors.count
    return try (0..<a).map { j in
        var mags: [Double] = [], pos = 0
        if g.rule != nil {  // the built-in guard needs only the accuracy
            mags.reserveCapacity(table.count)
            for r in 0..<table.count {
                let z = table.value(row: r, anchor: j)
                if z == 0 || z.isNaN { continue }
                mags.append(abs(z)); if z > 0 { pos += 1 }
            }
        }
        let frozen = mags
        let stats = AnchorStatistics(anchor: table.anchors[j], accuracy: accuracy[j], proposed: proposed[j], count: frozen.count,
                                     positiveShare: frozen.isEmpty ? 0 : Double(pos) / Double(frozen.count),
                                     meanAbs: frozen.isEmpty ? 0 : frozen.reduce(0, +) / Double(frozen.count),
                                     maxAbs: frozen.max() ?? 0,
                                     absPercentile: { q in var t = frozen; return numpyPercentile(&t, q) })
        let rule = try g.apply(stats)
        try rule.validate(anchor: table.anchors[j])
        return rule
    }
}

/// What `selectFile` did.
public struct SelectionReport {
    public var result: SelectionResult
    public var pairsIn: Int
    public var output: String
    public var summary: String { "\(pairsIn) pairs in, \(result.labels.count) out → \(output)\n" + result.summary }
}

/// Pseudo-labelling over the official files: `confidence` (a shard file or a directory of
/// `confidence_rank*.jsonl`), `mode` and `values` (one or one per anchor), `past` pseudo-label files of
/// earlier iterations (later files win per pair), `clean` (JSON array of clean ids, +1 everywhere),
/// `out` (pseudo-label JSON, written atomically). With `testConfidence` (the clean test split's
/// confidences) the accuracy per anchor is measured and `accuracyGuard` (default: the paper's 70% →
/// 90th-percentile guard) adjusts the rules; pass `accuracyGuard: nil` to disable the guard.
@discardableResult
public func selectFile(confidence: String, mode: SelectionMode, values: [Double], past: [String] = [],
                       clean: String? = nil, out: String, testConfidence: String? = nil,
                       accuracyGuard: AccuracyGuard? = AccuracyGuard(), pastRule: PastRule = .keyPresent) throws -> SelectionReport {
    let table = try ConfidenceTable.read(confidence)
    let test = try testConfidence.map { try ConfidenceTable.read($0) }
    let pastLabels = past.isEmpty ? nil : PseudoLabels.merged(try past.map(PseudoLabels.read))
    let cleanIds = try clean.map(readIdList) ?? []
    let result = try selectPseudoLabels(table, mode: mode, values: values, past: pastLabels, clean: cleanIds,
                                        testTable: test, accuracyGuard: accuracyGuard, pastRule: pastRule)
    try result.labels.write(out)
    return SelectionReport(result: result, pairsIn: table.count, output: out)
}

/// The selection `selectFile` makes, on tables in memory: rules from `mode`/`values`, the accuracy per
/// anchor on `testTable` (matched by anchor value) and the guard applied to the rules when `testTable`
/// is given (a guard with its own `rule` applies also without it), then `selectPseudoLabels`.
/// Throws when no pair received a non-zero label.
public func selectPseudoLabels(_ table: ConfidenceTable, mode: SelectionMode, values: [Double], past: PseudoLabels? = nil,
                               clean: [Int64] = [], testTable test: ConfidenceTable? = nil,
                               accuracyGuard: AccuracyGuard? = AccuracyGuard(), pastRule: PastRule = .keyPresent) throws -> SelectionResult {
    var rules = try anchorRules(mode: mode, values: values, anchors: table.anchors)
    var accuracy: [Double?] = Array(repeating: nil, count: table.anchors.count)
    if let test {
        let acc = test.accuracy()
        accuracy = table.anchors.map { t in test.anchors.firstIndex(of: t).flatMap { acc[$0] } }
        if let g = accuracyGuard { rules = try guardedRules(table, proposed: rules, accuracy: accuracy, guard: g) }
    } else if let g = accuracyGuard, g.rule != nil {
        rules = try guardedRules(table, proposed: rules, accuracy: accuracy, guard: g)
    }
    let result = try selectPseudoLabels(table, rules: rules, past: past, clean: clean, pastRule: pastRule, accuracy: accuracy)
    if result.labels.count == 0 {
        throw CoreError("no pair received a non-zero label (all confidences zero? the checkpoint may equal the reference); loosen the selection")
    }
    return result
}
