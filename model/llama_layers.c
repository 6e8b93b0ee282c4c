/*
 * model/llama_layers.c: the layer kernels of the Llama decoder, each a forward/backward pair in the
 * style of llm.c's train_gpt2.c: linear (sgemm), RMSNorm, rotary embedding, causal grouped-query
 * attention, SwiGLU. Backward functions accumulate parameter gradients with +=.
 *
 * Parallelism: matrix products go to OpenBLAS through llama_sgemm, which splits them over OpenMP
 * threads (OpenBLAS itself single-threaded, so one thread pool); the other kernels use OpenMP loops in
 * which every output element is computed by exactly one thread in a fixed order, and the few
 * cross-row reductions (norm-weight and bias gradients) run serially in row order. So results are
 * bitwise repeatable for a fixed thread count. Declarations and shapes: llama_internal.h.
 */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/llama_internal.h"

/* ------------------------------------------------------------------------------------------------
 * Matrix products
 */

void llama_blas_init(void) {
    static int done = 0; /* idempotent, so a race between first callers is harmless */
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

void llama_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (M <= 0 || N <= 0) return;
    if (!transA && transB && M <= LLAMA_SMALL_MAX_ROWS) {
        /* A few rows times a weight matrix (decoding): llama_sgemm_small streams the weights once for
         * all rows, without sgemm's packing; threads take blocks of W's rows (16-aligned). Each
         * C[r, n] is a dot product that depends neither on M nor on the thread count. */
        if ((double)M * N * K < LLAMA_SGEMM_PAR_MIN || N < 32 * nt) nt = 1;
        #pragma omp parallel for schedule(static) num_threads(nt)
        for (int p = 0; p < nt; p++) {
            int n0 = p == 0 ? 0 : (int)((long long)N * p / nt) / 16 * 16;
            int n1 = p == nt - 1 ? N : (int)((long long)N * (p + 1) / nt) / 16 * 16;
            if (n1 > n0) llama_sgemm_small(M, n1 - n0, K, A, lda, B + (size_t)n0 * ldb, ldb, beta, C + n0, ldc);
        }
        return;
    }
    if (nt <= 1 || (double)M * N * K < LLAMA_SGEMM_PAR_MIN || (M < 2 * nt && N < 32 * nt)) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int split_rows = M >= 16 * nt || N < 32 * nt;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int p = 0; p < nt; p++) {
        if (split_rows) {
            int m0 = (int)((long long)M * p / nt), m1 = (int)((long long)M * (p + 1) / nt);
            if (m1 <= m0) continue;
            /* rows m0.. of op(A): A stored (M, K) -> row offset; A stored (K, M) -> column offset */
            const float *a = transA ? A + m0 : A + (size_t)m0 * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, m1 - m0, N, K, 1.0f, a, lda, B, ldb, beta, C + (size_t)m0 * ldc, ldc);
        } else {
            /* column blocks on 16-column boundaries (kernel-friendly) */
            int n0 = p == 0 ? 0 : (int)((long long)N * p / nt) / 16 * 16;
            int n1 = p == nt - 1 ? N : (int)((long long)N * (p + 1) / nt) / 16 * 16;
            if (n1 <= n0) continue;
            /* columns n0.. of op(B): B stored (K, N) -> column offset; B stored (N, K) -> row offset */
            const float *b = transB ? B + (size_t)n0 * ldb : B + n0;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n1 - n0, K, 1.0f, A, lda, b, ldb, beta, C + n0, ldc);
        }
    }
}

/* The bf16 copy of x when x lies in prec's parameter block, else NULL. */
static const uint16_t *param_bf16(const llama_prec *prec, const float *x) {
    if (!prec->params_bf16 || x < prec->params || x >= prec->params + prec->num_params) return NULL;
    return prec->params_bf16 + (x - prec->params);
}

