// A byte-level JSON parser and serializer (RFC 8259), with errors that give line and column, plus
// the low-level scanner pieces (numbers, strings, skipping) that the tabular hot paths reuse.
// The project's one JSON implementation: nothing in the project uses Foundation's JSONSerialization.
import Foundation

/// A parsed JSON value. Objects keep their members in file order (duplicate keys are kept too;
/// `subscript(key:)` returns the last, as Python's `json` does). A number written without a
/// fraction or exponent (`42`, `-7`) is an exact `.integer`; every other number is a `.number`.
public enum JSONValue: Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// Numbers compare by value: `.integer(1) == .number(1.0)`, but `.integer(2^53 + 1)` equals no double.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.integer(x), .number(y)), let (.number(y), .integer(x)): return Double(exactly: x) == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value of the last member named `key`, or nil (also nil when self is not an object).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    /// Any number as a Double (an integer beyond 2^53 is rounded to the nearest double).
    public var doubleValue: Double? {
        switch self {
        case let .number(x): return x
        case let .integer(i): return Double(i)
        default: return nil
        }
    }
    public var stringValue: String? { if case let .string(x) = self { return x }; return nil }
    public var arrayValue: [JSONValue]? { if case let .array(x) = self { return x }; return nil }
    public var boolValue: Bool? { if case let .bool(x) = self { return x }; return nil }
    /// An integer literal, exactly; nil for anything else — also for a float such as `2.0` or `1e3`.
    public var int64Value: Int64? { if case let .integer(i) = self { return i }; return nil }
    /// `int64Value` as an Int.
    public var intValue: Int? { int64Value.map { Int($0) } }

    /// The value as a Foundation-style tree — `NSNull`, `Bool`, `Int`, `Double`, `String`, `[Any]`,
    /// `[String: Any]` (the last of duplicate keys wins) — for the `[String: Any]` config readers.
    public var foundationValue: Any {
        switch self {
        case .null: return NSNull()
        case let .bool(b): return b
        case let .integer(i): return Int(i)
        case let .number(x): return x
        case let .string(s): return s
        case let .array(a): return a.map(\.foundationValue)
        case let .object(m): return Dictionary(m.map { ($0.key, $0.value.foundationValue) }, uniquingKeysWith: { _, last in last })
        }
    }

    /// Compact JSON text in Python's `json.dumps` layout (`", "` and `": "` separators).
    public var description: String { JSON.serialize(self) }

    /// Converts a Foundation-style value tree — `[String: Any]`, `[Any]`, `String`, `Bool`, Swift
    /// integers, `Double`, `Float`, `NSNull`, optionals — to a JSONValue. Object members are sorted
    /// by the UTF-8 bytes of their keys (the canonical order that `JSON.serialize(_:layout: .compact)`
    /// writes). A `Float` becomes the double of its shortest decimal form, so it is written as `0.1`,
    /// not `0.10000000149011612`. Other types (and nil) throw, naming the path to the value.
    public init(any value: Any, at path: String = "$") throws {
        switch value {
        case let v as JSONValue: self = v
        case is NSNull: self = .null
        case let b as Bool where type(of: value) == Bool.self: self = .bool(b)   // not an NSNumber 0/1
        case let i as Int: self = .integer(Int64(i))
        case let i as Int64: self = .integer(i)
        case let i as Int32: self = .integer(Int64(i))
        case let i as UInt32: self = .integer(Int64(i))
        case let i as UInt64:
            guard let v = Int64(exactly: i) else { throw CoreError("JSON: \(path) = \(i) does not fit in a 64-bit integer") }
            self = .integer(v)
        case let x as Double: self = .number(x)
        case let f as Float: self = .number(Double(f.description) ?? Double(f))
        case let s as String: self = .string(s)
        case let s as Substring: self = .string(String(s))
        case let d as [String: Any]:
            self = .object(try d.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { k in
                (k, try JSONValue(any: d[k]!, at: "\(path).\(k)"))
            })
        case let a as [Any]:
            self = .array(try a.enumerated().map { try JSONValue(any: $0.element, at: "\(path)[\($0.offset)]") })
        default:
            // An Optional inside `Any`: unwrap it, nil becomes an error (there is no silent null).
            let m = Mirror(reflecting: value)
            if m.displayStyle == .optional {
                guard let inner = m.children.first?.value else { throw CoreError("JSON: \(path) is nil") }
                try self.init(any: inner, at: path)
                return
            }
            throw CoreError("JSON: \(path) has type \(type(of: value)), which has no JSON form")
        }
    }
}

