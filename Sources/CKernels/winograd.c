// Winograd F(4×4, 3×3) convolution (stride 1, padding 1, NCHW, Float) for inference: each 6×6 input
// tile d and 3×3 filter g give a 4×4 output tile Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A (Lavin & Gray 2016), so
// the channel sums are 36 small GEMMs with 36 multiply-adds per 16 outputs instead of 144.
//
// Eight samples of a batch ride in the eight float lanes of a vector ("lane = sample"), so every
// transform and the GEMM micro-kernel are plain vector code with contiguous loads. Per group of ≤ 8
// samples:
//   1. XT[ci][PH][PW][8]: the input, zero-padded by 1 (and up to a multiple of 4), samples innermost;
//   2. for each chunk of ≤ 3 tile positions:
//        V[ξ][ci][q][8] = Bᵀ d B                       (input transform)
//        M[ξ][co][q][8] = Σ_ci U[ξ][co][ci] · V[ξ][ci][q] (36 GEMMs, 4 × 3 vector micro-kernel)
//        YT[co][4ty + i][4tx + j][8] = (Aᵀ M A)[i][j] + bias[co]   (output transform)
//   3. y (NCHW) = YT transposed back, cropped to H × W.
// Every output element is computed by the same sequence of operations whatever the group size, the
// lane and the chunk, so results do not depend on how a batch is split over threads.
#include "ckernels.h"
#include <string.h>

#ifdef SEMIDPO_REQUIRE_X86_64_V3
#define CK_VECTOR_TARGET __attribute__((target("avx2,fma")))
#else
#define CK_VECTOR_TARGET
#endif

typedef float v8 __attribute__((vector_size(32), aligned(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));   // for unaligned loads and stores

#define LANES 8
#define ROWS 4      // output channels per micro-kernel
#define CHUNK 3     // tile positions per chunk (micro-kernel width, in vectors)

// In-place 8 × 8 transpose: afterwards r[k][l] is what r[l][k] was. Turns eight rows of one sample
// each into eight vectors of one pixel each (and back).
#define TRANSPOSE8(r) do { \
    v8 t0 = __builtin_shufflevector(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13); \
    v8 t1 = __builtin_shufflevector(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15); \
    v8 t2 = __builtin_shufflevector(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13); \
    v8 t3 = __builtin_shufflevector(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15); \
    v8 t4 = __builtin_shufflevector(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13); \
    v8 t5 = __builtin_shufflevector(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15); \
    v8 t6 = __builtin_shufflevector(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13); \
    v8 t7 = __builtin_shufflevector(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15); \
    v8 u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13); \
    v8 u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15); \
    v8 u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13); \
    v8 u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15); \
    v8 u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13); \
    v8 u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15); \
    v8 u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13); \
    v8 u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15); \
    r[0] = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11); \
    r[1] = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11); \
    r[2] = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11); \
    r[3] = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11); \
    r[4] = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15); \
    r[5] = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15); \
    r[6] = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15); \
    r[7] = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15); \
} while (0)

static inline long round_up(long n, long m) { return (n + m - 1) / m * m; }

// G (6×3): the filter transform of F(4×4, 3×3) (U = G g Gᵀ); the weight gradient maps back through it.
static const float G[6][3] = {
    {1.0f / 4, 0, 0},
    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
    {1.0f / 24, 1.0f / 12, 1.0f / 6},
    {1.0f / 24, -1.0f / 12, 1.0f / 6},
    {0, 0, 1},
};

