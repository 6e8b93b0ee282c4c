/*
 * trainer/progress.h: the training loop's progress display.
 *
 * On a terminal (isatty of the output stream) it is one line redrawn in place with '\r', in tqdm's
 * format:
 *     train:  42%|████▏     | 42/100 [01:03<01:27,  1.50s/it, reward=3.21]
 * (elapsed<remaining as [h:]mm:ss, seconds per iteration below 1 it/s else iterations per second,
 * then the postfix: fields separated by ", ", most important first). The line fits the terminal's
 * width by leaving whole parts out, never by cutting one (a number is never shown cut): first the
 * postfix fields after the first `main_fields` (from the last), then the bar, then the description,
 * then the main fields (from the last), then the rate, the remaining time, the percentage and the
 * times. Otherwise (a log file, a pipe, CI) it prints a plain line every
 * log_every steps and at the last step:
 *     step 42/100 | elapsed 63.1s | 1.50 s/it | reward=3.21
 * Times come from CLOCK_MONOTONIC, so wall-clock changes do not distort the rate.
 *
 * The two formatters are pure functions of (done, total, elapsed seconds, postfix) so they can be
 * tested without a clock or a terminal.
 */
#ifndef GRPO2048_PROGRESS_H
#define GRPO2048_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *desc;      /* label before the bar, e.g. "train" (not copied: must outlive the progress) */
    int total;             /* steps in all, >= 0 */
    FILE *out;
    int tty;               /* 1: redraw one line; 0: plain lines (set by progress_start from isatty) */
    int log_every;         /* plain mode: print every log_every steps; 1 after progress_start, set it
                              to logging_steps */
    double start;          /* monotonic seconds at progress_start */
    int done;              /* steps done at the last update */
    int initial;           /* steps already done when the clock started (a resumed run; set it with done):
                              the rate counts only the steps since (tqdm's `initial`) */
    int last_logged;       /* plain mode: the step of the last printed line (-1: none) */
    int drawn_cols;        /* tty mode: columns of the line drawn last, to blank what a shorter one leaves */
    int main_fields;       /* postfix fields kept in preference to the bar on a narrow terminal (3 after
                              progress_start; the callers put reward/loss, tokens/s and memory first) */
    char postfix[512];     /* the last postfix given */
} progress;

/* Starts the clock; total = steps expected (0 = unknown: no percentage or remaining time). */
void progress_start(progress *p, const char *desc, int total, FILE *out);

/* Reports `done` steps finished, with an optional postfix ("reward=3.21 loss=0.01"; NULL = none,
 * truncated to 511 bytes). Redraws the line on a terminal; prints a plain line when done is a multiple
 * of log_every or equals total. */
void progress_update(progress *p, int done, const char *postfix);

/* Blanks the terminal line so other output can be printed; the next update redraws it. No-op when
 * not a terminal. */
void progress_clear(progress *p);

/* Ends the display: on a terminal, redraws the last state and moves to a new line; otherwise prints
 * the last step's line if it was not printed yet. */
void progress_finish(progress *p);

/* tqdm's line for done/total after elapsed_s seconds, of which `initial` steps were done before the
 * clock started (they count for the bar, not for the rate), in at most max_cols display columns (0 = no
 * limit; UTF-8 characters count one column each), parts left out as described at the top when it is
 * wider: postfix fields (split at ", ") after the first main_fields go first, then the bar. Writes a
 * NUL-terminated string into buf (n bytes) and returns its display width in columns. */
int progress_format_bar(char *buf, size_t n, const char *desc, int done, int initial, int total, double elapsed_s,
                        const char *postfix, int main_fields, int max_cols);

/* This process's resident memory now, GiB (2^30 bytes), from /proc/self/statm; -1 where /proc does not
 * say. For the progress line's memory field on the CPU. */
double progress_rss_gib(void);

/* The memory field of the postfix: "mem=0.52G" (this process's RSS, GiB) when device_used_gib < 0 (a
 * CPU run), else "gpu_mem=12.3G" (device memory in use, GiB, as the backend reports it). "" when the
 * RSS is unknown. */
void progress_format_memory(char *buf, size_t n, double device_used_gib);

/* The plain line for done/total after elapsed_s seconds (`initial` as above). Writes into buf (n bytes);
 * returns its length. */
int progress_format_line(char *buf, size_t n, int done, int initial, int total, double elapsed_s, const char *postfix);

#endif
