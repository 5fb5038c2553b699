/*
 * cmd_gen.c - `sstream gen`: writes a synthetic dataset.
 *
 *   sstream gen flights --rows N [--seed S] [--no-header] [-o FILE]
 */
#include "cli/cmds.h"
#include "gen/ss_gen_flights.h"
#include "securestreams.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gen_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream gen flights --rows N [--seed S] [--no-header] "
            "[-o FILE]\n\n"
            "Writes a synthetic airline on-time dataset (the 29 columns of\n"
            "the Data Expo 2009 data, years 2005-2008) as CSV. The output\n"
            "depends only on N, S and the header flag.\n\n"
            "options:\n"
            "   --rows N      number of data rows (required)\n"
            "   --seed S      generator seed, 0..2^64-1 (default 1)\n"
            "   --no-header   do not write the header line\n"
            "   -o FILE       write to FILE instead of standard output\n"
            "   --help        show this help\n");
}

/* Strict decimal parse of a whole string into [0, UINT64_MAX]. */
static int gen_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int gen_bad(const char *fmt, const char *arg)
{
    fputs("sstream gen: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

/* Returns the value of option argv[*i] ("--opt V" or "--opt=V") and
 * advances *i, or NULL if it has none. */
static const char *gen_optarg(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int gen_is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/*
 * The `gen` subcommand (argv[0] is "gen"). Writes to stdout or to the
 * file given with -o, which it creates, truncates and closes. Returns the
 * exit status: 0 on success or --help, 2 on bad usage (message on
 * stderr), 1 if the output could not be written. A closed pipe on stdout
 * ends the output quietly with status 0. Owns nothing passed in.
 */
int cmd_gen(int argc, char **argv)
{
    const char *dataset = NULL, *path = NULL, *v;
    ss_gen_flights_opts opts = {0, 1, 1};
    int have_rows = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            gen_usage(stdout);
            return 0;
        } else if (gen_is_opt(a, "--rows")) {
            v = gen_optarg(argc, argv, &i, "--rows");
            if (!v)
                return gen_bad("%s needs a number", "--rows");
            if (gen_parse_u64(v, &opts.rows) < 0)
                return gen_bad("bad --rows '%s' (want 0..2^64-1)", v);
            have_rows = 1;
        } else if (gen_is_opt(a, "--seed")) {
            v = gen_optarg(argc, argv, &i, "--seed");
            if (!v)
                return gen_bad("%s needs a number", "--seed");
            if (gen_parse_u64(v, &opts.seed) < 0)
                return gen_bad("bad --seed '%s' (want 0..2^64-1)", v);
        } else if (strcmp(a, "--no-header") == 0) {
            opts.header = 0;
        } else if (strcmp(a, "-o") == 0 || gen_is_opt(a, "--output")) {
            if (strcmp(a, "-o") == 0)
                v = i + 1 < argc ? argv[++i] : NULL;
            else
                v = gen_optarg(argc, argv, &i, "--output");
            if (!v || !*v)
                return gen_bad("%s needs a file name", a);
            path = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            return gen_bad("unknown option '%s'", a);
        } else if (!dataset) {
            dataset = a;
        } else {
            return gen_bad("unexpected argument '%s'", a);
        }
    }
    if (!dataset)
        return gen_bad("no dataset given (known: %s)", "flights");
    if (strcmp(dataset, "flights") != 0)
        return gen_bad("unknown dataset '%s' (known: flights)", dataset);
    if (!have_rows)
        return gen_bad("%s is required", "--rows N");

    if (path && strcmp(path, "-") == 0)
        path = NULL;
    FILE *out = stdout;
    if (path) {
        out = fopen(path, "wb");
        if (!out) {
            fprintf(stderr, "sstream gen: cannot create '%s': %s\n", path,
                    strerror(errno));
            return 1;
        }
    }
    uint64_t bytes = 0;
    int rc = ss_gen_flights_write(out, &opts, &bytes);
    int err = errno;
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        rc = SS_EIO;
        err = errno;
    }
    if (rc == SS_EIO && out == stdout && err == EPIPE)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "sstream gen: writing %s: %s\n",
                path ? path : "standard output",
                rc == SS_EIO ? strerror(err) : ss_strerror(rc));
        return 1;
    }
    return 0;
}
