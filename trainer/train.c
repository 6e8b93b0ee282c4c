/*
 * trainer/train.c: `grpo2048 train CONFIG.yaml [--resume [CHECKPOINT_DIR|latest]]` — the GRPO loop.
 *
 * Steps, micro-steps and generations, as TRL's GRPOTrainer (_prepare_inputs) arranges them:
 *   one optimizer step = gradient_accumulation_steps (A) micro-steps of per_device_train_batch_size (B)
 *   completions; a generation samples generation_batch_size = B × steps_per_generation (S) completions
 *   (num_generations per group, every group from the same prompt), scores them, computes the
 *   group-relative advantages, shuffles them and splits them into S micro-batches; micro-step m uses
 *   micro-batch m mod S of the generation made at micro-step S·μ·floor(m / (S·μ)), so each generation
 *   is used num_iterations (μ) times. When a generation outlives the optimizer step that made it
 *   (A mod S·μ ≠ 0), the generating policy's log-probabilities are kept as old_logp (a forward pass
 *   per micro-batch right after the generation); otherwise old_logp = logp, detached, as in TRL.
 *   With beta > 0 the reference model's log-probabilities are computed at generation time too.
 * One step, data flowing one way (see ../shared/DESIGN.md):
 *   generate  (when due) one llama_generate over all groups' rows, seeded game_seed_mix(seed, generation number, 0);
 *   reward    the sandboxed reward pool; completions of a group play the same game seeds,
 *             game_seed_mix(seed ^ 0x2048, generation number, group);
 *   update    per micro-batch: forward → grpo_loss (trainer/grpo.c) → backward; then clip → AdamW →
 *             next LR (a function of the step) → optional reference-model sync;
 *   evaluate  every eval_steps: greedy (or sampled) completions play eval_games fixed-seed games;
 *   log       one SQLite transaction per step (opened at the step's start: the completions of its
 *             generations and its metrics, TRL's names; see docs/metrics.md) and the progress bar;
 *   save      every save_steps, at the end and when interrupted: an atomic checkpoint folder.
 * The generation number (1-based) is floor(micro-step / (S·μ)) + 1, which is the step number in the
 * default layout (S = A, μ = 1); every random stream is a function of (seed, generation number,
 * index), so a run resumed from a checkpoint (weights, optimizer moments, step, token count, the
 * buffered generation when one is still in use, the synced reference model) repeats the uninterrupted
 * run bit for bit on the CPU.
 *
 * Signals: the first SIGINT/SIGTERM lets the current step finish, then a checkpoint is written, the run
 * is marked 'interrupted' and the exit status is 128 + the signal; a second one ends the process at
 * once (the default action), which is safe: metrics.sqlite is transactional and checkpoints atomic.
 * The reward pool is forked first, before any OpenMP or BLAS work, so its workers start single-threaded.
 *
 * The model runs on the backend `device` picks (trainer/backend.h: the CPU, or a GPU through
 * model/cuda), chosen once after the reward pool has forked; the loop only calls the backend. The host
 * model and optimizer state stay the source of truth for files: before a checkpoint or the final save
 * the backend copies its weights and moments back (backend_download), after loading them (start,
 * resume) the backend is created from them, so checkpoints are the same files on either device.
 *
 * The training, old and reference log-probabilities and the entropies are those of logits / temperature,
 * as TRL computes them (temperature 0, greedy sampling, which TRL refuses, uses 1). The loss, its
 * normalisers and the metrics are TRL 1.16.0's (trainer/grpo.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/rewards.h"
#include "trainer/backend.h"
#include "trainer/checkpoint.h"
#include "trainer/dist.h"
#include "trainer/gpu_telemetry.h"
#include "trainer/grpo.h"
#include "trainer/metrics.h"
#include "trainer/optim.h"
#include "trainer/policy.h"
#include "trainer/progress.h"
#include "trainer/rollout.h"
#include "trainer/summary.h"
#include "trainer/stop_signal.h"

/* The temperature the log-probabilities are computed at: TRL divides the logits by `temperature`. */
static float logprob_temperature(const grpo_config *c) { return c->temperature > 0 ? (float)c->temperature : 1.0f; }

#define TRAIN_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

/* Keys a resumed run must share with its checkpoint: they fix the batch layout, the random streams,
 * the prompt, and what the checkpoint's state holds. */
static const char *const resume_must_match[] = {
    "seed", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
    "steps_per_generation", "generation_batch_size", "num_iterations", "max_completion_length", "beta",
    "sync_ref_model", "prompt", "system_prompt", "chat_template", NULL,
};
static const char *const resume_ignore[] = {"resume_from_checkpoint", NULL};

/* ------------------------------------------------------------------------------------------------ */
/* A generation: the completions of one llama_generate round, their rewards, advantages, the order   */
/* they are split into micro-batches, and the log-probabilities kept for the loss.                   */

typedef struct {
    double reward, reward_std, frac_zero_std;
    double func_mean[RF_COUNT], func_std[RF_COUNT];
    double mean_len, min_len, max_len, mean_term, min_term, max_term, clipped_ratio;
    double generation_time, reward_time, reward_wait_time;   /* seconds (trainer/rollout.h) */
    grpo_vllm_is_stats vis;                /* sampling/... metrics of the importance-sampling correction */
    double tokens;                         /* prompt + completion tokens */
    int timeouts, stuck, wins;
    int infra_errors;                      /* completions the reward pool could not score (infra_error) */
} gen_metrics;

typedef struct {
    int n, max_new;        /* completions (generation_batch_size), max_completion_length */
    int number;            /* 1-based generation number; 0 = empty */
    int *tokens;           /* (n, max_new) generated ids, -1 past the end */
    int *len;              /* (n,) generated tokens, stop token included */
    int *terminated;       /* (n,) 1 when the row ended with a stop token */
    char **text;           /* (n,) decoded completions */
    double *reward;        /* (n,) */
    float *adv;            /* (n,) */
    reward_result *res;    /* (n,) */
    uint64_t *seeds;       /* (n,) game seeds */
    int *order;            /* (n,) micro-batch s holds completions order[s·B .. s·B + B) */
    float *old_logp;       /* (n, max_new) log p of each generated token under the generating policy, or NULL */
    float *ref_logp;       /* (n, max_new) under the reference model, or NULL */
    float *samp_logp;      /* (n, max_new) the generator's processed log-probs (importance-sampling correction), or NULL */
    grpo_vllm_is_acc vis_acc; /* the correction's metric sums over this generation's micro-batches */
    double num_items;      /* loss tokens after mask_truncated_completions: TRL's num_items_in_batch */
    gen_metrics m;
} generation;

static void gen_free(generation *g) {
    if (g->text) for (int i = 0; i < g->n; i++) free(g->text[i]);
    free(g->tokens); free(g->len); free(g->terminated); free(g->text); free(g->reward); free(g->adv);
    free(g->res); free(g->seeds); free(g->order); free(g->old_logp); free(g->ref_logp); free(g->samp_logp);
    memset(g, 0, sizeof *g);
}

static int gen_alloc(generation *g, int n, int max_new, int keep_old, int keep_ref, int keep_samp) {
    memset(g, 0, sizeof *g);
    g->n = n;
    g->max_new = max_new;
    const size_t nt = (size_t)n * max_new;
    g->tokens = malloc(sizeof(int) * nt);
    g->len = calloc(n, sizeof(int));
    g->terminated = calloc(n, sizeof(int));
    g->text = calloc(n, sizeof(char *));
    g->reward = calloc(n, sizeof(double));
    g->adv = calloc(n, sizeof(float));
    g->res = calloc(n, sizeof(reward_result));
    g->seeds = calloc(n, sizeof(uint64_t));
    g->order = calloc(n, sizeof(int));
    if (keep_old) g->old_logp = calloc(nt, sizeof(float));
    if (keep_ref) g->ref_logp = calloc(nt, sizeof(float));
    if (keep_samp) g->samp_logp = calloc(nt, sizeof(float));
    return g->tokens && g->len && g->terminated && g->text && g->reward && g->adv && g->res && g->seeds &&
                   g->order && (!keep_old || g->old_logp) && (!keep_ref || g->ref_logp) &&
                   (!keep_samp || g->samp_logp) ? 0 : -1;
}

/* generation.bin: what a resumed run needs of a generation still in use (texts, rewards and metrics
 * were logged when it was made). Layout: magic, version, n, max_new, number, has_old, has_ref (int32),
 * num_items (double), tokens, len, terminated, order (int32), adv, old_logp?, ref_logp? (float32), and in
 * version 2 (the importance-sampling correction on) the sampling log-probs samp_logp (float32). */
static const char GEN_MAGIC[8] = {'G', '2', '0', '4', '8', 'G', 'E', 'N'};

/* The file's bytes (malloc'd, *size set), or NULL when out of memory. Every rank's generation of a run has the
 * same size (same n, max_new and kept log-probs). */
static char *gen_serialize(const generation *g, size_t *size_out) {
    const size_t nt = (size_t)g->n * g->max_new;
    int32_t head[6] = {g->samp_logp ? 2 : 1, g->n, g->max_new, g->number, g->old_logp != NULL, g->ref_logp != NULL};
    size_t size = 8 + sizeof head + sizeof(double) + sizeof(int32_t) * (nt + 3 * (size_t)g->n) +
                  sizeof(float) * ((size_t)g->n + (g->old_logp ? nt : 0) + (g->ref_logp ? nt : 0) +
                                   (g->samp_logp ? nt : 0));
    char *buf = malloc(size), *p = buf;
    if (!buf) return NULL;
#define PUT(src, bytes) do { memcpy(p, src, bytes); p += (bytes); } while (0)
    PUT(GEN_MAGIC, 8);
    PUT(head, sizeof head);
    PUT(&g->num_items, sizeof(double));
    PUT(g->tokens, sizeof(int32_t) * nt);
    PUT(g->len, sizeof(int32_t) * g->n);
    PUT(g->terminated, sizeof(int32_t) * g->n);
    PUT(g->order, sizeof(int32_t) * g->n);
    PUT(g->adv, sizeof(float) * g->n);
    if (g->old_logp) PUT(g->old_logp, sizeof(float) * nt);
    if (g->ref_logp) PUT(g->ref_logp, sizeof(float) * nt);
    if (g->samp_logp) PUT(g->samp_logp, sizeof(float) * nt);
#undef PUT
    if ((size_t)(p - buf) != size) TRAIN_ABORT("gen_serialize: wrote %zu of %zu bytes", (size_t)(p - buf), size);
    *size_out = size;
    return buf;
}

static int gen_save(const generation *g, const char *path, char *err, size_t errlen) {
    size_t size;
    char *buf = gen_serialize(g, &size);
    if (!buf) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    int rc = write_file_atomic(path, buf, size, err, errlen);
    free(buf);
    return rc;
}

/* A checkpoint's buffered generation of `rank`: generation.bin for rank 0 (and one-process runs),
 * generation.rank<k>.bin for rank k of a data-parallel run. */
