/*
 * trainer/metrics.h: the run's metrics file, output_dir/metrics.sqlite, which users read with sqlite3.
 *
 * One file holds every run written into an output_dir: opening it adds a `runs` row (kind, config text,
 * start time, status 'running', the writer's pid and host); each training step is one transaction
 * holding that step's metric rows (TRL's names: reward, loss, kl, ...) and one row per completion (its
 * text, rewards and game outcome), so a step is either entirely in the file or not at all, even if the
 * process dies mid-step; finishing sets the end time and status. The file is in WAL mode, so
 * `sqlite3 metrics.sqlite` can read it while training writes. The schema version is in PRAGMA
 * user_version (METRICS_SCHEMA_VERSION); a file written by a newer grpo2048 is refused rather than
 * misread, and a version-1 file is upgraded in place (three columns added to `runs`).
 *
 * A resumed run (`grpo2048 train --resume`) continues its own row, the same run_id: metrics_resume
 * deletes the rows of steps after the checkpoint's step (they were written after the checkpoint and
 * are computed again), sets the status back to 'running' and counts the resume, all in one
 * transaction. So a run's steps are 1..N with none missing or repeated however often it was resumed.
 *
 * Schema (version 4):
 *   runs(run_id INTEGER PRIMARY KEY, kind TEXT 'grpo'|'sft'|'eval', config TEXT, started TEXT, ended TEXT,
 *        status TEXT 'running'|'completed'|'failed'|'interrupted', pid INTEGER, host TEXT,
 *        resumed INTEGER: times resumed)                                   times: ISO-8601 UTC
 *        (a run whose status is 'running' but whose pid is gone from its host was killed: `grpo2048 runs`
 *        shows it as 'killed')
 *   metrics(run_id, step INTEGER, name TEXT, value REAL, PRIMARY KEY(run_id, step, name))
 *   completions(run_id, step, idx, prompt_idx, text, reward REAL, function_works REAL, no_cheating REAL,
 *        strategy_succeeds REAL, game_progress REAL, outcome TEXT, max_tile INTEGER, score REAL,
 *        moves INTEGER, seconds REAL, error TEXT, rank INTEGER: the data-parallel rank that generated it,
 *        tokens INTEGER, acceptance_rate REAL), indexed on (run_id, step). An eval run (grpo2048 eval)
 *        stores one row per sample: step = problem index, idx = sample index, tokens = generated tokens
 *        and, for power sampling, acceptance_rate (NULL elsewhere and in training rows); its summary
 *        metrics are at step 0 of `metrics`.
 * Upgrades in place: version 1 -> 2 adds runs.pid, host, resumed; 2 -> 3 adds completions.rank (0 for
 * the older rows); 3 -> 4 rebuilds `runs` (its kind check gains 'eval') and adds completions.tokens and
 * acceptance_rate.
 *   view steps(run_id, step, one column per name in metrics_names[]): the metrics table pivoted, e.g.
 *        sqlite3 runs/x/metrics.sqlite 'select step, reward, "rewards/game_progress/mean" from steps'
 *
 * Usage per run: metrics_open or metrics_resume → (metrics_begin_step → metrics_add / metrics_add_completion ... →
 * metrics_commit_step) per step → metrics_finish. Calls out of this order abort with file:line
 * (programming errors); database failures return -1 with a message from metrics_error().
 */
#ifndef GRPO2048_METRICS_H
#define GRPO2048_METRICS_H

#include <stddef.h>

#define METRICS_SCHEMA_VERSION 4

/* The metric names the `steps` view has columns for (TRL's names where TRL logs the quantity; each is
 * documented in docs/metrics.md): reward, reward_std, rewards/<function>/mean and /std,
 * completions/{mean,min,max}_length, completions/{mean,min,max}_terminated_length,
 * completions/clipped_ratio, frac_reward_zero_std, loss, grad_norm, learning_rate, kl, entropy,
 * clip_ratio/{low_mean,low_min,high_mean,high_max,region_mean}, num_tokens, step_time, generation_time,
 * reward_time, train_time, tokens_per_second, timeouts, stuck, wins, epoch, eval_loss, the eval/...
 * metrics of evaluation during training, and the gpu/... metrics of GPU telemetry (trainer/gpu_telemetry.h;
 * NULL where a run has no NVML or runs on the CPU). metrics_add accepts other names too; they are stored in
 * `metrics` but have no column in `steps`. */
