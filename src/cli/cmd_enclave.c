/*
 * cmd_enclave.c - `sstream enclave`: the sandbox enclave process. Started
 * by a worker's sandbox backend (src/enclave/ss_enclave_sandbox.c) as
 * /proc/self/exe enclave ..., with the shared-memory channel on fd 3; the
 * same program runs under gramine-sgx (deploy/gramine/). Not meant to be
 * started by hand.
 *
 *   sstream enclave --stage S (--script F | --echo) [--name N]
 *                   [--mem-limit BYTES] [--encrypted --keys DIR]
 *                   [--shm-fd FD | --shm-path FILE] [--spin-us US]
 *                   [--chain STAGE=SCRIPT]...
 *
 * The sandbox backend starts the static program bin/sstream-enclave
 * (sstream_enclave.c) with the same command line; this subcommand is
 * the same code in the dynamic sstream, for gramine and the benchmarks.
 *
 * Test hooks (test builds only, -DSS_TEST_HOOKS: bin/sstream-test,
 * bin/sstream-enclave-test): with SS_ENCLAVE_TEST_SYSCALL=1 in its environment the child
 * calls socket() when it gets a batch, after the seccomp filter is in
 * place, and must be killed by SIGSYS (tests/unit/test_enclave.c); with
 * SS_ENCLAVE_TEST_SYSCALL=TEXT it does so only for a batch whose
 * plaintext contains TEXT (a poison batch, tests/integration/
 * test_security.sh).
 */
#include "cli/cmds.h"
#include "enclave/ss_enclave_chan.h"

#include <stdio.h>
#include <string.h>

/*
 * The `enclave` subcommand. Runs until the host asks it to quit (exit 0)
 * or dies; exit 1 if it cannot start (the reason also goes to the host
 * through the channel), 2 on bad usage.
 */
int cmd_enclave(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sstream enclave --stage S (--script F | --echo) "
                   "[--name N]\n"
                   "       [--mem-limit BYTES] [--encrypted --keys DIR] "
                   "[--shm-fd FD]\n"
                   "       [--spin-us US] [--chain STAGE=SCRIPT]...\n\n"
                   "(internal) The sandbox enclave process of a worker: "
                   "runs the stage\n"
                   "script (and the stages chained after it, in order, "
                   "each in its own\n"
                   "Lua state; all measured) under a seccomp filter and "
                   "serves batches\n"
                   "over the shared memory channel on FD (default 3). "
                   "Started by the worker.\n");
            return 0;
        }
    return ss_enclave_child_main(argc, argv);
}
