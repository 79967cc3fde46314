// Fused GroupNorm + SiLU elementwise loops with AVX-512 (16 floats a vector), chosen at run time
// on CPUs that have it; the Swift loops (AVX2, x86-64-v3) stay the path everywhere else. Every
// operation mirrors the Swift expression in order, with separate multiplies and adds (Swift does not
// contract to FMA), so both paths give the same bits (OpGradientTests checks it on this machine).
#include "fused.h"
#include "ckernels.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

int ck_fused_avx512(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *off = getenv("SEMIDPO_NO_AVX512");
        c = (off && off[0] == '1') ? 0 : ck_has_avx512();
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

#define CK_AVX512 __attribute__((target("avx512f")))

// Float.vectorExp (Sources/Core/Tensor/Scalar.swift), 16 lanes: clamp, n = round(x/ln2) by the
// 1.5·2²³ shifter, r = x − n·ln2 in two parts, e^r = 1 + r + r²·P(r), times 2^n from the bits.
CK_AVX512 static inline __m512 vexp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 shifter = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), shifter);
    __m512 n = _mm512_sub_ps(t, shifter);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(shifter)),
                                    _mm512_set1_epi32(127));
    return _mm512_mul_ps(e, _mm512_castsi512_ps(_mm512_slli_epi32(bits, 23)));
}

// σ(z) = 1 / (1 + vectorExp(−z)) (Float.sigmoid).
CK_AVX512 static inline __m512 sigmoid16(__m512 z) {
    const __m512 one = _mm512_set1_ps(1.0f);
    // −z as Swift negates: the sign bit flipped (not 0 − z, which would turn −0 into +0)
    __m512 negz = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u)));
    return _mm512_div_ps(one, _mm512_add_ps(one, vexp16(negz)));
}

CK_AVX512 void ck_silu_affine_avx512(const float *x, float *y, long n, float scale, float shift) {
    const __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), vh);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(z, sigmoid16(z)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(z, sigmoid16(z)));
    }
}

CK_AVX512 void ck_silu_affine_backward_avx512(const float *x, const float *dy, float *dz, long n, float scale, float shift) {
    const __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift), one = _mm512_set1_ps(1.0f);
    long i = 0;
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        __m512 s = sigmoid16(z);
        // s · (1 + z · (1 − s)) · dy, left to right as in Swift
        __m512 g = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(z, _mm512_sub_ps(one, s))));
        _mm512_mask_storeu_ps(dz + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, dy + i)));
    }
}

// The FiLM form (groupNormModulatedSiLU): u = (x·scale + shift)·s1 + h, y = u·σ(u).
CK_AVX512 void ck_silu_modulated_avx512(const float *x, float *y, long n, float scale, float shift, float s1, float h) {
    const __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift), v1 = _mm512_set1_ps(s1), vm = _mm512_set1_ps(h);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        __m512 u = _mm512_add_ps(_mm512_mul_ps(z, v1), vm);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(u, sigmoid16(u)));
    }
}

// du = σ(u)(1 + u(1 − σ(u)))·dy with u as above.
CK_AVX512 void ck_silu_modulated_backward_avx512(const float *x, const float *dy, float *du, long n, float scale, float shift,
                                                 float s1, float h) {
    const __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift), v1 = _mm512_set1_ps(s1), vm = _mm512_set1_ps(h);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        __m512 u = _mm512_add_ps(_mm512_mul_ps(z, v1), vm);
        __m512 s = sigmoid16(u);
        __m512 g = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(u, _mm512_sub_ps(one, s))));
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, dy + i)));
    }
}
