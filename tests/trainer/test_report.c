/*
 * tests/trainer/test_report.c: `grpo2048 report`, `grpo2048 best` and the end-of-run summary on the
 * metrics file of a real 3-step run (configs/default.yaml, small, with an evaluation at step 3).
 *
 * - The run prints its summary and the next commands.
 * - `report RUN_DIR --png DIR` writes one HTML page; its embedded JSON (grpo2048-report-data) lists the
 *   plots, and every data point of every series equals what the metrics file says: metric series row
 *   for row (same steps, same values), the outcome shares, mean max tile and win rate against SQL over
 *   `completions`, the rolling means against SQLite's window function avg() over 10 rows, the "other"
 *   step time against step_time minus its phases. Every metric the run logged is in some plot; each
 *   plot's inlined SVG draws one <g> per series, titled as the JSON says; each PNG is a PNG. The same
 *   check on a metrics file changed after the report fails (the checker can fail).
 * - The strategies table: distinct sources, ranked as strategies.h says, plays/wins/mean reward equal
 *   to a recount over the completions.
 * - `best --top 2 --min-plays 1` writes best-1.py and best-2.py that `grpo2048 play` plays.
 * - A 2-step SFT run: its summary (loss, eval_loss) and a report with its plots, from the file's path.
 * - Errors: a missing folder, a file that is not a metrics file, --run-id of a missing run, no gnuplot.
 * - strategy_normalize on its own.
 * Needs gnuplot (Debian gnuplot-nox; tools/setup.sh installs it): skipped (77) without it.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rewards/rewards.h"
#include "tests/testing.h"
#include "trainer/strategies.h"

static const char *bin;

static int run(const char *cmd, char *out, size_t outlen) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

/* One value of a query with an int and a text parameter (as far as it has them); NAN for no row/NULL. */
static double q(sqlite3 *db, const char *sql, int i1, const char *t2) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sql error: %s: %s\n", sql, sqlite3_errmsg(db));
        return NAN;
    }
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int(st, 1, i1);
    if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_text(st, 2, t2, -1, SQLITE_TRANSIENT);
    double v = NAN;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

/* The expected value of series `name` at `step` from the metrics file (see the top of the file). */
static double expected(sqlite3 *db, const char *name, int step) {
    char sql[600];
    const size_t len = strlen(name);
    static const char roll[] = " (rolling mean)";
    if (len > sizeof roll - 1 && !strcmp(name + len - (sizeof roll - 1), roll)) {
        snprintf(sql, sizeof sql,
                 "SELECT r FROM (SELECT step, avg(value) OVER (ORDER BY step ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) "
                 "AS r FROM metrics WHERE run_id = 1 AND name = '%.*s' AND value IS NOT NULL) WHERE step = ?",
                 (int)(len - (sizeof roll - 1)), name);
        return q(db, sql, step, NULL);
    }
    if (!strncmp(name, "outcome/", 8))
        return q(db, "SELECT avg(coalesce(outcome, 'none') = ?2) FROM completions WHERE run_id = 1 AND step = ?1", step,
                 name + 8);
    if (!strcmp(name, "games/mean_max_tile"))
        return q(db, "SELECT avg(max_tile) FROM completions WHERE run_id = 1 AND step = ?", step, NULL);
    if (!strcmp(name, "games/win_rate"))
        return q(db, "SELECT avg(outcome = 'success') FROM completions WHERE run_id = 1 AND step = ?", step, NULL);
    if (!strcmp(name, "time/other")) {
        double v = q(db, "SELECT step_time - coalesce(generation_time, 0) - coalesce(reward_wait_time, 0) - train_time "
                         "FROM steps WHERE run_id = 1 AND step = ?", step, NULL);
        return v > 0 ? v : 0;
    }
    return q(db, "SELECT value FROM metrics WHERE run_id = 1 AND step = ?1 AND name = ?2", step, name);
}

/* How many data points of the report's JSON differ from the metrics file db (and how many series
 * have a different number of points than the file has rows). */
