/*
 * test_taken.c - the record of the inputs a stateful stage took
 * (ss_taken): each lineage once, in memory that does not grow with the
 * run; and the in-process enclave core (encrypted mode's worker, the
 * sandbox child's core) keeping that record flat over a long input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "enclave/ss_enclave_core.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_msgpack.h"
#include "wire/ss_taken.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bytes the record may hold for n streams with no parts above 0 */
static size_t flat_bound(size_t n)
{
    return 1024 + n * (SS_TAKEN_WINDOW / 8 + 64);
}

/* Four streams of 300,000 batches (more than four windows), each arriving
 * a little out of order: every batch is new once and a duplicate after;
 * the record stays at its first size. */
static void test_flat_over_a_long_run(void **state)
{
    (void)state;
    ss_taken *t = ss_taken_new();
    assert_non_null(t);
    const uint64_t n = 300000;
    size_t first = 0;
    for (uint64_t i = 0; i < n; i++) {
        /* pairs swapped: 1, 0, 3, 2, ... */
        uint64_t seq = i ^ 1;
        for (uint32_t s = 0; s < 4; s++) {
            assert_int_equal(ss_taken_take(t, 100 + s, seq, 0, NULL),
                             SS_TAKEN_NEW);
            if (i % 997 == 0) /* a recent one again */
                assert_int_equal(ss_taken_take(t, 100 + s, seq, 0, NULL),
                                 SS_TAKEN_AGAIN);
        }
        if (i == 1000)
            first = ss_taken_bytes(t);
    }
    /* the oldest of the window is still known, the one before is late */
    uint64_t newest = 0;
    assert_int_equal(ss_taken_take(t, 100, n - SS_TAKEN_WINDOW, 0, NULL),
                     SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 100, n - SS_TAKEN_WINDOW - 1, 0,
                                   &newest),
                     SS_TAKEN_LATE);
    assert_int_equal(newest, n - 1);
    assert_int_equal(ss_taken_take(t, 100, 3, 0, NULL), SS_TAKEN_LATE);
    fprintf(stderr, "record after 1000 batches a stream: %zu bytes, after "
                    "%llu: %zu bytes\n",
            first, (unsigned long long)n, ss_taken_bytes(t));
    assert_int_equal(ss_taken_bytes(t), first);
    assert_true(ss_taken_bytes(t) <= flat_bound(4));
    assert_int_equal(ss_taken_streams(t), 4);
    ss_taken_destroy(&t);
    ss_taken_destroy(&t); /* safe twice */
}

/* A seq skipped then arriving within the window is new; a jump of more
 * than the window forgets everything behind it. */
static void test_gaps_and_jumps(void **state)
{
    (void)state;
    ss_taken *t = ss_taken_new();
    assert_non_null(t);
    assert_int_equal(ss_taken_take(t, 1, 10, 0, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 1, 5000, 0, NULL), SS_TAKEN_NEW);
    for (uint64_t s = 0; s < 5000; s++)
        if (s != 10)
            assert_int_equal(ss_taken_take(t, 1, s, 0, NULL),
                             SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 1, 10, 0, NULL), SS_TAKEN_AGAIN);
    /* another stream with the same seqs is another input */
    assert_int_equal(ss_taken_take(t, 2, 10, 0, NULL), SS_TAKEN_NEW);
    /* a jump far ahead: the bits of the old window are not reused */
    uint64_t far = 5000 + 3ull * SS_TAKEN_WINDOW + 7;
    assert_int_equal(ss_taken_take(t, 1, far, 0, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 1, 5000, 0, NULL), SS_TAKEN_LATE);
    for (uint64_t s = far - SS_TAKEN_WINDOW + 1; s < far; s++)
        assert_int_equal(ss_taken_take(t, 1, s, 0, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 1, far - 1, 0, NULL),
                     SS_TAKEN_AGAIN);
    ss_taken_destroy(&t);
}

/* Parts: each (seq, part) once; part 0 of a cut batch is the same input
 * as the unsplit batch (as before); the parts of seqs that left the
 * window are dropped, so a long keyed input keeps a flat record. */
