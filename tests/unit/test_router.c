/*
 * test_router.c - the credit router (src/net/ss_router.c) with its two
 * peer ends, ss_link (producers) and ss_inlet (workers), and the control
 * messages of ss_proto.
 *
 * Each test runs a router in a thread on inproc:// endpoints and drives
 * it with fake producers and workers, each in its own thread, all in one
 * ZeroMQ context. Timeouts are small (heartbeat 50 ms, peer timeout
 * 300 ms) so that the whole file runs in a few seconds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "core/ss_buf.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_inlet.h"
#include "net/ss_link.h"
#include "net/ss_proto.h"
#include "net/ss_router.h"
#include "net/ss_transport.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

/* Heartbeat and peer timeout: small, or larger when SS_TEST_SLOW=1
 * (tests/run-unit.sh sets it under valgrind, where threads crawl). */
static int hb_ms = 100, peer_timeout_ms = 800;
/* How long a fake worker or producer waits for the router before it gives
 * up: well above peer_timeout_ms, which it may have to sit out while the
 * router declares another worker lost. */
static int idle_ms = 5000, connect_ms = 2000;

static void *zctx;
static char front_ep[64], back_ep[64];
static int test_done; /* set by each test that ran to its end */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    static int n;
    (void)state;
    test_done = 0;
    zctx = zmq_ctx_new();
    n++;
    snprintf(front_ep, sizeof front_ep, "inproc://front-%d", n);
    snprintf(back_ep, sizeof back_ep, "inproc://back-%d", n);
    return zctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (test_done) {
        zmq_ctx_term(zctx); /* hangs if a test leaked a socket */
    } else {
        /* an assertion failed with threads still holding sockets: wake
         * them with ETERM and leave the context, rather than hang */
        zmq_ctx_shutdown(zctx);
    }
    zctx = NULL;
    return 0;
}

/* ------------------------------------------------------------ router */

typedef struct rthread {
    pthread_t t;
    ss_router *r;
    atomic_int finished;
    int rc;
    char err[600];
    ss_router_stats st;
} rthread;

static void *router_main(void *arg)
{
    rthread *rt = arg;
    rt->rc = ss_router_run(rt->r, rt->err, sizeof rt->err);
    atomic_store(&rt->finished, 1);
    return NULL;
}

static const char *router_peers; /* --peers of the next router_start */
static unsigned router_partitions; /* --partitions of the next one */

static void router_start(rthread *rt, unsigned producers, unsigned queue)
{
    memset(rt, 0, sizeof *rt);
    atomic_init(&rt->finished, 0);
    ss_router_opts o = {.from = front_ep,
                        .to = back_ep,
                        .name = "r1",
                        .producers = producers,
                        .queue = queue,
                        .heartbeat_ms = hb_ms,
                        .peer_timeout_ms = peer_timeout_ms,
                        .linger_ms = 100,
                        .peers = router_peers,
                        .partitions = router_partitions};
    char err[600];
    int rc = ss_router_new(zctx, &o, &rt->r, err, sizeof err);
    if (rc)
        fail_msg("router_new: %s", err);
    assert_int_equal(pthread_create(&rt->t, NULL, router_main, rt), 0);
}

/* Joins the router thread, keeps its counters and destroys it. A router
 * still running 10 s after its peers are done (it would wait forever,
 * e.g. for a worker) is stopped: its result is then SS_EINTR. */
static int router_join(rthread *rt)
{
    for (int i = 0; i < 1000 && !atomic_load(&rt->finished); i++)
        sleep_ms(10);
    if (!atomic_load(&rt->finished))
        ss_router_stop(rt->r);
    pthread_join(rt->t, NULL);
    rt->st = *ss_router_stats_get(rt->r);
    ss_router_destroy(&rt->r);
    assert_null(rt->r);
    return rt->rc;
}

/* ------------------------------------------------------------ workers */

typedef struct fworker {
    const char *name, *stage;
    unsigned credits;
    int stateful;
    int sleep_ms;  /* per batch */
    int die_after; /* vanish without acking at this batch (0: never) */
    int leave_after; /* ack this batch (held back) and leave at once */
    int hold;      /* keep up to `credits` batches before acking them */
    uint32_t index; /* its slot in a keyed stage (HELLO index), 0: none */
    pthread_t t;
    /* results */
    uint64_t *keys; /* lineages acknowledged, as key() */
    size_t nkeys;
    atomic_int received;
    int eos_count, eos_with_unacked;
    ss_eos eos;
    int rc;
    char err[600];
} fworker;

static uint64_t key(const ss_hdr *h)
{
    return ((uint64_t)h->stream << 40) | (h->seq << 8) | h->part;
}

static void record(fworker *w, const ss_hdr *h)
{
    w->keys = realloc(w->keys, (w->nkeys + 1) * sizeof *w->keys);
    w->keys[w->nkeys++] = key(h);
}

static void *worker_main(void *arg)
{
    fworker *w = arg;
    ss_inlet *in;
    ss_inlet_opts o = {.endpoint = back_ep,
                       .name = w->name,
                       .stage = w->stage ? w->stage : "map",
                       .credits = w->credits,
                       .stateful = w->stateful,
                       .connect_timeout_ms = connect_ms,
                       .index = w->index};
    ss_eos_init(&w->eos);
    w->rc = ss_inlet_new(zctx, &o, &in, w->err, sizeof w->err);
    if (w->rc)
        return NULL;
    ss_hdr held[64];
    int nheld = 0, idle = 0;
    for (;;) {
        zmq_msg_t m;
        ss_hdr h;
        int rc = ss_inlet_recv(in, &m, &h, w->hold ? 20 : idle_ms, w->err,
                               sizeof w->err);
        if (rc < 0) {
            w->rc = rc;
            break;
        }
        if (rc == 0) {
            for (int i = 0; i < nheld; i++) {
                ss_inlet_ack(in, &held[i]);
                record(w, &held[i]);
            }
            nheld = 0;
            if (w->eos_count || (++idle) * 20 > idle_ms || !w->hold) {
                if (!w->eos_count)
                    w->rc = SS_ETIMEOUT;
                break;
            }
            continue;
        }
        idle = 0;
        if (h.kind == SS_MSG_EOS) {
            const char *why;
            w->eos_count++;
            w->eos_with_unacked += nheld;
            if (ss_eos_decode((const uint8_t *)zmq_msg_data(&m) +
                                  SS_HDR_SIZE,
                              h.len, &w->eos, &why))
                w->rc = SS_EPROTO;
            zmq_msg_close(&m);
            /* listen a little longer: a second EOS would be a bug */
            w->hold = 1;
            continue;
        }
        zmq_msg_close(&m);
        int n = atomic_fetch_add(&w->received, 1) + 1;
        if (w->die_after && n == w->die_after) {
            ss_inlet_destroy(&in); /* vanish: no ack for what we hold */
            return NULL;
        }
        if (w->sleep_ms)
            sleep_ms(w->sleep_ms);
        if (w->hold && nheld < (int)(sizeof held / sizeof *held)) {
            held[nheld++] = h;
            if (nheld < (int)w->credits)
                continue;
        } else {
            held[nheld++] = h;
        }
        for (int i = 0; i < nheld; i++) {
            ss_inlet_ack(in, &held[i]);
            record(w, &held[i]);
        }
        nheld = 0;
        if (w->leave_after && n == w->leave_after) {
            ss_inlet_destroy(&in); /* sends the ack it held back */
            return NULL;
        }
    }
    ss_inlet_destroy(&in);
    return NULL;
}

static void worker_start(fworker *w)
{
    assert_int_equal(pthread_create(&w->t, NULL, worker_main, w), 0);
}

static void worker_join(fworker *w) { pthread_join(w->t, NULL); }

static void worker_free(fworker *w)
{
    free(w->keys);
    ss_eos_release(&w->eos);
}

static int has_roster(const ss_eos *e, const char *name)
{
    for (size_t i = 0; i < e->nroster; i++)
        if (strcmp(e->roster[i], name) == 0)
            return 1;
    return 0;
}

/* ---------------------------------------------------------- producers */

typedef struct fprod {
    const char *name, *group;
    const char *role; /* default "worker" (a source may only send the
                         stream its name owns: see own()) */
    int stateful;
    int no_eos; /* vanish once all is confirmed, without an EOS */
    unsigned members;
    uint32_t stream;
    uint64_t n;        /* batches 0..n-1 (unless items) */
    int64_t skip;      /* seq not sent (-1: none) */
    int64_t dup;       /* seq sent twice (-1: none) */
    uint64_t declared; /* count in the EOS (0: n) */
    const ss_hdr *items; /* explicit lineages to send instead */
    size_t nitems;
    const char *const *roster; /* names in its EOS's roster (NULL-ended) */
    int wait_ms; /* connected, waits this long before sending */
    unsigned window; /* its link's window (0: 8) */
    pthread_t t;
    int rc;
    char err[600];
    uint64_t confirmed;
} fprod;

static void on_received(uint64_t tag, void *arg)
{
    (void)tag;
    ((fprod *)arg)->confirmed++;
}

static int send_batch(ss_link *l, const char *name, ss_buf *b,
                      const ss_hdr *lin)
{
    char payload[32];
    int n = snprintf(payload, sizeof payload, "s%u-%llu-%u", lin->stream,
                     (unsigned long long)lin->seq, lin->part);
    ss_hdr h = {.kind = SS_MSG_DATA,
                .flags = lin->flags,
                .stream = lin->stream,
                .seq = lin->seq,
                .part = lin->part,
                .count = 1,
                .first_row = lin->seq,
                .producer = ss_name_id(name),
                .partition = lin->partition};
    int rc = ss_proto_build(b, &h, payload, (size_t)n);
    return rc ? rc : ss_link_send(l, b->data, b->len, lin->seq);
}

static void *prod_main(void *arg)
{
    fprod *p = arg;
    ss_link *l;
    ss_link_opts o = {.endpoint = front_ep,
                      .name = p->name,
                      .role = p->role ? p->role : "worker",
                      .stage = p->role ? p->role : "map",
                      .group = p->group,
                      .members = p->members,
                      .stateful = p->stateful,
                      .window = p->window ? p->window : 8,
                      .connect_timeout_ms = connect_ms};
    p->rc = ss_link_new(zctx, &o, &l, p->err, sizeof p->err);
    if (p->rc)
        return NULL;
    ss_link_on_received(l, on_received, p);
    ss_buf b = SS_BUF_INIT;
    int rc = 0;
    for (int i = 0; i < p->wait_ms / 10 && !rc; i++)
        rc = ss_link_service(l, 10) < 0 ? SS_EPEER : 0;
    if (p->items) {
        for (size_t i = 0; i < p->nitems && !rc; i++)
            rc = send_batch(l, p->name, &b, &p->items[i]);
    } else {
        for (uint64_t s = 0; s < p->n && !rc; s++) {
            if ((int64_t)s == p->skip)
                continue;
            ss_hdr lin = {.stream = p->stream, .seq = s,
                          .flags = SS_BF_LAST_PART};
            rc = send_batch(l, p->name, &b, &lin);
        }
        if (!rc && p->dup >= 0) {
            ss_hdr lin = {.stream = p->stream, .seq = (uint64_t)p->dup,
                          .flags = SS_BF_LAST_PART};
            rc = send_batch(l, p->name, &b, &lin);
        }
    }
    uint64_t sent = p->items ? p->nitems : p->n;
    for (int i = 0; !rc && p->no_eos && p->confirmed < sent &&
                    i < idle_ms / 10;
         i++)
        rc = ss_link_service(l, 10) < 0 ? SS_EPEER : 0;
    if (!rc && !p->no_eos) {
        ss_eos e;
        ss_eos_init(&e);
        ss_eos_add_stream(&e, p->stream, p->declared ? p->declared : p->n);
        for (size_t i = 0; p->roster && p->roster[i]; i++)
            ss_eos_add_roster(&e, p->roster[i]);
        rc = ss_link_send_eos(l, &e, 2 * idle_ms);
        ss_eos_release(&e);
    }
    if (rc)
        snprintf(p->err, sizeof p->err, "%s", ss_link_error(l));
    p->rc = rc;
    ss_buf_release(&b);
    ss_link_destroy(&l);
    return NULL;
}

