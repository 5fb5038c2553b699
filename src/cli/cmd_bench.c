/*
 * cmd_bench.c - `sstream bench micro|throughput|scalability|all`: the
 * evaluation of the seed's chapter 6 on this machine.
 *
 *   micro        6.3: an empty call (native vs sandbox enclave), copying
 *                100 MB into the enclave in chunks of 1 KiB..16 MiB (in,
 *                in/out; every copy checked by SHA-256), and six Lua
 *                benchmarks (bench/lua/) natively and in the enclave.
 *   throughput   6.4: DelayedFlights, 4 source parts, per security mode
 *                and 1/2/4 workers per stage: per-component throughput
 *                over time (stacked percentiles) and completion time.
 *   scalability  6.5: completion time with 1..4 workers in every stage,
 *                and 1..16 mappers (filter and reduce: 1 worker each).
 *
 * Each suite writes raw CSV, SVG charts and a markdown section into the
 * output folder; the report (docs/EVALUATION.md by default) is rebuilt
 * from the sections present, so suites can be run one at a time.
 * Pipelines run as `sstream run` child processes of this binary; the
 * datasets are generated once into out/bench/.
 */
#include "cli/bench_svg.h"
#include "cli/cmds.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "enclave/ss_enclave.h"
#include "securestreams.h"
#include "wire/ss_batch.h"
#include "wire/ss_msgpack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------- */

typedef struct bench_opts {
    int quick;
    uint64_t rows;      /* throughput dataset */
    uint64_t scal_rows; /* scalability dataset */
    int reps;           /* scalability repetitions */
    int copy_reps;      /* copy benchmark repetitions per point */
    int lua_reps_small, lua_reps_large;
    const char *out;    /* CSV, SVG, sections */
    const char *report; /* the markdown report */
    const char *img;    /* prefix of the SVGs as seen from the report */
    const char *modes;  /* security modes for throughput */
    const char *max_mappers;
    char cmdline[1024]; /* as typed, for the report */
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sstream bench micro|throughput|scalability|all [options]\n"
        "       sstream bench report [--out DIR] [--report FILE]\n"
        "\n"
        "Runs the evaluation of the SecureStreams deliverable's chapter 6\n"
        "on this machine; writes raw CSV, SVG charts and a report.\n"
        "The throughput suite also gives the end-to-end latency per batch\n"
        "(p50, p99: latency.csv) from the source and sink logs of each run\n"
        "(SS_LATENCY_DIR, docs/PERFORMANCE.md).\n"
        "`report` only rebuilds the report from the sections in DIR.\n"
        "Run it from the source tree (it uses examples/delayed-flights and\n"
        "bench/lua).\n"
        "\n"
        "options:\n"
        "  --quick           small data, few repetitions (< 3 minutes)\n"
        "  --rows N          throughput dataset rows (default 28000000,\n"
        "                    quick 400000)\n"
        "  --scal-rows N     scalability dataset rows (default 2000000,\n"
        "                    quick 100000)\n"
        "  --reps N          scalability repetitions (default 5, quick 2)\n"
        "  --copy-reps N     runs per copy point (default 20, quick 2)\n"
        "  --modes LIST      security modes for throughput (default\n"
        "                    plain,encrypted,enclave)\n"
        "  --out DIR         CSV and SVG (default docs/eval)\n"
        "  --report FILE     the report (default docs/EVALUATION.md with\n"
        "                    the default --out, else DIR/EVALUATION.md)\n"
        "  --help            this help\n");
}

static int bad(const char *what, const char *v)
{
    fprintf(stderr, "sstream bench: %s '%s'; see 'sstream bench --help'\n",
            what, v ? v : "");
    return 2;
}

/* ---- small helpers -------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of sorted v[0..n), linear interpolation. */
static double pctl(const double *v, int n, double q)
{
    if (n == 0)
        return 0;
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (v[i + 1] - v[i]) * (pos - i);
}

static double now_s(void) { return (double)ss_now_ns() / 1e9; }

static char self_exe[PATH_MAX];

/* Runs this binary with argv (argv[0] ignored), stdout and stderr into
 * log. Returns the exit status (or 128+signal, -1 if it cannot start)
 * and the wall time in *secs. */
static int run_self(char **argv, const char *log, double *secs)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        argv[0] = "sstream";
        execv(self_exe, argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (secs)
        *secs = now_s() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The DelayedFlights dataset of `rows` rows, generated once into
 * out/bench/. Returns 0 and the path in path. */
static int dataset(uint64_t rows, char *path, size_t n)
{
    if (mkdirs("out/bench"))
        return -1;
    snprintf(path, n, "out/bench/flights-%llu.csv", (unsigned long long)rows);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0)
        return 0;
    char rs[32], tmp[PATH_MAX];
    snprintf(rs, sizeof rs, "%llu", (unsigned long long)rows);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    say("generating %s (%s rows, once)", path, rs);
    char *argv[] = {"", "gen", "flights", "--rows", rs, "-o", tmp, NULL};
    double secs;
    if (run_self(argv, "out/bench/gen.log", &secs) != 0 ||
        rename(tmp, path)) {
        say("cannot generate %s: see out/bench/gen.log", path);
        return -1;
    }
    return 0;
}

/* A DelayedFlights pipeline file with `mappers` map workers and one
 * filter and one reduce worker, scripts by absolute path. */
static int pipeline_file(int mappers, char *path, size_t n)
{
    char ex[PATH_MAX];
    if (!realpath("examples/delayed-flights", ex)) {
        say("examples/delayed-flights not found: run from the source tree");
        return -1;
    }
    mkdirs("out/bench/pipelines");
    snprintf(path, n, "out/bench/pipelines/flights-m%d.yml", mappers);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# written by sstream bench: the seed's topology\n"
            "name: bench-flights\nsecurity: plain\nbatch_size: 256K\n"
            "source: { parts: 4, format: csv, header: true }\n"
            "stages:\n"
            "  - { name: map, script: %s/map-csv-to-event.lua, workers: %d }\n"
            "  - { name: filter, script: %s/filter-event.lua, workers: 1 }\n"
            "  - { name: reduce, script: %s/reduce-events.lua, workers: 1 }\n"
            "sink: { script: %s/print-results.lua }\n",
            ex, mappers, ex, ex, ex);
    return fclose(f) ? -1 : 0;
}

/* One `sstream run`. workers 0 keeps the file's counts. Returns the exit
 * status and the wall time. */
static int run_pipeline(const char *yml, const char *data, int workers,
                        const char *mode, const char *metrics,
                        const char *tag, double *secs)
{
    char w[16], od[PATH_MAX], log[PATH_MAX];
    snprintf(w, sizeof w, "%d", workers);
    snprintf(od, sizeof od, "out/bench/runs/%s", tag);
    snprintf(log, sizeof log, "out/bench/runs/%s.log", tag);
    mkdirs(od);
    char *argv[20];
    int k = 0;
    argv[k++] = "";
    argv[k++] = "run";
    argv[k++] = (char *)yml;
    argv[k++] = "--data";
    argv[k++] = (char *)data;
    argv[k++] = "--security";
    argv[k++] = (char *)mode;
    argv[k++] = "--no-progress";
    argv[k++] = "--output-dir";
    argv[k++] = od;
    if (workers > 0) {
        argv[k++] = "--workers";
        argv[k++] = w;
    }
    if (metrics) {
        argv[k++] = "--metrics";
        argv[k++] = (char *)metrics;
    }
    argv[k] = NULL;
    return run_self(argv, log, secs);
}

static FILE *open_csv(const bench_opts *o, const char *name,
                      const char *header)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", o->out, name);
    FILE *f = fopen(p, "w");
    if (f)
        fprintf(f, "%s\n", header);
    else
        say("cannot write %s: %s", p, strerror(errno));
    return f;
}

