/*
 * cmd_source.c - `sstream source`: inject a file or stdin into a pipeline.
 */
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "node/ss_source.h"
#include "wire/ss_batch.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream source [options] [FILE]\n\n"
            "Injects FILE (default: DATA_FILE, else stdin; '-' is stdin) "
            "line by line into\na pipeline, as fast as the first router "
            "takes it (or at --rate). Bad lines are\nrejected, counted and "
            "logged with their line number; the rest goes on.\n\n"
            "  --to EP              the first router (default: TO)\n"
            "  --file FILE          the input (same as the FILE operand)\n"
            "  --parts N            inject N equal parts in parallel "
            "(default 1)\n"
            "  --format F           lines | csv | jsonl (default lines), "
            "or sealed: a file\n"
            "                       from `sstream encrypt`, forwarded "
            "as it is (1 stream,\n"
            "                       no data key; encrypted or enclave "
            "only)\n"
            "  --header             the first line is a header: skip it "
            "(csv: it sets the\n"
            "                       expected field count)\n"
            "  --follow             after the end of FILE, keep reading "
            "what is appended,\n"
            "                       reopening it when replaced or "
            "truncated, waiting for\n"
            "                       it if absent (like tail -F), until "
            "SIGINT or SIGTERM,\n"
            "                       which end the stream cleanly (1 part;"
            " on stdin: the end\n"
            "                       of the pipe ends it too), exit 0; "
            "stopped before its\n"
            "                       router answers, it waits for it (up "
            "to the connect\n"
            "                       timeout) to end the stream there; a "
            "second signal\n"
            "                       gives up (exit 1)\n"
            "  --linger-ms N        stdin, a pipe or a followed file: "
            "send a partial batch\n"
            "                       once no byte arrived for N ms "
            "(default 200; 0: only\n"
            "                       full batches and the last one); "
            "with --rate: once\n"
            "                       its first row would wait longer "
            "than N ms for the\n"
            "                       rows after it\n"
            "  --rate N             read N rows per second at most "
            "(50000, 50k, 2M; k:\n"
            "                       1000, M: 1000000), over all parts, "
            "catching up after\n"
            "                       a delay by at most 1 s of rows; 0 "
            "(default): as fast\n"
            "                       as the first router takes them\n"
            "  --checkpoint-interval MS  a file: each part sends a "
            "checkpoint barrier\n"
            "                       between two batches every MS ms and "
            "the source\n"
            "                       acknowledges each epoch to the "
            "supervisor (default 0:\n"
            "                       none; docs/PROTOCOL.md, BARRIER)\n"
            "  --checkpoint-dir DIR  where each epoch's resume points go "
            "(NAME-eN.json)\n"
            "  --batch-size BYTES   bytes per batch (default 256K)\n"
            "  --window N           batches in flight per part (default "
            "16; beyond 2,\n"
            "                       at most 1 MiB of them: 4 of 256K)\n"
            "  --name NAME          component name (default source)\n"
            "  --rejects FILE       append rejected lines as JSON lines\n"
            "  --security MODE      plain | encrypted | enclave\n"
            "  --keys DIR           the pipeline's keys (encrypted, "
            "enclave)\n"
            "  --links MODE         curve (default): CurveZMQ on its "
            "links to the routers;\n"
            "                       sealed (encrypted, enclave): without "
            "it, the batches'\n"
            "                       sealing alone (docs/SECURITY.md)\n"
            "  --run HEX            the run id (default: SS_RUN): every "
            "message carries it,\n"
            "                       and messages of another run are "
            "refused\n"
            "  --connect-timeout-ms N  wait for the router, retrying "
            "(default 60000)\n"
            "  --metrics-port N     serve Prometheus metrics on "
            "127.0.0.1:N/metrics\n"
            "  --help               show this help\n");
}

static ss_source *running; /* for the signal handler only */

static void source_on_signal(int sig)
{
    (void)sig;
    if (running)
        ss_source_stop(running);
}

static int bad(const char *what, const char *val)
{
    fprintf(stderr, "sstream source: %s '%s'\n", what, val ? val : "");
    return 2;
}

