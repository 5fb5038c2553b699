/*
 * ss_node.c - runs a stage script as a pipeline component (ss_node.h).
 *
 *   inlet (credits) --DATA--> stage --encoded events--> link (window)
 *        ^                                                  |
 *        +------------- CREDIT when RECEIVED <--------------+
 *
 * Every input batch yields exactly one output batch with the same lineage
 * (possibly empty), so the next router can check completeness and drop
 * the duplicate of a retried batch. What a stateful chain emits at
 * completion goes out under the node's own stream id, flagged FINAL.
 */
#include "node/ss_node.h"
#include "core/ss_buf.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_keyservice.h"
#include "crypto/ss_snapshot.h"
#include "wire/ss_resume.h"
#include "net/ss_keyserver.h"
#include "enclave/ss_enclave.h"
#include "lua/ss_chain.h"
#include "lua/ss_stage.h"
#include "net/ss_inlet.h"
#include "net/ss_link.h"
#include "net/ss_peer.h"
#include "net/ss_proto.h"
#include "net/ss_transport.h"
#include "net/ss_stats_reporter.h"
#include "node/ss_integrity.h"
#include "node/ss_latlog.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_partition.h"

#include <errno.h>
#include <fcntl.h>
#include "lua/ss_lua_api.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define NSLOTS 256

typedef struct slot {
    int used;
    ss_hdr hdr;       /* the input batch, to acknowledge */
    unsigned pending; /* output messages not yet RECEIVED */
} slot;

struct ss_node {
    const ss_node_opts *o;
    volatile sig_atomic_t stop; /* ss_node_stop was called */
    volatile sig_atomic_t leave; /* ss_node_leave was called */
    int leave_said;              /* ... and a refusal was said */
    void *zctx;
    ss_stage *stage; /* the stage, or the chain's first (borrowed) */
    ss_chain *chain; /* chained stages (opts chain), else NULL */
    ss_link *link;
    ss_inlet *inlet;
    ss_stats_reporter *stats;
    FILE *rejects;
    ss_stage_out out;
    ss_buf msg;
    ss_psplit split; /* plain worker: its output cut for the next stage */
    slot slots[NSLOTS];
    unsigned busy;
    uint32_t own_stream;
    uint64_t own_seq;
    uint64_t batches_in, batches_out, bytes_in;
    uint64_t rejects_logged;
    uint64_t last_tick_ms; /* node_tick's last look at the clock */
    uint64_t last_stats_ms;
    uint32_t epoch; /* the last checkpoint barrier passed on (0: none) */
    int snap_warned; /* a snapshot failed: said once */
    const char *to;
    /* security encrypted / enclave */
    ss_enclave *enc;        /* worker: where the stage runs (none/sandbox) */
    ss_enclave_result res;
    ss_stage_counts totals; /* worker: the enclave's deltas, summed */
    ss_stage_counts ctotals[SS_CHAIN_MAX]; /* the same for each stage
                                              chained in the enclave */
    uint64_t enclave_calls, enclave_ns;
    ss_key *key;      /* sink: opens its input; encrypted worker: rejects */
    ss_buf pt;        /* sink: the opened payload */
    ss_integrity *ig; /* sink: end-to-end check of the stream */
    ss_curve curve;   /* CurveZMQ client keys (outside plain mode) */
    int have_curve;
    int ran;
    ss_keyserver_client ksc; /* enclave worker: how to ask the key service */
    ss_latlog *lat; /* sink, SS_LATENCY_DIR: when each batch arrived */
    char err[512];
};
typedef struct ss_node node;

/* See ss_node.h. */
void ss_node_opts_default(ss_node_opts *o)
{
    memset(o, 0, sizeof *o);
    o->role = "worker";
    o->security = "plain";
    o->batch_size = SS_BATCH_DEFAULT_SIZE;
    o->mem_limit = 256u << 20;
    o->credits = 0; /* from batch_size: ss_node_credits */
    o->connect_timeout_ms = SS_PEER_CONNECT_TIMEOUT_MS;
    o->heartbeat_ms = 500;
}

/* See ss_node.h. */
unsigned ss_node_credits(const ss_node_opts *o)
{
    return o->credits ? o->credits
                      : ss_batch_credits(o->batch_size, SS_NODE_CREDITS_MAX);
}

/* FNV-1a of the name, top bit set: the stream id of what this node emits
 * on its own (a reduce's result), distinct from source stream ids. */
static uint32_t own_stream_id(const char *name)
{
    return ss_name_id(name) | 0x80000000u;
}

/* Whether the stage keeps state across batches (its loss cannot be
 * retried, and what it drops was folded into its results), wherever it
 * runs: in this process or in an enclave. */
static int node_stateful(const node *n)
{
    return n->enc     ? ss_enclave_stateful(n->enc)
           : n->chain ? ss_chain_stateful(n->chain)
           : n->stage ? ss_stage_stateful(n->stage)
                      : 0;
}

/* The name stage k of the chain reports under: the worker's own for the
 * first, else STAGE-N with N this worker's index (see ss_node.h); its
 * stage's name into stage. */
static void chained_name(const node *n, size_t k, char *buf, size_t len,
                         char *stage, size_t slen)
{
    if (k == 0) {
        snprintf(buf, len, "%s", n->o->name);
        return;
    }
    const char *spec = n->o->chain[k - 1];
    const char *dash = strrchr(n->o->name, '-');
    snprintf(stage, slen, "%.*s", (int)strcspn(spec, "="), spec);
    snprintf(buf, len, "%s-%s", stage, dash ? dash + 1 : "1");
}

/* One STATS record for each chained stage after the first, under its
 * own name (chained_name) and stage, without the process's pid, CPU and
 * memory (those are the first stage's record's): the books see one
 * component per stage, as without chaining (docs/PIPELINE.md). Its
 * bytes and batches in are what the stage before it handed it. */
/* Copies a stage's event counters into a STATS record. */
static void put_counts(ss_stats *st, const ss_stage_counts *t)
{
    st->in = t->in;
    st->out = t->out;
    st->out_bytes = t->out_bytes;
    st->passed = t->passed;
    st->dropped = t->dropped;
    st->rejected = t->rejected;
}

/* Stage k's counters and whether it keeps state, wherever it runs: in
 * this process (n->chain) or in the enclave (summed from its results). */
static const ss_stage_counts *chained_totals(const node *n, size_t k,
                                             int *stateful)
{
    if (n->enc) {
        *stateful = ss_enclave_stage_stateful(n->enc, k);
        return k ? &n->ctotals[k] : &n->totals;
    }
    ss_stage *sk = ss_chain_stage(n->chain, k);
    *stateful = ss_stage_stateful(sk);
    return ss_stage_totals(sk);
}

static void report_chained(node *n, int final, uint32_t epoch)
{
    for (size_t k = 1; k <= (size_t)n->o->nchain; k++) {
        int stateful, ignored;
        const ss_stage_counts *t = chained_totals(n, k, &stateful);
        const ss_stage_counts *prev = chained_totals(n, k - 1, &ignored);
        char name[2 * SS_STATS_NAME_MAX], stage[SS_STATS_NAME_MAX];
        chained_name(n, k, name, sizeof name, stage, sizeof stage);
        ss_stats st;
        ss_stats_init(&st);
        ss_stats_set_names(&st, name, n->o->role, stage);
        put_counts(&st, t);
        st.in_bytes = prev->out_bytes;
        st.batches_in = n->batches_in;
        st.batches_out = n->batches_out;
        st.final = final;
        st.stateful = stateful;
        if (epoch) /* its counters at checkpoint barrier `epoch` */
            ss_stats_report_barrier(n->stats, &st, epoch);
        else
            ss_stats_report(n->stats, &st);
    }
}

/* This component's STATS record now. */
static void node_stats(node *n, int final, ss_stats *st);

static void report(node *n, int final)
{
    if (!n->stats)
        return;
    ss_stats st;
    node_stats(n, final, &st);
    ss_stats_report(n->stats, &st);
    if (n->o->nchain && (n->chain || n->enc))
        report_chained(n, final, 0);
    n->last_stats_ms = ss_now_ms();
}

static void node_stats(node *n, int final, ss_stats *stp)
{
    const ss_stage_counts *t = n->enc     ? &n->totals
                               : n->stage ? ss_stage_totals(n->stage)
                                          : NULL;
    ss_stats st;
    ss_stats_init(&st);
    ss_stats_set_names(&st, n->o->name, n->o->role, n->o->stage);
    ss_stats_fill_self(&st);
    if (t)
        put_counts(&st, t);
    st.in_bytes = n->bytes_in;
    st.batches_in = n->batches_in;
    st.batches_out = n->batches_out;
    st.credits = ss_node_credits(n->o);
    st.queue = n->busy;
    st.enclave_calls = n->enclave_calls;
    st.enclave_ns = n->enclave_ns;
    st.final = final;
    if (n->o->nchain && (n->chain || n->enc))
        (void)chained_totals(n, 0, &st.stateful);
    else
        st.stateful = node_stateful(n);
    *stp = st;
}

