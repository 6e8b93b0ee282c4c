/*
 * tests/game2048/test_game.c: tests of the 2048 game (game2048/game.h) and of its N=4 fast path.
 *
 * Parts: the RNG and seed hash (known splitmix64 outputs, avalanche), the line kernel on hand-made
 * rows, whole-board moves in each direction on both paths, the state rules (no-op move, FAILED,
 * SUCCESS, invalid moves, game_fail), seeding (repeatable, seed-dependent, and a golden spawn sequence
 * computed independently by a Python transcription of the spec), spawn statistics (4s at rate p_four,
 * uniform cells), argument checks, and the fast N=4 path against the generic one: every row of the
 * tables, and thousands of whole games compared field by field after every move.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "game2048/game.h"
#include "game2048/game_internal.h"
#include "tests/testing.h"

/* Random move choices for the tests come from the module's own RNG: a uniform integer in [0, k). */
static int pick(game_rng *r, int k) { return (int)game_rng_below(r, (uint32_t)k); }

static void make_game(game2048 *g, int n, uint32_t target, const uint32_t *cells) {
    char err[200];
    CHECK_EQ_INT(game_init(g, n, target, 0.1, 99), 0);
    g->score = 0;
    g->moves = 0;
    CHECK_MSG(game_set_cells(g, cells, err, sizeof err) == 0, "%s", err);
}

/* After a changing move the board must equal `expected` except for exactly one cell that is empty in
 * `expected` and holds a 2 or a 4. */
static int matches_with_one_spawn(const game2048 *g, const uint32_t *expected) {
    int spawned = 0;
    for (int i = 0; i < g->n * g->n; i++) {
        if (g->cells[i] == expected[i]) continue;
        if (expected[i] != 0 || (g->cells[i] != 2 && g->cells[i] != 4)) return 0;
        spawned++;
    }
    return spawned == 1;
}

typedef int (*move_fn)(game2048 *, int);

/* Plays `move` on `cells` (n×n) with the given path and checks the slid board and score gain. */
static void check_board_move(move_fn fn, int n, const uint32_t *cells, int move, const uint32_t *expected,
                             uint64_t gain, int line) {
    game2048 g;
    make_game(&g, n, 1u << 30, cells);
    int r = fn(&g, move);
    CHECK_MSG(r == 1, "line %d: move %c returned %d", line, move, r);
    CHECK_MSG(matches_with_one_spawn(&g, expected), "line %d: move %c board mismatch", line, move);
    CHECK_MSG(g.score == gain, "line %d: score %llu, expected %llu", line, (unsigned long long)g.score,
              (unsigned long long)gain);
    CHECK_EQ_INT(g.moves, 1);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
}

/* Inverse of the splitmix64 finalizer (z ^= z >> 30; z *= C1; z ^= z >> 27; z *= C2; z ^= z >> 31), so
 * that a test can build an RNG state whose next output is a chosen word. */
static uint64_t unxorshift(uint64_t y, int k) {
    uint64_t x = y;
    for (int i = 0; i < 64 / k + 1; i++) x = y ^ (x >> k);
    return x;
}
static uint64_t inverse_odd(uint64_t c) {   /* c^-1 mod 2^64 by Newton's iteration */
    uint64_t inv = c;
    for (int i = 0; i < 6; i++) inv *= 2 - c * inv;
    return inv;
}
static game_rng rng_with_next_output(uint64_t out) {
    uint64_t z = unxorshift(out, 31);
    z = unxorshift(z * inverse_odd(0x94D049BB133111EBull), 27);
    z = unxorshift(z * inverse_odd(0xBF58476D1CE4E5B9ull), 30);
    game_rng r = {z - 0x9E3779B97F4A7C15ull};
    return r;
}

