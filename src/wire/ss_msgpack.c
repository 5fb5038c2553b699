/*
 * ss_msgpack.c - MessagePack for Lua values (see ss_msgpack.h).
 *
 * Hand-written because it is the hot path: the encoder walks a table once
 * with lua_next (a table whose keys come out as 1, 2, 3... is written as
 * an array on the fly; anything else falls back to a map, after a full
 * sequence check only when an integer key came out of order), and writes
 * a one-byte container header that is widened afterwards in the rare
 * case of more than 15 elements. The decoder parses each header once
 * (read_head) and pushes straight onto the Lua stack; the same header
 * parser serves skip/validate and to_json, so that all three accept the
 * same bytes. A lazy CSV row (csv.parse, ss_csv.h) is written as the
 * array of its fields straight from its line, without Lua strings.
 */
#include "wire/ss_msgpack.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_csv.h"

#include <lauxlib.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* writing                                                             */

/* Makes room for k more bytes (plus ss_buf's spare byte). */
static inline int reserve(ss_buf *b, size_t k)
{
    if (b->cap - b->len > k)
        return 0;
    return ss_buf_grow(b, k);
}

static inline void put_be16(char *q, uint32_t v)
{
    q[0] = (char)(v >> 8);
    q[1] = (char)v;
}

static inline void put_be32(char *q, uint32_t v)
{
    q[0] = (char)(v >> 24);
    q[1] = (char)(v >> 16);
    q[2] = (char)(v >> 8);
    q[3] = (char)v;
}

static inline void put_be64(char *q, uint64_t v)
{
    put_be32(q, (uint32_t)(v >> 32));
    put_be32(q + 4, (uint32_t)v);
}

static inline int put1(ss_buf *b, uint8_t c)
{
    if (reserve(b, 1))
        return SS_ENOMEM;
    b->data[b->len++] = (char)c;
    return 0;
}

static inline int put_uint(ss_buf *b, uint64_t v)
{
    if (reserve(b, 9))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (v <= 0x7f) {
        q[0] = (char)v;
        b->len += 1;
    } else if (v <= 0xff) {
        q[0] = (char)0xcc;
        q[1] = (char)v;
        b->len += 2;
    } else if (v <= 0xffff) {
        q[0] = (char)0xcd;
        put_be16(q + 1, (uint32_t)v);
        b->len += 3;
    } else if (v <= 0xffffffffu) {
        q[0] = (char)0xce;
        put_be32(q + 1, (uint32_t)v);
        b->len += 5;
    } else {
        q[0] = (char)0xcf;
        put_be64(q + 1, v);
        b->len += 9;
    }
    return 0;
}

static inline int put_int(ss_buf *b, int64_t v)
{
    if (v >= 0)
        return put_uint(b, (uint64_t)v);
    if (reserve(b, 9))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (v >= -32) {
        q[0] = (char)(uint8_t)v; /* negative fixint: 0xe0..0xff */
        b->len += 1;
    } else if (v >= INT8_MIN) {
        q[0] = (char)0xd0;
        q[1] = (char)(uint8_t)v;
        b->len += 2;
    } else if (v >= INT16_MIN) {
        q[0] = (char)0xd1;
        put_be16(q + 1, (uint32_t)(uint16_t)v);
        b->len += 3;
    } else if (v >= INT32_MIN) {
        q[0] = (char)0xd2;
        put_be32(q + 1, (uint32_t)v);
        b->len += 5;
    } else {
        q[0] = (char)0xd3;
        put_be64(q + 1, (uint64_t)v);
        b->len += 9;
    }
    return 0;
}

static inline int put_double(ss_buf *b, double v)
{
    if (reserve(b, 9))
        return SS_ENOMEM;
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    b->data[b->len] = (char)0xcb;
    put_be64(b->data + b->len + 1, u);
    b->len += 9;
    return 0;
}

/* Writes a str (bin: 0) header and the bytes. n <= UINT32_MAX. */
static inline int put_bytes(ss_buf *b, const char *s, size_t n, int str)
{
    if (reserve(b, n + 5))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    size_t h;
    if (str && n <= 31) {
        q[0] = (char)(0xa0 | n);
        h = 1;
    } else if (n <= 0xff) {
        q[0] = (char)(str ? 0xd9 : 0xc4);
        q[1] = (char)n;
        h = 2;
    } else if (n <= 0xffff) {
        q[0] = (char)(str ? 0xda : 0xc5);
        put_be16(q + 1, (uint32_t)n);
        h = 3;
    } else {
        q[0] = (char)(str ? 0xdb : 0xc6);
        put_be32(q + 1, (uint32_t)n);
        h = 5;
    }
    if (n)
        memcpy(q + h, s, n);
    b->len += h + n;
    return 0;
}

