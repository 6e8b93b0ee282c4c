/*
 * tests/gpu/test_cuda_cudnn_attention.c: attn_implementation: cudnn (model/cuda/attention_cudnn.c,
 * cuDNN's fused flash attention) against the CPU's llama_attention_forward / _backward and against our
 * own CUDA kernels, in BF16 (the only precision it takes), by normalized error (limit 1e-2, the BF16
 * layer limit of gpu_test_util.h):
 *   - forward out and lse, backward dq, dk, dv (the backward fed the CPU's out and lse, so cuDNN's
 *     backward is checked on our lse convention) for multi-head 4/4 HS 64, grouped-query 6/2 (3 query
 *     heads per kv head) HS 64 with T = 37, Qwen2.5-0.5B's 14/2 heads HS 64 with T = 130, multi-query
 *     8/1 HS 128; no sliding window; each shape must have been served by cuDNN (the context's counts),
 *     not by the fallback;
 *   - the fallback: a sliding window and head size 12 (not a multiple of 8) run natively, results
 *     equal to the CPU's, and the native count grows;
 *   - refusals: cudnn with an FP32 or TF32 context fails with a message naming attn_implementation;
 *   - a model step (Qwen2-shaped, 6/2 heads of 32, gradient checkpointing) through
 *     llama_cuda_set_attn_implementation: log-probs and all gradients cudnn vs native (limits 1e-2 / 5e-2,
 *     test_cuda_model's BF16 step limits), every attention call served by cuDNN.
 * Exit 77 without a GPU, and in builds without cuDNN (the emulator's: there it first checks that cudnn
 * is refused with that message). Unverified until a GPU session runs it (tools/gpu_check.sh does).
 */
#include "tests/gpu/gpu_test_util.h"

#include "model/llama_internal.h"

typedef struct { int B, T, NH, NKV, HS, window, want_cudnn; const char *label; } sdpa_case;

/* Expects llama_cuda_ctx_set_attn_implementation(cudnn) to fail with a message naming the key. */
static void check_refused(llama_cuda_ctx *ctx, const char *why) {
    char err[300] = "";
    int rc = llama_cuda_ctx_set_attn_implementation(ctx, LLAMA_CUDA_ATTN_CUDNN, err, sizeof err);
    printf("  refused (%s): %s\n", why, err);
    CHECK_MSG(rc == -1, "%s: attn_implementation cudnn was accepted", why);
    CHECK_MSG(strstr(err, "attn_implementation") != NULL, "%s: the message does not name the key: %s", why, err);
}

