/*
 * trainer/grpo.c: GRPO advantages, the entropy mask and the clipped surrogate loss (see grpo.h for the
 * formulas and their sources). Everything here is plain arithmetic on (B, T) arrays, in double; the
 * model supplies logp and takes dlogp back through llama_backward_logprobs.
 *
 * The gradient is written out by hand, branch by branch, to equal what autograd computes for TRL's
 * expression: with c the coefficient before clipping (exp of the token or sequence log-ratio),
 *   coef_1 = min(c, delta)          d/dc = 1 where c <= delta (torch.clamp passes its ends), else 0
 *   coef_2 = clamp(c, lo, hi)       d/dc = 1 where lo <= c <= hi, else 0
 *   pg = −min(coef_1·A, coef_2·A)   d/dc = −A·dcoef_1 or −A·dcoef_2 for the smaller term, the mean of
 *                                   the two on a tie (torch.minimum's backward splits evenly)
 * and d/d(log-ratio) = c·dpg/dc. At the sequence level the log-ratio is the masked mean of the token
 * log-ratios, so each active token of the sequence receives 1/max(n_b, 1) of the sequence's gradient,
 * weighted by the sum of its tokens' aggregation weights (times their entropy mask).
 */
#include "trainer/grpo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRPO_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

static double mean_of(const double *x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0.0;
}

static double stddev_unbiased(const double *x, int n, double mean) {
    if (n < 2) return 0.0;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return sqrt(s / (n - 1));
}

void grpo_advantages(const double *rewards, int N, int G, grpo_scale scale, float *adv,
                     double *reward_std, double *frac_zero_std) {
    if (G < 1 || N < 1 || N % G != 0) GRPO_ABORT("grpo_advantages: N=%d is not a positive multiple of G=%d", N, G);
    const int groups = N / G;
    const double batch_std = stddev_unbiased(rewards, N, mean_of(rewards, N));
    double std_sum = 0.0;
    int zero_std = 0;
    for (int g = 0; g < groups; g++) {
        const double *r = rewards + (size_t)g * G;
        const double mean = mean_of(r, G);
        /* TRL: std_rewards is the group's std for scale_rewards "group" and "none", the batch's for "batch" */
        const double std = scale == SCALE_BATCH ? batch_std : stddev_unbiased(r, G, mean);
        std_sum += std * G;
        if (fabs(std) <= 1e-8) zero_std += G;   /* torch.isclose(std, 0): |std| <= atol 1e-8 */
        const double denom = scale == SCALE_NONE ? 1.0 : std + 1e-4;
        for (int i = 0; i < G; i++) adv[(size_t)g * G + i] = (float)((r[i] - mean) / denom);
    }
    if (reward_std) *reward_std = std_sum / N;
    if (frac_zero_std) *frac_zero_std = (double)zero_std / N;
}

