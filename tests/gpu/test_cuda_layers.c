/*
 * tests/gpu/test_cuda_layers.c: every layer kernel of model/cuda (llama_cuda_layers.h) against its
 * CPU twin of model/llama_layers.c on random inputs, forward and backward, in FP32, TF32 and BF16,
 * by normalized error (limits 1e-5 / 1e-3 / 1e-2, gpu_test_util.h): matrix products with and
 * without bias and accumulation (beta), RMSNorm (forward, recompute, backward with accumulation and
 * the bf16 copy, fp32 and activation-dtype rows as Qwen3's q/k norms use), rope (default and
 * llama3 scaling, training rows and decode positions), SwiGLU, embedding (repeated tokens, padding
 * row), the LM head's log-probabilities / entropy / dlogits, row gather / scatter, AdamW against
 * trainer/optim.c's adamw_step over two steps, sums of squares, dtype conversion. Shapes avoid
 * multiples of 32 so partial warps and tails are exercised.
 *
 * Exit 77 ("SKIP: no CUDA device") without a GPU.
 */
#include "tests/gpu/gpu_test_util.h"

#include "model/llama_internal.h"
#include "trainer/optim.h"

static void test_matmul(llama_cuda_ctx *ctx, int p) {
    const int N = 37, IC = 48, OC = 40;
    double tol = layer_tol(p);
    int act = llama_cuda_act_dtype(ctx);
    float *inp = hmalloc((size_t)N * IC), *w = hmalloc((size_t)OC * IC), *bias = hmalloc(OC);
    float *out = hmalloc((size_t)N * OC), *out0 = hmalloc((size_t)N * OC), *got = hmalloc((size_t)N * OC);
    fill_normal(inp, (size_t)N * IC, 1, 1.0f);
    fill_normal(w, (size_t)OC * IC, 2, 0.2f);
    fill_normal(bias, OC, 3, 0.5f);
    fill_normal(out0, (size_t)N * OC, 4, 1.0f);
    round_act(ctx, inp, (size_t)N * IC);
    round_act(ctx, w, (size_t)OC * IC);
    void *d_inp = dup_act(ctx, inp, (size_t)N * IC), *d_w = dup_act(ctx, w, (size_t)OC * IC);
    float *d_bias = dup_f32(ctx, bias, OC);

    /* out (act) = inp @ w^T + bias */
    llama_matmul_forward(NULL, out, inp, w, bias, N, IC, OC, 0.0f);
    void *d_out = dup_act(ctx, out0, (size_t)N * OC);
    llama_cuda_matmul_forward(ctx, d_out, act, d_inp, d_w, d_bias, N, IC, OC, 0.0f);
    down_act(ctx, got, d_out, (size_t)N * OC);
    CHECK_ERR("matmul forward (act out, bias)", got, out, (size_t)N * OC, tol);
    /* out (fp32) = out0 + inp @ w^T (beta 1, no bias): the residual-add form */
    memcpy(out, out0, sizeof(float) * N * OC);
    llama_matmul_forward(NULL, out, inp, w, NULL, N, IC, OC, 1.0f);
    float *d_res = dup_f32(ctx, out0, (size_t)N * OC);
    llama_cuda_matmul_forward(ctx, d_res, LLAMA_CUDA_DT_F32, d_inp, d_w, NULL, N, IC, OC, 1.0f);
    down_dt(ctx, got, d_res, (size_t)N * OC, LLAMA_CUDA_DT_F32);
    CHECK_ERR("matmul forward (fp32 out, beta 1)", got, out, (size_t)N * OC, tol);

    /* backward: dinp (act, beta 0) and (fp32, beta 1); dw, dbias accumulate */
    float *dout = hmalloc((size_t)N * OC), *dinp = hmalloc((size_t)N * IC), *dinp0 = hmalloc((size_t)N * IC);
    float *dw = hmalloc((size_t)OC * IC), *dw0 = hmalloc((size_t)OC * IC), *db = hmalloc(OC), *db0 = hmalloc(OC);
    float *gdinp = hmalloc((size_t)N * IC), *gdw = hmalloc((size_t)OC * IC), *gdb = hmalloc(OC);
    fill_normal(dout, (size_t)N * OC, 5, 1.0f);
    round_act(ctx, dout, (size_t)N * OC);
    fill_normal(dinp0, (size_t)N * IC, 6, 1.0f);
    fill_normal(dw0, (size_t)OC * IC, 7, 1.0f);
    fill_normal(db0, OC, 8, 1.0f);
    void *d_dout = dup_act(ctx, dout, (size_t)N * OC);
    float *d_dw = dup_f32(ctx, dw0, (size_t)OC * IC), *d_db = dup_f32(ctx, db0, OC);
    void *d_dinp = dup_act(ctx, dinp0, (size_t)N * IC);
    memcpy(dw, dw0, sizeof(float) * OC * IC);
    memcpy(db, db0, sizeof(float) * OC);
    llama_matmul_backward(NULL, dinp, dw, db, dout, inp, w, N, IC, OC, 0.0f);
    llama_cuda_matmul_backward(ctx, d_dinp, act, d_dw, d_db, d_dout, d_inp, d_w, N, IC, OC, 0.0f);
    down_act(ctx, gdinp, d_dinp, (size_t)N * IC);
    down_dt(ctx, gdw, d_dw, (size_t)OC * IC, LLAMA_CUDA_DT_F32);
    down_dt(ctx, gdb, d_db, OC, LLAMA_CUDA_DT_F32);
    CHECK_ERR("matmul backward dinp (act)", gdinp, dinp, (size_t)N * IC, tol);
    CHECK_ERR("matmul backward dw (+=)", gdw, dw, (size_t)OC * IC, tol);
    CHECK_ERR("matmul backward dbias (+=)", gdb, db, OC, tol);
    float *d_dinp32 = dup_f32(ctx, dinp0, (size_t)N * IC);
    memcpy(dinp, dinp0, sizeof(float) * N * IC);
    llama_matmul_backward(NULL, dinp, dw, NULL, dout, inp, w, N, IC, OC, 1.0f);
    llama_cuda_matmul_backward(ctx, d_dinp32, LLAMA_CUDA_DT_F32, d_dw, NULL, d_dout, d_inp, d_w, N, IC, OC, 1.0f);
    down_dt(ctx, gdinp, d_dinp32, (size_t)N * IC, LLAMA_CUDA_DT_F32);
    down_dt(ctx, gdw, d_dw, (size_t)OC * IC, LLAMA_CUDA_DT_F32);
    CHECK_ERR("matmul backward dinp (fp32, beta 1)", gdinp, dinp, (size_t)N * IC, tol);
    CHECK_ERR("matmul backward dw (second +=)", gdw, dw, (size_t)OC * IC, tol);

    size_t A = llama_cuda_act_size(ctx);
    dfree(ctx, d_inp, (size_t)N * IC * A); dfree(ctx, d_w, (size_t)OC * IC * A); dfree(ctx, d_bias, OC * 4);
    dfree(ctx, d_out, (size_t)N * OC * A); dfree(ctx, d_res, (size_t)N * OC * 4); dfree(ctx, d_dout, (size_t)N * OC * A);
    dfree(ctx, d_dw, (size_t)OC * IC * 4); dfree(ctx, d_db, OC * 4); dfree(ctx, d_dinp, (size_t)N * IC * A);
    dfree(ctx, d_dinp32, (size_t)N * IC * 4);
    free(inp); free(w); free(bias); free(out); free(out0); free(got); free(dout); free(dinp); free(dinp0);
    free(dw); free(dw0); free(db); free(db0); free(gdinp); free(gdw); free(gdb);
}