void llama_gemm(const llama_prec *prec, int transA, int transB, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    if (prec && prec->bf16 && (double)M * N * K >= LLAMA_SGEMM_PAR_MIN && !omp_in_parallel()) {
        if (llama_gemm_bf16_ex(transA, transB, M, N, K, A, lda, param_bf16(prec, A), B, ldb, param_bf16(prec, B), beta,
                               C, ldc) == 0)
            return;
        static int warned = 0;  /* a refused product (out of memory, oneDNN) is computed in fp32, said once */
        if (!warned) {
            warned = 1;
            fprintf(stderr, "grpo2048: warning: a bf16 matrix product (%d x %d x %d) was refused; computing it in fp32\n",
                    M, N, K);
        }
    }
    llama_sgemm(transA, transB, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* ------------------------------------------------------------------------------------------------
 * Linear: out = inp @ w^T + bias
 */

void llama_matmul_forward(const llama_prec *prec, float *out, const float *inp, const float *w, const float *bias,
                          int N, int IC, int OC, float beta) {
    /* out (N, OC) = beta*out + inp (N, IC) @ w (OC, IC)^T */
    llama_gemm(prec, 0, 1, N, OC, IC, inp, IC, w, IC, beta, out, OC);
    if (bias) {
        #pragma omp parallel for schedule(static) if ((size_t)N * OC >= LLAMA_OMP_MIN_WORK)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++) o[j] += bias[j];
        }
    }
}

void llama_matmul_backward(const llama_prec *prec, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, int N, int IC, int OC, float dinp_beta) {
    /* dinp (N, IC) = dinp_beta*dinp + dout (N, OC) @ w (OC, IC) */
    if (dinp)
        llama_gemm(prec, 0, 0, N, IC, OC, dout, OC, w, IC, dinp_beta, dinp, IC);
    /* dw (OC, IC) += dout^T (OC, N) @ inp (N, IC) */
    llama_gemm(prec, 1, 0, OC, IC, N, dout, OC, inp, IC, 1.0f, dw, IC);
    if (dbias) {
        /* serial over rows: a fixed summation order */
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int j = 0; j < OC; j++) dbias[j] += d[j];
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * RMSNorm (HF LlamaRMSNorm): y = w * (x * rsqrt(mean(x^2) + eps))
 */

void llama_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C >= LLAMA_OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float var = (float)(ss / C);
        float r = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
        if (rstd) rstd[n] = r;
    }
}

void llama_rmsnorm_recompute(float *out, const float *inp, const float *rstd, const float *w, int N, int C) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C >= LLAMA_OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float r = rstd[n];
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
    }
}

void llama_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, int N, int C) {
    /* xhat = x*r, r = (mean(x^2)+eps)^(-1/2), dr/dx_j = -r^3 x_j / C, so with g = dy*w:
     * dx_j = r * (g_j - xhat_j * mean_i(g_i * xhat_i)). */
    #pragma omp parallel for schedule(static) if ((size_t)N * C >= LLAMA_OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float r = rstd[n];
        double s = 0.0;
        for (int c = 0; c < C; c++) s += (double)(dy[c] * w[c]) * (x[c] * r);
        float mean = (float)(s / C);
        for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * w[c] - (x[c] * r) * mean);
    }
    for (int n = 0; n < N; n++) { /* serial: fixed order */
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float r = rstd[n];
        for (int c = 0; c < C; c++) dw[c] += dy[c] * (x[c] * r);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Rotary position embedding, HF rotate_half layout: for each head and i < HS/2 the pair
 * (x[i], x[i+HS/2]) is rotated by angle pos*inv_freq[i] (inv_freq from llama_rope_inv_freq):
 *   x[i]      <- x[i]*cos - x[i+HS/2]*sin
 *   x[i+HS/2] <- x[i+HS/2]*cos + x[i]*sin
 */

void llama_rope_inv_freq(const llama_config *c, float *inv_freq) {
    int HS = c->head_dim, half = HS / 2;
    /* transformers' default rope init, all in float32:
     * inv_freq = 1.0 / (base ** (arange(0, HS, 2).float() / HS)) */
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)HS;
        inv_freq[i] = 1.0f / powf(c->rope_theta, e);
    }
    if (c->rope_type != LLAMA_ROPE_LLAMA3) return;
    /* _compute_llama3_parameters, with torch's float32 tensor arithmetic (Python scalars are cast to
     * float32 before each elementwise operation; the two wavelength bounds are Python floats):
     *   wavelen = 2*pi / inv_freq
     *   inv_l = where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
     *   smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
     *   smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
     *   medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)
     *   inv = where(medium, smoothed, inv_l) */
    double old_ctx = c->rope_original_max_position_embeddings;
    double lo_f = c->rope_low_freq_factor, hi_f = c->rope_high_freq_factor, factor = c->rope_factor;
    float low_wavelen = (float)(old_ctx / lo_f), high_wavelen = (float)(old_ctx / hi_f);
    float two_pi = (float)(2.0 * 3.14159265358979323846), f = (float)factor;
    float old_ctx_f = (float)old_ctx, lo_ff = (float)lo_f, denom = (float)(hi_f - lo_f);
    for (int i = 0; i < half; i++) {
        float inv = inv_freq[i];
        float wavelen = two_pi / inv;
        float inv_l = wavelen > low_wavelen ? inv / f : inv;
        float smooth = (old_ctx_f / wavelen - lo_ff) / denom;
        float smoothed = (1.0f - smooth) * inv_l / f + smooth * inv_l;
        int medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        inv_freq[i] = medium ? smoothed : inv_l;
    }
}

