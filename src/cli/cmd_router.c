/*
 * cmd_router.c - `sstream router`: runs one router between two stages.
 *
 *   sstream router [--from EP] [--to EP] [--producers N] [--queue N]
 *                  [--heartbeat-ms N] [--peer-timeout-ms N] [--stall-ms N]
 *                  [--name NAME] [--run HEX]
 *
 * FROM and TO default from the environment variables of the same names,
 * as the seed's router.lua did (FROM=tcp://host:5555 style, defaulting
 * to port 5555 for FROM and 5556 for TO on every interface).
 */
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_curve.h"
#include "net/ss_proto.h"
#include "net/ss_router.h"
#include "net/ss_stats_reporter.h"
#include "securestreams.h"

#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static ss_router *running; /* for the signal handler only */

static void router_on_signal(int sig)
{
    (void)sig;
    if (running)
        ss_router_stop(running);
}

/* Reports the router's counters like every component (ss_stats.h): to
 * the supervisor in SS_CONTROL and to the metrics endpoint. */
typedef struct router_report {
    ss_stats_reporter *rep;
    const char *name;
} router_report;

static void router_tick(void *arg, const ss_router_stats *rs, int final)
{
    router_report *rr = arg;
    if (!final && !ss_stats_reporter_due(rr->rep))
        return;
    ss_stats st;
    ss_stats_init(&st);
    ss_stats_set_names(&st, rr->name, "router", "");
    ss_stats_fill_self(&st);
    st.in = rs->in_events;
    st.out = rs->out_events;
    st.in_bytes = rs->in_bytes;
    st.out_bytes = rs->out_bytes;
    st.batches_in = rs->in_batches;
    st.batches_out = rs->out_batches;
    st.rejected = rs->rejected;
    st.queue = rs->queue_depth;
    st.credits = rs->credits;
    st.keyed = rs->keyed_events;
    st.hot_events = rs->hot_events;
    st.hot_partition = rs->hot_partition;
    st.hot_slot = rs->hot_slot;
    st.final = final;
    ss_stats_report(rr->rep, &st);
}

static void router_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream router [--from EP] [--to EP] [--producers N]\n"
            "                      [--queue N] [--heartbeat-ms N]\n"
            "                      [--peer-timeout-ms N] [--stall-ms N]\n"
            "                      [--max-frame BYTES] [--name NAME]\n"
            "                      [--run HEX] [--peers NAMES]\n"
            "                      [--partitions N]\n\n"
            "Takes batches from the producers that connect to FROM and deals\n"
            "them to the workers that connect to TO, against their credits.\n"
            "Exits 0 once every producer group sent its end of stream and\n"
            "every batch was acknowledged, 1 if the run failed.\n\n"
            "options:\n"
            "   --from EP            endpoint producers connect to (default\n"
            "                        $FROM, else tcp://*:5555)\n"
            "   --to EP              endpoint workers connect to (default\n"
            "                        $TO, else tcp://*:5556)\n"
            "   --producers N        producer groups to wait for (default 1)\n"
            "   --queue N            stop reading producers above N queued\n"
            "                        batches (default 64)\n"
            "   --heartbeat-ms N     peers' heartbeat interval (default 500)\n"
            "   --peer-timeout-ms N  a silent worker is lost (default 5000)\n"
            "   --max-frame BYTES    drop the connection of a producer\n"
            "                        whose frame is larger (default 4M,\n"
            "                        header included; at most 72 + 64 MiB);\n"
            "                        WELCOME tells producers the limit\n"
            "   --stall-ms N         a worker holding batches that\n"
            "                        acknowledges none for N ms is lost,\n"
            "                        though it heartbeats (default 6 peer\n"
            "                        timeouts)\n"
            "   --name NAME          name in logs and messages (default\n"
            "                        router)\n"
            "   --run HEX            the run id (default: SS_RUN, else the\n"
            "                        first hello's): messages of another\n"
            "                        run are refused, naming the peer\n"
            "   --peers NAMES        only these peers (comma-separated "
            "names) may\n"
            "                        join, on either side; others are "
            "refused,\n"
            "                        named (default: anyone; sstream run "
            "sets it)\n"
            "   --partitions N       the next stage is partitioned or\n"
            "                        broadcast over N workers, slots 1..N\n"
            "                        (sstream worker --index): a batch\n"
            "                        goes to the slot owning its key group\n"
            "                        (or named by its copy), others by\n"
            "                        credit\n"
            "   --keys DIR           CurveZMQ on both endpoints with the\n"
            "                        pipeline's keys (curve-server pair);\n"
            "                        only its curve-*.pub may connect\n"
            "   --metrics-port N     serve Prometheus metrics on\n"
            "                        127.0.0.1:N (--metrics-addr A)\n"
            "   --help               show this help\n");
}

static int router_bad(const char *what, const char *arg)
{
    fprintf(stderr, "sstream router: %s '%s'; see 'sstream router --help'\n",
            what, arg);
    return 2;
}

static int router_is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Value of "--opt V" or "--opt=V" at argv[*i], advancing *i; NULL if
 * missing. */
