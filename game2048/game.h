/*
 * game2048/game.h: the 2048 game, the part of grpo2048 that strategies are scored on.
 *
 * An N×N board (2 ≤ N ≤ 8) of tile values (0 = empty cell, else a power of two ≥ 2), a target tile
 * (default 2048), the probability that a spawned tile is a 4 (default 0.10), and a seeded RNG, so the
 * same (N, target, p_four, seed) gives the same game on any machine (the RNG is integer-only).
 *
 * Moves: 'W' up, 'A' left, 'S' down, 'D' right (lower case accepted). Tiles slide toward the move's
 * side; each tile merges at most once per move ([2,2,2,2] A → [4,4,0,0]; [4,4,8,0] A → [8,8,0,0]); the
 * score grows by each merged tile's value. A move that changes nothing spawns nothing and does not end
 * the game. After a move that changed the board one tile spawns on a uniformly chosen empty cell.
 *
 * States: GAME_ONGOING; GAME_SUCCESS once a tile ≥ target exists; GAME_FAILED when no move can change
 * the board, or when the strategy returned something that is not a move (game_fail()).
 *
 * This module knows nothing of models or rewards. It has no global state and is safe to use from
 * any number of processes or threads on distinct game2048 values. (The only static data are the
 * read-only N=4 row tables of game2048/fast4.c, built once under pthread_once.)
 *
 * Parts: game.c holds the RNG, spawning, the generic N×N move kernel (game_slide_line) and the state
 * rules; fast4.c holds a bit-identical fast path for N=4 (a 64-bit board of 4-bit log2 exponents and
 * 65536-entry row tables) that game_move takes automatically when N=4 and every tile is < 2^15.
 * game_internal.h exposes both paths separately for tests and benchmarks.
 */
#ifndef GRPO2048_GAME_H
#define GRPO2048_GAME_H

#include <stddef.h>
#include <stdint.h>

#define GAME_MIN_SIZE 2
#define GAME_MAX_SIZE 8

typedef enum {
    GAME_ONGOING = 0,
    GAME_SUCCESS = 1,
    GAME_FAILED = 2,
} game_state;

/* A small counter-based RNG (splitmix64 stream): the whole state is one uint64_t. */
typedef struct {
    uint64_t state;
} game_rng;

typedef struct {
    int n;                          /* board side N, 2..8 */
    uint32_t target;                /* tile value that ends the game in success, a power of two ≥ 4 */
    double p_four;                  /* probability that a spawned tile is a 4, in [0, 1] */
    uint32_t cells[GAME_MAX_SIZE * GAME_MAX_SIZE]; /* (N, N) row-major tile values, 0 = empty */
    uint64_t score;                 /* sum of merged tile values */
    int moves;                      /* moves that changed the board */
    uint32_t max_tile;              /* largest tile on the board */
    game_state state;
    game_rng rng;
} game2048;

/* splitmix64 step: returns the next 64 random bits and advances *r. */
uint64_t game_rng_next(game_rng *r);

/* Derives an independent seed from (seed, a, b): used for streams keyed by (run seed, step, index). */
uint64_t game_seed_mix(uint64_t seed, uint64_t a, uint64_t b);

/* Starts a game: empty board, then two spawned tiles. Returns 0, or -1 when n, target or p_four is out
 * of range (n in 2..8, target a power of two in 4..2^30, p_four in [0,1]); *g is then untouched. */
int game_init(game2048 *g, int n, uint32_t target, double p_four, uint64_t seed);

/* Parses a move character: 'W','A','S','D' (any case) → the upper-case letter; anything else → 0. */
char game_parse_move(int c);

/* Plays one move ('W','A','S','D', any case). Returns 1 when the board changed (a tile spawned, the
 * state updated), 0 when nothing changed (nothing spawns, the state stays), -1 when the game is not
 * ongoing or the move is not one of WASD (the board is unchanged; use game_fail() to end the game). */
int game_move(game2048 *g, int move);

/* Ends the game as GAME_FAILED (the strategy returned something that is not a move). */
void game_fail(game2048 *g);

/* 1 when some move would change the board, else 0. */
int game_can_move(const game2048 *g);

/* Slides one line of n tile values toward index 0, merging equal neighbours once each.
 * line: (n,) in and out. Returns the score gained; *changed is set to 1 when the line changed.
 * This is the reference kernel that the fast N=4 path is checked against.
 * (Details: *changed is set to 0 when the line did not change, and changed may be NULL. n must be in
 * 1..8 and every value 0 or a power of two in 2..2^30, else it aborts with file:line. The score wraps
 * mod 2^32 when it exceeds 2^32 - 1, which needs merges of tiles ≥ 2^29; game_move keeps its own
 * exact 64-bit score.) */
uint32_t game_slide_line(uint32_t *line, int n, int *changed);

/* Replaces the board of an initialised game (hand-made positions for tests and tools).
 * cells: (N, N) row-major tile values, N = g->n; each 0 or a power of two in 2..2^30.
 * Sets max_tile and the state (GAME_SUCCESS when a tile ≥ target, else GAME_FAILED when no move can
 * change the board, else GAME_ONGOING); score, moves, target, p_four and the RNG are kept.
 * Returns 0, or -1 with a message in err (naming the cell and the expected values) when a value is
 * invalid; *g is then untouched. err may be NULL when errlen is 0. */
int game_set_cells(game2048 *g, const uint32_t *cells, char *err, size_t errlen);

/* Name of a state: "ongoing", "success", "failed". */
const char *game_state_name(game_state s);

#endif
