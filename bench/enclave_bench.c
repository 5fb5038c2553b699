/*
 * enclave_bench.c - round-trip cost of the sandbox enclave channel.
 *
 *   build/bench/enclave_bench [SSTREAM_BINARY] [ITERATIONS]
 *
 * Starts `sstream enclave --echo` (default binary: $SSTREAM_BIN or
 * bin/sstream) and measures, host -> enclave -> host:
 *   - an empty round trip (ping),
 *   - a 64 KiB batch in and out (echo: copied in, copied into the child's
 *     private memory, copied out, copied back),
 * first with the default busy-wait before sleeping (back-to-back batches),
 * then with the waits going straight to the futex (an idle enclave woken
 * up). Prints median, 99th percentile and mean in microseconds. The host
 * has a tick set, as a worker does (ss_enclave_set_tick: its heartbeats
 * while a long batch runs); the bench counts how often it ran, which a
 * round trip that answers within 10 ms never pays for.
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "enclave/ss_enclave.h"
#include "securestreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)ns[i];
    printf("  %-34s median %7.2f us   p99 %7.2f us   mean %7.2f us\n",
           what, ns[n / 2] / 1000.0, ns[(n * 99) / 100] / 1000.0,
           sum / n / 1000.0);
}

/* what a worker's tick would do; here it only counts */
static void count_tick(void *arg)
{
    ++*(unsigned long *)arg;
}

static int run(const char *prog, unsigned spin_us, int iters)
{
    ss_enclave_opts o;
    memset(&o, 0, sizeof o);
    o.backend = "sandbox";
    o.name = "bench-1";
    o.stage = "bench";
    o.echo = 1;
    o.program = prog;
    o.spin_us = spin_us;
    char err[1024];
    ss_enclave *e;
    int rc = ss_enclave_open(&o, &e, err, sizeof err);
    if (rc) {
        fprintf(stderr, "enclave_bench: %s\n", err);
        return 1;
    }
    unsigned long ticks = 0;
    ss_enclave_set_tick(e, count_tick, &ticks);
    uint64_t *ns = calloc((size_t)iters, sizeof *ns);
    size_t big = 64 * 1024;
    char *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (char)(i * 31);
    ss_buf out = SS_BUF_INIT;
    printf("sandbox enclave, spin %u us before sleeping:\n", spin_us);
    for (int i = 0; i < 1000 && !rc; i++)
        rc = ss_enclave_ping(e, err, sizeof err);
    for (int i = 0; i < iters && !rc; i++) {
        uint64_t t = ss_now_ns();
        rc = ss_enclave_ping(e, err, sizeof err);
        ns[i] = ss_now_ns() - t;
    }
    if (!rc)
        report("empty round trip", ns, iters);
    for (int i = 0; i < 200 && !rc; i++)
        rc = ss_enclave_echo(e, buf, big, &out, err, sizeof err);
    for (int i = 0; i < iters && !rc; i++) {
        uint64_t t = ss_now_ns();
        rc = ss_enclave_echo(e, buf, big, &out, err, sizeof err);
        ns[i] = ss_now_ns() - t;
    }
    if (!rc) {
        report("64 KiB batch in and out", ns, iters);
        if (out.len != big || memcmp(out.data, buf, big) != 0) {
            fprintf(stderr, "enclave_bench: echo corrupted the batch\n");
            rc = SS_EPEER;
        }
        printf("  host ticks while waiting: %lu in %d round trips (none "
               "unless a wait outlasts 10 ms)\n",
               ticks, 2 * iters + 1200);
    }
    if (rc)
        fprintf(stderr, "enclave_bench: %s\n", err);
    ss_buf_release(&out);
    free(buf);
    free(ns);
    ss_enclave_close(&e);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *prog = argc > 1 ? argv[1] : ss_env("SSTREAM_BIN",
                                                  "bin/sstream");
    int iters = argc > 2 ? atoi(argv[2]) : 20000;
    if (iters < 100)
        iters = 100;
    int rc = run(prog, 50, iters);
    if (!rc)
        rc = run(prog, 1, iters / 4);
    return rc;
}
