/*
 * rewards/rewards.h: the rewards stage of grpo2048 — from a model's completion to per-function rewards.
 *
 * A completion is raw model text. The trainer process extracts its first fenced code block
 * (reward_extract_strategy, extract.c) and hands the Python source to the reward pool (pool.c), which
 * plays 2048 games with it in sandboxed subprocesses and scores the outcome with four reward functions
 * (reward_funcs.c), summed with weights into one scalar per completion.
 *
 * Processes (see /work/shared/DESIGN.md, "Processes, and why the pool is forked first"):
 *
 *   trainer ──(pool.c)──> zygote (zygote.c): forked by reward_pool_create before any thread exists;
 *                          embeds CPython once, pre-imports the allowed modules, warms the per-job
 *                          path on a sample strategy, gc.freeze().
 *                            └── N workers (worker.c): forked from the zygote (so they share its
 *                                Python heap copy-on-write; a dead worker is replaced by another fork
 *                                of the zygote, never of the multi-threaded trainer).
 *                                  ├── a checker: a long-lived sandboxed child that parses, checks and
 *                                  │   compiles sources (never runs them); its verdicts and code are
 *                                  │   cached by the worker per source.
 *                                  └── one child per job: sandbox.c confines it (process group,
 *                                      parent-death signal, fds closed, rlimits, not dumpable, no
 *                                      capabilities, no_new_privs, seccomp), pyrunner.c builds the
 *                                      function from the checker's code and answers one move per board;
 *                                      the worker owns and plays the games (board, spawn RNG, clock,
 *                                      outcome), so nothing in the child can forge a result.
 *
 * Every process up the chain holds PR_SET_PDEATHSIG(SIGKILL), so a dying trainer takes the zygote,
 * the workers and their children along. The worker, not the child, enforces wall-clock limits.
 * docs/sandbox.md describes the layers, the hostile-strategy suite and the benchmark.
 *
 * The reward functions (values of the public Unsloth 2048 GRPO notebook, plus game_progress):
 *   function_works     +1 valid; −2 no function (extraction failed) or syntax error; −0.5 compiles but
 *                      does not build (not exactly one top-level `def strategy(board)`, or exec raises).
 *                      A banned import gets +1 here: the function is well formed, the cheating is
 *                      no_cheating's to punish (one defect is not counted twice).
 *   no_cheating        +1; −20 an import whose root module is not in sys.stdlib_module_names;
 *                      −1 no function or syntax error (there are no imports to judge).
 *   strategy_succeeds  per game: +20 reached the target; +2 ended without it (no move left); −1 timeout
 *                      or stuck; −3 exception, memory error, crash or invalid return value (an invalid
 *                      move is a broken strategy, so it is scored like an exception); 0 when not played
 *                      (no valid function, banned import).
 *   game_progress      per game: log2(max_tile) / log2(target) clipped to [0, 1] for games that ended
 *                      normally (success or no move left), 0 otherwise.
 * With games_per_strategy > 1 each per-game function is the mean over the games.
 */
#ifndef GRPO2048_REWARDS_H
#define GRPO2048_REWARDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { RF_FUNCTION_WORKS, RF_NO_CHEATING, RF_STRATEGY_SUCCEEDS, RF_GAME_PROGRESS, RF_COUNT };

/* Name of reward function f (0 ≤ f < RF_COUNT): "function_works", "no_cheating", "strategy_succeeds",
 * "game_progress". Aborts with file:line on an out-of-range f. */
const char *reward_func_name(int f);

/* Index of the reward function called name, or -1 if unknown (name may be NULL → -1). */
int reward_func_from_name(const char *name);

/* Largest games_per_strategy (and `play --games`) one job may have; bounds the result records. */
#define REWARD_MAX_GAMES 1024
/* Largest strategy source in bytes (after extraction); a longer one is scored as no_function. */
#define REWARD_MAX_SOURCE (256 * 1024)
/* Seconds for a job's checks: the worker's checker gets this long for its verdict on the source
 * (syntax, structure, imports), and the job's child this long from its fork to its check record (sandbox,
 * loading the code, exec of the definition). Either overrun ends the job as a timeout. */
#define REWARD_CHECK_ALLOWANCE 0.5
/* Seconds past a game's timeout before the worker kills the child: lets a strategy that is slow but
 * still returning moves be stopped by the child's own per-move clock check (the game ends "timeout"
 * and the next game still runs in the same child). */
#define REWARD_KILL_GRACE 0.05