/* Whether s is valid UTF-8, with a word-at-a-time ASCII fast path. */
static inline int is_utf8(const char *s, size_t n)
{
    const uint64_t hi = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, s + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & hi)
            return ss_utf8_valid(s + i, n - i, NULL);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & hi)
            return ss_utf8_valid(s + i, n - i, NULL);
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] & 0x80)
            return ss_utf8_valid(s + i, n - i, NULL);
    return 1;
}

/* Writes the header of a container whose count was unknown when its
 * elements were written: one byte was reserved at start; widen it. */
static int fix_header(ss_buf *b, size_t start, int map, uint64_t count)
{
    if (count <= 15) {
        b->data[start] = (char)((map ? 0x80 : 0x90) | count);
        return 0;
    }
    size_t extra = count <= 0xffff ? 2 : 4;
    if (reserve(b, extra))
        return SS_ENOMEM;
    size_t body = b->len - start - 1;
    memmove(b->data + start + 1 + extra, b->data + start + 1, body);
    b->len += extra;
    if (extra == 2) {
        b->data[start] = (char)(map ? 0xde : 0xdc);
        put_be16(b->data + start + 1, (uint32_t)count);
    } else {
        b->data[start] = (char)(map ? 0xdf : 0xdd);
        put_be32(b->data + start + 1, (uint32_t)count);
    }
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_put_str(ss_buf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return SS_ETOOBIG;
    return put_bytes(b, s, n, 1);
}

/* See ss_msgpack.h. */
int ss_mp_put_bin(ss_buf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return SS_ETOOBIG;
    return put_bytes(b, s, n, 0);
}

/* See ss_msgpack.h. */
int ss_mp_put_nil(ss_buf *b) { return put1(b, 0xc0); }

/* See ss_msgpack.h. */
int ss_mp_put_bool(ss_buf *b, int v) { return put1(b, v ? 0xc3 : 0xc2); }

/* See ss_msgpack.h. */
int ss_mp_put_int(ss_buf *b, int64_t v) { return put_int(b, v); }

/* See ss_msgpack.h. */
int ss_mp_put_uint(ss_buf *b, uint64_t v) { return put_uint(b, v); }

/* See ss_msgpack.h. */
int ss_mp_put_double(ss_buf *b, double v) { return put_double(b, v); }

static int put_container(ss_buf *b, uint32_t count, int map)
{
    if (reserve(b, 5))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (count <= 15) {
        q[0] = (char)((map ? 0x80 : 0x90) | count);
        b->len += 1;
    } else if (count <= 0xffff) {
        q[0] = (char)(map ? 0xde : 0xdc);
        put_be16(q + 1, count);
        b->len += 3;
    } else {
        q[0] = (char)(map ? 0xdf : 0xdd);
        put_be32(q + 1, count);
        b->len += 5;
    }
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_put_array(ss_buf *b, uint32_t count)
{
    return put_container(b, count, 0);
}

/* See ss_msgpack.h. */
int ss_mp_put_map(ss_buf *b, uint32_t count)
{
    return put_container(b, count, 1);
}

/* ------------------------------------------------------------------ */
/* Lua -> MessagePack                                                  */

typedef struct mp_enc {
    lua_State *L;
    ss_buf *b;
    const char *root;
    char *err;
    size_t errlen;
    /* path[d]: how the table at depth d was entered from its parent:
     * the stack index of the key, or 0 and ikey for an array index */
    int keyidx[SS_MP_MAX_DEPTH + 2];
    lua_Integer ikey[SS_MP_MAX_DEPTH + 2];
} mp_enc;

static int is_ident(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') ||
                 (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Appends ".name", "[3]", "[\"a b\"]"... for the key at stack index k. */
static void path_key(lua_State *L, int k, ss_buf *pb)
{
    size_t n;
    const char *s;
    switch (lua_type(L, k)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, k, &n);
        if (is_ident(s, n))
            ss_buf_printf(pb, ".%.*s", (int)n, s);
        else
            ss_buf_printf(pb, "[\"%.*s%s\"]", n > 24 ? 24 : (int)n, s,
                          n > 24 ? "..." : "");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, k))
            ss_buf_printf(pb, "[%lld]", (long long)lua_tointeger(L, k));
        else
            ss_buf_printf(pb, "[%g]", (double)lua_tonumber(L, k));
        break;
    case LUA_TBOOLEAN:
        ss_buf_printf(pb, "[%s]", lua_toboolean(L, k) ? "true" : "false");
        break;
    default:
        ss_buf_printf(pb, "[%s]", luaL_typename(L, k));
        break;
    }
}

/* Writes "<what> (at root.a[2].b)" into e->err; keys 1..depth name the
 * place. Returns rc. */
static int enc_fail(mp_enc *e, int depth, int rc, const char *what)
{
    if (!e->err || !e->errlen)
        return rc;
    ss_buf pb = SS_BUF_INIT;
    ss_buf_printf(&pb, "%s", e->root);
    for (int d = 1; d <= depth && pb.len < 200; d++) {
        if (e->keyidx[d])
            path_key(e->L, e->keyidx[d], &pb);
        else
            ss_buf_printf(&pb, "[%lld]", (long long)e->ikey[d]);
    }
    const char *path = pb.data ? pb.data : e->root;
    int cut = pb.len >= 200;
    if (what[0] && what[strlen(what) - 1] == ')') /* "(depth > 32)" */
        snprintf(e->err, e->errlen, "%.*s, at %s%s)",
                 (int)strlen(what) - 1, what, path, cut ? "..." : "");
    else
        snprintf(e->err, e->errlen, "%s (at %s%s)", what, path,
                 cut ? "..." : "");
    ss_buf_release(&pb);
    return rc;
}

static int enc_nomem(mp_enc *e, int depth)
{
    return enc_fail(e, depth, SS_ENOMEM, "out of memory");
}

static int enc_typed(mp_enc *e, int idx, int type, int depth);

/* Writes the value at absolute index idx, found depth keys down from the
 * root. */
static inline int enc_value(mp_enc *e, int idx, int depth)
{
    return enc_typed(e, idx, lua_type(e->L, idx), depth);
}

/* 1 if the keys of table t are exactly the integers 1..len. */
static int is_sequence(lua_State *L, int t, lua_Unsigned len)
{
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

/* Writes the elements 1..len of sequence t (header reserved at start). */
static int enc_array_indexed(mp_enc *e, int t, int depth, size_t start,
                             lua_Unsigned len)
{
    lua_State *L = e->L;
    if (len > UINT32_MAX)
        return enc_fail(e, depth - 1, SS_EENCODE, "table too large");
    e->keyidx[depth] = 0;
    for (lua_Unsigned i = 1; i <= len; i++) {
        lua_rawgeti(L, t, (lua_Integer)i);
        e->ikey[depth] = (lua_Integer)i;
        int rc = enc_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        if (rc)
            return rc;
    }
    if (fix_header(e->b, start, 0, len))
        return enc_nomem(e, depth - 1);
    return 0;
}

/* Writes table t as a map (header reserved at start). When have_pair, a
 * key and value from lua_next are on top of the stack already. */
static int enc_map(mp_enc *e, int t, int depth, size_t start, int have_pair)
{
    lua_State *L = e->L;
    uint64_t count = 0;
    if (!have_pair) {
        lua_pushnil(L);
        if (!lua_next(L, t))
            goto done;
    }
    int top = lua_gettop(L); /* lua_next keeps key and value here */
    do {
        int kt = lua_type(L, top - 1);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN &&
            kt != LUA_TTABLE) {
            char what[64];
            snprintf(what, sizeof what, "cannot send a %s key",
                     kt == LUA_TLIGHTUSERDATA ? "light userdata"
                                              : lua_typename(L, kt));
            lua_pop(L, 2);
            return enc_fail(e, depth - 1, SS_EENCODE, what);
        }
        e->keyidx[depth] = top - 1;
        int rc = enc_typed(e, top - 1, kt, depth);
        if (!rc)
            rc = enc_value(e, top, depth);
        if (rc) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
        count++;
    } while (lua_next(L, t));
done:
    if (count > UINT32_MAX)
        return enc_fail(e, depth - 1, SS_EENCODE, "table too large");
    if (fix_header(e->b, start, 1, count))
        return enc_nomem(e, depth - 1);
    return 0;
}

/* Writes the str/bin of a field a CSV cursor returned, "" unescaped. */
static inline int put_csv_field(ss_buf *b, const char *f, size_t len,
                                size_t dq)
{
    int str = is_utf8(f, len); /* dropping ASCII quotes keeps it so */
    if (put_bytes(b, f, len - dq, str))
        return SS_ENOMEM;
    if (dq) /* put_bytes copied len - dq raw bytes: the text goes there */
        ss_csv_unescape(b->data + b->len - (len - dq), f, len);
    return 0;
}

/* Writes the lazy CSV row t (ss_csv.h) as the array of its fields: what
 * the row holds at an index wins over the line's text. */
static int enc_row(mp_enc *e, int t, int depth, const char *line, size_t n,
                   char sep)
{
    lua_State *L = e->L;
    ss_buf *b = e->b;
    size_t start = b->len;
    if (reserve(b, 1))
        return enc_nomem(e, depth - 1);
    b->len++;
    ss_csv_cursor c;
    ss_csv_cursor_init(&c, line, n, sep);
    e->keyidx[depth] = 0;
    lua_Integer i = 0;
    const char *f;
    size_t fl, dq;
    while (ss_csv_cursor_next(&c, &f, &fl, &dq)) {
        e->ikey[depth] = ++i;
        if (lua_rawgeti(L, t, i) != LUA_TNIL) {
            int rc = enc_value(e, lua_gettop(L), depth);
            lua_pop(L, 1);
            if (rc)
                return rc;
            continue;
        }
        lua_pop(L, 1);
        if (fl - dq > UINT32_MAX)
            return enc_fail(e, depth, SS_EENCODE, "string too long");
        if (put_csv_field(b, f, fl, dq))
            return enc_nomem(e, depth);
    }
    if (fix_header(b, start, 0, (uint64_t)i))
        return enc_nomem(e, depth - 1);
    return 0;
}

/* Writes table t, which sits at depth (1 = outermost). */
static int enc_table(mp_enc *e, int t, int depth)
{
    lua_State *L = e->L;
    ss_buf *b = e->b;
    if (depth > SS_MP_MAX_DEPTH) {
        char what[80];
        snprintf(what, sizeof what,
                 "cyclic or too deeply nested table (depth > %d)",
                 SS_MP_MAX_DEPTH);
        return enc_fail(e, depth - 1, SS_EENCODE, what);
    }
    if (!lua_checkstack(L, 4))
        return enc_fail(e, depth - 1, SS_ENOMEM, "Lua stack overflow");
    const char *line;
    size_t ln;
    char sep;
    int row = ss_csv_lua_row(L, t, &line, &ln, &sep);
    if (row)
        return row < 0 ? enc_fail(e, depth - 1, SS_EENCODE,
                                  "damaged csv row: its line was replaced")
                       : enc_row(e, t, depth, line, ln, sep);
    size_t start = b->len;
    if (reserve(b, 1))
        return enc_nomem(e, depth - 1);
    b->len++;
    lua_Integer i = 0;
    lua_pushnil(L);
    int top = lua_gettop(L) + 1; /* where lua_next leaves the value */
    while (lua_next(L, t)) {
        int isint = lua_isinteger(L, top - 1);
        if (isint && lua_tointeger(L, top - 1) == i + 1) {
            e->keyidx[depth] = top - 1;
            int rc = enc_value(e, top, depth);
            lua_pop(L, 1);
            if (rc) {
                lua_pop(L, 1);
                return rc;
            }
            i++;
            continue;
        }
        /* Keys did not come out as 1, 2, 3...: a map, unless this is a
         * sequence stored out of order (e.g. filled from the end). */
        if (isint) {
            lua_Integer k = lua_tointeger(L, top - 1);
            lua_Unsigned len = lua_rawlen(L, t);
            if (k >= 1 && (lua_Unsigned)k <= len && is_sequence(L, t, len)) {
                lua_pop(L, 2);
                b->len = start + 1;
                return enc_array_indexed(e, t, depth, start, len);
            }
        }
        if (i == 0)
            return enc_map(e, t, depth, start, 1);
        lua_pop(L, 2);
        b->len = start + 1;
        return enc_map(e, t, depth, start, 0);
    }
    if (i == 0) { /* the empty table */
        b->data[start] = (char)0x80;
        return 0;
    }
    if (fix_header(b, start, 0, (uint64_t)i))
        return enc_nomem(e, depth - 1);
    return 0;
}

/* enc_value for a value whose lua_type is known. */
static int enc_typed(mp_enc *e, int idx, int type, int depth)
{
    lua_State *L = e->L;
    int rc;
    switch (type) {
    case LUA_TNIL:
        rc = put1(e->b, 0xc0);
        break;
    case LUA_TBOOLEAN:
        rc = put1(e->b, lua_toboolean(L, idx) ? 0xc3 : 0xc2);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            rc = put_int(e->b, (int64_t)lua_tointeger(L, idx));
        else
            rc = put_double(e->b, (double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (n > UINT32_MAX)
            return enc_fail(e, depth, SS_EENCODE, "string too long");
        rc = put_bytes(e->b, s, n, is_utf8(s, n));
        break;
    }
    case LUA_TTABLE:
        return enc_table(e, idx, depth + 1);
    case LUA_TLIGHTUSERDATA:
        return enc_fail(e, depth, SS_EENCODE,
                        "cannot send a light userdata value");
    case LUA_TNONE:
        if (e->err && e->errlen)
            snprintf(e->err, e->errlen, "no value at stack index %d", idx);
        return SS_EINVAL;
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot send a %s value",
                 luaL_typename(L, idx));
        return enc_fail(e, depth, SS_EENCODE, what);
    }
    }
    if (rc)
        return enc_nomem(e, depth);
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_encode_lua_as(lua_State *L, int idx, ss_buf *b, const char *root,
                        char *err, size_t errlen)
{
    mp_enc e;
    e.L = L;
    e.b = b;
    e.root = root ? root : "value";
    e.err = err;
    e.errlen = errlen;
    e.keyidx[0] = 0;
    e.ikey[0] = 0;
    if (err && errlen)
        err[0] = '\0';
    size_t start = b->len;
    int top = lua_gettop(L);
    int rc = enc_value(&e, lua_absindex(L, idx), 0);
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
        lua_settop(L, top);
    }
    return rc;
}

