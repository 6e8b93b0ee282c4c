/*
 * model/llama_power.h: power sampling — completions drawn from the power distribution
 * pi(x) = p(x)^alpha / Z of the model p instead of p itself — by block-wise Metropolis–Hastings, batched
 * over chains with a KV cache (CPU model).
 *
 * Source: A. Karan and Y. Du, "Reasoning with Sampling: Your Base Model is Smarter Than You Think",
 * arXiv 2510.14901 (2025), section 4 (sampling p^alpha with Metropolis–Hastings; the block-wise
 * algorithm, their Algorithm 1), and its public code (aakaran/reasoning-with-sampling,
 * llm_experiments/power_samp_utils.py, mcmc_power_samp), read, not copied. One chain, for
 * stage k = 1, 2, ... (cap_k = min(k * block_size, max_new) generated tokens):
 *   1. extend: sample the chain's tokens up to cap_k (or a stop id) from the proposal q, the model
 *      at temperature 1/alpha: q(x_i | x_<i) = softmax(alpha * z_i)[x_i] for logits z_i;
 *   2. mcmc_steps times: pick t uniformly in [0, |x|) (|x| = generated tokens), regenerate the suffix
 *      y_t.. from q (up to cap_k or a stop id; y_<t = x_<t), and accept y with probability min(1, r):
 *
 *        log r = alpha * (log p(y_t..|x_<t) - log p(x_t..|x_<t))        target pi = p^alpha
 *              + log q(x_t..|x_<t) - log q(y_t..|x_<t)                   proposal q, reverse / forward
 *              + log |x| - log |y|                                        position choice, 1/|y| vs 1/|x|
 *
 *      (llama_power_log_ratio). The first two lines are the paper's acceptance ratio
 *      A(x, y) = min{1, pi(y) q(x|y) / (pi(x) q(y|x))} with pi = p^alpha, written with the tokens
 *      that differ (the shared prefix cancels). The last line is ours: the reference code leaves it
 *      out; it is zero when |x| = |y| (no stop id in reach) and makes the kernel exactly reversible
 *      when a stop id shortens one of them (the forward move picks t with probability 1/|x|, the
 *      reverse move with 1/|y|).
 *   3. a chain whose sequence ends with a stop id after its MCMC steps is finished (as the reference
 *      code stops); otherwise the next stage extends it.
 * At the last stage (cap = max_new) the MH kernel leaves p^alpha over the completions of at most
 * max_new tokens invariant, and regenerating from t = 0 makes it irreducible, so more steps converge
 * to p^alpha; earlier stages only give the last one a good start (tests/model/test_power_sampling.c
 * checks the distribution by exact enumeration).
 *
 * Batched: B chains advance together; each step feeds one token per chain that still has work at
 * that chain's own position (ragged), and chains that are done drop out of the work. Each chain owns
 * two KV-cache rows, the current sequence's and a scratch row for proposals; a proposal from t
 * reuses the scratch row's cache up to where it still agrees with the current row (copying only the
 * difference) instead of prefilling again, and an accepted proposal swaps the two rows. Chain b
 * draws everything (positions, tokens, acceptances) from its own xoshiro256** stream seeded from
 * seeds[b], so its result does not depend on B or on the other chains (up to the float rounding
 * documented at llama_generate: bitwise while at most 32 rows are in a step).
 */
#ifndef GRPO2048_LLAMA_POWER_H
#define GRPO2048_LLAMA_POWER_H

#include <stddef.h>
#include <stdint.h>

#include "model/llama.h"

/* The MH log acceptance ratio log r above: logp_* and logq_* are the summed log-probabilities (nats)
 * of the suffixes from the resampled position on under p (temperature 1) and q (temperature
 * 1/alpha); len_* are the generated lengths |y| (new) and |x| (old), >= 1. */
double llama_power_log_ratio(double alpha, double logp_new, double logp_old, double logq_new, double logq_old,
                             int len_new, int len_old);

typedef double (*llama_power_log_ratio_fn)(double alpha, double logp_new, double logp_old, double logq_new,
                                           double logq_old, int len_new, int len_old);

typedef struct {
    float alpha;             /* power alpha > 0 (the paper uses 4); proposals at temperature 1/alpha */
    int mcmc_steps;          /* MH steps after each block, >= 0 (0: plain sampling at temperature 1/alpha) */
    int block_size;          /* tokens per block, >= 1 */
    const int *stop_ids;     /* NULL = cfg.eos_token_ids; else these num_stop ids end a sequence */
    int num_stop;
    llama_power_log_ratio_fn log_ratio; /* NULL = llama_power_log_ratio; tests put a wrong one here to see
                                           the distribution test fail */
    const int *init_tokens;  /* NULL: chains start empty (the algorithm above). Else (B, max_new): chain b
                                starts from the complete sequence init_tokens[b, 0 .. init_len[b]) (ending
                                with a stop id, or exactly max_new tokens long), and only mcmc_steps MH
                                steps of the last stage run, no blocks: to continue chains, and for the
                                stationarity test (chains started from p^alpha must stay there) */
    const int *init_len;     /* (B) with init_tokens, each in [1, max_new] */
} llama_power_params;

typedef struct {
    int proposals;           /* MH steps taken */
    int accepted;            /* proposals accepted */
    long long tokens;        /* tokens sampled: the blocks' and every proposal's (accepted or not) */
} llama_power_stats;

/* Power-samples B chains. prompts[b] (P[b] tokens, P[b] >= 1, ids in [0, V)) is chain b's prompt;
 * chains whose prompt pointer and length equal an earlier chain's share its prefill (copied cache).
 * max_new >= 1 generated tokens at most, P[b] + max_new <= max_position_embeddings. seeds (B,): chain
 * b's stream. out (B, max_new) tokens (stop id included when produced, then -1); out_len (B,);
 * out_logp (B, max_new) or NULL: log p(token) under the model at temperature 1 (0 past the end);
 * stats (B,) or NULL. Returns 0, or -1 with err (bad arguments, out of memory). Memory: the KV cache
 * is 2 * B rows of (max P + max_new) positions: 4 * L * 2B * T * NKV * HS bytes per key and value. */
int llama_power_sample(llama_model *m, const int *const *prompts, const int *P, int B, int max_new,
                       const llama_power_params *pp, const uint64_t *seeds, int *out, int *out_len, float *out_logp,
                       llama_power_stats *stats, char *err, size_t errlen);

#endif
