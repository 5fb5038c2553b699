/*
 * ss_proto.c - control messages of the credit protocol (see ss_proto.h).
 *
 * Payloads are packed with msgpack_packer into a msgpack_sbuffer and
 * parsed with msgpack_unpack_next into an object tree that we walk with
 * strict type checks: a payload comes from the network and may be hostile.
 */
#include "net/ss_proto.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- packing ---------------------------------------------------------- */

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n))
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

static int pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    return pack_str(pk, k) || pack_str(pk, v ? v : "");
}

static int pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    return pack_str(pk, k) || msgpack_pack_uint64(pk, v);
}

/* Writes header h followed by the packed map in sb; frees sb. */
static int finish(ss_buf *out, ss_hdr *h, msgpack_sbuffer *sb, int packerr)
{
    int rc = packerr ? SS_ENOMEM : ss_proto_build(out, h, sb->data,
                                                  sb->size);
    msgpack_sbuffer_destroy(sb);
    return rc;
}

static int name_ok(const char *s)
{
    return !s || strlen(s) < SS_PROTO_NAME_MAX;
}

/* See ss_proto.h. */
int ss_proto_build(ss_buf *out, const ss_hdr *h, const void *payload,
                   size_t len)
{
    if (len > SS_BATCH_MAX_SIZE)
        return SS_ETOOBIG;
    ss_hdr hh = *h;
    hh.len = (uint32_t)len;
    ss_buf_reset(out);
    if (ss_buf_grow(out, SS_HDR_SIZE + len))
        return SS_ENOMEM;
    uint8_t raw[SS_HDR_SIZE];
    ss_hdr_encode(&hh, raw);
    ss_buf_put(out, raw, SS_HDR_SIZE);
    if (len)
        ss_buf_put(out, payload, len);
    return 0;
}

/* See ss_proto.h. */
int ss_proto_hello(ss_buf *out, const ss_hello *he)
{
    if (!name_ok(he->name) || !name_ok(he->role) || !name_ok(he->stage) ||
        !name_ok(he->group))
        return SS_EINVAL;
    ss_hdr h = {.kind = SS_MSG_HELLO, .aux = he->credits};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int e = msgpack_pack_map(&pk, 7 + (he->index != 0) +
                                      (he->window != 0) +
                                      (he->window_bytes != 0)) ||
            pack_kv_str(&pk, "name", he->name) ||
            pack_kv_str(&pk, "role", he->role) ||
            pack_kv_str(&pk, "stage", he->stage) ||
            pack_kv_u64(&pk, "credits", he->credits) ||
            pack_str(&pk, "stateful") ||
            (he->stateful ? msgpack_pack_true(&pk)
                          : msgpack_pack_false(&pk)) ||
            pack_kv_str(&pk, "group", he->group) ||
            pack_kv_u64(&pk, "members", he->members) ||
            (he->index && pack_kv_u64(&pk, "index", he->index)) ||
            (he->window && pack_kv_u64(&pk, "window", he->window)) ||
            (he->window_bytes &&
             pack_kv_u64(&pk, "window_bytes", he->window_bytes));
    return finish(out, &h, &sb, e);
}

/* See ss_proto.h. */
int ss_proto_welcome(ss_buf *out, const ss_welcome *w)
{
    if (!name_ok(w->router))
        return SS_EINVAL;
    ss_hdr h = {.kind = SS_MSG_WELCOME};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int e = msgpack_pack_map(&pk, w->max_frame ? 4 : 3) ||
            pack_kv_str(&pk, "router", w->router) ||
            pack_kv_u64(&pk, "heartbeat_ms", w->heartbeat_ms) ||
            pack_kv_u64(&pk, "peer_timeout_ms", w->peer_timeout_ms) ||
            (w->max_frame && pack_kv_u64(&pk, "max_frame", w->max_frame));
    return finish(out, &h, &sb, e);
}