int llama_rope_ensure(llama_model *m, int npos) {
    struct llama_state *st = m->state;
    if (npos <= st->rope_len) return 0;
    int half = m->cfg.head_dim / 2;
    float *c = malloc((size_t)npos * half * sizeof(float));
    float *s = malloc((size_t)npos * half * sizeof(float));
    float *inv = malloc((size_t)half * sizeof(float));
    if (!c || !s || !inv) { free(c); free(s); free(inv); return -1; }
    llama_rope_inv_freq(&m->cfg, inv);
    /* as transformers: angle = float(pos) * inv_freq (one float32 product), cos/sin in float32 */
    for (int i = 0; i < half; i++) {
        for (int p = 0; p < npos; p++) {
            float ang = (float)p * inv[i];
            c[(size_t)p * half + i] = cosf(ang);
            s[(size_t)p * half + i] = sinf(ang);
        }
    }
    free(inv);
    free(st->rope_cos);
    free(st->rope_sin);
    st->rope_cos = c;
    st->rope_sin = s;
    st->rope_len = npos;
    return 0;
}

static void rope_apply(const llama_model *m, float *x, int N, int nheads, int start, int period, float sign) {
    int HS = m->cfg.head_dim, half = HS / 2;
    const struct llama_state *st = m->state;
    LLAMA_ASSERT(start + period <= st->rope_len);
    #pragma omp parallel for schedule(static) if ((size_t)N * nheads * HS >= LLAMA_OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        int pos = start + n % period;
        const float *cs = st->rope_cos + (size_t)pos * half;
        const float *sn = st->rope_sin + (size_t)pos * half;
        for (int h = 0; h < nheads; h++) {
            float *xh = x + ((size_t)n * nheads + h) * HS;
            for (int i = 0; i < half; i++) {
                float a = xh[i], b = xh[i + half];
                float c = cs[i], s = sign * sn[i];
                xh[i] = a * c - b * s;
                xh[i + half] = b * c + a * s;
            }
        }
    }
}

void llama_rope_forward(const llama_model *m, float *x, int N, int nheads, int start, int period) {
    rope_apply(m, x, N, nheads, start, period, 1.0f);
}

void llama_rope_backward(const llama_model *m, float *dx, int N, int nheads, int start, int period) {
    /* The rotation is orthogonal: its transpose is the rotation by -angle. */
    rope_apply(m, dx, N, nheads, start, period, -1.0f);
}

/* ------------------------------------------------------------------------------------------------
 * Attention: softmax(q k^T / sqrt(HS) + causal mask) v per head; query head h reads kv head
 * h / (NH/NKV) (HF repeat_kv). The forward keeps only the log-sum-exp of each softmax row; the
 * backward recomputes the probabilities from it (as FlashAttention does), so memory is O(T) per row.
 * llama_attend_group serves generation (one query row, one KV head group, against the KV cache);
 * llama_attend_row is its one-head form, kept as the reference of the CUDA tests; the training kernels
 * below work on tiles of query rows with sgemm.
 */

