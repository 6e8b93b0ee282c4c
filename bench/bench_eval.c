/*
 * bench/bench_eval.c: batched power sampling (model/llama_power.c) against one problem at a time, same
 * total work: CHAINS chains (one per problem, the default prompt, chain b seeded from (seed, b)) are
 * sampled in calls of batch 1, 4 and 16 chains. A chain's tokens do not depend on the batch (llama_power.h),
 * so every batch size does exactly the same sampling work; the bench checks that (token totals equal)
 * and prints, per batch size, the best and median wall time over R rounds, interleaved (round r runs
 * batch 1, 4, 16 in turn, so load changes on a shared machine hit all of them alike), and the speed-up
 * of each against batch 1.
 * Usage: bench_eval [--model DIR] [--rounds R] [--chains N] [--steps S] [--block B] [--alpha A] [--max-new M]
 *   defaults: model/default, R 3, N 16, S 10, B 192, A 4, M 300 (grpo2048 eval's defaults). CPU model only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "game2048/game.h"
#include "model/llama_power.h"
#include "trainer/config.h"
#include "trainer/policy.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    /* passive OpenMP waiting, as grpo2048 sets it (trainer/main.c): spinning threads distort timings on a
     * shared machine. libgomp reads it at load time, hence the re-execution. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    const char *model = "model/default";
    int rounds = 3, chains = 16, steps = 10, block = 192, max_new = 300;
    double alpha = 4.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--chains")) chains = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--block")) block = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--alpha")) alpha = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-new")) max_new = atoi(argv[i + 1]);
        else { fprintf(stderr, "bench_eval: unknown option %s\n", argv[i]); return 2; }
    }
    if (rounds < 1 || chains < 16 || chains % 16 || steps < 0 || block < 1 || max_new < 1) {
        fprintf(stderr, "bench_eval: need rounds >= 1, chains a multiple of 16, steps >= 0, block >= 1, max-new >= 1\n");
        return 2;
    }
    grpo_config c;
    config_defaults(&c);
    free(c.model_name_or_path);
    c.model_name_or_path = strdup(model);
    c.chat_template = "auto";
    policy pol;
    char err[512];
    if (policy_load(&pol, &c, 0, err, sizeof err) != 0) { fprintf(stderr, "bench_eval: %s\n", err); return 1; }
    int P = 0;
    int *prompt = policy_encode_prompt(&pol, "", c.prompt, &P, err, sizeof err);
    if (!prompt) { fprintf(stderr, "bench_eval: %s\n", err); return 1; }
    const int **prompts = malloc(sizeof(int *) * chains);
    int *Ps = malloc(sizeof(int) * chains), *out = malloc(sizeof(int) * (size_t)chains * max_new);
    int *len = malloc(sizeof(int) * chains);
    uint64_t *seeds = malloc(sizeof(uint64_t) * chains);
    llama_power_stats *st = malloc(sizeof(llama_power_stats) * chains);
    for (int b = 0; b < chains; b++) { prompts[b] = prompt; Ps[b] = P; seeds[b] = game_seed_mix(42, (uint64_t)b, 0); }
    llama_power_params pp = {.alpha = (float)alpha, .mcmc_steps = steps, .block_size = block, .stop_ids = pol.stop_ids,
                             .num_stop = pol.num_stop};
    static const int batches[3] = {1, 4, 16};
    double *t = malloc(sizeof(double) * 3 * rounds);
    long long tokens[3] = {0, 0, 0};
    printf("bench_eval: %s, prompt %d tokens, %d chains, alpha %g, %d MH steps per block of %d, max_new %d, %d rounds\n",
           model, P, chains, alpha, steps, block, max_new, rounds);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 3; k++) {
            const int B = batches[k];
            struct timespec a, z;
            long long tok = 0;
            clock_gettime(CLOCK_MONOTONIC, &a);
            for (int b0 = 0; b0 < chains; b0 += B) {
                if (llama_power_sample(&pol.model, prompts + b0, Ps + b0, B, max_new, &pp, seeds + b0, out + (size_t)b0 * max_new,
                                       len + b0, NULL, st + b0, err, sizeof err) != 0) {
                    fprintf(stderr, "bench_eval: %s\n", err);
                    return 1;
                }
            }
            clock_gettime(CLOCK_MONOTONIC, &z);
            for (int b = 0; b < chains; b++) tok += st[b].tokens;
            t[k * rounds + r] = (z.tv_sec - a.tv_sec) + 1e-9 * (z.tv_nsec - a.tv_nsec);
            if (r == 0) tokens[k] = tok;
            else if (tok != tokens[k]) { fprintf(stderr, "bench_eval: batch %d sampled %lld tokens, before %lld\n", B, tok, tokens[k]); return 1; }
        }
    int same = tokens[0] == tokens[1] && tokens[1] == tokens[2];
    printf("tokens sampled per round: %lld (batch 1) %lld (4) %lld (16): %s\n", tokens[0], tokens[1], tokens[2],
           same ? "the same work" : "DIFFERENT (rounding changed a draw)");
    double med[3];
    for (int k = 0; k < 3; k++) {
        qsort(t + k * rounds, rounds, sizeof(double), cmp_double);
        med[k] = t[k * rounds + rounds / 2];
    }
    printf("%-8s %10s %10s %12s %10s\n", "batch", "best s", "median s", "tokens/s", "speed-up");
    for (int k = 0; k < 3; k++)
        printf("%-8d %10.2f %10.2f %12.0f %9.2fx\n", batches[k], t[k * rounds], med[k], tokens[k] / med[k], med[0] / med[k]);
    free(t); free(prompts); free(Ps); free(out); free(len); free(seeds); free(st); free(prompt);
    policy_free(&pol);
    config_free(&c);
    return 0;
}
