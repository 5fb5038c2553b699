/*
 * test_csv.c - RFC 4180 lines (src/wire/ss_csv.c) and the Lua `csv`
 * module (src/lua/ss_lua_csv.c): the RFC's examples, quoting and "",
 * empty fields, the trailing CR, other separators, every error with its
 * column, the callback contract, field quoting on output, and
 * csv.parse/csv.encode from Lua.
 *
 * Not supported, by design: a quoted field holding a line break across
 * two lines. Sources cut at '\n', so such a record arrives as a line with
 * an unterminated quote, which is an error (test_multiline_record).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ss_buf.h"
#include "lua/ss_lua.h"
#include "securestreams.h"
#include "wire/ss_csv.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 64

typedef struct fields {
    int n;
    char *f[MAXF];
    size_t len[MAXF];
    const char *ptr[MAXF]; /* where the callback's pointer pointed */
    int stop_at;           /* index whose callback returns -42, or -1 */
} fields;

static int collect(const char *f, size_t len, int index, void *arg)
{
    fields *fs = arg;
    assert_int_equal(index, fs->n); /* in order, from 0 */
    if (index == fs->stop_at)
        return -42;
    assert_true(index < MAXF);
    fs->f[index] = malloc(len + 1);
    assert_non_null(fs->f[index]);
    memcpy(fs->f[index], f, len);
    fs->f[index][len] = 0;
    fs->len[index] = len;
    fs->ptr[index] = f;
    fs->n++;
    return 0;
}

static void fields_free(fields *fs)
{
    for (int i = 0; i < fs->n; i++)
        free(fs->f[i]);
    memset(fs, 0, sizeof *fs);
}

/* A cursor over line returns want[0..nw) in order, then nothing; skipping
 * k fields lands on want[k] for every k; skipping everything counts. */
static void expect_cursor(const char *line, size_t n, char sep,
                          const char *const *want, int nw)
{
    ss_csv_cursor c;
    const char *f;
    size_t len, dq;
    char text[256];
    ss_csv_cursor_init(&c, line, n, sep);
    for (int i = 0; i < nw; i++) {
        if (!ss_csv_cursor_next(&c, &f, &len, &dq))
            fail_msg("'%s': cursor ends after %d fields, want %d", line, i,
                     nw);
        assert_true(f >= line && f + len <= line + n);
        assert_true(len - dq < sizeof text);
        size_t tl = ss_csv_unescape(text, f, len);
        assert_int_equal(tl, len - dq);
        if (tl != strlen(want[i]) || memcmp(text, want[i], tl) != 0)
            fail_msg("'%s' cursor field %d: '%.*s', want '%s'", line, i,
                     (int)tl, text, want[i]);
    }
    assert_int_equal(ss_csv_cursor_next(&c, &f, &len, &dq), 0);
    assert_int_equal(ss_csv_cursor_next(&c, &f, &len, &dq), 0);
    assert_int_equal(ss_csv_cursor_skip(&c, 3), 0);
    for (int k = 0; k <= nw + 1; k++) {
        ss_csv_cursor_init(&c, line, n, sep);
        size_t got = ss_csv_cursor_skip(&c, (size_t)k);
        if (k < nw) {
            assert_int_equal(got, k);
            assert_int_equal(ss_csv_cursor_next(&c, &f, &len, &dq), 1);
            size_t tl = ss_csv_unescape(text, f, len);
            if (tl != strlen(want[k]) || memcmp(text, want[k], tl) != 0)
                fail_msg("'%s' skip %d: '%.*s', want '%s'", line, k,
                         (int)tl, text, want[k]);
        } else {
            assert_int_equal(got, nw);
            assert_int_equal(ss_csv_cursor_next(&c, &f, &len, &dq), 0);
        }
    }
    /* one field at a time, as a reader going up the fields does */
    ss_csv_cursor_init(&c, line, n, sep);
    for (int i = 0; i < nw; i++) {
        assert_int_equal(ss_csv_cursor_skip(&c, 0), 0);
        if (i + 1 < nw)
            assert_int_equal(ss_csv_cursor_skip(&c, 1), 1);
    }
    ss_csv_cursor_init(&c, line, n, sep);
    assert_int_equal(ss_csv_cursor_skip(&c, SIZE_MAX), nw);
}

/* Splits line (strlen) and checks the fields against want[] (NULL
 * terminated); the count function and a cursor must agree. */
static void expect_fields_sep(const char *line, char sep,
                              const char *const *want)
{
    fields fs;
    memset(&fs, 0, sizeof fs);
    fs.stop_at = -1;
    ss_buf scratch = SS_BUF_INIT;
    char err[128] = "";
    size_t n = strlen(line);
    int r = ss_csv_split_sep(line, n, sep, collect, &fs, &scratch, err,
                             sizeof err);
    int nw = 0;
    while (want[nw])
        nw++;
    if (r != nw)
        fail_msg("'%s': %d fields (%s), want %d", line, r, err, nw);
    assert_int_equal(fs.n, nw);
    for (int i = 0; i < nw; i++)
        if (strcmp(fs.f[i], want[i]) != 0)
            fail_msg("'%s' field %d: '%s', want '%s'", line, i, fs.f[i],
                     want[i]);
    assert_int_equal(ss_csv_count_sep(line, n, sep, err, sizeof err), nw);
    expect_cursor(line, n, sep, want, nw);
    if (sep == ',') {
        fields_free(&fs);
        fs.stop_at = -1;
        assert_int_equal(ss_csv_split(line, n, collect, &fs, &scratch, err,
                                      sizeof err),
                         nw);
        assert_int_equal(ss_csv_count(line, n, err, sizeof err), nw);
    }
    fields_free(&fs);
    ss_buf_release(&scratch);
}

#define EXPECT(line, ...)                                                 \
    do {                                                                  \
        const char *const w_[] = {__VA_ARGS__, NULL};                     \
        expect_fields_sep(line, ',', w_);                                 \
    } while (0)

