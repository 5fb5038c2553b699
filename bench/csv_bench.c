/*
 * csv_bench.c - the csv module on real lines: csv.parse (lazy rows)
 * against csv.fields (plain tables, what csv.parse returned before).
 *
 *   build/bench/csv_bench FILE.csv [ROWS [CASE]]
 *
 * Loads up to ROWS lines (default 300000; the first line is taken as a
 * header and skipped) as Lua strings, then times each case over all of
 * them in a state made like a stage's (ss_lua_new: generational GC).
 * Every case runs 3 times after a full collection; the figure is the
 * median, in ns per line (GC work included: it is most of the cost of
 * eager parsing). CASE runs only the case of that name; the machine
 * being shared and noisy, instruction counts are steadier:
 *   valgrind --tool=callgrind --toggle-collect=time_lua \
 *     build/bench/csv_bench FILE.csv 30000 'parse +[9],[15]'
 * (Ir / 3 runs / 30000 = instructions per line).
 *
 *   fields|parse             the call alone
 *   fields|parse +[9],[15]   what the DelayedFlights mapper reads
 *   ... +[9],[15] x2         the same two fields read twice
 *   ... +ipairs              every field, in order
 *   ... +#                   the field count
 *   msgpack(fields|parse)    ss_mp_encode_lua of the result (from C)
 *   json.encode(fields|parse)
 *
 * Whether __index should cache what it cuts (SS_CSV_ROW_CACHE in
 * src/lua/ss_lua_csv.c) is measured by linking a rebuilt module ahead of
 * the library's:
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc \
 *     $(pkg-config --cflags lua5.4) -DSS_CSV_ROW_CACHE=1 \
 *     bench/csv_bench.c src/lua/ss_lua_csv.c build/libsstream.a \
 *     $(pkg-config --libs lua5.4 libzmq libsodium libseccomp yaml-0.1 \
 *     msgpack) -lpthread -lm -lrt -o /tmp/csv_bench_cache
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "lua/ss_lua.h"
#include "securestreams.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 3

typedef struct lcase {
    const char *name;
    const char *body; /* Lua: runs with `l` bound to each line */
} lcase;

static const lcase cases[] = {
    {"fields", "local t = fields(l)"},
    {"parse", "local t = parse(l)"},
    {"fields +[9],[15]", "local t = fields(l) local a, b = t[9], t[15]"},
    {"parse +[9],[15]", "local t = parse(l) local a, b = t[9], t[15]"},
    {"fields +[9],[15] x2", "local t = fields(l) local a, b = t[9], t[15] "
                            "a, b = t[9], t[15]"},
    {"parse +[9],[15] x2", "local t = parse(l) local a, b = t[9], t[15] "
                           "a, b = t[9], t[15]"},
    {"fields +ipairs", "for _, f in ipairs(fields(l)) do end"},
    {"parse +ipairs", "for _, f in ipairs(parse(l)) do end"},
    {"fields +#", "local n = #fields(l)"},
    {"parse +#", "local n = #parse(l)"},
    {"json.encode(fields)", "local s = encode(fields(l))"},
    {"json.encode(parse)", "local s = encode(parse(l))"},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, cmp_double);
    return v[RUNS / 2];
}

/* Runs the compiled case (a function of the lines table) at fn. */
__attribute__((noinline)) static double time_lua(lua_State *L, int fn, int lines, lua_Integer n)
{
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        lua_gc(L, LUA_GCCOLLECT);
        lua_pushvalue(L, fn);
        lua_pushvalue(L, lines);
        uint64_t t0 = ss_now_ns();
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            exit(1);
        }
        t[r] = (double)(ss_now_ns() - t0) / (double)n;
    }
    return median(t);
}

/* msgpack of each line's fields/parse result, 64 KiB batches. */
__attribute__((noinline)) static double time_msgpack(lua_State *L, int parse, int lines, lua_Integer n)
{
    ss_buf b = SS_BUF_INIT;
    char err[256];
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        lua_gc(L, LUA_GCCOLLECT);
        uint64_t t0 = ss_now_ns();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_pushvalue(L, parse);
            lua_rawgeti(L, lines, i);
            lua_call(L, 1, 1);
            if (ss_mp_encode_lua(L, -1, &b, err, sizeof err)) {
                fprintf(stderr, "encode: %s\n", err);
                exit(1);
            }
            lua_pop(L, 1);
            if (b.len > 65536)
                ss_buf_reset(&b);
        }
        t[r] = (double)(ss_now_ns() - t0) / (double)n;
    }
    ss_buf_release(&b);
    return median(t);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: csv_bench FILE.csv [ROWS]\n");
        return 2;
    }
    long rows = argc > 2 ? atol(argv[2]) : 300000;
    const char *only = argc > 3 ? argv[3] : NULL;
    ss_lua *lua;
    if (ss_lua_new(NULL, &lua)) {
        fprintf(stderr, "no Lua state\n");
        return 1;
    }
    lua_State *L = ss_lua_state(lua);
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    lua_newtable(L);
    int lines = lua_gettop(L);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    lua_Integer n = 0;
    int header = 1;
    while (n < rows && (len = getline(&line, &cap, f)) > 0) {
        if (header) {
            header = 0;
            continue;
        }
        if (line[len - 1] == '\n')
            len--;
        lua_pushlstring(L, line, (size_t)len);
        lua_rawseti(L, lines, ++n);
    }
    free(line);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s: no lines\n", argv[1]);
        return 1;
    }
    printf("%lld lines of %s, median of %d runs\n", (long long)n, argv[1],
           RUNS);
    printf("%-26s %10s %12s\n", "case", "ns/line", "lines/s");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (only && strcmp(only, cases[k].name) != 0)
            continue;
        char src[512];
        snprintf(src, sizeof src,
                 "local csv, json = require 'csv', require 'json' "
                 "local parse, fields, encode = csv.parse, csv.fields, "
                 "json.encode "
                 "return function(lines) for i = 1, #lines do "
                 "local l = lines[i] %s end end",
                 cases[k].body);
        if (luaL_dostring(L, src) != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            return 1;
        }
        double ns = time_lua(L, lua_gettop(L), lines, n);
        lua_pop(L, 1);
        printf("%-26s %10.1f %12.0f\n", cases[k].name, ns, 1e9 / ns);
    }
    static const char *const mp[2] = {"fields", "parse"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "msgpack(%s)", mp[k]);
        if (only && strcmp(only, name) != 0)
            continue;
        lua_getglobal(L, "require");
        lua_pushliteral(L, "csv");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, mp[k]);
        lua_remove(L, -2);
        double ns = time_msgpack(L, lua_gettop(L), lines, n);
        lua_pop(L, 1);
        printf("%-26s %10.1f %12.0f\n", name, ns, 1e9 / ns);
    }
    lua_settop(L, 0);
    ss_lua_destroy(&lua);
    return 0;
}