/* RMSNorm over N rows of C; in_dt: the input / gradient dtype (fp32 residual rows, or act rows as
 * Qwen3's per-head norms). */
static void test_rmsnorm(llama_cuda_ctx *ctx, int p, int N, int C, int in_dt) {
    double tol = layer_tol(p);
    int act = llama_cuda_act_dtype(ctx), bf = act == LLAMA_CUDA_DT_BF16;
    size_t n = (size_t)N * C;
    float *x = hmalloc(n), *w = hmalloc(C), *out = hmalloc(n), *rstd = hmalloc(N), *got = hmalloc(n);
    float *grstd = hmalloc(N), *dout = hmalloc(n), *dinp = hmalloc(n), *dw = hmalloc(C), *gdw = hmalloc(C);
    fill_normal(x, n, 11, 1.5f);
    fill_normal(w, C, 12, 0.3f);
    for (int c = 0; c < C; c++) w[c] += 1.0f;
    fill_normal(dout, n, 13, 1.0f);
    fill_normal(dinp, n, 14, 1.0f);
    fill_normal(dw, C, 15, 1.0f);
    if (in_dt == LLAMA_CUDA_DT_BF16) {
        round_bf16(x, n);
        round_bf16(dout, n);
        round_bf16(dinp, n);
    }
    char label[96];
    llama_rmsnorm_forward(out, rstd, x, w, N, C, 1e-6f);
    void *d_x = dup_dt(ctx, x, n, in_dt), *d_out = dup_act(ctx, out, n);
    float *d_w = dup_f32(ctx, w, C), *d_rstd = dup_f32(ctx, rstd, N);
    llama_cuda_memset0(ctx, d_rstd, (size_t)N * 4);
    llama_cuda_rmsnorm_forward(ctx, d_out, act, d_rstd, d_x, in_dt, d_w, N, C, 1e-6f);
    down_act(ctx, got, d_out, n);
    down_dt(ctx, grstd, d_rstd, N, LLAMA_CUDA_DT_F32);
    snprintf(label, sizeof label, "rmsnorm forward N=%d C=%d %s rows", N, C, in_dt ? "bf16" : "fp32");
    CHECK_ERR(label, got, out, n, tol);
    CHECK_ERR("rmsnorm rstd", grstd, rstd, N, 1e-5);
    llama_cuda_memset0(ctx, d_out, n * llama_cuda_act_size(ctx));
    llama_cuda_rmsnorm_recompute(ctx, d_out, act, d_x, in_dt, d_rstd, d_w, N, C);
    down_act(ctx, got, d_out, n);
    CHECK_ERR("rmsnorm recompute", got, out, n, tol);

    /* backward: fp32 rows accumulate into dinp (the residual gradient) with an optional bf16 copy;
     * act rows overwrite (q/k norms) */
    int accumulate = in_dt == LLAMA_CUDA_DT_F32;
    float *ref = hmalloc(n), *gdinp = hmalloc(n), *gcopy = hmalloc(n);
    if (accumulate) memcpy(ref, dinp, n * sizeof(float));
    else memset(ref, 0, n * sizeof(float));
    float *refdw = hmalloc(C);
    memcpy(refdw, dw, C * sizeof(float));
    llama_rmsnorm_backward(ref, refdw, dout, x, w, rstd, N, C);
    void *d_dinp = dup_dt(ctx, dinp, n, in_dt), *d_dout = dup_dt(ctx, dout, n, in_dt);
    float *d_dw = dup_f32(ctx, dw, C);
    void *d_copy = bf && accumulate ? dalloc(ctx, n * 2) : NULL;
    llama_cuda_rmsnorm_backward(ctx, d_dinp, accumulate, d_copy, d_dw, d_dout, d_x, d_w, d_rstd, N, C, in_dt);
    down_dt(ctx, gdinp, d_dinp, n, in_dt);
    down_dt(ctx, gdw, d_dw, C, LLAMA_CUDA_DT_F32);
    /* fp32 rows: the only rounding is the GPU's summation order */
    double btol = in_dt == LLAMA_CUDA_DT_F32 ? 1e-5 : tol;
    CHECK_ERR(accumulate ? "rmsnorm backward dinp (+=)" : "rmsnorm backward dinp (=)", gdinp, ref, n, btol);
    CHECK_ERR("rmsnorm backward dw (+=)", gdw, refdw, C, btol);
    if (d_copy) {
        down_dt(ctx, gcopy, d_copy, n, LLAMA_CUDA_DT_BF16);
        round_bf16(gdinp, n);
        CHECK_ERR("rmsnorm backward bf16 copy of dinp", gcopy, gdinp, n, 1e-7);
        dfree(ctx, d_copy, n * 2);
    }
    size_t es = in_dt == LLAMA_CUDA_DT_BF16 ? 2 : 4;
    dfree(ctx, d_x, n * es); dfree(ctx, d_out, n * llama_cuda_act_size(ctx)); dfree(ctx, d_w, C * 4);
    dfree(ctx, d_rstd, (size_t)N * 4); dfree(ctx, d_dinp, n * es); dfree(ctx, d_dout, n * es); dfree(ctx, d_dw, C * 4);
    free(x); free(w); free(out); free(rstd); free(got); free(grstd); free(dout); free(dinp); free(dw); free(gdw);
    free(ref); free(gdinp); free(gcopy); free(refdw);
}

