/*
 * tests/trainer/test_resume.c: runs that survive — through the binary, as a user runs it.
 *
 * On a tiny configuration (configs/default.yaml, 4 steps of 8 completions of at most 32 tokens):
 * - a reference run, uninterrupted;
 * - SIGINT during a run: the current step finishes, a checkpoint is written, the run is marked
 *   'interrupted', the exit status is 130; `--resume` then completes it, and every per-step metric
 *   (times excepted) and every completion equal the reference's bit for bit, each step once;
 *   `grpo2048 runs` lists the runs; SIGTERM ends a run the same way (exit status 143);
 * - SIGINT during `grpo2048 sft`: the step finishes, a loadable model folder is saved, the run is
 *   marked 'interrupted', exit status 130;
 * - SIGKILL at random moments, three times in a row, each time resuming from the latest checkpoint (or
 *   starting afresh when none was written yet): after every kill the SQLite file passes
 *   integrity_check and holds whole steps only (every step the same metric names, all its
 *   completions); `grpo2048 runs` shows the killed run as 'killed'; the finished run equals the reference;
 * - a second layout with every option at once (num_iterations 2, steps_per_generation 2, GSPO, bnpo,
 *   delta, epsilon_high, top_entropy_quantile, mask_truncated_completions, beta with a synced reference
 *   model, evaluation, save_total_limit 1): run 2 steps, then resume to 5 — the resumed run needs the
 *   buffered generation, its old log-probabilities and the synced reference model from the checkpoint —
 *   equals the uninterrupted 5-step run; the generation's metrics appear only at the steps that
 *   generate, eval/... metrics at the eval steps, and one checkpoint is kept;
 * - refusals, each with a message saying what is wrong: no checkpoint, a folder that is not a
 *   checkpoint, a truncated model.safetensors, a truncated optimizer.bin, another architecture, an
 *   incompatible config, a checkpoint already at max_steps.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testing.h"

static const char *bin;
static char tmp[] = "/tmp/grpo2048-resume-XXXXXX";

static const char *const TINY[] = {"--set", "max_steps=4", "--set", "max_completion_length=32", "--set",
                                   "num_generations=4", "--set", "per_device_train_batch_size=8", "--set",
                                   "rewards.workers=2", "--set", "rewards.timeout=0.5", NULL};

static const char *const RICH[] = {
    "--set", "max_completion_length=40", "--set", "num_generations=4", "--set", "per_device_train_batch_size=4",
    "--set", "num_iterations=2", "--set", "steps_per_generation=2", "--set", "loss_type=bnpo",
    "--set", "importance_sampling_level=sequence", "--set", "delta=1.5", "--set", "epsilon_high=0.28",
    "--set", "top_entropy_quantile=0.5", "--set", "mask_truncated_completions=true", "--set", "beta=0.04",
    "--set", "sync_ref_model=true", "--set", "ref_model_sync_steps=1", "--set", "ref_model_mixup_alpha=0.5",
    "--set", "eval_steps=2", "--set", "eval_games=2", "--set", "save_steps=1", "--set", "save_total_limit=1",
    "--set", "rewards.workers=2", "--set", "rewards.timeout=0.5", "--set", "learning_rate=1e-3", NULL};

/* Starts `grpo2048 train configs/default.yaml` + base + extra (NULL-terminated lists) with stdout and
 * stderr in log; returns the pid. */
