/*
 * cmds.h - the subcommands of `sstream`, one file each (cmd_<name>.c).
 *
 * Each takes argc/argv with argv[0] the subcommand's name, prints its
 * usage on --help (exit 0), reports bad usage as "sstream <cmd>: <what>"
 * on stderr (exit 2), and returns the process exit status.
 */
#ifndef SS_CMDS_H
#define SS_CMDS_H

int cmd_run(int argc, char **argv);
int cmd_source(int argc, char **argv);
int cmd_router(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_sink(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_lua(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_keyservice(int argc, char **argv);
int cmd_enclave(int argc, char **argv);
int cmd_spawner(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_scale(int argc, char **argv);

#endif