static void prod_start(fprod *p)
{
    assert_int_equal(pthread_create(&p->t, NULL, prod_main, p), 0);
}

static void prod_join(fprod *p) { pthread_join(p->t, NULL); }

/* ------------------------------------------------------------ checks */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Asserts that the workers acknowledged every batch 0..n-1 of each given
 * stream exactly once, and nothing else. */
static void check_exactly_once(fworker *ws, int nw, const uint32_t *streams,
                               int nstreams, uint64_t n)
{
    size_t total = 0;
    for (int i = 0; i < nw; i++)
        total += ws[i].nkeys;
    uint64_t *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nw; i++)
        for (size_t j = 0; j < ws[i].nkeys; j++)
            all[k++] = ws[i].keys[j];
    qsort(all, total, sizeof *all, cmp_u64);
    assert_int_equal(total, (size_t)nstreams * n);
    k = 0;
    for (int s = 0; s < nstreams; s++)
        for (uint64_t q = 0; q < n; q++) {
            ss_hdr h = {.stream = streams[s], .seq = q};
            assert_int_equal(all[k++], key(&h));
        }
    free(all);
}

/* Asserts that workers gone and alive together acknowledged batches
 * 0..n-1 of stream, alive exactly once each. gone's last acknowledgements
 * may have died with it (not yet flushed, or still unread when the router
 * declared it lost): those batches were dealt again, so up to its ack
 * batch of them are in both lists. Any other overlap is a bug. */
static void check_lost_acks(const fworker *gone, const fworker *alive,
                            uint32_t stream, uint64_t n)
{
    const fworker *ws[2] = {alive, gone};
    uint8_t *count[2] = {calloc(n, 1), calloc(n, 1)};
    assert_non_null(count[0]);
    assert_non_null(count[1]);
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < ws[i]->nkeys; j++)
            for (uint64_t q = 0; q < n; q++) {
                ss_hdr h = {.stream = stream, .seq = q};
                if (ws[i]->keys[j] == key(&h)) {
                    count[i][q]++;
                    break;
                }
            }
    size_t twice = 0, bad = 0;
    for (uint64_t q = 0; q < n; q++) {
        bad += count[0][q] > 1 || count[1][q] > 1 ||
               count[0][q] + count[1][q] == 0;
        twice += count[0][q] && count[1][q];
    }
    free(count[0]);
    free(count[1]);
    assert_int_equal(bad, 0);
    assert_int_equal(alive->nkeys + gone->nkeys, (size_t)n + twice);
    assert_true(twice <= (gone->credits + 1) / 2);
}

/* Asserts that worker w got exactly one EOS, after acknowledging all it
 * held, with the given stream table and roster size. */
static void check_eos(const fworker *w, const uint32_t *streams,
                      int nstreams, uint64_t n, size_t roster)
{
    if (w->rc)
        fail_msg("worker %s: %s: %s", w->name, ss_strerror(w->rc), w->err);
    assert_int_equal(w->eos_count, 1);
    assert_int_equal(w->eos_with_unacked, 0);
    assert_int_equal(w->eos.nstreams, (size_t)nstreams);
    for (int s = 0; s < nstreams; s++) {
        const ss_eos_stream *row = ss_eos_find(&w->eos, streams[s]);
        assert_non_null(row);
        assert_int_equal(row->count, n);
    }
    assert_int_equal(w->eos.nroster, roster);
    assert_int_equal(w->eos.members, roster);
    assert_string_equal(w->eos.group, w->stage ? w->stage : "map");
    assert_true(has_roster(&w->eos, w->name));
}

/* ------------------------------------------------------------- tests */

