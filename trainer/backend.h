/*
 * trainer/backend.h: the one interface through which the trainer's commands (train, sft, generate)
 * run the model, on the CPU (model/llama.h) or on an NVIDIA GPU (model/cuda/llama_cuda.h).
 *
 * A backend wraps a host llama_model (loaded or randomly initialized by the trainer as before) and,
 * for a model that is trained, the host AdamW state (trainer/optim.h). The host copies stay the
 * source of truth for files: checkpoints, the final model and the reference model are saved from
 * them, and a resumed run loads into them. So:
 *   - the CPU backend computes on the host model and the host optimizer state directly (upload and
 *     download do nothing);
 *   - the CUDA backend copies both to the device when it is created (or on backend_upload, e.g.
 *     after the host weights were changed), computes there, and copies them back on backend_download
 *     (before a checkpoint or a save, or before the host reads the weights).
 * Checkpoints are therefore the same files on both devices, and a run may resume on the other one.
 *
 * The trainer chooses a backend once (backend_create: device "auto" | "cpu" | "cuda") and then only
 * calls the functions below; it never branches on which backend it has. The operations and their
 * meaning are those of the CPU model (llama.h) and trainer/optim.c, which the CUDA model reproduces:
 *   forward_logprobs  teacher-forced log p(token) (and entropy) of a (B,T) batch, keeping what the
 *                     backward pass needs;
 *   backward          accumulates (+=) the gradients of sum(dlogp * logp);
 *   zero_grad, clip_grad_norm (torch.nn.utils.clip_grad_norm_), adamw_step (torch.optim.AdamW with
 *                     bias correction, weight decay only on matrices: llama_tensor.decay);
 *   generate          llama_generate_ex's semantics (llama_sampling; row g draws from the stream
 *                     seeded from (seed, g));
 *   memory            bytes held now and at the peak, and the device's (or machine's) total / free.
 *
 * Which backends a binary has: the CPU one always; the CUDA one when the executable links
 * trainer/backend_cuda.c and a CUDA library (model_cuda for a GPU, model_cuda_emu for the CPU
 * emulator of CUDA used by tests). backend.c refers to backend_cuda.c's entry points through weak
 * symbols, so the trainer library itself needs no CUDA; CMakeLists.txt adds backend_cuda.c to the
 * executables (grpo2048 when GRPO2048_HAVE_CUDA, grpo2048_emu) as a source file, not through a
 * static library, where a weak reference would not pull it in.
 *
 * One backend serves one call at a time (as the models do). Errors users can cause (no device, out
 * of device memory, a bad token) return -1 with a message in b->err (or err); programming errors
 * abort with file:line.
 */
#ifndef GRPO2048_BACKEND_H
#define GRPO2048_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/llama.h"
#include "trainer/optim.h"

/* What backend_download / backend_upload copy. */
#define BACKEND_PARAMS    1   /* the weights */
#define BACKEND_OPTIMIZER 2   /* the AdamW moments and step count (backends created with an optimizer) */
#define BACKEND_ALL       3

/* Precision of a CUDA backend (llama_cuda.h's LLAMA_CUDA_FP32 / TF32 / BF16); the CPU is always fp32. */
#define BACKEND_FP32 0
#define BACKEND_TF32 1
#define BACKEND_BF16 2

typedef struct {
    size_t current_bytes;   /* what this model holds now: weights, gradients, moments, activations */
    size_t peak_bytes;      /* the most it held since creation or backend_reset_peak */
    size_t total_bytes;     /* the device's memory (CUDA) or the machine's (CPU) */
    size_t free_bytes;      /* free on the device (all processes) or available on the machine */
} backend_memory;

typedef struct backend backend;

/* The operations a backend implements (see the top of this file; the wrappers below document them). */
typedef struct {
    const char *name;       /* "cpu" or "cuda" */
    int (*forward_logprobs)(backend *b, const int *tokens, int B, int T, float temperature, float *logp,
                            float *entropy);
    void (*backward_logprobs)(backend *b, const float *dlogp, const float *dentropy);
    void (*zero_grad)(backend *b);
    double (*clip_grad_norm)(backend *b, double max_norm);
    int (*adamw_step)(backend *b, const adamw_hparams *h);
    int (*generate)(backend *b, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                    uint64_t seed, int *out, int *out_len, float *out_logp, char *err, size_t errlen);
    int (*upload)(backend *b, int what);
    int (*download)(backend *b, int what);
    void (*memory)(backend *b, backend_memory *mem);
    void (*reset_peak)(backend *b);
    void (*destroy)(backend *b);
    int (*set_attn_implementation)(backend *b, const char *impl);   /* backend_set_attn_implementation */
    float *(*grad_buffer)(backend *b, size_t *n, int *on_device);
} backend_ops;

struct backend {
    const backend_ops *ops;
    llama_model *model;          /* the host model (owned by the caller) */
    adamw_state *opt;            /* the host optimizer state (owned by the caller), NULL when not trained */
    int precision;               /* BACKEND_FP32 / TF32 / BF16 */
    char description[320];       /* one line for the start-up message: "cpu: OpenBLAS 0.3.21, Haswell kernels,
                                    2 threads" / "cuda: NVIDIA H100 ..., 79.1 GiB, precision bf16" */
    char err[512];               /* message of the last failed call */
    void *impl;                  /* the backend's own state */
};

