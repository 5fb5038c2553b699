/*
 * cmd_lua.c - `sstream lua`: see cli_node.c for its options.
 */
#include "cli/cli_node.h"
#include "cli/cmds.h"
#include "core/ss_log.h"

/* Runs a stage script as a lua; returns the exit status. */
int cmd_lua(int argc, char **argv)
{
    ss_node_opts o;
    int rc = cli_node_parse(argc, argv, "lua", &o, NULL);
    if (rc >= 0)
        return rc;
    ss_log_set_component(o.name);
    return cli_node_main(&o);
}
