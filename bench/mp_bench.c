/*
 * mp_bench.c - events/s of the event codec (src/lua/ss_lua_msgpack.c) on
 * DelayedFlights-like events, against msgpack-c doing the same job:
 *
 *   map   {uniquecarrier = "AA", arrdelay = "14"} (what the mapper emits)
 *   line  a 100-byte CSV line as one string (what sources emit)
 *
 * encode: Lua value -> bytes appended to a 64 KiB batch buffer
 *   ours      ss_mp_encode_lua
 *   msgpack-c msgpack_pack_* walking the same Lua value, strings always
 *             str (no UTF-8 check, which favours msgpack-c), and again
 *             with ss_utf8_valid choosing str/bin (the same output as ours)
 * decode: a batch of events -> one Lua value per event (then popped)
 *   ours      ss_mp_decode_lua
 *   msgpack-c msgpack_unpack_next + converting the object to Lua
 * plus ss_mp_skip (validation only) and csv.parse of the line, for scale.
 *
 * Usage: mp_bench [seconds per case, default 0.5]. Prints one line per
 * case; each figure is the best of 3 runs.
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "lua/ss_lua.h"
#include "securestreams.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_BYTES (64u * 1024u)

static const char LINE[] =
    "2008,1,3,4,1829,1755,1959,1925,WN,3920,N464WN,90,90,77,34,34,IND,BWI,"
    "515,3,10,0,,0,2,0,0,0,32";

static double seconds = 0.5;

/* ---------------------------------------------------------------- */
/* msgpack-c side                                                    */

static int check_utf8; /* pack_c: str/bin by UTF-8 validity, like ours */

static void pack_c(lua_State *L, int idx, msgpack_packer *pk)
{
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
        if (check_utf8 && !ss_utf8_valid(s, n, NULL)) {
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, s, n);
        } else {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, s, n);
        }
        break;
    }
    case LUA_TTABLE: {
        idx = lua_absindex(L, idx);
        lua_Unsigned n = lua_rawlen(L, idx);
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        if (n > 0 && n == count) {
            msgpack_pack_array(pk, n);
            for (lua_Unsigned i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, (lua_Integer)i);
                pack_c(L, -1, pk);
                lua_pop(L, 1);
            }
        } else {
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
        msgpack_pack_nil(pk);
    }
}

static void push_obj(lua_State *L, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        lua_pushnil(L);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        lua_pushboolean(L, o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            lua_pushnumber(L, (lua_Number)o->via.u64);
        else
            lua_pushinteger(L, (lua_Integer)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        lua_pushinteger(L, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        lua_pushnumber(L, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        lua_createtable(L, (int)o->via.array.size, 0);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            push_obj(L, &o->via.array.ptr[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case MSGPACK_OBJECT_MAP:
        lua_createtable(L, 0, (int)o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            push_obj(L, &o->via.map.ptr[i].key);
            push_obj(L, &o->via.map.ptr[i].val);
            lua_rawset(L, -3);
        }
        break;
    default:
        lua_pushnil(L);
    }
}

/* ---------------------------------------------------------------- */
/* cases                                                             */

typedef struct bctx {
    lua_State *L;
    int val;        /* stack index of the event */
    ss_buf batch;   /* events encoded back to back */
    size_t nbatch;  /* how many */
    ss_buf out;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    int parse_ref;  /* csv.parse */
} bctx;

/* Each case runs `n` events and returns how many it did. */
typedef size_t (*case_fn)(bctx *c, size_t n);

static size_t enc_ours(bctx *c, size_t n)
{
    char err[128];
    for (size_t i = 0; i < n; i++) {
        if (c->out.len > BATCH_BYTES)
            ss_buf_reset(&c->out);
        if (ss_mp_encode_lua(c->L, c->val, &c->out, err, sizeof err)) {
            fprintf(stderr, "encode: %s\n", err);
            exit(1);
        }
    }
    return n;
}

static size_t enc_msgpackc(bctx *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->sb.size > BATCH_BYTES)
            msgpack_sbuffer_clear(&c->sb);
        pack_c(c->L, c->val, &c->pk);
    }
    return n;
}

static size_t dec_ours(bctx *c, size_t n)
{
    char err[128];
    size_t done = 0;
    while (done < n) {
        size_t off = 0;
        for (size_t i = 0; i < c->nbatch; i++) {
            if (ss_mp_decode_lua(c->L, c->batch.data, c->batch.len, &off, err,
                                 sizeof err)) {
                fprintf(stderr, "decode: %s\n", err);
                exit(1);
            }
            lua_pop(c->L, 1);
        }
        done += c->nbatch;
    }
    return done;
}

static size_t dec_msgpackc(bctx *c, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t off = 0;
        for (size_t i = 0; i < c->nbatch; i++) {
            if (msgpack_unpack_next(&c->u, c->batch.data, c->batch.len,
                                    &off) != MSGPACK_UNPACK_SUCCESS) {
                fprintf(stderr, "msgpack_unpack_next failed\n");
                exit(1);
            }
            push_obj(c->L, &c->u.data);
            lua_pop(c->L, 1);
        }
        done += c->nbatch;
    }
    return done;
}

static size_t skip_ours(bctx *c, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t off = 0;
        for (size_t i = 0; i < c->nbatch; i++)
            if (ss_mp_skip(c->batch.data, c->batch.len, &off))
                exit(1);
        done += c->nbatch;
    }
    return done;
}

static size_t csv_parse(bctx *c, size_t n)
{
    lua_State *L = c->L;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->parse_ref);
        lua_pushvalue(L, c->val);
        lua_call(L, 1, 1);
        lua_pop(L, 1);
    }
    return n;
}

