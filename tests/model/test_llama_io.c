/*
 * tests/model/test_llama_io.c: config.json and model.safetensors reading and writing.
 *
 *   - config round trip (Llama with biases, Qwen2 with an eos list and no bos, Mistral with a
 *     sliding window): every field survives to_json -> from_json;
 *   - config errors name the file and the field (missing, wrong type, unknown architecture,
 *     unsupported rope_scaling / hidden_act, heads that do not divide, invalid JSON, no file);
 *   - save/load: F32 bit-exact (and identical logp), BF16 within bf16 rounding (|x - y| <= 2^-8 |x|)
 *     and torch_dtype "bfloat16"; the directory is created; no temporary files are left behind; a
 *     tied lm_head is not written;
 *   - broken or mismatched files fail with the tensor named: shape mismatch with config.json, missing
 *     tensor, unexpected tensor, unsupported dtype, truncated data, corrupt header;
 *   - llama_forward_logprobs rejects bad B/T and out-of-range tokens with a message in m->err.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testing.h"
#include "tests/model/llama_test_util.h"

static char tmpdir[256];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    b[*n] = 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static int same_config(const llama_config *a, const llama_config *b) {
    int ok = strcmp(a->architecture, b->architecture) == 0 && a->vocab_size == b->vocab_size &&
             a->hidden_size == b->hidden_size && a->intermediate_size == b->intermediate_size &&
             a->num_hidden_layers == b->num_hidden_layers && a->num_attention_heads == b->num_attention_heads &&
             a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
             a->max_position_embeddings == b->max_position_embeddings && a->rms_norm_eps == b->rms_norm_eps &&
             a->rope_theta == b->rope_theta && a->tie_word_embeddings == b->tie_word_embeddings &&
             a->attention_bias == b->attention_bias && a->bos_token_id == b->bos_token_id &&
             a->num_eos == b->num_eos && a->sliding_window == b->sliding_window;
    for (int i = 0; ok && i < a->num_eos; i++) ok = a->eos_token_ids[i] == b->eos_token_ids[i];
    return ok;
}

static void check_config_roundtrip(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    llama_config cs[3];
    cs[0] = tiny_config("LlamaForCausalLM", 0, 1);
    cs[0].rms_norm_eps = 1e-5f;
    cs[0].rope_theta = 500000.0f;
    cs[1] = tiny_config("Qwen2ForCausalLM", 1, 1);
    cs[1].bos_token_id = -1;
    cs[1].eos_token_ids[1] = 3;
    cs[1].num_eos = 2;
    cs[1].head_dim = 6;
    cs[2] = tiny_config("MistralForCausalLM", 0, 0);
    cs[2].sliding_window = 32;
    cs[2].num_eos = 0;
    for (int i = 0; i < 3; i++) {
        llama_config back;
        CHECK(llama_config_to_json(&cs[i], path, err, sizeof err) == 0);
        int rc = llama_config_from_json(&back, path, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        CHECK_MSG(same_config(&cs[i], &back), "config %d (%s) did not round-trip", i, cs[i].architecture);
    }
    size_t n;
    char *text = read_all(path, &n);
    CHECK(strstr(text, "\"model_type\":\t\"mistral\"") != NULL);
    CHECK(strstr(text, "\"torch_dtype\":\t\"float32\"") != NULL);
    free(text);
    /* shortest float form */
    CHECK(llama_config_to_json(&cs[0], path, err, sizeof err) == 0);
    text = read_all(path, &n);
    CHECK(strstr(text, "\"rms_norm_eps\":\t1e-05") != NULL);
    CHECK(strstr(text, "\"rope_theta\":\t500000") != NULL);
    free(text);
}

/* Writes text as config.json, expects llama_config_from_json to fail naming the file and `needle`. */
static void expect_config_error(const char *text, const char *needle) {
    char path[512], err[512] = "";
    llama_config c;
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    write_text(path, text);
    int rc = llama_config_from_json(&c, path, err, sizeof err);
    CHECK_MSG(rc == -1, "accepted a config that should fail on %s", needle);
    CHECK_MSG(strstr(err, needle) != NULL && strstr(err, "bad.json") != NULL, "message '%s' lacks '%s'", err, needle);
}

#define BASE "\"vocab_size\": 11, \"intermediate_size\": 24, \"num_hidden_layers\": 2"