static void test_rfc4180_examples(void **state)
{
    (void)state;
    EXPECT("aaa,bbb,ccc", "aaa", "bbb", "ccc");
    EXPECT("aaa,bbb,ccc\r", "aaa", "bbb", "ccc");
    EXPECT("\"aaa\",\"bbb\",\"ccc\"", "aaa", "bbb", "ccc");
    EXPECT("\"aaa\",\"b,bb\",\"ccc\"", "aaa", "b,bb", "ccc");
    EXPECT("\"aaa\",\"b\"\"bb\",\"ccc\"", "aaa", "b\"bb", "ccc");
    EXPECT("field_name,field_name,field_name", "field_name", "field_name",
           "field_name");
}

static void test_fields(void **state)
{
    (void)state;
    EXPECT("", "");
    EXPECT("\r", "");
    EXPECT(",", "", "");
    EXPECT(",,", "", "", "");
    EXPECT("a,", "a", "");
    EXPECT(",a", "", "a");
    EXPECT("a\r\r", "a\r");            /* only one CR is dropped */
    EXPECT("a\rb,c", "a\rb", "c");     /* an inner CR is data */
    EXPECT(" a , b ", " a ", " b ");   /* spaces are kept */
    EXPECT("\"\"", "");
    EXPECT("\"\",\"\"", "", "");
    EXPECT("\"\"\"\"", "\"");
    EXPECT("\"\"\"\"\"\"", "\"\"");
    EXPECT("\"x\"\"\",y", "x\"", "y");
    EXPECT("\"\"\"x\",y", "\"x", "y");
    EXPECT("a,\"\"", "a", "");
    EXPECT("\"a,b,c\"", "a,b,c");
    EXPECT("\"a\rb\"", "a\rb");
    EXPECT("\"a\nb\",c", "a\nb", "c"); /* a caller-joined record */
    EXPECT("\"a\"\r", "a");
    EXPECT("\xc3\xa9t\xc3\xa9,\xff", "\xc3\xa9t\xc3\xa9", "\xff");
    EXPECT("2008,1,3,4,2003,1955,2211,2225,WN,335,N712SW,128,150,116,-14,"
           "8,IAD,TPA,810,4,8,0,,0,NA,NA,NA,NA,NA",
           "2008", "1", "3", "4", "2003", "1955", "2211", "2225", "WN",
           "335", "N712SW", "128", "150", "116", "-14", "8", "IAD", "TPA",
           "810", "4", "8", "0", "", "0", "NA", "NA", "NA", "NA", "NA");
}

static void test_other_separators(void **state)
{
    (void)state;
    const char *const semi[] = {"a", "b,c", "d;e", NULL};
    expect_fields_sep("a;b,c;\"d;e\"", ';', semi);
    const char *const tab[] = {"x y", "", "z", NULL};
    expect_fields_sep("x y\t\tz", '\t', tab);
    const char *const one[] = {"a,b", NULL};
    expect_fields_sep("a,b", '|', one);
    char err[64];
    assert_int_equal(ss_csv_count_sep("a", 1, '"', err, sizeof err),
                     SS_EINVAL);
    assert_int_equal(ss_csv_count_sep("a", 1, '\n', err, sizeof err),
                     SS_EINVAL);
    assert_int_equal(ss_csv_count_sep("a", 1, '\r', err, sizeof err),
                     SS_EINVAL);
}

static void expect_error(const char *line, const char *want)
{
    fields fs;
    memset(&fs, 0, sizeof fs);
    fs.stop_at = -1;
    ss_buf scratch = SS_BUF_INIT;
    char err[128] = "";
    int r = ss_csv_split(line, strlen(line), collect, &fs, &scratch, err,
                         sizeof err);
    if (r != SS_ECSV || strcmp(err, want) != 0)
        fail_msg("'%s': %d '%s', want '%s'", line, r, err, want);
    char err2[128] = "";
    assert_int_equal(ss_csv_count(line, strlen(line), err2, sizeof err2),
                     SS_ECSV);
    assert_string_equal(err2, want);
    fields_free(&fs);
    ss_buf_release(&scratch);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("aaaa,bbbbb,\"unterminated",
                 "unterminated quote starting at column 12");
    expect_error("a,\"bc\"d", "character after closing quote at column 7");
    expect_error("\"", "unterminated quote starting at column 1");
    expect_error("\"abc", "unterminated quote starting at column 1");
    expect_error("\"ab\"\"", "unterminated quote starting at column 1");
    expect_error("a,\"b\"\"\"\"c", "unterminated quote starting at column 3");
    expect_error("\"ab\"c", "character after closing quote at column 5");
    expect_error("\"ab\" ,c", "character after closing quote at column 5");
    expect_error("\"a\"\"b\"x", "character after closing quote at column 7");
    expect_error("ab\"c", "quote inside unquoted field at column 3");
    expect_error("x,ab\"", "quote inside unquoted field at column 5");
    expect_error("a, \"b\"", "quote inside unquoted field at column 4");
    /* the dropped CR does not hide a closing quote problem */
    expect_error("\"a\"b\r", "character after closing quote at column 4");
    /* a tiny err buffer truncates safely */
    char small[6];
    assert_int_equal(ss_csv_count("\"", 1, small, sizeof small), SS_ECSV);
    assert_string_equal(small, "unter");
    assert_int_equal(ss_csv_count("\"", 1, NULL, 0), SS_ECSV);
}

static void test_multiline_record(void **state)
{
    (void)state;
    /* "a,\"line one\nline two\",b" read line by line */
    expect_error("a,\"line one", "unterminated quote starting at column 3");
    expect_error("line two\",b", "quote inside unquoted field at column 9");
}

