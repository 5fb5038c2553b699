/*
 * ss_lua.c - Lua states for user code: a memory cap enforced by the
 * allocator, an allow list of libraries, and the runtime's own modules
 * served from the binary (see ss_lua.h).
 */
#include "lua/ss_lua.h"
#include "core/ss_log.h"
#include "lua/ss_lua_embed.h"
#include "securestreams.h"

#include <errno.h>
#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Free lists in front of malloc for Lua 5.4's small blocks (see
 * capped_alloc). Not under a sanitizer: ASan must see every free to find
 * a use after it. SS_LUA_FREELIST_OFF=1 at build time turns them off too
 * (for a valgrind run that wants the same). */
#if defined(__SANITIZE_ADDRESS__)
#define SS_LUA_FREELIST_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_LUA_FREELIST_OFF 1
#endif
#endif
#if !defined(SS_LUA_FREELIST_OFF) && !defined(SS_LUAJIT)
#define SS_LUA_FREELIST 1
#endif
/* Class c holds blocks of at least 16 c + 8 usable bytes, c = 1..
 * FL_CLASSES: up to 264 bytes, which covers the tables, strings, nodes
 * and closures of an event. Every block Lua holds whose size n is in a
 * class was asked of malloc/realloc as 16 class(n) + 8 bytes (glibc's
 * chunk sizes are 16 k + 8 usable bytes: it gives that much anyway), so
 * that a block freed with Lua's osize goes to class(osize) without asking
 * malloc its size. At most FL_MAX_BYTES are held back in all, so what the
 * lists keep from the system is bounded and small beside the memory cap. */
#define FL_CLASSES 16
#define FL_MAX_BYTES (64 * 1024)

struct ss_lua {
    lua_State *L;
#ifdef SS_LUAJIT
    lua_Alloc base;  /* LuaJIT's own allocator, which capped_alloc wraps */
    void *base_ud;
#endif
    size_t used;
    size_t peak;
    size_t limit;
    int sandboxed;
    char component[64];
    void *codec; /* ss_lua_codec_slot */
#ifdef SS_LUA_FREELIST
    void *fl[FL_CLASSES + 1]; /* fl[c]: a list linked through each block's first word */
    size_t fl_bytes;          /* held in the lists, by class size */
#endif
};

#ifdef SS_LUA_FREELIST
/* The class whose every block fits n bytes, or 0 when n is too large. */
static inline size_t fl_class_for(size_t n)
{
    size_t c = n <= 24 ? 1 : (n - 8 + 15) / 16;
    return c <= FL_CLASSES ? c : 0;
}

/* A block Lua freed (of Lua's size osize) goes to its class's list if
 * there is room. */
static inline int fl_put(ss_lua *s, void *ptr, size_t osize)
{
    size_t c = fl_class_for(osize);
    if (!c)
        return 0;
    size_t cb = 16 * c + 8;
    if (s->fl_bytes + cb > FL_MAX_BYTES)
        return 0;
    *(void **)ptr = s->fl[c];
    s->fl[c] = ptr;
    s->fl_bytes += cb;
    return 1;
}

static void fl_drain(ss_lua *s)
{
    for (size_t c = 1; c <= FL_CLASSES; c++)
        while (s->fl[c]) {
            void *p = s->fl[c];
            s->fl[c] = *(void **)p;
            free(p);
        }
    s->fl_bytes = 0;
}
#endif

/* The allocator: refuses to grow past the cap so that Lua raises a
 * "not enough memory" error inside the user's pcall instead of the
 * process being killed. s->used counts exactly the bytes Lua holds,
 * whatever the free lists keep (Lua 5.4): a freed small block is kept
 * for the next allocation of its class instead of going back to malloc,
 * which cost about 150 instructions a pair in malloc and free, and a new
 * block is taken from malloc, not realloc(NULL, n). */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ss_lua *s = ud;
    size_t old = ptr ? osize : 0;
#ifdef SS_LUAJIT
    if (nsize == 0) {
        s->base(s->base_ud, ptr, osize, 0);
        s->used -= old < s->used ? old : s->used;
        return NULL;
    }
    if (s->limit && nsize > old && s->used - old + nsize > s->limit)
        return NULL;
    void *p = s->base(s->base_ud, ptr, osize, nsize);
