/*
 * tests/trainer/test_backend_attn.c: backend_set_attn_implementation (trainer/backend.h), the hook through
 * which train and sft apply the config key attn_implementation. On the CPU backend (every binary has it):
 * native is accepted and leaves the model's results unchanged; cudnn is refused with a message naming the
 * key and saying it is CUDA only (transformers refuses an unavailable implementation; the run stops with
 * exit status 2 before training); an unknown name is refused naming what is expected. The CUDA backend's
 * side is tests/gpu/test_cuda_cudnn_attention.c's.
 */
#include <string.h>

#include "model/llama.h"
#include "tests/testing.h"
#include "trainer/backend.h"

int main(void) {
    llama_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
    c.vocab_size = 64;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.max_position_embeddings = 32;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tie_word_embeddings = 1;
    c.pad_token_id = -1;
    c.eos_token_ids[0] = 2;
    c.num_eos = 1;
    llama_model m;
    CHECK(llama_init_random(&m, &c, 5, 0.05f) == 0);
    backend b;
    char err[512];
    CHECK_MSG(backend_create(&b, "cpu", BACKEND_FP32, &m, NULL, err, sizeof err) == 0, "%s", err);
    const int tok[2 * 6] = {1, 5, 9, 3, 7, 2, 4, 4, 8, 16, 32, 2};
    float before[12], after[12];
    CHECK(backend_forward_logprobs(&b, tok, 2, 6, 1.0f, before, NULL) == 0);

    CHECK_EQ_INT(backend_set_attn_implementation(&b, "native"), 0);
    CHECK(backend_forward_logprobs(&b, tok, 2, 6, 1.0f, after, NULL) == 0);
    CHECK(memcmp(before, after, sizeof before) == 0);

    CHECK_EQ_INT(backend_set_attn_implementation(&b, "cudnn"), -1);
    printf("cudnn on the CPU: %s\n", b.err);
    CHECK_MSG(strstr(b.err, "attn_implementation: cudnn is CUDA only") != NULL, "%s", b.err);
    CHECK(backend_forward_logprobs(&b, tok, 2, 6, 1.0f, after, NULL) == 0);   /* still usable, still native */
    CHECK(memcmp(before, after, sizeof before) == 0);

    CHECK_EQ_INT(backend_set_attn_implementation(&b, "sdpa"), -1);
    CHECK_MSG(strstr(b.err, "attn_implementation: expected native or cudnn, got 'sdpa'") != NULL, "%s", b.err);
    backend_free(&b);
    llama_free(&m);
    return TEST_DONE();
}
