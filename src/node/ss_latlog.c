/*
 * ss_latlog.c - per-batch timestamps for latency measurement (see
 * ss_latlog.h).
 */
#include "node/ss_latlog.h"
#include "core/ss_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ss_latlog {
    FILE *f;
    pthread_mutex_t lock;
};

/* See ss_latlog.h. */
ss_latlog *ss_latlog_open(const char *who)
{
    const char *dir = getenv("SS_LATENCY_DIR");
    if (!dir || !*dir || !ss_name_safe(who, 64))
        return NULL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.lat", dir, who) >=
        (int)sizeof path)
        return NULL;
    ss_latlog *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->f = fopen(path, "a");
    if (!l->f || pthread_mutex_init(&l->lock, NULL) != 0) {
        fprintf(stderr, "SS_LATENCY_DIR: cannot write %s: %s (no latency "
                        "log)\n", path, strerror(errno));
        if (l->f)
            fclose(l->f);
        free(l);
        return NULL;
    }
    return l;
}

/* See ss_latlog.h. */
void ss_latlog_batch(ss_latlog *l, uint32_t stream, uint64_t seq)
{
    if (!l)
        return;
    uint64_t t = ss_now_ns();
    pthread_mutex_lock(&l->lock);
    fprintf(l->f, "%u %llu %llu\n", stream, (unsigned long long)seq,
            (unsigned long long)t);
    pthread_mutex_unlock(&l->lock);
}

/* See ss_latlog.h. */
void ss_latlog_source(ss_latlog *l, uint32_t stream, uint64_t seq,
                      uint64_t first_ns)
{
    if (!l)
        return;
    uint64_t t = ss_now_ns();
    pthread_mutex_lock(&l->lock);
    fprintf(l->f, "%u %llu %llu %llu\n", stream, (unsigned long long)seq,
            (unsigned long long)t, (unsigned long long)first_ns);
    pthread_mutex_unlock(&l->lock);
}

/* See ss_latlog.h. */
void ss_latlog_close(ss_latlog **l)
{
    if (!l || !*l)
        return;
    fclose((*l)->f);
    pthread_mutex_destroy(&(*l)->lock);
    free(*l);
    *l = NULL;
}
