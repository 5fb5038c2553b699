/*
 * test_msgpack.c - the MessagePack codec for Lua values
 * (src/lua/ss_lua_msgpack.c, src/wire/ss_msgpack.c): round trips of every
 * type, the byte layout at every width boundary (checked against
 * msgpack-c's packer), both directions cross-checked with msgpack-c (our
 * bytes through msgpack_unpack_next, msgpack-c's bytes through our
 * decoder), every
 * error: truncation at every byte offset, byte mutations, ext types, nil
 * and NaN keys, depth limits, cycles, functions and other unsendables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "lua/ss_lua.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

/* Runs "return <expr>" and leaves its value on the stack. */
static void push_expr(lua_State *L, const char *expr)
{
    char code[4096];
    snprintf(code, sizeof code, "return %s", expr);
    if (luaL_dostring(L, code) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
}

/* Lua sequence check, independent of the codec's. */
static int lua_is_seq(lua_State *L, int t, lua_Integer *np)
{
    lua_Integer n = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (lua_tointeger(L, -1) > max)
            max = lua_tointeger(L, -1);
        n++;
    }
    *np = n;
    return n > 0 && n == max;
}

/* Deep equality of two Lua values, number subtypes included. */
static int lua_deep_eq(lua_State *L, int a, int b)
{
    assert_true(lua_checkstack(L, 8));
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    int t = lua_type(L, a);
    if (t != lua_type(L, b))
        return 0;
    switch (t) {
    case LUA_TNIL:
        return 1;
    case LUA_TBOOLEAN:
        return lua_toboolean(L, a) == lua_toboolean(L, b);
    case LUA_TNUMBER:
        if (lua_isinteger(L, a) != lua_isinteger(L, b))
            return 0;
        if (lua_isinteger(L, a))
            return lua_tointeger(L, a) == lua_tointeger(L, b);
        {
            double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
            if (isnan(x))
                return isnan(y);
            return x == y && signbit(x) == signbit(y);
        }
    case LUA_TSTRING: {
        size_t la, lb;
        const char *sa = lua_tolstring(L, a, &la);
        const char *sb = lua_tolstring(L, b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    }
    case LUA_TTABLE: {
        size_t na = 0, nb = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) {
            na++;
            lua_pushvalue(L, -2);
            lua_rawget(L, b);
            int eq = lua_deep_eq(L, -1, -2);
            lua_pop(L, 2);
            if (!eq) {
                lua_pop(L, 1);
                return 0;
            }
        }
        lua_pushnil(L);
        while (lua_next(L, b)) {
            nb++;
            lua_pop(L, 1);
        }
        return na == nb;
    }
    default:
        return lua_rawequal(L, a, b);
    }
}

static void encode_ok(lua_State *L, int idx, ss_buf *b)
{
    char err[256];
    int rc = ss_mp_encode_lua(L, idx, b, err, sizeof err);
    if (rc)
        fail_msg("encode failed (%d): %s", rc, err);
}

/* Decodes all of p[0..n) as one value, pushes it. */
static void decode_all(lua_State *L, const char *p, size_t n)
{
    char err[256];
    size_t off = 0;
    int rc = ss_mp_decode_lua(L, p, n, &off, err, sizeof err);
    if (rc)
        fail_msg("decode failed (%d): %s", rc, err);
    assert_int_equal(off, n);
}

/* Encodes the value on top, decodes it, checks deep equality with the
 * original; pops nothing. Returns the encoding's first byte. */
static uint8_t round_trip(lua_State *L)
{
    ss_buf b = SS_BUF_INIT;
    int top = lua_gettop(L);
    encode_ok(L, -1, &b);
    assert_int_equal(lua_gettop(L), top);
    decode_all(L, b.data, b.len);
    assert_true(lua_deep_eq(L, -1, -2));
    lua_pop(L, 1);
    size_t off = 0;
    assert_int_equal(ss_mp_skip(b.data, b.len, &off), 0);
    assert_int_equal(off, b.len);
    uint8_t first = (uint8_t)b.data[0];
    ss_buf_release(&b);
    return first;
}

/* Compares a msgpack-c object with the Lua value at idx. ours: the
 * bytes came from our encoder, so str/bin must follow UTF-8 validity and
 * the empty table must be a map. */
static int obj_eq(lua_State *L, int idx, const msgpack_object *o, int ours)
{
    assert_true(lua_checkstack(L, 8));
    idx = lua_absindex(L, idx);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return lua_isnil(L, idx);
    case MSGPACK_OBJECT_BOOLEAN:
        return lua_isboolean(L, idx) &&
               lua_toboolean(L, idx) == (int)o->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx) &&
                   lua_tonumber(L, idx) == (double)o->via.u64;
        return lua_isinteger(L, idx) &&
               lua_tointeger(L, idx) == (lua_Integer)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return lua_isinteger(L, idx) && lua_tointeger(L, idx) == o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx))
            return 0;
        if (isnan(o->via.f64))
            return isnan(lua_tonumber(L, idx));
        return lua_tonumber(L, idx) == o->via.f64;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
        if (lua_type(L, idx) != LUA_TSTRING)
            return 0;
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        const char *ptr = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr
                                                        : o->via.bin.ptr;
        size_t sz = o->type == MSGPACK_OBJECT_STR ? o->via.str.size
                                                  : o->via.bin.size;
        if (n != sz || (n && memcmp(s, ptr, n)))
            return 0;
        if (ours && (o->type == MSGPACK_OBJECT_STR) !=
                        ss_utf8_valid(s, n, NULL))
            return 0;
        return 1;
    }
    case MSGPACK_OBJECT_ARRAY: {
        if (!lua_istable(L, idx))
            return 0;
        lua_Integer n = 0;
        int seq = lua_is_seq(L, idx, &n);
        if (ours ? !seq || n != (lua_Integer)o->via.array.size
                 : n != (lua_Integer)o->via.array.size)
            return 0;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i + 1);
            int eq = obj_eq(L, -1, &o->via.array.ptr[i], ours);
            lua_pop(L, 1);
            if (!eq)
                return 0;
        }
        return 1;
    }
    case MSGPACK_OBJECT_MAP: {
        if (!lua_istable(L, idx))
            return 0;
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        size_t want = 0; /* a nil value leaves its key out */
        for (uint32_t i = 0; i < o->via.map.size; i++)
            want += o->via.map.ptr[i].val.type != MSGPACK_OBJECT_NIL;
        if (count != want || (ours && want != o->via.map.size))
            return 0;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            switch (k->type) {
            case MSGPACK_OBJECT_STR:
                lua_pushlstring(L, k->via.str.ptr, k->via.str.size);
                break;
            case MSGPACK_OBJECT_BIN:
                lua_pushlstring(L, k->via.bin.ptr, k->via.bin.size);
                break;
            case MSGPACK_OBJECT_POSITIVE_INTEGER:
                lua_pushinteger(L, (lua_Integer)k->via.u64);
                break;
            case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                lua_pushinteger(L, k->via.i64);
                break;
            case MSGPACK_OBJECT_FLOAT64:
            case MSGPACK_OBJECT_FLOAT32:
                lua_pushnumber(L, k->via.f64);
                break;
            case MSGPACK_OBJECT_BOOLEAN:
                lua_pushboolean(L, k->via.boolean);
                break;
            default:
                return 0;
            }
            lua_rawget(L, idx);
            int eq = obj_eq(L, -1, &o->via.map.ptr[i].val, ours);
            lua_pop(L, 1);
            if (!eq)
                return 0;
        }
        return 1;
    }
    default:
        return 0;
    }
}

/* Our bytes, parsed by msgpack-c, must equal the Lua value at idx. */
static void check_with_msgpackc(lua_State *L, int idx, const ss_buf *b)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int r = msgpack_unpack_next(&u, b->data, b->len, &off);
    assert_int_equal(r, MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b->len);
    assert_true(obj_eq(L, idx, &u.data, 1));
    msgpack_unpacked_destroy(&u);
}

