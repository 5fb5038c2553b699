/*
 * ss_ckresume.c - a complete checkpoint read back and checked
 * (ss_ckresume.h).
 */
#include "run/ss_ckresume.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX ((64u << 20) + 65536) /* as the snapshots' limit */

/* The JSON string value after key (`"key":"`) at or after p, copied
 * into out (plain names only: no escapes, no '/', not starting with '.').
 * Returns the end of the value or NULL. */
static const char *str_after(const char *p, const char *key, char *out,
                             size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(p, pat);
    if (!s)
        return NULL;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e || (size_t)(e - s) >= outlen || e == s)
        return NULL;
    for (const char *c = s; c < e; c++)
        if (*c == '\\' || *c == '/' || (unsigned char)*c < 0x20)
            return NULL;
    if (*s == '.')
        return NULL;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return e + 1;
}

/* The unsigned number after `"key":` at or after p (within the next
 * object only when lim is given). Returns 0 or -1. */
static int num_after(const char *p, const char *lim, const char *key,
                     unsigned long long *v)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *s = strstr(p, pat);
    if (!s || (lim && s >= lim))
        return -1;
    s += strlen(pat);
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    *v = strtoull(s, &end, 10);
    return end > s ? 0 : -1;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Checks the run and epoch fields of a file of the checkpoint. */
static int run_epoch(const char *text, const char *what, uint64_t run,
                     uint32_t epoch, char *err, size_t errlen)
{
    char hex[32];
    unsigned long long e;
    if (!str_after(text, "run", hex, sizeof hex) ||
        num_after(text, NULL, "epoch", &e) != 0)
        return fail(err, errlen, SS_EINTEGRITY, "%s: no run id or epoch: "
                    "not a checkpoint file", what);
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)run);
    if (strcmp(hex, want) != 0)
        return fail(err, errlen, SS_EINTEGRITY, "%s is of run %s, not of "
                    "this run (%s): refused", what, hex, want);
    if (e != epoch)
        return fail(err, errlen, SS_EINTEGRITY, "%s is of epoch %llu, not "
                    "the last complete one (%u): refused", what, e, epoch);
    return 0;
}

/* Parses the source's resume points into r->parts and r->streams. */
static int source_parts(ss_ckresume *r, const char *text, const char *file,
                        char *err, size_t errlen)
{
    char comp[64];
    if (!str_after(text, "component", comp, sizeof comp))
        return fail(err, errlen, SS_EINTEGRITY, "%s: no component", file);
    snprintf(r->source, sizeof r->source, "%s", comp);
    ss_buf parts = SS_BUF_INIT, streams = SS_BUF_INIT;
    const char *p = strstr(text, "\"parts\":[");
    unsigned i = 0;
    int rc = p ? 0 : SS_EINTEGRITY;
    while (!rc && p && (p = strstr(p, "{\"part\":")) && i < 64) {
        const char *lim = strchr(p, '}');
        unsigned long long part, off, row, seq;
        if (!lim || num_after(p, lim, "part", &part) ||
            num_after(p, lim, "offset", &off) ||
            num_after(p, lim, "row", &row) ||
            num_after(p, lim, "seq", &seq) || part != i) {
            rc = SS_EINTEGRITY;
            break;
        }
        const char *en = strstr(p, "\"ended\":true");
        int ended = en && en < lim;
        ss_buf_printf(&parts, "%s%llu:%llu:%llu%s", i ? "," : "", off, row,
                      seq, ended ? ":end" : "");
        char name[96];
        snprintf(name, sizeof name, "%s-%u", comp, i);
        ss_buf_printf(&streams, "%s%u:%llu", i ? "," : "",
                      ss_name_id(name) & 0x7fffffffu, seq);
        if (ended)
            ss_buf_printf(&streams, ":%s", "N"); /* filled below */
        i++;
        p = lim;
    }
    if (!rc && i == 0)
        rc = SS_EINTEGRITY;
    if (rc) {
        ss_buf_release(&parts);
        ss_buf_release(&streams);
        return fail(err, errlen, rc, "%s: malformed resume points", file);
    }
    r->nparts = i;
    /* an ended part's END batch declared the number of parts */
    ss_buf fixed = SS_BUF_INIT;
    for (size_t k = 0; k < streams.len; k++) {
        if (streams.data[k] == 'N')
            ss_buf_printf(&fixed, "%u", i);
        else
            ss_buf_append(&fixed, &streams.data[k], 1);
    }
    ss_buf_release(&streams);
    ss_buf_append(&parts, "", 1);
    ss_buf_append(&fixed, "", 1);
    r->parts = (char *)parts.data;
    r->streams = (char *)fixed.data;
    if (!r->parts || !r->streams)
        return SS_ENOMEM;
    return 0;
}