static int check_points(sqlite3 *db, const cJSON *plots, int verbose) {
    int bad = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, plots) {
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(p, "series")) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(s, "name"));
            const cJSON *steps = cJSON_GetObjectItem(s, "steps"), *values = cJSON_GetObjectItem(s, "values");
            if (!name || cJSON_GetArraySize(steps) != cJSON_GetArraySize(values) || cJSON_GetArraySize(steps) == 0) {
                bad++;
                continue;
            }
            const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(s, "source"));
            if (src && !strncmp(src, "metrics:", 8)) {
                const double rows = q(db, "SELECT count(*) FROM metrics WHERE run_id = 1 AND name = ?2", 0, name);
                if (rows != cJSON_GetArraySize(steps)) {
                    bad++;
                    if (verbose) fprintf(stderr, "%s: %d points, %g rows\n", name, cJSON_GetArraySize(steps), rows);
                }
            }
            for (int i = 0; i < cJSON_GetArraySize(steps); i++) {
                const int step = (int)cJSON_GetArrayItem(steps, i)->valuedouble;
                const cJSON *v = cJSON_GetArrayItem(values, i);
                const double got = cJSON_IsNull(v) ? NAN : v->valuedouble;
                const double want = expected(db, name, step);
                if (!same(got, want)) {
                    bad++;
                    if (verbose) fprintf(stderr, "%s at step %d: report %.17g, metrics file %.17g\n", name, step, got, want);
                }
            }
        }
    }
    return bad;
}

/* The HTML between <figure id="plot-ID" and its </figure>, or NULL. */
static char *figure(const char *html, const char *id) {
    char key[200];
    snprintf(key, sizeof key, "<figure id=\"plot-%s\"", id);
    const char *a = strstr(html, key);
    if (!a) return NULL;
    const char *b = strstr(a, "</figure>");
    if (!b) return NULL;
    return strndup(a, (size_t)(b - a));
}

static int has_series(const cJSON *plots, const char *name) {
    const cJSON *p, *s;
    cJSON_ArrayForEach(p, plots) cJSON_ArrayForEach(s, cJSON_GetObjectItem(p, "series")) {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "name")), name)) return 1;
    }
    return 0;
}