static void check_config_errors(void) {
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"num_attention_heads\": 4}",
                        "hidden_size");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": \"four\"}", "num_attention_heads");
    expect_config_error("{\"architectures\": [\"GPT2LMHeadModel\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4}", "architectures");
    expect_config_error("{\"model_type\": \"gpt2\", " BASE ", \"hidden_size\": 16, \"num_attention_heads\": 4}",
                        "model_type");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "num_key_value_heads");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}",
                        "rope_scaling");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}", "hidden_act");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"eos_token_id\": 99}", "eos_token_id");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"tie_word_embeddings\": \"yes\"}", "tie_word_embeddings");
    expect_config_error("{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"use_sliding_window\": true}", "use_sliding_window");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 15, "
                        "\"num_attention_heads\": 4}", "head_dim");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": -16, "
                        "\"num_attention_heads\": 4, \"head_dim\": 4}", "hidden_size");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE, "JSON");
    /* a missing file */
    char err[512];
    llama_config c;
    CHECK(llama_config_from_json(&c, "/nonexistent/config.json", err, sizeof err) == -1);
    CHECK(strstr(err, "/nonexistent/config.json") != NULL);
    /* defaults: eos list, null bos, head_dim from hidden/heads, Llama defaults */
    char path[512];
    snprintf(path, sizeof path, "%s/ok.json", tmpdir);
    write_text(path, "{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                     "\"num_attention_heads\": 4, \"eos_token_id\": [7, 8], \"bos_token_id\": null}");
    CHECK(llama_config_from_json(&c, path, err, sizeof err) == 0);
    CHECK_EQ_INT(c.num_eos, 2);
    CHECK_EQ_INT(c.eos_token_ids[1], 8);
    CHECK_EQ_INT(c.bos_token_id, -1);
    CHECK_EQ_INT(c.head_dim, 4);
    CHECK_EQ_INT(c.num_key_value_heads, 4);
    CHECK_EQ_INT(c.max_position_embeddings, 2048);
    CHECK(c.rope_theta == 10000.0f && c.rms_norm_eps == 1e-6f && !c.tie_word_embeddings && !c.attention_bias);
}

