/*
 * ss_enclave_child.c - the sandbox enclave process (`sstream enclave`):
 * measures itself, loads the stage in a sandboxed capped Lua state, signs
 * its report, locks itself down (non-dumpable, no core, rlimits, seccomp
 * allow list) and serves the host's requests over the shared-memory
 * channel (ss_enclave_chan.h).
 */
#include "core/ss_buf.h"
#include "core/ss_bundle.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "crypto/ss_attest.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_keyservice.h"
#include "enclave/ss_enclave_chan.h"
#include "enclave/ss_enclave_core.h"
#include "wire/ss_partition.h"
#include "securestreams.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct child {
    void *base; /* the shared region */
    ss_chan_ctl *ctl;
    ss_ecore core;
    ss_buf in;       /* private copy of the input */
    ss_buf store;    /* SS_CHAN_PUSH's private store (benchmarks) */
    ss_buf priv[2];  /* outputs are built and sealed here, in private
                        memory, and copied out once finished */
    uint8_t *box_pk; /* X25519 pair for key provisioning */
    uint8_t *box_sk; /* sodium_malloc'd; freed once provisioned */
    ss_chan_spin spin; /* waiting for requests */
    int test_syscall;  /* test builds (SS_TEST_HOOKS) only: 1 socket(), 2 exec */
} child;

/* Output placement: private memory. Sealing reads back what it wrote
 * (the header as associated data, the nonce): in the shared areas the
 * host could change them while the enclave seals, e.g. write its own
 * nonce so that two batches share a keystream. So the enclave seals here
 * and copies the finished ciphertext out (copy_out). */
static void *child_reserve(void *ctx, int which, size_t n)
{
    child *c = ctx;
    if (n > SS_CHAN_OUT_CAP / 2)
        return NULL;
    ss_buf *b = &c->priv[which ? 1 : 0];
    ss_buf_reset(b);
    if (ss_buf_grow(b, n))
        return NULL;
    b->len = n;
    return b->data;
}

/* Copies the finished output (n bytes of priv[which]) to the shared
 * area; the host sees only complete ciphertext. */
static void copy_out(child *c, int which, size_t n)
{
    ss_buf *b = &c->priv[which ? 1 : 0];
    if (n && n <= b->len && n <= SS_CHAN_OUT_CAP / 2)
        memcpy(ss_chan_out(c->base, which), b->data, n);
}

/* Installs the system call allow list; anything else kills the process
 * (SIGSYS). Returns 0 or a negative code. */
static int child_seccomp(void)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!f)
        return SS_ENOMEM;
    int rc = seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH,
                              SCMP_ACT_KILL_PROCESS);
    static const int plain[] = {
        SCMP_SYS(futex),        SCMP_SYS(exit),
        SCMP_SYS(exit_group),   SCMP_SYS(rt_sigreturn),
        SCMP_SYS(restart_syscall), SCMP_SYS(sched_yield),
        SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday), SCMP_SYS(time),
        SCMP_SYS(brk),          SCMP_SYS(munmap),
        SCMP_SYS(mremap),       SCMP_SYS(madvise),
        SCMP_SYS(mlock),        SCMP_SYS(munlock),
        SCMP_SYS(getrandom),    SCMP_SYS(getrusage),
        /* the script budget's CPU timer, made while the stage loaded
         * (ss_stage.c): armed around each batch; its signal returns by
         * rt_sigreturn */
        SCMP_SYS(timer_settime),
    };
    for (size_t i = 0; !rc && i < sizeof plain / sizeof plain[0]; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, plain[i], 0);
    /* memory, never executable */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* log lines (stderr) and print (stdout); no other descriptor */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                              SCMP_A0(SCMP_CMP_EQ, 2));
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                              SCMP_A0(SCMP_CMP_EQ, 1));
    if (!rc)
        rc = seccomp_load(f);
    seccomp_release(f);
    return rc ? SS_EIO : 0;
}

/* Answers the current request. */
static void child_reply(child *c, uint32_t seq, int status, const char *err,
                        int rusage)
{
    ss_chan_ctl *ctl = c->ctl;
    ctl->status = status;
    if (status && err)
        snprintf(ctl->err, sizeof ctl->err, "%s", err);
    else
        ctl->err[0] = '\0';
    struct rusage ru;
    if (rusage && getrusage(RUSAGE_SELF, &ru) == 0)
        ctl->peak_rss_kb = ru.ru_maxrss;
    ss_chan_ring(&ctl->resp, &ctl->resp_sleeping, seq);
}

