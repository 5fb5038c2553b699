/*
 * ss_source.c - file and stdin injection (ss_source.h).
 */
#include "node/ss_source.h"
#include "node/ss_latlog.h"
#include "core/ss_buf.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_sealfile.h"
#include "lua/ss_lua.h"
#include "net/ss_link.h"
#include "net/ss_peer.h"
#include "net/ss_proto.h"
#include "net/ss_stats_reporter.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_csv.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include <errno.h>
#include <fcntl.h>
#include "lua/ss_lua_api.h"
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

typedef struct ss_source source;

/* Where a part stood when it sent a checkpoint barrier: what a restore
 * needs to resume it, and its own counters then (the acknowledgement
 * sums them over the parts). epoch UINT32_MAX: the part ended. */
typedef struct ckpt_mark {
    uint32_t epoch;
    uint64_t offset; /* byte of the next line, from the file's start */
    uint64_t row;    /* its line number */
    uint64_t seq;    /* the next batch's seq */
    uint64_t lines, bytes, events, out_bytes, batches, rejected;
    uint64_t held; /* the part's reject bytes before it (part.held_total) */
} ckpt_mark;

typedef struct part {
    source *src;
    unsigned index;
    const char *begin, *end; /* the part's bytes (mmap mode) */
    uint64_t first_line;     /* 1-based line number of begin */
    uint64_t nlines;
    ss_link *link;
    uint32_t id;     /* ss_name_id of the part's name: its producer id */
    uint32_t stream; /* the stream it owns: id with the top bit clear */
    ss_buf batch;    /* header + events being built */
    uint32_t count;  /* events in batch */
    uint64_t row;    /* line number of the batch's first event */
    uint64_t seq;
    ss_buf scratch;
    ss_buf sealed;   /* the sealed batch (encrypted, enclave) */
    lua_State *L;    /* jsonl: json.decode */
    ss_buf rejects;
    /* checkpoints: this part's rejects not written yet (under src->lock;
     * see hold_reject), held_total the bytes of rejects it made, of which
     * held_out are in the file */
    ss_buf held;
    uint64_t held_total, held_out;
    int rc;
    char err[512];
    /* checkpoints (o->checkpoint_ms): this part's own counters, the last
     * barrier it sent, and its marks (under src->lock) */
    uint64_t n_lines, n_bytes, n_events, n_out_bytes, n_batches, n_rejected;
    uint32_t epoch;
    unsigned since_check; /* lines since the clock was last read */
    ckpt_mark *marks;
    size_t nmarks, capmarks;
    int ended; /* resumed after its end: sends its end of stream only */
    uint64_t credit;   /* o->rate: rows granted (pace) and not taken yet */
    uint64_t first_ns; /* when the batch's first row was taken */
} part;

struct ss_source {
    const ss_source_opts *o;
    atomic_int stop; /* times ss_source_stop was called */
    atomic_int give_up; /* followed: stopped twice (the wait for the
                           router ends; a first stop ends the stream,
                           which the router must still receive) */
    int ran;
    void *zctx;
    int csv, jsonl;
    int sealed;  /* format sealed: forwards a sealed file, holds no key */
    ss_key *key; /* data key: batches leave sealed (NULL: plain) */
    ss_curve curve; /* CurveZMQ client keys (with key) */
    long expected_fields; /* csv: -1 until known */
    pthread_mutex_t lock; /* rejects file, expected_fields */
    FILE *rejects;
    atomic_ullong lines, events, bytes, batches, rejected, out_bytes;
    atomic_int failed;
    pthread_barrier_t counted;
    part *parts;
    unsigned nparts;
    ss_latlog *lat; /* SS_LATENCY_DIR: when each batch left (ss_latlog.h) */
    /* checkpoints: the file's first byte (offsets count from it), the
     * clock's start, the last epoch acknowledged to the supervisor */
    const char *base;
    uint64_t t0_ms;
    uint32_t acked;
    int unheld; /* held rejects outgrew HELD_MAX: written at once, and the
                   acknowledgements carry no rejects mark any more */
    /* pacing (o->rate, see pace): rows granted over all parts, the
     * schedule's origin in ns (0: not started), rows per grant */
    _Atomic uint64_t granted;
    _Atomic uint64_t pace_t0;
    uint64_t chunk;
};

/* Pacing (o->rate) is a token bucket shared by the parts:
 *
 *   row g (0-based, counted over all parts in the order they take rows)
 *   is due at  t0 + g / rate  (t0: when the first part asked for a row)
 *
 * A part asks for `chunk` rows at a time (about 1 ms of them: one atomic
 * add and one clock read per chunk, never a sleep per row) and takes
 * them at once when their first is due. If it is early, it waits for
 * that time inside ss_link_service, so that the router's confirmations
 * and the heartbeats go on. If it is late (the router held it back, the
 * machine was busy), it does not wait: it catches up at full speed,
 * but by at most PACE_BURST_NS of rows: a part further behind moves t0
 * forward so that it is exactly that far behind (the bucket's capacity).
 * The rate is thus never exceeded over any window longer than the
 * burst, and kept on average however the parts are scheduled.
 *
 * A row does not wait in a partial batch for long: before a part waits,
 * if the row it waits for is due more than linger_ms after the batch's
 * first row was taken, the batch leaves first (linger_ms 0: only full
 * batches). At 10 rows/s, each row leaves alone as it is taken; at 1M
 * rows/s a 64 KiB batch of 100-byte rows fills in 0.65 ms. */
#define PACE_BURST_NS 1000000000ull

/* The most bytes of rejects a source holds back for its checkpoints
 * (hold_reject); beyond, they are written at once. */
#define HELD_MAX (16u << 20)


/* See ss_source.h. */
void ss_source_opts_default(ss_source_opts *o)
{
    memset(o, 0, sizeof *o);
    o->parts = 1;
    o->batch_size = SS_BATCH_DEFAULT_SIZE;
    o->format = "lines";
    o->name = "source";
    o->security = "plain";
    o->window = 16;
    o->connect_timeout_ms = SS_PEER_CONNECT_TIMEOUT_MS;
    o->linger_ms = 200;
    o->rate = 0;
}

/* Writes p's held rejects up to byte upto of all it made (under
 * s->lock). */
static void write_held(part *p, uint64_t upto)
{
    source *s = p->src;
    if (upto <= p->held_out)
        return;
    size_t k = (size_t)(upto - p->held_out);
    if (k > p->held.len)
        k = p->held.len;
    if (k == 0)
        return; /* nothing held: held.data may be NULL (memmove's UB) */
    if (s->rejects)
        fwrite(p->held.data, 1, k, s->rejects);
    memmove(p->held.data, p->held.data + k, p->held.len - k);
    p->held.len -= k;
    p->held_out += k;
}

/* With checkpoints, a part's rejects are held back until the source
 * acknowledges the checkpoint whose barrier the part sent after them
 * (ack_epochs writes them then), so that the rejects file at that
 * acknowledgement holds exactly the rejects of every part before its
 * barrier, in whatever order the parts go; its length is the mark that
 * a resume cuts the file back to (docs/PIPELINE.md, "Restarts"). Under
 * s->lock. Returns 1 when b is held, 0 when it is to be written now (no
 * checkpoints, or HELD_MAX passed: then every part's held rejects are
 * written, and no mark is given any more). */
