/*
 * test_ctlsock.c - the owner's control socket of a local run
 * (src/run/ss_ctlsock.c): the folder is 0700 and the socket 0600; a
 * request line is read and answered; a line too long, one with a control
 * character and a client that sends nothing are refused with a reason;
 * nobody waiting is not an error; the client says why it cannot connect.
 * (Another uid's connection is refused by SO_PEERCRED: that needs root
 * and a second uid, tests/integration/test_scale.sh plays it.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run/ss_ctlsock.h"

static char dir[32], sockdir[48], path[64];
static int lfd = -1;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ss_ctlsock_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sockdir, sizeof sockdir, "%s/ctl", dir);
    char err[256];
    lfd = ss_ctlsock_listen(sockdir, path, sizeof path, err, sizeof err);
    assert_true(lfd >= 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (lfd >= 0)
        close(lfd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Waits until a client is waiting on lfd (at most 5 s). */
static void await_client(void)
{
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
}

/* A child process that connects, sends raw[0..n) and exits (its answer
 * is read by the parent's request() where needed). */
static pid_t raw_client(const char *raw, size_t n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
            _exit(1);
        if (n && write(fd, raw, n) != (ssize_t)n)
            _exit(2);
        char buf[256];
        while (read(fd, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    return pid;
}

static void modes_are_owner_only(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(sockdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void nobody_waiting(void **state)
{
    (void)state;
    char req[SS_CTLSOCK_LINE_MAX];
    long uid;
    const char *why;
    assert_int_equal(ss_ctlsock_accept(lfd, req, sizeof req, &uid, &why), -1);
}

static void request_answered(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char ans[256], err[256];
        int rc = ss_ctlsock_request(path, "scale map 3", ans, sizeof ans,
                                    5000, err, sizeof err);
        _exit(rc == 0 && strcmp(ans, "ok: done\n") == 0 ? 0 : 3);
    }
    await_client();
    char req[SS_CTLSOCK_LINE_MAX];
    long uid;
    const char *why;
    int fd = ss_ctlsock_accept(lfd, req, sizeof req, &uid, &why);
    assert_true(fd >= 0);
    assert_string_equal(req, "scale map 3");
    assert_int_equal(uid, (long)geteuid());
    ss_ctlsock_answer(fd, "ok: done\n");
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* raw is refused (-2) with a reason containing want. */
static void refused(const char *raw, size_t n, const char *want)
{
    pid_t pid = raw_client(raw, n);
    await_client();
    char req[SS_CTLSOCK_LINE_MAX];
    long uid;
    const char *why = NULL;
    assert_int_equal(ss_ctlsock_accept(lfd, req, sizeof req, &uid, &why),
                     -2);
    assert_non_null(why);
    assert_non_null(strstr(why, want));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void too_long_refused(void **state)
{
    (void)state;
    char big[SS_CTLSOCK_LINE_MAX + 10];
    memset(big, 'A', sizeof big);
    refused(big, sizeof big, "too long");
}

static void control_character_refused(void **state)
{
    (void)state;
    static const char esc[] = "scale map\x1b[2J 3\n";
    refused(esc, sizeof esc - 1, "control character");
}

static void silent_client_dropped(void **state)
{
    (void)state;
    refused("scale", 5, "no whole request line in time"); /* no newline */
}

static void client_says_why(void **state)
{
    (void)state;
    char ans[64], err[512], gone[200];
    snprintf(gone, sizeof gone, "%s/none.sock", dir);
    assert_int_equal(ss_ctlsock_request(gone, "scale map 1", ans, sizeof ans,
                                        1000, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "cannot reach the run's control socket"));
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(modes_are_owner_only),
        cmocka_unit_test(nobody_waiting),
        cmocka_unit_test(request_answered),
        cmocka_unit_test(too_long_refused),
        cmocka_unit_test(control_character_refused),
        cmocka_unit_test(silent_client_dropped),
        cmocka_unit_test(client_says_why),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
