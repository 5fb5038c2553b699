/*
 * ss_util.c - clocks, strict number parsing, environment, UTF-8.
 */
#include "core/ss_util.h"
#include "securestreams.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* See ss_util.h. */
uint64_t ss_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* See ss_util.h. */
uint64_t ss_now_ms(void) { return ss_now_ns() / 1000000ull; }

/* See ss_util.h. */
int ss_parse_run(const char *s, uint64_t *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 16)
        return SS_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!isxdigit(c))
            return SS_EINVAL;
        v = (v << 4) | (uint64_t)(isdigit(c) ? c - '0'
                                             : tolower(c) - 'a' + 10);
    }
    if (v == 0)
        return SS_EINVAL;
    *out = v;
    return 0;
}

/* See ss_util.h. */
int ss_run_new(uint64_t *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t v = 0;
        ssize_t got = getrandom(&v, sizeof v, 0);
        if (got == (ssize_t)sizeof v && v != 0) {
            *out = v;
            return 0;
        }
        if (got < 0 && errno != EINTR)
            break;
    }
    return SS_EIO;
}

/* See ss_util.h. */
int ss_run_get(const char *opt, uint64_t *out, char *err, size_t errlen)
{
    const char *v = opt ? opt : getenv("SS_RUN");
    *out = 0;
    if (!v || (!opt && !*v))
        return 0;
    if (ss_parse_run(v, out)) {
        snprintf(err, errlen, "bad run id '%.40s' (%s): 1 to 16 hex digits, "
                 "not 0", v, opt ? "--run" : "SS_RUN");
        return SS_EINVAL;
    }
    return 0;
}

/* See ss_util.h. */
int ss_parse_u64(const char *s, uint64_t min, uint64_t max, int allow_suffix,
                 uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return SS_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return SS_EINVAL;
    if (allow_suffix && *end) {
        unsigned shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return SS_EINVAL;
        }
        end++;
        if (*end == 'i' || *end == 'B')
            end++;
        if (*end == 'B')
            end++;
        if (v > (UINT64_MAX >> shift))
            return SS_EINVAL;
        v <<= shift;
    }
    if (*end || v < min || v > max)
        return SS_EINVAL;
    *out = v;
    return 0;
}

/* See ss_util.h. */
int ss_parse_rate(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return SS_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > SS_RATE_MAX)
        return SS_EINVAL;
    if (*end == 'k' || *end == 'K') {
        v *= 1000;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1000000;
        end++;
    }
    if (*end || v > SS_RATE_MAX)
        return SS_EINVAL;
    *out = v;
    return 0;
}

/* See ss_util.h. */
const char *ss_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* See ss_util.h. */
int ss_utf8_valid(const char *s, size_t n, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII, eight bytes at a time */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            goto fail;
        }
        if (i + len > n)
            goto fail;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            goto fail;
        i += len;
    }
    return 1;
fail:
    if (bad)
        *bad = i;
    return 0;
}

/* See ss_util.h. */
long ss_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return -1;
    return ru.ru_maxrss;
}

/* See ss_util.h. */
long ss_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size, res;
    int ok = fscanf(f, "%ld %ld", &size, &res) == 2;
    fclose(f);
    if (!ok)
        return -1;
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* See ss_util.h. */
int ss_name_safe(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) >= max || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return 0;
    return 1;
}

/* See ss_util.h. */
int ss_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SS_ENOTFOUND : SS_EIO;
    size_t cap = 64 * 1024, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        close(fd);
        return SS_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                free(b);
                close(fd);
                return SS_ETOOBIG;
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(b, cap + 1);
            if (!nb) {
                free(b);
                close(fd);
                return SS_ENOMEM;
            }
            b = nb;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            close(fd);
            return SS_EIO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

/* See ss_util.h. */
int ss_write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, b + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

/* Moves element i of the heap of n (at base) down to its place. */
static void sift_down(unsigned char *base, size_t i, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cmp(base + l * size, base + big * size) > 0)
            big = l;
        if (r < n && cmp(base + r * size, base + big * size) > 0)
            big = r;
        if (big == i)
            return;
        swap_bytes(base + i * size, base + big * size, size);
        i = big;
    }
}

/* See ss_util.h: a heapsort. */
void ss_sort(void *base, size_t n, size_t size,
             int (*cmp)(const void *, const void *))
{
    unsigned char *b = base;
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(b, i, n, size, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        swap_bytes(b, b + end * size, size);
        sift_down(b, 0, end, size, cmp);
    }
}
