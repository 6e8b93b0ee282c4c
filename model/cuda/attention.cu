/*
 * model/cuda/attention.cu: causal grouped-query attention on the GPU, the twin of
 * llama_attention_forward / llama_attention_backward / llama_attend_row (model/llama_layers.c).
 * Query head h reads key/value head h / (NH/NKV); scores are scaled by 1/sqrt(HS); an optional
 * sliding window W lets position i see keys (i-W, i].
 *
 * Training (llama_cuda_attention_forward / _backward): per (sequence, head) the T x T products run
 * as batched cuBLAS calls (one call covers every (sequence, head) of a chunk through device arrays
 * of pointers into the row-major (B*T, heads*HS) buffers, so no transposes are needed), with
 * softmax kernels between them:
 *   forward:  S = scale Q K^T (fp32);  P = masked softmax(S), lse per row;  O = P V
 *   backward: S again (same call, same result), dP = dO V^T, D_i = dO_i . O_i,
 *             P = exp(S - lse) masked, dS = P (dP - D) scale;  dQ = dS K;
 *             dK = sum over the query heads of the group of dS^T Q;  dV = sum of P^T dO
 *   (the dK/dV sums run as one batched call per head of the group, beta = 1 after the first, so
 *   no two items of one call write the same rows). The full T x T square is computed and the
 *   upper triangle masked: simple and tensor-core fast, at the cost of (chunk, NH, T, T) fp32
 *   scratch (chunks of sequences keep it within 2 GiB) and twice the needed score FLOPs. The
 *   follow-up is cuDNN's fused SDPA (flash attention) through its graph API: attn_implementation: cudnn
 *   (attention_impl.cu, attention_cudnn.c) takes over these two functions where cuDNN supports the shape.
 *   BF16: P and dS are stored in bf16 for the products, dK/dV are accumulated in fp32 scratch.
 *
 * Generation (llama_cuda_attention_cached): a kernel of our own over the KV cache. A block serves
 * one cache row, one key/value head and a tile of query positions, with one warp per (query head
 * of the group, position); keys and values come through shared memory 32 positions at a time
 * (lane j holds key j's score: one dot product per lane, no shuffles), the softmax is online
 * (running max and sum), and lane d accumulates output dimensions d, d+32, ... (DPL of them,
 * a template parameter: HS <= 32*DPL).
 */
#include "model/cuda/cuda_common.cuh"
#include "model/cuda/llama_cuda.h"

#define ATT_SCRATCH_BUDGET ((size_t)2 << 30)

extern "C" void llama_cuda_set_attention_budget(llama_cuda_ctx *ctx, size_t bytes) { ctx->att_budget = bytes; }

/* ------------------------------------------------------------------------------------------------
 * Training path: scratch layout and pointer arrays
 */

typedef struct {
    int Bc;                   /* sequences per chunk */
    size_t S, dP, P, dS, D;   /* byte offsets in SCR_ATT (P == S and dS == dP when fp32) */
    size_t dk32, dv32;        /* fp32 dK / dV accumulators (bf16 only) */
    size_t bytes;
} att_layout;

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

static att_layout make_layout(size_t budget, int act, int B, int T, int NH, int NKV, int HS) {
    att_layout L;
    size_t tt = (size_t)T * T, bf = act == LLAMA_CUDA_DT_BF16;
    size_t per_seq = (size_t)NH * tt * (4 + 4 + (bf ? 2 + 2 : 0)) + (size_t)NH * T * 4 +
                     (bf ? (size_t)2 * T * NKV * HS * 4 : 0);
    size_t bc = (budget ? budget : ATT_SCRATCH_BUDGET) / (per_seq ? per_seq : 1);
    if (bc < 1) bc = 1;
    if (bc > (size_t)B) bc = (size_t)B;
    L.Bc = (int)bc;
    size_t n = bc * NH * tt, off = 0;
    L.S = off; off = align256(off + n * 4);
    L.dP = off; off = align256(off + n * 4);
    if (bf) {
        L.P = off; off = align256(off + n * 2);
        L.dS = off; off = align256(off + n * 2);
    } else {
        L.P = L.S;
        L.dS = L.dP;
    }
    L.D = off; off = align256(off + bc * NH * T * 4);
    L.dk32 = L.dv32 = 0;
    if (bf) {
        L.dk32 = off; off = align256(off + bc * T * NKV * HS * 4);
        L.dv32 = off; off = align256(off + bc * T * NKV * HS * 4);
    }
    L.bytes = off;
    return L;
}

