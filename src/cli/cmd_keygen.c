/*
 * cmd_keygen.c - `sstream keygen`: creates a pipeline's key directory.
 *
 *   sstream keygen [--alg A] [--curve NAME]... [--force] DIR|-o DIR
 */
#include "cli/cmds.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"

#include <stdio.h>
#include <string.h>

#define KEYGEN_MAX_CURVE 32

static void keygen_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream keygen [--alg A] [--curve NAME]... [--force] "
            "DIR\n\n"
            "(-o DIR is taken for DIR, as with sstream gen and deploy.)\n\n"
            "Creates the key directory of a pipeline (mode 0700):\n"
            "   data.key            the data key sealing every batch "
            "(0600)\n"
            "   platform.key/.pub   ed25519 pair signing the sandbox "
            "enclaves'\n"
            "                       attestation reports (not "
            "hardware-rooted)\n"
            "   curve-NAME.key/.pub ZeroMQ CURVE pairs (default: server, "
            "client,\n"
            "                       keyservice)\n\n"
            "Which role may hold which file: docs/SECURITY.md, \"Keys by "
            "role\".\n"
            "`sstream run` hands each component only its own.\n\n"
            "options:\n"
            "   --alg A        auto (default: aes256gcm if this CPU has "
            "AES-NI,\n"
            "                  else xchacha20poly1305), aes256gcm, "
            "xchacha20poly1305\n"
            "   --curve NAME   create a CURVE pair NAME (repeatable; "
            "replaces\n"
            "                  the defaults)\n"
            "   --force        overwrite existing key files\n"
            "   --help         show this help\n");
}

/*
 * The `keygen` subcommand. Writes the key files with ss_keys_create_dir
 * and prints where (never the keys). Returns 0, 2 on bad usage, 1 if the
 * keys could not be written.
 */
int cmd_keygen(int argc, char **argv)
{
    const char *curve[KEYGEN_MAX_CURVE];
    size_t ncurve = 0;
    const char *dir = NULL, *algname = "auto";
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            keygen_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--alg") && i + 1 < argc) {
            algname = argv[++i];
        } else if (!strcmp(a, "--curve") && i + 1 < argc) {
            if (ncurve == KEYGEN_MAX_CURVE) {
                fprintf(stderr, "sstream keygen: too many --curve\n");
                return 2;
            }
            curve[ncurve++] = argv[++i];
        } else if (!strcmp(a, "-o") && i + 1 < argc && !dir) {
            dir = argv[++i]; /* as sstream gen -o, deploy -o */
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sstream keygen: unknown or incomplete option "
                            "'%s'\n", a);
            return 2;
        } else if (!dir) {
            dir = a;
        } else {
            fprintf(stderr, "sstream keygen: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "sstream keygen: missing DIR (see --help)\n");
        return 2;
    }
    int alg = ss_aead_alg_parse(algname);
    if (alg < 0) {
        fprintf(stderr, "sstream keygen: unknown algorithm '%s' (auto, "
                        "aes256gcm, xchacha20poly1305)\n", algname);
        return 2;
    }
    char err[512] = "";
    int rc = ss_keys_create_dir(dir, alg, curve, ncurve, force, err,
                                sizeof err);
    if (rc) {
        fprintf(stderr, "sstream keygen: %s\n",
                err[0] ? err : ss_strerror(rc));
        return 1;
    }
    ss_key *k = NULL;
    rc = ss_keys_load_data(dir, &k, err, sizeof err);
    if (rc) {
        fprintf(stderr, "sstream keygen: %s\n", err);
        return 1;
    }
    printf("keys written to %s: data.key (%s), platform.key/.pub",
           dir, ss_aead_alg_name(ss_key_alg(k)));
    ss_key_destroy(&k);
    if (!ncurve)
        printf(", curve-server, curve-client, curve-keyservice");
    for (size_t i = 0; i < ncurve; i++)
        printf(", curve-%s", curve[i]);
    printf("\n");
    return 0;
}
