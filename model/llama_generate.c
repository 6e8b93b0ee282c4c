/*
 * model/llama_generate.c: batched sampling with a KV cache (llama_generate, llama_generate_ex).
 *
 * Flow: the prompt (P tokens) runs once through llama_decode_forward (llama_decode.c) as one row of
 * P tokens, filling cache row 0 at positions [0, P) (attention by the training kernel, sgemm tiles);
 * cache rows 1..G-1 get copies of it. Then all unfinished rows decode in lockstep: each step feeds
 * every active row's last token at the same position through llama_decode_forward (R active rows, 1
 * token each), samples one token per row from its own RNG stream, and drops rows that produced an eos
 * id or reached max_new. The cache is per layer (G, P+max_new, NKV*HS) for keys and the same for
 * values, allocated per call.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/llama_internal.h"
#include "model/llama_rng.h"

/* ------------------------------------------------------------------------------------------------
 * Sampling
 */

/* The k-th largest (k >= 1) of a (n floats, reordered in place): iterative quickselect. */
static float kth_largest(float *a, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) {
                float t = a[i]; a[i] = a[j]; a[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return a[want];
    }
    return a[want];
}

/* Sorts idx[0..n) by prob descending, ties by index ascending (insertion-merge via qsort_r). */
static int cmp_prob_desc(const void *a, const void *b, void *ctx) {
    const float *prob = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    if (prob[ia] > prob[ib]) return -1;
    if (prob[ia] < prob[ib]) return 1;
    return (ia > ib) - (ia < ib);
}

/* Draws a token from logits z (V) as documented in llama.h. prob (V) and order (V) are scratch. */
/* *plogp (when not NULL): log p(token) under the distribution it was drawn from (penalty, temperature, top-k,
 * top-p, min-p applied, renormalized over the kept tokens: vLLM's processed_logprobs); 0 for greedy. */
static int sample_token(const float *z, int V, const llama_sampling *s, llama_rng *rng, float *prob, int *order,
                        float *plogp) {
    const float min_p = s->min_p > 0.0f ? s->min_p : 0.0f;
    int best = 0;
    for (int v = 1; v < V; v++) if (z[v] > z[best]) best = v;
    if (plogp) *plogp = 0.0f;
    if (s->temperature == 0.0f) return best;
    float mx = z[best], t = s->temperature;
    float thr = -INFINITY;
    if (s->top_k > 0 && s->top_k < V) {
        memcpy(prob, z, (size_t)V * sizeof(float));
        thr = kth_largest(prob, V, s->top_k);
    }
    double total = 0.0;
    for (int v = 0; v < V; v++) {
        prob[v] = z[v] >= thr ? expf((z[v] - mx) / t) : 0.0f;
        total += prob[v];
    }
    if (s->top_p < 1.0f) {
        int n = 0;
        for (int v = 0; v < V; v++) if (prob[v] > 0.0f) order[n++] = v;
        qsort_r(order, (size_t)n, sizeof(int), cmp_prob_desc, prob);
        double cum = 0.0, need = (double)s->top_p * total;
        int keep = 0;
        while (keep < n) {
            cum += prob[order[keep++]];
            if (cum >= need) break;
        }
        /* min-p after top-p: prob is relative to the top token's (exp(0) = 1), sorted descending */
        while (keep > 1 && prob[order[keep - 1]] < min_p) cum -= prob[order[--keep]];
        double u = llama_rng_uniform(rng) * cum, acc = 0.0;
        int tok = order[keep - 1];
        for (int i = 0; i < keep; i++) {
            acc += prob[order[i]];
            if (u < acc) { tok = order[i]; break; }
        }
        if (plogp) *plogp = (float)((double)((z[tok] - mx) / t) - log(cum));
        return tok;
    }
    if (min_p > 0.0f) {
        total = 0.0;
        for (int v = 0; v < V; v++) {
            if (prob[v] < min_p) prob[v] = 0.0f;
            total += prob[v];
        }
    }
    double u = llama_rng_uniform(rng) * total, acc = 0.0;
    int last = best, tok = -1;
    for (int v = 0; v < V; v++) {
        if (prob[v] == 0.0f) continue;
        acc += prob[v];
        last = v;
        if (u < acc) { tok = v; break; }
    }
    if (tok < 0) tok = last; /* u within rounding of total */
    if (plogp) *plogp = (float)((double)((z[tok] - mx) / t) - log(total));
    return tok;
}

/* log softmax(z)[tok] at temperature 1 */
static float token_logp(const float *z, int V, int tok) {
    float mx = z[0];
    for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += expf(z[v] - mx);
    return z[tok] - mx - (float)log(sum);
}

