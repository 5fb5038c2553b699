/*
 * main.c - `sstream`, the SecureStreams command line: a table of
 * subcommands, one file each, in the manner of git's builtins.
 */
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_transport.h"
#include "net/ss_metrics_http.h"
#include "securestreams.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    int hidden;
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct cmd commands[] = {
    {"run", cmd_run, "run a whole pipeline on this machine", 0},
    {"deploy", cmd_deploy, "write Compose, Swarm or Kubernetes files", 0},
    {"cluster", cmd_cluster, "check what a Docker Swarm needs for a run", 0},
    {"status", cmd_status, "show a run started with run --on swarm", 0},
    {"logs", cmd_logs, "print the logs of a run on a swarm", 0},
    {"stop", cmd_stop, "stop a run on a swarm (removes its stack)", 0},
    {"scale", cmd_scale, "rescale a stateless stage of a running run", 0},
    {"source", cmd_source, "inject a file (or stdin) into a pipeline", 0},
    {"router", cmd_router, "dispatch batches between two stages", 0},
    {"worker", cmd_worker, "run a stage script on batches", 0},
    {"sink", cmd_sink, "run a printer script at the end of a pipeline", 0},
    {"gen", cmd_gen, "generate a synthetic dataset", 0},
    {"lua", cmd_lua, "run a single-process Rx script", 0},
    {"keygen", cmd_keygen, "create a pipeline's keys", 0},
    {"encrypt", cmd_encrypt, "encrypt a dataset into a sealed stream", 0},
    {"decrypt", cmd_decrypt, "decrypt a sealed stream or result", 0},
    {"keyservice", cmd_keyservice, "release keys to attested enclaves", 0},
    {"bench", cmd_bench, "run the benchmark suites", 0},
    {"enclave", cmd_enclave, "(internal) the sandbox enclave process", 1},
    {"enclave-spawner", cmd_spawner,
     "(internal) starts enclaves under their own uid", 1},
    {"version", cmd_version, "print the version", 0},
    {"help", cmd_help, "list the commands, or show one's help", 0},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct cmd *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sstream <command> [<args>]\n\n"
               "SecureStreams %s: secure stream processing with Lua stages\n"
               "over ZeroMQ.\n\ncommands:\n",
            SS_VERSION_STRING);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!commands[i].hidden)
            fprintf(f, "   %-11s %s\n", commands[i].name,
                    commands[i].summary);
    fprintf(f, "\n'sstream <command> --help' shows a command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("sstream %s\n", SS_VERSION_STRING);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct cmd *c = find(argv[1]);
    if (!c || !c->fn) {
        fprintf(stderr, "sstream help: unknown command '%s'\n", argv[1]);
        return 2;
    }
    char *args[] = {argv[1], "--help", NULL};
    return c->fn(2, args);
}

/* The long-running components (and `run`, for the whole pipeline) serve
 * their counters in the Prometheus format when given --metrics-port N
 * [--metrics-addr A] or SS_METRICS_PORT [SS_METRICS_ADDR]
 * (net/ss_metrics_http.h). The options are taken out of argv; the
 * variables are unset so that the components `run` starts don't try to
 * bind the same port. Returns 0, or the exit status after a message. */
static int metrics_endpoint(const char *cmd, int *argc, char **argv)
{
    static const char *const served[] = {"run", "source", "router",
                                         "worker", "sink"};
    int want = 0;
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
        want |= strcmp(cmd, served[i]) == 0;
    if (!want)
        return 0;
    const char *port = getenv("SS_METRICS_PORT");
    const char *addr = getenv("SS_METRICS_ADDR");
    int n = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *v = NULL;
        if (!strncmp(a, "--metrics-port", 14) && (!a[14] || a[14] == '='))
            dst = &port;
        else if (!strncmp(a, "--metrics-addr", 14) &&
                 (!a[14] || a[14] == '='))
            dst = &addr;
        if (!dst) {
            argv[n++] = argv[i];
            continue;
        }
        if (a[14] == '=')
            v = a + 15;
        else if (i + 1 < *argc)
            v = argv[++i];
        if (!v || !*v) {
            fprintf(stderr, "sstream %s: %.14s needs a value\n", cmd, a);
            return 2;
        }
        *dst = v;
    }
    argv[n] = NULL;
    *argc = n;
    if (!port || !*port)
        return 0;
    uint64_t p;
    if (ss_parse_u64(port, 0, 65535, 0, &p)) {
        fprintf(stderr, "sstream %s: --metrics-port must be a port number "
                        "(0-65535), not '%s'\n", cmd, port);
        return 2;
    }
    char err[256];
    if (ss_metrics_global_start(addr, (unsigned)p, err, sizeof err)) {
        fprintf(stderr, "sstream %s: %s\n", cmd, err);
        return 1;
    }
    unsetenv("SS_METRICS_PORT");
    unsetenv("SS_METRICS_ADDR");
    return 0;
}

int main(int argc, char **argv)
{
    ss_transport_init();
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(1, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv);
    const struct cmd *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "sstream: '%s' is not a command; see 'sstream "
                        "help'\n", argv[1]);
        return 2;
    }
    if (!c->fn) {
        fprintf(stderr, "sstream: '%s' is not built into this binary\n",
                c->name);
        return 2;
    }
    ss_log_init(c->name);
    int sub_argc = argc - 1;
    int rc = metrics_endpoint(c->name, &sub_argc, argv + 1);
    if (rc)
        return rc;
    rc = c->fn(sub_argc, argv + 1);
    ss_metrics_global_stop();
    return rc;
}
