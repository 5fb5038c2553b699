/*
 * test_integrity.c - the sink's end-to-end stream check (ss_integrity)
 * over long streams: its record stays flat while the checks (twice,
 * missing, after the end) hold for batches long past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/ss_proto.h"
#include "node/ss_integrity.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <stdio.h>
#include <string.h>

static ss_hdr batch(uint32_t stream, uint64_t seq, uint64_t aux)
{
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART;
    h.stream = stream;
    h.seq = seq;
    h.aux = aux;
    return h;
}

/* Four streams of 250,000 batches, each a little out of order (pairs
 * swapped): the record is the same size after 1,000 batches a stream and
 * after all of them (it kept a bit per batch for the run's life: 31 KiB a
 * stream here, 1 MB a day on a followed input at 100 batches a second);
 * a replay of an early batch is still a duplicate, and the run checks
 * out whole. */
static void test_flat_over_long_streams(void **state)
{
    (void)state;
    ss_integrity *ig;
    char err[256];
    assert_int_equal(ss_integrity_new(0, &ig), 0);
    const uint64_t n = 250000;
    size_t first = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = i ^ 1;
        for (uint32_t s = 1; s <= 4; s++) {
            ss_hdr h = batch(s, seq, seq == n - 1 ? (SS_AUX_END | 4) : 0);
            if (ss_integrity_batch(ig, &h, err, sizeof err))
                fail_msg("stream %u batch %llu: %s", s,
                         (unsigned long long)seq, err);
        }
        if (i == 1000)
            first = ss_integrity_bytes(ig);
    }
    fprintf(stderr, "integrity record: %zu bytes after 1000 batches a "
                    "stream, %zu after %llu\n",
            first, ss_integrity_bytes(ig), (unsigned long long)n);
    assert_int_equal(ss_integrity_bytes(ig), first);
    ss_hdr h = batch(2, 7, 0); /* replayed, long past */
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "received twice"));
    ss_eos eos;
    ss_eos_init(&eos);
    for (uint32_t s = 1; s <= 4; s++)
        ss_eos_add_stream(&eos, s, n);
    if (ss_integrity_finish(ig, &eos, err, sizeof err))
        fail_msg("finish: %s", err);
    ss_eos_release(&eos);
    ss_integrity_destroy(&ig);
}

/* A batch that never arrives holds the prefix back and is named at the
 * end; one that arrives late, far behind the others, is taken. */
static void test_gap_named_and_late_taken(void **state)
{
    (void)state;
    ss_integrity *ig;
    char err[256];
    assert_int_equal(ss_integrity_new(0, &ig), 0);
    for (uint64_t q = 0; q < 20000; q++) {
        if (q == 5000 || q == 9001)
            continue;
        ss_hdr h = batch(9, q, q == 19999 ? (SS_AUX_END | 1) : 0);
        assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err), 0);
    }
    ss_hdr h = batch(9, 9001, 0); /* late */
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err), 0);
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                     SS_EINTEGRITY);
    h = batch(9, 20000, 0); /* after the end */
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                     SS_EINTEGRITY);
    ss_eos eos;
    ss_eos_init(&eos);
    ss_eos_add_stream(&eos, 9, 20000);
    assert_int_equal(ss_integrity_finish(ig, &eos, err, sizeof err),
                     SS_EINTEGRITY);
    if (!strstr(err, "stream 9 batch 5000 is missing"))
        fail_msg("unclear: %s", err);
    ss_eos_release(&eos);
    ss_integrity_destroy(&ig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_over_long_streams),
        cmocka_unit_test(test_gap_named_and_late_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
