/*
 * tests/gpu/emu/cuda_emu.h: a small CPU emulator of the parts of CUDA, the CUDA runtime and cuBLAS
 * that model/cuda uses, so that the same .cu sources, compiled by g++ as C++ with
 * -DGRPO2048_CUDA_EMU and this folder's include/ first on the path, run the tests/gpu tests on a
 * machine without a GPU. It checks the kernels' logic (indexing, masking, reductions, the
 * orchestration, the cuBLAS argument conventions), not their speed or the hardware's memory model.
 *
 * How it runs a kernel: emu_launch runs the grid's blocks one after another; the threads of a
 * block are fibers (ucontext) of one OS thread, switched round-robin at every barrier:
 * __syncthreads (all threads of the block that have not exited), __syncwarp and the warp
 * shuffles (the 32 lanes of the warp). Shared memory is therefore real sharing: `__shared__`
 * variables become function statics (one block runs at a time) and dynamic shared memory is one
 * buffer per launch. A state where every unfinished thread waits and none can be released (a
 * barrier some threads never reach: divergent __syncthreads or shuffles) aborts with a message.
 * When a launch's first 8 blocks reach no barrier, its other blocks run as plain loops over the
 * threads (fast for elementwise kernels); a barrier in one of them then aborts with a message.
 * Device memory is host memory (cudaMalloc fills it with 0xFF bytes, NaN as floats, so reading
 * what nobody wrote shows); streams run synchronously.
 *
 * cuBLAS: cublasGemmEx / cublasGemmBatchedEx compute the column-major definition
 * C = alpha op(A) op(B) + beta C in double from fp32 or bf16 inputs, rounding the inputs to TF32
 * (10 mantissa bits) for CUBLAS_COMPUTE_32F_FAST_TF32, and check the leading dimensions as cuBLAS
 * does.
 */
#ifndef GRPO2048_CUDA_EMU_H
#define GRPO2048_CUDA_EMU_H

#ifndef __cplusplus
#error "cuda_emu.h is C++ (compile the .cu sources with g++ -x c++)"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <functional>

#ifndef GRPO2048_CUDA_EMU
#define GRPO2048_CUDA_EMU 1
#endif

/* ---- language ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

dim3 emu_thread_idx();
dim3 emu_block_idx();
dim3 emu_block_dim();
dim3 emu_grid_dim();
#define threadIdx (emu_thread_idx())
#define blockIdx (emu_block_idx())
#define blockDim (emu_block_dim())
#define gridDim (emu_grid_dim())

void emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);
void *emu_dynamic_smem();

void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);

/* Warp exchange: every lane deposits 8 bytes, waits for the other 31, reads lane src's. */
uint64_t emu_warp_exchange(uint64_t mine, int src_lane);
int emu_lane();

template <typename T> static inline T emu_shfl_(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    uint64_t got = emu_warp_exchange(bits, src);
    T out;
    memcpy(&out, &got, sizeof(T));
    return out;
}
void emu_check_mask(unsigned mask, int width);
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    emu_check_mask(mask, width);
    return emu_shfl_(v, ((src % 32) + 32) % 32);
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lanemask, int width = 32) {
    emu_check_mask(mask, width);
    return emu_shfl_(v, (emu_lane() ^ lanemask) & 31);
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    emu_check_mask(mask, width);
    int src = emu_lane() - (int)delta;
    return emu_shfl_(v, src < 0 ? emu_lane() : src);
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    emu_check_mask(mask, width);
    int src = emu_lane() + (int)delta;
    return emu_shfl_(v, src > 31 ? emu_lane() : src);
}

/* One OS thread runs all fibers and switches only at barriers: atomics are plain operations. */
template <typename T> static inline T atomicAdd(T *p, T v) { T old = *p; *p = old + v; return old; }
static inline int atomicMin(int *p, int v) { int old = *p; if (v < old) *p = v; return old; }
static inline int atomicMax(int *p, int v) { int old = *p; if (v > old) *p = v; return old; }

static inline int max(int a, int b) { return a > b ? a : b; }
static inline int min(int a, int b) { return a < b ? a : b; }

static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }

/* ---- bf16 ---- */
struct __nv_bfloat16 { uint16_t x; };
static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) { r.x = (uint16_t)((u >> 16) | 0x40); return r; } /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    r.x = (uint16_t)(u >> 16);
    return r;
}
static inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t)b.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- runtime ---- */
typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoKernelImageForDevice = 209,
    cudaErrorUnsupportedPtxVersion = 222,
} cudaError_t;
typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
               cudaMemcpyDefault } cudaMemcpyKind;
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
typedef enum { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 } cudaDeviceAttr;
#define cudaStreamNonBlocking 0x01

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int multiProcessorCount;
    size_t sharedMemPerBlockOptin;
    int major, minor;
    int l2CacheSize;
    int clockRate, memoryClockRate, memoryBusWidth;
};

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int v, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaFuncSetAttribute(const void *f, cudaFuncAttribute a, int v);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

/* ---- cuBLAS ---- */
typedef struct emu_cublas *cublasHandle_t;
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0 } cublasMath_t;

const char *cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t algo);
cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *const A[], cudaDataType_t at, int lda,
                                   const void *const B[], cudaDataType_t bt, int ldb, const void *beta, void *const C[],
                                   cudaDataType_t ct, int ldc, int batch, cublasComputeType_t comp,
                                   cublasGemmAlgo_t algo);

#endif
