/*
 * tests/rewards/test_pool.c: the reward pool end to end — each reward function's values for the
 * strategy files in tests/rewards/strategies (good, failing, syntax error, no function, build failure,
 * banned import, endless loop, exception, invalid return values, stuck), repeatability of a `random`
 * strategy across pools, parallel vs sequential giving identical rewards (and the sequential log),
 * several games per strategy, a worker killed with SIGKILL mid-batch, that destroying the pool — or
 * killing the trainer — leaves no worker behind, and that a killed zygote makes the pool fail cleanly.
 * Also stuck detection (on by default, milliseconds, counted apart from timeouts) and the workers'
 * check cache with the pool's statistics.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "game2048/game.h"
#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

static void expect4(const char *what, const reward_result *r, double fw, double nc, double ss, double gp) {
    CHECK_MSG(fabs(r->rewards[RF_FUNCTION_WORKS] - fw) < 1e-9, "%s: function_works %g, expected %g (%s: %s)", what,
              r->rewards[RF_FUNCTION_WORKS], fw, reward_outcome_name(r->outcome), r->error);
    CHECK_MSG(fabs(r->rewards[RF_NO_CHEATING] - nc) < 1e-9, "%s: no_cheating %g, expected %g", what,
              r->rewards[RF_NO_CHEATING], nc);
    CHECK_MSG(fabs(r->rewards[RF_STRATEGY_SUCCEEDS] - ss) < 1e-9, "%s: strategy_succeeds %g, expected %g (%s: %s)",
              what, r->rewards[RF_STRATEGY_SUCCEEDS], ss, reward_outcome_name(r->outcome), r->error);
    CHECK_MSG(fabs(r->rewards[RF_GAME_PROGRESS] - gp) < 1e-9, "%s: game_progress %g, expected %g", what,
              r->rewards[RF_GAME_PROGRESS], gp);
    CHECK_NEAR(r->reward, fw + nc + ss + gp, 1e-9);
}

/* 1 when pid is gone (or a zombie nobody reaps, e.g. under a container's init). */
static int process_gone(pid_t pid) {
    if (kill(pid, 0) != 0) return errno == ESRCH;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static int wait_gone(pid_t pid, double seconds) {
    double t0 = tu_now();
    while (!process_gone(pid)) {
        if (tu_now() - t0 > seconds) return 0;
        usleep(5000);
    }
    return 1;
}

/* Every reward function's values for one strategy per file (raw sources, target 32, timeout 0.5 s). */
static void test_values(void) {
    const double timeout = 0.5;
    reward_pool *p = tu_pool(1, 2, timeout, 32, 1);
    const char *names[] = {"corner", "syntax_error", "two_statements", "wrong_signature", "banned_numpy",
                           "raises", "invalid_x", "invalid_none", "invalid_int", "always_w", "loop"};
    enum { N = sizeof names / sizeof *names };
    char *src[N];
    uint64_t seeds[N];
    reward_result r[N];
    for (int i = 0; i < N; i++) { src[i] = tu_strategy(names[i]); seeds[i] = 11; }
    char err[256];
    double t0 = tu_now();
    CHECK_EQ_INT(reward_pool_score_sources(p, N, (const char *const *)src, seeds, r, NULL, err, sizeof err), 0);
    double wall = tu_now() - t0;

    expect4("corner", &r[0], 1, 1, 20, 1);
    CHECK_EQ_INT(r[0].outcome, OUTCOME_SUCCESS);
    CHECK(r[0].max_tile >= 32 && r[0].moves > 0 && r[0].score > 0);
    CHECK_EQ_INT(r[0].wins, 1);
    CHECK(!r[0].error[0]);
    expect4("syntax_error", &r[1], -2, -1, 0, 0);
    CHECK_EQ_INT(r[1].outcome, OUTCOME_SYNTAX_ERROR);
    CHECK_MSG(strstr(r[1].error, "syntax error") && strstr(r[1].error, "line 2"), "[%s]", r[1].error);
    CHECK_EQ_INT(r[1].games, 0);
    expect4("two_statements", &r[2], -0.5, 1, 0, 0);
    CHECK_EQ_INT(r[2].outcome, OUTCOME_BUILD_FAILED);
    CHECK_MSG(strstr(r[2].error, "exactly one top-level statement") != NULL, "[%s]", r[2].error);
    expect4("wrong_signature", &r[3], -0.5, 1, 0, 0);
    CHECK_EQ_INT(r[3].outcome, OUTCOME_BUILD_FAILED);
    expect4("banned_numpy", &r[4], 1, -20, 0, 0);
    CHECK_EQ_INT(r[4].outcome, OUTCOME_BANNED_IMPORT);
    CHECK_MSG(strstr(r[4].error, "numpy") != NULL, "[%s]", r[4].error);
    expect4("raises", &r[5], 1, 1, -3, 0);
    CHECK_EQ_INT(r[5].outcome, OUTCOME_EXCEPTION);
    CHECK_MSG(strstr(r[5].error, "exception: ZeroDivisionError: division by zero") != NULL, "[%s]", r[5].error);
    const char *shown[] = {"'X'", "None", "5"};
    for (int i = 6; i <= 8; i++) {
        expect4(names[i], &r[i], 1, 1, -3, 0);
        CHECK_EQ_INT(r[i].outcome, OUTCOME_INVALID_MOVE);
        CHECK_MSG(strstr(r[i].error, "invalid move") && strstr(r[i].error, shown[i - 6]), "[%s]", r[i].error);
    }
    /* Always "W": stuck after 1000 moves that change nothing, far sooner than the timeout. */
    expect4("always_w", &r[9], 1, 1, -1, 0);
    CHECK_EQ_INT(r[9].outcome, OUTCOME_STUCK);
    CHECK_EQ_INT(r[9].stuck, 1);
    CHECK_MSG(r[9].seconds < 0.5 * timeout, "stuck took %.3f s", r[9].seconds);
    /* The endless loop: killed by the worker within timeout + 0.2 s. */
    expect4("loop", &r[10], 1, 1, -1, 0);
    CHECK_EQ_INT(r[10].outcome, OUTCOME_TIMEOUT);
    CHECK_EQ_INT(r[10].timeouts, 1);
    CHECK_MSG(r[10].seconds >= timeout && r[10].seconds < timeout + 0.2, "loop stopped after %.3f s", r[10].seconds);
    CHECK_MSG(wall < timeout + 0.2 + 1.0, "the whole batch took %.3f s", wall);
    printf("endless loop stopped after %.3f s (timeout %.1f s); stuck strategy ended after %.3f s; batch %.3f s\n",
           r[10].seconds, timeout, r[9].seconds, wall);

    /* Completions (model text): extraction happens in the trainer; no fenced block is no function. */
    char *comp[3] = {tu_completion("corner"), strdup("I would keep the biggest tile in a corner."),
                     tu_completion("banned_numpy")};
    uint64_t cs[3] = {3, 3, 3};
    CHECK_EQ_INT(reward_pool_score(p, 3, (const char *const *)comp, cs, r, NULL, err, sizeof err), 0);
    expect4("corner completion", &r[0], 1, 1, 20, 1);
    expect4("no function", &r[1], -2, -1, 0, 0);
    CHECK_EQ_INT(r[1].outcome, OUTCOME_NO_FUNCTION);
    CHECK_EQ_INT(r[1].games, 0);
    CHECK_NEAR(r[1].seconds, 0, 0);
    CHECK(strstr(r[1].error, "no function") != NULL);
    expect4("banned completion", &r[2], 1, -20, 0, 0);
    for (int i = 0; i < 3; i++) free(comp[i]);
    for (int i = 0; i < N; i++) free(src[i]);
    reward_pool_destroy(p);
}

/* The corner strategy on the real target ends without success (+2) and earns partial progress; two
 * games per strategy: the functions are means, counts add up. */
static void test_failing_games(void) {
    reward_pool *p = tu_pool(1, 2, 2.0, 2048, 2);
    char *src = tu_strategy("corner");
    uint64_t seed = 5;
    reward_result r;
    reward_game games[2];
    char err[256];
    CHECK_EQ_INT(reward_pool_play(p, src, seed, games, 2, &r, err, sizeof err), 0);
    CHECK_EQ_INT(r.games, 2);
    for (int g = 0; g < 2; g++) {
        CHECK_MSG(games[g].outcome == OUTCOME_FAILED, "game %d: %s %s", g, reward_outcome_name(games[g].outcome),
                  games[g].error);
        CHECK(games[g].max_tile >= 64 && games[g].max_tile < 2048);
        CHECK(games[g].moves > 50);
        CHECK(games[g].seed == game_seed_mix(seed, (uint64_t)g, 0));
    }
    double gp = (log2(games[0].max_tile) + log2(games[1].max_tile)) / 2 / 11;
    expect4("corner at 2048", &r, 1, 1, 2, gp);
    CHECK(gp > 0.4 && gp < 1);
    CHECK_EQ_INT(r.moves, games[0].moves + games[1].moves);
    CHECK_NEAR(r.score, (games[0].score + games[1].score) / 2.0, 1e-9);
    CHECK_EQ_INT(r.max_tile, games[0].max_tile > games[1].max_tile ? games[0].max_tile : games[1].max_tile);
    printf("corner strategy at 2048: max tiles %u and %u in %d and %d moves\n", games[0].max_tile,
           games[1].max_tile, games[0].moves, games[1].moves);
    free(src);
    reward_pool_destroy(p);
}

/* A `random` strategy gives the same games in two different pools (processes) for the same seeds, and
 * different games for different seeds. */
static void test_random_repeatable(void) {
    char *src = tu_strategy("random_moves");
    const char *s[4] = {src, src, src, src};
    uint64_t seeds[4] = {1, 2, 3, 1};
    reward_result a[4], b[4];
    char err[256];
    reward_pool *p = tu_pool(1, 2, 1.0, 2048, 1);
    CHECK_EQ_INT(reward_pool_score_sources(p, 4, s, seeds, a, NULL, err, sizeof err), 0);
    reward_pool_destroy(p);
    p = tu_pool(1, 1, 1.0, 2048, 1);
    CHECK_EQ_INT(reward_pool_score_sources(p, 4, s, seeds, b, NULL, err, sizeof err), 0);
    reward_pool_destroy(p);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(a[i].outcome, OUTCOME_FAILED);
        CHECK_EQ_INT(a[i].moves, b[i].moves);
        CHECK_NEAR(a[i].score, b[i].score, 0);
        CHECK_EQ_INT(a[i].max_tile, b[i].max_tile);
        CHECK_NEAR(a[i].reward, b[i].reward, 0);
    }
    CHECK_EQ_INT(a[0].moves, a[3].moves);
    CHECK_NEAR(a[0].score, a[3].score, 0);
    CHECK(a[0].moves != a[1].moves || a[0].score != a[1].score || a[1].moves != a[2].moves);
    free(src);
}

