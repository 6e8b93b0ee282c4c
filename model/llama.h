/*
 * model/llama.h: a Llama-family decoder-only language model in fp32 C, trained and sampled on the CPU.
 *
 * Semantics are those of Hugging Face transformers' LlamaForCausalLM (and Qwen2ForCausalLM,
 * MistralForCausalLM and Qwen3ForCausalLM, which differ only in q/k/v(/o) biases, an optional sliding
 * window, and, for Qwen3, an RMSNorm over head_dim applied to each head of q and k before rope):
 *
 *   x = embed_tokens[tokens]                                           (B,T,C)
 *   per layer:  x = x + o_proj(attn(rope(q_proj(rms1(x))), rope(k_proj(rms1(x))), v_proj(rms1(x))))
 *               x = x + down_proj(silu(gate_proj(rms2(x))) * up_proj(rms2(x)))
 *   logits = lm_head(rms_final(x))                                     (B,T,V)
 *
 * rms(x) = w * (x * rsqrt(mean(x^2) + eps)); rope uses HF's rotate_half layout (pairs (i, i+HS/2),
 * inv_freq[i] = theta^(-2i/HS), optionally rescaled as rope_scaling type "llama3" prescribes);
 * attention is causal grouped-query attention (query head h reads key/value head h / (NH/NKV)),
 * scale 1/sqrt(HS); lm_head is the embedding matrix when tied. Qwen3 (q_norm/k_norm):
 *   q = rope(rms_q(q_proj(x)) per head), k = rope(rms_k(k_proj(x)) per head), rms_q/rms_k weights (HS).
 *
 * Shapes used in comments: B batch rows, T sequence length, C hidden_size, V vocab_size,
 * F intermediate_size, L layers, NH query heads, NKV key/value heads, HS head_dim, G generated rows,
 * P prompt length. Matrices are row-major as stored by PyTorch nn.Linear: weight (out, in).
 *
 * Layout (llm.c style): one allocation for all parameters (m->params) and one of the same size for
 * all gradients (m->grads); m->tensors lists them in HF order with their HF names, and m->w / m->g
 * are named pointers into the two allocations. Activations live in a private state (m->state)
 * that grows with the largest B*T seen (every layer's, or with gradient checkpointing each layer's
 * input and one layer's worth, llama_set_gradient_checkpointing). The math lives in llama.c
 * (forward/backward orchestration), llama_layers.c (the layer kernels, forward/backward pairs),
 * llama_generate.c (KV-cache sampling), llama_config.c (config.json, generation_config.json),
 * llama_safetensors.c (model.safetensors, sharded model-0000i-of-0000n.safetensors +
 * model.safetensors.index.json) and llama_rng.c (RNG).
 *
 * Threads: one OpenMP pool (OMP_NUM_THREADS). Matrix products are OpenBLAS sgemm calls split over
 * those threads; creating a model switches OpenBLAS to single-threaded mode
 * (openblas_set_num_threads(1), process-wide) so that two thread pools never spin against each
 * other. Every reduction runs in a fixed order, so results are bitwise repeatable for a fixed
 * thread count. A model serves one call at a time (its activation buffers are shared state);
 * separate llama_model values are independent.
 */
#ifndef GRPO2048_LLAMA_H
#define GRPO2048_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#define LLAMA_MAX_EOS 8

/* rope_scaling types (config.json "rope_scaling" / "rope_parameters" rope_type) */
#define LLAMA_ROPE_DEFAULT 0    /* null or "default": inv_freq[i] = theta^(-2i/HS) */
#define LLAMA_ROPE_LLAMA3  1    /* "llama3" (Llama 3.1/3.2): inv_freq rescaled by wavelength band */

/* save_pretrained's default max_shard_size in transformers 4.x ("5GB", 5e9 bytes): llama_save writes
 * one model.safetensors up to this size of tensor data, shards beyond it. */
#define LLAMA_DEFAULT_MAX_SHARD_BYTES ((size_t)5000000000u)

