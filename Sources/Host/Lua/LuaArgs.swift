// Checked access to a bound function's arguments: each getter converts one argument or throws
// `bad argument #N to 'name' (expected T, got U)`, and `push` returns results.
import CLua
import CLuaShim
import Core

/// The arguments of one call to a bound function, handed to the body of `lua_wrap`/`lua_method`.
/// Argument indices are 1-based stack indices; for methods, index 1 is `self` and error messages
/// number the remaining arguments from 1, as Lua does.
public struct LuaArgs {
    public let L: OpaquePointer
    /// The Lua-facing name used in error messages (`'train'`).
    public let name: String
    public let isMethod: Bool

    public init(_ L: OpaquePointer, name: String, isMethod: Bool = false) {
        self.L = L
        self.name = name
        self.isMethod = isMethod
    }

    /// How many arguments were passed (including `self` for methods).
    public var count: Int32 { lua_gettop(L) }

    /// The host owning this Lua state (its run context, references, …).
    public var lua: LuaState {
        get throws {
            guard let s = LuaState.from(L) else { throw CoreError("'\(name)' called outside a semidpo Lua state") }
            return s
        }
    }

    /// The current run (output directory, recorded outputs).
    public var run: RunContext { get throws { try lua.run } }

    // MARK: errors

    /// An error about argument `index`, formatted like `luaL_argerror`.
    public func error(_ index: Int32, _ detail: String) -> LuaArgumentError {
        if isMethod {
            if index == 1 { return LuaArgumentError("calling '\(name)' on bad self (\(detail))") }
            return LuaArgumentError("bad argument #\(index - 1) to '\(name)' (\(detail))")
        }
        return LuaArgumentError("bad argument #\(index) to '\(name)' (\(detail))")
    }

    /// `expected <expected>, got <actual type>`.
    public func typeError(_ index: Int32, _ expected: String) -> LuaArgumentError {
        let got = index > count ? "no value" : LuaStack.typeName(L, index)
        return error(index, "expected \(expected), got \(got)")
    }

    // MARK: scalars

    public func isNoneOrNil(_ index: Int32) -> Bool { shim_isnoneornil(L, index) != 0 }

    /// A number (integer or float).
    public func number(_ index: Int32) throws -> Double {
        guard lua_type(L, index) == LUA_TNUMBER else { throw typeError(index, "number") }
        return lua_tonumberx(L, index, nil)
    }

    public func float(_ index: Int32) throws -> Float { Float(try number(index)) }

    /// An integer; a float with an integral value is accepted (Lua's rule), `2.5` is not.
    public func integer(_ index: Int32) throws -> Int {
        guard lua_type(L, index) == LUA_TNUMBER else { throw typeError(index, "integer") }
        var ok: Int32 = 0
        let v = lua_tointegerx(L, index, &ok)
        guard ok != 0 else { throw error(index, "number has no integer representation") }
        return Int(v)
    }

    /// A string (numbers are not accepted: recipes say what they mean).
    public func string(_ index: Int32) throws -> String {
        guard lua_type(L, index) == LUA_TSTRING else { throw typeError(index, "string") }
        return LuaStack.string(L, index)
    }

    public func boolean(_ index: Int32) throws -> Bool {
        guard lua_type(L, index) == LUA_TBOOLEAN else { throw typeError(index, "boolean") }
        return lua_toboolean(L, index) != 0
    }

    /// `nil` when the argument is absent or nil, otherwise `get(index)`:
    /// `let steps = try args.optional(3, args.integer) ?? 100`.
    public func optional<T>(_ index: Int32, _ get: (Int32) throws -> T) throws -> T? {
        isNoneOrNil(index) ? nil : try get(index)
    }

    // MARK: tables

    private func requireTable(_ index: Int32, _ expected: String) throws {
        guard lua_type(L, index) == LUA_TTABLE else { throw typeError(index, expected) }
    }

    /// Any Lua value converted with `LuaStack.value` (tables become `[Any]` or `[String: Any]`).
    public func value(_ index: Int32) throws -> Any? {
        do { return try LuaStack.value(L, index, path: "value") } catch let e as CoreError { throw error(index, e.message) }
    }

