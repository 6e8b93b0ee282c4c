/*
 * tests/trainer/test_train_run.c: the whole job through the binary, as a user runs it.
 *
 * - `grpo2048 train configs/default.yaml` for 2 short steps writes metrics.sqlite: a completed run row,
 *   both steps' TRL-named metrics (through the `steps` view), one completions row per completion, a
 *   checkpoint folder and the final model.
 * - The same step with rewards.parallel=false gives the same completions and the same rewards.
 * - `grpo2048 sft` from scratch for 2 steps on a tiny JSONL writes a loadable model.
 * - TRL's importance-sampling correction (vllm_importance_sampling_correction): with bf16: true on the CPU
 *   (auto) the five sampling/... metrics are logged at every step and are finite, the logp difference nonzero
 *   (bf16 training products against fp32 generation), or, where the CPU lacks bf16, absent with a start-up line
 *   that says why; forced on in fp32 with kept old log-probs (steps_per_generation 2) the metrics appear at the
 *   generation steps only, the ratio is 1 within 1e-3, and a run resumed from a checkpoint that holds the
 *   buffered generation (its sampling log-probs) repeats the uninterrupted run's losses exactly.
 * - Config errors from the command line: exit status 2 and a message naming file, line and key; a
 *   reward weight of 1e308 is refused.
 * - Runs that cannot be corrupted (issue 15): a second train/sft on a locked output_dir refuses, naming
 *   the pid; --resume /no/such/path says it does not exist; --resume RUN_DIR continues from its newest
 *   checkpoint; `grpo2048 runs FILE.sqlite` lists the file; every tokenizer file (chat_template.jinja
 *   included) reaches the checkpoints and the final model; NaN weights are refused at load, naming the
 *   tensor.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <sys/file.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/llama.h"
#include "tests/testing.h"

static const char *bin;

/* Runs a shell command, capturing stdout+stderr into out (truncated); returns the exit status. */
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

