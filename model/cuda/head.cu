/*
 * model/cuda/head.cu: the LM head's reductions over the vocabulary and sampling.
 *
 *   llama_cuda_head_logprobs: per row of a logits chunk, the log-sum-exp, the log-probability of
 *     the next token and the entropy (as the CPU's forward: lse = max + log(sum exp(z - max)) with
 *     the sum in double; H = lse - sum p z), one block per row.
 *   llama_cuda_head_dlogits: dlogits = d * (onehot(next) - softmax(z)) - e * p * (log p + H) for the
 *     rows with a nonzero dlogp or dentropy (llama_backward_logprobs(_entropy)'s LM-head step).
 *   llama_cuda_sample: one block per row implements llama_generate's sampling rules on the GPU, in
 *     transformers' order: the repetition penalty on the raw logits (tokens marked in the row's
 *     `seen` bytes, which the kernel updates with the token it draws); argmax (lowest id on ties)
 *     for greedy; otherwise weights exp((z - max) / temperature), top-k by an exact radix select of
 *     the k-th largest logit (4 passes of 8-bit digit histograms over order-preserving integer
 *     keys; every token tied with it is kept), top-p by a radix select on the weights weighted by
 *     their mass in 2^-40 fixed point (exact integer sums, so the kept set does not depend on
 *     summation order), min-p (weights below min_p, the top token's weight being 1), then a
 *     multinomial draw with one uniform from the row's xoshiro256** stream: the first token (in id
 *     order) whose running sum of weights exceeds u * total. Every reduction runs in a fixed order:
 *     same inputs, same tokens.
 */
#include <limits.h>

#include "model/cuda/cuda_common.cuh"

/* ------------------------------------------------------------------------------------------------
 * Log-probabilities and their gradient
 */

#define HEAD_THREADS 256

__global__ void __launch_bounds__(HEAD_THREADS) head_logprobs_kernel(float *logp, float *entropy, float *lse_out, const float *logits,
                                     const int *tokens, int r0, int V, int T) {
    __shared__ float redf[32];
    __shared__ double redd[32];
    int i = blockIdx.x;
    long long n = (long long)r0 + i;
    if (n % T == T - 1) return; /* the last position predicts nothing (uniform over the block) */
    const float *z = logits + (size_t)i * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
    mx = block_max(mx, redf);
    double s = 0.0, sz = 0.0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float e = expf(z[v] - mx);
        s += e;
        sz += (double)e * z[v];
    }
    s = block_sum_d(s, redd);
    sz = block_sum_d(sz, redd);
    if (threadIdx.x == 0) {
        float lse = mx + (float)log(s);
        lse_out[n] = lse;
        logp[n + 1] = z[tokens[n + 1]] - lse;
        /* H = -sum p log p = lse - sum p z, with p = e / s */
        if (entropy) entropy[n + 1] = (float)((double)lse - sz / s);
    }
}

extern "C" void llama_cuda_head_logprobs(llama_cuda_ctx *ctx, float *logp, float *entropy, float *lse_out,
                                         const float *logits, const int *tokens_d, int r0, int nr, int V, int T) {
    if (nr <= 0) return;
    cuda_launch(head_logprobs_kernel, nr, HEAD_THREADS, 0, ctx->stream, logp, entropy, lse_out, logits, tokens_d, r0, V,
                T);
}

template <typename T>
__global__ void head_dlogits_kernel(T *dz, const float *logits, const int *rowidx, const float *lse, const float *dlogp,
                                    const float *dent, const float *ent, const int *tokens, int V) {
    int i = blockIdx.x;
    int n = rowidx[i];
    float d = dlogp[n + 1], l = lse[n];
    float e = dent ? dent[n + 1] : 0.0f, H = dent ? ent[n + 1] : 0.0f;
    int tok = tokens[n + 1];
    const float *z = logits + (size_t)i * V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        /* dz may be z (fp32): element v is read before it is written, by this thread only */
        const float lp = z[v] - l, p = expf(lp);
        float g = -d * p;
        if (e != 0.0f) g -= e * p * (lp + H);   /* dH/dz = -p (log p + H) */
        if (v == tok) g += d;
        stf(dz, (size_t)i * V + v, g);
    }
}

