/*
 * ss_router.c - the router between two stages (see ss_router.h).
 *
 * Design notes. One thread, one zmq_poll loop over two ROUTER sockets:
 *
 *           FRONT (producers)                      BACK (workers)
 *   HELLO -> WELCOME                         HELLO -> WELCOME
 *   DATA  -> dedup -> queue -> RECEIVED      queue -> DATA (one credit)
 *   EOS   -> merge table -> RECEIVED         CREDIT -> forget the batch
 *   HEARTBEAT                                HEARTBEAT / silence -> lost
 *
 *   RUNNING --all groups sent EOS--> DRAINING --queue empty, nothing in
 *     |                                 |        flight, >= 1 worker-->
 *     |                                 |     CHECK --complete--> DONE
 *     +--stateful worker lost, bad ------+          |                (EOS
 *        tables, stop request--> ABORTED <--missing-+          to workers)
 *
 * RUNNING and DRAINING differ only in whether the completion test can
 * pass, so the code keeps one loop and tests completion on every turn.
 *
 * A batch lives in exactly one place: the queue (a ring of items), or the
 * in-flight array of the worker it was sent to. Sending gives ZeroMQ a
 * zmq_msg_copy (a reference, not a copy of the bytes), so the router can
 * send the batch again if the worker is lost. Items move between places
 * with zmq_msg_move.
 *
 * Duplicates: each stream keeps a bitmap of the seqs whose batch fully
 * arrived; batches split in parts keep a small side record (parts seen,
 * last part) until every part arrived, then set the seq's bit.
 */
#include "net/ss_router.h"
#include "wire/ss_resume.h"
#include "core/ss_buf.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_curve.h"
#include "net/ss_proto.h"
#include "net/ss_transport.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_partition.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define DRAIN_MAX 256               /* messages read per socket per turn */
#define RECEIVED_HOLD_MAX 8 /* RECEIVED held per producer, at most */
#define RECEIVED_HOLD_MS 20 /* ... and for at most this long */
#define SEQ_LIMIT (1ull << 32)      /* bitmaps stay below 512 MiB */
#define PART_LIMIT (1u << 16)
#define WARN_FIRST 20               /* rejects logged before sampling */
#define LOST_KEPT 64 /* lost producers of a group remembered at least */
#define HELD_MAX 4096 /* messages one producer may send past its barrier */
/* and frames' worth of bytes (of the router's max_frame): as many as
 * libzmq may hold for one producer (twice a default window) and one */
#define HELD_FRAMES (SS_ROUTER_FRONT_HWM + 1)

typedef struct item {
    ss_hdr h;      /* the batch's header: lineage, flags, len */
    zmq_msg_t msg; /* the whole message (header + payload) */
} item;

typedef struct queue { /* ring of items, oldest at head */
    item *v;
    size_t cap, head, n;
    uint64_t bytes; /* header + payload of the items */
} queue;

typedef struct peer {
    uint8_t id[256]; /* routing id */
    size_t idlen;
    char label[SS_PROTO_NAME_MAX]; /* printable name for logs */
    ss_hello hello;
    uint32_t credits, max_credits; /* workers */
    item *inflight;                /* workers: sent, not acknowledged */
    size_t ninflight, capinflight;
    uint64_t last_seen, last_sent;
    uint64_t last_progress; /* workers: last CREDIT accepted, or the
                               moment it got a batch while holding none */
    int stall_warned;       /* workers: warned that it makes no progress */
    uint64_t batches;
    ss_lineage *acks; /* producers: batches to confirm (one RECEIVED) */
    size_t nacks, capacks;
    uint64_t ack_since; /* producers: when the oldest of acks was taken */
    uint64_t ack_bytes; /* producers: bytes of the batches in acks */
    uint32_t slot; /* workers of a keyed router: slot 1..N (HELLO index) */
    int eos;  /* producers: sent their EOS */
    int refused; /* producers: sent on a stream they do not own; every
                    later message is dropped and they count for nothing */
    uint32_t rest_stream; /* sources: the stream of the sealed file they
                             forward (batches at rest), if rest_set */
    int rest_set;
    int gone; /* unreachable: skip heartbeats until it talks again */
    int lost; /* producers: gone before their EOS (see producer_lost) */
    /* checkpoint barriers (see "barrier alignment" below). Producers:
     * the highest epoch of a barrier it sent; while above the router's
     * epoch it is blocked and what it sends waits in `held`, in order.
     * Workers: the highest epoch forwarded to it. */
    uint32_t barrier;
    item *held;
    size_t nheld, capheld;
    uint64_t held_bytes; /* the frames in held, headers included */
} peer;

typedef struct peers {
    peer **v;
    size_t n, cap;
} peers;

typedef struct strack { /* seqs of one stream that fully arrived */
    uint32_t id;
    uint64_t *bits;
    size_t nwords;
    uint64_t hi; /* 1 + highest seq seen, in any part */
} strack;

typedef struct split { /* a batch whose parts are still arriving */
    uint32_t stream;
    uint64_t seq;
    uint64_t *bits; /* parts seen */
    size_t nwords;
    uint32_t have, maxpart;
    int64_t last; /* index of the LAST_PART part, or -1 */
} split;

typedef struct group {
    char name[SS_PROTO_NAME_MAX];
    uint32_t members;
    char (*names)[SS_PROTO_NAME_MAX]; /* producers that sent EOS */
    size_t n;
    char (*roster)[SS_PROTO_NAME_MAX]; /* its members, from the first
                                          EOS (none: not known) */
    size_t nroster;
} group;

struct ss_router {
    void *front, *back;
    /* 1 + tl_sends when the last call on FRONT [0] or BACK [1] was a
     * receive that found nothing (0: it was not): a wait may then skip
     * asking that socket for its events (ss_transport_wait_drained) */
    unsigned long drained_at[2];
    ss_zap *zap; /* CURVE: the ZAP handler of the context */
    char name[SS_PROTO_NAME_MAX];
    char *allow;  /* --peers: comma-separated names that may say hello,
                     or NULL (anyone) */
    uint32_t id;  /* ss_name_id(name): the producer of its messages */
    uint64_t run; /* the run id (0 until known) */
    int run_known; /* from --run, or learnt from the first HELLO */
    char from[256], to[256];
    unsigned producers, qmax;
    uint64_t qbytes_max; /* FRONT is not read above this (q.bytes) */
    uint64_t max_frame;  /* largest frame FRONT takes (WELCOME says so) */
    uint64_t rehellos;           /* HELLOs from known workers (log rate) */
    int hb, ptimeout;
    uint64_t stall; /* a worker holding batches without progress: lost */
    void (*tick)(void *, const ss_router_stats *, int);
    void *tick_arg;
    peers prod, work;
    size_t rr; /* round-robin cursor among workers */
    unsigned nslots;    /* --partitions: keyed routing over slots 1..N */
    uint8_t *slot_lost; /* per slot: its worker was lost (stateless), its
                           key groups moved on until it comes back */
    uint64_t *kg_events; /* per key group: events accepted (hot report) */
    queue q;
    strack *streams; /* sorted by id */
    size_t nstreams, capstreams;
    split *splits;
    size_t nsplits, capsplits;
    group *groups;
    size_t ngroups;
    ss_eos merged;
    uint32_t epoch; /* the last barrier epoch aligned and queued (0: none) */
    int aligning;   /* align() runs: front_barrier does not call it */
    ss_buf out; /* scratch for control messages */
    ss_lineage acks[SS_PROTO_ACKS_MAX]; /* scratch: what a CREDIT names */
    ss_router_stats st;
    uint64_t next_house;
    atomic_int stop;
    int rc;   /* nonzero once failed */
    int done; /* EOS sent */
    uint64_t orphaned; /* when no producer was left to end (0: not) */
    uint64_t workerless; /* since when no worker is left (0: one is) */
    char last_lost[SS_PROTO_NAME_MAX]; /* the last worker lost */
    char last_abort[SS_PROTO_REASON_MAX]; /* a stateless producer's */
    char err[SS_PROTO_REASON_MAX];
};

/* ---- small helpers ---------------------------------------------------- */

/* A printable label for a routing id: itself if it is plain text, else
 * its first bytes in hex. */
static void id_label(const uint8_t *id, size_t n, char *out, size_t cap)
{
    int plain = n > 0 && n < cap;
    for (size_t i = 0; plain && i < n; i++)
        if (id[i] < 0x21 || id[i] > 0x7e || id[i] == '\'')
            plain = 0;
    if (plain) {
        memcpy(out, id, n);
        out[n] = 0;
        return;
    }
    size_t o = (size_t)snprintf(out, cap, "0x");
    for (size_t i = 0; i < n && o + 3 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", id[i]);
}

static const char *lineage_str(const ss_hdr *h, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u/%llu/%u", h->stream, (unsigned long long)h->seq,
             h->part);
    return buf;
}

/* ---- queue ------------------------------------------------------------ */

static void item_move(item *dst, item *src)
{
    dst->h = src->h;
    zmq_msg_init(&dst->msg);
    zmq_msg_move(&dst->msg, &src->msg);
}

static int q_grow(queue *q)
{
    size_t cap = q->cap ? 2 * q->cap : 64;
    item *v = malloc(cap * sizeof *v);
    if (!v)
        return SS_ENOMEM;
    for (size_t i = 0; i < q->n; i++)
        item_move(&v[i], &q->v[(q->head + i) % q->cap]);
    for (size_t i = 0; i < q->n; i++)
        zmq_msg_close(&q->v[(q->head + i) % q->cap].msg);
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Moves *it to the tail (front = 0) or head (front = 1) of q. */
static int q_push(queue *q, item *it, int front)
{
    if (q->n == q->cap && q_grow(q))
        return SS_ENOMEM;
    size_t at;
    if (front) {
        q->head = (q->head + q->cap - 1) % q->cap;
        at = q->head;
    } else {
        at = (q->head + q->n) % q->cap;
    }
    item_move(&q->v[at], it);
    q->n++;
    q->bytes += SS_HDR_SIZE + (uint64_t)it->h.len;
    return 0;
}

static void q_pop(queue *q, item *out)
{
    q->bytes -= SS_HDR_SIZE + (uint64_t)q->v[q->head].h.len;
    item_move(out, &q->v[q->head]);
    zmq_msg_close(&q->v[q->head].msg);
    q->head = (q->head + 1) % q->cap;
    q->n--;
}

/* Moves the item at position i from the head out of q (a keyed router
 * takes the first batch whose worker has credit, not always the head).
 * The items before it shift by one: O(i), and i < --queue. */
static void q_take(queue *q, size_t i, item *out)
{
    size_t at = (q->head + i) % q->cap;
    q->bytes -= SS_HDR_SIZE + (uint64_t)q->v[at].h.len;
    item_move(out, &q->v[at]);
    zmq_msg_close(&q->v[at].msg);
    for (size_t k = i; k > 0; k--) {
        size_t dst = (q->head + k) % q->cap;
        size_t src = (q->head + k - 1) % q->cap;
        item_move(&q->v[dst], &q->v[src]);
        zmq_msg_close(&q->v[src].msg);
    }
    q->head = (q->head + 1) % q->cap;
    q->n--;
}

static void q_release(queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        zmq_msg_close(&q->v[(q->head + i) % q->cap].msg);
    free(q->v);
    memset(q, 0, sizeof *q);
}

/* ---- peers ------------------------------------------------------------ */

static peer *peers_find(const peers *ps, const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i]->idlen == n && memcmp(ps->v[i]->id, id, n) == 0)
            return ps->v[i];
    return NULL;
}

static peer *peers_add(peers *ps, const uint8_t *id, size_t n)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 8;
        peer **v = realloc(ps->v, cap * sizeof *v);
        if (!v)
            return NULL;
        ps->v = v;
        ps->cap = cap;
    }
    peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->id, id, n);
    p->idlen = n;
    id_label(id, n, p->label, sizeof p->label);
    ps->v[ps->n++] = p;
    return p;
}

static void peer_free(peer *p)
{
    for (size_t i = 0; i < p->ninflight; i++)
        zmq_msg_close(&p->inflight[i].msg);
    free(p->inflight);
    for (size_t i = 0; i < p->nheld; i++)
        zmq_msg_close(&p->held[i].msg);
    free(p->held);
    free(p->acks);
    free(p);
}

static void peers_remove(peers *ps, peer *p)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i] != p)
            continue;
        memmove(ps->v + i, ps->v + i + 1, (ps->n - i - 1) * sizeof *ps->v);
        ps->n--;
        break;
    }
    peer_free(p);
}