/* Messages build and parse back; hostile payloads are refused. */
static void test_proto(void **state)
{
    (void)state;
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    const char *why;

    ss_hello he = {.name = "map-1", .role = "worker", .stage = "map",
                   .group = "map", .credits = 4, .members = 3,
                   .stateful = 1};
    assert_int_equal(ss_proto_hello(&b, &he), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_HELLO);
    assert_int_equal(h.aux, 4);
    ss_hello back;
    assert_int_equal(
        ss_proto_hello_parse(b.data + SS_HDR_SIZE, h.len, &back, &why), 0);
    assert_string_equal(back.name, "map-1");
    assert_string_equal(back.role, "worker");
    assert_string_equal(back.stage, "map");
    assert_int_equal(back.credits, 4);
    assert_int_equal(back.members, 3);
    assert_true(back.stateful);
    assert_int_equal(back.window, 0); /* not said */
    he.window = 16; /* a producer's window: the key is sent */
    assert_int_equal(ss_proto_hello(&b, &he), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(
        ss_proto_hello_parse(b.data + SS_HDR_SIZE, h.len, &back, &why), 0);
    assert_int_equal(back.window, 16);
    assert_int_equal(back.window_bytes, 0);
    assert_int_equal(back.members, 3);
    he.window_bytes = 1 << 20;
    assert_int_equal(ss_proto_hello(&b, &he), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(
        ss_proto_hello_parse(b.data + SS_HDR_SIZE, h.len, &back, &why), 0);
    assert_int_equal(back.window_bytes, 1 << 20);
    he.window_bytes = 0;
    he.window = SS_PROTO_WINDOW_MAX + 1;
    assert_int_equal(ss_proto_hello(&b, &he), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(
        ss_proto_hello_parse(b.data + SS_HDR_SIZE, h.len, &back, &why),
        SS_EPROTO);
    he.window = 0;
    assert_int_equal(ss_proto_hello(&b, &he), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    /* truncated payload, wrong role, garbage */
    assert_int_equal(ss_proto_hello_parse(b.data + SS_HDR_SIZE, h.len - 3,
                                          &back, &why),
                     SS_EPROTO);
    snprintf(he.role, sizeof he.role, "boss");
    ss_proto_hello(&b, &he);
    assert_int_equal(ss_proto_hello_parse(b.data + SS_HDR_SIZE,
                                          b.len - SS_HDR_SIZE, &back, &why),
                     SS_EPROTO);
    assert_string_equal(why, "hello role is not source, worker or sink");
    assert_int_equal(ss_proto_hello_parse("\xc1\x00", 2, &back, &why),
                     SS_EPROTO);
    assert_int_equal(ss_proto_hello_parse("\x93\x01\x02\x03", 4, &back,
                                          &why),
                     SS_EPROTO);

    ss_hdr batch = {.kind = SS_MSG_DATA, .stream = 7, .seq = 42, .part = 1,
                    .flags = SS_BF_LAST_PART};
    assert_int_equal(ss_proto_credit(&b, &batch, 1), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_CREDIT);
    assert_true(ss_proto_same_lineage(&h, &batch));
    assert_int_equal(h.aux, 1);
    assert_int_equal(ss_proto_received(&b, &batch), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_RECEIVED);
    assert_true(ss_proto_same_lineage(&h, &batch));
    assert_int_equal(h.aux, SS_MSG_DATA);

    /* coalesced acknowledgements: the header names the first, count = n,
     * the payload lists all n; a single one is the plain message */
    ss_lineage acks[3] = {{7, 1, 42}, {7, 0, 43}, {9, 0, 1ull << 40}};
    ss_lineage got[SS_PROTO_ACKS_MAX];
    assert_int_equal(ss_proto_credit_n(&b, acks, 3, 3), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_CREDIT);
    assert_true(ss_proto_same_lineage(&h, &batch));
    assert_int_equal(h.count, 3);
    assert_int_equal(h.aux, 3);
    assert_int_equal(ss_proto_acks_parse(&h, b.data + SS_HDR_SIZE, h.len,
                                         got, SS_PROTO_ACKS_MAX, &why),
                     3);
    assert_memory_equal(got, acks, sizeof acks);
    assert_int_equal(ss_proto_acks_parse(&h, b.data + SS_HDR_SIZE, h.len,
                                         got, 2, &why),
                     SS_EPROTO);
    h.count = 2; /* the list must hold exactly count batches */
    assert_int_equal(ss_proto_acks_parse(&h, b.data + SS_HDR_SIZE, h.len,
                                         got, SS_PROTO_ACKS_MAX, &why),
                     SS_EPROTO);
    assert_int_equal(ss_proto_received_n(&b, acks + 2, 1), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_RECEIVED);
    assert_int_equal(h.len, 0);
    assert_int_equal(h.aux, SS_MSG_DATA);
    assert_int_equal(ss_proto_acks_parse(&h, b.data + SS_HDR_SIZE, h.len,
                                         got, SS_PROTO_ACKS_MAX, &why),
                     1);
    assert_memory_equal(got, acks + 2, sizeof *acks);
    assert_int_equal(ss_proto_received(&b, &batch), 0); /* count 0 */
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(ss_proto_acks_parse(&h, b.data + SS_HDR_SIZE, h.len,
                                         got, SS_PROTO_ACKS_MAX, &why),
                     1);
    assert_memory_equal(got, acks, sizeof *acks);
    assert_int_equal(ss_proto_credit_n(&b, acks, 0, 0), SS_EINVAL);
    h.count = 2; /* a list that is not one */
    assert_int_equal(ss_proto_acks_parse(&h, "\x81\xa7" "batches" "\x01", 10,
                                         got, SS_PROTO_ACKS_MAX, &why),
                     SS_EPROTO);

    char reason[16];
    assert_int_equal(ss_proto_abort(&b, "worker x was lost, and more"), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(ss_proto_abort_parse(b.data + SS_HDR_SIZE, h.len,
                                          reason, sizeof reason, &why),
                     0);
    assert_string_equal(reason, "worker x was lo");

    ss_eos e, d;
    ss_eos_init(&e);
    ss_eos_init(&d);
    assert_int_equal(ss_eos_add_stream(&e, 9, 100), 0);
    assert_int_equal(ss_eos_add_stream(&e, 2, 5), 0);
    assert_int_equal(ss_eos_add_stream(&e, 2, 5), 0);
    assert_int_equal(ss_eos_add_stream(&e, 2, 6), SS_EINTEGRITY);
    assert_int_equal(ss_eos_add_roster(&e, "map-1"), 0);
    assert_int_equal(ss_eos_add_roster(&e, "map-2"), 0);
    snprintf(e.group, sizeof e.group, "map");
    e.members = 2;
    assert_int_equal(ss_eos_encode(&e, &b), 0);
    assert_int_equal(ss_hdr_decode(b.data, b.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_EOS);
    assert_int_equal(ss_eos_decode(b.data + SS_HDR_SIZE, h.len, &d, &why),
                     0);
    assert_int_equal(d.nstreams, 2);
    assert_int_equal(d.streams[0].stream, 2);
    assert_int_equal(d.streams[0].count, 5);
    assert_int_equal(d.streams[1].stream, 9);
    assert_int_equal(d.streams[1].count, 100);
    assert_int_equal(d.nroster, 2);
    assert_string_equal(d.roster[1], "map-2");
    assert_string_equal(d.group, "map");
    assert_int_equal(d.members, 2);
    /* every truncation of a valid payload is refused, never crashes */
    for (size_t n = 0; n < h.len; n++)
        assert_int_equal(ss_eos_decode(b.data + SS_HDR_SIZE, n, &d, &why),
                         SS_EPROTO);
    assert_int_equal(d.nstreams, 0);

    /* merging: union, same counts agree, different counts conflict */
    ss_eos m;
    ss_eos_init(&m);
    assert_int_equal(ss_eos_add_stream(&m, 3, 1), 0);
    assert_int_equal(ss_eos_merge(&m, &e, NULL, &why), 0);
    assert_int_equal(m.nstreams, 3);
    assert_int_equal(ss_eos_merge(&m, &e, NULL, &why), 0);
    ss_eos_release(&d);
    assert_int_equal(ss_eos_add_stream(&d, 9, 99), 0);
    uint32_t sid = 0;
    assert_int_equal(ss_eos_merge(&m, &d, &sid, &why), SS_EINTEGRITY);
    assert_int_equal(sid, 9);
    ss_eos_release(&m);
    ss_eos_release(&d);
    ss_eos_release(&e);
    ss_eos_release(&e); /* safe twice */
    ss_buf_release(&b);
}

/* One producer, one worker: every batch once, then one EOS. */
static void test_one_worker(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 16);
    fworker w = {.name = "map-1", .credits = 4, .hold = 1};
    worker_start(&w);
    fprod p = {.name = "src-1", .stream = 1, .n = 200, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.confirmed, 200);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 200);
    check_eos(&w, streams, 1, 200, 1);
    assert_int_equal(rt.st.in_batches, 200);
    assert_int_equal(rt.st.out_batches, 200);
    assert_int_equal(rt.st.acked, 200);
    assert_int_equal(rt.st.duplicates, 0);
    assert_int_equal(rt.st.rejected, 0);
    assert_int_equal(rt.st.queue_depth, 0);
    assert_int_equal(rt.st.inflight, 0);
    worker_free(&w);
    test_done = 1;
}

/* Three producers in two groups, three workers: every batch once; EOS
 * with the merged table and the roster of the three. */
static void test_three_workers(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 2, 32);
    fworker w[3] = {{.name = "map-1", .credits = 4, .hold = 1},
                    {.name = "map-2", .credits = 2, .hold = 1},
                    {.name = "map-3", .credits = 3, .sleep_ms = 1}};
    for (int i = 0; i < 3; i++)
        worker_start(&w[i]);
    fprod p[3] = {
        {.name = "src-1", .group = "source", .members = 2, .stream = 1,
         .n = 150, .skip = -1, .dup = -1},
        {.name = "src-2", .group = "source", .members = 2, .stream = 2,
         .n = 150, .skip = -1, .dup = -1},
        {.name = "side", .group = "side", .stream = 3, .n = 150,
         .skip = -1, .dup = -1}};
    for (int i = 0; i < 3; i++)
        prod_start(&p[i]);
    for (int i = 0; i < 3; i++) {
        prod_join(&p[i]);
        assert_int_equal(p[i].rc, 0);
    }
    for (int i = 0; i < 3; i++)
        worker_join(&w[i]);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {1, 2, 3};
    check_exactly_once(w, 3, streams, 3, 150);
    for (int i = 0; i < 3; i++) {
        check_eos(&w[i], streams, 3, 150, 3);
        assert_true(has_roster(&w[i].eos, "map-1"));
        assert_true(has_roster(&w[i].eos, "map-2"));
        assert_true(has_roster(&w[i].eos, "map-3"));
        assert_true(w[i].nkeys > 0);
    }
    assert_int_equal(rt.st.in_batches, 450);
    assert_int_equal(rt.st.acked, 450);
    for (int i = 0; i < 3; i++)
        worker_free(&w[i]);
    test_done = 1;
}

/* A worker that sleeps per batch gets clearly fewer than a fast one. */
static void test_slow_worker(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w[2] = {{.name = "fast", .credits = 2},
                    {.name = "slow", .credits = 2, .sleep_ms = 20}};
    for (int i = 0; i < 2; i++)
        worker_start(&w[i]);
    sleep_ms(20); /* both joined before the first batch */
    fprod p = {.name = "src-1", .stream = 1, .n = 400, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    for (int i = 0; i < 2; i++)
        worker_join(&w[i]);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {1};
    check_exactly_once(w, 2, streams, 1, 400);
    print_message("fast worker: %zu batches, slow worker: %zu\n",
                  w[0].nkeys, w[1].nkeys);
    assert_true(w[1].nkeys > 0);
    assert_true(w[1].nkeys * 3 < w[0].nkeys);
    for (int i = 0; i < 2; i++)
        worker_free(&w[i]);
    test_done = 1;
}

/* A worker that joins mid-stream gets work from then on. */
static void test_late_joiner(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w[2] = {{.name = "early", .credits = 2, .sleep_ms = 2},
                    {.name = "late", .credits = 2, .sleep_ms = 2}};
    worker_start(&w[0]);
    fprod p = {.name = "src-1", .stream = 1, .n = 300, .skip = -1,
               .dup = -1};
    prod_start(&p);
    for (int i = 0; i < 10000 && atomic_load(&w[0].received) < 20; i++)
        sleep_ms(1);
    worker_start(&w[1]);
    prod_join(&p);
    worker_join(&w[0]);
    worker_join(&w[1]);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {1};
    check_exactly_once(w, 2, streams, 1, 300);
    print_message("early worker: %zu batches, late worker: %zu\n",
                  w[0].nkeys, w[1].nkeys);
    assert_true(w[1].nkeys >= 50);
    check_eos(&w[0], streams, 1, 300, 2);
    check_eos(&w[1], streams, 1, 300, 2);
    worker_free(&w[0]);
    worker_free(&w[1]);
    test_done = 1;
}

/* A worker that vanishes holding batches: they go to the other one and
 * the total is still exact; the lost worker is not in the roster. */
static void test_worker_vanishes(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w[2] = {{.name = "map-1", .credits = 4, .die_after = 10},
                    {.name = "map-2", .credits = 4, .sleep_ms = 1}};
    for (int i = 0; i < 2; i++)
        worker_start(&w[i]);
    sleep_ms(20);
    fprod p = {.name = "src-1", .stream = 1, .n = 200, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    for (int i = 0; i < 2; i++)
        worker_join(&w[i]);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(p.rc, 0);
    uint32_t streams[] = {1};
    check_lost_acks(&w[0], &w[1], 1, 200);
    assert_int_equal(w[0].nkeys, 9);
    assert_int_equal(w[0].eos_count, 0);
    check_eos(&w[1], streams, 1, 200, 1);
    assert_false(has_roster(&w[1].eos, "map-1"));
    assert_int_equal(rt.st.workers_lost, 1);
    assert_true(rt.st.redelivered >= 1);
    assert_int_equal(rt.st.out_batches, 200 + rt.st.redelivered);
    assert_int_equal(rt.st.acked, 200);
    for (int i = 0; i < 2; i++)
        worker_free(&w[i]);
    test_done = 1;
}

/* A worker that leaves (a component torn down by a restart) with an
 * acknowledgement still held back sends it on its way out: that last
 * credit message carries its run and producer id like any other, so its
 * router takes it (it used to go out unstamped and the router dropped it
 * as "a message written by someone else"). */
static void test_leaver_last_credit(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w[2] = {{.name = "map-1", .credits = 4, .leave_after = 5},
                    {.name = "map-2", .credits = 4, .sleep_ms = 1}};
    for (int i = 0; i < 2; i++)
        worker_start(&w[i]);
    sleep_ms(20);
    fprod p = {.name = "src-1", .stream = 1, .n = 200, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    for (int i = 0; i < 2; i++)
        worker_join(&w[i]);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(w[0].nkeys, 5);
    assert_int_equal(rt.st.rejected, 0);
    assert_int_equal(rt.st.acked, 200);
    for (int i = 0; i < 2; i++)
        worker_free(&w[i]);
    test_done = 1;
}

/* Two workers of a stateless stage feed this router; one vanishes after
 * its batches were confirmed but before its end of stream (killed while
 * completing). The group completes without it: every batch is there. */
static void test_stateless_producer_vanishes(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "filter-1", .credits = 4, .stage = "filter"};
    worker_start(&w);
    ss_hdr late[10];
    for (int i = 0; i < 10; i++)
        late[i] = (ss_hdr){.stream = 1, .seq = 10 + (uint64_t)i,
                           .flags = SS_BF_LAST_PART};
    fprod p[2] = {{.name = "map-1", .role = "worker", .group = "map",
                   .members = 2, .stream = 1, .n = 10, .declared = 20,
                   .skip = -1, .dup = -1},
                  {.name = "map-2", .role = "worker", .group = "map",
                   .members = 2, .stream = 1, .items = late, .nitems = 10,
                   .no_eos = 1, .skip = -1, .dup = -1}};
    prod_start(&p[1]);
    prod_join(&p[1]);
    assert_int_equal(p[1].rc, 0);
    assert_int_equal(p[1].confirmed, 10);
    prod_start(&p[0]);
    prod_join(&p[0]);
    worker_join(&w);
    if (router_join(&rt))
        fail_msg("router: %s", rt.err);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 20);
    check_eos(&w, streams, 1, 20, 1);
    assert_int_equal(rt.st.producers_lost, 1);
    worker_free(&w);
    test_done = 1;
}

/* Three stateless producers; map-2 vanishes before the router upstream
 * ended, so the roster of the EOS the others pass on (map-1, map-3) and
 * their members count (2) leave it out already. It must not count as an
 * ended member as well: the group would complete with map-1's EOS alone,
 * before map-3's batches and EOS (the run failed, "stream 1 is
 * incomplete", or map-3 could not deliver its end of stream). */
static void test_lost_producer_not_in_roster(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "filter-1", .credits = 4, .stage = "filter"};
    worker_start(&w);
    ss_hdr lin[15];
    for (int i = 0; i < 15; i++)
        lin[i] = (ss_hdr){.stream = 1, .seq = (uint64_t)i,
                          .flags = SS_BF_LAST_PART};
    static const char *const roster[] = {"map-1", "map-3", NULL};
    fprod p[3] = {{.name = "map-2", .group = "map", .members = 2,
                   .stream = 1, .items = lin, .nitems = 5, .no_eos = 1,
                   .skip = -1, .dup = -1},
                  {.name = "map-1", .group = "map", .members = 2,
                   .stream = 1, .items = lin + 5, .nitems = 5,
                   .declared = 15, .roster = roster, .skip = -1, .dup = -1},
                  {.name = "map-3", .group = "map", .members = 2,
                   .stream = 1, .items = lin + 10, .nitems = 5,
                   .declared = 15, .roster = roster, .skip = -1, .dup = -1,
                   /* connected, sends once map-2 was counted as lost */
                   .wait_ms = 2 * peer_timeout_ms + 1500}};
    prod_start(&p[2]);
    for (int i = 0; i < 2; i++) {
        prod_start(&p[i]);
        prod_join(&p[i]);
        assert_int_equal(p[i].rc, 0);
    }
    prod_join(&p[2]);
    if (p[2].rc)
        fail_msg("map-3: %s", p[2].err);
    worker_join(&w);
    if (router_join(&rt))
        fail_msg("router: %s", rt.err);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 15);
    assert_int_equal(rt.st.producers_lost, 1);
    worker_free(&w);
    test_done = 1;
}

/* A keyed router (--partitions 2): every batch is cut in two parts, key
 * group 10 (slot 1) and 3000 (slot 2). The worker of slot 2 joins first
 * and gets only its parts while slot 1's wait in the queue for their own
 * worker, which gets them all when it joins late; a worker that does not
 * say its slot is refused. */
static void test_keyed_routing(void **state)
{
    (void)state;
    rthread rt;
    router_partitions = 2;
    router_start(&rt, 1, 64);
    router_partitions = 0;
    fworker stray = {.name = "reduce-x", .credits = 4, .stage = "reduce"};
    worker_start(&stray);
    worker_join(&stray);
    assert_int_not_equal(stray.rc, 0);
    assert_non_null(strstr(stray.err, "must say which of them it is"));
    fworker w[2] = {{.name = "reduce-1", .credits = 4, .stage = "reduce",
                     .index = 1},
                    {.name = "reduce-2", .credits = 4, .stage = "reduce",
                     .index = 2}};
    worker_start(&w[1]);
    ss_hdr lin[20];
    for (int i = 0; i < 20; i++)
        lin[i] = (ss_hdr){.stream = 1, .seq = (uint64_t)i / 2,
                          .part = (uint32_t)i % 2,
                          .partition = i % 2 ? 3000 : 10,
                          .flags = SS_BF_PARTITIONED |
                                   (i % 2 ? SS_BF_LAST_PART : 0)};
    fprod p = {.name = "filter-1", .group = "filter", .members = 1,
               .stream = 1, .items = lin, .nitems = 20, .declared = 10,
               .skip = -1, .dup = -1};
    prod_start(&p);
    for (int i = 0; i < 300 && atomic_load(&w[1].received) < 10; i++)
        sleep_ms(10);
    sleep_ms(100);
    assert_int_equal(atomic_load(&w[1].received), 10); /* not one more */
    worker_start(&w[0]);
    prod_join(&p);
    assert_int_equal(p.rc, 0);
    worker_join(&w[0]);
    worker_join(&w[1]);
    if (router_join(&rt))
        fail_msg("router: %s", rt.err);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(w[k].nkeys, 10);
        for (size_t i = 0; i < w[k].nkeys; i++)
            assert_int_equal(w[k].keys[i] & 0xff, (uint64_t)k); /* part */
        assert_int_equal(w[k].eos_count, 1);
        worker_free(&w[k]);
    }
    worker_free(&stray);
    assert_int_equal(rt.st.keyed_events, 20);
    assert_int_equal(rt.st.hot_events, 10);
    test_done = 1;
}

/* A source, or a stateful worker, that vanishes before its end of stream
 * takes data that exists nowhere else: the run fails and names it. */
/* The stream a source called name owns (routers check it). */
static uint32_t own(const char *name)
{
    return ss_name_id(name) & 0x7fffffffu;
}

static void vanish_fails(const char *role, int stateful, const char *name,
                         const char *says)
{
    int src = strcmp(role, "source") == 0;
    rthread rt;
    router_start(&rt, 2, 64);
    fworker w = {.name = "next-1", .credits = 4};
    worker_start(&w);
    fprod p[2] = {{.name = "ok-1", .role = role, .stateful = stateful,
                   .group = "a", .stream = src ? own("ok-1") : 1, .n = 5,
                   .skip = -1, .dup = -1},
                  {.name = name, .role = role, .stateful = stateful,
                   .group = "b", .stream = src ? own(name) : 2, .n = 5,
                   .no_eos = 1,
                   .skip = -1, .dup = -1}};
    for (int i = 0; i < 2; i++)
        prod_start(&p[i]);
    for (int i = 0; i < 2; i++)
        prod_join(&p[i]);
    worker_join(&w);
    assert_int_equal(router_join(&rt), SS_EPEER);
    print_message("router: %s\n", rt.err);
    assert_non_null(strstr(rt.err, name));
    assert_non_null(strstr(rt.err, "before its end of stream"));
    assert_non_null(strstr(rt.err, says));
    assert_int_equal(rt.st.producers_lost, 1);
    assert_int_equal(w.eos_count, 0);
    worker_free(&w);
    test_done = 1;
}

static void test_source_vanishes(void **state)
{
    (void)state;
    vanish_fails("source", 0, "src-2", "source src-2");
}

static void test_stateful_producer_vanishes(void **state)
{
    (void)state;
    vanish_fails("worker", 1, "reduce-2", "stateful");
}

/* A batch sent twice by a producer reaches the workers once. */
/* Held confirmations (RECEIVED_HOLD_MAX, RECEIVED_HOLD_MS): a producer
 * whose window is 1 (its HELLO says so: nothing may be held) and one
 * whose window is 16 (up to 8 held) both get every batch confirmed and
 * end their streams; the window-1 producer is confirmed batch by batch
 * (it could not send its next batch otherwise). */
static void test_received_held(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 2, 64);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod a = {.name = "one", .group = "one", .stream = 11, .n = 60,
               .skip = -1, .dup = -1, .window = 1};
    fprod b = {.name = "many", .group = "many", .stream = 12, .n = 60,
               .skip = -1, .dup = -1, .window = 16};
    uint64_t t0 = ss_now_ms();
    prod_start(&a);
    prod_start(&b);
    prod_join(&a);
    prod_join(&b);
    uint64_t took = ss_now_ms() - t0;
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.confirmed, 60);
    assert_int_equal(b.confirmed, 60);
    uint32_t streams[] = {11, 12};
    check_exactly_once(&w, 1, streams, 2, 60);
    /* held for 20 ms each, the window-1 producer's 60 batches would
     * take over 1.2 s; generous for a loaded machine */
    if (took > 1100)
        print_message("test_received_held: %llu ms (loaded machine?)\n",
                      (unsigned long long)took);
    worker_free(&w);
    test_done = 1;
}

