// Stage 1 of Semi-DPO on score tables: consensus rules over a committee's per-pair scores, the
// clean / noisy partition with a held-out clean test split, and the official score JSONL format.
import Foundation

/// The tie tolerance of the authors' `split_consensus.py` (`TIE_TOLERANCE = 1e-6`).
public let defaultTieTolerance = 1e-6

/// One pair as a consensus rule sees it: the human winner (0 or 1) and each member's two scores.
public struct ConsensusPair {
    public let id: Int64
    /// Index of the human-preferred image: 0 or 1.
    public let winner: Int
    /// `scores[k] = (s0, s1)`: member k's scores of image 0 and image 1.
    public let scores: [(Double, Double)]
    public init(id: Int64, winner: Int, scores: [(Double, Double)]) {
        self.id = id; self.winner = winner; self.scores = scores
    }
}

/// Which image a member prefers: `nil` on a near-tie `|s0 - s1| <= tolerance`, else 0 if s0 > s1, else 1.
/// (reference: `reward_votes` in the authors' `semi_dpo/split_consensus.py`)
@inline(__always)
public func consensusVote(_ s0: Double, _ s1: Double, tieTolerance: Double) -> Int? {
    abs(s0 - s1) <= tieTolerance ? nil : (s0 > s1 ? 0 : 1)
}

/// A rule deciding whether a pair is clean.
public enum ConsensusRule {
    /// Clean iff every member's vote equals the human winner: ∀k, r_k(x_w) - r_k(x_l) > tol.
    /// A near-tie (|Δr_k| ≤ tol) is a disagreement. The paper's rule (§3.3), tol = 1e-6 by default.
    case unanimous(tieTolerance: Double = defaultTieTolerance)
    /// Clean iff at least `k` members vote for the human winner (near-ties count against).
    case kOfN(k: Int, tieTolerance: Double = defaultTieTolerance)
    /// Clean iff the closure returns true (called once per pair, in file order, on one thread).
    case custom((ConsensusPair) throws -> Bool)

    public var description: String {
        switch self {
        case let .unanimous(t): return "unanimous (tie tolerance \(t))"
        case let .kOfN(k, t): return "\(k)-of-n (tie tolerance \(t))"
        case .custom: return "custom function"
        }
    }

    var isCustom: Bool { if case .custom = self { return true }; return false }

    /// The verdict for a built-in rule from a flat score slice `s = [s0_1, s1_1, s0_2, s1_2, …]`.
    @inline(__always)
    func builtin(winner: Int, scores s: UnsafePointer<Double>, members n: Int) -> Bool {
        switch self {
        case let .unanimous(t):
            for k in 0..<n where consensusVote(s[2 * k], s[2 * k + 1], tieTolerance: t) != winner { return false }
            return true
        case let .kOfN(need, t):
            var agree = 0
            for k in 0..<n where consensusVote(s[2 * k], s[2 * k + 1], tieTolerance: t) == winner { agree += 1 }
            return agree >= need
        case .custom: preconditionFailure("custom rules are evaluated by the caller")
        }
    }

    func validate(members: Int) throws {
        if members == 0 { throw CoreError("a consensus needs at least one member") }
        if members > 64 { throw CoreError("a consensus supports at most 64 members (got \(members))") }
        switch self {
        case let .unanimous(t), let .kOfN(_, t):
            if !(t >= 0) { throw CoreError("tieTolerance must be ≥ 0 (got \(t))") }
        case .custom: break
        }
        if case let .kOfN(k, _) = self, k < 1 || k > members {
            throw CoreError("k-of-n rule: k must be in 1...\(members) (got \(k))")
        }
    }
}

/// The result of a partition: ids in their original order.
public struct ConsensusSplit: Equatable {
    /// Clean pairs kept for training (the authors' `clean_idx.json`).
    public var clean: [Int64]
    /// Clean pairs held out to measure accuracy (the paper: 3,992 pairs, ~2%).
    public var test: [Int64]
    /// All other pairs: the unlabelled set.
    public var noisy: [Int64]
}

