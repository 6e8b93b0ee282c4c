/*
 * trainer/summary.c: opening a metrics file for reading, and the end-of-run summary (see summary.h).
 *
 * Every number comes from one SQL query on the `metrics` table (not the `steps` view, whose columns
 * depend on the grpo2048 that wrote the file), so a metric that a run did not log is simply absent.
 */
#include "trainer/summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "trainer/strategies.h"

int summary_open(const char *path, sqlite3 **db, char *file, char *dir, size_t n, char *err, size_t errlen) {
    struct stat sb;
    *db = NULL;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: %s (expected an output_dir holding metrics.sqlite, or a metrics file)", path,
                 strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, n, "%s", path);
        snprintf(file, n, "%s/metrics.sqlite", path);
        if (stat(file, &sb) != 0) {
            snprintf(err, errlen, "%s: no metrics.sqlite in this folder (expected a run's output_dir)", path);
            return -1;
        }
    } else {
        snprintf(file, n, "%s", path);
        snprintf(dir, n, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        if (!slash) snprintf(dir, n, ".");
        else if (!dir[0]) snprintf(dir, n, "/");
    }
    if (sqlite3_open_v2(file, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", file, *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version < 1) {
        snprintf(err, errlen, "%s: not a grpo2048 metrics file (%s)", file,
                 version < 0 ? sqlite3_errmsg(*db) : "PRAGMA user_version is 0");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

int summary_pick_run(sqlite3 *db, const char *file, int want, char *err, size_t errlen) {
    sqlite3_stmt *st;
    const char *sql = want > 0 ? "SELECT run_id FROM runs WHERE run_id = ?" : "SELECT max(run_id) FROM runs";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", file, sqlite3_errmsg(db));
        return -1;
    }
    if (want > 0) sqlite3_bind_int(st, 1, want);
    int id = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) id = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (id < 0) {
        if (want > 0) snprintf(err, errlen, "%s: no run %d (`grpo2048 runs %s` lists them)", file, want, file);
        else snprintf(err, errlen, "%s: no runs in this file", file);
    }
    return id;
}

/* One value of a query whose parameters are (run_id, a, b) as far as it has them; *ok = 0 for no row
 * or NULL. */
static double q1(sqlite3 *db, const char *sql, int run_id, int a, int b, int *ok) {
    sqlite3_stmt *st;
    *ok = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    const int np = sqlite3_bind_parameter_count(st);
    sqlite3_bind_int(st, 1, run_id);
    if (np >= 2) sqlite3_bind_int(st, 2, a);
    if (np >= 3) sqlite3_bind_int(st, 3, b);
    double v = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = sqlite3_column_double(st, 0);
        *ok = 1;
    }
    sqlite3_finalize(st);
    return v;
}

/* The mean (agg "avg") or sum ("sum") of metric name over steps [lo, hi] of the run. */
static double metric_agg(sqlite3 *db, int run_id, const char *agg, const char *name, int lo, int hi, int *ok) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT %s(value) FROM metrics WHERE run_id = ?1 AND name = '%s' AND step BETWEEN ?2 AND ?3", agg, name);
    return q1(db, sql, run_id, lo, hi, ok);
}

