/*
 * ss_keyservice.c - attestation-gated release of the data key (see
 * ss_keyservice.h).
 */
#include "crypto/ss_keyservice.h"
#include "core/ss_log.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KS_MAX_STAGES 256
#define KS_MAX_GRANTS 4096

typedef struct ks_grant {
    char worker[SS_REPORT_NAME_MAX];
    ss_restore_grant g;
} ks_grant;

typedef struct ks_expect {
    char stage[SS_REPORT_NAME_MAX];
    uint8_t m[SS_MEASUREMENT_BYTES];
} ks_expect;

struct ss_keyservice {
    ss_key *key;
    uint8_t platform_pk[32];
    ks_expect *exp;
    size_t nexp;
    uint64_t run; /* 0: releases are not bound to a run */
    ks_grant *grants; /* restore grants by worker (ss_keyservice_set_restore) */
    size_t ngrants;
    /* the grants are set by the run's coordinator while the key service
     * serves on its own thread */
    pthread_mutex_t grants_mu;
    int mu_ok;
};

/* See ss_keyservice.h. */
int ss_keyservice_set_restore(ss_keyservice *ks, const char *worker,
                              uint32_t epoch)
{
    ss_restore_grant g = {epoch, 0, 0, 0};
    return ss_keyservice_set_grant(ks, worker, &g);
}

/* See ss_keyservice.h. */
int ss_keyservice_set_grant(ss_keyservice *ks, const char *worker,
                            const ss_restore_grant *gr)
{
    if (!worker || !worker[0] || strlen(worker) >= SS_REPORT_NAME_MAX)
        return SS_EINVAL;
    if (gr->from && (gr->from > SS_PARTITIONS || gr->slots > SS_PARTITIONS ||
                     !gr->slot || gr->slot > gr->slots || !gr->epoch))
        return SS_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&ks->grants_mu);
    size_t i = 0;
    while (i < ks->ngrants && strcmp(ks->grants[i].worker, worker))
        i++;
    if (i < ks->ngrants) {
        ks->grants[i].g = *gr;
    } else if (ks->ngrants == KS_MAX_GRANTS) {
        rc = SS_ENOMEM;
    } else {
        if (!ks->grants)
            ks->grants = calloc(KS_MAX_GRANTS, sizeof *ks->grants);
        if (!ks->grants) {
            rc = SS_ENOMEM;
        } else {
            ks_grant *g = &ks->grants[ks->ngrants++];
            snprintf(g->worker, sizeof g->worker, "%s", worker);
            g->g = *gr;
        }
    }
    pthread_mutex_unlock(&ks->grants_mu);
    return rc;
}

/* The restore grant of worker (all 0: none). */
static ss_restore_grant grant_of(ss_keyservice *ks, const char *worker)
{
    ss_restore_grant g = {0, 0, 0, 0};
    pthread_mutex_lock(&ks->grants_mu);
    for (size_t i = 0; i < ks->ngrants; i++)
        if (!strcmp(ks->grants[i].worker, worker)) {
            g = ks->grants[i].g;
            break;
        }
    pthread_mutex_unlock(&ks->grants_mu);
    return g;
}

/* See ss_keyservice.h. */
void ss_keyservice_set_run(ss_keyservice *ks, uint64_t run) { ks->run = run; }

/* See ss_keyservice.h. */
int ss_keyservice_new(const char *key_dir, ss_keyservice **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0)
        return SS_ENOMEM;
    ss_keyservice *ks = calloc(1, sizeof *ks);
    if (!ks)
        return SS_ENOMEM;
    if (pthread_mutex_init(&ks->grants_mu, NULL) != 0) {
        free(ks);
        return SS_ENOMEM;
    }
    ks->mu_ok = 1;
    int rc = ss_keys_load_data(key_dir, &ks->key, err, errlen);
    if (!rc)
        rc = ss_keys_load_platform_pk(key_dir, ks->platform_pk, err, errlen);
    if (rc) {
        ss_keyservice_destroy(&ks);
        return rc;
    }
    ks->exp = calloc(KS_MAX_STAGES, sizeof *ks->exp);
    if (!ks->exp) {
        ss_keyservice_destroy(&ks);
        return SS_ENOMEM;
    }
    *out = ks;
    return 0;
}

/* See ss_keyservice.h. */
void ss_keyservice_destroy(ss_keyservice **p)
{
    if (!p || !*p)
        return;
    ss_key_destroy(&(*p)->key);
    free((*p)->exp);
    free((*p)->grants);
    if ((*p)->mu_ok)
        pthread_mutex_destroy(&(*p)->grants_mu);
    free(*p);
    *p = NULL;
}