static void test_callback_contract(void **state)
{
    (void)state;
    const char *line = "a,\"b\",\"c\"\"d\",e";
    fields fs;
    memset(&fs, 0, sizeof fs);
    fs.stop_at = -1;
    ss_buf scratch = SS_BUF_INIT;
    char err[64];
    assert_int_equal(ss_csv_split(line, strlen(line), collect, &fs, &scratch,
                                  err, sizeof err),
                     4);
    /* plain and quoted-without-"" fields point into the line */
    assert_ptr_equal(fs.ptr[0], line);
    assert_ptr_equal(fs.ptr[1], line + 3);
    assert_int_equal(fs.len[1], 1);
    /* the field with "" was assembled in scratch */
    assert_ptr_equal(fs.ptr[2], scratch.data);
    assert_string_equal(fs.f[2], "c\"d");
    assert_ptr_equal(fs.ptr[3], line + 13);
    fields_free(&fs);
    /* a non-zero return stops the split and is returned */
    fs.stop_at = 2;
    assert_int_equal(ss_csv_split(line, strlen(line), collect, &fs, &scratch,
                                  err, sizeof err),
                     -42);
    assert_int_equal(fs.n, 2);
    fields_free(&fs);
    fs.stop_at = 0;
    assert_int_equal(ss_csv_split("x", 1, collect, &fs, &scratch, err,
                                  sizeof err),
                     -42);
    assert_int_equal(fs.n, 0);
    /* no callback is a caller bug, reported */
    assert_int_equal(ss_csv_split("x", 1, NULL, NULL, &scratch, err,
                                  sizeof err),
                     SS_EINVAL);
    /* a line is not read past n */
    fs.stop_at = -1;
    assert_int_equal(ss_csv_split("a,b,c", 3, collect, &fs, &scratch, err,
                                  sizeof err),
                     2);
    assert_string_equal(fs.f[1], "b");
    fields_free(&fs);
    ss_buf_release(&scratch);
}

static int count_cb(const char *f, size_t len, int index, void *arg)
{
    (void)f;
    (void)len;
    (void)index;
    (*(int *)arg)++;
    return 0;
}

static void test_count_one_pass(void **state)
{
    (void)state;
    /* counting without quotes (the source, once per line) is one pass
     * eight bytes at a time: it must agree with splitting, for every
     * length and separator position around the 8-byte steps */
    char line[80], err[128];
    unsigned seed = 777;
    for (int t = 0; t < 20000; t++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 70;
        char sep = (seed >> 8) % 2 ? ',' : ';';
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 6;
            line[i] = r == 0 ? ',' : r == 1 ? ';' : (char)('a' + r);
        }
        if (n && (seed >> 4) % 4 == 0)
            line[n - 1] = '\r';
        int nfields = 0;
        int split = ss_csv_split_sep(line, n, sep, count_cb, &nfields, NULL,
                                     err, sizeof err);
        assert_int_equal(split, nfields);
        assert_int_equal(ss_csv_count_sep(line, n, sep, err, sizeof err),
                         nfields);
        if (sep == ',')
            assert_int_equal(ss_csv_count(line, n, err, sizeof err),
                             nfields);
    }
}

static void test_long_line(void **state)
{
    (void)state;
    ss_buf line = SS_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(ss_buf_printf(&line, i ? ",%d" : "%d", i), 0);
    char err[64];
    assert_int_equal(ss_csv_count(line.data, line.len, err, sizeof err),
                     100000);
    /* with one quoted field, through the general scanner */
    assert_int_equal(ss_buf_append(&line, ",\"q,\"\"q\"", 8), 0);
    assert_int_equal(ss_csv_count(line.data, line.len, err, sizeof err),
                     100001);
    ss_buf_release(&line);
}

/* Fields of every length 0..20, some quoted (with "" and separators
 * inside), so that separators fall at every offset of an 8-byte word. */
static void test_cursor_offsets(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        ss_buf line = SS_BUF_INIT;
        char *want[MAXF];
        int nw = 0;
        for (int i = 0; i < MAXF - 1; i++) {
            int flen = (i * 7 + variant) % 21;
            char f[32];
            for (int j = 0; j < flen; j++)
                f[j] = (char)('a' + (i + j) % 26);
            if (variant >= 2 && flen > 2 && i % 5 == 0)
                f[1] = variant == 2 ? ',' : '"';
            f[flen] = 0;
            want[nw] = strdup(f);
            assert_non_null(want[nw]);
            nw++;
            if (i)
                assert_int_equal(ss_buf_append(&line, ",", 1), 0);
            int quote = variant == 1 ? i % 3 == 0 : variant >= 2 && i % 5 == 0;
            if (quote || strchr(f, ',') || strchr(f, '"'))
                assert_int_equal(ss_csv_put_field(&line, f, (size_t)flen, ','),
                                 0);
            else
                assert_int_equal(ss_buf_append(&line, f, (size_t)flen), 0);
            if (quote && !strchr(f, ',') && !strchr(f, '"')) {
                /* put_field leaves it bare: quote it by hand */
                line.len -= (size_t)flen;
                assert_int_equal(ss_buf_append(&line, "\"", 1), 0);
                assert_int_equal(ss_buf_append(&line, f, (size_t)flen), 0);
                assert_int_equal(ss_buf_append(&line, "\"", 1), 0);
            }
        }
        want[nw] = NULL;
        expect_fields_sep(line.data, ',', (const char *const *)want);
        for (int i = 0; i < nw; i++)
            free(want[i]);
        ss_buf_release(&line);
    }
    /* 100000 fields: skip and count */
    ss_buf line = SS_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(ss_buf_printf(&line, i ? ",%d" : "%d", i), 0);
    ss_csv_cursor c;
    const char *f;
    size_t len, dq;
    for (int k = 0; k < 100000; k += 9973) {
        ss_csv_cursor_init(&c, line.data, line.len, ',');
        assert_int_equal(ss_csv_cursor_skip(&c, (size_t)k), k);
        assert_int_equal(ss_csv_cursor_next(&c, &f, &len, &dq), 1);
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        assert_int_equal(len, strlen(num));
        assert_memory_equal(f, num, len);
    }
    ss_csv_cursor_init(&c, line.data, line.len, ',');
    assert_int_equal(ss_csv_cursor_skip(&c, SIZE_MAX), 100000);
    ss_buf_release(&line);
}

/* Skipping lands where walking does, from any field and by any count,
 * on checked lines whose separators, quotes and CR fall at every offset
 * of a 16- and 8-byte word (ss_csv_cursor_skip reads words at a time):
 * runs of empty fields, fields longer than a word, quoted fields holding
 * separators, doubled quotes, CR and LF, a trailing CR; three
 * separators. */
