/*
 * rewards/reward_funcs.c: the reward functions and the tables around them — function and outcome
 * names, the configuration's defaults and ranges, and reward_compute, which turns one job's check
 * result and games into the four function values and their weighted sum.
 *
 * The values are those of the public Unsloth 2048 GRPO notebook (function_works, no_cheating,
 * strategy_succeeds), plus game_progress, a dense signal for strategies that end without reaching the
 * target. The full table and the reasons for the choices the notebook leaves open are at the top of
 * rewards/rewards.h. Everything here is a pure function of its inputs, so parallel and sequential
 * scoring (and a replay from stored outcomes) give identical rewards.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game2048/game.h"
#include "rewards/pool_internal.h"

static const char *const func_names[RF_COUNT] = {"function_works", "no_cheating", "strategy_succeeds",
                                                 "game_progress"};

static const char *const outcome_names[OUTCOME_COUNT] = {
    "success", "failed", "timeout", "stuck", "exception", "invalid_move", "memory", "crash",
    "no_function", "syntax_error", "build_failed", "banned_import", "infra_error"};

const char *reward_func_name(int f) {
    if (f < 0 || f >= RF_COUNT) RW_ABORT("reward_func_name: function %d out of range 0..%d", f, RF_COUNT - 1);
    return func_names[f];
}

int reward_func_from_name(const char *name) {
    if (!name) return -1;
    for (int f = 0; f < RF_COUNT; f++)
        if (!strcmp(name, func_names[f])) return f;
    return -1;
}

const char *reward_outcome_name(reward_outcome o) {
    if ((int)o < 0 || o >= OUTCOME_COUNT) RW_ABORT("reward_outcome_name: outcome %d out of range", (int)o);
    return outcome_names[o];
}

int reward_outcome_from_name(const char *name) {
    if (!name) return -1;
    for (int o = 0; o < OUTCOME_COUNT; o++)
        if (!strcmp(name, outcome_names[o])) return o;
    return -1;
}

void reward_config_defaults(reward_config *c) {
    memset(c, 0, sizeof *c);
    c->parallel = 1;
    c->workers = 0;
    c->timeout = 1.0;
    c->games_per_strategy = 1;
    c->board_size = 4;
    c->target = 2048;
    c->probability_fours = 0.10;
    c->max_stuck_moves = 1000;
    c->memory_limit = (size_t)512 << 20;
    for (int f = 0; f < RF_COUNT; f++) c->weights[f] = 1.0;
}

#define FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int reward_config_validate(const reward_config *c, char *err, size_t errlen) {
    if (c->parallel != 0 && c->parallel != 1) FAIL("rewards.parallel is %d; expected 0 or 1", c->parallel);
    if (c->workers < 0 || c->workers > 1024)
        FAIL("rewards.workers is %d; expected 0 (one per online CPU) to 1024", c->workers);
    if (!(c->timeout > 0.0 && c->timeout <= 3600.0))
        FAIL("rewards.timeout is %g; expected seconds per game in (0, 3600]", c->timeout);
    if (c->games_per_strategy < 1 || c->games_per_strategy > REWARD_MAX_GAMES)
        FAIL("rewards.games_per_strategy is %d; expected 1 to %d", c->games_per_strategy, REWARD_MAX_GAMES);
    if (c->board_size < GAME_MIN_SIZE || c->board_size > GAME_MAX_SIZE)
        FAIL("rewards.board_size is %d; expected %d to %d", c->board_size, GAME_MIN_SIZE, GAME_MAX_SIZE);
    if (c->target < 4 || c->target > (1u << 30) || (c->target & (c->target - 1)))
        FAIL("rewards.target is %u; expected a power of two from 4 to 2^30", c->target);
    if (!(c->probability_fours >= 0.0 && c->probability_fours <= 1.0))
        FAIL("rewards.probability_fours is %g; expected a probability in [0, 1]", c->probability_fours);
    if (c->max_stuck_moves < 1) FAIL("rewards.max_stuck_moves is %d; expected at least 1", c->max_stuck_moves);
    if (c->memory_limit < ((size_t)16 << 20))
        FAIL("rewards.memory_limit is %zu bytes; expected at least 16 MiB", c->memory_limit);
    for (int f = 0; f < RF_COUNT; f++)
        if (!(fabs(c->weights[f]) <= REWARD_MAX_WEIGHT))
            FAIL("rewards weight of %s is %g; expected a finite number in [-%g, %g]", func_names[f], c->weights[f],
                 REWARD_MAX_WEIGHT, REWARD_MAX_WEIGHT);
    return 0;
}

/* strategy_succeeds for one played game (notebook values; invalid moves scored like exceptions). */
static double game_succeeds(reward_outcome o) {
    switch (o) {
    case OUTCOME_SUCCESS: return 20.0;
    case OUTCOME_FAILED: return 2.0;
    case OUTCOME_TIMEOUT: case OUTCOME_STUCK: return -1.0;
    case OUTCOME_EXCEPTION: case OUTCOME_INVALID_MOVE: case OUTCOME_MEMORY: case OUTCOME_CRASH: return -3.0;
    default: RW_ABORT("game_succeeds: %s is not a game outcome", reward_outcome_name(o));
    }
}

