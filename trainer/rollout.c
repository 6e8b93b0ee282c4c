/*
 * trainer/rollout.c: generate and score, the pool working while rows still decode (see rollout.h).
 */
#include "trainer/rollout.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const rollout_spec *spec;
    const int *tokens, *len;
    char **text;
    unsigned char *sent;     /* (n,) 1: row i's jobs were added to the batch */
    reward_batch *batch;
    double busy_since;       /* now_seconds() when the pool last went from idle to busy, 0 while idle */
    double busy;             /* seconds the pool had jobs (queued or running) so far */
} hook_ctx;

/* Sends completion i's jobs to the pool; text[i] NULL (it could not be decoded) is scored as no function
 * (the caller fails the call afterwards). */
static void submit_row(hook_ctx *h, int i) {
    const rollout_spec *sp = h->spec;
    if (h->busy_since == 0.0) h->busy_since = now_seconds();
    for (int k = 0; k < sp->jobs_per_row; k++) {
        int j = i * sp->jobs_per_row + k;
        reward_batch_add(h->batch, j, h->text[i] ? h->text[i] : "", sp->job_seeds[j]);   /* failures: at finish */
    }
    h->sent[i] = 1;
}

/* Decodes completion i into text[i] (NULL when out of memory). */
static void decode_row(const rollout_spec *sp, const int *tokens, const int *len, char **text, int i) {
    free(text[i]);
    text[i] = policy_decode(sp->pol, tokens + (size_t)i * sp->max_new, len[i]);
}

/* llama_sampling.on_step: the rows that stopped in this decode step go to the pool, and the pool's finished
 * results are collected, while the other rows go on decoding. */
static void on_step(void *ctx, const int *done, int ndone) {
    hook_ctx *h = ctx;
    for (int d = 0; d < ndone; d++) {
        decode_row(h->spec, h->tokens, h->len, h->text, done[d]);
        submit_row(h, done[d]);
    }
    reward_batch_poll(h->batch);
    if (h->busy_since > 0.0 && reward_batch_pending(h->batch) == 0) {   /* went idle (seen at step granularity) */
        h->busy += now_seconds() - h->busy_since;
        h->busy_since = 0.0;
    }
}

int rollout_run(const rollout_spec *sp, int *tokens, int *len, float *logp, char **text, reward_result *res,
                rollout_times *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (sp->n < 1 || sp->jobs_per_row < 1) {
        snprintf(err, errlen, "rollout: n = %d and jobs_per_row = %d must be >= 1", sp->n, sp->jobs_per_row);
        return -1;
    }
    const int jobs = sp->n * sp->jobs_per_row;
    llama_sampling s = sp->sampling;
    s.on_step = NULL;
    s.on_step_ctx = NULL;
    hook_ctx h = {sp, tokens, len, text, NULL, NULL, 0.0, 0.0};
    char gerr[512] = "", rerr[512] = "";
    if (sp->overlap) {
        h.sent = calloc((size_t)sp->n, 1);
        h.batch = h.sent ? reward_batch_begin(sp->pool, jobs, res, sp->log, rerr, sizeof rerr) : NULL;
        if (!h.batch) {
            snprintf(err, errlen, "rewards: %s", h.sent ? rerr : "out of memory");
            free(h.sent);
            return -1;
        }
        s.on_step = on_step;
        s.on_step_ctx = &h;
    }
    gpu_telemetry_phase(sp->gpu, GPU_PHASE_GENERATION);
    const double t0 = now_seconds();
    int grc = backend_generate(sp->b, sp->prompt, sp->P, sp->n, sp->max_new, &s, sp->seed, tokens, len, logp, gerr,
                               sizeof gerr);
    const double t1 = now_seconds();
    t->generation_time = t1 - t0;
    gpu_telemetry_phase(sp->gpu, GPU_PHASE_REWARD);
    int oom = 0;
    if (sp->overlap) {
        /* every row was sent in its last decode step; after a failed generation the rest are sent as empty
         * completions (no function: no worker runs them) so that the batch can close */
        for (int i = 0; i < sp->n; i++) {
            if (h.sent[i]) { oom |= text[i] == NULL; continue; }
            free(text[i]);
            text[i] = NULL;
            submit_row(&h, i);
        }
        int rrc = reward_batch_finish(h.batch, rerr, sizeof rerr);
        const double t2 = now_seconds();
        t->reward_time = h.busy + (h.busy_since > 0.0 ? t2 - h.busy_since : 0.0);
        t->reward_wait_time = t2 - t1;
        free(h.sent);
        if (grc != 0) { snprintf(err, errlen, "generation: %s", gerr); return -1; }
        if (rrc != 0) { snprintf(err, errlen, "rewards: %s", rerr); return -1; }
        if (oom) { snprintf(err, errlen, "rollout: out of memory decoding completions"); return -1; }
        return 0;
    }
    if (grc != 0) { snprintf(err, errlen, "generation: %s", gerr); return -1; }
    for (int i = 0; i < sp->n; i++) {
        decode_row(sp, tokens, len, text, i);
        oom |= text[i] == NULL;
    }
    if (oom) { snprintf(err, errlen, "rollout: out of memory decoding completions"); return -1; }
    const char **job_text = malloc((size_t)jobs * sizeof *job_text);
    if (!job_text) { snprintf(err, errlen, "rollout: out of memory"); return -1; }
    for (int j = 0; j < jobs; j++) job_text[j] = text[j / sp->jobs_per_row];
    const double t2 = now_seconds();
    int rrc = reward_pool_score(sp->pool, jobs, job_text, sp->job_seeds, res, sp->log, rerr, sizeof rerr);
    free(job_text);
    t->reward_time = t->reward_wait_time = now_seconds() - t2;
    if (rrc != 0) { snprintf(err, errlen, "rewards: %s", rerr); return -1; }
    return 0;
}
