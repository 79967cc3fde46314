// semidpo.settings: a recipe declares its settings once (defaults give the types); `--set` values are
// checked against the declaration (unknown key → "did you mean", wrong type → the key and the value).
import CLua
import CLuaShim
import Core
import Foundation

enum SettingsBindings: LuaBindings {
    static let module: String? = nil
    static let functions: [LuaFunction] = [
        LuaFunction("settings", settings_declare),
        LuaFunction("optional", settings_optional),
    ]
}

/// What a recipe run gives the settings binding: the raw `--set` pairs and whether to stop after the
/// declaration (`semidpo run RECIPE --help-settings`). Kept on the `LuaState`.
public final class CommandSettings {
    /// `--set key=value` as typed on the command line (value text unparsed), last value per key.
    public var raw: [(key: String, text: String)]
    /// `--help-settings`: list the declaration and stop the recipe there.
    public var helpOnly: Bool
    /// Set once `semidpo.settings` ran: the declared keys and the resolved values.
    public internal(set) var declared: [SettingDeclaration]?
    public internal(set) var resolved: [String: Any]?
    /// Where the declaration was (`recipe.lua:12`), for the second-call error.
    var declaredAt = ""
    /// The listing `--help-settings` printed (tests read it).
    public internal(set) var helpText: String?

    public init(raw: [(key: String, text: String)] = [], helpOnly: Bool = false) {
        self.raw = raw
        self.helpOnly = helpOnly
    }

    /// Keys every recipe accepts without declaring them: `cache` (the stage cache root, read by `semidpo.stage`).
    public static let builtIn: Set<String> = ["cache"]

    /// `--set` keys outside `builtIn`.
    public var userKeys: [String] { raw.map(\.key).filter { !CommandSettings.builtIn.contains($0) } }

    /// The `--set` text of a built-in key.
    public func builtIn(_ key: String) -> String? { raw.last { $0.key == key }.map { Settings.unquoted($0.text) } }
}

/// Thrown by `semidpo.settings` under `--help-settings` once the listing is printed: the runner
/// ends the run with status 0.
public struct HelpSettingsStop: Error, CustomStringConvertible {
    public var description: String { "stopped after listing the settings (--help-settings)" }
}

/// One declared setting (dotted key for nested tables).
public struct SettingDeclaration {
    public enum Kind: Equatable {
        case integer, number, boolean, string, any
        indirect case list(Kind)
        var name: String {
            switch self {
            case .integer: return "integer"
            case .number: return "number"
            case .boolean: return "boolean"
            case .string: return "string"
            case .any: return "any"
            case .list(let e): return "list of \(e == .any ? "values" : e.name + "s")"
            }
        }
    }
    public var key: String
    public var kind: Kind
    /// nil: optional without a default (`semidpo.optional(type)`, or `~` in YAML).
    public var value: Any?
}

private let optionalMarker = "semidpo.optional"

/// `semidpo.optional(type) -> marker`: declares a setting without a default (nil unless `--set`);
/// `type` is "integer", "number", "boolean", "string", "list" or "any".
private func settings_optional(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "optional") { args in
        let t = try args.optional(1, args.string) ?? "any"
        guard ["integer", "number", "boolean", "string", "list", "any"].contains(t) else {
            throw args.error(1, "unknown type '\(t)'; expected integer, number, boolean, string, list or any")
        }
        try args.push([optionalMarker: t])
        return 1
    }
}

/// `semidpo.settings(defaults) -> settings`: `defaults` is a table (nested tables are groups, set as
/// `--set group.key=value`) or the path of a YAML file of the same shape. Each default's type is the
/// setting's type; `semidpo.optional(type)` (YAML: `~`) declares one without a default. `--set` values
/// are converted to the declared types; an undeclared key or a value of the wrong type fails here,
/// before the recipe does any work. The result is the merged table; reading an undeclared key from it
/// fails too (`unknown setting 'stpes' (did you mean 'steps'?)`). Called at most once per run.
private func settings_declare(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "settings") { args in
        let lua = try args.lua
        guard let command = lua.commandSettings else {
            throw CoreError("semidpo.settings needs a recipe run (semidpo run)")
        }
        if command.declared != nil {
            throw CoreError("semidpo.settings was already called (\(command.declaredAt)); declare every setting in one call")
        }
        let defaults: Any
        let source: String
        if lua_type(args.L, 1) == LUA_TSTRING {
            let path = try args.string(1)
            guard FileManager.default.fileExists(atPath: path) else { throw args.error(1, "settings file '\(path)' not found") }
            defaults = try settingsValue(YAML.load(path: path), path: path)
            source = path
        } else if lua_type(args.L, 1) == LUA_TTABLE {
            defaults = try args.value(1) as Any
            source = "the recipe"
        } else {
            throw args.typeError(1, "table of defaults or YAML file path")
        }
        var declared: [SettingDeclaration] = []
        do { try declare(defaults, prefix: "", into: &declared) } catch let e as CoreError { throw args.error(1, e.message) }
        declared.sort { $0.key < $1.key }
        luaL_where(args.L, 1)
        command.declaredAt = LuaStack.string(args.L, -1).trimmingCharacters(in: CharacterSet(charactersIn: ": "))
        shim_pop(args.L, 1)

        if command.helpOnly {
            let text = helpListing(declared, source: source)
            command.helpText = text
            print(text, terminator: "")
            fflush(stdout)
            throw HelpSettingsStop()
        }
        var values: [String: Any] = [:]
        for d in declared { if let v = d.value { values[d.key] = v } }
        for (key, text) in command.raw {
            guard let d = declared.first(where: { $0.key == key }) else {
                if CommandSettings.builtIn.contains(key) { continue }
                throw CoreError(unknownSettingMessage(key, declared.map(\.key)))
            }
            values[key] = try convertSetting(text, d)
        }
        command.declared = declared
        command.resolved = values
        try pushSettings(args.L, values, declared: declared.map(\.key))
        return 1
    }
}

