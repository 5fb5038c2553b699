/*
 * ss_runrec.h - the record of a run started on a container engine
 * (`sstream run --on swarm`), which `sstream status`, `logs`, `stop` and
 * `scale` read to follow it by its name; and of a run on this machine
 * (`sstream run` without --on: on "local"), which `sstream scale` reads
 * to reach its supervisor's control socket.
 *
 * One small text file per run, NAME.run (mode 0600, lines KEY=VALUE), in
 * the state folder: SS_STATE_DIR, else $XDG_STATE_HOME/securestreams,
 * else ~/.local/state/securestreams (HOME unset: the passwd entry's home
 * of this uid; none: refused, never /tmp). The folder is made mode 0700;
 * one that is a link, belongs to another uid or that group or others can
 * write is refused (err names it and what is wrong), and so is a record
 * that is a link, not this uid's, or writable by others: another local
 * user can neither plant a record nor make a write follow a link. It
 * holds no key: only where the run
 * keeps its files (its output folder: logs, results, the live status
 * line) and which process on which host drives it.
 */
#ifndef SS_RUNREC_H
#define SS_RUNREC_H

#include <limits.h>
#include <stddef.h>

typedef struct ss_runrec {
    char name[64];          /* the run's name = the stack's name */
    char on[16];            /* "swarm" */
    char pipeline[PATH_MAX]; /* the pipeline file, absolute */
    char outdir[PATH_MAX];  /* its output folder, absolute */
    char security[16];
    char host[256];         /* the host whose process drives the run */
    long pid;               /* that process */
    long long started;      /* time(NULL) at start */
    char workers[256];      /* STAGE=N,... as deployed (or rescaled) */
    char control[PATH_MAX]; /* on "local": the run's control socket
                               (ss_ctlsock.h), which sstream scale uses */
} ss_runrec;

/* Writes r as NAME.run in the state folder (made if missing), replacing
 * an older record of that name at once (a fresh temporary file made with
 * O_EXCL|O_NOFOLLOW in the checked folder, then renamed). Returns 0, or
 * SS_EIO with a reason in err (a refused folder: named, and why). */
int ss_runrec_write(const ss_runrec *r, char *err, size_t errlen);

/* Reads the record of run name. Returns 0, SS_EINVAL for a name that is
 * not a run name, or SS_EIO when there is no such record (err says where
 * it looked) or the folder or the record is refused (see above). */
int ss_runrec_read(const char *name, ss_runrec *r, char *err,
                   size_t errlen);

/* Removes the record of run name (none: fine). */
void ss_runrec_remove(const char *name);

/* 1 if the process that drives r runs on this host and is alive, 0 if it
 * ended, -1 if it runs on another host (unknown from here). */
int ss_runrec_alive(const ss_runrec *r);

/* The workers of stage in r->workers, or -1 if it is not there. */
int ss_runrec_workers(const ss_runrec *r, const char *stage);

/* Sets the workers of stage in r->workers (added if missing). Returns 0
 * or SS_EINVAL when it does not fit. */
int ss_runrec_set_workers(ss_runrec *r, const char *stage, int n);

#endif
