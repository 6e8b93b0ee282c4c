/*
 * rewards/worker.c: a reward worker — a single-threaded process forked from the zygote (so CPython is
 * already running in it) that takes jobs from the trainer one at a time and runs each in a fresh,
 * sandboxed child.
 *
 * Per job (run_job):
 *   1. the checks. The source's verdict (syntax, structure, imports) and compiled code come from the
 *      worker's check cache (an exact-source LRU), or else from the worker's checker: a long-lived
 *      sandboxed child (same sandbox as a job's child) that only parses, checks, compiles and marshals
 *      sources and never runs them. Being long-lived, its memory is its own: checks there cost no
 *      copy-on-write page-copy storm, which in a freshly forked child is the largest part of a job's
 *      overhead. A failed verdict ends the job here, without forking anything. If the checker cannot
 *      answer (it died, or could not start) the job's child runs the checker itself, as a fallback.
 *   2. fork a child (run_child), which enters the sandbox (sandbox.c), unmarshals and builds the
 *      function and plays the games (pyrunner.c), writing token-stamped records to a pipe.
 * The worker, not the child, enforces the wall clock, since code inside the child can defeat any timer
 * there:
 *   - deadlines: REWARD_CHECK_ALLOWANCE seconds for the checker's answer and again until the child's
 *     CHECK record, then per game cfg->timeout + REWARD_KILL_GRACE from the previous record's time stamp
 *     (the child stops a game itself at cfg->timeout when the strategy keeps returning; the grace lets
 *     that happen first), and a job deadline of REWARD_CHECK_ALLOWANCE + G × (timeout + grace) over
 *     everything;
 *   - after the CHECK record the worker sleeps until the deadline or until the pipe's write end closes
 *     (the child closes it after its last record, or dies), without waking for each game record
 *     (records queue in the pipe, sized to hold them all); at the deadline it reads what arrived, and
 *     kills the process group (killpg(SIGKILL)) only when no record moved the deadline on; it always
 *     reaps the child.
 *   - a child that completed is reaped right after the result went to the trainer, so the trainer does
 *     not wait for its exit (tearing down a copy of a CPython heap: ~0.1-0.3 ms).
 * A child that dies mid-game (killed at its deadline, a signal, a seccomp kill, MemoryError outside the
 * strategy's call, exit without reporting, corrupt records) loses only that game: the game gets the
 * death's outcome and the remaining games continue in a new child, while the job deadline holds. A child
 * that dies during the checks takes all remaining games along.
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
    int verdict;             /* the checker's RW_VERDICT_* from the CHECK record (NONE until then) */
    double t_checked;        /* child's clock at the CHECK record */
    double t_last;           /* child's clock at its last record (0: none yet) */
    int64_t minflt;          /* the child's page faults at its last record */
} child_run;

static struct timespec to_timespec(double s) {
    if (s < 0) s = 0;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    return ts;
}

static uint64_t draw_token(uint64_t salt) {
    uint64_t token = 0;
    if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
        token = game_seed_mix((uint64_t)(rw_now() * 1e9), (uint64_t)getpid(), salt);
    return token;
}

/* ---- completed children, reaped later ----
 * A child that sent every record and closed its pipe is exiting: it is SIGKILLed (a no-op for a process
 * on its way out, a guarantee otherwise) and reaped once the result went to the trainer, so the trainer
 * does not wait for its teardown. (Reaping even later, overlapping the teardown with the next fork, was
 * measured slower: both take the worker's memory-map locks.) */
#define MAX_UNREAPED 4
static pid_t unreaped[MAX_UNREAPED];
static int n_unreaped;

/* Reaps the children left by run_child: those already gone (block = 0), or all of them (block = 1). */
static void reap_later(int block) {
    for (int i = 0; i < n_unreaped;) {
        pid_t r;
        do r = waitpid(unreaped[i], NULL, block ? 0 : WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) { i++; continue; }
        if (r < 0 && errno != ECHILD) RW_ABORT("waitpid: %s", strerror(errno));
        unreaped[i] = unreaped[--n_unreaped];
    }
}

