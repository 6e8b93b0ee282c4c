/*
 * model/cuda/layers.cu: the elementwise and row kernels of the CUDA model, each the twin of a CPU
 * function of model/llama_layers.c (same formulas, same operation order where it matters for
 * parity): RMSNorm forward / recompute / backward, rope (HF rotate_half) forward / backward,
 * SwiGLU forward / backward, embedding forward / backward, bias add, row gather / scatter, KV-cache
 * writes, AdamW, and the sum of squares of gradient clipping.
 *
 * Templates over the storage type T (float or bf16) read and write through ldf / stf (fp32
 * arithmetic inside); the extern "C" entry points of llama_cuda_layers.h dispatch on the dtype.
 * Cross-row reductions (norm-weight gradients, sums of squares, embedding gradients) are
 * deterministic: per-block partials combined in a fixed order, never atomics.
 */
#include <string.h>

#include "model/cuda/cuda_common.cuh"

extern "C" {
#include "model/llama_internal.h"
}

/* ------------------------------------------------------------------------------------------------
 * RMSNorm: y = w * (x * rsqrt(mean(x^2) + eps)), one warp per row.
 */

#define NORM_ROWS_PER_BLOCK 8

template <typename Tin, typename Tout>
__global__ void rmsnorm_forward_kernel(Tout *out, float *rstd_out, const float *rstd_in, const Tin *inp, const float *w,
                                       int N, int C, float eps) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    long long row = (long long)blockIdx.x * NORM_ROWS_PER_BLOCK + warp;
    if (row >= N) return; /* whole warps only: no barrier below involves other warps */
    const Tin *x = inp + (size_t)row * C;
    Tout *y = out + (size_t)row * C;
    float r;
    if (rstd_in) {
        r = rstd_in[row];
    } else {
        float ss = 0.0f;
        for (int c = lane; c < C; c += 32) {
            float v = ldf(x, c);
            ss += v * v;
        }
        ss = warp_sum(ss);
        r = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd_out && lane == 0) rstd_out[row] = r;
    }
    /* in place (y == x) is safe: lane c reads x[c] before writing y[c], and every read of the
     * sum above completed before the warp_sum */
    for (int c = lane; c < C; c += 32) stf(y, c, w[c] * (ldf(x, c) * r));
}

template <typename Tin, typename Tout>
static void rmsnorm_forward_t(llama_cuda_ctx *ctx, void *out, float *rstd_out, const float *rstd_in, const void *inp,
                              const float *w, int N, int C, float eps) {
    void (*k)(Tout *, float *, const float *, const Tin *, const float *, int, int, float) =
        rmsnorm_forward_kernel<Tin, Tout>;
    cuda_launch(k, cdiv((size_t)N, NORM_ROWS_PER_BLOCK), 32 * NORM_ROWS_PER_BLOCK, 0, ctx->stream, (Tout *)out,
                rstd_out, rstd_in, (const Tin *)inp, w, N, C, eps);
}

static void rmsnorm_dispatch(llama_cuda_ctx *ctx, void *out, int out_dt, float *rstd_out, const float *rstd_in,
                             const void *inp, int inp_dt, const float *w, int N, int C, float eps) {
    if (N <= 0) return;
    if (inp_dt == LLAMA_CUDA_DT_F32 && out_dt == LLAMA_CUDA_DT_F32)
        rmsnorm_forward_t<float, float>(ctx, out, rstd_out, rstd_in, inp, w, N, C, eps);
    else if (inp_dt == LLAMA_CUDA_DT_F32 && out_dt == LLAMA_CUDA_DT_BF16)
        rmsnorm_forward_t<float, bf16>(ctx, out, rstd_out, rstd_in, inp, w, N, C, eps);
    else if (inp_dt == LLAMA_CUDA_DT_BF16 && out_dt == LLAMA_CUDA_DT_BF16)
        rmsnorm_forward_t<bf16, bf16>(ctx, out, rstd_out, rstd_in, inp, w, N, C, eps);
    else
        CUDA_ASSERT(!"rmsnorm: unsupported (input, output) dtypes");
}

