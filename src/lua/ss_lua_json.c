/*
 * ss_lua_json.c - the `json` module for stage scripts (RFC 8259).
 *
 *   json.encode(value) -> compact JSON text
 *     nil and json.null -> null; booleans; integers -> digits without a
 *     decimal point; floats -> the shortest of %.15g/%.16g/%.17g that
 *     reads back exactly, with ".0" added when it would look like an
 *     integer (so 1.0 stays a float); NaN and infinities -> error;
 *     strings -> JSON strings (must be valid UTF-8, else error; control
 *     characters, '"' and '\' escaped, nothing else); a table whose keys
 *     are exactly 1..n (n >= 1) -> array; any other table -> object, the
 *     empty table -> {}; object keys are strings, or numbers written as
 *     strings (1 -> "1"), emitted in byte order so the output is
 *     deterministic; a key that is a number and also a string ("1") is an
 *     error; boolean/table keys, functions, userdata, threads, other light
 *     userdata and tables nested deeper than 32 (cycles) -> error naming
 *     the path, e.g. "json.encode: cannot encode a function value (at
 *     value.cb)". Metatables are ignored, except a lazy CSV row
 *     (csv.parse) -> array of its fields, read as row[i] would be.
 *
 *   json.decode(text) -> value
 *     objects -> tables; arrays -> tables 1..n (so [] -> {} which encodes
 *     back as {}); strings -> Lua strings (\uXXXX and surrogate pairs ->
 *     UTF-8; lone surrogates, invalid UTF-8 and raw control characters
 *     are errors); numbers without fraction/exponent -> integers when they
 *     fit in 64 bits, all others -> floats; null inside an array or
 *     object -> json.null (so arrays keep their length), a top-level
 *     null -> nil. Duplicate object keys: the last wins. Nesting deeper
 *     than 32 and any trailing non-space text are errors. Errors name the
 *     0-based byte offset: "json.decode: expected ':' at offset 12".
 *
 *   json.null -> a light userdata sentinel.
 */
#include "core/ss_util.h"
#include "lua/ss_lua.h"
#include "securestreams.h"
#include "lua/ss_lua_csv.h"
#include "wire/ss_csv.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32
#define JSON_STATE "ss.json.state"

/* Its address is json.null. */
static const char json_null_sentinel = 0;
#define JSON_NULL ((void *)&json_null_sentinel)

typedef struct json_state {
    ss_buf out;
} json_state;

static int state_gc(lua_State *L)
{
    json_state *js = luaL_checkudata(L, 1, JSON_STATE);
    ss_buf_release(&js->out);
    return 0;
}

/* ------------------------------------------------------------------ */
/* encode                                                              */

/* How the value at a depth was reached: an object key or array index. */
typedef struct jpath {
    const char *key; /* NULL: index */
    size_t klen;
    lua_Integer index;
} jpath;

/* An object key, as text, and how to fetch its value. */
typedef struct jkey {
    const char *s;
    size_t len;
    int type; /* LUA_TSTRING or LUA_TNUMBER */
    int isint;
    lua_Integer i;
    lua_Number f;
    char num[40];
} jkey;

typedef struct jenc {
    lua_State *L;
    ss_buf *b;
    int nomem;
    jpath path[JSON_MAX_DEPTH + 2];
    char err[320];
} jenc;