/* A mix of honest, broken and hostile strategies (and a completion without code) used by the tests that
 * compare ways of scoring: comp (N_MIXED + 1) malloc'd completions, seeds[i] = i / group (the completions
 * of a group play the same games) and last_seed for the one without code. */
static const char *const MIXED[] = {"corner", "random_moves", "syntax_error", "banned_numpy", "raises", "invalid_x",
                                    "always_w", "random_moves", "corner", "chatty"};
enum { N_MIXED = sizeof MIXED / sizeof *MIXED };
static void mixed_completions(char **comp, uint64_t *seeds, int group, uint64_t last_seed) {
    for (int i = 0; i < N_MIXED; i++) { comp[i] = tu_completion(MIXED[i]); seeds[i] = (uint64_t)(i / group); }
    comp[N_MIXED] = strdup("no code here");
    seeds[N_MIXED] = last_seed;
}

/* The sequential log's text (closes log; the caller frees it), checked to hold "completion i/n" for every i
 * in order. */
static char *log_in_order(FILE *log, int n_completions) {
    long n = ftell(log);
    CHECK(n > 0);
    char *text = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    rewind(log);
    CHECK_EQ_INT(fread(text, 1, (size_t)(n > 0 ? n : 0), log), n);
    fclose(log);
    const char *at = text;
    for (int i = 0; i < n_completions; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "completion %d/%d", i + 1, n_completions);
        const char *hit = strstr(at, tag);
        CHECK_MSG(hit != NULL, "log lacks \"%s\" after position %ld (in order)", tag, (long)(at - text));
        if (hit) at = hit;
    }
    return text;
}