/* Header carrying the lineage (and flags) of batch. */
static ss_hdr lineage_hdr(int kind, const ss_hdr *batch, uint64_t aux)
{
    ss_hdr h = {.kind = (uint8_t)kind,
                .flags = batch->flags,
                .stream = batch->stream,
                .part = batch->part,
                .seq = batch->seq,
                .aux = aux};
    return h;
}

/* See ss_proto.h. */
int ss_proto_credit(ss_buf *out, const ss_hdr *batch, uint32_t credits)
{
    ss_hdr h = lineage_hdr(SS_MSG_CREDIT, batch, credits);
    return ss_proto_build(out, &h, NULL, 0);
}

/* See ss_proto.h. */
int ss_proto_received(ss_buf *out, const ss_hdr *msg)
{
    ss_hdr h = lineage_hdr(SS_MSG_RECEIVED, msg, msg->kind);
    return ss_proto_build(out, &h, NULL, 0);
}

/* One CREDIT/RECEIVED for v[0..n-1]: header = v[0], count = n, and the
 * list in the payload when n > 1. */
static int acks(ss_buf *out, int kind, const ss_lineage *v, size_t n,
                uint64_t aux)
{
    if (n == 0 || n > SS_PROTO_ACKS_MAX)
        return SS_EINVAL;
    ss_hdr h = {.kind = (uint8_t)kind,
                .stream = v[0].stream,
                .part = v[0].part,
                .seq = v[0].seq,
                .count = (uint32_t)n,
                .aux = aux};
    if (n == 1)
        return ss_proto_build(out, &h, NULL, 0);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int e = msgpack_pack_map(&pk, 1) || pack_str(&pk, "batches") ||
            msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n && !e; i++)
        e = msgpack_pack_array(&pk, 3) ||
            msgpack_pack_uint32(&pk, v[i].stream) ||
            msgpack_pack_uint64(&pk, v[i].seq) ||
            msgpack_pack_uint32(&pk, v[i].part);
    return finish(out, &h, &sb, e);
}

/* See ss_proto.h. */
int ss_proto_credit_n(ss_buf *out, const ss_lineage *v, size_t n,
                      uint32_t credits)
{
    return acks(out, SS_MSG_CREDIT, v, n, credits);
}

/* See ss_proto.h. */
int ss_proto_received_n(ss_buf *out, const ss_lineage *v, size_t n)
{
    return acks(out, SS_MSG_RECEIVED, v, n, SS_MSG_DATA);
}

/* See ss_proto.h. */
int ss_proto_heartbeat(ss_buf *out)
{
    ss_hdr h = {.kind = SS_MSG_HEARTBEAT};
    return ss_proto_build(out, &h, NULL, 0);
}

/* See ss_proto.h. */
int ss_proto_abort(ss_buf *out, const char *reason)
{
    ss_hdr h = {.kind = SS_MSG_ABORT};
    size_t n = strlen(reason);
    if (n > SS_PROTO_REASON_MAX - 1)
        n = SS_PROTO_REASON_MAX - 1;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int e = msgpack_pack_map(&pk, 1) || pack_str(&pk, "reason") ||
            msgpack_pack_str(&pk, n) || msgpack_pack_str_body(&pk, reason, n);
    return finish(out, &h, &sb, e);
}

/* ---- parsing ---------------------------------------------------------- */

/* See ss_proto.h. */
size_t ss_proto_payload_max(int kind)
{
    return kind == SS_MSG_DATA  ? (size_t)SS_BATCH_MAX_SIZE
           : kind == SS_MSG_EOS ? (size_t)SS_PROTO_EOS_MAX
                                : (size_t)SS_PROTO_CTRL_MAX;
}

/*
 * Unpacks exactly one map from [p, p+n), at most max bytes. Returns 0 or
 * SS_EPROTO. The bytes are validated first by our own decoder, which
 * checks every claimed length and element count against the bytes that
 * are there: msgpack_unpack_next reserves memory for the count a
 * container claims before it reads any element, so that 5 bytes
 * claiming a map of 2^32 pairs would ask for 100 GB.
 */