typedef struct {
    char architecture[64];      /* "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM" */
    int vocab_size;             /* V */
    int hidden_size;            /* C */
    int intermediate_size;      /* F */
    int num_hidden_layers;      /* L */
    int num_attention_heads;    /* NH */
    int num_key_value_heads;    /* NKV, divides NH */
    int head_dim;               /* HS (default C/NH), even */
    int max_position_embeddings; /* positions 0 .. max_position_embeddings-1 are valid */
    float rms_norm_eps;
    float rope_theta;
    int tie_word_embeddings;    /* 1: lm_head.weight is model.embed_tokens.weight */
    int attention_bias;         /* q/k/v bias (Qwen2: always); for Llama and Qwen3 also o_proj bias, as in HF */
    int bos_token_id;           /* -1 if none */
    int pad_token_id;           /* -1 if none (set it when building a config by hand: 0 is a token). As HF's
                                   nn.Embedding(padding_idx): the input embedding of this token gets no
                                   gradient, and llama_init_random zeroes its row */
    int eos_token_ids[LLAMA_MAX_EOS]; int num_eos; /* eos_token_id may be an int or a list in config.json */
    int sliding_window;         /* Mistral: a query at position i sees keys at positions > i - sliding_window; 0 = none */
    /* rope_scaling. LLAMA_ROPE_LLAMA3 (transformers' _compute_llama3_parameters), with
     * wavelen_i = 2*pi/inv_freq_i, lo = original_max / low_freq_factor, hi = original_max / high_freq_factor:
     *   wavelen_i < hi: unchanged;  wavelen_i > lo: inv_freq_i / factor;  otherwise, with
     *   s = (original_max / wavelen_i - low_freq_factor) / (high_freq_factor - low_freq_factor):
     *   (1 - s) * inv_freq_i / factor + s * inv_freq_i.  The other fields are unused for the default. */
    int rope_type;                      /* LLAMA_ROPE_DEFAULT (0) or LLAMA_ROPE_LLAMA3 */
    float rope_factor;                  /* "factor" (> 0) */
    float rope_low_freq_factor;         /* "low_freq_factor" (> 0) */
    float rope_high_freq_factor;        /* "high_freq_factor" (> low_freq_factor) */
    int rope_original_max_position_embeddings; /* "original_max_position_embeddings" (>= 1) */
} llama_config;

/* One parameter tensor. decay: 1 for matrices (embeddings, projections, lm_head), 0 for norms and
 * biases (HF Trainer's no-decay rule). shape: (shape[0]) when ndim 1, (shape[0], shape[1]) when 2. */
typedef struct { char name[96]; float *data; float *grad; size_t numel; int ndim; int shape[2]; int decay; } llama_tensor;

/* Named pointers of one decoder layer (into params, or into grads). */
typedef struct {
    float *ln1;   /* (C)       input_layernorm.weight */
    float *wq;    /* (NH*HS, C) self_attn.q_proj.weight */
    float *bq;    /* (NH*HS)    self_attn.q_proj.bias, NULL unless attention_bias */
    float *wk;    /* (NKV*HS, C) */
    float *bk;    /* (NKV*HS) or NULL */
    float *wv;    /* (NKV*HS, C) */
    float *bv;    /* (NKV*HS) or NULL */
    float *wo;    /* (C, NH*HS) self_attn.o_proj.weight */
    float *bo;    /* (C) o_proj.bias: only Llama/Qwen3 with attention_bias, else NULL */
    float *qn;    /* (HS)      self_attn.q_norm.weight: Qwen3 only, else NULL */
    float *kn;    /* (HS)      self_attn.k_norm.weight: Qwen3 only, else NULL */
    float *ln2;   /* (C)       post_attention_layernorm.weight */
    float *wg;    /* (F, C)    mlp.gate_proj.weight */
    float *wu;    /* (F, C)    mlp.up_proj.weight */
    float *wd;    /* (C, F)    mlp.down_proj.weight */
} llama_layer_weights;

typedef struct {
    float *wte;                  /* (V, C) model.embed_tokens.weight */
    llama_layer_weights *layers; /* (L) */
    float *lnf;                  /* (C) model.norm.weight */
    float *lm_head;              /* (V, C) lm_head.weight; == wte when tie_word_embeddings */
} llama_weights;

struct llama_state;              /* private: activations, rope tables, forward bookkeeping */