size_t llama_cuda_attention_scratch_bytes(size_t budget, int act, int B, int T, int NH, int NKV, int HS,
                                          size_t *ptr_bytes) {
    att_layout L = make_layout(budget, act, B, T, NH, NKV, HS);
    if (ptr_bytes) *ptr_bytes = (size_t)3 * L.Bc * NH * sizeof(void *);
    return L.bytes;
}

enum { PK_Q, PK_KV, PK_S };      /* what a pointer addresses: a query-head block, a kv-head block, a score matrix */
enum { PM_ALL, PM_GROUP };       /* items: every (sequence, head), or (sequence, kv head) for query head kh*rep+hh */

/* dst[i] = base + offset of item i's matrix (bytes: elements * esize). Q/KV offsets are into
 * (B*T, heads*HS) buffers starting at sequence b0; S offsets into the chunk's (Bc, NH, T, T). */
__global__ void att_ptrs_kernel(void **dst, char *base, int kind, int esize, int count, int mode, int hh, int b0, int T,
                                int NH, int NKV, int HS) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    int rep = NH / NKV, b, h;
    if (mode == PM_ALL) {
        b = i / NH;
        h = i % NH;
    } else {
        b = i / NKV;
        h = (i % NKV) * rep + hh;
    }
    size_t off;
    if (kind == PK_Q) off = (size_t)(b0 + b) * T * NH * HS + (size_t)h * HS;
    else if (kind == PK_KV) off = (size_t)(b0 + b) * T * NKV * HS + (size_t)(h / rep) * HS;
    else off = ((size_t)b * NH + h) * T * T;
    dst[i] = base + off * esize;
}

static void fill_ptrs(llama_cuda_ctx *ctx, void **dst, const void *base, int kind, int dt, int count, int mode, int hh,
                      int b0, int T, int NH, int NKV, int HS) {
    int esize = dt == LLAMA_CUDA_DT_BF16 ? 2 : 4;
    cuda_launch(att_ptrs_kernel, cdiv((size_t)count, 128), 128, 0, ctx->stream, dst, (char *)base, kind, esize, count,
                mode, hh, b0, T, NH, NKV, HS);
}

/* ------------------------------------------------------------------------------------------------
 * Training path: softmax kernels (one warp per score row; row = (b_local*NH + h)*T + i)
 */

#define ATT_ROWS_PER_BLOCK 8

template <typename TP>
__global__ void att_softmax_kernel(TP *P, float *lse, const float *S, int rows, int T, int window) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    long long row = (long long)blockIdx.x * ATT_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    int i = (int)(row % T);
    int j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
    const float *s = S + (size_t)row * T;
    float mx = -INFINITY;
    for (int j = j0 + lane; j <= i; j += 32) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = j0 + lane; j <= i; j += 32) sum += expf(s[j] - mx);
    sum = warp_sum(sum);
    float inv = 1.0f / sum;
    /* P may be S (fp32): every read of s above is done (warp_sum), and below lane j reads s[j]
     * before writing P[j] */
    for (int j = lane; j < T; j += 32) {
        float p = (j >= j0 && j <= i) ? expf(s[j] - mx) * inv : 0.0f;
        stf(P, (size_t)row * T + j, p);
    }
    if (lane == 0) lse[row] = mx + logf(sum);
}