static int unpack_map(const void *p, size_t n, msgpack_unpacked *u,
                      const char **why, size_t max)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    if (n == 0) {
        *why = "empty payload where a map was expected";
        return SS_EPROTO;
    }
    if (n > max) {
        *why = max == SS_PROTO_EOS_MAX
                   ? "payload larger than 16 MiB (the limit of an end of "
                     "stream)"
                   : "payload larger than 64 KiB (the limit of a control "
                     "message)";
        return SS_EPROTO;
    }
    if (ss_mp_validate(p, n, &off, NULL, 0) != 0) {
        *why = "payload is not valid MessagePack (a length or count "
               "larger than the bytes that follow, or a bad type)";
        return SS_EPROTO;
    }
    off = 0;
    if (msgpack_unpack_next(u, p, n, &off) != MSGPACK_UNPACK_SUCCESS) {
        *why = "payload is not valid MessagePack";
        return SS_EPROTO;
    }
    if (off != n) {
        *why = "trailing bytes after the payload map";
        return SS_EPROTO;
    }
    if (u->data.type != MSGPACK_OBJECT_MAP) {
        *why = "payload is not a map";
        return SS_EPROTO;
    }
    return 0;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/* Copies a str object into dst[cap]; SS_EPROTO if not a str, too long or
 * holding a NUL byte. */
static int get_str(const msgpack_object *o, char *dst, size_t cap,
                   const char **why, const char *toolong)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        *why = "a string field holds another type";
        return SS_EPROTO;
    }
    if (o->via.str.size >= cap) {
        *why = toolong;
        return SS_EPROTO;
    }
    if (memchr(o->via.str.ptr, 0, o->via.str.size)) {
        *why = "a string field holds a NUL byte";
        return SS_EPROTO;
    }
    /* names reach log lines and file names: no newline, no escape
     * sequence, no other control character */
    for (uint32_t i = 0; i < o->via.str.size; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "a string field holds a control character (a newline, "
                   "a tab, an escape...)";
            return SS_EPROTO;
        }
    }
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

static int get_u64(const msgpack_object *o, uint64_t max, uint64_t *v,
                   const char **why)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *why = "an integer field holds another type or a negative number";
        return SS_EPROTO;
    }
    if (o->via.u64 > max) {
        *why = "an integer field is out of range";
        return SS_EPROTO;
    }
    *v = o->via.u64;
    return 0;
}

static int get_u32(const msgpack_object *o, uint32_t max, uint32_t *v,
                   const char **why)
{
    uint64_t x;
    int rc = get_u64(o, max, &x, why);
    if (rc == 0)
        *v = (uint32_t)x;
    return rc;
}

static const char *const toolong_name = "a name is longer than 63 bytes";

/* See ss_proto.h. */
int ss_proto_acks_parse(const ss_hdr *h, const void *p, size_t n,
                        ss_lineage *v, size_t cap, const char **why)
{
    if (h->count <= 1 && n == 0) {
        if (cap < 1) {
            *why = "too many batches acknowledged at once";
            return SS_EPROTO;
        }
        v[0] = ss_proto_lineage(h);
        return 1;
    }
    msgpack_unpacked u;
    int rc = unpack_map(p, n, &u, why, SS_PROTO_CTRL_MAX);
    const msgpack_object *list = NULL;
    for (uint32_t i = 0; rc == 0 && i < u.data.via.map.size; i++)
        if (key_is(&u.data.via.map.ptr[i].key, "batches"))
            list = &u.data.via.map.ptr[i].val;
    if (rc == 0 && (!list || list->type != MSGPACK_OBJECT_ARRAY)) {
        *why = "acknowledgement without its list of batches";
        rc = SS_EPROTO;
    }
    if (rc == 0 && (list->via.array.size != h->count ||
                    list->via.array.size == 0)) {
        *why = "acknowledgement lists another number of batches than its "
               "count";
        rc = SS_EPROTO;
    }
    if (rc == 0 && (list->via.array.size > cap ||
                    list->via.array.size > SS_PROTO_ACKS_MAX)) {
        *why = "too many batches acknowledged at once";
        rc = SS_EPROTO;
    }
    for (uint32_t i = 0; rc == 0 && i < list->via.array.size; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3) {
            *why = "an acknowledged batch is not [stream, seq, part]";
            rc = SS_EPROTO;
            break;
        }
        rc = get_u32(&e->via.array.ptr[0], UINT32_MAX, &v[i].stream, why);
        if (rc == 0)
            rc = get_u64(&e->via.array.ptr[1], UINT64_MAX, &v[i].seq, why);
        if (rc == 0)
            rc = get_u32(&e->via.array.ptr[2], UINT32_MAX, &v[i].part, why);
    }
    size_t count = rc == 0 ? list->via.array.size : 0;
    msgpack_unpacked_destroy(&u);
    return rc ? rc : (int)count;
}

