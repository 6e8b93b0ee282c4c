/*
 * bench/bench_rewards.c: throughput of the reward sandbox (issue 3), against the Python baseline that
 * does what the Unsloth 2048 notebook does (tools/reference_rewards.py), on the same strategies and
 * seeds.
 *
 * Sections, in order:
 *   1. the sandbox's overhead per job, 1 worker, on a strategy whose game ends at its first move:
 *      wall time per job, the trainer's job latency, and latency minus the game ("overhead"), with the
 *      pool's own breakdown (reward_pool_stats: fork, sandbox set-up = limits + filter, checks, result
 *      = the child's reaping); cold (every source new: the checker parses each) and warm (one source:
 *      the check cache answers);
 *   2. games per second for a trivial strategy (tests/rewards/strategies/random_moves.py) and a
 *      realistic one (corner_lookahead.py: corner-keeping with a one-step lookahead), with 1 worker and
 *      with one per core; the same games through the Python reference, in its two modes (a pool of
 *      long-lived workers, and a fresh process per job), with 1 process and one per core; the checksum
 *      (total moves and score) must agree, which shows both played the same games; then our games/s
 *      over the reference's, and the parallel efficiency (games/s with W workers / W / games/s with 1).
 *      Also both strategies in jobs of 8 games (rewards.games_per_strategy = 8), where one sandboxed
 *      process serves 8 games;
 *   3. 64 endless strategies (while True: pass) with 2 workers and a 1 s limit, which must take no more
 *      than 32 s + 10 %; the reference does the same;
 *   4. 10,000 jobs in a row (fast jobs of four kinds): jobs per second, and the open fds and resident
 *      memory of the zygote and workers before and after.
 * Timed sections take the best of 3 rounds: the machine may be shared, and the best round is the one
 * least disturbed. Load average and core count are printed first.
 *
 * Usage: bench_rewards [--quick] [--python PATH] [--no-python] [--source-dir DIR]
 *   --quick      fewer games and no sections 3 and 4 (a smoke run, ~20 s)
 *   --python     the interpreter for the reference (default /usr/bin/python3, the CPython the sandbox
 *                embeds, else python3 on PATH)
 *   --source-dir the repository (default: GRPO2048_SOURCE_DIR, else the one this file was built from)
 * Build: cmake --build BUILD --target bench_rewards; run from anywhere.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rewards/rewards.h"

static char root[1024];
static const char *python = NULL;
static int quick = 0, use_python = 1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_strategy(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/rewards/strategies/%s.py", root, name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "bench_rewards: cannot open %s (use --source-dir)\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "bench_rewards: cannot read %s\n", path); exit(1); }
    s[n] = '\0';
    fclose(f);
    return s;
}

static reward_pool *make_pool(int workers, double timeout, int games_per_job) {
    reward_config c;
    reward_config_defaults(&c);
    c.workers = workers;
    c.timeout = timeout;
    c.games_per_strategy = games_per_job;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    if (!p) { fprintf(stderr, "bench_rewards: %s\n", err); exit(1); }
    return p;
}

typedef struct {
    double seconds;          /* wall time of the batch */
    long moves;              /* checksum: total moves and score of the games */
    double score;
    reward_pool_stats st;
} run_result;