static void test_report(const char *tmp) {
    char cmd[4096], out[1 << 16], path[1024];
    snprintf(cmd, sizeof cmd,
             "%s train configs/default.yaml --set max_steps=3 --set num_generations=4 --set per_device_train_batch_size=8 "
             "--set max_completion_length=64 --set rewards.workers=2 --set rewards.timeout=0.5 --set eval_steps=3 "
             "--set eval_games=1 --set save_steps=0 --set output_dir=%s/run", bin, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "train exited %d:\n%s", rc, out);
    /* the end-of-run summary */
    CHECK_MSG(strstr(out, "grpo2048 train: summary of run 1 (grpo, completed, 3 steps") && strstr(out, "reward (mean)") &&
              strstr(out, "games won") && strstr(out, "best strategy: mean reward") && strstr(out, "tokens/s") &&
              strstr(out, "grpo2048 report ") && strstr(out, "grpo2048 best ") && strstr(out, "metrics.sqlite"),
              "no summary:\n%s", out);
    /* the plain progress lines show tokens/s and memory */
    CHECK_MSG(strstr(out, "step 3/3 |") && strstr(out, " tok/s, mem="), "%s", out);

    snprintf(cmd, sizeof cmd, "%s report %s/run --png %s/png", bin, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "report.html"), "report exited %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/run/report.html", tmp);
    char *html = slurp(path);
    CHECK_MSG(html != NULL, "no %s", path);
    if (!html) return;
    /* self-contained: nothing to fetch (no external script, style sheet or image) */
    CHECK(strstr(html, "<script src") == NULL && strstr(html, "<link") == NULL && strstr(html, "<img") == NULL);
    CHECK(strstr(html, "<td class=\"src\"><details open><summary>") != NULL);   /* the best one's source is shown */
    static const char open[] = "<script type=\"application/json\" id=\"grpo2048-report-data\">";
    const char *js = strstr(html, open);
    CHECK(js != NULL);
    if (!js) { free(html); return; }
    js += sizeof open - 1;
    const char *je = strstr(js, "</script>");
    CHECK(je != NULL);
    char *jtext = strndup(js, je ? (size_t)(je - js) : 0);
    cJSON *j = cJSON_Parse(jtext);
    free(jtext);
    CHECK_MSG(j != NULL, "the embedded JSON does not parse");
    if (!j) { free(html); return; }
    const cJSON *plots = cJSON_GetObjectItem(j, "plots");
    CHECK(cJSON_GetArraySize(plots) >= 20);

    snprintf(path, sizeof path, "%s/run/metrics.sqlite", tmp);
    sqlite3 *db;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    /* every point equals the metrics file */
    CHECK_EQ_INT(check_points(db, plots, 1), 0);
    /* the plots the issue asks for (those a CPU run has) */
    static const char *const ids[] = {"reward", "rewards-function-works", "rewards-no-cheating",
                                      "rewards-strategy-succeeds", "rewards-game-progress", "outcomes", "games",
                                      "completion-length", "loss", "entropy", "clip-ratios", "grad-norm",
                                      "learning-rate", "step-time", "reward-time", "tokens-per-second", "memory", "eval-reward",
                                      "eval-games"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int found = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, plots) found |= !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(p, "id")), ids[i]);
        CHECK_MSG(found, "no plot %s", ids[i]);
    }
    CHECK(has_series(plots, "reward (rolling mean)") && has_series(plots, "generation_time") &&
          has_series(plots, "reward_time") && has_series(plots, "reward_wait_time") && has_series(plots, "train_time") && has_series(plots, "time/other") &&
          has_series(plots, "games/win_rate") && has_series(plots, "games/mean_max_tile"));
    /* every metric the run logged is plotted */
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db, "SELECT DISTINCT name FROM metrics WHERE run_id = 1 AND value IS NOT NULL", -1, &st,
                             NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        CHECK_MSG(has_series(plots, name) || !strcmp(name, "step_time"), "metric %s is in no plot", name);
    }
    sqlite3_finalize(st);
    /* every outcome of the completions has its share series */
    CHECK(sqlite3_prepare_v2(db, "SELECT DISTINCT outcome FROM completions WHERE run_id = 1", -1, &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[96];
        snprintf(name, sizeof name, "outcome/%s", (const char *)sqlite3_column_text(st, 0));
        CHECK_MSG(has_series(plots, name), "no series %s", name);
    }
    sqlite3_finalize(st);
    /* the SVG of each plot draws each series (gnuplot: <g id="...gnuplot_plot_K"><title>TITLE</title>), and
     * its PNG exists */
    const cJSON *p;
    cJSON_ArrayForEach(p, plots) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(p, "id"));
        char *fig = figure(html, id);
        CHECK_MSG(fig && strstr(fig, "<svg") && strstr(fig, "</svg>"), "plot %s: no inline SVG", id);
        const cJSON *s;
        int k = 0;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(p, "series")) {
            char want[300];
            snprintf(want, sizeof want, "<title>%s</title>", cJSON_GetStringValue(cJSON_GetObjectItem(s, "title")));
            CHECK_MSG(fig && strstr(fig, want), "plot %s: the SVG has no %s", id, want);
            k++;
        }
        char g[160];
        snprintf(g, sizeof g, "%s-gnuplot_plot_%d\"", id, k);
        CHECK_MSG(fig && strstr(fig, g), "plot %s: the SVG has no %s (one group per series)", id, g);
        free(fig);
        snprintf(path, sizeof path, "%s/png/%s.png", tmp, id);
        FILE *f = fopen(path, "rb");
        unsigned char sig[8] = {0};
        CHECK_MSG(f && fread(sig, 1, 8, f) == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
        if (f) fclose(f);
    }

    /* the strategies table: distinct, recounted from the completions with the same extraction */
    const cJSON *strats = cJSON_GetObjectItem(j, "strategies");
    CHECK(cJSON_GetArraySize(strats) >= 1);
    const int min_plays = (int)cJSON_GetObjectItem(j, "min_plays")->valuedouble;
    CHECK_EQ_INT(min_plays, STRATEGY_MIN_PLAYS);
    double prev_key = INFINITY;
    int prev_enough = 1;
    const cJSON *s;
    cJSON_ArrayForEach(s, strats) {
        const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(s, "source"));
        const cJSON *t;
        int dup = 0;
        cJSON_ArrayForEach(t, strats) dup += !strcmp(src, cJSON_GetStringValue(cJSON_GetObjectItem(t, "source")));
        CHECK_EQ_INT(dup, 1);
        int plays = 0, wins = 0;
        double sum = 0;
        CHECK(sqlite3_prepare_v2(db, "SELECT text, reward, outcome FROM completions WHERE run_id = 1", -1, &st, NULL) ==
              SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            static char code[1 << 16], norm[1 << 16];
            if (reward_extract_strategy((const char *)sqlite3_column_text(st, 0), code, sizeof code) != 0) continue;
            strategy_normalize(code, norm, sizeof norm);
            if (strcmp(norm, src)) continue;
            plays++;
            sum += sqlite3_column_double(st, 1);
            wins += !strcmp((const char *)sqlite3_column_text(st, 2), "success");
        }
        sqlite3_finalize(st);
        CHECK_EQ_INT(plays, (int)cJSON_GetObjectItem(s, "plays")->valuedouble);
        CHECK_EQ_INT(wins, (int)cJSON_GetObjectItem(s, "wins")->valuedouble);
        const double mean = cJSON_GetObjectItem(s, "mean_reward")->valuedouble;
        CHECK_NEAR(mean, plays ? sum / plays : NAN, 1e-9);
        /* rank: the strategies with min_plays plays first, each part by mean reward */
        const int enough = plays >= min_plays;
        CHECK(!enough || prev_enough);
        if (enough != prev_enough) prev_key = INFINITY;
        CHECK(mean <= prev_key + 1e-12);
        prev_key = mean;
        prev_enough = enough;
    }
    CHECK(strstr(html, "<h2 id=\"config\">Config</h2>") && strstr(html, "max_steps: 3"));

    /* the checker fails on a metrics file that no longer matches: change one value in a copy */
    char copy[1100];
    snprintf(copy, sizeof copy, "%s/changed.sqlite", tmp);
    snprintf(cmd, sizeof cmd, "cp %s/run/metrics.sqlite %s && sqlite3 %s \"update metrics set value = value + 0.5 "
             "where name = 'reward' and step = 2\"", tmp, copy, copy);
    if (system(cmd) == 0) {
        sqlite3 *db2;
        CHECK(sqlite3_open_v2(copy, &db2, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        const int bad = check_points(db2, plots, 0);
        CHECK_MSG(bad >= 2, "a changed reward went unnoticed (%d mismatches; expected the reward and its rolling mean)",
                  bad);
        sqlite3_close(db2);
    }
    sqlite3_close(db);
    cJSON_Delete(j);
    free(html);

    /* 3 steps do not tell a 10-point rolling mean from a shorter one: the same run's file with 27 more
     * steps of reward and game_progress (values that differ at every step) */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/long && cp %s/run/metrics.sqlite %s/long/ && sqlite3 %s/long/metrics.sqlite "
             "\"with recursive s(k) as (select 4 union all select k + 1 from s where k < 30) insert into metrics "
             "select 1, k, n, (k * 37 %% 11) * 0.25 + length(n) from s, (select 'reward' as n union all "
             "select 'rewards/game_progress/mean')\"", tmp, tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s report %s/long", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "report exited %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/long/report.html", tmp);
    html = slurp(path);
    js = html ? strstr(html, open) : NULL;
    je = js ? strstr(js, "</script>") : NULL;
    jtext = je ? strndup(js + sizeof open - 1, (size_t)(je - js - (sizeof open - 1))) : NULL;
    j = jtext ? cJSON_Parse(jtext) : NULL;
    free(jtext);
    snprintf(path, sizeof path, "%s/long/metrics.sqlite", tmp);
    CHECK(j != NULL && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    if (j) {
        CHECK(has_series(cJSON_GetObjectItem(j, "plots"), "rewards/game_progress/mean (rolling mean)"));
        CHECK_EQ_INT(check_points(db, cJSON_GetObjectItem(j, "plots"), 1), 0);
        sqlite3_close(db);
    }
    cJSON_Delete(j);
    free(html);

    /* best: files that play */
    snprintf(cmd, sizeof cmd, "%s best %s/run --top 2 --min-plays 1 --out %s/best", bin, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "best-1.py") && strstr(out, "mean reward"), "best exited %d:\n%s", rc, out);
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/best/best-%d.py", tmp, i);
        char *py = slurp(path);
        CHECK_MSG(py && !strncmp(py, "# grpo2048 best: rank ", 22) && strstr(py, "\ndef strategy(board):"), "%s: %s",
                  path, py ? py : "(missing)");
        free(py);
    }
    snprintf(cmd, sizeof cmd, "%s play --strategy %s/best/best-1.py --games 1 --timeout 1", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "\"max_tile\""), "play exited %d:\n%s", rc, out);

    /* errors name what is wrong */
    snprintf(cmd, sizeof cmd, "%s report %s/no-such-run", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "no-such-run") && strstr(out, "No such file"), "%d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s best %s/best/best-1.py", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "best-1.py") && strstr(out, "not a grpo2048 metrics file"), "%d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s report %s/run --run-id 7", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "no run 7"), "%d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s report %s/run --top x", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 2 && strstr(out, "--top x: expected a whole number"), "%d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "GRPO2048_GNUPLOT=/no/gnuplot %s report %s/run --out %s/x.html", bin, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 1 && strstr(out, "gnuplot-nox"), "%d: %s", rc, out);
    snprintf(path, sizeof path, "%s/x.html", tmp);
    CHECK(access(path, F_OK) != 0);   /* no half-written page */
}

