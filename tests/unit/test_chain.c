/*
 * test_chain.c - operator chaining (ss_chain): stages in one process,
 * stage k's output fed to stage k+1, counters per stage, rejects named
 * with the stage where they happened, completion in order through a
 * stateful stage in the middle of the chain. The same tests again with
 * the stages sharing one Lua state (ss_stage_new_shared), which must give
 * the same outputs, counters and rejects (an event that fails in stage k
 * hands nothing on; a reject in stage k+1 quotes the value it got, at
 * its index in what stage k handed on), handing values on per event and
 * per batch (SS_CHAIN_DEFER=batch).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lua/ss_chain.h"
#include "lua/ss_stage.h"
#include "securestreams.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stage named `stage` (worker stage-1) whose chain is body, between
 * fromZmqSocket and subscribeToSocket. */
static ss_stage *load(const char *stage, const char *body)
{
    char src[1024], name[64];
    snprintf(src, sizeof src,
             "local Rx = require 'zmq-rx'\n"
             "Rx.Subject.fromZmqSocket('in')\n%s\n"
             "  :subscribeToSocket('out')\n",
             body);
    snprintf(name, sizeof name, "%s-1", stage);
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = src;
    o.script_len = strlen(src);
    o.script_path = "=test";
    o.name = name;
    o.stage = stage;
    o.host_errors = 1;
    o.sandboxed = 1;
    o.mem_limit = 16u << 20;
    o.max_instructions = 2000000;
    ss_stage *s = NULL;
    char err[512] = "";
    int rc = ss_stage_new(&o, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "load failed: %s\n", err);
    assert_int_equal(rc, 0);
    return s;
}

static int shared; /* the tests' chains share one Lua state */

/* Stage `stage` loaded into head's state (ss_stage_new_shared). */
static ss_stage *load_shared(ss_stage *head, const char *stage,
                             const char *body)
{
    char src[1024], name[64];
    snprintf(src, sizeof src,
             "local Rx = require 'zmq-rx'\n"
             "Rx.Subject.fromZmqSocket('in')\n%s\n"
             "  :subscribeToSocket('out')\n",
             body);
    snprintf(name, sizeof name, "%s-1", stage);
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = src;
    o.script_len = strlen(src);
    o.script_path = "=test";
    o.name = name;
    o.stage = stage;
    o.host_errors = 1;
    o.mem_limit = 16u << 20;
    o.max_instructions = 2000000;
    ss_stage *s = NULL;
    char err[512] = "";
    int rc = ss_stage_new_shared(head, &o, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "load failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(ss_stage_shared(s));
    return s;
}

static ss_chain *chain3(const char *a, const char *b, const char *c)
{
    ss_stage *st[3] = {load("a", a), NULL, NULL};
    if (shared) {
        st[1] = load_shared(st[0], "b", b);
        st[2] = load_shared(st[0], "c", c);
    } else {
        st[1] = load("b", b);
        st[2] = load("c", c);
    }
    ss_chain *ch = NULL;
    assert_int_equal(ss_chain_new(st, 3, &ch), 0);
    assert_null(st[0]);
    return ch;
}

/* Runs the batch of the Lua values exprs through ch into out. */
static void run_batch(ss_chain *ch, const char *exprs, ss_stage_out *out)
{
    lua_State *L = luaL_newstate();
    char chunk[512], err[256];
    snprintf(chunk, sizeof chunk, "return %s", exprs);
    assert_int_equal(luaL_dostring(L, chunk), 0);
    ss_buf b = SS_BUF_INIT;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        assert_int_equal(ss_mp_encode_lua(L, i, &b, err, sizeof err), 0);
    lua_close(L);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.count = (uint32_t)n;
    h.len = (uint32_t)b.len;
    h.stream = 3;
    h.seq = 9;
    h.first_row = 100;
    assert_int_equal(ss_chain_process(ch, &h, b.data, b.len, out), 0);
    ss_buf_release(&b);
}

/* Output event i as text (numbers, or "k=v" of a table's field k). */
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

static void expect_counts(ss_chain *ch, size_t k, uint64_t in,
                          uint64_t passed, uint64_t dropped,
                          uint64_t rejected, uint64_t out)
{
    const ss_stage_counts *t = ss_stage_totals(ss_chain_stage(ch, k));
    assert_int_equal(t->in, in);
    assert_int_equal(t->passed, passed);
    assert_int_equal(t->dropped, dropped);
    assert_int_equal(t->rejected, rejected);
    assert_int_equal(t->out, out);
}

static void test_map_filter_map(void **state)
{
    (void)state;
    ss_chain *ch = chain3("  :map(function(x) return x * 10 end)",
                          "  :filter(function(x) return x > 15 end)",
                          "  :map(function(x) return x + 1 end)");
    assert_int_equal(ss_chain_len(ch), 3);
    assert_int_equal(ss_chain_stateful(ch), 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2, 3", &out);
    assert_int_equal(out.count, 2);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "21");
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "31");
    ss_stage_out_reset(&out);
    run_batch(ch, "1", &out); /* all filtered out in b: c sees nothing */
    assert_int_equal(out.count, 0);
    expect_counts(ch, 0, 4, 4, 0, 0, 4);
    expect_counts(ch, 1, 4, 2, 2, 0, 2);
    expect_counts(ch, 2, 2, 2, 0, 0, 2);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_chain_complete(ch, &out, NULL), 0);
    assert_int_equal(out.count, 0);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
    assert_null(ch);
    ss_chain_destroy(&ch); /* safe twice */
}

