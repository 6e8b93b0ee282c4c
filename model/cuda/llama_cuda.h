/*
 * model/cuda/llama_cuda.h: the Llama-family model of model/llama.h on an NVIDIA GPU (CUDA, cuBLAS).
 *
 * The CPU model (model/llama.h) is the reference; this is the same model with the same lifecycle
 * and the same indexing, read side by side with it as llm.c's train_gpt2.cu reads against
 * train_gpt2.c:
 *
 *   llama_model m;          llama_load / llama_init_random (CPU, fp32)
 *   llama_cuda_model cm;    llama_cuda_create(&cm, &m, device, precision, ...)  copies the weights
 *   llama_cuda_forward_logprobs / llama_cuda_backward_logprobs / llama_cuda_clip_grad_norm /
 *   llama_cuda_adamw_step   (one GRPO or SFT micro-batch / optimizer step, all on the device)
 *   llama_cuda_generate     (prompt prefilled once, KV copied to G rows, lockstep decode)
 *   llama_cuda_download     (params / grads back into m, for llama_save and checkpoints)
 *   llama_cuda_free
 *
 * Precision (LLAMA_CUDA_FP32 / TF32 / BF16):
 *   FP32: fp32 weights and activations, cuBLAS CUBLAS_COMPUTE_32F (no tensor-core rounding).
 *   TF32: as FP32, matrix products with CUBLAS_COMPUTE_32F_FAST_TF32 (inputs rounded to 10-bit
 *         mantissas, fp32 accumulation): config `tf32: true`.
 *   BF16: matrix products on a bf16 copy of the weights (refreshed by every AdamW step) and bf16
 *         activations (norm outputs, q/k/v, attention output and probabilities, MLP hidden, their
 *         gradients), fp32 accumulation everywhere; the residual stream, norm statistics, logits,
 *         log-softmax, master weights, gradients and AdamW moments stay fp32: config `bf16: true`.
 *
 * Memory: parameters, gradients and AdamW moments (m then v) are each one device allocation with
 * the layout of llama_model.params (so a tensor's offset is the same on both sides); training
 * activations are one allocation that grows to the largest B*T seen (every layer's, or with
 * gradient checkpointing each layer's input and one layer's worth); generation buffers (KV cache
 * for G rows) one more. llama_cuda_get_memory reports current and peak bytes.
 *
 * Errors: what users can cause (bad tokens, T too long, out of device memory, no device) returns -1
 * with a message (in cm->err or err); programming errors and failed CUDA / cuBLAS calls abort with
 * file:line (cudaCheck / cublasCheck in cuda_common.cuh).
 *
 * Shapes as in llama.h: B batch rows, T sequence length, C hidden, V vocabulary, G generated rows,
 * P prompt length. One model serves one call at a time (one CUDA stream, shared buffers).
 */
#ifndef GRPO2048_LLAMA_CUDA_H
#define GRPO2048_LLAMA_CUDA_H

#include <stddef.h>
#include <stdint.h>

