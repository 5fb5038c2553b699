/*
 * cmd_decrypt.c - `sstream decrypt`: gives back the dataset (or result)
 * sealed in a sealed stream file (format in crypto/ss_sealfile.h), or
 * the reasons an enclave sealed in a rejects file (rejects.jsonl), or
 * the state in a checkpoint snapshot (crypto/ss_snapshot.h).
 *
 *   sstream decrypt --keys DIR IN OUT
 */
#include "cli/cli_io.h"
#include "cli/cmds.h"
#include "core/ss_buf.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_sealfile.h"
#include "crypto/ss_snapshot.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <errno.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void decrypt_usage(FILE *f)
{
    fprintf(f,
            "usage: sstream decrypt --keys DIR IN OUT\n\n"
            "Opens every sealed batch of IN (made by `sstream encrypt`, or a "
            "sealed\n"
            "result) and writes the events to OUT, one per line: a dataset "
            "comes\n"
            "back byte for byte. Any modified, missing, reordered or extra "
            "batch\n"
            "is an error naming the batch; OUT is then not created. IN or "
            "OUT\n"
            "may be '-' (with '-', output already written stays).\n\n"
            "IN may also be a rejects file (rejects.jsonl) of an enclave-"
            "mode run: the\n"
            "lines whose reasons the enclave sealed for the owner are "
            "opened and\n"
            "written in the plain-mode form (stage, worker, stream, seq, "
            "row, error,\n"
            "event), the other lines as they are.\n\n"
            "IN may also be a checkpoint snapshot (a worker's NAME-eEPOCH.snap):"
            " OUT gets\n"
            "a line with its run, epoch, stage and worker, then the state of "
            "each\n"
            "stage as JSON, one line per stage ([1, [[operator, state], "
            "...]]).\n"
            "A snapshot that does not authenticate is an error.\n\n"
            "An empty IN is an error (a sealed file is never empty; an empty\n"
            "rejects.jsonl means the run rejected nothing).\n\n"
            "options:\n"
            "   --keys DIR   key directory (sstream keygen)\n"
            "   --help       show this help\n");
}

typedef struct decrypt_ctx {
    const ss_key *key;
    FILE *out;
    ss_buf msg, pt, tmp;
    uint64_t batches, rows;
    uint32_t stream;
    int started;  /* a line has been written (next one needs '\n') */
    int reported; /* an error message was already printed */
} decrypt_ctx;

/* Writes one non-line event (a result value) as text into c->tmp. */
static int decrypt_value_text(decrypt_ctx *c, const msgpack_object *o)
{
    ss_buf_reset(&c->tmp);
    if (o->type == MSGPACK_OBJECT_STR)
        return ss_buf_append(&c->tmp, o->via.str.ptr, o->via.str.size);
    size_t cap = 256;
    for (;;) {
        if (ss_buf_grow(&c->tmp, cap))
            return SS_ENOMEM;
        int n = msgpack_object_print_buffer(c->tmp.data, cap, *o);
        if (n >= 0 && (size_t)n + 1 < cap) {
            c->tmp.len = (size_t)n;
            return 0;
        }
        if (cap > SS_BATCH_MAX_SIZE)
            return SS_ETOOBIG;
        cap *= 4;
    }
}

/* Writes one event, preceded by the newline that ended the previous. */
static int decrypt_emit(decrypt_ctx *c, const char *s, size_t n)
{
    if (c->started && fputc('\n', c->out) == EOF)
        return SS_EIO;
    c->started = 1;
    if (n && fwrite(s, 1, n, c->out) != n)
        return SS_EIO;
    return 0;
}

/* Writes the events of an opened batch; SS_EDECODE if they are not
 * h->count well-formed values filling the payload. */
