/*
 * cmd_status.c - `sstream status NAME`: how a run started with `sstream
 * run --on swarm` is doing (its record, ss_runrec.h; its status file; the
 * stack's services as the engine sees them).
 */
#include "cmds.h"
#include "cli/cli_runarg.h"
#include "run/ss_engine.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream status NAME\n\n"
            "Shows a run started with sstream run --on swarm: where it "
            "runs, its state\n(running, done, failed, stopped, timed out), "
            "its last progress line, and\nthe stack's services with their "
            "replicas. Works where the run's record is\n(the state folder: "
            "SS_STATE_DIR, else $XDG_STATE_HOME/securestreams, else\n"
            "~/.local/state/securestreams; a folder of yours only) and the "
            "docker client reaches a manager of the swarm.\n\n"
            "exit status: 0 running or done, 1 failed, stopped or unknown, "
            "2 bad usage.\n");
}

/* See cmds.h. */
int cmd_status(int argc, char **argv)
{
    ss_runrec r;
    int rc = cli_runarg(argc, argv, 2, "status", usage, &r);
    if (rc >= 0)
        return rc;
    char when[64] = "?";
    time_t t = (time_t)r.started;
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int alive = ss_runrec_alive(&r);
    printf("run %s on %s: pipeline %s (security %s), started %s\n", r.name,
           r.on, r.pipeline, r.security, when);
    printf("followed by process %ld on %s: %s\n", r.pid, r.host,
           alive > 0 ? "running" : alive == 0 ? "ended" : "another host");
    printf("output folder: %s\n", r.outdir);
    char path[PATH_MAX + 16], line[2048], state[64] = "unknown";
    snprintf(path, sizeof path, "%s/status", r.outdir);
    FILE *f = fopen(path, "r");
    for (int i = 0; f && i < 16 && fgets(line, sizeof line, f); i++) {
        fputs(line, stdout);
        if (sscanf(line, "state: %63[^\n]", state) == 1 &&
            !strcmp(state, "running") && alive == 0)
            snprintf(state, sizeof state, "gone");
    }
    if (f)
        fclose(f);
    if (!strcmp(state, "gone"))
        printf("the process that followed the run ended without saying "
               "how: sstream stop %s removes what is left\n",
               r.name);
    const char *svc[] = {"stack", "services", "--format",
                         "{{.Name}}\t{{.Replicas}}", r.name, NULL};
    static char buf[16384];
    if (ss_engine_cmd(svc, buf, sizeof buf, 30000) == 0 && buf[0] &&
        !strstr(buf, "Nothing found")) {
        printf("services (running/wanted):\n");
        for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
            printf("  %s\n", l);
    } else {
        printf("services: none (the stack %s is not on this swarm)\n",
               r.name);
    }
    return !strcmp(state, "running") || !strcmp(state, "done") ? 0 : 1;
}