typedef struct llama_model {
    llama_config cfg;
    float *params;               /* (num_params) all parameters, one allocation */
    float *grads;                /* (num_params) all gradients, same layout, zeroed at creation */
    size_t num_params;
    llama_tensor *tensors;       /* (num_tensors) in HF order; a tied lm_head is not listed */
    int num_tensors;
    llama_weights w;             /* named pointers into params */
    llama_weights g;             /* the same names into grads */
    char err[256];               /* message of the last failed llama_forward_logprobs / llama_forward_logits */
    char *generation_config;     /* generation_config.json text read by llama_load (NULL if none); llama_save
                                    writes it back (malloc'ed, freed by llama_free) */
    int gradient_checkpointing;  /* 0 (default) or 1: see llama_set_gradient_checkpointing; read by each forward */
    int bf16;                    /* 0 fp32 (default), 1 bf16 products: see llama_set_bf16; read by each forward */
    struct llama_state *state;
} llama_model;

/* Validates c (positive sizes, NKV | NH, even HS, known architecture, Qwen2 has attention_bias,
 * rope_scaling parameters ...). Returns 0, or -1 with a message naming the field in err. */
int llama_config_check(const llama_config *c, char *err, size_t errlen);

/* Reads a Hugging Face config.json (parsed with cJSON): architectures[0] (or model_type), vocab_size,
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
 * head_dim, rms_norm_eps, rope_theta, rope_scaling (or transformers 5's rope_parameters),
 * tie_word_embeddings, attention_bias, bos_token_id, pad_token_id, eos_token_id (an int or a list),
 * max_position_embeddings, sliding_window (Mistral). Defaults as in transformers' LlamaConfig /
 * Qwen2Config / Qwen3Config / MistralConfig for absent optional fields (Qwen3: head_dim 128).
 * Unknown architecture, missing or bad field, or an unsupported feature (a rope_scaling type other
 * than default/llama3, hidden_act other than silu, mlp_bias, Qwen2/Qwen3 use_sliding_window,
 * partial_rotary_factor != 1) -> -1 with a message naming the file, the field and the value. */
int llama_config_from_json(llama_config *c, const char *json_path, char *err, size_t errlen);

/* Writes an HF-style config.json (architectures, model_type, torch_dtype "float32", rope_theta and
 * rope_scaling in the transformers 4.x layout, which transformers 5 also reads, ...) atomically:
 * written to a temporary name, fsync'd, renamed. Returns 0 or -1 with err. */
int llama_config_to_json(const llama_config *c, const char *path, char *err, size_t errlen);

/* Writes generation_config.json atomically: `base` (a JSON object's text, e.g. the file a model was
 * loaded with; NULL for none) with bos_token_id / pad_token_id (when >= 0) and eos_token_id (an
 * int, or a list when c has several eos ids) added from c where base lacks them. Returns 0, or -1 (base not a JSON object, write
 * failure) with err naming path. */
int llama_generation_config_to_json(const llama_config *c, const char *base, const char *path, char *err,
                                    size_t errlen);

/* Creates a model for config c with weights matching HF's _init_weights: matrices (embeddings and
 * projections) normal(0, std), norm weights 1, biases 0, the pad_token_id row of the embeddings 0. Deterministic in seed (xoshiro256**,
 * Box-Muller, tensors filled in m->tensors order). Gradients are zero. Returns 0, or -1 when c is
 * invalid (see llama_config_check for the message) or memory runs out; m is then zeroed. */
int llama_init_random(llama_model *m, const llama_config *c, uint64_t seed, float std);

/* Loads dir/config.json and the weights: dir/model.safetensors, or when that is absent the shards
 * named by dir/model.safetensors.index.json ("weight_map": tensor name -> file in dir), as
 * transformers' from_pretrained picks them. Files are mmap'd; F32, BF16 or F16 tensors are converted
 * to fp32 once. dir/generation_config.json, when present, is kept in m->generation_config. A
 * missing, duplicated, extra, mis-typed or mis-shaped tensor, a truncated / corrupt file, a bad
 * index (not JSON, no weight_map, a file name with '/', a tensor found in another shard than the
 * index says) or an invalid generation_config.json -> -1 with a message naming the file and
 * tensor; m is then zeroed. So is a tensor holding NaN or inf (the message names the tensor and the
 * first such value). Ignored: rotary_emb.inv_freq buffers, and lm_head.weight when the embeddings are
 * tied (as transformers does). */