static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static double section_load0, section_t0;

/* Closes a section with the machine's load during the suite. */
static void close_section(FILE *md)
{
    fprintf(md, "_Load average (1 min) on this %ld-core machine: %.1f when "
                "the suite started, %.1f when it ended, %.0f min later "
                "(it counts the suite's own processes too: a pipeline with "
                "4 workers per stage has 21)._\n\n",
            sysconf(_SC_NPROCESSORS_ONLN), section_load0, loadavg(),
            (now_s() - section_t0) / 60);
    fclose(md);
}

static FILE *open_section(const bench_opts *o, const char *name)
{
    section_load0 = loadavg();
    section_t0 = now_s();
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/section-%s.md", o->out, name);
    FILE *f = fopen(p, "w");
    if (!f)
        say("cannot write %s: %s", p, strerror(errno));
    return f;
}

static void svg_path(const bench_opts *o, const char *name, char *p,
                     size_t n)
{
    snprintf(p, n, "%s/%s", o->out, name);
}

/* ---- micro: calls --------------------------------------------------- */

__attribute__((noinline)) static void empty_call(void) { __asm__ volatile(""); }
static void (*volatile empty_fn)(void) = empty_call;

__attribute__((noinline)) static void copy_chunk(void *d, const void *s,
                                                 size_t n)
{
    memcpy(d, s, n);
}
static void (*volatile copy_fn)(void *, const void *, size_t) = copy_chunk;

static ss_enclave *open_enclave(const char *backend, const char *script,
                                size_t mem)
{
    ss_enclave_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.backend = backend;
    eo.name = "bench-1";
    eo.stage = "bench";
    eo.script_path = script;
    eo.echo = script == NULL;
    eo.mem_limit = mem;
    eo.program = self_exe;
    char err[1024];
    ss_enclave *e = NULL;
    if (ss_enclave_open(&eo, &e, err, sizeof err)) {
        say("cannot open the %s enclave: %s", backend, err);
        return NULL;
    }
    return e;
}

static int micro_calls(const bench_opts *o, FILE *md, double res[2])
{
    long calls = o->quick ? 100000 : 1000000;
    FILE *f = open_csv(o, "micro_call.csv", "mode,calls,total_s,ns_per_call");
    if (!f)
        return -1;
    for (long i = 0; i < 1000; i++)
        empty_fn();
    double t = now_s();
    for (long i = 0; i < calls; i++)
        empty_fn();
    double native = now_s() - t;
    ss_enclave *e = open_enclave("sandbox", NULL, 0);
    if (!e) {
        fclose(f);
        return -1;
    }
    char err[1024];
    int rc = 0;
    for (int i = 0; i < 1000 && !rc; i++)
        rc = ss_enclave_ping(e, err, sizeof err);
    t = now_s();
    for (long i = 0; i < calls && !rc; i++)
        rc = ss_enclave_ping(e, err, sizeof err);
    double encl = now_s() - t;
    ss_enclave_close(&e);
    if (rc) {
        say("enclave call failed: %s", err);
        fclose(f);
        return -1;
    }
    res[0] = native / calls * 1e9;
    res[1] = encl / calls * 1e9;
    fprintf(f, "native,%ld,%.6f,%.3f\n", calls, native, res[0]);
    fprintf(f, "enclave,%ld,%.6f,%.3f\n", calls, encl, res[1]);
    fclose(f);
    say("empty call: native %.2f ns, sandbox enclave %.0f ns", res[0],
        res[1]);
    fprintf(md,
            "### Empty call\n\n"
            "An empty function call averaged over %ld calls: natively, an\n"
            "indirect call to an empty function; in the enclave, an empty\n"
            "round trip host -> sandbox enclave -> host over the shared-\n"
            "memory channel (`ss_enclave_ping`).\n\n"
            "| | this machine | seed (SGX, i7-6700) |\n|---|---:|---:|\n"
            "| native | %.2f ns | 23.6 ns |\n"
            "| enclave | %.0f ns (%.0fx native) | 2.35 us (printed \"2.35 "
            "s\", \"two orders of magnitude\" above 23.6 ns) |\n\n",
            calls, res[0], res[1], res[1] / (res[0] > 0 ? res[0] : 1));
    return 0;
}

/* ---- micro: copies -------------------------------------------------- */

enum { C_NAT_IN, C_NAT_INOUT, C_ENC_IN, C_ENC_INOUT, C_VARIANTS };
static const char *const copy_names[C_VARIANTS] = {
    "native in", "native in/out", "enclave in", "enclave in/out"};