/* parallel = 1 and parallel = 0 give identical rewards; the sequential log lists every completion in
 * order with its checks and games. */
static void test_parallel_vs_sequential(void) {
    enum { N = N_MIXED };
    char *comp[N + 1];
    uint64_t seeds[N + 1];
    mixed_completions(comp, seeds, 2, 9);
    reward_result par[N + 1], seq[N + 1];
    char err[256];
    reward_pool *p = tu_pool(1, 2, 1.0, 256, 1);
    CHECK_EQ_INT(reward_pool_score(p, N + 1, (const char *const *)comp, seeds, par, stderr, err, sizeof err), 0);
    reward_pool_destroy(p);
    FILE *log = tmpfile();
    p = tu_pool(0, 4, 1.0, 256, 1);
    CHECK_EQ_INT(reward_pool_score(p, N + 1, (const char *const *)comp, seeds, seq, log, err, sizeof err), 0);
    reward_pool_destroy(p);
    for (int i = 0; i <= N; i++) {
        CHECK_MSG(par[i].reward == seq[i].reward, "completion %d: %g vs %g", i, par[i].reward, seq[i].reward);
        for (int f = 0; f < RF_COUNT; f++) CHECK_NEAR(par[i].rewards[f], seq[i].rewards[f], 0);
        CHECK_EQ_INT(par[i].outcome, seq[i].outcome);
        CHECK_EQ_INT(par[i].moves, seq[i].moves);
        CHECK_NEAR(par[i].score, seq[i].score, 0);
        CHECK(!strcmp(par[i].error, seq[i].error));
    }
    /* The log: one entry per completion, in order, with the checks and outcomes. */
    char *text = log_in_order(log, N + 1);
    CHECK(strstr(text, "check: syntax_error") != NULL);
    CHECK(strstr(text, "check: banned_import: banned import: numpy") != NULL);
    CHECK(strstr(text, "game 0: success") != NULL);
    CHECK(strstr(text, "no function") != NULL);
    CHECK(strstr(text, "| def strategy(board):") != NULL);
    free(text);
    for (int i = 0; i <= N; i++) free(comp[i]);
}