/// A JSON syntax error at a byte offset; `JSON.describe` turns it into `file:line:column: message`.
public struct JSONSyntaxError: Error {
    public let offset: Int
    public let message: String
}

public enum JSON {
    /// Parses one JSON document from `text`. Errors read `<name>:<line>:<column>: <message>`.
    public static func parse(_ text: String, name: String = "<string>") throws -> JSONValue {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { try parse(bytes: UnsafeRawBufferPointer($0), name: name) }
    }

    public static func parse(data: Data, name: String = "<data>") throws -> JSONValue {
        try data.withUnsafeBytes { try parse(bytes: $0, name: name) }
    }

    /// Parses a whole file (memory-mapped).
    public static func parse(file path: String) throws -> JSONValue {
        let file = try MappedFile(path: path)
        return try parse(bytes: file.bytes, name: path)
    }

    public static func parse(bytes: UnsafeRawBufferPointer, name: String) throws -> JSONValue {
        var s = JSONScanner(bytes, start: 0, end: bytes.count)
        do {
            s.skipSpace()
            let v = try s.parseValue(depth: 0)
            s.skipSpace()
            if s.pos < s.end { throw s.fail("unexpected \(s.describeByte()) after the JSON value") }
            return v
        } catch let e as JSONSyntaxError {
            throw CoreError(describe(e, bytes: bytes, name: name))
        }
    }

    /// `name:line:column: message`, counting lines (from 1) and columns (bytes, from 1) up to the error.
    public static func describe(_ e: JSONSyntaxError, bytes: UnsafeRawBufferPointer, name: String, lineOffset: Int = 0) -> String {
        var line = 1, lineStart = 0
        let upto = min(e.offset, bytes.count)
        for i in 0..<upto where bytes[i] == 0x0A { line += 1; lineStart = i + 1 }
        return "\(name):\(line + lineOffset):\(upto - lineStart + 1): \(e.message)"
    }

    /// How `serialize` separates items: `.python` is Python's `json.dumps` (`[1, 2]`, `{"a": 1}`),
    /// `.compact` has no spaces (`[1,2]`, `{"a":1}`, the bytes Foundation's JSONSerialization wrote for
    /// checkpoint configs — see `serialize(any:)`).
    public enum Layout: Sendable { case python, compact }

    /// Serializes a value. Integers are written exactly; integral doubles below 2^53 without a
    /// fraction; other doubles in Swift's shortest round-trip form. NaN and infinities have no JSON
    /// form and are written as `null`. `indent` (python layout only) puts each item on its own line.
    public static func serialize(_ v: JSONValue, indent: Int? = nil, layout: Layout = .python) -> String {
        var out = [UInt8]()
        write(v, to: &out, indent: layout == .compact ? nil : indent, level: 0, separator: layout == .compact ? nil : 0x20)
        return String(decoding: out, as: UTF8.self)
    }

    /// Compact JSON with keys sorted by their UTF-8 bytes, from a Foundation-style value tree (see
    /// `JSONValue(any:)`). For the project's snake_case keys and plain strings this is byte for byte
    /// what `JSONSerialization.data(withJSONObject:options: .sortedKeys)` wrote before (the checkpoint
    /// `config` and `pretrain_config` metadata); it differs only where Foundation escaped `/` as `\/`,
    /// wrote -0.0 as `-0` or 2^53 as `9007199254740992`, or ordered keys case-insensitively with
    /// digit runs compared as numbers (`a2` before `a10`).
    public static func serialize(any value: Any) throws -> String {
        serialize(try JSONValue(any: value), layout: .compact)
    }

