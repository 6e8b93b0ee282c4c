/*
 * trainer/grpo.h: the GRPO objective as TRL 1.16.0 computes it — group-relative advantages, the completion
 * statistics of a generation, the entropy mask, and the policy loss with TRL's eight loss types, token or
 * sequence importance ratios, two-sided clipping, the bias-corrected k3 KL and the entropy bonus — as pure
 * functions of log-probabilities, so they can be checked against TRL without a model
 * (tests/trainer/test_grpo.c against tests/fixtures/grpo/{generation,loss}.json, which tools/make_grpo_fixtures.py computes
 * by calling the installed trl 1.16.0's own GRPOTrainer methods).
 *
 * Every formula's source is trl 1.16.0 `trl/trainer/grpo_trainer.py`, class GRPOTrainer:
 * _generate_and_score_completions (advantages, num_items_in_batch, reward metrics), _generate (completion
 * length metrics), get_high_entropy_mask, get_gamma_weights (vespo) and _compute_loss (the loss, its
 * normalisers and the metrics it logs); names and defaults from `trl/trainer/grpo_config.py`.
 * Papers: Shao et al. 2024, "DeepSeekMath" (GRPO); Liu et al. 2025, "Understanding R1-Zero-Like Training"
 * (dr_grpo); Yu et al. 2025, "DAPO" (dapo, epsilon_high, mask_truncated_completions); Zheng et al. 2025,
 * "Group Sequence Policy Optimization" (sequence level); Prime Intellect 2025, "INTELLECT-2" (delta);
 * Wang et al. 2025, "Beyond the 80/20 Rule" (top_entropy_quantile); MiniMax 2025, "MiniMax-M1" (cispo);
 * "Soft Adaptive Policy Optimization" (sapo, arXiv:2511.20347); "Length-Unbiased Sequence Policy
 * Optimization" (luspo, arXiv:2602.05261); VESPO (vespo, TRL's get_gamma_weights); DeepSeek-V3.2
 * (use_bias_correction_kl, arXiv:2512.02556); Schulman 2020, "Approximating KL divergence" (k3).
 */
#ifndef GRPO2048_GRPO_H
#define GRPO2048_GRPO_H

typedef enum {
    LOSS_GRPO, LOSS_BNPO, LOSS_DR_GRPO, LOSS_DAPO, LOSS_CISPO, LOSS_SAPO, LOSS_LUSPO, LOSS_VESPO
} grpo_loss_type;
typedef enum { SCALE_GROUP, SCALE_BATCH, SCALE_NONE } grpo_scale;
typedef enum { IS_TOKEN, IS_SEQUENCE } grpo_is_level;

/* Advantages of N rewards in N/G groups of G consecutive completions (TRL _generate_and_score_completions,
 * multi_objective_aggregation "sum_then_normalize"):
 *   A_i = r_i − mean(group of i), divided by (std_i + 1e-4) unless scale = none, where std_i is the
 *   group's std (scale = group or none) or the whole batch's (scale = batch); std is TRL's nanstd,
 *   Bessel-corrected (0 for a single value).
 * rewards: (N,), adv: (N,) out. *reward_std = the std of all N rewards (TRL `reward_std`, nanstd(rewards));
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

/* Mean of x (n,), 0 for n = 0; and the Bessel-corrected standard deviation (TRL's nanstd without NaNs; 0
 * for n < 2, where TRL gives NaN). The reward metrics of _generate_and_score_completions: `reward`,
 * rewards/<f>/mean and rewards/<f>/std. */
double grpo_mean(const double *x, int n);
double grpo_std(const double *x, int n);

/* The completion statistics of one generation of n completions (TRL _generate for the lengths,
 * _generate_and_score_completions for num_items_in_batch). len: (n,) generated tokens, stop token included;
 * terminated: (n,) 1 when the completion ends with a stop token (TRL: its last id is an eos or the pad id).
 * Lengths are before masking; num_items_in_batch counts the loss tokens after mask_truncated_completions
 * zeroes the truncated completions (TRL counts loss_mask.sum() after masking). The terminated-length
 * statistics are 0 when no completion terminated (TRL's torch.zeros(1) edge case). n ≥ 1. */