/* reward_batch (the trainer's overlap of scoring with generation): completions added one at a time in
 * another order, with polls between them, give the results of one reward_pool_score call, each in its
 * completion's slot; a job runs while the caller is busy elsewhere (finished before reward_batch_finish);
 * in sequential mode the log stays in completion order whatever the arrival order. */
static void test_batch_any_order(void) {
    enum { N = N_MIXED };
    char *comp[N + 1];
    uint64_t seeds[N + 1];
    mixed_completions(comp, seeds, 3, 5);
    const int order[N + 1] = {7, 2, 10, 0, 9, 4, 1, 8, 3, 6, 5};
    reward_result ref[N + 1], got[N + 1], seq[N + 1];
    char err[256];
    reward_pool *p = tu_pool(1, 2, 1.0, 256, 1);
    CHECK_EQ_INT(reward_pool_score(p, N + 1, (const char *const *)comp, seeds, ref, NULL, err, sizeof err), 0);

    /* one job, then the caller is "busy": the pool finishes it inside polls alone */
    reward_result one;
    reward_batch *b = reward_batch_begin(p, 1, &one, NULL, err, sizeof err);
    CHECK(b != NULL);
    CHECK_EQ_INT(reward_batch_add(b, 0, comp[0], seeds[0]), 0);
    double t0 = tu_now();
    while (reward_batch_pending(b) > 0 && tu_now() - t0 < 10.0) {
        usleep(2000);
        CHECK_EQ_INT(reward_batch_poll(b), 0);
    }
    CHECK_MSG(reward_batch_pending(b) == 0, "the job did not finish within polls (%d pending)", reward_batch_pending(b));
    CHECK_EQ_INT(reward_batch_finish(b, err, sizeof err), 0);
    CHECK_NEAR(one.reward, ref[0].reward, 0);

    b = reward_batch_begin(p, N + 1, got, NULL, err, sizeof err);
    CHECK(b != NULL);
    for (int k = 0; k <= N; k++) {
        int i = order[k];
        CHECK_EQ_INT(reward_batch_add(b, i, comp[i], seeds[i]), 0);
        usleep(1000);
        CHECK_EQ_INT(reward_batch_poll(b), 0);
    }
    CHECK_EQ_INT(reward_batch_finish(b, err, sizeof err), 0);
    reward_pool_destroy(p);

    FILE *log = tmpfile();
    p = tu_pool(0, 2, 1.0, 256, 1);
    b = reward_batch_begin(p, N + 1, seq, log, err, sizeof err);
    CHECK(b != NULL);
    for (int k = 0; k <= N; k++) CHECK_EQ_INT(reward_batch_add(b, order[k], comp[order[k]], seeds[order[k]]), 0);
    CHECK_EQ_INT(reward_batch_finish(b, err, sizeof err), 0);
    reward_pool_destroy(p);
    for (int i = 0; i <= N; i++) {
        const reward_result *rs[2] = {&got[i], &seq[i]};
        for (int v = 0; v < 2; v++) {
            CHECK_MSG(rs[v]->reward == ref[i].reward, "completion %d (%s): %g vs %g", i, v ? "sequential" : "batch",
                      rs[v]->reward, ref[i].reward);
            CHECK_EQ_INT(rs[v]->outcome, ref[i].outcome);
            CHECK_EQ_INT(rs[v]->moves, ref[i].moves);
            CHECK_NEAR(rs[v]->score, ref[i].score, 0);
        }
    }
    char *text = log_in_order(log, N + 1);
    free(text);
    for (int i = 0; i <= N; i++) free(comp[i]);
}

