/*
 * model/cuda/llama_cuda_layers.h: the layer functions of the CUDA model, a C API over device
 * buffers. Each is the GPU twin of a function in model/llama_internal.h (same name without
 * "_cuda", same argument order and meaning), so tests/gpu can compare them layer by layer and
 * llama_cuda.cu reads like model/llama.c. All functions enqueue work on the context's stream and
 * return without waiting, except the h2d/d2h copies and llama_cuda_sync.
 *
 * The context (llama_cuda_ctx) holds the device, the stream, the cuBLAS handle, the precision and
 * the scratch buffers the layers grow on demand (attention scores, reduction partials, the ones
 * vector of bias gradients, pointer arrays). Activations are stored in the context's activation
 * dtype (llama_cuda_act_dtype: LLAMA_CUDA_DT_F32 for FP32/TF32, LLAMA_CUDA_DT_BF16 for BF16);
 * arguments typed `void *` hold that dtype unless an explicit dtype argument says otherwise, and
 * `float *` arguments are always fp32 (weights given as `const float *` are fp32 master weights,
 * matrix weights given as `const void *` are in the activation dtype).
 *
 * Shapes: N rows, C / IC / OC channels, NH / NKV heads, HS head dim, QD = NH*HS, KD = NKV*HS,
 * B sequences of length T, V vocabulary, R rows of a chunk. Row-major, weights (out, in).
 * Programming errors (dtype combinations not listed, sizes out of range) and failed CUDA calls
 * abort with file:line; growing a scratch buffer beyond the device's memory aborts too (the model
 * reserves its scratch up front and reports that as an error instead).
 */
