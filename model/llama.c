/*
 * model/llama.c: the model object and the teacher-forced forward/backward pass.
 *
 * Parts:
 *   - config validation (llama_config_check) and the parameter table: llama_model_alloc lays every
 *     HF tensor out in one params allocation (and the same layout in one grads allocation) and points
 *     m->w / m->g / m->tensors into them; llama_init_random fills it as HF's _init_weights does.
 *   - activation buffers (struct llama_state, llama_internal.h): one allocation sized for the largest
 *     N = B*T seen, carved into named per-layer pointers; with gradient checkpointing only each
 *     layer's input is per layer and the rest is one shared layer's worth (the work rows).
 *   - llama_forward_logprobs: embedding -> L x (RMSNorm, q/k/v, [Qwen3: per-head q/k RMSNorm], rope,
 *     attention, o_proj, residual, RMSNorm, SwiGLU MLP, residual) -> final RMSNorm -> LM head in
 *     chunks of rows, reduced to the log-probability (and entropy) of each next token;
 *     llama_forward_logits is the same pass writing the raw logits instead.
 *   - llama_backward_logprobs: the same in reverse with the kernels of llama_layers.c; the LM head
 *     is recomputed chunk by chunk (only for rows with a nonzero dlogp) instead of stored; with
 *     gradient checkpointing each layer's activations are recomputed (layer_forward, the forward's
 *     own code) from its stored input right before its backward.
 */
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/llama_internal.h"
#include "model/llama_rng.h"

static const char *const known_arch[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                         "MistralForCausalLM"};

/* ------------------------------------------------------------------------------------------------
 * Config
 */

int llama_has_o_bias(const llama_config *c) {
    return c->attention_bias &&
           (strcmp(c->architecture, "LlamaForCausalLM") == 0 || strcmp(c->architecture, "Qwen3ForCausalLM") == 0);
}

int llama_has_qk_norm(const llama_config *c) {
    return strcmp(c->architecture, "Qwen3ForCausalLM") == 0;
}

