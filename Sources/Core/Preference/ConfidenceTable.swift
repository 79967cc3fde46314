// The confidence table (pairs × timestep anchors of z values) and its official shard format:
// JSONL lines `{"idx": 12, "timestep_50": 1.7, …}`, one file or `confidence_rank*.jsonl` shards in a dir.
import Foundation

/// z(t) per pair and anchor: z = β·[(mse_ref(x_w) − mse_ref(x_l)) − (mse_θ(x_w) − mse_θ(x_l))];
/// z > 0 means the model agrees with the pair's label. Values are stored as Double so that selection
/// sees exactly the numbers Python's `json` would (a missing key is stored as NaN).
public struct ConfidenceTable {
    /// Anchor timesteps, e.g. [50, 150, …, 950]; the JSON key of anchor t is `timestep_t`.
    public let anchors: [Int]
    public private(set) var ids: [Int64]
    /// values: (pairs, anchors), row-major; NaN where a line had no value for the anchor.
    public private(set) var values: [Double]
    /// In a distributed confidence pass (`Cluster`), the rows this rank scored (a contiguous block;
    /// `writeRankShard` writes them); nil for a table read from files or scored by one process.
    public var scoredRows: Range<Int>? = nil

    public var count: Int { ids.count }

    public init(anchors: [Int], ids: [Int64], values: [Double]) throws {
        guard !anchors.isEmpty else { throw CoreError("a confidence table needs at least one anchor") }
        guard Set(anchors).count == anchors.count else { throw CoreError("anchors listed twice: \(anchors)") }
        guard values.count == ids.count * anchors.count else {
            throw CoreError("confidence table: \(values.count) values for \(ids.count) pairs × \(anchors.count) anchors")
        }
        self.anchors = anchors; self.ids = ids; self.values = values
        try dedupe()
    }

    public init(anchors: [Int], ids: [Int64], floatValues values: [Float]) throws {
        try self.init(anchors: anchors, ids: ids, values: values.map(Double.init))
    }

    @inline(__always) public func value(row: Int, anchor a: Int) -> Double { values[row * anchors.count + a] }

    /// Duplicate ids (distributed evaluation pads the last batch): the later line's values replace the
    /// earlier ones and the pair keeps its first position, as the authors' dict-merging `load_confidences`.
    mutating func dedupe() throws {
        var index = IdIndex(capacity: ids.count)
        var firstRow = [Int32](repeating: -1, count: ids.count)
        var duplicates = 0
        for (r, id) in ids.enumerated() {
            let (slot, inserted) = index.insert(id, row: Int32(r))
            if !inserted { firstRow[r] = slot; duplicates += 1 }
        }
        if duplicates == 0 { return }
        let a = anchors.count
        for r in ids.indices where firstRow[r] >= 0 {
            let f = Int(firstRow[r])
            for j in 0..<a { values[f * a + j] = values[r * a + j] }
        }
        var keepIds: [Int64] = [], keepValues: [Double] = []
        for r in ids.indices where firstRow[r] < 0 { keepIds.append(ids[r]); keepValues.append(contentsOf: values[r * a..<(r + 1) * a]) }
        ids = keepIds; values = keepValues
    }

    /// Accuracy per anchor on a clean test split: (#{z > 0} + ½·#{z = 0}) / #{values present};
    /// nil where no pair has a value. (The authors' `summarize_confidence.py` counts z = 0 as wrong;
    /// SPEC §2 counts ties ½.)
    public func accuracy() -> [Double?] {
        let a = anchors.count
        return (0..<a).map { j in
            var n = 0, pos = 0.0
            for r in 0..<count {
                let z = values[r * a + j]
                if z.isNaN { continue }
                n += 1
                pos += z > 0 ? 1 : (z == 0 ? 0.5 : 0)
            }
            return n == 0 ? nil : pos / Double(n)
        }
    }

    /// The shard files behind `path`: the file itself, or a directory's `confidence_rank*.jsonl`
    /// (sorted by name, as the authors' loader), or failing that all its `*.jsonl` files.
    public static func shardPaths(_ path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw CoreError("\(path): no such file or directory") }
        if !isDir.boolValue { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        var shards = names.filter { $0.hasPrefix("confidence_rank") && $0.hasSuffix(".jsonl") }
        if shards.isEmpty { shards = names.filter { $0.hasSuffix(".jsonl") } }
        if shards.isEmpty { throw CoreError("\(path): no confidence_rank*.jsonl shards") }
        return shards.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }

