/*
 * trainer/grpo.c: GRPO advantages, completion statistics, the entropy mask and the policy losses of TRL
 * 1.16.0 (see grpo.h for the formulas and their sources). Plain arithmetic on (B, T) arrays, in double
 * except where TRL's float32 decides a discrete outcome (the entropy quantile); the model supplies logp
 * and entropy and takes dlogp (and dentropy) back through its backward pass.
 *
 * The gradient is written out by hand to equal what autograd computes for TRL's expression. With c the
 * importance coefficient (exp of the token or sequence log-ratio), every per-token term is split into a
 * part that depends on c and a part that depends on logp directly:
 *   grpo family  ℓ(c) = −min(c₁·A, c₂·A), c₁ = min(c, delta), c₂ = clamp(c, lo, hi); dc₁/dc = 1 where
 *                c <= delta, dc₂/dc = 1 where lo <= c <= hi (torch.clamp passes its ends); the smaller
 *                term takes the gradient, the mean of the two on a tie (torch.minimum's backward)
 *   sapo         ℓ(c) = −σ(τ(c − 1))·4/τ·A: dℓ/dc = −4·A·σ·(1 − σ)
 *   cispo, vespo ℓ = −w·A·logp with w detached: dℓ/dlogp = −w·A
 *   KL           β·k3(logp)·c (bias-corrected) or β·k3(logp): d/dlogp = β·(1 − exp(ref − logp))·c, and
 *                β·k3 joins dℓ/dc
 * At the token level d/dlogp_t += (dL/dc_t)·c_t. At the sequence level c_b = exp(mean of the token
 * log-ratios), so each active token of sequence b receives (Σ_t dL/dc_t)·c_b / max(n_b, 1).
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

/* TRL's nanstd without NaNs: Bessel-corrected; 0 for fewer than 2 values (TRL: NaN, never reached here). */
static double stddev_unbiased(const double *x, int n, double mean) {
    if (n < 2) return 0.0;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return sqrt(s / (n - 1));
}

double grpo_mean(const double *x, int n) { return mean_of(x, n); }

double grpo_std(const double *x, int n) { return stddev_unbiased(x, n, mean_of(x, n)); }

