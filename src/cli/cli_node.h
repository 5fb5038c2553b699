/*
 * cli_node.h - the options shared by the components that run a stage
 * script: `sstream worker`, `sstream sink` and `sstream lua`.
 */
#ifndef SS_CLI_NODE_H
#define SS_CLI_NODE_H

#include "node/ss_node.h"

/* Worker options that are not the node's: who runs it (separate uids
 * in a container, ss_spawner_launch_as). Borrowed from argv. */
typedef struct cli_node_users {
    const char *user;         /* --user: the worker's own user */
    const char *enclave_user; /* --enclave-user: its enclaves' user */
} cli_node_users;

/* Parses argv (argv[0] is the subcommand) into o for role, and into u
 * (may be NULL: then --user and --enclave-user are refused). Returns -1
 * to go on, or an exit status (0 after --help, 2 on bad usage, reported
 * as "sstream <cmd>: <what>"). */
int cli_node_parse(int argc, char **argv, const char *role,
                   ss_node_opts *o, cli_node_users *u);

/* Runs the component o describes: SIGINT and SIGTERM stop it (they are
 * back to their defaults on return). Returns the process exit status:
 * 0, or 1 on a failure (reported on stderr) or when stopped. */
int cli_node_main(const ss_node_opts *o);

#endif
