/*
 * trainer/metrics.c: output_dir/metrics.sqlite (see metrics.h for the schema and the call order).
 *
 * Opening: read PRAGMA user_version first (this is also where a file that is not a database fails),
 * refuse newer versions and foreign databases, switch to WAL (a journal-mode change cannot run inside a
 * transaction), then create the schema (for a new file) or upgrade a version-1 file, rebuild the `steps`
 * view from metrics_names[] and insert the run row (or, resuming, trim and reopen the run's row) in one
 * IMMEDIATE transaction, so a half-created schema or a half-resumed run can never be observed.
 *
 * Steps: metrics_begin_step opens a BEGIN IMMEDIATE transaction (taking the write lock up front, with a
 * busy timeout, so a reader holding the file briefly does not fail the step later); the insert
 * statements are prepared once at open. Any failed insert marks the step failed; commit then rolls the
 * whole step back, which is the "all of a step's rows or none" guarantee. synchronous=NORMAL is the
 * documented safe setting for WAL: a crash loses at most the last committed steps, never consistency.
 */
#include "trainer/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "trainer/config.h"

#define METRICS_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

_Static_assert(CONFIG_NUM_REWARDS == 4, "metrics_completion.rewards has one slot per reward function");

const char *const metrics_names[] = {
    "reward", "reward_std",
    "rewards/function_works/mean", "rewards/function_works/std",
    "rewards/no_cheating/mean", "rewards/no_cheating/std",
    "rewards/strategy_succeeds/mean", "rewards/strategy_succeeds/std",
    "rewards/game_progress/mean", "rewards/game_progress/std",
    "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
    "completions/mean_terminated_length", "completions/min_terminated_length",
    "completions/max_terminated_length",
    "frac_reward_zero_std", "loss", "grad_norm", "learning_rate", "kl", "entropy",
    "clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/low_min", "clip_ratio/high_mean",
    "clip_ratio/high_max", "cispo_clip_ratio", "vespo/phi_seq_mean", "policy_loss", "entropy_coef",
    "num_tokens", "step_time", "generation_time", "reward_time", "reward_wait_time", "train_time", "tokens_per_second",
    "timeouts", "stuck", "wins", "infra_errors", "epoch", "eval_loss", "memory/rss_gb",
    /* evaluation: TRL's eval_ prefix (the steps view also shows each as "eval/..." for older queries) */
    "eval_reward", "eval_reward_std",
    "eval_rewards/function_works/mean", "eval_rewards/no_cheating/mean",
    "eval_rewards/strategy_succeeds/mean", "eval_rewards/game_progress/mean",
    "eval_games", "eval_wins", "eval_win_rate", "eval_max_tile", "eval_score", "eval_timeouts",
    "eval_completions/mean_length", "eval_completions/clipped_ratio", "eval_time",
    /* grpo2048 eval (trainer/eval.c): a run of kind 'eval' stores its summary at step 0 */
    "eval_pass@1", "eval_pass@k", "eval_num_samples", "eval_problems", "eval_tokens_generated",
    "eval_tokens_per_second", "eval_acceptance_rate", "eval_generation_time", "eval_reward_time",
    /* GPU telemetry (trainer/gpu_telemetry.c): NVML samples per phase, absent without NVML */
#define GPU_COLUMNS(p) p "utilization", p "sm_clock_mhz", p "sm_clock_mhz_min", p "power_w", p "temperature_c", \
    p "memory_used_gb", p "samples"
    GPU_COLUMNS("gpu/"), GPU_COLUMNS("gpu/generation/"), GPU_COLUMNS("gpu/reward/"), GPU_COLUMNS("gpu/train/"),
    GPU_COLUMNS("gpu/other/"),
#undef GPU_COLUMNS
    "gpu/model_peak_memory_gb",
};
const int metrics_num_names = (int)(sizeof metrics_names / sizeof metrics_names[0]);

