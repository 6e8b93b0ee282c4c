/*
 * trainer/grpo.h: the GRPO objective — group-relative advantages, the entropy mask, and the clipped
 * surrogate loss with TRL's options (four aggregations, token or sequence importance ratios, two-sided
 * clipping, the k3 KL) — as pure functions of log-probabilities, so they can be checked against TRL's
 * formulas without a model (tests/trainer/test_grpo.c against the JSON files in tests/fixtures/grpo, which
 * tools/make_grpo_fixtures.py computes from a transcription of TRL's code).
 *
 * Sources: Shao et al. 2024, "DeepSeekMath" (GRPO, arXiv:2402.03300); TRL trl/trainer/grpo_trainer.py
 * (_generate_and_score_completions for the advantages and reward metrics, get_high_entropy_mask,
 * _compute_loss for the loss and its metrics) and grpo_config.py for the names and defaults;
 * Liu et al. 2025, "Understanding R1-Zero-Like Training" (dr_grpo); Yu et al. 2025, "DAPO" (dapo,
 * epsilon_high, mask_truncated_completions); Zheng et al. 2025, "Group Sequence Policy Optimization"
 * (importance_sampling_level: sequence); Prime Intellect 2025, "INTELLECT-2" (delta, two-sided clipping);
 * Wang et al. 2025, "Beyond the 80/20 Rule" (top_entropy_quantile); Schulman 2020, "Approximating KL
 * divergence" (the k3 estimator).
 */
#ifndef GRPO2048_GRPO_H
#define GRPO2048_GRPO_H

typedef enum { LOSS_GRPO, LOSS_BNPO, LOSS_DR_GRPO, LOSS_DAPO } grpo_loss_type;
typedef enum { SCALE_GROUP, SCALE_BATCH, SCALE_NONE } grpo_scale;
typedef enum { IS_TOKEN, IS_SEQUENCE } grpo_is_level;

/* Advantages of N rewards in N/G groups of G consecutive completions, as TRL computes them:
 *   A_i = r_i − mean(group of i), divided by (std_i + 1e-4) unless scale = none, where std_i is the
 *   group's std (scale = group or none) or the whole batch's (scale = batch); std is torch.std's
 *   unbiased (Bessel-corrected) one.
 * rewards: (N,), adv: (N,) out. *reward_std = mean over completions of std_i (TRL `reward_std`);
 * *frac_zero_std = fraction of completions whose std_i is zero as torch.isclose(std, 0) decides,
 * |std| <= 1e-8 (TRL `frac_reward_zero_std`). Either pointer may be NULL. N must be a multiple of G and
 * G ≥ 1 (checked by the config; a violation aborts with file:line). */
void grpo_advantages(const double *rewards, int N, int G, grpo_scale scale, float *adv,
                     double *reward_std, double *frac_zero_std);

/* Completions the reward pool could not score (infra_error; scored[i] == 0) must not move the policy:
 * each such rewards[i] is replaced by the mean of the scored rewards of its group (0 when none of the
 * group is scored), so that its advantage is 0 and the group's mean — and with it every scored
 * completion's sign — stays that of the scored ones (the group's std then also counts the filled-in
 * means). rewards: (N,) in and out; scored: (N,) 0 or 1; N a multiple of G ≥ 1 (else it aborts).
 * Returns how many were replaced. The trainer also masks their tokens out of the loss. */
int grpo_fill_unscored(double *rewards, const unsigned char *scored, int N, int G);

/* TRL's get_high_entropy_mask for one micro-batch: the threshold is torch.quantile (linear
 * interpolation) at `quantile` = 1 − top_entropy_quantile of the entropies of active tokens
 * (mask 1); out[i] = 1 where mask[i] is 1 and entropy[i] >= threshold, else 0 (all 0 when no token is
 * active). entropy, mask, out: (n,) (B×T flattened). quantile in [0, 1]. */
