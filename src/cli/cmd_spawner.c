/*
 * cmd_spawner.c - `sstream enclave-spawner`: starts one worker's sandbox
 * enclaves under the enclave's own uid (src/enclave/ss_spawner.h).
 * `sstream run` starts it, as root turned sstream-enclave, next to each
 * enclave-mode worker it runs as sstream-worker; the worker finds its end
 * of the socket in SS_ENCLAVE_SPAWNER. Not meant to be started by hand.
 *
 *   sstream enclave-spawner --fd N --keys DIR --name N --stage S
 *                           [--script F [--script-fd N]] [--program P]
 */
#include "cli/cmds.h"
#include "core/ss_util.h"
#include "enclave/ss_enclave.h"
#include "enclave/ss_spawner.h"
#include "lua/ss_chain.h"
#include "securestreams.h"

#include <stdio.h>
#include <string.h>

static void spawner_usage(FILE *f)
{
    fprintf(f, "usage: sstream enclave-spawner --fd N --keys DIR --name N "
               "--stage S\n"
               "                               [--script F [--script-fd N]] "
               "[--chain STAGE=SCRIPT]... [--program P]\n\n"
               "(internal) Starts the sandbox enclaves of one worker under "
               "this process's\n"
               "uid when the worker asks on socket N, with this command "
               "line's program,\n"
               "key folder, names and scripts only (with --script-fd 4, the "
               "chained\n"
               "scripts are open on fds 5, 6, ...). sstream run starts it "
               "with separate\n"
               "uids (docs/SECURITY.md).\n");
}

/*
 * The `enclave-spawner` subcommand. Serves until the worker closes its
 * socket (exit 0); 2 on bad usage.
 */
int cmd_spawner(int argc, char **argv)
{
    ss_spawner_conf c;
    memset(&c, 0, sizeof c);
    uint64_t fd = 0;
    static const char *chain[SS_CHAIN_MAX];
    static const char *chain_at[SS_CHAIN_MAX];
    static char at[SS_CHAIN_MAX][160];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            spawner_usage(stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        int bad = !v;
        if (bad)
            ;
        else if (!strcmp(a, "--fd"))
            bad = ss_parse_u64(v, 3, 1 << 20, 0, &fd);
        else if (!strcmp(a, "--program"))
            c.program = v;
        else if (!strcmp(a, "--keys"))
            c.keys = v;
        else if (!strcmp(a, "--name"))
            c.name = v;
        else if (!strcmp(a, "--stage"))
            c.stage = v;
        else if (!strcmp(a, "--script"))
            c.script = v;
        else if (!strcmp(a, "--chain")) {
            const char *eq = strchr(v, '=');
            bad = c.nchain >= SS_CHAIN_MAX - 1 || !eq || eq == v ||
                  (size_t)(eq - v) >= 64;
            if (!bad) {
                snprintf(at[c.nchain], sizeof at[c.nchain],
                         "%.*s=/dev/fd/%d", (int)(eq - v), v, 5 + c.nchain);
                chain_at[c.nchain] = at[c.nchain];
                chain[c.nchain++] = v;
            }
        }
        else if (!strcmp(a, "--script-fd")) {
            uint64_t sfd = 0;
            bad = ss_parse_u64(v, 4, 1 << 20, 0, &sfd);
            c.script_fd = (int)sfd;
        }
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "sstream enclave-spawner: bad argument '%s'\n",
                    a);
            return 2;
        }
    }
    c.chain = chain;
    c.chain_at = chain_at;
    if (c.nchain && c.script_fd && c.script_fd != 4) {
        fprintf(stderr, "sstream enclave-spawner: --chain with "
                        "--script-fd 4 only (the chained scripts on 5..)\n");
        return 2;
    }
    if (!fd || !c.keys || !c.name || !c.stage) {
        fprintf(stderr, "sstream enclave-spawner: need --fd, --keys, "
                        "--name and --stage\n");
        return 2;
    }
    char prog[4096];
    if (!c.program) { /* the enclave program next to this one */
        if (ss_enclave_program_path(prog, sizeof prog) != 0) {
            fprintf(stderr, "sstream enclave-spawner: where is the enclave "
                            "program?\n");
            return 1;
        }
        c.program = prog;
    }
    return ss_spawner_serve((int)fd, &c) ? 1 : 0;
}