/// A YAML document as the Lua-side value would be (maps → [String: Any], `~` → an optional marker).
private func settingsValue(_ y: YAMLValue, path: String) throws -> Any {
    switch y {
    case .null: return [optionalMarker: "any"]
    case .bool(let b): return b
    case .int(let i): return i
    case .float(let d): return d
    case .string(let s): return s
    case .seq(let a): return try a.map { try settingsValue($0, path: path) }
    case .map(let m):
        var d: [String: Any] = [:]
        for (k, v) in m { d[k] = try settingsValue(v, path: path) }
        return d
    }
}

private func kindOf(_ v: Any, key: String) throws -> SettingDeclaration.Kind {
    switch v {
    case is Bool: return .boolean
    case is Int: return .integer
    case is Double: return .number
    case is String: return .string
    case let a as [Any]:
        if a.isEmpty { return .list(.any) }
        let kinds = try a.map { try kindOf($0, key: key) }
        if kinds.allSatisfy({ $0 == .string }) { return .list(.string) }
        if kinds.allSatisfy({ $0 == .integer }) { return .list(.integer) }
        if kinds.allSatisfy({ $0 == .integer || $0 == .number }) { return .list(.number) }
        if kinds.allSatisfy({ $0 == .boolean }) { return .list(.boolean) }
        throw CoreError("setting '\(key)': a list default must hold only strings, only numbers or only booleans")
    default:
        throw CoreError("setting '\(key)': a default must be a number, string, boolean, list, table or semidpo.optional(type), got \(LuaOptions.luaTypeName(of: v))")
    }
}

private func declare(_ v: Any, prefix: String, into out: inout [SettingDeclaration]) throws {
    let table: [String: Any]
    switch v {
    case let d as [String: Any]: table = d
    case let a as [Any] where a.isEmpty: table = [:]
    default: throw CoreError("expected a table of settings, got \(LuaOptions.luaTypeName(of: v))")
    }
    for (k, value) in table {
        let key = prefix + k
        guard let first = k.first, first == "_" || (first.isASCII && first.isLetter),
              k.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw CoreError("setting name '\(key)' must start with a letter or _ and hold letters, digits, _ or -")
        }
        if let d = value as? [String: Any] {
            if d.count == 1, let t = d[optionalMarker] as? String {
                let kind: SettingDeclaration.Kind = t == "list" ? .list(.any) : t == "integer" ? .integer : t == "number" ? .number
                    : t == "boolean" ? .boolean : t == "string" ? .string : .any
                out.append(SettingDeclaration(key: key, kind: kind, value: nil))
            } else {
                try declare(d, prefix: key + ".", into: &out)
            }
            continue
        }
        out.append(SettingDeclaration(key: key, kind: try kindOf(value, key: key), value: value))
    }
}

/// A `--set` text converted to the declared kind, or an error naming the key and the value.
func convertSetting(_ text: String, _ d: SettingDeclaration) throws -> Any {
    func fail() -> CoreError {
        CoreError("setting '\(d.key)' expects \(d.kind == .integer ? "an" : "a") \(d.kind.name), got '\(text)'")
    }
    func one(_ raw: String, _ kind: SettingDeclaration.Kind) throws -> Any {
        let s = raw.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .string: return Settings.unquoted(raw)
        case .any: return Settings.typed(s)
        case .boolean:
            if s == "true" { return true }
            if s == "false" { return false }
            throw fail()
        case .integer:
            if let i = Int(s) { return i }
            if let x = Settings.typed(s) as? Double, x.rounded() == x, abs(x) < 9e15 { return Int(x) }
            throw fail()
        case .number:
            switch Settings.typed(s) {
            case let i as Int: return Double(i)
            case let x as Double: return x
            default: throw fail()
            }
        case .list(let e):
            if s.isEmpty { return [Any]() }
            return try s.split(separator: ",", omittingEmptySubsequences: false).map { try one(String($0), e) }
        }
    }
    return try one(text, d.kind)
}

