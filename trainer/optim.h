/*
 * trainer/optim.h: AdamW, gradient clipping and the learning-rate schedules, over the model's flat
 * parameter and gradient arrays (one allocation each, llm.c style).
 *
 * Sources: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization" (AdamW, as torch.optim.AdamW
 * computes it); torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6)); transformers'
 * optimization.py get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup /
 * get_constant_schedule_with_warmup (lr_lambda of the 0-based optimizer step count).
 */
#ifndef GRPO2048_OPTIM_H
#define GRPO2048_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_hparams;

typedef struct {
    size_t n;          /* parameters */
    float *m;          /* (n,) first moment */
    float *v;          /* (n,) second moment */
    int64_t t;         /* optimizer steps taken */
} adamw_state;

/* Allocates zeroed moments for n parameters. Returns 0, or -1 when out of memory. */
int adamw_init(adamw_state *s, size_t n);
void adamw_free(adamw_state *s);

/* One AdamW step on params (n,) with grads (n,): decoupled decay p -= lr·wd·p where decay[i] is nonzero
 * (decay: (n,) per-parameter flags, or NULL = decay everything), then the bias-corrected Adam update. */
void adamw_step(adamw_state *s, const adamw_hparams *h, float *params, const float *grads,
                const unsigned char *decay);

/* Global L2 norm of grads (n,), accumulated in double. When max_norm > 0 and the norm exceeds it, the
 * gradients are scaled by max_norm / (norm + 1e-6) in place. Returns the norm before clipping. */
double clip_grad_norm(float *grads, size_t n, double max_norm);

typedef enum { SCHED_LINEAR, SCHED_COSINE, SCHED_CONSTANT, SCHED_CONSTANT_WITH_WARMUP } lr_schedule;
/* "linear", "cosine", "constant", "constant_with_warmup" → schedule; -1 if unknown. */
int lr_schedule_from_name(const char *name);

/* Learning rate for 0-based optimizer step `step` of `total`, with warmup_steps = ceil(warmup_ratio ·
 * total) as transformers computes it. */
double lr_at(lr_schedule s, double base_lr, int step, int total, double warmup_ratio);

/* The same with the warmup given in steps (transformers' get_*_schedule_with_warmup(num_warmup_steps);
 * config_warmup_steps turns warmup_steps / warmup_ratio into it). warmup >= 0. */
double lr_at_warmup(lr_schedule s, double base_lr, int step, int total, int warmup);

/* Writes / reads the optimizer state (magic, version, n, t, m, v) as one binary file; save goes through
 * a temporary name and rename. Return 0, or -1 with a message naming the file and what is wrong. */
int adamw_save(const adamw_state *s, const char *path, char *err, size_t errlen);
int adamw_load(adamw_state *s, const char *path, char *err, size_t errlen);

#endif
