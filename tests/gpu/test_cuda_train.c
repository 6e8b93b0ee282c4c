/*
 * tests/gpu/test_cuda_train.c: the trainer on the CUDA backend (trainer/backend.h) against the CPU
 * backend, through the binaries as a user runs them.
 *
 * Built twice (CMakeLists.txt, grpo_gpu_tests): test_cuda_train (label gpu) runs GRPO2048_CUDA_BIN =
 * grpo2048 with model/cuda on a GPU and exits 77 without one; test_cuda_train_emu (label cuda-emu)
 * runs GRPO2048_CUDA_BIN = grpo2048_emu, the same trainer linked against the CPU emulator of CUDA
 * (tests/gpu/emu), so CI runs the whole device: cuda path without a GPU. The CPU reference runs use
 * GRPO2048_BIN with device: cpu.
 *
 * The model is tiny so that the emulator takes seconds: a 51k-parameter Llama (hidden 32, 2 layers,
 * the default policy's 1024-token tokenizer) taught by `grpo2048 sft` on the CPU, in about a second,
 * to answer a short prompt with one-line strategies (return "W" / "A" / "S" / "D", and a broken one):
 * sampled at temperature 1 it writes working, stuck and broken programs, so rewards, advantages and
 * losses are not trivially zero.
 *
 * - train, 2 steps of 2 micro-batches (groups of 4, 32 new tokens, parallel rewards, beta > 0 with the
 *   reference model on the backend and synced every step, evaluation, a checkpoint every step), with
 *   device: cuda in fp32 and in tf32 against device: cpu: every step's completions and rewards equal;
 *   loss and entropy within 1e-5 relative in fp32 and 1e-3 in tf32, grad_norm within 10x, KL 100x
 *   (a difference of nearly equal log-probabilities); the final
 *   weights and the checkpoint's AdamW moments (downloaded from the device) close, its step count equal;
 * - vllm_importance_sampling_correction forced on, cuda fp32 against cpu: the same completions and losses, the
 *   sampling/... metrics present with ratios within 1e-3 of 1;
 * - resume across devices: the CPU continues the CUDA run's checkpoint-1 and CUDA the CPU run's; step
 *   2 equals the uninterrupted CPU run's (rewards equal, losses within the limits) and so do the
 *   final weights (the moments made the trip too);
 * - sft, 2 steps of 2 micro-batches with eval_loss and a checkpoint, cuda fp32 / tf32 / bf16 against
 *   cpu: loss and eval_loss per step within 1e-5 / 1e-3 / 1e-2 relative, grad_norm within 10x that;
 * - generate --device cuda: the same tokens as --device cpu for several seeds, log-probs close;
 * - no usable device: device: cuda exits 2 and says so; device: auto falls back to the CPU.
 *
 * On a real GPU in tf32, cuBLAS rounds differently from the emulator; a sampled token can then
 * differ from the CPU's (a draw within ~1e-3 of a boundary): that is reported, and the losses of the
 * steps after it are not compared. Everything else is required on both.
 */
#include <errno.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/gpu/gpu_test_util.h"

static const char *cpu_bin, *cuda_bin;
static char tmp[] = "/tmp/grpo2048-cuda-train-XXXXXX";