float llama_attend_row(float *out, float *scores, const float *q, const float *kbase, const float *vbase,
                       int kstride, int j0, int j1, int HS, float scale) {
    float mx = -INFINITY;
    for (int j = j0; j <= j1; j++) {
        const float *kj = kbase + (size_t)j * kstride;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int d = 0; d < HS; d++) s += q[d] * kj[d];
        s *= scale;
        scores[j] = s;
        if (s > mx) mx = s;
    }
    float sum = 0.0f;
    for (int j = j0; j <= j1; j++) {
        float e = expf(scores[j] - mx);
        scores[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int j = j0; j <= j1; j++) {
        const float *vj = vbase + (size_t)j * kstride;
        float p = scores[j] * inv;
        #pragma omp simd
        for (int d = 0; d < HS; d++) out[d] += p * vj[d];
    }
    return mx + logf(sum);
}

/* Any x86-64 (and AVX2 where the CPU has it: target_clones picks at load time): llama_attend_group for
 * head sizes the AVX-512 kernel does not take, and on CPUs without AVX-512. */
__attribute__((target_clones("arch=haswell", "default")))
static void attend_group_generic(float *out, float *scores, const float *q, const float *kbase, const float *vbase,
                                 int kstride, int j0, int j1, int HS, int rep, float scale) {
    const int n = j1 + 1;
    for (int j = j0; j <= j1; j++) {
        const float *kj = kbase + (size_t)j * kstride;
        for (int r = 0; r < rep; r++) {
            const float *qr = q + (size_t)r * HS;
            float s = 0.0f;
            #pragma omp simd reduction(+:s)
            for (int d = 0; d < HS; d++) s += qr[d] * kj[d];
            scores[(size_t)r * n + j] = s * scale;
        }
    }
    for (int r = 0; r < rep; r++) {
        float *sc = scores + (size_t)r * n, mx = -INFINITY, sum = 0.0f;
        for (int j = j0; j <= j1; j++) if (sc[j] > mx) mx = sc[j];
        for (int j = j0; j <= j1; j++) { float e = expf(sc[j] - mx); sc[j] = e; sum += e; }
        float inv = 1.0f / sum;
        for (int j = j0; j <= j1; j++) sc[j] *= inv;
        float *o = out + (size_t)r * HS;
        for (int d = 0; d < HS; d++) o[d] = 0.0f;
    }
    for (int j = j0; j <= j1; j++) {
        const float *vj = vbase + (size_t)j * kstride;
        for (int r = 0; r < rep; r++) {
            const float p = scores[(size_t)r * n + j];
            float *o = out + (size_t)r * HS;
            #pragma omp simd
            for (int d = 0; d < HS; d++) o[d] += p * vj[d];
        }
    }
}

#ifdef GRPO2048_HAVE_MVEC
/* glibc's libmvec: expf on 16 floats (AVX-512; the vector variant GCC calls for `#pragma omp simd` loops
 * of expf; at most 4 ulp from expf). */
__m512 _ZGVeN16v_expf(__m512 x);
#endif

/* The 16 horizontal sums of a[0..15] as one vector: lane i = sum of a[i]'s lanes. 45 shuffles and adds
 * instead of 16 separate reductions (about 8 each). */