#ifndef GRPO2048_LLAMA_CUDA_LAYERS_H
#define GRPO2048_LLAMA_CUDA_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* llama.h declares C functions without an extern "C" block of its own */
#ifdef __cplusplus
extern "C" {
#endif

#include "model/llama.h"

/* Storage dtypes. */
#define LLAMA_CUDA_DT_F32 0
#define LLAMA_CUDA_DT_BF16 1

typedef struct llama_cuda_ctx llama_cuda_ctx;

/* ---- context, memory, copies ---- */

/* Creates a context on `device` for precision LLAMA_CUDA_FP32 / TF32 / BF16 (llama_cuda.h): a
 * stream, a cuBLAS handle with a 32 MiB workspace. 0, or -1 with err (no such device, bad
 * precision, out of memory). */
int llama_cuda_ctx_create(llama_cuda_ctx **out, int device, int precision, char *err, size_t errlen);
void llama_cuda_ctx_free(llama_cuda_ctx *ctx);
int llama_cuda_ctx_precision(const llama_cuda_ctx *ctx);
/* LLAMA_CUDA_DT_BF16 for BF16 precision, else LLAMA_CUDA_DT_F32; and its size in bytes (2 or 4). */
int llama_cuda_act_dtype(const llama_cuda_ctx *ctx);
size_t llama_cuda_act_size(const llama_cuda_ctx *ctx);
/* Bytes the context's allocations hold now / at most since creation or the last reset. */
size_t llama_cuda_ctx_bytes(const llama_cuda_ctx *ctx);
size_t llama_cuda_ctx_peak_bytes(const llama_cuda_ctx *ctx);
void llama_cuda_ctx_reset_peak(llama_cuda_ctx *ctx);

/* Device allocation counted in the context's totals: 0, or -1 with err naming `what` and the size
 * when the device is out of memory. Memory is not initialized. */
int llama_cuda_malloc(llama_cuda_ctx *ctx, void **p, size_t bytes, const char *what, char *err, size_t errlen);
/* Frees p (NULL is fine); bytes must be the size it was allocated with. */
void llama_cuda_mfree(llama_cuda_ctx *ctx, void *p, size_t bytes);
/* Synchronous copies (wait for the stream first). */
void llama_cuda_h2d(llama_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
void llama_cuda_d2h(llama_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
/* n floats from the host into a device buffer of dtype dt (bf16: rounded to nearest even), and back. */
void llama_cuda_h2d_dt(llama_cuda_ctx *ctx, void *dst, int dt, const float *src, size_t n);
void llama_cuda_d2h_dt(llama_cuda_ctx *ctx, float *dst, const void *src, int dt, size_t n);
void llama_cuda_memset0(llama_cuda_ctx *ctx, void *p, size_t bytes);
void llama_cuda_sync(llama_cuda_ctx *ctx);

/* bf16 on the host: round to nearest even (NaN stays NaN), and back. */
uint16_t llama_cuda_f32_to_bf16(float x);
float llama_cuda_bf16_to_f32(uint16_t x);

/* dst (n, dtype dst_dt) = src (n, dtype src_dt), converting. */
void llama_cuda_convert(llama_cuda_ctx *ctx, void *dst, int dst_dt, const void *src, int src_dt, size_t n);

/* ---- matrix products (cuBLAS) ---- */

/* Row-major C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C; transA/transB: 0 or 1;
 * lda/ldb/ldc: row strides as stored. A and B have dtype ab_dt, C has c_dt. Compute: fp32
 * accumulation; TF32 tensor cores for fp32 inputs when the context's precision is TF32. */
void llama_cuda_gemm(llama_cuda_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha, const void *A,
                     int lda, const void *B, int ldb, float beta, void *C, int ldc, int ab_dt, int c_dt);

/* out (N, OC, dtype out_dt) = beta*out + inp (N, IC) @ w (OC, IC)^T + bias (OC fp32, or NULL). */
void llama_cuda_matmul_forward(llama_cuda_ctx *ctx, void *out, int out_dt, const void *inp, const void *w,
                               const float *bias, int N, int IC, int OC, float beta);
/* For out = inp @ w^T + bias: dinp (N, IC, dtype dinp_dt) = dinp_beta*dinp + dout @ w (skipped when
 * dinp is NULL); dw (OC, IC fp32) += dout^T @ inp; dbias (OC fp32) += column sums of dout (NULL:
 * skipped). dout (N, OC), inp, w in the activation dtype. */
void llama_cuda_matmul_backward(llama_cuda_ctx *ctx, void *dinp, int dinp_dt, float *dw, float *dbias,
                                const void *dout, const void *inp, const void *w, int N, int IC, int OC,
                                float dinp_beta);

/* ---- elementwise and row kernels ---- */

/* out (N, C, out_dt) = w * (inp * rstd), rstd (N fp32, or NULL) = 1/sqrt(mean(inp^2) + eps).
 * inp (N, C, inp_dt). dtypes (inp, out): (F32, F32), (F32, BF16), (BF16, BF16). out may be inp
 * when the dtypes are equal. */
void llama_cuda_rmsnorm_forward(llama_cuda_ctx *ctx, void *out, int out_dt, float *rstd, const void *inp, int inp_dt,
                                const float *w, int N, int C, float eps);
/* out = w * (inp * rstd) with a stored rstd (N). Same dtype combinations. */
void llama_cuda_rmsnorm_recompute(llama_cuda_ctx *ctx, void *out, int out_dt, const void *inp, int inp_dt,
                                  const float *rstd, const float *w, int N, int C);
/* d = rstd*(dout*w - xhat*mean(dout*w*xhat)) with xhat = inp*rstd, for N rows of C: dinp (N, C) =
 * (accumulate ? dinp + d : d); dinp_bf16 (N, C bf16, or NULL) gets a bf16 copy of the new dinp;
 * dw (C fp32) += sum_n dout*xhat (deterministic: per-block partials, then a fixed-order sum).
 * dinp, dout, inp all have dtype dt. */
void llama_cuda_rmsnorm_backward(llama_cuda_ctx *ctx, void *dinp, int accumulate, void *dinp_bf16, float *dw,
                                 const void *dout, const void *inp, const float *w, const float *rstd, int N, int C,
                                 int dt);

/* Rope tables for positions [0, npos): cos/sin (npos, HS/2) fp32, computed on the host exactly as
 * the CPU model does (llama_rope_inv_freq, angle = float(pos) * inv_freq, cosf/sinf) and copied to
 * the device buffers cos_d / sin_d. */
void llama_cuda_rope_tables(llama_cuda_ctx *ctx, const llama_config *c, int npos, float *cos_d, float *sin_d);
/* In-place rope on x (N, nheads*HS) (activation dtype): row i is at position start + i % period;
 * backward != 0 applies the inverse rotation (the gradient). Tables from llama_cuda_rope_tables
 * covering start + period positions. */
void llama_cuda_rope(llama_cuda_ctx *ctx, void *x, int N, int nheads, int HS, int start, int period, const float *cos_d,
                     const float *sin_d, int backward);

/* h (n) = silu(gate) * up. */
void llama_cuda_swiglu_forward(llama_cuda_ctx *ctx, void *h, const void *gate, const void *up, size_t n);
/* dgate (n) = dh * up * silu'(gate), dup (n) = dh * silu(gate); dgate may be dh. */
void llama_cuda_swiglu_backward(llama_cuda_ctx *ctx, void *dgate, void *dup, const void *dh, const void *gate,
                                const void *up, size_t n);

/* out (N, C fp32) = wte[tokens[n]] rows; tokens_d: (N) device ints in [0, V). */
void llama_cuda_embedding_forward(llama_cuda_ctx *ctx, float *out, const int *tokens_d, const float *wte, int N, int C);
/* dwte (V, C fp32) += dout (N, C fp32) rows at tokens_h (N host ints), skipping pad_id (-1: none).
 * Rows of one token are summed in row order (deterministic, no atomics). */
void llama_cuda_embedding_backward(llama_cuda_ctx *ctx, float *dwte, const float *dout, const int *tokens_h, int N,
                                   int C, int pad_id);

/* out (N, OC) += bias (OC fp32), out of dtype dt. */
void llama_cuda_add_bias(llama_cuda_ctx *ctx, void *out, int dt, const float *bias, int N, int OC);

/* ---- attention ---- */

/* Causal grouped-query attention over B sequences of length T (training / teacher forcing):
 * q (B*T, NH*HS), k/v (B*T, NKV*HS) -> out (B*T, NH*HS), lse (B, NH, T) fp32 log-sum-exp of the
 * scaled scores of each softmax row (as llama_attention_forward). window: sliding window or 0.
 * Scores S = Q K^T / sqrt(HS) and P V are batched cuBLAS products over (sequence, head), with the
 * masked softmax between them; sequences are processed in chunks so the (chunk, NH, T, T) score
 * scratch stays within 2 GiB (or one sequence). */
void llama_cuda_attention_forward(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *k,
                                  const void *v, int B, int T, int NH, int NKV, int HS, int window);
/* Sets the budget of the attention score scratch (default 0 = 2 GiB): sequences are processed in
 * chunks of as many as fit (at least one). For tests (a small budget exercises the chunking) and for
 * memory-tight runs. */
void llama_cuda_set_attention_budget(llama_cuda_ctx *ctx, size_t bytes);
/* The implementation of llama_cuda_attention_forward / _backward for this context:
 * LLAMA_CUDA_ATTN_NATIVE or LLAMA_CUDA_ATTN_CUDNN (llama_cuda.h's llama_cuda_set_attn_implementation,
 * which calls this). 0, or -1 with err (cudnn in a build without cuDNN or outside BF16 precision, cuDNN
 * failed to start, unknown value). */
int llama_cuda_ctx_set_attn_implementation(llama_cuda_ctx *ctx, int impl, char *err, size_t errlen);
/* Training-attention calls (forward and backward each count one) served by cuDNN and by the native
 * kernels since the context was made: a cudnn context's native count is its fallbacks. */
void llama_cuda_attn_counts(const llama_cuda_ctx *ctx, long *cudnn_calls, long *native_calls);
/* Gradient of llama_cuda_attention_forward (probabilities recomputed from lse): dq (B*T, NH*HS),
 * dk/dv (B*T, NKV*HS) are overwritten. out is the forward's output. */
void llama_cuda_attention_backward(llama_cuda_ctx *ctx, void *dq, void *dk, void *dv, const void *dout, const void *q,
                                   const void *k, const void *v, const void *out, const float *lse, int B, int T,
                                   int NH, int NKV, int HS, int window);
/* Attention of R row-blocks of n queries against a key/value cache (generation: prefill n = P
 * with R = 1, decode n = 1): query row i (of R*n) belongs to block r = i / n at position
 * start + i % n and attends to positions [max(0, pos-window+1), pos] of cache row crow_d[r]
 * (device ints; NULL: r), whose keys are kc + (crow*Tk + j)*KD + kh*HS (values likewise).
 * q (R*n, NH*HS) -> out (R*n, NH*HS); lse (R, NH, n) fp32 or NULL. A kernel of our own (one warp
 * per query row and head, key tiles of 32 in shared memory, online softmax); HS <= 256. */
void llama_cuda_attention_cached(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *kc,
                                 const void *vc, const int *crow_d, int R, int n, int start, int Tk, int NH, int NKV,
                                 int HS, int window);
/* Writes k, v (R*n, KD) into the caches kc, vc at (crow_d[i / n], start + i % n), as read above. */
void llama_cuda_kv_write(llama_cuda_ctx *ctx, void *kc, void *vc, const void *k, const void *v, const int *crow_d,
                         int R, int n, int start, int Tk, int KD);

/* ---- LM head ---- */

/* For rows n = r0 .. r0+nr-1 of a (B,T) batch whose logits (nr, V fp32) are given: unless
 * n % T == T-1, lse_out[n] = logsumexp(logits row), logp[n+1] = logits[tokens_d[n+1]] - lse,
 * entropy[n+1] (NULL: skipped) = lse - sum softmax*logits. logp, entropy, lse_out: (B*T) device. */
void llama_cuda_head_logprobs(llama_cuda_ctx *ctx, float *logp, float *entropy, float *lse_out, const float *logits,
                              const int *tokens_d, int r0, int nr, int V, int T);
/* dlogits (nr, V, activation dtype; may be logits when that is fp32) for the rows
 * n = rowidx_d[i] (i < nr): -d * p + d * onehot(tokens_d[n+1]) - e * p * (log p + H), d = dlogp_d[n+1],
 * p = softmax from lse_d[n]; the entropy term only when dent_d (device, N) is given: e = dent_d[n+1],
 * H = ent_d[n+1] (the forward's entropies; TRL's entropy bonus). */
void llama_cuda_head_dlogits(llama_cuda_ctx *ctx, void *dlogits, const float *logits, const int *rowidx_d, int nr,
                             const float *lse_d, const float *dlogp_d, const float *dent_d, const float *ent_d,
                             const int *tokens_d, int V);
/* dst (nr, C, dtype dt) = src rows idx_d[i] (src (*, C)); scatter: dst rows idx_d[i] = src (nr, C). */
void llama_cuda_gather_rows(llama_cuda_ctx *ctx, void *dst, const void *src, const int *idx_d, int nr, int C, int dt);
void llama_cuda_scatter_rows(llama_cuda_ctx *ctx, void *dst, const void *src, const int *idx_d, int nr, int C, int dt);

/* Sampling, one draw per row r < R from logits (R, V fp32; same_row != 0: every row reads row 0),
 * with the rules of llama_generate (llama.h: repetition penalty, temperature, top-k, top-p, min-p;
 * top-p's kept set walked in token order, see llama_cuda_generate): tok_d (R) device out, logp_d (R)
 * device out or NULL (log p of the token under the raw logits at temperature 1, or with
 * s->processed_logprobs under the distribution it was drawn from, as llama_sampling says). Row r uses the
 * stream g = rng_idx_d[r] (device ints; NULL: r): rng_d holds xoshiro256** states (4 uint64 each,
 * llama_rng layout) indexed by g, advanced once per non-greedy draw; seen_d (G, V) bytes or NULL:
 * row g's tokens so far for the repetition penalty (used when s->repetition_penalty is not 0 or 1;
 * the drawn token is marked). wbuf: (R, V) fp32 scratch. */
void llama_cuda_sample(llama_cuda_ctx *ctx, int *tok_d, float *logp_d, const float *logits, int same_row, int R, int V,
                       const llama_sampling *s, uint64_t *rng_d, const int *rng_idx_d, unsigned char *seen_d,
                       float *wbuf);

/* ---- optimizer ---- */

/* AdamW as trainer/optim.c's adamw_step for step t (>= 1, already incremented) on n parameters:
 * params, grads, m, v (n fp32); decay (n bytes, nonzero: decay this parameter; NULL: all);
 * params_bf16 (n bf16 or NULL) receives the updated weights rounded to bf16. */
void llama_cuda_adamw(llama_cuda_ctx *ctx, float *params, void *params_bf16, float *m, float *v, const float *grads,
                      const unsigned char *decay, size_t n, float lr, float beta1, float beta2, float eps,
                      float weight_decay, int64_t t);
/* sum of x[i]^2 over n fp32 (double accumulation, fixed order for a given n). Waits for the result. */
double llama_cuda_sumsq(llama_cuda_ctx *ctx, const float *x, size_t n);
/* x (n fp32) *= c. */
void llama_cuda_scale(llama_cuda_ctx *ctx, float *x, size_t n, float c);

#ifdef __cplusplus
}
#endif

#endif
