/*
 * model/llama_config.c: Hugging Face config.json <-> llama_config, generation_config.json, and the
 * atomic file writer that all of the model's files share.
 *
 * Reading (cJSON) follows transformers' LlamaConfig / Qwen2Config / Qwen3Config / MistralConfig: the
 * architecture comes from "architectures"[0] (or "model_type" when that is absent); absent optional
 * fields take those classes' defaults; rope_theta and rope_scaling are read from the transformers
 * 4.x top-level fields or from transformers 5's "rope_parameters"; features this implementation does
 * not compute (rope types other than default and llama3, hidden_act other than silu, Llama
 * mlp_bias, Qwen2/Qwen3 use_sliding_window) are rejected rather than silently ignored. Every error
 * names the file and the field (and the offending value where there is one).
 *
 * Writing produces what save_pretrained would (architectures, model_type, torch_dtype, ...), with
 * floats printed in their shortest round-trip form (1e-06, not 9.9999999747524271e-07), and
 * rope_scaling in the transformers 4.x layout, which 4.x, 5.x and vLLM all read.
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
    {"LlamaForCausalLM", "llama"}, {"Qwen2ForCausalLM", "qwen2"}, {"Qwen3ForCausalLM", "qwen3"},
    {"MistralForCausalLM", "mistral"},
};

char *llama_read_file(const char *path, size_t *lenp, char *err, size_t errlen) {
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
    if (lenp) *lenp = len;
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

/* A required positive number of a rope_scaling object. */
static int rope_number(const cJSON *rs, const char *key, const char *field, double *out, const char *path, char *err,
                       size_t errlen) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rs, key);
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || !(it->valuedouble > 0.0)) {
        snprintf(err, errlen, "%s: field '%s': rope_type \"llama3\" needs '%s', a positive number", path, field, key);
        return -1;
    }
    *out = it->valuedouble;
    return 0;
}

/* rope_scaling / rope_parameters object rs (field names it in messages): rope_type (or the older
 * "type") "default" or "llama3"; for llama3 the four parameters of _compute_llama3_parameters. */
