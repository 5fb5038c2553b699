/*
 * test_partition.c - key groups (src/wire/ss_partition.c): the same key
 * always gives the same group whatever else the event holds, a missing
 * key or a non-map event is nil, a batch splits into groups in key group
 * order with events in their order, malformed events are refused, and
 * key groups map to workers by contiguous ranges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/ss_buf.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"
#include "wire/ss_partition.h"

/* {carrier = c, delay = d} (or {delay = d, carrier = c} when swap) */
static void put_event(ss_buf *b, const char *c, int64_t d, int swap)
{
    ss_mp_put_map(b, 2);
    if (swap) {
        ss_mp_put_str(b, "delay", 5);
        ss_mp_put_int(b, d);
    }
    ss_mp_put_str(b, "carrier", 7);
    ss_mp_put_str(b, c, strlen(c));
    if (!swap) {
        ss_mp_put_str(b, "delay", 5);
        ss_mp_put_int(b, d);
    }
}

static uint16_t kg_of_event(const ss_buf *b)
{
    size_t off = 0;
    uint16_t kg = 0xffff;
    assert_int_equal(ss_partition_event(b->data, b->len, &off, "carrier", 7,
                                        &kg),
                     0);
    assert_int_equal(off, b->len);
    return kg;
}

static void test_stable(void **state)
{
    (void)state;
    ss_buf a = SS_BUF_INIT, b = SS_BUF_INIT, k = SS_BUF_INIT;
    put_event(&a, "AA", 5, 0);
    put_event(&b, "AA", 999, 1); /* other value, other field order */
    ss_mp_put_str(&k, "AA", 2);
    uint16_t ka = kg_of_event(&a);
    assert_int_equal(ka, kg_of_event(&b));
    assert_int_equal(ka, ss_partition_of(k.data, k.len));
    assert_true(ka < SS_PARTITIONS);
    /* a reference value, computed independently (python3:
     * fmix32(fnv1a32(b'\xa3AA')) % 4096) */
    assert_int_equal(ss_partition_of("\xa3" "AA", 3), 3165);
    /* the integer 5 and the string "5" are different keys */
    ss_buf_reset(&k);
    ss_mp_put_int(&k, 5);
    uint16_t k5 = ss_partition_of(k.data, k.len);
    assert_int_not_equal(k5, ss_partition_of("\xa1" "5", 2));
    ss_buf_release(&a);
    ss_buf_release(&b);
    ss_buf_release(&k);
}

static void test_nil(void **state)
{
    (void)state;
    ss_buf b = SS_BUF_INIT;
    uint16_t nil = ss_partition_of("\xc0", 1);
    ss_mp_put_map(&b, 1); /* no carrier */
    ss_mp_put_str(&b, "delay", 5);
    ss_mp_put_int(&b, 1);
    assert_int_equal(kg_of_event(&b), nil);
    ss_buf_reset(&b);
    ss_mp_put_str(&b, "carrier", 7); /* not a map */
    assert_int_equal(kg_of_event(&b), nil);
    ss_buf_reset(&b);
    ss_mp_put_map(&b, 1); /* a bin key is not the field */
    ss_mp_put_bin(&b, "carrier", 7);
    ss_mp_put_str(&b, "AA", 2);
    assert_int_equal(kg_of_event(&b), nil);
    ss_buf_release(&b);
}

static void test_malformed(void **state)
{
    (void)state;
    ss_buf b = SS_BUF_INIT;
    put_event(&b, "AA", 5, 0);
    size_t off = 0;
    uint16_t kg;
    assert_int_equal(ss_partition_event(b.data, b.len - 1, &off, "carrier",
                                        7, &kg),
                     SS_EDECODE);
    assert_int_equal(off, 0);
    ss_psplit s;
    ss_psplit_init(&s);
    /* two events announced, one present */
    assert_int_equal(ss_psplit_run(&s, b.data, b.len, 2, "carrier"),
                     SS_EDECODE);
    assert_int_equal(s.ng, 0);
    ss_psplit_release(&s);
    ss_buf_release(&b);
}

