// Timestep-conditional pseudo-labels and their official JSON file:
// `{"12": {"timestep_50": 1, …, "timestep_950": -1}}` (+1 keep, -1 swap, 0 unlabelled at that anchor).
import Foundation

/// Labels in {-1, 0, +1} per pair and anchor; anchor t stands for the interval [t − 50, t + 50).
public struct PseudoLabels: Equatable {
    /// Stored where a pair's object had no key for the anchor.
    public static let absent: Int8 = .min

    public var anchors: [Int]
    public var ids: [Int64]
    /// labels: (pairs, anchors), row-major; `absent` where the file had no key.
    public var labels: [Int8]

    public init(anchors: [Int], ids: [Int64] = [], labels: [Int8] = []) throws {
        guard labels.count == ids.count * anchors.count else {
            throw CoreError("pseudo-labels: \(labels.count) labels for \(ids.count) pairs × \(anchors.count) anchors")
        }
        self.anchors = anchors; self.ids = ids; self.labels = labels
    }

    public var count: Int { ids.count }

    public func label(row: Int, anchor a: Int) -> Int8 { labels[row * anchors.count + a] }

    /// Later files win for the same id (the whole row is replaced), as `dict.update` in the authors'
    /// `build_pseudo_labels.py`. Anchors become the union, in first-seen order.
    public static func merged(_ files: [PseudoLabels]) -> PseudoLabels {
        var anchors: [Int] = []
        for f in files { for t in f.anchors where !anchors.contains(t) { anchors.append(t) } }
        var index = IdIndex(capacity: files.reduce(0) { $0 + $1.count })
        var ids: [Int64] = [], labels: [Int8] = []
        let a = anchors.count
        for f in files {
            let map = f.anchors.map { anchors.firstIndex(of: $0)! }
            for r in 0..<f.count {
                let (row, inserted) = index.insert(f.ids[r], row: Int32(ids.count))
                if inserted { ids.append(f.ids[r]); labels.append(contentsOf: repeatElement(absent, count: a)) }
                let base = Int(row) * a
                for j in 0..<a { labels[base + j] = absent }
                for (j, t) in map.enumerated() { labels[base + t] = f.labels[r * f.anchors.count + j] }
            }
        }
        return try! PseudoLabels(anchors: anchors, ids: ids, labels: labels)
    }

    /// Reads the official pseudo-label JSON (one object keyed by the pair id as a string). Labels must
    /// be -1, 0 or 1; keys other than `timestep_<t>` are an error. Errors name the file, line and column.
    public static func read(_ path: String) throws -> PseudoLabels {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        var s = JSONScanner(bytes, start: 0, end: bytes.count)
        var anchors: [Int] = []
        var keyBytes: [[UInt8]] = []              // `timestep_<t>` of each anchor, matched without allocating
        var ids: [Int64] = []
        var stride = 16                            // labels per row while reading; grows if needed
        var labels: [Int8] = []
        ids.reserveCapacity(bytes.count / 190); labels.reserveCapacity(bytes.count / 190 * stride)
        do {
            try s.expect(UInt8(ascii: "{"), "'{' (a pseudo-label file is one JSON object)")
            if !s.consume(UInt8(ascii: "}")) {
                repeat {
                    s.skipSpace()
                    guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected a pair id as a string key, found \(s.describeByte())") }
                    let at = s.pos
                    var id: Int64? = nil
                    if let r = try s.rawString(), r.count > 0, r.count <= 18 {
                        var v: Int64 = 0, neg = false, ok = true
                        for (i, k) in r.enumerated() {
                            let c = bytes[k]
                            if i == 0 && c == UInt8(ascii: "-") && r.count > 1 { neg = true; continue }
                            guard c >= 48 && c <= 57 else { ok = false; break }
                            v = v * 10 + Int64(c - 48)
                        }
                        if ok { id = neg ? -v : v }
                    } else {
                        s.pos = at
                        id = Int64(try s.parseString())
                    }
                    guard let id else { s.pos = at; throw s.fail("pair id \"\(try s.parseString())\" is not an integer", at: at) }
                    try s.expect(UInt8(ascii: ":"), "':' after a pair id")
                    try s.expect(UInt8(ascii: "{"), "'{' (each pair maps anchors to labels)")
                    labels.append(contentsOf: repeatElement(absent, count: stride))
                    ids.append(id)
                    if !s.consume(UInt8(ascii: "}")) {
                        var next = 0
                        repeat {
                            s.skipSpace()
                            guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected an anchor key, found \(s.describeByte())") }
                            var j = -1
                            if next < keyBytes.count && keyBytes[next].withUnsafeBytes({ s.matchKey($0) }) { j = next } else {
                                for q in 0..<keyBytes.count where keyBytes[q].withUnsafeBytes({ s.matchKey($0) }) { j = q; break }
                            }
                            if j < 0 {
                                let kat = s.pos
                                let k = try s.parseString()
                                guard k.hasPrefix("timestep_"), let t = Int(k.dropFirst(9)) else {
                                    throw s.fail("key \"\(k)\" is not timestep_<t>", at: kat)
                                }
                                if let known = anchors.firstIndex(of: t) { j = known } else {
                                    j = anchors.count; anchors.append(t); keyBytes.append(Array(k.utf8))
                                    if anchors.count > stride {  // re-stride the rows read so far
                                        let old = stride
                                        stride *= 2
                                        var wider = [Int8](repeating: absent, count: ids.count * stride)
                                        for r in 0..<ids.count { for c in 0..<old { wider[r * stride + c] = labels[r * old + c] } }
                                        labels = wider
                                    }
                                }
                            }
                            try s.expect(UInt8(ascii: ":"), "':' after an anchor key")
                            s.skipSpace()
                            let vat = s.pos
                            let v = try s.parseNumber()
                            guard v == 1 || v == 0 || v == -1 else { throw s.fail("a label must be -1, 0 or 1", at: vat) }
                            labels[(ids.count - 1) * stride + j] = Int8(v)
                            next = j + 1
                        } while s.consume(UInt8(ascii: ","))
                        try s.expect(UInt8(ascii: "}"), "',' or '}' in a pair's labels")
                    }
                } while s.consume(UInt8(ascii: ","))
                try s.expect(UInt8(ascii: "}"), "',' or '}' in the pseudo-label object")
            }
            s.skipSpace()
            if s.pos < bytes.count { throw s.fail("unexpected \(s.describeByte()) after the JSON object") }
        } catch let e as JSONSyntaxError {
            throw CoreError(JSON.describe(e, bytes: bytes, name: path))
        }
        let a = anchors.count
        var dense = [Int8](repeating: absent, count: ids.count * a)
        for r in 0..<ids.count { for j in 0..<a { dense[r * a + j] = labels[r * stride + j] } }
        let result = try PseudoLabels(anchors: anchors, ids: ids, labels: dense)
        // A duplicated id: the last object wins and keeps the first position, as Python's json/dict.
        var index = IdIndex(capacity: ids.count)
        for (r, id) in ids.enumerated() where !index.insert(id, row: Int32(r)).1 { return merged([result]) }
        return result
    }

