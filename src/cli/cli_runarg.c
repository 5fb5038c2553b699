/*
 * cli_runarg.c - the NAME argument of status, logs and stop
 * (cli_runarg.h).
 */
#include "cli/cli_runarg.h"

#include <limits.h>
#include <string.h>

/* See cli_runarg.h. */
int cli_runarg(int argc, char **argv, int max_argc, const char *cmd,
               void (*usage)(FILE *), ss_runrec *r)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argc > max_argc || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    char err[PATH_MAX + 256];
    if (ss_runrec_read(argv[1], r, err, sizeof err)) {
        fprintf(stderr, "sstream %s: %s\n", cmd, err);
        return 1;
    }
    if (strcmp(r->on, "local") == 0) {
        fprintf(stderr, "sstream %s: run %s runs on this machine (sstream "
                        "run, pid %ld): %s is for runs --on swarm; its logs "
                        "are in %s/logs, and sstream scale rescales it\n",
                cmd, r->name, r->pid, cmd, r->outdir);
        return 1;
    }
    return -1;
}
