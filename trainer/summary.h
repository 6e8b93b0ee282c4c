/*
 * trainer/summary.h: reading a finished (or running) run back from its metrics file — opening it by
 * output_dir or file name, choosing the run, and the short end-of-run summary that `grpo2048 train`,
 * `sft` (and `eval`) print and `grpo2048 report` shows at the top of its page.
 *
 * The summary of a GRPO run: the mean `reward` of the first and of the last 10 steps, the games won
 * (`wins`) and timed out (`timeouts`) in those steps, the best distinct strategy (trainer/strategies.h)
 * with its mean reward, plays and wins, the wall time (runs.started → ended) and the training time
 * (sum of step_time), and the tokens per second over the whole run (sum of tokens_per_second ×
 * step_time / sum of step_time: the run's tokens over its step time). An SFT run: `loss` and
 * `eval_loss` first vs last. A run of another kind (an eval run) or any run with eval_* metrics: their
 * mean over the run's steps. Then where to look next: `grpo2048 report DIR`, `grpo2048 best DIR`, the
 * sqlite3 file. Only metrics that exist are printed, so older files and other kinds work.
 */
#ifndef GRPO2048_SUMMARY_H
#define GRPO2048_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

#include <sqlite3.h>

/* Opens the metrics file of `path` read-only: path is a metrics file itself or an output_dir holding
 * metrics.sqlite. Fills file (the file's path) and dir (its output_dir, "." for a bare file name), each
 * up to n bytes. Returns 0, or -1 with a message in err naming path (no such file, not SQLite, not a
 * grpo2048 metrics file: PRAGMA user_version 0). */
int summary_open(const char *path, sqlite3 **db, char *file, char *dir, size_t n, char *err, size_t errlen);

/* The run to read: want > 0 that run_id (an error when absent), else the newest run (max run_id).
 * Returns the run_id, or -1 with a message in err naming file (no runs, no run `want`). */
int summary_pick_run(sqlite3 *db, const char *file, int want, char *err, size_t errlen);

/* Writes the summary of run run_id (see the top of this file) to out, its first line and its "next:"
 * line prefixed with `prefix` (e.g. "grpo2048 train: "; NULL = none), the others indented. When next_dir is not NULL, it ends with the
 * "next:" lines naming next_dir. Returns 0, or -1 when the run's rows cannot be read (message in err). */
int summary_write(FILE *out, sqlite3 *db, int run_id, const char *prefix, const char *next_dir, char *err,
                  size_t errlen);

/* End of train/sft/eval: opens output_dir/metrics.sqlite read-only and prints run run_id's summary to
 * out with prefix. Failures are reported as one line on out (a summary is never worth failing a run). */
void summary_print_end(FILE *out, const char *output_dir, int run_id, const char *prefix);

#endif