int llama_load(llama_model *m, const char *dir, char *err, size_t errlen);

/* The first tensor of m (index into m->tensors) that holds a NaN or inf, with the flat index of the
 * first such value in *index (index may be NULL); -1 when every value is finite. */
int llama_find_nonfinite(const llama_model *m, size_t *index);

/* llama_save_ex with max_shard_bytes = LLAMA_DEFAULT_MAX_SHARD_BYTES. */
int llama_save(const llama_model *m, const char *dir, int bf16, char *err, size_t errlen);

/* Saves dir/config.json, dir/generation_config.json (m->generation_config with bos/eos from m->cfg
 * added where it lacks them) and the weights (F32, or BF16 rounded to nearest even when bf16;
 * metadata {"format":"pt"}): one dir/model.safetensors when the tensor bytes fit in max_shard_bytes
 * (0 = no limit), else shards dir/model-0000i-of-0000n.safetensors filled in tensor order up to
 * max_shard_bytes each (a bigger tensor gets a shard of its own, as save_pretrained does) plus
 * dir/model.safetensors.index.json ({"metadata": {"total_size": bytes}, "weight_map": {...}}).
 * Every file is written to a temporary name, fsync'd and renamed; dir (one level) is created if
 * missing; weight files of an earlier save in another layout (model.safetensors, the index, shards
 * named model-*-of-*.safetensors that this save did not write) are removed afterwards, so the
 * folder holds exactly one checkpoint. A tied lm_head is not written (as save_pretrained does).
 * A model holding a NaN or inf is not saved at all (-1, naming the tensor). 0 or -1 with err. */
int llama_save_ex(const llama_model *m, const char *dir, int bf16, size_t max_shard_bytes, char *err, size_t errlen);

/* Frees everything m owns and zeroes it. Safe on a zeroed model. */
void llama_free(llama_model *m);

/* Sets all m->num_params gradients to 0. */
void llama_zero_grad(llama_model *m);

/* Teacher-forced log-probabilities.
 * tokens: (B,T) int in [0,V). logp: (B,T) out: logp[b,t] = log p(tokens[b,t] | tokens[b,<t]) (natural
 * log) for t>=1, logp[b,0]=0. entropy: (B,T) out or NULL: entropy (nats) of the predictive
 * distribution that produced tokens[b,t] (same indexing, entropy[b,0]=0). Right padding is fine
 * (causal). Keeps the activations llama_backward_logprobs needs; buffers grow to the largest B*T and
 * are reused. Logits are materialized at most a chunk of rows x V at a time.
 * Returns 0, or -1 (B or T < 1, T > max_position_embeddings, token out of range, out of memory) with
 * the message in m->err. */
int llama_forward_logprobs(llama_model *m, const int *tokens, int B, int T, float *logp, float *entropy);

/* As llama_forward_logprobs, with the logits divided by temperature before the softmax, as TRL's GRPOTrainer
 * computes its training log-probabilities and entropies (trl 1.16.0 trl/trainer/utils.py
 * selective_log_softmax_and_entropy / add_fused_lm_head(temperature)): logp and entropy are those of
 * softmax(logits / temperature). llama_backward_logprobs(_entropy) after it differentiates the same
 * tempered quantities. temperature must be finite and > 0 (else -1 with m->err). */
int llama_forward_logprobs_t(llama_model *m, const int *tokens, int B, int T, float temperature, float *logp,
                             float *entropy);

/* Teacher-forced logits, as transformers' model(input_ids).logits. tokens: (B,T) int in [0,V).
 * logits: (B,T,V) out: logits[b,t,:] are the unnormalized next-token scores after tokens[b,<=t].
 * Same errors as llama_forward_logprobs (message in m->err). Does not prepare a backward pass:
 * llama_backward_logprobs after it aborts. */
int llama_forward_logits(llama_model *m, const int *tokens, int B, int T, float *logits);