static void test_duplicate_dropped(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod p = {.name = "src-1", .stream = 5, .n = 10, .skip = -1, .dup = 3};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.confirmed, 11); /* the duplicate is confirmed too */
    uint32_t streams[] = {5};
    check_exactly_once(&w, 1, streams, 1, 10);
    check_eos(&w, streams, 1, 10, 1);
    assert_int_equal(rt.st.duplicates, 1);
    assert_int_equal(rt.st.in_batches, 10);
    worker_free(&w);
    test_done = 1;
}

/* Split batches: complete when every part up to LAST_PART arrived; a
 * repeated part is a duplicate. */
static void test_split_parts(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    ss_hdr items[] = {
        {.stream = 4, .seq = 0, .part = 0},
        {.stream = 4, .seq = 0, .part = 2, .flags = SS_BF_LAST_PART},
        {.stream = 4, .seq = 1, .part = 0, .flags = SS_BF_LAST_PART},
        {.stream = 4, .seq = 0, .part = 2, .flags = SS_BF_LAST_PART},
        {.stream = 4, .seq = 0, .part = 1},
    };
    fprod p = {.name = "src-1", .stream = 4, .n = 2, .items = items,
               .nitems = 5};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    assert_int_equal(w.nkeys, 4);
    assert_int_equal(rt.st.duplicates, 1);
    worker_free(&w);

    /* the same without part 1: batch 0 is missing */
    test_done = 1;
    teardown(state);
    setup(state);
    router_start(&rt, 1, 64);
    fworker w2 = {.name = "map-1", .credits = 4};
    worker_start(&w2);
    p.nitems = 4;
    prod_start(&p);
    prod_join(&p);
    worker_join(&w2);
    assert_int_equal(router_join(&rt), SS_EINTEGRITY);
    assert_string_equal(rt.err, "stream 4 is incomplete: batch 0 is missing "
                                "(only some of its parts arrived; its end "
                                "of stream declares 2 batches)");
    assert_int_equal(w2.rc, SS_EPEER);
    worker_free(&w2);
    test_done = 1;
}

/* An EOS table that declares a batch nobody sent: ABORT naming it. */
static void test_missing_seq_aborts(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod p = {.name = "src-1", .stream = 1, .n = 10, .skip = 5, .dup = -1};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), SS_EINTEGRITY);
    assert_int_equal(p.rc, 0);
    const char *want = "stream 1 is incomplete: batch 5 is missing (its end "
                       "of stream declares 10 batches)";
    assert_string_equal(rt.err, want);
    assert_int_equal(w.rc, SS_EPEER);
    assert_string_equal(w.err, want);
    assert_int_equal(w.eos_count, 0);
    assert_int_equal(w.nkeys, 9);
    worker_free(&w);
    test_done = 1;
}

/* A stateful worker that dies: ABORT naming it, to every peer. */
static void test_stateful_death_aborts(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w[2] = {{.name = "reduce-1", .stage = "reduce", .credits = 4,
                     .stateful = 1, .die_after = 3},
                    {.name = "reduce-2", .stage = "reduce", .credits = 4,
                     .stateful = 1, .sleep_ms = 5}};
    for (int i = 0; i < 2; i++)
        worker_start(&w[i]);
    sleep_ms(20);
    fprod p = {.name = "src-1", .stream = 1, .n = 300, .skip = -1,
               .dup = -1};
    prod_start(&p);
    for (int i = 0; i < 2; i++)
        worker_join(&w[i]);
    prod_join(&p);
    assert_int_equal(router_join(&rt), SS_EPEER);
    print_message("abort reason: %s\n", rt.err);
    assert_non_null(strstr(rt.err, "worker reduce-1 of stage reduce was "
                                   "lost with "));
    assert_non_null(strstr(rt.err, " batches in flight; stateful stages "
                                   "cannot be retried"));
    assert_int_equal(w[1].rc, SS_EPEER);
    assert_string_equal(w[1].err, rt.err);
    assert_int_equal(p.rc, SS_EPEER); /* 300 batches cannot have fit */
    assert_string_equal(p.err, rt.err);
    for (int i = 0; i < 2; i++)
        worker_free(&w[i]);
    test_done = 1;
}

/* Sends one frame on a raw DEALER. */
static void raw_send(void *s, const void *p, size_t n)
{
    assert_int_equal(zmq_send(s, p, n, 0), (int)n);
}

/* Receives one message on a raw DEALER into h; returns its kind. */
static int raw_recv(void *s, ss_hdr *h)
{
    uint8_t buf[1024];
    int timeout = connect_ms;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int n = zmq_recv(s, buf, sizeof buf, 0);
    assert_true(n >= SS_HDR_SIZE);
    const char *why;
    assert_int_equal(ss_hdr_decode(buf, (size_t)n, h, &why), 0);
    return h->kind;
}

/* Receives on a raw DEALER until a message of kind `until`; returns how
 * many ABORTs came before it (anything else fails the test). */
static int count_aborts_until(void *s, int until)
{
    ss_hdr h;
    int n = 0, k;
    while ((k = raw_recv(s, &h)) != until) {
        assert_int_equal(k, SS_MSG_ABORT);
        n++;
    }
    return n;
}

