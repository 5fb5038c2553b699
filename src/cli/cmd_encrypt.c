/*
 * cmd_encrypt.c - `sstream encrypt`: turns a line-oriented dataset into a
 * sealed stream file (format in crypto/ss_sealfile.h).
 *
 *   sstream encrypt --keys DIR [--batch-size 256K] [--stream N] IN OUT
 */
#include "cli/cli_io.h"
#include "cli/cmds.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_sealfile.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

static void encrypt_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream encrypt --keys DIR [--batch-size SIZE] "
            "[--stream N] IN OUT\n\n"
            "Seals a line-oriented dataset IN into OUT: batches of at most "
            "SIZE\n"
            "bytes of MessagePack str events (one per line, without the "
            "newline),\n"
            "each a sealed wire message, and a sealed end record. "
            "`sstream\n"
            "decrypt` gives back IN byte for byte. IN or OUT may be '-'.\n\n"
            "options:\n"
            "   --keys DIR         key directory (sstream keygen)\n"
            "   --batch-size SIZE  plaintext bytes per batch (default "
            "256K)\n"
            "   --stream N         stream id written in each batch "
            "(default: a\n"
            "                      random id, top bit clear: the file's "
            "id, so that\n"
            "                      batches of two files never pass for "
            "one stream)\n"
            "   --help             show this help\n");
}

typedef struct encrypt_ctx {
    const ss_key *key;
    FILE *out;
    ss_buf payload; /* events of the batch being filled */
    ss_buf msg;     /* sealed message */
    ss_hdr h;       /* header of the batch being filled */
    uint64_t rows;  /* events so far */
    uint64_t batches;
    int reported; /* an error message was already printed */
} encrypt_ctx;

/* Seals and writes the pending batch (if any; with end, even an empty
 * one). The last data batch carries SS_AUX_END and 1 source stream in
 * aux, sealed with the header, as the native source's last batch does:
 * `sstream source --format sealed` forwards the batches unchanged and the
 * sink checks the stream whole against it. */
static int encrypt_flush(encrypt_ctx *c, int end)
{
    if (!c->h.count && !end)
        return 0;
    ss_buf_reset(&c->msg);
    ss_hdr h = c->h;
    if (end)
        h.aux = SS_AUX_END | 1u;
    int rc = ss_aead_seal(c->key, &h, c->payload.data ? c->payload.data
                                                        : "",
                          c->payload.len, &c->msg);
    if (c->payload.data)
        sodium_memzero(c->payload.data, c->payload.len);
    if (!rc)
        rc = ss_sealfile_write(c->out, c->msg.data, c->msg.len);
    if (rc)
        return rc;
    c->batches++;
    c->h.seq = c->batches;
    c->h.first_row = c->rows;
    c->h.count = 0;
    ss_buf_reset(&c->payload);
    return 0;
}

/* Reads IN line by line and writes the sealed batches and end record. */
static int encrypt_stream(encrypt_ctx *c, FILE *in, size_t batch,
                          const char *inname)
{
    char *line = NULL;
    size_t cap = 0;
    int newline = 0, rc = 0;
    size_t max_line = SS_BATCH_MAX_SIZE - ss_aead_overhead(c->key) - 5;
    for (;;) {
        errno = 0;
        ssize_t n = getdelim(&line, &cap, '\n', in);
        if (n < 0) {
            if (ferror(in)) {
                fprintf(stderr, "sstream encrypt: cannot read %s: %s\n",
                        inname, strerror(errno));
                c->reported = 1;
                rc = SS_EIO;
            }
            break;
        }
        size_t len = (size_t)n;
        newline = len && line[len - 1] == '\n';
        if (newline)
            len--;
        if (len > max_line) {
            fprintf(stderr, "sstream encrypt: %s: line %llu is longer than "
                            "a batch may be (%u bytes)\n", inname,
                    (unsigned long long)c->rows + 1, SS_BATCH_MAX_SIZE);
            c->reported = 1;
            rc = SS_ETOOBIG;
            break;
        }
        if (c->h.count && c->payload.len + len + 5 > batch) {
            rc = encrypt_flush(c, 0);
            if (rc)
                break;
        }
        rc = ss_mp_put_str(&c->payload, line, len);
        if (rc)
            break;
        c->h.count++;
        c->rows++;
    }
    if (line) {
        sodium_memzero(line, cap);
        free(line);
    }
    if (!rc)
        rc = encrypt_flush(c, 1);
    if (rc)
        return rc;
    /* The end record: batch count, row count and final newline, sealed. */
    ss_hdr t;
    memset(&t, 0, sizeof t);
    t.kind = SS_MSG_EOS;
    t.flags = SS_BF_FINAL;
    t.stream = c->h.stream;
    t.seq = c->batches;
    t.first_row = c->rows;
    t.aux = newline ? SS_SEALFILE_NEWLINE : 0;
    ss_buf_reset(&c->msg);
    rc = ss_aead_seal(c->key, &t, "", 0, &c->msg);
    if (!rc)
        rc = ss_sealfile_write(c->out, c->msg.data, c->msg.len);
    return rc;
}

