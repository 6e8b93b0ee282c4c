/*
 * tests/gpu/gpu_test_util.h: helpers shared by the tests/gpu/test_cuda_*.c executables (header-only,
 * included once per test): the skip when there is no CUDA device, the normalized error
 * ||a - ref|| / ||ref|| (ggml's test-backend-ops style) and its thresholds per precision, random
 * data, bf16 rounding of inputs, device buffers, and small model configs.
 *
 * Thresholds (the issue's): a layer's output against the CPU's on the same inputs, normalized
 * error below 1e-5 in FP32, 1e-3 in TF32, 1e-2 in BF16. In BF16 the inputs are rounded to bf16
 * first (both sides see the values the GPU stores), so the error measured is the GPU's own.
 *
 * Built against model_cuda (tests/gpu/test_x) or against model_cuda_emu (test_x_emu, the CPU
 * emulator of CUDA, GRPO2048_CUDA_EMU defined), where sizes that only cost time are reduced.
 */
#ifndef GRPO2048_GPU_TEST_UTIL_H
#define GRPO2048_GPU_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/llama_cuda.h"
#include "model/cuda/llama_cuda_layers.h"
#include "model/llama.h"
#include "model/llama_rng.h"
#include "tests/testing.h"

#ifdef GRPO2048_CUDA_EMU
#define GPU_TEST_EMU 1
#else
#define GPU_TEST_EMU 0
#endif

static const int test_precisions[3] = {LLAMA_CUDA_FP32, LLAMA_CUDA_TF32, LLAMA_CUDA_BF16};
static const char *const precision_names[3] = {"fp32", "tf32", "bf16"};

/* Exits 77 (ctest's skip) with "SKIP: no CUDA device" when no GPU is usable. */
static inline void skip_without_device(void) {
    if (llama_cuda_device_count() < 1) SKIP("no CUDA device");
    char info[256];
    if (llama_cuda_device_info(0, info, sizeof info) == 0) printf("device 0: %s\n", info);
}

/* The layer threshold of a precision (see the top of this file). */
static inline double layer_tol(int precision) {
    return precision == LLAMA_CUDA_FP32 ? 1e-5 : precision == LLAMA_CUDA_TF32 ? 1e-3 : 1e-2;
}

/* ||a - ref||_2 / ||ref||_2 (||a - ref|| when ref is 0); NaN anywhere gives +inf. */
static inline double norm_err(const float *a, const float *ref, size_t n) {
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(ref[i])) return INFINITY;
        double e = (double)a[i] - ref[i];
        d += e * e;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Checks norm_err(a, ref) < tol and prints the figure either way. */
#define CHECK_ERR(label, a, ref, n, tol) do { double _e = norm_err((a), (ref), (n)); \
    printf("  %-44s normalized error %.3g (limit %.g)\n", (label), _e, (double)(tol)); \
    CHECK_MSG(_e < (tol), "%s: normalized error %.3g, limit %.g", (label), _e, (double)(tol)); } while (0)

static inline void fill_normal(float *x, size_t n, uint64_t seed, float scale) {
    llama_rng r;
    llama_rng_seed(&r, seed, 99);
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * llama_rng_normal(&r));
}

static inline void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = llama_cuda_bf16_to_f32(llama_cuda_f32_to_bf16(x[i]));
}

/* Rounds x to what a buffer of the context's activation dtype holds. */
static inline void round_act(llama_cuda_ctx *ctx, float *x, size_t n) {
    if (llama_cuda_act_dtype(ctx) == LLAMA_CUDA_DT_BF16) round_bf16(x, n);
}

static inline float *hmalloc(size_t n) {
    float *p = malloc(n * sizeof(float) + 16);
    if (!p) { fprintf(stderr, "out of host memory\n"); exit(1); }
    return p;
}

static inline void *dalloc(llama_cuda_ctx *ctx, size_t bytes) {
    void *p;
    char err[256];
    if (llama_cuda_malloc(ctx, &p, bytes, "test buffer", err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    return p;
}

/* A device copy of host floats in dtype dt, and the way back. */
static inline void *dup_dt(llama_cuda_ctx *ctx, const float *h, size_t n, int dt) {
    void *d = dalloc(ctx, n * (dt == LLAMA_CUDA_DT_BF16 ? 2 : 4));
    llama_cuda_h2d_dt(ctx, d, dt, h, n);
    return d;
}
static inline void *dup_act(llama_cuda_ctx *ctx, const float *h, size_t n) {
    return dup_dt(ctx, h, n, llama_cuda_act_dtype(ctx));
}
static inline float *dup_f32(llama_cuda_ctx *ctx, const float *h, size_t n) { return dup_dt(ctx, h, n, LLAMA_CUDA_DT_F32); }
static inline void down_dt(llama_cuda_ctx *ctx, float *h, const void *d, size_t n, int dt) {
    llama_cuda_d2h_dt(ctx, h, d, dt, n);
}
static inline void down_act(llama_cuda_ctx *ctx, float *h, const void *d, size_t n) {
    llama_cuda_d2h_dt(ctx, h, d, llama_cuda_act_dtype(ctx), n);
}
static inline void dfree(llama_cuda_ctx *ctx, void *d, size_t bytes) { llama_cuda_mfree(ctx, d, bytes); }

static inline llama_cuda_ctx *make_ctx(int precision) {
    llama_cuda_ctx *ctx;
    char err[256];
    if (llama_cuda_ctx_create(&ctx, 0, precision, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    return ctx;
}

/* A small config of architecture arch (sizes chosen to be multiples of nothing in particular). */
static inline llama_config small_config(const char *arch, int V, int C, int F, int L, int NH, int NKV, int HS) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "%s", arch);
    c.vocab_size = V;
    c.hidden_size = C;
    c.intermediate_size = F;
    c.num_hidden_layers = L;
    c.num_attention_heads = NH;
    c.num_key_value_heads = NKV;
    c.head_dim = HS;
    c.max_position_embeddings = 128;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.bos_token_id = 1;
    c.pad_token_id = -1;
    c.eos_token_ids[0] = V - 1;
    c.num_eos = 1;
    return c;
}

/* Matrices normal(0, std); norm weights 1 + 0.2*normal; biases 0.2*normal (so every gradient path
 * carries signal), as tests/model/llama_test_util.h does. */
static inline void randomize_model(llama_model *m, uint64_t seed, float std) {
    llama_rng r;
    llama_rng_seed(&r, seed, 4242);
    for (int i = 0; i < m->num_tensors; i++) {
        llama_tensor *t = &m->tensors[i];
        size_t len = strlen(t->name);
        int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        for (size_t j = 0; j < t->numel; j++) {
            double z = llama_rng_normal(&r);
            t->data[j] = t->ndim == 2 ? (float)(std * z) : is_bias ? (float)(0.2 * z) : (float)(1.0 + 0.2 * z);
        }
    }
}

static inline void random_tokens(int *tok, size_t n, int V, uint64_t seed) {
    llama_rng r;
    llama_rng_seed(&r, seed, 777);
    for (size_t i = 0; i < n; i++) tok[i] = (int)(llama_rng_next(&r) % (uint64_t)V);
}

#endif
