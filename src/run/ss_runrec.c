/*
 * ss_runrec.c - the record of a cluster run (ss_runrec.h).
 */
#include "run/ss_runrec.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The state folder, made (mode 0700) if missing. */
static int state_dir(char *out, size_t n, int make)
{
    const char *d = ss_env("SS_STATE_DIR", NULL);
    int w;
    if (d)
        w = snprintf(out, n, "%s", d);
    else if (ss_env("XDG_STATE_HOME", NULL))
        w = snprintf(out, n, "%s/securestreams",
                     ss_env("XDG_STATE_HOME", NULL));
    else
        w = snprintf(out, n, "%s/.local/state/securestreams",
                     ss_env("HOME", "/tmp"));
    if (w < 0 || (size_t)w >= n)
        return SS_EINVAL;
    if (!make)
        return 0;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", out);
    for (char *c = tmp + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            mkdir(tmp, 0755);
            *c = '/';
        }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? SS_EIO : 0;
}

static int rec_path(const char *name, char *out, size_t n, int make)
{
    char dir[PATH_MAX - 80];
    if (!ss_name_safe(name, 63))
        return SS_EINVAL;
    int rc = state_dir(dir, sizeof dir, make);
    if (rc)
        return rc;
    return (size_t)snprintf(out, n, "%s/%s.run", dir, name) >= n ? SS_EINVAL
                                                                : 0;
}

/* See ss_runrec.h. */
int ss_runrec_write(const ss_runrec *r, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    if (rec_path(r->name, path, sizeof path, 1)) {
        ss_errf(err, errlen, "cannot make the state folder for run '%s'",
                r->name);
        return SS_EIO;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    mode_t old = umask(077);
    FILE *f = fopen(tmp, "w");
    umask(old);
    if (!f) {
        ss_errf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
        return SS_EIO;
    }
    fprintf(f,
            "name=%s\non=%s\npipeline=%s\noutdir=%s\nsecurity=%s\nhost=%s\n"
            "pid=%ld\nstarted=%lld\nworkers=%s\ncontrol=%s\n",
            r->name, r->on, r->pipeline, r->outdir, r->security, r->host,
            r->pid, r->started, r->workers, r->control);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        ss_errf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        return SS_EIO;
    }
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
    char path[PATH_MAX];
    memset(r, 0, sizeof *r);
    if (rec_path(name, path, sizeof path, 0)) {
        ss_errf(err, errlen, "'%s' is not a run name (letters, digits, "
                             "'-', '_', '.')",
                name);
        return SS_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        ss_errf(err, errlen, "no run '%s' here (%s: %s); a run started "
                             "with sstream run is recorded there while it runs",
                name, path, strerror(errno));
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
        ss_errf(err, errlen, "the record of run '%s' (%s) is damaged", name,
                path);
        return SS_EIO;
    }
    return 0;
}

/* See ss_runrec.h. */
void ss_runrec_remove(const char *name)
{
    char path[PATH_MAX];
    if (rec_path(name, path, sizeof path, 0) == 0)
        unlink(path);
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
