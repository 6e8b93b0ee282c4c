/*
 * tests/gpu/emu/cuda_emu.cpp: the CPU emulator of CUDA declared in cuda_emu.h: the block scheduler
 * (one ucontext fiber per thread, switched at barriers, deadlock detection), the warp exchange
 * behind the shuffles, the runtime calls (memory is host memory, poisoned with 0xFF bytes), and the
 * reference cuBLAS GEMMs.
 *
 * GRPO2048_EMU_NO_DEVICE=1 in the environment makes cudaGetDeviceCount report no device, so the
 * tests' skip path can be exercised too.
 */
#include "cuda_emu.h"

#include <setjmp.h>
#include <ucontext.h>

#include <unordered_set>
#include <vector>

namespace {

/* Switching: a fiber is entered the first time with swapcontext (its own stack), afterwards with
 * _setjmp/_longjmp, which unlike swapcontext make no signal-mask system call (several times
 * faster). Sanitized builds keep swapcontext, which AddressSanitizer knows how to follow. */
#if defined(GRPO2048_SANITIZE)
#define EMU_FAST_SWITCH 0
#else
#define EMU_FAST_SWITCH 1
#endif

struct Fiber {
    ucontext_t ctx;
    jmp_buf jb;
    int started;
    unsigned tid;
    int done;
    char *stack;
};

struct Warp {
    int arrived;
    unsigned gen;
    uint64_t slot[2][32];
};

const size_t kStackBytes = 256 * 1024;

struct Block {
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    int nthreads = 0, alive = 0;
    int bar_arrived = 0;
    unsigned bar_gen = 0;
    ucontext_t sched;
    jmp_buf sched_jb;
    Fiber *cur = nullptr;
    long progress = 0;
    const std::function<void()> *body = nullptr;
    dim3 grid, block, bidx;
    std::vector<unsigned char> dyn_smem;
    bool running = false;
    bool plain = false;        /* threads run one after another, no fibers (no barriers allowed) */
    bool barrier_seen = false; /* a barrier ran in this launch */
    ~Block() {
        for (auto &f : fibers) free(f.stack);
    }
} S;

void fail(const char *msg) {
    fprintf(stderr, "cuda emulator: %s (block %u,%u,%u of grid %u,%u,%u; block dim %u,%u,%u)\n", msg, S.bidx.x,
            S.bidx.y, S.bidx.z, S.grid.x, S.grid.y, S.grid.z, S.block.x, S.block.y, S.block.z);
    abort();
}

Fiber *current() {
    if (!S.running || !S.cur) fail("a device function was called outside a kernel");
    return S.cur;
}

void yield_fiber() {
    Fiber *f = S.cur;
#if EMU_FAST_SWITCH
    if (!_setjmp(f->jb)) _longjmp(S.sched_jb, 1);
#else
    swapcontext(&f->ctx, &S.sched);
#endif
}

/* Runs fiber f until it yields or finishes. */
void resume_fiber(Fiber *f) {
    S.cur = f;
#if EMU_FAST_SWITCH
    if (!_setjmp(S.sched_jb)) {
        if (!f->started) {
            f->started = 1;
            swapcontext(&S.sched, &f->ctx);
        } else {
            _longjmp(f->jb, 1);
        }
    }
#else
    swapcontext(&S.sched, &f->ctx);
#endif
}

void release_block_barrier_if_complete() {
    if (S.bar_arrived > 0 && S.bar_arrived >= S.alive) {
        S.bar_arrived = 0;
        S.bar_gen++;
    }
}

void trampoline(int idx) {
    Fiber *f = &S.fibers[(size_t)idx];
    (*S.body)();
    f->done = 1;
    S.alive--;
    S.progress++;
    /* threads that exited no longer count at __syncthreads (sm_70+ semantics) */
    release_block_barrier_if_complete();
#if EMU_FAST_SWITCH
    _longjmp(S.sched_jb, 1); /* the scheduler's latest _setjmp: never return through uc_link */
#endif
}

void no_barriers_in_plain_mode() {
    if (S.plain)
        fail("a barrier in a later block of a kernel whose first block reached none (the emulator runs such "
             "blocks without fibers): make barrier use uniform over the grid");
    S.barrier_seen = true;
}

void warp_barrier() {
    no_barriers_in_plain_mode();
    Fiber *f = current();
    Warp &w = S.warps[f->tid / 32];
    unsigned my = w.gen;
    w.arrived++;
    S.progress++;
    if (w.arrived == 32) {
        w.arrived = 0;
        w.gen++;
        return;
    }
    while (w.gen == my) yield_fiber();
}

} // namespace