static int is_stop(const llama_config *c, const llama_sampling *s, int tok) {
    if (s->stop_ids) {
        for (int i = 0; i < s->num_stop; i++) if (s->stop_ids[i] == tok) return 1;
        return 0;
    }
    for (int i = 0; i < c->num_eos; i++) if (c->eos_token_ids[i] == tok) return 1;
    return 0;
}

/* HF's RepetitionPenaltyLogitsProcessor on one row: z (V) in, zp (V) out; seen (V) marks the tokens
 * of the prompt and of the row's completion so far. */
static void apply_repetition_penalty(const float *z, float *zp, const unsigned char *seen, int V, float rp) {
    for (int v = 0; v < V; v++) zp[v] = seen[v] ? (z[v] > 0.0f ? z[v] / rp : z[v] * rp) : z[v];
}

/* ------------------------------------------------------------------------------------------------
 * Driver
 */

int llama_generate_check_args(const llama_config *c, const int *prompt, int P, int G, int max_new,
                              const llama_sampling *s, const int *out, const int *out_len, const char *who,
                              char *err, size_t errlen) {
    if (!prompt || !s || !out || !out_len) {
        snprintf(err, errlen, "%s: prompt, sampling, out and out_len must not be NULL", who);
        return -1;
    }
    if (P < 1 || G < 1 || max_new < 1) {
        snprintf(err, errlen, "%s: P=%d, G=%d and max_new=%d must be >= 1", who, P, G, max_new);
        return -1;
    }
    if ((long long)P + max_new > c->max_position_embeddings) {
        snprintf(err, errlen, "%s: P=%d + max_new=%d exceeds max_position_embeddings %d", who, P, max_new,
                 c->max_position_embeddings);
        return -1;
    }
    if (!(s->temperature >= 0.0f) || !isfinite(s->temperature) || s->top_k < 0 ||
        !(s->top_p > 0.0f && s->top_p <= 1.0f) || !(s->min_p >= 0.0f && s->min_p <= 1.0f) ||
        !(s->repetition_penalty >= 0.0f && isfinite(s->repetition_penalty)) || (s->stop_ids && s->num_stop < 0)) {
        snprintf(err, errlen, "%s: sampling needs temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
                 "0 <= min_p <= 1, repetition_penalty >= 0 (got %g, %d, %g, %g, %g)", who, (double)s->temperature,
                 s->top_k, (double)s->top_p, (double)s->min_p, (double)s->repetition_penalty);
        return -1;
    }
    for (int i = 0; i < P; i++)
        if (prompt[i] < 0 || prompt[i] >= c->vocab_size) {
            snprintf(err, errlen, "%s: prompt[%d]=%d is not in [0, vocab_size %d)", who, i, prompt[i], c->vocab_size);
            return -1;
        }
    return 0;
}

