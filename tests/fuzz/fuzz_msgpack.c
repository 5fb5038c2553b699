/*
 * fuzz_msgpack.c - libFuzzer target for the event decoder
 * (src/lua/ss_lua_msgpack.c, src/wire/ss_msgpack.c). Decodes arbitrary
 * bytes as a batch of values into a Lua state and checks, for every value:
 *   - decode never reads past the input (ASan) and returns 0 or
 *     SS_EDECODE, leaving the stack as documented;
 *   - ss_mp_validate agrees with the decoder: same result, same offset,
 *     same reason;
 *   - ss_mp_to_json accepts whatever the decoder accepts;
 *   - what decoded re-encodes, and the re-encoding decodes again and
 *     encodes to as many bytes (a fixed point after one trip, up to the
 *     order of map pairs, which is Lua's iteration order);
 *   - the decoder's key cache changes nothing: the state is made by
 *     ss_lua_new (which has the cache), and a plain luaL_newstate (which
 *     has none) decodes the same bytes to the same result, offset and
 *     reason, and a value that encodes to as many bytes.
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     -I/usr/include/lua5.4 tests/fuzz/fuzz_msgpack.c src/wire/ss_msgpack.c \
 *     src/lua/ss_lua_msgpack.c src/lua/ss_lua_csv.c \
 *     src/wire/ss_csv.c \
 *     src/core/ss_*.c -llua5.4 -o build/fuzz_msgpack
 *   build/fuzz_msgpack -max_total_time=60 -max_len=4096
 */
#include "core/ss_buf.h"
#include "securestreams.h"
#include "lua/ss_lua.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ss_lua *S;
static lua_State *L, *P; /* with and without the key cache */
static ss_buf enc1, enc2, encp, json;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_msgpack: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        check(ss_lua_new(NULL, &S) == 0, "lua state");
        L = ss_lua_state(S);
        P = luaL_newstate();
        check(P != NULL, "plain lua state");
    }
    const char *p = (const char *)data;
    size_t off = 0;
    char err[256], err2[256];
    while (off < size) {
        size_t o1 = off, o2 = off, o3 = off, op = off;
        int rc = ss_mp_decode_lua(L, p, size, &o1, err, sizeof err);
        int rc2 = ss_mp_validate(p, size, &o2, err2, sizeof err2);
        check(rc == 0 || rc == SS_EDECODE, "decode result");
        check(rc == rc2, "validate agrees with decode");
        char errp[256];
        int rcp = ss_mp_decode_lua(P, p, size, &op, errp, sizeof errp);
        check(rcp == rc && op == o1, "same decoding without the key cache");
        if (rcp) {
            check(strcmp(errp, err) == 0, "same reason without the cache");
            check(lua_gettop(P) == 0, "nothing pushed on error (plain)");
        } else {
            ss_buf_reset(&encp);
            check(ss_mp_encode_lua(P, -1, &encp, errp, sizeof errp) == 0,
                  "encode (plain)");
            lua_settop(P, 0);
        }
        if (rc) {
            check(lua_gettop(L) == 0, "nothing pushed on error");
            check(o1 == off && o2 == off, "offset kept on error");
            check(strcmp(err, err2) == 0, "same reason");
            break;
        }
        check(lua_gettop(L) == 1, "one value pushed");
        check(o1 == o2 && o1 > off && o1 <= size, "offsets");
        ss_buf_reset(&json);
        check(ss_mp_to_json(p, size, &o3, &json) == 0, "to_json accepts");
        check(o3 == o1, "to_json offset");

        ss_buf_reset(&enc1);
        ss_buf_reset(&enc2);
        check(ss_mp_encode_lua(L, -1, &enc1, err, sizeof err) == 0,
              "re-encode");
        lua_pop(L, 1);
        size_t e = 0;
        check(ss_mp_decode_lua(L, enc1.data, enc1.len, &e, err,
                               sizeof err) == 0 && e == enc1.len,
              "re-decode");
        check(ss_mp_encode_lua(L, -1, &enc2, err, sizeof err) == 0,
              "re-re-encode");
        lua_pop(L, 1);
        /* map order may differ between the two trips (it is Lua's
         * iteration order), the size may not */
        check(enc1.len == enc2.len, "fixed point");
        check(encp.len == enc1.len, "same value without the key cache");
        off = o1;
    }
    lua_settop(L, 0);
    /* no gc here: let Lua's own collector run as in production */
    return 0;
}
