/*
 * tests/model/test_llama_hf.c: the model against Hugging Face transformers itself.
 *
 * The fixtures in tests/model/data/hf_{llama,qwen2,qwen3,mistral}/ were written by
 * tools/make_hf_fixtures.py (which says how to regenerate them) with transformers' save_pretrained:
 * tiny random models (2 layers, hidden 64, 4 query / 2 key-value heads, head_dim 6) covering
 *   llama    q/k/v/o biases, untied, llama3 rope scaling (high/medium/low bands), BF16 weights;
 *   qwen2    q/k/v biases, tied embeddings, F16 weights;
 *   qwen3    q_norm/k_norm, untied, F32 weights in 4 shards with model.safetensors.index.json;
 *   mistral  sliding window 5 (< T = 16), tied, BF16 weights; all with transformers 5's rope_parameters.
 * reference.safetensors holds transformers' float32 eager-attention results on the saved weights:
 * the (2, 16) token batch, the logits, the mean next-token loss and the gradient of that loss for
 * every parameter; expected.json holds greedy generate() output. Checked here:
 *   - logits, and every parameter's gradient, within relative error 1e-4, measured per tensor as
 *     max |ours - transformers| / max |transformers|; the loss within 1e-5 relative;
 *   - greedy generation reproduces model.generate(do_sample=False);
 *   - llama_rope_inv_freq equals transformers' llama3 inv_freq for the rope parameters of
 *     Llama-3.2-3B-Instruct (tests/model/data/rope_llama3.json) within 1 float32 ulp.
 *
 * `test_llama_hf --roundtrip OUT` (used by tools/make_hf_fixtures.py, not by ctest) instead saves
 * each fixture model with llama_save / llama_save_ex as OUT/<name>_f32, OUT/<name>_bf16 and
 * OUT/<name>_sharded (16 KB shards), loads each back and writes its logits on the fixture's tokens
 * to grpo2048_logits.json in that folder, for the script to compare with transformers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "model/llama.h"
#include "model/llama_internal.h"
#include "tests/testing.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
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

/* ------------------------------------------------------------------------------------------------
 * A minimal safetensors reader for reference.safetensors (F32 and I32 tensors).
 */

typedef struct {
    char *buf;
    size_t size;
    cJSON *hdr;
    const unsigned char *data;
} st_file;

static int st_open(st_file *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->buf = slurp(path, &s->size);
    if (!s->buf || s->size < 8) return -1;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (unsigned char)s->buf[i];
    if (h > s->size - 8) return -1;
    char save = s->buf[8 + h];
    s->buf[8 + h] = 0;
    s->hdr = cJSON_Parse(s->buf + 8);
    s->buf[8 + h] = save;
    s->data = (const unsigned char *)s->buf + 8 + h;
    return s->hdr ? 0 : -1;
}

static void st_close(st_file *s) {
    cJSON_Delete(s->hdr);
    free(s->buf);
}

/* Copies tensor `name` (dtype F32 or I32, as `dtype`) into a malloc'ed array; *numel gets its size.
 * NULL when absent or of another dtype. */
static void *st_get(const st_file *s, const char *name, const char *dtype, size_t *numel) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s->hdr, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, dtype) != 0 || cJSON_GetArraySize(off) != 2) return NULL;
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    void *out = malloc(e - b + 4);
    memcpy(out, s->data + b, e - b);
    *numel = (e - b) / 4;
    return out;
}

/* max |a - b| / max |b| over n values. */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0.0 ? d / m : d;
}

static const char *fixture_dir(char *buf, size_t n, const char *name) {
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    snprintf(buf, n, "%s/tests/model/data/hf_%s", src && *src ? src : ".", name);
    return buf;
}

/* ------------------------------------------------------------------------------------------------
 * Fixture checks
 */

