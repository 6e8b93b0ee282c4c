/*
 * tests/trainer/dist_testutil.h: what the data-parallel tests (test_dist_*.c) share: running grpo2048
 * under mpirun (GRPO2048_MPIEXEC, found by CMake's FindMPI) or alone, and reading a run's per-step
 * metrics and final weights.
 *
 * mpirun is given --oversubscribe (2 ranks on a 2-core CI machine are fine, and some CI machines report
 * fewer "slots" than cores) and, as root (CI), --allow-run-as-root. The tests exit 77 (skipped) when
 * GRPO2048_MPIEXEC is empty or not executable.
 */
#ifndef GRPO2048_DIST_TESTUTIL_H
#define GRPO2048_DIST_TESTUTIL_H

#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/llama.h"
#include "tests/testing.h"

static const char *dt_bin, *dt_mpiexec;

/* Reads GRPO2048_BIN and GRPO2048_MPIEXEC; skips the test without an mpiexec. */
static void dt_init(void) {
    dt_bin = getenv("GRPO2048_BIN");
    dt_mpiexec = getenv("GRPO2048_MPIEXEC");
    if (!dt_bin) SKIP("GRPO2048_BIN is not set (run through ctest)");
    if (!dt_mpiexec || !*dt_mpiexec || access(dt_mpiexec, X_OK) != 0)
        SKIP("no mpiexec (GRPO2048_MPIEXEC='%s'): install openmpi-bin (tools/setup.sh)", dt_mpiexec ? dt_mpiexec : "");
    /* sanitizer builds: OpenMPI's own allocations outlive MPI_Finalize (tests/trainer/lsan_mpi.supp); the MCA
     * components stay loaded so that their frames keep their names */
    static char lsan[8192];
    const char *src = getenv("GRPO2048_SOURCE_DIR"), *old = getenv("LSAN_OPTIONS");
    snprintf(lsan, sizeof lsan, "%s%ssuppressions=%s/tests/trainer/lsan_mpi.supp:print_suppressions=0", old ? old : "",
             old && *old ? ":" : "", src ? src : ".");
    setenv("LSAN_OPTIONS", lsan, 1);
    setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    setenv("PMIX_MCA_mca_base_component_disable_dlclose", "1", 1);
    /* containers without ptrace rights (CI) cannot use the shared-memory transport's single-copy (CMA) path */
    if (!getenv("OMPI_MCA_btl_vader_single_copy_mechanism")) setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
}

/* End of a test: removes its folder dir when every check passed, else keeps it and says where. */
static inline void dt_cleanup(const char *dir) {
    if (!testing_failures) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    } else {
        fprintf(stderr, "runs kept in %s\n", dir);
    }
}

/* Starts `[mpirun -np ranks] grpo2048 args...` (ranks 0 = without mpirun) with stdout and stderr to log;
 * returns the pid (of mpirun, or of grpo2048). */
static pid_t dt_spawn(int ranks, const char *const *args, const char *log) {
    const char *argv[160];
    int n = 0;
    char np[16];
    if (ranks > 0) {
        snprintf(np, sizeof np, "%d", ranks);
        argv[n++] = dt_mpiexec;
        if (geteuid() == 0) argv[n++] = "--allow-run-as-root";
        argv[n++] = "--oversubscribe";
        argv[n++] = "-np";
        argv[n++] = np;
    }
    argv[n++] = dt_bin;
    for (int i = 0; args[i] && n < 158; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        setpgid(0, 0);   /* its own process group: a test failure can end the whole job */
        if (ranks > 0) {
            /* sanitizer builds: full stacks for the leak report (OpenMPI's libraries have no frame pointers, so
             * the fast unwinder stops in them and lsan_mpi.supp could not match their frames) */
            static char asan[8192];
            const char *old = getenv("ASAN_OPTIONS");
            snprintf(asan, sizeof asan, "%s%sfast_unwind_on_malloc=0", old ? old : "", old && *old ? ":" : "");
            setenv("ASAN_OPTIONS", asan, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs to the end; returns the exit status (128 + signal when killed), printing the log's tail on failure. */
static int dt_run(int ranks, const char *const *args, const char *log) {
    pid_t pid = dt_spawn(ranks, args, log);
    int st = 0;
    waitpid(pid, &st, 0);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rc != 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "tail -n 25 %s >&2", log);
        if (ranks > 0) fprintf(stderr, "--- %s (exit %d, mpirun -np %d):\n", log, rc, ranks);
        else fprintf(stderr, "--- %s (exit %d, without mpirun):\n", log, rc);
        if (system(cmd) != 0) fprintf(stderr, "(cannot show %s)\n", log);
    }
    return rc;
}

/* The log's text (malloc'd, NUL-terminated; "" when unreadable). */
__attribute__((unused)) static char *dt_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    if (f && buf) {
        size_t k = fread(buf, 1, (1 << 20) - 1, f);
        buf[k] = 0;
    }
    if (f) fclose(f);
    return buf;
}

/* The value of metric `name` at steps 1..n of the last run in dir/metrics.sqlite into v (NAN where absent).
 * Returns how many steps had it. */
static inline int dt_metric(const char *dir, const char *name, double *v, int n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    for (int i = 0; i < n; i++) v[i] = NAN;
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) { sqlite3_close(db); return 0; }
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT step, value FROM metrics WHERE name = ? AND run_id = (SELECT max(run_id) FROM runs)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int s = sqlite3_column_int(st, 0);
            if (s >= 1 && s <= n) { v[s - 1] = sqlite3_column_double(st, 1); found++; }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return found;
}

