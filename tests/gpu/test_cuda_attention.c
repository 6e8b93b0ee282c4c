/*
 * tests/gpu/test_cuda_attention.c: the CUDA attention (model/cuda/attention.cu) against the CPU's
 * llama_attention_forward / llama_attention_backward / llama_attend_row, in FP32, TF32 and BF16, by
 * normalized error (limits 1e-5 / 1e-3 / 1e-2):
 *   - training path (batched cuBLAS scores + softmax kernels): out, lse, dq, dk, dv for grouped
 *     (NH=4, NKV=2), multi-query (NKV=1) and plain heads, with and without a sliding window, head
 *     sizes 12 and 40, and with a score budget so small that every sequence is its own chunk;
 *   - the cached kernel of generation: in the training layout (every row of every sequence at
 *     once, all four head-size instantiations 12 / 40 / 72 / 136, a window, 17 query heads per kv
 *     head so the head groups split) and in the decode layout (3 active rows reading cache rows
 *     {4, 0, 2} at position 17 of a 30-position cache), plus the KV-cache write.
 * Exit 77 ("SKIP: no CUDA device") without a GPU.
 */
#include "tests/gpu/gpu_test_util.h"

#include "model/llama_internal.h"

typedef struct { int B, T, NH, NKV, HS, window; size_t budget; const char *label; } att_case;

static void cpu_attention(float *out, float *lse, const float *q, const float *k, const float *v, const att_case *c) {
    float *scratch = hmalloc(llama_attention_scratch_floats(c->T));
    llama_attention_forward(out, lse, scratch, 1, q, k, v, c->B, c->T, c->NH, c->NKV, c->HS, c->window);
    free(scratch);
}

static void test_training(llama_cuda_ctx *ctx, int p, const att_case *c) {
    double tol = layer_tol(p);
    int B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HS = c->HS;
    size_t N = (size_t)B * T, nq = N * NH * HS, nk = N * NKV * HS, nl = N * NH, A = llama_cuda_act_size(ctx);
    float *q = hmalloc(nq), *k = hmalloc(nk), *v = hmalloc(nk), *out = hmalloc(nq), *lse = hmalloc(nl);
    float *dout = hmalloc(nq), *dq = hmalloc(nq), *dk = hmalloc(nk), *dv = hmalloc(nk);
    float *g = hmalloc(nq), *glse = hmalloc(nl);
    fill_normal(q, nq, 71, 1.0f);
    fill_normal(k, nk, 72, 1.0f);
    fill_normal(v, nk, 73, 1.0f);
    fill_normal(dout, nq, 74, 1.0f);
    round_act(ctx, q, nq);
    round_act(ctx, k, nk);
    round_act(ctx, v, nk);
    round_act(ctx, dout, nq);
    cpu_attention(out, lse, q, k, v, c);
    llama_cuda_set_attention_budget(ctx, c->budget);
    void *d_q = dup_act(ctx, q, nq), *d_k = dup_act(ctx, k, nk), *d_v = dup_act(ctx, v, nk);
    void *d_out = dalloc(ctx, nq * A);
    float *d_lse = dalloc(ctx, nl * 4);
    llama_cuda_attention_forward(ctx, d_out, d_lse, d_q, d_k, d_v, B, T, NH, NKV, HS, c->window);
    down_act(ctx, g, d_out, nq);
    down_dt(ctx, glse, d_lse, nl, LLAMA_CUDA_DT_F32);
    char label[128];
    snprintf(label, sizeof label, "%s: out", c->label);
    CHECK_ERR(label, g, out, nq, tol);
    snprintf(label, sizeof label, "%s: lse", c->label);
    CHECK_ERR(label, glse, lse, nl, tol);

    /* backward from the same (stored-dtype) forward output on both sides */
    round_act(ctx, out, nq);
    float *scratch = hmalloc(llama_attention_scratch_floats(T));
    llama_attention_backward(dq, dk, dv, scratch, 1, dout, q, k, v, out, lse, B, T, NH, NKV, HS, c->window);
    free(scratch);
    void *d_dout = dup_act(ctx, dout, nq), *d_o = dup_act(ctx, out, nq);
    float *d_lse_cpu = dup_f32(ctx, lse, nl);
    void *d_dq = dalloc(ctx, nq * A), *d_dk = dalloc(ctx, nk * A), *d_dv = dalloc(ctx, nk * A);
    llama_cuda_attention_backward(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_o, d_lse_cpu, B, T, NH, NKV, HS,
                                  c->window);
    float *gk = hmalloc(nk);
    down_act(ctx, g, d_dq, nq);
    snprintf(label, sizeof label, "%s: dq", c->label);
    CHECK_ERR(label, g, dq, nq, tol);
    down_act(ctx, gk, d_dk, nk);
    snprintf(label, sizeof label, "%s: dk", c->label);
    CHECK_ERR(label, gk, dk, nk, tol);
    down_act(ctx, gk, d_dv, nk);
    snprintf(label, sizeof label, "%s: dv", c->label);
    CHECK_ERR(label, gk, dv, nk, tol);
    llama_cuda_set_attention_budget(ctx, 0);
    dfree(ctx, d_q, nq * A); dfree(ctx, d_k, nk * A); dfree(ctx, d_v, nk * A); dfree(ctx, d_out, nq * A);
    dfree(ctx, d_lse, nl * 4); dfree(ctx, d_dout, nq * A); dfree(ctx, d_o, nq * A); dfree(ctx, d_lse_cpu, nl * 4);
    dfree(ctx, d_dq, nq * A); dfree(ctx, d_dk, nk * A); dfree(ctx, d_dv, nk * A);
    free(q); free(k); free(v); free(out); free(lse); free(dout); free(dq); free(dk); free(dv); free(g); free(glse);
    free(gk);
}

