/*
 * game2048/fast4.c: the N=4 fast path of game_move, bit-identical to the generic path of game.c.
 *
 * The board is one uint64_t of 16 nibbles, each log2 of a tile (layout in game_internal.h: row r is
 * the 16-bit word r, column 0 its low nibble). A row is therefore a 16-bit index into two 65536-entry
 * tables built once (pthread_once) from the reference kernel game_slide_line: the row after a left move,
 * the row after a right move, and the merge score (the same for both directions: a run of k equal tiles
 * merges floor(k/2) pairs either way; checked when the tables are built). Up and down moves transpose
 * the board (two delta swaps), apply the left/right tables to the rows (which were columns), and
 * transpose back. This is the classic bitboard technique of 2048 search programs (e.g. R. Xiao's
 * "nneonneo/2048-ai"), written here from scratch.
 *
 * Limits: a nibble holds exponents up to 15, so the path is taken only when every tile is < 2^15 (then a
 * merge gives at most 2^15). game_move_fast4 returns -2 otherwise and game_move falls back to the
 * generic path. Table rows that hold a 15 are never looked up.
 *
 * Spawning follows the protocol of game_internal.h on the packed board: the empty cells form a mask with
 * one bit per empty nibble, and the k-th set bit in row-major order is the k-th empty cell.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "game2048/game.h"
#include "game2048/game_internal.h"

#define FAST4_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

typedef struct {
    uint16_t left;    /* the row after sliding toward column 0 */
    uint16_t right;   /* the row after sliding toward column 3 */
    uint32_t score;   /* sum of merged tile values (≤ 2 · 2^15) */
} row_entry;

static row_entry row_table[65536];
static pthread_once_t row_table_once = PTHREAD_ONCE_INIT;

/* Bit 4i set for each nibble i of x that is zero. */
static inline uint64_t zero_nibbles(uint64_t x) {
    x |= x >> 1;
    x |= x >> 2;
    return ~x & 0x1111111111111111ull;
}

/* Number of set bits of a mask holding bits only at positions 4i (portable: no popcnt instruction is
 * assumed, and libgcc's generic popcount is slow): add nibble pairs into bytes, then sum the bytes with
 * a multiply (each byte ≤ 2, the total ≤ 16). */