static void test_reject_in_second_stage_names_it(void **state)
{
    (void)state;
    ss_chain *ch = chain3("  :map(function(x) return x end)",
                          "  :map(function(x) return x + 1 end)",
                          "  :map(function(x) return x * 2 end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 'oops', 3", &out); /* 'oops' + 1 fails in b */
    assert_int_equal(out.count, 2);
    assert_int_equal(out.nrejects, 1);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"b\""));
    assert_non_null(strstr(rej, "\"worker\":\"b-1\""));
    assert_null(strstr(rej, "\"stage\":\"a\""));
    assert_non_null(strstr(rej, "\"event\":\"oops\""));
    free(rej);
    expect_counts(ch, 0, 3, 3, 0, 0, 3);
    expect_counts(ch, 1, 3, 2, 0, 1, 2);
    expect_counts(ch, 2, 2, 2, 0, 0, 2);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* b sums (stateful); c counts what reaches it and adds its own total at
 * completion: c sees b's result only if b completes (and its output is
 * fed to c) before c completes. */
static void test_stateful_stage_in_the_middle(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x) return x * 10 end)",
        "  :reduce(function(a, x) a.k = (a.k or 0) + x return a end, {})",
        "  :map(function(t) return {k = 'sum ' .. t.k} end)");
    assert_int_equal(ss_chain_stateful(ch), 1);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2", &out);
    run_batch(ch, "3", &out);
    assert_int_equal(out.count, 0);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_chain_complete(ch, &out, NULL), 0);
    assert_int_equal(out.count, 1);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "k=sum 60");
    expect_counts(ch, 0, 3, 3, 0, 0, 3);
    expect_counts(ch, 1, 3, 0, 3, 0, 1);
    expect_counts(ch, 2, 1, 1, 0, 0, 1);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* A completion that fails is reported with its stage. */
static void test_completion_failure_names_stage(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x) return x end)",
        "  :reduce(function(a, x) a.k = (a.k or 0) + x return a end, {})",
        "  :reduce(function(a, t) error('boom at c') end, {})");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1", &out);
    ss_stage *failed = NULL;
    /* c rejects b's result (counted), then completes with its seed */
    assert_int_equal(ss_chain_complete(ch, &out, &failed), 0);
    assert_null(failed);
    assert_int_equal(out.nrejects, 1);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"c\""));
    assert_non_null(strstr(rej, "boom at c"));
    free(rej);
    expect_counts(ch, 2, 1, 0, 0, 1, 1);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* An event of a that emits and then fails hands nothing on: b never sees
 * the value emitted before the failure (as if it had been encoded into a
 * batch that the failure rolled back). */
static void test_failed_event_hands_nothing_on(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :flatMap(function(x) return Rx.Observable.create(function(o)\n"
        "      o:onNext(x); if x == 2 then error('late') end\n"
        "      o:onCompleted() end) end)",
        "  :map(function(x) return x * 10 end)",
        "  :reduce(function(a, x) a.k = (a.k or 0) + x return a end, {})");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2, 3", &out);
    assert_int_equal(out.nrejects, 1);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"a\""));
    assert_non_null(strstr(rej, "late"));
    free(rej);
    expect_counts(ch, 0, 3, 2, 0, 1, 2);
    expect_counts(ch, 1, 2, 2, 0, 0, 2);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_chain_complete(ch, &out, NULL), 0);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    /* 10 + 30, nothing of event 2, in one shared state too: what a
     * emits is kept until its event succeeded there (no longer 60: the
     * 2 emitted before the failure reached c's state at once) */
    assert_string_equal(txt, "k=40");
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* Values of every kind reach the next stage (nested tables, a lazy CSV
 * row); a value that cannot be sent is rejected where it was emitted;
 * a reject in b carries b's stage and worker and the input batch's
 * lineage. */
