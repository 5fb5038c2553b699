/*
 * ss_stage.h - runs one stage script over batches of events.
 *
 * A stage loads the user's script in its own capped Lua state. The script
 * builds an Rx chain on the subject returned by fromZmqSocket() and ends it
 * with subscribeToSocket() (or subscribe() for a sink). ss_stage_process()
 * decodes each event of a batch, pushes it through the chain under
 * lua_pcall, and collects what reaches the output: encoded events for the
 * next stage, and rejects for events that raised an error or produced a
 * value that cannot be sent. The same code runs in a worker process
 * (security plain/encrypted) and inside an enclave (security enclave).
 *
 * Accounting, per batch and in total: in = passed + dropped + rejected,
 * where passed events produced >= 1 output, dropped produced none
 * (filtered, or folded into a reduce), and rejected raised an error.
 */
#ifndef SS_STAGE_H
#define SS_STAGE_H

#include "core/ss_buf.h"
#include "core/ss_bundle.h"
#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ss_stage ss_stage;

typedef struct ss_stage_opts {
    const char *script_path; /* the stage script (or NULL with script_src) */
    const char *script_src;  /* script text, when not read from a file */
    size_t script_len;
    const ss_bundle *bundle; /* if set: the script and the local modules
                                it requires (require finds them in
                                package.preload; built-ins win); borrowed
                                for the call that loads the script */
    const char *name;  /* this worker's name, e.g. "map-1" */
    const char *stage; /* the stage name, e.g. "map" */
    size_t mem_limit;  /* Lua memory cap in bytes (0: none) */
    int sandboxed;     /* restricted library set (enclave) */
    int in_enclave;    /* 1: running inside an enclave */
    int rejects_sealed; /* in an enclave: its reject records leave sealed
                           for the owner, so they may quote the event */
    int host_errors;   /* 1: an error in a user function rejects that
                          event and the stream goes on (workers); 0: RxLua
                          semantics, routed to onError (sstream lua) */
    uint64_t max_instructions; /* Lua instructions one event (or the
                                  completion) may use; 0: the default,
                                  SS_STAGE_DEFAULT_MAX_INSTRUCTIONS */
} ss_stage_opts;

/* Default per-event (and per-completion) instruction budget: about a
 * second of Lua on a slow core, orders of magnitude above what a stage
 * needs per event, and a loop that never ends is stopped by it. */
#define SS_STAGE_DEFAULT_MAX_INSTRUCTIONS 200000000ull
#define SS_STAGE_MIN_MAX_INSTRUCTIONS 10000ull
#define SS_STAGE_MAX_MAX_INSTRUCTIONS 1000000000000ull

typedef struct ss_stage_counts {
    uint64_t in;       /* events decoded from input batches */
    uint64_t passed;   /* events that produced at least one output */
    uint64_t dropped;  /* events that produced no output, no error */
    uint64_t rejected; /* events that raised an error (or undecodable) */
    uint64_t out;      /* output events emitted */
    uint64_t out_bytes;
} ss_stage_counts;

/* Adds every counter of d to t. Can't fail. */
void ss_stage_counts_add(ss_stage_counts *t, const ss_stage_counts *d);

/* The output of processing one batch (or the completion). Embedded value:
 * ss_stage_out_init / ss_stage_out_release. */
typedef struct ss_stage_out {
    ss_buf events;   /* MessagePack values, back to back */
    uint32_t count;  /* number of values in events */
    ss_buf rejects;  /* JSON lines, one per rejected event */
    uint32_t nrejects;
    ss_stage_counts delta; /* this call's contribution to the totals */
} ss_stage_out;

void ss_stage_out_init(ss_stage_out *o);
void ss_stage_out_reset(ss_stage_out *o);
void ss_stage_out_release(ss_stage_out *o);

/* Loads the script and runs its main chunk. Returns 0 and *out (caller
 * destroys), or a negative code with a one-line reason in err. */
int ss_stage_new(const ss_stage_opts *o, ss_stage **out, char *err,
                 size_t errlen);
void ss_stage_destroy(ss_stage **p);

/* The endpoints the script named (borrowed; NULL if none). */
const char *ss_stage_from(const ss_stage *s);
const char *ss_stage_to(const ss_stage *s);
/* The stage's name (borrowed; "" if none was given). */
const char *ss_stage_name(const ss_stage *s);
/* The instruction budget in force (see ss_stage_opts). */
uint64_t ss_stage_max_instructions(const ss_stage *s);
/* 1 if the chain keeps state across events (reduce, scan, ...). */
int ss_stage_stateful(const ss_stage *s);
/* 1 if the script called sendZmqCompleted(). */
int ss_stage_done_called(const ss_stage *s);
/* 1 if the script uses mapSGX/filterSGX/reduceSGX. */
int ss_stage_uses_sgx(const ss_stage *s);

/* Processes one plaintext batch: hdr describes it, payload holds
 * hdr->count MessagePack values. Appends to out. Never stops on a bad
 * event: it is rejected and counted; so is an event whose Lua code runs
 * past max_instructions ("stage 'map': an event ran past max_instructions
 * (N Lua instructions): stopped"; time spent in C functions such as
 * string matching is not counted; counting starts at the event's first
 * 10 ms CPU tick, so an event under the budget is never stopped and an
 * endless one runs at most one tick more). Returns 0, or a negative code
 * if the stage itself is broken (out of memory at the C level). */
