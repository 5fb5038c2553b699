/*
 * ss_gen_flights.c - the synthetic airline dataset (see ss_gen_flights.h).
 *
 * One row is drawn at a time from a xoshiro256** stream seeded through
 * splitmix64, so the output depends on nothing but the options. The rows
 * are spread evenly over the 1461 days of 2005-2008 (in date order). Row
 * generation uses integer arithmetic only; floating point is used once,
 * to build the distance table, with plain +,-,*,/ (no libm) so that every
 * IEEE machine gets the same integers. Numbers are formatted by hand into
 * a 1 MiB buffer which is handed to the sink when nearly full.
 */
#include "gen/ss_gen_flights.h"
#include "securestreams.h"

#include <stdlib.h>
#include <string.h>

#define GEN_BUF_SIZE (1u << 20)
#define GEN_FIRST_YEAR 2005
#define GEN_NDAYS 1461          /* 2005-01-01 .. 2008-12-31 */
#define GEN_FIRST_DOW 6         /* 2005-01-01 was a Saturday (1 = Monday) */
#define GEN_MIN_DIST 100        /* no scheduled hops shorter than this */

/* ---------------------------------------------------------------- PRNG */

typedef struct gen_rng {
    uint64_t s[4];
} gen_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(gen_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n) for 0 < n < 2^32 (multiply-shift; the bias of at most
 * n / 2^32 is irrelevant here). */
