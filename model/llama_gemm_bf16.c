/*
 * model/llama_gemm_bf16.c: matrix products with bfloat16 inputs and float32 accumulation on the CPU,
 * for `bf16: true` (mixed precision as torch.autocast(dtype=bfloat16) does it for nn.Linear: the two
 * operands rounded to bf16, products summed in fp32, the result fp32; master weights, gradients and
 * the optimizer stay fp32).
 *
 * The products run in oneDNN's matmul primitive (Debian's libdnnl, the library PyTorch's CPU bf16
 * matmuls use), which picks AMX tiles or AVX512-BF16 instructions from the CPU's features. Where the
 * CPU has neither, oneDNN would emulate bf16 more slowly than OpenBLAS's fp32, so bf16 is then
 * refused (llama_bf16_supported) and the caller stays in fp32. Built without oneDNN
 * (GRPO2048_HAVE_ONEDNN undefined), every function here reports "not available".
 *
 * Determinism: for a fixed thread count and CPU, oneDNN's brgemm matmul computes each output with the
 * same blocking every call, so results are bitwise repeatable (tests/model/test_gemm_bf16.c checks).
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

#ifdef GRPO2048_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>

/* d[0..n) = llama_f32_to_bf16(s[0..n)), 16 at a time with AVX-512 integer operations (the same rounding,
 * bit for bit; this path runs only where the CPU has AVX512-BF16, hence AVX512F/BW). */
__attribute__((target("avx512f,avx512bw"))) static void row_to_bf16(uint16_t *d, const float *s, int n) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), absmask = _mm512_set1_epi32(0x7fffffff),
                  inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x40);
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(s + c));
        __m512i hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one))), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, quiet));
        _mm256_storeu_si256((__m256i *)(void *)(d + c), _mm512_cvtepi32_epi16(r));
    }
    for (; c < n; c++) d[c] = llama_f32_to_bf16(s[c]);
}

/* dst (rows, cols) bf16, densely packed, = src (rows, cols) with row stride ld. OpenMP over rows. */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols >= LLAMA_OMP_MIN_WORK)
    for (int r = 0; r < rows; r++) row_to_bf16(dst + (size_t)r * cols, src + (size_t)r * ld, cols);
}

void llama_to_bf16(uint16_t *dst, const float *src, size_t n) {
    const size_t chunk = 1 << 16;
    size_t nchunks = (n + chunk - 1) / chunk;
    int vec = llama_bf16_supported(NULL, 0);   /* implies AVX512F/BW */
    #pragma omp parallel for schedule(static) if (n >= LLAMA_OMP_MIN_WORK)
    for (size_t i = 0; i < nchunks; i++) {
        size_t a = i * chunk, len = n - a < chunk ? n - a : chunk;
        if (vec) row_to_bf16(dst + a, src + a, (int)len);
        else for (size_t k = 0; k < len; k++) dst[a + k] = llama_f32_to_bf16(src[a + k]);
    }
}

/* One cached primitive: the product's shape, strides and beta select it. */
typedef struct {
    int transA, transB, M, N, K, lda, ldb, ldc;
    float beta;
    dnnl_primitive_t prim;
    unsigned long long last_use;
} bf16_prim;

#define BF16_CACHE 96
static struct {
    pthread_mutex_t lock;
    int init_state;            /* 0 not tried, 1 usable, -1 unusable (why in reason) */
    char reason[160];
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bf16_prim cache[BF16_CACHE];
    unsigned long long clock;
    uint16_t *abuf, *bbuf;     /* bf16 copies of A and B */
    size_t acap, bcap;         /* their capacities, in elements */
} G = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void init_locked(void) {
    if (G.init_state) return;
    G.init_state = -1;
    const char *env = getenv("GRPO2048_NO_BF16");   /* tests and benchmarks: behave as a CPU without bf16 */
    if (env && *env && strcmp(env, "0") != 0) {
        snprintf(G.reason, sizeof G.reason, "GRPO2048_NO_BF16 is set");
        return;
    }
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    /* dnnl_cpu_isa_t values are bit masks: an ISA includes the bits of those below it. */
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
        snprintf(G.reason, sizeof G.reason, "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX-BF16)");
        return;
    }
    if (dnnl_engine_create(&G.engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&G.stream, G.engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(G.reason, sizeof G.reason, "oneDNN could not create its CPU engine");
        return;
    }
    G.init_state = 1;
}

int llama_bf16_supported(char *why, size_t whylen) {
    pthread_mutex_lock(&G.lock);
    init_locked();
    int ok = G.init_state == 1;
    if (!ok && why && whylen) snprintf(why, whylen, "%s", G.reason);
    pthread_mutex_unlock(&G.lock);
    return ok;
}

const char *llama_bf16_isa_name(void) {
    if (!llama_bf16_supported(NULL, 0)) return "none";
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "oneDNN AMX-BF16";
    return "oneDNN AVX512-BF16";
}

