/*
 * ss_lua_embed.h - the runtime's Lua modules (rx, zmq-rx, sgx-rx, ...),
 * compiled into the binary by scripts/embed-lua.sh.
 */
#ifndef SS_LUA_EMBED_H
#define SS_LUA_EMBED_H

#include <stddef.h>

typedef struct ss_lua_embedded {
    const char *name; /* module name as given to require */
    const char *src;  /* Lua source text, not NUL-terminated */
    size_t len;
} ss_lua_embedded;

/* Terminated by an entry whose name is NULL. */
extern const ss_lua_embedded ss_lua_embedded_modules[];

#endif