/// Chooses the held-out test pairs among `clean`: n_test = ceil(fraction · n) for fraction < 1 (as
/// Hugging Face's `train_test_split`), or `fraction` pairs for fraction ≥ 1, which must then be a
/// whole number; a count above n puts all n pairs in the test split. A pair's rank is
/// a hash of (seed, id), so the choice does not depend on file order or thread count. Both returned
/// lists keep the input order.
public func splitCleanTest(_ clean: [Int64], fraction: Double, seed: UInt64) throws -> (train: [Int64], test: [Int64]) {
    guard fraction >= 0, fraction.isFinite else { throw CoreError("test fraction must be ≥ 0 (got \(fraction))") }
    let n = clean.count
    guard fraction < 1 || fraction.rounded() == fraction else {
        throw CoreError("test share \(fraction) is neither a fraction in [0, 1) nor a whole count of pairs")
    }
    // Compared as Doubles first: Int(1e19) does not exist.
    let nTest = fraction >= Double(n) ? n : fraction >= 1 ? Int(fraction) : Int((fraction * Double(n)).rounded(.up))
    if nTest == 0 { return (clean, []) }
    let key = RandomKey(seed: seed).child("clean-test")
    let ranks = clean.map { key.bits(UInt64(bitPattern: $0)) }
    var order = Array(0..<n)
    order.sort { ranks[$0] != ranks[$1] ? ranks[$0] < ranks[$1] : clean[$0] < clean[$1] }
    var isTest = [Bool](repeating: false, count: n)
    for i in order.prefix(nTest) { isTest[i] = true }
    var train: [Int64] = [], test: [Int64] = []
    train.reserveCapacity(n - nTest); test.reserveCapacity(nTest)
    for i in 0..<n { if isTest[i] { test.append(clean[i]) } else { train.append(clean[i]) } }
    return (train, test)
}

/// A committee's scores: pairs × members, two scores per pair per member, and the human winner.
public struct ScoreTable {
    /// Member names as score keys (`clip_score`, …).
    public private(set) var members: [String]
    public private(set) var ids: [Int64] = []
    /// Human winner per pair: 0 or 1.
    public private(set) var winners: [UInt8] = []
    /// scores: (pairs, members, 2), row-major.
    public private(set) var scores: [Double] = []

    public init(members: [String]) { self.members = members.map(scoreKey) }

    public var count: Int { ids.count }

    public mutating func append(id: Int64, winner: Int, scores s: [(Double, Double)]) throws {
        guard winner == 0 || winner == 1 else { throw CoreError("winner must be 0 or 1 (got \(winner))") }
        guard s.count == members.count else { throw CoreError("pair \(id): \(s.count) score pairs for \(members.count) members") }
        ids.append(id); winners.append(UInt8(winner))
        for (a, b) in s { scores.append(a); scores.append(b) }
    }

    public func pair(_ i: Int) -> ConsensusPair {
        let m = members.count
        return ConsensusPair(id: ids[i], winner: Int(winners[i]),
                             scores: (0..<m).map { (scores[(i * m + $0) * 2], scores[(i * m + $0) * 2 + 1]) })
    }

    /// Clean (true) or noisy (false) for each pair.
    public func verdicts(rule: ConsensusRule) throws -> [Bool] {
        try rule.validate(members: members.count)
        let m = members.count
        if rule.isCustom, case let .custom(f) = rule { return try (0..<count).map { try f(pair($0)) } }
        return scores.withUnsafeBufferPointer { s in
            (0..<count).map { rule.builtin(winner: Int(winners[$0]), scores: s.baseAddress! + $0 * m * 2, members: m) }
        }
    }

