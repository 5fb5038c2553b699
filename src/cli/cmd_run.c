/*
 * cmd_run.c - `sstream run pipeline.yml`: runs a whole pipeline on this
 * machine (ss_pipeline for the file, ss_supervisor for the processes).
 */
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_keyservice.h"
#include "net/ss_keyserver.h"
#include "enclave/ss_enclave.h"
#include "lua/ss_stage.h"
#include "run/ss_swarmrun.h"
#include "run/ss_pipeline.h"
#include "run/ss_supervisor.h"
#include "wire/ss_partition.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        "  --links MODE        curve (default): CurveZMQ on every link;\n"
        "                      sealed (encrypted, enclave; no checkpoints):\n"
        "                      the data links without it, protected by the\n"
        "                      batches' sealing alone; control keeps CURVE.\n"
        "                      What that gives up: docs/SECURITY.md\n"
        "  --keys DIR          the pipeline's keys (sstream keygen); "
        "default: made\n"
        "                      once in the output folder's keys/\n"
        "  --enclave BACKEND   enclave mode: sandbox (default)\n"
        "  --batch-size B      max bytes per batch (e.g. 65536, 64K, 1M)\n"
        "  --rate N            the source reads N rows per second at most\n"
        "                      (50000, 50k, 2M; k: 1000), over all its\n"
        "                      parts; 0: as fast as the pipeline takes\n"
        "                      them (default: the file's source.rate)\n"
        "  --max-instructions N  Lua instructions one event (or a stage's\n"
        "                      completion) may use (default 200000000)\n"
        "  --output-dir DIR    logs, rejects.jsonl, output (default "
        "out/<name>);\n"
        "                      one run at a time (it is locked)\n"
        "  --metrics FILE      write every counters sample as a JSON line\n"
        "  --metrics-port N    serve every component's counters in the\n"
        "                      Prometheus format on 127.0.0.1:N/metrics\n"
        "  --timeout S         stop and exit 124 after S seconds\n"
        "  --checkpoint-interval MS  checkpoint barriers every MS ms "
        "(0: none;\n"
        "                      default: the file's checkpoint_ms, else "
        "none)\n"
        "  --restarts N        when a component is killed (kill -9, OOM)\n"
        "                      and the run cannot go on without it, start\n"
        "                      the whole pipeline again (from the last\n"
        "                      complete checkpoint, if any), at most N\n"
        "                      times (default 0: the run fails); the\n"
        "                      sink's output shows once, as each\n"
        "                      checkpoint completes and when it completes\n"
        "  --name NAME         the run's name (default: the pipeline's):\n"
        "                      sstream scale NAME STAGE N rescales a stage\n"
        "                      while the run goes on\n"
        "  --scale-slots N     spare workers planned for each stage that\n"
        "                      can be rescaled (stateless and dealt by\n"
        "                      credit, or keyed and stateful with\n"
        "                      checkpoints), 0-64 (default 8; 0 outside\n"
        "                      plain mode when every stage has one worker,\n"
        "                      whose sink then checks every stream's order)\n"
        "  --tcp               loopback tcp endpoints instead of ipc\n"
        "  --no-progress       no live progress line\n"
        "  --quiet             errors only\n"
        "  --help              this help\n"
        "\n"
        "on a cluster (docs/DEPLOY.md):\n"
        "  --on swarm          deploy the pipeline as a stack on this Docker\n"
        "                      engine's swarm (it must be a manager), run the\n"
        "                      monitor, the key service and the sink here,\n"
        "                      remove the stack at the end (or on Ctrl-C)\n"
        "  --name NAME         the stack's name too; sstream status|logs|\n"
        "                      stop|scale NAME follow it\n"
        "  --detach            return once the stack is up; a background\n"
        "                      process follows the run (results.txt and\n"
        "                      run.log in the output folder)\n"
        "  --image IMAGE       container image (default securestreams:"
        SS_VERSION_STRING ")\n"
        "  --advertise ADDR    this machine's address as the swarm's nodes\n"
        "                      reach it (default: docker_gwbridge's gateway)\n"
        "  --node ADDR         a swarm node the sink connects to (default\n"
        "                      127.0.0.1)\n"
        "  --data-dir DIR      the data node's folder with the input\n"
        "                      (default: the input's folder here; enclave\n"
        "                      mode seals it into the output folder)\n"
        "  --schedule-timeout S  fail when a task stays unscheduled for S\n"
        "                      seconds (default 60)\n"
        "\n"
        "exit status: 0 done, 1 failed, 2 bad usage, 124 timed out,\n"
        "130 interrupted. With a followed input (source follow: true),\n"
        "the first SIGINT or SIGTERM only ends the input, also before the\n"
        "source or its router is up: the run finishes with what was read\n"
        "(0 when it balances); a second one interrupts it (130).\n");
}

