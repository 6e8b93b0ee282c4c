/*
 * trainer/grpo.c: GRPO advantages and the clipped surrogate loss (see grpo.h for the formulas and
 * their sources). Everything here is plain arithmetic on (B, T) arrays; the model supplies logp and
 * takes dlogp back through llama_backward_logprobs.
 */
#include "trainer/grpo.h"

#include <math.h>
#include <string.h>

static double stddev_unbiased(const double *x, int n, double mean) {
    if (n < 2) return 0.0;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return sqrt(s / (n - 1));
}

void grpo_advantages(const double *rewards, int N, int G, grpo_scale scale, float *adv,
                     double *mean_group_std, double *frac_zero_std) {
    int groups = N / G;
    double batch_mean = 0.0;
    for (int i = 0; i < N; i++) batch_mean += rewards[i];
    batch_mean /= N;
    double batch_std = stddev_unbiased(rewards, N, batch_mean);
    double std_sum = 0.0;
    int zero_std = 0;
    for (int g = 0; g < groups; g++) {
        const double *r = rewards + (size_t)g * G;
        double mean = 0.0;
        for (int i = 0; i < G; i++) mean += r[i];
        mean /= G;
        double std = stddev_unbiased(r, G, mean);
        std_sum += std;
        int all_equal = 1;
        for (int i = 1; i < G; i++) if (r[i] != r[0]) all_equal = 0;
        zero_std += all_equal;
        double denom = scale == SCALE_GROUP ? std + 1e-4 : scale == SCALE_BATCH ? batch_std + 1e-4 : 1.0;
        for (int i = 0; i < G; i++) adv[(size_t)g * G + i] = (float)((r[i] - mean) / denom);
    }
    if (mean_group_std) *mean_group_std = groups ? std_sum / groups : 0.0;
    if (frac_zero_std) *frac_zero_std = groups ? (double)zero_std / groups : 0.0;
}

double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, float *dlogp,
                 grpo_loss_stats *st) {
    memset(st, 0, sizeof *st);
    double mb_tokens = 0.0;
    for (size_t i = 0; i < (size_t)B * T; i++) mb_tokens += mask[i];
    st->tokens = mb_tokens;
    double accum = p->gradient_accumulation_steps > 0 ? p->gradient_accumulation_steps : 1;
    double loss = 0.0;
    for (int b = 0; b < B; b++) {
        const float *m = mask + (size_t)b * T;
        double seq_tokens = 0.0;
        for (int t = 0; t < T; t++) seq_tokens += m[t];
        /* w: the weight of one active token of this sequence in the aggregated loss */
        double w;
        switch (p->type) {
        case LOSS_GRPO: w = seq_tokens > 0 ? 1.0 / (seq_tokens * B * accum) : 0.0; break;
        case LOSS_BNPO: w = mb_tokens > 0 ? 1.0 / (mb_tokens * accum) : 0.0; break;
        case LOSS_DR_GRPO: w = 1.0 / ((double)B * p->max_completion_length * accum); break;
        default: w = p->num_items_in_batch > 0 ? 1.0 / p->num_items_in_batch : 0.0; break;
        }
        double A = adv[b];
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (m[t] == 0.0f) { dlogp[i] = 0.0f; continue; }
            double ratio = exp((double)logp[i] - (double)old_logp[i]);
            double lo = 1.0 - p->epsilon_low, hi = 1.0 + p->epsilon_high;
            double clipped = ratio < lo ? lo : ratio > hi ? hi : ratio;
            double l1 = ratio * A, l2 = clipped * A;
            double per_token, grad;
            if (l1 <= l2) { per_token = -l1; grad = -A * ratio; }   /* unclipped branch: d(ratio)/dlogp = ratio */
            else { per_token = -l2; grad = 0.0; }                    /* clipped branch is constant in logp */
            if (A < 0 && ratio < lo) st->clip_low += 1;
            if (A > 0 && ratio > hi) st->clip_high += 1;
            if (ref_logp && p->beta > 0) {
                double d = (double)ref_logp[i] - (double)logp[i];
                double kl = exp(d) - d - 1.0;
                per_token += p->beta * kl;
                grad += p->beta * (1.0 - exp(d));
                st->kl_sum += kl;
            }
            loss += w * per_token;
            dlogp[i] = (float)(w * grad);
        }
    }
    st->loss = loss;
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