/*
 * The `encrypt` subcommand. Reads IN, writes OUT through a temporary file
 * renamed at the end (no partial OUT on failure). Returns 0, 2 on bad
 * usage, 1 on any failure (message on stderr). Never prints key material
 * or data.
 */
int cmd_encrypt(int argc, char **argv)
{
    const char *keys = NULL, *inname = NULL, *outname = NULL;
    uint64_t batch = SS_BATCH_DEFAULT_SIZE, stream = UINT64_MAX;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            encrypt_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--keys") && i + 1 < argc) {
            keys = argv[++i];
        } else if (!strcmp(a, "--batch-size") && i + 1 < argc) {
            if (ss_parse_u64(argv[++i], 64, SS_BATCH_MAX_SIZE / 2, 1,
                             &batch)) {
                fprintf(stderr, "sstream encrypt: bad --batch-size '%s' "
                                "(64 to 32M, suffixes K, M)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--stream") && i + 1 < argc) {
            if (ss_parse_u64(argv[++i], 0, UINT32_MAX, 0, &stream)) {
                fprintf(stderr, "sstream encrypt: bad --stream '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sstream encrypt: unknown or incomplete option "
                            "'%s'\n", a);
            return 2;
        } else if (!inname) {
            inname = a;
        } else if (!outname) {
            outname = a;
        } else {
            fprintf(stderr, "sstream encrypt: unexpected argument '%s'\n",
                    a);
            return 2;
        }
    }
    ss_key *key;
    cli_files files;
    int rc = cli_keyed_files_open(&files, "encrypt", keys, inname, outname,
                                  &key);
    if (rc >= 0)
        return rc;
    encrypt_ctx c;
    memset(&c, 0, sizeof c);
    c.key = key;
    c.out = files.out;
    c.h.kind = SS_MSG_DATA;
    c.h.flags = SS_BF_LINES | SS_BF_LAST_PART; /* unsplit, as the source's */
    if (stream == UINT64_MAX) { /* the file's id: random, never a result's */
        uint32_t id = 0;
        randombytes_buf(&id, sizeof id);
        stream = id & 0x7fffffffu;
    }
    c.h.stream = (uint32_t)stream;
    rc = encrypt_stream(&c, files.in, (size_t)batch, inname);
    rc = cli_files_close(&files, rc);
    if (rc) {
        if (c.reported)
            ;
        else if (rc == SS_EIO)
            fprintf(stderr, "sstream encrypt: cannot write %s: %s\n",
                    outname, strerror(errno));
        else
            fprintf(stderr, "sstream encrypt: %s\n", ss_strerror(rc));
    } else {
        fprintf(stderr, "sstream encrypt: %llu lines in %llu batches "
                        "(%s)\n", (unsigned long long)c.rows,
                (unsigned long long)c.batches,
                ss_aead_alg_name(ss_key_alg(key)));
    }
    ss_buf_release(&c.payload);
    ss_buf_release(&c.msg);
    ss_key_destroy(&key);
    return rc ? 1 : 0;
}
