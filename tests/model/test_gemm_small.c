/*
 * tests/model/test_gemm_small.c: llama_sgemm_small (model/llama_gemm_small.c), the decoding product
 * C (M, N) = beta*C + A (M, K) @ W (N, K)^T, for every kernel this CPU can run (avx512, avx2, scalar):
 *   - against a double-precision reference: |C - ref| <= 1e-5 * sum_k |a_k w_k| + 1e-30 (a bound
 *     that holds for any summation order, so for AVX-512 and AVX2 machines alike);
 *   - beta = 0 ignores C's old contents (NaN there stays out), beta = 1 and 0.5 accumulate;
 *   - row strides larger than the widths (lda, ldw, ldc), N not a multiple of 4, K not a multiple of
 *     the vector width, K smaller than one vector;
 *   - batch independence: row m of a product over M rows is bitwise the product of that row alone,
 *     and a column block computed as a sub-range of N (as threads split it) is bitwise the same;
 *   - llama_sgemm (the threaded entry point) for M <= LLAMA_SMALL_MAX_ROWS equals llama_sgemm_small;
 *   - an unknown kernel name is refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama.h"
#include "model/llama_internal.h"
#include "model/llama_rng.h"
#include "tests/testing.h"

static float frand(llama_rng *r) { return (float)((double)(llama_rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void check_case(int M, int N, int K, int pad, float beta, llama_rng *r, const char *isa) {
    const int lda = K + pad, ldw = K + 2 * pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * M * lda), *W = malloc(sizeof(float) * N * ldw);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    float *row = malloc(sizeof(float) * ldc);
    for (int i = 0; i < M * lda; i++) A[i] = frand(r);
    for (int i = 0; i < N * ldw; i++) W[i] = frand(r);
    for (int i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand(r);
    memcpy(C, C0, sizeof(float) * M * ldc);
    llama_sgemm_small(M, N, K, A, lda, W, ldw, beta, C, ldc);
    int bad = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                ref += (double)A[m * lda + k] * W[n * ldw + k];
                mag += fabs((double)A[m * lda + k] * W[n * ldw + k]);
            }
            if (beta != 0.0f) { ref += (double)beta * C0[m * ldc + n]; mag += fabs(beta * C0[m * ldc + n]); }
            if (!(fabs(C[m * ldc + n] - ref) <= 1e-5 * mag + 1e-30)) bad++;
        }
    CHECK_MSG(bad == 0, "%s M=%d N=%d K=%d pad=%d beta=%g: %d entries off the reference", isa, M, N, K, pad, beta, bad);
    /* padding columns of C untouched */
    int pad_changed = 0;
    for (int m = 0; m < M; m++)
        for (int n = N; n < ldc; n++)
            if (memcmp(&C[m * ldc + n], &C0[m * ldc + n], sizeof(float))) pad_changed++;
    CHECK_MSG(pad_changed == 0, "%s M=%d N=%d: %d entries past N written", isa, M, N, pad_changed);
    /* each row alone: bitwise equal */
    int diff = 0;
    for (int m = 0; m < M; m++) {
        memcpy(row, C0 + (size_t)m * ldc, sizeof(float) * ldc);
        llama_sgemm_small(1, N, K, A + (size_t)m * lda, lda, W, ldw, beta, row, ldc);
        diff += memcmp(row, C + (size_t)m * ldc, sizeof(float) * N) != 0;
    }
    CHECK_MSG(diff == 0, "%s M=%d N=%d K=%d: %d rows differ from the same row computed alone", isa, M, N, K, diff);
    /* a block of columns starting at a multiple of 16 (as llama_sgemm's threads split N): bitwise equal */
    if (N > 16) {
        memcpy(row, C0, sizeof(float) * ldc);
        llama_sgemm_small(1, N - 16, K, A, lda, W + (size_t)16 * ldw, ldw, beta, row + 16, ldc);
        CHECK_MSG(!memcmp(row + 16, C + 16, sizeof(float) * (N - 16)), "%s: a column block differs", isa);
    }
    free(A); free(W); free(C); free(C0); free(row);
}

int main(void) {
    llama_rng r;
    llama_rng_seed(&r, 2048, 0);
    const char *isas[] = {"avx512", "avx2", "scalar"};
    int ran = 0;
    for (int i = 0; i < 3; i++) {
        if (llama_sgemm_small_set_isa(isas[i]) != 0) {
            printf("%s: not available on this CPU\n", isas[i]);
            continue;
        }
        ran++;
        CHECK(!strcmp(llama_sgemm_small_isa(), isas[i]));
        static const int Ms[] = {1, 2, 3, 4, 5, 7, 16, 33};
        static const int NKs[][2] = {{1, 1}, {4, 32}, {5, 31}, {19, 64}, {64, 576}, {37, 100}, {7, 15}};
        for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
            for (size_t b = 0; b < sizeof NKs / sizeof NKs[0]; b++) {
                check_case(Ms[a], NKs[b][0], NKs[b][1], 0, 0.0f, &r, isas[i]);
                check_case(Ms[a], NKs[b][0], NKs[b][1], 3, 1.0f, &r, isas[i]);
            }
        check_case(6, 40, 130, 5, 0.5f, &r, isas[i]);
    }
    CHECK(ran >= 1);
    CHECK(llama_sgemm_small_set_isa("avx1024") == -1);
    CHECK(llama_sgemm_small_set_isa(NULL) == 0);

    /* llama_sgemm's threaded small-M path = llama_sgemm_small (no reduction split over threads) */
    enum { M = 6, N = 1000, K = 300 };
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = frand(&r);
    for (int i = 0; i < N * K; i++) W[i] = frand(&r);
    llama_sgemm(0, 1, M, N, K, A, K, W, K, 0.0f, C1, N);
    llama_sgemm_small(M, N, K, A, K, W, K, 0.0f, C2, N);
    CHECK(!memcmp(C1, C2, sizeof(float) * M * N));
    CHECK(M <= LLAMA_SMALL_MAX_ROWS);
    free(A); free(W); free(C1); free(C2);
    return TEST_DONE();
}
