/*
 * test_deploy.c - `sstream deploy`'s generator (src/run/ss_deploy.c):
 * keys per role (never the data key on a cluster), what a cluster target
 * refuses, the services and their placement, and that a hostile name or
 * path stays one quoted YAML scalar.
 *
 * The tests run in a fresh temporary folder holding small scripts and a
 * key directory made with ss_keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/ss_deploy.h"
#include "run/ss_pipeline.h"
#include "securestreams.h"

static char tmpdir[PATH_MAX];
static char oldcwd[PATH_MAX];

static void write_file(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(getcwd(oldcwd, sizeof oldcwd));
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ss_deploy_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    assert_int_equal(chdir(tmpdir), 0);
    write_file("map.lua", "-- map\nlocal x = \"q\"\n", 0644);
    write_file("red.lua", "-- reduce\n", 0644);
    write_file("sink.lua", "-- sink\n", 0644);
    mkdir("keys", 0700);
    static const char *const files[] = {
        "data.key", "platform.key", "platform.pub", "curve-server.key",
        "curve-server.pub", "curve-client.key", "curve-client.pub",
        "curve-keyservice.key", "curve-keyservice.pub"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[64];
        snprintf(path, sizeof path, "keys/%s", files[i]);
        write_file(path, files[i], 0600); /* the content names the file */
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(chdir(oldcwd), 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static ss_pipeline *load(const char *security, int workers)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name: demo\nsecurity: %s\n"
             "source: { file: data.csv, parts: 2, format: csv, header: "
             "true }\n"
             "stages:\n"
             "  - { name: map, script: map.lua, workers: %d }\n"
             "  - { name: reduce, script: red.lua, workers: 1 }\n"
             "sink: { script: sink.lua }\n",
             security, workers);
    ss_pipeline *p = NULL;
    char err[256];
    int rc = ss_pipeline_parse("p.yml", text, strlen(text), &p, err,
                               sizeof err);
    if (rc)
        fail_msg("%s", err);
    return p;
}

/* Runs the generator into memory; returns the text (caller frees) or
 * NULL with err set. */
