/*
 * bench/bench_gemm_small.c: the decoding product C (M, N) = A (M, K) @ W (N, K)^T on one thread, for
 * M = 1..64 rows and SmolLM2-135M's weight shapes (q_proj 576x576, k/v 192x576, gate/up 1536x576,
 * down 576x1536, LM head 49152x576): llama_sgemm_small against cblas_sgemm and one cblas_sgemv per row,
 * interleaved in one run (round-robin, best of R rounds each, caches flushed before each timed call
 * set by streaming over a 256 MiB buffer, since decoding reads weights that are not cache-resident),
 * as ratios. Prints the microseconds per
 * call summed over the seven products of a layer-and-head and the speed-up of llama_sgemm_small.
 * Usage: bench_gemm_small [rounds]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/blas_select.h"
#include "model/llama.h"
#include "model/llama_internal.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1) rounds = 1;
    llama_blas_init();
    static const int shapes[][2] = {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}};
    enum { NS = 7, VOCAB = 49152, C = 576, MAXM = 64 };
    float *W[NS + 1], *A = aligned_alloc(64, sizeof(float) * MAXM * 1536), *out = malloc(sizeof(float) * MAXM * VOCAB);
    for (int i = 0; i <= NS; i++) {
        size_t n = i < NS ? (size_t)shapes[i][0] * shapes[i][1] : (size_t)VOCAB * C;
        W[i] = aligned_alloc(64, (sizeof(float) * n + 63) / 64 * 64);
        for (size_t j = 0; j < n; j++) W[i][j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
    }
    for (int j = 0; j < MAXM * 1536; j++) A[j] = (float)(j % 37) * 0.01f;
    const size_t flush_n = (size_t)64 << 20;
    float *flush = malloc(sizeof(float) * flush_n), sink = 0.0f;
    for (size_t j = 0; j < flush_n; j++) flush[j] = (float)(j & 7);
    char blas[256];
    blas_describe(blas, sizeof blas);
    printf("one thread, %s, llama_sgemm_small: %s; best of %d interleaved rounds\n", blas, llama_sgemm_small_isa(), rounds);
    printf("%4s %12s %12s %12s %10s %10s | %12s %12s %8s\n", "M", "layer small", "layer sgemm", "layer sgemv",
           "sgemm/sm", "sgemv/sm", "head small", "head sgemm", "sgemm/sm");
    static const int Ms[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64};
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
        int M = Ms[mi];
        double best[3] = {1e30, 1e30, 1e30}, head[2] = {1e30, 1e30};
        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < 3; v++) {
                for (size_t j = 0; j < flush_n; j += 16) sink += flush[j];
                double t0 = now();
                for (int i = 0; i < NS; i++) {
                    int N = shapes[i][0], K = shapes[i][1];
                    if (v == 0) llama_sgemm_small(M, N, K, A, K, W[i], K, 0.0f, out, N);
                    else if (v == 1) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W[i], K, 0.0f, out, N);
                    else for (int m = 0; m < M; m++)
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W[i], K, A + (size_t)m * K, 1, 0.0f, out + (size_t)m * N, 1);
                }
                double t = now() - t0;
                if (t < best[v]) best[v] = t;
            }
            for (int v = 0; v < 2; v++) {
                for (size_t j = 0; j < flush_n; j += 16) sink += flush[j];
                double t0 = now();
                if (v == 0) llama_sgemm_small(M, VOCAB, C, A, C, W[NS], C, 0.0f, out, VOCAB);
                else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, VOCAB, C, 1.0f, A, C, W[NS], C, 0.0f, out, VOCAB);
                double t = now() - t0;
                if (t < head[v]) head[v] = t;
            }
        }
        printf("%4d %10.1fus %10.1fus %10.1fus %10.2fx %10.2fx | %10.1fus %10.1fus %7.2fx\n", M, 1e6 * best[0],
               1e6 * best[1], 1e6 * best[2], best[1] / best[0], best[2] / best[0], 1e6 * head[0], 1e6 * head[1],
               head[1] / head[0]);
    }
    return sink == 12345.0f; /* keeps the flush loops */
}