/* The pid of a child of zygote that is not in known[0..n), or 0 (waits up to 2 s for one). */
static int new_worker(int zygote, const int *known, int n) {
    static tu_proc procs[1 << 15];
    double t0 = tu_now();
    while (tu_now() - t0 < 2.0) {
        int np = tu_procs(procs, 1 << 15);
        for (int i = 0; i < np; i++) {
            if (procs[i].ppid != zygote || procs[i].state == 'Z') continue;
            int old = 0;
            for (int k = 0; k < n; k++) old |= procs[i].pid == known[k];
            if (!old) return procs[i].pid;
        }
        usleep(5000);
    }
    return 0;
}

/* Scores 4 endless strategies on 2 workers while a helper process SIGKILLs worker 0 in its first job
 * and, with twice = 1, also the fresh worker that runs that job again. Returns the stderr the pool
 * wrote (malloc'd) and the results in r. */
static char *score_with_kills(reward_pool *p, int twice, reward_result *r, int *before) {
    CHECK_EQ_INT(reward_pool_worker_pids(p, before, 2), 2);
    tu_proc z;
    CHECK(tu_proc_stat(before[0], &z));
    char *loop = tu_strategy("loop");
    const char *s[4] = {loop, loop, loop, loop};
    uint64_t seeds[4] = {1, 2, 3, 4};
    char err[256];
    fflush(stdout);
    pid_t killer = fork();
    if (killer == 0) {
        usleep(150000);   /* both workers are inside their first job */
        kill(before[0], SIGKILL);
        if (twice) {
            int fresh = new_worker(z.ppid, before, 2);
            if (!fresh) _exit(1);
            usleep(150000);   /* the fresh worker is inside the job again */
            kill(fresh, SIGKILL);
        }
        _exit(0);
    }
    FILE *cap = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(cap), 2);
    CHECK_EQ_INT(reward_pool_score_sources(p, 4, s, seeds, r, NULL, err, sizeof err), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    int st;
    waitpid(killer, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the helper did not find the fresh worker");
    long n = ftell(cap);
    char *text = calloc((size_t)n + 1, 1);
    rewind(cap);
    CHECK(fread(text, 1, (size_t)n, cap) == (size_t)n);
    fclose(cap);
    free(loop);
    return text;
}

/* A worker SIGKILLed in the middle of a batch is not the strategy's fault: the worker is replaced, its
 * job runs again on the fresh one and scores as it should (said on stderr); the rest of the batch and the
 * next batch score normally. Killed twice, the job is an infra_error: every reward 0, said on stderr. */
static void test_worker_killed(void) {
    reward_pool *p = tu_pool(1, 2, 0.4, 2048, 1);
    int before[2], after[2];
    reward_result r[4];
    char *text = score_with_kills(p, 0, r, before);
    printf("stderr of the pool (one kill): %s", text);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(r[i].outcome == OUTCOME_TIMEOUT, "job %d: %s %s", i, reward_outcome_name(r[i].outcome), r[i].error);
    CHECK(strstr(text, "running it again on a fresh worker") != NULL);
    CHECK(strstr(text, "infra_error") == NULL);
    free(text);
    CHECK_EQ_INT(reward_pool_worker_pids(p, after, 2), 2);
    CHECK(after[0] != before[0] && after[1] == before[1]);
    CHECK(wait_gone(before[0], 2.0));
    CHECK(!process_gone(after[0]));

    /* Twice: an infra_error, not a crash. */
    text = score_with_kills(p, 1, r, before);
    printf("stderr of the pool (two kills): %s", text);
    fflush(stdout);
    int infra = 0, timeouts = 0;
    for (int i = 0; i < 4; i++) {
        if (r[i].outcome == OUTCOME_INFRA_ERROR) {
            infra++;
            CHECK(r[i].reward == 0.0 && r[i].games == 0 && strstr(r[i].error, "infra_error") != NULL);
            for (int f = 0; f < RF_COUNT; f++) CHECK(r[i].rewards[f] == 0.0);
        }
        if (r[i].outcome == OUTCOME_TIMEOUT) timeouts++;
    }
    CHECK_EQ_INT(infra, 1);
    CHECK_EQ_INT(timeouts, 3);
    CHECK(strstr(text, "is an infra_error") != NULL);
    free(text);

    /* The next batch is fine. */
    char *rnd = tu_strategy("random_moves");
    const char *s2[4] = {rnd, rnd, rnd, rnd};
    uint64_t seeds[4] = {1, 2, 3, 4};
    char err[256];
    CHECK_EQ_INT(reward_pool_worker_pids(p, after, 2), 2);
    CHECK_EQ_INT(reward_pool_score_sources(p, 4, s2, seeds, r, NULL, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(r[i].outcome == OUTCOME_FAILED, "after the kill: %s %s", reward_outcome_name(r[i].outcome), r[i].error);
        expect4("random after kill", &r[i], 1, 1, 2, log2(r[i].max_tile) / 11);
    }
    reward_pool_destroy(p);
    /* Destroy reaps every worker. */
    for (int i = 0; i < 2; i++) CHECK_MSG(wait_gone(after[i], 2.0), "worker %d still alive after destroy", after[i]);
    free(rnd);
}

/* A worker stopped from outside (SIGSTOP) mid-job is found stopped soon after its job's own deadline,
 * killed and replaced, and its job runs again — not a crash of the strategy, and no 10 s stall. */
static void test_worker_stopped(void) {
    reward_pool *p = tu_pool(1, 2, 0.4, 2048, 1);
    int before[2];
    CHECK_EQ_INT(reward_pool_worker_pids(p, before, 2), 2);
    char *loop = tu_strategy("loop");
    const char *s[2] = {loop, loop};
    uint64_t seeds[2] = {1, 2};
    reward_result r[2];
    char err[256];
    fflush(stdout);
    pid_t stopper = fork();
    if (stopper == 0) {
        usleep(100000);
        kill(before[0], SIGSTOP);
        _exit(0);
    }
    FILE *cap = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(cap), 2);
    double t0 = tu_now();
    CHECK_EQ_INT(reward_pool_score_sources(p, 2, s, seeds, r, NULL, err, sizeof err), 0);
    double took = tu_now() - t0;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    waitpid(stopper, NULL, 0);
    long n = ftell(cap);
    char *text = calloc((size_t)n + 1, 1);
    rewind(cap);
    CHECK(fread(text, 1, (size_t)n, cap) == (size_t)n);
    fclose(cap);
    printf("a stopped worker: batch of 2 endless jobs in %.2f s; stderr: %s", took, text);
    fflush(stdout);   /* later tests fork: nothing buffered may be printed twice */
    for (int i = 0; i < 2; i++)
        CHECK_MSG(r[i].outcome == OUTCOME_TIMEOUT, "job %d: %s %s", i, reward_outcome_name(r[i].outcome), r[i].error);
    CHECK_MSG(strstr(text, "stopped?") && strstr(text, "running it again"), "%s", text);
    /* the job's deadline (0.5 + 0.45 s), the look (0.5 s), the rerun (~1 s): far below 10 s */
    CHECK_MSG(took < 4.0, "the stopped worker stalled the batch for %.2f s", took);
    free(text);
    free(loop);
    reward_pool_destroy(p);
}

/* A trainer that dies (SIGKILL, no cleanup) takes the zygote and the workers along. */
static void test_trainer_death(void) {
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    pid_t trainer = fork();
    if (trainer == 0) {
        close(fds[0]);
        reward_pool *p = tu_pool(1, 2, 1.0, 2048, 1);
        int pids[2];
        reward_pool_worker_pids(p, pids, 2);
        if (write(fds[1], pids, sizeof pids) != (ssize_t)sizeof pids) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    int pids[2] = {0, 0};
    CHECK_EQ_INT(read(fds[0], pids, sizeof pids), (long)sizeof pids);
    close(fds[0]);
    CHECK(pids[0] > 0 && !process_gone(pids[0]));
    kill(trainer, SIGKILL);
    waitpid(trainer, NULL, 0);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(pids[i] > 0 && wait_gone(pids[i], 3.0), "worker %d survived its trainer", pids[i]);
}

/* The parent pid of pid, from /proc (0 when unreadable). */
static pid_t parent_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    char state;
    int ppid = 0;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) return 0;
    return ppid;
}

