// Tests of the consensus rules on a hand-built score table, the clean/test split, and partition_scores
// over the official JSONL (outputs, stats, malformed lines).
import Foundation
import Testing
@testable import Core

/// Three members a, b, c; scores (s0, s1). Votes with tol = 1e-6 worked out by hand:
///   id winner  a            b        c                 votes (a,b,c)   toward winner
///   1  0       (2,1)        (3,1)    (0.5,0.4)         0,0,0           3 of 3
///   2  1       (1,2)        (1,3)    (0.4,0.5)         1,1,1           3 of 3
///   3  0       (2,1)        (3,1)    (1.0000005,1.0)   0,0,tie         2 of 3   (|Δc| = 5e-7 ≤ 1e-6)
///   4  0       (2,1)        (1,3)    (5,4)             0,1,0           2 of 3
///   5  0       (2,1.999998) (3,1)    (1,0)             0,0,0           3 of 3   (|Δa| = 2e-6 > 1e-6)
///   6  1       (1,2)        (2,1)    (2,1)             1,0,0           1 of 3
func handTable() throws -> ScoreTable {
    var t = ScoreTable(members: ["a", "b", "c"])
    try t.append(id: 1, winner: 0, scores: [(2, 1), (3, 1), (0.5, 0.4)])
    try t.append(id: 2, winner: 1, scores: [(1, 2), (1, 3), (0.4, 0.5)])
    try t.append(id: 3, winner: 0, scores: [(2, 1), (3, 1), (1.0000005, 1.0)])
    try t.append(id: 4, winner: 0, scores: [(2, 1), (1, 3), (5, 4)])
    try t.append(id: 5, winner: 0, scores: [(2, 1.999998), (3, 1), (1, 0)])
    try t.append(id: 6, winner: 1, scores: [(1, 2), (2, 1), (2, 1)])
    return t
}

func cleanIds(_ t: ScoreTable, _ rule: ConsensusRule) throws -> [Int64] {
    zip(t.ids, try t.verdicts(rule: rule)).filter(\.1).map(\.0)
}

@Test func unanimousRuleAndTieTolerance() throws {
    let t = try handTable()
    #expect(try cleanIds(t, .unanimous()) == [1, 2, 5])                          // 3 drops on c's near-tie
    #expect(try cleanIds(t, .unanimous(tieTolerance: 0)) == [1, 2, 3, 5])         // c's 5e-7 now a vote for 0
    #expect(try cleanIds(t, .unanimous(tieTolerance: 1e-5)) == [1, 2])            // a's 2e-6 on pair 5 now a tie
}

@Test func kOfNRule() throws {
    let t = try handTable()
    #expect(try cleanIds(t, .kOfN(k: 2)) == [1, 2, 3, 4, 5])
    #expect(try cleanIds(t, .kOfN(k: 3)) == [1, 2, 5])                           // = unanimous
    #expect(try cleanIds(t, .kOfN(k: 1)) == [1, 2, 3, 4, 5, 6])
    #expect(throws: CoreError.self) { try t.verdicts(rule: .kOfN(k: 4)) }
}

@Test func closureRule() throws {
    // Clean iff the summed margin toward the winner exceeds 1.5:
    // 1: 1+2+0.1 = 3.1; 2: 3.1; 3: 1+2+5e-7; 4: 1-2+1 = 0; 5: 2e-6+2+1; 6: winner 1: 1-1-1 = -1 → {1,2,3,5}.
    let t = try handTable()
    var calls = 0
    let rule = ConsensusRule.custom { p in
        calls += 1
        return p.scores.map { p.winner == 0 ? $0.0 - $0.1 : $0.1 - $0.0 }.reduce(0, +) > 1.5
    }
    #expect(try cleanIds(t, rule) == [1, 2, 3, 5])
    #expect(calls == 6)
}

@Test func cleanTestSplitIsDeterministicAndDisjoint() throws {
    let clean: [Int64] = Array(100..<200)
    let (train, test) = try splitCleanTest(clean, fraction: 0.02, seed: 7)
    #expect(test.count == 2 && train.count == 98)                               // ceil(0.02 · 100) = 2
    #expect(Set(train).isDisjoint(with: test) && Set(train + test) == Set(clean))
    #expect(train == train.sorted() && test == test.sorted())                   // input order kept
    let again = try splitCleanTest(clean.reversed(), fraction: 0.02, seed: 7)
    #expect(Set(again.test) == Set(test))                                       // independent of order
    let other = try splitCleanTest(clean, fraction: 0.3, seed: 8)
    #expect(other.test.count == 30)
    #expect(try splitCleanTest(clean, fraction: 5, seed: 1).test.count == 5)    // ≥ 1: a count
}