/* See ss_proto.h. */
int ss_proto_hello_parse(const void *p, size_t n, ss_hello *h,
                         const char **why)
{
    msgpack_unpacked u;
    memset(h, 0, sizeof *h);
    int rc = unpack_map(p, n, &u, why, SS_PROTO_CTRL_MAX);
    int have_name = 0;
    for (uint32_t i = 0; rc == 0 && i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;
        const msgpack_object *v = &u.data.via.map.ptr[i].val;
        if (key_is(k, "name")) {
            rc = get_str(v, h->name, sizeof h->name, why, toolong_name);
            have_name = 1;
        } else if (key_is(k, "role")) {
            rc = get_str(v, h->role, sizeof h->role, why, toolong_name);
        } else if (key_is(k, "stage")) {
            rc = get_str(v, h->stage, sizeof h->stage, why, toolong_name);
        } else if (key_is(k, "group")) {
            rc = get_str(v, h->group, sizeof h->group, why, toolong_name);
        } else if (key_is(k, "credits")) {
            rc = get_u32(v, SS_PROTO_CREDITS_MAX, &h->credits, why);
        } else if (key_is(k, "members")) {
            rc = get_u32(v, SS_PROTO_ROSTER_MAX, &h->members, why);
        } else if (key_is(k, "index")) {
            rc = get_u32(v, SS_PROTO_ROSTER_MAX, &h->index, why);
        } else if (key_is(k, "window")) {
            rc = get_u32(v, SS_PROTO_WINDOW_MAX, &h->window, why);
        } else if (key_is(k, "window_bytes")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *why = "hello field 'window_bytes' is not a count";
                rc = SS_EPROTO;
            } else {
                h->window_bytes = v->via.u64;
            }
        } else if (key_is(k, "stateful")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN) {
                *why = "hello field 'stateful' is not a boolean";
                rc = SS_EPROTO;
            } else {
                h->stateful = v->via.boolean;
            }
        } /* unknown keys are ignored: newer peers may add some */
    }
    if (rc == 0 && (!have_name || !h->name[0])) {
        *why = "hello without a name";
        rc = SS_EPROTO;
    }
    if (rc == 0 && strcmp(h->role, "source") != 0 &&
        strcmp(h->role, "worker") != 0 && strcmp(h->role, "sink") != 0) {
        *why = "hello role is not source, worker or sink";
        rc = SS_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* See ss_proto.h. */
int ss_proto_welcome_parse(const void *p, size_t n, ss_welcome *w,
                           const char **why)
{
    msgpack_unpacked u;
    memset(w, 0, sizeof *w);
    int rc = unpack_map(p, n, &u, why, SS_PROTO_CTRL_MAX);
    for (uint32_t i = 0; rc == 0 && i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;
        const msgpack_object *v = &u.data.via.map.ptr[i].val;
        if (key_is(k, "router"))
            rc = get_str(v, w->router, sizeof w->router, why, toolong_name);
        else if (key_is(k, "heartbeat_ms"))
            rc = get_u32(v, 3600000, &w->heartbeat_ms, why);
        else if (key_is(k, "peer_timeout_ms"))
            rc = get_u32(v, 3600000, &w->peer_timeout_ms, why);
        else if (key_is(k, "max_frame"))
            rc = get_u64(v, (uint64_t)SS_PROTO_MSG_MAX, &w->max_frame, why);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* See ss_proto.h. */
int ss_proto_abort_parse(const void *p, size_t n, char *reason, size_t cap,
                         const char **why)
{
    msgpack_unpacked u;
    int rc = unpack_map(p, n, &u, why, SS_PROTO_CTRL_MAX);
    int found = 0;
    for (uint32_t i = 0; rc == 0 && i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;
        const msgpack_object *v = &u.data.via.map.ptr[i].val;
        if (!key_is(k, "reason"))
            continue;
        if (v->type != MSGPACK_OBJECT_STR) {
            *why = "abort reason is not a string";
            rc = SS_EPROTO;
            break;
        }
        if (cap) {
            size_t m = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
            memcpy(reason, v->via.str.ptr, m);
            reason[m] = 0;
            for (size_t j = 0; j < m; j++) /* keep it printable for logs */
                if ((unsigned char)reason[j] < 0x20)
                    reason[j] = '?';
        }
        found = 1;
    }
    if (rc == 0 && !found) {
        *why = "abort without a reason";
        rc = SS_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- end of stream ---------------------------------------------------- */

/* See ss_proto.h. */
void ss_eos_init(ss_eos *e) { memset(e, 0, sizeof *e); }

/* See ss_proto.h. */
void ss_eos_release(ss_eos *e)
{
    for (size_t i = 0; i < e->nroster; i++)
        free(e->roster[i]);
    free(e->roster);
    free(e->streams);
    memset(e, 0, sizeof *e);
}

/* Index of the first row whose id >= stream. */
static size_t eos_lower(const ss_eos *e, uint32_t stream)
{
    size_t lo = 0, hi = e->nstreams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->streams[mid].stream < stream)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* See ss_proto.h. */
const ss_eos_stream *ss_eos_find(const ss_eos *e, uint32_t stream)
{
    size_t i = eos_lower(e, stream);
    if (i < e->nstreams && e->streams[i].stream == stream)
        return &e->streams[i];
    return NULL;
}

/* See ss_proto.h. */
int ss_eos_add_stream(ss_eos *e, uint32_t stream, uint64_t count)
{
    size_t i = eos_lower(e, stream);
    if (i < e->nstreams && e->streams[i].stream == stream)
        return e->streams[i].count == count ? 0 : SS_EINTEGRITY;
    if (e->nstreams == e->capstreams) {
        size_t cap = e->capstreams ? 2 * e->capstreams : 8;
        ss_eos_stream *s = realloc(e->streams, cap * sizeof *s);
        if (!s)
            return SS_ENOMEM;
        e->streams = s;
        e->capstreams = cap;
    }
    memmove(e->streams + i + 1, e->streams + i,
            (e->nstreams - i) * sizeof *e->streams);
    e->streams[i].stream = stream;
    e->streams[i].count = count;
    e->nstreams++;
    return 0;
}

/* See ss_proto.h. */
int ss_eos_add_roster(ss_eos *e, const char *name)
{
    if (strlen(name) >= SS_PROTO_NAME_MAX)
        return SS_EINVAL;
    if (e->nroster == e->caproster) {
        size_t cap = e->caproster ? 2 * e->caproster : 4;
        char **r = realloc(e->roster, cap * sizeof *r);
        if (!r)
            return SS_ENOMEM;
        e->roster = r;
        e->caproster = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return SS_ENOMEM;
    e->roster[e->nroster++] = copy;
    return 0;
}

/* See ss_proto.h. */
int ss_eos_merge(ss_eos *into, const ss_eos *from, uint32_t *stream,
                 const char **why)
{
    for (size_t i = 0; i < from->nstreams; i++) {
        int rc = ss_eos_add_stream(into, from->streams[i].stream,
                                   from->streams[i].count);
        if (rc == SS_EINTEGRITY) {
            if (stream)
                *stream = from->streams[i].stream;
            if (why)
                *why = "a stream is declared with two different batch "
                       "counts";
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* See ss_proto.h. */
int ss_eos_encode(const ss_eos *e, ss_buf *out)
{
    if (!name_ok(e->group))
        return SS_EINVAL;
    ss_hdr h = {.kind = SS_MSG_EOS};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int err = msgpack_pack_map(&pk, 4) || pack_str(&pk, "streams") ||
              msgpack_pack_array(&pk, e->nstreams);
    for (size_t i = 0; !err && i < e->nstreams; i++)
        err = msgpack_pack_array(&pk, 2) ||
              msgpack_pack_uint32(&pk, e->streams[i].stream) ||
              msgpack_pack_uint64(&pk, e->streams[i].count);
    err = err || pack_str(&pk, "roster") ||
          msgpack_pack_array(&pk, e->nroster);
    for (size_t i = 0; !err && i < e->nroster; i++)
        err = pack_str(&pk, e->roster[i]);
    err = err || pack_kv_str(&pk, "group", e->group) ||
          pack_kv_u64(&pk, "members", e->members);
    return finish(out, &h, &sb, err);
}

static int decode_streams(const msgpack_object *v, ss_eos *e,
                          const char **why)
{
    if (v->type != MSGPACK_OBJECT_ARRAY) {
        *why = "eos field 'streams' is not an array";
        return SS_EPROTO;
    }
    if (v->via.array.size > SS_PROTO_STREAMS_MAX) {
        *why = "eos declares too many streams";
        return SS_EPROTO;
    }
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *row = &v->via.array.ptr[i];
        uint32_t id;
        uint64_t count;
        if (row->type != MSGPACK_OBJECT_ARRAY || row->via.array.size != 2) {
            *why = "eos stream row is not a [stream, count] pair";
            return SS_EPROTO;
        }
        if (get_u32(&row->via.array.ptr[0], UINT32_MAX, &id, why) ||
            get_u64(&row->via.array.ptr[1], UINT64_MAX, &count, why))
            return SS_EPROTO;
        int rc = ss_eos_add_stream(e, id, count);
        if (rc == SS_EINTEGRITY) {
            *why = "eos declares a stream twice with different counts";
            return SS_EPROTO;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_roster(const msgpack_object *v, ss_eos *e,
                         const char **why)
{
    if (v->type != MSGPACK_OBJECT_ARRAY) {
        *why = "eos field 'roster' is not an array";
        return SS_EPROTO;
    }
    if (v->via.array.size > SS_PROTO_ROSTER_MAX) {
        *why = "eos roster is too long";
        return SS_EPROTO;
    }
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        char name[SS_PROTO_NAME_MAX];
        int rc = get_str(&v->via.array.ptr[i], name, sizeof name, why,
                         toolong_name);
        if (rc == 0)
            rc = ss_eos_add_roster(e, name);
        if (rc)
            return rc;
    }
    return 0;
}

/* See ss_proto.h. */
int ss_eos_decode(const void *p, size_t n, ss_eos *e, const char **why)
{
    msgpack_unpacked u;
    ss_eos_release(e);
    int rc = unpack_map(p, n, &u, why, SS_PROTO_EOS_MAX);
    for (uint32_t i = 0; rc == 0 && i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;
        const msgpack_object *v = &u.data.via.map.ptr[i].val;
        if (key_is(k, "streams"))
            rc = decode_streams(v, e, why);
        else if (key_is(k, "roster"))
            rc = decode_roster(v, e, why);
        else if (key_is(k, "group"))
            rc = get_str(v, e->group, sizeof e->group, why, toolong_name);
        else if (key_is(k, "members"))
            rc = get_u32(v, SS_PROTO_ROSTER_MAX, &e->members, why);
    }
    if (rc == SS_ENOMEM)
        *why = "out of memory";
    msgpack_unpacked_destroy(&u);
    if (rc)
        ss_eos_release(e);
    return rc;
}
