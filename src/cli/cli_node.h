/*
 * cli_node.h - the options shared by the components that run a stage
 * script: `sstream worker`, `sstream sink` and `sstream lua`.
 */
#ifndef SS_CLI_NODE_H
#define SS_CLI_NODE_H

#include "node/ss_node.h"

/* Parses argv (argv[0] is the subcommand) into o for role. Returns -1 to
 * go on, or an exit status (0 after --help, 2 on bad usage, reported as
 * "sstream <cmd>: <what>"). */
int cli_node_parse(int argc, char **argv, const char *role,
                   ss_node_opts *o);

/* Runs the component o describes: SIGINT and SIGTERM stop it (they are
 * back to their defaults on return). Returns the process exit status:
 * 0, or 1 on a failure (reported on stderr) or when stopped. */
int cli_node_main(const ss_node_opts *o);

#endif