static void test_cursor_skip_words(void **state)
{
    (void)state;
    static const char seps[] = {',', ';', '\t'};
    uint32_t rnd = 12345;
    for (int round = 0; round < 600; round++) {
        char sep = seps[round % 3];
        ss_buf line = SS_BUF_INIT;
        int nf = 1 + (int)((rnd = rnd * 1103515245u + 12345u) >> 16) % 40;
        for (int i = 0; i < nf; i++) {
            rnd = rnd * 1103515245u + 12345u;
            uint32_t r = rnd >> 8;
            if (i)
                assert_int_equal(ss_buf_append(&line, &sep, 1), 0);
            int flen = r % 4 == 0 ? 0 : (int)(r >> 4) % (r % 3 ? 5 : 24);
            char f[32];
            for (int j = 0; j < flen; j++) {
                uint32_t q = (r >> (j % 16)) ^ (uint32_t)(j * 7 + i);
                f[j] = q % 9 == 0 ? sep : q % 11 == 0 ? '"'
                     : q % 13 == 0 ? '\r' : q % 17 == 0 ? '\n'
                     : (char)('a' + q % 26);
            }
            /* put_field quotes what needs it; some fields quoted anyway */
            if (r % 7 == 0) {
                assert_int_equal(ss_buf_append(&line, "\"", 1), 0);
                for (int j = 0; j < flen; j++) {
                    if (f[j] == '"')
                        assert_int_equal(ss_buf_append(&line, "\"", 1), 0);
                    assert_int_equal(ss_buf_append(&line, &f[j], 1), 0);
                }
                assert_int_equal(ss_buf_append(&line, "\"", 1), 0);
            } else {
                assert_int_equal(
                    ss_csv_put_field(&line, f, (size_t)flen, sep), 0);
            }
        }
        if (round % 5 == 0)
            assert_int_equal(ss_buf_append(&line, "\r", 1), 0);
        const char *s = line.data ? line.data : "";
        char err[128];
        assert_int_equal(ss_csv_count_sep(s, line.len, sep, err, sizeof err),
                         nf);
        /* the fields, walked one by one */
        const char *at[48];
        size_t len[48], dq;
        ss_csv_cursor c;
        ss_csv_cursor_init(&c, s, line.len, sep);
        int nw = 0;
        while (nw < 48 && ss_csv_cursor_next(&c, &at[nw], &len[nw], &dq))
            nw++;
        assert_int_equal(nw, nf);
        for (int j = 0; j <= nw; j++)
            for (int k = 0; k <= nw - j + 1; k++) {
                ss_csv_cursor_init(&c, s, line.len, sep);
                assert_int_equal(ss_csv_cursor_skip(&c, (size_t)j), j);
                size_t got = ss_csv_cursor_skip(&c, (size_t)k);
                const char *f;
                size_t fl;
                if (j + k < nw) {
                    assert_int_equal(got, k);
                    assert_int_equal(ss_csv_cursor_next(&c, &f, &fl, &dq), 1);
                    if (f != at[j + k] || fl != len[j + k])
                        fail_msg("round %d: skip %d then %d: field at %td "
                                 "(%zu bytes), want %td (%zu)",
                                 round, j, k, f - s, fl, at[j + k] - s,
                                 len[j + k]);
                } else {
                    assert_int_equal(got, nw - j);
                    assert_int_equal(ss_csv_cursor_next(&c, &f, &fl, &dq), 0);
                }
            }
        ss_buf_release(&line);
    }
}

/* A cursor on a line that was not checked stays inside it (valgrind and
 * ASan see an exact-size heap copy, with no NUL after it). */
static void test_cursor_unchecked(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *fields; /* the fields' texts, joined with '|' */
    } cases[] = {
        {"\"abc", "abc"},               /* unterminated: to the end */
        {"a,\"b\"\"", "a|b\""},       /* unterminated after a "" */
        {"\"ab\"x,c", "ab|c"},          /* after the quote: skipped */
        {"\"ab\"x", "ab"},
        {"ab\"c,d", "ab\"c|d"},          /* a quote inside: data */
        {"\"", ""},
        {"a,\"", "a|"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].line);
        char *line = malloc(n ? n : 1);
        assert_non_null(line);
        memcpy(line, cases[i].line, n);
        ss_csv_cursor c;
        const char *f;
        size_t len, dq;
        ss_buf got = SS_BUF_INIT;
        ss_csv_cursor_init(&c, line, n, ',');
        int k = 0;
        while (ss_csv_cursor_next(&c, &f, &len, &dq)) {
            char text[64];
            assert_true(len < sizeof text);
            size_t tl = ss_csv_unescape(text, f, len);
            assert_int_equal(ss_buf_printf(&got, "%s%.*s", k++ ? "|" : "",
                                           (int)tl, text),
                             0);
        }
        if (strcmp(got.data ? got.data : "", cases[i].fields) != 0)
            fail_msg("'%s': '%s', want '%s'", cases[i].line,
                     got.data ? got.data : "", cases[i].fields);
        ss_csv_cursor_init(&c, line, n, ',');
        assert_int_equal(ss_csv_cursor_skip(&c, SIZE_MAX), k);
        ss_buf_release(&got);
        free(line);
    }
}

static void test_put_field(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        char sep;
    } cases[] = {
        {"plain", "plain", ','},      {"", "", ','},
        {"a,b", "\"a,b\"", ','},      {"a,b", "a,b", ';'},
        {"a;b", "\"a;b\"", ';'},      {"say \"hi\"", "\"say \"\"hi\"\"\"", ','},
        {"\"", "\"\"\"\"", ','},      {"two\nlines", "\"two\nlines\"", ','},
        {"cr\r", "\"cr\r\"", ','},    {" spaced ", " spaced ", ','},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ss_buf b = SS_BUF_INIT;
        assert_int_equal(ss_buf_append(&b, "X", 1), 0);
        assert_int_equal(ss_csv_put_field(&b, cases[i].in,
                                          strlen(cases[i].in), cases[i].sep),
                         0);
        assert_string_equal(b.data + 1, cases[i].out);
        /* and it reads back as the same single field (no raw \n case) */
        if (!strchr(cases[i].in, '\n') && !strchr(cases[i].in, '\r')) {
            const char *const want[] = {cases[i].in, NULL};
            expect_fields_sep(b.data + 1, cases[i].sep, want);
        }
        ss_buf_release(&b);
    }
}

