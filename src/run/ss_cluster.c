/*
 * ss_cluster.c - `sstream cluster check`: asks the Docker client what a
 * Swarm has and says what a run still needs (ss_cluster.h).
 *
 * Every question is one run of the docker client with a Go template
 * (--format), so that what is parsed here is a few tab-separated fields
 * and not the engine's JSON. The client runs through ss_engine_query:
 * stdout and stderr apart, killed after SS_CLUSTER_CALL_MS, at most
 * CALL_MAX bytes kept.
 */
#include "run/ss_cluster.h"
#include "run/ss_engine.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CALL_MAX (1u << 20)
#define MAX_NODES 256
#define FIX_PAD "           "

/* ---- running the docker client ---------------------------------------- */

/*
 * Runs `docker ARGS...` (args NULL-terminated, args[0] ignored). Returns
 * 0 and its stdout in *out (NUL-terminated, caller frees) when it exits
 * with status 0; else SS_EIO (or SS_ETIMEOUT, SS_ENOMEM) with why: the
 * first line of its stderr, or what happened to it (ss_engine_query).
 */
static int docker(const ss_cluster_opts *o, const char **args, char **out,
                  char *why, size_t whylen)
{
    return ss_engine_query(o->docker, args + 1, SS_CLUSTER_CALL_MS, CALL_MAX,
                           out, why, whylen);
}

/* Splits line (modified) at tabs into at most n fields; a Go template's
 * "<no value>" counts as empty. Returns the number of fields. */
static int fields(char *line, char **f, int n)
{
    int k = 0;
    while (k < n) {
        f[k++] = line;
        char *t = strchr(line, '\t');
        if (!t)
            break;
        *t = '\0';
        line = t + 1;
    }
    for (int i = 0; i < k; i++)
        if (strcmp(f[i], "<no value>") == 0)
            f[i] += strlen(f[i]);
    return k;
}

/* ---- the report ------------------------------------------------------- */

typedef struct node {
    char id[80];
    char host[128];
    char state[24];  /* ready, down, unknown, disconnected */
    char avail[24];  /* active, pause, drain */
    char role[16];   /* manager, worker */
    int sgx, data;   /* labels sgx=true, securestreams.data=true */
} node;

typedef struct report {
    const ss_cluster_opts *o;
    FILE *f;
    int missing;
} report;