static int hold_reject(part *p, const ss_buf *b)
{
    source *s = p->src;
    if (!s->o->checkpoint_ms || !s->base || s->unheld)
        return 0;
    size_t total = b->len;
    for (unsigned i = 0; i < s->nparts; i++)
        total += s->parts[i].held.len;
    if (total <= HELD_MAX && ss_buf_append(&p->held, b->data, b->len) == 0) {
        p->held_total += b->len;
        return 1;
    }
    s->unheld = 1;
    ss_warn("%s: more than %u MiB of rejected lines between two "
            "checkpoints: they are written at once, and a resume from a "
            "checkpoint may show some twice in the rejects file",
            s->o->name, HELD_MAX >> 20);
    for (unsigned i = 0; i < s->nparts; i++)
        write_held(&s->parts[i], UINT64_MAX);
    return 0;
}

static void reject(part *p, uint64_t line, const char *why, const char *l,
                   size_t n)
{
    source *s = p->src;
    atomic_fetch_add(&s->rejected, 1);
    p->n_rejected++;
    ss_buf *b = &p->rejects;
    ss_buf_reset(b);
    ss_buf_printf(b, "{\"stage\":\"source\",\"worker\":");
    ss_buf_json_str(b, s->o->name, strlen(s->o->name));
    ss_buf_printf(b, ",\"file\":");
    const char *f = s->o->file ? s->o->file : "-";
    ss_buf_json_str(b, f, strlen(f));
    ss_buf_printf(b, ",\"line\":%llu,\"error\":", (unsigned long long)line);
    ss_buf_json_str(b, why, strlen(why));
    ss_buf_printf(b, ",\"event\":");
    size_t shown = n > 1024 ? 1024 : n; /* enough to find it */
    ss_buf_json_str(b, l, shown);
    if (!ss_utf8_valid(l, shown, NULL)) {
        /* JSON strings hold text: bytes that are not UTF-8 were escaped
         * as code points above, so the exact bytes also go as base64 */
        char b64[sodium_base64_ENCODED_LEN(1024,
                                           sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)l, shown,
                          sodium_base64_VARIANT_ORIGINAL);
        ss_buf_printf(b, ",\"event_base64\":\"%s\"", b64);
    }
    ss_buf_append(b, "}\n", 2);
    unsigned long long nrej = atomic_load(&s->rejected);
    unsigned long long rate = ss_log_rate ? ss_log_rate : 100;
    if (nrej <= 10 || nrej % rate == 0)
        ss_warn("%s line %llu rejected: %s", f, (unsigned long long)line,
                why);
    if (nrej == 10)
        ss_warn("more rejected lines are not shown here: one in %llu is "
                "(LOG_RATE); all of them are in the rejects file", rate);
    pthread_mutex_lock(&s->lock);
    if (!hold_reject(p, b) && s->rejects)
        fwrite(b->data, 1, b->len, s->rejects);
    pthread_mutex_unlock(&s->lock);
}


static void batch_start(part *p, uint64_t row)
{
    ss_buf_reset(&p->batch);
    ss_buf_grow(&p->batch, p->src->o->batch_size + SS_HDR_SIZE);
    p->batch.len = SS_HDR_SIZE;
    p->count = 0;
    p->row = row;
}

/* Sends the batch being built (an empty one only as the end of the
 * stream). The last batch of a stream carries SS_AUX_END and the number
 * of streams in aux, sealed with the rest of the header when there is a
 * key: the sink checks the whole stream against it, whatever the routers
 * say. */
static int batch_send_end(part *p, int end)
{
    if (p->count == 0 && !end)
        return 0;
    source *s = p->src;
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART | (s->jsonl ? 0 : SS_BF_LINES);
    if (end)
        h.aux = SS_AUX_END | s->nparts;
    h.stream = p->stream;
    h.run = s->o->run;
    h.producer = p->id;
    h.seq = p->seq;
    h.epoch = s->o->resume ? s->o->checkpoint_base : 0;
    h.count = p->count;
    h.len = (uint32_t)(p->batch.len - SS_HDR_SIZE);
    h.first_row = p->row;
    const void *msg = p->batch.data;
    size_t mlen = p->batch.len;
    int rc;
    if (s->key) {
        ss_buf_reset(&p->sealed);
        rc = ss_aead_seal(s->key, &h, p->batch.data + SS_HDR_SIZE,
                          p->batch.len - SS_HDR_SIZE, &p->sealed);
        if (rc) {
            snprintf(p->err, sizeof p->err, "cannot seal batch %llu of "
                     "part %u: %s", (unsigned long long)p->seq, p->index,
                     ss_strerror(rc));
            return rc;
        }
        msg = p->sealed.data;
        mlen = p->sealed.len;
    } else {
        ss_hdr_encode(&h, (uint8_t *)p->batch.data);
    }
    ss_latlog_source(s->lat, h.stream, h.seq,
                     p->count ? p->first_ns : ss_now_ns());
    rc = ss_link_send(p->link, msg, mlen, p->seq);
    if (rc) {
        snprintf(p->err, sizeof p->err, "cannot send batch %llu of part "
                 "%u: %s", (unsigned long long)p->seq, p->index,
                 ss_strerror(rc));
        return rc;
    }
    p->seq++;
    atomic_fetch_add(&s->batches, 1);
    atomic_fetch_add(&s->out_bytes, h.len);
    atomic_fetch_add(&s->events, p->count);
    p->n_batches++;
    p->n_out_bytes += h.len;
    p->n_events += p->count;
    return 0;
}

static int batch_send(part *p);

/* Records m as p's latest mark (under the source's lock: the main thread
 * reads the marks). Returns 0 or SS_ENOMEM. */
static int add_mark(part *p, const ckpt_mark *m)
{
    source *s = p->src;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (p->nmarks == p->capmarks) {
        size_t cap = p->capmarks ? 2 * p->capmarks : 8;
        ckpt_mark *v = realloc(p->marks, cap * sizeof *v);
        if (!v)
            rc = SS_ENOMEM;
        else {
            p->marks = v;
            p->capmarks = cap;
        }
    }
    if (!rc) {
        p->marks[p->nmarks] = *m;
        p->marks[p->nmarks++].held = p->held_total;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc)
        snprintf(p->err, sizeof p->err, "out of memory recording a "
                 "checkpoint of part %u", p->index);
    return rc;
}

static ckpt_mark part_mark(const part *p, uint32_t epoch, const char *next,
                      uint64_t row)
{
    ckpt_mark m = {epoch,          (uint64_t)(next - p->src->base),
              row,            p->seq,
              p->n_lines,     p->n_bytes,
              p->n_events,    p->n_out_bytes,
              p->n_batches,   p->n_rejected,
              0};
    return m;
}

/* Checkpoints (docs/PROTOCOL.md, "BARRIER"): once an interval passed
 * since the last barrier, before line `row` (at l) is taken, the batch
 * being built leaves, then a BARRIER of the current epoch (the intervals
 * since the source started: every part injects the same epochs), and the
 * part's mark records where the next batch starts. Returns 0 or the
 * error of a send. */
static int maybe_barrier(part *p, uint64_t row, const char *l)
{
    source *s = p->src;
    uint64_t now = ss_now_ms();
    uint32_t e = s->o->checkpoint_base +
                 (uint32_t)((now - s->t0_ms) / s->o->checkpoint_ms);
    if (e <= p->epoch)
        return 0;
    int rc = batch_send(p);
    if (rc)
        return rc;
    batch_start(p, row);
    rc = ss_link_send_barrier(p->link, e);
    if (rc) {
        snprintf(p->err, sizeof p->err, "cannot send barrier %u of part "
                 "%u: %s", e, p->index, ss_link_error(p->link));
        return rc;
    }
    p->epoch = e;
    ckpt_mark m = part_mark(p, e, l, row);
    return add_mark(p, &m);
}

static int batch_send(part *p) { return batch_send_end(p, 0); }

