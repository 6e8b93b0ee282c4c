/*
 * bench/cuda/bench_cuda.c: the CUDA backend's speed on a Qwen2.5-0.5B-shaped model with random
 * weights (V 151936, C 896, F 4864, 24 layers, 14/2 heads of 64, tied embeddings, q/k/v biases).
 *
 *   decode:   llama_cuda_generate with a 64-token prompt and 512 new tokens (no eos, temperature 1)
 *             at generation batch G = 1, 16, 64, 256: tokens/s, and the HBM roofline of a decode
 *             step (weights + the KV cache read once per step at the average position, over the
 *             datasheet bandwidth) as tokens/s and as the fraction reached.
 *   training: one GRPO-style step (forward, backward with a dlogp on the last 3/4 of each row, grad
 *             clipping, AdamW) on B x T tokens: median of 5 steps after a warm-up; tokens/s and MFU
 *             = 3 x forward FLOPs (llama_forward_flops: matrix products incl. attention, backward =
 *             2 x forward) / time / dense peak of the precision.
 *   memory:   peak device bytes of each phase (llama_cuda_get_memory).
 *
 * Usage: bench_cuda [--precision bf16|tf32|fp32] [--batches 1,16,64,256] [--prompt 64] [--new 512]
 *                   [--train-b 16] [--train-t 512] [--layers 24] [--hbm-gbps 4800] [--peak-tflops X]
 *                   [--no-decode] [--no-train] [--attn native|cudnn]
 * --attn: the training step's attention implementation (llama_cuda_set_attn_implementation; cudnn: bf16
 * only, cuDNN's fused flash attention). Decoding always runs our cached-attention kernel.
 * Peaks default to the H200/H100 SXM datasheet (dense bf16 989 TFLOP/s, tf32 495, fp32 67; HBM
 * 4.8 TB/s for an H200, 3.35 TB/s for an H100, by the device name). Without a CUDA device it
 * prints "SKIP: no CUDA device" and exits 0. bench/cuda/bench_torch.py runs the same shapes with
 * PyTorch + transformers for the ratios (docs/gpu.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/cuda/llama_cuda.h"
#include "model/cuda/llama_cuda_layers.h"
#include "model/llama.h"
#include "model/llama_rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static llama_config qwen25_05b(int layers) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "Qwen2ForCausalLM");
    c.vocab_size = 151936;
    c.hidden_size = 896;
    c.intermediate_size = 4864;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 14;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.max_position_embeddings = 32768;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 1000000.0f;
    c.tie_word_embeddings = 1;
    c.attention_bias = 1;
    c.bos_token_id = -1;
    c.pad_token_id = -1;
    c.num_eos = 0; /* every row runs to max_new */
    return c;
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_cuda: %s: %s\n", what, err);
    exit(1);
}

