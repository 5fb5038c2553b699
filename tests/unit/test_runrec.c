/*
 * test_runrec.c - the record of a cluster run (src/run/ss_runrec.c): it
 * reads back what was written, refuses names that are not run names, says
 * where it looked for a missing one, keeps the workers per stage, and
 * knows whether the process that follows the run is alive; and refuses a
 * state folder that others can write, a record that is a link (never
 * written through) or that others can write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "run/ss_runrec.h"
#include "securestreams.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ss_runrec_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sub[96];
    snprintf(sub, sizeof sub, "%s/state/deeper", dir);
    setenv("SS_STATE_DIR", sub, 1); /* made on the first write */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void round_trip(void **state)
{
    (void)state;
    ss_runrec r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "flights-1");
    snprintf(r.on, sizeof r.on, "swarm");
    snprintf(r.pipeline, sizeof r.pipeline, "/p/pipeline.yml");
    snprintf(r.outdir, sizeof r.outdir, "/p/out");
    snprintf(r.security, sizeof r.security, "enclave");
    gethostname(r.host, sizeof r.host - 1);
    r.pid = (long)getpid();
    r.started = 1700000000;
    snprintf(r.control, sizeof r.control, "/tmp/sstream-run-x/ctl/ctl.sock");
    assert_int_equal(ss_runrec_set_workers(&r, "map", 2), 0);
    assert_int_equal(ss_runrec_set_workers(&r, "reduce", 1), 0);
    char err[512];
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/state/deeper/flights-1.run", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    ss_runrec b;
    assert_int_equal(ss_runrec_read("flights-1", &b, err, sizeof err), 0);
    assert_string_equal(b.pipeline, "/p/pipeline.yml");
    assert_string_equal(b.outdir, "/p/out");
    assert_string_equal(b.security, "enclave");
    assert_string_equal(b.control, "/tmp/sstream-run-x/ctl/ctl.sock");
    assert_int_equal(b.pid, r.pid);
    assert_true(b.started == 1700000000);
    assert_int_equal(ss_runrec_workers(&b, "map"), 2);
    assert_int_equal(ss_runrec_workers(&b, "reduce"), 1);
    assert_int_equal(ss_runrec_workers(&b, "ma"), -1);
    assert_int_equal(ss_runrec_alive(&b), 1); /* this very process */

    /* a rescale replaces the stage's count, keeps the others */
    assert_int_equal(ss_runrec_set_workers(&b, "map", 3), 0);
    assert_string_equal(b.workers, "map=3,reduce=1");
    assert_int_equal(ss_runrec_set_workers(&b, "m", 5), 0);
    assert_string_equal(b.workers, "map=3,reduce=1,m=5");

    /* another host: unknown from here */
    snprintf(b.host, sizeof b.host, "not-%.200s", r.host);
    assert_int_equal(ss_runrec_alive(&b), -1);

    ss_runrec_remove("flights-1");
    assert_int_equal(ss_runrec_read("flights-1", &b, err, sizeof err),
                     SS_EIO);
    assert_non_null(strstr(err, "no run 'flights-1' here"));
    assert_non_null(strstr(err, "/state/deeper/flights-1.run"));
}

/* Another user must not be able to plant, link or swap records. */
static void others_are_kept_out(void **state)
{
    (void)state;
    ss_runrec r;
    char err[1024], path[160], sub[96];
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "lk");
    snprintf(r.outdir, sizeof r.outdir, "/o");
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), 0);
    snprintf(sub, sizeof sub, "%s/state/deeper", dir);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a record that others can write is refused when read */
    snprintf(path, sizeof path, "%s/lk.run", sub);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(ss_runrec_read("lk", &r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "refusing the record"));
    /* a record that is a link is neither read nor written through */
    char victim[160];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("name=lk\noutdir=/o\n", f);
    fclose(f);
    unlink(path);
    assert_int_equal(symlink(victim, path), 0);
    assert_int_equal(ss_runrec_read("lk", &r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "a link, refused"));
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path); /* the old temp name */
    assert_int_equal(symlink(victim, tmp), 0);
    snprintf(r.name, sizeof r.name, "lk");
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the link replaced, not followed */
    f = fopen(victim, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "name=lk\n");
    /* a folder that others can write is refused, named */
    assert_int_equal(chmod(sub, 0777), 0);
    snprintf(r.name, sizeof r.name, "lk");
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "writable by group or others"));
    assert_non_null(strstr(err, sub));
    assert_int_equal(ss_runrec_read("lk", &r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "refusing the state folder"));
    assert_int_equal(chmod(sub, 0700), 0);
    /* a folder that is a link is refused */
    char ln[128];
    snprintf(ln, sizeof ln, "%s/state/ln", dir);
    assert_int_equal(symlink(sub, ln), 0);
    setenv("SS_STATE_DIR", ln, 1);
    snprintf(r.name, sizeof r.name, "lk");
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "a link or not a folder"));
    setenv("SS_STATE_DIR", sub, 1);
}

static void names_are_checked(void **state)
{
    (void)state;
    ss_runrec r;
    char err[512];
    assert_int_equal(ss_runrec_read("../etc", &r, err, sizeof err),
                     SS_EINVAL);
    assert_non_null(strstr(err, "not a run name"));
    assert_int_equal(ss_runrec_read("", &r, err, sizeof err), SS_EINVAL);
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "a/b");
    assert_int_equal(ss_runrec_write(&r, err, sizeof err), SS_EIO);
    /* a damaged record is said to be so */
    char path[128];
    snprintf(path, sizeof path, "%s/state", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/state/deeper", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/state/deeper/x.run", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("name=y\noutdir=/o\n", f);
    fclose(f);
    assert_int_equal(ss_runrec_read("x", &r, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "damaged"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(names_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(others_are_kept_out, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