/* llama.h declares C functions without an extern "C" block of its own */
#ifdef __cplusplus
extern "C" {
#endif

#include "model/llama.h"

/* Precision modes (see the top of this file). */
#define LLAMA_CUDA_FP32 0
#define LLAMA_CUDA_TF32 1
#define LLAMA_CUDA_BF16 2

/* Largest head_dim the CUDA attention kernels support. */
#define LLAMA_CUDA_MAX_HEAD_DIM 256

/* AdamW hyperparameters, as trainer/optim.h's adamw_hparams (torch.optim.AdamW semantics). */
typedef struct { float lr, beta1, beta2, eps, weight_decay; } llama_cuda_adamw_hparams;

typedef struct {
    size_t current_bytes;      /* device memory this model holds now (its own cudaMalloc calls) */
    size_t peak_bytes;         /* the most it held since creation or llama_cuda_reset_peak */
    size_t device_free_bytes;  /* cudaMemGetInfo: free on the device (all processes) */
    size_t device_total_bytes; /* cudaMemGetInfo: total */
} llama_cuda_memory;

struct llama_cuda_ctx;   /* stream, cuBLAS handle, scratch (llama_cuda_layers.h) */
struct llama_cuda_state; /* private: activations, rope tables, generation buffers */

typedef struct llama_cuda_model {
    llama_config cfg;
    int precision;               /* LLAMA_CUDA_FP32 / TF32 / BF16 */
    int device;                  /* CUDA device ordinal */
    size_t num_params;
    float *params;               /* device (num_params) fp32 master weights, layout of llama_model.params */
    float *grads;                /* device (num_params) fp32 gradients, same layout, zeroed at creation */
    float *adam_m;               /* device (num_params) AdamW first moment (NULL until the first step/set) */
    float *adam_v;               /* device (num_params) second moment, same allocation as adam_m */
    void *params_bf16;           /* device (num_params) bf16 copy of params (BF16 precision only, else NULL) */
    int64_t adam_t;              /* AdamW steps taken */
    llama_weights w;             /* named device pointers into params (lm_head == wte when tied) */
    llama_weights g;             /* the same names into grads */
    char err[256];               /* message of the last failed llama_cuda_forward_logprobs */
    int gradient_checkpointing;  /* 0 (default) or 1: llama_cuda_set_gradient_checkpointing */
    struct llama_cuda_ctx *ctx;
    struct llama_cuda_state *state;
} llama_cuda_model;

/* Number of usable CUDA devices: 0 when there is none, no driver, or the runtime fails to start
 * (the error is cleared, nothing is printed). */
int llama_cuda_device_count(void);

/* Writes device `device`'s name, compute capability, multiprocessor count and memory to buf (one
 * line). Returns 0, or -1 with a message in buf when there is no such device. */
int llama_cuda_device_info(int device, char *buf, size_t len);

/* Creates the device model for the loaded CPU model m: copies m->params (m is not modified and may
 * be freed afterwards) and m->gradient_checkpointing, zeroes the gradients, and builds the rope
 * tables and the weight-decay mask (m->tensors' decay flags). precision: LLAMA_CUDA_FP32 / TF32 /
 * BF16. Returns 0, or -1 with err (no such device, head_dim above LLAMA_CUDA_MAX_HEAD_DIM, bad
 * precision, out of device memory); cm is then zeroed. */
int llama_cuda_create(llama_cuda_model *cm, const llama_model *m, int device, int precision, char *err,
                      size_t errlen);

/* Frees everything cm owns and zeroes it. Safe on a zeroed model. */
void llama_cuda_free(llama_cuda_model *cm);

/* Copies m->params to the device (and refreshes the bf16 copy), e.g. after loading a checkpoint.
 * m must have the same configuration. 0, or -1 with err (parameter count differs). */
int llama_cuda_upload_params(llama_cuda_model *cm, const llama_model *m, char *err, size_t errlen);

/* Copies the device parameters (params != 0) and/or gradients (grads != 0) into m->params /
 * m->grads, for llama_save and checkpoints. 0, or -1 with err (parameter count differs). */
int llama_cuda_download(const llama_cuda_model *cm, llama_model *m, int params, int grads, char *err, size_t errlen);

/* Sets all gradients to 0. */
void llama_cuda_zero_grad(llama_cuda_model *cm);

/* Teacher-forced log-probabilities, as llama_forward_logprobs: tokens (B,T) host ints in [0,V);
 * logp (B,T) host out, logp[b,t] = log p(tokens[b,t] | tokens[b,<t]) for t>=1, logp[b,0]=0;
 * entropy (B,T) host out or NULL (nats; entropy[b,0]=0). Logits are materialized a chunk of rows x V
 * at a time (at most 256 MiB). Keeps the activations llama_cuda_backward_logprobs needs.
 * Returns 0, or -1 (B or T < 1, T > max_position_embeddings, token out of range, out of device
 * memory) with the message in cm->err. */
int llama_cuda_forward_logprobs(llama_cuda_model *cm, const int *tokens, int B, int T, float *logp, float *entropy);

/* As llama_cuda_forward_logprobs, with the logits divided by temperature (finite, > 0; else -1 with cm->err)
 * as TRL's GRPOTrainer computes training log-probabilities (llama.h llama_forward_logprobs_t); the next
 * llama_cuda_backward_logprobs differentiates the same tempered log-probabilities. */
int llama_cuda_forward_logprobs_t(llama_cuda_model *cm, const int *tokens, int B, int T, float temperature, float *logp,
                                  float *entropy);

/* dlogp: (B,T) host dLoss/dlogp (0 where masked; column t=0 ignored). Accumulates (+=) the
 * parameter gradients on the device. Must follow a successful llama_cuda_forward_logprobs (aborts
 * with file:line otherwise). Rows whose dlogp is 0 cost nothing in the LM head. */
void llama_cuda_backward_logprobs(llama_cuda_model *cm, const float *dlogp);

/* As llama_cuda_backward_logprobs, plus dentropy (B,T) host or NULL: dLoss/dentropy of the entropies the
 * forward returned (llama.h llama_backward_logprobs_entropy; TRL's entropy bonus). The forward must have
 * been asked for the entropies (aborts with file:line otherwise). */
void llama_cuda_backward_logprobs_entropy(llama_cuda_model *cm, const float *dlogp, const float *dentropy);

/* Global L2 norm of the gradients (accumulated in double); when max_norm > 0 and the norm exceeds
 * it, the gradients are scaled by max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_).
 * Returns the norm before clipping. */
double llama_cuda_clip_grad_norm(llama_cuda_model *cm, double max_norm);

/* One AdamW step on the device, exactly trainer/optim.c's adamw_step (torch.optim.AdamW): decoupled
 * decay p -= lr*wd*p for tensors with decay (matrices), then the bias-corrected Adam update; the
 * bf16 weight copy is refreshed. The moments are allocated (zeroed) at the first call. Returns 0,
 * or -1 with err (out of device memory for the moments). */
int llama_cuda_adamw_step(llama_cuda_model *cm, const llama_cuda_adamw_hparams *h, char *err, size_t errlen);

/* Copies the AdamW state to the host: m, v (num_params) each, t. Moments not allocated yet: zeros.
 * llama_cuda_adamw_set loads it (for resuming): 0, or -1 with err (out of device memory). */
void llama_cuda_adamw_get(const llama_cuda_model *cm, float *m, float *v, int64_t *t);
int llama_cuda_adamw_set(llama_cuda_model *cm, const float *m, const float *v, int64_t t, char *err, size_t errlen);

/* Batched generation on the device, as llama_generate_ex (same arguments, same meaning): the
 * prompt is prefilled once and its KV cache copied to G rows; all rows decode in lockstep, finished
 * rows (a stop id: s->stop_ids, else the config's eos ids; or max_new) are dropped from the work;
 * sampling runs on the GPU in transformers' order (repetition penalty over the row's prompt and
 * tokens so far, temperature, top-k keeping ties with the k-th largest, top-p, min-p, multinomial);
 * row g draws from the xoshiro256** stream llama_rng_seed(seed, g), as on the CPU.
 * Differences from the CPU: (1) with top_p < 1 the kept set is the same (the smallest set by
 * descending probability, ties by lower index, whose mass is >= top_p, masses compared in 2^-40
 * fixed point), but the draw walks it in token-id order instead of descending probability, so a
 * given random number may pick another token of the same distribution; (2) logits differ from the
 * CPU's by float rounding (~1e-6 in fp32, more in TF32/BF16).
 * out: (G, max_new) host tokens (stop id included, rest -1); out_len: (G,) host; out_logp:
 * (G, max_new) host or NULL: log p(token) under the raw logits at temperature 1 (with s->processed_logprobs:
 * under the distribution it was drawn from, as llama_sampling says), 0 after out_len.
 * Returns 0, or -1 with err (bad arguments as llama_generate, out of device memory). */
int llama_cuda_generate(llama_cuda_model *cm, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                        uint64_t seed, int *out, int *out_len, float *out_logp, char *err, size_t errlen);

/* Current / peak device bytes of this model, and the device's free / total memory. */
void llama_cuda_get_memory(const llama_cuda_model *cm, llama_cuda_memory *mem);

/* Starts a new peak measurement at the current usage (e.g. once per training step). */
void llama_cuda_reset_peak(llama_cuda_model *cm);

/* Gradient checkpointing, as llama_set_gradient_checkpointing (model/llama.h): on != 0 keeps only
 * each decoder layer's input (fp32 residual, N x C per layer) plus one layer's worth of activations
 * on the device, and the backward recomputes each layer's activations from its input right before
 * its backward (the same kernels on the same inputs, so the results match the mode off: bitwise on
 * the CPU emulator, and on a GPU as far as its kernels are deterministic). Costs about one extra
 * forward pass of the decoder layers per backward. Off by default; takes effect at the next
 * forward. llama_cuda_get_memory's figures and llama_cuda_training_bytes_ex reflect it. */
void llama_cuda_set_gradient_checkpointing(llama_cuda_model *cm, int on);

/* Device bytes llama_cuda_forward_logprobs + llama_cuda_backward_logprobs need for a (B,T) batch
 * beyond parameters, gradients and moments: activations, logits chunk, attention scratch, reduction
 * scratch; with gradient checkpointing off (llama_cuda_training_bytes) or as given (_ex). For
 * choosing micro-batch sizes. */
size_t llama_cuda_training_bytes(const llama_config *c, int precision, int B, int T);
size_t llama_cuda_training_bytes_ex(const llama_config *c, int precision, int B, int T, int gradient_checkpointing);

/* Training attention implementations (config key attn_implementation, transformers' name). */
#define LLAMA_CUDA_ATTN_NATIVE 0   /* our kernels (attention.cu): every precision, window and shape */
#define LLAMA_CUDA_ATTN_CUDNN 1    /* cuDNN's fused flash attention (attention_cudnn.c): BF16 precision only */

/* Selects the implementation of the training attention (llama_cuda_attention_forward / _backward; the
 * generation's cached attention is always ours). LLAMA_CUDA_ATTN_CUDNN needs a build with cuDNN
 * (llama_cuda_cudnn_version() > 0) and precision BF16, and starts a cuDNN handle on the model's stream;
 * shapes cuDNN refuses at run time (sliding window, head_dim not a multiple of 8 or above 256, a graph no
 * engine accepts) then run natively with one stderr note per shape. Returns 0, or -1 with err naming the
 * key attn_implementation and what was missing (as transformers, which raises when an implementation is
 * unavailable). Unverified on a GPU yet (docs/gpu.md). */
int llama_cuda_set_attn_implementation(llama_cuda_model *cm, int impl, char *err, size_t errlen);

/* cuDNN's version as cudnnGetVersion() reports it (e.g. 92600) in a build linked with cuDNN, else 0. */
int llama_cuda_cudnn_version(void);

/* Device bytes llama_cuda_generate needs for G rows of P + max_new positions beyond the weights. */
size_t llama_cuda_generation_bytes(const llama_config *c, int precision, int P, int G, int max_new);

#ifdef __cplusplus
}
#endif

#endif