static void peers_release(peers *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        peer_free(ps->v[i]);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

/* ---- sending ---------------------------------------------------------- */

/* Sends made by this thread's router (on either socket; one router runs
 * per thread): a send may consume the wake-up of a socket found empty
 * before, so only a socket read empty since the last send counts as
 * drained (ss_router.drained_at). */
static _Thread_local unsigned long tl_sends;

/* Sends one message (copied from data) to routing id on sock without
 * blocking. Returns 0 or -errno (EHOSTUNREACH: gone, EAGAIN: full). */
static int send_id(void *sock, const uint8_t *id, size_t idlen,
                   const void *data, size_t n)
{
    tl_sends++;
    if (zmq_send(sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    if (zmq_send(sock, data, n, ZMQ_DONTWAIT) < 0)
        return -errno;
    return 0;
}

static int send_to(void *sock, peer *p, const void *data, size_t n)
{
    int rc = send_id(sock, p->id, p->idlen, data, n);
    if (rc == 0)
        p->last_sent = ss_now_ms();
    else if (rc == -EHOSTUNREACH)
        p->gone = 1;
    return rc;
}

/* Writes this router's run id and producer id into the header of r->out
 * (a control message just built). */
static void stamp_out(ss_router *r)
{
    if (r->out.len >= SS_HDR_SIZE)
        ss_hdr_stamp(r->out.data, r->run, r->id);
}

/* Sends r->out (a control message just built) to p. */
static int send_out(ss_router *r, void *sock, peer *p)
{
    stamp_out(r);
    return send_to(sock, p, r->out.data, r->out.len);
}

/* Confirms to producer p, in RECEIVED messages of up to
 * SS_PROTO_ACKS_MAX batches, every DATA taken from it since the last
 * flush. Called when the router is done reading FRONT for this turn, so
 * a producer that sent several batches gets one message for all. */
static void flush_received(ss_router *r, peer *p)
{
    for (size_t i = 0; i < p->nacks; i += SS_PROTO_ACKS_MAX) {
        size_t n = p->nacks - i;
        if (n > SS_PROTO_ACKS_MAX)
            n = SS_PROTO_ACKS_MAX;
        if (ss_proto_received_n(&r->out, p->acks + i, n) == 0)
            send_out(r, r->front, p);
    }
    p->nacks = 0;
}

/* Queues the confirmation of DATA h for producer p (sent at once if the
 * queue cannot grow). */
static void queue_received(ss_router *r, peer *p, const ss_hdr *h)
{
    if (p->nacks == p->capacks) {
        size_t cap = p->capacks ? 2 * p->capacks : 16;
        ss_lineage *v = realloc(p->acks, cap * sizeof *v);
        if (!v) {
            flush_received(r, p);
            if (ss_proto_received(&r->out, h) == 0)
                send_out(r, r->front, p);
            return;
        }
        p->acks = v;
        p->capacks = cap;
    }
    if (!p->nacks) {
        p->ack_since = ss_now_ms();
        p->ack_bytes = 0;
    }
    p->ack_bytes += SS_HDR_SIZE + (uint64_t)h->len;
    p->acks[p->nacks++] = ss_proto_lineage(h);
}

/* Whether the router may keep holding producer p's confirmations: fewer
 * than half the window its HELLO gave (at most RECEIVED_HOLD_MAX), and
 * less than half its window_bytes when it gave that; never when it gave
 * no window (older and foreign peers). */
static int received_hold(const peer *p)
{
    size_t h = p->hello.window / 2;
    if (h > RECEIVED_HOLD_MAX)
        h = RECEIVED_HOLD_MAX;
    if (p->nacks >= h)
        return 0;
    return !p->hello.window_bytes ||
           2 * p->ack_bytes < p->hello.window_bytes;
}

/* Sends the RECEIVED that are due: every producer's, or (due_only) those
 * of producers with received_hold() of them waiting or the oldest
 * RECEIVED_HOLD_MS old. Holding them saves messages and wake-ups on both
 * sides (docs/PERFORMANCE.md, Transport); the producer's window has
 * room for twice as many. */
static void flush_due_received(ss_router *r, int due_only)
{
    uint64_t now = ss_now_ms();
    for (size_t i = 0; i < r->prod.n; i++) {
        peer *p = r->prod.v[i];
        if (p->nacks &&
            (!due_only || !received_hold(p) ||
             now - p->ack_since >= RECEIVED_HOLD_MS))
            flush_received(r, p);
    }
}

static void flush_all_received(ss_router *r) { flush_due_received(r, 1); }

/* Milliseconds until a held RECEIVED is due (-1: none held). */
static int received_due_in(const ss_router *r)
{
    int best = -1;
    uint64_t now = ss_now_ms();
    for (size_t i = 0; i < r->prod.n; i++) {
        const peer *p = r->prod.v[i];
        if (!p->nacks)
            continue;
        uint64_t age = now - p->ack_since;
        int in = age >= RECEIVED_HOLD_MS ? 0
                                         : (int)(RECEIVED_HOLD_MS - age);
        if (best < 0 || in < best)
            best = in;
    }
    return best;
}

/* ---- failure ---------------------------------------------------------- */

/* Records the failure, logs it and sends ABORT with the reason to every
 * peer. Returns code. Only the first failure counts. */
static int fail(ss_router *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ss_router *r, int code, const char *fmt, ...)
{
    if (r->rc)
        return r->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->rc = code;
    char self[SS_PROTO_NAME_MAX + 8];
    snprintf(self, sizeof self, "router %s ", r->name);
    if (strncmp(r->err, self, strlen(self)) == 0) /* names itself */
        ss_error("%s; aborting the run", r->err);
    else
        ss_error("router %s: %s; aborting the run", r->name, r->err);
    if (ss_proto_abort(&r->out, r->err) == 0) {
        for (size_t i = 0; i < r->work.n; i++)
            send_out(r, r->back, r->work.v[i]);
        for (size_t i = 0; i < r->prod.n; i++)
            send_out(r, r->front, r->prod.v[i]);
    }
    return code;
}

/* Counts and logs a message the router drops. */
static void reject(ss_router *r, const char *label, const char *what,
                   const char *why)
{
    r->st.rejected++;
    if (r->st.rejected <= WARN_FIRST || r->st.rejected % 1000 == 0)
        ss_warn("router %s: dropped %s from '%s': %s%s", r->name, what,
                label, why,
                r->st.rejected == WARN_FIRST ? " (logging every 1000th "
                                               "from now on)"
                                             : "");
}

static void refuse(ss_router *r, void *sock, const uint8_t *id, size_t idlen,
                   const char *label, const char *what, const char *why);

/* A HELLO in another wire version: answer with an ABORT naming both
 * versions. A version 1 peer cannot read a version 2 header, so the ABORT
 * goes out in the layout of the peer's version when that is 1 (its 48
 * bytes are the first 48 of ours, with the version byte set to 1). */
static void version_abort(ss_router *r, void *sock, const uint8_t *id,
                          size_t idlen, const char *label, const uint8_t *d,
                          size_t n)
{
    int v = ss_hdr_version(d, n);
    if (v < 0 || v == SS_WIRE_VERSION || n < 6 || d[5] != SS_MSG_HELLO)
        return;
    char reason[SS_PROTO_REASON_MAX];
    snprintf(reason, sizeof reason,
             "wire version %d from '%s' is not supported by router %s "
             "(speaks %d); upgrade one of them",
             v, label, r->name, SS_WIRE_VERSION);
    ss_warn("router %s: %s", r->name, reason);
    if (ss_proto_abort(&r->out, reason))
        return;
    stamp_out(r);
    uint8_t *m = (uint8_t *)r->out.data;
    size_t len = r->out.len;
    if (v == 1 && len >= SS_HDR_SIZE) {
        const size_t v1 = 48; /* version 1 header size */
        m[4] = 1;
        memmove(m + v1, m + SS_HDR_SIZE, len - SS_HDR_SIZE);
        len -= SS_HDR_SIZE - v1;
    }
    send_id(sock, id, idlen, m, len);
}

/* FNV-1a of a routing id's bytes: the producer id its messages must
 * carry (ss_name_id of the peer's name). */
static uint32_t id_hash(const uint8_t *id, size_t idlen)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < idlen; i++)
        h = (h ^ id[i]) * 16777619u;
    return h;
}

/* Checks that message h, which arrived under routing id id, belongs to
 * this run and was written by that peer (docs/PROTOCOL.md, "run" and
 * "producer"). The first HELLO gives the run id to a router started
 * without one. A batch sealed at rest (ss_hdr_at_rest) passes from a
 * source on FRONT: `sstream encrypt` wrote it for no run and no producer.
 * Otherwise the message is dropped, counted and logged naming the peer;
 * a HELLO is answered with an ABORT saying why. Returns 1 if h may be
 * handled. */
static int check_origin(ss_router *r, void *sock, const peer *p,
                        const uint8_t *id, size_t idlen, const char *label,
                        const ss_hdr *h)
{
    char why[200];
    int at_rest = sock == r->front && p && ss_hdr_at_rest(h) &&
                  strcmp(p->hello.role, "source") == 0;
    if (h->producer != id_hash(id, idlen) && !at_rest) {
        snprintf(why, sizeof why,
                 "its producer id %08x is not that of '%s' (%08x): a "
                 "message written by someone else",
                 h->producer, label, id_hash(id, idlen));
    } else {
        if (!r->run_known && h->kind == SS_MSG_HELLO) {
            r->run = h->run;
            r->run_known = 1;
            ss_info("router %s: serving run %016llx (from the hello of "
                    "'%s')",
                    r->name, (unsigned long long)r->run, label);
        }
        if (!r->run_known || h->run == r->run || at_rest)
            return 1;
        snprintf(why, sizeof why,
                 "it belongs to run %016llx, this router serves run %016llx "
                 "(replayed from another run, or started with another "
                 "--run)",
                 (unsigned long long)h->run, (unsigned long long)r->run);
    }
    char what[32];
    snprintf(what, sizeof what, "%s message", ss_msg_kind_name(h->kind));
    if (h->kind != SS_MSG_HELLO && h->kind != SS_MSG_ABORT) {
        refuse(r, sock, id, idlen, label, what, why); /* told why */
        return 0;
    }
    reject(r, label, what, why);
    if (h->kind == SS_MSG_HELLO) {
        char reason[SS_PROTO_REASON_MAX];
        snprintf(reason, sizeof reason, "router %s refused the hello of "
                 "'%s': %s", r->name, label, why);
        if (ss_proto_abort(&r->out, reason) == 0) {
            stamp_out(r);
            send_id(sock, id, idlen, r->out.data, r->out.len);
        }
    }
    return 0;
}

/* Whether routing id id may join: any name without --peers, else only
 * one of the list. */
static int peer_allowed(const ss_router *r, const uint8_t *id, size_t idlen)
{
    if (!r->allow)
        return 1;
    for (const char *a = r->allow; *a;) {
        size_t n = strcspn(a, ",");
        if (n == idlen && memcmp(a, id, n) == 0)
            return 1;
        a += n + (a[n] == ',');
    }
    return 0;
}

/* Counts and logs a message the router drops, like reject(), and tells
 * its sender why with an ABORT (a peer must not wait for an answer that
 * will never come): `router r1 refused hello message from 'x': why`. */
static void refuse(ss_router *r, void *sock, const uint8_t *id, size_t idlen,
                   const char *label, const char *what, const char *why)
{
    char reason[SS_PROTO_REASON_MAX];
    reject(r, label, what, why);
    snprintf(reason, sizeof reason, "router %s refused %s from '%s': %s",
             r->name, what, label, why);
    if (ss_proto_abort(&r->out, reason) == 0) {
        stamp_out(r);
        send_id(sock, id, idlen, r->out.data, r->out.len);
    }
}

/* Refuses (and returns 1) a message whose payload is larger than its
 * kind allows: 64 KiB for control messages, 16 MiB for EOS (DATA cannot
 * be: libzmq drops a frame larger than SS_PROTO_MSG_MAX). */
static int too_big(ss_router *r, void *sock, const uint8_t *id, size_t idlen,
                   const char *label, const char *what, const ss_hdr *h)
{
    size_t max = ss_proto_payload_max(h->kind);
    if (h->len <= max)
        return 0;
    char why[128];
    snprintf(why, sizeof why,
             "payload of %u bytes is larger than the %zu bytes this kind "
             "may carry",
             h->len, max);
    refuse(r, sock, id, idlen, label, what, why);
    return 1;
}

/* A hello's name must be its routing id (what the producer field and the
 * stream a source owns derive from), and be on the --peers list. */
static int hello_ok(ss_router *r, void *sock, const uint8_t *id,
                    size_t idlen, const char *label, const ss_hello *he)
{
    if (strlen(he->name) != idlen || memcmp(he->name, id, idlen) != 0) {
        char why[160];
        snprintf(why, sizeof why, "its hello says it is '%.63s'",
                 he->name);
        refuse(r, sock, id, idlen, label, "hello message", why);
        return 0;
    }
    if (!peer_allowed(r, id, idlen)) {
        refuse(r, sock, id, idlen, label, "hello message",
               "it is not one of the peers this router was started for "
               "(--peers)");
        return 0;
    }
    return 1;
}

/* The stream a source owns: ss_name_id of its name, top bit clear. */
static uint32_t own_stream(const peer *p)
{
    return ss_name_id(p->hello.name) & 0x7fffffffu;
}

/* Expels producer p, which wrote on a stream it does not own: an ABORT to
 * it alone, and from now on its messages are dropped and it counts for
 * nothing (its data, its end of stream, its loss). */
static void expel(ss_router *r, peer *p, const char *why)
{
    reject(r, p->label, "message", why);
    ss_warn("router %s: refused producer '%s' for the rest of the run",
            r->name, p->label);
    p->refused = 1;
    char reason[SS_PROTO_REASON_MAX];
    snprintf(reason, sizeof reason, "router %s refused '%s': %s", r->name,
             p->label, why);
    if (ss_proto_abort(&r->out, reason) == 0)
        send_out(r, r->front, p);
}

/* A source may send only its own stream, or the one stream of the sealed
 * file it forwards (batches at rest). Returns 1 if p may send h. */
static int source_owns(ss_router *r, peer *p, const ss_hdr *h)
{
    if (strcmp(p->hello.role, "source") != 0 || h->stream == own_stream(p))
        return 1;
    if (ss_hdr_at_rest(h) &&
        (!p->rest_set || p->rest_stream == h->stream)) {
        p->rest_stream = h->stream;
        p->rest_set = 1;
        return 1;
    }
    char why[200];
    snprintf(why, sizeof why, "source '%s' sent batch %u/%llu on a stream "
             "it does not own (its stream is %u)", p->label, h->stream,
             (unsigned long long)h->seq, own_stream(p));
    expel(r, p, why);
    return 0;
}

/* ---- lineage tracking ------------------------------------------------- */

static int bits_grow(uint64_t **bits, size_t *nwords, uint64_t bit)
{
    size_t need = (size_t)(bit / 64) + 1;
    if (need <= *nwords)
        return 0;
    size_t cap = *nwords ? *nwords : 4;
    while (cap < need)
        cap *= 2;
    uint64_t *b = realloc(*bits, cap * sizeof *b);
    if (!b)
        return SS_ENOMEM;
    memset(b + *nwords, 0, (cap - *nwords) * sizeof *b);
    *bits = b;
    *nwords = cap;
    return 0;
}

static int bit_get(const uint64_t *bits, size_t nwords, uint64_t bit)
{
    size_t w = (size_t)(bit / 64);
    return w < nwords && (bits[w] >> (bit % 64)) & 1;
}

static void bit_set(uint64_t *bits, uint64_t bit)
{
    bits[bit / 64] |= 1ull << (bit % 64);
}

static size_t strack_lower(const ss_router *r, uint32_t id)
{
    size_t lo = 0, hi = r->nstreams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->streams[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static strack *strack_find(ss_router *r, uint32_t id)
{
    size_t i = strack_lower(r, id);
    return i < r->nstreams && r->streams[i].id == id ? &r->streams[i]
                                                     : NULL;
}

static strack *strack_get(ss_router *r, uint32_t id)
{
    size_t i = strack_lower(r, id);
    if (i < r->nstreams && r->streams[i].id == id)
        return &r->streams[i];
    if (r->nstreams == r->capstreams) {
        size_t cap = r->capstreams ? 2 * r->capstreams : 8;
        strack *v = realloc(r->streams, cap * sizeof *v);
        if (!v)
            return NULL;
        r->streams = v;
        r->capstreams = cap;
    }
    memmove(r->streams + i + 1, r->streams + i,
            (r->nstreams - i) * sizeof *r->streams);
    memset(&r->streams[i], 0, sizeof r->streams[i]);
    r->streams[i].id = id;
    r->nstreams++;
    return &r->streams[i];
}

static split *split_find(ss_router *r, uint32_t stream, uint64_t seq)
{
    for (size_t i = 0; i < r->nsplits; i++)
        if (r->splits[i].stream == stream && r->splits[i].seq == seq)
            return &r->splits[i];
    return NULL;
}

static split *split_add(ss_router *r, uint32_t stream, uint64_t seq)
{
    if (r->nsplits == r->capsplits) {
        size_t cap = r->capsplits ? 2 * r->capsplits : 8;
        split *v = realloc(r->splits, cap * sizeof *v);
        if (!v)
            return NULL;
        r->splits = v;
        r->capsplits = cap;
    }
    split *s = &r->splits[r->nsplits++];
    memset(s, 0, sizeof *s);
    s->stream = stream;
    s->seq = seq;
    s->last = -1;
    return s;
}

static void split_remove(ss_router *r, split *s)
{
    free(s->bits);
    *s = r->splits[--r->nsplits];
}

/*
 * Records that the batch with header h arrived. Returns 0 if it is new,
 * 1 if that lineage was already accepted, SS_EPROTO (reason in *why) for
 * an impossible lineage, SS_ENOMEM. Nothing changes unless it returns 0.
 */
static int lineage_accept(ss_router *r, const ss_hdr *h, const char **why)
{
    if (h->seq >= SEQ_LIMIT) {
        *why = "sequence number too large";
        return SS_EPROTO;
    }
    if (h->part >= PART_LIMIT) {
        *why = "part index too large";
        return SS_EPROTO;
    }
    int last = (h->flags & SS_BF_LAST_PART) != 0;
    strack *st = strack_find(r, h->stream);
    if (st && bit_get(st->bits, st->nwords, h->seq))
        return 1;
    split *sp = split_find(r, h->stream, h->seq);
    if (!(h->part == 0 && last)) { /* one part of a split batch */
        if (sp && bit_get(sp->bits, sp->nwords, h->part))
            return 1;
        if (sp && last && sp->last >= 0) {
            *why = "a split batch has two different last parts";
            return SS_EPROTO;
        }
        if (sp && last && sp->maxpart > h->part) {
            *why = "a split batch has parts beyond its last part";
            return SS_EPROTO;
        }
        if (sp && sp->last >= 0 && h->part > (uint64_t)sp->last) {
            *why = "part index beyond the last part of its batch";
            return SS_EPROTO;
        }
    }
    if (!st && !(st = strack_get(r, h->stream)))
        return SS_ENOMEM;
    if (bits_grow(&st->bits, &st->nwords, h->seq))
        return SS_ENOMEM;
    if (h->part == 0 && last) { /* unsplit: the common case */
        if (sp)
            split_remove(r, sp);
    } else {
        if (!sp && !(sp = split_add(r, h->stream, h->seq)))
            return SS_ENOMEM;
        if (bits_grow(&sp->bits, &sp->nwords, h->part))
            return SS_ENOMEM; /* sp stays, empty: harmless */
        bit_set(sp->bits, h->part);
        sp->have++;
        if (h->part > sp->maxpart)
            sp->maxpart = h->part;
        if (last)
            sp->last = h->part;
        if (sp->last < 0 || sp->have != (uint64_t)sp->last + 1) {
            if (h->seq + 1 > st->hi)
                st->hi = h->seq + 1;
            return 0;
        }
        split_remove(r, sp);
    }
    bit_set(st->bits, h->seq);
    if (h->seq + 1 > st->hi)
        st->hi = h->seq + 1;
    return 0;
}

/* A restart from a checkpoint (wire/ss_resume.h): the batches of each
 * source stream below its resume seq were dealt before the checkpoint
 * and are not sent again; they count as arrived (a copy of one is then a
 * duplicate). Returns 0 or -1 with err. */
static int resume_streams(ss_router *r, const char *spec, char *err,
                          size_t errlen)
{
    ss_resume_stream *v = NULL;
    size_t n = 0;
    if (ss_resume_parse(spec, &v, &n, err, errlen))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!v[i].seq)
            continue;
        strack *st = strack_get(r, v[i].stream);
        if (!st || bits_grow(&st->bits, &st->nwords, v[i].seq - 1)) {
            ss_errf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        for (uint64_t q = 0; q < v[i].seq; q++)
            bit_set(st->bits, q);
        st->hi = v[i].seq;
    }
    free(v);
    return rc;
}

/* First seq below count whose batch did not fully arrive, or count. */
static uint64_t first_missing(const strack *st, uint64_t count)
{
    if (!st)
        return count ? 0 : count;
    for (uint64_t w = 0; w * 64 < count; w++) {
        uint64_t word = w < st->nwords ? st->bits[w] : 0;
        if (~word == 0)
            continue;
        for (unsigned b = 0; b < 64; b++)
            if (!((word >> b) & 1))
                return w * 64 + b < count ? w * 64 + b : count;
    }
    return count;
}

/* ---- workers ---------------------------------------------------------- */

/* Handles the loss of worker w: its batches go back to the head of the
 * queue (stateless) or the run aborts (stateful). w is freed either way
 * when it returns 0. */
static int worker_lost(ss_router *r, peer *w, const char *why)
{
    if (w->hello.stateful) {
        ss_error("router %s: stateful worker '%s' of stage %s was lost (%s)",
                 r->name, w->label, w->hello.stage, why);
        return fail(r, SS_EPEER,
                    "worker %s of stage %s was lost with %zu batches in "
                    "flight; stateful stages cannot be retried",
                    w->hello.name, w->hello.stage, w->ninflight);
    }
    ss_warn("router %s: worker '%s' of stage %s was lost (%s); "
            "redelivering its %zu batches in flight",
            r->name, w->label, w->hello.stage, why, w->ninflight);
    for (size_t i = w->ninflight; i-- > 0;) {
        if (q_push(&r->q, &w->inflight[i], 1))
            return fail(r, SS_ENOMEM, "out of memory requeueing batches");
        zmq_msg_close(&w->inflight[i].msg);
        w->ninflight = i;
        r->st.redelivered++;
    }
    r->st.workers_lost++;
    if (r->nslots && w->slot) {
        r->slot_lost[w->slot - 1] = 1;
        ss_warn("router %s: the key groups of slot %u move to the next "
                "live worker until a worker says hello for it again",
                r->name, w->slot);
    }
    snprintf(r->last_lost, sizeof r->last_lost, "%s", w->label);
    peers_remove(&r->work, w);
    if (r->rr >= r->work.n)
        r->rr = 0;
    return 0;
}

static int inflight_push(peer *w, item *it)
{
    if (w->ninflight == w->capinflight) {
        size_t cap = w->capinflight ? 2 * w->capinflight : 4;
        item *v = malloc(cap * sizeof *v);
        if (!v)
            return SS_ENOMEM;
        for (size_t i = 0; i < w->ninflight; i++) {
            item_move(&v[i], &w->inflight[i]);
            zmq_msg_close(&w->inflight[i].msg);
        }
        free(w->inflight);
        w->inflight = v;
        w->capinflight = cap;
    }
    item_move(&w->inflight[w->ninflight++], it);
    return 0;
}

/* The worker to send the next batch to: most credit left, ties broken
 * round robin from the last one chosen. NULL if none has credit. */
static peer *pick(ss_router *r)
{
    size_t n = r->work.n;
    peer *best = NULL;
    size_t bi = 0;
    for (size_t k = 1; k <= n; k++) {
        size_t i = (r->rr + k) % n;
        peer *w = r->work.v[i];
        if (w->credits > 0 && (!best || w->credits > best->credits)) {
            best = w;
            bi = i;
        }
    }
    if (best)
        r->rr = bi;
    return best;
}

/* Deals queued batches to workers with credit. */
/* Sends batch it (taken from the queue) to worker w, which has credit,
 * and records it in flight. Returns DEAL_SENT, DEAL_FULL (w's pipe is
 * full: the batch is back at the head of the queue), DEAL_LOST (w was
 * disconnected and is lost: the batch is back in the queue) or
 * DEAL_FAILED (the run failed). */
enum { DEAL_SENT, DEAL_FULL, DEAL_LOST, DEAL_FAILED };

static int deal(ss_router *r, peer *w, item *itp)
{
    item it;
    item_move(&it, itp);
    zmq_msg_close(&itp->msg);
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, &it.msg);
    int rc = 0;
    tl_sends++;
    if (zmq_send(r->back, w->id, w->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&copy, r->back, ZMQ_DONTWAIT) < 0)
        rc = -errno;
    zmq_msg_close(&copy); /* no-op after a successful send */
    if (rc) {
        int pushed = q_push(&r->q, &it, 1);
        zmq_msg_close(&it.msg);
        if (pushed) {
            fail(r, SS_ENOMEM, "out of memory requeueing a batch");
            return DEAL_FAILED;
        }
        if (rc == -EHOSTUNREACH) {
            worker_lost(r, w, "disconnected");
            return r->rc ? DEAL_FAILED : DEAL_LOST;
        }
        return DEAL_FULL; /* its pipe is full: try again next turn */
    }
    w->last_sent = ss_now_ms();
    r->st.out_batches++;
    r->st.out_bytes += SS_HDR_SIZE + (uint64_t)it.h.len;
    r->st.out_events += it.h.count;
    w->batches++;
    w->credits--;
    if (w->ninflight == 0) /* its clock starts with its first batch */
        w->last_progress = w->last_sent;
    if (inflight_push(w, &it)) {
        zmq_msg_close(&it.msg);
        fail(r, SS_ENOMEM, "out of memory recording a batch in flight");
        return DEAL_FAILED;
    }
    zmq_msg_close(&it.msg);
    ss_debug_rate(r->st.out_batches, "router %s: batch %u/%llu/%u to '%s'",
                  r->name, it.h.stream, (unsigned long long)it.h.seq,
                  it.h.part, w->label);
    return DEAL_SENT;
}

static void dispatch_keyed(ss_router *r);

/* The barrier at the head of the queue (every batch queued before it was
 * dealt) goes to every live worker that has not had it yet; no credit is
 * needed, it is not held in flight. Returns 1 when every live worker has
 * it (the caller drops it from the queue), 0 to try again next turn (a
 * full pipe, a worker lost on the way, or no worker yet). */
static int send_barrier(ss_router *r, const item *b)
{
    if (r->work.n == 0)
        return 0;
    for (size_t i = 0; i < r->work.n; i++) {
        peer *w = r->work.v[i];
        if (w->barrier >= b->h.epoch)
            continue;
        int rc = send_to(r->back, w, zmq_msg_data((zmq_msg_t *)&b->msg),
                         zmq_msg_size((zmq_msg_t *)&b->msg));
        if (rc == -EHOSTUNREACH) {
            worker_lost(r, w, "disconnected");
            return 0; /* its batches went back to the queue: look again */
        }
        if (rc)
            return 0;
        w->barrier = b->h.epoch;
    }
    r->st.barriers_out++;
    ss_debug("router %s: barrier %u sent to %zu worker(s)", r->name,
             b->h.epoch, r->work.n);
    return 1;
}

/* Drops the barrier at the head of the queue once every worker has it.
 * Returns 1 if the head is no barrier or it was dropped, 0 if it must
 * wait. */
static int barrier_head(ss_router *r)
{
    const item *head = &r->q.v[r->q.head];
    if (head->h.kind != SS_MSG_BARRIER)
        return 1;
    if (!send_barrier(r, head))
        return 0;
    item it;
    q_pop(&r->q, &it);
    zmq_msg_close(&it.msg);
    return 1;
}

/* Deals queued batches to workers with credit. */
static void dispatch(ss_router *r)
{
    if (r->nslots) {
        dispatch_keyed(r);
        return;
    }
    while (r->q.n > 0 && !r->rc) {
        if (r->q.v[r->q.head].h.kind == SS_MSG_BARRIER) {
            if (!barrier_head(r))
                return;
            continue;
        }
        peer *w = pick(r);
        if (!w)
            return;
        item it;
        q_pop(&r->q, &it);
        int rc = deal(r, w, &it);
        if (rc == DEAL_FULL || rc == DEAL_FAILED)
            return;
    }
}

/* ---- keyed routing (partitioned and broadcast stages) -----------------
 *
 * With --partitions N, the stage's workers are slots 1..N, each named in
 * its HELLO (index). A batch flagged PARTITIONED goes to the slot owning
 * its key group (ss_partition_slot: contiguous ranges of the 4096 key
 * groups, Flink's scheme), a BROADCAST copy to slot part % N + 1, and
 * any other batch (an empty output, not cut) by credit, as without
 * --partitions. The router reads only these header fields.
 *
 * Where a batch goes never depends on who joined first: a slot whose
 * worker has not said HELLO yet keeps its batches waiting in the queue.
 * A slot whose worker was lost (a stateless stage: a stateful one aborts
 * the run) hands its key groups to the next live slot (s+1, s+2, ...
 * mod N) until a worker says HELLO for it again; its in-flight batches
 * are redelivered there. The queue is scanned from its head for a batch
 * whose worker has credit, so that one busy worker does not hold up the
 * others (the queue is bounded by --queue, so is the scan).
 */

/* The live worker of slot (1..N), or NULL. */
static peer *slot_worker(const ss_router *r, uint32_t slot)
{
    for (size_t i = 0; i < r->work.n; i++)
        if (r->work.v[i]->slot == slot)
            return r->work.v[i];
    return NULL;
}

/* Where batch h must go: its worker, or NULL to wait (its slot's worker
 * has not joined yet). *any is set when any worker may take it. */
static peer *keyed_target(const ss_router *r, const ss_hdr *h, int *any)
{
    *any = 0;
    uint32_t s;
    if (h->flags & SS_BF_PARTITIONED)
        s = ss_partition_slot(h->partition, r->nslots) + 1;
    else if (h->flags & SS_BF_BROADCAST)
        s = h->part % r->nslots + 1;
    else {
        *any = 1;
        return NULL;
    }
    for (unsigned k = 0; k < r->nslots; k++) {
        uint32_t t = (s - 1 + k) % r->nslots + 1;
        peer *w = slot_worker(r, t);
        if (w)
            return w;
        if (!r->slot_lost[t - 1])
            return NULL; /* not joined yet: its batches wait for it */
    }
    return NULL;
}

static void dispatch_keyed(ss_router *r)
{
    size_t i = 0;
    while (i < r->q.n && !r->rc) {
        const item *head = &r->q.v[(r->q.head + i) % r->q.cap];
        if (head->h.kind == SS_MSG_BARRIER) {
            /* nothing behind a barrier passes it; it leaves once every
             * batch before it was dealt */
            if (i > 0 || !barrier_head(r))
                return;
            continue;
        }
        int any;
        peer *w = keyed_target(r, &head->h, &any);
        if (any)
            w = pick(r);
        if (!w || !w->credits) {
            i++;
            continue;
        }
        item it;
        q_take(&r->q, i, &it);
        int rc = deal(r, w, &it);
        if (rc == DEAL_FAILED)
            return;
        if (rc == DEAL_LOST)
            i = 0; /* key groups moved: look again from the head */
        else if (rc == DEAL_FULL)
            i++; /* back at the head: skip it for this turn */
    }
}

/* A worker said HELLO to a keyed router: checks its slot. Returns 1 if it
 * may join, 0 if it was refused (an ABORT tells it why). */
static int keyed_hello(ss_router *r, const uint8_t *id, size_t idlen,
                       const ss_hello *he, const char *label)
{
    char why[400];
    if (!he->index || he->index > r->nslots) {
        snprintf(why, sizeof why,
                 "stage %s is partitioned over %u workers: a worker must "
                 "say which of them it is (sstream worker --index 1..%u), "
                 "and '%s' says %u",
                 he->stage, r->nslots, r->nslots, label, he->index);
    } else {
        const peer *o = slot_worker(r, he->index);
        if (!o || (o->idlen == idlen && memcmp(o->id, id, idlen) == 0))
            return 1;
        snprintf(why, sizeof why,
                 "slot %u of stage %s is taken by '%s'", he->index,
                 he->stage, o->label);
    }
    refuse(r, r->back, id, idlen, label, "hello message", why);
    return 0;
}

/* Counts the events of an accepted PARTITIONED batch in its key group,
 * for the hot partition report. */
static void keyed_count(ss_router *r, const ss_hdr *h)
{
    if (!(h->flags & SS_BF_PARTITIONED) || !r->kg_events)
        return;
    uint64_t n = r->kg_events[h->partition] += h->count;
    r->st.keyed_events += h->count;
    if (n > r->st.hot_events) {
        r->st.hot_events = n;
        r->st.hot_partition = h->partition;
        r->st.hot_slot = ss_partition_slot(h->partition, r->nslots) + 1;
    }
}

/* See ss_router.h. */
int ss_router_hot(const ss_router_stats *st, unsigned n)
{
    return n >= 2 && st->keyed_events >= 100 &&
           st->hot_events * n > st->keyed_events;
}

/* ---- FRONT: producers ------------------------------------------------- */

static void front_hello(ss_router *r, const uint8_t *id, size_t idlen,
                        peer *p, const ss_hdr *h, const uint8_t *payload,
                        const char *label)
{
    ss_hello he;
    const char *why;
    if (ss_proto_hello_parse(payload, h->len, &he, &why)) {
        refuse(r, r->front, id, idlen, label, "malformed hello", why);
        return;
    }
    if (strcmp(he.role, "sink") == 0) {
        refuse(r, r->front, id, idlen, label, "hello message",
               "a sink cannot send to a router's front");
        return;
    }
    if (!p && r->prod.n >= SS_ROUTER_PEERS_MAX) {
        refuse(r, r->front, id, idlen, label, "hello message",
               "too many producers (the limit is 4096)");
        return;
    }
    if (!hello_ok(r, r->front, id, idlen, label, &he))
        return;
    if (!p) {
        if (!(p = peers_add(&r->prod, id, idlen))) {
            fail(r, SS_ENOMEM, "out of memory adding producer '%s'", label);
            return;
        }
        ss_info("router %s: producer '%s' (%s of stage %s, group %s) "
                "joined",
                r->name, p->label, he.role, he.stage,
                he.group[0] ? he.group : he.name);
    } else {
        ss_debug("router %s: producer '%s' said hello again", r->name,
                 p->label);
    }
    p->hello = he;
    p->gone = 0;
    ss_welcome w = {.heartbeat_ms = (uint32_t)r->hb,
                    .peer_timeout_ms = (uint32_t)r->ptimeout,
                    .max_frame = r->max_frame};
    snprintf(w.router, sizeof w.router, "%s", r->name);
    if (ss_proto_welcome(&r->out, &w) == 0)
        send_out(r, r->front, p);
}

static void front_data(ss_router *r, peer *p, const ss_hdr *h,
                       zmq_msg_t *body)
{
    const char *why;
    char lin[64];
    if (!source_owns(r, p, h))
        return;
    int rc = lineage_accept(r, h, &why);
    if (rc == SS_ENOMEM) {
        fail(r, SS_ENOMEM, "out of memory tracking stream %u", h->stream);
        return;
    }
    if (rc < 0) {
        char reason[SS_PROTO_REASON_MAX];
        reject(r, p->label, "data message", why);
        snprintf(reason, sizeof reason,
                 "router %s rejected batch %s from '%s': %s", r->name,
                 lineage_str(h, lin, sizeof lin), p->label, why);
        if (ss_proto_abort(&r->out, reason) == 0)
            send_out(r, r->front, p);
        return;
    }
    if (rc == 1) {
        r->st.duplicates++;
        ss_debug("router %s: dropped duplicate batch %s from '%s'", r->name,
                 lineage_str(h, lin, sizeof lin), p->label);
    } else {
        item it = {.h = *h};
        zmq_msg_init(&it.msg);
        zmq_msg_move(&it.msg, body);
        int pushed = q_push(&r->q, &it, 0);
        zmq_msg_close(&it.msg);
        if (pushed) {
            fail(r, SS_ENOMEM, "out of memory queueing a batch");
            return;
        }
        r->st.in_batches++;
        r->st.in_bytes += SS_HDR_SIZE + (uint64_t)h->len;
        r->st.in_events += h->count;
        keyed_count(r, h);
        p->batches++;
        ss_debug_rate(r->st.in_batches, "router %s: batch %s from '%s'",
                      r->name, lineage_str(h, lin, sizeof lin), p->label);
    }
    queue_received(r, p, h);
}

static group *group_get(ss_router *r, const char *name)
{
    for (size_t i = 0; i < r->ngroups; i++)
        if (strcmp(r->groups[i].name, name) == 0)
            return &r->groups[i];
    return NULL;
}

/* The completion group a producer belongs to, before its EOS says. */
static const char *producer_group(const peer *p)
{
    return p->hello.group[0] ? p->hello.group : p->hello.name;
}

static void front_eos(ss_router *r, peer *p, const ss_hdr *h,
                      const uint8_t *payload)
{
    const char *why;
    ss_eos e;
    ss_eos_init(&e);
    int rc = ss_eos_decode(payload, h->len, &e, &why);
    if (rc) {
        if (rc == SS_ENOMEM)
            fail(r, SS_ENOMEM, "out of memory reading an end of stream");
        else
            reject(r, p->label, "malformed end of stream", why);
        return;
    }
    /* a source declares only its own stream (or its sealed file's) */
    for (size_t i = 0; strcmp(p->hello.role, "source") == 0 &&
                       i < e.nstreams; i++) {
        uint32_t sid = e.streams[i].stream;
        if (sid == own_stream(p) || (p->rest_set && sid == p->rest_stream) ||
            (!p->rest_set && e.streams[i].count == 0))
            continue;
        char bad[200];
        snprintf(bad, sizeof bad, "source '%s' declared stream %u in its "
                 "end of stream, which it does not own (its stream is %u)",
                 p->label, sid, own_stream(p));
        expel(r, p, bad);
        ss_eos_release(&e);
        return;
    }
    const char *gname = e.group[0] ? e.group : producer_group(p);
    uint32_t members = e.members ? e.members : 1;
    if (p->eos) {
        ss_debug("router %s: '%s' sent its end of stream again", r->name,
                 p->label);
        goto confirm;
    }
    group *g = group_get(r, gname);
    if (!g) {
        if (r->ngroups >= r->producers) {
            fail(r, SS_EPROTO,
                 "end of stream from '%s' opens producer group '%s' but "
                 "this router expects %u group%s (--producers)",
                 p->label, gname, r->producers,
                 r->producers == 1 ? "" : "s");
            goto out;
        }
        group *v = realloc(r->groups, (r->ngroups + 1) * sizeof *v);
        if (!v) {
            fail(r, SS_ENOMEM, "out of memory adding a producer group");
            goto out;
        }
        r->groups = v;
        g = &r->groups[r->ngroups++];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "%s", gname);
        g->members = members;
        if (e.nroster &&
            (g->roster = calloc(e.nroster, sizeof *g->roster))) {
            for (size_t k = 0; k < e.nroster; k++)
                snprintf(g->roster[k], SS_PROTO_NAME_MAX, "%s",
                         e.roster[k]);
            g->nroster = e.nroster;
        }
    } else if (g->members != members) {
        fail(r, SS_EPROTO,
             "producers of group '%s' disagree on its size: %u, but '%s' "
             "says %u",
             g->name, g->members, p->label, members);
        goto out;
    }
    if (g->n >= g->members) {
        fail(r, SS_EPROTO,
             "group '%s' has %u members but '%s' is one more to end its "
             "stream",
             g->name, g->members, p->label);
        goto out;
    }
    void *names = realloc(g->names, (g->n + 1) * sizeof *g->names);
    if (!names) {
        fail(r, SS_ENOMEM, "out of memory adding a producer group");
        goto out;
    }
    g->names = names;
    snprintf(g->names[g->n++], SS_PROTO_NAME_MAX, "%s", p->label);
    uint32_t sid = 0;
    rc = ss_eos_merge(&r->merged, &e, &sid, &why);
    if (rc == SS_EINTEGRITY) {
        const ss_eos_stream *a = ss_eos_find(&r->merged, sid);
        const ss_eos_stream *b = ss_eos_find(&e, sid);
        fail(r, SS_EINTEGRITY,
             "stream %u is declared with %llu batches by '%s' but with %llu "
             "by another producer",
             sid, b ? (unsigned long long)b->count : 0ull, p->label,
             a ? (unsigned long long)a->count : 0ull);
        goto out;
    }
    if (rc) {
        fail(r, SS_ENOMEM, "out of memory merging stream tables");
        goto out;
    }
    p->eos = 1;
    ss_info("router %s: end of stream from '%s' (group %s: %zu of %u; %zu "
            "stream%s)",
            r->name, p->label, g->name, g->n, g->members, e.nstreams,
            e.nstreams == 1 ? "" : "s");
confirm:
    flush_received(r, p); /* its batches' confirmations first */
    if (ss_proto_received(&r->out, h) == 0)
        send_out(r, r->front, p);
out:
    ss_eos_release(&e);
}

