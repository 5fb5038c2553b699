/*
 * cmd_scale.c - `sstream scale NAME STAGE N`: the one way to rescale a
 * stage of a running pipeline. On a run of this machine it asks the
 * run's supervisor over its owner-only control socket (ss_ctlsock.h),
 * which starts spare workers or makes workers leave gracefully and
 * answers what it did; on a swarm run it drives `docker service scale`.
 * Either way a stateless stage's new workers join their routers mid-run
 * and the result does not change. A stateful stage (a reduce) is
 * refused, saying what to change.
 */
#include "cmds.h"
#include "run/ss_ctlsock.h"
#include "run/ss_engine.h"
#include "run/ss_pipeline.h"
#include "run/ss_plan.h"
#include "run/ss_runrec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream scale NAME STAGE N\n\n"
            "Gives stage STAGE of the running run NAME N workers (1-64) "
            "while it goes\non. NAME is the run's --name, else its "
            "pipeline's name.\n\n"
            "A run on this machine (sstream run): new workers start from "
            "the spare\nslots planned at its start (--scale-slots, default "
            "8 per stage); workers\nthat go leave gracefully: each finishes "
            "the batches it took, and its\nrouter deals the ones it had not "
            "started to the others, so nothing is\nlost or counted twice "
            "and the summary balances. Only the run's owner can\nrescale "
            "it (a unix socket of mode 0600 in the run's private folder).\n"
            "A run on a swarm (sstream run --on swarm): docker service scale "
            "on the\nstage's service.\n\n"
            "A stateless stage dealt by credit (a map, a filter) grows at "
            "once; it\nshrinks at once too, unless the run can resume from "
            "a checkpoint (it\ntakes checkpoints): then at the next "
            "complete one, as below (a worker\nleaving while checkpoints "
            "go on could make a later resume lose rows).\nA stateful stage with partition_by in a run "
            "with checkpoints (a keyed\nreduce) is rescaled at the next "
            "complete checkpoint: the run stops there\nand resumes from it "
            "with the new count, each worker taking its key groups'\nstate "
            "(not counted against --restarts). Anything else (a stateful "
            "stage\nwithout partition_by or without checkpoints, a "
            "broadcast or chained stage)\nis refused, saying what to "
            "change. On a swarm, stateless stages only.\n\n"
            "exit status: 0 rescaled, 1 refused or failed, 2 bad usage.\n");
}

/* 0 when path is a unix socket of this uid in a folder of this uid
 * that nobody else can write: the control socket of a run of ours, not
 * one that a record (however it got there) points at to answer in the
 * run's name. Else -1 with a reason in err. */