static double query_double(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    double v = -12345.0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sql error: %s: %s\n", sql, sqlite3_errmsg(db));
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *query_text(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static const char *SMALL = "--set max_steps=2 --set num_generations=4 --set per_device_train_batch_size=4 "
                           "--set gradient_accumulation_steps=2 --set max_completion_length=48 --set rewards.workers=2 "
                           "--set rewards.timeout=0.5 --set save_steps=1";

static void test_train(const char *tmp) {
    char cmd[4096], out[65536];
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set output_dir=%s/run", bin, SMALL, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "train exited %d:\n%s", rc, out);
    char path[1024];
    snprintf(path, sizeof path, "%s/run/metrics.sqlite", tmp);
    sqlite3 *db;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    char *status = query_text(db, "select status from runs order by run_id desc limit 1");
    CHECK_MSG(status && !strcmp(status, "completed"), "status %s", status ? status : "(none)");
    free(status);
    CHECK_NEAR(query_double(db, "select count(*) from steps"), 2, 0);
    CHECK_NEAR(query_double(db, "select count(distinct step) from metrics"), 2, 0);
    CHECK_NEAR(query_double(db, "select count(*) from completions"), 16, 0);
    CHECK_NEAR(query_double(db, "select count(*) from completions where step = 2 and prompt_idx = 1"), 4, 0);
    static const char *const names[] = {"reward", "reward_std", "rewards/function_works/mean", "rewards/no_cheating/std",
                                        "rewards/strategy_succeeds/mean", "rewards/game_progress/mean",
                                        "completions/mean_length", "completions/clipped_ratio", "loss", "grad_norm",
                                        "learning_rate", "entropy", "step_time", "generation_time", "reward_time",
                                        "train_time", "tokens_per_second", "timeouts", "clip_ratio/low_mean",
                                        "clip_ratio/low_min", "clip_ratio/high_mean", "clip_ratio/high_max",
                                        "clip_ratio/region_mean", "num_tokens", "frac_reward_zero_std",
                                        "completions/max_terminated_length", "stuck", "wins"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "select count(*) from metrics where name = '%s'", names[i]);
        CHECK_MSG(query_double(db, sql) == 2, "metric %s: not logged at both steps", names[i]);
    }
    /* the step's reward is the mean of its completions' rewards */
    double r = query_double(db, "select reward from steps where step = 2");
    double rc2 = query_double(db, "select avg(reward) from completions where step = 2");
    CHECK_NEAR(r, rc2, 1e-9);
    /* each reward is the sum of its functions (configs/default.yaml weights them all 1.0) */
    CHECK(query_double(db, "select count(*) from completions where abs(reward - (function_works + no_cheating + "
                           "strategy_succeeds + game_progress)) > 1e-6") == 0);
    CHECK(query_double(db, "select avg(\"completions/mean_length\") from steps") > 0);
    CHECK(query_double(db, "select count(*) from completions where outcome is null or text is null") == 0);
    /* GPU telemetry: `steps` has the gpu/ columns (a missing one fails the query); a value that was not
     * measured (all of them on the CPU) is left out of `metrics`, never written as a NULL row */
    CHECK(query_double(db, "select count(\"gpu/utilization\") + count(\"gpu/train/sm_clock_mhz_min\") + "
                           "count(\"gpu/model_peak_memory_gb\") from steps") >= 0);
    CHECK(query_double(db, "select count(*) from metrics where name like 'gpu/%' and value is null") == 0);
    sqlite3_close(db);
    static const char *const files[] = {"run/checkpoint-1/model.safetensors", "run/checkpoint-1/optimizer.bin",
                                        "run/checkpoint-2/config.json", "run/checkpoint-2/tokenizer.json",
                                        "run/model.safetensors", "run/config.json", "run/tokenizer.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, files[i]);
        CHECK_MSG(access(path, R_OK) == 0, "missing %s", path);
    }
    /* the trained model loads and generates */
    snprintf(cmd, sizeof cmd, "%s generate --model %s/run --prompt hello --max-new-tokens 8 --seed 1", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "\"completion\""), "generate exited %d:\n%s", rc, out);
}

/* TRL 1.16's options through the binary: each loss family's metrics are logged, with temperature != 1
 * (the training log-probs at logits / temperature), beta with the bias-corrected KL, the entropy bonus,
 * masked truncations, steps_per_generation != gradient_accumulation_steps and eval_ names. */