/* An SFT run: its own summary rows, and a report with its loss and eval_loss (and no strategies). */
static void test_sft_report(const char *tmp) {
    char path[1024], cmd[4096], out[1 << 16];
    snprintf(path, sizeof path, "%s/tiny.jsonl", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"prompt\": \"Write a strategy.\", \"completion\": \"```python\\ndef strategy(board):\\n    "
                "return \\\"%c\\\"\\n```\"}\n", "WASD"[i % 4]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s sft configs/sft_default.yaml --set dataset_path=%s --set output_dir=%s/sft "
             "--set max_steps=2 --set per_device_train_batch_size=2 --set sft_eval_fraction=0.2", bin, path, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "grpo2048 sft: summary of run 1 (sft, completed, 2 steps") &&
              strstr(out, "loss (mean)") && strstr(out, "eval_loss (mean)") && strstr(out, "grpo2048 report "),
              "sft exited %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s report %s/sft/metrics.sqlite --out %s/sft.html", bin, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "report exited %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/sft.html", tmp);
    char *html = slurp(path);
    CHECK(html && strstr(html, "<figure id=\"plot-loss\"") && strstr(html, "<title>eval_loss</title>") &&
          strstr(html, "<figure id=\"plot-tokens-per-second\"") && strstr(html, "0 distinct strategies"));
    free(html);
}

static void test_normalize(void) {
    char out[256];
    strategy_normalize("def strategy(board):  \r\n\n    # think\n    return 'W'  # up\t\n\n", out, sizeof out);
    CHECK_MSG(!strcmp(out, "def strategy(board):\n    return 'W'  # up"), "'%s'", out);
    strategy_normalize("", out, sizeof out);
    CHECK(!strcmp(out, ""));
    strategy_normalize("def strategy(board):\n    return 'A'", out, 12);
    CHECK(!strcmp(out, "def strateg"));
}

int main(void) {
    test_normalize();
    bin = getenv("GRPO2048_BIN");
    if (!bin) SKIP("GRPO2048_BIN is not set (run through ctest)");
    if (system("gnuplot --version >/dev/null 2>&1") != 0) SKIP("gnuplot is not installed (Debian: gnuplot-nox)");
    char tmp[] = "/tmp/grpo2048-report-test-XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_report(tmp);
    test_sft_report(tmp);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (testing_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return TEST_DONE();
}
