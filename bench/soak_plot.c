/*
 * soak_plot.c - draws what bench/soak.sh recorded: each component's RSS
 * and each router's queue depth over time, as SVG (src/cli/bench_svg.c).
 *
 *   soak_plot OUT.svg TITLE DIR
 *
 * DIR is one scenario's folder of bench/soak.sh: DIR/metrics.jsonl (the
 * run's --metrics: one JSON object a line with "t", "name", "role",
 * "rss_kb" and "queue") and DIR/supervisor-rss ("SECONDS KB" lines). Two
 * charts: OUT.svg, the RSS (MB) of every component and of the supervisor
 * (dashed), and OUT-queue.svg, the queue depth (batches) of every router.
 * A component started again (another pid under the same name) continues
 * its line. Exit 0, 1 if nothing could be read or written.
 */
#include "cli/bench_svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXC 16       /* components */
#define MAXN 1000000  /* samples per component */

typedef struct series {
    char name[64];
    int router;
    size_t n, cap;
    double *t, *rss, *q;
} series;

static series comp[MAXC];
static int ncomp;

/* The text value of "key":"..." in line, copied to out (cap bytes);
 * 0 if found. */
static int str_field(const char *line, const char *key, char *out,
                     size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(line, pat);
    if (!s)
        return -1;
    s += strlen(pat);
    size_t i = 0;
    while (s[i] && s[i] != '"' && i + 1 < cap) {
        out[i] = s[i];
        i++;
    }
    out[i] = 0;
    return 0;
}

/* The number of "key":N in line, or NAN. */
static double num_field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *s = strstr(line, pat);
    if (!s)
        return NAN;
    char *end;
    double v = strtod(s + strlen(pat), &end);
    return end == s + strlen(pat) ? NAN : v;
}

static series *find(const char *name, int router)
{
    for (int i = 0; i < ncomp; i++)
        if (strcmp(comp[i].name, name) == 0)
            return &comp[i];
    if (ncomp == MAXC)
        return NULL;
    series *c = &comp[ncomp++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->router = router;
    return c;
}

static int push(series *c, double t, double rss, double q)
{
    if (c->n == c->cap) {
        if (c->cap >= MAXN)
            return -1;
        size_t cap = c->cap ? 2 * c->cap : 1024;
        double *a = realloc(c->t, cap * sizeof *a);
        if (!a)
            return -1;
        c->t = a;
        if (!(a = realloc(c->rss, cap * sizeof *a)))
            return -1;
        c->rss = a;
        if (!(a = realloc(c->q, cap * sizeof *a)))
            return -1;
        c->q = a;
        c->cap = cap;
    }
    c->t[c->n] = t;
    c->rss[c->n] = rss;
    c->q[c->n] = q;
    c->n++;
    return 0;
}

static int read_metrics(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "soak_plot: cannot read %s\n", path);
        return -1;
    }
    char line[8192], name[64], role[32];
    while (fgets(line, sizeof line, f)) {
        double t = num_field(line, "t"), rss = num_field(line, "rss_kb");
        if (str_field(line, "name", name, sizeof name) || isnan(t) ||
            isnan(rss) || rss <= 0)
            continue;
        if (str_field(line, "role", role, sizeof role))
            role[0] = 0;
        series *c = find(name, strcmp(role, "router") == 0);
        if (c && push(c, t, rss / 1024, num_field(line, "queue"))) {
            fclose(f);
            fprintf(stderr, "soak_plot: too many samples in %s\n", path);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static void read_supervisor(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    series *c = find("supervisor", 0);
    double t, kb;
    while (c && fscanf(f, "%lf %lf", &t, &kb) == 2)
        if (push(c, t, kb / 1024, NAN))
            break;
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: soak_plot OUT.svg TITLE SCENARIO_DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", argv[3]);
    if (read_metrics(path))
        return 1;
    snprintf(path, sizeof path, "%s/supervisor-rss", argv[3]);
    read_supervisor(path);
    double tmax = 1, rmax = 1, qmax = 1;
    for (int i = 0; i < ncomp; i++)
        for (size_t k = 0; k < comp[i].n; k++) {
            tmax = fmax(tmax, comp[i].t[k]);
            rmax = fmax(rmax, comp[i].rss[k]);
            if (comp[i].router && !isnan(comp[i].q[k]))
                qmax = fmax(qmax, comp[i].q[k]);
        }
    if (!ncomp) {
        fprintf(stderr, "soak_plot: no samples in %s\n", argv[3]);
        return 1;
    }
    static const char *const col[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                      "#d62728", "#9467bd", "#8c564b",
                                      "#e377c2", "#7f7f7f", "#bcbd22",
                                      "#17becf"};
    /* two files: OUT.svg (RSS) and OUT with -queue before .svg */
    char qpath[4096];
    const char *dot = strrchr(argv[1], '.');
    int stem = dot ? (int)(dot - argv[1]) : (int)strlen(argv[1]);
    snprintf(qpath, sizeof qpath, "%.*s-queue.svg", stem, argv[1]);
    char title[256];
    svg_plot pl;
    snprintf(title, sizeof title, "%s: resident memory per process",
             argv[2]);
    if (svg_open(&pl, argv[1], title, "one sample a second (supervisor: 5 s)",
                 "time (s)", "RSS (MB)", 0, tmax, 0, ceil(rmax / 5) * 5 + 5,
                 0, 0, NULL, 0))
        return 1;
    for (int i = 0; i < ncomp; i++) {
        svg_line(&pl, (int)comp[i].n, comp[i].t, comp[i].rss,
                 col[i % 10], strcmp(comp[i].name, "supervisor") == 0, 0);
        svg_legend(&pl, comp[i].name, col[i % 10], 0);
    }
    if (svg_close(&pl))
        return 1;
    snprintf(title, sizeof title, "%s: router queue depth", argv[2]);
    if (svg_open(&pl, qpath, title, "batches waiting for a worker",
                 "time (s)", "queue depth (batches)", 0, tmax, 0,
                 ceil(qmax / 10) * 10 + 10, 0, 0, NULL, 0))
        return 1;
    for (int i = 0; i < ncomp; i++)
        if (comp[i].router) {
            svg_line(&pl, (int)comp[i].n, comp[i].t, comp[i].q, col[i % 10],
                     0, 0);
            svg_legend(&pl, comp[i].name, col[i % 10], 0);
        }
    if (svg_close(&pl))
        return 1;
    for (int i = 0; i < ncomp; i++) {
        free(comp[i].t);
        free(comp[i].rss);
        free(comp[i].q);
    }
    printf("soak_plot: wrote %s and %s\n", argv[1], qpath);
    return 0;
}