static void test_trl_options_run(const char *tmp) {
    static const struct { const char *loss, *extra, *metric, *absent; } runs[] = {
        {"cispo", "--set epsilon_high=5.0 --set entropy_coef=0.01", "cispo_clip_ratio", "clip_ratio/low_mean"},
        {"vespo", "--set scale_rewards=false", "vespo/phi_seq_mean", "cispo_clip_ratio"},
        {"luspo", "--set importance_sampling_level=sequence --set delta=1.5", "clip_ratio/high_max", "policy_loss"},
        {"sapo", "--set top_entropy_quantile=0.5", "entropy", "clip_ratio/low_min"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char cmd[4096], out[65536], path[1024];
        snprintf(cmd, sizeof cmd, "%s train configs/default.yaml --set max_steps=2 --set num_generations=4 "
                 "--set per_device_train_batch_size=4 --set gradient_accumulation_steps=1 --set steps_per_generation=2 "
                 "--set max_completion_length=24 --set rewards.workers=2 --set rewards.timeout=0.5 --set temperature=0.8 "
                 "--set beta=0.04 --set mask_truncated_completions=true --set eval_steps=2 "
                 "--set eval_games=1 --set loss_type=%s %s --set output_dir=%s/trl-%s", bin, runs[i].loss, runs[i].extra,
                 tmp, runs[i].loss);
        int rc = run(cmd, out, sizeof out);
        CHECK_MSG(rc == 0, "train (%s) exited %d:\n%s", runs[i].loss, rc, out);
        snprintf(path, sizeof path, "%s/trl-%s/metrics.sqlite", tmp, runs[i].loss);
        sqlite3 *db;
        CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        char sql[256];
        snprintf(sql, sizeof sql, "select count(*) from metrics where name = '%s'", runs[i].metric);
        CHECK_MSG(query_double(db, sql) == 2, "%s: %s not logged at both steps", runs[i].loss, runs[i].metric);
        snprintf(sql, sizeof sql, "select count(*) from metrics where name = '%s'", runs[i].absent);
        CHECK_MSG(query_double(db, sql) == 0, "%s: %s logged", runs[i].loss, runs[i].absent);
        CHECK_MSG(query_double(db, "select count(*) from metrics where name = 'kl'") == 2, "%s: no kl", runs[i].loss);
        CHECK(query_double(db, "select count(*) from metrics where name = 'eval_reward' and step = 2") == 1);
        CHECK(query_double(db, "select count(*) from steps where \"eval/reward\" is not null") == 1);
        CHECK(query_double(db, "select count(*) from metrics where name like 'eval/%'") == 0);
        CHECK(query_double(db, "select count(*) from metrics where name = 'loss' and value is not null") == 2);
        sqlite3_close(db);
    }
}

static void test_parallel_equals_sequential(const char *tmp) {
    char cmd[4096], out[262144];
    const char *one = "--set max_steps=1 --set num_generations=4 --set per_device_train_batch_size=8 "
                      "--set max_completion_length=64 --set rewards.timeout=0.5 --set seed=7";
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set output_dir=%s/par --set rewards.parallel=true", bin, one, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "parallel run exited %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set output_dir=%s/seq --set rewards.parallel=false", bin, one, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "sequential run exited %d:\n%s", rc, out);
    CHECK_MSG(strstr(out, "[rewards] completion 8/8") && strstr(out, "rewards: function_works"),
              "sequential mode should print each completion's checks and outcome:\n%.2000s", out);
    char sql[2048];
    snprintf(sql, sizeof sql, "attach '%s/seq/metrics.sqlite' as s", tmp);
    sqlite3 *db;
    char path[1024];
    snprintf(path, sizeof path, "%s/par/metrics.sqlite", tmp);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK_NEAR(query_double(db, "select count(*) from main.completions a join s.completions b using (step, idx) "
                                "where a.text = b.text and a.reward = b.reward and a.outcome = b.outcome"), 8, 0);
    sqlite3_close(db);
}

/* rewards.overlap (scoring each completion while the other rows decode) changes no result: the same
 * completions, rewards, outcomes, losses and evaluation as generating everything first; reward_wait_time
 * is at most reward_time, and equal to it without overlap. */
static void test_overlap_equals_after(const char *tmp) {
    char cmd[4096], out[65536];
    const char *two = "--set max_steps=2 --set num_generations=4 --set per_device_train_batch_size=8 "
                      "--set max_completion_length=64 --set rewards.timeout=0.5 --set rewards.workers=2 --set seed=11 "
                      "--set eval_steps=2 --set eval_games=2 --set eval_temperature=0.8";
    const char *mode[2] = {"true", "false"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set output_dir=%s/ov_%s --set rewards.overlap=%s",
                 bin, two, tmp, mode[k], mode[k]);
        int rc = run(cmd, out, sizeof out);
        CHECK_MSG(rc == 0, "rewards.overlap=%s run exited %d:\n%s", mode[k], rc, out);
    }
    sqlite3 *db;
    char path[1024], sql[2048];
    snprintf(path, sizeof path, "%s/ov_true/metrics.sqlite", tmp);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    snprintf(sql, sizeof sql, "attach '%s/ov_false/metrics.sqlite' as s", tmp);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK_NEAR(query_double(db, "select count(*) from main.completions"), 16, 0);
    CHECK_NEAR(query_double(db, "select count(*) from main.completions a join s.completions b using (step, idx) "
                                "where a.text = b.text and a.reward = b.reward and a.outcome = b.outcome "
                                "and a.max_tile = b.max_tile"), 16, 0);
    CHECK_NEAR(query_double(db, "select count(*) from main.steps a join s.steps b using (step) "
                                "where a.loss = b.loss and a.reward = b.reward and a.grad_norm = b.grad_norm"), 2, 0);
    CHECK_NEAR(query_double(db, "select count(*) from main.steps a join s.steps b using (step) "
                                "where a.eval_reward is not null and a.eval_reward = b.eval_reward "
                                "and a.eval_max_tile = b.eval_max_tile"), 1, 0);
    CHECK_NEAR(query_double(db, "select count(*) from main.steps where reward_wait_time >= 0 "
                                "and reward_wait_time <= reward_time + 0.05"), 2, 0);
    CHECK_NEAR(query_double(db, "select count(*) from s.steps where reward_wait_time = reward_time"), 2, 0);
    sqlite3_close(db);
}