/* Starts `grpo2048 CMD CONFIG base... extra...` with stdout and stderr to log. */
static pid_t spawn_cmd(const char *cmd, const char *config, const char *const *base, const char *const *extra,
                       const char *log) {
    const char *argv[128];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = cmd;
    argv[n++] = config;
    for (int i = 0; base && base[i]; i++) argv[n++] = base[i];
    for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static pid_t spawn(const char *const *base, const char *const *extra, const char *log) {
    return spawn_cmd("train", "configs/default.yaml", base, extra, log);
}

static int wait_status(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* Runs to the end; returns the exit status and leaves the output in *out (malloc'd). */
static int run_train(const char *const *base, const char *const *extra, char **out) {
    char log[1200];
    snprintf(log, sizeof log, "%s/last.log", tmp);
    int rc = wait_status(spawn(base, extra, log));
    *out = slurp(log);
    return rc;
}

static double q(const char *db_path, const char *sql) {
    sqlite3 *db;
    double v = -12345;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) { sqlite3_close(db); return v; }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    } else if (!strstr(sqlite3_errmsg(db), "no such table")) {   /* polling may start before the schema exists */
        fprintf(stderr, "sql error: %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return v;
}

static char *qtext(const char *db_path, const char *sql) {
    sqlite3 *db;
    char *v = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) { sqlite3_close(db); return strdup(""); }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) v = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v ? v : strdup("");
}

static const char *TIMES = "('step_time', 'generation_time', 'reward_time', 'reward_wait_time', 'train_time', 'tokens_per_second', 'eval_time', 'memory/rss_gb')";

/* Every metric (times excepted) and every completion of run `run` in dir/metrics.sqlite equals those of
 * run 1 of the reference, each step once. */
static void check_same_as(const char *dir, int run, const char *ref_dir, int steps, const char *what) {
    char path[1200], sql[2048];
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) { CHECK_MSG(0, "%s: cannot open %s", what, path); return; }
    snprintf(sql, sizeof sql, "ATTACH '%s/metrics.sqlite' AS ref", ref_dir);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    /* the run under test is made visible as view `m` / `c`, the reference's run 1 as `r` / `rc` */
    snprintf(sql, sizeof sql, "CREATE TEMP VIEW m AS SELECT * FROM main.metrics WHERE run_id = %d; "
             "CREATE TEMP VIEW c AS SELECT * FROM main.completions WHERE run_id = %d; "
             "CREATE TEMP VIEW r AS SELECT * FROM ref.metrics WHERE run_id = 1; "
             "CREATE TEMP VIEW rc AS SELECT * FROM ref.completions WHERE run_id = 1;", run, run);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    struct { const char *sql; double want; } checks[] = {
        {"SELECT count(DISTINCT step) FROM m", steps},
        {"SELECT max(step) FROM m", steps},
        {"SELECT count(*) FROM (SELECT step, name FROM m EXCEPT SELECT step, name FROM r)", 0},
        {"SELECT count(*) FROM (SELECT step, name FROM r EXCEPT SELECT step, name FROM m)", 0},
        {NULL, 0},   /* values: filled below */
        {"SELECT count(*) FROM c", -1},
        {"SELECT count(*) FROM c JOIN rc USING (step, idx) WHERE c.text = rc.text AND c.reward = rc.reward AND "
         "c.outcome = rc.outcome", -1},
    };
    char values[1024];
    snprintf(values, sizeof values, "SELECT count(*) FROM m JOIN r USING (step, name) WHERE m.name NOT IN %s AND "
             "m.value IS NOT r.value", TIMES);
    checks[4].sql = values;
    double ncomp = -1;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        sqlite3_stmt *st;
        double v = -1;
        if (sqlite3_prepare_v2(db, checks[i].sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
            sqlite3_finalize(st);
        }
        if (i == 5) { ncomp = v; continue; }
        double want = i == 6 ? ncomp : checks[i].want;
        CHECK_MSG(v == want, "%s: %s = %g, expected %g", what, checks[i].sql, v, want);
    }
    CHECK_MSG(ncomp > 0, "%s: no completions", what);
    /* show which metrics differ, to make a failure readable */
    snprintf(sql, sizeof sql, "SELECT step, name, m.value, r.value FROM m JOIN r USING (step, name) "
             "WHERE m.name NOT IN %s AND m.value IS NOT r.value LIMIT 5", TIMES);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            fprintf(stderr, "  %s: step %d %s: %.17g vs reference %.17g\n", what, sqlite3_column_int(st, 0),
                    (const char *)sqlite3_column_text(st, 1), sqlite3_column_double(st, 2), sqlite3_column_double(st, 3));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* The metrics file holds whole steps only, and passes SQLite's integrity check. */
static void check_consistent(const char *dir, int completions_per_step, const char *what) {
    char path[1400];
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) return;   /* killed before the file was created */
    char *ok = qtext(path, "PRAGMA integrity_check");
    CHECK_MSG(!strcmp(ok, "ok"), "%s: integrity_check: %s", what, ok);
    free(ok);
    /* every step has the same number of metric rows, and all of its completions */
    CHECK_MSG(q(path, "SELECT count(DISTINCT n) FROM (SELECT count(*) AS n FROM metrics GROUP BY run_id, step)") <= 1,
              "%s: steps with different numbers of metrics", what);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT step FROM completions GROUP BY run_id, step HAVING count(*) <> %d)",
             completions_per_step);
    CHECK_MSG(q(path, sql) == 0, "%s: a step with missing completions", what);
    CHECK_MSG(q(path, "SELECT count(*) FROM (SELECT DISTINCT run_id, step FROM completions EXCEPT "
                      "SELECT DISTINCT run_id, step FROM metrics)") == 0, "%s: completions of an uncommitted step", what);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char ref_dir[1200];
