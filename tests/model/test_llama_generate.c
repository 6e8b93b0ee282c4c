/*
 * tests/model/test_llama_generate.c: KV-cache generation (llama_generate / llama_generate_ex)
 * against the teacher-forced forward pass, and the sampling rules.
 *
 *   - greedy: every generated token is the argmax of llama_forward_logprobs' distribution on
 *     prompt + generated prefix (read back for all V candidates), and the logp reported by the
 *     generator equals the forward's within 1e-4; for Llama, tied Qwen2 (biases), Mistral with a
 *     sliding window shorter than the sequence and Qwen3 (q/k norms) with llama3 rope scaling; and over 150 tokens (several of the forward's
 *     attention tiles), with and without a window of 70, and after 150-token prompts.
 *   - sampled rows (G=6, rows finishing at different steps): generator logp == forward logp.
 *   - repeatability: same seed, same tokens; row 0 of G=1 equals row 0 of G=4; another seed differs;
 *     top_k=1 equals greedy; eos ends a row (eos included, then -1).
 *   - the sampling distribution: first-token frequencies over 6000 rows match softmax(logits/temp)
 *     after top-k / top-p filtering (within 4.5 standard errors), and filtered tokens never appear.
 *   - processed log-probabilities (llama_sampling.processed_logprobs, vLLM's processed_logprobs): log p(token)
 *     under the distribution drawn from (repetition penalty, temperature, top-k, top-p renormalized), recomputed
 *     from llama_forward_logits within 1e-4; without truncation they equal llama_forward_logprobs_t at the
 *     sampling temperature; greedy gives 0.
 *   - argument errors return -1 with a message.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testing.h"
#include "tests/model/llama_test_util.h"

/* probs (V) of the token following seq[0..n) according to llama_forward_logprobs. */
static void next_token_probs(llama_model *m, const int *seq, int n, double *probs) {
    int V = m->cfg.vocab_size, T = n + 1;
    int *tok = calloc((size_t)V * T, sizeof(int));
    float *lp = calloc((size_t)V * T, sizeof(float));
    for (int v = 0; v < V; v++) {
        memcpy(tok + v * T, seq, sizeof(int) * n);
        tok[v * T + n] = v;
    }
    CHECK(llama_forward_logprobs(m, tok, V, T, lp, NULL) == 0);
    for (int v = 0; v < V; v++) probs[v] = exp(lp[v * T + n]);
    free(tok);
    free(lp);
}

/* Forward logp of each generated token of one row: logp_out (len). */
static void forward_logp(llama_model *m, const int *prompt, int P, const int *gen, int len, float *logp_out) {
    int T = P + len;
    int *seq = malloc(sizeof(int) * T);
    float *lp = malloc(sizeof(float) * T);
    memcpy(seq, prompt, sizeof(int) * P);
    memcpy(seq + P, gen, sizeof(int) * len);
    CHECK(llama_forward_logprobs(m, seq, 1, T, lp, NULL) == 0);
    for (int i = 0; i < len; i++) logp_out[i] = lp[P + i];
    free(seq);
    free(lp);
}

static void check_greedy_matches_forward(const char *label, llama_config cfg, uint64_t seed, int P, int NEW) {
    cfg.num_eos = 0; /* run to max_new */
    cfg.max_position_embeddings = 256;
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, seed, 0.02f) == 0);
    randomize_params(&m, seed, 0.5f);
    int *prompt = malloc(sizeof(int) * P), *out = malloc(sizeof(int) * NEW), len = 0;
    float *glogp = malloc(sizeof(float) * NEW), *flogp = malloc(sizeof(float) * NEW);
    char err[256];
    random_tokens(prompt, P, cfg.vocab_size, seed);
    llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    CHECK(llama_generate_ex(&m, prompt, P, 1, NEW, &greedy, 0, out, &len, glogp, err, sizeof err) == 0);
    CHECK_EQ_INT(len, NEW);
    forward_logp(&m, prompt, P, out, len, flogp);
    int *seq = malloc(sizeof(int) * (P + NEW));
    memcpy(seq, prompt, sizeof(int) * P);
    memcpy(seq + P, out, sizeof(int) * NEW);
    double worst = 0.0;
    int argmax_ok = 1;
    double probs[64];
    for (int i = 0; i < len; i++) {
        worst = fmax(worst, fabs(glogp[i] - flogp[i]));
        if (NEW > 20 && i % 7 != 6) continue; /* long runs: argmax on every 7th token (V forwards each) */
        next_token_probs(&m, seq, P + i, probs);
        for (int v = 0; v < cfg.vocab_size; v++)
            if (probs[v] > probs[out[i]] * (1.0 + 1e-6)) argmax_ok = 0;
    }
    printf("%s: greedy vs forward over %d tokens: max |logp diff| %.2e, first tokens:", label, len, worst);
    for (int i = 0; i < len && i < 14; i++) printf(" %d", out[i]);
    printf("\n");
    CHECK_MSG(worst < 1e-4, "%s: generator logp differs from forward by %g", label, worst);
    CHECK_MSG(argmax_ok, "%s: a greedy token is not the forward pass's argmax", label);
    free(prompt);
    free(out);
    free(glogp);
    free(flogp);
    free(seq);
    llama_free(&m);
}