static void maybe_report(node *n)
{
    if (ss_now_ms() - n->last_stats_ms >= 1000)
        report(n, 0);
}

/* Writes the rejects of out to the rejects file and logs the first few. */
static void flush_rejects(node *n, ss_stage_out *out)
{
    if (!out->nrejects)
        return;
    if (n->rejects) {
        fwrite(out->rejects.data, 1, out->rejects.len, n->rejects);
        fflush(n->rejects);
    }
    /* log the first 10 in full, then one line per LOG_RATE */
    const char *p = out->rejects.data, *end = p + out->rejects.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        n->rejects_logged++;
        unsigned rate = ss_log_rate ? (unsigned)ss_log_rate : 100;
        if (n->rejects_logged <= 10 || n->rejects_logged % rate == 0)
            ss_warn("rejected event: %.*s", (int)(len > 600 ? 600 : len),
                    p);
        if (n->rejects_logged == 10)
            ss_warn("more rejected events are not shown here: one in "
                    "%u is (LOG_RATE); all of them are in the rejects "
                    "file", rate);
        p += len + 1;
    }
    ss_buf_reset(&out->rejects);
    out->nrejects = 0;
}

static void on_received(uint64_t tag, void *arg)
{
    node *n = arg;
    if (tag >= NSLOTS || !n->slots[tag].used)
        return;
    slot *s = &n->slots[tag];
    if (s->pending && --s->pending == 0) {
        if (n->inlet)
            ss_inlet_ack(n->inlet, &s->hdr);
        s->used = 0;
        n->busy--;
    }
}

/* Builds one DATA message in n->msg from the events of out. */
static void build_msg(node *n, const ss_hdr *lineage, uint16_t flags,
                      const ss_stage_out *out)
{
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = flags;
    h.stream = lineage->stream;
    h.seq = lineage->seq;
    h.part = lineage->part;
    h.first_row = lineage->first_row;
    h.aux = lineage->aux; /* the end-of-stream mark (SS_AUX_END) */
    h.run = n->o->run;
    h.producer = ss_name_id(n->o->name);
    h.count = out->count;
    h.len = (uint32_t)out->events.len;
    ss_buf_reset(&n->msg);
    ss_buf_grow(&n->msg, SS_HDR_SIZE + out->events.len);
    ss_hdr_encode(&h, (uint8_t *)n->msg.data);
    n->msg.len = SS_HDR_SIZE;
    if (out->events.len)
        ss_buf_put(&n->msg, out->events.data, out->events.len);
}

static int open_link(node *n)
{
    if (n->link)
        return 0;
    if (!n->to && n->stage)
        n->to = ss_stage_to(n->stage); /* the script's own address */
    if (!n->to && n->enc)
        n->to = ss_enclave_to(n->enc);
    if (!n->to || !*n->to) {
        snprintf(n->err, sizeof n->err,
                 "the script emits to a socket but no address was given");
        return SS_EINVAL;
    }
    ss_link_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.endpoint = n->to;
    lo.name = n->o->name;
    lo.role = strcmp(n->o->role, "lua") == 0 ? "source" : "worker";
    lo.stage = n->o->stage ? n->o->stage : n->o->name;
    lo.group = lo.stage;
    lo.members = 1;
    lo.window = 16;
    /* each output the router holds unconfirmed keeps its input's credit */
    lo.hold = strcmp(lo.role, "worker") == 0
                  ? ss_node_credits(n->o)
                  : 0;
    lo.stateful = node_stateful(n);
    lo.connect_timeout_ms = n->o->connect_timeout_ms;
    lo.curve = n->have_curve ? &n->curve : NULL;
    lo.run = n->o->run;
    int rc = ss_link_new(n->zctx, &lo, &n->link, n->err, sizeof n->err);
    if (rc)
        return rc;
    ss_link_on_received(n->link, on_received, n);
    return 0;
}

/* Flush callback for scripts that emit outside a batch (a Lua source):
 * sends what was collected under the node's own stream. */
static int free_flush(void *arg, ss_stage_out *out, int final)
{
    node *n = arg;
    int rc = open_link(n);
    if (rc) {
        ss_error("%s", n->err);
        return rc;
    }
    if (out->count) {
        ss_hdr lin;
        memset(&lin, 0, sizeof lin);
        lin.stream = n->own_stream;
        lin.seq = n->own_seq++;
        build_msg(n, &lin, SS_BF_LAST_PART, out);
        rc = ss_link_send(n->link, n->msg.data, n->msg.len, UINT64_MAX);
        if (rc)
            return rc;
        n->batches_out++;
    }
    flush_rejects(n, out);
    if (final) {
        ss_eos eos;
        ss_eos_init(&eos);
        ss_eos_add_stream(&eos, n->own_stream, n->own_seq);
        snprintf(eos.group, sizeof eos.group, "%s",
                 n->o->stage ? n->o->stage : n->o->name);
        eos.members = 1;
        rc = ss_link_send_eos(n->link, &eos, 60000);
        ss_eos_release(&eos);
    }
    return rc;
}

/* Sends the output of input batch h: msgs[0..len) holds one or more
 * DATA messages back to back (several when the output was cut by key
 * group or broadcast, ss_psplit_cut). They share a slot: h is
 * acknowledged upstream once the next router confirmed every one of them
 * (on_received). Each message is checked before anything is sent (an
 * enclave's output is not trusted to be well formed). */
static int count_msgs(node *n, const ss_hdr *h, const void *msgs,
                      size_t len, unsigned *count)
{
    const uint8_t *m = msgs;
    unsigned k = 0;
    for (size_t off = 0; off < len; k++) {
        ss_hdr oh;
        const char *why = "truncated";
        size_t one = len - off >= SS_HDR_SIZE
                         ? SS_HDR_SIZE + (size_t)ss_get_u32(m + off + 28)
                         : 0;
        if (!one || one > len - off ||
            ss_hdr_decode(m + off, one, &oh, &why) != 0) {
            snprintf(n->err, sizeof n->err, "the output of stream %u batch "
                     "%llu is malformed: %s", h->stream,
                     (unsigned long long)h->seq, why);
            return SS_EPROTO;
        }
        off += one;
    }
    if (!k) {
        snprintf(n->err, sizeof n->err, "stream %u batch %llu has no output",
                 h->stream, (unsigned long long)h->seq);
        return SS_EPROTO;
    }
    *count = k;
    return 0;
}

/* Sends the checked messages msgs[0..len) (count_msgs) under tag. */
static int send_msgs(node *n, const void *msgs, size_t len, uint64_t tag)
{
    const uint8_t *m = msgs;
    for (size_t off = 0; off < len;) {
        size_t one = SS_HDR_SIZE + (size_t)ss_get_u32(m + off + 28);
        int rc = ss_link_send(n->link, m + off, one, tag);
        if (rc) {
            snprintf(n->err, sizeof n->err, "cannot send to %s: %s", n->to,
                     rc == SS_EPEER ? ss_link_error(n->link)
                                    : ss_strerror(rc));
            return rc;
        }
        n->batches_out++;
        off += one;
    }
    return 0;
}

static int send_output(node *n, const ss_hdr *h, const void *msgs,
                       size_t len)
{
    unsigned k;
    int rc = count_msgs(n, h, msgs, len, &k);
    if (rc)
        return rc;
    int s = 0;
    while (s < NSLOTS && n->slots[s].used)
        s++;
    if (s == NSLOTS) {
        snprintf(n->err, sizeof n->err, "too many batches in flight");
        return SS_EPROTO;
    }
    n->slots[s].used = 1;
    n->slots[s].hdr = *h;
    n->slots[s].pending = k;
    n->busy++;
    return send_msgs(n, msgs, len, (uint64_t)s);
}

/* Writes the REJECT message of an enclave call to the rejects file: its
 * lines as they are when in clear, opened with the key in encrypted mode;
 * in enclave mode the host cannot open them (reasons may quote data), so
 * it writes one line with the lineage, the count and the sealed reasons
 * for the owner (base64 of the REJECT message). */
