// Swift objects as Lua userdata: a full userdata holding one retained reference, a metatable per
// class with `__gc`, `__tostring`, `__index` (the class's methods) and `__name`, and explicit release.
import CLua
import CLuaShim
import Core

/// A Swift class that can be handed to Lua as a userdata.
///
///     extension Model: LuaObject {
///         public static let luaTypeName = "Model"
///         public static let luaMethods: [LuaFunction] = [LuaFunction("parameters", model_parameters)]
///     }
///
/// Every object also gets `obj:release()` (drop Swift's reference now; later use fails with
/// `cannot use Model after it has been released`) and `obj:alive()` unless it defines its own.
public protocol LuaObject: AnyObject {
    /// The name Lua sees in errors and `tostring` (`Model`).
    static var luaTypeName: String { get }
    /// Methods, called as `obj:name(...)`; write them with `lua_method`.
    static var luaMethods: [LuaFunction] { get }
    /// What `tostring(obj)` shows; defaults to `Model: 0x…`.
    var luaDescription: String { get }
}

extension LuaObject {
    public static var luaMethods: [LuaFunction] { [] }
    public var luaDescription: String {
        "\(Self.luaTypeName): \(Unmanaged.passUnretained(self).toOpaque())"
    }
}

/// What the userdata at an index holds.
enum LuaObjectState {
    case notSwift
    case released(String)
    case alive(AnyObject)
}

/// Marks metatables made by `pushObject`, so other userdata are never mistaken for Swift objects.
private let objectMarker = "__semidpo_object"

typealias ObjectBox = UnsafeMutablePointer<UnsafeMutableRawPointer?>

extension LuaStack {
    /// Pushes `object` as a new userdata holding a retained reference (released by `__gc` or
    /// `release()`). The class's metatable is created on first use.
    public static func pushObject(_ L: OpaquePointer, _ object: LuaObject) {
        let box = lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer?>.size, 0)!
            .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        box.pointee = Unmanaged<AnyObject>.passRetained(object).toOpaque()
        // stack: …, ud
        pushMetatable(L, type(of: object))
        // stack: …, ud, mt
        lua_setmetatable(L, -2)
        // stack: …, ud
    }

    static func pushMetatable(_ L: OpaquePointer, _ type: LuaObject.Type) {
        let key = "semidpo.object." + type.luaTypeName
        guard luaL_newmetatable(L, key) != 0 else { return }
        // stack: …, mt (new; luaL_newmetatable set __name = key, replaced below)
        pushString(L, type.luaTypeName)
        lua_setfield(L, -2, "__name")
        lua_pushboolean(L, 1)
        lua_setfield(L, -2, objectMarker)
        lua_pushswiftfunction(L, objectGC)
        lua_setfield(L, -2, "__gc")
        lua_pushswiftfunction(L, objectToString)
        lua_setfield(L, -2, "__tostring")
        lua_createtable(L, 0, Int32(type.luaMethods.count + 2))
        // stack: …, mt, methods
        lua_pushswiftfunction(L, objectRelease)
        lua_setfield(L, -2, "release")
        lua_pushswiftfunction(L, objectAlive)
        lua_setfield(L, -2, "alive")
        for m in type.luaMethods {
            lua_pushswiftfunction(L, m.function)
            lua_setfield(L, -2, m.name)
        }
        lua_setfield(L, -2, "__index")
        // stack: …, mt
    }

    /// The box of a Swift-object userdata at `index`, and its class name; nil for anything else.
    static func objectBox(_ L: OpaquePointer, _ index: Int32) -> (ObjectBox, String)? {
        guard lua_type(L, index) == LUA_TUSERDATA, let raw = lua_touserdata(L, index) else { return nil }
        guard lua_getmetatable(L, index) != 0 else { return nil }
        // stack: …, mt
        lua_pushstring(L, objectMarker)
        lua_rawget(L, -2)
        let isObject = lua_toboolean(L, -1) != 0
        shim_pop(L, 1)
        lua_pushstring(L, "__name")
        lua_rawget(L, -2)
        let name = lua_type(L, -1) == LUA_TSTRING ? string(L, -1) : "userdata"
        shim_pop(L, 2)
        // stack: …
        return isObject ? (raw.assumingMemoryBound(to: UnsafeMutableRawPointer?.self), name) : nil
    }

    static func objectState(_ L: OpaquePointer, _ index: Int32) -> LuaObjectState {
        guard let (box, name) = objectBox(L, index) else { return .notSwift }
        guard let p = box.pointee else { return .released(name) }
        return .alive(Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue())
    }

    /// The live Swift object at `index`, or nil.
    static func objectIfSwift(_ L: OpaquePointer, _ index: Int32) -> AnyObject? {
        if case .alive(let o) = objectState(L, index) { return o }
        return nil
    }
}

/// `__gc`: drops the Swift reference (runs for every userdata, at the latest at `lua_close`).
private func objectGC(_ L: OpaquePointer?) -> Int32 {
    guard let L, let (box, _) = LuaStack.objectBox(L, 1), let p = box.pointee else { return 0 }
    box.pointee = nil
    Unmanaged<AnyObject>.fromOpaque(p).release()
    return 0
}

private func objectToString(_ L: OpaquePointer?) -> Int32 {
    let L = L!
    switch LuaStack.objectState(L, 1) {
    case .alive(let o): LuaStack.pushString(L, (o as? LuaObject)?.luaDescription ?? "\(o)")
    case .released(let name): LuaStack.pushString(L, "\(name) (released)")
    case .notSwift: LuaStack.pushString(L, "userdata")
    }
    return 1
}

private func objectRelease(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "release") { args in
        guard let (box, _) = LuaStack.objectBox(args.L, 1) else { throw args.typeError(1, "object") }
        if let p = box.pointee {
            box.pointee = nil
            Unmanaged<AnyObject>.fromOpaque(p).release()
        }
        return 0
    }
}

private func objectAlive(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "alive") { args in
        guard let (box, _) = LuaStack.objectBox(args.L, 1) else { throw args.typeError(1, "object") }
        lua_pushboolean(args.L, box.pointee != nil ? 1 : 0)
        return 1
    }
}