int llama_generate_ex(llama_model *m, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                      uint64_t seed, int *out, int *out_len, float *out_logp, char *err, size_t errlen) {
    const llama_config *c = &m->cfg;
    LLAMA_ASSERT(m->state != NULL);
    if (llama_generate_check_args(c, prompt, P, G, max_new, s, out, out_len, "llama_generate", err, errlen)) return -1;
    const int penalize = s->repetition_penalty > 0.0f && s->repetition_penalty != 1.0f;
    int Tmax = P + max_new, V = c->vocab_size, L = c->num_hidden_layers;
    size_t KD = (size_t)c->num_key_value_heads * c->head_dim;
    llama_decode_buf gb;
    int *active = malloc((size_t)G * sizeof(int));
    int *feed = malloc((size_t)G * sizeof(int));
    int *done = malloc((size_t)G * sizeof(int));
    int *posv = malloc((size_t)G * sizeof(int));
    llama_rng *rng = malloc((size_t)G * sizeof(llama_rng));
    float *prob = malloc((size_t)G * V * sizeof(float));   /* sampling scratch (G, V) */
    int *order = malloc((size_t)G * V * sizeof(int));
    if (!active || !feed || !done || !posv || !rng || !prob || !order || llama_rope_ensure(m, Tmax) ||
        llama_decode_alloc(&gb, c, G, Tmax, G, G, P)) {
        free(active); free(feed); free(done); free(posv); free(rng); free(prob); free(order);
        snprintf(err, errlen, "llama_generate: out of memory (G=%d, P+max_new=%d)", G, Tmax);
        return -1;
    }
    for (size_t i = 0; i < (size_t)G * max_new; i++) {
        out[i] = -1;
        if (out_logp) out_logp[i] = 0.0f;
    }
    for (int g = 0; g < G; g++) {
        out_len[g] = 0;
        active[g] = g;
        llama_rng_seed(&rng[g], seed, (uint64_t)s->first_row + (uint64_t)g);
    }
    /* repetition penalty: per row, the tokens seen so far (G, V) and a penalized copy of the logits */
    unsigned char *seen = NULL;
    float *zpen = NULL;
    if (penalize) {
        seen = calloc((size_t)G * V, 1);
        zpen = malloc((size_t)G * V * sizeof(float));
        if (!seen || !zpen) {
            free(seen); free(zpen); llama_decode_free(&gb); free(active); free(feed); free(done); free(posv); free(rng);
            free(prob); free(order);
            snprintf(err, errlen, "llama_generate: out of memory (repetition penalty, G=%d, V=%d)", G, V);
            return -1;
        }
        for (int g = 0; g < G; g++)
            for (int i = 0; i < P; i++) seen[(size_t)g * V + prompt[i]] = 1;
    }

    /* bf16 products (llama_set_bf16, as the CUDA model's BF16 generation): the weights rounded to bf16 once
     * per call into the state's copy (the training forward's buffer; the weights are the same) */
    llama_prec prec_bf16 = {0}, *prec = NULL;
    if (m->bf16) {
        struct llama_state *st = m->state;
        if (!st->params_bf16 && !(st->params_bf16 = malloc(m->num_params * sizeof(uint16_t)))) {
            free(seen); free(zpen); llama_decode_free(&gb); free(active); free(feed); free(done); free(posv); free(rng);
            free(prob); free(order);
            snprintf(err, errlen, "llama_generate: out of memory for the bf16 copy of the weights");
            return -1;
        }
        llama_to_bf16(st->params_bf16, m->params, m->num_params);
        prec_bf16 = (llama_prec){1, m->params, m->num_params, st->params_bf16};
        prec = &prec_bf16;
    }

    /* prefill once into cache row 0, copy to the other rows */
    int row0 = 0, pos0 = 0;
    llama_decode_forward(m, &gb, prec, 1, &row0, &pos0, prompt, P);
    for (int l = 0; l < L; l++)
        for (int g = 1; g < G; g++) {
            memcpy(gb.kc[l] + (size_t)g * Tmax * KD, gb.kc[l], (size_t)P * KD * sizeof(float));
            memcpy(gb.vc[l] + (size_t)g * Tmax * KD, gb.vc[l], (size_t)P * KD * sizeof(float));
        }

    int nactive = G;
    for (int step = 0; step < max_new && nactive > 0; step++) {
        if (step > 0) {
            for (int r = 0; r < nactive; r++) {
                feed[r] = out[(size_t)active[r] * max_new + step - 1];
                posv[r] = P + step - 1;
            }
            llama_decode_forward(m, &gb, prec, nactive, active, posv, feed, 1);
        }
        /* at step 0 every row samples from the prompt's logits (row 0) */
        #pragma omp parallel for schedule(dynamic, 1) if ((size_t)nactive * V >= LLAMA_OMP_MIN_WORK)
        for (int r = 0; r < nactive; r++) {
            int g = active[r];
            const float *zraw = gb.logits + (size_t)(step == 0 ? 0 : r) * V, *z = zraw;
            if (penalize) {
                apply_repetition_penalty(z, zpen + (size_t)g * V, seen + (size_t)g * V, V, s->repetition_penalty);
                z = zpen + (size_t)g * V;
            }
            float plp = 0.0f;
            int tok = sample_token(z, V, s, &rng[g], prob + (size_t)g * V, order + (size_t)g * V,
                                   s->processed_logprobs ? &plp : NULL);
            if (penalize) seen[(size_t)g * V + tok] = 1;
            out[(size_t)g * max_new + step] = tok;
            out_len[g] = step + 1;
            if (out_logp) out_logp[(size_t)g * max_new + step] = s->processed_logprobs ? plp : token_logp(zraw, V, tok);
        }
        int kept = 0, ndone = 0;
        for (int r = 0; r < nactive; r++) {
            int g = active[r];
            if (!is_stop(c, s, out[(size_t)g * max_new + step]) && step + 1 < max_new) active[kept++] = g;
            else done[ndone++] = g;
        }
        nactive = kept;
        if (s->on_step) s->on_step(s->on_step_ctx, done, ndone);
    }
    llama_decode_free(&gb);
    free(seen);
    free(zpen);
    free(active);
    free(feed);
    free(done);
    free(posv);
    free(prob);
    free(order);
    free(rng);
    return 0;
}

int llama_generate(llama_model *m, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                   uint64_t seed, int *out, int *out_len, char *err, size_t errlen) {
    return llama_generate_ex(m, prompt, P, G, max_new, s, seed, out, out_len, NULL, err, errlen);
}