static void enclave_rejects(node *n)
{
    ss_enclave_result *r = &n->res;
    ss_hdr rh;
    const char *why;
    if (!r->rejects.len || ss_hdr_decode(r->rejects.data, r->rejects.len,
                                         &rh, &why) != 0)
        return;
    ss_stage_out_reset(&n->out);
    ss_buf *b = &n->out.rejects;
    if (!(rh.flags & SS_BF_ENCRYPTED)) {
        ss_buf_append(b, r->rejects.data + SS_HDR_SIZE, rh.len);
    } else if (n->key) {
        ss_hdr ph;
        if (ss_aead_open(n->key, r->rejects.data, r->rejects.len, &ph, b))
            ss_buf_printf(b, "{\"stage\":\"%s\",\"worker\":\"%s\","
                          "\"stream\":%u,\"seq\":%llu,\"part\":%u,"
                          "\"events\":%u,\"error\":\"sealed rejects do "
                          "not authenticate\"}\n", n->o->stage, n->o->name,
                          rh.stream, (unsigned long long)rh.seq, rh.part,
                          rh.count);
    } else {
        size_t blen = sodium_base64_ENCODED_LEN(
            r->rejects.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(blen);
        ss_buf_printf(b, "{\"stage\":\"%s\",\"worker\":\"%s\","
                      "\"stream\":%u,\"seq\":%llu,\"part\":%u,"
                      "\"row\":%llu,\"events\":%u,\"error\":\"%s\"",
                      n->o->stage, n->o->name, rh.stream,
                      (unsigned long long)rh.seq, rh.part,
                      (unsigned long long)rh.first_row, rh.count,
                      rh.count ? "rejected inside the enclave (reasons "
                                 "sealed for the owner)"
                               : "the stage failed inside the enclave "
                                 "(reason sealed for the owner)");
        if (b64) {
            sodium_bin2base64(b64, blen,
                              (const unsigned char *)r->rejects.data,
                              r->rejects.len,
                              sodium_base64_VARIANT_ORIGINAL);
            ss_buf_printf(b, ",\"sealed\":\"%s\"", b64);
            free(b64);
        }
        ss_buf_append(b, "}\n", 2);
    }
    /* a failed completion has no events but one line to write */
    n->out.nrejects = r->nrejects ? r->nrejects : 1;
    flush_rejects(n, &n->out);
}

/* The enclave died during a call on batch h (message msg[0..len)): a
 * stateful stage lost its state and the run fails; a stateless one gets
 * a fresh enclave (new attestation) which takes the batch again. If that
 * one dies on it too, the batch is poison: a third enclave rejects all
 * its events (counted, and an empty batch keeps the stream complete)
 * and the run goes on. */
static int enclave_died(node *n, const ss_hdr *h, const char *msg,
                        size_t len)
{
    char why[512];
    snprintf(why, sizeof why, "%s", n->err);
    if (ss_enclave_stateful(n->enc)) {
        snprintf(n->err, sizeof n->err, "%.400s (on stream %u batch %llu); "
                 "stage '%s' keeps state, which is lost with it: the run "
                 "cannot go on", why, h->stream,
                 (unsigned long long)h->seq, n->o->stage);
        return SS_EPEER;
    }
    ss_error("%s (on stream %u batch %llu); stage '%s' is stateless: "
             "restarting the enclave", why, h->stream,
             (unsigned long long)h->seq, n->o->stage);
    int rc = ss_enclave_restart(n->enc, n->err, sizeof n->err);
    if (rc)
        return rc;
    rc = ss_enclave_call(n->enc, msg, len, &n->res, n->err, sizeof n->err);
    n->enclave_calls++;
    if (rc != SS_EPEER)
        return rc;
    ss_error("%s again (on stream %u batch %llu): rejecting the batch's %u "
             "events and restarting the enclave",
             n->err, h->stream, (unsigned long long)h->seq, h->count);
    rc = ss_enclave_restart(n->enc, n->err, sizeof n->err);
    if (rc)
        return rc;
    rc = ss_enclave_reject(n->enc, msg, len, &n->res, n->err,
                           sizeof n->err);
    n->enclave_calls++;
    return rc;
}

/* Adds an enclave call's counts: the first stage's, and each chained
 * stage's (n->res.nstages is checked against what was asked at start). */
static void add_enclave_counts(node *n)
{
    ss_stage_counts_add(&n->totals, &n->res.delta);
    for (size_t k = 1; k < n->res.nstages && k < SS_CHAIN_MAX; k++)
        ss_stage_counts_add(&n->ctotals[k], &n->res.stages[k]);
}

/* Encrypted / enclave worker: the (sealed) batch goes through the
 * enclave as it is; its sealed output goes on as it is. */
static int handle_data_enclave(node *n, const ss_hdr *h, const char *msg,
                               size_t len)
{
    n->batches_in++;
    n->bytes_in += h->len;
    uint64_t t0 = ss_now_ns();
    int rc = ss_enclave_call(n->enc, msg, len, &n->res, n->err,
                             sizeof n->err);
    n->enclave_calls++;
    if (rc == SS_EPEER)
        rc = enclave_died(n, h, msg, len);
    n->enclave_ns += ss_now_ns() - t0;
    if (rc) {
        if (rc != SS_EPEER) {
            char why[512];
            snprintf(why, sizeof why, "%s", n->err);
            snprintf(n->err, sizeof n->err, "stream %u batch %llu: %.400s",
                     h->stream, (unsigned long long)h->seq, why);
        }
        return rc;
    }
    add_enclave_counts(n);
    enclave_rejects(n);
    return send_output(n, h, n->res.msg.data, n->res.msg.len);
}

/* Sink in encrypted / enclave mode: authenticates and opens a batch into
 * n->pt (*ph its plaintext header), and records it for the end-to-end
 * check. */
static int open_input(node *n, const ss_hdr *h, const char *payload,
                      ss_hdr *ph)
{
    if (!(h->flags & SS_BF_ENCRYPTED)) {
        snprintf(n->err, sizeof n->err, "integrity: stream %u batch %llu "
                 "arrived in clear: refusing plaintext in %s mode",
                 h->stream, (unsigned long long)h->seq, n->o->security);
        return SS_EINTEGRITY;
    }
    ss_buf_reset(&n->pt);
    int rc = ss_aead_open(n->key, payload - SS_HDR_SIZE,
                          SS_HDR_SIZE + (size_t)h->len, ph, &n->pt);
    if (rc == SS_ECRYPTO) {
        snprintf(n->err, sizeof n->err, "integrity: stream %u batch %llu "
                 "does not authenticate (altered on the way, or sealed "
                 "with another key)", h->stream,
                 (unsigned long long)h->seq);
        return SS_EINTEGRITY;
    }
    if (rc)
        return rc;
    return ss_integrity_batch(n->ig, ph, n->err, sizeof n->err);
}

/* Sends the output of input batch h (in n->out), cut for the next stage
 * when it is partitioned or broadcast (ss_psplit_cut), as one or more
 * messages built back to back in n->msg. */
static int cut(node *n, const ss_hdr *h)
{
    ss_hdr base = *h;
    base.run = n->o->run;
    base.producer = ss_name_id(n->o->name);
    const char *why = "";
    int rc = ss_psplit_cut(&n->split, &base, n->out.events.data,
                           n->out.events.len, n->out.count,
                           n->o->partition_by, n->o->broadcast, &why);
    if (rc) {
        snprintf(n->err, sizeof n->err, "stream %u batch %llu: %s",
                 h->stream, (unsigned long long)h->seq, why);
        return rc;
    }
    ss_buf_reset(&n->msg);
    for (size_t i = 0; i < n->split.npc; i++) {
        const ss_piece *pc = &n->split.pc[i];
        size_t at = n->msg.len;
        if (ss_buf_grow(&n->msg, SS_HDR_SIZE + pc->n))
            return SS_ENOMEM;
        ss_hdr_encode(&pc->h, (uint8_t *)n->msg.data + at);
        n->msg.len = at + SS_HDR_SIZE;
        if (pc->n)
            ss_buf_put(&n->msg, pc->p, pc->n);
    }
    return 0;
}

static int send_cut(node *n, const ss_hdr *h)
{
    int rc = cut(n, h);
    return rc ? rc : send_output(n, h, n->msg.data, n->msg.len);
}

/* Processes one DATA batch and sends its output. */
static int handle_data(node *n, const ss_hdr *h, const char *payload)
{
    /* a batch of another run is a replay (in encrypted and enclave modes
     * the run id is authenticated: the enclave or open_input check it
     * again after opening); a sealed input record at rest has none */
    if (h->run != n->o->run && !ss_hdr_at_rest(h)) {
        snprintf(n->err, sizeof n->err, "integrity: stream %u batch %llu "
                 "belongs to run %016llx, not to this run %016llx: "
                 "replayed from another run",
                 h->stream, (unsigned long long)h->seq,
                 (unsigned long long)h->run, (unsigned long long)n->o->run);
        return SS_EINTEGRITY;
    }
    if (n->enc)
        return handle_data_enclave(n, h, payload - SS_HDR_SIZE,
                                   SS_HDR_SIZE + (size_t)h->len);
    ss_hdr ph;
    if (n->ig) {
        int rc = open_input(n, h, payload, &ph);
        if (rc)
            return rc;
        h = &ph;
        payload = n->pt.data ? n->pt.data : "";
    }
    n->batches_in++;
    n->bytes_in += h->len;
    ss_stage_out_reset(&n->out);
    int rc = n->chain
                 ? ss_chain_process(n->chain, h, payload, h->len, &n->out)
                 : ss_stage_process(n->stage, h, payload, h->len, &n->out);
    if (rc) {
        snprintf(n->err, sizeof n->err, "stage failed: %s",
                 ss_strerror(rc));
        return rc;
    }
    flush_rejects(n, &n->out);
    if (!n->link) { /* a sink: done with it */
        ss_latlog_batch(n->lat, h->stream, h->seq);
        if (n->inlet)
            ss_inlet_ack(n->inlet, h);
        return 0;
    }
    return send_cut(n, h);
}

/* Whether a tick (node_tick, enclave_tick) has work: a worker with an
 * inlet, at most every 50 ms; notes the time when it has. */
static int tick_due(node *n)
{
    if (!n->inlet)
        return 0;
    uint64_t now = ss_now_ms();
    if (now - n->last_tick_ms < 50)
        return 0;
    n->last_tick_ms = now;
    return 1;
}

/* Runs every few thousand Lua instructions of a long event: the router
 * must keep hearing from this worker while its script computes, however
 * long one batch takes (a loaded machine, a slow script). */
static void node_tick(void *arg)
{
    node *n = arg;
    if (tick_due(n))
        ss_inlet_heartbeat(n->inlet); /* sends only when one is due */
}

/* The same while an encrypted or enclave worker's stage runs a long
 * request behind ss_enclave (ss_enclave_set_tick: from the sandbox
 * host's wait on the enclave channel, or from the in-process stage's
 * hook): besides the heartbeats, the confirmations of earlier outputs
 * are taken (RECEIVED, so their inputs are acknowledged and the router
 * sees progress, not a stall) and the counters reported. A failure
 * found here is sticky in the link or the inlet: the loop reports it
 * after the request. */
static void enclave_tick(void *arg)
{
    node *n = arg;
    if (!tick_due(n))
        return;
    if (n->link)
        (void)ss_link_service(n->link, 0);
    ss_inlet_heartbeat(n->inlet); /* sends only when one is due */
    maybe_report(n);
}

/* Says in n->err why the output link failed: the link's own reason
 * (which names the router and its endpoint) when it has one. */
static void link_failed(node *n, int rc)
{
    const char *why = ss_link_error(n->link);
    snprintf(n->err, sizeof n->err, "output link failed: %s",
             why && *why ? why : ss_strerror(rc));
}

/* Writes data[0..n) to path atomically (a temporary file beside it,
 * synced, renamed). The folder may be writable by another uid (the run
 * folder's ckpt/ is the worker hosts'): the temporary file is made anew,
 * never opened through a link planted there (a sink running as root
 * wrote through one into any file). Returns 0 or -1 (errno). */
static int write_atomic(const char *path, const void *data, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0)
        return -1;
    if (ss_write_all(fd, data, n) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* At checkpoint barrier epoch: the sealed snapshot of a stateful
 * worker's state (every chained stage's), or of the sink's, into
 * <checkpoint_dir>/<name>-e<epoch>.snap (crypto/ss_snapshot.h: bound to
 * the run, epoch, stage and worker; sealed with the data key where it
 * runs, inside the enclave in enclave mode; the plain form in plain
 * mode). Returns 0 when written or when there is nothing to write, -1
 * when it failed (said once: the checkpoint cannot complete without it,
 * the run goes on). */
static int snapshot(node *n, uint32_t epoch)
{
    int sink = strcmp(n->o->role, "sink") == 0;
    if (!n->o->checkpoint_dir || (!sink && !node_stateful(n)))
        return 0;
    ss_buf blob = SS_BUF_INIT, state = SS_BUF_INIT;
    char err[512] = "";
    int rc;
    if (n->enc) {
        rc = ss_enclave_snapshot(n->enc, epoch, &blob, err, sizeof err);
    } else {
        rc = n->chain   ? ss_chain_snapshot(n->chain, &state, err, sizeof err)
             : n->stage ? ss_stage_snapshot(n->stage, &state, err, sizeof err)
                        : SS_EINVAL;
        if (!rc) {
            ss_snapshot_id id = {n->o->run, epoch, n->o->stage, n->o->name};
            rc = ss_snapshot_seal(n->key, &id, state.data, state.len, &blob,
                                  err, sizeof err);
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-e%u.snap", n->o->checkpoint_dir,
             n->o->name, epoch);
    if (!rc && write_atomic(path, blob.data, blob.len) != 0) {
        snprintf(err, sizeof err, "%.400s: %s", path, strerror(errno));
        rc = SS_EIO;
    }
    ss_buf_release(&blob);
    ss_buf_release(&state);
    if (rc && !n->snap_warned++)
        ss_warn("%s: no snapshot at checkpoint %u, so no checkpoint can "
                "complete: %s", n->o->name, epoch,
                err[0] ? err : ss_strerror(rc));
    return rc ? -1 : 0;
}

/* A restart from a checkpoint (SS_RESTORE_EPOCH=E, set by sstream run
 * with the checkpoint's snapshot back in checkpoint_dir): a stateful
 * worker or the sink puts the state of <checkpoint_dir>/<name>-eE.snap
 * back before its first batch, opened and checked where the stage runs
 * (the enclave in enclave mode, which restores only the epoch the key
 * service granted it). A snapshot of another run, epoch, stage or worker,
 * or one that does not authenticate, is refused: the component fails
 * (the run with it), saying why. Returns 0 (restored, or nothing to
 * restore) or an error code with the reason in n->err. */
/* A restart from checkpoint e with another worker count of this
 * partitioned stateful stage (SS_RESTORE_WORKERS=from: the stage had
 * `from` workers at e): the snapshots of every old worker,
 * <checkpoint_dir>/STAGE-j-eE.snap for j = 1..from, each opened as the
 * state of worker STAGE-j, and of each only the key groups this worker
 * owns now (slot --index of --partitions) restored; in an enclave (and
 * the encrypted mode's in-process core) exactly as its key service
 * granted it. Returns 0 or an error code with the reason in n->err. */
static int restore_rescaled(node *n, uint32_t e, uint32_t from)
{
    uint32_t myslot = n->o->index, slots = n->o->partitions;
    if (!myslot || !slots || myslot > slots) {
        snprintf(n->err, sizeof n->err, "cannot restore checkpoint %u from "
                 "%u workers: this worker has no slot of a partitioned "
                 "stage (--index and --partitions), so no key groups", e,
                 from);
        return SS_EINVAL;
    }
    char **blobs = calloc(from, sizeof *blobs);
    size_t *lens = calloc(from, sizeof *lens);
    char path[4096] = "";
    int rc = blobs && lens ? 0 : SS_ENOMEM;
    for (uint32_t j = 1; !rc && j <= from; j++) {
        snprintf(path, sizeof path, "%s/%s-%u-e%u.snap",
                 n->o->checkpoint_dir, n->o->stage, j, e);
        rc = ss_read_file(path, (64u << 20) + 65536, &blobs[j - 1],
                          &lens[j - 1]);
        if (rc)
            snprintf(n->err, sizeof n->err, "cannot restore checkpoint %u "
                     "from %u workers: cannot read %.300s: %s", e, from,
                     path, ss_strerror(rc));
    }
    char err[512] = "";
    if (!rc && n->enc) {
        ss_restore_grant r = {e, from, myslot, slots};
        rc = ss_enclave_restore_keyed(n->enc, &r,
                                      (const void *const *)blobs, lens, err,
                                      sizeof err);
        path[0] = '\0';
    } else if (!rc) {
        ss_stage_groups sel;
        ss_partition_range(myslot - 1, slots, &sel.lo, &sel.hi);
        ss_buf state = SS_BUF_INIT;
        for (uint32_t j = 1; !rc && j <= from; j++) {
            char old[80];
            snprintf(old, sizeof old, "%s-%u", n->o->stage, j);
            snprintf(path, sizeof path, "%s/%s-e%u.snap",
                     n->o->checkpoint_dir, old, e);
            ss_snapshot_id id = {n->o->run, e, n->o->stage, old};
            ss_buf_reset(&state);
            rc = ss_snapshot_open(n->key, blobs[j - 1], lens[j - 1], &id,
                                  &state, err, sizeof err);
            /* the state outside key groups moves only with its own
             * worker, and only when the count did not change */
            sel.base = from == slots && j == myslot;
            ss_partition_range(j - 1, from, &sel.own_lo, &sel.own_hi);
            if (!rc)
                rc = n->chain ? ss_chain_restore_groups(n->chain, state.data,
                                                        state.len, &sel, err,
                                                        sizeof err)
                              : ss_stage_restore_groups(n->stage, state.data,
                                                        state.len, &sel, err,
                                                        sizeof err);
            if (state.data)
                sodium_memzero(state.data, state.cap);
        }
        ss_buf_release(&state);
    }
    for (uint32_t j = 0; blobs && j < from; j++)
        free(blobs[j]);
    free(blobs);
    free(lens);
    if (rc && err[0]) {
        if (path[0])
            snprintf(n->err, sizeof n->err, "refused to restore checkpoint "
                     "%u from %.200s: %.250s", e, path, err);
        else
            snprintf(n->err, sizeof n->err, "refused to restore checkpoint "
                     "%u from the snapshots of %u workers: %.250s", e, from,
                     err);
    }
    if (rc)
        return rc;
    int lo, hi;
    ss_partition_range(myslot - 1, slots, &lo, &hi);
    if (n->enc) /* how many groups it holds is the enclave's to know */
        ss_info("%s: restored the key groups %d..%d of checkpoint %u from "
                "the snapshots of %u workers", n->o->name, lo, hi, e, from);
    else
        ss_info("%s: restored the key groups %d..%d of checkpoint %u from "
                "the snapshots of %u workers (%zu key group(s) with state)",
                n->o->name, lo, hi, e, from,
                ss_stage_key_groups(n->stage));
    return 0;
}

static int restore(node *n)
{
    const char *ev = getenv("SS_RESTORE_EPOCH");
    int sink = strcmp(n->o->role, "sink") == 0;
    if (!ev || !*ev || !n->o->checkpoint_dir || (!sink && !node_stateful(n)) ||
        (!n->enc && !n->chain && !n->stage))
        return 0;
    uint64_t e;
    if (ss_parse_u64(ev, 1, UINT32_MAX, 0, &e) != 0) {
        snprintf(n->err, sizeof n->err, "SS_RESTORE_EPOCH '%.40s' is not "
                 "an epoch (1 to %u)", ev, UINT32_MAX);
        return SS_EINVAL;
    }
    const char *fw = getenv("SS_RESTORE_WORKERS");
    if (fw && *fw && !sink) {
        uint64_t from;
        if (ss_parse_u64(fw, 1, SS_PARTITIONS, 0, &from) != 0) {
            snprintf(n->err, sizeof n->err, "SS_RESTORE_WORKERS '%.40s' is "
                     "not a worker count (1 to %u)", fw, SS_PARTITIONS);
            return SS_EINVAL;
        }
        return restore_rescaled(n, (uint32_t)e, (uint32_t)from);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-e%u.snap", n->o->checkpoint_dir,
             n->o->name, (uint32_t)e);
    char *blob = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = ss_read_file(path, (64u << 20) + 65536, &blob, &len);
    if (rc) {
        snprintf(n->err, sizeof n->err, "cannot restore checkpoint %u: "
                 "cannot read %.300s: %s", (uint32_t)e, path,
                 ss_strerror(rc));
        return rc;
    }
    if (n->enc) {
        rc = ss_enclave_restore(n->enc, (uint32_t)e, blob, len, err,
                                sizeof err);
    } else if (n->chain || n->stage) {
        ss_buf state = SS_BUF_INIT;
        ss_snapshot_id id = {n->o->run, (uint32_t)e, n->o->stage,
                             n->o->name};
        rc = ss_snapshot_open(n->key, blob, len, &id, &state, err,
                              sizeof err);
        if (!rc)
            rc = n->chain ? ss_chain_restore(n->chain, state.data, state.len,
                                             err, sizeof err)
                          : ss_stage_restore(n->stage, state.data, state.len,
                                             err, sizeof err);
        if (state.data)
            sodium_memzero(state.data, state.cap);
        ss_buf_release(&state);
    }
    free(blob);
    if (rc) {
        snprintf(n->err, sizeof n->err, "refused to restore checkpoint %u "
                 "from %.200s: %.250s", (uint32_t)e, path,
                 err[0] ? err : ss_strerror(rc));
        return rc;
    }
    ss_info("%s: restored the state of checkpoint %u (%zu bytes)",
            n->o->name, (uint32_t)e, len);
    return 0;
}

/* The length of the regular file open as fd, or -1 (no file, not a
 * regular file: a pipe, a terminal). */
static int64_t file_len(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
               ? (int64_t)st.st_size
               : -1;
}

/* The marks of a checkpoint acknowledgement (ss_stats.h): how far this
 * component's files go at the barrier, once flushed: its rejects file;
 * the sink's standard output and OUTPUT file too, after every stream its
 * script wrote to was flushed (fflush(NULL): print, io.write, a file it
 * keeps open), so that what it wrote for the batches before the barrier
 * is all below the marks and nothing after it is. The coordinator
 * commits the sink's output up to them once the epoch completes, and
 * cuts each file back to them on a resume. */
static void barrier_marks(node *n, ss_stats *st)
{
    int sink = strcmp(n->o->role, "sink") == 0;
    if (sink)
        (void)fflush(NULL);
    else if (n->rejects)
        (void)fflush(n->rejects);
    st->marks = 1;
    st->rejects_len = n->rejects ? file_len(fileno(n->rejects)) : -1;
    st->stdout_len = sink ? file_len(STDOUT_FILENO) : -1;
    st->output_len = -1;
    const char *output = sink ? getenv("OUTPUT") : NULL;
    struct stat o;
    if (output && *output && stat(output, &o) == 0 && S_ISREG(o.st_mode))
        st->output_len = (int64_t)o.st_size;
}

/* A checkpoint barrier from the input router (docs/PROTOCOL.md,
 * "BARRIER"). This loop handles one batch at a time and sends its output
 * before it takes the next, so every output of the batches before the
 * barrier left already: the barrier goes on downstream now, behind them;
 * a stateful worker and the sink write their snapshot (snapshot()), and
 * the run's coordinator hears that this component passed it, with its
 * counters at the barrier. A barrier not above the last one is
 * ignored. */
static int handle_barrier(node *n, const ss_hdr *h)
{
    if (h->epoch <= n->epoch) {
        ss_warn("%s: ignored barrier %u: not above the last one (%u)",
                n->o->name, h->epoch, n->epoch);
        return 0;
    }
    n->epoch = h->epoch;
    if (n->link) {
        int rc = ss_link_send_barrier(n->link, h->epoch);
        if (rc) {
            link_failed(n, rc);
            return rc;
        }
    }
    if (snapshot(n, h->epoch) != 0)
        return 0; /* not acknowledged: this checkpoint cannot complete */
    if (n->stats) {
        ss_stats st;
        node_stats(n, 0, &st);
        barrier_marks(n, &st);
        ss_stats_report_barrier(n->stats, &st, h->epoch);
        /* and each chained stage's, which a resume continues from */
        if (n->o->nchain && (n->chain || n->enc))
            report_chained(n, 0, h->epoch);
    }
    return 0;
}

/* Waits until every output was RECEIVED (so every input is acknowledged). */
static int drain(node *n)
{
    while (n->busy && n->link && !n->stop) {
        int rc = ss_link_service(n->link, 100);
        if (rc < 0) {
            link_failed(n, rc);
            return rc;
        }
        if (n->inlet)
            ss_inlet_heartbeat(n->inlet);
        maybe_report(n);
    }
    return n->stop ? SS_EINTR : 0;
}

/* Completion inside the enclave: what the chain emits then (a reduce's
 * result) leaves sealed under the node's own stream, marked as its end. */
static int complete_enclave(node *n)
{
    ss_hdr fin;
    memset(&fin, 0, sizeof fin);
    fin.kind = SS_MSG_DATA;
    fin.flags = SS_BF_LAST_PART | SS_BF_FINAL;
    fin.stream = n->own_stream;
    fin.seq = n->own_seq;
    fin.aux = SS_AUX_END;
    fin.run = n->o->run;
    fin.producer = ss_name_id(n->o->name);
    int rc = ss_enclave_complete(n->enc, &fin, &n->res, n->err,
                                 sizeof n->err);
    n->enclave_calls++;
    if (rc == SS_EPEER && ss_enclave_stateful(n->enc)) {
        char why[512];
        snprintf(why, sizeof why, "%s", n->err);
        snprintf(n->err, sizeof n->err, "%.400s at completion; stage '%s' "
                 "keeps state, which is lost with it", why, n->o->stage);
    }
    if (rc == SS_ELUA) /* the stage's reason, sealed in enclave mode */
        enclave_rejects(n);
    if (rc)
        return rc;
    add_enclave_counts(n);
    enclave_rejects(n);
    /* one message, or several when cut for a partitioned or broadcast
     * next stage */
    unsigned k;
    rc = count_msgs(n, &fin, n->res.msg.data, n->res.msg.len, &k);
    if (rc)
        return rc;
    ss_hdr oh;
    const char *why;
    ss_hdr_decode(n->res.msg.data,
                  SS_HDR_SIZE + (size_t)ss_get_u32((const uint8_t *)
                                                   n->res.msg.data + 28),
                  &oh, &why); /* checked by count_msgs */
    /* a stateful worker always ends its own stream, even with nothing in
     * it, so that the sink can tell a missing result from an empty one */
    if ((k == 1 && !oh.count && !node_stateful(n)) || !n->link)
        return 0;
    rc = send_msgs(n, n->res.msg.data, n->res.msg.len, UINT64_MAX);
    if (rc)
        return rc;
    n->own_seq++;
    return 0;
}

/* End of input: completion of the chain, final outputs, EOS downstream. */
static int handle_eos(node *n, const char *payload, size_t len)
{
    ss_eos eos;
    ss_eos_init(&eos);
    const char *why = "?";
    int rc = ss_eos_decode(payload, len, &eos, &why);
    if (rc) {
        snprintf(n->err, sizeof n->err,
                 "malformed end-of-stream message: %s", why);
        ss_eos_release(&eos);
        return rc;
    }
    rc = drain(n);
    if (rc)
        goto out;
    if (n->ig) { /* the sink: nothing is completed on a broken stream */
        rc = ss_integrity_finish(n->ig, &eos, n->err, sizeof n->err);
        if (rc)
            goto out;
    }
    if (n->enc) {
        rc = complete_enclave(n);
        if (rc)
            goto out;
        goto eos;
    }
    ss_stage_out_reset(&n->out);
    if (n->chain) {
        ss_stage *failed = NULL;
        rc = ss_chain_complete(n->chain, &n->out, &failed);
        if (rc) {
            snprintf(n->err, sizeof n->err, "completion of stage '%s' "
                     "failed: %s", failed ? ss_stage_name(failed) : "?",
                     failed ? ss_stage_error(failed) : ss_strerror(rc));
            goto out;
        }
    } else {
        rc = ss_stage_complete(n->stage, &n->out);
        if (rc) {
            snprintf(n->err, sizeof n->err, "completion of stage '%s' "
                     "failed: %s", n->o->stage ? n->o->stage : n->o->name,
                     ss_stage_error(n->stage));
            goto out;
        }
    }
    flush_rejects(n, &n->out);
    if (n->link) {
        if (n->out.count || node_stateful(n)) { /* see complete_enclave */
            ss_hdr lin;
            memset(&lin, 0, sizeof lin);
            lin.stream = n->own_stream;
            lin.seq = n->own_seq++;
            lin.aux = SS_AUX_END;
            lin.kind = SS_MSG_DATA;
            lin.flags = SS_BF_LAST_PART | SS_BF_FINAL;
            lin.first_row = 0;
            unsigned k;
            if ((rc = cut(n, &lin)) ||
                (rc = count_msgs(n, &lin, n->msg.data, n->msg.len, &k)) ||
                (rc = send_msgs(n, n->msg.data, n->msg.len, UINT64_MAX)))
                goto out;
        }
    }
eos:
    if (n->link) {
        if (n->own_seq)
            ss_eos_add_stream(&eos, n->own_stream, n->own_seq);
        rc = ss_link_send_eos(n->link, &eos, 60000);
        if (rc)
            snprintf(n->err, sizeof n->err,
                     "cannot deliver end of stream to %s: %s", n->to,
                     ss_strerror(rc));
    }
out:
    ss_eos_release(&eos);
    return rc;
}

/* What the script declared, wherever it runs. */
static const char *node_from(node *n)
{
    return n->enc ? ss_enclave_from(n->enc) : ss_stage_from(n->stage);
}
static const char *node_to(node *n)
{
    return n->enc ? ss_enclave_to(n->enc) : ss_stage_to(n->stage);
}

/* A stateless worker leaves its stage (ss_node_leave): it takes no more
 * input; once every output it sent was RECEIVED, every input it took is
 * acknowledged (on_received), and the acknowledgements go out now. The
 * batches its router sent that it never took are dealt again by the
 * router once it sees this worker gone: nothing is lost, and this
 * worker's counters hold exactly what it acknowledged. */
static int leave_stage(node *n)
{
    int rc = drain(n);
    if (rc)
        return rc;
    rc = ss_inlet_flush(n->inlet);
    if (rc) {
        snprintf(n->err, sizeof n->err, "cannot send its last "
                 "acknowledgements as it leaves: %s", ss_strerror(rc));
        return rc;
    }
    ss_info("%s: left stage '%s' (asked to): %llu batches taken, every "
            "one acknowledged", n->o->name,
            n->o->stage ? n->o->stage : n->o->name,
            (unsigned long long)n->batches_in);
    return 0;
}

static int run_input_loop(node *n)
{
    int rrc = restore(n);
    if (rrc)
        return rrc;
    const char *from = n->o->from ? n->o->from
                                  : ss_env("FROM", node_from(n));
    ss_inlet_opts io;
    memset(&io, 0, sizeof io);
    io.endpoint = from;
    io.name = n->o->name;
    io.stage = n->o->stage ? n->o->stage : n->o->name;
    io.credits = ss_node_credits(n->o);
    io.stateful = node_stateful(n);
    io.connect_timeout_ms = n->o->connect_timeout_ms;
    io.heartbeat_ms = n->o->heartbeat_ms;
    io.role = strcmp(n->o->role, "sink") == 0 ? "sink" : "worker";
    io.curve = n->have_curve ? &n->curve : NULL;
    io.run = n->o->run;
    io.index = n->o->index;
    int rc = ss_inlet_new(n->zctx, &io, &n->inlet, n->err, sizeof n->err);
    if (rc)
        return rc;
    if (node_to(n) || n->o->to) {
        if (strcmp(n->o->role, "sink") == 0) {
            snprintf(n->err, sizeof n->err,
                     "a sink script must not call subscribeToSocket");
            return SS_EINVAL;
        }
        rc = open_link(n);
        if (rc)
            return rc;
    }
    ss_info("%s: stage '%s' ready (from %s%s%s, %s)", n->o->name,
            io.stage, from, n->link ? " to " : "", n->link ? n->to : "",
            io.stateful ? "stateful" : "stateless");
    int idle = 0; /* the last turn found no input: wait before the next */
    int sent = 0; /* the last turn sent a batch: ss_link_send has just
                     taken what the link had (confirmations), and looking
                     again at once would find nothing, for a poll() */
    for (;;) {
        if (n->stop)
            return SS_EINTR;
        if (n->leave && !n->leave_said) {
            if (strcmp(n->o->role, "worker") == 0 && !io.stateful &&
                !n->chain && n->link)
                return leave_stage(n);
            ss_warn("%s: asked to leave its stage, but a %s cannot: it "
                    "goes on", n->o->name,
                    strcmp(n->o->role, "worker") != 0 ? n->o->role
                    : io.stateful ? "stateful worker"
                                  : "chained worker");
            n->leave_said = 1;
        }
        if (idle) { /* no poll while batches keep coming */
            void *socks[2] = {ss_inlet_socket(n->inlet),
                              n->link ? ss_link_socket(n->link) : NULL};
            int drained[2] = {ss_inlet_drained(n->inlet),
                              n->link ? ss_link_drained(n->link) : 0};
            if (ss_transport_wait_drained(socks, drained, 2,
                                          n->o->heartbeat_ms) < 0) {
                if (errno == EINTR)
                    continue;
                snprintf(n->err, sizeof n->err, "poll failed: %s",
                         zmq_strerror(errno));
                return SS_EIO;
            }
        }
        if (n->link && !sent) {
            rc = ss_link_service(n->link, 0);
            if (rc < 0) {
                link_failed(n, rc);
                return rc;
            }
        }
        zmq_msg_t m;
        ss_hdr h;
        rc = ss_inlet_recv(n->inlet, &m, &h, 0, n->err, sizeof n->err);
        if (rc < 0)
            return rc;
        idle = rc == 0;
        sent = rc == 1 && h.kind == SS_MSG_DATA && n->link;
        if (rc == 1) {
            const char *body = (const char *)zmq_msg_data(&m) + SS_HDR_SIZE;
            if (h.kind == SS_MSG_DATA)
                rc = handle_data(n, &h, body);
            else if (h.kind == SS_MSG_BARRIER)
                rc = handle_barrier(n, &h);
            else if (h.kind == SS_MSG_EOS) {
                rc = handle_eos(n, body, h.len);
                zmq_msg_close(&m);
                return rc;
            } else
                rc = 0;
            zmq_msg_close(&m);
            if (rc)
                return rc;
        }
        maybe_report(n);
    }
}

/* Worker in encrypted or enclave mode: the stage runs behind
 * ss_enclave, in this process with the data key (encrypted: backend
 * none) or in an attested sandbox child that alone gets the key from the
 * key service (enclave: this process never holds it). */
static int run_enclave_worker(node *n)
{
    const ss_node_opts *o = n->o;
    int enclave = strcmp(o->security, "enclave") == 0;
    if (!o->keys) {
        ss_error("%s: security '%s' needs the pipeline's keys (--keys)",
                 o->name, o->security);
        return SS_EINVAL;
    }
    ss_enclave_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.backend = enclave ? (o->enclave ? o->enclave : "sandbox") : "none";
    eo.name = o->name;
    eo.stage = o->stage;
    eo.script_path = o->script;
    eo.mem_limit = enclave ? 0 : o->mem_limit; /* enclave: 64 MiB (EPC) */
    eo.max_instructions = o->max_instructions;
    eo.encrypted = 1;
    eo.run = o->run;
    eo.key_dir = o->keys;
    eo.partition_by = o->partition_by;
    eo.broadcast = o->broadcast;
    eo.chain = o->chain; /* chained stages run in the same enclave */
    eo.nchain = o->nchain;
    if (enclave && strcmp(eo.backend, "none") != 0) {
        if (!o->keyservice) {
            ss_error("%s: security 'enclave' needs the key service "
                     "(--keyservice ENDPOINT)", o->name);
            return SS_EINVAL;
        }
        /* the enclave child reads platform.key; this process only needs
         * its CURVE keys to reach the key service */
        if (o->enclave_keys)
            eo.key_dir = o->enclave_keys;
        /* separate uids: a spawner of the enclave's uid starts the child
         * (sstream run sets it; ss_spawner.h) */
        uint64_t sfd = 0;
        const char *sp = getenv("SS_ENCLAVE_SPAWNER");
        if (sp && *sp && ss_parse_u64(sp, 3, 1 << 20, 0, &sfd) == 0)
            eo.spawner_fd = (int)sfd;
        int krc = ss_keyserver_client_load(&n->ksc, o->keyservice, o->keys,
                                           n->err, sizeof n->err);
        if (krc) {
            ss_error("%s: the key service's CURVE keys: %s", o->name,
                     n->err);
            return krc;
        }
        eo.get_key = ss_keyserver_keyfn;
        eo.key_ctx = &n->ksc;
    }
    int rc = ss_enclave_open(&eo, &n->enc, n->err, sizeof n->err);
    if (rc) {
        ss_error("%s: %s", o->name, n->err);
        return rc;
    }
    /* a batch may take longer than the router's peer timeout in there */
    ss_enclave_set_tick(n->enc, enclave_tick, n);
    if (!enclave && ss_enclave_uses_sgx(n->enc))
        ss_warn("%s uses mapSGX/filterSGX/reduceSGX but security is '%s':"
                " its functions run outside any enclave", o->script,
                o->security);
    if (!enclave || strcmp(eo.backend, "none") == 0) {
        /* this process is trusted with the key: it opens the rejects */
        rc = ss_keys_load_data(o->keys, &n->key, n->err, sizeof n->err);
        if (rc) {
            ss_error("%s: %s", o->name, n->err);
            return rc;
        }
    }
    ss_info("%s: stage '%s' runs in enclave backend %s (pid %ld)", o->name,
            o->stage, ss_enclave_backend(n->enc),
            (long)ss_enclave_pid(n->enc));
    n->to = o->to;
    if (!n->to && getenv("TO") && *getenv("TO"))
        n->to = getenv("TO");
    if (!n->to)
        n->to = ss_enclave_to(n->enc);
    rc = run_input_loop(n);
    if (rc == SS_EINTR)
        ss_warn("%s: stopped by a signal", o->name);
    else if (rc)
        ss_error("%s: %s", o->name, n->err);
    return rc;
}

/* Sink in encrypted or enclave mode: the data key opens every batch and
 * the whole stream is checked end to end. */
static int setup_sink_security(node *n)
{
    const ss_node_opts *o = n->o;
    if (!o->keys) {
        ss_error("%s: security '%s' needs the pipeline's keys (--keys)",
                 o->name, o->security);
        return SS_EINVAL;
    }
    int rc = ss_keys_load_data(o->keys, &n->key, n->err, sizeof n->err);
    if (!rc)
        rc = ss_integrity_new(o->ordered, &n->ig);
    for (const char *f = o->finals; !rc && f && *f;) {
        size_t len = strcspn(f, ",");
        char name[SS_PROTO_NAME_MAX];
        if (len == 0 || len >= sizeof name) {
            snprintf(n->err, sizeof n->err, "--finals: bad worker name "
                     "'%.*s' (1 to 63 bytes, comma-separated)",
                     (int)(len < 80 ? len : 80), f);
            rc = SS_EINVAL;
            break;
        }
        memcpy(name, f, len);
        name[len] = '\0';
        rc = ss_integrity_expect_final(n->ig, name);
        f += len + (f[len] == ',');
    }
    /* a restart from a checkpoint: sstream run says where the source
     * streams resume (wire/ss_resume.h) */
    ss_resume_stream *rs = NULL;
    size_t nrs = 0;
    if (!rc)
        rc = ss_resume_parse(getenv("SS_RESUME_STREAMS"), &rs, &nrs, n->err,
                             sizeof n->err);
    for (size_t i = 0; !rc && i < nrs; i++)
        if ((rc = ss_integrity_resume(n->ig, rs[i].stream, rs[i].seq,
                                      rs[i].nstreams)) == SS_EINVAL)
            snprintf(n->err, sizeof n->err, "SS_RESUME_STREAMS: stream %u "
                     "given twice or ended at seq 0", rs[i].stream);
    free(rs);
    if (rc)
        ss_error("%s: %s", o->name, rc == SS_ENOMEM ? "out of memory"
                                                    : n->err);
    return rc;
}

/* See ss_node.h. */
int ss_node_new(const ss_node_opts *o, ss_node **out)
{
    *out = NULL;
    node *n = calloc(1, sizeof *n);
    if (!n)
        return SS_ENOMEM;
    n->o = o;
    ss_stage_out_init(&n->out);
    ss_buf_init(&n->msg);
    ss_psplit_init(&n->split);
    ss_buf_init(&n->pt);
    ss_enclave_result_init(&n->res);
    /* a worker's results go out on its FINAL stream; `sstream lua` sending
     * to a router is a source, whose stream is its name's id with the top
     * bit clear (routers take nothing else from a source) */
    n->own_stream = strcmp(o->role, "lua") == 0
                        ? ss_name_id(o->name) & 0x7fffffffu
                        : own_stream_id(o->name);
    n->zctx = zmq_ctx_new();
    if (!n->zctx) {
        ss_error("cannot create a zeromq context: %s", zmq_strerror(errno));
        free(n);
        return SS_ENOMEM;
    }
    *out = n;
    return 0;
}

/* See ss_node.h. */
void ss_node_stop(ss_node *n) { n->stop = 1; }

/* See ss_node.h. */
void ss_node_leave(ss_node *n) { n->leave = 1; }

/* Loads the stages chained after n->stage (opts chain) with the options
 * of the first, into its Lua state, and makes n->chain of them. */
static int load_chain(node *n, const ss_stage_opts *first)
{
    const ss_node_opts *o = n->o;
    size_t len = (size_t)o->nchain + 1;
    ss_stage **st = calloc(len, sizeof *st);
    if (!st)
        return SS_ENOMEM;
    st[0] = n->stage;
    n->stage = NULL;
    int rc = 0;
    for (size_t k = 1; k < len && !rc; k++) {
        const char *spec = o->chain[k - 1];
        const char *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1] ||
            (size_t)(eq - spec) >= SS_STATS_NAME_MAX - 8) {
            ss_error("%s: --chain '%s': expected STAGE=SCRIPT", o->name,
                     spec);
            rc = SS_EINVAL;
            break;
        }
        char stage[SS_STATS_NAME_MAX], name[2 * SS_STATS_NAME_MAX];
        snprintf(stage, sizeof stage, "%.*s", (int)(eq - spec), spec);
        const char *dash = strrchr(o->name, '-');
        snprintf(name, sizeof name, "%s-%s", stage, dash ? dash + 1 : "1");
        ss_stage_opts so = *first;
        so.name = name;
        so.stage = stage;
        so.script_path = eq + 1;
        so.script_src = NULL;
        /* one Lua state for the chain (ss_stage_new_shared); each
         * stage in a state of its own with SS_CHAIN_SHARED=0 (a
         * measuring switch, docs/PERFORMANCE.md) */
        rc = ss_chain_shared_wanted()
                 ? ss_stage_new_shared(st[0], &so, &st[k], n->err,
                                       sizeof n->err)
                 : ss_stage_new(&so, &st[k], n->err, sizeof n->err);
        if (rc) {
            ss_error("%s: %s", eq + 1, n->err);
            break;
        }
        ss_stage_set_tick(st[k], node_tick, n);
        if (!ss_stage_has_input(st[k]) || !ss_stage_to(st[k])) {
            ss_error("%s: a chained stage's script must start with "
                     "fromZmqSocket(...) and end with "
                     ":subscribeToSocket(...), as any stage", eq + 1);
            rc = SS_EINVAL;
        }
    }
    if (rc) {
        n->stage = st[0];
        for (size_t k = 1; k < len; k++)
            ss_stage_destroy(&st[k]);
        free(st);
        return rc;
    }
    rc = ss_chain_new(st, len, &n->chain);
    free(st);
    if (rc)
        return rc;
    n->stage = ss_chain_stage(n->chain, 0);
    return 0;
}

