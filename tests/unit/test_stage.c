/*
 * test_stage.c - the stage runner: events through a user's Rx chain,
 * rejects that roll back partial output, accounting, completion, the
 * memory cap and the sandboxed library set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lua/ss_lua.h"
#include "lua/ss_stage.h"
#include "securestreams.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ss_stage *load(const char *src, int sandboxed, size_t cap)
{
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = src;
    o.script_len = strlen(src);
    o.script_path = "=test";
    o.name = "t-1";
    o.stage = "t";
    o.host_errors = 1;
    o.sandboxed = sandboxed;
    o.mem_limit = cap;
    ss_stage *s = NULL;
    char err[512] = "";
    int rc = ss_stage_new(&o, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "load failed: %s\n", err);
    assert_int_equal(rc, 0);
    return s;
}

/* Encodes the Lua expression exprs (a list) as a batch payload. */
static uint32_t payload(const char *exprs, ss_buf *b)
{
    lua_State *L = luaL_newstate();
    char chunk[1024];
    snprintf(chunk, sizeof chunk, "return %s", exprs);
    assert_int_equal(luaL_dostring(L, chunk), 0);
    int n = lua_gettop(L);
    char err[256];
    for (int i = 1; i <= n; i++)
        assert_int_equal(ss_mp_encode_lua(L, i, b, err, sizeof err), 0);
    lua_close(L);
    return (uint32_t)n;
}

/* Decodes output event i as a Lua value and returns tostring-ish text. */
static void out_event(const ss_stage_out *o, int want, char *txt, size_t n)
{
    lua_State *L = luaL_newstate();
    size_t off = 0;
    char err[256];
    for (int i = 0; i <= want; i++) {
        lua_settop(L, 0);
        assert_int_equal(ss_mp_decode_lua(L, o->events.data, o->events.len,
                                          &off, err, sizeof err),
                         0);
    }
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "k");
        snprintf(txt, n, "k=%s", lua_tostring(L, -1));
    } else {
        snprintf(txt, n, "%s", luaL_tolstring(L, 1, NULL));
    }
    lua_close(L);
}

static void run_batch(ss_stage *s, const char *exprs, ss_stage_out *out)
{
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.count = payload(exprs, &b);
    h.len = (uint32_t)b.len;
    h.stream = 3;
    h.seq = 9;
    h.first_row = 100;
    assert_int_equal(ss_stage_process(s, &h, b.data, b.len, out), 0);
    ss_buf_release(&b);
}

static void test_map_filter_chain(void **state)
{
    (void)state;
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('ipc://in')\n"
                       "  :map(function(x) return x * 10 end)\n"
                       "  :filter(function(x) return x > 15 end)\n"
                       "  :subscribeToSocket('ipc://out')\n",
                       0, 0);
    assert_string_equal(ss_stage_from(s), "ipc://in");
    assert_string_equal(ss_stage_to(s), "ipc://out");
    assert_int_equal(ss_stage_stateful(s), 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "1, 2, 3", &out);
    assert_int_equal(out.count, 2);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "20");
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "30");
    assert_int_equal(out.delta.in, 3);
    assert_int_equal(out.delta.passed, 2);
    assert_int_equal(out.delta.dropped, 1);
    assert_int_equal(out.delta.rejected, 0);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
    assert_null(s);
}