/* One integer from a query on dir/metrics.sqlite (-1 on error). */
__attribute__((unused)) static long long dt_query_int(const char *dir, const char *sql) {
    char path[4400];
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return v;
}

/* Largest relative difference between two values, |a − b| / max(|a|, |b|, floor). */
static inline double dt_rel(double a, double b, double floor) {
    double m = fmax(fmax(fabs(a), fabs(b)), floor);
    return fabs(a - b) / m;
}

/* The two model folders' weights a and b, and their change from the starting weights in base (NULL: not
 * computed): per tensor t, the norm-wise relative error ||a_t − b_t||₂ / ||a_t||₂; out[0] = its largest value
 * over the tensors, out[1] = the largest elementwise |a − b| / max(|a|, |b|, 1e-3·max|a_t|), out[2] = the
 * largest ||a_t − b_t||₂ / ||a_t − base_t||₂ (the error relative to the update itself). All INFINITY when
 * a model cannot be loaded or the shapes differ.
 * Why norm-wise: AdamW divides each gradient element by its own running magnitude, so an element whose
 * gradient is ~0 (cancellation) turns rounding noise of another summation order into a full-size update of
 * that element (lr × ±1 at the first step); the tensor's norm is the meaningful scale. */
static inline void dt_weights_rel(const char *dir_a, const char *dir_b, const char *base, double out[3]) {
    llama_model m[3];
    char err[1024];
    memset(m, 0, sizeof m);
    out[0] = out[1] = out[2] = INFINITY;
    const char *dirs[3] = {dir_a, dir_b, base};
    int loaded = 0;
    for (; loaded < 3 && dirs[loaded]; loaded++)
        if (llama_load(&m[loaded], dirs[loaded], err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); break; }
    if (loaded == (base ? 3 : 2) && m[0].num_params == m[1].num_params && m[0].num_tensors == m[1].num_tensors &&
        (!base || m[2].num_params == m[0].num_params)) {
        out[0] = out[1] = out[2] = 0;
        for (int t = 0; t < m[0].num_tensors; t++) {
            const llama_tensor *ta = &m[0].tensors[t], *tb = &m[1].tensors[t], *tc = base ? &m[2].tensors[t] : NULL;
            double mx = 0, na = 0, nd = 0, nu = 0;
            for (size_t i = 0; i < ta->numel; i++) mx = fmax(mx, fabs(ta->data[i]));
            for (size_t i = 0; i < ta->numel; i++) {
                const double d = (double)ta->data[i] - tb->data[i];
                na += (double)ta->data[i] * ta->data[i];
                nd += d * d;
                if (tc) nu += ((double)ta->data[i] - tc->data[i]) * ((double)ta->data[i] - tc->data[i]);
                out[1] = fmax(out[1], dt_rel(ta->data[i], tb->data[i], 1e-3 * mx));
            }
            if (na > 0) out[0] = fmax(out[0], sqrt(nd / na));
            if (tc && nu > 0) out[2] = fmax(out[2], sqrt(nd / nu));
        }
        if (!base) out[2] = NAN;
    }
    for (int i = 0; i < loaded; i++) llama_free(&m[i]);
}

#endif