dim3 emu_thread_idx() {
    Fiber *f = current();
    unsigned t = f->tid;
    return dim3(t % S.block.x, (t / S.block.x) % S.block.y, t / (S.block.x * S.block.y));
}
dim3 emu_block_idx() { current(); return S.bidx; }
dim3 emu_block_dim() { current(); return S.block; }
dim3 emu_grid_dim() { current(); return S.grid; }
int emu_lane() { return (int)(current()->tid % 32); }

void *emu_dynamic_smem() {
    current();
    return S.dyn_smem.empty() ? nullptr : S.dyn_smem.data();
}

void __syncthreads() {
    current();
    no_barriers_in_plain_mode();
    unsigned my = S.bar_gen;
    S.bar_arrived++;
    S.progress++;
    if (S.bar_arrived >= S.alive) {
        S.bar_arrived = 0;
        S.bar_gen++;
        return;
    }
    while (S.bar_gen == my) yield_fiber();
}

void __syncwarp(unsigned mask) {
    emu_check_mask(mask, 32);
    warp_barrier();
}

void emu_check_mask(unsigned mask, int width) {
    if (mask != 0xffffffffu || width != 32) fail("warp operation with a partial mask or width (not emulated)");
}

uint64_t emu_warp_exchange(uint64_t mine, int src_lane) {
    Fiber *f = current();
    Warp &w = S.warps[f->tid / 32];
    int buf = (int)(w.gen & 1u); /* double buffer: a lane cannot get two barriers ahead of another */
    w.slot[buf][f->tid % 32] = mine;
    warp_barrier();
    return w.slot[buf][src_lane];
}

void emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    if (S.running) fail("kernel launched from inside a kernel");
    S.grid = grid;
    S.block = block;
    S.bidx = dim3(0, 0, 0);
    unsigned long long n = (unsigned long long)block.x * block.y * block.z;
    if (n == 0 || n > 1024) fail("block of 0 or more than 1024 threads");
    if (n % 32 != 0) fail("block size not a multiple of 32 (the kernels assume full warps)");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) fail("empty grid");
    if (grid.y > 65535 || grid.z > 65535) fail("grid.y or grid.z above 65535");
    if (smem > 227 * 1024) fail("more than 227 KiB of dynamic shared memory (the sm_90 limit)");
    S.nthreads = (int)n;
    if (S.fibers.size() < n) {
        size_t old = S.fibers.size();
        S.fibers.resize(n);
        for (size_t i = old; i < n; i++) {
            S.fibers[i].stack = (char *)malloc(kStackBytes);
            if (!S.fibers[i].stack) fail("out of memory for fiber stacks");
        }
    }
    S.warps.assign(n / 32, Warp());
    S.dyn_smem.assign(smem, 0xff);
    S.body = &body;
    S.plain = false;
    S.barrier_seen = false;
    unsigned fiber_blocks = 0;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                S.bidx = dim3(bx, by, bz);
                if (smem) memset(S.dyn_smem.data(), 0xff, smem); /* shared memory starts undefined */
                /* After 8 blocks that reached no barrier, run the threads as a plain loop: the
                 * elementwise kernels over millions of elements would otherwise spend their time
                 * creating fibers. A barrier met later aborts (no_barriers_in_plain_mode). */
                if (fiber_blocks >= 8 && !S.barrier_seen) {
                    S.plain = true;
                    S.running = true;
                    for (unsigned t = 0; t < n; t++) {
                        Fiber &f = S.fibers[t];
                        f.tid = t;
                        S.cur = &f;
                        body();
                    }
                    S.running = false;
                    S.cur = nullptr;
                    continue;
                }
                fiber_blocks++;
                for (auto &w : S.warps) { w.arrived = 0; w.gen = 0; }
                S.bar_arrived = 0;
                S.bar_gen = 0;
                S.alive = (int)n;
                for (unsigned t = 0; t < n; t++) {
                    Fiber &f = S.fibers[t];
                    f.tid = t;
                    f.done = 0;
                    f.started = 0;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack;
                    f.ctx.uc_stack.ss_size = kStackBytes;
                    f.ctx.uc_link = &S.sched;
                    makecontext(&f.ctx, (void (*)())trampoline, 1, (int)t);
                }
                S.running = true;
                while (S.alive > 0) {
                    long before = S.progress;
                    for (unsigned t = 0; t < n; t++) {
                        if (S.fibers[t].done) continue;
                        resume_fiber(&S.fibers[t]);
                    }
                    if (S.alive > 0 && S.progress == before)
                        fail("deadlock: threads wait at a barrier that the others never reach "
                             "(__syncthreads or a shuffle in divergent code)");
                }
                S.running = false;
                S.cur = nullptr;
            }
}

/* ------------------------------------------------------------------------------------------------
 * Runtime
 */