    /// Splits into clean (train), clean test and noisy ids; see `splitCleanTest` for the test split.
    public func partition(rule: ConsensusRule = .unanimous(), testFraction: Double = 0.02, seed: UInt64 = 42) throws -> ConsensusSplit {
        let v = try verdicts(rule: rule)
        var clean: [Int64] = [], noisy: [Int64] = []
        for i in 0..<count { if v[i] { clean.append(ids[i]) } else { noisy.append(ids[i]) } }
        let (train, test) = try splitCleanTest(clean, fraction: testFraction, seed: seed)
        return ConsensusSplit(clean: train, test: test, noisy: noisy)
    }

    /// Reads the official per-pair score JSONL (see `partitionScores`). Members default to every
    /// `*_score` key of the first line.
    public static func read(path: String, members: [String]? = nil, skipMalformed: Bool = false) throws -> ScoreTable {
        let file = try MappedFile(path: path)
        let names = try members.map { $0.map(scoreKey) } ?? defaultMembers(file.bytes, path: path)
        var table = ScoreTable(members: names)
        let parser = ScoreLineParser(members: names)
        defer { parser.deallocate() }   // its key buffer leaked on every read (found by fuzz/run.sh jsonl)
        var buf = [Double](repeating: 0, count: 2 * names.count)
        var line = 0, start = 0
        let bytes = file.bytes
        while start < bytes.count {
            line += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            do {
                if let (id, winner, _) = try buf.withUnsafeMutableBufferPointer({ try parser.parse(bytes, start, end, into: $0.baseAddress!) }) {
                    try table.append(id: id, winner: winner, scores: (0..<names.count).map { (buf[2 * $0], buf[2 * $0 + 1]) })
                }
            } catch let e as JSONSyntaxError {
                if !skipMalformed { throw CoreError("\(path):\(line):\(e.offset - start + 1): \(e.message)") }
            }
            start = end + 1
        }
        return table
    }

    /// Writes the official JSONL: `{"idx": 12, "human_scores": [1, 0], "<member>": [s0, s1], …}`.
    public func write(path: String) throws {
        var out = [UInt8]()
        let m = members.count
        for i in 0..<count {
            out.append(contentsOf: Array("{\"idx\": ".utf8)); JSON.appendInt(ids[i], to: &out)
            out.append(contentsOf: Array(winners[i] == 0 ? ", \"human_scores\": [1, 0]".utf8 : ", \"human_scores\": [0, 1]".utf8))
            for k in 0..<m {
                out.append(contentsOf: Array(", ".utf8)); JSON.appendString(members[k], to: &out)
                out.append(contentsOf: Array(": [".utf8)); JSON.appendNumber(scores[(i * m + k) * 2], to: &out)
                out.append(contentsOf: Array(", ".utf8)); JSON.appendNumber(scores[(i * m + k) * 2 + 1], to: &out)
                out.append(UInt8(ascii: "]"))
            }
            out.append(contentsOf: Array("}\n".utf8))
        }
        try AtomicFile.write(Data(out), to: path)
    }
}

/// `clip` → `clip_score`; names already ending in `_score` are kept.
public func scoreKey(_ name: String) -> String { name.hasSuffix("_score") ? name : name + "_score" }

/// Every key ending in `_score` in the first non-blank line, in order.
func defaultMembers(_ bytes: UnsafeRawBufferPointer, path: String) throws -> [String] {
    guard let (line, value) = try JSONL.first(bytes, name: path) else { throw CoreError("\(path): no score lines") }
    guard case let .object(members) = value else { throw CoreError("\(path):\(line): expected a JSON object per line") }
    let names = members.map(\.key).filter { $0.hasSuffix("_score") }
    if names.isEmpty { throw CoreError("\(path):\(line): no `<model>_score` keys; pass members explicitly") }
    return names
}

/// Where a pair's human winner came from.
enum HumanSource: UInt8 { case humanScores, winnerIdx, label0, missing }

/// A specialised scanner for one score line: reads `idx`, the human label and the members' score
/// pairs without building a value tree; every other key is validated and skipped.
struct ScoreLineParser {
    let keys: [[UInt8]]
    let keyBuffer: UnsafeMutableRawBufferPointer
    let keyRanges: [Range<Int>]

