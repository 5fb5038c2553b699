/*
 * cmd_cluster.c - `sstream cluster check [PIPELINE.yml]`: what a Docker
 * Swarm still needs before the pipeline can run on it, with the command
 * that fixes each missing piece (ss_cluster.h).
 */
#include "cmds.h"
#include "core/ss_util.h"
#include "run/ss_cluster.h"
#include "run/ss_pipeline.h"
#include "securestreams.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream cluster check [PIPELINE.yml] [options]\n\n"
            "Asks the Docker engine (the `docker` client, read-only) what a "
            "run on its\nSwarm needs and prints, for each piece, ok, "
            "MISSING with the exact command\nthat fixes it, unknown (not "
            "visible from here, with how to check it) or\nn/a: the engine "
            "answers; it is in an active swarm; this node is a\nmanager; "
            "a ready node is labelled securestreams.data=true (the "
            "source's);\nwith an enclave pipeline, a ready node is labelled "
            "sgx=true, and with the\ngramine backend it has the SGX devices "
            "(checked on this machine's node);\nthe image is on the nodes "
            "(checked on this engine: on a single-node swarm\nthat is every "
            "node; a manager cannot see other nodes' images); the "
            "engine's\nclock agrees with this machine's (other nodes' "
            "clocks are not visible).\nSee docs/DEPLOY.md.\n\n"
            "options:\n"
            "  --image IMAGE       the image the stack runs (default "
            "securestreams:" SS_VERSION_STRING ")\n"
            "  --security MODE     override the pipeline's mode\n"
            "  --enclave BACKEND   sandbox (default) or gramine (needs SGX "
            "devices)\n"
            "  --max-skew-ms N     clocks further apart are missing "
            "(default 1000)\n"
            "  --help              this help\n\n"
            "environment: DOCKER (the client, default docker), DOCKER_HOST "
            "(the engine;\ndevices are looked at here only when it is "
            "local).\n\n"
            "exit status: 0 nothing missing, 1 something missing (or the "
            "pipeline file\ncannot be read, as for sstream run), 2 bad "
            "usage.\n");
}

static int bad(const char *what, const char *v)
{
    fprintf(stderr, "sstream cluster: %s%s%s%s\n", what, v ? " '" : "",
            v ? v : "", v ? "'" : "");
    return 2;
}

static int check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"image", required_argument, 0, 'i'},
        {"security", required_argument, 0, 's'},
        {"enclave", required_argument, 0, 'e'},
        {"max-skew-ms", required_argument, 0, 'm'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ss_cluster_opts o = {.image = "securestreams:" SS_VERSION_STRING,
                         .max_skew_ms = 1000};
    ss_pipeline_overrides ov = {0};
    uint64_t v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'i': o.image = optarg; break;
        case 's':
            if (!ss_pipeline_security_valid(optarg))
                return bad("--security takes plain, encrypted or enclave, "
                           "not",
                           optarg);
            ov.security = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "sandbox") != 0 &&
                strcmp(optarg, "gramine") != 0)
                return bad("--enclave takes sandbox or gramine, not",
                           optarg);
            o.enclave = optarg;
            break;
        case 'm':
            if (ss_parse_u64(optarg, 1, 3600000, 0, &v))
                return bad("--max-skew-ms takes 1 to 3600000, not", optarg);
            o.max_skew_ms = (long)v;
            break;
        case 'h': usage(stdout); return 0;
        case ':': return bad("missing value for", argv[optind - 1]);
        default: return bad("unknown option", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        return bad("one pipeline file at most", NULL);
    if (ov.security && optind == argc)
        return bad("--security needs a pipeline file", NULL);
    o.docker = ss_env("DOCKER", "docker");
    const char *host = getenv("DOCKER_HOST");
    o.local = !host || !*host || strncmp(host, "unix://", 7) == 0;
    ss_pipeline *p = NULL;
    char err[1024] = "";
    if (optind < argc &&
        (ss_pipeline_load(argv[optind], &p, err, sizeof err) ||
         ss_pipeline_apply(p, &ov, err, sizeof err))) {
        fprintf(stderr, "sstream cluster: %s\n", err);
        ss_pipeline_destroy(&p);
        return 1;
    }
    o.p = p;
    int rc = ss_cluster_check(&o, stdout, err, sizeof err);
    ss_pipeline_destroy(&p);
    if (rc < 0) {
        fprintf(stderr, "sstream cluster: %s\n", err);
        return 1;
    }
    if (rc)
        printf("%d missing: run the fixes above, then check again\n", rc);
    else
        printf("nothing missing\n");
    return rc ? 1 : 0;
}

/* See cmds.h. */
int cmd_cluster(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return bad(argc < 2 ? "which subcommand? (check)" : "unknown subcommand",
               argc < 2 ? NULL : argv[1]);
}
