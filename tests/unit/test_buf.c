/*
 * test_buf.c - the core byte buffer: growth, append, printf, detach, and
 * JSON string escaping (always valid JSON, UTF-8 kept, bad bytes escaped);
 * ss_sort, the allocation- and syscall-free sort for enclave code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <stdlib.h>
#include <string.h>

static void test_grow_append_detach(void **state)
{
    (void)state;
    ss_buf b = SS_BUF_INIT;
    assert_null(b.data);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ss_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data + 2997, "abc", 3);
    assert_int_equal(ss_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_string_equal(b.data + 3000, "-42-x");
    size_t len;
    char *p = ss_buf_detach(&b, &len);
    assert_int_equal(len, 3005);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    ss_buf_release(&b);
    ss_buf_release(&b); /* twice is safe */
    assert_int_equal(ss_buf_grow(&b, SIZE_MAX), SS_ENOMEM);
}

/* ss_utf8_valid as it was before its eight-bytes-at-a-time ASCII path:
 * the reference the fast one must agree with, offset of the error too. */
static int utf8_ref(const unsigned char *p, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07;
        else
            goto fail;
        if (i + len > n)
            goto fail;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            goto fail;
        i += len;
    }
    return 1;
fail:
    *bad = i;
    return 0;
}

static void test_utf8_fast_path(void **state)
{
    (void)state;
    /* ASCII runs of every length around the 8-byte steps, with valid and
     * broken sequences at every offset: same verdict, same offset */
    static const char *const pieces[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3",
        "\xed\xa0\x80", "\xe2\x82", "\x80", "\xf4\x90\x80\x80", ""};
    unsigned seed = 12345;
    unsigned char buf[64];
    for (int t = 0; t < 20000; t++) {
        size_t n = 0;
        while (n < 40) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 24;
            if (r < 10) {
                size_t k = strlen(pieces[r]);
                memcpy(buf + n, pieces[r], k);
                n += k;
            } else {
                size_t run = r - 10; /* 0..13 ASCII bytes */
                for (size_t k = 0; k < run; k++)
                    buf[n + k] = (unsigned char)('a' + (k + n) % 26);
                n += run;
            }
            if ((seed >> 8) % 5 == 0)
                break;
        }
        size_t b1 = 999, b2 = 999;
        int v1 = ss_utf8_valid((const char *)buf, n, &b1);
        int v2 = utf8_ref(buf, n, &b2);
        assert_int_equal(v1, v2);
        if (!v1)
            assert_int_equal(b1, b2);
    }
    assert_true(ss_utf8_valid("abcdefghijklmnopq", 17, NULL));
    size_t bad = 0;
    assert_false(ss_utf8_valid("abcdefgh\xffjklmnop", 16, &bad));
    assert_int_equal(bad, 8);
}

static void json(const char *in, size_t n, const char *want)
{
    ss_buf b = SS_BUF_INIT;
    assert_int_equal(ss_buf_json_str(&b, in, n), 0);
    assert_string_equal(b.data, want);
    assert_true(ss_utf8_valid(b.data, b.len, NULL));
    ss_buf_release(&b);
}

static void test_json_str(void **state)
{
    (void)state;
    json("plain", 5, "\"plain\"");
    json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    json("tab\there\n", 9, "\"tab\\there\\n\"");
    json("\r\b\f\x01\x1f", 5, "\"\\r\\b\\f\\u0001\\u001f\"");
    json("del\x7f", 4, "\"del\x7f\"");                  /* DEL kept */
    json("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");           /* UTF-8 kept */
    json("N1\xff\xfe", 4, "\"N1\\u00ff\\u00fe\"");          /* bad bytes */
    json("\xe2\x82", 2, "\"\\u00e2\\u0082\"");              /* cut short */
    json("\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\"");   /* surrogate */
    json("", 0, "\"\"");
    json("a\0b", 3, "\"a\\u0000b\"");
}

typedef struct rec {
    uint16_t kg;
    uint32_t n;
    char pad[33]; /* an odd size, past glibc's 1 KiB when many */
} rec;

static int by_kg(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    return (int)x->kg - (int)y->kg;
}

/* ss_sort (the sort that makes no system call, for enclaves): sorted
 * output, every element kept with its payload, for sizes 0 to 700
 * including duplicates and already sorted or reversed inputs. */
static void test_sort(void **state)
{
    (void)state;
    static rec v[700];
    uint32_t x = 12345;
    for (size_t n = 0; n <= 700; n += (n < 20 ? 1 : 97)) {
        for (int pattern = 0; pattern < 3; pattern++) {
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                v[i].kg = pattern == 0   ? (uint16_t)((x >> 16) % 4096)
                          : pattern == 1 ? (uint16_t)i
                                         : (uint16_t)(n - i);
                v[i].n = (uint32_t)v[i].kg * 7u + 1u;
                memset(v[i].pad, (int)(v[i].kg & 0x7f), sizeof v[i].pad);
                sum += v[i].kg;
            }
            ss_sort(v, n, sizeof v[0], by_kg);
            uint64_t after = 0;
            for (size_t i = 0; i < n; i++) {
                if (i)
                    assert_true(v[i - 1].kg <= v[i].kg);
                assert_int_equal(v[i].n, (uint32_t)v[i].kg * 7u + 1u);
                assert_int_equal(v[i].pad[32], (char)(v[i].kg & 0x7f));
                after += v[i].kg;
            }
            assert_int_equal(after, sum);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_append_detach),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_utf8_fast_path),
        cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