static void check_fixture(const char *name, const char *arch) {
    char dir[512], path[600], err[512];
    fixture_dir(dir, sizeof dir, name);
    llama_model m;
    int rc = llama_load(&m, dir, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: %s", name, err);
    if (rc) return;
    CHECK(strcmp(m.cfg.architecture, arch) == 0);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    st_file ref;
    rc = st_open(&ref, path);
    CHECK_MSG(rc == 0, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/expected.json", dir);
    char *text = slurp(path, NULL);
    cJSON *exp = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(exp != NULL, "cannot read %s", path);
    if (rc || !exp) { llama_free(&m); st_close(&ref); cJSON_Delete(exp); free(text); return; }

    size_t ntok = 0, nlog = 0, nloss = 0;
    int *tok = st_get(&ref, "tokens", "I32", &ntok);
    float *ref_logits = st_get(&ref, "logits", "F32", &nlog);
    float *ref_loss = st_get(&ref, "loss", "F32", &nloss);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ref.hdr, "tokens"), "shape");
    int B = cJSON_GetArrayItem(shape, 0) ? cJSON_GetArrayItem(shape, 0)->valueint : 0;
    int T = cJSON_GetArrayItem(shape, 1) ? cJSON_GetArrayItem(shape, 1)->valueint : 0;
    int V = m.cfg.vocab_size;
    CHECK(tok && ref_logits && ref_loss && nloss == 1 && B > 0 && T > 1);
    CHECK(ntok == (size_t)B * T && nlog == (size_t)B * T * V);
    if (!tok || !ref_logits || !ref_loss || ntok != (size_t)B * T || nlog != ntok * V) goto done;

    /* logits */
    float *logits = malloc(nlog * sizeof(float));
    CHECK(llama_forward_logits(&m, tok, B, T, logits) == 0);
    double e_logits = rel_err(logits, ref_logits, nlog);
    CHECK_MSG(e_logits < 1e-4, "%s: logits differ from transformers: relative error %g", name, e_logits);
    free(logits);

    /* loss = mean over b, t >= 1 of -logp, and its gradient */
    float *logp = malloc(ntok * sizeof(float)), *dlogp = malloc(ntok * sizeof(float));
    CHECK(llama_forward_logprobs(&m, tok, B, T, logp, NULL) == 0);
    double loss = 0.0;
    for (size_t i = 0; i < ntok; i++) {
        int t = (int)(i % T);
        if (t > 0) loss -= logp[i];
        dlogp[i] = t > 0 ? -1.0f / (float)(B * (T - 1)) : 0.0f;
    }
    loss /= (double)B * (T - 1);
    double e_loss = fabs(loss - ref_loss[0]) / fabs(ref_loss[0]);
    CHECK_MSG(e_loss < 1e-5, "%s: loss %.8g, transformers %.8g", name, loss, ref_loss[0]);
    llama_zero_grad(&m);
    llama_backward_logprobs(&m, dlogp);
    double e_grad = 0.0;
    const char *worst_name = "";
    int ngrad = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, ref.hdr) ngrad += strncmp(item->string, "grad.", 5) == 0;
    CHECK_MSG(ngrad == m.num_tensors, "%s: %d reference gradients for %d tensors", name, ngrad, m.num_tensors);
    for (int i = 0; i < m.num_tensors; i++) {
        llama_tensor *t = &m.tensors[i];
        char gname[128];
        snprintf(gname, sizeof gname, "grad.%s", t->name);
        size_t n = 0;
        float *g = st_get(&ref, gname, "F32", &n);
        CHECK_MSG(g != NULL && n == t->numel, "%s: reference lacks %s", name, gname);
        if (!g || n != t->numel) { free(g); continue; }
        double e = rel_err(t->grad, g, n);
        CHECK_MSG(e < 1e-4, "%s: gradient of %s differs from transformers: relative error %g", name, t->name, e);
        if (e > e_grad) { e_grad = e; worst_name = t->name; }
        free(g);
    }
    printf("%-8s %-18s logits rel err %.2e | loss %.7f rel err %.1e | %d gradients, worst rel err %.2e (%s)\n", name,
           arch, e_logits, loss, e_loss, m.num_tensors, e_grad, worst_name);
    free(logp);
    free(dlogp);

    /* greedy generation */
    {
        enum { CAP = 64 };
        double prompt_d[CAP], greedy_d[CAP];
        int P = flatten(cJSON_GetObjectItem(exp, "prompt"), prompt_d, CAP);
        int NG = flatten(cJSON_GetObjectItem(exp, "greedy"), greedy_d, CAP);
        int prompt[CAP], out[CAP], len = 0;
        for (int i = 0; i < P; i++) prompt[i] = (int)prompt_d[i];
        llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
        CHECK(P > 0 && NG > 0);
        CHECK(llama_generate(&m, prompt, P, 1, NG, &greedy, 0, out, &len, err, sizeof err) == 0);
        int same = len == NG;
        for (int i = 0; i < NG && i < len; i++) same &= out[i] == (int)greedy_d[i];
        CHECK_MSG(same, "%s: greedy generation differs from transformers' generate()", name);
    }
done:
    free(tok);
    free(ref_logits);
    free(ref_loss);
    cJSON_Delete(exp);
    free(text);
    st_close(&ref);
    llama_free(&m);
}

