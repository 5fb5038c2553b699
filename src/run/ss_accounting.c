/*
 * ss_accounting.c - the books of a run (see ss_accounting.h).
 */
#include "run/ss_accounting.h"

#include <stdio.h>
#include <string.h>

static int is_role(const ss_acct_part *p, const char *role)
{
    return p->role && strcmp(p->role, role) == 0;
}

/* See ss_accounting.h. */
void ss_accounting_stage(const ss_acct_part *parts, size_t n, int stage,
                         ss_acct_stage *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < n; i++) {
        const ss_acct_part *p = &parts[i];
        if (p->stage != stage || !is_role(p, "worker"))
            continue;
        if (!p->st) {
            a->missing++;
            continue;
        }
        a->in += p->st->in;
        a->out += p->st->out;
        a->passed += p->st->passed;
        a->dropped += p->st->dropped;
        a->rejected += p->st->rejected;
        a->in_bytes += p->st->in_bytes;
        if (p->st->stateful)
            a->stateful = 1;
    }
}

/* See ss_accounting.h. */
int ss_accounting_balance(const ss_acct_part *parts, size_t n,
                          const char *const *stage_names, size_t nstages,
                          size_t lost, ss_balance *b)
{
    return ss_accounting_balance_copies(parts, n, stage_names, NULL,
                                        nstages, lost, b);
}

/* See ss_accounting.h. */
int ss_accounting_balance_copies(const ss_acct_part *parts, size_t n,
                                 const char *const *stage_names,
                                 const unsigned *copies, size_t nstages,
                                 size_t lost, ss_balance *b)
{
    memset(b, 0, sizeof *b);
    const ss_stats *src = NULL;
    for (size_t i = 0; i < n; i++) {
        const ss_acct_part *p = &parts[i];
        int source = is_role(p, "source");
        if (!p->st && (source || is_role(p, "worker"))) {
            snprintf(b->why, sizeof b->why, "no counters from %s",
                     p->name ? p->name : "?");
            return b->verdict = SS_ACCT_NO_COUNTERS;
        }
        if (source)
            src = p->st;
    }
    if (!src) {
        snprintf(b->why, sizeof b->why, "no counters from the source");
        return b->verdict = SS_ACCT_NO_COUNTERS;
    }
    if (lost)
        return b->verdict = SS_ACCT_UNCHECKED;

    uint64_t rows_in = src->in, filtered = 0;
    uint64_t rejected = src->rejected, rows_out = 0;
    int folded = 0, bad = 0;
    if (src->in != src->out + src->rejected) {
        bad = 1;
        snprintf(b->why, sizeof b->why, "source: read %llu rows but sent "
                 "%llu and rejected %llu", (unsigned long long)src->in,
                 (unsigned long long)src->out,
                 (unsigned long long)src->rejected);
    }
    uint64_t upstream = src->out;
    const char *upname = "the source";
    for (size_t s = 0; s < nstages; s++) {
        ss_acct_stage a;
        ss_accounting_stage(parts, n, (int)s, &a);
        const char *name = stage_names[s];
        uint64_t k = copies && copies[s] > 1 ? copies[s] : 1;
        if (!bad && a.in != a.passed + a.dropped + a.rejected) {
            bad = 1;
            snprintf(b->why, sizeof b->why, "stage '%s': in %llu != passed "
                     "%llu + dropped %llu + rejected %llu", name,
                     (unsigned long long)a.in, (unsigned long long)a.passed,
                     (unsigned long long)a.dropped,
                     (unsigned long long)a.rejected);
        }
        if (!bad && a.in != k * upstream) {
            bad = 1;
            snprintf(b->why, sizeof b->why, "stage '%s': received %llu "
                     "events but %s sent %llu%s", name,
                     (unsigned long long)a.in, upname,
                     (unsigned long long)upstream,
                     k > 1 ? " (times its copies: broadcast)" : "");
        }
        /* a broadcast stage's workers each saw every row: count once */
        a.passed /= k;
        a.dropped /= k;
        a.rejected /= k;
        /* rule 5 of ss_accounting.h */
        if (!folded) {
            rejected += a.rejected;
            if (a.stateful) {
                rows_out = a.passed + a.dropped;
                folded = 1;
            } else {
                filtered += a.dropped;
                rows_out = a.passed;
                /* a stage that emits other than one event per event it
                 * passes (a flatMap: words of a line) ends the rows too:
                 * its rows passed are rows out, its events are not rows */
                if (a.out != a.passed * k) {
                    folded = 1;
                    if (!b->split_stage)
                        b->split_stage = name;
                }
            }
        }
        upstream = a.out;
        upname = name;
    }
    if (nstages == 0) /* a source straight into the sink */
        rows_out = src->out;
    int ok = rows_in == rows_out + filtered + rejected;
    if (!ok && !bad) {
        bad = 1;
        snprintf(b->why, sizeof b->why, "a stage before '%s' emits a "
                 "different number of events than it passes",
                 nstages ? stage_names[nstages - 1] : "the sink");
    }
    b->rows_in = rows_in;
    b->rows_out = rows_out;
    b->filtered = filtered;
    b->rejected = rejected;
    return b->verdict = bad ? SS_ACCT_MISMATCH : SS_ACCT_BALANCED;
}

/* See ss_accounting.h. */
int ss_accounting_rejects(const ss_balance *b, double max_ratio, char *msg,
                          size_t msglen)
{
    if (msglen)
        msg[0] = '\0';
    if ((b->verdict != SS_ACCT_BALANCED && b->verdict != SS_ACCT_MISMATCH) ||
        !b->rows_in || !b->rejected)
        return SS_ACCT_REJECTS_OK;
    double r = (double)b->rejected / (double)b->rows_in;
    if (max_ratio >= 0 && r > max_ratio) {
        snprintf(msg, msglen, "%llu of %llu rows (%.1f%%) were rejected: "
                 "more than max_reject_ratio %g",
                 (unsigned long long)b->rejected,
                 (unsigned long long)b->rows_in, r * 100, max_ratio);
        return SS_ACCT_REJECTS_FAIL;
    }
    if (r > SS_ACCT_REJECT_WARN) {
        snprintf(msg, msglen, "%llu of %llu rows (%.1f%%) were rejected: "
                 "see rejects.jsonl (max_reject_ratio in the pipeline file "
                 "makes this fail the run)",
                 (unsigned long long)b->rejected,
                 (unsigned long long)b->rows_in, r * 100);
        return SS_ACCT_REJECTS_WARN;
    }
    return SS_ACCT_REJECTS_OK;
}
