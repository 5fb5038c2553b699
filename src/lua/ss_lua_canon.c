/*
 * ss_lua_canon.c - canonical MessagePack of plain Lua data (see
 * ss_lua_canon.h).
 *
 * A table is written after its keys were collected and sorted (the keys
 * stay referenced by the table, so the string pointers we keep are valid
 * while we write it). The path of the value being written is kept as one
 * short text per level, for the error message only.
 */
#include "lua/ss_lua_canon.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_PART 40

typedef struct canon {
    lua_State *L;
    ss_buf *b;
    const char *root;
    char *err;
    size_t errlen;
    const void *open[SS_MP_MAX_DEPTH + 2];   /* tables on the path */
    char part[SS_MP_MAX_DEPTH + 2][PATH_PART]; /* ".acc", "[3]" */
} canon;

/* One key of a map, as sorted. */
typedef struct ckey {
    int type; /* LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING */
    int isint;
    lua_Integer i;
    lua_Number d;
    const char *s;
    size_t len;
} ckey;

/* false < true < numbers (numeric order; an integer before an equal
 * float, which Lua cannot hold as two keys anyway) < strings (bytes). */
static int key_cmp(const void *pa, const void *pb)
{
    const ckey *a = pa, *b = pb;
    static const int rank[] = {[LUA_TBOOLEAN] = 0, [LUA_TNUMBER] = 1,
                               [LUA_TSTRING] = 2};
    if (a->type != b->type)
        return rank[a->type] - rank[b->type];
    if (a->type == LUA_TBOOLEAN)
        return (int)a->i - (int)b->i;
    if (a->type == LUA_TNUMBER) {
        if (a->isint && b->isint)
            return a->i < b->i ? -1 : a->i > b->i;
        lua_Number x = a->isint ? (lua_Number)a->i : a->d;
        lua_Number y = b->isint ? (lua_Number)b->i : b->d;
        if (x != y)
            return x < y ? -1 : 1;
        return b->isint - a->isint;
    }
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Writes "what (at root.path)" into err; returns SS_EENCODE. */
static int fail(canon *c, int depth, const char *what)
{
    if (c->err && c->errlen) {
        ss_buf p = SS_BUF_INIT;
        ss_buf_printf(&p, "%s", c->root);
        for (int d = 1; d <= depth && d <= SS_MP_MAX_DEPTH + 1; d++)
            ss_buf_printf(&p, "%s", c->part[d]);
        snprintf(c->err, c->errlen, "%s (at %s)", what,
                 p.data ? p.data : c->root);
        ss_buf_release(&p);
    }
    return SS_EENCODE;
}

/* The path text of key k at level depth: .name, ["text"], [3], [true]. */
static void name_part(canon *c, int depth, const ckey *k)
{
    char *o = c->part[depth];
    if (k->type == LUA_TBOOLEAN) {
        snprintf(o, PATH_PART, "[%s]", k->i ? "true" : "false");
    } else if (k->type == LUA_TNUMBER) {
        if (k->isint)
            snprintf(o, PATH_PART, "[%lld]", (long long)k->i);
        else
            snprintf(o, PATH_PART, "[%.17g]", (double)k->d);
    } else {
        int ident = k->len > 0 && k->len < PATH_PART - 2 &&
                    (isalpha((unsigned char)k->s[0]) || k->s[0] == '_');
        for (size_t i = 0; ident && i < k->len; i++)
            ident = isalnum((unsigned char)k->s[i]) || k->s[i] == '_';
        if (ident) {
            snprintf(o, PATH_PART, ".%.*s", (int)k->len, k->s);
        } else {
            /* a printable prefix only: the path goes into a log line */
            char t[24];
            size_t n = 0;
            for (size_t i = 0; i < k->len && n < sizeof t - 1; i++)
                t[n++] = isprint((unsigned char)k->s[i]) && k->s[i] != '"'
                             ? k->s[i]
                             : '?';
            t[n] = '\0';
            snprintf(o, PATH_PART, "[\"%s%s\"]", t,
                     n < k->len ? "..." : "");
        }
    }
}

static int enc_value(canon *c, int idx, int depth);

/* Writes the table at absolute index t, at level depth (>= 1). */
static int enc_table(canon *c, int t, int depth)
{
    lua_State *L = c->L;
    if (depth > SS_MP_MAX_DEPTH)
        return fail(c, depth - 1, "a table nested deeper than 32 levels");
    const void *self = lua_topointer(L, t);
    for (int d = 1; d < depth; d++)
        if (c->open[d] == self)
            return fail(c, depth - 1, "a table that contains itself (a "
                                      "cycle)");
    if (lua_getmetatable(L, t)) {
        lua_pop(L, 1);
        return fail(c, depth - 1, "a table with a metatable (its methods "
                                  "would be lost)");
    }
    c->open[depth] = self;
    if (!lua_checkstack(L, 4))
        return SS_ENOMEM;
    /* collect and check the keys */
    size_t n = 0, cap = 0;
    ckey *keys = NULL;
    int array = 1, rc = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1); /* the value */
        int kt = lua_type(L, -1);
        ckey k;
        memset(&k, 0, sizeof k);
        k.type = kt;
        if (kt == LUA_TBOOLEAN) {
            k.i = lua_toboolean(L, -1);
        } else if (kt == LUA_TNUMBER) {
            k.isint = lua_isinteger(L, -1);
            if (k.isint)
                k.i = lua_tointeger(L, -1);
            else
                k.d = lua_tonumber(L, -1);
        } else if (kt == LUA_TSTRING) {
            k.s = lua_tolstring(L, -1, &k.len); /* kept alive by t */
        } else {
            char what[64];
            snprintf(what, sizeof what, "a %s used as a table key",
                     luaL_typename(L, -1));
            lua_pop(L, 1);
            free(keys);
            return fail(c, depth - 1, what);
        }
        if (!k.isint || k.i < 1)
            array = 0;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            ckey *nk = realloc(keys, nc * sizeof *nk);
            if (!nk) {
                lua_pop(L, 1);
                free(keys);
                return SS_ENOMEM;
            }
            keys = nk;
            cap = nc;
        }
        keys[n++] = k;
    }
    if (n > UINT32_MAX) {
        free(keys);
        return fail(c, depth - 1, "a table with too many keys");
    }
    if (n > 1) /* (keys is NULL for an empty table) */
        qsort(keys, n, sizeof *keys, key_cmp);
    /* keys exactly 1..n: sorted, the last one is n */
    if (n == 0 || (array && keys[n - 1].i != (lua_Integer)n))
        array = 0;
    if (array) {
        rc = ss_mp_put_array(c->b, (uint32_t)n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            name_part(c, depth, &keys[i]);
            lua_rawgeti(L, t, (lua_Integer)i + 1);
            rc = enc_value(c, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
    } else {
        rc = ss_mp_put_map(c->b, (uint32_t)n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const ckey *k = &keys[i];
            name_part(c, depth, k);
            if (k->type == LUA_TBOOLEAN) {
                rc = ss_mp_put_bool(c->b, (int)k->i);
                lua_pushboolean(L, (int)k->i);
            } else if (k->type == LUA_TNUMBER && k->isint) {
                rc = ss_mp_put_int(c->b, (int64_t)k->i);
                lua_pushinteger(L, k->i);
            } else if (k->type == LUA_TNUMBER) {
                rc = ss_mp_put_double(c->b, (double)k->d);
                lua_pushnumber(L, k->d);
            } else {
                rc = ss_utf8_valid(k->s, k->len, NULL)
                         ? ss_mp_put_str(c->b, k->s, k->len)
                         : ss_mp_put_bin(c->b, k->s, k->len);
                lua_pushlstring(L, k->s, k->len);
            }
            lua_rawget(L, t);
            if (rc == 0)
                rc = enc_value(c, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
    }
    free(keys);
    c->open[depth] = NULL;
    return rc;
}

/* Writes the value at absolute index idx; depth is its table level. */
static int enc_value(canon *c, int idx, int depth)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return ss_mp_put_nil(c->b);
    case LUA_TBOOLEAN:
        return ss_mp_put_bool(c->b, lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return ss_mp_put_int(c->b, (int64_t)lua_tointeger(L, idx));
        return ss_mp_put_double(c->b, (double)lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return ss_utf8_valid(s, n, NULL) ? ss_mp_put_str(c->b, s, n)
                                         : ss_mp_put_bin(c->b, s, n);
    }
    case LUA_TTABLE:
        return enc_table(c, idx, depth + 1);
    default: {
        char what[64];
        snprintf(what, sizeof what, "a %s value", luaL_typename(L, idx));
        return fail(c, depth, what);
    }
    }
}

/* See ss_lua_canon.h. */
int ss_lua_canon_encode(lua_State *L, int idx, ss_buf *b, const char *root,
                        char *err, size_t errlen)
{
    canon c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.b = b;
    c.root = root ? root : "value";
    c.err = err;
    c.errlen = errlen;
    size_t mark = b->len;
    int top = lua_gettop(L);
    int rc = enc_value(&c, lua_absindex(L, idx), 0);
    lua_settop(L, top);
    if (rc) {
        b->len = mark;
        if (b->data)
            b->data[mark] = '\0';
        if (rc == SS_ENOMEM && err && errlen)
            snprintf(err, errlen, "out of memory while encoding %s",
                     c.root);
    }
    return rc;
}
