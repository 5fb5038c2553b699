/*
 * test_chain.c - operator chaining (ss_chain): stages in one process,
 * stage k's output fed to stage k+1, counters per stage, rejects named
 * with the stage where they happened, completion in order through a
 * stateful stage in the middle of the chain. The same tests again with
 * the stages sharing one Lua state (ss_stage_new_shared), which must give
 * the same outputs, counters and rejects (an event that fails in stage k
 * hands nothing on; a reject in stage k+1 quotes the value it got, at
 * its index in what stage k handed on; per-stage budget, modules, data
 * files and snapshots), handing values on per batch (the default) and
 * per event (SS_CHAIN_DEFER=event).
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
#include <sys/stat.h>
#include <unistd.h>

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

/* A checkpoint of a chain with state in two stages (b and c): the
 * snapshot bytes are the same whether the stages share a state or not
 * (one snapshot per stage), and restored into a fresh chain they give
 * what the uninterrupted chain gives. */
static const char *const sb = "  :reduce(function(a, x) a.k = (a.k or 0) "
                              "+ x return a end, {})";
static const char *const sc = "  :scan(function(a, t) return a + t.k end, "
                              "0)\n  :last()";

static void snapshot_of(ss_chain *ch, ss_buf *b)
{
    char err[256] = "";
    int rc = ss_chain_snapshot(ch, b, err, sizeof err);
    if (rc)
        fprintf(stderr, "snapshot: %s\n", err);
    assert_int_equal(rc, 0);
}

static void test_snapshot_per_stage(void **state)
{
    (void)state;
    ss_chain *ch = chain3("  :map(function(x) return x * 10 end)", sb, sc);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2", &out);
    ss_buf snap = SS_BUF_INIT;
    snapshot_of(ch, &snap);
    /* the same state in separate states gives the same bytes */
    int was = shared;
    shared = 0;
    ss_chain *sep = chain3("  :map(function(x) return x * 10 end)", sb, sc);
    run_batch(sep, "1, 2", &out);
    ss_buf snap2 = SS_BUF_INIT;
    snapshot_of(sep, &snap2);
    shared = was;
    assert_int_equal(snap.len, snap2.len);
    assert_memory_equal(snap.data, snap2.data, snap.len);
    ss_chain_destroy(&sep);
    ss_buf_release(&snap2);
    /* restored into a fresh chain, it goes on where the first stopped */
    ss_chain *again = chain3("  :map(function(x) return x * 10 end)", sb,
                             sc);
    char err[256] = "";
    assert_int_equal(ss_chain_restore(again, snap.data, snap.len, err,
                                      sizeof err), 0);
    ss_stage_out_reset(&out);
    run_batch(again, "3", &out);
    run_batch(ch, "3", &out);
    ss_stage_out_reset(&out);
    assert_int_equal(ss_chain_complete(again, &out, NULL), 0);
    assert_int_equal(ss_chain_complete(ch, &out, NULL), 0);
    assert_int_equal(out.count, 2);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "60");
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "60");
    /* not a snapshot of this chain: refused, naming why */
    ss_chain *other = chain3("  :map(function(x) return x end)",
                             "  :map(function(x) return x end)", sb);
    assert_int_not_equal(ss_chain_restore(other, snap.data, snap.len, err,
                                          sizeof err), 0);
    assert_non_null(strstr(err, "not a snapshot of this script"));
    ss_chain_destroy(&other);
    ss_buf_release(&snap);
    ss_stage_out_release(&out);
    ss_chain_destroy(&again);
    ss_chain_destroy(&ch);
}

/* Writes text into dir/name. */
static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A stage loaded from its file (with its local modules and data files),
 * on its own or into head's state. */
