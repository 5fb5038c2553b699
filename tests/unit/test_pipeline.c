/*
 * test_pipeline.c - the pipeline file of `sstream run`
 * (src/run/ss_pipeline.c): a good file, every validation error with its
 * line number, the command-line overrides and the pre-start checks.
 *
 * The tests run in a fresh temporary folder (the current directory while
 * they run) holding small scripts and a data file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ss_util.h"
#include "lua/ss_lua.h"
#include "run/ss_pipeline.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

static char tmpdir[PATH_MAX];
static char oldcwd[PATH_MAX];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_pipeline.XXXXXX", base);
    if (!mkdtemp(tmpdir) || !getcwd(oldcwd, sizeof oldcwd) ||
        chdir(tmpdir) != 0)
        return -1;
    write_file("map.lua", "local x = 1\nreturn x\n");
    write_file("filter.lua", "return true\n");
    write_file("print.lua", "print('ok')\n");
    write_file("bad.lua", "local function f()\n  return 1\nend end\n");
    write_file("data.csv", "a,b\n1,2\n");
    mkdir("sub", 0755);
    write_file("sub/map.lua", "return 1\n");
    write_file("sub/print.lua", "return 1\n");
    mkdir("adir.lua", 0755);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(oldcwd) != 0)
        return -1;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char good[] =
    "# a comment\n"                      /* 1 */
    "name: delayed-flights\n"            /* 2 */
    "security: encrypted\n"              /* 3 */
    "batch_size: 128K\n"                 /* 4 */
    "source:\n"                          /* 5 */
    "  file: data.csv\n"                 /* 6 */
    "  parts: 4\n"                       /* 7 */
    "  format: csv\n"                    /* 8 */
    "  header: true\n"                   /* 9 */
    "stages:\n"                          /* 10 */
    "  - name: map\n"                    /* 11 */
    "    script: map.lua\n"              /* 12 */
    "    workers: 3\n"                   /* 13 */
    "  - name: filter\n"                 /* 14 */
    "    script: filter.lua\n"           /* 15 */
    "sink:\n"                            /* 16 */
    "  script: print.lua\n"              /* 17 */
    "  output: results.txt\n";           /* 18 */

static ss_pipeline *parse_ok(const char *path, const char *text)
{
    ss_pipeline *p = NULL;
    char err[512] = "";
    int rc = ss_pipeline_parse(path, text, strlen(text), &p, err, sizeof err);
    if (rc)
        fail_msg("unexpected error %d: %s", rc, err);
    assert_non_null(p);
    return p;
}

static void good_file(void **state)
{
    (void)state;
    write_file("p.yml", good);
    ss_pipeline *p = NULL;
    char err[512];
    assert_int_equal(ss_pipeline_load("p.yml", &p, err, sizeof err), 0);
    assert_string_equal(p->name, "delayed-flights");
    assert_string_equal(p->security, "encrypted");
    assert_int_equal(p->batch_size, 128 * 1024);
    assert_string_equal(p->source.file, "data.csv");
    assert_int_equal(p->source.parts, 4);
    assert_string_equal(p->source.format, "csv");
    assert_int_equal(p->source.header, 1);
    assert_int_equal(p->nstages, 2);
    assert_string_equal(p->stages[0].name, "map");
    assert_string_equal(p->stages[0].script, "map.lua");
    assert_int_equal(p->stages[0].workers, 3);
    assert_int_equal(p->stages[0].line, 11);
    assert_string_equal(p->stages[1].name, "filter");
    assert_int_equal(p->stages[1].workers, 1);
    assert_string_equal(p->sink.script, "print.lua");
    assert_string_equal(p->sink.output, "results.txt");
    assert_int_equal(ss_pipeline_total_workers(p), 4);
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), 0);
    ss_pipeline_destroy(&p);
    assert_null(p);
    ss_pipeline_destroy(&p);
}

