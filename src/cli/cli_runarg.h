/*
 * cli_runarg.h - the NAME argument of the commands that follow a run
 * started with `sstream run --on swarm` (status, logs, stop): --help, the
 * number of arguments, and the run's record (ss_runrec.h).
 */
#ifndef SS_CLI_RUNARG_H
#define SS_CLI_RUNARG_H

#include "run/ss_runrec.h"

#include <stdio.h>

/* For `sstream CMD NAME [more]` with argc from 2 to max_argc: prints the
 * usage on stdout for a lone --help or -h, and returns 0; prints it on
 * stderr for another count of arguments or a NAME starting with '-', and
 * returns 2; says "sstream CMD: why" on stderr when NAME's record cannot
 * be read, and returns 1. Returns -1 with *r filled when the command goes
 * on. */
int cli_runarg(int argc, char **argv, int max_argc, const char *cmd,
               void (*usage)(FILE *), ss_runrec *r);

#endif
