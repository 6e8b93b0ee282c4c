/*
 * tests/model/test_llama_grad.c: llama_backward_logprobs against central finite differences of
 * llama_forward_logprobs, for EVERY entry of EVERY tensor of tiny models (V=11, C=16, L=2, NH=4,
 * NKV=2, HS=4, F=24, B=2, T=7): Llama untied / tied (the embedding gets gradient through both the
 * input and the head) / with attention_bias (q,k,v,o biases), Qwen2 (q,k,v biases, tied), Qwen3
 * (q_norm/k_norm, HS=6 so NH*HS=24 != C) and Qwen3 with q,k,v,o biases and llama3 rope scaling
 * (theta 100 puts the three inv_freq of HS=6 in the high, medium and low bands), Mistral
 * with a sliding window of 3; then, on 40 entries per tensor, T=150 sequences (several attention
 * tiles) for Llama and for a tied Mistral with a sliding window of 70 (crossing tiles). Loss = sum_{b, t>=1} w[b,t] * logp[b,t] with random w (some zero, i.e.
 * masked), summed in double.
 *
 * Every entry is checked for Llama, tied Llama, Qwen2 and Qwen3; 60 entries per tensor for the others.
 * Finite differences use Richardson extrapolation (4 D(h/2) - D(h)) / 3, which cancels the h^2
 * truncation term, so the remaining error is fp32 forward noise (~1e-4 absolute). Each entry must
 * satisfy |analytic - numeric| <= 2e-3 + 2e-2 * |numeric|, and each tensor
 * ||analytic - numeric||_2 / ||numeric||_2 < 5e-3 (printed per tensor).
 *
 * Also: gradients accumulate (+=), repeated runs are bitwise identical, the entropy output
 * equals -sum p log p of the distribution read back through logp for all V candidate tokens, and
 * pad_token_id drops exactly the padding row of the input-embedding gradient.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testing.h"
#include "tests/model/llama_test_util.h"

static int B = 2, T = 7;
static float fd_step = 2e-2f; /* h of the central differences */

static double weighted_loss(llama_model *m, const int *tok, const float *w) {
    float *logp = malloc(sizeof(float) * B * T);
    if (llama_forward_logprobs(m, tok, B, T, logp, NULL) != 0) {
        fprintf(stderr, "forward failed: %s\n", m->err);
        exit(1);
    }
    double L = 0.0;
    for (int i = 0; i < B * T; i++) L += (double)w[i] * logp[i];
    free(logp);
    return L;
}

static double central(llama_model *m, const int *tok, const float *w, float *p, float h) {
    float orig = *p;
    *p = orig + h;
    double lp = weighted_loss(m, tok, w);
    *p = orig - h;
    double lm = weighted_loss(m, tok, w);
    *p = orig;
    /* the perturbation actually applied, after fp32 rounding */
    double hp = (double)(orig + h) - orig, hm = orig - (double)(orig - h);
    return (lp - lm) / (hp + hm);
}

