/*
 * ss_integrity.h - the sink's end-to-end check of a whole stream, kept
 * independent of the routers (which are untrusted).
 *
 * Every DATA batch that reaches the sink is recorded here by lineage
 * (stream, seq) after it was authenticated (ss_aead_open, in encrypted and
 * enclave modes: then the header fields used below cannot have been
 * changed on the way). The last batch of each stream carries SS_AUX_END
 * in aux, and a source's end batches carry in aux the number of streams
 * the source injected; so the sink learns, from authenticated data only, which
 * streams exist and how many batches each has. It reports:
 *
 *   - a batch received twice (duplicated or replayed);
 *   - a batch after the end of its stream, or two different ends;
 *   - in ordered mode, a batch arriving after a later one of its stream
 *     (reordered; only meaningful when every stage has one worker, so the
 *     path keeps each stream's order: the supervisor says so);
 *   - at the end: a missing batch (dropped), a stream without its end, a
 *     source stream missing entirely, the result of a stateful worker
 *     the sink was told to expect (ss_integrity_expect_final) that never
 *     arrived, and an EOS table (built by routers) that disagrees with
 *     what arrived.
 *
 * Messages name the stream and the batch number, e.g. "integrity: stream
 * 0 batch 12 is missing (dropped on the way)".
 */
#ifndef SS_INTEGRITY_H
#define SS_INTEGRITY_H

#include "net/ss_proto.h"
#include "wire/ss_batch.h"

#include <stddef.h>

typedef struct ss_integrity ss_integrity;

/* Returns 0 and *out, or SS_ENOMEM. ordered: see above. */
int ss_integrity_new(int ordered, ss_integrity **out);
void ss_integrity_destroy(ss_integrity **p);

/* Expects the FINAL stream of the worker called name (a stateful
 * worker always ends its own stream, ss_name_id(name) | 2^31, with an
 * END batch, even an empty one): ss_integrity_finish fails if it did not
 * arrive whole. The list comes from whoever started the run (sstream
 * run's --finals for the sink), never from the routers. Returns 0,
 * SS_EINVAL (empty name) or SS_ENOMEM. */
int ss_integrity_expect_final(ss_integrity *ig, const char *name);

/* A restart from a checkpoint: batches 0..seq-1 of source stream
 * `stream` were processed before it and are not sent again, so they
 * count as arrived; nstreams > 0 says the stream had ended there (its
 * END batch was seq-1 and declared nstreams source streams). The resume
 * points come from whoever started the run (sstream run, from its
 * checkpoint manifest), never from the routers. Call before the first
 * batch. Returns 0, SS_EINVAL (seq 0 with nstreams, or a stream already
 * seen) or SS_ENOMEM. */
int ss_integrity_resume(ss_integrity *ig, uint32_t stream, uint64_t seq,
                        uint32_t nstreams);

/* Heap bytes the checks hold: per stream a bitmap of the seqs arriving
 * out of order (those below a stream's contiguous prefix are dropped),
 * and the split batches whose parts are still arriving; it does not grow
 * with the number of batches while they arrive nearly in order. */
size_t ss_integrity_bytes(const ss_integrity *ig);

/* Records one authenticated DATA batch. Returns 0, or SS_EINTEGRITY (or
 * SS_ENOMEM) with the reason in err. */
int ss_integrity_batch(ss_integrity *ig, const ss_hdr *h, char *err,
                       size_t errlen);

/* At the end of the input: checks that every stream is complete and that
 * the (untrusted) EOS table agrees, and, for each writer whose result (a
 * FINAL batch of its own stream) carries an enclave instance id, that
 * every other batch it sent carried the same id and that their number
 * is the one its result states (docs/PROTOCOL.md, instance): else the
 * error names the worker. Returns 0 or SS_EINTEGRITY with the
 * first problem in err. */
int ss_integrity_finish(ss_integrity *ig, const ss_eos *eos, char *err,
                        size_t errlen);

#endif
