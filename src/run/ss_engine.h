/*
 * ss_engine.h - driving a container engine through its command-line
 * client (`docker ...`), for `sstream run --on swarm` and the commands
 * that follow such a run (status, logs, stop, scale).
 *
 * The client is DOCKER from the environment, else "docker" on the PATH.
 * Every call has a time limit: a client that hangs (an engine that does
 * not answer) is killed and the call fails.
 */
#ifndef SS_ENGINE_H
#define SS_ENGINE_H

#include <stddef.h>

/* Runs the engine's client with the arguments argv (NULL-terminated, not
 * counting the program), waits at most timeout_ms, and puts what it wrote
 * on stdout and stderr (interleaved, cut to outlen - 1 bytes, always
 * NUL-terminated) into out (NULL: discarded). Returns its exit status
 * (0..255), or -1 when it could not be started, was killed, or ran past
 * the time limit (out then says so). */
int ss_engine_cmd(const char *const *argv, char *out, size_t outlen,
                  long timeout_ms);

/* The same with the client's output going to the file descriptor fd (its
 * stdout and stderr, e.g. a log file or 2), not captured. */
int ss_engine_cmd_fd(const char *const *argv, int fd, long timeout_ms);

/* The engine's client program: DOCKER, else "docker" (borrowed). */
const char *ss_engine_client(void);

#endif
