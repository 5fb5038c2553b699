/*
 * test_accounting.c - the books of a run (src/run/ss_accounting.c): a
 * balanced run, each way it can be unbalanced (source, a stage's own sum,
 * a stage against the one before it), a stage that emits more than it
 * passes (a flatMap: its rows passed are the rows out), rejected and filtered rows, a reduce whose rows out are the
 * events it folded, workers summed per stage, and the two verdicts that do
 * not check rows (a silent component, a lost worker).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "run/ss_accounting.h"
#include "wire/ss_stats.h"

/* A pipeline source -> map (2 workers) -> filter (1 worker). */
enum { SRC, MAP1, MAP2, FILT, SINK, NPARTS };
static const char *const stage_names[] = {"map", "filter"};

typedef struct books {
    ss_stats st[NPARTS];
    ss_acct_part parts[NPARTS];
} books;

static void counts(ss_stats *s, uint64_t in, uint64_t out, uint64_t passed,
                   uint64_t dropped, uint64_t rejected)
{
    s->in = in;
    s->out = out;
    s->passed = passed;
    s->dropped = dropped;
    s->rejected = rejected;
}

/* 1000 rows read, 10 rejected by the source; map passes every event and
 * rejects 5 (one worker 3, the other 2); filter drops 400 and rejects 1:
 * 1000 = 584 + 400 + (10 + 5 + 1). */
static void good_books(books *b)
{
    memset(b, 0, sizeof *b);
    static const char *names[] = {"source", "map-1", "map-2", "filter-1",
                                  "sink"};
    static const char *roles[] = {"source", "worker", "worker", "worker",
                                  "sink"};
    static const int stages[] = {-1, 0, 0, 1, -1};
    for (int i = 0; i < NPARTS; i++) {
        ss_stats_init(&b->st[i]);
        b->parts[i] = (ss_acct_part){names[i], roles[i], stages[i],
                                     &b->st[i]};
    }
    counts(&b->st[SRC], 1000, 990, 0, 0, 10);
    counts(&b->st[MAP1], 500, 497, 497, 0, 3);
    counts(&b->st[MAP2], 490, 488, 488, 0, 2);
    counts(&b->st[FILT], 985, 584, 584, 400, 1);
    counts(&b->st[SINK], 584, 0, 0, 0, 0);
}

static int verdict(books *b, size_t lost, ss_balance *out)
{
    return ss_accounting_balance(b->parts, NPARTS, stage_names, 2, lost,
                                 out);
}

static void test_balanced(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.verdict, SS_ACCT_BALANCED);
    assert_int_equal(r.rows_in, 1000);
    assert_int_equal(r.rows_out, 584);
    assert_int_equal(r.filtered, 400);
    assert_int_equal(r.rejected, 16); /* source 10 + map 5 + filter 1 */
    assert_string_equal(r.why, "");
}

/* filter broadcast over 2 workers: it receives every event twice and
 * counts once in the rows equation; without the copies it mismatches. */
static void test_broadcast_stage(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    counts(&b.st[FILT], 1970, 1168, 1168, 800, 2);
    ss_balance r;
    static const unsigned copies[] = {1, 2};
    assert_int_equal(ss_accounting_balance_copies(b.parts, NPARTS,
                                                  stage_names, copies, 2, 0,
                                                  &r),
                     SS_ACCT_BALANCED);
    assert_int_equal(r.rows_out, 584);
    assert_int_equal(r.filtered, 400);
    assert_int_equal(r.rejected, 16);
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
    assert_string_equal(r.why, "stage 'filter': received 1970 events but "
                               "map sent 985");
    counts(&b.st[FILT], 1971, 1168, 1169, 800, 2); /* one copy too many */
    assert_int_equal(ss_accounting_balance_copies(b.parts, NPARTS,
                                                  stage_names, copies, 2, 0,
                                                  &r),
                     SS_ACCT_MISMATCH);
    assert_string_equal(r.why, "stage 'filter': received 1971 events but "
                               "map sent 985 (times its copies: "
                               "broadcast)");
}