/// `unknown setting 'stpes' (did you mean 'steps'?)`, or the known keys when nothing is close; a
/// group name (`guard`) lists its members.
func unknownSettingMessage(_ key: String, _ known: [String]) -> String {
    let members = known.filter { $0.hasPrefix(key + ".") }
    if !members.isEmpty {
        return "setting '\(key)' is a group: set \(members.joined(separator: ", "))"
    }
    if known.isEmpty {
        return "unknown setting '\(key)' (the recipe declares no settings)"
    }
    var best = "", bestDistance = Int.max
    for k in known.sorted() {
        let d: Int = editDistance(key, k)
        if d < bestDistance { best = k; bestDistance = d }
    }
    if bestDistance <= max(2, key.count / 3) {
        return "unknown setting '\(key)' (did you mean '\(best)'?)"
    }
    return "unknown setting '\(key)' (known: \(known.joined(separator: ", ")))"
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1 (`stpes` → `steps` is 1).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in 0...x.count { d[i][0] = i }
    for j in 0...y.count { d[0][j] = j }
    for i in 1...x.count {
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[x.count][y.count]
}

private func display(_ v: Any?) -> String {
    switch v {
    case nil: return "(unset)"
    case let s as String: return s.isEmpty ? "\"\"" : s
    case let a as [Any]: return a.map { display($0) }.joined(separator: ",")
    case let d as Double: return "\(d)"
    case let v?: return "\(v)"
    }
}

private func helpListing(_ declared: [SettingDeclaration], source: String) -> String {
    var s = "Settings declared by \(source) (override with --set KEY=VALUE; lists as comma-separated values):\n"
    let w = max(4, declared.map(\.key.count).max() ?? 0), tw = max(4, declared.map(\.kind.name.count).max() ?? 0)
    func pad(_ t: String, _ n: Int) -> String { t + String(repeating: " ", count: max(0, n - t.count)) }
    s += "  " + pad("key", w) + "  " + pad("type", tw) + "  default\n"
    for d in declared { s += "  " + pad(d.key, w) + "  " + pad(d.kind.name, tw) + "  " + display(d.value) + "\n" }
    s += "Always accepted: cache (string) — the root directory of semidpo.stage's cache (default cache/).\n"
    return s
}

/// Pushes the merged settings as nested tables (dotted keys → groups); each table gets a metatable
/// whose `__index` fails on an undeclared key.
private func pushSettings(_ L: OpaquePointer, _ values: [String: Any], declared: [String]) throws {
    func build(prefix: String) throws {
        let direct = Set(declared.compactMap { k -> String? in
            guard k.hasPrefix(prefix) else { return nil }
            return String(k.dropFirst(prefix.count).split(separator: ".", maxSplits: 1)[0])
        })
        lua_createtable(L, 0, Int32(direct.count))
        // stack: …, t
        for name in direct.sorted() {
            let full = prefix + name
            if declared.contains(full) {
                guard let v = values[full] else { continue }
                try LuaStack.push(L, v)
            } else {
                try build(prefix: full + ".")
            }
            // stack: …, t, value
            lua_setfield(L, -2, name)
        }
        // stack: …, t
        lua_createtable(L, 0, 3)
        // stack: …, t, mt
        lua_createtable(L, 0, Int32(direct.count))
        for name in direct { lua_pushboolean(L, 1); lua_setfield(L, -2, name) }
        lua_setfield(L, -2, "__declared")
        lua_pushstring(L, prefix)
        lua_setfield(L, -2, "__prefix")
        lua_pushstring(L, declared.joined(separator: "\n"))
        lua_setfield(L, -2, "__all")
        lua_pushswiftfunction(L, settings_index)
        lua_setfield(L, -2, "__index")
        lua_setmetatable(L, -2)
        // stack: …, t
    }
    try build(prefix: "")
}

/// `__index` of a settings table: nil for a declared key without a value, an error otherwise.
private func settings_index(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "settings") { args in
        let L = args.L
        guard lua_type(L, 2) == LUA_TSTRING else { lua_pushnil(L); return 1 }
        let key = LuaStack.string(L, 2)
        guard lua_getmetatable(L, 1) != 0 else { lua_pushnil(L); return 1 }
        // stack: t, key, mt
        lua_getfield(L, -1, "__declared")
        lua_getfield(L, -1, key)
        let known = lua_toboolean(L, -1) != 0
        shim_pop(L, 2)
        if known { shim_pop(L, 1); lua_pushnil(L); return 1 }
        lua_getfield(L, -1, "__prefix")
        let prefix = LuaStack.string(L, -1)
        lua_getfield(L, -2, "__all")
        let all = LuaStack.string(L, -1).split(separator: "\n").map(String.init)
        shim_pop(L, 3)
        // stack: t, key
        throw CoreError(unknownSettingMessage(prefix + key, all))
    }
}