static void test_rng(void) {
    /* splitmix64 from state 0: the published first outputs of Vigna's reference splitmix64.c. */
    game_rng r = {0};
    CHECK(game_rng_next(&r) == 0xE220A8397B1DCDAFull);
    CHECK(game_rng_next(&r) == 0x6E789E6AA1B965F4ull);
    CHECK(game_rng_next(&r) == 0x06C45D188009454Full);
    CHECK(game_rng_next(&r) == 0xF88BB8A8724C81ECull);

    /* Golden seed hashes (Python transcription of the chained-finalizer definition). */
    CHECK(game_seed_mix(1, 2, 3) == 0x72CF2F3158160F6Full);
    CHECK(game_seed_mix(0, 0, 0) == 0x74963FA799894AB9ull);
    CHECK(game_seed_mix(42, 7, 1000) == 0xA1864A1F7BA0B76Aull);
    CHECK(game_seed_mix(1, 2, 3) != game_seed_mix(1, 3, 2));
    CHECK(game_seed_mix(1, 2, 3) != game_seed_mix(2, 1, 3));

    /* Avalanche: flipping one input bit flips about half of the 64 output bits. */
    game_rng in = {12345};
    double flips = 0;
    int trials = 0, worst_zero = 0;
    for (int t = 0; t < 300; t++) {
        uint64_t s = game_rng_next(&in), a = game_rng_next(&in), b = game_rng_next(&in);
        uint64_t h = game_seed_mix(s, a, b);
        int which = t % 3, bit = (int)(game_rng_next(&in) & 63);
        uint64_t f = 1ull << bit;
        uint64_t h2 = which == 0 ? game_seed_mix(s ^ f, a, b) : which == 1 ? game_seed_mix(s, a ^ f, b)
                                                                           : game_seed_mix(s, a, b ^ f);
        int d = __builtin_popcountll(h ^ h2);
        if (d == 0) worst_zero = 1;
        flips += d;
        trials++;
    }
    CHECK(!worst_zero);
    CHECK_NEAR(flips / trials, 32.0, 2.0);

    /* game_rng_below: in range, every value reached, bound 1 gives 0. */
    game_rng q = {7};
    int seen[7] = {0};
    for (int i = 0; i < 700; i++) {
        uint32_t v = game_rng_below(&q, 7);
        CHECK(v < 7);
        if (v < 7) seen[v]++;
    }
    for (int i = 0; i < 7; i++) CHECK(seen[i] > 50);
    CHECK_EQ_INT(game_rng_below(&q, 1), 0);
    /* A bound near 2^32 exercises rejection: the result must stay below it. */
    for (int i = 0; i < 1000; i++) CHECK(game_rng_below(&q, 0xFFFFFFFFu) < 0xFFFFFFFFu);

    /* Crafted draws. Bound 3: 2^32 mod 3 = 1, so a draw whose top 32 bits are 0 (low product word 0 < 1)
     * must be rejected and the next draw used. */
    for (uint64_t w = 0; w < 4; w++) {
        game_rng c = rng_with_next_output(w * 0x12345);   /* top 32 bits 0 */
        game_rng peek = c;
        CHECK(game_rng_next(&peek) == w * 0x12345);
        uint64_t second = game_rng_next(&peek);
        uint32_t v = game_rng_below(&c, 3);
        CHECK_EQ_INT(v, (uint32_t)(((second >> 32) * 3) >> 32));
        CHECK(c.state == peek.state);   /* two draws consumed */
    }
    {   /* A draw with top word 1 is accepted for bound 3 (low word 3 ≥ 1): one draw. */
        game_rng c = rng_with_next_output(1ull << 32), peek = c;
        game_rng_next(&peek);
        CHECK_EQ_INT(game_rng_below(&c, 3), 0);
        CHECK(c.state == peek.state);
    }
    /* p_four comparison at the edges: u = 0 is a 4 for any p_four > 0 but not for p_four = 0; the largest
     * u = 1 - 2^-53 is a 4 only when p_four = 1. */
    game_rng c0 = rng_with_next_output(0x7FF), c1 = c0;   /* (x >> 11) == 0 */
    CHECK_EQ_INT(game_rng_four(&c0, 0.0), 0);
    CHECK_EQ_INT(game_rng_four(&c1, 0x1.0p-53), 1);
    game_rng m0 = rng_with_next_output(~0ull), m1 = m0;
    CHECK_EQ_INT(game_rng_four(&m0, 1.0), 1);
    CHECK_EQ_INT(game_rng_four(&m1, 1.0 - 0x1.0p-53), 0);
}

