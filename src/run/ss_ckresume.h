/*
 * ss_ckresume.h - reading a complete checkpoint back for a restart that
 * resumes from it (docs/PIPELINE.md, "Restarts"; docs/PROTOCOL.md,
 * "Resuming from a checkpoint").
 *
 * ss_ckresume_load reads <dir>/manifest.json (written by sstream run when
 * an epoch completed) and checks it before anything of it is used: the
 * run id and the epoch are the ones expected, every file it lists is
 * there with the BLAKE2b-256 it records, and the source's resume points
 * (<source>-eE.json) belong to the same run and epoch. What it gives:
 * the source's parts (what sstream source takes in SS_RESUME_PARTS), the
 * source streams and their resume seqs (SS_RESUME_STREAMS, for the
 * routers and the sink), and each component's counters at the
 * checkpoint. The snapshots themselves are checked again where they are
 * restored (bound to the run, epoch, stage and worker: ss_snapshot.h).
 */
#ifndef SS_CKRESUME_H
#define SS_CKRESUME_H

#include "wire/ss_stats.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ss_ckresume {
    uint32_t epoch;
    char source[64];     /* the source component's name */
    unsigned nparts;
    char *parts;         /* "OFFSET:ROW:SEQ[:end],..." (SS_RESUME_PARTS) */
    char *streams;       /* "STREAM:SEQ[:N],..." (SS_RESUME_STREAMS) */
    char **snaps;        /* the snapshot files' names (NAME-eE.snap) */
    size_t nsnaps;
    char *manifest;      /* the manifest's text (for ss_ckresume_counters) */
} ss_ckresume;

/* Reads and checks <dir>/manifest.json as described above (run: the run
 * id expected; epoch: the last complete epoch the coordinator recorded).
 * Returns 0 and fills *r (release with ss_ckresume_release), or SS_EIO
 * (a file cannot be read), SS_EINTEGRITY (a hash differs, another run or
 * epoch, a malformed file), SS_ENOMEM; err says which file and why. */
int ss_ckresume_load(const char *dir, uint64_t run, uint32_t epoch,
                     ss_ckresume *r, char *err, size_t errlen);

/* Component name's counters at the checkpoint into *st (in, out, passed,
 * dropped, rejected, batches_in, batches_out; the rest zero). Returns 1
 * when the manifest has them, 0 when not. */
int ss_ckresume_counters(const ss_ckresume *r, const char *name,
                         ss_stats *st);

/* A stage as the manifest's "stages" recorded it at the checkpoint. */
typedef struct ss_ckresume_stage_info {
    unsigned workers; /* its worker count then */
    int partitioned;  /* partition_by: its state is per key group */
    int stateful;     /* its workers reported state (snapshots) */
} ss_ckresume_stage_info;

/* Stage name's entry into *info. Returns 1 when the manifest has it, 0
 * when not (a manifest written before the field: the count is taken as
 * unchanged). A resume with another worker count than info->workers is
 * possible only for a partitioned stage (keyed state; the workers get
 * SS_RESTORE_WORKERS=info->workers: docs/PROTOCOL.md, "Resuming from a
 * checkpoint"), or a stateless one. */
int ss_ckresume_stage(const ss_ckresume *r, const char *name,
                      ss_ckresume_stage_info *info);

/* Frees what r holds. Safe twice. */
void ss_ckresume_release(ss_ckresume *r);

#endif
