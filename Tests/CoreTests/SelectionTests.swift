// Tests of pseudo-label selection on a small hand-worked confidence table, numpy's percentile rule,
// the accuracy guard, past labels ranked last, clean +1, dropped pairs, and the file round trips.
import Foundation
import Testing
@testable import Core

/// Anchors 50 and 150; pairs 10…15 (0 = no label possible at that anchor):
///   id      10    11    12    13    14    15
///   t=50    1.0  -3.0   2.0   0    -0.5   4.0     non-zero |z| sorted: 0.5 1 2 3 4
///   t=150  -2.0   1.0   0.25  3.0   0    -1.0     non-zero |z| sorted: 0.25 1 1 2 3
/// numpy linear percentile, n = 5: v = (n−1)·q/100.
///   q = 80: v = 3.2, i = 3, γ = 0.2 → t=50: 3 + (4−3)·0.2 = 3.2;  t=150: 2 + (3−2)·0.2 = 2.2
///   q = 50: v = 2.0, i = 2, γ = 0   → t=50: 2;                  t=150: 1
func handConfidence() throws -> ConfidenceTable {
    try ConfidenceTable(anchors: [50, 150], ids: [10, 11, 12, 13, 14, 15],
                        values: [1.0, -2.0, -3.0, 1.0, 2.0, 0.25, 0, 3.0, -0.5, 0, 4.0, -1.0])
}

func labelDict(_ l: PseudoLabels) -> [Int64: [Int8]] {
    Dictionary(uniqueKeysWithValues: l.ids.enumerated().map { ($1, Array(l.labels[$0 * l.anchors.count..<($0 + 1) * l.anchors.count])) })
}

@Test func numpyPercentileMatchesNumpy() {
    // Golden values from numpy 2.4.6: float(np.percentile(arr, q)).
    let cases: [([Double], Double, Double)] = [
        ([0.5, 1, 2, 3, 4], 80, 3.2), ([0.25, 1, 1, 2, 3], 80, 2.2), ([0.1, 0.2, 0.3], 80, 0.26),
        ([0.1, 0.2, 0.3, 0.7], 87.5, 0.5499999999999999),   // γ = 0.625 ≥ ½: b − (b−a)(1−γ)
        ([1.7, 0.3, 2.9, 0.05, 1.1, 4.4, 0.8], 33, 0.79), ([5.0], 80, 5.0),
        ([0.1, 0.2, 0.3, 0.7], 90, 0.5800000000000001),
    ]
    for (arr, q, want) in cases {
        var x = arr.shuffled()
        #expect(numpyPercentile(&x, q) == want, "\(arr) q=\(q)")
    }
    var empty: [Double] = []
    #expect(numpyPercentile(&empty, 80) == 0)
    var big = (0..<10_001).map { Double(($0 * 7919) % 10_001) }                 // a permutation of 0…10000
    #expect(numpyPercentile(&big, 80) == 8000)
}

@Test func percentileSelectionWithCleanPairs() throws {
    let t = try handConfidence()
    let r = try selectPseudoLabels(t, rules: try anchorRules(mode: .percentile, values: [80], anchors: t.anchors), clean: [12, 99])
    // t=50 keeps |z| ≥ 3.2 → 15 (+1); t=150 keeps |z| ≥ 2.2 → 13 (+1); clean 12 and 99 (absent: appended) +1
    // everywhere; 10, 11, 14 have no label → dropped. Order: table order, then new clean ids.
    #expect(r.labels.ids == [12, 13, 15, 99])
    #expect(labelDict(r.labels) == [12: [1, 1], 13: [0, 1], 15: [1, 0], 99: [1, 1]])
    #expect(abs(r.targets[0] - 3.2) < 1e-12 && abs(r.targets[1] - 2.2) < 1e-12)
    #expect(r.cutoffs == [4, 3])                                                // smallest kept |z|
    #expect(r.histogram == [[0, 1, 3], [0, 1, 3]])                              // (−1, 0, +1) over kept pairs
    let dir = tempDir("sel")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try r.labels.write(dir + "/l.json")
    #expect(try String(contentsOfFile: dir + "/l.json", encoding: .utf8) ==
        #"{"12": {"timestep_50": 1, "timestep_150": 1}, "13": {"timestep_50": 0, "timestep_150": 1}, "15": {"timestep_50": 1, "timestep_150": 0}, "99": {"timestep_50": 1, "timestep_150": 1}}"#)
}

