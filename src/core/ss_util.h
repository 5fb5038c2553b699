/*
 * ss_util.h - small helpers shared by every area: clocks, strict number
 * parsing, environment lookups, UTF-8 validation.
 */
#ifndef SS_UTIL_H
#define SS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic time in nanoseconds / milliseconds. Can't fail. */
uint64_t ss_now_ns(void);
uint64_t ss_now_ms(void);

/* A name that can become a file name: 1 to max-1 bytes of letters,
 * digits, '-', '_' and '.', not starting with '.' (so never "." or "..",
 * never a path). Returns 1 or 0. */
int ss_name_safe(const char *s, size_t max);

/* Reads a whole file (or pipe, or /dev/fd/N) into a NUL-terminated
 * malloc'd buffer (*out, caller frees) of *len bytes. Returns 0,
 * SS_ENOTFOUND, SS_EIO (a read failed: nothing partial is returned),
 * SS_ETOOBIG (over max bytes) or SS_ENOMEM. */
int ss_read_file(const char *path, size_t max, char **out, size_t *len);

/* Writes all n bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int ss_write_all(int fd, const void *p, size_t n);

/* Parses a run id: 1 to 16 hex digits, not all zero (the run id 0 means
 * "no run"). Returns 0 and *out, or SS_EINVAL. */
int ss_parse_run(const char *s, uint64_t *out);

/* Draws a fresh run id: 64 random bits from getrandom, never 0. Returns
 * 0, or SS_EIO if the kernel gave no randomness. */
int ss_run_new(uint64_t *out);

/* The run id of a component: opt (a --run value) if not NULL, else the
 * environment variable SS_RUN, else 0 (none). Returns 0, or SS_EINVAL
 * with a sentence naming the bad value in err. */
int ss_run_get(const char *opt, uint64_t *out, char *err, size_t errlen);

/* Parses a whole decimal unsigned integer in [min, max] (suffixes k, M, G
 * multiply by 1024^n when allow_suffix). Returns 0 or SS_EINVAL. */
int ss_parse_u64(const char *s, uint64_t min, uint64_t max, int allow_suffix,
                 uint64_t *out);

/* The most rows per second a rate may say (ss_parse_rate). */
#define SS_RATE_MAX 1000000000ull

/* Parses a rate in rows per second: a whole decimal number, optionally
 * followed by k (x 1000) or M (x 1000000), decimal unlike the sizes of
 * ss_parse_u64: "50000", "50k", "2M". 0 means no limit. Returns 0 and
 * *out (0..SS_RATE_MAX), or SS_EINVAL. */
int ss_parse_rate(const char *s, uint64_t *out);

/* Formats a one-line reason into err[0..errlen), truncating it, for the
 * `char *err, size_t errlen` out-parameters of the code base; does
 * nothing when err is NULL or errlen 0. Can't fail. */
void ss_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns getenv(name) if set and non-empty, else dflt. */
const char *ss_env(const char *name, const char *dflt);

/* Returns 1 if [p, p+n) is valid UTF-8 (no overlongs, no surrogates),
 * else 0, and sets *bad to the offset of the first bad byte. */
int ss_utf8_valid(const char *p, size_t n, size_t *bad);

/* Peak resident set size of this process in KiB (from getrusage). */
/* Sorts n elements of size bytes at base by cmp (as qsort, not stable),
 * in place with no allocation and no system call, in O(n log n): glibc's
 * qsort asks the kernel for the machine's memory (sysinfo) on arrays past
 * 1 KiB, which the enclave's system call filter kills. Use it in code
 * that runs in an enclave. */
void ss_sort(void *base, size_t n, size_t size,
             int (*cmp)(const void *, const void *));

long ss_peak_rss_kb(void);
/* Current resident set size in KiB (from /proc/self/statm), or -1. */
long ss_rss_kb(void);

#endif
