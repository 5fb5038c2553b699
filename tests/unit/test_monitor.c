/*
 * test_monitor.c - the receiving end of the control endpoint
 * (src/run/ss_monitor.c), driven as a cluster run would drive it: fake
 * components push STATS and DONE to it over loopback tcp; the monitor
 * matches samples by name, else by pid, keeps rates, notes DONE, ignores
 * garbage, and writes one JSON line per sample to the metrics file, valid
 * JSON and UTF-8 whatever bytes the component names hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>
#include <zmq.h>

#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "run/ss_monitor.h"
#include "securestreams.h"
#include "wire/ss_stats.h"

typedef struct fixture {
    ss_monitor *m;
    void *zctx, *push;
    char metrics[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->metrics, sizeof f->metrics, "/tmp/test_monitor_%d.jsonl",
             (int)getpid());
    char err[256];
    assert_int_equal(ss_monitor_new("tcp://127.0.0.1:*", f->metrics, NULL,
                                    &f->m, err, sizeof err),
                     0);
    /* the system chose the port: the endpoint says which */
    assert_null(strstr(ss_monitor_endpoint(f->m), ":*"));
    f->zctx = zmq_ctx_new();
    f->push = zmq_socket(f->zctx, ZMQ_PUSH);
    int linger = 1000;
    zmq_setsockopt(f->push, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(f->push, ss_monitor_endpoint(f->m)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    zmq_close(f->push);
    zmq_ctx_term(f->zctx);
    ss_monitor_destroy(&f->m);
    assert_null(f->m);
    unlink(f->metrics);
    free(f);
    return 0;
}

static void push(fixture *f, const void *p, size_t n)
{
    assert_int_equal(zmq_send(f->push, p, n, 0), (int)n);
}

static void push_stats(fixture *f, const ss_stats *s)
{
    ss_buf b;
    ss_buf_init(&b);
    assert_int_equal(ss_stats_encode(s, &b), 0);
    push(f, b.data, b.len);
    ss_buf_release(&b);
}

/* Reads until the component has want samples, or fails after 5 s. */
static void wait_samples(fixture *f, size_t i, uint64_t in_want)
{
    uint64_t t0 = ss_now_ms();
    for (;;) {
        ss_monitor_read(f->m);
        const ss_monitor_comp *c = ss_monitor_get(f->m, i);
        if (c->have_st && c->st.in == in_want)
            return;
        assert_true(ss_now_ms() - t0 < 5000);
        usleep(2000);
    }
}

static void matches_by_name_then_pid(void **state)
{
    fixture *f = *state;
    assert_int_equal(ss_monitor_add(f->m, "map-1"), 0);
    assert_int_equal(ss_monitor_add(f->m, "sink"), 1);
    assert_null(ss_monitor_get(f->m, 2));
    ss_monitor_set_pid(f->m, 1, 4242);
    ss_monitor_start(f->m, ss_now_ns());

    ss_stats s;
    ss_stats_init(&s);
    ss_stats_set_names(&s, "map-1", "worker", "map");
    s.in = 10;
    s.in_bytes = 1000;
    push_stats(f, &s);
    wait_samples(f, 0, 10);
    assert_false(ss_monitor_get(f->m, 1)->have_st);

    usleep(100000); /* rates need 50 ms between samples */
    s.in = 110;
    s.in_bytes = 11000;
    push_stats(f, &s);
    wait_samples(f, 0, 110);
    const ss_monitor_comp *c = ss_monitor_get(f->m, 0);
    assert_true(c->ev_rate > 0 && c->byte_rate > 0);
    assert_true(c->byte_rate > c->ev_rate * 50); /* 100 bytes an event */
    double ev = 0, by = 0;
    ss_monitor_rates(c, ss_now_ns(), 3000000000ull, &ev, &by);
    assert_true(ev == c->ev_rate && by == c->byte_rate);
    ev = by = 0; /* a stale sample has no rate */
    ss_monitor_rates(c, c->st_ns + 4000000000ull, 3000000000ull, &ev, &by);
    assert_true(ev == 0 && by == 0);

    /* a sample under an unknown name is matched by its pid */
    ss_stats_set_names(&s, "renamed", "sink", "");
    s.pid = 4242;
    s.in = 7;
    push_stats(f, &s);
    wait_samples(f, 1, 7);
    assert_int_equal(ss_monitor_get(f->m, 0)->st.in, 110);
    assert_int_equal(ss_monitor_done_ns(f->m), 0);
}

/* Checkpoint acknowledgements: kept per component and per epoch, the
 * last SS_MONITOR_ACKS of them, so that a worker running 20 epochs ahead
 * of the sink still has the counters of the epoch the sink acknowledges
 * next (with a ring of 8 they were overwritten and such an epoch never
 * completed); reset forgets them. */
static void barrier_acks(void **state)
{
    fixture *f = *state;
    assert_int_equal(ss_monitor_add(f->m, "map-1"), 0);
    assert_int_equal(ss_monitor_add(f->m, "sink"), 1);
    ss_monitor_start(f->m, ss_now_ns());
    ss_stats s;
    ss_stats_init(&s);
    ss_stats_set_names(&s, "map-1", "worker", "map");
    ss_buf b;
    ss_buf_init(&b);
    for (uint32_t e = 1; e <= 20; e++) {
        s.in = 100 * e;
        assert_int_equal(ss_stats_encode_barrier(&s, e, &b), 0);
        push(f, b.data, b.len);
    }
    ss_buf_release(&b);
    s.in = 2000; /* a sample after them: all were read */
    push_stats(f, &s);
    wait_samples(f, 0, 2000);
    for (uint32_t e = 1; e <= 20; e++) {
        const ss_stats *a = ss_monitor_ack(f->m, 0, e);
        assert_non_null(a);
        assert_int_equal(a->in, 100 * e);
    }
    assert_null(ss_monitor_ack(f->m, 0, 21));
    assert_null(ss_monitor_ack(f->m, 0, 0));
    assert_null(ss_monitor_ack(f->m, 1, 5)); /* the sink did not */
    assert_null(ss_monitor_ack(f->m, 2, 5)); /* no such component */
    ss_monitor_reset(f->m);
    assert_null(ss_monitor_ack(f->m, 0, 5));
    assert_false(ss_monitor_get(f->m, 0)->have_st);
}

/* A worker that a rescale at a checkpoint took away reports nothing in
 * the new incarnation: its base (its counters at the checkpoint) becomes
 * its last counters, final; one that reported keeps what it reported. */
static void base_shown_for_a_worker_gone(void **state)
{
    fixture *f = *state;
    assert_int_equal(ss_monitor_add(f->m, "reduce-1"), 0);
    assert_int_equal(ss_monitor_add(f->m, "reduce-2"), 1);
    ss_monitor_start(f->m, ss_now_ns());
    ss_stats base;
    ss_stats_init(&base);
    base.in = 700;
    base.dropped = 700;
    ss_monitor_set_base(f->m, 0, &base);
    ss_monitor_set_base(f->m, 1, &base);
    ss_stats s;
    ss_stats_init(&s);
    ss_stats_set_names(&s, "reduce-1", "worker", "reduce");
    s.in = 5;
    push_stats(f, &s);
    wait_samples(f, 0, 705); /* based: 700 + 5 */
    assert_false(ss_monitor_get(f->m, 1)->have_st);
    ss_monitor_show_base(f->m, 1);
    ss_monitor_show_base(f->m, 0); /* reported: unchanged */
    ss_monitor_show_base(f->m, 7); /* no such component: nothing */
    const ss_monitor_comp *gone = ss_monitor_get(f->m, 1);
    assert_true(gone->have_st);
    assert_int_equal(gone->st.in, 700);
    assert_int_equal(gone->st.dropped, 700);
    assert_true(gone->st.final);
    assert_int_equal(ss_monitor_get(f->m, 0)->st.in, 705);
}

static void done_and_garbage(void **state)
{
    fixture *f = *state;
    assert_int_equal(ss_monitor_add(f->m, "sink"), 0);
    ss_monitor_start(f->m, ss_now_ns());
    push(f, "not a message", 13);
    uint8_t zeros[200] = {0};
    push(f, zeros, sizeof zeros);
    ss_buf b;
    ss_buf_init(&b);
    assert_int_equal(ss_stats_encode_done(&b), 0);
    uint64_t before = ss_now_ns();
    push(f, b.data, b.len);
    push(f, b.data, b.len); /* a second DONE keeps the first time */
    ss_buf_release(&b);
    uint64_t t0 = ss_now_ms();
    while (!ss_monitor_done_ns(f->m)) {
        ss_monitor_read(f->m);
        assert_true(ss_now_ms() - t0 < 5000);
        usleep(2000);
    }
    uint64_t done = ss_monitor_done_ns(f->m);
    assert_true(done >= before);
    usleep(20000);
    ss_monitor_read(f->m);
    assert_int_equal(ss_monitor_done_ns(f->m), done);
    assert_false(ss_monitor_get(f->m, 0)->have_st);
}

/* Every line of the metrics file is JSON and UTF-8, even for a component
 * whose name holds invalid UTF-8 and control bytes (they used to be
 * written raw). */
static void metrics_file_is_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(ss_monitor_add(f->m, "bad\xff" "name\n"), 0);
    ss_monitor_start(f->m, ss_now_ns());
    ss_stats s;
    ss_stats_init(&s);
    ss_stats_set_names(&s, "bad\xff" "name\n", "worker", "st\"age");
    s.in = 3;
    s.total_bytes = 99;
    s.final = 1;
    push_stats(f, &s);
    wait_samples(f, 0, 3);
    assert_int_equal(ss_monitor_close_metrics(f->m), 0);
    assert_int_equal(ss_monitor_close_metrics(f->m), 0); /* twice */

    FILE *in = fopen(f->metrics, "r");
    assert_non_null(in);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, in));
    assert_null(fgets(line + strlen(line), 2, in)); /* one line only */
    fclose(in);
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n');
    assert_true(ss_utf8_valid(line, n, NULL));
    assert_non_null(strstr(line, "\"name\":\"bad\\u00ffname\\n\""));
    assert_non_null(strstr(line, "\"stage\":\"st\\\"age\""));
    /* every counter of ss_stats.h, in order, then final */
    assert_non_null(strstr(line, "\"pid\":0,\"in\":3,\"in_bytes\":0,"));
    assert_non_null(strstr(line, "\"total_bytes\":99,"));
    assert_non_null(strstr(line, ",\"final\":true}\n")); /* last */
}

