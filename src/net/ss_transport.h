/*
 * ss_transport.h - process-wide settings that make the transport cheap.
 *
 * Every component (source, router, worker, sink) moves batches of up to
 * a few hundred KiB through ZeroMQ, whose I/O thread allocates each
 * received message in its own malloc arena while the main thread frees
 * it. With glibc's defaults every such free can shrink that arena
 * (madvise(MADV_DONTNEED): a TLB shootdown across CPUs) and the next
 * message faults the pages in again; on a 2-core VM this was 10-15% of
 * a pipeline's CPU time (docs/PERFORMANCE.md, "Transport").
 */
#ifndef SS_TRANSPORT_H
#define SS_TRANSPORT_H

/* Call once at process start, before any thread exists: keeps freed heap
 * memory (up to 64 MiB) instead of trimming it, and serves blocks up to
 * 32 MiB from the heap rather than from fresh mmap()s. Never fails (an
 * allocator that ignores the settings just keeps its defaults). */
void ss_transport_init(void);

/*
 * Waits up to timeout_ms (-1: forever, 0: just look) until one of the n
 * ZeroMQ sockets socks[] (NULL entries are skipped) may have a message to
 * read. Cheaper than zmq_poll, which makes a poll() system call even when
 * a message is waiting and asks every socket for its events twice: this
 * asks each socket once (ZMQ_EVENTS, which also processes its pending
 * commands) and only then sleeps in one poll() on their ZMQ_FDs.
 *
 * Returns 1 when a socket has a message, or may have one (its ZMQ_FD woke
 * up: the caller then reads with ZMQ_DONTWAIT, which can still find
 * nothing, and waits again); 0 on timeout; -1 with errno (EINTR after a
 * signal, or ZeroMQ's error).
 */
int ss_transport_wait(void *const *socks, int n, int timeout_ms);

/*
 * The same, for a caller that knows more: drained[i] nonzero says that
 * the caller's last ZeroMQ call on socks[i] was a receive that failed
 * with EAGAIN (ZMQ_DONTWAIT). That receive has just processed the
 * socket's pending commands and found nothing, and libzmq signals the
 * socket's ZMQ_FD again for anything that arrives after it, so asking
 * ZMQ_EVENTS now would only repeat it: one poll() system call saved per
 * such socket and wait. A send, or any other call on the socket since,
 * may have consumed that signal: pass 0 then (drained NULL: all 0).
 */
int ss_transport_wait_drained(void *const *socks, const int *drained, int n,
                              int timeout_ms);

/*
 * A hint for an endpoint that ZeroMQ refused: when ep names no transport
 * ("localhost:5999" instead of "tcp://localhost:5999"), a static sentence
 * that says how to write it, starting with "; "; otherwise "". Never NULL.
 */
const char *ss_endpoint_hint(const char *ep);

#endif