static void check_save_load(void) {
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/model_f32", tmpdir); /* does not exist yet */
    llama_config cfg = tiny_config("Qwen2ForCausalLM", 0, 1);
    llama_model m, back;
    CHECK(llama_init_random(&m, &cfg, 3, 0.02f) == 0);
    randomize_params(&m, 3, 0.4f);
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    CHECK_EQ_INT(count_files(dir), 2); /* config.json, model.safetensors: no temporaries left */
    int rc = llama_load(&back, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(same_config(&m.cfg, &back.cfg));
    CHECK_EQ_INT(back.num_params, m.num_params);
    CHECK(memcmp(m.params, back.params, m.num_params * sizeof(float)) == 0);
    int tok[14];
    float lp1[14], lp2[14];
    random_tokens(tok, 14, cfg.vocab_size, 9);
    CHECK(llama_forward_logprobs(&m, tok, 2, 7, lp1, NULL) == 0);
    CHECK(llama_forward_logprobs(&back, tok, 2, 7, lp2, NULL) == 0);
    CHECK(memcmp(lp1, lp2, sizeof lp1) == 0);
    llama_free(&back);

    /* BF16 */
    snprintf(dir, sizeof dir, "%s/model_bf16", tmpdir);
    CHECK(llama_save(&m, dir, 1, err, sizeof err) == 0);
    rc = llama_load(&back, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    double worst = 0.0;
    int exact = 0;
    for (size_t i = 0; i < m.num_params; i++) {
        double x = m.params[i], y = back.params[i];
        worst = fmax(worst, fabs(x - y) / fabs(x));
        exact += x == y;
    }
    printf("bf16 round trip: max relative error %.3g (bound 2^-8 = %.3g), %d of %zu exact\n", worst, 1.0 / 256,
           exact, m.num_params);
    CHECK(worst <= 1.0 / 256);
    CHECK(exact < (int)m.num_params); /* really rounded */
    char path[600];
    size_t n;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_all(path, &n);
    CHECK(text && strstr(text, "\"bfloat16\"") != NULL);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size < m.num_params * 2 + 4096);
    llama_free(&back);
    llama_free(&m);

    /* tied: lm_head is not written, and loads back */
    cfg = tiny_config("LlamaForCausalLM", 1, 0);
    CHECK(llama_init_random(&m, &cfg, 4, 0.1f) == 0);
    snprintf(dir, sizeof dir, "%s/model_tied", tmpdir);
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    text = read_all(path, &n);
    CHECK(text && memmem(text, n, "lm_head", 7) == NULL);
    free(text);
    CHECK(llama_load(&back, dir, err, sizeof err) == 0);
    CHECK(back.w.lm_head == back.w.wte);
    CHECK(memcmp(m.params, back.params, m.num_params * sizeof(float)) == 0);
    llama_free(&back);
    llama_free(&m);
}

/* Saves a model of config `saved`, then replaces config.json with `claimed` (when not NULL) and
 * applies `edit` to the safetensors bytes; llama_load must fail with `needle` in the message. */
static void expect_load_error(const char *label, llama_config saved, const llama_config *claimed,
                              void (*edit)(char *buf, size_t *n), const char *needle) {
    char dir[512], err[512] = "", path[600];
    snprintf(dir, sizeof dir, "%s/broken", tmpdir);
    rm_rf(dir);
    llama_model m;
    CHECK(llama_init_random(&m, &saved, 1, 0.1f) == 0);
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    llama_free(&m);
    if (claimed) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        CHECK(llama_config_to_json(claimed, path, err, sizeof err) == 0);
    }
    if (edit) {
        size_t n;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        char *b = read_all(path, &n);
        edit(b, &n);
        write_all(path, b, n);
        free(b);
    }
    llama_model back;
    int rc = llama_load(&back, dir, err, sizeof err);
    CHECK_MSG(rc == -1, "%s: load should fail", label);
    CHECK_MSG(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", label, err, needle);
    CHECK(back.params == NULL && back.tensors == NULL); /* zeroed on failure */
    printf("%s -> %s\n", label, err);
}

static void replace_in_header(char *b, const char *from, const char *to) {
    char *p = memmem(b + 8, 4000, from, strlen(from));
    CHECK(p != NULL && strlen(from) == strlen(to));
    if (p) memcpy(p, to, strlen(to));
}
static void edit_truncate(char *b, size_t *n) { (void)b; *n -= 100; }
static void edit_dtype(char *b, size_t *n) { (void)n; replace_in_header(b, "\"dtype\":\"F32\",\"shape\":[16]", "\"dtype\":\"I32\",\"shape\":[16]"); }
static void edit_header_json(char *b, size_t *n) { (void)n; b[8] = '['; }
static void edit_header_len(char *b, size_t *n) { (void)n; b[5] = 0x7f; }
static void edit_offsets(char *b, size_t *n) {
    (void)n;
    /* shift the end offset of the embedding (704 bytes) so it no longer matches its shape */
    replace_in_header(b, "\"data_offsets\":[0,704]", "\"data_offsets\":[0,708]");
}

static void check_broken_files(void) {
    llama_config base = tiny_config("LlamaForCausalLM", 0, 0);
    llama_config wider = base;
    wider.intermediate_size = 28;
    expect_load_error("shape mismatch", base, &wider, NULL, "model.layers.0.mlp.gate_proj.weight");
    llama_config tied = tiny_config("LlamaForCausalLM", 1, 0), untied = tied;
    untied.tie_word_embeddings = 0;
    expect_load_error("missing tensor", tied, &untied, NULL, "missing tensor 'lm_head.weight'");
    llama_config biased = tiny_config("LlamaForCausalLM", 0, 1);
    expect_load_error("unexpected tensor", biased, &base, NULL, "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'");
    expect_load_error("truncated", base, NULL, edit_truncate, "lm_head.weight");
    expect_load_error("bad dtype", base, NULL, edit_dtype, "model.layers.0.input_layernorm.weight");
    expect_load_error("bad offsets", base, NULL, edit_offsets, "model.embed_tokens.weight");
    expect_load_error("corrupt header", base, NULL, edit_header_json, "header");
    expect_load_error("header length", base, NULL, edit_header_len, "header length");
    char err[512];
    llama_model m;
    CHECK(llama_load(&m, "/nonexistent_dir", err, sizeof err) == -1);
    CHECK(strstr(err, "/nonexistent_dir/config.json") != NULL);
}

/* llama_forward_logprobs argument errors: -1 and a message in m->err. */
static void check_forward_errors(void) {
    llama_config cfg = tiny_config("LlamaForCausalLM", 0, 0);
    llama_model m;
    CHECK(llama_init_random(&m, &cfg, 1, 0.02f) == 0);
    int tok[65] = {0};
    float lp[65];
    CHECK(llama_forward_logprobs(&m, tok, 1, 65, lp, NULL) == -1);
    CHECK(strstr(m.err, "max_position_embeddings") != NULL);
    CHECK(llama_forward_logprobs(&m, tok, 0, 4, lp, NULL) == -1);
    tok[3] = 11;
    CHECK(llama_forward_logprobs(&m, tok, 1, 4, lp, NULL) == -1);
    CHECK(strstr(m.err, "token[0][3]=11") != NULL);
    tok[3] = 10;
    CHECK(llama_forward_logprobs(&m, tok, 1, 4, lp, NULL) == 0);
    CHECK(m.err[0] == 0);
    CHECK(llama_activation_bytes(&cfg, 200) > llama_activation_bytes(&cfg, 100));
    llama_free(&m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_llama_io_XXXXXX");
    if (!mkdtemp(tmpdir)) SKIP("cannot create a temporary directory");
    check_config_roundtrip();
    check_config_errors();
    check_save_load();
    check_broken_files();
    check_forward_errors();
    rm_rf(tmpdir);
    return TEST_DONE();
}
