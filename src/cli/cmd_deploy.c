/*
 * cmd_deploy.c - `sstream deploy PIPELINE.yml --target compose|swarm|k8s`:
 * writes what a container engine needs to run the pipeline (ss_deploy.h).
 */
#include "cmds.h"
#include "core/ss_util.h"
#include "run/ss_deploy.h"
#include "run/ss_pipeline.h"
#include "securestreams.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream deploy PIPELINE.yml --target compose|swarm|k8s "
            "[options]\n\n"
            "Writes what a container engine needs to run the pipeline: "
            "compose.yml\n(one Docker host), stack.yml (docker stack "
            "deploy) or k8s.yml (kubectl\napply), from the same file and "
            "overrides as `sstream run`. One service per\nrouter, one per "
            "stage (replicas = workers), the source; each service gets\n"
            "only its role's keys. On swarm and k8s the data key never "
            "goes into the\ncluster: the sink and the key service run on "
            "your machine, enclave mode\nfeeds sealed input (FILE.sealed, "
            "sstream encrypt) and encrypted mode is\nrefused. See "
            "docs/DEPLOY.md.\n\n"
            "options:\n"
            "  --target T          compose, swarm or k8s (required)\n"
            "  -o DIR              output folder (default out/NAME/deploy)\n"
            "  --image IMAGE       container image (default "
            "securestreams:" SS_VERSION_STRING ")\n"
            "  --keys DIR          the pipeline's keys (sstream keygen); "
            "needed\n"
            "                      outside plain mode\n"
            "  --keyservice EP     enclave mode on swarm/k8s: your key "
            "service,\n"
            "                      e.g. tcp://owner.example.org:5599\n"
            "  --enclave BACKEND   sandbox (default) or gramine (SGX "
            "devices)\n"
            "  --data-dir DIR      the nodes' folder with the input (default\n"
            "                      /srv/securestreams/data)\n"
            "  --run HEX           the run id every component carries\n"
            "  --data FILE         input file (its name is used in DIR)\n"
            "  --workers N         workers of every stage (1-64)\n"
            "  --security MODE     plain, encrypted or enclave\n"
            "  --batch-size B      max bytes per batch\n"
            "  --help              this help\n\n"
            "exit status: 0 written, 1 failed, 2 bad usage.\n");
}

static int bad(const char *what, const char *v)
{
    fprintf(stderr, "sstream deploy: %s%s%s%s\n", what, v ? " '" : "",
            v ? v : "", v ? "'" : "");
    return 2;
}

/* See cmds.h. */
int cmd_deploy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, 0, 't'},
        {"image", required_argument, 0, 'i'},
        {"keys", required_argument, 0, 'k'},
        {"keyservice", required_argument, 0, 'K'},
        {"enclave", required_argument, 0, 'e'},
        {"data-dir", required_argument, 0, 'D'},
        {"run", required_argument, 0, 'r'},
        {"data", required_argument, 0, 'd'},
        {"workers", required_argument, 0, 'w'},
        {"security", required_argument, 0, 's'},
        {"batch-size", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ss_deploy_opts o = {.image = "securestreams:" SS_VERSION_STRING};
    ss_pipeline_overrides ov = {0};
    const char *target = NULL, *outdir = NULL;
    uint64_t v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case 'o': outdir = optarg; break;
        case 'i': o.image = optarg; break;
        case 'k': o.keys = optarg; break;
        case 'K': o.keyservice = optarg; break;
        case 'e': o.enclave = optarg; break;
        case 'D': o.data_dir = optarg; break;
        case 'r':
            if (ss_parse_run(optarg, &v))
                return bad("--run takes 16 hex digits, not", optarg);
            o.run = optarg;
            break;
        case 'd': ov.data = optarg; break;
        case 'w':
            if (ss_parse_u64(optarg, 1, SS_PIPELINE_MAX_WORKERS, 0, &v))
                return bad("--workers takes 1 to 64, not", optarg);
            ov.workers = (int)v;
            break;
        case 's':
            if (!ss_pipeline_security_valid(optarg))
                return bad("--security takes plain, encrypted or enclave, "
                           "not",
                           optarg);
            ov.security = optarg;
            break;
        case 'b':
            if (ss_parse_u64(optarg, 1, UINT32_MAX, 1, &v))
                return bad("--batch-size takes a size, not", optarg);
            ov.batch_size = v;
            break;
        case 'h': usage(stdout); return 0;
        case ':': return bad("missing value for", argv[optind - 1]);
        default: return bad("unknown option", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return bad(optind >= argc ? "no pipeline file given"
                                  : "one pipeline file, not several",
                   NULL);
    if (!target)
        return bad("--target compose|swarm|k8s is required", NULL);
    if (ss_deploy_target_parse(target, &o.target))
        return bad("--target takes compose, swarm or k8s, not", target);

    char err[1024] = "";
    ss_pipeline *p = NULL;
    if (ss_pipeline_load(argv[optind], &p, err, sizeof err) ||
        ss_pipeline_apply(p, &ov, err, sizeof err)) {
        fprintf(stderr, "sstream deploy: %s\n", err);
        ss_pipeline_destroy(&p);
        return 1;
    }
    char *dir = NULL, *path = NULL;
    int status = 1;
    if (outdir ? !(dir = strdup(outdir))
               : asprintf(&dir, "out/%s/deploy", p->name) < 0)
        goto out;
    char mk[4096];
    snprintf(mk, sizeof mk, "%s", dir);
    for (char *s = mk + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(mk, 0755);
            *s = '/';
        }
    if (mkdir(mk, 0755) && errno != EEXIST) {
        fprintf(stderr, "sstream deploy: cannot make '%s': %s\n", dir,
                strerror(errno));
        goto out;
    }
    if (asprintf(&path, "%s/%s", dir, ss_deploy_file_name(o.target)) < 0)
        goto out;
    /* k8s.yml holds key bytes: private from the start */
    mode_t old = umask(077);
    FILE *f = fopen(path, "w");
    umask(old);
    if (!f) {
        fprintf(stderr, "sstream deploy: cannot write '%s': %s\n", path,
                strerror(errno));
        goto out;
    }
    int rc = ss_deploy_write(p, &o, f, err, sizeof err);
    if (fclose(f) && !rc) {
        snprintf(err, sizeof err, "cannot write '%s': %s", path,
                 strerror(errno));
        rc = SS_EIO;
    }
    if (rc) {
        unlink(path);
        fprintf(stderr, "sstream deploy: %s\n", err);
        goto out;
    }
    printf("%s\n", path);
    status = 0;
out:
    free(dir);
    free(path);
    ss_pipeline_destroy(&p);
    return status;
}