int grpo_fill_unscored(double *rewards, const unsigned char *scored, int N, int G) {
    if (G < 1 || N < 1 || N % G != 0) GRPO_ABORT("grpo_fill_unscored: N=%d is not a positive multiple of G=%d", N, G);
    int filled = 0;
    for (int g = 0; g < N / G; g++) {
        double sum = 0.0;
        int ok = 0;
        for (int i = g * G; i < (g + 1) * G; i++)
            if (scored[i]) { sum += rewards[i]; ok++; }
        for (int i = g * G; i < (g + 1) * G; i++)
            if (!scored[i]) {
                rewards[i] = ok ? sum / ok : 0.0;
                filled++;
            }
    }
    return filled;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void grpo_entropy_mask(const float *entropy, const float *mask, int n, double quantile, float *out) {
    if (!(quantile >= 0.0 && quantile <= 1.0)) GRPO_ABORT("grpo_entropy_mask: quantile %g is not in [0, 1]", quantile);
    int k = 0;
    for (int i = 0; i < n; i++) k += mask[i] != 0.0f;
    if (k == 0) {   /* TRL: no active token, nothing selected */
        memset(out, 0, sizeof(float) * (size_t)n);
        return;
    }
    double *v = malloc(sizeof(double) * (size_t)k);
    if (!v) GRPO_ABORT("grpo_entropy_mask: out of memory (%d tokens)", k);
    k = 0;
    for (int i = 0; i < n; i++) if (mask[i] != 0.0f) v[k++] = entropy[i];
    qsort(v, (size_t)k, sizeof(double), cmp_double);
    /* torch.quantile, interpolation="linear": rank q·(k−1) between its floor and ceiling */
    double rank = quantile * (k - 1);
    int lo = (int)floor(rank), hi = (int)ceil(rank);
    double threshold = v[lo] + (v[hi] - v[lo]) * (rank - lo);
    free(v);
    for (int i = 0; i < n; i++) out[i] = (mask[i] != 0.0f && (double)entropy[i] * mask[i] >= threshold) ? 1.0f : 0.0f;
}

double grpo_masked_mean(const float *x, const float *mask, int n) {
    double s = 0.0, m = 0.0;
    for (int i = 0; i < n; i++) { s += (double)x[i] * mask[i]; m += mask[i]; }
    return s / (m > 1.0 ? m : 1.0);
}

/* The policy-gradient term −min(coef_1·A, coef_2·A) at coefficient c and its derivative w.r.t. the
 * log-ratio (= c · d/dc); *low / *high: the clip indicators on coef_1 (after the delta cap). */
static double pg_term(const grpo_loss_params *p, double c, double A, double *dlogratio, int *low, int *high) {
    const double lo = 1.0 - p->epsilon_low, hi = 1.0 + p->epsilon_high;
    double c1 = c, d1 = 1.0;
    if (p->delta > 0 && c > p->delta) { c1 = p->delta; d1 = 0.0; }
    double c2 = c < lo ? lo : c > hi ? hi : c;
    double d2 = (c >= lo && c <= hi) ? 1.0 : 0.0;
    double l1 = c1 * A, l2 = c2 * A, dc;
    if (l1 < l2) dc = -A * d1;
    else if (l2 < l1) dc = -A * d2;
    else dc = -A * 0.5 * (d1 + d2);
    *dlogratio = dc * c;
    *low = c1 < lo && A < 0;
    *high = c1 > hi && A > 0;
    return -(l1 < l2 ? l1 : l2);
}

double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                 float *dlogp, grpo_loss_stats *st) {
    if (B < 1 || T < 1) GRPO_ABORT("grpo_loss: B=%d, T=%d", B, T);
    if (p->beta > 0 && !ref_logp) GRPO_ABORT("grpo_loss: beta=%g needs ref_logp", (double)p->beta);
    memset(st, 0, sizeof *st);
    double mb_tokens = 0.0;
    for (size_t i = 0; i < (size_t)B * T; i++) mb_tokens += mask[i];
    st->tokens = mb_tokens;
    const double accum = p->gradient_accumulation_steps > 0 ? p->gradient_accumulation_steps : 1;
    const double count = mb_tokens > 1.0 ? mb_tokens : 1.0;   /* completion_mask.sum().clamp(min=1) */
    double loss = 0.0, kl_sum = 0.0, low_sum = 0.0, high_sum = 0.0, region_sum = 0.0;
    for (int b = 0; b < B; b++) {
        const float *m = mask + (size_t)b * T;
        const float *lp = logp + (size_t)b * T, *olp = old_logp + (size_t)b * T;
        const float *em = entropy_mask ? entropy_mask + (size_t)b * T : NULL;
        float *g = dlogp + (size_t)b * T;
        double n_b = 0.0;
        for (int t = 0; t < T; t++) n_b += m[t];
        const double n_clamped = n_b > 1.0 ? n_b : 1.0;
        /* w: the weight of one active token of this sequence in the aggregated loss */
        double w;
        switch (p->type) {
        case LOSS_GRPO: w = 1.0 / (n_clamped * B * accum); break;
        case LOSS_BNPO: w = 1.0 / (count * accum); break;
        case LOSS_DR_GRPO: w = 1.0 / ((double)B * p->max_completion_length * accum); break;
        case LOSS_DAPO: w = p->num_items_in_batch > 0 ? 1.0 / p->num_items_in_batch : 0.0; break;
        default: GRPO_ABORT("grpo_loss: unknown loss type %d", (int)p->type);
        }
        const double A = adv[b];
        double seq_pg = 0.0, seq_dpg = 0.0;
        if (p->level == IS_SEQUENCE) {
            double s = 0.0;
            for (int t = 0; t < T; t++) if (m[t] != 0.0f) s += ((double)lp[t] - (double)olp[t]) * m[t];
            int low, high;
            seq_pg = pg_term(p, exp(s / n_clamped), A, &seq_dpg, &low, &high);
            low_sum += low;
            high_sum += high;
            region_sum += low || high;
        }
        double seq_weight = 0.0;   /* sequence level: Σ_t w·mask·em, the weight of the sequence's pg term */
        for (int t = 0; t < T; t++) {
            if (m[t] == 0.0f) { g[t] = 0.0f; continue; }
            const double e = em ? em[t] : 1.0;
            double per_token, grad;
            if (p->level == IS_TOKEN) {
                int low, high;
                double dpg;
                per_token = pg_term(p, exp((double)lp[t] - (double)olp[t]), A, &dpg, &low, &high) * e;
                grad = dpg * e;
                low_sum += low * m[t];
                high_sum += high * m[t];
                region_sum += (low || high) * m[t];
            } else {
                per_token = seq_pg * e;
                grad = 0.0;   /* added below, once the sequence's total weight is known */
                seq_weight += w * m[t] * e;
            }
            if (p->beta > 0) {
                const double d = (double)ref_logp[(size_t)b * T + t] - (double)lp[t];
                const double kl = exp(d) - d - 1.0;
                per_token += p->beta * kl;
                grad += p->beta * (1.0 - exp(d));   /* d/dlogp of exp(d) − d − 1, d = ref − logp */
                kl_sum += kl * m[t];
            }
            loss += w * per_token * m[t];
            g[t] = (float)(w * grad * m[t]);
        }
        if (p->level == IS_SEQUENCE && seq_weight != 0.0) {
            const double share = seq_weight * seq_dpg / n_clamped;
            for (int t = 0; t < T; t++) if (m[t] != 0.0f) g[t] = (float)((double)g[t] + share * m[t]);
        }
    }
    st->loss = loss;
    st->kl = p->beta > 0 ? kl_sum / count : 0.0;
    const double clip_den = p->level == IS_SEQUENCE ? B : count;
    st->clip_low = low_sum / clip_den;
    st->clip_high = high_sum / clip_den;
    st->clip_region = region_sum / clip_den;
    return loss;
}

int grpo_loss_type_from_name(const char *name) {
    if (!strcmp(name, "grpo")) return LOSS_GRPO;
    if (!strcmp(name, "bnpo")) return LOSS_BNPO;
    if (!strcmp(name, "dr_grpo")) return LOSS_DR_GRPO;
    if (!strcmp(name, "dapo")) return LOSS_DAPO;
    return -1;
}

int grpo_scale_from_name(const char *name) {
    if (!strcmp(name, "group")) return SCALE_GROUP;
    if (!strcmp(name, "batch")) return SCALE_BATCH;
    if (!strcmp(name, "none")) return SCALE_NONE;
    return -1;
}

int grpo_is_level_from_name(const char *name) {
    if (!strcmp(name, "token")) return IS_TOKEN;
    if (!strcmp(name, "sequence")) return IS_SEQUENCE;
    return -1;
}
