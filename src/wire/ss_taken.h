/*
 * ss_taken.h - the input lineages (stream, seq, part) a stateful stage
 * has taken, so that each reaches its state once (docs/SECURITY.md,
 * "Enclave mode", point 6), in memory that does not grow with the run.
 *
 * Per stream it keeps the newest seq taken (hi) and, exactly, which seqs
 * of the window (hi - SS_TAKEN_WINDOW, hi] were taken: a ring of one bit
 * per seq for part 0 (8 KiB a stream), and a hash set for the parts
 * above 0 (a batch cut for a partitioned or broadcast stage) whose seq is
 * in the window, one 24-byte slot per seq and block of 64 parts. A seq at or below hi - SS_TAKEN_WINDOW is refused as
 * too late: its record is gone, so it cannot be told from one taken
 * before. Honest inputs are never that late: every hop between a source
 * and a stage holds a bounded number of batches (router queues, credits,
 * link windows), a few hundred, far below the window.
 *
 * Memory: 8 KiB and a few bytes per stream, plus 48 to 96 bytes (a
 * table kept between a quarter and half full) per seq and block of 64
 * parts above 0 still in its stream's window; none of it grows with the
 * number of batches.
 */
#ifndef SS_TAKEN_H
#define SS_TAKEN_H

#include <stddef.h>
#include <stdint.h>

/* seqs of a stream remembered behind its newest one taken */
#define SS_TAKEN_WINDOW 65536u

typedef struct ss_taken ss_taken;

/* What ss_taken_take found. */
enum {
    SS_TAKEN_NEW = 0,  /* recorded now */
    SS_TAKEN_AGAIN,    /* taken before */
    SS_TAKEN_LATE      /* older than the window: refused, not recorded */
};

/* A new, empty record; NULL when out of memory. Free with
 * ss_taken_destroy. */
ss_taken *ss_taken_new(void);

/* Frees *p and sets it to NULL; safe twice and on NULL. */
void ss_taken_destroy(ss_taken **p);

/* Takes (stream, seq, part): SS_TAKEN_NEW (recorded), SS_TAKEN_AGAIN or
 * SS_TAKEN_LATE (then *newest, when not NULL, is the stream's newest seq
 * taken), or SS_ENOMEM (nothing recorded). Any values are accepted. */
int ss_taken_take(ss_taken *t, uint32_t stream, uint64_t seq, uint32_t part,
                  uint64_t *newest);

/* Bytes of heap the record holds (what tests bound). */
size_t ss_taken_bytes(const ss_taken *t);

/* Streams, and (seq, block of 64 parts) slots of parts above 0, in the
 * windows now. */
size_t ss_taken_streams(const ss_taken *t);
size_t ss_taken_parts(const ss_taken *t);

#endif
