/*
 * cmd_keyservice.c - `sstream keyservice`: the key service for enclaves
 * on other hosts (the same logic runs in-process in `sstream run`).
 *
 *   sstream keyservice --keys DIR [--manifest FILE] [--stage S=SCRIPT]...
 *                      [--program PATH] [--mem-limit SIZE]
 *                      [--restore WORKER=EPOCH[:N:I:M]]...
 *                      [--bind ENDPOINT | --print-manifest]
 */
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "crypto/ss_keyservice.h"
#include "net/ss_keyserver.h"
#include "enclave/ss_enclave.h"
#include "lua/ss_stage.h"
#include "securestreams.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t keyservice_stop;

static void keyservice_on_signal(int sig)
{
    (void)sig;
    keyservice_stop = 1;
}

static void keyservice_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream keyservice --keys DIR [--manifest FILE] "
            "[--stage S=SCRIPT]...\n"
            "                          [--program PATH] [--mem-limit SIZE]"
            "\n"
            "                          [--max-instructions N] [--run HEX]\n"
            "                          [--restore WORKER=EPOCH[:N:I:M]]...\n"
            "                          [--bind ENDPOINT | "
            "--print-manifest]\n\n"
            "Releases the data key of DIR only to enclaves whose signed "
            "report\n"
            "carries the expected measurement of their stage. Expected "
            "measurements\n"
            "come from a manifest file and/or are computed here from each "
            "stage\n"
            "script, the enclave program and the configuration.\n\n"
            "It serves under CurveZMQ (ipc or tcp alike): its pair is\n"
            "curve-keyservice.key/.pub of DIR, and it admits only the "
            "clients whose\n"
            "public key is a curve-NAME.pub of DIR (the routers' "
            "curve-server.pub\n"
            "excepted): give it the worker hosts' public keys only.\n\n"
            "options:\n"
            "   --keys DIR         key directory (data.key, platform.pub, "
            "CURVE keys)\n"
            "   --manifest FILE    lines '<stage> <sha-256 hex>'\n"
            "   --stage S=SCRIPT   expect stage S to run SCRIPT "
            "(repeatable)\n"
            "   --program PATH     the trusted enclave program (default: "
            "the\n"
            "                      sstream-enclave next to this sstream)\n"
            "   --mem-limit SIZE   the enclaves' Lua cap (default 64M)\n"
            "   --max-instructions N  the enclaves' Lua instructions per "
            "event\n"
            "                      (default 200000000; measured)\n"
            "   --run HEX          release the key only to enclaves of this "
            "run (the\n"
            "                      run id the components were given; "
            "default: SS_RUN,\n"
            "                      else any run)\n"
            "   --restore WORKER=EPOCH  let the enclave of WORKER restore "
            "the\n"
            "                      checkpoint of EPOCH (sent sealed with the "
            "key; an\n"
            "                      enclave restores nothing it was not "
            "granted);\n"
            "                      WORKER=EPOCH:N:I:M: the same from the "
            "snapshots of\n"
            "                      the N workers its stage had at EPOCH, "
            "as slot I of\n"
            "                      M now (a partitioned stage resumed on "
            "another\n"
            "                      worker count)\n"
            "   --bind ENDPOINT    where to serve (default "
            "tcp://*:5599)\n"
            "   --print-manifest   print the manifest and exit\n"
            "   --help             show this help\n");
}

/*
 * The `keyservice` subcommand. Serves until SIGINT/SIGTERM (exit 0), or
 * prints the manifest. Returns 2 on bad usage, 1 on failure. Never prints
 * key material.
 */