int ss_stage_process(ss_stage *s, const ss_hdr *hdr, const char *payload,
                     size_t len, ss_stage_out *out);

/* Rejects every event of the batch hdr describes, unread, with reason
 * (one reject record with "events": hdr->count), and counts them in and
 * rejected: for a batch that cannot be processed at all (it killed the
 * enclave each time it was tried). */
void ss_stage_reject_batch(ss_stage *s, const ss_hdr *hdr,
                           const char *reason, ss_stage_out *out);

/* Signals completion (onCompleted) and collects what the chain emits then
 * (e.g. a reduce's result), within max_instructions as for an event. On an error returns SS_ELUA with the reason
 * in ss_stage_error(); it is logged too, except in_enclave (the log is
 * the host's and the reason may quote data: the caller seals it). */
int ss_stage_complete(ss_stage *s, ss_stage_out *out);

/* --- checkpoints -----------------------------------------------------------
 *
 * The state of a stage is the state of the Rx operators its script built
 * (rx.lua, "Rx.checkpoint"): each operator that keeps state across
 * events (reduce, scan, count, sum, min, max, average, distinct,
 * distinctUntilChanged, take/first, skip, last, takeLast, skipLast,
 * skipWhile, takeWhile, elementAt, find, all, contains, defaultIfEmpty,
 * buffer, window, combineLatest, zip, with, sample, tumblingWindow,
 * slidingWindow, joinWindow; Behavior, Replay and Async subjects)
 * registers, when the main chunk subscribes (creates) it, in that order.
 * State kept elsewhere (a script's own local counter, operators
 * subscribed while events run, e.g. inside flatMap) is NOT captured
 * (docs/LUA.md, "Checkpoints").
 *
 * Keyed state: a stateful stage fed PARTITIONED batches (a partition_by
 * stage) keeps one instance of its chain per key group it received: the
 * first batch of key group g runs the script's main chunk again for g,
 * with its own globals (reads fall back to the worker's), locals,
 * subject and operators; modules loaded with require and data files are
 * shared. A batch of group g goes to g's instance; a batch that is not
 * PARTITIONED goes to the instance the load built (the "load-time
 * instance"). At completion every key group's instance completes, by
 * increasing group, then the load-time one if it got events or there is
 * no other. The instances share the stage's memory cap (each costs what
 * its main chunk builds: docs/LUA.md, "Keyed state").
 *
 * Snapshot bytes (what ss_stage_snapshot appends, what ss_stage_restore
 * takes): one canonical MessagePack value (ss_lua_canon.h), the same
 * bytes for the same state,
 *
 *     [2, base_used, [[name, state], ...], [[group, [[name, state], ...]], ...]]
 *
 * base_used: the load-time instance got events; then its operators, one
 * [name, state] per registered operator in registration order (name:
 * "reduce", "tumblingWindow", ...); then each key group's instance by
 * increasing group. A script without the rx module or without stateful
 * operators gives [2, false, [], []]. Version 1 ([1, [[name, state],
 * ...]], before keyed state) is still restored, as the load-time
 * instance's. The bytes are plaintext state: seal them
 * (crypto/ss_snapshot.h) before they leave a trusted place. */
#define SS_STAGE_SNAPSHOT_VERSION 2

/* Appends the snapshot of s's state to out (out is not reset). Call it
 * between events (never from inside ss_stage_process, e.g. from a tick):
 * at a barrier, after the batches before it were processed. Runs the
 * operators' get functions under lua_pcall within the memory cap and the
 * instruction budget; the stage is unchanged by it. Returns 0, or on
 * failure out->len restored and:
 *   SS_EENCODE  a value cannot be checkpointed: err names the operator,
 *               its place and the path of the value ("stage 'reduce':
 *               cannot checkpoint the state of operator 1 (reduce): a
 *               function value (at reduce.acc.cb)");
 *   SS_ELUA     a get function raised (or the memory cap was hit);
 *   SS_EINVAL   called while an event runs;
 *   SS_ETOOBIG  the snapshot is over SS_STAGE_SNAPSHOT_MAX bytes;
 *   SS_ENOMEM. */
#define SS_STAGE_SNAPSHOT_MAX ((size_t)64 << 20)
int ss_stage_snapshot(ss_stage *s, ss_buf *out, char *err, size_t errlen);

/* Puts back the state data[0..len) that ss_stage_snapshot gave for a
 * stage loaded from the same script: after ss_stage_new (the main chunk
 * has built the chain) and before the first event. data is untrusted
 * (decoded with the event decoder's checks, within the memory cap).
 * Returns 0, or:
 *   SS_EDECODE  not a snapshot: bad MessagePack, another version, bytes
 *               after the value (err says which and where);
 *   SS_ELUA     the snapshot does not fit the script (another number or
 *               order of stateful operators: err names both lists), an
 *               operator refused its state, or the memory cap was hit;
 *   SS_EINVAL   called after the first event (or while one runs).
 * On failure the stage's state is unspecified: discard the stage. */
