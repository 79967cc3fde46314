// The Lua state a recipe runs in: standard libraries, the `semidpo` module (global and
// `require "semidpo"`), binding registration, protected calls, and the undefined-globals guard.
import CLua
import CLuaShim
import Core

/// Owns one `lua_State`. Create it, register bindings (`LuaState()` registers `Bindings.all`),
/// set fields, call `guardGlobals()`, then `runFile`. Closing (explicitly or in `deinit`) runs
/// `__gc` for every userdata.
public final class LuaState {
    /// The main thread's state.
    public let L: OpaquePointer
    /// The run this state belongs to (output directory, recorded outputs).
    public var run: RunContext
    public private(set) var isOpen = true
    /// The recipe run's `--set` values for `semidpo.settings` (nil outside `semidpo run`).
    public var commandSettings: CommandSettings?
    /// Lua functions the bindings compiled once per state (by name), e.g. the stage-code walker.
    var helpers: [String: LuaRef] = [:]

    /// The helper `name`, compiled from `source` (a chunk returning a function) on first use.
    func helper(_ name: String, _ source: String) throws -> LuaRef {
        if let h = helpers[name] { return h }
        guard let f = try runString(source, name: "=" + name).first as? LuaRef else {
            throw CoreError("helper \(name) did not compile to a function")
        }
        helpers[name] = f
        return f
    }

    private static let hostKey = "semidpo.host"

    /// A state with the standard libraries and an empty `semidpo` table, then `bindings` registered.
    public init(run: RunContext = RunContext(), bindings: [LuaBindings.Type] = Bindings.all) {
        guard let L = luaL_newstate() else { fatalError("Lua: out of memory creating a state") }
        self.L = L
        self.run = run
        luaL_openlibs(L)
        // The host, for bound functions: LuaState.from(L).
        lua_pushlightuserdata(L, Unmanaged.passUnretained(self).toOpaque())
        lua_setfield(L, shim_registryindex(), LuaState.hostKey)
        // semidpo = {} as a global and as package.loaded.semidpo, so `require "semidpo"` works.
        lua_createtable(L, 0, 16)
        // stack: semidpo
        lua_pushvalue(L, -1)
        lua_setglobal(L, "semidpo")
        luaL_getsubtable(L, shim_registryindex(), LUA_LOADED_TABLE)
        // stack: semidpo, package.loaded
        lua_pushvalue(L, -2)
        lua_setfield(L, -2, "semidpo")
        shim_pop(L, 2)
        // stack: (empty)
        for b in bindings { b.register(self) }
    }

    deinit { close() }

    /// Closes the state: every userdata's `__gc` runs and its Swift object is released.
    public func close() {
        guard isOpen else { return }
        lua_close(L)
        isOpen = false
    }

    /// The `LuaState` that owns `L` (or any of its coroutines).
    public static func from(_ L: OpaquePointer) -> LuaState? {
        lua_getfield(L, shim_registryindex(), hostKey)
        // stack: …, host
        let p = lua_touserdata(L, -1)
        shim_pop(L, 1)
        // stack: …
        return p.map { Unmanaged<LuaState>.fromOpaque($0).takeUnretainedValue() }
    }

    // MARK: registration

    /// Pushes `semidpo` or `semidpo.<module>` (created when missing; `module` may be dotted).
    public func pushModule(_ module: String?) {
        luaL_getsubtable(L, shim_registryindex(), LUA_LOADED_TABLE)
        lua_getfield(L, -1, "semidpo")
        shim_remove(L, -2)
        // stack: semidpo
        for part in (module ?? "").split(separator: ".") {
            luaL_getsubtable(L, -1, String(part))
            shim_remove(L, -2)
        }
        // stack: semidpo[.module]
    }

    /// Sets `functions` as fields of `semidpo` (module nil) or `semidpo.<module>`.
    public func register(module: String?, _ functions: [LuaFunction]) {
        pushModule(module)
        for f in functions {
            lua_pushswiftfunction(L, f.function)
            lua_setfield(L, -2, f.name)
        }
        shim_pop(L, 1)
        // stack: (unchanged)
    }

    /// Sets `semidpo[.module].name = value` (any value `LuaStack.push` accepts).
    public func setField(module: String? = nil, _ name: String, _ value: Any?) throws {
        pushModule(module)
        // stack: mod
        do { try LuaStack.push(L, value) } catch { shim_pop(L, 1); throw error }
        // stack: mod, value
        lua_setfield(L, -2, name)
        shim_pop(L, 1)
    }

    /// Reads `semidpo[.module].name` as a Swift value.
    public func field(module: String? = nil, _ name: String) throws -> Any? {
        pushModule(module)
        lua_getfield(L, -1, name)
        // stack: mod, value
        defer { shim_pop(L, 2) }
        return try LuaStack.value(L, -1, path: name)
    }