#else
    if (nsize == 0) {
#ifdef SS_LUA_FREELIST
        if (ptr && !fl_put(s, ptr, osize))
            free(ptr);
#else
        free(ptr);
#endif
        s->used -= old;
        return NULL;
    }
    void *p;
#ifdef SS_LUA_FREELIST
    size_t c = fl_class_for(nsize);
    if (!ptr && c && (p = s->fl[c]) != NULL) {
        /* the usual case: a small new block from its list */
        if (s->limit && s->used + nsize > s->limit)
            return NULL;
        s->fl[c] = *(void **)p;
        s->fl_bytes -= 16 * c + 8;
        s->used += nsize;
        if (s->used > s->peak)
            s->peak = s->used;
        return p;
    }
    if (s->limit && nsize > old && s->used - old + nsize > s->limit)
        return NULL;
    size_t ask = c ? 16 * c + 8 : nsize; /* see FL_CLASSES */
    p = ptr ? realloc(ptr, ask) : malloc(ask);
#else
    if (s->limit && nsize > old && s->used - old + nsize > s->limit)
        return NULL;
    p = ptr ? realloc(ptr, nsize) : malloc(nsize);
#endif
#endif
    if (!p)
        return NULL;
    s->used = s->used - old + nsize;
    if (s->used > s->peak)
        s->peak = s->used;
    return p;
}

static int panic_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    ss_fatal("unprotected lua error: %s", msg ? msg : "?");
    return 0; /* lua aborts after this */
}

/* package.preload loader for a module embedded in the binary. */
static int load_embedded(lua_State *L)
{
    const ss_lua_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
    char chunk[96];
    snprintf(chunk, sizeof chunk, "=[builtin %s]", m->name);
    if (luaL_loadbufferx(L, m->src, m->len, chunk, "t") != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1);
    return 1;
}

/* See ss_lua.h. */
void ss_lua_preload_builtins(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const ss_lua_embedded *m = ss_lua_embedded_modules; m->name; m++) {
        lua_pushlightuserdata(L, (void *)m);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_pushcfunction(L, luaopen_ss_csv);
    lua_setfield(L, -2, "csv");
    lua_pushcfunction(L, luaopen_ss_json);
    lua_setfield(L, -2, "json");
    lua_pushcfunction(L, luaopen_ss_log);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, luaopen_ss_files);
    lua_setfield(L, -2, "files");
    lua_pop(L, 1);
}

/* load() restricted to text chunks: binary chunks can break the VM. */
static int safe_load(lua_State *L)
{
    int nargs = lua_gettop(L);
    if (nargs >= 3 && !lua_isnil(L, 3)) {
        const char *mode = luaL_checkstring(L, 3);
        if (strchr(mode, 'b'))
            return luaL_error(L, "load: binary chunks are not allowed");
    }
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

/* print() inside a sandbox: one line in the component's log (the host's
 * stderr), at most SS_LUA_PRINT_MAX bytes of text; the rest is cut and
 * counted. The arguments become strings in their own stack slots first
 * (anchored), so that nothing is pushed while the luaL_Buffer is in use
 * (its box may sit on top of the stack). */
static int log_print(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        lua_replace(L, i);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0, cut = 0;
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        if (i > 1) {
            if (total < SS_LUA_PRINT_MAX) {
                luaL_addchar(&b, '\t');
                total++;
            } else {
                cut++;
            }
        }
        size_t room = SS_LUA_PRINT_MAX - total;
        size_t take = len < room ? len : room;
        luaL_addlstring(&b, s, take);
        total += take;
        cut += len - take;
    }
    luaL_pushresult(&b);
    if (cut)
        ss_info("%s [... %zu bytes cut]", lua_tostring(L, -1), cut);
    else
        ss_info("%s", lua_tostring(L, -1));
    return 0;
}

/* os.getenv() inside a sandbox: always nil. The host's environment is
 * untrusted and not measured, so it must not steer the script; stage
 * scripts read FROM/TO only for addresses, which the host decides. */