static void check_sampled_rows(void) {
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 7, 0.02f) == 0);
    randomize_params(&m, 7, 0.5f);
    enum { P = 4, G = 6, NEW = 20 };
    int prompt[P] = {1, 3, 5, 7}, out[G * NEW], len[G];
    float glogp[G * NEW], flogp[NEW];
    char err[256];
    llama_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    CHECK(llama_generate_ex(&m, prompt, P, G, NEW, &s, 42, out, len, glogp, err, sizeof err) == 0);
    double worst = 0.0;
    int min_len = NEW, max_len = 0, eos_rows = 0;
    for (int g = 0; g < G; g++) {
        forward_logp(&m, prompt, P, out + g * NEW, len[g], flogp);
        for (int i = 0; i < len[g]; i++) worst = fmax(worst, fabs(glogp[g * NEW + i] - flogp[i]));
        min_len = len[g] < min_len ? len[g] : min_len;
        max_len = len[g] > max_len ? len[g] : max_len;
        /* eos ends the row: only the last token may be eos, the rest of the row is -1 */
        for (int i = 0; i < len[g] - 1; i++) CHECK(out[g * NEW + i] != 10);
        if (len[g] < NEW) {
            CHECK_EQ_INT(out[g * NEW + len[g] - 1], 10);
            eos_rows++;
        }
        for (int i = len[g]; i < NEW; i++) CHECK_EQ_INT(out[g * NEW + i], -1);
    }
    printf("sampled rows: lengths %d..%d, %d rows ended by eos, max |logp diff| %.2e\n", min_len, max_len, eos_rows, worst);
    CHECK_MSG(min_len < max_len, "rows should finish at different steps with this seed");
    CHECK(eos_rows > 0);
    CHECK(worst < 1e-4);

    /* repeatability and independence from G */
    int out2[G * NEW], len2[G], out1[NEW], len1;
    CHECK(llama_generate(&m, prompt, P, G, NEW, &s, 42, out2, len2, err, sizeof err) == 0);
    CHECK(memcmp(out, out2, sizeof out) == 0 && memcmp(len, len2, sizeof len) == 0);
    CHECK(llama_generate(&m, prompt, P, 1, NEW, &s, 42, out1, &len1, err, sizeof err) == 0);
    CHECK_EQ_INT(len1, len[0]);
    CHECK(memcmp(out1, out, sizeof out1) == 0);
    int out4[4 * NEW], len4[4];
    CHECK(llama_generate(&m, prompt, P, 4, NEW, &s, 42, out4, len4, err, sizeof err) == 0);
    CHECK(memcmp(out4, out, sizeof out4) == 0);
    CHECK(llama_generate(&m, prompt, P, G, NEW, &s, 43, out2, len2, err, sizeof err) == 0);
    CHECK_MSG(memcmp(out, out2, sizeof out) != 0, "a different seed gave identical samples");

    /* top_k = 1 is greedy at any temperature */
    llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f}, k1 = {.temperature = 0.7f, .top_k = 1, .top_p = 1.0f};
    CHECK(llama_generate(&m, prompt, P, 3, NEW, &greedy, 5, out2, len2, err, sizeof err) == 0);
    CHECK(llama_generate(&m, prompt, P, 3, NEW, &k1, 6, out4, len4, err, sizeof err) == 0);
    CHECK(memcmp(out2, out4, sizeof(int) * 3 * NEW) == 0);
    CHECK(out2[0] == out2[NEW] && out2[0] == out2[2 * NEW]); /* greedy rows agree */

    /* errors */
    CHECK(llama_generate(&m, prompt, P, 1, 61, &s, 1, out2, len2, err, sizeof err) == -1);
    CHECK(strstr(err, "max_position_embeddings") != NULL);
    int bad_prompt[2] = {3, 11};
    CHECK(llama_generate(&m, bad_prompt, 2, 1, 4, &s, 1, out2, len2, err, sizeof err) == -1);
    CHECK(strstr(err, "prompt[1]") != NULL);
    llama_sampling bad_p = {.temperature = 1.0f, .top_k = 0, .top_p = 0.0f};
    CHECK(llama_generate(&m, prompt, P, 1, 4, &bad_p, 1, out2, len2, err, sizeof err) == -1);
    CHECK(llama_generate(&m, prompt, 0, 1, 4, &s, 1, out2, len2, err, sizeof err) == -1);
    llama_free(&m);
}