/* Best events/s of 3 runs of `seconds` / 3 each. */
static double measure(bctx *c, case_fn fn)
{
    fn(c, 2000); /* warm up */
    double best = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t t0 = ss_now_ns(), deadline = t0 +
                      (uint64_t)(seconds / 3 * 1e9);
        size_t events = 0;
        uint64_t t;
        do {
            events += fn(c, 4096);
            t = ss_now_ns();
        } while (t < deadline);
        double eps = (double)events / ((double)(t - t0) / 1e9);
        if (eps > best)
            best = eps;
    }
    return best;
}

static void run_event(lua_State *L, const char *name, int val)
{
    bctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.val = val;
    msgpack_sbuffer_init(&c.sb);
    msgpack_packer_init(&c.pk, &c.sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&c.u);
    char err[128];
    while (c.batch.len < BATCH_BYTES) {
        if (ss_mp_encode_lua(L, val, &c.batch, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        c.nbatch++;
    }
    size_t one = c.batch.len / c.nbatch;
    printf("-- %s: %zu bytes/event, batch of %zu events (%zu bytes)\n", name,
           one, c.nbatch, c.batch.len);

    double eo = measure(&c, enc_ours), ec = measure(&c, enc_msgpackc);
    check_utf8 = 1;
    double eu = measure(&c, enc_msgpackc);
    check_utf8 = 0;
    double dd = measure(&c, dec_ours), dc = measure(&c, dec_msgpackc);
    double sk = measure(&c, skip_ours);
    printf("%-36s %12.0f events/s %7.1f ns/event  x%.2f\n",
           "encode  ss_mp_encode_lua", eo, 1e9 / eo, eo / ec);
    printf("%-36s %12.0f events/s %7.1f ns/event\n",
           "encode  msgpack-c pack", ec, 1e9 / ec);
    printf("%-36s %12.0f events/s %7.1f ns/event  (ours x%.2f)\n",
           "encode  msgpack-c pack + UTF-8 check", eu, 1e9 / eu, eo / eu);
    printf("%-36s %12.0f events/s %7.1f ns/event  x%.2f\n",
           "decode  ss_mp_decode_lua", dd, 1e9 / dd, dd / dc);
    printf("%-36s %12.0f events/s %7.1f ns/event\n",
           "decode  msgpack-c unpack + to Lua", dc, 1e9 / dc);
    printf("%-36s %12.0f events/s %7.1f ns/event\n",
           "skip    ss_mp_skip (no Lua)", sk, 1e9 / sk);
    if (lua_type(L, val) == LUA_TSTRING) {
        lua_getglobal(L, "csv");
        lua_getfield(L, -1, "parse");
        c.parse_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
        double cp = measure(&c, csv_parse);
        printf("%-36s %12.0f events/s %7.1f ns/event\n",
               "csv.parse of the line (from C)", cp, 1e9 / cp);
        luaL_unref(L, LUA_REGISTRYINDEX, c.parse_ref);
    }
    msgpack_unpacked_destroy(&c.u);
    msgpack_sbuffer_destroy(&c.sb);
    ss_buf_release(&c.batch);
    ss_buf_release(&c.out);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    if (seconds <= 0)
        seconds = 0.5;
    lua_State *L = luaL_newstate();
    if (!L)
        return 1;
    luaL_openlibs(L);
    luaL_requiref(L, "csv", luaopen_ss_csv, 1);
    lua_pop(L, 1);

    printf("mp_bench: %.2f s per case, best of 3; msgpack-c %s, %s\n",
           seconds, msgpack_version(), LUA_RELEASE);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "AA");
    lua_setfield(L, -2, "uniquecarrier");
    lua_pushliteral(L, "14");
    lua_setfield(L, -2, "arrdelay");
    run_event(L, "map {uniquecarrier=\"AA\", arrdelay=\"14\"}",
              lua_gettop(L));
    lua_pop(L, 1);

    char line[128];
    snprintf(line, sizeof line, "%s", LINE);
    size_t n = strlen(line);
    while (n < 100)
        line[n++] = '0';
    line[n] = '\0';
    lua_pushlstring(L, line, n);
    char title[64];
    snprintf(title, sizeof title, "line (%zu-byte CSV string)", n);
    run_event(L, title, lua_gettop(L));
    lua_pop(L, 1);
    lua_close(L);
    return 0;
}