static inline uint32_t rng_below(gen_rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ------------------------------------------------------------- tables */

enum {
    ATL, ORD, DFW, DEN, LAX, PHX, IAH, LAS, DTW, MSP,
    EWR, SFO, SLC, MCO, JFK, CLT, LGA, BOS, SEA, PHL,
    BWI, MDW, DCA, IAD, SAN, TPA, FLL, MIA, STL, CVG,
    HOU, OAK, MCI, PDX, SJC, MEM, CLE, HNL, OGG, ANC,
    NAIRPORTS
};

typedef struct gen_airport {
    char code[4];
    double lat, lon;    /* degrees */
    int tz;             /* hours from US Eastern (no daylight saving) */
    int weight;         /* relative traffic */
} gen_airport;

static const gen_airport airports[NAIRPORTS] = {
    [ATL] = {"ATL", 33.64, -84.43, 0, 60},
    [ORD] = {"ORD", 41.98, -87.90, -1, 58},
    [DFW] = {"DFW", 32.90, -97.04, -1, 45},
    [DEN] = {"DEN", 39.86, -104.67, -2, 38},
    [LAX] = {"LAX", 33.94, -118.41, -3, 36},
    [PHX] = {"PHX", 33.43, -112.01, -2, 32},
    [IAH] = {"IAH", 29.98, -95.34, -1, 32},
    [LAS] = {"LAS", 36.08, -115.15, -3, 30},
    [DTW] = {"DTW", 42.21, -83.35, 0, 28},
    [MSP] = {"MSP", 44.88, -93.22, -1, 26},
    [EWR] = {"EWR", 40.69, -74.17, 0, 24},
    [SFO] = {"SFO", 37.62, -122.38, -3, 24},
    [SLC] = {"SLC", 40.79, -111.98, -2, 22},
    [MCO] = {"MCO", 28.43, -81.31, 0, 22},
    [JFK] = {"JFK", 40.64, -73.78, 0, 20},
    [CLT] = {"CLT", 35.21, -80.94, 0, 22},
    [LGA] = {"LGA", 40.78, -73.87, 0, 20},
    [BOS] = {"BOS", 42.36, -71.01, 0, 20},
    [SEA] = {"SEA", 47.45, -122.31, -3, 20},
    [PHL] = {"PHL", 39.87, -75.24, 0, 20},
    [BWI] = {"BWI", 39.18, -76.67, 0, 20},
    [MDW] = {"MDW", 41.79, -87.75, -1, 18},
    [DCA] = {"DCA", 38.85, -77.04, 0, 16},
    [IAD] = {"IAD", 38.95, -77.46, 0, 16},
    [SAN] = {"SAN", 32.73, -117.19, -3, 16},
    [TPA] = {"TPA", 27.98, -82.53, 0, 16},
    [FLL] = {"FLL", 26.07, -80.15, 0, 14},
    [MIA] = {"MIA", 25.79, -80.29, 0, 14},
    [STL] = {"STL", 38.75, -90.37, -1, 16},
    [CVG] = {"CVG", 39.05, -84.66, 0, 18},
    [HOU] = {"HOU", 29.65, -95.28, -1, 14},
    [OAK] = {"OAK", 37.72, -122.22, -3, 14},
    [MCI] = {"MCI", 39.30, -94.71, -1, 12},
    [PDX] = {"PDX", 45.59, -122.60, -3, 12},
    [SJC] = {"SJC", 37.36, -121.93, -3, 10},
    [MEM] = {"MEM", 35.04, -89.98, -1, 12},
    [CLE] = {"CLE", 41.41, -81.85, 0, 14},
    [HNL] = {"HNL", 21.32, -157.92, -5, 10},
    [OGG] = {"OGG", 20.90, -156.43, -5, 4},
    [ANC] = {"ANC", 61.17, -149.99, -4, 6},
};

#define MAXHUBS 7
#define MAXONLY 10

typedef struct gen_carrier {
    char code[3];
    char tail[3];       /* TailNum suffix: N<3 digits><tail> */
    int share;          /* relative number of flights */
    int big;            /* per mille of flown flights delayed >= 15 min */
    int mu;             /* centre of the small early/late delays */
    int cancel;         /* cancellations per 10000 flights */
    int flight_max;     /* FlightNum in 1..flight_max */
    int fleet;          /* tail numbers 100..100+fleet-1 */
    int hubs[MAXHUBS];  /* -1 terminated */
    int only[MAXONLY];  /* if set, every flight is hub <-> one of these */
} gen_carrier;

#define H(...) {__VA_ARGS__, -1}
#define NONE {-1}

static const gen_carrier carriers[] = {
    {"WN", "SW", 172, 150, -6, 110, 3500, 520, H(LAS, PHX, MDW, BWI, HOU, OAK),
     NONE},
    {"AA", "AA", 85, 215, -3, 250, 2400, 650, H(DFW, ORD, MIA, STL), NONE},
    {"OO", "SK", 75, 175, -5, 220, 7400, 430, H(SLC, DEN, LAX, SFO, ORD),
     NONE},
    {"MQ", "AE", 70, 210, -4, 350, 4800, 300, H(DFW, ORD), NONE},
    {"US", "US", 62, 175, -5, 160, 2200, 360, H(CLT, PHL, PHX, LAS), NONE},
    {"DL", "DA", 65, 170, -5, 150, 2100, 450, H(ATL, CVG, SLC, JFK), NONE},
    {"UA", "UA", 63, 205, -4, 220, 1700, 460, H(ORD, DEN, SFO, IAD, LAX),
     NONE},
    {"XE", "XJ", 55, 185, -4, 200, 3200, 270, H(IAH, EWR, CLE), NONE},
    {"NW", "NW", 58, 190, -5, 180, 1900, 360, H(MSP, DTW, MEM), NONE},
    {"CO", "CO", 43, 200, -3, 120, 1800, 340, H(IAH, EWR, CLE), NONE},
    {"EV", "CA", 40, 225, -2, 280, 5900, 170, H(ATL), NONE},
    {"9E", "PQ", 35, 180, -4, 320, 6000, 140, H(MSP, DTW, MEM), NONE},
    {"FL", "AT", 36, 185, -3, 130, 1100, 130, H(ATL, MCO, BWI), NONE},
    {"YV", "YV", 33, 215, -3, 270, 7300, 150, H(PHX, IAD, DEN), NONE},
    {"OH", "CM", 32, 210, -3, 380, 5600, 140, H(CVG, JFK), NONE},
    {"B6", "JB", 26, 225, -2, 200, 1800, 130, H(JFK, BOS, FLL), NONE},
    {"AS", "AS", 22, 180, -4, 170, 900, 120, H(SEA, PDX, ANC, LAX), NONE},
    {"F9", "FR", 13, 150, -5, 90, 1000, 60, H(DEN), NONE},
    {"HA", "HA", 9, 70, -7, 40, 900, 40, H(HNL),
     {OGG, LAX, SFO, SEA, PDX, LAS, SAN, OAK, SJC, -1}},
    {"AQ", "AQ", 6, 80, -6, 60, 1200, 25, H(HNL),
     {OGG, LAX, OAK, SAN, LAS, SJC, -1}},
};

#undef H
#undef NONE

#define NCARRIERS ((int)(sizeof carriers / sizeof carriers[0]))

/* Weighted choice by table lookup: the tables hold one slot per unit of
 * weight (the sums are below 1024). */
#define LUT_MAX 1024

typedef struct gen_state {
    gen_rng rng;
    uint8_t car_lut[LUT_MAX];
    uint32_t car_total;
    uint8_t ap_lut[LUT_MAX];
    uint32_t ap_total;
    uint16_t dist[NAIRPORTS][NAIRPORTS];
    uint16_t block[NAIRPORTS][NAIRPORTS];   /* scheduled minutes, /5 */
    /* current date and its formatted "Y,M,D,DOW," prefix */
    int year, month, mday, dow;
    char date[16];
    size_t date_len;
} gen_state;

/* --------------------------------------------------- libm-free geometry */

#define GEN_PI 3.14159265358979323846

/* sin(x) for |x| <= 2 pi by its Taylor series (plenty of terms). */
static double gen_sin(double x)
{
    while (x > GEN_PI)
        x -= 2 * GEN_PI;
    while (x < -GEN_PI)
        x += 2 * GEN_PI;
    double term = x, sum = x, x2 = x * x;
    for (int k = 1; k < 20; k++) {
        term *= -x2 / ((2.0 * k) * (2.0 * k + 1));
        sum += term;
    }
    return sum;
}

static double gen_cos(double x) { return gen_sin(x + GEN_PI / 2); }

static double gen_sqrt(double x)
{
    if (x <= 0)
        return 0;
    double g = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++) {
        double n = 0.5 * (g + x / g);
        if (n >= g)
            break;
        g = n;
    }
    return g;
}