int ss_stage_restore(ss_stage *s, const char *data, size_t len, char *err,
                     size_t errlen);

/* What ss_stage_restore_groups takes of a snapshot. */
typedef struct ss_stage_groups {
    int base;   /* 1: the load-time instance's state too (a worker's own
                   snapshot); 0: a snapshot whose load-time instance got
                   events is refused (SS_EDENIED: that state belongs to no
                   key group, so it cannot move) */
    int lo, hi; /* the key groups to restore, lo..hi inclusive; the
                   others are skipped */
    int own_lo, own_hi; /* every key group in the snapshot must lie in
                   own_lo..own_hi (the range of the worker that took it),
                   else SS_EDENIED */
} ss_stage_groups;

/* Restores part of a snapshot, as ss_stage_restore (which is this with
 * base 1 and every group): the key groups of sel's range get an instance
 * (main chunk run for each) holding their state. May be called several
 * times before the first event, with the snapshots of several workers (a
 * restart with another worker count: each new worker takes its range
 * from every old worker's snapshot); a key group restored twice is
 * refused (SS_EDENIED), and so is the load-time state twice (SS_EINVAL).
 * Errors as ss_stage_restore, and SS_EDENIED as said. */
int ss_stage_restore_groups(ss_stage *s, const char *data, size_t len,
                            const ss_stage_groups *sel, char *err,
                            size_t errlen);

/* The number of key group instances, and the group of the i-th one by
 * increasing group (-1 when i is out of range). */
size_t ss_stage_key_groups(const ss_stage *s);
int ss_stage_key_group(const ss_stage *s, size_t i);

/* Called when a script emits outside ss_stage_process (a source script
 * built on fromFileByLine): with the collected output once it holds
 * batch_size bytes, and with final=1 when the output completes. The
 * callback consumes out (it is reset afterwards); a non-zero return stops
 * further flushes and is reported by ss_stage_load. */
typedef int (*ss_stage_flush_fn)(void *arg, ss_stage_out *out, int final);
void ss_stage_set_flush(ss_stage *s, ss_stage_flush_fn fn, void *arg,
                        size_t batch_size);

/* Called from inside user code, about every 10 ms of CPU that an event,
 * the completion or the main chunk runs (from a Lua hook that the stage's
 * CPU timer arms, never from the signal handler), so that the host keeps
 * doing what must not wait for a long computation (a worker's heartbeats
 * to its router). The timer's signal is blocked while fn runs (it may
 * wait on a socket). fn must not touch the stage or its Lua state.
 * NULL: none. */
typedef void (*ss_stage_tick_fn)(void *arg);
void ss_stage_set_tick(ss_stage *s, ss_stage_tick_fn fn, void *arg);

/* Runs the script of o in s (ss_stage_new does this when o names a
 * script; call it separately to set a flush callback first). */
int ss_stage_load(ss_stage *s, const ss_stage_opts *o, char *err,
                  size_t errlen);

/* 1 if the script registered an input subject (fromZmqSocket). */
int ss_stage_has_input(const ss_stage *s);
/* 1 once the output subscriber saw onCompleted. */
int ss_stage_output_done(const ss_stage *s);
/* The last error message (borrowed). */
const char *ss_stage_error(const ss_stage *s);
/* The Lua state (borrowed), for tests and the standalone runner. */
struct lua_State *ss_stage_lua(ss_stage *s);

/* Running totals and the Lua memory peak. */
const ss_stage_counts *ss_stage_totals(const ss_stage *s);
size_t ss_stage_mem_peak(const ss_stage *s);

/* A chain sharing one Lua state (what ss_chain runs by default; see
 * ss_chain_shared_wanted): loads script o (its bundle: local modules and
 * data files) into head's Lua state as the stage after the last one so
 * loaded, as if in a state of its own: its own globals
 * (ss_lua_push_env), package.loaded/preload (its own rx, so its own
 * checkpoint: ss_stage_snapshot/restore work on it), data files and
 * instruction budget (o->max_instructions); head's memory cap grows by
 * o->mem_limit (0: no cap). head (loaded, host errors, not itself
 * shared) owns the state and runs every event of the whole chain
 * (ss_stage_process on head only): what a stage emits for an event is
 * kept as a Lua value until the event succeeded in it, then handed to
 * the next stage under its own protection, so outputs, counters
 * (ss_stage_totals of each stage) and rejects (named after the stage,
 * quoting the value it got, at its index in what the stage before
 * handed on) are those of separate states; a stateful stage's tables
 * are handed on as copies. Each stage is completed in order
 * (ss_stage_complete: what it emits then goes through the rest). *out
 * keeps this stage's names, counters and stateful flag, and may be
 * destroyed before or after head. Returns 0 or a negative code with the
 * reason in err (*out NULL). */
int ss_stage_new_shared(ss_stage *head, const ss_stage_opts *o,
                        ss_stage **out, char *err, size_t errlen);
/* 1 if s is a later stage of a shared state. */
int ss_stage_shared(const ss_stage *s);

#endif
