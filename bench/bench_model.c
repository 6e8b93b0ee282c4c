/*
 * bench/bench_model.c: speed of the CPU model (model/llama.h) on a ~3M-parameter Llama
 * (C=256, L=4, NH=8, NKV=2, HS=32, F=704, V=512, tied embeddings):
 *   - training: llama_forward_logprobs + llama_backward_logprobs on B x T = 8 x 256 tokens,
 *     tokens/s and GFLOP/s (forward FLOPs from llama_forward_flops, backward counted as 2x forward);
 *   - generation: llama_generate with a 64-token prompt and 150 new tokens (no eos) for G = 1, 8, 16
 *     rows, generated tokens/s and GFLOP/s (2 FLOPs per matrix parameter per token + attention).
 * Usage: bench_model [iterations]   (threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/llama.h"
#include "model/llama_rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int openblas_get_num_threads(void);

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 5;
    if (iters < 1) iters = 1;
    llama_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.architecture, "LlamaForCausalLM");
    c.vocab_size = 512;
    c.hidden_size = 256;
    c.intermediate_size = 704;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 2;
    c.head_dim = 32;
    c.max_position_embeddings = 1024;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tie_word_embeddings = 1;
    c.bos_token_id = -1;
    c.pad_token_id = -1;
    llama_model m;
    if (llama_init_random(&m, &c, 1, 0.02f) != 0) {
        fprintf(stderr, "llama_init_random failed\n");
        return 1;
    }
    printf("model: %zu parameters, %d OpenMP threads, %d OpenBLAS threads\n", m.num_params, omp_get_max_threads(),
           openblas_get_num_threads());
    printf("activation buffers for B*T = 2048 tokens: %.1f MiB\n", llama_activation_bytes(&c, 2048) / 1048576.0);

    /* training */
    enum { B = 8, T = 256 };
    int *tok = malloc(sizeof(int) * B * T);
    float *logp = malloc(sizeof(float) * B * T), *dlogp = malloc(sizeof(float) * B * T);
    llama_rng r;
    llama_rng_seed(&r, 1, 0);
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int)(llama_rng_next(&r) % (uint64_t)c.vocab_size);
        dlogp[i] = 1.0f / (B * T);
    }
    llama_forward_logprobs(&m, tok, B, T, logp, NULL); /* warm-up, allocates */
    llama_backward_logprobs(&m, dlogp);
    double tf = 0.0, tb = 0.0;
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        llama_forward_logprobs(&m, tok, B, T, logp, NULL);
        double t1 = now();
        llama_backward_logprobs(&m, dlogp);
        double t2 = now();
        tf += t1 - t0;
        tb += t2 - t1;
    }
    tf /= iters;
    tb /= iters;
    double ff = llama_forward_flops(&c, B, T);
    printf("train B=%d T=%d: forward %.1f ms (%.1f GFLOP/s), backward %.1f ms (%.1f GFLOP/s), "
           "forward+backward %.0f tokens/s, %.1f GFLOP/s\n",
           B, T, 1e3 * tf, ff / tf * 1e-9, 1e3 * tb, 2 * ff / tb * 1e-9, B * T / (tf + tb), 3 * ff / (tf + tb) * 1e-9);

    /* generation */
    enum { P = 64, NEW = 150 };
    int prompt[P];
    for (int i = 0; i < P; i++) prompt[i] = (int)(llama_rng_next(&r) % (uint64_t)c.vocab_size);
    /* matrix parameters used per decoded token: the projections and the (tied) LM head */
    double mat_params = 0.0;
    for (int i = 0; i < m.num_tensors; i++) if (m.tensors[i].ndim == 2) mat_params += (double)m.tensors[i].numel;
    int Gs[3] = {1, 8, 16};
    llama_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    for (int gi = 0; gi < 3; gi++) {
        int G = Gs[gi];
        int *out = malloc(sizeof(int) * G * NEW), *len = malloc(sizeof(int) * G);
        char err[256];
        double best = 1e30;
        for (int it = 0; it < (iters < 3 ? iters : 3); it++) {
            double t0 = now();
            if (llama_generate(&m, prompt, P, G, NEW, &s, (uint64_t)it, out, len, err, sizeof err) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            double t = now() - t0;
            if (t < best) best = t;
        }
        /* FLOPs: prefill P tokens once, then G rows x NEW tokens; attention 4*NH*HS per cached position */
        double att = 0.0;
        for (int t = P; t < P + NEW; t++) att += 4.0 * c.num_attention_heads * c.head_dim * (t + 1) * c.num_hidden_layers;
        double flops = llama_forward_flops(&c, 1, P) + (double)G * (NEW * 2.0 * mat_params + att);
        printf("generate G=%2d P=%d new=%d: %.0f ms, %.0f tokens/s, %.1f GFLOP/s\n", G, P, NEW, 1e3 * best,
               G * NEW / best, flops / best * 1e-9);
        free(out);
        free(len);
    }
    free(tok);
    free(logp);
    free(dlogp);
    llama_free(&m);
    return 0;
}
