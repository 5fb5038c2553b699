/*
 * cli_node.c - option parsing shared by worker, sink and lua.
 */
#include "cli/cli_node.h"
#include "core/ss_util.h"
#include "lua/ss_stage.h"
#include "wire/ss_batch.h"
#include "wire/ss_partition.h"

#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "lua") == 0) {
        fprintf(f,
                "usage: sstream lua SCRIPT [ARGS...]\n\n"
                "Runs a single-process Rx script (like the seed's Listings "
                "5.1 and 8.2) with\nthe runtime's modules: rx, zmq-rx, "
                "sgx-rx, sgx, csv, json, log, files\n(no data file is "
                "bundled here: files.list() is empty). Errors inside\n"
                "user functions follow RxLua: they reach the subscriber's "
                "onError.\n"
                "ARGS are in the script's `arg` table. A script that "
                "ends in\nsubscribeToSocket(addr) sends its events to a "
                "router (it acts as a\nsource: Listing 8.3); one built on "
                "fromZmqSocket(addr) reads from one.\n\n"
                "  --to EP             where subscribeToSocket sends "
                "(default: TO, else the\n"
                "                      script's own address)\n"
                "  --from EP           where fromZmqSocket reads (default: "
                "FROM, else the\n"
                "                      script's own address)\n"
                "  --name NAME         this component's name (default: "
                "SCRIPT-PID)\n"
                "  --batch-size BYTES  target output batch size (default "
                "256K)\n"
                "  --mem-limit BYTES   cap the script's memory (default "
                "256M)\n"
                "  --help              show this help\n\n"
                "Environment: FROM, TO, LOG_LEVEL.\n");
        return;
    }
    int sink = strcmp(cmd, "sink") == 0;
    fprintf(f,
            "usage: sstream %s SCRIPT [options]\n\n%s\n\n"
            "  --from EP            input router endpoint (default: FROM,"
            " else the script's)\n",
            cmd,
            sink ? "Runs a printer script at the end of a pipeline: it "
                   "receives the last stage's\nevents, and its "
                   "sendZmqCompleted() reports the end of the run."
                 : "Runs a stage script on the batches a router hands it, "
                   "and sends the results\nto the next router. An error "
                   "in a user function rejects that event only.");
    if (!sink)
        fprintf(f, "  --to EP              output router endpoint "
                   "(default: TO, else the script's)\n");
    fprintf(f,
            "  --name NAME          this component's name (default: "
            "SS_NAME, else STAGE-PID)\n"
            "  --stage NAME         the stage's name (default: the "
            "script's basename)\n"
            "  --credits N          batches it may hold at once (default: "
            "as many as\n"
            "                       1 MiB holds of --batch-size, 2 to 16; "
            "4 at 256K)\n"
            "  --batch-size BYTES   target output batch size (default "
            "256K)\n"
            "  --mem-limit BYTES    cap the script's memory (default "
            "256M)\n"
            "  --max-instructions N  Lua instructions one event (or the "
            "completion)\n"
            "                       may use; past it the event is "
            "rejected (default\n"
            "                       200000000)\n"
            "  --rejects FILE       append rejected events as JSON lines\n"
            "  --checkpoint-dir DIR  at each checkpoint barrier, write the "
            "sealed state\n"
            "                       (a stateful stage, the sink) to "
            "DIR/NAME-eN.snap\n");
    if (!sink)
        fprintf(f,
            "  --chain STAGE=SCRIPT  run SCRIPT after this stage in this "
            "process, as stage\n"
            "                       STAGE (repeatable, in order; in "
            "encrypted and enclave\n"
            "                       modes in the same enclave): no router "
            "between them;\n"
            "                       its counters go as STAGE-N, N this "
            "worker's index\n"
            "                       (`chain: true` in a pipeline)\n"
            "  --user USER, --enclave-user EUSER  enclave mode (sandbox), "
            "started as\n"
            "                       root: starts its enclave spawner as "
            "EUSER, then\n"
            "                       becomes USER for good (no capability "
            "left) before\n"
            "                       it connects; the enclave's key folder "
            "is EUSER's\n"
            "                       alone (the image's users: sstream, "
            "sstream-enclave)\n");
    fprintf(f,
            "  --security MODE      plain | encrypted | enclave (default "
            "plain)\n"
            "  --keys DIR           the pipeline's keys (encrypted, "
            "enclave)\n"
            "  --links MODE         curve (default): CurveZMQ on its "
            "links to the routers;\n"
            "                       sealed (encrypted, enclave): without "
            "it, the batches'\n"
            "                       sealing alone (docs/SECURITY.md)\n"
            "  --enclave BACKEND    sandbox | gramine (enclave mode; "
            "default sandbox)\n"
            "  --keyservice EP      the key service (enclave mode), e.g. "
            "tcp://keys:5599;\n"
            "                       CURVE: curve-client pair and "
            "curve-keyservice.pub\n"
            "                       of --keys\n"
            "  --enclave-keys DIR   enclave mode: the folder with "
            "platform.key, read by\n"
            "                       the enclave child only (default: "
            "--keys); give it\n"
            "                       to the enclave's uid, not this "
            "process's\n"
            "  --finals NAMES       sink: the stateful workers "
            "(comma-separated) whose\n"
            "                       result must arrive; a missing one "
            "fails the run\n"
            "                       (encrypted, enclave; sstream run "
            "sets it)\n"
            "  --ordered            sink: each stream arrives in order "
            "(one worker per\n"
            "                       stage): a reordered batch fails the "
            "run\n"
            "  --partition-by FIELD  worker: cut each output batch by "
            "the key group of\n"
            "                       FIELD, for a partitioned next stage "
            "(sstream run sets it)\n"
            "  --broadcast N        worker: send each output batch as N "
            "copies, one per\n"
            "                       worker of the next stage (sstream run "
            "sets it)\n"
            "  --index I            worker: its slot 1..N in its stage, "
            "for a partitioned\n"
            "                       or broadcast stage's router (sstream "
            "run sets it;\n"
            "                       default: SS_INDEX, else SS_POD_INDEX "
            "+ 1)\n"
            "  --partitions N       worker: its stage is partitioned over "
            "N workers (with\n"
            "                       --index, the key groups it owns: a "
            "restore from a\n"
            "                       checkpoint taken with another worker "
            "count takes\n"
            "                       those, SS_RESTORE_WORKERS; sstream run "
            "sets it)\n"
            "  --run HEX            the run id (default: SS_RUN): every "
            "message carries it,\n"
            "                       and messages of another run are "
            "refused\n"
            "  --connect-timeout-ms N  wait for the router, retrying "
            "(default 60000)\n"
            "  --heartbeat-ms N     heartbeat period (default 500)\n"
            "  --metrics-port N     serve Prometheus metrics on "
            "127.0.0.1:N/metrics\n"
            "  --help               show this help\n\n"
            "Environment: FROM, TO, SS_RUN, SS_NAME, LOG_LEVEL, LOG_RATE, "
            "SS_CONTROL,\n"
            "SS_CONTROL_KEYS, SS_INDEX, SS_POD_INDEX.\n");
}

