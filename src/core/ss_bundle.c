/*
 * ss_bundle.c - a stage script and its local modules (ss_bundle.h).
 */
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 128
#define MAGIC "\0SSBUNDLE2\n"
#define MAGIC_LEN 11

typedef struct module {
    char *name;
    char *src;
    size_t len;
} module;

struct ss_bundle {
    char *script;
    size_t script_len;
    module mods[SS_BUNDLE_MAX_MODULES];
    size_t nmods;
    module files[SS_BUNDLE_MAX_FILES]; /* data files: name, bytes */
    size_t nfiles;
    size_t total; /* bytes read so far, script included */
};

static int is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static int is_ident_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* A module name that maps to a file below the script's folder: letters,
 * digits, '_', '-' and '.' separating non-empty parts. */
static int safe_name(const char *s, size_t n)
{
    if (!n || n >= NAME_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char((unsigned char)s[i]))
            return 0;
        if (s[i] == '.' && s[i + 1] == '.')
            return 0;
    }
    return 1;
}

static int have_module(const ss_bundle *b, const char *name)
{
    for (size_t i = 0; i < b->nmods; i++)
        if (strcmp(b->mods[i].name, name) == 0)
            return 1;
    return 0;
}

/* A data file's name: a relative path below the script's folder, parts
 * of letters, digits, '_', '-' and '.' separated by '/', none empty or
 * starting with '.' (so no "..", no hidden file, no absolute path). */
static int safe_path(const char *s, size_t n)
{
    if (!n || n >= NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int start = i == 0 || s[i - 1] == '/';
        if (start && (s[i] == '.' || s[i] == '/'))
            return 0;
        if (s[i] != '/' && !is_name_char((unsigned char)s[i]))
            return 0;
    }
    return s[n - 1] != '/';
}

static int scan(ss_bundle *b, const char *dir, const char *where,
                const char *src, size_t len, int depth, char *err,
                size_t errlen);

/* Bundles module `name` if <dir>/<name as path>.lua exists. */
static int add_module(ss_bundle *b, const char *dir, const char *name,
                      int depth, char *err, size_t errlen)
{
    if (have_module(b, name))
        return 0;
    char rel[NAME_MAX_LEN + 8], path[PATH_MAX];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *p = rel; *p; p++)
        if (*p == '.')
            *p = '/';
    snprintf(path, sizeof path, "%s/%s.lua", dir, rel);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0; /* a built-in, or not a file of ours: left to Lua */
    if (b->nmods == SS_BUNDLE_MAX_MODULES) {
        snprintf(err, errlen, "%s: more than %d local modules", path,
                 SS_BUNDLE_MAX_MODULES);
        return SS_ETOOBIG;
    }
    module *m = &b->mods[b->nmods];
    int rc = ss_read_file(path, SS_BUNDLE_MAX_BYTES - b->total, &m->src,
                      &m->len);
    if (rc) {
        snprintf(err, errlen, "cannot read module %s: %s", path,
                 rc == SS_ETOOBIG ? "the script and its modules are over "
                                    "64 MiB"
                                  : ss_strerror(rc));
        return rc;
    }
    m->name = strdup(name);
    if (!m->name) {
        free(m->src);
        return SS_ENOMEM;
    }
    b->nmods++;
    b->total += m->len;
    return scan(b, dir, path, m->src, m->len, depth + 1, err, errlen);
}

/* Bundles the data file <dir>/<name>, named by files.read or files.lines
 * in `where`: it must exist and fit the limits. */
static int add_file(ss_bundle *b, const char *dir, const char *name,
                    const char *where, char *err, size_t errlen)
{
    for (size_t i = 0; i < b->nfiles; i++)
        if (strcmp(b->files[i].name, name) == 0)
            return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "data file %s (named by %s) %s", path, where,
                 errno == ENOENT ? "does not exist" : "is not a regular file");
        return SS_ENOTFOUND;
    }
    if (st.st_size > (off_t)SS_BUNDLE_MAX_FILE_BYTES) {
        snprintf(err, errlen, "data file %s (named by %s) is %lld bytes: "
                 "a file bundled with a stage script may have at most "
                 "%u MiB", path, where, (long long)st.st_size,
                 SS_BUNDLE_MAX_FILE_BYTES >> 20);
        return SS_ETOOBIG;
    }
    if (b->nfiles == SS_BUNDLE_MAX_FILES) {
        snprintf(err, errlen, "data file %s (named by %s): more than %d "
                 "data files", path, where, SS_BUNDLE_MAX_FILES);
        return SS_ETOOBIG;
    }
    module *f = &b->files[b->nfiles];
    int rc = ss_read_file(path, SS_BUNDLE_MAX_BYTES - b->total, &f->src,
                          &f->len);
    if (rc) {
        snprintf(err, errlen, "cannot read data file %s (named by %s): %s",
                 path, where,
                 rc == SS_ETOOBIG ? "the script, its modules and data "
                                    "files are over 64 MiB"
                                  : ss_strerror(rc));
        return rc;
    }
    if (!(f->name = strdup(name))) {
        free(f->src);
        return SS_ENOMEM;
    }
    b->nfiles++;
    b->total += f->len;
    return 0;
}

