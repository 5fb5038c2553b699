/*
 * ss_stats.c - STATS/DONE messages and the component-side reporter
 * (see ss_stats.h).
 */
#include "run/ss_stats.h"
#include "core/ss_util.h"
#include "run/ss_metrics_http.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/* The unsigned counters, in the order they are encoded. */
static const struct {
    const char *key;
    size_t off;
} counters[] = {
    {"in", offsetof(ss_stats, in)},
    {"in_bytes", offsetof(ss_stats, in_bytes)},
    {"out", offsetof(ss_stats, out)},
    {"out_bytes", offsetof(ss_stats, out_bytes)},
    {"batches_in", offsetof(ss_stats, batches_in)},
    {"batches_out", offsetof(ss_stats, batches_out)},
    {"passed", offsetof(ss_stats, passed)},
    {"dropped", offsetof(ss_stats, dropped)},
    {"rejected", offsetof(ss_stats, rejected)},
    {"queue", offsetof(ss_stats, queue)},
    {"credits", offsetof(ss_stats, credits)},
    {"rss_kb", offsetof(ss_stats, rss_kb)},
    {"peak_rss_kb", offsetof(ss_stats, peak_rss_kb)},
    {"enclave_calls", offsetof(ss_stats, enclave_calls)},
    {"enclave_ns", offsetof(ss_stats, enclave_ns)},
    {"total_bytes", offsetof(ss_stats, total_bytes)},
};
#define NCOUNTERS (sizeof counters / sizeof counters[0])

static uint64_t *counter(ss_stats *s, size_t i)
{
    return (uint64_t *)((char *)s + counters[i].off);
}

static uint64_t counter_get(const ss_stats *s, size_t i)
{
    return *(const uint64_t *)((const char *)s + counters[i].off);
}

/* See ss_stats.h. */
void ss_stats_init(ss_stats *s) { memset(s, 0, sizeof *s); }

static void copy_name(char dst[SS_STATS_NAME_MAX], const char *src)
{
    size_t n = src ? strnlen(src, SS_STATS_NAME_MAX - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* See ss_stats.h. */
void ss_stats_set_names(ss_stats *s, const char *name, const char *role,
                        const char *stage)
{
    copy_name(s->name, name);
    copy_name(s->role, role);
    copy_name(s->stage, stage);
}

/* See ss_stats.h. */
void ss_stats_fill_self(ss_stats *s)
{
    s->pid = (int64_t)getpid();
    long rss = ss_rss_kb();
    long peak = ss_peak_rss_kb();
    s->rss_kb = rss > 0 ? (uint64_t)rss : 0;
    s->peak_rss_kb = peak > 0 ? (uint64_t)peak : 0;
    if (s->peak_rss_kb < s->rss_kb)
        s->peak_rss_kb = s->rss_kb;
}

/* msgpack_packer callback: appends to an ss_buf. */
static int buf_write(void *data, const char *p, size_t n)
{
    return ss_buf_append(data, p, n) ? -1 : 0;
}

static int pack_str(msgpack_packer *pk, const char *key, const char *val)
{
    size_t kn = strlen(key), vn = strlen(val);
    if (msgpack_pack_str(pk, kn) || msgpack_pack_str_body(pk, key, kn) ||
        msgpack_pack_str(pk, vn) || msgpack_pack_str_body(pk, val, vn))
        return SS_ENOMEM;
    return 0;
}

static int pack_key(msgpack_packer *pk, const char *key)
{
    size_t kn = strlen(key);
    if (msgpack_pack_str(pk, kn) || msgpack_pack_str_body(pk, key, kn))
        return SS_ENOMEM;
    return 0;
}

/* Writes the header with kind and the payload length patched in. */
static void put_header(ss_buf *out, int kind)
{
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = (uint8_t)kind;
    h.len = (uint32_t)(out->len - SS_HDR_SIZE);
    ss_hdr_encode(&h, (uint8_t *)out->data);
}

/* See ss_stats.h. */
int ss_stats_encode(const ss_stats *s, ss_buf *out)
{
    ss_buf_reset(out);
    if (ss_buf_grow(out, SS_HDR_SIZE + 512))
        return SS_ENOMEM;
    memset(out->data, 0, SS_HDR_SIZE);
    out->len = SS_HDR_SIZE;

    ss_stats tmp = *s; /* guarantees NUL-terminated strings */
    tmp.name[SS_STATS_NAME_MAX - 1] = '\0';
    tmp.role[SS_STATS_NAME_MAX - 1] = '\0';
    tmp.stage[SS_STATS_NAME_MAX - 1] = '\0';

    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    if (msgpack_pack_map(&pk, 6 + NCOUNTERS) ||
        pack_str(&pk, "name", tmp.name) || pack_str(&pk, "role", tmp.role) ||
        pack_str(&pk, "stage", tmp.stage) || pack_key(&pk, "pid") ||
        msgpack_pack_int64(&pk, tmp.pid))
        return SS_ENOMEM;
    for (size_t i = 0; i < NCOUNTERS; i++)
        if (pack_key(&pk, counters[i].key) ||
            msgpack_pack_uint64(&pk, counter_get(&tmp, i)))
            return SS_ENOMEM;
    if (pack_key(&pk, "final") ||
        (tmp.final ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)))
        return SS_ENOMEM;
    if (pack_key(&pk, "stateful") ||
        (tmp.stateful ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)))
        return SS_ENOMEM;
    put_header(out, SS_MSG_STATS);
    return 0;
}

