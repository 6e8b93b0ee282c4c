/*
 * trainer/runs.c: `grpo2048 runs [DIR]` — the runs recorded in metrics files, one line each.
 *
 * DIR (default "runs") is a metrics file itself, an output_dir holding metrics.sqlite, or a folder of
 * output_dirs (each subfolder with a metrics.sqlite, in name order). For every run row of every file it prints the
 * output_dir, run id, kind, status, steps (last step / max_steps of its config), the best `reward`
 * of any step (GRPO) and the last step's main metrics: reward, loss and kl for GRPO runs (eval_reward
 * when evaluated), loss and eval_loss for SFT runs, and when it started. A run whose status is
 * 'running' but whose writer (the pid and host recorded in the row) no longer exists on this host
 * was killed (SIGKILL, a crash, a power loss): it is shown as 'killed', and --resume continues it.
 * Files are opened read-only, so this is safe while training writes (WAL mode).
 */
#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

static const char *const usage_text =
    "usage: grpo2048 runs [DIR|FILE.sqlite]\n\n"
    "Lists the runs in FILE.sqlite, in DIR/metrics.sqlite, or in every DIR/*/metrics.sqlite (DIR defaults\n"
    "to runs):\n"
    "status (running, completed, failed, interrupted; killed when a 'running' run's process is gone),\n"
    "steps done / max_steps, the best reward, and the last step's metrics.\n";

/* The first value of a one-row query with up to two integer parameters (a, b); *ok = 0 when there is
 * no row or the value is NULL. */
static double query_value(sqlite3 *db, const char *sql, int a, int b, int *ok) {
    sqlite3_stmt *st;
    *ok = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) sqlite3_bind_int(st, 1, a);
    if (np >= 2) sqlite3_bind_int(st, 2, b);
    double v = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = sqlite3_column_double(st, 0);
        *ok = 1;
    }
    sqlite3_finalize(st);
    return v;
}

/* max_steps from a run's stored config text ("max_steps: N" at the start of a line), or -1. */
static int config_max_steps(const char *config) {
    for (const char *p = config; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, "max_steps:", 10)) return atoi(p + 10);
    }
    return -1;
}

/* Appends " label=value" of metric `name` at (run_id, step) to buf when it is recorded. */
static void append_metric(sqlite3 *db, int run_id, int step, const char *name, const char *label, char *buf,
                          size_t n) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM metrics WHERE run_id = ? AND step = ? AND name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_int(st, 1, run_id);
    sqlite3_bind_int(st, 2, step);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s=%.4g", used ? " " : "", label, sqlite3_column_double(st, 0));
    }
    sqlite3_finalize(st);
}