void grpo_advantages(const double *rewards, int N, int G, grpo_scale scale, float *adv,
                     double *reward_std, double *frac_zero_std) {
    if (G < 1 || N < 1 || N % G != 0) GRPO_ABORT("grpo_advantages: N=%d is not a positive multiple of G=%d", N, G);
    const int groups = N / G;
    const double batch_std = stddev_unbiased(rewards, N, mean_of(rewards, N));
    int zero_std = 0;
    for (int g = 0; g < groups; g++) {
        const double *r = rewards + (size_t)g * G;
        const double mean = mean_of(r, G);
        /* TRL: std_rewards is the group's std for scale_rewards "group" and "none", the batch's for "batch" */
        const double std = scale == SCALE_BATCH ? batch_std : stddev_unbiased(r, G, mean);
        if (fabs(std) <= 1e-8) zero_std += G;   /* torch.isclose(std, 0): |std| <= atol 1e-8 */
        const double denom = scale == SCALE_NONE ? 1.0 : std + 1e-4;
        for (int i = 0; i < G; i++) adv[(size_t)g * G + i] = (float)((r[i] - mean) / denom);
    }
    if (reward_std) *reward_std = batch_std;   /* TRL logs nanstd(rewards) over the whole batch */
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

void grpo_completion_stats_of(const int *len, const int *terminated, int n, int mask_truncated_completions,
                              grpo_completion_stats *out) {
    if (n < 1) GRPO_ABORT("grpo_completion_stats_of: n=%d", n);
    memset(out, 0, sizeof *out);
    out->min_length = out->min_terminated_length = 1e300;
    int n_term = 0;
    for (int i = 0; i < n; i++) {
        const double L = len[i];
        out->mean_length += L;
        if (L < out->min_length) out->min_length = L;
        if (L > out->max_length) out->max_length = L;
        if (terminated[i]) {
            n_term++;
            out->mean_terminated_length += L;
            if (L < out->min_terminated_length) out->min_terminated_length = L;
            if (L > out->max_terminated_length) out->max_terminated_length = L;
        }
        if (terminated[i] || !mask_truncated_completions) out->num_items_in_batch += L;
    }
    out->mean_length /= n;
    if (n_term) out->mean_terminated_length /= n_term;
    else out->mean_terminated_length = out->min_terminated_length = out->max_terminated_length = 0.0;
    out->clipped_ratio = 1.0 - (double)n_term / n;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
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
    float *v = malloc(sizeof(float) * (size_t)k);
    if (!v) GRPO_ABORT("grpo_entropy_mask: out of memory (%d tokens)", k);
    k = 0;
    for (int i = 0; i < n; i++) if (mask[i] != 0.0f) v[k++] = entropy[i];
    qsort(v, (size_t)k, sizeof(float), cmp_float);
    /* torch.quantile (linear) on float32 values: q is rounded to float32, the rank q·(k−1) is formed in double
     * (matched against torch 2.15 on the fixtures: a rank just above an integer moves the threshold one ulp
     * above that value), weight = rank − floor(rank) as float32, then values_below.lerp_(values_above,
     * weight) in float32 with torch's lerp formula */
    const double rank = (double)(float)quantile * (double)(k - 1);
    const long lo = (long)floor(rank), hi = (long)ceil(rank);
    const float w = (float)(rank - (double)lo);
    const float a = v[lo], b = v[hi];
    volatile float diff = b - a;   /* no contraction into an FMA: torch's scalar lerp rounds each step */
    volatile float prod = fabsf(w) < 0.5f ? w * diff : diff * (1.0f - w);
    const float threshold = fabsf(w) < 0.5f ? a + prod : b - prod;
    free(v);
    for (int i = 0; i < n; i++) out[i] = (mask[i] != 0.0f && entropy[i] * mask[i] >= threshold) ? 1.0f : 0.0f;
}

double grpo_masked_mean(const float *x, const float *mask, int n) {
    double s = 0.0, m = 0.0;
    for (int i = 0; i < n; i++) { s += (double)x[i] * mask[i]; m += mask[i]; }
    return s / (m > 1.0 ? m : 1.0);
}

void grpo_loss_params_default(grpo_loss_params *p, int max_completion_length, int gradient_accumulation_steps,
                              int steps_per_generation) {
    memset(p, 0, sizeof *p);
    p->type = LOSS_DAPO;
    p->level = IS_TOKEN;
    p->epsilon_low = p->epsilon_high = 0.2f;
    p->use_bias_correction_kl = 1;
    p->max_completion_length = max_completion_length;
    p->gradient_accumulation_steps = gradient_accumulation_steps;
    p->steps_per_generation = steps_per_generation;
    p->sapo_temperature_pos = 1.0f;
    p->sapo_temperature_neg = 1.05f;
    p->vespo_k_pos = 2.0f;
    p->vespo_lambda_pos = 3.0f;
    p->vespo_k_neg = 3.0f;
    p->vespo_lambda_neg = 2.0f;
}

int grpo_loss_metric_kind(grpo_loss_type type) {
    switch (type) {
    case LOSS_GRPO: case LOSS_BNPO: case LOSS_DR_GRPO: case LOSS_DAPO: case LOSS_LUSPO: return 1;
    case LOSS_CISPO: return 2;
    case LOSS_VESPO: return 3;
    default: return 0;
    }
}

/* The grpo-family term −min(c₁·A, c₂·A) at coefficient c, its derivative d/dc, and the clip indicators on
 * c₁ (after the delta cap). */
static double clip_term(const grpo_loss_params *p, double c, double A, double *dc, int *low, int *high) {
    const double lo = 1.0 - p->epsilon_low, hi = 1.0 + p->epsilon_high;
    double c1 = c, d1 = 1.0;
    if (p->delta > 0 && c > p->delta) { c1 = p->delta; d1 = 0.0; }
    double c2 = c < lo ? lo : c > hi ? hi : c;
    double d2 = (c >= lo && c <= hi) ? 1.0 : 0.0;
    double l1 = c1 * A, l2 = c2 * A;
    if (l1 < l2) *dc = -A * d1;
    else if (l2 < l1) *dc = -A * d2;
    else *dc = -A * 0.5 * (d1 + d2);
    *low = c1 < lo && A < 0;
    *high = c1 > hi && A > 0;
    return -(l1 < l2 ? l1 : l2);
}

/* vespo's φ_b (TRL get_gamma_weights, no vLLM ratio): from the token log-ratios r of one sequence. */
static double vespo_phi(const grpo_loss_params *p, const float *lp, const float *olp, const float *m,
                        const float *is_ratio, int T, double A) {
    const double lower = log(1e-8);
    double s = 0.0;
    for (int t = 0; t < T; t++) {
        double r = (double)lp[t] - (double)olp[t];
        r = r < -20.0 ? -20.0 : r > 20.0 ? 20.0 : r;
        s += r * m[t];
    }
    if (is_ratio)   /* TRL: seq_log_ratio += Σ_t clamp(log(importance_sampling_ratio), log 1e-8, 20), unmasked */
        for (int t = 0; t < T; t++) {
            double l = log((double)is_ratio[t]);   /* log 0 = −inf, clamped */
            s += l < lower ? lower : l > 20.0 ? 20.0 : l;
        }
    const double log_w = s < lower ? lower : s > 20.0 ? 20.0 : s;
    const double w = exp(log_w);
    const double k = A >= 0 ? p->vespo_k_pos : p->vespo_k_neg;
    double lambda = A >= 0 ? p->vespo_lambda_pos : p->vespo_lambda_neg;
    if (lambda < 1e-4) lambda = 1e-4;
    const double phi = exp(lambda + k * log_w - lambda * w);
    return isfinite(phi) ? phi : 0.0;   /* nan_to_num(nan=0, posinf=0, neginf=0) */
}

double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                 const float *entropy, float *dlogp, float *dentropy, grpo_loss_stats *st) {
    return grpo_loss_is(p, B, T, logp, old_logp, ref_logp, adv, mask, entropy_mask, entropy, NULL, dlogp, dentropy, st);
}