/* If src[j..len) is `(`? then a string literal (spaces allowed around
 * the parenthesis), sets [*s, *e) to the literal's text and returns 1. */
static int literal_at(const char *src, size_t len, size_t j, size_t *s,
                      size_t *e)
{
    while (j < len && (src[j] == ' ' || src[j] == '\t'))
        j++;
    if (j < len && src[j] == '(') {
        j++;
        while (j < len && (src[j] == ' ' || src[j] == '\t'))
            j++;
    }
    if (j >= len || (src[j] != '\'' && src[j] != '"'))
        return 0;
    char q = src[j++];
    *s = j;
    while (j < len && src[j] != q && src[j] != '\n')
        j++;
    if (j >= len || src[j] != q)
        return 0;
    *e = j;
    return 1;
}

/* Finds, in src[0..len) (the text of `where`), each require of a string
 * literal and bundles the module, and each files.read / files.lines of a
 * string literal and bundles the data file. */
static int scan(ss_bundle *b, const char *dir, const char *where,
                const char *src, size_t len, int depth, char *err,
                size_t errlen)
{
    static const char *const kws[] = {"require", "files.read",
                                      "files.lines"};
    if (depth > SS_BUNDLE_MAX_MODULES)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (is_ident_char((unsigned char)src[i - 1]) ||
                      src[i - 1] == '.' || src[i - 1] == ':'))
            continue;
        for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++) {
            size_t kl = strlen(kws[k]), s, e;
            if (i + kl >= len || memcmp(src + i, kws[k], kl) != 0 ||
                is_ident_char((unsigned char)src[i + kl]) ||
                !literal_at(src, len, i + kl, &s, &e))
                continue;
            char name[NAME_MAX_LEN];
            int rc = 0;
            if (k == 0 && safe_name(src + s, e - s)) {
                memcpy(name, src + s, e - s);
                name[e - s] = '\0';
                rc = add_module(b, dir, name, depth, err, errlen);
            } else if (k > 0 && safe_path(src + s, e - s)) {
                memcpy(name, src + s, e - s);
                name[e - s] = '\0';
                rc = add_file(b, dir, name, where, err, errlen);
            } else if (k > 0) {
                snprintf(err, errlen, "%s: %s '%.*s': a data file is named "
                         "by a relative path below the script's folder "
                         "(letters, digits, _ - . and /, no part starting "
                         "with '.')", where, kws[k],
                         (int)(e - s > 80 ? 80 : e - s), src + s);
                return SS_EINVAL;
            }
            if (rc)
                return rc;
            i = e;
            break;
        }
    }
    return 0;
}

/* Reads a u64le at *p (of end) into *v; 0 when fewer than 8 bytes are
 * left. */
static int get_u64(const char **p, const char *end, uint64_t *v)
{
    if (end - *p < 8)
        return 0;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = (*v << 8) | (unsigned char)(*p)[i];
    *p += 8;
    return 1;
}

/* Copies n bytes at *p (of end) into a NUL-terminated malloc'd string;
 * NULL when fewer are left or out of memory. */
static char *take(const char **p, const char *end, uint64_t n)
{
    if ((uint64_t)(end - *p) < n)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, *p, (size_t)n);
    s[n] = '\0';
    *p += n;
    return s;
}

/* Reads the file form (ss_bundle_serialize) of buf[0..len) into b: the
 * script, then modules with safe names, then data files with safe paths,
 * each sorted and unique, nothing after them. */