/* The zygote killed from outside: its workers die with it (parent-death signal); the next call cannot
 * replace them and fails with a message, and so does every later call; destroy still works. */
static void test_zygote_death(void) {
    reward_pool *p = tu_pool(1, 2, 1.0, 2048, 1);
    int pids[2];
    reward_pool_worker_pids(p, pids, 2);
    pid_t zygote = parent_of(pids[0]);
    CHECK(zygote > 0 && zygote != getpid() && parent_of(zygote) == getpid());
    kill(zygote, SIGKILL);
    CHECK(wait_gone(pids[0], 3.0) && wait_gone(pids[1], 3.0));
    char *src = tu_strategy("random_moves");
    const char *s[2] = {src, src};
    uint64_t seeds[2] = {1, 2};
    reward_result r[2];
    char err[256] = "";
    CHECK_EQ_INT(reward_pool_score_sources(p, 2, s, seeds, r, NULL, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "zygote") != NULL, "[%s]", err);
    err[0] = '\0';
    CHECK_EQ_INT(reward_pool_score_sources(p, 2, s, seeds, r, NULL, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "broken") != NULL, "[%s]", err);
    reward_pool_destroy(p);
    free(src);
}

/* Stuck detection is on by default: "always W" ends as stuck in milliseconds even with a 10 s limit;
 * stuck games and timeouts are counted apart; rewards.max_stuck_moves is honoured. */