    /// A sequence table as `[Any]` (an empty table is an empty array).
    public func array(_ index: Int32) throws -> [Any] {
        try requireTable(index, "table")
        let v: Any?
        do { v = try LuaStack.value(L, index, path: "table") } catch let e as CoreError { throw error(index, e.message) }
        if let a = v as? [Any] { return a }
        throw error(index, "expected a sequence (keys 1..n), got a table with other keys")
    }

    /// A table as `[String: Any]` (an empty table is an empty dictionary).
    public func dictionary(_ index: Int32) throws -> [String: Any] {
        try requireTable(index, "table")
        let v: Any?
        do { v = try LuaStack.value(L, index, path: "table") } catch let e as CoreError { throw error(index, e.message) }
        if let d = v as? [String: Any] { return d }
        if let a = v as? [Any], a.isEmpty { return [:] }
        throw error(index, "expected a table with named fields, got a sequence")
    }

    /// A sequence of numbers as `[Double]`.
    public func numbers(_ index: Int32) throws -> [Double] {
        try typedArray(index, "numbers", LUA_TNUMBER) { lua_tonumberx(L, -1, nil) }
    }

    /// A sequence of numbers as `[Float]`.
    public func floats(_ index: Int32) throws -> [Float] {
        try typedArray(index, "numbers", LUA_TNUMBER) { Float(lua_tonumberx(L, -1, nil)) }
    }

    /// A sequence of integers as `[Int]`.
    public func integers(_ index: Int32) throws -> [Int] {
        try typedArray(index, "integers", LUA_TNUMBER) {
            var ok: Int32 = 0
            let v = lua_tointegerx(L, -1, &ok)
            return ok != 0 ? Int(v) : nil
        }
    }

    /// A sequence of strings as `[String]`.
    public func strings(_ index: Int32) throws -> [String] {
        try typedArray(index, "strings", LUA_TSTRING) { LuaStack.string(L, -1) }
    }

    private func typedArray<T>(_ index: Int32, _ what: String, _ luaType: Int32, _ get: () -> T?) throws -> [T] {
        try requireTable(index, "array of \(what)")
        let index = lua_absindex(L, index)
        let n = Int(lua_rawlen(L, index))
        var out: [T] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            lua_rawgeti(L, index, lua_Integer(i + 1))
            // stack: …, t[i+1]
            let t = lua_type(L, -1)
            let v = t == luaType ? get() : nil
            if v == nil {
                let got = t == luaType ? "a non-integer number" : LuaStack.typeName(L, -1)
                shim_pop(L, 1)
                throw error(index, "expected array of \(what), element \(i + 1) is \(got)")
            }
            shim_pop(L, 1)
            // stack: …
            out.append(v!)
        }
        return out
    }

    /// A table of named options, checked against `allowed` keys (`unknown option 'bta'`).
    public func options(_ index: Int32, allowed: [String]? = nil) throws -> LuaOptions {
        if isNoneOrNil(index) { return LuaOptions(values: [:], args: self, index: index) }
        let d = try dictionary(index)
        if let allowed {
            for k in d.keys.sorted() where !allowed.contains(k) {
                if let new = renamedOptions[k], allowed.contains(new) { throw error(index, "option '\(k)' was renamed to '\(new)'") }
                throw error(index, "unknown option '\(k)'; expected one of: \(allowed.joined(separator: ", "))")
            }
        }
        return LuaOptions(values: d, args: self, index: index)
    }

    // MARK: objects and functions

    /// The Swift object in the userdata at `index`, which must be a live `T`
    /// (`bad argument #2 to 'train' (expected Model, got nil)`;
    /// `cannot use Model after it has been released`).
    public func object<T>(_ index: Int32, _ type: T.Type) throws -> T {
        let expected = (T.self as? LuaObject.Type)?.luaTypeName ?? String(describing: T.self)
        switch LuaStack.objectState(L, index) {
        case .notSwift: throw typeError(index, expected)
        case .released(let typeName):
            if typeName == expected { throw CoreError("cannot use \(typeName) after it has been released") }
            throw typeError(index, expected)
        case .alive(let obj):
            guard let t = obj as? T else { throw typeError(index, expected) }
            return t
        }
    }

    /// `self` of a method (argument 1).
    public func this<T>(_ type: T.Type) throws -> T { try object(1, type) }

    /// A Lua function, held in the registry for as long as the returned reference lives.
    public func function(_ index: Int32) throws -> LuaRef {
        guard lua_type(L, index) == LUA_TFUNCTION else { throw typeError(index, "function") }
        return LuaRef(try lua, L, index)
    }

    // MARK: results

    /// Pushes one result (see `LuaStack.push` for the conversions).
    public func push(_ value: Any?) throws { try LuaStack.push(L, value) }
}

