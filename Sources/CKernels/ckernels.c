// CPU feature probes, floating-point mode, and OpenBLAS runtime queries.
#include "ckernels.h"
#include <cpuid.h>
#include <xmmintrin.h>
#include <emmintrin.h>
#include <pmmintrin.h>
#include <stdio.h>
#include <unistd.h>
#include <malloc.h>

char *openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int os_saves_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!((c >> 27) & 1)) return 0;  // OSXSAVE
    return (xcr0() & 0x6) == 0x6;    // XMM and YMM state
}

int ck_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!os_saves_avx()) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return fma && ((b >> 5) & 1);
}

int ck_has_x86_64_v3(void) {
    unsigned a, b, c, d;
    if (!ck_has_avx2_fma()) return 0;
    __get_cpuid(1, &a, &b, &c, &d);
    int movbe = (c >> 22) & 1, f16c = (c >> 29) & 1;
    __cpuid_count(7, 0, a, b, c, d);
    int bmi1 = (b >> 3) & 1, bmi2 = (b >> 8) & 1;
    if (__get_cpuid_max(0x80000000, 0) < 0x80000001) return 0;
    __get_cpuid(0x80000001, &a, &b, &c, &d);
    int lzcnt = (c >> 5) & 1;
    return movbe && f16c && bmi1 && bmi2 && lzcnt;
}

#ifdef SEMIDPO_REQUIRE_X86_64_V3
// The Swift modules are compiled for x86-64-v3; this file is not, so the check runs (before main,
// before any Swift code) on any x86-64 CPU and stops with a message instead of SIGILL.
__attribute__((constructor)) static void ck_require_x86_64_v3(void) {
    if (ck_has_x86_64_v3()) return;
    fputs("semidpo: this build needs an x86-64-v3 CPU (AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE), and this CPU "
          "or OS lacks some of them.\nRebuild for baseline x86-64: swift package clean && "
          "SEMIDPO_PORTABLE=1 swift build -c release\n", stderr);
    _exit(70);
}
#endif

int ck_has_avx512(void) {
    unsigned a, b, c, d;
    if (!os_saves_avx()) return 0;
    if ((xcr0() & 0xe6) != 0xe6) return 0;  // opmask, ZMM_Hi256, Hi16_ZMM
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 16) & 1;
}

void ck_enable_ftz_daz(void) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
}

int ck_ftz_daz_enabled(void) {
    return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON &&
           _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
}

int ck_keep_freed_memory(void) {
    // Activations of 0.1–4 MB are allocated and freed hundreds of times per training step. By
    // default glibc serves them with fresh mmaps (its dynamic threshold tops out below the largest)
    // and trims the heap top after each free, so every step page-faults the same memory back in.
    // Serving them from the heap and keeping freed memory (peak RSS does not grow: it is the same
    // peak, reused) removes ~85% of the page faults.
    int ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    ok &= mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    return ok;
}

const char *ck_openblas_corename(void) { return openblas_get_corename(); }
int ck_openblas_threads(void) { return openblas_get_num_threads(); }
void ck_openblas_set_threads(int n) { openblas_set_num_threads(n); }

// ---------------------------------------------------------------------------------------------
// A small task pool for the engine's parallel regions (see ckernels.h). One job at a time: the
// caller publishes (fn, ctx, n) under a new generation in `ticket` = generation << 32 | next index,
// then it and the workers claim indices by compare-and-swap on `ticket` (a claim of a stale
// generation fails, so nobody runs a task with another job's fields) and count finished tasks in
// `done`. Workers spin for a short while after a job (back-to-back regions of a training step keep
// them awake: a sleeping vCPU takes tens of microseconds to wake) — ~0.3 ms after a job they took
// part in, ~20 µs after one they were too late for — and then sleep on a condition variable. A caller that finds the pool busy (a nested region, or another thread's) runs its
// tasks itself.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define CK_POOL_MAX_WORKERS 63

static struct {
    _Atomic uint64_t ticket;          // generation << 32 | next index to claim
    _Atomic long done;                // tasks of the current job finished
    _Atomic int busy;                 // 1 while a caller owns the pool
    _Atomic int sleepers;             // workers waiting on `wake`
    ck_task_fn fn;
    void *ctx;
    long n;
    int workers;                      // started workers
    pthread_mutex_t mu;
    pthread_cond_t wake;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static _Thread_local int in_pool_task = 0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Claims and runs tasks of generation `gen` until none are left; returns how many it ran.
static long run_tasks(uint32_t gen) {
    long ran = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen) break;
        ck_task_fn fn = pool.fn; void *ctx = pool.ctx; long n = pool.n;
        long i = (long)(t & 0xffffffffu);
        if (i >= n) break;
        if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        fn(ctx, i);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        ran++;
    }
    return ran;
}

static void *pool_worker(void *arg) {
    (void)arg;
    ck_enable_ftz_daz();
    in_pool_task = 1;
    uint32_t seen = 0;
    uint64_t spin_ns = 300000;
    for (;;) {
        uint64_t start = now_ns();
        unsigned spins = 0;
        for (;;) {
            uint32_t gen = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32);
            if (gen != seen) { seen = gen; break; }
            _mm_pause();
            if ((++spins & 63) == 0 && now_ns() - start > spin_ns) {   // spin a while, then sleep
                pthread_mutex_lock(&pool.mu);
                atomic_fetch_add(&pool.sleepers, 1);
                while ((uint32_t)(atomic_load(&pool.ticket) >> 32) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.mu);
                start = now_ns();
            }
        }
        // Spin ~0.3 ms for the next job after taking part in this one; only ~20 µs after arriving
        // too late to (the caller had claimed every task: the core is probably shared with other
        // work, and a spinning worker would take time from the caller there).
        spin_ns = run_tasks(seen) > 0 ? 300000 : 20000;
    }
    return NULL;
}

int ck_pool_run(long n, int threads, ck_task_fn fn, void *ctx) {
    if (n <= 0) return 0;
    int expected = 0;
    if (threads <= 1 || n == 1 || in_pool_task ||
        !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        for (long i = 0; i < n; i++) fn(ctx, i);
        return 0;
    }
    int want = threads - 1 > CK_POOL_MAX_WORKERS ? CK_POOL_MAX_WORKERS : threads - 1;
    while (pool.workers < want) {
        pthread_t t;
        if (pthread_create(&t, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        pool.workers++;
    }
    pool.fn = fn; pool.ctx = ctx; pool.n = n;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint32_t gen = (uint32_t)(atomic_load(&pool.ticket) >> 32) + 1;
    atomic_store(&pool.ticket, (uint64_t)gen << 32);                  // publish (seq_cst)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    in_pool_task = 1;
    run_tasks(gen);
    in_pool_task = 0;
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < n) _mm_pause();
    atomic_store(&pool.busy, 0);
    return 1;
}
