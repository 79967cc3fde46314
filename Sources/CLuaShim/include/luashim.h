// Lua 5.4 macros and variadic functions that Swift cannot import, as inline functions,
// and the trampoline through which Swift-implemented functions raise Lua errors (SPEC §7).
#ifndef SEMIDPO_LUASHIM_H
#define SEMIDPO_LUASHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

static inline int shim_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline const char *shim_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline void shim_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void *shim_newuserdata(lua_State *L, size_t size) { return lua_newuserdata(L, size); }
static inline int shim_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int shim_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int shim_getmetatable(lua_State *L, const char *name) { return luaL_getmetatable(L, name); }
static inline void shim_newtable(lua_State *L) { lua_newtable(L); }
static inline int shim_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
static inline int shim_isnil(lua_State *L, int idx) { return lua_isnil(L, idx); }
static inline void shim_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline lua_Number shim_tonumber(lua_State *L, int idx) { return lua_tonumber(L, idx); }
static inline lua_Integer shim_tointeger(lua_State *L, int idx) { return lua_tointeger(L, idx); }
static inline int shim_gc_collect(lua_State *L) { return lua_gc(L, LUA_GCCOLLECT, 0); }
static inline int shim_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT, 0); }
static inline void shim_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void shim_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void shim_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int shim_loadbuffer(lua_State *L, const char *buf, size_t size, const char *name) {
    return luaL_loadbuffer(L, buf, size, name);
}

/// A function implemented in Swift. It returns the number of results it pushed, or
/// SHIM_RAISE after pushing an error message: the trampoline then raises it with lua_error,
/// so the longjmp never crosses a Swift frame.
typedef int (*shim_swift_function)(lua_State *L);
#define SHIM_RAISE (-1)

/// Pushes a Lua C closure that calls `fn` through the trampoline. `nup` upvalues already on the
/// stack are kept; the function pointer is appended as the last upvalue. Inside `fn`, the k-th
/// user upvalue (1-based) is at lua_upvalueindex(k + 1): slot 1 holds the upvalue count.
void shim_pushswiftclosure(lua_State *L, shim_swift_function fn, int nup);

/// The `lua_pcall` message handler: turns any error value (a string, a number, a table with or without
/// `__tostring`, nil, …) into `chunk:line: message` — adding the position of the innermost Lua
/// function when the message has none (`error(msg, 0)`, non-string values) — followed by Lua's
/// traceback. Written in C so that no Swift frame is live while it allocates.
int shim_msghandler(lua_State *L);

/// A new state whose allocator refuses to let the Lua heap grow beyond `cap` bytes while Lua code
/// runs (Lua then raises LUA_ERRMEM into its own lua_pcall, and `shim_memory_where` tells from where).
/// While a Swift function is live (see `shim_set_in_swift`) nothing is refused — a longjmp would
/// cross Swift frames — and `shim_swap_over_cap` reports that the cap was passed. An error outside
/// any lua_pcall prints the message and exits with status 70 instead of aborting.
lua_State *shim_newstate(size_t cap);
/// lua_close, then frees the allocator's state.
void shim_closestate(lua_State *L);
/// Marks whether a Swift frame is live between the running code and the innermost lua_pcall;
/// returns the previous mark (restore it afterwards).
int shim_set_in_swift(lua_State *L, int in_swift);
/// Sets the "cap passed while Swift frames were live" flag and returns its previous value. Each
/// Swift entry (lua_wrap, LuaState.pcall) starts with 0 and restores its caller's value on exit, so
/// a `__gc` finalizer run by the collector inside a bound function does not consume that function's flag.
int shim_swap_over_cap(lua_State *L, int over_cap);
/// Sets the limit Lua code may allocate up to (the cap, normally) and returns the previous one;
/// LuaState.pcall runs Lua at the cap and restores its caller's limit afterwards.
size_t shim_swap_limit(lua_State *L, size_t limit);
/// Before raising the memory error of a bound function that went past the cap: lets the error
/// unwind (call frames, the message handler's traceback) with 1 MiB above what is in use, until the
/// enclosing LuaState.pcall returns.
void shim_allow_error_headroom(lua_State *L);
size_t shim_memory_used(lua_State *L);
size_t shim_memory_cap(lua_State *L);
/// `chunk:line: ` of the Lua code whose allocation was last refused ("" if unknown).
const char *shim_memory_where(lua_State *L);

#endif