/* Parses the options and runs the source; returns the exit status. */
int cmd_source(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"to", required_argument, 0, 't'},
        {"file", required_argument, 0, 'f'},
        {"parts", required_argument, 0, 'p'},
        {"format", required_argument, 0, 'F'},
        {"header", no_argument, 0, 'H'},
        {"follow", no_argument, 0, 'L'},
        {"linger-ms", required_argument, 0, 'l'},
        {"rate", required_argument, 0, 'Q'},
        {"checkpoint-interval", required_argument, 0, 'C'},
        {"checkpoint-dir", required_argument, 0, 'D'},
        {"batch-size", required_argument, 0, 'b'},
        {"window", required_argument, 0, 'w'},
        {"name", required_argument, 0, 'n'},
        {"rejects", required_argument, 0, 'r'},
        {"security", required_argument, 0, 'S'},
        {"keys", required_argument, 0, 'k'},
        {"links", required_argument, 0, 'N'},
        {"connect-timeout-ms", required_argument, 0, 'T'},
        {"run", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ss_source_opts o;
    ss_source_opts_default(&o);
    o.to = ss_env("TO", NULL);
    o.file = ss_env("DATA_FILE", NULL);
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    /* set by sstream run for a restarted run: its epochs stay above */
    const char *base = ss_env("SS_CHECKPOINT_BASE", NULL);
    if (base && ss_parse_u64(base, 0, UINT32_MAX / 2, 0, &v) == 0)
        o.checkpoint_base = (uint32_t)v;
    o.resume = ss_env("SS_RESUME_PARTS", NULL); /* sstream run: resume */
    const char *run = NULL;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o.to = optarg; break;
        case 'f': o.file = optarg; break;
        case 'n': o.name = optarg; break;
        case 'r': o.rejects = optarg; break;
        case 'k': o.keys = optarg; break;
        case 'N':
            if (strcmp(optarg, "curve") && strcmp(optarg, "sealed"))
                return bad("--links must be curve or sealed, not", optarg);
            o.links_sealed = strcmp(optarg, "sealed") == 0;
            break;
        case 'H': o.header = 1; break;
        case 'R': run = optarg; break;
        case 'L': o.follow = 1; break;
        case 'C':
            if (ss_parse_u64(optarg, 0, 86400000, 0, &v))
                return bad("--checkpoint-interval takes 0 to 86400000 ms, "
                           "not", optarg);
            o.checkpoint_ms = (unsigned)v;
            break;
        case 'D': o.checkpoint_dir = optarg; break;
        case 'l':
            if (ss_parse_u64(optarg, 0, 3600000, 0, &v))
                return bad("--linger-ms takes 0 to 3600000, not", optarg);
            o.linger_ms = (int)v;
            break;
        case 'Q':
            if (ss_parse_rate(optarg, &v))
                return bad("--rate takes rows per second from 0 to "
                           "1000000000 (such as 50000, 50k or 2M), not",
                           optarg);
            o.rate = v;
            break;
        case 'S':
            if (strcmp(optarg, "plain") && strcmp(optarg, "encrypted") &&
                strcmp(optarg, "enclave"))
                return bad("--security must be plain, encrypted or "
                           "enclave, not", optarg);
            o.security = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "lines") && strcmp(optarg, "csv") &&
                strcmp(optarg, "jsonl") && strcmp(optarg, "sealed"))
                return bad("--format must be lines, csv, jsonl or sealed, "
                           "not",
                           optarg);
            o.format = optarg;
            break;
        case 'p':
            if (ss_parse_u64(optarg, 1, 64, 0, &v))
                return bad("--parts takes 1 to 64, not", optarg);
            o.parts = (unsigned)v;
            break;
        case 'b':
            if (ss_parse_u64(optarg, 256, SS_BATCH_MAX_SIZE, 1, &v))
                return bad("--batch-size takes 256 to 64M, not", optarg);
            o.batch_size = v;
            break;
        case 'w':
            if (ss_parse_u64(optarg, 1, 1024, 0, &v))
                return bad("--window takes 1 to 1024, not", optarg);
            o.window = (unsigned)v;
            break;
        case 'T':
            if (ss_parse_u64(optarg, 1, 3600000, 0, &v))
                return bad("--connect-timeout-ms takes 1 to 3600000, not",
                           optarg);
            o.connect_timeout_ms = (int)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return bad("unknown or incomplete option", argv[optind - 1]);
        }
    }
    char err[128];
    if (ss_run_get(run, &o.run, err, sizeof err))
    {
        fprintf(stderr, "sstream source: %s\n", err);
        return 2;
    }
    if (optind < argc)
        o.file = argv[optind++];
    if (optind < argc)
        return bad("unexpected argument", argv[optind]);
    if (!o.to) {
        fprintf(stderr, "sstream source: no router endpoint: give --to "
                        "or set TO\n");
        return 2;
    }
    ss_log_set_component(o.name);
    ss_source *src;
    if (ss_source_new(&o, &src))
        return 1;
    running = src;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = source_on_signal; /* no SA_RESTART: reads see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* sstream run starts a followed source with these blocked, so that a
     * stop sent as it starts waits for this handler (a pending one is
     * taken here) instead of killing it */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &stops, NULL);
    int rc = ss_source_run(src);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running = NULL;
    ss_source_destroy(&src);
    return rc ? 1 : 0;
}