static void leave_unreaped(pid_t pid) {
    killpg(pid, SIGKILL);
    kill(pid, SIGKILL);
    if (n_unreaped == MAX_UNREAPED) reap_later(1);
    unreaped[n_unreaped++] = pid;
}

/* ---- the checker ---- */
#define CHECKER_MAX_CHECKS 1000   /* a checker is replaced after this many checks (bounds heap growth) */

static struct {
    pid_t pid;               /* 0: none running */
    int req;                 /* write end of its request pipe */
    int resp;                /* read end of its response pipe (non-blocking) */
    uint64_t token;
    int checks;              /* answered by this checker */
    int failures;            /* consecutive failures to start or to answer */
    int skipped;             /* jobs checked in their child since the third failure */
} checker;

static void checker_stop(void) {
    if (checker.pid <= 0) return;
    close(checker.req);
    close(checker.resp);
    killpg(checker.pid, SIGKILL);
    kill(checker.pid, SIGKILL);
    while (waitpid(checker.pid, NULL, 0) < 0 && errno == EINTR) {}
    checker.pid = 0;
}

/* Moves fd to a number ≥ 10 (so that the dup2s to 3 and 4 below cannot clobber each other). */
static int move_high(int fd) {
    int h = fcntl(fd, F_DUPFD, 10);
    if (h < 0) _exit(5);
    return h;
}

static int checker_start(const reward_config *cfg) {
    int rq[2], rs[2];
    if (pipe2(rq, O_CLOEXEC) != 0) return -1;
    if (pipe2(rs, O_CLOEXEC) != 0) { close(rq[0]); close(rq[1]); return -1; }
    uint64_t token = draw_token(0x636865636bull);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int out = move_high(rs[1]), in = move_high(rq[0]);
        if (dup2(out, SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD || dup2(in, SANDBOX_INPUT_FD) != SANDBOX_INPUT_FD)
            _exit(5);
        sandbox_limits lim = {SANDBOX_RESULT_FD, SANDBOX_INPUT_FD, me,
                              CHECKER_MAX_CHECKS * REWARD_CHECK_ALLOWANCE + 1.0, cfg->memory_limit, 0};
        char err[REWARD_GAME_ERROR_LEN];
        if (sandbox_enter(&lim, err, sizeof err) != 0) _exit(4);   /* the worker sees EOF: no checker */
        pyrunner_checker_main(SANDBOX_INPUT_FD, SANDBOX_RESULT_FD, token);
    }
    close(rq[0]);
    close(rs[1]);
    if (pid < 0) {
        close(rq[1]);
        close(rs[0]);
        return -1;
    }
    setpgid(pid, pid);
    fcntl(rs[0], F_SETFL, O_NONBLOCK);
    checker.pid = pid;
    checker.req = rq[1];
    checker.resp = rs[0];
    checker.token = token;
    checker.checks = 0;
    return 0;
}

/* Reads exactly n bytes from the non-blocking fd before the deadline. 1: done; 0: EOF or an error;
 * -1: the deadline passed. */
static int read_by(int fd, void *buf, size_t n, double deadline) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r > 0) { got += (size_t)r; continue; }
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return 0;
        double now = rw_now();
        if (now >= deadline) return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        struct timespec ts = to_timespec(deadline - now);
        if (ppoll(&pf, 1, &ts, NULL) < 0 && errno != EINTR) RW_ABORT("ppoll: %s", strerror(errno));
    }
    return 1;
}

/* Asks the checker about src. Returns 1 with *rs and, for RW_VERDICT_OK, the marshalled code in
 * *code (malloc'd); 0 when the checker failed for its own reasons (could not start, died, broke the
 * protocol: the child then checks the source itself); -1 when the check ran past the deadline (the
 * source made the checker spin: the checker is killed). */