/* The manifest entry of stage, or NULL. */
static ks_expect *find(const ss_keyservice *ks, const char *stage)
{
    for (size_t i = 0; i < ks->nexp; i++)
        if (!strcmp(ks->exp[i].stage, stage))
            return &ks->exp[i];
    return NULL;
}

/* See ss_keyservice.h. */
int ss_keyservice_expect(ss_keyservice *ks, const char *stage,
                         const uint8_t m[SS_MEASUREMENT_BYTES])
{
    char cfg[512];
    if (ss_attest_config(cfg, sizeof cfg, stage, 0, 0, NULL, 0, 0) < 0)
        return SS_EINVAL; /* validates the name */
    ks_expect *x = find(ks, stage);
    if (!x) {
        if (ks->nexp == KS_MAX_STAGES)
            return SS_ENOMEM;
        x = &ks->exp[ks->nexp++];
        snprintf(x->stage, sizeof x->stage, "%s", stage);
    }
    memcpy(x->m, m, SS_MEASUREMENT_BYTES);
    return 0;
}

/* See ss_keyservice.h. */
int ss_keyservice_expect_stage(ss_keyservice *ks, const char *stage,
                               const char *program, const char *script,
                               size_t mem_limit, uint64_t max_instructions,
                               int encrypted, char *err, size_t errlen)
{
    return ss_keyservice_expect_stage_out(ks, stage, program, script,
                                          mem_limit, max_instructions, NULL,
                                          encrypted, err, errlen);
}

/* See ss_keyservice.h. */
int ss_keyservice_expect_stage_out(ss_keyservice *ks, const char *stage,
                                   const char *program, const char *script,
                                   size_t mem_limit,
                                   uint64_t max_instructions,
                                   const char *output, int encrypted,
                                   char *err, size_t errlen)
{
    char cfg[512];
    if (ss_attest_config(cfg, sizeof cfg, stage, mem_limit, max_instructions,
                         output, encrypted, 0) < 0) {
        snprintf(err, errlen, "bad stage name '%s'", stage);
        return SS_EINVAL;
    }
    uint8_t m[SS_MEASUREMENT_BYTES];
    int rc = ss_measure_files(program, script, cfg, m, err, errlen);
    return rc ? rc : ss_keyservice_expect(ks, stage, m);
}

/* See ss_keyservice.h. */
int ss_keyservice_expect_chain(ss_keyservice *ks, const char *program,
                               const char *const *scripts,
                               const char *const *stages, size_t n,
                               size_t mem_limit, uint64_t max_instructions,
                               const char *output, int encrypted, char *err,
                               size_t errlen)
{
    char cfg[512];
    if (n == 0 || ss_attest_config(cfg, sizeof cfg, stages[0], mem_limit,
                                   max_instructions, output, encrypted,
                                   0) < 0) {
        snprintf(err, errlen, "bad stage name '%s'", n ? stages[0] : "");
        return SS_EINVAL;
    }
    uint8_t m[SS_MEASUREMENT_BYTES];
    int rc = ss_measure_chain_files(program, scripts, stages, n, cfg, m, err,
                                    errlen);
    return rc ? rc : ss_keyservice_expect(ks, stages[0], m);
}

/* See ss_keyservice.h. */
int ss_keyservice_load_manifest(ss_keyservice *ks, const char *path,
                                char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open manifest %s: %s", path,
                 strerror(errno));
        return errno == ENOENT ? SS_ENOTFOUND : SS_EIO;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char stage[128], hex[128];
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        uint8_t m[SS_MEASUREMENT_BYTES];
        size_t bl = 0;
        if (sscanf(line, "%127s %127s", stage, hex) != 2 ||
            strlen(hex) != 2 * SS_MEASUREMENT_BYTES ||
            sodium_hex2bin(m, sizeof m, hex, strlen(hex), NULL, &bl,
                           NULL) != 0 ||
            bl != sizeof m || ss_keyservice_expect(ks, stage, m) != 0) {
            snprintf(err, errlen, "%s:%d: expected '<stage> <64 hex "
                                  "digits>'", path, lineno);
            rc = SS_EINVAL;
        }
    }
    fclose(f);
    return rc;
}

/* See ss_keyservice.h. */
int ss_keyservice_write_manifest(const ss_keyservice *ks, FILE *f)
{
    fprintf(f, "# sstream enclave manifest: <stage> <sha-256 measurement>\n");
    for (size_t i = 0; i < ks->nexp; i++) {
        char hex[2 * SS_MEASUREMENT_BYTES + 1];
        ss_measurement_hex(ks->exp[i].m, hex);
        fprintf(f, "%s %s\n", ks->exp[i].stage, hex);
    }
    return ferror(f) ? SS_EIO : 0;
}

