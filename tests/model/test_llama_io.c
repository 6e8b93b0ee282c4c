/*
 * tests/model/test_llama_io.c: config.json, generation_config.json and model.safetensors (single
 * and sharded) reading and writing.
 *
 *   - config round trip (Llama with biases and llama3 rope scaling, Qwen2 with an eos list and no
 *     bos, Qwen3 with biases and head_dim != hidden/heads, Mistral with a sliding window): every
 *     field survives to_json -> from_json;
 *   - config errors name the file and the field (missing, wrong type, unknown architecture,
 *     unsupported rope_scaling type (named) or incomplete llama3 parameters, hidden_act, heads that
 *     do not divide, Qwen2/Qwen3 sliding windows, invalid JSON, no file); defaults (Qwen3 head_dim
 *     128); transformers 5's rope_parameters;
 *   - the two real config.json files of ../shared/fixtures/hf (Qwen2.5-7B-Instruct, Llama-3.2-3B-
 *     Instruct with an eos list and llama3 rope scaling) parse to the expected value of every field
 *     (parsed only: 7B/3B models are not allocated); skipped with a note when the folder is absent;
 *   - save/load: F32 bit-exact (and identical logp), BF16 within bf16 rounding (|x - y| <= 2^-8 |x|)
 *     and torch_dtype "bfloat16"; the directory is created; no temporary files are left behind; a
 *     tied lm_head is not written; generation_config.json carries bos/eos, and a loaded model's
 *     generation_config.json (sampling settings, its own eos list) is written back unchanged;
 *   - sharded save (llama_save_ex with a small max_shard_bytes): shard files, index (total_size,
 *     sorted weight_map), bit-exact load; switching layouts removes the other layout's files;
 *   - broken or mismatched files fail with the tensor named: shape mismatch with config.json, missing
 *     tensor, unexpected tensor, unsupported dtype, truncated data, corrupt header; sharded: a
 *     missing shard, a tensor in the wrong shard, an unsafe shard name, a bad index, a tensor in two
 *     shards; an invalid generation_config.json;
 *   - llama_forward_logprobs / llama_forward_logits reject bad B/T and out-of-range tokens with a
 *     message in m->err, and log_softmax of llama_forward_logits equals llama_forward_logprobs.
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
             a->pad_token_id == b->pad_token_id &&
             a->num_eos == b->num_eos && a->sliding_window == b->sliding_window && a->rope_type == b->rope_type &&
             a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
             a->rope_high_freq_factor == b->rope_high_freq_factor &&
             a->rope_original_max_position_embeddings == b->rope_original_max_position_embeddings;
    for (int i = 0; ok && i < a->num_eos; i++) ok = a->eos_token_ids[i] == b->eos_token_ids[i];
    return ok;
}

static void check_config_roundtrip(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    llama_config cs[5];
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
    cs[3] = tiny_config("Qwen3ForCausalLM", 1, 1);
    cs[3].head_dim = 6;
    cs[3].pad_token_id = 0;
    cs[4] = tiny_config("LlamaForCausalLM", 1, 0);
    cs[4].rope_type = LLAMA_ROPE_LLAMA3;
    cs[4].rope_factor = 32.0f;
    cs[4].rope_low_freq_factor = 1.0f;
    cs[4].rope_high_freq_factor = 4.0f;
    cs[4].rope_original_max_position_embeddings = 8192;
    for (int i = 0; i < 5; i++) {
        llama_config back;
        CHECK(llama_config_to_json(&cs[i], path, err, sizeof err) == 0);
        int rc = llama_config_from_json(&back, path, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        CHECK_MSG(same_config(&cs[i], &back), "config %d (%s) did not round-trip", i, cs[i].architecture);
    }
    size_t n;
    char *text = read_all(path, &n);
    CHECK(strstr(text, "\"rope_type\":\t\"llama3\"") != NULL && strstr(text, "\"factor\":\t32") != NULL);
    free(text);
    CHECK(llama_config_to_json(&cs[3], path, err, sizeof err) == 0);
    text = read_all(path, &n);
    CHECK(strstr(text, "\"model_type\":\t\"qwen3\"") != NULL && strstr(text, "\"attention_bias\":\ttrue") != NULL);
    free(text);
    CHECK(llama_config_to_json(&cs[2], path, err, sizeof err) == 0);
    text = read_all(path, &n);
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
                        "rope_scaling': rope_type \"llama3\" needs 'low_freq_factor'");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}}",
                        "rope_scaling': rope_type \"yarn\" is not supported");
    expect_config_error("{\"architectures\": [\"Qwen3ForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 2, "
                        "\"rope_theta\": 10000}}", "rope_parameters': rope_type \"dynamic\"");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
                        "\"low_freq_factor\": 4, \"high_freq_factor\": 1, \"original_max_position_embeddings\": 64}}",
                        "high_freq_factor");
    expect_config_error("{\"architectures\": [\"Qwen3ForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"use_sliding_window\": true}", "use_sliding_window");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"partial_rotary_factor\": 0.5}", "partial_rotary_factor': 0.5");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}", "hidden_act': \"gelu\"");
    expect_config_error("{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4, \"layer_types\": [\"full_attention\", \"sliding_attention\"]}",
                        "layer_types': \"sliding_attention\"");
    expect_config_error("{\"architectures\": [\"Qwen2MoeForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                        "\"num_attention_heads\": 4}", "'Qwen2MoeForCausalLM' is not supported");
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
    CHECK_EQ_INT(c.rope_type, LLAMA_ROPE_DEFAULT);
    /* Qwen3: head_dim defaults to 128, not hidden/heads; model_type alone names the architecture */
    write_text(path, "{\"model_type\": \"qwen3\", " BASE ", \"hidden_size\": 16, \"num_attention_heads\": 4}");
    CHECK_MSG(llama_config_from_json(&c, path, err, sizeof err) == 0, "%s", err);
    CHECK(strcmp(c.architecture, "Qwen3ForCausalLM") == 0);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.max_position_embeddings, 32768);
    CHECK_EQ_INT(c.attention_bias, 0);
    /* transformers 5 layout: rope_theta and the llama3 scaling inside rope_parameters */
    write_text(path, "{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": 16, "
                     "\"num_attention_heads\": 4, \"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, "
                     "\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                     "\"original_max_position_embeddings\": 8192}}");
    CHECK_MSG(llama_config_from_json(&c, path, err, sizeof err) == 0, "%s", err);
    CHECK(c.rope_theta == 500000.0f && c.rope_type == LLAMA_ROPE_LLAMA3 && c.rope_factor == 8.0f &&
          c.rope_low_freq_factor == 1.0f && c.rope_high_freq_factor == 4.0f &&
          c.rope_original_max_position_embeddings == 8192);
}