/* A peer sent ABORT: it failed and says why. A producer's failure (or
 * one it passes on from further upstream) ends the run here too, and
 * the ABORT goes on to every peer, so that it travels downstream. On
 * BACK, a stateless worker's end is a loss like any other (its batches
 * go to its siblings); a stateful worker's ends the run. */
/* ---- barrier alignment (checkpoints) ------------------------------------
 *
 * Flink's aligned checkpoints. A producer sends BARRIER (epoch e) between
 * two batches: what it sent before belongs to the checkpoint, what it
 * sends after does not. From then on the producer is blocked: its DATA,
 * EOS and later barriers wait in its `held` list (not confirmed with
 * RECEIVED, so its window pushes back), until every producer that can
 * still send has sent a barrier of epoch >= e (its barrier reached the
 * router, or it ended, or it was lost). The router then queues one
 * BARRIER of epoch e behind every batch accepted before, which leaves to
 * every live worker once those batches were dealt, and takes the held
 * messages in their order. Epochs of one producer must grow; a barrier of
 * an epoch already aligned is refused. Alignment waits until each group
 * a producer announced in its HELLO has all its members: a source part
 * that did not say HELLO yet may still send batches before the barrier.
 */

static int producer_blocked(const ss_router *r, const peer *p)
{
    return p->barrier > r->epoch;
}

