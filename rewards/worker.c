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
 *      function (pyrunner.c) and answers CHECK; then the worker PLAYS EVERY GAME ITSELF (play_child): it
 *      holds the board, the spawn RNG, the move count and the clock, sends the child each board and plays
 *      the move the child answers. The child never computes, holds or reports anything the reward is made
 *      of (a strategy must be assumed to control its whole process: hand-built code objects give it raw
 *      memory access), and never sees a game seed: seeds, games and results live in MADV_WIPEONFORK
 *      memory (worker_secret), only noinline helpers read them, and each child zeroes the dead stack
 *      below its frame before anything else (scrub_stack).
 * The worker, not the child, enforces the wall clock, since code inside the child can defeat any timer
 * there:
 *   - deadlines: REWARD_CHECK_ALLOWANCE seconds for the checker's answer and again until the child's
 *     CHECK answer; per game, cfg->timeout from the game's first board (an answer that arrives later
 *     ends the game as a timeout, keeping its moves; no answer by timeout + REWARD_KILL_GRACE: the
 *     process group is killed), and a job deadline of REWARD_CHECK_ALLOWANCE + G × (timeout + grace);
 *   - a child that completed is reaped right after the result went to the trainer, so the trainer does
 *     not wait for its exit (tearing down a copy of a CPython heap: ~0.1-0.3 ms).
 * A child that dies mid-game (killed at its deadline, a signal, a seccomp kill, an exit) or breaks the
 * protocol (an answer out of turn, a wrong kind, a move that is not one, a board it does not read) loses
 * only that game: the game gets the outcome and the remaining games continue in a new child, while the
 * job deadline holds. A child that dies during the checks takes all remaining games along.
 *
 * Death → outcome, by what really happened: killed by us at a deadline → timeout; SIGXCPU → timeout only
 * when the child's CPU time (wait4's rusage) reached its RLIMIT_CPU, else crash (the strategy signalled
 * itself); any other signal (SIGSYS from seccomp, SIGSEGV, a SIGKILL from elsewhere) → crash "crash:
 * signal N (name)"; an exit before its answers → crash. Messages from the child (exception text, an
 * invalid return's description) are stored escaped (reward_escape_text).
 */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/pool_internal.h"


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

static void scrub_stack(void);