static void defaults_and_paths(void **state)
{
    (void)state;
    /* relative paths resolve against the file's folder */
    ss_pipeline *p = parse_ok("sub/my pipe.v2.yml",
                              "stages:\n"
                              "  - {name: m, script: map.lua}\n"
                              "sink: {script: print.lua}\n");
    assert_string_equal(p->name, "my_pipe.v2");
    assert_string_equal(p->dir, "sub");
    assert_string_equal(p->security, "plain");
    assert_int_equal(p->batch_size, SS_BATCH_DEFAULT_SIZE);
    assert_int_equal(p->max_instructions, 0); /* the runtime's default */
    assert_null(p->source.file);
    assert_int_equal(p->source.parts, 1);
    assert_string_equal(p->source.format, "lines");
    assert_int_equal(p->source.header, 0);
    assert_int_equal(p->source.follow, 0);
    assert_int_equal(p->source.linger_ms, -1); /* the source's default */
    assert_int_equal(p->source.rate, 0); /* no limit */
    assert_string_equal(p->stages[0].script, "sub/map.lua");
    assert_string_equal(p->sink.script, "sub/print.lua");
    assert_null(p->sink.output);
    ss_pipeline_destroy(&p);

    /* absolute script paths are kept */
    char text[PATH_MAX * 3 + 128];
    snprintf(text, sizeof text,
             "stages:\n  - name: m\n    script: %s/map.lua\n"
             "sink:\n  script: %s/print.lua\n"
             "source:\n  file: %s/data.csv\n  header: no\n",
             tmpdir, tmpdir, tmpdir);
    p = parse_ok("/nowhere/p.yml", text);
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/map.lua", tmpdir);
    assert_string_equal(p->stages[0].script, want);
    assert_null(p->stages[0].partition_by);
    assert_int_equal(p->stages[0].broadcast, 0);
    assert_string_equal(p->dir, "/nowhere");
    snprintf(want, sizeof want, "%s/data.csv", tmpdir);
    assert_string_equal(p->source.file, want);
    ss_pipeline_destroy(&p);
}

/* Replaces line `line` (from 1) of the good file by `repl` (which may
 * hold several lines or be empty) and expects "p.yml:<eline>: <msg>". */
static void expect_edit(int line, const char *repl, int eline,
                        const char *msg)
{
    char text[4096] = "";
    const char *s = good;
    for (int n = 1; *s; n++) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s + 1) : strlen(s);
        if (n == line)
            strcat(text, repl);
        else
            strncat(text, s, len);
        s += len;
    }
    ss_pipeline *p = NULL;
    char err[512] = "";
    int rc = ss_pipeline_parse("p.yml", text, strlen(text), &p, err,
                               sizeof err);
    char want[512];
    snprintf(want, sizeof want, "p.yml:%d: %s", eline, msg);
    if (rc != SS_EINVAL || strcmp(err, want) != 0)
        fail_msg("edit of line %d: got %d '%s', want '%s'", line, rc, err,
                 want);
    assert_null(p);
}

/* Expects text to fail with exactly msg. */
static void expect_text(const char *text, const char *msg)
{
    ss_pipeline *p = NULL;
    char err[512] = "";
    int rc = ss_pipeline_parse("p.yml", text, strlen(text), &p, err,
                               sizeof err);
    if (rc != SS_EINVAL || strcmp(err, msg) != 0)
        fail_msg("got %d '%s', want '%s'", rc, err, msg);
}