static const char *router_optarg(int argc, char **argv, int *i,
                                 const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/*
 * The `router` subcommand (argv[0] is "router"). Returns the exit status:
 * 0 when the run completed (or --help), 1 when it failed or the endpoints
 * cannot be bound (message on stderr), 2 on bad usage. SIGINT and SIGTERM
 * abort the run (ABORT to every peer) with status 1.
 */
int cmd_router(int argc, char **argv)
{
    const char *keys = NULL, *run = NULL;
    ss_router_opts o = {.from = ss_env("FROM", "tcp://*:5555"),
                        .to = ss_env("TO", "tcp://*:5556"),
                        .name = "router",
                        .producers = 1,
                        .queue = 64,
                        .heartbeat_ms = 500,
                        .peer_timeout_ms = 5000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        uint64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            router_usage(stdout);
            return 0;
        }
        static const char *const names[] = {
            "--from",  "--to",           "--producers",       "--queue",
            "--heartbeat-ms", "--peer-timeout-ms", "--name", "--keys",
            "--run", "--stall-ms", "--peers", "--max-frame",
            "--partitions"};
        int k = -1;
        for (int j = 0; j < 13; j++)
            if (router_is_opt(a, names[j]))
                k = j;
        if (k < 0)
            return router_bad("unknown option", a);
        if (!(v = router_optarg(argc, argv, &i, names[k])) || !*v)
            return router_bad("missing value for", names[k]);
        switch (k) {
        case 0: o.from = v; break;
        case 1: o.to = v; break;
        case 6: o.name = v; break;
        case 7: keys = v; break;
        case 8: run = v; break;
        case 10: o.peers = v; break;
        case 2:
            if (ss_parse_u64(v, 1, 4096, 0, &n))
                return router_bad("--producers wants 1..4096, not", v);
            o.producers = (unsigned)n;
            break;
        case 3:
            if (ss_parse_u64(v, 1, 1u << 20, 0, &n))
                return router_bad("--queue wants 1..1048576, not", v);
            o.queue = (unsigned)n;
            break;
        case 4:
            if (ss_parse_u64(v, 1, 3600000, 0, &n))
                return router_bad("--heartbeat-ms wants 1..3600000, not", v);
            o.heartbeat_ms = (int)n;
            break;
        case 5:
            if (ss_parse_u64(v, 1, 3600000, 0, &n))
                return router_bad("--peer-timeout-ms wants 1..3600000, not",
                                  v);
            o.peer_timeout_ms = (int)n;
            break;
        case 9:
            if (ss_parse_u64(v, 1, 86400000, 0, &n))
                return router_bad("--stall-ms wants 1..86400000, not", v);
            o.stall_ms = (int)n;
            break;
        case 11:
            if (ss_parse_u64(v, 1024, (uint64_t)SS_PROTO_MSG_MAX, 1, &n))
                return router_bad("--max-frame wants 1K..64M+72 bytes, not",
                                  v);
            o.max_frame = n;
            break;
        case 12:
            if (ss_parse_u64(v, 1, 4096, 0, &n))
                return router_bad("--partitions wants 1..4096, not", v);
            o.partitions = (unsigned)n;
            break;
        }
    }
    char rerr[128];
    if (ss_run_get(run, &o.run, rerr, sizeof rerr)) {
        fprintf(stderr, "sstream router: %s\n", rerr);
        return 2;
    }
    if (o.peer_timeout_ms <= o.heartbeat_ms)
        fprintf(stderr, "sstream router: warning: --peer-timeout-ms %d is "
                        "not above --heartbeat-ms %d; idle workers will be "
                        "counted as lost\n",
                o.peer_timeout_ms, o.heartbeat_ms);

    void *zctx = zmq_ctx_new();
    if (!zctx) {
        fprintf(stderr, "sstream router: cannot create a zeromq context\n");
        return 1;
    }
    char err[600];
    router_report rr = {NULL, o.name};
    int rc = ss_stats_reporter_open(zctx, getenv("SS_CONTROL"),
                                    getenv("SS_CONTROL_KEYS"), &rr.rep, err,
                                    sizeof err);
    if (rc) {
        fprintf(stderr, "sstream router: cannot report to %s: %s\n",
                getenv("SS_CONTROL"), err[0] ? err : ss_strerror(rc));
        zmq_ctx_term(zctx);
        return 1;
    }
    o.resume = getenv("SS_RESUME_STREAMS"); /* sstream run, after a restart */
    o.tick = router_tick;
    o.tick_arg = &rr;
    ss_curve curve;
    if (keys) {
        rc = ss_curve_load(&curve, keys, 1, err, sizeof err);
        if (rc) {
            fprintf(stderr, "sstream router: %s\n", err);
            ss_stats_reporter_destroy(&rr.rep);
            zmq_ctx_term(zctx);
            return 1;
        }
        o.curve = &curve;
    }
    ss_router *r;
    rc = ss_router_new(zctx, &o, &r, err, sizeof err);
    if (keys)
        ss_curve_wipe(&curve); /* the sockets keep their own copy */
    if (rc) {
        fprintf(stderr, "sstream router: %s\n", err);
        ss_stats_reporter_destroy(&rr.rep);
        zmq_ctx_term(zctx);
        return 1;
    }
    running = r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = router_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = ss_router_run(r, err, sizeof err);
    if (rc)
        fprintf(stderr, "sstream router: %s\n", err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running = NULL;
    ss_router_destroy(&r);
    ss_stats_reporter_destroy(&rr.rep);
    zmq_ctx_term(zctx); /* waits up to the linger for the last messages */
    return rc ? 1 : 0;
}
