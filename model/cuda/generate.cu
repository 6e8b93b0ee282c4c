/*
 * model/cuda/generate.cu: batched sampling with a KV cache on the GPU (llama_cuda_generate), the
 * twin of model/llama_generate.c.
 *
 * Flow: the prompt (P tokens) runs once through gen_step as one row of P tokens, filling cache
 * row 0 at positions [0, P) (attention: llama_cuda_attention_cached with n = P); one kernel copies
 * those positions to cache rows 1..G-1 for every layer. Then all unfinished rows decode in
 * lockstep: each step feeds every active row's last token at the same position through gen_step
 * (R active rows, 1 token each: cuBLAS over R rows, the cached-attention kernel against each row's
 * cache), samples one token per row on the GPU (llama_cuda_sample, row g's own xoshiro256**
 * stream and repetition set), copies the R tokens back, and drops rows that produced a stop id
 * (s->stop_ids, else the config's eos ids) or reached max_new.
 * That copy is the one host round trip per step (the host decides which rows stay).
 *
 * Buffers: one allocation (state->gen, grown on demand and kept): the cache, laid out
 * [layer][k|v][G][P+max_new][KD] in the activation dtype, and the step buffers for max(P, G) rows.
 */
#include <math.h>
#include <string.h>

#include "model/cuda/llama_cuda_internal.cuh"

extern "C" {
#include "model/llama_internal.h"
#include "model/llama_rng.h"
}

#define F32 LLAMA_CUDA_DT_F32

typedef struct {
    int G, Tmax, rows_cap;
    void *cache;    /* (L, 2, G, Tmax, KD) act */
    float *x;       /* (rows_cap, C) fp32 residual stream */
    void *ln;       /* (rows_cap, C) act */
    void *q;        /* (rows_cap, QD) act */
    void *k, *v;    /* (rows_cap, KD) act */
    void *att;      /* (rows_cap, QD) act */
    void *h1, *h2;  /* (rows_cap, F) act */
    void *xl;       /* (G, C) act: final-norm rows */
    float *logits;  /* (G, V) */
    float *wbuf;    /* (G, V) sampling weights */
    uint64_t *rng;  /* (G, 4) xoshiro256** states */
    int *tok_in;    /* (rows_cap) tokens fed to gen_step */
    int *crow;      /* (G) cache row (= RNG stream) of each active row */
    int *tok_out;   /* (G) sampled tokens */
    float *logp;    /* (G) their log-probabilities */
    int *zero;      /* (1) the int 0 (cache row of the prefill) */
    unsigned char *seen; /* (G, V) tokens of each row so far (prompt included), for the repetition penalty */
} gen_buf;

static size_t plan_gen(gen_buf *gb, void *base, const llama_config *c, int act, int G, int P, int Tmax) {
    size_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, L = c->num_hidden_layers;
    size_t QD = (size_t)c->num_attention_heads * c->head_dim, KD = (size_t)c->num_key_value_heads * c->head_dim;
    size_t A = act == LLAMA_CUDA_DT_BF16 ? 2 : 4, f = sizeof(float);
    size_t R = (size_t)(P > G ? P : G);
    cuda_carver cv = {(char *)base, 0};
    gb->G = G;
    gb->Tmax = Tmax;
    gb->rows_cap = (int)R;
    gb->cache = cuda_take(&cv, L * 2 * (size_t)G * Tmax * KD * A);
    gb->x = (float *)cuda_take(&cv, R * C * f);
    gb->ln = cuda_take(&cv, R * C * A);
    gb->q = cuda_take(&cv, R * QD * A);
    gb->k = cuda_take(&cv, R * KD * A);
    gb->v = cuda_take(&cv, R * KD * A);
    gb->att = cuda_take(&cv, R * QD * A);
    gb->h1 = cuda_take(&cv, R * F * A);
    gb->h2 = cuda_take(&cv, R * F * A);
    gb->xl = cuda_take(&cv, (size_t)G * C * A);
    gb->logits = (float *)cuda_take(&cv, (size_t)G * V * f);
    gb->wbuf = (float *)cuda_take(&cv, (size_t)G * V * f);
    gb->rng = (uint64_t *)cuda_take(&cv, (size_t)G * 4 * sizeof(uint64_t));
    gb->tok_in = (int *)cuda_take(&cv, R * sizeof(int));
    gb->crow = (int *)cuda_take(&cv, (size_t)G * sizeof(int));
    gb->tok_out = (int *)cuda_take(&cv, (size_t)G * sizeof(int));
    gb->logp = (float *)cuda_take(&cv, (size_t)G * f);
    gb->zero = (int *)cuda_take(&cv, sizeof(int));
    gb->seen = (unsigned char *)cuda_take(&cv, (size_t)G * V);
    return cv.off;
}

