/*
 * ss_enclave_chan.c - the doorbells of the shared-memory channel (see
 * ss_enclave_chan.h).
 */
#include "enclave/ss_enclave_chan.h"
#include "core/ss_util.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* See ss_enclave_chan.h. */
int ss_chan_wait(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                 uint32_t old, uint64_t spin_ns, int timeout_ms)
{
    if (atomic_load(word) != old)
        return 1;
    if (spin_ns) {
        uint64_t end = ss_now_ns() + spin_ns;
        do {
            for (int i = 0; i < 64; i++) {
                if (atomic_load_explicit(word, memory_order_acquire) != old)
                    return 1;
                cpu_relax();
            }
        } while (ss_now_ns() < end);
    }
    atomic_store(sleeping, 1);
    int changed = 0;
    struct timespec ts = {timeout_ms / 1000,
                          (long)(timeout_ms % 1000) * 1000000L};
    for (;;) {
        if (atomic_load(word) != old) {
            changed = 1;
            break;
        }
        long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, old,
                         timeout_ms > 0 ? &ts : NULL, NULL, 0);
        if (r < 0 && errno == ETIMEDOUT) {
            changed = atomic_load(word) != old;
            break;
        }
    }
    atomic_store(sleeping, 0);
    return changed;
}

/* See ss_enclave_chan.h. */
void ss_chan_ring(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                  uint32_t val)
{
    atomic_store(word, val);
    if (atomic_load(sleeping))
        syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