static void test_error_rejects_one_event(void **state)
{
    (void)state;
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x')\n"
                       "  :map(function(x)\n"
                       "     if x == 2 then error('two is bad') end\n"
                       "     return x end)\n"
                       "  :subscribeToSocket('y')\n",
                       0, 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "1, 2, 3", &out);
    assert_int_equal(out.count, 2);
    assert_int_equal(out.delta.rejected, 1);
    assert_int_equal(out.nrejects, 1);
    assert_non_null(strstr(out.rejects.data, "two is bad"));
    assert_non_null(strstr(out.rejects.data, "\"row\":101"));
    assert_non_null(strstr(out.rejects.data, "\"stream\":3"));
    assert_non_null(strstr(out.rejects.data, "\"worker\":\"t-1\""));
    /* the stream goes on: a later batch still flows */
    ss_stage_out_reset(&out);
    run_batch(s, "4", &out);
    assert_int_equal(out.count, 1);
    const ss_stage_counts *t = ss_stage_totals(s);
    assert_int_equal(t->in, 4);
    assert_int_equal(t->in, t->passed + t->dropped + t->rejected);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_unsendable_value_rolls_back(void **state)
{
    (void)state;
    /* flatMap emits a good value then a function: the event is rejected
     * and its first (good) output must not leak into the batch */
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x')\n"
                       "  :flatMap(function(x)\n"
                       "     if x == 2 then return Rx.Observable.of(x, "
                       "print) end\n"
                       "     return Rx.Observable.of(x) end)\n"
                       "  :subscribeToSocket('y')\n",
                       0, 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "1, 2, 3", &out);
    assert_int_equal(out.delta.rejected, 1);
    assert_int_equal(out.count, 2);
    char txt[64];
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "3");
    assert_non_null(strstr(out.rejects.data, "function"));
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_reduce_emits_at_completion(void **state)
{
    (void)state;
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x')\n"
                       "  :reduce(function(a, x) a.k = (a.k or 0) + x "
                       "return a end, {})\n"
                       "  :subscribeToSocket('y')\n",
                       0, 0);
    assert_int_equal(ss_stage_stateful(s), 1);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "1, 2, 3", &out);
    assert_int_equal(out.count, 0);
    assert_int_equal(out.delta.dropped, 3);
    run_batch(s, "'oops', 4", &out); /* 'oops' + number: rejected */
    assert_int_equal(out.delta.rejected, 1);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_stage_complete(s, &out), 0);
    assert_int_equal(out.count, 1);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "k=10"); /* the bad event left no trace */
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_malformed_payload(void **state)
{
    (void)state;
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x'):subscribeToSocket('y')\n",
                       0, 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    ss_buf b = SS_BUF_INIT;
    payload("1", &b);
    ss_buf_append(&b, "\xdb\x00\x00\x10\x00" "ab", 7); /* str32, truncated */
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.count = 3;
    h.len = (uint32_t)b.len;
    assert_int_equal(ss_stage_process(s, &h, b.data, b.len, &out), 0);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.delta.in, 3);
    assert_int_equal(out.delta.rejected, 2);
    assert_non_null(strstr(out.rejects.data, "malformed event encoding"));
    ss_buf_release(&b);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

/* Issue 10, defect 5: bytes after the `count` events of a batch were
 * dropped without being counted; now they are rejected, and counted. */