double grpo_loss_is(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                    const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                    const float *entropy, const float *is_ratio, float *dlogp, float *dentropy, grpo_loss_stats *st) {
    if (B < 1 || T < 1) GRPO_ABORT("grpo_loss: B=%d, T=%d", B, T);
    if (p->beta > 0 && !ref_logp) GRPO_ABORT("grpo_loss: beta=%g needs ref_logp", (double)p->beta);
    if (p->entropy_coef != 0.0f && (!entropy || !dentropy))
        GRPO_ABORT("grpo_loss: entropy_coef=%g needs entropy and dentropy", (double)p->entropy_coef);
    memset(st, 0, sizeof *st);
    const size_t n = (size_t)B * T;
    double mb_tokens = 0.0;
    for (size_t i = 0; i < n; i++) mb_tokens += mask[i];
    st->tokens = mb_tokens;
    const double accum = p->gradient_accumulation_steps > 0 ? p->gradient_accumulation_steps : 1;
    const double count = mb_tokens > 1.0 ? mb_tokens : 1.0;   /* mask.sum().clamp(min=1) */
    const int seq = p->level == IS_SEQUENCE;
    const int kind = grpo_loss_metric_kind(p->type);
    /* the divisor of the policy loss's sum (policy_loss) and the accumulation divisor after it */
    double post = accum;
    switch (p->type) {
    case LOSS_DAPO: case LOSS_CISPO: case LOSS_VESPO: post = 1.0; break;
    default: break;
    }
    double loss = 0.0, kl_sum = 0.0, low_sum = 0.0, high_sum = 0.0, region_sum = 0.0, cispo_sum = 0.0, phi_sum = 0.0;
    double low_min = NAN, high_max = NAN;
    for (int b = 0; b < B; b++) {
        const float *m = mask + (size_t)b * T;
        const float *lp = logp + (size_t)b * T, *olp = old_logp + (size_t)b * T;
        const float *em = entropy_mask ? entropy_mask + (size_t)b * T : NULL;
        const float *isr = is_ratio ? is_ratio + (size_t)b * T : NULL;
        float *g = dlogp + (size_t)b * T;
        double n_b = 0.0;
        for (int t = 0; t < T; t++) n_b += m[t];
        const double n_clamped = n_b > 1.0 ? n_b : 1.0;
        /* w: the weight of one active token of this sequence in the policy loss before `post` */
        double w;
        switch (p->type) {
        case LOSS_GRPO: case LOSS_SAPO: w = 1.0 / (n_clamped * B); break;
        case LOSS_BNPO: w = 1.0 / (p->bnpo_tokens > 0.0 ? p->bnpo_tokens : count); break;
        case LOSS_DR_GRPO: w = 1.0 / ((double)B * p->max_completion_length); break;
        case LOSS_DAPO: case LOSS_CISPO: case LOSS_VESPO: {
            const double items = p->num_items_in_batch > 1.0 ? p->num_items_in_batch : 1.0;
            const double spg = p->steps_per_generation > 0 ? p->steps_per_generation : 1;
            w = 1.0 / (items * accum / spg);
            break;
        }
        case LOSS_LUSPO: w = 1.0 / B; break;
        default: GRPO_ABORT("grpo_loss: unknown loss type %d", (int)p->type);
        }
        const double A = adv[b];
        double c_seq = 1.0;
        if (seq) {
            double s = 0.0;
            for (int t = 0; t < T; t++) if (m[t] != 0.0f) s += ((double)lp[t] - (double)olp[t]) * m[t];
            c_seq = exp(s / n_clamped);
        }
        const double phi = p->type == LOSS_VESPO ? vespo_phi(p, lp, olp, m, isr, T, A) : 0.0;
        phi_sum += phi;
        double g_c_seq = 0.0;           /* sequence level: Σ_t dL/dc */
        double seq_low = 0.0, seq_high = 0.0;   /* per-sequence clipped fractions (token level: sums) */
        int seq_low_i = 0, seq_high_i = 0, seq_cispo = 0;
        for (int t = 0; t < T; t++) {
            const double c = seq ? c_seq : exp((double)lp[t] - (double)olp[t]);
            int low = 0, high = 0;
            double val = 0.0, dval_dc = 0.0, dval_dlogp = 0.0;
            switch (p->type) {
            case LOSS_CISPO: {
                const double wc = c < p->epsilon_high ? c : p->epsilon_high;
                val = -wc * A * lp[t];
                dval_dlogp = -wc * A;
                if (c > p->epsilon_high && A > 0) { if (seq) seq_cispo = 1; else cispo_sum += m[t]; }
                break;
            }
            case LOSS_SAPO: {
                const double tau = A > 0 ? p->sapo_temperature_pos : p->sapo_temperature_neg;
                const double sg = 1.0 / (1.0 + exp(-tau * (c - 1.0)));
                val = -sg * 4.0 / tau * A;
                dval_dc = -4.0 * A * sg * (1.0 - sg);
                break;
            }
            case LOSS_VESPO:
                val = -phi * A * lp[t];
                dval_dlogp = -phi * A;
                break;
            default:
                val = clip_term(p, c, A, &dval_dc, &low, &high);
                break;
            }
            if (kind == 1) {
                if (seq) { seq_low_i = low; seq_high_i = high; }
                else { seq_low += low * m[t]; seq_high += high * m[t]; }
            }
            if (m[t] == 0.0f) { g[t] = 0.0f; continue; }
            const double e = em ? em[t] : 1.0;
            double dc = e * dval_dc, dl = e * dval_dlogp, lt = e * val;
            if (isr && p->type != LOSS_VESPO) {   /* TRL: per_token_loss * importance_sampling_ratio (detached) */
                const double rho = isr[t];
                dc *= rho; dl *= rho; lt *= rho;
            }
            if (p->beta > 0) {
                const double d = (double)ref_logp[(size_t)b * T + t] - (double)lp[t];
                const double k3 = exp(d) - d - 1.0, dk3 = 1.0 - exp(d);   /* d/dlogp of exp(d) − d − 1 */
                if (p->use_bias_correction_kl) {
                    lt += p->beta * k3 * c;
                    dl += p->beta * dk3 * c;
                    dc += p->beta * k3;
                    kl_sum += k3 * c * m[t];
                } else {
                    lt += p->beta * k3;
                    dl += p->beta * dk3;
                    kl_sum += k3 * m[t];
                }
            }
            const double wm = w * m[t] / post;
            loss += wm * lt;
            double grad = wm * dl;
            if (seq) g_c_seq += wm * dc;
            else grad += wm * dc * c;
            g[t] = (float)grad;
        }
        if (seq && g_c_seq != 0.0) {
            const double share = g_c_seq * c_seq / n_clamped;
            for (int t = 0; t < T; t++) if (m[t] != 0.0f) g[t] = (float)((double)g[t] + share * m[t]);
        }
        if (kind == 1) {
            double fl, fh;
            int have = 1;
            if (seq) {
                fl = seq_low_i; fh = seq_high_i;
                low_sum += seq_low_i; high_sum += seq_high_i; region_sum += seq_low_i || seq_high_i;
            } else {
                have = n_b != 0.0;   /* TRL: (x * mask).sum(-1) / mask.sum(-1) is NaN for an empty row */
                fl = have ? seq_low / n_b : 0; fh = have ? seq_high / n_b : 0;
                low_sum += seq_low; high_sum += seq_high;
            }
            if (have) {
                if (isnan(low_min) || fl < low_min) low_min = fl;
                if (isnan(high_max) || fh > high_max) high_max = fh;
            }
        }
        if (p->type == LOSS_CISPO && seq) cispo_sum += seq_cispo;
    }
    if (kind == 1 && !seq) {   /* region: a token is clipped low or high, never both (A has one sign) */
        region_sum = low_sum + high_sum;
    }
    st->policy_loss = loss * post;
    /* entropy bonus over m' = mask · entropy_mask */
    if (p->entropy_coef != 0.0f) {
        double hsum = 0.0, msum = 0.0;
        for (size_t i = 0; i < n; i++) {
            const double mm = (double)mask[i] * (entropy_mask ? entropy_mask[i] : 1.0f);
            hsum += (double)entropy[i] * mm;
            msum += mm;
        }
        const double den = (msum > 1.0 ? msum : 1.0) * accum;
        loss -= p->entropy_coef * hsum / den;
        for (size_t i = 0; i < n; i++) {
            const double mm = (double)mask[i] * (entropy_mask ? entropy_mask[i] : 1.0f);
            dentropy[i] = (float)(-p->entropy_coef * mm / den);
        }
    } else if (dentropy) {
        memset(dentropy, 0, sizeof(float) * n);
    }
    st->loss = loss;
    if (entropy) st->entropy = grpo_masked_mean(entropy, mask, (int)n);
    st->kl = p->beta > 0 ? kl_sum / count : 0.0;
    const double den = seq ? B : count;
    st->clip_low = low_sum / den;
    st->clip_high = high_sum / den;
    st->clip_region = region_sum / den;
    st->clip_low_min = low_min;
    st->clip_high_max = high_max;
    st->cispo_clip = cispo_sum / den;
    st->vespo_phi_mean = phi_sum / B;
    return loss;
}

