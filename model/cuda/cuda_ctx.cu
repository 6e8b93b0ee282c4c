/*
 * model/cuda/cuda_ctx.cu: the CUDA context of llama_cuda_layers.h (device, stream, cuBLAS handle,
 * counted allocations, scratch buffers), host/device copies with bf16 conversion, and the matrix
 * products: every product of the model is one cuBLAS call made through llama_cuda_gemm (or its
 * batched form in attention.cu).
 *
 * Row-major products on column-major cuBLAS (as llm.c does): a row-major (M, N) matrix with row
 * stride ld is, read column-major, its transpose (N, M) with leading dimension ld. So row-major
 * C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cublasGemmEx(opB, opA, N, M, K, B, ldb,
 * A, lda, C, ldc) with opX = CUBLAS_OP_T exactly when X is transposed in the row-major product.
 *
 * Compute types: fp32 inputs use CUBLAS_COMPUTE_32F (FP32 precision: no tensor-core rounding) or
 * CUBLAS_COMPUTE_32F_FAST_TF32 (TF32 precision); bf16 inputs use CUBLAS_COMPUTE_32F (fp32
 * accumulation) and may write bf16 or fp32 outputs.
 */
#include <string.h>

#include "model/cuda/cuda_common.cuh"

/* ------------------------------------------------------------------------------------------------
 * Context
 */

extern "C" int llama_cuda_ctx_create(llama_cuda_ctx **out, int device, int precision, char *err, size_t errlen) {
    *out = NULL;
    if (precision != LLAMA_CUDA_FP32 && precision != LLAMA_CUDA_TF32 && precision != LLAMA_CUDA_BF16) {
        snprintf(err, errlen, "precision: %d is not LLAMA_CUDA_FP32 (0), LLAMA_CUDA_TF32 (1) or LLAMA_CUDA_BF16 (2)",
                 precision);
        return -1;
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || device < 0 || device >= n) {
        cudaGetLastError();
        snprintf(err, errlen, "CUDA device %d: not available (%d device(s)%s%s)", device, e == cudaSuccess ? n : 0,
                 e == cudaSuccess ? "" : ": ", e == cudaSuccess ? "" : cudaGetErrorString(e));
        return -1;
    }
    cudaCheck(cudaSetDevice(device));
    llama_cuda_ctx *ctx = (llama_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    ctx->device = device;
    ctx->precision = precision;
    ctx->act = precision == LLAMA_CUDA_BF16 ? LLAMA_CUDA_DT_BF16 : LLAMA_CUDA_DT_F32;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    ctx->num_sms = prop.multiProcessorCount;
    ctx->smem_optin = prop.sharedMemPerBlockOptin;
    cudaCheck(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    cublasCheck(cublasCreate(&ctx->blas));
    cublasCheck(cublasSetStream(ctx->blas, ctx->stream));
    cublasCheck(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH));
    /* a workspace of our own keeps cuBLAS from allocating during a call (and makes the calls
     * capturable in CUDA graphs) */
    ctx->blas_ws_bytes = (size_t)32 << 20;
    if (llama_cuda_malloc(ctx, &ctx->blas_ws, ctx->blas_ws_bytes, "cuBLAS workspace", err, errlen)) {
        llama_cuda_ctx_free(ctx);
        return -1;
    }
    cublasCheck(cublasSetWorkspace(ctx->blas, ctx->blas_ws, ctx->blas_ws_bytes));
    *out = ctx;
    return 0;
}

extern "C" void llama_cuda_ctx_free(llama_cuda_ctx *ctx) {
    if (!ctx) return;
    if (ctx->stream) cudaCheck(cudaStreamSynchronize(ctx->stream));
    llama_cuda_attn_impl_free(ctx);
    for (int i = 0; i < SCR_COUNT; i++) llama_cuda_mfree(ctx, ctx->scr[i], ctx->scr_bytes[i]);
    if (ctx->blas) cublasCheck(cublasDestroy(ctx->blas));
    llama_cuda_mfree(ctx, ctx->blas_ws, ctx->blas_ws_bytes);
    if (ctx->stream) cudaCheck(cudaStreamDestroy(ctx->stream));
    free(ctx->h_ints);
    free(ctx);
}

extern "C" int llama_cuda_ctx_precision(const llama_cuda_ctx *ctx) { return ctx->precision; }
extern "C" int llama_cuda_act_dtype(const llama_cuda_ctx *ctx) { return ctx->act; }
extern "C" size_t llama_cuda_act_size(const llama_cuda_ctx *ctx) { return ctx->act == LLAMA_CUDA_DT_BF16 ? 2 : 4; }
extern "C" size_t llama_cuda_ctx_bytes(const llama_cuda_ctx *ctx) { return ctx->cur_bytes; }
extern "C" size_t llama_cuda_ctx_peak_bytes(const llama_cuda_ctx *ctx) { return ctx->peak_bytes; }
extern "C" void llama_cuda_ctx_reset_peak(llama_cuda_ctx *ctx) { ctx->peak_bytes = ctx->cur_bytes; }

extern "C" int llama_cuda_malloc(llama_cuda_ctx *ctx, void **p, size_t bytes, const char *what, char *err,
                                 size_t errlen) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        snprintf(err, errlen, "out of GPU memory allocating %.1f MiB for %s (%.1f MiB free of %.1f MiB; this model "
                 "holds %.1f MiB)", bytes / 1048576.0, what, fr / 1048576.0, tot / 1048576.0,
                 ctx->cur_bytes / 1048576.0);
        *p = NULL;
        return -1;
    }
    cudaCheck(e);
    ctx->cur_bytes += bytes;
    if (ctx->cur_bytes > ctx->peak_bytes) ctx->peak_bytes = ctx->cur_bytes;
    return 0;
}

