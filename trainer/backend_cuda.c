/*
 * trainer/backend_cuda.c: the CUDA backend (backend.h) — model/cuda/llama_cuda.h.
 *
 * Compiled only into executables linked against a CUDA library: model_cuda (a GPU) or model_cuda_emu
 * (the CPU emulator of CUDA in tests/gpu/emu, for tests); backend.c finds it through weak symbols.
 *
 * The device holds the fp32 master weights, the gradients and the AdamW moments (llama_cuda.h); the
 * host model and optimizer state are copied in at creation and by upload, and back by download. The
 * host gradients are never used. Hyper-parameters reach llama_cuda_adamw_step unchanged: it is
 * trainer/optim.c's adamw_step operation for operation (bias corrections in double, decoupled decay
 * where the tensor table's decay flag is set, which is policy_decay_mask's rule).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/llama_cuda.h"
#include "trainer/backend.h"

#define CUDA_DEVICE 0   /* one process, one GPU (CUDA_VISIBLE_DEVICES picks it) */

typedef struct {
    llama_cuda_model cm;
} cuda_impl;

static llama_cuda_model *CM(backend *b) { return &((cuda_impl *)b->impl)->cm; }

static int cuda_forward(backend *b, const int *tokens, int B, int T, float temperature, float *logp, float *entropy) {
    if (llama_cuda_forward_logprobs_t(CM(b), tokens, B, T, temperature, logp, entropy) != 0) {
        snprintf(b->err, sizeof b->err, "%s", CM(b)->err);
        return -1;
    }
    return 0;
}

static void cuda_backward(backend *b, const float *dlogp, const float *dentropy) {
    llama_cuda_backward_logprobs_entropy(CM(b), dlogp, dentropy);
}

static void cuda_zero_grad(backend *b) { llama_cuda_zero_grad(CM(b)); }

static double cuda_clip(backend *b, double max_norm) { return llama_cuda_clip_grad_norm(CM(b), max_norm); }

static int cuda_adamw(backend *b, const adamw_hparams *h) {
    llama_cuda_adamw_hparams ch = {h->lr, h->beta1, h->beta2, h->eps, h->weight_decay};
    return llama_cuda_adamw_step(CM(b), &ch, b->err, sizeof b->err);
}

static int cuda_generate(backend *b, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                         uint64_t seed, int *out, int *out_len, float *out_logp, char *err, size_t errlen) {
    return llama_cuda_generate(CM(b), prompt, P, G, max_new, s, seed, out, out_len, out_logp, err, errlen);
}

static int cuda_upload(backend *b, int what) {
    if ((what & BACKEND_PARAMS) && llama_cuda_upload_params(CM(b), b->model, b->err, sizeof b->err) != 0) return -1;
    if ((what & BACKEND_OPTIMIZER) && b->opt) {
        adamw_state *o = b->opt;
        if (o->n != CM(b)->num_params) {
            snprintf(b->err, sizeof b->err, "optimizer state of %zu parameters for a model of %zu", o->n,
                     CM(b)->num_params);
            return -1;
        }
        /* a fresh state (t = 0, zero moments) is what the device allocates at the first step anyway */
        if ((o->t > 0 || CM(b)->adam_m) && llama_cuda_adamw_set(CM(b), o->m, o->v, o->t, b->err, sizeof b->err) != 0)
            return -1;
    }
    return 0;
}

static int cuda_download(backend *b, int what) {
    if ((what & BACKEND_PARAMS) && llama_cuda_download(CM(b), b->model, 1, 0, b->err, sizeof b->err) != 0) return -1;
    if ((what & BACKEND_OPTIMIZER) && b->opt) llama_cuda_adamw_get(CM(b), b->opt->m, b->opt->v, &b->opt->t);
    return 0;
}

static void cuda_memory(backend *b, backend_memory *mem) {
    llama_cuda_memory cmem;
    llama_cuda_get_memory(CM(b), &cmem);
    mem->current_bytes = cmem.current_bytes;
    mem->peak_bytes = cmem.peak_bytes;
    mem->total_bytes = cmem.device_total_bytes;
    mem->free_bytes = cmem.device_free_bytes;
}

static void cuda_reset_peak(backend *b) { llama_cuda_reset_peak(CM(b)); }

static void cuda_destroy(backend *b) {
    if (b->impl) llama_cuda_free(CM(b));
    free(b->impl);
    b->impl = NULL;
}

/* the device gradients (llama_cuda_model.grads), all-reduced in place with NCCL by data-parallel runs */
static float *cuda_grad_buffer(backend *b, size_t *n, int *on_device) {
    *n = b->model->num_params;
    *on_device = 1;
    return CM(b)->grads;
}

static int cuda_set_attn_implementation(backend *b, const char *impl) {
    int which = !strcmp(impl, "cudnn") ? LLAMA_CUDA_ATTN_CUDNN : LLAMA_CUDA_ATTN_NATIVE;
    if (llama_cuda_set_attn_implementation(CM(b), which, b->err, sizeof b->err) != 0) return -1;
    /* said on the start-up line, so that a run's log tells which attention trained it */
    size_t n = strlen(b->description);
    if (which == LLAMA_CUDA_ATTN_CUDNN && !strstr(b->description, ", attention cudnn"))
        snprintf(b->description + n, sizeof b->description - n, ", attention cudnn (cuDNN %d)",
                 llama_cuda_cudnn_version());
    return 0;
}

static const backend_ops cuda_ops = {
    "cuda", cuda_forward, cuda_backward, cuda_zero_grad, cuda_clip, cuda_adamw, cuda_generate, cuda_upload,
    cuda_download, cuda_memory, cuda_reset_peak, cuda_destroy, cuda_set_attn_implementation, cuda_grad_buffer,
};

int backend_cuda_device_count(void) { return llama_cuda_device_count(); }

int backend_cuda_create(backend *b, llama_model *m, adamw_state *opt, int precision, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    cuda_impl *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return -1; }
    const int cp = precision == BACKEND_BF16 ? LLAMA_CUDA_BF16 : precision == BACKEND_TF32 ? LLAMA_CUDA_TF32
                                                                                          : LLAMA_CUDA_FP32;
    if (llama_cuda_create(&c->cm, m, CUDA_DEVICE, cp, err, errlen) != 0) {
        free(c);
        return -1;
    }
    b->ops = &cuda_ops;
    b->model = m;
    b->opt = opt;
    b->precision = precision;
    b->impl = c;
    if (cuda_upload(b, BACKEND_OPTIMIZER) != 0) {
        snprintf(err, errlen, "%s", b->err);
        backend_free(b);
        return -1;
    }
    char info[200] = "";
    llama_cuda_device_info(CUDA_DEVICE, info, sizeof info);
    snprintf(b->description, sizeof b->description, "cuda: %s, precision %s", info, backend_precision_name(precision));
    return 0;
}
