/*
 * ss_accounting.h - the books of a run: from the last counters of each
 * component (ss_stats.h) to each stage's totals and the verdict on
 * "rows in = rows out + rows filtered + rows rejected".
 *
 * Pure functions: no I/O, no clock, no allocation, so that a local run
 * (ss_supervisor.c) and a cluster run can share them, and so that the
 * rules below are unit-tested (tests/unit/test_accounting.c).
 *
 * The rules, in the order they are checked:
 *   1. the source and every worker must have reported (else NO_COUNTERS);
 *   2. if a worker died while its stage went on (lost > 0) its events were
 *      processed again by others: the rows are not checked (UNCHECKED);
 *   3. source: read = sent + rejected;
 *   4. each stage: in = passed + dropped + rejected, and in = what the
 *      stage before it (or the source) sent;
 *   5. rows: until the first stateful stage (a reduce...), what a stage
 *      drops was filtered out; what the first stateful stage drops or
 *      passes was folded into its results and counts as rows out; after
 *      it, events are results, not rows. The same goes for a stateless
 *      stage that emits another number of events than it passes (a
 *      flatMap that splits a line into words): the rows it passed are rows
 *      out, what it dropped filtered, and after it events are not rows.
 *      rows in (the source's) must equal
 *      rows out + filtered + rejected (rejected summed up to that stage).
 * The first rule broken gives MISMATCH and a reason naming the component
 * or stage; else BALANCED.
 */
#ifndef SS_ACCOUNTING_H
#define SS_ACCOUNTING_H

#include "wire/ss_stats.h"

#include <stddef.h>
#include <stdint.h>

/* One component as the books see it; everything borrowed. */
typedef struct ss_acct_part {
    const char *name; /* "map-1", "source": for the reasons */
    const char *role; /* "source", "worker"; others are not counted */
    int stage;        /* workers: index of their stage; else -1 */
    const ss_stats *st; /* its last counters, NULL if none arrived */
} ss_acct_part;

/* The totals of one stage's workers (those that reported). */
typedef struct ss_acct_stage {
    uint64_t in, out, passed, dropped, rejected, in_bytes;
    int stateful; /* some worker of the stage folds events (reduce...) */
    size_t missing; /* workers without counters */
} ss_acct_stage;

enum {
    SS_ACCT_BALANCED = 0,
    SS_ACCT_MISMATCH = 1,    /* why says which rule broke, and where */
    SS_ACCT_NO_COUNTERS = 2, /* why names the silent component */
    SS_ACCT_UNCHECKED = 3,   /* workers were lost: rows not checked */
};

/* The verdict and the four numbers of the rows equation. */
typedef struct ss_balance {
    int verdict; /* SS_ACCT_* */
    uint64_t rows_in, rows_out, filtered, rejected;
    char why[256]; /* "" when BALANCED or UNCHECKED */
    /* the stateless stage after which events are not rows (rule 5), a
     * name borrowed from stage_names; NULL if none */
    const char *split_stage;
} ss_balance;

/* Sums the counters of the workers of stage `stage` among parts[0..n).
 * Can't fail. */
void ss_accounting_stage(const ss_acct_part *parts, size_t n, int stage,
                         ss_acct_stage *out);

/* Applies the rules above to parts[0..n) (one of them the source) for a
 * pipeline of nstages stages named stage_names[0..nstages), lost being the
 * number of workers that died while their stage went on. Fills *out and
 * returns out->verdict. Can't fail; a missing source gives NO_COUNTERS. */
int ss_accounting_balance(const ss_acct_part *parts, size_t n,
                          const char *const *stage_names, size_t nstages,
                          size_t lost, ss_balance *out);

/* The same for a pipeline where stage s gets copies[s] copies of every
 * event (a broadcast stage: its N workers each get every batch; 1
 * otherwise; copies NULL: 1 everywhere). Such a stage must receive
 * copies[s] times what the stage before sent, and counts once in the rows
 * equation (its passed, dropped and rejected divided by copies[s]). */
int ss_accounting_balance_copies(const ss_acct_part *parts, size_t n,
                                 const char *const *stage_names,
                                 const unsigned *copies, size_t nstages,
                                 size_t lost, ss_balance *out);

/* Past this share of the rows in, a run that balances still warns. */
#define SS_ACCT_REJECT_WARN 0.01

enum {
    SS_ACCT_REJECTS_OK = 0,
    SS_ACCT_REJECTS_WARN = 1, /* more than 1 %: say so in the summary */
    SS_ACCT_REJECTS_FAIL = 2, /* more than max_ratio: the run fails */
};

/* Judges the rejected rows of b (a BALANCED or MISMATCH verdict: others
 * have no row counts) against the pipeline's max_reject_ratio max_ratio
 * (0..1; a negative value: no limit). Writes a sentence for the user in
 * msg ("" when OK), e.g. "97 of 100 rows (97.0%) were rejected: more than
 * max_reject_ratio 0.05". Can't fail. */
int ss_accounting_rejects(const ss_balance *b, double max_ratio, char *msg,
                          size_t msglen);

#endif