int llama_config_check(const llama_config *c, char *err, size_t errlen) {
    int known = 0;
    for (size_t i = 0; i < sizeof known_arch / sizeof known_arch[0]; i++)
        if (strcmp(c->architecture, known_arch[i]) == 0) known = 1;
    if (!known) {
        snprintf(err, errlen, "architecture: '%.64s' is not one of LlamaForCausalLM, Qwen2ForCausalLM, "
                 "Qwen3ForCausalLM, MistralForCausalLM", c->architecture);
        return -1;
    }
#define POS(field) if (c->field < 1) { snprintf(err, errlen, #field ": must be a positive integer, got %d", c->field); return -1; }
    POS(vocab_size) POS(hidden_size) POS(intermediate_size) POS(num_hidden_layers)
    POS(num_attention_heads) POS(num_key_value_heads) POS(head_dim) POS(max_position_embeddings)
#undef POS
    if (c->num_attention_heads % c->num_key_value_heads != 0) {
        snprintf(err, errlen, "num_key_value_heads: %d does not divide num_attention_heads %d",
                 c->num_key_value_heads, c->num_attention_heads);
        return -1;
    }
    if (c->head_dim % 2 != 0) {
        snprintf(err, errlen, "head_dim: must be even for rotary embeddings, got %d", c->head_dim);
        return -1;
    }
    if (!(c->rms_norm_eps > 0.0f) || !isfinite(c->rms_norm_eps)) {
        snprintf(err, errlen, "rms_norm_eps: must be a positive number, got %g", (double)c->rms_norm_eps);
        return -1;
    }
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)) {
        snprintf(err, errlen, "rope_theta: must be a positive number, got %g", (double)c->rope_theta);
        return -1;
    }
    if (c->tie_word_embeddings != 0 && c->tie_word_embeddings != 1) {
        snprintf(err, errlen, "tie_word_embeddings: must be 0 or 1, got %d", c->tie_word_embeddings);
        return -1;
    }
    if (c->attention_bias != 0 && c->attention_bias != 1) {
        snprintf(err, errlen, "attention_bias: must be 0 or 1, got %d", c->attention_bias);
        return -1;
    }
    if (strcmp(c->architecture, "Qwen2ForCausalLM") == 0 && !c->attention_bias) {
        snprintf(err, errlen, "attention_bias: Qwen2ForCausalLM always has q/k/v biases (set it to 1)");
        return -1;
    }
    if (strcmp(c->architecture, "MistralForCausalLM") == 0 && c->attention_bias) {
        snprintf(err, errlen, "attention_bias: MistralForCausalLM has no attention biases (set it to 0)");
        return -1;
    }
    if (c->bos_token_id < -1 || c->bos_token_id >= c->vocab_size) {
        snprintf(err, errlen, "bos_token_id: %d is not -1 or in [0, vocab_size %d)", c->bos_token_id, c->vocab_size);
        return -1;
    }
    if (c->pad_token_id < -1 || c->pad_token_id >= c->vocab_size) {
        snprintf(err, errlen, "pad_token_id: %d is not -1 or in [0, vocab_size %d)", c->pad_token_id, c->vocab_size);
        return -1;
    }
    if (c->num_eos < 0 || c->num_eos > LLAMA_MAX_EOS) {
        snprintf(err, errlen, "eos_token_id: %d ids, at most %d supported", c->num_eos, LLAMA_MAX_EOS);
        return -1;
    }
    for (int i = 0; i < c->num_eos; i++)
        if (c->eos_token_ids[i] < 0 || c->eos_token_ids[i] >= c->vocab_size) {
            snprintf(err, errlen, "eos_token_id: %d is not in [0, vocab_size %d)", c->eos_token_ids[i], c->vocab_size);
            return -1;
        }
    if (c->sliding_window < 0) {
        snprintf(err, errlen, "sliding_window: must be >= 0 (0 = none), got %d", c->sliding_window);
        return -1;
    }
    if (c->rope_type != LLAMA_ROPE_DEFAULT && c->rope_type != LLAMA_ROPE_LLAMA3) {
        snprintf(err, errlen, "rope_scaling: rope_type %d is not LLAMA_ROPE_DEFAULT or LLAMA_ROPE_LLAMA3", c->rope_type);
        return -1;
    }
    if (c->rope_type == LLAMA_ROPE_LLAMA3) {
        if (!(c->rope_factor > 0.0f) || !isfinite(c->rope_factor)) {
            snprintf(err, errlen, "rope_scaling: factor must be a positive number, got %g", (double)c->rope_factor);
            return -1;
        }
        if (!(c->rope_low_freq_factor > 0.0f) || !isfinite(c->rope_low_freq_factor) ||
            !(c->rope_high_freq_factor > c->rope_low_freq_factor) || !isfinite(c->rope_high_freq_factor)) {
            snprintf(err, errlen, "rope_scaling: need 0 < low_freq_factor < high_freq_factor, got %g and %g",
                     (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor);
            return -1;
        }
        if (c->rope_original_max_position_embeddings < 1) {
            snprintf(err, errlen, "rope_scaling: original_max_position_embeddings must be a positive integer, got %d",
                     c->rope_original_max_position_embeddings);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Parameter table
 */

typedef struct {
    llama_model *m;
    int pass;        /* 0: count, 1: fill */
    int ntensors;
    size_t offset;   /* floats */
} table_builder;

static void add_tensor(table_builder *tb, float **wp, float **gp, int ndim, int s0, int s1, int decay,
                       const char *fmt, int layer) {
    size_t numel = (size_t)s0 * (ndim == 2 ? (size_t)s1 : 1);
    if (tb->pass == 1) {
        llama_model *m = tb->m;
        llama_tensor *t = &m->tensors[tb->ntensors];
        snprintf(t->name, sizeof t->name, fmt, layer);
        t->data = m->params + tb->offset;
        t->grad = m->grads + tb->offset;
        t->numel = numel;
        t->ndim = ndim;
        t->shape[0] = s0;
        t->shape[1] = ndim == 2 ? s1 : 0;
        t->decay = decay;
        *wp = t->data;
        *gp = t->grad;
    }
    tb->ntensors++;
    tb->offset += numel;
}

static void build_table(table_builder *tb, const llama_config *c) {
    llama_model *m = tb->m;
    int V = c->vocab_size, C = c->hidden_size, F = c->intermediate_size;
    int QD = c->num_attention_heads * c->head_dim, KD = c->num_key_value_heads * c->head_dim;
    float *dummy_w, *dummy_g;
#define W(field) (tb->pass ? &m->w.field : &dummy_w), (tb->pass ? &m->g.field : &dummy_g)
    add_tensor(tb, W(wte), 2, V, C, 1, "model.embed_tokens.weight", 0);
    for (int l = 0; l < c->num_hidden_layers; l++) {
#define LW(field) (tb->pass ? &m->w.layers[l].field : &dummy_w), (tb->pass ? &m->g.layers[l].field : &dummy_g)
        add_tensor(tb, LW(ln1), 1, C, 0, 0, "model.layers.%d.input_layernorm.weight", l);
        add_tensor(tb, LW(wq), 2, QD, C, 1, "model.layers.%d.self_attn.q_proj.weight", l);
        if (c->attention_bias) add_tensor(tb, LW(bq), 1, QD, 0, 0, "model.layers.%d.self_attn.q_proj.bias", l);
        add_tensor(tb, LW(wk), 2, KD, C, 1, "model.layers.%d.self_attn.k_proj.weight", l);
        if (c->attention_bias) add_tensor(tb, LW(bk), 1, KD, 0, 0, "model.layers.%d.self_attn.k_proj.bias", l);
        add_tensor(tb, LW(wv), 2, KD, C, 1, "model.layers.%d.self_attn.v_proj.weight", l);
        if (c->attention_bias) add_tensor(tb, LW(bv), 1, KD, 0, 0, "model.layers.%d.self_attn.v_proj.bias", l);
        add_tensor(tb, LW(wo), 2, C, QD, 1, "model.layers.%d.self_attn.o_proj.weight", l);
        if (llama_has_o_bias(c)) add_tensor(tb, LW(bo), 1, C, 0, 0, "model.layers.%d.self_attn.o_proj.bias", l);
        if (llama_has_qk_norm(c)) {
            add_tensor(tb, LW(qn), 1, c->head_dim, 0, 0, "model.layers.%d.self_attn.q_norm.weight", l);
            add_tensor(tb, LW(kn), 1, c->head_dim, 0, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        }
        add_tensor(tb, LW(ln2), 1, C, 0, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        add_tensor(tb, LW(wg), 2, F, C, 1, "model.layers.%d.mlp.gate_proj.weight", l);
        add_tensor(tb, LW(wu), 2, F, C, 1, "model.layers.%d.mlp.up_proj.weight", l);
        add_tensor(tb, LW(wd), 2, C, F, 1, "model.layers.%d.mlp.down_proj.weight", l);
#undef LW
    }
    add_tensor(tb, W(lnf), 1, C, 0, 0, "model.norm.weight", 0);
    if (!c->tie_word_embeddings) add_tensor(tb, W(lm_head), 2, V, C, 1, "lm_head.weight", 0);
    else if (tb->pass) { m->w.lm_head = m->w.wte; m->g.lm_head = m->g.wte; }
#undef W
}

int llama_model_alloc(llama_model *m, const llama_config *c, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (llama_config_check(c, err, errlen)) return -1;
    llama_blas_init();
    m->cfg = *c;
    table_builder tb = {m, 0, 0, 0};
    build_table(&tb, c);
    m->num_tensors = tb.ntensors;
    m->num_params = tb.offset;
    m->tensors = calloc((size_t)tb.ntensors, sizeof *m->tensors);
    m->w.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->w.layers);
    m->g.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->g.layers);
    m->params = calloc(m->num_params, sizeof(float));
    m->grads = calloc(m->num_params, sizeof(float));
    m->state = calloc(1, sizeof *m->state);
    if (!m->tensors || !m->w.layers || !m->g.layers || !m->params || !m->grads || !m->state) {
        snprintf(err, errlen, "out of memory allocating %zu parameters", m->num_params);
        llama_free(m);
        return -1;
    }
    tb = (table_builder){m, 1, 0, 0};
    build_table(&tb, c);
    return 0;
}

int llama_init_random(llama_model *m, const llama_config *c, uint64_t seed, float std) {
    char err[256];
    if (llama_model_alloc(m, c, err, sizeof err)) return -1;
    llama_rng rng;
    llama_rng_seed(&rng, seed, 0);
    for (int i = 0; i < m->num_tensors; i++) {
        llama_tensor *t = &m->tensors[i];
        if (t->ndim == 2) {
            for (size_t j = 0; j < t->numel; j++) t->data[j] = (float)(std * llama_rng_normal(&rng));
        } else {
            size_t len = strlen(t->name);
            int is_bias = len >= 5 && strcmp(t->name + len - 5, ".bias") == 0;
            for (size_t j = 0; j < t->numel; j++) t->data[j] = is_bias ? 0.0f : 1.0f;
        }
    }
    /* nn.Embedding(padding_idx) init: the padding row is zero */
    if (c->pad_token_id >= 0)
        memset(m->w.wte + (size_t)c->pad_token_id * c->hidden_size, 0, (size_t)c->hidden_size * sizeof(float));
    return 0;
}

static void free_state(struct llama_state *st) {
    if (!st) return;
    free(st->acts_mem);
    free(st->la);
    free(st->rowidx);
    free(st->att_scratch);
    free(st->logits);
    free(st->xrows);
    free(st->tokens);
    free(st->rope_cos);
    free(st->rope_sin);
    free(st->params_bf16);
    free(st);
}

void llama_free(llama_model *m) {
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->w.layers);
    free(m->g.layers);
    free_state(m->state);
    free(m->generation_config);
    memset(m, 0, sizeof *m);
}

void llama_zero_grad(llama_model *m) {
    memset(m->grads, 0, m->num_params * sizeof(float));
}

llama_tensor *llama_find_tensor(llama_model *m, const char *name) {
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

int llama_logit_chunk_rows(int V) {
    size_t r = LLAMA_LOGITS_CHUNK_FLOATS / (size_t)V;
    if (r > 1024) r = 1024;
    if (r < 1) r = 1;
    return (int)r;
}

double llama_forward_flops(const llama_config *c, int B, int T) {
    double C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    double QD = (double)c->num_attention_heads * c->head_dim, KD = (double)c->num_key_value_heads * c->head_dim;
    double N = (double)B * T;
    double per_token_layer = 2.0 * (C * QD + 2.0 * C * KD + QD * C + 3.0 * C * F);
    /* causal attention: for each (b, head), sum_t (t+1) key positions, 2 flops x HS for q.k and p*v */
    double att = (double)B * c->num_attention_heads * 2.0 * 2.0 * c->head_dim * (double)T * (T + 1) / 2.0;
    return c->num_hidden_layers * (N * per_token_layer + att) + N * 2.0 * C * V;
}

/* ------------------------------------------------------------------------------------------------
 * Activation buffers
 */

/* Floats per row (token) of the activation allocation: kept per layer, kept globally, scratch.
 * With gradient checkpointing (ckpt) only res_in (C) is kept per layer, plus one shared layer's worth
 * of the rest (the work rows, see llama_state). */
static size_t floats_per_row(const llama_config *c, int ckpt) {
    size_t C = c->hidden_size, F = c->intermediate_size, NH = c->num_attention_heads, L = c->num_hidden_layers;
    size_t QD = NH * c->head_dim, KD = (size_t)c->num_key_value_heads * c->head_dim;
    size_t per_layer = C + 1 + QD + KD + KD + QD + NH + C + 1 + F + F;
    size_t global = C + C + 1 + 1;
    size_t scratch = C + F + C + C + F + F + QD + QD + KD + KD;
    if (llama_has_qk_norm(c)) {
        per_layer += QD + KD + NH + c->num_key_value_heads; /* qr, kr, rstdq, rstdk */
        scratch += KD;                                      /* dkr */
    }
    if (ckpt) return L * C + (per_layer - C) + global + scratch;
    return L * per_layer + global + scratch;
}

size_t llama_activation_bytes_ex(const llama_config *c, size_t N, int gradient_checkpointing) {
    size_t rows = (size_t)llama_logit_chunk_rows(c->vocab_size);
    if (rows > N) rows = N;
    return N * (floats_per_row(c, gradient_checkpointing != 0) * sizeof(float) + 2 * sizeof(int)) +
           rows * ((size_t)c->vocab_size + c->hidden_size) * sizeof(float);
}

size_t llama_activation_bytes(const llama_config *c, size_t N) { return llama_activation_bytes_ex(c, N, 0); }

void llama_set_gradient_checkpointing(llama_model *m, int on) { m->gradient_checkpointing = on != 0; }

int llama_set_bf16(llama_model *m, int on, char *why, size_t whylen) {
    if (!on) {
        m->bf16 = 0;
        return 0;
    }
    if (!llama_bf16_supported(why, whylen)) {
        m->bf16 = 0;
        return -1;
    }
    m->bf16 = 1;
    return 0;
}

/* Activation buffers for N rows in the layout ckpt (0: every layer's, 1: gradient checkpointing).
 * A change of layout re-lays them out for the largest N seen so far. 0, or -1 (out of memory). */
static int ensure_capacity(llama_model *m, size_t N, int ckpt) {
    struct llama_state *st = m->state;
    const llama_config *c = &m->cfg;
    if (N <= st->cap_rows && ckpt == st->ckpt) return 0;
    if (N < st->cap_rows) N = st->cap_rows;
    size_t C = c->hidden_size, F = c->intermediate_size, NH = c->num_attention_heads, L = c->num_hidden_layers;
    size_t QD = NH * c->head_dim, KD = (size_t)c->num_key_value_heads * c->head_dim;
    size_t total = N * floats_per_row(c, ckpt);
    int rows = llama_logit_chunk_rows(c->vocab_size);
    if ((size_t)rows > N) rows = (int)N;

    float *mem = malloc(total * sizeof(float));
    llama_layer_acts *la = calloc(L, sizeof *la);
    int *rowidx = malloc(N * sizeof(int));
    int *tokens = malloc(N * sizeof(int));
    float *logits = malloc((size_t)rows * c->vocab_size * sizeof(float));
    float *xrows = malloc((size_t)rows * C * sizeof(float));
    if (!mem || !la || !rowidx || !tokens || !logits || !xrows) {
        free(mem); free(la); free(rowidx); free(tokens); free(logits); free(xrows);
        return -1;
    }
    free(st->acts_mem); free(st->la); free(st->rowidx); free(st->tokens); free(st->logits); free(st->xrows);
    st->acts_mem = mem;
    st->la = la;
    st->rowidx = rowidx;
    st->tokens = tokens;
    st->logits = logits;
    st->xrows = xrows;
    st->logit_rows = rows;
    st->cap_rows = N;
    st->ckpt = ckpt;
    st->work_layer = -1;

    int qk = llama_has_qk_norm(c);
    size_t NKV = (size_t)c->num_key_value_heads;
    float *p = mem;
#define TAKE(ptr, n) do { (ptr) = p; p += N * (n); } while (0)
    for (size_t l = 0; l < L; l++) {
        if (ckpt && l > 0) {
            /* checkpointing: layer l's own rows are its input; the rest are layer 0's (the work rows) */
            la[l] = la[0];
            TAKE(la[l].res_in, C);
            continue;
        }
        TAKE(la[l].res_in, C); TAKE(la[l].rstd1, 1); TAKE(la[l].q, QD); TAKE(la[l].k, KD); TAKE(la[l].v, KD);
        TAKE(la[l].atty, QD); TAKE(la[l].lse, NH); TAKE(la[l].res_mid, C); TAKE(la[l].rstd2, 1);
        TAKE(la[l].gate, F); TAKE(la[l].up, F);
        if (qk) { TAKE(la[l].qr, QD); TAKE(la[l].kr, KD); TAKE(la[l].rstdq, NH); TAKE(la[l].rstdk, NKV); }
    }
    TAKE(st->res_final, C); TAKE(st->lnf, C); TAKE(st->rstdf, 1); TAKE(st->head_lse, 1);
    TAKE(st->ln, C); TAKE(st->hbuf, F); TAKE(st->dres, C); TAKE(st->dln, C);
    TAKE(st->dh, F); TAKE(st->dup, F); TAKE(st->datty, QD); TAKE(st->dq, QD); TAKE(st->dk, KD); TAKE(st->dv, KD);
    st->dkr = NULL;
    if (qk) TAKE(st->dkr, KD);
#undef TAKE
    LLAMA_ASSERT((size_t)(p - mem) == total);
    return 0;
}

/* Attention scratch for sequences of length T with the current OpenMP thread count. 0 or -1. */
static int ensure_att_scratch(struct llama_state *st, int T) {
    int nt = omp_get_max_threads();
    if (st->att_scratch && nt <= st->att_threads && T <= st->att_T) return 0;
    if (nt < st->att_threads) nt = st->att_threads;
    if (T < st->att_T) T = st->att_T;
    float *s = malloc((size_t)nt * llama_attention_scratch_floats(T) * sizeof(float));
    if (!s) return -1;
    free(st->att_scratch);
    st->att_scratch = s;
    st->att_threads = nt;
    st->att_T = T;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Forward
 */

/* Decoder layer l of the batch (st->B, st->T) from st->la[l].res_in: fills la[l]'s activations and,
 * when res_out is not NULL, writes the layer's output residual (N, C) there. The backward's
 * recomputation under gradient checkpointing passes NULL: it needs everything up to gate/up, not the
 * output (already stored as the next layer's input). Same kernels, same order, same inputs either
 * way, hence bitwise the same activations. */
static void layer_forward(llama_model *m, int l, float *res_out) {
    struct llama_state *st = m->state;
    const llama_config *c = &m->cfg;
    int B = st->B, T = st->T;
    size_t N = (size_t)B * T;
    int C = c->hidden_size, F = c->intermediate_size;
    int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    int QD = NH * HS, KD = NKV * HS;
    float eps = c->rms_norm_eps;
    llama_layer_acts *a = &st->la[l];
    const llama_layer_weights *lw = &m->w.layers[l];
    /* attention block */
    llama_rmsnorm_forward(st->ln, a->rstd1, a->res_in, lw->ln1, (int)N, C, eps);
    if (llama_has_qk_norm(c)) {
        /* Qwen3: per-head RMSNorm over HS of the projections, i.e. rows of (N*heads, HS) */
        llama_matmul_forward(&m->state->prec, a->qr, st->ln, lw->wq, lw->bq, (int)N, C, QD, 0.0f);
        llama_matmul_forward(&m->state->prec, a->kr, st->ln, lw->wk, lw->bk, (int)N, C, KD, 0.0f);
        llama_rmsnorm_forward(a->q, a->rstdq, a->qr, lw->qn, (int)N * NH, HS, eps);
        llama_rmsnorm_forward(a->k, a->rstdk, a->kr, lw->kn, (int)N * NKV, HS, eps);
    } else {
        llama_matmul_forward(&m->state->prec, a->q, st->ln, lw->wq, lw->bq, (int)N, C, QD, 0.0f);
        llama_matmul_forward(&m->state->prec, a->k, st->ln, lw->wk, lw->bk, (int)N, C, KD, 0.0f);
    }
    llama_matmul_forward(&m->state->prec, a->v, st->ln, lw->wv, lw->bv, (int)N, C, KD, 0.0f);
    llama_rope_forward(m, a->q, (int)N, NH, 0, T);
    llama_rope_forward(m, a->k, (int)N, NKV, 0, T);
    llama_attention_forward(a->atty, a->lse, st->att_scratch, st->att_threads, a->q, a->k, a->v, B, T, NH, NKV, HS,
                            c->sliding_window);
    memcpy(a->res_mid, a->res_in, N * C * sizeof(float));
    llama_matmul_forward(&m->state->prec, a->res_mid, a->atty, lw->wo, lw->bo, (int)N, QD, C, 1.0f);
    /* MLP block */
    llama_rmsnorm_forward(st->ln, a->rstd2, a->res_mid, lw->ln2, (int)N, C, eps);
    llama_matmul_forward(&m->state->prec, a->gate, st->ln, lw->wg, NULL, (int)N, C, F, 0.0f);
    llama_matmul_forward(&m->state->prec, a->up, st->ln, lw->wu, NULL, (int)N, C, F, 0.0f);
    if (!res_out) return;
    llama_swiglu_forward(st->hbuf, a->gate, a->up, N * F);
    memcpy(res_out, a->res_mid, N * C * sizeof(float));
    llama_matmul_forward(&m->state->prec, res_out, st->hbuf, lw->wd, NULL, (int)N, F, C, 1.0f);
}

/* The forward pass behind llama_forward_logprobs (logp != NULL; entropy optional) and
 * llama_forward_logits (logits != NULL: (B,T,V) out). `fn` names the caller in messages. */
static int forward(llama_model *m, const char *fn, const int *tokens, int B, int T, float temperature, float *logp,
                   float *entropy, float *logits_out) {
    struct llama_state *st = m->state;
    const llama_config *c = &m->cfg;
    LLAMA_ASSERT(st != NULL && tokens != NULL && (logp != NULL || logits_out != NULL));
    st->fwd_valid = 0;
    m->err[0] = 0;
    if (!(temperature > 0.0f) || !isfinite(temperature)) {
        snprintf(m->err, sizeof m->err, "%s: temperature %g must be > 0", fn, (double)temperature);
        return -1;
    }
    st->inv_temperature = 1.0f / temperature;
    if (B < 1 || T < 1) {
        snprintf(m->err, sizeof m->err, "%s: B=%d and T=%d must be >= 1", fn, B, T);
        return -1;
    }
    if (T > c->max_position_embeddings) {
        snprintf(m->err, sizeof m->err, "%s: T=%d exceeds max_position_embeddings %d", fn, T,
                 c->max_position_embeddings);
        return -1;
    }
    size_t N = (size_t)B * T;
    if (N > (size_t)INT_MAX / 4) {
        snprintf(m->err, sizeof m->err, "%s: B*T=%zu rows is too many", fn, N);
        return -1;
    }
    for (size_t n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= c->vocab_size) {
            snprintf(m->err, sizeof m->err, "%s: token[%zu][%zu]=%d is not in [0, vocab_size %d)", fn, n / T, n % T,
                     tokens[n], c->vocab_size);
            return -1;
        }
    if (ensure_capacity(m, N, m->gradient_checkpointing != 0) || llama_rope_ensure(m, T) ||
        ensure_att_scratch(st, T)) {
        snprintf(m->err, sizeof m->err, "%s: out of memory for B*T=%zu rows", fn, N);
        return -1;
    }
    /* bf16 products: the weights rounded to bf16 once here, for every product of this forward and of
     * the backward that follows (which must see the same weights). */
    st->prec = (llama_prec){0};
    if (m->bf16) {
        if (!st->params_bf16 && !(st->params_bf16 = malloc(m->num_params * sizeof(uint16_t)))) {
            snprintf(m->err, sizeof m->err, "%s: out of memory for the bf16 copy of the weights", fn);
            return -1;
        }
        llama_to_bf16(st->params_bf16, m->params, m->num_params);
        st->prec = (llama_prec){1, m->params, m->num_params, st->params_bf16};
    }
    int C = c->hidden_size, V = c->vocab_size;
    memcpy(st->tokens, tokens, N * sizeof(int));
    st->B = B;
    st->T = T;

    /* embedding */
    float *x0 = st->la[0].res_in;
    #pragma omp parallel for schedule(static) if (N * C >= LLAMA_OMP_MIN_WORK)
    for (size_t n = 0; n < N; n++) memcpy(x0 + n * C, m->w.wte + (size_t)tokens[n] * C, C * sizeof(float));

    for (int l = 0; l < c->num_hidden_layers; l++)
        layer_forward(m, l, l + 1 < c->num_hidden_layers ? st->la[l + 1].res_in : st->res_final);
    st->work_layer = st->ckpt ? c->num_hidden_layers - 1 : -1;
    llama_rmsnorm_forward(st->lnf, st->rstdf, st->res_final, m->w.lnf, (int)N, C, c->rms_norm_eps);

    /* LM head, a chunk of rows at a time: row n = (b, t) predicts tokens[b, t+1]. */
    if (logits_out) {
        for (size_t r0 = 0; r0 < N; r0 += (size_t)st->logit_rows) {
            int nr = (int)(N - r0 < (size_t)st->logit_rows ? N - r0 : (size_t)st->logit_rows);
            llama_gemm(&m->state->prec, 0, 1, nr, V, C, st->lnf + r0 * C, C, m->w.lm_head, C, 0.0f, logits_out + r0 * V, V);
        }
    }
    if (!logp) return 0;
    for (int b = 0; b < B; b++) {
        logp[(size_t)b * T] = 0.0f;
        if (entropy) entropy[(size_t)b * T] = 0.0f;
    }
    int R = st->logit_rows;
    for (size_t r0 = 0; r0 < N; r0 += R) {
        int nr = (int)(N - r0 < (size_t)R ? N - r0 : (size_t)R);
        llama_gemm(&m->state->prec, 0, 1, nr, V, C, st->lnf + r0 * C, C, m->w.lm_head, C, 0.0f, st->logits, V);
        const float inv_t = st->inv_temperature;
        #pragma omp parallel for schedule(static) if ((size_t)nr * V >= LLAMA_OMP_MIN_WORK)
        for (int i = 0; i < nr; i++) {
            size_t n = r0 + i;
            if ((int)(n % T) == T - 1) continue; /* the last position predicts nothing here */
            float *z = st->logits + (size_t)i * V;
            if (inv_t != 1.0f) for (int v = 0; v < V; v++) z[v] *= inv_t;   /* logits / temperature (TRL) */
            float mx = z[0];
            for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
            double sum = 0.0;
            for (int v = 0; v < V; v++) sum += expf(z[v] - mx);
            float lse = mx + (float)log(sum);
            st->head_lse[n] = lse;
            logp[n + 1] = z[tokens[n + 1]] - lse;
            if (entropy) {
                /* H = -sum p log p = lse - sum p z */
                double pz = 0.0;
                for (int v = 0; v < V; v++) pz += (double)expf(z[v] - lse) * z[v];
                entropy[n + 1] = (float)((double)lse - pz);
            }
        }
    }
    st->fwd_valid = 1;
    return 0;
}

int llama_forward_logprobs(llama_model *m, const int *tokens, int B, int T, float *logp, float *entropy) {
    LLAMA_ASSERT(logp != NULL);
    return forward(m, "llama_forward_logprobs", tokens, B, T, 1.0f, logp, entropy, NULL);
}

int llama_forward_logprobs_t(llama_model *m, const int *tokens, int B, int T, float temperature, float *logp,
                             float *entropy) {
    LLAMA_ASSERT(logp != NULL);
    return forward(m, "llama_forward_logprobs_t", tokens, B, T, temperature, logp, entropy, NULL);
}

int llama_forward_logits(llama_model *m, const int *tokens, int B, int T, float *logits) {
    LLAMA_ASSERT(logits != NULL);
    return forward(m, "llama_forward_logits", tokens, B, T, 1.0f, NULL, NULL, logits);
}

/* ------------------------------------------------------------------------------------------------
 * Backward
 */

void llama_backward_logprobs(llama_model *m, const float *dlogp) { llama_backward_logprobs_entropy(m, dlogp, NULL); }

void llama_backward_logprobs_entropy(llama_model *m, const float *dlogp, const float *dentropy) {
    struct llama_state *st = m->state;
    const llama_config *c = &m->cfg;
    LLAMA_ASSERT(st != NULL && st->fwd_valid && dlogp != NULL);
    int B = st->B, T = st->T;
    size_t N = (size_t)B * T;
    int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    int QD = NH * HS, KD = NKV * HS;
    int qk = llama_has_qk_norm(c);
    const int *tokens = st->tokens;

    /* LM head: with z' = z / temperature, logp[n+1] = z'_n[tok] - lse_n and H = lse_n - sum p z', so
     * dz'_n = dlogp[n+1] * (onehot(tok) - p) - dentropy[n+1] * p * (log p + H), dz = dz' / temperature.
     * Only rows with a nonzero dlogp or dentropy are recomputed; their dlnf rows are scattered into dln. */
    memset(st->dln, 0, N * C * sizeof(float));
    int nrows = 0;
    for (size_t n = 0; n < N; n++)
        if ((int)(n % T) != T - 1 && (dlogp[n + 1] != 0.0f || (dentropy && dentropy[n + 1] != 0.0f)))
            st->rowidx[nrows++] = (int)n;
    const float inv_t = st->inv_temperature;
    int R = st->logit_rows;
    for (int r0 = 0; r0 < nrows; r0 += R) {
        int nr = nrows - r0 < R ? nrows - r0 : R;
        const int *idx = st->rowidx + r0;
        for (int i = 0; i < nr; i++) memcpy(st->xrows + (size_t)i * C, st->lnf + (size_t)idx[i] * C, C * sizeof(float));
        llama_gemm(&m->state->prec, 0, 1, nr, V, C, st->xrows, C, m->w.lm_head, C, 0.0f, st->logits, V);
        #pragma omp parallel for schedule(static) if ((size_t)nr * V >= LLAMA_OMP_MIN_WORK)
        for (int i = 0; i < nr; i++) {
            size_t n = (size_t)idx[i];
            float *z = st->logits + (size_t)i * V;
            float lse = st->head_lse[n], d = dlogp[n + 1], de = dentropy ? dentropy[n + 1] : 0.0f;
            if (inv_t != 1.0f) for (int v = 0; v < V; v++) z[v] *= inv_t;
            if (de != 0.0f) {
                double pz = 0.0;   /* H = lse - sum p z', as the forward computes it */
                for (int v = 0; v < V; v++) pz += (double)expf(z[v] - lse) * z[v];
                const float H = (float)((double)lse - pz);
                for (int v = 0; v < V; v++) {
                    const float lpv = z[v] - lse, p = expf(lpv);
                    z[v] = -d * p - de * p * (lpv + H);
                }
            } else {
                for (int v = 0; v < V; v++) z[v] = -d * expf(z[v] - lse);
            }
            z[tokens[n + 1]] += d;
            if (inv_t != 1.0f) for (int v = 0; v < V; v++) z[v] *= inv_t;
        }
        /* dlm_head (V, C) += dz^T (V, nr) @ x (nr, C); then dx (nr, C) = dz @ lm_head, into xrows */
        llama_gemm(&m->state->prec, 1, 0, V, C, nr, st->logits, V, st->xrows, C, 1.0f, m->g.lm_head, C);
        llama_gemm(&m->state->prec, 0, 0, nr, C, V, st->logits, V, m->w.lm_head, C, 0.0f, st->xrows, C);
        for (int i = 0; i < nr; i++) memcpy(st->dln + (size_t)idx[i] * C, st->xrows + (size_t)i * C, C * sizeof(float));
    }
    memset(st->dres, 0, N * C * sizeof(float));
    llama_rmsnorm_backward(st->dres, m->g.lnf, st->dln, st->res_final, m->w.lnf, st->rstdf, (int)N, C);

    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        llama_layer_acts *a = &st->la[l];
        const llama_layer_weights *lw = &m->w.layers[l];
        llama_layer_weights *lg = &m->g.layers[l];
        if (st->ckpt && st->work_layer != l) {
            /* gradient checkpointing: this layer's activations again, from its stored input */
            layer_forward(m, l, NULL);
            st->work_layer = l;
        }
        /* MLP block: res_out = res_mid + down(silu(gate) * up); dres holds dL/dres_out. */
        llama_rmsnorm_recompute(st->ln, a->res_mid, a->rstd2, lw->ln2, (int)N, C);
        llama_swiglu_forward(st->hbuf, a->gate, a->up, N * F);
        llama_matmul_backward(&m->state->prec, st->dh, lg->wd, NULL, st->dres, st->hbuf, lw->wd, (int)N, F, C, 0.0f);
        llama_swiglu_backward(st->dh, st->dup, st->dh, a->gate, a->up, N * F);
        llama_matmul_backward(&m->state->prec, st->dln, lg->wg, NULL, st->dh, st->ln, lw->wg, (int)N, C, F, 0.0f);
        llama_matmul_backward(&m->state->prec, st->dln, lg->wu, NULL, st->dup, st->ln, lw->wu, (int)N, C, F, 1.0f);
        llama_rmsnorm_backward(st->dres, lg->ln2, st->dln, a->res_mid, lw->ln2, a->rstd2, (int)N, C);
        /* attention block: res_mid = res_in + o_proj(attn); dres now holds dL/dres_mid. */
        llama_matmul_backward(&m->state->prec, st->datty, lg->wo, lg->bo, st->dres, a->atty, lw->wo, (int)N, QD, C, 0.0f);
        llama_attention_backward(st->dq, st->dk, st->dv, st->att_scratch, st->att_threads, st->datty, a->q, a->k,
                                 a->v, a->atty, a->lse, B, T, NH, NKV, HS, c->sliding_window);
        llama_rope_backward(m, st->dq, (int)N, NH, 0, T);
        llama_rope_backward(m, st->dk, (int)N, NKV, 0, T);
        float *dqp = st->dq, *dkp = st->dk;
        if (qk) {
            /* through q_norm / k_norm: datty is free again (attention backward consumed it) */
            memset(st->datty, 0, N * QD * sizeof(float));
            memset(st->dkr, 0, N * KD * sizeof(float));
            llama_rmsnorm_backward(st->datty, lg->qn, st->dq, a->qr, lw->qn, a->rstdq, (int)N * NH, HS);
            llama_rmsnorm_backward(st->dkr, lg->kn, st->dk, a->kr, lw->kn, a->rstdk, (int)N * NKV, HS);
            dqp = st->datty;
            dkp = st->dkr;
        }
        llama_rmsnorm_recompute(st->ln, a->res_in, a->rstd1, lw->ln1, (int)N, C);
        llama_matmul_backward(&m->state->prec, st->dln, lg->wq, lg->bq, dqp, st->ln, lw->wq, (int)N, C, QD, 0.0f);
        llama_matmul_backward(&m->state->prec, st->dln, lg->wk, lg->bk, dkp, st->ln, lw->wk, (int)N, C, KD, 1.0f);
        llama_matmul_backward(&m->state->prec, st->dln, lg->wv, lg->bv, st->dv, st->ln, lw->wv, (int)N, C, KD, 1.0f);
        llama_rmsnorm_backward(st->dres, lg->ln1, st->dln, a->res_in, lw->ln1, a->rstd1, (int)N, C);
    }
    /* embedding: serial over rows, so repeated tokens accumulate in a fixed order; the padding token
     * gets no gradient (nn.Embedding(padding_idx) as transformers builds embed_tokens) */
    for (size_t n = 0; n < N; n++) {
        if (tokens[n] == c->pad_token_id) continue;
        float *g = m->g.wte + (size_t)tokens[n] * C;
        const float *d = st->dres + n * C;
        for (int i = 0; i < C; i++) g[i] += d[i];
    }
}
