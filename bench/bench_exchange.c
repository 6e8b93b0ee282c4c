/*
 * bench/bench_exchange.c: the cost of one move's round trip between a reward worker (which owns the
 * game) and its sandboxed child (which only maps a board to a move), for the two designs of issue 15:
 *
 *   pipe    the worker writes the board (N×N uint32 cells + a header) to a pipe, the child reads it,
 *           "thinks" for W µs and writes its 1-record answer to another pipe, which the worker reads
 *           (blocking reads on both sides: what poll()/read() in the pool would do);
 *   futex   a MAP_SHARED page holds the board, the answer and a turn word; each side posts its part,
 *           flips the turn and wakes the other (FUTEX_WAKE only when the other side said it sleeps);
 *           the waiting side spins up to S µs on the turn word, then sleeps in FUTEX_WAIT.
 *
 * Each design runs with the pair free to move between cores, and with worker and child pinned to one
 * core (sched_setaffinity: a wake-up is then a context switch on that core, not an inter-processor
 * interrupt to an idle core, which costs 10-20 µs in a VM).
 *
 * For each design it runs P pairs (worker + child) at once (1 and 2: one reward worker or one per core
 * of a 2-core machine) and W = 0 µs (the round trip alone) and 20 µs (a quick strategy's Python per
 * move; the realistic corner_lookahead takes ~15-40 µs), and prints µs per round trip beyond W.
 *
 * Usage: bench_exchange [--moves N]   (default 200000 round trips per pair and case)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void busy(double us) {
    if (us <= 0) return;
    double end = now_s() + us * 1e-6;
    while (now_s() < end) {}
}

typedef struct {
    uint32_t n, game, cells[64];
} board_msg;
typedef struct {
    int32_t kind, value;
} answer_msg;

typedef struct {
    _Atomic uint32_t turn;         /* 0: the child's turn (board posted), 1: the worker's (answer posted) */
    _Atomic uint32_t sleeping[2];  /* [0] the child sleeps on turn, [1] the worker does */
    board_msg board;
    answer_msg answer;
} shared_page;

static long futex(_Atomic uint32_t *w, int op, uint32_t v) {
    return syscall(SYS_futex, (uint32_t *)w, op, v, NULL, NULL, 0);
}

/* Waits until *turn == want: spins spin_us, then sleeps. side: 0 child, 1 worker. */
static void wait_turn(shared_page *s, uint32_t want, int side, double spin_us) {
    if (atomic_load_explicit(&s->turn, memory_order_acquire) == want) return;
    if (spin_us > 0) {
        double end = now_s() + spin_us * 1e-6;
        int k = 0;
        while (atomic_load_explicit(&s->turn, memory_order_acquire) != want) {
            __builtin_ia32_pause();
            if ((++k & 63) == 0 && now_s() > end) break;
        }
        if (atomic_load_explicit(&s->turn, memory_order_acquire) == want) return;
    }
    for (;;) {
        atomic_store(&s->sleeping[side], 1);
        uint32_t t = atomic_load(&s->turn);
        if (t == want) break;
        futex(&s->turn, FUTEX_WAIT, t);
    }
    atomic_store(&s->sleeping[side], 0);
}

static void post_turn(shared_page *s, uint32_t v, int other) {
    atomic_store_explicit(&s->turn, v, memory_order_release);
    if (atomic_load(&s->sleeping[other])) futex(&s->turn, FUTEX_WAKE, 1);
}

