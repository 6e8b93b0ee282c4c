/*
 * trainer/checkpoint.c: writing checkpoint folders atomically and reading them back (see checkpoint.h).
 *
 * Parts: file helpers (mkdir -p, rm -rf, atomic copy and write), checkpoint_save (assemble DIR.tmp,
 * rename into place, fsync the parent), trainer_state.json in and out, the compatibility checks a
 * resume runs (architecture, config keys), and listing / rotating the checkpoint-N folders.
 */
#include "trainer/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

int make_dirs(const char *path, char *err, size_t errlen) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create folder: %s", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create folder: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}

int run_lock_acquire(const char *output_dir, char *err, size_t errlen) {
    if (make_dirs(output_dir, err, errlen) != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/.lock", output_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open the run lock: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "%s is in use by another grpo2048 run (pid %s); wait for it to finish or choose "
                     "another output_dir", output_dir, pid[0] ? pid : "unknown");
        else
            snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(e));
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without the pid in it; only the message of a second run would lack it. */
    }
    return fd;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int copy_file_atomic(const char *src, const char *dst, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    FILE *in = fopen(src, "rb");
    if (!in) { snprintf(err, errlen, "%s: cannot open: %s", src, strerror(errno)); return -1; }
    FILE *out = fopen(tmp, "wb");
    if (!out) { snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno)); fclose(in); return -1; }
    char buf[1 << 16];
    size_t k;
    int ok = 1;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) if (fwrite(buf, 1, k, out) != k) { ok = 0; break; }
    ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fileno(out)) == 0;
    fclose(in);
    ok = (fclose(out) == 0) && ok;
    if (!ok || rename(tmp, dst) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", dst, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno)); return -1; }
    int ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_trainer_state(const char *path, const checkpoint_info *info, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "grpo2048 checkpoint");
    cJSON_AddNumberToObject(o, "version", 2);
    cJSON_AddStringToObject(o, "kind", info->kind ? info->kind : "grpo");
    cJSON_AddNumberToObject(o, "global_step", info->global_step);
    cJSON_AddNumberToObject(o, "run_id", info->run_id);
    cJSON_AddNumberToObject(o, "num_input_tokens_seen", info->num_input_tokens_seen);
    cJSON_AddBoolToObject(o, "has_generation", info->has_generation);
    cJSON_AddBoolToObject(o, "has_ref_model", info->has_ref_model);
    cJSON_AddNumberToObject(o, "world_size", info->world_size > 0 ? info->world_size : 1);
    cJSON *vals = cJSON_AddObjectToObject(o, "config_values");
    if (info->config) {
        char buf[16384];
        for (int i = 0; i < config_num_keys(); i++) {
            const char *k = config_key_name(i);
            config_format_value(info->config, k, buf, sizeof buf);
            cJSON_AddStringToObject(vals, k, buf);
        }
    }
    cJSON_AddStringToObject(o, "config", info->config_yaml ? info->config_yaml : "");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    int rc = write_file_atomic(path, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* dir + "/" + name into out; -1 with a message when the path does not fit. */
static int join(char *out, size_t n, const char *dir, const char *name, char *err, size_t errlen) {
    int k = snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) { snprintf(err, errlen, "path too long: %s/%s", dir, name); return -1; }
    return 0;
}

/* The tokenizer files a Hugging Face model folder may hold (transformers 5 keeps the chat template in
 * chat_template.jinja; older ones in tokenizer_config.json or chat_template.json). */
static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
    "chat_template.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
};

int copy_tokenizer_files(const char *src_dir, const char *dst_dir, char *err, size_t errlen) {
    char src[4096], dst[4096];
    int copied = 0;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        if (join(src, sizeof src, src_dir, tokenizer_files[i], err, errlen) != 0) return -1;
        if (join(dst, sizeof dst, dst_dir, tokenizer_files[i], err, errlen) != 0) return -1;
        if (access(src, R_OK) != 0) continue;
        struct stat a, b;
        if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            copied++;   /* the same file (saving into the folder it came from) */
            continue;
        }
        if (copy_file_atomic(src, dst, err, errlen) != 0) return -1;
        copied++;
    }
    return copied;
}

