/*
 * ss_lua_csv.c - the `csv` module for stage scripts:
 *
 *   csv.parse(line [, sep])  -> array of the line's fields (strings);
 *                               raises "csv.parse: <reason> at column N"
 *   csv.encode(array [, sep]) -> one line (no newline), fields quoted
 *                               only when needed; fields are strings or
 *                               numbers, nil holes become empty fields
 *
 * sep is a one-byte string, ',' by default. csv.parse runs once per event
 * in mappers, so it pushes each field straight into a table presized from
 * the previous line's field count. Both share one scratch buffer held by
 * a userdata upvalue (freed by its __gc), so a Lua error thrown midway
 * (e.g. out of memory) leaks nothing.
 */
#include "lua/ss_lua.h"
#include "securestreams.h"
#include "wire/ss_csv.h"

#include <lauxlib.h>
#include <string.h>

#define CSV_STATE "ss.csv.state"
#define CSV_GUESS_MAX 256

typedef struct csv_state {
    ss_buf scratch;
    int guess; /* field count of the last line parsed */
} csv_state;

static int state_gc(lua_State *L)
{
    csv_state *cs = luaL_checkudata(L, 1, CSV_STATE);
    ss_buf_release(&cs->scratch);
    return 0;
}

static char opt_sep(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return ',';
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    if (n != 1 || s[0] == '"' || s[0] == '\r' || s[0] == '\n')
        luaL_argerror(L, arg, "separator must be one byte, not '\"', "
                              "CR or LF");
    return s[0];
}

static int push_field(const char *f, size_t len, int index, void *arg)
{
    lua_State *L = arg;
    lua_pushlstring(L, f, len);
    lua_rawseti(L, -2, (lua_Integer)index + 1);
    return 0;
}

static int csv_parse(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char sep = opt_sep(L, 2);
    csv_state *cs = lua_touserdata(L, lua_upvalueindex(1));
    char err[128];
    lua_createtable(L, cs->guess, 0);
    int r = ss_csv_split_sep(s, n, sep, push_field, L, &cs->scratch, err,
                             sizeof err);
    if (cs->scratch.cap > 65536)
        ss_buf_release(&cs->scratch);
    if (r < 0) {
        if (r == SS_ENOMEM)
            return luaL_error(L, "csv.parse: out of memory");
        return luaL_error(L, "csv.parse: %s", err);
    }
    cs->guess = r < CSV_GUESS_MAX ? r : CSV_GUESS_MAX;
    return 1;
}

static int csv_encode(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    char sep = opt_sep(L, 2);
    csv_state *cs = lua_touserdata(L, lua_upvalueindex(1));
    ss_buf *b = &cs->scratch;
    ss_buf_reset(b);
    lua_Unsigned len = lua_rawlen(L, 1);
    int rc = 0;
    for (lua_Unsigned i = 1; i <= len && rc == 0; i++) {
        if (i > 1)
            rc = ss_buf_append(b, &sep, 1);
        int t = lua_rawgeti(L, 1, (lua_Integer)i);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            size_t fl;
            const char *f = lua_tolstring(L, -1, &fl);
            if (!rc)
                rc = ss_csv_put_field(b, f, fl, sep);
        } else if (t != LUA_TNIL) {
            ss_buf_reset(b);
            return luaL_error(L, "csv.encode: field %d is a %s (strings "
                                 "and numbers only)",
                              (int)i, lua_typename(L, t));
        }
        lua_pop(L, 1);
    }
    if (rc) {
        ss_buf_release(b);
        return luaL_error(L, "csv.encode: out of memory");
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    if (b->cap > 65536)
        ss_buf_release(b);
    return 1;
}

/* See ss_lua.h. */
int luaopen_ss_csv(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", csv_parse}, {"encode", csv_encode}, {NULL, NULL}};
    luaL_newlibtable(L, fns);
    csv_state *cs = lua_newuserdatauv(L, sizeof *cs, 0);
    ss_buf_init(&cs->scratch);
    cs->guess = 8;
    if (luaL_newmetatable(L, CSV_STATE)) {
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, fns, 1);
    return 1;
}
