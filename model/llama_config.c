/*
 * model/llama_config.c: Hugging Face config.json <-> llama_config, and the atomic file writer that
 * config.json and model.safetensors share.
 *
 * Reading (cJSON) follows transformers' LlamaConfig / Qwen2Config / MistralConfig: the architecture
 * comes from "architectures"[0] (or "model_type" when that is absent); absent optional fields take
 * those classes' defaults; features this implementation does not compute (rope_scaling other than
 * the default rope, hidden_act other than silu, Llama mlp_bias, Qwen2 use_sliding_window) are
 * rejected rather than silently ignored. Every error names the file and the field.
 *
 * Writing produces what save_pretrained would (architectures, model_type, torch_dtype, ...), with
 * floats printed in their shortest round-trip form (1e-06, not 9.9999999747524271e-07).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "model/llama_internal.h"

/* ------------------------------------------------------------------------------------------------
 * Atomic writes
 */

int llama_write_atomic(const char *path, int (*writer)(FILE *f, const void *ctx, char *err, size_t errlen),
                       const void *ctx, char *err, size_t errlen) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    if (writer(f, ctx, err, errlen)) {
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: close failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* make the rename durable */
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Reading
 */

static const struct { const char *arch, *model_type; } arch_table[] = {
    {"LlamaForCausalLM", "llama"}, {"Qwen2ForCausalLM", "qwen2"}, {"MistralForCausalLM", "mistral"},
};

static char *read_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, errlen, "%s: read failed", path);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* Integer field: absent or null -> *out = def (or an error when required). */
static int get_int(const cJSON *root, const char *field, int required, int def, int *out,
                   const char *path, char *err, size_t errlen) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) {
        if (required) {
            snprintf(err, errlen, "%s: field '%s' is missing", path, field);
            return -1;
        }
        *out = def;
        return 0;
    }
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || d != floor(d) || d < -2147483648.0 || d > 2147483647.0) {
        snprintf(err, errlen, "%s: field '%s' must be an integer", path, field);
        return -1;
    }
    *out = (int)d;
    return 0;
}

static int get_float(const cJSON *root, const char *field, float def, float *out,
                     const char *path, char *err, size_t errlen) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        snprintf(err, errlen, "%s: field '%s' must be a number", path, field);
        return -1;
    }
    *out = (float)it->valuedouble;
    return 0;
}

/* Boolean field (true/false, or 0/1). */
static int get_bool(const cJSON *root, const char *field, int def, int *out,
                    const char *path, char *err, size_t errlen) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsBool(it)) {
        *out = cJSON_IsTrue(it) ? 1 : 0;
        return 0;
    }
    if (cJSON_IsNumber(it) && (it->valuedouble == 0.0 || it->valuedouble == 1.0)) {
        *out = (int)it->valuedouble;
        return 0;
    }
    snprintf(err, errlen, "%s: field '%s' must be true or false", path, field);
    return -1;
}

