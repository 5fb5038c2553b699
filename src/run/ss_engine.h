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

/* Runs prog (NULL: ss_engine_client()) with the arguments argv
 * (NULL-terminated, not counting the program), waits at most timeout_ms
 * (then kills it), and keeps at most max bytes of each of its stdout and
 * stderr. Returns 0 when it exits with status 0, with its stdout in *out
 * (NUL-terminated; the caller frees it); else *out is NULL and the result
 * is SS_EIO (non-zero exit, death, cannot start), SS_ETIMEOUT or
 * SS_ENOMEM, with why (whylen bytes) holding the first line of its stderr
 * (else of its stdout) or what happened to it. For questions whose answer
 * is parsed: stderr never mixes into *out. */
int ss_engine_query(const char *prog, const char *const *argv,
                    long timeout_ms, size_t max, char **out, char *why,
                    size_t whylen);

/* The engine's client program: DOCKER, else "docker" (borrowed). */
const char *ss_engine_client(void);

#endif