static void test_sft(const char *tmp) {
    char path[1024], cmd[4096], out[65536];
    snprintf(path, sizeof path, "%s/tiny.jsonl", tmp);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"prompt\": \"Write a strategy.\", \"completion\": \"```python\\ndef strategy(board):\\n    return \\\"%c\\\"\\n```\"}\n", "WASD"[i % 4]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s sft configs/sft_default.yaml --set dataset_path=%s --set output_dir=%s/sft "
             "--set max_steps=2 --set per_device_train_batch_size=2 --set sft_eval_fraction=0.2", bin, path, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "sft exited %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/sft/model.safetensors", tmp);
    CHECK(access(path, R_OK) == 0);
    /* a bad dataset line is named */
    snprintf(path, sizeof path, "%s/bad.jsonl", tmp);
    f = fopen(path, "w");
    fprintf(f, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s sft configs/sft_default.yaml --set dataset_path=%s --set output_dir=%s/sft2", bin, path, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc != 0 && strstr(out, "bad.jsonl:2"), "exit %d, output:\n%s", rc, out);
}

/* sft with bf16: true on the CPU: bf16 training products where the CPU has bf16 instructions (the
 * start-up line says which), else "not applied" and fp32; the loss close to the fp32 run's (test_sft's). */
static void test_sft_bf16(const char *tmp) {
    char path[1024], cmd[4096], out[65536], why[160];
    snprintf(path, sizeof path, "%s/tiny.jsonl", tmp);
    snprintf(cmd, sizeof cmd, "%s sft configs/sft_default.yaml --set dataset_path=%s --set output_dir=%s/sft_bf16 "
             "--set max_steps=2 --set per_device_train_batch_size=2 --set sft_eval_fraction=0.2 --set bf16=true",
             bin, path, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "sft bf16 exited %d:\n%s", rc, out);
    int supported = llama_bf16_supported(why, sizeof why);
    if (supported) CHECK_MSG(strstr(out, "bf16 training products (oneDNN") != NULL, "start-up line:\n%s", out);
    else CHECK_MSG(strstr(out, "bf16 not applied: ") && strstr(out, why), "start-up line (expected '%s'):\n%s", why, out);
    sqlite3 *a = NULL, *b = NULL;
    snprintf(path, sizeof path, "%s/sft/metrics.sqlite", tmp);
    CHECK(sqlite3_open(path, &a) == SQLITE_OK);
    snprintf(path, sizeof path, "%s/sft_bf16/metrics.sqlite", tmp);
    CHECK(sqlite3_open(path, &b) == SQLITE_OK);
    for (int step = 1; step <= 2; step++) {
        char q[128];
        snprintf(q, sizeof q, "select loss from steps where step = %d", step);
        double l32 = query_double(a, q), l16 = query_double(b, q);
        CHECK_MSG(fabs(l16 - l32) <= 0.02 * fabs(l32), "step %d: loss bf16 %.6f vs fp32 %.6f", step, l16, l32);
        if (step == 1 && supported) CHECK_MSG(l16 != l32, "bf16 loss equals fp32's exactly: bf16 did not apply");
        if (!supported) CHECK_MSG(l16 == l32, "step %d: bf16 not applied, yet the loss differs from fp32", step);
    }
    sqlite3_close(a);
    sqlite3_close(b);
}