// Filters in eight-lane vectors: lane l of vector j0 is entry j = j0 + l of a block's (ci, r) list,
// i.e. filter (co = ROWS·b + r, ci) with j = ROWS·ci + r — the order u stores them in.
CK_VECTOR_TARGET
void ck_winograd43_weights(const float *w, int cout, int cin, float *u, long b0, long b1) {
    long blocks = (cout + ROWS - 1) / ROWS, entries = (long)cin * ROWS;
    for (long b = b0; b < b1; b++) {
        for (long j0 = 0; j0 < entries; j0 += LANES) {
            // Lane l's filter: its first 8 taps through an 8 × 8 transpose, the ninth one by one.
            v8 g[9], r[LANES], last = {0};
            for (int l = 0; l < LANES; l++) {
                long j = j0 + l, ci = j / ROWS, co = b * ROWS + j % ROWS;
                if (j >= entries || co >= cout) { r[l] = (v8){0}; continue; }
                const float *f = w + (co * cin + ci) * 9;
                r[l] = *(const v8u *)f;
                last[l] = f[8];
            }
            TRANSPOSE8(r);
            for (int k = 0; k < 8; k++) g[k] = r[k];
            g[8] = last;
            v8 gg[6][3];  // G · g
            for (int i = 0; i < 6; i++)
                for (int c = 0; c < 3; c++) gg[i][c] = G[i][0] * g[c] + G[i][1] * g[3 + c] + G[i][2] * g[6 + c];
            for (int i = 0; i < 6; i++)
                for (int c = 0; c < 6; c++) {
                    v8 t = gg[i][0] * G[c][0] + gg[i][1] * G[c][1] + gg[i][2] * G[c][2];  // (G g Gᵀ)[i][c]
                    float *dst = u + ((long)(i * 6 + c) * blocks + b) * entries + j0;
                    if (j0 + LANES <= entries) *(v8u *)dst = t;
                    else for (int l = 0; l < LANES && j0 + l < entries; l++) dst[l] = t[l];
                }
        }
    }
}

long ck_winograd43_weights_size(int cout, int cin) {
    return 36L * round_up(cout, ROWS) * cin;
}

long ck_winograd43_scratch_size(int cin, int cout, int h, int w) {
    long th = (h + 3) / 4, tw = (w + 3) / 4;
    long xt = (long)cin * (4 * th + 2) * (4 * tw + 2) * LANES;
    long v = 36L * cin * CHUNK * LANES;
    long m = 36L * round_up(cout, ROWS) * CHUNK * LANES;
    long yt = (long)cout * (4 * th) * (4 * tw) * LANES;
    return xt + v + m + yt;
}

// Bᵀ z for one 6-vector of vectors (z[k·stride]), into out[0..5].
#define INPUT_ROW(z, s, out) do { \
    v8 z0 = (z)[0], z1 = (z)[(s)], z2 = (z)[2 * (s)], z3 = (z)[3 * (s)], z4 = (z)[4 * (s)], z5 = (z)[5 * (s)]; \
    (out)[0] = 4.0f * z0 - 5.0f * z2 + z4; \
    (out)[1] = z3 + z4 - 4.0f * (z1 + z2); \
    (out)[2] = z4 - z3 + 4.0f * (z1 - z2); \
    (out)[3] = z4 - z2 + 2.0f * (z3 - z1); \
    (out)[4] = z4 - z2 - 2.0f * (z3 - z1); \
    (out)[5] = 4.0f * z1 - 5.0f * z3 + z5; \
} while (0)

// Aᵀ z for one 6-vector (z[k·stride]) into out[0..3].
#define OUTPUT_ROW(z, s, out) do { \
    v8 z0 = (z)[0], z1 = (z)[(s)], z2 = (z)[2 * (s)], z3 = (z)[3 * (s)], z4 = (z)[4 * (s)], z5 = (z)[5 * (s)]; \
    v8 a = z1 + z2, b = z1 - z2, c = z3 + z4, d = z3 - z4; \
    (out)[0] = z0 + a + c; \
    (out)[1] = b + 2.0f * d; \
    (out)[2] = a + 4.0f * c; \
    (out)[3] = b + 8.0f * d + z5; \
} while (0)

#define splat(f) ({ float f_ = (f); (v8){f_, f_, f_, f_, f_, f_, f_, f_}; })