static int parse_config(llama_config *c, const cJSON *root, const char *path, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        return -1;
    }
    /* architecture */
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *arch = NULL;
    if (archs && !cJSON_IsNull(archs)) {
        const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(first)) {
            snprintf(err, errlen, "%s: field 'architectures' must be a list of class names", path);
            return -1;
        }
        arch = first->valuestring;
        int known = 0;
        for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
            if (strcmp(arch, arch_table[i].arch) == 0) known = 1;
        if (!known) {
            snprintf(err, errlen, "%s: field 'architectures': '%.64s' is not supported (LlamaForCausalLM, "
                     "Qwen2ForCausalLM, MistralForCausalLM)", path, arch);
            return -1;
        }
    } else if (cJSON_IsString(mt)) {
        for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
            if (strcmp(mt->valuestring, arch_table[i].model_type) == 0) arch = arch_table[i].arch;
        if (!arch) {
            snprintf(err, errlen, "%s: field 'model_type': '%.64s' is not supported (llama, qwen2, mistral)",
                     path, mt->valuestring);
            return -1;
        }
    } else {
        snprintf(err, errlen, "%s: field 'architectures' is missing (and no 'model_type')", path);
        return -1;
    }
    snprintf(c->architecture, sizeof c->architecture, "%s", arch);
    int is_qwen2 = strcmp(arch, "Qwen2ForCausalLM") == 0;
    int is_mistral = strcmp(arch, "MistralForCausalLM") == 0;

    if (get_int(root, "vocab_size", 1, 0, &c->vocab_size, path, err, errlen) ||
        get_int(root, "hidden_size", 1, 0, &c->hidden_size, path, err, errlen) ||
        get_int(root, "intermediate_size", 1, 0, &c->intermediate_size, path, err, errlen) ||
        get_int(root, "num_hidden_layers", 1, 0, &c->num_hidden_layers, path, err, errlen) ||
        get_int(root, "num_attention_heads", 1, 0, &c->num_attention_heads, path, err, errlen))
        return -1;
    if (c->num_attention_heads < 1) {
        snprintf(err, errlen, "%s: field 'num_attention_heads' must be positive, got %d", path, c->num_attention_heads);
        return -1;
    }
    if (get_int(root, "num_key_value_heads", 0, c->num_attention_heads, &c->num_key_value_heads, path, err, errlen))
        return -1;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if ((!hd || cJSON_IsNull(hd)) && c->hidden_size % c->num_attention_heads != 0) {
        snprintf(err, errlen, "%s: field 'head_dim' is missing and hidden_size %d is not a multiple of "
                 "num_attention_heads %d", path, c->hidden_size, c->num_attention_heads);
        return -1;
    }
    if (get_int(root, "head_dim", 0, c->hidden_size / c->num_attention_heads, &c->head_dim, path, err, errlen))
        return -1;
    int def_maxpos = is_qwen2 ? 32768 : is_mistral ? 4096 * 32 : 2048;
    if (get_int(root, "max_position_embeddings", 0, def_maxpos, &c->max_position_embeddings, path, err, errlen) ||
        get_float(root, "rms_norm_eps", 1e-6f, &c->rms_norm_eps, path, err, errlen) ||
        get_bool(root, "tie_word_embeddings", 0, &c->tie_word_embeddings, path, err, errlen))
        return -1;

    /* rope: rope_theta at the top level, or in rope_parameters (newer transformers) */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "rope_theta");
    if ((!rt || cJSON_IsNull(rt)) && cJSON_IsObject(rp)) {
        if (get_float(rp, "rope_theta", 10000.0f, &c->rope_theta, path, err, errlen)) return -1;
    } else if (get_float(root, "rope_theta", 10000.0f, &c->rope_theta, path, err, errlen)) {
        return -1;
    }
    const char *scaling_fields[] = {"rope_scaling", "rope_parameters"};
    for (int i = 0; i < 2; i++) {
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, scaling_fields[i]);
        if (!rs || cJSON_IsNull(rs)) continue;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
        if (!cJSON_IsObject(rs) || !cJSON_IsString(type) || strcmp(type->valuestring, "default") != 0) {
            snprintf(err, errlen, "%s: field '%s': only the default rope is supported (null or rope_type \"default\")",
                     path, scaling_fields[i]);
            return -1;
        }
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !cJSON_IsNull(act) && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0)) {
        snprintf(err, errlen, "%s: field 'hidden_act' must be \"silu\"", path);
        return -1;
    }
    const cJSON *prf = cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor");
    if (prf && !cJSON_IsNull(prf) && (!cJSON_IsNumber(prf) || prf->valuedouble != 1.0)) {
        snprintf(err, errlen, "%s: field 'partial_rotary_factor' must be 1.0", path);
        return -1;
    }

    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        const cJSON *e;
        int ok = cJSON_IsArray(lt);
        cJSON_ArrayForEach(e, lt)
            if (!cJSON_IsString(e) || (strcmp(e->valuestring, "full_attention") != 0 &&
                                       !(is_mistral && strcmp(e->valuestring, "sliding_attention") == 0)))
                ok = 0;
        if (!ok) {
            snprintf(err, errlen, "%s: field 'layer_types': only \"full_attention\" layers are supported", path);
            return -1;
        }
    }

    /* biases and windows, per architecture */
    if (is_qwen2) {
        c->attention_bias = 1; /* Qwen2Attention: q/k/v always biased, o_proj never */
        int use_sw = 0;
        if (get_bool(root, "use_sliding_window", 0, &use_sw, path, err, errlen)) return -1;
        if (use_sw) {
            snprintf(err, errlen, "%s: field 'use_sliding_window': Qwen2 sliding-window attention is not supported", path);
            return -1;
        }
    } else if (is_mistral) {
        c->attention_bias = 0;
        if (get_int(root, "sliding_window", 0, 0, &c->sliding_window, path, err, errlen)) return -1;
        if (c->sliding_window < 0) {
            snprintf(err, errlen, "%s: field 'sliding_window' must be positive or null", path);
            return -1;
        }
    } else {
        int mlp_bias = 0;
        if (get_bool(root, "attention_bias", 0, &c->attention_bias, path, err, errlen) ||
            get_bool(root, "mlp_bias", 0, &mlp_bias, path, err, errlen))
            return -1;
        if (mlp_bias) {
            snprintf(err, errlen, "%s: field 'mlp_bias': MLP biases are not supported", path);
            return -1;
        }
    }

    /* special tokens */
    if (get_int(root, "bos_token_id", 0, -1, &c->bos_token_id, path, err, errlen)) return -1;
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (eos && !cJSON_IsNull(eos)) {
        if (cJSON_IsArray(eos)) {
            int n = cJSON_GetArraySize(eos);
            if (n > LLAMA_MAX_EOS) {
                snprintf(err, errlen, "%s: field 'eos_token_id' lists %d ids, at most %d supported", path, n, LLAMA_MAX_EOS);
                return -1;
            }
            for (int i = 0; i < n; i++) {
                const cJSON *e = cJSON_GetArrayItem(eos, i);
                if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
                    e->valuedouble > 2147483647.0) {
                    snprintf(err, errlen, "%s: field 'eos_token_id' must be an integer or a list of integers", path);
                    return -1;
                }
                c->eos_token_ids[c->num_eos++] = (int)e->valuedouble;
            }
        } else {
            int id;
            if (get_int(root, "eos_token_id", 1, 0, &id, path, err, errlen)) return -1;
            c->eos_token_ids[0] = id;
            c->num_eos = 1;
        }
    }

    char msg[256];
    if (llama_config_check(c, msg, sizeof msg)) {
        snprintf(err, errlen, "%s: field %s", path, msg);
        return -1;
    }
    return 0;
}

