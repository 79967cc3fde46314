// The error trampoline: the only place where a Lua error is raised on behalf of Swift code.
#include "luashim.h"

static int trampoline(lua_State *L) {
    // The Swift function pointer is the last upvalue; its count sits in the first hidden slot.
    int nup = (int)lua_tointeger(L, lua_upvalueindex(1));
    shim_swift_function fn = (shim_swift_function)lua_touserdata(L, lua_upvalueindex(nup + 2));
    int n = fn(L);
    if (n == SHIM_RAISE) {
        return lua_error(L);  // message on top of the stack; no Swift frame is live here
    }
    return n;
}

void shim_pushswiftclosure(lua_State *L, shim_swift_function fn, int nup) {
    // stack: up_1 … up_nup
    lua_pushinteger(L, nup);
    lua_insert(L, -(nup + 1));
    // stack: nup, up_1 … up_nup
    lua_pushlightuserdata(L, (void *)fn);
    // stack: nup, up_1 … up_nup, fn
    lua_pushcclosure(L, trampoline, nup + 2);
}