void grpo_entropy_mask(const float *entropy, const float *mask, int n, double quantile, float *out);

/* Masked mean Σ x·mask / max(Σ mask, 1) over (n,) arrays (TRL's masked_batch_mean for (B, T) inputs):
 * the per-micro-batch `entropy` metric. */
double grpo_masked_mean(const float *x, const float *mask, int n);

typedef struct {
    grpo_loss_type type;
    grpo_is_level level;      /* token: one ratio per token; sequence (GSPO): exp(mean token log-ratio) */
    float epsilon_low;        /* ε: ratio clipped below at 1 − ε (TRL `epsilon`, 0.2) */
    float epsilon_high;       /* ε_high: ratio clipped above at 1 + ε_high (defaults to ε) */
    float delta;              /* > 0: two-sided clipping, the unclipped ratio capped at delta; 0 = off */
    float beta;               /* KL coefficient; 0 = no reference model */
    int max_completion_length;/* dr_grpo's constant normalizer, tokens */
    int gradient_accumulation_steps; /* micro-batches per optimizer step (TRL's current_gradient_accumulation_steps) */
    double num_items_in_batch;/* dapo: completion tokens of the whole generation batch (TRL num_items_in_batch) */
} grpo_loss_params;

typedef struct {
    double loss;              /* this micro-batch's contribution to the step's loss */
    double tokens;            /* active tokens (Σ mask) */
    double kl;                /* masked mean of the k3 KL over active tokens (0 when beta = 0): TRL `kl` */
    double clip_low;          /* masked mean of (coef_1 < 1 − ε_low and A < 0): TRL clip_ratio/low_* */
    double clip_high;         /* masked mean of (coef_1 > 1 + ε_high and A > 0): clip_ratio/high_* */
    double clip_region;       /* masked mean of either: clip_ratio/region_mean */
} grpo_loss_stats;

/* The clipped surrogate loss of one micro-batch of B sequences and its gradient w.r.t. logp, as TRL's
 * _compute_loss computes it:
 *   log-ratio  r = logp − old_logp (token), or per sequence r_b = Σ_t r·mask / max(Σ_t mask, 1) (sequence)
 *   coef_1 = exp(r), coef_2 = clamp(coef_1, 1 − ε_low, 1 + ε_high); with delta: coef_1 = min(coef_1, delta)
 *   l = −min(coef_1·A, coef_2·A) · entropy_mask + β·(exp(ref − logp) − (ref − logp) − 1)
 * aggregated over active tokens (mask 1):
 *   grpo:    mean over sequences of (Σ_t l·mask / max(Σ_t mask, 1)), / gradient_accumulation_steps
 *   bnpo:    Σ l·mask / max(Σ mask, 1) over the micro-batch,        / gradient_accumulation_steps
 *   dr_grpo: Σ l·mask / (B · max_completion_length),                / gradient_accumulation_steps
 *   dapo:    Σ l·mask / num_items_in_batch
 * The gradient is that of autograd: the clamps pass gradient only inside their ranges (ends included)
 * and torch.min splits it evenly on ties. Clip statistics use coef_1 after the delta cap, and at the
 * sequence level are means over the B sequences (TRL's masked_batch_mean of a (B, 1) tensor).
 * logp, old_logp, ref_logp (NULL when β = 0), mask, entropy_mask (NULL = all ones), dlogp: (B, T);
 * adv: (B,). dlogp receives dLoss/dlogp (0 where mask is 0). Returns the micro-batch loss; fills *st. */
double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                 float *dlogp, grpo_loss_stats *st);

/* Parse "grpo", "bnpo", "dr_grpo", "dapo"; "group", "batch", "none"; "token", "sequence".
 * Each returns -1 for an unknown name. */
int grpo_loss_type_from_name(const char *name);
int grpo_scale_from_name(const char *name);
int grpo_is_level_from_name(const char *name);

#endif
