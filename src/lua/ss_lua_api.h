/*
 * ss_lua_api.h - the Lua C API as the runtime uses it, on either engine.
 *
 * Every file that calls Lua includes this header instead of <lua.h>,
 * <lauxlib.h> and <lualib.h>. With the default engine (Lua 5.4) it is
 * just those headers. Built with `make LUA=luajit` (SS_LUAJIT defined),
 * it maps the part of the Lua 5.4 API the runtime uses onto LuaJIT 2.1's
 * Lua 5.1 API, so that no other file needs to know which engine it runs
 * on. What cannot be mapped exactly, and what that means for scripts, is
 * in docs/LUA.md ("Engines"):
 *
 * - numbers: LuaJIT has no integer subtype. lua_isinteger() here is true
 *   for a number with an integral value that fits an int64 (so 2.0 is an
 *   integer, and is encoded as one on the wire); lua_pushinteger()
 *   pushes a double, exact only up to 2^53.
 * - indexed user values: kept in the userdata's environment table.
 * - lua_getfield, lua_rawgeti, ...: return the type pushed, as in 5.4.
 * - no utf8 library; no generational GC (lua_gc(LUA_GCGEN) is a no-op).
 */
#ifndef SS_LUA_API_H
#define SS_LUA_API_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifdef SS_LUAJIT

#include <luajit.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SS_LUA_ENGINE LUAJIT_VERSION
#define SS_LUA_ENGINE_KEY "luajit"
/* A lua_Integer in lua_pushfstring/luaL_error: SS_LUA_FMT_INT in the
 * format, SS_LUA_ARG_INT(x) as the argument (LuaJIT has no %I). */
#define SS_LUA_FMT_INT "%f"
#define SS_LUA_ARG_INT(x) ((lua_Number)(x))
/* A hint appended to a script's syntax error. */
#define SS_LUA_SYNTAX_HINT                                                   \
    " (this binary runs LuaJIT: Lua 5.1 syntax, no integers, //, bitwise "  \
    "operators or utf8; a script written for Lua 5.3/5.4 needs bin/sstream)"

typedef uint64_t lua_Unsigned;

#define LUA_GNAME "_G"
#define LUA_LOADED_TABLE "_LOADED"
#define LUA_PRELOAD_TABLE "_PRELOAD"
#define LUA_MAXINTEGER INT64_MAX
#define LUA_GCGEN (-1)

/* lua_gc(L, what [, args]): 5.4 takes a variable number of arguments. */
static inline int ss_lua_compat_gc(lua_State *L, int what, int a)
{
    return what == LUA_GCGEN ? 0 : (lua_gc)(L, what, a);
}
#undef lua_gc
#define lua_gc(L, ...) ss_lua_compat_gc_(L, __VA_ARGS__, 0, 0)
#define ss_lua_compat_gc_(L, what, a, ...) ss_lua_compat_gc(L, what, a)

static inline int lua_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx
                                                 : lua_gettop(L) + idx + 1;
}

#define lua_pushglobaltable(L) lua_pushvalue(L, LUA_GLOBALSINDEX)
#define lua_rawlen(L, i) lua_objlen(L, i)
#define luaL_len(L, i) ((lua_Integer)lua_objlen(L, i))

/* A number with an integral value in the int64 range. */
static inline int lua_isinteger(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number n = lua_tonumber(L, idx);
    return n == floor(n) && n >= -9223372036854775808.0 &&
           n < 9223372036854775808.0;
}

/* The getters of 5.3+ return the type of the value they pushed. */
static inline int ss_lua_compat_rawgeti(lua_State *L, int t, lua_Integer n)
{
    (lua_rawgeti)(L, t, (int)n);
    return lua_type(L, -1);
}
#undef lua_rawgeti
#define lua_rawgeti(L, t, n) ss_lua_compat_rawgeti(L, t, n)

static inline void ss_lua_compat_rawseti(lua_State *L, int t, lua_Integer n)
{
    (lua_rawseti)(L, t, (int)n);
}
#undef lua_rawseti
#define lua_rawseti(L, t, n) ss_lua_compat_rawseti(L, t, n)

static inline int ss_lua_compat_getfield(lua_State *L, int t, const char *k)
{
    (lua_getfield)(L, t, k);
    return lua_type(L, -1);
}
#undef lua_getfield
#define lua_getfield(L, t, k) ss_lua_compat_getfield(L, t, k)
#undef lua_getglobal
#define lua_getglobal(L, k) ss_lua_compat_getfield(L, LUA_GLOBALSINDEX, k)

static inline int ss_lua_compat_rawget(lua_State *L, int t)
{
    (lua_rawget)(L, t);
    return lua_type(L, -1);
}
#undef lua_rawget
#define lua_rawget(L, t) ss_lua_compat_rawget(L, t)