/* An independent encoder: the Lua value at idx through msgpack-c. */
static void pack_c(lua_State *L, int idx, msgpack_packer *pk)
{
    assert_true(lua_checkstack(L, 8));
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        msgpack_pack_nil(pk);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            msgpack_pack_int64(pk, lua_tointeger(L, idx));
        else
            msgpack_pack_double(pk, lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (ss_utf8_valid(s, n, NULL)) {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, s, n);
        } else {
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, s, n);
        }
        break;
    }
    case LUA_TTABLE: {
        lua_Integer n = 0;
        if (lua_is_seq(L, idx, &n)) {
            msgpack_pack_array(pk, (size_t)n);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, i);
                pack_c(L, -1, pk);
                lua_pop(L, 1);
            }
        } else {
            size_t count = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                count++;
                lua_pop(L, 1);
            }
            msgpack_pack_map(pk, count);
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                pack_c(L, -2, pk);
                pack_c(L, -1, pk);
                lua_pop(L, 1);
            }
        }
        break;
    }
    default:
        fail_msg("pack_c: unexpected type");
    }
}

/* msgpack-c's bytes for the value at idx, through our decoder, must equal
 * it; and our encoder must produce the same bytes when no map order is
 * involved (only_seq). */
static void check_from_msgpackc(lua_State *L, int idx, int same_bytes)
{
    idx = lua_absindex(L, idx);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_c(L, idx, &pk);
    decode_all(L, sb.data, sb.size);
    assert_true(lua_deep_eq(L, -1, idx));
    lua_pop(L, 1);
    if (same_bytes) {
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, idx, &b);
        assert_int_equal(b.len, sb.size);
        assert_memory_equal(b.data, sb.data, sb.size);
        ss_buf_release(&b);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------ */
/* round trips and layouts                                             */

static void test_scalars(void **state)
{
    (void)state;
    lua_State *L = new_state();
    static const struct {
        const char *expr;
        uint8_t first;
    } cases[] = {
        {"nil", 0xc0},        {"true", 0xc3},          {"false", 0xc2},
        {"0", 0x00},          {"-1", 0xff},            {"1.5", 0xcb},
        {"0.0", 0xcb},        {"-0.0", 0xcb},          {"1/0", 0xcb},
        {"-1/0", 0xcb},       {"0/0", 0xcb},           {"2^53", 0xcb},
        {"math.pi", 0xcb},    {"''", 0xa0},            {"'abc'", 0xa3},
        {"'h\\0llo'", 0xa5},  {"'\\u{e9}t\\u{e9}'", 0xa5},
        {"'\\xff'", 0xc4},    {"math.mininteger", 0xd3},
        {"math.maxinteger", 0xcf},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        push_expr(L, cases[i].expr);
        uint8_t first = round_trip(L);
        if (first != cases[i].first)
            fail_msg("%s: first byte 0x%02x, want 0x%02x", cases[i].expr,
                     first, cases[i].first);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        check_with_msgpackc(L, -1, &b);
        ss_buf_release(&b);
        check_from_msgpackc(L, -1, 1);
        lua_pop(L, 1);
    }
    assert_int_equal(lua_gettop(L), 0);
    lua_close(L);
}

static void test_int_boundaries(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        size_t len;
    } cases[] = {
        {0, 1},           {1, 1},
        {127, 1},         {128, 2},
        {255, 2},         {256, 3},
        {65535, 3},       {65536, 5},
        {4294967295LL, 5}, {4294967296LL, 9},
        {INT64_MAX, 9},   {-1, 1},
        {-32, 1},         {-33, 2},
        {-128, 2},        {-129, 3},
        {-32768, 3},      {-32769, 5},
        {INT32_MIN, 5},   {(int64_t)INT32_MIN - 1, 9},
        {INT64_MIN, 9},
    };
    lua_State *L = new_state();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = cases[i].v;
        lua_pushinteger(L, v);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        assert_int_equal(b.len, cases[i].len);
        /* same bytes as msgpack-c's smallest encoding */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_int64(&pk, v);
        assert_int_equal(sb.size, b.len);
        assert_memory_equal(sb.data, b.data, b.len);
        /* the put helper agrees */
        ss_buf b2 = SS_BUF_INIT;
        assert_int_equal(ss_mp_put_int(&b2, v), 0);
        assert_memory_equal(b2.data, b.data, b.len);
        if (v >= 0) {
            ss_buf_reset(&b2);
            assert_int_equal(ss_mp_put_uint(&b2, (uint64_t)v), 0);
            assert_int_equal(b2.len, b.len);
            assert_memory_equal(b2.data, b.data, b.len);
        }
        /* and decodes back to the same integer */
        decode_all(L, b.data, b.len);
        assert_true(lua_isinteger(L, -1));
        assert_true(lua_tointeger(L, -1) == v);
        lua_pop(L, 2);
        /* every non-minimal width msgpack allows decodes too */
        for (int w = 0; w < 4; w++) {
            char buf[9];
            size_t n = (size_t)1 << w;
            int fits_u = v >= 0 && (w == 3 || (uint64_t)v < (1ull << (8 * n)));
            int fits_i = w == 3 || (v >= -(1ll << (8 * n - 1)) &&
                                    v < (1ll << (8 * n - 1)));
            for (int sign = 0; sign < 2; sign++) {
                if (!(sign ? fits_i : fits_u))
                    continue;
                buf[0] = (char)((sign ? 0xd0 : 0xcc) + w);
                for (size_t k = 0; k < n; k++)
                    buf[1 + k] = (char)((uint64_t)v >> (8 * (n - 1 - k)));
                decode_all(L, buf, n + 1);
                assert_true(lua_isinteger(L, -1));
                assert_true(lua_tointeger(L, -1) == v);
                lua_pop(L, 1);
            }
        }
        msgpack_sbuffer_destroy(&sb);
        ss_buf_release(&b);
        ss_buf_release(&b2);
    }
    lua_close(L);
}

static void test_uint64_above_int64_is_float(void **state)
{
    (void)state;
    lua_State *L = new_state();
    uint64_t vals[] = {(uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (int i = 0; i < 2; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_uint64(&pk, vals[i]);
        assert_int_equal((uint8_t)sb.data[0], 0xcf);
        decode_all(L, sb.data, sb.size);
        assert_int_equal(lua_type(L, -1), LUA_TNUMBER);
        assert_false(lua_isinteger(L, -1));
        assert_true(lua_tonumber(L, -1) == (double)vals[i]);
        lua_pop(L, 1);
        ss_buf j = SS_BUF_INIT;
        size_t off = 0;
        assert_int_equal(ss_mp_to_json(sb.data, sb.size, &off, &j), 0);
        char want[32];
        snprintf(want, sizeof want, "%llu", (unsigned long long)vals[i]);
        assert_string_equal(j.data, want);
        ss_buf_release(&j);
        msgpack_sbuffer_destroy(&sb);
    }
    lua_close(L);
}

static void test_floats(void **state)
{
    (void)state;
    lua_State *L = new_state();
    double vals[] = {0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, INFINITY,
                     -INFINITY, NAN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        lua_pushnumber(L, vals[i]);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        assert_int_equal(b.len, 9);
        assert_int_equal((uint8_t)b.data[0], 0xcb);
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_double(&pk, vals[i]);
        assert_memory_equal(sb.data, b.data, 9);
        /* float32 from msgpack-c decodes to the same float */
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_float(&pk, (float)vals[i]);
        assert_int_equal((uint8_t)sb.data[0], 0xca);
        decode_all(L, sb.data, sb.size);
        assert_false(lua_isinteger(L, -1));
        double got = lua_tonumber(L, -1);
        if (isnan(vals[i]))
            assert_true(isnan(got));
        else
            assert_true(got == (double)(float)vals[i]);
        lua_pop(L, 2);
        msgpack_sbuffer_destroy(&sb);
        ss_buf_release(&b);
    }
    lua_close(L);
}

/* Builds a string of n bytes: ASCII, or ASCII with one é at pos. */
static char *make_str(size_t n, char fill)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, fill, n);
    s[n] = 0;
    return s;
}