/* ------------------------------------------------------------------ */
/* the Lua module                                                      */

/* mp(v) -> the MessagePack bytes of v (ss_mp_encode_lua), or raises the
 * encoder's reason; unmp(bytes) -> the value back. */
static int l_mp(lua_State *L)
{
    luaL_checkany(L, 1);
    ss_buf b = SS_BUF_INIT;
    char err[256];
    int top = lua_gettop(L);
    int rc = ss_mp_encode_lua(L, 1, &b, err, sizeof err);
    assert_int_equal(lua_gettop(L), top);
    if (rc) {
        ss_buf_release(&b);
        return luaL_error(L, "%s", err);
    }
    lua_pushlstring(L, b.data ? b.data : "", b.len);
    ss_buf_release(&b);
    return 1;
}

static int l_unmp(lua_State *L)
{
    size_t n, off = 0;
    const char *p = luaL_checklstring(L, 1, &n);
    char err[256];
    if (ss_mp_decode_lua(L, p, n, &off, err, sizeof err))
        return luaL_error(L, "%s", err);
    assert_int_equal(off, n);
    return 1;
}

static lua_State *csv_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    luaL_requiref(L, "csv", luaopen_ss_csv, 1);
    lua_pop(L, 1);
    luaL_requiref(L, "json", luaopen_ss_json, 1);
    lua_pop(L, 1);
    lua_register(L, "mp", l_mp);
    lua_register(L, "unmp", l_unmp);
    return L;
}

/* Runs a chunk that must return true (or raise with a message). */
static void lua_ok(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        fail_msg("lua error: %s\nin: %s", lua_tostring(L, -1), code);
    if (!lua_toboolean(L, -1))
        fail_msg("lua check failed: %s", code);
    lua_settop(L, 0);
}

static void test_lua_parse(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L, "local a = csv.parse('a,\"b,c\",,\"d\"\"e\"') "
              "return #a == 4 and a[1] == 'a' and a[2] == 'b,c' and "
              "a[3] == '' and a[4] == 'd\"e'");
    lua_ok(L, "local a = csv.parse('') return #a == 1 and a[1] == ''");
    lua_ok(L, "local a = csv.parse('x;y', ';') return #a == 2 and a[2] == 'y'");
    lua_ok(L, "local a = csv.parse('x;y') return #a == 1 and a[1] == 'x;y'");
    lua_ok(L, "local a = csv.parse('a,b\\r') return #a == 2 and a[2] == 'b'");
    /* the DelayedFlights mapper: fields 9 and 15 */
    lua_ok(L, "local a = csv.parse('2008,1,3,4,2003,1955,2211,2225,WN,335,"
              "N712SW,128,150,116,-14,8,IAD,TPA,810,4,8,0,,0,NA,NA,NA,NA,NA') "
              "return #a == 29 and a[9] == 'WN' and a[15] == '-14' and "
              "a[23] == '' and a[29] == 'NA'");
    /* field counts vary from line to line: each table is exact */
    lua_ok(L, "local n = {} for _, l in ipairs{string.rep('x,', 40) .. 'x', "
              "'a,b', 'c', string.rep(',', 300), 'd,e,f'} do "
              "local a = csv.parse(l) n[#n + 1] = #a "
              "local c = 0 for _ in pairs(a) do c = c + 1 end "
              "if c ~= #a then return false end end "
              "return table.concat(n, ' ') == '41 2 1 301 3'");
    /* every field is a string, even digits */
    lua_ok(L, "local a = csv.parse('1,2.5') return math.type(a[1]) == nil "
              "and type(a[1]) == 'string'");
    /* a number argument is taken as its text */
    lua_ok(L, "local a = csv.parse(12) return #a == 1 and a[1] == '12'");
    lua_close(L);
}

static void expect_lua_error(lua_State *L, const char *code,
                             const char *want)
{
    int rc = luaL_dostring(L, code);
    if (rc == LUA_OK)
        fail_msg("no error from: %s", code);
    const char *msg = lua_tostring(L, -1);
    if (!msg || !strstr(msg, want))
        fail_msg("error '%s', want '%s'", msg ? msg : "(null)", want);
    lua_settop(L, 0);
}

static void test_lua_errors(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    expect_lua_error(L, "return csv.parse('a,\"b')",
                     "csv.parse: unterminated quote starting at column 3");
    expect_lua_error(L, "return csv.parse('aaaa,bbbbb,\"unterminated')",
                     "csv.parse: unterminated quote starting at column 12");
    expect_lua_error(L, "return csv.parse('a,\"bc\"d')",
                     "csv.parse: character after closing quote at column 7");
    expect_lua_error(L, "return csv.parse('ab\"c')",
                     "csv.parse: quote inside unquoted field at column 3");
    /* the line is checked when parsed, not when a field is read */
    expect_lua_error(L, "local ok = pcall(csv.parse, 'a,\"b') "
                        "if not ok then error('raised at parse') end",
                     "raised at parse");
    expect_lua_error(L, "return csv.fields('a,\"b')",
                     "csv.fields: unterminated quote starting at column 3");
    expect_lua_error(L, "return csv.fields('a,\"bc\"d', ';')",
                     "csv.fields: quote inside unquoted field at column 3");
    expect_lua_error(L, "return csv.parse('a;\"b\"c', ';')",
                     "csv.parse: character after closing quote at column 6");
    expect_lua_error(L, "return csv.fields(nil)", "bad argument #1");
    expect_lua_error(L, "return csv.fields('a', '\\n')", "bad argument #2");
    expect_lua_error(L, "return csv.parse(nil)", "bad argument #1");
    expect_lua_error(L, "return csv.parse({})", "bad argument #1");
    expect_lua_error(L, "return csv.parse('a', ';;')", "bad argument #2");
    expect_lua_error(L, "return csv.parse('a', '\"')", "bad argument #2");
    expect_lua_error(L, "return csv.encode('x')", "bad argument #1");
    expect_lua_error(L, "return csv.encode({'a', {}, 'c'})",
                     "csv.encode: field 2 is a table");
    expect_lua_error(L, "return csv.encode({true})",
                     "csv.encode: field 1 is a boolean");
    /* after an error the module still works */
    lua_ok(L, "return csv.parse('\"q\"\"\"')[1] == 'q\"'");
    lua_close(L);
}