/* Do the producers that said HELLO make up every group, each with all of
 * its members (their HELLO's `members`), and --producers groups? */
static int groups_joined(const ss_router *r)
{
    unsigned ngroups = 0;
    for (size_t i = 0; i < r->prod.n; i++) {
        const peer *p = r->prod.v[i];
        const char *g = producer_group(p);
        size_t first = i, have = 0;
        for (size_t k = 0; k < r->prod.n; k++)
            if (strcmp(producer_group(r->prod.v[k]), g) == 0) {
                if (k < first)
                    first = k;
                have++;
            }
        if (first != i)
            continue; /* the group was counted at its first member */
        ngroups++;
        if (have < (p->hello.members ? p->hello.members : 1))
            return 0;
    }
    return ngroups >= (r->producers ? r->producers : 1);
}

static void front_data(ss_router *r, peer *p, const ss_hdr *h,
                       zmq_msg_t *body);
static void front_eos(ss_router *r, peer *p, const ss_hdr *h,
                      const uint8_t *payload);
static void front_barrier(ss_router *r, peer *p, const ss_hdr *h);

/* Keeps a message of blocked producer p for after the alignment. */
static void hold(ss_router *r, peer *p, const ss_hdr *h, zmq_msg_t *body)
{
    if (p->nheld >= HELD_MAX) {
        fail(r, SS_EPEER, "producer '%s' sent %d messages after its "
             "barrier %u without waiting for them to be confirmed (its "
             "window)", p->label, HELD_MAX, p->barrier);
        return;
    }
    /* in bytes too: a window of frames of at most max_frame each. A
     * producer that sent a barrier no one else would reach and then
     * 4096 frames of 4 MiB had the router hold 16 GiB */
    uint64_t sz = (uint64_t)zmq_msg_size(body);
    if (p->held_bytes + sz > HELD_FRAMES * r->max_frame) {
        fail(r, SS_EPEER, "producer '%s' sent more than %llu bytes after "
             "its barrier %u without waiting for them to be confirmed "
             "(its window: %d frames of at most %llu bytes)", p->label,
             (unsigned long long)(HELD_FRAMES * r->max_frame), p->barrier,
             HELD_FRAMES, (unsigned long long)r->max_frame);
        return;
    }
    if (p->nheld == p->capheld) {
        size_t cap = p->capheld ? 2 * p->capheld : 16;
        item *v = malloc(cap * sizeof *v);
        if (!v) {
            fail(r, SS_ENOMEM, "out of memory holding a batch of '%s'",
                 p->label);
            return;
        }
        for (size_t i = 0; i < p->nheld; i++) {
            item_move(&v[i], &p->held[i]);
            zmq_msg_close(&p->held[i].msg);
        }
        free(p->held);
        p->held = v;
        p->capheld = cap;
    }
    item *it = &p->held[p->nheld++];
    it->h = *h;
    p->held_bytes += sz;
    zmq_msg_init(&it->msg);
    zmq_msg_move(&it->msg, body);
}