static int checker_ask(const reward_config *cfg, const char *src, size_t len, double deadline,
                       rw_check_response *rs, char **code) {
    *code = NULL;
    if (checker.pid > 0 && checker.checks >= CHECKER_MAX_CHECKS) checker_stop();
    if (checker.pid <= 0) {
        /* After three failures in a row, try again only every 100 jobs (no restart storm; the job's
         * child checks the source meanwhile). */
        if (checker.failures >= 3 && ++checker.skipped < 100) return 0;
        checker.skipped = 0;
        if (checker_start(cfg) != 0) {
            checker.failures++;
            return 0;
        }
    }
    rw_check_request rq = {RW_CHECK_MAGIC, (uint32_t)len};
    if (rw_write_all(checker.req, &rq, sizeof rq, 0) != 0 || rw_write_all(checker.req, src, len, 0) != 0) {
        checker_stop();
        checker.failures++;
        return 0;
    }
    int r = read_by(checker.resp, rs, sizeof *rs, deadline);
    if (r == 1 && (rs->token != checker.token || rs->code_len > RW_MAX_CODE ||
                   (rs->code_len > 0) != (rs->verdict == RW_VERDICT_OK) || rs->verdict < RW_VERDICT_NONE ||
                   rs->verdict > RW_VERDICT_BANNED))
        r = 0;
    if (r == 1 && rs->code_len > 0) {
        *code = malloc(rs->code_len);
        r = *code ? read_by(checker.resp, *code, rs->code_len, deadline) : 0;
    }
    if (r != 1) {
        free(*code);
        *code = NULL;
        checker_stop();
        if (r == 0) checker.failures++;
        return r;
    }
    rs->msg[sizeof rs->msg - 1] = '\0';
    checker.checks++;
    checker.failures = 0;
    return 1;
}

/* ---- the check cache ----
 * The checker's verdict and code are a pure function of the source text, so each worker remembers them
 * for the last CHECK_CACHE_ENTRIES sources of at most CHECK_CACHE_MAX_SOURCE bytes (exact byte
 * comparison, not just a hash: no collision can borrow another source's verdict). A source seen failing
 * is answered without a child; one seen passing goes straight to a child with its code. The build (exec
 * of the definition) runs strategy code — annotations — and is never cached. */
#define CHECK_CACHE_ENTRIES 64
#define CHECK_CACHE_MAX_SOURCE 16384

typedef struct {
    uint64_t hash;
    uint32_t len;            /* 0: empty slot */
    int32_t verdict;         /* RW_VERDICT_OK, _SYNTAX, _STRUCTURE or _BANNED */
    uint64_t used;           /* LRU clock */
    char *src;
    char *code;              /* marshalled code (verdict OK), malloc'd */
    size_t code_len;
    char msg[RW_ERROR_LEN];
} cache_entry;

static cache_entry check_cache[CHECK_CACHE_ENTRIES];
static uint64_t cache_clock;

/* FNV-1a, 64 bits (Fowler, Noll, Vo): a bucket hint only; entries compare the whole source. */
static uint64_t source_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static cache_entry *cache_find(const char *src, size_t len, uint64_t hash) {
    if (len == 0 || len > CHECK_CACHE_MAX_SOURCE) return NULL;
    for (int i = 0; i < CHECK_CACHE_ENTRIES; i++) {
        cache_entry *e = &check_cache[i];
        if (e->len == len && e->hash == hash && !memcmp(e->src, src, len)) {
            e->used = ++cache_clock;
            return e;
        }
    }
    return NULL;
}

/* Remembers a verdict and, for OK, its code (malloc'd). Returns the entry, which then owns code; or NULL
 * (not cached: too long, not a verdict, or no memory), and code stays the caller's. */