__attribute__((target("avx512f"))) static inline __m512 hsum16(const __m512 *a) {
    __m512 b[8], c[4];
    for (int i = 0; i < 8; i++)   /* per 128-bit lane: a[2i] and a[2i+1], pairs of elements summed */
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)   /* per 128-bit lane: [a4i, a4i+1, a4i+2, a4i+3], each that lane's sum */
        c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 f0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 f1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* AVX-512 for HS a multiple of 16 up to 128, any rep. Scores: blocks of 16 keys, each head's query in
 * registers, 16 dot products reduced together (hsum16), the block's keys re-read from L1 by the next head.
 * Softmax on 16 scores at a time (libmvec's expf where glibc has it); the 1/sum is applied to the outputs.
 * Outputs: a block of <= 3 heads' accumulators stays in registers across all positions, each value row
 * loaded once per block. */
__attribute__((target("avx512f"))) static void attend_group_avx512(float *out, float *scores, const float *q,
                                                                    const float *kbase, const float *vbase,
                                                                    int kstride, int j0, int j1, int HS, int rep,
                                                                    float scale) {
    const int n = j1 + 1, nv = HS / 16;
    float inv[64];   /* 1 / softmax sum per head (rep <= 64, checked by the caller) */
    for (int r = 0; r < rep; r++) {
        const float *qr = q + (size_t)r * HS;
        float *sc = scores + (size_t)r * n;
        __m512 qv[8];
        for (int c = 0; c < nv; c++) qv[c] = _mm512_mul_ps(_mm512_loadu_ps(qr + 16 * c), _mm512_set1_ps(scale));
        int j = j0;
        for (; j + 16 <= n; j += 16) {
            __m512 acc[16];
            for (int t = 0; t < 16; t++) {
                const float *kj = kbase + (size_t)(j + t) * kstride;
                acc[t] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
                for (int c = 1; c < nv; c++) acc[t] = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kj + 16 * c), acc[t]);
            }
            _mm512_storeu_ps(sc + j, hsum16(acc));
        }
        for (; j < n; j++) {
            const float *kj = kbase + (size_t)j * kstride;
            __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
            for (int c = 1; c < nv; c++) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kj + 16 * c), acc);
            sc[j] = _mm512_reduce_add_ps(acc);
        }
        __m512 mx16 = _mm512_set1_ps(-INFINITY);
        for (j = j0; j < n; j += 16) {
            __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            mx16 = _mm512_max_ps(mx16, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, sc + j));
        }
        const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(mx16));
        __m512 sum16 = _mm512_setzero_ps();
        for (j = j0; j < n; j += 16) {
            __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            __m512 x = _mm512_sub_ps(_mm512_mask_loadu_ps(mx, k, sc + j), mx);   /* masked lanes: exp(0), dropped */
#ifdef GRPO2048_HAVE_MVEC
            __m512 e = _ZGVeN16v_expf(x);
#else
            float tmp[16];
            _mm512_storeu_ps(tmp, x);
            for (int t = 0; t < 16; t++) tmp[t] = expf(tmp[t]);
            __m512 e = _mm512_loadu_ps(tmp);
#endif
            _mm512_mask_storeu_ps(sc + j, k, e);
            sum16 = _mm512_add_ps(sum16, _mm512_maskz_mov_ps(k, e));
        }
        inv[r] = 1.0f / _mm512_reduce_add_ps(sum16);
    }
    for (int r0 = 0; r0 < rep; r0 += 3) {
        const int nr = rep - r0 < 3 ? rep - r0 : 3;
        for (int c0 = 0; c0 < nv; c0 += 4) {
            const int nc = nv - c0 < 4 ? nv - c0 : 4;
            __m512 acc[3][4];
            for (int r = 0; r < 3; r++) for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
            for (int j = j0; j <= j1; j++) {
                const float *vj = vbase + (size_t)j * kstride + 16 * c0;
                __m512 v[4];
                for (int c = 0; c < nc; c++) v[c] = _mm512_loadu_ps(vj + 16 * c);
                for (int r = 0; r < nr; r++) {
                    __m512 p = _mm512_set1_ps(scores[(size_t)(r0 + r) * n + j]);
                    for (int c = 0; c < nc; c++) acc[r][c] = _mm512_fmadd_ps(p, v[c], acc[r][c]);
                }
            }
            for (int r = 0; r < nr; r++)
                for (int c = 0; c < nc; c++)
                    _mm512_storeu_ps(out + (size_t)(r0 + r) * HS + 16 * (c0 + c),
                                     _mm512_mul_ps(acc[r][c], _mm512_set1_ps(inv[r0 + r])));
        }
    }
}