/* Takes p's held messages in order, until it is blocked again. */
static void release_held(ss_router *r, peer *p)
{
    size_t i = 0;
    for (; i < p->nheld && !r->rc && !producer_blocked(r, p); i++) {
        item *it = &p->held[i];
        if (it->h.kind == SS_MSG_DATA)
            front_data(r, p, &it->h, &it->msg);
        else if (it->h.kind == SS_MSG_EOS)
            front_eos(r, p, &it->h,
                      (const uint8_t *)zmq_msg_data(&it->msg) + SS_HDR_SIZE);
        else
            front_barrier(r, p, &it->h);
        zmq_msg_close(&it->msg);
    }
    if (i == 0)
        return; /* nothing taken (moving an item onto itself empties it) */
    for (size_t k = 0; k < i; k++)
        p->held_bytes -= SS_HDR_SIZE + (uint64_t)p->held[k].h.len;
    for (size_t k = i; k < p->nheld; k++) {
        item_move(&p->held[k - i], &p->held[k]);
        zmq_msg_close(&p->held[k].msg);
    }
    p->nheld -= i;
}

/* Aligns every epoch whose barrier came from each producer that can
 * still send (see above): queues its BARRIER and releases what waited. */
static void align(ss_router *r)
{
    if (r->aligning)
        return;
    r->aligning = 1;
    while (!r->rc) {
        uint32_t next = 0;
        int ready = 1;
        for (size_t i = 0; i < r->prod.n && ready; i++) {
            const peer *p = r->prod.v[i];
            if (p->refused || p->lost || (p->eos && !producer_blocked(r, p)))
                continue;
            if (!producer_blocked(r, p))
                ready = 0;
            else if (!next || p->barrier < next)
                next = p->barrier;
        }
        if (!ready || !next || !groups_joined(r))
            break;
        ss_hdr b = {.kind = SS_MSG_BARRIER, .epoch = next};
        item it = {.h = b};
        if (ss_proto_build(&r->out, &b, NULL, 0) != 0) {
            fail(r, SS_ENOMEM, "out of memory building barrier %u", next);
            break;
        }
        stamp_out(r);
        zmq_msg_init_size(&it.msg, r->out.len);
        memcpy(zmq_msg_data(&it.msg), r->out.data, r->out.len);
        int pushed = q_push(&r->q, &it, 0);
        zmq_msg_close(&it.msg);
        if (pushed) {
            fail(r, SS_ENOMEM, "out of memory queueing barrier %u", next);
            break;
        }
        r->epoch = next;
        r->st.epoch = next;
        ss_debug("router %s: barrier %u aligned", r->name, next);
        for (size_t i = 0; i < r->prod.n && !r->rc; i++)
            release_held(r, r->prod.v[i]);
    }
    r->aligning = 0;
}

/* BARRIER from producer p (not blocked): see "barrier alignment". */
static void front_barrier(ss_router *r, peer *p, const ss_hdr *h)
{
    char why[160];
    if (h->len != 0 || h->epoch == 0)
        snprintf(why, sizeof why, "a barrier has epoch 1 or more and no "
                 "payload");
    else if (p->eos)
        snprintf(why, sizeof why, "a barrier after its end of stream");
    else if (h->epoch <= p->barrier || h->epoch <= r->epoch)
        snprintf(why, sizeof why, "barrier epoch %u is not above the last "
                 "one (%u; aligned here: %u): stale or replayed", h->epoch,
                 p->barrier, r->epoch);
    else
        why[0] = '\0';
    if (why[0]) {
        reject(r, p->label, "barrier message", why);
        return;
    }
    p->barrier = h->epoch;
    r->st.barriers_in++;
    align(r);
}