static cache_entry *cache_put(const char *src, size_t len, uint64_t hash, const rw_check_response *rs, char *code) {
    if (len == 0 || len > CHECK_CACHE_MAX_SOURCE || rs->verdict == RW_VERDICT_NONE) return NULL;
    cache_entry *victim = &check_cache[0];
    for (int i = 0; i < CHECK_CACHE_ENTRIES; i++) {
        if (check_cache[i].len == 0) { victim = &check_cache[i]; break; }
        if (check_cache[i].used < victim->used) victim = &check_cache[i];
    }
    char *copy = victim->len >= len ? victim->src : realloc(victim->src, len);
    if (!copy) return NULL;   /* no memory: simply not cached */
    memcpy(copy, src, len);
    free(victim->code);
    victim->src = copy;
    victim->len = (uint32_t)len;
    victim->hash = hash;
    victim->verdict = rs->verdict;
    victim->code = code;
    victim->code_len = code ? rs->code_len : 0;
    victim->used = ++cache_clock;
    snprintf(victim->msg, sizeof victim->msg, "%s", rs->msg);
    return victim;
}

/* The check outcome of a failed verdict. */
static int verdict_outcome(int verdict) {
    switch (verdict) {
    case RW_VERDICT_SYNTAX: return OUTCOME_SYNTAX_ERROR;
    case RW_VERDICT_BANNED: return OUTCOME_BANNED_IMPORT;
    case RW_VERDICT_STRUCTURE: case RW_VERDICT_NONE: return OUTCOME_BUILD_FAILED;
    default: RW_ABORT("verdict_outcome: verdict %d is not a failure", verdict);
    }
}

/* ---- one child ---- */

/* Applies the complete records in buf; returns -1 on a corrupt stream (message in cr->death_error). */
static int consume(const reward_config *cfg, uint64_t token, char *buf, size_t *have, reward_game *games,
                   child_run *cr, double *deadline, double t_fork, rw_job_timing *tm) {
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
            cr->verdict = rec.verdict;
            cr->t_checked = rec.t_checked;
            tm->fork += rec.t_start - t_fork;
            tm->sandbox += rec.t_sandboxed - rec.t_start;
            tm->check += rec.t_checked - rec.t_sandboxed;
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
        /* The next phase's clock starts when the record was written (read later: the worker sleeps). */
        double t = rec.t_sent;
        if (!(t <= now && t >= cr->phase_start)) t = now;
        cr->phase_start = t;
        cr->t_last = t;
        cr->minflt = rec.minflt;
        *deadline = t + cfg->timeout + REWARD_KILL_GRACE;
    }
    memmove(buf, buf + off, *have - off);
    *have -= off;
    return 0;
}

/* Reads what the (non-blocking) pipe holds and applies it. Returns 1 at EOF, 0 when the pipe is empty,
 * -1 on a corrupt stream. *progress counts the records applied. */
static int drain(int fd, const reward_config *cfg, uint64_t token, char *buf, size_t bufsize, size_t *have,
                 reward_game *games, child_run *cr, double *deadline, double t_fork, rw_job_timing *tm,
                 int *progress) {
    for (;;) {
        ssize_t n = read(fd, buf + *have, bufsize - *have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) return 1;
        *have += (size_t)n;
        int before = cr->check_seen + cr->next_game;
        if (consume(cfg, token, buf, have, games, cr, deadline, t_fork, tm) != 0) return -1;
        *progress += cr->check_seen + cr->next_game - before;
    }
}

/* Runs games first .. G-1 (after the checks; code: the checker's marshalled code for the source, or
 * NULL) in one sandboxed child; fills games[] and *cr, and adds the child's timings to *tm. */