/* Scores n jobs of the given sources (seeds first_seed, first_seed + 1, ...) on p. */
static run_result run_batch(reward_pool *p, int n, const char *const *srcs, uint64_t first_seed) {
    uint64_t *seeds = malloc((size_t)n * sizeof *seeds);
    reward_result *r = malloc((size_t)n * sizeof *r);
    for (int i = 0; i < n; i++) seeds[i] = first_seed + (uint64_t)i;
    char err[256];
    reward_pool_reset_stats(p);
    double t0 = now_s();
    if (reward_pool_score_sources(p, n, srcs, seeds, r, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench_rewards: %s\n", err);
        exit(1);
    }
    run_result out = {now_s() - t0, 0, 0.0, {0}};
    for (int i = 0; i < n; i++) {
        out.moves += r[i].moves;
        out.score += r[i].score;
    }
    reward_pool_get_stats(p, &out.st);
    free(seeds);
    free(r);
    return out;
}

/* The best (fastest) of `rounds` runs of the same batch. */
static run_result best_of(reward_pool *p, int rounds, int n, const char *const *srcs) {
    run_result best = {0};
    for (int k = 0; k < rounds; k++) {
        run_result r = run_batch(p, n, srcs, 0);
        if (k == 0 || r.seconds < best.seconds) best = r;
    }
    return best;
}

/* ---- section 1 ---- */

static void overhead(void) {
    const int n = quick ? 200 : 1000;
    printf("\n1. Sandbox overhead per job (1 worker; the game ends at the strategy's first answer)\n");
    printf("   %-6s %9s %9s %9s | %6s %8s %7s %6s %7s %7s\n", "checks", "wall/job", "latency", "overhead",
           "fork", "sandbox", "checks", "play", "result", "faults");
    reward_pool *p = make_pool(1, 1.0, 1);
    char **fresh = malloc((size_t)n * sizeof *fresh);
    const char **srcs = malloc((size_t)n * sizeof *srcs);
    for (int mode = 0; mode < 2; mode++) {
        run_result best = {0};
        for (int k = 0; k < 3; k++) {
            static int serial = 0;
            for (int i = 0; i < n; i++) {
                fresh[i] = malloc(96);
                snprintf(fresh[i], 96, "def strategy(board):\n    return 'X'  # %d\n", mode == 0 ? serial++ : 0);
                srcs[i] = fresh[i];
            }
            run_result r = run_batch(p, n, srcs, 0);
            if (k == 0 || r.seconds < best.seconds) best = r;
            for (int i = 0; i < n; i++) free(fresh[i]);
        }
        const reward_pool_stats *s = &best.st;
        double jobs = (double)s->jobs;
        printf("   %-6s %7.0f us %6.0f us %6.0f us | %3.0f us %5.0f us %4.0f us %3.0f us %4.0f us %7.0f\n",
               mode == 0 ? "cold" : "cached", 1e6 * best.seconds / n, 1e6 * s->job_seconds / jobs,
               1e6 * (s->job_seconds - s->play_seconds) / jobs, 1e6 * s->fork_seconds / jobs,
               1e6 * s->sandbox_seconds / jobs, 1e6 * s->check_seconds / jobs, 1e6 * s->play_seconds / jobs,
               1e6 * s->finish_seconds / jobs, (double)s->minor_faults / (s->children ? s->children : 1));
    }
    printf("   (fork: the worker's fork() to the child running; sandbox: process group, fds, rlimits,\n"
           "    capabilities, seccomp filter; checks: the checker's verdict + unmarshal and build in the child;\n"
           "    play: the child's games; result: the child's reaping; faults: page faults per child)\n");
    free(fresh);
    free(srcs);
    reward_pool_destroy(p);
}

/* ---- section 2 ---- */

typedef struct {
    int ok;
    double gps;
    long moves;
    double score;
} py_result;

/* Runs the Python reference; ok = 0 when it could not run. */
static py_result run_python(const char *strategy, int games, int workers, double timeout, const char *mode,
                            int games_per_job) {
    py_result out = {0, 0, 0, 0};
    if (!use_python) return out;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/tools/reference_rewards.py' --strategy '%s/tests/rewards/strategies/%s.py' --games %d "
             "--workers %d --timeout %g --mode %s --games-per-job %d --json",
             python, root, root, strategy, games, workers, timeout, mode, games_per_job);
    FILE *f = popen(cmd, "r");
    if (!f) return out;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    int st = pclose(f);
    cJSON *j = st == 0 ? cJSON_Parse(buf) : NULL;
    if (!j) {
        fprintf(stderr, "bench_rewards: the Python reference failed (%s): %s\n", cmd, buf);
        return out;
    }
    cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "games_per_second");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "moves");
    cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "score");
    if (cJSON_IsNumber(g) && cJSON_IsNumber(m) && cJSON_IsNumber(s)) {
        out.ok = 1;
        out.gps = g->valuedouble;
        out.moves = (long)m->valuedouble;
        out.score = s->valuedouble;
    }
    cJSON_Delete(j);
    return out;
}