static void test_lua_encode(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L, "return csv.encode({'a', 'b c', 'd,e', 'f\"g', '', 1, 2.5}) == "
              "'a,b c,\"d,e\",\"f\"\"g\",,1,2.5'");
    lua_ok(L, "return csv.encode({'a;b', 'c,d'}, ';') == '\"a;b\";c,d'");
    lua_ok(L, "return csv.encode({}) == ''");
    lua_ok(L, "return csv.encode({'x', nil, 'z'}) == 'x,,z'");
    /* round trips */
    lua_ok(L, "local rows = {{'a'}, {'', ''}, {'\"', ',', '\"\"'}, "
              "{' x ', 'y\"z', 'w,'}, {''}, {string.rep('q', 5000), 'e'}} "
              "for _, r in ipairs(rows) do "
              "  local back = csv.parse(csv.encode(r)) "
              "  if #back ~= #r then return false end "
              "  for i = 1, #r do if back[i] ~= r[i] then return false end end "
              "end return true");
    lua_close(L);
}

/* csv.parse returns a lazy row: a table holding only its line, whose
 * metamethods cut fields out of it. Everything a plain array offers
 * for reading works, with the same values as csv.fields. */
static void test_lua_row_reads(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L,
        "local line = '2008,1,3,4,2003,1955,2211,2225,WN,335,N712SW,128,150,"
        "116,-14,8,IAD,TPA,810,4,8,0,,0,NA,NA,NA,NA,NA' "
        "local r, f = csv.parse(line), csv.fields(line) "
        /* a table, holding only the line under a private key */
        "assert(type(r) == 'table' and getmetatable(r) == 'csv.row') "
        "assert(rawlen(r) == 0) "
        "local k, v = next(r) "
        "assert(type(k) == 'userdata' and v == line and next(r, k) == nil) "
        /* csv.fields: a plain table, as csv.parse used to return */
        "assert(getmetatable(f) == nil and rawlen(f) == 29) "
        "assert(#r == 29) "
        "for i = 1, 29 do assert(r[i] == f[i], i) end "
        /* any order, repeated */
        "for _, i in ipairs{15, 9, 29, 1, 2, 29, 28, 3, 17, 9, 15, 23} do "
        "  assert(r[i] == f[i], i) end "
        "assert(r[9] == 'WN' and r[15] == '-14' and r[23] == '') "
        /* keys that are not field numbers */
        "for _, k in ipairs{0, -1, 30, 31, 1e9, math.maxinteger, "
        "  math.mininteger, 1.5, -0.5, '1', 'x', true, false, r, print} do "
        "  assert(r[k] == nil, tostring(k)) end "
        "assert(r[2.0] == '1' and r[9.0] == 'WN' and r[29.0] == 'NA') "
        "assert(r[0/0] == nil and r[math.huge] == nil) "
        /* ipairs, pairs (in order), table functions */
        "local n = 0 "
        "for i, x in ipairs(r) do n = n + 1 assert(i == n and x == f[i]) end "
        "assert(n == 29) "
        "n = 0 "
        "for i, x in pairs(r) do n = n + 1 assert(i == n and x == f[i]) end "
        "assert(n == 29) "
        "assert(table.concat(r, ',') == line) "
        "assert(table.concat(r, '|', 9, 11) == 'WN|335|N712SW') "
        "assert(select('#', table.unpack(r)) == 29) "
        "local t = {table.unpack(r)} "
        "for i = 1, 29 do assert(t[i] == f[i]) end "
        "assert(table.unpack(r, 9, 9) == 'WN') "
        /* the pairs iterator called by hand */
        "local it, s, c = pairs(r) "
        "assert(s == r and c == 0 and select(2, it(r, 28)) == 'NA') "
        "assert(it(r, 29) == nil and it(r, -3) == nil) "
        "assert(it(r, math.maxinteger) == nil) "
        "return true");
    lua_close(L);
}

/* Every line shape gives the same fields lazily and eagerly, read up,
 * down, and through ipairs/pairs/concat. */
static void test_lua_row_shapes(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L,
        "local lines = {'', '\\r', ',', ',,', 'a,', ',a', 'a\\r\\r', "
        "  'a\\rb,c', ' a , b ', '\"\"', '\"\",\"\"', '\"\"\"\"', "
        "  '\"\"\"\"\"\"', '\"x\"\"\",y', '\"\"\"x\",y', 'a,\"\"', "
        "  '\"a,b,c\"', '\"a\\rb\"', '\"a\\nb\",c', '\"a\"\\r', "
        "  '\\xc3\\xa9t\\xc3\\xa9,\\xff', 'aaa,\"b\"\"bb\",ccc', "
        "  string.rep('x', 100) .. ',\"' .. string.rep('y\"\"', 30) .. "
        "  '\",z', string.rep('ab,', 200) .. '\"q\"', "
        "  '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17'} "
        "for _, l in ipairs(lines) do "
        "  local r, f = csv.parse(l), csv.fields(l) "
        "  assert(#r == #f, l) "
        "  for i = 1, #f do assert(r[i] == f[i], l) end "
        "  for i = #f, 1, -1 do assert(r[i] == f[i], l) end "
        "  assert(r[#f + 1] == nil and r[#f + 2] == nil) "
        "  assert(r[#f] == f[#f]) "
        "  local n = 0 for i, x in ipairs(r) do n = i assert(x == f[i]) end "
        "  assert(n == #f) "
        "  n = 0 for i, x in pairs(r) do n = n + 1 assert(x == f[i]) end "
        "  assert(n == #f) "
        "  assert(table.concat(r, '|') == table.concat(f, '|'), l) "
        "  local again = csv.parse(csv.encode(r)) "
        "  assert(table.concat(again, '|') == table.concat(f, '|'), l) "
        "end "
        /* another separator */
        "local r = csv.parse('a;b,c;\"d;e\"', ';') "
        "assert(#r == 3 and r[1] == 'a' and r[2] == 'b,c' and r[3] == 'd;e') "
        "local t = csv.parse('x y\\t\\tz', '\\t') "
        "assert(#t == 3 and t[2] == '' and t[3] == 'z') "
        "return true");
    lua_close(L);
}