extern "C" void llama_cuda_mfree(llama_cuda_ctx *ctx, void *p, size_t bytes) {
    if (!p) return;
    cudaCheck(cudaFree(p));
    CUDA_ASSERT(ctx->cur_bytes >= bytes);
    ctx->cur_bytes -= bytes;
}

extern "C" void llama_cuda_sync(llama_cuda_ctx *ctx) { cudaCheck(cudaStreamSynchronize(ctx->stream)); }

extern "C" void llama_cuda_h2d(llama_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    cudaCheck(cudaStreamSynchronize(ctx->stream));
}

extern "C" void llama_cuda_d2h(llama_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    cudaCheck(cudaStreamSynchronize(ctx->stream));
}

extern "C" void llama_cuda_memset0(llama_cuda_ctx *ctx, void *p, size_t bytes) {
    if (bytes) cudaCheck(cudaMemsetAsync(p, 0, bytes, ctx->stream));
}

extern "C" uint16_t llama_cuda_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                         /* nearest even */
    return (uint16_t)(u >> 16);
}

extern "C" float llama_cuda_bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

extern "C" void llama_cuda_h2d_dt(llama_cuda_ctx *ctx, void *dst, int dt, const float *src, size_t n) {
    if (dt == LLAMA_CUDA_DT_F32) {
        llama_cuda_h2d(ctx, dst, src, n * sizeof(float));
        return;
    }
    CUDA_ASSERT(dt == LLAMA_CUDA_DT_BF16);
    uint16_t *tmp = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
    CUDA_ASSERT(tmp != NULL);
    for (size_t i = 0; i < n; i++) tmp[i] = llama_cuda_f32_to_bf16(src[i]);
    llama_cuda_h2d(ctx, dst, tmp, n * sizeof(uint16_t));
    free(tmp);
}

