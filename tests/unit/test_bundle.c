/*
 * test_bundle.c - a stage script and the local modules it requires
 * (src/core/ss_bundle.c): which requires are found, nested modules,
 * names that are not files (built-ins) or could leave the folder, the
 * measured form with and without modules, and errors naming the file;
 * data files named by files.read / files.lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/ss_buf.h"
#include "core/ss_bundle.h"
#include "securestreams.h"

static char dir[] = "/tmp/ss_bundle_test.XXXXXX";

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/util", dir);
    return mkdir(sub, 0700);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ss_bundle *load(const char *script)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", dir, script);
    ss_bundle *b = NULL;
    int rc = ss_bundle_load(path, &b, err, sizeof err);
    if (rc)
        fail_msg("load %s: %d %s", script, rc, err);
    return b;
}

static const char *name_of(const ss_bundle *b, size_t i)
{
    const char *name, *src;
    size_t len;
    ss_bundle_module(b, i, &name, &src, &len);
    return name;
}

/* Every spelling of require of a literal; nested modules; sorted. */
static void finds_requires(void **state)
{
    (void)state;
    put("a.lua", "return 1");
    put("b.lua", "return require 'util.c'");
    put("util/c.lua", "return 3");
    put("d.lua", "return 4");
    put("e.lua", "return 5");
    put("s.lua", "local a = require 'a'\n"
                 "local b = require(\"b\")\n"
                 "local d = require ( 'd' )\n"
                 "local e = require\"e\"\n"
                 "local rx = require 'rx'       -- a built-in: no file\n"
                 "local x = myrequire 'a'\n"
                 "local y = obj:require 'zz'\n");
    ss_bundle *b = load("s.lua");
    assert_int_equal(ss_bundle_nmodules(b), 5);
    assert_string_equal(name_of(b, 0), "a");
    assert_string_equal(name_of(b, 1), "b");
    assert_string_equal(name_of(b, 2), "d");
    assert_string_equal(name_of(b, 3), "e");
    assert_string_equal(name_of(b, 4), "util.c");
    size_t len;
    const char *src = ss_bundle_script(b, &len);
    assert_int_equal(len, strlen(src));
    assert_non_null(strstr(src, "require 'a'"));
    ss_bundle_destroy(&b);
    assert_null(b);
    ss_bundle_destroy(&b);
}

/* Names that would leave the folder, or are computed, are not bundled;
 * a module requiring itself (or a cycle) is read once. */
static void unsafe_names_and_cycles(void **state)
{
    (void)state;
    put("loop.lua", "local again = require 'loop'\nreturn {}");
    put("t.lua", "require '../etc/passwd'\nrequire '.hidden'\n"
                 "require 'a..b'\nrequire('x' .. 'y')\nrequire 'loop'\n");
    ss_bundle *b = load("t.lua");
    assert_int_equal(ss_bundle_nmodules(b), 1);
    assert_string_equal(name_of(b, 0), "loop");
    ss_bundle_destroy(&b);
}

/* Without modules the measured form is the script's bytes alone (the
 * measurement of such a script is unchanged); with them it grows, and a
 * changed module changes it. */
static void measured_form(void **state)
{
    (void)state;
    put("plain.lua", "local rx = require 'rx'\nreturn 0\n");
    ss_bundle *b = load("plain.lua");
    ss_buf m;
    ss_buf_init(&m);
    assert_int_equal(ss_bundle_measured(b, &m), 0);
    assert_int_equal(m.len, strlen("local rx = require 'rx'\nreturn 0\n"));
    assert_memory_equal(m.data, "local rx = require 'rx'\nreturn 0\n",
                        m.len);
    ss_bundle_destroy(&b);

    put("h.lua", "return 1");
    put("m.lua", "return require 'h'");
    b = load("m.lua");
    ss_buf m1;
    ss_buf_init(&m1);
    assert_int_equal(ss_bundle_measured(b, &m1), 0);
    ss_bundle_destroy(&b);
    assert_true(m1.len > strlen("return require 'h'"));
    assert_non_null(memmem(m1.data, m1.len, "sstream-modules-v1", 18));
    put("h.lua", "return 2");
    b = load("m.lua");
    ss_buf m2;
    ss_buf_init(&m2);
    assert_int_equal(ss_bundle_measured(b, &m2), 0);
    ss_bundle_destroy(&b);
    assert_int_equal(m1.len, m2.len);
    assert_true(memcmp(m1.data, m2.data, m1.len) != 0);
    ss_buf_release(&m);
    ss_buf_release(&m1);
    ss_buf_release(&m2);
}