static int parse_file_form(ss_bundle *b, const char *buf, size_t len,
                           const char *path, char *err, size_t errlen)
{
    const char *p = buf + MAGIC_LEN, *end = buf + len;
    uint64_t n, nm;
    if (!get_u64(&p, end, &n) || !(b->script = take(&p, end, n)))
        goto bad;
    b->script_len = (size_t)n;
    if (!get_u64(&p, end, &nm) || nm > SS_BUNDLE_MAX_MODULES)
        goto bad;
    for (uint64_t i = 0; i < nm; i++) {
        module *m = &b->mods[b->nmods];
        if (!get_u64(&p, end, &n) || n >= NAME_MAX_LEN ||
            !(m->name = take(&p, end, n)))
            goto bad;
        if (!safe_name(m->name, (size_t)n) || !get_u64(&p, end, &n) ||
            !(m->src = take(&p, end, n))) {
            free(m->name);
            goto bad;
        }
        m->len = (size_t)n;
        b->nmods++;
        if (b->nmods > 1 && strcmp(b->mods[b->nmods - 2].name, m->name) >= 0)
            goto bad;
    }
    if (!get_u64(&p, end, &nm) || nm > SS_BUNDLE_MAX_FILES)
        goto bad;
    for (uint64_t i = 0; i < nm; i++) {
        module *f = &b->files[b->nfiles];
        if (!get_u64(&p, end, &n) || n >= NAME_MAX_LEN ||
            !(f->name = take(&p, end, n)))
            goto bad;
        if (!safe_path(f->name, (size_t)n) || !get_u64(&p, end, &n) ||
            n > SS_BUNDLE_MAX_FILE_BYTES || !(f->src = take(&p, end, n))) {
            free(f->name);
            goto bad;
        }
        f->len = (size_t)n;
        b->nfiles++;
        if (b->nfiles > 1 &&
            strcmp(b->files[b->nfiles - 2].name, f->name) >= 0)
            goto bad;
    }
    if (p != end)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "%s: a damaged script bundle", path);
    return SS_EINVAL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const module *)a)->name, ((const module *)b)->name);
}

/* See ss_bundle.h. */
int ss_bundle_load(const char *script_path, ss_bundle **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    ss_bundle *b = calloc(1, sizeof *b);
    if (!b)
        return SS_ENOMEM;
    /* the file form adds its framing (names, lengths) to the 64 MiB */
    int rc = ss_read_file(script_path, SS_BUNDLE_MAX_BYTES + (1u << 20),
                          &b->script, &b->script_len);
    if (!rc && b->script_len > SS_BUNDLE_MAX_BYTES &&
        (b->script_len < MAGIC_LEN ||
         memcmp(b->script, MAGIC, MAGIC_LEN) != 0)) {
        free(b->script);
        rc = SS_ETOOBIG;
    }
    if (rc) {
        snprintf(err, errlen, "cannot read stage script %s: %s", script_path,
                 ss_strerror(rc));
        free(b);
        return rc;
    }
    b->total = b->script_len;
    if (b->script_len >= MAGIC_LEN &&
        memcmp(b->script, MAGIC, MAGIC_LEN) == 0) {
        char *file = b->script;
        size_t flen = b->script_len;
        b->script = NULL;
        b->script_len = 0;
        rc = parse_file_form(b, file, flen, script_path, err, errlen);
        free(file);
        if (rc) {
            ss_bundle_destroy(&b);
            return rc;
        }
        *out = b;
        return 0;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", script_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    rc = scan(b, dir, script_path, b->script, b->script_len, 0, err, errlen);
    if (rc) {
        ss_bundle_destroy(&b);
        return rc;
    }
    qsort(b->mods, b->nmods, sizeof b->mods[0], by_name);
    qsort(b->files, b->nfiles, sizeof b->files[0], by_name);
    *out = b;
    return 0;
}

/* See ss_bundle.h. */
int ss_bundle_from_text(const char *src, size_t len, ss_bundle **out)
{
    *out = NULL;
    ss_bundle *b = calloc(1, sizeof *b);
    if (!b || !(b->script = malloc(len + 1))) {
        free(b);
        return SS_ENOMEM;
    }
    memcpy(b->script, src, len);
    b->script[len] = '\0';
    b->script_len = b->total = len;
    *out = b;
    return 0;
}

/* See ss_bundle.h. */
void ss_bundle_destroy(ss_bundle **pb)
{
    if (!pb || !*pb)
        return;
    ss_bundle *b = *pb;
    for (size_t i = 0; i < b->nmods; i++) {
        free(b->mods[i].name);
        free(b->mods[i].src);
    }
    for (size_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].name);
        free(b->files[i].src);
    }
    free(b->script);
    free(b);
    *pb = NULL;
}

/* See ss_bundle.h. */
const char *ss_bundle_script(const ss_bundle *b, size_t *len)
{
    *len = b->script_len;
    return b->script;
}

/* See ss_bundle.h. */
size_t ss_bundle_nmodules(const ss_bundle *b) { return b->nmods; }