static inline int lua_rawgetp(lua_State *L, int t, const void *p)
{
    t = lua_absindex(L, t);
    lua_pushlightuserdata(L, (void *)p);
    (lua_rawget)(L, t);
    return lua_type(L, -1);
}

static inline void lua_rawsetp(lua_State *L, int t, const void *p)
{
    t = lua_absindex(L, t);
    lua_pushlightuserdata(L, (void *)p);
    lua_insert(L, -2);
    lua_rawset(L, t);
}

/* Indexed user values live in the userdata's environment table (a
 * userdata made by lua_newuserdatauv with nuv > 0 always has its own). */
static inline void *lua_newuserdatauv(lua_State *L, size_t sz, int nuv)
{
    void *p = lua_newuserdata(L, sz);
    if (nuv > 0) {
        lua_createtable(L, nuv, 0);
        lua_setfenv(L, -2);
    }
    return p;
}

static inline int lua_setiuservalue(lua_State *L, int idx, int n)
{
    idx = lua_absindex(L, idx);
    lua_getfenv(L, idx);
    lua_insert(L, -2);
    (lua_rawseti)(L, -2, n);
    lua_pop(L, 1);
    return 1;
}

static inline int lua_getiuservalue(lua_State *L, int idx, int n)
{
    lua_getfenv(L, idx);
    (lua_rawgeti)(L, -1, n);
    lua_remove(L, -2);
    return lua_type(L, -1);
}

/* lua_getextraspace: a pointer-sized slot per state (shared by its
 * threads, as 5.4 copies the main thread's), kept in a userdata anchored
 * in the registry. */
static inline void *lua_getextraspace(lua_State *L)
{
    (lua_getfield)(L, LUA_REGISTRYINDEX, "ss.extraspace");
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p)
        return p;
    p = lua_newuserdata(L, sizeof(void *));
    memset(p, 0, sizeof(void *));
    lua_setfield(L, LUA_REGISTRYINDEX, "ss.extraspace");
    return p;
}

/* t[k] if it is a table, else a new table stored there; returns 1 if it
 * already existed. */
static inline int luaL_getsubtable(lua_State *L, int t, const char *k)
{
    t = lua_absindex(L, t);
    if (ss_lua_compat_getfield(L, t, k) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, t, k);
    return 0;
}

/* Calls openf(name), stores the result in package.loaded[name] (and in
 * the global name if glb); leaves the module on the stack. */
static inline void luaL_requiref(lua_State *L, const char *name,
                                 lua_CFunction openf, int glb)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (ss_lua_compat_getfield(L, -1, name) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_pushcfunction(L, openf);
        lua_pushstring(L, name);
        lua_call(L, 1, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
    }
    lua_remove(L, -2);
    if (glb) {
        lua_pushvalue(L, -1);
        lua_setglobal(L, name);
    }
}

/* tostring(v) without calling the global tostring: __tostring, else the
 * value's usual text. Pushes the string and returns it. */
static inline const char *luaL_tolstring(lua_State *L, int idx, size_t *len)
{
    idx = lua_absindex(L, idx);
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (!lua_isstring(L, -1))
            luaL_error(L, "'__tostring' must return a string");
    } else {
        switch (lua_type(L, idx)) {
        case LUA_TNUMBER:
        case LUA_TSTRING:
            lua_pushvalue(L, idx);
            lua_tolstring(L, -1, NULL); /* a number becomes its text */
            break;
        case LUA_TBOOLEAN:
            lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
            break;
        case LUA_TNIL:
            lua_pushliteral(L, "nil");
            break;
        default:
            lua_pushfstring(L, "%s: %p", luaL_typename(L, idx),
                            lua_topointer(L, idx));
            break;
        }
    }
    return lua_tolstring(L, -1, len);
}

/* luaL_buffinitsize/luaL_pushresultsize: a buffer of sz bytes, then its
 * first n bytes as a string. Small ones use the luaL_Buffer's own space;
 * larger ones a userdata on the stack, replaced by the result. */
static inline char *luaL_buffinitsize(lua_State *L, luaL_Buffer *b,
                                      size_t sz)
{
    b->L = L;
    if (sz <= sizeof b->buffer) {
        b->lvl = 0;
        b->p = b->buffer;
    } else {
        b->lvl = 1;
        b->p = lua_newuserdata(L, sz);
    }
    return b->p;
}

static inline void luaL_pushresultsize(luaL_Buffer *b, size_t n)
{
    lua_pushlstring(b->L, b->p, n);
    if (b->lvl)
        lua_remove(b->L, -2);
}

#else /* Lua 5.4 */

#define SS_LUA_ENGINE LUA_RELEASE
#define SS_LUA_ENGINE_KEY "5.4"
#define SS_LUA_FMT_INT "%I"
#define SS_LUA_ARG_INT(x) ((lua_Integer)(x))
#define SS_LUA_SYNTAX_HINT ""

#endif

#endif