static void test_rope(llama_cuda_ctx *ctx, int p, int llama3) {
    double tol = layer_tol(p);
    llama_config cfg = small_config("LlamaForCausalLM", 16, 24, 16, 1, 3, 3, 12);
    if (llama3) {
        cfg.rope_theta = 100.0f;
        cfg.rope_type = LLAMA_ROPE_LLAMA3;
        cfg.rope_factor = 8.0f;
        cfg.rope_low_freq_factor = 1.0f;
        cfg.rope_high_freq_factor = 4.0f;
        cfg.rope_original_max_position_embeddings = 16;
    }
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 1, 0.02f) == 0);
    const int npos = 40, NHh = 3, HS = 12, half = HS / 2;
    CHECK(llama_rope_ensure(&m, npos) == 0);
    float *d_cs = dalloc(ctx, (size_t)npos * half * 4), *d_sn = dalloc(ctx, (size_t)npos * half * 4);
    llama_cuda_rope_tables(ctx, &cfg, npos, d_cs, d_sn);
    /* the tables are computed the same way on the host: exactly equal */
    float *cs = hmalloc((size_t)npos * half), *sn = hmalloc((size_t)npos * half);
    down_dt(ctx, cs, d_cs, (size_t)npos * half, LLAMA_CUDA_DT_F32);
    down_dt(ctx, sn, d_sn, (size_t)npos * half, LLAMA_CUDA_DT_F32);
    CHECK(memcmp(cs, m.state->rope_cos, sizeof(float) * npos * half) == 0);
    CHECK(memcmp(sn, m.state->rope_sin, sizeof(float) * npos * half) == 0);
    /* training rows (B=2, T=9: period 9) and decode rows (4 rows at position 31, period 1) */
    struct { int N, start, period; } cases[2] = {{18, 0, 9}, {4, 31, 1}};
    for (int ci = 0; ci < 2; ci++) {
        int N = cases[ci].N;
        size_t n = (size_t)N * NHh * HS;
        float *x = hmalloc(n), *ref = hmalloc(n), *got = hmalloc(n);
        fill_normal(x, n, 21 + ci, 1.0f);
        round_act(ctx, x, n);
        for (int bwd = 0; bwd < 2; bwd++) {
            memcpy(ref, x, n * sizeof(float));
            if (bwd) llama_rope_backward(&m, ref, N, NHh, cases[ci].start, cases[ci].period);
            else llama_rope_forward(&m, ref, N, NHh, cases[ci].start, cases[ci].period);
            void *d_x = dup_act(ctx, x, n);
            llama_cuda_rope(ctx, d_x, N, NHh, HS, cases[ci].start, cases[ci].period, d_cs, d_sn, bwd);
            down_act(ctx, got, d_x, n);
            char label[96];
            snprintf(label, sizeof label, "rope %s %s (%s rows)", llama3 ? "llama3" : "default", bwd ? "backward" : "forward",
                     ci ? "decode" : "training");
            CHECK_ERR(label, got, ref, n, tol);
            dfree(ctx, d_x, n * llama_cuda_act_size(ctx));
        }
        free(x); free(ref); free(got);
    }
    dfree(ctx, d_cs, (size_t)npos * half * 4);
    dfree(ctx, d_sn, (size_t)npos * half * 4);
    free(cs); free(sn);
    llama_free(&m);
}