static cudaError_t last_error = cudaSuccess;

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "emulated error";
    }
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    default: return "cudaErrorUnknown";
    }
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
static int no_device() {
    const char *s = getenv("GRPO2048_EMU_NO_DEVICE");
    return s && *s && strcmp(s, "0") != 0;
}
cudaError_t cudaGetDeviceCount(int *n) {
    if (no_device()) { *n = 0; last_error = cudaErrorNoDevice; return cudaErrorNoDevice; }
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 && !no_device() ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
    p->totalGlobalMem = (size_t)80 << 30;
    p->multiProcessorCount = 4;
    p->sharedMemPerBlockOptin = 227 * 1024;
    p->major = 9;
    p->minor = 0;
    p->l2CacheSize = 50 << 20;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    if (d != 0) return cudaErrorInvalidDevice;
    *v = a == cudaDevAttrMultiProcessorCount ? 4 : 227 * 1024;
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xff, bytes); /* NaN as floats: reading unwritten memory shows */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemset(void *p, int v, size_t bytes) { if (bytes) memset(p, v, bytes); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t) { return cudaMemset(p, v, bytes); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = (size_t)64 << 30;
    *total_bytes = (size_t)80 << 30;
    return cudaSuccess;
}
struct emu_stream { int unused; };
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = new emu_stream(); return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int v) {
    return v <= 227 * 1024 ? cudaSuccess : cudaErrorInvalidValue;
}
struct emu_event { double t; };
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event(); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { e->t = 0; return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return cudaSuccess; }

/* ------------------------------------------------------------------------------------------------
 * cuBLAS
 */

struct emu_cublas { int unused; };

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_NOT_INITIALIZED";
    }
}
cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = new emu_cublas(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

static float round_tf32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return f; /* inf / NaN */
    u += 0xfffu + ((u >> 13) & 1u);                 /* keep 10 mantissa bits, nearest even */
    u &= ~0x1fffu;
    memcpy(&f, &u, 4);
    return f;
}

static double load_el(const void *p, cudaDataType_t t, size_t i, bool tf32) {
    if (t == CUDA_R_32F) {
        float f = ((const float *)p)[i];
        return tf32 ? round_tf32(f) : f;
    }
    return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}

static void store_el(void *p, cudaDataType_t t, size_t i, double v) {
    if (t == CUDA_R_32F) ((float *)p)[i] = (float)v;
    else ((__nv_bfloat16 *)p)[i] = __float2bfloat16((float)v);
}

static cublasStatus_t gemm_check(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, cudaDataType_t at,
                                 int lda, cudaDataType_t bt, int ldb, cudaDataType_t ct, int ldc,
                                 cublasComputeType_t comp) {
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1))) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldb < (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1))) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    if (at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at == CUDA_R_32F && ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at == CUDA_R_16BF && comp != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32) return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
}

static void gemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                     cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta, void *C,
                     cudaDataType_t ct, int ldc, bool tf32) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double acc = 0.0;
            for (int l = 0; l < k; l++) {
                size_t ai = ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda : (size_t)l + (size_t)i * lda;
                size_t bi = tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb;
                acc += load_el(A, at, ai, tf32) * load_el(B, bt, bi, tf32);
            }
            size_t ci = (size_t)i + (size_t)j * ldc;
            double v = (double)alpha * acc;
            if (beta != 0.0f) v += (double)beta * load_el(C, ct, ci, false); /* beta == 0: C is not read */
            store_el(C, ct, ci, v);
        }
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasStatus_t s = gemm_check(ta, tb, m, n, k, at, lda, bt, ldb, ct, ldc, comp);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    gemm_one(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb, *(const float *)beta, C, ct, ldc,
             comp == CUBLAS_COMPUTE_32F_FAST_TF32);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *const A[], cudaDataType_t at, int lda,
                                   const void *const B[], cudaDataType_t bt, int ldb, const void *beta, void *const C[],
                                   cudaDataType_t ct, int ldc, int batch, cublasComputeType_t comp,
                                   cublasGemmAlgo_t) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s = gemm_check(ta, tb, m, n, k, at, lda, bt, ldb, ct, ldc, comp);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    /* On a GPU the items run concurrently: two items writing one element would race. */
    std::unordered_set<uintptr_t> written;
    size_t esize = ct == CUDA_R_32F ? 4 : 2;
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < n; j++)
            for (int r = 0; r < m; r++)
                if (!written.insert((uintptr_t)C[i] + ((size_t)r + (size_t)j * ldc) * esize).second) {
                    fprintf(stderr, "cuda emulator: cublasGemmBatchedEx items %d and an earlier one write the same "
                                    "element of C (a race on a GPU)\n", i);
                    abort();
                }
    for (int i = 0; i < batch; i++)
        gemm_one(ta, tb, m, n, k, *(const float *)alpha, A[i], at, lda, B[i], bt, ldb, *(const float *)beta, C[i], ct,
                 ldc, comp == CUBLAS_COMPUTE_32F_FAST_TF32);
    return CUBLAS_STATUS_SUCCESS;
}