static double ref_seconds;   /* wall time of the reference run, to place the kills inside a run */

static void test_reference(void) {
    char *out;
    snprintf(ref_dir, sizeof ref_dir, "%s/ref", tmp);
    char od[1300];
    snprintf(od, sizeof od, "output_dir=%s", ref_dir);
    const char *extra[] = {"--set", od, NULL};
    double t0 = now();
    int rc = run_train(TINY, extra, &out);
    ref_seconds = now() - t0;
    CHECK_MSG(rc == 0, "reference run exited %d:\n%s", rc, out);
    free(out);
}

static void test_sigint_and_resume(void) {
    char dir[1200], od[1300], log[1300], db[1300], ck[1400], *out;
    snprintf(dir, sizeof dir, "%s/int", tmp);
    snprintf(od, sizeof od, "output_dir=%s", dir);
    snprintf(log, sizeof log, "%s/int.log", tmp);
    snprintf(db, sizeof db, "%s/metrics.sqlite", dir);
    const char *extra[] = {"--set", od, NULL};
    pid_t pid = spawn(TINY, extra, log);
    /* wait for the first committed step, then interrupt */
    double t0 = now();
    while (now() - t0 < 120 && q(db, "SELECT count(*) FROM metrics WHERE name = 'reward'") < 1) usleep(20000);
    kill(pid, SIGINT);
    int rc = wait_status(pid);
    out = slurp(log);
    int done = (int)q(db, "SELECT count(*) FROM metrics WHERE name = 'reward'");
    if (done < 4) {
        CHECK_MSG(rc == 130, "interrupted run exited %d:\n%s", rc, out);
        CHECK_MSG(strstr(out, "stopping after this step") && strstr(out, "--resume"), "%s", out);
        char *status = qtext(db, "SELECT status FROM runs WHERE run_id = 1");
        CHECK_MSG(!strcmp(status, "interrupted"), "status %s", status);
        free(status);
        snprintf(ck, sizeof ck, "%s/checkpoint-%d/trainer_state.json", dir, done);
        CHECK_MSG(access(ck, R_OK) == 0, "no checkpoint at the interrupted step %d", done);
    } else {
        fprintf(stderr, "note: the run finished before the interrupt arrived (exit %d)\n", rc);
    }
    free(out);
    rc = run_train(TINY, (const char *[]){"--set", od, "--resume", NULL}, &out);
    if (done < 4) {
        CHECK_MSG(rc == 0, "resumed run exited %d:\n%s", rc, out);
        CHECK_MSG(strstr(out, "resuming run 1 from"), "%s", out);
    } else {
        CHECK_MSG(rc == 2 && strstr(out, "nothing left to train"), "exit %d:\n%s", rc, out);
    }
    free(out);
    char *status = qtext(db, "SELECT status || ' ' || (resumed > 0) FROM runs WHERE run_id = 1");
    CHECK_MSG(!strcmp(status, done < 4 ? "completed 1" : "completed 0"), "status %s", status);
    free(status);
    CHECK_EQ_INT((int)q(db, "SELECT count(*) FROM runs"), 1);
    check_same_as(dir, 1, ref_dir, 4, "interrupted + resumed");
    /* `grpo2048 runs` over the folder of output_dirs lists both runs with their status and steps */
    char cmd[1400], buf[8192] = "";
    snprintf(cmd, sizeof cmd, "%s runs %s 2>&1", bin, tmp);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    buf[n] = '\0';
    int prc = p ? pclose(p) : -1;
    CHECK_MSG(prc == 0 && strstr(buf, "STATUS") && strstr(buf, "BEST_REWARD"), "runs:\n%s", buf);
    CHECK_MSG(strstr(buf, "/int ") && strstr(buf, "/ref "), "runs should list both output_dirs:\n%s", buf);
    CHECK_MSG(strstr(buf, " completed   4/4 "), "runs should show the completed 4-step runs:\n%s", buf);
}

