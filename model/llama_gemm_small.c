/*
 * model/llama_gemm_small.c: C (M, N) = beta*C + A (M, K) @ W (N, K)^T for few rows M — the matrix
 * products of decoding, where A holds one hidden state per active row and W is a weight matrix.
 *
 * Why not sgemm: OpenBLAS packs W into its panel layout on every call, which for M <= ~32 costs more
 * than the product (profile of SmolLM2-135M decoding 16 rows: 34 % of the time in sgemm_incopy,
 * 17 % in the kernel). Why not one sgemv per row (what llama_sgemm did for M <= 4): it reads all of
 * W once per row, so decoding M rows read the weights M times (SmolLM2 at 4 rows: 13.7 tok/s vs 33.9
 * at 5 rows). Here W is streamed from memory once: a block of 4 rows of W (4 x K floats, in L1) is
 * multiplied with every row of A before the next block is loaded.
 *
 * Each C[m, n] is one dot product computed the same way whatever M is and wherever n falls in a
 * block (vector accumulators over K in chunks of the vector width, then a fixed-order horizontal
 * sum and a scalar tail), so a row's result does not depend on how many other rows are decoded with
 * it. The vector width (AVX-512, AVX2+FMA or plain C, chosen once from the CPU's features) changes
 * the summation order, so results differ across CPU kinds in the last bits, as sgemm's do.
 * GRPO2048_GEMM_SMALL_ISA=avx512|avx2|scalar (or llama_sgemm_small_set_isa) picks a narrower kernel,
 * for tests and benchmarks; never one the CPU lacks.
 *
 * Measured (bench/bench_gemm_small, one thread, caches flushed, 2-core AVX-512 Xeon under a load of
 * 7-8 from other builds): the seven products of a SmolLM2-135M layer take 1.0 ms at M=1 vs 1.6 ms
 * with sgemm and 1.1 ms with sgemv; at M=8 1.7 ms vs 2.9 ms (sgemm) and 3.9 ms (sgemv); at M=32
 * 3.6 vs 4.2 ms (sgemm); at M=48 sgemm is faster (4.7 vs 5.7 ms): hence LLAMA_SMALL_MAX_ROWS 32.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

/* ---- AVX-512 ---------------------------------------------------------------------------------- */

/* One dot product's arithmetic, used for every C[m, n] (so a row's result is the same in any
 * batch): two vector accumulators, one for the even and one for the odd chunks of 16 (or 8 with AVX2)
 * floats (two independent FMA chains hide the FMA latency when M is 1), added, reduced horizontally,
 * then the scalar tail of K % 32 (K % 16) in order. */
/* MM (1..3, a compile-time constant so that the 2 x MM x 4 accumulators stay in registers) rows of A
 * from A against the 4 rows w[0..3] of W; writes nn (<= 4) columns of each of the MM rows of C. */
__attribute__((target("avx512f"), always_inline)) static inline void block_avx512(const int MM, int nn, int K,
                                                                                  const float *A, int lda,
                                                                                  const float *const *w, float beta,
                                                                                  float *C, int ldc) {
    const int K32 = K / 32 * 32;
    __m512 e[3][4], o[3][4];
    _Pragma("GCC unroll 3") for (int i = 0; i < MM; i++)
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) e[i][j] = o[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K32; k += 32) {
        __m512 x0 = _mm512_loadu_ps(w[0] + k), x1 = _mm512_loadu_ps(w[1] + k);
        __m512 x2 = _mm512_loadu_ps(w[2] + k), x3 = _mm512_loadu_ps(w[3] + k);
        __m512 y0 = _mm512_loadu_ps(w[0] + k + 16), y1 = _mm512_loadu_ps(w[1] + k + 16);
        __m512 y2 = _mm512_loadu_ps(w[2] + k + 16), y3 = _mm512_loadu_ps(w[3] + k + 16);
        _Pragma("GCC unroll 3") for (int i = 0; i < MM; i++) {
            const float *a = A + (size_t)i * lda + k;
            __m512 a0 = _mm512_loadu_ps(a), a1 = _mm512_loadu_ps(a + 16);
            e[i][0] = _mm512_fmadd_ps(a0, x0, e[i][0]);
            e[i][1] = _mm512_fmadd_ps(a0, x1, e[i][1]);
            e[i][2] = _mm512_fmadd_ps(a0, x2, e[i][2]);
            e[i][3] = _mm512_fmadd_ps(a0, x3, e[i][3]);
            o[i][0] = _mm512_fmadd_ps(a1, y0, o[i][0]);
            o[i][1] = _mm512_fmadd_ps(a1, y1, o[i][1]);
            o[i][2] = _mm512_fmadd_ps(a1, y2, o[i][2]);
            o[i][3] = _mm512_fmadd_ps(a1, y3, o[i][3]);
        }
    }
    _Pragma("GCC unroll 3") for (int i = 0; i < MM; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            if (j >= nn) break;
            float s = _mm512_reduce_add_ps(_mm512_add_ps(e[i][j], o[i][j]));
            for (int k = K32; k < K; k++) s += a[k] * w[j][k];
            c[j] = beta == 0.0f ? s : beta * c[j] + s;
        }
    }
}

