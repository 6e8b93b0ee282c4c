/*
 * tests/rewards/test_resilience.c: a pool that never dies (issue 3).
 *
 *   - many jobs in a row (10,000; 2,000 under AddressSanitizer, which makes each fork several times
 *     slower — the benchmark runs more): a mix of fast jobs (invalid move, seccomp kill, exception,
 *     syntax error answered from the check cache, a new source for the checker every fourth job, so each
 *     worker's checker is replaced after its 1,000 checks) in GRPO-sized batches. Afterwards: every
 *     result as expected, no zombie and no stray process, the same number of open fds in the trainer,
 *     the zygote and each worker as before, and resident memory of the zygote and workers flat (within
 *     2 MiB of what it was after a warm-up batch);
 *   - a job's child and a worker's checker SIGKILLed from outside: the game is a crash with the signal
 *     named, the next jobs score as before, a new checker takes over;
 *   - the process holding the pool ending every way — SIGKILL, SIGINT, SIGTERM, a normal exit, exit()
 *     without reward_pool_destroy, and `grpo2048 train` failing after it created its pool — leaves no
 *     zygote, worker, checker or job process behind (found in /proc by this test's environment marker,
 *     which every process forked from it carries, reparented or not);
 *   - rewards.workers: 0 means one per online CPU, more than REWARD_MAX_WORKERS_PER_CPU per CPU is
 *     clamped with a message on stderr, out of range is a validation error naming the key.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

static reward_pool *pool_with(int workers, double timeout) {
    reward_config c;
    reward_config_defaults(&c);
    c.workers = workers;
    c.timeout = timeout;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    if (!p) { fprintf(stderr, "reward_pool_create: %s\n", err); abort(); }
    return p;
}

/* The parent (zygote) of the pool's first worker. */
static int zygote_of(const reward_pool *p) {
    int w;
    tu_proc q;
    reward_pool_worker_pids(p, &w, 1);
    return tu_proc_stat(w, &q) ? q.ppid : -1;
}

/* The children of pid (up to max); returns how many. */
static int children_of(int pid, int *out, int max) {
    static tu_proc procs[1 << 15];
    int n = tu_procs(procs, 1 << 15), k = 0;
    for (int i = 0; i < n; i++)
        if (procs[i].ppid == pid && procs[i].state != 'Z') {
            if (k < max) out[k] = procs[i].pid;
            k++;
        }
    return k;
}

enum { KIND_INVALID, KIND_FORK, KIND_RAISES, KIND_SYNTAX, KIND_FRESH, KIND_COUNT };

