/*
 * tests/model/llama_test_util.h: helpers shared by the tests/model/test_llama*.c executables: a tiny
 * model config, randomizing every parameter (norm weights and biases too, so their gradient paths
 * carry signal), and random token batches. Header-only (static functions), included once per test.
 */
#ifndef GRPO2048_LLAMA_TEST_UTIL_H
#define GRPO2048_LLAMA_TEST_UTIL_H

#include <string.h>

#include "model/llama.h"
#include "model/llama_rng.h"

/* V=11, C=16, L=2, NH=4, NKV=2, HS=4, F=24, 64 positions, eos 10, bos 1, no pad. */
static inline llama_config tiny_config(const char *arch, int tied, int bias) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "%s", arch);
    c.vocab_size = 11;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.max_position_embeddings = 64;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.tie_word_embeddings = tied;
    c.attention_bias = bias;
    c.bos_token_id = 1;
    c.pad_token_id = -1;
    c.eos_token_ids[0] = 10;
    c.num_eos = 1;
    return c;
}

/* Matrices normal(0, std); norm weights 1 + 0.2*normal; biases 0.2*normal. */
static inline void randomize_params(llama_model *m, uint64_t seed, float std) {
    llama_rng r;
    llama_rng_seed(&r, seed, 12345);
    for (int i = 0; i < m->num_tensors; i++) {
        llama_tensor *t = &m->tensors[i];
        size_t len = strlen(t->name);
        int is_bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        for (size_t j = 0; j < t->numel; j++) {
            double z = llama_rng_normal(&r);
            t->data[j] = t->ndim == 2 ? (float)(std * z) : is_bias ? (float)(0.2 * z) : (float)(1.0 + 0.2 * z);
        }
    }
}

static inline void random_tokens(int *tok, size_t n, int V, uint64_t seed) {
    llama_rng r;
    llama_rng_seed(&r, seed, 777);
    for (size_t i = 0; i < n; i++) tok[i] = (int)(llama_rng_next(&r) % (uint64_t)V);
}

#endif