static void *raw_dealer(const char *ep, const char *id)
{
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

/* Malformed, truncated and unexpected messages are counted and dropped;
 * the router keeps working. */
static void test_malformed(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;

    void *f = raw_dealer(front_ep, "client-7");
    raw_send(f, "garbage!!!", 10); /* 1: shorter than a header */
    ss_hdr d = {.kind = SS_MSG_DATA, .stream = 1, .seq = 0, .count = 1,
                .flags = SS_BF_LAST_PART};
    char payload[100] = {0};
    ss_proto_build(&b, &d, payload, sizeof payload);
    raw_send(f, b.data, SS_HDR_SIZE + 20); /* 2: truncated */
    raw_send(f, b.data, b.len);            /* 3: data before hello */
    b.data[0] = 'X';
    raw_send(f, b.data, b.len); /* 4: bad magic */
    b.data[0] = 'S';
    b.data[5] = 99;
    raw_send(f, b.data, b.len); /* 5: unknown kind */
    ss_hdr hh = {.kind = SS_MSG_HELLO};
    ss_proto_build(&b, &hh, "\x81\xa4name", 6);
    ss_hdr_stamp(b.data, 0, ss_name_id("client-7"));
    raw_send(f, b.data, b.len); /* 6: hello whose map is cut short */
    zmq_send(f, "a", 1, ZMQ_SNDMORE);
    raw_send(f, "b", 1); /* 7: multipart */
    /* a valid hello: its WELCOME proves the above were all handled */
    ss_hello he = {.name = "client-7", .role = "source", .stage = "x"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("client-7"));
    raw_send(f, b.data, b.len);
    /* each refusal was answered with an ABORT saying why (issue 10,
     * defect 4: a client must not be left waiting for nothing) */
    assert_int_equal(count_aborts_until(f, SS_MSG_WELCOME), 7);
    ss_hdr st = {.kind = SS_MSG_STATS, .producer = ss_name_id("client-7")};
    ss_proto_build(&b, &st, NULL, 0);
    raw_send(f, b.data, b.len); /* 8: a kind routers do not take */
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("client-7"));
    raw_send(f, b.data, b.len);
    assert_int_equal(count_aborts_until(f, SS_MSG_WELCOME), 1);
    zmq_close(f);

    void *k = raw_dealer(back_ep, "client-8");
    raw_send(k, "\0\0\0\0", 4); /* 9 */
    assert_int_equal(raw_recv(k, &h), SS_MSG_ABORT);
    ss_proto_credit(&b, &d, 1);
    ss_hdr_stamp(b.data, 0, ss_name_id("client-8"));
    raw_send(k, b.data, b.len); /* 10: credit before hello: ABORT back */
    assert_int_equal(raw_recv(k, &h), SS_MSG_ABORT);
    zmq_close(k);

    /* and a normal run still completes */
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod p = {.name = "src-1", .stream = 1, .n = 50, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 50);
    check_eos(&w, streams, 1, 50, 1);
    assert_int_equal(rt.st.rejected, 10);
    ss_buf_release(&b);
    worker_free(&w);
    test_done = 1;
}

/* Issue 10, defect 3: a control payload claiming more elements than its
 * bytes hold is refused before anything is reserved for them (libmsgpack
 * asked for ~100 GB for these 5 bytes: an ASan build aborted), and
 * control payloads have a size limit. */
static void test_proto_limits(void **state)
{
    (void)state;
    ss_hello he;
    ss_eos e;
    const char *why = NULL;
    assert_int_equal(ss_proto_hello_parse("\xdf\xff\xff\xff\xff", 5, &he,
                                          &why),
                     SS_EPROTO);
    assert_non_null(strstr(why, "larger than the bytes that follow"));
    ss_eos_init(&e);
    assert_int_equal(ss_eos_decode("\xdd\xff\xff\xff\xf0", 5, &e, &why),
                     SS_EPROTO);
    assert_non_null(strstr(why, "larger than the bytes that follow"));
    ss_eos_release(&e);
    /* a well-formed HELLO of 70 KiB: above the control limit */
    size_t n = 70 << 10;
    char *big = malloc(n);
    assert_non_null(big);
    size_t o = 0;
    big[o++] = (char)0x81;                       /* map of one pair */
    big[o++] = (char)0xa4;                       /* key "name" */
    memcpy(big + o, "name", 4);
    o += 4;
    size_t sl = n - o - 5;
    big[o++] = (char)0xdb;                       /* str 32 */
    big[o++] = (char)(sl >> 24);
    big[o++] = (char)(sl >> 16);
    big[o++] = (char)(sl >> 8);
    big[o++] = (char)sl;
    memset(big + o, 'a', sl);
    assert_int_equal(ss_proto_hello_parse(big, n, &he, &why), SS_EPROTO);
    assert_non_null(strstr(why, "larger than 64 KiB"));
    free(big);
    assert_int_equal(ss_proto_payload_max(SS_MSG_HELLO), 64 << 10);
    assert_int_equal(ss_proto_payload_max(SS_MSG_DATA), SS_BATCH_MAX_SIZE);
    /* a name with a newline would forge a log line: refused, said */
    static const char nl[] = "\x82\xa4name\xa5map\n1\xa4role\xa6worker";
    assert_int_equal(ss_proto_hello_parse(nl, sizeof nl - 1, &he, &why),
                     SS_EPROTO);
    assert_non_null(strstr(why, "control character"));
    static const char esc[] = "\x82\xa4name\xa5map-1\xa4role\xa5w\x1b[2J";
    assert_int_equal(ss_proto_hello_parse(esc, sizeof esc - 1, &he, &why),
                     SS_EPROTO);
    assert_non_null(strstr(why, "control character"));
    static const char ok[] = "\x82\xa4name\xa5map-1\xa4role\xa6worker";
    assert_int_equal(ss_proto_hello_parse(ok, sizeof ok - 1, &he, &why), 0);
    assert_string_equal(he.name, "map-1");
    assert_int_equal(he.credits, 0); /* missing: the router takes 1 */
}

/* Issue 10, defect 5: a known producer's DATA whose count is larger than
 * its payload used to be dropped with no answer, and the producer waited
 * for its RECEIVED forever; now it gets ABORT saying why. */
static void test_bad_data_answered(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    void *f = raw_dealer(front_ep, "src-9");
    ss_hello he = {.name = "src-9", .role = "source", .stage = "src"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("src-9"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    ss_hdr d = {.kind = SS_MSG_DATA, .stream = 1, .seq = 0, .count = 100,
                .flags = SS_BF_LAST_PART};
    ss_proto_build(&b, &d, "0123456789", 10);
    ss_hdr_stamp(b.data, 0, ss_name_id("src-9"));
    raw_send(f, b.data, b.len);
    uint8_t buf[1024];
    int timeout = connect_ms;
    zmq_setsockopt(f, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int n;
    do { /* heartbeats may come first */
        n = zmq_recv(f, buf, sizeof buf, 0);
        assert_true(n >= SS_HDR_SIZE);
        const char *why;
        assert_int_equal(ss_hdr_decode(buf, (size_t)n, &h, &why), 0);
    } while (h.kind == SS_MSG_HEARTBEAT);
    assert_int_equal(h.kind, SS_MSG_ABORT);
    char reason[SS_PROTO_REASON_MAX];
    const char *why;
    assert_int_equal(ss_proto_abort_parse(buf + SS_HDR_SIZE, h.len, reason,
                                          sizeof reason, &why),
                     0);
    assert_non_null(strstr(reason, "router r1 refused malformed message "
                                   "from 'src-9': event count larger"));
    ss_router_stop(rt.r);
    assert_int_equal(router_join(&rt), SS_EINTR);
    assert_int_equal(rt.st.rejected, 1);
    zmq_close(f);
    ss_buf_release(&b);
    test_done = 1;
}

/* A hoarder: says HELLO with 1024 credits, then heartbeats and never
 * acknowledges anything, until the router aborts it or 5 s pass. */
typedef struct hoarder {
    pthread_t t;
    int got;     /* DATA received */
    int aborted; /* the router sent ABORT */
} hoarder;

static void *hoarder_main(void *arg)
{
    hoarder *ho = arg;
    ss_buf b = SS_BUF_INIT, hb = SS_BUF_INIT;
    void *z = raw_dealer(back_ep, "hoarder");
    ss_hello he = {.name = "hoarder", .role = "worker", .stage = "map",
                   .credits = 1024};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("hoarder"));
    zmq_send(z, b.data, b.len, 0);
    ss_proto_heartbeat(&hb);
    ss_hdr_stamp(hb.data, 0, ss_name_id("hoarder"));
    int timeout = hb_ms;
    zmq_setsockopt(z, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    uint8_t buf[2048];
    /* until the ABORT, within a bound past the stall limit (2 peer
     * timeouts) that valgrind under load still meets: 5 s was less than
     * the 6 s stall limit of SS_TEST_SLOW */
    for (int i = 0; i < (20 * peer_timeout_ms + 5000) / hb_ms && !ho->aborted;
         i++) {
        zmq_send(z, hb.data, hb.len, ZMQ_DONTWAIT);
        int n;
        while ((n = zmq_recv(z, buf, sizeof buf, 0)) >= SS_HDR_SIZE) {
            if (buf[5] == SS_MSG_DATA)
                ho->got++;
            else if (buf[5] == SS_MSG_ABORT)
                ho->aborted = 1;
        }
    }
    zmq_close(z);
    ss_buf_release(&b);
    ss_buf_release(&hb);
    return NULL;
}

/* Issue 10, defect 2: a worker that takes batches with a large credit,
 * keeps heartbeating and never acknowledges used to stall the run
 * forever; past the stall limit it is counted as lost, its batches go to
 * the other worker, the run completes, and the hoarder is told (ABORT). */
static void test_credit_hoarder(void **state)
{
    (void)state;
    rthread rt;
    memset(&rt, 0, sizeof rt);
    atomic_init(&rt.finished, 0);
    ss_router_opts o = {.from = front_ep, .to = back_ep, .name = "r1",
                        .producers = 1, .queue = 64, .heartbeat_ms = hb_ms,
                        .peer_timeout_ms = peer_timeout_ms,
                        .stall_ms = 2 * peer_timeout_ms, .linger_ms = 100};
    char err[600];
    if (ss_router_new(zctx, &o, &rt.r, err, sizeof err))
        fail_msg("router_new: %s", err);
    assert_int_equal(pthread_create(&rt.t, NULL, router_main, &rt), 0);
    hoarder ho = {0};
    assert_int_equal(pthread_create(&ho.t, NULL, hoarder_main, &ho), 0);
    sleep_ms(100); /* it is there first: it takes everything */
    fprod p = {.name = "src-1", .stream = 1, .n = 40, .skip = -1,
               .dup = -1};
    prod_start(&p);
    sleep_ms(100);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    pthread_join(ho.t, NULL);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 40);
    check_eos(&w, streams, 1, 40, 1);
    assert_true(ho.got > 0);
    assert_int_equal(rt.st.workers_lost, 1);
    assert_int_equal(rt.st.redelivered, ho.got);
    assert_true(ho.aborted);
    worker_free(&w);
    test_done = 1;
}

/* Issue 10, defect 3: --max-frame. A producer's frame above it never
 * reaches the router (libzmq drops the connection on TCP; the peer's
 * DEALER reconnects); the producer's next, small batch still does. */
static void test_max_frame(void **state)
{
    (void)state;
    char tcp_ep[64];
    snprintf(tcp_ep, sizeof tcp_ep, "tcp://127.0.0.1:%d",
             20000 + (int)(getpid() % 20000));
    rthread rt;
    memset(&rt, 0, sizeof rt);
    atomic_init(&rt.finished, 0);
    ss_router_opts o = {.from = tcp_ep, .to = back_ep, .name = "r1",
                        .producers = 1, .queue = 64, .max_frame = 64 << 10,
                        .heartbeat_ms = hb_ms,
                        .peer_timeout_ms = 10 * peer_timeout_ms,
                        .linger_ms = 100};
    char err[600];
    if (ss_router_new(zctx, &o, &rt.r, err, sizeof err))
        fail_msg("router_new: %s", err);
    assert_int_equal(pthread_create(&rt.t, NULL, router_main, &rt), 0);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    void *f = raw_dealer(tcp_ep, "big-src");
    ss_hello he = {.name = "big-src", .role = "source", .stage = "src"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    char *payload = calloc(1, 100 << 10);
    assert_non_null(payload);
    for (uint64_t seq = 0; seq < 2; seq++) {
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("big-src"),
                    .seq = seq, .count = 1, .flags = SS_BF_LAST_PART};
        ss_proto_build(&b, &d, payload, seq == 0 ? 100 << 10 : 100);
        ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
        raw_send(f, b.data, b.len);
        sleep_ms(200); /* the first one's connection goes, and comes back */
    }
    free(payload);
    int k;
    while ((k = raw_recv(f, &h)) == SS_MSG_HEARTBEAT)
        ;
    assert_int_equal(k, SS_MSG_RECEIVED);
    assert_int_equal(h.seq, 1);
    ss_router_stop(rt.r);
    assert_int_equal(router_join(&rt), SS_EINTR);
    assert_int_equal(rt.st.in_batches, 1);
    zmq_close(f);
    ss_buf_release(&b);
    test_done = 1;
}

/* Issue 10: the router's WELCOME says its frame limit, and a producer
 * refuses a batch above it with an error naming the limit (before, the
 * batch cost it the connection and it waited for a RECEIVED that could
 * never come); a batch under the limit still goes. Without --max-frame
 * the limit is SS_ROUTER_FRAME_DEFAULT. */
static void test_max_frame_told(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        uint64_t limit = round == 0 ? 64 << 10 : SS_ROUTER_FRAME_DEFAULT;
        /* each round its own endpoints: inproc names are freed late */
        char fe[80], be[80];
        snprintf(fe, sizeof fe, "%s-%d", front_ep, round);
        snprintf(be, sizeof be, "%s-%d", back_ep, round);
        rthread rt;
        memset(&rt, 0, sizeof rt);
        atomic_init(&rt.finished, 0);
        ss_router_opts o = {.from = fe, .to = be, .name = "r1",
                            .producers = 1, .queue = 64,
                            .max_frame = round == 0 ? limit : 0,
                            .heartbeat_ms = hb_ms,
                            .peer_timeout_ms = 10 * peer_timeout_ms,
                            .linger_ms = 100};
        char err[600];
        if (ss_router_new(zctx, &o, &rt.r, err, sizeof err))
            fail_msg("router_new: %s", err);
        assert_int_equal(pthread_create(&rt.t, NULL, router_main, &rt), 0);
        ss_link *l = NULL;
        ss_link_opts lo = {.endpoint = fe, .name = "big-src",
                           .role = "source", .stage = "src", .window = 4,
                           .connect_timeout_ms = connect_ms};
        if (ss_link_new(zctx, &lo, &l, err, sizeof err))
            fail_msg("link_new: %s", err);
        size_t big = (size_t)limit; /* header + this: over the limit */
        char *payload = calloc(1, big);
        assert_non_null(payload);
        ss_buf b = SS_BUF_INIT;
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("big-src"),
                    .seq = 0, .count = 1, .flags = SS_BF_LAST_PART};
        assert_int_equal(ss_proto_build(&b, &d, payload, big), 0);
        ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
        assert_int_equal(ss_link_send(l, b.data, b.len, 0), SS_ETOOBIG);
        print_message("link: %s\n", ss_link_error(l));
        char want[64];
        snprintf(want, sizeof want, "takes at most %llu",
                 (unsigned long long)limit);
        assert_non_null(strstr(ss_link_error(l), want));
        assert_non_null(strstr(ss_link_error(l), "--max-frame"));
        d.seq = 0; /* the same batch, small enough, goes */
        assert_int_equal(ss_proto_build(&b, &d, payload, big / 2), 0);
        ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
        assert_int_equal(ss_link_send(l, b.data, b.len, 0), 0);
        int got = 0;
        for (int i = 0; i < 300 && got == 0; i++)
            got = ss_link_service(l, 10);
        assert_int_equal(got, 1);
        free(payload);
        ss_buf_release(&b);
        ss_link_destroy(&l);
        ss_router_stop(rt.r);
        assert_int_equal(router_join(&rt), SS_EINTR);
        assert_int_equal(rt.st.in_batches, 1);
    }
    test_done = 1;
}

