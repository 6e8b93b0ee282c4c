/*
 * tests/rewards/test_sandbox.c: the worker's clocks over several games per job — an endless loop killed
 * at each game's own deadline with the next game in a new child, a slow strategy stopped by the child's
 * own per-game clock (no kill), and a strategy that loops in some games only (the others still count).
 * (One strategy per attack, each with its promised outcome, is test_hostile.c.)
 */
#include <string.h>
#include <unistd.h>

#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

int main(void) {
    double t0 = tu_now();
    char err[256];
    reward_pool *p;

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

    printf("test_sandbox: %.2f s\n", tu_now() - t0);
    return TEST_DONE();
}