    /// Member keys first, then the fixed keys (matched without allocating a String).
    static let fixedKeys = ["idx", "human_scores", "winner_idx", "label_0"]

    init(members: [String]) {
        keys = members.map { Array($0.utf8) }
        let all = keys + ScoreLineParser.fixedKeys.map { Array($0.utf8) }
        let total = all.reduce(0) { $0 + $1.count }
        keyBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 8)
        var o = 0, r: [Range<Int>] = []
        for k in all { keyBuffer.baseAddress!.advanced(by: o).copyMemory(from: k, byteCount: k.count); r.append(o..<o + k.count); o += k.count }
        keyRanges = r
    }

    func deallocate() { keyBuffer.deallocate() }

    /// Parses bytes [start, end). Returns nil for a blank line, else (id, winner, source); fills
    /// `out[2k], out[2k+1]` with member k's scores. Throws a `JSONSyntaxError` at the bad byte.
    func parse(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
               into out: UnsafeMutablePointer<Double>) throws -> (Int64, Int, HumanSource)? {
        var s = JSONScanner(bytes, start: start, end: end)
        s.skipSpace()
        if s.pos >= end { return nil }
        try s.expect(UInt8(ascii: "{"), "'{' (each line must be a JSON object)")
        var id: Int64? = nil
        var winnerScores: Int? = nil, winnerIdx: Int? = nil, winnerLabel: Int? = nil
        var seen: UInt64 = 0
        let n = keys.count
        if !s.consume(UInt8(ascii: "}")) {
            repeat {
                s.skipSpace()
                guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected a string key, found \(s.describeByte())") }
                var member = -1
                for k in 0..<keyRanges.count where s.matchKey(UnsafeRawBufferPointer(rebasing: keyBuffer[keyRanges[k]])) { member = k; break }
                if member < 0 || member >= n {
                    let key = member >= n ? ScoreLineParser.fixedKeys[member - n] : try s.parseString()
                    try s.expect(UInt8(ascii: ":"), "':' after an object key")
                    switch key {
                    case "idx": s.skipSpace(); id = try s.parseInteger("idx")
                    case "human_scores":
                        let (h0, h1) = try pairOfNumbers(&s, "human_scores")
                        winnerScores = h0 >= h1 ? 0 : 1
                    case "winner_idx":
                        s.skipSpace()
                        let at = s.pos
                        let w = try s.parseInteger("winner_idx")
                        guard w == 0 || w == 1 else { throw s.fail("winner_idx must be 0 or 1", at: at) }
                        winnerIdx = Int(w)
                    case "label_0":
                        s.skipSpace()
                        let l = try s.parseNumber()
                        winnerLabel = l >= 0.5 ? 0 : 1
                    default:
                        try s.skipValue()
                    }
                } else {
                    try s.expect(UInt8(ascii: ":"), "':' after an object key")
                    let (a, b) = try pairOfNumbers(&s, String(decoding: keys[member], as: UTF8.self))
                    out[2 * member] = a; out[2 * member + 1] = b
                    if member < 64 { seen |= 1 << UInt64(member) }
                }
            } while s.consume(UInt8(ascii: ","))
            try s.expect(UInt8(ascii: "}"), "',' or '}' in the object")
        }
        s.skipSpace()
        if s.pos < end { throw s.fail("unexpected \(s.describeByte()) after the JSON object") }
        guard let id else { throw s.fail("missing \"idx\"", at: start) }
        let want: UInt64 = n >= 64 ? ~0 : (1 << UInt64(n)) - 1
        if seen != want {
            let missing = (0..<min(n, 64)).first { seen & (1 << UInt64($0)) == 0 }!
            throw s.fail("missing \"\(String(decoding: keys[missing], as: UTF8.self))\"", at: start)
        }
        if let w = winnerScores { return (id, w, .humanScores) }
        if let w = winnerIdx { return (id, w, .winnerIdx) }
        if let w = winnerLabel { return (id, w, .label0) }
        return (id, 0, .missing)
    }

    @inline(__always)
    private func pairOfNumbers(_ s: inout JSONScanner, _ what: @autoclosure () -> Any) throws -> (Double, Double) {
        s.skipSpace()
        guard s.peek() == UInt8(ascii: "[") else { throw s.fail("\"\(what())\" must be an array of two numbers") }
        s.pos += 1
        s.skipSpace()
        let a = try s.parseNumber()
        try s.expect(UInt8(ascii: ","), "',' (\"\(what())\" must hold two numbers)")
        s.skipSpace()
        let b = try s.parseNumber()
        try s.expect(UInt8(ascii: "]"), "']' (\"\(what())\" must hold exactly two numbers)")
        return (a, b)
    }
}

