/*
 * test_lua.c - the memory-capped allocator of src/lua/ss_lua.c with its
 * free lists of small blocks: the count the cap compares stays exactly
 * Lua's own whatever the lists hold, the cap refuses past its limit and
 * lets freed memory be used again, and reused blocks of every small size
 * keep what Lua writes into them (run under valgrind by `make valgrind`:
 * the lists are freed with the state).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lua/ss_lua.h"
#include "securestreams.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <string.h>

static ss_lua *new_capped(size_t limit)
{
    ss_lua_opts o;
    memset(&o, 0, sizeof o);
    o.mem_limit = limit;
    o.component = "test";
    ss_lua *s = NULL;
    assert_int_equal(ss_lua_new(&o, &s), 0);
    return s;
}

/* Runs src in protected mode; returns 0 or writes the error into err. */
static int run(ss_lua *s, const char *src, char *err, size_t errlen)
{
    return ss_lua_dostring(s, src, strlen(src), "=test", err, errlen);
}

/* Lua's own count of its bytes (5.4: exact; LuaJIT: what it says). */
static size_t lua_count(lua_State *L)
{
    return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
           (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

static void test_count_is_luas_after_churn(void **state)
{
    (void)state;
    ss_lua *s = new_capped(64u << 20);
    lua_State *L = ss_lua_state(s);
    char err[512];
    /* many small blocks of every class freed in bursts by the collector
     * (tables, nodes, strings of 1..300 bytes, closures), then a full
     * collection: the lists hold blocks, the count must not see them */
    assert_int_equal(run(s,
        "local keep = {}\n"
        "for r = 1, 40 do\n"
        "  for i = 1, 2000 do\n"
        "    local n = (i * 7 + r) % 300 + 1\n"
        "    local t = { a = ('x'):rep(n), b = i, [i] = r }\n"
        "    local f = function() return t end\n"
        "    if i % 97 == 0 then keep[#keep + 1] = f end\n"
        "  end\n"
        "  collectgarbage('step')\n"
        "end\n"
        "collectgarbage('collect')\n",
        err, sizeof err), 0);
#ifndef SS_LUAJIT
    assert_int_equal(ss_lua_mem_used(s), lua_count(L));
#else /* LuaJIT's count is its own allocator's, not the cap's */
    assert_true(ss_lua_mem_used(s) > 0 && lua_count(L) > 0);
#endif
    assert_true(ss_lua_mem_peak(s) >= ss_lua_mem_used(s));
    ss_lua_destroy(&s);
    assert_null(s);
}

static void test_cap_refuses_then_frees(void **state)
{
    (void)state;
    size_t cap = 4u << 20;
    ss_lua *s = new_capped(cap);
    lua_State *L = ss_lua_state(s);
    char err[512];
    const char *fill =
        "local t = {}\n"
        "for i = 1, 1e7 do t[i] = ('y'):rep(40) .. i end\n";
    /* past the cap: refused inside the pcall, never above the limit */
    assert_int_not_equal(run(s, fill, err, sizeof err), 0);
    assert_non_null(strstr(err, "not enough memory"));
    assert_true(ss_lua_mem_peak(s) <= cap);
    /* what the failed chunk held is garbage now: after a collection
     * (whose freed small blocks the lists may keep) the same budget is
     * there again, to the byte as Lua counts it (collected from C: LuaJIT
     * makes no emergency collection, so a chunk could not even load) */
    lua_gc(L, LUA_GCCOLLECT, 0);
#ifndef SS_LUAJIT
    assert_int_equal(ss_lua_mem_used(s), lua_count(L));
#else
    assert_true(lua_count(L) < cap / 4);
#endif
    assert_true(ss_lua_mem_used(s) < cap / 4);
    assert_int_equal(run(s,
        "local t = {}\n"
        "for i = 1, 20000 do t[i] = ('z'):rep(40) .. i end\n"
        "assert(#t == 20000 and t[20000] == ('z'):rep(40) .. 20000)\n",
        err, sizeof err), 0);
    assert_true(ss_lua_mem_peak(s) <= cap);
    ss_lua_destroy(&s);
}

static void test_reused_blocks_keep_contents(void **state)
{
    (void)state;
    ss_lua *s = new_capped(0);
    char err[512];
    /* strings of every small length made, dropped and made again, so
     * that reused blocks of each class carry new contents; every one is
     * checked byte by byte against a rebuild */
    assert_int_equal(run(s,
        "local function mk(n, c)\n"
        "  local p = {}\n"
        "  for i = 1, n do p[i] = string.char(32 + (i * c) % 90) end\n"
        "  return table.concat(p)\n"
        "end\n"
        "for round = 1, 6 do\n"
        "  local live = {}\n"
        "  for n = 0, 280 do live[n] = { s = mk(n, round), n = n } end\n"
        "  for n = 0, 280 do\n"
        "    local e = live[n]\n"
        "    assert(#e.s == n and e.s == mk(n, round), 'length ' .. n)\n"
        "  end\n"
        "  live = nil\n"
        "  collectgarbage('collect')\n"
        "end\n",
        err, sizeof err), 0);
    ss_lua_destroy(&s);
    ss_lua_destroy(&s); /* safe twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_is_luas_after_churn),
        cmocka_unit_test(test_cap_refuses_then_frees),
        cmocka_unit_test(test_reused_blocks_keep_contents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