static void test_slide_line(void) {
    struct { uint32_t in[8], out[8]; int n; uint32_t score; int changed; } cases[] = {
        {{2, 2, 2, 2}, {4, 4, 0, 0}, 4, 8, 1},
        {{4, 4, 8, 0}, {8, 8, 0, 0}, 4, 8, 1},
        {{2, 0, 2, 4}, {4, 4, 0, 0}, 4, 4, 1},
        {{0, 0, 0, 2}, {2, 0, 0, 0}, 4, 0, 1},
        {{2, 4, 8, 16}, {2, 4, 8, 16}, 4, 0, 0},
        {{2, 4, 0, 0}, {2, 4, 0, 0}, 4, 0, 0},
        {{0, 0, 0, 0}, {0, 0, 0, 0}, 4, 0, 0},
        {{2, 2, 4, 0}, {4, 4, 0, 0}, 4, 4, 1},
        {{8, 8, 8, 0}, {16, 8, 0, 0}, 4, 16, 1},
        {{2, 2}, {4, 0}, 2, 4, 1},
        {{2, 2, 2, 2, 2, 2, 2, 2}, {4, 4, 4, 4, 0, 0, 0, 0}, 8, 16, 1},
        {{0, 4, 0, 4, 0, 8, 8, 2}, {8, 16, 2, 0, 0, 0, 0, 0}, 8, 24, 1},
        {{1u << 29, 1u << 29, 4, 0, 0}, {1u << 30, 4, 0, 0, 0}, 5, 1u << 30, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t line[8];
        memcpy(line, cases[c].in, sizeof line);
        int changed = -1;
        uint32_t s = game_slide_line(line, cases[c].n, &changed);
        CHECK_MSG(s == cases[c].score, "case %zu: score %u", c, s);
        CHECK_MSG(changed == cases[c].changed, "case %zu: changed %d", c, changed);
        CHECK_MSG(memcmp(line, cases[c].out, (size_t)cases[c].n * sizeof line[0]) == 0, "case %zu: line", c);
    }
}

static void test_moves_one_path(move_fn fn) {
    /* Rows: A cases and their mirrored D cases (n = 4). */
    const uint32_t rowsA[16] = {2, 2, 2, 2,   4, 4, 8, 0,   2, 0, 2, 4,   0, 0, 0, 2};
    const uint32_t rowsA_out[16] = {4, 4, 0, 0,   8, 8, 0, 0,   4, 4, 0, 0,   2, 0, 0, 0};
    check_board_move(fn, 4, rowsA, 'A', rowsA_out, 8 + 8 + 4, __LINE__);
    const uint32_t rowsD[16] = {2, 2, 2, 2,   0, 8, 4, 4,   4, 2, 0, 2,   2, 0, 0, 0};
    const uint32_t rowsD_out[16] = {0, 0, 4, 4,   0, 0, 8, 8,   0, 0, 4, 4,   0, 0, 0, 2};
    check_board_move(fn, 4, rowsD, 'D', rowsD_out, 8 + 8 + 4, __LINE__);
    /* The same rows pushed the other way. */
    const uint32_t rowsA_D[16] = {0, 0, 4, 4,   0, 0, 8, 8,   0, 0, 4, 4,   0, 0, 0, 2};
    check_board_move(fn, 4, rowsA, 'D', rowsA_D, 8 + 8 + 4, __LINE__);

    /* Columns: W moves toward row 0, S toward row 3 (columns hold [2,2,2,2], [4,4,8,0], [2,0,2,4], [0,0,0,2]). */
    const uint32_t cols[16] = {2, 4, 2, 0,
                               2, 4, 0, 0,
                               2, 8, 2, 0,
                               2, 0, 4, 2};
    const uint32_t colsW[16] = {4, 8, 4, 2,
                                4, 8, 4, 0,
                                0, 0, 0, 0,
                                0, 0, 0, 0};
    check_board_move(fn, 4, cols, 'W', colsW, 8 + 8 + 4, __LINE__);
    const uint32_t colsS[16] = {0, 0, 0, 0,
                                0, 0, 0, 0,
                                4, 8, 4, 0,
                                4, 8, 4, 2};
    check_board_move(fn, 4, cols, 'S', colsS, 8 + 8 + 4, __LINE__);

    /* Lower-case moves behave like upper case. */
    check_board_move(fn, 4, rowsA, 'a', rowsA_out, 20, __LINE__);
    check_board_move(fn, 4, rowsD, 'd', rowsD_out, 20, __LINE__);
    check_board_move(fn, 4, cols, 'w', colsW, 20, __LINE__);
    check_board_move(fn, 4, cols, 's', colsS, 20, __LINE__);

    /* A move that changes nothing: returns 0, nothing spawns, RNG and counters untouched. */
    const uint32_t stuck_left[16] = {2, 4, 0, 0,   8, 0, 0, 0,   0, 0, 0, 0,   16, 2, 4, 8};
    game2048 g, before;
    make_game(&g, 4, 2048, stuck_left);
    before = g;
    CHECK_EQ_INT(fn(&g, 'A'), 0);
    CHECK(memcmp(&g, &before, sizeof g) == 0);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
    CHECK_EQ_INT(game_can_move(&g), 1);

    /* Invalid characters: -1, nothing changes. */
    const int bad[] = {0, 'x', 'Q', ' ', 'W' + 256, -1, '\n'};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(fn(&g, bad[i]), -1);
        CHECK(memcmp(&g, &before, sizeof g) == 0);
    }
}

static void test_moves_other_sizes(void) {
    /* 3×3 and 5×5 boards through game_move (generic path). */
    const uint32_t b3[9] = {2, 2, 2,
                            0, 4, 4,
                            8, 0, 8};
    const uint32_t b3D[9] = {0, 2, 4,
                             0, 0, 8,
                             0, 0, 16};
    check_board_move(game_move, 3, b3, 'D', b3D, 4 + 8 + 16, __LINE__);
    const uint32_t b3S[9] = {0, 0, 2,
                             2, 2, 4,
                             8, 4, 8};
    check_board_move(game_move, 3, b3, 'S', b3S, 0, __LINE__);
    const uint32_t b5[25] = {2, 2, 4, 4, 8,
                             0, 0, 0, 0, 0,
                             0, 0, 0, 0, 0,
                             0, 0, 0, 0, 0,
                             2, 0, 0, 0, 2};
    const uint32_t b5A[25] = {4, 8, 8, 0, 0,
                              0, 0, 0, 0, 0,
                              0, 0, 0, 0, 0,
                              0, 0, 0, 0, 0,
                              4, 0, 0, 0, 0};
    check_board_move(game_move, 5, b5, 'A', b5A, 4 + 8 + 4, __LINE__);
}

