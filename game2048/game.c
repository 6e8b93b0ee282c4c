/*
 * game2048/game.c: the 2048 game of game.h, generic N×N path.
 *
 * Parts, in order:
 *   - RNG: splitmix64 (game_rng_next), a seed hash built from the splitmix64 finalizer (game_seed_mix),
 *     and the two draws a spawn makes (game_rng_below: unbiased cell index, game_rng_four: 2 or 4).
 *   - The line kernel (slide_line / game_slide_line): compacts a line toward index 0 and merges equal
 *     neighbours once each. Every move is this kernel applied to the N rows or columns, read in the
 *     direction of the move.
 *   - Spawning and the state rules shared by game_init, game_set_cells and the moves.
 *   - game_move: validates the move, takes the N=4 bitboard path of fast4.c when it applies (n == 4,
 *     every tile < 2^15), else the generic path (game_move_generic). Both follow the spawn protocol
 *     described in game_internal.h, so they give bit-identical games.
 *
 * Determinism: everything is integer arithmetic except game_rng_four's comparison, which compares an
 * exactly representable double (a 53-bit integer times 2^-53) with p_four, so the same
 * (N, target, p_four, seed, moves) gives the same game on any IEEE-754 machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game2048/game.h"
#include "game2048/game_internal.h"

#define GAME_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

#define GAME_MAX_TARGET (1u << 30)

/* ---------------------------------------------------------------- RNG */

/* splitmix64 increment (the golden-ratio constant 2^64/φ) and finalizer, from Steele, Lea & Flood,
 * "Fast Splittable Pseudorandom Number Generators", OOPSLA 2014, with the mixing constants of
 * S. Vigna's reference splitmix64.c (Stafford's "Mix13"). */
#define SPLITMIX_GAMMA 0x9E3779B97F4A7C15ull

static inline uint64_t splitmix_finalize(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t game_rng_next(game_rng *r) {
    r->state += SPLITMIX_GAMMA;
    return splitmix_finalize(r->state);
}

/* Each input passes through the finalizer (a bijection of 64-bit words with full avalanche) after being
 * added to the running hash: h1 = F(seed + γ), h2 = F(h1 + a + 2γ), h3 = F(h2 + b + 3γ). For a fixed
 * prefix the map from the next input to the hash is a bijection, so streams never collide for distinct
 * a (resp. b) under the same seed (resp. (seed, a)). */
uint64_t game_seed_mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t h = splitmix_finalize(seed + SPLITMIX_GAMMA);
    h = splitmix_finalize(h + a + 2 * SPLITMIX_GAMMA);
    return splitmix_finalize(h + b + 3 * SPLITMIX_GAMMA);
}

uint32_t game_rng_below(game_rng *r, uint32_t bound) {
    if (bound == 0) GAME_ABORT("game_rng_below: bound must be >= 1");
    uint64_t m = (uint64_t)(uint32_t)(game_rng_next(r) >> 32) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t threshold = (uint32_t)(-bound) % bound;   /* 2^32 mod bound */
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(game_rng_next(r) >> 32) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int game_rng_four(game_rng *r, double p_four) {
    double u = (double)(game_rng_next(r) >> 11) * 0x1.0p-53;
    return u < p_four;
}

/* ---------------------------------------------------------------- line kernel */

/* Slides line (n,) toward index 0, merging equal neighbours once each; returns the score (sum of merged
 * values) and sets *changed to 1 when the line changed (left alone otherwise). Tiles must be 0 or powers
 * of two ≤ 2^30 so that merges fit in 32 bits; not checked here (hot path). */
static inline uint64_t slide_line(uint32_t *line, int n, int *changed) {
    uint32_t out[GAME_MAX_SIZE];
    uint64_t score = 0;
    uint32_t pending = 0;   /* last tile placed, still free to merge */
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v = line[i];
        if (v == 0) continue;
        if (pending == v) {
            out[k++] = 2 * v;
            score += 2 * (uint64_t)v;
            pending = 0;
        } else {
            if (pending) out[k++] = pending;
            pending = v;
        }
    }
    if (pending) out[k++] = pending;
    while (k < n) out[k++] = 0;
    for (int i = 0; i < n; i++) {
        if (line[i] != out[i]) {
            *changed = 1;
            line[i] = out[i];
        }
    }
    return score;
}

static int is_tile_value(uint32_t v) {
    return v == 0 || (v >= 2 && v <= GAME_MAX_TARGET && (v & (v - 1)) == 0);
}

uint32_t game_slide_line(uint32_t *line, int n, int *changed) {
    if (!line || n < 1 || n > GAME_MAX_SIZE) GAME_ABORT("game_slide_line: need a line and n in 1..%d, got n=%d",
                                                      GAME_MAX_SIZE, n);
    for (int i = 0; i < n; i++)
        if (!is_tile_value(line[i])) GAME_ABORT("game_slide_line: line[%d]=%u is not 0 or a power of two in 2..2^30",
                                                i, line[i]);
    int ch = 0;
    uint64_t score = slide_line(line, n, &ch);
    if (changed) *changed = ch;
    return (uint32_t)score;
}

/* ---------------------------------------------------------------- board rules */

static int board_can_move(const uint32_t *cells, int n) {
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < n; c++) {
            uint32_t v = cells[r * n + c];
            if (v == 0) return 1;
            if (c + 1 < n && cells[r * n + c + 1] == v) return 1;
            if (r + 1 < n && cells[(r + 1) * n + c] == v) return 1;
        }
    }
    return 0;
}

