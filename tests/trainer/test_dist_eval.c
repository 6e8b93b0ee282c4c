/*
 * tests/trainer/test_dist_eval.c: `mpirun -np 2 grpo2048 eval` (batches of per_device_eval_batch_size
 * problems split over the ranks, rank 0 writing) equals one process with the same batch size: every sample
 * row (text, reward, outcome, max tile, tokens) and every summary metric but the times, for standard
 * sampling with a batch size that does not divide the problems (batches of 3 of 8 problems: rank 0 samples
 * two of them, rank 1 one) and for power sampling. Skips (77) without an mpiexec.
 */
#include <sys/stat.h>

#include "tests/trainer/dist_testutil.h"

static char tmp[] = "/tmp/grpo2048-dist-eval-XXXXXX";

static double query(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    double v = -12345.0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sql: %s: %s\n", sql, sqlite3_errmsg(db));
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void compare(const char *name, const char *sampler, int samples, int batch) {
    char one[4200], two[4200], log1[4300], log2[4300], set_out1[4300], set_out2[4300], set_s[64], set_k[64], set_b[64];
    snprintf(one, sizeof one, "%s/%s-one", tmp, name);
    snprintf(two, sizeof two, "%s/%s-two", tmp, name);
    snprintf(log1, sizeof log1, "%s.log", one);
    snprintf(log2, sizeof log2, "%s.log", two);
    snprintf(set_out1, sizeof set_out1, "output_dir=%s", one);
    snprintf(set_out2, sizeof set_out2, "output_dir=%s", two);
    snprintf(set_s, sizeof set_s, "sampler=%s", sampler);
    snprintf(set_k, sizeof set_k, "num_samples=%d", samples);
    snprintf(set_b, sizeof set_b, "per_device_eval_batch_size=%d", batch);
    const char *a1[] = {"eval", "configs/default.yaml", "--set", "eval_problems=8", "--set", set_k, "--set", set_b,
                        "--set", set_s, "--set", "max_new_tokens=64", "--set", "mcmc_block_size=16", "--set",
                        "mcmc_steps=2", "--set", "seed=5", "--set", set_out1, NULL};
    const char *a2[] = {"eval", "configs/default.yaml", "--set", "eval_problems=8", "--set", set_k, "--set", set_b,
                        "--set", set_s, "--set", "max_new_tokens=64", "--set", "mcmc_block_size=16", "--set",
                        "mcmc_steps=2", "--set", "seed=5", "--set", set_out2, NULL};
    CHECK_EQ_INT(dt_run(0, a1, log1), 0);
    CHECK_EQ_INT(dt_run(2, a2, log2), 0);
    sqlite3 *db;
    char path[4300], sql[8800];
    snprintf(path, sizeof path, "%s/metrics.sqlite", one);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    snprintf(sql, sizeof sql, "attach '%s/metrics.sqlite' as b", two);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    const double n = 8.0 * samples;
    CHECK_NEAR(query(db, "select count(*) from main.completions"), n, 0);
    CHECK_NEAR(query(db, "select count(*) from b.completions"), n, 0);
    CHECK_MSG(query(db, "select count(*) from main.completions a join b.completions c using (step, idx) where "
                        "a.text = c.text and a.reward = c.reward and a.outcome = c.outcome and a.max_tile = c.max_tile "
                        "and a.tokens is c.tokens") == n, "%s: sample rows differ between 1 process and 2 ranks", name);
    double differ = query(db, "select count(*) from main.metrics a join b.metrics c using (step, name) where "
                              "a.value is not c.value and a.name not like '%time%' and a.name != 'eval_tokens_per_second'");
    double shared = query(db, "select count(*) from main.metrics a join b.metrics c using (step, name)");
    CHECK_MSG(differ == 0, "%s: %.0f summary metrics differ", name, differ);
    CHECK_MSG(shared >= 10, "%s: only %.0f summary metrics in common", name, shared);
    CHECK_NEAR(query(db, "select count(*) from b.runs where kind = 'eval' and status = 'completed'"), 1, 0);
    sqlite3_close(db);
}

int main(void) {
    dt_init();
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    compare("standard", "standard", 2, 3);
    compare("power", "power", 1, 2);
    dt_cleanup(tmp);
    return TEST_DONE();
}