/* asin(x) for 0 <= x <= 1, through asin(x) = pi/2 - 2 asin(sqrt((1-x)/2))
 * above 1/2 so that the series converges fast. */
static double gen_asin(double x)
{
    if (x > 0.5)
        return GEN_PI / 2 - 2 * gen_asin(gen_sqrt((1 - x) / 2));
    double x2 = x * x, pw = x, a = 1, sum = x;
    for (int n = 1; n < 60; n++) {
        a *= (2.0 * n - 1) / (2.0 * n);
        pw *= x2;
        sum += a * pw / (2.0 * n + 1);
    }
    return sum;
}

/* Great-circle distance in statute miles, rounded. */
static int gen_distance(const gen_airport *a, const gen_airport *b)
{
    double d2r = GEN_PI / 180;
    double la1 = a->lat * d2r, lo1 = a->lon * d2r;
    double la2 = b->lat * d2r, lo2 = b->lon * d2r;
    double dx = gen_cos(la1) * gen_cos(lo1) - gen_cos(la2) * gen_cos(lo2);
    double dy = gen_cos(la1) * gen_sin(lo1) - gen_cos(la2) * gen_sin(lo2);
    double dz = gen_sin(la1) - gen_sin(la2);
    double chord = gen_sqrt(dx * dx + dy * dy + dz * dz);
    double miles = 3958.8 * 2 * gen_asin(chord / 2);
    return (int)(miles + 0.5);
}

static void build_tables(gen_state *g)
{
    g->car_total = 0;
    for (int c = 0; c < NCARRIERS; c++)
        for (int k = 0; k < carriers[c].share && g->car_total < LUT_MAX; k++)
            g->car_lut[g->car_total++] = (uint8_t)c;
    g->ap_total = 0;
    for (int a = 0; a < NAIRPORTS; a++)
        for (int k = 0; k < airports[a].weight && g->ap_total < LUT_MAX; k++)
            g->ap_lut[g->ap_total++] = (uint8_t)a;
    for (int o = 0; o < NAIRPORTS; o++) {
        for (int d = 0; d < NAIRPORTS; d++) {
            int dist = o == d ? 0 : gen_distance(&airports[o], &airports[d]);
            /* Block time: taxi and climb, cruise at 500 mph, and the jet
             * stream: slower westbound, faster eastbound. */
            int blk = 40 + dist * 60 / 500;
            if (airports[d].lon < airports[o].lon)
                blk += dist / 100;
            else
                blk -= dist / 200;
            g->dist[o][d] = (uint16_t)dist;
            g->block[o][d] = (uint16_t)((blk + 2) / 5);
        }
    }
}

/* -------------------------------------------------------------- dates */

static int days_in_month(int year, int month)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                                31};
    if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
        return 29;
    return dim[month - 1];
}