static int micro_copy(const bench_opts *o, FILE *md)
{
    size_t total = o->quick ? (8u << 20) : (100u << 20);
    size_t cmin = 1024, cmax = o->quick ? (1u << 20) : (16u << 20);
    int step = o->quick ? 4 : 2;
    int reps = o->copy_reps;
    FILE *f = open_csv(o, "micro_copy.csv",
                       "variant,chunk_bytes,run,seconds,mb_per_s");
    if (!f)
        return -1;
    uint8_t *src = malloc(total), *dst = malloc(total), *mid = malloc(total);
    ss_enclave *e = open_enclave("sandbox", NULL, 0);
    if (!src || !dst || !mid || !e) {
        free(src), free(dst), free(mid), fclose(f), ss_enclave_close(&e);
        return -1;
    }
    randombytes_buf(src, total);
    uint8_t want[32], got[32];
    crypto_hash_sha256(want, src, total);
    ss_buf out = SS_BUF_INIT;
    char err[1024];
    int npts = 0, rc = 0;
    double xs[32], mean[C_VARIANTS][32], sd[C_VARIANTS][32];
    double med[C_VARIANTS][32];
    double *tv = calloc((size_t)reps, sizeof *tv);
    for (size_t c = cmin; c <= cmax && !rc; c *= (size_t)step, npts++) {
        xs[npts] = (double)c;
        for (int v = 0; v < C_VARIANTS && !rc; v++) {
            for (int r = 0; r < reps && !rc; r++) {
                memset(dst, 0, total);
                double t = now_s();
                for (size_t off = 0; off < total && !rc; off += c) {
                    size_t n = total - off < c ? total - off : c;
                    switch (v) {
                    case C_NAT_IN:
                        copy_fn(dst + off, src + off, n);
                        break;
                    case C_NAT_INOUT:
                        copy_fn(mid + off, src + off, n);
                        copy_fn(dst + off, mid + off, n);
                        break;
                    case C_ENC_IN:
                        rc = ss_enclave_push(e, src + off, n, err,
                                             sizeof err);
                        break;
                    default:
                        rc = ss_enclave_echo(e, src + off, n, &out, err,
                                             sizeof err);
                        if (!rc && out.len == n)
                            memcpy(dst + off, out.data, n);
                    }
                }
                tv[r] = now_s() - t;
                /* check the copy (not timed) */
                uint64_t len = total;
                if (!rc && v == C_ENC_IN)
                    rc = ss_enclave_digest(e, got, &len, err, sizeof err);
                else
                    crypto_hash_sha256(got, dst, total);
                if (!rc && (len != total || memcmp(got, want, 32))) {
                    snprintf(err, sizeof err, "SHA-256 mismatch");
                    rc = SS_EINTEGRITY;
                }
                if (!rc)
                    fprintf(f, "%s,%zu,%d,%.6f,%.1f\n", copy_names[v], c,
                            r + 1, tv[r], (double)total / 1e6 / tv[r]);
            }
            mean_sd(tv, reps, &mean[v][npts], &sd[v][npts]);
            qsort(tv, (size_t)reps, sizeof tv[0], cmp_d);
            med[v][npts] = pctl(tv, reps, 0.5);
        }
        if (!rc)
            say("copy %zu-byte chunks: native in %.3f s, enclave in %.3f s",
                c, mean[C_NAT_IN][npts], mean[C_ENC_IN][npts]);
    }
    ss_buf_release(&out);
    ss_enclave_close(&e);
    free(src), free(dst), free(mid), free(tv);
    fclose(f);
    if (rc) {
        say("copy benchmark failed: %s", err);
        return -1;
    }
    double ymin = 1e30, ymax = 0;
    for (int v = 0; v < C_VARIANTS; v++)
        for (int i = 0; i < npts; i++) {
            if (mean[v][i] < ymin)
                ymin = mean[v][i];
            if (mean[v][i] + sd[v][i] > ymax)
                ymax = mean[v][i] + sd[v][i];
        }
    char p[PATH_MAX], sub[160];
    svg_path(o, "micro_copy.svg", p, sizeof p);
    snprintf(sub, sizeof sub, "%zu MB in chunks, mean of %d runs, "
                              "every copy checked by SHA-256",
             total >> 20, reps);
    svg_plot pl;
    if (!svg_open(&pl, p, "Copying data into the enclave", sub,
                  "chunk size (bytes)", "time to copy all data (s)", cmin,
                  cmax, pow(10, floor(log10(ymin > 0 ? ymin : 1e-9))),
                  pow(10, ceil(log10(ymax > 0 ? ymax : 1))), 2, 10, NULL,
                  0)) {
        static const char *const col[] = {"#1f77b4", "#6baed6", "#d62728",
                                          "#ff9896"};
        for (int v = 0; v < C_VARIANTS; v++) {
            svg_line(&pl, npts, xs, mean[v], col[v], v & 1, v < 2 ? 1 : 2);
            svg_errbars(&pl, npts, xs, mean[v], sd[v], col[v]);
            svg_legend(&pl, copy_names[v], col[v], 0);
        }
        svg_vline(&pl, 65536, "64 KiB");
        svg_close(&pl);
    }
    fprintf(md,
            "### Copying %zu MB into the enclave\n\n"
            "`in`: each chunk is copied from the host into memory private\n"
            "to the enclave (natively: into another buffer); `in/out`: it\n"
            "is copied in and back out. One call per chunk; %d runs per\n"
            "point; after each run the SHA-256 of the destination (for the\n"
            "enclave's `in`, computed inside it) is compared with the\n"
            "source's. Raw data: `micro_copy.csv`.\n\n"
            "![copy](%smicro_copy.svg)\n\n"
            "Mean (median) time to copy all the data:\n\n"
            "| chunk | native in | native in/out | enclave in | enclave "
            "in/out | in/out vs in (enclave, medians) |\n"
            "|---:|---:|---:|---:|---:|---:|\n",
            total >> 20, reps, o->img);
    for (int i = 0; i < npts; i++) {
        char lab[32];
        if (xs[i] >= 1 << 20)
            snprintf(lab, sizeof lab, "%g MiB", xs[i] / (1 << 20));
        else
            snprintf(lab, sizeof lab, "%g KiB", xs[i] / 1024);
        fprintf(md, "| %s | %.4f (%.4f) s | %.4f (%.4f) s | %.4f (%.4f) s "
                    "| %.4f (%.4f) s | %+.0f%% |\n",
                lab, mean[0][i], med[0][i], mean[1][i], med[1][i],
                mean[2][i], med[2][i], mean[3][i], med[3][i],
                (med[3][i] / med[2][i] - 1) * 100);
    }
    fprintf(md, "\nThe seed (Figure 6.1) sees the per-call overhead fall\n"
                "until 64 KiB chunks and in/out cost at most 20%% more than\n"
                "in.\n\n");
    return 0;
}

/* ---- micro: Lua benchmarks ------------------------------------------ */

static const struct lua_bench {
    const char *name;
    long small, large;     /* the seed's parameters (Table 6.2) */
    long qsmall, qlarge;   /* --quick */
    const char *ps, *pl;   /* as the seed prints them */
    const char *mem_s, *mem_l;
    double ratio_s, ratio_l; /* seed's SGX/native */
} lua_benches[] = {
    {"dhrystone", 50000, 5000000, 5000, 50000, "50K", "5M", "275 KB",
     "275 KB", 1.14, 1.04},
    {"fannkuch", 10, 11, 7, 8, "10", "11", "28 KB", "28 KB", 0.99, 1.04},
    {"nbody", 2500000, 25000000, 10000, 100000, "2.5M", "25M", "38 KB",
     "38 KB", 0.99, 1.00},
    {"richards", 10, 100, 1, 5, "10", "100", "106 KB", "191 KB", 1.02,
     0.97},
    {"spectralnorm", 500, 5000, 50, 200, "500", "5K", "52 KB", "404 KB",
     1.00, 0.99},
    {"binarytrees", 14, 19, 10, 12, "14", "19", "25 MB", "664 MB", 1.18,
     4.76},
};
#define NLUA (sizeof lua_benches / sizeof lua_benches[0])

/* Writes the stage wrapper of bench name: the benchmark's chunk (which
 * returns a function of n) run on each event's field n. */
static int lua_wrapper(const char *name, char *path, size_t n)
{
    char src[PATH_MAX];
    snprintf(src, sizeof src, "bench/lua/%s.lua", name);
    FILE *in = fopen(src, "r");
    if (!in) {
        say("%s not found: run from the source tree", src);
        return -1;
    }
    mkdirs("out/bench/lua");
    snprintf(path, n, "out/bench/lua/%s.stage.lua", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fclose(in);
        return -1;
    }
    fprintf(f, "-- written by sstream bench from %s\n"
               "local bench = (function()\n", src);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, k, f);
    fclose(in);
    fprintf(f, "\nend)()\n"
               "local ZmqRx = require 'zmq-rx'\n"
               "ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or "
               "'tcp://localhost:5556')\n"
               "  :map(function(e) return { r = bench(e.n) } end)\n"
               "  :subscribeToSocket(os.getenv('TO') or "
               "'tcp://localhost:5557')\n");
    return fclose(f) ? -1 : 0;
}

/* Runs the benchmark reps times in e; times in t[], Lua peak in *peak. */
static int lua_runs(ss_enclave *e, long param, int reps, double *t,
                    uint64_t *peak, char *err, size_t errlen)
{
    ss_buf msg = SS_BUF_INIT, pay = SS_BUF_INIT;
    ss_mp_put_map(&pay, 1);
    ss_mp_put_str(&pay, "n", 1);
    ss_mp_put_int(&pay, param);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.version = SS_WIRE_VERSION;
    h.kind = SS_MSG_DATA;
    h.count = 1;
    h.len = (uint32_t)pay.len;
    ss_buf_grow(&msg, SS_HDR_SIZE + pay.len);
    ss_hdr_encode(&h, (uint8_t *)msg.data);
    msg.len = SS_HDR_SIZE;
    ss_buf_append(&msg, pay.data, pay.len);
    ss_enclave_result res;
    ss_enclave_result_init(&res);
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        h.seq = (uint64_t)r;
        ss_hdr_encode(&h, (uint8_t *)msg.data);
        double t0 = now_s();
        rc = ss_enclave_call(e, msg.data, msg.len, &res, err, errlen);
        t[r] = now_s() - t0;
        if (!rc && (res.nrejects || res.delta.out != 1)) {
            snprintf(err, errlen, "the benchmark failed: %.*s",
                     (int)(res.rejects.len < 300 ? res.rejects.len : 300),
                     res.rejects.data ? (char *)res.rejects.data : "");
            rc = SS_ELUA;
        }
        *peak = res.mem_peak;
    }
    ss_enclave_result_release(&res);
    ss_buf_release(&msg);
    ss_buf_release(&pay);
    return rc;
}

