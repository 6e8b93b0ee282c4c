/*
 * tests/gpu/test_cuda_model.c: the whole CUDA model (llama_cuda.h) against the CPU model on one
 * GRPO-style step, for tied Qwen2 (q/k/v biases, a padding token in the batch), untied Llama with
 * q/k/v/o biases and MHA, Qwen3 (q/k norms, NH*HS != C, llama3 rope scaling) and Mistral (sliding
 * window shorter than T), in FP32, TF32 and BF16:
 *   forward:  logp and entropy (normalized error below the layer limits 1e-5 / 1e-3 / 1e-2);
 *   backward: every parameter tensor's gradient for a random dlogp with masked (zero) entries
 *             (limits 1e-4 / 1e-2 / 5e-2: a whole network compounds the layers' rounding, in BF16
 *             through bf16 activations at every layer);
 *   step:     the gradient norm (trainer's clip_grad_norm), one AdamW step (trainer's adamw_step:
 *             updated weights 1e-5 / 1e-2 / 1e-2, moments), and logp after the update.
 * Also: gradients accumulate over two backward passes, download / upload round trips, the memory
 * figures, and errors users can cause (bad token, T too long) return -1 with a message.
 * Exit 77 ("SKIP: no CUDA device") without a GPU.
 */
#include "tests/gpu/gpu_test_util.h"

#include "trainer/optim.h"

static const double grad_tol[3] = {1e-4, 1e-2, 5e-2};
static const double step_tol[3] = {1e-5, 1e-2, 1e-2};

static llama_config test_config(int which) {
    llama_config c;
    switch (which) {
    case 0:
        c = small_config("Qwen2ForCausalLM", 67, 48, 80, 2, 4, 2, 12);
        c.tie_word_embeddings = 1;
        c.attention_bias = 1;
        c.pad_token_id = 5;
        break;
    case 1:
        c = small_config("LlamaForCausalLM", 50, 32, 56, 2, 4, 4, 8);
        c.attention_bias = 1;
        break;
    case 2:
        c = small_config("Qwen3ForCausalLM", 45, 40, 64, 2, 4, 2, 16);
        c.rope_theta = 100.0f;
        c.rope_type = LLAMA_ROPE_LLAMA3;
        c.rope_factor = 8.0f;
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = 4.0f;
        c.rope_original_max_position_embeddings = 16;
        break;
    default:
        c = small_config("MistralForCausalLM", 40, 32, 48, 2, 4, 1, 8);
        c.sliding_window = 5;
        break;
    }
    return c;
}

static unsigned char *decay_flags(const llama_model *m) {
    unsigned char *d = calloc(m->num_params, 1);
    for (int i = 0; i < m->num_tensors; i++)
        if (m->tensors[i].decay) memset(d + (m->tensors[i].data - m->params), 1, m->tensors[i].numel);
    return d;
}

