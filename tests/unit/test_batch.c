/*
 * test_batch.c - the wire version 2 header (src/wire/ss_batch.c): every
 * field at its documented offset, the round trip, and each check of
 * ss_hdr_decode (version, flags, instance, span, partition, length).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "securestreams.h"
#include "node/ss_node.h"
#include "wire/ss_batch.h"

static ss_hdr sample(void)
{
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART | SS_BF_FINAL;
    h.stream = 0x01020304u;
    h.part = 5;
    h.seq = 0x1122334455667788ull;
    h.count = 0;
    h.len = 0;
    h.first_row = 99;
    h.aux = 0xa0a0a0a0b0b0b0b0ull;
    h.run = 0x0123456789abcdefull;
    h.producer = 0xdeadbeefu;
    h.epoch = 7;
    h.instance = 0x5eed1234u;
    return h;
}

static void test_layout(void **state)
{
    (void)state;
    uint8_t b[SS_HDR_SIZE];
    ss_hdr h = sample();
    assert_int_equal(SS_HDR_SIZE, 72);
    ss_hdr_encode(&h, b);
    assert_memory_equal(b, "SSB1", 4);
    assert_int_equal(b[4], 2);
    assert_int_equal(b[5], SS_MSG_DATA);
    assert_int_equal(ss_get_u16(b + 6), SS_BF_LAST_PART | SS_BF_FINAL);
    assert_int_equal(ss_get_u32(b + 8), 0x01020304u);
    assert_int_equal(ss_get_u64(b + 16), 0x1122334455667788ull);
    assert_int_equal(ss_get_u64(b + 48), 0x0123456789abcdefull);
    assert_int_equal(ss_get_u32(b + 56), 0xdeadbeefu);
    assert_int_equal(ss_get_u32(b + 60), 7);
    assert_int_equal(ss_get_u16(b + 64), 0);
    assert_int_equal(ss_get_u16(b + 66), 0);
    assert_int_equal(ss_get_u32(b + 68), 0x5eed1234u);
    ss_hdr back;
    const char *why = NULL;
    assert_int_equal(ss_hdr_decode(b, sizeof b, &back, &why), 0);
    assert_int_equal(back.run, h.run);
    assert_int_equal(back.producer, h.producer);
    assert_int_equal(back.epoch, 7);
    assert_int_equal(back.seq, h.seq);
    assert_int_equal(back.aux, h.aux);
    assert_int_equal(back.instance, 0x5eed1234u);
}

/* Encodes h, lets edit change the bytes, and expects decode to refuse
 * with a reason containing want. */
static void refuse(ss_hdr h, void (*edit)(uint8_t *), const char *want)
{
    uint8_t b[SS_HDR_SIZE];
    ss_hdr_encode(&h, b);
    if (edit)
        edit(b);
    ss_hdr back;
    const char *why = NULL;
    assert_int_equal(ss_hdr_decode(b, sizeof b, &back, &why), SS_EPROTO);
    assert_non_null(why);
    if (!strstr(why, want))
        fail_msg("reason '%s' does not say '%s'", why, want);
}

static void set_v1(uint8_t *b) { b[4] = 1; }
/* an instance id on a message that is not DATA (here an EOS) */
static void set_instance_eos(uint8_t *b) { b[5] = SS_MSG_EOS; b[70] = 1; }
static void set_flag7(uint8_t *b) { b[6] |= 0x80; }
static void set_span(uint8_t *b) { ss_put_u16(b + 66, 3); }
static void set_partition(uint8_t *b) { ss_put_u16(b + 64, 1); }
static void set_kind13(uint8_t *b) { b[5] = 13; }

static void test_checks(void **state)
{
    (void)state;
    ss_hdr h = sample();
    refuse(h, set_v1, "unsupported wire version");
    refuse(h, set_instance_eos, "instance field set on a message that is "
                                "not DATA");
    refuse(h, set_flag7, "unknown flag");
    refuse(h, set_span, "span set without the RANGE flag");
    refuse(h, set_partition, "partition set without");
    refuse(h, set_kind13, "unknown message kind");
    ss_hdr r = h;
    r.flags |= SS_BF_RANGE; /* RANGE needs a span of 1.. */
    refuse(r, NULL, "RANGE flag with a span of 0");
    r.span = 16;
    uint8_t b[SS_HDR_SIZE];
    ss_hdr_encode(&r, b);
    ss_hdr back;
    const char *why;
    assert_int_equal(ss_hdr_decode(b, sizeof b, &back, &why), 0);
    assert_int_equal(back.span, 16);
    ss_hdr p = h;
    p.flags |= SS_BF_PARTITIONED;
    p.partition = 4096;
    refuse(p, NULL, "4096 key groups");
    p.partition = 4095;
    ss_hdr_encode(&p, b);
    assert_int_equal(ss_hdr_decode(b, sizeof b, &back, &why), 0);
    assert_int_equal(back.partition, 4095);
    /* the version of a message we cannot decode can still be named */
    set_v1(b);
    assert_int_equal(ss_hdr_version(b, sizeof b), 1);
    assert_int_equal(ss_hdr_decode(b, sizeof b, &back, &why), SS_EPROTO);
    assert_int_equal(back.version, 1);
    assert_int_equal(ss_hdr_version("XXXX\2", 5), -1);
    /* a 48-byte (version 1 sized) message is too short */
    ss_hdr_encode(&h, b);
    assert_int_equal(ss_hdr_decode(b, 48, &back, &why), SS_EPROTO);
    assert_non_null(strstr(why, "72-byte"));
    assert_string_equal(ss_msg_kind_name(SS_MSG_BARRIER), "barrier");
}

static void test_name_id(void **state)
{
    (void)state;
    /* FNV-1a 32 reference values */
    assert_int_equal(ss_name_id(""), 2166136261u);
    assert_int_equal(ss_name_id("a"), 0xe40c292cu);
    assert_int_equal(ss_name_id("foobar"), 0xbf9cf968u);
}

/* Memory in flight is bounded in bytes (issue 9): the defaults. 64 KiB
 * batches keep their 16 credits, larger ones get fewer (the default 256
 * KiB: 4), never fewer than 2; a worker's default credits follow its batch size, an explicit
 * --credits wins. */
static void test_inflight_defaults(void **state)
{
    (void)state;
    assert_int_equal(SS_BATCH_DEFAULT_SIZE, 256u << 10);
    assert_int_equal(SS_BATCH_INFLIGHT_BYTES, 16u * ((64u << 10) + 1024u));
    assert_int_equal(ss_batch_credits(0, 16), 4);
    assert_int_equal(ss_batch_credits(64u << 10, 16), 16);
    assert_int_equal(ss_batch_credits(128u << 10, 16), 8);
    assert_int_equal(ss_batch_credits(256u << 10, 16), 4);
    assert_int_equal(ss_batch_credits(512u << 10, 16), 2);
    assert_int_equal(ss_batch_credits(SS_BATCH_MAX_SIZE, 16), 2);
    assert_int_equal(ss_batch_credits(256, 16), 16);   /* the cap */
    assert_int_equal(ss_batch_credits(256, 1), 2);     /* at least 2 */
    ss_node_opts o;
    ss_node_opts_default(&o);
    assert_int_equal(o.batch_size, SS_BATCH_DEFAULT_SIZE);
    assert_int_equal(ss_node_credits(&o), 4);
    o.batch_size = 64u << 10;
    assert_int_equal(ss_node_credits(&o), 16);
    o.credits = 7;
    assert_int_equal(ss_node_credits(&o), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_name_id),
        cmocka_unit_test(test_inflight_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
