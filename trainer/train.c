/*
 * trainer/train.c: `grpo2048 train CONFIG.yaml` — the GRPO loop.
 *
 * One step, data flowing one way (see ../shared/DESIGN.md):
 *   generate  per_device_train_batch_size × gradient_accumulation_steps completions, num_generations
 *             per group, every group from the same prompt (prefilled once, KV shared by the group);
 *   reward    each completion through the sandboxed reward pool; completions of a group play the same
 *             game seeds, derived from (seed, step, group);
 *   update    group-relative advantages → the clipped surrogate over micro-batches of
 *             per_device_train_batch_size → accumulated gradients → clip → AdamW → next LR;
 *   log       one SQLite transaction per step (TRL's metric names) and the progress bar.
 * The reward pool is forked first, before any OpenMP or BLAS work, so its workers start single-threaded.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/rewards.h"
#include "trainer/checkpoint.h"
#include "trainer/grpo.h"
#include "trainer/metrics.h"
#include "trainer/optim.h"
#include "trainer/policy.h"
#include "trainer/progress.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

typedef struct {
    int n;                 /* completions per step (N) */
    int max_new;           /* max_completion_length */
    int *tokens;           /* (N, max_new) generated ids, -1 past the end */
    int *len;              /* (N,) generated tokens, stop token included */
    int *terminated;       /* (N,) 1 when the row ended with a stop token */
    char **text;           /* (N,) decoded completions */
    double *reward;        /* (N,) */
    float *adv;            /* (N,) */
    reward_result *res;    /* (N,) */
    uint64_t *seeds;       /* (N,) game seeds */
} step_batch;