/* The time row g of the schedule starting at t0 is due (see pacing). */
static uint64_t pace_due(const source *s, uint64_t t0, uint64_t g)
{
    uint64_t r = s->o->rate;
    return t0 + g / r * 1000000000ull + g % r * 1000000000ull / r;
}

/* Pacing (see the notes above): grants p the next n rows of the
 * schedule and returns once the first of them is due, sending p's
 * partial batch first when the wait would hold its first row back for
 * longer than the linger (the next row is `line`: a new batch starts
 * there). Returns at once when the source is stopped. Returns 0, or the
 * error of a send or of the link (p->err says it). */
static int pace(part *p, uint64_t n, uint64_t line)
{
    source *s = p->src;
    uint64_t g = atomic_fetch_add(&s->granted, n);
    uint64_t now = ss_now_ns();
    uint64_t t0 = atomic_load(&s->pace_t0);
    while (t0 == 0 && !atomic_compare_exchange_weak(&s->pace_t0, &t0, now))
        ; /* the first row of the source starts the schedule */
    if (t0 == 0)
        t0 = now;
    uint64_t due = pace_due(s, t0, g);
    if (now > due + PACE_BURST_NS) {
        /* further behind than the bucket holds: forget the excess */
        uint64_t want = t0 + (now - due - PACE_BURST_NS);
        while (t0 < want &&
               !atomic_compare_exchange_weak(&s->pace_t0, &t0, want))
            ;
        return 0;
    }
    uint64_t linger = (uint64_t)s->o->linger_ms * 1000000u;
    while (now < due && !atomic_load(&s->stop)) {
        if (p->count && linger && due - p->first_ns > linger) {
            int rc = batch_send(p);
            if (rc)
                return rc;
            batch_start(p, line);
        }
        uint64_t ms = (due - now + 999999u) / 1000000u;
        int rc = ss_link_service(p->link, ms > 100 ? 100 : (int)ms);
        if (rc < 0 && !(rc == SS_EINTR && atomic_load(&s->stop))) {
            snprintf(p->err, sizeof p->err, "part %u: %s", p->index,
                     ss_link_error(p->link));
            return rc;
        }
        now = ss_now_ns();
    }
    return 0;
}

/* Checks one line and appends it to the batch (sending a full batch
 * first). Returns 0, or a negative code if sending failed. */
static int take_line(part *p, uint64_t line, const char *l, size_t n)
{
    source *s = p->src;
    char why[600];
    if (s->o->rate) {
        if (!p->credit) {
            int rc = pace(p, s->chunk, line);
            if (rc)
                return rc;
            p->credit = s->chunk;
            p->since_check = 63; /* it may have waited: a barrier due? */
        }
        p->credit--;
    }
    if (s->o->checkpoint_ms && s->base && ++p->since_check >= 64) {
        p->since_check = 0;
        int rc = maybe_barrier(p, line, l);
        if (rc)
            return rc;
    }
    atomic_fetch_add(&s->lines, 1);
    atomic_fetch_add(&s->bytes, n + 1);
    p->n_lines++;
    p->n_bytes += n + 1;
    if (n && l[n - 1] == '\r')
        n--;
    size_t need = n + 5;
    if (need > s->o->batch_size) {
        snprintf(why, sizeof why, "line is %zu bytes, longer than the "
                 "batch size (%zu bytes; raise it with --batch-size or "
                 "batch_size in the pipeline file)", n, s->o->batch_size);
        goto bad;
    }
    size_t at;
    if (!ss_utf8_valid(l, n, &at)) {
        snprintf(why, sizeof why, "invalid UTF-8 at byte %zu", at + 1);
        goto bad;
    }
    if (s->csv) {
        char err[256];
        int nf = ss_csv_count(l, n, err, sizeof err);
        if (nf < 0) {
            snprintf(why, sizeof why, "%s", err);
            goto bad;
        }
        long exp = s->expected_fields;
        if (exp < 0) {
            pthread_mutex_lock(&s->lock);
            if (s->expected_fields < 0)
                s->expected_fields = nf;
            exp = s->expected_fields;
            pthread_mutex_unlock(&s->lock);
        }
        if (nf != exp) {
            snprintf(why, sizeof why, "expected %ld fields, got %d", exp,
                     nf);
            goto bad;
        }
    }
    if (p->batch.len - SS_HDR_SIZE + need > s->o->batch_size) {
        int rc = batch_send(p);
        if (rc)
            return rc;
        batch_start(p, line);
    }
    if (p->count == 0) {
        p->row = line;
        if (s->lat || s->o->rate)
            p->first_ns = ss_now_ns();
    }
    if (s->jsonl) {
        lua_State *L = p->L;
        lua_getfield(L, LUA_REGISTRYINDEX, "ss.json.decode");
        lua_pushlstring(L, l, n);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            snprintf(why, sizeof why, "%s", lua_tostring(L, -1));
            lua_pop(L, 1);
            goto bad;
        }
        size_t mark = p->batch.len;
        char err[256];
        int rc = ss_mp_encode_lua(L, -1, &p->batch, err, sizeof err);
        lua_pop(L, 1);
        if (rc) {
            p->batch.len = mark;
            snprintf(why, sizeof why, "%s", err);
            goto bad;
        }
    } else {
        ss_mp_put_str(&p->batch, l, n);
    }
    p->count++;
    return 0;
bad:
    reject(p, line, why, l, n);
    /* a batch never spans a rejected line: line numbers stay exact */
    {
        int rc = batch_send(p);
        if (rc)
            return rc;
        batch_start(p, line + 1);
    }
    return 0;
}

static int open_part_link(part *p)
{
    source *s = p->src;
    char name[96];
    snprintf(name, sizeof name, "%s-%u", s->o->name, p->index);
    ss_link_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.endpoint = s->o->to;
    lo.name = name;
    lo.role = "source";
    lo.stage = s->o->name;
    lo.group = s->o->name;
    lo.members = s->nparts;
    lo.window = s->o->window;
    lo.connect_timeout_ms = s->o->connect_timeout_ms;
    lo.curve = (s->key || s->sealed) && !s->o->links_sealed ? &s->curve
                                                           : NULL;
    lo.run = s->o->run;
    /* Ctrl-C while no router answers: a bounded input ends at once; a
     * followed one ends its stream, which it delivers once the router
     * answers, unless stopped again (docs/PIPELINE.md) */
    lo.stop = s->o->follow ? &s->give_up : &s->stop;
    lo.ending = s->o->follow ? &s->stop : NULL;
    p->id = ss_name_id(name);
    p->stream = p->id & 0x7fffffffu; /* routers check it is ours */
    return ss_link_new(s->zctx, &lo, &p->link, p->err, sizeof p->err);
}

static int part_setup(part *p)
{
    source *s = p->src;
    if (s->jsonl) {
        ss_lua *lua = NULL;
        /* leaked on purpose until the thread ends: see part_cleanup */
        if (ss_lua_new(NULL, &lua))
            return SS_ENOMEM;
        p->L = ss_lua_state(lua);
        lua_getglobal(p->L, "require");
        lua_pushliteral(p->L, "json");
        if (lua_pcall(p->L, 1, 1, 0) != LUA_OK)
            return SS_ELUA;
        lua_getfield(p->L, -1, "decode");
        lua_setfield(p->L, LUA_REGISTRYINDEX, "ss.json.decode");
        lua_pop(p->L, 1);
        lua_pushlightuserdata(p->L, lua);
        lua_setfield(p->L, LUA_REGISTRYINDEX, "ss.self");
    }
    return open_part_link(p);
}