static void test_many_jobs(void) {
#ifdef GRPO2048_SANITIZE
    const int total = 2000;
    printf("AddressSanitizer build: %d jobs in a row (10,000 in the normal build and in bench_rewards)\n", total);
#else
    const int total = 10000;
#endif
    const int batch = 500;
    reward_pool *p = pool_with(2, 1.0);
    char *src_fork = tu_strategy("fork"), *src_raises = tu_strategy("raises"), *src_syntax = tu_strategy("syntax_error");
    const char *src_invalid = "def strategy(board):\n    return 'X'\n";
    char **fresh = calloc((size_t)batch, sizeof *fresh);
    for (int i = 0; i < batch; i++) fresh[i] = malloc(96);
    const char **srcs = calloc((size_t)batch, sizeof *srcs);
    uint64_t *seeds = calloc((size_t)batch, sizeof *seeds);
    reward_result *r = calloc((size_t)batch, sizeof *r);
    int *kind = calloc((size_t)batch, sizeof *kind);
    char err[256];
    int serial = 0, wrong = 0;
    long kinds[KIND_COUNT] = {0};

    /* One batch: job j of it is of kind j % 4 (fork, raises, syntax, invalid), except that every fourth
     * job is a source never seen before (the checker's work). */
#define RUN_BATCH() do { \
        for (int j = 0; j < batch; j++) { \
            seeds[j] = (uint64_t)j; \
            if (j % 4 == 3) { \
                snprintf(fresh[j], 96, "def strategy(board):\n    return 'X'  # job %d\n", serial++); \
                srcs[j] = fresh[j]; kind[j] = KIND_FRESH; \
            } else { \
                kind[j] = j % 4 == 0 ? KIND_FORK : j % 4 == 1 ? KIND_RAISES : (j / 4) % 2 ? KIND_SYNTAX : KIND_INVALID; \
                srcs[j] = kind[j] == KIND_FORK ? src_fork : kind[j] == KIND_RAISES ? src_raises \
                        : kind[j] == KIND_SYNTAX ? src_syntax : src_invalid; \
            } \
        } \
        CHECK_EQ_INT(reward_pool_score_sources(p, batch, srcs, seeds, r, NULL, err, sizeof err), 0); \
        for (int j = 0; j < batch; j++) { \
            int want = kind[j] == KIND_FORK ? OUTCOME_CRASH : kind[j] == KIND_RAISES ? OUTCOME_EXCEPTION \
                     : kind[j] == KIND_SYNTAX ? OUTCOME_SYNTAX_ERROR : OUTCOME_INVALID_MOVE; \
            kinds[kind[j]]++; \
            if ((int)r[j].outcome != want && wrong++ < 5) \
                CHECK_MSG(0, "job %d (kind %d): %s %s", j, kind[j], reward_outcome_name(r[j].outcome), r[j].error); \
        } \
    } while (0)

    RUN_BATCH();   /* warm-up: caches filled, checkers started */
    char why[256];
    CHECK_MSG(tu_pool_clean(p, 2.0, why, sizeof why), "after the warm-up: %s", why);
    int workers[2];
    reward_pool_worker_pids(p, workers, 2);
    int procs[3] = {zygote_of(p), workers[0], workers[1]};
    int fds0[3], self_fds0 = tu_fd_count(getpid());
    long rss0[3];
    for (int i = 0; i < 3; i++) {
        fds0[i] = tu_fd_count(procs[i]);
        rss0[i] = tu_rss_kib(procs[i]);
    }
    reward_pool_reset_stats(p);
    double t0 = tu_now();
    for (int done = 0; done < total; done += batch) RUN_BATCH();
    double secs = tu_now() - t0;
#undef RUN_BATCH
    CHECK_EQ_INT(wrong, 0);
    reward_pool_stats st;
    reward_pool_get_stats(p, &st);
    CHECK_EQ_INT(st.jobs, total);
    /* The syntax errors after the first are answered from the cache, without a child. */
    CHECK_MSG(st.children < total && st.children >= total - total / 4, "%ld children for %d jobs", st.children, total);
    printf("%d jobs in %.2f s (%.0f jobs/s): %ld children, %ld checks from the cache; per job: fork %.0f us, "
           "sandbox %.0f us, checks %.0f us, play %.0f us, finish %.0f us, %.0f page faults\n",
           total, secs, total / secs, st.children, st.cached_checks, 1e6 * st.fork_seconds / st.jobs,
           1e6 * st.sandbox_seconds / st.jobs, 1e6 * st.check_seconds / st.jobs, 1e6 * st.play_seconds / st.jobs,
           1e6 * st.finish_seconds / st.jobs, (double)st.minor_faults / (st.children ? st.children : 1));
    CHECK_MSG(tu_pool_clean(p, 2.0, why, sizeof why), "after %d jobs: %s", total, why);
    int now_workers[2];
    reward_pool_worker_pids(p, now_workers, 2);
    CHECK_MSG(now_workers[0] == workers[0] && now_workers[1] == workers[1], "a worker was replaced");
    const char *names[3] = {"zygote", "worker 0", "worker 1"};
    for (int i = 0; i < 3; i++) {
        int fds = tu_fd_count(procs[i]);
        long rss = tu_rss_kib(procs[i]);
        printf("%-8s fds %d -> %d, RSS %ld -> %ld KiB\n", names[i], fds0[i], fds, rss0[i], rss);
        CHECK_MSG(fds == fds0[i], "%s: %d fds, %d before", names[i], fds, fds0[i]);
        CHECK_MSG(rss >= 0 && rss <= rss0[i] + 2048, "%s: RSS %ld KiB, %ld before", names[i], rss, rss0[i]);
    }
    CHECK_EQ_INT(tu_fd_count(getpid()), self_fds0);
    reward_pool_destroy(p);
    CHECK_EQ_INT(tu_fd_count(getpid()), self_fds0 - 3);   /* the control socket and two worker sockets */
    for (int i = 0; i < batch; i++) free(fresh[i]);
    free(fresh); free(srcs); free(seeds); free(r); free(kind);
    free(src_fork); free(src_raises); free(src_syntax);
}