static py_result best_python(const char *strategy, int games, int workers, const char *mode, int games_per_job) {
    py_result best = {0, 0, 0, 0};
    for (int k = 0; k < 3; k++) {
        py_result r = run_python(strategy, games, workers, 1.0, mode, games_per_job);
        if (r.ok && (!best.ok || r.gps > best.gps)) best = r;
    }
    return best;
}

static void games_per_second(int cores) {
    struct {
        const char *name, *label;
        int games, per_job;
    } runs[4] = {
        {"random_moves", "trivial (random_moves)", quick ? 300 : 2000, 1},
        {"corner_lookahead", "realistic (corner_lookahead)", quick ? 40 : 200, 1},
        {"random_moves", "trivial, jobs of 8 games (rewards.games_per_strategy = 8)", quick ? 400 : 2400, 8},
        {"corner_lookahead", "realistic, jobs of 8 games", quick ? 40 : 200, 8},
    };
    printf("\n2. Games per second (4x4, target 2048, 1 s limit per game, job j seeded with j; best of 3)\n");
    for (int s = 0; s < 4; s++) {
        char *src = read_strategy(runs[s].name);
        int jobs = runs[s].games / runs[s].per_job;
        const char **srcs = malloc((size_t)jobs * sizeof *srcs);
        for (int i = 0; i < jobs; i++) srcs[i] = src;
        int ws[2] = {1, cores};
        double ours[2] = {0, 0}, pool[2] = {0, 0}, proc[2] = {0, 0};
        long moves = 0;
        double score = 0;
        printf("   %s, %d games:\n", runs[s].label, jobs * runs[s].per_job);
        for (int k = 0; k < (cores > 1 ? 2 : 1); k++) {
            reward_pool *p = make_pool(ws[k], 1.0, runs[s].per_job);
            run_result r = best_of(p, 3, jobs, srcs);
            reward_pool_destroy(p);
            ours[k] = jobs * runs[s].per_job / r.seconds;
            moves = r.moves;
            score = r.score * runs[s].per_job;   /* reward_result.score is the mean over the job's games */
            py_result a = best_python(runs[s].name, jobs * runs[s].per_job, ws[k], "pool", runs[s].per_job);
            py_result b = best_python(runs[s].name, jobs * runs[s].per_job, ws[k], "process", runs[s].per_job);
            pool[k] = a.ok ? a.gps : 0;
            proc[k] = b.ok ? b.gps : 0;
            printf("     %2d worker%s  grpo2048 %8.1f games/s", ws[k], ws[k] == 1 ? " " : "s", ours[k]);
            if (a.ok) printf(" | Python pool %7.1f (x%.2f)", a.gps, ours[k] / a.gps);
            if (b.ok) printf(" | Python process per job %7.1f (x%.2f)", b.gps, ours[k] / b.gps);
            printf("\n");
            if (a.ok && (a.moves != moves || a.score != score))
                printf("     CHECKSUM MISMATCH: grpo2048 %ld moves, score %.0f; Python %ld, %.0f\n", moves, score, a.moves,
                       a.score);
            if (b.ok && (b.moves != moves || b.score != score))
                printf("     CHECKSUM MISMATCH: grpo2048 %ld moves, score %.0f; Python (process) %ld, %.0f\n", moves,
                       score, b.moves, b.score);
        }
        printf("     same games: %ld moves, total score %.0f%s\n", moves, score,
               use_python && pool[0] > 0 ? " (the reference played the same)" : "");
        if (cores > 1) {
            printf("     parallel efficiency with %d workers: grpo2048 %.2f", cores, ours[1] / ours[0] / cores);
            if (pool[0] > 0) printf(", Python pool %.2f", pool[1] / pool[0] / cores);
            if (proc[0] > 0) printf(", Python process per job %.2f", proc[1] / proc[0] / cores);
            printf("\n");
        }
        free(srcs);
        free(src);
    }
}

/* ---- section 3 ---- */

static void endless(void) {
    const int n = 64;
    printf("\n3. %d endless strategies (while True: pass), 2 workers, 1 s limit (goal: <= 32 s + 10%% = 35.2 s)\n", n);
    char *src = read_strategy("loop");
    const char **srcs = malloc((size_t)n * sizeof *srcs);
    for (int i = 0; i < n; i++) srcs[i] = src;
    reward_pool *p = make_pool(2, 1.0, 1);
    run_result r = run_batch(p, n, srcs, 0);
    reward_pool_destroy(p);
    printf("   grpo2048: %.2f s (%s)\n", r.seconds, r.seconds <= 35.2 ? "PASS" : "FAIL");
    if (use_python) {
        double t0 = now_s();
        py_result a = run_python("loop", n, 2, 1.0, "pool", 1);
        if (a.ok) printf("   Python pool: %.2f s\n", now_s() - t0);
    }
    free(srcs);
    free(src);
}