static void run_case(llama_cuda_ctx *ctx, const sdpa_case *c) {
    const double tol = layer_tol(LLAMA_CUDA_BF16);
    int B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HS = c->HS;
    size_t N = (size_t)B * T, nq = N * NH * HS, nk = N * NKV * HS, nl = N * NH, A = 2;
    float *q = hmalloc(nq), *k = hmalloc(nk), *v = hmalloc(nk), *out = hmalloc(nq), *lse = hmalloc(nl);
    float *dout = hmalloc(nq), *dq = hmalloc(nq), *dk = hmalloc(nk), *dv = hmalloc(nk);
    float *g = hmalloc(nq), *gk = hmalloc(nk), *glse = hmalloc(nl), *nat = hmalloc(nq), *natk = hmalloc(nk);
    fill_normal(q, nq, 171, 1.0f);
    fill_normal(k, nk, 172, 1.0f);
    fill_normal(v, nk, 173, 1.0f);
    fill_normal(dout, nq, 174, 1.0f);
    round_bf16(q, nq);
    round_bf16(k, nk);
    round_bf16(v, nk);
    round_bf16(dout, nq);
    float *scratch = hmalloc(llama_attention_scratch_floats(T));
    llama_attention_forward(out, lse, scratch, 1, q, k, v, B, T, NH, NKV, HS, c->window);
    round_bf16(out, nq);   /* the backward's input as a bf16 buffer holds it, on every side */
    llama_attention_backward(dq, dk, dv, scratch, 1, dout, q, k, v, out, lse, B, T, NH, NKV, HS, c->window);
    free(scratch);

    void *d_q = dup_act(ctx, q, nq), *d_k = dup_act(ctx, k, nk), *d_v = dup_act(ctx, v, nk);
    void *d_out = dalloc(ctx, nq * A), *d_dout = dup_act(ctx, dout, nq), *d_o = dup_act(ctx, out, nq);
    float *d_lse = dalloc(ctx, nl * 4), *d_lse_cpu = dup_f32(ctx, lse, nl);
    void *d_dq = dalloc(ctx, nq * A), *d_dk = dalloc(ctx, nk * A), *d_dv = dalloc(ctx, nk * A);
    char err[300], label[160];

    /* 1. our kernels, for the side-by-side figures */
    CHECK(llama_cuda_ctx_set_attn_implementation(ctx, LLAMA_CUDA_ATTN_NATIVE, err, sizeof err) == 0);
    llama_cuda_attention_forward(ctx, d_out, d_lse, d_q, d_k, d_v, B, T, NH, NKV, HS, c->window);
    down_act(ctx, nat, d_out, nq);

    /* 2. cudnn */
    CHECK_MSG(llama_cuda_ctx_set_attn_implementation(ctx, LLAMA_CUDA_ATTN_CUDNN, err, sizeof err) == 0, "%s", err);
    long cu0, na0, cu1, na1;
    llama_cuda_attn_counts(ctx, &cu0, &na0);
    llama_cuda_attention_forward(ctx, d_out, d_lse, d_q, d_k, d_v, B, T, NH, NKV, HS, c->window);
    down_act(ctx, g, d_out, nq);
    down_dt(ctx, glse, d_lse, nl, LLAMA_CUDA_DT_F32);
    snprintf(label, sizeof label, "%s: out", c->label);
    CHECK_ERR(label, g, out, nq, tol);
    printf("  %-44s cudnn vs native: %.3g\n", label, norm_err(g, nat, nq));
    snprintf(label, sizeof label, "%s: lse", c->label);
    CHECK_ERR(label, glse, lse, nl, tol);
    llama_cuda_attention_backward(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_o, d_lse_cpu, B, T, NH, NKV, HS,
                                  c->window);
    down_act(ctx, g, d_dq, nq);
    snprintf(label, sizeof label, "%s: dq", c->label);
    CHECK_ERR(label, g, dq, nq, tol);
    down_act(ctx, gk, d_dk, nk);   /* gk keeps cuDNN's dk for the side-by-side figure below */
    snprintf(label, sizeof label, "%s: dk", c->label);
    CHECK_ERR(label, gk, dk, nk, tol);
    down_act(ctx, natk, d_dv, nk);
    snprintf(label, sizeof label, "%s: dv", c->label);
    CHECK_ERR(label, natk, dv, nk, tol);
    llama_cuda_attn_counts(ctx, &cu1, &na1);
    printf("  %-44s served by cuDNN %ld, native %ld (forward + backward)\n", c->label, cu1 - cu0, na1 - na0);
    if (c->want_cudnn)
        CHECK_MSG(cu1 - cu0 == 2 && na1 == na0, "%s: cuDNN served %ld of 2 calls (see its stderr note)", c->label,
                  cu1 - cu0);
    else
        CHECK_MSG(cu1 == cu0 && na1 - na0 == 2, "%s: expected the native fallback for both calls", c->label);

    /* 3. our backward on the same inputs, for the side-by-side figure of dk */
    CHECK(llama_cuda_ctx_set_attn_implementation(ctx, LLAMA_CUDA_ATTN_NATIVE, err, sizeof err) == 0);
    llama_cuda_attention_backward(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_o, d_lse_cpu, B, T, NH, NKV, HS,
                                  c->window);
    down_act(ctx, natk, d_dk, nk);
    snprintf(label, sizeof label, "%s: dk", c->label);
    printf("  %-44s cudnn vs native: %.3g\n", label, norm_err(gk, natk, nk));

    dfree(ctx, d_q, nq * A); dfree(ctx, d_k, nk * A); dfree(ctx, d_v, nk * A); dfree(ctx, d_out, nq * A);
    dfree(ctx, d_dout, nq * A); dfree(ctx, d_o, nq * A); dfree(ctx, d_lse, nl * 4); dfree(ctx, d_lse_cpu, nl * 4);
    dfree(ctx, d_dq, nq * A); dfree(ctx, d_dk, nk * A); dfree(ctx, d_dv, nk * A);
    free(q); free(k); free(v); free(out); free(lse); free(dout); free(dq); free(dk); free(dv); free(g); free(gk);
    free(glse); free(nat); free(natk);
}

/* One model step through llama_cuda_set_attn_implementation: a Qwen2-shaped model (6/2 heads of 32, biases,
 * tied embeddings), gradient checkpointing on (the backward recomputes each layer's attention through the
 * same path), log-probs and every gradient with cudnn against native, both BF16, by the whole-step limits
 * of test_cuda_model (logp 1e-2, gradients 5e-2); every attention call must have been cuDNN's. */