static void test_values_between_states(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x)\n"
        "      if x == 'fn' then return function() end end\n"
        "      if x == 'bad' then return {k = 'bad'} end\n"
        "      return {k = require('csv').parse(x), n = {1, 2, {3}}} end)",
        "  :map(function(e)\n"
        "      if e.k == 'bad' then error('bad in b') end\n"
        "      return {k = e.k[2] .. e.n[3][1] .. #e.n} end)",
        "  :map(function(e) return e end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "'a,b,c', 'fn', 'bad', 'x,y'", &out);
    assert_int_equal(out.count, 2);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "k=b33");
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "k=y33");
    assert_int_equal(out.nrejects, 2);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"a\",\"worker\":\"a-1\""));
    assert_non_null(strstr(rej, "function"));
    /* under the input batch's lineage; its index is the event's in what
     * a handed on (as it would be in a's output batch, unchained), and
     * it quotes what b got, in one shared state too (it used to give the
     * chain's input event and its index there: index 2, "bad") */
    assert_non_null(strstr(rej, "\"stage\":\"b\",\"worker\":"
                                "\"b-1\",\"stream\":3,\"seq\":9,"
                                "\"part\":0,\"index\":1,"));
    assert_non_null(strstr(rej, "\"event\":{\"k\":\"bad\"}"));
    free(rej);
    expect_counts(ch, 0, 4, 3, 0, 1, 3);
    expect_counts(ch, 1, 3, 2, 0, 1, 2);
    expect_counts(ch, 2, 2, 2, 0, 0, 2);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* A value that runs away in b is stopped by b's own instruction budget,
 * rejected in b (the message names b), and only it: a's event passed,
 * the other values go on; a value b emits twice for (flatMap) and c
 * fails on once is rejected in c alone, at its index in b's output. */
static void test_budget_and_rejects_per_stage(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x) return x end)",
        "  :flatMap(function(x)\n"
        "      if x == 2 then while true do end end\n"
        "      return Rx.Observable.of(x, -x) end)",
        "  :map(function(x) if x == -3 then error('neg3') end\n"
        "      return x end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2, 3", &out);
    assert_int_equal(out.count, 3); /* 1, -1, 3 */
    char txt[64];
    out_event(&out, 2, txt, sizeof txt);
    assert_string_equal(txt, "3");
    assert_int_equal(out.nrejects, 2);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"b\",\"worker\":\"b-1\","
                                "\"stream\":3,\"seq\":9,\"part\":0,"
                                "\"index\":1,"));
    assert_non_null(strstr(rej, "stage 'b': an event ran past "
                                "max_instructions"));
    assert_non_null(strstr(rej, "\"stage\":\"c\",\"worker\":\"c-1\","
                                "\"stream\":3,\"seq\":9,\"part\":0,"
                                "\"index\":3,"));
    assert_non_null(strstr(rej, "neg3"));
    assert_non_null(strstr(rej, "\"event\":-3"));
    free(rej);
    expect_counts(ch, 0, 3, 3, 0, 0, 3);
    expect_counts(ch, 1, 3, 2, 0, 1, 4);
    expect_counts(ch, 2, 4, 3, 0, 1, 3);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* Sharing a state: each script's globals are its own (a global of the
 * same name in two stages), reads fall back to the state's; a script
 * with local modules keeps a state of its own (refused here). */
static void test_shared_globals_apart(void **state)
{
    (void)state;
    int was = shared;
    shared = 1;
    ss_chain *ch = chain3(
        "  :map(function(x) n = (n or 0) + 1 return x + n end)",
        "  :map(function(x) n = (n or 100) + 1 return x + n end)",
        "  :map(function(x) return tostring(x) .. type(string.len) end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "0, 0", &out);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt); /* 0 + 1, then + 101 */
    assert_string_equal(txt, "102function");
    out_event(&out, 1, txt, sizeof txt); /* 0 + 2, then + 102 */
    assert_string_equal(txt, "104function");
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
    shared = was;
}

static int set_shared(void **state)
{
    (void)state;
    shared = 1;
    unsetenv("SS_CHAIN_DEFER");
    return 0;
}

/* The same, each stage taking the values of the one before per batch
 * (SS_CHAIN_DEFER=batch, read when a stage joins the state). */
static int set_shared_by_batch(void **state)
{
    (void)state;
    shared = 1;
    setenv("SS_CHAIN_DEFER", "batch", 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_filter_map),
        cmocka_unit_test(test_reject_in_second_stage_names_it),
        cmocka_unit_test(test_stateful_stage_in_the_middle),
        cmocka_unit_test(test_completion_failure_names_stage),
        cmocka_unit_test(test_failed_event_hands_nothing_on),
        cmocka_unit_test(test_values_between_states),
        cmocka_unit_test(test_budget_and_rejects_per_stage),
        cmocka_unit_test(test_shared_globals_apart),
    };
    int rc = cmocka_run_group_tests_name("separate states", tests, NULL,
                                         NULL);
    rc += cmocka_run_group_tests_name("one shared state", tests,
                                      set_shared, NULL);
    return rc + cmocka_run_group_tests_name("one shared state, per batch",
                                            tests, set_shared_by_batch,
                                            NULL);
}