/* One pair: returns seconds for `moves` round trips. design 0 pipe, 1 futex. */
static double run_pair(int design, long moves, double work_us, double spin_us, int pin) {
    int b[2], a[2];
    if (pin >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(pin, &set);
        sched_setaffinity(0, sizeof set, &set);   /* the child inherits it: both on one core */
    }
    shared_page *s = NULL;
    if (design == 0) {
        if (pipe(b) || pipe(a)) { perror("pipe"); exit(1); }
    } else {
        s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED) { perror("mmap"); exit(1); }
        memset(s, 0, sizeof *s);
        s->turn = 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < moves; i++) {
            board_msg bm;
            answer_msg am = {1, 'W'};
            if (design == 0) {
                if (read(b[0], &bm, sizeof bm) != (ssize_t)sizeof bm) _exit(1);
                busy(work_us);
                am.value = (int32_t)bm.cells[0];
                if (write(a[1], &am, sizeof am) != (ssize_t)sizeof am) _exit(1);
            } else {
                wait_turn(s, 0, 0, spin_us);
                bm = s->board;
                busy(work_us);
                am.value = (int32_t)bm.cells[0];
                s->answer = am;
                post_turn(s, 1, 1);
            }
        }
        _exit(0);
    }
    double t0 = now_s();
    board_msg bm;
    memset(&bm, 0, sizeof bm);
    bm.n = 4;
    for (long i = 0; i < moves; i++) {
        bm.cells[0] = (uint32_t)i;
        answer_msg am;
        if (design == 0) {
            if (write(b[1], &bm, sizeof bm) != (ssize_t)sizeof bm) exit(1);
            if (read(a[0], &am, sizeof am) != (ssize_t)sizeof am) exit(1);
        } else {
            s->board = bm;
            post_turn(s, 0, 0);
            wait_turn(s, 1, 1, spin_us);
            am = s->answer;
        }
        if (am.value != (int32_t)i) { fprintf(stderr, "bench_exchange: wrong answer\n"); exit(1); }
    }
    double t = now_s() - t0;
    waitpid(pid, NULL, 0);
    if (design == 0) { close(a[0]); close(a[1]); close(b[0]); close(b[1]); }
    else munmap(s, 4096);
    return t;
}

int main(int argc, char **argv) {
    long moves = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--moves") && i + 1 < argc) moves = atol(argv[++i]);
        else { fprintf(stderr, "usage: bench_exchange [--moves N]\n"); return 2; }
    }
    double load[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) { if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = 0; fclose(lf); }
    printf("bench_exchange: %ld cores, load average %.2f %.2f %.2f; %ld round trips per pair and case\n",
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], moves);
    printf("   %-22s %6s %8s  µs per round trip beyond the work (best of 3)\n", "design", "pairs", "work µs");
    struct { int design; double spin; int pin; const char *name; } cases[] = {
        {0, 0, 0, "pipe"}, {1, 0, 0, "futex, no spin"}, {1, 5, 0, "futex, spin 5 µs"},
        {0, 0, 1, "pipe, pair on one core"}, {1, 0, 1, "futex, pair on one core"},
    };
    double works[] = {0, 20};
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        for (int pairs = 1; pairs <= 2; pairs++) {
            for (unsigned w = 0; w < 2; w++) {
                long m = works[w] > 0 ? moves / 4 : moves;
                double best = 1e30;
                for (int round = 0; round < 3; round++) {
                    /* pairs-1 extra pairs run in forked processes alongside */
                    int p[2];
                    if (pipe(p)) return 1;
                    pid_t others[4];
                    for (int k = 1; k < pairs; k++) {
                        others[k] = fork();
                        if (others[k] == 0) {
                            run_pair(cases[c].design, m, works[w], cases[c].spin, cases[c].pin ? k % ncpu : -1);
                            _exit(0);
                        }
                    }
                    double t = run_pair(cases[c].design, m, works[w], cases[c].spin, cases[c].pin ? 0 : -1);
                    for (int k = 1; k < pairs; k++) waitpid(others[k], NULL, 0);
                    close(p[0]);
                    close(p[1]);
                    double per = t / (double)m * 1e6 - works[w];
                    if (per < best) best = per;
                }
                printf("   %-22s %6d %8.0f  %8.2f\n", cases[c].name, pairs, works[w], best);
                fflush(stdout);
            }
        }
    }
    return 0;
}