int checkpoint_save(const char *dir, const llama_model *m, const adamw_state *opt, const char *tokenizer_dir,
                    const checkpoint_info *info, checkpoint_extra_fn extra, void *ctx, char *err, size_t errlen) {
    char tmp[4096], old[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    snprintf(old, sizeof old, "%s.old", dir);
    remove_tree(tmp);
    if (make_dirs(tmp, err, errlen) != 0) goto fail;
    if (llama_save(m, tmp, 0, err, errlen) != 0) goto fail;
    if (copy_tokenizer_files(tokenizer_dir, tmp, err, errlen) < 0) goto fail;
    if (opt) {
        if (join(path, sizeof path, tmp, "optimizer.bin", err, errlen) != 0) goto fail;
        if (adamw_save(opt, path, err, errlen) != 0) goto fail;
    }
    if (extra && extra(tmp, ctx, err, errlen) != 0) goto fail;
    if (join(path, sizeof path, tmp, "trainer_state.json", err, errlen) != 0) goto fail;
    if (write_trainer_state(path, info, err, errlen) != 0) goto fail;
    fsync_dir(tmp);
    /* Swap in: an existing DIR moves aside first, so at every instant one complete folder exists. */
    remove_tree(old);
    struct stat st;
    int had_old = stat(dir, &st) == 0;
    if (had_old && rename(dir, old) != 0) {
        snprintf(err, errlen, "%s: cannot move the previous checkpoint aside: %s", dir, strerror(errno));
        goto fail;
    }
    if (rename(tmp, dir) != 0) {
        snprintf(err, errlen, "%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
        if (had_old) rename(old, dir);   /* put the previous one back */
        goto fail;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash) { *slash = '\0'; fsync_dir(parent[0] ? parent : "/"); }
    else fsync_dir(".");
    if (had_old) remove_tree(old);
    return 0;
fail:
    remove_tree(tmp);   /* no half-written (or empty) DIR.tmp is left behind */
    return -1;
}

/* ------------------------------------------------------------------------------------------------ */
/* Reading back                                                                                      */

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) { free(buf); buf = NULL; break; }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* A file of the checkpoint that must exist and not be empty. */
static int need_file(const char *dir, const char *name, char *err, size_t errlen) {
    char path[4096];
    if (join(path, sizeof path, dir, name, err, errlen) != 0) return -1;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "checkpoint %s is incomplete: %s is missing", dir, name);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "checkpoint %s is truncated: %s is empty", dir, name);
        return -1;
    }
    return 0;
}

void checkpoint_state_free(checkpoint_state *st) {
    for (int i = 0; i < st->nvalues; i++) { free(st->keys[i]); free(st->values[i]); }
    free(st->keys);
    free(st->values);
    free(st->config_yaml);
    memset(st, 0, sizeof *st);
}

int checkpoint_read_state(const char *dir, checkpoint_state *st, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "checkpoint %s: not a folder", dir);
        return -1;
    }
    char path[4096];
    if (join(path, sizeof path, dir, "trainer_state.json", err, errlen) != 0) return -1;
    size_t len = 0;
    char *text = read_text(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s is not a checkpoint: trainer_state.json is missing (it is written last, so a "
                 "folder without it was never completed)", dir);
        return -1;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o) {
        snprintf(err, errlen, "%s: not valid JSON (the file is damaged or truncated)", path);
        return -1;
    }
    int rc = -1;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "global_step");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(o, "run_id");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, "num_input_tokens_seen");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(o, "has_generation");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "has_ref_model");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(o, "config_values");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "grpo2048 checkpoint") || !cJSON_IsNumber(ver)) {
        snprintf(err, errlen, "%s: written by an older grpo2048 (no \"format\"/\"version\"): it holds weights "
                 "but not the state a resume needs; start a new run from it with model_name_or_path=%s", path, dir);
        goto done;
    }
    if (ver->valueint != 2) {
        snprintf(err, errlen, "%s: checkpoint format version %d, this grpo2048 reads version 2", path, ver->valueint);
        goto done;
    }
    if (!cJSON_IsString(kind) || !cJSON_IsNumber(step) || step->valuedouble < 0 || !cJSON_IsNumber(run) ||
        !cJSON_IsNumber(tok) || !cJSON_IsBool(gen) || !cJSON_IsBool(ref) || !cJSON_IsObject(vals) ||
        !cJSON_IsString(cfg)) {
        snprintf(err, errlen, "%s: expected fields kind, global_step, run_id, num_input_tokens_seen, has_generation, "
                 "has_ref_model, config_values and config", path);
        goto done;
    }
    snprintf(st->kind, sizeof st->kind, "%s", kind->valuestring);
    st->global_step = step->valueint;
    st->run_id = run->valueint;
    st->num_input_tokens_seen = tok->valuedouble;
    st->has_generation = cJSON_IsTrue(gen);
    st->has_ref_model = cJSON_IsTrue(ref);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(o, "world_size");   /* absent before data-parallel runs */
    st->world_size = cJSON_IsNumber(ws) && ws->valueint > 0 ? ws->valueint : 1;
    st->config_yaml = strdup(cfg->valuestring);
    int n = cJSON_GetArraySize(vals);
    st->keys = calloc(n ? n : 1, sizeof(char *));
    st->values = calloc(n ? n : 1, sizeof(char *));
    if (!st->config_yaml || !st->keys || !st->values) { snprintf(err, errlen, "out of memory"); goto done; }
    const cJSON *v;
    cJSON_ArrayForEach(v, vals) {
        if (!cJSON_IsString(v)) {
            snprintf(err, errlen, "%s: config_values.%s is not a string", path, v->string);
            goto done;
        }
        st->keys[st->nvalues] = strdup(v->string);
        st->values[st->nvalues] = strdup(v->valuestring);
        st->nvalues++;
        if (!st->keys[st->nvalues - 1] || !st->values[st->nvalues - 1]) { snprintf(err, errlen, "out of memory"); goto done; }
    }
    if (need_file(dir, "config.json", err, errlen) || need_file(dir, "model.safetensors", err, errlen) ||
        need_file(dir, "optimizer.bin", err, errlen) ||
        (st->has_generation && need_file(dir, "generation.bin", err, errlen)) ||
        (st->has_ref_model && (need_file(dir, "ref_model/config.json", err, errlen) ||
                               need_file(dir, "ref_model/model.safetensors", err, errlen))))
        goto done;
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc != 0) checkpoint_state_free(st);
    return rc;
}