static int micro_lua(const bench_opts *o, FILE *md)
{
    FILE *f = open_csv(o, "micro_lua.csv",
                       "bench,param,runs,native_mean_s,native_sd_s,"
                       "enclave_mean_s,enclave_sd_s,peak_mem_kb,ratio");
    if (!f)
        return -1;
    size_t mem = o->quick ? (256u << 20) : (2048u << 20);
    double nm[NLUA][2], ns[NLUA][2], em[NLUA][2], es[NLUA][2];
    uint64_t pk[NLUA][2];
    long par[NLUA][2];
    int runs[NLUA][2];
    int rc = 0;
    char err[1024] = "";
    for (size_t b = 0; b < NLUA && !rc; b++) {
        char script[PATH_MAX];
        if (lua_wrapper(lua_benches[b].name, script, sizeof script)) {
            rc = -1;
            break;
        }
        for (int s = 0; s < 2 && !rc; s++) {
            const struct lua_bench *lb = &lua_benches[b];
            long p = o->quick ? (s ? lb->qlarge : lb->qsmall)
                              : (s ? lb->large : lb->small);
            int reps = s ? o->lua_reps_large : o->lua_reps_small;
            double t[64];
            uint64_t peak[2] = {0, 0};
            for (int m = 0; m < 2 && !rc; m++) {
                ss_enclave *e =
                    open_enclave(m ? "sandbox" : "none", script, mem);
                if (!e) {
                    rc = -1;
                    break;
                }
                rc = lua_runs(e, p, reps, t, &peak[m], err, sizeof err);
                ss_enclave_close(&e);
                if (m)
                    mean_sd(t, reps, &em[b][s], &es[b][s]);
                else
                    mean_sd(t, reps, &nm[b][s], &ns[b][s]);
            }
            if (rc)
                break;
            par[b][s] = p;
            runs[b][s] = reps;
            pk[b][s] = peak[1] > peak[0] ? peak[1] : peak[0];
            fprintf(f, "%s,%ld,%d,%.6f,%.6f,%.6f,%.6f,%llu,%.4f\n", lb->name,
                    p, reps, nm[b][s], ns[b][s], em[b][s], es[b][s],
                    (unsigned long long)(pk[b][s] / 1024), em[b][s] / nm[b][s]);
            fflush(f);
            say("lua %s %ld: native %.3f s, enclave %.3f s (x%.2f)",
                lb->name, p, nm[b][s], em[b][s], em[b][s] / nm[b][s]);
        }
    }
    fclose(f);
    if (rc) {
        say("Lua benchmarks failed: %s", err);
        return -1;
    }
    /* chart: log-scale bars, native and enclave side by side */
    static const char *cats[2 * NLUA];
    static char catbuf[2 * NLUA][40];
    double ymin = 1e30, ymax = 0;
    for (size_t b = 0; b < NLUA; b++)
        for (int s = 0; s < 2; s++) {
            snprintf(catbuf[2 * b + s], sizeof catbuf[0], "%s %ld",
                     lua_benches[b].name, par[b][s]);
            cats[2 * b + s] = catbuf[2 * b + s];
            double lo = fmin(nm[b][s], em[b][s]);
            double hi = fmax(nm[b][s] + ns[b][s], em[b][s] + es[b][s]);
            ymin = fmin(ymin, lo);
            ymax = fmax(ymax, hi);
        }
    char p[PATH_MAX], sub[200];
    svg_path(o, "micro_lua.svg", p, sizeof p);
    snprintf(sub, sizeof sub, "mean and standard deviation; %d runs (first "
                              "parameter), %d (second); log scale",
             o->lua_reps_small, o->lua_reps_large);
    svg_plot pl;
    if (!svg_open(&pl, p, "Lua benchmarks: native vs sandbox enclave", sub,
                  "benchmark and parameter", "running time (s)", -0.6,
                  2 * NLUA - 0.4, pow(10, floor(log10(ymin))),
                  pow(10, ceil(log10(ymax))), 0, 10, cats, 2 * NLUA)) {
        for (size_t b = 0; b < NLUA; b++)
            for (int s = 0; s < 2; s++) {
                double x = 2 * b + s;
                svg_bar(&pl, x - 0.18, 0.36, nm[b][s], "#9ecae1");
                svg_bar(&pl, x + 0.18, 0.36, em[b][s], "#de2d26");
                double xn = x - 0.18, xe = x + 0.18;
                svg_errbars(&pl, 1, &xn, &nm[b][s], &ns[b][s], "#333");
                svg_errbars(&pl, 1, &xe, &em[b][s], &es[b][s], "#333");
            }
        svg_legend(&pl, "native (in-process)", "#9ecae1", 1);
        svg_legend(&pl, "sandbox enclave", "#de2d26", 1);
        svg_close(&pl);
    }
    fprintf(md,
            "### Lua benchmarks\n\n"
            "Six classic benchmarks written for this project in Lua 5.4\n"
            "(`bench/lua/`), each run as a stage script fed one event\n"
            "`{n = parameter}`: natively (the `none` backend, a Lua state\n"
            "in this process) and in the sandbox enclave (a separate\n"
            "process under seccomp, the event crossing the shared-memory\n"
            "channel). Times are per call, the enclave's start excluded.\n"
            "Runs: %d for the first parameter of each pair, %d for the\n"
            "second (the seed ran 20; the long runs take minutes each on\n"
            "this machine). Peak memory: the Lua allocator's peak, rx\n"
            "runtime included. Raw data: `micro_lua.csv`.\n\n"
            "![lua](%smicro_lua.svg)\n\n"
            "| benchmark | parameter | runs | native | enclave | peak memory "
            "| ratio enclave/native | seed: memory | seed: ratio SGX/native "
            "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            o->lua_reps_small, o->lua_reps_large, o->img);
    for (size_t b = 0; b < NLUA; b++)
        for (int s = 0; s < 2; s++) {
            const struct lua_bench *lb = &lua_benches[b];
            fprintf(md,
                    "| %s | %ld%s%s%s | %d | %.3f ± %.3f s | %.3f ± %.3f s | "
                    "%.0f KB | %.2f | %s | %.2f |\n",
                    lb->name, par[b][s], o->quick ? " (seed: " : "",
                    o->quick ? (s ? lb->pl : lb->ps) : "",
                    o->quick ? ")" : "", runs[b][s], nm[b][s], ns[b][s],
                    em[b][s], es[b][s], (double)pk[b][s] / 1024,
                    em[b][s] / nm[b][s], s ? lb->mem_l : lb->mem_s,
                    s ? lb->ratio_l : lb->ratio_s);
        }
    fprintf(md,
            "\nThe sandbox enclave runs the same Lua VM at native speed:\n"
            "it has no encrypted memory (EPC) and no paging, so the\n"
            "seed's 4.76x for binarytrees 19 (664 MB, far beyond the\n"
            "~90 MB EPC) has no counterpart here; what remains is the\n"
            "call's transport, negligible against seconds of work.\n\n");
    return 0;
}

static int suite_micro(const bench_opts *o)
{
    FILE *md = open_section(o, "micro");
    if (!md)
        return -1;
    fprintf(md, "## Micro-benchmarks (seed section 6.3)\n\n");
    double call[2];
    int rc = micro_calls(o, md, call);
    if (!rc)
        rc = micro_copy(o, md);
    if (!rc)
        rc = micro_lua(o, md);
    close_section(md);
    return rc;
}

/* ---- throughput ------------------------------------------------------ */

/* Per-component rates from a --metrics file: for each component, the
 * in_bytes rate between its consecutive samples, binned by second. */
typedef struct comp {
    char name[64];
    double last_t, last_b;
    int have;
} comp;

#define MAX_SECS 4000
#define MAX_COMPS 96

static double json_num(const char *line, const char *key)
{
    char k[48];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

static void json_str(const char *line, const char *key, char *out, size_t n)
{
    char k[48];
    snprintf(k, sizeof k, "\"%s\":\"", key);
    const char *p = strstr(line, k);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(k);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n)
        out[i++] = *p++;
    out[i] = '\0';
}

/* rates[sec][comp] in MB/s (NAN: no sample). Returns seconds covered. */
static int read_rates(const char *metrics, double (*rates)[MAX_COMPS],
                      int *ncomp)
{
    FILE *f = fopen(metrics, "r");
    if (!f)
        return 0;
    static comp comps[MAX_COMPS];
    int nc = 0, nsec = 0;
    for (int s = 0; s < MAX_SECS; s++)
        for (int c = 0; c < MAX_COMPS; c++)
            rates[s][c] = NAN;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        char name[64];
        json_str(line, "name", name, sizeof name);
        double t = json_num(line, "t"), b = json_num(line, "in_bytes");
        if (!name[0] || isnan(t) || isnan(b))
            continue;
        int c = 0;
        while (c < nc && strcmp(comps[c].name, name))
            c++;
        if (c == nc) {
            if (nc == MAX_COMPS)
                continue;
            snprintf(comps[nc].name, sizeof comps[0].name, "%s", name);
            comps[nc++].have = 0;
        }
        comp *k = &comps[c];
        if (k->have && t - k->last_t > 0.2) {
            double r = (b - k->last_b) / (t - k->last_t) / 1e6;
            int s = (int)t;
            if (s >= 0 && s < MAX_SECS) {
                rates[s][c] = isnan(rates[s][c]) ? r : fmax(rates[s][c], r);
                if (s + 1 > nsec)
                    nsec = s + 1;
            }
        }
        if (!k->have || t - k->last_t > 0.2) {
            k->last_t = t;
            k->last_b = b;
            k->have = 1;
        }
    }
    fclose(f);
    *ncomp = nc;
    return nsec;
}