static ss_stage *load_file(ss_stage *head, const char *stage,
                           const char *path)
{
    char name[64];
    snprintf(name, sizeof name, "%s-1", stage);
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_path = path;
    o.name = name;
    o.stage = stage;
    o.host_errors = 1;
    o.sandboxed = 1;
    o.mem_limit = 16u << 20;
    ss_stage *s = NULL;
    char err[512] = "";
    int rc = head ? ss_stage_new_shared(head, &o, &s, err, sizeof err)
                  : ss_stage_new(&o, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "load %s failed: %s\n", path, err);
    assert_int_equal(rc, 0);
    return s;
}

/* Each stage has its own local modules (a module of the same name
 * beside each script, each setting a global of the script) and data
 * files, and its own rx: as in separate states. */
static void test_local_modules_per_stage(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_chain.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char da[300], db[300], pa[400], pb[400];
    snprintf(da, sizeof da, "%s/a", dir);
    snprintf(db, sizeof db, "%s/b", dir);
    assert_int_equal(mkdir(da, 0700), 0);
    assert_int_equal(mkdir(db, 0700), 0);
    const char *script =
        "local Rx = require 'zmq-rx'\n"
        "local h = require 'helpers'\n"
        "local files = require 'files'\n"
        "local word = files.read('word.txt')\n"
        "Rx.seen = (Rx.seen or 0) + 1\n"
        "Rx.Subject.fromZmqSocket('in')\n"
        "  :map(function(x) return h.f(x) .. word .. (WHO or '?')\n"
        "      .. Rx.seen .. tostring(require('rx') == Rx) end)\n"
        "  :subscribeToSocket('out')\n";
    put_file(da, "s.lua", script);
    put_file(db, "s.lua", script);
    put_file(da, "helpers.lua", "WHO = 'A'\nreturn {f = function(x) "
                                "return 'a(' .. x .. ')' end}\n");
    put_file(db, "helpers.lua", "WHO = 'B'\nreturn {f = function(x) "
                                "return 'b(' .. x .. ')' end}\n");
    put_file(da, "word.txt", "-one-");
    put_file(db, "word.txt", "-two-");
    snprintf(pa, sizeof pa, "%s/s.lua", da);
    snprintf(pb, sizeof pb, "%s/s.lua", db);
    ss_stage *st[2];
    st[0] = load_file(NULL, "a", pa);
    st[1] = load_file(shared ? st[0] : NULL, "b", pb);
    ss_chain *ch = NULL;
    assert_int_equal(ss_chain_new(st, 2, &ch), 0);
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "'x'", &out);
    assert_int_equal(out.count, 1);
    lua_State *L = luaL_newstate();
    size_t off = 0;
    char err[256];
    assert_int_equal(ss_mp_decode_lua(L, out.events.data, out.events.len,
                                      &off, err, sizeof err), 0);
    /* each script's own helpers (and its global WHO), data file and rx
     * (its Rx.seen counts one script: 2 if the rx were shared) */
    assert_string_equal(lua_tostring(L, -1),
                        "b(a(x)-one-A1true)-two-B1true");
    lua_close(L);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
    const char *names[] = {"a/s.lua", "a/helpers.lua", "a/word.txt",
                           "b/s.lua", "b/helpers.lua", "b/word.txt"};
    for (size_t i = 0; i < 6; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(da);
    rmdir(db);
    rmdir(dir);
}

/* A value that needs more memory than the cap is rejected in the stage
 * that ran out (named), and the chain goes on with the next values.
 * (One shared state has one cap, the sum of its stages' 16 MiB each:
 * 40 MiB fits there and not in a separate state, so 80 MiB here.) */
static void test_memory_cap_rejects_in_its_stage(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x) return x end)",
        "  :map(function(x) return x end)",
        "  :map(function(x)\n"
        "      if x == 2 then local s = string.rep('x', 83886080)\n"
        "        return #s end\n"
        "      return x end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2, 3", &out);
    assert_int_equal(out.count, 2);
    assert_int_equal(out.nrejects, 1);
    char *rej = strndup(out.rejects.data, out.rejects.len);
    assert_non_null(strstr(rej, "\"stage\":\"c\""));
    assert_non_null(strstr(rej, "not enough memory"));
    free(rej);
    expect_counts(ch, 2, 3, 2, 0, 1, 2);
    ss_stage_out_reset(&out);
    run_batch(ch, "4", &out); /* the memory came back */
    assert_int_equal(out.count, 1);
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