static void test_importance_sampling(const char *tmp) {
    char cmd[4096], out[65536], path[1024], why[160];
    const char *small = "--set num_generations=4 --set per_device_train_batch_size=4 --set max_completion_length=32 "
                        "--set rewards.workers=2 --set rewards.timeout=0.5";
    /* (a) bf16 on the CPU, the correction on auto */
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set max_steps=2 --set bf16=true --set output_dir=%s/is-bf16",
             bin, small, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "train bf16 exited %d:\n%s", rc, out);
    const int supported = llama_bf16_supported(why, sizeof why);
    snprintf(path, sizeof path, "%s/is-bf16/metrics.sqlite", tmp);
    sqlite3 *db;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    static const char *const names[5] = {
        "sampling/sampling_logp_difference/mean", "sampling/sampling_logp_difference/max",
        "sampling/importance_sampling_ratio/min", "sampling/importance_sampling_ratio/mean",
        "sampling/importance_sampling_ratio/max"};
    char sql[512];
    if (supported) {
        CHECK_MSG(strstr(out, "importance-sampling correction of the generator/trainer mismatch: sequence_mask") != NULL,
                  "start-up line:\n%s", out);
        for (int i = 0; i < 5; i++) {
            snprintf(sql, sizeof sql, "select count(*) from metrics where name = '%s' and value is not null "
                     "and value = value and abs(value) < 1e300", names[i]);
            CHECK_MSG(query_double(db, sql) == 2, "%s: not logged, or not finite, at both steps", names[i]);
        }
        double d = query_double(db, "select min(value) from metrics where name = 'sampling/sampling_logp_difference/max'");
        double rmean = query_double(db, "select avg(value) from metrics where name = 'sampling/importance_sampling_ratio/mean'");
        printf("bf16 importance sampling: max logp difference >= %.3g, mean ratio %.4f\n", d, rmean);
        CHECK_MSG(d > 0 && d < 2, "bf16 products vs fp32 generation: max logp difference %g", d);
        CHECK(rmean > 0.5 && rmean < 2.0);
    } else {
        CHECK_MSG(strstr(out, "importance-sampling correction off") != NULL, "start-up line:\n%s", out);
        CHECK(query_double(db, "select count(*) from metrics where name like 'sampling/%'") == 0);
    }
    sqlite3_close(db);
    /* (b) forced on in fp32, kept old log-probs; checkpoints at every step, then resume from step 1 */
    const char *kept = "--set vllm_importance_sampling_correction=true --set vllm_importance_sampling_mode=token_truncate "
                       "--set vllm_importance_sampling_clip_min=0.5 --set vllm_importance_sampling_cap=2.0 "
                       "--set steps_per_generation=2 --set save_steps=1 --set seed=5";
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s %s --set max_steps=3 --set output_dir=%s/is-kept", bin,
             small, kept, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "train (kept old log-probs) exited %d:\n%s", rc, out);
    CHECK_MSG(strstr(out, "token_truncate, clip [0.5, 2]") != NULL, "cap is clip_max's alias; start-up line:\n%s", out);
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s %s --set max_steps=3 --set output_dir=%s/is-resumed "
             "--resume %s/is-kept/checkpoint-1", bin, small, kept, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "resumed train exited %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/is-kept/metrics.sqlite", tmp);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    snprintf(sql, sizeof sql, "attach '%s/is-resumed/metrics.sqlite' as r", tmp);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    for (int i = 0; i < 5; i++) {
        snprintf(sql, sizeof sql, "select group_concat(step) from (select step from main.metrics where name = '%s' "
                 "order by step)", names[i]);
        char *steps = query_text(db, sql);
        CHECK_MSG(steps && !strcmp(steps, "1,3"), "%s logged at steps %s (want the generation steps 1,3)", names[i],
                  steps ? steps : "none");
        free(steps);
    }
    CHECK(query_double(db, "select max(abs(value - 1)) from main.metrics where name like 'sampling/importance_sampling_ratio/%'") < 1e-3);
    CHECK(query_double(db, "select max(value) from main.metrics where name = 'sampling/sampling_logp_difference/max'") < 1e-3);
    CHECK_NEAR(query_double(db, "select count(*) from main.metrics a join r.metrics b using (step, name) "
                                "where a.name = 'loss' and a.step >= 2 and a.value = b.value"), 2, 0);
    sqlite3_close(db);
}