/* See ss_bundle.h. */
void ss_bundle_module(const ss_bundle *b, size_t i, const char **name,
                      const char **src, size_t *len)
{
    *name = b->mods[i].name;
    *src = b->mods[i].src;
    *len = b->mods[i].len;
}

/* See ss_bundle.h. */
size_t ss_bundle_nfiles(const ss_bundle *b) { return b->nfiles; }

/* See ss_bundle.h. */
void ss_bundle_file(const ss_bundle *b, size_t i, const char **name,
                    const char **data, size_t *len)
{
    *name = b->files[i].name;
    *data = b->files[i].src;
    *len = b->files[i].len;
}

static int put_u64(ss_buf *out, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return ss_buf_append(out, le, sizeof le);
}

/* Appends each of the n entries as u64le(len(name)) name u64le(len(src))
 * src, in order: modules and data files, in the file form and the
 * measured form. */
static int put_modules(const module *mods, size_t n, ss_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        const module *m = &mods[i];
        size_t nl = strlen(m->name);
        if (put_u64(out, nl) || ss_buf_append(out, m->name, nl) ||
            put_u64(out, m->len) || ss_buf_append(out, m->src, m->len))
            return SS_ENOMEM;
    }
    return 0;
}

/* See ss_bundle.h. */
int ss_bundle_serialize(const ss_bundle *b, ss_buf *out)
{
    if (ss_buf_append(out, MAGIC, MAGIC_LEN) || put_u64(out, b->script_len) ||
        ss_buf_append(out, b->script, b->script_len) ||
        put_u64(out, b->nmods) || put_modules(b->mods, b->nmods, out) ||
        put_u64(out, b->nfiles))
        return SS_ENOMEM;
    return put_modules(b->files, b->nfiles, out);
}

/* See ss_bundle.h. */
int ss_bundle_measured_chain(const ss_bundle *const *b,
                             const char *const *stages, size_t n,
                             ss_buf *out)
{
    static const char tag[] = "\0sstream-chain-v1\0";
    if (n == 0)
        return SS_EINVAL;
    if (ss_bundle_measured(b[0], out))
        return SS_ENOMEM;
    if (n == 1)
        return 0;
    if (ss_buf_append(out, tag, sizeof tag - 1))
        return SS_ENOMEM;
    ss_buf one;
    ss_buf_init(&one);
    int rc = 0;
    for (size_t k = 1; k < n && !rc; k++) {
        size_t nl = strlen(stages[k]);
        ss_buf_reset(&one);
        if (ss_bundle_measured(b[k], &one) || put_u64(out, nl) ||
            ss_buf_append(out, stages[k], nl) || put_u64(out, one.len) ||
            ss_buf_append(out, one.data ? one.data : "", one.len))
            rc = SS_ENOMEM;
    }
    ss_buf_release(&one);
    return rc;
}

/* See ss_bundle.h. */
int ss_bundle_measured(const ss_bundle *b, ss_buf *out)
{
    static const char tag[] = "\0sstream-modules-v1\0";
    static const char ftag[] = "\0sstream-files-v1\0";
    if (ss_buf_append(out, b->script, b->script_len))
        return SS_ENOMEM;
    if (!b->nmods && !b->nfiles)
        return 0;
    if (ss_buf_append(out, tag, sizeof tag - 1) ||
        put_modules(b->mods, b->nmods, out))
        return SS_ENOMEM;
    if (!b->nfiles)
        return 0;
    if (ss_buf_append(out, ftag, sizeof ftag - 1) ||
        put_modules(b->files, b->nfiles, out))
        return SS_ENOMEM;
    return 0;
}

/* See ss_bundle.h. */
int ss_bundle_memfd(const char *script_path, char *err, size_t errlen)
{
    ss_bundle *b = NULL;
    int rc = ss_bundle_load(script_path, &b, err, errlen);
    if (rc)
        return rc;
    ss_buf buf;
    ss_buf_init(&buf);
    int fd = -1;
    rc = ss_bundle_serialize(b, &buf);
    if (!rc) {
        fd = memfd_create("sstream-bundle", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ss_write_all(fd, buf.data, buf.len) < 0 ||
            lseek(fd, 0, SEEK_SET) != 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                                       F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
            ss_errf(err, errlen, "cannot make the memory file of '%s': %s",
                    script_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
            rc = SS_EIO;
        }
    } else {
        ss_errf(err, errlen, "out of memory bundling '%s'", script_path);
    }
    ss_buf_release(&buf);
    ss_bundle_destroy(&b);
    return rc ? rc : fd;
}