/* See ss_msgpack.h. */
int ss_mp_encode_lua(lua_State *L, int idx, ss_buf *b, char *err,
                     size_t errlen)
{
    return ss_mp_encode_lua_as(L, idx, b, "event", err, errlen);
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

enum { H_NIL, H_BOOL, H_INT, H_UINT, H_FLOAT, H_STR, H_BIN, H_ARRAY,
       H_MAP };

typedef struct mp_head {
    int kind;
    int64_t i;     /* H_INT; H_BOOL: 0/1 */
    uint64_t u;    /* H_UINT: a uint64 above INT64_MAX */
    double f;      /* H_FLOAT */
    uint32_t len;  /* H_STR/H_BIN: bytes; H_ARRAY/H_MAP: elements/pairs */
    const char *s; /* H_STR/H_BIN: the bytes, inside the input */
} mp_head;

typedef struct mp_dec {
    lua_State *L; /* NULL when only checking */
    const uint8_t *p;
    size_t n;
    size_t off;
    char *err;
    size_t errlen;
} mp_dec;

/* Names of the type bytes 0xc0..0xdf, for messages. */
static const char *const type_names[32] = {
    "nil",    "(never used)", "false",   "true",    "bin8",    "bin16",
    "bin32",  "ext8",         "ext16",   "ext32",   "float32", "float64",
    "uint8",  "uint16",       "uint32",  "uint64",  "int8",    "int16",
    "int32",  "int64",        "fixext1", "fixext2", "fixext4", "fixext8",
    "fixext16", "str8",       "str16",   "str32",   "array16", "array32",
    "map16",  "map32"};

static int dec_fail(mp_dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int dec_fail(mp_dec *d, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return SS_EDECODE;
}

static inline uint32_t be16(const uint8_t *q)
{
    return (uint32_t)q[0] << 8 | q[1];
}

static inline uint32_t be32(const uint8_t *q)
{
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 |
           (uint32_t)q[2] << 8 | q[3];
}

static inline uint64_t be64(const uint8_t *q)
{
    return (uint64_t)be32(q) << 32 | be32(q + 4);
}

/* Parses the header at d->off into h and moves d->off past it (and past
 * the bytes of a str/bin). Checks that the bytes announced are there:
 * a str/bin's payload, and at least one byte per array element and two
 * per map pair. */
static inline int read_head(mp_dec *d, mp_head *h)
{
    size_t off = d->off;
    if (off >= d->n)
        return dec_fail(d, "truncated input at offset %zu (value expected)",
                        off);
    const uint8_t *q = d->p + off + 1;
    size_t avail = d->n - off - 1; /* bytes after the type byte */
    uint8_t c = d->p[off];
    size_t hl;      /* length-field bytes */
    uint64_t len;

    if (c <= 0x7f) {
        h->kind = H_INT;
        h->i = c;
        d->off = off + 1;
        return 0;
    }
    if (c >= 0xe0) {
        h->kind = H_INT;
        h->i = (int8_t)c;
        d->off = off + 1;
        return 0;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        h->kind = H_STR;
        len = c & 0x1f;
        hl = 0;
        goto bytes;
    }
    if (c <= 0x9f) { /* 0x80..0x9f: fixmap, fixarray */
        h->kind = c >= 0x90 ? H_ARRAY : H_MAP;
        len = c & 0x0f;
        hl = 0;
        goto container;
    }
    switch (c) {
    case 0xc0:
        h->kind = H_NIL;
        d->off = off + 1;
        return 0;
    case 0xc2:
    case 0xc3:
        h->kind = H_BOOL;
        h->i = c & 1;
        d->off = off + 1;
        return 0;
    case 0xc4: case 0xc5: case 0xc6:
        h->kind = H_BIN;
        hl = (size_t)1 << (c - 0xc4);
        goto sized_bytes;
    case 0xd9: case 0xda: case 0xdb:
        h->kind = H_STR;
        hl = (size_t)1 << (c - 0xd9);
        goto sized_bytes;
    case 0xca:
        if (avail < 4)
            goto truncated;
        {
            uint32_t u = be32(q);
            float fv;
            memcpy(&fv, &u, 4);
            h->kind = H_FLOAT;
            h->f = fv;
        }
        d->off = off + 5;
        return 0;
    case 0xcb:
        if (avail < 8)
            goto truncated;
        {
            uint64_t u = be64(q);
            memcpy(&h->f, &u, 8);
            h->kind = H_FLOAT;
        }
        d->off = off + 9;
        return 0;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        size_t w = (size_t)1 << (c - 0xcc);
        if (avail < w)
            goto truncated;
        uint64_t u = w == 1 ? q[0] : w == 2 ? be16(q)
                                   : w == 4 ? be32(q) : be64(q);
        if (u > INT64_MAX) {
            h->kind = H_UINT;
            h->u = u;
        } else {
            h->kind = H_INT;
            h->i = (int64_t)u;
        }
        d->off = off + 1 + w;
        return 0;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        size_t w = (size_t)1 << (c - 0xd0);
        if (avail < w)
            goto truncated;
        h->kind = H_INT;
        h->i = w == 1 ? (int8_t)q[0]
             : w == 2 ? (int16_t)be16(q)
             : w == 4 ? (int32_t)be32(q) : (int64_t)be64(q);
        d->off = off + 1 + w;
        return 0;
    }
    case 0xdc: case 0xdd:
        h->kind = H_ARRAY;
        hl = c == 0xdc ? 2 : 4;
        goto sized_container;
    case 0xde: case 0xdf:
        h->kind = H_MAP;
        hl = c == 0xde ? 2 : 4;
        goto sized_container;
    case 0xc1:
        return dec_fail(d, "invalid type byte 0xc1 at offset %zu", off);
    default: /* 0xc7..0xc9, 0xd4..0xd8 */
        return dec_fail(d, "unsupported %s value (type byte 0x%02x) at "
                        "offset %zu", type_names[c - 0xc0], c, off);
    }

sized_bytes:
    if (avail < hl)
        goto truncated;
    len = hl == 1 ? q[0] : hl == 2 ? be16(q) : be32(q);
bytes:
    if (avail - hl < len)
        goto truncated;
    h->len = (uint32_t)len;
    h->s = (const char *)q + hl;
    d->off = off + 1 + hl + (size_t)len;
    return 0;

sized_container:
    if (avail < hl)
        goto truncated;
    len = hl == 2 ? be16(q) : be32(q);
container:
    if ((h->kind == H_MAP ? 2 * len : len) > avail - hl)
        return dec_fail(d, "truncated %s at offset %zu (%llu %s, %zu bytes "
                        "left)",
                        hl ? type_names[c - 0xc0]
                           : h->kind == H_MAP ? "fixmap" : "fixarray",
                        off, (unsigned long long)len,
                        h->kind == H_MAP ? "pairs" : "elements",
                        avail - hl);
    h->len = (uint32_t)len;
    d->off = off + 1 + hl;
    return 0;

truncated:
    return dec_fail(d, "truncated %s at offset %zu",
                    c >= 0xc0 ? type_names[c - 0xc0] : "fixstr", off);
}

static int dec_value(mp_dec *d, int depth);

static int too_deep(mp_dec *d, size_t at)
{
    return dec_fail(d, "nesting deeper than %d at offset %zu",
                    SS_MP_MAX_DEPTH, at);
}

static int dec_container(mp_dec *d, const mp_head *h, int depth, size_t at)
{
    lua_State *L = d->L;
    if (depth > SS_MP_MAX_DEPTH)
        return too_deep(d, at);
    if (!lua_checkstack(L, 4)) {
        if (d->err && d->errlen)
            snprintf(d->err, d->errlen, "Lua stack overflow at offset %zu",
                     at);
        return SS_ENOMEM;
    }
    uint32_t count = h->len;
    if (h->kind == H_ARRAY) {
        lua_createtable(L, (int)(count > INT32_MAX ? 0 : count), 0);
        for (uint32_t i = 1; i <= count; i++) {
            int rc = dec_value(d, depth);
            if (rc) {
                lua_pop(L, 1);
                return rc;
            }
            lua_rawseti(L, -2, (lua_Integer)i);
        }
        return 0;
    }
    lua_createtable(L, 0, (int)(count > INT32_MAX ? 0 : count));
    for (uint32_t i = 0; i < count; i++) {
        size_t kat = d->off;
        int rc = dec_value(d, depth);
        if (rc) {
            lua_pop(L, 1);
            return rc;
        }
        if (lua_type(L, -1) == LUA_TNIL ||
            (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
             isnan((double)lua_tonumber(L, -1)))) {
            int isnil = lua_isnil(L, -1);
            lua_pop(L, 2);
            return dec_fail(d, "%s map key at offset %zu",
                            isnil ? "nil" : "NaN", kat);
        }
        rc = dec_value(d, depth);
        if (rc) {
            lua_pop(L, 2);
            return rc;
        }
        lua_rawset(L, -3);
    }
    return 0;
}

/* Decodes one value and pushes it; depth = enclosing containers. */
static int dec_value(mp_dec *d, int depth)
{
    lua_State *L = d->L;
    mp_head h;
    size_t at = d->off;
    int rc = read_head(d, &h);
    if (rc)
        return rc;
    switch (h.kind) {
    case H_NIL:
        lua_pushnil(L);
        return 0;
    case H_BOOL:
        lua_pushboolean(L, (int)h.i);
        return 0;
    case H_INT:
        lua_pushinteger(L, (lua_Integer)h.i);
        return 0;
    case H_UINT:
        lua_pushnumber(L, (lua_Number)h.u);
        return 0;
    case H_FLOAT:
        lua_pushnumber(L, (lua_Number)h.f);
        return 0;
    case H_STR:
    case H_BIN:
        lua_pushlstring(L, h.s, h.len);
        return 0;
    default:
        return dec_container(d, &h, depth + 1, at);
    }
}

/* See ss_msgpack.h. */
int ss_mp_decode_lua(lua_State *L, const char *p, size_t n, size_t *off,
                     char *err, size_t errlen)
{
    mp_dec d = {L, (const uint8_t *)p, n, *off, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!lua_checkstack(L, 2)) {
        if (err && errlen)
            snprintf(err, errlen, "Lua stack overflow");
        return SS_ENOMEM;
    }
    int rc = dec_value(&d, 0);
    if (rc == 0)
        *off = d.off;
    return rc;
}

/* Checks one value without a Lua state; is_key: it is a map key. */
static int skip_value(mp_dec *d, int depth, int is_key)
{
    mp_head h;
    size_t at = d->off;
    int rc = read_head(d, &h);
    if (rc)
        return rc;
    if (is_key && (h.kind == H_NIL || (h.kind == H_FLOAT && isnan(h.f))))
        return dec_fail(d, "%s map key at offset %zu",
                        h.kind == H_NIL ? "nil" : "NaN", at);
    if (h.kind == H_ARRAY) {
        if (depth + 1 > SS_MP_MAX_DEPTH)
            return too_deep(d, at);
        for (uint32_t i = 0; i < h.len; i++)
            if ((rc = skip_value(d, depth + 1, 0)))
                return rc;
    } else if (h.kind == H_MAP) {
        if (depth + 1 > SS_MP_MAX_DEPTH)
            return too_deep(d, at);
        for (uint32_t i = 0; i < h.len; i++)
            if ((rc = skip_value(d, depth + 1, 1)) ||
                (rc = skip_value(d, depth + 1, 0)))
                return rc;
    }
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_validate(const char *p, size_t n, size_t *off, char *err,
                   size_t errlen)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    int rc = skip_value(&d, 0, 0);
    if (rc == 0)
        *off = d.off;
    return rc;
}

/* See ss_msgpack.h. */
int ss_mp_skip(const char *p, size_t n, size_t *off)
{
    return ss_mp_validate(p, n, off, NULL, 0);
}

/* See ss_msgpack.h. */
int ss_mp_get_str(const char *p, size_t n, size_t *off, const char **s,
                  size_t *len)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, NULL, 0};
    mp_head h;
    if (read_head(&d, &h) || (h.kind != H_STR && h.kind != H_BIN))
        return SS_EDECODE;
    *s = h.s;
    *len = h.len;
    *off = d.off;
    return 0;
}