extern "C" size_t llama_cuda_generation_bytes(const llama_config *c, int precision, int P, int G, int max_new) {
    gen_buf gb;
    int act = precision == LLAMA_CUDA_BF16 ? LLAMA_CUDA_DT_BF16 : LLAMA_CUDA_DT_F32;
    return plan_gen(&gb, NULL, c, act, G, P, P + max_new);
}

/* cache plane p (of 2L) row 0, positions [0, P) -> rows 1..G-1 */
template <typename T> __global__ void kv_broadcast_kernel(T *cache, int G, int Tmax, int P, int KD, size_t total) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    size_t span = (size_t)P * KD, per_plane = (size_t)(G - 1) * span;
    size_t plane = e / per_plane, rem = e % per_plane;
    size_t g = 1 + rem / span, off = rem % span;
    T *base = cache + plane * (size_t)G * Tmax * KD;
    base[g * (size_t)Tmax * KD + off] = base[off];
}

/* seen (G, V): every row has seen the prompt's tokens (seen is zeroed first). */
__global__ void seen_init_kernel(unsigned char *seen, const int *prompt, int G, int P, int V) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)G * P) return;
    seen[(e / P) * V + prompt[e % P]] = 1;
}

/* Runs R rows of n tokens each (tok_d: (R*n), row r at positions start .. start+n-1, cached in
 * cache row crow_d[r]) through the model, writing their keys/values into the cache, and leaves
 * the logits of each row's last token in gb->logits (R, V). R == 1 or n == 1. */
static void gen_step(llama_cuda_model *cm, gen_buf *gb, int R, const int *crow_d, const int *tok_d, int start, int n) {
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    struct llama_cuda_state *st = cm->state;
    int act = ctx->act;
    int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    int QD = NH * HS, KD = NKV * HS, Tmax = gb->Tmax, rows = R * n;
    float eps = c->rms_norm_eps;
    size_t A = llama_cuda_act_size(ctx), plane = (size_t)gb->G * Tmax * KD * A;
    CUDA_ASSERT(rows <= gb->rows_cap && R <= gb->G && start + n <= Tmax && (R == 1 || n == 1));

    llama_cuda_embedding_forward(ctx, gb->x, tok_d, cm->w.wte, rows, C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const llama_layer_weights *lw = &cm->w.layers[l];
        void *kc = (char *)gb->cache + (size_t)(2 * l) * plane, *vc = (char *)gb->cache + (size_t)(2 * l + 1) * plane;
        llama_cuda_rmsnorm_forward(ctx, gb->ln, act, NULL, gb->x, F32, lw->ln1, rows, C, eps);
        llama_cuda_matmul_forward(ctx, gb->q, act, gb->ln, cuda_wact(cm, lw->wq), lw->bq, rows, C, QD, 0.0f);
        llama_cuda_matmul_forward(ctx, gb->k, act, gb->ln, cuda_wact(cm, lw->wk), lw->bk, rows, C, KD, 0.0f);
        llama_cuda_matmul_forward(ctx, gb->v, act, gb->ln, cuda_wact(cm, lw->wv), lw->bv, rows, C, KD, 0.0f);
        if (lw->qn) { /* Qwen3: per-head RMSNorm of q and k, in place */
            llama_cuda_rmsnorm_forward(ctx, gb->q, act, NULL, gb->q, act, lw->qn, rows * NH, HS, eps);
            llama_cuda_rmsnorm_forward(ctx, gb->k, act, NULL, gb->k, act, lw->kn, rows * NKV, HS, eps);
        }
        llama_cuda_rope(ctx, gb->q, rows, NH, HS, start, n, st->rope_cos, st->rope_sin, 0);
        llama_cuda_rope(ctx, gb->k, rows, NKV, HS, start, n, st->rope_cos, st->rope_sin, 0);
        llama_cuda_kv_write(ctx, kc, vc, gb->k, gb->v, crow_d, R, n, start, Tmax, KD);
        llama_cuda_attention_cached(ctx, gb->att, NULL, gb->q, kc, vc, crow_d, R, n, start, Tmax, NH, NKV, HS,
                                    c->sliding_window);
        llama_cuda_matmul_forward(ctx, gb->x, F32, gb->att, cuda_wact(cm, lw->wo), lw->bo, rows, QD, C, 1.0f);
        llama_cuda_rmsnorm_forward(ctx, gb->ln, act, NULL, gb->x, F32, lw->ln2, rows, C, eps);
        llama_cuda_matmul_forward(ctx, gb->h1, act, gb->ln, cuda_wact(cm, lw->wg), NULL, rows, C, F, 0.0f);
        llama_cuda_matmul_forward(ctx, gb->h2, act, gb->ln, cuda_wact(cm, lw->wu), NULL, rows, C, F, 0.0f);
        llama_cuda_swiglu_forward(ctx, gb->h1, gb->h1, gb->h2, (size_t)rows * F);
        llama_cuda_matmul_forward(ctx, gb->x, F32, gb->h1, cuda_wact(cm, lw->wd), NULL, rows, F, C, 1.0f);
    }
    /* the last token of each row: rows are contiguous when n == 1; row n-1 when R == 1 */
    llama_cuda_rmsnorm_forward(ctx, gb->xl, act, NULL, gb->x + (size_t)(n - 1) * C, F32, cm->w.lnf, R, C, eps);
    llama_cuda_gemm(ctx, 0, 1, R, V, C, 1.0f, gb->xl, C, cuda_wact(cm, cm->w.lm_head), C, 0.0f, gb->logits, V, act, F32);
}

