/*
 * fuzz_json.c - libFuzzer target for the JSON decoder of the json module
 * (src/lua/ss_lua_json.c), which reads JSON lines from sources and
 * scripts. json.decode runs under lua_pcall on any bytes: it returns a
 * value or raises an error naming the offset, never crashes or reads
 * past the text (ASan). What decodes is encoded and decoded again, and
 * must encode to the same text the second time (a fixed point after one
 * trip, up to the order of object keys: only the length is compared).
 * Built by `make fuzz` (build-fuzz/fuzz_json); run by tests/fuzz/run.sh.
 */
#include "lua/ss_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lua_State *L;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
        abort();
    }
}

/* json.decode(s); on success json.encode(v) -> e1, decode(e1), encode
 * -> e2; returns #e1 == #e2 (or true when decode failed). */
static const char *const trip =
    "local json, s = ...\n"
    "local ok, v = pcall(json.decode, s)\n"
    "if not ok then\n"
    "  assert(type(v) == 'string' and v:find('json.decode', 1, true), v)\n"
    "  return true\n"
    "end\n"
    "local ok1, e1 = pcall(json.encode, v)\n"
    "if not ok1 then return true end -- e.g. a float that JSON cannot hold\n"
    "local e2 = json.encode(json.decode(e1))\n"
    "return #e1 == #e2\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        L = luaL_newstate();
        check(L != NULL, "lua state");
        luaL_openlibs(L);
        check(luaL_loadstring(L, trip) == LUA_OK, "trip compiles");
        lua_setglobal(L, "trip");
    }
    lua_getglobal(L, "trip");
    luaL_requiref(L, "json", luaopen_ss_json, 0);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
        check(0, "decode errors are json.decode errors; re-decode works");
    }
    check(lua_toboolean(L, -1), "encode(decode(encode(v))) has the same length");
    lua_settop(L, 0);
    return 0;
}
