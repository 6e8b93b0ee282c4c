/*
 * model/cuda/llama_cuda_internal.cuh: what llama_cuda.cu (model, training) and generate.cu
 * (generation) share: the private state behind llama_cuda_model.state (activation pointers in the
 * style of llama_internal.h's llama_state, every pointer with its shape), the bump allocator that
 * carves one allocation into named buffers (a sizing pass with a NULL base, then the real one), the
 * activation-dtype view of a weight, and the rope-table helper.
 *
 * Shapes: N = B*T rows, C hidden, F intermediate, QD = NH*HS, KD = NKV*HS, V vocabulary, R rows
 * of an LM-head chunk. "act" = the context's activation dtype (fp32, or bf16 in BF16 precision).
 */
#ifndef GRPO2048_LLAMA_CUDA_INTERNAL_CUH
#define GRPO2048_LLAMA_CUDA_INTERNAL_CUH

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/llama_cuda.h"

/* Activations of one decoder layer kept by the forward pass for the backward pass (device). */
typedef struct {
    float *res_in;   /* (N, C) fp32 residual stream entering the layer */
    float *rstd1;    /* (N) */
    void *q;         /* (N, QD) act: queries after (q_norm and) rope */
    void *k;         /* (N, KD) act: keys after (k_norm and) rope */
    void *v;         /* (N, KD) act */
    void *qr;        /* (N, QD) act: Qwen3 q_proj output before q_norm; NULL otherwise */
    void *kr;        /* (N, KD) act: Qwen3; NULL otherwise */
    float *rstdq;    /* (N*NH) Qwen3 q_norm statistics; NULL otherwise */
    float *rstdk;    /* (N*NKV) Qwen3; NULL otherwise */
    void *atty;      /* (N, QD) act: attention output (input of o_proj) */
    float *lse;      /* (B, NH, T) log-sum-exp of each softmax row */
    float *res_mid;  /* (N, C) fp32 residual after attention */
    float *rstd2;    /* (N) */
    void *gate;      /* (N, F) act */
    void *up;        /* (N, F) act */
} cuda_layer_acts;

struct llama_cuda_state {
    /* rope tables: cos, sin (rope_len, HS/2) fp32, one allocation */
    void *rope_mem;
    size_t rope_bytes;
    float *rope_cos, *rope_sin;
    int rope_len;
    /* weight-decay flags, (num_params) bytes */
    unsigned char *decay;
    /* training activations: one allocation of acts_bytes for cap_rows = B*T rows */
    void *acts;
    size_t acts_bytes;
    size_t cap_rows;
    int logit_rows;          /* R: rows of an LM-head chunk */
    cuda_layer_acts *la;     /* (L) host array of device pointers */
    float *res_final;        /* (N, C) residual after the last layer */
    void *lnf;               /* (N, C) act: final norm output (input of lm_head) */
    float *rstdf;            /* (N) */
    float *head_lse;         /* (N) log-sum-exp of each row's logits */
    float *logp_d;           /* (N) device logp (index n+1 from row n) */
    float *ent_d;            /* (N) device entropy */
    float *dlogp_d;          /* (N) device copy of dlogp */
    float *dent_d;           /* (N) device copy of dentropy */
    void *ln;                /* (N, C) act: norm output feeding projections (recomputed in backward) */
    void *hbuf;              /* (N, F) act: silu(gate)*up (recomputed in backward) */
    float *dres;             /* (N, C) fp32 gradient of the residual stream */
    void *dres_act;          /* (N, C) act copy of dres for the products (== dres when act is fp32) */
    float *dln;              /* (N, C) fp32 gradient of a norm output */
    void *dh;                /* (N, F) act: gradient of hbuf, then of gate */
    void *dup;               /* (N, F) act */
    void *datty;             /* (N, QD) act */
    void *dq;                /* (N, QD) act */
    void *dk;                /* (N, KD) act */
    void *dv;                /* (N, KD) act */
    void *dkr;               /* (N, KD) act: Qwen3 gradient of k before k_norm; NULL otherwise */
    int *tokens_d;           /* (N) */
    int *rowidx_d;           /* (N) rows of the LM-head backward */
    float *logits;           /* (R, V) fp32 logits chunk */
    void *dlogits;           /* (R, V) act (== logits when act is fp32) */
    void *xrows;             /* (R, C) act: gathered lnf rows */
    float *dx;               /* (R, C) fp32 */
    /* host copies of the last forward */
    int *tokens_h;           /* (cap_rows) */
    int *rowidx_h;           /* (cap_rows) */
    int B, T, fwd_valid;
    float inv_temperature;  /* 1 / the temperature of the last forward (the LM head GEMMs scale by it) */
    int ent_valid;          /* the last forward computed the entropies (ent_d), which the entropy gradient needs */
    /* generation buffers (generate.cu): one allocation of gen_bytes */
    void *gen;
    size_t gen_bytes;
    /* gradient checkpointing: the layout of acts (as model/llama_internal.h's llama_state). 0: every
     * la[l] field has its own rows. 1: only la[l].res_in is per layer; every other field of every
     * la[l] points at one shared set of rows holding the activations of layer work_layer (the
     * forward leaves the last layer's there, the backward recomputes layer l's from la[l].res_in
     * whenever work_layer != l; -1: none) */
    int ckpt;
    int work_layer;
};

/* Bump allocator over one allocation: base NULL = sizing pass (take returns NULL, off counts). */
typedef struct {
    char *base;
    size_t off;
} cuda_carver;

static inline void *cuda_take(cuda_carver *c, size_t bytes) {
    c->off = (c->off + 255) & ~(size_t)255;
    void *p = c->base ? c->base + c->off : NULL;
    c->off += bytes;
    return p;
}

/* The matrix weight at fp32 device pointer p (into cm->params) in the activation dtype: p itself,
 * or the same offset in the bf16 copy. */
static inline const void *cuda_wact(const llama_cuda_model *cm, const float *p) {
    if (!cm->params_bf16) return p;
    return (const bf16 *)cm->params_bf16 + (p - cm->params);
}

/* Makes the rope tables cover positions [0, npos). 0, or -1 with err (out of device memory). */
int llama_cuda_rope_ensure(llama_cuda_model *cm, int npos, char *err, size_t errlen);

/* Rows of an LM-head chunk for vocabulary V and N rows: at most 256 MiB of fp32 logits. */
static inline int cuda_logit_rows(int V, size_t N) {
    size_t r = ((size_t)64 << 20) / (size_t)V;
    if (r < 1) r = 1;
    if (r > N) r = N;
    return (int)r;
}

#endif