static void test_str_bin_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint8_t str, bin;
        size_t hlen;
    } cases[] = {
        {0, 0xa0, 0xc4, 1},     {1, 0xa1, 0xc4, 1},
        {31, 0xbf, 0xc4, 1},    {32, 0xd9, 0xc4, 2},
        {255, 0xd9, 0xc4, 2},   {256, 0xda, 0xc5, 3},
        {65535, 0xda, 0xc5, 3}, {65536, 0xdb, 0xc6, 5},
        {70001, 0xdb, 0xc6, 5},
    };
    lua_State *L = new_state();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n;
        for (int bin = 0; bin < 2; bin++) {
            if (bin && n == 0)
                continue; /* the empty string is valid UTF-8 */
            char *s = make_str(n, 'x');
            if (bin)
                s[n - 1] = (char)0xff;
            lua_pushlstring(L, s, n);
            ss_buf b = SS_BUF_INIT;
            encode_ok(L, -1, &b);
            assert_int_equal((uint8_t)b.data[0],
                             bin ? cases[i].bin : cases[i].str);
            size_t hlen = bin ? (n <= 255 ? 2 : cases[i].hlen)
                              : cases[i].hlen;
            assert_int_equal(b.len, hlen + n);
            /* msgpack-c writes the same bytes */
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            if (bin) {
                msgpack_pack_bin(&pk, n);
                msgpack_pack_bin_body(&pk, s, n);
            } else {
                msgpack_pack_str(&pk, n);
                msgpack_pack_str_body(&pk, s, n);
            }
            assert_int_equal(sb.size, b.len);
            assert_memory_equal(sb.data, b.data, b.len);
            check_with_msgpackc(L, -1, &b);
            decode_all(L, b.data, b.len);
            assert_true(lua_deep_eq(L, -1, -2));
            lua_pop(L, 2);
            /* put/get helpers */
            ss_buf b2 = SS_BUF_INIT;
            assert_int_equal(bin ? ss_mp_put_bin(&b2, s, n)
                                 : ss_mp_put_str(&b2, s, n),
                             0);
            assert_int_equal(b2.len, b.len);
            assert_memory_equal(b2.data, b.data, b.len);
            const char *gs = NULL;
            size_t gl = 0, off = 0;
            assert_int_equal(ss_mp_get_str(b.data, b.len, &off, &gs, &gl), 0);
            assert_int_equal(off, b.len);
            assert_int_equal(gl, n);
            assert_ptr_equal(gs, b.data + hlen);
            ss_buf_release(&b2);
            msgpack_sbuffer_destroy(&sb);
            ss_buf_release(&b);
            free(s);
        }
    }
    lua_close(L);
}

static void test_utf8_detection(void **state)
{
    (void)state;
    lua_State *L = new_state();
    static const struct {
        const char *s;
        size_t n;
        int str;
    } cases[] = {
        {"\xc3\xa9", 2, 1},            /* é */
        {"\xe2\x82\xac", 3, 1},        /* € */
        {"\xf0\x9f\x98\x80", 4, 1},    /* 😀 */
        {"\xff", 1, 0},                /* never valid */
        {"abc\xc3", 4, 0},             /* truncated sequence */
        {"\xc0\x80", 2, 0},            /* overlong NUL */
        {"\xed\xa0\x80", 3, 0},        /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0},    /* above U+10FFFF */
        {"\x80", 1, 0},                /* lone continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lua_pushlstring(L, cases[i].s, cases[i].n);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        uint8_t want = cases[i].str ? (uint8_t)(0xa0 | cases[i].n) : 0xc4;
        assert_int_equal((uint8_t)b.data[0], want);
        check_with_msgpackc(L, -1, &b);
        lua_pop(L, 1);
        ss_buf_release(&b);
    }
    /* one non-ASCII byte at every position of a 40-byte string: the word
     * fast path must not miss it */
    for (size_t pos = 0; pos < 40; pos++) {
        for (int valid = 0; valid < 2; valid++) {
            char s[41];
            memset(s, 'a', 40);
            size_t n = 40;
            if (valid && pos < 39) {
                s[pos] = (char)0xc3;
                s[pos + 1] = (char)0xa9;
            } else {
                s[pos] = (char)0xe9; /* latin-1 é: invalid */
            }
            int is_str = valid && pos < 39;
            lua_pushlstring(L, s, n);
            ss_buf b = SS_BUF_INIT;
            encode_ok(L, -1, &b);
            assert_int_equal((uint8_t)b.data[0], is_str ? 0xd9 : 0xc4);
            lua_pop(L, 1);
            ss_buf_release(&b);
        }
    }
    lua_close(L);
}

/* A table {1..n} (or a map {k1=1..kn=n} when map). */
static void push_big(lua_State *L, int n, int map)
{
    lua_createtable(L, map ? 0 : n, map ? n : 0);
    for (int i = 1; i <= n; i++) {
        if (map) {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            lua_pushinteger(L, i);
            lua_setfield(L, -2, k);
        } else {
            lua_pushinteger(L, i);
            lua_rawseti(L, -2, i);
        }
    }
}

static void test_container_boundaries(void **state)
{
    (void)state;
    static const struct {
        int n;
        uint8_t arr, map;
        size_t hlen;
    } cases[] = {
        {1, 0x91, 0x81, 1},      {15, 0x9f, 0x8f, 1},
        {16, 0xdc, 0xde, 3},     {65535, 0xdc, 0xde, 3},
        {65536, 0xdd, 0xdf, 5},  {70000, 0xdd, 0xdf, 5},
    };
    lua_State *L = new_state();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int map = 0; map < 2; map++) {
            push_big(L, cases[i].n, map);
            ss_buf b = SS_BUF_INIT;
            encode_ok(L, -1, &b);
            uint8_t want = map ? cases[i].map : cases[i].arr;
            assert_int_equal((uint8_t)b.data[0], want);
            uint32_t count = cases[i].hlen == 1 ? (uint8_t)b.data[0] & 15
                           : cases[i].hlen == 3
                               ? (uint32_t)((uint8_t)b.data[1] << 8 |
                                            (uint8_t)b.data[2])
                               : (uint32_t)((uint8_t)b.data[1] << 24 |
                                            (uint8_t)b.data[2] << 16 |
                                            (uint8_t)b.data[3] << 8 |
                                            (uint8_t)b.data[4]);
            assert_int_equal(count, cases[i].n);
            check_with_msgpackc(L, -1, &b);
            decode_all(L, b.data, b.len);
            assert_true(lua_deep_eq(L, -1, -2));
            lua_pop(L, 1);
            /* msgpack-c's array bytes are ours; its maps decode right */
            check_from_msgpackc(L, -1, !map);
            /* the put helpers write the same header */
            ss_buf h = SS_BUF_INIT;
            assert_int_equal(map ? ss_mp_put_map(&h, (uint32_t)cases[i].n)
                                 : ss_mp_put_array(&h, (uint32_t)cases[i].n),
                             0);
            assert_int_equal(h.len, cases[i].hlen);
            assert_memory_equal(h.data, b.data, h.len);
            ss_buf_release(&h);
            lua_pop(L, 1);
            ss_buf_release(&b);
        }
    }
    lua_close(L);
}