static void test_swiglu(llama_cuda_ctx *ctx, int p) {
    double tol = layer_tol(p);
    const size_t n = 1003;
    float *g = hmalloc(n), *u = hmalloc(n), *dh = hmalloc(n), *h = hmalloc(n), *got = hmalloc(n);
    float *dg = hmalloc(n), *du = hmalloc(n), *gdg = hmalloc(n), *gdu = hmalloc(n);
    fill_normal(g, n, 31, 2.0f);
    fill_normal(u, n, 32, 1.0f);
    fill_normal(dh, n, 33, 1.0f);
    round_act(ctx, g, n);
    round_act(ctx, u, n);
    round_act(ctx, dh, n);
    llama_swiglu_forward(h, g, u, n);
    llama_swiglu_backward(dg, du, dh, g, u, n);
    void *d_g = dup_act(ctx, g, n), *d_u = dup_act(ctx, u, n), *d_h = dup_act(ctx, h, n), *d_dh = dup_act(ctx, dh, n);
    void *d_du = dup_act(ctx, du, n);
    llama_cuda_swiglu_forward(ctx, d_h, d_g, d_u, n);
    down_act(ctx, got, d_h, n);
    CHECK_ERR("swiglu forward", got, h, n, tol);
    llama_cuda_swiglu_backward(ctx, d_dh, d_du, d_dh, d_g, d_u, n); /* dgate aliases dh, as the model does */
    down_act(ctx, gdg, d_dh, n);
    down_act(ctx, gdu, d_du, n);
    CHECK_ERR("swiglu backward dgate (in place)", gdg, dg, n, tol);
    CHECK_ERR("swiglu backward dup", gdu, du, n, tol);
    size_t A = llama_cuda_act_size(ctx);
    dfree(ctx, d_g, n * A); dfree(ctx, d_u, n * A); dfree(ctx, d_h, n * A); dfree(ctx, d_dh, n * A); dfree(ctx, d_du, n * A);
    free(g); free(u); free(dh); free(h); free(got); free(dg); free(du); free(gdg); free(gdu);
}