extern "C" void llama_cuda_head_dlogits(llama_cuda_ctx *ctx, void *dlogits, const float *logits, const int *rowidx_d,
                                        int nr, const float *lse_d, const float *dlogp_d, const float *dent_d,
                                        const float *ent_d, const int *tokens_d, int V) {
    if (nr <= 0) return;
    if (ctx->act == LLAMA_CUDA_DT_BF16) {
        void (*k)(bf16 *, const float *, const int *, const float *, const float *, const float *, const float *,
                  const int *, int) = head_dlogits_kernel<bf16>;
        cuda_launch(k, nr, HEAD_THREADS, 0, ctx->stream, (bf16 *)dlogits, logits, rowidx_d, lse_d, dlogp_d, dent_d, ent_d,
                    tokens_d, V);
    } else {
        void (*k)(float *, const float *, const int *, const float *, const float *, const float *, const float *,
                  const int *, int) = head_dlogits_kernel<float>;
        cuda_launch(k, nr, HEAD_THREADS, 0, ctx->stream, (float *)dlogits, logits, rowidx_d, lse_d, dlogp_d, dent_d, ent_d,
                    tokens_d, V);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Sampling
 */

#define SAMPLE_THREADS 512
#define TOPP_SCALE 1099511627776.0 /* 2^40: weights are <= 1, so V * 2^40 fits in 64 bits */

/* xoshiro256** (model/llama_rng.c), on a state of 4 words in global memory */
__device__ __forceinline__ uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
__device__ uint64_t rng_next(uint64_t *s) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}
__device__ double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* Order-preserving integer keys of floats (larger float, larger key) and back. */
__device__ __forceinline__ unsigned fkey(float x) {
    unsigned u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float funkey(unsigned k) { return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }
__device__ __forceinline__ unsigned long long wfix(float w) { return (unsigned long long)((double)w * TOPP_SCALE); }

__device__ unsigned long long warp_sum_u64(unsigned long long v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ unsigned long long block_sum_u64(unsigned long long v, unsigned long long *red) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum_u64(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    unsigned long long t = 0;
    for (int i = 0; i < nw; i++) t += red[i];
    return t;
}

/* Inclusive scan over the block in thread order; *total gets the block's sum. */
template <typename T> __device__ T block_scan(T x, T *red, T *total) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    for (int o = 1; o < 32; o <<= 1) {
        T y = __shfl_up_sync(FULL_MASK, x, o);
        if (lane >= o) x += y;
    }
    __syncthreads();
    if (lane == 31) red[warp] = x;
    __syncthreads();
    T off = 0, tot = 0;
    for (int i = 0; i < nw; i++) {
        if (i < warp) off += red[i];
        tot += red[i];
    }
    *total = tot;
    return off + x;
}

/* (value, index) maximum with the lowest index on ties; index INT_MAX = none. */
__device__ __forceinline__ void argmax_merge(float &bv, int &bi, float ov, int oi) {
    if (oi != INT_MAX && (bi == INT_MAX || ov > bv || (ov == bv && oi < bi))) {
        bv = ov;
        bi = oi;
    }
}

/* The logit the sampler sees: HF's RepetitionPenaltyLogitsProcessor on tokens already in the row. */
__device__ __forceinline__ float penalized(float z, const unsigned char *seen_row, int v, float rp) {
    return (seen_row && seen_row[v]) ? (z > 0.0f ? z / rp : z * rp) : z;
}

__global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(int *tok_out, float *logp_out, const float *logits, int same_row, int V, float temperature,
                              int top_k, float top_p, float min_p, float rp, unsigned char *seen, uint64_t *rng,
                              const int *rng_idx, float *wbuf, int processed) {
    __shared__ float redf[32];
    __shared__ float redm[32];
    __shared__ int redi[32];
    __shared__ double redd[32];
    __shared__ unsigned long long redq[32];
    __shared__ unsigned hist[256];
    __shared__ unsigned long long histq[256];
    __shared__ unsigned sh_u[2];
    __shared__ unsigned long long sh_q[1];
    __shared__ int sh_i[1];
    __shared__ double sh_d[1];
    int r = blockIdx.x, tid = threadIdx.x, NT = blockDim.x;
    int g = rng_idx ? rng_idx[r] : r; /* the row's RNG stream and repetition set */
    const float *z = logits + (same_row ? 0 : (size_t)r * V);
    float *w = wbuf + (size_t)r * V;
    unsigned char *seen_row = seen ? seen + (size_t)g * V : NULL;

    /* 1. the raw maximum (for the reported log-probability) and the argmax of the penalized logits
     *    (lowest id on ties) */
    float mr = -INFINITY, bv = -INFINITY;
    int bi = INT_MAX;
    for (int v = tid; v < V; v += NT) {
        float x = z[v];
        mr = fmaxf(mr, x);
        argmax_merge(bv, bi, penalized(x, seen_row, v, rp), v);
    }
    for (int o = 16; o > 0; o >>= 1) {
        mr = fmaxf(mr, __shfl_xor_sync(FULL_MASK, mr, o));
        float ov = __shfl_xor_sync(FULL_MASK, bv, o);
        int oi = __shfl_xor_sync(FULL_MASK, bi, o);
        argmax_merge(bv, bi, ov, oi);
    }
    __syncthreads();
    if (tid % 32 == 0) {
        redm[tid / 32] = mr;
        redf[tid / 32] = bv;
        redi[tid / 32] = bi;
    }
    __syncthreads();
    mr = redm[0];
    bv = -INFINITY;
    bi = INT_MAX;
    for (int i = 0; i < NT / 32; i++) {
        mr = fmaxf(mr, redm[i]);
        argmax_merge(bv, bi, redf[i], redi[i]);
    }
    const float mx = bv; /* max of the penalized logits */
    const int best = bi;

    /* 2. sum of exp(z - max) of the raw logits at temperature 1 */
    double s1 = 0.0;
    for (int v = tid; v < V; v += NT) s1 += expf(z[v] - mr);
    s1 = block_sum_d(s1, redd);

    int tok = best;
    double kept_total = 0.0; /* the sampled distribution's mass (processed log-probabilities) */
    if (temperature != 0.0f) {
        /* 3. top-k threshold: the k-th largest penalized logit, by radix select on fkey */
        float thr = -INFINITY;
        if (top_k > 0 && top_k < V) {
            unsigned prefix = 0, mask = 0, krem = (unsigned)top_k;
            for (int shift = 24; shift >= 0; shift -= 8) {
                for (int b = tid; b < 256; b += NT) hist[b] = 0;
                __syncthreads();
                for (int v = tid; v < V; v += NT) {
                    unsigned key = fkey(penalized(z[v], seen_row, v, rp));
                    if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
                }
                __syncthreads();
                if (tid == 0) {
                    unsigned cum = 0;
                    int b = 255;
                    for (; b > 0; b--) {
                        if (cum + hist[b] >= krem) break;
                        cum += hist[b];
                    }
                    sh_u[0] = prefix | ((unsigned)b << shift);
                    sh_u[1] = krem - cum;
                }
                __syncthreads();
                prefix = sh_u[0];
                krem = sh_u[1];
                mask |= 255u << shift;
            }
            thr = funkey(prefix);
        }
        /* 4. weights relative to the top token (the thread that writes w[v] is the only one that
         *    reads it later) */
        double total = 0.0;
        for (int v = tid; v < V; v += NT) {
            float x = penalized(z[v], seen_row, v, rp);
            float p = x >= thr ? expf((x - mx) / temperature) : 0.0f;
            w[v] = p;
            total += p;
        }
        total = block_sum_d(total, redd);
        /* 5. top-p: keep {w > tau} and the first m tokens (by id) with w == tau */
        if (top_p < 1.0f) {
            unsigned long long tq = 0;
            for (int v = tid; v < V; v += NT) tq += wfix(w[v]);
            tq = block_sum_u64(tq, redq);
            unsigned long long need = (unsigned long long)ceil((double)top_p * (double)tq);
            if (need > tq) need = tq;
            if (need < 1) need = 1;
            unsigned prefix = 0, mask = 0;
            unsigned long long above = 0;
            for (int shift = 24; shift >= 0; shift -= 8) {
                for (int b = tid; b < 256; b += NT) histq[b] = 0;
                __syncthreads();
                for (int v = tid; v < V; v += NT) {
                    unsigned key = __float_as_uint(w[v]); /* w >= 0: the bits are ordered */
                    if ((key & mask) == prefix) atomicAdd(&histq[(key >> shift) & 255u], wfix(w[v]));
                }
                __syncthreads();
                if (tid == 0) {
                    int b = 255;
                    for (; b > 0; b--) {
                        if (above + histq[b] >= need) break;
                        above += histq[b];
                    }
                    sh_u[0] = prefix | ((unsigned)b << shift);
                    sh_q[0] = above;
                }
                __syncthreads();
                prefix = sh_u[0];
                above = sh_q[0];
                mask |= 255u << shift;
            }
            unsigned tau = prefix;
            unsigned long long wt = wfix(__uint_as_float(tau));
            unsigned long long m = wt > 0 ? (need - above + wt - 1) / wt : 1;
            if (m < 1) m = 1;
            /* the id of the m-th tie, scanning tiles of NT ids in order */
            if (tid == 0) sh_i[0] = INT_MAX;
            __syncthreads();
            long long carry = 0;
            for (int base = 0; base < V; base += NT) {
                int v = base + tid;
                long long is = (v < V && __float_as_uint(w[v]) == tau) ? 1 : 0, tot;
                long long incl = block_scan<long long>(is, (long long *)redd, &tot);
                if (is && carry + incl == (long long)m) sh_i[0] = v;
                __syncthreads();
                if (sh_i[0] != INT_MAX) break;
                carry += tot;
            }
            int cut = sh_i[0]; /* INT_MAX only if fewer ties than m: keep them all */
            for (int v = tid; v < V; v += NT) {
                unsigned key = __float_as_uint(w[v]);
                if (key < tau || (key == tau && v > cut)) w[v] = 0.0f;
            }
        }
        /* 6. min-p (after top-p): drop weights below min_p x the top token's (which is 1) */
        if (top_p < 1.0f || min_p > 0.0f) {
            double kept = 0.0;
            for (int v = tid; v < V; v += NT) {
                if (w[v] < min_p) w[v] = 0.0f;
                kept += w[v];
            }
            total = block_sum_d(kept, redd);
        }
        kept_total = total;
        /* 7. the draw: the first id whose running sum exceeds u * total */
        if (tid == 0) {
            sh_d[0] = rng_uniform(rng + (size_t)4 * g);
            sh_i[0] = INT_MAX;
        }
        __syncthreads();
        double target = sh_d[0] * total, carry = 0.0;
        int last = -1;
        for (int base = 0; base < V; base += NT) {
            int v = base + tid;
            double x = v < V ? (double)w[v] : 0.0, tot;
            if (x > 0.0) last = v;
            double incl = block_scan<double>(x, redd, &tot);
            if (x > 0.0 && carry + incl > target) atomicMin(&sh_i[0], v);
            __syncthreads();
            if (sh_i[0] != INT_MAX) break;
            carry += tot;
        }
        tok = sh_i[0];
        if (tok == INT_MAX) {
            /* u * total within rounding of the total: the last token with weight (as the CPU) */
            for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(FULL_MASK, last, o));
            __syncthreads();
            if (tid % 32 == 0) redi[tid / 32] = last;
            __syncthreads();
            last = -1;
            for (int i = 0; i < NT / 32; i++) last = max(last, redi[i]);
            tok = last >= 0 ? last : best;
        }
    }
    if (tid == 0) {
        tok_out[r] = tok;
        if (logp_out)
            logp_out[r] = !processed ? z[tok] - mr - (float)log(s1)
                          : temperature == 0.0f ? 0.0f
                          : (float)((double)((penalized(z[tok], seen_row, tok, rp) - mx) / temperature) - log(kept_total));
        if (seen_row) seen_row[tok] = 1;
    }
}

extern "C" void llama_cuda_sample(llama_cuda_ctx *ctx, int *tok_d, float *logp_d, const float *logits, int same_row,
                                  int R, int V, const llama_sampling *s, uint64_t *rng_d, const int *rng_idx_d,
                                  unsigned char *seen_d, float *wbuf) {
    if (R <= 0) return;
    CUDA_ASSERT(V >= 1 && s != NULL);
    int penalize = seen_d && s->repetition_penalty > 0.0f && s->repetition_penalty != 1.0f;
    float min_p = s->min_p > 0.0f ? s->min_p : 0.0f;
    cuda_launch(sample_kernel, R, SAMPLE_THREADS, 0, ctx->stream, tok_d, logp_d, logits, same_row, V, s->temperature,
                s->top_k, s->top_p, min_p, penalize ? s->repetition_penalty : 1.0f, penalize ? seen_d : NULL, rng_d,
                rng_idx_d, wbuf, s->processed_logprobs);
}