/* Prints the runs of one metrics file; returns how many. */
static int list_file(const char *out_dir, const char *path, int *header_printed) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "grpo2048 runs: %s: cannot open: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 5000);
    int ok;
    int version = (int)query_value(db, "PRAGMA user_version", 0, 0, &ok);
    if (!ok || version < 1) {
        fprintf(stderr, "grpo2048 runs: %s: not a grpo2048 metrics file\n", path);
        sqlite3_close(db);
        return 0;
    }
    const char *sql = version >= 2
                          ? "SELECT run_id, kind, status, started, config, pid, host FROM runs ORDER BY run_id"
                          : "SELECT run_id, kind, status, started, config, NULL, NULL FROM runs ORDER BY run_id";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "grpo2048 runs: %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 0;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host) != 0) host[0] = '\0';
    host[sizeof host - 1] = '\0';
    int count = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const int run_id = sqlite3_column_int(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *status = (const char *)sqlite3_column_text(st, 2);
        const char *started = (const char *)sqlite3_column_text(st, 3);
        const char *config = (const char *)sqlite3_column_text(st, 4);
        const int has_pid = sqlite3_column_type(st, 5) != SQLITE_NULL;
        const int pid = sqlite3_column_int(st, 5);
        const char *run_host = (const char *)sqlite3_column_text(st, 6);
        char shown[32];
        snprintf(shown, sizeof shown, "%s", status ? status : "?");
        if (status && !strcmp(status, "running") && has_pid && run_host && !strcmp(run_host, host) && pid > 0 &&
            kill(pid, 0) != 0 && errno == ESRCH)
            snprintf(shown, sizeof shown, "killed");
        int last_ok;
        const int last = (int)query_value(db, "SELECT max(step) FROM metrics WHERE run_id = ?", run_id, 0, &last_ok);
        const int max_steps = config_max_steps(config);
        const int eval = kind && !strcmp(kind, "eval");   /* grpo2048 eval: problems, not steps; its summary at step 0 */
        char steps[48];
        if (eval) {
            int n_ok;
            const double n = query_value(db, "SELECT value FROM metrics WHERE run_id = ? AND name = 'eval_problems'",
                                         run_id, 0, &n_ok);
            snprintf(steps, sizeof steps, n_ok ? "%.0f problems" : "-", n);
        } else if (max_steps > 0) snprintf(steps, sizeof steps, "%d/%d", last_ok ? last : 0, max_steps);
        else snprintf(steps, sizeof steps, "%d", last_ok ? last : 0);
        int best_ok;
        double best = query_value(db, eval ? "SELECT max(value) FROM metrics WHERE run_id = ? AND name = 'eval_reward'"
                                           : "SELECT max(value) FROM metrics WHERE run_id = ? AND name = 'reward'",
                                  run_id, 0, &best_ok);
        char best_s[32];
        if (best_ok) snprintf(best_s, sizeof best_s, "%.4g", best);
        else snprintf(best_s, sizeof best_s, "-");
        char lastm[256] = "";
        if (last_ok) {
            const int grpo = kind && !strcmp(kind, "grpo");
            static const char *const grpo_names[][2] = {{"reward", "reward"}, {"loss", "loss"}, {"kl", "kl"},
                                                         {"eval_reward", "eval_reward"}};
            static const char *const sft_names[][2] = {{"loss", "loss"}, {"eval_loss", "eval_loss"}};
            static const char *const eval_names[][2] = {{"eval_reward", "eval_reward"}, {"eval_win_rate", "eval_win_rate"},
                                                         {"eval_pass@1", "eval_pass@1"}};
            const char *const (*names)[2] = eval ? eval_names : grpo ? grpo_names : sft_names;
            const int nn = eval ? 3 : grpo ? 4 : 2;
            for (int i = 0; i < nn; i++)
                append_metric(db, run_id, eval ? 0 : last, names[i][0], names[i][1], lastm, sizeof lastm);
        }
        if (!*header_printed) {
            printf("%-24s %4s %-4s %-11s %-11s %-11s %-20s %s\n", "OUTPUT_DIR", "RUN", "KIND", "STATUS", "STEPS",
                   "BEST_REWARD", "STARTED", "LAST STEP");
            *header_printed = 1;
        }
        printf("%-24s %4d %-4s %-11s %-11s %-11s %-20s %s\n", out_dir, run_id, kind ? kind : "?", shown, steps, best_s,
               started ? started : "?", lastm[0] ? lastm : "-");
        count++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return count;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cmd_runs(int argc, char **argv) {
    const char *dir = "runs";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); return 0; }
        if (argv[i][0] == '-' || i > 0) {
            fprintf(stderr, "grpo2048 runs: unexpected argument '%s'\n%s", argv[i], usage_text);
            return 2;
        }
        dir = argv[i];
    }
    char path[8192];
    struct stat sb;
    int header = 0, total = 0;
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode)) {
        /* a metrics file itself (FILE.sqlite): its folder is the run's output_dir */
        char out_dir[4096];
        snprintf(out_dir, sizeof out_dir, "%s", dir);
        char *slash = strrchr(out_dir, '/');
        if (slash) *slash = '\0';
        else snprintf(out_dir, sizeof out_dir, ".");
        snprintf(path, sizeof path, "%s", dir);
        total = list_file(out_dir[0] ? out_dir : "/", path, &header);
    } else if (stat(path, &sb) == 0) {
        total = list_file(dir, path, &header);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "grpo2048 runs: %s: %s\n", dir, strerror(errno));
            return 1;
        }
        int n = 0, cap = 16;
        char **names = malloc(sizeof(char *) * cap);
        struct dirent *e;
        while (names && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s/metrics.sqlite", dir, e->d_name);
            if (stat(path, &sb) != 0) continue;
            if (n == cap) {
                char **p = realloc(names, sizeof(char *) * cap * 2);
                if (!p) break;
                names = p;
                cap *= 2;
            }
            names[n] = strdup(e->d_name);
            if (names[n]) n++;
        }
        closedir(d);
        if (!names) { fprintf(stderr, "grpo2048 runs: out of memory\n"); return 1; }
        qsort(names, (size_t)n, sizeof(char *), by_name);
        for (int i = 0; i < n; i++) {
            char out_dir[4096];
            snprintf(out_dir, sizeof out_dir, "%s/%s", dir, names[i]);
            snprintf(path, sizeof path, "%s/metrics.sqlite", out_dir);
            total += list_file(out_dir, path, &header);
            free(names[i]);
        }
        free(names);
    }
    if (total == 0) printf("no runs in %s (no metrics.sqlite there or in its subfolders)\n", dir);
    return 0;
}
