/*
 * trainer/eval.c: `grpo2048 eval CONFIG.yaml [--set key=value ...]` (see eval.h).
 *
 * Problems. The prompts are the config's `prompt`, or the lines of `prompts_file`. Problem i (0 ..
 * eval_problems-1; default one per prompt) is prompt i mod n_prompts played on game-seed set
 * s = i / n_prompts: all num_samples samples of problem i play the same games, base seed
 * game_seed_mix(seed ^ 0xE7A12048, s, prompt index), as the completions of a GRPO group do.
 *
 * Flow, data one way as in training (../shared/DESIGN.md):
 *   1. a reward pool per distinct (board_size, target) of the prompts, forked before any thread;
 *   2. the policy (model_name_or_path), its backend (device), the prompts encoded with the chat template;
 *   3. per batch of per_device_eval_batch_size problems:
 *        sample  standard / greedy: the training sampler (backend_generate, llama_generate_ex's
 *                semantics): the batch's problems that share a prompt are one call of (problems x
 *                num_samples) rows, prompt prefilled once, seeded game_seed_mix(seed ^ 0x5A3D1E, first
 *                problem of the call, rows);
 *                power: llama_power_sample (model/llama_power.h) over all (problem, sample) chains of
 *                the batch at once, chain (i, j) seeded game_seed_mix(seed ^ 0x90E5, i, j), so its
 *                result does not depend on the batch size; CPU model only (device auto picks the CPU
 *                for it, device cuda is refused with a message);
 *        score   each sample through its problem's reward pool (the sandbox of training);
 *        log     one metrics.sqlite transaction per problem: a completions row per sample (step = problem,
 *                idx = sample, tokens, acceptance_rate), and the progress bar;
 *   4. the summary metrics at step 0 (docs/metrics.md): eval_reward, eval_win_rate, eval_max_tile and its
 *      distribution eval_max_tile/<tile>, eval_pass@1 and eval_pass@k (Chen et al.'s estimator,
 *      eval_pass_at_k; a sample passes when it won every game it played), eval_tokens_generated,
 *      eval_tokens_per_second, eval_acceptance_rate (power), times; and a summary table on stdout.
 * The run is a `runs` row of kind 'eval' in output_dir/metrics.sqlite (next to a training run's, if any).
 */
#include "trainer/eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "game2048/game.h"
#include "model/llama_power.h"
#include "rewards/rewards.h"
#include "trainer/backend.h"
#include "trainer/checkpoint.h"
#include "trainer/dist.h"
#include "trainer/metrics.h"
#include "trainer/policy.h"
#include "trainer/progress.h"

#define EVAL_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

double eval_pass_at_k(int n, int c, int k) {
    if (n < 1 || k < 1 || k > n || c < 0 || c > n) EVAL_ABORT("eval_pass_at_k(n=%d, c=%d, k=%d): out of range", n, c, k);
    if (n - c < k) return 1.0;
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}

void eval_free_prompts(eval_prompt *p, int n) {
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i].prompt);
    free(p);
}

