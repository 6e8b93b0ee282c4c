/*
 * model/cuda/attention_cudnn.h: the training attention through cuDNN's fused flash attention (the
 * `attn_implementation: cudnn` of llama_cuda.h), built from cuDNN 9's backend (graph) API in
 * attention_cudnn.c. Plain C over device buffers, compiled only into the real CUDA build when CMake
 * finds cuDNN (GRPO2048_HAVE_CUDNN); model/cuda/attention_impl.cu calls it from
 * llama_cuda_attention_forward / _backward and falls back to the native kernels (attention.cu)
 * whenever a call here returns 1.
 *
 * Shapes and layouts are exactly those of llama_cuda_attention_forward / _backward
 * (llama_cuda_layers.h): B sequences of length T, NH query heads, NKV key/value heads (NH % NKV == 0,
 * query head h reads kv head h / (NH/NKV)), head size HS; q, out, dout, dq: (B*T, NH*HS) bf16
 * row-major; k, v, dk, dv: (B*T, NKV*HS) bf16; lse: (B, NH, T) fp32, the natural-log log-sum-exp of
 * each softmax row of the scaled scores S = Q K^T / sqrt(HS) under the causal mask (what the native
 * path writes: either path's backward accepts the other's forward).
 */
#ifndef GRPO2048_ATTENTION_CUDNN_H
#define GRPO2048_ATTENTION_CUDNN_H

#include <stddef.h>

#include "model/cuda/llama_cuda_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llama_cudnn_attn llama_cudnn_attn;

/* Creates the cuDNN state for a context: a cuDNN handle bound to `stream` (a cudaStream_t), an empty
 * cache of execution plans, a device workspace that grows on demand through llama_cuda_malloc (so it
 * counts in ctx's memory figures). Returns 0, or -1 with err (cuDNN fails to start: its message and the
 * versions compiled against and loaded). */
int llama_cudnn_attn_create(llama_cudnn_attn **out, llama_cuda_ctx *ctx, void *stream, char *err, size_t errlen);

/* Destroys the plans and the handle and frees the workspace (waits for the stream). NULL is fine. */
void llama_cudnn_attn_free(llama_cudnn_attn *a);

/* cudnnGetVersion() of the loaded library (e.g. 92600 for 9.26.0). */
size_t llama_cudnn_attn_version(void);

/* Forward: out (B*T, NH*HS), lse (B, NH, T) from q, k, v (shapes above), causal, scale 1/sqrt(HS).
 * Formula: O = softmax(mask(Q K^T * scale)) V per (sequence, head), lse = max + log(sum exp), as the
 * composite SDPA forward of cuDNN's frontend (cudnn-frontend include/cudnn_frontend/node/
 * scaled_dot_product_flash_attention.h, CompositeSDPANode::expand_node; softmax.h, CompositeSoftmaxNode).
 * act_dt: the buffers' dtype (LLAMA_CUDA_DT_*). Returns 0 when cuDNN computed it, or 1 when it did not
 * (act_dt not bf16, window > 0, HS not a multiple of 8 or above 256, cuDNN refused the graph or no
 * engine finalized, execution failed): nothing was written and the caller runs the native kernels; a
 * refusal prints one line on stderr once per shape and is remembered. */
int llama_cudnn_attn_forward(llama_cudnn_attn *a, int act_dt, void *out, float *lse, const void *q, const void *k,
                             const void *v, int B, int T, int NH, int NKV, int HS, int window);

/* Backward: dq (B*T, NH*HS), dk, dv (B*T, NKV*HS) overwritten, from dout, q, k, v, out (the forward's
 * output) and lse (B, NH, T). dS = P * (dP - rowsum(dO * O)) * scale with P = exp(S - lse) masked,
 * dQ = dS K, dK = dS^T Q, dV = P^T dO summed over each kv head's query heads, as the composite SDPA
 * backward of cuDNN's frontend (CompositeSDPABackwardNode::expand_node, same file). Returns 0 or 1 as
 * llama_cudnn_attn_forward. */
int llama_cudnn_attn_backward(llama_cudnn_attn *a, int act_dt, void *dq, void *dk, void *dv, const void *dout,
                              const void *q, const void *k, const void *v, const void *out, const float *lse, int B,
                              int T, int NH, int NKV, int HS, int window);

/* Builds the operations of both graphs for a shape and finalizes each one (tensors, pointwise, matmul,
 * reduction and reshape descriptors), stopping before the operation graph, which needs a cuDNN handle
 * and so a GPU: a host-only check that every attribute has the name, type and value cuDNN expects
 * (tools/check_cudnn_compile.sh). 0 with err = the operation counts, or -1 with err naming the graph, the
 * shape and the first failure. */
int llama_cudnn_attn_check_ops(int B, int T, int NH, int NKV, int HS, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
