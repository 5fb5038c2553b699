/*
 * test_spawner.c - the enclave spawner (src/enclave/ss_spawner.c) starts
 * the enclave of its own worker's stage and chain only: a worker (the
 * attacker here: it holds its end of the socket) that asks for another
 * chained script, another stage name for one, a chain in another order,
 * one stage more or one less, is refused with the reason, and nothing is
 * started; the worker's own command line is accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "enclave/ss_spawner.h"
#include "securestreams.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const chain[] = {"filter=/pl/filter.lua",
                                    "reduce=/pl/reduce.lua"};
static const char *const chain_at[] = {"filter=/dev/fd/5",
                                       "reduce=/dev/fd/6"};

/* Starts a spawner for worker map-1 (stage map, chain above) whose
 * program is /bin/true; returns its pid, *sock the worker's end. */
static pid_t start_spawner(int *sock)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        ss_spawner_conf c;
        memset(&c, 0, sizeof c);
        c.program = "/bin/true";
        c.keys = "/nonexistent/keys";
        c.name = "map-1";
        c.stage = "map";
        c.script = "/pl/map.lua";
        c.chain = chain;
        c.chain_at = chain_at;
        c.nchain = 2;
        alarm(60); /* bounded, whatever happens */
        _exit(ss_spawner_serve(sv[1], &c) ? 1 : 0);
    }
    close(sv[1]);
    *sock = sv[0];
    return pid;
}

/* Asks for argv; returns the spawner's answer (0: started). */
static int ask(int sock, char *const *argv, char *err, size_t errlen)
{
    int memfd = memfd_create("test-chan", MFD_CLOEXEC);
    assert_true(memfd >= 0);
    pid_t pid = 0;
    err[0] = '\0';
    int rc = ss_spawner_spawn(sock, memfd, argv, &pid, err, errlen);
    close(memfd);
    if (rc == 0)
        assert_true(pid > 0);
    return rc;
}

#define BASE                                                                 \
    "x", "enclave", "--shm-fd", "3", "--name", "map-1", "--stage", "map",   \
        "--script", "/pl/map.lua"

static void test_chain_is_the_workers_own(void **state)
{
    (void)state;
    int sock;
    pid_t sp = start_spawner(&sock);
    char err[512];
    char *own[] = {BASE, "--chain", "filter=/pl/filter.lua", "--chain",
                   "reduce=/pl/reduce.lua", NULL};
    int rc = ask(sock, own, err, sizeof err);
    if (rc)
        fail_msg("the worker's own chain was refused: %s", err);

    /* the attacks: each refused, naming why */
    struct {
        const char *what, *why;
        char *argv[20];
    } bad[] = {
        {"another chained script", "not this worker's",
         {BASE, "--chain", "filter=/tmp/evil.lua", "--chain",
          "reduce=/pl/reduce.lua", NULL}},
        {"the same script under another stage name", "not this worker's",
         {BASE, "--chain", "filtre=/pl/filter.lua", "--chain",
          "reduce=/pl/reduce.lua", NULL}},
        {"the chain in another order", "not this worker's",
         {BASE, "--chain", "reduce=/pl/reduce.lua", "--chain",
          "filter=/pl/filter.lua", NULL}},
        {"one chained stage less", "chained stage",
         {BASE, "--chain", "filter=/pl/filter.lua", NULL}},
        {"no chain at all", "chained stage", {BASE, NULL}},
        {"one chained stage more", "not this worker's",
         {BASE, "--chain", "filter=/pl/filter.lua", "--chain",
          "reduce=/pl/reduce.lua", "--chain", "evil=/tmp/evil.lua", NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = ask(sock, bad[i].argv, err, sizeof err);
        if (rc != SS_EDENIED || !strstr(err, bad[i].why))
            fail_msg("%s: rc %d, '%s' (expected a refusal naming '%s')",
                     bad[i].what, rc, err, bad[i].why);
    }
    close(sock); /* the spawner ends with its worker */
    int st = 0;
    assert_int_equal(waitpid(sp, &st, 0), sp);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_is_the_workers_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
