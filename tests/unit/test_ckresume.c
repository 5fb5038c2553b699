/*
 * test_ckresume.c - a checkpoint read back for a restart that resumes
 * from it: the manifest check (src/run/ss_ckresume.c) refuses a file
 * changed or swapped since the checkpoint (another run's, an older
 * epoch's), a manifest of another run or epoch, and a path outside the
 * checkpoint folder; the resume points parse (src/wire/ss_resume.c); the
 * sink's integrity check counts the batches below a resume point as
 * arrived (src/node/ss_integrity.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/ss_integrity.h"
#include "run/ss_ckresume.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_resume.h"

static char dir[64];
#define RUN 0x1122334455667788ull

static void put(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void hash_of(const char *text, char *hex)
{
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)text,
                       strlen(text), NULL, 0);
    sodium_bin2hex(hex, 2 * sizeof h + 1, h, sizeof h);
}

static const char *SRC = "{\"run\":\"1122334455667788\",\"epoch\":7,"
    "\"component\":\"source\",\"parts\":[{\"part\":0,\"offset\":100,"
    "\"row\":9,\"seq\":3,\"ended\":false},{\"part\":1,\"offset\":500,"
    "\"row\":40,\"seq\":5,\"ended\":true}]}\n";
static const char *SNAP = "sealed state bytes";

/* Writes a checkpoint of epoch 7 of RUN; src_text/snap_text are what the
 * folder holds, the manifest records the hashes of SRC and SNAP. */
static void checkpoint(const char *manifest_run, unsigned epoch,
                       const char *snap_name, const char *src_text,
                       const char *snap_text)
{
    char h1[65], h2[65], m[2048];
    hash_of(SRC, h1);
    hash_of(SNAP, h2);
    snprintf(m, sizeof m, "{\"run\":\"%s\",\"epoch\":%u,\"interval_ms\":"
             "100,\"files\":[{\"name\":\"source-e7.json\",\"blake2b_256\":"
             "\"%s\"},{\"name\":\"%s\",\"blake2b_256\":\"%s\"}],"
             "\"counters\":{\"reduce-1\":{\"in\":10,\"out\":0,\"passed\":0,"
             "\"dropped\":10,\"rejected\":0,\"batches_in\":4,"
             "\"batches_out\":4},\"source\":{\"in\":12,\"out\":11,"
             "\"passed\":11,\"dropped\":0,\"rejected\":1,\"batches_in\":0,"
             "\"batches_out\":8}},\"stages\":{\"map\":{\"workers\":2,"
             "\"partitioned\":false,\"stateful\":false},\"reduce\":{"
             "\"workers\":3,\"partitioned\":true,\"stateful\":true,"
             "\"ranges\":[[0,1365],[1366,2730],[2731,4095]]}}}\n",
             manifest_run, epoch, h1, snap_name,
             h2);
    put("manifest.json", m);
    put("source-e7.json", src_text);
    put("reduce-1-e7.snap", snap_text);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_ckresume_%d", (int)getpid());
    mkdir(dir, 0700);
    return sodium_init() < 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[128];
    const char *names[] = {"manifest.json", "source-e7.json",
                           "reduce-1-e7.snap"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static void test_good_checkpoint(void **state)
{
    (void)state;
    checkpoint("1122334455667788", 7, "reduce-1-e7.snap", SRC, SNAP);
    ss_ckresume r;
    char err[512] = "";
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err), 0);
    assert_string_equal(r.source, "source");
    assert_int_equal(r.nparts, 2);
    assert_string_equal(r.parts, "100:9:3,500:40:5:end");
    char want[96];
    snprintf(want, sizeof want, "%u:3,%u:5:2",
             ss_name_id("source-0") & 0x7fffffffu,
             ss_name_id("source-1") & 0x7fffffffu);
    assert_string_equal(r.streams, want);
    assert_int_equal(r.nsnaps, 1);
    assert_string_equal(r.snaps[0], "reduce-1-e7.snap");
    ss_stats st;
    assert_int_equal(ss_ckresume_counters(&r, "source", &st), 1);
    assert_int_equal(st.in, 12);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.batches_out, 8);
    assert_int_equal(ss_ckresume_counters(&r, "reduce-1", &st), 1);
    assert_int_equal(st.dropped, 10);
    assert_int_equal(ss_ckresume_counters(&r, "map-9", &st), 0);
    /* each stage's worker count at the checkpoint, for a rescale */
    ss_ckresume_stage_info si;
    assert_int_equal(ss_ckresume_stage(&r, "reduce", &si), 1);
    assert_int_equal(si.workers, 3);
    assert_true(si.partitioned && si.stateful);
    assert_int_equal(ss_ckresume_stage(&r, "map", &si), 1);
    assert_int_equal(si.workers, 2);
    assert_false(si.partitioned || si.stateful);
    assert_int_equal(ss_ckresume_stage(&r, "reduce-1", &si), 0);
    assert_int_equal(ss_ckresume_stage(&r, "sink", &si), 0);
    ss_ckresume_release(&r);
    ss_ckresume_release(&r); /* safe twice */
}