    /// Reads one shard file or a directory of shards (see `shardPaths`) on two threads. Anchors are
    /// `anchors` if given, else the `timestep_<t>` keys of the first line, in order; other keys besides
    /// `idx` are skipped. A line with an unknown `timestep_` key, a missing `idx` or bad JSON is an error
    /// naming the file and line.
    public static func read(_ path: String, anchors given: [Int]? = nil) throws -> ConfidenceTable {
        let files = try shardPaths(path).map { try MappedFile(path: $0) }
        guard let anchors = try given ?? files.lazy.compactMap({ try firstLineAnchors($0) }).first else {
            throw CoreError("\(path): no confidence lines")
        }
        let keys = anchors.map { Array("timestep_\($0)".utf8) }
        // Work items: each file split into two line-aligned halves.
        var items: [(file: Int, lo: Int, hi: Int)] = []
        for (f, file) in files.enumerated() {
            let b = file.bytes
            var mid = b.count / 2
            while mid > 0 && mid < b.count && b[mid - 1] != 0x0A { mid += 1 }
            items.append((f, 0, mid)); items.append((f, mid, b.count))
        }
        final class Part: @unchecked Sendable {
            var ids: [Int64] = []; var values: [Double] = []; var lines = 0; var error: (Int, Int, String)?
        }
        let parts = items.map { _ in Part() }
        let a = anchors.count
        let keyBytes = keys.flatMap { $0 }
        var keyRanges: [Range<Int>] = [], o = 0
        for k in keys { keyRanges.append(o..<o + k.count); o += k.count }
        keyBytes.withUnsafeBytes { kb in
            DispatchQueue.concurrentPerform(iterations: items.count) { w in
                let (f, lo, hi) = items[w]
                let part = parts[w]
                let bytes = files[f].bytes
                // Local arrays (class properties would pay a dynamic exclusivity check per access).
                var ids: [Int64] = [], values: [Double] = [], lines = 0
                defer { part.ids = ids; part.values = values; part.lines = lines }
                ids.reserveCapacity((hi - lo) / 200); values.reserveCapacity((hi - lo) / 200 * a)
                let idxKey: StaticString = "idx"
                let idxBytes = UnsafeRawBufferPointer(start: idxKey.utf8Start, count: idxKey.utf8CodeUnitCount)
                var start = lo
                while start < hi {
                    lines += 1
                    let end = memchr(bytes.baseAddress! + start, 0x0A, hi - start).map { UnsafeRawPointer($0) - bytes.baseAddress! } ?? hi
                    var s = JSONScanner(bytes, start: start, end: end)
                    do {
                        s.skipSpace()
                        if s.pos < end {
                            let base = values.count
                            values.append(contentsOf: repeatElement(Double.nan, count: a))
                            var id: Int64? = nil
                            try s.expect(UInt8(ascii: "{"), "'{' (each line must be a JSON object)")
                            if !s.consume(UInt8(ascii: "}")) {
                                var next = 0
                                repeat {
                                    s.skipSpace()
                                    guard s.peek() == UInt8(ascii: "\"") else { throw s.fail("expected a string key, found \(s.describeByte())") }
                                    var hit = -1
                                    if s.matchKey(idxBytes) {
                                        try s.expect(UInt8(ascii: ":"), "':' after an object key")
                                        s.skipSpace(); id = try s.parseInteger("idx")
                                        continue
                                    }
                                    // Keys usually come in anchor order: try the expected one first.
                                    if next < a && s.matchKey(UnsafeRawBufferPointer(rebasing: kb[keyRanges[next]])) { hit = next } else {
                                        for j in 0..<a where s.matchKey(UnsafeRawBufferPointer(rebasing: kb[keyRanges[j]])) { hit = j; break }
                                    }
                                    if hit >= 0 {
                                        try s.expect(UInt8(ascii: ":"), "':' after an object key")
                                        s.skipSpace()
                                        let at = s.pos
                                        let z = try s.parseNumber()
                                        if !z.isFinite { throw s.fail("z is not finite", at: at) }
                                        values[base + hit] = z
                                        next = hit + 1
                                    } else {
                                        let keyAt = s.pos
                                        let key = try s.parseString()
                                        try s.expect(UInt8(ascii: ":"), "':' after an object key")
                                        if key == "idx" {
                                            s.skipSpace(); id = try s.parseInteger("idx")
                                        } else if key.hasPrefix("timestep_") {
                                            throw s.fail("key \"\(key)\" is not one of the anchors \(anchors)\(given == nil ? " (taken from the first line; pass anchors to read more)" : "")", at: keyAt)
                                        } else {
                                            try s.skipValue()
                                        }
                                    }
                                } while s.consume(UInt8(ascii: ","))
                                try s.expect(UInt8(ascii: "}"), "',' or '}' in the object")
                            }
                            s.skipSpace()
                            if s.pos < end { throw s.fail("unexpected \(s.describeByte()) after the JSON object") }
                            guard let id else { throw s.fail("missing \"idx\"", at: start) }
                            ids.append(id)
                        }
                    } catch let e as JSONSyntaxError {
                        part.error = (lines, e.offset - start + 1, e.message); return
                    } catch { part.error = (lines, 1, "\(error)"); return }
                    start = end + 1
                }
            }
        }
        var ids: [Int64] = [], values: [Double] = []
        ids.reserveCapacity(parts.reduce(0) { $0 + $1.ids.count }); values.reserveCapacity(ids.capacity * a)
        var lineBase = 0
        for (w, part) in parts.enumerated() {
            if w > 0 && items[w].file != items[w - 1].file { lineBase = 0 }
            if let (line, col, msg) = part.error { throw CoreError("\(files[items[w].file].path):\(lineBase + line):\(col): \(msg)") }
            lineBase += part.lines
            ids.append(contentsOf: part.ids); values.append(contentsOf: part.values)
        }
        return try ConfidenceTable(anchors: anchors, ids: ids, values: values)
    }