static void part_cleanup(part *p)
{
    pthread_mutex_lock(&p->src->lock);
    write_held(p, UINT64_MAX); /* the rest, after the last acknowledgement */
    pthread_mutex_unlock(&p->src->lock);
    ss_buf_release(&p->held);
    free(p->marks);
    p->marks = NULL;
    p->nmarks = p->capmarks = 0;
    if (p->L) {
        lua_getfield(p->L, LUA_REGISTRYINDEX, "ss.self");
        ss_lua *lua = lua_touserdata(p->L, -1);
        ss_lua_destroy(&lua);
        p->L = NULL;
    }
    if (p->link && (p->rc || atomic_load(&p->src->failed))) {
        /* the run cannot complete: tell the router now, so that it ends
         * the run downstream instead of waiting for our silence */
        char reason[SS_PROTO_REASON_MAX];
        snprintf(reason, sizeof reason, "source %s failed: %.400s",
                 p->src->o->name,
                 p->rc && p->err[0] ? p->err : "another part failed");
        ss_link_abort(p->link, reason);
    }
    ss_link_destroy(&p->link);
    ss_buf_release(&p->batch);
    ss_buf_release(&p->scratch);
    ss_buf_release(&p->sealed);
    ss_buf_release(&p->rejects);
}

static int part_finish(part *p)
{
    int rc = batch_send_end(p, 1);
    if (rc)
        return rc;
    ss_eos eos;
    ss_eos_init(&eos);
    ss_eos_add_stream(&eos, p->stream, p->seq);
    snprintf(eos.group, sizeof eos.group, "%s", p->src->o->name);
    eos.members = p->src->nparts;
    rc = ss_link_send_eos(p->link, &eos, 600000);
    ss_eos_release(&eos);
    if (rc)
        snprintf(p->err, sizeof p->err, "cannot deliver end of stream of "
                 "part %u: %s", p->index, ss_strerror(rc));
    if (!rc && p->src->o->checkpoint_ms && p->src->base) {
        /* ended: it takes part in no later checkpoint */
        ckpt_mark m = part_mark(p, UINT32_MAX, p->end, p->first_line + p->nlines);
        rc = add_mark(p, &m);
    }
    return rc;
}

/* Pages of the mapped input that were sent are given back every 256 KiB,
 * so that the source's resident size stays small whatever the file size
 * (they are clean file pages: the kernel just drops them). Every part
 * holds up to this much mapped, and the pages the kernel maps around a
 * fault: with 2 MiB, 4 parts held 12 MB of the file (one madvise per
 * 256 KiB costs about 1 ms per 200 MB). */
#define RELEASE_CHUNK (256 << 10)

static const char *release_pages(const char *from, const char *to)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)from + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t b = (uintptr_t)to & ~((uintptr_t)pg - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
    return (const char *)b;
}

/* Counts the lines of [b, e), giving pages back as it goes. */
static uint64_t count_lines(const char *b, const char *e)
{
    uint64_t n = 0;
    const char *released = b;
    while (b < e) {
        const char *nl = memchr(b, '\n', (size_t)(e - b));
        n++;
        if (!nl)
            break;
        b = nl + 1;
        if (b - released >= RELEASE_CHUNK)
            released = release_pages(released, b);
    }
    return n;
}

/* A restart from a checkpoint (o->resume, see ss_source.h): moves each
 * part to its resume point, which must be a line start inside the part
 * (the same file cut into the same parts gives the same ranges). Called
 * once the parts' line numbers are known, before they start. Returns 0
 * or -1 (said). */
static int resume_parts(source *s, const char *spec)
{
    const char *c = spec;
    for (unsigned i = 0; i < s->nparts; i++) {
        part *p = &s->parts[i];
        unsigned long long off, row, seq;
        int used = 0;
        if (sscanf(c, "%llu:%llu:%llu%n", &off, &row, &seq, &used) != 3) {
            ss_error("%s: SS_RESUME_PARTS: part %u: expected "
                     "OFFSET:ROW:SEQ[:end] at '%.40s'", s->o->name, i, c);
            return -1;
        }
        c += used;
        int ended = strncmp(c, ":end", 4) == 0;
        if (ended)
            c += 4;
        const char *at = s->base + off;
        uint64_t skipped = row - p->first_line;
        if (off < (uint64_t)(p->begin - s->base) ||
            off > (uint64_t)(p->end - s->base) || row < p->first_line ||
            skipped > p->nlines || (at > s->base && at < p->end &&
                                    at[-1] != '\n') ||
            (ended && at != p->end)) {
            ss_error("%s: SS_RESUME_PARTS: part %u: offset %llu (line "
                     "%llu) is not a line start inside the part (bytes "
                     "%llu to %llu, lines %llu to %llu): the checkpoint "
                     "was taken on another file, or other parts",
                     s->o->name, i, off, row,
                     (unsigned long long)(p->begin - s->base),
                     (unsigned long long)(p->end - s->base),
                     (unsigned long long)p->first_line,
                     (unsigned long long)(p->first_line + p->nlines));
            return -1;
        }
        p->begin = at;
        p->first_line = row;
        p->nlines -= skipped;
        p->seq = seq;
        p->ended = ended;
        if (*c == ',')
            c++;
        else if (i + 1 < s->nparts || *c) {
            ss_error("%s: SS_RESUME_PARTS gives %s parts than the %u "
                     "this source reads", s->o->name,
                     *c ? "more" : "fewer", s->nparts);
            return -1;
        }
    }
    ss_info("%s: resuming each of its %u parts from the checkpoint",
            s->o->name, s->nparts);
    return 0;
}

/* Thread body for one part of an mmap'ed file. */
static void *part_main(void *arg)
{
    part *p = arg;
    source *s = p->src;
    p->nlines = count_lines(p->begin, p->end);
    pthread_barrier_wait(&s->counted);
    /* line numbers: the main thread filled first_line after the barrier */
    pthread_barrier_wait(&s->counted);
    if (atomic_load(&s->failed)) { /* bad resume points: said */
        p->rc = SS_EINVAL;
        snprintf(p->err, sizeof p->err, "part %u did not start: its resume "
                 "point is bad", p->index);
        return NULL;
    }
    int rc = part_setup(p);
    if (rc)
        goto out;
    if (p->ended) { /* its batches all went before the checkpoint */
        ss_eos eos;
        ss_eos_init(&eos);
        ss_eos_add_stream(&eos, p->stream, p->seq);
        snprintf(eos.group, sizeof eos.group, "%s", s->o->name);
        eos.members = s->nparts;
        rc = ss_link_send_eos(p->link, &eos, 600000);
        ss_eos_release(&eos);
        if (rc)
            snprintf(p->err, sizeof p->err, "cannot deliver end of stream "
                     "of part %u: %s", p->index, ss_strerror(rc));
        else if (s->o->checkpoint_ms && s->base) {
            ckpt_mark m = part_mark(p, UINT32_MAX, p->end, p->first_line);
            rc = add_mark(p, &m);
        }
        goto out;
    }
    batch_start(p, p->first_line);
    const char *c = p->begin;
    const char *released = p->begin; /* pages before this were dropped */
    uint64_t line = p->first_line;
    while (c < p->end && !atomic_load(&s->stop) &&
           !atomic_load(&s->failed)) {
        const char *nl = memchr(c, '\n', (size_t)(p->end - c));
        const char *e = nl ? nl : p->end;
        rc = take_line(p, line, c, (size_t)(e - c));
        if (rc)
            goto out;
        line++;
        c = e + 1;
        if (c - released >= RELEASE_CHUNK)
            released = release_pages(released, c);
    }
    if (atomic_load(&s->stop)) {
        rc = SS_EINTR;
        snprintf(p->err, sizeof p->err, "stopped by a signal");
        goto out;
    }
    rc = part_finish(p);
out:
    if (rc) {
        p->rc = rc;
        atomic_store(&s->failed, 1);
    }
    return NULL;
}

