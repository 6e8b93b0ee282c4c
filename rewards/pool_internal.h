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
 *   worker.c         <──rw_child_record, one per event──── child     (pipe; pyrunner.c writes them)
 *   worker.c         ──rw_check_request + source────────> checker   (pipe, the checker's fd 4)
 *   worker.c         <──rw_check_response + marshalled code── checker (pipe, the checker's fd 3)
 *
 * A child's records carry a 64-bit token drawn by the worker for that child only. The strategy runs in
 * the child and can write to the result pipe (it may guess the fd), but it cannot read the token out of
 * C memory from Python, so it cannot forge a record; bytes it writes make the stream corrupt, which is
 * scored as a crash of its own job. (A strategy that gains arbitrary memory access — e.g. through
 * hand-crafted bytecode — could forge its own result; it still cannot leave the sandbox.)
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

/* child → worker records. Each is far below PIPE_BUF, so each write() is atomic. */
enum { RW_REC_CHECK = 1, RW_REC_GAME = 2, RW_REC_SETUP_FAILED = 3 };
/* The checker's verdict in a CHECK record (cacheable: a pure function of the source). */
enum { RW_VERDICT_OK = 0, RW_VERDICT_SYNTAX = 1, RW_VERDICT_STRUCTURE = 2, RW_VERDICT_BANNED = 3,
       RW_VERDICT_NONE = -1 /* not known: the checker was skipped (cache) or could not run */ };
typedef struct {
    uint64_t token;          /* the worker's token for this child */
    uint32_t kind;           /* RW_REC_* */
    int32_t value;           /* CHECK: RW_CHECK_OK or the failed check's outcome; GAME: the game index */
    int32_t verdict;         /* CHECK: RW_VERDICT_* of the source checker (before the build) */
    int32_t reserved;
    double t_sent;           /* monotonic seconds when the record was written (deadlines count from it) */
    double t_start;          /* CHECK: monotonic seconds when the child began (right after fork) */
    double t_sandboxed;      /* CHECK: ... when sandbox_enter returned */
    double t_checked;        /* CHECK: ... when the checks and the build were done */
    int64_t minflt;          /* the child's minor page faults so far (getrusage) */
    reward_game game;        /* GAME: the game; CHECK / SETUP_FAILED: game.error holds the message */
} rw_child_record;

/* What a child plays: lives in the worker's memory and reaches the child through fork. */
typedef struct {
    const reward_config *cfg;
    const char *source;      /* UTF-8, not NUL-terminated */
    size_t source_len;
    const char *code;        /* the checker's marshalled code object for source (the source passed the
                                checker), or NULL: the child runs the checker itself */
    size_t code_len;
    uint64_t seed;           /* the job's base seed */
    int first_game;          /* play games first_game .. cfg->games_per_strategy - 1 */
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

#define SANDBOX_RESULT_FD 3  /* where the result pipe lives inside the child */
#define SANDBOX_INPUT_FD 4   /* where the checker's request pipe lives (the only other fd kept) */

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
 * the function, plays the games, and writes one RW_REC_CHECK record and then one RW_REC_GAME record per
 * game to fd, each stamped with token; then closes fd (the worker wakes on that). */
void pyrunner_run(const rw_child_job *job, int fd, uint64_t token);

/* The checker: a long-lived sandboxed child of a worker that only parses, checks and compiles sources
 * (never runs them). Reads rw_check_request + source from in_fd, answers rw_check_response (stamped with
 * token) + marshalled code on out_fd, until in_fd reaches EOF. Never returns. */
void pyrunner_checker_main(int in_fd, int out_fd, uint64_t token) __attribute__((noreturn));

#endif