/* Kills the first new child of worker that is not in known[0..nknown) within 5 s. */
static void kill_new_child(int worker, const int *known, int nknown) {
    double t0 = tu_now();
    while (tu_now() - t0 < 5.0) {
        int kids[8];
        int n = children_of(worker, kids, 8);
        for (int i = 0; i < n && i < 8; i++) {
            int old = 0;
            for (int k = 0; k < nknown; k++) old |= kids[i] == known[k];
            if (!old) {
                usleep(50000);   /* let it get into the strategy's loop */
                kill(kids[i], SIGKILL);
                return;
            }
        }
        usleep(2000);
    }
}

static void test_child_and_checker_killed(void) {
    reward_pool *p = pool_with(1, 2.0);
    int worker;
    reward_pool_worker_pids(p, &worker, 1);
    char *rnd = tu_strategy("random_moves"), *loop = tu_strategy("loop");
    uint64_t seed = 3;
    reward_result ref, r;
    char err[256];
    const char *s = rnd;
    CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &ref, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(ref.outcome, OUTCOME_FAILED);
    /* The checker is the worker's only child between jobs. */
    usleep(20000);
    int checker[4];
    CHECK_EQ_INT(children_of(worker, checker, 4), 1);

    /* A job's child killed from outside: its game is a crash that names the signal. */
    fflush(stdout);
    pid_t killer = fork();
    if (killer == 0) {
        kill_new_child(worker, checker, 1);
        _exit(0);
    }
    s = loop;
    CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
    waitpid(killer, NULL, 0);
    CHECK_MSG(r.outcome == OUTCOME_CRASH && strstr(r.error, "signal 9"), "killed job child: %s %s",
              reward_outcome_name(r.outcome), r.error);
    CHECK_MSG(r.seconds < 1.5, "the killed job took %.3f s", r.seconds);
    s = rnd;
    CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
    CHECK(r.outcome == ref.outcome && r.moves == ref.moves && r.score == ref.score);

    /* The checker killed from outside: the next new source is still judged (its job's child runs the
     * checks itself), and the job after it starts a new checker. Each verdict, once that way. */
    const char *fresh[3] = {"def strategy(board):\n    return 'X'  # after the checker died\n",
                            "def strategy(board)\n    return 'W'\n",
                            "def strategy(board):\n    import numpy\n    return 'W'\n"};
    const int want[3] = {OUTCOME_INVALID_MOVE, OUTCOME_SYNTAX_ERROR, OUTCOME_BANNED_IMPORT};
    for (int i = 0; i < 3; i++) {
        char warm[96];
        snprintf(warm, sizeof warm, "def strategy(board):\n    return 'X'  # warm %d\n", i);
        s = warm;   /* a new source: the worker has (or starts) a checker */
        CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
        CHECK_EQ_INT(r.outcome, OUTCOME_INVALID_MOVE);
        usleep(20000);
        int kids[4];
        CHECK_EQ_INT(children_of(worker, kids, 4), 1);
        if (i == 0) CHECK_EQ_INT(kids[0], checker[0]);
        kill(kids[0], SIGKILL);
        usleep(20000);
        reward_pool_reset_stats(p);
        s = fresh[i];
        CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
        CHECK_MSG((int)r.outcome == want[i], "source %d after the checker died: %s %s", i,
                  reward_outcome_name(r.outcome), r.error);
        reward_pool_stats st;
        reward_pool_get_stats(p, &st);
        CHECK_EQ_INT(st.children, 1);   /* the check ran in the job's child, even for a failing source */
    }
    s = "def strategy(board):\n    return 'X'  # a new checker\n";
    CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(r.outcome, OUTCOME_INVALID_MOVE);
    usleep(20000);
    int now[4];
    CHECK_EQ_INT(children_of(worker, now, 4), 1);
    CHECK(now[0] != checker[0]);
    int w2;
    reward_pool_worker_pids(p, &w2, 1);
    CHECK_EQ_INT(w2, worker);   /* the worker itself was never replaced */
    char why[256];
    CHECK_MSG(tu_pool_clean(p, 2.0, why, sizeof why), "%s", why);
    reward_pool_destroy(p);
    free(rnd);
    free(loop);
}

