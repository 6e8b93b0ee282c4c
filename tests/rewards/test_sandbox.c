/*
 * tests/rewards/test_sandbox.c: one small strategy per attack or misbehaviour (in the spirit of DMOJ's
 * cptbox tests), each checked for the outcome the sandbox promises: files cannot be opened, processes,
 * threads and sockets end the job (SIGSYS), the worker cannot be signalled, the result cannot be
 * forged, memory is bounded, time is bounded whatever the strategy does to its own fds, printing is
 * harmless, signals to itself work. Also the worker's restart of a child after a killed game, and the
 * child's own per-game clock.
 */
#include <string.h>
#include <unistd.h>

#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

typedef struct {
    const char *name;
    reward_outcome outcome;     /* expected; OUTCOME_COUNT: anything but crash/exception/invalid_move */
    const char *error;          /* substring of the error, or NULL */
} attack;

int main(void) {
    double t0 = tu_now();
    const double timeout = 0.5;
    attack attacks[] = {
        {"open_passwd", OUTCOME_EXCEPTION, "PermissionError"},
        {"fork", OUTCOME_CRASH, "signal 31"},
        {"socket_connect", OUTCOME_CRASH, "signal 31"},
        {"thread", OUTCOME_CRASH, "signal 31"},
        {"kill_parent", OUTCOME_CRASH, "signal 31"},
        {"exit_early", OUTCOME_CRASH, "before reporting"},
        {"forge_result", OUTCOME_CRASH, "corrupt result"},
        {"import_json", OUTCOME_EXCEPTION, "ModuleNotFoundError"},
        {"sleeper", OUTCOME_TIMEOUT, "timeout"},
        {"close_and_loop", OUTCOME_TIMEOUT, "timeout"},
        {"chatty", OUTCOME_COUNT, NULL},
        {"self_signal", OUTCOME_COUNT, NULL},
#ifndef GRPO2048_SANITIZE
        /* Under AddressSanitizer RLIMIT_AS is not set (ASan reserves terabytes of address space). */
        {"memory_hog", OUTCOME_MEMORY, "MemoryError"},
#endif
    };
    enum { N = sizeof attacks / sizeof *attacks };
    reward_pool *p = tu_pool(1, 2, timeout, 2048, 1);
    int pids_before[2], pids_after[2];
    reward_pool_worker_pids(p, pids_before, 2);
    char *src[N];
    uint64_t seeds[N];
    reward_result r[N];
    for (int i = 0; i < N; i++) { src[i] = tu_strategy(attacks[i].name); seeds[i] = 1; }
    char err[256];
    CHECK_EQ_INT(reward_pool_score_sources(p, N, (const char *const *)src, seeds, r, NULL, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        const attack *a = &attacks[i];
        printf("%-16s %-12s %.3f s  %s\n", a->name, reward_outcome_name(r[i].outcome), r[i].seconds, r[i].error);
        if (a->outcome == OUTCOME_COUNT)
            CHECK_MSG(r[i].outcome == OUTCOME_FAILED || r[i].outcome == OUTCOME_STUCK || r[i].outcome == OUTCOME_SUCCESS,
                      "%s: %s (%s)", a->name, reward_outcome_name(r[i].outcome), r[i].error);
        else
            CHECK_MSG(r[i].outcome == a->outcome, "%s: %s, expected %s (%s)", a->name,
                      reward_outcome_name(r[i].outcome), reward_outcome_name(a->outcome), r[i].error);
        if (a->error) CHECK_MSG(strstr(r[i].error, a->error) != NULL, "%s: error [%s] lacks [%s]", a->name, r[i].error, a->error);
        CHECK_MSG(r[i].seconds < timeout + 0.2, "%s took %.3f s", a->name, r[i].seconds);
        /* Imports of standard modules are not cheating, even when the sandbox refuses them. */
        CHECK_NEAR(r[i].rewards[RF_NO_CHEATING], 1, 0);
    }
    /* kill_parent was stopped before it reached the worker: the same workers serve on. */
    CHECK_EQ_INT(reward_pool_worker_pids(p, pids_after, 2), 2);
    CHECK(pids_after[0] == pids_before[0] && pids_after[1] == pids_before[1]);
    reward_pool_destroy(p);

    /* Three games of an endless loop: each game is killed at its own deadline and the next game runs in
     * a new child, so all three time out, each after about `timeout`. */
    p = tu_pool(1, 1, 0.2, 2048, 3);
    char *loop = tu_strategy("loop");
    reward_game games[4];
    reward_result res;
    CHECK_EQ_INT(reward_pool_play(p, loop, 4, games, 3, &res, err, sizeof err), 0);
    CHECK_EQ_INT(res.timeouts, 3);
    for (int g = 0; g < 3; g++) {
        CHECK_EQ_INT(games[g].outcome, OUTCOME_TIMEOUT);
        CHECK_MSG(games[g].seconds >= 0.2 && games[g].seconds < 0.45, "game %d: %.3f s", g, games[g].seconds);
        CHECK(strstr(games[g].error, "(killed)") != NULL);
    }
    CHECK_MSG(res.seconds < REWARD_CHECK_ALLOWANCE + 3 * (0.2 + REWARD_KILL_GRACE), "3 loops took %.3f s", res.seconds);
    printf("3 endless games with timeout 0.2 s: %.3f s\n", res.seconds);
    free(loop);

    /* Slow but returning: the child's own clock ends each game at the timeout, no kill needed. */
    char *slow = tu_strategy("slow_moves");
    CHECK_EQ_INT(reward_pool_play(p, slow, 4, games, 3, &res, err, sizeof err), 0);
    int by_clock = 0;
    for (int g = 0; g < 3; g++) {
        CHECK_MSG(games[g].outcome == OUTCOME_TIMEOUT || games[g].outcome == OUTCOME_STUCK ||
                  games[g].outcome == OUTCOME_FAILED, "slow game %d: %s", g, reward_outcome_name(games[g].outcome));
        /* Normally the child's clock ends the game (no kill: the moves are kept); on a loaded machine the
         * worker's kill, 50 ms later, may come first. */
        if (games[g].outcome == OUTCOME_TIMEOUT && !strstr(games[g].error, "(killed)")) {
            CHECK(strstr(games[g].error, "timeout: game took longer than 0.2 s") != NULL);
            CHECK(games[g].moves > 10);   /* it played until the clock ran out */
            by_clock++;
        }
    }
    CHECK(res.timeouts >= 1);
    printf("slow strategy: %d of %d timeouts ended by the child's own clock\n", by_clock, res.timeouts);
    free(slow);
    reward_pool_destroy(p);

    /* A strategy that loops in some games only (by its seeded `random`): the other games still count. */
    p = tu_pool(1, 1, 0.2, 64, 4);
    const char *sometimes =
        "def strategy(board):\n"
        "    import random\n"
        "    if sum(map(sum, board)) <= 8 and random.random() < 0.5:\n"
        "        while True:\n"
        "            pass\n"
        "    return random.choice('WASD')\n";
    CHECK_EQ_INT(reward_pool_play(p, sometimes, 3, games, 4, &res, err, sizeof err), 0);
    int looped = 0, played = 0;
    for (int g = 0; g < 4; g++) {
        looped += games[g].outcome == OUTCOME_TIMEOUT;
        played += (games[g].outcome == OUTCOME_SUCCESS || games[g].outcome == OUTCOME_FAILED) && games[g].moves > 0;
    }
    printf("sometimes-looping strategy: %d timeouts, %d played games\n", looped, played);
    CHECK(looped >= 1 && played >= 1 && looped + played == 4);
    reward_pool_destroy(p);

    for (int i = 0; i < N; i++) free(src[i]);
    printf("test_sandbox: %.2f s\n", tu_now() - t0);
    return TEST_DONE();
}