static void batch_free(step_batch *b) {
    if (b->text) for (int i = 0; i < b->n; i++) free(b->text[i]);
    free(b->tokens); free(b->len); free(b->terminated); free(b->text); free(b->reward); free(b->adv);
    free(b->res); free(b->seeds);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(step_batch *b, int n, int max_new) {
    memset(b, 0, sizeof *b);
    b->n = n; b->max_new = max_new;
    b->tokens = malloc(sizeof(int) * (size_t)n * max_new);
    b->len = calloc(n, sizeof(int));
    b->terminated = calloc(n, sizeof(int));
    b->text = calloc(n, sizeof(char *));
    b->reward = calloc(n, sizeof(double));
    b->adv = calloc(n, sizeof(float));
    b->res = calloc(n, sizeof(reward_result));
    b->seeds = calloc(n, sizeof(uint64_t));
    return b->tokens && b->len && b->terminated && b->text && b->reward && b->adv && b->res && b->seeds ? 0 : -1;
}

/* Fills tokens (B, T) = prompt ++ completion ++ pad and mask (B, T) = 1 on completion tokens, for
 * completions [first, first + B) of the batch. Returns T. */
static int build_micro_batch(const policy *p, const int *prompt, int P, const step_batch *sb, int first, int B,
                             int *tokens, float *mask) {
    int T = P;
    for (int b = 0; b < B; b++) if (P + sb->len[first + b] > T) T = P + sb->len[first + b];
    for (int b = 0; b < B; b++) {
        int L = sb->len[first + b];
        const int *c = sb->tokens + (size_t)(first + b) * sb->max_new;
        for (int t = 0; t < T; t++) {
            int id = t < P ? prompt[t] : t < P + L ? c[t - P] : p->pad_id;
            tokens[(size_t)b * T + t] = id;
            mask[(size_t)b * T + t] = (t >= P && t < P + L) ? 1.0f : 0.0f;
        }
    }
    return T;
}

static double mean_of(const double *x, int n) { double s = 0; for (int i = 0; i < n; i++) s += x[i]; return n ? s / n : 0; }
static double std_of(const double *x, int n) {
    if (n < 2) return 0.0;
    double m = mean_of(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

static int save_final(const char *out_dir, const policy *p, const grpo_config *c, char *err, size_t errlen) {
    if (llama_save(&p->model, out_dir, 0, err, errlen) != 0) return -1;
    static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json"};
    char src[4096], dst[4096];
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", c->model_name_or_path, tok_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, tok_files[i]);
        if (access(src, R_OK) == 0 && copy_file_atomic(src, dst, err, errlen) != 0) return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    char err[1024] = "";
    grpo_config c;
    int rc = policy_parse_args(argc, argv, "train", &c, err, sizeof err);
    if (rc == 1) return 0;
    if (rc != 0) { fprintf(stderr, "grpo2048 train: %s\n", err); return 2; }

    /* Everything the run holds, released in one place (cleanup:) on every path. */
    int exit_code = 1;
    reward_pool *pool = NULL;
    policy pol, ref;
    memset(&pol, 0, sizeof pol);
    memset(&ref, 0, sizeof ref);
    int have_ref = 0;
    int *prompt = NULL;
    unsigned char *decay = NULL;
    adamw_state opt;
    memset(&opt, 0, sizeof opt);
    char *config_yaml = NULL;
    metrics_db *db = NULL;
    step_batch sb;
    memset(&sb, 0, sizeof sb);
    int *tokens = NULL;
    float *mask = NULL, *logp = NULL, *old_logp = NULL, *ref_logp = NULL, *entropy = NULL, *dlogp = NULL;
    double *func_values = NULL;
    const char *status = "failed";
    char path[4096];

    /* 1. The reward pool first: its workers must fork before any thread exists. */
    reward_config rcfg;
    reward_config_defaults(&rcfg);
    rcfg.parallel = c.rewards.parallel;
    rcfg.workers = c.rewards.workers;
    rcfg.timeout = c.rewards.timeout;
    rcfg.games_per_strategy = c.rewards.games_per_strategy;
    rcfg.board_size = c.rewards.board_size;
    rcfg.target = (uint32_t)c.rewards.target;
    rcfg.probability_fours = c.rewards.probability_fours;
    rcfg.max_stuck_moves = c.rewards.max_stuck_moves;
    rcfg.memory_limit = (size_t)c.rewards.memory_limit_mb << 20;
    for (int f = 0; f < RF_COUNT; f++) rcfg.weights[f] = c.rewards.weights[f];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (rcfg.workers == 0) rcfg.workers = (int)(cores > 0 ? cores : 1);
    else if (rcfg.workers > 4 * cores) {
        fprintf(stderr, "grpo2048 train: rewards.workers=%d is more than 4x the %ld cores; using %ld\n",
                rcfg.workers, cores, 4 * cores);
        rcfg.workers = (int)(4 * cores);
    }
    if (!rcfg.parallel) rcfg.workers = 1;
    pool = reward_pool_create(&rcfg, err, sizeof err);
    if (!pool) { fprintf(stderr, "grpo2048 train: reward pool: %s\n", err); goto cleanup; }

    /* 2. The policy, the prompt, the optimizer. */
    if (!strcmp(c.device, "cuda")) {
        fprintf(stderr, "grpo2048 train: device: cuda requested, but this build has no CUDA backend\n");
        exit_code = 2;
        goto cleanup;
    }
    if (policy_load(&pol, &c, 0, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 train: %s\n", err);
        goto cleanup;
    }
    if (c.beta > 0) {
        if (policy_load(&ref, &c, 0, err, sizeof err) != 0) {
            fprintf(stderr, "grpo2048 train: reference model: %s\n", err);
            goto cleanup;
        }
        have_ref = 1;
    }
    int P = 0;
    prompt = policy_encode_prompt(&pol, c.system_prompt, c.prompt, &P, err, sizeof err);
    if (!prompt) { fprintf(stderr, "grpo2048 train: prompt: %s\n", err); goto cleanup; }
    if (P > c.max_prompt_length) {
        fprintf(stderr, "grpo2048 train: the prompt is %d tokens, more than max_prompt_length=%d\n", P, c.max_prompt_length);
        exit_code = 2;
        goto cleanup;
    }
    if (P + c.max_completion_length > pol.model.cfg.max_position_embeddings) {
        fprintf(stderr, "grpo2048 train: prompt (%d tokens) + max_completion_length (%d) exceeds the model's "
                "max_position_embeddings (%d)\n", P, c.max_completion_length, pol.model.cfg.max_position_embeddings);
        exit_code = 2;
        goto cleanup;
    }
    const size_t nparams = pol.model.num_params;
    decay = malloc(nparams);
    if (adamw_init(&opt, nparams) != 0 || !decay) { fprintf(stderr, "grpo2048 train: out of memory\n"); goto cleanup; }
    for (int i = 0; i < pol.model.num_tensors; i++) {
        const llama_tensor *t = &pol.model.tensors[i];
        memset(decay + (t->data - pol.model.params), t->decay ? 1 : 0, t->numel);
    }
    adamw_hparams hp = {(float)c.learning_rate, (float)c.adam_beta1, (float)c.adam_beta2, (float)c.adam_epsilon,
                        (float)c.weight_decay};
    lr_schedule sched = (lr_schedule)lr_schedule_from_name(c.lr_scheduler_type);

    if (make_dirs(c.output_dir, err, sizeof err) != 0) { fprintf(stderr, "grpo2048 train: %s\n", err); goto cleanup; }
    snprintf(path, sizeof path, "%s/metrics.sqlite", c.output_dir);
    config_yaml = config_to_yaml(&c);
    db = metrics_open(path, "grpo", config_yaml, err, sizeof err);
    if (!db) { fprintf(stderr, "grpo2048 train: %s\n", err); goto cleanup; }

    const int G = c.num_generations;
    const int MB = c.per_device_train_batch_size;
    const int N = MB * c.gradient_accumulation_steps;
    const int groups = N / G;
    const int max_new = c.max_completion_length;
    fprintf(stderr, "grpo2048 train: device cpu | model %s: %zu parameters, %d layers, hidden %d, vocab %d | "
            "prompt %d tokens | %d completions/step (%d groups of %d) | rewards: %s, %d worker%s, %.2f s/game | "
            "output %s\n", c.model_name_or_path, nparams, pol.model.cfg.num_hidden_layers, pol.model.cfg.hidden_size,
            pol.model.cfg.vocab_size, P, N, groups, G, rcfg.parallel ? "parallel" : "sequential", rcfg.workers,
            rcfg.workers == 1 ? "" : "s", rcfg.timeout, c.output_dir);

    int maxT = P + max_new;
    tokens = malloc(sizeof(int) * (size_t)MB * maxT);
    mask = malloc(sizeof(float) * (size_t)MB * maxT);
    logp = malloc(sizeof(float) * (size_t)MB * maxT);
    old_logp = malloc(sizeof(float) * (size_t)MB * maxT);
    ref_logp = have_ref ? malloc(sizeof(float) * (size_t)MB * maxT) : NULL;
    entropy = malloc(sizeof(float) * (size_t)MB * maxT);
    dlogp = malloc(sizeof(float) * (size_t)MB * maxT);
    func_values = malloc(sizeof(double) * (size_t)N);
    if (!func_values || batch_alloc(&sb, N, max_new) != 0 || !tokens || !mask || !logp || !old_logp || !entropy || !dlogp ||
        (have_ref && !ref_logp)) {
        fprintf(stderr, "grpo2048 train: out of memory\n");
        goto cleanup;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    progress pb;
    progress_start(&pb, "train", c.max_steps, stderr);
    pb.log_every = c.logging_steps;
    status = "completed";
    double num_tokens_total = 0;
    llama_sampling sampling = {(float)c.temperature, c.top_k, (float)c.top_p};
    int step;
    for (step = 1; step <= c.max_steps; step++) {
        if (stop_requested) { status = "interrupted"; step--; break; }
        double t_step = now_seconds();

        /* Generate: one call per group; the group shares the prefilled prompt. */
        for (int g = 0; g < groups; g++) {
            uint64_t seed = game_seed_mix((uint64_t)c.seed, (uint64_t)step, (uint64_t)g);
            if (llama_generate(&pol.model, prompt, P, G, max_new, &sampling, seed,
                               sb.tokens + (size_t)g * G * max_new, sb.len + (size_t)g * G, err, sizeof err) != 0) {
                fprintf(stderr, "\ngrpo2048 train: generation: %s\n", err);
                status = "failed";
                goto done;
            }
        }
        double generation_time = now_seconds() - t_step;
        double comp_tokens = 0;
        for (int i = 0; i < N; i++) {
            const int *row = sb.tokens + (size_t)i * max_new;
            int L = sb.len[i];
            sb.terminated[i] = L > 0 && policy_is_stop(&pol, row[L - 1]);
            free(sb.text[i]);
            sb.text[i] = policy_decode(&pol, row, L);
            if (!sb.text[i]) { fprintf(stderr, "\ngrpo2048 train: out of memory\n"); status = "failed"; goto done; }
            comp_tokens += L;
            /* every completion of group g plays the same games */
            sb.seeds[i] = game_seed_mix((uint64_t)c.seed ^ 0x2048u, (uint64_t)step, (uint64_t)(i / G));
        }

        /* Reward. */
        double t_reward = now_seconds();
        if (!c.rewards.parallel) fprintf(stderr, "\n--- step %d: rewards, one completion at a time ---\n", step);
        if (reward_pool_score(pool, N, (const char *const *)sb.text, sb.seeds, sb.res,
                              c.rewards.parallel ? NULL : stderr, err, sizeof err) != 0) {
            fprintf(stderr, "\ngrpo2048 train: rewards: %s\n", err);
            status = "failed";
            goto done;
        }
        double reward_time = now_seconds() - t_reward;
        for (int i = 0; i < N; i++) sb.reward[i] = sb.res[i].reward;
        double reward_std_mean, frac_zero_std;
        grpo_advantages(sb.reward, N, G, (grpo_scale)grpo_scale_from_name(c.scale_rewards), sb.adv,
                        &reward_std_mean, &frac_zero_std);

        /* Update: micro-batches of MB completions, gradients accumulated over the step. */
        double t_train = now_seconds();
        llama_zero_grad(&pol.model);
        grpo_loss_params lp = {(grpo_loss_type)grpo_loss_type_from_name(c.loss_type), (float)c.epsilon,
                               (float)c.epsilon_high, (float)c.beta, max_new, c.gradient_accumulation_steps, comp_tokens};
        double loss = 0, kl_sum = 0, ent_sum = 0, clip_low = 0, clip_high = 0;
        for (int mb = 0; mb < c.gradient_accumulation_steps; mb++) {
            int first = mb * MB;
            int T = build_micro_batch(&pol, prompt, P, &sb, first, MB, tokens, mask);
            if (have_ref) llama_forward_logprobs(&ref.model, tokens, MB, T, ref_logp, NULL);
            llama_forward_logprobs(&pol.model, tokens, MB, T, logp, entropy);
            /* num_iterations = 1: the sampling policy is the current one, so old_logp = logp, detached. */
            memcpy(old_logp, logp, sizeof(float) * (size_t)MB * T);
            grpo_loss_stats st;
            loss += grpo_loss(&lp, MB, T, logp, old_logp, ref_logp, sb.adv + first, mask, dlogp, &st);
            kl_sum += st.kl_sum;
            clip_low += st.clip_low;
            clip_high += st.clip_high;
            for (size_t k = 0; k < (size_t)MB * T; k++) ent_sum += mask[k] * entropy[k];
            llama_backward_logprobs(&pol.model, dlogp);
        }
        double grad_norm = clip_grad_norm(pol.model.grads, nparams, c.max_grad_norm);
        double lr = lr_at(sched, c.learning_rate, step - 1, c.max_steps, c.warmup_ratio);
        hp.lr = (float)lr;
        adamw_step(&opt, &hp, pol.model.params, pol.model.grads, decay);
        double train_time = now_seconds() - t_train;
        double step_time = now_seconds() - t_step;

        /* Metrics: one transaction. */
        double step_tokens = comp_tokens + (double)P * N;
        num_tokens_total += step_tokens;
        int timeouts = 0, stuck = 0, wins = 0, clipped = 0;
        double min_len = 1e9, max_len = 0, term_sum = 0, term_min = 1e9, term_max = 0;
        int n_term = 0;
        for (int i = 0; i < N; i++) {
            timeouts += sb.res[i].timeouts;
            stuck += sb.res[i].stuck;
            wins += sb.res[i].wins;
            clipped += !sb.terminated[i];
            if (sb.len[i] < min_len) min_len = sb.len[i];
            if (sb.len[i] > max_len) max_len = sb.len[i];
            if (sb.terminated[i]) {
                n_term++;
                term_sum += sb.len[i];
                if (sb.len[i] < term_min) term_min = sb.len[i];
                if (sb.len[i] > term_max) term_max = sb.len[i];
            }
        }
        double mean_reward = mean_of(sb.reward, N);
        if (metrics_begin_step(db, step) != 0) goto metrics_failed;
        metrics_add(db, "reward", mean_reward);
        metrics_add(db, "reward_std", reward_std_mean);
        metrics_add(db, "frac_reward_zero_std", frac_zero_std);
        for (int f = 0; f < RF_COUNT; f++) {
            for (int i = 0; i < N; i++) func_values[i] = sb.res[i].rewards[f];
            char name[96];
            snprintf(name, sizeof name, "rewards/%s/mean", reward_func_name(f));
            metrics_add(db, name, mean_of(func_values, N));
            snprintf(name, sizeof name, "rewards/%s/std", reward_func_name(f));
            metrics_add(db, name, std_of(func_values, N));
        }
        metrics_add(db, "completions/mean_length", comp_tokens / N);
        metrics_add(db, "completions/min_length", min_len);
        metrics_add(db, "completions/max_length", max_len);
        metrics_add(db, "completions/mean_terminated_length", n_term ? term_sum / n_term : 0);
        metrics_add(db, "completions/min_terminated_length", n_term ? term_min : 0);
        metrics_add(db, "completions/max_terminated_length", n_term ? term_max : 0);
        metrics_add(db, "completions/clipped_ratio", (double)clipped / N);
        metrics_add(db, "num_tokens", num_tokens_total);
        metrics_add(db, "loss", loss);
        metrics_add(db, "grad_norm", grad_norm);
        metrics_add(db, "learning_rate", lr);
        metrics_add(db, "entropy", comp_tokens > 0 ? ent_sum / comp_tokens : 0);
        if (c.beta > 0) metrics_add(db, "kl", comp_tokens > 0 ? kl_sum / comp_tokens : 0);
        metrics_add(db, "clip_ratio/low_mean", comp_tokens > 0 ? clip_low / comp_tokens : 0);
        metrics_add(db, "clip_ratio/high_mean", comp_tokens > 0 ? clip_high / comp_tokens : 0);
        metrics_add(db, "clip_ratio/region_mean", comp_tokens > 0 ? (clip_low + clip_high) / comp_tokens : 0);
        metrics_add(db, "step_time", step_time);
        metrics_add(db, "generation_time", generation_time);
        metrics_add(db, "reward_time", reward_time);
        metrics_add(db, "train_time", train_time);
        metrics_add(db, "tokens_per_second", step_tokens / step_time);
        metrics_add(db, "timeouts", timeouts);
        metrics_add(db, "stuck", stuck);
        metrics_add(db, "wins", wins);
        for (int i = 0; i < N; i++) {
            metrics_completion mc = {i, i / G, sb.text[i], sb.res[i].reward,
                                     {sb.res[i].rewards[0], sb.res[i].rewards[1], sb.res[i].rewards[2], sb.res[i].rewards[3]},
                                     reward_outcome_name(sb.res[i].outcome), sb.res[i].max_tile, sb.res[i].score,
                                     sb.res[i].moves, sb.res[i].seconds, sb.res[i].error};
            if (metrics_add_completion(db, &mc) != 0) goto metrics_failed;
        }
        if (metrics_commit_step(db) != 0) goto metrics_failed;

        char postfix[256];
        snprintf(postfix, sizeof postfix, "reward=%.3f, loss=%.4f, len=%.0f, gen=%.1fs, rew=%.1fs, train=%.1fs",
                 mean_reward, loss, comp_tokens / N, generation_time, reward_time, train_time);
        progress_update(&pb, step, postfix);

        if (c.save_steps > 0 && step % c.save_steps == 0 && step < c.max_steps) {
            snprintf(path, sizeof path, "%s/checkpoint-%d", c.output_dir, step);
            if (checkpoint_save(path, &pol.model, &opt, c.model_name_or_path, step, config_yaml, err, sizeof err) != 0) {
                fprintf(stderr, "\ngrpo2048 train: checkpoint: %s\n", err);
                status = "failed";
                goto done;
            }
        }
        continue;
    metrics_failed:
        fprintf(stderr, "\ngrpo2048 train: metrics: %s\n", metrics_error(db));
        status = "failed";
        goto done;
    }
    if (step > c.max_steps) step = c.max_steps;
done:
    progress_finish(&pb);
    if (strcmp(status, "failed") != 0 && step > 0) {
        snprintf(path, sizeof path, "%s/checkpoint-%d", c.output_dir, step);
        if (checkpoint_save(path, &pol.model, &opt, c.model_name_or_path, step, config_yaml, err, sizeof err) != 0 ||
            save_final(c.output_dir, &pol, &c, err, sizeof err) != 0) {
            fprintf(stderr, "grpo2048 train: saving: %s\n", err);
            status = "failed";
        } else {
            fprintf(stderr, "grpo2048 train: %s after %d steps; model saved to %s (checkpoint %s)\n", status, step,
                    c.output_dir, path);
        }
    }
    metrics_finish(db, status);
    db = NULL;
    exit_code = !strcmp(status, "completed") ? 0 : !strcmp(status, "interrupted") ? 130 : 1;
cleanup:
    if (db) metrics_finish(db, "failed");
    reward_pool_destroy(pool);
    batch_free(&sb);
    free(tokens); free(mask); free(logp); free(old_logp); free(ref_logp); free(entropy); free(dlogp); free(func_values);
    free(decay); free(prompt); free(config_yaml);
    adamw_free(&opt);
    if (have_ref) policy_free(&ref);
    policy_free(&pol);
    config_free(&c);
    return exit_code;
}