/* the attack: a snapshot swapped for another one (an older epoch's, or
 * another run's) after the checkpoint completed */
static void test_swapped_snapshot_refused(void **state)
{
    (void)state;
    checkpoint("1122334455667788", 7, "reduce-1-e7.snap", SRC,
               "an older epoch's sealed state");
    ss_ckresume r;
    char err[512] = "";
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "reduce-1-e7.snap does not match the "
                                "manifest"));
}

static void test_other_run_or_epoch_refused(void **state)
{
    (void)state;
    ss_ckresume r;
    char err[512] = "";
    checkpoint("99999999aaaaaaaa", 7, "reduce-1-e7.snap", SRC, SNAP);
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "is of run 99999999aaaaaaaa, not of this "
                                "run"));
    /* an older manifest put back: not the last complete epoch */
    checkpoint("1122334455667788", 6, "reduce-1-e7.snap", SRC, SNAP);
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "is of epoch 6, not the last complete one"));
    /* resume points of another run, with the manifest's hash rewritten */
    char other[512];
    snprintf(other, sizeof other, "%s", SRC);
    memcpy(strstr(other, "1122"), "9999", 4);
    put("source-e7.json", other);
    char h1[65], h2[65], m[1024];
    hash_of(other, h1);
    hash_of(SNAP, h2);
    snprintf(m, sizeof m, "{\"run\":\"1122334455667788\",\"epoch\":7,"
             "\"files\":[{\"name\":\"source-e7.json\",\"blake2b_256\":"
             "\"%s\"},{\"name\":\"reduce-1-e7.snap\",\"blake2b_256\":"
             "\"%s\"}],\"counters\":{}}\n", h1, h2);
    put("manifest.json", m);
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "source-e7.json is of run 9999"));
}

static void test_path_outside_refused(void **state)
{
    (void)state;
    ss_ckresume r;
    char err[512] = "";
    checkpoint("1122334455667788", 7, "../../etc/passwd-e7.snap", SRC,
               SNAP);
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    checkpoint("1122334455667788", 7, "other-e6.snap", SRC, SNAP);
    assert_int_equal(ss_ckresume_load(dir, RUN, 7, &r, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "not a file of epoch 7"));
}

static void test_resume_parse(void **state)
{
    (void)state;
    ss_resume_stream *v;
    size_t n;
    char err[256];
    assert_int_equal(ss_resume_parse("5:3,6:9:2", &v, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].stream, 5);
    assert_int_equal(v[0].seq, 3);
    assert_int_equal(v[0].nstreams, 0);
    assert_int_equal(v[1].nstreams, 2);
    free(v);
    assert_int_equal(ss_resume_parse(NULL, &v, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    const char *bad[] = {"5", "5:", "x:1", "5:3,", "5:3;6:1", "5:0:2",
                         "99999999999:1", "5:1:0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ss_resume_parse(bad[i], &v, &n, err, sizeof err),
                         SS_EINVAL);
        assert_non_null(strstr(err, "SS_RESUME_STREAMS"));
    }
}

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

/* the sink's check after a resume: batches below the resume seq count as
 * arrived, a replay of one is a duplicate, an ended stream stays ended */
static void test_integrity_resume(void **state)
{
    (void)state;
    ss_integrity *ig;
    char err[256];
    assert_int_equal(ss_integrity_new(0, &ig), 0);
    assert_int_equal(ss_integrity_resume(ig, 1, 3, 0), 0);
    assert_int_equal(ss_integrity_resume(ig, 2, 5, 2), 0);
    assert_int_equal(ss_integrity_resume(ig, 2, 5, 2), SS_EINVAL);
    ss_hdr h = batch(1, 3, 0);
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err), 0);
    h = batch(1, 4, SS_AUX_END | 2);
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err), 0);
    h = batch(1, 1, 0); /* replayed from before the checkpoint */
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                     SS_EINTEGRITY);
    assert_non_null(strstr(err, "received twice"));
    h = batch(2, 5, 0); /* after the end it had before the checkpoint */
    assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                     SS_EINTEGRITY);
    ss_eos eos;
    ss_eos_init(&eos);
    ss_eos_add_stream(&eos, 1, 5);
    ss_eos_add_stream(&eos, 2, 5);
    assert_int_equal(ss_integrity_finish(ig, &eos, err, sizeof err), 0);
    ss_eos_release(&eos);
    ss_integrity_destroy(&ig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_checkpoint),
        cmocka_unit_test(test_swapped_snapshot_refused),
        cmocka_unit_test(test_other_run_or_epoch_refused),
        cmocka_unit_test(test_path_outside_refused),
        cmocka_unit_test(test_resume_parse),
        cmocka_unit_test(test_integrity_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