static char *gen(const ss_pipeline *p, const ss_deploy_opts *o, int *rc,
                 char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    *rc = ss_deploy_write(p, o, f, err, errlen);
    fclose(f);
    if (*rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
        n++;
    return n;
}

static void test_role_keys(void **state)
{
    (void)state;
    static const char *const sec[] = {"plain", "encrypted", "enclave"};
    static const char *const roles[] = {"router", "worker", "source", "sink",
                                        "keyservice"};
    for (int t = SS_DEPLOY_COMPOSE; t <= SS_DEPLOY_K8S; t++)
        for (size_t s = 0; s < 3; s++)
            for (size_t r = 0; r < 5; r++) {
                const char *const *k =
                    ss_deploy_role_keys((ss_deploy_target)t, sec[s], roles[r]);
                assert_non_null(k);
                for (; *k; k++) {
                    /* the data key never reaches a cluster */
                    if (t != SS_DEPLOY_COMPOSE)
                        assert_string_not_equal(*k, "data.key");
                    /* only the key service holds its secret */
                    if (strcmp(roles[r], "keyservice") != 0)
                        assert_string_not_equal(*k, "curve-keyservice.key");
                    /* only routers hold the CURVE server secret */
                    if (strcmp(roles[r], "router") != 0)
                        assert_string_not_equal(*k, "curve-server.key");
                    /* routers hold no data key and no client secret */
                    if (strcmp(roles[r], "router") == 0) {
                        assert_string_not_equal(*k, "data.key");
                        assert_string_not_equal(*k, "curve-client.key");
                    }
                }
            }
    assert_null(ss_deploy_role_keys(SS_DEPLOY_SWARM, "plain", "router")[0]);
    assert_null(ss_deploy_role_keys(SS_DEPLOY_K8S, "enclave", "sink")[0]);
    assert_string_equal(
        ss_deploy_role_keys(SS_DEPLOY_COMPOSE, "encrypted", "worker")[0],
        "data.key");
    ss_deploy_target t;
    assert_int_equal(ss_deploy_target_parse("swarm", &t), 0);
    assert_int_equal(t, SS_DEPLOY_SWARM);
    assert_int_equal(ss_deploy_target_parse("nomad", &t), SS_EINVAL);
    assert_string_equal(ss_deploy_file_name(SS_DEPLOY_K8S), "k8s.yml");
}

static void test_refusals(void **state)
{
    (void)state;
    char err[512];
    int rc;
    ss_pipeline *p = load("encrypted", 2);
    ss_deploy_opts o = {.target = SS_DEPLOY_SWARM, .image = "img",
                        .keys = "keys"};
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_int_equal(rc, SS_EINVAL);
    assert_non_null(strstr(err, "security encrypted puts the data key on "
                                "every worker"));
    o.target = SS_DEPLOY_COMPOSE; /* the owner's own host: fine */
    char *t = gen(p, &o, &rc, err, sizeof err);
    assert_non_null(t);
    assert_null(strstr(t, "--follow"));
    free(t);
    p->source.follow = 1; /* an unbounded input: passed on */
    p->source.linger_ms = 50;
    t = gen(p, &o, &rc, err, sizeof err);
    assert_non_null(t);
    assert_non_null(strstr(t, "\"--follow\", \"--linger-ms\", \"50\""));
    assert_null(strstr(t, "--rate"));
    free(t);
    p->source.rate = 50000; /* a paced source: passed on */
    t = gen(p, &o, &rc, err, sizeof err);
    assert_non_null(t);
    assert_non_null(strstr(t, "\"--rate\", \"50000\""));
    free(t);
    p->source.rate = 0;
    p->source.follow = 0;
    p->source.linger_ms = -1;
    o.keys = NULL;
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_non_null(strstr(err, "needs the pipeline's keys (--keys DIR"));
    ss_pipeline_destroy(&p);

    p = load("enclave", 1);
    o = (ss_deploy_opts){.target = SS_DEPLOY_K8S, .image = "img",
                         .keys = "keys"};
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_non_null(strstr(err, "needs --keyservice EP"));
    o.keyservice = "tcp://owner:5599";
    o.enclave = "tdx";
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_non_null(strstr(err, "unknown enclave backend 'tdx'"));
    o.enclave = NULL;
    p->source.follow = 1; /* a sealed file cannot be followed */
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_non_null(strstr(err, "source follow: an enclave pipeline on k8s "
                                "injects a sealed file"));
    p->source.follow = 0;
    o.keys = "no-such-dir";
    assert_null(gen(p, &o, &rc, err, sizeof err));
    assert_int_equal(rc, SS_EIO);
    assert_non_null(strstr(err, "no-such-dir/curve-server.key"));
    ss_pipeline_destroy(&p);
}

static void test_swarm_enclave(void **state)
{
    (void)state;
    char err[512];
    int rc;
    ss_pipeline *p = load("enclave", 3);
    ss_deploy_opts o = {.target = SS_DEPLOY_SWARM, .image = "img:1",
                        .keys = "keys", .keyservice = "tcp://owner:5599",
                        .run = "00000000000000ab"};
    char *t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    /* 3 routers, 2 stages, the source; no sink, no key service */
    assert_int_equal(count(t, "\"router\", \"--from\""), 3);
    assert_non_null(strstr(t, "  stage-map:\n"));
    assert_non_null(strstr(t, "  stage-reduce:\n"));
    assert_non_null(strstr(t, "  source:\n"));
    assert_null(strstr(t, "  sink:\n"));
    assert_null(strstr(t, "  keyservice:\n"));
    assert_null(strstr(t, "data.key"));
    assert_non_null(strstr(t, "      replicas: 3\n"));
    assert_int_equal(count(t, "- node.labels.sgx == true"), 2);
    assert_non_null(strstr(t, "SS_NAME: \"map-{{.Task.Slot}}\""));
    assert_non_null(strstr(t, "SS_RUN: \"00000000000000ab\""));
    assert_non_null(strstr(t, "\"--format\", \"sealed\""));
    assert_non_null(strstr(t, "\"tcp://router-1:5556\", \"--to\", "
                              "\"tcp://router-2:5557\""));
    assert_non_null(strstr(t, "driver: overlay"));
    /* routers by their tasks' own addresses, not a virtual IP */
    assert_int_equal(count(t, "endpoint_mode: dnsrr"), 3);
    assert_non_null(strstr(t, "published: 5560"));
    free(t);
    ss_pipeline_destroy(&p);
}

static void test_k8s(void **state)
{
    (void)state;
    char err[512];
    int rc;
    ss_pipeline *p = load("enclave", 2);
    ss_deploy_opts o = {.target = SS_DEPLOY_K8S, .image = "img:1",
                        .keys = "keys", .keyservice = "tcp://owner:5599",
                        .enclave = "gramine"};
    char *t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(count(t, "kind: Deployment"), 5);
    assert_int_equal(count(t, "kind: Service\n"), 3);
    assert_int_equal(count(t, "kind: Secret"), 2);
    assert_int_equal(count(t, "kind: Job"), 1);
    assert_non_null(strstr(t, "type: NodePort"));
    assert_int_equal(count(t, "securestreams.io/sgx: \"true\""), 2);
    assert_int_equal(count(t, "sgx.intel.com/enclave: 1"), 2);
    /* the Secrets carry base64 of the files: platform.key ("cGxhdGZvcm0u")
     * yes, data.key ("ZGF0YS5rZXk=") never */
    assert_non_null(strstr(t, "platform.key: cGxhdGZvcm0ua2V5"));
    assert_null(strstr(t, "ZGF0YS5rZXk="));
    /* the script's quotes and newline stay inside one scalar */
    assert_non_null(strstr(t, "\"map.lua\": \"-- map\\x0alocal x = \\\"q\\\"\\x0a\""));
    free(t);
    ss_pipeline_destroy(&p);
}

static void test_hostile_names(void **state)
{
    (void)state;
    char err[512];
    int rc;
    ss_pipeline *p = load("plain", 1);
    ss_deploy_opts o = {.target = SS_DEPLOY_COMPOSE,
                        .image = "img\"\n  evil: [1]", .data_dir = "/d\\x"};
    char *t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_null(strstr(t, "\n  evil"));
    assert_non_null(strstr(t, "image: \"img\\\"\\x0a  evil: [1]\""));
    assert_non_null(strstr(t, "source: \"/d\\\\x\""));
    assert_null(strstr(t, "secrets:")); /* plain: no keys at all */
    assert_non_null(strstr(t, "  sink:\n"));
    free(t);
    ss_pipeline_destroy(&p);
    /* Compose: one named service per worker (no task slots there) */
    p = load("plain", 2);
    o.image = "img";
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_non_null(strstr(t, "  stage-map-1:\n"));
    assert_non_null(strstr(t, "  stage-map-2:\n"));
    assert_non_null(strstr(t, "SS_NAME: \"map-2\""));
    assert_null(strstr(t, "  stage-map-3:\n"));
    free(t);
    ss_pipeline_destroy(&p);
}

/* Keyed stages: the router in front has one slot per worker
 * (--partitions), the stage before cuts its output (--partition-by or
 * --broadcast N), and each worker knows its slot: Compose --index I per
 * service, Swarm SS_INDEX from the task slot, Kubernetes a StatefulSet
 * whose pod index becomes SS_POD_INDEX. */
static void test_keyed(void **state)
{
    (void)state;
    ss_pipeline *p = load("plain", 2);
    p->stages[1].workers = 3;
    p->stages[1].partition_by = strdup("carrier");
    ss_deploy_opts o = {.target = SS_DEPLOY_COMPOSE, .image = "img"};
    int rc;
    char err[512];
    char *t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_non_null(strstr(t, "\"--name\", \"router-2\", \"--partitions\", "
                              "\"3\"]"));
    assert_null(strstr(t, "\"router-1\", \"--partitions\""));
    assert_int_equal(count(t, "\"--partition-by\", \"carrier\""), 2);
    assert_non_null(strstr(t, "\"--stage\", \"reduce\", \"--index\", "
                              "\"3\"]"));
    assert_int_equal(count(t, "\"--index\""), 3);
    free(t);
    o.target = SS_DEPLOY_SWARM;
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_null(strstr(t, "\"--index\""));
    assert_int_equal(count(t, "SS_INDEX: \"{{.Task.Slot}}\""), 1);
    assert_non_null(strstr(t, "SS_NAME: \"reduce-{{.Task.Slot}}\"\n"
                              "      SS_INDEX: \"{{.Task.Slot}}\""));
    assert_non_null(strstr(t, "\"--partitions\", \"3\""));
    free(t);
    free(p->stages[1].partition_by);
    p->stages[1].partition_by = NULL;
    p->stages[1].broadcast = 1;
    o.target = SS_DEPLOY_K8S;
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_non_null(strstr(t, "\"--broadcast\", \"3\""));
    assert_int_equal(count(t, "kind: StatefulSet"), 1);
    assert_non_null(strstr(t, "serviceName: demo-stage-reduce\n"));
    assert_non_null(strstr(t, "clusterIP: None"));
    assert_non_null(strstr(t, "name: SS_POD_INDEX"));
    assert_non_null(strstr(t, "metadata.labels['apps.kubernetes.io/pod-index']"));
    assert_int_equal(count(t, "kind: Deployment"), 4); /* 3 routers, map */
    assert_null(strstr(t, "--max-frame"));
    free(t);
    /* batches larger than a router's default frame (4 MiB): every router
     * gets a --max-frame for a whole one (72 + 8 MiB + 64 KiB + 256) */
    p->batch_size = 8u << 20;
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(count(t, "\"--max-frame\", \"8454472\""), 3);
    free(t);
    ss_pipeline_destroy(&p);
}

/* chain: true (plain mode): one hop, so two routers; the worker runs
 * the next stage with --chain and has both scripts mounted. */
static void test_chain(void **state)
{
    (void)state;
    ss_pipeline *p = load("plain", 2);
    p->stages[1].workers = 2;
    p->chain = 1;
    ss_deploy_opts o = {.target = SS_DEPLOY_SWARM, .image = "img"};
    int rc;
    char err[512];
    char *t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_non_null(strstr(t, "  router-2:\n"));
    assert_null(strstr(t, "  router-3:\n"));
    assert_null(strstr(t, "  stage-reduce:\n"));
    assert_non_null(strstr(t, "\"--to\", \"tcp://router-2:5557\", "
                              "\"--stage\", \"map\", \"--chain\", "
                              "\"reduce=/pipeline/red.lua\"]"));
    assert_non_null(strstr(t, "target: /pipeline/map.lua\n      - source: "
                              "ss-script-2\n        target: "
                              "/pipeline/red.lua\n"));
    assert_non_null(strstr(t, "published: 5558"));
    free(t);
    o.target = SS_DEPLOY_K8S;
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(count(t, "kind: Deployment"), 3); /* 2 routers, map */
    assert_non_null(strstr(t, "\"--chain\", \"reduce=/pipeline/red.lua\"]"));
    free(t);
    /* chaining is plain mode only: enclave stages keep their routers */
    p->chain = 1;
    free(p->security);
    p->security = strdup("enclave");
    o = (ss_deploy_opts){.target = SS_DEPLOY_SWARM, .image = "img",
                         .keys = "keys", .keyservice = "tcp://o:5599"};
    t = gen(p, &o, &rc, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_non_null(strstr(t, "  router-3:\n"));
    assert_null(strstr(t, "\"--chain\""));
    free(t);
    ss_pipeline_destroy(&p);
}

/* What `sstream run --on swarm` adds: every service reports to the
 * monitor (SS_CONTROL), with its own control pair as secrets in
 * /run/secrets/control; a stage's replicas share their stage's. */
static void test_swarm_control(void **state)
{
    (void)state;
    ss_pipeline *p = load("plain", 2);
    static const char *const who[] = {"router-1", "router-2", "router-3",
                                      "source", "map", "reduce"};
    for (size_t i = 0; i < sizeof who / sizeof *who; i++) {
        char d[64];
        snprintf(d, sizeof d, "ctl/%s", who[i]);
        mkdir("ctl", 0700);
        mkdir(d, 0700);
        static const char *const files[] = {"curve-client.key",
                                            "curve-client.pub",
                                            "monitor.pub"};
        for (size_t k = 0; k < 3; k++) {
            char path[128];
            snprintf(path, sizeof path, "%s/%s", d, files[k]);
            write_file(path, files[k], 0600);
        }
    }
    ss_deploy_opts o = {.target = SS_DEPLOY_SWARM, .image = "img:1",
                        .control = "tcp://10.1.2.3:40000",
                        .control_keys = "ctl"};
    int rc;
    char err[512];
    char *y = gen(p, &o, &rc, err, sizeof err);
    assert_non_null(y);
    /* 3 routers, 2 stages, the source */
    assert_int_equal(count(y, "SS_CONTROL: \"tcp://10.1.2.3:40000\""), 6);
    assert_int_equal(count(y, "SS_CONTROL_KEYS: \"/run/secrets/control\""),
                     6);
    assert_int_equal(count(y, "target: /run/secrets/control/curve-client.key"),
                     6);
    assert_non_null(strstr(y, "  ss-ctl-map-curve-client-key:\n    file: "));
    assert_non_null(strstr(y, "ctl/map/curve-client.key\""));
    assert_non_null(strstr(y, "  ss-ctl-router-3-monitor-pub:\n"));
    assert_null(strstr(y, "ss-ctl-sink")); /* the sink stays home */
    free(y);
    /* a missing control file is named */
    unlink("ctl/source/monitor.pub");
    y = gen(p, &o, &rc, err, sizeof err);
    assert_null(y);
    assert_non_null(strstr(err, "ctl/source/monitor.pub"));
    /* without a monitor, nothing of it */
    o.control = o.control_keys = NULL;
    y = gen(p, &o, &rc, err, sizeof err);
    assert_non_null(y);
    assert_null(strstr(y, "SS_CONTROL"));
    assert_null(strstr(y, "secrets:"));
    free(y);
    ss_pipeline_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_keys),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swarm_enclave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_k8s, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swarm_control, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
