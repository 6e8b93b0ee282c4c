/*
 * tests/model/test_llama_hf.c: the model against Hugging Face transformers itself. The fixtures in
 * tests/model/data/hf_{llama,qwen2,mistral}/ were written by transformers' save_pretrained and
 * tests/model/data/make_hf_fixtures.py (which says how to regenerate them); expected.json holds
 * transformers' float32 eager-attention results on the saved weights:
 *   - logp and entropy of a (2, 24) token batch must match llama_forward_logprobs within 2e-5;
 *   - greedy generation from a 7-token prompt must reproduce model.generate(do_sample=False).
 * The three models cover: q/k/v/o biases (Llama attention_bias) and untied F32 weights; Qwen2 q/k/v
 * biases, tied embeddings and BF16 weights; Mistral with head_dim != hidden/heads, a sliding window
 * of 5 and F16 weights; rope_theta read from transformers 5's rope_parameters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "model/llama.h"
#include "tests/testing.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = 0;
    fclose(f);
    return s;
}

/* Flattens a JSON array of numbers or of arrays of numbers into out (at most cap values). */
static int flatten(const cJSON *a, double *out, int cap) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (cJSON_IsArray(e)) n += flatten(e, out + n, cap - n);
        else if (n < cap) out[n++] = e->valuedouble;
    }
    return n;
}

static void check_fixture(const char *name, const char *arch) {
    char dir[512], path[600], err[512];
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/model/data/hf_%s", src ? src : ".", name);
    llama_model m;
    int rc = llama_load(&m, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: %s", name, err);
    if (rc) return;
    CHECK(strcmp(m.cfg.architecture, arch) == 0);
    snprintf(path, sizeof path, "%s/expected.json", dir);
    char *text = slurp(path);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text) { llama_free(&m); return; }
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL);

    enum { B = 2, T = 24, CAP = 64 };
    double tokd[CAP], lp_ref[CAP], ent_ref[CAP], prompt_d[CAP], greedy_d[CAP];
    CHECK_EQ_INT(flatten(cJSON_GetObjectItem(root, "tokens"), tokd, CAP), B * T);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItem(root, "logp"), lp_ref, CAP), B * T);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItem(root, "entropy"), ent_ref, CAP), B * T);
    int P = flatten(cJSON_GetObjectItem(root, "prompt"), prompt_d, CAP);
    int NG = flatten(cJSON_GetObjectItem(root, "greedy"), greedy_d, CAP);
    int tok[B * T], prompt[CAP];
    for (int i = 0; i < B * T; i++) tok[i] = (int)tokd[i];
    for (int i = 0; i < P; i++) prompt[i] = (int)prompt_d[i];

    float logp[B * T], ent[B * T];
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, ent) == 0);
    double worst_lp = 0.0, worst_ent = 0.0;
    for (int i = 0; i < B * T; i++) {
        worst_lp = fmax(worst_lp, fabs(logp[i] - lp_ref[i]));
        worst_ent = fmax(worst_ent, fabs(ent[i] - ent_ref[i]));
    }
    printf("%s: max |logp - transformers| %.2e, max |entropy - transformers| %.2e\n", name, worst_lp, worst_ent);
    CHECK_MSG(worst_lp < 2e-5, "%s: logp differs from transformers by %g", name, worst_lp);
    CHECK_MSG(worst_ent < 2e-5, "%s: entropy differs from transformers by %g", name, worst_ent);

    int out[CAP], len = 0;
    llama_sampling greedy = {0.0f, 0, 1.0f};
    CHECK(llama_generate(&m, prompt, P, 1, NG, &greedy, 0, out, &len, err, sizeof err) == 0);
    int same = len == NG;
    for (int i = 0; i < NG && i < len; i++) same &= out[i] == (int)greedy_d[i];
    CHECK_MSG(same, "%s: greedy generation differs from transformers' generate()", name);

    cJSON_Delete(root);
    free(text);
    llama_free(&m);
}

int main(void) {
    check_fixture("llama", "LlamaForCausalLM");
    check_fixture("qwen2", "Qwen2ForCausalLM");
    check_fixture("mistral", "MistralForCausalLM");
    return TEST_DONE();
}