/* A row ends at any of s->stop_ids, or of cfg.eos_token_ids when s has none (as llama_generate). */
static int is_stop(const llama_config *c, const llama_sampling *s, int tok) {
    if (s->stop_ids) {
        for (int i = 0; i < s->num_stop; i++)
            if (s->stop_ids[i] == tok) return 1;
        return 0;
    }
    for (int i = 0; i < c->num_eos; i++)
        if (c->eos_token_ids[i] == tok) return 1;
    return 0;
}

extern "C" int llama_cuda_generate(llama_cuda_model *cm, const int *prompt, int P, int G, int max_new,
                                   const llama_sampling *s, uint64_t seed, int *out, int *out_len, float *out_logp,
                                   char *err, size_t errlen) {
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    struct llama_cuda_state *st = cm->state;
    CUDA_ASSERT(st != NULL);
    if (llama_generate_check_args(c, prompt, P, G, max_new, s, out, out_len, "llama_cuda_generate", err, errlen))
        return -1;
    const int penalize = s->repetition_penalty > 0.0f && s->repetition_penalty != 1.0f;
    int Tmax = P + max_new, act = ctx->act, L = c->num_hidden_layers;
    int KD = c->num_key_value_heads * c->head_dim;
    char e2[200];
    if (llama_cuda_rope_ensure(cm, Tmax, e2, sizeof e2)) {
        snprintf(err, errlen, "llama_cuda_generate: %s", e2);
        return -1;
    }
    gen_buf gb;
    size_t bytes = plan_gen(&gb, NULL, c, act, G, P, Tmax);
    if (bytes > st->gen_bytes) {
        llama_cuda_sync(ctx);
        llama_cuda_mfree(ctx, st->gen, st->gen_bytes);
        st->gen = NULL;
        st->gen_bytes = 0;
        if (llama_cuda_malloc(ctx, &st->gen, bytes, "generation buffers (KV cache)", e2, sizeof e2)) {
            snprintf(err, errlen, "llama_cuda_generate: G=%d, P+max_new=%d: %s", G, Tmax, e2);
            return -1;
        }
        st->gen_bytes = bytes;
    }
    plan_gen(&gb, st->gen, c, act, G, P, Tmax);
    int *active = (int *)malloc((size_t)G * sizeof(int));
    int *feed = (int *)malloc((size_t)(P > G ? P : G) * sizeof(int));
    int *tok_h = (int *)malloc((size_t)G * sizeof(int));
    int *done = (int *)malloc((size_t)G * sizeof(int));
    float *logp_h = (float *)malloc((size_t)G * sizeof(float));
    llama_rng *rng = (llama_rng *)malloc((size_t)G * sizeof(llama_rng));
    if (!active || !feed || !tok_h || !done || !logp_h || !rng) {
        free(active); free(feed); free(tok_h); free(done); free(logp_h); free(rng);
        snprintf(err, errlen, "llama_cuda_generate: out of host memory (G=%d)", G);
        return -1;
    }
    for (size_t i = 0; i < (size_t)G * max_new; i++) {
        out[i] = -1;
        if (out_logp) out_logp[i] = 0.0f;
    }
    for (int g = 0; g < G; g++) {
        out_len[g] = 0;
        active[g] = g;
        llama_rng_seed(&rng[g], seed, (uint64_t)s->first_row + (uint64_t)g);
    }
    llama_cuda_h2d(ctx, gb.rng, rng, (size_t)G * sizeof(llama_rng));
    llama_cuda_h2d(ctx, gb.crow, active, (size_t)G * sizeof(int));
    llama_cuda_memset0(ctx, gb.zero, sizeof(int));

    /* prefill once into cache row 0, copy it to the other rows */
    llama_cuda_h2d(ctx, gb.tok_in, prompt, (size_t)P * sizeof(int));
    if (penalize) {
        llama_cuda_memset0(ctx, gb.seen, (size_t)G * c->vocab_size);
        cuda_launch(seen_init_kernel, cdiv((size_t)G * P, 256), 256, 0, ctx->stream, gb.seen, (const int *)gb.tok_in, G,
                    P, c->vocab_size);
    }
    gen_step(cm, &gb, 1, gb.zero, gb.tok_in, 0, P);
    if (G > 1) {
        size_t total = (size_t)2 * L * (G - 1) * P * KD;
        if (act == LLAMA_CUDA_DT_BF16) {
            void (*k)(bf16 *, int, int, int, int, size_t) = kv_broadcast_kernel<bf16>;
            cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)gb.cache, G, Tmax, P, KD, total);
        } else {
            void (*k)(float *, int, int, int, int, size_t) = kv_broadcast_kernel<float>;
            cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (float *)gb.cache, G, Tmax, P, KD, total);
        }
    }

    int nactive = G, V = c->vocab_size;
    for (int step = 0; step < max_new && nactive > 0; step++) {
        if (step > 0) {
            for (int r = 0; r < nactive; r++) feed[r] = out[(size_t)active[r] * max_new + step - 1];
            llama_cuda_h2d(ctx, gb.tok_in, feed, (size_t)nactive * sizeof(int));
            llama_cuda_h2d(ctx, gb.crow, active, (size_t)nactive * sizeof(int));
            gen_step(cm, &gb, nactive, gb.crow, gb.tok_in, P + step - 1, 1);
        }
        /* at step 0 every row samples from the prompt's logits (row 0) */
        llama_cuda_sample(ctx, gb.tok_out, gb.logp, gb.logits, step == 0, nactive, V, s, gb.rng, gb.crow,
                          penalize ? gb.seen : NULL, gb.wbuf);
        llama_cuda_d2h(ctx, tok_h, gb.tok_out, (size_t)nactive * sizeof(int));
        if (out_logp) llama_cuda_d2h(ctx, logp_h, gb.logp, (size_t)nactive * sizeof(float));
        int kept = 0, ndone = 0;
        for (int r = 0; r < nactive; r++) {
            int g = active[r];
            out[(size_t)g * max_new + step] = tok_h[r];
            out_len[g] = step + 1;
            if (out_logp) out_logp[(size_t)g * max_new + step] = logp_h[r];
            if (!is_stop(c, s, tok_h[r]) && step + 1 < max_new) active[kept++] = g;
            else done[ndone++] = g;
        }
        nactive = kept;
        /* the host has this step's tokens (the copies above are synchronous): finished rows are final */
        if (s->on_step) s->on_step(s->on_step_ctx, done, ndone);
    }
    free(active);
    free(done);
    free(feed);
    free(tok_h);
    free(logp_h);
    free(rng);
    return 0;
}