/* 1 when dir holds a complete checkpoint */
static int has_checkpoint(const char *dir) {
    for (int s = 1; s <= 4; s++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/checkpoint-%d/trainer_state.json", dir, s);
        if (access(p, R_OK) == 0) return 1;
    }
    return 0;
}

/* SIGTERM takes the same path as SIGINT: exit 128 + 15, status 'interrupted', a checkpoint. */
static void test_sigterm(void) {
    char dir[1200], od[1300], log[1300], db[1300];
    snprintf(dir, sizeof dir, "%s/term", tmp);
    snprintf(od, sizeof od, "output_dir=%s", dir);
    snprintf(log, sizeof log, "%s/term.log", tmp);
    snprintf(db, sizeof db, "%s/metrics.sqlite", dir);
    pid_t pid = spawn(TINY, (const char *[]){"--set", od, "--set", "max_steps=40", NULL}, log);
    double t0 = now();
    while (now() - t0 < 120 && q(db, "SELECT count(*) FROM metrics WHERE name = 'reward'") < 1) usleep(20000);
    kill(pid, SIGTERM);
    int rc = wait_status(pid);
    char *out = slurp(log);
    CHECK_MSG(rc == 143, "SIGTERM: exit %d:\n%s", rc, out);
    free(out);
    char *status = qtext(db, "SELECT status FROM runs WHERE run_id = 1");
    CHECK_MSG(!strcmp(status, "interrupted"), "status %s", status);
    free(status);
    char ck[1400];
    snprintf(ck, sizeof ck, "%s/checkpoint-%d/trainer_state.json", dir, (int)q(db, "SELECT max(step) FROM metrics"));
    CHECK_MSG(access(ck, R_OK) == 0, "no checkpoint at the interrupted step (%s)", ck);
}

