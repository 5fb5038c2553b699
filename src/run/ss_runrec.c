/*
 * ss_runrec.c - the record of a cluster run (ss_runrec.h).
 */
#include "run/ss_runrec.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The state folder's path: SS_STATE_DIR, else $XDG_STATE_HOME/
 * securestreams, else HOME's (or, HOME unset, the passwd entry's home
 * of this uid) .local/state/securestreams. Never a shared folder such
 * as /tmp: with no home at all it refuses, saying what to set. */
static int state_path(char *out, size_t n, char *err, size_t errlen)
{
    const char *d = ss_env("SS_STATE_DIR", NULL);
    const char *home = ss_env("HOME", NULL);
    int w;
    if (d && d[0])
        w = snprintf(out, n, "%s", d);
    else if (ss_env("XDG_STATE_HOME", NULL) && ss_env("XDG_STATE_HOME", "")[0])
        w = snprintf(out, n, "%s/securestreams",
                     ss_env("XDG_STATE_HOME", NULL));
    else {
        if (!home || home[0] != '/') {
            struct passwd pw, *pp = NULL;
            char buf[4096];
            if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &pp) == 0 && pp &&
                pp->pw_dir && pp->pw_dir[0] == '/' &&
                strcmp(pp->pw_dir, "/") != 0)
                home = pp->pw_dir;
            else
                home = NULL;
        }
        if (!home) {
            ss_errf(err, errlen, "no state folder for run records: HOME is "
                    "not set and uid %ld has no home in the passwd "
                    "database; set SS_STATE_DIR (or HOME) to a folder of "
                    "your own", (long)geteuid());
            return SS_EINVAL;
        }
        w = snprintf(out, n, "%s/.local/state/securestreams", home);
    }
    if (w < 0 || (size_t)w >= n) {
        ss_errf(err, errlen, "the state folder's path is too long");
        return SS_EINVAL;
    }
    return 0;
}

/* Opens the state folder (made mode 0700 with its missing parents when
 * make). Returns its fd (O_DIRECTORY, close-on-exec): a folder, not a
 * link, owned by this uid and writable by nobody else, so that nobody
 * else can plant, swap or link a record in it. Else -1 with a reason
 * in err naming the folder; *missing = 1 when it does not exist (and
 * !make). */