static int no_getenv(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_pushnil(L);
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
    luaL_requiref(L, name, fn, 1);
    lua_pop(L, 1);
}

/* Removes every package searcher but the first (preload): no file or C
 * module loading. The list is package.searchers (5.4) or
 * package.loaders (LuaJIT). */
static void keep_preload_searcher(lua_State *L, const char *field)
{
    if (lua_getfield(L, -1, field) == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = n; i >= 2; i--) {
            lua_pushnil(L);
            lua_rawseti(L, -2, i);
        }
    }
    lua_pop(L, 1);
}

/* The enclave's library set: no io, no debug, no dynamic loading; os has
 * the clock and calendar functions and a getenv that finds nothing. On
 * LuaJIT also no ffi (raw memory) and no jit module, and base includes
 * coroutine; there is no utf8 library. */
static void open_sandboxed(lua_State *L)
{
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_LOADLIBNAME, luaopen_package);
#ifdef SS_LUAJIT
    open_lib(L, LUA_BITLIBNAME, luaopen_bit);
#else
    open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
#endif
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);

    /* os: only the clock and calendar functions */
    lua_pushcfunction(L, luaopen_os);
    lua_pushliteral(L, "os");
    lua_call(L, 1, 1);
    lua_newtable(L);
    static const char *const keep[] = {"clock", "time", "date", "difftime",
                                       NULL};
    for (int i = 0; keep[i]; i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    lua_pushcfunction(L, no_getenv);
    lua_setfield(L, -2, "getenv");
    lua_setglobal(L, "os");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getglobal(L, "os");
    lua_setfield(L, -2, "os");
    lua_pop(L, 1);

    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, log_print);
    lua_setglobal(L, "print");

    /* package: only preload, no file or C searchers, no loadlib */
    lua_getglobal(L, "package");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadlib");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    keep_preload_searcher(L, "searchers");
    keep_preload_searcher(L, "loaders");
    lua_pop(L, 1);
}

#ifdef SS_LUAJIT
/* table.pack for LuaJIT: {n = select('#', ...), ...}. */
static int compat_pack(lua_State *L)
{
    int n = lua_gettop(L);
    lua_createtable(L, n, 1);
    lua_insert(L, 1);
    for (int i = n; i >= 1; i--)
        lua_rawseti(L, 1, i);
    lua_pushinteger(L, n);
    lua_setfield(L, 1, "n");
    return 1;
}

/* math.tointeger for LuaJIT: the number if its value is integral (there
 * is no integer subtype: see ss_lua_api.h), else nil (fail). */
static int compat_tointeger(lua_State *L)
{
    if (lua_isinteger(L, 1))
        lua_pushvalue(L, 1);
    else
        lua_pushnil(L);
    return 1;
}

/* pairs for LuaJIT honouring __pairs as 5.2+ does (LuaJIT's own ignores
 * it); otherwise next, t, nil with the builtin next (upvalue 1). */