static void test_states(void) {
    char err[200];
    game2048 g;
    /* A full board with no move: FAILED at once, every move then returns -1. */
    const uint32_t dead[16] = {2, 4, 2, 4,   4, 2, 4, 2,   2, 4, 2, 4,   4, 2, 4, 2};
    CHECK_EQ_INT(game_init(&g, 4, 2048, 0.1, 5), 0);
    CHECK_EQ_INT(game_set_cells(&g, dead, err, sizeof err), 0);
    CHECK_EQ_INT(g.state, GAME_FAILED);
    CHECK_EQ_INT(game_can_move(&g), 0);
    CHECK_EQ_INT(game_move(&g, 'A'), -1);
    CHECK_EQ_INT(game_move_generic(&g, 'W'), -1);
    CHECK_EQ_INT(game_move_fast4(&g, 'S'), -1);
    /* A full board with one merge left can still move. */
    const uint32_t alive[16] = {2, 4, 2, 4,   4, 2, 4, 2,   2, 4, 2, 4,   4, 2, 8, 8};
    CHECK_EQ_INT(game_set_cells(&g, alive, err, sizeof err), 0);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
    CHECK_EQ_INT(game_can_move(&g), 1);
    CHECK_EQ_INT(game_move(&g, 'W'), 0);
    CHECK_EQ_INT(game_move(&g, 'D'), 1);

    /* A move that fills the last cell with no merge left: FAILED. 2×2 [2 4; 8 0], p_four = 1, D:
     * [2 4; 0 8] + a 4 on the only empty cell → [2 4; 4 8]. */
    const uint32_t last[4] = {2, 4, 8, 0};
    CHECK_EQ_INT(game_init(&g, 2, 1024, 1.0, 3), 0);
    CHECK_EQ_INT(game_set_cells(&g, last, err, sizeof err), 0);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
    CHECK_EQ_INT(game_move(&g, 'D'), 1);
    const uint32_t last_out[4] = {2, 4, 4, 8};
    CHECK(memcmp(g.cells, last_out, sizeof last_out) == 0);
    CHECK_EQ_INT(g.state, GAME_FAILED);
    CHECK_EQ_INT(game_move(&g, 'A'), -1);
    /* Same with p_four = 0: the 2 spawned makes a merge possible, the game goes on. */
    CHECK_EQ_INT(game_init(&g, 2, 1024, 0.0, 3), 0);
    CHECK_EQ_INT(game_set_cells(&g, last, err, sizeof err), 0);
    CHECK_EQ_INT(game_move(&g, 'D'), 1);
    CHECK_EQ_INT(g.cells[2], 2);
    CHECK_EQ_INT(g.state, GAME_ONGOING);

    /* Reaching the target: 2×2 and 3×3 with target 8. */
    const uint32_t near2[4] = {4, 4, 0, 0};
    CHECK_EQ_INT(game_init(&g, 2, 8, 0.1, 11), 0);
    CHECK_EQ_INT(game_set_cells(&g, near2, err, sizeof err), 0);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
    CHECK_EQ_INT(game_move(&g, 'A'), 1);
    CHECK_EQ_INT(g.cells[0], 8);
    CHECK_EQ_INT(g.max_tile, 8);
    CHECK_EQ_INT(g.score, 8);
    CHECK_EQ_INT(g.state, GAME_SUCCESS);
    CHECK_EQ_INT(game_move(&g, 'D'), -1);
    const uint32_t near3[9] = {0, 0, 0,   0, 4, 0,   0, 4, 2};
    CHECK_EQ_INT(game_init(&g, 3, 8, 0.1, 12), 0);
    CHECK_EQ_INT(game_set_cells(&g, near3, err, sizeof err), 0);
    CHECK_EQ_INT(game_move(&g, 'W'), 1);
    CHECK_EQ_INT(g.cells[1], 8);
    CHECK_EQ_INT(g.state, GAME_SUCCESS);
    /* On 4×4 through both paths. */
    const uint32_t near4[16] = {4, 4, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 2};
    move_fn fns[2] = {game_move_generic, game_move_fast4};
    for (int f = 0; f < 2; f++) {
        CHECK_EQ_INT(game_init(&g, 4, 8, 0.1, 13), 0);
        CHECK_EQ_INT(game_set_cells(&g, near4, err, sizeof err), 0);
        CHECK_EQ_INT(fns[f](&g, 'A'), 1);
        CHECK_EQ_INT(g.state, GAME_SUCCESS);
        CHECK_EQ_INT(fns[f](&g, 'D'), -1);
    }
    /* A board that already holds the target is a success. */
    const uint32_t won[4] = {8, 0, 0, 2};
    CHECK_EQ_INT(game_init(&g, 2, 8, 0.1, 1), 0);
    CHECK_EQ_INT(game_set_cells(&g, won, err, sizeof err), 0);
    CHECK_EQ_INT(g.state, GAME_SUCCESS);

    /* game_fail ends an ongoing game. */
    CHECK_EQ_INT(game_init(&g, 4, 2048, 0.1, 14), 0);
    CHECK_EQ_INT(g.state, GAME_ONGOING);
    game_fail(&g);
    CHECK_EQ_INT(g.state, GAME_FAILED);
    uint32_t cells_before[64];
    memcpy(cells_before, g.cells, sizeof cells_before);
    CHECK_EQ_INT(game_move(&g, 'A'), -1);
    CHECK_EQ_INT(game_move(&g, 'D'), -1);
    CHECK(memcmp(cells_before, g.cells, sizeof cells_before) == 0);

    /* game_set_cells rejects values that are not tiles, naming the cell, and leaves *g alone. */
    game2048 before;
    CHECK_EQ_INT(game_init(&g, 2, 2048, 0.1, 15), 0);
    before = g;
    const uint32_t bad1[4] = {2, 3, 0, 0}, bad2[4] = {0, 0, 1, 0}, bad3[4] = {0, 0, 0, 1u << 31};
    err[0] = 0;
    CHECK_EQ_INT(game_set_cells(&g, bad1, err, sizeof err), -1);
    CHECK(strstr(err, "(0, 1)") != NULL);
    CHECK_EQ_INT(game_set_cells(&g, bad2, err, sizeof err), -1);
    CHECK(strstr(err, "(1, 0)") != NULL);
    CHECK_EQ_INT(game_set_cells(&g, bad3, err, sizeof err), -1);
    CHECK(strstr(err, "(1, 1)") != NULL);
    CHECK_EQ_INT(game_set_cells(&g, bad3, NULL, 0), -1);
    CHECK(memcmp(&g, &before, sizeof g) == 0);

    CHECK(strcmp(game_state_name(GAME_ONGOING), "ongoing") == 0);
    CHECK(strcmp(game_state_name(GAME_SUCCESS), "success") == 0);
    CHECK(strcmp(game_state_name(GAME_FAILED), "failed") == 0);
}