static int state_open(int make, char *dir, size_t n, int *missing, char *err,
                      size_t errlen)
{
    *missing = 0;
    if (state_path(dir, n, err, errlen))
        return -1;
    if (make) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", dir);
        for (char *c = tmp + 1; *c; c++)
            if (*c == '/') {
                *c = '\0';
                mkdir(tmp, 0700);
                *c = '/';
            }
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            ss_errf(err, errlen, "cannot make the state folder '%s': %s", dir,
                    strerror(errno));
            return -1;
        }
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !make)
            *missing = 1;
        ss_errf(err, errlen, "cannot open the state folder '%s': %s%s", dir,
                strerror(errno),
                errno == ELOOP || errno == ENOTDIR
                    ? " (a link or not a folder: refused, set SS_STATE_DIR "
                      "to a folder of your own)"
                    : "");
        return -1;
    }
    struct stat st;
    const char *bad = NULL;
    if (fstat(fd, &st) != 0)
        bad = "it cannot be examined";
    else if (st.st_uid != geteuid())
        bad = "it is owned by another user";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        bad = "it is writable by group or others";
    if (bad) {
        ss_errf(err, errlen, "refusing the state folder '%s': %s (uid %ld, "
                "mode %03o; it must be yours, mode 0700): set SS_STATE_DIR "
                "to a folder of your own", dir, bad, (long)st.st_uid,
                (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    return fd;
}

/* Checks name and writes "NAME.run" into out. */
static int rec_file(const char *name, char *out, size_t n)
{
    if (!ss_name_safe(name, 63))
        return SS_EINVAL;
    return (size_t)snprintf(out, n, "%s.run", name) >= n ? SS_EINVAL : 0;
}

/* See ss_runrec.h. */
int ss_runrec_write(const ss_runrec *r, char *err, size_t errlen)
{
    char dir[PATH_MAX - 96], file[96], tmp[128];
    int missing;
    if (rec_file(r->name, file, sizeof file)) {
        ss_errf(err, errlen, "'%s' is not a run name", r->name);
        return SS_EIO;
    }
    int dfd = state_open(1, dir, sizeof dir, &missing, err, errlen);
    if (dfd < 0)
        return SS_EIO;
    /* a fresh temporary name, created here and now (O_EXCL: never an
     * existing file, O_NOFOLLOW: never through a link), then renamed */
    int fd = -1;
    for (int i = 0; fd < 0 && i < 16; i++) {
        snprintf(tmp, sizeof tmp, "%s.%ld.%d.tmp", file, (long)getpid(), i);
        fd = openat(dfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        ss_errf(err, errlen, "cannot write '%s/%s': %s", dir, tmp,
                strerror(errno));
        close(dfd);
        return SS_EIO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlinkat(dfd, tmp, 0);
        close(dfd);
        ss_errf(err, errlen, "cannot write '%s/%s'", dir, tmp);
        return SS_EIO;
    }
    fprintf(f,
            "name=%s\non=%s\npipeline=%s\noutdir=%s\nsecurity=%s\nhost=%s\n"
            "pid=%ld\nstarted=%lld\nworkers=%s\ncontrol=%s\n",
            r->name, r->on, r->pipeline, r->outdir, r->security, r->host,
            r->pid, r->started, r->workers, r->control);
    if (fclose(f) != 0 || renameat(dfd, tmp, dfd, file) != 0) {
        ss_errf(err, errlen, "cannot write '%s/%s': %s", dir, file,
                strerror(errno));
        unlinkat(dfd, tmp, 0);
        close(dfd);
        return SS_EIO;
    }
    close(dfd);
    return 0;
}

/* Copies v into a field of n bytes; SS_EINVAL when it does not fit. */
static int field(char *dst, size_t n, const char *v)
{
    return (size_t)snprintf(dst, n, "%s", v) >= n ? SS_EINVAL : 0;
}

/* See ss_runrec.h. */
int ss_runrec_read(const char *name, ss_runrec *r, char *err, size_t errlen)
{
    char dir[PATH_MAX - 96], file[96];
    int missing;
    memset(r, 0, sizeof *r);
    if (rec_file(name, file, sizeof file)) {
        ss_errf(err, errlen, "'%s' is not a run name (letters, digits, "
                             "'-', '_', '.')",
                name);
        return SS_EINVAL;
    }
    int dfd = state_open(0, dir, sizeof dir, &missing, err, errlen);
    if (dfd < 0 && !missing)
        return SS_EIO;
    int fd = dfd < 0 ? -1
                     : openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int e = dfd < 0 ? ENOENT : errno;
    if (dfd >= 0)
        close(dfd);
    if (fd < 0) {
        ss_errf(err, errlen, "no run '%s' here (%s/%s: %s); a run started "
                             "with sstream run is recorded there while it runs",
                name, dir, file, e == ELOOP ? "a link, refused" : strerror(e));
        return SS_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        ss_errf(err, errlen, "refusing the record of run '%s' (%s/%s): it "
                "is not a file of yours writable only by you", name, dir,
                file);
        close(fd);
        return SS_EIO;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        ss_errf(err, errlen, "cannot read %s/%s", dir, file);
        return SS_EIO;
    }
    char line[PATH_MAX + 32];
    int rc = 0, lines = 0;
    while (!rc && lines++ < 64 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "name"))
            rc = field(r->name, sizeof r->name, v);
        else if (!strcmp(k, "on"))
            rc = field(r->on, sizeof r->on, v);
        else if (!strcmp(k, "pipeline"))
            rc = field(r->pipeline, sizeof r->pipeline, v);
        else if (!strcmp(k, "outdir"))
            rc = field(r->outdir, sizeof r->outdir, v);
        else if (!strcmp(k, "security"))
            rc = field(r->security, sizeof r->security, v);
        else if (!strcmp(k, "host"))
            rc = field(r->host, sizeof r->host, v);
        else if (!strcmp(k, "workers"))
            rc = field(r->workers, sizeof r->workers, v);
        else if (!strcmp(k, "control"))
            rc = field(r->control, sizeof r->control, v);
        else if (!strcmp(k, "pid"))
            r->pid = strtol(v, NULL, 10);
        else if (!strcmp(k, "started"))
            r->started = strtoll(v, NULL, 10);
    }
    fclose(f);
    if (rc || strcmp(r->name, name) != 0 || !r->outdir[0]) {
        ss_errf(err, errlen, "the record of run '%s' (%s/%s) is damaged",
                name, dir, file);
        return SS_EIO;
    }
    return 0;
}

/* See ss_runrec.h. */
void ss_runrec_remove(const char *name)
{
    char dir[PATH_MAX - 96], file[96], err[64];
    int missing;
    if (rec_file(name, file, sizeof file))
        return;
    int dfd = state_open(0, dir, sizeof dir, &missing, err, sizeof err);
    if (dfd < 0)
        return;
    unlinkat(dfd, file, 0);
    close(dfd);
}

/* See ss_runrec.h. */
int ss_runrec_alive(const ss_runrec *r)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if (strcmp(host, r->host) != 0)
        return -1;
    if (r->pid <= 0)
        return 0;
    return kill((pid_t)r->pid, 0) == 0 || errno == EPERM;
}

/* See ss_runrec.h. */
int ss_runrec_workers(const ss_runrec *r, const char *stage)
{
    size_t l = strlen(stage);
    for (const char *s = r->workers; *s;) {
        if (strncmp(s, stage, l) == 0 && s[l] == '=')
            return atoi(s + l + 1);
        s = strchr(s, ',');
        if (!s)
            break;
        s++;
    }
    return -1;
}

/* See ss_runrec.h. */
int ss_runrec_set_workers(ss_runrec *r, const char *stage, int n)
{
    char out[sizeof r->workers] = "";
    size_t l = strlen(stage), len = 0;
    int done = 0;
    for (const char *s = r->workers; *s;) {
        const char *e = strchr(s, ',');
        size_t sl = e ? (size_t)(e - s) : strlen(s);
        int w;
        if (strncmp(s, stage, l) == 0 && s[l] == '=') {
            w = snprintf(out + len, sizeof out - len, "%s%s=%d",
                         len ? "," : "", stage, n);
            done = 1;
        } else {
            w = snprintf(out + len, sizeof out - len, "%s%.*s",
                         len ? "," : "", (int)sl, s);
        }
        if (w < 0 || (size_t)w >= sizeof out - len)
            return SS_EINVAL;
        len += (size_t)w;
        if (!e)
            break;
        s = e + 1;
    }
    if (!done) {
        int w = snprintf(out + len, sizeof out - len, "%s%s=%d",
                         len ? "," : "", stage, n);
        if (w < 0 || (size_t)w >= sizeof out - len)
            return SS_EINVAL;
    }
    memcpy(r->workers, out, sizeof out);
    return 0;
}