static void test_embedding(llama_cuda_ctx *ctx) {
    const int V = 23, C = 40, N = 50, pad = 3;
    float *wte = hmalloc((size_t)V * C), *out = hmalloc((size_t)N * C), *dout = hmalloc((size_t)N * C);
    float *dw = hmalloc((size_t)V * C), *ref = hmalloc((size_t)V * C), *got = hmalloc((size_t)V * C);
    int tok[50];
    random_tokens(tok, N, 7, 41); /* only 7 distinct ids: many repeats */
    tok[5] = tok[17] = pad;
    fill_normal(wte, (size_t)V * C, 42, 1.0f);
    fill_normal(dout, (size_t)N * C, 43, 1.0f);
    fill_normal(dw, (size_t)V * C, 44, 1.0f);
    int *d_tok = dalloc(ctx, sizeof tok);
    llama_cuda_h2d(ctx, d_tok, tok, sizeof tok);
    float *d_wte = dup_f32(ctx, wte, (size_t)V * C), *d_out = dalloc(ctx, (size_t)N * C * 4);
    llama_cuda_embedding_forward(ctx, d_out, d_tok, d_wte, N, C);
    down_dt(ctx, out, d_out, (size_t)N * C, LLAMA_CUDA_DT_F32);
    int same = 1;
    for (int i = 0; i < N; i++)
        if (memcmp(out + (size_t)i * C, wte + (size_t)tok[i] * C, C * sizeof(float)) != 0) same = 0;
    CHECK_MSG(same, "embedding forward rows differ from wte[tokens]");
    memcpy(ref, dw, sizeof(float) * V * C);
    for (int i = 0; i < N; i++)
        if (tok[i] != pad)
            for (int c = 0; c < C; c++) ref[(size_t)tok[i] * C + c] += dout[(size_t)i * C + c];
    float *d_dw = dup_f32(ctx, dw, (size_t)V * C), *d_dout = dup_f32(ctx, dout, (size_t)N * C);
    llama_cuda_embedding_backward(ctx, d_dw, d_dout, tok, N, C, pad);
    down_dt(ctx, got, d_dw, (size_t)V * C, LLAMA_CUDA_DT_F32);
    CHECK_ERR("embedding backward (repeats, padding row)", got, ref, (size_t)V * C, 1e-6);
    CHECK(memcmp(got + (size_t)pad * C, dw + (size_t)pad * C, C * sizeof(float)) == 0);
    dfree(ctx, d_tok, sizeof tok); dfree(ctx, d_wte, (size_t)V * C * 4); dfree(ctx, d_out, (size_t)N * C * 4);
    dfree(ctx, d_dw, (size_t)V * C * 4); dfree(ctx, d_dout, (size_t)N * C * 4);
    free(wte); free(out); free(dout); free(dw); free(ref); free(got);
}