/* Probes whether `sstream run --security mode` works here. */
static int mode_works(const char *mode, const char *tiny)
{
    char yml[PATH_MAX], tag[64];
    if (pipeline_file(1, yml, sizeof yml))
        return 0;
    snprintf(tag, sizeof tag, "probe-%s", mode);
    double secs;
    return run_pipeline(yml, tiny, 1, mode, NULL, tag, &secs) == 0;
}

/* ---- latency ---------------------------------------------------------- */

typedef struct lat_rec {
    uint32_t stream;
    uint64_t seq, ns;
} lat_rec;

static int cmp_lat(const void *a, const void *b)
{
    const lat_rec *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* Reads a latency log (ss_latlog.h) into *v (malloc'd, sorted by
 * lineage, then time); the source's lines give the time their batch's
 * first row was read (their fourth field). Returns the count, or -1. */
static long lat_read(const char *path, lat_rec **v)
{
    *v = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = 0, cap = 0;
    unsigned s;
    unsigned long long q, t, first;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%u %llu %llu %llu", &s, &q, &t, &first);
        if (k < 3)
            break;
        if (k == 4 && first && first <= t)
            t = first;
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            lat_rec *nv = realloc(*v, cap * sizeof *nv);
            if (!nv) {
                fclose(f);
                free(*v);
                *v = NULL;
                return -1;
            }
            *v = nv;
        }
        (*v)[n++] = (lat_rec){s, q, t};
    }
    fclose(f);
    if (n)
        qsort(*v, n, sizeof **v, cmp_lat);
    return (long)n;
}

/* End-to-end latency per batch from the logs in dir (SS_LATENCY_DIR of
 * a run): from the batch's first row read by the source to the last
 * message of its
 * lineage reaching the sink. *n batches matched; p50, p99 and max in
 * ms. Returns 0, or -1 when there is nothing to measure. */
static int lat_pcts(const char *dir, long *n, double *p50, double *p99,
                    double *max)
{
    char ps[PATH_MAX + 16], pk[PATH_MAX + 16];
    snprintf(ps, sizeof ps, "%s/source.lat", dir);
    snprintf(pk, sizeof pk, "%s/sink.lat", dir);
    lat_rec *src = NULL, *snk = NULL;
    long ns = lat_read(ps, &src), nk = lat_read(pk, &snk);
    double *d = ns > 0 ? malloc((size_t)ns * sizeof *d) : NULL;
    long m = 0;
    for (long i = 0, j = 0; d && i < ns && j < nk;) {
        int c = cmp_lat(&(lat_rec){src[i].stream, src[i].seq, 0},
                        &(lat_rec){snk[j].stream, snk[j].seq, 0});
        if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            while (j + 1 < nk && snk[j + 1].stream == snk[j].stream &&
                   snk[j + 1].seq == snk[j].seq)
                j++; /* the last piece of that lineage */
            if (snk[j].ns >= src[i].ns)
                d[m++] = (double)(snk[j].ns - src[i].ns) / 1e6;
            i++;
            j++;
        }
    }
    free(src);
    free(snk);
    *n = m;
    if (m == 0) {
        free(d);
        return -1;
    }
    qsort(d, (size_t)m, sizeof *d, cmp_d);
    *p50 = pctl(d, (int)m, 0.50);
    *p99 = pctl(d, (int)m, 0.99);
    *max = d[m - 1];
    free(d);
    return 0;
}

/* A fresh folder for a run's latency logs, writable by the run's
 * components whatever their uid; 0 or -1. */
static int lat_dir(const char *tag, char *dir, size_t n)
{
    snprintf(dir, n, "out/bench/runs/%s.lat", tag);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/source.lat", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/sink.lat", dir);
    unlink(p);
    if (mkdirs(dir) || chmod(dir, 01777))
        return -1;
    return 0;
}