static int ident(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Records "<what> (at value.a[2])" using path[1..depth]; returns -1. */
static int jfail(jenc *e, int depth, const char *what)
{
    char path[224];
    size_t pl = (size_t)snprintf(path, sizeof path, "value");
    for (int d = 1; d <= depth && pl < sizeof path; d++) {
        const jpath *p = &e->path[d];
        size_t room = sizeof path - pl;
        int w;
        if (!p->key)
            w = snprintf(path + pl, room, "[%lld]", (long long)p->index);
        else if (ident(p->key, p->klen))
            w = snprintf(path + pl, room, ".%.*s", (int)p->klen, p->key);
        else
            w = snprintf(path + pl, room, "[\"%.*s%s\"]",
                         p->klen > 24 ? 24 : (int)p->klen, p->key,
                         p->klen > 24 ? "..." : "");
        pl += w > 0 ? (size_t)w : 0;
    }
    if (pl >= sizeof path)
        memcpy(path + sizeof path - 4, "...", 4);
    size_t wl = strlen(what);
    if (wl && what[wl - 1] == ')') /* "(depth > 32)" -> "(depth > 32, at" */
        snprintf(e->err, sizeof e->err, "%.*s, at %s)", (int)wl - 1, what,
                 path);
    else
        snprintf(e->err, sizeof e->err, "%s (at %s)", what, path);
    return -1;
}

static int jput(jenc *e, const char *s, size_t n)
{
    if (ss_buf_append(e->b, s, n)) {
        e->nomem = 1;
        return -1;
    }
    return 0;
}

/* Appends a JSON string; s must be valid UTF-8 (checked by callers). */
static int jstring(jenc *e, const char *s, size_t n)
{
    if (ss_buf_json_str(e->b, s, n)) {
        e->nomem = 1;
        return -1;
    }
    return 0;
}

static int enc_value(jenc *e, int idx, int depth);

/* The key's text (numbers: in the struct itself, which the sort moves). */
static inline const char *key_text(const jkey *k)
{
    return k->type == LUA_TNUMBER ? k->num : k->s;
}

static int key_cmp(const void *a, const void *b)
{
    const jkey *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(key_text(x), key_text(y), m);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int enc_object(jenc *e, int t, int depth)
{
    lua_State *L = e->L;
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        count++;
        lua_pop(L, 1);
    }
    if (count == 0)
        return jput(e, "{}", 2);
    if (count > SIZE_MAX / sizeof(jkey))
        return jfail(e, depth - 1, "table too large");
    jkey *keys = lua_newuserdatauv(L, count * sizeof(jkey), 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        jkey *jk = &keys[k++];
        jk->type = lua_type(L, -1);
        if (jk->type == LUA_TSTRING) {
            jk->s = lua_tolstring(L, -1, &jk->len);
            if (!ss_utf8_valid(jk->s, jk->len, NULL)) {
                lua_pop(L, 2);
                return jfail(e, depth - 1, "invalid UTF-8 in a key");
            }
        } else if (jk->type == LUA_TNUMBER) {
            jk->isint = lua_isinteger(L, -1);
            if (jk->isint) {
                jk->i = lua_tointeger(L, -1);
                jk->len = (size_t)snprintf(jk->num, sizeof jk->num, "%lld",
                                           (long long)jk->i);
            } else {
                jk->f = lua_tonumber(L, -1);
                jk->len = ss_mp_fmt_double(jk->num, sizeof jk->num,
                                           (double)jk->f);
            }
            jk->s = NULL;
        } else {
            char what[64];
            snprintf(what, sizeof what, "cannot encode a %s key",
                     lua_typename(L, jk->type));
            lua_pop(L, 2);
            return jfail(e, depth - 1, what);
        }
    }
    /* string keys point into t's key strings, which t keeps alive (and
     * Lua never moves) while no Lua code runs */
    ss_sort(keys, count, sizeof *keys, key_cmp);
    for (size_t j = 1; j < count; j++)
        if (key_cmp(&keys[j - 1], &keys[j]) == 0) {
            char what[96];
            snprintf(what, sizeof what,
                     "key \"%.*s\" is both a number and a string",
                     keys[j].len > 40 ? 40 : (int)keys[j].len,
                     key_text(&keys[j]));
            lua_pop(L, 1);
            return jfail(e, depth - 1, what);
        }
    if (jput(e, "{", 1))
        goto fail;
    for (size_t j = 0; j < count; j++) {
        jkey *jk = &keys[j];
        if ((j && jput(e, ",", 1)) || jstring(e, key_text(jk), jk->len) ||
            jput(e, ":", 1))
            goto fail;
        if (jk->type == LUA_TSTRING)
            lua_pushlstring(L, jk->s, jk->len);
        else if (jk->isint)
            lua_pushinteger(L, jk->i);
        else
            lua_pushnumber(L, jk->f);
        lua_rawget(L, t);
        e->path[depth].key = key_text(jk);
        e->path[depth].klen = jk->len;
        int rc = enc_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        if (rc)
            goto fail;
    }
    lua_pop(L, 1);
    return jput(e, "}", 1);
fail:
    lua_pop(L, 1);
    return -1;
}

/* Writes the lazy CSV row t (ss_csv.h) as the array of its fields: what
 * the row holds at an index wins over the line's text. */
static int enc_row(jenc *e, int t, int depth, const char *line, size_t n,
                   char sep)
{
    lua_State *L = e->L;
    ss_csv_cursor c;
    ss_csv_cursor_init(&c, line, n, sep);
    if (jput(e, "[", 1))
        return -1;
    e->path[depth].key = NULL;
    lua_Integer i = 0;
    const char *f;
    size_t fl, dq;
    while (ss_csv_cursor_next(&c, &f, &fl, &dq)) {
        if (i && jput(e, ",", 1))
            return -1;
        e->path[depth].index = ++i;
        if (lua_rawgeti(L, t, i) == LUA_TNIL && !dq) {
            lua_pop(L, 1);
            if (!ss_utf8_valid(f, fl, NULL))
                return jfail(e, depth, "invalid UTF-8 in a string");
            if (jstring(e, f, fl))
                return -1;
            continue;
        }
        if (lua_isnil(L, -1)) { /* the line's text, unescaped */
            lua_pop(L, 1);
            luaL_Buffer lb;
            char *p = luaL_buffinitsize(L, &lb, fl - dq);
            luaL_pushresultsize(&lb, ss_csv_unescape(p, f, fl));
        }
        int rc = enc_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        if (rc)
            return rc;
    }
    return jput(e, "]", 1);
}

static int enc_table(jenc *e, int t, int depth)
{
    lua_State *L = e->L;
    if (depth > JSON_MAX_DEPTH) {
        char what[64];
        snprintf(what, sizeof what,
                 "cyclic or too deeply nested table (depth > %d)",
                 JSON_MAX_DEPTH);
        return jfail(e, depth - 1, what);
    }
    if (!lua_checkstack(L, 6))
        return jfail(e, depth - 1, "Lua stack overflow");
    const char *line;
    size_t ln;
    char sep;
    int row = ss_csv_lua_row(L, t, &line, &ln, &sep);
    if (row < 0)
        return jfail(e, depth - 1, "damaged csv row: its line was "
                                   "replaced");
    if (row)
        return enc_row(e, t, depth, line, ln, sep);
    lua_Unsigned len = lua_rawlen(L, t);
    if (!ss_lua_is_sequence(L, t, len))
        return enc_object(e, t, depth);
    if (jput(e, "[", 1))
        return -1;
    e->path[depth].key = NULL;
    for (lua_Unsigned i = 1; i <= len; i++) {
        if (i > 1 && jput(e, ",", 1))
            return -1;
        lua_rawgeti(L, t, (lua_Integer)i);
        e->path[depth].index = (lua_Integer)i;
        int rc = enc_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        if (rc)
            return rc;
    }
    return jput(e, "]", 1);
}

static int enc_value(jenc *e, int idx, int depth)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return jput(e, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? jput(e, "true", 4)
                                     : jput(e, "false", 5);
    case LUA_TNUMBER: {
        char num[40];
        size_t n;
        if (lua_isinteger(L, idx)) {
            n = (size_t)snprintf(num, sizeof num, "%lld",
                                 (long long)lua_tointeger(L, idx));
        } else {
            double v = (double)lua_tonumber(L, idx);
            if (!isfinite(v))
                return jfail(e, depth, "cannot encode NaN or infinity");
            n = ss_mp_fmt_double(num, sizeof num, v);
        }
        return jput(e, num, n);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!ss_utf8_valid(s, n, NULL))
            return jfail(e, depth, "invalid UTF-8 in a string");
        return jstring(e, s, n);
    }
    case LUA_TTABLE:
        return enc_table(e, idx, depth + 1);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL)
            return jput(e, "null", 4);
        return jfail(e, depth, "cannot encode a light userdata value");
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot encode a %s value",
                 luaL_typename(L, idx));
        return jfail(e, depth, what);
    }
    }
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    json_state *js = lua_touserdata(L, lua_upvalueindex(1));
    jenc e;
    e.L = L;
    e.b = &js->out;
    e.nomem = 0;
    e.err[0] = '\0';
    ss_buf_reset(e.b);
    int rc = enc_value(&e, 1, 0);
    if (rc) {
        ss_buf_release(e.b);
        if (e.nomem)
            return luaL_error(L, "json.encode: out of memory");
        return luaL_error(L, "json.encode: %s", e.err);
    }
    lua_pushlstring(L, e.b->data ? e.b->data : "", e.b->len);
    if (e.b->cap > 65536)
        ss_buf_release(e.b);
    return 1;
}