static void errors_top_level(void **state)
{
    (void)state;
    expect_edit(2, "nmae: x\n", 2,
                "unknown key 'nmae' in the pipeline (expected name, "
                "security, batch_size, max_instructions, max_reject_ratio, lua, "
                "source, stages, "
                "sink, chain, checkpoint_ms, links)");
    expect_edit(2, "name: [a]\n", 2,
                "name must be 1 to 48 letters, digits, '_', '-' or '.'");
    expect_edit(2, "name: a/b\n", 2,
                "name must be 1 to 48 letters, digits, '_', '-' or '.'");
    expect_edit(3, "security: secret\n", 3,
                "security must be one of plain, encrypted or enclave");
    expect_edit(4, "batch_size: 65M\n", 4,
                "batch_size must be a size from 1 to 64M (such as 65536 "
                "or 64K)");
    expect_edit(4, "batch_size: lots\n", 4,
                "batch_size must be a size from 1 to 64M (such as 65536 "
                "or 64K)");
    expect_edit(4, "batch_size: '64K'\n", 4,
                "batch_size must be a size from 1 to 64M (such as 65536 "
                "or 64K)");
    expect_edit(4, "max_instructions: 999\n", 4,
                "max_instructions must be a number from 10000 to "
                "1000000000000 (Lua instructions per event)");
    expect_edit(4, "max_instructions: 5M\n", 4,
                "max_instructions must be a number from 10000 to "
                "1000000000000 (Lua instructions per event)");
    expect_edit(4, "security: plain\n", 4,
                "duplicate key 'security' in the pipeline");
    expect_text("stages: [{name: a, script: map.lua}]\n",
                "p.yml:1: sink is missing");
    expect_text("\n\nsink: {script: print.lua}\n",
                "p.yml:3: stages is missing");
    expect_edit(10, "stagez:\n", 10,
                "unknown key 'stagez' in the pipeline (expected name, "
                "security, batch_size, max_instructions, max_reject_ratio, lua, "
                "source, stages, "
                "sink, chain, checkpoint_ms, links)");
    expect_text("source: data.csv\n", "p.yml:1: source must be a mapping "
                "(key: value lines)");
    expect_text("stages: [{name: a, script: map.lua}]\nsink: print.lua\n",
                "p.yml:2: sink must be a mapping (key: value lines)");
}

static void lua_engine_key(void **state)
{
    (void)state;
    /* the engine this binary runs is accepted and kept */
    char text[256];
    snprintf(text, sizeof text,
             "lua: %s\nstages: [{name: m, script: map.lua}]\n"
             "sink: {script: print.lua}\n",
             ss_lua_engine());
    ss_pipeline *p = parse_ok("p.yml", text);
    assert_string_equal(p->lua, ss_lua_engine());
    ss_pipeline_destroy(&p);
    p = parse_ok("p.yml", "stages: [{name: m, script: map.lua}]\n"
                          "sink: {script: print.lua}\n");
    assert_null(p->lua);
    ss_pipeline_destroy(&p);
    /* the other one is refused, naming the binary that runs it */
    char want[512];
    if (strcmp(ss_lua_engine(), "5.4") == 0) {
        snprintf(want, sizeof want,
                 "lua: luajit: this pipeline's scripts need LuaJIT, but "
                 "this binary runs %s; use bin/sstream-luajit (built with "
                 "`make LUA=luajit`)",
                 ss_lua_engine_name());
        expect_edit(3, "lua: luajit\n", 3, want);
    } else {
        assert_string_equal(ss_lua_engine(), "luajit");
        snprintf(want, sizeof want,
                 "lua: 5.4: this pipeline's scripts need Lua 5.4, but this "
                 "binary runs %s; use bin/sstream (built with `make`)",
                 ss_lua_engine_name());
        expect_edit(3, "lua: 5.4\n", 3, want);
    }
    expect_edit(3, "lua: 5.1\n", 3, "lua must be one of 5.4 or luajit");
    expect_edit(3, "lua: [5.4]\n", 3, "lua must be one of 5.4 or luajit");
}

