/*
 * model/llama_internal.h: what the model's .c files share and users of llama.h do not need: the
 * private state (activation buffers, rope tables), the layer kernels of llama_layers.c (forward /
 * backward pairs, llm.c style), and helpers for building a model's parameter table.
 *
 * Shapes: N = rows (B*T in training, R*n in generation), C hidden, F intermediate, NH/NKV heads,
 * HS head dim, QD = NH*HS, KD = NKV*HS. All matrices row-major, weights (out, in) as in nn.Linear.
 */
#ifndef GRPO2048_LLAMA_INTERNAL_H
#define GRPO2048_LLAMA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama.h"

/* OpenMP loops run in parallel only above this much work (element-operations): below it a
 * parallel region costs more than it saves, badly so on a loaded machine. Results do not depend on
 * it (every element is computed the same way by whichever thread). */
#define LLAMA_OMP_MIN_WORK ((size_t)1 << 15)

/* float32 -> bfloat16, round to nearest even, NaN kept quiet (as torch's .to(torch.bfloat16)): the one
 * rounding of bf16 checkpoints (llama_safetensors.c) and bf16 products (llama_gemm_bf16.c). */
static inline uint16_t llama_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* Programming errors: print file:line and abort. */
#define LLAMA_ASSERT(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: assertion failed: %s\n", \
    __FILE__, __LINE__, #cond); abort(); } } while (0)

/* How a model's products are computed. NULL or bf16 == 0: fp32 (llama_sgemm). bf16 == 1: every product
 * of at least LLAMA_SGEMM_PAR_MIN multiply-adds in bf16 (llama_gemm_bf16_ex), smaller ones in fp32; an
 * operand inside [params, params + num_params) is taken from params_bf16 (the same offsets), the
 * copy the forward pass makes once, instead of being converted per product. */
typedef struct {
    int bf16;
    const float *params;           /* the model's parameter block (llama_model.params) */
    size_t num_params;
    const uint16_t *params_bf16;   /* (num_params) its bf16 copy, or NULL */
} llama_prec;
/* Activations of one decoder layer kept by the forward pass for the backward pass. */
typedef struct {
    float *res_in;   /* (N, C) residual stream entering the layer */
    float *rstd1;    /* (N) 1/sqrt(mean(res_in^2)+eps) */
    float *q;        /* (N, QD) queries after (q_norm and) rope */
    float *k;        /* (N, KD) keys after (k_norm and) rope */
    float *qr;       /* (N, QD) Qwen3: q_proj output before q_norm; NULL otherwise */
    float *kr;       /* (N, KD) Qwen3: k_proj output before k_norm; NULL otherwise */
    float *rstdq;    /* (N*NH) Qwen3: q_norm's 1/sqrt(mean(q_head^2)+eps) per (row, head); NULL otherwise */
    float *rstdk;    /* (N*NKV) Qwen3: the same for k_norm; NULL otherwise */
    float *v;        /* (N, KD) values */
    float *atty;     /* (N, QD) attention output (input of o_proj) */
    float *lse;      /* (B, NH, T) log-sum-exp of each softmax row (scaled scores) */
    float *res_mid;  /* (N, C) residual after attention */
    float *rstd2;    /* (N) */
    float *gate;     /* (N, F) gate_proj output (pre-activation) */
    float *up;       /* (N, F) up_proj output */
} llama_layer_acts;

