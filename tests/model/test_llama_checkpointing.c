/*
 * tests/model/test_llama_checkpointing.c: gradient checkpointing (llama_set_gradient_checkpointing)
 * changes memory, never results. Two copies of the same random model, one with checkpointing off and
 * one on, see the same calls; every output must be BITWISE equal (the recomputation runs the
 * forward's own kernels in the same order on the same stored layer inputs):
 *   - logp and entropy of llama_forward_logprobs, logits of llama_forward_logits;
 *   - every parameter gradient after llama_backward_logprobs with a random dlogp (some entries 0);
 *   - a second backward after the same forward (the recomputed layer left in the work rows is not the
 *     last one any more), and a second forward on other tokens and a smaller B x T (buffers reused)
 *     followed by a backward that accumulates into the first gradients;
 *   - switching the mode on one model between calls (the buffers are re-laid out at the next forward).
 * For Llama (untied, no bias), Qwen2 (q/k/v biases, tied), Qwen3 (q/k norm, NH*HS != C, o bias),
 * Mistral (sliding window), with 3 layers, B x T in {1x1, 2x7, 3x33, 2x70 (two attention tiles)},
 * right padding (a pad token after each row's length, dlogp 0 there).
 * Memory: llama_activation_bytes_ex with and without checkpointing for the tiny models and for
 * SmolLM2-135M and Qwen2.5-0.5B shapes at B x T = 8 x 512 (printed), and the layout the model really
 * allocates (layer inputs separate, everything else shared between layers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"
#include "tests/model/llama_test_util.h"
#include "tests/testing.h"

/* Bitwise comparison of n floats; prints the first difference. */
static int same_bits(const char *what, const float *a, const float *b, size_t n) {
    if (memcmp(a, b, n * sizeof(float)) == 0) return 1;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            fprintf(stderr, "  %s: first difference at %zu: %.9g (off) vs %.9g (on)\n", what, i, a[i], b[i]);
            break;
        }
    return 0;
}

/* Every gradient tensor of `off` and `on` bitwise equal; names the first tensor that differs. */
static int same_grads(const char *label, const llama_model *off, const llama_model *on) {
    int ok = 1;
    for (int i = 0; i < off->num_tensors; i++) {
        const llama_tensor *t = &off->tensors[i];
        if (!same_bits(t->name, t->grad, on->tensors[i].grad, t->numel)) {
            fprintf(stderr, "  %s: gradient of %s differs\n", label, t->name);
            ok = 0;
        }
    }
    return ok;
}

/* Tokens (B, T) with right padding: row b has length len_b, pad after it; dlogp random, 0 at t = 0,
 * at padding and at a few masked positions. */
static void make_batch(const llama_config *c, int B, int T, uint64_t seed, int *tok, float *dlogp) {
    random_tokens(tok, (size_t)B * T, c->vocab_size, seed);
    llama_rng r;
    llama_rng_seed(&r, seed, 5);
    for (int b = 0; b < B; b++) {
        int len = T - (b * (T / 3 + 1)) % T; /* row 0 full, the others shorter (when T > 1) */
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            dlogp[i] = (float)llama_rng_normal(&r);
            if (t >= len) {
                tok[i] = c->pad_token_id >= 0 ? c->pad_token_id : 0;
                dlogp[i] = 0.0f;
            }
            if (t == 0 || i % 5 == 3) dlogp[i] = 0.0f;
        }
    }
}