__attribute__((target("avx512f"))) static void gemm_small_avx512(int M, int N, int K, const float *A, int lda,
                                                                 const float *W, int ldw, float beta, float *C,
                                                                 int ldc) {
    for (int n = 0; n < N; n += 4) {
        const int nn = N - n < 4 ? N - n : 4;
        const float *w[4];
        for (int j = 0; j < 4; j++) w[j] = W + (size_t)(n + (j < nn ? j : 0)) * ldw; /* short block: repeat row n */
        int m0 = 0;
        for (; m0 + 3 <= M; m0 += 3) block_avx512(3, nn, K, A + (size_t)m0 * lda, lda, w, beta, C + (size_t)m0 * ldc + n, ldc);
        if (M - m0 == 2) block_avx512(2, nn, K, A + (size_t)m0 * lda, lda, w, beta, C + (size_t)m0 * ldc + n, ldc);
        if (M - m0 == 1) block_avx512(1, nn, K, A + (size_t)m0 * lda, lda, w, beta, C + (size_t)m0 * ldc + n, ldc);
    }
}

/* ---- AVX2 + FMA ------------------------------------------------------------------------------- */

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static void gemm_small_avx2(int M, int N, int K, const float *A, int lda,
                                                                const float *W, int ldw, float beta, float *C,
                                                                int ldc) {
    const int K16 = K / 16 * 16;
    for (int n = 0; n < N; n += 4) {
        const int nn = N - n < 4 ? N - n : 4;
        const float *w[4];
        for (int j = 0; j < 4; j++) w[j] = W + (size_t)(n + (j < nn ? j : 0)) * ldw;
        for (int m0 = 0; m0 < M; m0 += 1) { /* 16 registers: one row of A at a time */
            __m256 e[4], o[4];
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) e[j] = o[j] = _mm256_setzero_ps();
            const float *a = A + (size_t)m0 * lda;
            for (int k = 0; k < K16; k += 16) {
                __m256 a0 = _mm256_loadu_ps(a + k), a1 = _mm256_loadu_ps(a + k + 8);
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                    e[j] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w[j] + k), e[j]);
                    o[j] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(w[j] + k + 8), o[j]);
                }
            }
            float *c = C + (size_t)m0 * ldc + n;
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                if (j >= nn) break;
                float s = hsum256(_mm256_add_ps(e[j], o[j]));
                for (int k = K16; k < K; k++) s += a[k] * w[j][k];
                c[j] = beta == 0.0f ? s : beta * c[j] + s;
            }
        }
    }
}

/* ---- plain C (any x86-64, and the reference for the tests) ------------------------------------- */

static void gemm_small_scalar(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float beta,
                              float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            const float *a = A + (size_t)m * lda, *w = W + (size_t)n * ldw;
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += a[k] * w[k];
            float *c = C + (size_t)m * ldc + n;
            *c = beta == 0.0f ? s : beta * *c + s;
        }
}

typedef void (*gemm_small_fn)(int, int, int, const float *, int, const float *, int, float, float *, int);

static gemm_small_fn gemm_small_cpu_best(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return gemm_small_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return gemm_small_avx2;
    return gemm_small_scalar;
}

static gemm_small_fn gemm_small_fn_now = NULL; /* a race between first callers writes the same value */

int llama_sgemm_small_set_isa(const char *isa) {
    gemm_small_fn best = gemm_small_cpu_best(), f;
    if (!isa || !*isa) f = best;
    else if (!strcmp(isa, "avx512")) f = best == gemm_small_avx512 ? gemm_small_avx512 : NULL;
    else if (!strcmp(isa, "avx2")) f = best != gemm_small_scalar ? gemm_small_avx2 : NULL;
    else if (!strcmp(isa, "scalar")) f = gemm_small_scalar;
    else f = NULL;
    if (!f) return -1;
    gemm_small_fn_now = f;
    return 0;
}

void llama_sgemm_small(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float beta, float *C,
                       int ldc) {
    if (!gemm_small_fn_now && llama_sgemm_small_set_isa(getenv("GRPO2048_GEMM_SMALL_ISA")) != 0)
        gemm_small_fn_now = gemm_small_cpu_best(); /* an unknown or unavailable name: the CPU's best */
    if (M <= 0 || N <= 0) return;
    gemm_small_fn_now(M, N, K, A, lda, W, ldw, beta, C, ldc);
}

const char *llama_sgemm_small_isa(void) {
    gemm_small_fn f = gemm_small_fn_now ? gemm_small_fn_now : gemm_small_cpu_best();
    return f == gemm_small_avx512 ? "avx512" : f == gemm_small_avx2 ? "avx2" : "scalar";
}
