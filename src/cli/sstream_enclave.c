/*
 * sstream_enclave.c - `sstream-enclave`, the sandbox enclave program on
 * its own, linked statically (see the Makefile). A worker's sandbox
 * backend starts it (not `sstream enclave`) so that what its measurement
 * covers is all that runs in it: there is no dynamic loader, hence no
 * LD_PRELOAD, LD_LIBRARY_PATH or LD_AUDIT, and no shared library the
 * measurement would miss. It takes the same command line as `sstream
 * enclave` (see cmd_enclave.c), "enclave" included:
 *
 *   sstream-enclave enclave --stage S (--script F | --echo) ...
 */
#include "enclave/ss_enclave_chan.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "enclave") != 0) {
        fprintf(stderr, "usage: sstream-enclave enclave --stage S (--script "
                        "F | --echo) ...\n(internal) the sandbox enclave "
                        "program, started by a worker; see `sstream "
                        "enclave --help`\n");
        return 2;
    }
    return ss_enclave_child_main(argc - 1, argv + 1);
}
