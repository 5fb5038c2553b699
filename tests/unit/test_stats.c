/*
 * test_stats.c - STATS/DONE messages and the reporter (src/wire/ss_stats.c,
 * src/net/ss_stats_reporter.c):
 * round trip of every field, strictness on truncated or mistyped input,
 * and a reporter sending to a PULL socket over inproc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <msgpack.h>
#include <zmq.h>

#include "core/ss_buf.h"
#include "net/ss_stats_reporter.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

static void sample(ss_stats *s)
{
    ss_stats_init(s);
    ss_stats_set_names(s, "map-2", "worker", "map");
    s->pid = 4242;
    s->in = 1000;
    s->in_bytes = 123456;
    s->out = 990;
    s->out_bytes = 120000;
    s->batches_in = 10;
    s->batches_out = 9;
    s->passed = 900;
    s->dropped = 90;
    s->rejected = 10;
    s->queue = 3;
    s->credits = 4;
    s->rss_kb = 2048;
    s->peak_rss_kb = 4096;
    s->enclave_calls = 77;
    s->enclave_ns = UINT64_MAX;
    s->total_bytes = 1ull << 40;
    s->final = 1;
    s->stateful = 1;
}

static void round_trip(void **state)
{
    (void)state;
    ss_stats a, b;
    sample(&a);
    ss_buf buf = SS_BUF_INIT;
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    ss_hdr h;
    const char *why;
    assert_int_equal(ss_hdr_decode(buf.data, buf.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_STATS);
    assert_int_equal(h.len, buf.len - SS_HDR_SIZE);
    assert_int_equal(h.seq, 0);
    assert_int_equal(h.count, 0);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_string_equal(b.name, "map-2");
    assert_string_equal(b.role, "worker");
    assert_string_equal(b.stage, "map");
    assert_int_equal(b.enclave_ns, UINT64_MAX);
    assert_int_equal(b.stateful, 1);

    /* zero values and final = 0 */
    ss_stats_init(&a);
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    ss_buf_release(&buf);
}

/* A checkpoint acknowledgement: the STATS map under kind BARRIER with
 * the epoch in the header; each decoder takes only its own kind, and
 * epoch 0 is refused. */
static void barrier_ack(void **state)
{
    (void)state;
    ss_stats a, b;
    sample(&a);
    ss_buf buf = SS_BUF_INIT;
    uint32_t e = 0;
    assert_int_equal(ss_stats_encode_barrier(&a, 7, &buf), 0);
    ss_hdr h;
    const char *why;
    assert_int_equal(ss_hdr_decode(buf.data, buf.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_BARRIER);
    assert_int_equal(h.epoch, 7);
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e), 0);
    assert_int_equal(e, 7);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), SS_EPROTO);
    ss_put_u32((uint8_t *)buf.data + 60, 0); /* no epoch */
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e),
                     SS_EPROTO);
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e),
                     SS_EPROTO);
    ss_buf_release(&buf);
}

/* The marks of a barrier acknowledgement (the sink's commit): how far
 * each file went, -1 for none, round trip; a STATS message never has
 * them; a mark that is neither a length nor -1 is refused. */
static void barrier_marks(void **state)
{
    (void)state;
    ss_stats a, b;
    sample(&a);
    a.marks = 1;
    a.rejects_len = 0;
    a.stdout_len = 123456789012345;
    a.output_len = -1;
    ss_buf buf = SS_BUF_INIT;
    uint32_t e = 0;
    assert_int_equal(ss_stats_encode_barrier(&a, 3, &buf), 0);
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e), 0);
    assert_memory_equal(&a, &b, sizeof a);
    /* a STATS sample carries no marks */
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), 0);
    assert_int_equal(b.marks, 0);
    assert_int_equal(b.stdout_len, 0);
    /* a barrier without marks decodes with marks 0 */
    a.marks = 0;
    assert_int_equal(ss_stats_encode_barrier(&a, 3, &buf), 0);
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e), 0);
    assert_int_equal(b.marks, 0);
    /* -2 is no length */
    a.marks = 1;
    a.output_len = -2;
    assert_int_equal(ss_stats_encode_barrier(&a, 3, &buf), 0);
    assert_int_equal(ss_stats_decode_barrier(buf.data, buf.len, &b, &e),
                     SS_EPROTO);
    ss_buf_release(&buf);
}

static void long_names_truncated(void **state)
{
    (void)state;
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ss_stats a, b;
    ss_stats_init(&a);
    ss_stats_set_names(&a, big, NULL, big);
    assert_int_equal(strlen(a.name), SS_STATS_NAME_MAX - 1);
    assert_string_equal(a.role, "");
    ss_buf buf = SS_BUF_INIT;
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), 0);
    assert_string_equal(a.name, b.name);
    ss_buf_release(&buf);
}

static void truncated_rejected(void **state)
{
    (void)state;
    ss_stats a, b;
    sample(&a);
    ss_buf buf = SS_BUF_INIT;
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    /* cut anywhere: the header's len no longer matches */
    for (size_t n = 0; n < buf.len; n++)
        assert_int_equal(ss_stats_decode(buf.data, n, &b), SS_EPROTO);
    /* cut the payload and fix len: the map itself is incomplete */
    for (size_t n = SS_HDR_SIZE; n < buf.len; n++) {
        ss_put_u32((uint8_t *)buf.data + 28, (uint32_t)(n - SS_HDR_SIZE));
        assert_int_equal(ss_stats_decode(buf.data, n, &b), SS_EPROTO);
    }
    ss_buf_release(&buf);
}