/* Starts `grpo2048 play` on an endless strategy and waits until its job is running: the play process,
 * the zygote, the worker and the job's child all carry our marker. Returns the play process's pid. */
static pid_t start_endless_play(const char *bin) {
    char strat[1024];
    tu_strategy_path("loop", strat, sizeof strat);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        signal(SIGINT, SIG_DFL);   /* a shell without job control starts background commands ignoring it */
        signal(SIGTERM, SIG_DFL);
        execl(bin, bin, "play", "--strategy", strat, "--timeout", "60", (char *)NULL);
        _exit(127);
    }
    double t0 = tu_now();
    int pids[16];
    /* play, zygote, worker, the worker's checker, the job's child */
    while (tu_marked(tu_mark, pids, 16) < 5 && tu_now() - t0 < 10.0) usleep(5000);
    CHECK_MSG(tu_marked(tu_mark, pids, 16) >= 5, "grpo2048 play did not start its job");
    usleep(50000);
    return pid;
}

static void test_trainer_exit(const char *bin) {
    /* Killed by a signal while a job runs. */
    const int sigs[3] = {SIGKILL, SIGINT, SIGTERM};
    for (int i = 0; i < 3; i++) {
        pid_t pid = start_endless_play(bin);
        kill(pid, sigs[i]);
        int st;
        waitpid(pid, &st, 0);
        CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i], "play ended with status %d", st);
        int left = tu_wait_unmarked(tu_mark, 3.0);
        CHECK_MSG(left == 0, "%d processes survived grpo2048 play killed by %s", left, strsignal(sigs[i]));
    }
    /* A normal end. */
    char corner[1024], cmd[4096];
    tu_strategy_path("corner", corner, sizeof corner);
    snprintf(cmd, sizeof cmd, "'%s' play --strategy '%s' --games 3 --target 64 >/dev/null", bin, corner);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_MSG(tu_wait_unmarked(tu_mark, 3.0) == 0, "processes survived a normal grpo2048 play");
    /* An error after the pool was created: the trainer cannot load its model. */
    const char *root = getenv("GRPO2048_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "'%s' train '%s%sconfigs/default.yaml' --set model_name_or_path=/nonexistent/model "
             "--set output_dir=/tmp/grpo2048_resilience_run 2>/dev/null", bin, root ? root : "", root ? "/" : "");
    int st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "grpo2048 train with a missing model: status %d", st);
    CHECK_MSG(tu_wait_unmarked(tu_mark, 3.0) == 0, "processes survived grpo2048 train failing");
}

