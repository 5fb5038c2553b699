/*
 * ss_lua_files.c - the `files` module: the data files bundled with a
 * stage script (core/ss_bundle.h), readable where io is not (an enclave)
 * and the same way everywhere.
 *
 * The bytes live in one registry table (name -> string), filled by
 * ss_lua_files_add when the stage loads its bundle; the module only reads
 * it. files.read(name) returns a file's bytes, files.lines(name) an
 * iterator over its lines as io.lines gives them (without the "\n"; a
 * last line without one counts). A name that was not bundled is an error
 * that says how a file gets bundled.
 */
#include "lua/ss_lua.h"

#include "lua/ss_lua_api.h"

#include <string.h>

static const char files_key = 'f'; /* registry[&files_key]: the table */

/* Pushes the registry's table of files, creating it if asked; returns 0
 * (nothing pushed) when there is none and create is 0. */
static int push_files(lua_State *L, int create)
{
    lua_pushlightuserdata(L, (void *)&files_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_istable(L, -1))
        return 1;
    lua_pop(L, 1);
    if (!create)
        return 0;
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&files_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return 1;
}

/* See ss_lua.h. */
void ss_lua_files_add(lua_State *L, const char *name, const char *data,
                      size_t len)
{
    push_files(L, 1);
    lua_pushlstring(L, data, len);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* See ss_lua.h. */
const void *ss_lua_files_key(void) { return &files_key; }

/* Pushes the bytes of the file named by argument 1, or raises naming
 * the function fn. The table of files is the module's upvalue: the one
 * the registry held when the module was opened (a stage of a chain
 * sharing one Lua state opens its own, ss_stage_new_shared). */
static void push_file(lua_State *L, const char *fn)
{
    const char *name = luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    {
        lua_getfield(L, -1, name);
        lua_remove(L, -2);
        if (lua_isstring(L, -1))
            return;
        lua_pop(L, 1);
    }
    luaL_error(L,
               "files.%s: '%s' is not a bundled data file (a file is "
               "bundled when the script or one of its modules names it "
               "with a string literal, files.%s('%s'), and it is beside "
               "the script)",
               fn, name, fn, name);
}

static int files_read(lua_State *L)
{
    push_file(L, "read");
    return 1;
}

/* The iterator of files.lines: upvalues the bytes and the offset. */
static int next_line(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &len);
    lua_Integer off = lua_tointeger(L, lua_upvalueindex(2));
    if (off < 0 || (size_t)off >= len)
        return 0;
    const char *p = s + off;
    const char *nl = memchr(p, '\n', len - (size_t)off);
    size_t n = nl ? (size_t)(nl - p) : len - (size_t)off;
    lua_pushinteger(L, off + (lua_Integer)n + 1);
    lua_replace(L, lua_upvalueindex(2));
    lua_pushlstring(L, p, n);
    return 1;
}

static int files_lines(lua_State *L)
{
    push_file(L, "lines");
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, next_line, 2);
    return 1;
}

/* files.list(): the bundled names, sorted. */
static int files_list(lua_State *L)
{
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -4, ++n);
    }
    lua_pop(L, 1);
    lua_getglobal(L, "table");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "sort");
        lua_pushvalue(L, -3);
        lua_call(L, 1, 0);
    }
    lua_pop(L, 1);
    return 1;
}

/* See ss_lua.h. */
int luaopen_ss_files(lua_State *L)
{
    static const luaL_Reg fns[] = {{"read", files_read},
                                   {"lines", files_lines},
                                   {"list", files_list},
                                   {NULL, NULL}};
    lua_createtable(L, 0, 3);
    push_files(L, 1); /* this state's (or stage's) files, from now on */
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -3, r->name);
    }
    lua_pop(L, 1);
    return 1;
}
