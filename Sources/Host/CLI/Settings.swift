// Parsing `--set key=value` into typed recipe arguments.
import Core

enum Settings {
    /// One `--set`: `key=value` with key `[A-Za-z_][A-Za-z0-9_.-]*`; the value is typed: integer,
    /// number (`0.5`, `1e-3`, `-2.`), `true`/`false`, else a string; a value in single or double
    /// quotes stays a string without its quotes.
    static func parse(_ s: String) throws -> (key: String, value: Any) {
        guard let eq = s.firstIndex(of: "=") else {
            throw CoreError("malformed --set '\(s)': expected key=value")
        }
        let key = String(s[..<eq]), raw = String(s[s.index(after: eq)...])
        guard let first = key.first, first == "_" || (first.isASCII && first.isLetter),
              key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
            throw CoreError("malformed --set '\(s)': the key must start with a letter or _ and contain only letters, digits, _ . -")
        }
        return (key, typed(raw))
    }

    /// `key=value` split without typing the value (for declared settings, typed by their declaration).
    static func parseRaw(_ s: String) throws -> (key: String, text: String) {
        let key = try parse(s).key
        return (key, String(s[s.index(after: s.firstIndex(of: "=")!)...]))
    }

    /// A value in matching single or double quotes without them; anything else as it is.
    static func unquoted(_ raw: String) -> String {
        if raw.count >= 2, let f = raw.first, f == raw.last, f == "\"" || f == "'" { return String(raw.dropFirst().dropLast()) }
        return raw
    }

    static func typed(_ raw: String) -> Any {
        if raw.count >= 2, let f = raw.first, f == raw.last, f == "\"" || f == "'" {
            return String(raw.dropFirst().dropLast())
        }
        if raw == "true" { return true }
        if raw == "false" { return false }
        if let i = Int(raw) { return i }
        if raw.contains(where: { $0.isNumber }), raw.allSatisfy({ "0123456789.eE+-".contains($0) }), let d = Double(raw) {
            return d
        }
        return raw
    }

    /// All `--set` values in order; a repeated key keeps the last value.
    static func parseAll(_ list: [String]) throws -> [(key: String, value: Any)] {
        var out: [(key: String, value: Any)] = []
        for s in list {
            let p = try parse(s)
            out.removeAll { $0.key == p.key }
            out.append(p)
        }
        return out
    }
}