static int decrypt_events(decrypt_ctx *c, const ss_hdr *h)
{
    const char *p = c->pt.data;
    size_t n = c->pt.len, off = 0;
    int rc = 0;
    if (h->flags & SS_BF_LINES) {
        for (uint32_t i = 0; i < h->count && !rc; i++) {
            const char *s;
            size_t len;
            rc = ss_mp_get_str(p, n, &off, &s, &len);
            if (!rc)
                rc = decrypt_emit(c, s, len);
        }
        return rc ? rc : (off == n ? 0 : SS_EDECODE);
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    for (uint32_t i = 0; i < h->count && !rc; i++) {
        if (msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS) {
            rc = SS_EDECODE;
            break;
        }
        rc = decrypt_value_text(c, &u.data);
        if (!rc)
            rc = decrypt_emit(c, c->tmp.data, c->tmp.len);
    }
    msgpack_unpacked_destroy(&u);
    return rc ? rc : (off == n ? 0 : SS_EDECODE);
}

/* Reads and checks every record of in. Prints the error itself. */
static int decrypt_stream(decrypt_ctx *c, FILE *in, const char *inname)
{
    const char *why = NULL;
    ss_hdr h, o;
    unsigned long long pos = 0, next = 0;
    for (;;) {
        pos = next;
        int r = ss_sealfile_read(in, &c->msg, &h, &why);
        if (r == 0) {
            fprintf(stderr, "sstream decrypt: %s: the file ends after "
                            "batch %llu without its end record "
                            "(truncated?)\n", inname,
                    (unsigned long long)c->batches);
            return SS_EINTEGRITY;
        }
        if (r < 0) {
            c->reported = 1;
            if (r == SS_EIO)
                fprintf(stderr, "sstream decrypt: cannot read %s: %s\n",
                        inname, strerror(errno));
            else
                fprintf(stderr, "sstream decrypt: %s: batch %llu (at byte "
                                "%llu): %s: the file is corrupted or was "
                                "tampered with\n", inname,
                        (unsigned long long)c->batches, pos,
                        why ? why : ss_strerror(r));
            return r;
        }
        next = pos + 4 + c->msg.len;
        int last = h.kind == SS_MSG_EOS;
        ss_buf_reset(&c->pt);
        int rc = ss_aead_open(c->key, c->msg.data, c->msg.len, &o, &c->pt);
        if (rc == SS_ECRYPTO) {
            if (last)
                fprintf(stderr, "sstream decrypt: %s: end record (after "
                                "batch %llu, at byte %llu): authentication "
                                "failed: modified, or sealed with another "
                                "key\n", inname,
                        (unsigned long long)c->batches, pos);
            else
                fprintf(stderr, "sstream decrypt: %s: batch %llu (at byte "
                                "%llu): authentication failed: the batch "
                                "was modified or truncated, or sealed with "
                                "another key\n", inname,
                        (unsigned long long)c->batches, pos);
            return rc;
        }
        if (rc)
            return rc;
        if (c->batches == 0 && !c->started)
            c->stream = o.stream;
        if (last) {
            if (o.seq != c->batches || o.first_row != c->rows ||
                o.stream != c->stream || !(o.flags & SS_BF_FINAL)) {
                fprintf(stderr, "sstream decrypt: %s: the end record "
                                "announces %llu batches and %llu rows, the "
                                "file holds %llu and %llu (batches dropped "
                                "or added)\n", inname,
                        (unsigned long long)o.seq,
                        (unsigned long long)o.first_row,
                        (unsigned long long)c->batches,
                        (unsigned long long)c->rows);
                return SS_EINTEGRITY;
            }
            if ((o.aux & SS_SEALFILE_NEWLINE) && c->started &&
                fputc('\n', c->out) == EOF)
                return SS_EIO;
            if (fgetc(in) != EOF) {
                fprintf(stderr, "sstream decrypt: %s: data after the end "
                                "record\n", inname);
                return SS_EINTEGRITY;
            }
            return 0;
        }
        if (o.kind != SS_MSG_DATA || o.seq != c->batches ||
            o.stream != c->stream || o.first_row != c->rows || o.part) {
            fprintf(stderr, "sstream decrypt: %s: batch %llu (at byte %llu) "
                            "is authentic but out of place (kind %s, "
                            "stream %u, seq %llu): batches reordered, "
                            "dropped or duplicated\n", inname,
                    (unsigned long long)c->batches, pos,
                    ss_msg_kind_name(o.kind), o.stream,
                    (unsigned long long)o.seq);
            return SS_EINTEGRITY;
        }
        rc = decrypt_events(c, &o);
        sodium_memzero(c->pt.data, c->pt.len);
        if (rc == SS_EDECODE) {
            fprintf(stderr, "sstream decrypt: %s: batch %llu: the events "
                            "are not %u MessagePack values\n", inname,
                    (unsigned long long)c->batches, o.count);
            return rc;
        }
        if (rc)
            return rc;
        c->batches++;
        c->rows += o.count;
    }
}

/* The value of "sealed" in one rejects.jsonl line, NUL-terminated in
 * place, or NULL when the line has none (it was written in clear). */
static char *sealed_field(char *line)
{
    static const char key[] = "\"sealed\":\"";
    char *p = strstr(line, key);
    if (!p)
        return NULL;
    p += sizeof key - 1;
    char *q = strchr(p, '"');
    if (!q)
        return NULL;
    *q = '\0';
    return p;
}

/* Rejects file: each line with a "sealed" field holds (base64) a REJECT
 * message the enclave sealed with the data key, whose plaintext is the
 * rejected events' lines in the plain-mode form; they replace the line.
 * Other lines are copied. Fails, naming the line, on one that does not
 * decode or authenticate. */
static int decrypt_rejects(decrypt_ctx *c, FILE *in, const char *inname)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, in)) > 0) {
        lineno++;
        char *b64 = sealed_field(line);
        if (!b64) {
            if (fwrite(line, 1, (size_t)n, c->out) != (size_t)n)
                rc = SS_EIO;
            continue;
        }
        size_t blen = strlen(b64);
        ss_buf_reset(&c->msg);
        ss_buf_reset(&c->pt);
        size_t binlen = 0;
        if (ss_buf_grow(&c->msg, blen)) {
            rc = SS_ENOMEM;
            break;
        }
        if (sodium_base642bin((unsigned char *)c->msg.data, blen, b64, blen,
                              NULL, &binlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            fprintf(stderr, "sstream decrypt: %s:%llu: the sealed reasons "
                            "are not base64 (line damaged?)\n", inname,
                    lineno);
            rc = SS_EINTEGRITY;
            break;
        }
        ss_hdr h;
        rc = ss_aead_open(c->key, c->msg.data, binlen, &h, &c->pt);
        if (rc == SS_ECRYPTO) {
            fprintf(stderr, "sstream decrypt: %s:%llu: the sealed reasons "
                            "do not authenticate: modified, or sealed with "
                            "another key\n", inname, lineno);
            break;
        }
        if (rc)
            break;
        if (c->pt.len && fwrite(c->pt.data, 1, c->pt.len, c->out) !=
                             c->pt.len)
            rc = SS_EIO;
        else if (c->pt.len && c->pt.data[c->pt.len - 1] != '\n' &&
                 fputc('\n', c->out) == EOF)
            rc = SS_EIO;
        sodium_memzero(c->pt.data, c->pt.len);
        c->rows++;
    }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "sstream decrypt: cannot read %s: %s\n", inname,
                strerror(errno));
        c->reported = 1;
        rc = SS_EIO;
    }
    if (rc == SS_ECRYPTO || rc == SS_EINTEGRITY)
        c->reported = 1;
    free(line);
    return rc;
}