extern "C" void llama_cuda_d2h_dt(llama_cuda_ctx *ctx, float *dst, const void *src, int dt, size_t n) {
    if (dt == LLAMA_CUDA_DT_F32) {
        llama_cuda_d2h(ctx, dst, src, n * sizeof(float));
        return;
    }
    CUDA_ASSERT(dt == LLAMA_CUDA_DT_BF16);
    uint16_t *tmp = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
    CUDA_ASSERT(tmp != NULL);
    llama_cuda_d2h(ctx, tmp, src, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) dst[i] = llama_cuda_bf16_to_f32(tmp[i]);
    free(tmp);
}

/* ------------------------------------------------------------------------------------------------
 * Scratch
 */

int llama_cuda_scratch_reserve(llama_cuda_ctx *ctx, int slot, size_t bytes, char *err, size_t errlen) {
    CUDA_ASSERT(slot >= 0 && slot < SCR_COUNT);
    if (bytes <= ctx->scr_bytes[slot]) return 0;
    /* the old buffer may still be in use by queued work */
    cudaCheck(cudaStreamSynchronize(ctx->stream));
    llama_cuda_mfree(ctx, ctx->scr[slot], ctx->scr_bytes[slot]);
    ctx->scr[slot] = NULL;
    ctx->scr_bytes[slot] = 0;
    if (slot == SCR_ONES) ctx->ones_n = 0;
    static const char *const names[SCR_COUNT] = {"rmsnorm partial sums", "bias-gradient ones", "reduction partials",
                                                 "embedding-gradient segments", "attention scores",
                                                 "batched-GEMM pointer arrays"};
    if (llama_cuda_malloc(ctx, &ctx->scr[slot], bytes, names[slot], err, errlen)) return -1;
    ctx->scr_bytes[slot] = bytes;
    return 0;
}

void *llama_cuda_scratch(llama_cuda_ctx *ctx, int slot, size_t bytes) {
    char err[256];
    if (llama_cuda_scratch_reserve(ctx, slot, bytes, err, sizeof err)) {
        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, err);
        abort();
    }
    return ctx->scr[slot];
}

template <typename T> __global__ void fill_one_kernel(T *p, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) stf(p, i, 1.0f);
}

const void *llama_cuda_ones(llama_cuda_ctx *ctx, size_t n) {
    if (n <= ctx->ones_n) return ctx->scr[SCR_ONES];
    size_t want = n < 4096 ? 4096 : n;
    void *p = llama_cuda_scratch(ctx, SCR_ONES, want * llama_cuda_act_size(ctx));
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, size_t) = fill_one_kernel<bf16>;
        cuda_launch(k, cdiv(want, 256), 256, 0, ctx->stream, (bf16 *)p, want);
    } else {
        void (*k)(float *, size_t) = fill_one_kernel<float>;
        cuda_launch(k, cdiv(want, 256), 256, 0, ctx->stream, (float *)p, want);
    }
    ctx->ones_n = want;
    return p;
}

/* ------------------------------------------------------------------------------------------------
 * Conversion
 */

template <typename Tout, typename Tin> __global__ void convert_kernel(Tout *dst, const Tin *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) stf(dst, i, ldf(src, i));
}