// m[r·CHUNK + q] = Σ_ci u[ci·ROWS + r] · v[ci·CHUNK + q] for the ROWS rows and `width` (1–3) vectors,
// with the accumulators in registers (12 for width 3).
#define MICRO_KERNEL(NAME, W) \
static inline __attribute__((always_inline)) void NAME(long cin, const float *u, const v8 *v, v8 *m) { \
    v8 a00 = {0}, a01 = {0}, a02 = {0}, a10 = {0}, a11 = {0}, a12 = {0}; \
    v8 a20 = {0}, a21 = {0}, a22 = {0}, a30 = {0}, a31 = {0}, a32 = {0}; \
    for (long ci = 0; ci < cin; ci++, u += ROWS, v += CHUNK) { \
        v8 v0 = v[0], v1 = (W) > 1 ? v[1] : v0, v2 = (W) > 2 ? v[2] : v0; \
        /* one broadcast live at a time: 12 accumulators + 3 inputs + 1 broadcast = 16 registers */ \
        v8 b = splat(u[0]); \
        a00 += b * v0; if ((W) > 1) a01 += b * v1; if ((W) > 2) a02 += b * v2; \
        b = splat(u[1]); \
        a10 += b * v0; if ((W) > 1) a11 += b * v1; if ((W) > 2) a12 += b * v2; \
        b = splat(u[2]); \
        a20 += b * v0; if ((W) > 1) a21 += b * v1; if ((W) > 2) a22 += b * v2; \
        b = splat(u[3]); \
        a30 += b * v0; if ((W) > 1) a31 += b * v1; if ((W) > 2) a32 += b * v2; \
    } \
    m[0] = a00; m[CHUNK] = a10; m[2 * CHUNK] = a20; m[3 * CHUNK] = a30; \
    if ((W) > 1) { m[1] = a01; m[CHUNK + 1] = a11; m[2 * CHUNK + 1] = a21; m[3 * CHUNK + 1] = a31; } \
    if ((W) > 2) { m[2] = a02; m[CHUNK + 2] = a12; m[2 * CHUNK + 2] = a22; m[3 * CHUNK + 2] = a32; } \
}
MICRO_KERNEL(micro_kernel1, 1)
MICRO_KERNEL(micro_kernel2, 2)
#if defined(SEMIDPO_REQUIRE_X86_64_V3) && defined(__x86_64__)
// Width 3 needs all 16 ymm registers (12 accumulators, 3 inputs, 1 broadcast); the compiler's
// schedule of the C version keeps two broadcasts live and spills an accumulator every iteration,
// so this one is written out. Same operations, same order per element as MICRO_KERNEL.
static inline __attribute__((always_inline)) void micro_kernel3(long cin, const float *u, const v8 *v, v8 *m) {
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"   "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"   "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"   "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t" "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "vxorps %%ymm12, %%ymm12, %%ymm12\n\t" "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\t" "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
        "1:\n\t"
        "vmovaps (%[v]), %%ymm0\n\t"
        "vmovaps 32(%[v]), %%ymm1\n\t"
        "vmovaps 64(%[v]), %%ymm2\n\t"
        "vbroadcastss (%[u]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm5\n\t"
        "vfmadd231ps %%ymm2, %%ymm3, %%ymm6\n\t"
        "vbroadcastss 4(%[u]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm7\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm8\n\t"
        "vfmadd231ps %%ymm2, %%ymm3, %%ymm9\n\t"
        "vbroadcastss 8(%[u]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
        "vfmadd231ps %%ymm2, %%ymm3, %%ymm12\n\t"
        "vbroadcastss 12(%[u]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm13\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm14\n\t"
        "vfmadd231ps %%ymm2, %%ymm3, %%ymm15\n\t"
        "add $16, %[u]\n\t"
        "add $96, %[v]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vmovaps %%ymm4, (%[m])\n\t"    "vmovaps %%ymm5, 32(%[m])\n\t"   "vmovaps %%ymm6, 64(%[m])\n\t"
        "vmovaps %%ymm7, 96(%[m])\n\t"  "vmovaps %%ymm8, 128(%[m])\n\t"  "vmovaps %%ymm9, 160(%[m])\n\t"
        "vmovaps %%ymm10, 192(%[m])\n\t" "vmovaps %%ymm11, 224(%[m])\n\t" "vmovaps %%ymm12, 256(%[m])\n\t"
        "vmovaps %%ymm13, 288(%[m])\n\t" "vmovaps %%ymm14, 320(%[m])\n\t" "vmovaps %%ymm15, 352(%[m])\n\t"
        : [u] "+r"(u), [v] "+r"(v), [n] "+r"(cin)
        : [m] "r"(m)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}