/* The real config.json files of released models (parsed, never allocated: 7B and 3B). */
static void check_real_configs(void) {
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    char path[1024], err[512];
    llama_config c;
    snprintf(path, sizeof path, "%s/../shared/fixtures/hf/qwen2.5/config.json", src && *src ? src : ".");
    if (access(path, R_OK) != 0) {
        printf("note: %s absent, real config.json checks skipped\n", path);
        return;
    }
    int rc = llama_config_from_json(&c, path, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* Qwen2.5-7B-Instruct: no head_dim (3584 / 28 = 128), untied, q/k/v biases, sliding_window present
     * but use_sliding_window false (ignored), one eos id */
    CHECK(strcmp(c.architecture, "Qwen2ForCausalLM") == 0);
    CHECK_EQ_INT(c.vocab_size, 152064);
    CHECK_EQ_INT(c.hidden_size, 3584);
    CHECK_EQ_INT(c.intermediate_size, 18944);
    CHECK_EQ_INT(c.num_hidden_layers, 28);
    CHECK_EQ_INT(c.num_attention_heads, 28);
    CHECK_EQ_INT(c.num_key_value_heads, 4);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.max_position_embeddings, 32768);
    CHECK(c.rms_norm_eps == 1e-6f && c.rope_theta == 1000000.0f && c.rope_type == LLAMA_ROPE_DEFAULT);
    CHECK_EQ_INT(c.tie_word_embeddings, 0);
    CHECK_EQ_INT(c.attention_bias, 1);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_EQ_INT(c.bos_token_id, 151643);
    CHECK_EQ_INT(c.num_eos, 1);
    CHECK_EQ_INT(c.eos_token_ids[0], 151645);

    snprintf(path, sizeof path, "%s/../shared/fixtures/hf/llama3/config.json", src && *src ? src : ".");
    rc = llama_config_from_json(&c, path, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* Llama-3.2-3B-Instruct: head_dim 128 given, tied, eos list, llama3 rope scaling */
    CHECK(strcmp(c.architecture, "LlamaForCausalLM") == 0);
    CHECK_EQ_INT(c.vocab_size, 128256);
    CHECK_EQ_INT(c.hidden_size, 3072);
    CHECK_EQ_INT(c.intermediate_size, 8192);
    CHECK_EQ_INT(c.num_hidden_layers, 28);
    CHECK_EQ_INT(c.num_attention_heads, 24);
    CHECK_EQ_INT(c.num_key_value_heads, 8);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.max_position_embeddings, 131072);
    CHECK(c.rms_norm_eps == 1e-5f && c.rope_theta == 500000.0f);
    CHECK_EQ_INT(c.rope_type, LLAMA_ROPE_LLAMA3);
    CHECK(c.rope_factor == 32.0f && c.rope_low_freq_factor == 1.0f && c.rope_high_freq_factor == 4.0f);
    CHECK_EQ_INT(c.rope_original_max_position_embeddings, 8192);
    CHECK_EQ_INT(c.tie_word_embeddings, 1);
    CHECK_EQ_INT(c.attention_bias, 0);
    CHECK_EQ_INT(c.bos_token_id, 128000);
    CHECK_EQ_INT(c.num_eos, 3);
    CHECK(c.eos_token_ids[0] == 128001 && c.eos_token_ids[1] == 128008 && c.eos_token_ids[2] == 128009);
}

