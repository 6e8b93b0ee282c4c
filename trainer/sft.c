/*
 * trainer/sft.c: `grpo2048 sft CONFIG.yaml` — supervised fine-tuning on a JSONL of prompt/completion
 * pairs, the way the embedded default policy is made (from scratch, init_from_scratch: true).
 *
 * Each example is the chat-templated prompt followed by the completion and the end-of-turn token; the
 * loss is the mean negative log-likelihood of the completion tokens (and end-of-turn) over the
 * accumulated batch, as TRL's SFTTrainer computes it with completion_only_loss. Examples are shuffled
 * every epoch with the config's seed; a held-out fraction (sft_eval_fraction) gives eval_loss.
 * Steps: ceil(num_train_epochs × train examples / (per_device_train_batch_size ×
 * gradient_accumulation_steps)), at most max_steps. SIGINT/SIGTERM: the step finishes, the model is saved,
 * the run is marked interrupted, exit status 128 + signal. Every resource is released at one cleanup label,
 * on success and on every error path. The model runs on the backend `device` picks (trainer/backend.h);
 * checkpoints and the result are saved from the host copies, which the backend updates first.
 * Data-parallel (`mpirun -np W`, trainer/dist.h): a micro-batch is W × per_device_train_batch_size examples,
 * rank r training on its r-th B of them; the loss is divided by the whole step's completion tokens, so the
 * ranks' summed gradients (MPI_Allreduce, or NCCL on GPUs) are one process's with a W·B micro-batch; rank 0
 * writes metrics, checkpoints and the model.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "game2048/game.h"
#include "trainer/backend.h"
#include "trainer/checkpoint.h"
#include "trainer/dist.h"
#include "trainer/metrics.h"
#include "trainer/optim.h"
#include "trainer/policy.h"
#include "trainer/progress.h"
#include "trainer/summary.h"
#include "trainer/stop_signal.h"

typedef struct {
    int *ids;      /* (len,) prompt ++ completion ++ end-of-turn */
    int len;
    int prompt_len;/* tokens before the completion (not in the loss) */
} sft_example;

static void free_examples(sft_example *ex, int n) {
    if (ex) for (int i = 0; i < n; i++) free(ex[i].ids);
    free(ex);
}

/* Reads the JSONL dataset: one {"prompt": ..., "completion": ...} object per line. Returns the
 * examples (*count set), or NULL with a message naming the file and line; nothing leaks either way. */