struct llama_state {
    /* Training activations, one allocation (acts_mem) sized for cap_rows = B*T rows. */
    size_t cap_rows;
    float *acts_mem;
    llama_layer_acts *la;   /* (L) */
    float *res_final;       /* (N, C) residual after the last layer */
    float *lnf;             /* (N, C) final norm output (input of lm_head) */
    float *rstdf;           /* (N) */
    float *head_lse;        /* (N) log-sum-exp of the logits of each row */
    /* Scratch shared by forward and backward. */
    float *ln;              /* (N, C) norm output feeding projections (recomputed in backward) */
    float *hbuf;            /* (N, F) silu(gate)*up (recomputed in backward) */
    float *dres;            /* (N, C) gradient of the residual stream */
    float *dln;             /* (N, C) gradient of a norm output */
    float *dh;              /* (N, F) gradient of hbuf, then of gate */
    float *dup;             /* (N, F) gradient of up */
    float *datty;           /* (N, QD) */
    float *dq;              /* (N, QD) */
    float *dk;              /* (N, KD) */
    float *dv;              /* (N, KD) */
    float *dkr;             /* (N, KD) Qwen3: gradient of k before k_norm; NULL otherwise */
    int *rowidx;            /* (N) rows of the LM head backward */
    /* Attention scratch: att_threads x llama_attention_scratch_floats(att_T), regrown on demand. */
    float *att_scratch;
    int att_threads, att_T;
    /* LM-head chunk buffers: logit_rows x V logits and logit_rows x C gathered inputs. */
    int logit_rows;
    float *logits;          /* (logit_rows, V) */
    float *xrows;           /* (logit_rows, C) */
    /* The last successful forward. */
    int *tokens;            /* (cap_rows) copy of the tokens */
    int B, T, fwd_valid;
    float inv_temperature;  /* 1 / the temperature of the last llama_forward_logprobs_t (logits are divided by it) */
    /* Rope tables for positions [0, rope_len): cos/sin (rope_len, HS/2). */
    int rope_len;
    float *rope_cos, *rope_sin;
    /* Gradient checkpointing: the layout of acts_mem. 0: every la[l] field has its own rows.
     * 1: only la[l].res_in is per layer; every other la[l] field of every layer points into one
     * shared set of rows (the "work" layer), which holds the activations of layer work_layer: the
     * forward leaves the last layer's there, the backward recomputes layer l's from la[l].res_in
     * before its backward whenever work_layer != l. */
    int ckpt;
    int work_layer;         /* -1: the work rows hold no layer's activations */
    /* bf16 products (llama_set_bf16): the parameters' bf16 copy, remade by every forward (the backward
     * that follows uses the same weights), and the precision the products of this forward/backward use. */
    uint16_t *params_bf16;  /* (num_params) or NULL */
    llama_prec prec;
};

/* Largest logits chunk, in floats (16 MiB), and the rows it allows for vocabulary V (>= 1). */
#define LLAMA_LOGITS_CHUNK_FLOATS ((size_t)1 << 24)
int llama_logit_chunk_rows(int V);

/* Makes sure the rope tables cover positions [0, npos). 0 or -1 (out of memory). */
int llama_rope_ensure(llama_model *m, int npos);

/* inv_freq (HS/2) of c's rotary embedding, in float32 as transformers computes it: the default
 * 1 / theta^(2i/HS), then for LLAMA_ROPE_LLAMA3 the rescaling documented at llama_config (source:
 * transformers modeling_rope_utils._compute_llama3_parameters, same operation order). */
void llama_rope_inv_freq(const llama_config *c, float *inv_freq);

/* 1 if c's attention has q_norm/k_norm (Qwen3ForCausalLM). */
int llama_has_qk_norm(const llama_config *c);

/* Builds m's tensor table and named pointers for config c, allocating zeroed params and grads.
 * 0, or -1 (invalid config / out of memory) with err. */
int llama_model_alloc(llama_model *m, const llama_config *c, char *err, size_t errlen);

/* 1 if c's o_proj has a bias (LlamaForCausalLM or Qwen3ForCausalLM with attention_bias, as in HF's
 * LlamaAttention / Qwen3Attention; Qwen2's o_proj never has one). */
int llama_has_o_bias(const llama_config *c);

/* Writes path atomically: data to "path.tmp.<pid>", fsync, rename, fsync of the directory.
 * The writer callback writes to f and returns 0, or -1 with err. 0 or -1 with err. */
int llama_write_atomic(const char *path, int (*writer)(FILE *f, const void *ctx, char *err, size_t errlen),
                       const void *ctx, char *err, size_t errlen);