static void trailing_bytes_rejected(void **state)
{
    (void)state;
    ss_stats a, b;
    sample(&a);
    ss_buf buf = SS_BUF_INIT;
    assert_int_equal(ss_stats_encode(&a, &buf), 0);
    assert_int_equal(ss_buf_append(&buf, "\xc0", 1), 0); /* nil */
    ss_put_u32((uint8_t *)buf.data + 28, (uint32_t)(buf.len - SS_HDR_SIZE));
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &b), SS_EPROTO);
    ss_buf_release(&buf);
}

/* Builds a STATS message whose payload is what pack() writes. */
static void build(ss_buf *out, void (*pack)(msgpack_packer *))
{
    ss_buf_reset(out);
    assert_int_equal(ss_buf_grow(out, SS_HDR_SIZE), 0);
    out->len = SS_HDR_SIZE;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk);
    assert_int_equal(ss_buf_append(out, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_STATS;
    h.len = (uint32_t)(out->len - SS_HDR_SIZE);
    ss_hdr_encode(&h, (uint8_t *)out->data);
}

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void pack_wrong_type(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    key(pk, "in");
    key(pk, "many");
}

static void pack_negative(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    key(pk, "rejected");
    msgpack_pack_int64(pk, -1);
}

static void pack_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void pack_unknown_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    key(pk, "name");
    key(pk, "sink");
    key(pk, "future_field");
    msgpack_pack_array(pk, 0);
    key(pk, "in");
    msgpack_pack_uint64(pk, 5);
}

static void pack_long_name(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    key(pk, "name");
    key(pk, "0123456789012345678901234567890123456789012345678901234567890"
            "123456789");
}

static void pack_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void bad_payloads(void **state)
{
    (void)state;
    ss_buf buf = SS_BUF_INIT;
    ss_stats s;
    build(&buf, pack_wrong_type);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    build(&buf, pack_negative);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    build(&buf, pack_array);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    build(&buf, pack_long_name);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    build(&buf, pack_int_key);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    build(&buf, pack_unknown_key);
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), 0);
    assert_string_equal(s.name, "sink");
    assert_int_equal(s.in, 5);
    assert_int_equal(s.out, 0);

    /* another kind is not STATS */
    buf.data[5] = SS_MSG_DONE;
    assert_int_equal(ss_stats_decode(buf.data, buf.len, &s), SS_EPROTO);
    assert_int_equal(ss_stats_decode(NULL, 0, &s), SS_EPROTO);
    ss_buf_release(&buf);
}

static void done_message(void **state)
{
    (void)state;
    ss_buf buf = SS_BUF_INIT;
    assert_int_equal(ss_stats_encode_done(&buf), 0);
    assert_int_equal(buf.len, SS_HDR_SIZE);
    ss_hdr h;
    const char *why;
    assert_int_equal(ss_hdr_decode(buf.data, buf.len, &h, &why), 0);
    assert_int_equal(h.kind, SS_MSG_DONE);
    ss_buf_release(&buf);
}

static void reporter(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    assert_int_equal(zmq_bind(pull, "inproc://control"), 0);
    int tmo = 2000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &tmo, sizeof tmo);

    ss_stats_reporter *r;
    assert_int_equal(ss_stats_reporter_new(ctx, "inproc://control", &r), 0);
    assert_true(ss_stats_reporter_due(r));
    ss_stats a, b;
    sample(&a);
    ss_stats_fill_self(&a);
    assert_true(a.pid > 0);
    assert_true(a.peak_rss_kb > 0);
    assert_int_equal(ss_stats_report(r, &a), 0);
    assert_false(ss_stats_reporter_due(r));
    assert_int_equal(ss_stats_report_done(r), 0);

    char msg[1024];
    int n = zmq_recv(pull, msg, sizeof msg, 0);
    assert_true(n > SS_HDR_SIZE);
    assert_int_equal(ss_stats_decode(msg, (size_t)n, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    n = zmq_recv(pull, msg, sizeof msg, 0);
    assert_int_equal(n, SS_HDR_SIZE);
    assert_int_equal(msg[5], SS_MSG_DONE);
    ss_stats_reporter_destroy(&r);
    assert_null(r);
    ss_stats_reporter_destroy(&r);

    /* disabled: no endpoint, every call succeeds */
    assert_int_equal(ss_stats_reporter_new(ctx, NULL, &r), 0);
    assert_false(ss_stats_reporter_due(r));
    assert_int_equal(ss_stats_report(r, &a), 0);
    assert_int_equal(ss_stats_report_done(r), 0);
    ss_stats_reporter_destroy(&r);
    assert_int_equal(ss_stats_reporter_new(ctx, "", &r), 0);
    ss_stats_reporter_destroy(&r);

    /* bad endpoint */
    assert_int_not_equal(ss_stats_reporter_new(ctx, "nonsense", &r), 0);
    assert_null(r);

    /* own context, nobody listening: report must not block */
    assert_int_equal(
        ss_stats_reporter_new(NULL, "ipc:///nonexistent/sstream-ctl", &r), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ss_stats_report(r, &a), 0);
    ss_stats_reporter_destroy(&r);

    zmq_close(pull);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(barrier_ack),
        cmocka_unit_test(barrier_marks),
        cmocka_unit_test(long_names_truncated),
        cmocka_unit_test(truncated_rejected),
        cmocka_unit_test(trailing_bytes_rejected),
        cmocka_unit_test(bad_payloads),
        cmocka_unit_test(done_message),
        cmocka_unit_test(reporter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