const char *checkpoint_state_value(const checkpoint_state *st, const char *key) {
    for (int i = 0; i < st->nvalues; i++) if (!strcmp(st->keys[i], key)) return st->values[i];
    return NULL;
}

int checkpoint_check_architecture(const char *ckpt_dir, const char *model_dir, char *err, size_t errlen) {
    char a_path[4096], b_path[4096], e[1024];
    llama_config a, b;
    snprintf(a_path, sizeof a_path, "%s/config.json", ckpt_dir);
    snprintf(b_path, sizeof b_path, "%s/config.json", model_dir);
    if (llama_config_from_json(&a, a_path, e, sizeof e) != 0) {
        snprintf(err, errlen, "checkpoint %s: %s", ckpt_dir, e);
        return -1;
    }
    if (llama_config_from_json(&b, b_path, e, sizeof e) != 0) {
        snprintf(err, errlen, "model_name_or_path: %s", e);
        return -1;
    }
    if (strcmp(a.architecture, b.architecture)) {
        snprintf(err, errlen, "checkpoint %s is from another architecture: %s, while model_name_or_path %s is a %s",
                 ckpt_dir, a.architecture, model_dir, b.architecture);
        return -1;
    }
    struct { const char *name; double x, y; } f[] = {
        {"vocab_size", a.vocab_size, b.vocab_size},
        {"hidden_size", a.hidden_size, b.hidden_size},
        {"intermediate_size", a.intermediate_size, b.intermediate_size},
        {"num_hidden_layers", a.num_hidden_layers, b.num_hidden_layers},
        {"num_attention_heads", a.num_attention_heads, b.num_attention_heads},
        {"num_key_value_heads", a.num_key_value_heads, b.num_key_value_heads},
        {"head_dim", a.head_dim, b.head_dim},
        {"tie_word_embeddings", a.tie_word_embeddings, b.tie_word_embeddings},
        {"attention_bias", a.attention_bias, b.attention_bias},
        {"rope_theta", a.rope_theta, b.rope_theta},
        {"rms_norm_eps", a.rms_norm_eps, b.rms_norm_eps},
        {"max_position_embeddings", a.max_position_embeddings, b.max_position_embeddings},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].x != f[i].y) {
            snprintf(err, errlen, "checkpoint %s is from another architecture: its %s is %.9g, model_name_or_path "
                     "%s has %.9g", ckpt_dir, f[i].name, f[i].x, model_dir, f[i].y);
            return -1;
        }
    }
    return 0;
}

static void appendf(char *buf, size_t n, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);
    va_end(ap);
}

static int in_list(const char *const *list, const char *key) {
    for (; list && *list; list++) if (!strcmp(*list, key)) return 1;
    return 0;
}