static void check_save_load(void) {
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/model_f32", tmpdir); /* does not exist yet */
    llama_config cfg = tiny_config("Qwen2ForCausalLM", 0, 1);
    llama_model m, back;
    CHECK(llama_init_random(&m, &cfg, 3, 0.02f) == 0);
    randomize_params(&m, 3, 0.4f);
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    /* config.json, generation_config.json, model.safetensors: no temporaries left */
    CHECK_EQ_INT(count_files(dir), 3);
    char gpath[600];
    size_t gn;
    snprintf(gpath, sizeof gpath, "%s/generation_config.json", dir);
    char *gtext = read_all(gpath, &gn);
    CHECK(gtext && strstr(gtext, "\"bos_token_id\":\t1") && strstr(gtext, "\"eos_token_id\":\t10"));
    free(gtext);
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

/* generation_config.json of a loaded model is written back (sampling settings and its own eos list
 * kept, bos added from config.json); an invalid one fails the load naming the file. */
static void check_generation_config(void) {
    char dir[512], dir2[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/gen_a", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/gen_b", tmpdir);
    llama_config cfg = tiny_config("Qwen3ForCausalLM", 1, 0);
    llama_model m, back;
    CHECK(llama_init_random(&m, &cfg, 5, 0.1f) == 0);
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    llama_free(&m);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    write_text(path, "{\"do_sample\": true, \"temperature\": 0.7, \"top_p\": 0.8, \"eos_token_id\": [10, 3]}");
    int rc = llama_load(&m, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(m.generation_config != NULL && strstr(m.generation_config, "0.7") != NULL);
    CHECK(llama_save(&m, dir2, 0, err, sizeof err) == 0);
    snprintf(path, sizeof path, "%s/generation_config.json", dir2);
    size_t n;
    char *text = read_all(path, &n);
    CHECK(text && strstr(text, "\"temperature\":\t0.7") && strstr(text, "\"do_sample\":\ttrue") &&
          strstr(text, "\"bos_token_id\":\t1") && strstr(text, "[10, 3]"));
    free(text);
    llama_free(&m);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    write_text(path, "[1, 2]");
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "generation_config.json") != NULL, "message '%s'", err);
    CHECK(back.params == NULL);
    rm_rf(dir);
    rm_rf(dir2);
}

