/*
 * ss_lua_log.c - the `log` module for stage scripts (the seed's log.lua
 * API): log.trace/debug/info/warn/error/fatal(...) write through the
 * component's logger, honouring LOG_LEVEL; log.level is the level name
 * and log.rate the LOG_RATE value.
 */
#include "core/ss_log.h"
#include "lua/ss_lua.h"

#include "lua/ss_lua_api.h"

static int log_at(lua_State *L)
{
    int level = (int)lua_tointeger(L, lua_upvalueindex(1));
    if (!ss_log_enabled(level))
        return 0;
    int n = lua_gettop(L); /* before luaL_buffinit: Lua 5.4 may push a
                              * box for the buffer */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) &&
        ar.currentline > 0)
        ss_log_write(level, "%s:%d: %s", ar.short_src, ar.currentline,
                     lua_tostring(L, -1));
    else
        ss_log_write(level, "%s", lua_tostring(L, -1));
    return 0;
}

/* See ss_lua.h. */
int luaopen_ss_log(lua_State *L)
{
    static const char *const names[] = {"trace", "debug", "info",
                                        "warn",  "error", "fatal"};
    lua_createtable(L, 0, 8);
    for (int i = 0; i < 6; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, log_at, 1);
        lua_setfield(L, -2, names[i]);
    }
    int lv = ss_log_level_current;
    lua_pushstring(L, lv <= SS_LOG_FATAL ? names[lv] : "off");
    lua_setfield(L, -2, "level");
    lua_pushinteger(L, ss_log_rate);
    lua_setfield(L, -2, "rate");
    return 1;
}