/* Runs a shell command, capturing stdout+stderr into out (truncated); returns the exit status. */
static int run(const char *cmd, char *out, size_t outlen) {
    char full[16384];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    while (fread(full, 1, sizeof full, p) > 0) {}   /* drain the rest */
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs cmd (printf-style) and checks its exit status; prints the output's tail on failure. */
static int must_run(const char *what, const char *fmt, ...) {
    char cmd[16384];
    static char out[1 << 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = run(cmd, out, sizeof out);
    size_t n = strlen(out);
    CHECK_MSG(rc == 0, "%s exited %d:\n%s", what, rc, n > 3000 ? out + n - 3000 : out);
    return rc;
}

static double sql_double(const char *db_path, const char *sql) {
    sqlite3 *db;
    double v = NAN;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) { sqlite3_close(db); return v; }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    } else {
        fprintf(stderr, "sql error: %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return v;
}

/* The value metric `name` had at `step` in run dir's newest run (NaN when absent). */
static double metric(const char *dir, int step, const char *name) {
    char path[1200], sql[512];
    snprintf(path, sizeof path, "%s/metrics.sqlite", dir);
    snprintf(sql, sizeof sql, "SELECT value FROM metrics WHERE step = %d AND name = '%s' ORDER BY run_id DESC LIMIT 1",
             step, name);
    return sql_double(path, sql);
}

/* 1 when step `step`'s completions in a and b have the same texts and rewards, index by index. */
static int same_completions(const char *a, const char *b, int step) {
    char path[1200], sql[2048];
    snprintf(path, sizeof path, "%s/metrics.sqlite", a);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) { sqlite3_close(db); return 0; }
    snprintf(sql, sizeof sql, "ATTACH '%s/metrics.sqlite' AS o", b);
    int ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    double n = -1, same = -2;
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM main.completions WHERE step = %d), (SELECT count(*) FROM "
             "o.completions WHERE step = %d), (SELECT count(*) FROM main.completions x JOIN o.completions y USING (step, "
             "idx) WHERE step = %d AND x.text = y.text AND x.reward = y.reward)", step, step, step);
    if (ok && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_double(st, 0) == sqlite3_column_double(st, 1)) {
            n = sqlite3_column_double(st, 0);
            same = sqlite3_column_double(st, 2);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n > 0 && same == n;
}

static double rel(double a, double ref) { return fabs(a - ref) / (fabs(ref) > 1e-30 ? fabs(ref) : 1.0); }

/* Checks |a - ref| / |ref| <= tol for metric name at step, printing the figure. */
static void check_metric(const char *dir, const char *ref_dir, int step, const char *name, double tol, const char *what) {
    double a = metric(dir, step, name), r = metric(ref_dir, step, name);
    double e = rel(a, r);
    printf("  %-30s step %d %-12s %.9g vs cpu %.9g  rel err %.2g (limit %.g)\n", what, step, name, a, r, e, tol);
    CHECK_MSG(!isnan(a) && !isnan(r) && e <= tol, "%s: step %d %s = %.9g, cpu %.9g: rel err %.3g > %.g", what, step,
              name, a, r, e, tol);
}

/* Normalized error of the weights of two model folders (INFINITY when one does not load). */
static double weights_err(const char *a, const char *b) {
    llama_model ma, mb;
    char err[512];
    if (llama_load(&ma, a, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return INFINITY; }
    if (llama_load(&mb, b, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); llama_free(&ma); return INFINITY; }
    double e = ma.num_params == mb.num_params ? norm_err(ma.params, mb.params, ma.num_params) : INFINITY;
    llama_free(&ma);
    llama_free(&mb);
    return e;
}

/* optimizer.bin (trainer/optim.c): magic[8], version u32, n u64, t i64, m[n], v[n]. */
typedef struct { uint64_t n; int64_t t; float *m, *v; } opt_file;
static int read_opt(const char *dir, opt_file *o) {
    char path[1200];
    snprintf(path, sizeof path, "%s/optimizer.bin", dir);
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "rb");
    char magic[8];
    uint32_t version;
    if (!f || fread(magic, 1, 8, f) != 8 || fread(&version, 4, 1, f) != 1 || fread(&o->n, 8, 1, f) != 1 ||
        fread(&o->t, 8, 1, f) != 1) {
        if (f) fclose(f);
        return -1;
    }
    o->m = malloc(sizeof(float) * o->n);
    o->v = malloc(sizeof(float) * o->n);
    int ok = fread(o->m, sizeof(float), o->n, f) == o->n && fread(o->v, sizeof(float), o->n, f) == o->n;
    fclose(f);
    return ok ? 0 : -1;
}

/* The tiny policy: config.json + the default tokenizer, taught by sft on the CPU. */
static void make_tiny_policy(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/init", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/init/config.json", tmp);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"attention_bias\": false, "
               "\"eos_token_id\": 2, \"head_dim\": 8, \"hidden_act\": \"silu\", \"hidden_size\": 32, "
               "\"intermediate_size\": 64, \"max_position_embeddings\": 128, \"num_attention_heads\": 4, "
               "\"num_hidden_layers\": 2, \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000, "
               "\"tie_word_embeddings\": true, \"vocab_size\": 1024}\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/data.jsonl", tmp);
    f = fopen(path, "w");
    for (int i = 0; i < 64; i++) {
        if (i % 8 == 7)
            fprintf(f, "{\"prompt\": \"Write a 2048 strategy.\", \"completion\": \"```python\\ndef strategy(board):\\n"
                       "    return boardx[0]\\n```\"}\n");
        else
            fprintf(f, "{\"prompt\": \"Write a 2048 strategy.\", \"completion\": \"```python\\ndef strategy(board):\\n"
                       "    return \\\"%c\\\"\\n```\"}\n", "WASD"[i % 4]);
    }
    fclose(f);
    must_run("sft of the tiny policy",
             "cp model/default/tokenizer.json model/default/tokenizer_config.json %s/init/ && "
             "%s sft configs/sft_default.yaml --set model_name_or_path=%s/init --set dataset_path=%s/data.jsonl "
             "--set output_dir=%s/tiny --set max_steps=150 --set num_train_epochs=1000 --set learning_rate=1e-2 "
             "--set sft_eval_fraction=0 --set warmup_ratio=0 --set chat_template=chatml --set device=cpu",
             tmp, cpu_bin, tmp, tmp, tmp);
}