static void test_parse_move(void) {
    CHECK_EQ_INT(game_parse_move('W'), 'W');
    CHECK_EQ_INT(game_parse_move('w'), 'W');
    CHECK_EQ_INT(game_parse_move('A'), 'A');
    CHECK_EQ_INT(game_parse_move('a'), 'A');
    CHECK_EQ_INT(game_parse_move('S'), 'S');
    CHECK_EQ_INT(game_parse_move('s'), 'S');
    CHECK_EQ_INT(game_parse_move('D'), 'D');
    CHECK_EQ_INT(game_parse_move('d'), 'D');
    CHECK_EQ_INT(game_parse_move('x'), 0);
    CHECK_EQ_INT(game_parse_move(0), 0);
    CHECK_EQ_INT(game_parse_move(-1), 0);
    CHECK_EQ_INT(game_parse_move('W' + 256), 0);
}

/* The cell that spawned during a changing move: slides a copy of the board with game_slide_line and
 * returns the one cell that differs. -1 when there is not exactly one. */
static int spawned_cell(const game2048 *before, int move, const game2048 *after) {
    int n = before->n;
    uint32_t slid[64];
    memcpy(slid, before->cells, sizeof slid);
    for (int l = 0; l < n; l++) {
        int idx[8];
        uint32_t line[8];
        for (int i = 0; i < n; i++) {
            idx[i] = move == 'A' ? l * n + i : move == 'D' ? l * n + n - 1 - i
                   : move == 'W' ? i * n + l : (n - 1 - i) * n + l;
            line[i] = slid[idx[i]];
        }
        game_slide_line(line, n, NULL);
        for (int i = 0; i < n; i++) slid[idx[i]] = line[i];
    }
    int found = -1;
    for (int i = 0; i < n * n; i++) {
        if (slid[i] != after->cells[i]) {
            if (found >= 0 || slid[i] != 0) return -1;
            found = i;
        }
    }
    return found;
}

static void test_seeding(void) {
    /* Golden: game_init(4, 2048, 0.1, seed 2048) then the moves "ASDW" × 10. The first 12 spawns as
     * (cell, value), the final board, score and RNG state were computed by an independent Python
     * transcription of the spec (splitmix64, Lemire bounded draw, 53-bit p_four comparison). */
    const int gold_cell[12] = {4, 1, 3, 1, 2, 11, 3, 14, 4, 5, 8, 6};
    const uint32_t gold_val[12] = {2, 2, 2, 2, 2, 4, 2, 2, 2, 4, 2, 2};
    const uint32_t gold_board[16] = {2, 4, 16, 4,   0, 2, 32, 4,   0, 4, 16, 4,   2, 0, 0, 0};
    for (int path = 0; path < 2; path++) {
        game2048 g;
        CHECK_EQ_INT(game_init(&g, 4, 2048, 0.1, 2048), 0);
        /* The two initial spawns. */
        for (int i = 0; i < 16; i++) {
            uint32_t want = i == gold_cell[0] ? gold_val[0] : i == gold_cell[1] ? gold_val[1] : 0;
            CHECK_MSG(g.cells[i] == want, "init cell %d = %u, want %u", i, g.cells[i], want);
        }
        int nspawn = 2;
        const char *seq = "ASDW";
        for (int m = 0; m < 40; m++) {
            game2048 before = g;
            int r = path ? game_move_fast4(&g, seq[m % 4]) : game_move_generic(&g, seq[m % 4]);
            CHECK(r == 0 || r == 1);
            if (r == 1 && nspawn < 12) {
                int c = spawned_cell(&before, seq[m % 4], &g);
                CHECK_MSG(c == gold_cell[nspawn], "path %d spawn %d: cell %d want %d", path, nspawn, c,
                          gold_cell[nspawn]);
                if (c >= 0) CHECK_EQ_INT(g.cells[c], gold_val[nspawn]);
                nspawn++;
            }
        }
        CHECK(memcmp(g.cells, gold_board, sizeof gold_board) == 0);
        CHECK_EQ_INT(g.score, 232);
        CHECK_EQ_INT(g.moves, 40);
        CHECK_EQ_INT(g.state, GAME_ONGOING);
        CHECK(g.rng.state == 0xEA33F0DDC470BEE4ull);
    }
    /* Other golden initial boards: 3×3 p_four 0.5 seed 7, 8×8 seed 123456789. */
    game2048 g;
    CHECK_EQ_INT(game_init(&g, 3, 2048, 0.5, 7), 0);
    const uint32_t gold3[9] = {0, 0, 0, 4, 0, 0, 0, 0, 2};
    CHECK(memcmp(g.cells, gold3, sizeof gold3) == 0);
    CHECK_EQ_INT(game_init(&g, 8, 2048, 0.1, 123456789), 0);
    for (int i = 0; i < 64; i++) CHECK_EQ_INT(g.cells[i], (i == 8 || i == 13) ? 2 : 0);

    /* Same seed → the same game; a different seed → a different one. */
    for (int n = 2; n <= 8; n++) {
        game2048 a, b, c;
        CHECK_EQ_INT(game_init(&a, n, 1u << 20, 0.1, 1000 + n), 0);
        CHECK_EQ_INT(game_init(&b, n, 1u << 20, 0.1, 1000 + n), 0);
        CHECK_EQ_INT(game_init(&c, n, 1u << 20, 0.1, 2000 + n), 0);
        int differ = memcmp(a.cells, c.cells, sizeof a.cells) != 0;
        game_rng mr = {(uint64_t)n};
        for (int m = 0; m < 60; m++) {
            int mv = "WASD"[pick(&mr, 4)];
            game_move(&a, mv);
            game_move(&b, mv);
            game_move(&c, mv);
            CHECK(memcmp(&a, &b, sizeof a) == 0);
            differ |= memcmp(a.cells, c.cells, sizeof a.cells) != 0;
        }
        CHECK_MSG(differ, "n=%d: seeds 1000+n and 2000+n gave the same game", n);
    }
}