extern "C" void llama_cuda_rmsnorm_forward(llama_cuda_ctx *ctx, void *out, int out_dt, float *rstd, const void *inp,
                                           int inp_dt, const float *w, int N, int C, float eps) {
    rmsnorm_dispatch(ctx, out, out_dt, rstd, NULL, inp, inp_dt, w, N, C, eps);
}

extern "C" void llama_cuda_rmsnorm_recompute(llama_cuda_ctx *ctx, void *out, int out_dt, const void *inp, int inp_dt,
                                             const float *rstd, const float *w, int N, int C) {
    CUDA_ASSERT(rstd != NULL);
    rmsnorm_dispatch(ctx, out, out_dt, NULL, rstd, inp, inp_dt, w, N, C, 0.0f);
}

/* Backward: block b handles rows b, b + gridDim.x, ...; thread t owns channels t, t + blockDim.x, ...
 * of the block's dw partial (shared memory), written to partial[b, :] at the end and summed over b
 * in order by norm_dw_reduce_kernel. dx_j = r * (g_j - xhat_j * mean_i(g_i xhat_i)), g = dy*w. */
template <typename T>
__global__ void __launch_bounds__(256) rmsnorm_backward_kernel(T *dinp, int accumulate, bf16 *dinp_bf16, float *partial, const T *dout,
                                        const T *inp, const float *w, const float *rstd, int N, int C) {
    DYNAMIC_SMEM(float, sm);
    float *dwp = sm;     /* (C) */
    float *red = sm + C; /* (32) */
    for (int c = threadIdx.x; c < C; c += blockDim.x) dwp[c] = 0.0f;
    for (long long row = blockIdx.x; row < N; row += gridDim.x) {
        const T *x = inp + (size_t)row * C;
        const T *dy = dout + (size_t)row * C;
        T *dx = dinp + (size_t)row * C;
        float r = rstd[row];
        float s = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x) s += (ldf(dy, c) * w[c]) * (ldf(x, c) * r);
        s = block_sum(s, red);
        float mean = s / (float)C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float xhat = ldf(x, c) * r, g = ldf(dy, c);
            float d = r * (g * w[c] - xhat * mean);
            float nv = accumulate ? ldf(dx, c) + d : d;
            stf(dx, c, nv);
            if (dinp_bf16) dinp_bf16[(size_t)row * C + c] = __float2bfloat16(nv);
            dwp[c] += g * xhat;
        }
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x) partial[(size_t)blockIdx.x * C + c] = dwp[c];
}

__global__ void norm_dw_reduce_kernel(float *dw, const float *partial, int nblocks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int b = 0; b < nblocks; b++) s += partial[(size_t)b * C + c];
    dw[c] += s;
}

static int norm_grid(int N) { return N < 1024 ? N : 1024; }

size_t llama_cuda_norm_scratch_bytes(int N, int C) {
    return (size_t)norm_grid(N) * (size_t)C * sizeof(float);
}

template <typename T>
static void rmsnorm_backward_t(llama_cuda_ctx *ctx, void *dinp, int accumulate, void *dinp_bf16, float *dw,
                               const void *dout, const void *inp, const float *w, const float *rstd, int N, int C) {
    int grid = norm_grid(N);
    int threads = C >= 256 ? 256 : (C + 31) / 32 * 32;
    size_t smem = ((size_t)C + 32) * sizeof(float);
    CUDA_ASSERT(smem <= ctx->smem_optin);
    float *partial = (float *)llama_cuda_scratch(ctx, SCR_NORM, llama_cuda_norm_scratch_bytes(N, C));
    void (*k)(T *, int, bf16 *, float *, const T *, const T *, const float *, const float *, int, int) =
        rmsnorm_backward_kernel<T>;
    cuda_allow_smem(k, smem);
    cuda_launch(k, grid, threads, smem, ctx->stream, (T *)dinp, accumulate, (bf16 *)dinp_bf16, partial,
                (const T *)dout, (const T *)inp, w, rstd, N, C);
    cuda_launch(norm_dw_reduce_kernel, cdiv((size_t)C, 256), 256, 0, ctx->stream, dw, (const float *)partial, grid, C);
}

