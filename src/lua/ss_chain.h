/*
 * ss_chain.h - operator chaining: consecutive stage scripts run in one
 * process, the output of stage k fed to stage k+1 without a router, a
 * socket or a copy (docs/PIPELINE.md, "Chaining").
 *
 * A chain owns n >= 1 loaded stages (ss_stage). By default they share
 * the first one's Lua state (ss_stage_new_shared): each script with its
 * own globals, modules, data files, instruction budget and checkpoint,
 * and what stage k emits for an event goes to stage k+1 as a Lua value,
 * once the event succeeded in stage k, without encoding; the state's
 * memory cap is the sum of the stages'. Loaded each in a state of its
 * own (ss_stage_new; SS_CHAIN_SHARED=0), stage k's output buffer (its
 * events, MessagePack, back to back) is stage k+1's input batch, under
 * the input batch's lineage; the last stage's output is the chain's.
 * Either way the outputs, counts and rejects are the same. Every stage
 * keeps its own counters (ss_stage_totals), so a chained worker still
 * reports in = passed + dropped + rejected per stage, and stage k+1's in
 * equals stage k's out. Rejects name the stage where they happened.
 *
 * Completion flows through the chain in order: stage k's onCompleted
 * output is processed by stage k+1 before stage k+1 completes. The chain
 * keeps state if any of its stages does.
 */
#ifndef SS_CHAIN_H
#define SS_CHAIN_H

#include "lua/ss_stage.h"

#include <stddef.h>

/* At most this many stages in a chain: a worker and its 32 --chain. */
#define SS_CHAIN_MAX 33

typedef struct ss_chain ss_chain;

/* 1 unless SS_CHAIN_SHARED=0 is in the environment: the later stages of
 * a chain are loaded into the first one's Lua state
 * (ss_stage_new_shared), the default; 0: each in a state of its own
 * (ss_stage_new), the old way, kept as a measuring switch for the
 * benchmarks (docs/PERFORMANCE.md). The two give the same outputs,
 * counts, rejects and snapshots (tests/unit/test_chain.c). */
int ss_chain_shared_wanted(void);

/* Takes ownership of stages[0..n) (loaded; the array itself is borrowed)
 * and sets every entry to NULL. Returns 0 and *out (caller destroys), or
 * SS_ENOMEM (the stages are destroyed) or SS_EINVAL (n == 0, or more
 * than SS_CHAIN_MAX; the stages are destroyed too). */
int ss_chain_new(ss_stage **stages, size_t n, ss_chain **out);

/* Destroys the chain and its stages; sets *p to NULL. Safe on NULL. */
void ss_chain_destroy(ss_chain **p);

/* Number of stages, and stage i (borrowed; 0 <= i < n). */
size_t ss_chain_len(const ss_chain *c);
ss_stage *ss_chain_stage(ss_chain *c, size_t i);

/* 1 if any stage keeps state (see ss_stage_stateful). */
int ss_chain_stateful(const ss_chain *c);

/* Runs the batch hdr/payload through every stage in order; the last
 * stage's events are appended to out, and the rejects of every stage
 * (each naming its own stage). out->delta gets the last stage's counts
 * only; every stage's are in its ss_stage_totals. Returns
 * 0, or the negative code of the stage that broke (ss_stage_process). */
int ss_chain_process(ss_chain *c, const ss_hdr *hdr, const char *payload,
                     size_t len, ss_stage_out *out);

/* Completes the stages in order (see above) and appends to out what the
 * last one emits, and the rejects of any. On an error returns SS_ELUA
 * and *failed (if given) is the stage that failed, whose
 * ss_stage_error() says why. */
int ss_chain_complete(ss_chain *c, ss_stage_out *out, ss_stage **failed);

/* Checkpoint of every stage (ss_stage_snapshot), appended to out as one
 * MessagePack array of n bin values, stage k's snapshot bytes at k (a
 * chain of one stage too: [bin]); the same bytes whether the stages
 * share a Lua state or not. Same rules and errors as
 * ss_stage_snapshot; err names the stage that failed. */
int ss_chain_snapshot(ss_chain *c, ss_buf *out, char *err, size_t errlen);

/* Restores what ss_chain_snapshot gave into a chain of the same scripts,
 * before its first batch (untrusted bytes: SS_EDECODE when they are not
 * such an array, or hold another number of stages than the chain). A
 * chain of one stage also takes that stage's own ss_stage_snapshot bytes.
 * Same errors as ss_stage_restore otherwise. */
int ss_chain_restore(ss_chain *c, const char *data, size_t len, char *err,
                     size_t errlen);

/* The same taking only part of the key groups of each stage's snapshot
 * (ss_stage_restore_groups with sel, for every stage): a worker of a
 * partitioned stateful stage restarted with another worker count calls
 * it once with the snapshot of each old worker. */
int ss_chain_restore_groups(ss_chain *c, const char *data, size_t len,
                            const ss_stage_groups *sel, char *err,
                            size_t errlen);

#endif