static int socket_trusted(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (!sl || sl == dir) {
        snprintf(err, errlen, "its control socket '%s' is not in a folder "
                 "of its own: refused", path);
        return -1;
    }
    *sl = '\0';
    if (lstat(path, &st) != 0) {
        snprintf(err, errlen, "cannot reach its control socket %s: %s (has "
                 "it ended?)", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(err, errlen, "refusing its control socket %s: %s (uid %ld)"
                 "; the run's own socket is yours", path,
                 S_ISSOCK(st.st_mode) ? "it belongs to another user"
                                      : "it is not a socket",
                 (long)st.st_uid);
        return -1;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(err, errlen, "refusing its control socket %s: its folder "
                 "is not a folder of yours that only you can write", path);
        return -1;
    }
    return 0;
}

/* See cmds.h. */
int cmd_scale(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    char *end;
    long n = argc == 4 ? strtol(argv[3], &end, 10) : 0;
    if (argc != 4 || argv[1][0] == '-' || *end || n < 1 ||
        n > SS_PIPELINE_MAX_WORKERS) {
        if (argc == 4)
            fprintf(stderr, "sstream scale: N must be a number from 1 to "
                            "%d, not '%s'\n",
                    SS_PIPELINE_MAX_WORKERS, argv[3]);
        else
            usage(stderr);
        return 2;
    }
    ss_runrec r;
    char err[PATH_MAX + 256];
    if (ss_runrec_read(argv[1], &r, err, sizeof err)) {
        fprintf(stderr, "sstream scale: %s: is it running, under this name "
                        "(sstream run --name NAME, else its pipeline's "
                        "name)?\n",
                err);
        return 1;
    }
    if (strcmp(r.on, "local") == 0) {
        if (ss_runrec_alive(&r) == 0 || !r.control[0]) {
            fprintf(stderr, "sstream scale: run %s has ended (its "
                            "supervisor, pid %ld, is gone); nothing to "
                            "rescale\n",
                    r.name, r.pid);
            return 1;
        }
        if (socket_trusted(r.control, err, sizeof err)) {
            fprintf(stderr, "sstream scale: run %s: %s\n", r.name, err);
            return 1;
        }
        char req[SS_CTLSOCK_LINE_MAX], ans[4096];
        if ((size_t)snprintf(req, sizeof req, "scale %s %ld", argv[2], n) >=
                sizeof req ||
            strpbrk(argv[2], " \t\r\n")) {
            fprintf(stderr, "sstream scale: '%s' is not a stage name\n",
                    argv[2]);
            return 2;
        }
        if (ss_ctlsock_request(r.control, req, ans, sizeof ans, 30000, err,
                               sizeof err)) {
            fprintf(stderr, "sstream scale: run %s: %s\n", r.name, err);
            return 1;
        }
        int ok = strncmp(ans, "ok:", 3) == 0;
        fprintf(ok ? stdout : stderr, "%s%s", ok ? "" : "sstream scale: ",
                ok ? ans + 4 : ans);
        if (!ans[0])
            fprintf(stderr, "sstream scale: run %s closed the connection "
                            "without an answer\n", r.name);
        return ok ? 0 : 1;
    }
    char path[PATH_MAX + 16], line[256], state[64] = "";
    snprintf(path, sizeof path, "%s/status", r.outdir);
    FILE *f = fopen(path, "r");
    if (f && fgets(line, sizeof line, f))
        sscanf(line, "state: %63[^\n]", state);
    if (f)
        fclose(f);
    if (strcmp(state, "running") != 0 || ss_runrec_alive(&r) == 0) {
        fprintf(stderr, "sstream scale: run %s is not running (%s)\n",
                r.name, state[0] ? state : "no status");
        return 1;
    }
    ss_pipeline *p = NULL;
    if (ss_pipeline_load(r.pipeline, &p, err, sizeof err)) {
        fprintf(stderr, "sstream scale: %s\n", err);
        return 1;
    }
    const ss_stage_conf *sc = NULL;
    for (size_t s = 0; s < p->nstages; s++)
        if (!strcmp(p->stages[s].name, argv[2]))
            sc = &p->stages[s];
    int rc = 1;
    if (!sc) {
        fprintf(stderr, "sstream scale: run %s has no stage '%s' (", r.name,
                argv[2]);
        for (size_t s = 0; s < p->nstages; s++)
            fprintf(stderr, "%s%s", s ? ", " : "", p->stages[s].name);
        fprintf(stderr, ")\n");
        goto out;
    }
    if (sc->partition_by || sc->broadcast) {
        fprintf(stderr, "sstream scale: stage '%s' is %s: its router has "
                        "one slot per worker, fixed at the start; it cannot "
                        "be rescaled while it runs\n",
                sc->name, sc->partition_by ? "partitioned" : "broadcast");
        goto out;
    }
    int stateful = ss_plan_stage_stateful(sc);
    if (stateful != 0) {
        fprintf(stderr,
                stateful > 0
                    ? "sstream scale: stage '%s' keeps state across events "
                      "(its script folds them, as a reduce does): on a "
                      "swarm its workers' state would be lost or split, "
                      "since handing it over at a checkpoint is done by "
                      "the supervisor of a run on this machine only; on a "
                      "swarm only stateless stages can be rescaled "
                      "mid-run\n"
                    : "sstream scale: stage '%s': its script does not load "
                      "here, so it cannot be known to be stateless\n",
                sc->name);
        goto out;
    }
    char svc[72], tgt[200];
    size_t i = 0;
    for (const char *c = sc->name; *c && i < 64; c++)
        svc[i++] = isalnum((unsigned char)*c)
                       ? (char)tolower((unsigned char)*c)
                       : '-';
    svc[i] = '\0';
    snprintf(tgt, sizeof tgt, "%s_stage-%s=%ld", r.name, svc, n);
    const char *argv2[] = {"service", "scale", "--detach", tgt, NULL};
    char buf[4096];
    if (ss_engine_cmd(argv2, buf, sizeof buf, 60000) != 0) {
        fprintf(stderr, "sstream scale: docker service scale %s: %s", tgt,
                buf);
        goto out;
    }
    ss_runrec_set_workers(&r, sc->name, (int)n);
    if (ss_runrec_write(&r, err, sizeof err))
        fprintf(stderr, "sstream scale: %s\n", err);
    printf("stage %s of %s: %ld workers\n", sc->name, r.name, n);
    rc = 0;
out:
    ss_pipeline_destroy(&p);
    return rc;
}