/* The cached kernel in the training layout: row block r = sequence b, n = T queries, cache = k/v. */
static void test_cached_training_layout(llama_cuda_ctx *ctx, int p, const att_case *c) {
    double tol = layer_tol(p);
    int B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HS = c->HS;
    size_t N = (size_t)B * T, nq = N * NH * HS, nk = N * NKV * HS, nl = N * NH, A = llama_cuda_act_size(ctx);
    float *q = hmalloc(nq), *k = hmalloc(nk), *v = hmalloc(nk), *out = hmalloc(nq), *lse = hmalloc(nl);
    float *g = hmalloc(nq), *glse = hmalloc(nl);
    fill_normal(q, nq, 81, 1.0f);
    fill_normal(k, nk, 82, 1.0f);
    fill_normal(v, nk, 83, 1.0f);
    round_act(ctx, q, nq);
    round_act(ctx, k, nk);
    round_act(ctx, v, nk);
    cpu_attention(out, lse, q, k, v, c);
    void *d_q = dup_act(ctx, q, nq), *d_k = dup_act(ctx, k, nk), *d_v = dup_act(ctx, v, nk);
    void *d_out = dalloc(ctx, nq * A);
    float *d_lse = dalloc(ctx, nl * 4);
    llama_cuda_attention_cached(ctx, d_out, d_lse, d_q, d_k, d_v, NULL, B, T, 0, T, NH, NKV, HS, c->window);
    down_act(ctx, g, d_out, nq);
    down_dt(ctx, glse, d_lse, nl, LLAMA_CUDA_DT_F32);
    char label[128];
    snprintf(label, sizeof label, "cached kernel, %s: out", c->label);
    CHECK_ERR(label, g, out, nq, tol);
    snprintf(label, sizeof label, "cached kernel, %s: lse", c->label);
    CHECK_ERR(label, glse, lse, nl, 1e-5);
    dfree(ctx, d_q, nq * A); dfree(ctx, d_k, nk * A); dfree(ctx, d_v, nk * A); dfree(ctx, d_out, nq * A);
    dfree(ctx, d_lse, nl * 4);
    free(q); free(k); free(v); free(out); free(lse); free(g); free(glse);
}

/* Decode: R=3 active rows at position 17 reading cache rows {4, 0, 2} of a (G=5, Tk=30, KD) cache;
 * the new keys/values are written by llama_cuda_kv_write first. */
