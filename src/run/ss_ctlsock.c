/*
 * ss_ctlsock.c - the owner's control socket of a local run
 * (ss_ctlsock.h).
 */
#include "run/ss_ctlsock.h"
#include "core/ss_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* See ss_ctlsock.h. */
int ss_ctlsock_listen(const char *dir, char *path, size_t pathlen,
                      char *err, size_t errlen)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int w = snprintf(path, pathlen, "%s/ctl.sock", dir);
    if (w < 0 || (size_t)w >= pathlen || (size_t)w >= sizeof a.sun_path) {
        ss_errf(err, errlen, "control socket path '%s/ctl.sock' is too "
                "long for a unix socket", dir);
        return -1;
    }
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ss_errf(err, errlen, "cannot make '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || chmod(dir, 0700) != 0) {
        ss_errf(err, errlen, "'%s' is not a folder of this user", dir);
        return -1;
    }
    memcpy(a.sun_path, path, (size_t)w + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        ss_errf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, 8) != 0) {
        ss_errf(err, errlen, "cannot listen on '%s': %s", path,
                strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static uint64_t now_ms(void) { return ss_now_ns() / 1000000ull; }

/* See ss_ctlsock.h. */
int ss_ctlsock_accept(int lfd, char *req, size_t reqlen, long *peer_uid,
                      const char **why)
{
    *peer_uid = -1;
    *why = NULL;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return -1;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0) {
        *why = "its peer credentials cannot be read";
        close(fd);
        return -2;
    }
    *peer_uid = (long)cr.uid;
    if (cr.uid != geteuid() && cr.uid != 0) {
        static const char no[] = "refused: you are not the owner of this "
                                 "run\n";
        (void)!write(fd, no, sizeof no - 1);
        *why = "it is not the run's owner";
        close(fd);
        return -2;
    }
    size_t len = 0;
    uint64_t deadline = now_ms() + SS_CTLSOCK_READ_MS;
    for (;;) {
        if (len + 1 >= reqlen) {
            *why = "its request is too long";
            break;
        }
        ssize_t r = read(fd, req + len, reqlen - 1 - len);
        if (r > 0) {
            len += (size_t)r;
            req[len] = '\0';
            char *nl = memchr(req, '\n', len);
            if (nl) {
                *nl = '\0';
                for (const char *c = req; *c; c++)
                    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                        *why = "its request holds a control character";
                        break;
                    }
                if (*why)
                    break;
                return fd;
            }
            continue;
        }
        if (r == 0) {
            *why = "it closed before sending a whole line";
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            *why = "reading its request failed";
            break;
        }
        uint64_t t = now_ms();
        if (t >= deadline) {
            *why = "it sent no whole request line in time";
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        (void)poll(&p, 1, (int)(deadline - t));
    }
    char msg[128];
    int n = snprintf(msg, sizeof msg, "error: the request was not read: "
                     "%s\n", *why);
    (void)!write(fd, msg, (size_t)n);
    close(fd);
    return -2;
}

/* See ss_ctlsock.h. */
void ss_ctlsock_answer(int fd, const char *text)
{
    size_t n = strlen(text), off = 0;
    uint64_t deadline = now_ms() + SS_CTLSOCK_READ_MS;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        uint64_t t = now_ms();
        if (w == 0 || errno != EAGAIN || t >= deadline)
            break;
        struct pollfd p = {fd, POLLOUT, 0};
        (void)poll(&p, 1, (int)(deadline - t));
    }
    close(fd);
}

/* See ss_ctlsock.h. */
int ss_ctlsock_request(const char *path, const char *req, char *ans,
                       size_t anslen, int timeout_ms, char *err,
                       size_t errlen)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) {
        ss_errf(err, errlen, "'%s' is too long for a unix socket", path);
        return -1;
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ss_errf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        ss_errf(err, errlen, "cannot reach the run's control socket %s: %s",
                path, strerror(errno));
        close(fd);
        return -1;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t n = strlen(req);
    if (write(fd, req, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
        ss_errf(err, errlen, "cannot send the request to %s: %s", path,
                strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        if (len + 1 >= anslen)
            break;
        ssize_t r = read(fd, ans + len, anslen - 1 - len);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ans[len] = '\0';
            ss_errf(err, errlen, "no answer from the run's supervisor within "
                    "%d ms (%s)", timeout_ms, strerror(errno));
            close(fd);
            return -1;
        }
        break;
    }
    ans[len] = '\0';
    close(fd);
    return 0;
}
