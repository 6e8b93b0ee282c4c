/*
 * trainer/grpo.h: the GRPO objective — group-relative advantages and the clipped surrogate loss with
 * TRL's four aggregations — as pure functions of log-probabilities, so they can be checked against
 * TRL's formulas without a model.
 *
 * Sources: Shao et al. 2024, "DeepSeekMath" (GRPO, arXiv:2402.03300); TRL trl/trainer/grpo_trainer.py
 * (_compute_loss, _generate_and_score_completions) and grpo_config.py for the names and defaults;
 * Liu et al. 2025 "Understanding R1-Zero-Like Training" (dr_grpo); Yu et al. 2025 "DAPO" (dapo);
 * Schulman 2020, "Approximating KL divergence" (the k3 estimator).
 */
#ifndef GRPO2048_GRPO_H
#define GRPO2048_GRPO_H

typedef enum { LOSS_GRPO, LOSS_BNPO, LOSS_DR_GRPO, LOSS_DAPO } grpo_loss_type;
typedef enum { SCALE_GROUP, SCALE_BATCH, SCALE_NONE } grpo_scale;

/* Advantages of N rewards in N/G groups of G consecutive completions (TRL): A_i = r_i − mean(group),
 * divided by (std + 1e-4) where std is the group's (scale=group), the whole batch's (batch), or not at
 * all (none); std is the unbiased (Bessel-corrected) standard deviation, as torch.std computes it.
 * rewards: (N,), adv: (N,) out. *mean_group_std: mean over groups of the group std (TRL's `reward_std`);
 * *frac_zero_std: fraction of groups whose rewards are all equal (TRL's `frac_reward_zero_std`).
 * N must be a multiple of G (checked by the config); G ≥ 1. */
void grpo_advantages(const double *rewards, int N, int G, grpo_scale scale, float *adv,
                     double *mean_group_std, double *frac_zero_std);

typedef struct {
    grpo_loss_type type;
    float epsilon_low;        /* ε: ratio clipped below at 1 − ε (TRL `epsilon`, 0.2) */
    float epsilon_high;       /* ε_high: ratio clipped above at 1 + ε_high (defaults to ε) */
    float beta;               /* KL coefficient; 0 = no reference model */
    int max_completion_length;/* dr_grpo's constant normalizer, tokens */
    int gradient_accumulation_steps; /* micro-batches per optimizer step */
    double num_items_in_batch;/* dapo: active completion tokens in the whole accumulated batch */
} grpo_loss_params;

typedef struct {
    double loss;              /* this micro-batch's contribution to the step's loss */
    double kl_sum;            /* Σ over active tokens of the k3 KL (0 when beta = 0) */
    double tokens;            /* active tokens in this micro-batch */
    double clip_low;          /* tokens with A < 0 and ratio < 1 − ε_low   (TRL clip_ratio/low_*) */
    double clip_high;         /* tokens with A > 0 and ratio > 1 + ε_high  (clip_ratio/high_*) */
} grpo_loss_stats;

/* The clipped surrogate loss of one micro-batch and its gradient w.r.t. logp.
 * Per token (TRL): ratio = exp(logp − old_logp); l = −min(ratio·A, clip(ratio, 1−ε_low, 1+ε_high)·A)
 *   + β·(exp(ref − logp) − (ref − logp) − 1).
 * Aggregation over active tokens (mask 1), one micro-batch of B sequences out of the accumulated batch:
 *   grpo:    mean over sequences of (Σ_t l·mask / Σ_t mask), divided by gradient_accumulation_steps
 *   bnpo:    Σ l·mask / Σ mask over the micro-batch, divided by gradient_accumulation_steps
 *   dr_grpo: Σ l·mask / (B · max_completion_length), divided by gradient_accumulation_steps
 *   dapo:    Σ l·mask / num_items_in_batch (the whole accumulated batch's active tokens)
 * logp, old_logp, ref_logp (NULL when β = 0), mask, dlogp: (B, T); adv: (B,).
 * dlogp receives dLoss/dlogp (0 where mask is 0). Returns the micro-batch loss; fills *st. */
double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, float *dlogp,
                 grpo_loss_stats *st);

/* Parses "grpo", "bnpo", "dr_grpo", "dapo" (returns -1 if unknown) and "group", "batch", "none". */
int grpo_loss_type_from_name(const char *name);
int grpo_scale_from_name(const char *name);

#endif
