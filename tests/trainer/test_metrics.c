/*
 * tests/trainer/test_metrics.c: the metrics file (trainer/metrics.c) and the progress display
 * (trainer/progress.c).
 *
 * Metrics: in a mkdtemp folder, opens a new metrics.sqlite and checks the schema (tables, the `steps`
 * view, the index, WAL, user_version); that a committed step's rows are visible through `steps` and
 * `completions` — and invisible to another connection before the commit; that a step with a failed
 * insert, and an explicitly rolled-back step, leave no rows; that finishing sets the status; that
 * reopening appends a run; and that newer schema versions, foreign databases and non-databases are
 * refused with a message; that metrics_resume continues a run's own row (later steps deleted, status
 * 'running', the resume counted) and reports a missing run; that a version-1 file is upgraded in
 * place; that docs/metrics.md documents every column of `steps`. Progress: the tqdm line and the plain line for known inputs, and which
 * plain lines a run prints for a given log_every.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "tests/testing.h"
#include "trainer/metrics.h"
#include "trainer/progress.h"

static char tmpdir[64];

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* A separate connection, as a user's sqlite3 shell would have. */
static sqlite3 *reader(const char *path) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "?");
        exit(1);
    }
    return db;
}

/* First column of the first row of sql as a double; NAN when there is no row or it is NULL. */
static double q_double(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    double v = NAN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        return NAN;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long long q_int(sqlite3 *db, const char *sql) {
    double v = q_double(db, sql);
    return isnan(v) ? -1 : (long long)v;
}

/* First column of the first row as text into buf ("" when none or NULL). */
static const char *q_text(sqlite3 *db, const char *sql, char *buf, size_t n) {
    sqlite3_stmt *st;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        return buf;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static void add_completion(metrics_db *db, int idx, const char *outcome, const char *error) {
    metrics_completion c = {
        .idx = idx, .prompt_idx = idx / 2, .text = "def strategy(board):\n    return \"W\"",
        .reward = 1.5 + idx, .rewards = {1, 0.5, 0, 0.25 * idx}, .outcome = outcome, .max_tile = 256,
        .score = 1234.5, .moves = 100 + idx, .seconds = 0.125, .error = error,
    };
    CHECK_EQ_INT(metrics_add_completion(db, &c), 0);
}

static void test_metrics(void) {
    char path[256], err[1024], buf[512];
    path_in_tmp(path, sizeof path, "metrics.sqlite");
    metrics_db *db = metrics_open(path, "grpo", "learning_rate: 1e-6\n# --set seed=3\n", err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (!db) return;
    CHECK_EQ_INT(metrics_run_id(db), 1);

    sqlite3 *r = reader(path);
    /* schema */
    CHECK_EQ_INT(q_int(r, "PRAGMA user_version"), METRICS_SCHEMA_VERSION);
    CHECK(!strcmp(q_text(r, "PRAGMA journal_mode", buf, sizeof buf), "wal"));
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                          "('runs', 'metrics', 'completions')"), 3);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND name = 'steps'"), 1);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'completions'"), 1);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM pragma_table_info('completions') WHERE name IN ('function_works', "
                          "'no_cheating', 'strategy_succeeds', 'game_progress', 'outcome', 'max_tile', 'score', "
                          "'moves', 'seconds', 'error', 'text', 'reward', 'idx', 'prompt_idx')"), 14);
    int eval_aliases = 0;   /* each eval_x (but eval_loss) also appears as an "eval/x" column */
    for (int i = 0; i < metrics_num_names; i++)
        eval_aliases += !strncmp(metrics_names[i], "eval_", 5) && strcmp(metrics_names[i], "eval_loss") != 0;
    CHECK_EQ_INT(eval_aliases, 15);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM pragma_table_info('steps')"), 2 + metrics_num_names + eval_aliases);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM pragma_table_info('steps') WHERE name IN ('eval_win_rate', "
                          "'eval/win_rate')"), 2);
    /* the run row */
    CHECK(!strcmp(q_text(r, "SELECT kind FROM runs WHERE run_id = 1", buf, sizeof buf), "grpo"));
    CHECK(!strcmp(q_text(r, "SELECT status FROM runs WHERE run_id = 1", buf, sizeof buf), "running"));
    CHECK(!strcmp(q_text(r, "SELECT config FROM runs WHERE run_id = 1", buf, sizeof buf),
                  "learning_rate: 1e-6\n# --set seed=3\n"));
    q_text(r, "SELECT started FROM runs WHERE run_id = 1", buf, sizeof buf);
    CHECK_MSG(strlen(buf) == 20 && buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z', "started = '%s'", buf);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM runs WHERE run_id = 1 AND ended IS NULL"), 1);

    /* step 1: invisible to the reader until committed, then all of it at once */
    CHECK_EQ_INT(metrics_begin_step(db, 1), 0);
    CHECK_EQ_INT(metrics_add(db, "reward", 3.21), 0);
    CHECK_EQ_INT(metrics_add(db, "loss", -0.5), 0);
    CHECK_EQ_INT(metrics_add(db, "rewards/game_progress/mean", 0.75), 0);
    CHECK_EQ_INT(metrics_add(db, "my/custom_metric", 7), 0);
    CHECK_EQ_INT(metrics_add(db, "kl", NAN), 0);
    add_completion(db, 0, "success", NULL);
    add_completion(db, 1, "timeout", "took longer than 1 s");
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM metrics"), 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM completions"), 0);
    CHECK_EQ_INT(metrics_commit_step(db), 0);
    CHECK_NEAR(q_double(r, "SELECT reward FROM steps WHERE run_id = 1 AND step = 1"), 3.21, 0);
    CHECK_NEAR(q_double(r, "SELECT loss FROM steps WHERE step = 1"), -0.5, 0);
    CHECK_NEAR(q_double(r, "SELECT \"rewards/game_progress/mean\" FROM steps WHERE step = 1"), 0.75, 0);
    CHECK(isnan(q_double(r, "SELECT grad_norm FROM steps WHERE step = 1")));   /* not logged: NULL */
    CHECK(isnan(q_double(r, "SELECT kl FROM steps WHERE step = 1")));          /* NaN stored as NULL */
    CHECK_NEAR(q_double(r, "SELECT value FROM metrics WHERE name = 'my/custom_metric'"), 7, 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM completions WHERE run_id = 1 AND step = 1"), 2);
    CHECK_NEAR(q_double(r, "SELECT game_progress FROM completions WHERE idx = 1"), 0.25, 0);
    CHECK_NEAR(q_double(r, "SELECT reward FROM completions WHERE idx = 1"), 2.5, 0);
    CHECK_EQ_INT(q_int(r, "SELECT max_tile FROM completions WHERE idx = 1"), 256);
    CHECK_EQ_INT(q_int(r, "SELECT moves FROM completions WHERE idx = 1"), 101);
    CHECK_EQ_INT(q_int(r, "SELECT prompt_idx FROM completions WHERE idx = 1"), 0);
    CHECK(!strcmp(q_text(r, "SELECT error FROM completions WHERE idx = 1", buf, sizeof buf), "took longer than 1 s"));
    CHECK(!strcmp(q_text(r, "SELECT outcome FROM completions WHERE idx = 0", buf, sizeof buf), "success"));
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM completions WHERE idx = 0 AND error IS NULL"), 1);
    CHECK(!strcmp(q_text(r, "SELECT text FROM completions WHERE idx = 0", buf, sizeof buf),
                  "def strategy(board):\n    return \"W\""));

    /* step 2 fails (a metric added twice): commit rolls all of it back */
    CHECK_EQ_INT(metrics_begin_step(db, 2), 0);
    CHECK_EQ_INT(metrics_add(db, "reward", 1.0), 0);
    add_completion(db, 0, "failed", NULL);
    CHECK_EQ_INT(metrics_add(db, "reward", 2.0), -1);
    CHECK_MSG(strstr(metrics_error(db), "step 2: cannot add metric 'reward'") != NULL, "%s", metrics_error(db));
    CHECK_EQ_INT(metrics_commit_step(db), -1);
    CHECK_MSG(strstr(metrics_error(db), "step 2 was rolled back") != NULL, "%s", metrics_error(db));
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM metrics WHERE step = 2"), 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM completions WHERE step = 2"), 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM steps"), 1);

    /* step 3 rolled back on purpose; then step 2 again succeeds */
    CHECK_EQ_INT(metrics_begin_step(db, 3), 0);
    CHECK_EQ_INT(metrics_add(db, "reward", 9.0), 0);
    CHECK_EQ_INT(metrics_rollback_step(db), 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM metrics WHERE step = 3"), 0);
    CHECK_EQ_INT(metrics_begin_step(db, 2), 0);
    CHECK_EQ_INT(metrics_add(db, "reward", 4.0), 0);
    CHECK_EQ_INT(metrics_commit_step(db), 0);
    CHECK_NEAR(q_double(r, "SELECT reward FROM steps WHERE step = 2"), 4.0, 0);

    CHECK_EQ_INT(metrics_finish(db, "completed"), 0);
    CHECK(!strcmp(q_text(r, "SELECT status FROM runs WHERE run_id = 1", buf, sizeof buf), "completed"));
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM runs WHERE run_id = 1 AND ended LIKE '____-__-__T__:__:__Z'"), 1);

    /* reopening appends a run; a step left open at finish is rolled back */
    db = metrics_open(path, "sft", NULL, err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (db) {
        CHECK_EQ_INT(metrics_run_id(db), 2);
        CHECK_EQ_INT(metrics_begin_step(db, 1), 0);
        CHECK_EQ_INT(metrics_add(db, "loss", 2.5), 0);
        CHECK_EQ_INT(metrics_commit_step(db), 0);
        CHECK_EQ_INT(metrics_begin_step(db, 2), 0);
        CHECK_EQ_INT(metrics_add(db, "loss", 2.0), 0);
        CHECK_EQ_INT(metrics_finish(db, "interrupted"), 0);
    }
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM runs"), 2);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"), 1);
    CHECK(!strcmp(q_text(r, "SELECT kind || ' ' || status || ' ' || config FROM runs WHERE run_id = 2", buf,
                         sizeof buf), "sft interrupted "));
    CHECK_NEAR(q_double(r, "SELECT loss FROM steps WHERE run_id = 2 AND step = 1"), 2.5, 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM steps WHERE run_id = 2"), 1);
    CHECK_NEAR(q_double(r, "SELECT reward FROM steps WHERE run_id = 1 AND step = 1"), 3.21, 0);
    sqlite3_close(r);
}

