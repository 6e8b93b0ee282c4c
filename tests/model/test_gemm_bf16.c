/*
 * tests/model/test_gemm_bf16.c: bf16 matrix products on the CPU (model/llama_gemm_bf16.c, oneDNN) and
 * the model's bf16 mode (llama_set_bf16). Skips (77) where the build has no oneDNN or the CPU no
 * bfloat16 instructions, after checking that llama_set_bf16 then refuses with a reason and stays fp32.
 *   - llama_gemm_bf16 for the four transpose cases, beta 0 (C's NaNs ignored) and 1, row strides
 *     wider than the widths, odd sizes: against a double reference computed on the inputs rounded to
 *     bf16 by round-to-nearest-even; |C - ref| <= 1e-5 * sum_k |a_k b_k| (fp32 accumulation in any
 *     order). A conversion that truncated, or rounded ties away, would be off by ~1e-3 relative;
 *   - bitwise repeatable: the same product twice gives the same bits;
 *   - against fp32: the bf16 product is within the bf16 rounding bound 2^-8 * sum_k |a_k b_k|;
 *   - the model: log-probabilities with bf16 on within 0.05 nats of fp32, gradients with cosine
 *     similarity > 0.99 to fp32's and relative norm difference < 5 %, bitwise repeatable; off again,
 *     bitwise the fp32 results;
 *   - generation with bf16 on: its tokens' log-probabilities match the bf16 forward's, not fp32's.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama.h"
#include "model/llama_internal.h"
#include "model/llama_rng.h"
#include "tests/testing.h"

static float frand(llama_rng *r) { return (float)((double)(llama_rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

/* The reference rounding: float32 -> bfloat16 (nearest even) -> float32. */
static double bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float g;
    memcpy(&g, &u, 4);
    return g;
}

static void check_product(int ta, int tb, int M, int N, int K, int pad, float beta, llama_rng *r) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + 2 * pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * ar * lda), *B = malloc(sizeof(float) * br * ldb);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc), *C2 = malloc(sizeof(float) * M * ldc);
    for (int i = 0; i < ar * lda; i++) A[i] = frand(r);
    for (int i = 0; i < br * ldb; i++) B[i] = frand(r);
    for (int i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand(r);
    memcpy(C, C0, sizeof(float) * M * ldc);
    memcpy(C2, C0, sizeof(float) * M * ldc);
    CHECK(llama_gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) == 0);
    CHECK(llama_gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C2, ldc) == 0);
    int bad = 0, bad32 = 0, written = 0;
    double worst = 0;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double ref = 0, ref32 = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[k * lda + m] : A[m * lda + k], b = tb ? B[n * ldb + k] : B[k * ldb + n];
                ref += bf16_round(a) * bf16_round(b);
                ref32 += (double)a * b;
                mag += fabs((double)a * b);
            }
            if (beta != 0.0f) {
                ref += (double)beta * C0[m * ldc + n];
                ref32 += (double)beta * C0[m * ldc + n];
                mag += fabs((double)beta * C0[m * ldc + n]);
            }
            double e = fabs(C[m * ldc + n] - ref);
            if (!(e <= 1e-5 * mag)) bad++;
            if (e / mag > worst) worst = e / mag;
            if (!(fabs(C[m * ldc + n] - ref32) <= ldexp(1.0, -8) * mag)) bad32++;
        }
        for (int n = N; n < ldc; n++) written += memcmp(&C[m * ldc + n], &C0[m * ldc + n], sizeof(float)) != 0;
    }
    CHECK_MSG(bad == 0, "trans %d%d M=%d N=%d K=%d pad=%d beta=%g: %d entries off the bf16-input reference "
              "(worst %.3g of sum|ab|)", ta, tb, M, N, K, pad, beta, bad, worst);
    CHECK_MSG(bad32 == 0, "trans %d%d M=%d N=%d K=%d: %d entries beyond the bf16 bound from fp32", ta, tb, M, N, K, bad32);
    CHECK_MSG(written == 0, "trans %d%d: %d entries past N written", ta, tb, written);
    CHECK_MSG(memcmp(C, C2, sizeof(float) * M * ldc) == 0, "trans %d%d M=%d N=%d K=%d: two calls differ", ta, tb, M, N, K);
    /* operands given already in bf16 (llama_to_bf16 of the whole strided matrices): the same bits */
    uint16_t *Ab = malloc(sizeof(uint16_t) * ar * lda), *Bb = malloc(sizeof(uint16_t) * br * ldb);
    llama_to_bf16(Ab, A, (size_t)ar * lda);
    llama_to_bf16(Bb, B, (size_t)br * ldb);
    for (int mode = 1; mode < 4; mode++) {
        memcpy(C2, C0, sizeof(float) * M * ldc);
        CHECK(llama_gemm_bf16_ex(ta, tb, M, N, K, A, lda, mode & 1 ? Ab : NULL, B, ldb, mode & 2 ? Bb : NULL, beta, C2,
                                 ldc) == 0);
        CHECK_MSG(memcmp(C, C2, sizeof(float) * M * ldc) == 0, "trans %d%d M=%d N=%d K=%d pad=%d: pre-converted "
                  "operands (mode %d) give other results", ta, tb, M, N, K, pad, mode);
    }
    free(Ab); free(Bb);
    free(A); free(B); free(C); free(C0); free(C2);
}