/* Issue 10, defect 3: with no worker, a producer sending large batches
 * fills the queue up to queue_bytes, not up to --queue batches (12
 * frames of 50 MB took a router to 606 MB): the router stops reading
 * FRONT, and ZeroMQ pushes back. */
static void test_queue_bytes(void **state)
{
    (void)state;
    rthread rt;
    memset(&rt, 0, sizeof rt);
    atomic_init(&rt.finished, 0);
    ss_router_opts o = {.from = front_ep, .to = back_ep, .name = "r1",
                        .producers = 1, .queue = 64,
                        .queue_bytes = 1 << 20, .heartbeat_ms = hb_ms,
                        .peer_timeout_ms = peer_timeout_ms,
                        .linger_ms = 100};
    char err[600];
    if (ss_router_new(zctx, &o, &rt.r, err, sizeof err))
        fail_msg("router_new: %s", err);
    assert_int_equal(pthread_create(&rt.t, NULL, router_main, &rt), 0);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    void *f = raw_dealer(front_ep, "big-src");
    ss_hello he = {.name = "big-src", .role = "source", .stage = "src"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    size_t len = 300 << 10;
    char *payload = calloc(1, len);
    assert_non_null(payload);
    for (uint64_t seq = 0; seq < 10; seq++) {
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("big-src"),
                    .seq = seq, .count = 1, .flags = SS_BF_LAST_PART};
        ss_proto_build(&b, &d, payload, len);
        ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
        raw_send(f, b.data, b.len);
    }
    free(payload);
    sleep_ms(300 + 2 * hb_ms);
    ss_router_stop(rt.r);
    assert_int_equal(router_join(&rt), SS_EINTR);
    /* 4 x 300 KiB reach 1 MiB: the rest waits in ZeroMQ, unread */
    assert_int_equal(rt.st.in_batches, 4);
    zmq_close(f);
    ss_buf_release(&b);
    test_done = 1;
}

/* Issue 9 (batch size): with no queue_bytes given, a router queues about
 * 4 MiB (SS_ROUTER_QUEUE_BYTES: 64 default batches), not 64 MiB: 40
 * batches of 256 KiB from one producer that never waits, and no worker:
 * it takes 17 (the one past 4 MiB included), and the rest waits in
 * ZeroMQ, unread. The old default took all 40 (10 MiB). */
static void test_queue_bytes_default(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64); /* queue 64 batches, queue_bytes default */
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    void *f = raw_dealer(front_ep, "big-src");
    ss_hello he = {.name = "big-src", .role = "source", .stage = "src"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    size_t len = 256 << 10;
    char *payload = calloc(1, len);
    assert_non_null(payload);
    for (uint64_t seq = 0; seq < 40; seq++) {
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("big-src"),
                    .seq = seq, .count = 1, .flags = SS_BF_LAST_PART};
        ss_proto_build(&b, &d, payload, len);
        ss_hdr_stamp(b.data, 0, ss_name_id("big-src"));
        raw_send(f, b.data, b.len);
    }
    free(payload);
    /* RECEIVED for every batch queued; the 17th is the last one */
    int got = 0;
    for (int i = 0; i < 17; i++)
        got += raw_recv(f, &h) == SS_MSG_RECEIVED;
    sleep_ms(500 + 2 * hb_ms); /* time to take more, if it would */
    ss_router_stop(rt.r);
    assert_int_equal(router_join(&rt), SS_EINTR);
    uint64_t one = SS_HDR_SIZE + len;
    assert_int_equal(rt.st.in_batches, SS_ROUTER_QUEUE_BYTES / one + 1);
    assert_int_equal(rt.st.in_batches, 17);
    assert_int_equal(rt.st.queue_depth, 17);
    zmq_close(f);
    ss_buf_release(&b);
    test_done = 1;
}

/* A link's window is bounded in bytes too (issue 9): a producer whose
 * router confirms nothing has at most SS_BATCH_INFLIGHT_BYTES (16
 * batches of 64 KiB) sent and unconfirmed, i.e. 4 batches of 256 KiB
 * with its default window of 16 batches (the old link sent 16, 4 MiB),
 * and always SS_LINK_WINDOW_MIN batches however large. Counted at a raw
 * ROUTER that plays the router and confirms only when told. */
typedef struct wprod {
    pthread_t t;
    size_t len;      /* payload bytes per batch */
    int n;           /* batches to send */
    uint64_t wbytes; /* window_bytes (0: default) */
    const char *ep;  /* the fake router */
    int rc;
    char err[600];
} wprod;

static void *wprod_main(void *arg)
{
    wprod *p = arg;
    ss_link *l = NULL;
    ss_link_opts o = {.endpoint = p->ep, .name = "win-src",
                      .role = "source", .stage = "src", .window = 16,
                      .window_bytes = p->wbytes,
                      .connect_timeout_ms = connect_ms};
    p->rc = ss_link_new(zctx, &o, &l, p->err, sizeof p->err);
    if (p->rc)
        return NULL;
    char *payload = calloc(1, p->len);
    ss_buf b = SS_BUF_INIT;
    for (int i = 0; i < p->n && payload && !p->rc; i++) {
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("win-src"),
                    .seq = (uint64_t)i, .count = 1,
                    .flags = SS_BF_LAST_PART};
        p->rc = ss_proto_build(&b, &d, payload, p->len);
        ss_hdr_stamp(b.data, 0, ss_name_id("win-src"));
        if (!p->rc)
            p->rc = ss_link_send(l, b.data, b.len, (uint64_t)i);
    }
    free(payload);
    ss_buf_release(&b);
    ss_link_destroy(&l);
    return NULL;
}

/* Receives from the raw router r until `quiet_ms` pass without a
 * message; counts the DATA, keeps their headers in got[*n...], answers
 * HELLO with WELCOME. */
static int fake_router_take(void *r, uint8_t *id, int *idn, ss_hdr *got,
                            int *n, int cap, int quiet_ms)
{
    static uint8_t buf[(256 << 10) + SS_HDR_SIZE + 64];
    int data = 0;
    zmq_setsockopt(r, ZMQ_RCVTIMEO, &quiet_ms, sizeof quiet_ms);
    for (int guard = 0; guard < 1000; guard++) {
        int k = zmq_recv(r, id, 256, 0);
        if (k < 0)
            return data;
        *idn = k;
        int m = zmq_recv(r, buf, sizeof buf, 0);
        ss_hdr h;
        const char *why;
        if (m < SS_HDR_SIZE ||
            ss_hdr_decode(buf, (size_t)(m > (int)sizeof buf ? (int)sizeof buf : m),
                          &h, &why))
            continue;
        if (h.kind == SS_MSG_HELLO) {
            ss_welcome w = {.heartbeat_ms = 500, .peer_timeout_ms = 30000};
            snprintf(w.router, sizeof w.router, "fake");
            ss_buf b = SS_BUF_INIT;
            assert_int_equal(ss_proto_welcome(&b, &w), 0);
            zmq_send(r, id, (size_t)k, ZMQ_SNDMORE);
            zmq_send(r, b.data, b.len, 0);
            ss_buf_release(&b);
        } else if (h.kind == SS_MSG_DATA) {
            data++;
            if (*n < cap)
                got[(*n)++] = h;
        }
    }
    return data;
}