/* Several rows read in turns: each read finds its own row's line. */
static void test_lua_row_interleaved(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L,
        "local a, b = csv.parse('a1,a2,a3,a4'), csv.parse('b1,b2,b3') "
        "assert(a[3] == 'a3' and b[3] == 'b3' and a[4] == 'a4') "
        "assert(b[1] == 'b1' and a[1] == 'a1' and #b == 3 and #a == 4) "
        "assert(b[4] == nil and a[4] == 'a4' and #b == 3) "
        "local out = {} "
        "for _, x in ipairs(a) do for _, y in ipairs(b) do "
        "  out[#out + 1] = x .. y end end "
        "assert(#out == 12 and out[1] == 'a1b1' and out[12] == 'a4b3') "
        "out = {} "
        "for _, x in pairs(b) do for _, y in pairs(a) do "
        "  out[#out + 1] = x .. y end end "
        "assert(#out == 12 and out[1] == 'b1a1' and out[12] == 'b3a4') "
        /* one string, two separators */
        "local s = 'x;y,z;w' "
        "local c, d = csv.parse(s), csv.parse(s, ';') "
        "assert(#c == 2 and #d == 3 and c[2] == 'z;w' and d[2] == 'y,z') "
        "assert(c[1] == 'x;y' and d[3] == 'w' and c[3] == nil) "
        /* equal short lines are one Lua string */
        "local e, f = csv.parse('p,q'), csv.parse('p,q') "
        "assert(e[2] == 'q' and f[1] == 'p' and e[1] == 'p' and f[2] == 'q') "
        "return true");
    lua_close(L);
}

/* Rows die and new ones take their addresses: reads stay right, in
 * both GC modes. */
static void test_lua_row_gc(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    static const char *const gc[2] = {"incremental", "generational"};
    for (int m = 0; m < 2; m++) {
        char code[1024];
        snprintf(code, sizeof code,
            "collectgarbage('%s') "
            "local kept = {} "
            "for i = 1, 3000 do "
            "  local l = 'r' .. i .. ',' .. string.rep('f', i %% 50) .. ',' "
            "    .. i "
            "  local r = csv.parse(l) "
            "  if i %% 3 == 0 then assert(r[3] == tostring(i)) end "
            "  if i %% 7 == 0 then collectgarbage() end "
            "  if i %% 11 == 0 then csv.parse('z,z,z') collectgarbage() end "
            "  assert(r[1] == 'r' .. i and #r == 3) "
            "  if i %% 100 == 1 then kept[#kept + 1] = {r, i} end "
            "end "
            "collectgarbage() "
            "for _, p in ipairs(kept) do "
            "  assert(p[1][3] == tostring(p[2]) and p[1][1] == 'r' .. p[2]) "
            "end "
            "return true",
            gc[m]);
        lua_ok(L, code);
    }
    lua_close(L);
}

/* row[i] = v for i in 1..#row: reads, pairs, encoders see v; nil gives
 * the line's text back; anything else is an error. */
static void test_lua_row_assign(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L,
        "local r = csv.parse('a,b,c') "
        "r[2] = 'B' "
        "assert(r[2] == 'B' and r[1] == 'a' and r[3] == 'c' and #r == 3) "
        "r[3] = 42 "
        "assert(r[3] == 42 and table.concat(r, ',') == 'a,B,42') "
        "r[2] = nil assert(r[2] == 'b') "
        "r[1] = nil assert(r[1] == 'a') "
        "r[2.0] = 'two' assert(r[2] == 'two' and rawget(r, 2) == 'two') "
        "local seen = {} for k, v in pairs(r) do seen[k] = v end "
        "assert(seen[1] == 'a' and seen[2] == 'two' and seen[3] == 42) "
        "assert(#seen == 3) "
        "assert(csv.encode(r) == 'a,two,42') "
        "assert(csv.encode(r, ';') == 'a;two;42') "
        "assert(json.encode(r) == '[\"a\",\"two\",42]') "
        "local u = unmp(mp(r)) "
        "assert(getmetatable(u) == nil and #u == 3 and u[2] == 'two' "
        "  and u[3] == 42) "
        "local ok, err = pcall(function() r[4] = 'x' end) "
        "assert(not ok and err:find('csv row: cannot set field 4: a row "
        "has fields 1..3 only', 1, true), err) "
        "ok, err = pcall(function() r.x = 1 end) "
        "assert(not ok and err:find('cannot set field x', 1, true)) "
        "ok, err = pcall(function() r[0] = 1 end) "
        "assert(not ok and err:find('cannot set field 0', 1, true)) "
        "ok, err = pcall(function() r[1.5] = 1 end) "
        "assert(not ok) "
        "ok, err = pcall(table.insert, r, 'd') "
        "assert(not ok and err:find('csv.fields', 1, true)) "
        "assert(#r == 3 and r[4] == nil) "
        "assert(not pcall(setmetatable, r, nil)) "
        "assert(getmetatable(r) == 'csv.row') "
        /* table.sort goes through the same metamethods */
        "local s = csv.parse('c,a,b') table.sort(s) "
        "assert(table.concat(s, ',') == 'a,b,c') "
        "return true");
    lua_close(L);
}

/* Encoders write a row as the array of its fields: the same bytes as
 * for the csv.fields table, nested or not. */