/* ------------------------------------------------------------------ */
/* MessagePack -> JSON text                                            */

/* See ss_msgpack.h. */
size_t ss_mp_fmt_double(char *buf, size_t size, double v)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size)
            return 0;
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    /* the C library wrote the locale's decimal point */
    const char *dp = localeconv()->decimal_point;
    if (dp && strcmp(dp, ".") != 0 && dp[0]) {
        size_t dl = strlen(dp);
        char *at = strstr(buf, dp);
        if (at) {
            *at = '.';
            memmove(at + 1, at + dl, strlen(at + dl) + 1);
            n -= (int)(dl - 1);
        }
    }
    if (!strpbrk(buf, ".eEni")) { /* keep it a float: 1 -> 1.0 */
        if ((size_t)n + 2 >= size)
            return 0;
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return (size_t)n;
}

/* Appends s as a JSON string; bytes that are not UTF-8 become \u00XX. */
static int json_str(ss_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    if (reserve(out, n + 2))
        return SS_ENOMEM;
    out->data[out->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' &&
               u[run] != '\\')
            run++;
        if (run > i) {
            if (ss_buf_append(out, s + i, run - i))
                return SS_ENOMEM;
            i = run;
            continue;
        }
        unsigned c = u[i];
        char esc[8];
        size_t el = 0;
        if (c >= 0x80) {
            size_t sl = c >= 0xc2 && c <= 0xdf ? 2
                      : c >= 0xe0 && c <= 0xef ? 3
                      : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
            if (sl && i + sl <= n && ss_utf8_valid(s + i, sl, NULL)) {
                if (ss_buf_append(out, s + i, sl))
                    return SS_ENOMEM;
                i += sl;
                continue;
            }
        }
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; el = 2; break;
        case '\\': esc[1] = '\\'; el = 2; break;
        case '\n': esc[1] = 'n'; el = 2; break;
        case '\r': esc[1] = 'r'; el = 2; break;
        case '\t': esc[1] = 't'; el = 2; break;
        case '\b': esc[1] = 'b'; el = 2; break;
        case '\f': esc[1] = 'f'; el = 2; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if (ss_buf_append(out, esc, el))
            return SS_ENOMEM;
        i++;
    }
    return put1(out, '"');
}

