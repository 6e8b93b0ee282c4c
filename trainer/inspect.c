/*
 * trainer/inspect.c: `grpo2048 tokenize` and `grpo2048 generate` — look at what a model folder does,
 * with JSON on stdout, for users and for tests (the same code paths the trainer uses: generation and
 * log-probabilities go through the backend --device picks, trainer/backend.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "trainer/backend.h"
#include "trainer/policy.h"

static int print_json(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--") && i + 1 < argc && !text) { text = argv[++i]; continue; } /* text may start with -- */
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--help")) { printf("usage: grpo2048 tokenize --model DIR [--] TEXT\n"); return 0; }
        else if (!text) text = argv[i];
        else { fprintf(stderr, "grpo2048 tokenize: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!model || !text) { fprintf(stderr, "usage: grpo2048 tokenize --model DIR [--] TEXT\n"); return 2; }
    char err[1024];
    tokenizer *t = tokenizer_load(model, err, sizeof err);
    if (!t) { fprintf(stderr, "grpo2048 tokenize: %s\n", err); return 1; }
    size_t len = strlen(text);
    int cap = (int)len + 16;
    int *ids = malloc(sizeof(int) * cap);
    int n = tokenizer_encode(t, text, len, ids, cap);
    if (n > cap) { ids = realloc(ids, sizeof(int) * n); n = tokenizer_encode(t, text, len, ids, n); }
    if (n < 0) { fprintf(stderr, "grpo2048 tokenize: cannot encode the text\n"); return 1; }
    cJSON *o = cJSON_CreateObject();
    cJSON *jids = cJSON_AddArrayToObject(o, "ids");
    cJSON *jp = cJSON_AddArrayToObject(o, "pieces");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(jids, cJSON_CreateNumber(ids[i]));
        const char *piece = tokenizer_id_to_token(t, ids[i]);
        cJSON_AddItemToArray(jp, cJSON_CreateString(piece ? piece : ""));
    }
    free(ids);
    tokenizer_free(t);
    return print_json(o);
}

