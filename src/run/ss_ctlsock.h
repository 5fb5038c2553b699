/*
 * ss_ctlsock.h - the owner's control socket of a run on this machine:
 * how `sstream scale NAME STAGE N` reaches the supervisor of `sstream run`.
 *
 * A unix stream socket in a folder of its own (mode 0700) inside the
 * run's private folder, the socket itself mode 0600: only the run's uid
 * (and root) can connect. The supervisor also checks each connection's
 * peer credentials (SO_PEERCRED): a uid other than its own (or root) is
 * refused, so a loosened mode alone does not let a stranger in. No TCP.
 *
 * One request per connection: one line of at most SS_CTLSOCK_LINE_MAX
 * bytes ("scale STAGE N\n"), read within SS_CTLSOCK_READ_MS; one answer,
 * lines of text, the first word "ok", "refused" or "error"; then the
 * connection is closed.
 */
#ifndef SS_CTLSOCK_H
#define SS_CTLSOCK_H

#include <stddef.h>
#include <sys/types.h>

#define SS_CTLSOCK_LINE_MAX 256
#define SS_CTLSOCK_READ_MS 1000

/* Makes dir (mode 0700; an existing one must be a folder of this uid,
 * not a link) and listens on dir/ctl.sock (mode 0600, non-blocking,
 * close-on-exec). Returns the listening fd, or -1 with a reason in err. */
int ss_ctlsock_listen(const char *dir, char *path, size_t pathlen,
                      char *err, size_t errlen);

/* Accepts one connection on lfd and reads its request line into req
 * (NUL-terminated, without the newline). Returns the connection's fd
 * (the caller answers with ss_ctlsock_answer, which closes it), -1 when
 * nobody was waiting, or -2 when the connection was refused and closed:
 * another uid than this process's or root (*why "uid N is not the run's
 * owner"), no line within SS_CTLSOCK_READ_MS, a line too long or with a
 * control character. *peer_uid is the peer's uid when known, else -1. */
int ss_ctlsock_accept(int lfd, char *req, size_t reqlen, long *peer_uid,
                      const char **why);

/* Writes text (the answer: its first word ok / refused / error) to the
 * connection and closes it. Never blocks more than SS_CTLSOCK_READ_MS. */
void ss_ctlsock_answer(int fd, const char *text);

/* The client side: connects to path, sends req (one line), reads the
 * answer (at most anslen - 1 bytes, NUL-terminated) until the server
 * closes, within timeout_ms. Returns 0, or -1 with a reason in err (no
 * such socket: the run ended; permission denied: not the run's owner). */
int ss_ctlsock_request(const char *path, const char *req, char *ans,
                       size_t anslen, int timeout_ms, char *err,
                       size_t errlen);

#endif
