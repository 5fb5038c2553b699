/*
 * ss_deploy.c - Compose, Swarm and Kubernetes descriptions of a pipeline
 * (ss_deploy.h).
 *
 * Layout of what is written, for a pipeline of N hops (N stages, fewer
 * when stages are chained: a hop is a stage and those chained into it):
 *
 *   router-k (k = 1..N+1)   binds port 5553+2k (any address) for producers
 *                           and port 5554+2k for workers; --partitions W
 *                           in front of a keyed stage of W workers
 *   hop s (s = 1..N)        replicas = workers; reads router-s's back,
 *                           writes router-(s+1)'s front; SS_NAME gives
 *                           each replica its own name (Swarm: task slot,
 *                           Kubernetes: pod name)
 *   source                  writes router-1's front; reads DATA_DIR on a
 *                           node labelled for the data
 *   sink, keyservice        Compose only (they hold the data key); on a
 *                           cluster they run on the owner's machine and
 *                           the last router's worker port is published
 *
 * Every string that comes from the pipeline or the command line is
 * written as a double-quoted YAML scalar (yq), so a path or a name cannot
 * change the document's structure.
 */
#include "run/ss_deploy.h"
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "run/ss_plan.h"
#include "securestreams.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PORT0 5553
#define DEFAULT_DATA_DIR "/srv/securestreams/data"
#define KEYS_IN "/run/secrets"   /* Swarm and Compose secrets */
#define K8S_KEYS "/keys"         /* Kubernetes: copied here, mode 0600 */
#define SCRIPTS_IN "/pipeline"
/* the image's users (deploy/docker/Dockerfile) */
#define WORKER_USER "sstream"
#define WORKER_UID "10001"
#define ENCLAVE_USER "sstream-enclave"
#define ENCLAVE_UID "10002"

/* ---- keys per role ---------------------------------------------------- */

static const char *const none[] = {NULL};
static const char *const k_router[] = {"curve-server.key", "curve-server.pub",
                                       "curve-client.pub", NULL};
static const char *const k_client[] = {"curve-client.key", "curve-client.pub",
                                       "curve-server.pub", NULL};
static const char *const k_client_data[] = {
    "data.key", "curve-client.key", "curve-client.pub", "curve-server.pub",
    NULL};
/* an enclave worker also reaches the key service, a CURVE server too */
static const char *const k_enclave_worker[] = {
    "platform.key", "curve-client.key", "curve-client.pub",
    "curve-server.pub", "curve-keyservice.pub", NULL};
static const char *const k_keyservice[] = {
    "data.key", "platform.pub", "curve-keyservice.key",
    "curve-keyservice.pub", "curve-client.pub", NULL};

/* See ss_deploy.h. */
const char *const *ss_deploy_role_keys(ss_deploy_target t, const char *sec,
                                       const char *role)
{
    if (strcmp(sec, "plain") == 0)
        return none;
    int cluster = t != SS_DEPLOY_COMPOSE;
    int enclave = strcmp(sec, "enclave") == 0;
    if (strcmp(role, "router") == 0)
        return k_router;
    if (strcmp(role, "worker") == 0)
        return enclave ? k_enclave_worker : cluster ? none : k_client_data;
    if (strcmp(role, "source") == 0) /* on a cluster: sealed input */
        return cluster ? k_client : k_client_data;
    if (cluster)
        return none; /* the sink and the key service stay home */
    if (strcmp(role, "sink") == 0)
        return k_client_data;
    if (strcmp(role, "keyservice") == 0 && enclave)
        return k_keyservice;
    return none;
}

/* See ss_deploy.h. */
int ss_deploy_target_parse(const char *s, ss_deploy_target *out)
{
    if (strcmp(s, "compose") == 0)
        *out = SS_DEPLOY_COMPOSE;
    else if (strcmp(s, "swarm") == 0)
        *out = SS_DEPLOY_SWARM;
    else if (strcmp(s, "k8s") == 0)
        *out = SS_DEPLOY_K8S;
    else
        return SS_EINVAL;
    return 0;
}

/* See ss_deploy.h. */
const char *ss_deploy_file_name(ss_deploy_target t)
{
    return t == SS_DEPLOY_COMPOSE ? "compose.yml"
           : t == SS_DEPLOY_SWARM ? "stack.yml"
                                  : "k8s.yml";
}

/* ---- writing ---------------------------------------------------------- */

typedef struct gen {
    const ss_pipeline *p;
    const ss_deploy_opts *o;
    FILE *f;
    const char *sec;
    int plain, enclave;
    char name[SS_PIPELINE_NAME_MAX + 1]; /* DNS-1123 form of p->name */
    /* hops (ss_pipeline_chained): heads[h] is the first stage of hop h;
     * the stages up to the next head run chained in its workers, and
     * router h+1 is in front of it (nhops + 1 routers) */
    size_t heads[SS_PIPELINE_MAX_STAGES];
    size_t nhops;
    /* each stage's bundle (ss_bundle.h): the local modules and data
     * files its script reads from its folder travel next to it */
    ss_bundle *bundles[SS_PIPELINE_MAX_STAGES];
    char *err;
    size_t errlen;
} gen;

/* Writes s as a double-quoted YAML scalar. */
static void yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A name as Kubernetes wants it (lower case, digits, '-'). */
static void dns_name(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; *s && i + 1 < n; s++)
        out[i++] = isalnum((unsigned char)*s) ? (char)tolower((unsigned char)*s)
                                              : '-';
    while (i > 0 && out[i - 1] == '-')
        i--;
    out[i] = '\0';
    if (!i)
        snprintf(out, n, "pipeline");
}

static const char *base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* The local modules and data files of stage s, each a file the worker
 * (and the key service) reads next to the script. */
static size_t n_extras(const gen *g, size_t s)
{
    return ss_bundle_nmodules(g->bundles[s]) + ss_bundle_nfiles(g->bundles[s]);
}

/* Extra i of stage s: its path relative to the script's folder
 * ("util/strings.lua" for the module util.strings, "carriers.csv") into
 * rel, and its bytes. */