static uint32_t board_max(const uint32_t *cells, int n) {
    uint32_t m = 0;
    for (int i = 0; i < n * n; i++)
        if (cells[i] > m) m = cells[i];
    return m;
}

/* Spawns one tile per the protocol of game_internal.h: the k-th empty cell in row-major order. Aborts
 * when the board is full (a changing move always leaves an empty cell). */
static void board_spawn(game2048 *g) {
    int n2 = g->n * g->n;
    uint32_t empty = 0;
    for (int i = 0; i < n2; i++) empty += g->cells[i] == 0;
    if (empty == 0) GAME_ABORT("board_spawn: no empty cell");
    uint32_t k = game_rng_below(&g->rng, empty);
    uint32_t value = game_rng_four(&g->rng, g->p_four) ? 4 : 2;
    for (int i = 0; i < n2; i++) {
        if (g->cells[i] == 0 && k-- == 0) {
            g->cells[i] = value;
            return;
        }
    }
    GAME_ABORT("board_spawn: empty cell %u not found", k);
}

static void update_state(game2048 *g) {
    g->max_tile = board_max(g->cells, g->n);
    if (g->max_tile >= g->target) g->state = GAME_SUCCESS;
    else if (!board_can_move(g->cells, g->n)) g->state = GAME_FAILED;
    else g->state = GAME_ONGOING;
}

int game_init(game2048 *g, int n, uint32_t target, double p_four, uint64_t seed) {
    if (!g) GAME_ABORT("game_init: g is NULL");
    if (n < GAME_MIN_SIZE || n > GAME_MAX_SIZE) return -1;
    if (target < 4 || target > GAME_MAX_TARGET || (target & (target - 1)) != 0) return -1;
    if (!(p_four >= 0.0 && p_four <= 1.0)) return -1;   /* also rejects NaN */
    game2048 t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.target = target;
    t.p_four = p_four;
    t.rng.state = seed;
    board_spawn(&t);
    board_spawn(&t);
    update_state(&t);
    *g = t;
    return 0;
}

int game_set_cells(game2048 *g, const uint32_t *cells, char *err, size_t errlen) {
    if (!g || !cells) GAME_ABORT("game_set_cells: g and cells must not be NULL");
    if (g->n < GAME_MIN_SIZE || g->n > GAME_MAX_SIZE) GAME_ABORT("game_set_cells: game not initialised (n=%d)", g->n);
    int n = g->n;
    for (int i = 0; i < n * n; i++) {
        if (!is_tile_value(cells[i])) {
            if (err && errlen)
                snprintf(err, errlen, "game_set_cells: cell (%d, %d) is %u; expected 0 or a power of two in 2..%u",
                         i / n, i % n, cells[i], GAME_MAX_TARGET);
            return -1;
        }
    }
    memcpy(g->cells, cells, (size_t)(n * n) * sizeof cells[0]);
    update_state(g);
    return 0;
}

char game_parse_move(int c) {
    switch (c) {
    case 'W': case 'w': return 'W';
    case 'A': case 'a': return 'A';
    case 'S': case 's': return 'S';
    case 'D': case 'd': return 'D';
    default: return 0;
    }
}

int game_move_generic(game2048 *g, int move) {
    if (!g) GAME_ABORT("game_move_generic: g is NULL");
    char mv = game_parse_move(move);
    if (!mv || g->state != GAME_ONGOING) return -1;
    int n = g->n;
    int changed = 0;
    uint64_t gained = 0;
    for (int l = 0; l < n; l++) {
        /* idx[i]: the cell that is i-th along line l, counted from the side the tiles move toward. */
        int idx[GAME_MAX_SIZE];
        uint32_t line[GAME_MAX_SIZE];
        for (int i = 0; i < n; i++) {
            switch (mv) {
            case 'A': idx[i] = l * n + i; break;
            case 'D': idx[i] = l * n + (n - 1 - i); break;
            case 'W': idx[i] = i * n + l; break;
            default:  idx[i] = (n - 1 - i) * n + l; break;   /* 'S' */
            }
            line[i] = g->cells[idx[i]];
        }
        int ch = 0;
        gained += slide_line(line, n, &ch);
        if (ch) {
            changed = 1;
            for (int i = 0; i < n; i++) g->cells[idx[i]] = line[i];
        }
    }
    if (!changed) return 0;
    g->score += gained;
    g->moves++;
    board_spawn(g);
    update_state(g);
    return 1;
}

int game_move(game2048 *g, int move) {
    if (!g) GAME_ABORT("game_move: g is NULL");
    if (g->n == 4) {
        int r = game_move_fast4(g, move);
        if (r != -2) return r;
    }
    return game_move_generic(g, move);
}

void game_fail(game2048 *g) {
    if (!g) GAME_ABORT("game_fail: g is NULL");
    g->state = GAME_FAILED;
}

int game_can_move(const game2048 *g) {
    if (!g) GAME_ABORT("game_can_move: g is NULL");
    return board_can_move(g->cells, g->n);
}

const char *game_state_name(game_state s) {
    switch (s) {
    case GAME_ONGOING: return "ongoing";
    case GAME_SUCCESS: return "success";
    case GAME_FAILED: return "failed";
    }
    GAME_ABORT("game_state_name: invalid state %d", (int)s);
}