static void test_stage_sums_its_workers(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    ss_acct_stage a;
    ss_accounting_stage(b.parts, NPARTS, 0, &a);
    assert_int_equal(a.in, 990);
    assert_int_equal(a.passed, 985);
    assert_int_equal(a.rejected, 5);
    assert_int_equal(a.missing, 0);
    assert_int_equal(a.stateful, 0);
    b.parts[MAP2].st = NULL;
    ss_accounting_stage(b.parts, NPARTS, 0, &a);
    assert_int_equal(a.in, 500);
    assert_int_equal(a.missing, 1);
}

static void test_source_unbalanced(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    b.st[SRC].out = 989; /* one row neither sent nor rejected */
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
    assert_non_null(strstr(r.why, "source: read 1000 rows but sent 989"));
}

static void test_stage_own_sum_unbalanced(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    b.st[FILT].dropped = 399; /* in 985 != 584 + 399 + 1 */
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
    assert_non_null(strstr(r.why, "stage 'filter': in 985 != passed 584"));
}

static void test_stage_lost_events_between_stages(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* filter received one event fewer than map sent, and says so */
    counts(&b.st[FILT], 984, 583, 583, 400, 1);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
    assert_non_null(strstr(r.why, "stage 'filter': received 984 events "
                                  "but map sent 985"));
}

static void test_stage_emits_more_than_it_passes(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* each stage's own sum and hand-over agree, but map passes 985 events
     * while emitting 986 (a flatMap): map's 985 rows passed are the rows
     * out, and filter, after it, counts events, not rows (a word count
     * was failed as MISMATCH) */
    b.st[MAP1].out = 498;
    counts(&b.st[FILT], 986, 585, 585, 400, 1);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.rows_out, 985);
    assert_int_equal(r.filtered, 0);
    assert_int_equal(r.rejected, 15);
    assert_non_null(r.split_stage);
    assert_string_equal(r.split_stage, "map");
    /* a real loss between the stages is still found */
    counts(&b.st[FILT], 985, 584, 584, 400, 1);
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
    assert_non_null(strstr(r.why, "stage 'filter': received 985 events "
                                  "but map sent 986"));
    /* a 1:1 stage leaves the rows going on */
    good_books(&b);
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_null(r.split_stage);
}

static void test_rejected_rows_count(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* map-1 rejects 3 more events instead of passing them */
    counts(&b.st[MAP1], 500, 494, 494, 0, 6);
    counts(&b.st[FILT], 982, 581, 581, 400, 1);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.rejected, 19);
    assert_int_equal(r.rows_out, 581);
}

static void test_filtered_rows_count(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* map filters 100 out (dropped before the last stage) */
    counts(&b.st[MAP1], 500, 397, 397, 100, 3);
    counts(&b.st[FILT], 885, 484, 484, 400, 1);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.filtered, 500);
    assert_int_equal(r.rows_out, 484);
}

static void test_reduce_rows_out(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* filter is a reduce: it folds 984 events into 3 results (it drops
     * 981 of them and passes 3): those 984 are its rows out, and its 3
     * results are not compared with rows */
    counts(&b.st[FILT], 985, 3, 3, 981, 1);
    b.st[FILT].stateful = 1;
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.rows_out, 984);
    assert_int_equal(r.filtered, 0);
    assert_int_equal(r.rejected, 16);
    /* without the stateful flag the same counters are rows filtered */
    b.st[FILT].stateful = 0;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.rows_out, 3);
    assert_int_equal(r.filtered, 981);
}