@Test func lowerPercentileGivesSignedLabels() throws {
    let t = try handConfidence()
    let r = try selectPseudoLabels(t, rules: [.percentile(50), .percentile(50)])
    // t=50: |z| ≥ 2 → 11 (−1), 12 (+1), 15 (+1); t=150: |z| ≥ 1 → 10 (−1), 11 (+1), 13 (+1), 15 (−1).
    #expect(labelDict(r.labels) == [10: [0, -1], 11: [-1, 1], 12: [1, 0], 13: [0, 1], 15: [1, -1]])
}

@Test func pastLabelsAreRankedLast() throws {
    let t = try handConfidence()
    // 15 has a past key at t=50 only (its value 0 there): ranking magnitudes at 50 become 1 3 2 0.5 0
    // → sorted 0 0.5 1 2 3, median 1 → keep 10 (+1), 11 (−1), 12 (+1); 15 drops to 0 at t=50.
    // t=150 unchanged (no past key): 10 (−1), 11 (+1), 13 (+1), 15 (−1).
    let past = try PseudoLabels(anchors: [50], ids: [15], labels: [0])
    let r = try selectPseudoLabels(t, rules: [.percentile(50), .percentile(50)], past: past)
    #expect(labelDict(r.labels) == [10: [1, -1], 11: [-1, 1], 12: [1, 0], 13: [0, 1], 15: [0, -1]])
    // The paper's wording (.nonZero): a past 0 is not a label, so 15 ranks normally (same as no past).
    let r2 = try selectPseudoLabels(t, rules: [.percentile(50), .percentile(50)], past: past, pastRule: .nonZero)
    #expect(labelDict(r2.labels) == [10: [0, -1], 11: [-1, 1], 12: [1, 0], 13: [0, 1], 15: [1, -1]])
}

@Test func thresholdAndTopK() throws {
    let t = try handConfidence()
    let th = try selectPseudoLabels(t, rules: try anchorRules(mode: .threshold, values: [2.0], anchors: [50, 150]))
    // |z| ≥ 2: t=50 → 11, 12, 15; t=150 → 10, 13.
    #expect(labelDict(th.labels) == [10: [0, -1], 11: [-1, 0], 12: [1, 0], 13: [0, 1], 15: [1, 0]])
    // top 2 at t=50: 4 (15), 3 (11); top 3 at t=150: 3 (13), 2 (10), then the tie at 1 between 11 and 15
    // goes to the earlier pair, 11.
    let tk = try selectPseudoLabels(t, rules: [.topK(2), .topK(3)])
    #expect(labelDict(tk.labels) == [10: [0, -1], 11: [-1, 1], 13: [0, 1], 15: [1, 0]])
    #expect(tk.cutoffs == [3, 1])
    #expect(throws: CoreError.self) { try anchorRules(mode: .percentile, values: [80, 90, 95], anchors: [50, 150]) }
    #expect(throws: CoreError.self) { try anchorRules(mode: .percentile, values: [101], anchors: [50]) }
}