/* Checks every entry of every tensor, or `sample` evenly spread entries per tensor when > 0. */
static void check_model(const char *label, const llama_config *cfg, uint64_t seed, int sample) {
    llama_model m;
    CHECK(llama_init_random(&m, cfg, seed, 0.02f) == 0);
    randomize_params(&m, seed, 0.4f);
    int *tok = malloc(sizeof(int) * B * T);
    float *w = malloc(sizeof(float) * B * T), *logp = malloc(sizeof(float) * B * T);
    random_tokens(tok, B * T, cfg->vocab_size, seed);
    llama_rng r;
    llama_rng_seed(&r, seed, 99);
    for (int i = 0; i < B * T; i++) {
        w[i] = (float)llama_rng_normal(&r);
        if (i % T == 0 || i % 5 == 3) w[i] = 0.0f; /* t = 0 and a few masked positions */
        if (T > 64 && i % T < 128) w[i] = 0.0f;  /* long rows: only the third attention tile's positions */
    }

    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    llama_zero_grad(&m);
    llama_backward_logprobs(&m, w);
    float *g = malloc(m.num_params * sizeof(float));
    memcpy(g, m.grads, m.num_params * sizeof(float));

    /* += semantics: a second backward doubles the gradient. Measured per tensor, relative to the
     * tensor's norm: the BLAS kernels accumulate into the existing gradient (beta = 1) in an order that
     * depends on the CPU and the library version, so a small element can differ by far more than 1e-4
     * of itself (OpenBLAS 0.3.21 on an AVX-512 Xeon: 2e-4) while the tensor is right to fp32 rounding. */
    llama_backward_logprobs(&m, w);
    double worst_acc = 0.0;
    const char *worst_name = "";
    for (int t = 0; t < m.num_tensors; t++) {
        const llama_tensor *lt = &m.tensors[t];
        const size_t off = (size_t)(lt->grad - m.grads);
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < lt->numel; i++) {
            double want = 2.0 * g[off + i], e = m.grads[off + i] - want;
            num += e * e;
            den += want * want;
        }
        double rel = den > 0 ? sqrt(num / den) : sqrt(num);
        if (rel > worst_acc) { worst_acc = rel; worst_name = lt->name; }
    }
    CHECK_MSG(worst_acc < 1e-5, "%s: second backward is not 2x the first (%s: |error| / |gradient| = %g)", label,
              worst_name, worst_acc);

    /* repeatability: the same forward/backward again gives bitwise identical gradients */
    llama_zero_grad(&m);
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    llama_backward_logprobs(&m, w);
    CHECK_MSG(memcmp(g, m.grads, m.num_params * sizeof(float)) == 0, "%s: gradients not repeatable", label);

    int bad = 0;
    double worst_all = 0.0;
    for (int ti = 0; ti < m.num_tensors; ti++) {
        llama_tensor *t = &m.tensors[ti];
        size_t off = (size_t)(t->data - m.params);
        double maxg = 0.0, maxdiff = 0.0, dd = 0.0, nn = 0.0;
        size_t step = sample > 0 && t->numel > (size_t)sample ? t->numel / sample : 1;
        for (size_t j = (size_t)seed % step; j < t->numel; j += step) {
            const float h = fd_step;
            double d1 = central(&m, tok, w, &t->data[j], h);
            double d2 = central(&m, tok, w, &t->data[j], h / 2);
            double num = (4.0 * d2 - d1) / 3.0;
            double ana = g[off + j];
            double diff = fabs(ana - num);
            if (fabs(num) > maxg) maxg = fabs(num);
            if (diff > maxdiff) maxdiff = diff;
            dd += diff * diff;
            nn += num * num;
            if (!(diff <= 2e-3 + 2e-2 * fabs(num))) {
                if (bad < 10)
                    fprintf(stderr, "%s: %s[%zu]: analytic %.6g numeric %.6g\n", label, t->name, j, ana, num);
                bad++;
            }
        }
        double rel = sqrt(dd / nn);
        if (rel > worst_all) worst_all = rel;
        printf("  %-17s %-48s max|g| %6.3g  max|err| %.1e  |err|/|g| %.1e\n", label, t->name, maxg, maxdiff, rel);
        CHECK_MSG(maxg > 1e-3, "%s: %s has no gradient signal", label, t->name);
        CHECK_MSG(rel < 5e-3, "%s: %s: |analytic - numeric| / |numeric| = %g", label, t->name, rel);
    }
    printf("%s: %zu parameters, worst tensor |err|/|g| %.2e, %d entries outside tolerance\n", label, m.num_params,
           worst_all, bad);
    CHECK_EQ_INT(bad, 0);
    free(g);
    free(tok);
    free(w);
    free(logp);
    llama_free(&m);
}

/* pad_token_id: the padding token's input-embedding row gets no gradient (nn.Embedding(padding_idx));
 * every other gradient is unchanged. */
static void check_padding_idx(void) {
    B = 2;
    T = 7;
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 12, 0.02f) == 0);
    randomize_params(&m, 12, 0.4f);
    int tok[14];
    float w[14], logp[14];
    random_tokens(tok, 14, cfg.vocab_size, 12);
    tok[2] = tok[9] = 3; /* the pad id appears in both rows */
    for (int i = 0; i < 14; i++) w[i] = i % T ? 1.0f : 0.0f;
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    llama_zero_grad(&m);
    llama_backward_logprobs(&m, w);
    float *g = malloc(m.num_params * sizeof(float));
    memcpy(g, m.grads, m.num_params * sizeof(float));
    m.cfg.pad_token_id = 3;
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    llama_zero_grad(&m);
    llama_backward_logprobs(&m, w);
    size_t row = (size_t)(m.g.wte - m.grads) + 3 * (size_t)cfg.hidden_size;
    int zero = 1, others = 1, had = 0;
    for (size_t i = 0; i < m.num_params; i++) {
        if (i >= row && i < row + (size_t)cfg.hidden_size) {
            zero &= m.grads[i] == 0.0f;
            had |= g[i] != 0.0f;
        } else {
            others &= m.grads[i] == g[i];
        }
    }
    CHECK_MSG(had && zero, "the padding row's gradient is not dropped");
    CHECK_MSG(others, "pad_token_id changed other gradients");
    free(g);
    llama_free(&m);
    /* llama_init_random zeroes the padding row, as HF's init */
    cfg.pad_token_id = 5;
    CHECK(llama_init_random(&m, &cfg, 1, 0.02f) == 0);
    int z = 1;
    for (int i = 0; i < cfg.hidden_size; i++) z &= m.w.wte[5 * cfg.hidden_size + i] == 0.0f;
    CHECK(z && m.w.wte[4 * cfg.hidden_size] != 0.0f);
    llama_free(&m);
}