static void test_table_classification(void **state)
{
    (void)state;
    lua_State *L = new_state();
    static const struct {
        const char *expr;
        uint8_t first;
    } cases[] = {
        {"{}", 0x80},
        {"{1, 2, 3}", 0x93},
        {"{'a'}", 0x91},
        {"{1, 2, nil, 4}", 0x83},                  /* hole: a map */
        {"{[2] = 'b'}", 0x81},
        {"{[0] = 'z', 'a'}", 0x82},
        {"{1, 2, x = 1}", 0x83},
        {"{x = 1, 1, 2}", 0x83},
        {"{[1.5] = true}", 0x81},
        {"{[-1] = 1}", 0x81},
        {"(function() local t = {} for i = 5, 1, -1 do t[i] = i end "
         "return t end)()", 0x95},                  /* filled backwards */
        {"(function() local t = {} t[3] = 3 t[1] = 1 t[2] = 2 "
         "return t end)()", 0x93},
        {"(function() local t = {1, 2, 3, 4} t[4] = nil return t end)()",
         0x93},
        {"(function() local t = {} for i = 1, 20 do t[i] = i end "
         "t.n = 20 return t end)()", 0xde},
        {"{[true] = 1, [false] = 0}", 0x82},
        {"{{}, {{}}, {a = {}}}", 0x93},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        push_expr(L, cases[i].expr);
        uint8_t first = round_trip(L);
        if (first != cases[i].first)
            fail_msg("%s: first byte 0x%02x, want 0x%02x", cases[i].expr,
                     first, cases[i].first);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        check_with_msgpackc(L, -1, &b);
        ss_buf_release(&b);
        lua_pop(L, 1);
    }
    /* Sequences whose keys lua_next does not return as 1, 2, 3...: keys
     * in the hash part (filled backwards), or 1..2 in the array part and
     * 3..n in the hash part (the fast path starts, then must restart). */
    static const struct {
        int narr, nhash, n;
        int first_is_1;
    } seqs[] = {{0, 3, 3, 0}, {0, 4, 4, 0}, {0, 8, 8, 0}, {0, 16, 16, 0},
                {2, 8, 8, 1}, {2, 16, 16, 1}};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        int n = seqs[i].n;
        lua_createtable(L, seqs[i].narr, seqs[i].nhash);
        for (int k = n; k >= 1; k--) {
            lua_pushinteger(L, k * 10);
            lua_rawseti(L, -2, k);
        }
        /* the premise: iteration order is not 1..n */
        lua_Integer prev = 0, first = 0;
        int sorted = 1;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_Integer k = lua_tointeger(L, -2);
            if (!first)
                first = k;
            sorted &= k == prev + 1;
            prev = k;
            lua_pop(L, 1);
        }
        assert_false(sorted);
        assert_int_equal(first == 1, seqs[i].first_is_1);
        uint8_t want = n <= 15 ? (uint8_t)(0x90 | n) : 0xdc;
        assert_int_equal(round_trip(L), want);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        check_with_msgpackc(L, -1, &b);
        check_from_msgpackc(L, -1, 1); /* byte-identical to msgpack-c */
        ss_buf_release(&b);
        lua_pop(L, 1);
    }
    lua_close(L);
}

static void test_nested_and_keys(void **state)
{
    (void)state;
    lua_State *L = new_state();
    push_expr(L, "{uniquecarrier = 'AA', arrdelay = '14', n = 3, "
                 "f = 2.5, ok = true, list = {1, 'two', {3}}, "
                 "m = {[1] = 'x', [3] = 'y', ['k y'] = {z = {}}}, "
                 "[7] = -7, [2.5] = 'f', [false] = 'no', "
                 "bin = '\\x00\\xff', utf = '\\u{1F600}'}");
    round_trip(L);
    ss_buf b = SS_BUF_INIT;
    encode_ok(L, -1, &b);
    check_with_msgpackc(L, -1, &b);
    check_from_msgpackc(L, -1, 0);
    ss_buf_release(&b);
    /* a table as a key survives too (compared by content) */
    push_expr(L, "{[{1, 2}] = 'pair'}");
    encode_ok(L, -1, &b);
    decode_all(L, b.data, b.len);
    lua_pushnil(L);
    assert_true(lua_next(L, -2));
    assert_string_equal(lua_tostring(L, -1), "pair");
    lua_rawgeti(L, -2, 2);
    assert_int_equal(lua_tointeger(L, -1), 2);
    lua_settop(L, 0);
    ss_buf_release(&b);
    lua_close(L);
}

static void test_batch_of_events(void **state)
{
    (void)state;
    lua_State *L = new_state();
    ss_buf b = SS_BUF_INIT;
    assert_int_equal(ss_mp_put_str(&b, "raw,line", 8), 0);
    for (int i = 0; i < 100; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, i % 2 ? "AA" : "UA");
        lua_setfield(L, -2, "uniquecarrier");
        lua_pushinteger(L, i);
        lua_setfield(L, -2, "arrdelay");
        encode_ok(L, -1, &b);
        lua_pop(L, 1);
    }
    size_t off = 0;
    const char *s;
    size_t sl;
    assert_int_equal(ss_mp_get_str(b.data, b.len, &off, &s, &sl), 0);
    assert_int_equal(sl, 8);
    assert_memory_equal(s, "raw,line", 8);
    for (int i = 0; i < 100; i++) {
        char err[128];
        size_t before = off;
        assert_int_equal(ss_mp_decode_lua(L, b.data, b.len, &off, err,
                                          sizeof err),
                         0);
        assert_true(off > before);
        lua_getfield(L, -1, "arrdelay");
        assert_int_equal(lua_tointeger(L, -1), i);
        lua_getfield(L, -2, "uniquecarrier");
        assert_string_equal(lua_tostring(L, -1), i % 2 ? "AA" : "UA");
        lua_settop(L, 0);
    }
    assert_int_equal(off, b.len);
    /* get_str refuses what is not str/bin, and leaves off alone */
    size_t o2 = 8 + 1;
    assert_int_equal(ss_mp_get_str(b.data, b.len, &o2, &s, &sl), SS_EDECODE);
    assert_int_equal(o2, 9);
    /* truncated str */
    o2 = 0;
    assert_int_equal(ss_mp_get_str(b.data, 5, &o2, &s, &sl), SS_EDECODE);
    assert_int_equal(o2, 0);
    ss_buf_release(&b);
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* encode errors                                                       */

static void expect_encode_error(lua_State *L, const char *expr, int want_rc,
                                const char *want_err)
{
    push_expr(L, expr);
    ss_buf b = SS_BUF_INIT;
    assert_int_equal(ss_buf_append(&b, "PREFIX", 6), 0);
    int top = lua_gettop(L);
    char err[256];
    int rc = ss_mp_encode_lua(L, -1, &b, err, sizeof err);
    if (rc != want_rc || strcmp(err, want_err) != 0)
        fail_msg("%s: rc %d err '%s', want %d '%s'", expr, rc, err, want_rc,
                 want_err);
    assert_int_equal(lua_gettop(L), top);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "PREFIX", 6);
    lua_pop(L, 1);
    ss_buf_release(&b);
}

