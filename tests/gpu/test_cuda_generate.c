/*
 * tests/gpu/test_cuda_generate.c: generation and sampling on the GPU (llama_cuda_generate,
 * llama_cuda_sample) against the CPU model.
 *
 *   - greedy in FP32 is identical to llama_generate_ex (tokens, lengths; logp within 1e-4) for tied
 *     Qwen2 with biases, untied Llama (MHA), Qwen3 (q/k norms) and Mistral with a sliding window
 *     shorter than the sequence; and with an eos id the rows stop at the same step. In TF32 and
 *     BF16 the generated tokens' logp agree with the CPU forward of the same sequences (at most
 *     0.02 / 0.15 nats apart: weights of std 0.4 give logits of a few units, and bf16 keeps 8 bits). Greedy with a repetition penalty and per-call stop ids: identical too.
 *   - sampling in FP32 (temperature 0.9; and top-k 20 + min-p + repetition penalty) draws the same
 *     tokens as the CPU for the same seed (row g uses the stream llama_rng_seed(seed, g) on both), and
 *     the same processed log-probabilities (llama_sampling.processed_logprobs) within 1e-4;
 *     top_k = 1 equals greedy.
 *   - the sampling kernel alone, on random logits over V = 1000 (two tiles of the kernel's 512
 *     threads): greedy ties go to the lowest id; each draw equals a host implementation of the
 *     documented rules with the same random number (repetition penalty on marked tokens, greedy on
 *     penalized logits, temperature, top-k with ties at the k-th value, top-p with the kept set by
 *     descending probability and the draw in id order, min-p); the RNG state advances once per
 *     draw and the drawn token is marked; the reported logp is log softmax at temperature 1; and the
 *     frequencies of many draws from one distribution match it (within 4.5 standard errors), with
 *     filtered tokens never drawn.
 *   - argument errors return -1 with a message.
 * Exit 77 ("SKIP: no CUDA device") without a GPU.
 */
#include "tests/gpu/gpu_test_util.h"

static llama_config gen_config(int which) {
    llama_config c;
    switch (which) {
    case 0:
        c = small_config("Qwen2ForCausalLM", 61, 48, 80, 2, 4, 2, 12);
        c.tie_word_embeddings = 1;
        c.attention_bias = 1;
        break;
    case 1:
        c = small_config("LlamaForCausalLM", 53, 32, 56, 2, 4, 4, 8);
        break;
    case 2:
        c = small_config("Qwen3ForCausalLM", 47, 40, 64, 2, 4, 2, 16);
        break;
    default:
        c = small_config("MistralForCausalLM", 43, 32, 48, 2, 4, 1, 8);
        c.sliding_window = 6;
        break;
    }
    c.num_eos = 0;
    return c;
}

static void make_models(llama_model *m, llama_cuda_model *cm, const llama_config *cfg, int p, uint64_t seed) {
    char err[256];
    CHECK(llama_init_random(m, cfg, seed, 0.02f) == 0);
    randomize_model(m, seed + 1, 0.4f); /* spread logits: greedy ties / near-ties are unlikely */
    if (p == LLAMA_CUDA_BF16) round_bf16(m->params, m->num_params);
    if (llama_cuda_create(cm, m, 0, p, err, sizeof err)) {
        fprintf(stderr, "llama_cuda_create: %s\n", err);
        exit(1);
    }
}

