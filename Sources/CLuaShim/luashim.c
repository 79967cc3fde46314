// The error trampoline (the only place where a Lua error is raised on behalf of Swift code), the
// message handler that gives every error a position and a traceback, and the capped allocator.
#include "luashim.h"
#include <stdio.h>
#include <stdlib.h>

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

/* ---- The message handler ------------------------------------------------------------------ */

/* Whether `s` starts with Lua's position prefix `chunk:LINE: ` (the chunk name may hold colons):
   some ":<digits>:" on the first line, after at least one character. */
static int has_position(const char *s) {
    for (const char *p = s; *p && *p != '\n'; p++) {
        if (*p != ':' || p == s) continue;
        const char *q = p + 1;
        if (*q < '0' || *q > '9') continue;
        while (*q >= '0' && *q <= '9') q++;
        if (*q == ':') return 1;
    }
    return 0;
}

/* Pushes `short_src:currentline: ` of the innermost Lua function on the stack of L (the frame that
   raised the error, or the nearest recipe frame below a C function), or "" when there is none. */
static void push_innermost_position(lua_State *L) {
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

static int lift_cap(lua_State *L, int lifted);

int shim_msghandler(lua_State *L) {
    /* stack: err */
    /* The handler must be able to allocate even when the heap is over its cap (often why there is
       an error): lift the cap while it runs. LuaState.pcall restores the mark if it longjmps. */
    int saved = lift_cap(L, 1);
    const char *msg = NULL;
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        msg = lua_tostring(L, 1);
    } else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
        msg = lua_tostring(L, -1);                      /* stack: err, tostring(err) */
    } else {
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    /* stack: err, …, msg */
    if (!has_position(msg)) {
        push_innermost_position(L);
        lua_pushstring(L, msg);
        lua_concat(L, 2);
        msg = lua_tostring(L, -1);                      /* stack: err, …, position .. msg */
    }
    luaL_traceback(L, L, msg, 1);
    /* stack: err, …, msg .. traceback */
    lift_cap(L, saved);
    return 1;
}

/* ---- The capped allocator ----------------------------------------------------------------- */

typedef struct {
    size_t used, cap;
    size_t limit;          /* what Lua code may use now: cap, or more while an error unwinds */
    int in_swift;          /* a Swift frame is live between here and the innermost lua_pcall */
    int over_cap;          /* the cap was passed while in_swift: raise once the Swift frames return */
    lua_State *main;
    char where[256];       /* "chunk:line: " where the last refused allocation came from */
} shim_alloc_state;

static void record_where(shim_alloc_state *s) {
    lua_Debug ar;
    s->where[0] = 0;
    if (!s->main) return;
    for (int level = 0; lua_getstack(s->main, level, &ar); level++) {
        if (lua_getinfo(s->main, "Sl", &ar) && ar.currentline > 0) {
            snprintf(s->where, sizeof s->where, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    shim_alloc_state *s = (shim_alloc_state *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->used -= old;
        return NULL;
    }
    if (nsize > old && s->used + (nsize - old) > s->limit) {
        if (!s->in_swift) {
            /* Lua itself is running: refuse, and Lua raises LUA_ERRMEM into its own lua_pcall. */
            record_where(s);
            return NULL;
        }
        /* A Swift function is pushing values: a refusal would longjmp through its frames. Grant the
           block and let lua_wrap raise the memory error when the Swift frames have returned. */
        s->over_cap = 1;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (s->in_swift) {
            fputs("semidpo: out of memory while a bound function was pushing Lua values\n", stderr);
            abort();
        }
        record_where(s);
        return NULL;
    }
    s->used = s->used - old + nsize;
    return p;
}

static int panic_handler(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "semidpo: unprotected Lua error: %s\n", msg ? msg : "(error object is not a string)");
    exit(70);
}

lua_State *shim_newstate(size_t cap) {
    shim_alloc_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = cap;
    s->limit = cap;
    s->in_swift = 1;   /* until the first lua_pcall: only Swift calls into Lua */
    lua_State *L = lua_newstate(capped_alloc, s);
    if (!L) { free(s); return NULL; }
    s->main = L;
    lua_atpanic(L, panic_handler);
    return L;
}

static shim_alloc_state *alloc_state(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (shim_alloc_state *)ud;
}

/* Sets in_swift (which also means "never refuse") when the state uses the capped allocator. */
static int lift_cap(lua_State *L, int lifted) {
    if (lua_getallocf(L, NULL) != capped_alloc) return 0;
    shim_alloc_state *s = alloc_state(L);
    int previous = s->in_swift;
    s->in_swift = lifted;
    return previous;
}

void shim_closestate(lua_State *L) {
    shim_alloc_state *s = alloc_state(L);
    lua_close(L);
    free(s);
}

int shim_set_in_swift(lua_State *L, int in_swift) {
    shim_alloc_state *s = alloc_state(L);
    int previous = s->in_swift;
    s->in_swift = in_swift;
    return previous;
}

int shim_swap_over_cap(lua_State *L, int over_cap) {
    shim_alloc_state *s = alloc_state(L);
    int previous = s->over_cap;
    s->over_cap = over_cap;
    return previous;
}

size_t shim_memory_used(lua_State *L) { return alloc_state(L)->used; }
size_t shim_memory_cap(lua_State *L) { return alloc_state(L)->cap; }

size_t shim_swap_limit(lua_State *L, size_t limit) {
    shim_alloc_state *s = alloc_state(L);
    size_t previous = s->limit;
    s->limit = limit;
    return previous;
}

void shim_allow_error_headroom(lua_State *L) {
    shim_alloc_state *s = alloc_state(L);
    s->limit = (s->used > s->cap ? s->used : s->cap) + ((size_t)1 << 20);
}
const char *shim_memory_where(lua_State *L) { return alloc_state(L)->where; }