static void test_reduce_then_stage(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    /* map is the reduce: 985 events folded into 2 results; filter after
     * it sees results, not rows: what it drops is not "filtered rows" */
    b.st[MAP1].stateful = 1;
    counts(&b.st[MAP1], 500, 1, 1, 496, 3);
    counts(&b.st[MAP2], 490, 1, 1, 487, 2);
    counts(&b.st[FILT], 2, 1, 1, 1, 0);
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    assert_int_equal(r.rows_out, 985);
    assert_int_equal(r.filtered, 0);
    assert_int_equal(r.rejected, 15);
}

static void test_no_counters(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    b.parts[MAP2].st = NULL;
    ss_balance r;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_NO_COUNTERS);
    assert_string_equal(r.why, "no counters from map-2");
    /* a silent sink or router does not stop the books */
    good_books(&b);
    b.parts[SINK].st = NULL;
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_BALANCED);
    /* nor can books without a source balance */
    assert_int_equal(ss_accounting_balance(b.parts + 1, NPARTS - 1,
                                           stage_names, 2, 0, &r),
                     SS_ACCT_NO_COUNTERS);
}

static void test_lost_worker_unchecked(void **state)
{
    (void)state;
    books b;
    good_books(&b);
    b.st[FILT].in = 1234; /* a retried batch counted twice */
    ss_balance r;
    assert_int_equal(verdict(&b, 1, &r), SS_ACCT_UNCHECKED);
    assert_int_equal(verdict(&b, 0, &r), SS_ACCT_MISMATCH);
}

/* Rejected rows: fine up to 1 %, a warning past it, a failure past the
 * pipeline's max_reject_ratio; no judgement without row counts. */
static void test_reject_ratio(void **state)
{
    (void)state;
    char m[512];
    ss_balance b = {SS_ACCT_BALANCED, 1000, 900, 90, 10, "", NULL};
    assert_int_equal(ss_accounting_rejects(&b, -1, m, sizeof m),
                     SS_ACCT_REJECTS_OK);
    assert_string_equal(m, "");
    b.rejected = 11;
    assert_int_equal(ss_accounting_rejects(&b, -1, m, sizeof m),
                     SS_ACCT_REJECTS_WARN);
    assert_non_null(strstr(m, "11 of 1000 rows (1.1%) were rejected"));
    assert_non_null(strstr(m, "max_reject_ratio"));
    assert_int_equal(ss_accounting_rejects(&b, 0.05, m, sizeof m),
                     SS_ACCT_REJECTS_WARN);
    b.rejected = 970;
    assert_int_equal(ss_accounting_rejects(&b, 0.05, m, sizeof m),
                     SS_ACCT_REJECTS_FAIL);
    assert_string_equal(m, "970 of 1000 rows (97.0%) were rejected: more "
                           "than max_reject_ratio 0.05");
    assert_int_equal(ss_accounting_rejects(&b, 0, m, sizeof m),
                     SS_ACCT_REJECTS_FAIL);
    b.rejected = 0; /* 0 allows none, and none is fine */
    assert_int_equal(ss_accounting_rejects(&b, 0, m, sizeof m),
                     SS_ACCT_REJECTS_OK);
    b.rejected = 970;
    b.verdict = SS_ACCT_UNCHECKED;
    assert_int_equal(ss_accounting_rejects(&b, 0.05, m, sizeof m),
                     SS_ACCT_REJECTS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balanced),
        cmocka_unit_test(test_broadcast_stage),
        cmocka_unit_test(test_stage_sums_its_workers),
        cmocka_unit_test(test_source_unbalanced),
        cmocka_unit_test(test_stage_own_sum_unbalanced),
        cmocka_unit_test(test_stage_lost_events_between_stages),
        cmocka_unit_test(test_stage_emits_more_than_it_passes),
        cmocka_unit_test(test_rejected_rows_count),
        cmocka_unit_test(test_filtered_rows_count),
        cmocka_unit_test(test_reduce_rows_out),
        cmocka_unit_test(test_reduce_then_stage),
        cmocka_unit_test(test_no_counters),
        cmocka_unit_test(test_lost_worker_unchecked),
        cmocka_unit_test(test_reject_ratio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
