/*
 * ss_lua_msgpack.c - MessagePack for Lua values (see ss_lua_msgpack.h).
 *
 * Hand-written because it is the hot path: the encoder walks a table once
 * with lua_next (a table whose keys come out as 1, 2, 3... is written as
 * an array on the fly; anything else falls back to a map, after a full
 * sequence check only when an integer key came out of order), and writes
 * a one-byte container header that is widened afterwards in the rare
 * case of more than 15 elements. The decoder parses each header once
 * (read_head, wire/ss_msgpack_int.h) and pushes straight onto the Lua
 * stack; the same header parser serves ss_mp_skip/validate and to_json
 * (wire/ss_msgpack.c), so that all three accept the same bytes. A lazy CSV
 * row (csv.parse, ss_lua_csv.h) is written as the array of its fields
 * straight from its line, without Lua strings.
 */
#include "lua/ss_lua_msgpack.h"
#include "lua/ss_lua.h"
#include "core/ss_util.h"
#include "lua/ss_lua_csv.h"
#include "securestreams.h"
#include "wire/ss_csv.h"
#include "wire/ss_msgpack_int.h"

#include "lua/ss_lua_api.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            if (k >= 1 && (lua_Unsigned)k <= len && ss_lua_is_sequence(L, t, len)) {
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

/* See ss_lua_msgpack.h. */
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

/* See ss_lua_msgpack.h. */
int ss_mp_encode_lua(lua_State *L, int idx, ss_buf *b, char *err,
                     size_t errlen)
{
    return ss_mp_encode_lua_as(L, idx, b, "event", err, errlen);
}

/* ------------------------------------------------------------------ */
/* MessagePack -> Lua                                                  */

/*
 * The key cache (Lua 5.4). An event's field names are the same on every
 * event, and lua_pushlstring hashes a short string and looks it up in
 * Lua's string table each time (about 190 instructions for
 * "uniquecarrier"). So string map keys are looked up first in a small
 * direct-mapped cache of recent keys' bytes, whose slot i holds the Lua
 * string itself in the registry (at ref[i]): a hit costs a compare and a
 * lua_rawgeti. The cache belongs to the state (ss_lua_codec_slot: made
 * on first use, freed by ss_lua_destroy), so that no caller has to hold
 * it and finding it costs no Lua call (a first version kept it in a
 * registry userdata and lost more per event finding it than the hits
 * saved); a state not made by ss_lua_new has none. What the decoder
 * pushes is the same string either way (Lua 5.4 interns strings of up to
 * 40 bytes: a cached key and a fresh one are the same object), so
 * nothing a script can see changes. At most KC_SLOTS strings of at most
 * KC_MAXLEN bytes are kept alive. Values are not cached: they vary, and
 * a miss costs more than lua_pushlstring alone.
 */
#ifndef SS_LUAJIT
#define SS_MP_KEYCACHE 1
#endif
#define KC_SLOTS 64  /* a power of 2: kc_hash keeps the top 6 bits */
#define KC_MAXLEN 32 /* longer keys go through lua_pushlstring */

typedef struct kc_slot {
    uint32_t len1; /* the key's length + 1; 0: empty */
    char s[KC_MAXLEN];
} kc_slot;

typedef struct mp_keycache {
    int ref[KC_SLOTS]; /* registry slot of each cached string */
    kc_slot slot[KC_SLOTS];
} mp_keycache;

typedef struct lua_dec {
    mp_dec d;
    lua_State *L;
    void **kcslot; /* the state's codec slot; NULL: no cache */
    int kctried;   /* kcslot was looked up (at the first key) */
} lua_dec;

#ifdef SS_MP_KEYCACHE
/* The slot of a key of n bytes (1 <= n <= KC_MAXLEN): its length and
 * first and last 8 bytes mixed. A collision only costs a miss. */
static inline unsigned kc_hash(const char *s, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        memcpy(&a, s, n);
    }
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull) ^ n) * 0xff51afd7ed558ccdull;
    return (unsigned)(h >> 58);
}