func tempDir(_ tag: String) -> String {
    let d = NSTemporaryDirectory() + "semidpo-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// The hand table as official JSONL, with the three human-label forms and an extra string key.
let handJSONL = """
{"idx": 1, "human_scores": [1, 0], "prompt": "a \\"red\\" cat", "a_score": [2, 1], "b_score": [3, 1], "c_score": [0.5, 0.4]}
{"idx": 2, "label_0": 0.0, "a_score": [1, 2], "b_score": [1, 3], "c_score": [0.4, 0.5]}
{"idx": 3, "winner_idx": 0, "a_score": [2, 1], "b_score": [3, 1], "c_score": [1.0000005, 1.0]}

{"idx": 4, "human_scores": [0.9, 0.1], "a_score": [2, 1], "b_score": [1, 3], "c_score": [5, 4]}
{"idx": 5, "human_scores": [1, 0], "a_score": [2, 1.999998], "b_score": [3, 1], "c_score": [1, 0]}
{"idx": 6, "human_scores": [0, 1], "a_score": [1, 2], "b_score": [2, 1], "c_score": [2, 1]}

"""

@Test func partitionScoresOverTheOfficialFormat() throws {
    let dir = tempDir("part")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try handJSONL.write(toFile: dir + "/scores.jsonl", atomically: true, encoding: .utf8)
    let r = try partitionScores(path: dir + "/scores.jsonl", out: dir + "/out", testFraction: 0)
    #expect(r.members == ["a_score", "b_score", "c_score"])                     // default: every *_score key
    #expect(try readIdList(dir + "/out/clean.json") == [1, 2, 5])
    #expect(try readIdList(dir + "/out/clean_test.json") == [])
    #expect(try readIdList(dir + "/out/noisy.json") == [3, 4, 6])
    #expect(r.total == 6 && r.clean == 3)
    #expect(r.ties == [0, 0, 1])
    #expect(r.agreementWithHuman == [1, 4.0 / 6, 4.0 / 6] as [Double])                     // a agrees everywhere; b misses 4, 6; c ties 3, misses 6
    let yaml = try String(contentsOfFile: dir + "/out/stats.yaml", encoding: .utf8)
    #expect(yaml.contains("clean: 3\n") && yaml.contains("noisy: 3\n") && yaml.contains("total: 6\n"))
    // A subset of members in a given order; 2-of-2 over a and c: 1,2,5 and 4 (a:0 c:0) → clean.
    let r2 = try partitionScores(path: dir + "/scores.jsonl", out: dir + "/out2", members: ["a", "c"], testFraction: 0)
    #expect(r2.members == ["a_score", "c_score"])
    #expect(try readIdList(dir + "/out2/clean.json") == [1, 2, 4, 5])
    // The closure rule runs on one thread and sees the same pairs as ScoreTable.
    let r3 = try partitionScores(path: dir + "/scores.jsonl", out: dir + "/out3",
                                 rule: .custom { $0.id % 2 == 0 }, testFraction: 0)
    #expect(r3.clean == 3)
    #expect(try readIdList(dir + "/out3/clean.json") == [2, 4, 6])
    // With a test split, clean + test together are still the clean set.
    _ = try partitionScores(path: dir + "/scores.jsonl", out: dir + "/out4", testFraction: 0.5, seed: 3)
    let train = try readIdList(dir + "/out4/clean.json"), test = try readIdList(dir + "/out4/clean_test.json")
    #expect(test.count == 2 && Set(train + test) == [1, 2, 5])
}

@Test func partitionScoresReportsMalformedLines() throws {
    let dir = tempDir("bad")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var lines = handJSONL.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines[5] = #"{"idx": 5, "human_scores": [1, 0], "a_score": [2], "b_score": [3, 1], "c_score": [1, 0]}"#   // line 6
    try lines.joined(separator: "\n").write(toFile: dir + "/s.jsonl", atomically: true, encoding: .utf8)
    do { try partitionScores(path: dir + "/s.jsonl", out: dir + "/o"); Issue.record("no error") } catch {
        #expect("\(error)" == "\(dir)/s.jsonl:6:49: expected ',' (\"a_score\" must hold two numbers), found ']'")
    }
    lines[5] = #"{"idx": 5, "human_scores": [1, 0], "b_score": [3, 1], "c_score": [1, 0]}"#
    lines[6] = #"{"idx": 6 "#
    try lines.joined(separator: "\n").write(toFile: dir + "/s.jsonl", atomically: true, encoding: .utf8)
    do { try partitionScores(path: dir + "/s.jsonl", out: dir + "/o"); Issue.record("no error") } catch {
        #expect("\(error)" == "\(dir)/s.jsonl:6:1: missing \"a_score\"")
    }
    let r = try partitionScores(path: dir + "/s.jsonl", out: dir + "/o", testFraction: 0, skipMalformed: true)
    #expect(r.skippedLines == 2 && r.total == 4)
    #expect(r.skippedMessages.count == 2 && r.skippedMessages[1].hasPrefix("\(dir)/s.jsonl:7:"))
    #expect(try readIdList(dir + "/o/clean.json") == [1, 2])
}

@Test func scoreTableRoundTrip() throws {
    let dir = tempDir("st")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let t = try handTable()
    try t.write(path: dir + "/t.jsonl")
    let back = try ScoreTable.read(path: dir + "/t.jsonl")
    #expect(back.members == t.members && back.ids == t.ids && back.winners == t.winners && back.scores == t.scores)
}