struct metrics_db {
    sqlite3 *db;
    char *path;
    int run_id;
    int step;              /* the open step */
    int in_step;           /* a step transaction is open */
    int step_failed;       /* an insert of the open step failed: commit rolls back */
    sqlite3_stmt *ins_metric, *ins_completion;
    char err[1024];
    char step_err[1024];   /* the first failure of the open step */
    int created;           /* this open created the file: a failed open removes it again */
};

static _Thread_local char finish_error[1024];

/* The runs table's columns (version 4), shared by the new schema and the 3 -> 4 rebuild. */
#define RUNS_COLUMNS \
    " run_id INTEGER PRIMARY KEY," \
    " kind TEXT NOT NULL CHECK (kind IN ('grpo', 'sft', 'eval'))," \
    " config TEXT NOT NULL," \
    " started TEXT NOT NULL," \
    " ended TEXT," \
    " status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted'))," \
    " pid INTEGER, host TEXT, resumed INTEGER NOT NULL DEFAULT 0"

/* Version 3 -> 4, SQLite's documented way to change a table's constraints (create the new table, copy,
 * drop the old, rename), run with foreign keys off (open_begin) so that dropping the old `runs` does
 * not check the metrics and completions rows that refer to it; they refer to it by name, so they
 * point at the new table after the rename. */