/* llama3 rope scaling: inv_freq against transformers' for Llama 3.2's parameters. */
static void check_rope_llama3(void) {
    char path[600];
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/model/data/rope_llama3.json", src && *src ? src : ".");
    char *text = slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "cannot read %s", path);
    if (!root) { free(text); return; }
    const cJSON *cfg = cJSON_GetObjectItem(root, "config");
    llama_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = cJSON_GetObjectItem(cfg, "head_dim")->valueint;
    c.rope_theta = (float)cJSON_GetObjectItem(cfg, "rope_theta")->valuedouble;
    c.rope_type = LLAMA_ROPE_LLAMA3;
    c.rope_factor = (float)cJSON_GetObjectItem(cfg, "factor")->valuedouble;
    c.rope_low_freq_factor = (float)cJSON_GetObjectItem(cfg, "low_freq_factor")->valuedouble;
    c.rope_high_freq_factor = (float)cJSON_GetObjectItem(cfg, "high_freq_factor")->valuedouble;
    c.rope_original_max_position_embeddings = cJSON_GetObjectItem(cfg, "original_max_position_embeddings")->valueint;
    double ref[256];
    int n = flatten(cJSON_GetObjectItem(root, "inv_freq"), ref, 256);
    CHECK_EQ_INT(n, c.head_dim / 2);
    float inv[256];
    llama_rope_inv_freq(&c, inv);
    int exact = 0, scaled = 0;
    double worst = 0.0;
    llama_config d = c;
    d.rope_type = LLAMA_ROPE_DEFAULT;
    float plain[256];
    llama_rope_inv_freq(&d, plain);
    for (int i = 0; i < n; i++) {
        exact += inv[i] == (float)ref[i];
        scaled += inv[i] != plain[i];
        worst = fmax(worst, fabs(inv[i] - ref[i]) / ref[i]);
    }
    printf("llama3 rope (Llama 3.2 parameters): %d inv_freq, %d rescaled, %d bit-identical to transformers, "
           "max rel err %.2e\n", n, scaled, exact, worst);
    CHECK(scaled > 0 && scaled < n);
    CHECK_MSG(worst <= 1.2e-7, "llama3 inv_freq differs from transformers by %g relative", worst);
    cJSON_Delete(root);
    free(text);
}

/* ------------------------------------------------------------------------------------------------
 * --roundtrip OUT
 */

static int save_and_dump(const llama_model *m, const char *dir, int bf16, size_t shard, const int *tok, int B, int T) {
    char err[512], path[700];
    if (llama_save_ex(m, dir, bf16, shard, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    llama_model back;
    if (llama_load(&back, dir, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int V = back.cfg.vocab_size;
    float *logits = malloc(sizeof(float) * B * T * V);
    if (llama_forward_logits(&back, tok, B, T, logits)) {
        fprintf(stderr, "%s\n", back.err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/grpo2048_logits.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"tokens\": [");
    for (int b = 0; b < B; b++) {
        fprintf(f, "%s[", b ? ", " : "");
        for (int t = 0; t < T; t++) fprintf(f, "%s%d", t ? ", " : "", tok[b * T + t]);
        fprintf(f, "]");
    }
    fprintf(f, "], \"logits\": [");
    for (int b = 0; b < B; b++) {
        fprintf(f, "%s[", b ? ", " : "");
        for (int t = 0; t < T; t++) {
            fprintf(f, "%s[", t ? ", " : "");
            for (int v = 0; v < V; v++) fprintf(f, "%s%.9g", v ? ", " : "", logits[((size_t)b * T + t) * V + v]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    fclose(f);
    free(logits);
    llama_free(&back);
    printf("saved %s\n", dir);
    return 0;
}

static int roundtrip(const char *out) {
    static const char *const names[] = {"llama", "qwen2", "qwen3", "mistral"};
    mkdir(out, 0777);
    for (int i = 0; i < 4; i++) {
        char dir[512], path[600], err[512];
        fixture_dir(dir, sizeof dir, names[i]);
        llama_model m;
        if (llama_load(&m, dir, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        snprintf(path, sizeof path, "%s/reference.safetensors", dir);
        st_file ref;
        size_t ntok = 0;
        int *tok = st_open(&ref, path) == 0 ? st_get(&ref, "tokens", "I32", &ntok) : NULL;
        if (!tok) {
            fprintf(stderr, "%s: no tokens\n", path);
            return 1;
        }
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ref.hdr, "tokens"), "shape");
        int B = cJSON_GetArrayItem(shape, 0)->valueint, T = cJSON_GetArrayItem(shape, 1)->valueint;
        static const char *const variant[] = {"f32", "bf16", "sharded"};
        for (int v = 0; v < 3; v++) {
            snprintf(path, sizeof path, "%s/%s_%s", out, names[i], variant[v]);
            if (save_and_dump(&m, path, v == 1, v == 2 ? 16384 : 0, tok, B, T)) return 1;
        }
        free(tok);
        st_close(&ref);
        llama_free(&m);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--roundtrip") == 0) return roundtrip(argv[2]);
    check_fixture("llama", "LlamaForCausalLM");
    check_fixture("qwen2", "Qwen2ForCausalLM");
    check_fixture("qwen3", "Qwen3ForCausalLM");
    check_fixture("mistral", "MistralForCausalLM");
    check_rope_llama3();
    return TEST_DONE();
}