/* Formats v (< 10000) into p, returns the end. */
static inline char *put_small(char *p, unsigned v)
{
    if (v >= 1000) {
        p[0] = (char)('0' + v / 1000);
        p[1] = (char)('0' + v / 100 % 10);
        p[2] = (char)('0' + v / 10 % 10);
        p[3] = (char)('0' + v % 10);
        return p + 4;
    }
    if (v >= 100) {
        p[0] = (char)('0' + v / 100);
        p[1] = (char)('0' + v / 10 % 10);
        p[2] = (char)('0' + v % 10);
        return p + 3;
    }
    if (v >= 10) {
        p[0] = (char)('0' + v / 10);
        p[1] = (char)('0' + v % 10);
        return p + 2;
    }
    p[0] = (char)('0' + v);
    return p + 1;
}

static void format_date(gen_state *g)
{
    char *p = g->date;
    p = put_small(p, (unsigned)g->year);
    *p++ = ',';
    p = put_small(p, (unsigned)g->month);
    *p++ = ',';
    p = put_small(p, (unsigned)g->mday);
    *p++ = ',';
    p = put_small(p, (unsigned)g->dow);
    *p++ = ',';
    g->date_len = (size_t)(p - g->date);
}

static void next_day(gen_state *g)
{
    g->dow = g->dow % 7 + 1;
    if (++g->mday > days_in_month(g->year, g->month)) {
        g->mday = 1;
        if (++g->month > 12) {
            g->month = 1;
            g->year++;
        }
    }
}

/* ------------------------------------------------------------ numbers */

/* Any int with |v| < 10^9. */
static inline char *put_int(char *p, int v)
{
    unsigned u;
    if (v < 0) {
        *p++ = '-';
        u = 0u - (unsigned)v;
    } else {
        u = (unsigned)v;
    }
    if (u < 10000)
        return put_small(p, u);
    char tmp[12];
    int n = 0;
    while (u) {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    }
    while (n)
        *p++ = tmp[--n];
    return p;
}

static inline char *put_na(char *p)
{
    p[0] = 'N';
    p[1] = 'A';
    p[2] = ',';
    return p + 3;
}

static inline char *put_field(char *p, int v)
{
    p = put_int(p, v);
    *p++ = ',';
    return p;
}

static inline int mod1440(int m)
{
    m %= 1440;
    return m < 0 ? m + 1440 : m;
}

/* hhmm of a minute of the day; midnight is written 2400 for actual times
 * and 0 for scheduled ones, as in the real data. */
static inline int hhmm(int m, int actual)
{
    m = mod1440(m);
    if (m == 0 && actual)
        return 2400;
    return m / 60 * 100 + m % 60;
}

/* ------------------------------------------------------------ one row */

/* Arrival delay of a flight that arrived: a mixture of small early/late
 * values around the carrier's mu and, with the carrier's probability, a
 * delay of 15 minutes or more from a long-tailed histogram. */
static int draw_arr_delay(gen_state *g, const gen_carrier *c)
{
    if ((int)rng_below(&g->rng, 1000) < c->big) {
        uint32_t b = rng_below(&g->rng, 100);
        if (b < 50)
            return 15 + (int)rng_below(&g->rng, 20);
        if (b < 75)
            return 35 + (int)rng_below(&g->rng, 35);
        if (b < 89)
            return 70 + (int)rng_below(&g->rng, 60);
        if (b < 96)
            return 130 + (int)rng_below(&g->rng, 100);
        if (b < 99)
            return 230 + (int)rng_below(&g->rng, 170);
        return 400 + (int)rng_below(&g->rng, 501);
    }
    uint64_t r = rng_next(&g->rng);
    int s = 0;
    for (int i = 0; i < 4; i++) {
        s += (int)(((r & 0xffff) * 17) >> 16);
        r >>= 16;
    }
    return s - 32 + c->mu;
}

static void pick_route(gen_state *g, const gen_carrier *c, int *po, int *pd)
{
    int o, d;
    if (c->only[0] >= 0) {
        int n = 0;
        while (c->only[n] >= 0)
            n++;
        o = c->hubs[0];
        d = c->only[rng_below(&g->rng, (uint32_t)n)];
    } else {
        int nh = 0;
        while (nh < MAXHUBS && c->hubs[nh] >= 0)
            nh++;
        if (rng_below(&g->rng, 100) < 55)
            o = c->hubs[rng_below(&g->rng, (uint32_t)nh)];
        else
            o = g->ap_lut[rng_below(&g->rng, g->ap_total)];
        do {
            d = g->ap_lut[rng_below(&g->rng, g->ap_total)];
        } while (d == o || g->dist[o][d] < GEN_MIN_DIST);
    }
    if (rng_next(&g->rng) >> 63) {
        int t = o;
        o = d;
        d = t;
    }
    *po = o;
    *pd = d;
}

