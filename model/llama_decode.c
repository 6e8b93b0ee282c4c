/*
 * model/llama_decode.c: the forward step of sampling with a KV cache, shared by batched generation
 * (llama_generate.c: every row at the same position of one prompt) and power sampling (llama_power.c:
 * ragged chains, each at its own position): one token per row at per-row positions through the decoder,
 * its keys and values written into the row's cache, and the next-token logits; or a one-row prefill of
 * n tokens. The math is that of llama_forward_logprobs (the same layer kernels of llama_layers.c, in the
 * same order) on a prefix, so the paths agree to float rounding; with prec's bf16 products (llama_set_bf16)
 * the projections and the LM head run in bf16 as in the training forward.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/llama_internal.h"

void llama_decode_free(llama_decode_buf *b) {
    free(b->mem);
    free(b->kc);
    free(b->vc);
    memset(b, 0, sizeof *b);
}

int llama_decode_alloc(llama_decode_buf *b, const llama_config *c, int cache_rows, int Tmax, int rows_cap,
                       int logit_rows, int Pmax) {
    memset(b, 0, sizeof *b);
    size_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, L = c->num_hidden_layers;
    size_t QD = (size_t)c->num_attention_heads * c->head_dim, KD = (size_t)c->num_key_value_heads * c->head_dim;
    size_t rep = (size_t)(c->num_attention_heads / c->num_key_value_heads);
    b->cache_rows = cache_rows;
    b->Tmax = Tmax;
    b->rows_cap = rows_cap > Pmax ? rows_cap : Pmax;
    b->logit_rows = logit_rows;
    b->nthreads = omp_get_max_threads();
    b->Pmax = Pmax > 1 ? Pmax : 1;
    size_t cache = (size_t)cache_rows * Tmax * KD, R = (size_t)b->rows_cap;
    size_t total = 2 * L * cache + R * (C + C + QD + KD + KD + QD + F + F) + (size_t)logit_rows * (C + V) +
                   (size_t)b->nthreads * rep * Tmax + (size_t)c->num_attention_heads * b->Pmax +
                   (size_t)b->nthreads * llama_attention_scratch_floats(b->Pmax);
    b->mem = malloc(total * sizeof(float));
    b->kc = malloc(L * sizeof(float *));
    b->vc = malloc(L * sizeof(float *));
    if (!b->mem || !b->kc || !b->vc) {
        llama_decode_free(b);
        return -1;
    }
    float *p = b->mem;
    for (size_t l = 0; l < L; l++) {
        b->kc[l] = p; p += cache;
        b->vc[l] = p; p += cache;
    }
    b->x = p; p += R * C;
    b->ln = p; p += R * C;
    b->q = p; p += R * QD;
    b->k = p; p += R * KD;
    b->v = p; p += R * KD;
    b->att = p; p += R * QD;
    b->h1 = p; p += R * F;
    b->h2 = p; p += R * F;
    b->xl = p; p += (size_t)logit_rows * C;
    b->logits = p; p += (size_t)logit_rows * V;
    b->scores = p; p += (size_t)b->nthreads * rep * Tmax;
    b->lse = p; p += (size_t)c->num_attention_heads * b->Pmax;
    b->att_scratch = p; p += (size_t)b->nthreads * llama_attention_scratch_floats(b->Pmax);
    LLAMA_ASSERT((size_t)(p - b->mem) == total);
    return 0;
}

void llama_decode_forward(const llama_model *m, llama_decode_buf *b, const llama_prec *prec, int R, const int *crow,
                          const int *pos, const int *tokens, int n) {
    const llama_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    const int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    const int QD = NH * HS, KD = NKV * HS, rep = NH / NKV, Tmax = b->Tmax, W = c->sliding_window;
    const int rows = R * n;
    const float eps = c->rms_norm_eps, scale = 1.0f / sqrtf((float)HS);
    LLAMA_ASSERT(rows <= b->rows_cap && (n == 1 ? R <= b->logit_rows : R == 1 && n <= b->Pmax));
    LLAMA_ASSERT(pos[0] + n <= Tmax);

    for (int i = 0; i < rows; i++) memcpy(b->x + (size_t)i * C, m->w.wte + (size_t)tokens[i] * C, C * sizeof(float));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const llama_layer_weights *lw = &m->w.layers[l];
        llama_rmsnorm_forward(b->ln, NULL, b->x, lw->ln1, rows, C, eps);
        llama_matmul_forward(prec, b->q, b->ln, lw->wq, lw->bq, rows, C, QD, 0.0f);
        llama_matmul_forward(prec, b->k, b->ln, lw->wk, lw->bk, rows, C, KD, 0.0f);
        llama_matmul_forward(prec, b->v, b->ln, lw->wv, lw->bv, rows, C, KD, 0.0f);
        if (lw->qn) { /* Qwen3: per-head RMSNorm of q and k (in place: each row's scale is taken first) */
            llama_rmsnorm_forward(b->q, NULL, b->q, lw->qn, rows * NH, HS, eps);
            llama_rmsnorm_forward(b->k, NULL, b->k, lw->kn, rows * NKV, HS, eps);
        }
        if (n > 1) {
            llama_rope_forward(m, b->q, n, NH, pos[0], n);
            llama_rope_forward(m, b->k, n, NKV, pos[0], n);
        } else {
            for (int r = 0; r < R; r++) {
                llama_rope_forward(m, b->q + (size_t)r * QD, 1, NH, pos[r], 1);
                llama_rope_forward(m, b->k + (size_t)r * KD, 1, NKV, pos[r], 1);
            }
        }
        for (int i = 0; i < rows; i++) {
            const int r = n > 1 ? 0 : i, p = n > 1 ? pos[0] + i : pos[i];
            size_t at = ((size_t)crow[r] * Tmax + p) * KD;
            memcpy(b->kc[l] + at, b->k + (size_t)i * KD, KD * sizeof(float));
            memcpy(b->vc[l] + at, b->v + (size_t)i * KD, KD * sizeof(float));
        }
        const float *kc = b->kc[l], *vc = b->vc[l];
        if (n > 1 && pos[0] == 0) {
            /* prefill from position 0: the training kernel (sgemm tiles) on cache row crow[0], positions [0, n) */
            size_t base = (size_t)crow[0] * Tmax * KD;
            llama_attention_forward(b->att, b->lse, b->att_scratch, b->nthreads, b->q, kc + base, vc + base, 1, n, NH,
                                    NKV, HS, W);
        } else {
            size_t work = 0;
            for (int i = 0; i < rows; i++) work += (size_t)NH * ((n > 1 ? pos[0] + i : pos[i]) + 1) * HS;
            /* one task per (row, KV head): its rep query heads read the cached keys and values once; ragged
             * positions: dynamic scheduling balances them, in chunks when there are thousands of tasks (each
             * task is independent, so the result does not depend on the schedule) */
            int chunk = rows * NKV / (b->nthreads * 16);
            if (chunk < 1) chunk = 1;
            #pragma omp parallel for schedule(dynamic, chunk) num_threads(b->nthreads) if (work >= LLAMA_OMP_MIN_WORK)
            for (int ik = 0; ik < rows * NKV; ik++) {
                const int i = ik / NKV, kh = ik % NKV, h0 = kh * rep, p = n > 1 ? pos[0] + i : pos[i];
                size_t base = (size_t)crow[n > 1 ? 0 : i] * Tmax * KD + (size_t)kh * HS;
                int j0 = (W > 0 && p - W + 1 > 0) ? p - W + 1 : 0;
                llama_attend_group(b->att + (size_t)i * QD + (size_t)h0 * HS,
                                   b->scores + (size_t)omp_get_thread_num() * rep * Tmax,
                                   b->q + (size_t)i * QD + (size_t)h0 * HS, kc + base, vc + base, KD, j0, p, HS, rep,
                                   scale);
            }
        }
        llama_matmul_forward(prec, b->x, b->att, lw->wo, lw->bo, rows, QD, C, 1.0f);
        llama_rmsnorm_forward(b->ln, NULL, b->x, lw->ln2, rows, C, eps);
        llama_matmul_forward(prec, b->h1, b->ln, lw->wg, NULL, rows, C, F, 0.0f);
        llama_matmul_forward(prec, b->h2, b->ln, lw->wu, NULL, rows, C, F, 0.0f);
        llama_swiglu_forward(b->h1, b->h1, b->h2, (size_t)rows * F);
        llama_matmul_forward(prec, b->x, b->h1, lw->wd, NULL, rows, F, C, 1.0f);
    }
    /* the next-token logits of each row's last token */
    const int NL = n > 1 ? 1 : R;
    for (int r = 0; r < NL; r++)
        llama_rmsnorm_forward(b->xl + (size_t)r * C, NULL, b->x + ((size_t)r * n + n - 1) * C, m->w.lnf, 1, C, eps);
    llama_gemm(prec, 0, 1, NL, V, C, b->xl, C, m->w.lm_head, C, 0.0f, b->logits, V);
}