/* First-token frequencies over many rows against the filtered, tempered model distribution. */
/* z: (V) the next-token logits after prompt. */
static void check_distribution(llama_model *m, const int *prompt, int P, const double *z, llama_sampling s) {
    enum { G = 6000 };
    int V = m->cfg.vocab_size;
    int *out = malloc(sizeof(int) * G), *len = malloc(sizeof(int) * G);
    char err[256];
    CHECK(llama_generate(m, prompt, P, G, 1, &s, 2024, out, len, err, sizeof err) == 0);
    /* expected (transformers' order): repetition penalty on the prompt's tokens, softmax(z / temp),
     * top-k, normalize, top-p, normalize, min-p, normalize */
    double q[64], zp[64], total = 0.0, zmax = -INFINITY;
    for (int v = 0; v < V; v++) {
        int seen = 0;
        for (int i = 0; i < P; i++) seen |= prompt[i] == v;
        double rp = s.repetition_penalty > 0 ? s.repetition_penalty : 1.0;
        zp[v] = seen ? (z[v] > 0 ? z[v] / rp : z[v] * rp) : z[v];
        zmax = fmax(zmax, zp[v]);
    }
    for (int v = 0; v < V; v++) { q[v] = exp((zp[v] - zmax) / s.temperature); total += q[v]; }
    for (int v = 0; v < V; v++) q[v] /= total;
    if (s.top_k > 0) {
        for (int v = 0; v < V; v++) {
            int above = 0;
            for (int u = 0; u < V; u++) above += q[u] > q[v];
            if (above >= s.top_k) q[v] = 0.0;
        }
    }
    total = 0.0;
    for (int v = 0; v < V; v++) total += q[v];
    for (int v = 0; v < V; v++) q[v] /= total;
    if (s.top_p < 1.0f) {
        /* keep the most probable tokens until their mass reaches top_p */
        int kept[64] = {0};
        double cum = 0.0;
        while (cum < s.top_p) {
            int best = -1;
            for (int v = 0; v < V; v++) if (!kept[v] && (best < 0 || q[v] > q[best])) best = v;
            kept[best] = 1;
            cum += q[best];
        }
        for (int v = 0; v < V; v++) q[v] = kept[v] ? q[v] / cum : 0.0;
    }
    if (s.min_p > 0.0f) {
        double top = 0.0, kept = 0.0;
        for (int v = 0; v < V; v++) top = fmax(top, q[v]);
        for (int v = 0; v < V; v++) { if (q[v] < s.min_p * top) q[v] = 0.0; kept += q[v]; }
        for (int v = 0; v < V; v++) q[v] /= kept;
    }
    int count[64] = {0};
    for (int g = 0; g < G; g++) { CHECK_EQ_INT(len[g], 1); count[out[g]]++; }
    double worst = 0.0;
    for (int v = 0; v < V; v++) {
        double f = (double)count[v] / G, se = sqrt(q[v] * (1 - q[v]) / G) + 1e-4;
        worst = fmax(worst, fabs(f - q[v]) / se);
        if (q[v] == 0.0) CHECK_MSG(count[v] == 0, "token %d was filtered out but sampled %d times", v, count[v]);
    }
    printf("sampling temp %.2f top_k %d top_p %.2f min_p %.2f repetition_penalty %.2f: max |freq - p| / stderr = %.2f\n",
           (double)s.temperature, s.top_k, (double)s.top_p, (double)s.min_p, (double)s.repetition_penalty, worst);
    CHECK(worst < 4.5);
    free(out);
    free(len);
}