/* A value for a message: at most 40 characters. */
static void short_value(char *out, size_t n, const char *v) {
    if (strlen(v) <= 40) snprintf(out, n, "%s", v);
    else snprintf(out, n, "%.37s...", v);
}

int checkpoint_check_config(const checkpoint_state *st, const grpo_config *c, const char *const *must_match,
                            const char *const *ignore, char *changed, size_t changedlen, char *err, size_t errlen) {
    char now[16384], a[64], b[64];
    err[0] = '\0';
    if (changed && changedlen) changed[0] = '\0';
    int bad = 0;
    for (const char *const *k = must_match; *k; k++) {
        const char *was = checkpoint_state_value(st, *k);
        if (config_format_value(c, *k, now, sizeof now) != 0) continue;
        if (!was || strcmp(was, now) != 0) {
            short_value(a, sizeof a, was ? was : "(not recorded)");
            short_value(b, sizeof b, now);
            appendf(err, errlen, "%s%s=%s in the checkpoint, %s in this config", bad ? "; " : "", *k, a, b);
            bad++;
        }
    }
    if (bad) {
        char list[1024] = "";
        for (const char *const *k = must_match; *k; k++) appendf(list, sizeof list, "%s%s", k == must_match ? "" : ", ", *k);
        char head[16384];
        snprintf(head, sizeof head, "%s", err);
        snprintf(err, errlen, "the checkpoint was written with an incompatible config: %s (a resumed run needs the "
                 "same %s; start a new run in another output_dir to change them)", head, list);
        return -1;
    }
    if (changed && changedlen) {
        int n = 0;
        for (int i = 0; i < st->nvalues; i++) {
            const char *k = st->keys[i];
            if (in_list(must_match, k) || in_list(ignore, k)) continue;
            if (config_format_value(c, k, now, sizeof now) != 0) continue;
            if (strcmp(st->values[i], now) != 0) {
                short_value(a, sizeof a, st->values[i]);
                short_value(b, sizeof b, now);
                appendf(changed, changedlen, "%s%s: %s -> %s", n++ ? "; " : "", k, a, b);
            }
        }
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int checkpoint_list(const char *output_dir, int *steps, int max) {
    DIR *d = opendir(output_dir);
    if (!d) return 0;
    int n = 0, cap = 64;
    int *all = malloc(sizeof(int) * cap);
    struct dirent *e;
    while (all && (e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, "checkpoint-", 11) != 0) continue;
        char *end;
        long k = strtol(name + 11, &end, 10);
        if (end == name + 11 || *end || k < 0 || k > 1000000000L) continue;   /* also skips .tmp / .old */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/trainer_state.json", output_dir, name);
        if (access(path, R_OK) != 0) continue;
        if (n == cap) {
            int *p = realloc(all, sizeof(int) * cap * 2);
            if (!p) break;
            all = p;
            cap *= 2;
        }
        all[n++] = (int)k;
    }
    closedir(d);
    if (!all) return 0;
    qsort(all, (size_t)n, sizeof(int), cmp_int);
    for (int i = 0; i < n && i < max; i++) steps[i] = all[i];
    free(all);
    return n;
}

int checkpoint_find_latest(const char *output_dir, char *out, size_t outlen, char *err, size_t errlen) {
    int n = checkpoint_list(output_dir, NULL, 0);
    if (n == 0) {
        snprintf(err, errlen, "no checkpoint to resume from in %s (no checkpoint-N folder with trainer_state.json)",
                 output_dir);
        return -1;
    }
    int *steps = malloc(sizeof(int) * (size_t)n);
    if (!steps) { snprintf(err, errlen, "out of memory"); return -1; }
    n = checkpoint_list(output_dir, steps, n);
    snprintf(out, outlen, "%s/checkpoint-%d", output_dir, steps[n - 1]);
    free(steps);
    return 0;
}

int checkpoint_rotate(const char *output_dir, int limit, int keep_step) {
    if (limit <= 0) return 0;
    int n = checkpoint_list(output_dir, NULL, 0);
    if (n <= limit) return 0;
    int *steps = malloc(sizeof(int) * (size_t)n);
    if (!steps) return 0;
    n = checkpoint_list(output_dir, steps, n);
    int deleted = 0, remaining = n;
    for (int i = 0; i < n && remaining > limit; i++) {
        if (steps[i] == keep_step) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/checkpoint-%d", output_dir, steps[i]);
        if (remove_tree(path) == 0) { deleted++; remaining--; }
    }
    free(steps);
    return deleted;
}
