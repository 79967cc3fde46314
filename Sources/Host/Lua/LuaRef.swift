// Registry references to Lua values held by Swift (callbacks, tables): released in `deinit`, and
// callable through `pcall` with a traceback handler.
import CLua
import CLuaShim

/// A Lua value (usually a callback function) kept alive in the registry while this object lives.
/// Store it in the Swift object that uses the callback; `deinit` unrefs it (Redis, Neovim).
public final class LuaRef {
    public private(set) weak var state: LuaState?
    public let ref: Int32

    /// References the value at `index` of `L` (a thread of `state`).
    public init(_ state: LuaState, _ L: OpaquePointer, _ index: Int32) {
        self.state = state
        lua_pushvalue(L, index)
        // stack: …, value
        ref = luaL_ref(L, shim_registryindex())
        // stack: …
    }

    deinit {
        if let state, state.isOpen { luaL_unref(state.L, shim_registryindex(), ref) }
    }

    /// Pushes the referenced value onto `L` (nil if the state has been closed).
    public func push(_ L: OpaquePointer) {
        guard let state, state.isOpen else { lua_pushnil(L); return }
        lua_rawgeti(L, shim_registryindex(), lua_Integer(ref))
    }

    /// Calls the referenced function with Swift arguments and returns its results converted to
    /// Swift. A Lua error comes back as a thrown `LuaError` with file, line and traceback.
    /// Pass `L` when calling from inside a bound function (it may be running in a coroutine).
    @discardableResult
    public func call(_ arguments: [Any?] = [], results: Int32 = 1, on L: OpaquePointer? = nil) throws -> [Any?] {
        guard let state, state.isOpen else { throw LuaError(kind: .runtime, message: "callback used after its Lua state was closed") }
        let L = L ?? state.L
        let base = lua_gettop(L)
        guard lua_checkstack(L, Int32(clamping: arguments.count + 1)) != 0 else {
            throw LuaError(kind: .runtime, message: "Lua stack overflow: \(arguments.count) arguments for one callback")
        }
        push(L)
        for a in arguments {
            do { try LuaStack.push(L, a) } catch { lua_settop(L, base); throw error }
        }
        // stack: base…, f, args…
        try state.pcall(L, nargs: Int32(arguments.count), nresults: results)
        // stack: base…, results…
        defer { lua_settop(L, base) }
        var out: [Any?] = []
        let top = lua_gettop(L)
        if top > base {
            for i in (base + 1)...top { out.append(try LuaStack.value(L, i, path: "result \(i - base)")) }
        }
        return out
    }
}