extern "C" void llama_cuda_rmsnorm_backward(llama_cuda_ctx *ctx, void *dinp, int accumulate, void *dinp_bf16,
                                            float *dw, const void *dout, const void *inp, const float *w,
                                            const float *rstd, int N, int C, int dt) {
    if (N <= 0) return;
    if (dt == LLAMA_CUDA_DT_F32)
        rmsnorm_backward_t<float>(ctx, dinp, accumulate, dinp_bf16, dw, dout, inp, w, rstd, N, C);
    else if (dt == LLAMA_CUDA_DT_BF16)
        rmsnorm_backward_t<bf16>(ctx, dinp, accumulate, dinp_bf16, dw, dout, inp, w, rstd, N, C);
    else
        CUDA_ASSERT(!"rmsnorm_backward: unknown dtype");
}

/* ------------------------------------------------------------------------------------------------
 * Rope (HF rotate_half): for each head and i < HS/2 the pair (x[i], x[i+HS/2]) rotates by
 * pos*inv_freq[i]; the backward rotates by the opposite angle (the transpose).
 */

extern "C" void llama_cuda_rope_tables(llama_cuda_ctx *ctx, const llama_config *c, int npos, float *cos_d,
                                       float *sin_d) {
    int half = c->head_dim / 2;
    float *inv = (float *)malloc((size_t)half * sizeof(float));
    float *cs = (float *)malloc((size_t)npos * half * sizeof(float) + 1);
    float *sn = (float *)malloc((size_t)npos * half * sizeof(float) + 1);
    CUDA_ASSERT(inv && cs && sn);
    llama_rope_inv_freq(c, inv);
    /* as llama_rope_ensure: angle = float(pos) * inv_freq in float32, cosf / sinf */
    for (int p = 0; p < npos; p++)
        for (int i = 0; i < half; i++) {
            float ang = (float)p * inv[i];
            cs[(size_t)p * half + i] = cosf(ang);
            sn[(size_t)p * half + i] = sinf(ang);
        }
    llama_cuda_h2d(ctx, cos_d, cs, (size_t)npos * half * sizeof(float));
    llama_cuda_h2d(ctx, sin_d, sn, (size_t)npos * half * sizeof(float));
    free(inv);
    free(cs);
    free(sn);
}

template <typename T>
__global__ void rope_kernel(T *x, int N, int nheads, int HS, int start, int period, const float *cosb,
                            const float *sinb, float sign) {
    int half = HS / 2;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)N * nheads * half) return;
    int i = (int)(idx % half);
    long long nh = idx / half;
    long long n = nh / nheads;
    int pos = start + (int)(n % period);
    T *xh = x + (size_t)nh * HS;
    float a = ldf(xh, i), b = ldf(xh, i + half);
    float c = cosb[(size_t)pos * half + i], s = sign * sinb[(size_t)pos * half + i];
    stf(xh, i, a * c - b * s);
    stf(xh, i + half, b * c + a * s);
}

extern "C" void llama_cuda_rope(llama_cuda_ctx *ctx, void *x, int N, int nheads, int HS, int start, int period,
                                const float *cos_d, const float *sin_d, int backward) {
    size_t total = (size_t)N * nheads * (HS / 2);
    if (total == 0) return;
    CUDA_ASSERT(period >= 1);
    float sign = backward ? -1.0f : 1.0f;
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, int, int, int, int, int, const float *, const float *, float) = rope_kernel<bf16>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)x, N, nheads, HS, start, period, cos_d, sin_d, sign);
    } else {
        void (*k)(float *, int, int, int, int, int, const float *, const float *, float) = rope_kernel<float>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (float *)x, N, nheads, HS, start, period, cos_d, sin_d,
                    sign);
    }
}

/* ------------------------------------------------------------------------------------------------
 * SwiGLU: h = silu(gate) * up.
 */

template <typename T> __global__ void swiglu_forward_kernel(T *h, const T *gate, const T *up, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = ldf(gate, i);
    stf(h, i, g / (1.0f + expf(-g)) * ldf(up, i));
}