@Test func accuracyGuardRaisesWeakAnchors() throws {
    let t = try handConfidence()
    let proposed = try anchorRules(mode: .percentile, values: [50], anchors: t.anchors)
    // Built-in guard: accuracy 0.75 ≥ 0.70 keeps the 50th; 0.60 < 0.70 raises t=150 to the 90th.
    #expect(try guardedRules(t, proposed: proposed, accuracy: [0.75, 0.60], guard: AccuracyGuard()) == [.percentile(50), .percentile(90)])
    #expect(try guardedRules(t, proposed: proposed, accuracy: [nil, 0.69], guard: AccuracyGuard(floor: 0.65)) == [.percentile(50), .percentile(50)])
    // A custom rule sees the anchor's statistics: at t=150 mean |z| = (2+1+0.25+3+1)/5 = 1.45 and the
    // numpy 80th percentile is 2.2; weak anchors get an absolute threshold at the mean.
    var seen: [Int: (Double, Double)] = [:]
    let custom = AccuracyGuard(rule: { s in
        seen[s.anchor] = (s.meanAbs, s.absPercentile(80))
        return (s.accuracy ?? 1) < 0.7 ? .threshold(s.meanAbs) : s.proposed
    })
    let rules = try guardedRules(t, proposed: proposed, accuracy: [0.75, 0.60], guard: custom)
    #expect(rules == [.percentile(50), .threshold(1.45)])
    #expect(abs(seen[150]!.0 - 1.45) < 1e-15 && abs(seen[150]!.1 - 2.2) < 1e-12)
    let r = try selectPseudoLabels(t, rules: rules)
    #expect(labelDict(r.labels) == [10: [0, -1], 11: [-1, 0], 12: [1, 0], 13: [0, 1], 15: [1, 0]])   // t=150: |z| ≥ 1.45 → 10, 13
}

@Test func accuracyCountsTiesHalf() throws {
    // t=50: z = 1, −1, 0, 2 → (2 + ½)/4 = 0.625; t=150: 1, 1, 1 and one absent (NaN) → 3/3 = 1.
    let test = try ConfidenceTable(anchors: [50, 150], ids: [1, 2, 3, 4], values: [1, 1, -1, 1, 0, 1, 2, .nan])
    let acc = test.accuracy()
    #expect(acc[0] == 0.625 && acc[1] == 1.0)
}

@Test func confidenceShardsRoundTripAndMerge() throws {
    let dir = tempDir("conf")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let t = try ConfidenceTable(anchors: [50, 150, 250], ids: [7, 3, 9, 1, 5],
                                values: [1.7, -0.3, .nan, 0, 2e-9, 123.456, -4, 0.1, 0.2, 5, 6, 7, 0.30000000000000004, -1, 1])
    try t.write(to: dir + "/shards", shards: 2)
    // Row 0 lacks timestep_250, so the first line does not name every anchor: pass them.
    #expect(throws: CoreError.self) { try ConfidenceTable.read(dir + "/shards") }
    let back = try ConfidenceTable.read(dir + "/shards", anchors: [50, 150, 250])
    // Round-robin shards: rank000 holds rows 0, 2, 4 and rank001 rows 1, 3; reading concatenates them.
    #expect(back.ids == [7, 9, 5, 3, 1])
    #expect(back.anchors == [50, 150, 250])
    for (r, id) in back.ids.enumerated() {
        let o = t.ids.firstIndex(of: id)!
        for j in 0..<3 {
            let a = back.value(row: r, anchor: j), b = t.value(row: o, anchor: j)
            #expect(a == b || (a.isNaN && b.isNaN))
        }
    }
    // A repeated idx in a later shard replaces the values and keeps the first position.
    try "{\"idx\": 7, \"timestep_50\": 9.5, \"timestep_150\": -9.5, \"timestep_250\": 1}\n"
        .write(toFile: dir + "/shards/confidence_rank002.jsonl", atomically: true, encoding: .utf8)
    let merged = try ConfidenceTable.read(dir + "/shards", anchors: [50, 150, 250])
    #expect(merged.ids == [7, 9, 5, 3, 1] && merged.value(row: 0, anchor: 0) == 9.5)
}