/* Largest |weight| of a reward function: every reward value is at most 20 in size, so weighted sums
 * stay far from overflowing (a weight of 1e308 once made every reward -inf and the model NaN). */
#define REWARD_MAX_WEIGHT 1000.0

/* Most worker processes per online CPU: reward_pool_create clamps rewards.workers to this many times the
 * CPUs (more would only time-share the cores, and cost a CPython heap each), saying so on stderr. */
#define REWARD_MAX_WORKERS_PER_CPU 4

typedef struct {
    int parallel;            /* 1: jobs on `workers` workers concurrently; 0: one job at a time, printing each */
    int workers;             /* worker processes; 0 = number of online CPUs (1 when parallel == 0); at most
                                REWARD_MAX_WORKERS_PER_CPU per online CPU are started (see reward_pool_workers) */
    double timeout;          /* wall-clock seconds per game (default 1.0) */
    int games_per_strategy;  /* default 1, at most REWARD_MAX_GAMES */
    int board_size;          /* default 4 */
    uint32_t target;         /* default 2048 */
    double probability_fours;/* default 0.10 */
    int max_stuck_moves;     /* default 1000 */
    size_t memory_limit;     /* bytes of address space a job may add, default 512 MiB */
    double weights[RF_COUNT];/* default 1.0 each; 0 disables a function's contribution; |w| ≤ REWARD_MAX_WEIGHT */
} reward_config;

/* Fills *c with the defaults listed above (parallel = 1, workers = 0). */
void reward_config_defaults(reward_config *c);

/* Checks every field's range. Returns 0, or -1 with a message in err naming the field and the allowed
 * range (err may be NULL when errlen is 0). */
int reward_config_validate(const reward_config *c, char *err, size_t errlen);

typedef enum {
    OUTCOME_SUCCESS, OUTCOME_FAILED, OUTCOME_TIMEOUT, OUTCOME_STUCK, OUTCOME_EXCEPTION, OUTCOME_INVALID_MOVE,
    OUTCOME_MEMORY, OUTCOME_CRASH, OUTCOME_NO_FUNCTION, OUTCOME_SYNTAX_ERROR, OUTCOME_BUILD_FAILED,
    OUTCOME_BANNED_IMPORT, OUTCOME_INFRA_ERROR, OUTCOME_COUNT
} reward_outcome;
/* OUTCOME_INFRA_ERROR: the job could not be scored because the machinery failed, not the strategy — its
 * worker died (killed or stopped from outside) twice, once on the first try and once on a fresh worker.
 * Its result has every reward 0 and games 0; the trainer leaves such a completion out of the loss and
 * of the reward means, and counts it (metric infra_errors). */

/* "success","failed","timeout","stuck","exception","invalid_move","memory","crash","no_function",
 * "syntax_error","build_failed","banned_import","infra_error". Aborts with file:line on an out-of-range o. */
const char *reward_outcome_name(reward_outcome o);

/* The outcome called name, or -1 if unknown. */
int reward_outcome_from_name(const char *name);

/* Bytes of a game's error text, including the terminating NUL. */
#define REWARD_GAME_ERROR_LEN 160

/* One game of a job. The first eight outcomes are game outcomes; when the source failed its checks
 * (no_function, syntax_error, build_failed, banned_import) no game is played and every game of the job
 * carries that outcome with zero score, tile, moves and seconds. */
typedef struct {
    reward_outcome outcome;
    uint64_t seed;           /* the game's seed: game_seed_mix(base seed, game index, 0) */
    uint64_t score;          /* sum of merged tile values */
    uint32_t max_tile;       /* largest tile at the end (0 when not played) */
    int moves;               /* moves that changed the board */
    double seconds;          /* wall seconds of the game (measured in the child; by the worker when killed) */
    char error[REWARD_GAME_ERROR_LEN]; /* "" for success/failed; else what went wrong, truncated */
} reward_game;

typedef struct {
    double reward;               /* weighted sum */
    double rewards[RF_COUNT];    /* each function's value (unweighted) */
    reward_outcome outcome;      /* the first game's outcome (or the check's, when not played) */
    uint32_t max_tile;           /* max over games */
    double score;                /* mean over games */
    int moves;                   /* total over games */
    double seconds;              /* wall seconds of the job (0 when extraction failed: no job ran) */
    int games, wins, timeouts, stuck; /* counts over games (games = 0 when not played) */
    char error[256];             /* first error, "" when none */
} reward_result;

