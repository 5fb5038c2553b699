/*
 * cmd_logs.c - `sstream logs NAME [SERVICE]`: the logs of a run started
 * with `sstream run --on swarm`: its services' (docker service logs) and
 * those of what runs on the owner's machine (the sink, the key service,
 * the detached run's own log).
 */
#include "cmds.h"
#include "cli/cli_runarg.h"
#include "run/ss_engine.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sstream logs NAME [SERVICE]\n\n"
            "Prints the logs of a run started with sstream run --on swarm. "
            "SERVICE is\na service of its stack (router-1, source, a stage's "
            "name such as map, or\nstage-map), or what runs on this "
            "machine: sink, keyservice, run (the\ndetached run's own log). "
            "Without SERVICE: every service's, then the\nsink's.\n\n"
            "exit status: 0, 1 failed, 2 bad usage.\n");
}

static int cat(const char *dir, const char *sub, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s%s.log", dir, sub, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sstream logs: no %s log here (%s)\n", name, path);
        return 1;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

static int service(const ss_runrec *r, const char *svc)
{
    char full[256];
    snprintf(full, sizeof full, "%s_%s", r->name, svc);
    printf("== %s\n", svc);
    fflush(stdout);
    const char *argv[] = {"service", "logs", "--no-task-ids", full, NULL};
    return ss_engine_cmd_fd(argv, STDOUT_FILENO, 60000) == 0 ? 0 : 1;
}

/* See cmds.h. */
int cmd_logs(int argc, char **argv)
{
    ss_runrec r;
    int rc = cli_runarg(argc, argv, 3, "logs", usage, &r);
    if (rc >= 0)
        return rc;
    if (argc == 3) {
        const char *s = argv[2];
        if (!strcmp(s, "sink") || !strcmp(s, "keyservice"))
            return cat(r.outdir, "logs/", s);
        if (!strcmp(s, "run"))
            return cat(r.outdir, "", "run");
        char svc[128];
        if (ss_runrec_workers(&r, s) >= 0) {
            /* a stage's name: its service is stage-NAME in DNS form */
            size_t i = 0;
            for (const char *c = s; *c && i < 64; c++)
                svc[i++] = isalnum((unsigned char)*c)
                               ? (char)tolower((unsigned char)*c)
                               : '-';
            svc[i] = '\0';
            char tmp[80];
            snprintf(tmp, sizeof tmp, "stage-%.64s", svc);
            snprintf(svc, sizeof svc, "%s", tmp);
        } else {
            snprintf(svc, sizeof svc, "%s", s);
        }
        return service(&r, svc);
    }
    const char *ls[] = {"stack", "services", "--format", "{{.Name}}", r.name,
                        NULL};
    static char buf[16384];
    if (ss_engine_cmd(ls, buf, sizeof buf, 30000) == 0) {
        size_t pl = strlen(r.name);
        for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
            if (!strncmp(l, r.name, pl) && l[pl] == '_')
                service(&r, l + pl + 1);
    }
    printf("== sink (this machine)\n");
    fflush(stdout);
    return cat(r.outdir, "logs/", "sink");
}