static int compat_pairs(lua_State *L)
{
    luaL_checkany(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs")) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* The few 5.2/5.3 library functions the runtime's modules and the
 * seed's scripts use and that LuaJIT lacks: table.pack, table.unpack,
 * math.tointeger, and pairs honouring __pairs (docs/LUA.md, "Engines"). */
static void open_compat(lua_State *L)
{
    lua_getglobal(L, "next");
    lua_pushcclosure(L, compat_pairs, 1);
    lua_setglobal(L, "pairs");
    lua_getglobal(L, "table");
    lua_pushcfunction(L, compat_pack);
    lua_setfield(L, -2, "pack");
    lua_getglobal(L, "unpack");
    lua_setfield(L, -2, "unpack");
    lua_pop(L, 1);
    lua_getglobal(L, "math");
    lua_pushcfunction(L, compat_tointeger);
    lua_setfield(L, -2, "tointeger");
    lua_pop(L, 1);
}

/* Whether the JIT compiler runs in an unsandboxed state: yes unless
 * SS_LUAJIT=off (a measuring switch, see docs/LUA.md). */
static int jit_wanted(void)
{
    const char *v = getenv("SS_LUAJIT");
    return !(v && strcmp(v, "off") == 0);
}
#endif

/* See ss_lua.h. */
int ss_lua_new(const ss_lua_opts *o, ss_lua **out)
{
    *out = NULL;
    ss_lua *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    if (o) {
        s->limit = o->mem_limit;
        s->sandboxed = o->sandboxed;
        snprintf(s->component, sizeof s->component, "%s",
                 o->component ? o->component : "lua");
    }
#ifdef SS_LUAJIT
    /* LuaJIT's own allocator is much faster than malloc for its small
     * objects (-1/4 of the instructions of the map stage): keep it and
     * put the cap in front of it, counting from what the new state holds
     * already. */
    s->L = luaL_newstate();
    if (!s->L) {
        free(s);
        return SS_ENOMEM;
    }
    s->base = lua_getallocf(s->L, &s->base_ud);
    s->used = (size_t)lua_gc(s->L, LUA_GCCOUNT, 0) * 1024 +
              (size_t)lua_gc(s->L, LUA_GCCOUNTB, 0);
    s->peak = s->used;
    lua_setallocf(s->L, capped_alloc, s);
#else
    s->L = lua_newstate(capped_alloc, s);
    if (!s->L) {
        free(s);
        return SS_ENOMEM;
    }
#endif
    lua_State *L = s->L;
    lua_atpanic(L, panic_handler);
    lua_gc(L, LUA_GCGEN, 0, 0); /* generational: short-lived events */
    if (s->sandboxed)
        open_sandboxed(L);
    else
        luaL_openlibs(L);
    /* every state: load() takes text only */
    lua_getglobal(L, "load");
    lua_pushcclosure(L, safe_load, 1);
#ifdef SS_LUAJIT
    open_compat(L);
    /* loadstring is load under its 5.1 name: text only too */
    lua_pushvalue(L, -1);
    lua_setglobal(L, "loadstring");
    /* The enclave runs interpreted: an SGX1 enclave cannot make pages
     * executable after it starts, and the sandbox's seccomp filter
     * refuses PROT_EXEC the same way, so its JIT must never start.
     * (LuaJIT turns its JIT on in luaopen_jit, which the sandbox does
     * not call; this says it explicitly.) */
    if (s->sandboxed || !jit_wanted())
        luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
#endif
    lua_setglobal(L, "load");
    ss_lua_preload_builtins(L);
    *out = s;
    return 0;
}

/* See ss_lua.h. */
void ss_lua_destroy(ss_lua **p)
{
    if (!p || !*p)
        return;
    if ((*p)->L)
        lua_close((*p)->L);
#ifdef SS_LUA_FREELIST
    fl_drain(*p);
#endif
    free((*p)->codec);
    free(*p);
    *p = NULL;
}

/* See ss_lua.h. */
lua_State *ss_lua_state(ss_lua *s) { return s->L; }
/* See ss_lua.h. */
size_t ss_lua_mem_peak(const ss_lua *s) { return s->peak; }
/* See ss_lua.h. */
size_t ss_lua_mem_used(const ss_lua *s) { return s->used; }

/* See ss_lua.h. */
void **ss_lua_codec_slot(lua_State *L)
{
    void *ud;
    if (lua_getallocf(L, &ud) != capped_alloc)
        return NULL;
    return &((ss_lua *)ud)->codec;
}

/* See ss_lua.h. */
int ss_lua_is_sequence(lua_State *L, int t, lua_Unsigned len)
{
    if (len == 0)
        return 0;
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_Integer k;
        if (!lua_isinteger(L, -2) || (k = lua_tointeger(L, -2)) < 1 ||
            (lua_Unsigned)k > len) {
            lua_pop(L, 2);
            return 0;
        }
        count++;
        lua_pop(L, 1);
    }
    return count == len;
}

int ss_lua_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") &&
            lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* See ss_lua.h. */
const char *ss_lua_engine(void) { return SS_LUA_ENGINE_KEY; }
/* See ss_lua.h. */
const char *ss_lua_engine_name(void) { return SS_LUA_ENGINE; }

/* See ss_lua.h. */
void ss_lua_syntax_hint(char *err, size_t errlen)
{
    size_t n = strlen(err), h = strlen(SS_LUA_SYNTAX_HINT);
    if (h && n + h < errlen)
        memcpy(err + n, SS_LUA_SYNTAX_HINT, h + 1);
}

/* Copies the first line of the message at the top of L into err. */
static void first_line(lua_State *L, char *err, size_t errlen)
{
    const char *m = lua_tostring(L, -1);
    if (!m)
        m = "(error object is not a string)";
    size_t n = strcspn(m, "\n");
    if (n >= errlen)
        n = errlen - 1;
    memcpy(err, m, n);
    err[n] = '\0';
}

static int run_loaded(lua_State *L, int st, char *err, size_t errlen)
{
    if (st == LUA_OK) {
        lua_pushcfunction(L, ss_lua_traceback);
        lua_insert(L, -2);
        st = lua_pcall(L, 0, 0, -2);
        if (st == LUA_OK) {
            lua_pop(L, 1);
            return 0;
        }
        first_line(L, err, errlen);
        lua_pop(L, 2);
        return st == LUA_ERRMEM ? SS_ENOMEM : SS_ELUA;
    }
    first_line(L, err, errlen);
    if (st == LUA_ERRSYNTAX)
        ss_lua_syntax_hint(err, errlen);
    lua_pop(L, 1);
    return st == LUA_ERRMEM ? SS_ENOMEM : st == LUA_ERRFILE ? SS_EIO
                                                            : SS_ELUA;
}

/* See ss_lua.h. */
int ss_lua_dostring(ss_lua *s, const char *src, size_t len,
                    const char *chunkname, char *err, size_t errlen)
{
    int st = luaL_loadbufferx(s->L, src, len, chunkname, "t");
    return run_loaded(s->L, st, err, errlen);
}

/* See ss_lua.h. */
void ss_lua_push_env(lua_State *L)
{
    /* reads fall back to the state's globals as they were before any
     * script ran (SS_LUA_PRISTINE), else as they are */
    lua_createtable(L, 0, 8);
    lua_createtable(L, 0, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, SS_LUA_PRISTINE);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushglobaltable(L);
    }
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1); /* its _G is itself, not the state's globals */
    lua_setfield(L, -2, "_G");
}