/* dlogp: (B,T) dLoss/dlogp[b,t] (0 where masked; column t=0 is ignored). Accumulates (+=) parameter
 * gradients into m->grads. Must follow a successful llama_forward_logprobs on the same tokens, B, T
 * (aborts with file:line otherwise). Rows whose dlogp is 0 cost nothing in the LM head. */
void llama_backward_logprobs(llama_model *m, const float *dlogp);

/* As llama_backward_logprobs, plus dentropy: (B,T) dLoss/dentropy[b,t] or NULL (0 everywhere), for a loss
 * that uses the entropies the forward pass returned (TRL's entropy bonus, entropy_coef). The entropy's
 * gradient w.r.t. the (tempered) logits z' is -p * (log p + H). */
void llama_backward_logprobs_entropy(llama_model *m, const float *dlogp, const float *dentropy);

/* Sampling settings. Zero-initialized fields mean "off" for everything after top_p, so positional
 * initializers {temperature, top_k, top_p} keep working. */
typedef struct {
    float temperature;        /* 0 = greedy */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off: keep tokens whose probability >= min_p x the top token's */
    float repetition_penalty; /* 0 or 1 = off: logits of tokens already in the row (prompt included)
                                 are divided by it when positive, multiplied when negative */
    const int *stop_ids;      /* NULL = cfg.eos_token_ids; else these num_stop ids end a row */
    int num_stop;
    int processed_logprobs;   /* out_logp: 0 = log p(token) under the raw logits at temperature 1; 1 = under the
                                 distribution the token was drawn from (repetition penalty, temperature, top-k,
                                 top-p, min-p applied and renormalized over the kept tokens; 0 when greedy):
                                 vLLM's logprobs_mode "processed_logprobs", which TRL's importance-sampling
                                 correction uses (trl 1.16 vllm_generation.py) */
    int first_row;            /* row g draws from stream first_row + g (0 = off): a data-parallel rank generating
                                 rows [first_row, first_row + G) of a larger batch samples what one process
                                 generating the whole batch would (trainer/dist.h) */
    /* on_step, or NULL: called by the generators (llama_generate_ex, llama_cuda_generate) from the calling
     * thread after every decode step, with the rows that stopped in that step (done: ndone row indices in
     * [0,G), ndone may be 0). A listed row's out / out_len / out_logp are final when it is called, so the
     * caller can use a completion while the other rows keep decoding (the trainer sends it to the reward
     * pool: rewards scored while generating). It must not call into the model; it changes nothing that is
     * sampled. */
    void (*on_step)(void *ctx, const int *done, int ndone);
    void *on_step_ctx;
} llama_sampling;

/* Batched generation with a KV cache. prompt: (P,) is prefilled once and its keys/values copied to G
 * rows; rows decode in lockstep; a row stops at a stop id (below) or after max_new tokens; finished rows are dropped from the work.
 * Sampling per row, in transformers' order: the repetition penalty on the raw logits (HF's
 * RepetitionPenaltyLogitsProcessor), then logits / temperature, top-k (keeps every token tied with the
 * k-th largest, as HF's TopKLogitsWarper), top-p (the smallest set, by descending probability, whose
 * mass is >= top_p; at least one token), min-p (MinPLogitsWarper: drops tokens below min_p x the top
 * probability), then a multinomial draw. temperature 0: argmax of the penalized logits (lowest id on
 * ties). A row stops at any of s->stop_ids (or cfg.eos_token_ids when NULL).
 * Row g draws from its own xoshiro256** stream seeded from (seed, s->first_row + g), so its tokens do not depend on
 * G or the thread count, up to float rounding: row results are bitwise independent of G while at
 * most LLAMA_SMALL_MAX_ROWS (32) rows are active (llama_sgemm_small: every dot product computed the
 * same way for any batch); batched sgemm over more rows may round last bits differently (~1e-6 in
 * logp), which changes a draw only when it falls that close to a cumulative-probability boundary.
 * Fixed (seed, G): bitwise repeatable.
 * out: (G, max_new) tokens (eos included when produced, rest -1); out_len: (G,) generated tokens incl.
 * eos. Returns 0, or -1 (P < 1, G < 1, max_new < 1, P+max_new > max_position_embeddings, prompt token
 * out of range, bad sampling parameters, out of memory) with err. */