    /// Writes the official JSON in Python's `json.dump` layout, byte for byte:
    /// `{"12": {"timestep_50": 1, "timestep_150": 0}, "13": {…}}`. Absent keys are omitted.
    public func write(_ path: String) throws {
        try AtomicFile.write(chunks: render(parts: 2), to: path)
    }

    /// The file's bytes in `parts` chunks rendered in parallel (concatenated in order).
    func render(parts: Int) -> [[UInt8]] {
        let a = anchors.count
        let firstKey = anchors.map { Array("\"timestep_\($0)\": ".utf8) }
        let n = count, p = max(1, min(parts, n))
        let chunks = UnsafeMutableBufferPointer<[UInt8]>.allocate(capacity: p)
        chunks.initialize(repeating: [])
        defer { chunks.deinitialize(); chunks.deallocate() }
        let keyLen = firstKey.map(\.count).max() ?? 0
        DispatchQueue.concurrentPerform(iterations: p) { c in
            let lo = n * c / p, hi = n * (c + 1) / p
            // Upper bound per row: `, "` + 20 digits + `": {` + anchors × (`, ` + key + `-1`) + `}`.
            let bound = (hi - lo) * (32 + a * (keyLen + 4)) + 2
            var out = [UInt8](repeating: 0, count: bound)
            let used = out.withUnsafeMutableBufferPointer { buf -> Int in
                let o = buf.baseAddress!
                var k = 0
                @inline(__always) func put(_ b: UInt8) { o[k] = b; k += 1 }
                if c == 0 { put(UInt8(ascii: "{")) }
                var digits = [UInt8](repeating: 0, count: 24)
                for r in lo..<hi {
                    if r > 0 { put(UInt8(ascii: ",")); put(0x20) }
                    put(UInt8(ascii: "\""))
                    let id = ids[r]
                    var v = id.magnitude, nd = 0
                    if id < 0 { put(UInt8(ascii: "-")) }
                    repeat { digits[nd] = UInt8(truncatingIfNeeded: 48 &+ v % 10); v /= 10; nd += 1 } while v > 0
                    while nd > 0 { nd -= 1; put(digits[nd]) }
                    put(UInt8(ascii: "\"")); put(UInt8(ascii: ":")); put(0x20); put(UInt8(ascii: "{"))
                    var first = true
                    for j in 0..<a {
                        let l = labels[r * a + j]
                        if l == PseudoLabels.absent { continue }
                        if !first { put(UInt8(ascii: ",")); put(0x20) }
                        first = false
                        firstKey[j].withUnsafeBufferPointer { kb in (o + k).update(from: kb.baseAddress!, count: kb.count); k += kb.count }
                        if l < 0 { put(UInt8(ascii: "-")) }
                        put(l == 0 ? UInt8(ascii: "0") : UInt8(ascii: "1"))
                    }
                    put(UInt8(ascii: "}"))
                }
                if c == p - 1 { put(UInt8(ascii: "}")) }
                return k
            }
            out.removeSubrange(used...)
            chunks[c] = out
        }
        if n == 0 { return [Array("{}".utf8)] }
        return Array(chunks)
    }
}