static const char *upgrade_3_4_sql =
    "CREATE TABLE runs_v3 (" RUNS_COLUMNS ");"
    "INSERT INTO runs_v3(run_id, kind, config, started, ended, status, pid, host, resumed)"
    " SELECT run_id, kind, config, started, ended, status, pid, host, resumed FROM runs;"
    "DROP TABLE runs;"
    "ALTER TABLE runs_v3 RENAME TO runs;"
    "ALTER TABLE completions ADD COLUMN tokens INTEGER;"
    "ALTER TABLE completions ADD COLUMN acceptance_rate REAL;";

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS runs ("
    RUNS_COLUMNS ");"
    "CREATE TABLE IF NOT EXISTS metrics ("
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " step INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " value REAL,"
    " PRIMARY KEY (run_id, step, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS completions ("
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " step INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " prompt_idx INTEGER NOT NULL,"
    " text TEXT,"
    " reward REAL,"
    " function_works REAL, no_cheating REAL, strategy_succeeds REAL, game_progress REAL,"
    " outcome TEXT, max_tile INTEGER, score REAL, moves INTEGER, seconds REAL, error TEXT,"
    " rank INTEGER NOT NULL DEFAULT 0, tokens INTEGER, acceptance_rate REAL);"
    "CREATE INDEX IF NOT EXISTS completions_run_step ON completions(run_id, step);";

static void set_err(metrics_db *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
}

/* "2025-01-31T12:34:56Z" */
static void utc_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int exec(metrics_db *m, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(m->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(m, "%s: %s", m->path, msg ? msg : sqlite3_errmsg(m->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Runs a one-row, one-column query that returns an integer (a pragma or count). */
static int query_int(metrics_db *m, const char *sql, long long *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(m, "%s: %s", m->path, sqlite3_errmsg(m->db));
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        set_err(m, "%s: %s", m->path, sqlite3_errmsg(m->db));
        sqlite3_finalize(st);
        return -1;
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* CREATE VIEW steps: one max(CASE ...) column per known metric name. */
static char *steps_view_sql(void) {
    size_t cap = 256;
    for (int i = 0; i < metrics_num_names; i++) cap += 4 * strlen(metrics_names[i]) + 128;
    char *sql = malloc(cap);
    if (!sql) return NULL;
    size_t n = (size_t)snprintf(sql, cap, "CREATE VIEW steps AS SELECT run_id, step");
    for (int i = 0; i < metrics_num_names; i++)
        n += (size_t)snprintf(sql + n, cap - n, ", max(CASE WHEN name = '%s' THEN value END) AS \"%s\"",
                              metrics_names[i], metrics_names[i]);
    /* "eval/x" aliases of the stored "eval_x" names of evaluation during training (grpo2048 wrote eval/...
     * before it followed TRL); the names of grpo2048 eval, from "eval_pass@1" on, never had another name */
    int legacy_end = metrics_num_names;
    for (int i = 0; i < metrics_num_names; i++)
        if (!strcmp(metrics_names[i], "eval_pass@1")) legacy_end = i;
    for (int i = 0; i < legacy_end; i++)
        if (!strncmp(metrics_names[i], "eval_", 5) && strcmp(metrics_names[i], "eval_loss") != 0)
            n += (size_t)snprintf(sql + n, cap - n, ", max(CASE WHEN name = '%s' THEN value END) AS \"eval/%s\"",
                                  metrics_names[i], metrics_names[i] + 5);
    snprintf(sql + n, cap - n, " FROM metrics GROUP BY run_id, step;");
    return sql;
}

static void close_db(metrics_db *m) {
    sqlite3_finalize(m->ins_metric);
    sqlite3_finalize(m->ins_completion);
    sqlite3_close(m->db);
    free(m->path);
    free(m);
}

/* Rolls back without touching m->err: the error that caused the rollback is the one to report. */
static void rollback_quiet(metrics_db *m) {
    sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
}

static metrics_db *open_fail(metrics_db *m, char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "%s", m->err);
    if (m->created && m->path) {
        /* A file this open created and could not set up (a full disk, a read-only folder...) is removed
         * with its WAL and shared-memory files: no empty metrics file is left behind. */
        static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
        sqlite3_close(m->db);
        m->db = NULL;
        char p[4200];
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s%s", m->path, sfx[i]);
            unlink(p);
        }
    }
    close_db(m);
    return NULL;
}

/* Opens path, checks and prepares the schema (creating or upgrading it), switches to WAL, rebuilds the
 * view, and leaves an IMMEDIATE transaction open for the caller's run row (NULL + message on failure). */
static metrics_db *open_begin(const char *path, char *err, size_t errlen) {
    metrics_db *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    struct stat sb;
    m->created = stat(path, &sb) != 0 && errno == ENOENT;
    if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        set_err(m, "%s: cannot open the metrics file: %s", path, m->db ? sqlite3_errmsg(m->db) : "out of memory");
        return open_fail(m, err, errlen);
    }
    sqlite3_extended_result_codes(m->db, 1);
    sqlite3_busy_timeout(m->db, 10000);

    long long version, tables;
    if (query_int(m, "PRAGMA user_version", &version) != 0) {
        set_err(m, "%s: cannot read it as a metrics file: %s", path, sqlite3_errmsg(m->db));
        return open_fail(m, err, errlen);
    }
    if (version > METRICS_SCHEMA_VERSION) {
        set_err(m, "%s: metrics schema version %lld is newer than this grpo2048 supports (%d); "
                   "use a newer grpo2048 or another output_dir", path, version, METRICS_SCHEMA_VERSION);
        return open_fail(m, err, errlen);
    }
    if (version == 0) {
        if (query_int(m, "SELECT count(*) FROM sqlite_master", &tables) != 0) return open_fail(m, err, errlen);
        if (tables > 0) {
            set_err(m, "%s: this SQLite database is not a grpo2048 metrics file (it has tables but "
                       "PRAGMA user_version is 0); use another output_dir", path);
            return open_fail(m, err, errlen);
        }
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK) {
        set_err(m, "%s: %s", path, sqlite3_errmsg(m->db));
        return open_fail(m, err, errlen);
    }
    int wal = sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    if (!wal) {
        set_err(m, "%s: cannot switch to WAL mode: %s", path, sqlite3_errmsg(m->db));
        return open_fail(m, err, errlen);
    }
    /* foreign keys stay off while an older schema is upgraded (a pragma that a transaction ignores, so it is
     * set here); open_finish turns them on after the commit */
    if (exec(m, version == 0 || version == METRICS_SCHEMA_VERSION ? "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                                                                    : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;") != 0)
        return open_fail(m, err, errlen);

    if (exec(m, "BEGIN IMMEDIATE") != 0) return open_fail(m, err, errlen);
    char uv[64];
    snprintf(uv, sizeof uv, "PRAGMA user_version = %d;", METRICS_SCHEMA_VERSION);
    if (version == 0) {
        if (exec(m, schema_sql) || exec(m, uv)) { rollback_quiet(m); return open_fail(m, err, errlen); }
    } else if (version < METRICS_SCHEMA_VERSION) {
        /* version 1 → 2: the writer's pid and host, and the resume count; 2 → 3: the data-parallel rank that
         * generated each completion */
        if ((version == 1 && exec(m, "ALTER TABLE runs ADD COLUMN pid INTEGER; ALTER TABLE runs ADD COLUMN host TEXT; "
                                     "ALTER TABLE runs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;")) ||
            (version <= 2 && exec(m, "ALTER TABLE completions ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;"))) {
            rollback_quiet(m);
            return open_fail(m, err, errlen);
        }
        /* version 3 → 4: kind 'eval', the samples' tokens and acceptance rate */
        if (exec(m, "DROP VIEW IF EXISTS steps") || exec(m, upgrade_3_4_sql) || exec(m, uv)) {
            rollback_quiet(m);
            return open_fail(m, err, errlen);
        }
    }
    /* The view is rebuilt on every open, so names added to metrics_names[] later get their columns in
     * existing files too (it is derived data: no schema version change is needed for it). */
    char *view = steps_view_sql();
    if (!view) { set_err(m, "%s: out of memory", path); rollback_quiet(m); return open_fail(m, err, errlen); }
    int vrc = exec(m, "DROP VIEW IF EXISTS steps") || exec(m, view);
    free(view);
    if (vrc) { rollback_quiet(m); return open_fail(m, err, errlen); }
    return m;
}

/* Commits open_begin's transaction and prepares the insert statements. */
static metrics_db *open_finish(metrics_db *m, char *err, size_t errlen) {
    if (exec(m, "COMMIT") != 0) { rollback_quiet(m); return open_fail(m, err, errlen); }
    if (exec(m, "PRAGMA foreign_keys=ON") != 0) return open_fail(m, err, errlen);
    if (sqlite3_prepare_v2(m->db, "INSERT INTO metrics(run_id, step, name, value) VALUES (?, ?, ?, ?)", -1,
                           &m->ins_metric, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "INSERT INTO completions(run_id, step, idx, prompt_idx, text, reward, function_works, "
                           "no_cheating, strategy_succeeds, game_progress, outcome, max_tile, score, moves, "
                           "seconds, error, rank, tokens, acceptance_rate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                           "?, ?, ?, ?, ?, ?, ?)",
                           -1, &m->ins_completion, NULL) != SQLITE_OK) {
        set_err(m, "%s: %s", m->path, sqlite3_errmsg(m->db));
        return open_fail(m, err, errlen);
    }
    return m;
}

static void host_name(char *buf, size_t n) {
    if (gethostname(buf, n) != 0) snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

/* Runs one statement with integer/text parameters given as a format: 'i' int, 't' text (NULL → NULL).
 * Returns sqlite3_step's result (SQLITE_DONE on success) or the prepare error. */
static int run_stmt(metrics_db *m, const char *sql, const char *types, ...) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i') sqlite3_bind_int(st, i + 1, va_arg(ap, int));
        else {
            const char *t = va_arg(ap, const char *);
            if (t) sqlite3_bind_text(st, i + 1, t, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, i + 1);
        }
    }
    va_end(ap);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

metrics_db *metrics_open(const char *path, const char *kind, const char *config_text, char *err, size_t errlen) {
    if (!path || !kind) METRICS_ABORT("metrics_open: NULL argument");
    if (strcmp(kind, "grpo") && strcmp(kind, "sft") && strcmp(kind, "eval"))
        METRICS_ABORT("metrics_open: kind '%s' is not grpo, sft or eval", kind);
    metrics_db *m = open_begin(path, err, errlen);
    if (!m) return NULL;
    char now[32], host[256];
    utc_now(now, sizeof now);
    host_name(host, sizeof host);
    if (run_stmt(m, "INSERT INTO runs(kind, config, started, status, pid, host) VALUES (?, ?, ?, 'running', ?, ?)",
                 "tttit", kind, config_text ? config_text : "", now, (int)getpid(), host) != SQLITE_DONE) {
        set_err(m, "%s: cannot add the run: %s", path, sqlite3_errmsg(m->db));
        rollback_quiet(m);
        return open_fail(m, err, errlen);
    }
    m->run_id = (int)sqlite3_last_insert_rowid(m->db);
    return open_finish(m, err, errlen);
}

metrics_db *metrics_resume(const char *path, int run_id, int step, const char *config_text, int *missing, char *err,
                           size_t errlen) {
    if (!path || !missing) METRICS_ABORT("metrics_resume: NULL argument");
    *missing = 0;
    metrics_db *m = open_begin(path, err, errlen);
    if (!m) return NULL;
    long long found = 0;
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM runs WHERE run_id = %d AND kind = 'grpo'", run_id);
    if (query_int(m, q, &found) != 0) { rollback_quiet(m); return open_fail(m, err, errlen); }
    if (!found) {
        *missing = 1;
        set_err(m, "%s has no grpo run %d to continue", path, run_id);
        rollback_quiet(m);
        return open_fail(m, err, errlen);
    }
    char host[256];
    host_name(host, sizeof host);
    if (run_stmt(m, "DELETE FROM metrics WHERE run_id = ? AND step > ?", "ii", run_id, step) != SQLITE_DONE ||
        run_stmt(m, "DELETE FROM completions WHERE run_id = ? AND step > ?", "ii", run_id, step) != SQLITE_DONE ||
        run_stmt(m, "UPDATE runs SET status = 'running', ended = NULL, pid = ?, host = ?, resumed = resumed + 1, "
                    "config = coalesce(?, config) WHERE run_id = ?", "itti", (int)getpid(), host, config_text,
                 run_id) != SQLITE_DONE) {
        set_err(m, "%s: cannot reopen run %d: %s", path, run_id, sqlite3_errmsg(m->db));
        rollback_quiet(m);
        return open_fail(m, err, errlen);
    }
    m->run_id = run_id;
    return open_finish(m, err, errlen);
}

int metrics_begin_step(metrics_db *m, int step) {
    if (!m) METRICS_ABORT("metrics_begin_step: NULL db");
    if (m->in_step) METRICS_ABORT("metrics_begin_step(%d): step %d is still open", step, m->step);
    if (exec(m, "BEGIN IMMEDIATE") != 0) return -1;
    m->step = step;
    m->in_step = 1;
    m->step_failed = 0;
    m->step_err[0] = '\0';
    return 0;
}

/* Records the open step's first failure; commit reports it and rolls back. */
static int step_fail(metrics_db *m, const char *what) {
    set_err(m, "%s: step %d: %s: %s", m->path, m->step, what, sqlite3_errmsg(m->db));
    if (!m->step_failed) snprintf(m->step_err, sizeof m->step_err, "%s", m->err);
    m->step_failed = 1;
    return -1;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

int metrics_add(metrics_db *m, const char *name, double value) {
    if (!m || !name) METRICS_ABORT("metrics_add: NULL argument");
    if (!m->in_step) METRICS_ABORT("metrics_add('%s'): no open step (call metrics_begin_step)", name);
    sqlite3_stmt *st = m->ins_metric;
    sqlite3_bind_int(st, 1, m->run_id);
    sqlite3_bind_int(st, 2, m->step);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, value);   /* SQLite stores a NaN as NULL */
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        char what[160];
        snprintf(what, sizeof what, "cannot add metric '%s'", name);
        return step_fail(m, what);
    }
    return 0;
}

int metrics_add_completion(metrics_db *m, const metrics_completion *c) {
    if (!m || !c) METRICS_ABORT("metrics_add_completion: NULL argument");
    if (!m->in_step) METRICS_ABORT("metrics_add_completion(%d): no open step (call metrics_begin_step)", c->idx);
    sqlite3_stmt *st = m->ins_completion;
    int i = 1;
    sqlite3_bind_int(st, i++, m->run_id);
    sqlite3_bind_int(st, i++, m->step);
    sqlite3_bind_int(st, i++, c->idx);
    sqlite3_bind_int(st, i++, c->prompt_idx);
    bind_text_or_null(st, i++, c->text);
    sqlite3_bind_double(st, i++, c->reward);
    for (int r = 0; r < 4; r++) sqlite3_bind_double(st, i++, c->rewards[r]);
    bind_text_or_null(st, i++, c->outcome);
    sqlite3_bind_int64(st, i++, c->max_tile);
    sqlite3_bind_double(st, i++, c->score);
    sqlite3_bind_int(st, i++, c->moves);
    sqlite3_bind_double(st, i++, c->seconds);
    bind_text_or_null(st, i++, c->error);
    sqlite3_bind_int(st, i++, c->rank);
    if (c->has_sampling) {
        sqlite3_bind_int64(st, i++, c->tokens);
        sqlite3_bind_double(st, i++, c->acceptance_rate);   /* NaN is stored as NULL */
    } else {
        sqlite3_bind_null(st, i++);
        sqlite3_bind_null(st, i++);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "cannot add completion %d", c->idx);
        return step_fail(m, what);
    }
    return 0;
}