int llama_config_from_json(llama_config *c, const char *json_path, char *err, size_t errlen) {
    char *text = read_file(json_path, err, errlen);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        snprintf(err, errlen, "%s: not valid JSON (near byte %ld)", json_path,
                 at && at >= text ? (long)(at - text) : -1L);
        free(text);
        return -1;
    }
    int rc = parse_config(c, root, json_path, err, errlen);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Writing
 */

/* A JSON number holding the shortest decimal that reads back as f. */
static cJSON *float_number(float f) {
    char buf[64];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static int write_text(FILE *f, const void *ctx, char *err, size_t errlen) {
    const char *text = ctx;
    size_t n = strlen(text);
    if (fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF) {
        snprintf(err, errlen, "write failed");
        return -1;
    }
    return 0;
}

int llama_config_to_json_dtype(const llama_config *c, const char *path, const char *dtype, char *err, size_t errlen) {
    char msg[256];
    if (llama_config_check(c, msg, sizeof msg)) {
        snprintf(err, errlen, "%s: invalid config: %s", path, msg);
        return -1;
    }
    const char *model_type = NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(c->architecture, arch_table[i].arch) == 0) model_type = arch_table[i].model_type;
    int is_llama = strcmp(c->architecture, "LlamaForCausalLM") == 0;
    int is_qwen2 = strcmp(c->architecture, "Qwen2ForCausalLM") == 0;

    cJSON *root = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(c->architecture));
    cJSON_AddStringToObject(root, "model_type", model_type);
    if (is_llama) cJSON_AddBoolToObject(root, "attention_bias", c->attention_bias);
    cJSON_AddNumberToObject(root, "attention_dropout", 0.0);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", c->bos_token_id);
    else cJSON_AddNullToObject(root, "bos_token_id");
    if (c->num_eos == 1) {
        cJSON_AddNumberToObject(root, "eos_token_id", c->eos_token_ids[0]);
    } else if (c->num_eos > 1) {
        cJSON *e = cJSON_AddArrayToObject(root, "eos_token_id");
        for (int i = 0; i < c->num_eos; i++) cJSON_AddItemToArray(e, cJSON_CreateNumber(c->eos_token_ids[i]));
    } else {
        cJSON_AddNullToObject(root, "eos_token_id");
    }
    cJSON_AddNumberToObject(root, "head_dim", c->head_dim);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddNumberToObject(root, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    cJSON_AddNumberToObject(root, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_position_embeddings);
    if (is_llama) cJSON_AddBoolToObject(root, "mlp_bias", 0);
    cJSON_AddNumberToObject(root, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(root, "num_key_value_heads", c->num_key_value_heads);
    cJSON_AddItemToObject(root, "rms_norm_eps", float_number(c->rms_norm_eps));
    cJSON_AddNullToObject(root, "rope_scaling");
    cJSON_AddItemToObject(root, "rope_theta", float_number(c->rope_theta));
    if (is_qwen2) {
        cJSON_AddBoolToObject(root, "use_sliding_window", 0);
        cJSON_AddNullToObject(root, "sliding_window");
        cJSON_AddNumberToObject(root, "max_window_layers", c->num_hidden_layers);
    } else if (!is_llama) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(root, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(root, "sliding_window");
    }
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddStringToObject(root, "torch_dtype", dtype);
    cJSON_AddBoolToObject(root, "use_cache", 1);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory printing JSON", path);
        return -1;
    }
    int rc = llama_write_atomic(path, write_text, text, err, errlen);
    cJSON_free(text);
    return rc;
}

int llama_config_to_json(const llama_config *c, const char *path, char *err, size_t errlen) {
    return llama_config_to_json_dtype(c, path, "float32", err, errlen);
}
