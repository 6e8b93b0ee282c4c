/*
 * model/cuda/llama_cuda.cu: the device model object and the teacher-forced forward / backward
 * pass, line for line the GPU twin of model/llama.c (read them side by side):
 *
 *   - llama_cuda_create: one allocation each for params, grads (and the bf16 weight copy), the
 *     named pointers m->w / m->g mapped to the same offsets on the device, the weight-decay mask.
 *   - activation buffers (llama_cuda_internal.cuh): one allocation sized for the largest B*T seen,
 *     carved into named per-layer pointers; the layers' scratch (attention scores, norm partials)
 *     is reserved up front so running out of memory is an error, not an abort.
 *   - llama_cuda_forward_logprobs: embedding -> L x (RMSNorm, q/k/v, [Qwen3 q/k RMSNorm], rope,
 *     attention, o_proj, residual, RMSNorm, SwiGLU MLP, residual) -> final RMSNorm -> LM head in
 *     chunks of rows (cuBLAS logits, fused log-softmax / log-prob / entropy kernel).
 *   - llama_cuda_backward_logprobs: the same in reverse; the LM head is recomputed chunk by chunk
 *     for the rows with a nonzero dlogp only; with gradient checkpointing each layer's activations
 *     are recomputed (layer_forward) from its stored input right before its backward.
 *   - AdamW, gradient norm, copies to and from the host, memory figures.
 *
 * Everything runs on the context's one stream; the host waits only where a result comes back
 * (logp, the gradient norm, downloads).
 */
#include <limits.h>
#include <string.h>

#include "model/cuda/llama_cuda_internal.cuh"

extern "C" {
#include "model/llama_internal.h"
}

#define F32 LLAMA_CUDA_DT_F32

/* ------------------------------------------------------------------------------------------------
 * Devices
 */

extern "C" int llama_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" int llama_cuda_device_info(int device, char *buf, size_t len) {
    int n = llama_cuda_device_count();
    if (device < 0 || device >= n) {
        snprintf(buf, len, "CUDA device %d: not available (%d device(s))", device, n);
        return -1;
    }
    cudaDeviceProp p;
    cudaCheck(cudaGetDeviceProperties(&p, device));
    snprintf(buf, len, "%s, sm_%d%d, %d SMs, %.1f GiB", p.name, p.major, p.minor, p.multiProcessorCount,
             p.totalGlobalMem / 1073741824.0);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Model object
 */

static float *map_ptr(float *dbase, const float *hbase, const float *hp) { return hp ? dbase + (hp - hbase) : NULL; }

/* dst = src's named pointers (into hbase) moved to the same offsets from dbase. */
static int map_weights(llama_weights *dst, const llama_weights *src, float *dbase, const float *hbase, int L) {
    dst->wte = map_ptr(dbase, hbase, src->wte);
    dst->lnf = map_ptr(dbase, hbase, src->lnf);
    dst->lm_head = map_ptr(dbase, hbase, src->lm_head);
    dst->layers = (llama_layer_weights *)calloc((size_t)L, sizeof *dst->layers);
    if (!dst->layers) return -1;
    for (int l = 0; l < L; l++) {
        const llama_layer_weights *s = &src->layers[l];
        llama_layer_weights *d = &dst->layers[l];
        d->ln1 = map_ptr(dbase, hbase, s->ln1);
        d->wq = map_ptr(dbase, hbase, s->wq);
        d->bq = map_ptr(dbase, hbase, s->bq);
        d->wk = map_ptr(dbase, hbase, s->wk);
        d->bk = map_ptr(dbase, hbase, s->bk);
        d->wv = map_ptr(dbase, hbase, s->wv);
        d->bv = map_ptr(dbase, hbase, s->bv);
        d->wo = map_ptr(dbase, hbase, s->wo);
        d->bo = map_ptr(dbase, hbase, s->bo);
        d->qn = map_ptr(dbase, hbase, s->qn);
        d->kn = map_ptr(dbase, hbase, s->kn);
        d->ln2 = map_ptr(dbase, hbase, s->ln2);
        d->wg = map_ptr(dbase, hbase, s->wg);
        d->wu = map_ptr(dbase, hbase, s->wu);
        d->wd = map_ptr(dbase, hbase, s->wd);
    }
    return 0;
}

static void refresh_bf16(llama_cuda_model *cm) {
    if (cm->params_bf16)
        llama_cuda_convert(cm->ctx, cm->params_bf16, LLAMA_CUDA_DT_BF16, cm->params, F32, cm->num_params);
}

