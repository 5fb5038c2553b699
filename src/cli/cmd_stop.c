/*
 * cmd_stop.c - `sstream stop NAME`: ends a run started with `sstream run
 * --on swarm`. The process that follows it, when it runs on this host,
 * gets SIGTERM and removes the stack itself (as Ctrl-C would); otherwise
 * the stack is removed here.
 */
#include "cmds.h"
#include "cli/cli_runarg.h"
#include "core/ss_util.h"
#include "run/ss_engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream stop NAME\n\n"
            "Stops a run started with sstream run --on swarm: the process "
            "that follows\nit (on this host) removes the stack and ends "
            "with status 130; without\nthat process, docker stack rm NAME "
            "runs here. Waits at most 120 s.\n\n"
            "exit status: 0 stopped, 1 failed, 2 bad usage.\n");
}

/* See cmds.h. */
int cmd_stop(int argc, char **argv)
{
    ss_runrec r;
    int rc = cli_runarg(argc, argv, 2, "stop", usage, &r);
    if (rc >= 0)
        return rc;
    if (ss_runrec_alive(&r) > 0) {
        if (kill((pid_t)r.pid, SIGTERM) != 0) {
            perror("sstream stop: kill");
            return 1;
        }
        uint64_t end = ss_now_ns() + 120ull * 1000000000ull;
        while (ss_runrec_alive(&r) > 0 && ss_now_ns() < end)
            usleep(200000);
        if (ss_runrec_alive(&r) > 0) {
            fprintf(stderr, "sstream stop: process %ld still runs after "
                            "120 s\n",
                    r.pid);
            return 1;
        }
        printf("stopped %s\n", r.name);
        return 0;
    }
    /* no process follows it: it ended, or its follower died; a stack
     * that is gone needs nothing (and asking Docker to remove it would
     * answer with an error about something else, e.g. no swarm) */
    const char *ls[] = {"stack", "ls", "--format", "{{.Name}}", NULL};
    char *names = NULL, why[512];
    if (ss_engine_query(NULL, ls, 60000, 1u << 20, &names, why,
                        sizeof why) == 0) {
        int found = 0;
        for (char *sv = NULL, *t = strtok_r(names, "\n", &sv); t && !found;
             t = strtok_r(NULL, "\n", &sv))
            found = strcmp(t, r.name) == 0;
        free(names);
        if (!found) {
            printf("%s already ended: no process follows it and its stack "
                   "is gone; nothing to stop\n",
                   r.name);
            return 0;
        }
    }
    const char *rm[] = {"stack", "rm", r.name, NULL};
    char buf[4096];
    int st = ss_engine_cmd(rm, buf, sizeof buf, 60000);
    if (st != 0) {
        fprintf(stderr, "sstream stop: docker stack rm %s: %s", r.name, buf);
        return 1;
    }
    printf("stopped %s (stack removed)\n", r.name);
    return 0;
}