/* ---- section 4 ---- */

static int fd_count(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static long rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void many_jobs(void) {
    const int total = 10000, batch = 500;
    printf("\n4. %d jobs in a row, 2 workers, batches of %d (invalid move, seccomp kill, exception, new source)\n",
           total, batch);
    char *fork_src = read_strategy("fork"), *raises = read_strategy("raises");
    const char *invalid = "def strategy(board):\n    return 'X'\n";
    char **fresh = malloc((size_t)batch * sizeof *fresh);
    const char **srcs = malloc((size_t)batch * sizeof *srcs);
    for (int i = 0; i < batch; i++) fresh[i] = malloc(96);
    reward_pool *p = make_pool(2, 1.0, 1);
    int serial = 0;
    int pids[2];
    reward_pool_worker_pids(p, pids, 2);
    int fds0[2] = {0, 0}, fds1[2];
    long rss0[2] = {0, 0}, rss1[2];
    double t0 = 0;
    for (int done = -batch; done < total; done += batch) {
        for (int j = 0; j < batch; j++) {
            if (j % 4 == 3) {
                snprintf(fresh[j], 96, "def strategy(board):\n    return 'X'  # %d\n", serial++);
                srcs[j] = fresh[j];
            } else {
                srcs[j] = j % 4 == 0 ? fork_src : j % 4 == 1 ? raises : invalid;
            }
        }
        run_batch(p, batch, srcs, 0);
        if (done == -batch) {   /* after a warm-up batch */
            for (int w = 0; w < 2; w++) { fds0[w] = fd_count(pids[w]); rss0[w] = rss_kib(pids[w]); }
            t0 = now_s();
        }
    }
    double secs = now_s() - t0;
    usleep(100000);
    for (int w = 0; w < 2; w++) { fds1[w] = fd_count(pids[w]); rss1[w] = rss_kib(pids[w]); }
    printf("   %.2f s, %.0f jobs/s; worker fds %d,%d -> %d,%d; worker RSS %ld,%ld -> %ld,%ld KiB\n", secs, total / secs,
           fds0[0], fds0[1], fds1[0], fds1[1], rss0[0], rss0[1], rss1[0], rss1[1]);
    reward_pool_destroy(p);
    for (int i = 0; i < batch; i++) free(fresh[i]);
    free(fresh);
    free(srcs);
    free(fork_src);
    free(raises);
}

int main(int argc, char **argv) {
    const char *dir = getenv("GRPO2048_SOURCE_DIR");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-python")) use_python = 0;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc) python = argv[++i];
        else if (!strcmp(argv[i], "--source-dir") && i + 1 < argc) dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench_rewards [--quick] [--python PATH] [--no-python] [--source-dir DIR]\n");
            return 2;
        }
    }
    if (dir) {
        snprintf(root, sizeof root, "%s", dir);
    } else {
        /* __FILE__ is .../bench/bench_rewards.c when CMake compiles it (absolute paths). */
        snprintf(root, sizeof root, "%s", __FILE__);
        char *slash = strrchr(root, '/');
        if (slash) *slash = '\0';
        slash = strrchr(root, '/');
        if (slash) *slash = '\0';
        else snprintf(root, sizeof root, ".");
    }
    struct stat sb;
    if (!python) python = stat("/usr/bin/python3", &sb) == 0 ? "/usr/bin/python3" : "python3";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    double load[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = load[1] = load[2] = 0;
        fclose(lf);
    }
    printf("bench_rewards: %ld cores, load average %.2f %.2f %.2f; Python reference: %s%s\n", cores, load[0], load[1],
           load[2], use_python ? python : "off", quick ? "; quick run" : "");
    overhead();
    games_per_second((int)cores);
    if (!quick) {
        endless();
        many_jobs();
    }
    return 0;
}