static void test_greedy(int which, int pi) {
    int p = test_precisions[pi];
    llama_config cfg = gen_config(which);
    const int P = 7, G = 3, NEW = 20;
    llama_model m;
    llama_cuda_model cm;
    make_models(&m, &cm, &cfg, p, 500 + which);
    int prompt[7], out[60], gout[60], len[3], glen[3];
    float lp[60], glp[60];
    char err[256];
    random_tokens(prompt, P, cfg.vocab_size, 600 + which);
    llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &greedy, 1, gout, glen, glp, err, sizeof err) == 0);
    for (int g = 0; g < G; g++) CHECK_EQ_INT(glen[g], NEW);
    if (p == LLAMA_CUDA_FP32) {
        CHECK(llama_generate_ex(&m, prompt, P, G, NEW, &greedy, 1, out, len, lp, err, sizeof err) == 0);
        int same = memcmp(out, gout, sizeof out) == 0 && memcmp(len, glen, sizeof len) == 0;
        CHECK_MSG(same, "%s: greedy tokens differ from the CPU's", cfg.architecture);
        double worst = 0;
        for (int i = 0; i < G * NEW; i++) worst = fmax(worst, fabs(glp[i] - lp[i]));
        printf("  %-44s %s, max |logp - cpu| %.3g\n", cfg.architecture, same ? "identical to the CPU" : "DIFFERENT", worst);
        CHECK(worst < 1e-4);
        /* with an eos id: every row stops at its first eos, as on the CPU */
        int eos = out[4];
        m.cfg.eos_token_ids[0] = cm.cfg.eos_token_ids[0] = eos;
        m.cfg.num_eos = cm.cfg.num_eos = 1;
        CHECK(llama_generate_ex(&m, prompt, P, G, NEW, &greedy, 1, out, len, NULL, err, sizeof err) == 0);
        CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &greedy, 1, gout, glen, NULL, err, sizeof err) == 0);
        CHECK(memcmp(out, gout, sizeof out) == 0 && memcmp(len, glen, sizeof len) == 0);
        CHECK(glen[0] <= 5 && gout[glen[0] - 1] == eos && (glen[0] == NEW || gout[glen[0]] == -1));
        /* the repetition penalty (greedy on penalized logits) and stop ids given per call */
        m.cfg.num_eos = cm.cfg.num_eos = 0;
        int stop[2] = {out[3], out[9]};
        llama_sampling pen = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .repetition_penalty = 1.8f,
                              .stop_ids = stop, .num_stop = 2};
        CHECK(llama_generate_ex(&m, prompt, P, G, NEW, &pen, 1, out, len, lp, err, sizeof err) == 0);
        CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &pen, 1, gout, glen, glp, err, sizeof err) == 0);
        CHECK_MSG(memcmp(out, gout, sizeof out) == 0 && memcmp(len, glen, sizeof len) == 0,
                  "%s: greedy with repetition penalty and stop ids differs from the CPU", cfg.architecture);
        worst = 0;
        for (int i = 0; i < G * NEW; i++) worst = fmax(worst, fabs(glp[i] - lp[i]));
        CHECK(worst < 1e-4);
    } else {
        /* the generated tokens' logp against the CPU forward of the same sequence */
        int seq[27];
        float flp[27];
        memcpy(seq, prompt, sizeof prompt);
        memcpy(seq + P, gout, NEW * sizeof(int));
        CHECK(llama_forward_logprobs(&m, seq, 1, P + NEW, flp, NULL) == 0);
        double worst = 0.0, lim = p == LLAMA_CUDA_TF32 ? 0.02 : 0.15;
        for (int i = 0; i < NEW; i++) worst = fmax(worst, fabs(glp[i] - flp[P + i]));
        printf("  %-44s max |logp - cpu forward| %.3g (limit %g)\n", cfg.architecture, worst, lim);
        CHECK(worst < lim);
    }
    llama_cuda_free(&cm);
    llama_free(&m);
}