/* The entropy output against -sum p log p with p read back through logp of every candidate token. */
static void check_entropy(void) {
    B = 1;
    T = 7;
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 5, 0.02f) == 0);
    randomize_params(&m, 5, 0.4f);
    int V = cfg.vocab_size;
    int base[T];
    random_tokens(base, T, V, 5);
    float logp[T], ent[T];
    CHECK(llama_forward_logprobs(&m, base, 1, T, logp, ent) == 0);
    CHECK(ent[0] == 0.0f && logp[0] == 0.0f);
    int *tok = malloc(sizeof(int) * V * T);
    float *lp = malloc(sizeof(float) * V * T);
    for (int t = 1; t < T; t++) {
        for (int v = 0; v < V; v++) {
            memcpy(tok + v * T, base, sizeof base);
            tok[v * T + t] = v;
        }
        CHECK(llama_forward_logprobs(&m, tok, V, T, lp, NULL) == 0);
        double psum = 0.0, H = 0.0;
        for (int v = 0; v < V; v++) {
            double p = exp(lp[v * T + t]);
            psum += p;
            H -= p * lp[v * T + t];
        }
        CHECK_NEAR(psum, 1.0, 1e-5);
        CHECK_NEAR(ent[t], H, 1e-5);
        CHECK_NEAR(lp[base[t] * T + t], logp[t], 1e-6);
        CHECK(H > 0.0 && H < log((double)V) + 1e-6);
    }
    free(tok);
    free(lp);
    llama_free(&m);
}

/* llama_forward_logprobs_t: the log-probabilities and entropies of softmax(logits / temperature) (TRL's
 * training log-probs), and llama_backward_logprobs_entropy: the gradient of
 * L = sum w·logp + sum u·entropy at that temperature against central differences (every 7th entry of
 * every tensor). */
static double temp_loss(llama_model *m, const int *tok, float tau, const float *w, const float *u) {
    float logp[2 * 7], ent[2 * 7];
    if (llama_forward_logprobs_t(m, tok, 2, 7, tau, logp, ent) != 0) { fprintf(stderr, "%s\n", m->err); exit(1); }
    double L = 0;
    for (int i = 0; i < 14; i++) L += (double)w[i] * logp[i] + (double)u[i] * ent[i];
    return L;
}