static int parse_rope_scaling(llama_config *c, const cJSON *rs, const char *field, const char *path, char *err,
                              size_t errlen) {
    if (!cJSON_IsObject(rs)) {
        snprintf(err, errlen, "%s: field '%s' must be an object or null", path, field);
        return -1;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!type && strcmp(field, "rope_parameters") == 0) return 0; /* only rope_theta in it */
    if (!cJSON_IsString(type)) {
        snprintf(err, errlen, "%s: field '%s' needs a string 'rope_type' (\"default\" or \"llama3\")", path, field);
        return -1;
    }
    if (strcmp(type->valuestring, "default") == 0) return 0;
    if (strcmp(type->valuestring, "llama3") != 0) {
        snprintf(err, errlen, "%s: field '%s': rope_type \"%.40s\" is not supported (only \"default\" and "
                 "\"llama3\")", path, field, type->valuestring);
        return -1;
    }
    double factor, lo, hi, orig;
    if (rope_number(rs, "factor", field, &factor, path, err, errlen) ||
        rope_number(rs, "low_freq_factor", field, &lo, path, err, errlen) ||
        rope_number(rs, "high_freq_factor", field, &hi, path, err, errlen) ||
        rope_number(rs, "original_max_position_embeddings", field, &orig, path, err, errlen))
        return -1;
    if (orig != floor(orig) || orig > 2147483647.0) {
        snprintf(err, errlen, "%s: field '%s': original_max_position_embeddings must be an integer", path, field);
        return -1;
    }
    if (!(hi > lo)) {
        snprintf(err, errlen, "%s: field '%s': high_freq_factor %g must exceed low_freq_factor %g", path, field, hi, lo);
        return -1;
    }
    c->rope_type = LLAMA_ROPE_LLAMA3;
    c->rope_factor = (float)factor;
    c->rope_low_freq_factor = (float)lo;
    c->rope_high_freq_factor = (float)hi;
    c->rope_original_max_position_embeddings = (int)orig;
    return 0;
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
                     "Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM)", path, arch);
            return -1;
        }
    } else if (cJSON_IsString(mt)) {
        for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
            if (strcmp(mt->valuestring, arch_table[i].model_type) == 0) arch = arch_table[i].arch;
        if (!arch) {
            snprintf(err, errlen, "%s: field 'model_type': '%.64s' is not supported (llama, qwen2, qwen3, mistral)",
                     path, mt->valuestring);
            return -1;
        }
    } else {
        snprintf(err, errlen, "%s: field 'architectures' is missing (and no 'model_type')", path);
        return -1;
    }
    snprintf(c->architecture, sizeof c->architecture, "%s", arch);
    int is_qwen2 = strcmp(arch, "Qwen2ForCausalLM") == 0;
    int is_qwen3 = strcmp(arch, "Qwen3ForCausalLM") == 0;
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
    if ((!hd || cJSON_IsNull(hd)) && !is_qwen3 && c->hidden_size % c->num_attention_heads != 0) {
        snprintf(err, errlen, "%s: field 'head_dim' is missing and hidden_size %d is not a multiple of "
                 "num_attention_heads %d", path, c->hidden_size, c->num_attention_heads);
        return -1;
    }
    /* Qwen3Config's head_dim defaults to 128 (not hidden_size / heads) */
    int def_hd = is_qwen3 ? 128 : c->hidden_size / c->num_attention_heads;
    if (get_int(root, "head_dim", 0, def_hd, &c->head_dim, path, err, errlen))
        return -1;
    int def_maxpos = is_qwen2 || is_qwen3 ? 32768 : is_mistral ? 4096 * 32 : 2048;
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
    /* rope_scaling (transformers 4.x) or rope_parameters (5.x; it also holds rope_theta) */
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    const char *rs_field = "rope_scaling";
    if (!rs || cJSON_IsNull(rs)) {
        rs = rp;
        rs_field = "rope_parameters";
    }
    if (rs && !cJSON_IsNull(rs) && parse_rope_scaling(c, rs, rs_field, path, err, errlen)) return -1;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !cJSON_IsNull(act) && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0)) {
        snprintf(err, errlen, "%s: field 'hidden_act': \"%.40s\" is not supported (only \"silu\")", path,
                 cJSON_IsString(act) ? act->valuestring : "(not a string)");
        return -1;
    }
    const cJSON *prf = cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor");
    if (prf && !cJSON_IsNull(prf) && (!cJSON_IsNumber(prf) || prf->valuedouble != 1.0)) {
        snprintf(err, errlen, "%s: field 'partial_rotary_factor': %g is not supported (only 1.0)", path,
                 cJSON_IsNumber(prf) ? prf->valuedouble : NAN);
        return -1;
    }

    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        const cJSON *e, *bad = NULL;
        int ok = cJSON_IsArray(lt);
        cJSON_ArrayForEach(e, lt)
            if (!bad && (!cJSON_IsString(e) || (strcmp(e->valuestring, "full_attention") != 0 &&
                                                !(is_mistral && strcmp(e->valuestring, "sliding_attention") == 0))))
                bad = e;
        if (!ok || bad) {
            snprintf(err, errlen, "%s: field 'layer_types': %s%.40s%s is not supported (only \"full_attention\" layers)",
                     path, cJSON_IsString(bad) ? "\"" : "", cJSON_IsString(bad) ? bad->valuestring : "a non-string entry",
                     cJSON_IsString(bad) ? "\"" : "");
            return -1;
        }
    }

    /* biases and windows, per architecture */
    if (is_qwen2 || is_qwen3) {
        /* Qwen2Attention: q/k/v always biased, o_proj never; Qwen3Attention: q/k/v/o biased when
         * attention_bias (default false) */
        if (is_qwen2) c->attention_bias = 1;
        else if (get_bool(root, "attention_bias", 0, &c->attention_bias, path, err, errlen)) return -1;
        int use_sw = 0;
        if (get_bool(root, "use_sliding_window", 0, &use_sw, path, err, errlen)) return -1;
        if (use_sw) {
            snprintf(err, errlen, "%s: field 'use_sliding_window': %s sliding-window attention is not supported", path,
                     is_qwen2 ? "Qwen2" : "Qwen3");
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
    if (get_int(root, "bos_token_id", 0, -1, &c->bos_token_id, path, err, errlen) ||
        get_int(root, "pad_token_id", 0, -1, &c->pad_token_id, path, err, errlen))
        return -1;
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
    char *text = llama_read_file(json_path, NULL, err, errlen);
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
    int is_qwen3 = strcmp(c->architecture, "Qwen3ForCausalLM") == 0;

    cJSON *root = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(c->architecture));
    cJSON_AddStringToObject(root, "model_type", model_type);
    if (is_llama || is_qwen3) cJSON_AddBoolToObject(root, "attention_bias", c->attention_bias);
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
    if (c->pad_token_id >= 0) cJSON_AddNumberToObject(root, "pad_token_id", c->pad_token_id);
    else cJSON_AddNullToObject(root, "pad_token_id");
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
    if (c->rope_type == LLAMA_ROPE_LLAMA3) {
        cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
        cJSON_AddItemToObject(rs, "factor", float_number(c->rope_factor));
        cJSON_AddItemToObject(rs, "high_freq_factor", float_number(c->rope_high_freq_factor));
        cJSON_AddItemToObject(rs, "low_freq_factor", float_number(c->rope_low_freq_factor));
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_original_max_position_embeddings);
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
    } else {
        cJSON_AddNullToObject(root, "rope_scaling");
    }
    cJSON_AddItemToObject(root, "rope_theta", float_number(c->rope_theta));
    if (is_qwen2 || is_qwen3) {
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

/* ------------------------------------------------------------------------------------------------
 * generation_config.json
 */

int llama_generation_config_to_json(const llama_config *c, const char *base, const char *path, char *err,
                                    size_t errlen) {
    cJSON *root = base ? cJSON_Parse(base) : cJSON_CreateObject();
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: the generation config to write is not a JSON object", path);
        cJSON_Delete(root);
        return -1;
    }
    if (!cJSON_HasObjectItem(root, "bos_token_id") && c->bos_token_id >= 0)
        cJSON_AddNumberToObject(root, "bos_token_id", c->bos_token_id);
    if (!cJSON_HasObjectItem(root, "pad_token_id") && c->pad_token_id >= 0)
        cJSON_AddNumberToObject(root, "pad_token_id", c->pad_token_id);
    if (!cJSON_HasObjectItem(root, "eos_token_id") && c->num_eos == 1) {
        cJSON_AddNumberToObject(root, "eos_token_id", c->eos_token_ids[0]);
    } else if (!cJSON_HasObjectItem(root, "eos_token_id") && c->num_eos > 1) {
        cJSON *e = cJSON_AddArrayToObject(root, "eos_token_id");
        for (int i = 0; i < c->num_eos; i++) cJSON_AddItemToArray(e, cJSON_CreateNumber(c->eos_token_ids[i]));
    }
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