static void check_sampling(void) {
    llama_config cfg = tiny_config("LlamaForCausalLM", 1, 0);
    cfg.num_eos = 0;
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 11, 0.02f) == 0);
    randomize_params(&m, 11, 0.3f);
    int prompt[3] = {2, 4, 6};
    double z[64];
    float *logits = malloc(sizeof(float) * 3 * (size_t)cfg.vocab_size);
    CHECK(llama_forward_logits(&m, prompt, 1, 3, logits) == 0);
    for (int v = 0; v < cfg.vocab_size; v++) z[v] = logits[2 * (size_t)cfg.vocab_size + v];
    free(logits);
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 0.6f, .top_k = 0, .top_p = 1.0f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 1.0f, .top_k = 3, .top_p = 1.0f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 1.3f, .top_k = 0, .top_p = 0.5f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 0.8f, .top_k = 5, .top_p = 0.7f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.3f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 0.9f, .top_k = 0, .top_p = 0.8f, .min_p = 0.2f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .repetition_penalty = 3.0f});
    check_distribution(&m, prompt, 3, z, (llama_sampling){.temperature = 0.7f, .top_k = 4, .top_p = 0.9f, .min_p = 0.05f,
                                                          .repetition_penalty = 0.5f});
    llama_free(&m);
}

/* processed_logprobs: each generated token's log-probability under the distribution it was drawn from,
 * recomputed from the teacher-forced logits: penalty on the row's tokens so far, / temperature, top-k (ties kept),
 * top-p (smallest set by descending probability reaching top_p), renormalized. */