static void test_spawn_statistics(void) {
    /* 4s at rate p_four: 2 spawns per game_init, 100000 inits per rate. Binomial sd at p = 0.1 is
     * sqrt(0.09 / 2e5) ≈ 0.00067; the tolerance 0.004 is 6 sd. */
    const double rates[3] = {0.1, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        long fours = 0, spawns = 0;
        for (int i = 0; i < 100000; i++) {
            game2048 g;
            game_init(&g, 4, 2048, rates[k], game_seed_mix(77, (uint64_t)k, (uint64_t)i));
            for (int c = 0; c < 16; c++) {
                if (g.cells[c]) spawns++;
                if (g.cells[c] == 4) fours++;
            }
        }
        CHECK_EQ_INT(spawns, 200000);
        CHECK_NEAR((double)fours / (double)spawns, rates[k], 0.004);
    }
    /* p_four 0 and 1 are exact. */
    for (int i = 0; i < 2000; i++) {
        game2048 g;
        game_init(&g, 3, 2048, 0.0, (uint64_t)i);
        for (int c = 0; c < 9; c++) CHECK(g.cells[c] == 0 || g.cells[c] == 2);
        game_init(&g, 3, 2048, 1.0, (uint64_t)i);
        for (int c = 0; c < 9; c++) CHECK(g.cells[c] == 0 || g.cells[c] == 4);
    }
    /* Cells uniform: over 80000 5×5 inits each of the 25 cells is occupied with probability 2/25, so
     * 6400 expected per cell (sd ≈ 77); chi-square with 24 degrees of freedom must stay below 60
     * (p ≈ 6e-5 under uniformity). */
    long count[25] = {0};
    for (int i = 0; i < 80000; i++) {
        game2048 g;
        game_init(&g, 5, 2048, 0.1, game_seed_mix(5, 5, (uint64_t)i));
        for (int c = 0; c < 25; c++) count[c] += g.cells[c] != 0;
    }
    double chi2 = 0;
    for (int c = 0; c < 25; c++) chi2 += (count[c] - 6400.0) * (count[c] - 6400.0) / 6400.0;
    CHECK_MSG(chi2 < 60.0, "chi2 = %g", chi2);
}