    /// `separator`: the byte after `,` and `:` (a space in the python layout), or nil for none.
    static func write(_ v: JSONValue, to out: inout [UInt8], indent: Int?, level: Int, separator: UInt8? = 0x20) {
        func newline(_ l: Int) {
            guard let indent else { return }
            out.append(0x0A)
            out.append(contentsOf: repeatElement(0x20, count: indent * l))
        }
        switch v {
        case .null: out.append(contentsOf: Array("null".utf8))
        case let .bool(b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case let .integer(i): appendInt(i, to: &out)
        case let .number(x): appendNumber(x, to: &out)
        case let .string(s): appendString(s, to: &out)
        case let .array(a):
            out.append(UInt8(ascii: "["))
            for (i, e) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")); if indent == nil, let separator { out.append(separator) } }
                newline(level + 1)
                write(e, to: &out, indent: indent, level: level + 1, separator: separator)
            }
            if !a.isEmpty { newline(level) }
            out.append(UInt8(ascii: "]"))
        case let .object(m):
            out.append(UInt8(ascii: "{"))
            for (i, e) in m.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")); if indent == nil, let separator { out.append(separator) } }
                newline(level + 1)
                appendString(e.key, to: &out)
                out.append(UInt8(ascii: ":"))
                if let separator { out.append(separator) }
                write(e.value, to: &out, indent: indent, level: level + 1, separator: separator)
            }
            if !m.isEmpty { newline(level) }
            out.append(UInt8(ascii: "}"))
        }
    }

    public static func appendNumber(_ x: Double, to out: inout [UInt8]) {
        if !x.isFinite { out.append(contentsOf: Array("null".utf8)); return }
        if x.rounded() == x && abs(x) < 9_007_199_254_740_992 {
            appendInt(Int64(x), to: &out)
        } else {
            out.append(contentsOf: Array(x.description.utf8))
        }
    }

    /// Decimal digits of `x` appended without allocating.
    @inline(__always)
    public static func appendInt(_ x: Int64, to out: inout [UInt8]) {
        var v = x.magnitude
        if x < 0 { out.append(UInt8(ascii: "-")) }
        if v < 10 { out.append(UInt8(truncatingIfNeeded: 48 &+ v)); return }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        let n = withUnsafeMutableBytes(of: &tmp) { buf -> Int in
            var i = 24
            while v > 0 { i -= 1; buf[i] = UInt8(truncatingIfNeeded: 48 &+ v % 10); v /= 10 }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<24]))
            return 24 - i
        }
        _ = n
    }

    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, b])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, b])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// JSON Lines: one JSON value per line; blank lines are skipped.
public enum JSONL {
    /// Parses every non-blank line of a file. Errors read `<path>:<line>:<column>: <message>`.
    public static func read(file path: String) throws -> [JSONValue] {
        let file = try MappedFile(path: path)
        var out: [JSONValue] = []
        try forEachLine(file.bytes, name: path) { _, _, v in out.append(v) }
        return out
    }

    /// Calls `body(lineNumber, byteOffset, value)` for every non-blank line.
    public static func forEachLine(_ bytes: UnsafeRawBufferPointer, name: String,
                                   _ body: (Int, Int, JSONValue) throws -> Void) throws {
        try scan(bytes, name: name) { line, offset, value in try body(line, offset, value); return true }
    }

    /// The first non-blank line's number and value, or nil for a file of blank lines.
    public static func first(_ bytes: UnsafeRawBufferPointer, name: String) throws -> (line: Int, value: JSONValue)? {
        var found: (line: Int, value: JSONValue)?
        try scan(bytes, name: name) { line, _, value in found = (line, value); return false }
        return found
    }

    /// Parses non-blank lines in order until `body` returns false.
    private static func scan(_ bytes: UnsafeRawBufferPointer, name: String,
                             _ body: (Int, Int, JSONValue) throws -> Bool) throws {
        var line = 0, start = 0
        while start < bytes.count {
            line += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var s = JSONScanner(bytes, start: start, end: end)
            s.skipSpace()
            if s.pos < end {
                let value: JSONValue
                do {
                    value = try s.parseValue(depth: 0)
                    s.skipSpace()
                    if s.pos < end { throw s.fail("unexpected \(s.describeByte()) after the JSON value") }
                } catch let e as JSONSyntaxError {
                    throw CoreError("\(name):\(line):\(e.offset - start + 1): \(e.message)")
                }
                if try !body(line, start, value) { return }
            }
            start = end + 1
        }
    }