static const char *TRAIN =
    "train configs/default.yaml --set model_name_or_path=%s/tiny --set 'prompt=Write a 2048 strategy.' "
    "--set max_steps=2 --set num_generations=4 --set per_device_train_batch_size=4 --set gradient_accumulation_steps=2 "
    "--set max_completion_length=32 --set beta=0.04 --set sync_ref_model=true --set ref_model_sync_steps=1 "
    "--set ref_model_mixup_alpha=0.5 --set learning_rate=1e-3 --set eval_steps=2 --set eval_games=1 --set save_steps=1 "
    "--set rewards.parallel=true --set rewards.workers=2 --set rewards.timeout=0.5";

static void train(const char *bin, const char *device, const char *extra, const char *out_dir) {
    char args[2048];
    snprintf(args, sizeof args, TRAIN, tmp);
    must_run(out_dir, "%s %s --set device=%s --set output_dir=%s/%s %s", bin, args, device, tmp, out_dir, extra);
}

/* Step s of run `dir` against the CPU run `ref`: completions and rewards, then the losses. Returns 1
 * when the completions matched (the losses are comparable). */
static int compare_step(const char *dir, const char *ref, int s, double tol, int tokens_must_match, const char *what) {
    int same = same_completions(dir, ref, s);
    if (!same && !tokens_must_match) {
        printf("  NOTE %s step %d: sampled completions differ from the CPU's (tf32 rounding on the device moved a "
               "draw); losses from here on are not compared\n", what, s);
        return 0;
    }
    CHECK_MSG(same, "%s: step %d: completions or rewards differ from the CPU run's", what, s);
    CHECK_NEAR(metric(dir, s, "reward"), metric(ref, s, "reward"), 0);
    check_metric(dir, ref, s, "loss", tol, what);
    check_metric(dir, ref, s, "entropy", tol, what);
    check_metric(dir, ref, s, "grad_norm", tol * 10, what);
    /* KL is made of differences of nearly equal log-probabilities (exactly 0 at step 1, where the policy
     * is the reference), so it gets 100x the loss's relative limit, or 1e-9 absolute */
    double kl = metric(dir, s, "kl"), kr = metric(ref, s, "kl");
    printf("  %-30s step %d kl           %.9g vs cpu %.9g  rel err %.2g (limit %.g)\n", what, s, kl, kr, rel(kl, kr),
           tol * 100);
    CHECK_MSG(fabs(kl - kr) <= 1e-9 + tol * 100 * fabs(kr), "%s: step %d kl %.9g vs cpu %.9g", what, s, kl, kr);
    return same;
}

