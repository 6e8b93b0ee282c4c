/*
 * bench/bench_model.c: speed of the CPU model (model/llama.h) on a model shape with random weights:
 *   - peak: this process's llama_sgemm (the same threads and split as the model uses) on a
 *     2048 x 2048 x 2048 product, GFLOP/s: the ceiling the training step is compared with;
 *   - training: llama_forward_logprobs + llama_backward_logprobs on B x T tokens, tokens/s and
 *     GFLOP/s (forward FLOPs from llama_forward_flops, backward counted as 2x forward), and that as
 *     a fraction of the peak;
 *   - generation: llama_generate with a P-token prompt and NEW new tokens (no eos: the model's eos
 *     ids are cleared) for G rows, generated tokens/s and GFLOP/s (2 FLOPs per matrix parameter per
 *     token + attention).
 * Usage: bench_model [--shape tiny|default|smollm2|qwen0.5b] [--iters N] [--batch B] [--seq T]
 *                    [--rows G[,G...]] [--prompt P] [--new NEW] [--no-train] [--no-generate] [--json] [--bf16]
 * Shapes: tiny ~3M (C=256, L=4, NH=8, NKV=2, F=704, V=512; the default), default = model/default's
 * (C=192, L=4, NH=6, NKV=2, F=512, V=1024), smollm2 = SmolLM2-135M (C=576, L=30, NH=9, NKV=3,
 * F=1536, V=49152), qwen0.5b = Qwen2.5-0.5B (C=896, L=24, NH=14, NKV=2, F=4864, V=151936, bias).
 * --json prints one JSON object per measurement (for bench/bench_vs_torch.py).
 * --bf16 trains with bf16 matrix products (llama_set_bf16; an error where the CPU cannot) and also
 * measures the bf16 peak (2048^3 through llama_gemm_bf16); the fraction of peak is then of that one.
 * Threads: OMP_NUM_THREADS.
 */
#include <ctype.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/llama.h"
#include "model/llama_rng.h"
#include "model/llama_internal.h"
#include "model/blas_select.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void set_shape(llama_config *c, const char *shape) {
    memset(c, 0, sizeof *c);
    strcpy(c->architecture, "LlamaForCausalLM");
    c->max_position_embeddings = 4096;
    c->rms_norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->tie_word_embeddings = 1;
    c->bos_token_id = -1;
    c->pad_token_id = -1;
    if (!strcmp(shape, "smollm2")) {
        c->vocab_size = 49152; c->hidden_size = 576; c->intermediate_size = 1536; c->num_hidden_layers = 30;
        c->num_attention_heads = 9; c->num_key_value_heads = 3; c->head_dim = 64; c->rope_theta = 100000.0f;
    } else if (!strcmp(shape, "qwen0.5b")) {
        strcpy(c->architecture, "Qwen2ForCausalLM");
        c->vocab_size = 151936; c->hidden_size = 896; c->intermediate_size = 4864; c->num_hidden_layers = 24;
        c->num_attention_heads = 14; c->num_key_value_heads = 2; c->head_dim = 64; c->attention_bias = 1;
        c->rope_theta = 1000000.0f; c->rms_norm_eps = 1e-6f;
    } else if (!strcmp(shape, "default")) {
        c->vocab_size = 1024; c->hidden_size = 192; c->intermediate_size = 512; c->num_hidden_layers = 4;
        c->num_attention_heads = 6; c->num_key_value_heads = 2; c->head_dim = 32;
    } else if (!strcmp(shape, "tiny")) {
        c->vocab_size = 512; c->hidden_size = 256; c->intermediate_size = 704; c->num_hidden_layers = 4;
        c->num_attention_heads = 8; c->num_key_value_heads = 2; c->head_dim = 32;
    } else {
        fprintf(stderr, "bench_model: unknown --shape '%s' (tiny, default, smollm2, qwen0.5b)\n", shape);
        exit(2);
    }
}

