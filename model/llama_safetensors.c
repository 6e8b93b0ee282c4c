/*
 * model/llama_safetensors.c: llama_load / llama_save, i.e. a directory holding config.json,
 * generation_config.json and model.safetensors (or shards model-0000i-of-0000n.safetensors listed by
 * model.safetensors.index.json) as transformers' save_pretrained writes it.
 *
 * safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length H, H bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {..}}, then the tensor bytes (offsets relative to the end of the header,
 * little-endian, row-major, contiguous without holes).
 *
 * Sharded checkpoints (index format of huggingface_hub / transformers): model.safetensors.index.json
 * = {"metadata": {"total_size": bytes}, "weight_map": {"tensor name": "shard file name", ...}}.
 *
 * Loading mmaps each file, validates every entry against the model's tensor table (name, dtype,
 * shape, bounds; with shards also that the tensor sits in the shard the index names), converts
 * F32 / BF16 / F16 into the fp32 params once, and reports the first problem with the file and
 * tensor named; a table of seen tensors shared across shards catches duplicates and missing ones.
 * Saving splits m->tensors (in order) into shards of at most max_shard_bytes, writes each header
 * (padded with spaces to a multiple of 8, as the Rust library does) and the tensors, F32 or BF16
 * (round to nearest even, as torch's .to(torch.bfloat16)), through llama_write_atomic; then the
 * index (when sharded), config.json and generation_config.json; then removes weight files of an
 * earlier save in the other layout.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
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

/* Loads the tensors of one safetensors file (base, size bytes, mmap'd) into m. seen (m->num_tensors)
 * marks tensors already loaded (from this or an earlier shard). index (or NULL): the weight_map of
 * a sharded checkpoint and shard, this file's name in it: every tensor must be mapped to it. */
static int load_tensors(llama_model *m, const char *path, const unsigned char *base, size_t size, char *seen,
                        const cJSON *index, const char *shard, char *err, size_t errlen) {
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
    int rc = -1;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *name = item->string;
        if (strcmp(name, "__metadata__") == 0) continue;
        if (index) {
            const cJSON *where = cJSON_GetObjectItemCaseSensitive(index, name);
            if (!cJSON_IsString(where) || strcmp(where->valuestring, shard) != 0) {
                snprintf(err, errlen, "%s: tensor '%.96s' is in this shard but model.safetensors.index.json %s%.200s",
                         path, name, cJSON_IsString(where) ? "maps it to " : "does not list it",
                         cJSON_IsString(where) ? where->valuestring : "");
                goto done;
            }
        }
        llama_tensor *t = llama_find_tensor(m, name);
        if (!t) {
            if (ignorable(m, name)) continue;
            snprintf(err, errlen, "%s: unexpected tensor '%.96s' (not part of a %s with this config.json)",
                     path, name, m->cfg.architecture);
            goto done;
        }
        int ti = (int)(t - m->tensors);
        if (seen[ti]) {
            snprintf(err, errlen, "%s: tensor '%s' appears twice (in the header%s)", path, t->name,
                     index ? " or in two shards" : "");
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
        /* NaN or inf weights would poison every forward pass (and a run trained from them): refused. */
        for (size_t i = 0; i < t->numel; i++) {
            if (!isfinite(t->data[i])) {
                snprintf(err, errlen, "%s: tensor '%s' holds a non-finite value (%g at flat index %zu); refusing "
                         "NaN/inf weights", path, t->name, (double)t->data[i], i);
                goto done;
            }
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

/* mmaps path and loads its tensors (see load_tensors). 0 or -1 with err. */
static int load_file(llama_model *m, const char *path, char *seen, const cJSON *index, const char *shard, char *err,
                     size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        return -1;
    }
    int rc = load_tensors(m, path, map, size, seen, index, shard, err, errlen);
    if (map) munmap(map, size);
    return rc;
}

/* Loads the shards listed by dir/model.safetensors.index.json (path), each file once. */
static int load_sharded(llama_model *m, const char *dir, const char *path, char *seen, char *err, size_t errlen) {
    char *text = llama_read_file(path, NULL, err, errlen);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = -1;
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
        snprintf(err, errlen, "%s: not a JSON object with a \"weight_map\" object", path);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') ||
            strcmp(e->valuestring, "..") == 0 || strcmp(e->valuestring, ".") == 0) {
            snprintf(err, errlen, "%s: weight_map entry '%.96s' must name a file in the same folder", path, e->string);
            goto done;
        }
    }
    /* each distinct file once, in order of first mention */
    cJSON_ArrayForEach(e, wm) {
        int first = 1;
        for (const cJSON *p = wm->child; p != e; p = p->next)
            if (strcmp(p->valuestring, e->valuestring) == 0) { first = 0; break; }
        if (!first) continue;
        char shard[4096];
        if (snprintf(shard, sizeof shard, "%s/%s", dir, e->valuestring) >= (int)sizeof shard) {
            snprintf(err, errlen, "%s: shard path too long", path);
            goto done;
        }
        if (load_file(m, shard, seen, wm, e->valuestring, err, errlen)) goto done;
    }
    rc = 0;
done:
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
    char *seen = calloc((size_t)m->num_tensors, 1);
    if (!seen) {
        snprintf(err, errlen, "%s: out of memory", dir);
        llama_free(m);
        return -1;
    }
    /* as from_pretrained: model.safetensors first, else the sharded index */
    int rc;
    const char *what = path;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, F_OK) == 0) {
        rc = load_file(m, path, seen, NULL, NULL, err, errlen);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (access(path, F_OK) != 0) {
            snprintf(err, errlen, "%s: no model.safetensors or model.safetensors.index.json", dir);
            rc = -1;
        } else {
            rc = load_sharded(m, dir, path, seen, err, errlen);
        }
    }
    for (int i = 0; rc == 0 && i < m->num_tensors; i++)
        if (!seen[i]) {
            snprintf(err, errlen, "%s: missing tensor '%s'", what, m->tensors[i].name);
            rc = -1;
        }
    free(seen);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        if (access(path, F_OK) == 0) {
            m->generation_config = llama_read_file(path, NULL, err, errlen);
            cJSON *g = m->generation_config ? cJSON_Parse(m->generation_config) : NULL;
            if (!m->generation_config) rc = -1;
            else if (!cJSON_IsObject(g)) {
                snprintf(err, errlen, "%s: not a JSON object", path);
                rc = -1;
            }
            cJSON_Delete(g);
        }
    }
    if (rc) llama_free(m);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Saving
 */

