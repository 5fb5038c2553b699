/*
 * ss_progress.h - the live progress line of a run on a terminal:
 *
 *   0:12 source 1.2M rows 40% ETA 0:18 | map 95.1k ev/s 8.2 MB/s | sink 1.1M
 *
 * ss_progress_format builds the line from plain numbers (no I/O);
 * ss_progress_draw / ss_progress_clear put it on stderr, redrawn in place
 * ("\r\033[K"), and take it away before anything else is printed there.
 */
#ifndef SS_PROGRESS_H
#define SS_PROGRESS_H

#include "wire/ss_stats.h"

#include <stddef.h>
#include <stdint.h>

/* The state of the line on the terminal. Zero-initialise. */
typedef struct ss_progress {
    int cols;   /* terminal width; <= 10: 80 */
    int shown;  /* the line is on the screen */
    uint64_t last_draw; /* ss_now_ns of the last draw */
} ss_progress;

/* One stage: its name (borrowed) and its workers' current rates. */
typedef struct ss_progress_stage {
    const char *name;
    double ev_rate, byte_rate;
} ss_progress_stage;

/* What the line shows. */
typedef struct ss_progress_view {
    double elapsed_s;
    const ss_stats *source; /* its last sample, NULL: none yet */
    double source_age_s;    /* how long ago that sample arrived */
    const ss_progress_stage *stages;
    size_t nstages;
    const ss_stats *sink; /* its last sample, NULL: none yet */
    int width;            /* columns the line may take; <= 0: no limit */
} ss_progress_view;

/* Writes the line for v into buf (always NUL-terminated, cut at n - 1)
 * and returns its length. Can't fail.
 *
 * The line fits in v->width without cutting a number: when the full form
 * is too wide, stages lose their MB/s, then the last stages give way to
 * "| ..."; the elapsed time, the source and the sink always show (only a
 * width too small for those cuts them). The ETA is computed at the time
 * of the source's sample and counts down between samples, so it does not
 * creep up while the line waits for the next one. */
size_t ss_progress_format(char *buf, size_t n, const ss_progress_view *v);

/* Replaces the line on stderr by line[0..len), cut to the terminal's
 * width, and records now as the time of the draw. */
void ss_progress_draw(ss_progress *pg, const char *line, size_t len,
                      uint64_t now);

/* Erases the line if it is shown. */
void ss_progress_clear(ss_progress *pg);

#endif