/* Splits an arrival delay of at least 15 minutes into the five cause
 * columns; en-route time lost (extra > 0) goes to NAS. */
static char *put_causes(gen_state *g, char *p, int arr, int extra)
{
    int v[5] = {0, 0, 0, 0, 0};     /* carrier weather nas security late */
    int nas = extra > 0 ? (extra < arr ? extra : arr) : 0;
    int rem = arr - nas;
    uint32_t k = rng_below(&g->rng, 100);
    v[2] = nas;
    if (k < 35) {
        v[4] = rem;
    } else if (k < 60) {
        v[0] = rem;
    } else if (k < 80) {
        v[0] = (int)rng_below(&g->rng, (uint32_t)rem + 1);
        v[4] = rem - v[0];
    } else if (k < 90) {
        v[1] = (int)rng_below(&g->rng, (uint32_t)rem + 1);
        v[4] = rem - v[1];
    } else if (k < 99) {
        v[2] += rem;
    } else {
        v[3] = rem;
    }
    for (int i = 0; i < 4; i++)
        p = put_field(p, v[i]);
    p = put_int(p, v[4]);
    return p;
}

static char *put_row(gen_state *g, char *p)
{
    const gen_carrier *c = &carriers[g->car_lut[rng_below(&g->rng,
                                                          g->car_total)]];
    int o, d;
    pick_route(g, c, &o, &d);
    int dist = g->dist[o][d];
    int crs_el = 5 * ((int)g->block[o][d] + (int)rng_below(&g->rng, 3) - 1);
    int tzd = 60 * (airports[d].tz - airports[o].tz);
    int crs_dep = 5 * (66 + (int)rng_below(&g->rng, 200));
    int crs_arr = crs_dep + crs_el + tzd;
    int flight = 1 + (int)rng_below(&g->rng, (uint32_t)c->flight_max);
    int tail = 100 + (int)rng_below(&g->rng, (uint32_t)c->fleet);

    uint32_t fate = rng_below(&g->rng, 10000);
    int cancelled = (int)fate < c->cancel;
    int diverted = !cancelled && (int)fate >= 9978;

    int arr = 0, dep = 0, actual = 0, air = 0, tin = 0, tout = 0;
    if (!cancelled) {
        arr = draw_arr_delay(g, c);
        /* actual - scheduled elapsed time: mostly a few minutes early,
         * sometimes lost en route when the flight is late anyway */
        int extra = (int)rng_below(&g->rng, 13) +
                    (int)rng_below(&g->rng, 13) - 16;
        if (arr >= 15 && rng_below(&g->rng, 4) == 0)
            extra = (int)rng_below(&g->rng, (uint32_t)(arr < 60 ? arr : 60));
        if (arr - extra < -12)
            extra = arr + 12 - (int)rng_below(&g->rng, 10);
        actual = crs_el + extra;
        tout = 7 + (int)rng_below(&g->rng, 12) + (int)rng_below(&g->rng, 8);
        tin = 2 + (int)rng_below(&g->rng, 6) + (int)rng_below(&g->rng, 4);
        int min_air = 8 + dist * 60 / 550;
        air = actual - tout - tin;
        if (air < min_air) {
            tout = 5 + (int)rng_below(&g->rng, 4);
            tin = 2 + (int)rng_below(&g->rng, 3);
            air = actual - tout - tin;
            if (air < min_air) {
                air = min_air;
                actual = air + tout + tin;
            }
        }
        extra = actual - crs_el;
        dep = arr - extra;

        memcpy(p, g->date, g->date_len);
        p += g->date_len;
        p = put_field(p, hhmm(crs_dep + dep, 1));
        p = put_field(p, hhmm(crs_dep, 0));
        if (diverted)
            p = put_na(p);
        else
            p = put_field(p, hhmm(crs_dep + dep + actual + tzd, 1));
        p = put_field(p, hhmm(crs_arr, 0));
    } else {
        memcpy(p, g->date, g->date_len);
        p += g->date_len;
        p = put_na(p);
        p = put_field(p, hhmm(crs_dep, 0));
        p = put_na(p);
        p = put_field(p, hhmm(crs_arr, 0));
    }
    p[0] = c->code[0];
    p[1] = c->code[1];
    p[2] = ',';
    p += 3;
    p = put_field(p, flight);
    *p++ = 'N';
    p = put_small(p, (unsigned)tail);
    p[0] = c->tail[0];
    p[1] = c->tail[1];
    p[2] = ',';
    p += 3;
    int flown = !cancelled && !diverted;
    if (flown)
        p = put_field(p, actual);
    else
        p = put_na(p);
    p = put_field(p, crs_el);
    if (flown) {
        p = put_field(p, air);
        p = put_field(p, arr);
    } else {
        p = put_na(p);
        p = put_na(p);
    }
    if (cancelled)
        p = put_na(p);
    else
        p = put_field(p, dep);
    memcpy(p, airports[o].code, 3);
    p[3] = ',';
    memcpy(p + 4, airports[d].code, 3);
    p[7] = ',';
    p += 8;
    p = put_field(p, dist);
    if (flown)
        p = put_field(p, tin);
    else
        p = put_na(p);
    if (cancelled)
        p = put_na(p);
    else
        p = put_field(p, tout);
    if (cancelled) {
        static const char codes[] = "AAAAAAAABBBBBBBBCCCD";
        memcpy(p, "1,", 2);
        p[2] = codes[rng_below(&g->rng, 20)];
        memcpy(p + 3, ",0,", 3);
        p += 6;
    } else if (diverted) {
        memcpy(p, "0,,1,", 5);
        p += 5;
    } else {
        memcpy(p, "0,,0,", 5);
        p += 5;
    }
    if (flown && arr >= 15) {
        p = put_causes(g, p, arr, actual - crs_el);
    } else {
        memcpy(p, "NA,NA,NA,NA,NA", 14);
        p += 14;
    }
    *p++ = '\n';
    return p;
}

