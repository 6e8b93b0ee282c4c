/*
 * rewards/pool_internal.h: private interface between the parts of the reward pool. Not for other
 * modules (use rewards/rewards.h); tests/rewards include it to exercise the parts directly.
 *
 * Parts and the messages between them (all on one machine, so records are plain C structs):
 *
 *   pool.c (trainer) ──rw_job_header + source──────────> worker.c   (AF_UNIX stream socket per worker)
 *   pool.c (trainer) <──rw_result_header + G reward_game── worker.c
 *   pool.c (trainer) ──rw_ctl_msg "spawn"──────────────> zygote.c   (AF_UNIX seqpacket control socket)
 *   pool.c (trainer) <──rw_ctl_msg + worker socket fd──── zygote.c   (SCM_RIGHTS)
 *   worker.c         ──rw_board_msg, one per move───────> child     (pipe, the child's fd 4)
 *   worker.c         <──rw_answer, one per move─────────── child     (pipe, the child's fd 3)
 *   worker.c         ──rw_check_request + source────────> checker   (pipe, the checker's fd 4)
 *   worker.c         <──rw_check_response + marshalled code── checker (pipe, the checker's fd 3)
 *
 * The worker owns each game (board, spawn RNG, moves, clock, outcome); the job child only answers a
 * move for each board it is sent (rw_board_msg / rw_answer below). A strategy must be assumed to
 * control its whole process (CPython hands out raw memory access to hand-built code objects), so
 * nothing the child says is trusted beyond "this move" or "this game ends with this failure", and the
 * child's memory holds no game seed (worker.c keeps them in MADV_WIPEONFORK memory).
 *
 * wire.c holds the small I/O helpers used on both sides (full reads/writes, fd passing, clocks).
 */
#ifndef GRPO2048_REWARDS_POOL_INTERNAL_H
#define GRPO2048_REWARDS_POOL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rewards/rewards.h"

#define RW_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

#define RW_JOB_MAGIC 0x424f4a57u     /* "WJOB" */
#define RW_RESULT_MAGIC 0x53455257u  /* "WRES" */
#define RW_CHECK_OK (-1)             /* check value of a source that passed its checks */
#define RW_ERROR_LEN 256             /* == sizeof(reward_result.error) */

/* trainer → worker: followed by source_len bytes of UTF-8 Python source (no NUL). */
typedef struct {
    uint32_t magic;          /* RW_JOB_MAGIC */
    uint32_t job_id;         /* echoed in the result */
    uint64_t seed;           /* base seed: game g uses game_seed_mix(seed, g, 0) */
    uint32_t source_len;     /* bytes, ≤ REWARD_MAX_SOURCE */
    uint32_t reserved;
} rw_job_header;

/* Where one job's time went, measured by the worker (sums over the job's children; seconds on the
 * monotonic clock, which all processes share). Feeds reward_pool_stats. */
typedef struct {
    double fork;             /* worker's fork() call → the child's first instruction */
    double sandbox;          /* child: sandbox_enter (process group, fds, rlimits, capabilities, filter) */
    double check;            /* child: source checks and building the function */
    double play;             /* child: check record → its last record (the games) */
    double finish;           /* worker: last record (or the kill) → child reaped */
    int64_t minflt;          /* page faults (minor) of the children, from their getrusage */
    int32_t children;        /* sandboxed children forked for the job */
    int32_t cached;          /* 1: the checks were answered from the worker's cache */
} rw_job_timing;

/* worker → trainer: followed by `games` reward_game records (games = cfg.games_per_strategy). */
typedef struct {
    uint32_t magic;          /* RW_RESULT_MAGIC */
    uint32_t job_id;
    int32_t check;           /* RW_CHECK_OK, or OUTCOME_SYNTAX_ERROR / BUILD_FAILED / BANNED_IMPORT */
    int32_t games;
    double seconds;          /* wall seconds of the job, measured by the worker */
    rw_job_timing timing;
    char error[RW_ERROR_LEN];/* the check's message when check != RW_CHECK_OK */
} rw_result_header;