static void errors_source(void **state)
{
    (void)state;
    expect_edit(7, "  parts: 65\n", 7, "parts must be a number from 1 to 64");
    expect_edit(7, "  parts: 0\n", 7, "parts must be a number from 1 to 64");
    expect_edit(7, "  parts: -1\n", 7, "parts must be a number from 1 to 64");
    expect_edit(8, "  format: xml\n", 8,
                "format must be one of lines, csv, jsonl or sealed");
    expect_edit(9, "  header: maybe\n", 9, "header must be true or false");
    /* the good file has header: true on line 9 */
    expect_edit(8, "  format: sealed\n", 9,
                "header: a sealed file's header line cannot be skipped "
                "without the data key (leave header off: the stages see "
                "it)");
    expect_edit(6, "  file: [a, b]\n", 6, "file must be a non-empty string");
    expect_edit(6, "  file: ''\n", 6, "file must be a non-empty string");
    expect_edit(6, "  fiel: data.csv\n", 6,
                "unknown key 'fiel' in source (expected file, parts, "
                "format, header, follow, linger_ms, rate)");
    expect_edit(9, "  follow: maybe\n", 9, "follow must be true or false");
    expect_edit(9, "  linger_ms: -1\n", 9,
                "linger_ms must be a number from 0 to 3600000");
    static const char *const bad_rates[] = {"fast", "-5", "1.5k", "2G",
                                            "50kB", "1000000001", "''",
                                            "[1]", NULL};
    for (size_t i = 0; bad_rates[i]; i++) {
        char edit[64], msg[256];
        snprintf(edit, sizeof edit, "  rate: %s\n", bad_rates[i]);
        snprintf(msg, sizeof msg, "rate must be a number of rows per second "
                 "from 0 to 1000000000, such as 50000, 50k or 2M (k: 1000, "
                 "M: 1000000; 0: as fast as the pipeline takes them), not "
                 "'%s'", /* a quoted or a list value: not shown */
                 strchr("'[", bad_rates[i][0]) ? "" : bad_rates[i]);
        expect_edit(9, edit, 9, msg);
    }
    expect_text("source:\n  format: sealed\n  follow: true\n"
                "stages:\n  - name: map\n    script: map.lua\n"
                "sink:\n  script: print.lua\n",
                "p.yml:3: follow: a sealed file is complete (sstream "
                "encrypt wrote it): it cannot be followed");
}

static void errors_stages(void **state)
{
    (void)state;
    expect_edit(13, "    workers: 0\n", 13,
                "stage 'map': workers must be a number from 1 to 64");
    expect_edit(13, "    workers: 65\n", 13,
                "stage 'map': workers must be a number from 1 to 64");
    expect_edit(13, "    workers: two\n", 13,
                "stage 'map': workers must be a number from 1 to 64");
    expect_edit(13, "    workers: \"2\"\n", 13,
                "stage 'map': workers must be a number from 1 to 64");
    expect_edit(13, "    workers: 1.5\n", 13,
                "stage 'map': workers must be a number from 1 to 64");
    expect_edit(13, "    worker: 2\n", 13,
                "stage 'map': unknown key 'worker' in a stage (expected "
                "name, script, workers, partition_by, broadcast, chain)");
    /* keyed stages */
    expect_edit(15, "    script: filter.lua\n    partition_by: 'a b'\n", 16,
                "stage 'filter': partition_by must be a field name of 1 "
                "to 63 of A-Z a-z 0-9 _ - .");
    expect_edit(15, "    script: filter.lua\n    partition_by: k\n"
                    "    broadcast: true\n", 17,
                "stage 'filter': a stage is either partitioned "
                "(partition_by) or broadcast, not both");
    expect_edit(15, "    script: filter.lua\n    broadcast: 2\n", 16,
                "stage 'filter': broadcast must be true or false");
    expect_edit(13, "    partition_by: carrier\n", 13,
                "stage 'map': the first stage cannot be partitioned: the "
                "source does not cut its batches (put a stage before it, "
                "e.g. the map that reads the fields)");
    expect_text("sink: {script: print.lua}\nstages:\n"
                "  - {name: a, script: map.lua}\n"
                "  - {name: b, script: map.lua, partition_by: k}\n"
                "  - {name: c, script: map.lua, broadcast: yes}\n",
                "p.yml:5: stage 'c': two partitioned or broadcast stages "
                "cannot follow each other (the stage before, 'b', gets "
                "batches already cut)");
    expect_edit(12, "    script: nope.lua\n", 12,
                "stage 'map': script 'nope.lua' not found");
    expect_edit(12, "    script: adir.lua\n", 12,
                "stage 'map': script 'adir.lua' is not a regular file");
    expect_edit(12, "", 11, "stage 'map': script is missing");
    expect_text("sink: {script: print.lua}\nstages:\n  - workers: 2\n"
                "    script: map.lua\n",
                "p.yml:3: stage 1: name is missing");
    expect_edit(14, "  - name: map\n", 14,
                "stage 'map': name already used by the stage at line 11");
    expect_edit(14, "  - name: router\n", 14,
                "stage 'router': name 'router' is reserved");
    expect_edit(14, "  - name: 'a b'\n", 14,
                "stage 2: name must be 1 to 48 letters, digits, '_', '-' "
                "or '.'");
    expect_edit(14, "  - filter.lua\n  - name: x\n", 14,
                "stage 2: a stage must be a mapping (key: value lines)");
    expect_text("sink: {script: print.lua}\nstages: map.lua\n",
                "p.yml:2: stages must be a list of 1 to 32 stages");
    expect_text("sink: {script: print.lua}\nstages: []\n",
                "p.yml:2: stages must be a list of 1 to 32 stages (has 0)");
    expect_edit(17, "  scrip: print.lua\n", 17,
                "unknown key 'scrip' in sink (expected script, "
                "output)");
    expect_edit(17, "  script: none.lua\n", 17,
                "sink: script 'none.lua' not found");
    expect_edit(18, "  output: {a: 1}\n", 18,
                "sink: output must be a non-empty string");
}