@Test func confidenceErrorsNameFileAndLine() throws {
    let dir = tempDir("cerr")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let f = dir + "/c.jsonl"
    try "{\"idx\": 1, \"timestep_50\": 1.5}\n{\"timestep_50\": 2}\n".write(toFile: f, atomically: true, encoding: .utf8)
    do { _ = try ConfidenceTable.read(f); Issue.record("no error") } catch { #expect("\(error)" == "\(f):2:1: missing \"idx\"") }
    try "{\"idx\": 1, \"timestep_50\": 1.5}\n\n{\"idx\": 2, \"timestep_60\": 2}\n".write(toFile: f, atomically: true, encoding: .utf8)
    do { _ = try ConfidenceTable.read(f); Issue.record("no error") } catch {
        #expect("\(error)" == "\(f):3:12: key \"timestep_60\" is not one of the anchors [50] (taken from the first line; pass anchors to read more)")
    }
    try "{\"idx\": 1, \"timestep_50\": NaN}\n".write(toFile: f, atomically: true, encoding: .utf8)
    #expect(throws: CoreError.self) { try ConfidenceTable.read(f) }
}

@Test func pseudoLabelFileRoundTripAndErrors() throws {
    let dir = tempDir("pl")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let l = try PseudoLabels(anchors: [50, 950], ids: [12, 4], labels: [1, -1, 0, PseudoLabels.absent])
    try l.write(dir + "/p.json")
    #expect(try String(contentsOfFile: dir + "/p.json", encoding: .utf8) == #"{"12": {"timestep_50": 1, "timestep_950": -1}, "4": {"timestep_50": 0}}"#)
    #expect(try PseudoLabels.read(dir + "/p.json") == l)
    try "{\"1\": {\"timestep_50\": 1},\n \"2\": {\"timestep_50\": 2}}".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
    do { _ = try PseudoLabels.read(dir + "/bad.json"); Issue.record("no error") } catch {
        #expect("\(error)" == "\(dir)/bad.json:2:23: a label must be -1, 0 or 1")
    }
    // Merging past files: the later file replaces a pair's whole row.
    let a = try PseudoLabels(anchors: [50], ids: [1, 2], labels: [1, -1])
    let b = try PseudoLabels(anchors: [150], ids: [2], labels: [1])
    let m = PseudoLabels.merged([a, b])
    #expect(m.anchors == [50, 150] && m.ids == [1, 2] && m.labels == [1, PseudoLabels.absent, PseudoLabels.absent, 1])
}

@Test func selectFileOverOfficialFormats() throws {
    let dir = tempDir("sf")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try handConfidence().write(to: dir + "/conf", shards: 1)
    // Test split: t=50 accuracy 1, t=150 accuracy 0.5 → guard raises t=150 from the 50th to the 90th
    // (v = 3.6 over 0.25 1 1 2 3 → 2 + (3−2)·0.6 = 2.6 → keeps 13 only).
    try ConfidenceTable(anchors: [50, 150], ids: [1, 2], values: [1, 1, 1, -1]).write(to: dir + "/test.jsonl")
    try writeIdList([99], to: dir + "/clean.json")
    let rep = try selectFile(confidence: dir + "/conf", mode: .percentile, values: [50], clean: dir + "/clean.json",
                             out: dir + "/labels.json", testConfidence: dir + "/test.jsonl")
    #expect(rep.result.rules == [.percentile(50), .percentile(90)])
    let back = try PseudoLabels.read(dir + "/labels.json")
    #expect(labelDict(back) == [11: [-1, 0], 12: [1, 0], 13: [0, 1], 15: [1, 0], 99: [1, 1]])
    // Iteration 2 with those labels as past: every pair in them has both keys → ranked last (m = 0).
    // t=50: m = 1 (10), 0 (11, 12), 0.5 (14), 0 (15) → median 0; t=150: 2 (10), 0 (11, 12, 13, 15) → 0.
    // A cutoff of 0 keeps every non-zero z, past pairs included (the authors' `m >= target`).
    let rep2 = try selectFile(confidence: dir + "/conf", mode: .percentile, values: [50], past: [dir + "/labels.json"],
                              out: dir + "/labels2.json", accuracyGuard: nil)
    #expect(rep2.result.targets == [0, 0])
    #expect(rep2.result.labels.ids == [10, 11, 12, 13, 14, 15])
}