static void test_config_errors(const char *tmp) {
    char path[1024], cmd[4096], out[16384];
    snprintf(path, sizeof path, "%s/bad.yaml", tmp);
    FILE *f = fopen(path, "w");
    fprintf(f, "max_steps: 3\nlearning_rat: 0.1\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s train %s", bin, path);
    int rc = run(cmd, out, sizeof out);
    CHECK_EQ_INT(rc, 2);
    CHECK_MSG(strstr(out, "bad.yaml:2") && strstr(out, "learning_rat") && strstr(out, "learning_rate"), "%s", out);
    f = fopen(path, "w");
    fprintf(f, "rewards:\n  workers: many\n");
    fclose(f);
    rc = run(cmd, out, sizeof out);
    CHECK_EQ_INT(rc, 2);
    CHECK_MSG(strstr(out, "bad.yaml:2") && strstr(out, "rewards.workers"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml --set max_steps=zero", bin);
    rc = run(cmd, out, sizeof out);
    CHECK_EQ_INT(rc, 2);
    CHECK_MSG(strstr(out, "--set") && strstr(out, "max_steps"), "%s", out);
    /* a weight that makes every reward infinite */
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml --set rewards.functions.strategy_succeeds=1e308 "
             "--set output_dir=%s/w", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_EQ_INT(rc, 2);
    CHECK_MSG(strstr(out, "strategy_succeeds") && strstr(out, "[-1000, 1000]"), "%s", out);
}

/* Copies file src to dst (small files). */
static int copy(const char *src, const char *dst) {
    FILE *i = fopen(src, "rb"), *o = i ? fopen(dst, "wb") : NULL;
    if (!i || !o) { if (i) fclose(i); return -1; }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, i)) > 0) fwrite(buf, 1, n, o);
    fclose(i);
    return fclose(o);
}