static void too_many_stages(void **state)
{
    (void)state;
    char text[8192] = "stages:\n";
    for (int i = 0; i < 33; i++) {
        char line[64];
        snprintf(line, sizeof line, "  - {name: s%d, script: map.lua}\n", i);
        strcat(text, line);
    }
    strcat(text, "sink: {script: print.lua}\n");
    ss_pipeline *p = NULL;
    char err[512];
    assert_int_equal(
        ss_pipeline_parse("p.yml", text, strlen(text), &p, err, sizeof err),
        SS_EINVAL);
    assert_string_equal(err, "p.yml:2: stages must be a list of 1 to 32 "
                             "stages (has 33)");
    /* 32 is fine */
    char *last = strstr(text, "  - {name: s32");
    assert_non_null(last);
    memmove(last, strstr(last, "sink:"), strlen(strstr(last, "sink:")) + 1);
    p = parse_ok("p.yml", text);
    assert_int_equal(p->nstages, 32);
    ss_pipeline_destroy(&p);
}

static void yaml_and_file_errors(void **state)
{
    (void)state;
    ss_pipeline *p = NULL;
    char err[512];
    const char *bad = "stages:\n  - name: map\n   script: x\n";
    assert_int_equal(
        ss_pipeline_parse("p.yml", bad, strlen(bad), &p, err, sizeof err),
        SS_EINVAL);
    assert_true(strncmp(err, "p.yml:3: yaml: ", 15) == 0);
    assert_null(strstr(err, "tab"));
    assert_null(p);

    /* A tab looks like spaces: the message says it is one. */
    const char *tab = "name: x\nstages:\n\t- name: map\n";
    assert_int_equal(
        ss_pipeline_parse("p.yml", tab, strlen(tab), &p, err, sizeof err),
        SS_EINVAL);
    assert_true(strncmp(err, "p.yml:3: yaml: ", 15) == 0);
    assert_non_null(strstr(err, "(a tab: YAML indents with spaces only)"));
    assert_null(p);

    assert_int_equal(ss_pipeline_parse("p.yml", "", 0, &p, err, sizeof err),
                     SS_EINVAL);
    assert_string_equal(err, "p.yml:1: the file is empty");
    assert_int_equal(
        ss_pipeline_parse("p.yml", "- a\n- b\n", 8, &p, err, sizeof err),
        SS_EINVAL);
    assert_string_equal(err, "p.yml:1: the pipeline must be a mapping "
                             "(key: value lines)");

    assert_int_equal(ss_pipeline_load("missing.yml", &p, err, sizeof err),
                     SS_ENOTFOUND);
    assert_string_equal(err, "missing.yml: No such file or directory");
    assert_int_equal(ss_pipeline_load("sub", &p, err, sizeof err), SS_EIO);
    assert_null(p);
}