template <typename T>
__global__ void att_rowdot_kernel(float *D, const T *dout, const T *out, int rows, int b0, int Tn, int NH, int HS) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    long long row = (long long)blockIdx.x * ATT_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    long long i = row % Tn, h = (row / Tn) % NH, b = row / ((long long)Tn * NH);
    size_t base = ((size_t)(b0 + b) * Tn + i) * NH * HS + h * HS;
    float s = 0.0f;
    for (int d = lane; d < HS; d += 32) s += ldf(dout, base + d) * ldf(out, base + d);
    s = warp_sum(s);
    if (lane == 0) D[row] = s;
}

template <typename TP>
__global__ void att_softmax_backward_kernel(TP *P, TP *dS, const float *S, const float *dP, const float *lse,
                                            const float *D, int rows, int T, int window, float scale) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    long long row = (long long)blockIdx.x * ATT_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    int i = (int)(row % T);
    int j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
    float l = lse[row], d = D[row];
    for (int j = lane; j < T; j += 32) {
        size_t e = (size_t)row * T + j;
        float p = 0.0f, ds = 0.0f;
        if (j >= j0 && j <= i) {
            p = expf(S[e] - l);
            ds = p * (dP[e] - d) * scale;
        }
        /* P may be S and dS may be dP (fp32): element e is read above by this lane only */
        stf(P, e, p);
        stf(dS, e, ds);
    }
}

template <typename TP>
static void launch_softmax(llama_cuda_ctx *ctx, void *P, float *lse, const float *S, int rows, int T, int window) {
    void (*k)(TP *, float *, const float *, int, int, int) = att_softmax_kernel<TP>;
    cuda_launch(k, cdiv((size_t)rows, ATT_ROWS_PER_BLOCK), 32 * ATT_ROWS_PER_BLOCK, 0, ctx->stream, (TP *)P, lse, S, rows,
                T, window);
}

template <typename T>
static void launch_rowdot(llama_cuda_ctx *ctx, float *D, const void *dout, const void *out, int rows, int b0, int Tn,
                          int NH, int HS) {
    void (*k)(float *, const T *, const T *, int, int, int, int, int) = att_rowdot_kernel<T>;
    cuda_launch(k, cdiv((size_t)rows, ATT_ROWS_PER_BLOCK), 32 * ATT_ROWS_PER_BLOCK, 0, ctx->stream, D, (const T *)dout,
                (const T *)out, rows, b0, Tn, NH, HS);
}

template <typename TP>
static void launch_softmax_backward(llama_cuda_ctx *ctx, void *P, void *dS, const float *S, const float *dP,
                                    const float *lse, const float *D, int rows, int T, int window, float scale) {
    void (*k)(TP *, TP *, const float *, const float *, const float *, const float *, int, int, int, float) =
        att_softmax_backward_kernel<TP>;
    cuda_launch(k, cdiv((size_t)rows, ATT_ROWS_PER_BLOCK), 32 * ATT_ROWS_PER_BLOCK, 0, ctx->stream, (TP *)P, (TP *)dS, S,
                dP, lse, D, rows, T, window, scale);
}

/* ------------------------------------------------------------------------------------------------
 * Training path: forward and backward
 */

typedef struct {
    char *scr;      /* SCR_ATT */
    void **pa, **pb, **pc; /* three pointer arrays of Bc*NH entries */
    att_layout L;
} att_work;

static att_work att_prepare(llama_cuda_ctx *ctx, int B, int T, int NH, int NKV, int HS) {
    att_work w;
    w.L = make_layout(ctx->att_budget, ctx->act, B, T, NH, NKV, HS);
    size_t pbytes = (size_t)3 * w.L.Bc * NH * sizeof(void *);
    w.scr = (char *)llama_cuda_scratch(ctx, SCR_ATT, w.L.bytes);
    void **p = (void **)llama_cuda_scratch(ctx, SCR_PTRS, pbytes);
    w.pa = p;
    w.pb = p + (size_t)w.L.Bc * NH;
    w.pc = p + (size_t)2 * w.L.Bc * NH;
    return w;
}