static void report(source *s, ss_stats_reporter *r, uint64_t total,
                   int final)
{
    if (!r)
        return;
    ss_stats st;
    ss_stats_init(&st);
    ss_stats_set_names(&st, s->o->name, "source", "source");
    ss_stats_fill_self(&st);
    st.in = atomic_load(&s->lines);
    st.in_bytes = atomic_load(&s->bytes);
    st.out = atomic_load(&s->events);
    st.out_bytes = atomic_load(&s->out_bytes);
    st.passed = st.out;
    st.rejected = atomic_load(&s->rejected);
    st.batches_out = atomic_load(&s->batches);
    st.total_bytes = total;
    st.final = final;
    ss_stats_report(r, &st);
}

/* The first mark of p at or after epoch e (its end mark at worst), or
 * NULL. Under s->lock. */
static const ckpt_mark *mark_for(const part *p, uint32_t e)
{
    for (size_t i = 0; i < p->nmarks; i++)
        if (p->marks[i].epoch >= e)
            return &p->marks[i];
    return NULL;
}

/* Writes the source's state at checkpoint e (every part's resume point)
 * as <checkpoint_dir>/<name>-e<epoch>.json, atomically (a temporary file
 * renamed). Returns 0 or SS_EIO (logged). */
static int write_offsets(source *s, uint32_t e, const ckpt_mark *const *ms)
{
    const ss_source_opts *o = s->o;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s-e%u.json", o->checkpoint_dir,
             o->name, e);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* made anew, never through a link: the folder is the worker hosts'
     * too (the run folder's ckpt/), and a source running as root wrote
     * through a link planted there into any file */
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        ss_error("checkpoint %u: cannot write %s: %s", e, tmp,
                 strerror(errno));
        return SS_EIO;
    }
    fprintf(f, "{\"run\":\"%016llx\",\"epoch\":%u,\"component\":",
            (unsigned long long)o->run, e);
    ss_buf b = SS_BUF_INIT;
    ss_buf_json_str(&b, o->name, strlen(o->name));
    fwrite(b.data, 1, b.len, f);
    ss_buf_release(&b);
    fprintf(f, ",\"parts\":[");
    for (unsigned i = 0; i < s->nparts; i++)
        fprintf(f, "%s{\"part\":%u,\"offset\":%llu,\"row\":%llu,"
                "\"seq\":%llu,\"ended\":%s}", i ? "," : "", i,
                (unsigned long long)ms[i]->offset,
                (unsigned long long)ms[i]->row,
                (unsigned long long)ms[i]->seq,
                ms[i]->epoch == UINT32_MAX ? "true" : "false");
    fprintf(f, "]}\n");
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        ss_error("checkpoint %u: cannot write %s: %s", e, path,
                 strerror(errno));
        unlink(tmp);
        return SS_EIO;
    }
    return 0;
}

/* Acknowledges to the supervisor every checkpoint the parts passed: the
 * epochs the first router aligns (the smallest epoch above the last one
 * that every part that has not ended reached, as the router computes
 * it), each with the parts' offsets written to the checkpoint folder and
 * the sum of their counters at their barriers. */
static void ack_epochs(source *s, ss_stats_reporter *rep)
{
    if (!s->o->checkpoint_ms || !s->base)
        return;
    const ckpt_mark **ms = calloc(s->nparts, sizeof *ms);
    if (!ms)
        return;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        uint32_t next = UINT32_MAX;
        int all = 1;
        for (unsigned i = 0; i < s->nparts && all; i++) {
            const ckpt_mark *m = mark_for(&s->parts[i], s->acked + 1);
            if (!m)
                all = 0;
            else if (m->epoch < next)
                next = m->epoch;
        }
        if (!all || next == UINT32_MAX)
            break; /* a part has not reached it yet, or all ended */
        ss_stats st;
        ss_stats_init(&st);
        ss_stats_set_names(&st, s->o->name, "source", "source");
        for (unsigned i = 0; i < s->nparts; i++) {
            ms[i] = mark_for(&s->parts[i], next);
            st.in += ms[i]->lines;
            st.in_bytes += ms[i]->bytes;
            st.out += ms[i]->events;
            st.out_bytes += ms[i]->out_bytes;
            st.batches_out += ms[i]->batches;
            st.rejected += ms[i]->rejected;
        }
        st.passed = st.out;
        s->acked = next;
        /* the rejects of every part before its barrier, and only those */
        for (unsigned i = 0; i < s->nparts; i++)
            write_held(&s->parts[i], ms[i]->held);
        if (s->rejects && !s->unheld && fflush(s->rejects) == 0) {
            struct stat rs;
            st.marks = 1;
            st.rejects_len = fstat(fileno(s->rejects), &rs) == 0 &&
                                     S_ISREG(rs.st_mode)
                                 ? (int64_t)rs.st_size
                                 : -1;
            st.stdout_len = st.output_len = -1;
        }
        if (s->o->checkpoint_dir && write_offsets(s, next, ms) != 0)
            continue; /* not acknowledged: the checkpoint cannot complete */
        ss_stats_report_barrier(rep, &st, next);
    }
    pthread_mutex_unlock(&s->lock);
    free(ms);
}

/* Following a file (--follow): after its end, what is appended is read
 * too. Checks, at the end of what was read, whether the file at the path
 * was replaced (another inode: reopens it, like tail -F) or truncated
 * (smaller than what was read: reads it again from its start). Returns 1
 * when the reading starts over (*fd and *pos changed), 0 otherwise. */
static int follow_check(source *s, int *fd, uint64_t *pos)
{
    const char *path = s->o->file;
    struct stat cur, now;
    if (fstat(*fd, &cur) != 0)
        return 0;
    int use_path = path && strcmp(path, "-") != 0;
    if (use_path && stat(path, &now) == 0 &&
        (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev)) {
        int nfd = open(path, O_RDONLY);
        if (nfd < 0)
            return 0; /* not there yet: try again on the next poll */
        ss_info("%s was replaced (rotated): following the new file from "
                "its start", path);
        if (*fd > 0)
            close(*fd);
        *fd = nfd;
        *pos = 0;
        return 1;
    }
    if (S_ISREG(cur.st_mode) && (uint64_t)cur.st_size < *pos) {
        ss_info("%s was truncated (%llu bytes, %llu were read): following "
                "it again from its start", use_path ? path : "the input",
                (unsigned long long)cur.st_size, (unsigned long long)*pos);
        if (lseek(*fd, 0, SEEK_SET) != 0)
            return 0;
        *pos = 0;
        return 1;
    }
    return 0;
}

/* Reads an input in one part as a stream: stdin, a pipe, or a followed
 * file (o->follow). A partial batch is sent once no byte arrived for
 * o->linger_ms (0: only full batches and the last one). Following, the
 * end of the file is no end: the stream ends, cleanly, at
 * ss_source_stop. *fd may change (a rotated file is reopened). */
