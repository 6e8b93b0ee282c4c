/*
 * rewards/worker.c: a reward worker — a single-threaded process forked from the zygote (so CPython is
 * already running in it) that takes jobs from the trainer one at a time and runs each in a fresh,
 * sandboxed child.
 *
 * Per job (run_job): fork a child (run_child), which enters the sandbox (sandbox.c) and runs the
 * checks and games (pyrunner.c), writing token-stamped records to a pipe. The worker, not the child,
 * enforces the wall clock, since code inside the child can defeat any timer there:
 *   - deadlines: REWARD_CHECK_ALLOWANCE seconds until the check record, then per game cfg->timeout +
 *     REWARD_KILL_GRACE from the previous record (the child stops a game itself at cfg->timeout when the
 *     strategy keeps returning; the grace lets that happen first), and a job deadline of
 *     REWARD_CHECK_ALLOWANCE + G × (timeout + grace) over everything;
 *   - poll on the pipe until the deadline, then killpg(SIGKILL); always waitpid; then drain the pipe.
 * A child that dies mid-game (killed at its deadline, a signal, a seccomp kill, MemoryError outside the
 * strategy's call, exit without reporting, corrupt records) loses only that game: the game gets the
 * death's outcome and the remaining games continue in a new child (which checks the source again),
 * while the job deadline holds. A child that dies during the checks takes all remaining games along.
 *
 * Death → outcome: killed at our deadline or SIGXCPU (RLIMIT_CPU) → timeout; any other signal
 * (SIGSYS from seccomp, SIGSEGV, a SIGKILL from elsewhere) → crash "crash: signal N (name)"; exit
 * without the expected records, a record with a wrong token, kind or order, a truncated record, or more
 * records than expected → crash. A MemoryError inside the strategy is reported by the child (memory).
 */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/pool_internal.h"

/* What one child run delivered. */
typedef struct {
    int check_seen;          /* the RW_REC_CHECK record arrived */
    int check;               /* its value */
    char check_error[RW_ERROR_LEN];
    int next_game;           /* index of the next game record expected */
    int complete;            /* every expected record arrived (check failed, or all games) */
    int died;                /* the child ended before completing */
    int unfair;              /* killed at a deadline that an arrived record had already moved on */
    int job_time_out;        /* killed at the job deadline */
    reward_outcome death;    /* outcome for the game the child died in */
    char death_error[REWARD_GAME_ERROR_LEN];
    double phase_start;      /* when the current phase (checks or the game in progress) began */
    double death_time;
} child_run;

static struct timespec to_timespec(double s) {
    if (s < 0) s = 0;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    return ts;
}

/* Applies the complete records in buf; returns -1 on a corrupt stream (message in cr->death_error). */
static int consume(const reward_config *cfg, uint64_t token, char *buf, size_t *have, reward_game *games,
                   child_run *cr, double *deadline) {
    int G = cfg->games_per_strategy;
    size_t off = 0;
    while (*have - off >= sizeof(rw_child_record)) {
        rw_child_record rec;
        memcpy(&rec, buf + off, sizeof rec);
        off += sizeof rec;
        double now = rw_now();
        rec.game.error[sizeof rec.game.error - 1] = '\0';
        if (rec.token != token || cr->complete) {
            snprintf(cr->death_error, sizeof cr->death_error,
                     "crash: corrupt result stream (bytes written to the result pipe by the strategy?)");
            return -1;
        }
        if (rec.kind == RW_REC_SETUP_FAILED) {
            snprintf(cr->death_error, sizeof cr->death_error, "crash: sandbox setup failed: %.120s", rec.game.error);
            return -1;
        } else if (rec.kind == RW_REC_CHECK && !cr->check_seen) {
            cr->check_seen = 1;
            cr->check = rec.value;
            snprintf(cr->check_error, sizeof cr->check_error, "%s", rec.game.error);
            if (rec.value != RW_CHECK_OK) cr->complete = 1;
            else if (cr->next_game >= G) cr->complete = 1;
        } else if (rec.kind == RW_REC_GAME && cr->check_seen && cr->check == RW_CHECK_OK &&
                   rec.value == cr->next_game && rec.value < G && (int)rec.game.outcome >= 0 &&
                   rec.game.outcome <= OUTCOME_CRASH) {
            uint64_t seed = games[rec.value].seed;
            games[rec.value] = rec.game;
            games[rec.value].seed = seed;
            cr->next_game++;
            if (cr->next_game >= G) cr->complete = 1;
        } else {
            snprintf(cr->death_error, sizeof cr->death_error, "crash: unexpected result record (kind %u)",
                     rec.kind);
            return -1;
        }
        cr->phase_start = now;
        *deadline = now + cfg->timeout + REWARD_KILL_GRACE;
    }
    memmove(buf, buf + off, *have - off);
    *have -= off;
    return 0;
}

