/*
 * model/llama_gemm_small.c: C (M, N) = beta*C + A (M, K) @ W (N, K)^T for few rows M — the matrix
 * products of decoding, where A holds one hidden state per active row and W is a weight matrix.
 *
 * Why not sgemm: OpenBLAS packs W into its panel layout on every call, which for M <= ~32 costs more
 * than the product (profile of SmolLM2-135M decoding 16 rows: 34 % of the time in sgemm_incopy,
 * 17 % in the kernel). Why not one sgemv per row (what llama_sgemm did for M <= 4): it reads all of
 * W once per row, so decoding M rows read the weights M times (SmolLM2 at 4 rows: 13.7 tok/s vs 33.9
 * at 5 rows). Here W is streamed from memory once: a block of rows of W (6 with AVX-512, 4 with AVX2;
 * in L1) is multiplied with every row of A before the next block is loaded, the next block being
 * prefetched meanwhile (AVX-512). 6 rows rather than 4 (2026-12-06): A is re-read from L2 once per
 * block, and with 16 decoding rows that traffic, not the FMAs, bounded the kernel; SmolLM2 decoding
 * 16 x 256 went from 159-164 to 189-195 tokens/s (bench_model, 2 threads, load 1.5).
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
 * batch): one vector accumulator over chunks of 16 floats in order, reduced horizontally, then the
 * scalar tail of K % 16 in order. A block is MM (1..4) rows of A against NW = 6 rows of W: 24
 * accumulators, so each weight vector loaded serves MM rows and each A vector 6 weight rows (the A rows,
 * re-read from L2 once per block, cost 1.5x less than with blocks of 4 weight rows), and 6 x MM
 * independent FMA chains hide the FMA latency even for one row. */
#define NWB 6
/* pf: when not NULL, the NWB weight rows of the next block, fetched into the cache during this block
 * (each block starts NWB new memory streams, which the hardware prefetchers pick up late). */
__attribute__((target("avx512f"), always_inline)) static inline void block_avx512(const int MM, int nn, int K,
                                                                                  const float *A, int lda,
                                                                                  const float *const *w,
                                                                                  const float *const *pf, float beta,
                                                                                  float *C, int ldc) {
    const int K16 = K / 16 * 16;
    __m512 acc[4][NWB];
    _Pragma("GCC unroll 4") for (int i = 0; i < MM; i++)
        _Pragma("GCC unroll 6") for (int j = 0; j < NWB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K16; k += 16) {
        if (pf) {
            _Pragma("GCC unroll 6") for (int j = 0; j < NWB; j++) _mm_prefetch((const char *)(pf[j] + k), _MM_HINT_T0);
        }
        __m512 a[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < MM; i++) a[i] = _mm512_loadu_ps(A + (size_t)i * lda + k);
        _Pragma("GCC unroll 6") for (int j = 0; j < NWB; j++) {
            __m512 x = _mm512_loadu_ps(w[j] + k);
            _Pragma("GCC unroll 4") for (int i = 0; i < MM; i++) acc[i][j] = _mm512_fmadd_ps(a[i], x, acc[i][j]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < MM; i++) {
        const float *ar = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        _Pragma("GCC unroll 6") for (int j = 0; j < NWB; j++) {
            if (j >= nn) break;
            float s = _mm512_reduce_add_ps(acc[i][j]);
            for (int k = K16; k < K; k++) s += ar[k] * w[j][k];
            c[j] = beta == 0.0f ? s : beta * c[j] + s;
        }
    }
}

__attribute__((target("avx512f"))) static void gemm_small_avx512(int M, int N, int K, const float *A, int lda,
                                                                 const float *W, int ldw, float beta, float *C,
                                                                 int ldc) {
    for (int n = 0; n < N; n += NWB) {
        const int nn = N - n < NWB ? N - n : NWB;
        const float *w[NWB], *next[NWB];
        for (int j = 0; j < NWB; j++) w[j] = W + (size_t)(n + (j < nn ? j : 0)) * ldw; /* short block: repeat row n */
        /* the next block's rows (this block's when it is the last: a harmless re-fetch) */
        for (int j = 0; j < NWB; j++) next[j] = n + NWB + j < N ? W + (size_t)(n + NWB + j) * ldw : w[j];
        int m0 = 0;
        for (; m0 + 4 <= M; m0 += 4)
            block_avx512(4, nn, K, A + (size_t)m0 * lda, lda, w, m0 == 0 ? next : NULL, beta, C + (size_t)m0 * ldc + n, ldc);
        const float *const *p = m0 == 0 ? next : NULL;
        if (M - m0 == 3) block_avx512(3, nn, K, A + (size_t)m0 * lda, lda, w, p, beta, C + (size_t)m0 * ldc + n, ldc);
        if (M - m0 == 2) block_avx512(2, nn, K, A + (size_t)m0 * lda, lda, w, p, beta, C + (size_t)m0 * ldc + n, ldc);
        if (M - m0 == 1) block_avx512(1, nn, K, A + (size_t)m0 * lda, lda, w, p, beta, C + (size_t)m0 * ldc + n, ldc);
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