static int suite_throughput(const bench_opts *o)
{
    char data[PATH_MAX], tiny[PATH_MAX], yml[PATH_MAX];
    if (dataset(o->rows, data, sizeof data) ||
        dataset(1000, tiny, sizeof tiny) ||
        pipeline_file(1, yml, sizeof yml))
        return -1;
    struct stat st;
    double mb = stat(data, &st) == 0 ? (double)st.st_size / 1e6 : 0;
    FILE *fc = open_csv(o, "throughput.csv",
                        "mode,workers,completion_s,input_mb,mb_per_s");
    FILE *fs = open_csv(o, "throughput_series.csv",
                        "mode,workers,t_s,min_mb_s,p25_mb_s,median_mb_s,"
                        "p75_mb_s,max_mb_s");
    FILE *fl = open_csv(o, "latency.csv",
                        "mode,workers,batches,p50_ms,p99_ms,max_ms");
    FILE *md = open_section(o, "throughput");
    if (!fc || !fs || !fl || !md) {
        if (fc)
            fclose(fc);
        if (fs)
            fclose(fs);
        if (fl)
            fclose(fl);
        if (md)
            fclose(md);
        return -1;
    }
    double lat[3][3][2]; /* mode, workers: p50, p99 (NAN: none) */
    static double rates[MAX_SECS][MAX_COMPS];
    static const int wk[3] = {1, 2, 4};
    char modes[256];
    snprintf(modes, sizeof modes, "%s", o->modes);
    double done[3][3];
    const char *mname[3];
    int nm = 0, rc = 0;
    char notrun[256] = "";
    fprintf(md,
            "## Streaming throughput (seed section 6.4)\n\n"
            "DelayedFlights on %llu generated rows (%.0f MB), the source\n"
            "injecting 4 equal parts as fast as it can, through the seed's\n"
            "topology (source -> router -> map -> router -> filter ->\n"
            "router -> reduce -> router -> printer) on this one machine.\n"
            "Each chart stacks, second by second, the minimum, 25th\n"
            "percentile, median, 75th percentile and maximum of the\n"
            "throughput (MB/s received) across all components (source,\n"
            "routers, workers, sink), from `sstream run --metrics`.\n"
            "Raw data: `throughput.csv`, `throughput_series.csv`.\n\n",
            (unsigned long long)o->rows, mb);
    for (char *save = NULL, *m = strtok_r(modes, ",", &save); m && nm < 3;
         m = strtok_r(NULL, ",", &save)) {
        if (!mode_works(m, tiny)) {
            say("security mode %s does not run here: not run", m);
            snprintf(notrun + strlen(notrun), sizeof notrun - strlen(notrun),
                     "%s%s", notrun[0] ? ", " : "", m);
            continue;
        }
        mname[nm] = m;
        for (int w = 0; w < 3; w++) {
            char tag[64], met[PATH_MAX];
            snprintf(tag, sizeof tag, "tp-%s-w%d", m, wk[w]);
            snprintf(met, sizeof met, "out/bench/runs/%s.metrics.jsonl", tag);
            mkdirs("out/bench/runs");
            say("throughput: %s, %d worker(s) per stage ...", m, wk[w]);
            double secs;
            char ldir[PATH_MAX];
            int lok = lat_dir(tag, ldir, sizeof ldir) == 0 &&
                      setenv("SS_LATENCY_DIR", ldir, 1) == 0;
            int st2 = run_pipeline(yml, data, wk[w], m, met, tag, &secs);
            unsetenv("SS_LATENCY_DIR");
            done[nm][w] = st2 == 0 ? secs : NAN;
            long nb = 0;
            double p50 = NAN, p99 = NAN, pmax = NAN;
            if (st2 == 0 && lok &&
                lat_pcts(ldir, &nb, &p50, &p99, &pmax) == 0) {
                say("  latency per batch: p50 %.1f ms, p99 %.1f ms "
                    "(%ld batches)", p50, p99, nb);
                fprintf(fl, "%s,%d,%ld,%.3f,%.3f,%.3f\n", m, wk[w], nb, p50,
                        p99, pmax);
            }
            lat[nm][w][0] = p50;
            lat[nm][w][1] = p99;
            if (st2) {
                say("run failed (status %d): see out/bench/runs/%s.log", st2,
                    tag);
                rc = -1;
                continue;
            }
            say("  done in %.1f s (%.1f MB/s)", secs, mb / secs);
            fprintf(fc, "%s,%d,%.3f,%.1f,%.2f\n", m, wk[w], secs, mb,
                    mb / secs);
            int nc = 0, ns = read_rates(met, rates, &nc);
            double x[MAX_SECS], q[5][MAX_SECS];
            int n = 0;
            double ymax = 0;
            for (int s = 0; s < ns; s++) {
                double v[MAX_COMPS];
                int k = 0;
                for (int c = 0; c < nc; c++)
                    if (!isnan(rates[s][c]))
                        v[k++] = rates[s][c] > 0 ? rates[s][c] : 0;
                if (k == 0)
                    continue;
                qsort(v, (size_t)k, sizeof v[0], cmp_d);
                x[n] = s + 0.5;
                static const double qs[5] = {0, 0.25, 0.5, 0.75, 1};
                for (int j = 0; j < 5; j++)
                    q[j][n] = pctl(v, k, qs[j]);
                ymax = fmax(ymax, q[4][n]);
                fprintf(fs, "%s,%d,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f\n", m, wk[w],
                        x[n], q[0][n], q[1][n], q[2][n], q[3][n], q[4][n]);
                n++;
            }
            char p[PATH_MAX], name[96], title[128], sub[160];
            snprintf(name, sizeof name, "throughput_%s_w%d.svg", m, wk[w]);
            svg_path(o, name, p, sizeof p);
            snprintf(title, sizeof title, "Throughput: %s, %d worker%s per "
                                          "stage", m, wk[w],
                     wk[w] > 1 ? "s" : "");
            snprintf(sub, sizeof sub, "%llu rows, %.0f MB; completed in "
                                      "%.1f s; %d components",
                     (unsigned long long)o->rows, mb, secs, nc);
            svg_plot pl;
            if (n && !svg_open(&pl, p, title, sub, "time (s)",
                               "throughput per component (MB/s)", 0,
                               x[n - 1] + 0.5, 0, ymax * 1.1 + 0.1, 0, 0,
                               NULL, 0)) {
                static const char *const grey[4] = {"#f0f0f0", "#bdbdbd",
                                                    "#737373", "#252525"};
                static const char *const lab[4] = {
                    "max (top) .. 75th", "75th .. median", "median .. 25th",
                    "25th .. min"};
                for (int j = 3; j >= 0; j--)
                    svg_band(&pl, n, x, q[j], q[j + 1], grey[3 - j]);
                svg_line(&pl, n, x, q[2], "#d62728", 0, 0);
                for (int j = 0; j < 4; j++)
                    svg_legend(&pl, lab[j], grey[j], 1);
                svg_legend(&pl, "median", "#d62728", 0);
                svg_close(&pl);
            }
            fprintf(md, "![%s](%s%s)\n", title, o->img, name);
        }
        nm++;
    }
    fprintf(md, "\n| mode | 1 worker/stage | 2 workers/stage | 4 "
                "workers/stage |\n|---|---:|---:|---:|\n");
    static const char *const seedrow[3] = {"420 s", "250 s", "(no speed-up)"};
    static const char *const seedenc[3] = {"795 s", "430 s", "300 s"};
    for (int i = 0; i < nm; i++) {
        fprintf(md, "| %s (this machine) |", mname[i]);
        for (int w = 0; w < 3; w++)
            if (isnan(done[i][w]))
                fprintf(md, " failed |");
            else
                fprintf(md, " %.1f s (%.1f MB/s) |", done[i][w],
                        mb / done[i][w]);
        fprintf(md, "\n");
    }
    fprintf(md, "| plain (seed, 28M rows, 2 hosts) | %s | %s | %s |\n"
                "| encrypted (seed) | %s | %s | %s |\n"
                "| enclave (seed) | longer, see its Figure 6.3 | | |\n",
            seedrow[0], seedrow[1], seedrow[2], seedenc[0], seedenc[1],
            seedenc[2]);
    fprintf(md, "\nEnd-to-end latency per batch, from the batch leaving "
                "the source (its\nrows read) to its output reaching the sink "
                "(`SS_LATENCY_DIR`, see\ndocs/PERFORMANCE.md), at full speed: "
                "p50 / p99. Raw data: `latency.csv`.\n\n"
                "| mode | 1 worker/stage | 2 workers/stage | 4 workers/stage "
                "|\n|---|---:|---:|---:|\n");
    for (int i = 0; i < nm; i++) {
        fprintf(md, "| %s |", mname[i]);
        for (int w = 0; w < 3; w++)
            if (isnan(lat[i][w][0]))
                fprintf(md, " - |");
            else
                fprintf(md, " %.0f / %.0f ms |", lat[i][w][0], lat[i][w][1]);
        fprintf(md, "\n");
    }
    if (notrun[0])
        fprintf(md, "\nNot run (the mode is refused by `sstream run` on "
                    "this build): %s.\n", notrun);
    fprintf(md,
            "\nThis machine has %ld cores for the %d+ processes of a\n"
            "pipeline (source, 4 routers, the workers, the sink), so extra\n"
            "workers share the same two cores rather than add new ones.\n\n",
            sysconf(_SC_NPROCESSORS_ONLN), 9);
    fclose(fc);
    fclose(fs);
    fclose(fl);
    close_section(md);
    return rc;
}

/* ---- scalability ----------------------------------------------------- */