/* Sharded save and load; switching between one file and shards in the same folder. */
static void check_sharded(void) {
    char dir[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    llama_config cfg = tiny_config("Qwen3ForCausalLM", 0, 1);
    cfg.head_dim = 6;
    llama_model m, back;
    CHECK(llama_init_random(&m, &cfg, 7, 0.02f) == 0);
    randomize_params(&m, 7, 0.4f);
    /* largest tensors: embed / lm_head (11 x 16) and mlp (24 x 16): 1536 bytes in F32 */
    size_t max_shard = 4096;
    CHECK(llama_save_ex(&m, dir, 0, max_shard, err, sizeof err) == 0);
    int nfiles = count_files(dir);
    int nshards = nfiles - 3; /* config, generation_config, index */
    printf("sharded save: %d shards of <= %zu bytes for %zu parameters\n", nshards, max_shard, m.num_params);
    CHECK(nshards >= 4);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/model-00001-of-%05d.safetensors", dir, nshards);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size <= max_shard + 2048);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    size_t n;
    char *text = read_all(path, &n);
    char want[128];
    snprintf(want, sizeof want, "\"total_size\":\t%zu", m.num_params * 4);
    CHECK_MSG(text && strstr(text, want), "index lacks %s", want);
    /* sorted weight_map: lm_head first, model.norm last */
    char *lm = text ? strstr(text, "\"lm_head.weight\"") : NULL, *emb = text ? strstr(text, "\"model.embed_tokens") : NULL;
    char *nrm = text ? strstr(text, "\"model.norm.weight\"") : NULL, *l1 = text ? strstr(text, "\"model.layers.1.") : NULL;
    CHECK(lm && emb && nrm && l1 && lm < emb && emb < l1 && l1 < nrm);
    free(text);
    int rc = llama_load(&back, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(same_config(&m.cfg, &back.cfg));
    CHECK(back.num_params == m.num_params && memcmp(m.params, back.params, m.num_params * sizeof(float)) == 0);
    llama_free(&back);
    /* BF16 shards load too */
    CHECK(llama_save_ex(&m, dir, 1, max_shard, err, sizeof err) == 0);
    rc = llama_load(&back, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    double worst = 0.0;
    for (size_t i = 0; i < m.num_params; i++) worst = fmax(worst, fabs(m.params[i] - back.params[i]) / fabs(m.params[i]));
    CHECK(worst <= 1.0 / 256);
    llama_free(&back);
    /* one file into the same folder: the index and shards go */
    CHECK(llama_save(&m, dir, 0, err, sizeof err) == 0);
    CHECK_EQ_INT(count_files(dir), 3);
    /* shards again: model.safetensors goes */
    CHECK(llama_save_ex(&m, dir, 0, max_shard, err, sizeof err) == 0);
    CHECK_EQ_INT(count_files(dir), nfiles);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(access(path, F_OK) != 0);

    /* broken sharded checkpoints */
    char shard1[64], shard2[64], idx[600], *orig;
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    snprintf(shard1, sizeof shard1, "model-00001-of-%05d.safetensors", nshards);
    snprintf(shard2, sizeof shard2, "model-00002-of-%05d.safetensors", nshards);
    orig = read_all(idx, &n);
    /* a tensor mapped to another shard than the one it is in */
    char *edited = strdup(orig), *at = strstr(edited, "\"model.norm.weight\":\t\"model-");
    CHECK(at != NULL);
    if (at) {
        at = strstr(at, "-of-") - 5;
        memcpy(at, at[4] == '1' ? "00002" : "00001", 5);
    }
    write_text(idx, edited);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "model.norm.weight") && strstr(err, "maps it to"), "message '%s'", err);
    printf("wrong shard -> %s\n", err);
    free(edited);
    /* an unsafe file name */
    edited = strdup(orig);
    at = strstr(edited, shard1);
    CHECK(at != NULL);
    if (at) memcpy(at, "../", 3);
    write_text(idx, edited);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "same folder") && strstr(err, "index.json"), "message '%s'", err);
    free(edited);
    /* not an index */
    write_text(idx, "{\"metadata\": {}}");
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "weight_map"), "message '%s'", err);
    /* a tensor listed in the index whose shard lacks it: the index names shard 1 for everything */
    edited = strdup(orig);
    for (char *q = strstr(edited, "-of-"); q; q = strstr(q + 4, "-of-")) memcpy(q - 5, "00001", 5);
    write_text(idx, edited);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "missing tensor") && strstr(err, "index.json"), "message '%s'", err);
    printf("all mapped to shard 1 -> %s\n", err);
    free(edited);
    /* a tensor in two shards: shard 2 replaced by a copy of shard 1, the index mapping both */
    write_text(idx, orig);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/%s", dir, shard1);
    snprintf(p2, sizeof p2, "%s/%s", dir, shard2);
    size_t n1;
    char *b1 = read_all(p1, &n1);
    char *save2 = read_all(p2, &n);
    size_t n2 = n;
    write_all(p2, b1, n1);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, shard2) != NULL, "message '%s'", err);
    printf("duplicate shard -> %s\n", err);
    write_all(p2, save2, n2);
    free(b1);
    free(save2);
    /* a missing shard */
    unlink(p2);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, shard2) && strstr(err, "cannot open"), "message '%s'", err);
    CHECK(back.params == NULL);
    /* neither layout */
    unlink(idx);
    CHECK(llama_load(&back, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "no model.safetensors"), "message '%s'", err);
    free(orig);
    llama_free(&m);
    rm_rf(dir);
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
    float logits[65 * 11];
    tok[3] = 11;
    CHECK(llama_forward_logits(&m, tok, 1, 4, logits) == -1);
    CHECK(strstr(m.err, "llama_forward_logits: token[0][3]=11") != NULL);
    CHECK(llama_forward_logits(&m, tok, 1, 65, logits) == -1);
    CHECK(strstr(m.err, "max_position_embeddings") != NULL);
    llama_free(&m);

    /* log_softmax(logits) gathered at the next tokens == logp, for every architecture */
    const char *archs[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"};
    for (int a = 0; a < 4; a++) {
        cfg = tiny_config(archs[a], a == 1, a == 1);
        CHECK(llama_init_random(&m, &cfg, 11 + a, 0.02f) == 0);
        randomize_params(&m, 11 + a, 0.4f);
        enum { B = 3, T = 9 };
        int tk[B * T];
        float lp[B * T], lg[B * T * 11];
        random_tokens(tk, B * T, cfg.vocab_size, 21 + a);
        CHECK(llama_forward_logprobs(&m, tk, B, T, lp, NULL) == 0);
        CHECK(llama_forward_logits(&m, tk, B, T, lg) == 0);
        double worst = 0.0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t + 1 < T; t++) {
                const float *z = lg + ((size_t)b * T + t) * 11;
                double mx = z[0], sum = 0.0;
                for (int v = 1; v < 11; v++) mx = fmax(mx, z[v]);
                for (int v = 0; v < 11; v++) sum += exp(z[v] - mx);
                double ref = z[tk[b * T + t + 1]] - mx - log(sum);
                worst = fmax(worst, fabs(ref - lp[b * T + t + 1]));
            }
        CHECK_MSG(worst < 1e-5, "%s: logits and logp disagree by %g", archs[a], worst);
        llama_free(&m);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_llama_io_XXXXXX");
    if (!mkdtemp(tmpdir)) SKIP("cannot create a temporary directory");
    check_config_roundtrip();
    check_config_errors();
    check_real_configs();
    check_save_load();
    check_generation_config();
    check_sharded();
    check_broken_files();
    check_forward_errors();
    rm_rf(tmpdir);
    return TEST_DONE();
}
