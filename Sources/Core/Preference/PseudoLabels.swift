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
        var anchors: [Int] = [], anchorKeys: [String: Int] = [:]
        var ids: [Int64] = []
        var entries: [(row: Int32, anchor: Int32, label: Int8)] = []
        do {
            try s.expect(UInt8(ascii: "{"), "'{' (a pseudo-label file is one JSON object)")
            if !s.consume(UInt8(ascii: "}")) {
                repeat {
                    s.skipSpace()
                    guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected a pair id as a string key, found \(s.describeByte())") }
                    let at = s.pos
                    let key = try s.parseString()
                    guard let id = Int64(key) else { throw s.fail("pair id \"\(key)\" is not an integer", at: at) }
                    try s.expect(UInt8(ascii: ":"), "':' after a pair id")
                    try s.expect(UInt8(ascii: "{"), "'{' (each pair maps anchors to labels)")
                    let row = Int32(ids.count)
                    ids.append(id)
                    if !s.consume(UInt8(ascii: "}")) {
                        repeat {
                            s.skipSpace()
                            guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected an anchor key, found \(s.describeByte())") }
                            let kat = s.pos
                            let k = try s.parseString()
                            let j: Int
                            if let known = anchorKeys[k] { j = known } else {
                                guard k.hasPrefix("timestep_"), let t = Int(k.dropFirst(9)) else {
                                    throw s.fail("key \"\(k)\" is not timestep_<t>", at: kat)
                                }
                                j = anchors.count; anchors.append(t); anchorKeys[k] = j
                            }
                            try s.expect(UInt8(ascii: ":"), "':' after an anchor key")
                            s.skipSpace()
                            let vat = s.pos
                            let v = try s.parseNumber()
                            guard v == 1 || v == 0 || v == -1 else { throw s.fail("a label must be -1, 0 or 1", at: vat) }
                            entries.append((row, Int32(j), Int8(v)))
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
        var labels = [Int8](repeating: absent, count: ids.count * a)
        for e in entries { labels[Int(e.row) * a + Int(e.anchor)] = e.label }
        // A duplicated id: the last object wins and keeps the first position, as Python's json/dict.
        return merged([try PseudoLabels(anchors: anchors, ids: ids, labels: labels)])
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
        let value: [[UInt8]] = [Array("-1".utf8), Array("0".utf8), Array("1".utf8)]
        let n = count, p = max(1, min(parts, n))
        let chunks = UnsafeMutableBufferPointer<[UInt8]>.allocate(capacity: p)
        chunks.initialize(repeating: [])
        defer { chunks.deinitialize(); chunks.deallocate() }
        DispatchQueue.concurrentPerform(iterations: p) { c in
            let lo = n * c / p, hi = n * (c + 1) / p
            var out = [UInt8]()
            out.reserveCapacity((hi - lo) * (16 + a * 20))
            if c == 0 { out.append(UInt8(ascii: "{")) }
            for r in lo..<hi {
                if r > 0 { out.append(UInt8(ascii: ",")); out.append(0x20) }
                out.append(UInt8(ascii: "\"")); JSON.appendInt(ids[r], to: &out)
                out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":"), 0x20, UInt8(ascii: "{")])
                var first = true
                for j in 0..<a {
                    let l = labels[r * a + j]
                    if l == PseudoLabels.absent { continue }
                    if !first { out.append(UInt8(ascii: ",")); out.append(0x20) }
                    first = false
                    out.append(contentsOf: firstKey[j])
                    out.append(contentsOf: value[Int(l) + 1])
                }
                out.append(UInt8(ascii: "}"))
            }
            if c == p - 1 { out.append(UInt8(ascii: "}")) }
            chunks[c] = out
        }
        if n == 0 { return [Array("{}".utf8)] }
        return Array(chunks)
    }
}
