/*
 * trainer/report.c: `grpo2048 report RUN_DIR|metrics.sqlite [--out FILE.html] [--png DIR]` — one
 * self-contained HTML page that shows a run: its summary, plots of every metric it logged, the best
 * distinct strategies with their source, and its config.
 *
 * Data. Every metric row of the run (table `metrics`, so files of any grpo2048 version and runs of
 * any kind work) becomes a series (step, value); a few series are derived: the rolling mean of the
 * reward and of each reward function's mean (trailing window of REPORT_ROLLING points), the per-step
 * share of each completion outcome, the mean max tile and win rate per step (table `completions`), and
 * the step time not spent in generation, rewards or training ("other"). Each plot is declared in
 * plot_table below; a plot whose series are all absent is left out, and every metric no plot names
 * gets a plot of its own under "Other metrics", so nothing a run logged is hidden.
 *
 * Plots are drawn by gnuplot (Debian's gnuplot-nox: its svg and pngcairo terminals need no X server):
 * a maintained plotting program with axes, tick choice, legends and stacked areas done right, driven by
 * one generated script per report (one process for all plots). Its SVGs are inlined into the HTML (ids
 * prefixed per plot so they cannot clash), so the page needs no network and no other file. The data
 * plotted is also embedded as JSON (<script type="application/json" id="grpo2048-report-data">), which
 * is how tests/trainer/test_report.c checks every point against the metrics file, and how a reader can
 * take the numbers out of the page.
 *
 * The HTML is written to a temporary file in the destination folder, flushed and renamed; PNGs the same
 * way, one per plot, named after the plot's id.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "trainer/strategies.h"
#include "trainer/summary.h"

extern char **environ;

#define REPORT_ROLLING 10      /* points in the trailing rolling mean */
#define REPORT_MAX_SERIES 16   /* series in one plot */

static const char *const usage_text =
    "usage: grpo2048 report RUN_DIR|FILE.sqlite [--out FILE.html] [--png DIR] [--run-id N] [--top N]\n"
    "                       [--min-plays N]\n\n"
    "Writes one self-contained HTML page (no network needed to view it) about a run: its summary; plots of\n"
    "the reward and each reward function (with a rolling mean of 10 steps), the outcome shares per step,\n"
    "mean max tile and win rate, completion lengths, loss, KL, entropy, clip ratios, grad norm, learning\n"
    "rate, step time (generation / reward / train / other, stacked), tokens per second, memory, GPU\n"
    "telemetry and evaluation when logged, and every other metric; a table of the best distinct\n"
    "strategies with their source; the config. Plots are drawn by gnuplot (Debian: gnuplot-nox).\n\n"
    "  --out FILE.html  where to write it (default RUN_DIR/report.html)\n"
    "  --png DIR        also write one PNG per plot into DIR (created if missing), named after the plot\n"
    "  --run-id N       the run to show (default: the newest run in the file; `grpo2048 runs` lists them)\n"
    "  --top N          strategies in the table (default 10)\n"
    "  --min-plays N    strategies played at least N times rank before the others (default 3; 1 = plain\n"
    "                   ranking by mean reward, where one lucky game puts a strategy first)\n"
    "Set GRPO2048_GNUPLOT to use another gnuplot binary.\n";

/* ---------- series ---------- */

typedef struct {
    char *name;       /* metric name, or a derived series' name */
    char *source;     /* how it was computed, for the JSON and the reader */
    int n, cap;
    int *step;        /* (n,) ascending */
    double *value;    /* (n,), NAN for a NULL value */
    int used;         /* named by a plot */
} series;

typedef struct {
    series *s;
    int n, cap;
} series_set;

static series *series_find(series_set *set, const char *name) {
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->s[i].name, name)) return &set->s[i];
    return NULL;
}

static series *series_add(series_set *set, const char *name, const char *source) {
    if (set->n == set->cap) {
        int cap = set->cap ? 2 * set->cap : 64;
        series *p = realloc(set->s, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        set->s = p;
        set->cap = cap;
    }
    series *s = &set->s[set->n];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->source = strdup(source);
    if (!s->name || !s->source) { free(s->name); free(s->source); return NULL; }
    set->n++;
    return s;
}

static int series_push(series *s, int step, double v) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        int *st = realloc(s->step, sizeof *st * (size_t)cap);
        if (!st) return -1;
        s->step = st;
        double *va = realloc(s->value, sizeof *va * (size_t)cap);
        if (!va) return -1;
        s->value = va;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->value[s->n] = v;
    s->n++;
    return 0;
}

static int series_finite(const series *s) {
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->value[i])) return 1;
    return 0;
}

static void series_set_free(series_set *set) {
    for (int i = 0; i < set->n; i++) {
        free(set->s[i].name);
        free(set->s[i].source);
        free(set->s[i].step);
        free(set->s[i].value);
    }
    free(set->s);
    memset(set, 0, sizeof *set);
}

/* Every metric row of the run: one series per name, steps ascending. */
static int load_metrics(sqlite3 *db, int run_id, series_set *set, char *err, size_t errlen) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name, step, value FROM metrics WHERE run_id = ? ORDER BY name, step", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the metrics: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int(st, 1, run_id);
    series *cur = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name) continue;
        if (!cur || strcmp(cur->name, name)) {
            char src[160];
            snprintf(src, sizeof src, "metrics: name = '%.100s'", name);
            if (!(cur = series_add(set, name, src))) break;
        }
        const double v = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
        if (series_push(cur, sqlite3_column_int(st, 1), v) != 0) break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading the metrics: %s", rc == SQLITE_ROW ? "out of memory" : sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* The outcomes every grpo2048 writes, in the order their areas are stacked (others after them). */
static const char *const known_outcomes[] = {"success", "failed", "timeout", "stuck", "exception", "invalid_move",
                                             "memory", "crash", "syntax_error", "no_function", "build_failed",
                                             "banned_import", "infra_error"};
#define NUM_KNOWN_OUTCOMES ((int)(sizeof known_outcomes / sizeof known_outcomes[0]))

/* Per-step series from the completions table: outcome shares ("outcome/<name>"), "games/mean_max_tile"
 * and "games/win_rate" (share of completions whose outcome is success). Nothing when the table is
 * absent. */
