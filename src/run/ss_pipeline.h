/*
 * ss_pipeline.h - the pipeline file of `sstream run` (docs/PIPELINE.md).
 *
 * A YAML mapping names the source (a data file split into parts), 1 to 32
 * stages (a Lua script run by 1 to 64 workers each) and the sink (a Lua
 * script). ss_pipeline_load parses and validates it strictly: unknown or
 * duplicate keys, wrong types, out-of-range numbers and missing scripts
 * are errors of the form "FILE:LINE: what" (LINE from 1). Paths in the file
 * are relative to the file's folder and are stored resolved (as they would
 * be opened from the current directory).
 */
#ifndef SS_PIPELINE_H
#define SS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#define SS_PIPELINE_MAX_STAGES 32
#define SS_PIPELINE_MAX_WORKERS 64
#define SS_PIPELINE_MAX_PARTS 64
#define SS_PIPELINE_NAME_MAX 48 /* stage and pipeline names, without NUL */

/* One stage: every string owned by the pipeline. */
typedef struct ss_stage_conf {
    char *name;   /* [A-Za-z0-9_.-]+, unique, not "router" */
    char *script; /* resolved path */
    int workers;  /* 1..64 */
    int chain;    /* chain: true (1) / false (0); -1: the pipeline's */
    int line;     /* line of the stage's entry in the file */
    char *partition_by; /* NULL, or the field its input is keyed by: the
                           stage before cuts its output by key group and
                           the router routes by it (docs/PIPELINE.md) */
    int broadcast;      /* 1: every batch goes to every worker */
} ss_stage_conf;

/* A parsed pipeline. Create with ss_pipeline_load / ss_pipeline_parse,
 * free with ss_pipeline_destroy; it owns every string and array. */
typedef struct ss_pipeline {
    char *path;     /* the file as given */
    char *dir;      /* its folder ("." for a bare name) */
    char *name;     /* default: file name without extension */
    char *security; /* "plain" (default), "encrypted" or "enclave" */
    char *links;    /* "curve" (default): CurveZMQ on every link; "sealed"
                       (encrypted, enclave; no checkpoints): the data links
                       between routers and their peers without CurveZMQ,
                       the batches' own sealing alone; control channels
                       keep CURVE (docs/SECURITY.md, "Double encryption") */
    char *lua;      /* "5.4", "luajit" (the engine the scripts need; only
                       the binary built with it loads the file) or NULL */
    uint64_t batch_size; /* bytes; default SS_BATCH_DEFAULT_SIZE */
    uint64_t max_instructions; /* per event and completion; 0: default */
    int chain; /* chain: true: consecutive stages with equal worker
                  counts run in one process (ss_pipeline_chained) */
    double max_reject_ratio;   /* 0..1: more rejected rows fail the run;
                                  < 0 (default): no limit */
    unsigned checkpoint_ms; /* checkpoint barriers every this many ms
                               (0, the default: none); docs/PIPELINE.md */
    struct {
        char *file;   /* resolved; NULL if the file names none */
        int parts;    /* 1..64, default 1 */
        char *format; /* "lines" (default), "csv" or "jsonl" */
        int header;   /* 0/1, default 0 */
        int follow;   /* 0/1, default 0: read what is appended, until
                         stopped (sstream source --follow) */
        int linger_ms; /* -1 (default: the source's), or 0..3600000 */
        uint64_t rate; /* rows per second (sstream source --rate), 0
                          (default): as fast as the pipeline takes them */
        int line;     /* line of "file:" (or of "source:") */
    } source;
    ss_stage_conf *stages;
    size_t nstages; /* 1..32 */
    struct {
        char *script; /* resolved */
        char *output; /* as written (optional, may be NULL) */
        int line;
    } sink;
} ss_pipeline;

/* Command-line overrides. NULL / 0 fields leave the file's value. */
typedef struct ss_pipeline_overrides {
    const char *data;     /* --data (relative to the current folder) */
    const char *env_data; /* DATA_FILE from the environment (same) */
    int workers;          /* --workers, 1..64 */
    const char *security; /* --security */
    const char *links;    /* --links */
    uint64_t batch_size;  /* --batch-size */
    uint64_t max_instructions; /* --max-instructions */
    int checkpoint_ms;    /* --checkpoint-interval: 0 the file's, -1 none,
                             else ms */
    int64_t rate;         /* --rate: 0 the file's, -1 none, else rows/s
                             (1..SS_RATE_MAX) */
} ss_pipeline_overrides;

/* Reads, parses and validates the pipeline file at path. Returns 0 and
 * *out (caller destroys), or SS_EINVAL (invalid file), SS_EIO /
 * SS_ENOTFOUND (unreadable) or SS_ENOMEM, with a one-line reason
 * "path:line: ..." in err. *out is NULL on failure. */
int ss_pipeline_load(const char *path, ss_pipeline **out, char *err,
                     size_t errlen);

/* Same as ss_pipeline_load for text already in memory; path is used for
 * messages and to resolve relative paths. */
int ss_pipeline_parse(const char *path, const char *text, size_t len,
                      ss_pipeline **out, char *err, size_t errlen);

/* Applies o to p: --data wins over DATA_FILE, which wins over the file;
 * --workers sets every stage. Returns 0, SS_EINVAL (bad value, reason in
 * err without a file position) or SS_ENOMEM. */
int ss_pipeline_apply(ss_pipeline *p, const ss_pipeline_overrides *o,
                      char *err, size_t errlen);

/* Checks what must hold before starting anything: every stage script and
 * the sink script compile (ss_lua_check_file), and the data file is set,
 * exists, is a regular file and is readable. Returns 0, or SS_ELUA /
 * SS_ENOTFOUND / SS_EIO / SS_EINVAL with a reason such as
 * "stage 'map': map.lua:3: syntax error near 'end'" in err. */
int ss_pipeline_check(const ss_pipeline *p, char *err, size_t errlen);

/* 1 if stage s (s >= 1) runs in the same worker processes as stage
 * s - 1 (operator chaining, docs/PIPELINE.md): both allow it (their own
 * `chain:`, else the pipeline's), they have as many workers, stage s is
 * neither partitioned nor broadcast (its router must deal). In every
 * security mode: in encrypted and enclave modes the chained stages run
 * in the same enclave (ss_enclave.h). */
int ss_pipeline_chained(const ss_pipeline *p, size_t s);

/* Total number of workers over all stages. */
int ss_pipeline_total_workers(const ss_pipeline *p);

/* 1 if the data links of p go without CurveZMQ (links: sealed). */
int ss_pipeline_links_sealed(const ss_pipeline *p);

/* 1 if s is a valid --security mode (plain, encrypted, enclave). */
int ss_pipeline_security_valid(const char *s);

/* Frees p and everything it owns; sets *p to NULL. Safe on NULL. */
void ss_pipeline_destroy(ss_pipeline **p);

#endif