static void errors_name_the_file(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/missing.lua", dir);
    ss_bundle *b = NULL;
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err),
                     SS_ENOTFOUND);
    assert_null(b);
    assert_non_null(strstr(err, "missing.lua"));
    /* more modules than allowed */
    char text[8192] = "";
    for (int i = 0; i < SS_BUNDLE_MAX_MODULES + 1; i++) {
        char rel[32], req[48];
        snprintf(rel, sizeof rel, "m%d.lua", i);
        put(rel, "return 0");
        snprintf(req, sizeof req, "require 'm%d'\n", i);
        strcat(text, req);
    }
    put("many.lua", text);
    snprintf(path, sizeof path, "%s/many.lua", dir);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err), SS_ETOOBIG);
    assert_non_null(strstr(err, "more than 64 local modules"));
}

/* The file form: what the launcher hands an enclave that cannot reach
 * the script's folder. It loads back to the same script, modules and
 * measured form; a damaged one is refused, named. */
static void file_form_round_trip(void **state)
{
    (void)state;
    put("h2.lua", "return 'h2'");
    put("util/x.lua", "return 'x'");
    put("m2.lua", "local a = require 'h2'\nlocal b = require 'util.x'\n");
    ss_bundle *b = load("m2.lua");
    ss_buf file, m1, m2;
    ss_buf_init(&file);
    ss_buf_init(&m1);
    ss_buf_init(&m2);
    assert_int_equal(ss_bundle_serialize(b, &file), 0);
    assert_int_equal(ss_bundle_measured(b, &m1), 0);
    ss_bundle_destroy(&b);
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/bundle.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(file.data, 1, file.len, f);
    fclose(f);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err), 0);
    assert_int_equal(ss_bundle_nmodules(b), 2);
    assert_string_equal(name_of(b, 1), "util.x");
    assert_int_equal(ss_bundle_measured(b, &m2), 0);
    assert_int_equal(m1.len, m2.len);
    assert_memory_equal(m1.data, m2.data, m1.len);
    ss_bundle_destroy(&b);
    /* cut short: refused */
    f = fopen(path, "wb");
    fwrite(file.data, 1, file.len - 3, f);
    fclose(f);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err), SS_EINVAL);
    assert_non_null(strstr(err, "bundle.bin: a damaged script bundle"));
    assert_null(b);
    ss_buf_release(&file);
    ss_buf_release(&m1);
    ss_buf_release(&m2);
}

static const char *file_of(const ss_bundle *b, size_t i, const char **data,
                           size_t *len)
{
    const char *name;
    ss_bundle_file(b, i, &name, data, len);
    return name;
}

/* Data files: files.read / files.lines of a literal, in the script and in
 * its modules, in a subfolder, each once, sorted; they travel in the file
 * form and change the measured form; a module-less script with a file
 * has the modules' tag too. */