static void test_trailing_events(void **state)
{
    (void)state;
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x'):subscribeToSocket('y')\n",
                       0, 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    ss_buf b = SS_BUF_INIT;
    payload("1, 2, 3", &b);
    ss_buf_append(&b, "\xc1", 1); /* and a byte that is no value */
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.count = 1; /* declares one event: 2 values and 1 byte more */
    h.len = (uint32_t)b.len;
    assert_int_equal(ss_stage_process(s, &h, b.data, b.len, &out), 0);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.delta.in, 4);
    assert_int_equal(out.delta.passed, 1);
    assert_int_equal(out.delta.rejected, 3);
    assert_non_null(strstr(out.rejects.data, "declares 1 events but"));
    ss_buf_release(&b);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_sandbox_refuses(void **state)
{
    (void)state;
    ss_stage *s = load(
        "local Rx = require 'zmq-rx'\n"
        "Rx.Subject.fromZmqSocket('x')\n"
        "  :map(function(what)\n"
        "     if what == 'io' then return io.open('/tmp/ss-pwned', 'w') end\n"
        "     if what == 'exec' then return os.execute('true') end\n"
        "     if what == 'debug' then return debug.getinfo(1) end\n"
        "     if what == 'cmod' then return require('socket.core') end\n"
        "     if what == 'bin' then return load(string.dump(print)) end\n"
        "     if what == 'mem' then local t = {} for i = 1, 1e8 do "
        "t[i] = ('x'):rep(64) .. i end end\n"
        "     return 'fine' end)\n"
        "  :subscribeToSocket('y')\n",
        1, 8u << 20);
    ss_stage_out out;
    ss_stage_out_init(&out);
    remove("/tmp/ss-pwned");
    run_batch(s, "'io', 'exec', 'debug', 'cmod', 'bin', 'mem', 'ok'", &out);
    assert_int_equal(out.delta.rejected, 6);
    assert_int_equal(out.count, 1);
    FILE *f = fopen("/tmp/ss-pwned", "r");
    assert_null(f);
    assert_non_null(strstr(out.rejects.data, "not enough memory"));
    assert_true(ss_stage_mem_peak(s) <= (8u << 20));
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_sandbox_engine_escapes(void **state)
{
    (void)state;
    /* the engine's own ways out of the sandbox: LuaJIT's ffi (raw
     * memory) and jit modules, bytecode through loadstring or load
     * (LuaJIT's bytecode loader trusts its input), the 5.1 names of the
     * module searchers; each event must fail, the last one passes */
    ss_stage *s = load(
        "local Rx = require 'zmq-rx'\n"
        "local function f() return 1 end\n"
        "Rx.Subject.fromZmqSocket('x')\n"
        "  :map(function(what)\n"
        "     if what == 'ffi' then return require('ffi').C and 'ffi' end\n"
        "     if what == 'jit' then return jit.status() end\n"
        "     if what == 'ls' then return loadstring(string.dump(f))() end\n"
        "     if what == 'ld' then return load(string.dump(f), 'x', 'b')() "
        "end\n"
        "     if what == 'file' then return require('os.ffi') end\n"
        "     return 'fine' end)\n"
        "  :subscribeToSocket('y')\n",
        1, 8u << 20);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "'ffi', 'jit', 'ls', 'ld', 'file', 'ok'", &out);
    assert_int_equal(out.delta.rejected, 5);
    assert_int_equal(out.count, 1);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_decode_past_memory_cap(void **state)
{
    (void)state;
    /* an event too large for the stage's Lua memory: rejected while
     * decoding (no panic), and the next event is still processed */
    ss_stage *s = load("local Rx = require 'zmq-rx'\n"
                       "Rx.Subject.fromZmqSocket('x')\n"
                       "  :map(function(v) return #v end)\n"
                       "  :subscribeToSocket('y')\n",
                       1, 4u << 20);
    ss_buf b = SS_BUF_INIT;
    size_t big = 8u << 20;
    char *blob = malloc(big);
    assert_non_null(blob);
    memset(blob, 'x', big);
    assert_int_equal(ss_mp_put_str(&b, blob, big), 0);
    assert_int_equal(ss_mp_put_str(&b, "abc", 3), 0);
    free(blob);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.count = 2;
    h.len = (uint32_t)b.len;
    ss_stage_out out;
    ss_stage_out_init(&out);
    assert_int_equal(ss_stage_process(s, &h, b.data, b.len, &out), 0);
    assert_int_equal(out.delta.in, 2);
    assert_int_equal(out.delta.rejected, 1);
    assert_int_equal(out.count, 1);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "3");
    assert_non_null(strstr(out.rejects.data, "not enough memory"));
    ss_buf_release(&b);
    ss_stage_out_release(&out);
    ss_stage_destroy(&s);
}

static void test_syntax_error_reported(void **state)
{
    (void)state;
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = "local x = \n end";
    o.script_len = strlen(o.script_src);
    o.script_path = "=bad.lua";
    ss_stage *s = NULL;
    char err[512] = "";
    assert_int_equal(ss_stage_new(&o, &s, err, sizeof err), SS_ELUA);
    assert_null(s);
    assert_non_null(strstr(err, "bad.lua:2"));
}

/* Issue 8.9: `while true do end` in a stage hung the run until --timeout.
 * An event past max_instructions is rejected with a clear reason (even
 * when the script catches errors or loops in a coroutine) and the next
 * events go on; a completion or a main chunk past it fails naming the
 * stage. */
