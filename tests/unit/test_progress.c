/*
 * test_progress.c - the live progress line (src/run/ss_progress.c): it
 * fits the terminal without cutting a number and always shows the sink,
 * its ETA counts down between the source's samples instead of creeping
 * up, and it does not say "starting" while stages already run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "run/ss_progress.h"
#include "wire/ss_stats.h"

static const ss_progress_stage stages[] = {
    {"map", 663000, 61.2e6},
    {"filter", 655000, 40.1e6},
    {"reduce", 280000, 12.5e6},
};

static ss_progress_view view(const ss_stats *src, const ss_stats *sink,
                             int width)
{
    ss_progress_view v = {75, src, 0, stages, 3, sink, width};
    return v;
}

/* The full line is wider than 80 columns: it must still end with the
 * sink's count, whole. */
static void fits_80_columns_with_sink(void **state)
{
    (void)state;
    ss_stats src = {0}, sink = {0};
    src.in = 12345678;
    src.in_bytes = 400;
    src.total_bytes = 1000;
    sink.in = 987654;
    char line[1024];
    ss_progress_view wide = view(&src, &sink, 0);
    size_t full = ss_progress_format(line, sizeof line, &wide);
    assert_true(full > 79); /* the case that used to be cut */
    ss_progress_view v = view(&src, &sink, 79);
    size_t len = ss_progress_format(line, sizeof line, &v);
    assert_true(len <= 79);
    assert_int_equal(strlen(line), len);
    const char *end = line + len - strlen(" | sink 987.7k");
    assert_string_equal(end, " | sink 987.7k");
    assert_non_null(strstr(line, "source 12.3M rows 40%"));
    assert_non_null(strstr(line, "| map 663.0k/s"));
}

/* Narrower still: the last stages give way to "| ...", the sink stays. */
static void narrow_drops_stages_not_sink(void **state)
{
    (void)state;
    ss_stats src = {0}, sink = {0};
    src.in = 1000;
    sink.in = 42;
    char line[256];
    ss_progress_view v = view(&src, &sink, 50);
    size_t len = ss_progress_format(line, sizeof line, &v);
    assert_true(len <= 50);
    assert_non_null(strstr(line, " | ... | sink 42"));
    assert_null(strstr(line, "reduce"));
}

/* The ETA is taken at the sample: 10 s after a sample that said 50% done
 * after 40 s, 30 s are left, not 50. */
static void eta_counts_down_between_samples(void **state)
{
    (void)state;
    ss_stats src = {0};
    src.in = 10;
    src.in_bytes = 500;
    src.total_bytes = 1000;
    char line[256];
    ss_progress_view v = {40, &src, 0, NULL, 0, NULL, 0};
    ss_progress_format(line, sizeof line, &v);
    assert_non_null(strstr(line, "ETA 0:40"));
    v.elapsed_s = 50;
    v.source_age_s = 10;
    ss_progress_format(line, sizeof line, &v);
    assert_non_null(strstr(line, "ETA 0:30"));
    v.elapsed_s = 95; /* overdue: 0, never negative */
    v.source_age_s = 55;
    ss_progress_format(line, sizeof line, &v);
    assert_non_null(strstr(line, "ETA 0:00"));
}

/* Before the source's first report, stages may already run. */
static void no_starting_while_stages_run(void **state)
{
    (void)state;
    char line[512];
    ss_progress_view v = view(NULL, NULL, 0);
    ss_progress_format(line, sizeof line, &v);
    assert_null(strstr(line, "starting"));
    assert_non_null(strstr(line, "source: no report yet"));
    assert_non_null(strstr(line, "| map 663.0k ev/s 61.2 MB/s"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fits_80_columns_with_sink),
        cmocka_unit_test(narrow_drops_stages_not_sink),
        cmocka_unit_test(eta_counts_down_between_samples),
        cmocka_unit_test(no_starting_while_stages_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