static void test_stuck(void) {
    reward_config c;
    reward_config_defaults(&c);
    CHECK_EQ_INT(c.max_stuck_moves, 1000);
    c.workers = 1;
    c.timeout = 10.0;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    CHECK(p != NULL);
    char *always_w = tu_strategy("always_w");
    reward_game games[1];
    reward_result r;
    CHECK_EQ_INT(reward_pool_play(p, always_w, 1, games, 1, &r, err, sizeof err), 0);
    CHECK_EQ_INT(r.outcome, OUTCOME_STUCK);
    CHECK_EQ_INT(r.stuck, 1);
    CHECK_EQ_INT(r.timeouts, 0);
    CHECK_MSG(r.seconds < 0.2, "stuck after %.3f s with a 10 s limit", r.seconds);
    CHECK_NEAR(r.rewards[RF_STRATEGY_SUCCEEDS], -1.0, 0);   /* scored like a timeout */
    CHECK_MSG(strstr(r.error, "did not change for 1000 moves") != NULL, "[%s]", r.error);
    printf("always W: stuck after %.1f ms (limit 10 s)\n", 1e3 * r.seconds);
    reward_pool_destroy(p);

    /* Four games: an endless loop in some (decided by the initial board), "W" forever in the others. */
    c.timeout = 0.3;
    c.games_per_strategy = 4;
    c.max_stuck_moves = 5;
    p = reward_pool_create(&c, err, sizeof err);
    CHECK(p != NULL);
    const char *mixed =
        "def strategy(board):\n"
        "    cells = [v for row in board for v in row]\n"
        "    if sum(cells) <= 8 and cells.index(max(cells)) % 2 == 0:\n"
        "        while True:\n"
        "            pass\n"
        "    return 'W'\n";
    reward_game g6[4];
    CHECK_EQ_INT(reward_pool_play(p, mixed, 3, g6, 4, &r, err, sizeof err), 0);
    int stuck = 0, timeouts = 0;
    for (int g = 0; g < 4; g++) {
        stuck += g6[g].outcome == OUTCOME_STUCK;
        timeouts += g6[g].outcome == OUTCOME_TIMEOUT;
        if (g6[g].outcome == OUTCOME_STUCK) {
            CHECK_MSG(strstr(g6[g].error, "did not change for 5 moves") != NULL, "[%s]", g6[g].error);
            CHECK_MSG(g6[g].seconds < 0.05, "game %d stuck after %.3f s", g, g6[g].seconds);
        }
    }
    CHECK_EQ_INT(stuck + timeouts, 4);
    CHECK_MSG(stuck >= 1 && timeouts >= 1, "%d stuck, %d timeouts", stuck, timeouts);
    CHECK_EQ_INT(r.stuck, stuck);
    CHECK_EQ_INT(r.timeouts, timeouts);
    printf("4 games: %d stuck, %d timeouts, counted apart\n", stuck, timeouts);
    reward_pool_destroy(p);
    free(always_w);
}