/* ------------------------------------------------------------- driver */

/* See ss_gen_flights.h. */
int ss_gen_flights_emit(const ss_gen_flights_opts *opts, ss_gen_sink_fn sink,
                        void *ctx, uint64_t *bytes_written)
{
    uint64_t total = 0;
    if (bytes_written)
        *bytes_written = 0;
    if (!opts || !sink)
        return SS_EINVAL;
    gen_state *g = malloc(sizeof *g);
    char *buf = malloc(GEN_BUF_SIZE);
    if (!g || !buf) {
        free(g);
        free(buf);
        return SS_ENOMEM;
    }
    rng_seed(&g->rng, opts->seed);
    build_tables(g);
    g->year = GEN_FIRST_YEAR;
    g->month = 1;
    g->mday = 1;
    g->dow = GEN_FIRST_DOW;
    format_date(g);

    char *p = buf;
    if (opts->header) {
        static const char hdr[] = SS_GEN_FLIGHTS_HEADER "\n";
        memcpy(p, hdr, sizeof hdr - 1);
        p += sizeof hdr - 1;
    }
    /* Row i falls on day floor(i * GEN_NDAYS / rows); acc holds
     * i * GEN_NDAYS - day * rows, which stays below rows + GEN_NDAYS. */
    uint64_t acc = 0;
    int rc = 0;
    for (uint64_t i = 0; i < opts->rows; i++) {
        if (acc >= opts->rows) {
            while (acc >= opts->rows) {
                acc -= opts->rows;
                next_day(g);
            }
            format_date(g);
        }
        acc += GEN_NDAYS;
        p = put_row(g, p);
        if ((size_t)(buf + GEN_BUF_SIZE - p) < 2 * SS_GEN_FLIGHTS_MAX_ROW) {
            rc = sink(ctx, buf, (size_t)(p - buf));
            if (rc < 0)
                goto out;
            total += (uint64_t)(p - buf);
            p = buf;
        }
    }
    if (p > buf) {
        rc = sink(ctx, buf, (size_t)(p - buf));
        if (rc < 0)
            goto out;
        total += (uint64_t)(p - buf);
    }
    rc = 0;
out:
    free(buf);
    free(g);
    if (bytes_written)
        *bytes_written = total;
    return rc;
}

static int file_sink(void *ctx, const char *data, size_t len)
{
    FILE *f = ctx;
    return fwrite(data, 1, len, f) == len ? 0 : SS_EIO;
}

/* See ss_gen_flights.h. */
int ss_gen_flights_write(FILE *out, const ss_gen_flights_opts *opts,
                         uint64_t *bytes_written)
{
    if (bytes_written)
        *bytes_written = 0;
    if (!out || !opts)
        return SS_EINVAL;
    int rc = ss_gen_flights_emit(opts, file_sink, out, bytes_written);
    if (fflush(out) != 0 && rc == 0)
        rc = SS_EIO;
    return rc;
}