/* "2m44s", "1h02m", "12.3s" */
static void format_duration(char *buf, size_t n, double s) {
    if (s < 60) snprintf(buf, n, "%.1fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static int parse_utc(const char *s, time_t *t) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) return -1;
    *t = timegm(&tm);
    return 0;
}

int summary_write(FILE *out, sqlite3 *db, int run_id, const char *prefix, const char *next_dir, char *err,
                  size_t errlen) {
    const char *pf0 = prefix ? prefix : "", *pf = "";   /* the prefix starts the first and the "next:" lines */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT kind, status, started, ended FROM runs WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "reading run %d: %s", run_id, sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int(st, 1, run_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        snprintf(err, errlen, "no run %d", run_id);
        return -1;
    }
    char kind[32], status[32], started[40], ended[40];
    snprintf(kind, sizeof kind, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
    snprintf(status, sizeof status, "%s", sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "?");
    snprintf(started, sizeof started, "%s", sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
    snprintf(ended, sizeof ended, "%s", sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
    sqlite3_finalize(st);

    int ok, ok2;
    const int first = (int)q1(db, "SELECT min(step) FROM metrics WHERE run_id = ?", run_id, 0, 0, &ok);
    const int last = (int)q1(db, "SELECT max(step) FROM metrics WHERE run_id = ?", run_id, 0, 0, &ok2);
    char wall[32] = "";
    time_t t0, t1;
    if (parse_utc(started, &t0) == 0 && parse_utc(ended, &t1) == 0) format_duration(wall, sizeof wall, difftime(t1, t0));
    int ok_st;
    const double step_total = metric_agg(db, run_id, "sum", "step_time", first, last, &ok_st);
    char steptime[32] = "";
    if (ok_st) format_duration(steptime, sizeof steptime, step_total);
    fprintf(out, "%ssummary of run %d (%s, %s, %s%d step%s%s%s%s%s):\n", pf0, run_id, kind, status, ok ? "" : "no steps",
            ok ? last - first + 1 : 0, ok && last - first + 1 == 1 ? "" : "s", wall[0] ? ", wall time " : "", wall,
            steptime[0] ? ", step time " : "", steptime);
    if (!ok) return 0;

    /* the first and the last 10 steps (they overlap when the run has fewer than 20) */
    const int f_hi = first + 9 < last ? first + 9 : last, l_lo = last - 9 > first ? last - 9 : first;
    char fr[32], lr[32];
    snprintf(fr, sizeof fr, f_hi > first ? "steps %d-%d" : "step %d", first, f_hi);
    snprintf(lr, sizeof lr, last > l_lo ? "steps %d-%d" : "step %d", l_lo, last);
    static const struct { const char *name, *agg, *label, *fmt; } rows[] = {
        {"reward", "avg", "reward (mean)", "%.3f"},
        {"wins", "sum", "games won", "%.0f"},
        {"timeouts", "sum", "games timed out", "%.0f"},
        {"stuck", "sum", "games stuck", "%.0f"},
        {"loss", "avg", "loss (mean)", "%.4f"},
        {"eval_loss", "avg", "eval_loss (mean)", "%.4f"},
        {"eval_reward", "avg", "eval_reward (mean)", "%.3f"},
        {"eval_win_rate", "avg", "eval_win_rate (mean)", "%.3f"},
    };
    int header = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        /* GRPO's loss is not a learning curve (its value is ~0 by construction); SFT's is */
        if (!strcmp(rows[i].name, "loss") && !strcmp(kind, "grpo")) continue;
        int okf, okl;
        const double vf = metric_agg(db, run_id, rows[i].agg, rows[i].name, first, f_hi, &okf);
        const double vl = metric_agg(db, run_id, rows[i].agg, rows[i].name, l_lo, last, &okl);
        if (!okf && !okl) continue;
        if (!header) {
            fprintf(out, "%s  %-22s %14s -> %s\n", pf, "", fr, lr);
            header = 1;
        }
        char a[32] = "-", b[32] = "-";
        if (okf) snprintf(a, sizeof a, rows[i].fmt, vf);
        if (okl) snprintf(b, sizeof b, rows[i].fmt, vl);
        fprintf(out, "%s  %-22s %14s -> %s\n", pf, rows[i].label, a, b);
    }
    strategy_list sl;
    char serr[256];
    if (strategy_list_load(db, run_id, STRATEGY_MIN_PLAYS, &sl, serr, sizeof serr) == 0) {
        if (sl.n > 0) {
            const strategy_stat *s = &sl.items[0];
            fprintf(out, "%s  best strategy: mean reward %.3f over %d play%s (%d won, mean max tile %.0f), first at "
                    "step %d; %d distinct strategies in %d completions\n", pf, s->mean_reward, s->plays,
                    s->plays == 1 ? "" : "s", s->wins, s->mean_max_tile, s->first_step, sl.n, sl.completions);
            if (s->plays < sl.min_plays)
                fprintf(out, "%s  (no strategy was played %d+ times: this one's mean is a few games' luck)\n", pf,
                        sl.min_plays);
        } else if (sl.completions > 0) {
            fprintf(out, "%s  no completion of the %d held a `def strategy(board):` block\n", pf, sl.completions);
        }
        strategy_list_free(&sl);
    } else {
        fprintf(out, "%s  strategies: %s\n", pf, serr);
    }
    int ok_tps;
    const double tps = q1(db,
                          "SELECT sum(t.value * s.value) / sum(s.value) FROM metrics t JOIN metrics s "
                          "ON s.run_id = t.run_id AND s.step = t.step AND s.name = 'step_time' "
                          "WHERE t.run_id = ? AND t.name = 'tokens_per_second'",
                          run_id, 0, 0, &ok_tps);
    if (ok_tps || ok_st)
        fprintf(out, "%s  speed: %.0f tokens/s, %.2f s per step (over the run's step time)\n", pf, ok_tps ? tps : 0,
                ok_st ? step_total / (last - first + 1) : 0);
    if (next_dir) {
        fprintf(out, "%snext:\n", pf0);
        fprintf(out, "%s  grpo2048 report %s       # plots, the best strategies and the config in one HTML page\n",
                pf, next_dir);
        fprintf(out, "%s  grpo2048 best %s         # the best strategies as .py files for `grpo2048 play`\n", pf,
                next_dir);
        fprintf(out, "%s  sqlite3 %s/metrics.sqlite 'select step, reward, loss from steps'\n", pf, next_dir);
    }
    return 0;
}

void summary_print_end(FILE *out, const char *output_dir, int run_id, const char *prefix) {
    sqlite3 *db;
    char file[4096], dir[4096], err[512];
    if (summary_open(output_dir, &db, file, dir, sizeof file, err, sizeof err) != 0 ||
        summary_write(out, db, run_id, prefix, output_dir, err, sizeof err) != 0)
        fprintf(out, "%sno summary: %s\n", prefix ? prefix : "", err);
    sqlite3_close(db);
    fflush(out);
}