/* One sample of name from a CURVE client holding pub/sec, to a monitor
 * at ep whose public key is server. */
static void push_curve(const char *ep, const char *server, const char *pub,
                       const char *sec, const char *name, uint64_t in)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    assert_int_equal(zmq_connect(s, ep), 0);
    ss_stats st;
    ss_stats_init(&st);
    ss_stats_set_names(&st, name, "worker", "map");
    st.in = in;
    ss_buf b;
    ss_buf_init(&b);
    assert_int_equal(ss_stats_encode(&st, &b), 0);
    assert_int_equal(zmq_send(s, b.data, b.len, 0), (int)b.len);
    ss_buf_release(&b);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* The replicas of a stage on a swarm share their service's key: the key
 * named "map" may report for map-1, and for map-3 that a rescale started
 * (added when it first reports), but not for another stage's worker, nor
 * for a name that only looks like a replica. */
static void replicas_share_their_stage_key(void **state)
{
    (void)state;
    char mpub[41], msec[41], kpub[41], ksec[41], opub[41], osec[41];
    assert_int_equal(zmq_curve_keypair(mpub, msec), 0);
    assert_int_equal(zmq_curve_keypair(kpub, ksec), 0);
    assert_int_equal(zmq_curve_keypair(opub, osec), 0);
    const char *allow[] = {kpub, opub};
    const char *names[] = {"map", "filter"};
    ss_monitor_auth auth = {{mpub, msec, allow, names, 2}, "sink"};
    ss_monitor *m = NULL;
    char err[256];
    assert_int_equal(ss_monitor_new("tcp://127.0.0.1:*", NULL, &auth, &m,
                                    err, sizeof err),
                     0);
    assert_int_equal(ss_monitor_add(m, "map-1"), 0);
    assert_int_equal(ss_monitor_add(m, "filter-1"), 1);
    assert_int_equal(ss_monitor_allow_replicas(m, "map"), 0);
    assert_int_equal(ss_monitor_allow_replicas(m, "filter"), 0);
    const char *ep = ss_monitor_endpoint(m);
    push_curve(ep, mpub, kpub, ksec, "map-1", 5);    /* its own */
    push_curve(ep, mpub, kpub, ksec, "map-3", 7);    /* a new replica */
    push_curve(ep, mpub, kpub, ksec, "filter-1", 9); /* another's: no */
    push_curve(ep, mpub, kpub, ksec, "map-0", 9);    /* not a slot */
    push_curve(ep, mpub, kpub, ksec, "map-2x", 9);   /* not a slot */
    push_curve(ep, mpub, opub, osec, "filter-1", 11);
    uint64_t t0 = ss_now_ms();
    for (;;) {
        ss_monitor_read(m);
        const ss_monitor_comp *f1 = ss_monitor_get(m, 1);
        if (f1->have_st && f1->st.in == 11 && ss_monitor_get(m, 2) &&
            ss_monitor_refused(m) >= 3)
            break;
        assert_true(ss_now_ms() - t0 < 5000);
        usleep(2000);
    }
    usleep(50000);
    ss_monitor_read(m);
    assert_int_equal(ss_monitor_get(m, 0)->st.in, 5);
    const ss_monitor_comp *c = ss_monitor_get(m, 2);
    assert_string_equal(c->name, "map-3");
    assert_int_equal(c->st.in, 7);
    assert_null(ss_monitor_get(m, 3)); /* map-0, map-2x not added */
    assert_int_equal(ss_monitor_get(m, 1)->st.in, 11);
    assert_int_equal(ss_monitor_refused(m), 3);
    ss_monitor_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(matches_by_name_then_pid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(done_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(barrier_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(base_shown_for_a_worker_gone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(metrics_file_is_json, setup,
                                        teardown),
        cmocka_unit_test(replicas_share_their_stage_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