static void test_lua_row_encode(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    lua_ok(L,
        "local lines = {'', 'a', 'a,b', 'a,\"b\"\"c\",\"d,e\"', "
        "  '2008,1,3,4,2003,1955,2211,2225,WN,335,N712SW,128,150,116,-14,8,"
        "IAD,TPA,810,4,8,0,,0,NA,NA,NA,NA,NA', "
        "  string.rep('x', 40) .. ',' .. string.rep('y', 300), "
        "  '\"' .. string.rep('q\"\"', 100) .. '\",w', "
        "  'caf\\xc3\\xa9,\\xff\\xfe,\"\\xff\"\"\"', "
        "  string.rep(',', 70000)} "
        "for _, l in ipairs(lines) do "
        "  local r, f = csv.parse(l), csv.fields(l) "
        "  assert(mp(r) == mp(f), l) "
        "  assert(mp({row = r, list = {r, r}}) == "
        "    mp({row = f, list = {f, f}})) "
        "  local u = unmp(mp(r)) "
        "  assert(#u == #f and table.concat(u, '|') == table.concat(f, '|')) "
        "  if utf8.len(l) then "
        "    assert(json.encode(r) == json.encode(f), l) "
        "    assert(json.encode({row = r, n = 1}) == "
        "      json.encode({row = f, n = 1})) "
        "  end "
        "end "
        /* bin for the non-UTF-8 field, str for the others */
        "local b = mp(csv.parse('a,\\xff')) "
        "assert(b == '\\x92\\xa1a\\xc4\\x01\\xff', b) "
        "assert(mp(csv.parse('\"a\"\"b\"')) == '\\x91\\xa3a\"b') "
        "assert(json.encode(csv.parse('\"a\"\"b\",\\\\')) == "
        "  '[\"a\\\\\"b\",\"\\\\\\\\\"]') "
        /* what the row holds wins */
        "local r = csv.parse('a,b,c') r[2] = 42 r[3] = {x = 1} "
        "assert(mp(r) == mp({'a', 42, {x = 1}})) "
        "assert(json.encode(r) == '[\"a\",42,{\"x\":1}]') "
        "return true");
    /* errors name the place */
    expect_lua_error(L, "local r = csv.parse('a,b') r[2] = print "
                        "return mp(r)",
                     "cannot send a function value (at event[2])");
    expect_lua_error(L, "local r = csv.parse('a,b') r[2] = print "
                        "return mp({x = {r}})",
                     "cannot send a function value (at event.x[1][2])");
    expect_lua_error(L, "local r = csv.parse('a,b') r[2] = print "
                        "return json.encode({x = r})",
                     "json.encode: cannot encode a function value (at "
                     "value.x[2])");
    expect_lua_error(L, "return json.encode(csv.parse('a,\\xff'))",
                     "json.encode: invalid UTF-8 in a string (at "
                     "value[2])");
    expect_lua_error(L, "return json.encode({csv.parse('\"\\xff\"\"\"')})",
                     "json.encode: invalid UTF-8 in a string (at "
                     "value[1][1])");
    lua_close(L);
}

/* A row whose private key was replaced by raw access is refused, never
 * misread. */
static void test_lua_row_damaged(void **state)
{
    (void)state;
    lua_State *L = csv_state();
    const char *damage = "local r = csv.parse('a,b') "
                         "rawset(r, (next(r)), nil) "
                         "local other = csv.parse('x') ";
    char code[512];
    snprintf(code, sizeof code, "%s return r[1]", damage);
    expect_lua_error(L, code, "damaged csv row: its line was replaced");
    snprintf(code, sizeof code, "%s return #r", damage);
    expect_lua_error(L, code, "damaged csv row: its line was replaced");
    snprintf(code, sizeof code, "%s r[1] = 'x'", damage);
    expect_lua_error(L, code, "damaged csv row: its line was replaced");
    snprintf(code, sizeof code, "%s return mp(r)", damage);
    expect_lua_error(L, code, "damaged csv row: its line was replaced "
                              "(at event)");
    snprintf(code, sizeof code, "%s return mp({{r}})", damage);
    expect_lua_error(L, code, "damaged csv row: its line was replaced "
                              "(at event[1][1])");
    snprintf(code, sizeof code, "%s return json.encode(r)", damage);
    expect_lua_error(L, code, "json.encode: damaged csv row: its line was "
                              "replaced (at value)");
    snprintf(code, sizeof code, "%s return csv.encode(r)", damage);
    expect_lua_error(L, code, "csv.encode: damaged csv row: its line was "
                              "replaced");
    /* replaced by another string: reads keep the line they started
     * with until another row is read; encoders take the new one */
    lua_ok(L, "local r = csv.parse('a,b') assert(r[2] == 'b') "
              "rawset(r, (next(r)), 'c,d,e') "
              "assert(r[2] == 'b') "
              "local other = csv.parse('x') "
              "assert(r[2] == 'd' and #r == 3) "
              "return mp(r) == mp({'c', 'd', 'e'})");
    lua_close(L);
}

/* The module is also reachable through require after preload. */
static void test_lua_require(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ss_csv);
    lua_setfield(L, -2, "csv");
    lua_pop(L, 1);
    lua_ok(L, "local csv = require 'csv' "
              "return csv.parse('1,2')[2] == '2' and "
              "type(csv.encode) == 'function'");
    /* the scratch state is hidden from scripts */
    lua_ok(L, "local csv = require 'csv' "
              "local n = debug.getupvalue(csv.parse, 1) "
              "return getmetatable(select(2, debug.getupvalue(csv.parse, 1)))"
              " == false");
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4180_examples),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_other_separators),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_multiline_record),
        cmocka_unit_test(test_callback_contract),
        cmocka_unit_test(test_count_one_pass),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_cursor_offsets),
        cmocka_unit_test(test_cursor_skip_words),
        cmocka_unit_test(test_cursor_unchecked),
        cmocka_unit_test(test_put_field),
        cmocka_unit_test(test_lua_parse),
        cmocka_unit_test(test_lua_errors),
        cmocka_unit_test(test_lua_encode),
        cmocka_unit_test(test_lua_row_reads),
        cmocka_unit_test(test_lua_row_shapes),
        cmocka_unit_test(test_lua_row_interleaved),
        cmocka_unit_test(test_lua_row_gc),
        cmocka_unit_test(test_lua_row_assign),
        cmocka_unit_test(test_lua_row_encode),
        cmocka_unit_test(test_lua_row_damaged),
        cmocka_unit_test(test_lua_require),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