static void test_args(void) {
    game2048 g, sentinel;
    for (int n = GAME_MIN_SIZE; n <= GAME_MAX_SIZE; n++) {
        CHECK_EQ_INT(game_init(&g, n, 2048, 0.1, (uint64_t)n), 0);
        CHECK_EQ_INT(g.n, n);
        CHECK_EQ_INT(g.target, 2048);
        CHECK_EQ_INT(g.score, 0);
        CHECK_EQ_INT(g.moves, 0);
        CHECK_EQ_INT(g.state, GAME_ONGOING);
        int tiles = 0;
        uint32_t mx = 0;
        for (int i = 0; i < n * n; i++) {
            if (g.cells[i]) {
                tiles++;
                CHECK(g.cells[i] == 2 || g.cells[i] == 4);
                if (g.cells[i] > mx) mx = g.cells[i];
            }
        }
        for (int i = n * n; i < GAME_MAX_SIZE * GAME_MAX_SIZE; i++) CHECK_EQ_INT(g.cells[i], 0);
        CHECK_EQ_INT(tiles, 2);
        CHECK_EQ_INT(g.max_tile, mx);
        /* Every size plays to the end with valid states. */
        game_rng mr = {(uint64_t)n * 31};
        int guard = 0;
        while (g.state == GAME_ONGOING && guard++ < 100000) {
            int r = game_move(&g, "WASD"[pick(&mr, 4)]);
            CHECK(r == 0 || r == 1);
        }
        CHECK(g.state == GAME_FAILED || g.state == GAME_SUCCESS);
        if (g.state == GAME_FAILED) CHECK_EQ_INT(game_can_move(&g), 0);
    }
    /* Target 4 with p_four 1: the first spawned 4 already wins. */
    CHECK_EQ_INT(game_init(&g, 2, 4, 1.0, 1), 0);
    CHECK_EQ_INT(g.state, GAME_SUCCESS);
    CHECK_EQ_INT(game_init(&g, 4, 1u << 30, 0.1, 1), 0);

    memset(&sentinel, 0xA5, sizeof sentinel);
    struct { int n; uint32_t target; double p; } bad[] = {
        {1, 2048, 0.1}, {9, 2048, 0.1}, {0, 2048, 0.1}, {-4, 2048, 0.1},
        {4, 0, 0.1}, {4, 2, 0.1}, {4, 3, 0.1}, {4, 6, 0.1}, {4, 2047, 0.1}, {4, 1u << 31, 0.1},
        {4, 2048, -0.01}, {4, 2048, 1.01}, {4, 2048, 0.0 / 0.0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = sentinel;
        CHECK_MSG(game_init(&g, bad[i].n, bad[i].target, bad[i].p, 1) == -1, "case %zu accepted", i);
        CHECK_MSG(memcmp(&g, &sentinel, sizeof g) == 0, "case %zu touched *g", i);
    }
}

/* Every row of the fast tables against the reference kernel: all 15^4 rows of exponents 0..14, in
 * row 0..3 of a board, both horizontal directions, and as columns for the vertical ones. */
static void test_fast_rows(void) {
    long mismatches = 0;
    for (uint32_t row = 0; row < 65536; row++) {
        uint32_t e[4];
        int ok = 1;
        for (int c = 0; c < 4; c++) {
            e[c] = (row >> (4 * c)) & 15;
            if (e[c] == 15) ok = 0;
        }
        if (!ok) continue;
        for (int dir = 0; dir < 4; dir++) {
            char mv = "ADWS"[dir];
            int lane = (int)(row % 4);   /* which row / column of the board holds the line */
            uint32_t cells[16] = {0};
            for (int i = 0; i < 4; i++) {
                /* i-th cell of the line counted from the side the tiles move toward. */
                int idx = mv == 'A' ? lane * 4 + i : mv == 'D' ? lane * 4 + 3 - i
                        : mv == 'W' ? i * 4 + lane : (3 - i) * 4 + lane;
                cells[idx] = e[i] ? 1u << e[i] : 0;
            }
            uint32_t line[4];
            for (int i = 0; i < 4; i++) line[i] = e[i] ? 1u << e[i] : 0;
            uint32_t want_score = game_slide_line(line, 4, NULL);
            uint64_t b;
            if (!game4_pack(cells, &b)) { mismatches++; continue; }
            uint64_t score = 0;
            uint64_t nb = game4_slide(b, mv, &score);
            uint32_t out[16];
            game4_unpack(nb, out);
            int bad = score != want_score;
            for (int i = 0; i < 4; i++) {
                int idx = mv == 'A' ? lane * 4 + i : mv == 'D' ? lane * 4 + 3 - i
                        : mv == 'W' ? i * 4 + lane : (3 - i) * 4 + lane;
                if (out[idx] != line[i]) bad = 1;
                out[idx] = 0;
            }
            for (int i = 0; i < 16; i++) if (out[i]) bad = 1;   /* the other lanes stay empty */
            mismatches += bad;
        }
    }
    CHECK_EQ_INT(mismatches, 0);

    /* Pack/unpack round trip and the 2^15 limit. */
    uint32_t cells[16], back[16];
    for (int i = 0; i < 16; i++) cells[i] = i == 0 ? 0 : 1u << (1 + (i - 1) % 14);   /* 2 .. 2^14 */
    uint64_t b = 0;
    CHECK_EQ_INT(game4_pack(cells, &b), 1);
    CHECK_EQ_INT(game4_unpack(b, back), 1u << 14);
    CHECK(memcmp(cells, back, sizeof cells) == 0);
    cells[5] = 1u << 15;
    uint64_t untouched = 12345;
    CHECK_EQ_INT(game4_pack(cells, &untouched), 0);
    CHECK(untouched == 12345);
}

static int same_game(const game2048 *a, const game2048 *b) {
    return memcmp(a->cells, b->cells, sizeof a->cells) == 0 && a->score == b->score && a->moves == b->moves &&
           a->max_tile == b->max_tile && a->state == b->state && a->rng.state == b->rng.state;
}

/* Corner heuristic: the first of D, S, A, W (per `order`) that changes the board. */
static int corner_move(const game2048 *g, const char *order) {
    for (int i = 0; i < 4; i++) {
        game2048 t = *g;
        if (game_move_generic(&t, order[i]) == 1) return order[i];
    }
    return order[0];
}

static void test_fast_vs_generic(void) {
    long games = 0, moves = 0, successes = 0, failures = 0, mismatches = 0;
    for (int i = 0; i < 3000 && mismatches < 5; i++) {
        /* Varied p_four and targets so that both SUCCESS and FAILED endings occur. */
        double p = (i % 5) * 0.25;
        uint32_t target = i % 3 == 0 ? 64 : i % 3 == 1 ? 256 : 2048;
        uint64_t seed = game_seed_mix(2024, (uint64_t)i, 0);
        game2048 a, b;
        CHECK_EQ_INT(game_init(&a, 4, target, p, seed), 0);
        b = a;
        game_rng mr = {game_seed_mix(2024, (uint64_t)i, 1)};
        int heuristic = i % 10 == 0;
        while (a.state == GAME_ONGOING) {
            int mv = heuristic ? corner_move(&a, "DSAW") : "WASDwasd"[pick(&mr, 8)];
            int ra = game_move_generic(&a, mv);
            int rb = game_move_fast4(&b, mv);
            moves++;
            if (ra != rb || !same_game(&a, &b) || game_can_move(&a) != game_can_move(&b)) {
                fprintf(stderr, "game %d move %d (%c): generic %d fast %d\n", i, a.moves, mv, ra, rb);
                mismatches++;
                break;
            }
        }
        games++;
        successes += a.state == GAME_SUCCESS;
        failures += a.state == GAME_FAILED;
    }
    printf("fast vs generic: %ld games, %ld moves, %ld successes, %ld failures\n", games, moves, successes,
           failures);
    CHECK_EQ_INT(mismatches, 0);
    CHECK(games == 3000);
    CHECK(successes > 100 && failures > 100);
    CHECK(moves > 100000);

    /* Heuristic games with a high target reach tiles of 512+; and boards with tiles ≥ 2^15 make the
     * fast path decline (-2) and game_move fall back to the generic path with the same result. */
    long big = 0;
    for (int i = 0; i < 30; i++) {
        game2048 a, b;
        CHECK_EQ_INT(game_init(&a, 4, 1u << 20, 0.1, game_seed_mix(99, (uint64_t)i, 0)), 0);
        b = a;
        while (a.state == GAME_ONGOING) {
            int mv = corner_move(&a, "SDAW");
            int ra = game_move_generic(&a, mv);
            int rb = game_move(&b, mv);
            if (ra != rb || !same_game(&a, &b)) { mismatches++; break; }
        }
        big += a.max_tile >= 512;
    }
    printf("heuristic games reaching 512: %ld of 30\n", big);
    CHECK_EQ_INT(mismatches, 0);
    CHECK(big > 0);

    char err[200];
    /* Games that cross the 2^15 limit: two 2^14 tiles merge on the fast path, later moves fall back to
     * the generic path; game_move (auto) must match the generic path throughout. */
    long crossed = 0;
    for (int i = 0; i < 200; i++) {
        const uint32_t start[16] = {1u << 14, 1u << 14, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 2, 0};
        game2048 a, b;
        CHECK_EQ_INT(game_init(&a, 4, 1u << 20, 0.2, game_seed_mix(7, (uint64_t)i, 0)), 0);
        CHECK_EQ_INT(game_set_cells(&a, start, err, sizeof err), 0);
        b = a;
        game_rng mr = {game_seed_mix(7, (uint64_t)i, 1)};
        while (a.state == GAME_ONGOING) {
            int mv = "WASD"[pick(&mr, 4)];
            int ra = game_move_generic(&a, mv);
            int rb = game_move(&b, mv);
            if (ra != rb || !same_game(&a, &b)) { mismatches++; break; }
        }
        crossed += a.max_tile == (1u << 15);
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(crossed > 50);

    const uint32_t huge[16] = {1u << 15, 1u << 15, 4, 0,   2, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 1u << 16};
    game2048 a, b;
    CHECK_EQ_INT(game_init(&a, 4, 1u << 20, 0.1, 8), 0);
    CHECK_EQ_INT(game_set_cells(&a, huge, err, sizeof err), 0);
    b = a;
    game2048 c = a;
    CHECK_EQ_INT(game_move_fast4(&c, 'A'), -2);
    CHECK(memcmp(&c, &a, sizeof c) == 0);
    CHECK_EQ_INT(game_move_generic(&a, 'A'), 1);
    CHECK_EQ_INT(game_move(&b, 'A'), 1);
    CHECK(same_game(&a, &b));
    CHECK_EQ_INT(a.cells[0], 1u << 16);
    CHECK_EQ_INT(a.score, (1u << 16));
    /* The fast path declines other sizes too. */
    CHECK_EQ_INT(game_init(&c, 5, 2048, 0.1, 8), 0);
    CHECK_EQ_INT(game_move_fast4(&c, 'A'), -2);
}

/* Thread safety of the lazily built row tables: several threads make the first fast-path moves of the
 * process at the same time; each game must equal the same game replayed on the generic path. */
typedef struct {
    int id;
    int mismatches;
} thread_job;

static void *thread_games(void *arg) {
    thread_job *job = arg;
    for (int i = 0; i < 200; i++) {
        game2048 a, b;
        uint64_t seed = game_seed_mix(31337, (uint64_t)job->id, (uint64_t)i);
        if (game_init(&a, 4, 2048, 0.1, seed) != 0) { job->mismatches++; continue; }
        b = a;
        game_rng mr = {seed};
        while (a.state == GAME_ONGOING) {
            int mv = "WASD"[pick(&mr, 4)];
            if (game_move(&a, mv) != game_move_generic(&b, mv)) { job->mismatches++; break; }
        }
        if (memcmp(&a, &b, sizeof a) != 0) job->mismatches++;
    }
    return NULL;
}

static void test_threads_first_use(void) {
    enum { NT = 4 };
    pthread_t th[NT];
    thread_job jobs[NT];
    for (int t = 0; t < NT; t++) {
        jobs[t].id = t;
        jobs[t].mismatches = 0;
        CHECK_EQ_INT(pthread_create(&th[t], NULL, thread_games, &jobs[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        CHECK_EQ_INT(pthread_join(th[t], NULL), 0);
        CHECK_EQ_INT(jobs[t].mismatches, 0);
    }
}

int main(void) {
    test_threads_first_use();   /* first: it must be the first use of the fast path in this process */
    test_rng();
    test_slide_line();
    test_moves_one_path(game_move);
    test_moves_one_path(game_move_generic);
    test_moves_one_path(game_move_fast4);
    test_moves_other_sizes();
    test_states();
    test_parse_move();
    test_seeding();
    test_spawn_statistics();
    test_args();
    test_fast_rows();
    test_fast_vs_generic();
    return TEST_DONE();
}