void llama_attend_group(float *out, float *scores, const float *q, const float *kbase, const float *vbase, int kstride,
                        int j0, int j1, int HS, int rep, float scale) {
    static int avx512 = -1;   /* idempotent, so a race between first callers is harmless */
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (avx512 && HS % 16 == 0 && HS <= 128 && rep <= 64)
        attend_group_avx512(out, scores, q, kbase, vbase, kstride, j0, j1, HS, rep, scale);
    else
        attend_group_generic(out, scores, q, kbase, vbase, kstride, j0, j1, HS, rep, scale);
}

static inline int window_start(int t, int window) {
    return (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0;
}

/* Training attention works on tiles of LLAMA_ATT_TILE query rows of one (sequence, head): the
 * scores against the keys the tile can see, S = scale * Q_tile K^T (nq x nk), are one sgemm, the
 * masked softmax runs row by row, and P V is a second sgemm. Only the diagonal block is partly
 * wasted (masked). Scratch per thread: 2 x LLAMA_ATT_TILE x T floats. */

size_t llama_attention_scratch_floats(int T) {
    return (size_t)2 * LLAMA_ATT_TILE * (size_t)T;
}

void llama_attention_forward(float *out, float *lse, float *scratch, int nthreads, const float *q, const float *k,
                             const float *v, int B, int T, int NH, int NKV, int HS, int window) {
    int QD = NH * HS, KD = NKV * HS, rep = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    int nt = (size_t)B * NH * T * T * HS >= LLAMA_OMP_MIN_WORK ? nthreads : 1;
    if (nt > omp_get_max_threads()) nt = omp_get_max_threads();
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / rep;
        float *S = scratch + (size_t)omp_get_thread_num() * llama_attention_scratch_floats(T);
        const float *qb = q + (size_t)b * T * QD + (size_t)h * HS;
        const float *kb = k + (size_t)b * T * KD + (size_t)kh * HS;
        const float *vb = v + (size_t)b * T * KD + (size_t)kh * HS;
        float *ob = out + (size_t)b * T * QD + (size_t)h * HS;
        for (int i0 = 0; i0 < T; i0 += LLAMA_ATT_TILE) {
            int i1 = i0 + LLAMA_ATT_TILE < T ? i0 + LLAMA_ATT_TILE : T, nq = i1 - i0;
            int jlo = window_start(i0, window), nk = i1 - jlo;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HS, scale, qb + (size_t)i0 * QD, QD,
                        kb + (size_t)jlo * KD, KD, 0.0f, S, nk);
            for (int r = 0; r < nq; r++) {
                int i = i0 + r, j0 = window_start(i, window);
                float *s = S + (size_t)r * nk;
                float mx = -INFINITY;
                for (int j = j0; j <= i; j++) if (s[j - jlo] > mx) mx = s[j - jlo];
                float sum = 0.0f;
                for (int j = j0; j <= i; j++) {
                    float e = expf(s[j - jlo] - mx);
                    s[j - jlo] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (int j = jlo; j < j0; j++) s[j - jlo] = 0.0f;
                for (int j = j0; j <= i; j++) s[j - jlo] *= inv;
                for (int j = i + 1; j < i1; j++) s[j - jlo] = 0.0f;
                lse[(size_t)bh * T + i] = mx + logf(sum);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HS, nk, 1.0f, S, nk, vb + (size_t)jlo * KD, KD,
                        0.0f, ob + (size_t)i0 * QD, QD);
        }
    }
}