static void run_child(const reward_config *cfg, const char *src, size_t len, const char *code, size_t code_len,
                      uint64_t seed, int first, double job_deadline, reward_game *games, child_run *cr,
                      rw_job_timing *tm) {
    memset(cr, 0, sizeof *cr);
    cr->next_game = first;
    cr->check = RW_CHECK_OK;
    cr->verdict = RW_VERDICT_NONE;
    cr->phase_start = rw_now();
    double t_fork = cr->phase_start;
    tm->children++;
    int G = cfg->games_per_strategy;
    reap_later(1);   /* a child tearing down while we fork contends for the same memory-map locks */

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: worker cannot create a pipe: %s", strerror(errno));
        cr->death_time = rw_now();
        return;
    }
    /* The worker sleeps while the child plays, so the pipe must hold every record the child may write
     * (else the child would block until the deadline wakes us); if it cannot be made that large, the
     * worker wakes for each record instead. */
    size_t need = (size_t)(G - first + 2) * sizeof(rw_child_record);
    int lazy = need <= 65536 || fcntl(pfd[0], F_SETPIPE_SZ, (int)(need + 4096)) >= (int)need;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);   /* the read end only: the child's writes stay blocking */
    uint64_t token = draw_token((uint64_t)first);
    rw_child_job job = {cfg, src, len, code, code_len, seed, first, 0.0, 0.0};
    pid_t me = getpid();
    /* The child's RLIMIT_AS counts from our address-space size now (its own, right after the fork):
     * read here through an open statm, cheaper than the child's path lookup in /proc. */
    static int statm_fd = -2;
    if (statm_fd == -2) statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    size_t as_base = sandbox_address_space(statm_fd);

    /* No PyOS_BeforeFork / PyOS_AfterFork_*: the worker is single-threaded and forks from C code, so no
     * interpreter lock (GIL, import lock, runtime mutexes) is held or contended at this point, and the
     * child neither starts threads nor needs the at-fork hooks (random's reseed from the OS: every game
     * reseeds random itself). PyOS_AfterFork_Child would cost ~80 copy-on-write page faults per job. */
    pid_t pid = fork();
    if (pid == 0) {
        job.t_start = rw_now();
        /* The result pipe goes to SANDBOX_RESULT_FD (over our copy of the job socket, which the
         * child must not keep anyway), where the seccomp template allows writes. */
        close(pfd[0]);
        if (dup2(pfd[1], SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD) _exit(5);
        close(pfd[1]);
        sandbox_limits lim = {SANDBOX_RESULT_FD, -1, me,
                              REWARD_CHECK_ALLOWANCE + (G - first) * (cfg->timeout + REWARD_KILL_GRACE) + 1.0,
                              cfg->memory_limit, as_base};
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
        job.t_sandboxed = rw_now();
        pyrunner_run(&job, SANDBOX_RESULT_FD, token);
        _exit(0);
    }
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
            /* Records may be waiting that move the deadline on: read them before deciding. */
            int d = drain(pfd[0], cfg, token, buf, sizeof buf, &have, games, cr, &deadline, t_fork, tm, &progress);
            if (d < 0) { corrupt = 1; break; }
            if (cr->complete) break;
            if (d > 0) { eof = 1; break; }
            dl = deadline < job_deadline ? deadline : job_deadline;
            if (now >= dl) {
                killed = 1;
                cr->job_time_out = job_deadline <= deadline;
                progress_at_deadline = progress;
                break;
            }
            continue;
        }
        /* Until the CHECK record, wake for it (the first game's deadline counts from it and may come
         * before the check allowance's). After it, lazy: events 0, and poll still reports POLLHUP when
         * the child closes the pipe or dies; game deadlines only ever move later. */
        struct pollfd p = {pfd[0], lazy && cr->check_seen ? 0 : POLLIN, 0};
        struct timespec ts = to_timespec(dl - now);
        int r = ppoll(&p, 1, &ts, NULL);
        if (r < 0 && errno != EINTR) RW_ABORT("ppoll: %s", strerror(errno));
        if (r <= 0) continue;
        int d = drain(pfd[0], cfg, token, buf, sizeof buf, &have, games, cr, &deadline, t_fork, tm, &progress);
        if (d < 0) { corrupt = 1; break; }
        if (cr->complete) break;
        if (d > 0) { eof = 1; break; }
    }
    cr->death_time = rw_now();
    int st = 0, reaped = 0;
    if (cr->complete && !corrupt) {
        /* Everything arrived. Anything more in the pipe is a forgery or junk: the strategy's, charged to
         * its job (the child closes the pipe right after its last record). */
        char extra;
        ssize_t x = read(pfd[0], &extra, 1);
        if (x > 0) {
            corrupt = 1;
            snprintf(cr->death_error, sizeof cr->death_error, "crash: bytes after the last result record");
        }
    }
    if (cr->complete && !corrupt) {
        reaped = 1;   /* left to reap_later below */
    } else if (killed || corrupt) {
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
    /* The child is gone (or done) and nobody else holds the write end: read what it managed to send. */
    if (!corrupt && !cr->complete) {
        if (drain(pfd[0], cfg, token, buf, sizeof buf, &have, games, cr, &deadline, t_fork, tm, &progress) < 0)
            corrupt = 1;
        else if (have != 0) {
            corrupt = 1;
            snprintf(cr->death_error, sizeof cr->death_error, "crash: truncated result record");
        }
    }
    close(pfd[0]);
    /* Where the time went: play ends at the last record (or at the death), finish when the worker is
     * done with the child (reaped, or left to reap_later). */
    double t_done = rw_now();
    double end = cr->complete && !corrupt && cr->t_last > 0 ? cr->t_last : cr->death_time;
    if (cr->check_seen && cr->check == RW_CHECK_OK) tm->play += end - cr->t_checked;
    tm->finish += t_done - end;
    tm->minflt += cr->minflt;
    if (cr->complete && !corrupt) {
        leave_unreaped(pid);
        return;
    }
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
    memset(&h->timing, 0, sizeof h->timing);

    /* 1. The verdict and code: from the cache, else from the checker. */
    uint64_t hash = source_hash(src, len);
    const char *code = NULL;
    size_t code_len = 0;
    char *fresh = NULL;       /* code from the checker that the cache did not take */
    int verdict = RW_VERDICT_OK, answered = 0;
    char msg[RW_ERROR_LEN] = "";
    const cache_entry *known = cache_find(src, len, hash);
    if (known) {
        answered = 1;
        h->timing.cached = 1;
        verdict = known->verdict;
        snprintf(msg, sizeof msg, "%s", known->msg);
        code = known->code;
        code_len = known->code_len;
    } else {
        double t_ask = rw_now();
        rw_check_response rs;
        char *got;
        int a = checker_ask(cfg, src, len, t_ask + REWARD_CHECK_ALLOWANCE, &rs, &got);
        h->timing.check += rw_now() - t_ask;
        if (a < 0) {
            char e[REWARD_GAME_ERROR_LEN];
            snprintf(e, sizeof e, "timeout: the checks took longer than %g s", REWARD_CHECK_ALLOWANCE);
            fill_games(games, 0, G, OUTCOME_TIMEOUT, e, rw_now() - t0);
            h->seconds = rw_now() - t0;
            return;
        }
        if (a > 0) {
            answered = 1;
            verdict = rs.verdict;
            snprintf(msg, sizeof msg, "%s", rs.msg);
            const cache_entry *e = cache_put(src, len, hash, &rs, got);
            if (e) {
                code = e->code;
                code_len = e->code_len;
            } else {
                code = fresh = got;
                code_len = got ? rs.code_len : 0;
            }
        }
        /* a == 0: no checker could answer; the child checks the source itself (code stays NULL). */
    }
    if (answered && verdict != RW_VERDICT_OK) {
        /* A failed check (or a checker that raised: RW_VERDICT_NONE, build_failed with its message, as
         * when the child's own checker raises). */
        h->check = verdict_outcome(verdict);
        snprintf(h->error, sizeof h->error, "%s", msg);
        h->seconds = rw_now() - t0;
        return;
    }

    /* 2. The games, in sandboxed children. */
    int first = 0;
    while (first < G) {
        child_run cr;
        run_child(cfg, src, len, code, code_len, seed, first, job_deadline, games, &cr, &h->timing);
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
    free(fresh);
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
        reap_later(1);   /* after the result is on its way; an idle worker keeps no zombie */
    }
}
