/*
 * test_buf.c - the core byte buffer: growth, append, printf, detach, and
 * JSON string escaping (always valid JSON, UTF-8 kept, bad bytes escaped).
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_append_detach),
        cmocka_unit_test(test_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