static int json_value(mp_dec *d, ss_buf *out, int depth);

#define JSON_KEY_MAX 128

/* A map key: strings as they are, anything else as its JSON text (cut to
 * JSON_KEY_MAX bytes). */
static int json_key(mp_dec *d, ss_buf *out, int depth)
{
    size_t at = d->off;
    mp_head h;
    if (at < d->n && ((d->p[at] >= 0xa0 && d->p[at] <= 0xbf) ||
                      (d->p[at] >= 0xd9 && d->p[at] <= 0xdb) ||
                      (d->p[at] >= 0xc4 && d->p[at] <= 0xc6))) {
        int rc = read_head(d, &h);
        if (rc)
            return rc;
        return json_str(out, h.s, h.len);
    }
    ss_buf tmp = SS_BUF_INIT;
    int rc = json_value(d, &tmp, depth);
    if (!rc && tmp.len > JSON_KEY_MAX) {
        /* cut (at a character boundary): keys nested in keys would
         * otherwise grow exponentially with each level of escaping */
        size_t cut = JSON_KEY_MAX;
        while (cut > 0 && ((unsigned char)tmp.data[cut] & 0xc0) == 0x80)
            cut--;
        tmp.len = cut;
        rc = ss_buf_append(&tmp, "...", 3);
    }
    if (!rc)
        rc = json_str(out, tmp.data ? tmp.data : "", tmp.len);
    ss_buf_release(&tmp);
    return rc;
}