/* The last seqs of the range: the window's advance must end (it looped
 * for ever on a seq at UINT64_MAX; found by an outside review). */
static void test_top_of_the_range(void **state)
{
    (void)state;
    ss_taken *t = ss_taken_new();
    assert_non_null(t);
    assert_int_equal(ss_taken_take(t, 9, UINT64_MAX - 1, 0, NULL),
                     SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 9, UINT64_MAX, 0, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 9, UINT64_MAX, 0, NULL),
                     SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 9, UINT64_MAX - 1, 0, NULL),
                     SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 10, UINT64_MAX - 200, 0, NULL),
                     SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 10, UINT64_MAX, 0, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 10, UINT64_MAX - 100, 0, NULL),
                     SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 10, UINT64_MAX - 200, 0, NULL),
                     SS_TAKEN_AGAIN);
    ss_taken_destroy(&t);
}

static void test_parts(void **state)
{
    (void)state;
    ss_taken *t = ss_taken_new();
    assert_non_null(t);
    for (uint32_t p = 0; p < 200; p++)
        assert_int_equal(ss_taken_take(t, 7, 4, p, NULL), SS_TAKEN_NEW);
    for (uint32_t p = 0; p < 200; p++)
        assert_int_equal(ss_taken_take(t, 7, 4, p, NULL), SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 7, 4, 65535, NULL), SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 7, 3, 1, NULL), SS_TAKEN_NEW);
    /* seq 4: blocks 1-63, 64-127, 128-191, 192-255, 65472-65535; 3: 1 */
    assert_int_equal(ss_taken_parts(t), 6);
    ss_taken_destroy(&t);

    /* three parts a batch, four windows' worth of batches */
    t = ss_taken_new();
    assert_non_null(t);
    const uint64_t n = 4ull * SS_TAKEN_WINDOW;
    size_t most = 0;
    for (uint64_t s = 0; s < n; s++) {
        for (uint32_t p = 1; p <= 3; p++)
            assert_int_equal(ss_taken_take(t, 9, s, p, NULL),
                             SS_TAKEN_NEW);
        if (ss_taken_bytes(t) > most)
            most = ss_taken_bytes(t);
    }
    assert_int_equal(ss_taken_take(t, 9, n - 1, 2, NULL), SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 9, n - SS_TAKEN_WINDOW, 3, NULL),
                     SS_TAKEN_AGAIN);
    assert_int_equal(ss_taken_take(t, 9, n - SS_TAKEN_WINDOW, 4, NULL),
                     SS_TAKEN_NEW);
    assert_int_equal(ss_taken_take(t, 9, 5, 1, NULL), SS_TAKEN_LATE);
    assert_true(ss_taken_parts(t) <= SS_TAKEN_WINDOW);
    fprintf(stderr, "parts: at most %zu bytes over %llu batches\n", most,
            (unsigned long long)n);
    /* one slot a seq of the window, in a table at least a quarter full
     * (a power of two: at most 8 slots of 24 bytes a live one) */
    assert_true(most <= flat_bound(1) + 8 * 24 * (size_t)SS_TAKEN_WINDOW +
                            4096);
    ss_taken_destroy(&t);
}

#define SUM_SCRIPT                                                           \
    "local ZmqRx = require 'sgx-rx'\n"                                       \
    "ZmqRx.Subject.fromZmqSocket('tcp://x:1')\n"                             \
    ":reduceSGX(function(acc, v) return acc + v end, 0)\n"                   \
    ":subscribeToSocket('tcp://x:2')\n"

static void *reserve(void *ctx, int which, size_t n)
{
    ss_buf *b = (ss_buf *)ctx + (which ? 1 : 0);
    ss_buf_reset(b);
    if (ss_buf_grow(b, n))
        return NULL;
    b->len = n;
    return b->data;
}