static void peer_aborted(ss_router *r, peer *p, const ss_hdr *h,
                         const uint8_t *payload, int back)
{
    char reason[SS_PROTO_REASON_MAX];
    const char *why;
    if (ss_proto_abort_parse(payload, h->len, reason, sizeof reason, &why))
        snprintf(reason, sizeof reason, "(unreadable reason: %s)", why);
    if (back && !p->hello.stateful) {
        char lost[SS_PROTO_REASON_MAX + 16];
        snprintf(lost, sizeof lost, "it aborted: %s", reason);
        worker_lost(r, p, lost);
        return;
    }
    if (!back && !p->hello.stateful && strcmp(p->hello.role, "worker") == 0) {
        /* a stateless worker's end is a loss like its death (see
         * producer_lost): its siblings, upstream, have its batches. If
         * the run failed upstream, they all abort and check_orphaned
         * ends the run here, with this reason. */
        snprintf(r->last_abort, sizeof r->last_abort, "%s", reason);
        if (!p->eos && !p->lost) {
            p->gone = p->lost = 1;
            r->st.producers_lost++;
        }
        ss_warn("router %s: producer '%s' of stage %s aborted (%s); its "
                "stage is stateless, so group %s completes without it",
                r->name, p->label, p->hello.stage, reason,
                producer_group(p));
        return;
    }
    fail(r, SS_EPEER, "%s '%s' aborted: %s", back ? "worker" : "producer",
         p->label, reason);
}

static void on_front(ss_router *r, const uint8_t *id, size_t idlen,
                     zmq_msg_t *body)
{
    peer *p = peers_find(&r->prod, id, idlen);
    char label[SS_PROTO_NAME_MAX];
    id_label(id, idlen, label, sizeof label);
    const uint8_t *d = zmq_msg_data(body);
    ss_hdr h;
    const char *why;
    if (ss_hdr_decode(d, zmq_msg_size(body), &h, &why)) {
        int v = ss_hdr_version(d, zmq_msg_size(body));
        if (v > 0 && v != SS_WIRE_VERSION) { /* answered in its layout */
            reject(r, label, "malformed message", why);
            version_abort(r, r->front, id, idlen, label, d,
                          zmq_msg_size(body));
        } else {
            refuse(r, r->front, id, idlen, label, "malformed message", why);
        }
        return;
    }
    if (!check_origin(r, r->front, p, id, idlen, label, &h))
        return;
    char what[32];
    snprintf(what, sizeof what, "%s message", ss_msg_kind_name(h.kind));
    if (too_big(r, r->front, id, idlen, label, what, &h))
        return;
    if (!p && h.kind == SS_MSG_ABORT) { /* never answer an ABORT */
        reject(r, label, what, "it never said hello");
        return;
    }
    if (!p && h.kind != SS_MSG_HELLO) {
        refuse(r, r->front, id, idlen, label, what,
               "it never said hello (HELLO must come first)");
        return;
    }
    if (p && p->refused) {
        reject(r, label, what, "it was refused earlier in this run");
        return;
    }
    if (p && p->lost) { /* it talks: it counts again, EOS and all */
        p->lost = 0;
        r->st.producers_lost--;
        ss_info("router %s: producer '%s' is back", r->name, p->label);
    }
    if (p && producer_blocked(r, p) &&
        (h.kind == SS_MSG_DATA || h.kind == SS_MSG_EOS ||
         h.kind == SS_MSG_BARRIER)) {
        hold(r, p, &h, body); /* after the alignment of its barrier */
        p->last_seen = ss_now_ms();
        p->gone = 0;
        return;
    }
    switch (h.kind) {
    case SS_MSG_HELLO:
        front_hello(r, id, idlen, p, &h, d + SS_HDR_SIZE, label);
        break;
    case SS_MSG_DATA:
        front_data(r, p, &h, body);
        break;
    case SS_MSG_BARRIER:
        front_barrier(r, p, &h);
        break;
    case SS_MSG_EOS:
        front_eos(r, p, &h, d + SS_HDR_SIZE);
        break;
    case SS_MSG_HEARTBEAT:
        break;
    case SS_MSG_ABORT:
        peer_aborted(r, p, &h, d + SS_HDR_SIZE, 0);
        return;
    default:
        refuse(r, r->front, id, idlen, label, what,
               "producers may not send this kind");
        return;
    }
    if ((p = peers_find(&r->prod, id, idlen))) {
        p->last_seen = ss_now_ms();
        p->gone = 0;
    }
}

/* Handles a producer that is disconnected and was silent for a peer
 * timeout, before its end of stream: it is dead (a live producer busy in
 * a long computation stays connected, and is waited for).
 *
 * A stateless worker may go: it acknowledged its inputs upstream only
 * once this router confirmed their outputs, so what it leaves behind is
 * either here already or redelivered to a sibling upstream. Its group
 * completes without its EOS (all_eos), and verify() still checks every
 * declared batch. It is counted back in if it talks again.
 *
 * A source or a stateful worker takes data that exists nowhere else: the
 * run fails, naming it. */
static void producer_lost(ss_router *r, peer *p, uint64_t silent_ms)
{
    if (!p->gone || p->refused)
        return;
    p->lost = 1;
    r->st.producers_lost++;
    if (strcmp(p->hello.role, "worker") == 0 && !p->hello.stateful) {
        ss_warn("router %s: producer '%s' of stage %s went away before its "
                "end of stream (disconnected, silent for %llu ms); its "
                "stage is stateless, so group %s completes without it",
                r->name, p->label, p->hello.stage,
                (unsigned long long)silent_ms, producer_group(p));
        return;
    }
    fail(r, SS_EPEER,
         "%s %s of stage %s disconnected before its end of stream; what "
         "it had not sent is lost%s",
         strcmp(p->hello.role, "source") == 0 ? "source" : "producer",
         p->hello.name, p->hello.stage,
         p->hello.stateful ? " (stateful stages cannot be retried)" : "");
}

/* ---- BACK: workers ---------------------------------------------------- */

static void back_hello(ss_router *r, const uint8_t *id, size_t idlen,
                       peer *w, const ss_hdr *h, const uint8_t *payload,
                       const char *label)
{
    ss_hello he;
    const char *why;
    if (ss_proto_hello_parse(payload, h->len, &he, &why)) {
        refuse(r, r->back, id, idlen, label, "malformed hello", why);
        return;
    }
    if (strcmp(he.role, "source") == 0) {
        refuse(r, r->back, id, idlen, label, "hello message",
               "a source cannot take from a router's back");
        return;
    }
    if (!hello_ok(r, r->back, id, idlen, label, &he))
        return;
    if (!w && r->work.n >= SS_ROUTER_PEERS_MAX) {
        refuse(r, r->back, id, idlen, label, "hello message",
               "too many workers (the limit is 4096)");
        return;
    }
    if (r->nslots && !keyed_hello(r, id, idlen, &he, label))
        return;
    int quiet = 0; /* a peer repeating HELLO must not flood the log */
    if (w) {
        int fresh = w->ninflight == 0 && !w->hello.stateful;
        r->rehellos++;
        quiet = r->rehellos > WARN_FIRST && r->rehellos % 1000 != 0;
        if (fresh && !quiet)
            ss_info("router %s: worker '%s' said hello again%s", r->name,
                    w->label,
                    r->rehellos == WARN_FIRST ? " (logging every 1000th "
                                                "repeated hello from now on)"
                                              : "");
        if (fresh) { /* nothing to redeliver, no state: start over */
            peers_remove(&r->work, w);
            if (r->rr >= r->work.n)
                r->rr = 0;
        } else if (worker_lost(r, w, "it said hello again")) {
            return;
        }
    }
    if (!(w = peers_add(&r->work, id, idlen))) {
        fail(r, SS_ENOMEM, "out of memory adding worker '%s'", label);
        return;
    }
    w->hello = he;
    if (r->nslots) {
        w->slot = he.index;
        r->slot_lost[he.index - 1] = 0; /* its key groups come back */
    }
    w->max_credits = he.credits ? he.credits : 1;
    w->credits = w->max_credits;
    w->last_seen = w->last_sent = ss_now_ms();
    if (!quiet)
        ss_info("router %s: %s '%s' of stage %s joined with %u credit%s%s",
                r->name, he.role, w->label, he.stage, w->credits,
                w->credits == 1 ? "" : "s",
                he.stateful ? " (stateful)" : "");
    ss_welcome wl = {.heartbeat_ms = (uint32_t)r->hb,
                     .peer_timeout_ms = (uint32_t)r->ptimeout};
    snprintf(wl.router, sizeof wl.router, "%s", r->name);
    if (ss_proto_welcome(&r->out, &wl) == 0)
        send_out(r, r->back, w);
}

/* Forgets the batch with lineage *v that w holds; 1, or 0 (rejected) if
 * w does not hold it. */
static int credit_one(ss_router *r, peer *w, const ss_lineage *v)
{
    for (size_t i = 0; i < w->ninflight; i++) {
        if (!ss_proto_is_lineage(&w->inflight[i].h, v))
            continue;
        zmq_msg_close(&w->inflight[i].msg);
        w->ninflight--;
        if (i != w->ninflight)
            item_move(&w->inflight[i], &w->inflight[w->ninflight]);
        r->st.acked++;
        w->last_progress = ss_now_ms();
        w->stall_warned = 0;
        return 1;
    }
    char why[128];
    snprintf(why, sizeof why,
             "acknowledges batch %u/%llu/%u, which it does not hold",
             v->stream, (unsigned long long)v->seq, v->part);
    reject(r, w->label, "credit message", why);
    return 0;
}

static void back_credit(ss_router *r, peer *w, const ss_hdr *h,
                        const uint8_t *payload)
{
    const char *why;
    int n = ss_proto_acks_parse(h, payload, h->len, r->acks,
                                SS_PROTO_ACKS_MAX, &why);
    if (n < 0) {
        reject(r, w->label, "malformed credit message", why);
        return;
    }
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += credit_one(r, w, &r->acks[i]);
    if (!ok)
        return;
    /* aux credits back (default: one per batch), never more than room */
    uint64_t c = (uint64_t)w->credits + (h->aux ? h->aux : (uint64_t)ok);
    uint64_t room = w->max_credits - w->ninflight;
    w->credits = (uint32_t)(c < room ? c : room);
}

static void on_back(ss_router *r, const uint8_t *id, size_t idlen,
                    zmq_msg_t *body)
{
    peer *w = peers_find(&r->work, id, idlen);
    char label[SS_PROTO_NAME_MAX];
    id_label(id, idlen, label, sizeof label);
    const uint8_t *d = zmq_msg_data(body);
    ss_hdr h;
    const char *why;
    if (ss_hdr_decode(d, zmq_msg_size(body), &h, &why)) {
        int v = ss_hdr_version(d, zmq_msg_size(body));
        if (v > 0 && v != SS_WIRE_VERSION) { /* answered in its layout */
            reject(r, label, "malformed message", why);
            version_abort(r, r->back, id, idlen, label, d,
                          zmq_msg_size(body));
        } else {
            refuse(r, r->back, id, idlen, label, "malformed message", why);
        }
        return;
    }
    if (!check_origin(r, r->back, w, id, idlen, label, &h))
        return;
    char what[32];
    snprintf(what, sizeof what, "%s message", ss_msg_kind_name(h.kind));
    if (too_big(r, r->back, id, idlen, label, what, &h))
        return;
    if (!w && h.kind != SS_MSG_HELLO) {
        reject(r, label, what,
               "it never said hello, or was counted as lost");
        if (h.kind != SS_MSG_ABORT) { /* never answer an ABORT */
            char reason[SS_PROTO_REASON_MAX];
            snprintf(reason, sizeof reason,
                     "router %s does not know worker '%s' (it was lost or "
                     "never said hello); its batches went to other workers",
                     r->name, label);
            if (ss_proto_abort(&r->out, reason) == 0) {
                stamp_out(r);
                send_id(r->back, id, idlen, r->out.data, r->out.len);
            }
        }
        return;
    }
    switch (h.kind) {
    case SS_MSG_HELLO:
        back_hello(r, id, idlen, w, &h, d + SS_HDR_SIZE, label);
        break;
    case SS_MSG_CREDIT:
        back_credit(r, w, &h, d + SS_HDR_SIZE);
        break;
    case SS_MSG_HEARTBEAT:
        break;
    case SS_MSG_ABORT:
        peer_aborted(r, w, &h, d + SS_HDR_SIZE, 1);
        return;
    default:
        refuse(r, r->back, id, idlen, label, what,
               "workers may not send this kind");
        return;
    }
    if ((w = peers_find(&r->work, id, idlen))) {
        w->last_seen = ss_now_ms();
        w->gone = 0;
    }
}

