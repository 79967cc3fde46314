// CPU feature probes, floating-point mode (FTZ/DAZ), and OpenBLAS runtime queries.
#ifndef SEMIDPO_CKERNELS_H
#define SEMIDPO_CKERNELS_H
// The fused GroupNorm + SiLU kernels with their AVX-512 path (fused.c).
#include "fused.h"

/// 1 if the CPU and the OS support AVX-512F (CPUID leaf 7 and XCR0 ZMM state).
int ck_has_avx512(void);
/// 1 if the CPU and the OS support AVX2 and FMA.
int ck_has_avx2_fma(void);
/// 1 if the CPU and the OS support x86-64-v3: AVX2, FMA, BMI1, BMI2, F16C, LZCNT, MOVBE (what the
/// Swift code is compiled for unless built with SEMIDPO_PORTABLE=1).
int ck_has_x86_64_v3(void);
/// Sets flush-to-zero and denormals-are-zero in MXCSR for the calling thread.
void ck_enable_ftz_daz(void);
/// 1 if both FTZ and DAZ are set for the calling thread.
int ck_ftz_daz_enabled(void);

/// Tells glibc malloc to serve allocations up to 32 MB from the heap and to keep up to 256 MB of freed
/// memory instead of returning it to the OS after each free (fewer page faults). 1 on success.
int ck_keep_freed_memory(void);

/// OpenBLAS's name for the kernels it chose (e.g. "Haswell", "SkylakeX", "Prescott").
const char *ck_openblas_corename(void);
/// OpenBLAS's thread count, and a setter.
int ck_openblas_threads(void);
void ck_openblas_set_threads(int n);

/// A task of a parallel region: `fn(ctx, i)` for one index i.
typedef void (*ck_task_fn)(void *ctx, long i);
/// Runs fn(ctx, 0..<n) on the calling thread and up to `threads − 1` pool workers (started on first
/// use; they spin ~0.3 ms after a job, then sleep). Which thread runs which index is not fixed, so
/// tasks must not depend on it. Returns when every task has finished. A nested call (from inside a
/// task) or a call while another thread owns the pool runs the tasks on the calling thread.
/// Returns 1 if the pool was used, 0 if the tasks ran inline.
int ck_pool_run(long n, int threads, ck_task_fn fn, void *ctx);

/// Winograd F(4×4, 3×3) convolution, stride 1, padding 1, NCHW Float, for inference (winograd.c).
/// Floats of the transformed weights of a (cout, cin, 3, 3) filter bank.
long ck_winograd43_weights_size(int cout, int cin);
/// u (ck_winograd43_weights_size floats) = the transformed filters w (cout, cin, 3, 3), for the
/// blocks of 4 output channels [b0, b1) (all: 0 … ⌈cout/4⌉; disjoint ranges may run in parallel).
void ck_winograd43_weights(const float *w, int cout, int cin, float *u, long b0, long b1);
/// Floats of scratch one call of ck_winograd43_conv needs (32-byte aligned).
long ck_winograd43_scratch_size(int cin, int cout, int h, int w);
/// y (n, cout, h, w) = conv3×3(x (n, cin, h, w), filters u) + bias (may be NULL) for 1 ≤ n ≤ 8
/// samples, cin ≥ 1; y += that instead when `accumulate` is nonzero; scratch 32-byte aligned.
void ck_winograd43_conv(const float *x, int n, int cin, int h, int w, const float *u, const float *bias,
                        int cout, float *y, float *scratch, int accumulate);

/// Weight gradient of the same convolution (Winograd F(3×3, 4×4), winograd.c), in three phases:
/// Floats of the shared transform buffer for `groups` groups of ≤ 8 samples.
long ck_winograd43_wgrad_size(int groups, int cin, int cout, int h, int w);
/// Floats of per-call scratch of ck_winograd43_wgrad_transform (32-byte aligned).
long ck_winograd43_wgrad_scratch_size(int cin, int cout, int h, int w);
/// Phase 1, for group `group` (0 ≤ group < groups) of n ≤ 8 samples: x (n, cin, h, w), dy (n, cout,
/// h, w) transformed into its part of ve (32-byte aligned). Distinct groups may run in parallel.
void ck_winograd43_wgrad_transform(const float *x, const float *dy, int n, int group, int groups, int cin,
                                   int cout, int h, int w, float *ve, float *scratch);
/// Phase 2: m (cout, cin, 36) for the tasks [t0, t1) of 36 · ⌈cout/4⌉ (disjoint ranges in parallel).
void ck_winograd43_wgrad_gemm(const float *ve, int groups, int cin, int cout, int h, int w, float *m,
                              long t0, long t1);
/// Phase 3: dw (cout, cin, 3, 3) += the filter-domain gradient of m, output channels [co0, co1).
void ck_winograd43_wgrad_output(const float *m, int cout, int cin, float *dw, long co0, long co1);

#endif