extern "C" int llama_cuda_create(llama_cuda_model *cm, const llama_model *m, int device, int precision, char *err,
                                 size_t errlen) {
    memset(cm, 0, sizeof *cm);
    const llama_config *c = &m->cfg;
    if (!m->params || m->num_params == 0) {
        snprintf(err, errlen, "llama_cuda_create: the CPU model has no parameters (not loaded)");
        return -1;
    }
    if (c->head_dim > LLAMA_CUDA_MAX_HEAD_DIM) {
        snprintf(err, errlen, "head_dim: %d is above %d, the largest the CUDA attention kernels support", c->head_dim,
                 LLAMA_CUDA_MAX_HEAD_DIM);
        return -1;
    }
    if (llama_cuda_ctx_create(&cm->ctx, device, precision, err, errlen)) return -1;
    llama_cuda_ctx *ctx = cm->ctx;
    cm->cfg = *c;
    cm->precision = precision;
    cm->device = device;
    cm->gradient_checkpointing = m->gradient_checkpointing != 0; /* the CPU model's setting carries over */
    cm->num_params = m->num_params;
    size_t n = m->num_params;
    cm->state = (struct llama_cuda_state *)calloc(1, sizeof *cm->state);
    if (!cm->state) {
        snprintf(err, errlen, "out of host memory");
        llama_cuda_free(cm);
        return -1;
    }
    if (llama_cuda_malloc(ctx, (void **)&cm->params, n * sizeof(float), "parameters", err, errlen) ||
        llama_cuda_malloc(ctx, (void **)&cm->grads, n * sizeof(float), "gradients", err, errlen) ||
        (precision == LLAMA_CUDA_BF16 &&
         llama_cuda_malloc(ctx, &cm->params_bf16, n * sizeof(uint16_t), "bf16 weights", err, errlen)) ||
        llama_cuda_malloc(ctx, (void **)&cm->state->decay, n, "weight-decay mask", err, errlen)) {
        llama_cuda_free(cm);
        return -1;
    }
    if (map_weights(&cm->w, &m->w, cm->params, m->params, c->num_hidden_layers) ||
        map_weights(&cm->g, &m->w, cm->grads, m->params, c->num_hidden_layers)) {
        snprintf(err, errlen, "out of host memory");
        llama_cuda_free(cm);
        return -1;
    }
    llama_cuda_h2d(ctx, cm->params, m->params, n * sizeof(float));
    llama_cuda_memset0(ctx, cm->grads, n * sizeof(float));
    refresh_bf16(cm);
    /* decay flags per parameter from the tensor table (matrices 1, norms and biases 0) */
    unsigned char *decay = (unsigned char *)calloc(n, 1);
    if (!decay) {
        snprintf(err, errlen, "out of host memory");
        llama_cuda_free(cm);
        return -1;
    }
    for (int i = 0; i < m->num_tensors; i++) {
        const llama_tensor *t = &m->tensors[i];
        if (t->decay) memset(decay + (t->data - m->params), 1, t->numel);
    }
    llama_cuda_h2d(ctx, cm->state->decay, decay, n);
    free(decay);
    llama_cuda_sync(ctx);
    return 0;
}

static void free_state(llama_cuda_model *cm) {
    struct llama_cuda_state *st = cm->state;
    if (!st) return;
    llama_cuda_ctx *ctx = cm->ctx;
    if (ctx) {
        llama_cuda_mfree(ctx, st->rope_mem, st->rope_bytes);
        llama_cuda_mfree(ctx, st->decay, cm->num_params);
        llama_cuda_mfree(ctx, st->acts, st->acts_bytes);
        llama_cuda_mfree(ctx, st->gen, st->gen_bytes);
    }
    free(st->la);
    free(st->tokens_h);
    free(st->rowidx_h);
    free(st);
    cm->state = NULL;
}

extern "C" void llama_cuda_free(llama_cuda_model *cm) {
    if (!cm) return;
    llama_cuda_ctx *ctx = cm->ctx;
    if (ctx) {
        llama_cuda_sync(ctx);
        llama_cuda_mfree(ctx, cm->params, cm->num_params * sizeof(float));
        llama_cuda_mfree(ctx, cm->grads, cm->num_params * sizeof(float));
        llama_cuda_mfree(ctx, cm->params_bf16, cm->num_params * sizeof(uint16_t));
        llama_cuda_mfree(ctx, cm->adam_m, 2 * cm->num_params * sizeof(float));
    }
    free_state(cm);
    free(cm->w.layers);
    free(cm->g.layers);
    llama_cuda_ctx_free(ctx);
    memset(cm, 0, sizeof *cm);
}

extern "C" int llama_cuda_upload_params(llama_cuda_model *cm, const llama_model *m, char *err, size_t errlen) {
    if (m->num_params != cm->num_params) {
        snprintf(err, errlen, "llama_cuda_upload_params: the CPU model has %zu parameters, the device model %zu",
                 m->num_params, cm->num_params);
        return -1;
    }
    llama_cuda_h2d(cm->ctx, cm->params, m->params, cm->num_params * sizeof(float));
    refresh_bf16(cm);
    llama_cuda_sync(cm->ctx);
    return 0;
}

extern "C" int llama_cuda_download(const llama_cuda_model *cm, llama_model *m, int params, int grads, char *err,
                                   size_t errlen) {
    if (m->num_params != cm->num_params) {
        snprintf(err, errlen, "llama_cuda_download: the CPU model has %zu parameters, the device model %zu",
                 m->num_params, cm->num_params);
        return -1;
    }
    if (params) llama_cuda_d2h(cm->ctx, m->params, cm->params, cm->num_params * sizeof(float));
    if (grads) llama_cuda_d2h(cm->ctx, m->grads, cm->grads, cm->num_params * sizeof(float));
    return 0;
}

extern "C" void llama_cuda_zero_grad(llama_cuda_model *cm) {
    llama_cuda_memset0(cm->ctx, cm->grads, cm->num_params * sizeof(float));
}