static int run_stream(source *s, int *fdp, const char *skip_header,
                      ss_stats_reporter *rep)
{
    part *p = &s->parts[0];
    const ss_source_opts *o = s->o;
    int follow = o->follow, linger = o->linger_ms;
    int rc = part_setup(p);
    if (rc)
        return rc;
    if (follow && atomic_load(&s->stop))
        ss_info("%s: stopped before it read a line (its router at %s "
                "answered after the stop): the stream ends empty", o->name,
                o->to);
    size_t cap = 4u << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return SS_ENOMEM;
    uint64_t line = 1, pos = 0, last_data = ss_now_ms(), last_rep = last_data;
    int header_pending = skip_header != NULL;
    int wait_ms = linger > 0 && linger < 100 ? linger : 100;
    struct stat st;
    /* a pipe or terminal ends at its end; a regular file, followed, not */
    int is_pipe = fstat(*fdp, &st) != 0 || !S_ISREG(st.st_mode);
    batch_start(p, 1);
    for (;;) {
        if (len == cap) { /* a line longer than the buffer */
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = SS_ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        uint64_t now = ss_now_ms();
        if (rep && now - last_rep >= 1000) {
            report(s, rep, 0, 0);
            last_rep = now;
        }
        /* a partial batch waits no longer than the linger */
        if (linger > 0 && p->count && now - last_data >= (uint64_t)linger) {
            if ((rc = batch_send(p)) != 0)
                break;
            batch_start(p, line);
        }
        ssize_t r;
        int final = 0; /* no more input: the rest of buf is a last line */
        int end = 0;   /* the stream ends after that */
        int restarted = 0; /* a new file (or the same from its start) */
        if (atomic_load(&s->stop) && !follow) {
            rc = SS_EINTR;
            snprintf(p->err, sizeof p->err, "stopped by a signal");
            break;
        }
        if (follow && atomic_load(&s->stop)) {
            r = 0;
            final = end = 1;
        } else {
            if (linger > 0 || follow) {
                struct pollfd pf = {.fd = *fdp, .events = POLLIN};
                int n = poll(&pf, 1, wait_ms);
                if (n == 0 || (n < 0 && errno == EINTR))
                    continue; /* nothing yet: linger, stop: at the top */
            }
            r = read(*fdp, buf + len, cap - len);
            if (r < 0 && errno == EINTR && !atomic_load(&s->stop))
                continue;
            if (r < 0 && errno == EINTR && follow)
                continue; /* stopped: ends cleanly at the top */
            if (r < 0) {
                rc = atomic_load(&s->stop) ? SS_EINTR : SS_EIO;
                snprintf(p->err, sizeof p->err, "cannot read input: %s",
                         strerror(errno));
                break;
            }
            if (r > 0) {
                last_data = ss_now_ms();
                pos += (uint64_t)r;
            } else if (follow && !is_pipe) {
                /* the end for now: more may be appended, the file may be
                 * replaced or truncated; an unfinished last line waits,
                 * unless the file it ends was replaced */
                if (!follow_check(s, fdp, &pos)) {
                    poll(NULL, 0, wait_ms);
                    continue;
                }
                /* its first line is a header again (after the old file's
                 * unfinished line, if any, is taken as a line) */
                header_pending = skip_header != NULL && len == 0;
                restarted = skip_header != NULL && len > 0;
                if (len == 0)
                    continue;
                final = 1;
            } else {
                final = end = 1; /* a pipe's end is the stream's end */
            }
        }
        size_t have = len + (size_t)(r > 0 ? r : 0), off = 0;
        for (;;) {
            char *nl = memchr(buf + off, '\n', have - off);
            if (!nl && !final)
                break;
            if (!nl && off == have)
                break;
            size_t e = nl ? (size_t)(nl - buf) : have;
            if (header_pending) {
                header_pending = 0;
                if (s->csv) {
                    char err[256];
                    int nf = ss_csv_count(buf + off, e - off, err,
                                          sizeof err);
                    if (nf > 0)
                        s->expected_fields = nf;
                }
            } else {
                rc = take_line(p, line, buf + off, e - off);
                if (rc)
                    goto done;
            }
            line++;
            off = nl ? e + 1 : have;
        }
        memmove(buf, buf + off, have - off);
        len = have - off;
        if (restarted)
            header_pending = 1;
        if (end)
            break;
    }
    if (!rc)
        rc = part_finish(p);
done:
    free(buf);
    p->rc = rc;
    return rc;
}

/* format sealed: a file written by `sstream encrypt` (crypto/ss_sealfile.h)
 * whose data records are forwarded unchanged, in order, as one stream,
 * without the data key. Its clear headers are checked first, before
 * anything is sent (their authenticity is the sink's and the workers'
 * business): one stream, seq 0..N-1, unsplit, the last data record
 * marked as the stream's end, an end record announcing N, nothing after. */
typedef struct sealed_info {
    uint32_t stream;
    uint64_t batches, events;
} sealed_info;

static int sealed_scan(FILE *f, const char *name, ss_buf *msg,
                       sealed_info *si, char *err, size_t errlen)
{
    uint64_t rec = 0, pos = 0;
    int ended = 0; /* the last data record so far carries SS_AUX_END */
    memset(si, 0, sizeof *si);
    for (;;) {
        ss_hdr h;
        const char *why = NULL;
        int rc = ss_sealfile_read(f, msg, &h, &why);
        rec++;
        if (rc == 0) {
            snprintf(err, errlen, "%s: ends after record %llu without its "
                     "end record (truncated)", name,
                     (unsigned long long)(rec - 1));
            return SS_EPROTO;
        }
        if (rc < 0) {
            if (rc == SS_EIO)
                snprintf(err, errlen, "%s: cannot read record %llu: %s",
                         name, (unsigned long long)rec, strerror(errno));
            else
                snprintf(err, errlen, "%s: record %llu (at byte %llu): %s%s",
                         name, (unsigned long long)rec,
                         (unsigned long long)pos,
                         why ? why : ss_strerror(rc),
                         rec == 1 && why && !strstr(why, "truncated")
                             ? ": not a sealed file (sstream encrypt)"
                             : "");
            return rc == SS_EIO ? rc : SS_EPROTO;
        }
        if (!(h.flags & SS_BF_ENCRYPTED)) {
            snprintf(err, errlen, "%s: record %llu (at byte %llu) is not "
                     "sealed: not a sealed file (sstream encrypt)", name,
                     (unsigned long long)rec, (unsigned long long)pos);
            return SS_EPROTO;
        }
        if (rec == 1)
            si->stream = h.stream;
        if (h.kind == SS_MSG_EOS) {
            if (h.stream != si->stream || h.seq != si->batches ||
                h.first_row != si->events || !(h.flags & SS_BF_FINAL)) {
                snprintf(err, errlen, "%s: the end record (record %llu) "
                         "announces %llu batches and %llu rows of stream %u,"
                         " the file holds %llu and %llu of stream %u", name,
                         (unsigned long long)rec,
                         (unsigned long long)h.seq,
                         (unsigned long long)h.first_row, h.stream,
                         (unsigned long long)si->batches,
                         (unsigned long long)si->events, si->stream);
                return SS_EPROTO;
            }
            if (!ended) {
                snprintf(err, errlen, "%s: record %llu, the last data "
                         "record, does not mark the end of the stream: "
                         "sealed by an older sstream encrypt? (encrypt "
                         "it again)", name, (unsigned long long)(rec - 1));
                return SS_EPROTO;
            }
            if (fgetc(f) != EOF) {
                snprintf(err, errlen, "%s: data after the end record "
                         "(record %llu)", name, (unsigned long long)rec);
                return SS_EPROTO;
            }
            return 0;
        }
        if (h.kind != SS_MSG_DATA) {
            snprintf(err, errlen, "%s: record %llu (at byte %llu) is a %s "
                     "message, not a data batch", name,
                     (unsigned long long)rec, (unsigned long long)pos,
                     ss_msg_kind_name(h.kind));
            return SS_EPROTO;
        }
        if (ended || h.stream != si->stream || h.seq != si->batches ||
            h.part != 0 || !(h.flags & SS_BF_LAST_PART)) {
            snprintf(err, errlen, "%s: record %llu (at byte %llu) is out "
                     "of place (stream %u, batch %llu, part %llu%s)", name,
                     (unsigned long long)rec, (unsigned long long)pos,
                     h.stream, (unsigned long long)h.seq,
                     (unsigned long long)h.part,
                     ended ? ", after the stream's end batch" : "");
            return SS_EPROTO;
        }
        if (h.aux & SS_AUX_END) {
            if (SS_AUX_STREAMS(h.aux) != 1) {
                snprintf(err, errlen, "%s: record %llu says the source "
                         "has %u streams, a sealed file holds 1", name,
                         (unsigned long long)rec, SS_AUX_STREAMS(h.aux));
                return SS_EPROTO;
            }
            ended = 1;
        }
        si->batches++;
        si->events += h.count;
        pos += 4 + msg->len;
    }
}

/* Sends the data records of a scanned sealed file, then the EOS. */
static int sealed_send(source *s, FILE *f, const sealed_info *si,
                       ss_buf *msg, char *err, size_t errlen)
{
    part *p = &s->parts[0];
    int rc = open_part_link(p);
    if (rc) {
        snprintf(err, errlen, "%s", p->err);
        return rc;
    }
    for (uint64_t i = 0; i < si->batches; i++) {
        ss_hdr h;
        const char *why = NULL;
        if (atomic_load(&s->stop)) {
            snprintf(err, errlen, "stopped by a signal");
            return SS_EINTR;
        }
        rc = ss_sealfile_read(f, msg, &h, &why);
        if (rc != 1 || h.kind != SS_MSG_DATA || h.seq != i) {
            snprintf(err, errlen, "%s: record %llu changed while it was "
                     "being read", s->o->file, (unsigned long long)i + 1);
            return rc < 0 ? rc : SS_EPROTO;
        }
        if (s->o->rate && (rc = pace(p, h.count, 0)) != 0) {
            snprintf(err, errlen, "%s", p->err);
            return rc;
        }
        rc = ss_link_send(p->link, msg->data, msg->len, i);
        if (rc) {
            snprintf(err, errlen, "cannot send batch %llu: %s",
                     (unsigned long long)i, ss_strerror(rc));
            return rc;
        }
        atomic_fetch_add(&s->lines, h.count);
        atomic_fetch_add(&s->events, h.count);
        atomic_fetch_add(&s->bytes, 4 + msg->len);
        atomic_fetch_add(&s->out_bytes, h.len);
        atomic_fetch_add(&s->batches, 1);
    }
    ss_eos eos;
    ss_eos_init(&eos);
    rc = ss_eos_add_stream(&eos, si->stream, si->batches);
    snprintf(eos.group, sizeof eos.group, "%s", s->o->name);
    eos.members = 1;
    if (!rc)
        rc = ss_link_send_eos(p->link, &eos, 600000);
    ss_eos_release(&eos);
    if (rc)
        snprintf(err, errlen, "cannot deliver end of stream: %s",
                 ss_strerror(rc));
    return rc;
}

static int run_sealed(source *s, ss_stats_reporter *rep)
{
    const ss_source_opts *o = s->o;
    char err[700] = "";
    ss_buf msg;
    memset(&msg, 0, sizeof msg);
    if (!o->file || !strcmp(o->file, "-")) {
        ss_error("format sealed reads a file (sstream encrypt), not stdin");
        return 1;
    }
    FILE *f = fopen(o->file, "rb");
    if (!f) {
        ss_error("cannot open input '%s': %s", o->file, strerror(errno));
        return 1;
    }
    if (o->parts > 1)
        ss_warn("a sealed file is injected as 1 stream, not %u parts",
                o->parts);
    uint64_t t0 = ss_now_ms();
    sealed_info si;
    int rc = sealed_scan(f, o->file, &msg, &si, err, sizeof err);
    if (!rc && fseek(f, 0, SEEK_SET) != 0) {
        rc = SS_EIO;
        snprintf(err, sizeof err, "cannot rewind '%s': %s", o->file,
                 strerror(errno));
    }
    if (!rc) {
        rc = sealed_send(s, f, &si, &msg, err, sizeof err);
        part_cleanup(&s->parts[0]);
    }
    report(s, rep, 0, 1);
    fclose(f);
    ss_buf_release(&msg);
    if (rc) {
        ss_error("%s", err[0] ? err : ss_strerror(rc));
        return 1;
    }
    ss_info("%s: %llu sealed events in %llu batches forwarded, %.1f s",
            o->name, (unsigned long long)si.events,
            (unsigned long long)si.batches,
            (double)(ss_now_ms() - t0) / 1000.0);
    return 0;
}

/* See ss_source.h. */
int ss_source_new(const ss_source_opts *o, ss_source **out)
{
    *out = NULL;
    source *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    s->o = o;
    s->csv = strcmp(o->format, "csv") == 0;
    s->jsonl = strcmp(o->format, "jsonl") == 0;
    s->sealed = strcmp(o->format, "sealed") == 0;
    s->expected_fields = -1;
    atomic_init(&s->stop, 0);
    atomic_init(&s->give_up, 0);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->granted, 0);
    atomic_init(&s->pace_t0, 0);
    s->chunk = o->rate / 1000; /* about 1 ms of rows per grant */
    if (s->chunk < 1)
        s->chunk = 1;
    if (s->chunk > 1024)
        s->chunk = 1024;
    s->lat = ss_latlog_open("source");
    *out = s;
    return 0;
}

