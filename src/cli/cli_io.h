/*
 * cli_io.h - input and output files of the commands that transform a
 * file (encrypt, decrypt): "-" means stdin / stdout, and the output is
 * written through a temporary file beside it that is renamed into place
 * only when everything was written, so a failed run never leaves a
 * partial OUT behind.
 */
#ifndef SS_CLI_IO_H
#define SS_CLI_IO_H

#include "crypto/ss_keys.h"

#include <stdio.h>

typedef struct cli_files {
    const char *cmd;     /* "encrypt": messages say "sstream encrypt: ..." */
    const char *inname;  /* as given ("-": stdin) */
    const char *outname; /* as given ("-": stdout) */
    FILE *in, *out;
    char tmp[4200];      /* the temporary output, "" for stdout */
} cli_files;

/* Opens inname for reading and a temporary beside outname for writing.
 * Returns 0, or -1 after printing "sstream CMD: cannot open/create ...",
 * in which case nothing is left open. */
int cli_files_open(cli_files *f, const char *cmd, const char *inname,
                   const char *outname);

/* The common start of a command that turns IN into OUT with the
 * pipeline's data key: checks that keys, inname and outname were given
 * (else says "need --keys DIR, IN and OUT", returns 2), loads the data key
 * from the keys directory and opens the files (else says why, returns 1).
 * Returns -1 to go on, with *key loaded (caller destroys) and f open. */
int cli_keyed_files_open(cli_files *f, const char *cmd, const char *keys,
                         const char *inname, const char *outname,
                         ss_key **key);

/* Ends the command: when rc is 0, flushes, syncs and closes the output
 * and renames it into place (SS_EIO if any of that fails, with errno
 * set); otherwise closes and removes the temporary. Closes the input in
 * both cases. Returns rc, or SS_EIO. */
int cli_files_close(cli_files *f, int rc);

#endif