#else
MICRO_KERNEL(micro_kernel3, 3)
#endif

// dst[c][iy + pad][ix + pad] = src sample l, channel c, (iy, ix) in lane l (samples src + l·cs,
// l < n; the other lanes zero) for c < channels, (iy, ix) < (h, w); every other cell of the
// [channels][dh][dw] planes is zero. Eight columns at a time through an 8 × 8 transpose.
CK_VECTOR_TARGET
static void to_lanes(const float *src, int n, long cs, long channels, long h, long w, int pad, v8 *dst,
                     long dh, long dw) {
    for (long c = 0; c < channels; c++) {
        v8 *plane = dst + c * dh * dw;
        for (long r = 0; r < dh; r++) {
            long iy = r - pad;
            v8 *row = plane + r * dw;
            if (iy < 0 || iy >= h) { for (long ix = 0; ix < dw; ix++) row[ix] = (v8){0}; continue; }
            for (long ix = 0; ix < pad; ix++) row[ix] = (v8){0};
            for (long ix = w + pad; ix < dw; ix++) row[ix] = (v8){0};
            v8 *out = row + pad;
            const float *line = src + (c * h + iy) * w;   // sample s: line + s·cs
            long ix = 0;
            for (; ix + LANES <= w; ix += LANES) {
                v8 t[LANES];
                for (int l = 0; l < LANES; l++) t[l] = l < n ? *(const v8u *)(line + l * cs + ix) : (v8){0};
                TRANSPOSE8(t);
                for (int l = 0; l < LANES; l++) out[ix + l] = t[l];
            }
            for (; ix < w; ix++) {
                v8 p = {0};
                for (int l = 0; l < n; l++) p[l] = line[l * cs + ix];
                out[ix] = p;
            }
        }
    }
}