/* Reads a whole file into a malloc'ed NUL-terminated buffer (*len bytes when len is not NULL).
 * NULL with err naming path when it cannot be opened or read. */
char *llama_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Internal: config.json writer with a chosen torch_dtype ("float32" or "bfloat16"). */
int llama_config_to_json_dtype(const llama_config *c, const char *path, const char *dtype, char *err, size_t errlen);

/* ---- layer kernels (llama_layers.c) ---- */

/* Products below this many multiply-adds run as one single-threaded sgemm call. */
#define LLAMA_SGEMM_PAR_MIN (1 << 18)
/* X (M, K) @ W^T with M at most this many rows runs as llama_sgemm_small (W streamed once, no
 * packing); above it sgemm's packing pays off. Measured with bench_model --shape smollm2 on a 2-core
 * AVX-512 Xeon: see model/llama_gemm_small.c and the commit that set it. */
#define LLAMA_SMALL_MAX_ROWS 32

/* C (M, N) = beta*C + A (M, K) @ W (N, K)^T, row-major with row strides lda, ldw, ldc; single-threaded;
 * for small M (model/llama_gemm_small.c). beta 0: C is only written. Each C[m, n] is computed the same
 * way for any M and any position of n (bitwise independent of the batch), with AVX-512, AVX2+FMA or
 * plain C chosen once from the CPU's features. */
void llama_sgemm_small(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float beta, float *C,
                       int ldc);
/* "avx512", "avx2" or "scalar": the kernel llama_sgemm_small runs. */
const char *llama_sgemm_small_isa(void);
/* Chooses llama_sgemm_small's kernel ("avx512", "avx2", "scalar"; NULL or "" = the CPU's best), for
 * tests and benchmarks. -1 (nothing changed) for an unknown name or one this CPU cannot run. The
 * environment variable GRPO2048_GEMM_SMALL_ISA is read the same way on first use. Not thread-safe:
 * call it before any model work. */
int llama_sgemm_small_set_isa(const char *isa);

/* Puts OpenBLAS in single-threaded mode (once per process): the model parallelizes sgemm itself
 * with OpenMP (llama_sgemm), so only one thread pool exists and none spins against the other. */
void llama_blas_init(void);

/* C (M, N) = beta*C + op(A) (M, K) @ op(B) (K, N), row-major; transA/transB: 0 or 1 (op = transpose);
 * lda/ldb/ldc: row strides as stored. Split over OpenMP threads into blocks of rows of C (when M is
 * large) or of columns of C, each a single-threaded cblas_sgemm (or, for A @ B^T with M <=
 * LLAMA_SMALL_MAX_ROWS, llama_sgemm_small): no reduction is split, so results are repeatable
 * for a fixed thread count. */
void llama_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

/* ---- bfloat16 products (llama_gemm_bf16.c, oneDNN) ---- */

/* C (M, N) = beta*C + op(A) (M, K) @ op(B) (K, N) as llama_sgemm, with A and B rounded to bfloat16
 * (nearest even) and products accumulated in fp32 by oneDNN's matmul (its OpenMP threads; call it
 * outside parallel regions). Calls are serialized by a lock (shared bf16 scratch). 0, or -1 when bf16
 * is not supported or memory/oneDNN fails (C then untouched). */