/* The primitive for this product, created on first use; NULL when oneDNN refuses it. Lock held. */
static dnnl_primitive_t get_prim(int transA, int transB, int M, int N, int K, int lda, int ldb, int ldc, float beta) {
    bf16_prim *slot = NULL, *lru = &G.cache[0];
    for (int i = 0; i < BF16_CACHE; i++) {
        bf16_prim *p = &G.cache[i];
        if (p->prim && p->transA == transA && p->transB == transB && p->M == M && p->N == N && p->K == K &&
            p->lda == lda && p->ldb == ldb && p->ldc == ldc && p->beta == beta) {
            p->last_use = ++G.clock;
            return p->prim;
        }
        if (!p->prim && !slot) slot = p;
        if (p->last_use < lru->last_use) lru = p;
    }
    if (!slot) {
        dnnl_primitive_destroy(lru->prim);
        lru->prim = NULL;
        slot = lru;
    }
    /* A and B are passed to oneDNN in their stored layouts, with row strides lda / ldb (of the bf16
     * data): op(A) (M, K) is A (M, K) with strides (lda, 1), or A^T with A stored (K, M): (1, lda). */
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_dims_t as = {transA ? 1 : lda, transA ? lda : 1};
    dnnl_dims_t bs = {transB ? 1 : ldb, transB ? ldb : 1};
    dnnl_dims_t cs = {ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (dnnl_memory_desc_init_by_strides(&a, 2, ad, dnnl_bf16, as) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&b, 2, bd, dnnl_bf16, bs) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        goto out;
    if (beta != 0.0f) {  /* C = matmul + beta * C: oneDNN's sum post-op */
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, beta) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
            goto out;
    }
    if (dnnl_primitive_desc_create(&pd, &md, attr, G.engine, NULL) != dnnl_success) goto out;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) prim = NULL;
out:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!prim) return NULL;
    *slot = (bf16_prim){transA, transB, M, N, K, lda, ldb, ldc, beta, prim, ++G.clock};
    return prim;
}

static int grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    uint16_t *p = malloc(n * sizeof *p);
    if (!p) return -1;
    free(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

int llama_gemm_bf16(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    return llama_gemm_bf16_ex(transA, transB, M, N, K, A, lda, NULL, B, ldb, NULL, beta, C, ldc);
}

int llama_gemm_bf16_ex(int transA, int transB, int M, int N, int K, const float *A, int lda, const uint16_t *Abf,
                       const float *B, int ldb, const uint16_t *Bbf, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return 0;
    int rc = -1;
    pthread_mutex_lock(&G.lock);
    init_locked();
    if (G.init_state != 1 || K <= 0) goto out;
    /* bf16 operands in the stored order: A stored (M, K) or (K, M); B (K, N) or (N, K). Given ones keep
     * their row strides; converted ones are densely packed. */
    int ar = transA ? K : M, ac = transA ? M : K, br = transB ? N : K, bc = transB ? K : N;
    int la = Abf ? lda : ac, lb = Bbf ? ldb : bc;
    if ((!Abf && grow(&G.abuf, &G.acap, (size_t)ar * ac)) || (!Bbf && grow(&G.bbuf, &G.bcap, (size_t)br * bc))) goto out;
    dnnl_primitive_t prim = get_prim(transA, transB, M, N, K, la, lb, ldc, beta);
    if (!prim) goto out;
    if (!Abf) to_bf16(G.abuf, A, ar, ac, lda);
    if (!Bbf) to_bf16(G.bbuf, B, br, bc, ldb);
    const uint16_t *abf = Abf ? Abf : G.abuf, *bbf = Bbf ? Bbf : G.bbuf;
    const dnnl_memory_desc_t *pa, *pb, *pc;
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success) goto out;
    pa = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    pb = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    pc = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    if (dnnl_memory_create(&ma, pa, G.engine, (void *)abf) == dnnl_success &&
        dnnl_memory_create(&mb, pb, G.engine, (void *)bbf) == dnnl_success &&
        dnnl_memory_create(&mc, pc, G.engine, C) == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        if (dnnl_primitive_execute(prim, G.stream, 3, args) == dnnl_success &&
            dnnl_stream_wait(G.stream) == dnnl_success)
            rc = 0;
    }
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
out:
    pthread_mutex_unlock(&G.lock);
    return rc;
}

#else /* no oneDNN in this build */

int llama_bf16_supported(char *why, size_t whylen) {
    if (why && whylen) snprintf(why, whylen, "this grpo2048 was built without oneDNN (libdnnl-dev)");
    return 0;
}

const char *llama_bf16_isa_name(void) { return "none"; }

int llama_gemm_bf16(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    return llama_gemm_bf16_ex(transA, transB, M, N, K, A, lda, NULL, B, ldb, NULL, beta, C, ldc);
}

int llama_gemm_bf16_ex(int transA, int transB, int M, int N, int K, const float *A, int lda, const uint16_t *Abf,
                       const float *B, int ldb, const uint16_t *Bbf, float beta, float *C, int ldc) {
    (void)transA; (void)transB; (void)K; (void)A; (void)lda; (void)Abf; (void)B; (void)ldb; (void)Bbf; (void)beta;
    (void)C; (void)ldc;
    return M <= 0 || N <= 0 ? 0 : -1;
}

void llama_to_bf16(uint16_t *dst, const float *src, size_t n) {
    #pragma omp parallel for schedule(static) if (n >= LLAMA_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) dst[i] = llama_f32_to_bf16(src[i]);
}

#endif
