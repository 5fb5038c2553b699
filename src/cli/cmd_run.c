/*
 * cmd_run.c - `sstream run pipeline.yml`: runs a whole pipeline on this
 * machine (ss_pipeline for the file, ss_supervisor for the processes).
 */
#include "cli/cmds.h"
#include "core/ss_util.h"
#include "run/ss_pipeline.h"
#include "run/ss_supervisor.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sstream run PIPELINE.yml [options]\n"
        "\n"
        "Runs a whole pipeline (source, routers, stage workers, sink) as\n"
        "processes of this machine, shows its progress and a summary.\n"
        "The file format is described in docs/PIPELINE.md.\n"
        "\n"
        "options:\n"
        "  --data FILE         input file (overrides DATA_FILE and the "
        "file's source.file)\n"
        "  --workers N         workers of every stage (1-64)\n"
        "  --security MODE     plain, encrypted or enclave\n"
        "  --batch-size B      max bytes per batch (e.g. 65536, 64K, 1M)\n"
        "  --output-dir DIR    logs, rejects.jsonl, output (default "
        "out/<name>)\n"
        "  --metrics FILE      write every counters sample as a JSON line\n"
        "  --metrics-port N    serve every component's counters in the\n"
        "                      Prometheus format on 127.0.0.1:N/metrics\n"
        "  --timeout S         stop and exit 124 after S seconds\n"
        "  --tcp               loopback tcp endpoints instead of ipc\n"
        "  --no-progress       no live progress line\n"
        "  --quiet             errors only\n"
        "  --help              this help\n"
        "\n"
        "exit status: 0 done, 1 failed, 2 bad usage, 124 timed out,\n"
        "130 interrupted.\n");
}

/* Options as given on the command line. */
typedef struct run_args {
    const char *file;
    ss_pipeline_overrides ov;
    ss_run_opts ro;
} run_args;

/* Parses argv into a. Returns 0, 1 for --help, or 2 for bad usage
 * (message printed). */
static int parse_args(int argc, char **argv, run_args *a)
{
    enum { O_DATA = 256, O_WORKERS, O_SECURITY, O_BATCH, O_OUTDIR,
           O_QUIET, O_NOPROG, O_METRICS, O_TIMEOUT, O_TCP, O_HELP };
    static const struct option opts[] = {
        {"data", required_argument, NULL, O_DATA},
        {"workers", required_argument, NULL, O_WORKERS},
        {"security", required_argument, NULL, O_SECURITY},
        {"batch-size", required_argument, NULL, O_BATCH},
        {"output-dir", required_argument, NULL, O_OUTDIR},
        {"quiet", no_argument, NULL, O_QUIET},
        {"no-progress", no_argument, NULL, O_NOPROG},
        {"metrics", required_argument, NULL, O_METRICS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"tcp", no_argument, NULL, O_TCP},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA:
            a->ov.data = optarg;
            break;
        case O_WORKERS:
            if (ss_parse_u64(optarg, 1, SS_PIPELINE_MAX_WORKERS, 0, &v)) {
                fprintf(stderr, "sstream run: --workers must be a number "
                                "from 1 to %d\n", SS_PIPELINE_MAX_WORKERS);
                return 2;
            }
            a->ov.workers = (int)v;
            break;
        case O_SECURITY:
            if (!ss_pipeline_security_valid(optarg)) {
                fprintf(stderr, "sstream run: --security must be plain, "
                                "encrypted or enclave\n");
                return 2;
            }
            a->ov.security = optarg;
            break;
        case O_BATCH:
            if (ss_parse_u64(optarg, 1, SS_BATCH_MAX_SIZE, 1, &v)) {
                fprintf(stderr, "sstream run: --batch-size must be a size "
                                "from 1 to 64M (such as 65536 or 64K)\n");
                return 2;
            }
            a->ov.batch_size = v;
            break;
        case O_OUTDIR:
            a->ro.output_dir = optarg;
            break;
        case O_QUIET:
            a->ro.quiet = 1;
            break;
        case O_NOPROG:
            a->ro.no_progress = 1;
            break;
        case O_METRICS:
            a->ro.metrics = optarg;
            break;
        case O_TIMEOUT: {
            char *end;
            double t = strtod(optarg, &end);
            if (end == optarg || *end || !(t > 0) || t > 1e7) {
                fprintf(stderr, "sstream run: --timeout must be a number "
                                "of seconds above 0\n");
                return 2;
            }
            a->ro.timeout_s = t;
            break;
        }
        case O_TCP:
            a->ro.tcp = 1;
            break;
        case O_HELP:
        case 'h':
            return 1;
        case ':':
            fprintf(stderr, "sstream run: %s needs a value\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "sstream run: unknown option '%s'; see "
                            "'sstream run --help'\n", argv[optind - 1]);
            return 2;
        }
    }
    for (; optind < argc; optind++) {
        if (a->file) {
            fprintf(stderr, "sstream run: unexpected argument '%s'\n",
                    argv[optind]);
            return 2;
        }
        a->file = argv[optind];
    }
    if (!a->file) {
        fprintf(stderr, "sstream run: no pipeline file; see 'sstream run "
                        "--help'\n");
        return 2;
    }
    return 0;
}

/* See cmds.h. */
int cmd_run(int argc, char **argv)
{
    run_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc)
        return rc;
    a.ov.env_data = ss_env("DATA_FILE", NULL);

    char err[1024];
    ss_pipeline *p = NULL;
    if (ss_pipeline_load(a.file, &p, err, sizeof err) ||
        ss_pipeline_apply(p, &a.ov, err, sizeof err) ||
        ss_pipeline_check(p, err, sizeof err)) {
        fprintf(stderr, "sstream run: %s\n", err);
        ss_pipeline_destroy(&p);
        return 1;
    }
    ss_supervisor *sv = NULL;
    if (ss_supervisor_new(p, &a.ro, &sv, err, sizeof err)) {
        fprintf(stderr, "sstream run: %s\n", err);
        ss_pipeline_destroy(&p);
        return 1;
    }
    rc = ss_supervisor_run(sv);
    ss_supervisor_destroy(&sv);
    ss_pipeline_destroy(&p);
    return rc;
}