typedef struct {
    double mean_length, min_length, max_length;                          /* completions/{mean,min,max}_length */
    double mean_terminated_length, min_terminated_length, max_terminated_length;
    double clipped_ratio;                                                /* completions/clipped_ratio */
    double num_items_in_batch;                                           /* loss tokens (dapo's normaliser) */
} grpo_completion_stats;
void grpo_completion_stats_of(const int *len, const int *terminated, int n, int mask_truncated_completions,
                              grpo_completion_stats *out);

/* TRL's get_high_entropy_mask for one micro-batch, with torch.quantile's float32 arithmetic: the threshold
 * is torch.quantile (linear interpolation: q rounded to float32, the rank q·(k−1), the weight and
 * torch.lerp in float32) at `quantile` (TRL passes 1 − top_entropy_quantile) of the entropies of active tokens
 * (mask 1); out[i] = 1 where mask[i] is 1 and entropy[i]·mask[i] >= threshold, else 0 (all 0 when no token
 * is active). entropy, mask, out: (n,) (B×T flattened). quantile in [0, 1] (else aborts with file:line). */
void grpo_entropy_mask(const float *entropy, const float *mask, int n, double quantile, float *out);

/* Masked mean Σ x·mask / max(Σ mask, 1) over (n,) arrays (TRL's global_masked_mean on one process). */
double grpo_masked_mean(const float *x, const float *mask, int n);

typedef struct {
    grpo_loss_type type;
    grpo_is_level level;      /* token: one ratio per token; sequence (GSPO): exp(mean token log-ratio) */
    float epsilon_low;        /* ε: ratio clipped below at 1 − ε (TRL `epsilon`, 0.2) */
    float epsilon_high;       /* ε_high: ratio clipped above at 1 + ε_high (defaults to ε); cispo: the cap on the ratio */
    float delta;              /* > 0: two-sided clipping, the unclipped ratio capped at delta; 0 = off */
    float beta;               /* KL coefficient; 0 = no reference model */
    int use_bias_correction_kl; /* TRL default 1: the k3 KL multiplied by the importance ratio coef_1 (with its gradient) */
    int max_completion_length;/* dr_grpo's constant normalizer, tokens */
    int gradient_accumulation_steps; /* micro-batches per optimizer step (TRL's current_gradient_accumulation_steps) */
    int steps_per_generation; /* micro-batches a generation is split into (dapo/cispo/vespo normaliser) */
    double num_items_in_batch;/* dapo, cispo, vespo: loss tokens of the whole generation (TRL num_items_in_batch) */
    float sapo_temperature_pos, sapo_temperature_neg;   /* sapo: gate temperatures (TRL 1.0, 1.05) */
    float vespo_k_pos, vespo_lambda_pos, vespo_k_neg, vespo_lambda_neg; /* vespo: Gamma weights (2, 3, 3, 2) */
    float entropy_coef;       /* entropy bonus: loss −= entropy_coef · mean entropy / accumulation; 0 = off */
    double bnpo_tokens;       /* bnpo: > 0 replaces max(Σ mask, 1) as the normaliser; data-parallel runs pass
                                 max(Σ mask over every rank's share of the micro-batch, 1) / world size, so that
                                 the ranks' summed gradients equal one process's over the whole micro-batch
                                 (trainer/dist.h, docs/scale.md); 0 = this micro-batch's own Σ mask */
} grpo_loss_params;

/* Fills p with TRL 1.16.0's GRPOConfig defaults (loss_type dapo, token level, ε = ε_high = 0.2, no delta,
 * β = 0, use_bias_correction_kl true, sapo/vespo defaults, entropy_coef 0) and the given layout. */
void grpo_loss_params_default(grpo_loss_params *p, int max_completion_length, int gradient_accumulation_steps,
                              int steps_per_generation);

typedef struct {
    double loss;              /* this micro-batch's contribution to the step's loss (what is differentiated) */
    double policy_loss;       /* TRL `policy_loss`: the loss before the accumulation divisor and the entropy bonus */
    double tokens;            /* active tokens (Σ mask) */
    double entropy;           /* masked mean entropy over active tokens (TRL `entropy`); 0 when entropy is NULL */
    double kl;                /* masked mean of the (bias-corrected) k3 KL (0 when beta = 0): TRL `kl` */
    double clip_low;          /* grpo family: TRL clip_ratio/low_mean of this micro-batch */
    double clip_high;         /* clip_ratio/high_mean */
    double clip_region;       /* clip_ratio/region_mean */
    double clip_low_min;      /* clip_ratio/low_min: min over sequences of each one's clipped fraction (NaN: none) */
    double clip_high_max;     /* clip_ratio/high_max: max over sequences (NaN: none) */
    double cispo_clip;        /* cispo: TRL cispo_clip_ratio */
    double vespo_phi_mean;    /* vespo: TRL vespo/phi_seq_mean */
} grpo_loss_stats;