static void test_instruction_limit(void **state)
{
    (void)state;
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    const char *src =
        "local Rx = require 'zmq-rx'\n"
        "local n = 0\n"
        "Rx.Subject.fromZmqSocket('ipc://in')\n"
        "  :map(function(x)\n"
        "    if x == 1 then while true do end end\n"
        "    if x == 2 then while true do pcall(function() while true do "
        "end end) end end\n"
        "    if x == 3 then local co = coroutine.wrap(function() while "
        "true do end end) co() end\n"
        "    if x == 4 then while true do pcall(error, 'x') end end\n"
        "    n = n + x return x end)\n"
        "  :reduce(function(acc, x) if x == 7 then while true do end end "
        "return acc + x end, 0)\n"
        "  :map(function(t) if t > 100 then while true do end end "
        "return t end)\n"
        "  :subscribeToSocket('ipc://out')\n";
    o.script_src = src;
    o.script_len = strlen(src);
    o.script_path = "=test";
    o.name = "t-1";
    o.stage = "loops";
    o.host_errors = 1;
    o.sandboxed = 1;
    o.max_instructions = 2000000;
    ss_stage *s = NULL;
    char err[512] = "";
    assert_int_equal(ss_stage_new(&o, &s, err, sizeof err), 0);
    assert_int_equal(ss_stage_max_instructions(s), 2000000);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(s, "1, 5, 2, 6, 3, 4, 7, 8", &out);
    assert_int_equal(out.delta.in, 8);
    assert_int_equal(out.delta.rejected, 5);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    int lines = 0;
    for (char *p = rej; (p = strstr(p, "stage 'loops': an event ran past "
                                       "max_instructions (2000000 Lua "
                                       "instructions): stopped"));
         p++)
        lines++;
    if (lines != 5)
        fail_msg("%d clear rejects, not 5: %s", lines, rej);
    free(rej);
    /* the others were folded: 5 + 6 + 8 = 19 */
    ss_stage_out_reset(&out);
    assert_int_equal(ss_stage_complete(s, &out), 0);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "19");
    ss_stage_destroy(&s);

    /* a main chunk that never ends fails to load, naming the stage */
    ss_stage_opts lo = o;
    lo.script_src = "local n = 0 while true do n = n + 1 end";
    lo.script_len = strlen(lo.script_src);
    assert_int_equal(ss_stage_new(&lo, &s, err, sizeof err), SS_ELUA);
    if (!strstr(err, "stage 'loops': loading the script ran past "
                     "max_instructions"))
        fail_msg("unclear: %s", err);

    /* a completion that never ends fails, naming the stage */
    assert_int_equal(ss_stage_new(&o, &s, err, sizeof err), 0);
    ss_stage_out_reset(&out);
    run_batch(s, "50, 60", &out);
    assert_int_equal(out.delta.rejected, 0);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_stage_complete(s, &out), SS_ELUA);
    if (!strstr(ss_stage_error(s), "stage 'loops': the completion ran past "
                                   "max_instructions"))
        fail_msg("unclear: %s", ss_stage_error(s));
    ss_stage_destroy(&s);
    ss_stage_out_release(&out);
}

/* hooked(): 1 if a Lua hook is set on the thread running, counted */
static int hooked_events, events_seen;
static int l_hooked(lua_State *L)
{
    events_seen++;
    if (lua_gethook(L))
        hooked_events++;
    return 0;
}

static int ticks;
static void count_tick(void *arg)
{
    (void)arg;
    ticks++;
}

/* Loads src in a fresh stage whose Lua has hooked() (see above). */
static ss_stage *load_probe(const char *src, uint64_t max_insns)
{
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.name = "t-1";
    o.stage = "probe";
    o.host_errors = 1;
    o.sandboxed = 1;
    o.max_instructions = max_insns;
    ss_stage *s = NULL;
    char err[512] = "";
    assert_int_equal(ss_stage_new(&o, &s, err, sizeof err), 0);
    lua_register(ss_stage_lua(s), "hooked", l_hooked);
    o.script_src = src;
    o.script_len = strlen(src);
    o.script_path = "=probe";
    if (ss_stage_load(s, &o, err, sizeof err))
        fail_msg("load: %s", err);
    return s;
}

