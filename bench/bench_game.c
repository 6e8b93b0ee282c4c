/*
 * bench/bench_game.c: speed of the 2048 game, generic N×N path vs the N=4 bitboard path.
 *
 * Plays a fixed number of 4×4 games (target 2048, p_four 0.1) with two players:
 *   random  — a uniformly random move each turn (from the game's own splitmix64 RNG);
 *   corner  — the corner heuristic: S if it changes the board, else D, else A, else W.
 * each once through game_move_generic and once through game_move_fast4 (game2048/game_internal.h),
 * with the same seeds, so both paths play exactly the same games (the checksums printed must agree).
 * Reports move calls per CPU second (every move call, including ones that change nothing), games per
 * CPU second, and the fast/generic ratio. Each measurement is the best (least CPU time) of 3 rounds,
 * the two paths alternating, to damp the noise of a shared machine.
 *
 * Usage: bench_game [games]   (default 20000 random and 5000 corner games per path and round)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "game2048/game.h"
#include "game2048/game_internal.h"

typedef int (*move_fn)(game2048 *, int);

typedef struct {
    double seconds;
    long games, calls, changing;
    uint64_t checksum;   /* sum of final scores and max tiles: equal for both paths */
} result;

/* CPU time of this process (seconds): less disturbed than wall time on a shared machine. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* game_move on the fast path, falling back to the generic path when it declines (never for these
 * games, which end at 2048 < 2^15). */
static int fast_move(game2048 *g, int move) {
    int r = game_move_fast4(g, move);
    return r == -2 ? game_move_generic(g, move) : r;
}

static result play(move_fn fn, int corner, long games) {
    result res = {0};
    double t0 = now_s();
    for (long i = 0; i < games; i++) {
        game2048 g;
        if (game_init(&g, 4, 2048, 0.1, game_seed_mix(2048, (uint64_t)corner, (uint64_t)i)) != 0) {
            fprintf(stderr, "bench_game: game_init failed\n");
            exit(1);
        }
        game_rng mr = {game_seed_mix(4096, (uint64_t)corner, (uint64_t)i)};
        while (g.state == GAME_ONGOING) {
            if (corner) {
                const char order[4] = {'S', 'D', 'A', 'W'};
                for (int k = 0; k < 4; k++) {
                    res.calls++;
                    if (fn(&g, order[k]) == 1) { res.changing++; break; }
                }
            } else {
                res.calls++;
                res.changing += fn(&g, "WASD"[game_rng_below(&mr, 4)]) == 1;
            }
        }
        res.checksum += g.score + g.max_tile;
        res.games++;
    }
    res.seconds = now_s() - t0;
    return res;
}

static void report(const char *player, const char *path, const result *r) {
    printf("%-7s %-8s %8ld games %10ld calls (%9ld changing) %7.3f CPU s  %12.0f calls/s  %10.0f games/s  checksum %llu\n",
           player, path, r->games, r->calls, r->changing, r->seconds, (double)r->calls / r->seconds,
           (double)r->games / r->seconds, (unsigned long long)r->checksum);
}

int main(int argc, char **argv) {
    long games = argc > 1 ? atol(argv[1]) : 20000;
    if (games <= 0) {
        fprintf(stderr, "bench_game: games must be a positive integer, got %s\n", argv[1]);
        return 2;
    }
    const char *players[2] = {"random", "corner"};
    int status = 0;
    for (int corner = 0; corner < 2; corner++) {
        long n = corner ? (games + 3) / 4 : games;
        play(fast_move, corner, n / 20 + 1);   /* warm-up: builds the row tables, warms caches */
        result gen = {0}, fast = {0};
        for (int round = 0; round < 3; round++) {
            result a = play(game_move_generic, corner, n);
            result b = play(fast_move, corner, n);
            if (round == 0 || a.seconds < gen.seconds) gen = a;
            if (round == 0 || b.seconds < fast.seconds) fast = b;
        }
        report(players[corner], "generic", &gen);
        report(players[corner], "fast4", &fast);
        printf("%-7s fast4/generic speed-up: %.2fx (calls/s)\n", players[corner],
               ((double)fast.calls / fast.seconds) / ((double)gen.calls / gen.seconds));
        if (gen.checksum != fast.checksum || gen.calls != fast.calls) {
            fprintf(stderr, "bench_game: %s games differ between the paths\n", players[corner]);
            status = 1;
        }
    }
    return status;
}
