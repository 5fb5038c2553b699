/*
 * ss_stats.c - the STATS and DONE messages (see ss_stats.h).
 */
#include "wire/ss_stats.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <msgpack.h>
#include <stddef.h>
#include <string.h>

/* The unsigned counters, in the order they are encoded. */
static const struct {
    const char *key;
    size_t off;
} counters[] = {
#define COUNTER(f, ...) {#f, offsetof(ss_stats, f)},
    SS_STATS_COUNTERS(COUNTER)
#undef COUNTER
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

static int encode(const ss_stats *s, int marks, ss_buf *out);

/* See ss_stats.h. */
int ss_stats_encode(const ss_stats *s, ss_buf *out)
{
    return encode(s, 0, out);
}

/* The STATS map of s, with its marks when marks (barrier acks only). */
static int encode(const ss_stats *s, int marks, ss_buf *out)
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
    if (msgpack_pack_map(&pk, 6 + NCOUNTERS + (marks ? 3 : 0)) ||
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
    if (marks &&
        (pack_key(&pk, "rejects_len") ||
         msgpack_pack_int64(&pk, tmp.rejects_len) ||
         pack_key(&pk, "stdout_len") ||
         msgpack_pack_int64(&pk, tmp.stdout_len) ||
         pack_key(&pk, "output_len") ||
         msgpack_pack_int64(&pk, tmp.output_len)))
        return SS_ENOMEM;
    put_header(out, SS_MSG_STATS);
    return 0;
}

/* See ss_stats.h. */
int ss_stats_encode_barrier(const ss_stats *s, uint32_t epoch, ss_buf *out)
{
    int rc = encode(s, s->marks, out);
    if (rc)
        return rc;
    ((uint8_t *)out->data)[5] = SS_MSG_BARRIER;
    ss_put_u32((uint8_t *)out->data + 60, epoch);
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
    if (key_is(k, "rejects_len") || key_is(k, "stdout_len") ||
        key_is(k, "output_len")) {
        int64_t x;
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            v->via.u64 <= INT64_MAX)
            x = (int64_t)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 == -1)
            x = -1;
        else
            return SS_EPROTO;
        *(key_is(k, "rejects_len")  ? &s->rejects_len
          : key_is(k, "stdout_len") ? &s->stdout_len
                                    : &s->output_len) = x;
        s->marks = 1;
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

static int decode_kind(const void *msg, size_t n, ss_stats *s, int kind,
                       uint32_t *epoch);

/* See ss_stats.h. */
int ss_stats_decode(const void *msg, size_t n, ss_stats *s)
{
    return decode_kind(msg, n, s, SS_MSG_STATS, NULL);
}

/* See ss_stats.h. */
int ss_stats_decode_barrier(const void *msg, size_t n, ss_stats *s,
                            uint32_t *epoch)
{
    return decode_kind(msg, n, s, SS_MSG_BARRIER, epoch);
}

static int decode_kind(const void *msg, size_t n, ss_stats *s, int kind,
                       uint32_t *epoch)
{
    ss_hdr h;
    const char *why;
    if (!msg || ss_hdr_decode(msg, n, &h, &why) || h.kind != kind ||
        (kind == SS_MSG_BARRIER && h.epoch == 0))
        return SS_EPROTO;
    if (epoch)
        *epoch = h.epoch;
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