/* Everything ss_node_run does but the final report. */
static int node_run(node *n)
{
    const ss_node_opts *o = n->o;
    int rc = ss_stats_reporter_open(n->zctx, getenv("SS_CONTROL"),
                                    getenv("SS_CONTROL_KEYS"), &n->stats,
                                    n->err, sizeof n->err);
    if (rc) {
        ss_error("cannot connect to the supervisor at %s: %s",
                 getenv("SS_CONTROL"), n->err[0] ? n->err : ss_strerror(rc));
        return rc;
    }
    if (o->rejects) {
        n->rejects = fopen(o->rejects, "a");
        if (!n->rejects) {
            ss_error("cannot open rejects file '%s': %s", o->rejects,
                     strerror(errno));
            return SS_EIO;
        }
    }
    int is_lua = strcmp(o->role, "lua") == 0;
    int secure = strcmp(o->security, "plain") != 0;
    if (o->links_sealed && !secure) {
        ss_error("%s: --links sealed needs --security encrypted or "
                 "enclave (in plain mode nothing is sealed)", o->name);
        return SS_EINVAL;
    }
    /* barriers are not sealed: without CurveZMQ a stranger on a link
     * could forge or move one (docs/SECURITY.md, "Double encryption") */
    if (o->links_sealed &&
        (o->checkpoint_dir || getenv("SS_RESTORE_EPOCH") ||
         getenv("SS_RESUME_STREAMS"))) {
        ss_error("%s: --links sealed cannot be used with checkpoints or a "
                 "resume (--checkpoint-dir, SS_RESTORE_EPOCH, "
                 "SS_RESUME_STREAMS): checkpoint barriers are not sealed, "
                 "so they need CurveZMQ links", o->name);
        return SS_EINVAL;
    }
    /* every link is a CurveZMQ client, unless links are sealed only */
    if (secure && o->keys && !o->links_sealed) {
        if ((rc = ss_curve_load(&n->curve, o->keys, 0, n->err,
                                sizeof n->err))) {
            ss_error("%s: %s", o->name, n->err);
            return rc;
        }
        n->have_curve = 1;
    }
    if (o->nchain && strcmp(o->role, "worker") != 0) {
        ss_error("%s: chained stages (--chain) run only in a worker, not "
                 "in a %s", o->name, o->role);
        return SS_EINVAL;
    }
    if (secure && strcmp(o->role, "worker") == 0)
        return run_enclave_worker(n);
    if (secure && strcmp(o->role, "sink") == 0 &&
        (rc = setup_sink_security(n)))
        return rc;
    if (strcmp(o->role, "sink") == 0)
        n->lat = ss_latlog_open("sink");
    ss_stage_opts so;
    memset(&so, 0, sizeof so);
    so.name = o->name;
    so.stage = o->stage ? o->stage : o->name;
    so.mem_limit = o->mem_limit;
    so.max_instructions = o->max_instructions;
    so.host_errors = !is_lua;
    rc = ss_stage_new(&so, &n->stage, n->err, sizeof n->err);
    if (rc) {
        ss_error("%s", n->err);
        return rc;
    }
    n->to = o->to;
    ss_stage_set_flush(n->stage, free_flush, n, o->batch_size);
    ss_stage_set_tick(n->stage, node_tick, n);
    {
        /* the script's `arg` table, as the lua interpreter does */
        lua_State *L = ss_stage_lua(n->stage);
        lua_createtable(L, o->argc, 1);
        lua_pushstring(L, o->script);
        lua_rawseti(L, -2, 0);
        for (int i = 0; i < o->argc; i++) {
            lua_pushstring(L, o->argv[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setglobal(L, "arg");
    }
    /* addresses: --to beats TO beats the script; known before the script
     * runs only through the overrides; the script names it when it calls
     * subscribeToSocket, and open_link reads it then */
    if (!n->to && getenv("TO") && *getenv("TO"))
        n->to = getenv("TO");
    so.script_path = o->script;
    rc = ss_stage_load(n->stage, &so, n->err, sizeof n->err);
    if (!n->to)
        n->to = ss_stage_to(n->stage);
    if (rc) {
        ss_error("%s: %s", o->script, n->err);
        return rc;
    }
    if (strcmp(o->role, "worker") == 0 && !ss_stage_to(n->stage)) {
        /* without it every event would be dropped, silently */
        ss_error("%s never calls :subscribeToSocket(...): a stage sends "
                 "its results on, so end its chain with "
                 ":subscribeToSocket(os.getenv('TO'))", o->script);
        return SS_EINVAL;
    }
    if (o->nchain && (rc = load_chain(n, &so)))
        return rc;
    if (ss_stage_uses_sgx(n->stage) && strcmp(o->security, "enclave") != 0 &&
        !is_lua)
        ss_warn("%s uses mapSGX/filterSGX/reduceSGX but security is '%s':"
                " its functions run outside any enclave", o->script,
                o->security);
    if (ss_stage_has_input(n->stage)) {
        rc = run_input_loop(n);
        if (rc) {
            if (rc == SS_EINTR)
                ss_warn("%s: stopped by a signal", o->name);
            else
                ss_error("%s: %s", o->name, n->err);
            return rc;
        }
    } else if (n->link && !ss_stage_output_done(n->stage)) {
        ss_warn("%s: the script's output never completed", o->name);
    }
    if (strcmp(o->role, "sink") == 0 || ss_stage_done_called(n->stage)) {
        if (!ss_stage_done_called(n->stage) && strcmp(o->role, "sink") == 0)
            ss_warn("%s: the sink script never called "
                    "sendZmqCompleted(); completing anyway", o->name);
        if (n->stats)
            ss_stats_report_done(n->stats);
    }
    return 0;
}

/* See ss_node.h. */
int ss_node_run(ss_node *n)
{
    if (n->ran)
        return SS_EINVAL;
    n->ran = 1;
    int rc = node_run(n);
    if (n->stage || n->enc)
        report(n, 1);
    if (rc != 0 && !n->stop) {
        /* the run cannot complete without us: say so both ways, so that
         * the routers end the run now rather than wait for a peer
         * timeout. A stop (signal) is deliberate, not a failure of the
         * run: the routers treat it as the loss of this peer (a
         * stateless worker's batches go to its siblings). */
        char reason[SS_PROTO_REASON_MAX];
        snprintf(reason, sizeof reason, "%s %s failed: %.400s", n->o->role,
                 n->o->name, n->err[0] ? n->err : "see its log");
        ss_link_abort(n->link, reason);
        ss_inlet_abort(n->inlet, reason);
    }
    return rc;
}

/* See ss_node.h. */
void ss_node_destroy(ss_node **pp)
{
    if (!pp || !*pp)
        return;
    node *n = *pp;
    ss_link_destroy(&n->link);
    ss_inlet_destroy(&n->inlet);
    ss_stats_reporter_destroy(&n->stats);
    if (n->chain) /* n->stage is its first */
        ss_chain_destroy(&n->chain);
    else
        ss_stage_destroy(&n->stage);
    ss_enclave_close(&n->enc);
    ss_enclave_result_release(&n->res);
    ss_key_destroy(&n->key);
    ss_integrity_destroy(&n->ig);
    ss_latlog_close(&n->lat);
    ss_curve_wipe(&n->curve);
    ss_curve_wipe(&n->ksc.curve);
    if (n->pt.data)
        sodium_memzero(n->pt.data, n->pt.cap);
    ss_buf_release(&n->pt);
    ss_stage_out_release(&n->out);
    ss_buf_release(&n->msg);
    ss_psplit_release(&n->split);
    if (n->rejects)
        fclose(n->rejects);
    zmq_ctx_term(n->zctx);
    free(n);
    *pp = NULL;
}