    /// The `timestep_<t>` anchors of the first non-blank line of a file, or nil if it has none.
    static func firstLineAnchors(_ file: MappedFile) throws -> [Int]? {
        let b = file.bytes
        var start = 0, line = 0
        while start < b.count {
            line += 1
            var end = start
            while end < b.count && b[end] != 0x0A { end += 1 }
            var s = JSONScanner(b, start: start, end: end)
            s.skipSpace()
            if s.pos < end {
                let v: JSONValue
                do { v = try s.parseValue(depth: 0) } catch let e as JSONSyntaxError {
                    throw CoreError("\(file.path):\(line):\(e.offset - start + 1): \(e.message)")
                }
                guard case let .object(m) = v else { throw CoreError("\(file.path):\(line): expected a JSON object per line") }
                let anchors = try m.map(\.key).filter { $0.hasPrefix("timestep_") }.map { k -> Int in
                    guard let t = Int(k.dropFirst("timestep_".count)) else { throw CoreError("\(file.path):\(line): bad anchor key \"\(k)\"") }
                    return t
                }
                if anchors.isEmpty { throw CoreError("\(file.path):\(line): no timestep_<t> keys") }
                return anchors
            }
            start = end + 1
        }
        return nil
    }

    /// Writes `shards` JSONL files `confidence_rank000.jsonl`, … into `dir` (pairs dealt round-robin, as
    /// a distributed run would), or one file when `dir` ends in `.jsonl`. Values use Swift's shortest
    /// round-trip decimal form, so reading them back gives the same doubles.
    public func write(to path: String, shards: Int = 1) throws {
        if path.hasSuffix(".jsonl") {
            try AtomicFile.write(chunks: [renderLines(0..<count)], to: path)
            return
        }
        let n = max(1, shards)
        for k in 0..<n {
            let name = String(format: "confidence_rank%03d.jsonl", k)
            try AtomicFile.write(chunks: [renderLines(stride(from: k, to: count, by: n))], to: URL(fileURLWithPath: path).appendingPathComponent(name).path)
        }
    }

    /// The JSONL lines of `rows`, in order.
    private func renderLines<R: Sequence<Int>>(_ rows: R) -> [UInt8] {
        let a = anchors.count
        let keys = anchors.map { Array(", \"timestep_\($0)\": ".utf8) }
        var out = [UInt8]()
        for r in rows {
            out.append(contentsOf: Array("{\"idx\": ".utf8)); JSON.appendInt(ids[r], to: &out)
            for j in 0..<a where !values[r * a + j].isNaN {
                out.append(contentsOf: keys[j])
                let z = values[r * a + j]
                out.append(contentsOf: Array(z.description.utf8))
            }
            out.append(contentsOf: Array("}\n".utf8))
        }
        return out
    }

    /// Writes `dir/confidence_rank<rank, 3 digits>.jsonl` with `rows` (the authors' layout of a
    /// distributed pass: one file per rank, each with the pairs that rank scored). Every rank writes its
    /// own file (`AtomicWriter` with `perRank`). With contiguous blocks in rank order, the shards read
    /// back in name order (`read`) give the rows in the table's order. Returns the path.
    @discardableResult
    public func writeRankShard(to dir: String, rank: Int, rows: Range<Int>) throws -> String {
        guard rows.lowerBound >= 0, rows.upperBound <= count else {
            throw CoreError("confidence shard: rows \(rows) outside the table's 0..<\(count)")
        }
        let path = URL(fileURLWithPath: dir).appendingPathComponent(String(format: "confidence_rank%03d.jsonl", rank)).path
        try AtomicFile.write(chunks: [renderLines(rows)], to: path, perRank: true)
        return path
    }
}

/// An open-addressing hash map from pair id to the row it first appeared in.
struct IdIndex {
    private var keys: [Int64]
    private var rows: [Int32]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [Int64](repeating: 0, count: size); rows = [Int32](repeating: -1, count: size); mask = size - 1
    }

    /// Inserts `id` → `row` unless present; returns the stored row and whether it was inserted.
    @inline(__always) mutating func insert(_ id: Int64, row: Int32) -> (Int32, Bool) {
        var i = Int(truncatingIfNeeded: mix64(UInt64(bitPattern: id))) & mask
        while rows[i] >= 0 {
            if keys[i] == id { return (rows[i], false) }
            i = (i + 1) & mask
        }
        keys[i] = id; rows[i] = row
        return (row, true)
    }

    @inline(__always) func find(_ id: Int64) -> Int32? {
        var i = Int(truncatingIfNeeded: mix64(UInt64(bitPattern: id))) & mask
        while rows[i] >= 0 {
            if keys[i] == id { return rows[i] }
            i = (i + 1) & mask
        }
        return nil
    }
}
