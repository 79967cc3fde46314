// Keys of cached recipe stages (`semidpo.stage`): a canonical text of a stage's name, settings and
// inputs, and its SHA-256. Equal keys mean equal work, so a finished stage can be loaded, not rerun.
import Foundation

public enum StageKey {
    /// Bump when the canonical form changes, so old cache entries are not mistaken for new ones.
    public static let format = 1

    /// Canonical JSON-like text of a plain value: map keys sorted (by UTF-8 bytes), no spaces,
    /// strings JSON-quoted, integral numbers as integers (`1` and `1.0` are the same number),
    /// other numbers in Swift's shortest round-trip form (`2e-05`), booleans `true`/`false`.
    /// Strings and numbers never collide (`"1"` vs `1`). Functions and objects are errors.
    public static func canonical(_ value: Any?, path: String = "settings") throws -> String {
        var out: [UInt8] = []
        try append(value, path: path, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ value: Any?, path: String, to out: inout [UInt8]) throws {
        switch value {
        case nil: out += Array("null".utf8)
        case let b as Bool: out += Array((b ? "true" : "false").utf8)
        case let i as Int: JSON.appendInt(Int64(i), to: &out)
        case let d as Double:
            guard d.isFinite else { throw CoreError("\(path): \(d) cannot be part of a stage key (not finite)") }
            JSON.appendNumber(d == 0 ? 0 : d, to: &out)   // -0.0 and 0 are the same setting
        case let s as String: JSON.appendString(s, to: &out)
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                try append(v, path: "\(path)[\(i + 1)]", to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let m as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (i, k) in m.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.appendString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                try append(m[k], path: "\(path).\(k)", to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let v?:
            throw CoreError("\(path): a \(type(of: v)) cannot be part of a stage key (use strings, numbers, booleans and tables)")
        }
    }

    /// The text a stage key hashes: `{"format":1,"inputs":{…},"name":"…","settings":…}`, where each
    /// input is already resolved to a string (`sha256:<hex>` of a file, `stage:<key>` of an upstream stage).
    public static func material(name: String, settings: Any?, inputs: [String: Any]) throws -> String {
        try canonical(["format": format, "name": name, "settings": settings as Any, "inputs": inputs] as [String: Any], path: "stage")
    }

    /// SHA-256 (hex) of `material(name:settings:inputs:)`.
    public static func key(name: String, settings: Any?, inputs: [String: Any]) throws -> String {
        SHA256.hex(Array(try material(name: name, settings: settings, inputs: inputs).utf8))
    }

    /// `sha256:<hex>` of a file's bytes; for a directory, of the sorted list of its files' relative
    /// paths and digests (`path\tsha256\n` lines), so renaming or changing any file changes it.
    public static func fingerprint(path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CoreError("stage input \(path) does not exist")
        }
        if !isDir.boolValue { return "sha256:" + (try SHA256.hex(fileAt: path)) }
        guard let walker = FileManager.default.enumerator(atPath: path) else { throw CoreError("cannot list stage input \(path)") }
        var lines: [String] = []
        for case let rel as String in walker {
            var sub: ObjCBool = false
            let full = path + "/" + rel
            if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue {
                lines.append(rel + "\t" + (try SHA256.hex(fileAt: full)))
            }
        }
        lines.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return "sha256:" + SHA256.hex(Array(lines.map { $0 + "\n" }.joined().utf8))
    }
}