static void test_model_step(void) {
    llama_config cfg = small_config("Qwen2ForCausalLM", 97, 192, 256, 2, 6, 2, 32);
    cfg.attention_bias = 1;
    cfg.tie_word_embeddings = 1;
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 31, 0.05f) == 0);
    m.gradient_checkpointing = 1;
    enum { B = 3, T = 41 };
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 37 + 11) % cfg.vocab_size;
    float dlogp[B * T], logp[2][B * T];
    for (int i = 0; i < B * T; i++) dlogp[i] = (i % T) ? 1.0f / (B * (T - 1)) : 0.0f;
    float *grads[2];
    char err[300];
    long cu = 0, na = 0, calls = 0;
    for (int impl = 0; impl < 2; impl++) {
        llama_cuda_model cm;
        CHECK_MSG(llama_cuda_create(&cm, &m, 0, LLAMA_CUDA_BF16, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(llama_cuda_set_attn_implementation(&cm, impl ? LLAMA_CUDA_ATTN_CUDNN : LLAMA_CUDA_ATTN_NATIVE, err,
                                                     sizeof err) == 0, "%s", err);
        CHECK_MSG(llama_cuda_forward_logprobs(&cm, tok, B, T, logp[impl], NULL) == 0, "%s", cm.err);
        llama_cuda_backward_logprobs(&cm, dlogp);
        grads[impl] = hmalloc(m.num_params);
        CHECK(llama_cuda_download(&cm, &m, 0, 1, err, sizeof err) == 0);
        memcpy(grads[impl], m.grads, m.num_params * sizeof(float));
        if (impl) llama_cuda_attn_counts(cm.ctx, &cu, &na);
        else llama_cuda_attn_counts(cm.ctx, NULL, &calls);   /* how many calls the step makes */
        llama_cuda_free(&cm);
    }
    printf("  model step (Qwen2 6/2 heads, HS 32, checkpointing): %ld attention calls; with cudnn: cuDNN %ld, "
           "native %ld\n", calls, cu, na);
    CHECK_MSG(calls >= 4 && cu == calls && na == 0, "cuDNN served %ld of %ld attention calls", cu, calls);
    CHECK_ERR("model step: logp, cudnn vs native", logp[1], logp[0], (size_t)B * T, 1e-2);
    CHECK_ERR("model step: gradients, cudnn vs native", grads[1], grads[0], m.num_params, 5e-2);
    free(grads[0]);
    free(grads[1]);
    llama_free(&m);
}

int main(void) {
    skip_without_device();
    int ver = llama_cuda_cudnn_version();
    printf("cuDNN: %d (0: this build has none)\n", ver);
    llama_cuda_ctx *f32 = make_ctx(LLAMA_CUDA_FP32), *tf32 = make_ctx(LLAMA_CUDA_TF32);
    check_refused(f32, "fp32 context");
    check_refused(tf32, "tf32 context");
    llama_cuda_ctx_free(f32);
    llama_cuda_ctx_free(tf32);
    llama_cuda_ctx *ctx = make_ctx(LLAMA_CUDA_BF16);
    if (ver == 0) {
        check_refused(ctx, "bf16 context, build without cuDNN");
        llama_cuda_ctx_free(ctx);
        if (testing_failures) return TEST_DONE();
        SKIP("this build has no cuDNN (the refusals above were checked); the cudnn path needs the GPU build");
    }
    const sdpa_case cases[] = {
        {2, 64, 4, 4, 64, 0, 1, "MHA 4/4, HS 64, T 64"},
        {2, 37, 6, 2, 64, 0, 1, "GQA 6/2 (rep 3), HS 64, T 37"},
        {1, 130, 14, 2, 64, 0, 1, "Qwen2.5-0.5B heads 14/2, HS 64, T 130"},
        {3, 17, 8, 1, 128, 0, 1, "MQA 8/1, HS 128, T 17"},
        {2, 33, 6, 2, 64, 8, 0, "GQA 6/2, window 8: native fallback"},
        {2, 21, 4, 2, 12, 0, 0, "HS 12: native fallback"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, &cases[i]);
    /* a shape seen before reuses its cached plan (no second note, still served by cuDNN) */
    run_case(ctx, &cases[1]);
    llama_cuda_ctx_free(ctx);
    test_model_step();
    return TEST_DONE();
}