int metrics_rollback_step(metrics_db *m) {
    if (!m) METRICS_ABORT("metrics_rollback_step: NULL db");
    if (!m->in_step) METRICS_ABORT("metrics_rollback_step: no open step");
    m->in_step = 0;
    /* a failed COMMIT may already have ended the transaction: then there is nothing to roll back */
    if (sqlite3_get_autocommit(m->db)) return 0;
    return exec(m, "ROLLBACK");
}

int metrics_commit_step(metrics_db *m) {
    if (!m) METRICS_ABORT("metrics_commit_step: NULL db");
    if (!m->in_step) METRICS_ABORT("metrics_commit_step: no open step");
    if (m->step_failed) {
        char first[sizeof m->step_err];
        snprintf(first, sizeof first, "%s", m->step_err);
        metrics_rollback_step(m);
        set_err(m, "step %d was rolled back (none of its rows were stored) after: %s", m->step, first);
        return -1;
    }
    if (exec(m, "COMMIT") != 0) {
        char first[sizeof m->err];
        snprintf(first, sizeof first, "%s", m->err);
        metrics_rollback_step(m);
        set_err(m, "step %d was rolled back: COMMIT failed: %s", m->step, first);
        return -1;
    }
    m->in_step = 0;
    return 0;
}

int metrics_finish(metrics_db *m, const char *status) {
    if (!m || !status) METRICS_ABORT("metrics_finish: NULL argument");
    if (strcmp(status, "completed") && strcmp(status, "failed") && strcmp(status, "interrupted"))
        METRICS_ABORT("metrics_finish: status '%s' is not completed, failed or interrupted", status);
    int rc = 0;
    if (m->in_step && metrics_rollback_step(m) != 0) rc = -1;
    char now[32];
    utc_now(now, sizeof now);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(m->db, "UPDATE runs SET ended = ?, status = ? WHERE run_id = ?", -1, &st,
                                      NULL) != SQLITE_OK) {
        set_err(m, "%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = -1;
    }
    if (rc == 0) {
        sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, m->run_id);
        if (sqlite3_step(st) != SQLITE_DONE) {
            set_err(m, "%s: cannot set the run's status: %s", m->path, sqlite3_errmsg(m->db));
            rc = -1;
        }
    }
    sqlite3_finalize(st);
    snprintf(finish_error, sizeof finish_error, "%s", rc ? m->err : "");
    close_db(m);
    return rc;
}

int metrics_run_id(const metrics_db *m) {
    if (!m) METRICS_ABORT("metrics_run_id: NULL db");
    return m->run_id;
}

const char *metrics_error(const metrics_db *m) { return m ? m->err : finish_error; }
