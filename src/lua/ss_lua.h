/*
 * ss_lua.h - a Lua state (Lua 5.4, or LuaJIT 2.1 when built with
 * `make LUA=luajit`: see ss_lua_api.h) for user code: memory cap, library allow
 * list, and the runtime's modules served from the binary.
 *
 * Every state gets package.preload entries for the built-in modules
 * (rx, zmq-rx, sgx-rx, csv, json, log, ...). A sandboxed state (the
 * enclave's) opens only base (minus dofile/loadfile/load of binary
 * chunks), string, table, math, utf8, coroutine and os.clock/time/date;
 * no io, no debug, no package.loadlib, no C module searchers.
 */
#ifndef SS_LUA_H
#define SS_LUA_H

#include "lua/ss_lua_api.h"
#include <stddef.h>

typedef struct ss_lua ss_lua;

/* print() in a sandboxed state writes one log line of at most this many
 * bytes of text; the rest is cut (and the line says how much). */
#define SS_LUA_PRINT_MAX 1024

typedef struct ss_lua_opts {
    size_t mem_limit;      /* bytes; 0 means unlimited */
    int sandboxed;         /* 1: the enclave's restricted library set */
    const char *component; /* name used by the log module and print() */
} ss_lua_opts;

/* Creates a state with the cap and library set of o (o may be NULL for an
 * unsandboxed, uncapped state). Returns 0 and *out (caller destroys), or
 * SS_ENOMEM. */
int ss_lua_new(const ss_lua_opts *o, ss_lua **out);

/* Closes the state and frees L; sets *p to NULL. Safe on NULL/twice. */
void ss_lua_destroy(ss_lua **p);

/* The state (borrowed; valid until ss_lua_destroy). */
lua_State *ss_lua_state(ss_lua *s);

/* The most bytes the state has had allocated at once so far. */
size_t ss_lua_mem_peak(const ss_lua *s);

/* The bytes the state holds now: what the memory cap compares with its
 * limit. Equal to Lua's own count (collectgarbage("count") * 1024) on
 * Lua 5.4: small blocks the allocator keeps for reuse are not in it. */
size_t ss_lua_mem_used(const ss_lua *s);

/* A pointer-sized slot of the state of L (or of a thread of it) for the
 * event codec's key cache (ss_lua_msgpack.c), or NULL when L was not
 * made by ss_lua_new. What the slot points to is the codec's, allocated
 * with malloc; ss_lua_destroy frees it with free() after closing L.
 * Costs no Lua call (it finds the state through L's allocator). */
void **ss_lua_codec_slot(lua_State *L);

/* Loads a text chunk (binary chunks are refused) from (src, len) named
 * chunkname ("@path" for a file's text), and runs it under lua_pcall
 * with a traceback. On failure returns SS_ELUA (or SS_ENOMEM) and writes
 * a one-line reason naming the file and line into err. */
int ss_lua_dostring(ss_lua *s, const char *src, size_t len,
                    const char *chunkname, char *err, size_t errlen);

/* The same on the state L, the chunk with a global table of its own
 * whose reads fall back to the state's globals as they were before any
 * stage script ran (SS_LUA_PRISTINE; else as they are): what it assigns
 * to globals stays its own, and it does not see the other scripts'
 * (a script of a chain sharing one state, ss_stage_new_shared). */
int ss_lua_dostring_env(lua_State *L, const char *src, size_t len,
                        const char *chunkname, char *err, size_t errlen);

/* The same with the table at stack index env as the chunk's global
 * table (_ENV; its environment under LuaJIT): the caller builds it,
 * e.g. with a metatable whose __index is the state's globals. The table
 * stays on the stack. (A partitioned stateful stage runs its main chunk
 * once per key group this way: ss_stage.c.) */
int ss_lua_dostring_in(lua_State *L, const char *src, size_t len,
                       const char *chunkname, int env, char *err,
                       size_t errlen);

/* Pushes a new global table for a script (see ss_lua_dostring_env):
 * its reads falling back to the pristine globals, its _G itself. */
void ss_lua_push_env(lua_State *L);

/* Makes the table at stack index env the globals of the function (a
 * loaded chunk) at fidx. Can't fail. */
void ss_lua_set_chunk_env(lua_State *L, int fidx, int env);

/* The memory cap of s (0: none), and a new one (a chain sharing one
 * state: the sum of its stages' caps). */
size_t ss_lua_mem_limit(const ss_lua *s);
void ss_lua_set_mem_limit(ss_lua *s, size_t limit);

/* The registry key (light userdata) of the table of a state's bundled
 * data files (ss_lua_files_add); the `files` module reads the table the
 * key held when the module was opened. */
const void *ss_lua_files_key(void);

/* Registry field: a copy of the global table taken before a stage's
 * script ran (ss_stage.c), the fallback of ss_lua_dostring_env. */
#define SS_LUA_PRISTINE "ss.pristine_globals"

/* Checks that a script file compiles, without running it. Returns 0 or
 * SS_ELUA/SS_EIO with the reason in err. */
int ss_lua_check_file(const char *path, char *err, size_t errlen);

/* The engine this binary was built with: "5.4" or "luajit" (the values
 * of a pipeline file's `lua:` key), and its full name ("Lua 5.4.6",
 * "LuaJIT 2.1.0-beta3"). Static strings. */
const char *ss_lua_engine(void);
const char *ss_lua_engine_name(void);

/* Appends to a syntax error's text in err (errlen bytes) what the
 * engine's language is, when it is not the default's (LuaJIT), so that a
 * Lua 5.3 script refused by LuaJIT says why. Leaves err unchanged if the
 * hint does not fit or the engine is Lua 5.4. */
void ss_lua_syntax_hint(char *err, size_t errlen);

/* Message handler for lua_pcall: appends a traceback to the error. */
int ss_lua_traceback(lua_State *L);

/* 1 if the keys of the table at stack index t (absolute) are exactly the
 * integers 1..len with len >= 1; the JSON and MessagePack codecs write such a
 * table as an array. Leaves the stack as it found it. */
int ss_lua_is_sequence(lua_State *L, int t, lua_Unsigned len);

/* Registers the C modules csv, json, log and files in package.preload of L
 * (called by ss_lua_new; exposed for tests). */
void ss_lua_preload_builtins(lua_State *L);

/* Lua C modules served by the runtime (ss_lua_mods.c, ss_csv.c, ...). */
int luaopen_ss_csv(lua_State *L);
int luaopen_ss_json(lua_State *L);
int luaopen_ss_log(lua_State *L);
int luaopen_ss_files(lua_State *L);

/* Makes a data file bundled with the stage's script (core/ss_bundle.h)
 * readable by the `files` module of L: files.read(name) returns a copy
 * of data[0..len), owned by L. Raises (a Lua memory error) only when L
 * is out of memory: call it protected or before the memory cap counts. */
void ss_lua_files_add(lua_State *L, const char *name, const char *data,
                      size_t len);

#endif