static sft_example *load_dataset(const policy *p, const grpo_config *c, int *count, char *err, size_t errlen) {
    FILE *f = fopen(c->dataset_path, "r");
    if (!f) { snprintf(err, errlen, "dataset_path '%s': cannot open", c->dataset_path); return NULL; }
    int cap = 1024, n = 0, line_no = 0, truncated = 0, ok = 0;
    sft_example *ex = malloc(sizeof *ex * cap);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t k;
    int eot = p->stop_ids[0];
    if (!ex) { snprintf(err, errlen, "out of memory"); goto done; }
    while ((k = getline(&line, &linecap, f)) > 0) {
        line_no++;
        if (strspn(line, " \t\r\n") == (size_t)k) continue;
        cJSON *o = cJSON_Parse(line);
        const cJSON *pr = o ? cJSON_GetObjectItemCaseSensitive(o, "prompt") : NULL;
        const cJSON *co = o ? cJSON_GetObjectItemCaseSensitive(o, "completion") : NULL;
        if (!cJSON_IsString(pr) || !cJSON_IsString(co)) {
            snprintf(err, errlen, "%s:%d: expected a JSON object with string fields \"prompt\" and \"completion\"",
                     c->dataset_path, line_no);
            cJSON_Delete(o);
            goto done;
        }
        int np = 0, nc = 0;
        int *pi = policy_encode_prompt(p, c->system_prompt, pr->valuestring, &np, err, errlen);
        int *ci = pi ? policy_encode_text(p, co->valuestring, &nc, err, errlen) : NULL;
        cJSON_Delete(o);
        if (!pi || !ci) { free(pi); goto done; }
        int len = np + nc + 1;
        if (len > c->max_length) { truncated++; len = c->max_length; }
        if (np >= len) { free(pi); free(ci); continue; }   /* nothing of the completion fits */
        int *ids = malloc(sizeof(int) * len);
        if (n == cap) {
            sft_example *grown = realloc(ex, sizeof *ex * cap * 2);
            if (grown) { ex = grown; cap *= 2; }
        }
        if (!ids || n == cap) {
            free(ids); free(pi); free(ci);
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (int t = 0; t < len; t++) ids[t] = t < np ? pi[t] : t < np + nc ? ci[t - np] : eot;
        free(pi); free(ci);
        ex[n++] = (sft_example){ids, len, np};
    }
    if (n == 0) { snprintf(err, errlen, "dataset_path '%s': no examples", c->dataset_path); goto done; }
    if (truncated) fprintf(stderr, "grpo2048 sft: %d examples longer than max_length=%d were truncated\n", truncated, c->max_length);
    ok = 1;
done:
    free(line);
    fclose(f);
    if (!ok) { free_examples(ex, n); return NULL; }
    *count = n;
    return ex;
}

/* Fisher-Yates with the game RNG (integer-only, repeatable everywhere). */
static void shuffle(int *order, int n, uint64_t seed) {
    game_rng r = {seed};
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(game_rng_next(&r) % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

/* HF Trainer's group_by_length, simplified: after the shuffle, examples are sorted by length within
 * windows of 64 micro-batches, so a micro-batch pads little; the order of the micro-batches is then
 * shuffled again so that lengths do not trend through the epoch. Deterministic for a seed. */
static const sft_example *sort_ex;
static int by_length(const void *a, const void *b) {
    return sort_ex[*(const int *)a].len - sort_ex[*(const int *)b].len;
}
static void group_by_length(const sft_example *ex, int *order, int n, int B, uint64_t seed) {
    sort_ex = ex;
    int window = 64 * B;
    for (int i = 0; i < n; i += window) qsort(order + i, (size_t)(n - i < window ? n - i : window), sizeof(int), by_length);
    int nb = n / B;                       /* whole micro-batches; a ragged tail stays at the end */
    int *tmp = malloc(sizeof(int) * (size_t)n);
    int *perm = malloc(sizeof(int) * (size_t)(nb ? nb : 1));
    if (!tmp || !perm) {   /* out of memory: keep the sorted order, which is still a valid order */
        free(tmp); free(perm);
        return;
    }
    for (int i = 0; i < nb; i++) perm[i] = i;
    shuffle(perm, nb, seed);
    for (int i = 0; i < nb; i++) memcpy(tmp + (size_t)i * B, order + (size_t)perm[i] * B, sizeof(int) * B);
    memcpy(tmp + (size_t)nb * B, order + (size_t)nb * B, sizeof(int) * (size_t)(n - nb * B));
    memcpy(order, tmp, sizeof(int) * (size_t)n);
    free(tmp); free(perm);
}

/* tokens/mask (B, T) for examples idx[0..B); returns T. */
static int build_batch(const sft_example *ex, const int *idx, int B, int pad, int *tokens, float *mask) {
    int T = 1;
    for (int b = 0; b < B; b++) if (ex[idx[b]].len > T) T = ex[idx[b]].len;
    for (int b = 0; b < B; b++) {
        const sft_example *e = &ex[idx[b]];
        for (int t = 0; t < T; t++) {
            tokens[(size_t)b * T + t] = t < e->len ? e->ids[t] : pad;
            mask[(size_t)b * T + t] = (t >= e->prompt_len && t < e->len) ? 1.0f : 0.0f;
        }
    }
    return T;
}

/* Mean NLL of the completion tokens of examples [0, n) in batches of B. */
static double eval_loss(policy *p, backend *be, const sft_example *ex, const int *idx, int n, int B, int *tokens,
                        float *mask, float *logp) {
    double nll = 0, count = 0;
    for (int i = 0; i < n; i += B) {
        int b = n - i < B ? n - i : B;
        int T = build_batch(ex, idx + i, b, p->pad_id, tokens, mask);
        backend_forward_logprobs(be, tokens, b, T, 1.0f, logp, NULL);
        for (size_t k = 0; k < (size_t)b * T; k++) { nll -= mask[k] * logp[k]; count += mask[k]; }
    }
    return count > 0 ? nll / count : 0.0;
}

int cmd_sft(int argc, char **argv) {
    char err[1024] = "";
    grpo_config c;
    int rc = policy_parse_args(argc, argv, "sft", &c, err, sizeof err);
    if (rc == 1) return 0;
    if (rc != 0) { fprintf(stderr, "grpo2048 sft: %s\n", err); return 2; }

    /* Everything the command holds, released in one place (cleanup:) on every path. */
    int exit_code = 1;
    policy pol;
    memset(&pol, 0, sizeof pol);
    sft_example *ex = NULL;
    int n = 0;
    int *order = NULL, *idx = NULL, *tokens = NULL;
    float *mask = NULL, *logp = NULL, *dlogp = NULL;
    adamw_state opt;
    memset(&opt, 0, sizeof opt);
    backend be;
    memset(&be, 0, sizeof be);
    char *config_yaml = NULL;
    metrics_db *db = NULL;
    char path[4096];
    const char *status = "failed";
    progress pb;
    int progress_started = 0;
    int lock_fd = -1;
    FILE *progress_out = stderr;

    /* Data-parallel: the rank from mpirun's environment, MPI_Init (no reward pool to fork first). */
    if (dist_from_env(err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 sft: %s\n", err);
        exit_code = 2;
        goto cleanup;
    }
    if (dist_init(err, sizeof err) != 0) dist_abort(2, "sft", "%s", err);
    const int rank = dist_get()->rank, W = dist_get()->world_size;
    if (rank != 0 && !(progress_out = fopen("/dev/null", "w"))) progress_out = stderr;   /* rank 0 prints */

    /* One writer per output_dir: a second run on the same folder would overwrite this one's files. */
    if (rank == 0 && (lock_fd = run_lock_acquire(c.output_dir, err, sizeof err)) < 0) {
        fprintf(stderr, "grpo2048 sft: %s\n", err);
        exit_code = 2;
        goto cleanup;
    }
    if (!c.dataset_path || !c.dataset_path[0]) {
        fprintf(stderr, "grpo2048 sft: dataset_path is required\n");
        exit_code = 2;
        goto cleanup;
    }
    if (policy_load(&pol, &c, c.init_from_scratch, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 sft: %s\n", err);
        goto cleanup;
    }
    llama_set_gradient_checkpointing(&pol.model, c.gradient_checkpointing);   /* same results, less memory */
    ex = load_dataset(&pol, &c, &n, err, sizeof err);
    if (!ex) { fprintf(stderr, "grpo2048 sft: %s\n", err); goto cleanup; }

    order = malloc(sizeof(int) * n);
    if (!order) { fprintf(stderr, "grpo2048 sft: out of memory\n"); goto cleanup; }
    for (int i = 0; i < n; i++) order[i] = i;
    shuffle(order, n, game_seed_mix((uint64_t)c.seed, 0xE7A1, 0));
    int n_eval = (int)floor(c.sft_eval_fraction * n);
    if (n_eval >= n) n_eval = n - 1;
    const int n_train = n - n_eval;
    int *train_idx = order, *eval_idx = order + n_train;
    /* B: this rank's examples per micro-batch; Bg = W·B: the whole micro-batch (the unit of group_by_length) */
    const int B = c.per_device_train_batch_size, A = c.gradient_accumulation_steps, Bg = B * W;
    group_by_length(ex, train_idx, n_train, Bg, game_seed_mix((uint64_t)c.seed, 0xB7C4, 1));

    const int steps_per_epoch = (n_train + Bg * A - 1) / (Bg * A);
    int total = (int)ceil(c.num_train_epochs * steps_per_epoch);
    if (c.max_steps > 0 && total > c.max_steps) total = c.max_steps;   /* -1: num_train_epochs alone */
    if (total < 1) total = 1;
    int maxT = 1;
    for (int i = 0; i < n; i++) if (ex[i].len > maxT) maxT = ex[i].len;
    if (maxT > pol.model.cfg.max_position_embeddings) {
        fprintf(stderr, "grpo2048 sft: examples of %d tokens exceed max_position_embeddings=%d (lower max_length)\n",
                maxT, pol.model.cfg.max_position_embeddings);
        exit_code = 2;
        goto cleanup;
    }
    tokens = malloc(sizeof(int) * (size_t)B * maxT);
    mask = malloc(sizeof(float) * (size_t)B * maxT);
    logp = malloc(sizeof(float) * (size_t)B * maxT);
    dlogp = malloc(sizeof(float) * (size_t)B * maxT);
    const size_t nparams = pol.model.num_params;
    idx = malloc(sizeof(int) * (size_t)Bg * A);
    if (!idx || !tokens || !mask || !logp || !dlogp || adamw_init(&opt, nparams) != 0) {
        fprintf(stderr, "grpo2048 sft: out of memory\n");
        goto cleanup;
    }
    if (backend_create(&be, c.device, backend_precision(c.tf32, c.bf16), &pol.model, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 sft: %s\n", err);
        exit_code = 2;
        goto cleanup;
    }
    if (backend_set_attn_implementation(&be, c.attn_implementation) != 0) {
        fprintf(stderr, "grpo2048 sft: %s\n", be.err);
        exit_code = 2;
        goto cleanup;
    }
    adamw_hparams hp = policy_adamw_hparams(&c);
    lr_schedule sched = (lr_schedule)lr_schedule_from_name(c.lr_scheduler_type);
    if (W > 1 && dist_check_same(pol.model.params, pol.model.num_params, "initial weights", err, sizeof err) != 0)
        dist_abort(2, "sft", "%s", err);

    if (rank != 0) goto metrics_ready;   /* rank 0 writes the metrics */
    if (make_dirs(c.output_dir, err, sizeof err) != 0) { fprintf(stderr, "grpo2048 sft: %s\n", err); goto cleanup; }
    snprintf(path, sizeof path, "%s/metrics.sqlite", c.output_dir);
    config_yaml = config_to_yaml(&c);
    if (!config_yaml) { fprintf(stderr, "grpo2048 sft: out of memory\n"); goto cleanup; }
    db = metrics_open(path, "sft", config_yaml, err, sizeof err);
    if (!db) { fprintf(stderr, "grpo2048 sft: %s\n", err); goto cleanup; }
    fprintf(stderr, "grpo2048 sft: device %s | %zu parameters%s | %d train + %d eval examples, longest %d tokens | "
            "%d steps of %d examples | output %s\n", be.description, nparams, c.init_from_scratch ? " (from scratch)" : "",
            n_train, n_eval, maxT, total, Bg * A, c.output_dir);
    if (W > 1)
        fprintf(stderr, "grpo2048 sft: data-parallel over %d ranks (MPI): %d of each micro-batch of %d per rank\n", W, B,
                Bg);
metrics_ready:
    progress_start(&pb, "sft", total, progress_out);
    progress_started = 1;
    pb.log_every = c.logging_steps;
    int cursor = 0, epoch = 0;
    double num_tokens = 0;
    stop_signal_install("grpo2048 sft: stopping after this step, then saving the model");
    int steps_done = 0;
    status = "completed";
    for (int step = 1; step <= total; step++) {
        if (dist_any(stop_signal_received())) { status = "interrupted"; break; }   /* all ranks stop together */
        double t0 = now_seconds();
        /* The step's examples: the next Bg×A of this epoch's order (a new epoch reshuffles). */
        const int count = Bg * A;
        for (int i = 0; i < count; i++) {
            if (cursor == n_train) {
                cursor = 0;
                epoch++;
                shuffle(train_idx, n_train, game_seed_mix((uint64_t)c.seed, 0xE7A1, (uint64_t)epoch + 1));
                group_by_length(ex, train_idx, n_train, Bg, game_seed_mix((uint64_t)c.seed, 0xB7C4, (uint64_t)epoch + 1));
            }
            idx[i] = train_idx[cursor++];
        }
        double active = 0;
        for (int i = 0; i < count; i++) active += ex[idx[i]].len - ex[idx[i]].prompt_len;
        backend_zero_grad(&be);
        double loss = 0, step_tokens = 0;
        for (int a = 0; a < A; a++) {
            int T = build_batch(ex, idx + (size_t)a * Bg + (size_t)rank * B, B, pol.pad_id, tokens, mask);
            if (backend_forward_logprobs(&be, tokens, B, T, 1.0f, logp, NULL) != 0) {
                progress_clear(&pb);
                fprintf(stderr, "grpo2048 sft: forward pass: %s\n", be.err);
                status = "failed";
                break;
            }
            for (size_t k = 0; k < (size_t)B * T; k++) {
                loss -= mask[k] * logp[k] / active;
                dlogp[k] = -mask[k] / (float)active;
            }
            step_tokens += (double)B * T;
            backend_backward_logprobs(&be, dlogp);
        }
        if (strcmp(status, "completed") != 0) break;
        /* the gradients and the loss summed over the ranks (each divided by the whole step's tokens); under mpirun
         * also with one rank, so that `mpirun -np 1` exercises the all-reduce (NCCL on a GPU) */
        if (dist_get()->initialized) {
            size_t ng;
            int on_device;
            float *grads = backend_grad_buffer(&be, &ng, &on_device);
            if (dist_allreduce_grads(grads, ng, on_device, err, sizeof err) != 0) {
                progress_clear(&pb);
                fprintf(stderr, "grpo2048 sft: gradient all-reduce: %s\n", err);
                status = "failed";
                break;
            }
            double sums[2] = {loss, step_tokens};
            dist_allreduce_f64(sums, 2, DIST_SUM);
            loss = sums[0];
            step_tokens = sums[1];
        }
        /* A non-finite loss or gradient would make every weight NaN at the optimizer step: the run stops
         * as failed, naming the step and the quantity; nothing is saved after it. */
        double grad_norm = isfinite(loss) ? backend_clip_grad_norm(&be, c.max_grad_norm) : NAN;
        if (!isfinite(loss) || !isfinite(grad_norm)) {
            progress_clear(&pb);
            if (!isfinite(loss))
                fprintf(stderr, "grpo2048 sft: step %d: the loss is %g (not finite); stopping before the optimizer "
                        "step, nothing of this step is saved\n", step, loss);
            else
                fprintf(stderr, "grpo2048 sft: step %d: the gradient norm is %g (not finite; loss %g); stopping before "
                        "the optimizer step, nothing of this step is saved\n", step, grad_norm, loss);
            status = "failed";
            break;
        }
        double lr = lr_at_warmup(sched, c.learning_rate, step - 1, total, config_warmup_steps(&c, total));
        hp.lr = (float)lr;
        if (backend_adamw_step(&be, &hp) != 0) {
            progress_clear(&pb);
            fprintf(stderr, "grpo2048 sft: optimizer step: %s\n", be.err);
            status = "failed";
            break;
        }
#if defined(GRPO2048_DIST_CHECK_EVERY_STEP)
        /* debug builds: the ranks' weights after every optimizer step (else at every checkpoint) */
        if (W > 1 && (backend_download(&be, BACKEND_PARAMS) != 0 ||
                      dist_check_same(pol.model.params, pol.model.num_params, "weights", err, sizeof err) != 0)) {
            fprintf(stderr, "grpo2048 sft: step %d: %s\n", step, err);
            status = "failed";
            break;
        }
#endif
        num_tokens += step_tokens;
        double dt = now_seconds() - t0;
        dist_allreduce_f64(&dt, 1, DIST_MAX);   /* the slowest rank's */
        int do_eval = rank == 0 && n_eval > 0 && (step == total || (c.save_steps > 0 && step % c.save_steps == 0) ||
                                                  step % (c.logging_steps * 25) == 0);
        double ev = do_eval ? eval_loss(&pol, &be, ex, eval_idx, n_eval, B, tokens, mask, logp) : 0;
        if (db && (metrics_begin_step(db, step) != 0 || metrics_add(db, "loss", loss) != 0 ||
            metrics_add(db, "grad_norm", grad_norm) != 0 || metrics_add(db, "learning_rate", lr) != 0 ||
            metrics_add(db, "epoch", epoch + (double)cursor / n_train) != 0 ||
            metrics_add(db, "num_tokens", num_tokens) != 0 || metrics_add(db, "step_time", dt) != 0 ||
            metrics_add(db, "tokens_per_second", step_tokens / dt) != 0 ||
            (do_eval && metrics_add(db, "eval_loss", ev) != 0) || metrics_commit_step(db) != 0)) {
            progress_clear(&pb);
            fprintf(stderr, "grpo2048 sft: metrics: %s\n", metrics_error(db));
            status = "failed";
            break;
        }
        char postfix[192], mem[48];
        backend_memory bm;
        backend_get_memory(&be, &bm);
        progress_format_memory(mem, sizeof mem, strcmp(be.ops->name, "cuda") ? -1.0
                               : (double)(bm.total_bytes - bm.free_bytes) / 1073741824.0);
        /* the first three fields stay on a narrow terminal (progress.h) */
        if (do_eval)
            snprintf(postfix, sizeof postfix, "loss=%.4f, %.0f tok/s, %s, eval_loss=%.4f, lr=%.2e", loss, step_tokens / dt,
                     mem, ev, lr);
        else snprintf(postfix, sizeof postfix, "loss=%.4f, %.0f tok/s, %s, lr=%.2e", loss, step_tokens / dt, mem, lr);
        progress_update(&pb, step, postfix);
        steps_done = step;
        if (c.save_steps > 0 && step % c.save_steps == 0 && step < total) {
            snprintf(path, sizeof path, "%s/checkpoint-%d", c.output_dir, step);
            checkpoint_info info = {"sft", step, db ? metrics_run_id(db) : 0, num_tokens, 0, 0, config_yaml, &c, W};
            /* checkpoints are written from the host model and optimizer state, by rank 0, after every rank has
             * checked that its weights are rank 0's */
            const int fetched = backend_download(&be, BACKEND_ALL) == 0;
            if (!fetched) snprintf(err, sizeof err, "%s", be.err);
            if (!fetched || (W > 1 && dist_check_same(pol.model.params, pol.model.num_params, "weights", err,
                                                       sizeof err) != 0) ||
                (rank == 0 &&
                 checkpoint_save(path, &pol.model, &opt, c.model_name_or_path, &info, NULL, NULL, err, sizeof err) != 0)) {
                progress_clear(&pb);
                fprintf(stderr, "grpo2048 sft: checkpoint: %s\n", err);
                status = "failed";
                break;
            }
            if (rank == 0) checkpoint_rotate(c.output_dir, c.save_total_limit, step);
        }
    }
    progress_finish(&pb);
    progress_started = 0;
    if (rank == 0 && (!strcmp(status, "completed") || !strcmp(status, "interrupted"))) {
        /* The result is a ready model folder: config.json, model.safetensors, tokenizer files (also when
         * interrupted: the model after the last finished step). */
        int ok = backend_download(&be, BACKEND_PARAMS) == 0;
        if (!ok) snprintf(err, sizeof err, "%s", be.err);
        ok = ok && llama_save(&pol.model, c.output_dir, 0, err, sizeof err) == 0;
        ok = ok && copy_tokenizer_files(c.model_name_or_path, c.output_dir, err, sizeof err) >= 0;
        static const char *const need[] = {"tokenizer.json", "tokenizer_config.json"};
        char src[4096];
        for (int i = 0; ok && i < 2; i++) {
            snprintf(src, sizeof src, "%s/%s", c.model_name_or_path, need[i]);
            if (access(src, R_OK) != 0)
                fprintf(stderr, "grpo2048 sft: warning: cannot read %s (%s): %s lacks it; copy it there before "
                        "loading the model\n", src, strerror(errno), c.output_dir);
        }
        if (!ok) { fprintf(stderr, "grpo2048 sft: saving: %s\n", err); status = "failed"; }
        else if (!strcmp(status, "completed"))
            fprintf(stderr, "grpo2048 sft: completed %d steps; model saved to %s\n", total, c.output_dir);
        else
            fprintf(stderr, "grpo2048 sft: interrupted after step %d of %d; model saved to %s\n", steps_done, total,
                    c.output_dir);
    }
    const int summary_run_id = db ? metrics_run_id(db) : 0;   /* rank 0's */
    if (db && metrics_finish(db, status) != 0) {
        fprintf(stderr, "grpo2048 sft: metrics: %s\n", metrics_error(NULL));
        status = "failed";
    }
    db = NULL;
    if (steps_done > 0 && rank == 0) summary_print_end(stderr, c.output_dir, summary_run_id, "grpo2048 sft: ");
    exit_code = !strcmp(status, "completed") ? 0 : !strcmp(status, "interrupted") ? 128 + stop_signal_received() : 1;
cleanup:
    /* Data-parallel: a rank that fails ends the job (the others would wait in a collective forever). */
    if (dist_get()->world_size > 1 && exit_code != 0 && strcmp(status, "interrupted") != 0)
        dist_abort(exit_code, "sft", "%s", err[0] ? err : "failed (see above)");
    if (progress_started) progress_finish(&pb);
    if (db) metrics_finish(db, "failed");
    free_examples(ex, n);
    free(order); free(idx); free(tokens); free(mask); free(logp); free(dlogp); free(config_yaml);
    backend_free(&be);
    adamw_free(&opt);
    policy_free(&pol);
    config_free(&c);
    if (progress_out != stderr) fclose(progress_out);
    dist_finalize();
    if (lock_fd >= 0) close(lock_fd);   /* the last thing: the folder is complete */
    return exit_code;
}