/* Opens the sealed data key with the provisioning pair. */
static int child_provision(child *c, const uint8_t *in, size_t n, char *err,
                           size_t errlen)
{
    if (!c->core.encrypted || !c->box_sk) {
        snprintf(err, errlen, "no key expected (or already provisioned)");
        return SS_EINVAL;
    }
    if (n != crypto_box_SEALBYTES + SS_KEYSERVICE_RELEASE_BYTES) {
        snprintf(err, errlen, "sealed key has the wrong size");
        return SS_ECRYPTO;
    }
    uint8_t *blob = sodium_malloc(SS_KEYSERVICE_RELEASE_BYTES);
    if (!blob)
        return SS_ENOMEM;
    int rc = SS_ECRYPTO;
    if (crypto_box_seal_open(blob, in, n, c->box_pk, c->box_sk) == 0) {
        ss_key *k = NULL;
        rc = ss_key_import(blob, SS_KEY_BLOB_BYTES, &k);
        if (!rc) {
            ss_ecore_set_key(&c->core, k);
            /* the only restore this enclave may do: the key service's */
            const uint8_t *gb = blob + SS_KEY_BLOB_BYTES;
            ss_restore_grant g = {ss_get_u32(gb), ss_get_u32(gb + 4),
                                  ss_get_u32(gb + 8), ss_get_u32(gb + 12)};
            ss_ecore_set_restore_grant(&c->core, &g);
        } else
            snprintf(err, errlen, "provisioned key is not usable here");
    } else {
        snprintf(err, errlen, "sealed key does not open with this "
                              "enclave's key");
    }
    sodium_free(blob);
    if (!rc) {
        sodium_free(c->box_sk);
        c->box_sk = NULL;
    }
    return rc;
}

#ifdef SS_TEST_HOOKS
/* Test hooks (test builds only: SS_ENCLAVE_TEST_SYSCALL): a system call
 * the seccomp filter forbids, so that the kernel kills this process with
 * SIGSYS. */
static void forbidden_call(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    (void)s;
}

/* What a JIT does with the machine code it made (LuaJIT: a read-write
 * mapping, then mprotect to read-execute): the filter allows the mapping
 * and must kill the process at the mprotect (SS_ENCLAVE_TEST_SYSCALL=exec;
 * an SGX1 enclave cannot make a page executable after start either). */
static void jit_like_mapping(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    *(volatile unsigned char *)p = 0xc3; /* ret */
    (void)mprotect(p, 4096, PROT_READ | PROT_EXEC);
    munmap(p, 4096);
}
#endif