/* max_reject_ratio: a share of the rows in, as a number or a percent. */
static void reject_ratio(void **state)
{
    (void)state;
    char text[1024];
    ss_pipeline *p = parse_ok("p.yml", good);
    assert_true(p->max_reject_ratio < 0); /* no limit by default */
    ss_pipeline_destroy(&p);
    static const char *const ok_values[] = {"0.05", "5%", "0", "1"};
    static const double want[] = {0.05, 0.05, 0, 1};
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "max_reject_ratio: %s\n%s",
                 ok_values[i], good);
        p = parse_ok("p.yml", text);
        assert_true(p->max_reject_ratio > want[i] - 1e-9 &&
                    p->max_reject_ratio < want[i] + 1e-9);
        ss_pipeline_destroy(&p);
    }
    static const char *const bad_values[] = {"2", "lots", "-1", "5%%"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "max_reject_ratio: %s\n%s",
                 bad_values[i], good);
        expect_text(text, "p.yml:1: max_reject_ratio must be a share of "
                          "the rows in from 0 to 1 (such as 0.05 or 5%)");
    }
}

/* chain: which stages run in the same workers as the one before them. */
static void chain_keys(void **state)
{
    (void)state;
    static const char text[] =
        "chain: true\n"
        "source: {file: data.csv}\n"
        "stages:\n"
        "  - {name: a, script: map.lua}\n"
        "  - {name: b, script: map.lua}\n"
        "  - {name: c, script: map.lua, chain: false}\n"
        "  - {name: d, script: map.lua}\n"
        "  - {name: e, script: map.lua, workers: 2}\n"
        "  - {name: f, script: map.lua, workers: 2}\n"
        "sink: {script: print.lua}\n";
    ss_pipeline *p = parse_ok("p.yml", text);
    assert_int_equal(p->chain, 1);
    assert_int_equal(p->stages[0].chain, -1);
    assert_int_equal(p->stages[2].chain, 0);
    assert_int_equal(ss_pipeline_chained(p, 0), 0); /* the first: never */
    assert_int_equal(ss_pipeline_chained(p, 1), 1); /* b after a */
    assert_int_equal(ss_pipeline_chained(p, 2), 0); /* c: chain: false */
    assert_int_equal(ss_pipeline_chained(p, 3), 0); /* d: after c */
    assert_int_equal(ss_pipeline_chained(p, 4), 0); /* e: 2 workers, d 1 */
    assert_int_equal(ss_pipeline_chained(p, 5), 1); /* f after e */
    assert_int_equal(ss_pipeline_chained(p, 6), 0); /* out of range */
    free(p->security); /* every mode chains (in one enclave outside plain) */
    p->security = strdup("enclave");
    assert_int_equal(ss_pipeline_chained(p, 1), 1);
    assert_int_equal(ss_pipeline_chained(p, 5), 1);
    ss_pipeline_destroy(&p);
    /* off by default; a stage may opt in with its neighbour */
    p = parse_ok("p.yml", good);
    assert_int_equal(p->chain, 0);
    free(p->security);
    p->security = strdup("plain");
    assert_int_equal(ss_pipeline_chained(p, 1), 0);
    p->stages[0].chain = p->stages[1].chain = 1;
    p->stages[1].workers = 3;
    assert_int_equal(ss_pipeline_chained(p, 1), 1);
    ss_pipeline_destroy(&p);
    /* a partitioned or broadcast stage is dealt to by its router */
    p = parse_ok("p.yml",
                 "chain: true\nsource: {file: data.csv}\nstages:\n"
                 "  - {name: a, script: map.lua, workers: 2}\n"
                 "  - {name: b, script: map.lua, workers: 2, partition_by: k}\n"
                 "  - {name: c, script: map.lua, workers: 2}\n"
                 "  - {name: d, script: map.lua, workers: 2, broadcast: true}\n"
                 "sink: {script: print.lua}\n");
    assert_int_equal(ss_pipeline_chained(p, 1), 0);
    assert_int_equal(ss_pipeline_chained(p, 2), 1); /* after b: dealt once */
    assert_int_equal(ss_pipeline_chained(p, 3), 0);
    ss_pipeline_destroy(&p);
    expect_text("chain: maybe\nsource: {file: data.csv}\nstages:\n"
                "  - {name: a, script: map.lua}\nsink: {script: print.lua}\n",
                "p.yml:1: chain must be true or false");
}