/* Which of the loss metrics TRL logs for a loss type: 1 for the clip_ratio/... family (grpo, bnpo, dr_grpo,
 * dapo, luspo), 2 for cispo_clip_ratio (cispo), 3 for vespo/phi_seq_mean (vespo), 0 for none (sapo). */
int grpo_loss_metric_kind(grpo_loss_type type);

/* The loss of one micro-batch of B sequences and its gradient w.r.t. logp (and entropy), as TRL 1.16.0's
 * _compute_loss computes it (trl/trainer/grpo_trainer.py, GRPOTrainer._compute_loss):
 *   log-ratio  r = logp − old_logp (token), or per sequence r_b = Σ_t r·mask / max(Σ_t mask, 1) (sequence)
 *   c = coef_1 = exp(r)
 *   KL_t = exp(ref − logp) − (ref − logp) − 1, times c when use_bias_correction_kl (c carries gradient)
 *   per-token policy term ℓ by loss type (A the sequence's advantage):
 *     grpo, bnpo, dr_grpo, dapo, luspo: −min(c₁·A, clamp(c, 1−ε, 1+ε_high)·A), c₁ = min(c, delta) with delta
 *     cispo: −sg(min(c, ε_high))·A·logp            (sg = no gradient)
 *     sapo:  −σ(τ(c − 1))·4/τ·A, τ = sapo_temperature_pos if A > 0 else sapo_temperature_neg
 *     vespo: −sg(φ_b)·A·logp, φ_b = exp(λ + k·log w − λ·w), log w = clamp(Σ_t clamp(r, ±20)·mask,
 *            log 1e-8, 20), (k, λ) = (k_pos, λ_pos) if A >= 0 else (k_neg, λ_neg) (TRL get_gamma_weights)
 *   l = ℓ · entropy_mask + β·KL, aggregated over active tokens (mask 1), with a = gradient_accumulation_steps:
 *     grpo, sapo:        mean over sequences of Σ_t l·mask / max(Σ_t mask, 1),          / a
 *     bnpo:              Σ l·mask / max(Σ mask, 1) (or / bnpo_tokens when > 0),             / a
 *     dr_grpo:           Σ l·mask / (B · max_completion_length),                         / a
 *     dapo, cispo, vespo: Σ l·mask / (max(num_items_in_batch, 1) · a / steps_per_generation)
 *     luspo:             mean over sequences of Σ_t l·mask,                              / a
 *   entropy bonus (entropy_coef ≠ 0): loss −= entropy_coef · Σ H·m' / max(Σ m', 1) / a, m' = mask·entropy_mask.
 * The gradient is autograd's: clamps pass gradient inside their ranges (ends included), torch.min splits it
 * evenly on ties. Metrics as TRL logs them: clip indicators use c₁ (after the delta cap); means are masked
 * token means (token level) or means over the B sequences (sequence level); clip_low_min / clip_high_max
 * take min / max over sequences of the per-sequence fraction, skipping empty sequences at the token level
 * (TRL's nanmin / nanmax of 0/0).
 * logp, old_logp, ref_logp (NULL when β = 0), mask, entropy_mask (NULL = all ones), entropy (NULL when
 * entropy_coef = 0 and the entropy metric is not wanted), dlogp, dentropy (NULL when entropy_coef = 0):
 * (B, T); adv: (B,). dlogp receives dLoss/dlogp and dentropy dLoss/dentropy (0 where mask is 0).
 * Returns the micro-batch loss; fills *st. Aborts (file:line) on B or T < 1, β > 0 without ref_logp, or
 * entropy_coef ≠ 0 without entropy or dentropy. */
double grpo_loss(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                 const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                 const float *entropy, float *dlogp, float *dentropy, grpo_loss_stats *st);

/* TRL's truncated / masked importance-sampling correction of the sampler-trainer mismatch
 * (trl 1.16.0 grpo_trainer.py, GRPOTrainer._generate_and_score_completions, "Compute the importance
 * sampling ratio when using vLLM"; keys vllm_importance_sampling_mode / _clip_min / _clip_max of GRPOConfig;
 * Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL training" (TIS)).
 * TRL applies it to vLLM's log-probabilities; grpo2048 applies it to its own generator's, which run at another
 * precision (or through other kernels) than the training forward. */