static int scal_series(const bench_opts *o, FILE *f, const char *exp,
                       const char *data, const int *xs, int n, double *mean,
                       double *sd)
{
    for (int i = 0; i < n; i++) {
        char yml[PATH_MAX];
        int every = !strcmp(exp, "all");
        if (pipeline_file(every ? 1 : xs[i], yml, sizeof yml))
            return -1;
        double t[64];
        for (int r = 0; r < o->reps; r++) {
            char tag[64];
            snprintf(tag, sizeof tag, "scal-%s-%d-%d", exp, xs[i], r + 1);
            int st = run_pipeline(yml, data, every ? xs[i] : 0, "plain",
                                  NULL, tag, &t[r]);
            if (st) {
                say("run failed (status %d): see out/bench/runs/%s.log", st,
                    tag);
                return -1;
            }
            fprintf(f, "%s,%d,%d,%.3f\n", exp, xs[i], r + 1, t[r]);
            fflush(f);
        }
        mean_sd(t, o->reps, &mean[i], &sd[i]);
        say("scalability %s %d: %.2f ± %.2f s", exp, xs[i], mean[i], sd[i]);
    }
    return 0;
}

static void scal_chart(const bench_opts *o, const char *file,
                       const char *title, const char *xlabel, const int *xs,
                       int n, const double *mean, const double *sd)
{
    double x[32], ymax = 0;
    for (int i = 0; i < n; i++) {
        x[i] = xs[i];
        ymax = fmax(ymax, mean[i] + sd[i]);
    }
    char p[PATH_MAX], sub[160];
    svg_path(o, file, p, sizeof p);
    snprintf(sub, sizeof sub, "%llu rows, plain mode; mean and standard "
                              "deviation of %d runs",
             (unsigned long long)o->scal_rows, o->reps);
    svg_plot pl;
    if (svg_open(&pl, p, title, sub, xlabel, "completion time (s)", 0,
                 xs[n - 1] + 1, 0, ymax * 1.15, 0, 0, NULL, 0))
        return;
    svg_line(&pl, n, x, mean, "#1f77b4", 0, 1);
    svg_errbars(&pl, n, x, mean, sd, "#1f77b4");
    svg_legend(&pl, "completion time", "#1f77b4", 0);
    char note[64];
    snprintf(note, sizeof note, "machine: %ld cores",
             sysconf(_SC_NPROCESSORS_ONLN));
    svg_note(&pl, note);
    svg_close(&pl);
}

static int suite_scalability(const bench_opts *o)
{
    char data[PATH_MAX];
    if (dataset(o->scal_rows, data, sizeof data))
        return -1;
    FILE *f = open_csv(o, "scalability.csv", "experiment,workers,run,seconds");
    FILE *md = open_section(o, "scalability");
    if (!f || !md) {
        if (f)
            fclose(f);
        if (md)
            fclose(md);
        return -1;
    }
    int all[4] = {1, 2, 3, 4}, nall = o->quick ? 2 : 4;
    int map[16] = {0}, nmap = 0;
    int maxm = o->quick ? 4 : 16;
    for (int k = 1; k <= maxm; k = k < 4 ? k + 1 : k + 2)
        map[nmap++] = k;
    if (map[nmap - 1] != maxm)
        map[nmap++] = maxm;
    double am[4], as[4], mm[16], ms[16];
    int rc = scal_series(o, f, "all", data, all, nall, am, as);
    if (!rc)
        rc = scal_series(o, f, "mappers", data, map, nmap, mm, ms);
    fclose(f);
    if (rc) {
        fclose(md);
        return rc;
    }
    scal_chart(o, "scalability_all.svg",
               "Scalability: workers in every stage",
               "workers per stage (map, filter, reduce)", all, nall, am, as);
    scal_chart(o, "scalability_mappers.svg",
               "Scalability: mappers (1 filter, 1 reduce)",
               "map workers", map, nmap, mm, ms);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(md,
            "## Workers' scalability (seed section 6.5)\n\n"
            "Completion time of DelayedFlights on %llu rows (plain mode;\n"
            "mean and standard deviation of %d runs per point), first with\n"
            "the same number of workers in every stage, then with more map\n"
            "workers while filter and reduce keep one each. Raw data:\n"
            "`scalability.csv`.\n\n"
            "**This machine has %ld cores.** A pipeline with one worker per\n"
            "stage is already 9 processes (source, 4 routers, 3 workers,\n"
            "sink), so it can use both cores from the start: adding\n"
            "workers adds processes competing for the same two cores, and\n"
            "the curves flatten (or rise, from the extra scheduling,\n"
            "routing and memory traffic) as soon as the busiest stage is\n"
            "no longer the single bottleneck. The seed's curves flatten\n"
            "for the same reason at 16 cores (2 hosts x 8): there, 4\n"
            "workers per stage made 20 containers.\n\n"
            "![all](%sscalability_all.svg)\n\n"
            "| workers per stage |",
            (unsigned long long)o->scal_rows, o->reps, cores, o->img);
    for (int i = 0; i < nall; i++)
        fprintf(md, " %d |", all[i]);
    fprintf(md, "\n|---|");
    for (int i = 0; i < nall; i++)
        fprintf(md, "---:|");
    fprintf(md, "\n| completion time |");
    for (int i = 0; i < nall; i++)
        fprintf(md, " %.2f ± %.2f s |", am[i], as[i]);
    fprintf(md, "\n| speed-up vs 1 |");
    for (int i = 0; i < nall; i++)
        fprintf(md, " %.2fx |", am[0] / am[i]);
    fprintf(md, "\n\n![mappers](%sscalability_mappers.svg)\n\n| mappers |",
            o->img);
    for (int i = 0; i < nmap; i++)
        fprintf(md, " %d |", map[i]);
    fprintf(md, "\n|---|");
    for (int i = 0; i < nmap; i++)
        fprintf(md, "---:|");
    fprintf(md, "\n| completion time |");
    for (int i = 0; i < nmap; i++)
        fprintf(md, " %.2f ± %.2f s |", mm[i], ms[i]);
    fprintf(md, "\n| speed-up vs 1 |");
    for (int i = 0; i < nmap; i++)
        fprintf(md, " %.2fx |", mm[0] / mm[i]);
    int ba = 0, bm = 0;
    for (int i = 1; i < nall; i++)
        if (am[i] < am[ba])
            ba = i;
    for (int i = 1; i < nmap; i++)
        if (mm[i] < mm[bm])
            bm = i;
    fprintf(md,
            "\n\nOn this run the fastest configurations are %d worker%s per "
            "stage\n(%.2f s, %.2fx the time with 1) and %d mapper%s (%.2f s, "
            "%.2fx);\nbeyond them the curves are flat within noise or "
            "rise: the two\ncores are saturated.",
            all[ba], all[ba] > 1 ? "s" : "", am[ba], am[ba] / am[0], map[bm],
            map[bm] > 1 ? "s" : "", mm[bm], mm[bm] / mm[0]);
    fprintf(md, "\n\nThe seed (Figures 6.4, 6.5) reports ideal speed-up\n"
                "from 1 to 2 workers per stage and from 1 mapper up to as\n"
                "many containers as physical cores, then none.\n\n");
    close_section(md);
    return 0;
}

/* ---- the report ------------------------------------------------------ */

static void machine(FILE *md)
{
    char cpu[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(cpu, sizeof cpu, "%s", c + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
            }
            break;
        }
    if (f)
        fclose(f);
    long memkb = 0;
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %ld kB", &memkb) == 1)
            break;
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(md,
            "| | |\n|---|---|\n| date | %s |\n| cores (nproc) | %ld |\n"
            "| CPU | %s |\n| memory | %.1f GiB |\n| kernel | %s %s %s |\n"
            "| SecureStreams | %s |\n\n",
            date, sysconf(_SC_NPROCESSORS_ONLN), cpu,
            (double)memkb / 1048576.0, u.sysname, u.release, u.machine,
            SS_VERSION_STRING);
}

static void append_file(FILE *out, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, out);
    fclose(f);
}

