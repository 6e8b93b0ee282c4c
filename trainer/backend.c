/*
 * trainer/backend.c: choosing a backend (see backend.h) and the calls that dispatch to it.
 *
 * The CUDA backend lives in trainer/backend_cuda.c, which only executables linked against a CUDA
 * library contain. Its two entry points are referenced here as weak symbols: in a binary without
 * it they are NULL, and device "cuda" is refused with a message that says so.
 */
#include "trainer/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* trainer/backend_cpu.c */
int backend_cpu_create(backend *b, llama_model *m, adamw_state *opt, char *err, size_t errlen);

/* trainer/backend_cuda.c (weak: absent from binaries without the CUDA backend) */
int backend_cuda_device_count(void) __attribute__((weak));
int backend_cuda_create(backend *b, llama_model *m, adamw_state *opt, int precision, char *err, size_t errlen)
    __attribute__((weak));

int backend_have_cuda(void) { return backend_cuda_create != NULL && backend_cuda_device_count != NULL; }

const char *backend_resolve_device(const char *device) {
    if (strcmp(device, "auto") != 0) return device;
    return backend_have_cuda() && backend_cuda_device_count() > 0 ? "cuda" : "cpu";
}

int backend_precision(int tf32, int bf16) { return bf16 ? BACKEND_BF16 : tf32 ? BACKEND_TF32 : BACKEND_FP32; }

const char *backend_precision_name(int precision) {
    return precision == BACKEND_BF16 ? "bf16" : precision == BACKEND_TF32 ? "tf32" : "fp32";
}

int backend_create(backend *b, const char *device, int precision, llama_model *m, adamw_state *opt, char *err,
                   size_t errlen) {
    memset(b, 0, sizeof *b);
    const char *d = backend_resolve_device(device);
    if (!strcmp(d, "cpu")) {
        if (backend_cpu_create(b, m, opt, err, errlen) != 0) return -1;
        /* bf16: the training products in bf16 with fp32 accumulation where the CPU has bf16 instructions
         * (llama_set_bf16); said either way, so that nobody reads a CPU run as what it is not. */
        size_t n = strlen(b->description);
        char why[160] = "";
        if (llama_set_bf16(m, precision == BACKEND_BF16, why, sizeof why) == 0) {
            if (precision == BACKEND_BF16)
                snprintf(b->description + n, sizeof b->description - n, " weights, bf16 training products (%s)",
                         llama_bf16_isa_name());
            else if (precision == BACKEND_TF32)
                snprintf(b->description + n, sizeof b->description - n, " (tf32 applies to cuda only)");
        } else {
            snprintf(b->description + n, sizeof b->description - n, " (bf16 not applied: %s; fp32)", why);
        }
        return 0;
    }
    if (strcmp(d, "cuda") != 0) {
        snprintf(err, errlen, "device: '%s' is not a device (expected auto, cpu or cuda)", device);
        return -1;
    }
    if (!backend_have_cuda()) {
        snprintf(err, errlen, "device: cuda requested, but this grpo2048 was built without the CUDA backend (build "
                 "with nvcc on PATH, or -DGRPO2048_CUDA=ON; see docs/gpu.md), or use device: cpu");
        return -1;
    }
    if (backend_cuda_device_count() < 1) {
        snprintf(err, errlen, "device: cuda requested, but no usable CUDA device was found (no GPU, no NVIDIA driver, "
                 "or CUDA_VISIBLE_DEVICES hides them: see nvidia-smi); use device: cpu or auto");
        return -1;
    }
    return backend_cuda_create(b, m, opt, precision, err, errlen);
}

int backend_set_attn_implementation(backend *b, const char *impl) {
    if (strcmp(impl, "native") != 0 && strcmp(impl, "cudnn") != 0) {
        snprintf(b->err, sizeof b->err, "attn_implementation: expected native or cudnn, got '%s'", impl);
        return -1;
    }
    return b->ops->set_attn_implementation(b, impl);
}

void backend_free(backend *b) {
    if (b->ops) b->ops->destroy(b);
    memset(b, 0, sizeof *b);
}

int backend_forward_logprobs(backend *b, const int *tokens, int B, int T, float temperature, float *logp,
                             float *entropy) {
    return b->ops->forward_logprobs(b, tokens, B, T, temperature, logp, entropy);
}

void backend_backward_logprobs(backend *b, const float *dlogp) { b->ops->backward_logprobs(b, dlogp, NULL); }

void backend_backward_logprobs_entropy(backend *b, const float *dlogp, const float *dentropy) {
    b->ops->backward_logprobs(b, dlogp, dentropy);
}

void backend_zero_grad(backend *b) { b->ops->zero_grad(b); }

double backend_clip_grad_norm(backend *b, double max_norm) { return b->ops->clip_grad_norm(b, max_norm); }

int backend_adamw_step(backend *b, const adamw_hparams *h) {
    if (!b->opt) {
        fprintf(stderr, "%s:%d: backend_adamw_step on a backend created without an optimizer state\n", __FILE__,
                __LINE__);
        abort();
    }
    return b->ops->adamw_step(b, h);
}

int backend_generate(backend *b, const int *prompt, int P, int G, int max_new, const llama_sampling *s, uint64_t seed,
                     int *out, int *out_len, float *out_logp, char *err, size_t errlen) {
    return b->ops->generate(b, prompt, P, G, max_new, s, seed, out, out_len, out_logp, err, errlen);
}

int backend_upload(backend *b, int what) { return b->ops->upload(b, what); }

int backend_download(backend *b, int what) { return b->ops->download(b, what); }

void backend_get_memory(backend *b, backend_memory *mem) { b->ops->memory(b, mem); }

float *backend_grad_buffer(backend *b, size_t *n, int *on_device) { return b->ops->grad_buffer(b, n, on_device); }

void backend_reset_peak(backend *b) { b->ops->reset_peak(b); }
