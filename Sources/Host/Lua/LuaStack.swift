// Moving values between the Lua stack and Swift: `LuaStack.push` for Swift values (nested arrays
// and dictionaries become tables) and `LuaStack.value` for the reverse. Only raw table access is
// used, so no metamethod can raise a Lua error while a Swift frame is live.
import CLua
import CLuaShim
import Core

/// A Swift type that knows how to push itself onto the Lua stack (one value).
/// Host may add conformances for Core types.
public protocol LuaPushable {
    func push(to L: OpaquePointer) throws
}

public enum LuaStack {
    /// Lua's type name for the value at `index`, using a userdata's `__name` (e.g. `Model`).
    public static func typeName(_ L: OpaquePointer, _ index: Int32) -> String {
        let t = lua_type(L, index)
        if t == LUA_TUSERDATA, lua_getmetatable(L, index) != 0 {
            // stack: …, mt
            lua_pushstring(L, "__name")
            lua_rawget(L, -2)
            // stack: …, mt, name
            let name = lua_type(L, -1) == LUA_TSTRING ? String(cString: shim_tostring(L, -1)) : nil
            shim_pop(L, 2)
            // stack: …
            if let name { return name }
        }
        return String(cString: lua_typename(L, t))
    }

    /// Pushes a Swift value: nil/Optional.none → nil; Bool; integers → Lua integers; Float/Double →
    /// numbers; String; `[Float]`, `[Double]`, `[Int]`, `[Any]` → sequences; `[String: Any]` →
    /// tables; `YAMLValue`; `LuaObject` → userdata; `LuaRef` → the referenced value;
    /// `LuaPushable` → its own push. Throws for anything else.
    public static func push(_ L: OpaquePointer, _ value: Any?, depth: Int = 0) throws {
        guard depth < 64 else { throw CoreError("cannot convert a Swift value to Lua: nesting deeper than 64") }
        // A C function may only assume LUA_MINSTACK free slots; nested tables need 3 per level.
        guard lua_checkstack(L, 4) != 0 else { throw CoreError("cannot convert a Swift value to Lua: Lua stack overflow") }
        guard let value else { lua_pushnil(L); return }
        switch value {
        case let v as Bool: lua_pushboolean(L, v ? 1 : 0)
        case let v as Int: lua_pushinteger(L, lua_Integer(v))
        case let v as Int32: lua_pushinteger(L, lua_Integer(v))
        case let v as Int64: lua_pushinteger(L, lua_Integer(v))
        case let v as UInt32: lua_pushinteger(L, lua_Integer(v))
        case let v as UInt8: lua_pushinteger(L, lua_Integer(v))
        case let v as UInt64:
            guard v <= UInt64(Int64.max) else { throw CoreError("cannot convert \(v) to a Lua integer (too large)") }
            lua_pushinteger(L, lua_Integer(v))
        case let v as Double: lua_pushnumber(L, v)
        case let v as Float: lua_pushnumber(L, Double(v))
        case let v as String: pushString(L, v)
        case let v as Substring: pushString(L, String(v))
        case let v as [Float]: pushArray(L, v) { lua_pushnumber(L, Double($0)) }
        case let v as [Double]: pushArray(L, v) { lua_pushnumber(L, $0) }
        case let v as [Int]: pushArray(L, v) { lua_pushinteger(L, lua_Integer($0)) }
        case let v as [String]: pushArray(L, v) { pushString(L, $0) }
        case let v as YAMLValue: try pushYAML(L, v, depth: depth)
        case let v as LuaObject: pushObject(L, v)
        case let v as LuaRef: v.push(L)
        case let v as LuaPushable: try v.push(to: L)
        case let v as [Any?]:
            lua_createtable(L, Int32(clamping: v.count), 0)
            for (i, e) in v.enumerated() {
                try push(L, e, depth: depth + 1)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
        case let v as [Any]:
            lua_createtable(L, Int32(clamping: v.count), 0)
            for (i, e) in v.enumerated() {
                try push(L, e, depth: depth + 1)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
        case let v as [String: Any?]:
            lua_createtable(L, 0, Int32(clamping: v.count))
            for (k, e) in v {
                pushString(L, k)
                try push(L, e, depth: depth + 1)
                lua_rawset(L, -3)
            }
        case let v as [String: Any]:
            lua_createtable(L, 0, Int32(clamping: v.count))
            for (k, e) in v {
                pushString(L, k)
                try push(L, e, depth: depth + 1)
                lua_rawset(L, -3)
            }
        default:
            // Optional values boxed inside Any (e.g. an Int? stored in [String: Any]).
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                if let child = mirror.children.first { try push(L, child.value, depth: depth + 1) } else { lua_pushnil(L) }
                return
            }
            throw CoreError("cannot convert a Swift value of type \(type(of: value)) to Lua")
        }
    }

    static func pushString(_ L: OpaquePointer, _ s: String) {
        var s = s
        s.withUTF8 { buf in
            _ = buf.withMemoryRebound(to: CChar.self) { lua_pushlstring(L, $0.baseAddress, buf.count) }
        }
    }

    static func pushArray<T>(_ L: OpaquePointer, _ a: [T], _ pushOne: (T) -> Void) {
        lua_createtable(L, Int32(clamping: a.count), 0)
        for (i, e) in a.enumerated() {
            pushOne(e)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
    }

    /// Pushes a YAML value as nested tables. Each collection level first makes room on the Lua stack
    /// (its table, a key, the value being pushed); nesting deeper than `YAML.maxDepth` (which the
    /// parser never produces) is an error rather than a C stack overflow.
    static func pushYAML(_ L: OpaquePointer, _ v: YAMLValue, depth: Int) throws {
        switch v {
        case .seq, .map:
            guard depth < YAML.maxDepth else { throw CoreError("cannot convert a YAML value to Lua: nesting deeper than \(YAML.maxDepth)") }
            guard lua_checkstack(L, 3) != 0 else { throw CoreError("cannot convert a YAML value to Lua: Lua stack overflow") }
        default: break
        }
        switch v {
        case .null: lua_pushnil(L)
        case .bool(let b): lua_pushboolean(L, b ? 1 : 0)
        case .int(let i): lua_pushinteger(L, lua_Integer(i))
        case .float(let d): lua_pushnumber(L, d)
        case .string(let s): pushString(L, s)
        case .seq(let items):
            lua_createtable(L, Int32(clamping: items.count), 0)
            // A null element would leave a hole; it is kept as the sequence's length only up to it.
            for (i, e) in items.enumerated() {
                try pushYAML(L, e, depth: depth + 1)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
        case .map(let pairs):
            lua_createtable(L, 0, Int32(clamping: pairs.count))
            for (k, e) in pairs {
                pushString(L, k)
                try pushYAML(L, e, depth: depth + 1)
                lua_rawset(L, -3)
            }
        }
    }

    /// Converts the Lua value at `index` to Swift: nil → nil, boolean → Bool, integer → Int,
    /// float → Double, string → String, sequence (keys 1…n, n ≥ 1, or an empty table) → [Any],
    /// other tables → [String: Any] (keys must be strings or integers; integers become strings),
    /// Swift userdata → the object, function → LuaRef. Throws with `path` naming the element.
    public static func value(_ L: OpaquePointer, _ index: Int32, path: String = "value", depth: Int = 0) throws -> Any? {
        let index = lua_absindex(L, index)
        switch lua_type(L, index) {
        case LUA_TNIL, LUA_TNONE: return nil
        case LUA_TBOOLEAN: return lua_toboolean(L, index) != 0
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 { return Int(lua_tointegerx(L, index, nil)) }
            return lua_tonumberx(L, index, nil)
        case LUA_TSTRING: return string(L, index)
        case LUA_TTABLE: return try table(L, index, path: path, depth: depth)
        case LUA_TUSERDATA:
            if let obj = objectIfSwift(L, index) { return obj }
            throw CoreError("\(path): cannot convert a \(typeName(L, index)) to a Swift value")
        case LUA_TFUNCTION:
            guard let state = LuaState.from(L) else { throw CoreError("\(path): no semidpo host") }
            return LuaRef(state, L, index)
        default:
            throw CoreError("\(path): cannot convert a \(typeName(L, index)) to a Swift value")
        }
    }

    /// The string at `index` (which must be a string; numbers are not converted in place).
    static func string(_ L: OpaquePointer, _ index: Int32) -> String {
        var len = 0
        guard let p = lua_tolstring(L, index, &len) else { return "" }
        return p.withMemoryRebound(to: UInt8.self, capacity: len) {
            String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
        }
    }

    static func table(_ L: OpaquePointer, _ index: Int32, path: String, depth: Int) throws -> Any {
        guard depth < 64 else { throw CoreError("\(path): table nesting deeper than 64 (a cycle?)") }
        guard lua_checkstack(L, 4) != 0 else { throw CoreError("\(path): Lua stack overflow") }
        let n = Int(lua_rawlen(L, index))
        var count = 0
        var allSequence = true
        lua_pushnil(L)
        // stack: …, nil (first key)
        while lua_next(L, index) != 0 {
            // stack: …, key, value
            count += 1
            if lua_type(L, -2) == LUA_TNUMBER, lua_isinteger(L, -2) != 0 {
                let k = Int(lua_tointegerx(L, -2, nil))
                if k < 1 || k > n { allSequence = false }
            } else {
                allSequence = false
            }
            shim_pop(L, 1)
            // stack: …, key
        }
        // stack: …
        if allSequence && count == n {
            var out: [Any] = []
            out.reserveCapacity(n)
            for i in 1...max(n, 1) where n > 0 {
                lua_rawgeti(L, index, lua_Integer(i))
                // stack: …, t[i]
                defer { shim_pop(L, 1) }
                guard let v = try value(L, -1, path: "\(path)[\(i)]", depth: depth + 1) else {
                    throw CoreError("\(path)[\(i)] is nil")
                }
                out.append(v)
            }
            return out
        }
        var out: [String: Any] = [:]
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            // stack: …, key, value
            let key: String
            switch lua_type(L, -2) {
            case LUA_TSTRING: key = string(L, -2)
            case LUA_TNUMBER where lua_isinteger(L, -2) != 0: key = String(lua_tointegerx(L, -2, nil))
            default:
                let tn = typeName(L, -2)
                shim_pop(L, 2)
                throw CoreError("\(path) has a \(tn) key; only string and integer keys convert to Swift")
            }
            do {
                out[key] = try value(L, -1, path: "\(path).\(key)", depth: depth + 1)
            } catch {
                shim_pop(L, 2)
                throw error
            }
            shim_pop(L, 1)
            // stack: …, key
        }
        // stack: …
        return out
    }

    /// Converts any Lua value to a `YAMLValue` (tables as in `value`; map keys sorted so output
    /// is deterministic).
    public static func yamlValue(_ L: OpaquePointer, _ index: Int32, path: String = "value") throws -> YAMLValue {
        try YAMLValue(any: value(L, index, path: path), path: path)
    }
}