static void test_sampling_matches_cpu(void) {
    llama_config cfg = gen_config(0);
    const int P = 5, G = 8, NEW = 12;
    llama_model m;
    llama_cuda_model cm;
    make_models(&m, &cm, &cfg, LLAMA_CUDA_FP32, 700);
    int prompt[5], out[96], gout[96], len[8], glen[8];
    char err[256];
    random_tokens(prompt, P, cfg.vocab_size, 701);
    /* plain temperature, then top-k + min-p + repetition penalty (no top-p: the same draw order as
     * the CPU, so the same tokens) */
    const llama_sampling cases[2] = {
        {.temperature = 0.9f, .top_k = 0, .top_p = 1.0f},
        {.temperature = 1.1f, .top_k = 20, .top_p = 1.0f, .min_p = 0.02f, .repetition_penalty = 1.2f},
    };
    for (int ci = 0; ci < 2; ci++) {
        CHECK(llama_generate(&m, prompt, P, G, NEW, &cases[ci], 12345, out, len, err, sizeof err) == 0);
        CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &cases[ci], 12345, gout, glen, NULL, err, sizeof err) == 0);
        int rows_same = 0;
        for (int g = 0; g < G; g++) rows_same += memcmp(out + g * NEW, gout + g * NEW, NEW * sizeof(int)) == 0;
        printf("  sampled rows identical to the CPU's (case %d): %d of %d\n", ci, rows_same, G);
        /* a row may diverge only if a draw falls within float rounding (~1e-6) of a boundary */
        CHECK(rows_same >= G - 1);
        /* processed log-probabilities (the sampled distribution's, for TRL's importance-sampling correction):
         * the same as the CPU's on the rows that drew the same tokens */
        llama_sampling pc = cases[ci];
        pc.processed_logprobs = 1;
        float lp[96], glp[96];
        CHECK(llama_generate_ex(&m, prompt, P, G, NEW, &pc, 12345, out, len, lp, err, sizeof err) == 0);
        CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &pc, 12345, gout, glen, glp, err, sizeof err) == 0);
        double worst = 0.0;
        int compared = 0;
        for (int g = 0; g < G; g++) {
            if (memcmp(out + g * NEW, gout + g * NEW, NEW * sizeof(int)) != 0) continue;
            compared++;
            for (int i = 0; i < len[g]; i++) worst = fmax(worst, fabs(glp[g * NEW + i] - lp[g * NEW + i]));
        }
        printf("  processed logp (case %d): %d rows, max |gpu - cpu| %.3g\n", ci, compared, worst);
        CHECK(compared >= G - 1 && worst < 1e-4);
    }
    llama_sampling s = cases[0];
    /* top_k = 1 keeps only the argmax: greedy */
    llama_sampling k1 = {.temperature = 1.3f, .top_k = 1, .top_p = 1.0f}, greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &k1, 9, gout, glen, NULL, err, sizeof err) == 0);
    CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &greedy, 9, out, len, NULL, err, sizeof err) == 0);
    CHECK(memcmp(out, gout, sizeof out) == 0);
    /* argument errors */
    llama_sampling bad = {.temperature = 0.5f, .top_k = 0, .top_p = 1.5f};
    CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &bad, 1, gout, glen, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "top_p") != NULL);
    bad.top_p = 1.0f;
    bad.min_p = 2.0f;
    CHECK(llama_cuda_generate(&cm, prompt, P, G, NEW, &bad, 1, gout, glen, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "min_p") != NULL);
    CHECK(llama_cuda_generate(&cm, prompt, 0, G, NEW, &s, 1, gout, glen, NULL, err, sizeof err) == -1);
    CHECK(llama_cuda_generate(&cm, prompt, P, G, cfg.max_position_embeddings, &s, 1, gout, glen, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "max_position_embeddings") != NULL);
    int badp[5] = {0, 1, cfg.vocab_size, 2, 3};
    CHECK(llama_cuda_generate(&cm, badp, P, G, NEW, &s, 1, gout, glen, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "prompt[2]") != NULL);
    llama_cuda_free(&cm);
    llama_free(&m);
}

/* ------------------------------------------------------------------------------------------------
 * The sampling kernel against a host implementation of the documented rules
 */

static int cmp_desc_ctx_prob(const void *a, const void *b, void *ctx) {
    const float *prob = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    if (prob[ia] > prob[ib]) return -1;
    if (prob[ia] < prob[ib]) return 1;
    return (ia > ib) - (ia < ib);
}

/* The kept weights (w, V; 0 = filtered) of llama_generate's rules for raw logits z and the row's
 * seen tokens (NULL: none); returns their sum. */
