/*
 * tests/rewards/test_reward_funcs.c: the reward functions as pure arithmetic (reward_compute) — every
 * check and game outcome's values, means over several games, game_progress clipping, weights — plus
 * the name tables and config validation. No processes are started.
 */
#include <math.h>
#include <string.h>

#include "rewards/rewards.h"
#include "tests/testing.h"

static reward_game game(reward_outcome o, uint32_t max_tile, uint64_t score, int moves) {
    reward_game g;
    memset(&g, 0, sizeof g);
    g.outcome = o;
    g.max_tile = max_tile;
    g.score = score;
    g.moves = moves;
    if (o != OUTCOME_SUCCESS && o != OUTCOME_FAILED) snprintf(g.error, sizeof g.error, "%s happened", reward_outcome_name(o));
    return g;
}

static void expect4(const reward_result *r, double fw, double nc, double ss, double gp) {
    CHECK_NEAR(r->rewards[RF_FUNCTION_WORKS], fw, 1e-12);
    CHECK_NEAR(r->rewards[RF_NO_CHEATING], nc, 1e-12);
    CHECK_NEAR(r->rewards[RF_STRATEGY_SUCCEEDS], ss, 1e-12);
    CHECK_NEAR(r->rewards[RF_GAME_PROGRESS], gp, 1e-12);
    CHECK_NEAR(r->reward, fw + nc + ss + gp, 1e-12);
}