extern const char *const metrics_names[];
extern const int metrics_num_names;

typedef struct metrics_db metrics_db;

/* Opens (creating if absent) the SQLite file at path, creates the schema if the file is new, and adds
 * a run: kind "grpo", "sft" or "eval" (anything else aborts), config_text (NULL = "") stored as is, status
 * 'running'. Returns the handle, or NULL with a message in err naming path: not a database, a
 * database that is not a grpo2048 metrics file, a schema version newer than METRICS_SCHEMA_VERSION,
 * or an I/O or locking failure. The folder must exist. */
metrics_db *metrics_open(const char *path, const char *kind, const char *config_text, char *err, size_t errlen);

/* Reopens the metrics file at path to continue run run_id from a checkpoint of step `step`: in one
 * transaction, deletes that run's metrics and completions rows of steps > step, sets its status to
 * 'running' (ended NULL), its pid and host to this process's, replaces its config text with
 * config_text (NULL = keep) and adds 1 to `resumed`. Returns the handle, or NULL with a message; when
 * the file has no grpo run run_id (*missing set to 1: the caller may start a new run instead), or the
 * file cannot be opened as for metrics_open (*missing 0). */
metrics_db *metrics_resume(const char *path, int run_id, int step, const char *config_text, int *missing, char *err,
                           size_t errlen);

/* Starts step `step`'s transaction (BEGIN IMMEDIATE). Aborts if a step is already open. Returns 0 or -1. */
int metrics_begin_step(metrics_db *db, int step);

/* Adds metric `name` = value to the open step (a NaN is stored as NULL). A name may appear once per
 * step. Returns 0, or -1 and the step is marked failed (metrics_commit_step will roll it back). */
int metrics_add(metrics_db *db, const char *name, double value);

/* One completion of the open step. text, outcome and error may be NULL (stored as NULL). rewards is
 * in config_reward_names order: function_works, no_cheating, strategy_succeeds, game_progress. */
typedef struct {
    int idx, prompt_idx;       /* completion index in the step (0..B*G-1) and its prompt's index */
    const char *text;          /* the completion's text */
    double reward;             /* weighted total reward */
    double rewards[4];         /* each reward function's value */
    const char *outcome;       /* e.g. "success", "failed", "timeout", "invalid" (free-form) */
    long long max_tile;        /* largest tile reached */
    double score;              /* game score */
    int moves;                 /* moves played */
    double seconds;            /* wall time the strategy took, seconds */
    const char *error;         /* why it failed, or NULL */
    int rank;                  /* the data-parallel rank that generated and scored it (0 in one-process runs) */
    int has_sampling;          /* 0: tokens and acceptance_rate are stored as NULL (training rows) */
    long long tokens;          /* generated tokens of the sample */
    double acceptance_rate;    /* power sampling's MH acceptance rate; NaN = NULL (other samplers) */
} metrics_completion;

/* Adds one completion row to the open step. Returns 0, or -1 and the step is marked failed. */
int metrics_add_completion(metrics_db *db, const metrics_completion *c);

/* Commits the open step: all its rows become visible together. If an add failed during the step, or
 * the COMMIT itself fails, the whole step is rolled back (none of its rows are stored) and -1 is
 * returned. The step is closed either way. */
int metrics_commit_step(metrics_db *db);

/* Discards the open step's rows (ROLLBACK) and closes it. Returns 0 or -1. */
int metrics_rollback_step(metrics_db *db);

/* Rolls back an open step, sets the run's `ended` time and status ("completed", "failed" or
 * "interrupted"; anything else aborts), closes the file and frees db. Returns 0, or -1 with the
 * message in metrics_error(NULL) (db is freed in both cases). */
int metrics_finish(metrics_db *db, const char *status);

/* The run_id of this run's row in `runs`. */
int metrics_run_id(const metrics_db *db);

/* The last error message for db; with db = NULL, the calling thread's last metrics_finish error. */
const char *metrics_error(const metrics_db *db);

#endif
