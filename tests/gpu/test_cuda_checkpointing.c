/*
 * tests/gpu/test_cuda_checkpointing.c: gradient checkpointing on the CUDA model
 * (llama_cuda_set_gradient_checkpointing) changes device memory, not results. Two device models made
 * from the same CPU model, one with checkpointing off and one on, see the same calls, for tied Qwen2
 * (q/k/v biases, a padding token), untied Llama (q/k/v/o biases, MHA) and Qwen3 (q/k norms,
 * NH*HS != C), in FP32, TF32 and BF16:
 *   - logp and entropy of a forward, every parameter gradient after a backward (random dlogp with
 *     masked entries and right padding), after a second backward of the same forward, and after a
 *     second forward on a smaller batch (buffers reused) whose backward accumulates;
 *   - the device model takes the CPU model's setting at llama_cuda_create, and switching the mode
 *     of one model between calls works (the buffers are re-laid out);
 *   - memory: the activation allocation shrinks by exactly what llama_cuda_training_bytes_ex
 *     predicts (llama_cuda_get_memory's current bytes, off minus on).
 * The recomputation runs the forward's own kernels on the same stored layer inputs and the kernels
 * are deterministic (no atomics), so the emulator (tests/gpu/emu) must give BITWISE equal results;
 * on a GPU the check is the layer limit of the precision (1e-5 / 1e-3 / 1e-2 normalized error), and
 * whether the results were bitwise equal is printed.
 * Exit 77 ("SKIP: no CUDA device") without a GPU.
 */
#include "tests/gpu/gpu_test_util.h"

static llama_config test_config(int which) {
    llama_config c;
    switch (which) {
    case 0:
        c = small_config("Qwen2ForCausalLM", 67, 48, 80, 3, 4, 2, 12);
        c.tie_word_embeddings = 1;
        c.attention_bias = 1;
        c.pad_token_id = 5;
        break;
    case 1:
        c = small_config("LlamaForCausalLM", 50, 32, 56, 3, 4, 4, 8);
        c.attention_bias = 1;
        c.pad_token_id = 0;
        break;
    default:
        c = small_config("Qwen3ForCausalLM", 45, 40, 64, 3, 4, 2, 16);
        c.pad_token_id = 0;
        break;
    }
    return c;
}

/* a (off) against b (on): bitwise on the emulator, else within tol. Returns 1 when bitwise equal. */
static int compare(const char *label, const float *a, const float *b, size_t n, double tol) {
    int bitwise = memcmp(a, b, n * sizeof(float)) == 0;
    double e = norm_err(b, a, n);
    if (GPU_TEST_EMU)
        CHECK_MSG(bitwise, "%s: not bitwise equal on the emulator (normalized error %.3g)", label, e);
    else
        CHECK_MSG(e < tol, "%s: normalized error %.3g, limit %.g", label, e, tol);
    if (!bitwise) printf("  %-52s normalized error %.3g%s\n", label, e, GPU_TEST_EMU ? "" : " (GPU: allowed)");
    return bitwise;
}

/* Tokens (B, T), row b right-padded after its length; dlogp random, 0 at t = 0, padding, some masked. */
static void make_batch(const llama_config *c, int B, int T, uint64_t seed, int *tok, float *dlogp) {
    random_tokens(tok, (size_t)B * T, c->vocab_size, seed);
    fill_normal(dlogp, (size_t)B * T, seed + 1, 1.0f);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (t >= T - 3 * b) {
                tok[i] = c->pad_token_id;
                dlogp[i] = 0.0f;
            }
            if (t == 0 || i % 4 == 2) dlogp[i] = 0.0f;
        }
}

static int grads_equal(const char *label, llama_cuda_model *off, llama_cuda_model *on, llama_model *h0,
                       llama_model *h1, double tol) {
    char err[256];
    CHECK(llama_cuda_download(off, h0, 0, 1, err, sizeof err) == 0);
    CHECK(llama_cuda_download(on, h1, 0, 1, err, sizeof err) == 0);
    return compare(label, h0->grads, h1->grads, h0->num_params, tol);
}

