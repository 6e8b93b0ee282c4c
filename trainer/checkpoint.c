/*
 * trainer/checkpoint.c: writing checkpoint folders atomically (see checkpoint.h).
 */
#include "trainer/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int write_trainer_state(const char *path, int step, const char *config_yaml, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "global_step", step);
    cJSON_AddStringToObject(o, "config", config_yaml ? config_yaml : "");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f) ok = (fclose(f) == 0) && ok;
    free(text);
    if (!ok) { snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno)); return -1; }
    return 0;
}

/* dir + "/" + name into out; -1 with a message when the path does not fit. */
static int join(char *out, size_t n, const char *dir, const char *name, char *err, size_t errlen) {
    int k = snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) { snprintf(err, errlen, "path too long: %s/%s", dir, name); return -1; }
    return 0;
}

int checkpoint_save(const char *dir, const llama_model *m, const adamw_state *opt, const char *tokenizer_dir,
                    int step, const char *config_yaml, char *err, size_t errlen) {
    char tmp[4096], old[4096], path[4096], src[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    snprintf(old, sizeof old, "%s.old", dir);
    remove_tree(tmp);
    if (make_dirs(tmp, err, errlen) != 0) return -1;
    if (llama_save(m, tmp, 0, err, errlen) != 0) return -1;
    static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        if (join(src, sizeof src, tokenizer_dir, tok_files[i], err, errlen) != 0) return -1;
        if (access(src, R_OK) != 0) continue;
        if (join(path, sizeof path, tmp, tok_files[i], err, errlen) != 0) return -1;
        if (copy_file_atomic(src, path, err, errlen) != 0) return -1;
    }
    if (opt) {
        if (join(path, sizeof path, tmp, "optimizer.bin", err, errlen) != 0) return -1;
        if (adamw_save(opt, path, err, errlen) != 0) return -1;
    }
    if (join(path, sizeof path, tmp, "trainer_state.json", err, errlen) != 0) return -1;
    if (write_trainer_state(path, step, config_yaml, err, errlen) != 0) return -1;
    fsync_dir(tmp);
    /* Swap in: an existing DIR moves aside first, so at every instant one complete folder exists. */
    remove_tree(old);
    struct stat st;
    int had_old = stat(dir, &st) == 0;
    if (had_old && rename(dir, old) != 0) {
        snprintf(err, errlen, "%s: cannot move the previous checkpoint aside: %s", dir, strerror(errno));
        return -1;
    }
    if (rename(tmp, dir) != 0) {
        snprintf(err, errlen, "%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
        return -1;
    }
    if (had_old) remove_tree(old);
    return 0;
}