static void line(report *r, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void line(report *r, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(r->f, "  %-8s ", tag);
    vfprintf(r->f, fmt, ap);
    fputc('\n', r->f);
    va_end(ap);
    if (strcmp(tag, "MISSING") == 0)
        r->missing++;
}

static void fix(report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fix(report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(FIX_PAD "fix: ", r->f);
    vfprintf(r->f, fmt, ap);
    fputc('\n', r->f);
    va_end(ap);
}

static int usable(const node *n)
{
    return strcmp(n->state, "ready") == 0 && strcmp(n->avail, "active") == 0;
}

/* The node a fix should name: the only usable node's host name, or
 * "NODE" (then the caller lists the candidates). */
static const char *fix_target(const node *nodes, int nn)
{
    const char *only = NULL;
    for (int i = 0; i < nn; i++)
        if (usable(&nodes[i])) {
            if (only)
                return "NODE";
            only = nodes[i].host;
        }
    return only ? only : "NODE";
}

static void candidates(report *r, const node *nodes, int nn,
                       const char *which)
{
    fprintf(r->f, FIX_PAD "     (NODE: %s; ready nodes:", which);
    for (int i = 0; i < nn; i++)
        if (usable(&nodes[i]))
            fprintf(r->f, " %s", nodes[i].host);
    fputs(")\n", r->f);
}

/* Checks that some usable node carries label (sgx or data); what names
 * who needs it. Returns the number of usable labelled nodes. */
static int label_check(report *r, const node *nodes, int nn, int sgx,
                       const char *label, const char *what)
{
    int have = 0, unusable = 0;
    char list[512] = "";
    size_t ll = 0;
    for (int i = 0; i < nn; i++) {
        int is = sgx ? nodes[i].sgx : nodes[i].data;
        if (!is)
            continue;
        if (!usable(&nodes[i])) {
            unusable++;
            continue;
        }
        have++;
        int w = snprintf(list + ll, sizeof list - ll, "%s%s", ll ? ", " : "",
                         nodes[i].host);
        if (w > 0 && (size_t)w < sizeof list - ll)
            ll += (size_t)w;
    }
    if (have) {
        line(r, "ok", "%d ready node%s labelled %s, for %s: %s", have,
             have == 1 ? "" : "s", label, what, list);
        return have;
    }
    line(r, "MISSING", "no ready node is labelled %s%s: %s cannot be placed",
         label, unusable ? " (labelled nodes are down or drained)" : "",
         what);
    const char *t = fix_target(nodes, nn);
    fix(r, "docker node update --label-add %s %s", label, t);
    if (strcmp(t, "NODE") == 0)
        candidates(r, nodes, nn,
                   sgx ? "each node with SGX (or that may run the sandbox)"
                       : "the node that holds the input files");
    return 0;
}

/* Parses an RFC 3339 time ("2026-12-06T05:30:00.123456789Z" or with an
 * offset "+01:00") into nanoseconds since the epoch. 0 or SS_EINVAL. */
static int parse_time(const char *s, int64_t *ns)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &used) != 6)
        return SS_EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + used;
    int64_t frac = 0, scale = 1000000000;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return SS_EINVAL;
        off = (int64_t)(hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return SS_EINVAL;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return SS_EINVAL;
    *ns = ((int64_t)t - off) * 1000000000 + frac;
    return 0;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The clocks: the engine's SystemTime, read by the `docker info` call
 * that took [t0, t1] of this machine's time. */
static void clock_check(report *r, const char *systime, int64_t t0,
                        int64_t t1, int nn)
{
    int64_t eng;
    if (parse_time(systime, &eng)) {
        line(r, "unknown", "clocks: the engine's time '%s' does not read "
                           "as RFC 3339",
             systime);
        return;
    }
    int64_t mid = t0 + (t1 - t0) / 2, unc = (t1 - t0) / 2;
    double skew = (double)(eng - mid) / 1e6, err = (double)unc / 1e6;
    const char *others =
        nn > 1 ? "; other nodes' clocks cannot be read through the Docker "
                 "API: on each node run `timedatectl` (System clock "
                 "synchronized: yes) or `chronyc tracking`"
               : "";
    double off = skew < 0 ? -skew : skew;
    if (off - err > (double)r->o->max_skew_ms) {
        line(r, "MISSING", "clocks: the engine's clock is %.0f ms %s this "
                           "machine's (measured across `docker info`, "
                           "+-%.0f ms; at most %ld ms allowed)%s",
             off, skew < 0 ? "behind" : "ahead of", err, r->o->max_skew_ms,
             others);
        fix(r, "apt-get install chrony   (on every node: NTP keeps the "
               "clocks together; no docker command sets a clock)");
    } else if (err > (double)r->o->max_skew_ms) {
        line(r, "unknown", "clocks: `docker info` took %.0f ms, too long to "
                           "compare clocks within %ld ms%s",
             2 * err, r->o->max_skew_ms, others);
    } else {
        line(r, "ok", "clocks: the engine and this machine agree within "
                      "%.0f ms (%+.1f ms, measured across `docker info`)%s",
             off + err, skew, others);
    }
}

static int dev_present(const ss_cluster_opts *o, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", o->dev_dir ? o->dev_dir : "/dev",
             name);
    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

/* The SGX devices on the sgx nodes (gramine backend). */
static void device_check(report *r, const node *nodes, int nn,
                         const char *self)
{
    for (int i = 0; i < nn; i++) {
        const node *n = &nodes[i];
        if (!n->sgx || !usable(n))
            continue;
        if (r->o->local && strcmp(n->id, self) == 0) {
            int e = dev_present(r->o, "sgx_enclave"),
                p = dev_present(r->o, "sgx_provision");
            if (e && p) {
                line(r, "ok", "SGX devices: %s (this machine) has "
                              "/dev/sgx_enclave and /dev/sgx_provision",
                     n->host);
            } else {
                line(r, "MISSING", "SGX devices: %s (this machine) is "
                                   "labelled sgx=true but has no %s",
                     n->host,
                     !e && !p ? "/dev/sgx_enclave nor /dev/sgx_provision"
                     : !e     ? "/dev/sgx_enclave"
                              : "/dev/sgx_provision");
                fix(r, "docker node update --label-rm sgx %s   (or give it "
                       "the SGX driver: Linux 5.11+ with CONFIG_X86_SGX, "
                       "SGX on in the firmware)",
                    n->host);
            }
        } else {
            line(r, "unknown", "SGX devices on %s: not visible from here "
                               "(the Docker API does not list a node's "
                               "devices); on %s run `ls -l /dev/sgx_enclave "
                               "/dev/sgx_provision`",
                 n->host, n->host);
        }
    }
}

static void image_check(report *r, const node *nodes, int nn,
                        const char *self)
{
    const ss_cluster_opts *o = r->o;
    const char *args[] = {NULL, "image", "inspect", "--format", "{{.Id}}",
                          o->image, NULL};
    char *out = NULL, why[512] = "";
    int here = docker(o, args, &out, why, sizeof why) == 0;
    free(out);
    const char *me = "this engine";
    for (int i = 0; i < nn; i++)
        if (strcmp(nodes[i].id, self) == 0)
            me = nodes[i].host;
    int def = strncmp(o->image, "securestreams:", 14) == 0;
    if (here) {
        line(r, "ok", "image %s is on %s%s", o->image, me,
             nn == 1 ? " (the only node)" : "");
    } else {
        line(r, "MISSING", "image %s is not on %s (%s)", o->image, me, why);
        if (def)
            fix(r, "make image   (in the source tree; it runs docker build "
                   "-f deploy/docker/Dockerfile)");
        else
            fix(r, "docker pull %s", o->image);
        fprintf(r->f, FIX_PAD "  or: docker save %s | ssh %s docker load   "
                      "(from where it was built)\n",
                o->image, me);
    }
    int others = 0;
    for (int i = 0; i < nn; i++)
        if (strcmp(nodes[i].id, self) != 0 && usable(&nodes[i])) {
            if (!others++)
                fprintf(r->f, "  %-8s image %s on the other nodes: not "
                              "visible from here (a manager's API lists "
                              "only its own images):",
                        "unknown", o->image);
            fprintf(r->f, " %s", nodes[i].host);
        }
    if (others)
        fprintf(r->f, "\n" FIX_PAD "check: on each, docker image inspect "
                      "%s; copy: docker save %s | ssh NODE docker load\n",
                o->image, o->image);
}

/* Reads the nodes (a manager only). Returns their number, or -1. */
static int read_nodes(report *r, node *nodes)
{
    const ss_cluster_opts *o = r->o;
    const char *ls[] = {NULL, "node", "ls", "-q", NULL};
    char *ids = NULL, why[512] = "";
    if (docker(o, ls, &ids, why, sizeof why)) {
        line(r, "MISSING", "cannot list the nodes: %s", why);
        return -1;
    }
    const char *args[MAX_NODES + 8];
    int na = 0;
    args[na++] = NULL;
    args[na++] = "node";
    args[na++] = "inspect";
    args[na++] = "--format";
    args[na++] = "{{.ID}}\t{{.Description.Hostname}}\t{{.Status.State}}\t"
                 "{{.Spec.Availability}}\t{{.Spec.Role}}\t"
                 "{{index .Spec.Labels \"sgx\"}}\t"
                 "{{index .Spec.Labels \"securestreams.data\"}}";
    for (char *s = strtok(ids, " \n"); s && na < MAX_NODES + 5;
         s = strtok(NULL, " \n"))
        args[na++] = s;
    args[na] = NULL;
    int nn = 0;
    char *out = NULL;
    if (na == 5) {
        free(ids);
        line(r, "MISSING", "the swarm lists no node");
        return -1;
    }
    if (docker(o, args, &out, why, sizeof why)) {
        free(ids);
        line(r, "MISSING", "cannot inspect the nodes: %s", why);
        return -1;
    }
    free(ids);
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l && nn < MAX_NODES;
         l = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        if (fields(l, f, 7) != 7)
            continue;
        node *n = &nodes[nn++];
        snprintf(n->id, sizeof n->id, "%s", f[0]);
        snprintf(n->host, sizeof n->host, "%s", *f[1] ? f[1] : f[0]);
        snprintf(n->state, sizeof n->state, "%s", f[2]);
        snprintf(n->avail, sizeof n->avail, "%s", f[3]);
        snprintf(n->role, sizeof n->role, "%s", f[4]);
        n->sgx = strcmp(f[5], "true") == 0;
        n->data = strcmp(f[6], "true") == 0;
    }
    free(out);
    return nn;
}