/* A stateful stage that emits the table it keeps (scan's accumulator)
 * hands on a copy, as through a socket: b changing it does not change
 * a's state (one shared state without the copy: 101, 203, 306). */
static void test_kept_table_is_copied(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :scan(function(acc, x) acc.n = acc.n + x return acc end, "
        "{n = 0})",
        "  :map(function(t) t.n = t.n + 100 return t.n end)",
        "  :map(function(x) return x end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1, 2, 3", &out);
    assert_int_equal(out.count, 3);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, "101");
    out_event(&out, 1, txt, sizeof txt);
    assert_string_equal(txt, "103");
    out_event(&out, 2, txt, sizeof txt);
    assert_string_equal(txt, "106");
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
        "  :map(function(x) n = (n or 100) + 1 _G.leak = 'b'\n"
        "      return x + n end)",
        "  :map(function(x) return tostring(x) .. type(string.len)\n"
        "      .. tostring(leak) .. tostring(_G.leak) end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "0, 0", &out);
    char txt[64];
    /* b's _G is its own global table: nothing of it reaches c (it
     * reached the state's real globals before: "102functionnilb") */
    out_event(&out, 0, txt, sizeof txt); /* 0 + 1, then + 101 */
    assert_string_equal(txt, "102functionnilnil");
    out_event(&out, 1, txt, sizeof txt); /* 0 + 2, then + 102 */
    assert_string_equal(txt, "104functionnilnil");
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
    shared = was;
}

/* What one shared state does not separate, pinned: the standard library
 * tables (string, table, math, ...) are the state's, so a script that
 * changes one changes it for the other stages of its chain
 * (docs/PIPELINE.md, Chaining). */
static void test_library_tables_shared(void **state)
{
    (void)state;
    ss_chain *ch = chain3(
        "  :map(function(x) string.pc_mark = 'a' return x end)",
        "  :map(function(x) return x end)",
        "  :map(function(x) return tostring(string.pc_mark) end)");
    ss_stage_out out;
    ss_stage_out_init(&out);
    run_batch(ch, "1", &out);
    char txt[64];
    out_event(&out, 0, txt, sizeof txt);
    assert_string_equal(txt, shared ? "a" : "nil");
    ss_stage_out_release(&out);
    ss_chain_destroy(&ch);
}

static int set_shared(void **state)
{
    (void)state;
    shared = 1;
    unsetenv("SS_CHAIN_DEFER");
    return 0;
}

/* The same, each event of the head going through the whole chain before
 * the next (SS_CHAIN_DEFER=event, read when a stage joins the state; the
 * default hands values on per batch). */
static int set_shared_by_event(void **state)
{
    (void)state;
    shared = 1;
    setenv("SS_CHAIN_DEFER", "event", 1);
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
        cmocka_unit_test(test_snapshot_per_stage),
        cmocka_unit_test(test_local_modules_per_stage),
        cmocka_unit_test(test_memory_cap_rejects_in_its_stage),
        cmocka_unit_test(test_kept_table_is_copied),
        cmocka_unit_test(test_library_tables_shared),
        cmocka_unit_test(test_shared_globals_apart),
    };
    int rc = cmocka_run_group_tests_name("separate states", tests, NULL,
                                         NULL);
    rc += cmocka_run_group_tests_name("one shared state", tests,
                                      set_shared, NULL);
    return rc + cmocka_run_group_tests_name("one shared state, per event",
                                            tests, set_shared_by_event,
                                            NULL);
}