static void test_encode_errors(void **state)
{
    (void)state;
    lua_State *L = new_state();
    expect_encode_error(L, "print", SS_EENCODE,
                        "cannot send a function value (at event)");
    expect_encode_error(L, "{uniquecarrier = 'AA', cb = print}", SS_EENCODE,
                        "cannot send a function value (at event.cb)");
    expect_encode_error(L, "{a = {1, 2, {f = coroutine.create(print)}}}",
                        SS_EENCODE,
                        "cannot send a thread value (at event.a[3].f)");
    expect_encode_error(L, "{1, 2, io.stdout}", SS_EENCODE,
                        "cannot send a userdata value (at event[3])");
    expect_encode_error(L, "{['a key'] = {print}}", SS_EENCODE,
                        "cannot send a function value "
                        "(at event[\"a key\"][1])");
    expect_encode_error(L, "{[print] = 1}", SS_EENCODE,
                        "cannot send a function key (at event)");
    expect_encode_error(L, "{x = {[io.stdout] = 1}}", SS_EENCODE,
                        "cannot send a userdata key (at event.x)");
    /* out-of-order sequence takes the indexed path: still named */
    expect_encode_error(L,
                        "(function() local t = {} t[2] = print t[1] = 1 "
                        "return {t} end)()",
                        SS_EENCODE,
                        "cannot send a function value (at event[1][2])");
    /* a mixed table that fell back to a map after array elements */
    expect_encode_error(L, "{1, 2, 3, x = print}", SS_EENCODE,
                        "cannot send a function value (at event.x)");
    lua_pushlightuserdata(L, L);
    ss_buf b = SS_BUF_INIT;
    char err[256];
    assert_int_equal(ss_mp_encode_lua(L, -1, &b, err, sizeof err),
                     SS_EENCODE);
    assert_string_equal(err, "cannot send a light userdata value (at event)");
    assert_int_equal(b.len, 0);
    /* the root name can be chosen */
    push_expr(L, "{f = print}");
    assert_int_equal(ss_mp_encode_lua_as(L, -1, &b, "state", err, sizeof err),
                     SS_EENCODE);
    assert_string_equal(err, "cannot send a function value (at state.f)");
    /* a tiny err buffer truncates, a NULL one is allowed */
    char small[8];
    assert_int_equal(ss_mp_encode_lua(L, -1, &b, small, sizeof small),
                     SS_EENCODE);
    assert_string_equal(small, "cannot ");
    assert_int_equal(ss_mp_encode_lua(L, -1, &b, NULL, 0), SS_EENCODE);
    assert_int_equal(b.len, 0);
    lua_settop(L, 0);
    ss_buf_release(&b);
    lua_close(L);
}

/* Pushes n nested tables {{{...}}} (n >= 1); arrays or maps {a = ...}. */
static void push_nested(lua_State *L, int n, int map)
{
    assert_true(lua_checkstack(L, 4));
    lua_newtable(L);
    for (int i = 1; i < n; i++) {
        lua_newtable(L);
        lua_insert(L, -2);
        if (map)
            lua_setfield(L, -2, "a");
        else
            lua_rawseti(L, -2, 1);
    }
}

