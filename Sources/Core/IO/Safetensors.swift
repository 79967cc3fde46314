// Safetensors files of F32 tensors: 8-byte little-endian header length, a JSON header, raw data.
// Whole-file and streaming writers, and a memory-mapped reader that loads tensors lazily.
import Foundation

/// One named F32 tensor held in memory. `data.count` equals the product of `shape`.
public struct NamedTensor: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var data: [Float]
    public init(name: String, shape: [Int], data: [Float]) {
        self.name = name; self.shape = shape; self.data = data
    }
}

/// The declaration of a tensor in a header: its name, shape and byte range inside the data section.
public struct SafetensorsEntry: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    /// Byte offsets relative to the start of the data section, `[begin, end)`.
    public let begin: Int
    public let end: Int
    /// Number of elements, the product of `shape` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

public enum Safetensors {
    /// Builds the padded header (length prefix included) for tensors laid out in the given order.
    /// The JSON is padded with spaces to a multiple of 8 bytes, as Python's writer does, so the data
    /// section starts 8-byte aligned.
    static func header(for declarations: [(name: String, shape: [Int])], metadata: [String: String]) throws -> (Data, [SafetensorsEntry]) {
        var entries: [SafetensorsEntry] = []
        var offset = 0
        var seen = Set<String>()
        for (name, shape) in declarations {
            guard !name.isEmpty, name != "__metadata__" else { throw CoreError("safetensors: invalid tensor name '\(name)'") }
            guard seen.insert(name).inserted else { throw CoreError("safetensors: duplicate tensor name '\(name)'") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw CoreError("safetensors: tensor '\(name)' has a negative dimension in \(shape)") }
            let bytes = shape.reduce(1, *) * 4
            entries.append(SafetensorsEntry(name: name, shape: shape, begin: offset, end: offset + bytes))
            offset += bytes
        }
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        for e in entries {
            parts.append("\(jsonString(e.name)):{\"dtype\":\"F32\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(e.begin),\(e.end)]}")
        }
        json += parts.joined(separator: ",") + "}"
        var body = Data(json.utf8)
        while body.count % 8 != 0 { body.append(0x20) }
        var out = Data(capacity: 8 + body.count)
        var n = UInt64(body.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(body)
        return (out, entries)
    }

    /// Encodes tensors (in the given order) and string metadata into the bytes of a safetensors file.
    public static func encode(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws -> Data {
        for t in tensors where t.shape.reduce(1, *) != t.data.count {
            throw CoreError("safetensors: tensor '\(t.name)' has shape \(t.shape) but \(t.data.count) values")
        }
        var (out, _) = try header(for: tensors.map { ($0.name, $0.shape) }, metadata: metadata)
        for t in tensors { t.data.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// Writes tensors and metadata to `path` atomically.
    public static func write(_ tensors: [NamedTensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }

    /// Reads every tensor of a file into memory, in data-offset order.
    public static func read(_ path: String) throws -> (tensors: [NamedTensor], metadata: [String: String]) {
        let file = try SafetensorsFile(path: path)
        return (try file.entries.map { try file.tensor($0.name) }, file.metadata)
    }

    /// `s` as a JSON string literal (quotes and escapes), through the project's one JSON writer.
    static func jsonString(_ s: String) -> String {
        var out: [UInt8] = []
        JSON.appendString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Streams a safetensors file whose tensor shapes are known in advance: the header is written first,
/// then each tensor's values are appended in declaration order, in as many pieces as convenient.
/// The file appears at `path` (atomically, by rename) only when `finish()` succeeds.
public final class SafetensorsStreamWriter {
    public let path: String
    public let entries: [SafetensorsEntry]
    private var file: AtomicWriter?
    private var written = 0          // bytes of the data section written so far
    private let total: Int

    /// Declares the tensors (name, shape) in the order their data will be appended.
    public init(path: String, tensors: [(name: String, shape: [Int])], metadata: [String: String] = [:]) throws {
        self.path = path
        let (head, entries) = try Safetensors.header(for: tensors, metadata: metadata)
        self.entries = entries
        total = entries.last?.end ?? 0
        let w = try AtomicWriter(path: path)
        try w.write(head)
        file = w
    }

    /// Appends raw values continuing the data section; pieces may span tensor boundaries.
    public func append(_ values: UnsafeBufferPointer<Float>) throws {
        guard let w = file else { throw CoreError("cannot write \(path): writer already finished") }
        guard written + values.count * 4 <= total else {
            throw CoreError("cannot write \(path): \(written / 4 + values.count) values appended but the declared tensors hold \(total / 4)")
        }
        do { try w.write(UnsafeRawBufferPointer(values)) } catch { file = nil; throw error }
        written += values.count * 4
    }

    public func append(_ values: [Float]) throws { try values.withUnsafeBufferPointer { try append($0) } }

    /// Puts the file in place (atomically, durably); fails if fewer values were appended than declared.
    public func finish() throws {
        guard let w = file else { throw CoreError("cannot write \(path): writer already finished") }
        file = nil
        guard written == total else {
            w.abandon()
            throw CoreError("cannot write \(path): \(written / 4) values appended but the declared tensors hold \(total / 4)")
        }
        try w.commit()
    }
}

/// A safetensors file opened for lazy reading: the header is parsed and validated on open, the data
/// stays memory-mapped and a tensor (or a range of its leading-dimension rows) is copied on request.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let metadata: [String: String]
    /// Tensor declarations sorted by data offset.
    public let entries: [SafetensorsEntry]
    private let byName: [String: SafetensorsEntry]
    private let bytes: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let data: Data
        try InputFile.requireRegular(path, what: "safetensors file")
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw CoreError("cannot read \(path): \(error.localizedDescription)")
        }
        bytes = data
        func fail(_ why: String) -> CoreError { CoreError("bad safetensors file \(path): \(why)") }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        let n = data.withUnsafeBytes { raw -> UInt64 in
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return v
        }
        guard n <= UInt64(data.count - 8) else { throw fail("header length \(n) runs past the end of the \(data.count)-byte file") }
        guard n <= 100_000_000 else { throw fail("header length \(n) is implausibly large") }
        dataStart = 8 + Int(n)
        let header: JSONValue
        do { header = try data.withUnsafeBytes { try JSON.parse(bytes: UnsafeRawBufferPointer(rebasing: $0[8..<(8 + Int(n))]), name: "header") } }
        catch let e as CoreError { throw fail("the header is not valid JSON (\(e.message))") }
        guard case let .object(members) = header else { throw fail("the header is not a JSON object") }
        var meta: [String: String] = [:]
        var list: [SafetensorsEntry] = []
        var seen = Set<String>()
        let dataSize = data.count - dataStart
        let maxDimension = Int64(Int32.max) * 64
        // A value as written: a float keeps its fraction (`2.0`), so the message shows why it is refused.
        func literal(_ v: JSONValue) -> String { if case let .number(x) = v { return "\(x)" }; return v.description }
        for (key, value) in members {
            guard seen.insert(key).inserted else { throw fail("'\(key)' appears twice in the header") }
            if key == "__metadata__" {
                guard case let .object(m) = value else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw fail("__metadata__ value for '\(k)' is not a string (\(literal(v)))") }
                    meta[k] = s
                }
                continue
            }
            guard case .object = value else { throw fail("entry '\(key)' is not an object") }
            guard let dtypeValue = value["dtype"] else { throw fail("tensor '\(key)' has no dtype") }
            guard let dtype = dtypeValue.stringValue else { throw fail("tensor '\(key)' has dtype \(literal(dtypeValue)), not a string") }
            guard dtype == "F32" else { throw fail("tensor '\(key)' has dtype \(dtype); only F32 is supported") }
            guard let shapeList = value["shape"]?.arrayValue else { throw fail("tensor '\(key)' needs a shape list") }
            var shape: [Int] = []
            for (k, d) in shapeList.enumerated() {
                guard let v = d.int64Value, v >= 0, v <= maxDimension else {
                    throw fail("tensor '\(key)' has shape entry \(k) = \(literal(d)); shape entries must be non-negative integers (at most \(maxDimension))")
                }
                shape.append(Int(v))
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2 else {
                throw fail("tensor '\(key)' needs data_offsets, a list of two integers [begin, end]")
            }
            guard let b64 = offsets[0].int64Value, let e64 = offsets[1].int64Value, b64 >= 0, b64 <= e64, e64 <= maxDimension else {
                throw fail("tensor '\(key)' has invalid data_offsets [\(literal(offsets[0])), \(literal(offsets[1]))]; they must be integers with 0 ≤ begin ≤ end")
            }
            let b = Int(b64), e = Int(e64)
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= Int(maxDimension) else { throw fail("tensor '\(key)' has an overflowing shape \(shape)") }
                count = p
            }
            guard e - b == count * 4 else {
                throw fail("tensor '\(key)' has shape \(shape) (\(count * 4) bytes of F32) but data_offsets span \(e - b) bytes")
            }
            guard e <= dataSize else {
                throw fail("tensor '\(key)' ends at byte \(e) past the \(dataSize)-byte data section (truncated file?)")
            }
            list.append(SafetensorsEntry(name: key, shape: shape, begin: b, end: e))
        }
        list.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for i in 1..<max(list.count, 1) where list[i].begin < list[i - 1].end {
            throw fail("tensors '\(list[i - 1].name)' and '\(list[i].name)' overlap")
        }
        metadata = meta
        entries = list
        byName = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) throws -> SafetensorsEntry {
        guard let e = byName[name] else { throw CoreError("\(path): no tensor named '\(name)' (has \(names.joined(separator: ", ")))") }
        return e
    }

    /// Loads one whole tensor.
    public func tensor(_ name: String) throws -> NamedTensor {
        let e = try entry(name)
        return NamedTensor(name: name, shape: e.shape, data: copy(e, fromElement: 0, count: e.count))
    }

    /// Loads rows `rows` of the leading dimension of a tensor (each row is the product of the other
    /// dimensions), e.g. images 100..<132 of an (N, 3, S, S) tensor.
    public func rows(_ name: String, _ rows: Range<Int>) throws -> [Float] {
        let e = try entry(name)
        guard let n = e.shape.first else { throw CoreError("\(path): tensor '\(name)' is a scalar and has no rows") }
        guard rows.lowerBound >= 0, rows.upperBound <= n else {
            throw CoreError("\(path): rows \(rows) out of range for tensor '\(name)' with \(n) rows")
        }
        let rowSize = e.shape.dropFirst().reduce(1, *)
        return copy(e, fromElement: rows.lowerBound * rowSize, count: rows.count * rowSize)
    }

    /// Copies `count` elements of one row range into `out` starting at `out[offset]` (no allocation).
    public func readRow(_ name: String, _ row: Int, into out: inout [Float], at offset: Int) throws {
        let e = try entry(name)
        guard let n = e.shape.first, row >= 0, row < n else { throw CoreError("\(path): row \(row) out of range for tensor '\(name)'") }
        let rowSize = e.shape.dropFirst().reduce(1, *)
        guard offset >= 0, offset + rowSize <= out.count else { throw CoreError("\(path): output buffer too small for a row of '\(name)'") }
        let start = dataStart + e.begin + row * rowSize * 4
        out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                dst.baseAddress!.advanced(by: offset * 4).copyMemory(from: src.baseAddress!.advanced(by: start), byteCount: rowSize * 4)
            }
        }
    }

    private func copy(_ e: SafetensorsEntry, fromElement first: Int, count: Int) -> [Float] {
        let start = dataStart + e.begin + first * 4
        if count == 0 { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buf, initialized in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: src.baseAddress!.advanced(by: start), byteCount: count * 4)
            }
            initialized = count
        }
    }
}