/* A process that calls exit() with its pool still up (no reward_pool_destroy), in the middle of a job. */
static void test_exit_without_destroy(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        reward_pool *p = pool_with(2, 30.0);
        (void)p;
        pid_t self = getpid();
        if (fork() == 0) {   /* exits its parent while the jobs run */
            usleep(300000);
            kill(self, SIGUSR1);
            _exit(0);
        }
        signal(SIGUSR1, exit);   /* exit(SIGUSR1) from the handler: atexit, no destroy */
        char *loop = tu_strategy("loop");
        const char *s[2] = {loop, loop};
        uint64_t seeds[2] = {1, 2};
        reward_result r[2];
        char err[256];
        reward_pool_score_sources(p, 2, s, seeds, r, NULL, err, sizeof err);
        _exit(99);   /* not reached: the jobs run for 30 s */
    }
    int st;
    waitpid(pid, &st, 0);
#ifdef GRPO2048_SANITIZE
    CHECK_MSG(WIFEXITED(st), "status %d", st);   /* LeakSanitizer may report the pool it never freed */
#else
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == SIGUSR1, "status %d", st);
#endif
    CHECK_MSG(tu_wait_unmarked(tu_mark, 3.0) == 0, "processes survived exit() without reward_pool_destroy");
}

static void test_workers_clamp(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 256) cpus = 256;
    reward_config c;
    reward_config_defaults(&c);
    char note[160];
    c.workers = 0;
    CHECK_EQ_INT(reward_pool_workers(&c, note, sizeof note), cpus);
    CHECK(note[0] == '\0');
    c.workers = 1;
    CHECK_EQ_INT(reward_pool_workers(&c, note, sizeof note), 1);
    c.workers = 1000;
    CHECK_EQ_INT(reward_pool_workers(&c, note, sizeof note), REWARD_MAX_WORKERS_PER_CPU * cpus);
    CHECK_MSG(strstr(note, "rewards.workers=1000 is more than") != NULL, "[%s]", note);
    c.parallel = 0;
    CHECK_EQ_INT(reward_pool_workers(&c, note, sizeof note), 1);
    c.parallel = 1;
    char err[256];
    c.workers = -1;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK_MSG(strstr(err, "rewards.workers") != NULL, "[%s]", err);
    c.workers = 1025;
    CHECK_EQ_INT(reward_config_validate(&c, err, sizeof err), -1);
    CHECK(reward_pool_create(&c, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "rewards.workers") != NULL, "[%s]", err);

    /* The pool starts the clamped number and says so on stderr. */
    c.workers = 1000;
    c.timeout = 1.0;
    char tmpl[] = "/tmp/grpo2048_clamp_XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK(p != NULL);
    if (p) {
        int pids[1024];
        CHECK_EQ_INT(reward_pool_worker_pids(p, pids, 1024), REWARD_MAX_WORKERS_PER_CPU * cpus);
        char *src = tu_strategy("random_moves");
        const char *s = src;
        uint64_t seed = 1;
        reward_result r;
        CHECK_EQ_INT(reward_pool_score_sources(p, 1, &s, &seed, &r, NULL, err, sizeof err), 0);
        CHECK_EQ_INT(r.outcome, OUTCOME_FAILED);
        free(src);
        reward_pool_destroy(p);
    }
    char said[512] = "";
    ssize_t n = pread(fd, said, sizeof said - 1, 0);
    said[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(tmpl);
    CHECK_MSG(strstr(said, "reward pool: rewards.workers=1000 is more than") != NULL, "stderr said [%s]", said);
}

int main(int argc, char **argv) {
    (void)argc;
    tu_mark_self(argv);
    double t0 = tu_now();
    test_many_jobs();
    test_child_and_checker_killed();
    test_exit_without_destroy();
    test_workers_clamp();
    CHECK_MSG(tu_wait_unmarked(tu_mark, 3.0) == 0, "processes remain after every pool was destroyed");
    const char *bin = getenv("GRPO2048_BIN");
    struct stat sb;
    if (bin && stat(bin, &sb) == 0 && (sb.st_mode & S_IXUSR))
        test_trainer_exit(bin);
    else
        printf("GRPO2048_BIN not set or not built: skipping the tests through the grpo2048 binary\n");
    printf("test_resilience: %.2f s\n", tu_now() - t0);
    return TEST_DONE();
}