static void check(int which, int pi) {
    int p = test_precisions[pi];
    llama_config cfg = test_config(which);
    printf("== %s, %s\n", cfg.architecture, precision_names[pi]);
    double tol = layer_tol(p);
    llama_model m, h0, h1;
    CHECK(llama_init_random(&m, &cfg, 7 + which, 0.02f) == 0);
    CHECK(llama_init_random(&h0, &cfg, 7 + which, 0.02f) == 0);
    CHECK(llama_init_random(&h1, &cfg, 7 + which, 0.02f) == 0);
    randomize_model(&m, 100 + which, 0.15f);
    llama_cuda_model off, on;
    char err[256];
    /* `on` takes the setting from the CPU model (llama_cuda_create copies it), `off` from the setter */
    llama_set_gradient_checkpointing(&m, 1);
    if (llama_cuda_create(&off, &m, 0, p, err, sizeof err) || llama_cuda_create(&on, &m, 0, p, err, sizeof err)) {
        fprintf(stderr, "llama_cuda_create: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK(off.gradient_checkpointing == 1 && on.gradient_checkpointing == 1);
    llama_cuda_set_gradient_checkpointing(&off, 0);
    CHECK(off.gradient_checkpointing == 0);

    enum { B = 3, T = 13, N = B * T, B2 = 2, T2 = 9 };
    int tok[N], tok2[N];
    float dlogp[N], dlogp2[N], lp0[N], lp1[N], en0[N], en1[N];
    make_batch(&cfg, B, T, 200 + which, tok, dlogp);
    make_batch(&cfg, B2, T2, 300 + which, tok2, dlogp2);
    int all = 1;

    CHECK_MSG(llama_cuda_forward_logprobs(&off, tok, B, T, lp0, en0) == 0, "%s", off.err);
    CHECK_MSG(llama_cuda_forward_logprobs(&on, tok, B, T, lp1, en1) == 0, "%s", on.err);
    all &= compare("logp", lp0, lp1, N, tol);
    all &= compare("entropy", en0, en1, N, tol);

    /* memory: the activations shrink by what llama_cuda_training_bytes_ex predicts */
    llama_cuda_memory m0, m1;
    llama_cuda_get_memory(&off, &m0);
    llama_cuda_get_memory(&on, &m1);
    size_t t0 = llama_cuda_training_bytes_ex(&cfg, p, B, T, 0), t1 = llama_cuda_training_bytes_ex(&cfg, p, B, T, 1);
    CHECK(llama_cuda_training_bytes(&cfg, p, B, T) == t0);
    CHECK(t1 < t0);
    CHECK(m1.current_bytes < m0.current_bytes);
    CHECK_EQ_INT(m0.current_bytes - m1.current_bytes, t0 - t1);
    printf("  device bytes after the forward: %zu off, %zu on (training bytes %zu / %zu)\n", m0.current_bytes,
           m1.current_bytes, t0, t1);

    llama_cuda_zero_grad(&off);
    llama_cuda_zero_grad(&on);
    llama_cuda_backward_logprobs(&off, dlogp);
    llama_cuda_backward_logprobs(&on, dlogp);
    all &= grads_equal("gradients", &off, &on, &h0, &h1, tol);
    /* a second backward of the same forward: every layer recomputed again */
    llama_cuda_backward_logprobs(&off, dlogp);
    llama_cuda_backward_logprobs(&on, dlogp);
    all &= grads_equal("gradients after a second backward", &off, &on, &h0, &h1, tol);
    /* a second, smaller forward (buffers reused), its backward accumulating */
    CHECK(llama_cuda_forward_logprobs(&off, tok2, B2, T2, lp0, NULL) == 0);
    CHECK(llama_cuda_forward_logprobs(&on, tok2, B2, T2, lp1, NULL) == 0);
    all &= compare("logp of a second forward", lp0, lp1, B2 * T2, tol);
    llama_cuda_backward_logprobs(&off, dlogp2);
    llama_cuda_backward_logprobs(&on, dlogp2);
    all &= grads_equal("gradients after a second forward", &off, &on, &h0, &h1, tol);

    /* switching one model's mode between calls: off -> on -> off */
    float *g_ref = hmalloc(m.num_params);
    CHECK(llama_cuda_forward_logprobs(&off, tok, B, T, lp0, NULL) == 0);
    llama_cuda_zero_grad(&off);
    llama_cuda_backward_logprobs(&off, dlogp);
    CHECK(llama_cuda_download(&off, &h0, 0, 1, err, sizeof err) == 0);
    memcpy(g_ref, h0.grads, m.num_params * sizeof(float));
    for (int mode = 1; mode >= 0; mode--) {
        llama_cuda_set_gradient_checkpointing(&off, mode);
        CHECK(llama_cuda_forward_logprobs(&off, tok, B, T, lp1, NULL) == 0);
        all &= compare("logp after switching the mode", lp0, lp1, N, tol);
        llama_cuda_zero_grad(&off);
        llama_cuda_backward_logprobs(&off, dlogp);
        CHECK(llama_cuda_download(&off, &h0, 0, 1, err, sizeof err) == 0);
        all &= compare("gradients after switching the mode", g_ref, h0.grads, m.num_params, tol);
    }
    printf("  logp, entropy and every gradient (2 backward passes, 2nd forward, mode switches): %s\n",
           all ? "bitwise equal" : "within the limit");
    free(g_ref);
    llama_cuda_free(&off);
    llama_cuda_free(&on);
    llama_free(&m);
    llama_free(&h0);
    llama_free(&h1);
}

int main(void) {
    skip_without_device();
    for (int which = 0; which < 3; which++)
        for (int pi = 0; pi < 3; pi++) check(which, pi);
    return TEST_DONE();
}