extern "C" void llama_cuda_convert(llama_cuda_ctx *ctx, void *dst, int dst_dt, const void *src, int src_dt, size_t n) {
    if (n == 0) return;
    if (dst_dt == src_dt) {
        size_t es = dst_dt == LLAMA_CUDA_DT_BF16 ? 2 : 4;
        if (dst != src) cudaCheck(cudaMemcpyAsync(dst, src, n * es, cudaMemcpyDeviceToDevice, ctx->stream));
        return;
    }
    unsigned grid = cdiv(n, 256);
    if (dst_dt == LLAMA_CUDA_DT_BF16 && src_dt == LLAMA_CUDA_DT_F32) {
        void (*k)(bf16 *, const float *, size_t) = convert_kernel<bf16, float>;
        cuda_launch(k, grid, 256, 0, ctx->stream, (bf16 *)dst, (const float *)src, n);
    } else {
        CUDA_ASSERT(dst_dt == LLAMA_CUDA_DT_F32 && src_dt == LLAMA_CUDA_DT_BF16);
        void (*k)(float *, const bf16 *, size_t) = convert_kernel<float, bf16>;
        cuda_launch(k, grid, 256, 0, ctx->stream, (float *)dst, (const bf16 *)src, n);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Matrix products
 */

static cudaDataType_t cuda_dtype(int dt) {
    CUDA_ASSERT(dt == LLAMA_CUDA_DT_F32 || dt == LLAMA_CUDA_DT_BF16);
    return dt == LLAMA_CUDA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static cublasComputeType_t compute_type(const llama_cuda_ctx *ctx, int ab_dt) {
    if (ab_dt == LLAMA_CUDA_DT_BF16) return CUBLAS_COMPUTE_32F;
    return ctx->precision == LLAMA_CUDA_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

extern "C" void llama_cuda_gemm(llama_cuda_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha,
                                const void *A, int lda, const void *B, int ldb, float beta, void *C, int ldc, int ab_dt,
                                int c_dt) {
    if (M <= 0 || N <= 0) return;
    CUDA_ASSERT(K > 0);
    cublasCheck(cublasGemmEx(ctx->blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                             &alpha, B, cuda_dtype(ab_dt), ldb, A, cuda_dtype(ab_dt), lda, &beta, C, cuda_dtype(c_dt),
                             ldc, compute_type(ctx, ab_dt), CUBLAS_GEMM_DEFAULT));
}

void llama_cuda_gemm_batched(llama_cuda_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha,
                             const void *const *A, int lda, const void *const *B, int ldb, float beta, void *const *C,
                             int ldc, int ab_dt, int c_dt, int count) {
    if (M <= 0 || N <= 0 || count <= 0) return;
    CUDA_ASSERT(K > 0);
    cublasCheck(cublasGemmBatchedEx(ctx->blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    N, M, K, &alpha, B, cuda_dtype(ab_dt), ldb, A, cuda_dtype(ab_dt), lda, &beta, C,
                                    cuda_dtype(c_dt), ldc, count, compute_type(ctx, ab_dt), CUBLAS_GEMM_DEFAULT));
}

extern "C" void llama_cuda_matmul_forward(llama_cuda_ctx *ctx, void *out, int out_dt, const void *inp, const void *w,
                                          const float *bias, int N, int IC, int OC, float beta) {
    /* out (N, OC) = beta*out + inp (N, IC) @ w (OC, IC)^T */
    llama_cuda_gemm(ctx, 0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, OC, ctx->act, out_dt);
    if (bias) llama_cuda_add_bias(ctx, out, out_dt, bias, N, OC);
}

extern "C" void llama_cuda_matmul_backward(llama_cuda_ctx *ctx, void *dinp, int dinp_dt, float *dw, float *dbias,
                                           const void *dout, const void *inp, const void *w, int N, int IC, int OC,
                                           float dinp_beta) {
    /* dinp (N, IC) = dinp_beta*dinp + dout (N, OC) @ w (OC, IC) */
    if (dinp) llama_cuda_gemm(ctx, 0, 0, N, IC, OC, 1.0f, dout, OC, w, IC, dinp_beta, dinp, IC, ctx->act, dinp_dt);
    /* dw (OC, IC) += dout^T (OC, N) @ inp (N, IC) */
    llama_cuda_gemm(ctx, 1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC, ctx->act, LLAMA_CUDA_DT_F32);
    /* dbias (1, OC) += ones (1, N) @ dout (N, OC): the column sums as one product */
    if (dbias) {
        const void *ones = llama_cuda_ones(ctx, (size_t)N);
        llama_cuda_gemm(ctx, 0, 0, 1, OC, N, 1.0f, ones, N, dout, OC, 1.0f, dbias, OC, ctx->act, LLAMA_CUDA_DT_F32);
    }
}