static void window_bytes_case(size_t len, uint64_t wbytes, int want)
{
    void *r = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    char ep[80];
    snprintf(ep, sizeof ep, "%s-w%zu-%llu", front_ep, len,
             (unsigned long long)wbytes);
    assert_int_equal(zmq_bind(r, ep), 0);
    wprod p = {.len = len, .n = 20, .wbytes = wbytes, .ep = ep};
    assert_int_equal(pthread_create(&p.t, NULL, wprod_main, &p), 0);
    uint8_t id[256];
    int idn = 0, n = 0;
    ss_hdr got[32];
    /* everything the link sends unconfirmed: a quiet second ends it */
    int first = fake_router_take(r, id, &idn, got, &n, 32, 1000);
    print_message("link window: %d batches of %zu bytes unconfirmed\n",
                  first, len);
    assert_int_equal(first, want);
    /* confirm them one by one: each confirmation lets one more go */
    int total = first;
    for (int i = 0; i < n && total <= 20; i++) {
        ss_buf b = SS_BUF_INIT;
        assert_int_equal(ss_proto_received(&b, &got[i]), 0);
        zmq_send(r, id, (size_t)idn, ZMQ_SNDMORE);
        zmq_send(r, b.data, b.len, 0);
        ss_buf_release(&b);
        if (total < 20) /* the next one comes; then a quiet 300 ms */
            total += fake_router_take(r, id, &idn, got, &n, 32, 300);
    }
    assert_int_equal(total, 20);
    pthread_join(p.t, NULL);
    assert_int_equal(p.rc, 0);
    zmq_close(r);
}

static void test_link_window_bytes(void **state)
{
    (void)state;
    window_bytes_case(256 << 10, 0, 4);   /* 1 MiB: 4 of 256 KiB */
    window_bytes_case(64 << 10, 0, 16);   /* 64 KiB: the 16 of before */
    window_bytes_case(64 << 10, 200 << 10, 3); /* 200 KiB: 3 of 64 KiB */
    window_bytes_case(256 << 10, 1000, SS_LINK_WINDOW_MIN); /* at least */
    test_done = 1;
}

/* A worker that stays connected but goes silent (no heartbeat, no ack)
 * is counted as lost after the peer timeout; its batches go elsewhere. */
static void test_silent_worker_lost(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    void *z = raw_dealer(back_ep, "zombie");
    ss_hello he = {.name = "zombie", .role = "worker", .stage = "map",
                   .credits = 2};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("zombie"));
    raw_send(z, b.data, b.len);
    assert_int_equal(raw_recv(z, &h), SS_MSG_WELCOME);
    fprod p = {.name = "src-1", .stream = 1, .n = 100, .skip = -1,
               .dup = -1};
    prod_start(&p);
    int got = 0;
    while (got < 2)
        if (raw_recv(z, &h) == SS_MSG_DATA)
            got++;
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {1};
    check_exactly_once(&w, 1, streams, 1, 100);
    check_eos(&w, streams, 1, 100, 1);
    assert_int_equal(rt.st.workers_lost, 1);
    assert_int_equal(rt.st.redelivered, 2);
    zmq_close(z);
    ss_buf_release(&b);
    worker_free(&w);
    test_done = 1;
}

/* Wire version 2 origin checks: a hello in wire version 1 is answered
 * with an ABORT the old peer can read (48-byte header, version 1) naming
 * both versions; a message whose producer id is not its sender's, and
 * one of another run than the router's, are dropped and counted, and a
 * hello of another run is answered with an ABORT naming both runs. */
static void test_origin_checks(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    uint8_t buf[1024];

    /* version 1 hello: ABORT in version 1 naming 1 and 2 */
    void *old = raw_dealer(front_ep, "old-1");
    ss_hello he = {.name = "old-1", .role = "source", .stage = "x"};
    ss_proto_hello(&b, &he);
    b.data[4] = 1;
    raw_send(old, b.data, b.len);
    int timeout = connect_ms;
    zmq_setsockopt(old, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int n = zmq_recv(old, buf, sizeof buf, 0);
    assert_true(n > 48);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[5], SS_MSG_ABORT);
    assert_int_equal(ss_get_u32(buf + 28), (uint32_t)(n - 48));
    char reason[SS_PROTO_REASON_MAX];
    const char *why;
    assert_int_equal(ss_proto_abort_parse(buf + 48, (size_t)n - 48, reason,
                                          sizeof reason, &why), 0);
    assert_non_null(strstr(reason, "wire version 1 from 'old-1' is not "
                                   "supported by router r1 (speaks 2)"));
    zmq_close(old);

    /* a hello that says it is someone else: dropped, ABORT back */
    void *f = raw_dealer(front_ep, "evil");
    he = (ss_hello){.name = "evil", .role = "source", .stage = "x"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("src-1"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_ABORT);
    /* the first good hello fixes the run (0 here, as by-hand components
     * without --run) */
    ss_hdr_stamp(b.data, 0, ss_name_id("evil"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    /* a batch of another run: dropped */
    ss_hdr d = {.kind = SS_MSG_DATA, .stream = 1, .seq = 0, .count = 0,
                .flags = SS_BF_LAST_PART, .run = 0x1234,
                .producer = ss_name_id("evil")};
    ss_proto_build(&b, &d, NULL, 0);
    raw_send(f, b.data, b.len);
    /* a hello of another run: ABORT naming both runs */
    void *g = raw_dealer(front_ep, "late");
    he = (ss_hello){.name = "late", .role = "source", .stage = "x"};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0xabcdef, ss_name_id("late"));
    raw_send(g, b.data, b.len);
    assert_int_equal(raw_recv(g, &h), SS_MSG_ABORT);
    zmq_close(g);
    zmq_close(f);

    /* and a normal run still completes, none of the above in it */
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod p = {.name = "src-1", .stream = 2, .n = 20, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {2};
    check_exactly_once(&w, 1, streams, 1, 20);
    assert_int_equal(rt.st.rejected, 4);
    ss_buf_release(&b);
    worker_free(&w);
    test_done = 1;
}

/* Streams belong to their producers (issue 8, 7): a peer that joins as a
 * source and sends, before the real source, batches on the real source's
 * stream is refused (an ABORT to it alone, named in the log) and counts
 * for nothing afterwards, not even its end of stream; the real source's
 * batches all arrive. A hello under another name than the routing id is
 * refused, and so is anyone not on the --peers list. */
static void test_stream_ownership(void **state)
{
    (void)state;
    rthread rt;
    router_peers = "src-1,evil,map-1";
    router_start(&rt, 1, 64);
    router_peers = NULL;
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;

    void *x = raw_dealer(front_ep, "stranger"); /* not on --peers */
    ss_hello he = {.name = "stranger", .role = "source", .stage = "x",
                   .group = "source", .members = 1};
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("stranger"));
    raw_send(x, b.data, b.len);
    assert_int_equal(raw_recv(x, &h), SS_MSG_ABORT);
    zmq_close(x);

    void *f = raw_dealer(front_ep, "evil");
    he = (ss_hello){.name = "src-1", .role = "source", .stage = "source",
                    .group = "source", .members = 1};
    ss_proto_hello(&b, &he); /* says it is src-1 */
    ss_hdr_stamp(b.data, 0, ss_name_id("evil"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_ABORT);
    snprintf(he.name, sizeof he.name, "evil");
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id("evil"));
    raw_send(f, b.data, b.len);
    assert_int_equal(raw_recv(f, &h), SS_MSG_WELCOME);
    /* seqs 0..4 of src-1's stream, before src-1 */
    for (uint64_t q = 0; q < 5; q++) {
        ss_hdr d = {.kind = SS_MSG_DATA, .stream = own("src-1"), .seq = q,
                    .count = 1, .flags = SS_BF_LAST_PART,
                    .producer = ss_name_id("evil")};
        ss_proto_build(&b, &d, "\xa1x", 2);
        raw_send(f, b.data, b.len);
    }
    assert_int_equal(raw_recv(f, &h), SS_MSG_ABORT);
    ss_eos e;
    ss_eos_init(&e);
    ss_eos_add_stream(&e, own("src-1"), 5);
    snprintf(e.group, sizeof e.group, "source");
    e.members = 1;
    ss_eos_encode(&e, &b);
    ss_eos_release(&e);
    ss_hdr_stamp(b.data, 0, ss_name_id("evil"));
    raw_send(f, b.data, b.len); /* dropped: it was refused */

    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    fprod p = {.name = "src-1", .role = "source", .group = "source",
               .members = 1, .stream = own("src-1"), .n = 30, .skip = -1,
               .dup = -1};
    prod_start(&p);
    prod_join(&p);
    worker_join(&w);
    assert_int_equal(router_join(&rt), 0);
    uint32_t streams[] = {own("src-1")};
    check_exactly_once(&w, 1, streams, 1, 30);
    check_eos(&w, streams, 1, 30, 1);
    assert_int_equal(rt.st.duplicates, 0);
    zmq_close(f);
    ss_buf_release(&b);
    worker_free(&w);
    test_done = 1;
}

/* Next message on a raw DEALER other than HEARTBEAT within ms: its kind
 * (h filled), or 0 when none came. It heartbeats as `name` meanwhile (a
 * silent worker would be lost). */
static int raw_next_as(void *s, const char *name, ss_hdr *h, int ms)
{
    uint8_t buf[1024];
    int slice = hb_ms;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &slice, sizeof slice);
    for (int waited = 0; waited < ms;) {
        if (name) {
            ss_buf b = SS_BUF_INIT;
            ss_hdr hb = {.kind = SS_MSG_HEARTBEAT,
                         .producer = ss_name_id(name)};
            ss_proto_build(&b, &hb, NULL, 0);
            raw_send(s, b.data, b.len);
            ss_buf_release(&b);
        }
        int n = zmq_recv(s, buf, sizeof buf, 0);
        if (n < 0) {
            waited += slice;
            continue;
        }
        const char *why;
        assert_int_equal(ss_hdr_decode(buf, (size_t)n, h, &why), 0);
        if (h->kind != SS_MSG_HEARTBEAT)
            return h->kind;
    }
    return 0;
}

static int raw_next(void *s, ss_hdr *h, int ms)
{
    return raw_next_as(s, NULL, h, ms);
}

static void raw_hello(void *s, const char *name, const char *role,
                      const char *stage, uint32_t members)
{
    ss_buf b = SS_BUF_INIT;
    ss_hdr h;
    ss_hello he = {.credits = 64, .members = members};
    snprintf(he.name, sizeof he.name, "%s", name);
    snprintf(he.role, sizeof he.role, "%s", role);
    snprintf(he.stage, sizeof he.stage, "%s", stage);
    snprintf(he.group, sizeof he.group, "%s", stage);
    ss_proto_hello(&b, &he);
    ss_hdr_stamp(b.data, 0, ss_name_id(name));
    raw_send(s, b.data, b.len);
    assert_int_equal(raw_next(s, &h, connect_ms), SS_MSG_WELCOME);
    ss_buf_release(&b);
}

static void raw_data(void *s, const char *src, uint64_t seq)
{
    ss_buf b = SS_BUF_INIT;
    ss_hdr d = {.kind = SS_MSG_DATA, .stream = own(src), .seq = seq,
                .count = 1, .flags = SS_BF_LAST_PART,
                .producer = ss_name_id(src)};
    ss_proto_build(&b, &d, "\xa1x", 2);
    raw_send(s, b.data, b.len);
    ss_buf_release(&b);
}

static void raw_barrier(void *s, const char *src, uint32_t epoch)
{
    ss_buf b = SS_BUF_INIT;
    ss_hdr d = {.kind = SS_MSG_BARRIER, .epoch = epoch,
                .producer = ss_name_id(src)};
    ss_proto_build(&b, &d, NULL, 0);
    raw_send(s, b.data, b.len);
    ss_buf_release(&b);
}

/* Aligned checkpoint barriers (docs/PROTOCOL.md, "BARRIER"): after
 * src-1's barrier 1, its later batch waits until src-2's barrier 1 came;
 * then the worker gets one BARRIER (epoch 1, from the router) after every
 * batch sent before the barriers and before every batch sent after them.
 * A barrier of an epoch already aligned is refused (stale or replayed). */
static void test_barrier_alignment(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    void *s1 = raw_dealer(front_ep, "src-1");
    void *s2 = raw_dealer(front_ep, "src-2");
    void *w = raw_dealer(back_ep, "map-1");
    raw_hello(s1, "src-1", "source", "source", 2);
    raw_hello(w, "map-1", "worker", "map", 1);
    ss_hdr h;

    /* src-2 has not said HELLO: its group is not whole, so src-1's
     * barrier cannot be aligned without it, and its batch 1 waits */
    raw_data(s1, "src-1", 0);
    raw_barrier(s1, "src-1", 1);
    raw_data(s1, "src-1", 1);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_DATA);
    assert_int_equal(h.stream, own("src-1"));
    assert_int_equal(h.seq, 0);
    raw_hello(s2, "src-2", "source", "source", 2);
    raw_data(s2, "src-2", 0);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_DATA);
    assert_int_equal(h.stream, own("src-2"));
    assert_int_equal(h.seq, 0);
    /* src-1's batch 1 is held: nothing more comes */
    assert_int_equal(raw_next_as(w, "map-1", &h, 300), 0);

    raw_barrier(s2, "src-2", 1);
    raw_data(s2, "src-2", 1);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_BARRIER);
    assert_int_equal(h.epoch, 1);
    assert_int_equal(h.producer, ss_name_id("r1"));
    assert_int_equal(h.len, 0);
    int got1 = 0, got2 = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_DATA);
        assert_int_equal(h.seq, 1);
        got1 += h.stream == own("src-1");
        got2 += h.stream == own("src-2");
    }
    assert_int_equal(got1, 1);
    assert_int_equal(got2, 1);

    /* stale: epoch 1 again (refused, nothing forwarded); 0 is no epoch */
    raw_barrier(s2, "src-2", 1);
    raw_barrier(s1, "src-1", 0);
    /* src-1 skips to 3 and sends batch 2 (held); src-2's 2 aligns epoch
     * 2 while src-1 stays blocked with its batch held, intact; src-2's 3
     * aligns 3 and releases it */
    raw_barrier(s1, "src-1", 3);
    raw_data(s1, "src-1", 2);
    sleep_ms(150); /* the router has them (held) before src-2's 2 */
    raw_barrier(s2, "src-2", 2);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_BARRIER);
    assert_int_equal(h.epoch, 2);
    assert_int_equal(raw_next_as(w, "map-1", &h, 300), 0);
    raw_barrier(s2, "src-2", 3);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_BARRIER);
    assert_int_equal(h.epoch, 3);
    assert_int_equal(raw_next_as(w, "map-1", &h, connect_ms), SS_MSG_DATA);
    assert_int_equal(h.stream, own("src-1"));
    assert_int_equal(h.seq, 2);
    assert_int_equal(raw_next_as(w, "map-1", &h, 200), 0);

    ss_router_stop(rt.r);
    assert_int_equal(router_join(&rt), SS_EINTR);
    assert_int_equal(rt.st.barriers_in, 5);
    assert_int_equal(rt.st.barriers_out, 3);
    assert_int_equal(rt.st.epoch, 3);
    assert_int_equal(rt.st.rejected, 2);
    assert_int_equal(rt.st.in_batches, 5);
    zmq_close(s1);
    zmq_close(s2);
    zmq_close(w);
    test_done = 1;
}