    /// From now on, reading or assigning an undefined global raises `undefined global 'x'`
    /// (recipes use `local`; `rawset(_G, name, v)` still defines a global deliberately).
    public func guardGlobals() throws {
        let code = """
        local mt = {}
        function mt.__index(_, k) error("undefined global '" .. tostring(k) .. "'", 2) end
        function mt.__newindex(_, k) error("assignment to undefined global '" .. tostring(k) .. "' (declare it local, or use rawset(_G, name, value))", 2) end
        setmetatable(_G, mt)
        """
        try runString(code, name: "=semidpo.guard")
    }

    // MARK: calling Lua

    /// Loads a file as a chunk and leaves it on the stack; a syntax error or unreadable file throws.
    public func loadFile(_ path: String) throws {
        let status = luaL_loadfilex(L, path, "t")
        if status != LUA_OK {
            let msg = lua_type(L, -1) == LUA_TSTRING ? LuaStack.string(L, -1) : "cannot load \(path)"
            shim_pop(L, 1)
            throw LuaError(kind: status == LUA_ERRSYNTAX ? .syntax : status == LUA_ERRMEM ? .memory : .file, message: msg)
        }
        // stack: chunk
    }

    /// Loads a string as a chunk named `name` (`=name` shows as `name`, `@path` as a file).
    public func loadString(_ code: String, name: String) throws {
        let status = code.withCString { shim_loadbuffer(L, $0, code.utf8.count, name) }
        if status != LUA_OK {
            let msg = LuaStack.string(L, -1)
            shim_pop(L, 1)
            throw LuaError(kind: status == LUA_ERRSYNTAX ? .syntax : .memory, message: msg)
        }
    }

    /// Runs a file and returns its results.
    @discardableResult
    public func runFile(_ path: String) throws -> [Any?] {
        let base = lua_gettop(L)
        try loadFile(path)
        return try callChunk(base: base)
    }

    /// Runs Lua source; `name` is the chunk name used in messages (`=recipe.lua` → `recipe.lua:3:`).
    /// `arguments` are the chunk's `...`.
    @discardableResult
    public func runString(_ code: String, name: String = "=string", arguments: [Any?] = []) throws -> [Any?] {
        let base = lua_gettop(L)
        try loadString(code, name: name)
        for a in arguments {
            do { try LuaStack.push(L, a) } catch { lua_settop(L, base); throw error }
        }
        return try callChunk(base: base, nargs: Int32(arguments.count))
    }

    private func callChunk(base: Int32, nargs: Int32 = 0) throws -> [Any?] {
        try pcall(L, nargs: nargs, nresults: LUA_MULTRET)
        defer { lua_settop(L, base) }
        let top = lua_gettop(L)
        guard top > base else { return [] }
        return try ((base + 1)...top).map { try LuaStack.value(L, $0, path: "result") }
    }

    /// `lua_pcall` with a traceback message handler. On success the results are on the stack; on
    /// error the stack is restored and a `LuaError` (message, file, line, traceback) is thrown.
    public func pcall(_ L: OpaquePointer, nargs: Int32, nresults: Int32) throws {
        let fnIndex = lua_gettop(L) - nargs
        lua_pushcclosure(L, tracebackHandler, 0)
        shim_insert(L, fnIndex)
        // stack: …, handler, f, args…
        let status = shim_pcall(L, nargs, nresults, fnIndex)
        if status == LUA_OK {
            shim_remove(L, fnIndex)
            // stack: …, results…
            return
        }
        let full = lua_type(L, -1) == LUA_TSTRING ? LuaStack.string(L, -1) : "(error object is not a string)"
        shim_pop(L, 2)
        // stack: …
        let marker = "\nstack traceback:\n"
        let kind: LuaError.Kind = status == LUA_ERRMEM ? .memory : status == LUA_ERRERR ? .handler : .runtime
        if let r = full.range(of: marker) {
            throw LuaError(kind: kind, message: String(full[..<r.lowerBound]),
                           traceback: "stack traceback:\n" + full[r.upperBound...])
        }
        throw LuaError(kind: kind, message: full)
    }
}

/// The message handler for `pcall`: appends Lua's traceback to the error message.
private func tracebackHandler(_ L: OpaquePointer?) -> Int32 {
    let L = L!
    let t = lua_type(L, 1)
    let msg: String
    if t == LUA_TSTRING || t == LUA_TNUMBER {
        var len = 0
        let p = lua_tolstring(L, 1, &len)!
        msg = String(cString: p)
    } else {
        msg = "(error object is a \(LuaStack.typeName(L, 1)) value)"
    }
    luaL_traceback(L, L, msg, 1)
    // stack: msg, msg + traceback
    return 1
}