static void check_processed_logprobs(void) {
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 11, 0.02f) == 0);
    randomize_params(&m, 11, 0.5f);
    enum { P = 4, G = 5, NEW = 16 };
    const int V = cfg.vocab_size;
    int prompt[P] = {1, 3, 5, 7}, out[G * NEW], len[G];
    float glogp[G * NEW];
    char err[256];
    const llama_sampling cases[] = {
        {.temperature = 0.7f, .top_k = 0, .top_p = 1.0f, .processed_logprobs = 1},
        {.temperature = 0.7f, .top_k = 4, .top_p = 1.0f, .processed_logprobs = 1},
        {.temperature = 1.3f, .top_k = 0, .top_p = 0.8f, .repetition_penalty = 1.4f, .processed_logprobs = 1},
    };
    double worst = 0.0, worst_t = 0.0;
    for (int ci = 0; ci < 3; ci++) {
        const llama_sampling *s = &cases[ci];
        CHECK(llama_generate_ex(&m, prompt, P, G, NEW, s, 99 + ci, out, len, glogp, err, sizeof err) == 0);
        for (int g = 0; g < G; g++) {
            const int T = P + len[g];
            int *seq = malloc(sizeof(int) * T);
            float *logits = malloc(sizeof(float) * (size_t)T * V), *lpt = malloc(sizeof(float) * T);
            double *z = malloc(sizeof(double) * V);
            int *idx = malloc(sizeof(int) * V);
            memcpy(seq, prompt, sizeof prompt);
            memcpy(seq + P, out + g * NEW, sizeof(int) * len[g]);
            CHECK(llama_forward_logits(&m, seq, 1, T, logits) == 0);
            CHECK(llama_forward_logprobs_t(&m, seq, 1, T, s->temperature, lpt, NULL) == 0);
            for (int i = 0; i < len[g]; i++) {
                const float *zr = logits + (size_t)(P + i - 1) * V;
                const int tok = seq[P + i];
                double mx = -INFINITY;
                for (int v = 0; v < V; v++) {
                    double x = zr[v];
                    if (s->repetition_penalty > 0 && s->repetition_penalty != 1.0f) {
                        int seen = 0;
                        for (int j = 0; j < P + i; j++) seen |= seq[j] == v;
                        if (seen) x = x > 0 ? x / s->repetition_penalty : x * s->repetition_penalty;
                    }
                    z[v] = x / s->temperature;
                    mx = fmax(mx, z[v]);
                    idx[v] = v;
                }
                /* sort ids by z descending (ties by id), then keep top-k (ties with the k-th) and top-p */
                for (int a = 1; a < V; a++)
                    for (int b = a; b > 0 && (z[idx[b]] > z[idx[b - 1]] || (z[idx[b]] == z[idx[b - 1]] && idx[b] < idx[b - 1])); b--) {
                        int t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t;
                    }
                int keep = V;
                if (s->top_k > 0) {
                    keep = s->top_k;
                    while (keep < V && z[idx[keep]] == z[idx[s->top_k - 1]]) keep++;
                }
                double total = 0.0;
                for (int a = 0; a < keep; a++) total += exp(z[idx[a]] - mx);
                if (s->top_p < 1.0f) {
                    double cum = 0.0;
                    int k2 = 0;
                    while (k2 < keep) { cum += exp(z[idx[k2++]] - mx); if (cum >= s->top_p * total) break; }
                    keep = k2;
                    total = cum;
                }
                int kept = 0;
                for (int a = 0; a < keep; a++) kept |= idx[a] == tok;
                CHECK_MSG(kept, "processed case %d: token %d was drawn outside the kept set", ci, tok);
                const double want = z[tok] - mx - log(total);
                worst = fmax(worst, fabs(glogp[g * NEW + i] - want));
                if (ci == 0) worst_t = fmax(worst_t, fabs(glogp[g * NEW + i] - lpt[P + i]));
            }
            free(seq); free(logits); free(lpt); free(z); free(idx);
        }
    }
    printf("processed log-probs: max |diff| %.2e against the recomputed sampling distribution, %.2e against "
           "llama_forward_logprobs_t (no truncation)\n", worst, worst_t);
    CHECK(worst < 1e-4 && worst_t < 1e-4);
    /* greedy: a point mass */
    llama_sampling gr = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .processed_logprobs = 1};
    CHECK(llama_generate_ex(&m, prompt, P, 2, NEW, &gr, 1, out, len, glogp, err, sizeof err) == 0);
    for (int i = 0; i < len[0]; i++) CHECK(glogp[i] == 0.0f);
    llama_free(&m);
}

int main(void) {
    /* Hundreds of small passes: one thread (see test_llama_grad.c); test_llama_threads covers the
     * threaded paths. */
    omp_set_num_threads(1);
    check_processed_logprobs();
    check_greedy_matches_forward("llama", tiny_config("LlamaForCausalLM", 0, 0), 1, 5, 14);
    check_greedy_matches_forward("qwen2-tied", tiny_config("Qwen2ForCausalLM", 1, 1), 2, 5, 14);
    llama_config mc = tiny_config("MistralForCausalLM", 0, 0);
    mc.sliding_window = 4;
    check_greedy_matches_forward("mistral-sw4", mc, 3, 5, 14);
    /* longer than the 64-row attention tiles, in the decode steps and in the prefill */
    check_greedy_matches_forward("llama-long", tiny_config("LlamaForCausalLM", 1, 0), 4, 5, 150);
    mc.sliding_window = 70;
    check_greedy_matches_forward("mistral-long-sw70", mc, 5, 5, 150);
    check_greedy_matches_forward("qwen2-prompt150", tiny_config("Qwen2ForCausalLM", 1, 1), 6, 150, 20);
    check_greedy_matches_forward("mistral-prompt150-sw70", mc, 7, 150, 20);
    /* Qwen3 q_norm/k_norm (HS=6: NH*HS != C) with biases and llama3 rope scaling */
    llama_config qc = tiny_config("Qwen3ForCausalLM", 1, 1);
    qc.head_dim = 6;
    qc.rope_type = LLAMA_ROPE_LLAMA3;
    qc.rope_factor = 8.0f;
    qc.rope_low_freq_factor = 1.0f;
    qc.rope_high_freq_factor = 4.0f;
    qc.rope_original_max_position_embeddings = 16;
    check_greedy_matches_forward("qwen3-llama3rope", qc, 8, 5, 40);
    check_sampled_rows();
    check_sampling();
    return TEST_DONE();
}
