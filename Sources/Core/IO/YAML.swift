// YAML configs and manifests on libyaml: decode to `YAMLValue` (YAML 1.1 core scalars typed,
// errors with file:line:column) and dump a `YAMLValue` to block-style YAML text.
import CYAML
import Foundation

/// A decoded YAML document. Maps keep their order; keys are strings (scalar keys as written).
public enum YAMLValue: Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case seq([YAMLValue])
    case map([(key: String, value: YAMLValue)])

    public static func == (a: YAMLValue, b: YAMLValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.float(x), .float(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.string(x), .string(y)): return x == y
        case let (.seq(x), .seq(y)): return x == y
        case let (.map(x), .map(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The value for `key` in a map (nil for a missing key or a non-map).
    public subscript(key: String) -> YAMLValue? {
        if case .map(let pairs) = self { return pairs.first(where: { $0.key == key })?.value }
        return nil
    }

    /// The `i`-th element of a sequence.
    public subscript(i: Int) -> YAMLValue? {
        if case .seq(let items) = self, items.indices.contains(i) { return items[i] }
        return nil
    }

    public var intValue: Int? { if case .int(let i) = self { return i }; return nil }
    /// Floats, and ints widened to Double.
    public var doubleValue: Double? {
        switch self { case .float(let d): return d; case .int(let i): return Double(i); default: return nil }
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }

    /// The value as YAML text (`YAML.dump`).
    public var description: String { YAML.dump(self) }

    /// Converts a Swift value: nil → null, Bool, integers, Float/Double, String, arrays → seq,
    /// `[String: Any]` → map with sorted keys, `YAMLValue` as is. `path` names the offending element.
    public init(any value: Any?, path: String = "value") throws {
        guard let value else { self = .null; return }
        switch value {
        case let v as YAMLValue: self = v
        case let v as Bool: self = .bool(v)
        case let v as Int: self = .int(v)
        case let v as Int32: self = .int(Int(v))
        case let v as Int64: self = .int(Int(v))
        case let v as UInt32: self = .int(Int(v))
        case let v as Double: self = .float(v)
        case let v as Float: self = .float(Double(v))
        case let v as String: self = .string(v)
        case let v as Substring: self = .string(String(v))
        case let v as [Any?]: self = .seq(try v.enumerated().map { try YAMLValue(any: $1, path: "\(path)[\($0 + 1)]") })
        case let v as [Any]: self = .seq(try v.enumerated().map { try YAMLValue(any: $1, path: "\(path)[\($0 + 1)]") })
        case let v as [String: Any?]:
            self = .map(try v.keys.sorted().map { ($0, try YAMLValue(any: v[$0]!, path: "\(path).\($0)")) })
        case let v as [String: Any]:
            self = .map(try v.keys.sorted().map { ($0, try YAMLValue(any: v[$0], path: "\(path).\($0)")) })
        default:
            let m = Mirror(reflecting: value)
            if m.displayStyle == .optional {
                try self.init(any: m.children.first?.value, path: path)
                return
            }
            throw CoreError("\(path): cannot represent a value of type \(type(of: value)) in YAML")
        }
    }
}

public enum YAML {
    /// Collections may nest this many levels (the top-level collection is level 1); deeper input is
    /// an error, not a stack overflow in the parser or in the Lua bridge.
    public static let maxDepth = 256
    /// Nodes that aliases may add to a document, counted as the size of each aliased subtree every
    /// time it is referenced. Bounds "billion laughs" documents (a few hundred bytes that expand
    /// to 10^9 nodes); a config that legitimately reuses anchors stays far below it.
    public static let maxAliasNodes = 1_000_000

    /// Parses the first document of `text`; an empty document is `.null`. `file` names the source
    /// in error messages (`config.yaml:3:7: mapping values are not allowed in this context`).
    public static func decode(_ text: String, file: String = "<string>") throws -> YAMLValue {
        try Parser(file: file).parse(Array(text.utf8))
    }

    /// Parses raw bytes, which must be UTF-8 (`file:line:column: invalid UTF-8 (byte 0xFF)` otherwise).
    public static func decode(bytes: [UInt8], file: String = "<string>") throws -> YAMLValue {
        try Parser(file: file).parse(bytes)
    }

    /// Reads and parses a YAML file.
    public static func load(path: String) throws -> YAMLValue {
        try InputFile.requireRegular(path, what: "YAML file")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoreError("cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file")")
        }
        return try Parser(file: path).parse(Array(data))
    }

    /// Block-style YAML for `value`, ending in a newline. Strings are quoted when they would
    /// otherwise read back as another type; `decode(dump(v)) == v` for maps with unique keys.
    public static func dump(_ value: YAMLValue) -> String {
        var lines: [String] = []
        emit(value, indent: 0, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: scalars (YAML 1.1 core schema)

    /// The typed value of a plain (unquoted, untagged) scalar.
    public static func resolvePlain(_ s: String) -> YAMLValue {
        // Every non-string form starts with one of these bytes; most keys and words do not, and
        // skip the comparisons below (a map of 200,000 keys spent most of its time here).
        guard let first = s.utf8.first else { return .null }
        switch first {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "~"),
             UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"),
             UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "o"), UInt8(ascii: "O"):
            break
        default:
            return .string(s)
        }
        switch s {
        case "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return .bool(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if let i = parseInt(s) { return .int(i) }
        if let d = parseFloat(s) { return .float(d) }
        return .string(s)
    }

    /// YAML 1.1 integers: an optional sign, then decimal, `0x` hex, `0b` binary, `0o` or leading-zero
    /// octal digits, `_` separators allowed. Nil for anything else or a value outside Int.
    static func parseInt(_ s: String) -> Int? {
        var u = Substring(s).utf8[...]
        var negative = false
        if let f = u.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { negative = f == UInt8(ascii: "-"); u = u.dropFirst() }
        guard let first = u.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
        var digits: [UInt8] = []
        digits.reserveCapacity(u.count)
        for b in u where b != UInt8(ascii: "_") {
            // One sign only: Int(_:radix:) would also read the one in `0x-8000000000000000`, and
            // negating that Int.min traps.
            if b == UInt8(ascii: "-") || b == UInt8(ascii: "+") { return nil }
            digits.append(b)
        }
        var radix = 10, start = 0
        if digits.count > 1 && digits[0] == UInt8(ascii: "0") {
            switch digits[1] {
            case UInt8(ascii: "x"): radix = 16; start = 2
            case UInt8(ascii: "b"): radix = 2; start = 2
            case UInt8(ascii: "o"): radix = 8; start = 2
            default: radix = 8; start = 1
            }
        }
        guard let m = Int(String(decoding: digits[start...], as: UTF8.self), radix: radix) else { return nil }
        return negative ? -m : m
    }

    /// Digits with a '.' or an exponent (1.5, -2., .5, 1e-3, 6.02e+23); '_' separators allowed.
    static func parseFloat(_ s: String) -> Double? {
        var clean: [UInt8] = []
        var sawDigit = false, sawMark = false
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): sawMark = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"): break
            case UInt8(ascii: "_"): continue
            default: return nil
            }
            clean.append(b)
        }
        guard sawDigit, sawMark else { return nil }
        return Double(String(decoding: clean, as: UTF8.self))
    }

    // MARK: dumping

    static func isCollection(_ v: YAMLValue) -> Bool {
        switch v {
        case .seq(let a): return !a.isEmpty
        case .map(let m): return !m.isEmpty
        default: return false
        }
    }

    static func emit(_ v: YAMLValue, indent: Int, into lines: inout [String]) {
        let pad = String(repeating: " ", count: indent)
        switch v {
        case .map(let pairs) where !pairs.isEmpty:
            for (k, child) in pairs {
                let key = scalarText(.string(k))
                if key.unicodeScalars.count > 1000 {
                    // libyaml reads an implicit key only up to 1024 characters: write an explicit
                    // `? key` / `: value` pair (found by fuzz/run.sh yaml).
                    lines.append("\(pad)? \(key)")
                    if isCollection(child) {
                        lines.append("\(pad):")
                        emit(child, indent: indent + 2, into: &lines)
                    } else {
                        lines.append("\(pad): \(scalarText(child))")
                    }
                } else if isCollection(child) {
                    lines.append("\(pad)\(key):")
                    emit(child, indent: indent + 2, into: &lines)
                } else {
                    lines.append("\(pad)\(key): \(scalarText(child))")
                }
            }
        case .seq(let items) where !items.isEmpty:
            for child in items {
                if isCollection(child) {
                    var sub: [String] = []
                    emit(child, indent: indent + 2, into: &sub)
                    // Drop the padding by scalars: a combining mark that starts a key joins the
                    // space before it into one Character (found by fuzz/run.sh yaml).
                    sub[0] = pad + "- " + String(sub[0].unicodeScalars.dropFirst(indent + 2))
                    lines.append(contentsOf: sub)
                } else {
                    lines.append("\(pad)- \(scalarText(child))")
                }
            }
        default:
            lines.append(pad + scalarText(v))
        }
    }

    /// One scalar (or empty collection) as YAML text.
    public static func scalarText(_ v: YAMLValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let d):
            if d.isNaN { return ".nan" }
            if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
            return "\(d)"  // Swift always writes a '.' or an exponent
        case .string(let s): return needsQuotes(s) ? quoted(s) : s
        case .seq: return "[]"
        case .map: return "{}"
        }
    }

    static func needsQuotes(_ s: String) -> Bool {
        if resolvePlain(s) != .string(s) { return true }
        guard let first = s.first, let last = s.last else { return true }
        if first == " " || last == " " || last == ":" { return true }
        if "-?:,[]{}#&*!|>'\"%@`".contains(first) { return true }
        if s.contains(": ") || s.contains(" #") || s == "<<" { return true }  // "<<" plain is a merge key
        if s.hasPrefix("...") { return true }                                  // a document end marker
        return s.unicodeScalars.contains { $0.value < 0x20 || mustEscape($0) }
    }

    /// Characters that cannot appear raw in YAML text (YAML 1.1 "printable" excludes them) or that
    /// libyaml reads as line breaks or a byte-order mark inside a scalar.
    static func mustEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09, 0x0A, 0x0D, 0x20...0x7E: return false
        case 0x85, 0x2028, 0x2029, 0xFEFF: return true
        case 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return false
        default: return true
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value <= 0xFF && mustEscape(u) { out += String(format: "\\x%02X", u.value) }
                else if mustEscape(u) { out += String(format: "\\u%04X", u.value) }
                else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    // MARK: parsing

    static let tagPrefix = "tag:yaml.org,2002:"

    /// A tag as written: `!!python/object` for YAML's own prefix, other tags as they are.
    static func displayTag(_ tag: String) -> String {
        tag.hasPrefix(tagPrefix) ? "!!" + tag.dropFirst(tagPrefix.count) : tag
    }

    /// The offset of the first byte that does not continue valid UTF-8, or nil.
    static func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var it = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let s): offset += s.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// An event-driven recursive descent over libyaml's parser, bounded in depth (`maxDepth`) and
    /// in alias expansion (`maxAliasNodes`).
    final class Parser {
        let file: String
        var parser = yaml_parser_t()
        var anchors: [String: Built] = [:]
        /// Nodes added so far by aliases (each reference counts its target's nodes).
        var aliasNodes = 0

        /// A value with its size: `nodes` counts every node of the expanded tree, `height` the
        /// collection levels it spans (0 for a scalar).
        struct Built {
            var value: YAMLValue
            var nodes: Int
            var height: Int
        }

        init(file: String) { self.file = file }

        func parse(_ bytes: [UInt8]) throws -> YAMLValue {
            return try bytes.withUnsafeBufferPointer { buf in
                if let bad = YAML.firstInvalidUTF8(buf) {
                    // Lines from 1, columns in characters from 1 (as libyaml counts them).
                    var line = 1, column = 1
                    for b in buf[..<bad] {
                        if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
                    }
                    let byte = String(format: "0x%02X", buf[bad])
                    throw CoreError("\(file):\(line):\(column): invalid UTF-8 (byte \(byte)); YAML text must be UTF-8")
                }
                guard yaml_parser_initialize(&parser) != 0 else { throw CoreError("\(file): cannot initialise the YAML parser") }
                defer { yaml_parser_delete(&parser) }
                yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
                var result = YAMLValue.null
                var sawDocument = false
                loop: while true {
                    var ev = try next()
                    switch ev.type {
                    case YAML_STREAM_END_EVENT:
                        yaml_event_delete(&ev)
                        break loop
                    case YAML_DOCUMENT_START_EVENT:
                        yaml_event_delete(&ev)
                        if sawDocument { break loop }  // only the first document
                        sawDocument = true
                        var body = try next()
                        result = try value(&body, depth: 0).value
                    default:
                        yaml_event_delete(&ev)
                    }
                }
                return result
            }
        }

        func next() throws -> yaml_event_t {
            var ev = yaml_event_t()
            guard yaml_parser_parse(&parser, &ev) != 0 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
                let m = parser.problem_mark
                var msg = "\(file):\(m.line + 1):\(m.column + 1): \(problem)"
                if let ctx = parser.context {
                    msg += " (\(String(cString: ctx)) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
                }
                throw CoreError(msg)
            }
            return ev
        }

        func position(_ ev: yaml_event_t) -> String {
            "\(file):\(ev.start_mark.line + 1):\(ev.start_mark.column + 1)"
        }

        static func text(_ p: UnsafeMutablePointer<yaml_char_t>?, _ n: Int) -> String {
            guard let p else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        }

        static func cstr(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            p.map { String(cString: $0) }
        }

        /// Throws unless a collection's tag is absent, the non-specific `!`, or its own core tag.
        func checkCollectionTag(_ tag: String?, core: String, kind: String, at ev: yaml_event_t) throws {
            guard let tag, tag != "!", tag != YAML.tagPrefix + core else { return }
            throw CoreError("\(position(ev)): unsupported tag '\(YAML.displayTag(tag))' on a \(kind)")
        }

        /// Builds the value that starts with `ev` (consumes `ev` and the events of its children).
        /// `depth` is the number of collections enclosing it.
        func value(_ ev: inout yaml_event_t, depth: Int) throws -> Built {
            defer { yaml_event_delete(&ev) }
            switch ev.type {
            case YAML_ALIAS_EVENT:
                let name = Parser.cstr(ev.data.alias.anchor) ?? ""
                guard let v = anchors[name] else { throw CoreError("\(position(ev)): unknown alias '*\(name)'") }
                guard depth + v.height <= YAML.maxDepth else {
                    throw CoreError("\(position(ev)): alias '*\(name)' nests the document deeper than \(YAML.maxDepth) levels")
                }
                aliasNodes += v.nodes
                guard aliasNodes <= YAML.maxAliasNodes else {
                    throw CoreError("\(position(ev)): aliases expand the document past \(YAML.maxAliasNodes) nodes (at '*\(name)')")
                }
                return v
            case YAML_SCALAR_EVENT:
                let s = ev.data.scalar
                let raw = Parser.text(s.value, s.length)
                let v = Built(value: try scalar(raw, tag: Parser.cstr(s.tag), plain: s.style == YAML_PLAIN_SCALAR_STYLE, at: ev),
                              nodes: 1, height: 0)
                if let a = Parser.cstr(s.anchor) { anchors[a] = v }
                return v
            case YAML_SEQUENCE_START_EVENT:
                guard depth < YAML.maxDepth else { throw CoreError("\(position(ev)): nesting deeper than \(YAML.maxDepth) levels") }
                try checkCollectionTag(Parser.cstr(ev.data.sequence_start.tag), core: "seq", kind: "sequence", at: ev)
                let anchor = Parser.cstr(ev.data.sequence_start.anchor)
                var items: [YAMLValue] = []
                var nodes = 1, height = 1
                while true {
                    var child = try next()
                    if child.type == YAML_SEQUENCE_END_EVENT { yaml_event_delete(&child); break }
                    let c = try value(&child, depth: depth + 1)
                    items.append(c.value)
                    nodes += c.nodes
                    height = max(height, c.height + 1)
                }
                let v = Built(value: .seq(items), nodes: nodes, height: height)
                if let anchor { anchors[anchor] = v }
                return v
            case YAML_MAPPING_START_EVENT:
                guard depth < YAML.maxDepth else { throw CoreError("\(position(ev)): nesting deeper than \(YAML.maxDepth) levels") }
                try checkCollectionTag(Parser.cstr(ev.data.mapping_start.tag), core: "map", kind: "mapping", at: ev)
                let anchor = Parser.cstr(ev.data.mapping_start.anchor)
                var pairs: [(key: String, value: YAMLValue)] = []
                var keys = Set<String>()           // keys of `pairs`: duplicate checks in O(1)
                var merged: [(key: String, value: YAMLValue)] = []
                var mergedKeys = Set<String>()
                var nodes = 1, height = 1
                while true {
                    var keyEvent = try next()
                    if keyEvent.type == YAML_MAPPING_END_EVENT { yaml_event_delete(&keyEvent); break }
                    let keyPos = position(keyEvent)
                    guard keyEvent.type == YAML_SCALAR_EVENT || keyEvent.type == YAML_ALIAS_EVENT else {
                        yaml_event_delete(&keyEvent)
                        throw CoreError("\(keyPos): only scalar mapping keys are supported")
                    }
                    let isMerge = keyEvent.type == YAML_SCALAR_EVENT && keyEvent.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                        && Parser.text(keyEvent.data.scalar.value, keyEvent.data.scalar.length) == "<<"
                    // Scalar keys stay as written (`yes:` is the key "yes", not true).
                    let rawKey = keyEvent.type == YAML_SCALAR_EVENT
                        ? Parser.text(keyEvent.data.scalar.value, keyEvent.data.scalar.length) : nil
                    let keyValue = try value(&keyEvent, depth: depth + 1).value
                    var valueEvent = try next()
                    let child = try value(&valueEvent, depth: depth + 1)
                    nodes += 1 + child.nodes
                    height = max(height, child.height + 1)
                    if isMerge {
                        // YAML 1.1 merge key: `<<: *defaults` or `<<: [*a, *b]`.
                        let sources: [YAMLValue]
                        if case .seq(let s) = child.value { sources = s } else { sources = [child.value] }
                        for src in sources {
                            guard case .map(let m) = src else { throw CoreError("\(keyPos): '<<' must merge a mapping") }
                            for p in m where mergedKeys.insert(p.key).inserted { merged.append(p) }
                        }
                        continue
                    }
                    let key: String
                    switch keyValue {
                    case _ where rawKey != nil: key = rawKey!
                    case .string(let s): key = s
                    case .int(let i): key = String(i)
                    case .float, .bool, .null: key = YAML.scalarText(keyValue)
                    default: throw CoreError("\(keyPos): only scalar mapping keys are supported")
                    }
                    guard keys.insert(key).inserted else { throw CoreError("\(keyPos): duplicate key '\(key)'") }
                    pairs.append((key, child.value))
                }
                for p in merged where !keys.contains(p.key) { pairs.append(p) }
                let v = Built(value: .map(pairs), nodes: nodes, height: height)
                if let anchor { anchors[anchor] = v }
                return v
            default:
                throw CoreError("\(position(ev)): unexpected YAML event \(ev.type.rawValue)")
            }
        }

        func scalar(_ raw: String, tag: String?, plain: Bool, at ev: yaml_event_t) throws -> YAMLValue {
            let prefix = YAML.tagPrefix
            guard let tag, tag != "!" else { return plain ? YAML.resolvePlain(raw) : .string(raw) }
            let bad = { CoreError("\(self.position(ev)): '\(raw)' is not a valid \(YAML.displayTag(tag))") }
            switch tag {
            case prefix + "str": return .string(raw)
            case prefix + "null": return .null
            case prefix + "int": guard let i = YAML.parseInt(raw) else { throw bad() }; return .int(i)
            case prefix + "float":
                let v = YAML.resolvePlain(raw)
                if case .float = v { return v }
                if case .int(let i) = v { return .float(Double(i)) }
                throw bad()
            case prefix + "bool":
                guard case .bool = YAML.resolvePlain(raw) else { throw bad() }
                return YAML.resolvePlain(raw)
            default:
                throw CoreError("\(position(ev)): unsupported tag '\(YAML.displayTag(tag))' on a scalar")
            }
        }
    }
}