/* The budget used to be a count hook set all the time, which made the
 * Lua VM trap on every instruction (+18 % instructions for DelayedFlights'
 * stages, 2.2x for a tight loop). Short events now run with no hook at
 * all; a long one is still stopped, and the host's tick still runs
 * during it; an event under the budget is never stopped. */
static void test_budget_costs_nothing_when_short(void **state)
{
    (void)state;
    const char *src =
        "local Rx = require 'zmq-rx'\n"
        "local gen = coroutine.wrap(function() while true do end end)\n"
        "local co = coroutine.create(function() while true do end end)\n"
        "Rx.Subject.fromZmqSocket('ipc://in')\n"
        "  :map(function(x)\n"
        "    hooked()\n"
        "    if x == -1 then gen() end\n"
        "    if x == -2 then while true do coroutine.resume(co) end end\n"
        "    if x > 1000 then local n = 0 for i = 1, x do n = n + i end "
        "end\n"
        "    return x end)\n"
        "  :subscribeToSocket('ipc://out')\n";
    ss_stage *s = load_probe(src, 2000000);
    ss_stage_out out;
    ss_stage_out_init(&out);
    /* 200 short events: none (or the one a CPU tick fell on) hooked */
    char list[2048] = "1";
    for (int i = 2; i <= 200; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), ", %d",
                 i % 100);
    hooked_events = events_seen = 0;
    run_batch(s, list, &out);
    assert_int_equal(out.delta.rejected, 0);
    assert_int_equal(events_seen, 200);
    /* (a tick hooks the rest of one event: a few under valgrind) */
    if (hooked_events > 20)
        fail_msg("%d of 200 short events ran hooked", hooked_events);
    /* under the budget (~1.2M instructions of 2M): never stopped, even
     * when counted from its start; the tick runs while it does */
    ss_stage_set_tick(s, count_tick, NULL);
    ss_stage_out_reset(&out);
    ticks = 0;
    for (int i = 0; i < 20; i++)
        run_batch(s, "300000", &out);
    assert_int_equal(out.delta.rejected, 0);
    assert_int_equal(out.delta.out, 20);
    /* endless, in a coroutine made by the main chunk (wrap, resume) */
    ss_stage_out_reset(&out);
    run_batch(s, "-1, 5, -2, 6", &out);
    assert_int_equal(out.delta.rejected, 2);
    assert_int_equal(out.delta.out, 2);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    if (!strstr(rej, "stage 'probe': an event ran past max_instructions"))
        fail_msg("unclear: %s", rej);
    free(rej);
    if (ticks < 1)
        fail_msg("the tick never ran during long events");
    /* and after all that, short events run unhooked again */
    ss_stage_out_reset(&out);
    hooked_events = events_seen = 0;
    run_batch(s, list, &out);
    assert_int_equal(events_seen, 200);
    if (hooked_events > 20)
        fail_msg("%d of 200 short events ran hooked after long ones",
                 hooked_events);
    ss_stage_destroy(&s);
    ss_stage_out_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instruction_limit),
        cmocka_unit_test(test_budget_costs_nothing_when_short),
        cmocka_unit_test(test_map_filter_chain),
        cmocka_unit_test(test_error_rejects_one_event),
        cmocka_unit_test(test_unsendable_value_rolls_back),
        cmocka_unit_test(test_reduce_emits_at_completion),
        cmocka_unit_test(test_malformed_payload),
        cmocka_unit_test(test_trailing_events),
        cmocka_unit_test(test_sandbox_refuses),
        cmocka_unit_test(test_sandbox_engine_escapes),
        cmocka_unit_test(test_decode_past_memory_cap),
        cmocka_unit_test(test_syntax_error_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