int main(int argc, char **argv) {
    int precision = LLAMA_CUDA_BF16, P = 64, NEW = 512, TB = 16, TT = 512, layers = 24, decode = 1, train = 1;
    int batches[16] = {1, 16, 64, 256}, nb = 4, attn = LLAMA_CUDA_ATTN_NATIVE;
    double hbm = 0, peak = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--precision")) {
            precision = !strcmp(v, "fp32") ? LLAMA_CUDA_FP32 : !strcmp(v, "tf32") ? LLAMA_CUDA_TF32
                      : !strcmp(v, "bf16") ? LLAMA_CUDA_BF16 : -1;
            if (precision < 0) die("--precision", "expected bf16, tf32 or fp32");
            i++;
        } else if (!strcmp(a, "--batches")) {
            nb = 0;
            for (char *s = (char *)v; *s && nb < 16;) {
                batches[nb++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
                else break;
            }
            i++;
        } else if (!strcmp(a, "--prompt")) { P = atoi(v); i++; }
        else if (!strcmp(a, "--new")) { NEW = atoi(v); i++; }
        else if (!strcmp(a, "--train-b")) { TB = atoi(v); i++; }
        else if (!strcmp(a, "--train-t")) { TT = atoi(v); i++; }
        else if (!strcmp(a, "--layers")) { layers = atoi(v); i++; }
        else if (!strcmp(a, "--hbm-gbps")) { hbm = atof(v) * 1e9; i++; }
        else if (!strcmp(a, "--peak-tflops")) { peak = atof(v) * 1e12; i++; }
        else if (!strcmp(a, "--no-decode")) decode = 0;
        else if (!strcmp(a, "--no-train")) train = 0;
        else if (!strcmp(a, "--attn")) {
            attn = !strcmp(v, "native") ? LLAMA_CUDA_ATTN_NATIVE : !strcmp(v, "cudnn") ? LLAMA_CUDA_ATTN_CUDNN : -1;
            if (attn < 0) die("--attn", "expected native or cudnn");
            i++;
        } else {
            fprintf(stderr, "usage: %s [--precision bf16|tf32|fp32] [--batches 1,16,64,256] [--prompt P] [--new N] "
                    "[--train-b B] [--train-t T] [--layers L] [--hbm-gbps X] [--peak-tflops X] [--no-decode] "
                    "[--no-train] [--attn native|cudnn]\n", argv[0]);
            return 2;
        }
    }
    if (P < 1 || NEW < 1 || TB < 1 || TT < 2 || layers < 1) die("arguments", "sizes must be positive (train-t >= 2)");
    if (llama_cuda_device_count() < 1) {
        printf("SKIP: no CUDA device\n");
        return 0;
    }
    char info[256];
    llama_cuda_device_info(0, info, sizeof info);
    if (hbm == 0) hbm = strstr(info, "H100") ? 3.35e12 : 4.8e12;
    if (peak == 0) peak = precision == LLAMA_CUDA_BF16 ? 989.4e12 : precision == LLAMA_CUDA_TF32 ? 494.7e12 : 66.9e12;
    const char *pname = precision == LLAMA_CUDA_BF16 ? "bf16" : precision == LLAMA_CUDA_TF32 ? "tf32" : "fp32";
    printf("device: %s\nprecision: %s, HBM %.2f TB/s, dense peak %.1f TFLOP/s\n", info, pname, hbm / 1e12, peak / 1e12);

    llama_config cfg = qwen25_05b(layers);
    llama_model m;
    double t0 = now_s();
    if (llama_init_random(&m, &cfg, 1, 0.02f)) die("llama_init_random", "out of host memory");
    printf("model: Qwen2.5-0.5B shape, %d layers, %.1fM parameters (random init %.1f s)\n", layers, m.num_params / 1e6,
           now_s() - t0);
    llama_cuda_model cm;
    char err[256];
    if (llama_cuda_create(&cm, &m, 0, precision, err, sizeof err)) die("llama_cuda_create", err);
    if (llama_cuda_set_attn_implementation(&cm, attn, err, sizeof err)) die("--attn", err);
    printf("training attention: %s\n", attn == LLAMA_CUDA_ATTN_CUDNN ? "cudnn (cuDNN fused flash attention)" : "native");
    llama_cuda_memory mem;
    int A = precision == LLAMA_CUDA_BF16 ? 2 : 4;
    int KD = cfg.num_key_value_heads * cfg.head_dim;
    double dec_tps[16] = {0}, dec_roof[16] = {0}, dec_mem[16] = {0};

    if (decode) {
        int *prompt = malloc(sizeof(int) * P);
        llama_rng r;
        llama_rng_seed(&r, 5, 0);
        for (int i = 0; i < P; i++) prompt[i] = (int)(llama_rng_next(&r) % (uint64_t)cfg.vocab_size);
        llama_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
        for (int bi = 0; bi < nb; bi++) {
            int G = batches[bi];
            int *out = malloc(sizeof(int) * (size_t)G * NEW), *len = malloc(sizeof(int) * G);
            if (llama_cuda_generate(&cm, prompt, P, G, NEW < 4 ? NEW : 4, &s, 1, out, len, NULL, err, sizeof err))
                die("warm-up", err);
            llama_cuda_reset_peak(&cm);
            double t = now_s();
            if (llama_cuda_generate(&cm, prompt, P, G, NEW, &s, 2, out, len, NULL, err, sizeof err))
                die("llama_cuda_generate", err);
            t = now_s() - t;
            long long toks = 0;
            for (int g = 0; g < G; g++) toks += len[g];
            llama_cuda_get_memory(&cm, &mem);
            /* roofline: each step reads every weight once (the matrix-product copy) and each row's KV
             * cache up to the average position */
            double weights = (double)m.num_params * A;
            double kv = (double)G * cfg.num_hidden_layers * 2.0 * KD * A * (P + NEW / 2.0);
            double step_s = (weights + kv) / hbm;
            dec_tps[bi] = toks / t;
            dec_roof[bi] = G / step_s;
            dec_mem[bi] = mem.peak_bytes / 1073741824.0;
            printf("decode G=%-4d %8.0f tokens/s  (%lld tokens in %.2f s; HBM roofline %.0f tokens/s, %.0f%% of it; "
                   "peak %.2f GiB)\n", G, dec_tps[bi], toks, t, dec_roof[bi], 100.0 * dec_tps[bi] / dec_roof[bi],
                   dec_mem[bi]);
            free(out);
            free(len);
        }
        free(prompt);
    }

    double tr_tps = 0, tr_mfu = 0, tr_ms = 0, tr_mem = 0;
    if (train) {
        size_t N = (size_t)TB * TT;
        int *tok = malloc(sizeof(int) * N);
        float *logp = malloc(sizeof(float) * N), *dlogp = malloc(sizeof(float) * N);
        llama_rng r;
        llama_rng_seed(&r, 6, 0);
        for (size_t i = 0; i < N; i++) {
            tok[i] = (int)(llama_rng_next(&r) % (uint64_t)cfg.vocab_size);
            dlogp[i] = (int)(i % TT) >= TT / 4 ? (float)(llama_rng_uniform(&r) - 0.5) / (float)N : 0.0f;
        }
        llama_cuda_adamw_hparams h = {1e-6f, 0.9f, 0.999f, 1e-8f, 0.0f};
        double times[6];
        llama_cuda_reset_peak(&cm);
        for (int it = 0; it < 6; it++) {
            double t = now_s();
            llama_cuda_zero_grad(&cm);
            if (llama_cuda_forward_logprobs(&cm, tok, TB, TT, logp, NULL)) die("forward", cm.err);
            llama_cuda_backward_logprobs(&cm, dlogp);
            llama_cuda_clip_grad_norm(&cm, 1.0);
            if (llama_cuda_adamw_step(&cm, &h, err, sizeof err)) die("adamw", err);
            llama_cuda_sync(cm.ctx); /* AdamW is asynchronous */
            times[it] = now_s() - t;
        }
        llama_cuda_get_memory(&cm, &mem);
        qsort(times + 1, 5, sizeof(double), cmp_double);
        double t = times[3];
        double flops = 3.0 * llama_forward_flops(&cfg, TB, TT);
        tr_ms = t * 1e3;
        tr_tps = N / t;
        tr_mfu = flops / t / peak;
        tr_mem = mem.peak_bytes / 1073741824.0;
        printf("train B=%d T=%d: %.1f ms/step, %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% (peak %.2f GiB)\n", TB, TT, tr_ms,
               tr_tps, flops / t / 1e12, 100.0 * tr_mfu, tr_mem);
        free(tok);
        free(logp);
        free(dlogp);
    }

    printf("\n| %s | tokens/s | HBM roofline tokens/s | fraction | peak GiB |\n|---|---|---|---|---|\n", pname);
    for (int bi = 0; decode && bi < nb; bi++)
        printf("| decode G=%d (P=%d, new=%d) | %.0f | %.0f | %.0f%% | %.2f |\n", batches[bi], P, NEW, dec_tps[bi],
               dec_roof[bi], 100.0 * dec_tps[bi] / dec_roof[bi], dec_mem[bi]);
    if (train)
        printf("| train step B=%d T=%d | %.0f | MFU %.1f%% | %.1f ms | %.2f |\n", TB, TT, tr_tps, 100.0 * tr_mfu, tr_ms,
               tr_mem);
    long att_cudnn = 0, att_native = 0;
    llama_cuda_attn_counts(cm.ctx, &att_cudnn, &att_native);
    if (train) printf("training attention calls: cuDNN %ld, native %ld\n", att_cudnn, att_native);
    llama_cuda_free(&cm);
    llama_free(&m);
    return 0;
}