static int json_value(mp_dec *d, ss_buf *out, int depth)
{
    mp_head h;
    size_t at = d->off;
    int rc = read_head(d, &h);
    if (rc)
        return rc;
    char num[40];
    switch (h.kind) {
    case H_NIL:
        return ss_buf_append(out, "null", 4);
    case H_BOOL:
        return h.i ? ss_buf_append(out, "true", 4)
                   : ss_buf_append(out, "false", 5);
    case H_INT:
        return ss_buf_printf(out, "%lld", (long long)h.i);
    case H_UINT:
        return ss_buf_printf(out, "%llu", (unsigned long long)h.u);
    case H_FLOAT:
        if (!isfinite(h.f))
            return ss_buf_append(out, "null", 4);
        {
            size_t nl = ss_mp_fmt_double(num, sizeof num, h.f);
            return ss_buf_append(out, num, nl);
        }
    case H_STR:
    case H_BIN:
        return json_str(out, h.s, h.len);
    default:
        break;
    }
    if (depth + 1 > SS_MP_MAX_DEPTH)
        return too_deep(d, at);
    int map = h.kind == H_MAP;
    if ((rc = put1(out, map ? '{' : '[')))
        return rc;
    for (uint32_t i = 0; i < h.len; i++) {
        if (i && (rc = put1(out, ',')))
            return rc;
        if (map && ((rc = json_key(d, out, depth + 1)) ||
                    (rc = put1(out, ':'))))
            return rc;
        if ((rc = json_value(d, out, depth + 1)))
            return rc;
    }
    return put1(out, map ? '}' : ']');
}

/* See ss_msgpack.h. */
int ss_mp_to_json(const char *p, size_t n, size_t *off, ss_buf *out)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, NULL, 0};
    size_t start = out->len;
    int rc = json_value(&d, out, 0);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return rc;
    }
    if (reserve(out, 0) == 0)
        out->data[out->len] = '\0';
    *off = d.off;
    return 0;
}