static void overrides(void **state)
{
    (void)state;
    ss_pipeline *p = parse_ok("p.yml", good);
    char err[256];
    ss_pipeline_overrides o = {0};
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_string_equal(p->source.file, "data.csv");

    o.env_data = "env.csv";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_string_equal(p->source.file, "env.csv");
    o.data = "cli.csv";
    o.workers = 7;
    o.security = "enclave";
    o.batch_size = 1024;
    o.max_instructions = 123456;
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_int_equal(p->max_instructions, 123456);
    assert_string_equal(p->source.file, "cli.csv");
    assert_int_equal(p->stages[0].workers, 7);
    assert_int_equal(p->stages[1].workers, 7);
    assert_string_equal(p->security, "enclave");
    assert_int_equal(p->batch_size, 1024);

    /* the rate: the file's (50k = 50000, decimal), --rate N, --rate 0 */
    ss_pipeline_destroy(&p);
    p = parse_ok("p.yml", "source: {file: d.csv, rate: 50k}\nstages:\n"
                 "  - {name: a, script: map.lua}\nsink: {script: print.lua}\n");
    assert_int_equal(p->source.rate, 50000);
    ss_pipeline_overrides r = {0};
    assert_int_equal(ss_pipeline_apply(p, &r, err, sizeof err), 0);
    assert_int_equal(p->source.rate, 50000);
    r.rate = 2000000;
    assert_int_equal(ss_pipeline_apply(p, &r, err, sizeof err), 0);
    assert_int_equal(p->source.rate, 2000000);
    r.rate = -1; /* --rate 0: no limit */
    assert_int_equal(ss_pipeline_apply(p, &r, err, sizeof err), 0);
    assert_int_equal(p->source.rate, 0);
    uint64_t v = 7;
    assert_int_equal(ss_parse_rate("2M", &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(ss_parse_rate("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ss_parse_rate("1000M", &v), 0);
    assert_int_equal(v, SS_RATE_MAX);
    assert_int_equal(ss_parse_rate("1001M", &v), SS_EINVAL);
    assert_int_equal(ss_parse_rate("18446744073709551615k", &v), SS_EINVAL);
    assert_int_equal(ss_parse_rate("", &v), SS_EINVAL);
    assert_int_equal(ss_parse_rate(" 5", &v), SS_EINVAL);

    ss_pipeline_overrides bad = {0};
    bad.workers = 65;
    assert_int_equal(ss_pipeline_apply(p, &bad, err, sizeof err), SS_EINVAL);
    assert_string_equal(err, "--workers must be a number from 1 to 64");
    bad.workers = 0;
    bad.security = "tls";
    assert_int_equal(ss_pipeline_apply(p, &bad, err, sizeof err), SS_EINVAL);
    assert_string_equal(err,
                        "--security must be plain, encrypted or enclave");
    assert_true(ss_pipeline_security_valid("plain"));
    assert_false(ss_pipeline_security_valid("Plain"));
    assert_false(ss_pipeline_security_valid(NULL));
    assert_int_equal(ss_pipeline_apply(p, NULL, err, sizeof err), 0);
    ss_pipeline_destroy(&p);
}

static void checks(void **state)
{
    (void)state;
    char err[512];
    ss_pipeline *p = parse_ok("p.yml", good);
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), 0);

    /* a syntax error in a stage script, named with its line */
    free(p->stages[1].script);
    p->stages[1].script = strdup("bad.lua");
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_ELUA);
    assert_true(strncmp(err, "stage 'filter': bad.lua:3: ", 27) == 0);
    assert_non_null(strstr(err, "near 'end'"));
    assert_null(strchr(err, '\n'));

    free(p->stages[1].script);
    p->stages[1].script = strdup("filter.lua");
    free(p->sink.script);
    p->sink.script = strdup("bad.lua");
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_ELUA);
    assert_true(strncmp(err, "sink: bad.lua:3: ", 17) == 0);
    free(p->sink.script);
    p->sink.script = strdup("print.lua");

    ss_pipeline_overrides o = {0};
    o.data = "nothere.csv";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_ENOTFOUND);
    assert_string_equal(err, "data file 'nothere.csv': No such file or "
                             "directory");
    p->source.follow = 1; /* followed: the source waits for it */
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), 0);
    p->source.follow = 0;
    o.data = "sub";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_EINVAL);
    assert_string_equal(err, "data file 'sub': not a regular file");
    ss_pipeline_destroy(&p);

    p = parse_ok("p.yml", "stages: [{name: a, script: map.lua}]\n"
                          "sink: {script: print.lua}\n");
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_EINVAL);
    assert_string_equal(err, "p.yml: no data file: give source.file, "
                             "DATA_FILE or --data");
    ss_pipeline_destroy(&p);
}