/* Runs games first .. G-1 (after the checks) in one sandboxed child; fills games[] and *cr. */
static void run_child(const reward_config *cfg, const char *src, size_t len, uint64_t seed, int first,
                      double job_deadline, reward_game *games, child_run *cr) {
    memset(cr, 0, sizeof *cr);
    cr->next_game = first;
    cr->check = RW_CHECK_OK;
    cr->phase_start = rw_now();
    int G = cfg->games_per_strategy;

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: worker cannot create a pipe: %s", strerror(errno));
        cr->death_time = rw_now();
        return;
    }
    uint64_t token = 0;
    if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
        token = game_seed_mix((uint64_t)(rw_now() * 1e9), (uint64_t)getpid(), (uint64_t)first);
    rw_child_job job = {cfg, src, len, seed, first};
    pid_t me = getpid();

    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        /* The result pipe goes to SANDBOX_RESULT_FD (over our copy of the job socket, which the
         * child must not keep anyway), where the seccomp template allows writes. */
        close(pfd[0]);
        if (dup2(pfd[1], SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD) _exit(5);
        close(pfd[1]);
        sandbox_limits lim = {SANDBOX_RESULT_FD, me,
                              REWARD_CHECK_ALLOWANCE + (G - first) * (cfg->timeout + REWARD_KILL_GRACE) + 1.0,
                              cfg->memory_limit};
        char err[REWARD_GAME_ERROR_LEN];
        if (sandbox_enter(&lim, err, sizeof err) != 0) {
            rw_child_record rec;
            memset(&rec, 0, sizeof rec);
            rec.token = token;
            rec.kind = RW_REC_SETUP_FAILED;
            snprintf(rec.game.error, sizeof rec.game.error, "%s", err);
            (void)rw_write_all(SANDBOX_RESULT_FD, &rec, sizeof rec, 0);
            _exit(4);
        }
        PyOS_AfterFork_Child();
        pyrunner_run(&job, SANDBOX_RESULT_FD, token);
        _exit(0);
    }
    PyOS_AfterFork_Parent();
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: worker cannot fork: %s", strerror(errno));
        cr->death_time = rw_now();
        return;
    }
    setpgid(pid, pid);   /* also done by the child; whichever runs first makes killpg safe */

    char buf[4 * sizeof(rw_child_record)];
    size_t have = 0;
    double deadline = cr->phase_start + REWARD_CHECK_ALLOWANCE;
    int killed = 0, corrupt = 0, eof = 0;
    int progress_at_deadline = 0;   /* records seen when the deadline that fired was set */
    int progress = 0;
    for (;;) {
        double dl = deadline < job_deadline ? deadline : job_deadline;
        double now = rw_now();
        if (now >= dl) {
            killed = 1;
            cr->job_time_out = job_deadline <= deadline;
            progress_at_deadline = progress;
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        struct timespec ts = to_timespec(dl - now);
        int r = ppoll(&p, 1, &ts, NULL);
        if (r < 0 && errno != EINTR) RW_ABORT("ppoll: %s", strerror(errno));
        if (r <= 0) continue;
        ssize_t n = read(pfd[0], buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { eof = 1; break; }
        have += (size_t)n;
        int before = cr->check_seen + cr->next_game;
        if (consume(cfg, token, buf, &have, games, cr, &deadline) != 0) { corrupt = 1; break; }
        progress += cr->check_seen + cr->next_game - before;
        if (cr->complete) break;
    }
    cr->death_time = rw_now();
    int st = 0, reaped = 0;
    if (killed || corrupt) {
        killpg(pid, SIGKILL);
        kill(pid, SIGKILL);
    } else if (eof && !cr->complete) {
        /* The pipe closed early: the child is dying, or the strategy closed the fd and runs on. Wait for
         * its exit until the deadline (1 ms polls: this path is rare). */
        for (;;) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) { reaped = 1; break; }
            if (w < 0 && errno != EINTR) RW_ABORT("waitpid: %s", strerror(errno));
            double now = rw_now();
            double dl = deadline < job_deadline ? deadline : job_deadline;
            if (now >= dl) {
                killed = 1;
                cr->job_time_out = job_deadline <= deadline;
                progress_at_deadline = progress;
                killpg(pid, SIGKILL);
                kill(pid, SIGKILL);
                break;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        cr->death_time = rw_now();
    }
    while (!reaped && waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) RW_ABORT("waitpid: %s", strerror(errno));
    }
    /* The child is gone and nobody else holds the write end: read what it managed to send. */
    if (!corrupt) {
        for (;;) {
            ssize_t n = read(pfd[0], buf + have, sizeof buf - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            int before = cr->check_seen + cr->next_game;
            if (consume(cfg, token, buf, &have, games, cr, &deadline) != 0) { corrupt = 1; break; }
            progress += cr->check_seen + cr->next_game - before;
        }
        if (!corrupt && have != 0) {
            corrupt = 1;
            snprintf(cr->death_error, sizeof cr->death_error, "crash: truncated result record");
        }
    }
    close(pfd[0]);
    if (cr->complete && !corrupt) return;
    cr->died = 1;
    if (corrupt) {
        cr->death = OUTCOME_CRASH;
    } else if (killed) {
        cr->unfair = !cr->job_time_out && progress > progress_at_deadline;
        cr->death = OUTCOME_TIMEOUT;
        if (cr->job_time_out)
            snprintf(cr->death_error, sizeof cr->death_error, "timeout: the job's %.3g s ran out",
                     REWARD_CHECK_ALLOWANCE + G * (cfg->timeout + REWARD_KILL_GRACE));
        else if (!cr->check_seen)
            snprintf(cr->death_error, sizeof cr->death_error, "timeout: the checks took longer than %g s",
                     REWARD_CHECK_ALLOWANCE);
        else
            snprintf(cr->death_error, sizeof cr->death_error, "timeout: game took longer than %g s (killed)",
                     cfg->timeout);
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU) {
        cr->death = OUTCOME_TIMEOUT;
        snprintf(cr->death_error, sizeof cr->death_error, "timeout: CPU time limit");
    } else if (WIFSIGNALED(st)) {
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: signal %d (%s%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)), WTERMSIG(st) == SIGSYS ? ": forbidden system call" : "");
    } else {
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: exited with status %d before reporting its result",
                 WEXITSTATUS(st));
    }
}