static void test_sigkill(void) {
    char dir[1200], od[1300], log[1300], db[1300], *out;
    snprintf(dir, sizeof dir, "%s/kill", tmp);
    snprintf(od, sizeof od, "output_dir=%s", dir);
    snprintf(log, sizeof log, "%s/kill.log", tmp);
    snprintf(db, sizeof db, "%s/metrics.sqlite", dir);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    const char *extra_resume[] = {"--set", od, "--set", "save_steps=1", "--resume", NULL};
    const char *extra_fresh[] = {"--set", od, "--set", "save_steps=1", NULL};
    double run_seconds = ref_seconds;
    int kills = 0;
    for (int attempt = 0; attempt < 12 && kills < 3; attempt++) {
        /* resume when a checkpoint exists, else start afresh (killed before the first one) */
        pid_t pid = spawn(TINY, has_checkpoint(dir) ? extra_resume : extra_fresh, log);
        /* anywhere in what is left of the run: start-up, generation, rewards, update, commit, checkpoint */
        int left = 4;
        for (int s = 1; s <= 4; s++) {
            char p[1400];
            snprintf(p, sizeof p, "%s/checkpoint-%d/trainer_state.json", dir, s);
            if (access(p, R_OK) == 0) left = 4 - s;
        }
        double delay = run_seconds * (0.1 + 0.8 * rand() / (double)RAND_MAX) * (left > 0 ? left : 1) / 4;
        double t0 = now();
        int exited = 0, st;
        while (now() - t0 < delay) {
            if (waitpid(pid, &st, WNOHANG) == pid) { exited = 1; break; }
            usleep(5000);
        }
        char what[128];
        snprintf(what, sizeof what, "attempt %d, killed at %.2f s (seed %u)", attempt + 1, delay, seed);
        if (exited) {
            /* it finished first (this machine is faster now): start over with the time it took */
            check_consistent(dir, 8, what);
            run_seconds = now() - t0;
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            CHECK(system(cmd) == 0);
            continue;
        }
        kill(pid, SIGKILL);
        wait_status(pid);
        kills++;
        check_consistent(dir, 8, what);
        if (access(db, R_OK) == 0 && q(db, "SELECT count(*) FROM runs WHERE status = 'running'") > 0) {
            /* `grpo2048 runs` tells a killed run from a running one */
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "%s runs %s 2>&1", bin, dir);
            FILE *p = popen(cmd, "r");
            char buf[4096] = "";
            size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
            buf[n] = '\0';
            if (p) pclose(p);
            CHECK_MSG(strstr(buf, "killed") != NULL, "runs after a SIGKILL:\n%s", buf);
        }
    }
    CHECK_MSG(kills == 3, "only %d kills landed inside a run (seed %u)", kills, seed);
    /* finish it */
    int rc = run_train(TINY, has_checkpoint(dir) ? extra_resume : extra_fresh, &out);
    CHECK_MSG(rc == 0, "final run after %d kills exited %d (seed %u):\n%s", kills, rc, seed, out);
    free(out);
    check_consistent(dir, 8, "after the final run");
    char *status = qtext(db, "SELECT group_concat(status) FROM runs");
    fprintf(stderr, "note: SIGKILL test: %d kills (seed %u, a run takes %.1f s), runs: %s\n", kills, seed, run_seconds,
            status);
    free(status);
    /* kills before the first checkpoint leave 'running' rows of runs that started afresh; the run that
     * completed (resumed from its own checkpoints) equals the reference */
    CHECK_EQ_INT((int)q(db, "SELECT count(*) FROM runs WHERE status = 'completed'"), 1);
    check_same_as(dir, (int)q(db, "SELECT run_id FROM runs WHERE status = 'completed'"), ref_dir, 4, "killed + resumed");
}