/* trainer ↔ zygote. Request: cmd = RW_CTL_SPAWN. Reply: status 0 + pid + one fd (SCM_RIGHTS), or
 * status -1 + error. At start-up the zygote sends one reply per initial worker unsolicited. */
#define RW_CTL_SPAWN 0x53504157 /* "WAPS" */
typedef struct {
    int32_t cmd;
    int32_t status;
    int32_t pid;
    char error[RW_ERROR_LEN];
} rw_ctl_msg;

/* The per-move exchange between a worker and its job child (pipes; see worker.c for why pipes and not a
 * shared page). The worker owns the game: the board, the spawn RNG, the move count, the clock and the
 * outcome. The child only ever learns boards and answers moves.
 *
 *   worker ──rw_board_msg──> child (the child's fd SANDBOX_INPUT_FD, read-only)
 *   worker <──rw_answer───── child (the child's fd SANDBOX_RESULT_FD, write-only)
 *
 * The child's first answer is RW_ANS_CHECK (the build of the strategy worked or not, with its
 * timestamps); then, for each board, one RW_ANS_MOVE (value = 'W','A','S','D') or one answer that ends
 * the game: RW_ANS_INVALID (the strategy returned something else; msg describes it), RW_ANS_EXCEPTION
 * or RW_ANS_MEMORY (the call raised; msg is the exception's text). Every answer is untrusted (the
 * strategy can write to its fd): the worker accepts only the answer its protocol state expects, and
 * treats anything else — a wrong kind, a value out of range, more bytes than one answer — as a crash of
 * that game. msg is stored escaped (reward_escape_text). Each record is far below PIPE_BUF, so each
 * write() is atomic. */
enum { RW_ANS_CHECK = 1, RW_ANS_MOVE = 2, RW_ANS_INVALID = 3, RW_ANS_EXCEPTION = 4, RW_ANS_MEMORY = 5,
       RW_ANS_SETUP_FAILED = 6 };
/* The checker's verdict in a CHECK answer (cacheable: a pure function of the source). */
enum { RW_VERDICT_OK = 0, RW_VERDICT_SYNTAX = 1, RW_VERDICT_STRUCTURE = 2, RW_VERDICT_BANNED = 3,
       RW_VERDICT_NONE = -1 /* not known: the checker was skipped (cache) or could not run */ };
typedef struct {
    uint32_t kind;           /* RW_ANS_* */
    int32_t value;           /* CHECK: RW_CHECK_OK or the failed check's outcome; MOVE: the move */
    int32_t verdict;         /* CHECK: RW_VERDICT_* of the source checker (before the build) */
    int32_t reserved;
    double t_start;          /* CHECK: monotonic seconds when the child began (right after fork) */
    double t_sandboxed;      /* CHECK: ... when sandbox_enter returned */
    double t_checked;        /* CHECK: ... when the checks and the build were done */
    int64_t minflt;          /* CHECK: the child's minor page faults so far (getrusage) */
    char msg[REWARD_GAME_ERROR_LEN]; /* CHECK / INVALID / EXCEPTION / MEMORY / SETUP_FAILED: what happened */
} rw_answer;

enum { RW_BOARD_PLAY = 1, RW_BOARD_END = 2 };
typedef struct {
    uint32_t kind;           /* RW_BOARD_PLAY: answer a move for cells; RW_BOARD_END: no more games, exit */
    int32_t new_game;        /* 1: the first board of a game: reseed Python's random with py_seed first */
    uint64_t py_seed;        /* the game's seed for Python's `random`: rw_python_seed(game seed), a one-way
                                function of it, so it tells nothing about the spawns */
    int32_t n;               /* board side */
    int32_t reserved;
    uint32_t cells[64];      /* (n, n) row-major tile values */
} rw_board_msg;