/* 1 when this binary has the CUDA backend (it was linked with trainer/backend_cuda.c). */
int backend_have_cuda(void);

/* The device "auto" resolves to: "cuda" when the binary has the CUDA backend and
 * llama_cuda_device_count() > 0, else "cpu". "cpu" and "cuda" are returned as they are. Starts the
 * CUDA runtime (no context): call it after forking worker processes. */
const char *backend_resolve_device(const char *device);

/* Creates the backend for device ("auto" | "cpu" | "cuda", as the config key) over the host model m
 * and, when the model is trained, its host optimizer state opt (NULL: forward passes and generation
 * only). precision (BACKEND_FP32 / TF32 / BF16) applies to CUDA; the CPU computes in fp32 whatever
 * it is. The CUDA backend copies m's weights and opt's moments (when opt->t > 0) to the device.
 * Returns 0, or -1 with a message in err: "cuda" in a binary without the CUDA backend, no usable
 * CUDA device, out of (device) memory, a model the CUDA kernels do not support. b is zeroed then. */
int backend_create(backend *b, const char *device, int precision, llama_model *m, adamw_state *opt, char *err,
                   size_t errlen);

/* Frees what the backend owns (not the host model or optimizer state) and zeroes b. Safe on a zeroed b. */
void backend_free(backend *b);

/* BACKEND_BF16 when bf16, else BACKEND_TF32 when tf32, else BACKEND_FP32 (the config keys). */
int backend_precision(int tf32, int bf16);

/* "fp32", "tf32", "bf16". */
const char *backend_precision_name(int precision);

/* Teacher-forced log-probabilities: tokens (B,T) host ints in [0,V); logp (B,T) out, logp[b,t] =
 * log p(tokens[b,t] | tokens[b,<t]) at `temperature` (logits / temperature, as TRL's GRPOTrainer computes
 * its training log-probabilities), logp[b,0] = 0; entropy (B,T) out or NULL, of the same tempered
 * distribution. Keeps the activations backend_backward_logprobs needs.
 * Returns 0, or -1 (bad B/T/token, temperature not > 0, out of memory) with the message in b->err. */
int backend_forward_logprobs(backend *b, const int *tokens, int B, int T, float temperature, float *logp,
                             float *entropy);

/* dlogp (B,T) host: accumulates (+=) the gradients. Must follow a successful forward on the same batch. */
void backend_backward_logprobs(backend *b, const float *dlogp);

/* The same with dentropy (B,T) host or NULL: dLoss/dentropy of the forward's entropies (TRL's entropy bonus;
 * the forward must have returned the entropies). */
void backend_backward_logprobs_entropy(backend *b, const float *dlogp, const float *dentropy);

void backend_zero_grad(backend *b);

/* Global L2 norm of the gradients; when max_norm > 0 and the norm exceeds it, the gradients are
 * scaled by max_norm / (norm + 1e-6). Returns the norm before clipping. */
double backend_clip_grad_norm(backend *b, double max_norm);

/* One AdamW step with h (trainer/optim.c's adamw_step: decoupled decay on matrices, bias-corrected
 * moments; the step count is the optimizer state's). Needs a backend created with opt.
 * Returns 0, or -1 with b->err (out of device memory for the moments). */
int backend_adamw_step(backend *b, const adamw_hparams *h);

/* llama_generate_ex on the backend: prompt (P,) prefilled once, G rows decoded in lockstep, sampling
 * as s says, row g's stream seeded from (seed, g). out (G, max_new), out_len (G,), out_logp
 * (G, max_new) or NULL, all host. Returns 0, or -1 with err. */
int backend_generate(backend *b, const int *prompt, int P, int G, int max_new, const llama_sampling *s, uint64_t seed,
                     int *out, int *out_len, float *out_logp, char *err, size_t errlen);

/* Copies the host model's weights (BACKEND_PARAMS) and/or the host optimizer state
 * (BACKEND_OPTIMIZER) to the backend, e.g. after the host weights changed. Returns 0 or -1 with b->err. */
int backend_upload(backend *b, int what);

/* Copies the backend's weights and/or optimizer state back into the host model / optimizer state,
 * e.g. before a checkpoint. Returns 0 or -1 with b->err. */
int backend_download(backend *b, int what);

/* The gradient buffer the backend accumulates into: (n = num_params) floats in the host model's layout, a
 * host pointer (CPU) or a device pointer (CUDA, *on_device = 1), for the data-parallel all-reduce
 * (trainer/dist.h: dist_allreduce_grads) between the last backward pass and clip_grad_norm. */
float *backend_grad_buffer(backend *b, size_t *n, int *on_device);

void backend_get_memory(backend *b, backend_memory *mem);
void backend_reset_peak(backend *b);

/* The training attention (config key attn_implementation, transformers' name): "native" (our kernels,
 * every backend) or "cudnn" (cuDNN's fused flash attention: the CUDA backend in bf16, in a binary built
 * with cuDNN; model/cuda/attention_cudnn.c, docs/gpu.md). Applies from the next forward pass. Returns 0,
 * or -1 with b->err naming the key and what was expected: cudnn on the CPU backend, in a build without
 * cuDNN, outside bf16 precision, or an unknown name. As transformers, an unavailable implementation is an
 * error, not a silent substitution; shapes cuDNN rejects at run time fall back to native with a note. */
int backend_set_attn_implementation(backend *b, const char *impl);

#endif
