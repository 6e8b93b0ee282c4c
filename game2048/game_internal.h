/*
 * game2048/game_internal.h: private interface between game.c (generic N×N path, RNG, state rules) and
 * fast4.c (the N=4 bitboard path), also used by tests/game2048 and bench/bench_game.c to run each
 * path on its own. Not for other modules: use game.h.
 *
 * Bitboard layout (N=4): cell (r, c) is nibble 4r + c of a uint64_t (bits 16r + 4c .. 16r + 4c + 3),
 * holding log2 of the tile value (0 = empty cell, e = tile 2^e). So row r is the 16-bit word r, and
 * within a row column 0 is the low nibble. The layout is the row-major cell order of game2048.cells,
 * so "the k-th empty cell" means the same cell on both paths.
 *
 * The spawn protocol that both paths share (and that makes them bit-identical): after a move that
 * changed the board, count the empty cells e (e ≥ 1 always holds then), draw k = game_rng_below(rng, e),
 * then four = game_rng_four(rng, p_four), and put a 4 (four) or a 2 on the k-th empty cell in row-major
 * order. Then the score grows by the merged values, moves += 1, max_tile is recomputed, and the state
 * becomes SUCCESS (max_tile ≥ target) or else FAILED (no move changes the board).
 */
#ifndef GRPO2048_GAME_INTERNAL_H
#define GRPO2048_GAME_INTERNAL_H

#include <stdint.h>

#include "game2048/game.h"

/* Uniform integer in [0, bound), bound in 1..2^32-1 (bound 0 aborts), with no modulo bias: Lemire's
 * multiply-high with rejection on the top 32 bits of each 64-bit draw (D. Lemire, "Fast Random Integer
 * Generation in an Interval", ACM TOMACS 2019). Consumes one draw, rarely more. */
uint32_t game_rng_below(game_rng *r, uint32_t bound);

/* 1 with probability p_four, else 0: one draw, u = (draw >> 11) · 2^-53 (an exact double in [0, 1)),
 * returns u < p_four. p_four = 0 never gives 1, p_four = 1 always does. */
int game_rng_four(game_rng *r, double p_four);

/* game_move restricted to the generic N×N path (the reference). Same contract as game_move. */
int game_move_generic(game2048 *g, int move);

/* game_move restricted to the N=4 bitboard path. Same contract as game_move, except that it returns -2
 * (and touches nothing) when g->n != 4 or some tile is ≥ 2^15 (the path needs every merge result to fit
 * in a nibble); the caller then uses the generic path. */
int game_move_fast4(game2048 *g, int move);

/* Packs a 4×4 board: cells (16,) row-major tile values (0 or powers of two). Returns 1 and sets *out, or
 * returns 0 (leaving *out alone) when some tile is ≥ 2^15. */
int game4_pack(const uint32_t *cells, uint64_t *out);

/* Unpacks a bitboard into cells (16,) row-major tile values; returns the largest tile value. */
uint32_t game4_unpack(uint64_t board, uint32_t *cells);

/* Slides a packed board (every tile < 2^15) in direction move ('W','A','S','D' upper case; anything else
 * aborts). Returns the new board, adds the merge score to *score. No spawn. */
uint64_t game4_slide(uint64_t board, char move, uint64_t *score);

/* 1 when some move would change the packed board (an empty cell or two equal neighbours), else 0. */
int game4_can_move(uint64_t board);

#endif