/* Handles one request; returns 1 to quit. */
static int child_handle(child *c, uint32_t seq)
{
    ss_chan_ctl *ctl = c->ctl;
    char err[1024] = "";
    /* read the host's words once */
    uint32_t op = __atomic_load_n(&ctl->op, __ATOMIC_RELAXED);
    uint64_t n = __atomic_load_n(&ctl->in_len, __ATOMIC_RELAXED);
    if (op == SS_CHAN_QUIT) {
        child_reply(c, seq, 0, NULL, 0);
        return 1;
    }
    if (n > SS_CHAN_IN_CAP) {
        child_reply(c, seq, SS_EINVAL, "input larger than the channel", 0);
        return 0;
    }
    if (op == SS_CHAN_PUSH) { /* one copy: shared memory -> private */
        int prc = n ? ss_buf_append(&c->store, ss_chan_in(c->base), n) : 0;
        ctl->msg_len = 0;
        child_reply(c, seq, prc, prc ? "out of memory for the store" : NULL,
                    0);
        return 0;
    }
    if (op == SS_CHAN_DIGEST) {
        crypto_hash_sha256(ss_chan_out(c->base, 0),
                           (const unsigned char *)c->store.data,
                           c->store.len);
        ctl->msg_len = crypto_hash_sha256_BYTES;
        ctl->counts[0] = c->store.len;
        ss_buf_reset(&c->store); /* keeps the memory for the next run */
        child_reply(c, seq, 0, NULL, 0);
        return 0;
    }
    ss_buf_reset(&c->in);
    if (n && ss_buf_append(&c->in, ss_chan_in(c->base), n)) {
        child_reply(c, seq, SS_ENOMEM, "out of memory for the input",
                    0);
        return 0;
    }
    ctl->msg_len = ctl->rej_len = 0;
    ctl->nrejects = 0;
    int rc = 0;
    ss_ecore_res res;
    memset(&res, 0, sizeof res);
    switch (op) {
    case SS_CHAN_PING:
        break;
    case SS_CHAN_ECHO:
        if (n > SS_CHAN_OUT_CAP / 2) {
            rc = SS_ETOOBIG;
            break;
        }
        memcpy(ss_chan_out(c->base, 0), c->in.data, n);
        ctl->msg_len = n;
        break;
    case SS_CHAN_PROVISION:
        rc = child_provision(c, (const uint8_t *)c->in.data, n, err,
                             sizeof err);
        break;
    case SS_CHAN_CALL:
    case SS_CHAN_COMPLETE:
    case SS_CHAN_REJECT:
#ifdef SS_TEST_HOOKS
        if (c->test_syscall && op != SS_CHAN_REJECT) {
            if (c->test_syscall == 2)
                jit_like_mapping(); /* SS_ENCLAVE_TEST_SYSCALL=exec */
            else
                forbidden_call(); /* test hook (SS_ENCLAVE_TEST_SYSCALL=1) */
        }
#endif
        if (c->core.encrypted && !c->core.key) {
            rc = SS_EDENIED;
            snprintf(err, sizeof err, "no data key: the enclave was not "
                                      "provisioned");
            break;
        }
        if (op == SS_CHAN_CALL) {
            rc = ss_ecore_call(&c->core, c->in.data, n, child_reserve, c,
                               &res, err, sizeof err);
        } else if (op == SS_CHAN_REJECT) {
            rc = ss_ecore_reject(&c->core, c->in.data, n, child_reserve, c,
                                 &res, err, sizeof err);
        } else {
            ss_hdr fh;
            const char *why;
            if (n != SS_HDR_SIZE ||
                ss_hdr_decode(c->in.data, n, &fh, &why) != 0) {
                /* only the header matters: len must be 0 */
                rc = SS_EPROTO;
                snprintf(err, sizeof err, "bad final header");
                break;
            }
            rc = ss_ecore_complete(&c->core, &fh, child_reserve, c, &res,
                                   err, sizeof err);
        }
        copy_out(c, 0, res.msg_len);
        copy_out(c, 1, res.rej_len);
        ctl->msg_len = res.msg_len;
        ctl->rej_len = res.rej_len;
        ctl->nrejects = res.nrejects;
        ctl->counts[0] = res.delta.in;
        ctl->counts[1] = res.delta.passed;
        ctl->counts[2] = res.delta.dropped;
        ctl->counts[3] = res.delta.rejected;
        ctl->counts[4] = res.delta.out;
        ctl->counts[5] = res.delta.out_bytes;
        for (size_t k = 1; k < res.nstages && k < SS_CHAIN_MAX; k++) {
            const ss_stage_counts *d = &res.stages[k];
            uint64_t *cc = ctl->chain_counts[k - 1];
            cc[0] = d->in;
            cc[1] = d->passed;
            cc[2] = d->dropped;
            cc[3] = d->rejected;
            cc[4] = d->out;
            cc[5] = d->out_bytes;
        }
        ctl->mem_peak = res.mem_peak;
        break;
    case SS_CHAN_RESTORE_KEYED: {
        /* epoch, from, slot, slots, then from x (length, blob): every
         * old worker's snapshot, opened and checked here */
        const uint8_t *p = (const uint8_t *)c->in.data;
        if (c->core.encrypted && !c->core.key) {
            rc = SS_EDENIED;
            snprintf(err, sizeof err, "no data key: the enclave was not "
                                      "provisioned");
            break;
        }
        ss_restore_grant r = {0, 0, 0, 0};
        if (n >= 16)
            r = (ss_restore_grant){ss_get_u32(p), ss_get_u32(p + 4),
                                   ss_get_u32(p + 8), ss_get_u32(p + 12)};
        if (n < 16 || !r.from || r.from > SS_PARTITIONS) {
            rc = SS_EPROTO;
            snprintf(err, sizeof err, "bad rescale restore request");
            break;
        }
        const void **blobs = calloc(r.from, sizeof *blobs);
        size_t *lens = calloc(r.from, sizeof *lens);
        size_t off = 16;
        rc = blobs && lens ? 0 : SS_ENOMEM;
        for (uint32_t j = 0; !rc && j < r.from; j++) {
            if (n - off < 4 || n - off - 4 < ss_get_u32(p + off)) {
                rc = SS_EPROTO;
                snprintf(err, sizeof err, "bad rescale restore request "
                         "(snapshot %u of %u truncated)", j + 1, r.from);
                break;
            }
            lens[j] = ss_get_u32(p + off);
            blobs[j] = p + off + 4;
            off += 4 + lens[j];
        }
        if (!rc && off != n) {
            rc = SS_EPROTO;
            snprintf(err, sizeof err, "bad rescale restore request (bytes "
                     "after its snapshots)");
        }
        if (!rc)
            rc = ss_ecore_restore_keyed(&c->core, &r, blobs, lens, err,
                                        sizeof err);
        free(blobs);
        free(lens);
        break;
    }
    case SS_CHAN_SNAPSHOT:
    case SS_CHAN_RESTORE: {
        /* the state is taken and sealed here, with the data key; a
         * restored blob is opened and checked here too */
        if (c->core.encrypted && !c->core.key) {
            rc = SS_EDENIED;
            snprintf(err, sizeof err, "no data key: the enclave was not "
                                      "provisioned");
            break;
        }
        if (n < 4) {
            rc = SS_EPROTO;
            snprintf(err, sizeof err, "bad checkpoint request");
            break;
        }
        uint32_t epoch = ss_get_u32((const uint8_t *)c->in.data);
        if (op == SS_CHAN_SNAPSHOT) {
            size_t len = 0;
            rc = ss_ecore_snapshot(&c->core, epoch, child_reserve, c, &len,
                                   err, sizeof err);
            if (rc == 0) {
                copy_out(c, 0, len);
                ctl->msg_len = len;
            }
        } else {
            rc = ss_ecore_restore(&c->core, epoch, c->in.data + 4, n - 4,
                                  err, sizeof err);
        }
        break;
    }
    default:
        rc = SS_EINVAL;
        snprintf(err, sizeof err, "unknown request %u", op);
    }
    if (c->core.encrypted && c->in.data)
        sodium_memzero(c->in.data, c->in.len);
    child_reply(c, seq, rc, err[0] ? err : ss_strerror(rc),
                op != SS_CHAN_PING && op != SS_CHAN_ECHO);
    return 0;
}