/* See ss_ckresume.h. */
int ss_ckresume_load(const char *dir, uint64_t run, uint32_t epoch,
                     ss_ckresume *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->epoch = epoch;
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *m = NULL;
    size_t mlen = 0;
    if (ss_read_file(path, 1u << 20, &m, &mlen) != 0)
        return fail(err, errlen, SS_EIO, "cannot read %s", path);
    r->manifest = m;
    int rc = run_epoch(m, path, run, epoch, err, errlen);
    if (rc)
        goto bad;
    const char *p = strstr(m, "\"files\":[");
    const char *fend = p ? strstr(p, "],\"counters\":") : NULL;
    if (!p || !fend) {
        rc = fail(err, errlen, SS_EINTEGRITY, "%s: no list of files", path);
        goto bad;
    }
    char sfx_json[32], sfx_snap[32];
    snprintf(sfx_json, sizeof sfx_json, "-e%u.json", epoch);
    snprintf(sfx_snap, sizeof sfx_snap, "-e%u.snap", epoch);
    int have_source = 0;
    while ((p = strstr(p, "{\"name\":")) && p < fend) {
        char name[256], hex[2 * crypto_generichash_BYTES + 1];
        const char *q = str_after(p, "name", name, sizeof name);
        if (!q || !str_after(q, "blake2b_256", hex, sizeof hex)) {
            rc = fail(err, errlen, SS_EINTEGRITY, "%s: a malformed file "
                      "entry", path);
            goto bad;
        }
        size_t l = strlen(name);
        int is_json = l > strlen(sfx_json) &&
                      !strcmp(name + l - strlen(sfx_json), sfx_json);
        int is_snap = l > strlen(sfx_snap) &&
                      !strcmp(name + l - strlen(sfx_snap), sfx_snap);
        if (!is_json && !is_snap) {
            rc = fail(err, errlen, SS_EINTEGRITY, "%s lists %s, not a file "
                      "of epoch %u", path, name, epoch);
            goto bad;
        }
        char fp[4400];
        snprintf(fp, sizeof fp, "%s/%s", dir, name);
        char *data = NULL;
        size_t len = 0;
        if (ss_read_file(fp, FILE_MAX, &data, &len) != 0) {
            rc = fail(err, errlen, SS_EIO, "cannot read %s (listed in %s)",
                      fp, path);
            goto bad;
        }
        unsigned char h[crypto_generichash_BYTES];
        char got[sizeof hex];
        crypto_generichash(h, sizeof h, (const unsigned char *)data, len,
                           NULL, 0);
        sodium_bin2hex(got, sizeof got, h, sizeof h);
        if (strcmp(got, hex) != 0) {
            free(data);
            rc = fail(err, errlen, SS_EINTEGRITY, "%s does not match the "
                      "manifest (BLAKE2b-256 %.16s..., recorded %.16s...): "
                      "changed or swapped since the checkpoint", fp, got,
                      hex);
            goto bad;
        }
        if (is_json) {
            rc = have_source++ ? fail(err, errlen, SS_EINTEGRITY,
                                      "%s lists two sources' resume points",
                                      path)
                               : run_epoch(data, fp, run, epoch, err, errlen);
            if (!rc)
                rc = source_parts(r, data, fp, err, errlen);
        } else {
            char **v = realloc(r->snaps, (r->nsnaps + 1) * sizeof *v);
            if (!v || !(v[r->nsnaps] = strdup(name)))
                rc = SS_ENOMEM;
            if (v)
                r->snaps = v;
            if (!rc)
                r->nsnaps++;
        }
        free(data);
        if (rc)
            goto bad;
        p = q;
    }
    if (!have_source) {
        rc = fail(err, errlen, SS_EINTEGRITY, "%s lists no source resume "
                  "points (%s)", path, sfx_json + 1);
        goto bad;
    }
    return 0;
bad:
    ss_ckresume_release(r);
    return rc;
}

/* The entry "name":{"first":...} of the manifest's object "section":
 * returns where its fields start (at its '{') and sets *lim to its
 * closing '}' (the entries hold no nested objects), or NULL when the
 * manifest, the section or the entry is missing. */
static const char *manifest_entry(const ss_ckresume *r, const char *section,
                                  const char *name, const char *first,
                                  const char **lim)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":{", section);
    const char *c = r->manifest ? strstr(r->manifest, pat) : NULL;
    if (!c)
        return NULL;
    snprintf(pat, sizeof pat, "\"%s\":{\"%s\":", name, first);
    const char *p = strstr(c, pat);
    if (!p || !(*lim = strchr(p + strlen(pat), '}')))
        return NULL;
    return p + strlen(name) + 3;
}

/* See ss_ckresume.h. */
int ss_ckresume_counters(const ss_ckresume *r, const char *name,
                         ss_stats *st)
{
    ss_stats_init(st);
    const char *lim;
    const char *p = manifest_entry(r, "counters", name, "in", &lim);
    if (!p)
        return 0;
    unsigned long long v[7];
    static const char *const keys[7] = {"in",       "out",        "passed",
                                        "dropped",  "rejected",   "batches_in",
                                        "batches_out"};
    for (int k = 0; k < 7; k++)
        if (num_after(p, lim, keys[k], &v[k]))
            return 0;
    st->in = v[0];
    st->out = v[1];
    st->passed = v[2];
    st->dropped = v[3];
    st->rejected = v[4];
    st->batches_in = v[5];
    st->batches_out = v[6];
    return 1;
}

/* See ss_ckresume.h. */
int ss_ckresume_stage(const ss_ckresume *r, const char *name,
                      ss_ckresume_stage_info *info)
{
    memset(info, 0, sizeof *info);
    const char *lim;
    const char *p = manifest_entry(r, "stages", name, "workers", &lim);
    unsigned long long w;
    if (!p || num_after(p, lim, "workers", &w) != 0 ||
        w < 1 || w > SS_PARTITIONS)
        return 0;
    const char *t = strstr(p, "\"partitioned\":true");
    info->partitioned = t && t < lim;
    t = strstr(p, "\"stateful\":true");
    info->stateful = t && t < lim;
    info->workers = (unsigned)w;
    return 1;
}

/* See ss_ckresume.h. */
void ss_ckresume_release(ss_ckresume *r)
{
    free(r->parts);
    free(r->streams);
    for (size_t i = 0; i < r->nsnaps; i++)
        free(r->snaps[i]);
    free(r->snaps);
    free(r->manifest);
    r->parts = r->streams = r->manifest = NULL;
    r->snaps = NULL;
    r->nsnaps = 0;
}
