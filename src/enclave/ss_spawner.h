/*
 * ss_spawner.h - starts sandbox enclaves under a uid of their own.
 *
 * With separate uids (`sstream run` as root, docs/SECURITY.md) a worker
 * host runs as sstream-worker and cannot read platform.key, which belongs
 * to sstream-enclave. The worker cannot become that user either, so it
 * asks a spawner: a small process that the launcher started as
 * sstream-enclave, one per worker, joined to it by a socketpair
 * (`sstream enclave-spawner`, ss_spawner_serve).
 *
 *   worker (sstream-worker)             spawner (sstream-enclave)
 *     SPAWN argv + memfd (SCM_RIGHTS) ->  checks argv against its own
 *                                         configuration, fork + exec the
 *                                         enclave program on fd 3
 *                                    <- PID pid
 *     KILL pid                        ->  SIGKILL
 *                                    <- EXIT pid wait-status (any death)
 *     (socket closed)                 ->  kills its enclaves, exits
 *
 * The spawner trusts nothing from the worker but the memfd: the program,
 * the key folder, the worker and stage names and the script are its own
 * (from its command line, written by the launcher); a request naming
 * others, or any option it does not know (--shm-path would make the
 * enclave open a file as sstream-enclave), is refused: a new enclave
 * option must be added to its list (ss_spawner.c, free_opts) if its value
 * names no file. So the worker can
 * start enclaves of its own stage only, which read platform.key
 * themselves and sign their own measurement: a changed script still gets
 * no key. The worker can still starve or kill its enclaves (it could stop
 * working anyway), and root can do anything (no hardware here).
 *
 * Messages are SOCK_SEQPACKET records: one byte of type, then the body.
 */
#ifndef SS_SPAWNER_H
#define SS_SPAWNER_H

#include <stddef.h>
#include <sys/types.h>

/* What a spawner starts (strings borrowed). script may be NULL (echo). */
typedef struct ss_spawner_conf {
    const char *program; /* the enclave program */
    const char *keys;    /* the enclave's key folder (platform.key) */
    const char *name;    /* worker name */
    const char *stage;
    const char *script;
    int script_fd;       /* > 0: the script, open: the enclave reads it as
                            /dev/fd/4 (its folder may be closed to this
                            uid); the worker still names `script` */
    const char *const *chain; /* the stages chained after this one in
                                 its enclave, "STAGE=SCRIPT" each: the
                                 worker must ask for exactly these, in
                                 order (--chain); with script_fd, chained
                                 stage k's script is open on fd
                                 script_fd + 1 + k and the enclave reads
                                 it as /dev/fd/(5 + k) (chain_at[k]) */
    const char *const *chain_at; /* "STAGE=/dev/fd/N" for each */
    int nchain;
} ss_spawner_conf;

/* Serves one worker on sock until it closes the socket (then kills the
 * enclaves it started and returns 0), or SS_EIO. */
int ss_spawner_serve(int sock, const ss_spawner_conf *c);

/* Worker side. Asks the spawner on sock to start argv (argv[0] is
 * ignored: the spawner runs its own program) with memfd as fd 3; waits
 * at most 10 s for its pid. Returns 0 and *pid, or SS_EDENIED (refused:
 * reason in err) / SS_EIO / SS_ETIMEOUT. */
int ss_spawner_spawn(int sock, int memfd, char *const argv[], pid_t *pid,
                     char *err, size_t errlen);

/* Without blocking: 1 and *status (a wait status) if the spawner said
 * that pid ended, 0 if not yet, SS_EIO if the spawner is gone (then
 * *status is a SIGKILL death). */
int ss_spawner_poll(int sock, pid_t pid, int *status);

/* Asks for pid's SIGKILL and waits (at most 5 s) for its end. */
void ss_spawner_kill(int sock, pid_t pid);

/* Separate uids where no `sstream run` starts the processes (a
 * container: `sstream worker --user U --enclave-user E`, started as root
 * with no capability but CAP_SETUID and CAP_SETGID). Every string
 * borrowed. */
typedef struct ss_spawner_launch {
    const char *self;    /* this program (runs `enclave-spawner`) */
    const char *keys;    /* the enclave's key folder (platform.key) */
    const char *name;    /* worker name */
    const char *stage;
    const char *script;  /* the stage script (bundled into a memfd) */
    uid_t w_uid, e_uid;  /* worker and enclave uids: non-zero, distinct */
    gid_t w_gid, e_gid;
} ss_spawner_launch;

/*
 * Starts `self enclave-spawner` as (e_uid, e_gid), no supplementary
 * groups, joined to this process by a socketpair and given the script's
 * bundle; then drops this process to (w_uid, w_gid) for good
 * (setgroups, setresgid, setresuid: with every uid non-zero the kernel
 * clears all capabilities, and it is done before this process opens any
 * connection). Returns the fd of this end of the socket (for
 * SS_ENCLAVE_SPAWNER), or SS_EDENIED (not root, or a uid switch failed:
 * the process must then not go on) / SS_EIO with the reason in err.
 */
int ss_spawner_launch_as(const ss_spawner_launch *l, char *err,
                         size_t errlen);

#endif