static void test_depth_and_cycles(void **state)
{
    (void)state;
    lua_State *L = new_state();
    for (int map = 0; map < 2; map++) {
        push_nested(L, SS_MP_MAX_DEPTH, map);
        round_trip(L);
        lua_pop(L, 1);
        push_nested(L, SS_MP_MAX_DEPTH + 1, map);
        ss_buf b = SS_BUF_INIT;
        char err[512];
        assert_int_equal(ss_mp_encode_lua(L, -1, &b, err, sizeof err),
                         SS_EENCODE);
        const char *want = map ? "cyclic or too deeply nested table "
                                 "(depth > 32, at event.a.a.a"
                               : "cyclic or too deeply nested table "
                                 "(depth > 32, at event[1][1][1]";
        assert_memory_equal(err, want, strlen(want));
        assert_int_equal(b.len, 0);
        lua_pop(L, 1);
        ss_buf_release(&b);
    }
    push_expr(L, "(function() local t = {} t.next = t return t end)()");
    ss_buf b = SS_BUF_INIT;
    char err[512];
    assert_int_equal(ss_mp_encode_lua(L, -1, &b, err, sizeof err),
                     SS_EENCODE);
    assert_non_null(strstr(err, "cyclic or too deeply nested table "
                                "(depth > 32, at event.next.next"));
    assert_int_equal(lua_gettop(L), 1);
    lua_pop(L, 1);
    /* a shared (not cyclic) subtable is fine */
    push_expr(L, "(function() local s = {1} return {s, s, {s}} end)()");
    round_trip(L);
    lua_pop(L, 1);

    /* decoding: 32 nested arrays decode, 33 do not, same for maps */
    for (int map = 0; map < 2; map++) {
        for (int depth = SS_MP_MAX_DEPTH; depth <= SS_MP_MAX_DEPTH + 1;
             depth++) {
            ss_buf_reset(&b);
            for (int i = 0; i < depth; i++) {
                if (map) {
                    assert_int_equal(ss_mp_put_map(&b, 1), 0);
                    assert_int_equal(ss_mp_put_str(&b, "a", 1), 0);
                } else {
                    assert_int_equal(ss_mp_put_array(&b, 1), 0);
                }
            }
            assert_int_equal(ss_mp_put_nil(&b), 0);
            size_t off = 0;
            int want = depth > SS_MP_MAX_DEPTH ? SS_EDECODE : 0;
            assert_int_equal(ss_mp_decode_lua(L, b.data, b.len, &off, err,
                                              sizeof err),
                             want);
            off = 0;
            assert_int_equal(ss_mp_skip(b.data, b.len, &off), want);
            ss_buf j = SS_BUF_INIT;
            off = 0;
            assert_int_equal(ss_mp_to_json(b.data, b.len, &off, &j), want);
            ss_buf_release(&j);
            if (want) {
                char want_err[64];
                snprintf(want_err, sizeof want_err,
                         "nesting deeper than 32 at offset %d",
                         map ? 32 * 3 : 32);
                off = 0;
                ss_mp_decode_lua(L, b.data, b.len, &off, err, sizeof err);
                assert_string_equal(err, want_err);
                assert_int_equal(lua_gettop(L), 0);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    /* tables as keys count toward the depth too: {[{[{...}] = 1}] = 1} */
    for (int depth = SS_MP_MAX_DEPTH; depth <= SS_MP_MAX_DEPTH + 1;
         depth++) {
        ss_buf_reset(&b);
        for (int i = 0; i < depth; i++)
            assert_int_equal(ss_mp_put_map(&b, 1), 0);
        for (int i = 0; i <= depth; i++) /* innermost key, then values */
            assert_int_equal(ss_mp_put_int(&b, 1), 0);
        int want = depth > SS_MP_MAX_DEPTH ? SS_EDECODE : 0;
        size_t off = 0;
        assert_int_equal(ss_mp_skip(b.data, b.len, &off), want);
        off = 0;
        assert_int_equal(ss_mp_decode_lua(L, b.data, b.len, &off, err,
                                          sizeof err),
                         want);
        if (!want) {
            assert_int_equal(off, b.len);
            /* and it encodes back within the limit (the innermost
             * {1: 1} comes back as the one-byte-shorter array [1]) */
            ss_buf r = SS_BUF_INIT;
            encode_ok(L, -1, &r);
            assert_int_equal(r.len, b.len - 1);
            assert_memory_equal(r.data, b.data, depth - 1);
            assert_int_equal((uint8_t)r.data[depth - 1], 0x91);
            ss_buf_release(&r);
            lua_pop(L, 1);
        } else {
            assert_string_equal(err, "nesting deeper than 32 at offset 32");
        }
    }
    ss_buf_release(&b);
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* decode errors                                                       */

static void expect_decode_error(lua_State *L, const char *p, size_t n,
                                const char *want)
{
    char err[256], err2[256];
    size_t off = 0;
    int top = lua_gettop(L);
    int rc = ss_mp_decode_lua(L, p, n, &off, err, sizeof err);
    if (rc != SS_EDECODE || strcmp(err, want) != 0)
        fail_msg("rc %d err '%s', want '%s'", rc, err, want);
    assert_int_equal(off, 0);
    assert_int_equal(lua_gettop(L), top);
    /* validate gives the same reason */
    assert_int_equal(ss_mp_validate(p, n, &off, err2, sizeof err2),
                     SS_EDECODE);
    assert_string_equal(err2, want);
    assert_int_equal(ss_mp_skip(p, n, &off), SS_EDECODE);
    assert_int_equal(off, 0);
}

/* Every decoding error on L; L's stack is left as it was. */
static void decode_errors_on(lua_State *L)
{
    expect_decode_error(L, "\x94\x01\x02\x03\xc1", 5,
                        "invalid type byte 0xc1 at offset 4");
    expect_decode_error(L, "\xc1", 1, "invalid type byte 0xc1 at offset 0");
    expect_decode_error(L, "", 0,
                        "truncated input at offset 0 (value expected)");
    /* "truncated str32 at offset 17" */
    char m[32] = "\x92\xd9\x0e" "0123456789abcd" "\xdb\x00\x00\x00\x05xy";
    expect_decode_error(L, m, 24, "truncated str32 at offset 17");
    expect_decode_error(L, "\xdb\x00\x00", 3, "truncated str32 at offset 0");
    expect_decode_error(L, "\xa3xy", 3, "truncated fixstr at offset 0");
    expect_decode_error(L, "\xcd\x01", 2, "truncated uint16 at offset 0");
    expect_decode_error(L, "\xcb\x00\x00\x00", 4,
                        "truncated float64 at offset 0");
    expect_decode_error(L, "\xc5\x00\x03zz", 5, "truncated bin16 at offset 0");
    expect_decode_error(L, "\x81\xa1k", 3,
                        "truncated input at offset 3 (value expected)");
    /* a huge count with few bytes fails at once (no huge allocation) */
    expect_decode_error(L, "\xdd\xff\xff\xff\xff\x01", 6,
                        "truncated array32 at offset 0 (4294967295 "
                        "elements, 1 bytes left)");
    expect_decode_error(L, "\xdf\x00\x00\x00\x02\x01\x02\x03", 8,
                        "truncated map32 at offset 0 (2 pairs, 3 bytes "
                        "left)");
    expect_decode_error(L, "\x92\x01", 2,
                        "truncated fixarray at offset 0 (2 elements, 1 "
                        "bytes left)");
    /* ext types are refused */
    static const struct {
        const char *p;
        size_t n;
        const char *name;
    } ext[] = {
        {"\xd4\x01\x00", 3, "fixext1"},     {"\xd5\x01\x00\x00", 4, "fixext2"},
        {"\xd6\x01" "abcd", 6, "fixext4"},  {"\xd7\x01" "abcdefgh", 10,
                                             "fixext8"},
        {"\xd8\x01" "abcdefghabcdefgh", 18, "fixext16"},
        {"\xc7\x01\x05x", 4, "ext8"},       {"\xc8\x00\x01\x05x", 5, "ext16"},
        {"\xc9\x00\x00\x00\x01\x05x", 7, "ext32"},
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char want[96];
        snprintf(want, sizeof want,
                 "unsupported %s value (type byte 0x%02x) at offset 0",
                 ext[i].name, (uint8_t)ext[i].p[0]);
        expect_decode_error(L, ext[i].p, ext[i].n, want);
    }
    /* map keys Lua cannot hold */
    expect_decode_error(L, "\x82\xa1k\x01\xc0\x02", 6,
                        "nil map key at offset 4");
    expect_decode_error(L, "\x81\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\x01",
                        11, "NaN map key at offset 1");
    expect_decode_error(L, "\x81\xca\x7f\xc0\x00\x00\x01", 7,
                        "NaN map key at offset 1");
    /* a nested error keeps its own offset, and nothing is left pushed */
    expect_decode_error(L, "\x91\x91\x91\xc1", 4,
                        "invalid type byte 0xc1 at offset 3");
    /* msgpack-c agrees these are not valid where it can tell */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, "\xc1", 1, &off),
                     MSGPACK_UNPACK_PARSE_ERROR);
    off = 0;
    assert_int_equal(msgpack_unpack_next(&u, "\xdb\x00\x00", 3, &off),
                     MSGPACK_UNPACK_CONTINUE);
    msgpack_unpacked_destroy(&u);
    /* a NULL err is fine */
    off = 0;
    assert_int_equal(ss_mp_decode_lua(L, "\xc1", 1, &off, NULL, 0),
                     SS_EDECODE);
    assert_int_equal(lua_gettop(L), 0);
}

static void test_decode_errors(void **state)
{
    (void)state;
    lua_State *L = new_state();
    decode_errors_on(L);
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* the key cache (a state made by ss_lua_new, Lua 5.4)                 */

/* Appends a str (bin when as_bin) of n bytes. */
static void put_raw_str(ss_buf *b, const char *s, size_t n, int as_bin)
{
    uint8_t h[3];
    if (as_bin) {
        h[0] = 0xc4;
        h[1] = (uint8_t)n;
        ss_buf_append(b, h, 2);
    } else if (n < 32) {
        h[0] = (uint8_t)(0xa0 | n);
        ss_buf_append(b, h, 1);
    } else {
        h[0] = 0xd9;
        h[1] = (uint8_t)n;
        ss_buf_append(b, h, 2);
    }
    ss_buf_append(b, s, n);
}

/* The key of index k: 1..40 bytes (past KC_MAXLEN too), with a zero
 * byte in some, and groups that agree in their first and last 8 bytes
 * and differ only in the middle (the cache's hash does not see it). */
static size_t key_of(int k, char *out)
{
    size_t n = (size_t)(k % 40) + 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + (k * 7 + (int)i) % 26);
    if (n >= 17) { /* same ends for every k of this length */
        memset(out, 'E', 8);
        memset(out + n - 8, 'E', 8);
        out[8] = (char)('0' + k % 10);
        out[9] = (char)('0' + (k / 10) % 10);
    }
    if (k % 11 == 0 && n > 2)
        out[1] = '\0';
    return n;
}

static void test_key_cache(void **state)
{
    (void)state;
    ss_lua *S = NULL;
    assert_int_equal(ss_lua_new(NULL, &S), 0);
    lua_State *L = ss_lua_state(S);
    lua_State *plain = new_state(); /* no cache: the reference */
    /* 3000 maps of 1 to 6 keys drawn from 200 keys (three times the
     * cache's slots: collisions and evictions all the time), keys as str
     * or bin; every decoded map must hold exactly its own pairs, like
     * the same bytes decoded without the cache */
    for (int m = 0; m < 3000; m++) {
        ss_buf b = SS_BUF_INIT;
        int nk = 1 + m % 6;
        uint8_t h = (uint8_t)(0x80 | nk);
        ss_buf_append(&b, &h, 1);
        int ks[6];
        for (int j = 0; j < nk; j++) {
            ks[j] = (m * 31 + j * 53) % 200;
            for (int q = 0; q < j; q++)
                if (ks[q] == ks[j])
                    ks[j] = (ks[j] + 1 + q) % 200, q = -1;
            char k[64];
            size_t kn = key_of(ks[j], k);
            put_raw_str(&b, k, kn, (m + j) % 5 == 0);
            uint8_t v = (uint8_t)(ks[j] % 128); /* positive fixint */
            ss_buf_append(&b, &v, 1);
        }
        decode_all(L, b.data, b.len);
        decode_all(plain, b.data, b.len);
        int count = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            count++;
            lua_pop(L, 1);
        }
        assert_int_equal(count, nk);
        for (int j = 0; j < nk; j++) {
            char k[64];
            size_t kn = key_of(ks[j], k);
            lua_pushlstring(L, k, kn);
            assert_int_equal(lua_rawget(L, -2), LUA_TNUMBER);
            assert_int_equal(lua_tointeger(L, -1), ks[j] % 128);
            lua_pop(L, 1);
            lua_pushlstring(plain, k, kn);
            assert_int_equal(lua_rawget(plain, -2), LUA_TNUMBER);
            assert_int_equal(lua_tointeger(plain, -1), ks[j] % 128);
            lua_pop(plain, 1);
        }
        lua_pop(L, 1);
        lua_pop(plain, 1);
        assert_int_equal(lua_gettop(L), 0);
        if (m % 1000 == 999) /* cached strings survive full collections */
            lua_gc(L, LUA_GCCOLLECT, 0);
        ss_buf_release(&b);
    }
    /* a cached key is the same string as one made by Lua (interned) */
    static const char ev[] = "\x82\xadUniqueCarrier\xa2" "AA\xa8" "ArrDelay\x0e";
    for (int i = 0; i < 3; i++) {
        decode_all(L, ev, sizeof ev - 1);
        lua_getfield(L, -1, "UniqueCarrier");
        assert_string_equal(lua_tostring(L, -1), "AA");
        lua_getfield(L, -2, "ArrDelay");
        assert_int_equal(lua_tointeger(L, -1), 14);
        lua_pop(L, 3);
    }
    /* keys that are not strings take the value path, nested maps use the
     * cache too: {[1]=1, [-1.5]=2, [true]=3, inner={k=4}} and a round
     * trip of every kind of key */
    static const char mixed[] = "\x84\x01\x01\xcb\xbf\xf8\x00\x00\x00\x00"
                                "\x00\x00\x02\xc3\x03\xa5inner\x81\xa1k\x04";
    decode_all(L, mixed, sizeof mixed - 1);
    lua_rawgeti(L, -1, 1);
    assert_int_equal(lua_tointeger(L, -1), 1);
    lua_pushnumber(L, -1.5);
    assert_int_equal(lua_rawget(L, -3), LUA_TNUMBER);
    lua_pushboolean(L, 1);
    assert_int_equal(lua_rawget(L, -4), LUA_TNUMBER);
    assert_int_equal(lua_tointeger(L, -1), 3);
    lua_getfield(L, -4, "inner");
    lua_getfield(L, -1, "k");
    assert_int_equal(lua_tointeger(L, -1), 4);
    lua_settop(L, 0);
    assert_int_equal(luaL_dostring(L,
        "return { [1] = 'a', [2.5] = 'b', [false] = 'c', s = 'd', "
        "[string.rep('x', 33)] = 'e', ['a\\0b'] = 'f', [{}] = nil }"), 0);
    round_trip(L);
    lua_settop(L, 0);
    /* every error is the same with the cache, nothing left pushed */
    decode_errors_on(L);
    lua_close(plain);
    ss_lua_destroy(&S);
}

/* A message with every type and width, for truncation and mutation. */
static void build_rich(lua_State *L, ss_buf *b)
{
    push_expr(L, "{uniquecarrier = 'AA', arrdelay = '14', n = -129, "
                 "big = 1 << 40, neg = -(1 << 40), u8 = 200, u16 = 60000, "
                 "i16 = -30000, u32 = 4000000000, f = 0.1, t = true, "
                 "fl = false, list = {1, -1, 'x', {2.5}}, "
                 "s8 = string.rep('a', 40), s16 = string.rep('b', 300), "
                 "bin = '\\xff\\xfe', nested = {a = {b = {c = {}}}}, "
                 "[3] = 'three', [0.5] = 'half'}");
    encode_ok(L, -1, b);
    lua_pop(L, 1);
    /* add widths the encoder never writes itself */
    static const char extra[] =
        "\x93"                         /* fixarray of 3: */
        "\xca\x3f\xc0\x00\x00"         /* float32 1.5 */
        "\xd0\x05"                     /* int8 5 (non-minimal) */
        "\xde\x00\x01\xa1k\xc0";       /* map16 {k = nil} */
    size_t hdr = b->len;
    (void)hdr;
    ss_buf all = SS_BUF_INIT;
    assert_int_equal(ss_mp_put_array(&all, 2), 0);
    assert_int_equal(ss_buf_append(&all, b->data, b->len), 0);
    assert_int_equal(ss_buf_append(&all, extra, sizeof extra - 1), 0);
    ss_buf_release(b);
    *b = all;
}

static void test_truncation_every_offset(void **state)
{
    (void)state;
    lua_State *L = new_state();
    ss_buf b = SS_BUF_INIT;
    build_rich(L, &b);
    /* the whole message is fine (and msgpack-c agrees) */
    decode_all(L, b.data, b.len);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_true(obj_eq(L, -1, &u.data, 0));
    msgpack_unpacked_destroy(&u);
    lua_pop(L, 1);
    for (size_t k = 0; k < b.len; k++) {
        /* an exact-size copy: any read past k is caught by valgrind/ASan */
        char *p = malloc(k ? k : 1);
        assert_non_null(p);
        memcpy(p, b.data, k);
        char err[256];
        off = 0;
        int rc = ss_mp_decode_lua(L, p, k, &off, err, sizeof err);
        if (rc != SS_EDECODE)
            fail_msg("prefix of %zu bytes: rc %d", k, rc);
        assert_int_equal(off, 0);
        assert_int_equal(lua_gettop(L), 0);
        assert_non_null(strstr(err, "truncated"));
        assert_int_equal(ss_mp_skip(p, k, &off), SS_EDECODE);
        ss_buf j = SS_BUF_INIT;
        assert_int_equal(ss_buf_append(&j, "x", 1), 0);
        assert_int_equal(ss_mp_to_json(p, k, &off, &j), SS_EDECODE);
        assert_int_equal(j.len, 1);
        assert_int_equal(off, 0);
        ss_buf_release(&j);
        free(p);
    }
    ss_buf_release(&b);
    lua_close(L);
}

static void test_mutations_never_crash(void **state)
{
    (void)state;
    lua_State *L = new_state();
    ss_buf b = SS_BUF_INIT;
    build_rich(L, &b);
    static const uint8_t vals[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                   0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcb,
                                   0xcf, 0xd3, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd,
                                   0xde, 0xdf, 0xe0, 0xff};
    char *p = malloc(b.len);
    assert_non_null(p);
    size_t ok = 0, bad = 0;
    for (size_t k = 0; k < b.len; k++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(p, b.data, b.len);
            p[k] = (char)vals[v];
            char err[256], err2[256];
            size_t off = 0, off2 = 0, off3 = 0;
            int rc = ss_mp_decode_lua(L, p, b.len, &off, err, sizeof err);
            int rc2 = ss_mp_validate(p, b.len, &off2, err2, sizeof err2);
            assert_true(rc == 0 || rc == SS_EDECODE);
            assert_int_equal(rc, rc2);
            assert_int_equal(off, off2);
            if (rc) {
                assert_string_equal(err, err2);
                assert_int_equal(lua_gettop(L), 0);
                bad++;
            } else {
                assert_int_equal(lua_gettop(L), 1);
                assert_true(off <= b.len);
                /* whatever decoded re-encodes */
                ss_buf r = SS_BUF_INIT;
                encode_ok(L, -1, &r);
                ss_buf_release(&r);
                lua_pop(L, 1);
                ok++;
            }
            ss_buf j = SS_BUF_INIT;
            int rj = ss_mp_to_json(p, b.len, &off3, &j);
            if (rc == 0)
                assert_int_equal(rj, 0);
            ss_buf_release(&j);
        }
    }
    assert_true(ok > 0);
    assert_true(bad > 0);
    free(p);
    ss_buf_release(&b);
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* random values, both directions against msgpack-c                    */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void push_random(lua_State *L, int depth);

static void push_random_string(lua_State *L)
{
    char s[300];
    size_t n = rnd() % 5 == 0 ? rnd() % 300 : rnd() % 12;
    int mode = (int)(rnd() % 3);
    for (size_t i = 0; i < n; i++)
        s[i] = mode == 0 ? (char)('a' + rnd() % 26)
             : mode == 1 ? (char)(rnd() & 0xff)
                         : (char)(i % 2 ? 0xa9 : 0xc3);
    if (mode == 2 && n % 2)
        n--; /* keep é pairs whole */
    lua_pushlstring(L, s, n);
}

static void push_random(lua_State *L, int depth)
{
    assert_true(lua_checkstack(L, 8));
    int kind = (int)(rnd() % (depth < 4 ? 9 : 6));
    switch (kind) {
    case 0:
        lua_pushboolean(L, (int)(rnd() & 1));
        break;
    case 1: {
        int bits = (int)(rnd() % 64);
        int64_t v = (int64_t)(rnd() >> (63 - bits));
        lua_pushinteger(L, rnd() & 1 ? v : -v);
        break;
    }
    case 2: {
        uint64_t u = rnd();
        double d;
        memcpy(&d, &u, 8);
        lua_pushnumber(L, rnd() % 4 ? (double)(int64_t)u / 1e6 : d);
        break;
    }
    case 3:
    case 4:
    case 5:
        push_random_string(L);
        break;
    case 6:
    case 7: { /* array */
        int n = (int)(rnd() % 20);
        lua_createtable(L, n, 0);
        for (int i = 1; i <= n; i++) {
            push_random(L, depth + 1);
            lua_rawseti(L, -2, i);
        }
        break;
    }
    default: { /* map */
        int n = (int)(rnd() % 20);
        lua_newtable(L);
        for (int i = 0; i < n; i++) {
            switch (rnd() % 4) {
            case 0:
                lua_pushinteger(L, (lua_Integer)(rnd() % 100) - 50);
                break;
            case 1:
                lua_pushnumber(L, (double)(rnd() % 1000) / 7.0);
                break;
            default:
                push_random_string(L);
            }
            push_random(L, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
    }
}

static void test_random_cross_check(void **state)
{
    (void)state;
    lua_State *L = new_state();
    for (int i = 0; i < 2000; i++) {
        push_random(L, 0);
        round_trip(L);
        ss_buf b = SS_BUF_INIT;
        encode_ok(L, -1, &b);
        check_with_msgpackc(L, -1, &b);
        check_from_msgpackc(L, -1, 0);
        /* to_json always works on what we encode */
        ss_buf j = SS_BUF_INIT;
        size_t off = 0;
        assert_int_equal(ss_mp_to_json(b.data, b.len, &off, &j), 0);
        assert_int_equal(off, b.len);
        assert_int_equal(strlen(j.data), j.len);
        ss_buf_release(&j);
        ss_buf_release(&b);
        lua_pop(L, 1);
    }
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* to_json                                                             */

static void expect_json(lua_State *L, const char *expr, const char *want)
{
    push_expr(L, expr);
    ss_buf b = SS_BUF_INIT;
    encode_ok(L, -1, &b);
    lua_pop(L, 1);
    ss_buf j = SS_BUF_INIT;
    size_t off = 0;
    assert_int_equal(ss_mp_to_json(b.data, b.len, &off, &j), 0);
    if (strcmp(j.data, want) != 0)
        fail_msg("%s -> %s, want %s", expr, j.data, want);
    assert_int_equal(off, b.len);
    ss_buf_release(&j);
    ss_buf_release(&b);
}

static void test_to_json(void **state)
{
    (void)state;
    lua_State *L = new_state();
    expect_json(L, "nil", "null");
    expect_json(L, "true", "true");
    expect_json(L, "-5", "-5");
    expect_json(L, "math.maxinteger", "9223372036854775807");
    expect_json(L, "1.5", "1.5");
    expect_json(L, "1.0", "1.0");
    expect_json(L, "0.1", "0.1");
    expect_json(L, "1e300", "1e+300");
    expect_json(L, "0/0", "null");
    expect_json(L, "1/0", "null");
    expect_json(L, "'a\"b\\\\c\\n\\t\\1'", "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    expect_json(L, "'\\u{e9}'", "\"\xc3\xa9\"");
    expect_json(L, "'a\\xffb'", "\"a\\u00ffb\"");
    expect_json(L, "{}", "{}");
    expect_json(L, "{1, 'two', {3}}", "[1,\"two\",[3]]");
    expect_json(L, "{a = {b = {}}}", "{\"a\":{\"b\":{}}}");
    expect_json(L, "{[5] = 'x'}", "{\"5\":\"x\"}");
    expect_json(L, "{[true] = 1}", "{\"true\":1}");
    expect_json(L, "{[{1}] = 1}", "{\"[1]\":1}");
    /* appends after what is there, and is NUL-terminated */
    ss_buf j = SS_BUF_INIT;
    assert_int_equal(ss_buf_append(&j, "x=", 2), 0);
    size_t off = 0;
    assert_int_equal(ss_mp_to_json("\x92\x01\xc0", 3, &off, &j), 0);
    assert_string_equal(j.data, "x=[1,null]");
    assert_int_equal(off, 3);
    /* ext: refused, out restored */
    off = 0;
    assert_int_equal(ss_mp_to_json("\x91\xd4\x01\x00", 4, &off, &j),
                     SS_EDECODE);
    assert_string_equal(j.data, "x=[1,null]");
    ss_buf_release(&j);
    /* keys nested in keys: each level escapes the one below; the cut at
     * 128 bytes keeps the text small instead of exponential */
    ss_buf k = SS_BUF_INIT;
    for (int i = 0; i < SS_MP_MAX_DEPTH; i++)
        assert_int_equal(ss_mp_put_map(&k, 1), 0);
    assert_int_equal(ss_mp_put_str(&k, "key\"q", 5), 0);
    for (int i = 0; i < SS_MP_MAX_DEPTH; i++)
        assert_int_equal(ss_mp_put_int(&k, i), 0);
    ss_buf_init(&j);
    off = 0;
    assert_int_equal(ss_mp_to_json(k.data, k.len, &off, &j), 0);
    assert_int_equal(off, k.len);
    assert_true(j.len < 2048);
    assert_memory_equal(j.data, "{\"{\\\"{\\\\\\\"{", 11);
    assert_non_null(strstr(j.data, "...\":31}"));
    ss_buf_release(&j);
    ss_buf_release(&k);
    /* a short non-string key is not cut */
    ss_buf_init(&j);
    off = 0;
    assert_int_equal(ss_mp_to_json("\x81\x92\x01\x02\x03", 5, &off, &j), 0);
    assert_string_equal(j.data, "{\"[1,2]\":3}");
    ss_buf_release(&j);
    /* float formatting helper */
    char num[32];
    assert_int_equal(ss_mp_fmt_double(num, sizeof num, 2.0), 3);
    assert_string_equal(num, "2.0");
    ss_mp_fmt_double(num, sizeof num, 0.1 + 0.2);
    assert_string_equal(num, "0.30000000000000004");
    ss_mp_fmt_double(num, sizeof num, -1e-7);
    assert_string_equal(num, "-1e-07");
    assert_int_equal(ss_mp_fmt_double(num, 3, 123456.0), 0);
    lua_close(L);
}

/* A reject line holds strings written by ss_buf_json_str (stage, reason)
 * and by ss_mp_to_json (the event): both must spell every string the same
 * way (they used to differ: "\n" against "\u000a", DEL raw or escaped). */
static void test_to_json_strings_like_reject_fields(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"plain", 5},
        {"tab\there\nand\r\b\f", 15},
        {"del\x7f", 4},
        {"nul\0x\x01\x1f", 7},
        {"q\"b\\", 4},
        {"caf\xc3\xa9", 5},
        {"bad\xff\xfe\xe2\x82", 7},
        {"\xed\xa0\x80", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ss_buf mp, a, b;
        ss_buf_init(&mp);
        ss_buf_init(&a);
        ss_buf_init(&b);
        assert_int_equal(ss_mp_put_str(&mp, cases[i].s, cases[i].n), 0);
        size_t off = 0;
        assert_int_equal(ss_mp_to_json(mp.data, mp.len, &off, &a), 0);
        assert_int_equal(ss_buf_json_str(&b, cases[i].s, cases[i].n), 0);
        assert_string_equal(a.data, b.data);
        ss_buf_release(&mp);
        ss_buf_release(&a);
        ss_buf_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_int_boundaries),
        cmocka_unit_test(test_uint64_above_int64_is_float),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_str_bin_boundaries),
        cmocka_unit_test(test_utf8_detection),
        cmocka_unit_test(test_container_boundaries),
        cmocka_unit_test(test_table_classification),
        cmocka_unit_test(test_nested_and_keys),
        cmocka_unit_test(test_batch_of_events),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_depth_and_cycles),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_key_cache),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_mutations_never_crash),
        cmocka_unit_test(test_random_cross_check),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_to_json_strings_like_reject_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
