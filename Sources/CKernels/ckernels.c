// CPU feature probes, floating-point mode, and OpenBLAS runtime queries.
#include "ckernels.h"
#include <cpuid.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

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

const char *ck_openblas_corename(void) { return openblas_get_corename(); }
int ck_openblas_threads(void) { return openblas_get_num_threads(); }
void ck_openblas_set_threads(int n) { openblas_set_num_threads(n); }