void grpo_vllm_is_ratio(const grpo_vllm_is_params *p, int B, int T, const float *old_logp, const float *sampling_logp,
                        const float *mask, float *ratio, grpo_vllm_is_acc *acc) {
    if (B < 1 || T < 1) GRPO_ABORT("grpo_vllm_is_ratio: B=%d, T=%d", B, T);
    const int seq = p->mode == VLLM_IS_SEQUENCE_TRUNCATE || p->mode == VLLM_IS_SEQUENCE_MASK;
    const int truncate = p->mode == VLLM_IS_TOKEN_TRUNCATE || p->mode == VLLM_IS_SEQUENCE_TRUNCATE;
    if (p->mode < VLLM_IS_TOKEN_TRUNCATE || p->mode > VLLM_IS_SEQUENCE_MASK)
        GRPO_ABORT("grpo_vllm_is_ratio: unknown mode %d", (int)p->mode);
    const int has_min = !isnan(p->clip_min), has_max = !isnan(p->clip_max);
    const float cmin = (float)p->clip_min, cmax = (float)p->clip_max;
    for (int b = 0; b < B; b++) {
        const float *o = old_logp + (size_t)b * T, *s = sampling_logp + (size_t)b * T, *m = mask + (size_t)b * T;
        float *r = ratio + (size_t)b * T;
        double sum = 0.0;
        for (int t = 0; t < T; t++) {
            float d = (o[t] - s[t]) * m[t];   /* float32 as TRL's tensors; NaN stays NaN, also times 0 */
            if (isnan(d)) d = 0.0f;           /* torch.nan_to_num(nan=0.0): ratio 1 for unscored tokens */
            if (seq) sum += d;
            else r[t] = (float)exp((double)d);
            if (acc && m[t] != 0.0f) {
                const float a = fabsf(o[t] - s[t]);
                if (!isnan(a)) {
                    acc->diff_sum += a;
                    if (acc->diff_n == 0 || a > acc->diff_max) acc->diff_max = a;
                    acc->diff_n += 1;
                }
            }
        }
        if (seq) {
            const float v = (float)exp(sum);
            for (int t = 0; t < T; t++) r[t] = v;
        }
        for (int t = 0; t < (seq ? 1 : T); t++) {
            float v = r[t];
            if (truncate) {   /* torch.clamp(ratio, min=C_min, max=C_max) */
                if (has_min && v < cmin) v = cmin;
                if (has_max && v > cmax) v = cmax;
            } else if ((has_min && v < cmin) || (has_max && v > cmax)) {
                v = 0.0f;     /* masked_fill(invalid, 0) */
            }
            r[t] = v;
        }
        if (seq) for (int t = 1; t < T; t++) r[t] = r[0];
        if (acc) {
            for (int t = 0; t < (seq ? 1 : T); t++) {
                if (!seq && m[t] == 0.0f) continue;
                const double v = r[t];
                if (acc->ratio_n == 0 || v < acc->ratio_min) acc->ratio_min = v;
                if (acc->ratio_n == 0 || v > acc->ratio_max) acc->ratio_max = v;
                acc->ratio_sum += v;
                acc->ratio_n += 1;
            }
        }
    }
}

void grpo_vllm_is_metrics(const grpo_vllm_is_acc *acc, grpo_vllm_is_stats *out) {
    out->logp_diff_mean = acc->diff_n > 0 ? acc->diff_sum / acc->diff_n : 0.0;
    out->logp_diff_max = acc->diff_n > 0 ? acc->diff_max : 0.0;
    out->ratio_min = acc->ratio_n > 0 ? acc->ratio_min : 0.0;
    out->ratio_mean = acc->ratio_n > 0 ? acc->ratio_sum / acc->ratio_n : 0.0;
    out->ratio_max = acc->ratio_n > 0 ? acc->ratio_max : 0.0;
}

int grpo_vllm_is_mode_from_name(const char *name) {
    static const char *const names[] = {"token_truncate", "token_mask", "sequence_truncate", "sequence_mask"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

int grpo_loss_type_from_name(const char *name) {
    static const char *const names[] = {"grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(name, names[i])) return i;
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