int main(void) {
    reward_config c;
    reward_config_defaults(&c);
    CHECK_EQ_INT(c.parallel, 1);
    CHECK_NEAR(c.timeout, 1.0, 0);
    CHECK_EQ_INT(c.games_per_strategy, 1);
    CHECK_EQ_INT(c.board_size, 4);
    CHECK_EQ_INT(c.target, 2048);
    CHECK_NEAR(c.probability_fours, 0.10, 0);
    CHECK_EQ_INT(c.max_stuck_moves, 1000);
    CHECK_EQ_INT(c.memory_limit, (size_t)512 << 20);
    char err[256];
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), 0);

    /* Names round-trip. */
    for (int f = 0; f < RF_COUNT; f++) CHECK_EQ_INT(reward_func_from_name(reward_func_name(f)), f);
    CHECK(!strcmp(reward_func_name(RF_GAME_PROGRESS), "game_progress"));
    CHECK_EQ_INT(reward_func_from_name("nope"), -1);
    CHECK_EQ_INT(reward_func_from_name(NULL), -1);
    for (int o = 0; o < OUTCOME_COUNT; o++) CHECK_EQ_INT(reward_outcome_from_name(reward_outcome_name(o)), o);
    CHECK(!strcmp(reward_outcome_name(OUTCOME_INVALID_MOVE), "invalid_move"));
    CHECK(!strcmp(reward_outcome_name(OUTCOME_BANNED_IMPORT), "banned_import"));

    reward_result r;
    /* Sources that were not played. */
    reward_compute(&c, OUTCOME_NO_FUNCTION, "no function: x", NULL, 0, &r);
    expect4(&r, -2, -1, 0, 0);
    CHECK_EQ_INT(r.outcome, OUTCOME_NO_FUNCTION);
    CHECK(!strcmp(r.error, "no function: x"));
    CHECK_EQ_INT(r.games, 0);
    reward_compute(&c, OUTCOME_SYNTAX_ERROR, "syntax error", NULL, 0, &r);
    expect4(&r, -2, -1, 0, 0);
    reward_compute(&c, OUTCOME_BUILD_FAILED, "build failed", NULL, 0, &r);
    expect4(&r, -0.5, 1, 0, 0);
    reward_compute(&c, OUTCOME_BANNED_IMPORT, "banned import: numpy", NULL, 0, &r);
    expect4(&r, 1, -20, 0, 0);
    CHECK_NEAR(r.reward, -19, 1e-12);

    /* One game of each outcome (target 2048: log2 = 11). */
    struct { reward_outcome o; double ss; uint32_t tile; double gp; } t[] = {
        {OUTCOME_SUCCESS, 20, 2048, 1.0},   {OUTCOME_SUCCESS, 20, 4096, 1.0}, {OUTCOME_FAILED, 2, 256, 8.0 / 11},
        {OUTCOME_FAILED, 2, 2, 1.0 / 11},   {OUTCOME_TIMEOUT, -1, 256, 0},    {OUTCOME_STUCK, -1, 64, 0},
        {OUTCOME_EXCEPTION, -3, 8, 0},      {OUTCOME_INVALID_MOVE, -3, 8, 0}, {OUTCOME_MEMORY, -3, 8, 0},
        {OUTCOME_CRASH, -3, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        reward_game g = game(t[i].o, t[i].tile, 100, 10);
        reward_compute(&c, -1, NULL, &g, 1, &r);
        expect4(&r, 1, 1, t[i].ss, t[i].gp);
        CHECK_EQ_INT(r.outcome, t[i].o);
        CHECK_EQ_INT(r.games, 1);
        CHECK_EQ_INT(r.wins, t[i].o == OUTCOME_SUCCESS);
        CHECK_EQ_INT(r.timeouts, t[i].o == OUTCOME_TIMEOUT);
        CHECK_EQ_INT(r.stuck, t[i].o == OUTCOME_STUCK);
        CHECK_EQ_INT(r.error[0] != 0, t[i].o != OUTCOME_SUCCESS && t[i].o != OUTCOME_FAILED);
    }

    /* Means over games; max tile, total moves, mean score; the first error. */
    reward_game gs[4] = {game(OUTCOME_SUCCESS, 2048, 20000, 900), game(OUTCOME_FAILED, 512, 6000, 500),
                         game(OUTCOME_TIMEOUT, 1024, 9000, 700), game(OUTCOME_EXCEPTION, 16, 40, 7)};
    reward_compute(&c, -1, NULL, gs, 4, &r);
    expect4(&r, 1, 1, (20 + 2 - 1 - 3) / 4.0, (1.0 + 9.0 / 11) / 4);
    CHECK_EQ_INT(r.max_tile, 2048);
    CHECK_EQ_INT(r.moves, 900 + 500 + 700 + 7);
    CHECK_NEAR(r.score, (20000 + 6000 + 9000 + 40) / 4.0, 1e-9);
    CHECK_EQ_INT(r.wins, 1);
    CHECK_EQ_INT(r.timeouts, 1);
    CHECK_EQ_INT(r.outcome, OUTCOME_SUCCESS);
    CHECK_MSG(strstr(r.error, "game 2: timeout happened") != NULL, "error [%s]", r.error);

    /* A small target clips progress at 1; target 32 and a 16 tile give 4/5. */
    c.target = 32;
    reward_game g16 = game(OUTCOME_FAILED, 16, 60, 20);
    reward_compute(&c, -1, NULL, &g16, 1, &r);
    CHECK_NEAR(r.rewards[RF_GAME_PROGRESS], 0.8, 1e-12);

    /* Weights: zero disables a function, others scale it. */
    c.weights[RF_NO_CHEATING] = 0.0;
    c.weights[RF_STRATEGY_SUCCEEDS] = 0.5;
    reward_compute(&c, OUTCOME_BANNED_IMPORT, "", NULL, 0, &r);
    CHECK_NEAR(r.rewards[RF_NO_CHEATING], -20, 0);
    CHECK_NEAR(r.reward, 1.0, 1e-12);
    reward_compute(&c, -1, NULL, &g16, 1, &r);
    CHECK_NEAR(r.reward, 1 + 0 + 0.5 * 2 + 0.8, 1e-12);

    /* Validation names the field. */
    reward_config_defaults(&c);
    c.target = 1000;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK(strstr(err, "rewards.target") != NULL);
    reward_config_defaults(&c);
    c.timeout = 0;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK(strstr(err, "rewards.timeout") != NULL);
    reward_config_defaults(&c);
    c.games_per_strategy = REWARD_MAX_GAMES + 1;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK(strstr(err, "games_per_strategy") != NULL);
    reward_config_defaults(&c);
    c.board_size = 9;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    reward_config_defaults(&c);
    c.weights[2] = NAN;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK(strstr(err, "strategy_succeeds") != NULL);
    CHECK(reward_pool_create(&c, err, sizeof err) == NULL);
    return TEST_DONE();
}