CK_VECTOR_TARGET
void ck_winograd43_conv(const float *x, int n, int cin, int h, int w, const float *u, const float *bias,
                        int cout, float *y, float *scratch, int accumulate) {
    long th = (h + 3) / 4, tw = (w + 3) / 4, ph = 4 * th + 2, pw = 4 * tw + 2, oh = 4 * th, ow = 4 * tw;
    long positions = th * tw, blocks = (cout + ROWS - 1) / ROWS, coutPad = blocks * ROWS;
    v8 *xt = (v8 *)scratch;                                 // [cin][ph][pw]
    v8 *v = xt + (long)cin * ph * pw;                        // [36][cin][CHUNK]
    v8 *m = v + 36L * cin * CHUNK;                           // [36][coutPad][CHUNK]
    v8 *yt = m + 36L * coutPad * CHUNK;                      // [cout][oh][ow]

    // 1. XT: zero-padded, samples in lanes (lanes ≥ n stay zero).
    to_lanes(x, n, (long)cin * h * w, cin, h, w, 1, xt, ph, pw);

    // Positions in chunks of 1–3, as even as possible (4 positions: 2 + 2, not 3 + 1).
    long chunks = (positions + CHUNK - 1) / CHUNK;
    for (long c = 0; c < chunks; c++) {
        long p0 = positions * c / chunks;
        int width = (int)(positions * (c + 1) / chunks - p0);
        // 2a. Input transform of the chunk's tiles.
        for (long ci = 0; ci < cin; ci++)
            for (int q = 0; q < width; q++) {
                long p = p0 + q, ty = p / tw, tx = p % tw;
                const v8 *d = xt + (ci * ph + 4 * ty) * pw + 4 * tx;
                v8 t[6][6], o[6];
                for (int j = 0; j < 6; j++) {   // columns: t[·][j] = Bᵀ d[·][j]
                    v8 col[6];
                    INPUT_ROW(d + j, pw, col);
                    for (int i = 0; i < 6; i++) t[i][j] = col[i];
                }
                for (int i = 0; i < 6; i++) {   // rows: (Bᵀ d B)[i][·] = Bᵀ t[i][·]
                    INPUT_ROW(t[i], 1, o);
                    for (int j = 0; j < 6; j++) v[((long)(i * 6 + j) * cin + ci) * CHUNK + q] = o[j];
                }
            }
        // 2b. The 36 GEMMs.
        for (long xi = 0; xi < 36; xi++) {
            const v8 *vx = v + xi * cin * CHUNK;
            for (long b = 0; b < blocks; b++) {
                const float *ub = u + ((xi * blocks + b) * cin) * ROWS;
                v8 *mb = m + (xi * coutPad + b * ROWS) * CHUNK;
                switch (width) {
                case 3: micro_kernel3(cin, ub, vx, mb); break;
                case 2: micro_kernel2(cin, ub, vx, mb); break;
                default: micro_kernel1(cin, ub, vx, mb); break;
                }
            }
        }
        // 2c. Output transform, plus the bias.
        for (long co = 0; co < cout; co++) {
            v8 bv = (v8){0} + (bias ? bias[co] : 0.0f);
            for (int q = 0; q < width; q++) {
                long p = p0 + q, ty = p / tw, tx = p % tw;
                const v8 *mq = m + co * CHUNK + q;       // ξ stride: coutPad · CHUNK
                long s = coutPad * CHUNK;
                v8 t[6][4], o[4];
                for (int j = 0; j < 6; j++) {   // columns: t[·][j] over i = Aᵀ m[·][j]
                    v8 col[4];
                    OUTPUT_ROW(mq + j * s, 6 * s, col);
                    for (int i = 0; i < 4; i++) t[j][i] = col[i];
                }
                for (int i = 0; i < 4; i++) {   // rows
                    v8 row[6];
                    for (int j = 0; j < 6; j++) row[j] = t[j][i];
                    OUTPUT_ROW(row, 1, o);
                    v8 *dst = yt + (co * oh + 4 * ty + i) * ow + 4 * tx;
                    for (int j = 0; j < 4; j++) dst[j] = o[j] + bv;
                }
            }
        }
    }

    // 3. y = YT (y += YT when accumulating), samples back out of the lanes, cropped to h × w.
    for (long co = 0; co < cout; co++)
        for (long iy = 0; iy < h; iy++) {
            const v8 *src = yt + (co * oh + iy) * ow;
            float *dst = y + (co * h + iy) * w;             // sample s: dst + s·cout·h·w
            long ix = 0, ys = (long)cout * h * w;
            for (; ix + LANES <= w; ix += LANES) {
                v8 r[LANES];
                for (int l = 0; l < LANES; l++) r[l] = src[ix + l];
                TRANSPOSE8(r);
                if (accumulate)
                    for (int l = 0; l < n; l++) *(v8u *)(dst + l * ys + ix) = *(v8u *)(dst + l * ys + ix) + r[l];
                else
                    for (int l = 0; l < n; l++) *(v8u *)(dst + l * ys + ix) = r[l];
            }
            for (; ix < w; ix++)
                for (int l = 0; l < n; l++) {
                    if (accumulate) dst[l * ys + ix] += src[ix][l];
                    else dst[l * ys + ix] = src[ix][l];
                }
        }
}

// ---------------------------------------------------------------------------------------------
// Weight gradient of the same convolution by Winograd F(3×3, 4×4). Differentiating the forward
// y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with respect to g gives, per 4×4 tile e of dY and its 6×6 input
// patch d (the same patch the forward reads),
//     dW += Gᵀ [(A e Aᵀ) ⊙ (Bᵀ d B)] G,
// so the sum over samples and tiles is 36 GEMMs M[ξ] (cout × cin) = Σ_k E[ξ][co][k] · V[ξ][ci][k]
// with 36 multiply-adds per tile and channel pair instead of 144, followed by one 6×6 → 3×3
// transform per (co, ci). Samples ride in the lanes again; k runs over (group of 8 samples, tile),
// each lane accumulates its own samples, and the eight lanes are added at the end in a fixed order.
// Every element of M is one sequence of operations whatever the thread count.
//   1. ck_winograd43_wgrad_transform, per group of ≤ 8 samples (groups in parallel):
//        V[ci][ξ][k] = Bᵀ d B, E[co][ξ][k] = A e Aᵀ, k = group·tiles + tile
//      (channels padded to multiples of 3 and 4 with zero rows; ξ outside k so that one tile's 36
//      values land in one channel's block, not 36 blocks far apart);
//   2. ck_winograd43_wgrad_gemm, per (ξ, block of 4 output channels) (in parallel):
//        M[co][ci][ξ] = lanes summed of Σ_k E[ξ][co][k] · V[ξ][ci][k];
//   3. ck_winograd43_wgrad_output: dW[co][ci] += Gᵀ M[co][ci] G.
#define WCOLS 3     // input channels per dW micro-kernel