static void gen_file(char *path, size_t n, const char *dir, int rank) {
    if (rank == 0) snprintf(path, n, "%s/generation.bin", dir);
    else snprintf(path, n, "%s/generation.rank%d.bin", dir, rank);
}

/* Loads into g, which gen_alloc has shaped for this run (n, max_new, which log-probs are kept). */
static int gen_load(generation *g, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%.600s: cannot open", path); return -1; }
    char magic[8];
    int32_t head[6];
    const size_t nt = (size_t)g->n * g->max_new;
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, GEN_MAGIC, 8) && fread(head, sizeof head, 1, f) == 1;
    if (!ok || (head[0] != 1 && head[0] != 2)) {
        snprintf(err, errlen, "%.600s: not a grpo2048 generation file (bad header)", path);
        fclose(f);
        return -1;
    }
    if (head[1] != g->n || head[2] != g->max_new || head[4] != (g->old_logp != NULL) || head[5] != (g->ref_logp != NULL) ||
        (head[0] == 2) != (g->samp_logp != NULL)) {
        snprintf(err, errlen, "%.600s: holds %d completions of up to %d tokens (old log-probs %d, reference %d, sampling "
                 "%d); this run needs %d of up to %d (%d, %d, %d: vllm_importance_sampling_correction must match)", path,
                 head[1], head[2], head[4], head[5], head[0] == 2, g->n, g->max_new, g->old_logp != NULL,
                 g->ref_logp != NULL, g->samp_logp != NULL);
        fclose(f);
        return -1;
    }
    g->number = head[3];
    ok = fread(&g->num_items, sizeof(double), 1, f) == 1 && fread(g->tokens, sizeof(int32_t), nt, f) == nt &&
         fread(g->len, sizeof(int32_t), g->n, f) == (size_t)g->n &&
         fread(g->terminated, sizeof(int32_t), g->n, f) == (size_t)g->n &&
         fread(g->order, sizeof(int32_t), g->n, f) == (size_t)g->n && fread(g->adv, sizeof(float), g->n, f) == (size_t)g->n &&
         (!g->old_logp || fread(g->old_logp, sizeof(float), nt, f) == nt) &&
         (!g->ref_logp || fread(g->ref_logp, sizeof(float), nt, f) == nt) &&
         (!g->samp_logp || fread(g->samp_logp, sizeof(float), nt, f) == nt);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (!ok || extra) {
        snprintf(err, errlen, "%.600s: %s", path, ok ? "longer than its header says (damaged)" : "truncated");
        return -1;
    }
    for (int i = 0; i < g->n; i++) {
        if (g->len[i] < 0 || g->len[i] > g->max_new || g->order[i] < 0 || g->order[i] >= g->n) {
            snprintf(err, errlen, "%.600s: damaged (completion %d: length %d, order %d)", path, i, g->len[i], g->order[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* The run                                                                                           */

typedef struct {
    grpo_config *c;
    policy pol;
    llama_model ref;          /* the reference model when beta > 0 */
    int have_ref;
    backend pb;               /* the policy's backend (trainer/backend.h), over pol.model and opt */
    backend rb;               /* the reference model's, over ref (same device), when have_ref */
    reward_pool *pool;
    metrics_db *db;
    adamw_state opt;
    int *prompt, P;
    int G, B, A, S, mu, N, groups, max_new, generate_every, keep_old;
    grpo_loss_params lp;
    grpo_scale scale;
    int vis_on;               /* TRL's importance-sampling correction applies (vllm_importance_sampling_correction) */
    grpo_vllm_is_params vis;
    generation gen;
    double num_tokens;        /* prompt + completion tokens generated so far (TRL num_tokens) */
    /* (B, P + max_new) scratch of one micro-batch */
    int *tokens;
    float *mask, *logp, *old_logp, *ref_logp, *entropy, *emask, *dlogp, *dentropy;
    float *samp, *is_ratio;   /* the micro-batch's sampling log-probs and importance-sampling ratio */
    float *adv;               /* (B,) the micro-batch's advantages */
    double *func_values;      /* (N,) */
    gpu_telemetry *gpu;       /* GPU telemetry (trainer/gpu_telemetry.h), NULL unless on the CUDA device */
    /* data-parallel (trainer/dist.h): this rank's generation is rows [rank·N, rank·N + N) of the step's
     * W·N; `all` holds every rank's texts, lengths and rewards (gathered), on which the advantages and the
     * generation's metrics are computed exactly as one process computes them over the whole batch */
    int rank, W;
    generation all;           /* (W·N) when W > 1; unused (g itself) when W = 1 */
    double *rank_reward_time; /* (W,) this step's reward seconds of each rank */
    char *config_yaml;
    char err[1024];
} run;

/* Step accumulators: generation metrics are averaged over the step's generations (as TRL averages
 * what was logged since the last log), loss metrics over its micro-batches. */
typedef struct {
    int ngen, micro;
    gen_metrics g;             /* sums over generations */
    int nvis;                  /* generations whose importance-sampling metrics are in g.vis */
    double loss, entropy, kl, clip_low, clip_high, clip_region, policy_loss, cispo_clip, vespo_phi;
    double clip_low_min, clip_high_max;   /* sums over the micro-batches whose value is not NaN */
    int n_low_min, n_high_max;
    double train_tokens;
} step_acc;

static double mean_of(const double *x, int n) { double s = 0; for (int i = 0; i < n; i++) s += x[i]; return n ? s / n : 0; }
static double std_of(const double *x, int n) {
    if (n < 2) return 0.0;
    double m = mean_of(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

/* Fills tokens (B, T) = prompt ++ completion ++ pad and mask (B, T) = 1 on completion tokens for
 * completions idx[0..B) of g (0 for a truncated completion with mask_truncated_completions), and the
 * kept old / reference log-probabilities in the same layout. Returns T. */
static int build_micro_batch(run *r, const generation *g, const int *idx) {
    const int P = r->P, B = r->B;
    int T = P;
    for (int b = 0; b < B; b++) if (P + g->len[idx[b]] > T) T = P + g->len[idx[b]];
    for (int b = 0; b < B; b++) {
        const int i = idx[b], L = g->len[i];
        const int *c = g->tokens + (size_t)i * g->max_new;
        const float m = r->c->mask_truncated_completions && !g->terminated[i] ? 0.0f : 1.0f;
        for (int t = 0; t < T; t++) {
            const size_t k = (size_t)b * T + t;
            const int in_completion = t >= P && t < P + L;
            r->tokens[k] = t < P ? r->prompt[t] : in_completion ? c[t - P] : r->pol.pad_id;
            r->mask[k] = in_completion ? m : 0.0f;
            if (g->old_logp) r->old_logp[k] = in_completion ? g->old_logp[(size_t)i * g->max_new + t - P] : 0.0f;
            if (g->ref_logp) r->ref_logp[k] = in_completion ? g->ref_logp[(size_t)i * g->max_new + t - P] : 0.0f;
            /* TRL pads the sampling log-probs with 0 */
            if (g->samp_logp) r->samp[k] = in_completion ? g->samp_logp[(size_t)i * g->max_new + t - P] : 0.0f;
        }
    }
    return T;
}

/* Forward passes over each micro-batch of g, keeping log p of the generated tokens in dst (n, max_new). */
static int keep_logprobs(run *r, generation *g, backend *m, float *dst) {
    const int P = r->P;
    for (int s = 0; s < r->S; s++) {
        const int *idx = g->order + (size_t)s * r->B;
        int T = build_micro_batch(r, g, idx);
        if (backend_forward_logprobs(m, r->tokens, r->B, T, logprob_temperature(r->c), r->logp, NULL) != 0) {
            snprintf(r->err, sizeof r->err, "forward pass: %s", m->err);
            return -1;
        }
        for (int b = 0; b < r->B; b++)
            for (int t = 0; t < g->len[idx[b]]; t++)
                dst[(size_t)idx[b] * g->max_new + t] = r->logp[(size_t)b * T + P + t];
    }
    return 0;
}

/* Fisher-Yates with the game RNG (integer-only, repeatable everywhere): TRL shuffles each generation
 * (shuffle_sequence_dict) before splitting it, so that a micro-batch mixes groups. */
static void shuffle(int *order, int n, uint64_t seed) {
    game_rng rng = {seed};
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(game_rng_next(&rng) % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

/* Adds one generation's importance-sampling metrics to the step (TRL averages them over the step's generations). */
static void add_vis(step_acc *acc, const grpo_vllm_is_stats *v) {
    acc->g.vis.logp_diff_mean += v->logp_diff_mean;
    acc->g.vis.logp_diff_max += v->logp_diff_max;
    acc->g.vis.ratio_min += v->ratio_min;
    acc->g.vis.ratio_mean += v->ratio_mean;
    acc->g.vis.ratio_max += v->ratio_max;
    acc->nvis++;
}

/* Data-parallel (W > 1): every rank's texts, lengths, stop flags and reward results into r->all (rank order,
 * so row k of all is rank k / N's row k mod N), and the generation and reward times: m's become the
 * slowest rank's (the step waits for it), r->rank_reward_time[k] += rank k's reward seconds. Collective:
 * every rank calls it once per generation. Returns 0, or -1 (out of memory) with r->err. */
static int gather_generation(run *r, gen_metrics *m) {
    generation *g = &r->gen, *a = &r->all;
    dist_allgather(g->len, sizeof(int) * (size_t)g->n, a->len);
    dist_allgather(g->terminated, sizeof(int) * (size_t)g->n, a->terminated);
    dist_allgather(g->res, sizeof(reward_result) * (size_t)g->n, a->res);
    for (int i = 0; i < a->n; i++) { free(a->text[i]); a->text[i] = NULL; }
    if (dist_allgather_strings((const char *const *)g->text, g->n, a->text) != 0) {
        snprintf(r->err, sizeof r->err, "out of memory (gathering the ranks' completions)");
        return -1;
    }
    double mine[3] = {m->generation_time, m->reward_time, m->reward_wait_time};
    double *all = malloc(sizeof(double) * 3 * (size_t)r->W);
    if (!all) { snprintf(r->err, sizeof r->err, "out of memory"); return -1; }
    dist_allgather(mine, sizeof mine, all);
    for (int k = 0; k < r->W; k++) {
        if (all[3 * k] > m->generation_time) m->generation_time = all[3 * k];
        if (all[3 * k + 1] > m->reward_time) m->reward_time = all[3 * k + 1];
        if (all[3 * k + 2] > m->reward_wait_time) m->reward_wait_time = all[3 * k + 2];
        r->rank_reward_time[k] += all[3 * k + 1];
    }
    free(all);
    return 0;
}

/* The importance-sampling metrics of one generation from its accumulated sums, over every rank's share
 * (sums and counts added, extremes reduced; a rank with nothing counted does not move a min or max). */
static void vis_metrics(const grpo_vllm_is_acc *acc, grpo_vllm_is_stats *out) {
    grpo_vllm_is_acc t = *acc;
    if (dist_get()->world_size > 1) {
        double sums[4] = {t.diff_sum, t.diff_n, t.ratio_sum, t.ratio_n};
        double mx[3] = {t.diff_n > 0 ? t.diff_max : -INFINITY, t.ratio_n > 0 ? t.ratio_max : -INFINITY,
                        t.ratio_n > 0 ? -t.ratio_min : -INFINITY};
        dist_allreduce_f64(sums, 4, DIST_SUM);
        dist_allreduce_f64(mx, 3, DIST_MAX);
        t.diff_sum = sums[0]; t.diff_n = sums[1]; t.ratio_sum = sums[2]; t.ratio_n = sums[3];
        t.diff_max = t.diff_n > 0 ? mx[0] : 0.0;
        t.ratio_max = t.ratio_n > 0 ? mx[1] : 0.0;
        t.ratio_min = t.ratio_n > 0 ? -mx[2] : 0.0;
    }
    grpo_vllm_is_metrics(&t, out);
}

/* Generation `number`: sample, score, advantages, shuffle, kept log-probabilities, metrics, and the
 * completions rows of step `step` (indices offset by the step's earlier generations). */
static int make_generation(run *r, int number, int step, step_acc *acc) {
    const grpo_config *c = r->c;
    generation *g = &r->gen;
    gen_metrics *m = &g->m;
    memset(m, 0, sizeof *m);
    llama_sampling sampling = {.temperature = (float)c->temperature, .top_k = c->top_k, .top_p = (float)c->top_p,
                               .min_p = c->min_p_set ? (float)c->min_p : 0.0f,
                               .repetition_penalty = (float)c->repetition_penalty,
                               .stop_ids = r->pol.stop_ids, .num_stop = r->pol.num_stop,
                               /* the correction compares the log-probs of the distribution sampled from (vLLM's
                                * processed_logprobs, as TRL asks for) with the training forward's */
                               .processed_logprobs = g->samp_logp != NULL,
                               /* data-parallel: this rank's rows of the step's batch draw the streams of
                                * those rows in a one-process run */
                               .first_row = r->rank * g->n};
    /* Every group shares the prompt, so the whole generation is one batch: the prompt is prefilled
     * once and all groups x num_generations rows decode together, each weight matrix read once per
     * token for all of them (row i draws from its own stream seeded from (seed, i)). With
     * rewards.overlap each completion goes to the reward pool in the decode step where its row stops. */
    for (int i = 0; i < g->n; i++)   /* every completion of group k (numbered over every rank's) plays the same games */
        g->seeds[i] = game_seed_mix((uint64_t)c->seed ^ 0x2048u, (uint64_t)number, (uint64_t)((r->rank * g->n + i) / r->G));
    if (!c->rewards.parallel) fprintf(stderr, "\n--- generation %d (step %d): rewards, one completion at a time ---\n", number, step);
    rollout_spec rs = {.b = &r->pb, .pol = &r->pol, .pool = r->pool, .prompt = r->prompt, .P = r->P, .n = g->n,
                       .max_new = r->max_new, .sampling = sampling,
                       .seed = game_seed_mix((uint64_t)c->seed, (uint64_t)number, 0), .jobs_per_row = 1,
                       .job_seeds = g->seeds, .overlap = c->rewards.overlap && c->rewards.parallel,
                       .log = c->rewards.parallel ? NULL : stderr, .gpu = r->gpu};
    rollout_times rt;
    if (rollout_run(&rs, g->tokens, g->len, g->samp_logp, g->text, g->res, &rt, r->err, sizeof r->err) != 0) {
        g->number = 0;   /* the buffers hold no complete generation */
        return -1;
    }
    g->number = number;
    memset(&g->vis_acc, 0, sizeof g->vis_acc);
    m->generation_time = rt.generation_time;
    m->reward_time = rt.reward_time;
    m->reward_wait_time = rt.reward_wait_time;
    for (int i = 0; i < g->n; i++) {
        const int L = g->len[i];
        g->terminated[i] = L > 0 && policy_is_stop(&r->pol, g->tokens[(size_t)i * r->max_new + L - 1]);
    }
    gpu_telemetry_phase(r->gpu, GPU_PHASE_TRAIN);   /* the kept log-probabilities are forward passes */
    /* Data-parallel: every rank's completions (texts, lengths, results) and times on every rank, so that the
     * advantages (scale_rewards: batch uses the whole batch's std) and the metrics below are computed over
     * the whole step's batch, as one process computes them; a = that batch (g itself on one rank). */
    generation *a = g;
    const int off = r->rank * g->n;   /* this rank's first row in a */
    if (r->W > 1) {
        a = &r->all;
        if (gather_generation(r, m) != 0) return -1;
    }
    for (int i = 0; i < a->n; i++) a->reward[i] = a->res[i].reward;
    /* A completion the pool could not score (infra_error: its worker failed twice, never the strategy's
     * doing) is left out: for the advantages its reward is its group's mean over the scored ones (the
     * group's mean stays what it is), its tokens are masked out of the loss below (length 0), and the
     * reward means skip it. */
    {
        unsigned char *scored = malloc(a->n > 0 ? (size_t)a->n : 1);
        if (!scored) { snprintf(r->err, sizeof r->err, "out of memory"); return -1; }
        for (int i = 0; i < a->n; i++) scored[i] = a->res[i].outcome != OUTCOME_INFRA_ERROR;
        m->infra_errors = grpo_fill_unscored(a->reward, scored, a->n, r->G);
        free(scored);
    }
    grpo_advantages(a->reward, a->n, r->G, r->scale, a->adv, &m->reward_std, &m->frac_zero_std);
    if (a != g) for (int i = 0; i < g->n; i++) g->adv[i] = a->adv[off + i];
    /* each rank shuffles its own share (rank 0's stream is the one-process run's) */
    shuffle(g->order, g->n, game_seed_mix((uint64_t)c->seed ^ 0x5EEDu, (uint64_t)number, (uint64_t)r->rank));
    if (g->old_logp && keep_logprobs(r, g, &r->pb, g->old_logp) != 0) return -1;
    if (g->ref_logp && keep_logprobs(r, g, &r->rb, g->ref_logp) != 0) return -1;
    if (g->samp_logp && g->old_logp) {
        /* the correction's metrics of the whole generation now (TRL logs them at generation time); the ratio
         * itself is recomputed from the kept old log-probs in each micro-step */
        for (int sl = 0; sl < r->S; sl++) {
            const int T = build_micro_batch(r, g, g->order + (size_t)sl * r->B);
            grpo_vllm_is_ratio(&r->vis, r->B, T, r->old_logp, r->samp, r->mask, r->is_ratio, &g->vis_acc);
        }
        vis_metrics(&g->vis_acc, &m->vis);
        add_vis(acc, &m->vis);
    }

    /* metrics of this generation (TRL's _generate_and_score_completions), over the scored completions */
    int scored = 0;
    for (int i = 0; i < a->n; i++)
        if (a->res[i].outcome != OUTCOME_INFRA_ERROR) r->func_values[scored++] = a->res[i].reward;
    m->reward = scored ? grpo_mean(r->func_values, scored) : 0.0;
    for (int f = 0; f < RF_COUNT; f++) {
        int k = 0;
        for (int i = 0; i < a->n; i++)
            if (a->res[i].outcome != OUTCOME_INFRA_ERROR) r->func_values[k++] = a->res[i].rewards[f];
        m->func_mean[f] = k ? grpo_mean(r->func_values, k) : 0.0;
        m->func_std[f] = k ? grpo_std(r->func_values, k) : 0.0;
    }
    for (int i = 0; i < a->n; i++) {
        m->timeouts += a->res[i].timeouts;
        m->stuck += a->res[i].stuck;
        m->wins += a->res[i].wins;
    }
    /* lengths (before masking) and num_items_in_batch (after mask_truncated_completions), as TRL; over every
     * rank's completions, so dapo's normaliser is the whole batch's token count (TRL gathers it too) */
    grpo_completion_stats cs;
    grpo_completion_stats_of(a->len, a->terminated, a->n, c->mask_truncated_completions, &cs);
    g->num_items = cs.num_items_in_batch;
    m->mean_len = cs.mean_length;
    m->min_len = cs.min_length;
    m->max_len = cs.max_length;
    m->mean_term = cs.mean_terminated_length;
    m->min_term = cs.min_terminated_length;
    m->max_term = cs.max_terminated_length;
    m->clipped_ratio = cs.clipped_ratio;
    m->tokens = cs.mean_length * a->n + (double)r->P * a->n;
    r->num_tokens += m->tokens;

    for (int i = 0; r->db && i < a->n; i++) {   /* rank 0 writes every rank's completions */
        metrics_completion mc = {acc->ngen * a->n + i, acc->ngen * (a->n / r->G) + i / r->G, a->text[i], a->res[i].reward,
                                 {a->res[i].rewards[0], a->res[i].rewards[1], a->res[i].rewards[2], a->res[i].rewards[3]},
                                 reward_outcome_name(a->res[i].outcome), a->res[i].max_tile, a->res[i].score,
                                 a->res[i].moves, a->res[i].seconds, a->res[i].error, i / g->n, 0, 0, 0.0};
        if (metrics_add_completion(r->db, &mc) != 0) {
            snprintf(r->err, sizeof r->err, "metrics: %s", metrics_error(r->db));
            return -1;
        }
    }
    /* accumulate into the step */
    gen_metrics *s = &acc->g;
    s->reward += m->reward;
    s->reward_std += m->reward_std;
    s->frac_zero_std += m->frac_zero_std;
    for (int f = 0; f < RF_COUNT; f++) { s->func_mean[f] += m->func_mean[f]; s->func_std[f] += m->func_std[f]; }
    s->mean_len += m->mean_len; s->min_len += m->min_len; s->max_len += m->max_len;
    s->mean_term += m->mean_term; s->min_term += m->min_term; s->max_term += m->max_term;
    s->clipped_ratio += m->clipped_ratio;
    s->generation_time += m->generation_time;
    s->reward_time += m->reward_time;
    s->reward_wait_time += m->reward_wait_time;
    s->tokens += m->tokens;
    s->timeouts += m->timeouts; s->stuck += m->stuck; s->wins += m->wins;
    s->infra_errors += m->infra_errors;
    /* infra_error completions leave the loss: no token of theirs is trained on (see above). */
    for (int i = 0; i < a->n; i++)
        if (a->res[i].outcome == OUTCOME_INFRA_ERROR) {
            if (!r->c->mask_truncated_completions || a->terminated[i]) g->num_items -= a->len[i];
            a->len[i] = 0;
            if (a != g && i >= off && i < off + g->n) g->len[i - off] = 0;
        }
    acc->ngen++;
    return 0;
}

/* One micro-step on micro-batch `slice` of the current generation: forward, loss, backward. first_pass: the
 * generation's first pass over this slice (its importance-sampling metrics are counted then). */
static int micro_step(run *r, int slice, int first_pass, step_acc *acc) {
    generation *g = &r->gen;
    const int *idx = g->order + (size_t)slice * r->B;
    const int T = build_micro_batch(r, g, idx);
    const int n = r->B * T;
    if (backend_forward_logprobs(&r->pb, r->tokens, r->B, T, logprob_temperature(r->c), r->logp, r->entropy) != 0) {
        snprintf(r->err, sizeof r->err, "forward pass: %s", r->pb.err);
        return -1;
    }
    /* on-policy: old_logp = logp, detached (TRL, when the generation does not outlive the step) */
    if (!g->old_logp) memcpy(r->old_logp, r->logp, sizeof(float) * (size_t)n);
    /* TRL's importance-sampling correction: the ratio of the old log-probs (the generating policy's forward,
     * which in the on-policy layout is this very forward: no extra pass) to the generator's */
    if (g->samp_logp) {
        const int count = first_pass && !g->old_logp;   /* with kept old log-probs, counted at generation */
        grpo_vllm_is_ratio(&r->vis, r->B, T, r->old_logp, r->samp, r->mask, r->is_ratio, count ? &g->vis_acc : NULL);
        if (count && slice == r->S - 1) {   /* the generation's last micro-batch: its metrics are complete */
            grpo_vllm_is_stats vs;
            vis_metrics(&g->vis_acc, &vs);
            add_vis(acc, &vs);
        }
    }
    float *adv = r->adv;
    for (int b = 0; b < r->B; b++) adv[b] = g->adv[idx[b]];
    const int masked = r->c->top_entropy_quantile < 1.0;
    if (masked) grpo_entropy_mask(r->entropy, r->mask, n, 1.0 - r->c->top_entropy_quantile, r->emask);
    r->lp.num_items_in_batch = g->num_items;
    if (r->W > 1 && r->lp.type == LOSS_BNPO) {   /* bnpo's normaliser: the tokens of every rank's share */
        double tok = 0.0;
        for (int k = 0; k < n; k++) tok += r->mask[k];
        dist_allreduce_f64(&tok, 1, DIST_SUM);
        r->lp.bnpo_tokens = (tok > 1.0 ? tok : 1.0) / r->W;
    }
    grpo_loss_stats st;
    const int bonus = r->lp.entropy_coef != 0.0f;
    acc->loss += grpo_loss_is(&r->lp, r->B, T, r->logp, r->old_logp, r->have_ref ? r->ref_logp : NULL, adv, r->mask,
                              masked ? r->emask : NULL, r->entropy, g->samp_logp ? r->is_ratio : NULL, r->dlogp,
                              bonus ? r->dentropy : NULL, &st);
    /* TRL appends one value per _compute_loss call and averages them at log time (NaNs left out) */
    acc->entropy += st.entropy;
    acc->kl += st.kl;
    acc->clip_low += st.clip_low;
    acc->clip_high += st.clip_high;
    acc->clip_region += st.clip_region;
    acc->policy_loss += st.policy_loss;
    acc->cispo_clip += st.cispo_clip;
    acc->vespo_phi += st.vespo_phi_mean;
    if (!isnan(st.clip_low_min)) { acc->clip_low_min += st.clip_low_min; acc->n_low_min++; }
    if (!isnan(st.clip_high_max)) { acc->clip_high_max += st.clip_high_max; acc->n_high_max++; }
    for (int b = 0; b < r->B; b++) acc->train_tokens += r->P + g->len[idx[b]];
    acc->micro++;
    backend_backward_logprobs_entropy(&r->pb, r->dlogp, bonus ? r->dentropy : NULL);
    return 0;
}

/* Data-parallel, after the step's last backward pass: the gradients summed over the ranks (each rank's loss
 * is weighted so that the sum is one process's loss over the whole batch: see cmd_train), and the step's
 * loss metrics: the loss summed (it is the sum's loss), the per-micro-batch means (entropy, kl, clip
 * ratios, ...) averaged over the ranks as TRL's gather-and-mean does, token counts summed. Collective.
 * Returns 0, or -1 with r->err. */
static int reduce_step(run *r, step_acc *acc) {
    size_t n;
    int on_device;
    float *grads = backend_grad_buffer(&r->pb, &n, &on_device);
    if (dist_allreduce_grads(grads, n, on_device, r->err, sizeof r->err) != 0) return -1;
    double sum[6] = {acc->loss, acc->clip_low_min, acc->n_low_min, acc->clip_high_max, acc->n_high_max, acc->train_tokens};
    double mean[8] = {acc->entropy, acc->kl, acc->clip_low, acc->clip_high, acc->clip_region, acc->policy_loss,
                      acc->cispo_clip, acc->vespo_phi};
    dist_allreduce_f64(sum, 6, DIST_SUM);
    dist_allreduce_f64(mean, 8, DIST_SUM);
    acc->loss = sum[0]; acc->clip_low_min = sum[1]; acc->n_low_min = (int)sum[2];
    acc->clip_high_max = sum[3]; acc->n_high_max = (int)sum[4]; acc->train_tokens = sum[5];
    acc->entropy = mean[0] / r->W; acc->kl = mean[1] / r->W; acc->clip_low = mean[2] / r->W;
    acc->clip_high = mean[3] / r->W; acc->clip_region = mean[4] / r->W; acc->policy_loss = mean[5] / r->W;
    acc->cispo_clip = mean[6] / r->W; acc->vespo_phi = mean[7] / r->W;
    /* clip_low_min / clip_high_max average over the micro-batches of every rank that had a value: the sums
     * and counts above, divided at log time */
    return 0;
}

/* TRL's SyncRefModelCallback: ref ← (1 − α)·ref + α·policy, parameter by parameter, on the host
 * copies (the policy's weights fetched from its backend, the result given to the reference's), so the
 * arithmetic is the same on every device. */
static int sync_reference(run *r) {
    if (backend_download(&r->pb, BACKEND_PARAMS) != 0) {
        snprintf(r->err, sizeof r->err, "reference model sync: %s", r->pb.err);
        return -1;
    }
    const float a = (float)r->c->ref_model_mixup_alpha;
    float *ref = r->ref.params;
    const float *pol = r->pol.model.params;
    for (size_t i = 0; i < r->ref.num_params; i++) ref[i] = ref[i] * (1.0f - a) + pol[i] * a;
    if (backend_upload(&r->rb, BACKEND_PARAMS) != 0) {
        snprintf(r->err, sizeof r->err, "reference model sync: %s", r->rb.err);
        return -1;
    }
    return 0;
}

/* Evaluation: one greedy completion (eval_temperature 0) or num_generations sampled with a fixed seed,
 * each playing eval_games jobs on fixed game seeds (the same at every evaluation); eval_... metrics. */
static int evaluate(run *r) {
    const grpo_config *c = r->c;
    const double t0 = now_seconds();
    const int n = c->eval_temperature > 0 ? r->G : 1;
    int jobs = n * c->eval_games;   /* lowered to the scored ones after the rewards */
    int *tokens = malloc(sizeof(int) * (size_t)n * r->max_new), *len = calloc(n, sizeof(int));
    char **text = calloc(n, sizeof(char *));
    uint64_t *seeds = calloc(jobs, sizeof(uint64_t));
    reward_result *res = calloc(jobs, sizeof(reward_result));
    double *vals = calloc(jobs, sizeof(double));
    int rc = -1;
    if (!tokens || !len || !text || !seeds || !res || !vals) {
        snprintf(r->err, sizeof r->err, "evaluation: out of memory");
        goto done;
    }
    llama_sampling s = {.temperature = (float)c->eval_temperature, .top_k = c->top_k, .top_p = (float)c->top_p,
                        .min_p = c->min_p_set ? (float)c->min_p : 0.0f, .repetition_penalty = (float)c->repetition_penalty,
                        .stop_ids = r->pol.stop_ids, .num_stop = r->pol.num_stop};
    for (int j = 0; j < jobs; j++)
        seeds[j] = game_seed_mix((uint64_t)c->seed ^ 0xE7A12048u, (uint64_t)(j % c->eval_games), 0);
    rollout_spec rs = {.b = &r->pb, .pol = &r->pol, .pool = r->pool, .prompt = r->prompt, .P = r->P, .n = n,
                       .max_new = r->max_new, .sampling = s, .seed = game_seed_mix((uint64_t)c->seed ^ 0xE7A1u, 0, 0),
                       .jobs_per_row = c->eval_games, .job_seeds = seeds,
                       .overlap = c->rewards.overlap && c->rewards.parallel, .log = NULL, .gpu = r->gpu};
    rollout_times rt;
    if (rollout_run(&rs, tokens, len, NULL, text, res, &rt, r->err, sizeof r->err) != 0) goto done;
    double mean_len = 0, clipped = 0;
    for (int i = 0; i < n; i++) {
        const int *row = tokens + (size_t)i * r->max_new;
        mean_len += len[i];
        clipped += !(len[i] > 0 && policy_is_stop(&r->pol, row[len[i] - 1]));
    }
    /* infra_error jobs (the pool could not score them) are left out of the evaluation's means. */
    int scored = 0;
    for (int j = 0; j < jobs; j++)
        if (res[j].outcome != OUTCOME_INFRA_ERROR) res[scored++] = res[j];
    if (scored < jobs) fprintf(stderr, "evaluation: %d of %d jobs not scored (infra_error), left out\n", jobs - scored, jobs);
    jobs = scored > 0 ? scored : 1;   /* all lost: the means below are of one all-zero result */
    double games = 0, wins = 0, timeouts = 0, tile = 0, score = 0;
    for (int j = 0; j < jobs; j++) {
        vals[j] = res[j].reward;
        games += res[j].games;
        wins += res[j].wins;
        timeouts += res[j].timeouts;
        tile += res[j].max_tile;
        score += res[j].score;
    }
    metrics_db *db = r->db;
    int bad = metrics_add(db, "eval_reward", mean_of(vals, jobs)) | metrics_add(db, "eval_reward_std", std_of(vals, jobs));
    for (int f = 0; f < RF_COUNT; f++) {
        for (int j = 0; j < jobs; j++) vals[j] = res[j].rewards[f];
        char name[96];
        snprintf(name, sizeof name, "eval_rewards/%s/mean", reward_func_name(f));
        bad |= metrics_add(db, name, mean_of(vals, jobs));
    }
    bad |= metrics_add(db, "eval_games", games) | metrics_add(db, "eval_wins", wins) |
           metrics_add(db, "eval_win_rate", games > 0 ? wins / games : 0) | metrics_add(db, "eval_max_tile", tile / jobs) |
           metrics_add(db, "eval_score", score / jobs) | metrics_add(db, "eval_timeouts", timeouts) |
           metrics_add(db, "eval_completions/mean_length", mean_len / n) |
           metrics_add(db, "eval_completions/clipped_ratio", clipped / n) |
           metrics_add(db, "eval_time", now_seconds() - t0);
    if (bad) { snprintf(r->err, sizeof r->err, "metrics: %s", metrics_error(db)); goto done; }
    rc = 0;
done:
    if (text) for (int i = 0; i < n; i++) free(text[i]);
    free(tokens); free(len); free(text); free(seeds); free(res); free(vals);
    return rc;
}

/* The step's metrics rows (TRL's names; ours documented in docs/metrics.md). */
/* The peak resident memory (GiB, 2^30 bytes) of this process since the last call (VmHWM of
 * /proc/self/status, then reset by writing 5 to /proc/self/clear_refs, Linux >= 4.0), or -1 where
 * /proc does not say. The reward pool's processes are not counted. */
static double peak_rss_gb_since_last(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    FILE *c = fopen("/proc/self/clear_refs", "w");
    if (c) { fputs("5", c); fclose(c); }
    return kb < 0 ? -1 : kb / 1048576.0;
}

static int log_step(run *r, const step_acc *a, double grad_norm, double lr, double step_time, double train_time) {
    metrics_db *db = r->db;
    int bad = 0;
    if (a->ngen > 0) {
        const double k = a->ngen;
        const gen_metrics *g = &a->g;
        bad |= metrics_add(db, "reward", g->reward / k) | metrics_add(db, "reward_std", g->reward_std / k) |
               metrics_add(db, "frac_reward_zero_std", g->frac_zero_std / k);
        for (int f = 0; f < RF_COUNT; f++) {
            char name[96];
            snprintf(name, sizeof name, "rewards/%s/mean", reward_func_name(f));
            bad |= metrics_add(db, name, g->func_mean[f] / k);
            snprintf(name, sizeof name, "rewards/%s/std", reward_func_name(f));
            bad |= metrics_add(db, name, g->func_std[f] / k);
        }
        bad |= metrics_add(db, "completions/mean_length", g->mean_len / k) |
               metrics_add(db, "completions/min_length", g->min_len / k) |
               metrics_add(db, "completions/max_length", g->max_len / k) |
               metrics_add(db, "completions/mean_terminated_length", g->mean_term / k) |
               metrics_add(db, "completions/min_terminated_length", g->min_term / k) |
               metrics_add(db, "completions/max_terminated_length", g->max_term / k) |
               metrics_add(db, "completions/clipped_ratio", g->clipped_ratio / k) |
               metrics_add(db, "generation_time", g->generation_time) | metrics_add(db, "reward_time", g->reward_time) |
               metrics_add(db, "reward_wait_time", g->reward_wait_time) |
               metrics_add(db, "timeouts", g->timeouts) | metrics_add(db, "stuck", g->stuck) |
               metrics_add(db, "wins", g->wins) | metrics_add(db, "infra_errors", g->infra_errors);
        /* data-parallel: generation_time and reward_time above are the slowest rank's; each rank's own */
        for (int k = 0; r->W > 1 && k < r->W; k++) {
            char name[64];
            snprintf(name, sizeof name, "reward_time/rank_%d", k);
            bad |= metrics_add(db, name, r->rank_reward_time[k]);
        }
    }
    if (a->nvis > 0) {   /* TRL's names, logged once per generation and averaged over the step's generations */
        const double k = a->nvis;
        const grpo_vllm_is_stats *v = &a->g.vis;
        bad |= metrics_add(db, "sampling/sampling_logp_difference/mean", v->logp_diff_mean / k) |
               metrics_add(db, "sampling/sampling_logp_difference/max", v->logp_diff_max / k) |
               metrics_add(db, "sampling/importance_sampling_ratio/min", v->ratio_min / k) |
               metrics_add(db, "sampling/importance_sampling_ratio/mean", v->ratio_mean / k) |
               metrics_add(db, "sampling/importance_sampling_ratio/max", v->ratio_max / k);
    }
    const double mb = a->micro > 0 ? a->micro : 1;
    bad |= metrics_add(db, "num_tokens", r->num_tokens) | metrics_add(db, "loss", a->loss) |
           metrics_add(db, "grad_norm", grad_norm) | metrics_add(db, "learning_rate", lr) |
           metrics_add(db, "entropy", a->entropy / mb) | metrics_add(db, "step_time", step_time) |
           metrics_add(db, "train_time", train_time) |
           metrics_add(db, "tokens_per_second", step_time > 0 ? a->train_tokens / step_time : 0);
    if (r->have_ref) bad |= metrics_add(db, "kl", a->kl / mb);
    switch (grpo_loss_metric_kind(r->lp.type)) {   /* what TRL's _compute_loss logs for the loss type */
    case 1:
        bad |= metrics_add(db, "clip_ratio/low_mean", a->clip_low / mb) |
               metrics_add(db, "clip_ratio/high_mean", a->clip_high / mb) |
               metrics_add(db, "clip_ratio/region_mean", a->clip_region / mb) |
               metrics_add(db, "clip_ratio/low_min", a->n_low_min ? a->clip_low_min / a->n_low_min : NAN) |
               metrics_add(db, "clip_ratio/high_max", a->n_high_max ? a->clip_high_max / a->n_high_max : NAN);
        break;
    case 2: bad |= metrics_add(db, "cispo_clip_ratio", a->cispo_clip / mb); break;
    case 3: bad |= metrics_add(db, "vespo/phi_seq_mean", a->vespo_phi / mb); break;
    default: break;
    }
    if (r->lp.entropy_coef != 0.0f)
        bad |= metrics_add(db, "policy_loss", a->policy_loss / mb) | metrics_add(db, "entropy_coef", r->lp.entropy_coef);
    const double rss = peak_rss_gb_since_last();
    if (rss >= 0) bad |= metrics_add(db, "memory/rss_gb", rss);
    if (r->gpu) {   /* the model's own peak device memory, from the CUDA runtime (reported without NVML too) */
        backend_memory mem;
        backend_get_memory(&r->pb, &mem);
        gpu_telemetry_set_model_peak_memory(r->gpu, mem.peak_bytes);
    }
    gpu_metric gm[GPU_TELEMETRY_MAX_METRICS];   /* none on the CPU */
    const int ngm = gpu_telemetry_step_metrics(r->gpu, gm, GPU_TELEMETRY_MAX_METRICS);
    for (int i = 0; i < ngm; i++) bad |= metrics_add(db, gm[i].name, gm[i].value);
    return bad ? -1 : 0;
}

/* Checkpoint extras: the generation still in use after this step, and the synced reference model. */
typedef struct {
    run *r;
    int with_gen, with_ref;
    const char *gens;         /* data-parallel: every rank's serialized generation, gen_size bytes each, or NULL */
    size_t gen_size;
} save_ctx;

static int save_extra(const char *tmp, void *ctx, char *err, size_t errlen) {
    save_ctx *s = ctx;
    char path[4096];
    if (s->with_gen && !s->gens) {
        gen_file(path, sizeof path, tmp, 0);
        if (gen_save(&s->r->gen, path, err, errlen) != 0) return -1;
    }
    for (int k = 0; s->with_gen && s->gens && k < s->r->W; k++) {   /* each rank's own */
        gen_file(path, sizeof path, tmp, k);
        if (write_file_atomic(path, s->gens + (size_t)k * s->gen_size, s->gen_size, err, errlen) != 0) return -1;
    }
    if (s->with_ref) {
        snprintf(path, sizeof path, "%s/ref_model", tmp);
        if (llama_save(&s->r->ref, path, 0, err, errlen) != 0) return -1;
    }
    return 0;
}

static int save_checkpoint(run *r, int step) {
    const grpo_config *c = r->c;
    char path[4096];
    /* the generation is needed after this step unless the next micro-step starts a new one */
    save_ctx sc = {r, ((long long)step * r->A) % r->generate_every != 0, r->have_ref && c->sync_ref_model, NULL, 0};
    char *gens = NULL;
    /* data-parallel: every rank checks that its weights are rank 0's (identical steps) and hands rank 0 its
     * buffered generation (when one is in use); then rank 0 saves */
    if (r->W > 1) {
        if (backend_download(&r->pb, BACKEND_PARAMS) != 0) {
            snprintf(r->err, sizeof r->err, "%s", r->pb.err);
            return -1;
        }
        if (dist_check_same(r->pol.model.params, r->pol.model.num_params, "weights", r->err, sizeof r->err) != 0)
            return -1;
        if (sc.with_gen) {
            char *mine = gen_serialize(&r->gen, &sc.gen_size);
            if (!mine || !(gens = malloc(sc.gen_size * (size_t)r->W))) {
                free(mine);
                snprintf(r->err, sizeof r->err, "out of memory (checkpoint of the buffered generation)");
                return -1;
            }
            dist_allgather(mine, sc.gen_size, gens);
            free(mine);
            sc.gens = gens;
        }
        if (r->rank != 0) { free(gens); return 0; }
    }
    snprintf(path, sizeof path, "%s/checkpoint-%d", c->output_dir, step);
    checkpoint_info info = {"grpo", step, metrics_run_id(r->db), r->num_tokens, sc.with_gen, sc.with_ref,
                            r->config_yaml, c, r->W};
    /* checkpoints are written from the host model and optimizer state */
    if (backend_download(&r->pb, BACKEND_ALL) != 0) {
        snprintf(r->err, sizeof r->err, "%s", r->pb.err);
        free(gens);
        return -1;
    }
    const int rc = checkpoint_save(path, &r->pol.model, &r->opt, c->model_name_or_path, &info, save_extra, &sc, r->err,
                                   sizeof r->err);
    free(gens);
    if (rc != 0) return -1;
    int deleted = checkpoint_rotate(c->output_dir, c->save_total_limit, step);
    (void)deleted;
    return 0;
}

static int save_final(run *r) {
    const grpo_config *c = r->c;
    if (r->rank != 0) return 0;   /* rank 0 writes the model */
    if (backend_download(&r->pb, BACKEND_PARAMS) != 0) {
        snprintf(r->err, sizeof r->err, "%s", r->pb.err);
        return -1;
    }
    if (llama_save(&r->pol.model, c->output_dir, 0, r->err, sizeof r->err) != 0) return -1;
    if (copy_tokenizer_files(c->model_name_or_path, c->output_dir, r->err, sizeof r->err) < 0) return -1;
    return 0;
}

/* Same folder? (realpath of both; a missing one differs) */
static int same_dir(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* The resume checkpoint, checked before anything heavy starts: its state, that its model is the
 * architecture of model_name_or_path, and that the config is compatible. Returns 0, -1 on error. */
static int check_resume(grpo_config *c, char *dir, size_t dirlen, checkpoint_state *st, char *err, size_t errlen) {
    if (!strcmp(c->resume_from_checkpoint, "latest")) {
        if (checkpoint_find_latest(c->output_dir, dir, dirlen, err, errlen) != 0) return -1;
    } else {
        const char *want = c->resume_from_checkpoint;
        struct stat sb;
        char state[4096];
        snprintf(state, sizeof state, "%s/trainer_state.json", want);
        if (stat(want, &sb) != 0) {
            snprintf(err, errlen, "%s: %s (expected a checkpoint-N folder, a run's output_dir, or 'latest')", want,
                     errno == ENOENT ? "does not exist" : strerror(errno));
            return -1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            snprintf(err, errlen, "%s is not a folder (expected a checkpoint-N folder, a run's output_dir, or 'latest')",
                     want);
            return -1;
        }
        if (stat(state, &sb) != 0 && checkpoint_list(want, NULL, 0) > 0) {
            /* a run's output folder: its newest checkpoint */
            if (checkpoint_find_latest(want, dir, dirlen, err, errlen) != 0) return -1;
        } else {
            snprintf(dir, dirlen, "%s", want);
        }
    }
    if (checkpoint_read_state(dir, st, err, errlen) != 0) return -1;
    if (strcmp(st->kind, "grpo") != 0) {
        snprintf(err, errlen, "checkpoint %s was written by `grpo2048 %s`; train --resume needs a grpo checkpoint "
                 "(to start GRPO from it, set model_name_or_path=%s instead)", dir, st->kind, dir);
        return -1;
    }
    if (checkpoint_check_architecture(dir, c->model_name_or_path, err, errlen) != 0) return -1;
    char changed[4096];
    if (checkpoint_check_config(st, c, resume_must_match, resume_ignore, changed, sizeof changed, err, errlen) != 0) {
        char e[2048];
        snprintf(e, sizeof e, "%s", err);
        snprintf(err, errlen, "checkpoint %.200s: %.800s", dir, e);
        return -1;
    }
    if (st->global_step >= c->max_steps) {
        snprintf(err, errlen, "checkpoint %s is at step %d and max_steps is %d: nothing left to train (raise "
                 "max_steps to continue)", dir, st->global_step, c->max_steps);
        return -1;
    }
    if (changed[0]) fprintf(stderr, "grpo2048 train: resuming with changed keys: %s\n", changed);
    return 0;
}

int cmd_train(int argc, char **argv) {
    grpo_config c;
    char perr[1024] = "";
    int prc = policy_parse_args(argc, argv, "train", &c, perr, sizeof perr);
    if (prc == 1) return 0;
    if (prc != 0) { fprintf(stderr, "grpo2048 train: %s\n", perr); return 2; }

    /* Everything the run holds, released in one place (cleanup:) on every path. */
    int exit_code = 1;
    run r;
    memset(&r, 0, sizeof r);
    r.c = &c;
    checkpoint_state cs;
    memset(&cs, 0, sizeof cs);
    char resume_dir[4096] = "";
    const int resuming = c.resume_from_checkpoint[0] != '\0';
    const char *status = "failed";
    char path[4096];
    int start_step = 0, step = 0, last_saved = -1;
    progress pb;
    int progress_started = 0;
    int lock_fd = -1;
    FILE *progress_out = stderr;

    /* Data-parallel (trainer/dist.h): this rank and the world from mpirun's environment, before the pool
     * forks (MPI_Init comes after it). W = 1 without mpirun: everything below is the one-process run. */
    if (dist_from_env(r.err, sizeof r.err) != 0) {
        fprintf(stderr, "grpo2048 train: %s\n", r.err);
        exit_code = 2;
        goto cleanup;
    }
    r.rank = dist_get()->rank;
    r.W = dist_get()->world_size;

    /* One writer per output_dir: a second run on the same folder would overwrite this one's checkpoints
     * and final model (rank 0 writes, so rank 0 holds the lock). */
    if (r.rank == 0 && (lock_fd = run_lock_acquire(c.output_dir, r.err, sizeof r.err)) < 0) {
        fprintf(stderr, "grpo2048 train: %s\n", r.err);
        exit_code = 2;
        goto cleanup;
    }
    if (resuming && check_resume(&c, resume_dir, sizeof resume_dir, &cs, r.err, sizeof r.err) != 0) {
        fprintf(stderr, "grpo2048 train: resume: %s\n", r.err);
        exit_code = 2;
        goto cleanup;
    }
    if (resuming && cs.world_size != r.W) {   /* the batch split and the random streams depend on it */
        snprintf(r.err, sizeof r.err, "checkpoint %s was trained by %d rank%s and this run has %d: resume with the "
                 "same world size (%s%d grpo2048 train ... --resume)", resume_dir, cs.world_size,
                 cs.world_size == 1 ? "" : "s", r.W, cs.world_size == 1 ? "no mpirun, or mpirun -np " : "mpirun -np ",
                 cs.world_size);
        fprintf(stderr, "grpo2048 train: resume: %s\n", r.err);
        exit_code = 2;
        goto cleanup;
    }
    if (!strcmp(c.device, "cuda") && !backend_have_cuda()) {   /* said before anything starts; the device is
                                                                 looked for after the pool has forked */
        fprintf(stderr, "grpo2048 train: device: cuda requested, but this grpo2048 was built without the CUDA backend "
                "(build with nvcc on PATH, or -DGRPO2048_CUDA=ON; see docs/gpu.md), or use device: cpu\n");
        exit_code = 2;
        goto cleanup;
    }

    /* 1. The reward pool first: its workers must fork before any thread exists. */
    reward_config rcfg = policy_reward_config(&c);   /* workers: this rank's share of the node's cores by default */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (rcfg.workers > 4 * cores) {
        fprintf(stderr, "grpo2048 train: rewards.workers=%d is more than 4x the %ld cores; using %ld\n",
                rcfg.workers, cores, 4 * cores);
        rcfg.workers = (int)(4 * cores);
    }
    r.pool = reward_pool_create(&rcfg, r.err, sizeof r.err);
    if (!r.pool) {
        if (r.W > 1) dist_abort(1, "train", "reward pool: %s", r.err);
        fprintf(stderr, "grpo2048 train: reward pool: %s\n", r.err);
        goto cleanup;
    }
    /* MPI after the pool's fork: MPI_Init starts threads and opens sockets (trainer/dist.h) */
    if (dist_init(r.err, sizeof r.err) != 0) dist_abort(2, "train", "%s", r.err);
    if (r.rank != 0 && !(progress_out = fopen("/dev/null", "w"))) progress_out = stderr;   /* rank 0 prints */

    /* 2. The policy (from the checkpoint when resuming), the reference model, the prompt. */
    {
        char *model_dir = c.model_name_or_path;
        if (resuming) c.model_name_or_path = resume_dir;   /* weights and tokenizer from the checkpoint */
        int lrc = policy_load(&r.pol, &c, 0, r.err, sizeof r.err);
        c.model_name_or_path = model_dir;
        if (lrc != 0) {
            fprintf(stderr, "grpo2048 train: %s%s\n", resuming ? "resume: " : "", r.err);
            exit_code = resuming ? 2 : 1;
            goto cleanup;
        }
    }
    /* TRL's gradient_checkpointing: recompute each layer's activations in the backward (same results) */
    llama_set_gradient_checkpointing(&r.pol.model, c.gradient_checkpointing);
    if (c.beta > 0) {
        const char *ref_dir = c.model_name_or_path;
        if (resuming && cs.has_ref_model) {
            snprintf(path, sizeof path, "%s/ref_model", resume_dir);
            ref_dir = path;
        }
        if (llama_load(&r.ref, ref_dir, r.err, sizeof r.err) != 0) {
            fprintf(stderr, "grpo2048 train: reference model: %s\n", r.err);
            goto cleanup;
        }
        r.have_ref = 1;
        llama_set_gradient_checkpointing(&r.ref, 1);   /* forward passes only: one layer's activations, no cost */
    }
    r.prompt = policy_encode_prompt(&r.pol, c.system_prompt, c.prompt, &r.P, r.err, sizeof r.err);
    if (!r.prompt) { fprintf(stderr, "grpo2048 train: prompt: %s\n", r.err); goto cleanup; }
    if (r.P > c.max_prompt_length) {
        fprintf(stderr, "grpo2048 train: the prompt is %d tokens, more than max_prompt_length=%d\n", r.P,
                c.max_prompt_length);
        exit_code = 2;
        goto cleanup;
    }
    if (r.P + c.max_completion_length > r.pol.model.cfg.max_position_embeddings) {
        fprintf(stderr, "grpo2048 train: prompt (%d tokens) + max_completion_length (%d) exceeds the model's "
                "max_position_embeddings (%d)\n", r.P, c.max_completion_length, r.pol.model.cfg.max_position_embeddings);
        exit_code = 2;
        goto cleanup;
    }

    /* 3. Layout, optimizer, buffers. */
    r.G = c.num_generations;
    r.B = c.per_device_train_batch_size;
    r.A = c.gradient_accumulation_steps;
    config_generation_layout(&c, &r.S, &r.N);
    if (r.W > 1) {
        /* TRL: generation_batch_size = per_device_train_batch_size × ranks × steps_per_generation; each rank
         * generates its N = B·S (whole groups: advantages stay group-local) */
        if (c.generation_batch_size_set) {
            if (c.generation_batch_size % (r.B * r.W) != 0) {
                snprintf(r.err, sizeof r.err, "key 'generation_batch_size': %d must be a multiple of "
                         "per_device_train_batch_size × ranks = %d × %d", c.generation_batch_size, r.B, r.W);
                fprintf(stderr, "grpo2048 train: %s\n", r.err);
                exit_code = 2;
                goto cleanup;
            }
            r.S = c.generation_batch_size / (r.B * r.W);
            r.N = r.B * r.S;
        }
        if (r.N % r.G != 0) {
            snprintf(r.err, sizeof r.err, "key 'num_generations': %d must divide each rank's %d completions per "
                     "generation (groups never span ranks)", r.G, r.N);
            fprintf(stderr, "grpo2048 train: %s\n", r.err);
            exit_code = 2;
            goto cleanup;
        }
    }
    r.mu = c.num_iterations;
    r.groups = r.N / r.G;
    r.max_new = c.max_completion_length;
    r.generate_every = r.S * r.mu;
    r.keep_old = r.A % r.generate_every != 0;   /* TRL: gradient_accumulation_steps % generate_every != 0 */
    r.scale = (grpo_scale)grpo_scale_from_name(c.scale_rewards);
    grpo_loss_params_default(&r.lp, r.max_new, r.A, r.S);
    r.lp.type = (grpo_loss_type)grpo_loss_type_from_name(c.loss_type);
    r.lp.level = (grpo_is_level)grpo_is_level_from_name(c.importance_sampling_level);
    r.lp.epsilon_low = (float)c.epsilon;
    r.lp.epsilon_high = (float)c.epsilon_high;
    r.lp.delta = c.delta_set ? (float)c.delta : 0.0f;
    r.lp.beta = (float)c.beta;
    r.lp.use_bias_correction_kl = c.use_bias_correction_kl;
    r.lp.sapo_temperature_pos = (float)c.sapo_temperature_pos;
    r.lp.sapo_temperature_neg = (float)c.sapo_temperature_neg;
    r.lp.vespo_k_pos = (float)c.vespo_k_pos;
    r.lp.vespo_lambda_pos = (float)c.vespo_lambda_pos;
    r.lp.vespo_k_neg = (float)c.vespo_k_neg;
    r.lp.vespo_lambda_neg = (float)c.vespo_lambda_neg;
    r.lp.entropy_coef = (float)c.entropy_coef;
    if (r.W > 1) {
        /* Data-parallel: each rank's loss is weighted so that the ranks' summed gradients (reduce_step) are the
         * gradient of one process's loss over the whole batch (W·B per micro-batch), for every loss type
         * (grpo.h's normalisers): the accumulation divisor a becomes A·W (the mean over W·B sequences: grpo,
         * sapo, luspo; dr_grpo's W·B·max_completion_length), steps_per_generation S·W leaves dapo/cispo/vespo
         * at Σ / (num_items_in_batch · A / S) with num_items_in_batch the whole batch's (make_generation), and
         * bnpo divides by the whole micro-batch's tokens (micro_step: bnpo_tokens). TRL gets the same by
         * dividing by num_processes before DDP averages the gradients. */
        r.lp.gradient_accumulation_steps = r.A * r.W;
        r.lp.steps_per_generation = r.S * r.W;
    }
    const size_t nparams = r.pol.model.num_params;
    if (adamw_init(&r.opt, nparams) != 0) { fprintf(stderr, "grpo2048 train: out of memory\n"); goto cleanup; }
    adamw_hparams hp = policy_adamw_hparams(&c);
    lr_schedule sched = (lr_schedule)lr_schedule_from_name(c.lr_scheduler_type);
    const size_t mt = (size_t)r.B * (r.P + r.max_new);
    r.tokens = malloc(sizeof(int) * mt);
    r.mask = malloc(sizeof(float) * mt);
    r.logp = malloc(sizeof(float) * mt);
    r.old_logp = malloc(sizeof(float) * mt);
    r.ref_logp = malloc(sizeof(float) * mt);
    r.entropy = malloc(sizeof(float) * mt);
    r.emask = malloc(sizeof(float) * mt);
    r.dlogp = malloc(sizeof(float) * mt);
    r.dentropy = malloc(sizeof(float) * mt);
    r.samp = malloc(sizeof(float) * mt);
    r.is_ratio = malloc(sizeof(float) * mt);
    r.func_values = malloc(sizeof(double) * (size_t)r.N * r.W);
    if (r.W > 1 && (gen_alloc(&r.all, r.N * r.W, r.max_new, 0, 0, 0) != 0 ||
                    !(r.rank_reward_time = calloc((size_t)r.W, sizeof(double))))) {
        fprintf(stderr, "grpo2048 train: out of memory\n");
        goto cleanup;
    }
    r.adv = malloc(sizeof(float) * (size_t)r.B);
    if (gen_alloc(&r.gen, r.N, r.max_new, r.keep_old, r.have_ref, 0) != 0 || !r.samp || !r.is_ratio || !r.tokens || !r.mask || !r.logp ||
        !r.old_logp || !r.ref_logp || !r.entropy || !r.emask || !r.dlogp || !r.dentropy || !r.func_values || !r.adv) {
        fprintf(stderr, "grpo2048 train: out of memory\n");
        goto cleanup;
    }

    /* 4. The rest of the resumed state. */
    if (resuming) {
        snprintf(path, sizeof path, "%s/optimizer.bin", resume_dir);
        if (adamw_load(&r.opt, path, r.err, sizeof r.err) != 0) {
            fprintf(stderr, "grpo2048 train: resume: %s\n", r.err);
            exit_code = 2;
            goto cleanup;
        }
        start_step = cs.global_step;
        r.num_tokens = cs.num_input_tokens_seen;
        const int need_gen = ((long long)start_step * r.A) % r.generate_every != 0;
        if (need_gen != cs.has_generation) {
            fprintf(stderr, "grpo2048 train: resume: checkpoint %s %s a buffered generation, but this layout %s one "
                    "at step %d\n", resume_dir, cs.has_generation ? "holds" : "lacks", need_gen ? "needs" : "does not use",
                    start_step);
            exit_code = 2;
            goto cleanup;
        }
    }

    /* 5. The backend, from the host model and optimizer state as loaded (after the pool's fork: a GPU's
     * runtime must not be started before it). The reference model goes on the same device. */
    if (backend_create(&r.pb, c.device, backend_precision(c.tf32, c.bf16), &r.pol.model, &r.opt, r.err,
                       sizeof r.err) != 0) {
        fprintf(stderr, "grpo2048 train: %s\n", r.err);
        exit_code = 2;
        goto cleanup;
    }
    if (r.have_ref && backend_create(&r.rb, r.pb.ops->name, r.pb.precision, &r.ref, NULL, r.err, sizeof r.err) != 0) {
        fprintf(stderr, "grpo2048 train: reference model: %s\n", r.err);
        goto cleanup;
    }
    if (backend_set_attn_implementation(&r.pb, c.attn_implementation) != 0 ||
        (r.have_ref && backend_set_attn_implementation(&r.rb, c.attn_implementation) != 0)) {
        fprintf(stderr, "grpo2048 train: %s\n", r.pb.err[0] ? r.pb.err : r.rb.err);
        exit_code = 2;
        goto cleanup;
    }
    /* TRL's importance-sampling correction: true / false as TRL; auto = on where the training forward runs at
     * another precision than the generator (bf16 products on the CPU as applied, tf32 / bf16 on CUDA) */
    {
        const char *v = c.vllm_importance_sampling_correction;
        const int mismatch = r.pol.model.bf16 || r.pb.precision != BACKEND_FP32;
        r.vis_on = !strcmp(v, "true") || (!strcmp(v, "auto") && mismatch);
        r.vis.mode = (grpo_vllm_is_mode)grpo_vllm_is_mode_from_name(c.vllm_importance_sampling_mode);
        r.vis.clip_min = c.vllm_importance_sampling_clip_min_set ? c.vllm_importance_sampling_clip_min : NAN;
        r.vis.clip_max = c.vllm_importance_sampling_clip_max_set ? c.vllm_importance_sampling_clip_max : NAN;
        if (r.vis_on && !(r.gen.samp_logp = calloc((size_t)r.N * r.max_new, sizeof(float)))) {
            fprintf(stderr, "grpo2048 train: out of memory\n");
            goto cleanup;
        }
        char cmin[32] = "none", cmax[32] = "none";
        if (!isnan(r.vis.clip_min)) snprintf(cmin, sizeof cmin, "%g", r.vis.clip_min);
        if (!isnan(r.vis.clip_max)) snprintf(cmax, sizeof cmax, "%g", r.vis.clip_max);
        if (r.vis_on)
            fprintf(stderr, "grpo2048 train: importance-sampling correction of the generator/trainer mismatch: %s, "
                    "clip [%s, %s]%s\n", c.vllm_importance_sampling_mode, cmin, cmax,
                    r.keep_old ? "" : " (old log-probs are the training forward's: no extra pass)");
        else if (!strcmp(v, "auto") && c.bf16)
            fprintf(stderr, "grpo2048 train: importance-sampling correction off (auto: bf16 not applied, training and "
                    "generation both fp32)\n");
    }
    if (resuming && ((long long)start_step * r.A) % r.generate_every != 0) {   /* the buffered generation */
        gen_file(path, sizeof path, resume_dir, r.rank);   /* this rank's own */
        if (gen_load(&r.gen, path, r.err, sizeof r.err) != 0) {
            fprintf(stderr, "grpo2048 train: resume: %s\n", r.err);
            exit_code = 2;
            goto cleanup;
        }
    }

    /* Data-parallel: the ranks start from the same weights (a model folder that differs between nodes
     * would make them train different models silently). */
    if (r.W > 1 && dist_check_same(r.pol.model.params, r.pol.model.num_params, "initial weights", r.err, sizeof r.err) != 0)
        dist_abort(2, "train", "%s", r.err);

    /* 6. The metrics file (rank 0's): a new run, or the resumed run's own row trimmed to the checkpoint's step. */
    if (r.rank != 0) goto metrics_ready;
    if (make_dirs(c.output_dir, r.err, sizeof r.err) != 0) { fprintf(stderr, "grpo2048 train: %s\n", r.err); goto cleanup; }
    snprintf(path, sizeof path, "%s/metrics.sqlite", c.output_dir);
    r.config_yaml = config_to_yaml(&c);
    if (!r.config_yaml) { fprintf(stderr, "grpo2048 train: out of memory\n"); goto cleanup; }
    if (resuming) {
        int missing = 0;
        r.db = metrics_resume(path, cs.run_id, start_step, r.config_yaml, &missing, r.err, sizeof r.err);
        if (!r.db && missing) {
            fprintf(stderr, "grpo2048 train: note: %s; logging to a new run (steps 1..%d are not in it)\n", r.err,
                    start_step);
            r.db = metrics_open(path, "grpo", r.config_yaml, r.err, sizeof r.err);
        }
        /* checkpoints after the resumed one belong to the abandoned continuation: they would be rewritten
         * (identically on the CPU) and must not outrank the new ones for `latest` or save_total_limit */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/..", resume_dir);
        if (r.db && same_dir(parent, c.output_dir)) {
            int n = checkpoint_list(c.output_dir, NULL, 0);
            int *steps = n ? malloc(sizeof(int) * (size_t)n) : NULL;
            if (steps) {
                n = checkpoint_list(c.output_dir, steps, n);
                for (int i = 0; i < n; i++) {
                    if (steps[i] <= start_step) continue;
                    snprintf(path, sizeof path, "%s/checkpoint-%d", c.output_dir, steps[i]);
                    fprintf(stderr, "grpo2048 train: removing %s (after the resumed step %d)\n", path, start_step);
                    remove_tree(path);
                }
                free(steps);
            }
        }
    } else {
        int n = checkpoint_list(c.output_dir, NULL, 0);
        if (n > 0)
            fprintf(stderr, "grpo2048 train: note: %s already holds %d checkpoint%s of an earlier run; this new run "
                    "replaces them as it reaches their steps (use --resume to continue that run instead)\n",
                    c.output_dir, n, n == 1 ? "" : "s");
        r.db = metrics_open(path, "grpo", r.config_yaml, r.err, sizeof r.err);
    }
    if (!r.db) { fprintf(stderr, "grpo2048 train: %s\n", r.err); goto cleanup; }

    if (r.W > 1)
        fprintf(stderr, "grpo2048 train: data-parallel over %d ranks (MPI%s): per rank %d completions per generation, "
                "%d of each micro-batch of %d; rank 0 writes metrics and checkpoints\n", r.W,
                strcmp(r.pb.ops->name, "cuda") ? "" : ", NCCL for the gradients", r.N, r.B, r.B * r.W);
    fprintf(stderr, "grpo2048 train: device %s | model %s: %zu parameters, %d layers, hidden %d, vocab %d | "
            "prompt %d tokens | %d completions per generation (%d group%s of %d), %d micro-batch%s of %d per step%s | "
            "rewards: %s, %d worker%s, %.2f s/game | output %s\n", r.pb.description, c.model_name_or_path, nparams,
            r.pol.model.cfg.num_hidden_layers, r.pol.model.cfg.hidden_size, r.pol.model.cfg.vocab_size, r.P, r.N,
            r.groups, r.groups == 1 ? "" : "s", r.G, r.A, r.A == 1 ? "" : "es", r.B, r.mu > 1 ? ", each generation used num_iterations times" : "",
            rcfg.parallel ? "parallel" : "sequential", rcfg.workers, rcfg.workers == 1 ? "" : "s", rcfg.timeout,
            c.output_dir);
    if (resuming)
        fprintf(stderr, "grpo2048 train: resuming run %d from %s at step %d\n", metrics_run_id(r.db), resume_dir,
                start_step);
metrics_ready:

    /* GPU telemetry (docs/metrics.md): NVML sampled in a thread while the model runs on the CUDA device
     * (the backend's device 0; CUDA_VISIBLE_DEVICES picks the GPU, and the telemetry maps it the same way) */
    if (!strcmp(r.pb.ops->name, "cuda")) {
        char note[512];
        r.gpu = gpu_telemetry_start(0, GPU_TELEMETRY_PERIOD_MS, note, sizeof note);
        fprintf(stderr, "grpo2048 train: %s\n", note);
    }

    stop_signal_install("grpo2048 train: stopping after this step, then saving a checkpoint");

    /* 7. The loop. */
    progress_start(&pb, "train", c.max_steps, progress_out);
    progress_started = 1;
    pb.log_every = c.logging_steps;
    pb.done = pb.initial = start_step;
    status = "completed";
    step = start_step;
    for (int s = start_step + 1; s <= c.max_steps; s++) {
        if (dist_any(stop_signal_received())) { status = "interrupted"; break; }   /* all ranks stop together */
        const double t_step = now_seconds();
        step_acc acc;
        memset(&acc, 0, sizeof acc);
        if (r.rank_reward_time) memset(r.rank_reward_time, 0, sizeof(double) * (size_t)r.W);
        if (r.db && metrics_begin_step(r.db, s) != 0) goto metrics_failed;
        double t_train_total = 0;
        backend_zero_grad(&r.pb);
        for (int a = 0; a < r.A; a++) {
            const long long micro = (long long)(s - 1) * r.A + a;
            if (micro % r.generate_every == 0) {
                if (make_generation(&r, (int)(micro / r.generate_every) + 1, s, &acc) != 0) goto step_failed;
            } else if (r.gen.number != (int)(micro / r.generate_every) + 1) {
                TRAIN_ABORT("micro-step %lld needs generation %lld, the buffer holds %d", micro,
                            micro / r.generate_every + 1, r.gen.number);
            }
            gpu_telemetry_phase(r.gpu, GPU_PHASE_TRAIN);
            const double t0 = now_seconds();
            if (micro_step(&r, (int)(micro % r.S), micro % r.generate_every < r.S, &acc) != 0) goto step_failed;
            t_train_total += now_seconds() - t0;
        }
        const double t0 = now_seconds();
        /* the gradient all-reduce (under mpirun also with one rank: `mpirun -np 1` exercises NCCL on one GPU) */
        if (dist_get()->initialized && reduce_step(&r, &acc) != 0) goto step_failed;
        /* A non-finite loss or gradient would make every weight NaN at the optimizer step: the run stops
         * here as failed, naming the step and the first non-finite quantity; nothing is saved after it. */
        if (!isfinite(acc.loss)) {
            snprintf(r.err, sizeof r.err, "the loss is %g (not finite); stopping before the optimizer step, nothing "
                     "of this step is saved", acc.loss);
            goto step_failed;
        }
        const double grad_norm = backend_clip_grad_norm(&r.pb, c.max_grad_norm);
        if (!isfinite(grad_norm)) {
            snprintf(r.err, sizeof r.err, "the gradient norm is %g (not finite; loss %g); stopping before the "
                     "optimizer step, nothing of this step is saved", grad_norm, acc.loss);
            goto step_failed;
        }
        const double lr = lr_at_warmup(sched, c.learning_rate, s - 1, c.max_steps, config_warmup_steps(&c, c.max_steps));
        hp.lr = (float)lr;
        if (backend_adamw_step(&r.pb, &hp) != 0) {
            snprintf(r.err, sizeof r.err, "optimizer step: %s", r.pb.err);
            goto step_failed;
        }
#if defined(GRPO2048_DIST_CHECK_EVERY_STEP)
        /* debug builds: the ranks' weights after every optimizer step (else at every checkpoint) */
        if (r.W > 1 && (backend_download(&r.pb, BACKEND_PARAMS) != 0 ||
                        dist_check_same(r.pol.model.params, r.pol.model.num_params, "weights", r.err, sizeof r.err) != 0))
            goto step_failed;
#endif
        if (r.have_ref && c.sync_ref_model && s % c.ref_model_sync_steps == 0 && sync_reference(&r) != 0) goto step_failed;
        t_train_total += now_seconds() - t0;
        /* evaluation on rank 0 (its games are few; the others wait at the next step's first collective) */
        if (r.rank == 0 && c.eval_steps > 0 && s % c.eval_steps == 0 && evaluate(&r) != 0) goto step_failed;
        gpu_telemetry_phase(r.gpu, GPU_PHASE_OTHER);   /* logging, checkpoint, until the next generation */
        double times[2] = {now_seconds() - t_step, t_train_total};
        dist_allreduce_f64(times, 2, DIST_MAX);   /* the slowest rank's: the step waits for it */
        const double step_time = times[0];
        t_train_total = times[1];
        if (r.db && (log_step(&r, &acc, grad_norm, lr, step_time, t_train_total) != 0 || metrics_commit_step(r.db) != 0))
            goto metrics_failed;
        step = s;

        char postfix[320], mem[48];
        backend_memory bm;
        backend_get_memory(&r.pb, &bm);
        progress_format_memory(mem, sizeof mem, strcmp(r.pb.ops->name, "cuda") ? -1.0
                               : (double)(bm.total_bytes - bm.free_bytes) / 1073741824.0);
        /* the first three fields stay on a narrow terminal (progress.h) */
        if (acc.ngen > 0)
            snprintf(postfix, sizeof postfix, "reward=%.3f, %.0f tok/s, %s, loss=%.4f, len=%.0f, gen=%.1fs, "
                     "rew_wait=%.1fs, train=%.1fs", acc.g.reward / acc.ngen,
                     step_time > 0 ? acc.train_tokens / step_time : 0, mem, acc.loss, acc.g.mean_len / acc.ngen,
                     acc.g.generation_time, acc.g.reward_wait_time, t_train_total);
        else
            snprintf(postfix, sizeof postfix, "loss=%.4f, %.0f tok/s, %s, train=%.1fs (reusing generation %d)", acc.loss,
                     step_time > 0 ? acc.train_tokens / step_time : 0, mem, t_train_total, r.gen.number);
        progress_update(&pb, s, postfix);

        if (c.save_steps > 0 && s % c.save_steps == 0 && s < c.max_steps) {
            if (save_checkpoint(&r, s) != 0) {
                progress_clear(&pb);
                fprintf(stderr, "grpo2048 train: checkpoint: %s\n", r.err);
                status = "failed";
                break;
            }
            last_saved = s;
        }
        continue;
    step_failed:
        progress_clear(&pb);
        fprintf(stderr, "grpo2048 train: step %d: %s\n", s, r.err);
        status = "failed";
        break;
    metrics_failed:
        progress_clear(&pb);
        fprintf(stderr, "grpo2048 train: metrics: %s\n", metrics_error(r.db));
        status = "failed";
        break;
    }
    progress_finish(&pb);
    progress_started = 0;
    if (stop_signal_received() && !strcmp(status, "completed") && step < c.max_steps) status = "interrupted";
    if (strcmp(status, "failed") != 0 && step > start_step && step != last_saved) {
        if (save_checkpoint(&r, step) != 0 || (!strcmp(status, "completed") && save_final(&r) != 0)) {
            fprintf(stderr, "grpo2048 train: saving: %s\n", r.err);
            status = "failed";
        }
    }
    if (step > start_step && r.rank == 0) {
        backend_memory mem;
        backend_get_memory(&r.pb, &mem);
        fprintf(stderr, "grpo2048 train: %s memory: peak %.2f GiB for the model (weights, gradients, optimizer, "
                "activations); %.1f of %.1f GiB free\n", r.pb.ops->name, mem.peak_bytes / 1073741824.0,
                mem.free_bytes / 1073741824.0, mem.total_bytes / 1073741824.0);
    }
    if (r.rank != 0) { /* rank 0 reports */ }
    else if (!strcmp(status, "completed"))
        fprintf(stderr, "grpo2048 train: completed %d steps; model saved to %s (checkpoint %s/checkpoint-%d)\n", step,
                c.output_dir, c.output_dir, step);
    else if (!strcmp(status, "interrupted"))
        fprintf(stderr, "grpo2048 train: interrupted after step %d%s; continue with --resume\n", step,
                step > start_step ? " (checkpoint saved)" : "");
    const int summary_run_id = r.db ? metrics_run_id(r.db) : 0;   /* rank 0's */
    if (r.db && metrics_finish(r.db, status) != 0) {
        fprintf(stderr, "grpo2048 train: metrics: %s\n", metrics_error(NULL));
        status = "failed";
    }
    r.db = NULL;
    if (step > start_step && r.rank == 0) summary_print_end(stderr, c.output_dir, summary_run_id, "grpo2048 train: ");
    exit_code = !strcmp(status, "completed") ? 0 : !strcmp(status, "interrupted") ? 128 + stop_signal_received() : 1;
cleanup:
    /* Data-parallel: a rank that fails ends the job (the others would wait in a collective forever), saying
     * which rank it is (before MPI_Init it exits, and mpirun ends the others) */
    if (r.W > 1 && exit_code != 0 && strcmp(status, "interrupted") != 0)
        dist_abort(exit_code, "train", "%s", r.err[0] ? r.err : "failed (see above)");
    if (progress_started) progress_finish(&pb);
    if (r.db) metrics_finish(r.db, "failed");
    gpu_telemetry_stop(r.gpu);
    reward_pool_destroy(r.pool);
    gen_free(&r.gen);
    free(r.tokens); free(r.mask); free(r.logp); free(r.old_logp); free(r.ref_logp); free(r.entropy); free(r.emask);
    free(r.dlogp); free(r.dentropy); free(r.samp); free(r.is_ratio); free(r.adv); free(r.func_values); free(r.prompt); free(r.config_yaml);
    backend_free(&r.rb);
    backend_free(&r.pb);
    adamw_free(&r.opt);
    if (r.have_ref) llama_free(&r.ref);
    policy_free(&r.pol);
    checkpoint_state_free(&cs);
    config_free(&c);
    gen_free(&r.all);
    free(r.rank_reward_time);
    if (progress_out != stderr) fclose(progress_out);
    dist_finalize();
    if (lock_fd >= 0) close(lock_fd);   /* the last thing: the folder is complete */
    return exit_code;
}