/* DIR/commands.txt: one line per suite run, "SUITE<TAB>DATE<TAB>COMMAND",
 * the last run of each suite winning (the report lists them). */
static void record_command(const bench_opts *o, const char *suite)
{
    char path[PATH_MAX], line[1024], keep[64][1100];
    int n = 0;
    snprintf(path, sizeof path, "%s/commands.txt", o->out);
    FILE *f = fopen(path, "r");
    size_t sl = strlen(suite);
    while (f && n < 64 && fgets(line, sizeof line, f))
        if (!(strncmp(line, suite, sl) == 0 && line[sl] == '\t'))
            snprintf(keep[n++], sizeof keep[0], "%s", line);
    if (f)
        fclose(f);
    if (!(f = fopen(path, "w")))
        return;
    for (int i = 0; i < n; i++)
        fputs(keep[i], f);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, "%s\t%s\t%s\n", suite, date, o->cmdline);
    fclose(f);
}

static int write_report(const bench_opts *o)
{
    char cmdfile[PATH_MAX], line[2048];
    snprintf(cmdfile, sizeof cmdfile, "%s/commands.txt", o->out);
    FILE *md = fopen(o->report, "w");
    if (!md) {
        say("cannot write %s: %s", o->report, strerror(errno));
        return -1;
    }
    fprintf(md,
            "# Evaluation\n\n"
            "This reproduces the evaluation of the SecureStreams\n"
            "deliverable D4.3 (chapter 6) with this implementation, on one\n"
            "machine, with the sandbox enclave backend (emulated isolation:\n"
            "a seccomp-confined process, no SGX hardware). The seed used 2\n"
            "hosts with an Intel i7-6700 (8 threads) and 8 GiB each, Docker\n"
            "Swarm and SGX SDK 1.6; its numbers are quoted beside ours but\n"
            "the two setups differ (one machine here, no EPC, no network),\n"
            "so compare shapes and ratios, not absolute times.\n\n"
            "Other work may have been running on the machine (it is\n"
            "shared): see the load noted in each section.\n\n"
            "Produced by:\n\n");
    FILE *cf = fopen(cmdfile, "r");
    while (cf && fgets(line, sizeof line, cf)) {
        line[strcspn(line, "\n")] = '\0';
        char *d = strchr(line, '\t'), *c = d ? strchr(d + 1, '\t') : NULL;
        if (!c)
            continue;
        *d = *c = '\0';
        fprintf(md, "- %s: `%s` (%s)\n", line, c + 1, d + 1);
    }
    if (cf)
        fclose(cf);
    fprintf(md, "\n## Machine\n\n");
    machine(md);
    static const char *const secs[] = {"micro", "throughput", "scalability"};
    for (size_t i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/section-%s.md", o->out, secs[i]);
        if (access(p, R_OK) == 0)
            append_file(md, p);
        else
            fprintf(md, "## %s\n\nNot run yet: `sstream bench %s`.\n\n",
                    secs[i], secs[i]);
    }
    fprintf(md,
            "## Reproducing\n\n"
            "    make\n"
            "    bin/sstream bench all            # full: ~40 min on 2 "
            "cores\n"
            "    bin/sstream bench all --quick    # CI size, < 3 minutes\n"
            "    bin/sstream bench micro          # one suite at a time\n\n"
            "Datasets are generated once into `out/bench/`; every run's log\n"
            "and metrics are in `out/bench/runs/`.\n");
    return fclose(md) ? -1 : 0;
}

/* ---- entry ----------------------------------------------------------- */

/* See cmds.h. */
int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    const char *suite = NULL;
    uint64_t rows = 0, srows = 0, reps = 0, creps = 0;
    size_t cl = (size_t)snprintf(o.cmdline, sizeof o.cmdline, "sstream");
    for (int i = 0; i < argc && cl < sizeof o.cmdline; i++)
        cl += (size_t)snprintf(o.cmdline + cl, sizeof o.cmdline - cl, " %s",
                               argv[i]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            o.quick = 1;
        } else if (a[0] == '-' &&
                   strcmp(a, "--rows") && strcmp(a, "--scal-rows") &&
                   strcmp(a, "--reps") && strcmp(a, "--copy-reps") &&
                   strcmp(a, "--modes") && strcmp(a, "--out") &&
                   strcmp(a, "--report")) {
            return bad("unknown option", a);
        } else if (a[0] == '-' && !v) {
            return bad("missing value for", a);
        } else if (!strcmp(a, "--rows")) {
            if (ss_parse_u64(v, 100, 1000000000, 1, &rows))
                return bad("--rows wants 100..1G, not", v);
            i++;
        } else if (!strcmp(a, "--scal-rows")) {
            if (ss_parse_u64(v, 100, 1000000000, 1, &srows))
                return bad("--scal-rows wants 100..1G, not", v);
            i++;
        } else if (!strcmp(a, "--reps")) {
            if (ss_parse_u64(v, 1, 64, 0, &reps))
                return bad("--reps wants 1..64, not", v);
            i++;
        } else if (!strcmp(a, "--copy-reps")) {
            if (ss_parse_u64(v, 1, 64, 0, &creps))
                return bad("--copy-reps wants 1..64, not", v);
            i++;
        } else if (!strcmp(a, "--modes")) {
            o.modes = v, i++;
        } else if (!strcmp(a, "--out")) {
            o.out = v, i++;
        } else if (!strcmp(a, "--report")) {
            o.report = v, i++;
        } else if (a[0] == '-') {
            return bad("unknown option", a);
        } else if (!suite) {
            suite = a;
        } else {
            return bad("unexpected argument", a);
        }
    }
    if (!suite || (strcmp(suite, "micro") && strcmp(suite, "throughput") &&
                   strcmp(suite, "scalability") && strcmp(suite, "all") &&
                   strcmp(suite, "report")))
        return bad("the suite must be micro, throughput, scalability, all "
                   "or report, not", suite);
    o.rows = rows ? rows : o.quick ? 400000 : 28000000;
    o.scal_rows = srows ? srows : o.quick ? 100000 : 2000000;
    o.reps = reps ? (int)reps : o.quick ? 2 : 5;
    o.copy_reps = creps ? (int)creps : o.quick ? 2 : 20;
    o.lua_reps_small = o.quick ? 2 : 5;
    o.lua_reps_large = o.quick ? 2 : 2;
    if (!o.modes)
        o.modes = "plain,encrypted,enclave";
    char rep[PATH_MAX];
    if (!o.out) {
        o.out = "docs/eval";
        o.report = o.report ? o.report : "docs/EVALUATION.md";
        o.img = "eval/";
    } else {
        if (!o.report) {
            snprintf(rep, sizeof rep, "%s/EVALUATION.md", o.out);
            o.report = rep;
        }
        o.img = "";
    }
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "sstream bench: cannot find this program\n");
        return 1;
    }
    self_exe[n] = '\0';
    if (sodium_init() < 0 || mkdirs(o.out)) {
        fprintf(stderr, "sstream bench: cannot create %s: %s\n", o.out,
                strerror(errno));
        return 1;
    }
    double t0 = now_s();
    int all = !strcmp(suite, "all"), rc = 0;
    if (all || !strcmp(suite, "micro")) {
        rc |= suite_micro(&o) ? 1 : 0;
        record_command(&o, "micro");
    }
    if (all || !strcmp(suite, "throughput")) {
        rc |= suite_throughput(&o) ? 1 : 0;
        record_command(&o, "throughput");
    }
    if (all || !strcmp(suite, "scalability")) {
        rc |= suite_scalability(&o) ? 1 : 0;
        record_command(&o, "scalability");
    }
    if (write_report(&o))
        rc = 1;
    say("%s in %.0f s; report %s, data and charts in %s",
        rc ? "FAILED" : "done", now_s() - t0, o.report, o.out);
    return rc;
}