typedef enum {
    VLLM_IS_TOKEN_TRUNCATE, VLLM_IS_TOKEN_MASK, VLLM_IS_SEQUENCE_TRUNCATE, VLLM_IS_SEQUENCE_MASK
} grpo_vllm_is_mode;

typedef struct {
    grpo_vllm_is_mode mode;
    double clip_min;          /* C_min; NAN = None (no lower bound) */
    double clip_max;          /* C_max; NAN = None (no upper bound) */
} grpo_vllm_is_params;

/* Running sums of the five metrics over the micro-batches of one generation (zero it to start). */
typedef struct {
    double diff_sum, diff_max, diff_n;       /* |old − sampling| over active tokens whose difference is not NaN */
    double ratio_sum, ratio_min, ratio_max, ratio_n;   /* the ratios TRL flattens (see grpo_vllm_is_ratio) */
} grpo_vllm_is_acc;

/* The metrics TRL logs once per generation: sampling/sampling_logp_difference/mean|max and
 * sampling/importance_sampling_ratio/min|mean|max (each 0 when nothing was counted, as TRL's empty case). */
typedef struct {
    double logp_diff_mean, logp_diff_max, ratio_min, ratio_mean, ratio_max;
} grpo_vllm_is_stats;

/* The importance-sampling ratio of B sequences (one micro-batch, or the whole generation):
 *   d_t = (old_t − sampling_t)·mask_t, 0 where it is NaN (a token the sampler could not score: ratio 1);
 *   token modes:    ρ_t = exp(d_t);   sequence modes: ρ_b = exp(Σ_t d_t), written to every t of row b;
 *   *_truncate:     ρ = clamp(ρ, C_min, C_max) (a NAN bound is absent);
 *   *_mask:         ρ = 0 where ρ < C_min or ρ > C_max.
 * Comparisons and the stored value are float32, as TRL's tensors. old_logp, sampling_logp (NaN allowed),
 * mask, ratio: (B, T); ratio is written at every position (padding included: d = 0 there, as TRL's padded
 * tensor). acc (may be NULL) accumulates the metrics' sums: the logp difference |old − sampling| over tokens
 * with mask != 0 and a non-NaN difference; the ratio over tokens with mask != 0 (token modes) or over all B
 * rows (sequence modes, TRL's flatten of the (B, 1) ratio). Aborts (file:line) on B or T < 1 or an unknown
 * mode. */
void grpo_vllm_is_ratio(const grpo_vllm_is_params *p, int B, int T, const float *old_logp, const float *sampling_logp,
                        const float *mask, float *ratio, grpo_vllm_is_acc *acc);

/* The five metrics from accumulated sums (TRL: mean = Σ / count, max, min; 0 for an empty set). */
void grpo_vllm_is_metrics(const grpo_vllm_is_acc *acc, grpo_vllm_is_stats *out);

/* "token_truncate", "token_mask", "sequence_truncate", "sequence_mask" -> the mode, or -1. */
int grpo_vllm_is_mode_from_name(const char *name);

/* grpo_loss with TRL's importance-sampling ratio is_ratio (B, T) from grpo_vllm_is_ratio, detached, or NULL
 * (no correction: grpo_loss itself). As TRL's _compute_loss: for every loss type but vespo the per-token policy
 * term (after the entropy mask, before the β·KL term) is multiplied by is_ratio; for vespo the ratio enters the
 * Gamma weight instead: log w_b += Σ_t clamp(log ρ_{b,t}, log 1e-8, 20) over all T positions (TRL
 * get_gamma_weights; padding contributes log ρ of a zero difference, 0 when C_min <= 1 <= C_max, which the config
 * requires for vespo). Everything else as grpo_loss. */
double grpo_loss_is(const grpo_loss_params *p, int B, int T, const float *logp, const float *old_logp,
                    const float *ref_logp, const float *adv, const float *mask, const float *entropy_mask,
                    const float *entropy, const float *is_ratio, float *dlogp, float *dentropy, grpo_loss_stats *st);

/* Parse "grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"; "group", "batch", "none";
 * "token", "sequence". Each returns -1 for an unknown name. */
int grpo_loss_type_from_name(const char *name);
int grpo_scale_from_name(const char *name);
int grpo_is_level_from_name(const char *name);

#endif