static int checker_start(const reward_config *cfg) {
    int rq[2], rs[2];
    if (pipe2(rq, O_CLOEXEC) != 0) return -1;
    if (pipe2(rs, O_CLOEXEC) != 0) { close(rq[0]); close(rq[1]); return -1; }
    uint64_t token = draw_token(0x636865636bull);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        scrub_stack();
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

/* ---- the secrets: what a child must never see ----
 * The job's seed, every game's seed, the game in play (its RNG predicts every spawn) and the results
 * (which carry the seeds) live in one mapping marked MADV_WIPEONFORK: a child (job or checker) forked
 * from this worker sees zeros there. Only the helpers below (noinline) read a seed, so no frame that is
 * live at a fork (worker_main, run_job, run_child) holds one, and each child zeroes the dead stack
 * below its frame (scrub_stack) before anything else: the helpers' old frames lie there. */
typedef struct {
    rw_job_header jh;        /* the job as read from the trainer, seed included */
    game2048 game;           /* the game in play */
    reward_game games[];     /* (G,) the job's results, seeds included */
} worker_secret;

static worker_secret *secret;

/* Maps the secret area for G games. Returns 0, or -1 when the kernel lacks MADV_WIPEONFORK (Linux < 4.14):
 * then no worker can run safely. */
static int worker_secret_map(int G) {
    size_t sz = sizeof(worker_secret) + (size_t)G * sizeof(reward_game);
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    if (madvise(p, sz, MADV_WIPEONFORK) != 0) {
        munmap(p, sz);
        return -1;
    }
    secret = p;
    return 0;
}

/* Zeroes the stack below the caller's frame (in a fresh child, before any strategy or parser runs):
 * the worker's dead frames — its game helpers' temporaries included — lie there. */
__attribute__((noinline)) static void scrub_stack(void) {
    /* 64 KiB: several times deeper than any call chain of the worker below run_child's frame (the game
     * helpers, snprintf, ppoll: a few KiB); each page costs the child a page fault, so not more. */
    char buf[64 * 1024];
    explicit_bzero(buf, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Zeroes the job's results and gives each game its seed (game_seed_mix(job seed, g, 0)). */
__attribute__((noinline)) static void secret_begin_job(int G) {
    for (int g = 0; g < G; g++) {
        memset(&secret->games[g], 0, sizeof secret->games[g]);
        secret->games[g].seed = game_seed_mix(secret->jh.seed, (uint64_t)g, 0);
    }
}

/* Starts game g in secret->game and fills b with its first board (new_game = 1, py_seed). */
__attribute__((noinline)) static void secret_start_game(const reward_config *cfg, int g, rw_board_msg *b) {
    if (game_init(&secret->game, cfg->board_size, cfg->target, cfg->probability_fours, secret->games[g].seed) != 0)
        RW_ABORT("game_init rejected a validated config (size %d, target %u)", cfg->board_size, cfg->target);
    memset(b, 0, sizeof *b);
    b->kind = RW_BOARD_PLAY;
    b->new_game = 1;
    b->py_seed = rw_python_seed(secret->games[g].seed);
    b->n = secret->game.n;
    memcpy(b->cells, secret->game.cells, sizeof secret->game.cells);
}

/* Plays move mv in the game; returns game_move's result and refreshes b's cells. */
__attribute__((noinline)) static int secret_move(char mv, rw_board_msg *b) {
    int r = game_move(&secret->game, mv);
    b->new_game = 0;
    memcpy(b->cells, secret->game.cells, sizeof secret->game.cells);
    return r;
}

/* Ends game g with outcome o and msg (escaped already): copies score, tile and moves from the game. */
__attribute__((noinline)) static void secret_end_game(int g, reward_outcome o, const char *msg, double secs) {
    reward_game *r = &secret->games[g];
    r->outcome = o;
    r->score = secret->game.score;
    r->max_tile = secret->game.max_tile;
    r->moves = secret->game.moves;
    r->seconds = secs;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

/* Marks games [from, G) with outcome o and message msg, seconds `secs` for the first of them. */
__attribute__((noinline)) static void fill_games(int from, int G, reward_outcome o, const char *msg, double secs) {
    for (int g = from; g < G; g++) {
        uint64_t seed = secret->games[g].seed;
        memset(&secret->games[g], 0, sizeof secret->games[g]);
        secret->games[g].seed = seed;
        secret->games[g].outcome = o;
        secret->games[g].seconds = g == from ? secs : 0.0;
        snprintf(secret->games[g].error, sizeof secret->games[g].error, "%s", msg);
    }
}

/* ---- one child ---- */

/* Escapes a strategy's message into out and makes it start with prefix (added when missing). */
static void answer_text(char *out, size_t n, const char *prefix, const char *msg) {
    char esc[REWARD_GAME_ERROR_LEN];
    size_t ml = strnlen(msg, REWARD_GAME_ERROR_LEN - 1);
    reward_escape_text(esc, sizeof esc, msg, ml);
    size_t pl = strlen(prefix);
    if (!strncmp(esc, prefix, pl)) snprintf(out, n, "%s", esc);
    else snprintf(out, n, "%s%s", prefix, esc);
}

/* Waits until fd is readable, or hung up, or the deadline. Returns 1 readable / hung up, 0 deadline. */
static int wait_readable(int fd, double deadline) {
    for (;;) {
        double now = rw_now();
        if (now >= deadline) return 0;
        struct pollfd p = {fd, POLLIN, 0};
        struct timespec ts = to_timespec(deadline - now);
        int r = ppoll(&p, 1, &ts, NULL);
        if (r < 0 && errno != EINTR) RW_ABORT("ppoll: %s", strerror(errno));
        if (r > 0) return 1;
    }
}

/* Reads one answer from the non-blocking fd before the deadline. Returns 1 (in *a, with the arrival
 * time in *t), 0 at EOF (the child closed its end or died), -1 at the deadline, -2 on a protocol
 * violation (a truncated answer, or more than one answer at a time: msg says which). */
static int read_answer(int fd, double deadline, rw_answer *a, double *t, char *msg, size_t msglen) {
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, (char *)a + got, sizeof *a - got);
        if (r > 0) {
            got += (size_t)r;
            if (got < sizeof *a) continue;
            *t = rw_now();
            char extra;
            if (read(fd, &extra, 1) > 0) {
                snprintf(msg, msglen, "crash: the strategy's process wrote more than one answer per board");
                return -2;
            }
            a->msg[sizeof a->msg - 1] = '\0';
            return 1;
        }
        if (r == 0) {
            if (got) { snprintf(msg, msglen, "crash: truncated answer"); return -2; }
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return 0;
        if (!wait_readable(fd, deadline)) {
            if (got) { snprintf(msg, msglen, "crash: truncated answer"); return -2; }
            return -1;
        }
    }
}

/* Sends a board to the child (non-blocking: an honest child reads each board before it answers, so
 * the pipe never fills; a full pipe means it answers without reading). Returns 0 or -1. */
static int send_board(int fd, const rw_board_msg *b) {
    ssize_t w;
    do w = write(fd, b, sizeof *b);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)sizeof *b ? 0 : -1;
}

/* What one child run delivered. */
typedef struct {
    int check_seen;          /* the CHECK answer arrived */
    int check;               /* its value */
    char check_error[RW_ERROR_LEN];
    int next_game;           /* the game in play when the child ended (or G: all done) */
    int died;                /* the child ended before finishing its games */
    int job_time_out;        /* killed at the job deadline */
    reward_outcome death;    /* outcome for the game the child died in */
    char death_error[REWARD_GAME_ERROR_LEN];
    double phase_start;      /* when the current phase (checks or the game in progress) began */
    double death_time;
} child_run;

/* The worker's side of one child: the checks, then games first .. G-1, move by move. Kills the child
 * on a deadline or a protocol violation; returns with the child still to be reaped (*killed says
 * whether it was killed, *finished whether it got RW_BOARD_END). */
__attribute__((noinline)) static void play_child(const reward_config *cfg, pid_t pid, int ans, int brd, int first,
                                                 double job_deadline, child_run *cr, rw_job_timing *tm,
                                                 double t_fork, int *killed, int *finished) {
    int G = cfg->games_per_strategy;
    *killed = *finished = 0;
    rw_answer a;
    double t;
    char perr[REWARD_GAME_ERROR_LEN];
    /* 1. The checks. */
    double dl = cr->phase_start + REWARD_CHECK_ALLOWANCE;
    int r = read_answer(ans, dl < job_deadline ? dl : job_deadline, &a, &t, perr, sizeof perr);
    if (r == 1 && a.kind == RW_ANS_CHECK) {
        cr->check_seen = 1;
        cr->check = a.value;
        tm->fork += a.t_start - t_fork;
        tm->sandbox += a.t_sandboxed - a.t_start;
        tm->check += a.t_checked - a.t_sandboxed;
        tm->minflt += a.minflt;
        if (a.value != RW_CHECK_OK) {
            if (a.value != OUTCOME_SYNTAX_ERROR && a.value != OUTCOME_BUILD_FAILED && a.value != OUTCOME_BANNED_IMPORT)
                a.value = OUTCOME_BUILD_FAILED;
            cr->check = a.value;
            answer_text(cr->check_error, sizeof cr->check_error, "", a.msg);
            cr->next_game = G;
            return;
        }
    } else if (r == 1 && a.kind == RW_ANS_SETUP_FAILED) {
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        char m[REWARD_GAME_ERROR_LEN];
        answer_text(m, sizeof m, "", a.msg);
        snprintf(cr->death_error, sizeof cr->death_error, "crash: sandbox setup failed: %.120s", m);
        *killed = 1;
        killpg(pid, SIGKILL);
        kill(pid, SIGKILL);
        return;
    } else if (r == 1 || r == -2) {
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "%s",
                 r == -2 ? perr : "crash: unexpected answer before the checks were done");
        *killed = 1;
        killpg(pid, SIGKILL);
        kill(pid, SIGKILL);
        return;
    } else {
        cr->died = 1;   /* EOF (died: classified by the caller) or the deadline */
        if (r == -1) {
            *killed = 1;
            cr->job_time_out = job_deadline <= dl;
            cr->death = OUTCOME_TIMEOUT;
            snprintf(cr->death_error, sizeof cr->death_error, "timeout: the checks took longer than %g s",
                     REWARD_CHECK_ALLOWANCE);
            killpg(pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        return;
    }
    double t_checked = rw_now();

    /* 2. The games, move by move: the worker plays each answered move on its own board. */
    for (int g = first; g < G; g++) {
        cr->next_game = g;
        rw_board_msg b;
        secret_start_game(cfg, g, &b);
        double t0 = rw_now();
        cr->phase_start = t0;
        int unchanged = 0;
        reward_outcome outcome = OUTCOME_COUNT;
        char msg[REWARD_GAME_ERROR_LEN] = "";
        if (send_board(brd, &b) != 0) {
            outcome = OUTCOME_CRASH;
            snprintf(msg, sizeof msg, "crash: the strategy's process does not read its boards");
        }
        while (outcome == OUTCOME_COUNT) {
            dl = t0 + cfg->timeout + REWARD_KILL_GRACE;
            r = read_answer(ans, dl < job_deadline ? dl : job_deadline, &a, &t, perr, sizeof perr);
            if (r == 0) {   /* EOF: the child died or closed its end; the caller classifies the death */
                cr->died = 1;
                return;
            }
            if (r == -1) {
                cr->died = 1;
                *killed = 1;
                cr->job_time_out = job_deadline <= dl;
                cr->death = OUTCOME_TIMEOUT;
                if (cr->job_time_out)
                    snprintf(cr->death_error, sizeof cr->death_error, "timeout: the job's %.3g s ran out",
                             REWARD_CHECK_ALLOWANCE + G * (cfg->timeout + REWARD_KILL_GRACE));
                else
                    snprintf(cr->death_error, sizeof cr->death_error, "timeout: game took longer than %g s (killed)",
                             cfg->timeout);
                killpg(pid, SIGKILL);
                kill(pid, SIGKILL);
                break;
            }
            if (r == -2) {
                outcome = OUTCOME_CRASH;
                snprintf(msg, sizeof msg, "%s", perr);
                break;
            }
            if (a.kind == RW_ANS_MOVE) {
                char mv = a.value > 0 && a.value < 128 ? game_parse_move(a.value) : 0;
                if (!mv) {
                    outcome = OUTCOME_CRASH;
                    snprintf(msg, sizeof msg, "crash: the strategy's process answered a move that is not one");
                    break;
                }
                if (secret_move(mv, &b) == 1) unchanged = 0;
                else if (++unchanged >= cfg->max_stuck_moves) {
                    outcome = OUTCOME_STUCK;
                    snprintf(msg, sizeof msg, "stuck: the board did not change for %d moves", cfg->max_stuck_moves);
                    break;
                }
                if (secret->game.state == GAME_SUCCESS) outcome = OUTCOME_SUCCESS;
                else if (secret->game.state == GAME_FAILED) outcome = OUTCOME_FAILED;
                else if (t - t0 > cfg->timeout) {
                    outcome = OUTCOME_TIMEOUT;
                    snprintf(msg, sizeof msg, "timeout: game took longer than %g s", cfg->timeout);
                } else if (send_board(brd, &b) != 0) {
                    outcome = OUTCOME_CRASH;
                    snprintf(msg, sizeof msg, "crash: the strategy's process does not read its boards");
                }
            } else if (a.kind == RW_ANS_INVALID) {
                outcome = OUTCOME_INVALID_MOVE;
                answer_text(msg, sizeof msg, "invalid move: ", a.msg);
            } else if (a.kind == RW_ANS_EXCEPTION) {
                outcome = OUTCOME_EXCEPTION;
                answer_text(msg, sizeof msg, "exception: ", a.msg);
            } else if (a.kind == RW_ANS_MEMORY) {
                outcome = OUTCOME_MEMORY;
                snprintf(msg, sizeof msg, "memory: MemoryError (limit %zu MiB)", cfg->memory_limit >> 20);
            } else {
                outcome = OUTCOME_CRASH;
                snprintf(msg, sizeof msg, "crash: unexpected answer (kind %u)", a.kind);
            }
        }
        if (cr->died) break;
        double secs = rw_now() - t0;
        secret_end_game(g, outcome, msg, secs);
        if (outcome == OUTCOME_CRASH) {
            /* A protocol violation: this game is the strategy's crash; the rest run in a new child. */
            cr->next_game = g + 1;
            cr->died = 1;
            cr->death = OUTCOME_CRASH;
            cr->death_error[0] = '\0';   /* already recorded */
            *killed = 1;
            killpg(pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        cr->next_game = g + 1;
    }
    tm->play += rw_now() - t_checked;
    if (!cr->died) {
        rw_board_msg end;
        memset(&end, 0, sizeof end);
        end.kind = RW_BOARD_END;
        (void)send_board(brd, &end);
        *finished = 1;
    }
}

/* Runs games first .. G-1 (after the checks; code: the checker's marshalled code for the source, or
 * NULL) in one sandboxed child; fills the secret results and *cr, and adds the child's timings to *tm. */
static void run_child(const reward_config *cfg, const char *src, size_t len, const char *code, size_t code_len,
                      int first, double job_deadline, child_run *cr, rw_job_timing *tm) {
    memset(cr, 0, sizeof *cr);
    cr->next_game = first;
    cr->check = RW_CHECK_OK;
    cr->phase_start = rw_now();
    double t_fork = cr->phase_start;
    tm->children++;
    reap_later(1);   /* a child tearing down while we fork contends for the same memory-map locks */

    int ap[2], bp[2];
    if (pipe2(ap, O_CLOEXEC) != 0 || pipe2(bp, O_CLOEXEC) != 0) {
        if (ap[0] >= 0) { close(ap[0]); close(ap[1]); }
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: worker cannot create a pipe: %s", strerror(errno));
        cr->death_time = rw_now();
        return;
    }
    fcntl(ap[0], F_SETFL, O_NONBLOCK);   /* our ends only: the child's reads and writes stay blocking */
    fcntl(bp[1], F_SETFL, O_NONBLOCK);
    rw_child_job job = {cfg, src, len, code, code_len, 0.0, 0.0};
    pid_t me = getpid();
    int G = cfg->games_per_strategy;
    /* The child's RLIMIT_AS counts from our address-space size now (its own, right after the fork):
     * read here through an open statm, cheaper than the child's path lookup in /proc. */
    static int statm_fd = -2;
    if (statm_fd == -2) statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    size_t as_base = sandbox_address_space(statm_fd);
    double cpu_limit = REWARD_CHECK_ALLOWANCE + (G - first) * (cfg->timeout + REWARD_KILL_GRACE) + 1.0;

    /* No PyOS_BeforeFork / PyOS_AfterFork_*: the worker is single-threaded and forks from C code, so no
     * interpreter lock (GIL, import lock, runtime mutexes) is held or contended at this point, and the
     * child neither starts threads nor needs the at-fork hooks (random's reseed from the OS: every game
     * reseeds random itself). PyOS_AfterFork_Child would cost ~80 copy-on-write page faults per job. */
    pid_t pid = fork();
    if (pid == 0) {
        job.t_start = rw_now();
        scrub_stack();
        /* The answer pipe goes to SANDBOX_RESULT_FD (where the seccomp template allows writes), the
         * board pipe to SANDBOX_INPUT_FD; every other fd is closed by sandbox_enter. */
        int out = move_high(ap[1]), in = move_high(bp[0]);
        if (dup2(out, SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD || dup2(in, SANDBOX_INPUT_FD) != SANDBOX_INPUT_FD)
            _exit(5);
        sandbox_limits lim = {SANDBOX_RESULT_FD, SANDBOX_INPUT_FD, me, cpu_limit, cfg->memory_limit, as_base};
        char err[REWARD_GAME_ERROR_LEN];
        if (sandbox_enter(&lim, err, sizeof err) != 0) {
            rw_answer a;
            memset(&a, 0, sizeof a);
            a.kind = RW_ANS_SETUP_FAILED;
            snprintf(a.msg, sizeof a.msg, "%s", err);
            (void)rw_write_all(SANDBOX_RESULT_FD, &a, sizeof a, 0);
            _exit(4);
        }
        job.t_sandboxed = rw_now();
        pyrunner_run(&job, SANDBOX_INPUT_FD, SANDBOX_RESULT_FD);
        _exit(0);
    }
    close(ap[1]);
    close(bp[0]);
    if (pid < 0) {
        close(ap[0]);
        close(bp[1]);
        cr->died = 1;
        cr->death = OUTCOME_CRASH;
        snprintf(cr->death_error, sizeof cr->death_error, "crash: worker cannot fork: %s", strerror(errno));
        cr->death_time = rw_now();
        return;
    }
    setpgid(pid, pid);   /* also done by the child; whichever runs first makes killpg safe */

    int killed = 0, finished = 0;
    play_child(cfg, pid, ap[0], bp[1], first, job_deadline, cr, tm, t_fork, &killed, &finished);
    close(bp[1]);
    cr->death_time = rw_now();
    double t_end = cr->death_time;
    if (!cr->died) {
        /* Every game was played (or the checks failed): the child exits on RW_BOARD_END / EOF. */
        close(ap[0]);
        tm->finish += rw_now() - t_end;
        leave_unreaped(pid);
        return;
    }
    int st = 0, reaped = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (!killed) {
        /* The answer pipe closed early: the child is dying, or the strategy closed the fd and runs on.
         * Wait for its exit until the deadline (1 ms polls: this path is rare). */
        double dl = cr->phase_start + (cr->check_seen ? cfg->timeout + REWARD_KILL_GRACE : REWARD_CHECK_ALLOWANCE);
        for (;;) {
            pid_t w = wait4(pid, &st, WNOHANG, &ru);
            if (w == pid) { reaped = 1; break; }
            if (w < 0 && errno != EINTR) RW_ABORT("waitpid: %s", strerror(errno));
            double now = rw_now();
            if (now >= dl || now >= job_deadline) {
                killed = 1;
                cr->job_time_out = job_deadline <= dl;
                cr->death = OUTCOME_TIMEOUT;
                if (cr->job_time_out)
                    snprintf(cr->death_error, sizeof cr->death_error, "timeout: the job's %.3g s ran out",
                             REWARD_CHECK_ALLOWANCE + G * (cfg->timeout + REWARD_KILL_GRACE));
                else if (!cr->check_seen)
                    snprintf(cr->death_error, sizeof cr->death_error, "timeout: the checks took longer than %g s",
                             REWARD_CHECK_ALLOWANCE);
                else
                    snprintf(cr->death_error, sizeof cr->death_error, "timeout: game took longer than %g s",
                             cfg->timeout);
                killpg(pid, SIGKILL);
                kill(pid, SIGKILL);
                break;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        cr->death_time = rw_now();
    }
    while (!reaped && wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) RW_ABORT("waitpid: %s", strerror(errno));
    }
    close(ap[0]);
    tm->finish += rw_now() - t_end;
    if (killed) return;   /* death and message set where it was killed */
    /* The child ended by itself mid-job: classify by what really happened. */
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU) {
        double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
                     1e-6 * (double)ru.ru_stime.tv_usec;
        double limit = ceil(cpu_limit);
        if (cpu >= limit - 0.01) {
            cr->death = OUTCOME_TIMEOUT;
            snprintf(cr->death_error, sizeof cr->death_error, "timeout: CPU time limit (%.0f s)", limit);
        } else {
            cr->death = OUTCOME_CRASH;
            snprintf(cr->death_error, sizeof cr->death_error,
                     "crash: signal %d (%s) after %.2f s of CPU, below the %.0f s limit: sent by the strategy",
                     SIGXCPU, strsignal(SIGXCPU), cpu, limit);
        }
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

/* Runs one job (its header in secret->jh, its source in src): the checks and cfg->games_per_strategy
 * games, restarting the child after a death. Results in secret->games. */
static void run_job(const reward_config *cfg, const char *src, size_t len, rw_result_header *h) {
    int G = cfg->games_per_strategy;
    double t0 = rw_now();
    double job_deadline = t0 + REWARD_CHECK_ALLOWANCE + G * (cfg->timeout + REWARD_KILL_GRACE);
    secret_begin_job(G);
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
            fill_games(0, G, OUTCOME_TIMEOUT, e, rw_now() - t0);
            h->seconds = rw_now() - t0;
            return;
        }
        if (a > 0) {
            answered = 1;
            verdict = rs.verdict;
            answer_text(msg, sizeof msg, "", rs.msg);
            rw_check_response esc = rs;
            snprintf(esc.msg, sizeof esc.msg, "%s", msg);
            const cache_entry *e = cache_put(src, len, hash, &esc, got);
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
        free(fresh);
        return;
    }

    /* 2. The games, in sandboxed children. */
    int first = 0;
    while (first < G) {
        child_run cr;
        run_child(cfg, src, len, code, code_len, first, job_deadline, &cr, &h->timing);
        if (cr.check_seen && cr.check != RW_CHECK_OK) {
            h->check = cr.check;
            snprintf(h->error, sizeof h->error, "%s", cr.check_error);
            break;
        }
        if (!cr.died) break;   /* every game played */
        double secs = cr.death_time - cr.phase_start;
        if (!cr.check_seen) {
            /* Died during the checks: a new child would die the same way. */
            fill_games(first, G, cr.death, cr.death_error, cr.death_time - t0);
            break;
        }
        int k = cr.next_game;
        if (k >= G) break;
        if (cr.job_time_out) {
            fill_games(k, G, OUTCOME_TIMEOUT, cr.death_error, secs);
            break;
        }
        if (cr.death_error[0]) {   /* "" : the game was already recorded (a protocol violation) */
            secret_end_game(k, cr.death, cr.death_error, secs);
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
    if (!src || worker_secret_map(G) != 0) _exit(2);
    for (;;) {
        /* The header (with the job's seed) is read straight into the secret area. */
        int r = rw_read_all(sock, &secret->jh, sizeof secret->jh);
        if (r == 0) _exit(0);   /* the trainer closed our socket: the pool is shutting down */
        if (r < 0 || secret->jh.magic != RW_JOB_MAGIC || secret->jh.source_len > REWARD_MAX_SOURCE) _exit(2);
        uint32_t len = secret->jh.source_len;
        if (rw_read_all(sock, src, len) != 1) _exit(2);
        rw_result_header h;
        memset(&h, 0, sizeof h);
        h.magic = RW_RESULT_MAGIC;
        h.job_id = secret->jh.job_id;
        h.games = G;
        run_job(cfg, src, len, &h);
        if (rw_write_all(sock, &h, sizeof h, 1) != 0 ||
            rw_write_all(sock, secret->games, (size_t)G * sizeof *secret->games, 1) != 0)
            _exit(0);
        reap_later(1);   /* after the result is on its way; an idle worker keeps no zombie */
    }
}