static void extra(const gen *g, size_t s, size_t i, char *rel, size_t n,
                  const char **data, size_t *len)
{
    size_t nm = ss_bundle_nmodules(g->bundles[s]);
    const char *name;
    if (i < nm) {
        ss_bundle_module(g->bundles[s], i, &name, data, len);
        size_t k = 0;
        for (; name[k] && k + 5 < n; k++)
            rel[k] = name[k] == '.' ? '/' : name[k];
        snprintf(rel + k, n - k, ".lua");
    } else {
        ss_bundle_file(g->bundles[s], i - nm, &name, data, len);
        snprintf(rel, n, "%s", name);
    }
}

static int front_port(size_t k) { return PORT0 + 2 * (int)k; }
static int back_port(size_t k) { return PORT0 + 2 * (int)k + 1; }

/* Reads a whole (small) file; caller frees. */
static char *slurp(gen *g, const char *path, size_t *len)
{
    FILE *in = fopen(path, "rb");
    if (!in) {
        ss_errf(g->err, g->errlen, "cannot read '%s': %s", path,
                strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, in);
        n += r;
        if (n < cap)
            break;
        char *nb = cap > (64u << 20) ? NULL : realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            b = NULL;
            ss_errf(g->err, g->errlen, "'%s' is too large", path);
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(in);
    if (b) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

/* An absolute path for a file the engine reads on this machine. */
static int abspath(gen *g, const char *path, char out[PATH_MAX])
{
    if (!realpath(path, out)) {
        ss_errf(g->err, g->errlen, "cannot find '%s': %s", path,
                strerror(errno));
        return SS_EIO;
    }
    return 0;
}

/* The secret's name in a Compose or stack file: "ss-curve-server-key". */
static void secret_name(char *out, size_t n, const char *file)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "ss-%s", file);
    dns_name(out, n, tmp);
}

/* The command of a component as a YAML flow list, words in order. */
static void cmd_list(FILE *f, const char *const *w, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        yq(f, w[i]);
    }
    fputc(']', f);
}

/* ---- the components' command lines ------------------------------------ */

#define MAXW 120
#define MAXBUFS 48
typedef struct words {
    const char *v[MAXW];
    size_t n;
    char bufs[MAXBUFS][512]; /* a name (48) and a script's base name */
    size_t nbufs;
} words;

static void w_add(words *w, const char *s)
{
    if (w->n < MAXW)
        w->v[w->n++] = s;
}