/* See ss_stats.h. */
int ss_stats_encode_done(ss_buf *out)
{
    ss_buf_reset(out);
    if (ss_buf_grow(out, SS_HDR_SIZE))
        return SS_ENOMEM;
    memset(out->data, 0, SS_HDR_SIZE);
    out->len = SS_HDR_SIZE;
    put_header(out, SS_MSG_DONE);
    return 0;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int get_str(const msgpack_object *v, char dst[SS_STATS_NAME_MAX])
{
    if (v->type != MSGPACK_OBJECT_STR ||
        v->via.str.size >= SS_STATS_NAME_MAX ||
        memchr(v->via.str.ptr, '\0', v->via.str.size))
        return SS_EPROTO;
    memcpy(dst, v->via.str.ptr, v->via.str.size);
    dst[v->via.str.size] = '\0';
    return 0;
}

/* Decodes one key/value pair into s. Unknown keys are accepted. */
static int decode_pair(const msgpack_object *k, const msgpack_object *v,
                       ss_stats *s)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return SS_EPROTO;
    if (key_is(k, "name"))
        return get_str(v, s->name);
    if (key_is(k, "role"))
        return get_str(v, s->role);
    if (key_is(k, "stage"))
        return get_str(v, s->stage);
    if (key_is(k, "pid")) {
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            v->via.u64 <= INT64_MAX)
            s->pid = (int64_t)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            s->pid = v->via.i64;
        else
            return SS_EPROTO;
        return 0;
    }
    if (key_is(k, "final") || key_is(k, "stateful")) {
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return SS_EPROTO;
        *(key_is(k, "final") ? &s->final : &s->stateful) =
            v->via.boolean ? 1 : 0;
        return 0;
    }
    for (size_t i = 0; i < NCOUNTERS; i++) {
        if (!key_is(k, counters[i].key))
            continue;
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return SS_EPROTO;
        *counter(s, i) = v->via.u64;
        return 0;
    }
    return 0;
}

/* See ss_stats.h. */
int ss_stats_decode(const void *msg, size_t n, ss_stats *s)
{
    ss_hdr h;
    const char *why;
    if (!msg || ss_hdr_decode(msg, n, &h, &why) || h.kind != SS_MSG_STATS)
        return SS_EPROTO;
    ss_stats_init(s);

    const char *payload = (const char *)msg + SS_HDR_SIZE;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = SS_EPROTO;
    if (msgpack_unpack_next(&up, payload, h.len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != h.len || up.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    const msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (decode_pair(&m->ptr[i].key, &m->ptr[i].val, s))
            goto out;
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

struct ss_stats_reporter {
    void *ctx;     /* borrowed, or own_ctx */
    void *own_ctx; /* context created by new when zctx was NULL */
    void *sock;    /* NULL when disabled */
    uint64_t last_ms;
    int reported;
    ss_buf buf;
};

/* See ss_stats.h. */
int ss_stats_reporter_new(void *zctx, const char *endpoint,
                          ss_stats_reporter **out)
{
    *out = NULL;
    ss_stats_reporter *r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    ss_buf_init(&r->buf);
    if (!endpoint || !*endpoint) {
        *out = r;
        return 0;
    }
    r->ctx = zctx;
    if (!r->ctx) {
        r->own_ctx = r->ctx = zmq_ctx_new();
        if (!r->ctx) {
            free(r);
            return SS_ENOMEM;
        }
    }
    int rc = SS_EIO;
    r->sock = zmq_socket(r->ctx, ZMQ_PUSH);
    if (!r->sock)
        goto fail;
    int hwm = 16, linger = 1000, immediate = 0;
    zmq_setsockopt(r->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r->sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    if (zmq_connect(r->sock, endpoint) != 0) {
        rc = errno == EINVAL || errno == EPROTONOSUPPORT ? SS_EINVAL : SS_EIO;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (r->sock)
        zmq_close(r->sock);
    if (r->own_ctx)
        zmq_ctx_term(r->own_ctx);
    free(r);
    return rc;
}

/* See ss_stats.h. */
int ss_stats_reporter_due(const ss_stats_reporter *r)
{
    if (!r || (!r->sock && !ss_metrics_global()))
        return 0;
    return !r->reported || ss_now_ms() - r->last_ms >= 1000;
}

static int send_buf(ss_stats_reporter *r)
{
    /* EAGAIN (nobody listening, queue full) drops the sample by design. */
    (void)zmq_send(r->sock, r->buf.data, r->buf.len, ZMQ_DONTWAIT);
    r->last_ms = ss_now_ms();
    r->reported = 1;
    return 0;
}

/* See ss_stats.h. */
int ss_stats_report(ss_stats_reporter *r, const ss_stats *s)
{
    /* the Prometheus endpoint, when this process serves one */
    ss_metrics_http_publish(ss_metrics_global(), s);
    if (r && !r->sock) {
        r->last_ms = ss_now_ms();
        r->reported = 1;
    }
    if (!r || !r->sock)
        return 0;
    int rc = ss_stats_encode(s, &r->buf);
    return rc ? rc : send_buf(r);
}

/* See ss_stats.h. */
int ss_stats_report_done(ss_stats_reporter *r)
{
    if (!r || !r->sock)
        return 0;
    int rc = ss_stats_encode_done(&r->buf);
    return rc ? rc : send_buf(r);
}

/* See ss_stats.h. */
void ss_stats_reporter_destroy(ss_stats_reporter **p)
{
    if (!p || !*p)
        return;
    ss_stats_reporter *r = *p;
    if (r->sock)
        zmq_close(r->sock);
    if (r->own_ctx)
        zmq_ctx_term(r->own_ctx);
    ss_buf_release(&r->buf);
    free(r);
    *p = NULL;
}