static int load_completions(sqlite3 *db, int run_id, series_set *set, char *err, size_t errlen) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'completions'", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    const int has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!has) return 0;
    /* one row per (step, outcome) with its share of the step's completions */
    static const char *const sql =
        "SELECT c.step, coalesce(c.outcome, 'none'), count(*) * 1.0 / t.n FROM completions c "
        "JOIN (SELECT step, count(*) AS n FROM completions WHERE run_id = ?1 GROUP BY step) t ON t.step = c.step "
        "WHERE c.run_id = ?1 GROUP BY c.step, c.outcome ORDER BY c.step";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the completions: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int(st, 1, run_id);
    int rc;
    /* collect the steps first so every outcome series has a point (0 when absent) at every step */
    int *steps = NULL, nsteps = 0, cap = 0;
    typedef struct { int step; char outcome[40]; double share; } row;
    row *rows = NULL;
    int nrows = 0, rcap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nrows == rcap) {
            rcap = rcap ? 2 * rcap : 256;
            row *r = realloc(rows, sizeof *r * (size_t)rcap);
            if (!r) break;
            rows = r;
        }
        row *r = &rows[nrows++];
        r->step = sqlite3_column_int(st, 0);
        snprintf(r->outcome, sizeof r->outcome, "%s", (const char *)sqlite3_column_text(st, 1));
        r->share = sqlite3_column_double(st, 2);
        if (!nsteps || steps[nsteps - 1] != r->step) {
            if (nsteps == cap) {
                cap = cap ? 2 * cap : 256;
                int *p = realloc(steps, sizeof *p * (size_t)cap);
                if (!p) break;
                steps = p;
            }
            steps[nsteps++] = r->step;
        }
    }
    sqlite3_finalize(st);
    int fail = rc != SQLITE_DONE;
    /* outcome names: the known ones first, then the others in order of appearance */
    const char *names[64];
    int nnames = 0;
    for (int k = 0; k < NUM_KNOWN_OUTCOMES; k++)
        for (int i = 0; i < nrows; i++)
            if (!strcmp(rows[i].outcome, known_outcomes[k])) { names[nnames++] = known_outcomes[k]; break; }
    for (int i = 0; i < nrows && nnames < 64; i++) {
        int seen = 0;
        for (int k = 0; k < nnames; k++) seen |= !strcmp(names[k], rows[i].outcome);
        if (!seen) names[nnames++] = rows[i].outcome;
    }
    for (int k = 0; k < nnames && !fail; k++) {
        char name[96], src[200];
        snprintf(name, sizeof name, "outcome/%s", names[k]);
        snprintf(src, sizeof src, "completions: share of the step's rows with outcome = '%s'", names[k]);
        series *s = series_add(set, name, src);
        if (!s) { fail = 1; break; }
        int j = 0;
        for (int i = 0; i < nsteps && !fail; i++) {
            double v = 0;
            for (; j < nrows && rows[j].step == steps[i]; j++)
                if (!strcmp(rows[j].outcome, names[k])) v = rows[j].share;
            fail |= series_push(s, steps[i], v) != 0;
        }
    }
    free(rows);
    free(steps);
    if (fail) {
        snprintf(err, errlen, "reading the completions: %s", rc != SQLITE_DONE ? sqlite3_errmsg(db) : "out of memory");
        return -1;
    }
    static const char *const sql2 =
        "SELECT step, avg(max_tile), avg(coalesce(outcome, '') = 'success') FROM completions WHERE run_id = ? "
        "GROUP BY step ORDER BY step";
    if (sqlite3_prepare_v2(db, sql2, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the completions: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int(st, 1, run_id);
    series *tile = series_add(set, "games/mean_max_tile", "completions: avg(max_tile) of the step's rows");
    series *win = series_add(set, "games/win_rate", "completions: share of the step's rows with outcome = 'success'");
    fail = !tile || !win;
    while (!fail && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const int step = sqlite3_column_int(st, 0);
        const double t = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
        fail |= series_push(tile, step, t) != 0 || series_push(win, step, sqlite3_column_double(st, 2)) != 0;
    }
    sqlite3_finalize(st);
    if (fail) {
        snprintf(err, errlen, "reading the completions: out of memory");
        return -1;
    }
    return 0;
}

/* name + " (rolling mean)": the mean of the last REPORT_ROLLING finite values of src at each of its
 * finite points (fewer at the start). */
static int add_rolling(series_set *set, const char *name) {
    series *src = series_find(set, name);
    if (!src || !series_finite(src)) return 0;
    char rname[160], rsrc[200];
    snprintf(rname, sizeof rname, "%s (rolling mean)", name);
    snprintf(rsrc, sizeof rsrc, "mean of the last %d values of %s (fewer at the start)", REPORT_ROLLING, name);
    const int idx = (int)(src - set->s);
    series *r = series_add(set, rname, rsrc);
    if (!r) return -1;
    src = &set->s[idx];   /* series_add may have moved the array */
    double window[REPORT_ROLLING];
    int k = 0;
    for (int i = 0; i < src->n; i++) {
        if (!isfinite(src->value[i])) continue;
        window[k % REPORT_ROLLING] = src->value[i];
        k++;
        const int m = k < REPORT_ROLLING ? k : REPORT_ROLLING;
        double sum = 0;
        for (int j = k - m; j < k; j++) sum += window[j % REPORT_ROLLING];
        if (series_push(r, src->step[i], sum / m) != 0) return -1;
    }
    return 0;
}

/* "time/other": step_time minus generation, reward-wait and train time (the logging, checkpoints,
 * evaluation); only when step_time and train_time exist. The rewards' part is reward_wait_time (the
 * wait after generation: with rewards.overlap the pool scores while generating, so reward_time overlaps
 * generation_time), or reward_time in files from before reward_wait_time existed. A missing phase
 * counts 0. */
static int add_other_time(series_set *set) {
    series *st = series_find(set, "step_time");
    if (!st || !series_find(set, "train_time")) return 0;
    const int ist = (int)(st - set->s);
    const int wait = series_find(set, "reward_wait_time") != NULL;
    series *o = series_add(set, "time/other", wait ? "step_time - generation_time - reward_wait_time - train_time (0 when negative)"
                                                   : "step_time - generation_time - reward_time - train_time (0 when negative)");
    if (!o) return -1;
    st = &set->s[ist];
    const char *const parts[] = {"generation_time", wait ? "reward_wait_time" : "reward_time", "train_time"};
    for (int i = 0; i < st->n; i++) {
        double v = st->value[i];
        for (int p = 0; p < 3; p++) {
            series *s = series_find(set, parts[p]);
            for (int j = 0; s && j < s->n; j++)
                if (s->step[j] == st->step[i] && isfinite(s->value[j])) v -= s->value[j];
        }
        if (series_push(o, st->step[i], v > 0 ? v : 0) != 0) return -1;
    }
    return 0;
}

/* ---------- plots ---------- */

enum { STYLE_LINES = 0, STYLE_STACKED = 1 };

typedef struct {
    const series *s;
    char title[128];
    int axis2;        /* drawn against the right-hand axis */
    int emphasis;     /* 1: thick line (a rolling mean); -1: points only (the raw values under it) */
    const char *color;
} plot_series;

typedef struct {
    char id[80];
    char title[160];
    char section[48];
    char ylabel[64], y2label[64];
    int style;
    plot_series ps[REPORT_MAX_SERIES];
    int n;
} plot;

typedef struct {
    plot *p;
    int n, cap;
} plot_list;

static plot *plot_new(plot_list *pl, const char *id, const char *title, const char *section, const char *ylabel,
                      int style) {
    if (pl->n == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 32;
        plot *p = realloc(pl->p, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        pl->p = p;
        pl->cap = cap;
    }
    plot *p = &pl->p[pl->n];
    memset(p, 0, sizeof *p);
    /* ids become file names and HTML ids: letters, digits, '-' */
    size_t k = 0;
    for (const char *c = id; *c && k + 1 < sizeof p->id; c++)
        p->id[k++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '-';
    p->id[k] = '\0';
    /* two names can map to one id ("eval_games" and the plot "eval-games"): later ones get "-2", "-3"... */
    char base[sizeof p->id];
    snprintf(base, sizeof base, "%s", p->id);
    for (int dup = 2;; dup++) {
        int clash = 0;
        for (int i = 0; i < pl->n; i++) clash |= !strcmp(pl->p[i].id, p->id);
        if (!clash) break;
        snprintf(p->id, sizeof p->id, "%.60s-%d", base, dup);
    }
    snprintf(p->title, sizeof p->title, "%s", title);
    snprintf(p->section, sizeof p->section, "%s", section);
    snprintf(p->ylabel, sizeof p->ylabel, "%s", ylabel ? ylabel : "");
    p->style = style;
    return p;
}

/* Adds series `name` to p when the run has it with a finite value; marks it used either way. */
static void plot_add(plot *p, series_set *set, const char *name, const char *title, int axis2, int emphasis,
                     const char *color) {
    series *s = series_find(set, name);
    if (!s) return;
    s->used = 1;
    if (!series_finite(s) || p->n == REPORT_MAX_SERIES) return;
    plot_series *q = &p->ps[p->n++];
    q->s = s;
    snprintf(q->title, sizeof q->title, "%s", title ? title : name);
    q->axis2 = axis2;
    q->emphasis = emphasis;
    q->color = color;
}

/* Keeps the plot just made only when it got a series. */
static void plot_keep(plot_list *pl) {
    if (pl->n < pl->cap && pl->p[pl->n].n > 0) pl->n++;
}

static const char *outcome_color(const char *o) {
    static const struct { const char *o, *c; } colors[] = {
        {"success", "#2ca02c"}, {"failed", "#1f77b4"}, {"timeout", "#ff7f0e"}, {"stuck", "#bcbd22"},
        {"exception", "#d62728"}, {"invalid_move", "#9467bd"}, {"memory", "#e377c2"}, {"crash", "#8c564b"},
        {"syntax_error", "#7f7f7f"}, {"no_function", "#c7c7c7"}, {"build_failed", "#17becf"},
        {"banned_import", "#000000"}, {"infra_error", "#f7b6d2"}};
    for (size_t i = 0; i < sizeof colors / sizeof colors[0]; i++)
        if (!strcmp(colors[i].o, o)) return colors[i].c;
    return NULL;
}

/* The plots, in page order (see the top of the file). */
static int build_plots(series_set *set, plot_list *pl) {
    plot *p;
#define NEW(id, title, section, ylabel, style) \
    do { if (!(p = plot_new(pl, id, title, section, ylabel, style))) return -1; } while (0)
    NEW("reward", "reward (mean over the step's completions)", "Rewards", "reward", STYLE_LINES);
    plot_add(p, set, "reward", "reward", 0, -1, "#1f77b4");
    plot_add(p, set, "reward (rolling mean)", "rolling mean (10 steps)", 0, 1, "#d62728");
    plot_keep(pl);
    /* one plot per reward function, in the order the file has them */
    for (int i = 0; i < set->n; i++) {
        const char *n = set->s[i].name;
        const size_t len = strlen(n);
        if (strncmp(n, "rewards/", 8) || len < 14 || strcmp(n + len - 5, "/mean") || strstr(n, "(rolling")) continue;
        char id[128], title[160], roll[160];
        snprintf(id, sizeof id, "%.*s", (int)(len - 5), n);
        snprintf(title, sizeof title, "%s (mean over the step's completions)", n);
        snprintf(roll, sizeof roll, "%s (rolling mean)", n);
        NEW(id, title, "Rewards", "reward", STYLE_LINES);
        plot_add(p, set, n, n, 0, -1, "#1f77b4");
        plot_add(p, set, roll, "rolling mean (10 steps)", 0, 1, "#d62728");
        plot_keep(pl);
    }
    NEW("outcomes", "outcomes: share of the step's completions", "Games", "share", STYLE_STACKED);
    for (int i = 0; i < set->n; i++)
        if (!strncmp(set->s[i].name, "outcome/", 8))
            plot_add(p, set, set->s[i].name, set->s[i].name + 8, 0, 0, outcome_color(set->s[i].name + 8));
    plot_keep(pl);
    NEW("games", "mean max tile and win rate per step", "Games", "mean max tile", STYLE_LINES);
    snprintf(p->y2label, sizeof p->y2label, "win rate");
    plot_add(p, set, "games/mean_max_tile", "mean max tile", 0, 0, "#1f77b4");
    plot_add(p, set, "games/win_rate", "win rate (right axis)", 1, 0, "#2ca02c");
    plot_keep(pl);
    NEW("wins-timeouts", "games won, timed out and stuck per step", "Games", "games", STYLE_LINES);
    plot_add(p, set, "wins", NULL, 0, 0, "#2ca02c");
    plot_add(p, set, "timeouts", NULL, 0, 0, "#ff7f0e");
    plot_add(p, set, "stuck", NULL, 0, 0, "#bcbd22");
    plot_add(p, set, "infra_errors", NULL, 0, 0, "#f7b6d2");
    plot_keep(pl);
    NEW("completion-length", "completion length (tokens)", "Completions", "tokens", STYLE_LINES);
    snprintf(p->y2label, sizeof p->y2label, "clipped ratio");
    plot_add(p, set, "completions/mean_length", "mean", 0, 1, "#1f77b4");
    plot_add(p, set, "completions/min_length", "min", 0, 0, "#aec7e8");
    plot_add(p, set, "completions/max_length", "max", 0, 0, "#9467bd");
    plot_add(p, set, "completions/clipped_ratio", "clipped ratio (right axis)", 1, 0, "#d62728");
    plot_keep(pl);
    NEW("loss", "loss", "Optimization", "loss", STYLE_LINES);
    plot_add(p, set, "loss", NULL, 0, 0, "#1f77b4");
    plot_add(p, set, "policy_loss", NULL, 0, 0, "#ff7f0e");
    plot_add(p, set, "eval_loss", NULL, 0, 0, "#d62728");
    plot_keep(pl);
    NEW("kl", "KL to the reference model (k3)", "Optimization", "kl", STYLE_LINES);
    plot_add(p, set, "kl", NULL, 0, 0, "#1f77b4");
    plot_keep(pl);
    NEW("entropy", "entropy of the completion tokens (nats)", "Optimization", "nats", STYLE_LINES);
    plot_add(p, set, "entropy", NULL, 0, 0, "#1f77b4");
    plot_keep(pl);
    NEW("clip-ratios", "clip ratios", "Optimization", "fraction", STYLE_LINES);
    static const char *const clips[] = {"clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/low_min",
                                        "clip_ratio/high_mean", "clip_ratio/high_max", "cispo_clip_ratio"};
    for (int i = 0; i < 6; i++) plot_add(p, set, clips[i], NULL, 0, 0, NULL);
    plot_keep(pl);
    NEW("grad-norm", "gradient norm (before clipping)", "Optimization", "L2 norm", STYLE_LINES);
    plot_add(p, set, "grad_norm", NULL, 0, 0, "#1f77b4");
    plot_keep(pl);
    NEW("learning-rate", "learning rate", "Optimization", "learning rate", STYLE_LINES);
    plot_add(p, set, "learning_rate", NULL, 0, 0, "#1f77b4");
    plot_keep(pl);
    if (series_find(set, "train_time")) {
        NEW("step-time", "step time: generation, rewards, training, other (stacked)", "Time and speed", "seconds",
            STYLE_STACKED);
        plot_add(p, set, "generation_time", "generation", 0, 0, "#1f77b4");
        if (series_find(set, "reward_wait_time"))
            plot_add(p, set, "reward_wait_time", "waiting for rewards", 0, 0, "#ff7f0e");
        else
            plot_add(p, set, "reward_time", "rewards", 0, 0, "#ff7f0e");
        plot_add(p, set, "train_time", "training", 0, 0, "#2ca02c");
        plot_add(p, set, "time/other", "other", 0, 0, "#7f7f7f");
        series *st = series_find(set, "step_time");
        if (st) st->used = 1;   /* it is the stack's total */
    } else {
        NEW("step-time", "step time", "Time and speed", "seconds", STYLE_LINES);
        plot_add(p, set, "step_time", NULL, 0, 0, "#1f77b4");
    }
    plot_keep(pl);
    NEW("reward-time", "reward pool: busy time and the wait after generation (seconds)", "Time and speed", "seconds",
        STYLE_LINES);
    plot_add(p, set, "reward_time", "reward_time (pool busy, overlaps generation)", 0, 0, "#ff7f0e");
    plot_add(p, set, "reward_wait_time", "reward_wait_time", 0, 0, "#d62728");
    plot_keep(pl);
    NEW("tokens-per-second", "tokens per second (prompt + completion tokens / step time)", "Time and speed",
        "tokens/s", STYLE_LINES);
    plot_add(p, set, "tokens_per_second", NULL, 0, 0, "#1f77b4");
    plot_keep(pl);
    NEW("memory", "memory (GiB)", "Memory and GPU", "GiB", STYLE_LINES);
    plot_add(p, set, "memory/rss_gb", "peak RSS of the trainer (CPU)", 0, 0, "#1f77b4");
    plot_add(p, set, "gpu/memory_used_gb", "GPU memory used (NVML)", 0, 0, "#d62728");
    plot_add(p, set, "gpu/model_peak_memory_gb", "model's peak device memory", 0, 0, "#9467bd");
    plot_keep(pl);
    NEW("gpu-utilization", "GPU utilization per phase (%)", "Memory and GPU", "%", STYLE_LINES);
    static const char *const util[] = {"gpu/utilization", "gpu/generation/utilization", "gpu/reward/utilization",
                                       "gpu/train/utilization", "gpu/other/utilization"};
    for (int i = 0; i < 5; i++) plot_add(p, set, util[i], NULL, 0, 0, NULL);
    plot_keep(pl);
    NEW("gpu-clock", "GPU SM clock (MHz)", "Memory and GPU", "MHz", STYLE_LINES);
    plot_add(p, set, "gpu/sm_clock_mhz", "mean", 0, 0, NULL);
    plot_add(p, set, "gpu/sm_clock_mhz_min", "minimum", 0, 0, NULL);
    plot_keep(pl);
    NEW("gpu-power", "GPU power (W) and temperature (C)", "Memory and GPU", "watts", STYLE_LINES);
    snprintf(p->y2label, sizeof p->y2label, "degrees C");
    plot_add(p, set, "gpu/power_w", "power", 0, 0, NULL);
    plot_add(p, set, "gpu/temperature_c", "temperature (right axis)", 1, 0, NULL);
    plot_keep(pl);
    NEW("eval-reward", "evaluation reward", "Evaluation", "reward", STYLE_LINES);
    plot_add(p, set, "eval_reward", NULL, 0, 1, "#1f77b4");
    for (int i = 0; i < set->n; i++)
        if (!strncmp(set->s[i].name, "eval_rewards/", 13)) plot_add(p, set, set->s[i].name, NULL, 0, 0, NULL);
    plot_keep(pl);
    NEW("eval-games", "evaluation: win rate and mean max tile", "Evaluation", "win rate", STYLE_LINES);
    snprintf(p->y2label, sizeof p->y2label, "max tile");
    plot_add(p, set, "eval_win_rate", NULL, 0, 0, "#2ca02c");
    plot_add(p, set, "eval_max_tile", "eval_max_tile (right axis)", 1, 0, "#1f77b4");
    plot_keep(pl);
    /* every metric no plot named: a plot of its own */
    for (int i = 0; i < set->n; i++) {
        if (set->s[i].used || strstr(set->s[i].name, "(rolling mean)") || !series_finite(&set->s[i])) continue;
        NEW(set->s[i].name, set->s[i].name, "Other metrics", "", STYLE_LINES);
        plot_add(p, set, set->s[i].name, NULL, 0, 0, "#1f77b4");
        plot_keep(pl);
    }
#undef NEW
    return 0;
}

/* ---------- gnuplot ---------- */

/* A gnuplot string literal (double quotes; \ and " escaped). */
static void gp_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Writes plot p's data file: column 1 the step, then one column per series ("NaN" where it has no
 * point; 0 instead for a stacked plot, whose areas are sums). */
static int write_data(const plot *p, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int *pos = calloc((size_t)p->n, sizeof *pos);
    if (!pos) { fclose(f); return -1; }
    for (;;) {
        int step = 0, any = 0;
        for (int k = 0; k < p->n; k++)
            if (pos[k] < p->ps[k].s->n && (!any || p->ps[k].s->step[pos[k]] < step)) {
                step = p->ps[k].s->step[pos[k]];
                any = 1;
            }
        if (!any) break;
        fprintf(f, "%d", step);
        for (int k = 0; k < p->n; k++) {
            const series *s = p->ps[k].s;
            if (pos[k] < s->n && s->step[pos[k]] == step) {
                const double v = s->value[pos[k]++];
                if (isfinite(v)) fprintf(f, " %.17g", v);
                else fputs(p->style == STYLE_STACKED ? " 0" : " NaN", f);
            } else {
                fputs(p->style == STYLE_STACKED ? " 0" : " NaN", f);
            }
        }
        fputc('\n', f);
    }
    free(pos);
    return fclose(f) == 0 ? 0 : -1;
}

/* The commands that draw p from data file `data` (terminal and output set by the caller). */
static void write_plot_commands(FILE *f, const plot *p, const char *data, int first_step, int last_step) {
    fputs("reset\nset datafile missing \"NaN\"\nset grid lc rgb \"#dddddd\"\n"
          "set key tmargin center horizontal samplen 2\nset border 3\nset tics nomirror\nset xlabel \"step\"\n", f);
    if (last_step - first_step <= 10) fputs("set xtics 1\n", f);
    if (last_step > first_step) fprintf(f, "set xrange [%d:%d]\n", first_step, last_step);
    else fprintf(f, "set xrange [%d:%d]\n", first_step - 1, last_step + 1);
    if (p->ylabel[0]) { fputs("set ylabel ", f); gp_string(f, p->ylabel); fputs(" noenhanced\n", f); }
    int y2 = 0;
    for (int k = 0; k < p->n; k++) y2 |= p->ps[k].axis2;
    if (y2) {
        fputs("set y2tics\nset border 11\n", f);
        if (p->y2label[0]) { fputs("set y2label ", f); gp_string(f, p->y2label); fputs(" noenhanced\n", f); }
    }
    /* areas are drawn top band first; the inverted key lists them bottom band first */
    if (p->style == STYLE_STACKED) fputs("set style fill solid 0.85 noborder\nset yrange [0:*]\nset key invert\n", f);
    fputs("plot ", f);
    if (p->style == STYLE_STACKED) {
        /* area k is the sum of columns 2..k+2, drawn from the top one down so each shows as a band */
        for (int k = p->n - 1; k >= 0; k--) {
            fprintf(f, "%s", k == p->n - 1 ? "" : ", \\\n     ");
            gp_string(f, data);
            fputs(" using 1:(", f);
            for (int j = 0; j <= k; j++) fprintf(f, "%s$%d", j ? "+" : "", j + 2);
            fputs(") with filledcurves x1", f);
            if (p->ps[k].color) fprintf(f, " lc rgb \"%s\"", p->ps[k].color);
            fputs(" title ", f);
            gp_string(f, p->ps[k].title);
            fputs(" noenhanced", f);   /* "_" is not a subscript (and gnuplot's SVG keeps the title) */
        }
    } else {
        for (int k = 0; k < p->n; k++) {
            const plot_series *q = &p->ps[k];
            int points = 0;
            for (int i = 0; i < q->s->n; i++) points += isfinite(q->s->value[i]);
            fprintf(f, "%s", k ? ", \\\n     " : "");
            gp_string(f, data);
            fprintf(f, " using 1:%d", k + 2);
            if (q->emphasis < 0) fputs(" with points pt 7 ps 0.35", f);
            else if (points <= 40) fprintf(f, " with linespoints pt 7 ps 0.5 lw %d", q->emphasis > 0 ? 3 : 1);
            else fprintf(f, " with lines lw %d", q->emphasis > 0 ? 3 : 1);
            if (q->color) fprintf(f, " lc rgb \"%s\"", q->color);
            if (q->axis2) fputs(" axes x1y2", f);
            fputs(" title ", f);
            gp_string(f, q->title);
            fputs(" noenhanced", f);
        }
    }
    fputc('\n', f);
}

/* Runs `gnuplot script` (GRPO2048_GNUPLOT or gnuplot on PATH), its stderr into errlog. Returns 0, or -1
 * with a message. */
static int run_gnuplot(const char *script, const char *errlog, char *err, size_t errlen) {
    const char *gp = getenv("GRPO2048_GNUPLOT");
    if (!gp || !*gp) gp = "gnuplot";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {(char *)gp, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, gp, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s (the plots need gnuplot: on Debian `apt-get install gnuplot-nox`, "
                 "or set GRPO2048_GNUPLOT to its path)", gp, strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) { snprintf(err, errlen, "waiting for %s: %s", gp, strerror(errno)); return -1; }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char msg[600] = "";
    FILE *f = fopen(errlog, "r");
    if (f) { size_t n = fread(msg, 1, sizeof msg - 1, f); msg[n] = '\0'; fclose(f); }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        snprintf(err, errlen, "cannot run %s (the plots need gnuplot: on Debian `apt-get install gnuplot-nox`, or "
                 "set GRPO2048_GNUPLOT to its path)", gp);
    else
        snprintf(err, errlen, "%s %s failed (%s %d): %s", gp, script, WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), msg);
    return -1;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) { free(b); b = NULL; break; }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = n;
    return b;
}

/* ---------- HTML ---------- */

static void html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Writes gnuplot's SVG without its XML prolog, every id prefixed with "<plot id>-" (and the references
 * to them), so that many SVGs can share one page. */