void llama_attention_backward(float *dq, float *dk, float *dv, float *scratch, int nthreads, const float *dout,
                              const float *q, const float *k, const float *v, const float *out, const float *lse,
                              int B, int T, int NH, int NKV, int HS, int window) {
    int QD = NH * HS, KD = NKV * HS, rep = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    size_t N = (size_t)B * T;
    memset(dk, 0, N * KD * sizeof(float));
    memset(dv, 0, N * KD * sizeof(float));
    /* With P = softmax(S), S = scale Q K^T, O = P V and D_i = dO_i . O_i:
     * dV += P^T dO;  dP = dO V^T;  dS = P * (dP - D);  dQ = scale dS K;  dK += scale dS^T Q.
     * Parallel over (b, kv head): a kv head's dK/dV rows and its query heads' dQ rows are owned by
     * one thread, and its query heads are processed in order. */
    int nt = (size_t)B * NH * T * T * HS >= LLAMA_OMP_MIN_WORK ? nthreads : 1;
    if (nt > omp_get_max_threads()) nt = omp_get_max_threads();
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int bk = 0; bk < B * NKV; bk++) {
        int b = bk / NKV, kh = bk % NKV;
        float *P = scratch + (size_t)omp_get_thread_num() * llama_attention_scratch_floats(T);
        float *dS = P + (size_t)LLAMA_ATT_TILE * T;
        const float *kb = k + (size_t)b * T * KD + (size_t)kh * HS;
        const float *vb = v + (size_t)b * T * KD + (size_t)kh * HS;
        float *dkb = dk + (size_t)b * T * KD + (size_t)kh * HS;
        float *dvb = dv + (size_t)b * T * KD + (size_t)kh * HS;
        for (int h = kh * rep; h < (kh + 1) * rep; h++) {
            const float *qb = q + (size_t)b * T * QD + (size_t)h * HS;
            const float *ob = out + (size_t)b * T * QD + (size_t)h * HS;
            const float *dob = dout + (size_t)b * T * QD + (size_t)h * HS;
            float *dqb = dq + (size_t)b * T * QD + (size_t)h * HS;
            const float *lb = lse + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < T; i0 += LLAMA_ATT_TILE) {
                int i1 = i0 + LLAMA_ATT_TILE < T ? i0 + LLAMA_ATT_TILE : T, nq = i1 - i0;
                int jlo = window_start(i0, window), nk = i1 - jlo;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HS, scale, qb + (size_t)i0 * QD, QD,
                            kb + (size_t)jlo * KD, KD, 0.0f, P, nk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HS, 1.0f, dob + (size_t)i0 * QD, QD,
                            vb + (size_t)jlo * KD, KD, 0.0f, dS, nk);
                for (int r = 0; r < nq; r++) {
                    int i = i0 + r, j0 = window_start(i, window);
                    const float *dor = dob + (size_t)i * QD, *orow = ob + (size_t)i * QD;
                    float D = 0.0f;
                    for (int d = 0; d < HS; d++) D += dor[d] * orow[d];
                    float *p = P + (size_t)r * nk, *ds = dS + (size_t)r * nk;
                    float l = lb[i];
                    for (int j = jlo; j < i1; j++) {
                        float pj = (j >= j0 && j <= i) ? expf(p[j - jlo] - l) : 0.0f;
                        p[j - jlo] = pj;
                        ds[j - jlo] = pj * (ds[j - jlo] - D) * scale;
                    }
                }
                /* dQ_tile = dS K;  dK += dS^T Q_tile;  dV += P^T dO_tile */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HS, nk, 1.0f, dS, nk, kb + (size_t)jlo * KD, KD,
                            0.0f, dqb + (size_t)i0 * QD, QD);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, nq, 1.0f, dS, nk, qb + (size_t)i0 * QD, QD,
                            1.0f, dkb + (size_t)jlo * KD, KD);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, nq, 1.0f, P, nk, dob + (size_t)i0 * QD, QD,
                            1.0f, dvb + (size_t)jlo * KD, KD);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * SwiGLU: h = silu(gate) * up, silu(x) = x * sigmoid(x).
 */

void llama_swiglu_forward(float *h, const float *gate, const float *up, size_t n) {
    #pragma omp parallel for schedule(static) if (n >= LLAMA_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void llama_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n) {
    /* silu'(g) = sig(g) * (1 + g * (1 - sig(g))) */
    #pragma omp parallel for schedule(static) if (n >= LLAMA_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], d = dh[i];
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g * sig;
        dup[i] = d * silu;
        dgate[i] = d * up[i] * sig * (1.0f + g * (1.0f - sig));
    }
}