static void data_files(void **state)
{
    (void)state;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/tables", dir);
    mkdir(sub, 0700);
    put("codes.csv", "AA,American\n");
    put("tables/w.txt", "x\ny");
    put("fh.lua", "local files = require 'files'\n"
                  "return files.read \"tables/w.txt\"\n");
    put("fs.lua", "local files = require 'files'\n"
                  "local h = require 'fh'\n"
                  "for l in files.lines('codes.csv') do end\n"
                  "local again = files.read ( 'codes.csv' )\n"
                  "local x = myfiles.read('nope.csv')\n"
                  "local y = files.reader('nope.csv')\n");
    ss_bundle *b = load("fs.lua");
    assert_int_equal(ss_bundle_nmodules(b), 1);
    assert_int_equal(ss_bundle_nfiles(b), 2);
    const char *data;
    size_t len;
    assert_string_equal(file_of(b, 0, &data, &len), "codes.csv");
    assert_int_equal(len, 12);
    assert_memory_equal(data, "AA,American\n", 12);
    assert_string_equal(file_of(b, 1, &data, &len), "tables/w.txt");
    assert_string_equal(data, "x\ny");
    ss_buf file, m1, m2, m3;
    ss_buf_init(&file);
    ss_buf_init(&m1);
    ss_buf_init(&m2);
    ss_buf_init(&m3);
    assert_int_equal(ss_bundle_serialize(b, &file), 0);
    assert_int_equal(ss_bundle_measured(b, &m1), 0);
    assert_non_null(memmem(m1.data, m1.len, "sstream-files-v1", 16));
    ss_bundle_destroy(&b);
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/fbundle.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(file.data, 1, file.len, f);
    fclose(f);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err), 0);
    assert_int_equal(ss_bundle_nfiles(b), 2);
    assert_string_equal(file_of(b, 1, &data, &len), "tables/w.txt");
    assert_int_equal(ss_bundle_measured(b, &m2), 0);
    assert_int_equal(m1.len, m2.len);
    assert_memory_equal(m1.data, m2.data, m1.len);
    ss_bundle_destroy(&b);
    /* one byte of a data file changed: another measured form */
    put("codes.csv", "AA,Americon\n");
    b = load("fs.lua");
    assert_int_equal(ss_bundle_measured(b, &m3), 0);
    assert_int_equal(m1.len, m3.len);
    assert_true(memcmp(m1.data, m3.data, m1.len) != 0);
    ss_bundle_destroy(&b);
    /* a script with a file and no module */
    put("only.lua", "local t = require('files').read('codes.csv')\n"
                    "return files.read('codes.csv')\n");
    b = load("only.lua");
    assert_int_equal(ss_bundle_nmodules(b), 0);
    assert_int_equal(ss_bundle_nfiles(b), 1);
    ss_buf_release(&m1);
    ss_buf_init(&m1);
    assert_int_equal(ss_bundle_measured(b, &m1), 0);
    assert_non_null(memmem(m1.data, m1.len, "sstream-modules-v1", 18));
    assert_non_null(memmem(m1.data, m1.len, "sstream-files-v1", 16));
    ss_bundle_destroy(&b);
    ss_buf_release(&file);
    ss_buf_release(&m1);
    ss_buf_release(&m2);
    ss_buf_release(&m3);
}

/* A data file that is missing, outside the folder, or too big is an
 * error naming the file and the script that named it. */
static void data_file_errors(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    ss_bundle *b = NULL;
    put("fm.lua", "local files = require 'files'\n"
                  "return files.read('absent.csv')\n");
    snprintf(path, sizeof path, "%s/fm.lua", dir);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err),
                     SS_ENOTFOUND);
    assert_null(b);
    assert_non_null(strstr(err, "absent.csv (named by "));
    assert_non_null(strstr(err, "fm.lua) does not exist"));
    static const char *const bad[] = {"../x.csv", "/etc/passwd", ".hidden",
                                      "a//b", "a/../b", "a/", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "return files.lines('%s')\n", bad[i]);
        put("fb.lua", text);
        snprintf(path, sizeof path, "%s/fb.lua", dir);
        err[0] = '\0';
        assert_int_equal(ss_bundle_load(path, &b, err, sizeof err),
                         SS_EINVAL);
        assert_non_null(strstr(err, "a data file is named by a relative "
                                    "path below the script's folder"));
        assert_non_null(strstr(err, bad[i]));
    }
    /* over the per-file limit */
    snprintf(path, sizeof path, "%s/big.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), SS_BUNDLE_MAX_FILE_BYTES + 1), 0);
    fclose(f);
    put("fbig.lua", "return files.read('big.bin')\n");
    snprintf(path, sizeof path, "%s/fbig.lua", dir);
    assert_int_equal(ss_bundle_load(path, &b, err, sizeof err), SS_ETOOBIG);
    assert_non_null(strstr(err, "may have at most 16 MiB"));
    assert_non_null(strstr(err, "big.bin"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_requires),
        cmocka_unit_test(unsafe_names_and_cycles),
        cmocka_unit_test(measured_form),
        cmocka_unit_test(errors_name_the_file),
        cmocka_unit_test(file_form_round_trip),
        cmocka_unit_test(data_files),
        cmocka_unit_test(data_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