    /// Writes one compact JSON value per line, atomically.
    public static func write(_ values: [JSONValue], to path: String) throws {
        var out = [UInt8]()
        for v in values { JSON.write(v, to: &out, indent: nil, level: 0); out.append(0x0A) }
        try AtomicFile.write(Data(out), to: path)
    }
}

/// A read-only memory map of a whole file (an empty file maps to an empty buffer).
public final class MappedFile {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        try InputFile.requireRegular(path)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CoreError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw CoreError("cannot read \(path): it is a directory") }
        let size = Int(st.st_size)
        if size == 0 { base = nil; bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw CoreError("cannot map \(path): \(String(cString: strerror(errno)))") }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Tells the kernel the pages in `range` are no longer needed (they leave this process's RSS).
    public func release(_ range: Range<Int>) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (range.lowerBound / page) * page, hi = (range.upperBound / page) * page
        if hi > lo { madvise(base + lo, hi - lo, MADV_DONTNEED) }
    }

    public func adviseSequential() { if let base { madvise(base, bytes.count, MADV_SEQUENTIAL) } }

    deinit { if let base { munmap(base, bytes.count) } }
}

// Exact powers of ten representable as Double (10^0 … 10^22), for the exact fast path.
private let exactPowers: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                                     1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

/// A cursor over bytes [start, end) of a buffer: the pieces of a JSON parser, usable one at a time
/// by specialised scanners. All numbers are correctly rounded (same doubles as Python's `float`).
public struct JSONScanner {
    public let p: UnsafePointer<UInt8>?
    public var pos: Int
    public let end: Int

    public init(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) {
        p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        pos = start
        self.end = end
    }

    @inline(__always) public func peek() -> UInt8 { pos < end ? p![pos] : 0 }