/* See ss_cluster.h. */
int ss_cluster_check(const ss_cluster_opts *o, FILE *out, char *err,
                     size_t errlen)
{
    if (!o->image || !*o->image || !o->docker || !*o->docker ||
        o->max_skew_ms <= 0) {
        ss_errf(err, errlen, "cluster check needs an image, a docker "
                             "client and a clock tolerance");
        return SS_EINVAL;
    }
    const char *backend = o->enclave ? o->enclave : "sandbox";
    if (strcmp(backend, "sandbox") != 0 && strcmp(backend, "gramine") != 0) {
        ss_errf(err, errlen, "unknown enclave backend '%s' (sandbox, "
                             "gramine)",
                backend);
        return SS_EINVAL;
    }
    report r = {.o = o, .f = out};
    const ss_pipeline *p = o->p;
    int enclave = p && strcmp(p->security, "enclave") == 0;
    if (p)
        fprintf(out, "pipeline %s: security %s%s%s, image %s\n", p->name,
                p->security, enclave ? ", enclave backend " : "",
                enclave ? backend : "", o->image);
    else
        fprintf(out, "no pipeline given: general checks, image %s\n",
                o->image);

    /* the engine, the swarm, this node's role, the clock: one call */
    const char *info[] = {NULL, "info", "--format",
                          "{{.ServerVersion}}\t{{.Swarm.LocalNodeState}}\t"
                          "{{.Swarm.ControlAvailable}}\t{{.Swarm.NodeID}}\t"
                          "{{.SystemTime}}\t{{.Name}}",
                          NULL};
    char *io = NULL, why[512] = "";
    int64_t t0 = wall_ns();
    int rc = docker(o, info, &io, why, sizeof why);
    int64_t t1 = wall_ns();
    char *f[6];
    if (rc || fields(io, f, 6) != 6) {
        line(&r, "MISSING", "no Docker engine answers ('%s info': %s)",
             o->docker, rc ? why : "unexpected output");
        fix(&r, "systemctl start docker   (or, without systemd: dockerd &; "
                "scripts/deploy-deps.sh installs docker.io)");
        fputs("  (nothing else can be checked without an engine)\n", out);
        free(io);
        return r.missing;
    }
    char *nl = strchr(f[5], '\n');
    if (nl)
        *nl = '\0';
    line(&r, "ok", "the Docker engine answers (version %s, host %s%s)", f[0],
         f[5], o->local ? ", this machine" : "");
    const char *state = f[1], *self = f[3];
    int manager = strcmp(f[2], "true") == 0;
    if (strcmp(state, "active") != 0) {
        line(&r, "MISSING", "the engine is not in an active swarm (state "
                            "'%s')",
             state);
        if (strcmp(state, "locked") == 0)
            fix(&r, "docker swarm unlock");
        else
            fix(&r, "docker swarm init --advertise-addr ADDR   (ADDR: this "
                    "host's address the other nodes reach; or join one: "
                    "docker swarm join --token TOKEN MANAGER:2377, token "
                    "from `docker swarm join-token worker` on a manager)");
        clock_check(&r, f[4], t0, t1, 1);
        fputs("  (the nodes, labels and image are checked once a swarm is "
              "active)\n",
              out);
        free(io);
        return r.missing;
    }
    line(&r, "ok", "the engine is in an active swarm");
    if (!manager) {
        line(&r, "MISSING", "this node is not a manager: only a manager "
                            "lists the nodes and deploys a stack");
        fix(&r, "docker node promote %s   (on a manager; or run sstream "
                "cluster check there, DOCKER_HOST=ssh://MANAGER)",
            f[5]);
        clock_check(&r, f[4], t0, t1, 1);
        free(io);
        return r.missing;
    }
    line(&r, "ok", "this node is a manager");

    node *nodes = calloc(MAX_NODES, sizeof *nodes);
    if (!nodes) {
        free(io);
        ss_errf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    int nn = read_nodes(&r, nodes);
    if (nn > 0) {
        int ready = 0;
        fprintf(out, "  %-8s %d node%s:", "", nn, nn == 1 ? "" : "s");
        for (int i = 0; i < nn; i++) {
            ready += usable(&nodes[i]);
            fprintf(out, "%s %s (%s, %s, %s%s%s)", i ? "," : "",
                    nodes[i].host, nodes[i].role, nodes[i].state,
                    nodes[i].avail, nodes[i].sgx ? ", sgx" : "",
                    nodes[i].data ? ", data" : "");
        }
        fputc('\n', out);
        if (!ready) {
            line(&r, "MISSING", "no node is ready and active: no task can "
                                "be placed");
            fix(&r, "docker node update --availability active %s",
                fix_target(nodes, nn));
        }
        label_check(&r, nodes, nn, 0, "securestreams.data=true",
                    "the source (it reads the input files there)");
        if (enclave) {
            char what[256] = "the enclave stages";
            size_t wl = strlen(what);
            for (size_t s = 0; s < p->nstages && wl < sizeof what; s++) {
                int w = snprintf(what + wl, sizeof what - wl, "%s%s",
                                 s ? ", " : " ", p->stages[s].name);
                if (w > 0)
                    wl += (size_t)w;
            }
            int have = label_check(&r, nodes, nn, 1, "sgx=true", what);
            if (!have) {
                /* nothing to look at for devices */
            } else if (strcmp(backend, "gramine") == 0) {
                device_check(&r, nodes, nn, self);
            } else {
                line(&r, "n/a", "SGX devices: not needed (sandbox backend: "
                                "the enclave is a sandboxed process)");
            }
        } else {
            int sgx = 0;
            for (int i = 0; i < nn; i++)
                sgx += nodes[i].sgx && usable(&nodes[i]);
            line(&r, "n/a", "sgx=true labels: %s; %d ready node%s "
                            "labelled",
                 p ? "not needed (no enclave stage)"
                   : "needed by enclave pipelines only (give the pipeline "
                     "to check)",
                 sgx, sgx == 1 ? "" : "s");
        }
        image_check(&r, nodes, nn, self);
    }
    clock_check(&r, f[4], t0, t1, nn > 0 ? nn : 1);
    free(nodes);
    free(io);
    return r.missing;
}