/* Whether FRONT is read: the queue holds fewer than --queue batches and
 * fewer than queue_bytes bytes (one batch may take it past: at most
 * SS_BATCH_MAX_SIZE more). */
static int front_open(const ss_router *r)
{
    return r->q.n < r->qmax && r->q.bytes < r->qbytes_max;
}

/* Reads up to DRAIN_MAX messages from one socket (FRONT only while the
 * queue has room) without waiting. Returns 1 if it stopped at DRAIN_MAX
 * (more may be waiting), else 0: the socket is empty, or FRONT is not
 * read for now. */
static int drain(ss_router *r, void *sock, int back)
{
    int i;
    for (i = 0; i < DRAIN_MAX && !r->rc; i++) {
        if (!back && !front_open(r))
            break;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
            r->drained_at[back] = errno == EAGAIN ? tl_sends + 1 : 0;
            zmq_msg_close(&id);
            break;
        }
        r->drained_at[back] = 0;
        zmq_msg_init(&body);
        if (!zmq_msg_more(&id) || zmq_msg_recv(&body, sock, 0) < 0) {
            char label[SS_PROTO_NAME_MAX];
            id_label(zmq_msg_data(&id), zmq_msg_size(&id), label,
                     sizeof label);
            reject(r, label, "malformed message", "empty message");
        } else if (zmq_msg_more(&body)) {
            char label[SS_PROTO_NAME_MAX];
            id_label(zmq_msg_data(&id), zmq_msg_size(&id), label,
                     sizeof label);
            while (zmq_msg_more(&body) &&
                   zmq_msg_recv(&body, sock, 0) >= 0)
                ;
            refuse(r, sock, zmq_msg_data(&id), zmq_msg_size(&id), label,
                   "malformed message",
                   "multipart message (one frame expected)");
        } else if (back) {
            on_back(r, zmq_msg_data(&id), zmq_msg_size(&id), &body);
        } else {
            on_front(r, zmq_msg_data(&id), zmq_msg_size(&id), &body);
        }
        zmq_msg_close(&body);
        zmq_msg_close(&id);
    }
    if (!back)
        flush_all_received(r);
    return i == DRAIN_MAX;
}

/* ---- time ------------------------------------------------------------- */

static void check_orphaned(ss_router *r, uint64_t now);

/*
 * Fails the run when batches wait and no worker is left, for the stall
 * limit, after at least one was lost (before any loss, workers may still
 * be starting: components start in any order). The producers would
 * otherwise wait forever behind a full queue.
 */
static void check_workerless(ss_router *r, uint64_t now)
{
    if (r->work.n > 0 || r->st.workers_lost == 0 || r->q.n == 0) {
        r->workerless = 0;
        return;
    }
    if (!r->workerless) {
        r->workerless = now ? now : 1;
        ss_warn("router %s: no worker is left (the last, '%s', was lost) "
                "and %zu batch%s wait; waiting %llu ms for one to join",
                r->name, r->last_lost, r->q.n, r->q.n == 1 ? "" : "es",
                (unsigned long long)r->stall);
        return;
    }
    if (now - r->workerless < r->stall)
        return;
    fail(r, SS_EPEER,
         "no worker left: the last, '%s', was lost, and none joined within "
         "%llu ms (--stall-ms) while %zu batch%s waited",
         r->last_lost, (unsigned long long)r->stall, r->q.n,
         r->q.n == 1 ? "" : "es");
}

/*
 * A worker that holds batches and acknowledges none for the stall limit
 * (stall_ms, default 6 peer timeouts), while it keeps heartbeating, is
 * treated as lost: it may have taken every batch with a large credit and
 * never work on them (a hostile or broken peer), and the run would wait
 * forever. It is warned about at half the limit. A stateless worker's
 * batches go to the others (and it gets ABORT when it talks again); a
 * stateful one's loss ends the run, naming it. A user function that
 * really takes longer than the limit on one batch needs a larger
 * --stall-ms.
 */
static void check_stalled(ss_router *r, peer *w, uint64_t now)
{
    if (w->ninflight == 0 || now - w->last_progress < r->stall / 2)
        return;
    uint64_t idle = now - w->last_progress;
    if (idle < r->stall) {
        if (!w->stall_warned)
            ss_warn("router %s: worker '%s' holds %zu batch%s and has "
                    "acknowledged none for %llu ms, though it heartbeats; "
                    "it is counted as lost at %llu ms",
                    r->name, w->label, w->ninflight,
                    w->ninflight == 1 ? "" : "es", (unsigned long long)idle,
                    (unsigned long long)r->stall);
        w->stall_warned = 1;
        return;
    }
    char why[128];
    snprintf(why, sizeof why,
             "it held %zu batch%s without acknowledging any for %llu ms "
             "(--stall-ms)",
             w->ninflight, w->ninflight == 1 ? "" : "es",
             (unsigned long long)idle);
    char reason[SS_PROTO_REASON_MAX];
    snprintf(reason, sizeof reason, "router %s counts worker '%s' as lost: %s",
             r->name, w->label, why);
    if (ss_proto_abort(&r->out, reason) == 0) /* it is there: tell it */
        send_out(r, r->back, w);
    worker_lost(r, w, why);
}

/*
 * Frees the records of producers that are gone (disconnected and silent
 * for a peer timeout) and count for nothing any more, so that a churn of
 * producer names (restarted containers get new ones) keeps the router's
 * memory flat and never reaches SS_ROUTER_PEERS_MAX: one that sent its EOS
 * (its group keeps its name), one refused for the rest of the run, and a
 * lost one (gone before its EOS) when its group has LOST_KEPT lost
 * members seen more recently, or as many as the group has members if
 * that is more: all_eos counts at most that many, and check_orphaned
 * names the last ones. If a forgotten producer talks again, it is a
 * stranger: it must say HELLO first.
 */
static void forget_gone(ss_router *r, uint64_t now)
{
    for (size_t i = r->prod.n; i-- > 0;) {
        peer *p = r->prod.v[i];
        if (!p->gone || p->nacks ||
            now - p->last_seen <= (uint64_t)r->ptimeout)
            continue;
        int forget = p->eos || p->refused;
        if (!forget && p->lost) {
            uint32_t newer = 0, keep = p->hello.members > LOST_KEPT
                                           ? p->hello.members
                                           : LOST_KEPT;
            for (size_t j = r->prod.n; j-- > 0 && newer < keep;) {
                const peer *q = r->prod.v[j]; /* the newest first */
                newer += q != p && q->lost && q->last_seen >= p->last_seen &&
                         strcmp(producer_group(q), producer_group(p)) == 0;
            }
            forget = newer >= keep;
        }
        if (forget) {
            ss_debug("router %s: forgot producer '%s' (gone)", r->name,
                     p->label);
            peers_remove(&r->prod, p);
        }
    }
}

/* Declares silent workers lost and heartbeats idle peers. */
static void housekeeping(ss_router *r, uint64_t now)
{
    for (size_t i = r->work.n; i-- > 0 && !r->rc;) {
        peer *w = r->work.v[i];
        if (now - w->last_seen <= (uint64_t)r->ptimeout) {
            check_stalled(r, w, now);
            continue;
        }
        char why[64];
        snprintf(why, sizeof why, "silent for %llu ms",
                 (unsigned long long)(now - w->last_seen));
        worker_lost(r, w, why);
    }
    if (r->rc || ss_proto_heartbeat(&r->out))
        return;
    for (size_t i = r->work.n; i-- > 0 && !r->rc;) {
        peer *w = r->work.v[i];
        if (now - w->last_sent >= (uint64_t)r->hb &&
            send_out(r, r->back, w) == -EHOSTUNREACH) {
            worker_lost(r, w, "disconnected");
            if (!r->rc && ss_proto_heartbeat(&r->out))
                return;
        }
    }
    if (r->rc)
        return;
    for (size_t i = 0; i < r->prod.n; i++) {
        peer *p = r->prod.v[i];
        if (!p->gone && now - p->last_sent >= (uint64_t)r->hb)
            send_out(r, r->front, p);
    }
    for (size_t i = 0; i < r->prod.n && !r->rc; i++) {
        peer *p = r->prod.v[i];
        if (!p->eos && !p->lost &&
            now - p->last_seen > (uint64_t)r->ptimeout)
            producer_lost(r, p, now - p->last_seen);
    }
    if (!r->rc)
        forget_gone(r, now);
    if (!r->rc)
        check_orphaned(r, now);
    if (!r->rc)
        check_workerless(r, now);
}

static void update_gauges(ss_router *r)
{
    uint32_t inflight = 0, credits = 0;
    for (size_t i = 0; i < r->work.n; i++) {
        inflight += (uint32_t)r->work.v[i]->ninflight;
        credits += r->work.v[i]->credits;
    }
    r->st.queue_depth = (uint32_t)r->q.n;
    r->st.inflight = inflight;
    r->st.credits = credits;
    r->st.workers = (uint32_t)r->work.n;
    r->st.producers = (uint32_t)r->prod.n;
}

/* ---- completion ------------------------------------------------------- */

/* Whether every producer group has ended: each member sent its EOS or,
 * for stateless workers, went away (producer_lost). */
/* Whether name is a member of g: in the roster its first EOS carried
 * (the live workers of its stage when the router upstream completed), or
 * any name when none was given. A worker lost before that EOS is not in
 * the roster, so its members count leaves it out already: it must not
 * count as an ended member too (the group would complete before a live
 * member's EOS). */
static int in_roster(const group *g, const char *name)
{
    if (!g->nroster)
        return 1;
    for (size_t i = 0; i < g->nroster; i++)
        if (strcmp(g->roster[i], name) == 0)
            return 1;
    return 0;
}

static int all_eos(const ss_router *r)
{
    if (r->ngroups != r->producers)
        return 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const group *g = &r->groups[i];
        size_t ended = g->n;
        for (size_t j = 0; j < r->prod.n && ended < g->members; j++) {
            const peer *p = r->prod.v[j];
            if (p->lost && strcmp(producer_group(p), g->name) == 0 &&
                in_roster(g, p->label))
                ended++;
        }
        if (ended < g->members)
            return 0;
    }
    return 1;
}

/*
 * Fails the run when its end of stream can never come: some producer went
 * away before its EOS and no producer is left that could still send one
 * (every other one ended or went away too), yet the groups are not
 * complete (a group exists only once one of its members sent EOS, so a
 * group whose members all died never does). A producer gets one peer
 * timeout to come back (a restarted worker says HELLO again). Without
 * any loss, the router keeps waiting for producers that have not said
 * HELLO yet: components may start in any order.
 */
static void check_orphaned(ss_router *r, uint64_t now)
{
    size_t nlost = 0;
    for (size_t i = 0; i < r->prod.n; i++) {
        const peer *p = r->prod.v[i];
        if (!p->eos && !p->lost) { /* it may still end its stream */
            r->orphaned = 0;
            return;
        }
        nlost += p->lost != 0;
    }
    if (!nlost || all_eos(r)) {
        r->orphaned = 0;
        return;
    }
    if (!r->orphaned) {
        r->orphaned = now ? now : 1;
        ss_warn("router %s: no producer is left to end the stream (%zu "
                "went away before their end of stream); waiting %d ms for "
                "one to come back",
                r->name, nlost, r->ptimeout);
        return;
    }
    if (now - r->orphaned < (uint64_t)r->ptimeout)
        return;
    char names[SS_PROTO_REASON_MAX / 2] = "";
    size_t o = 0;
    for (size_t i = 0; i < r->prod.n && o < sizeof names; i++) {
        const peer *p = r->prod.v[i];
        if (p->lost)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s'%s'",
                                  o ? ", " : "", p->label);
    }
    fail(r, SS_EPEER,
         "the end of stream can never come: %s went away before %s end of "
         "stream and no producer came back within %d ms (%zu of %u "
         "producer group%s ended)%s%s",
         names, nlost == 1 ? "its" : "their", r->ptimeout,
         r->ngroups, r->producers, r->producers == 1 ? "" : "s",
         r->last_abort[0] ? "; the last to abort said: " : "",
         r->last_abort);
}