/* game_progress for one played game: log2(max_tile) / log2(target), clipped to [0, 1], when the game
 * ended normally (success, or failed with no move left); 0 otherwise. */
static double game_progress(reward_outcome o, uint32_t max_tile, uint32_t target) {
    if (o != OUTCOME_SUCCESS && o != OUTCOME_FAILED) return 0.0;
    if (max_tile < 2) return 0.0;
    double v = log2((double)max_tile) / log2((double)target);
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

void reward_compute(const reward_config *c, int check, const char *check_error, const reward_game *games, int n,
                    reward_result *out) {
    memset(out, 0, sizeof *out);
    if (check != RW_CHECK_OK) {
        switch (check) {
        case OUTCOME_NO_FUNCTION: case OUTCOME_SYNTAX_ERROR:
            out->rewards[RF_FUNCTION_WORKS] = -2.0;
            out->rewards[RF_NO_CHEATING] = -1.0;
            break;
        case OUTCOME_BUILD_FAILED:
            out->rewards[RF_FUNCTION_WORKS] = -0.5;
            out->rewards[RF_NO_CHEATING] = 1.0;
            break;
        case OUTCOME_BANNED_IMPORT:
            out->rewards[RF_FUNCTION_WORKS] = 1.0;
            out->rewards[RF_NO_CHEATING] = -20.0;
            break;
        default: RW_ABORT("reward_compute: check %d is not a check outcome", check);
        }
        out->outcome = (reward_outcome)check;
        snprintf(out->error, sizeof out->error, "%s", check_error ? check_error : "");
    } else {
        if (n < 1 || !games) RW_ABORT("reward_compute: a passed check needs n >= 1 games (n = %d)", n);
        out->rewards[RF_FUNCTION_WORKS] = 1.0;
        out->rewards[RF_NO_CHEATING] = 1.0;
        double succ = 0.0, prog = 0.0, score = 0.0;
        for (int g = 0; g < n; g++) {
            const reward_game *gm = &games[g];
            succ += game_succeeds(gm->outcome);
            prog += game_progress(gm->outcome, gm->max_tile, c->target);
            score += (double)gm->score;
            if (gm->max_tile > out->max_tile) out->max_tile = gm->max_tile;
            out->moves += gm->moves;
            out->wins += gm->outcome == OUTCOME_SUCCESS;
            out->timeouts += gm->outcome == OUTCOME_TIMEOUT;
            out->stuck += gm->outcome == OUTCOME_STUCK;
            if (!out->error[0] && gm->error[0])
                snprintf(out->error, sizeof out->error, "game %d: %s", g, gm->error);
        }
        out->rewards[RF_STRATEGY_SUCCEEDS] = succ / n;
        out->rewards[RF_GAME_PROGRESS] = prog / n;
        out->score = score / n;
        out->games = n;
        out->outcome = games[0].outcome;
    }
    out->reward = 0.0;
    for (int f = 0; f < RF_COUNT; f++) out->reward += c->weights[f] * out->rewards[f];
    if (!isfinite(out->reward)) RW_ABORT("reward_compute: a non-finite reward (weights not validated?)");
}