/* links: curve (default) | sealed: parsed, overridden, and refused where
 * it protects nothing (plain) or leaves barriers unauthenticated */
static void links_key(void **state)
{
    (void)state;
    char err[512], text[sizeof good + 64];
    ss_pipeline *p = parse_ok("p.yml", good);
    assert_string_equal(p->links, "curve");
    assert_false(ss_pipeline_links_sealed(p));
    ss_pipeline_destroy(&p);

    snprintf(text, sizeof text, "%slinks: sealed\n", good);
    p = parse_ok("p.yml", text);
    assert_true(ss_pipeline_links_sealed(p));
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), 0);
    free(p->security);
    p->security = strdup("plain");
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_EINVAL);
    assert_non_null(strstr(err, "p.yml: links: sealed needs security "
                                "encrypted or enclave"));
    ss_pipeline_overrides o = {0};
    o.security = "enclave";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    p->checkpoint_ms = 200;
    assert_int_equal(ss_pipeline_check(p, err, sizeof err), SS_EINVAL);
    assert_non_null(strstr(err, "links: sealed does not go with "
                                "checkpoints (checkpoint_ms 200)"));
    p->checkpoint_ms = 0;
    o = (ss_pipeline_overrides){0};
    o.links = "curve";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_false(ss_pipeline_links_sealed(p));
    o.links = "sealed";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), 0);
    assert_true(ss_pipeline_links_sealed(p));
    o.links = "none";
    assert_int_equal(ss_pipeline_apply(p, &o, err, sizeof err), SS_EINVAL);
    assert_string_equal(err, "--links must be curve or sealed");
    ss_pipeline_destroy(&p);

    snprintf(text, sizeof text, "%slinks: tls\n", good);
    p = NULL;
    assert_int_equal(ss_pipeline_parse("p.yml", text, strlen(text), &p, err,
                                       sizeof err),
                     SS_EINVAL);
    assert_non_null(strstr(err, "links must be one of curve or sealed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file),
        cmocka_unit_test(defaults_and_paths),
        cmocka_unit_test(errors_top_level),
        cmocka_unit_test(lua_engine_key),
        cmocka_unit_test(errors_source),
        cmocka_unit_test(errors_stages),
        cmocka_unit_test(too_many_stages),
        cmocka_unit_test(yaml_and_file_errors),
        cmocka_unit_test(reject_ratio),
        cmocka_unit_test(chain_keys),
        cmocka_unit_test(overrides),
        cmocka_unit_test(checks),
        cmocka_unit_test(links_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
