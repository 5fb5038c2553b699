/*
 * ss_resume.h - where each source stream resumes after a restart from a
 * checkpoint (docs/PROTOCOL.md, "Resuming from a checkpoint").
 *
 * The coordinator (sstream run) gives the routers and the sink, in
 * SS_RESUME_STREAMS, the streams of the source parts and the seq each
 * resumes at: the batches below it were processed before the checkpoint
 * and are not sent again, so the completeness checks count them as
 * arrived. The text is "STREAM:SEQ[:N],..." (decimal); N, when given,
 * says the part had ended before the checkpoint (its END batch was seq
 * SEQ-1, and it declared N source streams).
 */
#ifndef SS_RESUME_H
#define SS_RESUME_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_resume_stream {
    uint32_t stream;
    uint64_t seq;      /* batches 0..seq-1 count as arrived */
    uint32_t nstreams; /* 0: the part had not ended; else its END's aux */
} ss_resume_stream;

/* Parses spec (untrusted text; NULL or "" gives none) into *out (caller
 * frees) and *n. Returns 0, SS_EINVAL with err naming the bad entry, or
 * SS_ENOMEM. At most 4096 entries, seqs below 2^40. */
int ss_resume_parse(const char *spec, ss_resume_stream **out, size_t *n,
                    char *err, size_t errlen);

#endif