int cmd_keyservice(int argc, char **argv)
{
    const char *keys = NULL, *manifest = NULL, *program = NULL;
    char deflt[4096];
    const char *bind = "tcp://*:5599";
    uint64_t mem = SS_ENCLAVE_DEFAULT_MEM;
    uint64_t max_insns = SS_STAGE_DEFAULT_MAX_INSTRUCTIONS;
    int print = 0;
    const char *run_opt = NULL;
    const char *stages[64], *restores[64];
    int nstages = 0, nrestores = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            keyservice_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--print-manifest")) {
            print = 1;
            continue;
        }
        if (!v || a[0] != '-') {
            fprintf(stderr, "sstream keyservice: bad argument '%s' (see "
                            "--help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--keys")) {
            keys = v;
        } else if (!strcmp(a, "--manifest")) {
            manifest = v;
        } else if (!strcmp(a, "--program")) {
            program = v;
        } else if (!strcmp(a, "--bind")) {
            bind = v;
        } else if (!strcmp(a, "--run")) {
            run_opt = v;
        } else if (!strcmp(a, "--mem-limit")) {
            if (ss_parse_u64(v, 1 << 20, (uint64_t)1 << 40, 1, &mem)) {
                fprintf(stderr, "sstream keyservice: bad --mem-limit '%s'\n",
                        v);
                return 2;
            }
        } else if (!strcmp(a, "--max-instructions")) {
            if (ss_parse_u64(v, SS_STAGE_MIN_MAX_INSTRUCTIONS,
                             SS_STAGE_MAX_MAX_INSTRUCTIONS, 0, &max_insns)) {
                fprintf(stderr, "sstream keyservice: bad "
                                "--max-instructions '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--stage") && nstages < 64 && strchr(v, '=')) {
            stages[nstages++] = v;
        } else if (!strcmp(a, "--restore") && nrestores < 64 &&
                   strchr(v, '=')) {
            restores[nrestores++] = v;
        } else {
            fprintf(stderr, "sstream keyservice: bad argument '%s %s'\n", a,
                    v);
            return 2;
        }
    }
    if (!keys || (!manifest && !nstages)) {
        fprintf(stderr, "sstream keyservice: need --keys and a manifest or "
                        "--stage (see --help)\n");
        return 2;
    }
    if (!program) {
        if (ss_enclave_program_path(deflt, sizeof deflt) != 0) {
            fprintf(stderr, "sstream keyservice: cannot find the enclave "
                            "program: give --program\n");
            return 1;
        }
        program = deflt;
    }
    char err[1024];
    uint64_t run = 0;
    if (ss_run_get(run_opt, &run, err, sizeof err) != 0) {
        fprintf(stderr, "sstream keyservice: %s\n", err);
        return 2;
    }
    ss_keyservice *ks = NULL;
    int rc = ss_keyservice_new(keys, &ks, err, sizeof err);
    if (!rc)
        ss_keyservice_set_run(ks, run);
    if (!rc && manifest)
        rc = ss_keyservice_load_manifest(ks, manifest, err, sizeof err);
    for (int i = 0; !rc && i < nstages; i++) {
        char stage[128];
        const char *eq = strchr(stages[i], '=');
        snprintf(stage, sizeof stage, "%.*s", (int)(eq - stages[i]),
                 stages[i]);
        rc = ss_keyservice_expect_stage(ks, stage, program, eq + 1,
                                        (size_t)mem, max_insns, 1, err,
                                        sizeof err);
    }
    for (int i = 0; !rc && i < nrestores; i++) {
        char worker[128];
        const char *eq = strchr(restores[i], '=');
        uint64_t v[4] = {0, 0, 0, 0};
        snprintf(worker, sizeof worker, "%.*s", (int)(eq - restores[i]),
                 restores[i]);
        /* EPOCH, or EPOCH:N:I:M (a rescale: ss_restore_grant) */
        char spec[96], *parts[4] = {NULL, NULL, NULL, NULL}, *save = NULL;
        snprintf(spec, sizeof spec, "%s", eq + 1);
        int np = 0;
        for (char *t = strtok_r(spec, ":", &save); t && np < 4;
             t = strtok_r(NULL, ":", &save))
            parts[np++] = t;
        int bad = strlen(eq + 1) >= sizeof spec || (np != 1 && np != 4) ||
                  strtok_r(NULL, ":", &save) != NULL;
        for (int k = 0; !bad && k < np; k++)
            bad = ss_parse_u64(parts[k], 1, k ? SS_PARTITIONS : UINT32_MAX,
                               0, &v[k]) != 0;
        ss_restore_grant g = {(uint32_t)v[0], (uint32_t)v[1],
                              (uint32_t)v[2], (uint32_t)v[3]};
        if (bad || ss_keyservice_set_grant(ks, worker, &g)) {
            fprintf(stderr, "sstream keyservice: bad --restore '%s' "
                            "(WORKER=EPOCH or WORKER=EPOCH:N:I:M, epoch 1 "
                            "or more, 1 <= I <= M)\n",
                    restores[i]);
            ss_keyservice_destroy(&ks);
            return 2;
        }
    }
    if (rc) {
        fprintf(stderr, "sstream keyservice: %s\n", err);
        ss_keyservice_destroy(&ks);
        return 1;
    }
    if (print) {
        rc = ss_keyservice_write_manifest(ks, stdout);
    } else {
        signal(SIGINT, keyservice_on_signal);
        signal(SIGTERM, keyservice_on_signal);
        ss_curve pair;
        ss_keyserver_auth auth;
        const char *allow[SS_CURVE_ALLOW_MAX];
        rc = ss_keyserver_auth_load(&pair, &auth, allow, keys, err,
                                    sizeof err);
        if (!rc)
            rc = ss_keyserver_serve(ks, bind, &auth, &keyservice_stop, err,
                                    sizeof err);
        ss_curve_wipe(&pair);
        if (rc)
            fprintf(stderr, "sstream keyservice: %s\n", err);
    }
    ss_keyservice_destroy(&ks);
    return rc ? 1 : 0;
}
