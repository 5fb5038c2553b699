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

#include <lauxlib.h>
#include <lualib.h>
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

/* Splits line (strlen) and checks the fields against want[] (NULL
 * terminated); the count function must agree. */
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

static lua_State *csv_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    luaL_requiref(L, "csv", luaopen_ss_csv, 1);
    lua_pop(L, 1);
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
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_put_field),
        cmocka_unit_test(test_lua_parse),
        cmocka_unit_test(test_lua_errors),
        cmocka_unit_test(test_lua_encode),
        cmocka_unit_test(test_lua_require),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