/* A resumed run continues its own row: steps after the checkpoint are deleted, the status is
 * 'running' again, the resume is counted; a missing run is reported as missing. */
static void test_resume(void) {
    char path[256], err[1024], buf[512];
    path_in_tmp(path, sizeof path, "resume.sqlite");
    metrics_db *db = metrics_open(path, "grpo", "first config", err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (!db) return;
    for (int s = 1; s <= 5; s++) {
        CHECK_EQ_INT(metrics_begin_step(db, s), 0);
        CHECK_EQ_INT(metrics_add(db, "reward", s), 0);
        add_completion(db, 0, "success", NULL);
        CHECK_EQ_INT(metrics_commit_step(db), 0);
    }
    CHECK_EQ_INT(metrics_finish(db, "interrupted"), 0);
    db = metrics_open(path, "sft", NULL, err, sizeof err);   /* another run in the same file is untouched */
    CHECK(db != NULL);
    if (db) {
        CHECK_EQ_INT(metrics_begin_step(db, 4), 0);
        CHECK_EQ_INT(metrics_add(db, "loss", 1), 0);
        CHECK_EQ_INT(metrics_commit_step(db), 0);
        metrics_finish(db, "completed");
    }
    int missing = -1;
    db = metrics_resume(path, 1, 3, "resumed config", &missing, err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    CHECK_EQ_INT(missing, 0);
    if (!db) return;
    CHECK_EQ_INT(metrics_run_id(db), 1);
    sqlite3 *r = reader(path);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM steps WHERE run_id = 1"), 3);
    CHECK_EQ_INT(q_int(r, "SELECT max(step) FROM completions WHERE run_id = 1"), 3);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM steps WHERE run_id = 2 AND step = 4"), 1);
    CHECK(!strcmp(q_text(r, "SELECT status || ' ' || resumed || ' ' || config FROM runs WHERE run_id = 1", buf, sizeof buf),
                  "running 1 resumed config"));
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM runs WHERE run_id = 1 AND ended IS NULL AND pid > 0 AND host <> ''"), 1);
    CHECK_EQ_INT(metrics_begin_step(db, 4), 0);   /* step 4 again: no duplicate-key failure */
    CHECK_EQ_INT(metrics_add(db, "reward", 40), 0);
    CHECK_EQ_INT(metrics_commit_step(db), 0);
    CHECK_EQ_INT(metrics_finish(db, "completed"), 0);
    CHECK_NEAR(q_double(r, "SELECT reward FROM steps WHERE run_id = 1 AND step = 4"), 40, 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM steps WHERE run_id = 1"), 4);
    /* a run that is not in the file, and an sft run (resume is for grpo runs) */
    CHECK(metrics_resume(path, 9, 1, NULL, &missing, err, sizeof err) == NULL);
    CHECK_EQ_INT(missing, 1);
    CHECK_MSG(strstr(err, "has no grpo run 9") != NULL, "%s", err);
    CHECK(metrics_resume(path, 2, 1, NULL, &missing, err, sizeof err) == NULL);
    CHECK_EQ_INT(missing, 1);
    sqlite3_close(r);
}

/* A version-1 file (no pid, host, resumed columns) is upgraded in place, keeping its rows. */
static void test_upgrade_v1(void) {
    char path[256], err[1024];
    path_in_tmp(path, sizeof path, "v1.sqlite");
    sqlite3 *w;
    CHECK(sqlite3_open(path, &w) == SQLITE_OK);
    CHECK(sqlite3_exec(w,
                       "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, "
                       "started TEXT NOT NULL, ended TEXT, status TEXT NOT NULL);"
                       "CREATE TABLE metrics (run_id INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, "
                       "value REAL, PRIMARY KEY (run_id, step, name)) WITHOUT ROWID;"
                       "CREATE TABLE completions (run_id INTEGER NOT NULL, step INTEGER NOT NULL, idx INTEGER NOT NULL, "
                       "prompt_idx INTEGER NOT NULL, text TEXT, reward REAL, function_works REAL, no_cheating REAL, "
                       "strategy_succeeds REAL, game_progress REAL, outcome TEXT, max_tile INTEGER, score REAL, "
                       "moves INTEGER, seconds REAL, error TEXT);"
                       "INSERT INTO runs VALUES (1, 'grpo', 'old', '2025-01-01T00:00:00Z', NULL, 'completed');"
                       "INSERT INTO metrics VALUES (1, 1, 'reward', 1.5);"
                       "PRAGMA user_version = 1;", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(w);
    metrics_db *db = metrics_open(path, "grpo", "new", err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (!db) return;
    CHECK_EQ_INT(metrics_run_id(db), 2);
    metrics_finish(db, "completed");
    sqlite3 *r = reader(path);
    CHECK_EQ_INT(q_int(r, "PRAGMA user_version"), METRICS_SCHEMA_VERSION);
    CHECK_EQ_INT(q_int(r, "SELECT resumed FROM runs WHERE run_id = 1"), 0);
    CHECK_EQ_INT(q_int(r, "SELECT count(*) FROM runs WHERE run_id = 2 AND pid IS NOT NULL"), 1);
    CHECK_NEAR(q_double(r, "SELECT reward FROM steps WHERE run_id = 1 AND step = 1"), 1.5, 0);
    sqlite3_close(r);
}

static void test_refusals(void) {
    char path[256], err[1024] = "";
    /* a newer schema version */
    path_in_tmp(path, sizeof path, "newer.sqlite");
    metrics_db *db = metrics_open(path, "grpo", "", err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (db) metrics_finish(db, "completed");
    sqlite3 *w;
    CHECK(sqlite3_open(path, &w) == SQLITE_OK);
    CHECK(sqlite3_exec(w, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(w);
    CHECK(metrics_open(path, "grpo", "", err, sizeof err) == NULL);
    char want[160];
    snprintf(want, sizeof want, "newer.sqlite: metrics schema version 99 is newer than this grpo2048 supports (%d)",
             METRICS_SCHEMA_VERSION);
    CHECK_MSG(strstr(err, want) != NULL, "%s", err);

    /* somebody else's database */
    path_in_tmp(path, sizeof path, "foreign.sqlite");
    CHECK(sqlite3_open(path, &w) == SQLITE_OK);
    CHECK(sqlite3_exec(w, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(w);
    CHECK(metrics_open(path, "grpo", "", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "foreign.sqlite: this SQLite database is not a grpo2048 metrics file") != NULL, "%s", err);

    /* not a database at all */
    path_in_tmp(path, sizeof path, "text.sqlite");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("this is a plain text file, long enough to be read as a database header...............\n", f);
        fclose(f);
    }
    CHECK(metrics_open(path, "grpo", "", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "text.sqlite: cannot read it as a metrics file") != NULL, "%s", err);

    /* a folder that does not exist */
    path_in_tmp(path, sizeof path, "missing/metrics.sqlite");
    CHECK(metrics_open(path, "grpo", "", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "missing/metrics.sqlite: cannot open the metrics file") != NULL, "%s", err);
}

/* Display columns of UTF-8 text. */
static size_t utf8_columns(const char *s) {
    size_t c = 0;
    for (; *s; s++) c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

static void test_progress_format(void) {
    char buf[512];
    progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, "reward=3.21", 3, 0);
    CHECK_MSG(!strcmp(buf, "train:  42%|████▏     | 42/100 [01:03<01:27,  1.50s/it, reward=3.21]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "train", 0, 0, 100, 0.5, NULL, 3, 0);
    CHECK_MSG(!strcmp(buf, "train:   0%|          | 0/100 [00:00<?, ?it/s]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "sft", 50, 0, 100, 10.0, "loss=0.1", 3, 0);
    CHECK_MSG(!strcmp(buf, "sft:  50%|█████     | 50/100 [00:10<00:10,  5.00it/s, loss=0.1]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "train", 100, 0, 100, 3725.0, "", 3, 0);
    CHECK_MSG(!strcmp(buf, "train: 100%|██████████| 100/100 [1:02:05<00:00, 37.25s/it]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "train", 7, 0, 8, 7.0, NULL, 3, 0);   /* 87.5%: 8.75 cells → 8 full + ▋ */
    CHECK_MSG(!strcmp(buf, "train:  88%|████████▊ | 7/8 [00:07<00:01,  1.00it/s]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "train", 3, 0, 0, 6.0, NULL, 3, 0);
    CHECK_MSG(!strcmp(buf, "train: 3it [00:06,  2.00s/it]"), "%s", buf);
    /* an 80-column terminal (79 usable): the extra fields go, then the bar and the description; steps,
     * times, rate, reward, tokens/s and memory stay */
    static const char *const pf = "reward=3.210, 3084 tok/s, mem=0.52G, loss=0.0012, len=87, gen=0.2s, rew=0.1s, train=0.3s";
    int cols = progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, pf, 3, 79);
    CHECK_MSG(cols <= 79 && !strcmp(buf, "42% 42/100 [01:03<01:27,  1.50s/it, reward=3.210, 3084 tok/s, mem=0.52G]"),
              "%d: %s", cols, buf);
    cols = progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, pf, 3, 120);
    CHECK_MSG(!strcmp(buf, "train:  42%|████▏     | 42/100 [01:03<01:27,  1.50s/it, reward=3.210, 3084 tok/s, mem=0.52G, "
                           "loss=0.0012, len=87]"), "%d: %s", cols, buf);
    /* every width: the line fits, and every part shown is whole (each postfix field is one of the given
     * ones, the count is intact), so no number is ever cut */
    for (int w = 1; w <= 200; w++) {
        cols = progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, pf, 3, w);
        CHECK_MSG(cols <= w && cols == (int)utf8_columns(buf), "width %d: %d columns: %s", w, cols, buf);
        if (!buf[0]) { CHECK_MSG(w < 6, "width %d: empty", w); continue; }
        CHECK_MSG(strstr(buf, "42/100") != NULL, "width %d: %s", w, buf);
        const char *open = strchr(buf, '[');
        if (!open) continue;
        CHECK_MSG(buf[strlen(buf) - 1] == ']', "width %d: %s", w, buf);
        char inner[512];
        snprintf(inner, sizeof inner, "%.*s", (int)(strlen(open) - 2), open + 1);
        char *save = NULL;
        int k = 0;
        for (char *f = strtok_r(inner, ",", &save); f; f = strtok_r(NULL, ",", &save), k++) {
            while (*f == ' ') f++;
            if (k == 0) CHECK_MSG(!strcmp(f, "01:03<01:27") || !strcmp(f, "01:03"), "width %d: times '%s'", w, f);
            else if (k == 1 && strstr(f, "s/it")) CHECK_MSG(!strcmp(f, "1.50s/it"), "width %d: rate '%s'", w, f);
            else {
                char want[128];
                snprintf(want, sizeof want, ", %s,", f);
                char all[160];
                snprintf(all, sizeof all, ", %s,", pf);
                CHECK_MSG(strstr(all, want) != NULL, "width %d: field '%s' is not one given", w, f);
            }
        }
    }
    /* narrower: the main fields go from the last, then the rate */
    progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, pf, 3, 60);
    CHECK_MSG(!strcmp(buf, "42% 42/100 [01:03<01:27,  1.50s/it, reward=3.210]"), "%s", buf);
    progress_format_bar(buf, sizeof buf, "train", 42, 0, 100, 63.0, pf, 3, 34);
    CHECK_MSG(!strcmp(buf, "42% 42/100 [01:03<01:27]"), "%s", buf);
    /* the memory field */
    progress_format_memory(buf, sizeof buf, 12.34);
    CHECK_MSG(!strcmp(buf, "gpu_mem=12.3G"), "%s", buf);
    progress_format_memory(buf, sizeof buf, -1);
    CHECK_MSG(!strncmp(buf, "mem=", 4) && buf[strlen(buf) - 1] == 'G' && atof(buf + 4) >= 0, "%s", buf);

    progress_format_line(buf, sizeof buf, 42, 0, 100, 63.06, "reward=3.21 loss=0.5");
    CHECK_MSG(!strcmp(buf, "step 42/100 | elapsed 63.1s | 1.50 s/it | reward=3.21 loss=0.5"), "%s", buf);
    progress_format_line(buf, sizeof buf, 10, 0, 100, 2.0, NULL);
    CHECK_MSG(!strcmp(buf, "step 10/100 | elapsed 2.0s | 5.00 it/s"), "%s", buf);
}

/* Reads a whole temporary file back. */
static char *slurp(FILE *f) {
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    return s;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static void test_progress_output(void) {
    /* plain lines every log_every steps and at the end */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    progress p;
    progress_start(&p, "train", 5, f);
    CHECK_EQ_INT(p.tty, 0);
    p.log_every = 2;
    for (int i = 1; i <= 5; i++) {
        char pf[32];
        snprintf(pf, sizeof pf, "reward=%d", i);
        progress_update(&p, i, pf);
    }
    progress_finish(&p);
    char *s = slurp(f);
    CHECK(s && count(s, "step ") == 3);
    CHECK(s && strstr(s, "step 2/5 | elapsed ") && strstr(s, "| reward=2\n"));
    CHECK(s && strstr(s, "step 4/5 | ") && strstr(s, "step 5/5 | ") && !strstr(s, "step 3/5"));
    free(s);
    fclose(f);

    /* finish prints a last line not yet printed */
    f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    progress_start(&p, "train", 10, f);
    p.log_every = 4;
    for (int i = 1; i <= 6; i++) progress_update(&p, i, NULL);
    progress_finish(&p);
    s = slurp(f);
    CHECK(s && count(s, "step ") == 2 && strstr(s, "step 4/10 |") && strstr(s, "step 6/10 |"));
    free(s);
    fclose(f);

    /* terminal mode (forced): one line redrawn with \r, ended by a newline */
    f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    setenv("COLUMNS", "200", 1);   /* not a terminal: the width comes from $COLUMNS */
    progress_start(&p, "train", 3, f);
    p.tty = 1;
    progress_update(&p, 1, "reward=1.00 with a long postfix");
    progress_update(&p, 2, "r=2");
    progress_clear(&p);
    progress_update(&p, 3, "r=3");
    progress_finish(&p);
    s = slurp(f);
    CHECK(s && count(s, "\r") >= 5 && count(s, "\n") == 1 && s[strlen(s) - 1] == '\n');
    CHECK(s && strstr(s, "\rtrain:  33%|███▎      | 1/3 [") != NULL);
    CHECK(s && strstr(s, "\rtrain: 100%|██████████| 3/3 [") != NULL && strstr(s, ", r=3]"));
    free(s);
    fclose(f);
}

/* docs/metrics.md documents every column of the `steps` view. */
static void test_docs(void) {
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/metrics.md", src && src[0] ? src : ".");
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "%s is missing", path);
    if (!f) return;
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (int i = 0; i < metrics_num_names; i++) {
        char cell[128];
        snprintf(cell, sizeof cell, "`%s`", metrics_names[i]);
        CHECK_MSG(strstr(doc, cell) != NULL, "docs/metrics.md does not document %s", metrics_names[i]);
    }
}

/* A metrics file that cannot be written (a full disk; here RLIMIT_FSIZE makes every write fail, in a
 * child process) is said to be unwritable — not "cannot rollback - no transaction is active" — and no
 * empty file is left behind. */
static void test_full_disk(void) {
    char path[256];
    path_in_tmp(path, sizeof path, "full.sqlite");
    unlink(path);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        signal(SIGXFSZ, SIG_IGN);   /* a write past the limit fails with EFBIG instead of killing us */
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_FSIZE, &rl);
        char err[1024] = "";
        metrics_db *db = metrics_open(path, "grpo", "", err, sizeof err);
        if (db) snprintf(err, sizeof err, "OPENED");
        if (write(pfd[1], err, strlen(err)) < 0) _exit(2);
        _exit(0);
    }
    close(pfd[1]);
    char msg[1100] = "";
    ssize_t n = read(pfd[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    printf("metrics file on a full disk: %s\n", msg);
    CHECK_MSG(strcmp(msg, "OPENED") != 0 && msg[0], "the metrics file opened without room to write: %s", msg);
    CHECK_MSG(strstr(msg, "full.sqlite") != NULL, "the message does not name the file: %s", msg);
    CHECK_MSG(strstr(msg, "no transaction is active") == NULL, "the message hides the cause: %s", msg);
    CHECK_MSG(access(path, F_OK) != 0, "an empty %s was left behind", path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/grpo2048_metrics_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_metrics();
    test_resume();
    test_upgrade_v1();
    test_refusals();
    test_full_disk();
    test_progress_format();
    test_progress_output();
    test_docs();
    const char *files[] = {"metrics.sqlite", "metrics.sqlite-wal", "metrics.sqlite-shm", "newer.sqlite",
                           "newer.sqlite-wal", "newer.sqlite-shm", "foreign.sqlite", "text.sqlite",
                           "resume.sqlite", "resume.sqlite-wal", "resume.sqlite-shm", "v1.sqlite", "v1.sqlite-wal",
                           "v1.sqlite-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[256];
        path_in_tmp(p, sizeof p, files[i]);
        unlink(p);
    }
    if (rmdir(tmpdir) != 0) fprintf(stderr, "note: %s not removed\n", tmpdir);
    return TEST_DONE();
}