eval_prompt *eval_load_prompts(const char *path, int *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errlen, "prompts_file '%s': %s", path, strerror(errno)); return NULL; }
    eval_prompt *p = NULL;
    int cnt = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        int blank = 1;
        for (ssize_t i = 0; i < len; i++) if (line[i] != ' ' && line[i] != '\t' && line[i] != '\n' && line[i] != '\r') blank = 0;
        if (blank) continue;
        cJSON *o = cJSON_Parse(line);
        const cJSON *pr = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "prompt") : NULL;
        const cJSON *bs = o ? cJSON_GetObjectItemCaseSensitive(o, "board_size") : NULL;
        const cJSON *tg = o ? cJSON_GetObjectItemCaseSensitive(o, "target") : NULL;
        const char *what = NULL;
        if (!cJSON_IsObject(o)) what = "a JSON object per line";
        else if (!cJSON_IsString(pr) || !pr->valuestring[0]) what = "a non-empty string \"prompt\"";
        else if (bs && (!cJSON_IsNumber(bs) || bs->valuedouble != (int)bs->valuedouble || bs->valueint < 2 || bs->valueint > 8))
            what = "\"board_size\" an integer in 2..8";
        else if (tg && (!cJSON_IsNumber(tg) || tg->valuedouble != (double)(long long)tg->valuedouble || tg->valuedouble < 4 ||
                        tg->valuedouble > (double)(1 << 30) || ((long long)tg->valuedouble & ((long long)tg->valuedouble - 1))))
            what = "\"target\" a power of two in 4..2^30";
        if (what) {
            snprintf(err, errlen, "%s:%d: expected %s", path, lineno, what);
            cJSON_Delete(o);
            goto fail;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            eval_prompt *np = realloc(p, sizeof *p * cap);
            if (!np) { cJSON_Delete(o); snprintf(err, errlen, "%s: out of memory", path); goto fail; }
            p = np;
        }
        p[cnt].prompt = strdup(pr->valuestring);
        p[cnt].board_size = bs ? bs->valueint : 0;
        p[cnt].target = tg ? (int)tg->valuedouble : 0;
        cJSON_Delete(o);
        if (!p[cnt].prompt) { snprintf(err, errlen, "%s: out of memory", path); goto fail; }
        cnt++;
    }
    free(line);
    fclose(f);
    if (cnt == 0) { snprintf(err, errlen, "prompts_file '%s': no prompts (expected one {\"prompt\": ...} per line)", path); free(p); return NULL; }
    *n = cnt;
    return p;
fail:
    free(line);
    fclose(f);
    eval_free_prompts(p, cnt);
    return NULL;
}

/* One sample's result. */
typedef struct {
    char *text;
    int len;                 /* generated tokens of the sample */
    long long tokens;        /* tokens sampled for it (power: blocks plus every proposal) */
    double acceptance;       /* power: accepted / proposed; NaN otherwise */
    reward_result res;
} eval_sample;

typedef struct {
    int board_size, target;
    reward_pool *pool;
} eval_pool;

/* Data-parallel eval (`mpirun -np N grpo2048 eval`): batch q of per_device_eval_batch_size problems is
 * sampled and scored by rank q % N (the same batches, seeds and sampling calls as one process with the
 * same per_device_eval_batch_size, so the same results), then its samples go to every rank from their
 * owner (MPI_Bcast: the fixed-size part, then the texts), and rank 0 writes them. Returns 0, or -1 when
 * out of memory. n: samples of the batch; smp: its first sample. */