/* Computes *out from one job: check is OUTCOME_NO_FUNCTION, OUTCOME_SYNTAX_ERROR, OUTCOME_BUILD_FAILED
 * or OUTCOME_BANNED_IMPORT when the source failed its checks (games is then ignored and may be NULL),
 * or -1 when it passed and games (n,) holds the n ≥ 1 played games. check_error is the check's message
 * (may be NULL). out->seconds is left 0 (the caller knows the job's wall time). Formulas: see the top
 * of this file. Aborts on n < 1 with check == -1, or on an out-of-range check. */
void reward_compute(const reward_config *c, int check, const char *check_error, const reward_game *games, int n,
                    reward_result *out);

/* The first fenced code block of completion: the text between the first two ``` fences (at least two
 * are needed), a `python` or `py` language tag right after the opening fence dropped, leading and
 * trailing whitespace stripped; it must then start with `def strategy(board):`.
 * Returns 0 with the NUL-terminated code in out (outlen bytes), -1 when there is no such block or it
 * does not start so, -2 when the code (plus its NUL) does not fit in outlen bytes. Written from the
 * notebook's extract_function (Unsloth 2048 GRPO notebook), with the stricter start rule. */
int reward_extract_strategy(const char *completion, char *out, size_t outlen);

/* Copies srclen bytes of untrusted text (a strategy's exception message or source line) into dst
 * (dstlen bytes, always NUL-terminated when dstlen > 0) so that it is safe to store, print on a
 * terminal and embed in a line-oriented log: backslash → \\, newline/CR/tab → \n \r \t, every other
 * control byte (ESC included), DEL, invalid UTF-8, C1 controls and bidirectional overrides → \xNN per
 * byte; other UTF-8 is kept. Stops before an escape that would not fit whole. Returns the bytes written
 * (without the NUL). Printing the result inside JSON still needs JSON's own quoting of '"'. */
size_t reward_escape_text(char *dst, size_t dstlen, const char *src, size_t srclen);

typedef struct reward_pool reward_pool;

/* The number of workers reward_pool_create starts for cfg: 1 when cfg->parallel == 0; the online CPUs
 * when cfg->workers == 0; cfg->workers clamped to REWARD_MAX_WORKERS_PER_CPU × the online CPUs, in which
 * case note (notelen bytes, may be NULL) says so ("rewards.workers=64 is more than 4x the 2 online CPUs;
 * using 8"); note is "" otherwise. cfg is not validated here. */
int reward_pool_workers(const reward_config *cfg, char *note, size_t notelen);

/* Forks the zygote and its workers (as many as reward_pool_workers says; a clamp is reported on stderr
 * as "reward pool: <note>"). Call before creating any thread, from the main thread (the
 * zygote's parent-death signal fires when the creating thread exits). Blocks until every worker is
 * ready (CPython initialised in the zygote: tens of milliseconds). NULL + err on failure (invalid
 * config naming the field, fork/socket failure, CPython failing to start). */
reward_pool *reward_pool_create(const reward_config *cfg, char *err, size_t errlen);

/* Scores n completions (raw model text; extraction is done here, in the trainer process, with
 * reward_extract_strategy). seeds[i] is completion i's base game seed; game g of a job uses
 * game_seed_mix(seeds[i], g, 0) (completions of one GRPO group get the same base seed).
 * log: when cfg->parallel == 0 and log != NULL, prints each completion's checks and game outcome in order.
 * Results in out[i], ordered by completion index. A worker that dies mid-job (killed or stopped from
 * outside: a sandboxed strategy cannot reach it) is replaced and its job runs again on the fresh worker;
 * if that worker dies too, the job's result is OUTCOME_INFRA_ERROR (never charged to the strategy). Each
 * is said on stderr ("reward pool: ..."). Returns 0, or -1 + err on a pool failure (the zygote is gone,
 * so a worker cannot be replaced; the pool should then be destroyed). */
int reward_pool_score(reward_pool *p, int n, const char *const *completions, const uint64_t *seeds,
                      reward_result *out, FILE *log, char *err, size_t errlen);