/* What a job child needs: lives in the worker's memory and reaches the child through fork. Holds no
 * game seed (the worker keeps those in memory the child does not inherit: worker.c). */
typedef struct {
    const reward_config *cfg;
    const char *source;      /* UTF-8, not NUL-terminated */
    size_t source_len;
    const char *code;        /* the checker's marshalled code object for source (the source passed the
                                checker), or NULL: the child runs the checker itself */
    size_t code_len;
    double t_start;          /* set by the child: when it began, and when sandbox_enter returned */
    double t_sandboxed;
} rw_child_job;

/* worker → checker (its request pipe): followed by len bytes of source. */
#define RW_CHECK_MAGIC 0x4b434843u   /* "CHCK" */
typedef struct {
    uint32_t magic;          /* RW_CHECK_MAGIC */
    uint32_t len;            /* bytes, ≤ REWARD_MAX_SOURCE */
} rw_check_request;

/* checker → worker: followed by code_len bytes of marshalled code (verdict RW_VERDICT_OK only). */
#define RW_MAX_CODE (8u << 20)   /* largest marshalled code accepted from the checker, bytes */
typedef struct {
    uint64_t token;          /* the checker's token (drawn by the worker when it started the checker) */
    int32_t verdict;         /* RW_VERDICT_*; RW_VERDICT_NONE: the checker raised (msg says what) */
    uint32_t code_len;
    double seconds;          /* the check's own time */
    char msg[RW_ERROR_LEN];  /* the failed check's message (as the CHECK record would carry it) */
} rw_check_response;

/* ---- wire.c ---- */

/* The seed of Python's `random` for the game whose spawn seed is game_seed: SipHash-2-4 of game_seed
 * under a fixed key. Deterministic (runs repeat), and one-way in practice (recovering game_seed from it
 * takes ~2^64 hash evaluations), so a strategy that sees it learns nothing about the spawns. */
uint64_t rw_python_seed(uint64_t game_seed);

/* Monotonic clock, seconds. */
double rw_now(void);
/* Writes all n bytes (send with MSG_NOSIGNAL on sockets, write otherwise; EINTR retried).
 * Returns 0, or -1 with errno set (EPIPE when the peer is gone). */
int rw_write_all(int fd, const void *buf, size_t n, int is_socket);
/* Reads exactly n bytes (EINTR retried). Returns 1 when all n arrived, 0 on EOF before the first byte,
 * -1 on an error or on EOF after a partial read (errno = EPROTO then). */
int rw_read_all(int fd, void *buf, size_t n);
/* Sends one seqpacket message of len bytes with fd attached (fd < 0: none). Returns 0 or -1 + errno. */
int rw_send_msg_fd(int sock, const void *msg, size_t len, int fd);
/* Receives one seqpacket message into msg (len bytes expected) and the fd attached to it, if any
 * (*fd = -1 otherwise; received fds are close-on-exec). Returns 1, 0 on EOF, -1 + errno on error or
 * on a message of the wrong size. */
int rw_recv_msg_fd(int sock, void *msg, size_t len, int *fd);
/* Closes every fd ≥ from except keep (keep < from or -1: none). close_range when the kernel has it,
 * else /proc/self/fd, else a loop up to RLIMIT_NOFILE. */
void rw_close_fds_from(int from, int keep);
/* Resets every signal disposition to SIG_DFL and unblocks all signals (a fresh process after fork). */
void rw_reset_signals(void);

/* ---- zygote.c ---- */

/* Forks the zygote (from the trainer), which starts CPython and nworkers workers. On success returns 0,
 * *zygote_pid, *ctl (the control socket), fds[i] / pids[i] (the workers' sockets and pids). On failure
 * -1 + err (everything started is torn down). */
int zygote_start(const reward_config *cfg, int nworkers, pid_t *zygote_pid, int *ctl, int *fds, int *pids,
                 char *err, size_t errlen);
