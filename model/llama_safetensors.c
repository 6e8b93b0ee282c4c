/*
 * model/llama_safetensors.c: llama_load / llama_save, i.e. a directory holding config.json and
 * model.safetensors as transformers' save_pretrained writes it.
 *
 * safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length H, H bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {..}}, then the tensor bytes (offsets relative to the end of the header,
 * little-endian, row-major, contiguous without holes).
 *
 * Loading mmaps the file, validates every entry against the model's tensor table (name, dtype,
 * shape, bounds), converts F32 / BF16 / F16 into the fp32 params once, and reports the first
 * problem with the file and tensor named. Saving writes the header (padded with spaces to a
 * multiple of 8, as the Rust library does) and the tensors in m->tensors order, F32 or BF16
 * (round to nearest even, as torch's .to(torch.bfloat16)), through llama_write_atomic.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "model/llama_internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this file copies it as host floats"
#endif

/* ------------------------------------------------------------------------------------------------
 * Number formats
 */

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* IEEE 754 binary16 -> binary32, subnormals, infinities and NaNs included. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------------------------------------
 * Loading
 */

static int ignorable(const llama_model *m, const char *name) {
    size_t len = strlen(name);
    const char *suffix = "rotary_emb.inv_freq";
    size_t sl = strlen(suffix);
    if (len >= sl && strcmp(name + len - sl, suffix) == 0) return 1;
    return m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0;
}

static void shape_str(char *buf, size_t n, const long long *dims, int ndim) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++) at += (size_t)snprintf(buf + at, n - at, i ? ", %lld" : "%lld", dims[i]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

static int load_tensors(llama_model *m, const char *path, const unsigned char *base, size_t size,
                        char *err, size_t errlen) {
    if (size < 8) {
        snprintf(err, errlen, "%s: file is %zu bytes, too short for a safetensors header", path, size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > size - 8) {
        snprintf(err, errlen, "%s: header length %llu exceeds the file size %zu (truncated or not safetensors)",
                 path, (unsigned long long)hlen, size);
        return -1;
    }
    char *htext = malloc(hlen + 1);
    if (!htext) {
        snprintf(err, errlen, "%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
        return -1;
    }
    memcpy(htext, base + 8, hlen);
    htext[hlen] = 0;
    cJSON *root = cJSON_Parse(htext);
    free(htext);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: header is not a JSON object", path);
        cJSON_Delete(root);
        return -1;
    }
    const unsigned char *data = base + 8 + hlen;
    size_t dsize = size - 8 - (size_t)hlen;
    char *seen = calloc((size_t)m->num_tensors, 1);
    int rc = -1;
    if (!seen) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *name = item->string;
        if (strcmp(name, "__metadata__") == 0) continue;
        llama_tensor *t = llama_find_tensor(m, name);
        if (!t) {
            if (ignorable(m, name)) continue;
            snprintf(err, errlen, "%s: unexpected tensor '%.96s' (not part of a %s with this config.json)",
                     path, name, m->cfg.architecture);
            goto done;
        }
        int ti = (int)(t - m->tensors);
        if (seen[ti]) {
            snprintf(err, errlen, "%s: tensor '%s' appears twice in the header", path, t->name);
            goto done;
        }
        seen[ti] = 1;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
            cJSON_GetArraySize(sh) > 8) {
            snprintf(err, errlen, "%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]",
                     path, t->name);
            goto done;
        }
        size_t esize;
        if (strcmp(dt->valuestring, "F32") == 0) esize = 4;
        else if (strcmp(dt->valuestring, "BF16") == 0 || strcmp(dt->valuestring, "F16") == 0) esize = 2;
        else {
            snprintf(err, errlen, "%s: tensor '%s': dtype %.16s not supported (F32, BF16, F16)", path, t->name,
                     dt->valuestring);
            goto done;
        }
        long long dims[8], want[2] = {t->shape[0], t->shape[1]};
        int ndim = cJSON_GetArraySize(sh), shape_ok = ndim == t->ndim;
        for (int i = 0; i < ndim; i++) {
            const cJSON *d = cJSON_GetArrayItem(sh, i);
            dims[i] = cJSON_IsNumber(d) ? (long long)d->valuedouble : -1;
            if (i < t->ndim && dims[i] != want[i]) shape_ok = 0;
        }
        if (!shape_ok) {
            char got_s[128], want_s[64];
            shape_str(got_s, sizeof got_s, dims, ndim);
            shape_str(want_s, sizeof want_s, want, t->ndim);
            snprintf(err, errlen, "%s: tensor '%s' has shape %s in the file, config.json implies %s",
                     path, t->name, got_s, want_s);
            goto done;
        }
        const cJSON *ob = cJSON_GetArrayItem(off, 0), *oe = cJSON_GetArrayItem(off, 1);
        double b = cJSON_IsNumber(ob) ? ob->valuedouble : -1, e = cJSON_IsNumber(oe) ? oe->valuedouble : -1;
        if (b < 0 || e < b || e > (double)dsize || (size_t)(e - b) != t->numel * esize) {
            snprintf(err, errlen, "%s: tensor '%s': data_offsets [%.0f, %.0f] do not hold %zu %s values within "
                     "the %zu data bytes (truncated or corrupt file)", path, t->name, b, e, t->numel,
                     dt->valuestring, dsize);
            goto done;
        }
        const unsigned char *src = data + (size_t)b;
        if (esize == 4) {
            memcpy(t->data, src, t->numel * 4); /* little-endian host */
        } else {
            int bf = dt->valuestring[0] == 'B';
            for (size_t i = 0; i < t->numel; i++) {
                uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
                t->data[i] = bf ? bf16_to_f32(h) : f16_to_f32(h);
            }
        }
    }
    for (int i = 0; i < m->num_tensors; i++)
        if (!seen[i]) {
            snprintf(err, errlen, "%s: missing tensor '%s'", path, m->tensors[i].name);
            goto done;
        }
    rc = 0;
done:
    free(seen);
    cJSON_Delete(root);
    return rc;
}