    public func fail(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? pos, message: message)
    }

    public func describeByte() -> String {
        guard pos < end else { return "end of input" }
        let b = p![pos]
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return String(format: "byte 0x%02X", b)
    }

    @inline(__always) public mutating func skipSpace() {
        while pos < end {
            let b = p![pos]
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { pos += 1 } else { break }
        }
    }

    /// Consumes `c` (after optional whitespace) or throws "expected …".
    @inline(__always) public mutating func expect(_ c: UInt8, _ what: @autoclosure () -> String) throws {
        skipSpace()
        guard pos < end, p![pos] == c else { throw fail("expected \(what()), found \(describeByte())") }
        pos += 1
    }

    /// Consumes `c` if it is next (after whitespace) and returns true.
    @inline(__always) public mutating func consume(_ c: UInt8) -> Bool {
        skipSpace()
        if pos < end && p![pos] == c { pos += 1; return true }
        return false
    }

    public mutating func parseValue(depth: Int) throws -> JSONValue {
        if depth > 512 { throw fail("nesting deeper than 512 levels") }
        skipSpace()
        guard pos < end else { throw fail("expected a value, found end of input") }
        switch p![pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var members: [(key: String, value: JSONValue)] = []
            if consume(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key, found \(describeByte())") }
                let k = try parseString()
                try expect(UInt8(ascii: ":"), "':' after an object key")
                members.append((k, try parseValue(depth: depth + 1)))
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"), "',' or '}' in an object")
            return .object(members)
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            if consume(UInt8(ascii: "]")) { return .array(items) }
            repeat { items.append(try parseValue(depth: depth + 1)) } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"), "',' or ']' in an array")
            return .array(items)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            if let i = try integerLiteral("integer") { return .integer(i) }
            return .number(try parseNumber())
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let w = word.utf8Start
        guard pos + n <= end, (0..<n).allSatisfy({ p![pos + $0] == w[$0] }) else {
            throw fail("invalid literal (expected '\(word)')")
        }
        pos += n
    }

    /// Parses a JSON number. Exact fast path (Clinger): ≤ 19 significant digits with mantissa ≤ 2^53
    /// and |decimal exponent| ≤ 22 gives m·10^e or m/10^e, each one correctly rounded operation;
    /// anything else goes through `strtod` (correctly rounded in glibc).
    public mutating func parseNumber() throws -> Double {
        let start = pos
        var negative = false
        if peek() == UInt8(ascii: "-") { negative = true; pos += 1 }
        guard pos < end, p![pos] >= 48, p![pos] <= 57 else {
            if peek() == UInt8(ascii: "N") || peek() == UInt8(ascii: "I") {
                throw fail("NaN and Infinity are not valid JSON numbers", at: start)
            }
            throw fail(pos == start ? "expected a value, found \(describeByte())" : "expected a digit after '-'", at: pos)
        }
        var mantissa: UInt64 = 0, digits = 0, exp10 = 0
        if p![pos] == 48 {
            pos += 1
            if pos < end, p![pos] >= 48, p![pos] <= 57 { throw fail("leading zeros are not allowed in a number", at: start) }
        } else {
            while pos < end, case let d = p![pos] &- 48, d < 10 {
                if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(d); digits += 1 } else { exp10 += 1; digits += 1 }
                pos += 1
            }
        }
        if pos < end && p![pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < end, p![pos] >= 48, p![pos] <= 57 else { throw fail("expected a digit after '.'") }
            while pos < end, case let d = p![pos] &- 48, d < 10 {
                if digits < 19 {
                    if mantissa != 0 || d != 0 { digits += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(d); exp10 -= 1
                } else { digits += 1 }
                pos += 1
            }
        }
        if pos < end && (p![pos] | 0x20) == UInt8(ascii: "e") {
            pos += 1
            var eneg = false
            if pos < end && (p![pos] == UInt8(ascii: "+") || p![pos] == UInt8(ascii: "-")) { eneg = p![pos] == UInt8(ascii: "-"); pos += 1 }
            guard pos < end, p![pos] >= 48, p![pos] <= 57 else { throw fail("expected a digit in the exponent") }
            var e = 0
            while pos < end, case let d = p![pos] &- 48, d < 10 { if e < 100_000 { e = e * 10 + Int(d) }; pos += 1 }
            exp10 += eneg ? -e : e
        }
        if digits <= 19 && mantissa <= (1 << 53) && exp10 >= -22 && exp10 <= 22 {
            var x = Double(mantissa)
            x = exp10 < 0 ? x / exactPowers[-exp10] : x * exactPowers[exp10]
            return negative ? -x : x
        }
        // Slow path: a NUL-terminated copy of the token for strtod.
        let n = pos - start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf in
            for i in 0..<n { buf[i] = CChar(bitPattern: p![start + i]) }
            buf[n] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }

    /// Parses a JSON string (cursor on the opening quote), decoding escapes and surrogate pairs.
    public mutating func parseString() throws -> String {
        let open = pos
        pos += 1
        // Fast path: no escapes.
        var i = pos
        while i < end {
            let b = p![i]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(start: p! + pos, count: i - pos), as: UTF8.self)
                pos = i + 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            i += 1
        }
        var out = [UInt8]()
        while true {
            guard pos < end else { throw fail("unterminated string", at: open) }
            let b = p![pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw fail(String(format: "control character 0x%02X in a string (must be escaped)", b)) }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < end else { throw fail("unterminated string", at: open) }
            let e = p![pos]; pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard pos + 1 < end, p![pos] == UInt8(ascii: "\\"), p![pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate \\u\(String(scalar, radix: 16)) in a string")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail("invalid low surrogate in a string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw fail("unpaired surrogate \\u\(String(scalar, radix: 16)) in a string")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))' in a string", at: pos - 2)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= end else { throw fail("expected 4 hex digits after \\u") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = p![pos]
            let d: UInt32
            switch b {
            case 48...57: d = UInt32(b - 48)
            case 97...102: d = UInt32(b - 87)
            case 65...70: d = UInt32(b - 55)
            default: throw fail("expected 4 hex digits after \\u")
            }
            v = v * 16 + d; pos += 1
        }
        return v
    }

    /// Compares the key at the cursor (on its opening quote, no escapes) with `key` without allocating;
    /// on a match consumes it. Keys with escapes never match (callers then parse them in full).
    @inline(__always)
    public mutating func matchKey(_ key: UnsafeRawBufferPointer) -> Bool {
        let n = key.count
        guard pos + n + 2 <= end, p![pos + n + 1] == UInt8(ascii: "\"") else { return false }
        if n > 0 && memcmp(p! + pos + 1, key.baseAddress!, n) != 0 { return false }
        pos += n + 2
        return true
    }

    /// Returns the raw bytes of a string at the cursor (no escape decoding; nil if it has escapes).
    public mutating func rawString() throws -> Range<Int>? {
        let open = pos
        var i = pos + 1
        while i < end {
            let b = p![i]
            if b == UInt8(ascii: "\"") { pos = i + 1; return (open + 1)..<i }
            if b == UInt8(ascii: "\\") { return nil }
            if b < 0x20 { throw fail("control character in a string", at: i) }
            i += 1
        }
        throw fail("unterminated string", at: open)
    }

    /// Skips one value of any kind, validating it.
    public mutating func skipValue() throws { _ = try parseValueSkipping(depth: 0) }

    mutating func parseValueSkipping(depth: Int) throws -> Bool {
        skipSpace()
        switch peek() {
        case UInt8(ascii: "\""): if try rawString() == nil { _ = try parseString() }
        case UInt8(ascii: "-"), 48...57: _ = try parseNumber()
        default: _ = try parseValue(depth: depth)
        }
        return true
    }

    /// Reads an integer literal (`-`? digits, no fraction or exponent) exactly, digit by digit; returns
    /// nil, consuming nothing, when the token is not one (a float, or not a number at all). A literal
    /// outside Int64 is an error naming `what` and the digits — it never passes through Double.
    public mutating func integerLiteral(_ what: @autoclosure () -> String) throws -> Int64? {
        let at = pos
        var i = pos, neg = false
        if i < end && p![i] == UInt8(ascii: "-") { neg = true; i += 1 }
        let digitsStart = i
        var v: UInt64 = 0, overflow = false
        while i < end, case let d = p![i] &- 48, d < 10 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            v = s; overflow = overflow || o1 || o2
            i += 1
        }
        let next: UInt8 = i < end ? p![i] : 0
        guard i > digitsStart, next != UInt8(ascii: "."), (next | 0x20) != UInt8(ascii: "e"),
              !(p![digitsStart] == 48 && i - digitsStart > 1) else { return nil }
        if overflow || v > (neg ? UInt64(Int64.max) + 1 : UInt64(Int64.max)) {
            var text = String(decoding: UnsafeBufferPointer(start: p! + at, count: i - at), as: UTF8.self)
            if text.count > 40 { text = String(text.prefix(40)) + "… (\(i - digitsStart) digits)" }
            throw fail("\(what()) \(text) does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807)", at: at)
        }
        pos = i
        return neg ? Int64(truncatingIfNeeded: 0 &- v) : Int64(v)
    }

    /// Parses an integer value: an integer literal that fits in Int64, read exactly. A float
    /// (`1.5`, `12.0`, `1e3`) or any other value is an error naming `what` and the value found.
    public mutating func parseInteger(_ what: @autoclosure () -> String) throws -> Int64 {
        skipSpace()
        let at = pos
        if let i = try integerLiteral(what()) { return i }
        let b = peek()
        guard b == UInt8(ascii: "-") || (b >= 48 && b <= 57) else {
            throw fail("\(what()) must be an integer, found \(describeByte())", at: at)
        }
        _ = try parseNumber()   // a malformed number reports its own error
        let text = String(decoding: UnsafeBufferPointer(start: p! + at, count: min(pos - at, 40)), as: UTF8.self)
        throw fail("\(what()) must be an integer, found \(text)", at: at)
    }
}