static int share_batch(eval_sample *smp, int n, int owner) {
    if (dist_get()->world_size == 1) return 0;
    const int me = dist_get()->rank == owner;
    size_t fixed = (size_t)n * sizeof *smp, text_bytes = 0;
    if (me)
        for (int q = 0; q < n; q++) text_bytes += strlen(smp[q].text) + 1;
    dist_bcast(&text_bytes, sizeof text_bytes, owner);
    char *texts = malloc(text_bytes ? text_bytes : 1);
    eval_sample *tmp = malloc(fixed);
    if (!texts || !tmp) dist_abort(1, "eval", "out of memory sharing a batch of %d samples", n);
    if (me) {
        memcpy(tmp, smp, fixed);
        char *w = texts;
        for (int q = 0; q < n; q++) {
            size_t l = strlen(smp[q].text) + 1;
            memcpy(w, smp[q].text, l);
            w += l;
        }
    }
    dist_bcast(tmp, fixed, owner);
    dist_bcast(texts, text_bytes, owner);
    if (!me) {
        const char *r = texts;
        for (int q = 0; q < n; q++) {
            smp[q] = tmp[q];
            smp[q].text = strdup(r);
            if (!smp[q].text) dist_abort(1, "eval", "out of memory sharing a batch of %d samples", n);
            r += strlen(r) + 1;
        }
    }
    free(texts);
    free(tmp);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    grpo_config c;
    char err[2048] = "";
    int prc = policy_parse_args(argc, argv, "eval", &c, err, sizeof err);
    if (prc == 1) return 0;
    if (prc != 0) { fprintf(stderr, "grpo2048 eval: %s\n", err); return 2; }

    int exit_code = 1;
    eval_prompt *prompts = NULL;
    int nprompts = 0, npools = 0;
    eval_pool *pools = NULL;
    int *pool_of = NULL;                  /* (nprompts) index into pools */
    policy pol;
    memset(&pol, 0, sizeof pol);
    int have_pol = 0;
    backend be;
    memset(&be, 0, sizeof be);
    int **ptok = NULL, *plen = NULL;      /* encoded prompts */
    metrics_db *db = NULL;
    eval_sample *smp = NULL;
    int *tokens = NULL, *lens = NULL;
    const int **chain_prompt = NULL;
    int *chain_P = NULL;
    uint64_t *chain_seed = NULL, *game_seeds = NULL;
    llama_power_stats *pst = NULL;
    const char **texts = NULL;
    reward_result *res = NULL;
    double *vals = NULL;
    int *correct = NULL, *idx = NULL;
    const char *status = "failed";
    const int power = !strcmp(c.sampler, "power"), greedy = !strcmp(c.sampler, "greedy");
    const int K = c.num_samples, max_new = c.max_new_tokens;

    /* 0. the problems */
    if (c.prompts_file[0]) {
        prompts = eval_load_prompts(c.prompts_file, &nprompts, err, sizeof err);
        if (!prompts) { fprintf(stderr, "grpo2048 eval: %s\n", err); exit_code = 2; goto cleanup; }
    } else {
        prompts = calloc(1, sizeof *prompts);
        if (!prompts || !(prompts[0].prompt = strdup(c.prompt))) { fprintf(stderr, "grpo2048 eval: out of memory\n"); goto cleanup; }
        nprompts = 1;
    }
    const int N = c.eval_problems > 0 ? c.eval_problems : nprompts;
    if (!strcmp(c.device, "cuda") && !backend_have_cuda()) {
        fprintf(stderr, "grpo2048 eval: device: cuda requested, but this grpo2048 was built without the CUDA backend "
                        "(see docs/gpu.md), or use device: cpu\n");
        exit_code = 2;
        goto cleanup;
    }

    /* ranks (mpirun): read before the pools, which take this rank's share of the cores (trainer/dist.h) */
    if (dist_from_env(err, sizeof err) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", err); exit_code = 2; goto cleanup; }
    const int W = dist_get()->world_size, rank = dist_get()->rank, root = dist_is_root();

    /* 1. reward pools first, before any thread exists: one per (board_size, target) */
    pool_of = calloc((size_t)nprompts, sizeof(int));
    pools = calloc((size_t)nprompts, sizeof *pools);
    if (!pool_of || !pools) { fprintf(stderr, "grpo2048 eval: out of memory\n"); goto cleanup; }
    for (int i = 0; i < nprompts; i++) {
        const int bs = prompts[i].board_size ? prompts[i].board_size : c.rewards.board_size;
        const int tg = prompts[i].target ? prompts[i].target : c.rewards.target;
        int k = 0;
        while (k < npools && !(pools[k].board_size == bs && pools[k].target == tg)) k++;
        if (k == npools) {
            reward_config rc = policy_reward_config(&c);
            rc.board_size = bs;
            rc.target = (uint32_t)tg;
            pools[k].board_size = bs;
            pools[k].target = tg;
            pools[k].pool = reward_pool_create(&rc, err, sizeof err);
            if (!pools[k].pool) { fprintf(stderr, "grpo2048 eval: reward pool: %s\n", err); goto cleanup; }
            npools++;
        }
        pool_of[i] = k;
    }

    if (dist_init(err, sizeof err) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", err); exit_code = 2; goto cleanup; }

    /* 2. the policy, its backend, the prompts */
    if (policy_load(&pol, &c, 0, err, sizeof err) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", err); goto cleanup; }
    have_pol = 1;
    /* power sampling runs on the CPU model: device auto means the CPU for it */
    const char *device = power && !strcmp(c.device, "auto") ? "cpu" : c.device;
    if (backend_create(&be, device, backend_precision(c.tf32, c.bf16), &pol.model, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 eval: device: %s\n", err);
        goto cleanup;
    }
    if (power && strcmp(be.ops->name, "cpu") != 0) {
        fprintf(stderr, "grpo2048 eval: sampler: power runs on the CPU backend only in this version (device is %s); "
                        "set device: cpu\n", be.ops->name);
        exit_code = 2;
        goto cleanup;
    }
    if (root)
        fprintf(stderr, "grpo2048 eval: %s; %d problems (%d prompts) x %d samples, sampler %s%s\n", be.description, N,
                nprompts, K, c.sampler, W > 1 ? "; batches split over the ranks" : "");
    ptok = calloc((size_t)nprompts, sizeof(int *));
    plen = calloc((size_t)nprompts, sizeof(int));
    if (!ptok || !plen) { fprintf(stderr, "grpo2048 eval: out of memory\n"); goto cleanup; }
    for (int i = 0; i < nprompts; i++) {
        ptok[i] = policy_encode_prompt(&pol, c.system_prompt, prompts[i].prompt, &plen[i], err, sizeof err);
        if (!ptok[i]) { fprintf(stderr, "grpo2048 eval: prompt %d: %s\n", i, err); goto cleanup; }
        if (plen[i] > c.max_prompt_length || plen[i] + max_new > pol.model.cfg.max_position_embeddings) {
            fprintf(stderr, "grpo2048 eval: prompt %d is %d tokens: more than max_prompt_length=%d, or with max_new_tokens=%d "
                    "more than the model's max_position_embeddings (%d)\n", i, plen[i], c.max_prompt_length, max_new,
                    pol.model.cfg.max_position_embeddings);
            exit_code = 2;
            goto cleanup;
        }
    }

    /* 3. output */
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.sqlite", c.output_dir);
    if (root) {   /* rank 0 alone writes */
        if (make_dirs(c.output_dir, err, sizeof err) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", err); goto cleanup; }
        db = metrics_open(path, "eval", c.text, err, sizeof err);
        if (!db) { fprintf(stderr, "grpo2048 eval: %s\n", err); goto cleanup; }
    }

    const int BS = c.per_device_eval_batch_size < N ? c.per_device_eval_batch_size : N;
    const size_t rows = (size_t)BS * K;
    smp = calloc((size_t)N * K, sizeof *smp);
    tokens = malloc(sizeof(int) * rows * max_new);
    lens = malloc(sizeof(int) * rows);
    chain_prompt = malloc(sizeof(int *) * rows);
    chain_P = malloc(sizeof(int) * rows);
    chain_seed = malloc(sizeof(uint64_t) * rows);
    game_seeds = malloc(sizeof(uint64_t) * rows);
    pst = calloc(rows, sizeof *pst);
    texts = malloc(sizeof(char *) * rows);
    res = calloc(rows, sizeof *res);
    vals = malloc(sizeof(double) * (size_t)N * K);
    correct = calloc((size_t)N, sizeof(int));
    idx = malloc(sizeof(int) * rows);
    if (!idx || !smp || !tokens || !lens || !chain_prompt || !chain_P || !chain_seed || !game_seeds || !pst || !texts || !res || !vals ||
        !correct) {
        fprintf(stderr, "grpo2048 eval: out of memory\n");
        goto cleanup;
    }

    progress pb;
    if (root) progress_start(&pb, "eval", N, stderr);
    double gen_time = 0, reward_time = 0;
    const double t_start = now_seconds();
    long long tokens_generated = 0, proposals = 0, accepted = 0;
    double wins_so_far = 0, games_so_far = 0;
    for (int round0 = 0; round0 < N; round0 += BS * W) {
        /* this rank's batch of the round (batch q of the whole run is rank q % W's) */
        const int b0 = round0 + rank * BS;
        const int nb = b0 >= N ? 0 : b0 + BS <= N ? BS : N - b0;
        if (nb > 0) {
        /* sample */
        double t0 = now_seconds();
        if (power) {
            for (int j = 0; j < nb; j++)
                for (int s = 0; s < K; s++) {
                    const int r = j * K + s, pi = (b0 + j) % nprompts;
                    chain_prompt[r] = ptok[pi];
                    chain_P[r] = plen[pi];
                    chain_seed[r] = game_seed_mix((uint64_t)c.seed ^ 0x90E5u, (uint64_t)(b0 + j), (uint64_t)s);
                }
            llama_power_params pp = {.alpha = (float)c.power_alpha, .mcmc_steps = c.mcmc_steps,
                                     .block_size = c.mcmc_block_size, .stop_ids = pol.stop_ids, .num_stop = pol.num_stop};
            if (llama_power_sample(&pol.model, chain_prompt, chain_P, nb * K, max_new, &pp, chain_seed, tokens, lens, NULL,
                                   pst, err, sizeof err) != 0) {
                fprintf(stderr, "grpo2048 eval: %s\n", err);
                goto cleanup;
            }
        } else {
            llama_sampling s = {.temperature = greedy ? 0.0f : (float)c.temperature, .top_k = c.top_k,
                                .top_p = (float)c.top_p, .min_p = c.min_p_set ? (float)c.min_p : 0.0f,
                                .repetition_penalty = 1.0f, .stop_ids = pol.stop_ids, .num_stop = pol.num_stop};
            /* the batch's problems that share a prompt: one call, rows (problem, sample) */
            for (int j = 0; j < nb; j++) {
                const int pi = (b0 + j) % nprompts;
                int first = 1;
                for (int e = 0; e < j; e++) if ((b0 + e) % nprompts == pi) first = 0;
                if (!first) continue;
                int *members = idx, nm = 0;
                for (int e = j; e < nb; e++) if ((b0 + e) % nprompts == pi) members[nm++] = e;
                int *out = malloc(sizeof(int) * (size_t)nm * K * max_new), *ol = malloc(sizeof(int) * (size_t)nm * K);
                if (!out || !ol) { free(out); free(ol); fprintf(stderr, "grpo2048 eval: out of memory\n"); goto cleanup; }
                uint64_t seed = game_seed_mix((uint64_t)c.seed ^ 0x5A3D1Eu, (uint64_t)(b0 + j), (uint64_t)(nm * K));
                if (backend_generate(&be, ptok[pi], plen[pi], nm * K, max_new, &s, seed, out, ol, NULL, err, sizeof err) != 0) {
                    free(out); free(ol);
                    fprintf(stderr, "grpo2048 eval: %s\n", err);
                    goto cleanup;
                }
                for (int m = 0; m < nm; m++)
                    for (int q = 0; q < K; q++) {
                        const int r = members[m] * K + q;
                        memcpy(tokens + (size_t)r * max_new, out + ((size_t)m * K + q) * max_new, sizeof(int) * max_new);
                        lens[r] = ol[m * K + q];
                        pst[r] = (llama_power_stats){0, 0, ol[m * K + q]};
                    }
                free(out);
                free(ol);
            }
        }
        gen_time += now_seconds() - t0;
        /* score, per pool */
        t0 = now_seconds();
        for (int r = 0; r < nb * K; r++) {
            eval_sample *e = &smp[(size_t)b0 * K + r];
            e->text = policy_decode(&pol, tokens + (size_t)r * max_new, lens[r]);
            if (!e->text) { fprintf(stderr, "grpo2048 eval: out of memory\n"); goto cleanup; }
            e->len = lens[r];
            e->tokens = pst[r].tokens;
            e->acceptance = power && pst[r].proposals ? (double)pst[r].accepted / pst[r].proposals : NAN;
            tokens_generated += pst[r].tokens;
            proposals += pst[r].proposals;
            accepted += pst[r].accepted;
        }
        for (int k = 0; k < npools; k++) {
            int n = 0;
            for (int r = 0; r < nb * K; r++) {
                const int i = b0 + r / K, pi = i % nprompts;
                if (pool_of[pi] != k) continue;
                idx[n] = r;
                texts[n] = smp[(size_t)b0 * K + r].text;
                game_seeds[n] = game_seed_mix((uint64_t)c.seed ^ 0xE7A12048u, (uint64_t)(i / nprompts), (uint64_t)pi);
                n++;
            }
            if (n == 0) continue;
            if (reward_pool_score(pools[k].pool, n, texts, game_seeds, res, c.rewards.parallel ? NULL : stderr, err,
                                  sizeof err) != 0) {
                fprintf(stderr, "grpo2048 eval: rewards: %s\n", err);
                goto cleanup;
            }
            for (int q = 0; q < n; q++) smp[(size_t)b0 * K + idx[q]].res = res[q];
        }
        reward_time += now_seconds() - t0;
        }   /* this rank's batch */
        /* the round's batches to every rank, in batch order; rank 0 logs them: one transaction per problem */
        for (int q = 0; q < W && round0 + q * BS < N; q++) {
        const int qb0 = round0 + q * BS, qnb = qb0 + BS <= N ? BS : N - qb0;
        share_batch(&smp[(size_t)qb0 * K], qnb * K, q);
        if (!root) continue;
        for (int j = 0; j < qnb; j++) {
            const int i = qb0 + j;
            if (metrics_begin_step(db, i) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", metrics_error(db)); goto cleanup; }
            for (int s = 0; s < K; s++) {
                const eval_sample *e = &smp[(size_t)i * K + s];
                const reward_result *rr = &e->res;
                metrics_completion mc = {s, i % nprompts, e->text, rr->reward,
                                         {rr->rewards[0], rr->rewards[1], rr->rewards[2], rr->rewards[3]},
                                         reward_outcome_name(rr->outcome), rr->max_tile, rr->score, rr->moves, rr->seconds,
                                         rr->error[0] ? rr->error : NULL, 0, 1, e->tokens, e->acceptance};
                if (metrics_add_completion(db, &mc) != 0) break;
                correct[i] += rr->games > 0 && rr->wins == rr->games;
                wins_so_far += rr->wins;
                games_so_far += rr->games;
            }
            if (metrics_commit_step(db) != 0) { fprintf(stderr, "grpo2048 eval: %s\n", metrics_error(db)); goto cleanup; }
        }
        char post[128];
        snprintf(post, sizeof post, "win_rate=%.3f", games_so_far > 0 ? wins_so_far / games_so_far : 0.0);
        progress_update(&pb, qb0 + qnb, post);
        }
    }
    if (root) progress_finish(&pb);
    /* every rank's counts; the times of the slowest rank (the job waits for it) */
    double sums[3] = {(double)tokens_generated, (double)proposals, (double)accepted}, times[2] = {gen_time, reward_time};
    dist_allreduce_f64(sums, 3, DIST_SUM);
    dist_allreduce_f64(times, 2, DIST_MAX);
    tokens_generated = (long long)sums[0];
    proposals = (long long)sums[1];
    accepted = (long long)sums[2];
    gen_time = times[0];
    reward_time = times[1];
    const double total_time = now_seconds() - t_start;

    /* 4. summary (step 0 of the metrics table) */
    {
        const int S = N * K;
        double games = 0, wins = 0, tile = 0, len_sum = 0, p1 = 0, pk = 0;
        int scored = 0;
        for (int q = 0; q < S; q++) {
            const reward_result *rr = &smp[q].res;
            games += rr->games;
            wins += rr->wins;
            tile += rr->max_tile;
            len_sum += smp[q].len;
            if (rr->outcome != OUTCOME_INFRA_ERROR) vals[scored++] = rr->reward;
        }
        double mean = 0, sd = 0;
        for (int q = 0; q < scored; q++) mean += vals[q];
        mean = scored ? mean / scored : 0;
        for (int q = 0; q < scored; q++) sd += (vals[q] - mean) * (vals[q] - mean);
        sd = scored > 1 ? sqrt(sd / (scored - 1)) : 0;
        for (int i = 0; i < N; i++) {
            p1 += eval_pass_at_k(K, correct[i], 1);
            pk += eval_pass_at_k(K, correct[i], K);
        }
        p1 /= N;
        pk /= N;
        const double tps = gen_time > 0 ? tokens_generated / gen_time : 0;
        const double acc_rate = proposals ? (double)accepted / proposals : NAN;
        if (!root) { status = "completed"; exit_code = 0; goto cleanup; }
        int bad = metrics_begin_step(db, 0);
        if (!bad) {
            bad |= metrics_add(db, "eval_reward", mean) | metrics_add(db, "eval_reward_std", sd);
            for (int f = 0; f < RF_COUNT; f++) {
                double m = 0;
                for (int q = 0; q < S; q++) m += smp[q].res.rewards[f];
                char name[96];
                snprintf(name, sizeof name, "eval_rewards/%s/mean", reward_func_name(f));
                bad |= metrics_add(db, name, m / S);
            }
            bad |= metrics_add(db, "eval_games", games) | metrics_add(db, "eval_wins", wins) |
                   metrics_add(db, "eval_win_rate", games > 0 ? wins / games : 0) | metrics_add(db, "eval_max_tile", tile / S) |
                   metrics_add(db, "eval_pass@1", p1) | metrics_add(db, "eval_pass@k", pk) |
                   metrics_add(db, "eval_num_samples", K) | metrics_add(db, "eval_problems", N) |
                   metrics_add(db, "eval_completions/mean_length", len_sum / S) |
                   metrics_add(db, "eval_tokens_generated", (double)tokens_generated) |
                   metrics_add(db, "eval_tokens_per_second", tps) | metrics_add(db, "eval_generation_time", gen_time) |
                   metrics_add(db, "eval_reward_time", reward_time) | metrics_add(db, "eval_time", total_time);
            if (power) bad |= metrics_add(db, "eval_acceptance_rate", acc_rate);
            /* the distribution of the largest tile: fraction of samples per tile value */
            for (int e = 0; e <= 30; e++) {
                const uint32_t t = e == 0 ? 0 : (uint32_t)1 << e;
                int cnt = 0;
                for (int q = 0; q < S; q++) cnt += smp[q].res.max_tile == t;
                if (!cnt) continue;
                char name[64];
                snprintf(name, sizeof name, "eval_max_tile/%u", t);
                bad |= metrics_add(db, name, (double)cnt / S);
            }
            bad |= metrics_commit_step(db);
        }
        if (bad) { fprintf(stderr, "grpo2048 eval: metrics: %s\n", metrics_error(db)); goto cleanup; }
        printf("\n%-24s %s\n", "sampler", power ? "power" : c.sampler);
        if (power) printf("%-24s alpha %g, %d MH steps per block of %d tokens\n", "", c.power_alpha, c.mcmc_steps, c.mcmc_block_size);
        printf("%-24s %d x %d samples\n", "problems", N, K);
        printf("%-24s %.4f (std %.4f)\n", "eval_reward", mean, sd);
        printf("%-24s %.4f (%g of %g games)\n", "eval_win_rate", games > 0 ? wins / games : 0, wins, games);
        printf("%-24s %.4f\n", "eval_pass@1", p1);
        printf("%-24s %.4f (k = %d)\n", "eval_pass@k", pk, K);
        printf("%-24s %.1f\n", "eval_max_tile (mean)", tile / S);
        printf("%-24s %lld (%.1f per sample)\n", "eval_tokens_generated", tokens_generated, (double)tokens_generated / S);
        printf("%-24s %.1f\n", "eval_tokens_per_second", tps);
        if (power) printf("%-24s %.4f\n", "eval_acceptance_rate", acc_rate);
        printf("%-24s %.1f s (generation %.1f s, rewards %.1f s)\n", "eval_time", total_time, gen_time, reward_time);
        printf("%-24s sqlite3 %s 'select * from steps where run_id = %d'\n", "metrics", path, metrics_run_id(db));
    }
    status = "completed";
    exit_code = 0;

cleanup:
    if (dist_get()->world_size > 1 && exit_code != 0)   /* a failed rank ends the job: the others may wait in a broadcast */
        dist_abort(exit_code, "eval", "failed (see above)");
    if (db && metrics_finish(db, status) != 0) {
        fprintf(stderr, "grpo2048 eval: metrics: %s\n", metrics_error(NULL));
        exit_code = 1;
    }
    if (smp) for (int q = 0; q < (c.eval_problems > 0 ? c.eval_problems : nprompts) * K; q++) free(smp[q].text);
    free(smp); free(tokens); free(lens); free(chain_prompt); free(chain_P); free(chain_seed); free(game_seeds); free(pst);
    free(texts); free(res); free(vals); free(correct); free(idx);
    if (ptok) for (int i = 0; i < nprompts; i++) free(ptok[i]);
    free(ptok); free(plen);
    backend_free(&be);
    if (have_pol) policy_free(&pol);
    for (int k = 0; k < npools; k++) reward_pool_destroy(pools[k].pool);
    free(pools); free(pool_of);
    eval_free_prompts(prompts, nprompts);
    config_free(&c);
    dist_finalize();
    return exit_code;
}