/* After test_train (tmp/run holds checkpoints 1 and 2 of a completed 2-step run). */
static void test_run_integrity(const char *tmp) {
    char cmd[4096], out[65536], path[1024];
    /* `grpo2048 runs FILE.sqlite` */
    snprintf(cmd, sizeof cmd, "%s runs %s/run/metrics.sqlite", bin, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "completed"), "runs FILE.sqlite exited %d:\n%s", rc, out);

    /* --resume of a path that does not exist */
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set output_dir=%s/run2 --resume /no/such/path", bin,
             SMALL, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_EQ_INT(rc, 2);
    CHECK_MSG(strstr(out, "/no/such/path") && strstr(out, "does not exist"), "%s", out);

    /* --resume RUN_DIR: its newest checkpoint */
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set max_steps=3 --set output_dir=%s/run --resume %s/run",
             bin, SMALL, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    char want[1100];
    snprintf(want, sizeof want, "from %s/run/checkpoint-2 at step 2", tmp);
    CHECK_MSG(rc == 0 && strstr(out, want), "resume of a run folder exited %d:\n%s", rc, out);

    /* One writer per output_dir: while we hold the lock, train and sft refuse and name our pid. */
    snprintf(path, sizeof path, "%s/run/.lock", tmp);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n);
    pid[n - 1] = '\0';
    snprintf(want, sizeof want, "in use by another grpo2048 run (pid %s)", pid);
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set max_steps=4 --set output_dir=%s/run --resume", bin,
             SMALL, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 2 && strstr(out, want), "train on a locked folder exited %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s sft configs/sft_default.yaml --set dataset_path=x.jsonl --set output_dir=%s/run", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 2 && strstr(out, want), "sft on a locked folder exited %d:\n%s", rc, out);
    close(fd);   /* released: the folder is free again */

    /* Every tokenizer file of the source folder reaches the checkpoints and the final model. */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/src && cp model/default/config.json model/default/model.safetensors "
             "model/default/tokenizer.json model/default/tokenizer_config.json %s/src/", tmp, tmp);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/src/chat_template.jinja", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) { fputs("{% for m in messages %}{{ m['content'] }}{% endfor %}", f); fclose(f); }
    snprintf(path, sizeof path, "%s/src/special_tokens_map.json", tmp);
    f = fopen(path, "w");
    if (f) { fputs("{}", f); fclose(f); }
    snprintf(cmd, sizeof cmd, "%s train configs/default.yaml %s --set max_steps=1 --set model_name_or_path=%s/src "
             "--set output_dir=%s/tok", bin, SMALL, tmp, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0, "train from a folder with chat_template.jinja exited %d:\n%s", rc, out);
    static const char *const tok[] = {"tok/chat_template.jinja", "tok/special_tokens_map.json",
                                      "tok/checkpoint-1/chat_template.jinja", "tok/checkpoint-1/special_tokens_map.json"};
    for (size_t i = 0; i < sizeof tok / sizeof *tok; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, tok[i]);
        CHECK_MSG(access(path, R_OK) == 0, "missing %s", path);
    }

    /* NaN weights are refused at load, naming the tensor. */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/nan && cp %s/src/*.json %s/nan/", tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/tok/model.safetensors", tmp);   /* F32, written by grpo2048 */
    snprintf(dst, sizeof dst, "%s/nan/model.safetensors", tmp);
    CHECK(copy(src, dst) == 0);
    FILE *m = fopen(dst, "r+b");
    CHECK(m != NULL);
    if (m) {
        unsigned char len8[8];
        CHECK(fread(len8, 1, 8, m) == 8);
        unsigned long long hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
        char *hdr = calloc(hlen + 1, 1);
        CHECK(fread(hdr, 1, hlen, m) == hlen);
        cJSON *j = cJSON_Parse(hdr);
        cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "model.norm.weight");
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        CHECK(cJSON_IsString(dt) && !strcmp(dt->valuestring, "F32") && cJSON_IsArray(off));
        if (cJSON_IsArray(off)) {
            long pos = (long)(8 + hlen) + (long)cJSON_GetArrayItem(off, 0)->valuedouble + 4 * 3;
            const unsigned char nan[4] = {0x00, 0x00, 0xc0, 0x7f};   /* a quiet NaN, little-endian */
            CHECK(fseek(m, pos, SEEK_SET) == 0 && fwrite(nan, 1, 4, m) == 4);
        }
        cJSON_Delete(j);
        free(hdr);
        fclose(m);
    }
    snprintf(cmd, sizeof cmd, "%s generate --model %s/nan --prompt hi --max-new-tokens 2", bin, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc != 0 && strstr(out, "model.norm.weight") && strstr(out, "non-finite") && strstr(out, "index 3"),
              "generate with a NaN weight exited %d:\n%s", rc, out);
}

int main(void) {
    bin = getenv("GRPO2048_BIN");
    if (!bin) SKIP("GRPO2048_BIN is not set (run through ctest)");
    char tmp[] = "/tmp/grpo2048-train-XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_config_errors(tmp);
    test_train(tmp);
    test_run_integrity(tmp);
    test_parallel_equals_sequential(tmp);
    test_overlap_equals_after(tmp);
    test_trl_options_run(tmp);
    test_importance_sampling(tmp);
    test_sft(tmp);
    test_sft_bf16(tmp);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (testing_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return TEST_DONE();
}