/* The LM head's reductions on given logits: reference in double. */
static void test_head(llama_cuda_ctx *ctx, int p) {
    const int B = 2, T = 7, V = 611, N = B * T;
    float *z = hmalloc((size_t)N * V), *dlogp = hmalloc(N);
    int tok[14];
    random_tokens(tok, N, V, 51);
    fill_normal(z, (size_t)N * V, 52, 3.0f);
    fill_normal(dlogp, N, 53, 1.0f);
    float rlogp[14] = {0}, rent[14] = {0}, rlse[14] = {0};
    for (int n = 0; n < N; n++) {
        if (n % T == T - 1) continue;
        const float *zr = z + (size_t)n * V;
        double mx = zr[0], s = 0.0, sz = 0.0;
        for (int v = 1; v < V; v++) mx = fmax(mx, zr[v]);
        for (int v = 0; v < V; v++) s += exp(zr[v] - mx);
        double lse = mx + log(s);
        for (int v = 0; v < V; v++) sz += exp(zr[v] - lse) * zr[v];
        rlse[n] = (float)lse;
        rlogp[n + 1] = (float)(zr[tok[n + 1]] - lse);
        rent[n + 1] = (float)(lse - sz);
    }
    float *d_z = dup_f32(ctx, z, (size_t)N * V), *d_logp = dalloc(ctx, N * 4), *d_ent = dalloc(ctx, N * 4);
    float *d_lse = dalloc(ctx, N * 4);
    int *d_tok = dalloc(ctx, sizeof tok);
    llama_cuda_h2d(ctx, d_tok, tok, sizeof tok);
    llama_cuda_memset0(ctx, d_logp, N * 4);
    llama_cuda_memset0(ctx, d_ent, N * 4);
    llama_cuda_memset0(ctx, d_lse, N * 4);
    /* in chunks of 5 rows, as the model calls it */
    for (int r0 = 0; r0 < N; r0 += 5)
        llama_cuda_head_logprobs(ctx, d_logp, d_ent, d_lse, d_z + (size_t)r0 * V, d_tok, r0, N - r0 < 5 ? N - r0 : 5, V,
                                 T);
    float glogp[14], gent[14], glse[14];
    down_dt(ctx, glogp, d_logp, N, LLAMA_CUDA_DT_F32);
    down_dt(ctx, gent, d_ent, N, LLAMA_CUDA_DT_F32);
    down_dt(ctx, glse, d_lse, N, LLAMA_CUDA_DT_F32);
    CHECK_ERR("head logp", glogp, rlogp, N, 1e-5);
    CHECK_ERR("head entropy", gent, rent, N, 1e-5);
    CHECK_ERR("head lse", glse, rlse, N, 1e-5);
    /* dlogits for a subset of rows */
    int rows[4] = {0, 3, 8, 12}, nr = 4;
    float *ref = hmalloc((size_t)nr * V), *got = hmalloc((size_t)nr * V), *zsub = hmalloc((size_t)nr * V);
    for (int i = 0; i < nr; i++) {
        int n = rows[i];
        memcpy(zsub + (size_t)i * V, z + (size_t)n * V, V * sizeof(float));
        for (int v = 0; v < V; v++)
            ref[(size_t)i * V + v] = (float)(-dlogp[n + 1] * exp((double)z[(size_t)n * V + v] - rlse[n]) +
                                             (v == tok[n + 1] ? dlogp[n + 1] : 0.0));
    }
    float *d_zsub = dup_f32(ctx, zsub, (size_t)nr * V), *d_dlogp = dup_f32(ctx, dlogp, N);
    void *d_dz = dalloc(ctx, (size_t)nr * V * 4);
    int *d_rows = dalloc(ctx, sizeof rows);
    llama_cuda_h2d(ctx, d_rows, rows, sizeof rows);
    llama_cuda_head_dlogits(ctx, d_dz, d_zsub, d_rows, nr, d_lse, d_dlogp, NULL, NULL, d_tok, V);
    down_act(ctx, got, d_dz, (size_t)nr * V);
    CHECK_ERR("head dlogits", got, ref, (size_t)nr * V, layer_tol(p));
    if (llama_cuda_act_dtype(ctx) == LLAMA_CUDA_DT_F32) { /* in place, as the fp32 model calls it */
        llama_cuda_head_dlogits(ctx, d_zsub, d_zsub, d_rows, nr, d_lse, d_dlogp, NULL, NULL, d_tok, V);
        down_dt(ctx, got, d_zsub, (size_t)nr * V, LLAMA_CUDA_DT_F32);
        CHECK_ERR("head dlogits in place", got, ref, (size_t)nr * V, 1e-5);
    }
    /* gather / scatter rows: exact */
    void *d_g = dalloc(ctx, (size_t)nr * V * 4);
    llama_cuda_gather_rows(ctx, d_g, d_z, d_rows, nr, V, LLAMA_CUDA_DT_F32);
    down_dt(ctx, got, d_g, (size_t)nr * V, LLAMA_CUDA_DT_F32);
    CHECK(memcmp(got, zsub, sizeof(float) * nr * V) == 0);
    float *d_sc = dalloc(ctx, (size_t)N * V * 4);
    llama_cuda_memset0(ctx, d_sc, (size_t)N * V * 4);
    llama_cuda_scatter_rows(ctx, d_sc, d_g, d_rows, nr, V, LLAMA_CUDA_DT_F32); /* d_g holds zsub */
    float *sc = hmalloc((size_t)N * V);
    down_dt(ctx, sc, d_sc, (size_t)N * V, LLAMA_CUDA_DT_F32);
    int ok = 1;
    for (int n = 0, i = 0; n < N; n++) {
        int hit = i < nr && rows[i] == n;
        for (int v = 0; v < V; v++) {
            float want = hit ? zsub[(size_t)i * V + v] : 0.0f;
            if (sc[(size_t)n * V + v] != want) ok = 0;
        }
        if (hit) i++;
    }
    CHECK_MSG(ok, "scatter_rows wrote wrong rows");
    dfree(ctx, d_z, (size_t)N * V * 4); dfree(ctx, d_logp, N * 4); dfree(ctx, d_ent, N * 4); dfree(ctx, d_lse, N * 4);
    dfree(ctx, d_tok, sizeof tok); dfree(ctx, d_zsub, (size_t)nr * V * 4); dfree(ctx, d_dlogp, N * 4);
    dfree(ctx, d_dz, (size_t)nr * V * 4); dfree(ctx, d_rows, sizeof rows); dfree(ctx, d_g, (size_t)nr * V * 4);
    dfree(ctx, d_sc, (size_t)N * V * 4);
    free(z); free(dlogp); free(ref); free(got); free(zsub); free(sc);
}