/* S (chunk) = scale * Q K^T for sequences [b0, b0+nb). */
static void att_scores(llama_cuda_ctx *ctx, att_work *w, const void *q, const void *k, int b0, int nb, int T, int NH,
                       int NKV, int HS) {
    int act = ctx->act, items = nb * NH, QD = NH * HS, KD = NKV * HS;
    float scale = 1.0f / sqrtf((float)HS);
    fill_ptrs(ctx, w->pa, q, PK_Q, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
    fill_ptrs(ctx, w->pb, k, PK_KV, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
    fill_ptrs(ctx, w->pc, w->scr + w->L.S, PK_S, LLAMA_CUDA_DT_F32, items, PM_ALL, 0, 0, T, NH, NKV, HS);
    llama_cuda_gemm_batched(ctx, 0, 1, T, T, HS, scale, (const void *const *)w->pa, QD, (const void *const *)w->pb, KD,
                            0.0f, (void *const *)w->pc, T, act, LLAMA_CUDA_DT_F32, items);
}

extern "C" void llama_cuda_attention_forward(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *k,
                                             const void *v, int B, int T, int NH, int NKV, int HS, int window) {
    if (B <= 0 || T <= 0) return;
    CUDA_ASSERT(NKV > 0 && NH % NKV == 0 && HS > 0);
    if (llama_cuda_attn_try_cudnn_forward(ctx, out, lse, q, k, v, B, T, NH, NKV, HS, window)) return;
    int act = ctx->act, QD = NH * HS, KD = NKV * HS;
    att_work w = att_prepare(ctx, B, T, NH, NKV, HS);
    for (int b0 = 0; b0 < B; b0 += w.L.Bc) {
        int nb = B - b0 < w.L.Bc ? B - b0 : w.L.Bc, items = nb * NH, rows = items * T;
        att_scores(ctx, &w, q, k, b0, nb, T, NH, NKV, HS);
        const float *S = (const float *)(w.scr + w.L.S);
        void *P = w.scr + w.L.P;
        if (act == LLAMA_CUDA_DT_BF16) launch_softmax<bf16>(ctx, P, lse + (size_t)b0 * NH * T, S, rows, T, window);
        else launch_softmax<float>(ctx, P, lse + (size_t)b0 * NH * T, S, rows, T, window);
        /* O = P V */
        fill_ptrs(ctx, w.pa, P, PK_S, act, items, PM_ALL, 0, 0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pb, v, PK_KV, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pc, out, PK_Q, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        llama_cuda_gemm_batched(ctx, 0, 0, T, HS, T, 1.0f, (const void *const *)w.pa, T, (const void *const *)w.pb, KD,
                                0.0f, (void *const *)w.pc, QD, act, act, items);
    }
}

extern "C" void llama_cuda_attention_backward(llama_cuda_ctx *ctx, void *dq, void *dk, void *dv, const void *dout,
                                              const void *q, const void *k, const void *v, const void *out,
                                              const float *lse, int B, int T, int NH, int NKV, int HS, int window) {
    if (B <= 0 || T <= 0) return;
    CUDA_ASSERT(NKV > 0 && NH % NKV == 0 && HS > 0);
    if (llama_cuda_attn_try_cudnn_backward(ctx, dq, dk, dv, dout, q, k, v, out, lse, B, T, NH, NKV, HS, window))
        return;
    int act = ctx->act, QD = NH * HS, KD = NKV * HS, rep = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    int bf = act == LLAMA_CUDA_DT_BF16;
    att_work w = att_prepare(ctx, B, T, NH, NKV, HS);
    for (int b0 = 0; b0 < B; b0 += w.L.Bc) {
        int nb = B - b0 < w.L.Bc ? B - b0 : w.L.Bc, items = nb * NH, rows = items * T, gitems = nb * NKV;
        const float *lse_c = lse + (size_t)b0 * NH * T;
        float *S = (float *)(w.scr + w.L.S), *dP = (float *)(w.scr + w.L.dP), *D = (float *)(w.scr + w.L.D);
        void *P = w.scr + w.L.P, *dS = w.scr + w.L.dS;
        att_scores(ctx, &w, q, k, b0, nb, T, NH, NKV, HS);
        /* dP = dO V^T */
        fill_ptrs(ctx, w.pa, dout, PK_Q, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pb, v, PK_KV, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pc, dP, PK_S, LLAMA_CUDA_DT_F32, items, PM_ALL, 0, 0, T, NH, NKV, HS);
        llama_cuda_gemm_batched(ctx, 0, 1, T, T, HS, 1.0f, (const void *const *)w.pa, QD, (const void *const *)w.pb, KD,
                                0.0f, (void *const *)w.pc, T, act, LLAMA_CUDA_DT_F32, items);
        /* D = rowsum(dO * O); P, dS */
        if (bf) {
            launch_rowdot<bf16>(ctx, D, dout, out, rows, b0, T, NH, HS);
            launch_softmax_backward<bf16>(ctx, P, dS, S, dP, lse_c, D, rows, T, window, scale);
        } else {
            launch_rowdot<float>(ctx, D, dout, out, rows, b0, T, NH, HS);
            launch_softmax_backward<float>(ctx, P, dS, S, dP, lse_c, D, rows, T, window, scale);
        }
        /* dQ = dS K */
        fill_ptrs(ctx, w.pa, dS, PK_S, act, items, PM_ALL, 0, 0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pb, k, PK_KV, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        fill_ptrs(ctx, w.pc, dq, PK_Q, act, items, PM_ALL, 0, b0, T, NH, NKV, HS);
        llama_cuda_gemm_batched(ctx, 0, 0, T, HS, T, 1.0f, (const void *const *)w.pa, T, (const void *const *)w.pb, KD,
                                0.0f, (void *const *)w.pc, QD, act, act, items);
        /* dK = sum_hh dS_h^T Q_h, dV = sum_hh P_h^T dO_h over the query heads h = kh*rep + hh */
        void *dkc = bf ? (void *)(w.scr + w.L.dk32) : dk;
        void *dvc = bf ? (void *)(w.scr + w.L.dv32) : dv;
        int cdt = bf ? LLAMA_CUDA_DT_F32 : act, cb0 = bf ? 0 : b0;
        for (int hh = 0; hh < rep; hh++) {
            float beta = hh == 0 ? 0.0f : 1.0f;
            fill_ptrs(ctx, w.pa, dS, PK_S, act, gitems, PM_GROUP, hh, 0, T, NH, NKV, HS);
            fill_ptrs(ctx, w.pb, q, PK_Q, act, gitems, PM_GROUP, hh, b0, T, NH, NKV, HS);
            fill_ptrs(ctx, w.pc, dkc, PK_KV, cdt, gitems, PM_GROUP, hh, cb0, T, NH, NKV, HS);
            llama_cuda_gemm_batched(ctx, 1, 0, T, HS, T, 1.0f, (const void *const *)w.pa, T, (const void *const *)w.pb,
                                    QD, beta, (void *const *)w.pc, KD, act, cdt, gitems);
            fill_ptrs(ctx, w.pa, P, PK_S, act, gitems, PM_GROUP, hh, 0, T, NH, NKV, HS);
            fill_ptrs(ctx, w.pb, dout, PK_Q, act, gitems, PM_GROUP, hh, b0, T, NH, NKV, HS);
            fill_ptrs(ctx, w.pc, dvc, PK_KV, cdt, gitems, PM_GROUP, hh, cb0, T, NH, NKV, HS);
            llama_cuda_gemm_batched(ctx, 1, 0, T, HS, T, 1.0f, (const void *const *)w.pa, T, (const void *const *)w.pb,
                                    QD, beta, (void *const *)w.pc, KD, act, cdt, gitems);
        }
        if (bf) {
            size_t n = (size_t)nb * T * KD, at = (size_t)b0 * T * KD;
            llama_cuda_convert(ctx, (bf16 *)dk + at, act, dkc, LLAMA_CUDA_DT_F32, n);
            llama_cuda_convert(ctx, (bf16 *)dv + at, act, dvc, LLAMA_CUDA_DT_F32, n);
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * Generation path: attention against the KV cache
 */

#define CACHED_MAX_WARPS 16

/* grid.x = R * NKV * ngroups (cache row r, kv head kh, head group), grid.y = query tiles of QT;
 * block = HPB * QT warps, warp = (head hh of the group, query qi of the tile). Dynamic shared
 * memory: Ks, Vs (32 x (HS+1) floats each, padded: lane j reads row j without bank conflicts),
 * qs (warps x HS floats). */
template <typename T, int DPL>
__global__ void __launch_bounds__(32 * CACHED_MAX_WARPS) attention_cached_kernel(T *out, float *lse, const T *q, const T *kc, const T *vc, const int *crow,
                                        int n, int start, int Tk, int NH, int NKV, int HS, int window, float scale,
                                        int HPB, int QT, int ngroups) {
    DYNAMIC_SMEM(float, sm);
    int KS = HS + 1;
    float *Ks = sm, *Vs = sm + 32 * KS, *qs = sm + 64 * KS;
    int rep = NH / NKV, QD = NH * HS, KD = NKV * HS;
    int bx = blockIdx.x;
    int grp = bx % ngroups, kh = (bx / ngroups) % NKV, r = bx / (ngroups * NKV);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int hin = grp * HPB + warp % HPB, qi = warp / HPB;
    int i0 = blockIdx.y * QT, i = i0 + qi;
    int i_hi = (i0 + QT < n ? i0 + QT : n) - 1;
    bool active = hin < rep && i < n; /* uniform over the warp */
    int h = kh * rep + hin;
    int pos = start + i, p_lo = start + i0, p_hi = start + i_hi;
    int jlo = (window > 0 && p_lo - window + 1 > 0) ? p_lo - window + 1 : 0;
    int jmin = (window > 0 && pos - window + 1 > 0) ? pos - window + 1 : 0;
    size_t cbase = (size_t)(crow ? crow[r] : r) * Tk * KD + (size_t)kh * HS;
    float *qw = qs + warp * HS;
    if (active) {
        const T *qrow = q + ((size_t)r * n + i) * QD + (size_t)h * HS;
        for (int d = lane; d < HS; d += 32) qw[d] = ldf(qrow, d);
    }
    __syncwarp();
    float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
    for (int t = 0; t < DPL; t++) acc[t] = 0.0f;
    for (int j0 = jlo; j0 <= p_hi; j0 += 32) {
        __syncthreads(); /* the previous tile is consumed */
        for (int e = threadIdx.x; e < 32 * HS; e += blockDim.x) {
            int jj = e / HS, d = e % HS, j = j0 + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j <= p_hi) {
                kv = ldf(kc, cbase + (size_t)j * KD + d);
                vv = ldf(vc, cbase + (size_t)j * KD + d);
            }
            Ks[jj * KS + d] = kv;
            Vs[jj * KS + d] = vv;
        }
        __syncthreads();
        if (!active) continue;
        int j = j0 + lane;
        bool valid = j >= jmin && j <= pos;
        float s = -INFINITY;
        if (valid) {
            const float *kr = Ks + lane * KS;
            float dot = 0.0f;
            for (int d = 0; d < HS; d++) dot += qw[d] * kr[d];
            s = dot * scale;
        }
        float mt = warp_max(s);
        if (mt == -INFINITY) continue; /* no visible key in this tile for this row (uniform) */
        float mnew = fmaxf(m, mt);
        float corr = expf(m - mnew); /* 0 on the first visible tile (m = -inf) */
        float p = valid ? expf(s - mnew) : 0.0f;
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int t = 0; t < DPL; t++) acc[t] *= corr;
        for (int jj = 0; jj < 32; jj++) {
            float pj = __shfl_sync(FULL_MASK, p, jj);
            const float *vr = Vs + jj * KS;
#pragma unroll
            for (int t = 0; t < DPL; t++) {
                int d = lane + 32 * t;
                if (d < HS) acc[t] += pj * vr[d];
            }
        }
        m = mnew;
    }
    if (active) {
        float inv = 1.0f / l;
        T *orow = out + ((size_t)r * n + i) * QD + (size_t)h * HS;
#pragma unroll
        for (int t = 0; t < DPL; t++) {
            int d = lane + 32 * t;
            if (d < HS) stf(orow, d, acc[t] * inv);
        }
        if (lse && lane == 0) lse[((size_t)r * NH + h) * n + i] = m + logf(l);
    }
}

template <typename T, int DPL>
static void launch_cached(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *kc, const void *vc,
                          const int *crow, int R, int n, int start, int Tk, int NH, int NKV, int HS, int window) {
    int rep = NH / NKV;
    int HPB = rep < CACHED_MAX_WARPS ? rep : CACHED_MAX_WARPS;
    int ngroups = (rep + HPB - 1) / HPB;
    int QT = n > 1 ? CACHED_MAX_WARPS / HPB : 1;
    if (QT < 1) QT = 1;
    int warps = HPB * QT;
    size_t smem = ((size_t)64 * (HS + 1) + (size_t)warps * HS) * sizeof(float);
    CUDA_ASSERT(smem <= ctx->smem_optin);
    dim3 grid((unsigned)((size_t)R * NKV * ngroups), cdiv((size_t)n, (size_t)QT));
    CUDA_ASSERT(grid.y <= 65535);
    float scale = 1.0f / sqrtf((float)HS);
    void (*k)(T *, float *, const T *, const T *, const T *, const int *, int, int, int, int, int, int, int, float, int,
              int, int) = attention_cached_kernel<T, DPL>;
    cuda_allow_smem(k, smem);
    cuda_launch(k, grid, 32 * warps, smem, ctx->stream, (T *)out, lse, (const T *)q, (const T *)kc, (const T *)vc, crow,
                n, start, Tk, NH, NKV, HS, window, scale, HPB, QT, ngroups);
}

template <typename T>
static void cached_dispatch(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *kc, const void *vc,
                            const int *crow, int R, int n, int start, int Tk, int NH, int NKV, int HS, int window) {
    if (HS <= 32) launch_cached<T, 1>(ctx, out, lse, q, kc, vc, crow, R, n, start, Tk, NH, NKV, HS, window);
    else if (HS <= 64) launch_cached<T, 2>(ctx, out, lse, q, kc, vc, crow, R, n, start, Tk, NH, NKV, HS, window);
    else if (HS <= 128) launch_cached<T, 4>(ctx, out, lse, q, kc, vc, crow, R, n, start, Tk, NH, NKV, HS, window);
    else launch_cached<T, 8>(ctx, out, lse, q, kc, vc, crow, R, n, start, Tk, NH, NKV, HS, window);
}

extern "C" void llama_cuda_attention_cached(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *kc,
                                            const void *vc, const int *crow_d, int R, int n, int start, int Tk, int NH,
                                            int NKV, int HS, int window) {
    if (R <= 0 || n <= 0) return;
    CUDA_ASSERT(NKV > 0 && NH % NKV == 0 && HS > 0 && HS <= LLAMA_CUDA_MAX_HEAD_DIM && start + n <= Tk);
    if (ctx->act == LLAMA_CUDA_DT_BF16) cached_dispatch<bf16>(ctx, out, lse, q, kc, vc, crow_d, R, n, start, Tk, NH, NKV, HS, window);
    else cached_dispatch<float>(ctx, out, lse, q, kc, vc, crow_d, R, n, start, Tk, NH, NKV, HS, window);
}