static void test_rich_layout(void) {
    char full[1200], part[1200], od[1300], db[1300], *out;
    snprintf(full, sizeof full, "%s/rich_full", tmp);
    snprintf(part, sizeof part, "%s/rich_part", tmp);
    snprintf(od, sizeof od, "output_dir=%s", full);
    int rc = run_train(RICH, (const char *[]){"--set", od, "--set", "max_steps=5", NULL}, &out);
    CHECK_MSG(rc == 0, "rich run exited %d:\n%s", rc, out);
    free(out);
    snprintf(od, sizeof od, "output_dir=%s", part);
    rc = run_train(RICH, (const char *[]){"--set", od, "--set", "max_steps=2", NULL}, &out);
    CHECK_MSG(rc == 0, "rich run (2 steps) exited %d:\n%s", rc, out);
    free(out);
    char state[1400];
    snprintf(state, sizeof state, "%s/checkpoint-2/generation.bin", part);
    CHECK_MSG(access(state, R_OK) == 0, "checkpoint-2 should hold the generation still in use");
    snprintf(state, sizeof state, "%s/checkpoint-2/ref_model/model.safetensors", part);
    CHECK_MSG(access(state, R_OK) == 0, "checkpoint-2 should hold the synced reference model");
    rc = run_train(RICH, (const char *[]){"--set", od, "--set", "max_steps=5", "--resume", NULL}, &out);
    CHECK_MSG(rc == 0, "rich resume exited %d:\n%s", rc, out);
    CHECK_MSG(strstr(out, "resuming with changed keys: max_steps: 2 -> 5"), "%s", out);
    free(out);
    check_same_as(part, 1, full, 5, "rich layout, resumed at step 2");
    snprintf(db, sizeof db, "%s/metrics.sqlite", full);
    /* generation every steps_per_generation × num_iterations = 4 steps: rewards at steps 1 and 5 only */
    char *steps = qtext(db, "SELECT group_concat(step) FROM (SELECT step FROM metrics WHERE name = 'reward' ORDER BY step)");
    CHECK_MSG(!strcmp(steps, "1,5"), "reward logged at steps %s", steps);
    free(steps);
    steps = qtext(db, "SELECT group_concat(step) FROM (SELECT step FROM metrics WHERE name = 'eval_win_rate' ORDER BY step)");
    CHECK_MSG(!strcmp(steps, "2,4"), "eval logged at steps %s", steps);
    free(steps);
    CHECK_EQ_INT((int)q(db, "SELECT count(*) FROM metrics WHERE name = 'kl'"), 5);
    CHECK_EQ_INT((int)q(db, "SELECT count(*) FROM completions"), 16);
    CHECK(q(db, "SELECT count(*) FROM metrics WHERE name IN ('clip_ratio/low_min', 'clip_ratio/high_max')") == 10);
    /* the reference model moves with the policy (sync every step): the kl stays finite and non-negative */
    CHECK(q(db, "SELECT min(kl) FROM steps") >= 0);
    /* save_total_limit 1: one checkpoint left, the final model beside it */
    int left = 0;
    for (int s = 1; s <= 5; s++) {
        snprintf(state, sizeof state, "%s/checkpoint-%d", full, s);
        left += access(state, F_OK) == 0;
    }
    CHECK_EQ_INT(left, 1);
    snprintf(state, sizeof state, "%s/checkpoint-5/trainer_state.json", full);
    CHECK(access(state, R_OK) == 0);
    snprintf(state, sizeof state, "%s/model.safetensors", full);
    CHECK(access(state, R_OK) == 0);
}

/* Copies folder src to dst (cp -r). */
static void copy_dir(const char *src, const char *dst) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    CHECK(system(cmd) == 0);
}

static void expect_refusal(const char *ck, const char *const *more, const char *want, const char *what) {
    char od[1300], *out;
    snprintf(od, sizeof od, "output_dir=%s/refuse_out", tmp);
    const char *extra[16] = {"--set", od, "--set", "max_steps=6", "--resume", ck};
    int n = 6;
    for (int i = 0; more && more[i]; i++) extra[n++] = more[i];
    extra[n] = NULL;
    int rc = run_train(TINY, extra, &out);
    CHECK_MSG(rc == 2 && strstr(out, want) != NULL, "%s: exit %d, want \"%s\" in:\n%s", what, rc, want, out);
    free(out);
}