/* Fails the start-up request with a reason, then exits. */
static int child_fail(child *c, int rc, const char *err)
{
    if (c->ctl)
        child_reply(c, 1, rc, err, 0);
    fprintf(stderr, "sstream enclave: %s\n", err);
    return 1;
}

/* See ss_enclave_chan.h. */
int ss_enclave_child_main(int argc, char **argv)
{
    child c;
    memset(&c, 0, sizeof c);
    ss_buf_init(&c.in);
    ss_buf_init(&c.store);
    ss_buf_init(&c.priv[0]);
    ss_buf_init(&c.priv[1]);
    const char *name = "enclave", *stage = NULL, *script = NULL;
    const char *keys = NULL, *shm_path = NULL, *partition_by = NULL;
    uint64_t broadcast = 0;
    const char *chain[SS_CHAIN_MAX];
    size_t nchain = 0;
    uint64_t fd = SS_CHAN_FD, mem = SS_ENCLAVE_CORE_DEFAULT_MEM,
             spin_us = 50, max_insns = SS_STAGE_DEFAULT_MAX_INSTRUCTIONS,
             run = 0;
    int encrypted = 0, echo = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--encrypted")) {
            encrypted = 1;
            continue;
        } else if (!strcmp(a, "--echo")) {
            echo = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "sstream enclave: bad argument '%s'\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--shm-fd"))
            bad = ss_parse_u64(v, 0, 1 << 20, 0, &fd);
        else if (!strcmp(a, "--shm-path"))
            shm_path = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--run"))
            bad = ss_parse_run(v, &run);
        else if (!strcmp(a, "--stage"))
            stage = v;
        else if (!strcmp(a, "--script"))
            script = v;
        else if (!strcmp(a, "--keys"))
            keys = v;
        else if (!strcmp(a, "--chain"))
            bad = nchain >= SS_CHAIN_MAX - 1 || !(chain[nchain++] = v);
        else if (!strcmp(a, "--partition-by"))
            bad = !ss_partition_field_ok(partition_by = v);
        else if (!strcmp(a, "--broadcast"))
            bad = ss_parse_u64(v, 1, 64, 0, &broadcast);
        else if (!strcmp(a, "--mem-limit"))
            bad = ss_parse_u64(v, 1 << 20, (uint64_t)1 << 40, 1, &mem);
        else if (!strcmp(a, "--spin-us"))
            bad = ss_parse_u64(v, 0, 1000000, 0, &spin_us);
        else if (!strcmp(a, "--max-instructions"))
            bad = ss_parse_u64(v, SS_STAGE_MIN_MAX_INSTRUCTIONS,
                               SS_STAGE_MAX_MAX_INSTRUCTIONS, 0, &max_insns);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "sstream enclave: bad argument '%s %s'\n", a, v);
            return 2;
        }
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    ss_log_set_component(name);
    c.spin.limit_ns = spin_us * 1000;

    /* the channel: fd 3 from the sandbox host, or a shared file (the
     * untrusted_shm mount under Gramine) */
    if (shm_path) {
        int sfd = open(shm_path, O_RDWR | O_CLOEXEC);
        if (sfd < 0) {
            fprintf(stderr, "sstream enclave: cannot open %s: %s\n",
                    shm_path, strerror(errno));
            return 1;
        }
        fd = (uint64_t)sfd;
    }
    c.base = mmap(NULL, SS_CHAN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  (int)fd, 0);
    if (c.base == MAP_FAILED) {
        fprintf(stderr, "sstream enclave: cannot map the channel: %s\n",
                strerror(errno));
        return 1;
    }
    close((int)fd);
    c.ctl = c.base;
    if (c.ctl->magic != SS_CHAN_MAGIC || c.ctl->version != SS_CHAN_VERSION)
        return child_fail(&c, SS_EPROTO, "not an enclave channel");
    if (sodium_init() < 0)
        return child_fail(&c, SS_ENOMEM, "libsodium failed to start");

    /* measure: this program, the script as read once, the config */
    char cfg[512], err[1024] = "", output[80];
    if (ss_partition_spec(output, sizeof output, partition_by,
                          (uint32_t)broadcast))
        return child_fail(&c, SS_EINVAL, "--partition-by and --broadcast "
                                         "exclude each other");
    if (!stage || ss_attest_config(cfg, sizeof cfg, stage, (size_t)mem,
                                   max_insns, output, encrypted, echo) < 0)
        return child_fail(&c, SS_EINVAL, "bad or missing --stage");
    ss_ecore_scripts sc; /* the scripts and their local modules */
    memset(&sc, 0, sizeof sc);
    ss_buf measured;
    ss_buf_init(&measured);
    int rc;
    if (!echo) {
        if (!script)
            return child_fail(&c, SS_EINVAL, "missing --script");
        rc = ss_ecore_scripts_load(&sc, stage, script, chain, nchain, err,
                                   sizeof err);
        if (rc)
            return child_fail(&c, rc, err);
        if (ss_ecore_scripts_measured(&sc, &measured))
            return child_fail(&c, SS_ENOMEM, "out of memory");
    } else if (nchain) {
        return child_fail(&c, SS_EINVAL, "--echo runs no stage to chain");
    }
    rc = ss_measure_program("/proc/self/exe", measured.data, measured.len,
                            cfg, c.ctl->measurement);
    ss_buf_release(&measured);
    if (rc)
        return child_fail(&c, rc, "cannot read /proc/self/exe");

    /* the stages, from exactly the measured bytes */
    ss_stage_opts so;
    memset(&so, 0, sizeof so);
    so.script_path = NULL;
    so.name = name;
    so.stage = stage;
    so.mem_limit = (size_t)mem;
    so.max_instructions = max_insns;
    so.sandboxed = 1;
    so.in_enclave = 1;
    so.rejects_sealed = encrypted; /* the core seals them (REJECT) */
    so.host_errors = 1; /* a failing event is rejected, the rest goes on */
    tzset(); /* os.date must not open /etc/localtime later */
    if (echo) {
        so.script_src = "";
        rc = ss_ecore_init(&c.core, &so, encrypted, echo, err, sizeof err);
    } else {
        rc = ss_ecore_init_chain(&c.core, &so, &sc, encrypted, err,
                                 sizeof err);
    }
    ss_ecore_scripts_release(&sc);
    if (rc)
        return child_fail(&c, rc, err);
    c.ctl->nstages = (uint32_t)ss_ecore_nstages(&c.core);
    c.ctl->stateful_bits = 0;
    for (size_t k = 0; k < ss_ecore_nstages(&c.core) && k < 64; k++)
        if (ss_ecore_stage_stateful(&c.core, k))
            c.ctl->stateful_bits |= (uint64_t)1 << k;
    ss_ecore_set_run(&c.core, run, name);
    ss_ecore_set_output(&c.core, partition_by, (uint32_t)broadcast);
    int stateful = 0, sgx = 0;
    ss_ecore_info(&c.core, c.ctl->from, c.ctl->to, sizeof c.ctl->from,
                  &stateful, &sgx);
    c.ctl->stateful = (uint32_t)stateful;
    c.ctl->uses_sgx = (uint32_t)sgx;

    /* the report: fresh X25519 pair, signed with the platform key */
    if (keys) {
        c.box_pk = sodium_malloc(crypto_box_PUBLICKEYBYTES);
        c.box_sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
        uint8_t *psk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
        if (!c.box_pk || !c.box_sk || !psk)
            return child_fail(&c, SS_ENOMEM, "out of locked memory");
        crypto_box_keypair(c.box_pk, c.box_sk);
        rc = ss_keys_load_platform_sk(keys, psk, err, sizeof err);
        if (rc)
            return child_fail(&c, rc, err);
        ss_report r;
        memset(&r, 0, sizeof r);
        memcpy(r.measurement, c.ctl->measurement, SS_MEASUREMENT_BYTES);
        memcpy(r.pubkey, c.box_pk, 32);
        snprintf(r.stage, sizeof r.stage, "%s", stage);
        snprintf(r.name, sizeof r.name, "%s", name);
        r.run = run; /* the key is released for this run only */
        ss_report_sign(&r, psk, c.ctl->report);
        sodium_free(psk);
        c.ctl->has_report = 1;
    } else if (encrypted) {
        return child_fail(&c, SS_EINVAL, "--encrypted needs --keys (the "
                                         "platform key signs the report)");
    }