/* Checks that every declared batch arrived and nothing undeclared did.
 * Returns 0 or fails the run. */
static int verify(ss_router *r)
{
    for (size_t i = 0; i < r->merged.nstreams; i++) {
        const ss_eos_stream *row = &r->merged.streams[i];
        strack *st = strack_find(r, row->stream);
        uint64_t miss = first_missing(st, row->count);
        if (miss < row->count)
            return fail(r, SS_EINTEGRITY,
                        "stream %u is incomplete: batch %llu is missing "
                        "(%sits end of stream declares %llu batches)",
                        row->stream, (unsigned long long)miss,
                        split_find(r, row->stream, miss)
                            ? "only some of its parts arrived; "
                            : "",
                        (unsigned long long)row->count);
        if (st && st->hi > row->count)
            return fail(r, SS_EINTEGRITY,
                        "stream %u: batch %llu arrived but its end of "
                        "stream declares only %llu batches",
                        row->stream, (unsigned long long)(st->hi - 1),
                        (unsigned long long)row->count);
    }
    for (size_t i = 0; i < r->nstreams; i++)
        if (!ss_eos_find(&r->merged, r->streams[i].id))
            return fail(r, SS_EINTEGRITY,
                        "stream %u: batches arrived but no end of stream "
                        "declares the stream",
                        r->streams[i].id);
    return 0;
}

/* Sends EOS to every live worker if the run is complete. Returns 1 when
 * the router is done (or failed), 0 to keep going. */
static int maybe_complete(ss_router *r)
{
    if (!all_eos(r) || r->q.n > 0 || r->work.n == 0)
        return 0;
    for (size_t i = 0; i < r->work.n; i++)
        if (r->work.v[i]->ninflight)
            return 0;
    if (verify(r))
        return 1;
    ss_eos e = r->merged; /* shallow: the table is borrowed */
    e.roster = NULL;
    e.nroster = e.caproster = 0;
    snprintf(e.group, sizeof e.group, "%s", r->work.v[0]->hello.stage);
    e.members = (uint32_t)r->work.n;
    int rc = 0;
    for (size_t i = 0; i < r->work.n && !rc; i++) {
        rc = ss_eos_add_roster(&e, r->work.v[i]->hello.name);
        if (strcmp(r->work.v[i]->hello.stage, e.group) != 0)
            ss_warn("router %s: worker '%s' is of stage %s, not %s",
                    r->name, r->work.v[i]->label,
                    r->work.v[i]->hello.stage, e.group);
    }
    if (rc == 0)
        rc = ss_eos_encode(&e, &r->out);
    for (size_t i = 0; i < e.nroster; i++)
        free(e.roster[i]);
    free(e.roster);
    if (rc) {
        fail(r, rc, "cannot build the end of stream: %s", ss_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < r->work.n; i++)
        if (send_out(r, r->back, r->work.v[i]))
            ss_warn("router %s: cannot send the end of stream to '%s': %s",
                    r->name, r->work.v[i]->label, zmq_strerror(errno));
    ss_info("router %s: complete: %llu batches in, %llu sent (%llu "
            "redelivered), %llu duplicates, %llu rejected; end of stream "
            "sent to %zu worker%s",
            r->name, (unsigned long long)r->st.in_batches,
            (unsigned long long)r->st.out_batches,
            (unsigned long long)r->st.redelivered,
            (unsigned long long)r->st.duplicates,
            (unsigned long long)r->st.rejected, r->work.n,
            r->work.n == 1 ? "" : "s");
    r->done = 1;
    return 1;
}

/* ---- life cycle ------------------------------------------------------- */

/* Opens a ROUTER socket bound to ep. maxrt_ms (0: the system's default)
 * closes TCP connections whose sent data stays unacknowledged that long
 * (TCP_USER_TIMEOUT). FRONT uses it: the router sends producers only
 * small control messages (WELCOME, RECEIVED, HEARTBEAT), so a producer's
 * kernel acknowledges them even while the producer is busy (a long
 * onCompleted), and only a producer behind a cut link or a dead host goes
 * unacknowledged: it then counts as disconnected, not only silent, and is
 * lost like one that exited (producer_lost). BACK does not: batches to a
 * busy worker may wait on a full window for long, and silent workers are
 * timed out anyway. */
static void *open_router(void *zctx, const char *ep, int linger,
                         int maxrt_ms, int64_t maxmsg, int hwm,
                         const ss_curve *curve, char *err, size_t errlen)
{
    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    if (!s) {
        ss_errf(err, errlen, "cannot create a socket for %s: %s", ep,
                zmq_strerror(errno));
        return NULL;
    }
    int one = 1;
    /* libzmq drops the connection of a peer whose message is larger:
     * no frame can make the router allocate more than this */
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* ... and holds at most hwm of them per peer, unread (0: libzmq's
     * default): a peer sending faster than the router reads is held by
     * TCP, not in memory */
    if (hwm > 0)
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (maxrt_ms > 0)
        zmq_setsockopt(s, ZMQ_TCP_MAXRT, &maxrt_ms, sizeof maxrt_ms);
    if (curve && ss_curve_apply(s, curve)) {
        ss_errf(err, errlen, "cannot set the CURVE keys for %s: %s", ep,
                zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, ep)) {
        ss_errf(err, errlen, "cannot bind %s: %s%s", ep, zmq_strerror(errno),
                ss_endpoint_hint(ep));
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* See ss_router.h. */
int ss_router_new(void *zctx, const ss_router_opts *o, ss_router **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    const char *name = o->name && *o->name ? o->name : "router";
    if (!o->from || !*o->from || !o->to || !*o->to) {
        ss_errf(err, errlen, "router %s needs both endpoints", name);
        return SS_EINVAL;
    }
    if (strlen(name) >= SS_PROTO_NAME_MAX || strlen(o->from) >= 256 ||
        strlen(o->to) >= 256) {
        ss_errf(err, errlen, "router name or endpoint too long");
        return SS_EINVAL;
    }
    ss_router *r = calloc(1, sizeof *r);
    if (!r) {
        ss_errf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    r->id = ss_name_id(r->name);
    if (o->peers && *o->peers && !(r->allow = strdup(o->peers))) {
        free(r);
        ss_errf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    r->run = o->run;
    r->run_known = o->run != 0;
    snprintf(r->from, sizeof r->from, "%s", o->from);
    snprintf(r->to, sizeof r->to, "%s", o->to);
    r->producers = o->producers ? o->producers : 1;
    r->qmax = o->queue ? o->queue : 64;
    r->qbytes_max = o->queue_bytes ? o->queue_bytes : SS_ROUTER_QUEUE_BYTES;
    r->hb = o->heartbeat_ms > 0 ? o->heartbeat_ms : 500;
    r->tick = o->tick;
    r->tick_arg = o->tick_arg;
    r->ptimeout = o->peer_timeout_ms > 0 ? o->peer_timeout_ms : 5000;
    r->stall = o->stall_ms > 0 ? (uint64_t)o->stall_ms
                               : 6 * (uint64_t)r->ptimeout;
    int linger = o->linger_ms > 0 ? o->linger_ms : 1000;
    if (o->partitions > SS_PARTITIONS) {
        ss_errf(err, errlen, "router %s: --partitions takes 1 to %u, not %u",
                name, SS_PARTITIONS, o->partitions);
        free(r);
        return SS_EINVAL;
    }
    if ((r->nslots = o->partitions)) {
        r->slot_lost = calloc(r->nslots, 1);
        r->kg_events = calloc(SS_PARTITIONS, sizeof *r->kg_events);
        if (!r->slot_lost || !r->kg_events) {
            free(r->slot_lost);
            free(r->kg_events);
            free(r);
            ss_errf(err, errlen, "out of memory");
            return SS_ENOMEM;
        }
    }
    ss_eos_init(&r->merged);
    ss_buf_init(&r->out);
    atomic_init(&r->stop, 0);
    if (o->resume && *o->resume && resume_streams(r, o->resume, err, errlen)) {
        ss_router_destroy(&r);
        return SS_EINVAL;
    }
    if (o->curve &&
        ss_zap_start(zctx, o->curve, &r->zap, err, errlen) != 0) {
        ss_router_destroy(&r);
        return SS_EIO;
    }
    r->max_frame = o->max_frame > 0 && o->max_frame < SS_PROTO_MSG_MAX
                       ? o->max_frame
                       : o->max_frame ? (uint64_t)SS_PROTO_MSG_MAX
                                      : SS_ROUTER_FRAME_DEFAULT;
    r->front = open_router(zctx, o->from, linger, r->ptimeout,
                           (int64_t)r->max_frame, SS_ROUTER_FRONT_HWM,
                           o->curve, err, errlen);
    if (r->front) /* workers send control messages only */
        r->back = open_router(zctx, o->to, linger, 0,
                              SS_HDR_SIZE + SS_PROTO_CTRL_MAX, 0, o->curve,
                              err, errlen);
    if (!r->back) {
        ss_router_destroy(&r);
        return SS_EIO;
    }
    *out = r;
    return 0;
}

/* See ss_router.h. */
int ss_router_run(ss_router *r, char *err, size_t errlen)
{
    ss_info("router %s: producers connect to %s, workers to %s (%s); "
            "waiting for %u producer group%s",
            r->name, r->from, r->to,
            r->zap ? "CurveZMQ" : "no CurveZMQ", r->producers,
            r->producers == 1 ? "" : "s");
    r->next_house = ss_now_ms();
    int more = 1; /* a socket may hold more than the last turn read */
    while (!r->rc && !r->done) {
        if (atomic_load(&r->stop)) {
            fail(r, SS_EINTR, "router %s was stopped by a signal", r->name);
            break;
        }
        align(r); /* a producer that ended or was lost may complete one */
        dispatch(r);
        update_gauges(r);
        if (r->rc || maybe_complete(r))
            break;
        uint64_t now = ss_now_ms();
        if (!more) {
            /* the last turn emptied both sockets: sleep until one has
             * something (FRONT not while the queue is full); no poll at all
             * while messages keep coming faster than one turn reads */
            void *socks[2] = {r->back, front_open(r) ? r->front : NULL};
            int drained[2] = {r->drained_at[1] == tl_sends + 1,
                              r->drained_at[0] == tl_sends + 1};
            int wait = now >= r->next_house ? 0 : (int)(r->next_house - now);
            int due = received_due_in(r);
            if (due >= 0 && due < wait)
                wait = due;
            if (ss_transport_wait_drained(socks, drained, 2, wait) < 0 &&
                errno != EINTR) {
                fail(r, SS_EIO, "cannot poll: %s", zmq_strerror(errno));
                break;
            }
        }
        flush_all_received(r); /* those that came due while waiting */
        more = drain(r, r->back, 1);
        if (!r->rc) {
            dispatch(r); /* credits just came back */
            more |= drain(r, r->front, 0);
        }
        now = ss_now_ms();
        if (now >= r->next_house) {
            housekeeping(r, now);
            int step = r->hb / 2 > 5 ? r->hb / 2 : 5;
            r->next_house = now + (uint64_t)step;
            if (r->tick)
                r->tick(r->tick_arg, &r->st, 0);
        }
    }
    update_gauges(r);
    if (r->tick)
        r->tick(r->tick_arg, &r->st, 1);
    if (r->rc)
        ss_errf(err, errlen, "%s", r->err);
    return r->rc;
}

/* See ss_router.h. */
void ss_router_stop(ss_router *r) { atomic_store(&r->stop, 1); }

/* See ss_router.h. */
const ss_router_stats *ss_router_stats_get(ss_router *r) { return &r->st; }

/* See ss_router.h. */
void ss_router_destroy(ss_router **p)
{
    if (!p || !*p)
        return;
    ss_router *r = *p;
    if (r->front)
        zmq_close(r->front);
    if (r->back)
        zmq_close(r->back);
    ss_zap_stop(&r->zap);
    q_release(&r->q);
    peers_release(&r->prod);
    peers_release(&r->work);
    for (size_t i = 0; i < r->nstreams; i++)
        free(r->streams[i].bits);
    free(r->streams);
    for (size_t i = 0; i < r->nsplits; i++)
        free(r->splits[i].bits);
    free(r->splits);
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i].names);
        free(r->groups[i].roster);
    }
    free(r->groups);
    ss_eos_release(&r->merged);
    free(r->allow);
    ss_buf_release(&r->out);
    free(r->slot_lost);
    free(r->kg_events);
    free(r);
    *p = NULL;
}