int cmd_generate(int argc, char **argv) {
    const char *usage = "usage: grpo2048 generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] "
                        "[--top-k K] [--top-p P] [--seed S] [--chat-template auto|chatml|llama3|plain] [--logprobs]\n"
                        "                         [--device auto|cpu|cuda] [--tf32] [--bf16]\n";
    grpo_config c;
    config_defaults(&c);
    const char *prompt_text = NULL, *model = NULL, *chat = "auto";
    const char *device = "auto";
    int max_new = 256, top_k = 0, want_logprobs = 0, tf32 = 0, bf16 = 0;
    double temperature = 1.0, top_p = 1.0;
    unsigned long long seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        else if (!strcmp(a, "--logprobs")) want_logprobs = 1;
        else if (!strcmp(a, "--tf32")) tf32 = 1;
        else if (!strcmp(a, "--bf16")) bf16 = 1;
        else if (!v) { fprintf(stderr, "grpo2048 generate: %s needs a value\n%s", a, usage); return 2; }
        else if (!strcmp(a, "--model")) { model = v; i++; }
        else if (!strcmp(a, "--prompt")) { prompt_text = v; i++; }
        else if (!strcmp(a, "--max-new-tokens")) { max_new = atoi(v); i++; }
        else if (!strcmp(a, "--temperature")) { temperature = atof(v); i++; }
        else if (!strcmp(a, "--top-k")) { top_k = atoi(v); i++; }
        else if (!strcmp(a, "--top-p")) { top_p = atof(v); i++; }
        else if (!strcmp(a, "--seed")) { seed = strtoull(v, NULL, 10); i++; }
        else if (!strcmp(a, "--chat-template")) { chat = v; i++; }
        else if (!strcmp(a, "--device")) { device = v; i++; }
        else { fprintf(stderr, "grpo2048 generate: unknown option '%s'\n%s", a, usage); return 2; }
    }
    if (!model || !prompt_text) { fputs(usage, stderr); return 2; }
    if (strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "grpo2048 generate: --device: expected auto, cpu or cuda, got '%s'\n", device);
        return 2;
    }
    if (max_new < 1 || temperature < 0 || top_p <= 0 || top_p > 1 || top_k < 0) {
        fprintf(stderr, "grpo2048 generate: expected --max-new-tokens >= 1, --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0\n");
        return 2;
    }
    char err[1024];
    free(c.model_name_or_path);
    c.model_name_or_path = strdup(model);
    c.chat_template = chat;   /* an enum field: static names, never freed; checked by policy_load */
    /* Everything below is released at fail: on every error path. */
    int rc = 1, loaded = 0, have_backend = 0;
    int *prompt = NULL, *out = NULL, len = 0;
    policy p;
    backend be;
    memset(&p, 0, sizeof p);
    memset(&be, 0, sizeof be);
    if (policy_load(&p, &c, 0, err, sizeof err) != 0) { fprintf(stderr, "grpo2048 generate: %s\n", err); goto fail; }
    loaded = 1;
    int P = 0;
    prompt = policy_encode_prompt(&p, NULL, prompt_text, &P, err, sizeof err);
    if (!prompt) { fprintf(stderr, "grpo2048 generate: %s\n", err); goto fail; }
    const int ctx = p.model.cfg.max_position_embeddings;
    if (P >= ctx) {
        fprintf(stderr, "grpo2048 generate: the prompt (%d tokens) fills the model's context (%d tokens)\n", P, ctx);
        goto fail;
    }
    if (P + max_new > ctx) {
        fprintf(stderr, "grpo2048 generate: --max-new-tokens %d does not fit the model's context (%d tokens, %d of them "
                "the prompt's); generating at most %d tokens\n", max_new, ctx, P, ctx - P);
        max_new = ctx - P;
    }
    if (backend_create(&be, device, backend_precision(tf32, bf16), &p.model, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 generate: %s\n", err);
        rc = 2;
        goto fail;
    }
    have_backend = 1;
    out = malloc(sizeof(int) * max_new);
    if (!out) { fprintf(stderr, "grpo2048 generate: out of memory\n"); goto fail; }
    llama_sampling s = {.temperature = (float)temperature, .top_k = top_k, .top_p = (float)top_p,
                        .stop_ids = p.stop_ids, .num_stop = p.num_stop};
    if (backend_generate(&be, prompt, P, 1, max_new, &s, seed, out, &len, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048 generate: %s\n", err);
        goto fail;
    }
    char *text = policy_decode(&p, out, len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", P);
    char *valid = policy_utf8_valid_copy(text ? text : "");
    cJSON_AddStringToObject(o, "completion", valid ? valid : "");
    free(valid);
    cJSON *jids = cJSON_AddArrayToObject(o, "ids");
    for (int i = 0; i < len; i++) cJSON_AddItemToArray(jids, cJSON_CreateNumber(out[i]));
    cJSON_AddBoolToObject(o, "finished", len > 0 && policy_is_stop(&p, out[len - 1]));
    cJSON_AddStringToObject(o, "device", be.ops->name);
    if (want_logprobs) {
        /* log p of each generated token under the model, from a full forward pass over prompt + completion */
        int T = P + len;
        int *tok = malloc(sizeof(int) * T);
        float *lp = malloc(sizeof(float) * T);
        memcpy(tok, prompt, sizeof(int) * P);
        memcpy(tok + P, out, sizeof(int) * len);
        backend_forward_logprobs(&be, tok, 1, T, 1.0f, lp, NULL);
        cJSON *jl = cJSON_AddArrayToObject(o, "logprobs");
        for (int i = 0; i < len; i++) cJSON_AddItemToArray(jl, cJSON_CreateNumber(lp[P + i]));
        free(tok); free(lp);
    }
    free(text); free(out); free(prompt);
    backend_free(&be);
    policy_free(&p);
    config_free(&c);
    return print_json(o);
fail:
    free(out);
    free(prompt);
    if (have_backend) backend_free(&be);
    if (loaded) policy_free(&p);
    config_free(&c);
    return rc;
}