/* See ss_lua.h. */
void ss_lua_set_chunk_env(lua_State *L, int fidx, int env)
{
    fidx = lua_absindex(L, fidx);
    lua_pushvalue(L, env);
#ifdef SS_LUAJIT
    lua_setfenv(L, fidx);
#else
    if (!lua_setupvalue(L, fidx, 1)) /* a main chunk's first is _ENV */
        lua_pop(L, 1);
#endif
}

/* See ss_lua.h. */
int ss_lua_dostring_env(lua_State *L, const char *src, size_t len,
                        const char *chunkname, char *err, size_t errlen)
{
    ss_lua_push_env(L);
    int rc = ss_lua_dostring_in(L, src, len, chunkname, -1, err, errlen);
    lua_pop(L, 1);
    return rc;
}

/* See ss_lua.h. */
int ss_lua_dostring_in(lua_State *L, const char *src, size_t len,
                       const char *chunkname, int env, char *err,
                       size_t errlen)
{
    env = lua_absindex(L, env);
    int st = luaL_loadbufferx(L, src, len, chunkname, "t");
    if (st == LUA_OK) {
        lua_pushvalue(L, env);
#ifdef SS_LUAJIT
        lua_setfenv(L, -2);
#else
        if (!lua_setupvalue(L, -2, 1)) /* a main chunk's first is _ENV */
            lua_pop(L, 1);
#endif
    }
    return run_loaded(L, st, err, errlen);
}

/* See ss_lua.h. */
size_t ss_lua_mem_limit(const ss_lua *s) { return s->limit; }

/* See ss_lua.h. */
void ss_lua_set_mem_limit(ss_lua *s, size_t limit) { s->limit = limit; }