/* Reads all of in (at most max bytes) into b. */
static int read_all(FILE *in, ss_buf *b, size_t max)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) {
        if (b->len + n > max)
            return SS_ETOOBIG;
        if (ss_buf_append(b, chunk, n))
            return SS_ENOMEM;
    }
    return ferror(in) ? SS_EIO : 0;
}

/* Writes one stage's state bytes as a JSON line. */
static int state_json(decrypt_ctx *c, const char *p, size_t n)
{
    size_t off = 0;
    ss_buf_reset(&c->tmp);
    if (ss_mp_to_json(p, n, &off, &c->tmp) != 0 || off != n)
        return SS_EDECODE;
    if (fwrite(c->tmp.data, 1, c->tmp.len, c->out) != c->tmp.len ||
        fputc('\n', c->out) == EOF)
        return SS_EIO;
    return 0;
}

/* A checkpoint snapshot (msg holds the whole file): its header line,
 * then the state of each stage (a worker's snapshot is an array of one
 * snapshot per chained stage, ss_chain_snapshot, or one stage's). */
static int decrypt_snapshot(decrypt_ctx *c, const char *inname)
{
    char err[512];
    ss_snapshot_info info;
    int rc = ss_snapshot_peek(c->msg.data, c->msg.len, &info, err,
                              sizeof err);
    if (!rc) {
        ss_snapshot_id id = {info.run, info.epoch, info.stage, info.worker};
        rc = ss_snapshot_open(info.protection ? c->key : NULL, c->msg.data,
                              c->msg.len, &id, &c->pt, err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "sstream decrypt: %s: %s\n", inname, err);
        c->reported = 1;
        return rc;
    }
    ss_buf_reset(&c->tmp);
    ss_buf_printf(&c->tmp, "{\"snapshot\":{\"run\":\"%016llx\",\"epoch\":%u,"
                  "\"stage\":", (unsigned long long)info.run, info.epoch);
    ss_buf_json_str(&c->tmp, info.stage, strlen(info.stage));
    ss_buf_printf(&c->tmp, ",\"worker\":");
    ss_buf_json_str(&c->tmp, info.worker, strlen(info.worker));
    ss_buf_printf(&c->tmp, ",\"protection\":\"%s\"}}\n",
                  info.protection ? ss_aead_alg_name(info.protection)
                                  : "plain");
    if (fwrite(c->tmp.data, 1, c->tmp.len, c->out) != c->tmp.len)
        return SS_EIO;
    const unsigned char *u = (const unsigned char *)c->pt.data;
    size_t n = c->pt.len, off = 0;
    uint32_t count = 0;
    /* an array of bin (0xc4-0xc6): one snapshot per chained stage */
    if (n >= 2 && (u[0] & 0xf0) == 0x90 && u[1] >= 0xc4 && u[1] <= 0xc6) {
        count = u[0] & 0x0f;
        off = 1;
        for (uint32_t i = 0; rc == 0 && i < count; i++) {
            const char *s;
            size_t sl;
            rc = ss_mp_get_str(c->pt.data, n, &off, &s, &sl);
            if (!rc)
                rc = state_json(c, s, sl);
        }
    } else {
        rc = state_json(c, c->pt.data, n);
    }
    sodium_memzero(c->pt.data, c->pt.len);
    if (rc == SS_EDECODE) {
        fprintf(stderr, "sstream decrypt: %s: the snapshot opens but its "
                        "state is not MessagePack\n", inname);
        c->reported = 1;
    }
    return rc;
}