/* The worker's check cache and checker, and the pool's statistics: a source seen before is not checked
 * again (a failing one forks nothing at all), every number adds up. */
static void test_check_cache(void) {
    reward_pool *p = tu_pool(1, 1, 1.0, 64, 1);
    char *corner = tu_strategy("corner"), *syntax = tu_strategy("syntax_error"), *banned = tu_strategy("banned_numpy");
    char err[256];
    uint64_t seed = 9;
    reward_result first[3], again[3];
    const char *s[3] = {corner, syntax, banned};
    uint64_t seeds[3] = {seed, seed, seed};
    CHECK_EQ_INT(reward_pool_score_sources(p, 3, s, seeds, first, NULL, err, sizeof err), 0);
    reward_pool_stats st;
    reward_pool_get_stats(p, &st);
    CHECK_EQ_INT(st.jobs, 3);
    CHECK_EQ_INT(st.cached_checks, 0);
    CHECK_EQ_INT(st.children, 1);   /* only the source that passed its checks plays */
    reward_pool_reset_stats(p);
    CHECK_EQ_INT(reward_pool_score_sources(p, 3, s, seeds, again, NULL, err, sizeof err), 0);
    reward_pool_get_stats(p, &st);
    CHECK_EQ_INT(st.jobs, 3);
    CHECK_EQ_INT(st.cached_checks, 3);
    CHECK_EQ_INT(st.children, 1);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(again[i].outcome, first[i].outcome);
        CHECK_NEAR(again[i].reward, first[i].reward, 0);
        CHECK(!strcmp(again[i].error, first[i].error));
        CHECK_EQ_INT(again[i].moves, first[i].moves);
    }
    CHECK_EQ_INT(first[0].outcome, OUTCOME_SUCCESS);
    CHECK_EQ_INT(first[1].outcome, OUTCOME_SYNTAX_ERROR);
    CHECK_EQ_INT(first[2].outcome, OUTCOME_BANNED_IMPORT);
    CHECK(st.fork_seconds > 0 && st.sandbox_seconds > 0 && st.check_seconds > 0 && st.play_seconds > 0);
    CHECK(st.job_seconds >= st.play_seconds && st.minor_faults > 0);
    printf("cached checks: job %.0f us, of which fork %.0f, sandbox %.0f, checks %.0f, play %.0f us; %ld page faults\n",
           1e6 * st.job_seconds / 3, 1e6 * st.fork_seconds, 1e6 * st.sandbox_seconds, 1e6 * st.check_seconds,
           1e6 * st.play_seconds, st.minor_faults);
    reward_pool_destroy(p);
    free(corner);
    free(syntax);
    free(banned);
}

int main(void) {
    double t0 = tu_now();
    test_stuck();
    test_check_cache();
    test_values();
    test_failing_games();
    test_random_repeatable();
    test_parallel_vs_sequential();
    test_batch_any_order();
    test_worker_killed();
    test_worker_stopped();
    test_trainer_death();
    test_zygote_death();
    printf("test_pool: %.2f s\n", tu_now() - t0);
    return TEST_DONE();
}
