/*
 * stage_bench.c - the DelayedFlights stages in one process, no transport:
 * how fast can the Lua side go? Reads a CSV file, cuts it into 64 KiB
 * batches of line events, and times map, filter and reduce (each fed the
 * previous stage's output) through ss_stage_process.
 *
 *   build/bench/stage_bench flights.csv [examples/delayed-flights]
 *
 * Under callgrind, each stage's processing (not its script's loading) is
 * dumped as its own part, named after the stage, so that instruction
 * counts per stage need no quiet machine:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.%p \
 *       build/bench/stage_bench f.csv
 *   grep -H -e '^desc: Trigger' -e '^summary' cg.*
 *
 * With bin/sstream-luajit's build (build-luajit/bench/stage_bench) the
 * stages run LuaJIT's interpreter, as every metered stage and every
 * enclave does; SS_LUAJIT=on keeps its JIT on (a measuring switch).
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "lua/ss_stage.h"
#include "wire/ss_batch.h"
#include "wire/ss_msgpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

typedef struct batch {
    ss_hdr h;
    ss_buf b;
} batch;

static ss_stage *load(const char *dir, const char *script)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, script);
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_path = path;
    o.name = script;
    o.stage = script;
    o.host_errors = 1;
    ss_stage *s;
    char err[512];
    if (ss_stage_new(&o, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return s;
}

/* Runs every batch of in through s; the outputs become out. */
static double run(ss_stage *s, batch *in, size_t n, batch *out,
                  uint64_t *events)
{
    ss_stage_out o;
    ss_stage_out_init(&o);
    uint64_t t0 = ss_now_ns();
    for (size_t i = 0; i < n; i++) {
        ss_stage_out_reset(&o);
        ss_stage_process(s, &in[i].h, in[i].b.data, in[i].b.len, &o);
        *events += in[i].h.count;
        if (out) {
            out[i].h = in[i].h;
            out[i].h.count = o.count;
            out[i].h.len = (uint32_t)o.events.len;
            ss_buf_init(&out[i].b);
            ss_buf_append(&out[i].b, o.events.data, o.events.len);
        }
    }
    double secs = (double)(ss_now_ns() - t0) / 1e9;
    ss_stage_out_release(&o);
    return secs;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stage_bench FILE.csv [SCRIPT_DIR]\n");
        return 2;
    }
    const char *dir = argc > 2 ? argv[2] : "examples/delayed-flights";
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    size_t cap = 1024, n = 0;
    batch *in = calloc(cap, sizeof *in);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    uint64_t bytes = 0;
    int first = 1;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (first) { /* header */
            first = 0;
            continue;
        }
        bytes += (uint64_t)len;
        if (line[len - 1] == '\n')
            len--;
        if (n == 0 || in[n - 1].b.len + (size_t)len + 5 > 65536) {
            if (n == cap) {
                cap *= 2;
                in = realloc(in, cap * sizeof *in);
            }
            memset(&in[n], 0, sizeof in[n]);
            in[n].h.kind = SS_MSG_DATA;
            in[n].h.seq = n;
            n++;
        }
        ss_mp_put_str(&in[n - 1].b, line, (size_t)len);
        in[n - 1].h.count++;
        in[n - 1].h.len = (uint32_t)in[n - 1].b.len;
    }
    fclose(f);
    free(line);
    batch *mapped = calloc(n, sizeof *mapped);
    batch *kept = calloc(n, sizeof *kept);
    const char *names[3] = {"map-csv-to-event.lua", "filter-event.lua",
                            "reduce-events.lua"};
    batch *ins[3] = {in, mapped, kept};
    batch *outs[3] = {mapped, kept, NULL};
    double total = 0;
    printf("%-22s %12s %10s %12s\n", "stage", "events", "seconds",
           "events/s");
    for (int k = 0; k < 3; k++) {
        ss_stage *s = load(dir, names[k]);
        uint64_t ev = 0;
        CALLGRIND_ZERO_STATS;
        double secs = run(s, ins[k], n, outs[k], &ev);
        CALLGRIND_DUMP_STATS_AT(names[k]);
        total += secs;
        printf("%-22s %12llu %10.3f %12.0f\n", names[k],
               (unsigned long long)ev, secs, (double)ev / secs);
        ss_stage_destroy(&s);
    }
    printf("all three: %.3f s for %.1f MB: %.1f MB/s of input on one "
           "core\n", total, (double)bytes / 1e6, (double)bytes / 1e6 / total);
    return 0;
}