/* Options as given on the command line. */
typedef struct run_args {
    const char *file;
    ss_pipeline_overrides ov;
    ss_run_opts ro;
    const char *on;     /* --on: "swarm", or NULL (this machine) */
    ss_swarmrun_opts co; /* with --on */
} run_args;

/* Parses argv into a. Returns 0, 1 for --help, or 2 for bad usage
 * (message printed). */
static int parse_args(int argc, char **argv, run_args *a)
{
    enum { O_DATA = 256, O_WORKERS, O_SECURITY, O_BATCH, O_OUTDIR,
           O_QUIET, O_NOPROG, O_METRICS, O_TIMEOUT, O_TCP, O_HELP, O_KEYS,
           O_ENCLAVE, O_MAXINSNS, O_ON, O_NAME, O_DETACH, O_IMAGE,
           O_ADVERTISE, O_NODE, O_DATADIR, O_SCHED, O_RESTARTS, O_CKPT,
           O_SLOTS, O_RATE, O_LINKS };
    static const struct option opts[] = {
        {"data", required_argument, NULL, O_DATA},
        {"workers", required_argument, NULL, O_WORKERS},
        {"security", required_argument, NULL, O_SECURITY},
        {"links", required_argument, NULL, O_LINKS},
        {"batch-size", required_argument, NULL, O_BATCH},
        {"rate", required_argument, NULL, O_RATE},
        {"max-instructions", required_argument, NULL, O_MAXINSNS},
        {"output-dir", required_argument, NULL, O_OUTDIR},
        {"quiet", no_argument, NULL, O_QUIET},
        {"no-progress", no_argument, NULL, O_NOPROG},
        {"metrics", required_argument, NULL, O_METRICS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"tcp", no_argument, NULL, O_TCP},
        {"restarts", required_argument, NULL, O_RESTARTS},
        {"checkpoint-interval", required_argument, NULL, O_CKPT},
        {"keys", required_argument, NULL, O_KEYS},
        {"enclave", required_argument, NULL, O_ENCLAVE},
        {"on", required_argument, NULL, O_ON},
        {"name", required_argument, NULL, O_NAME},
        {"scale-slots", required_argument, NULL, O_SLOTS},
        {"detach", no_argument, NULL, O_DETACH},
        {"image", required_argument, NULL, O_IMAGE},
        {"advertise", required_argument, NULL, O_ADVERTISE},
        {"node", required_argument, NULL, O_NODE},
        {"data-dir", required_argument, NULL, O_DATADIR},
        {"schedule-timeout", required_argument, NULL, O_SCHED},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->ro.scale_slots = -1; /* the default (ss_run_opts) */
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
        case O_LINKS:
            if (strcmp(optarg, "curve") && strcmp(optarg, "sealed")) {
                fprintf(stderr, "sstream run: --links must be curve or "
                                "sealed, not '%s'\n", optarg);
                return 2;
            }
            a->ov.links = optarg;
            break;
        case O_BATCH:
            if (ss_parse_u64(optarg, 1, SS_BATCH_MAX_SIZE, 1, &v)) {
                fprintf(stderr, "sstream run: --batch-size must be a size "
                                "from 1 to 64M (such as 65536 or 64K)\n");
                return 2;
            }
            a->ov.batch_size = v;
            break;
        case O_RATE:
            if (ss_parse_rate(optarg, &v)) {
                fprintf(stderr, "sstream run: --rate must be a number of "
                                "rows per second from 0 to 1000000000, "
                                "such as 50000, 50k or 2M, not '%s'\n",
                        optarg);
                return 2;
            }
            a->ov.rate = v ? (int64_t)v : -1;
            break;
        case O_MAXINSNS:
            if (ss_parse_u64(optarg, SS_STAGE_MIN_MAX_INSTRUCTIONS,
                             SS_STAGE_MAX_MAX_INSTRUCTIONS, 0, &v)) {
                fprintf(stderr, "sstream run: --max-instructions must be a "
                                "number from 10000 to 1000000000000\n");
                return 2;
            }
            a->ov.max_instructions = v;
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
        case O_CKPT:
            if (ss_parse_u64(optarg, 0, 86400000, 0, &v)) {
                fprintf(stderr, "sstream run: --checkpoint-interval must be "
                                "a number of ms from 0 to 86400000\n");
                return 2;
            }
            a->ov.checkpoint_ms = v ? (int)v : -1;
            break;
        case O_RESTARTS:
            if (ss_parse_u64(optarg, 0, 100, 0, &v)) {
                fprintf(stderr, "sstream run: --restarts must be a number "
                                "from 0 to 100\n");
                return 2;
            }
            a->ro.max_restarts = (unsigned)v;
            break;
        case O_SLOTS:
            if (ss_parse_u64(optarg, 0, SS_PIPELINE_MAX_WORKERS, 0, &v)) {
                fprintf(stderr, "sstream run: --scale-slots must be a "
                                "number from 0 to %d\n",
                        SS_PIPELINE_MAX_WORKERS);
                return 2;
            }
            a->ro.scale_slots = (int)v;
            break;
        case O_KEYS:
            a->ro.keys = optarg;
            break;
        case O_ENCLAVE:
            a->ro.enclave = optarg;
            break;
        case O_ON:
            if (strcmp(optarg, "swarm") != 0) {
                fprintf(stderr, "sstream run: --on takes swarm%s, not "
                                "'%s'\n",
                        strcmp(optarg, "compose") == 0
                            ? " (compose is not supported yet: no docker "
                              "compose here to test it; use a one-node "
                              "swarm, docker swarm init, or sstream deploy "
                              "--target compose)"
                            : "",
                        optarg);
                return 2;
            }
            a->on = optarg;
            break;
        case O_NAME:
            if (!ss_name_safe(optarg, 63)) {
                fprintf(stderr, "sstream run: --name takes letters, digits, "
                                "'-', '_' and '.', at most 62, not '%s'\n",
                        optarg);
                return 2;
            }
            a->co.name = optarg;
            a->ro.name = optarg;
            break;
        case O_DETACH:
            a->co.detach = 1;
            break;
        case O_IMAGE:
            a->co.image = optarg;
            break;
        case O_ADVERTISE:
            a->co.advertise = optarg;
            break;
        case O_NODE:
            a->co.node = optarg;
            break;
        case O_DATADIR:
            a->co.data_dir = optarg;
            break;
        case O_SCHED: {
            char *end;
            double t = strtod(optarg, &end);
            if (end == optarg || *end || !(t > 0) || t > 1e6) {
                fprintf(stderr, "sstream run: --schedule-timeout must be a "
                                "number of seconds above 0\n");
                return 2;
            }
            a->co.schedule_s = t;
            break;
        }
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
    if (!a->on && (a->co.detach || a->co.image ||
                   a->co.advertise || a->co.node || a->co.data_dir ||
                   a->co.schedule_s > 0)) {
        fprintf(stderr, "sstream run: --detach, --image, "
                        "--advertise, --node, --data-dir and "
                        "--schedule-timeout go with --on swarm\n");
        return 2;
    }
    if (a->on && a->ro.scale_slots >= 0) {
        fprintf(stderr, "sstream run: --scale-slots is for a run on this "
                        "machine (a swarm service scales as it is)\n");
        return 2;
    }
    if (a->on && (a->ro.tcp || a->ro.metrics || a->ro.enclave)) {
        fprintf(stderr, "sstream run: --tcp, --metrics and --enclave do not "
                        "go with --on (the cluster's links are TCP; the "
                        "counters are in the output folder's "
                        "metrics.jsonl; the backend is sandbox)\n");
        return 2;
    }
    if (a->on && (a->ro.max_restarts || a->ov.checkpoint_ms > 0)) {
        fprintf(stderr, "sstream run: --restarts and --checkpoint-interval "
                        "do not go with --on yet (they work for the "
                        "processes of this machine)\n");
        return 2;
    }
    return 0;
}

/* ---- security: keys and the key service -------------------------------- */

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *c = tmp + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *c = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The key directory: --keys, else <output>/keys, made on first use. */
static int prepare_keys(const ss_pipeline *p, run_args *a, char *dir,
                        size_t len, char *err, size_t errlen)
{
    if (a->ro.keys) {
        snprintf(dir, len, "%s", a->ro.keys);
        return 0;
    }
    char outdir[PATH_MAX - 16];
    if (a->ro.output_dir)
        snprintf(outdir, sizeof outdir, "%s", a->ro.output_dir);
    else
        snprintf(outdir, sizeof outdir, "out/%s", p->name);
    if (mkdirs(outdir) != 0) {
        snprintf(err, errlen, "output folder '%.512s': %s", outdir,
                 strerror(errno));
        return SS_EIO;
    }
    if ((size_t)snprintf(dir, len, "%s/keys", outdir) >= len)
        return SS_EINVAL;
    a->ro.keys = dir;
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/%s", dir, SS_KEYS_DATA);
    if (access(data, F_OK) == 0)
        return 0; /* made by an earlier run: keep it */
    if (p->source.format && !strcmp(p->source.format, "sealed")) {
        /* keys made now cannot open a file sealed before */
        snprintf(err, errlen, "the input '%.200s' is sealed (sstream "
                 "encrypt --keys DIR): give this run the keys it was "
                 "sealed with, --keys DIR; keys made now in %.200s could "
                 "not open it", p->source.file ? p->source.file : "?", dir);
        return SS_EINVAL;
    }
    return ss_keys_create_dir(dir, SS_AEAD_AUTO, NULL, 0, 0, err, errlen);
}

/* The in-process key service, on its own thread. */
typedef struct keyserver {
    ss_keyservice *ks;
    ss_keyserver_auth auth; /* borrowed from the supervisor */
    char tmp[PATH_MAX];
    char endpoint[PATH_MAX + 16];
    pthread_t th;
    int running;
    volatile sig_atomic_t stop;
    char err[512];
} keyserver;

static void *keyserver_main(void *arg)
{
    keyserver *k = arg;
    if (ss_keyserver_serve(k->ks, k->endpoint, &k->auth, &k->stop, k->err,
                           sizeof k->err))
        fprintf(stderr, "sstream run: key service: %s\n", k->err);
    return NULL;
}

/* Prepares the key service with the expected measurement of every stage
 * (computed now from the enclave program the workers start, the static
 * sstream-enclave next to this binary, and the scripts as they are) and
 * its endpoint; keyserver_start serves it once the supervisor made the
 * keys it admits. Test hook (test builds only):
 * SS_RUN_TEST_SWAP_SCRIPT=STAGE=FILE then gives stage STAGE's workers
 * FILE instead, as if the script changed after the manifest was made. */
static int keyserver_prepare(keyserver *k, ss_pipeline *p, const char *keys,
                             char *err, size_t errlen)
{
    /* the run prints its own messages: the service's refusals (warn)
     * show, its routine lines only with LOG_LEVEL=info */
    if (!getenv("LOG_LEVEL") && ss_log_level_current < SS_LOG_WARN)
        ss_log_level_current = SS_LOG_WARN;
    ss_log_set_component("run");
    int rc = ss_keyservice_new(keys, &k->ks, err, errlen);
    if (rc)
        return rc;
    char exe[PATH_MAX];
    if (ss_enclave_program_path(exe, sizeof exe) != 0 ||
        access(exe, X_OK) != 0) {
        snprintf(err, errlen, "the enclave program %.900s is missing: it "
                              "is built next to sstream (make)", exe);
        return SS_EINVAL;
    }
    for (size_t i = 0; i < p->nstages; i++) {
        /* a stage chained into the workers of the one before it has no
         * enclave of its own: it is measured with its chain's first */
        if (ss_pipeline_chained(p, i))
            continue;
        size_t end = i + 1;
        while (end < p->nstages && ss_pipeline_chained(p, end))
            end++;
        /* how the chain's last stage cuts its output for the next one is
         * measured */
        const ss_stage_conf *next =
            end < p->nstages ? &p->stages[end] : NULL;
        char output[80];
        if (ss_partition_spec(output, sizeof output,
                              next ? next->partition_by : NULL,
                              next && next->broadcast
                                  ? (uint32_t)next->workers
                                  : 0)) {
            snprintf(err, errlen, "stage '%s': bad partition_by",
                     next ? next->name : "");
            return SS_EINVAL;
        }
        const char *scripts[SS_CHAIN_MAX], *names[SS_CHAIN_MAX];
        size_t n = 0;
        for (size_t j = i; j < end && n < SS_CHAIN_MAX; j++, n++) {
            scripts[n] = p->stages[j].script;
            names[n] = p->stages[j].name;
        }
        rc = ss_keyservice_expect_chain(
            k->ks, exe, scripts, names, n, SS_ENCLAVE_DEFAULT_MEM,
            p->max_instructions ? p->max_instructions
                                : SS_STAGE_DEFAULT_MAX_INSTRUCTIONS,
            output, 1, err, errlen);
        if (rc)
            return rc;
    }
#ifdef SS_TEST_HOOKS
    const char *swap = ss_env("SS_RUN_TEST_SWAP_SCRIPT", NULL);
    const char *eq = swap ? strchr(swap, '=') : NULL;
    for (size_t i = 0; eq && i < p->nstages; i++)
        if (strlen(p->stages[i].name) == (size_t)(eq - swap) &&
            strncmp(p->stages[i].name, swap, (size_t)(eq - swap)) == 0) {
            char *s = strdup(eq + 1);
            if (!s)
                return SS_ENOMEM;
            free(p->stages[i].script);
            p->stages[i].script = s;
        }
#endif
    snprintf(k->tmp, sizeof k->tmp, "%s/sstream-keys-XXXXXX",
             strlen(ss_env("TMPDIR", "/tmp")) > 60 ? "/tmp"
                                                    : ss_env("TMPDIR", "/tmp"));
    if (!mkdtemp(k->tmp)) {
        snprintf(err, errlen, "cannot make a folder for the key service: "
                 "%s", strerror(errno));
        k->tmp[0] = '\0';
        return SS_EIO;
    }
    /* worker hosts of another uid reach the socket (CURVE decides) */
    chmod(k->tmp, 0711);
    snprintf(k->endpoint, sizeof k->endpoint, "ipc://%s/ks", k->tmp);
    return 0;
}

/* Serves the prepared key service under CURVE with the allow list of the
 * run (the enclave workers' keys, each bound to its worker's name). */
static int keyserver_start(keyserver *k, ss_supervisor *sv, char *err,
                           size_t errlen)
{
    if (ss_supervisor_keyservice_auth(sv, &k->auth) != 0) {
        snprintf(err, errlen, "no keys for the key service");
        return SS_EINVAL;
    }
    /* the key goes to enclaves of this run only */
    ss_keyservice_set_run(k->ks, ss_supervisor_run_id(sv));
    if (pthread_create(&k->th, NULL, keyserver_main, k) != 0) {
        snprintf(err, errlen, "cannot start the key service");
        return SS_EIO;
    }
    k->running = 1;
    return 0;
}

static void keyserver_stop(keyserver *k)
{
    if (k->running) {
        k->stop = 1;
        pthread_join(k->th, NULL);
        k->running = 0;
    }
    if (k->tmp[0]) {
        char sock[PATH_MAX + 8];
        snprintf(sock, sizeof sock, "%s/ks", k->tmp);
        unlink(sock);
        rmdir(k->tmp);
        k->tmp[0] = '\0';
    }
    ss_keyservice_destroy(&k->ks);
}

/* ss_run_opts.grant_restore for the in-process key service. */
static int grant_restore(void *ctx, const char *worker,
                         const ss_restore_grant *g)
{
    return ss_keyservice_set_grant(ctx, worker, g);
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
    if (a.on) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            fprintf(stderr, "sstream run: cannot find this program\n");
            ss_pipeline_destroy(&p);
            return 1;
        }
        exe[n] = '\0';
        a.co.pipeline_file = a.file;
        a.co.output_dir = a.ro.output_dir;
        a.co.keys = a.ro.keys;
        a.co.exe = exe;
        a.co.timeout_s = a.ro.timeout_s;
        a.co.quiet = a.ro.quiet;
        a.co.no_progress = a.ro.no_progress;
        char keys[PATH_MAX];
        if (strcmp(p->security, "plain") != 0 &&
            prepare_keys(p, &a, keys, sizeof keys, err, sizeof err)) {
            fprintf(stderr, "sstream run: %s\n", err);
            ss_pipeline_destroy(&p);
            return 1;
        }
        a.co.keys = a.ro.keys;
        rc = ss_swarmrun_run(p, &a.co);
        ss_pipeline_destroy(&p);
        return rc;
    }
    char keys[PATH_MAX];
    keyserver ksrv;
    memset(&ksrv, 0, sizeof ksrv);
    if (strcmp(p->security, "plain") != 0) {
        if (prepare_keys(p, &a, keys, sizeof keys, err, sizeof err) ||
            (strcmp(p->security, "enclave") == 0 &&
             keyserver_prepare(&ksrv, p, keys, err, sizeof err))) {
            fprintf(stderr, "sstream run: %s\n", err);
            keyserver_stop(&ksrv);
            ss_pipeline_destroy(&p);
            return 1;
        }
        if (ksrv.ks) {
            a.ro.keyservice = ksrv.endpoint;
            /* a restart from a checkpoint grants the enclaves its epoch */
            a.ro.grant_restore = grant_restore;
            a.ro.grant_ctx = ksrv.ks;
        }
    }
    if (!a.ro.name)
        a.ro.name = p->name; /* sstream scale NAME finds the run */
    ss_supervisor *sv = NULL;
    if (ss_supervisor_new(p, &a.ro, &sv, err, sizeof err) ||
        (ksrv.ks && keyserver_start(&ksrv, sv, err, sizeof err))) {
        ss_supervisor_destroy(&sv);
        fprintf(stderr, "sstream run: %s\n", err);
        keyserver_stop(&ksrv);
        ss_pipeline_destroy(&p);
        return 1;
    }
    rc = ss_supervisor_run(sv);
    ss_supervisor_destroy(&sv);
    keyserver_stop(&ksrv);
    ss_pipeline_destroy(&p);
    return rc;
}