static void test_split(void **state)
{
    (void)state;
    const char *carriers[] = {"AA", "UA", "AA", "DL", "UA", "AA", "WN"};
    ss_buf b = SS_BUF_INIT, one = SS_BUF_INIT;
    for (int i = 0; i < 7; i++)
        put_event(&b, carriers[i], i, 0);
    ss_psplit s;
    ss_psplit_init(&s);
    for (int round = 0; round < 2; round++) { /* buffers are reused */
        assert_int_equal(ss_psplit_run(&s, b.data, b.len, 7, "carrier"), 0);
        assert_int_equal(s.ng, 4);
        uint32_t total = 0;
        for (size_t g = 0; g < s.ng; g++) {
            if (g)
                assert_true(s.g[g - 1].kg < s.g[g].kg);
            total += s.g[g].count;
            /* every event of the group has its key group, in order */
            size_t off = 0;
            int64_t last = -1;
            for (uint32_t e = 0; e < s.g[g].count; e++) {
                size_t start = off;
                uint16_t kg;
                assert_int_equal(ss_partition_event(s.g[g].events.data,
                                                    s.g[g].events.len, &off,
                                                    "carrier", 7, &kg),
                                 0);
                assert_int_equal(kg, s.g[g].kg);
                /* the delay (the event's index) grows */
                const uint8_t *ev =
                    (const uint8_t *)s.g[g].events.data + start;
                int64_t d = ev[off - start - 1];
                assert_true(d > last);
                last = d;
            }
            assert_int_equal(off, s.g[g].events.len);
        }
        assert_int_equal(total, 7);
        for (size_t g = 0; g < s.ng; g++) {
            ss_buf_reset(&one);
            ss_mp_put_str(&one, "AA", 2);
            if (s.g[g].kg == ss_partition_of(one.data, one.len))
                assert_int_equal(s.g[g].count, 3);
        }
    }
    assert_int_equal(ss_psplit_run(&s, b.data, 0, 0, "carrier"), 0);
    assert_int_equal(s.ng, 0);
    ss_psplit_release(&s);
    ss_buf_release(&b);
    ss_buf_release(&one);
}

static void test_slots(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 64; n++) {
        uint32_t prev = 0, changes = 0;
        for (uint32_t g = 0; g < SS_PARTITIONS; g++) {
            uint32_t s = ss_partition_slot((uint16_t)g, n);
            assert_true(s < n);
            assert_true(s >= prev); /* contiguous ranges */
            changes += s != prev;
            prev = s;
        }
        assert_int_equal(changes, n - 1); /* every worker gets a range */
        /* ss_partition_range gives exactly the groups of each slot */
        for (uint32_t k = 0; k < n; k++) {
            int lo, hi;
            ss_partition_range(k, n, &lo, &hi);
            assert_true(lo <= hi);
            assert_int_equal(ss_partition_slot((uint16_t)lo, n), k);
            assert_int_equal(ss_partition_slot((uint16_t)hi, n), k);
            if (lo > 0)
                assert_int_equal(ss_partition_slot((uint16_t)(lo - 1), n),
                                 k - 1);
            if (hi < (int)SS_PARTITIONS - 1)
                assert_int_equal(ss_partition_slot((uint16_t)(hi + 1), n),
                                 k + 1);
        }
    }
    int lo, hi;
    ss_partition_range(1, 3, &lo, &hi);
    assert_int_equal(lo, 1366);
    assert_int_equal(hi, 2730);
    assert_int_equal(ss_partition_slot(0, 4), 0);
    assert_int_equal(ss_partition_slot(1023, 4), 0);
    assert_int_equal(ss_partition_slot(1024, 4), 1);
    assert_int_equal(ss_partition_slot(4095, 4), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stable),   cmocka_unit_test(test_nil),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_split),
        cmocka_unit_test(test_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