static inline long wg_cin_pad(int cin) { return round_up(cin, WCOLS); }
static inline long wg_cout_pad(int cout) { return round_up(cout, ROWS); }

long ck_winograd43_wgrad_size(int groups, int cin, int cout, int h, int w) {
    long tiles = (long)((h + 3) / 4) * ((w + 3) / 4);
    return 36L * (wg_cin_pad(cin) + wg_cout_pad(cout)) * groups * tiles * LANES;
}

long ck_winograd43_wgrad_scratch_size(int cin, int cout, int h, int w) {
    long th = (h + 3) / 4, tw = (w + 3) / 4;
    return (long)cin * (4 * th + 2) * (4 * tw + 2) * LANES + (long)cout * (4 * th) * (4 * tw) * LANES;
}

// A z for one 4-vector of vectors (z[k·stride]), into out[0..5]: the values at 0, 1, −1, 2, −2, ∞ of
// the cubic with coefficients z.
#define TILE_ROW(z, s, out) do { \
    v8 z0 = (z)[0], z1 = (z)[(s)], z2 = (z)[2 * (s)], z3 = (z)[3 * (s)]; \
    v8 ev = z0 + z2, od = z1 + z3, ev4 = z0 + 4.0f * z2, od4 = z1 + 4.0f * z3; \
    (out)[0] = z0; \
    (out)[1] = ev + od; \
    (out)[2] = ev - od; \
    (out)[3] = ev4 + 2.0f * od4; \
    (out)[4] = ev4 - 2.0f * od4; \
    (out)[5] = z3; \
} while (0)

CK_VECTOR_TARGET
void ck_winograd43_wgrad_transform(const float *x, const float *dy, int n, int group, int groups, int cin,
                                   int cout, int h, int w, float *ve, float *scratch) {
    long th = (h + 3) / 4, tw = (w + 3) / 4, ph = 4 * th + 2, pw = 4 * tw + 2, oh = 4 * th, ow = 4 * tw;
    long tiles = th * tw, kk = (long)groups * tiles, k0 = (long)group * tiles;
    long cinPad = wg_cin_pad(cin), coutPad = wg_cout_pad(cout);
    v8 *V = (v8 *)ve, *E = V + 36L * cinPad * kk;      // [cinPad][36][kk], [coutPad][36][kk]
    v8 *xt = (v8 *)scratch, *yt = xt + (long)cin * ph * pw;
    to_lanes(x, n, (long)cin * h * w, cin, h, w, 1, xt, ph, pw);
    to_lanes(dy, n, (long)cout * h * w, cout, h, w, 0, yt, oh, ow);
    for (long ci = 0; ci < cinPad; ci++)
        for (long p = 0; p < tiles; p++) {
            v8 *dst = V + ci * 36 * kk + k0 + p;          // ξ stride: kk
            long s = kk;
            if (ci >= cin) { for (int xi = 0; xi < 36; xi++) dst[xi * s] = (v8){0}; continue; }
            long ty = p / tw, tx = p % tw;
            const v8 *d = xt + (ci * ph + 4 * ty) * pw + 4 * tx;
            v8 t[6][6], o[6];
            for (int j = 0; j < 6; j++) {
                v8 col[6];
                INPUT_ROW(d + j, pw, col);
                for (int i = 0; i < 6; i++) t[i][j] = col[i];
            }
            for (int i = 0; i < 6; i++) {
                INPUT_ROW(t[i], 1, o);
                for (int j = 0; j < 6; j++) dst[(i * 6 + j) * s] = o[j];
            }
        }
    for (long co = 0; co < coutPad; co++)
        for (long p = 0; p < tiles; p++) {
            v8 *dst = E + co * 36 * kk + k0 + p;
            long s = kk;
            if (co >= cout) { for (int xi = 0; xi < 36; xi++) dst[xi * s] = (v8){0}; continue; }
            long ty = p / tw, tx = p % tw;
            const v8 *e = yt + (co * oh + 4 * ty) * ow + 4 * tx;
            v8 t[6][4], o[6];
            for (int j = 0; j < 4; j++) {   // columns: t[·][j] = A e[·][j]
                v8 col[6];
                TILE_ROW(e + j, ow, col);
                for (int i = 0; i < 6; i++) t[i][j] = col[i];
            }
            for (int i = 0; i < 6; i++) {   // rows: (A e Aᵀ)[i][·] = A t[i][·]
                TILE_ROW(t[i], 1, o);
                for (int j = 0; j < 6; j++) dst[(i * 6 + j) * s] = o[j];
            }
        }
}