static void check_step(int which, int pi) {
    int p = test_precisions[pi];
    llama_config cfg = test_config(which);
    const int B = 3, T = 13, N = B * T;
    printf("== %s, %s\n", cfg.architecture, precision_names[pi]);
    llama_model m, mg;
    CHECK(llama_init_random(&m, &cfg, 7 + which, 0.02f) == 0);
    CHECK(llama_init_random(&mg, &cfg, 7 + which, 0.02f) == 0);
    randomize_model(&m, 100 + which, 0.15f);
    if (p == LLAMA_CUDA_BF16) round_bf16(m.params, m.num_params); /* the weights the bf16 copy holds */
    int tok[39];
    float dlogp[39], logp[39], ent[39], glogp[39], gent[39];
    random_tokens(tok, N, cfg.vocab_size, 200 + which);
    if (cfg.pad_token_id >= 0) tok[4] = tok[20] = cfg.pad_token_id;
    fill_normal(dlogp, N, 300 + which, 1.0f);
    for (int i = 0; i < N; i += 4) dlogp[i] = 0.0f; /* masked positions */

    llama_cuda_model cm;
    char err[256];
    if (llama_cuda_create(&cm, &m, 0, p, err, sizeof err)) {
        fprintf(stderr, "llama_cuda_create: %s\n", err);
        CHECK(0);
        return;
    }
    double ltol = layer_tol(p);
    char label[160];
    /* forward */
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, ent) == 0);
    CHECK(llama_cuda_forward_logprobs(&cm, tok, B, T, glogp, gent) == 0);
    CHECK_ERR("forward logp", glogp, logp, N, ltol);
    CHECK_ERR("forward entropy", gent, ent, N, ltol);
    for (int b = 0; b < B; b++) CHECK(glogp[b * T] == 0.0f && gent[b * T] == 0.0f);

    /* backward */
    llama_zero_grad(&m);
    llama_backward_logprobs(&m, dlogp);
    llama_cuda_zero_grad(&cm);
    llama_cuda_backward_logprobs(&cm, dlogp);
    CHECK(llama_cuda_download(&cm, &mg, 0, 1, err, sizeof err) == 0);
    double worst = 0.0;
    for (int i = 0; i < m.num_tensors; i++) {
        const llama_tensor *t = &m.tensors[i];
        double e = norm_err(mg.grads + (t->data - m.params), t->grad, t->numel);
        if (e > worst) worst = e;
        CHECK_MSG(e < grad_tol[pi], "gradient of %s: normalized error %.3g, limit %.g", t->name, e, grad_tol[pi]);
    }
    printf("  %-44s worst normalized error %.3g (limit %.g)\n", "gradients, every tensor", worst, grad_tol[pi]);

    /* gradients accumulate: a second backward doubles them (fp32: exactly up to rounding) */
    if (p == LLAMA_CUDA_FP32) {
        float *g1 = hmalloc(m.num_params);
        memcpy(g1, mg.grads, m.num_params * sizeof(float));
        llama_cuda_backward_logprobs(&cm, dlogp);
        CHECK(llama_cuda_download(&cm, &mg, 0, 1, err, sizeof err) == 0);
        for (size_t i = 0; i < m.num_params; i++) g1[i] *= 2.0f;
        CHECK_ERR("gradients after two backward passes", mg.grads, g1, m.num_params, 1e-6);
        llama_cuda_zero_grad(&cm);
        llama_cuda_backward_logprobs(&cm, dlogp);
        free(g1);
    }

    /* at temperature 0.7 (TRL's training log-probs of logits / temperature): forward and gradients as the CPU */
    {
        float tl[39], te[39], gtl[39], gte[39];
        CHECK(llama_forward_logprobs_t(&m, tok, B, T, 0.7f, tl, te) == 0);
        CHECK(llama_cuda_forward_logprobs_t(&cm, tok, B, T, 0.7f, gtl, gte) == 0);
        CHECK_ERR("forward logp at temperature 0.7", gtl, tl, N, ltol);
        CHECK_ERR("forward entropy at temperature 0.7", gte, te, N, ltol);
        int differs = 0;
        for (int i = 0; i < N; i++) differs += fabsf(tl[i] - logp[i]) > 1e-4f;
        CHECK(differs > 0);
        /* with an entropy term too (TRL's entropy bonus): dLoss/dentropy on every other position */
        float dent[39];
        fill_normal(dent, N, 400 + which, 1.0f);
        for (int i = 0; i < N; i += 2) dent[i] = 0.0f;
        llama_zero_grad(&m);
        llama_backward_logprobs_entropy(&m, dlogp, dent);
        llama_cuda_zero_grad(&cm);
        llama_cuda_backward_logprobs_entropy(&cm, dlogp, dent);
        CHECK(llama_cuda_download(&cm, &mg, 0, 1, err, sizeof err) == 0);
        double tworst = 0.0;
        for (int i = 0; i < m.num_tensors; i++) {
            const llama_tensor *t = &m.tensors[i];
            double e = norm_err(mg.grads + (t->data - m.params), t->grad, t->numel);
            if (e > tworst) tworst = e;
            CHECK_MSG(e < grad_tol[pi], "temperature 0.7 with entropy: gradient of %s: normalized error %.3g", t->name, e);
        }
        printf("  %-44s worst normalized error %.3g (limit %.g)\n", "gradients at temperature 0.7 with entropy", tworst, grad_tol[pi]);
        /* back to temperature 1 for what follows */
        CHECK(llama_forward_logprobs(&m, tok, B, T, logp, ent) == 0);
        CHECK(llama_cuda_forward_logprobs(&cm, tok, B, T, glogp, gent) == 0);
        llama_zero_grad(&m);
        llama_backward_logprobs(&m, dlogp);
        llama_cuda_zero_grad(&cm);
        llama_cuda_backward_logprobs(&cm, dlogp);
    }

    /* gradient norm, then one AdamW step (weight decay on matrices only) */
    double cpu_norm = clip_grad_norm(m.grads, m.num_params, 0.0);
    double gpu_norm = llama_cuda_clip_grad_norm(&cm, 0.0);
    CHECK_NEAR(gpu_norm, cpu_norm, grad_tol[pi] * cpu_norm);
    adamw_state s;
    CHECK(adamw_init(&s, m.num_params) == 0);
    adamw_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f};
    llama_cuda_adamw_hparams gh = {h.lr, h.beta1, h.beta2, h.eps, h.weight_decay};
    unsigned char *decay = decay_flags(&m);
    adamw_step(&s, &h, m.params, m.grads, decay);
    CHECK(llama_cuda_adamw_step(&cm, &gh, err, sizeof err) == 0);
    CHECK(llama_cuda_download(&cm, &mg, 1, 0, err, sizeof err) == 0);
    snprintf(label, sizeof label, "updated weights after AdamW");
    CHECK_ERR(label, mg.params, m.params, m.num_params, step_tol[pi]);
    float *gm = hmalloc(m.num_params), *gv = hmalloc(m.num_params);
    int64_t t = 0;
    llama_cuda_adamw_get(&cm, gm, gv, &t);
    CHECK_EQ_INT(t, 1);
    CHECK_ERR("AdamW first moment", gm, s.m, m.num_params, grad_tol[pi]);
    CHECK_ERR("AdamW second moment", gv, s.v, m.num_params, 2 * grad_tol[pi]);
    /* the forward after the update */
    if (p == LLAMA_CUDA_BF16) round_bf16(m.params, m.num_params);
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    CHECK(llama_cuda_forward_logprobs(&cm, tok, B, T, glogp, NULL) == 0);
    CHECK_ERR("forward logp after the step", glogp, logp, N, ltol);

    /* upload: the device forward follows the host weights */
    CHECK(llama_cuda_upload_params(&cm, &m, err, sizeof err) == 0);
    CHECK(llama_cuda_forward_logprobs(&cm, tok, B, T, glogp, NULL) == 0);
    CHECK_ERR("forward logp after upload", glogp, logp, N, ltol);
    CHECK(llama_cuda_adamw_set(&cm, s.m, s.v, s.t, err, sizeof err) == 0);
    llama_cuda_adamw_get(&cm, gm, gv, &t);
    CHECK(t == s.t && memcmp(gm, s.m, m.num_params * sizeof(float)) == 0 &&
          memcmp(gv, s.v, m.num_params * sizeof(float)) == 0);

    /* memory figures */
    llama_cuda_memory mem;
    llama_cuda_get_memory(&cm, &mem);
    CHECK(mem.current_bytes >= m.num_params * sizeof(float) * 4); /* params, grads, m, v */
    CHECK(mem.peak_bytes >= mem.current_bytes);
    CHECK(mem.device_total_bytes > 0);
    llama_cuda_reset_peak(&cm);
    llama_cuda_get_memory(&cm, &mem);
    CHECK(mem.peak_bytes == mem.current_bytes);
    CHECK(llama_cuda_training_bytes(&cfg, p, B, T) > 0);

    /* user errors */
    int bad[39];
    memcpy(bad, tok, sizeof bad);
    bad[7] = cfg.vocab_size;
    CHECK(llama_cuda_forward_logprobs(&cm, bad, B, T, glogp, NULL) == -1);
    CHECK(strstr(cm.err, "token[0][7]") != NULL);
    CHECK(llama_cuda_forward_logprobs(&cm, tok, 1, cfg.max_position_embeddings + 1, glogp, NULL) == -1);
    CHECK(strstr(cm.err, "max_position_embeddings") != NULL);
    llama_model other;
    llama_config oc = cfg;
    oc.hidden_size += 8;
    CHECK(llama_init_random(&other, &oc, 1, 0.02f) == 0);
    CHECK(llama_cuda_download(&cm, &other, 1, 0, err, sizeof err) == -1);
    CHECK(strstr(err, "parameters") != NULL);
    llama_free(&other);

    adamw_free(&s);
    free(decay); free(gm); free(gv);
    llama_cuda_free(&cm);
    CHECK(cm.params == NULL && cm.ctx == NULL);
    llama_free(&m);
    llama_free(&mg);
}

int main(void) {
    skip_without_device();
    for (int which = 0; which < 4; which++)
        for (int pi = 0; pi < 3; pi++) check_step(which, pi);
    /* a model the kernels cannot run is refused with a message */
    llama_config c = small_config("LlamaForCausalLM", 16, 600, 32, 1, 2, 2, 300);
    llama_model m;
    llama_cuda_model cm;
    char err[256];
    CHECK(llama_init_random(&m, &c, 1, 0.02f) == 0);
    CHECK(llama_cuda_create(&cm, &m, 0, LLAMA_CUDA_FP32, err, sizeof err) == -1);
    CHECK(strstr(err, "head_dim") != NULL);
    llama_free(&m);
    c = test_config(0);
    CHECK(llama_init_random(&m, &c, 1, 0.02f) == 0);
    CHECK(llama_cuda_create(&cm, &m, 0, 7, err, sizeof err) == -1);
    CHECK(strstr(err, "precision") != NULL);
    CHECK(llama_cuda_create(&cm, &m, 99, LLAMA_CUDA_FP32, err, sizeof err) == -1);
    CHECK(strstr(err, "device 99") != NULL);
    llama_free(&m);
    return TEST_DONE();
}