int llama_load(llama_model *m, const char *dir, char *err, size_t errlen) {
    char path[4096];
    llama_config c;
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (llama_config_from_json(&c, path, err, errlen)) return -1;
    if (llama_model_alloc(m, &c, err, errlen)) return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        llama_free(m);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        llama_free(m);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        llama_free(m);
        return -1;
    }
    int rc = load_tensors(m, path, map, size, err, errlen);
    if (map) munmap(map, size);
    if (rc) llama_free(m);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Saving
 */

typedef struct {
    const llama_model *m;
    int bf16;
} save_ctx;

static int write_safetensors(FILE *f, const void *vctx, char *err, size_t errlen) {
    const save_ctx *ctx = vctx;
    const llama_model *m = ctx->m;
    size_t esize = ctx->bf16 ? 2 : 4;
    /* header: each entry is < 256 bytes */
    size_t cap = 64 + (size_t)m->num_tensors * 256, at = 0;
    char *h = malloc(cap + 8);
    if (!h) {
        snprintf(err, errlen, "out of memory for the header");
        return -1;
    }
    at += (size_t)snprintf(h + at, cap - at, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        const llama_tensor *t = &m->tensors[i];
        size_t bytes = t->numel * esize;
        if (t->ndim == 2)
            at += (size_t)snprintf(h + at, cap - at, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                   t->name, ctx->bf16 ? "BF16" : "F32", t->shape[0], t->shape[1], offset, offset + bytes);
        else
            at += (size_t)snprintf(h + at, cap - at, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                   t->name, ctx->bf16 ? "BF16" : "F32", t->shape[0], offset, offset + bytes);
        offset += bytes;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    LLAMA_ASSERT(at < cap);
    while (at % 8) h[at++] = ' ';
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)at >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, at, f) == at;
    free(h);
    uint16_t buf[4096];
    for (int i = 0; ok && i < m->num_tensors; i++) {
        const llama_tensor *t = &m->tensors[i];
        if (!ctx->bf16) {
            ok = fwrite(t->data, 4, t->numel, f) == t->numel;
            continue;
        }
        for (size_t j = 0; ok && j < t->numel; j += 4096) {
            size_t n = t->numel - j < 4096 ? t->numel - j : 4096;
            for (size_t k = 0; k < n; k++) buf[k] = f32_to_bf16(t->data[j + k]);
            ok = fwrite(buf, 2, n, f) == n;
        }
    }
    if (!ok) {
        snprintf(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int llama_save(const llama_model *m, const char *dir, int bf16, char *err, size_t errlen) {
    char path[4096];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    save_ctx ctx = {m, bf16};
    char msg[256];
    if (llama_write_atomic(path, write_safetensors, &ctx, msg, sizeof msg)) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    return llama_config_to_json_dtype(&m->cfg, path, bf16 ? "bfloat16" : "float32", err, errlen);
}
