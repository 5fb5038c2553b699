/*
 * ss_progress.c - the live progress line (see ss_progress.h).
 */
#include "run/ss_progress.h"

#include <stdio.h>

/* 1234 -> "1.2k"; 1234567 -> "1.2M". */
static const char *human(char *buf, size_t n, double v)
{
    if (v < 1000)
        snprintf(buf, n, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else if (v < 1e9)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else
        snprintf(buf, n, "%.1fG", v / 1e9);
    return buf;
}

/* See ss_progress.h. */
size_t ss_progress_format(char *line, size_t size, const ss_progress_view *v)
{
    char h1[32], h2[32];
    size_t len = 0;
    double el = v->elapsed_s;
    if (!size)
        return 0;
    line[0] = '\0';
#define ADD(...)                                                             \
    do {                                                                     \
        if (len < size)                                                      \
            len += (size_t)snprintf(line + len, size - len, __VA_ARGS__);    \
    } while (0)
    ADD("%d:%02d ", (int)el / 60, (int)el % 60);
    const ss_stats *src = v->source;
    if (src) {
        ADD("source %s rows", human(h1, sizeof h1, (double)src->in));
        if (src->total_bytes) {
            double f = (double)src->in_bytes / (double)src->total_bytes;
            if (f > 1)
                f = 1;
            ADD(" %.0f%%", f * 100);
            if (f > 0.01 && f < 1) {
                int eta = (int)(el * (1 - f) / f + 0.5);
                ADD(" ETA %d:%02d", eta / 60, eta % 60);
            }
        }
    } else {
        ADD("starting");
    }
    for (size_t s = 0; s < v->nstages; s++)
        ADD(" | %s %s ev/s %.1f MB/s", v->stages[s].name,
            human(h1, sizeof h1, v->stages[s].ev_rate),
            v->stages[s].byte_rate / 1e6);
    if (v->sink)
        ADD(" | sink %s", human(h2, sizeof h2, (double)v->sink->in));
#undef ADD
    if (len >= size)
        len = size - 1;
    return len;
}

/* See ss_progress.h. */
void ss_progress_draw(ss_progress *pg, const char *line, size_t len,
                      uint64_t now)
{
    int cols = pg->cols > 10 ? pg->cols - 1 : 79;
    if (len > (size_t)cols)
        len = (size_t)cols;
    fputs("\r\033[K", stderr);
    fwrite(line, 1, len, stderr);
    fflush(stderr);
    pg->shown = 1;
    pg->last_draw = now;
}

/* See ss_progress.h. */
void ss_progress_clear(ss_progress *pg)
{
    if (pg->shown) {
        fputs("\r\033[K", stderr);
        pg->shown = 0;
    }
}