static double ref_weights(const float *zraw, const unsigned char *seen, int V, const llama_sampling *s, float *w) {
    float *z = hmalloc(V);
    int pen = seen && s->repetition_penalty > 0.0f && s->repetition_penalty != 1.0f;
    for (int v = 0; v < V; v++)
        z[v] = pen && seen[v] ? (zraw[v] > 0.0f ? zraw[v] / s->repetition_penalty : zraw[v] * s->repetition_penalty)
                              : zraw[v];
    float mx = z[0];
    for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
    float thr = -INFINITY;
    int *o = malloc(V * sizeof(int));
    if (s->top_k > 0 && s->top_k < V) {
        for (int v = 0; v < V; v++) o[v] = v;
        qsort_r(o, V, sizeof(int), cmp_desc_ctx_prob, z);
        thr = z[o[s->top_k - 1]];
    }
    double total = 0.0;
    for (int v = 0; v < V; v++) {
        w[v] = z[v] >= thr ? expf((z[v] - mx) / s->temperature) : 0.0f;
        total += w[v];
    }
    if (s->top_p < 1.0f) {
        int n = 0;
        for (int v = 0; v < V; v++) if (w[v] > 0.0f) o[n++] = v;
        qsort_r(o, n, sizeof(int), cmp_desc_ctx_prob, w);
        double cum = 0.0, need = (double)s->top_p * total;
        int keep = 0;
        while (keep < n) {
            cum += w[o[keep++]];
            if (cum >= need) break;
        }
        while (keep > 1 && w[o[keep - 1]] < s->min_p) keep--;
        for (int i = keep; i < n; i++) w[o[i]] = 0.0f;
    } else if (s->min_p > 0.0f) {
        for (int v = 0; v < V; v++) if (w[v] < s->min_p) w[v] = 0.0f;
    }
    total = 0.0;
    for (int v = 0; v < V; v++) total += w[v];
    free(o);
    free(z);
    return total;
}

/* The draw in id order with uniform u. */
static int ref_draw(const float *w, int V, double total, double u) {
    double target = u * total, acc = 0.0;
    int last = -1;
    for (int v = 0; v < V; v++) {
        if (w[v] == 0.0f) continue;
        acc += w[v];
        last = v;
        if (target < acc) return v;
    }
    return last;
}