#ifdef SS_TEST_HOOKS
    const char *hook = ss_env("SS_ENCLAVE_TEST_SYSCALL", "0");
    c.test_syscall = !strcmp(hook, "1") ? 1 : !strcmp(hook, "exec") ? 2 : 0;
    if (!c.test_syscall && strcmp(hook, "0") != 0 && *hook) {
        c.core.die_on = hook; /* the environment outlives the loop */
        c.core.die = forbidden_call;
    }
#endif

    /* lock down: no core dumps, no ptrace by the host's user, capped
     * data segment, no descriptors but stdio, system call allow list */
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0);
    rl.rlim_cur = rl.rlim_max = (rlim_t)mem + 4ull * SS_BATCH_MAX_SIZE +
                                (64ull << 20);
    setrlimit(RLIMIT_DATA, &rl);
    close_range(3, ~0u, 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (child_seccomp() != 0)
        return child_fail(&c, SS_EIO, "cannot install the seccomp filter");

    child_reply(&c, 1, 0, NULL, 1);
    uint32_t seen = 1;
    for (;;) {
        uint64_t t0 = ss_now_ns();
        while (!ss_chan_wait(&c.ctl->req, &c.ctl->req_sleeping, seen,
                             ss_chan_spin_ns(&c.spin), 1000))
            ;
        ss_chan_spin_record(&c.spin, ss_now_ns() - t0);
        seen = atomic_load_explicit(&c.ctl->req, memory_order_acquire);
        if (child_handle(&c, seen))
            break;
    }
    ss_ecore_release(&c.core);
    if (c.box_sk)
        sodium_free(c.box_sk);
    return 0;
}
