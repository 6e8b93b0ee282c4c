/*
 * trainer/backend_cpu.c: the CPU backend (backend.h) — model/llama.h on the host model itself and
 * trainer/optim.c's AdamW on the host optimizer state, so upload and download have nothing to copy.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/blas_select.h"
#include "trainer/backend.h"
#include "trainer/policy.h"

typedef struct {
    unsigned char *decay;   /* (num_params) AdamW weight-decay flags, when trained */
    size_t max_tokens;      /* the largest B*T forwarded: the model's activation buffers grow to it */
    size_t peak_bytes;
} cpu_impl;

static llama_model *M(backend *b) { return b->model; }
static cpu_impl *S(backend *b) { return b->impl; }

static size_t cpu_current_bytes(backend *b) {
    const llama_model *m = b->model;
    size_t n = m->num_params * sizeof(float) * (b->opt ? 4 : 2);   /* params, grads (+ m, v) */
    if (S(b)->max_tokens) n += llama_activation_bytes_ex(&m->cfg, S(b)->max_tokens, m->gradient_checkpointing);
    return n;
}

static int cpu_forward(backend *b, const int *tokens, int B, int T, float temperature, float *logp, float *entropy) {
    if (llama_forward_logprobs_t(M(b), tokens, B, T, temperature, logp, entropy) != 0) {
        snprintf(b->err, sizeof b->err, "%s", M(b)->err);
        return -1;
    }
    cpu_impl *c = S(b);
    if ((size_t)B * T > c->max_tokens) {
        c->max_tokens = (size_t)B * T;
        size_t now = cpu_current_bytes(b);
        if (now > c->peak_bytes) c->peak_bytes = now;
    }
    return 0;
}

static void cpu_backward(backend *b, const float *dlogp, const float *dentropy) {
    llama_backward_logprobs_entropy(M(b), dlogp, dentropy);
}

static void cpu_zero_grad(backend *b) { llama_zero_grad(M(b)); }

static double cpu_clip(backend *b, double max_norm) { return clip_grad_norm(M(b)->grads, M(b)->num_params, max_norm); }

static int cpu_adamw(backend *b, const adamw_hparams *h) {
    adamw_step(b->opt, h, M(b)->params, M(b)->grads, S(b)->decay);
    return 0;
}

static int cpu_generate(backend *b, const int *prompt, int P, int G, int max_new, const llama_sampling *s, uint64_t seed,
                        int *out, int *out_len, float *out_logp, char *err, size_t errlen) {
    return llama_generate_ex(M(b), prompt, P, G, max_new, s, seed, out, out_len, out_logp, err, errlen);
}

static int cpu_nothing_to_copy(backend *b, int what) {
    (void)b; (void)what;
    return 0;
}

/* The machine's memory from /proc/meminfo (MemTotal, MemAvailable), else sysconf. */
static void machine_memory(size_t *total, size_t *avail) {
    long pages = sysconf(_SC_PHYS_PAGES), avpages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    *total = pages > 0 && page > 0 ? (size_t)pages * page : 0;
    *avail = avpages > 0 && page > 0 ? (size_t)avpages * page : 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) *total = (size_t)kb << 10;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) *avail = (size_t)kb << 10;
    }
    fclose(f);
}

static void cpu_memory(backend *b, backend_memory *mem) {
    memset(mem, 0, sizeof *mem);
    mem->current_bytes = cpu_current_bytes(b);
    mem->peak_bytes = S(b)->peak_bytes > mem->current_bytes ? S(b)->peak_bytes : mem->current_bytes;
    machine_memory(&mem->total_bytes, &mem->free_bytes);
}

static void cpu_reset_peak(backend *b) { S(b)->peak_bytes = cpu_current_bytes(b); }

static void cpu_destroy(backend *b) {
    cpu_impl *c = S(b);
    if (c) free(c->decay);
    free(c);
    b->impl = NULL;
}

static float *cpu_grad_buffer(backend *b, size_t *n, int *on_device) {
    *n = b->model->num_params;
    *on_device = 0;
    return b->model->grads;
}

/* The CPU model has one attention (llama_attention_forward/backward); cudnn is refused, as transformers
 * refuses an implementation that is not available. */
static int cpu_set_attn_implementation(backend *b, const char *impl) {
    if (!strcmp(impl, "native")) return 0;
    snprintf(b->err, sizeof b->err, "attn_implementation: %s is CUDA only (device: cuda with bf16: true); the CPU "
             "model has only the native attention", impl);
    return -1;
}

static const backend_ops cpu_ops = {
    "cpu", cpu_forward, cpu_backward, cpu_zero_grad, cpu_clip, cpu_adamw, cpu_generate, cpu_nothing_to_copy,
    cpu_nothing_to_copy, cpu_memory, cpu_reset_peak, cpu_destroy, cpu_set_attn_implementation, cpu_grad_buffer,
};

int backend_cpu_create(backend *b, llama_model *m, adamw_state *opt, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!c || (opt && !(c->decay = policy_decay_mask(m)))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->ops = &cpu_ops;
    b->model = m;
    b->opt = opt;
    b->precision = BACKEND_FP32;
    b->impl = c;
    c->peak_bytes = cpu_current_bytes(b);
    char blas[200];
    blas_describe(blas, sizeof blas);
    int nt = omp_get_max_threads();
    snprintf(b->description, sizeof b->description, "cpu: %s, %d thread%s, fp32", blas, nt, nt == 1 ? "" : "s");
    return 0;
}