/* The enclave core of a reduce (what encrypted mode runs in the worker and
 * enclave mode in its sandbox child) over 150,000 sealed batches of two
 * streams: it used to keep 48 bytes a batch for the run's life (a hash
 * set of every lineage: 6 MB here, 3 MB of a 28M-row run's 16.7 MB peak);
 * its record now stays at its size after the first thousand batches,
 * and a batch sent again is still refused. */
static void test_core_record_is_flat(void **state)
{
    (void)state;
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_key_generate(SS_AEAD_AUTO, &k), 0);
    ss_ecore c;
    ss_stage_opts so;
    memset(&so, 0, sizeof so);
    so.name = "sum-1";
    so.stage = "sum";
    so.script_src = SUM_SCRIPT;
    so.script_len = strlen(SUM_SCRIPT);
    so.host_errors = 1;
    so.sandboxed = 1;
    so.in_enclave = 1;
    int rc = ss_ecore_init(&c, &so, 1, 0, err, sizeof err);
    if (rc)
        fail_msg("ss_ecore_init: %s", err);
    assert_true(ss_chain_stateful(c.chain));
    const uint64_t run = 0x7a4e;
    ss_ecore_set_run(&c, run, "sum-1");
    ss_ecore_set_output(&c, "", 0);
    ss_ecore_set_key(&c, k); /* owned by c now */
    ss_buf pl = SS_BUF_INIT, in = SS_BUF_INIT, first_in = SS_BUF_INIT,
           out[2] = {SS_BUF_INIT, SS_BUF_INIT};
    assert_int_equal(ss_mp_put_int(&pl, 1), 0);
    const uint64_t n = 75000;
    size_t first = 0;
    ss_ecore_res res;
    for (uint64_t i = 0; i < 2 * n; i++) {
        ss_hdr h;
        memset(&h, 0, sizeof h);
        h.kind = SS_MSG_DATA;
        h.flags = SS_BF_LAST_PART;
        h.stream = (uint32_t)(i & 1) + 1;
        h.seq = i / 2;
        h.count = 1;
        h.run = run;
        ss_buf_reset(&in);
        assert_int_equal(ss_aead_seal(c.key, &h, pl.data, pl.len, &in), 0);
        rc = ss_ecore_call(&c, in.data, in.len, reserve, out, &res, err,
                           sizeof err);
        if (rc)
            fail_msg("batch %llu: %s", (unsigned long long)i, err);
        if (i == 0)
            assert_int_equal(ss_buf_append(&first_in, in.data, in.len), 0);
        if (i == 2000)
            first = ss_ecore_taken_bytes(&c);
        if (i % 9973 == 0) { /* the attack: the same batch again */
            rc = ss_ecore_call(&c, in.data, in.len, reserve, out, &res, err,
                               sizeof err);
            assert_int_equal(rc, SS_EDENIED);
            assert_non_null(strstr(err, "already"));
        }
    }
    fprintf(stderr, "input record: %zu bytes after 2000 batches, %zu after "
                    "%llu\n",
            first, ss_ecore_taken_bytes(&c), (unsigned long long)(2 * n));
    /* the attack once the window moved on: batch 1/0 again is refused
     * as too late (the record of it is gone), not folded a second time */
    rc = ss_ecore_call(&c, first_in.data, first_in.len, reserve, out, &res,
                       err, sizeof err);
    assert_int_equal(rc, SS_EDENIED);
    if (!strstr(err, "took batch 1/74999 already: batch 1/0 part 0 is "
                     "74999 batches older"))
        fail_msg("unclear refusal: %s", err);
    assert_true(first > 0);
    assert_int_equal(ss_ecore_taken_bytes(&c), first);
    assert_true(ss_ecore_taken_bytes(&c) <= flat_bound(2));
    ss_buf_release(&pl);
    ss_buf_release(&in);
    ss_buf_release(&first_in);
    ss_buf_release(&out[0]);
    ss_buf_release(&out[1]);
    ss_ecore_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_over_a_long_run),
        cmocka_unit_test(test_gaps_and_jumps),
        cmocka_unit_test(test_top_of_the_range),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_core_record_is_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