/*
 * The `decrypt` subcommand. Writes OUT through a temporary file renamed
 * once the end record verified, so a tampered IN leaves no OUT. Returns 0,
 * 2 on bad usage, 1 on any failure (message on stderr naming the batch).
 */
int cmd_decrypt(int argc, char **argv)
{
    const char *keys = NULL, *inname = NULL, *outname = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            decrypt_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--keys") && i + 1 < argc) {
            keys = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sstream decrypt: unknown or incomplete option "
                            "'%s'\n", a);
            return 2;
        } else if (!inname) {
            inname = a;
        } else if (!outname) {
            outname = a;
        } else {
            fprintf(stderr, "sstream decrypt: unexpected argument '%s'\n",
                    a);
            return 2;
        }
    }
    ss_key *key;
    cli_files files;
    int rc = cli_keyed_files_open(&files, "decrypt", keys, inname, outname,
                                  &key);
    if (rc >= 0)
        return rc;
    decrypt_ctx c;
    memset(&c, 0, sizeof c);
    c.key = key;
    c.out = files.out;
    int ch = getc(files.in); /* a rejects file is JSON lines */
    if (ch != EOF)
        ungetc(ch, files.in);
    if (ch == EOF && !ferror(files.in)) {
        /* not a sealed file (that ends with its end record even when
         * empty), so an error; but say what it likely is */
        fprintf(stderr, "sstream decrypt: %s is empty: nothing to open (a "
                        "sealed file is never empty; an empty rejects.jsonl "
                        "means the run rejected nothing)\n", inname);
        c.reported = 1;
        rc = SS_EDECODE;
    } else if (ch == '{') {
        rc = decrypt_rejects(&c, files.in, inname);
    } else if (ch == 'S') {
        /* "SSSN" (a snapshot) read as a record length is over the limit
         * of a sealed stream: it cannot start one. Anything else is read
         * as a stream again (from the start, or from memory) */
        rc = read_all(files.in, &c.msg,
                      SS_SNAPSHOT_MAX_STATE + SS_SEALFILE_MAX_RECORD);
        if (rc == 0 && c.msg.len >= 4 && !memcmp(c.msg.data, "SSSN", 4)) {
            rc = decrypt_snapshot(&c, inname);
        } else if (rc == 0) {
            FILE *mem = fmemopen(c.msg.data, c.msg.len, "rb");
            ss_buf held = c.msg; /* decrypt_stream reuses c.msg */
            ss_buf_init(&c.msg);
            rc = mem ? decrypt_stream(&c, mem, inname) : SS_ENOMEM;
            if (mem)
                fclose(mem);
            ss_buf_release(&held);
        }
    } else {
        rc = decrypt_stream(&c, files.in, inname);
    }
    rc = cli_files_close(&files, rc);
    if (rc == SS_EIO && !c.reported)
        fprintf(stderr, "sstream decrypt: cannot write %s: %s\n", outname,
                strerror(errno));
    else if (rc == SS_ENOMEM || rc == SS_ETOOBIG)
        fprintf(stderr, "sstream decrypt: %s\n", ss_strerror(rc));
    ss_buf_release(&c.msg);
    ss_buf_release(&c.pt);
    ss_buf_release(&c.tmp);
    ss_key_destroy(&key);
    return rc ? 1 : 0;
}