/* Asks the zygote for one more worker. Returns 0 with *fd, *pid, or -1 + err (the zygote is gone). */
int zygote_spawn(int ctl, int *fd, int *pid, char *err, size_t errlen);
/* Closes the control socket (the zygote then kills and reaps its workers) and reaps the zygote. */
void zygote_stop(int ctl, pid_t zygote_pid);

/* ---- worker.c ---- */

/* The worker loop: reads jobs from sock, runs each in a sandboxed child, writes results. Returns never. */
void worker_main(int sock, const reward_config *cfg, pid_t zygote_pid) __attribute__((noreturn));

/* ---- sandbox.c ---- */

#define SANDBOX_RESULT_FD 3  /* where the answer pipe (write end) lives inside the child */
#define SANDBOX_INPUT_FD 4   /* where the board pipe (a job child) or the request pipe (a checker) lives:
                                the read end, the only other fd kept */

typedef struct {
    int result_fd;           /* the result pipe's write end: moved to SANDBOX_RESULT_FD, all else closed */
    int input_fd;            /* -1, or SANDBOX_INPUT_FD: a request pipe's read end, kept open too */
    pid_t parent;            /* the worker: the child exits when it is already gone */
    double cpu_seconds;      /* RLIMIT_CPU, rounded up to whole seconds */
    size_t memory_limit;     /* RLIMIT_AS = as_base + this; 0: no RLIMIT_AS */
    size_t as_base;          /* bytes: the address-space size at the fork (the parent's, read before
                                forking); 0: the child reads /proc/self/statm itself */
} sandbox_limits;

/* The calling process's address-space size (VmSize) in bytes, from /proc/self/statm — read through
 * statm_fd (an open /proc/self/statm: a pread, no path lookup) or, with statm_fd < 0, by opening it.
 * 0 when unreadable. */
size_t sandbox_address_space(int statm_fd);

/* In the zygote, once: builds the seccomp program template (libseccomp). Returns 0, or -1 + err. */
int sandbox_prepare(char *err, size_t errlen);

/* In the zygote, once (after sandbox_prepare): forks a child that enters the sandbox and checks that
 * opening a file fails, so a host without seccomp (or with rlimits we cannot set) fails the pool's
 * creation instead of turning every game into a crash. Returns 0, or -1 + err. */
int sandbox_probe(char *err, size_t errlen);

/* Confines the calling process (the job's child) in the fixed order documented in sandbox.c.
 * Returns 0, or -1 + err naming the step that failed; the result pipe is then on SANDBOX_RESULT_FD
 * when the failure came after step 3 (the caller reports there and exits). */
int sandbox_enter(const sandbox_limits *l, char *err, size_t errlen);

/* ---- pyrunner.c ---- */

/* In the zygote: starts CPython (isolated, hash seed 0, no site, no bytecode writes, no signal
 * handlers), pre-imports the allowed modules, compiles the checker, runs a sample strategy through the
 * per-job path (warm-up) and runs gc.freeze(). Returns 0, or -1 + err. */
int pyrunner_init(char *err, size_t errlen);

/* In the sandboxed child: checks the source (unless job->code holds the checker's code for it), builds
 * the function and writes one RW_ANS_CHECK answer to out_fd; then, for each rw_board_msg read from
 * in_fd, calls the strategy on the board and answers (RW_ANS_MOVE, or INVALID / EXCEPTION / MEMORY with
 * the message). Returns at RW_BOARD_END, EOF or a broken board message (the caller exits). */
void pyrunner_run(const rw_child_job *job, int in_fd, int out_fd);

/* The checker: a long-lived sandboxed child of a worker that only parses, checks and compiles sources
 * (never runs them). Reads rw_check_request + source from in_fd, answers rw_check_response (stamped with
 * token) + marshalled code on out_fd, until in_fd reaches EOF. Never returns. */
void pyrunner_checker_main(int in_fd, int out_fd, uint64_t token) __attribute__((noreturn));

#endif