int main(int argc, char **argv) {
    const char *shape = "tiny";
    int iters = 5, B = 8, T = 256, P = 64, NEW = 150, do_train = 1, do_gen = 1, json = 0, bf16 = 0;
    int Gs[16] = {1, 8, 16}, nG = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--shape") && v) { shape = v; i++; }
        else if (!strcmp(a, "--iters") && v) { iters = atoi(v); i++; }
        else if (!strcmp(a, "--batch") && v) { B = atoi(v); i++; }
        else if (!strcmp(a, "--seq") && v) { T = atoi(v); i++; }
        else if (!strcmp(a, "--prompt") && v) { P = atoi(v); i++; }
        else if (!strcmp(a, "--new") && v) { NEW = atoi(v); i++; }
        else if (!strcmp(a, "--rows") && v) {
            nG = 0;
            for (char *t = strtok(strdup(v), ","); t && nG < 16; t = strtok(NULL, ",")) Gs[nG++] = atoi(t);
            i++;
        }
        else if (!strcmp(a, "--no-train")) do_train = 0;
        else if (!strcmp(a, "--no-generate")) do_gen = 0;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--bf16")) bf16 = 1;
        else if (isdigit((unsigned char)a[0])) iters = atoi(a); /* the old positional [iterations] */
        else { fprintf(stderr, "bench_model: unknown argument '%s' (see the header of bench/bench_model.c)\n", a); return 2; }
    }
    if (iters < 1) iters = 1;
    if (B < 1 || T < 2 || P < 1 || NEW < 1) { fprintf(stderr, "bench_model: sizes must be positive\n"); return 2; }
    llama_config c;
    set_shape(&c, shape);
    llama_model m;
    if (llama_init_random(&m, &c, 1, 0.02f) != 0) {
        fprintf(stderr, "llama_init_random failed\n");
        return 1;
    }
    if (bf16) {
        char why[160];
        if (llama_set_bf16(&m, 1, why, sizeof why) != 0) {
            fprintf(stderr, "bench_model: --bf16: %s\n", why);
            return 2;
        }
    }
    char blas[256];
    blas_describe(blas, sizeof blas);
    if (!json) {
        printf("model %s: %zu parameters, %d OpenMP threads, %s\n", shape, m.num_params, omp_get_max_threads(), blas);
        printf("activation buffers for B*T = %d tokens: %.1f MiB\n", B * T, llama_activation_bytes(&c, (size_t)B * T) / 1048576.0);
    }

    /* sgemm peak with the model's own split over threads */
    double peak = 0.0;
    {
        enum { N = 2048 };
        float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N), *o = malloc(sizeof(float) * N * N);
        for (size_t i = 0; i < (size_t)N * N; i++) { a[i] = (float)(i % 97) * 0.01f; b[i] = (float)(i % 89) * 0.01f; }
        llama_prec prec0 = {.bf16 = bf16}, *prec = &prec0;
        llama_gemm(prec, 0, 1, N, N, N, a, N, b, N, 0.0f, o, N);
        for (int it = 0; it < 3; it++) {
            double t0 = now();
            llama_gemm(prec, 0, 1, N, N, N, a, N, b, N, 0.0f, o, N);
            double t = now() - t0;
            if (2.0 * N * N * N / t * 1e-9 > peak) peak = 2.0 * N * N * N / t * 1e-9;
        }
        free(a); free(b); free(o);
        if (json) printf("{\"bench\":\"peak\",\"shape\":\"%s\",\"threads\":%d,\"precision\":\"%s\",\"gflops\":%.2f}\n",
                         shape, omp_get_max_threads(), bf16 ? "bf16" : "fp32", peak);
        else printf("%s peak (2048^3, %s, %d threads): %.1f GFLOP/s\n", bf16 ? "bf16 matmul" : "sgemm",
                    bf16 ? llama_bf16_isa_name() : "llama_sgemm", omp_get_max_threads(), peak);
    }

    llama_rng r;
    llama_rng_seed(&r, 1, 0);
    if (do_train) {
        int *tok = malloc(sizeof(int) * B * T);
        float *logp = malloc(sizeof(float) * B * T), *dlogp = malloc(sizeof(float) * B * T);
        for (int i = 0; i < B * T; i++) {
            tok[i] = (int)(llama_rng_next(&r) % (uint64_t)c.vocab_size);
            dlogp[i] = 1.0f / (B * T);
        }
        llama_forward_logprobs(&m, tok, B, T, logp, NULL); /* warm-up, allocates */
        llama_backward_logprobs(&m, dlogp);
        double tf = 1e30, tb = 1e30;
        for (int it = 0; it < iters; it++) {
            double t0 = now();
            llama_forward_logprobs(&m, tok, B, T, logp, NULL);
            double t1 = now();
            llama_backward_logprobs(&m, dlogp);
            double t2 = now();
            if (t1 - t0 + t2 - t1 < tf + tb) { tf = t1 - t0; tb = t2 - t1; }
        }
        double ff = llama_forward_flops(&c, B, T);
        if (json)
            printf("{\"bench\":\"train\",\"shape\":\"%s\",\"B\":%d,\"T\":%d,\"forward_s\":%.6f,\"backward_s\":%.6f,"
                   "\"tokens_per_s\":%.2f,\"gflops\":%.2f,\"peak_fraction\":%.4f}\n", shape, B, T, tf, tb,
                   B * T / (tf + tb), 3 * ff / (tf + tb) * 1e-9, 3 * ff / (tf + tb) * 1e-9 / peak);
        else
            printf("train B=%d T=%d (best of %d): forward %.1f ms (%.1f GFLOP/s), backward %.1f ms (%.1f GFLOP/s), "
                   "forward+backward %.0f tokens/s, %.1f GFLOP/s = %.0f%% of the %s peak\n",
                   B, T, iters, 1e3 * tf, ff / tf * 1e-9, 1e3 * tb, 2 * ff / tb * 1e-9, B * T / (tf + tb),
                   3 * ff / (tf + tb) * 1e-9, 100.0 * 3 * ff / (tf + tb) * 1e-9 / peak, bf16 ? "bf16 matmul" : "sgemm");
        free(tok);
        free(logp);
        free(dlogp);
    }

    if (do_gen) {
        m.cfg.num_eos = 0; /* every row runs NEW tokens */
        int *prompt = malloc(sizeof(int) * P);
        for (int i = 0; i < P; i++) prompt[i] = (int)(llama_rng_next(&r) % (uint64_t)c.vocab_size);
        /* matrix parameters used per decoded token: the projections and the (tied) LM head */
        double mat_params = 0.0;
        for (int i = 0; i < m.num_tensors; i++) if (m.tensors[i].ndim == 2) mat_params += (double)m.tensors[i].numel;
        llama_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
        for (int gi = 0; gi < nG; gi++) {
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
            if (json)
                printf("{\"bench\":\"generate\",\"shape\":\"%s\",\"G\":%d,\"P\":%d,\"new\":%d,\"seconds\":%.6f,"
                       "\"tokens_per_s\":%.2f,\"gflops\":%.2f}\n", shape, G, P, NEW, best, G * NEW / best, flops / best * 1e-9);
            else
                printf("generate G=%2d P=%d new=%d: %.0f ms, %.1f tokens/s, %.1f GFLOP/s\n", G, P, NEW, 1e3 * best,
                       G * NEW / best, flops / best * 1e-9);
            free(out);
            free(len);
        }
        free(prompt);
    }
    llama_free(&m);
    return 0;
}