/// What `partitionScores` did.
public struct PartitionReport {
    public var source: String
    public var members: [String]
    public var rule: String
    public var total = 0
    public var clean = 0
    public var cleanTrain = 0
    public var cleanTest = 0
    public var noisy = 0
    public var testFraction = 0.0
    public var seed: UInt64 = 0
    public var skippedLines = 0
    /// The first few skipped lines' messages (`file:line:column: message`).
    public var skippedMessages: [String] = []
    /// Pairs with no human label (`human_scores`, `winner_idx` or `label_0`); like the authors' code,
    /// image 0 is then taken as the winner.
    public var missingHumanLabel = 0
    /// Share of pairs where member k's vote equals the human winner (the authors' `agreement_with_human`).
    public var agreementWithHuman: [Double] = []
    /// Pairs where member k's scores are a near-tie.
    public var ties: [Int] = []
    public var outputs: [String] = []

    public var cleanFraction: Double { total == 0 ? 0 : Double(clean) / Double(total) }

    /// The stats file's text (YAML).
    public var yaml: String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var y = "# semidpo partition_scores\n"
        y += "source: \(q(source))\n"
        y += "members: [\(members.map(q).joined(separator: ", "))]\n"
        y += "rule: \(q(rule))\n"
        y += "total: \(total)\nclean: \(clean)\nclean_fraction: \(cleanFraction)\n"
        y += "clean_train: \(cleanTrain)\nclean_test: \(cleanTest)\nnoisy: \(noisy)\n"
        y += "test_fraction: \(testFraction)\nseed: \(seed)\n"
        y += "skipped_lines: \(skippedLines)\nmissing_human_label: \(missingHumanLabel)\n"
        if !skippedMessages.isEmpty { y += "skipped_examples:\n" + skippedMessages.map { "  - \(q($0))\n" }.joined() }
        y += "agreement_with_human:\n" + zip(members, agreementWithHuman).map { "  \(q($0)): \($1)\n" }.joined()
        y += "ties:\n" + zip(members, ties).map { "  \(q($0)): \($1)\n" }.joined()
        y += "outputs: [\(outputs.map(q).joined(separator: ", "))]\n"
        return y
    }
}