// The eight lanes of a, added in a fixed order.
CK_VECTOR_TARGET static inline float lane_sum(v8 a) {
    v8 b = a + __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3);
    v8 c = b + __builtin_shufflevector(b, b, 2, 3, 0, 1, 6, 7, 4, 5);
    return c[0] + c[1];
}

CK_VECTOR_TARGET
void ck_winograd43_wgrad_gemm(const float *ve, int groups, int cin, int cout, int h, int w, float *m,
                              long t0, long t1) {
    long tiles = (long)((h + 3) / 4) * ((w + 3) / 4), kk = (long)groups * tiles;
    long cinPad = wg_cin_pad(cin), coutPad = wg_cout_pad(cout), blocks = coutPad / ROWS;
    const v8 *V = (const v8 *)ve, *E = V + 36L * cinPad * kk;
    for (long task = t0; task < t1; task++) {
        long xi = task / blocks, b = task % blocks;
        const v8 *e0 = E + (b * ROWS * 36 + xi) * kk, *e1 = e0 + 36 * kk, *e2 = e1 + 36 * kk, *e3 = e2 + 36 * kk;
        for (long c0 = 0; c0 < cinPad; c0 += WCOLS) {
            const v8 *v0 = V + (c0 * 36 + xi) * kk, *v1 = v0 + 36 * kk, *v2 = v1 + 36 * kk;
            v8 a00 = {0}, a01 = {0}, a02 = {0}, a10 = {0}, a11 = {0}, a12 = {0};
            v8 a20 = {0}, a21 = {0}, a22 = {0}, a30 = {0}, a31 = {0}, a32 = {0};
            for (long k = 0; k < kk; k++) {
                v8 x0 = v0[k], x1 = v1[k], x2 = v2[k], e;
                e = e0[k]; a00 += e * x0; a01 += e * x1; a02 += e * x2;
                e = e1[k]; a10 += e * x0; a11 += e * x1; a12 += e * x2;
                e = e2[k]; a20 += e * x0; a21 += e * x1; a22 += e * x2;
                e = e3[k]; a30 += e * x0; a31 += e * x1; a32 += e * x2;
            }
            v8 acc[ROWS][WCOLS] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
            for (int r = 0; r < ROWS; r++) {
                long co = b * ROWS + r;
                if (co >= cout) break;
                for (int q = 0; q < WCOLS; q++) {
                    long ci = c0 + q;
                    if (ci < cin) m[(co * cin + ci) * 36 + xi] = lane_sum(acc[r][q]);
                }
            }
        }
    }
}

void ck_winograd43_wgrad_output(const float *m, int cout, int cin, float *dw, long co0, long co1) {
    for (long co = co0; co < co1; co++)
        for (long ci = 0; ci < cin; ci++) {
            const float *mm = m + (co * cin + ci) * 36;
            float t[3][6];   // Gᵀ M
            for (int k = 0; k < 3; k++)
                for (int b = 0; b < 6; b++) {
                    float s = 0;
                    for (int a = 0; a < 6; a++) s += G[a][k] * mm[a * 6 + b];
                    t[k][b] = s;
                }
            float *d = dw + (co * cin + ci) * 9;
            for (int k = 0; k < 3; k++)
                for (int l = 0; l < 3; l++) {
                    float s = 0;
                    for (int b = 0; b < 6; b++) s += t[k][b] * G[b][l];
                    d[k * 3 + l] += s;
                }
        }
}
