// Fused elementwise kernels with an AVX-512 path chosen at run time (Sources/CKernels/fused.c).
#ifndef SEMIDPO_FUSED_H
#define SEMIDPO_FUSED_H

/// 1 when this CPU and OS run AVX-512F code (probed once; SEMIDPO_NO_AVX512=1 in the environment
/// forces 0, for A/B measurements and for testing the AVX2 path on an AVX-512 machine).
int ck_fused_avx512(void);

/// y[i] = z·σ(z), z = x[i]·scale + shift, σ(z) = 1/(1 + e^(−z)) with the engine's `vectorExp`
/// (Cephes expf, clamped to [−87, 88]). Bit for bit the Swift loop in groupNormForward: the same
/// operations in the same order, no fused multiply-adds. AVX-512 only: call when ck_fused_avx512().
void ck_silu_affine_avx512(const float *x, float *y, long n, float scale, float shift);

/// dz[i] = s·(1 + z·(1 − s))·dy[i], z = x[i]·scale + shift, s = σ(z): the gradient of SiLU at z, as
/// the Swift loop in attachGroupNormBackward computes it. AVX-512 only.
void ck_silu_affine_backward_avx512(const float *x, const float *dy, float *dz, long n, float scale, float shift);

/// The FiLM form of groupNormModulatedSiLU: u = (x[i]·scale + shift)·s1 + h, y[i] = u·σ(u). AVX-512 only.
void ck_silu_modulated_avx512(const float *x, float *y, long n, float scale, float shift, float s1, float h);

/// du[i] = σ(u)(1 + u(1 − σ(u)))·dy[i] with u as in ck_silu_modulated_avx512. AVX-512 only.
void ck_silu_modulated_backward_avx512(const float *x, const float *dy, float *du, long n, float scale, float shift,
                                       float s1, float h);

#endif
