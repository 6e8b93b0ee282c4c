/*
 * trainer/optim.c: AdamW, gradient-norm clipping, learning-rate schedules, and the optimizer state file.
 * See optim.h for the formulas' sources.
 */
#include "trainer/optim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int adamw_init(adamw_state *s, size_t n) {
    s->n = n;
    s->t = 0;
    s->m = calloc(n ? n : 1, sizeof(float));
    s->v = calloc(n ? n : 1, sizeof(float));
    if (!s->m || !s->v) { adamw_free(s); return -1; }
    return 0;
}

void adamw_free(adamw_state *s) {
    free(s->m); free(s->v);
    s->m = s->v = NULL;
}

void adamw_step(adamw_state *s, const adamw_hparams *h, float *params, const float *grads,
                const unsigned char *decay) {
    s->t++;
    const double bc1 = 1.0 - pow(h->beta1, (double)s->t);
    const double bc2 = 1.0 - pow(h->beta2, (double)s->t);
    const float lr = h->lr, b1 = h->beta1, b2 = h->beta2, eps = h->eps, wd = h->weight_decay;
    const float step_size = (float)(lr / bc1);
    const float sqrt_bc2 = (float)sqrt(bc2);
    float *m = s->m, *v = s->v;
    const size_t n = s->n;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        if (wd != 0.0f && (!decay || decay[i])) params[i] -= lr * wd * params[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        /* torch: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps) */
        params[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
    }
}

double clip_grad_norm(float *grads, size_t n, double max_norm) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grads[i] * grads[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float c = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) grads[i] *= c;
    }
    return norm;
}

int lr_schedule_from_name(const char *name) {
    if (!strcmp(name, "linear")) return SCHED_LINEAR;
    if (!strcmp(name, "cosine")) return SCHED_COSINE;
    if (!strcmp(name, "constant")) return SCHED_CONSTANT;
    if (!strcmp(name, "constant_with_warmup")) return SCHED_CONSTANT_WITH_WARMUP;
    return -1;
}

double lr_at(lr_schedule s, double base_lr, int step, int total, double warmup_ratio) {
    return lr_at_warmup(s, base_lr, step, total, (int)ceil(warmup_ratio * total));
}

double lr_at_warmup(lr_schedule s, double base_lr, int step, int total, int warmup) {
    if (s == SCHED_CONSTANT) return base_lr;
    if (step < warmup) return base_lr * (double)step / (warmup > 1 ? warmup : 1);
    if (s == SCHED_CONSTANT_WITH_WARMUP) return base_lr;
    double denom = total - warmup > 1 ? total - warmup : 1;
    double progress = (step - warmup) / denom;
    if (s == SCHED_COSINE) {
        double f = 0.5 * (1.0 + cos(M_PI * progress));
        return base_lr * (f > 0 ? f : 0);
    }
    double f = (double)(total - step) / denom;
    return base_lr * (f > 0 ? f : 0);
}

static const char ADAMW_MAGIC[8] = {'G', '2', '0', '4', '8', 'O', 'P', 'T'};
enum { ADAMW_VERSION = 1 };

int adamw_save(const adamw_state *s, const char *path, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno)); return -1; }
    uint32_t version = ADAMW_VERSION;
    uint64_t n = s->n;
    int64_t t = s->t;
    int ok = fwrite(ADAMW_MAGIC, 1, 8, f) == 8 && fwrite(&version, 4, 1, f) == 1 &&
             fwrite(&n, 8, 1, f) == 1 && fwrite(&t, 8, 1, f) == 1 &&
             fwrite(s->m, sizeof(float), s->n, f) == s->n && fwrite(s->v, sizeof(float), s->n, f) == s->n;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int adamw_load(adamw_state *s, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    char magic[8];
    uint32_t version = 0;
    uint64_t n = 0;
    int64_t t = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, ADAMW_MAGIC, 8) != 0 || fread(&version, 4, 1, f) != 1 ||
        version != ADAMW_VERSION || fread(&n, 8, 1, f) != 1 || fread(&t, 8, 1, f) != 1) {
        snprintf(err, errlen, "%s: not a grpo2048 optimizer state file (bad header)", path);
        fclose(f);
        return -1;
    }
    if (n != s->n) {
        snprintf(err, errlen, "%s: optimizer state is for %llu parameters, the model has %zu", path,
                 (unsigned long long)n, s->n);
        fclose(f);
        return -1;
    }
    if (fread(s->m, sizeof(float), n, f) != n || fread(s->v, sizeof(float), n, f) != n) {
        snprintf(err, errlen, "%s: truncated optimizer state", path);
        fclose(f);
        return -1;
    }
    s->t = t;
    fclose(f);
    return 0;
}