template <typename T>
__global__ void swiglu_backward_kernel(T *dgate, T *dup, const T *dh, const T *gate, const T *up, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    /* silu'(g) = sig(g) * (1 + g * (1 - sig(g))); dgate may alias dh: read first */
    float g = ldf(gate, i), d = ldf(dh, i), u = ldf(up, i);
    float sig = 1.0f / (1.0f + expf(-g));
    float silu = g * sig;
    stf(dup, i, d * silu);
    stf(dgate, i, d * u * sig * (1.0f + g * (1.0f - sig)));
}

extern "C" void llama_cuda_swiglu_forward(llama_cuda_ctx *ctx, void *h, const void *gate, const void *up, size_t n) {
    if (n == 0) return;
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, const bf16 *, const bf16 *, size_t) = swiglu_forward_kernel<bf16>;
        cuda_launch(k, cdiv(n, 256), 256, 0, ctx->stream, (bf16 *)h, (const bf16 *)gate, (const bf16 *)up, n);
    } else {
        void (*k)(float *, const float *, const float *, size_t) = swiglu_forward_kernel<float>;
        cuda_launch(k, cdiv(n, 256), 256, 0, ctx->stream, (float *)h, (const float *)gate, (const float *)up, n);
    }
}

extern "C" void llama_cuda_swiglu_backward(llama_cuda_ctx *ctx, void *dgate, void *dup, const void *dh,
                                           const void *gate, const void *up, size_t n) {
    if (n == 0) return;
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, bf16 *, const bf16 *, const bf16 *, const bf16 *, size_t) = swiglu_backward_kernel<bf16>;
        cuda_launch(k, cdiv(n, 256), 256, 0, ctx->stream, (bf16 *)dgate, (bf16 *)dup, (const bf16 *)dh,
                    (const bf16 *)gate, (const bf16 *)up, n);
    } else {
        void (*k)(float *, float *, const float *, const float *, const float *, size_t) = swiglu_backward_kernel<float>;
        cuda_launch(k, cdiv(n, 256), 256, 0, ctx->stream, (float *)dgate, (float *)dup, (const float *)dh,
                    (const float *)gate, (const float *)up, n);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Embedding
 */

__global__ void embedding_forward_kernel(float *out, const int *tokens, const float *wte, int N, int C) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * C) return;
    size_t n = idx / C, c = idx % C;
    out[idx] = wte[(size_t)tokens[n] * C + c];
}

extern "C" void llama_cuda_embedding_forward(llama_cuda_ctx *ctx, float *out, const int *tokens_d, const float *wte,
                                             int N, int C) {
    size_t total = (size_t)N * C;
    if (total == 0) return;
    cuda_launch(embedding_forward_kernel, cdiv(total, 256), 256, 0, ctx->stream, out, tokens_d, wte, N, C);
}

/* Segment s = the rows perm[seg[s] .. seg[s+1]) that hold token stok[s], in row order. */
__global__ void embedding_backward_kernel(float *dwte, const float *dout, const int *perm, const int *seg,
                                          const int *stok, int C) {
    int s = blockIdx.x;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int i = seg[s]; i < seg[s + 1]; i++) acc += dout[(size_t)perm[i] * C + c];
    dwte[(size_t)stok[s] * C + c] += acc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

