/*
 * model/cuda/cuda_common.cuh: what the CUDA sources of model/cuda share: the checked-call macros
 * (cudaCheck, cublasCheck: print file:line, the failed call and a hint, then abort, as llm.c does),
 * the kernel-launch macro, the context struct behind llama_cuda_layers.h, its scratch buffers, and
 * the device helpers (bf16/fp32 loads and stores, warp and block reductions).
 *
 * Kernels are launched with cuda_launch(kernel, grid, block, smem_bytes, stream, args...), where
 * `kernel` is one identifier (a kernel name, or a local variable holding a template instance: a
 * template argument list would break the macro). With nvcc it is kernel<<<...>>>(args) followed by
 * a check of cudaGetLastError(). Built with GRPO2048_CUDA_EMU (tests/gpu/emu: the same sources
 * compiled by g++ against a CPU emulator of the CUDA runtime, for checking the kernels' logic on
 * machines without a GPU) it runs the grid on the CPU instead, one block at a time.
 *
 * Kernel rules that the emulator also relies on: blocks are multiples of 32 threads; warp
 * shuffles always use the full mask with all 32 lanes present; __syncthreads is reached by every
 * thread of the block (no early return before one); blocks never wait on each other.
 */
#ifndef GRPO2048_CUDA_COMMON_CUH
#define GRPO2048_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/cuda/llama_cuda.h"
#include "model/cuda/llama_cuda_layers.h"

typedef __nv_bfloat16 bf16;

/* ------------------------------------------------------------------------------------------------
 * Checked calls
 */

static inline void llama_cuda_check_(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "%s:%d: CUDA error %s (%s) in %s\n", file, line, cudaGetErrorName(e), cudaGetErrorString(e), call);
    if (e == cudaErrorMemoryAllocation)
        fprintf(stderr, "---> HINT: the device is out of memory: lower the batch size or the generation batch\n");
    else if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion)
        fprintf(stderr, "---> HINT: the build's CMAKE_CUDA_ARCHITECTURES (default 90-real;90-virtual) does not cover "
                        "this GPU, or the driver is older than the toolkit\n");
    abort();
}
#define cudaCheck(call) llama_cuda_check_((call), #call, __FILE__, __LINE__)

static inline void llama_cublas_check_(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "%s:%d: cuBLAS error %d (%s) in %s\n", file, line, (int)s, cublasGetStatusString(s), call);
    fprintf(stderr, "---> HINT: a matrix size, leading dimension or dtype combination cuBLAS does not accept\n");
    abort();
}
#define cublasCheck(call) llama_cublas_check_((call), #call, __FILE__, __LINE__)

/* Programming errors: file:line and abort. */
#define CUDA_ASSERT(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
    #cond); abort(); } } while (0)

#ifdef GRPO2048_CUDA_EMU
#define cuda_launch(kernel, grid, block, smem, stream, ...) \
    emu_launch((grid), (block), (size_t)(smem), [&]() { kernel(__VA_ARGS__); })
#define DYNAMIC_SMEM(type, name) type *name = (type *)emu_dynamic_smem()
#else
#define cuda_launch(kernel, grid, block, smem, stream, ...) do { \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__); cudaCheck(cudaGetLastError()); } while (0)
#define DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) unsigned char llama_smem_[]; \
    type *name = (type *)llama_smem_
#endif

/* Kernels that need more than the default 48 KiB of dynamic shared memory must be allowed to. */
#define SMEM_DEFAULT_LIMIT ((size_t)48 * 1024)
#define cuda_allow_smem(kernel, bytes) do { if ((size_t)(bytes) > SMEM_DEFAULT_LIMIT) \
    cudaCheck(cudaFuncSetAttribute((const void *)(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(bytes))); \
    } while (0)