/* The state's cache, made on first use (NULL if malloc fails: no cache
 * this time). Raises a Lua memory error like any lua_push*. */
static mp_keycache *kc_get(lua_dec *ld)
{
    mp_keycache *kc = *ld->kcslot;
    if (kc)
        return kc;
    lua_State *L = ld->L;
    if (!lua_checkstack(L, 1))
        return NULL;
    kc = calloc(1, sizeof *kc);
    if (!kc)
        return NULL;
    for (int i = 0; i < KC_SLOTS; i++)
        kc->ref[i] = LUA_NOREF;
    /* freed by ss_lua_destroy, even if a ref raises (a cache whose last
     * ref is not made is never used) */
    *ld->kcslot = kc;
    for (int i = 0; i < KC_SLOTS; i++) {
        lua_pushboolean(L, 0);
        kc->ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return kc;
}
#endif

/* Pushes the key string s[0..n) (through the cache when there is one). */
static inline void push_key(lua_dec *ld, const char *s, size_t n)
{
    lua_State *L = ld->L;
#ifdef SS_MP_KEYCACHE
    mp_keycache *kc;
    if (!ld->kctried) {
        ld->kcslot = ss_lua_codec_slot(L);
        ld->kctried = 1;
    }
    if (ld->kcslot && n - 1 < KC_MAXLEN && (kc = kc_get(ld)) &&
        kc->ref[KC_SLOTS - 1] != LUA_NOREF) { /* 1..KC_MAXLEN bytes */
        unsigned i = kc_hash(s, n);
        kc_slot *sl = &kc->slot[i];
        if (sl->len1 == n + 1 && memcmp(sl->s, s, n) == 0) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, kc->ref[i]);
            return;
        }
        lua_pushlstring(L, s, n);
        lua_pushvalue(L, -1);
        lua_rawseti(L, LUA_REGISTRYINDEX, kc->ref[i]);
        memcpy(sl->s, s, n);
        sl->len1 = (uint32_t)n + 1;
        return;
    }
#endif
    lua_pushlstring(L, s, n);
}

static int dec_value(lua_dec *ld, int depth);

static int dec_container(lua_dec *ld, const mp_head *h, int depth, size_t at)
{
    lua_State *L = ld->L;
    mp_dec *d = &ld->d;
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
            int rc = dec_value(ld, depth);
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
        mp_head kh;
        int rc = read_head(d, &kh);
        if (rc) {
            lua_pop(L, 1);
            return rc;
        }
        if (kh.kind == H_STR || kh.kind == H_BIN) {
            /* the usual key: no nil or NaN check needed */
            push_key(ld, kh.s, kh.len);
        } else {
            d->off = kat; /* any other key: decoded as a value */
            rc = dec_value(ld, depth);
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
        }
        rc = dec_value(ld, depth);
        if (rc) {
            lua_pop(L, 2);
            return rc;
        }
        lua_rawset(L, -3);
    }
    return 0;
}

/* Decodes one value and pushes it; depth = enclosing containers. */
static int dec_value(lua_dec *ld, int depth)
{
    lua_State *L = ld->L;
    mp_head h;
    size_t at = ld->d.off;
    int rc = read_head(&ld->d, &h);
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
        return dec_container(ld, &h, depth + 1, at);
    }
}

/* See ss_lua_msgpack.h. */
int ss_mp_decode_lua(lua_State *L, const char *p, size_t n, size_t *off,
                     char *err, size_t errlen)
{
    lua_dec ld = {{L, (const uint8_t *)p, n, *off, err, errlen}, L, NULL, 0};
    if (err && errlen)
        err[0] = '\0';
    if (!lua_checkstack(L, 2)) {
        if (err && errlen)
            snprintf(err, errlen, "Lua stack overflow");
        return SS_ENOMEM;
    }
    int rc = dec_value(&ld, 0);
    if (rc == 0)
        *off = ld.d.off;
    return rc;
}