extern "C" void llama_cuda_embedding_backward(llama_cuda_ctx *ctx, float *dwte, const float *dout, const int *tokens_h,
                                              int N, int C, int pad_id) {
    if (N <= 0) return;
    /* sort (token, row) on the host: rows of one token become a contiguous segment, in row order */
    uint64_t *keys = (uint64_t *)malloc((size_t)N * sizeof(uint64_t));
    CUDA_ASSERT(keys != NULL);
    int n = 0;
    for (int i = 0; i < N; i++)
        if (tokens_h[i] != pad_id) keys[n++] = ((uint64_t)(uint32_t)tokens_h[i] << 32) | (uint32_t)i;
    if (n == 0) {
        free(keys);
        return;
    }
    qsort(keys, (size_t)n, sizeof(uint64_t), cmp_u64);
    size_t need = (size_t)3 * n + 1;
    if (ctx->h_ints_n < need) {
        free(ctx->h_ints);
        ctx->h_ints = (int *)malloc(need * sizeof(int));
        CUDA_ASSERT(ctx->h_ints != NULL);
        ctx->h_ints_n = need;
    }
    int *perm = ctx->h_ints, *seg = perm + n;
    int nseg = 0;
    for (int i = 0; i < n; i++) {
        perm[i] = (int)(keys[i] & 0xffffffffu);
        if (i == 0 || (keys[i] >> 32) != (keys[i - 1] >> 32)) seg[nseg++] = i;
    }
    seg[nseg] = n;
    int *stok = seg + nseg + 1;
    for (int s = 0; s < nseg; s++) stok[s] = (int)(keys[seg[s]] >> 32);
    free(keys);
    size_t used = (size_t)n + nseg + 1 + nseg;
    int *d = (int *)llama_cuda_scratch(ctx, SCR_EMB, need * sizeof(int));
    llama_cuda_h2d(ctx, d, perm, used * sizeof(int));
    dim3 grid((unsigned)nseg, cdiv((size_t)C, 256));
    cuda_launch(embedding_backward_kernel, grid, 256, 0, ctx->stream, dwte, dout, (const int *)d,
                (const int *)(d + n), (const int *)(d + n + nseg + 1), C);
}

/* ------------------------------------------------------------------------------------------------
 * Bias, rows, KV cache
 */

template <typename T> __global__ void add_bias_kernel(T *out, const float *bias, int N, int OC) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * OC) return;
    stf(out, idx, ldf(out, idx) + bias[idx % OC]);
}

extern "C" void llama_cuda_add_bias(llama_cuda_ctx *ctx, void *out, int dt, const float *bias, int N, int OC) {
    size_t total = (size_t)N * OC;
    if (total == 0) return;
    if (dt == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, const float *, int, int) = add_bias_kernel<bf16>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)out, bias, N, OC);
    } else {
        void (*k)(float *, const float *, int, int) = add_bias_kernel<float>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (float *)out, bias, N, OC);
    }
}

template <typename T> __global__ void gather_rows_kernel(T *dst, const T *src, const int *idx, int nr, int C) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)nr * C) return;
    size_t i = e / C, c = e % C;
    dst[e] = src[(size_t)idx[i] * C + c];
}

template <typename T> __global__ void scatter_rows_kernel(T *dst, const T *src, const int *idx, int nr, int C) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)nr * C) return;
    size_t i = e / C, c = e % C;
    dst[(size_t)idx[i] * C + c] = src[e];
}

extern "C" void llama_cuda_gather_rows(llama_cuda_ctx *ctx, void *dst, const void *src, const int *idx_d, int nr, int C,
                                       int dt) {
    size_t total = (size_t)nr * C;
    if (total == 0) return;
    if (dt == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, const bf16 *, const int *, int, int) = gather_rows_kernel<bf16>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)dst, (const bf16 *)src, idx_d, nr, C);
    } else {
        void (*k)(float *, const float *, const int *, int, int) = gather_rows_kernel<float>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (float *)dst, (const float *)src, idx_d, nr, C);
    }
}

extern "C" void llama_cuda_scatter_rows(llama_cuda_ctx *ctx, void *dst, const void *src, const int *idx_d, int nr,
                                        int C, int dt) {
    size_t total = (size_t)nr * C;
    if (total == 0) return;
    if (dt == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, const bf16 *, const int *, int, int) = scatter_rows_kernel<bf16>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)dst, (const bf16 *)src, idx_d, nr, C);
    } else {
        void (*k)(float *, const float *, const int *, int, int) = scatter_rows_kernel<float>;
        cuda_launch(k, cdiv(total, 256), 256, 0, ctx->stream, (float *)dst, (const float *)src, idx_d, nr, C);
    }
}

template <typename T>
__global__ void kv_write_kernel(T *kc, T *vc, const T *k, const T *v, const int *crow, int n, int start, int Tk,
                                int KD, size_t total) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    size_t i = e / KD, d = e % KD;
    size_t r = i / n;
    size_t row = crow ? (size_t)crow[r] : r;
    size_t at = (row * Tk + (size_t)start + i % n) * KD + d;
    kc[at] = k[e];
    vc[at] = v[e];
}