static inline uint32_t count_nibble_flags(uint64_t m) {
    m = (m + (m >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (uint32_t)((m * 0x0101010101010101ull) >> 56);
}

static inline uint16_t reverse_row(uint16_t row) {
    return (uint16_t)((row >> 12) | ((row >> 4) & 0x00F0) | ((row << 4) & 0x0F00) | (row << 12));
}

/* Transpose: cell (r, c) ↔ (c, r). Step 1 swaps within each 2×2 block the cells (2R, 2C+1) and
 * (2R+1, 2C), which are 3 nibbles apart; step 2 swaps the off-diagonal 2×2 blocks, whose cells (r, c+2)
 * and (r+2, c) are 6 nibbles apart. Each step is a delta swap: t = (x ^ (x >> d)) & m; x ^= t ^ (t << d),
 * m marking the lower cell of each pair. */
static inline uint64_t transpose(uint64_t x) {
    uint64_t t = (x ^ (x >> 12)) & 0x0000F0F00000F0F0ull;
    x ^= t ^ (t << 12);
    t = (x ^ (x >> 24)) & 0x00000000FF00FF00ull;
    x ^= t ^ (t << 24);
    return x;
}

static uint16_t encode_row(const uint32_t *line) {
    uint16_t row = 0;
    for (int c = 0; c < 4; c++) {
        int e = line[c] ? __builtin_ctz(line[c]) : 0;
        if (e > 15) e = 15;   /* only from rows holding a 15, which are never looked up */
        row |= (uint16_t)(e << (4 * c));
    }
    return row;
}

static void build_row_table(void) {
    for (uint32_t row = 0; row < 65536; row++) {
        uint32_t line[4];
        for (int c = 0; c < 4; c++) {
            uint32_t e = (row >> (4 * c)) & 15;
            line[c] = e ? 1u << e : 0;
        }
        row_table[row].score = game_slide_line(line, 4, NULL);
        row_table[row].left = encode_row(line);
    }
    for (uint32_t row = 0; row < 65536; row++) {
        uint16_t rev = reverse_row((uint16_t)row);
        row_table[row].right = reverse_row(row_table[rev].left);
        if (row_table[rev].score != row_table[row].score)
            FAST4_ABORT("fast4: left/right score mismatch for row %04x", row);
    }
}

static inline void ensure_tables(void) {
    if (pthread_once(&row_table_once, build_row_table) != 0) FAST4_ABORT("fast4: pthread_once failed");
}

int game4_pack(const uint32_t *cells, uint64_t *out) {
    uint32_t any = 0;
    uint64_t b = 0;
    for (int i = 0; i < 16; i++) {
        uint32_t v = cells[i];
        any |= v;
        /* ctz(v | 2^16) & 15: log2 v for tiles 2..2^14, and 0 for an empty cell. */
        b |= (uint64_t)(__builtin_ctz(v | 0x10000u) & 15) << (4 * i);
    }
    if (any >= 0x8000u) return 0;
    *out = b;
    return 1;
}

uint32_t game4_unpack(uint64_t board, uint32_t *cells) {
    uint32_t max_e = 0;
    for (int i = 0; i < 16; i++) {
        uint32_t e = (uint32_t)(board >> (4 * i)) & 15;
        cells[i] = (1u << e) & ~1u;   /* e = 0 → 0 */
        if (e > max_e) max_e = e;
    }
    return (1u << max_e) & ~1u;
}

/* Applies the left (right = 0) or right (right = 1) row table to the four rows of b. */
static inline uint64_t slide_rows(uint64_t b, int right, uint64_t *score) {
    uint64_t out = 0;
    uint64_t s = 0;
    for (int r = 0; r < 4; r++) {
        const row_entry *e = &row_table[(b >> (16 * r)) & 0xFFFF];
        out |= (uint64_t)(right ? e->right : e->left) << (16 * r);
        s += e->score;
    }
    *score += s;
    return out;
}

uint64_t game4_slide(uint64_t board, char move, uint64_t *score) {
    ensure_tables();
    switch (move) {
    case 'A': return slide_rows(board, 0, score);
    case 'D': return slide_rows(board, 1, score);
    case 'W': return transpose(slide_rows(transpose(board), 0, score));
    case 'S': return transpose(slide_rows(transpose(board), 1, score));
    default: FAST4_ABORT("game4_slide: move %d is not one of W A S D", (int)move);
    }
}

int game4_can_move(uint64_t board) {
    if (zero_nibbles(board)) return 1;
    /* Equal horizontal neighbours: nibble i of b ^ (b >> 4) is zero iff cells i and i+1 are equal; only
     * columns 0..2 have a right neighbour in the same row. */
    if (zero_nibbles(board ^ (board >> 4)) & 0x0111011101110111ull) return 1;
    /* Equal vertical neighbours: cells i and i+4, rows 0..2. */
    if (zero_nibbles(board ^ (board >> 16)) & 0x0000111111111111ull) return 1;
    return 0;
}

int game_move_fast4(game2048 *g, int move) {
    if (!g) FAST4_ABORT("game_move_fast4: g is NULL");
    if (g->n != 4) return -2;
    char mv = game_parse_move(move);
    if (!mv || g->state != GAME_ONGOING) return -1;
    uint64_t b;
    if (!game4_pack(g->cells, &b)) return -2;
    uint64_t gained = 0;
    uint64_t nb = game4_slide(b, mv, &gained);
    if (nb == b) return 0;

    uint64_t empty = zero_nibbles(nb);
    if (!empty) FAST4_ABORT("game_move_fast4: no empty cell after a changing move");
    uint32_t k = game_rng_below(&g->rng, count_nibble_flags(empty));
    uint64_t value = game_rng_four(&g->rng, g->p_four) ? 2 : 1;   /* exponent of 4 or 2 */
    while (k--) empty &= empty - 1;
    nb |= value << __builtin_ctzll(empty);

    g->max_tile = game4_unpack(nb, g->cells);
    g->score += gained;
    g->moves++;
    if (g->max_tile >= g->target) g->state = GAME_SUCCESS;
    else if (!game4_can_move(nb)) g->state = GAME_FAILED;
    return 1;
}