static void check_config(const char *label, llama_config cfg, uint64_t seed) {
    printf("== %s\n", label);
    cfg.max_position_embeddings = 128;
    llama_model off, on;
    CHECK(llama_init_random(&off, &cfg, seed, 0.02f) == 0);
    CHECK(llama_init_random(&on, &cfg, seed, 0.02f) == 0);
    randomize_params(&off, seed, 0.4f);
    randomize_params(&on, seed, 0.4f);
    CHECK(off.gradient_checkpointing == 0);
    llama_set_gradient_checkpointing(&on, 1);
    CHECK(on.gradient_checkpointing == 1);

    static const int shapes[][2] = {{1, 1}, {2, 7}, {3, 33}, {2, 70}};
    const int maxN = 3 * 33 > 2 * 70 ? 3 * 33 : 2 * 70;
    int *tok = malloc(sizeof(int) * maxN), *tok2 = malloc(sizeof(int) * maxN);
    float *dlogp = malloc(sizeof(float) * maxN), *dlogp2 = malloc(sizeof(float) * maxN);
    float *lp0 = malloc(sizeof(float) * maxN), *lp1 = malloc(sizeof(float) * maxN);
    float *en0 = malloc(sizeof(float) * maxN), *en1 = malloc(sizeof(float) * maxN);
    float *lg0 = malloc(sizeof(float) * maxN * cfg.vocab_size), *lg1 = malloc(sizeof(float) * maxN * cfg.vocab_size);
    float *g2 = malloc(sizeof(float) * off.num_params);

    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int B = shapes[si][0], T = shapes[si][1], N = B * T;
        char what[128];
        snprintf(what, sizeof what, "%s B=%d T=%d", label, B, T);
        make_batch(&cfg, B, T, seed * 31 + si, tok, dlogp);

        /* forward + backward */
        CHECK_MSG(llama_forward_logprobs(&off, tok, B, T, lp0, en0) == 0, "%s", off.err);
        CHECK_MSG(llama_forward_logprobs(&on, tok, B, T, lp1, en1) == 0, "%s", on.err);
        CHECK_MSG(same_bits("logp", lp0, lp1, N), "%s: logp differs", what);
        CHECK_MSG(same_bits("entropy", en0, en1, N), "%s: entropy differs", what);
        llama_zero_grad(&off);
        llama_zero_grad(&on);
        llama_backward_logprobs(&off, dlogp);
        llama_backward_logprobs(&on, dlogp);
        CHECK_MSG(same_grads(what, &off, &on), "%s: gradients differ", what);

        /* a second backward after the same forward: every layer is recomputed again */
        llama_backward_logprobs(&off, dlogp);
        llama_backward_logprobs(&on, dlogp);
        CHECK_MSG(same_grads(what, &off, &on), "%s: gradients differ after a second backward", what);

        /* a second forward on other tokens, smaller when possible (buffers reused), accumulating */
        int B2 = B > 1 ? B - 1 : 1, T2 = T > 2 ? T - 2 : T;
        make_batch(&cfg, B2, T2, seed * 37 + si, tok2, dlogp2);
        CHECK(llama_forward_logprobs(&off, tok2, B2, T2, lp0, NULL) == 0);
        CHECK(llama_forward_logprobs(&on, tok2, B2, T2, lp1, NULL) == 0);
        CHECK_MSG(same_bits("logp", lp0, lp1, (size_t)B2 * T2), "%s: logp of the second forward differs", what);
        llama_backward_logprobs(&off, dlogp2);
        llama_backward_logprobs(&on, dlogp2);
        CHECK_MSG(same_grads(what, &off, &on), "%s: gradients differ after a second forward", what);

        /* logits */
        CHECK(llama_forward_logits(&off, tok, B, T, lg0) == 0);
        CHECK(llama_forward_logits(&on, tok, B, T, lg1) == 0);
        CHECK_MSG(same_bits("logits", lg0, lg1, (size_t)N * cfg.vocab_size), "%s: logits differ", what);
        printf("  B=%d T=%d: logp, entropy, logits and every gradient (1, 2 backward passes, 2nd forward) "
               "bitwise equal\n", B, T);
    }

    /* switching the mode on one model: off -> on -> off, each time the same gradients */
    {
        int B = 3, T = 33;
        make_batch(&cfg, B, T, seed + 1000, tok, dlogp);
        llama_set_gradient_checkpointing(&off, 0);
        CHECK(llama_forward_logprobs(&off, tok, B, T, lp0, NULL) == 0);
        llama_zero_grad(&off);
        llama_backward_logprobs(&off, dlogp);
        memcpy(g2, off.grads, off.num_params * sizeof(float));
        for (int mode = 1; mode >= 0; mode--) {
            llama_set_gradient_checkpointing(&off, mode);
            /* takes effect at the next forward: a backward of the pending forward is unaffected */
            llama_zero_grad(&off);
            llama_backward_logprobs(&off, dlogp);
            CHECK_MSG(same_bits("gradients", g2, off.grads, off.num_params), "%s: mode %d set before a backward",
                      label, mode);
            CHECK(llama_forward_logprobs(&off, tok, B, T, lp1, NULL) == 0);
            CHECK_EQ_INT(off.state->ckpt, mode);
            CHECK_MSG(same_bits("logp", lp0, lp1, (size_t)B * T), "%s: logp after switching to %d", label, mode);
            llama_zero_grad(&off);
            llama_backward_logprobs(&off, dlogp);
            CHECK_MSG(same_bits("gradients", g2, off.grads, off.num_params), "%s: gradients after switching to %d",
                      label, mode);
        }
        printf("  switching the mode off -> on -> off between calls: bitwise equal\n");
    }

    /* the layout really allocated: layer inputs separate, everything else shared by all layers */
    {
        const struct llama_state *st = on.state;
        int L = cfg.num_hidden_layers;
        CHECK_EQ_INT(st->ckpt, 1);
        for (int l = 1; l < L; l++) {
            CHECK(st->la[l].res_in != st->la[l - 1].res_in);
            CHECK(st->la[l].q == st->la[0].q && st->la[l].gate == st->la[0].gate && st->la[l].up == st->la[0].up);
            CHECK(st->la[l].res_mid == st->la[0].res_mid && st->la[l].lse == st->la[0].lse);
        }
        CHECK(off.state->la[1].q != off.state->la[0].q);
        size_t N = on.state->cap_rows;
        size_t b0 = llama_activation_bytes_ex(&cfg, N, 0), b1 = llama_activation_bytes_ex(&cfg, N, 1);
        CHECK(llama_activation_bytes(&cfg, N) == b0);
        CHECK(b1 < b0);
        printf("  activation bytes for N=%zu rows: %zu off, %zu on\n", N, b0, b1);
    }

    free(tok); free(tok2); free(dlogp); free(dlogp2); free(lp0); free(lp1); free(en0); free(en1);
    free(lg0); free(lg1); free(g2);
    llama_free(&off);
    llama_free(&on);
}