static inline unsigned cdiv(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

/* ------------------------------------------------------------------------------------------------
 * The context
 */

/* Scratch buffers the layer functions grow on demand (each one allocation, reused). */
enum {
    SCR_NORM,      /* rmsnorm dw partials: (blocks, C) fp32 */
    SCR_ONES,      /* (n) ones in the activation dtype, for bias gradients */
    SCR_RED,       /* sum-of-squares partials (double) and result */
    SCR_EMB,       /* embedding backward: row permutation, segment starts and tokens (ints) */
    SCR_ATT,       /* attention scores / probabilities / their gradients, D, fp32 dK/dV */
    SCR_PTRS,      /* pointer arrays of batched cuBLAS calls */
    SCR_COUNT
};

struct llama_cuda_ctx {
    int device;
    int precision;             /* LLAMA_CUDA_FP32 / TF32 / BF16 */
    int act;                   /* LLAMA_CUDA_DT_F32 or LLAMA_CUDA_DT_BF16 */
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;             /* cuBLAS workspace (blas_ws_bytes) */
    size_t blas_ws_bytes;
    int num_sms;
    size_t smem_optin;         /* most dynamic shared memory a block may opt in to */
    size_t cur_bytes, peak_bytes;
    void *scr[SCR_COUNT];
    size_t scr_bytes[SCR_COUNT];
    size_t ones_n;             /* elements of SCR_ONES set to 1 */
    size_t att_budget;         /* attention score scratch budget in bytes (0: 2 GiB) */
    int *h_ints;               /* host scratch for embedding segments (h_ints_n ints) */
    size_t h_ints_n;
    /* training attention implementation (attention_impl.cu): LLAMA_CUDA_ATTN_NATIVE / _CUDNN, the cuDNN
     * state (attention_cudnn.h; NULL until cudnn is selected) and how many calls each path served */
    int attn_impl;
    struct llama_cudnn_attn *cudnn;
    long attn_cudnn_calls, attn_native_calls;
};

/* attention_impl.cu: runs the training attention through cuDNN when the context selected it and cuDNN
 * takes the shape (returns 1), else counts a native call and returns 0 (the caller runs its kernels). */
int llama_cuda_attn_try_cudnn_forward(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *k,
                                      const void *v, int B, int T, int NH, int NKV, int HS, int window);
int llama_cuda_attn_try_cudnn_backward(llama_cuda_ctx *ctx, void *dq, void *dk, void *dv, const void *dout,
                                       const void *q, const void *k, const void *v, const void *out, const float *lse,
                                       int B, int T, int NH, int NKV, int HS, int window);
/* Frees the context's cuDNN state (llama_cuda_ctx_free). */
void llama_cuda_attn_impl_free(llama_cuda_ctx *ctx);

/* Makes ctx->scr[slot] at least `bytes` (waits for the stream before freeing the old buffer).
 * 0, or -1 with err when the device is out of memory. */
int llama_cuda_scratch_reserve(llama_cuda_ctx *ctx, int slot, size_t bytes, char *err, size_t errlen);
/* The same, aborting when out of memory; returns the buffer. */
void *llama_cuda_scratch(llama_cuda_ctx *ctx, int slot, size_t bytes);
/* Makes sure SCR_ONES holds n ones in the activation dtype and returns it. */
const void *llama_cuda_ones(llama_cuda_ctx *ctx, size_t n);

/* Batched row-major products (cuda_ctx.cu): item i computes C[i] = alpha op(A[i]) op(B[i]) + beta C[i]
 * as llama_cuda_gemm does; A, B, C are device arrays of `count` device pointers. */
void llama_cuda_gemm_batched(llama_cuda_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha,
                             const void *const *A, int lda, const void *const *B, int ldb, float beta, void *const *C,
                             int ldc, int ab_dt, int c_dt, int count);

/* Bytes llama_cuda_attention_forward/backward keep in SCR_ATT and SCR_PTRS for these shapes, with a
 * score budget of `budget` bytes (0: the default). */
size_t llama_cuda_attention_scratch_bytes(size_t budget, int act, int B, int T, int NH, int NKV, int HS,
                                          size_t *ptr_bytes);
/* Bytes of SCR_NORM for an rmsnorm backward over N rows of C. */
size_t llama_cuda_norm_scratch_bytes(int N, int C);

/* ------------------------------------------------------------------------------------------------
 * Device helpers
 */

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float ldf(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float ldf(const bf16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void stf(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void stf(bf16 *p, size_t i, float v) { p[i] = __float2bfloat16(v); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

/* Sum over the block, the same value returned to every thread (warp sums, then every thread adds
 * the warp sums in warp order: deterministic). red: 32 floats of shared memory. Every thread of
 * the block must call it. */
__device__ __forceinline__ float block_sum(float v, float *red) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* earlier readers of red are done */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = 0.0f;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}
__device__ __forceinline__ double block_sum_d(double v, double *red) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}
__device__ __forceinline__ float block_max(float v, float *red) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = red[0];
    for (int i = 1; i < nw; i++) t = fmaxf(t, red[i]);
    return t;
}

#endif