extern "C" void llama_cuda_kv_write(llama_cuda_ctx *ctx, void *kc, void *vc, const void *k, const void *v,
                                    const int *crow_d, int R, int n, int start, int Tk, int KD) {
    size_t total = (size_t)R * n * KD;
    if (total == 0) return;
    CUDA_ASSERT(start + n <= Tk);
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*kk)(bf16 *, bf16 *, const bf16 *, const bf16 *, const int *, int, int, int, int, size_t) =
            kv_write_kernel<bf16>;
        cuda_launch(kk, cdiv(total, 256), 256, 0, ctx->stream, (bf16 *)kc, (bf16 *)vc, (const bf16 *)k,
                    (const bf16 *)v, crow_d, n, start, Tk, KD, total);
    } else {
        void (*kk)(float *, float *, const float *, const float *, const int *, int, int, int, int, size_t) =
            kv_write_kernel<float>;
        cuda_launch(kk, cdiv(total, 256), 256, 0, ctx->stream, (float *)kc, (float *)vc, (const float *)k,
                    (const float *)v, crow_d, n, start, Tk, KD, total);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Optimizer and gradient norm
 */

__global__ void adamw_kernel(float *p, bf16 *plp, float *m, float *v, const float *g, const unsigned char *decay,
                             size_t n, float lr, float b1, float b2, float eps, float wd, float step_size,
                             float sqrt_bc2) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    /* trainer/optim.c adamw_step, operation for operation */
    float gi = g[i], pi = p[i];
    if (wd != 0.0f && (!decay || decay[i])) pi -= lr * wd * pi;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    pi -= step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (plp) plp[i] = __float2bfloat16(pi);
}

extern "C" void llama_cuda_adamw(llama_cuda_ctx *ctx, float *params, void *params_bf16, float *m, float *v,
                                 const float *grads, const unsigned char *decay, size_t n, float lr, float beta1,
                                 float beta2, float eps, float weight_decay, int64_t t) {
    if (n == 0) return;
    CUDA_ASSERT(t >= 1);
    /* bias corrections in double, as adamw_step */
    double bc1 = 1.0 - pow(beta1, (double)t);
    double bc2 = 1.0 - pow(beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    cuda_launch(adamw_kernel, cdiv(n, 256), 256, 0, ctx->stream, params, (bf16 *)params_bf16, m, v, grads, decay, n, lr,
                beta1, beta2, eps, weight_decay, step_size, sqrt_bc2);
}

#define SUMSQ_BLOCKS 1024

__global__ void sumsq_kernel(double *partial, const float *x, size_t n) {
    __shared__ double red[32];
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = block_sum_d(s, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_partials_kernel(double *out, const double *partial, int nb) {
    if (threadIdx.x != 0) return;
    double s = 0.0;
    for (int b = 0; b < nb; b++) s += partial[b];
    *out = s;
}

extern "C" double llama_cuda_sumsq(llama_cuda_ctx *ctx, const float *x, size_t n) {
    if (n == 0) return 0.0;
    int nb = (int)(cdiv(n, 256) < SUMSQ_BLOCKS ? cdiv(n, 256) : SUMSQ_BLOCKS);
    double *partial = (double *)llama_cuda_scratch(ctx, SCR_RED, (SUMSQ_BLOCKS + 1) * sizeof(double));
    cuda_launch(sumsq_kernel, nb, 256, 0, ctx->stream, partial, x, n);
    cuda_launch(sum_partials_kernel, 1, 32, 0, ctx->stream, partial + SUMSQ_BLOCKS, (const double *)partial, nb);
    double r = 0.0;
    llama_cuda_d2h(ctx, &r, partial + SUMSQ_BLOCKS, sizeof(double));
    return r;
}

__global__ void scale_kernel(float *x, size_t n, float c) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= c;
}

extern "C" void llama_cuda_scale(llama_cuda_ctx *ctx, float *x, size_t n, float c) {
    if (n) cuda_launch(scale_kernel, cdiv(n, 256), 256, 0, ctx->stream, x, n, c);
}