/* Marks games [from, G) with outcome o and message msg, seconds `secs` for the first of them. */
static void fill_games(reward_game *games, int from, int G, reward_outcome o, const char *msg, double secs) {
    for (int g = from; g < G; g++) {
        uint64_t seed = games[g].seed;
        memset(&games[g], 0, sizeof games[g]);
        games[g].seed = seed;
        games[g].outcome = o;
        games[g].seconds = g == from ? secs : 0.0;
        snprintf(games[g].error, sizeof games[g].error, "%s", msg);
    }
}

/* Runs one job: the checks and cfg->games_per_strategy games, restarting the child after a death. */
static void run_job(const reward_config *cfg, const char *src, size_t len, uint64_t seed, rw_result_header *h,
                    reward_game *games) {
    int G = cfg->games_per_strategy;
    double t0 = rw_now();
    double job_deadline = t0 + REWARD_CHECK_ALLOWANCE + G * (cfg->timeout + REWARD_KILL_GRACE);
    for (int g = 0; g < G; g++) {
        memset(&games[g], 0, sizeof games[g]);
        games[g].seed = game_seed_mix(seed, (uint64_t)g, 0);
    }
    h->check = RW_CHECK_OK;
    h->error[0] = '\0';
    int first = 0;
    while (first < G) {
        child_run cr;
        run_child(cfg, src, len, seed, first, job_deadline, games, &cr);
        if (cr.check_seen && cr.check != RW_CHECK_OK) {
            h->check = cr.check;
            snprintf(h->error, sizeof h->error, "%s", cr.check_error);
            break;
        }
        if (!cr.died) break;   /* every game reported */
        double secs = cr.death_time - cr.phase_start;
        if (!cr.check_seen) {
            /* Died during the checks: a new child would die the same way. */
            fill_games(games, first, G, cr.death, cr.death_error, cr.death_time - t0);
            break;
        }
        int k = cr.next_game;
        if (k >= G) break;
        if (cr.job_time_out) {
            fill_games(games, k, G, OUTCOME_TIMEOUT, cr.death_error, secs);
            break;
        }
        if (!cr.unfair) {
            fill_games(games, k, k + 1, cr.death, cr.death_error, secs);
            k++;
        }
        first = k;
    }
    h->seconds = rw_now() - t0;
}

void worker_main(int sock, const reward_config *cfg, pid_t zygote_pid) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != zygote_pid) _exit(0);
    PyOS_AfterFork_Child();
    int G = cfg->games_per_strategy;
    char *src = malloc(REWARD_MAX_SOURCE);
    reward_game *games = calloc((size_t)G, sizeof *games);
    if (!src || !games) _exit(2);
    for (;;) {
        rw_job_header jh;
        int r = rw_read_all(sock, &jh, sizeof jh);
        if (r == 0) _exit(0);   /* the trainer closed our socket: the pool is shutting down */
        if (r < 0 || jh.magic != RW_JOB_MAGIC || jh.source_len > REWARD_MAX_SOURCE) _exit(2);
        if (rw_read_all(sock, src, jh.source_len) != 1) _exit(2);
        rw_result_header h;
        memset(&h, 0, sizeof h);
        h.magic = RW_RESULT_MAGIC;
        h.job_id = jh.job_id;
        h.games = G;
        run_job(cfg, src, jh.source_len, jh.seed, &h, games);
        if (rw_write_all(sock, &h, sizeof h, 1) != 0 || rw_write_all(sock, games, (size_t)G * sizeof *games, 1) != 0)
            _exit(0);
    }
}