/* A router of another wire version (a raw ROUTER answering in version
 * 1): the peer fails at once, naming both versions. */
static void *old_router_main(void *arg)
{
    void *r = arg;
    uint8_t id[256], buf[2048];
    int idn = zmq_recv(r, id, sizeof id, 0);
    int n = zmq_recv(r, buf, sizeof buf, 0);
    if (idn <= 0 || n < SS_HDR_SIZE)
        return NULL;
    uint8_t old[48 + 4];
    memset(old, 0, sizeof old);
    memcpy(old, "SSB1", 4);
    old[4] = 1; /* a version 1 ABORT whose reason we cannot parse anyway */
    old[5] = SS_MSG_ABORT;
    ss_put_u32(old + 28, 4);
    zmq_send(r, id, (size_t)idn, ZMQ_SNDMORE);
    zmq_send(r, old, sizeof old, 0);
    return NULL;
}

static void test_peer_other_version(void **state)
{
    (void)state;
    void *r = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(r, front_ep), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, old_router_main, r), 0);
    char err[256];
    ss_link *l = NULL;
    ss_link_opts o = {.endpoint = front_ep, .name = "map-1",
                      .connect_timeout_ms = 3000};
    assert_int_equal(ss_link_new(zctx, &o, &l, err, sizeof err), SS_EPROTO);
    assert_null(l);
    print_message("peer: %s\n", err);
    assert_non_null(strstr(err, "speaks wire version 1, 'map-1' speaks 2"));
    pthread_join(t, NULL);
    zmq_close(r);
    test_done = 1;
}

/* No router at the endpoint: a clear timeout, for both ends. */
static void test_connect_timeout(void **state)
{
    (void)state;
    char err[256];
    ss_link *l = (ss_link *)&err; /* must be reset to NULL */
    ss_link_opts o = {.endpoint = "tcp://127.0.0.1:1", .name = "src-1",
                      .connect_timeout_ms = 200};
    assert_int_equal(ss_link_new(zctx, &o, &l, err, sizeof err),
                     SS_ETIMEOUT);
    assert_null(l);
    assert_string_equal(err, "cannot reach router at tcp://127.0.0.1:1: no "
                             "answer in 200 ms");
    ss_inlet *in = (ss_inlet *)&err;
    ss_inlet_opts io = {.endpoint = "inproc://nobody", .name = "map-1",
                        .connect_timeout_ms = 100};
    assert_int_equal(ss_inlet_new(zctx, &io, &in, err, sizeof err),
                     SS_ETIMEOUT);
    assert_null(in);
    assert_string_equal(err, "cannot reach router at inproc://nobody: no "
                             "answer in 100 ms");
    ss_link_opts bad = {.endpoint = "tcp://127.0.0.1:1"};
    assert_int_equal(ss_link_new(zctx, &bad, &l, err, sizeof err),
                     SS_EINVAL);
    ss_link_destroy(&l);
    ss_link_destroy(NULL);
    ss_inlet_destroy(NULL);
    test_done = 1;
}

/* A port in use: the router says which and why. */
static void test_bind_error(void **state)
{
    (void)state;
    void *s = zmq_socket(zctx, ZMQ_PULL);
    assert_int_equal(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t n = sizeof ep;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &n);
    ss_router_opts o = {.from = ep, .to = "inproc://to"};
    ss_router *r = NULL;
    char err[256], want[256];
    assert_int_equal(ss_router_new(zctx, &o, &r, err, sizeof err), SS_EIO);
    assert_null(r);
    snprintf(want, sizeof want, "cannot bind %s: Address already in use",
             ep);
    assert_string_equal(err, want);
    zmq_close(s);
    test_done = 1;
}

/* ss_router_stop aborts a waiting router and tells its peers. */
/* ss_transport_wait_drained: a socket whose last call was a receive that
 * found nothing is not asked for its events again, yet a message that
 * arrives afterwards still wakes the wait (no lost wake-up); a socket
 * passed as not drained, after a send that may have consumed the
 * wake-up, is asked and found readable. */
static void test_wait_drained(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *rt = zmq_socket(ctx, ZMQ_ROUTER);
    void *dl = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(rt, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dl, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dl, ZMQ_ROUTING_ID, "d", 1);
    assert_int_equal(zmq_bind(rt, "inproc://wait-drained"), 0);
    assert_int_equal(zmq_connect(dl, "inproc://wait-drained"), 0);
    assert_int_equal(zmq_send(dl, "hi", 2, 0), 2);
    char buf[16];
    assert_true(zmq_recv(rt, buf, sizeof buf, 0) > 0); /* the id */
    assert_int_equal(zmq_recv(rt, buf, sizeof buf, 0), 2);
    for (int round = 0; round < 20; round++) {
        int drained = 0;
        if (zmq_recv(dl, buf, sizeof buf, ZMQ_DONTWAIT) < 0)
            drained = errno == EAGAIN;
        assert_true(drained);
        /* nothing there: a look finds nothing */
        assert_int_equal(ss_transport_wait_drained(&dl, &drained, 1, 0),
                         0);
        assert_int_equal(zmq_send(rt, "d", 1, ZMQ_SNDMORE), 1);
        assert_int_equal(zmq_send(rt, "m", 1, 0), 1);
        if (round % 2) {
            /* a send on the socket may take the wake-up: not drained */
            usleep(2000);
            assert_int_equal(zmq_send(dl, "x", 1, 0), 1);
            drained = 0;
        }
        uint64_t t0 = ss_now_ms();
        int rc = 0;
        for (int i = 0; i < 10 && rc == 0; i++)
            rc = ss_transport_wait_drained(&dl, &drained, 1, 500);
        assert_int_equal(rc, 1);
        assert_true(ss_now_ms() - t0 < 4000);
        assert_int_equal(zmq_recv(dl, buf, sizeof buf, ZMQ_DONTWAIT), 1);
        if (round % 2) { /* the router takes the x */
            assert_true(zmq_recv(rt, buf, sizeof buf, 0) > 0);
            assert_int_equal(zmq_recv(rt, buf, sizeof buf, 0), 1);
        }
    }
    zmq_close(dl);
    zmq_close(rt);
    zmq_ctx_term(ctx);
}

static void test_stop(void **state)
{
    (void)state;
    rthread rt;
    router_start(&rt, 1, 64);
    fworker w = {.name = "map-1", .credits = 4};
    worker_start(&w);
    sleep_ms(30);
    ss_router_stop(rt.r);
    worker_join(&w);
    assert_int_equal(router_join(&rt), SS_EINTR);
    assert_string_equal(rt.err, "router r1 was stopped by a signal");
    assert_int_equal(w.rc, SS_EPEER);
    assert_string_equal(w.err, rt.err);
    worker_free(&w);
    test_done = 1;
}

int main(void)
{
    ss_log_init("test_router");
    const char *slow = getenv("SS_TEST_SLOW");
    if (slow && strcmp(slow, "1") == 0) {
        hb_ms = 200;
        peer_timeout_ms = 3000;
        idle_ms = 30000;
        connect_ms = 10000;
    }
    if (!getenv("LOG_LEVEL"))
        ss_log_level_current = SS_LOG_ERROR + 1; /* quiet unless asked */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto),
        cmocka_unit_test(test_wait_drained),
        cmocka_unit_test_setup_teardown(test_one_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_barrier_alignment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_three_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_joiner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_vanishes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keyed_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_producer_not_in_roster,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stateless_producer_vanishes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_vanishes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stateful_producer_vanishes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaver_last_credit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_received_held, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_split_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_seq_aborts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stateful_death_aborts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_checks, setup, teardown),
        cmocka_unit_test(test_proto_limits),
        cmocka_unit_test_setup_teardown(test_max_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_hoarder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_data_answered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_max_frame_told, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bytes_default, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_link_window_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_ownership, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_worker_lost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_other_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bind_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