int llama_generate(llama_model *m, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                   uint64_t seed, int *out, int *out_len, char *err, size_t errlen);

/* llama_generate, and also out_logp: (G, max_new) or NULL: log p(token) of each generated token, 0 after
 * out_len: under the model's own distribution (temperature 1, no penalty/top-k/top-p), or, with
 * s->processed_logprobs, under the distribution it was sampled from (see llama_sampling). */
int llama_generate_ex(llama_model *m, const int *prompt, int P, int G, int max_new, const llama_sampling *s,
                      uint64_t seed, int *out, int *out_len, float *out_logp, char *err, size_t errlen);

/* The tensor named name (HF name), or NULL. */
llama_tensor *llama_find_tensor(llama_model *m, const char *name);

/* Gradient checkpointing (transformers' gradient_checkpointing_enable, TRL's gradient_checkpointing):
 * on != 0 makes the forward pass keep only each decoder layer's input (the residual stream, N x C
 * floats per layer) plus what the LM head and the loss need; llama_backward_logprobs then recomputes
 * one layer's activations from its saved input right before that layer's backward (the last layer's
 * are still in place from the forward). Activation memory drops from about L x (per-layer
 * activations) to L x C floats per token plus one layer's worth (llama_activation_bytes_ex gives
 * both; e.g. 2.8 GiB -> 0.5 GiB for a SmolLM2-135M shape at 8 x 512 tokens), for about one extra
 * forward pass of the decoder layers (without the down projection) per backward: ~+19% of a training
 * step's FLOPs for that shape, +10-20% of the step time measured on the CPU. The recomputation runs
 * the same kernels in the same order on the same inputs, so log-probabilities and gradients are
 * bitwise identical to the mode off (for a fixed thread count, as every result of this model). Off by
 * default. Takes effect at the next forward, which re-lays out the buffers; a backward always uses
 * the layout of the forward it follows. */
void llama_set_gradient_checkpointing(llama_model *m, int on);

/* Bytes of the activation buffers llama_forward_logprobs keeps for N = B*T tokens (they grow to the
 * largest N seen and stay allocated until llama_free), attention scratch and rope tables excluded,
 * with gradient checkpointing off (llama_activation_bytes) or as given (llama_activation_bytes_ex).
 * For choosing micro-batch sizes. */
size_t llama_activation_bytes(const llama_config *c, size_t N);
/* Mixed precision for training (TRL's / transformers' bf16: true, as torch.autocast(bfloat16) does it
 * for nn.Linear): on, the matrix products of llama_forward_logprobs / llama_forward_logits /
 * llama_backward_logprobs (projections, MLP, LM head) take their two operands rounded to bfloat16 and
 * accumulate in fp32 (oneDNN's matmul on AMX-BF16 or AVX512-BF16); weights, activations between
 * products, gradients and the optimizer stay fp32. Generation (llama_generate.c) always runs in fp32.
 * Results stay bitwise repeatable for a fixed thread count. Returns 0; -1 when on and this build or CPU
 * cannot (no oneDNN, no bf16 instructions, GRPO2048_NO_BF16 set: the reason in why), leaving fp32. */
int llama_set_bf16(llama_model *m, int on, char *why, size_t whylen);
/* 1 if bf16 products can run here: built with oneDNN, the CPU has AVX512-BF16 or AMX-BF16, and
 * GRPO2048_NO_BF16 is unset. 0 otherwise, with the reason in why (NULL allowed). Thread-safe. */
int llama_bf16_supported(char *why, size_t whylen);
/* "oneDNN AMX-BF16", "oneDNN AVX512-BF16" or "none": what llama_set_bf16's products run on here. */
const char *llama_bf16_isa_name(void);

size_t llama_activation_bytes_ex(const llama_config *c, size_t N, int gradient_checkpointing);

/* Matrix-product FLOPs (2 per multiply-add) of one llama_forward_logprobs over B*T = N tokens of
 * length T, attention included; backward costs twice this. For benchmarks. */
double llama_forward_flops(const llama_config *c, int B, int T);

#endif