/// Named options from a Lua table (`{beta = 2500, steps = 100}`), with typed, defaulted getters
/// whose errors name the option: `bad argument #2 to 'train' (option 'beta': expected number, got string)`.
public struct LuaOptions {
    public let values: [String: Any]
    let args: LuaArgs
    let index: Int32

    public func has(_ key: String) -> Bool { values[key] != nil }

    /// Unwraps a getter's result for an option that must be present:
    /// `try o.required("dir", o.string("dir"))` → `bad argument #1 to 'dataset' (option 'dir' is required)`.
    public func required<T>(_ key: String, _ value: T?) throws -> T {
        guard let v = value else { throw args.error(index, "option '\(key)' is required") }
        return v
    }

    private func get<T>(_ key: String, _ expected: String, _ convert: (Any) -> T?) throws -> T? {
        guard let v = values[key] else { return nil }
        guard let t = convert(v) else {
            throw args.error(index, "option '\(key)': expected \(expected), got \(LuaOptions.luaTypeName(of: v))")
        }
        return t
    }

    static func luaTypeName(of v: Any) -> String {
        switch v {
        case is Bool: return "boolean"
        case is Int, is Double: return "number"
        case is String: return "string"
        case is [Any], is [String: Any]: return "table"
        case is LuaRef: return "function"
        case let o as LuaObject: return type(of: o).luaTypeName
        default: return "userdata"
        }
    }

    public func number(_ key: String) throws -> Double? {
        try get(key, "number") { ($0 as? Double) ?? ($0 as? Int).map(Double.init) }
    }
    public func number(_ key: String, default d: Double) throws -> Double { try number(key) ?? d }
    public func integer(_ key: String) throws -> Int? {
        try get(key, "integer") { v in
            if let i = v as? Int { return i }
            if let d = v as? Double, d.rounded() == d, abs(d) < 9.0e18 { return Int(d) }
            return nil
        }
    }
    public func integer(_ key: String, default d: Int) throws -> Int { try integer(key) ?? d }
    public func string(_ key: String) throws -> String? { try get(key, "string") { $0 as? String } }
    public func string(_ key: String, default d: String) throws -> String { try string(key) ?? d }
    public func boolean(_ key: String) throws -> Bool? { try get(key, "boolean") { $0 as? Bool } }
    public func boolean(_ key: String, default d: Bool) throws -> Bool { try boolean(key) ?? d }
    public func numbers(_ key: String) throws -> [Double]? {
        try get(key, "array of numbers") { v in
            guard let a = v as? [Any] else { return nil }
            var out: [Double] = []
            for e in a {
                if let d = e as? Double { out.append(d) } else if let i = e as? Int { out.append(Double(i)) } else { return nil }
            }
            return out
        }
    }
    public func strings(_ key: String) throws -> [String]? {
        try get(key, "array of strings") { v in
            guard let a = v as? [Any] else { return nil }
            let s = a.compactMap { $0 as? String }
            return s.count == a.count ? s : nil
        }
    }
    public func function(_ key: String) throws -> LuaRef? { try get(key, "function") { $0 as? LuaRef } }
    public func object<T>(_ key: String, _ type: T.Type) throws -> T? {
        let expected = (T.self as? LuaObject.Type)?.luaTypeName ?? String(describing: T.self)
        return try get(key, expected) { $0 as? T }
    }
}