static void check_temperature(void) {
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 9, 0.02f) == 0);
    randomize_params(&m, 9, 0.4f);
    const int V = cfg.vocab_size, Bt = 2, Tt = 7, N = Bt * Tt;
    int tok[2 * 7];
    random_tokens(tok, (size_t)N, V, 9);
    const float tau = 0.7f;
    float *logits = malloc(sizeof(float) * (size_t)N * V), logp[2 * 7], ent[2 * 7];
    CHECK(llama_forward_logits(&m, tok, Bt, Tt, logits) == 0);
    CHECK(llama_forward_logprobs_t(&m, tok, Bt, Tt, tau, logp, ent) == 0);
    for (int b = 0; b < Bt; b++)
        for (int t = 0; t + 1 < Tt; t++) {
            const float *z = logits + ((size_t)b * Tt + t) * V;
            double mx = z[0], s = 0, pz = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, z[v]);
            for (int v = 0; v < V; v++) s += exp((z[v] - mx) / tau);
            const double lse = mx / tau + log(s);
            for (int v = 0; v < V; v++) pz += exp(z[v] / tau - lse) * z[v] / tau;
            CHECK_NEAR(logp[b * Tt + t + 1], z[tok[b * Tt + t + 1]] / tau - lse, 1e-5);
            CHECK_NEAR(ent[b * Tt + t + 1], lse - pz, 1e-5);
        }
    float bad[2 * 7];
    CHECK(llama_forward_logprobs_t(&m, tok, Bt, Tt, 0.0f, bad, NULL) == -1);
    CHECK(strstr(m.err, "temperature") != NULL);
    /* gradient of sum w·logp + sum u·entropy */
    float w[2 * 7], u[2 * 7];
    llama_rng r;
    llama_rng_seed(&r, 31, 1);
    for (int i = 0; i < N; i++) {
        w[i] = (i % 5 == 0) ? 0.0f : (float)llama_rng_normal(&r);
        u[i] = (i % 3 == 0) ? 0.0f : (float)llama_rng_normal(&r);
    }
    llama_zero_grad(&m);
    CHECK(llama_forward_logprobs_t(&m, tok, Bt, Tt, tau, logp, ent) == 0);
    llama_backward_logprobs_entropy(&m, w, u);
    int checked = 0;
    double num2 = 0, diff2 = 0;
    for (size_t i = 0; i < m.num_params; i += 7) {
        float *p = &m.params[i], save = *p;
        const float h = fd_step;
        double d[2];
        for (int k = 0; k < 2; k++) {
            float hh = k ? h / 2 : h;
            *p = save + hh;
            double up = temp_loss(&m, tok, tau, w, u);
            *p = save - hh;
            double dn = temp_loss(&m, tok, tau, w, u);
            *p = save;
            d[k] = (up - dn) / (2.0 * hh);
        }
        const double numeric = (4 * d[1] - d[0]) / 3, analytic = m.grads[i];
        CHECK_MSG(fabs(analytic - numeric) <= 2e-3 + 2e-2 * fabs(numeric), "param %zu: %.6g vs finite difference %.6g", i,
                  analytic, numeric);
        num2 += numeric * numeric;
        diff2 += (analytic - numeric) * (analytic - numeric);
        checked++;
    }
    printf("temperature %.1f with entropy gradient: %d entries, relative L2 error %.2e\n", (double)tau, checked,
           sqrt(diff2 / num2));
    CHECK(sqrt(diff2 / num2) < 5e-3);
    free(logits);
    llama_free(&m);
}

int main(void) {
    /* Thousands of tiny passes: one thread, so a loaded machine cannot stretch every parallel
     * region to a scheduler time slice. The threaded paths are compared in test_llama_threads. */
    omp_set_num_threads(1);
    check_temperature();
    llama_config c;
    c = tiny_config("LlamaForCausalLM", 0, 0);
    check_model("llama", &c, 1, 0);
    c = tiny_config("LlamaForCausalLM", 1, 0);
    check_model("llama-tied", &c, 2, 0);
    c = tiny_config("Qwen2ForCausalLM", 1, 1);
    check_model("qwen2", &c, 4, 0);
    c = tiny_config("Qwen3ForCausalLM", 0, 0);
    c.head_dim = 6;
    check_model("qwen3", &c, 8, 0);
    /* 60 entries per tensor from here on (the full sweeps above cover every kernel) */
    c = tiny_config("LlamaForCausalLM", 0, 1);
    check_model("llama-bias", &c, 3, 60);
    c = tiny_config("MistralForCausalLM", 0, 0);
    c.sliding_window = 3;
    check_model("mistral-sw3", &c, 5, 60);
    c = tiny_config("Qwen3ForCausalLM", 1, 1);
    c.head_dim = 6;
    c.rope_theta = 100.0f;
    c.rope_type = LLAMA_ROPE_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_original_max_position_embeddings = 64;
    check_model("qwen3-bias-llama3rope", &c, 9, 60);
    /* sequences longer than an attention tile (64 query rows), 40 entries per tensor; the loss
     * weights only positions >= 128 (fewer terms, less fp32 noise), whose gradients flow back
     * through attention across the tiles */
    B = 2;
    T = 150;
    c = tiny_config("LlamaForCausalLM", 0, 0);
    c.max_position_embeddings = 256;
    check_model("llama-T150", &c, 6, 40);
    c = tiny_config("MistralForCausalLM", 1, 0);
    c.max_position_embeddings = 256;
    c.sliding_window = 70;
    check_model("mistral-T150-sw70", &c, 7, 40);
    check_entropy();
    check_padding_idx();
    return TEST_DONE();
}