static void test_train(void) {
    char a[1200], b[1200];
    printf("== train: cpu, cuda fp32, cuda tf32\n");
    train(cpu_bin, "cpu", "", "cpu");
    train(cuda_bin, "cuda", "", "cuda");
    /* tf32 turns the importance-sampling correction on (auto: training and generation kernels round differently);
     * off here, so that the same algorithm is compared with the CPU's */
    train(cuda_bin, "cuda", "--set tf32=true --set vllm_importance_sampling_correction=false", "tf32");
    snprintf(b, sizeof b, "%s/cpu", tmp);
    const struct { const char *dir; double tol, wtol; int exact; } runs[] = {
        {"cuda", 1e-5, 1e-4, 1}, {"tf32", 1e-3, 2e-2, GPU_TEST_EMU}};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", tmp, runs[i].dir);
        CHECK_MSG(metric(a, 1, "rewards/function_works/mean") != metric(a, 1, "rewards/game_progress/mean") ||
                  metric(a, 1, "reward_std") > 0, "%s: rewards without spread; the test would compare zeros", a);
        int comparable = 1;
        for (int s = 1; s <= 2 && comparable; s++)
            comparable = compare_step(a, b, s, runs[i].tol, runs[i].exact, runs[i].dir);
        if (comparable) CHECK_NEAR(metric(a, 2, "eval_reward"), metric(b, 2, "eval_reward"), 0);
        char ca[1300], cb[1300];
        snprintf(ca, sizeof ca, "%s/checkpoint-2", a);
        snprintf(cb, sizeof cb, "%s/checkpoint-2", b);
        opt_file oa, ob;
        CHECK(read_opt(ca, &oa) == 0 && read_opt(cb, &ob) == 0);
        if (oa.m && ob.m && oa.n == ob.n) {
            CHECK_EQ_INT(oa.t, 2);
            CHECK_EQ_INT(oa.t, ob.t);
            if (comparable) {
                double em = norm_err(oa.m, ob.m, oa.n), ev = norm_err(oa.v, ob.v, oa.n);
                double ew = weights_err(a, b), er = 0;
                snprintf(ca, sizeof ca, "%s/checkpoint-2/ref_model", a);
                snprintf(cb, sizeof cb, "%s/checkpoint-2/ref_model", b);
                er = weights_err(ca, cb);
                printf("  %-30s final weights %.2g, reference model %.2g, AdamW m %.2g, v %.2g (normalized errors, "
                       "limit %.g)\n", runs[i].dir, ew, er, em, ev, runs[i].wtol);
                CHECK(ew <= runs[i].wtol && er <= runs[i].wtol && em <= runs[i].wtol * 10 && ev <= runs[i].wtol * 10);
            }
        }
        free(oa.m); free(oa.v); free(ob.m); free(ob.v);
    }

    /* TRL's importance-sampling correction forced on in fp32 on both devices: the generator's processed
     * log-probabilities against the training forward's; the same completions and losses as the CPU's, the
     * sampling/... metrics logged with ratios within 1e-3 of 1 (fp32 rounding is the whole mismatch) */
    printf("== train with vllm_importance_sampling_correction: cpu, cuda fp32\n");
    train(cpu_bin, "cpu", "--set vllm_importance_sampling_correction=true", "cpu_is");
    train(cuda_bin, "cuda", "--set vllm_importance_sampling_correction=true", "cuda_is");
    snprintf(a, sizeof a, "%s/cuda_is", tmp);
    snprintf(b, sizeof b, "%s/cpu_is", tmp);
    for (int s = 1; s <= 2; s++) {
        if (!compare_step(a, b, s, 1e-5, 1, "cuda_is")) break;
        for (int d = 0; d < 2; d++) {
            const char *dir = d ? a : b;
            double rmin = metric(dir, s, "sampling/importance_sampling_ratio/min");
            double rmax = metric(dir, s, "sampling/importance_sampling_ratio/max");
            double dmax = metric(dir, s, "sampling/sampling_logp_difference/max");
            printf("  %-30s step %d importance-sampling ratio [%.7f, %.7f], max logp difference %.3g\n",
                   d ? "cuda_is" : "cpu_is", s, rmin, rmax, dmax);
            CHECK(fabs(rmin - 1) < 1e-3 && fabs(rmax - 1) < 1e-3 && dmax >= 0 && dmax < 1e-3);
        }
    }

    snprintf(b, sizeof b, "%s/cpu", tmp);

    printf("== resume: cpu from the cuda run's checkpoint-1, cuda from the cpu run's\n");
    const struct { const char *bin, *device, *from, *out; } res[] = {
        {cpu_bin, "cpu", "cuda", "cuda_then_cpu"}, {cuda_bin, "cuda", "cpu", "cpu_then_cuda"}};
    for (int i = 0; i < 2; i++) {
        char args[2048];
        snprintf(args, sizeof args, TRAIN, tmp);
        must_run(res[i].out, "%s %s --set device=%s --set output_dir=%s/%s --resume %s/%s/checkpoint-1", res[i].bin, args,
                 res[i].device, tmp, res[i].out, tmp, res[i].from);
        snprintf(a, sizeof a, "%s/%s", tmp, res[i].out);
        if (compare_step(a, b, 2, 1e-5, 1, res[i].out)) {
            double ew = weights_err(a, b);
            printf("  %-30s final weights: normalized error %.2g (limit 1e-4)\n", res[i].out, ew);
            CHECK(ew <= 1e-4);
        }
    }
}