/// Partitions the official per-pair score file into clean / clean-test / noisy id lists.
///
/// Input: JSONL, one object per line: `idx` (integer), the human label as `human_scores: [h0, h1]`
/// (winner = 0 iff h0 ≥ h1), `winner_idx` (0/1) or `label_0` (Pick-a-Pic; winner = 0 iff label_0 ≥ ½),
/// checked in that order, and `<name>_score: [s0, s1]` per reward model. Other keys are skipped.
/// Members default to every `*_score` key of the first line; names without `_score` get it appended.
///
/// Writes into `out` (atomically): `clean.json` (clean training ids), `clean_test.json` (held-out clean
/// ids), `noisy.json` (JSON arrays of ints, file order) and `stats.yaml`.
/// A malformed line is an error naming the file and line; with `skipMalformed` it is counted and skipped.
/// Built-in rules run on two threads over fixed line ranges; a custom rule runs on the calling thread.
@discardableResult
public func partitionScores(path: String, out: String, members: [String]? = nil,
                            rule: ConsensusRule = .unanimous(), testFraction: Double = 0.02,
                            seed: UInt64 = 42, skipMalformed: Bool = false) throws -> PartitionReport {
    let file = try MappedFile(path: path)
    file.adviseSequential()
    let bytes = file.bytes
    let names = try members.map { $0.map(scoreKey) } ?? defaultMembers(bytes, path: path)
    try rule.validate(members: names.count)
    if Set(names).count != names.count { throw CoreError("members listed twice: \(names)") }
    let m = names.count

    // Fixed partitioning: chunk c covers whole lines starting in [c·size/C, (c+1)·size/C).
    let chunks = rule.isCustom ? 1 : 2
    var bounds = [0]
    for c in 1..<chunks + 1 {
        var b = c == chunks ? bytes.count : bytes.count * c / chunks
        while b < bytes.count && b > 0 && bytes[b - 1] != 0x0A { b += 1 }
        bounds.append(max(b, bounds.last!))
    }

    final class ChunkResult: @unchecked Sendable {
        var ids: [Int64] = []
        var clean: [Bool] = []
        var lines = 0
        var skipped: [(line: Int, column: Int, message: String)] = []
        var missing = 0
        var agree: [Int]
        var ties: [Int]
        var error: Error?
        init(_ m: Int) { agree = [Int](repeating: 0, count: m); ties = [Int](repeating: 0, count: m) }
    }
    let results = (0..<chunks).map { _ in ChunkResult(m) }
    let parser = ScoreLineParser(members: names)
    defer { parser.deallocate() }
    let tol: Double
    switch rule { case let .unanimous(t), let .kOfN(_, t): tol = t; case .custom: tol = defaultTieTolerance }

    func run(_ c: Int) {
        let r = results[c]
        let lo = bounds[c], hi = bounds[c + 1]
        // Local state (class properties would pay a dynamic exclusivity check per access).
        var ids: [Int64] = [], isClean: [Bool] = [], lines = 0, missing = 0
        var agreeK = [Int](repeating: 0, count: m), tiesK = agreeK
        var skipped: [(line: Int, column: Int, message: String)] = []
        defer { r.ids = ids; r.clean = isClean; r.lines = lines; r.missing = missing; r.agree = agreeK; r.ties = tiesK; r.skipped = skipped }
        ids.reserveCapacity((hi - lo) / 150); isClean.reserveCapacity((hi - lo) / 150)
        var buf = [Double](repeating: 0, count: 2 * m)
        var start = lo, released = lo
        buf.withUnsafeMutableBufferPointer { sb in
            let s = sb.baseAddress!
            while start < hi {
                lines += 1
                let end = memchr(bytes.baseAddress! + start, 0x0A, hi - start).map { UnsafeRawPointer($0) - bytes.baseAddress! } ?? hi
                do {
                    if let (id, winner, source) = try parser.parse(bytes, start, end, into: s) {
                        let verdict: Bool
                        if case let .custom(f) = rule {
                            verdict = try f(ConsensusPair(id: id, winner: winner, scores: (0..<m).map { (s[2 * $0], s[2 * $0 + 1]) }))
                        } else {
                            verdict = rule.builtin(winner: winner, scores: UnsafePointer(s), members: m)
                        }
                        ids.append(id); isClean.append(verdict)
                        if source == .missing { missing += 1 }
                        for k in 0..<m {
                            let v = consensusVote(s[2 * k], s[2 * k + 1], tieTolerance: tol)
                            if v == winner { agreeK[k] += 1 } else if v == nil { tiesK[k] += 1 }
                        }
                    }
                } catch let e as JSONSyntaxError {
                    skipped.append((lines, e.offset - start + 1, e.message))
                    if !skipMalformed { return }
                } catch {
                    r.error = error; return
                }
                start = end + 1
                if start - released > 32 << 20 { file.release(released..<start); released = start }
            }
        }
    }
    if chunks == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: run) }

    // Merge in chunk order; line numbers become global.
    var report = PartitionReport(source: path, members: names, rule: rule.description)
    report.testFraction = testFraction; report.seed = seed
    var lineBase = 0
    for r in results {
        if let e = r.error { throw e }
        for s in r.skipped {
            let msg = "\(path):\(lineBase + s.line):\(s.column): \(s.message)"
            if !skipMalformed { throw CoreError(msg) }
            report.skippedLines += 1
            if report.skippedMessages.count < 10 { report.skippedMessages.append(msg) }
        }
        lineBase += r.lines
    }
    var clean: [Int64] = [], noisy: [Int64] = []
    var agree = [Int](repeating: 0, count: m), ties = agree
    for r in results {
        for i in r.ids.indices { if r.clean[i] { clean.append(r.ids[i]) } else { noisy.append(r.ids[i]) } }
        report.missingHumanLabel += r.missing
        for k in 0..<m { agree[k] += r.agree[k]; ties[k] += r.ties[k] }
    }
    report.total = clean.count + noisy.count
    report.clean = clean.count; report.noisy = noisy.count
    report.agreementWithHuman = agree.map { report.total == 0 ? 0 : Double($0) / Double(report.total) }
    report.ties = ties
    let (train, test) = try splitCleanTest(clean, fraction: testFraction, seed: seed)
    report.cleanTrain = train.count; report.cleanTest = test.count

    let dir = URL(fileURLWithPath: out)
    let outputs = [("clean.json", train), ("clean_test.json", test), ("noisy.json", noisy)]
    report.outputs = outputs.map { dir.appendingPathComponent($0.0).path } + [dir.appendingPathComponent("stats.yaml").path]
    for (name, ids) in outputs { try writeIdList(ids, to: dir.appendingPathComponent(name).path) }
    try AtomicFile.write(report.yaml, to: dir.appendingPathComponent("stats.yaml").path)
    return report
}