/* See ss_source.h. */
void ss_source_stop(ss_source *s)
{
    if (atomic_fetch_add(&s->stop, 1) > 0)
        atomic_store(&s->give_up, 1);
}

/* See ss_source.h. */
void ss_source_destroy(ss_source **pp)
{
    if (!pp || !*pp)
        return;
    pthread_mutex_destroy(&(*pp)->lock);
    ss_latlog_close(&(*pp)->lat);
    free(*pp);
    *pp = NULL;
}

/* See ss_source.h. */
int ss_source_run(ss_source *s)
{
    const ss_source_opts *o = s->o;
    if (s->ran)
        return SS_EINVAL;
    s->ran = 1;
    int status = SS_EIO, fd = -1; /* SS_EIO: failed, the reason logged */
    char *map = NULL;
    size_t size = 0;
    ss_stats_reporter *rep = NULL;

    if (s->sealed && !strcmp(o->security, "plain")) {
        ss_error("sealed input needs security encrypted or enclave");
        goto out;
    }
    if (s->sealed && o->follow) {
        ss_error("a sealed file is complete (sstream encrypt wrote it): it "
                 "cannot be followed (leave --follow off)");
        goto out;
    }
    if (s->sealed && o->header) {
        ss_error("a sealed file's header line cannot be skipped without "
                 "the data key: leave header off (the stages see it)");
        goto out;
    }
    int use_stdin = !o->file || strcmp(o->file, "-") == 0;
    fd = s->sealed ? -1 : use_stdin ? 0 : open(o->file, O_RDONLY);
    if (!s->sealed && fd < 0 && errno == ENOENT && o->follow) {
        /* like tail -F: a followed file may not be there yet */
        ss_info("%s: waiting for %s to appear", o->name, o->file);
        for (;;) {
            if (atomic_load(&s->stop)) {
                ss_info("%s: stopped before %s appeared: the stream ends "
                        "empty", o->name, o->file);
                fd = open("/dev/null", O_RDONLY);
                break;
            }
            poll(NULL, 0, 100);
            fd = open(o->file, O_RDONLY);
            if (fd >= 0 || errno != ENOENT)
                break;
        }
    }
    if (!s->sealed && fd < 0) {
        ss_error("cannot open input '%s': %s", o->file, strerror(errno));
        return SS_EIO;
    }
    if (o->rate)
        ss_info("%s: reading at most %llu rows per second%s", o->name,
                (unsigned long long)o->rate,
                s->sealed ? " (a sealed file: batch by batch)" : "");
    if (o->links_sealed && strcmp(o->security, "plain") == 0) {
        ss_error("--links sealed needs --security encrypted or enclave (in "
                 "plain mode nothing is sealed)");
        goto out;
    }
    /* barriers are not sealed: without CurveZMQ a stranger on a link
     * could forge or move one (docs/SECURITY.md, "Double encryption") */
    if (o->links_sealed && (o->checkpoint_ms || o->resume)) {
        ss_error("--links sealed cannot be used with checkpoints or a "
                 "resume: checkpoint barriers are not sealed, so they need "
                 "CurveZMQ links");
        goto out;
    }
    if (strcmp(o->security, "plain") != 0) {
        char kerr[512];
        if (!o->keys) {
            ss_error("security '%s' needs the pipeline's keys (--keys)",
                     o->security);
            goto out;
        }
        /* sealed input: no data key, only the transport's CURVE keys */
        if ((!s->sealed &&
             ss_keys_load_data(o->keys, &s->key, kerr, sizeof kerr)) ||
            ss_curve_load(&s->curve, o->keys, 0, kerr, sizeof kerr)) {
            ss_error("%s", kerr);
            goto out;
        }
    }
    s->zctx = zmq_ctx_new();
    char cerr[512];
    if (ss_stats_reporter_open(s->zctx, getenv("SS_CONTROL"),
                               getenv("SS_CONTROL_KEYS"), &rep, cerr,
                               sizeof cerr)) {
        ss_error("cannot connect to the supervisor at %s: %s",
                 getenv("SS_CONTROL"), cerr);
        goto out;
    }
    if (s->sealed) {
        s->nparts = 1;
        s->parts = calloc(1, sizeof *s->parts);
        if (!s->parts)
            goto out;
        s->parts[0].src = s;
        status = run_sealed(s, rep) ? SS_EIO : 0;
        goto out;
    }
    struct stat st;
    int seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (o->rejects) {
        s->rejects = fopen(o->rejects, "a");
        if (!s->rejects) {
            ss_error("cannot open rejects file '%s': %s", o->rejects,
                     strerror(errno));
            goto out;
        }
    }
    int streamed = !seekable || o->follow;
    s->nparts = streamed ? 1 : o->parts;
    if (streamed && o->parts > 1)
        ss_warn("%s: injecting it as 1 part, not %u",
                seekable ? "a followed file is read as it grows"
                         : "input is not a regular file", o->parts);
    s->parts = calloc(s->nparts, sizeof *s->parts);
    if (!s->parts)
        goto out;
    for (unsigned i = 0; i < s->nparts; i++) {
        s->parts[i].src = s;
        s->parts[i].index = i;
    }
    if (streamed) {
        if (o->follow)
            ss_info("%s: following %s until stopped (SIGINT or SIGTERM "
                    "ends the stream cleanly)", o->name,
                    use_stdin ? "stdin" : o->file);
        int rc = run_stream(s, &fd, o->header ? "" : NULL, rep);
        report(s, rep, 0, 1);
        if (rc) {
            ss_error("%s", s->parts[0].err[0] ? s->parts[0].err
                                             : ss_strerror(rc));
            part_cleanup(&s->parts[0]);
            goto out;
        }
        part_cleanup(&s->parts[0]);
        status = 0;
        goto out;
    }

    size = (size_t)st.st_size;
    if (size == 0)
        ss_warn("input '%s' is empty", o->file);
    else {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            ss_error("cannot map input '%s': %s", o->file, strerror(errno));
            goto out;
        }
        madvise(map, size, MADV_SEQUENTIAL);
    }
    const char *data = map ? map : "", *end = data + size;
    uint64_t first = 1;
    if (o->header && size) {
        const char *nl = memchr(data, '\n', size);
        const char *he = nl ? nl : end;
        if (s->csv) {
            char err[256];
            int nf = ss_csv_count(data, (size_t)(he - data), err,
                                  sizeof err);
            if (nf < 0) {
                ss_error("%s line 1 (header): %s", o->file, err);
                goto out;
            }
            s->expected_fields = nf;
        }
        data = nl ? nl + 1 : end;
        first = 2;
    }
    /* cut into parts on line boundaries */
    size_t body = (size_t)(end - data);
    const char *cut = data;
    for (unsigned i = 0; i < s->nparts; i++) {
        part *p = &s->parts[i];
        p->begin = cut;
        const char *e = data + body * (i + 1) / s->nparts;
        if (i + 1 == s->nparts)
            e = end;
        else if (e > cut) {
            const char *nl = memchr(e - 1, '\n', (size_t)(end - e + 1));
            e = nl ? nl + 1 : end;
        } else
            e = cut;
        p->end = e;
        cut = e;
    }
    s->base = map ? map : data;
    s->t0_ms = ss_now_ms();
    s->acked = o->checkpoint_base;
    for (unsigned i = 0; i < s->nparts; i++)
        s->parts[i].epoch = o->checkpoint_base;
    pthread_barrier_init(&s->counted, NULL, s->nparts + 1);
    pthread_t *th = calloc(s->nparts, sizeof *th);
    for (unsigned i = 0; i < s->nparts; i++)
        pthread_create(&th[i], NULL, part_main, &s->parts[i]);
    pthread_barrier_wait(&s->counted);
    for (unsigned i = 0; i < s->nparts; i++) {
        s->parts[i].first_line = first;
        first += s->parts[i].nlines;
    }
    int bad_resume = o->resume && resume_parts(s, o->resume) != 0;
    if (bad_resume) /* the threads stop before their first line */
        atomic_store(&s->failed, 1);
    pthread_barrier_wait(&s->counted);
    uint64_t t0 = ss_now_ms(), last = t0;
    unsigned running = s->nparts;
    char *joined = calloc(s->nparts, 1);
    while (running) {
        for (unsigned i = 0; i < s->nparts; i++)
            if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0) {
                joined[i] = 1;
                running--;
            }
        if (!running)
            break;
        usleep(20000);
        ack_epochs(s, rep);
        if (ss_now_ms() - last >= 1000) {
            report(s, rep, size, 0);
            last = ss_now_ms();
        }
    }
    free(joined);
    free(th);
    pthread_barrier_destroy(&s->counted);
    ack_epochs(s, rep);
    report(s, rep, size, 1);
    status = 0;
    for (unsigned i = 0; i < s->nparts; i++) {
        if (s->parts[i].rc) {
            ss_error("%s", s->parts[i].err[0] ? s->parts[i].err
                                              : ss_strerror(s->parts[i].rc));
            status = s->parts[i].rc;
        }
        part_cleanup(&s->parts[i]);
    }
    double secs = (double)(ss_now_ms() - t0) / 1000.0;
    ss_info("%s: %llu lines, %llu events in %llu batches, %llu rejected, "
            "%.1f s (%.0f lines/s%s)", o->name,
            (unsigned long long)atomic_load(&s->lines),
            (unsigned long long)atomic_load(&s->events),
            (unsigned long long)atomic_load(&s->batches),
            (unsigned long long)atomic_load(&s->rejected), secs,
            secs > 0 ? (double)atomic_load(&s->lines) / secs : 0.0,
            o->rate ? ", paced" : "");
out:
    if (map)
        munmap(map, size);
    if (fd > 0)
        close(fd);
    if (s->rejects)
        fclose(s->rejects);
    free(s->parts);
    ss_stats_reporter_destroy(&rep);
    ss_key_destroy(&s->key);
    ss_curve_wipe(&s->curve);
    s->parts = NULL;
    s->rejects = NULL;
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    s->zctx = NULL;
    return status;
}