static void test_refusals(void) {
    char src[1300], ck[1300], path[1400], *out;
    snprintf(src, sizeof src, "%s/checkpoint-4", ref_dir);
    snprintf(ck, sizeof ck, "%s/bad_ck", tmp);

    /* nothing to resume from */
    char od[1300];
    snprintf(od, sizeof od, "output_dir=%s/empty", tmp);
    int rc = run_train(TINY, (const char *[]){"--set", od, "--resume", NULL}, &out);
    CHECK_MSG(rc == 2 && strstr(out, "no checkpoint to resume from"), "exit %d:\n%s", rc, out);
    free(out);
    /* already at max_steps */
    snprintf(od, sizeof od, "output_dir=%s", ref_dir);
    rc = run_train(TINY, (const char *[]){"--set", od, "--resume", "latest", NULL}, &out);
    CHECK_MSG(rc == 2 && strstr(out, "is at step 4 and max_steps is 4: nothing left to train"), "exit %d:\n%s", rc, out);
    free(out);

    /* not a checkpoint */
    copy_dir(src, ck);
    snprintf(path, sizeof path, "%s/trainer_state.json", ck);
    unlink(path);
    expect_refusal(ck, NULL, "is not a checkpoint: trainer_state.json is missing", "no trainer_state.json");
    /* truncated weights */
    copy_dir(src, ck);
    snprintf(path, sizeof path, "%s/model.safetensors", ck);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size / 2) == 0);
    expect_refusal(ck, NULL, "model.safetensors", "truncated weights");
    /* truncated optimizer state */
    copy_dir(src, ck);
    snprintf(path, sizeof path, "%s/optimizer.bin", ck);
    CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size - 8) == 0);
    expect_refusal(ck, NULL, "truncated optimizer state", "truncated optimizer.bin");
    /* another architecture */
    copy_dir(src, ck);
    snprintf(path, sizeof path, "%s/config.json", ck);
    char *cfg = slurp(path);
    char *at = strstr(cfg, "\"num_hidden_layers\":\t4");
    CHECK(at != NULL);
    if (at) at[strlen("\"num_hidden_layers\":\t")] = '3';
    FILE *f = fopen(path, "w");
    if (f) { fputs(cfg, f); fclose(f); }
    free(cfg);
    expect_refusal(ck, NULL, "is from another architecture: its num_hidden_layers is 3", "another architecture");
    /* an incompatible config */
    copy_dir(src, ck);
    expect_refusal(ck, (const char *[]){"--set", "per_device_train_batch_size=4", NULL},
                   "incompatible config: per_device_train_batch_size=8 in the checkpoint, 4 in this config",
                   "incompatible config");
    expect_refusal(ck, (const char *[]){"--set", "seed=7", NULL}, "seed=42 in the checkpoint, 7 in this config",
                   "another seed");
    snprintf(path, sizeof path, "rm -rf '%s'", ck);
    CHECK(system(path) == 0);
}

/* `grpo2048 sft`: SIGINT lets the step finish, saves a ready model folder, marks the run interrupted,
 * exits 130; the saved model loads (grpo2048 tokenize/generate read it). */
static void test_sft_sigint(void) {
    char dir[1200], od[1300], log[1300], db[1300], p[1400];
    snprintf(dir, sizeof dir, "%s/sft_int", tmp);
    snprintf(od, sizeof od, "output_dir=%s", dir);
    snprintf(log, sizeof log, "%s/sft_int.log", tmp);
    snprintf(db, sizeof db, "%s/metrics.sqlite", dir);
    const char *extra[] = {"--set", "init_from_scratch=false", "--set", od, "--set", "max_steps=100000", "--set",
                           "num_train_epochs=50", "--set", "logging_steps=1", "--set", "save_steps=0", NULL};
    pid_t pid = spawn_cmd("sft", "configs/sft_default.yaml", NULL, extra, log);
    double t0 = now();
    while (now() - t0 < 120 && q(db, "SELECT count(*) FROM metrics WHERE name = 'loss'") < 1) usleep(20000);
    kill(pid, SIGINT);
    int rc = wait_status(pid);
    char *out = slurp(log);
    CHECK_MSG(rc == 130, "sft interrupted: exit %d:\n%s", rc, out);
    CHECK_MSG(strstr(out, "stopping after this step") && strstr(out, "interrupted after step"), "%s", out);
    free(out);
    char *status = qtext(db, "SELECT status FROM runs WHERE run_id = 1");
    CHECK_MSG(!strcmp(status, "interrupted"), "sft status %s", status);
    free(status);
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        CHECK_MSG(access(p, R_OK) == 0, "interrupted sft saved no %s", files[i]);
    }
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt hi --max-new-tokens 4 --temperature 0 >/dev/null 2>&1", bin, dir);
    CHECK_MSG(system(cmd) == 0, "the model saved by an interrupted sft does not load: %s", cmd);
}

int main(void) {
    bin = getenv("GRPO2048_BIN");
    if (!bin) SKIP("GRPO2048_BIN is not set (run through ctest)");
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_reference();
    test_sigint_and_resume();
    test_sigterm();
    test_sft_sigint();
    test_sigkill();
    test_rich_layout();
    test_refusals();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (testing_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    else if (testing_failures) fprintf(stderr, "kept %s for inspection\n", tmp);
    return TEST_DONE();
}
