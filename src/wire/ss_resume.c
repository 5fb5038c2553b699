/*
 * ss_resume.c - the resume points of source streams (ss_resume.h).
 */
#include "wire/ss_resume.h"
#include "securestreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int num(const char **p, uint64_t max, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (uint64_t)(*s - '0');
        if (x > max)
            return -1;
        s++;
    }
    *p = s;
    *v = x;
    return 0;
}

/* See ss_resume.h. */
int ss_resume_parse(const char *spec, ss_resume_stream **out, size_t *n,
                    char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!spec || !*spec)
        return 0;
    size_t cap = 0;
    ss_resume_stream *v = NULL;
    const char *p = spec;
    for (unsigned k = 0; *p; k++) {
        uint64_t id, seq, ns = 0;
        const char *at = p;
        int bad = k >= 4096 || num(&p, UINT32_MAX, &id) || *p++ != ':' ||
                  num(&p, (1ull << 40) - 1, &seq);
        if (!bad && *p == ':') {
            p++;
            bad = num(&p, UINT32_MAX, &ns) || ns == 0 || seq == 0;
        }
        if (!bad && *p == ',')
            bad = !*++p; /* a comma ends no list */
        else if (!bad && *p)
            bad = 1;
        if (bad) {
            snprintf(err, errlen, "SS_RESUME_STREAMS: entry %u ('%.40s') "
                     "is not STREAM:SEQ[:N] (decimal; at most 4096)", k + 1,
                     at);
            free(v);
            return SS_EINVAL;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            ss_resume_stream *w = realloc(v, cap * sizeof *w);
            if (!w) {
                free(v);
                return SS_ENOMEM;
            }
            v = w;
        }
        v[(*n)++] = (ss_resume_stream){(uint32_t)id, seq, (uint32_t)ns};
    }
    *out = v;
    return 0;
}