static void test_adamw(llama_cuda_ctx *ctx) {
    const size_t n = 1537;
    float *p = hmalloc(n), *g = hmalloc(n), *gp = hmalloc(n), *gm = hmalloc(n), *gv = hmalloc(n), *lp = hmalloc(n);
    unsigned char *decay = malloc(n);
    fill_normal(p, n, 61, 0.5f);
    for (size_t i = 0; i < n; i++) decay[i] = (i / 100) % 2;
    float *d_p = dup_f32(ctx, p, n), *d_g = dalloc(ctx, n * 4), *d_m = dalloc(ctx, n * 4), *d_v = dalloc(ctx, n * 4);
    void *d_lp = dalloc(ctx, n * 2);
    unsigned char *d_decay = dalloc(ctx, n);
    llama_cuda_h2d(ctx, d_decay, decay, n);
    llama_cuda_memset0(ctx, d_m, n * 4);
    llama_cuda_memset0(ctx, d_v, n * 4);
    adamw_state s;
    CHECK(adamw_init(&s, n) == 0);
    adamw_hparams h = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f};
    for (int step = 1; step <= 2; step++) {
        fill_normal(g, n, 62 + step, 1.0f);
        llama_cuda_h2d(ctx, d_g, g, n * 4);
        adamw_step(&s, &h, p, g, decay);
        llama_cuda_adamw(ctx, d_p, d_lp, d_m, d_v, d_g, d_decay, n, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, step);
        down_dt(ctx, gp, d_p, n, LLAMA_CUDA_DT_F32);
        down_dt(ctx, gm, d_m, n, LLAMA_CUDA_DT_F32);
        down_dt(ctx, gv, d_v, n, LLAMA_CUDA_DT_F32);
        down_dt(ctx, lp, d_lp, n, LLAMA_CUDA_DT_BF16);
        CHECK_ERR(step == 1 ? "adamw params, step 1" : "adamw params, step 2", gp, p, n, 1e-6);
        CHECK_ERR("adamw m", gm, s.m, n, 1e-6);
        CHECK_ERR("adamw v", gv, s.v, n, 1e-6);
        round_bf16(gp, n);
        CHECK(memcmp(lp, gp, n * sizeof(float)) == 0);
    }
    /* sum of squares and scaling */
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    CHECK_NEAR(llama_cuda_sumsq(ctx, d_g, n), ss, 1e-9 * ss);
    llama_cuda_scale(ctx, d_g, n, 0.5f);
    CHECK_NEAR(llama_cuda_sumsq(ctx, d_g, n), ss / 4, 1e-9 * ss);
    /* conversion round trip */
    llama_cuda_convert(ctx, d_lp, LLAMA_CUDA_DT_BF16, d_g, LLAMA_CUDA_DT_F32, n);
    llama_cuda_convert(ctx, d_m, LLAMA_CUDA_DT_F32, d_lp, LLAMA_CUDA_DT_BF16, n);
    down_dt(ctx, gm, d_m, n, LLAMA_CUDA_DT_F32);
    for (size_t i = 0; i < n; i++) g[i] *= 0.5f;
    round_bf16(g, n);
    CHECK(memcmp(gm, g, n * sizeof(float)) == 0);
    adamw_free(&s);
    dfree(ctx, d_p, n * 4); dfree(ctx, d_g, n * 4); dfree(ctx, d_m, n * 4); dfree(ctx, d_v, n * 4);
    dfree(ctx, d_lp, n * 2); dfree(ctx, d_decay, n);
    free(p); free(g); free(gp); free(gm); free(gv); free(lp); free(decay);
}

