/*
 * test_gen.c - the synthetic airline dataset generator (src/gen).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen/ss_gen_flights.h"
#include "securestreams.h"

/* ------------------------------------------------------------ helpers */

typedef struct membuf {
    char *data;
    size_t len, cap;
    int calls;
} membuf;

static int mem_sink(void *ctx, const char *data, size_t len)
{
    membuf *m = ctx;
    if (m->len + len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        while (cap < m->len + len + 1)
            cap *= 2;
        char *p = realloc(m->data, cap);
        if (!p)
            return SS_ENOMEM;
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    m->data[m->len] = '\0';
    m->calls++;
    return 0;
}

static membuf gen(uint64_t rows, uint64_t seed, int header)
{
    ss_gen_flights_opts o = {rows, seed, header};
    membuf m = {NULL, 0, 0, 0};
    uint64_t n = 0;
    assert_int_equal(ss_gen_flights_emit(&o, mem_sink, &m, &n), 0);
    assert_int_equal(n, m.len);
    return m;
}

#define MAXF 40

typedef struct row {
    int n;
    const char *f[MAXF];
    size_t len[MAXF];
} row;

/* Splits the line at p (up to '\n') into r; returns the next line. */
static const char *split(const char *p, row *r)
{
    r->n = 0;
    const char *start = p;
    for (;; p++) {
        if (*p == ',' || *p == '\n' || *p == '\0') {
            if (r->n < MAXF) {
                r->f[r->n] = start;
                r->len[r->n] = (size_t)(p - start);
            }
            r->n++;
            if (*p != ',')
                break;
            start = p + 1;
        }
    }
    return *p == '\n' ? p + 1 : p;
}

/* 1-based column access. */
static int is_na(const row *r, int col)
{
    return r->len[col - 1] == 2 && memcmp(r->f[col - 1], "NA", 2) == 0;
}

static int is_int(const row *r, int col)
{
    const char *s = r->f[col - 1];
    size_t n = r->len[col - 1], i = 0;
    if (n && s[0] == '-')
        i = 1;
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static long num(const row *r, int col)
{
    assert_true(is_int(r, col));
    char tmp[32];
    size_t n = r->len[col - 1];
    memcpy(tmp, r->f[col - 1], n);
    tmp[n] = '\0';
    return strtol(tmp, NULL, 10);
}

static int field_is(const row *r, int col, const char *s)
{
    return r->len[col - 1] == strlen(s) &&
           memcmp(r->f[col - 1], s, r->len[col - 1]) == 0;
}

static int hhmm_ok(long v, int actual)
{
    if (actual && v == 2400)
        return 1;
    return v >= 0 && v < 2400 && v % 100 < 60;
}

static long minutes(long hhmm) { return hhmm / 100 * 60 + hhmm % 100; }

/* Day of the week, 1 = Monday (Zeller's congruence, Gregorian). */
static int dow(int y, int m, int d)
{
    if (m < 3) {
        m += 12;
        y--;
    }
    int h = (d + 13 * (m + 1) / 5 + y + y / 4 - y / 100 + y / 400) % 7;
    return (h + 5) % 7 + 1;     /* h: 0 = Saturday */
}

enum {
    C_YEAR = 1, C_MONTH, C_DOM, C_DOW, C_DEPTIME, C_CRSDEP, C_ARRTIME,
    C_CRSARR, C_CARRIER, C_FLIGHT, C_TAIL, C_ACTEL, C_CRSEL, C_AIR,
    C_ARRDELAY, C_DEPDELAY, C_ORIGIN, C_DEST, C_DIST, C_TAXIIN, C_TAXIOUT,
    C_CANCELLED, C_CODE, C_DIVERTED, C_CARRIERD, C_WEATHERD, C_NASD,
    C_SECURITYD, C_LATED
};

/* One shared 100k-row dataset for the statistical tests. */
static membuf big;
#define BIG_ROWS 100000

static int setup_big(void **state)
{
    (void)state;
    big = gen(BIG_ROWS, 2009, 1);
    return 0;
}

static int teardown_big(void **state)
{
    (void)state;
    free(big.data);
    return 0;
}

/* -------------------------------------------------------------- tests */

static void test_determinism(void **state)
{
    (void)state;
    membuf a = gen(20000, 42, 1), b = gen(20000, 42, 1);
    membuf c = gen(20000, 43, 1);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);

    /* the FILE interface writes the very same bytes */
    FILE *f = tmpfile();
    assert_non_null(f);
    ss_gen_flights_opts o = {20000, 42, 1};
    uint64_t n = 0;
    assert_int_equal(ss_gen_flights_write(f, &o, &n), 0);
    assert_int_equal(n, a.len);
    rewind(f);
    char *back = malloc(a.len + 1);
    assert_non_null(back);
    assert_int_equal(fread(back, 1, a.len + 1, f), a.len);
    assert_memory_equal(back, a.data, a.len);
    free(back);
    fclose(f);
    free(a.data);
    free(b.data);
    free(c.data);
}

static void test_header(void **state)
{
    (void)state;
    static const char hdr[] =
        "Year,Month,DayofMonth,DayOfWeek,DepTime,CRSDepTime,ArrTime,"
        "CRSArrTime,UniqueCarrier,FlightNum,TailNum,ActualElapsedTime,"
        "CRSElapsedTime,AirTime,ArrDelay,DepDelay,Origin,Dest,Distance,"
        "TaxiIn,TaxiOut,Cancelled,CancellationCode,Diverted,CarrierDelay,"
        "WeatherDelay,NASDelay,SecurityDelay,LateAircraftDelay\n";
    membuf with = gen(1000, 5, 1), without = gen(1000, 5, 0);
    size_t hl = strlen(hdr);
    assert_true(with.len > hl);
    assert_memory_equal(with.data, hdr, hl);
    assert_int_equal(with.len - hl, without.len);
    assert_memory_equal(with.data + hl, without.data, without.len);
    assert_true(without.data[0] >= '0' && without.data[0] <= '9');

    row r;
    split(with.data, &r);
    assert_int_equal(r.n, SS_GEN_FLIGHTS_NCOLS);
    assert_true(field_is(&r, SS_GEN_FLIGHTS_COL_CARRIER, "UniqueCarrier"));
    assert_true(field_is(&r, SS_GEN_FLIGHTS_COL_ARRDELAY, "ArrDelay"));
    free(with.data);
    free(without.data);

    /* zero rows: just the header, or nothing */
    membuf h = gen(0, 1, 1), e = gen(0, 1, 0);
    assert_int_equal(h.len, hl);
    assert_memory_equal(h.data, hdr, hl);
    assert_int_equal(e.len, 0);
    free(h.data);
    free(e.data);
}

static int failing_sink(void *ctx, const char *data, size_t len)
{
    (void)data;
    (void)len;
    int *calls = ctx;
    return ++*calls == 2 ? SS_EIO : 0;
}

static void test_errors(void **state)
{
    (void)state;
    ss_gen_flights_opts o = {10, 1, 1};
    uint64_t n = 99;
    int calls = 0;
    assert_int_equal(ss_gen_flights_emit(NULL, mem_sink, NULL, &n),
                     SS_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(ss_gen_flights_emit(&o, NULL, NULL, NULL), SS_EINVAL);
    assert_int_equal(ss_gen_flights_write(NULL, &o, NULL), SS_EINVAL);
    assert_int_equal(ss_gen_flights_write(stdout, NULL, NULL), SS_EINVAL);

    /* a sink error stops the generation and is returned */
    o.rows = 100000;
    assert_int_equal(ss_gen_flights_emit(&o, failing_sink, &calls, &n),
                     SS_EIO);
    assert_int_equal(calls, 2);
    assert_true(n > 0 && n < 100000 * 100);

    /* chunks end at line ends */
    membuf m = gen(30000, 3, 1);
    assert_true(m.calls >= 2);
    free(m.data);
}

/* Every row: 29 fields, valid dates in order, consistent times, the NA
 * rules, delay causes summing to ArrDelay, one distance per airport pair. */
static void test_rows(void **state)
{
    (void)state;
    static int pair_dist[64][64];
    char codes[64][4];
    int ncodes = 0;
    memset(pair_dist, 0, sizeof pair_dist);

    const char *p = big.data;
    row r;
    p = split(p, &r);   /* header */
    long rows = 0, cancelled = 0, diverted = 0, prev_date = 0;
    while (*p) {
        p = split(p, &r);
        rows++;
        assert_int_equal(r.n, SS_GEN_FLIGHTS_NCOLS);

        long y = num(&r, C_YEAR), mo = num(&r, C_MONTH);
        long d = num(&r, C_DOM);
        assert_true(y >= 2005 && y <= 2008);
        assert_true(mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
        assert_int_equal(num(&r, C_DOW), dow((int)y, (int)mo, (int)d));
        long date = y * 10000 + mo * 100 + d;
        assert_true(date >= prev_date);
        prev_date = date;

        assert_true(hhmm_ok(num(&r, C_CRSDEP), 0));
        assert_true(hhmm_ok(num(&r, C_CRSARR), 0));
        assert_int_equal(r.len[C_CARRIER - 1], 2);
        assert_true(num(&r, C_FLIGHT) > 0);
        assert_int_equal(r.len[C_TAIL - 1], 6);
        assert_true(r.f[C_TAIL - 1][0] == 'N');
        long crs_el = num(&r, C_CRSEL);
        assert_true(crs_el > 0);

        /* one distance per unordered airport pair */
        assert_int_equal(r.len[C_ORIGIN - 1], 3);
        assert_int_equal(r.len[C_DEST - 1], 3);
        int ai[2];
        for (int k = 0; k < 2; k++) {
            const char *code = r.f[(k ? C_DEST : C_ORIGIN) - 1];
            int j = 0;
            while (j < ncodes && memcmp(codes[j], code, 3) != 0)
                j++;
            if (j == ncodes) {
                assert_true(ncodes < 64);
                memcpy(codes[ncodes], code, 3);
                codes[ncodes++][3] = '\0';
            }
            ai[k] = j;
        }
        assert_true(ai[0] != ai[1]);
        long dist = num(&r, C_DIST);
        assert_true(dist >= 90 && dist < 6000);
        int *pd = &pair_dist[ai[0] < ai[1] ? ai[0] : ai[1]]
                            [ai[0] < ai[1] ? ai[1] : ai[0]];
        if (*pd == 0)
            *pd = (int)dist;
        assert_int_equal(*pd, dist);

        long canc = num(&r, C_CANCELLED), dvt = num(&r, C_DIVERTED);
        assert_true(canc == 0 || canc == 1);
        assert_true(dvt == 0 || dvt == 1);
        assert_false(canc && dvt);
        if (canc) {
            cancelled++;
            assert_true(r.len[C_CODE - 1] == 1 &&
                        r.f[C_CODE - 1][0] >= 'A' &&
                        r.f[C_CODE - 1][0] <= 'D');
            assert_true(is_na(&r, C_DEPTIME) && is_na(&r, C_DEPDELAY) &&
                        is_na(&r, C_TAXIOUT));
        } else {
            assert_int_equal(r.len[C_CODE - 1], 0);
            assert_true(hhmm_ok(num(&r, C_DEPTIME), 1));
            long dep = num(&r, C_DEPDELAY);
            long slip = minutes(num(&r, C_DEPTIME)) -
                        minutes(num(&r, C_CRSDEP)) - dep;
            assert_int_equal(((slip % 1440) + 1440) % 1440, 0);
            assert_true(num(&r, C_TAXIOUT) > 0);
        }
        if (canc || dvt) {
            diverted += dvt;
            assert_true(is_na(&r, C_ARRTIME) && is_na(&r, C_ARRDELAY) &&
                        is_na(&r, C_ACTEL) && is_na(&r, C_AIR) &&
                        is_na(&r, C_TAXIIN));
            for (int c = C_CARRIERD; c <= C_LATED; c++)
                assert_true(is_na(&r, c));
            continue;
        }

        /* a flight that arrived */
        long arr = num(&r, C_ARRDELAY), dep = num(&r, C_DEPDELAY);
        long actual = num(&r, C_ACTEL), air = num(&r, C_AIR);
        long tin = num(&r, C_TAXIIN), tout = num(&r, C_TAXIOUT);
        assert_true(hhmm_ok(num(&r, C_ARRTIME), 1));
        assert_int_equal(arr, dep + actual - crs_el);
        assert_int_equal(air, actual - tin - tout);
        assert_true(air > 0 && tin > 0 && tout > 0);
        long late = minutes(num(&r, C_ARRTIME)) -
                    minutes(num(&r, C_CRSARR)) - arr;
        assert_int_equal(((late % 1440) + 1440) % 1440, 0);
        if (arr < 15) {
            for (int c = C_CARRIERD; c <= C_LATED; c++)
                assert_true(is_na(&r, c));
        } else {
            long sum = 0;
            for (int c = C_CARRIERD; c <= C_LATED; c++) {
                long v = num(&r, c);
                assert_true(v >= 0);
                sum += v;
            }
            assert_int_equal(sum, arr);
        }
    }
    assert_int_equal(rows, BIG_ROWS);
    /* about 2% cancelled, about 0.2% diverted */
    assert_true(cancelled > rows * 12 / 1000 && cancelled < rows * 30 / 1000);
    assert_true(diverted > rows / 1000 && diverted < rows * 4 / 1000);
    assert_true(ncodes >= 35 && ncodes <= 45);
}

static void test_delay_stats(void **state)
{
    (void)state;
    const char *p = big.data;
    row r;
    p = split(p, &r);
    long numeric = 0, positive = 0, maxd = 0, over_120 = 0;
    char seen[64][3];
    long count[64] = {0}, pos[64] = {0}, sum[64] = {0};
    int ncar = 0;
    while (*p) {
        p = split(p, &r);
        int c = 0;
        while (c < ncar && memcmp(seen[c], r.f[C_CARRIER - 1], 2) != 0)
            c++;
        if (c == ncar) {
            assert_true(ncar < 64);
            memcpy(seen[ncar++], r.f[C_CARRIER - 1], 2);
        }
        count[c]++;
        if (is_na(&r, C_ARRDELAY))
            continue;
        long d = num(&r, C_ARRDELAY);
        numeric++;
        if (d > 0) {
            positive++;
            pos[c]++;
            sum[c] += d;
        }
        if (d > maxd)
            maxd = d;
        if (d > 120)
            over_120++;
    }
    double frac = (double)positive / (double)numeric;
    assert_true(frac >= 0.40 && frac <= 0.50);
    /* a long right tail */
    assert_true(maxd >= 300);
    assert_true(over_120 > numeric / 200);

    /* about 20 carriers, WN the most frequent */
    assert_true(ncar >= 18 && ncar <= 22);
    int wn = -1, top = 0;
    for (int c = 0; c < ncar; c++) {
        if (memcmp(seen[c], "WN", 2) == 0)
            wn = c;
        if (count[c] > count[top])
            top = c;
    }
    assert_true(wn >= 0);
    assert_int_equal(top, wn);

    /* the mean positive delay differs between carriers */
    double lo = 1e9, hi = 0;
    for (int c = 0; c < ncar; c++) {
        if (pos[c] < 500)
            continue;
        double mean = (double)sum[c] / (double)pos[c];
        lo = mean < lo ? mean : lo;
        hi = mean > hi ? mean : hi;
    }
    assert_true(hi - lo > 2.0);
}

static void test_row_length(void **state)
{
    (void)state;
    size_t hl = strlen(SS_GEN_FLIGHTS_HEADER) + 1;
    double avg = (double)(big.len - hl) / BIG_ROWS;
    assert_true(avg >= 90 && avg <= 110);
    size_t longest = 0, start = hl;
    for (size_t i = hl; i < big.len; i++) {
        if (big.data[i] == '\n') {
            if (i + 1 - start > longest)
                longest = i + 1 - start;
            start = i + 1;
        }
    }
    assert_true(longest <= SS_GEN_FLIGHTS_MAX_ROW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_delay_stats),
        cmocka_unit_test(test_row_length),
    };
    return cmocka_run_group_tests_name("gen", tests, setup_big,
                                       teardown_big);
}