static int bad(const char *cmd, const char *what, const char *val)
{
    fprintf(stderr, "sstream %s: %s '%s'\n", cmd, what, val ? val : "");
    return 2;
}

/* See cli_node.h. */
int cli_node_parse(int argc, char **argv, const char *role,
                   ss_node_opts *o, cli_node_users *u)
{
    const char *cmd = argv[0];
    static char name_buf[96], stage_buf[64];
    static const char *chain[32];
    static const struct option longopts[] = {
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"name", required_argument, 0, 'n'},
        {"stage", required_argument, 0, 's'},
        {"credits", required_argument, 0, 'c'},
        {"batch-size", required_argument, 0, 'b'},
        {"mem-limit", required_argument, 0, 'm'},
        {"max-instructions", required_argument, 0, 'I'},
        {"rejects", required_argument, 0, 'r'},
        {"checkpoint-dir", required_argument, 0, 'D'},
        {"security", required_argument, 0, 'S'},
        {"keys", required_argument, 0, 'k'},
        {"links", required_argument, 0, 'L'},
        {"enclave", required_argument, 0, 'e'},
        {"keyservice", required_argument, 0, 'K'},
        {"enclave-keys", required_argument, 0, 'E'},
        {"ordered", no_argument, 0, 'O'},
        {"connect-timeout-ms", required_argument, 0, 'T'},
        {"heartbeat-ms", required_argument, 0, 'H'},
        {"run", required_argument, 0, 'R'},
        {"finals", required_argument, 0, 'F'},
        {"partition-by", required_argument, 0, 'P'},
        {"broadcast", required_argument, 0, 'B'},
        {"index", required_argument, 0, 'x'},
        {"partitions", required_argument, 0, 'p'},
        {"chain", required_argument, 0, 'C'},
        {"user", required_argument, 0, 'u'},
        {"enclave-user", required_argument, 0, 'U'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ss_node_opts_default(o);
    o->role = role;
    int is_lua = strcmp(role, "lua") == 0;
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    const char *run = NULL;
    /* "+": stop at the first non-option (the script), so that a lua
     * script's own arguments are left alone */
    while ((c = getopt_long(argc, argv, is_lua ? "+h" : "h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f': o->from = optarg; break;
        case 't': o->to = optarg; break;
        case 'n': o->name = optarg; break;
        case 'u':
        case 'U':
            if (!u)
                return bad(cmd, "--user and --enclave-user are for workers:",
                           argv[optind - 1]);
            *(c == 'u' ? &u->user : &u->enclave_user) = optarg;
            break;
        case 's': o->stage = optarg; break;
        case 'r': o->rejects = optarg; break;
        case 'D': o->checkpoint_dir = optarg; break;
        case 'k': o->keys = optarg; break;
        case 'L':
            if (strcmp(optarg, "curve") && strcmp(optarg, "sealed"))
                return bad(cmd, "--links must be curve or sealed, not",
                           optarg);
            o->links_sealed = strcmp(optarg, "sealed") == 0;
            break;
        case 'e': o->enclave = optarg; break;
        case 'K': o->keyservice = optarg; break;
        case 'E': o->enclave_keys = optarg; break;
        case 'O': o->ordered = 1; break;
        case 'R': run = optarg; break;
        case 'F': o->finals = optarg; break;
        case 'P':
            if (!ss_partition_field_ok(optarg))
                return bad(cmd, "--partition-by takes a field name of 1 "
                                "to 63 of A-Z a-z 0-9 _ - ., not", optarg);
            o->partition_by = optarg;
            break;
        case 'B':
            if (ss_parse_u64(optarg, 1, 64, 0, &v))
                return bad(cmd, "--broadcast takes 1 to 64 copies, not",
                           optarg);
            o->broadcast = (uint32_t)v;
            break;
        case 'x':
            if (ss_parse_u64(optarg, 1, 64, 0, &v))
                return bad(cmd, "--index takes 1 to 64, not", optarg);
            o->index = (uint32_t)v;
            break;
        case 'p':
            if (ss_parse_u64(optarg, 1, 64, 0, &v))
                return bad(cmd, "--partitions takes 1 to 64 workers, not",
                           optarg);
            o->partitions = (uint32_t)v;
            break;
        case 'C':
            if (is_lua || strcmp(role, "worker") != 0 || o->nchain >= 32)
                return bad(cmd, o->nchain >= 32 ? "more than 32 --chain"
                                                : "--chain is for workers",
                           optarg);
            chain[o->nchain++] = optarg;
            o->chain = chain;
            break;
        case 'S':
            if (strcmp(optarg, "plain") && strcmp(optarg, "encrypted") &&
                strcmp(optarg, "enclave"))
                return bad(cmd, "--security must be plain, encrypted or "
                                "enclave, not", optarg);
            o->security = optarg;
            break;
        case 'c':
            if (ss_parse_u64(optarg, 1, 128, 0, &v))
                return bad(cmd, "--credits takes 1 to 128, not", optarg);
            o->credits = (unsigned)v;
            break;
        case 'b':
            if (ss_parse_u64(optarg, 256, SS_BATCH_MAX_SIZE, 1, &v))
                return bad(cmd, "--batch-size takes 256 to 64M, not",
                           optarg);
            o->batch_size = v;
            break;
        case 'm':
            if (ss_parse_u64(optarg, 1u << 20, 1ull << 40, 1, &v))
                return bad(cmd, "--mem-limit takes 1M or more, not", optarg);
            o->mem_limit = v;
            break;
        case 'I':
            if (ss_parse_u64(optarg, SS_STAGE_MIN_MAX_INSTRUCTIONS,
                             SS_STAGE_MAX_MAX_INSTRUCTIONS, 0, &v))
                return bad(cmd, "--max-instructions takes 10000 to "
                                "1000000000000, not", optarg);
            o->max_instructions = v;
            break;
        case 'T':
            if (ss_parse_u64(optarg, 1, 3600000, 0, &v))
                return bad(cmd, "--connect-timeout-ms takes 1 to 3600000,"
                                " not", optarg);
            o->connect_timeout_ms = (int)v;
            break;
        case 'H':
            if (ss_parse_u64(optarg, 1, 60000, 0, &v))
                return bad(cmd, "--heartbeat-ms takes 1 to 60000, not",
                           optarg);
            o->heartbeat_ms = (int)v;
            break;
        case 'h':
            usage(stdout, cmd);
            return 0;
        default:
            return bad(cmd, "unknown or incomplete option",
                       argv[optind - 1]);
        }
    }
    if (o->partition_by && o->broadcast) {
        fprintf(stderr, "sstream %s: --partition-by and --broadcast "
                        "exclude each other (the next stage is either "
                        "partitioned or broadcast)\n", cmd);
        return 2;
    }
    if ((o->partition_by || o->broadcast || o->index || o->partitions) &&
        strcmp(role, "worker") != 0) {
        fprintf(stderr, "sstream %s: --partition-by, --broadcast, --index "
                        "and --partitions are for workers\n", cmd);
        return 2;
    }
    if (o->partitions && o->index > o->partitions) {
        fprintf(stderr, "sstream %s: --index %u is not a slot of "
                        "--partitions %u (1 to %u)\n", cmd, o->index,
                o->partitions, o->partitions);
        return 2;
    }
    if (u && (!u->user != !u->enclave_user ||
              (u->user && (!o->security || strcmp(o->security, "enclave") ||
                           (o->enclave && strcmp(o->enclave, "sandbox")))))) {
        fprintf(stderr, "sstream %s: --user and --enclave-user go together, "
                        "with --security enclave and the sandbox backend\n",
                cmd);
        return 2;
    }
    if (u && u->user && o->nchain) {
        fprintf(stderr, "sstream %s: --user with --chain is not supported "
                        "yet (start a chained enclave worker with sstream "
                        "run, or unchained)\n",
                cmd);
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "sstream %s: no script given (see 'sstream %s "
                        "--help')\n", cmd, cmd);
        return 2;
    }
    char err[128];
    if (ss_run_get(run, &o->run, err, sizeof err))
    {
        fprintf(stderr, "sstream %s: %s\n", cmd, err);
        return 2;
    }
    o->script = argv[optind];
    /* with an enclave spawner (separate uids) the enclave reads the script,
     * as another user; this process need not reach it */
    int spawned = getenv("SS_ENCLAVE_SPAWNER") && o->security &&
                  !strcmp(o->security, "enclave");
    if (!spawned && access(o->script, R_OK) != 0) {
        fprintf(stderr, "sstream %s: cannot read script '%s'\n", cmd,
                o->script);
        return 2;
    }
    if (is_lua) {
        o->argc = argc - optind - 1;
        o->argv = argv + optind + 1;
    } else if (optind + 1 < argc) {
        return bad(cmd, "unexpected argument", argv[optind + 1]);
    }
    if (!o->stage) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", o->script);
        char *b = basename(tmp);
        char *dot = strrchr(b, '.');
        if (dot)
            *dot = '\0';
        snprintf(stage_buf, sizeof stage_buf, "%s", b);
        o->stage = stage_buf;
    }
    /* a container engine's replica slot: Swarm's {{.Task.Slot}} (from
     * 1) or a Kubernetes StatefulSet's pod index (from 0) */
    const char *slot = ss_env("SS_INDEX", NULL);
    const char *pod = ss_env("SS_POD_INDEX", NULL);
    if (!o->index && strcmp(role, "worker") == 0 && (slot || pod)) {
        uint64_t iv;
        if (slot ? ss_parse_u64(slot, 1, 64, 0, &iv)
                 : ss_parse_u64(pod, 0, 63, 0, &iv)) {
            fprintf(stderr, "sstream %s: %s takes %s, not '%s'\n", cmd,
                    slot ? "SS_INDEX" : "SS_POD_INDEX",
                    slot ? "1 to 64" : "0 to 63", slot ? slot : pod);
            return 2;
        }
        o->index = (uint32_t)(slot ? iv : iv + 1);
    }
    if (!o->name && getenv("SS_NAME") && *getenv("SS_NAME"))
        o->name = getenv("SS_NAME"); /* a container engine's replica name */
    if (!o->name) {
        snprintf(name_buf, sizeof name_buf, "%s-%ld", o->stage,
                 (long)getpid());
        o->name = name_buf;
    }
    return -1;
}

static ss_node *running; /* for the signal handler only */

static void node_on_signal(int sig)
{
    (void)sig;
    if (running)
        ss_node_stop(running);
}

/* SIGUSR1 (sstream scale, a rescale down: docs/PIPELINE.md) asks a
 * worker to leave its stage. It is blocked in every thread and taken
 * here with sigwait, so that it never interrupts a wait of the node (an
 * interrupted wait is a stop). Cancelled before the node is destroyed. */
static void *leave_waiter(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) == 0 && sig == SIGUSR1)
            ss_node_leave(arg);
    }
    return NULL;
}

/* See cli_node.h. */
int cli_node_main(const ss_node_opts *o)
{
    ss_node *n;
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old); /* before any thread */
    if (ss_node_new(o, &n)) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    pthread_t waiter;
    int have_waiter = pthread_create(&waiter, NULL, leave_waiter, n) == 0;
    running = n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = node_on_signal; /* no SA_RESTART: polls return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = ss_node_run(n);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (have_waiter) {
        pthread_cancel(waiter); /* sigwait is a cancellation point */
        pthread_join(waiter, NULL);
    }
    running = NULL;
    ss_node_destroy(&n);
    return rc ? 1 : 0;
}
