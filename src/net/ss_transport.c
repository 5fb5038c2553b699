/*
 * ss_transport.c - process-wide transport settings (ss_transport.h).
 */
#include "net/ss_transport.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#define TRIM_THRESHOLD (64 << 20) /* free heap top kept before trimming */
#define MMAP_THRESHOLD (32 << 20) /* glibc's maximum on 64-bit */

/*
 * getpid() with a cache. libzmq calls getpid() on every mailbox operation
 * (its check that the process did not fork), several times per message
 * and per poll, and glibc no longer caches the pid: each call is a system
 * call, which this VM makes expensive. This definition in the executable
 * takes the place of libc's for libzmq too (ELF symbol interposition).
 * The cache is cleared in the child of every fork() (pthread_atfork), so
 * that the child sees its own pid as before; nothing here creates
 * processes any other way before exec (posix_spawn children exec at
 * once and call nothing of ours).
 */
static atomic_int cached_pid;

static void forget_pid(void) { atomic_store(&cached_pid, 0); }

/* Registered before main(), so before any fork or getpid. */
__attribute__((constructor)) static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

pid_t getpid(void)
{
    int pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (!pid) {
        pid = (int)syscall(SYS_getpid);
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return (pid_t)pid;
}

/* See ss_transport.h. */
void ss_transport_init(void)
{
#ifdef M_TRIM_THRESHOLD
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
#endif
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
#endif
}

#define WAIT_MAX 8

/* See ss_transport.h. */
int ss_transport_wait(void *const *socks, int n, int timeout_ms)
{
    return ss_transport_wait_drained(socks, NULL, n, timeout_ms);
}

/* See ss_transport.h. */
int ss_transport_wait_drained(void *const *socks, const int *drained, int n,
                              int timeout_ms)
{
    struct pollfd pfd[WAIT_MAX];
    int np = 0;
    if (n > WAIT_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!socks[i])
            continue;
        int ev = 0, fd = -1;
        size_t len = sizeof ev;
        if (!(drained && drained[i])) { /* else it would find nothing */
            if (zmq_getsockopt(socks[i], ZMQ_EVENTS, &ev, &len))
                return -1;
            if (ev & ZMQ_POLLIN)
                return 1;
        }
        len = sizeof fd;
        if (zmq_getsockopt(socks[i], ZMQ_FD, &fd, &len))
            return -1;
        pfd[np].fd = fd;
        pfd[np].events = POLLIN;
        pfd[np].revents = 0;
        np++;
    }
    if (timeout_ms == 0)
        return 0;
    int rc = poll(pfd, (nfds_t)np, timeout_ms);
    return rc < 0 ? -1 : rc > 0;
}

/* See ss_transport.h. */
const char *ss_endpoint_hint(const char *ep)
{
    if (!ep || strstr(ep, "://"))
        return "";
    return "; an endpoint names its transport: tcp://HOST:PORT, "
           "ipc:///PATH or inproc://NAME";
}
