/*
 * cmd_worker.c - `sstream worker`: see cli_node.c for its options.
 *
 * With --user and --enclave-user (a container started as root with only
 * CAP_SETUID and CAP_SETGID, docs/DEPLOY.md "Privileges"), it first
 * starts its enclave spawner under the enclave's user and becomes the
 * worker's user for good (ss_spawner_launch_as), as `sstream run` does
 * for the processes it starts: only then does it parse keys or connect.
 */
#include "cli/cli_node.h"
#include "cli/cmds.h"
#include "core/ss_log.h"
#include "enclave/ss_spawner.h"

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "sstream worker: no user '%s' on this system\n",
                user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Splits the worker and its enclaves into two users; 0, or an exit
 * status. */
static int split_users(const ss_node_opts *o, const cli_node_users *u)
{
    ss_spawner_launch l = {.keys = o->enclave_keys ? o->enclave_keys
                                                   : o->keys,
                           .name = o->name,
                           .stage = o->stage,
                           .script = o->script};
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "sstream worker: where is this program?\n");
        return 1;
    }
    self[n] = '\0';
    l.self = self;
    if (!l.keys) {
        fprintf(stderr, "sstream worker: --enclave-user needs the "
                        "enclave's key folder (--enclave-keys or --keys)\n");
        return 2;
    }
    if (lookup(u->user, &l.w_uid, &l.w_gid) ||
        lookup(u->enclave_user, &l.e_uid, &l.e_gid))
        return 1;
    char err[512];
    int fd = ss_spawner_launch_as(&l, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "sstream worker: %s\n", err);
        return 1;
    }
    char v[16];
    snprintf(v, sizeof v, "%d", fd);
    if (setenv("SS_ENCLAVE_SPAWNER", v, 1) != 0) {
        fprintf(stderr, "sstream worker: out of memory\n");
        return 1;
    }
    return 0;
}

/* Runs a stage script as a worker; returns the exit status. */
int cmd_worker(int argc, char **argv)
{
    ss_node_opts o;
    cli_node_users u = {0};
    int rc = cli_node_parse(argc, argv, "worker", &o, &u);
    if (rc >= 0)
        return rc;
    ss_log_set_component(o.name);
    if (u.user && (rc = split_users(&o, &u)) != 0)
        return rc;
    return cli_node_main(&o);
}