static void test_sft(void) {
    printf("== sft: cpu, cuda fp32 / tf32 / bf16\n");
    const struct { const char *dir, *extra; double tol; } runs[] = {
        {"sft_cpu", "--set device=cpu", 0}, {"sft_cuda", "--set device=cuda", 1e-5},
        {"sft_tf32", "--set device=cuda --set tf32=true", 1e-3}, {"sft_bf16", "--set device=cuda --set bf16=true", 1e-2}};
    char ref[1200], a[1200];
    snprintf(ref, sizeof ref, "%s/sft_cpu", tmp);
    for (int i = 0; i < 4; i++) {
        must_run(runs[i].dir, "%s sft configs/sft_default.yaml --set model_name_or_path=%s/tiny "
                 "--set init_from_scratch=false --set dataset_path=%s/data.jsonl --set output_dir=%s/%s --set max_steps=2 "
                 "--set per_device_train_batch_size=4 --set gradient_accumulation_steps=2 --set sft_eval_fraction=0.25 "
                 "--set save_steps=1 --set learning_rate=1e-3 --set chat_template=chatml %s",
                 i ? cuda_bin : cpu_bin, tmp, tmp, tmp, runs[i].dir, runs[i].extra);
        if (i == 0) continue;
        snprintf(a, sizeof a, "%s/%s", tmp, runs[i].dir);
        for (int s = 1; s <= 2; s++) {
            check_metric(a, ref, s, "loss", runs[i].tol, runs[i].dir);
            check_metric(a, ref, s, "grad_norm", runs[i].tol * 10, runs[i].dir);
        }
        check_metric(a, ref, 1, "eval_loss", runs[i].tol, runs[i].dir);
        char ck[1300];
        snprintf(ck, sizeof ck, "%s/checkpoint-1/optimizer.bin", a);
        CHECK_MSG(access(ck, R_OK) == 0, "missing %s", ck);
    }
}

