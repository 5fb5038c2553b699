/*
 * ss_source.h - injects a file (or stdin) into a pipeline as batches of
 * events, as fast as the first router takes them or at a given rate.
 *
 * With parts = N the file is cut into N ranges of about equal size on line
 * boundaries, each injected by its own thread as its own stream (stream id
 * = part index), like the seed's 4 data nodes. Every line is checked
 * first; a bad one is rejected (counted, written to the rejects file with
 * its line number) and the rest goes on:
 *   - longer than the batch size;
 *   - not valid UTF-8;
 *   - format csv: malformed quoting, or a field count other than the
 *     header's (or the first line's, without a header);
 *   - format jsonl: not a JSON value (valid lines are sent as values).
 * A batch's first_row is the 1-based line number of its first event, and
 * a batch never spans a rejected line, so downstream stages can name the
 * exact line of any event they reject.
 */
#ifndef SS_SOURCE_H
#define SS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_source_opts {
    const char *to;      /* first router's FRONT endpoint */
    const char *file;    /* input file; NULL or "-": stdin */
    unsigned parts;      /* 1..64; stdin: 1 */
    size_t batch_size;   /* bytes per batch (default 256 KiB) */
    const char *format;  /* "lines" (default), "csv", "jsonl", "sealed" */
    int header;          /* first line is a header: skip it */
    const char *name;    /* component name (default "source") */
    const char *rejects; /* rejects file (JSON lines), or NULL */
    const char *security;
    const char *keys;
    int links_sealed;    /* 1: its links to router-1 without CurveZMQ
                            (--links sealed; encrypted, enclave) */
    unsigned window;     /* batches in flight per part (default 16) */
    uint64_t run;        /* the run id (--run / SS_RUN), 0: none */
    int connect_timeout_ms;
    int follow;    /* after the end of the file, read what is appended,
                      reopen it when replaced (like tail -F), until
                      ss_source_stop, which then ends the stream cleanly;
                      the file is read in 1 part */
    int linger_ms; /* stdin, a pipe or a followed file: a partial batch
                      leaves once no byte arrived for this long (default
                      200; 0: only full batches and the last one); with
                      rate: once its first row would wait longer than
                      this for the next row's turn */
    uint64_t rate; /* rows per second over all parts (0: no limit): row
                      number g (0-based, in the order the parts take
                      them) is taken no earlier than g / rate seconds
                      after the first; a source held back (by the
                      router, the machine) catches up at full speed, by
                      at most one second's rows. A sealed file is paced
                      batch by batch */
    unsigned checkpoint_ms; /* a file read in parts: every part sends a
                      checkpoint BARRIER between two batches each time
                      this interval passed (epoch = intervals since the
                      start), and the source acknowledges each aligned
                      epoch to the supervisor with its counters at the
                      barriers (0: none; stdin and --follow: none) */
    const char *checkpoint_dir; /* with checkpoint_ms: the parts' resume
                      points at each epoch go to <dir>/<name>-e<N>.json */
    uint32_t checkpoint_base; /* epochs start above it (a restarted run's
                      epochs stay above those issued before) */
    const char *resume; /* a restart from a checkpoint (SS_RESUME_PARTS,
                      set by sstream run from the checkpoint's
                      <name>-eE.json): "OFFSET:ROW:SEQ[:end],..." for
                      each part in order: the part starts at byte OFFSET
                      of the file (line ROW, batch SEQ); ":end": it had
                      ended, and sends only its end of stream. Its DATA
                      then carries epoch checkpoint_base (above the
                      restored one). NULL: from the start */
} ss_source_opts;

/* Fills o with the defaults. */
void ss_source_opts_default(ss_source_opts *o);

/* An injection. Opaque: new, run once, destroy; stop from a signal
 * handler or another thread. */
typedef struct ss_source ss_source;

/* Creates a source for o (borrowed: it must outlive the source). Opens
 * nothing and installs no signal handler. Returns 0 and *out (caller
 * destroys), or SS_ENOMEM. */
int ss_source_new(const ss_source_opts *o, ss_source **out);

/* Injects the whole input, then end-of-stream. Returns 0 (even with
 * rejected lines, which are reported), or a negative code whose reason
 * was logged (SS_EINTR after ss_source_stop). With follow, the input has
 * no end: ss_source_stop ends the stream as the end of the file would
 * (the rest is sent, then end-of-stream) and the result is 0. Call once. */
int ss_source_run(ss_source *s);

/* Makes ss_source_run stop sending and return SS_EINTR soon (with
 * follow: end the stream cleanly and return 0 soon; if its router has not
 * answered yet, once it does, within the connect timeout: a second call
 * gives up that wait, SS_EINTR). Async-signal-safe (lock-free atomics). */
void ss_source_stop(ss_source *s);

/* Frees *p and sets it to NULL. Safe on NULL. */
void ss_source_destroy(ss_source **p);

#endif