static void test_sampler_exact(llama_cuda_ctx *ctx) {
    const int V = 1000, R = GPU_TEST_EMU ? 6 : 64;
    float *z = hmalloc((size_t)R * V), *w = hmalloc(V);
    unsigned char *seen = malloc((size_t)R * V), *seen2 = malloc((size_t)R * V);
    fill_normal(z, (size_t)R * V, 801, 2.0f);
    /* ties: every row repeats its z[0] at 5 other ids (tied weights for top-k / top-p) */
    for (int r = 0; r < R; r++)
        for (int i = 1; i < 6; i++) z[(size_t)r * V + 97 * i] = z[(size_t)r * V];
    llama_rng sr;
    llama_rng_seed(&sr, 802, 0);
    for (size_t i = 0; i < (size_t)R * V; i++) seen[i] = llama_rng_next(&sr) % 8 == 0;
    float *d_z = dup_f32(ctx, z, (size_t)R * V), *d_w = dalloc(ctx, (size_t)R * V * 4), *d_lp = dalloc(ctx, R * 4);
    int *d_tok = dalloc(ctx, R * sizeof(int)), *tok = malloc(R * sizeof(int));
    unsigned char *d_seen = dalloc(ctx, (size_t)R * V);
    float *lp = hmalloc(R);
    llama_rng *rng = malloc(R * sizeof(llama_rng)), *rng2 = malloc(R * sizeof(llama_rng));
    uint64_t *d_rng = dalloc(ctx, R * sizeof(llama_rng));
    const llama_sampling cases[] = {
        {.temperature = 0.8f, .top_k = 0, .top_p = 1.0f},
        {.temperature = 1.0f, .top_k = 50, .top_p = 1.0f},
        {.temperature = 0.7f, .top_k = 0, .top_p = 0.9f},
        {.temperature = 1.2f, .top_k = 200, .top_p = 0.5f},
        {.temperature = 0.5f, .top_k = 3, .top_p = 0.999f},
        {.temperature = 0.9f, .top_k = 0, .top_p = 1.0f, .min_p = 0.05f},
        {.temperature = 1.0f, .top_k = 40, .top_p = 0.9f, .min_p = 0.02f, .repetition_penalty = 1.3f},
        {.temperature = 0.8f, .top_k = 0, .top_p = 1.0f, .repetition_penalty = 0.7f},
        {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .repetition_penalty = 1.5f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const llama_sampling *s = &cases[ci];
        int pen = s->repetition_penalty != 0.0f;
        for (int r = 0; r < R; r++) llama_rng_seed(&rng[r], 900 + ci, (uint64_t)r);
        llama_cuda_h2d(ctx, d_rng, rng, R * sizeof(llama_rng));
        llama_cuda_h2d(ctx, d_seen, seen, (size_t)R * V);
        llama_cuda_sample(ctx, d_tok, d_lp, d_z, 0, R, V, s, d_rng, NULL, pen ? d_seen : NULL, d_w);
        llama_cuda_d2h(ctx, tok, d_tok, R * sizeof(int));
        llama_cuda_d2h(ctx, lp, d_lp, R * sizeof(float));
        llama_cuda_d2h(ctx, rng2, d_rng, R * sizeof(llama_rng));
        llama_cuda_d2h(ctx, seen2, d_seen, (size_t)R * V);
        int same = 0, lp_ok = 1, rng_ok = 1, seen_ok = 1;
        for (int r = 0; r < R; r++) {
            const float *zr = z + (size_t)r * V;
            int want;
            if (s->temperature == 0.0f) {
                /* greedy: argmax of the penalized logits, lowest id on ties; the RNG untouched */
                want = 0;
                float best = -INFINITY;
                for (int v = 0; v < V; v++) {
                    float x = seen[(size_t)r * V + v] ? (zr[v] > 0 ? zr[v] / s->repetition_penalty
                                                                   : zr[v] * s->repetition_penalty) : zr[v];
                    if (x > best) { best = x; want = v; }
                }
            } else {
                double total = ref_weights(zr, pen ? seen + (size_t)r * V : NULL, V, s, w);
                double u = llama_rng_uniform(&rng[r]); /* advances the host copy once, as the kernel must */
                want = ref_draw(w, V, total, u);
            }
            same += tok[r] == want;
            double mx = zr[0], se = 0.0;
            for (int v = 1; v < V; v++) mx = fmax(mx, zr[v]);
            for (int v = 0; v < V; v++) se += exp(zr[v] - mx);
            if (tok[r] >= 0 && tok[r] < V && fabs(lp[r] - (zr[tok[r]] - mx - log(se))) > 1e-5) lp_ok = 0;
            if (memcmp(&rng[r], &rng2[r], sizeof(llama_rng)) != 0) rng_ok = 0;
            for (int v = 0; v < V && pen; v++)
                if (seen2[(size_t)r * V + v] != (seen[(size_t)r * V + v] | (v == tok[r]))) seen_ok = 0;
        }
        printf("  sampler T=%.1f top_k=%d top_p=%.3f min_p=%.2f penalty=%.1f: %d of %d draws equal the host rules\n",
               s->temperature, s->top_k, s->top_p, s->min_p, s->repetition_penalty, same, R);
        CHECK_EQ_INT(same, R);
        CHECK(lp_ok);
        CHECK(rng_ok);
        CHECK(seen_ok);
    }
    /* greedy: the lowest id among tied maxima, the RNG untouched */
    for (int r = 0; r < R; r++) {
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = fmaxf(mx, z[(size_t)r * V + v]);
        z[(size_t)r * V + 700] = z[(size_t)r * V + 300 + r] = mx + 1.0f;
    }
    llama_cuda_h2d(ctx, d_z, z, (size_t)R * V * 4);
    llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    llama_cuda_h2d(ctx, d_rng, rng, R * sizeof(llama_rng));
    llama_cuda_sample(ctx, d_tok, NULL, d_z, 0, R, V, &greedy, d_rng, NULL, NULL, d_w);
    llama_cuda_d2h(ctx, tok, d_tok, R * sizeof(int));
    llama_cuda_d2h(ctx, rng2, d_rng, R * sizeof(llama_rng));
    int ok = 1;
    for (int r = 0; r < R; r++) ok &= tok[r] == 300 + r;
    CHECK_MSG(ok, "greedy: not the lowest of the tied maxima");
    CHECK(memcmp(rng, rng2, R * sizeof(llama_rng)) == 0);
    dfree(ctx, d_z, (size_t)R * V * 4); dfree(ctx, d_w, (size_t)R * V * 4); dfree(ctx, d_lp, R * 4);
    dfree(ctx, d_tok, R * sizeof(int)); dfree(ctx, d_rng, R * sizeof(llama_rng)); dfree(ctx, d_seen, (size_t)R * V);
    free(z); free(w); free(tok); free(lp); free(rng); free(rng2); free(seen); free(seen2);
}

/* Frequencies of many draws from one distribution (every row reads logits row 0). */
static void test_sampler_distribution(llama_cuda_ctx *ctx) {
    const int V = 10, R = GPU_TEST_EMU ? 400 : 20000;
    /* ties at the top-k boundary (ids 2, 5 and 8 share a value) */
    float z[10] = {0.3f, -1.0f, 0.9f, 1.5f, -0.2f, 0.9f, 2.0f, 0.1f, 0.9f, -3.0f};
    float *d_z = dup_f32(ctx, z, V), *d_w = dalloc(ctx, (size_t)R * V * 4);
    int *d_tok = dalloc(ctx, R * sizeof(int)), *tok = malloc(R * sizeof(int));
    llama_rng *rng = malloc(R * sizeof(llama_rng));
    uint64_t *d_rng = dalloc(ctx, R * sizeof(llama_rng));
    const llama_sampling cases[] = {
        {.temperature = 0.7f, .top_k = 0, .top_p = 1.0f},
        {.temperature = 1.0f, .top_k = 3, .top_p = 1.0f},
        {.temperature = 1.0f, .top_k = 0, .top_p = 0.6f},
        {.temperature = 0.8f, .top_k = 4, .top_p = 0.8f},
        {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.3f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const llama_sampling *s = &cases[ci];
        for (int r = 0; r < R; r++) llama_rng_seed(&rng[r], 4000 + ci, (uint64_t)r);
        llama_cuda_h2d(ctx, d_rng, rng, R * sizeof(llama_rng));
        llama_cuda_sample(ctx, d_tok, NULL, d_z, 1, R, V, s, d_rng, NULL, NULL, d_w);
        llama_cuda_d2h(ctx, tok, d_tok, R * sizeof(int));
        float w[10];
        double total = ref_weights(z, NULL, V, s, w);
        int count[10] = {0}, bad = 0;
        for (int r = 0; r < R; r++) {
            if (tok[r] < 0 || tok[r] >= V) { bad++; continue; }
            count[tok[r]]++;
        }
        double worst = 0.0;
        for (int v = 0; v < V; v++) {
            double pv = w[v] / total, f = (double)count[v] / R;
            if (pv == 0.0) { if (count[v]) bad++; continue; }
            double se = sqrt(pv * (1 - pv) / R);
            worst = fmax(worst, fabs(f - pv) / se);
        }
        printf("  sampler distribution T=%.1f top_k=%d top_p=%.1f min_p=%.1f: worst deviation %.2f standard errors, "
               "%d filtered draws\n", s->temperature, s->top_k, s->top_p, s->min_p, worst, bad);
        CHECK(bad == 0);
        CHECK(worst < 4.5);
    }
    dfree(ctx, d_z, V * 4); dfree(ctx, d_w, (size_t)R * V * 4); dfree(ctx, d_tok, R * sizeof(int));
    dfree(ctx, d_rng, R * sizeof(llama_rng));
    free(tok); free(rng);
}

int main(void) {
    skip_without_device();
    for (int pi = 0; pi < 3; pi++) {
        printf("== greedy, %s\n", precision_names[pi]);
        for (int which = 0; which < 4; which++) test_greedy(which, pi);
    }
    printf("== sampling\n");
    test_sampling_matches_cpu();
    llama_cuda_ctx *ctx = make_ctx(LLAMA_CUDA_FP32);
    test_sampler_exact(ctx);
    test_sampler_distribution(ctx);
    llama_cuda_ctx_free(ctx);
    return TEST_DONE();
}
