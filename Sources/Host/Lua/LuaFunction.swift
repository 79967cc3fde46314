// How Swift functions become Lua functions: the C function type, a named entry for registration
// tables, and `lua_wrap`, which turns thrown Swift errors into Lua errors raised by the C trampoline.
import CLua
import CLuaShim

/// A Swift function callable from Lua. It must be a non-capturing function (`@convention(c)`), and
/// it is always registered through `shim_pushswiftclosure`, never with `lua_pushcclosure`.
public typealias LuaCFunction = @convention(c) (OpaquePointer?) -> Int32

/// One entry of a binding table: the Lua-facing name and the function (LÖVE's `luaL_Reg`).
public struct LuaFunction {
    public let name: String
    public let function: LuaCFunction
    public init(_ name: String, _ function: @escaping LuaCFunction) {
        self.name = name
        self.function = function
    }
}

/// Runs the body of a bound function. The body checks and converts its arguments through `args`,
/// calls Core, pushes its results and returns how many it pushed. Any Swift error it throws is
/// turned into a Lua error (`recipe.lua:LINE: message`) raised by the C trampoline after every
/// Swift frame has returned, so nothing leaks. Never call `lua_error`/`luaL_error`/`luaL_check*`
/// from Swift.
///
///     private func yaml_decode(_ L: OpaquePointer?) -> Int32 {
///         lua_wrap(L, "decode") { args in
///             let text = try args.string(1)
///             try args.push(try YAML.decode(text))
///             return 1
///         }
///     }
@inline(__always)
public func lua_wrap(_ L: OpaquePointer?, _ name: String, _ body: (LuaArgs) throws -> Int32) -> Int32 {
    lua_wrapImpl(L!, name, isMethod: false, body)
}

/// Like `lua_wrap`, for methods called as `object:name(...)`: argument 1 is `self` (read it with
/// `args.this(T.self)`), and argument numbers in error messages count from the first argument
/// after `self`, as Lua's own methods do.
@inline(__always)
public func lua_method(_ L: OpaquePointer?, _ name: String, _ body: (LuaArgs) throws -> Int32) -> Int32 {
    lua_wrapImpl(L!, name, isMethod: true, body)
}

@usableFromInline
func lua_wrapImpl(_ L: OpaquePointer, _ name: String, isMethod: Bool, _ body: (LuaArgs) throws -> Int32) -> Int32 {
    let message: String
    var addPosition = true
    // A Swift frame is live until this function returns (the message below is pushed from Swift
    // too): the allocator must not refuse, which would longjmp through these frames.
    let wasInSwift = shim_set_in_swift(L, 1), callerOverCap = shim_swap_over_cap(L, 0)
    defer { shim_set_in_swift(L, wasInSwift); shim_swap_over_cap(L, callerOverCap) }
    do {
        let results = try body(LuaArgs(L, name: name, isMethod: isMethod))
        if shim_swap_over_cap(L, 0) == 0 { return results }
        message = "'\(name)': " + LuaState.memoryMessage(L)
        shim_allow_error_headroom(L)
    } catch let error as LuaError {
        // An error from a Lua callback already carries its own position.
        message = error.message
        addPosition = false
    } catch {
        message = String(describing: error)
    }
    if addPosition {
        luaL_where(L, 1)
        lua_pushstring(L, message)
        lua_concat(L, 2)
    } else {
        lua_pushstring(L, message)
    }
    // stack: …, message
    return SHIM_RAISE
}

/// Pushes `function` as a Lua function (through the error trampoline).
public func lua_pushswiftfunction(_ L: OpaquePointer, _ function: LuaCFunction) {
    shim_pushswiftclosure(L, function, 0)
}