static void write_svg(FILE *f, const char *svg, const char *id) {
    const char *s = strstr(svg, "<svg");
    if (!s) return;
    while (*s) {
        static const char *const keys[] = {"id='", "id=\"", "href='#", "href=\"#", "url(#"};
        int hit = -1;
        for (int k = 0; k < 5; k++)
            if (!strncmp(s, keys[k], strlen(keys[k]))) { hit = k; break; }
        if (hit >= 0) {
            fputs(keys[hit], f);
            fprintf(f, "%s-", id);
            s += strlen(keys[hit]);
        } else {
            fputc(*s++, f);
        }
    }
}

static int count_lines(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static const char *const page_style =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1400px;padding:12px 20px;"
    "color:#222;background:#fff}h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;"
    "border-bottom:1px solid #ddd}pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}"
    ".plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:10px}"
    "figure{margin:0;border:1px solid #e3e3e3;border-radius:4px;padding:4px}figcaption{font-size:13px;"
    "font-weight:600;padding:2px 4px}figure svg{width:100%;height:auto;display:block}"
    "table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #e3e3e3;"
    "padding:3px 6px;text-align:right;vertical-align:top}td.src,th.src{text-align:left}"
    "nav a{margin-right:12px;font-size:13px}.meta{color:#555;font-size:13px}details pre{margin:4px 0}";

static int report_main(const char *path, const char *out_arg, const char *png_dir, int want_run, int top,
                       int min_plays) {
    sqlite3 *db = NULL;
    char file[4096], dir[4096], err[10000] = "", out_path[4200], tmp_path[4300], work[4200] = "";
    series_set set = {0};
    plot_list pl = {0};
    strategy_list sl = {0};
    cJSON *json = NULL;
    char *summary = NULL, *config = NULL;
    size_t summary_len = 0;
    int rc = 1;
    FILE *html = NULL;

    if (summary_open(path, &db, file, dir, sizeof file, err, sizeof err) != 0) goto fail;
    const int run_id = summary_pick_run(db, file, want_run, err, sizeof err);
    if (run_id < 0) goto fail;
    if (out_arg) snprintf(out_path, sizeof out_path, "%s", out_arg);
    else snprintf(out_path, sizeof out_path, "%s/report.html", dir);

    char kind[32] = "?", status[32] = "?", started[40] = "", ended[40] = "";
    {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT kind, status, started, ended, config FROM runs WHERE run_id = ?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int(st, 1, run_id);
            if (sqlite3_step(st) == SQLITE_ROW) {
#define COL(i) (sqlite3_column_text(st, i) ? (const char *)sqlite3_column_text(st, i) : "")
                snprintf(kind, sizeof kind, "%s", COL(0));
                snprintf(status, sizeof status, "%s", COL(1));
                snprintf(started, sizeof started, "%s", COL(2));
                snprintf(ended, sizeof ended, "%s", COL(3));
                config = strdup(COL(4));
#undef COL
            }
            sqlite3_finalize(st);
        }
    }
    if (load_metrics(db, run_id, &set, err, sizeof err) != 0 || load_completions(db, run_id, &set, err, sizeof err) != 0)
        goto fail;
    if (add_rolling(&set, "reward") != 0) goto oom;
    for (int i = 0, n0 = set.n; i < n0; i++) {
        const char *n = set.s[i].name;
        const size_t len = strlen(n);
        if (!strncmp(n, "rewards/", 8) && len > 5 && !strcmp(n + len - 5, "/mean")) {
            char name[200];
            snprintf(name, sizeof name, "%s", n);
            if (add_rolling(&set, name) != 0) goto oom;
        }
    }
    if (add_other_time(&set) != 0) goto oom;
    if (build_plots(&set, &pl) != 0) goto oom;
    if (strategy_list_load(db, run_id, min_plays, &sl, err, sizeof err) != 0) goto fail;
    {
        FILE *ms = open_memstream(&summary, &summary_len);
        if (!ms) goto oom;
        if (summary_write(ms, db, run_id, NULL, NULL, err, sizeof err) != 0) { fclose(ms); goto fail; }
        fclose(ms);
    }
    int first_step = 0, last_step = 0, have_steps = 0;
    for (int i = 0; i < set.n; i++)
        for (int j = 0; j < set.s[i].n; j++) {
            const int s = set.s[i].step[j];
            if (!have_steps || s < first_step) first_step = s;
            if (!have_steps || s > last_step) last_step = s;
            have_steps = 1;
        }

    /* the plots: data files and one gnuplot script in a temporary folder */
    const char *tmpdir = getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/grpo2048-report-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(work)) {
        snprintf(err, sizeof err, "cannot create a temporary folder %s: %s", work, strerror(errno));
        work[0] = '\0';
        goto fail;
    }
    if (png_dir && mkdir(png_dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "--png %s: cannot create the folder: %s", png_dir, strerror(errno));
        goto fail;
    }
    char script[4400], errlog[4400], p2[4400];
    snprintf(script, sizeof script, "%s/plots.gp", work);
    snprintf(errlog, sizeof errlog, "%s/gnuplot.err", work);
    if (pl.n > 0) {
        FILE *gp = fopen(script, "w");
        if (!gp) { snprintf(err, sizeof err, "%s: %s", script, strerror(errno)); goto fail; }
        for (int i = 0; i < pl.n; i++) {
            char data[4400];
            snprintf(data, sizeof data, "%s/%s.dat", work, pl.p[i].id);
            if (write_data(&pl.p[i], data) != 0) {
                fclose(gp);
                snprintf(err, sizeof err, "%s: cannot write: %s", data, strerror(errno));
                goto fail;
            }
            fputs("set terminal svg size 540,320 font \"sans,10\" background \"white\"\nset output ", gp);
            snprintf(p2, sizeof p2, "%s/%s.svg", work, pl.p[i].id);
            gp_string(gp, p2);
            fputc('\n', gp);
            write_plot_commands(gp, &pl.p[i], data, first_step, last_step);
            if (png_dir) {
                fputs("set terminal pngcairo size 960,480 font \"sans,11\" background \"white\"\nset output ", gp);
                snprintf(p2, sizeof p2, "%s/.%s.png.tmp", png_dir, pl.p[i].id);
                gp_string(gp, p2);
                fputc('\n', gp);
                write_plot_commands(gp, &pl.p[i], data, first_step, last_step);
            }
        }
        fputs("set output\n", gp);
        if (fclose(gp) != 0) { snprintf(err, sizeof err, "%s: %s", script, strerror(errno)); goto fail; }
        if (run_gnuplot(script, errlog, err, sizeof err) != 0) {
            size_t l = strlen(err);
            snprintf(err + l, sizeof err - l, "\n(the script and its data are kept in %s)", work);
            work[0] = '\0';   /* kept for whoever debugs it */
            goto fail;
        }
        for (int i = 0; png_dir && i < pl.n; i++) {
            char final[4400];
            snprintf(p2, sizeof p2, "%s/.%s.png.tmp", png_dir, pl.p[i].id);
            snprintf(final, sizeof final, "%s/%s.png", png_dir, pl.p[i].id);
            if (rename(p2, final) != 0) {
                snprintf(err, sizeof err, "%s: %s", final, strerror(errno));
                goto fail;
            }
        }
    }

    /* the embedded data */
    json = cJSON_CreateObject();
    if (!json) goto oom;
    cJSON_AddStringToObject(json, "format", "grpo2048-report 1");
    cJSON_AddStringToObject(json, "metrics_file", file);
    cJSON *run = cJSON_AddObjectToObject(json, "run");
    cJSON_AddNumberToObject(run, "run_id", run_id);
    cJSON_AddStringToObject(run, "kind", kind);
    cJSON_AddStringToObject(run, "status", status);
    cJSON_AddStringToObject(run, "started", started);
    cJSON_AddStringToObject(run, "ended", ended);
    cJSON *plots = cJSON_AddArrayToObject(json, "plots");
    for (int i = 0; i < pl.n; i++) {
        const plot *p = &pl.p[i];
        cJSON *jp = cJSON_CreateObject();
        cJSON_AddItemToArray(plots, jp);
        cJSON_AddStringToObject(jp, "id", p->id);
        cJSON_AddStringToObject(jp, "title", p->title);
        cJSON_AddStringToObject(jp, "section", p->section);
        cJSON_AddStringToObject(jp, "style", p->style == STYLE_STACKED ? "stacked" : "lines");
        cJSON *js = cJSON_AddArrayToObject(jp, "series");
        for (int k = 0; k < p->n; k++) {
            const series *s = p->ps[k].s;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(js, o);
            cJSON_AddStringToObject(o, "name", s->name);
            cJSON_AddStringToObject(o, "title", p->ps[k].title);
            cJSON_AddStringToObject(o, "source", s->source);
            cJSON_AddNumberToObject(o, "axis", p->ps[k].axis2 ? 2 : 1);
            cJSON_AddItemToObject(o, "steps", cJSON_CreateIntArray(s->step, s->n));
            cJSON *vals = cJSON_AddArrayToObject(o, "values");
            for (int j = 0; j < s->n; j++)
                cJSON_AddItemToArray(vals, isfinite(s->value[j]) ? cJSON_CreateNumber(s->value[j]) : cJSON_CreateNull());
        }
    }
    cJSON *strats = cJSON_AddArrayToObject(json, "strategies");
    for (int i = 0; i < sl.n && i < top; i++) {
        const strategy_stat *s = &sl.items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(strats, o);
        cJSON_AddNumberToObject(o, "rank", i + 1);
        cJSON_AddNumberToObject(o, "mean_reward", s->mean_reward);
        cJSON_AddNumberToObject(o, "plays", s->plays);
        cJSON_AddNumberToObject(o, "wins", s->wins);
        cJSON_AddNumberToObject(o, "mean_max_tile", s->mean_max_tile);
        cJSON_AddNumberToObject(o, "best_reward", s->best_reward);
        cJSON_AddNumberToObject(o, "first_step", s->first_step);
        cJSON_AddStringToObject(o, "outcome", s->outcome);
        cJSON_AddStringToObject(o, "source", s->source);
    }
    cJSON_AddNumberToObject(json, "min_plays", sl.min_plays);
    cJSON_AddNumberToObject(json, "distinct_strategies", sl.n);
    cJSON_AddNumberToObject(json, "completions", sl.completions);
    char *json_text = cJSON_PrintUnformatted(json);
    if (!json_text) goto oom;

    /* the page */
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%d", out_path, (int)getpid());
    html = fopen(tmp_path, "w");
    if (!html) {
        snprintf(err, sizeof err, "--out %s: cannot write: %s", out_path, strerror(errno));
        free(json_text);
        goto fail;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>grpo2048 report: ", html);
    html_escape(html, dir);
    fprintf(html, " run %d</title>\n<style>%s</style></head><body>\n<h1>grpo2048 report: ", run_id, page_style);
    html_escape(html, dir);
    fprintf(html, ", run %d</h1>\n<p class=\"meta\">", run_id);
    html_escape(html, file);
    fprintf(html, " &middot; %s &middot; %s &middot; started %s", kind, status, started);
    if (ended[0]) fprintf(html, " &middot; ended %s", ended);
    fputs("</p>\n<nav>", html);
    const char *last_section = "";
    for (int i = 0; i < pl.n; i++)
        if (strcmp(pl.p[i].section, last_section)) {
            last_section = pl.p[i].section;
            fputs("<a href=\"#sec-", html);
            for (const char *c = last_section; *c; c++) fputc(*c == ' ' ? '-' : *c, html);
            fprintf(html, "\">%s</a>", last_section);
        }
    fputs("<a href=\"#strategies\">Best strategies</a><a href=\"#config\">Config</a></nav>\n<h2>Summary</h2>\n<pre>",
          html);
    html_escape(html, summary);
    fputs("</pre>\n", html);
    last_section = "";
    for (int i = 0; i < pl.n; i++) {
        const plot *p = &pl.p[i];
        if (strcmp(p->section, last_section)) {
            if (last_section[0]) fputs("</div>\n", html);
            last_section = p->section;
            fputs("<h2 id=\"sec-", html);
            for (const char *c = last_section; *c; c++) fputc(*c == ' ' ? '-' : *c, html);
            fprintf(html, "\">%s</h2>\n<div class=\"plots\">\n", last_section);
        }
        fprintf(html, "<figure id=\"plot-%s\" data-plot=\"%s\"><figcaption>", p->id, p->id);
        html_escape(html, p->title);
        fputs("</figcaption>\n", html);
        snprintf(p2, sizeof p2, "%s/%s.svg", work, p->id);
        char *svg = read_file(p2, NULL);
        if (!svg || !strstr(svg, "<svg")) {
            free(svg);
            free(json_text);
            snprintf(err, sizeof err, "gnuplot wrote no SVG for plot %s (%s)", p->id, p2);
            goto fail;
        }
        write_svg(html, svg, p->id);
        free(svg);
        fputs("</figure>\n", html);
    }
    if (last_section[0]) fputs("</div>\n", html);
    fprintf(html, "<h2 id=\"strategies\">Best strategies</h2>\n<p class=\"meta\">%d distinct strategies (same source "
            "after dropping blank and comment-only lines and trailing spaces) in %d completions, %d of which hold a "
            "<code>def strategy(board):</code> block; ranked by mean reward over all their plays, those played at "
            "least %d times first (<code>--min-plays</code>). <code>grpo2048 best ", sl.n, sl.completions,
            sl.with_function, sl.min_plays);
    html_escape(html, dir);
    fputs("</code> writes them as .py files for <code>grpo2048 play</code>.</p>\n", html);
    if (sl.n > 0) {
        fputs("<table><tr><th>#</th><th>mean reward</th><th>plays</th><th>wins</th><th>mean max tile</th>"
              "<th>best reward</th><th>first step</th><th class=\"src\">usual outcome</th>"
              "<th class=\"src\">source</th></tr>\n", html);
        for (int i = 0; i < sl.n && i < top; i++) {
            const strategy_stat *s = &sl.items[i];
            fprintf(html, "<tr><td>%d</td><td>%.3f</td><td>%d</td><td>%d</td><td>%.1f</td><td>%.3f</td><td>%d</td>"
                    "<td class=\"src\">%s</td><td class=\"src\"><details%s><summary>%d lines</summary><pre>",
                    i + 1, s->mean_reward, s->plays, s->wins, s->mean_max_tile, s->best_reward, s->first_step,
                    s->outcome, i == 0 ? " open" : "", count_lines(s->source));
            html_escape(html, s->source);
            fputs("</pre></details></td></tr>\n", html);
        }
        fputs("</table>\n", html);
    }
    fputs("<h2 id=\"config\">Config</h2>\n<pre>", html);
    html_escape(html, config ? config : "");
    fputs("</pre>\n<script type=\"application/json\" id=\"grpo2048-report-data\">", html);
    /* "</" would end the script element: JSON allows "\/" for "/" */
    for (const char *c = json_text; *c; c++) {
        if (c[0] == '<' && c[1] == '/') { fputs("<\\/", html); c++; }
        else fputc(*c, html);
    }
    fputs("</script>\n<p class=\"meta\">Made by <code>grpo2048 report</code>; plots drawn by gnuplot. The data of "
          "every plot is in the JSON block <code>grpo2048-report-data</code> of this page.</p>\n</body></html>\n",
          html);
    free(json_text);
    if (fflush(html) != 0 || fsync(fileno(html)) != 0 || ferror(html)) {
        snprintf(err, sizeof err, "--out %s: cannot write: %s", out_path, strerror(errno));
        goto fail;
    }
    fclose(html);
    html = NULL;
    if (rename(tmp_path, out_path) != 0) {
        snprintf(err, sizeof err, "--out %s: %s", out_path, strerror(errno));
        goto fail;
    }
    tmp_path[0] = '\0';
    printf("wrote %s (%d plots, %d strategies of %d)", out_path, pl.n, sl.n < top ? sl.n : top, sl.n);
    if (png_dir) printf("; %d PNGs in %s", pl.n, png_dir);
    printf("\n");
    rc = 0;
    goto done;
oom:
    snprintf(err, sizeof err, "out of memory");
fail:
    fprintf(stderr, "grpo2048 report: %s\n", err);
    if (html) { fclose(html); unlink(tmp_path); }
done:
    if (work[0]) {
        /* the temporary folder holds only files this function made */
        char cmdpath[4400];
        for (int i = 0; i < pl.n; i++) {
            snprintf(cmdpath, sizeof cmdpath, "%s/%s.dat", work, pl.p[i].id);
            unlink(cmdpath);
            snprintf(cmdpath, sizeof cmdpath, "%s/%s.svg", work, pl.p[i].id);
            unlink(cmdpath);
        }
        snprintf(cmdpath, sizeof cmdpath, "%s/plots.gp", work);
        unlink(cmdpath);
        snprintf(cmdpath, sizeof cmdpath, "%s/gnuplot.err", work);
        unlink(cmdpath);
        rmdir(work);
    }
    cJSON_Delete(json);
    free(summary);
    free(config);
    strategy_list_free(&sl);
    free(pl.p);
    series_set_free(&set);
    sqlite3_close(db);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *png = NULL;
    int run_id = 0, top = 10, min_plays = STRATEGY_MIN_PLAYS;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); return 0; }
        if (!strcmp(a, "--out") || !strcmp(a, "--png") || !strcmp(a, "--run-id") || !strcmp(a, "--top") ||
            !strcmp(a, "--min-plays")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "grpo2048 report: %s needs a value\n%s", a, usage_text);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--png")) png = v;
            else {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n < 1 || n > 1000000) {
                    fprintf(stderr, "grpo2048 report: %s %s: expected a whole number >= 1\n", a, v);
                    return 2;
                }
                if (!strcmp(a, "--run-id")) run_id = (int)n;
                else if (!strcmp(a, "--min-plays")) min_plays = (int)n;
                else top = (int)n;
            }
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "grpo2048 report: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "grpo2048 report: RUN_DIR or FILE.sqlite is required\n%s", usage_text);
        return 2;
    }
    return report_main(path, out, png, run_id, top, min_plays);
}