/* The activation memory of real model shapes at B x T = 8 x 512, as llama_activation_bytes_ex computes it. */
static void report_shape(const char *name, int L, int C, int NH, int NKV, int F, int V, int bias) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "%s", bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
    c.num_hidden_layers = L;
    c.hidden_size = C;
    c.num_attention_heads = NH;
    c.num_key_value_heads = NKV;
    c.head_dim = C / NH;
    c.intermediate_size = F;
    c.vocab_size = V;
    c.tie_word_embeddings = 1;
    c.attention_bias = bias;
    c.max_position_embeddings = 2048;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.pad_token_id = -1;
    c.bos_token_id = -1;
    char err[256];
    CHECK_MSG(llama_config_check(&c, err, sizeof err) == 0, "%s", err);
    size_t N = 8 * 512;
    double off = llama_activation_bytes_ex(&c, N, 0) / 1048576.0, on = llama_activation_bytes_ex(&c, N, 1) / 1048576.0;
    printf("  %-14s (L=%d C=%d NH=%d NKV=%d F=%d V=%d) B x T = 8 x 512: %8.1f MiB off, %7.1f MiB on "
           "(%.1f MiB saved, %.2fx less)\n", name, L, C, NH, NKV, F, V, off, on, off - on, off / on);
    CHECK(on < off);
}

int main(void) {
    llama_config c;

    c = tiny_config("LlamaForCausalLM", 0, 0);
    c.num_hidden_layers = 3;
    c.pad_token_id = 0;
    check_config("Llama (untied, 3 layers, pad 0)", c, 11);

    c = tiny_config("Qwen2ForCausalLM", 1, 1);
    c.num_hidden_layers = 3;
    c.pad_token_id = 9;
    check_config("Qwen2 (tied, q/k/v bias)", c, 12);

    c = tiny_config("Qwen3ForCausalLM", 0, 1);
    c.num_hidden_layers = 3;
    c.head_dim = 6; /* NH*HS = 24 != C */
    c.pad_token_id = 0;
    check_config("Qwen3 (q/k norm, q/k/v/o bias)", c, 13);

    c = tiny_config("MistralForCausalLM", 1, 0);
    c.num_hidden_layers = 3;
    c.sliding_window = 5;
    check_config("Mistral (sliding window 5)", c, 14);

    printf("== activation memory at B x T = 8 x 512 (llama_activation_bytes_ex)\n");
    report_shape("SmolLM2-135M", 30, 576, 9, 3, 1536, 49152, 0);
    report_shape("Qwen2.5-0.5B", 24, 896, 14, 2, 4864, 151936, 1);
    return TEST_DONE();
}