int main(void) {
    skip_without_device();
    /* bf16 rounding on the host: nearest even, and exact round trips */
    CHECK_EQ_INT(llama_cuda_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(llama_cuda_f32_to_bf16(1.00390625f), 0x3f80); /* halfway 1 + 2^-8: to even (down) */
    CHECK_EQ_INT(llama_cuda_f32_to_bf16(1.01171875f), 0x3f82); /* halfway 1 + 3*2^-8: to even (up) */
    CHECK(llama_cuda_bf16_to_f32(llama_cuda_f32_to_bf16(-2.5f)) == -2.5f);
    for (int pi = 0; pi < 3; pi++) {
        int p = test_precisions[pi];
        printf("== %s\n", precision_names[pi]);
        llama_cuda_ctx *ctx = make_ctx(p);
        test_matmul(ctx, p);
        test_rmsnorm(ctx, p, 29, 72, LLAMA_CUDA_DT_F32);
        test_rmsnorm(ctx, p, 11, 300, LLAMA_CUDA_DT_F32);
        test_rmsnorm(ctx, p, 53, 12, llama_cuda_act_dtype(ctx));
        test_rope(ctx, p, 0);
        test_rope(ctx, p, 1);
        test_swiglu(ctx, p);
        test_head(ctx, p);
        if (pi == 0) {
            test_embedding(ctx);
            test_adamw(ctx);
        }
        llama_cuda_ctx_free(ctx);
    }
    return TEST_DONE();
}