/* ------------------------------------------------------------------ */
/* decode                                                              */

typedef struct jdec {
    lua_State *L;
    const char *s;
    size_t n;
    size_t i;
} jdec;

static void derr(jdec *d, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Raises "json.decode: <what> at offset <at>". */
static void derr(jdec *d, size_t at, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    luaL_error(d->L, "json.decode: %s at offset " SS_LUA_FMT_INT, what,
               SS_LUA_ARG_INT(at));
    abort(); /* not reached: luaL_error does not return */
}

static void unexpected(jdec *d, const char *wanted)
    __attribute__((noreturn));

/* Raises "unexpected ..." for the byte at d->i (or the end). */
static void unexpected(jdec *d, const char *wanted)
{
    if (d->i >= d->n)
        derr(d, d->i, "unexpected end of input (%s expected)", wanted);
    unsigned char c = (unsigned char)d->s[d->i];
    if (c > 0x20 && c < 0x7f)
        derr(d, d->i, "unexpected '%c' (%s expected)", c, wanted);
    derr(d, d->i, "unexpected byte 0x%02x (%s expected)", c, wanted);
}

static inline void skip_ws(jdec *d)
{
    while (d->i < d->n) {
        char c = d->s[d->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        d->i++;
    }
}

static void hex4(jdec *d, size_t at, unsigned *out)
{
    if (d->n - at < 4)
        derr(d, at, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = d->s[at + (size_t)k];
        unsigned h;
        if (c >= '0' && c <= '9')
            h = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            h = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            h = (unsigned)(c - 'A' + 10);
        else
            derr(d, at + (size_t)k, "bad hex digit in \\u escape");
        v = v << 4 | h;
    }
    *out = v;
}

static size_t utf8_put(char *q, unsigned cp)
{
    if (cp < 0x80) {
        q[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        q[0] = (char)(0xc0 | cp >> 6);
        q[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        q[0] = (char)(0xe0 | cp >> 12);
        q[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        q[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    q[0] = (char)(0xf0 | cp >> 18);
    q[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    q[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    q[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Checks s[from..to) is UTF-8; raises with the offset of the bad byte. */
static void check_utf8(jdec *d, size_t from, size_t to)
{
    size_t bad;
    if (!ss_utf8_valid(d->s + from, to - from, &bad))
        derr(d, from + bad, "invalid UTF-8 in string");
}

/* d->i is at the opening quote; pushes the string. */
static void dec_string(jdec *d)
{
    size_t open = d->i;
    size_t i = ++d->i, start = i;
    const char *s = d->s;
    size_t n = d->n;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            check_utf8(d, start, i);
            lua_pushlstring(d->L, s + start, i - start);
            d->i = i + 1;
            return;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            derr(d, i, "control character 0x%02x in string", c);
        i++;
    }
    if (i >= n)
        derr(d, open, "unterminated string starting");
    /* escapes: build it */
    luaL_Buffer b;
    luaL_buffinit(d->L, &b);
    size_t seg = start;
    for (;;) {
        if (i >= n)
            derr(d, open, "unterminated string starting");
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\') {
            if (c < 0x20)
                derr(d, i, "control character 0x%02x in string", c);
            i++;
            continue;
        }
        check_utf8(d, seg, i);
        luaL_addlstring(&b, s + seg, i - seg);
        if (c == '"') {
            d->i = i + 1;
            luaL_pushresult(&b);
            return;
        }
        size_t esc = i;
        if (i + 1 >= n)
            derr(d, open, "unterminated string starting");
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case '"': luaL_addchar(&b, '"'); break;
        case '\\': luaL_addchar(&b, '\\'); break;
        case '/': luaL_addchar(&b, '/'); break;
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': {
            unsigned cp, lo;
            hex4(d, i, &cp);
            i += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                derr(d, esc, "lone low surrogate \\u%04x", cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (i + 1 >= n || s[i] != '\\' || s[i + 1] != 'u')
                    derr(d, esc, "lone high surrogate \\u%04x", cp);
                hex4(d, i + 2, &lo);
                if (lo < 0xdc00 || lo > 0xdfff)
                    derr(d, esc, "high surrogate \\u%04x not followed by a "
                                 "low one", cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            char u8[4];
            luaL_addlstring(&b, u8, utf8_put(u8, cp));
            break;
        }
        default:
            derr(d, esc, "invalid escape");
        }
        seg = i;
    }
}

/* Parses a float in the C locale whatever the current one is. */
static double to_double(jdec *d, size_t from, size_t to)
{
    const char *dp = localeconv()->decimal_point;
    char *end;
    if (!dp || (dp[0] == '.' && dp[1] == '\0')) {
        double v = strtod(d->s + from, &end);
        if (end != d->s + to)
            derr(d, from, "invalid number");
        return v;
    }
    size_t dl = strlen(dp);
    luaL_Buffer b;
    luaL_buffinit(d->L, &b);
    for (size_t i = from; i < to; i++) {
        if (d->s[i] == '.')
            luaL_addlstring(&b, dp, dl);
        else
            luaL_addchar(&b, d->s[i]);
    }
    luaL_pushresult(&b);
    size_t bl;
    const char *t = lua_tolstring(d->L, -1, &bl);
    double v = strtod(t, &end);
    if (end != t + bl)
        derr(d, from, "invalid number");
    lua_pop(d->L, 1);
    return v;
}

static inline int isdig(char c) { return c >= '0' && c <= '9'; }

static void dec_number(jdec *d)
{
    const char *s = d->s;
    size_t n = d->n, i = d->i, start = i;
    int neg = 0, isfloat = 0;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && isdig(s[i]))
            i++;
    } else {
        d->i = i;
        unexpected(d, "digit");
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !isdig(s[i])) {
            d->i = i;
            unexpected(d, "digit after '.'");
        }
        while (i < n && isdig(s[i]))
            i++;
        isfloat = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !isdig(s[i])) {
            d->i = i;
            unexpected(d, "exponent digit");
        }
        while (i < n && isdig(s[i]))
            i++;
        isfloat = 1;
    }
    d->i = i;
    if (!isfloat) {
        uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
        size_t k = start + (size_t)neg;
        for (; k < i; k++) {
            unsigned dg = (unsigned)(s[k] - '0');
            if (v > (lim - dg) / 10)
                break;
            v = v * 10 + dg;
        }
        if (k == i) {
            lua_pushinteger(d->L, neg ? (lua_Integer)(0 - v)
                                      : (lua_Integer)v);
            return;
        }
    }
    lua_pushnumber(d->L, (lua_Number)to_double(d, start, i));
}

static void dec_value(jdec *d, int depth);

static void expect_word(jdec *d, const char *w, size_t wl)
{
    if (d->n - d->i < wl || memcmp(d->s + d->i, w, wl) != 0)
        unexpected(d, "value");
    d->i += wl;
}

static void dec_container(jdec *d, int depth)
{
    lua_State *L = d->L;
    int obj = d->s[d->i] == '{';
    if (depth > JSON_MAX_DEPTH)
        derr(d, d->i, "nesting deeper than %d", JSON_MAX_DEPTH);
    luaL_checkstack(L, 4, "json.decode: nesting");
    d->i++;
    lua_newtable(L);
    skip_ws(d);
    if (d->i < d->n && d->s[d->i] == (obj ? '}' : ']')) {
        d->i++;
        return;
    }
    lua_Integer k = 0;
    for (;;) {
        skip_ws(d);
        if (obj) {
            if (d->i >= d->n || d->s[d->i] != '"')
                unexpected(d, "string key");
            dec_string(d);
            skip_ws(d);
            if (d->i >= d->n || d->s[d->i] != ':')
                unexpected(d, "':'");
            d->i++;
            skip_ws(d);
            dec_value(d, depth);
            lua_rawset(L, -3);
        } else {
            dec_value(d, depth);
            lua_rawseti(L, -2, ++k);
        }
        skip_ws(d);
        if (d->i < d->n && d->s[d->i] == ',') {
            d->i++;
            continue;
        }
        if (d->i < d->n && d->s[d->i] == (obj ? '}' : ']')) {
            d->i++;
            return;
        }
        unexpected(d, obj ? "',' or '}'" : "',' or ']'");
    }
}

/* Pushes the value at d->i (whitespace skipped); depth = enclosing
 * containers. */
static void dec_value(jdec *d, int depth)
{
    if (d->i >= d->n)
        unexpected(d, "value");
    switch (d->s[d->i]) {
    case '{':
    case '[':
        dec_container(d, depth + 1);
        return;
    case '"':
        dec_string(d);
        return;
    case 't':
        expect_word(d, "true", 4);
        lua_pushboolean(d->L, 1);
        return;
    case 'f':
        expect_word(d, "false", 5);
        lua_pushboolean(d->L, 0);
        return;
    case 'n':
        expect_word(d, "null", 4);
        if (depth)
            lua_pushlightuserdata(d->L, JSON_NULL);
        else
            lua_pushnil(d->L);
        return;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        dec_number(d);
        return;
    default:
        unexpected(d, "value");
    }
}

static int json_decode(lua_State *L)
{
    jdec d;
    d.L = L;
    d.s = luaL_checklstring(L, 1, &d.n);
    d.i = 0;
    lua_settop(L, 1);
    skip_ws(&d);
    dec_value(&d, 0);
    skip_ws(&d);
    if (d.i < d.n)
        derr(&d, d.i, "trailing characters");
    return 1;
}

/* See ss_lua.h. */
int luaopen_ss_json(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"encode", json_encode}, {"decode", json_decode}, {NULL, NULL}};
    luaL_newlibtable(L, fns);
    json_state *js = lua_newuserdatauv(L, sizeof *js, 0);
    ss_buf_init(&js->out);
    if (luaL_newmetatable(L, JSON_STATE)) {
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, fns, 1);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
