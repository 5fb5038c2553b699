/*
 * cli_io.c - atomic output files for file-transforming commands
 * (cli_io.h).
 */
#include "cli/cli_io.h"
#include "securestreams.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* See cli_io.h. */
int cli_files_open(cli_files *f, const char *cmd, const char *inname,
                   const char *outname)
{
    memset(f, 0, sizeof *f);
    f->cmd = cmd;
    f->inname = inname;
    f->outname = outname;
    f->in = strcmp(inname, "-") ? fopen(inname, "rb") : stdin;
    if (!f->in) {
        fprintf(stderr, "sstream %s: cannot open %s: %s\n", cmd, inname,
                strerror(errno));
        return -1;
    }
    f->out = stdout;
    if (strcmp(outname, "-") == 0)
        return 0;
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp-XXXXXX", outname);
    int fd = strlen(outname) < 4096 ? mkstemp(f->tmp) : -1;
    f->out = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f->out) {
        int en = errno;
        fprintf(stderr, "sstream %s: cannot create %s: %s\n", cmd, outname,
                strerror(en));
        if (fd >= 0) {
            close(fd);
            unlink(f->tmp);
        }
        if (f->in != stdin)
            fclose(f->in);
        f->in = NULL;
        return -1;
    }
    return 0;
}

/* See cli_io.h. */
int cli_keyed_files_open(cli_files *f, const char *cmd, const char *keys,
                         const char *inname, const char *outname,
                         ss_key **key)
{
    *key = NULL;
    if (!keys || !inname || !outname) {
        fprintf(stderr, "sstream %s: need --keys DIR, IN and OUT "
                        "(see --help)\n", cmd);
        return 2;
    }
    char err[512];
    if (ss_keys_load_data(keys, key, err, sizeof err) != 0) {
        fprintf(stderr, "sstream %s: %s\n", cmd, err);
        return 1;
    }
    if (cli_files_open(f, cmd, inname, outname) != 0) {
        ss_key_destroy(key);
        return 1;
    }
    return -1;
}

/* See cli_io.h. */
int cli_files_close(cli_files *f, int rc)
{
    if (f->out) {
        if (!rc && fflush(f->out) != 0)
            rc = SS_EIO;
        if (!rc && f->out != stdout && fsync(fileno(f->out)) != 0)
            rc = SS_EIO;
        if (f->out != stdout && fclose(f->out) != 0 && !rc)
            rc = SS_EIO;
        f->out = NULL;
    }
    if (f->in && f->in != stdin)
        fclose(f->in);
    f->in = NULL;
    if (!rc && f->tmp[0] && rename(f->tmp, f->outname) != 0)
        rc = SS_EIO;
    if (rc && f->tmp[0]) {
        int en = errno; /* keep the cause for the caller's message */
        unlink(f->tmp);
        errno = en;
    }
    return rc;
}