int llama_gemm_bf16(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* dst (n) = src (n) rounded to bfloat16 (nearest even, NaN kept quiet), OpenMP-parallel. Where bf16
 * products are not supported, a portable loop (the same results). */
void llama_to_bf16(uint16_t *dst, const float *src, size_t n);
/* As llama_gemm_bf16, where an operand may come already in bf16: Abf (NULL: convert A) holds op(A)'s
 * stored matrix in bf16 with the same row stride lda, and likewise Bbf for B. */
int llama_gemm_bf16_ex(int transA, int transB, int M, int N, int K, const float *A, int lda, const uint16_t *Abf,
                       const float *B, int ldb, const uint16_t *Bbf, float beta, float *C, int ldc);

/* llama_sgemm or, per prec (NULL allowed), the bf16 product (fp32 where that is refused, said once). */
void llama_gemm(const llama_prec *prec, int transA, int transB, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* out (N, OC) = beta*out + inp (N, IC) @ w (OC, IC)^T + bias (OC, or NULL), in precision prec
 * (NULL: fp32; see llama_gemm). */
void llama_matmul_forward(const llama_prec *prec, float *out, const float *inp, const float *w, const float *bias,
                          int N, int IC, int OC, float beta);
/* For out = inp @ w^T + bias: dinp (N, IC) = dinp_beta*dinp + dout @ w (skipped when dinp NULL);
 * dw (OC, IC) += dout^T @ inp; dbias (OC) += column sums of dout (skipped when NULL). Precision prec
 * as for the forward (bias sums always fp32). */
void llama_matmul_backward(const llama_prec *prec, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, int N, int IC, int OC, float dinp_beta);

/* out (N, C) = w * (inp * rstd), rstd (N, or NULL) = 1/sqrt(mean(inp^2) + eps) (HF LlamaRMSNorm).
 * out may be inp (in place): each row's rstd is computed before the row is overwritten. */
void llama_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
/* out (N, C) = w * (inp * rstd) with a stored rstd (N). */
void llama_rmsnorm_recompute(float *out, const float *inp, const float *rstd, const float *w, int N, int C);
/* dinp (N, C) += rstd*(dout*w - xhat*mean(dout*w*xhat)) with xhat = inp*rstd; dw (C) += sum_n dout*xhat. */
void llama_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, int N, int C);

/* In-place rope on x (N, nheads*HS): row i is at position start + i % period. Tables from m. */
void llama_rope_forward(const llama_model *m, float *x, int N, int nheads, int start, int period);
/* Gradient of llama_rope_forward: in place on dx (N, nheads*HS) (the inverse rotation). */
void llama_rope_backward(const llama_model *m, float *dx, int N, int nheads, int start, int period);

/* ---- sampling with a KV cache (llama_decode.c): the forward step of llama_generate.c and llama_power.c ---- */

/* The KV cache and the work buffers of one sampling call. */
typedef struct {
    int cache_rows;      /* rows of the KV cache */
    int Tmax;            /* positions per cache row */
    int rows_cap;        /* work rows of one forward (tokens) */
    int logit_rows;      /* rows of logits one forward may return */
    int nthreads;
    int Pmax;            /* longest prefill */
    float *mem;
    float **kc, **vc;    /* (L) each (cache_rows, Tmax, NKV*HS) */
    float *x, *ln, *q, *k, *v, *att, *h1, *h2;   /* (rows_cap, C / QD / KD / F) */
    float *xl;           /* (logit_rows, C) final-norm rows */
    float *logits;       /* (logit_rows, V) */
    float *scores;       /* (nthreads, rep * Tmax): one KV head's group of query heads (llama_attend_group) */
    float *lse;          /* (NH, Pmax) prefill softmax statistics (unused afterwards) */
    float *att_scratch;  /* (nthreads, llama_attention_scratch_floats(Pmax)) prefill attention tiles */
} llama_decode_buf;

/* Allocates b for cache_rows cache rows of Tmax positions, forwards of up to rows_cap one-token rows (and
 * prefills of up to Pmax tokens), up to logit_rows rows of logits. 0, or -1 when out of memory (b zeroed). */
int llama_decode_alloc(llama_decode_buf *b, const llama_config *c, int cache_rows, int Tmax, int rows_cap,
                       int logit_rows, int Pmax);
void llama_decode_free(llama_decode_buf *b);

/* n == 1: R rows, row r feeds tokens[r] at position pos[r] of cache row crow[r] (R <= logit_rows);
 * n > 1: a prefill, R == 1, tokens[0..n) at positions pos[0] .. pos[0]+n-1 of cache row crow[0].
 * Writes the keys and values into the cache and leaves the next-token logits of each row's last token in
 * b->logits (R or 1, V). prec: NULL (fp32) or the model's bf16 products (see llama_gemm). The model's
 * rope table must cover pos + n (llama_rope_ensure). Programming errors abort with file:line. */
void llama_decode_forward(const llama_model *m, llama_decode_buf *b, const llama_prec *prec, int R, const int *crow,
                          const int *pos, const int *tokens, int n);

/* One query row of one head: softmax(scale * q . k_j) over key positions j in [j0, j1], output
 * out (HS) = sum_j p_j v_j. k_j = kbase + j*kstride (HS floats), same for v. scores: (j1+1) floats of
 * scratch. Returns the log-sum-exp of the scaled scores. */
float llama_attend_row(float *out, float *scores, const float *q, const float *kbase, const float *vbase,
                       int kstride, int j0, int j1, int HS, float scale);
/* Decoding attention for one query row and one KV head: its rep query heads (q (rep, HS), heads
 * h0..h0+rep-1 of the row, contiguous) against the cached keys/values at positions [j0, j1] (k_j =
 * kbase + j*kstride, same for v), out (rep, HS). Each key and value row is read once for the whole
 * group (grouped-query attention's point). scores: rep*(j1+1) floats of scratch. Each head's result is
 * computed in the same order whatever rep and the batch (a row's output independent of the others);
 * compiled for AVX-512, AVX2 and baseline x86-64, chosen by the CPU at load time. */
void llama_attend_group(float *out, float *scores, const float *q, const float *kbase, const float *vbase, int kstride,
                        int j0, int j1, int HS, int rep, float scale);
/* Query rows per attention tile in training, and the scratch floats one thread needs for length T. */
#define LLAMA_ATT_TILE 64
size_t llama_attention_scratch_floats(int T);
/* Causal GQA attention over B sequences of length T: q (B*T, NH*HS), k/v (B*T, NKV*HS) ->
 * out (B*T, NH*HS), lse (B, NH, T). scratch: (nthreads, llama_attention_scratch_floats(T)); at most
 * nthreads OpenMP threads are used. window: sliding window or 0. */
void llama_attention_forward(float *out, float *lse, float *scratch, int nthreads, const float *q, const float *k,
                             const float *v, int B, int T, int NH, int NKV, int HS, int window);
/* Gradient of llama_attention_forward (probabilities recomputed from lse): dq (B*T, NH*HS),
 * dk/dv (B*T, NKV*HS) are overwritten. Parallel over (b, kv head), so no two threads write a row.
 * scratch as for the forward. */
void llama_attention_backward(float *dq, float *dk, float *dv, float *scratch, int nthreads, const float *dout,
                              const float *q, const float *k, const float *v, const float *out, const float *lse,
                              int B, int T, int NH, int NKV, int HS, int window);

/* h (n) = silu(gate) * up, silu(x) = x / (1 + exp(-x)). */
void llama_swiglu_forward(float *h, const float *gate, const float *up, size_t n);
/* dgate (n) = dh * up * silu'(gate), dup (n) = dh * silu(gate); dgate may alias dh. */
void llama_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n);

/* The argument checks that every backend's generate runs before any work (one rule set, so the CPU and
 * CUDA samplers accept the same inputs): non-NULL pointers, P, G, max_new >= 1, P + max_new within
 * max_position_embeddings, sampling ranges (temperature >= 0, top_k >= 0, 0 < top_p <= 1,
 * 0 <= min_p <= 1, repetition_penalty >= 0, num_stop >= 0), prompt ids in [0, vocab_size).
 * who names the caller in the message. Returns 0, or -1 with the message in err. */
int llama_generate_check_args(const llama_config *c, const int *prompt, int P, int G, int max_new,
                              const llama_sampling *s, const int *out, const int *out_len, const char *who,
                              char *err, size_t errlen);

#endif