typedef struct {
    const llama_model *m;
    int bf16;
    int t0, t1;      /* the tensors [t0, t1) of m->tensors go into this file */
} save_ctx;

static int write_safetensors(FILE *f, const void *vctx, char *err, size_t errlen) {
    const save_ctx *ctx = vctx;
    const llama_model *m = ctx->m;
    size_t esize = ctx->bf16 ? 2 : 4;
    /* header: each entry is < 256 bytes */
    size_t cap = 64 + (size_t)(ctx->t1 - ctx->t0) * 256, at = 0;
    char *h = malloc(cap + 8);
    if (!h) {
        snprintf(err, errlen, "out of memory for the header");
        return -1;
    }
    at += (size_t)snprintf(h + at, cap - at, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (int i = ctx->t0; i < ctx->t1; i++) {
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
    for (int i = ctx->t0; ok && i < ctx->t1; i++) {
        const llama_tensor *t = &m->tensors[i];
        if (!ctx->bf16) {
            ok = fwrite(t->data, 4, t->numel, f) == t->numel;
            continue;
        }
        for (size_t j = 0; ok && j < t->numel; j += 4096) {
            size_t n = t->numel - j < 4096 ? t->numel - j : 4096;
            for (size_t k = 0; k < n; k++) buf[k] = llama_f32_to_bf16(t->data[j + k]);
            ok = fwrite(buf, 2, n, f) == n;
        }
    }
    if (!ok) {
        snprintf(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int write_text(FILE *f, const void *ctx, char *err, size_t errlen) {
    const char *text = ctx;
    size_t n = strlen(text);
    if (fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF) {
        snprintf(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* 1 if name is "model-DDDDD-of-DDDDD.safetensors" (any digit counts), the shard names save_pretrained
 * uses; with keep_total > 0, 0 for shards of exactly that many (the ones this save wrote). */
static int stale_shard_name(const char *name, int keep_total) {
    int i, total = 0, digits = 0;
    if (strncmp(name, "model-", 6) != 0) return 0;
    const char *p = name + 6;
    for (i = 0; isdigit((unsigned char)p[i]); i++) {}
    if (i == 0 || strncmp(p + i, "-of-", 4) != 0) return 0;
    p += i + 4;
    for (; isdigit((unsigned char)p[digits]); digits++) total = total * 10 + (p[digits] - '0');
    if (digits == 0 || strcmp(p + digits, ".safetensors") != 0) return 0;
    return keep_total <= 0 || total != keep_total;
}

/* Removes the weight files of an earlier save in another layout: with nshards == 0 (single file
 * written) the index and every shard; with nshards > 0, model.safetensors and shards of another
 * count. */
static void remove_stale(const char *dir, int nshards) {
    char path[4096];
    if (nshards > 0) snprintf(path, sizeof path, "%s/model.safetensors", dir);
    else snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    unlink(path);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (stale_shard_name(e->d_name, nshards)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

int llama_save(const llama_model *m, const char *dir, int bf16, char *err, size_t errlen) {
    return llama_save_ex(m, dir, bf16, LLAMA_DEFAULT_MAX_SHARD_BYTES, err, errlen);
}

int llama_find_nonfinite(const llama_model *m, size_t *index) {
    for (int t = 0; t < m->num_tensors; t++)
        for (size_t i = 0; i < m->tensors[t].numel; i++)
            if (!isfinite(m->tensors[t].data[i])) {
                if (index) *index = i;
                return t;
            }
    return -1;
}

int llama_save_ex(const llama_model *m, const char *dir, int bf16, size_t max_shard_bytes, char *err, size_t errlen) {
    char path[4096];
    char msg[512];
    size_t bad_at = 0;
    int bad = llama_find_nonfinite(m, &bad_at);
    if (bad >= 0) {
        snprintf(err, errlen, "%s: not saved: tensor '%s' holds a non-finite value (%g at flat index %zu)", dir,
                 m->tensors[bad].name, (double)m->tensors[bad].data[bad_at], bad_at);
        return -1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    size_t esize = bf16 ? 2 : 4, total = 0;
    for (int i = 0; i < m->num_tensors; i++) total += m->tensors[i].numel * esize;
    /* shard boundaries: start[s] .. start[s+1] */
    int *start = malloc(((size_t)m->num_tensors + 1) * sizeof(int));
    if (!start) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    int nshards = 0;
    if (max_shard_bytes == 0 || total <= max_shard_bytes) {
        start[nshards++] = 0;
    } else {
        size_t cur = 0;
        for (int i = 0; i < m->num_tensors; i++) {
            size_t b = m->tensors[i].numel * esize;
            if (i == 0 || (cur > 0 && cur + b > max_shard_bytes)) {
                start[nshards++] = i;
                cur = 0;
            }
            cur += b;
        }
    }
    start[nshards] = m->num_tensors;
    int sharded = nshards > 1, rc = -1;
    cJSON *index = NULL;
    if (sharded) {
        index = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        cJSON_AddObjectToObject(index, "weight_map");
    }
    for (int s = 0; s < nshards; s++) {
        char name[64];
        if (sharded) snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
        else snprintf(name, sizeof name, "model.safetensors");
        snprintf(path, sizeof path, "%s/%s", dir, name);
        save_ctx ctx = {m, bf16, start[s], start[s + 1]};
        if (llama_write_atomic(path, write_safetensors, &ctx, msg, sizeof msg)) {
            snprintf(err, errlen, "%s: %s", path, msg);
            goto done;
        }
        if (sharded)
            for (int i = start[s]; i < start[s + 1]; i++)
                cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(index, "weight_map"), m->tensors[i].name, name);
    }
    if (sharded) {
        /* weight_map sorted by name, as save_pretrained writes it */
        cJSON *wm = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
        cJSON *sorted = cJSON_CreateObject();
        for (;;) {
            cJSON *best = NULL;
            for (cJSON *e = wm->child; e; e = e->next)
                if (!best || strcmp(e->string, best->string) < 0) best = e;
            if (!best) break;
            cJSON_AddItemToObject(sorted, best->string, cJSON_DetachItemViaPointer(wm, best));
        }
        cJSON_ReplaceItemInObjectCaseSensitive(index, "weight_map", sorted);
        char *text = cJSON_Print(index);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (!text) {
            snprintf(err, errlen, "%s: out of memory printing JSON", path);
            goto done;
        }
        int wrc = llama_write_atomic(path, write_text, text, msg, sizeof msg);
        cJSON_free(text);
        if (wrc) {
            snprintf(err, errlen, "%s: %s", path, msg);
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (llama_config_to_json_dtype(&m->cfg, path, bf16 ? "bfloat16" : "float32", err, errlen)) goto done;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (llama_generation_config_to_json(&m->cfg, m->generation_config, path, err, errlen)) goto done;
    remove_stale(dir, sharded ? nshards : 0);
    rc = 0;
done:
    cJSON_Delete(index);
    free(start);
    return rc;
}