static void test_generate(void) {
    printf("== generate --device cuda vs cpu\n");
    static char out_cpu[1 << 14], out_cuda[1 << 14];
    for (int seed = 1; seed <= 4; seed++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s generate --model %s/tiny --prompt 'Write a 2048 strategy.' --max-new-tokens 24 "
                 "--seed %d --logprobs --device cpu 2>/dev/null", cpu_bin, tmp, seed);
        int rc1 = run(cmd, out_cpu, sizeof out_cpu);
        snprintf(cmd, sizeof cmd, "%s generate --model %s/tiny --prompt 'Write a 2048 strategy.' --max-new-tokens 24 "
                 "--seed %d --logprobs --device cuda 2>/dev/null", cuda_bin, tmp, seed);
        int rc2 = run(cmd, out_cuda, sizeof out_cuda);
        CHECK_MSG(rc1 == 0 && rc2 == 0, "generate exited %d / %d:\n%s\n%s", rc1, rc2, out_cpu, out_cuda);
        CHECK_MSG(strstr(out_cuda, "\"device\":\"cuda\""), "not on the cuda backend: %s", out_cuda);
        /* the same ids (everything before "finished") */
        char *ec = strstr(out_cpu, "\"finished\""), *eg = strstr(out_cuda, "\"finished\"");
        CHECK_MSG(ec && eg && ec - out_cpu == eg - out_cuda && !memcmp(out_cpu, out_cuda, (size_t)(ec - out_cpu)),
                  "seed %d: tokens differ:\n%s\n%s", seed, out_cpu, out_cuda);
        /* log-probs: compare the numbers */
        char *lc = strstr(out_cpu, "\"logprobs\":["), *lg = strstr(out_cuda, "\"logprobs\":[");
        double worst = 0;
        if (lc && lg) {
            lc += 12;
            lg += 12;
            while (*lc && *lc != ']' && *lg && *lg != ']') {
                char *nc, *ng;
                double x = strtod(lc, &nc), y = strtod(lg, &ng);
                if (nc == lc || ng == lg) break;
                if (fabs(x - y) > worst) worst = fabs(x - y);
                lc = nc + (*nc == ',');
                lg = ng + (*ng == ',');
            }
        }
        CHECK_MSG(lc && lg && worst < 1e-4, "seed %d: log-probs differ by %.3g", seed, worst);
        if (seed == 1) printf("  seed 1: same tokens, log-probs within %.2g\n", worst);
    }
}

static void test_no_device(void) {
    printf("== no usable device\n");
    static char out[1 << 15];
    char args[2048], cmd[4096];
    snprintf(args, sizeof args, TRAIN, tmp);
    /* GRPO2048_EMU_NO_DEVICE hides the emulator's device, CUDA_VISIBLE_DEVICES a GPU */
    snprintf(cmd, sizeof cmd, "GRPO2048_EMU_NO_DEVICE=1 CUDA_VISIBLE_DEVICES= %s %s --set device=cuda --set max_steps=1 "
             "--set output_dir=%s/nodev", cuda_bin, args, tmp);
    int rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 2 && strstr(out, "no usable CUDA device"), "device: cuda without a device: exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "GRPO2048_EMU_NO_DEVICE=1 CUDA_VISIBLE_DEVICES= %s %s --set device=auto --set max_steps=1 "
             "--set output_dir=%s/auto", cuda_bin, args, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "device cpu: "), "device: auto without a device: exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "%s %s --set device=auto --set max_steps=1 --set output_dir=%s/auto2", cuda_bin, args, tmp);
    rc = run(cmd, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "device cuda: "), "device: auto with a device: exit %d:\n%s", rc, out);
}

int main(void) {
    skip_without_device();
    cpu_bin = getenv("GRPO2048_BIN");
    cuda_bin = getenv("GRPO2048_CUDA_BIN");
    if (!cpu_bin || !cuda_bin) {
        fprintf(stderr, "GRPO2048_BIN and GRPO2048_CUDA_BIN must name the binaries (ctest sets them)\n");
        return 1;
    }
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    printf("cpu: %s\ncuda: %s\ntmp: %s\n", cpu_bin, cuda_bin, tmp);
    make_tiny_policy();
    if (testing_failures == 0) {
        test_train();
        test_sft();
        test_generate();
        test_no_device();
    }
    if (testing_failures == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    } else {
        printf("kept %s for inspection\n", tmp);
    }
    return TEST_DONE();
}