int llama_cuda_rope_ensure(llama_cuda_model *cm, int npos, char *err, size_t errlen) {
    struct llama_cuda_state *st = cm->state;
    if (npos <= st->rope_len) return 0;
    /* grow geometrically (up to the model's limit) so that growing sequence lengths do not
     * rebuild the tables every call */
    int want = npos < 2 * st->rope_len ? 2 * st->rope_len : npos;
    if (want > cm->cfg.max_position_embeddings) want = cm->cfg.max_position_embeddings;
    if (want < npos) want = npos;
    size_t half = (size_t)cm->cfg.head_dim / 2, bytes = 2 * (size_t)want * half * sizeof(float);
    void *mem;
    if (llama_cuda_malloc(cm->ctx, &mem, bytes, "rope tables", err, errlen)) return -1;
    llama_cuda_sync(cm->ctx);
    llama_cuda_mfree(cm->ctx, st->rope_mem, st->rope_bytes);
    st->rope_mem = mem;
    st->rope_bytes = bytes;
    st->rope_cos = (float *)mem;
    st->rope_sin = (float *)mem + (size_t)want * half;
    st->rope_len = want;
    llama_cuda_rope_tables(cm->ctx, &cm->cfg, want, st->rope_cos, st->rope_sin);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Activation buffers
 */

/* Carves the training activations for N rows and LM-head chunks of R rows; st NULL: sizing only.
 * ckpt (gradient checkpointing): layers 1..L-1 get only their res_in rows, every other field points
 * at layer 0's rows (the shared work rows, llama_cuda_internal.cuh). Returns the bytes. */
static size_t plan_acts(struct llama_cuda_state *st, void *base, const llama_config *c, int act, size_t N, int R,
                        int ckpt) {
    size_t C = c->hidden_size, F = c->intermediate_size, NH = c->num_attention_heads, L = c->num_hidden_layers;
    size_t NKV = c->num_key_value_heads, QD = NH * c->head_dim, KD = NKV * c->head_dim, V = c->vocab_size;
    size_t A = act == LLAMA_CUDA_DT_BF16 ? 2 : 4, f = sizeof(float);
    int qk = llama_has_qk_norm(c), bf = act == LLAMA_CUDA_DT_BF16;
    cuda_carver cv = {(char *)base, 0};
    cuda_layer_acts dummy;
    for (size_t l = 0; l < L; l++) {
        cuda_layer_acts *a = st ? &st->la[l] : &dummy;
        if (ckpt && l > 0) {
            if (st) st->la[l] = st->la[0];
            a->res_in = (float *)cuda_take(&cv, N * C * f);
            continue;
        }
        a->res_in = (float *)cuda_take(&cv, N * C * f);
        a->rstd1 = (float *)cuda_take(&cv, N * f);
        a->q = cuda_take(&cv, N * QD * A);
        a->k = cuda_take(&cv, N * KD * A);
        a->v = cuda_take(&cv, N * KD * A);
        a->qr = a->kr = NULL;
        a->rstdq = a->rstdk = NULL;
        if (qk) {
            a->qr = cuda_take(&cv, N * QD * A);
            a->kr = cuda_take(&cv, N * KD * A);
            a->rstdq = (float *)cuda_take(&cv, N * NH * f);
            a->rstdk = (float *)cuda_take(&cv, N * NKV * f);
        }
        a->atty = cuda_take(&cv, N * QD * A);
        a->lse = (float *)cuda_take(&cv, N * NH * f);
        a->res_mid = (float *)cuda_take(&cv, N * C * f);
        a->rstd2 = (float *)cuda_take(&cv, N * f);
        a->gate = cuda_take(&cv, N * F * A);
        a->up = cuda_take(&cv, N * F * A);
    }
    struct llama_cuda_state tmp;
    struct llama_cuda_state *s = st ? st : &tmp;
    s->res_final = (float *)cuda_take(&cv, N * C * f);
    s->lnf = cuda_take(&cv, N * C * A);
    s->rstdf = (float *)cuda_take(&cv, N * f);
    s->head_lse = (float *)cuda_take(&cv, N * f);
    s->logp_d = (float *)cuda_take(&cv, N * f);
    s->ent_d = (float *)cuda_take(&cv, N * f);
    s->dlogp_d = (float *)cuda_take(&cv, N * f);
    s->dent_d = (float *)cuda_take(&cv, N * f);
    s->ln = cuda_take(&cv, N * C * A);
    s->hbuf = cuda_take(&cv, N * F * A);
    s->dres = (float *)cuda_take(&cv, N * C * f);
    s->dres_act = bf ? cuda_take(&cv, N * C * A) : (void *)s->dres;
    s->dln = (float *)cuda_take(&cv, N * C * f);
    s->dh = cuda_take(&cv, N * F * A);
    s->dup = cuda_take(&cv, N * F * A);
    s->datty = cuda_take(&cv, N * QD * A);
    s->dq = cuda_take(&cv, N * QD * A);
    s->dk = cuda_take(&cv, N * KD * A);
    s->dv = cuda_take(&cv, N * KD * A);
    s->dkr = qk ? cuda_take(&cv, N * KD * A) : NULL;
    s->tokens_d = (int *)cuda_take(&cv, N * sizeof(int));
    s->rowidx_d = (int *)cuda_take(&cv, N * sizeof(int));
    s->logits = (float *)cuda_take(&cv, (size_t)R * V * f);
    s->dlogits = bf ? cuda_take(&cv, (size_t)R * V * A) : (void *)s->logits;
    s->xrows = cuda_take(&cv, (size_t)R * C * A);
    s->dx = (float *)cuda_take(&cv, (size_t)R * C * f);
    return cv.off;
}

/* Scratch the layers need for a (B, T) batch: attention, norm partials, ones, embedding segments. */
static int reserve_scratch(llama_cuda_ctx *ctx, const llama_config *c, int B, int T, char *err, size_t errlen) {
    size_t N = (size_t)B * T, ptr_bytes = 0;
    int act = ctx->act, NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    size_t att = llama_cuda_attention_scratch_bytes(ctx->att_budget, act, B, T, NH, NKV, HS, &ptr_bytes);
    size_t norm = llama_cuda_norm_scratch_bytes((int)N, c->hidden_size);
    if (llama_has_qk_norm(c)) {
        size_t qn = llama_cuda_norm_scratch_bytes((int)(N * NH), HS);
        if (qn > norm) norm = qn;
    }
    size_t ones = (N < 4096 ? 4096 : N) * llama_cuda_act_size(ctx);
    if (llama_cuda_scratch_reserve(ctx, SCR_ATT, att, err, errlen) ||
        llama_cuda_scratch_reserve(ctx, SCR_PTRS, ptr_bytes, err, errlen) ||
        llama_cuda_scratch_reserve(ctx, SCR_NORM, norm, err, errlen) ||
        llama_cuda_scratch_reserve(ctx, SCR_ONES, ones, err, errlen) ||
        llama_cuda_scratch_reserve(ctx, SCR_EMB, (3 * N + 1) * sizeof(int), err, errlen) ||
        llama_cuda_scratch_reserve(ctx, SCR_RED, (1024 + 1) * sizeof(double), err, errlen))
        return -1;
    return 0;
}

extern "C" size_t llama_cuda_training_bytes(const llama_config *c, int precision, int B, int T) {
    return llama_cuda_training_bytes_ex(c, precision, B, T, 0);
}

extern "C" size_t llama_cuda_training_bytes_ex(const llama_config *c, int precision, int B, int T,
                                               int gradient_checkpointing) {
    int act = precision == LLAMA_CUDA_BF16 ? LLAMA_CUDA_DT_BF16 : LLAMA_CUDA_DT_F32;
    size_t N = (size_t)B * T, ptr_bytes = 0, A = act == LLAMA_CUDA_DT_BF16 ? 2 : 4;
    int NH = c->num_attention_heads, HS = c->head_dim;
    size_t bytes = plan_acts(NULL, NULL, c, act, N, cuda_logit_rows(c->vocab_size, N), gradient_checkpointing != 0);
    bytes += llama_cuda_attention_scratch_bytes(0, act, B, T, NH, c->num_key_value_heads, HS, &ptr_bytes) + ptr_bytes;
    size_t norm = llama_cuda_norm_scratch_bytes((int)N, c->hidden_size);
    if (llama_has_qk_norm(c) && llama_cuda_norm_scratch_bytes((int)(N * NH), HS) > norm)
        norm = llama_cuda_norm_scratch_bytes((int)(N * NH), HS);
    return bytes + norm + (N < 4096 ? 4096 : N) * A + (3 * N + 1) * sizeof(int) + (1024 + 1) * sizeof(double);
}

/* Activations for a (B, T) batch in the layout cm->gradient_checkpointing asks for; a change of
 * layout re-lays them out for the largest B*T seen so far. */
static int ensure_capacity(llama_cuda_model *cm, int B, int T, const char *fn) {
    struct llama_cuda_state *st = cm->state;
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    size_t N = (size_t)B * T;
    int ckpt = cm->gradient_checkpointing != 0;
    char err[200];
    if (reserve_scratch(ctx, c, B, T, err, sizeof err)) {
        snprintf(cm->err, sizeof cm->err, "%s: %s", fn, err);
        return -1;
    }
    if (N <= st->cap_rows && ckpt == st->ckpt) return 0;
    if (N < st->cap_rows) N = st->cap_rows;
    llama_cuda_sync(ctx);
    llama_cuda_mfree(ctx, st->acts, st->acts_bytes);
    st->acts = NULL;
    st->acts_bytes = 0;
    st->cap_rows = 0;
    free(st->tokens_h);
    free(st->rowidx_h);
    st->tokens_h = (int *)malloc(N * sizeof(int));
    st->rowidx_h = (int *)malloc(N * sizeof(int));
    if (!st->la) st->la = (cuda_layer_acts *)calloc((size_t)c->num_hidden_layers, sizeof *st->la);
    if (!st->tokens_h || !st->rowidx_h || !st->la) {
        snprintf(cm->err, sizeof cm->err, "%s: out of host memory for B*T=%zu rows", fn, N);
        return -1;
    }
    int R = cuda_logit_rows(c->vocab_size, N);
    size_t bytes = plan_acts(NULL, NULL, c, ctx->act, N, R, ckpt);
    if (llama_cuda_malloc(ctx, &st->acts, bytes, "training activations", err, sizeof err)) {
        snprintf(cm->err, sizeof cm->err, "%.40s: B=%d, T=%d: %.170s", fn, B, T, err);
        return -1;
    }
    st->acts_bytes = bytes;
    plan_acts(st, st->acts, c, ctx->act, N, R, ckpt);
    st->logit_rows = R;
    st->cap_rows = N;
    st->ckpt = ckpt;
    st->work_layer = -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Forward
 */

/* Decoder layer l of the batch (st->B, st->T) from st->la[l].res_in: fills la[l]'s activations and,
 * when res_out is not NULL, writes the layer's output residual (N, C, fp32) there. The backward's
 * recomputation under gradient checkpointing passes NULL (it needs everything up to gate/up; the
 * output is the next layer's stored input). As model/llama.c's layer_forward. */
static void layer_forward(llama_cuda_model *cm, int l, float *res_out) {
    struct llama_cuda_state *st = cm->state;
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    int B = st->B, T = st->T;
    size_t N = (size_t)B * T;
    int act = ctx->act, Ni = (int)N;
    int C = c->hidden_size, F = c->intermediate_size;
    int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    int QD = NH * HS, KD = NKV * HS;
    float eps = c->rms_norm_eps;
    cuda_layer_acts *a = &st->la[l];
    const llama_layer_weights *lw = &cm->w.layers[l];
    /* attention block */
    llama_cuda_rmsnorm_forward(ctx, st->ln, act, a->rstd1, a->res_in, F32, lw->ln1, Ni, C, eps);
    if (llama_has_qk_norm(c)) {
        llama_cuda_matmul_forward(ctx, a->qr, act, st->ln, cuda_wact(cm, lw->wq), lw->bq, Ni, C, QD, 0.0f);
        llama_cuda_matmul_forward(ctx, a->kr, act, st->ln, cuda_wact(cm, lw->wk), lw->bk, Ni, C, KD, 0.0f);
        llama_cuda_rmsnorm_forward(ctx, a->q, act, a->rstdq, a->qr, act, lw->qn, Ni * NH, HS, eps);
        llama_cuda_rmsnorm_forward(ctx, a->k, act, a->rstdk, a->kr, act, lw->kn, Ni * NKV, HS, eps);
    } else {
        llama_cuda_matmul_forward(ctx, a->q, act, st->ln, cuda_wact(cm, lw->wq), lw->bq, Ni, C, QD, 0.0f);
        llama_cuda_matmul_forward(ctx, a->k, act, st->ln, cuda_wact(cm, lw->wk), lw->bk, Ni, C, KD, 0.0f);
    }
    llama_cuda_matmul_forward(ctx, a->v, act, st->ln, cuda_wact(cm, lw->wv), lw->bv, Ni, C, KD, 0.0f);
    llama_cuda_rope(ctx, a->q, Ni, NH, HS, 0, T, st->rope_cos, st->rope_sin, 0);
    llama_cuda_rope(ctx, a->k, Ni, NKV, HS, 0, T, st->rope_cos, st->rope_sin, 0);
    llama_cuda_attention_forward(ctx, a->atty, a->lse, a->q, a->k, a->v, B, T, NH, NKV, HS, c->sliding_window);
    cudaCheck(cudaMemcpyAsync(a->res_mid, a->res_in, N * C * sizeof(float), cudaMemcpyDeviceToDevice, ctx->stream));
    llama_cuda_matmul_forward(ctx, a->res_mid, F32, a->atty, cuda_wact(cm, lw->wo), lw->bo, Ni, QD, C, 1.0f);
    /* MLP block */
    llama_cuda_rmsnorm_forward(ctx, st->ln, act, a->rstd2, a->res_mid, F32, lw->ln2, Ni, C, eps);
    llama_cuda_matmul_forward(ctx, a->gate, act, st->ln, cuda_wact(cm, lw->wg), NULL, Ni, C, F, 0.0f);
    llama_cuda_matmul_forward(ctx, a->up, act, st->ln, cuda_wact(cm, lw->wu), NULL, Ni, C, F, 0.0f);
    if (!res_out) return;
    llama_cuda_swiglu_forward(ctx, st->hbuf, a->gate, a->up, N * F);
    cudaCheck(cudaMemcpyAsync(res_out, a->res_mid, N * C * sizeof(float), cudaMemcpyDeviceToDevice, ctx->stream));
    llama_cuda_matmul_forward(ctx, res_out, F32, st->hbuf, cuda_wact(cm, lw->wd), NULL, Ni, F, C, 1.0f);
}

extern "C" int llama_cuda_forward_logprobs(llama_cuda_model *cm, const int *tokens, int B, int T, float *logp,
                                           float *entropy) {
    return llama_cuda_forward_logprobs_t(cm, tokens, B, T, 1.0f, logp, entropy);
}

extern "C" int llama_cuda_forward_logprobs_t(llama_cuda_model *cm, const int *tokens, int B, int T, float temperature,
                                             float *logp, float *entropy) {
    const char *fn = "llama_cuda_forward_logprobs";
    struct llama_cuda_state *st = cm->state;
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    CUDA_ASSERT(st != NULL && tokens != NULL && logp != NULL);
    st->fwd_valid = 0;
    cm->err[0] = 0;
    if (!(temperature > 0.0f) || !isfinite(temperature)) {
        snprintf(cm->err, sizeof cm->err, "%s: temperature %g must be > 0", fn, (double)temperature);
        return -1;
    }
    st->inv_temperature = 1.0f / temperature;   /* the LM head's GEMMs scale the logits by it (TRL: logits / T) */
    if (B < 1 || T < 1) {
        snprintf(cm->err, sizeof cm->err, "%s: B=%d and T=%d must be >= 1", fn, B, T);
        return -1;
    }
    if (T > c->max_position_embeddings) {
        snprintf(cm->err, sizeof cm->err, "%s: T=%d exceeds max_position_embeddings %d", fn, T,
                 c->max_position_embeddings);
        return -1;
    }
    size_t N = (size_t)B * T;
    if (N > (size_t)INT_MAX / 4) {
        snprintf(cm->err, sizeof cm->err, "%s: B*T=%zu rows is too many", fn, N);
        return -1;
    }
    for (size_t n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= c->vocab_size) {
            snprintf(cm->err, sizeof cm->err, "%s: token[%zu][%zu]=%d is not in [0, vocab_size %d)", fn, n / T, n % T,
                     tokens[n], c->vocab_size);
            return -1;
        }
    char err[200];
    if (llama_cuda_rope_ensure(cm, T, err, sizeof err)) {
        snprintf(cm->err, sizeof cm->err, "%s: %s", fn, err);
        return -1;
    }
    if (ensure_capacity(cm, B, T, fn)) return -1;
    int act = ctx->act, Ni = (int)N;
    int C = c->hidden_size, V = c->vocab_size;
    float eps = c->rms_norm_eps;
    size_t A = llama_cuda_act_size(ctx);
    memcpy(st->tokens_h, tokens, N * sizeof(int));
    st->B = B;
    st->T = T;
    llama_cuda_h2d(ctx, st->tokens_d, tokens, N * sizeof(int));

    llama_cuda_embedding_forward(ctx, st->la[0].res_in, st->tokens_d, cm->w.wte, Ni, C);
    for (int l = 0; l < c->num_hidden_layers; l++)
        layer_forward(cm, l, l + 1 < c->num_hidden_layers ? st->la[l + 1].res_in : st->res_final);
    st->work_layer = st->ckpt ? c->num_hidden_layers - 1 : -1;
    llama_cuda_rmsnorm_forward(ctx, st->lnf, act, st->rstdf, st->res_final, F32, cm->w.lnf, Ni, C, eps);

    /* LM head, a chunk of rows at a time: row n = (b, t) predicts tokens[b, t+1]; logp[b, 0] and
     * entropy[b, 0] stay 0 from the memset */
    llama_cuda_memset0(ctx, st->logp_d, N * sizeof(float));
    llama_cuda_memset0(ctx, st->ent_d, N * sizeof(float));
    const void *lm_head = cuda_wact(cm, cm->w.lm_head);
    int R = st->logit_rows;
    for (size_t r0 = 0; r0 < N; r0 += (size_t)R) {
        int nr = (int)(N - r0 < (size_t)R ? N - r0 : (size_t)R);
        llama_cuda_gemm(ctx, 0, 1, nr, V, C, st->inv_temperature, (const char *)st->lnf + r0 * C * A, C, lm_head, C,
                        0.0f, st->logits, V, act, F32);
        llama_cuda_head_logprobs(ctx, st->logp_d, entropy ? st->ent_d : NULL, st->head_lse, st->logits, st->tokens_d,
                                 (int)r0, nr, V, T);
    }
    llama_cuda_d2h(ctx, logp, st->logp_d, N * sizeof(float));
    if (entropy) llama_cuda_d2h(ctx, entropy, st->ent_d, N * sizeof(float));
    st->ent_valid = entropy != NULL;
    st->fwd_valid = 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Backward
 */

extern "C" void llama_cuda_backward_logprobs(llama_cuda_model *cm, const float *dlogp) {
    llama_cuda_backward_logprobs_entropy(cm, dlogp, NULL);
}

extern "C" void llama_cuda_backward_logprobs_entropy(llama_cuda_model *cm, const float *dlogp, const float *dentropy) {
    struct llama_cuda_state *st = cm->state;
    const llama_config *c = &cm->cfg;
    llama_cuda_ctx *ctx = cm->ctx;
    CUDA_ASSERT(st != NULL && st->fwd_valid && dlogp != NULL);
    int B = st->B, T = st->T;
    size_t N = (size_t)B * T;
    int Ni = (int)N, act = ctx->act;
    int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    int QD = NH * HS, KD = NKV * HS;
    int qk = llama_has_qk_norm(c), bf = act == LLAMA_CUDA_DT_BF16;
    void *dres_copy = bf ? st->dres_act : NULL; /* the bf16 copy rmsnorm_backward refreshes */

    /* LM head: dz_n = dlogp[n+1] * (onehot(tok) - softmax(z_n)) for rows with a nonzero dlogp,
     * recomputed a chunk at a time; their dlnf rows are scattered into dln */
    llama_cuda_h2d(ctx, st->dlogp_d, dlogp, N * sizeof(float));
    if (dentropy) {
        CUDA_ASSERT(st->ent_valid);   /* dH/dz needs H: the forward must have computed the entropies */
        llama_cuda_h2d(ctx, st->dent_d, dentropy, N * sizeof(float));
    }
    int nrows = 0;
    for (size_t n = 0; n < N; n++)
        if ((int)(n % T) != T - 1 && (dlogp[n + 1] != 0.0f || (dentropy && dentropy[n + 1] != 0.0f)))
            st->rowidx_h[nrows++] = (int)n;
    llama_cuda_h2d(ctx, st->rowidx_d, st->rowidx_h, (size_t)nrows * sizeof(int));
    llama_cuda_memset0(ctx, st->dln, N * C * sizeof(float));
    const void *lm_head = cuda_wact(cm, cm->w.lm_head);
    int R = st->logit_rows;
    for (int r0 = 0; r0 < nrows; r0 += R) {
        int nr = nrows - r0 < R ? nrows - r0 : R;
        const int *idx = st->rowidx_d + r0;
        llama_cuda_gather_rows(ctx, st->xrows, st->lnf, idx, nr, C, act);
        const float it = st->inv_temperature;   /* z' = z / T: dz = dz' / T, folded into the GEMMs' alpha */
        llama_cuda_gemm(ctx, 0, 1, nr, V, C, it, st->xrows, C, lm_head, C, 0.0f, st->logits, V, act, F32);
        llama_cuda_head_dlogits(ctx, st->dlogits, st->logits, idx, nr, st->head_lse, st->dlogp_d,
                                dentropy ? st->dent_d : NULL, st->ent_d, st->tokens_d, V);
        /* dlm_head (V, C) += dz^T (V, nr) @ x (nr, C); dx (nr, C) = dz @ lm_head */
        llama_cuda_gemm(ctx, 1, 0, V, C, nr, it, st->dlogits, V, st->xrows, C, 1.0f, cm->g.lm_head, C, act, F32);
        llama_cuda_gemm(ctx, 0, 0, nr, C, V, it, st->dlogits, V, lm_head, C, 0.0f, st->dx, C, act, F32);
        llama_cuda_scatter_rows(ctx, st->dln, st->dx, idx, nr, C, F32);
    }
    llama_cuda_memset0(ctx, st->dres, N * C * sizeof(float));
    llama_cuda_rmsnorm_backward(ctx, st->dres, 1, dres_copy, cm->g.lnf, st->dln, st->res_final, cm->w.lnf, st->rstdf,
                                Ni, C, F32);

    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        cuda_layer_acts *a = &st->la[l];
        const llama_layer_weights *lw = &cm->w.layers[l];
        llama_layer_weights *lg = &cm->g.layers[l];
        if (st->ckpt && st->work_layer != l) {
            /* gradient checkpointing: this layer's activations again, from its stored input */
            layer_forward(cm, l, NULL);
            st->work_layer = l;
        }
        /* MLP block: res_out = res_mid + down(silu(gate) * up); dres holds dL/dres_out */
        llama_cuda_rmsnorm_recompute(ctx, st->ln, act, a->res_mid, F32, a->rstd2, lw->ln2, Ni, C);
        llama_cuda_swiglu_forward(ctx, st->hbuf, a->gate, a->up, N * F);
        llama_cuda_matmul_backward(ctx, st->dh, act, lg->wd, NULL, st->dres_act, st->hbuf, cuda_wact(cm, lw->wd), Ni, F,
                                   C, 0.0f);
        llama_cuda_swiglu_backward(ctx, st->dh, st->dup, st->dh, a->gate, a->up, N * F);
        llama_cuda_matmul_backward(ctx, st->dln, F32, lg->wg, NULL, st->dh, st->ln, cuda_wact(cm, lw->wg), Ni, C, F,
                                   0.0f);
        llama_cuda_matmul_backward(ctx, st->dln, F32, lg->wu, NULL, st->dup, st->ln, cuda_wact(cm, lw->wu), Ni, C, F,
                                   1.0f);
        llama_cuda_rmsnorm_backward(ctx, st->dres, 1, dres_copy, lg->ln2, st->dln, a->res_mid, lw->ln2, a->rstd2, Ni, C,
                                    F32);
        /* attention block: res_mid = res_in + o_proj(attn); dres now holds dL/dres_mid */
        llama_cuda_matmul_backward(ctx, st->datty, act, lg->wo, lg->bo, st->dres_act, a->atty, cuda_wact(cm, lw->wo), Ni,
                                   QD, C, 0.0f);
        llama_cuda_attention_backward(ctx, st->dq, st->dk, st->dv, st->datty, a->q, a->k, a->v, a->atty, a->lse, B, T,
                                      NH, NKV, HS, c->sliding_window);
        llama_cuda_rope(ctx, st->dq, Ni, NH, HS, 0, T, st->rope_cos, st->rope_sin, 1);
        llama_cuda_rope(ctx, st->dk, Ni, NKV, HS, 0, T, st->rope_cos, st->rope_sin, 1);
        void *dqp = st->dq, *dkp = st->dk;
        if (qk) {
            /* through q_norm / k_norm (datty is free again: attention backward consumed it) */
            llama_cuda_rmsnorm_backward(ctx, st->datty, 0, NULL, lg->qn, st->dq, a->qr, lw->qn, a->rstdq, Ni * NH, HS,
                                        act);
            llama_cuda_rmsnorm_backward(ctx, st->dkr, 0, NULL, lg->kn, st->dk, a->kr, lw->kn, a->rstdk, Ni * NKV, HS,
                                        act);
            dqp = st->datty;
            dkp = st->dkr;
        }
        llama_cuda_rmsnorm_recompute(ctx, st->ln, act, a->res_in, F32, a->rstd1, lw->ln1, Ni, C);
        llama_cuda_matmul_backward(ctx, st->dln, F32, lg->wq, lg->bq, dqp, st->ln, cuda_wact(cm, lw->wq), Ni, C, QD,
                                   0.0f);
        llama_cuda_matmul_backward(ctx, st->dln, F32, lg->wk, lg->bk, dkp, st->ln, cuda_wact(cm, lw->wk), Ni, C, KD,
                                   1.0f);
        llama_cuda_matmul_backward(ctx, st->dln, F32, lg->wv, lg->bv, st->dv, st->ln, cuda_wact(cm, lw->wv), Ni, C, KD,
                                   1.0f);
        llama_cuda_rmsnorm_backward(ctx, st->dres, 1, dres_copy, lg->ln1, st->dln, a->res_in, lw->ln1, a->rstd1, Ni, C,
                                    F32);
    }
    /* embedding: rows of one token summed in row order; the padding token gets no gradient */
    llama_cuda_embedding_backward(ctx, cm->g.wte, st->dres, st->tokens_h, Ni, C, c->pad_token_id);
    llama_cuda_sync(ctx);
}

/* ------------------------------------------------------------------------------------------------
 * Optimizer
 */

extern "C" double llama_cuda_clip_grad_norm(llama_cuda_model *cm, double max_norm) {
    double norm = sqrt(llama_cuda_sumsq(cm->ctx, cm->grads, cm->num_params));
    if (max_norm > 0 && norm > max_norm) {
        float cf = (float)(max_norm / (norm + 1e-6));
        llama_cuda_scale(cm->ctx, cm->grads, cm->num_params, cf);
    }
    return norm;
}

static int ensure_adam(llama_cuda_model *cm, char *err, size_t errlen) {
    if (cm->adam_m) return 0;
    void *p;
    if (llama_cuda_malloc(cm->ctx, &p, 2 * cm->num_params * sizeof(float), "AdamW moments", err, errlen)) return -1;
    cm->adam_m = (float *)p;
    cm->adam_v = cm->adam_m + cm->num_params;
    llama_cuda_memset0(cm->ctx, p, 2 * cm->num_params * sizeof(float));
    return 0;
}

extern "C" int llama_cuda_adamw_step(llama_cuda_model *cm, const llama_cuda_adamw_hparams *h, char *err, size_t errlen) {
    if (ensure_adam(cm, err, errlen)) return -1;
    cm->adam_t++;
    llama_cuda_adamw(cm->ctx, cm->params, cm->params_bf16, cm->adam_m, cm->adam_v, cm->grads, cm->state->decay,
                     cm->num_params, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, cm->adam_t);
    return 0;
}

extern "C" void llama_cuda_adamw_get(const llama_cuda_model *cm, float *m, float *v, int64_t *t) {
    if (!cm->adam_m) {
        memset(m, 0, cm->num_params * sizeof(float));
        memset(v, 0, cm->num_params * sizeof(float));
    } else {
        llama_cuda_d2h(cm->ctx, m, cm->adam_m, cm->num_params * sizeof(float));
        llama_cuda_d2h(cm->ctx, v, cm->adam_v, cm->num_params * sizeof(float));
    }
    *t = cm->adam_t;
}

extern "C" int llama_cuda_adamw_set(llama_cuda_model *cm, const float *m, const float *v, int64_t t, char *err,
                                    size_t errlen) {
    if (ensure_adam(cm, err, errlen)) return -1;
    llama_cuda_h2d(cm->ctx, cm->adam_m, m, cm->num_params * sizeof(float));
    llama_cuda_h2d(cm->ctx, cm->adam_v, v, cm->num_params * sizeof(float));
    cm->adam_t = t;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Memory
 */

extern "C" void llama_cuda_get_memory(const llama_cuda_model *cm, llama_cuda_memory *mem) {
    memset(mem, 0, sizeof *mem);
    if (!cm->ctx) return;
    mem->current_bytes = llama_cuda_ctx_bytes(cm->ctx);
    mem->peak_bytes = llama_cuda_ctx_peak_bytes(cm->ctx);
    cudaCheck(cudaSetDevice(cm->device));
    cudaCheck(cudaMemGetInfo(&mem->device_free_bytes, &mem->device_total_bytes));
}

extern "C" void llama_cuda_reset_peak(llama_cuda_model *cm) { llama_cuda_ctx_reset_peak(cm->ctx); }

extern "C" void llama_cuda_set_gradient_checkpointing(llama_cuda_model *cm, int on) {
    cm->gradient_checkpointing = on != 0;
}
