/*
 * trainer/rollout.h: one rollout — sample completions of a prompt on the backend and score them with the
 * reward pool — with the pool working while the other rows still decode (issue 9: "rewards while the GPU
 * works"; on the CPU the same mechanism lets the workers run during generation).
 *
 * With overlap, a completion is decoded to text and sent to the pool (reward_batch_add) in the decode step
 * where its row stops (the generators' on_step hook), and the pool's results are collected between decode
 * steps (reward_batch_poll); after the last row the call waits for the remaining results only. The jobs,
 * their seeds and the results are those of the sequential order (generate everything, then
 * reward_pool_score): generation does not depend on the hook, and each result lands in its completion's
 * slot. Only timing-dependent outcomes (a strategy near its time limit) can differ, as between any two runs.
 */
#ifndef GRPO2048_ROLLOUT_H
#define GRPO2048_ROLLOUT_H

#include <stdint.h>
#include <stdio.h>

#include "rewards/rewards.h"
#include "trainer/backend.h"
#include "trainer/gpu_telemetry.h"
#include "trainer/policy.h"

/* Wall times of one rollout, in seconds. */
typedef struct {
    double generation_time;    /* backend_generate: prefill + decode (with overlap, the hook's work included) */
    double reward_time;        /* seconds the pool had work (jobs queued or running; with overlap measured at
                                  decode-step granularity): the whole scoring's wall time without overlap */
    double reward_wait_time;   /* end of generation -> last result in: what the step waited for the rewards;
                                  reward_time - reward_wait_time was hidden behind generation */
} rollout_times;

/* What one rollout samples and scores. */
typedef struct {
    backend *b;
    const policy *pol;              /* decodes completions (policy_decode) */
    reward_pool *pool;
    const int *prompt;              /* (P,) token ids */
    int P, n, max_new;              /* n rows (completions), at most max_new new tokens each */
    llama_sampling sampling;        /* on_step is the rollout's own */
    uint64_t seed;                  /* row i draws from the stream seeded from (seed, i) */
    int jobs_per_row;               /* reward jobs per completion (>= 1): job j = i * jobs_per_row + k */
    const uint64_t *job_seeds;      /* (n * jobs_per_row,) base game seed of each job */
    int overlap;                    /* 1: score while generating; 0: generate all, then score (the caller
                                       passes 0 for a sequential pool, whose log would interleave with the
                                       progress bar) */
    FILE *log;                      /* the sequential pool's per-completion log (rewards.parallel false), or NULL */
    gpu_telemetry *gpu;             /* or NULL: told the phase (generation, then reward while it waits for the
                                       last results) */
} rollout_spec;

/* Samples spec->n completions and scores them. Outputs (caller-allocated): tokens (n, max_new) and len (n,)
 * as backend_generate, logp (n, max_new) or NULL as its out_logp, text (n,): text[i] = policy_decode of row
 * i (malloc'd; the caller frees; entries must be NULL or owned on entry, they are freed first), res
 * (n * jobs_per_row,) the pool's results in job order, t the times.
 * Returns 0, or -1 with err: "generation: ..." (backend_generate's message), "rewards: ..." (the pool
 * failed: see reward_pool_score), or out of memory. */
int rollout_run(const rollout_spec *spec, int *tokens, int *len, float *logp, char **text, reward_result *res,
                rollout_times *t, char *err, size_t errlen);

#endif