/// Writes ids as a JSON array in `json.dump` layout: `[1, 2, 3]`.
public func writeIdList(_ ids: [Int64], to path: String) throws {
    var out = [UInt8]()
    out.reserveCapacity(ids.count * 9 + 2)
    out.append(UInt8(ascii: "["))
    for (i, id) in ids.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")); out.append(0x20) }
        JSON.appendInt(id, to: &out)
    }
    out.append(UInt8(ascii: "]"))
    try AtomicFile.write(Data(out), to: path)
}

/// Reads a JSON array of integer ids (ints or numeric strings, as the authors' files allow). Ids are
/// read exactly as Int64 (never through Double); a float, an id outside Int64 or any other value is an
/// error naming the file, line and column.
public func readIdList(_ path: String) throws -> [Int64] {
    let file = try MappedFile(path: path)
    var s = JSONScanner(file.bytes, start: 0, end: file.bytes.count)
    var ids: [Int64] = []
    do {
        try s.expect(UInt8(ascii: "["), "'[' (an id list is a JSON array)")
        if !s.consume(UInt8(ascii: "]")) {
            repeat {
                s.skipSpace()
                if s.peek() == UInt8(ascii: "\"") {
                    let at = s.pos
                    let text = try s.parseString()
                    guard let id = Int64(text) else { throw s.fail("id \"\(text)\" is not an integer that fits in 64 bits", at: at) }
                    ids.append(id)
                } else {
                    ids.append(try s.parseInteger("id"))
                }
            } while s.consume(UInt8(ascii: ","))
            try s.expect(UInt8(ascii: "]"), "',' or ']' in the id list")
        }
        s.skipSpace()
        if s.pos < s.end { throw s.fail("unexpected \(s.describeByte()) after the id list") }
    } catch let e as JSONSyntaxError {
        throw CoreError(JSON.describe(e, bytes: file.bytes, name: path))
    }
    return ids
}