static void test_decode(llama_cuda_ctx *ctx, int p, int window) {
    double tol = layer_tol(p);
    const int G = 5, Tk = 30, NH = 6, NKV = 2, HS = 20, R = 3, pos = 17;
    const int KD = NKV * HS, QD = NH * HS;
    int crow[3] = {4, 0, 2};
    size_t nc = (size_t)G * Tk * KD, A = llama_cuda_act_size(ctx);
    float *kc = hmalloc(nc), *vc = hmalloc(nc), *q = hmalloc((size_t)R * QD), *kn = hmalloc((size_t)R * KD);
    float *vn = hmalloc((size_t)R * KD), *out = hmalloc((size_t)R * QD), *g = hmalloc((size_t)R * QD);
    fill_normal(kc, nc, 91, 1.0f);
    fill_normal(vc, nc, 92, 1.0f);
    fill_normal(q, (size_t)R * QD, 93, 1.0f);
    fill_normal(kn, (size_t)R * KD, 94, 1.0f);
    fill_normal(vn, (size_t)R * KD, 95, 1.0f);
    round_act(ctx, kc, nc);
    round_act(ctx, vc, nc);
    round_act(ctx, q, (size_t)R * QD);
    round_act(ctx, kn, (size_t)R * KD);
    round_act(ctx, vn, (size_t)R * KD);
    void *d_kc = dup_act(ctx, kc, nc), *d_vc = dup_act(ctx, vc, nc), *d_q = dup_act(ctx, q, (size_t)R * QD);
    void *d_kn = dup_act(ctx, kn, (size_t)R * KD), *d_vn = dup_act(ctx, vn, (size_t)R * KD);
    void *d_out = dalloc(ctx, (size_t)R * QD * A);
    int *d_crow = dalloc(ctx, sizeof crow);
    llama_cuda_h2d(ctx, d_crow, crow, sizeof crow);
    llama_cuda_kv_write(ctx, d_kc, d_vc, d_kn, d_vn, d_crow, R, 1, pos, Tk, KD);
    for (int r = 0; r < R; r++) {
        memcpy(kc + ((size_t)crow[r] * Tk + pos) * KD, kn + (size_t)r * KD, KD * sizeof(float));
        memcpy(vc + ((size_t)crow[r] * Tk + pos) * KD, vn + (size_t)r * KD, KD * sizeof(float));
    }
    float *gk = hmalloc(nc);
    down_act(ctx, gk, d_kc, nc);
    CHECK(memcmp(gk, kc, nc * sizeof(float)) == 0);
    down_act(ctx, gk, d_vc, nc);
    CHECK(memcmp(gk, vc, nc * sizeof(float)) == 0);
    llama_cuda_attention_cached(ctx, d_out, NULL, d_q, d_kc, d_vc, d_crow, R, 1, pos, Tk, NH, NKV, HS, window);
    float scores[64];
    int j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    for (int r = 0; r < R; r++)
        for (int h = 0; h < NH; h++) {
            size_t base = (size_t)crow[r] * Tk * KD + (size_t)(h / (NH / NKV)) * HS;
            llama_attend_row(out + (size_t)r * QD + (size_t)h * HS, scores, q + (size_t)r * QD + (size_t)h * HS,
                             kc + base, vc + base, KD, j0, pos, HS, 1.0f / sqrtf((float)HS));
        }
    down_act(ctx, g, d_out, (size_t)R * QD);
    CHECK_ERR(window ? "cached kernel, decode rows, window 6" : "cached kernel, decode rows", g, out, (size_t)R * QD, tol);
    dfree(ctx, d_kc, nc * A); dfree(ctx, d_vc, nc * A); dfree(ctx, d_q, (size_t)R * QD * A);
    dfree(ctx, d_kn, (size_t)R * KD * A); dfree(ctx, d_vn, (size_t)R * KD * A); dfree(ctx, d_out, (size_t)R * QD * A);
    dfree(ctx, d_crow, sizeof crow);
    free(kc); free(vc); free(q); free(kn); free(vn); free(out); free(g); free(gk);
}

int main(void) {
    skip_without_device();
    const att_case training[] = {
        {3, 21, 4, 2, 12, 0, 0, "GQA 4/2 heads, HS 12, T 21"},
        {3, 21, 4, 2, 12, 5, 0, "GQA 4/2 heads, HS 12, window 5"},
        {2, 40, 3, 1, 40, 0, 0, "MQA 3/1 heads, HS 40, T 40"},
        {3, 13, 2, 2, 16, 0, 1, "MHA 2/2 heads, one sequence per chunk"},
    };
    const att_case cached[] = {
        {2, 23, 4, 2, 12, 0, 0, "HS 12 (1 dim per lane)"},
        {2, 37, 3, 1, 40, 0, 0, "HS 40 (2 dims per lane), 37 positions"},
        {1, 20, 2, 2, 72, 7, 0, "HS 72 (4 dims per lane), window 7"},
        {1, 9, 2, 1, 136, 0, 0, "HS 136 (8 dims per lane)"},
        {1, 11, 34, 2, 8, 0, 0, "34/2 heads: 17 per kv head, 2 groups"},
    };
    for (int pi = 0; pi < 3; pi++) {
        int p = test_precisions[pi];
        printf("== %s\n", precision_names[pi]);
        llama_cuda_ctx *ctx = make_ctx(p);
        for (size_t i = 0; i < sizeof training / sizeof training[0]; i++) test_training(ctx, p, &training[i]);
        for (size_t i = 0; i < sizeof cached / sizeof cached[0]; i++) test_cached_training_layout(ctx, p, &cached[i]);
        test_decode(ctx, p, 0);
        test_decode(ctx, p, 6);
        llama_cuda_ctx_free(ctx);
    }
    return TEST_DONE();
}