/* A model big enough that its products take the bf16 path (>= LLAMA_SGEMM_PAR_MIN multiply-adds). */
static llama_config mid_config(void) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
    c.vocab_size = 512;
    c.hidden_size = 128;
    c.intermediate_size = 256;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 32;
    c.max_position_embeddings = 128;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tie_word_embeddings = 1;
    c.bos_token_id = 1;
    c.pad_token_id = -1;
    c.eos_token_ids[0] = 2;
    c.num_eos = 1;
    return c;
}

/* Forward + backward of the mean log-probability: logp (B*T) and the gradients (copied into grads). */
static void run_model(llama_model *m, const int *tok, int B, int T, float *logp, float *grads) {
    float *dlogp = malloc(sizeof(float) * B * T);
    for (int i = 0; i < B * T; i++) dlogp[i] = (i % T) ? 1.0f / (B * (T - 1)) : 0.0f;
    llama_zero_grad(m);
    CHECK(llama_forward_logprobs(m, tok, B, T, logp, NULL) == 0);
    llama_backward_logprobs(m, dlogp);
    memcpy(grads, m->grads, sizeof(float) * m->num_params);
    free(dlogp);
}

int main(void) {
    char why[160] = "";
    llama_config c = mid_config();
    llama_model m;
    CHECK(llama_init_random(&m, &c, 3, 0.05f) == 0);
    if (!llama_bf16_supported(why, sizeof why)) {
        CHECK(why[0] != '\0');
        CHECK(llama_set_bf16(&m, 1, why, sizeof why) == -1);
        CHECK(m.bf16 == 0);
        llama_free(&m);
        int f = TEST_DONE();
        if (f) return f;
        SKIP("no bf16 products here: %s", why);
    }
    printf("bf16 products: %s\n", llama_bf16_isa_name());

    llama_rng r;
    llama_rng_seed(&r, 7, 0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_product(ta, tb, 67, 45, 33, 0, 0.0f, &r);
            check_product(ta, tb, 64, 96, 130, 3, 1.0f, &r);
            check_product(ta, tb, 1, 17, 5, 1, 0.0f, &r);
        }

    /* The model: bf16 against fp32. */
    const int B = 4, T = 64;
    int *tok = malloc(sizeof(int) * B * T);
    for (int i = 0; i < B * T; i++) tok[i] = (int)(llama_rng_next(&r) % (uint64_t)c.vocab_size);
    float *lp32 = malloc(sizeof(float) * B * T), *lp16 = malloc(sizeof(float) * B * T), *lp16b = malloc(sizeof(float) * B * T);
    float *lp32b = malloc(sizeof(float) * B * T);
    float *g32 = malloc(sizeof(float) * m.num_params), *g16 = malloc(sizeof(float) * m.num_params);
    float *g16b = malloc(sizeof(float) * m.num_params), *g32b = malloc(sizeof(float) * m.num_params);
    run_model(&m, tok, B, T, lp32, g32);
    CHECK(llama_set_bf16(&m, 1, why, sizeof why) == 0);
    run_model(&m, tok, B, T, lp16, g16);
    run_model(&m, tok, B, T, lp16b, g16b);
    CHECK(llama_set_bf16(&m, 0, why, sizeof why) == 0);
    run_model(&m, tok, B, T, lp32b, g32b);

    double maxd = 0, dot = 0, n32 = 0, n16 = 0;
    int same = 0;
    for (int i = 0; i < B * T; i++) {
        double d = fabs((double)lp16[i] - lp32[i]);
        if (d > maxd) maxd = d;
        same += lp16[i] == lp32[i];
    }
    for (size_t i = 0; i < m.num_params; i++) {
        dot += (double)g16[i] * g32[i];
        n32 += (double)g32[i] * g32[i];
        n16 += (double)g16[i] * g16[i];
    }
    double cosine = dot / sqrt(n32 * n16), rel = fabs(sqrt(n16) - sqrt(n32)) / sqrt(n32);
    printf("model bf16 vs fp32: max |dlogp| %.4g nats, gradient cosine %.6f, norm difference %.3g\n", maxd, cosine, rel);
    CHECK_MSG(maxd < 0.05, "log-probabilities differ by %.4g nats", maxd);
    CHECK_MSG(same < B * T - B, "bf16 log-probabilities equal fp32's in %d of %d places: bf16 did not apply", same, B * T);
    CHECK_MSG(cosine > 0.99, "gradient cosine similarity %.6f", cosine);
    CHECK_MSG(rel < 0.05, "gradient norms differ by %.3g", rel);
    CHECK_MSG(memcmp(lp16, lp16b, sizeof(float) * B * T) == 0, "bf16 log-probabilities not repeatable");
    CHECK_MSG(memcmp(g16, g16b, sizeof(float) * m.num_params) == 0, "bf16 gradients not repeatable");
    CHECK_MSG(memcmp(lp32, lp32b, sizeof(float) * B * T) == 0, "fp32 after bf16 off differs from fp32 before");
    CHECK_MSG(memcmp(g32, g32b, sizeof(float) * m.num_params) == 0, "fp32 gradients after bf16 off differ");

    /* Generation with bf16 on uses the bf16 products too (as the CUDA model's BF16 generation): each
     * generated token's log p (out_logp, temperature 1) is within 0.05 nats of the bf16 training forward on
     * the same sequence, and differs from the fp32 forward's (bf16 applied); with bf16 off it is the fp32
     * forward's within 1e-4. */
    {
        const int G = 6, P = 12, NEW = 40, TT = P + NEW;
        int prompt[12], *out = malloc(sizeof(int) * G * NEW), len[6], *seq = malloc(sizeof(int) * G * TT);
        float *glp = malloc(sizeof(float) * G * NEW), *f16 = malloc(sizeof(float) * G * TT);
        float *f32 = malloc(sizeof(float) * G * TT);
        for (int i = 0; i < P; i++) prompt[i] = 3 + (int)(llama_rng_next(&r) % (uint64_t)(c.vocab_size - 3));
        llama_sampling smp = {.temperature = 1.0f, .top_p = 1.0f};
        char err[256];
        for (int on = 1; on >= 0; on--) {
            CHECK(llama_set_bf16(&m, on, why, sizeof why) == 0);
            CHECK_MSG(llama_generate_ex(&m, prompt, P, G, NEW, &smp, 99, out, len, glp, err, sizeof err) == 0, "%s", err);
            for (int g = 0; g < G; g++)
                for (int t = 0; t < TT; t++)   /* the generated row, padded after its end with its last token */
                    seq[g * TT + t] = t < P ? prompt[t] : out[g * NEW + (t - P < len[g] ? t - P : len[g] - 1)];
            CHECK(llama_forward_logprobs(&m, seq, G, TT, on ? f16 : f32, NULL) == 0);
            CHECK(llama_set_bf16(&m, !on, why, sizeof why) == 0);
            CHECK(llama_forward_logprobs(&m, seq, G, TT, on ? f32 : f16, NULL) == 0);
            double d_own = 0, d_other = 0;
            int n = 0;
            for (int g = 0; g < G; g++)
                for (int t = 0; t < len[g]; t++, n++) {
                    double own = fabs((double)glp[g * NEW + t] - (on ? f16 : f32)[g * TT + P + t]);
                    double other = fabs((double)glp[g * NEW + t] - (on ? f32 : f16)[g * TT + P + t]);
                    if (own > d_own) d_own = own;
                    if (other > d_other) d_other = other;
                }
            printf("generation %s: %d tokens, max |logp - forward's| %.3g (same precision), %.3g (other)\n",
                   on ? "bf16" : "fp32", n, d_own, d_other);
            CHECK(n > G);
            CHECK_MSG(d_own < (on ? 0.05 : 1e-4), "%s generation's log-probs off its forward's by %.3g",
                      on ? "bf16" : "fp32", d_own);
            CHECK_MSG(d_other > 1e-4, "%s generation's log-probs equal the other precision's: bf16 %s",
                      on ? "bf16" : "fp32", on ? "not applied to generation" : "left on");
        }
        CHECK(llama_set_bf16(&m, 0, why, sizeof why) == 0);
        free(out); free(seq); free(glp); free(f16); free(f32);
    }

    free(tok); free(lp32); free(lp16); free(lp16b); free(lp32b); free(g32); free(g16); free(g16b); free(g32b);
    llama_free(&m);
    return TEST_DONE();
}