/* See ss_keyservice.h. */
int ss_keyservice_request(ss_keyservice *ks, const void *report, size_t n,
                          ss_buf *sealed, char *err, size_t errlen)
{
    return ss_keyservice_request_as(ks, report, n, NULL, sealed, err,
                                    errlen);
}

/* See ss_keyservice.h. */
int ss_keyservice_request_as(ss_keyservice *ks, const void *report,
                             size_t n, const char *peer, ss_buf *sealed,
                             char *err, size_t errlen)
{
    ss_report r;
    int rc = ss_report_verify(report, n, ks->platform_pk, &r);
    if (rc == SS_EDENIED) {
        snprintf(err, errlen, "key service: the report is not signed by "
                              "this pipeline's platform key: refusing key");
        ss_warn("%s", err);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "key service: malformed attestation report: "
                              "refusing key");
        ss_warn("%s", err);
        return rc;
    }
    char hex[2 * SS_MEASUREMENT_BYTES + 1];
    ss_measurement_hex(r.measurement, hex);
    if (peer && strcmp(peer, r.name) != 0) {
        snprintf(err, errlen, "key service: a report of worker '%s' came "
                              "from the connection of '%s': refusing key",
                 r.name, peer);
        ss_warn("%s", err);
        return SS_EDENIED;
    }
    if (ks->run && r.run != ks->run) {
        snprintf(err, errlen, "key service: the report of worker '%s' is "
                              "for run %016llx, not for this run %016llx: "
                              "refusing key", r.name,
                 (unsigned long long)r.run, (unsigned long long)ks->run);
        ss_warn("%s", err);
        return SS_EDENIED;
    }
    const ks_expect *x = find(ks, r.stage);
    if (!x) {
        snprintf(err, errlen, "key service: stage '%s' is not in the "
                              "manifest: refusing key", r.stage);
        ss_warn("%s (worker %s)", err, r.name);
        return SS_EDENIED;
    }
    if (sodium_memcmp(x->m, r.measurement, SS_MEASUREMENT_BYTES) != 0) {
        snprintf(err, errlen, "key service: measurement of stage '%s' does "
                              "not match the manifest (script changed?): "
                              "refusing key", r.stage);
        ss_warn("%s (worker %s, measurement %.16s...)", err, r.name, hex);
        return SS_EDENIED;
    }
    uint8_t *blob = sodium_malloc(SS_KEYSERVICE_RELEASE_BYTES);
    if (!blob)
        return SS_ENOMEM;
    ss_key_export(ks->key, blob);
    ss_restore_grant grant = grant_of(ks, r.name);
    ss_put_u32(blob + SS_KEY_BLOB_BYTES, grant.epoch);
    ss_put_u32(blob + SS_KEY_BLOB_BYTES + 4, grant.from);
    ss_put_u32(blob + SS_KEY_BLOB_BYTES + 8, grant.slot);
    ss_put_u32(blob + SS_KEY_BLOB_BYTES + 12, grant.slots);
    rc = ss_buf_grow(sealed, crypto_box_SEALBYTES +
                                 SS_KEYSERVICE_RELEASE_BYTES);
    if (!rc) {
        crypto_box_seal((uint8_t *)sealed->data + sealed->len, blob,
                        SS_KEYSERVICE_RELEASE_BYTES, r.pubkey);
        sealed->len += crypto_box_SEALBYTES + SS_KEYSERVICE_RELEASE_BYTES;
        sealed->data[sealed->len] = '\0';
    }
    sodium_free(blob);
    if (!rc && grant.epoch && grant.from)
        ss_info("key service: released the data key to worker %s of stage "
                "'%s' (measurement %.16s...), with the restore of epoch %u "
                "from the snapshots of %u workers, as slot %u of %u", r.name,
                r.stage, hex, grant.epoch, grant.from, grant.slot,
                grant.slots);
    else if (!rc && grant.epoch)
        ss_info("key service: released the data key to worker %s of stage "
                "'%s' (measurement %.16s...), with the restore of epoch %u",
                r.name, r.stage, hex, grant.epoch);
    else if (!rc)
        ss_info("key service: released the data key to worker %s of stage "
                "'%s' (measurement %.16s...)", r.name, r.stage, hex);
    return rc;
}

/* See ss_keyservice.h. */
int ss_keyservice_keyfn(void *ctx, const void *report, size_t n,
                        ss_buf *sealed, char *err, size_t errlen)
{
    return ss_keyservice_request(ctx, report, n, sealed, err, errlen);
}

