/*
 * ss_progress.c - the live progress line (see ss_progress.h).
 */
#include "run/ss_progress.h"

#include <stdarg.h>
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

/* Appends to b (cap bytes, NUL-terminated) like snprintf; keeps *len. */
static void add(char *b, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *b, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
    if (*len >= cap)
        *len = cap - 1;
}

/* One stage's segment, long (" | map 95.1k ev/s 8.2 MB/s") or short
 * (" | map 95.1k/s"). */
static size_t stage_seg(char *b, size_t cap, const ss_progress_stage *st,
                        int shortform)
{
    char h[32];
    size_t len = 0;
    b[0] = '\0';
    if (shortform)
        add(b, cap, &len, " | %s %s/s", st->name,
            human(h, sizeof h, st->ev_rate));
    else
        add(b, cap, &len, " | %s %s ev/s %.1f MB/s", st->name,
            human(h, sizeof h, st->ev_rate), st->byte_rate / 1e6);
    return len;
}

/* See ss_progress.h. */
size_t ss_progress_format(char *line, size_t size, const ss_progress_view *v)
{
    char h1[32], head[256], tail[64], seg[160];
    size_t hl = 0, tl = 0, len = 0;
    double el = v->elapsed_s;
    if (!size)
        return 0;
    line[0] = head[0] = tail[0] = '\0';
    add(head, sizeof head, &hl, "%d:%02d ", (int)el / 60, (int)el % 60);
    const ss_stats *src = v->source;
    if (src) {
        add(head, sizeof head, &hl, "source %s rows",
            human(h1, sizeof h1, (double)src->in));
        if (src->total_bytes) {
            double f = (double)src->in_bytes / (double)src->total_bytes;
            if (f > 1)
                f = 1;
            add(head, sizeof head, &hl, " %.0f%%", f * 100);
            double at = el - v->source_age_s; /* elapsed at the sample */
            if (f > 0.01 && f < 1 && at > 0) {
                double left = at * (1 - f) / f - v->source_age_s;
                int eta = left > 0 ? (int)(left + 0.5) : 0;
                add(head, sizeof head, &hl, " ETA %d:%02d", eta / 60,
                    eta % 60);
            }
        }
    } else {
        add(head, sizeof head, &hl, "source: no report yet");
    }
    if (v->sink)
        add(tail, sizeof tail, &tl, " | sink %s",
            human(h1, sizeof h1, (double)v->sink->in));
    size_t width = v->width > 0 ? (size_t)v->width : (size_t)-1;
    if (width > size - 1)
        width = size - 1;
    /* the widest form that fits: long stages, short stages, or as many
     * short stages as fit followed by " | ..." */
    int shortform = 0;
    size_t need = hl + tl;
    for (size_t s = 0; s < v->nstages; s++)
        need += stage_seg(seg, sizeof seg, &v->stages[s], 0);
    if (need > width)
        shortform = 1;
    add(line, size, &len, "%s", head);
    static const char more[] = " | ...";
    for (size_t s = 0; s < v->nstages; s++) {
        size_t sl = stage_seg(seg, sizeof seg, &v->stages[s], shortform);
        size_t rest = 0; /* what must still fit after this segment */
        if (s + 1 < v->nstages)
            rest = sizeof more - 1;
        if (len + sl + tl + rest > width && shortform) {
            if (len + (sizeof more - 1) + tl <= width)
                add(line, size, &len, "%s", more);
            break;
        }
        add(line, size, &len, "%s", seg);
    }
    add(line, size, &len, "%s", tail);
    if (len > width)
        len = width;
    line[len] = '\0';
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
