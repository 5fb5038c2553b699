/*
 * ss_lua_check.c - compiles a script without running it, so that a
 * supervisor can refuse a broken stage script before starting anything.
 * Kept apart from ss_lua.c: it needs a bare state, not the runtime's
 * modules.
 */
#include "lua/ss_lua.h"
#include "securestreams.h"

#include "lua/ss_lua_api.h"
#include <string.h>

/* See ss_lua.h. */
int ss_lua_check_file(const char *path, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return SS_ENOMEM;
    int st = luaL_loadfilex(L, path, "t");
    int rc = 0;
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (!m)
            m = "(error object is not a string)";
        size_t n = strcspn(m, "\n");
        if (n >= errlen)
            n = errlen - 1;
        memcpy(err, m, n);
        err[n] = '\0';
        if (st == LUA_ERRSYNTAX)
            ss_lua_syntax_hint(err, errlen);
        rc = st == LUA_ERRFILE ? SS_EIO : st == LUA_ERRMEM ? SS_ENOMEM
                                                           : SS_ELUA;
    }
    lua_close(L);
    return rc;
}