/* Scoring completions while they are being generated (the trainer's overlap of rewards with generation):
 * a batch of n completions that arrive one at a time, in any order, each sent to an idle worker as it
 * arrives while the caller goes on with its work (e.g. decoding the other rows), so that the pool's time
 * hides behind it. The jobs, seeds and results are those of reward_pool_score over the same n completions
 * (out[i] is completion i's result whatever the arrival order), so the rewards are identical up to
 * timing-dependent outcomes (a strategy near its time limit, which CPU contention can push over it).
 * One batch per pool at a time; no other pool call while it is open. Single-threaded: the pool makes
 * progress only inside these calls, so a caller that works between them calls reward_batch_poll now and
 * then (the generators' on_step hook: once per decode step).
 *
 *   reward_batch_begin: n completions, results into out (n,), log as reward_pool_score's (parallel = 0:
 *     jobs start in completion-index order and each is printed in order, so a completion waits for the ones
 *     before it). NULL + err when the pool is broken or out of memory.
 *   reward_batch_add: completion i (0 <= i < n, each once) with its base game seed; extracts the strategy
 *     and starts it when a worker is idle, without waiting. Returns 0, or -1 once the pool has failed
 *     (the error comes from reward_batch_finish). Aborts on an out-of-range or repeated i.
 *   reward_batch_poll: collects finished results and starts queued jobs, without waiting. 0 or -1 as above.
 *   reward_batch_pending: completions added and not yet scored.
 *   reward_batch_finish: once all n were added, waits for the last result and frees the batch. Returns 0,
 *     or -1 + err on a pool failure (as reward_pool_score). Aborts when fewer than n were added (unless
 *     the pool failed). */
typedef struct reward_batch reward_batch;
reward_batch *reward_batch_begin(reward_pool *p, int n, reward_result *out, FILE *log, char *err, size_t errlen);
int reward_batch_add(reward_batch *b, int i, const char *completion, uint64_t seed);
int reward_batch_poll(reward_batch *b);
int reward_batch_pending(const reward_batch *b);
int reward_batch_finish(reward_batch *b, char *err, size_t errlen);

/* Same as reward_pool_score, for raw Python sources (no fences; used by `grpo2048 play`). */
int reward_pool_score_sources(reward_pool *p, int n, const char *const *sources, const uint64_t *seeds,
                              reward_result *out, FILE *log, char *err, size_t errlen);

/* Per-game detail for `play`: plays cfg->games_per_strategy games of ONE raw Python source with base
 * seed `seed`, fills games[0 .. min(games_per_strategy, max_games)) (game g's seed is
 * game_seed_mix(seed, g, 0)) and *out. Returns 0, or -1 + err on a pool failure. */
int reward_pool_play(reward_pool *p, const char *source, uint64_t seed, reward_game *games, int max_games,
                     reward_result *out, char *err, size_t errlen);

/* The pids of the current workers (for tests and diagnostics): writes up to max of them to pids and
 * returns how many workers there are. */
int reward_pool_worker_pids(const reward_pool *p, int *pids, int max);

/* Where the pool's time went, summed over the jobs its workers completed since reward_pool_create or
 * the last reward_pool_reset_stats (jobs whose worker died are not included). All times in seconds.
 * Per-job sandbox overhead = (job_seconds - play_seconds) / jobs. */
typedef struct {
    long jobs;               /* results read from workers */
    long children;           /* sandboxed child processes forked for them (≥ 1 per job that was not
                                answered from a worker's check cache; more when a game was killed) */
    long cached_checks;      /* jobs whose source checks came from a worker's cache */
    long minor_faults;       /* page faults of the children (nearly all copy-on-write copies) */
    double fork_seconds;     /* worker's fork() call → the child running */
    double sandbox_seconds;  /* child: process group, fds, rlimits, capabilities, seccomp filter */
    double check_seconds;    /* child: source checks and building the function */
    double play_seconds;     /* child: the games (strategy calls and moves) */
    double finish_seconds;   /* worker: the child's last record → the child reaped */
    double job_seconds;      /* trainer: job sent → result read */
} reward_pool_stats;

/* Copies the pool's statistics into *out. */
void reward_pool_get_stats(const reward_pool *p, reward_pool_stats *out);

/* Zeroes the pool's statistics. */
void reward_pool_reset_stats(reward_pool *p);

/* Kills and reaps the zygote and all workers (and, through them, any job still running). NULL is a
 * no-op. */
void reward_pool_destroy(reward_pool *p);

/* `grpo2048 play --strategy FILE.py [--games N] [--seed S] [--size N] [--target T] [--timeout SEC]
 *  [--memory MIB] [--max-stuck-moves N]`:
 * argv[0] is the command name ("play"). Plays the strategy (raw Python, or a completion with a fenced
 * block) through the same sandbox and prints one JSON line per game to stdout. Returns 0 (also when the
 * strategy fails), 2 on a usage error, 1 when the file cannot be read or the pool cannot start. */
int cmd_play(int argc, char **argv);

#endif
