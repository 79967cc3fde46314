// CPU feature probes, floating-point mode, and OpenBLAS runtime queries.
#include "ckernels.h"
#include <cpuid.h>
#include <xmmintrin.h>
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