static const char *w_fmt(words *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *w_fmt(words *w, const char *fmt, ...)
{
    if (w->nbufs == MAXBUFS)
        return "";
    char *b = w->bufs[w->nbufs++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof w->bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

static const char *keys_dir(const gen *g)
{
    return g->o->target == SS_DEPLOY_K8S ? K8S_KEYS : KEYS_IN;
}

static int keyed(const ss_stage_conf *sc)
{
    return sc->partition_by != NULL || sc->broadcast;
}

/* The stage after the last one of hop h, or NULL. */
static const ss_stage_conf *hop_next(const gen *g, size_t h)
{
    return h + 1 < g->nhops ? &g->p->stages[g->heads[h + 1]] : NULL;
}

/* One past the last stage of hop h. */
static size_t hop_end(const gen *g, size_t h)
{
    return h + 1 < g->nhops ? g->heads[h + 1] : g->p->nstages;
}

static void router_words(gen *g, words *w, size_t k)
{
    w_add(w, "router");
    w_add(w, "--from");
    w_add(w, w_fmt(w, "tcp://*:%d", front_port(k)));
    w_add(w, "--to");
    w_add(w, w_fmt(w, "tcp://*:%d", back_port(k)));
    w_add(w, "--name");
    w_add(w, w_fmt(w, "router-%zu", k));
    if (ss_plan_max_frame(g->p)) { /* batches above its default frame */
        w_add(w, "--max-frame");
        w_add(w, w_fmt(w, "%llu", ss_plan_max_frame(g->p)));
    }
    /* in front of a partitioned or broadcast stage: one slot per worker */
    if (k <= g->nhops && keyed(&g->p->stages[g->heads[k - 1]])) {
        w_add(w, "--partitions");
        w_add(w, w_fmt(w, "%d", g->p->stages[g->heads[k - 1]].workers));
    }
    if (!g->plain) {
        w_add(w, "--keys");
        w_add(w, keys_dir(g));
    }
}

/* An enclave worker of the sandbox backend runs its enclaves under a
 * uid of their own (sstream worker --user/--enclave-user): the image's
 * sstream and sstream-enclave users. The gramine backend's enclave is
 * the SGX hardware's to protect, and runs as the worker. */
static int split_uids(const gen *g)
{
    return g->enclave &&
           (!g->o->enclave || strcmp(g->o->enclave, "sandbox") == 0);
}

static void security_words(gen *g, words *w, const char *role)
{
    if (g->plain)
        return;
    w_add(w, "--security");
    w_add(w, g->sec);
    w_add(w, "--keys");
    w_add(w, keys_dir(g));
    if (strcmp(role, "worker") == 0 && g->enclave) {
        w_add(w, "--enclave");
        w_add(w, g->o->enclave ? g->o->enclave : "sandbox");
        w_add(w, "--keyservice");
        w_add(w, g->o->target == SS_DEPLOY_COMPOSE
                     ? "tcp://keyservice:5599"
                     : g->o->keyservice);
        if (split_uids(g)) {
            w_add(w, "--user");
            w_add(w, WORKER_USER);
            w_add(w, "--enclave-user");
            w_add(w, ENCLAVE_USER);
        }
    }
}

/* The command of a worker of hop h: its head stage's script, the
 * stages chained after it (--chain), the keyed options (--partition-by
 * or --broadcast for the stage after the hop; --index I for a keyed
 * head when index > 0: Compose, where each worker is a service of its
 * own; on Swarm and Kubernetes the replica's slot comes from SS_INDEX or
 * SS_POD_INDEX instead). */
static void stage_words(gen *g, words *w, size_t h, int index)
{
    const ss_stage_conf *sc = &g->p->stages[g->heads[h]];
    w_add(w, "worker");
    w_add(w, w_fmt(w, "%s/%s", SCRIPTS_IN, base(sc->script)));
    w_add(w, "--from");
    w_add(w, w_fmt(w, "tcp://router-%zu:%d", h + 1, back_port(h + 1)));
    w_add(w, "--to");
    w_add(w, w_fmt(w, "tcp://router-%zu:%d", h + 2, front_port(h + 2)));
    w_add(w, "--stage");
    w_add(w, sc->name);
    for (size_t k = g->heads[h] + 1; k < hop_end(g, h); k++) {
        w_add(w, "--chain");
        w_add(w, w_fmt(w, "%s=%s/%s", g->p->stages[k].name, SCRIPTS_IN,
                       base(g->p->stages[k].script)));
    }
    if (keyed(sc) && index > 0) {
        w_add(w, "--index");
        w_add(w, w_fmt(w, "%d", index));
    }
    const ss_stage_conf *next = hop_next(g, h);
    if (next && next->partition_by) {
        w_add(w, "--partition-by");
        w_add(w, next->partition_by);
    } else if (next && next->broadcast) {
        w_add(w, "--broadcast");
        w_add(w, w_fmt(w, "%d", next->workers));
    }
    security_words(g, w, "worker");
}

/* On a cluster in enclave mode the source forwards sealed input: the
 * data file is expected as FILE.sealed (`sstream encrypt`). */
static int sealed_source(const gen *g)
{
    return g->enclave && g->o->target != SS_DEPLOY_COMPOSE;
}

static void source_words(gen *g, words *w)
{
    const ss_pipeline *p = g->p;
    const char *file = p->source.file ? base(p->source.file) : "input";
    w_add(w, "source");
    w_add(w, "--to");
    w_add(w, w_fmt(w, "tcp://router-1:%d", front_port(1)));
    w_add(w, "--file");
    if (sealed_source(g)) {
        w_add(w, w_fmt(w, "/data/%s.sealed", file));
        w_add(w, "--format");
        w_add(w, "sealed");
    } else {
        w_add(w, w_fmt(w, "/data/%s", file));
        w_add(w, "--format");
        w_add(w, p->source.format);
        if (p->source.header)
            w_add(w, "--header");
        if (p->source.follow) /* stopping the source ends its stream */
            w_add(w, "--follow");
        if (p->source.linger_ms >= 0) {
            w_add(w, "--linger-ms");
            w_add(w, w_fmt(w, "%d", p->source.linger_ms));
        }
        w_add(w, "--parts");
        w_add(w, w_fmt(w, "%d", p->source.parts));
    }
    if (p->source.rate) { /* a sealed file too: paced batch by batch */
        w_add(w, "--rate");
        w_add(w, w_fmt(w, "%llu", (unsigned long long)p->source.rate));
    }
    w_add(w, "--batch-size");
    w_add(w, w_fmt(w, "%llu", (unsigned long long)p->batch_size));
    w_add(w, "--name");
    w_add(w, "source");
    security_words(g, w, "source");
}

/* The names of the stateful workers are not known before they run; the
 * sink's --finals needs them, so sinks started from these files name
 * none: see docs/DEPLOY.md. */
static void sink_words(gen *g, words *w, const char *router_host)
{
    size_t last = g->nhops + 1;
    w_add(w, "sink");
    w_add(w, w_fmt(w, "%s/%s", SCRIPTS_IN, base(g->p->sink.script)));
    w_add(w, "--from");
    w_add(w, w_fmt(w, "tcp://%s:%d", router_host, back_port(last)));
    w_add(w, "--name");
    w_add(w, "sink");
    security_words(g, w, "sink");
}

/* ---- Compose and Swarm ------------------------------------------------ */

/* The control channel's files, as shipped to each reporting service. */
static const char *const ctl_files[] = {"curve-client.key", "curve-client.pub",
                                        "monitor.pub", NULL};
#define CTL_IN KEYS_IN "/control"

static int has_control(const gen *g)
{
    return g->o->target == SS_DEPLOY_SWARM && g->o->control &&
           g->o->control_keys;
}

/* The secret of control file `file` of reporting name ctl. */
static void ctl_secret_name(char *out, size_t n, const char *ctl,
                            const char *file)
{
    char tmp[SS_PIPELINE_NAME_MAX + 64];
    snprintf(tmp, sizeof tmp, "ss-ctl-%s-%s", ctl, file);
    dns_name(out, n, tmp);
}

/* index: SS_INDEX (a keyed stage's slot), or NULL; ctl: the name the
 * service reports under (its key's name), or NULL. */
static void compose_env(gen *g, const char *name_tmpl, const char *index,
                        const char *ctl)
{
    FILE *f = g->f;
    int control = ctl && has_control(g);
    if (!g->o->run && !name_tmpl && !index && !control)
        return;
    fputs("    environment:\n", f);
    if (g->o->run) {
        fputs("      SS_RUN: ", f);
        yq(f, g->o->run);
        fputc('\n', f);
    }
    if (name_tmpl) {
        fputs("      SS_NAME: ", f);
        yq(f, name_tmpl);
        fputc('\n', f);
    }
    if (index) {
        fputs("      SS_INDEX: ", f);
        yq(f, index);
        fputc('\n', f);
    }
    if (control) {
        fputs("      SS_CONTROL: ", f);
        yq(f, g->o->control);
        fputs("\n      SS_CONTROL_KEYS: \"" CTL_IN "\"\n", f);
    }
}

static void compose_secrets(gen *g, const char *role, const char *ctl)
{
    const char *const *k = ss_deploy_role_keys(g->o->target, g->sec, role);
    int control = ctl && has_control(g);
    if (!k[0] && !control)
        return;
    FILE *f = g->f;
    fputs("    secrets:\n", f);
    for (; *k; k++) {
        char sn[64];
        secret_name(sn, sizeof sn, *k);
        fprintf(f, "      - source: %s\n        target: %s\n", sn, *k);
        /* the platform key is the enclave's alone when uids are split */
        int enc = strcmp(role, "worker") == 0 && split_uids(g) &&
                  strcmp(*k, "platform.key") == 0;
        if (g->o->target == SS_DEPLOY_SWARM)
            fprintf(f, "        uid: \"%s\"\n        gid: \"%s\"\n"
                       "        mode: 0400\n",
                    enc ? ENCLAVE_UID : WORKER_UID,
                    enc ? ENCLAVE_UID : WORKER_UID);
    }
    for (k = ctl_files; control && *k; k++) {
        char sn[64];
        ctl_secret_name(sn, sizeof sn, ctl, *k);
        fprintf(f, "      - source: %s\n        target: " CTL_IN "/%s\n"
                   "        uid: \"10001\"\n        gid: \"10001\"\n"
                   "        mode: 0400\n",
                sn, *k);
    }
}

/* Routers get endpoint_mode dnsrr on Swarm: their name resolves to the
 * task's own address, not to a virtual IP behind IPVS (which drops a
 * ZeroMQ connection idle for 15 minutes, and which some kernels lack:
 * then nothing reaches the router at all). */
static void compose_deploy(gen *g, int replicas, const char *constraint,
                           int dnsrr)
{
    FILE *f = g->f;
    if (g->o->target == SS_DEPLOY_COMPOSE) {
        if (replicas > 1)
            fprintf(f, "    deploy:\n      replicas: %d\n", replicas);
        fputs("    restart: on-failure\n", f);
        return;
    }
    fprintf(f, "    deploy:\n      replicas: %d\n"
               "      restart_policy:\n        condition: on-failure\n",
            replicas);
    if (dnsrr)
        fputs("      endpoint_mode: dnsrr\n", f);
    if (constraint)
        fprintf(f, "      placement:\n        constraints:\n"
                   "          - %s\n",
                constraint);
}

/* What a container may do: no capability at all, except for an
 * enclave worker that splits uids (split_uids), which starts as root
 * with CAP_SETUID and CAP_SETGID only and drops them before it connects;
 * no-new-privileges on Compose (Swarm services have no security_opt:
 * there the image has no setuid file and a splitting worker sets
 * no_new_privs itself). */
static void compose_privileges(gen *g, int split)
{
    FILE *f = g->f;
    if (split)
        fputs("    user: \"0\"\n    cap_add: [SETUID, SETGID]\n", f);
    fputs("    cap_drop: [ALL]\n", f);
    if (g->o->target == SS_DEPLOY_COMPOSE)
        fputs("    security_opt: [\"no-new-privileges:true\"]\n", f);
}

/* A service's configs entries for stage k: its script and its extras. */
static void compose_stage_configs(gen *g, size_t k)
{
    FILE *f = g->f;
    fprintf(f, "      - source: ss-script-%zu\n        target: %s/%s\n",
            k + 1, SCRIPTS_IN, base(g->p->stages[k].script));
    for (size_t i = 0; i < n_extras(g, k); i++) {
        char rel[PATH_MAX];
        const char *d;
        size_t n;
        extra(g, k, i, rel, sizeof rel, &d, &n);
        fprintf(f, "      - source: ss-file-%zu-%zu\n        target: ",
                k + 1, i + 1);
        char t[PATH_MAX + 16];
        snprintf(t, sizeof t, "%s/%s", SCRIPTS_IN, rel);
        yq(f, t);
        fputc('\n', f);
    }
}

static void compose_service(gen *g, const char *svc, const words *w,
                            int split)
{
    FILE *f = g->f;
    fprintf(f, "  %s:\n    image: ", svc);
    yq(f, g->o->image);
    fputs("\n    command: ", f);
    cmd_list(f, w->v, w->n);
    fputs("\n    networks: [sstream]\n", f);
    compose_privileges(g, split);
}

static int write_compose(gen *g)
{
    const ss_pipeline *p = g->p;
    FILE *f = g->f;
    int swarm = g->o->target == SS_DEPLOY_SWARM;
    size_t nrouters = g->nhops + 1;
    char path[PATH_MAX];

    fprintf(f, "# %s of pipeline '%s' (security %s), written by `sstream "
               "deploy`.\n",
            swarm ? "Docker Swarm stack" : "Docker Compose file", p->name,
            g->sec);
    if (swarm) {
        fprintf(f,
                "#   docker stack deploy -c stack.yml %s\n"
                "# Nodes: label the data node (docker node update "
                "--label-add securestreams.data=true NODE)%s.\n"
                "# The sink runs on your own machine (it opens the "
                "results), connecting to the\n# published port %d of "
                "router-%zu:\n#   sstream sink %s --from "
                "tcp://SWARM-NODE:%d%s\n",
                g->name,
                g->enclave ? " and the SGX nodes (--label-add sgx=true)" : "",
                back_port(nrouters), nrouters, base(p->sink.script),
                back_port(nrouters),
                g->plain ? "" : " --security ... --keys KEYS");
        if (g->enclave)
            fprintf(f, "# and the key service too, at %s:\n#   sstream "
                       "keyservice --keys KEYS --stage NAME=SCRIPT ...\n"
                       "# Swarm services have no device option: an SGX "
                       "backend needs /dev/sgx mapped\n# by the node's "
                       "engine (docs/DEPLOY.md).\n",
                    g->o->keyservice);
    } else {
        fprintf(f, "#   docker compose -f compose.yml -p %s up\n",
                g->name);
    }
    fputs("version: \"3.8\"\nservices:\n", f);

    for (size_t k = 1; k <= nrouters; k++) {
        words w = {0};
        router_words(g, &w, k);
        char svc[32];
        snprintf(svc, sizeof svc, "router-%zu", k);
        compose_service(g, svc, &w, 0);
        compose_env(g, NULL, NULL, svc);
        compose_secrets(g, "router", svc);
        if (swarm && k == nrouters)
            fprintf(f, "    ports:\n      - target: %d\n        published: "
                       "%d\n        mode: host\n",
                    back_port(k), back_port(k));
        compose_deploy(g, 1, NULL, 1);
    }
    /* Swarm: one service per hop (a stage and those chained into it),
     * replicas named by task slot; a keyed stage's replica also takes
     * its slot as its index (SS_INDEX), which is why such a stage must
     * not be rescaled (its router has one slot per worker). Compose has
     * no task slots: one service per worker, named and indexed. */
    for (size_t h = 0; h < g->nhops; h++) {
        size_t s = g->heads[h];
        const ss_stage_conf *sc = &p->stages[s];
        for (int wk = 1; wk <= (swarm ? 1 : sc->workers); wk++) {
            words w = {0};
            stage_words(g, &w, h, swarm ? 0 : wk);
            char svc[SS_PIPELINE_NAME_MAX + 16];
            char tmpl[SS_PIPELINE_NAME_MAX + 24];
            if (swarm) {
                snprintf(svc, sizeof svc, "stage-%s", sc->name);
                snprintf(tmpl, sizeof tmpl, "%s-{{.Task.Slot}}", sc->name);
            } else {
                snprintf(svc, sizeof svc, "stage-%s-%d", sc->name, wk);
                snprintf(tmpl, sizeof tmpl, "%s-%d", sc->name, wk);
            }
            dns_name(svc, sizeof svc, svc);
            compose_service(g, svc, &w, split_uids(g));
            compose_env(g, tmpl, swarm && keyed(sc) ? "{{.Task.Slot}}" : NULL,
                        sc->name);
            fputs("    configs:\n", f);
            for (size_t k = s; k < hop_end(g, h); k++)
                compose_stage_configs(g, k);
            compose_secrets(g, "worker", sc->name);
            if (g->enclave && !swarm && g->o->enclave &&
                strcmp(g->o->enclave, "gramine") == 0)
                fputs("    devices:\n      - /dev/sgx_enclave\n"
                      "      - /dev/sgx_provision\n",
                      f);
            compose_deploy(g, swarm ? sc->workers : 1,
                           g->enclave ? "node.labels.sgx == true" : NULL, 0);
        }
    }
    {
        words w = {0};
        source_words(g, &w);
        compose_service(g, "source", &w, 0);
        compose_env(g, NULL, NULL, "source");
        compose_secrets(g, "source", "source");
        fputs("    volumes:\n      - type: bind\n        source: ", f);
        yq(f, g->o->data_dir ? g->o->data_dir : DEFAULT_DATA_DIR);
        fputs("\n        target: /data\n        read_only: true\n", f);
        compose_deploy(g, 1,
                       swarm ? "node.labels.securestreams.data == true"
                             : NULL,
                       0);
    }
    if (!swarm) {
        words w = {0};
        char host[32];
        snprintf(host, sizeof host, "router-%zu", nrouters);
        sink_words(g, &w, host);
        compose_service(g, "sink", &w, 0);
        compose_env(g, NULL, NULL, NULL);
        fputs("    configs:\n", f);
        fprintf(f, "      - source: ss-script-sink\n        target: %s/%s\n",
                SCRIPTS_IN, base(p->sink.script));
        compose_secrets(g, "sink", NULL);
        compose_deploy(g, 1, NULL, 0);
        if (g->enclave) {
            fprintf(f, "  keyservice:\n    image: ");
            yq(f, g->o->image);
            fputs("\n    command: [\"keyservice\", \"--keys\", \"" KEYS_IN
                  "\", \"--bind\", \"tcp://*:5599\"",
                  f);
            for (size_t s = 0; s < p->nstages; s++) {
                char st[SS_PIPELINE_NAME_MAX + PATH_MAX + 16];
                snprintf(st, sizeof st, "%s=%s/%s", p->stages[s].name,
                         SCRIPTS_IN, base(p->stages[s].script));
                fputs(", \"--stage\", ", f);
                yq(f, st);
            }
            fputs("]\n    networks: [sstream]\n", f);
            compose_privileges(g, 0);
            fputs("    configs:\n", f);
            for (size_t s = 0; s < p->nstages; s++)
                compose_stage_configs(g, s);
            compose_secrets(g, "keyservice", NULL);
            compose_deploy(g, 1, NULL, 0);
        }
    }

    fprintf(f, "networks:\n  sstream:\n%s", swarm ? "    driver: overlay\n"
                                                       "    attachable: true\n"
                                                     : "");
    fputs("configs:\n", f);
    for (size_t s = 0; s < p->nstages; s++) {
        if (abspath(g, p->stages[s].script, path))
            return SS_EIO;
        fprintf(f, "  ss-script-%zu:\n    file: ", s + 1);
        yq(f, path);
        fputc('\n', f);
        /* its extras, next to it */
        char *slash = strrchr(path, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < n_extras(g, s); i++) {
            char rel[PATH_MAX], full[2 * PATH_MAX + 2];
            const char *d;
            size_t n;
            extra(g, s, i, rel, sizeof rel, &d, &n);
            snprintf(full, sizeof full, "%s/%s", path, rel);
            fprintf(f, "  ss-file-%zu-%zu:\n    file: ", s + 1, i + 1);
            yq(f, full);
            fputc('\n', f);
        }
    }
    if (!swarm) {
        if (abspath(g, p->sink.script, path))
            return SS_EIO;
        fputs("  ss-script-sink:\n    file: ", f);
        yq(f, path);
        fputc('\n', f);
    }
    if (g->plain && !has_control(g))
        return 0;
    fputs("secrets:\n", f);
    if (has_control(g)) {
        /* the control channel's pairs: one per reporting name */
        size_t nctl = nrouters + 1 + g->nhops;
        for (size_t i = 0; i < nctl; i++) {
            char ctl[SS_PIPELINE_NAME_MAX + 16];
            if (i < nrouters)
                snprintf(ctl, sizeof ctl, "router-%zu", i + 1);
            else if (i == nrouters)
                snprintf(ctl, sizeof ctl, "source");
            else
                snprintf(ctl, sizeof ctl, "%s",
                         p->stages[g->heads[i - nrouters - 1]].name);
            for (const char *const *k = ctl_files; *k; k++) {
                char sn[64], file[PATH_MAX + 128];
                ctl_secret_name(sn, sizeof sn, ctl, *k);
                snprintf(file, sizeof file, "%s/%s/%s", g->o->control_keys,
                         ctl, *k);
                if (abspath(g, file, path))
                    return SS_EIO;
                fprintf(f, "  %s:\n    file: ", sn);
                yq(f, path);
                fputc('\n', f);
            }
        }
    }
    if (g->plain)
        return 0;
    /* every key file some service of this target needs, once */
    static const char *const all[] = {
        "curve-server.key",     "curve-server.pub",     "curve-client.key",
        "curve-client.pub",     "curve-keyservice.key", "curve-keyservice.pub",
        "data.key",             "platform.key",         "platform.pub",
        NULL};
    static const char *const roles[] = {"router", "worker", "source", "sink",
                                        "keyservice", NULL};
    for (const char *const *k = all; *k; k++) {
        int used = 0;
        for (const char *const *r = roles; *r && !used; r++)
            for (const char *const *rk =
                     ss_deploy_role_keys(g->o->target, g->sec, *r);
                 *rk; rk++)
                used |= strcmp(*rk, *k) == 0;
        if (!used)
            continue;
        char sn[64], file[PATH_MAX + 64];
        secret_name(sn, sizeof sn, *k);
        snprintf(file, sizeof file, "%s/%s", g->o->keys, *k);
        if (abspath(g, file, path))
            return SS_EIO;
        fprintf(f, "  %s:\n    file: ", sn);
        yq(f, path);
        fputc('\n', f);
    }
    return 0;
}

/* ---- Kubernetes ------------------------------------------------------- */

static void k8s_labels(gen *g, const char *component, int indent)
{
    fprintf(g->f, "%*sapp.kubernetes.io/name: securestreams\n"
                  "%*sapp.kubernetes.io/instance: %s\n"
                  "%*sapp.kubernetes.io/component: %s\n",
            indent, "", indent, "", g->name, indent, "", component);
}

/* A Secret with the bytes of files (base64). */
static int k8s_secret(gen *g, const char *role, const char *const *files)
{
    FILE *f = g->f;
    fprintf(f, "---\napiVersion: v1\nkind: Secret\nmetadata:\n"
               "  name: %s-%s-keys\n  labels:\n",
            g->name, role);
    k8s_labels(g, role, 4);
    fputs("type: Opaque\ndata:\n", f);
    for (; *files; files++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", g->o->keys, *files);
        size_t n = 0;
        char *b = slurp(g, path, &n);
        if (!b)
            return SS_EIO;
        size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (!b64) {
            sodium_memzero(b, n);
            free(b);
            return SS_ENOMEM;
        }
        sodium_bin2base64(b64, cap, (const unsigned char *)b, n,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(f, "  %s: %s\n", *files, b64);
        sodium_memzero(b, n);
        sodium_memzero(b64, cap);
        free(b);
        free(b64);
    }
    return 0;
}

/* The scripts volume's items when a stage has modules or data files:
 * every key and the path it takes under SCRIPTS_IN. */
static void k8s_items(gen *g)
{
    const ss_pipeline *p = g->p;
    size_t total = 0;
    for (size_t s = 0; s < p->nstages; s++)
        total += n_extras(g, s);
    if (!total)
        return;
    FILE *f = g->f;
    fputs("            items:\n", f);
    for (size_t s = 0; s < p->nstages; s++) {
        fputs("              - {key: ", f);
        yq(f, base(p->stages[s].script));
        fputs(", path: ", f);
        yq(f, base(p->stages[s].script));
        fputs("}\n", f);
        for (size_t i = 0; i < n_extras(g, s); i++) {
            char rel[PATH_MAX];
            const char *d;
            size_t n;
            extra(g, s, i, rel, sizeof rel, &d, &n);
            fprintf(f, "              - {key: \"x%zu-%zu\", path: ", s + 1,
                    i + 1);
            yq(f, rel);
            fputs("}\n", f);
        }
    }
}

/* The pod template of a component: one container, the scripts, its
 * role's keys copied by an init container into memory with mode 0600 (a
 * Secret volume's files belong to root; the keys must be the user's and
 * private, ss_keys checks). */
static void k8s_pod(gen *g, const char *component, const char *role,
                    const words *w, int sgx, int data, int indexed)
{
    FILE *f = g->f;
    int keys = !g->plain && ss_deploy_role_keys(g->o->target, g->sec,
                                                role)[0] != NULL;
    /* an enclave worker splitting uids starts as root (see
     * compose_privileges); everything else runs as the image's user */
    int split = strcmp(role, "worker") == 0 && split_uids(g);
    fputs("  template:\n    metadata:\n      labels:\n", f);
    k8s_labels(g, component, 8);
    fputs("    spec:\n", f);
    if (strcmp(role, "source") == 0)
        fputs("      restartPolicy: OnFailure\n", f);
    if (split)
        fputs("      securityContext:\n        runAsUser: 0\n"
              "        runAsGroup: 0\n",
              f);
    else
        fputs("      securityContext:\n        runAsNonRoot: true\n"
              "        runAsUser: " WORKER_UID "\n        runAsGroup: "
              WORKER_UID "\n",
              f);
    if (sgx || data) {
        fputs("      nodeSelector:\n", f);
        if (sgx)
            fputs("        securestreams.io/sgx: \"true\"\n", f);
        if (data)
            fputs("        securestreams.io/data: \"true\"\n", f);
    }
    if (keys) {
        fputs("      initContainers:\n        - name: keys\n          image: ",
              f);
        yq(f, g->o->image);
        if (split) /* each key its owner's: platform.key the enclave's */
            fputs("\n          command: [\"/bin/sh\", \"-c\", \"cp /secret/* "
                  K8S_KEYS "/ && chmod 600 " K8S_KEYS "/* && chown "
                  WORKER_UID ":" WORKER_UID " " K8S_KEYS "/* && chown "
                  ENCLAVE_UID ":" ENCLAVE_UID " " K8S_KEYS
                  "/platform.key\"]\n"
                  "          securityContext:\n"
                  "            allowPrivilegeEscalation: false\n"
                  "            capabilities:\n              drop: [\"ALL\"]\n"
                  "              add: [\"CHOWN\"]\n",
                  f);
        else
            fputs("\n          command: [\"/bin/sh\", \"-c\", \"cp /secret/* "
                  K8S_KEYS "/ && chmod 600 " K8S_KEYS "/*\"]\n"
                  "          securityContext:\n"
                  "            allowPrivilegeEscalation: false\n"
                  "            capabilities:\n              drop: [\"ALL\"]\n",
                  f);
        fputs("          volumeMounts:\n"
              "            - {name: secret, mountPath: /secret, readOnly: true}\n"
              "            - {name: keys, mountPath: " K8S_KEYS "}\n",
              f);
    }
    fprintf(f, "      containers:\n        - name: %s\n          image: ",
            component);
    yq(f, g->o->image);
    fputs("\n          args: ", f);
    cmd_list(f, w->v, w->n);
    fputs("\n          securityContext:\n"
          "            allowPrivilegeEscalation: false\n"
          "            capabilities:\n              drop: [\"ALL\"]\n",
          f);
    if (split)
        fputs("              add: [\"SETUID\", \"SETGID\"]\n", f);
    fputs("          env:\n            - name: SS_NAME\n              "
          "valueFrom:\n                fieldRef:\n                  "
          "fieldPath: metadata.name\n",
          f);
    if (g->o->run) {
        fputs("            - name: SS_RUN\n              value: ", f);
        yq(f, g->o->run);
        fputc('\n', f);
    }
    if (indexed) /* a StatefulSet's pods are numbered from 0 */
        fputs("            - name: SS_POD_INDEX\n              valueFrom:\n"
              "                fieldRef:\n                  fieldPath: "
              "metadata.labels['apps.kubernetes.io/pod-index']\n",
              f);
    if (sgx && g->o->enclave && strcmp(g->o->enclave, "gramine") == 0)
        fputs("          resources:\n            limits:\n"
              "              sgx.intel.com/epc: \"64Mi\"\n"
              "              sgx.intel.com/enclave: 1\n"
              "              sgx.intel.com/provision: 1\n",
              f);
    fputs("          volumeMounts:\n", f);
    fputs("            - {name: scripts, mountPath: " SCRIPTS_IN
          ", readOnly: true}\n",
          f);
    if (keys)
        fputs("            - {name: keys, mountPath: " K8S_KEYS
              ", readOnly: true}\n",
              f);
    if (data)
        fputs("            - {name: data, mountPath: /data, readOnly: true}\n",
              f);
    fprintf(f, "      volumes:\n        - name: scripts\n          "
               "configMap:\n            name: %s-scripts\n",
            g->name);
    k8s_items(g);
    if (keys)
        fprintf(f, "        - name: secret\n          secret:\n            "
                   "secretName: %s-%s-keys\n            defaultMode: 0444\n"
                   "        - name: keys\n          emptyDir:\n"
                   "            medium: Memory\n",
                g->name, strcmp(role, "router") == 0 ? "router" : "node");
    if (data) {
        fputs("        - name: data\n          hostPath:\n            path: ",
              f);
        yq(f, g->o->data_dir ? g->o->data_dir : DEFAULT_DATA_DIR);
        fputs("\n            type: Directory\n", f);
    }
}

/* A Deployment of identical replicas, or, for a keyed stage (indexed),
 * a StatefulSet, whose pods are numbered (SS_POD_INDEX) and started all
 * at once, with the headless Service a StatefulSet names. */
static void k8s_deployment(gen *g, const char *component, const char *role,
                           int replicas, const words *w, int sgx,
                           int indexed)
{
    FILE *f = g->f;
    if (indexed) {
        fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata:\n"
                   "  name: %s-%s\n  labels:\n",
                g->name, component);
        k8s_labels(g, component, 4);
        fputs("spec:\n  clusterIP: None\n  selector:\n", f);
        k8s_labels(g, component, 4);
    }
    fprintf(f, "---\napiVersion: apps/v1\nkind: %s\nmetadata:\n"
               "  name: %s-%s\n  labels:\n",
            indexed ? "StatefulSet" : "Deployment", g->name, component);
    k8s_labels(g, component, 4);
    fprintf(f, "spec:\n  replicas: %d\n", replicas);
    if (indexed)
        fprintf(f, "  serviceName: %s-%s\n  podManagementPolicy: Parallel\n",
                g->name, component);
    fputs("  selector:\n    matchLabels:\n", f);
    k8s_labels(g, component, 6);
    k8s_pod(g, component, role, w, sgx, 0, indexed);
}

static int write_k8s(gen *g)
{
    const ss_pipeline *p = g->p;
    FILE *f = g->f;
    size_t nrouters = g->nhops + 1;
    fprintf(f,
            "# Kubernetes manifests of pipeline '%s' (security %s), written "
            "by `sstream deploy`\n# (validated against the Kubernetes API "
            "schema in the tests; not run on a cluster here).\n"
            "#   kubectl apply -f k8s.yml\n"
            "# Label the data node (securestreams.io/data=true)%s.\n"
            "# The sink runs on your own machine, connecting to router-%zu's "
            "NodePort service:\n#   sstream sink %s --from "
            "tcp://NODE:NODEPORT%s\n",
            p->name, g->sec,
            g->enclave ? " and the SGX nodes (securestreams.io/sgx=true)"
                       : "",
            nrouters, base(p->sink.script),
            g->plain ? "" : " --security ... --keys KEYS");

    /* the scripts */
    fprintf(f, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
               "  name: %s-scripts\n  labels:\n",
            g->name);
    k8s_labels(g, "scripts", 4);
    fputs("data:\n", f);
    for (size_t s = 0; s < p->nstages; s++) {
        size_t n = 0;
        char *b = slurp(g, p->stages[s].script, &n);
        if (!b)
            return SS_EIO;
        fputs("  ", f);
        yq(f, base(p->stages[s].script));
        fputs(": ", f);
        yq(f, b); /* escapes newlines: any text stays one scalar */
        fputc('\n', f);
        free(b);
    }
    /* the modules and data files, as bytes (a data file need not be
     * text); keys cannot hold '/': the volume's items place them */
    int any = 0;
    for (size_t s = 0; s < p->nstages; s++)
        for (size_t i = 0; i < n_extras(g, s); i++) {
            char rel[PATH_MAX];
            const char *d;
            size_t n;
            extra(g, s, i, rel, sizeof rel, &d, &n);
            size_t cap = sodium_base64_encoded_len(
                n, sodium_base64_VARIANT_ORIGINAL);
            char *b64 = malloc(cap);
            if (!b64)
                return SS_ENOMEM;
            sodium_bin2base64(b64, cap, (const unsigned char *)d, n,
                              sodium_base64_VARIANT_ORIGINAL);
            fprintf(f, "%s  x%zu-%zu: %s\n", any++ ? "" : "binaryData:\n",
                    s + 1, i + 1, b64);
            free(b64);
        }
    if (!g->plain) {
        int rc = k8s_secret(g, "router", k_router);
        if (!rc)
            rc = k8s_secret(g, "node",
                            g->enclave ? k_enclave_worker : k_client);
        if (rc)
            return rc;
    }
    for (size_t k = 1; k <= nrouters; k++) {
        words w = {0};
        router_words(g, &w, k);
        char comp[32];
        snprintf(comp, sizeof comp, "router-%zu", k);
        k8s_deployment(g, comp, "router", 1, &w, 0, 0);
        /* the Service: peers reach tcp://router-k:PORT */
        fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata:\n"
                   "  name: %s\n  labels:\n",
                comp);
        k8s_labels(g, comp, 4);
        fprintf(f, "spec:\n  type: %s\n  selector:\n",
                k == nrouters ? "NodePort" : "ClusterIP");
        k8s_labels(g, comp, 4);
        fprintf(f, "  ports:\n    - name: producers\n      port: %d\n"
                   "      targetPort: %d\n    - name: workers\n      port: "
                   "%d\n      targetPort: %d\n",
                front_port(k), front_port(k), back_port(k), back_port(k));
    }
    for (size_t h = 0; h < g->nhops; h++) {
        const ss_stage_conf *sc = &p->stages[g->heads[h]];
        words w = {0};
        stage_words(g, &w, h, 0);
        char comp[SS_PIPELINE_NAME_MAX + 8];
        snprintf(comp, sizeof comp, "stage-%s", sc->name);
        dns_name(comp, sizeof comp, comp);
        k8s_deployment(g, comp, "worker", sc->workers, &w, g->enclave,
                       keyed(sc));
    }
    /* the source runs to completion: a Job */
    words w = {0};
    source_words(g, &w);
    fprintf(f, "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n"
               "  name: %s-source\n  labels:\n",
            g->name);
    k8s_labels(g, "source", 4);
    fputs("spec:\n  backoffLimit: 3\n", f);
    k8s_pod(g, "source", "source", &w, 0, 1, 0);
    return 0;
}

/* See ss_deploy.h. */
int ss_deploy_write(const ss_pipeline *p, const ss_deploy_opts *o, FILE *f,
                    char *err, size_t errlen)
{
    gen g = {.p = p, .o = o, .f = f, .sec = p->security, .err = err,
             .errlen = errlen};
    g.plain = strcmp(g.sec, "plain") == 0;
    g.enclave = strcmp(g.sec, "enclave") == 0;
    dns_name(g.name, sizeof g.name, p->name);
    int cluster = o->target != SS_DEPLOY_COMPOSE;
    if (!o->image || !*o->image) {
        ss_errf(err, errlen, "no container image given");
        return SS_EINVAL;
    }
    /* chained in plain mode only: an enclave running a chain measures
     * every chained script, and the key service deploy starts expects
     * one script per stage (sstream keyservice --stage) */
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        if (!g.plain || !ss_pipeline_chained(p, s))
            g.heads[g.nhops++] = s;
    if (ss_pipeline_links_sealed(p)) {
        ss_errf(err, errlen,
                "links: sealed is for sstream run on one machine for now: "
                "the deployment files keep CurveZMQ on every link (use "
                "links: curve)");
        return SS_EINVAL;
    }
    if (p->source.follow && sealed_source(&g)) {
        ss_errf(err, errlen,
                "source follow: an enclave pipeline on %s injects a sealed "
                "file (sstream encrypt), which is complete and cannot be "
                "followed: use --target compose, or sstream run",
                o->target == SS_DEPLOY_SWARM ? "swarm" : "k8s");
        return SS_EINVAL;
    }
    if (cluster && strcmp(g.sec, "encrypted") == 0) {
        ss_errf(err, errlen,
                "security encrypted puts the data key on every worker, and "
                "a cluster's operator can read every secret: use enclave "
                "(or plain, the unsafe baseline) on %s, or --target compose "
                "on a host of your own",
                o->target == SS_DEPLOY_SWARM ? "swarm" : "k8s");
        return SS_EINVAL;
    }
    if (!g.plain && (!o->keys || !*o->keys)) {
        ss_errf(err, errlen, "security %s needs the pipeline's keys "
                             "(--keys DIR, from sstream keygen)",
                g.sec);
        return SS_EINVAL;
    }
    if (cluster && g.enclave && (!o->keyservice || !*o->keyservice)) {
        ss_errf(err, errlen,
                "enclave mode on a cluster needs --keyservice EP: the key "
                "service runs on your own machine (it holds the data key), "
                "e.g. tcp://owner.example.org:5599");
        return SS_EINVAL;
    }
    if (o->enclave && strcmp(o->enclave, "sandbox") != 0 &&
        strcmp(o->enclave, "gramine") != 0) {
        ss_errf(err, errlen, "unknown enclave backend '%s' (sandbox, "
                             "gramine)",
                o->enclave);
        return SS_EINVAL;
    }
    int rc = 0;
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES && !rc;
         s++)
        rc = ss_bundle_load(p->stages[s].script, &g.bundles[s], err, errlen);
    if (!rc)
        rc = o->target == SS_DEPLOY_K8S ? write_k8s(&g) : write_compose(&g);
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        ss_bundle_destroy(&g.bundles[s]);
    if (!rc && (fflush(f) || ferror(f))) {
        ss_errf(err, errlen, "cannot write: %s", strerror(errno));
        rc = SS_EIO;
    }
    return rc;
}
