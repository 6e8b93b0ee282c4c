/*
 * bench/bench_tokenizer.c: tokenizer throughput (model/tokenizer.c) on a large Python source corpus,
 * next to Hugging Face `tokenizers` on the same bytes in the same run.
 *
 * Usage: bench_tokenizer [TOKENIZER] [TEXT_FILE] [--write-corpus PATH] [--no-python]
 *   TOKENIZER  folder or tokenizer.json; default $GRPO2048_SOURCE_DIR/../shared/fixtures/hf/qwen3
 *              (GRPO2048_SOURCE_DIR defaults to ".").
 *   TEXT_FILE  text to encode. Default: the Python standard library's sources (every *.py under
 *              /usr/lib/python3.11, or $GRPO2048_BENCH_CORPUS_DIR, recursively in path order, skipping
 *              site-/dist-packages and files that are not valid UTF-8) up to 8 MiB; when none are
 *              found, the repo's sources followed by generated Python 2048 strategies (4 MiB).
 *   --write-corpus PATH  also save the text (tools/bench_tokenizer.py can be run on it by hand).
 *   --no-python          skip the Hugging Face comparison.
 *
 * Prints: load time; MB/s (1 MB = 1e6 bytes) and tokens/s encoding the whole text in one
 * tokenizer_encode call with a cold merge cache, again with a warm cache, in 2 KiB calls
 * (prompt-sized), and decoding. Then, unless --no-python, it writes the text to a temporary file and
 * runs `$GRPO2048_PYTHON tools/bench_tokenizer.py --json TOKENIZER FILE` (GRPO2048_PYTHON defaults to
 * python3) through popen: that times `tokenizers`' Tokenizer.encode(text, add_special_tokens=False)
 * on the whole text in ONE call (single-threaded: tokenizers parallelizes only across the inputs of
 * encode_batch), cold and then warm, and, for reference only, encode_batch over the 2 KiB pieces
 * (all cores). The ratio lines divide grpo2048's MB/s by tokenizers' for the same method, and a
 * 64-bit FNV-1a hash of the ids says whether both produced the same tokens. When `tokenizers` is
 * not importable (or the script fails) it says so and prints no ratio.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "model/tokenizer.h"

#define CORPUS_BYTES (4u << 20)
#define STDLIB_BYTES (8u << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct { char *p; size_t n, cap; } buf;

static void buf_add(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1 << 20;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "bench_tokenizer: out of memory\n"); exit(1); }
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static int read_into(buf *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(b, tmp, r);
    fclose(f);
    return 0;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF) without NUL. */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) { i++; continue; }
        int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (!len || c > 0xf4 || i + len > n) return 0;
        unsigned cp = c & (0x3f >> (len - 1));
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += len;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Appends every .py file under dir (recursively, entries in name order) while b holds less than
 * limit bytes; skips site-packages, dist-packages, __pycache__ and files that are not valid UTF-8.
 * Returns the number of files added. */
static int add_python_tree(buf *b, const char *dir, size_t limit) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    int n = 0, cap = 0, added = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "site-packages") || !strcmp(e->d_name, "dist-packages") ||
            !strcmp(e->d_name, "__pycache__"))
            continue;
        if (n == cap) names = realloc(names, sizeof *names * (size_t)(cap = cap ? 2 * cap : 256));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (b->n < limit && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                added += add_python_tree(b, path, limit);
            } else if (S_ISREG(st.st_mode) && strlen(names[i]) > 3 && !strcmp(names[i] + strlen(names[i]) - 3, ".py")) {
                buf one = {0};
                if (read_into(&one, path) == 0 && one.n && valid_utf8((const unsigned char *)one.p, one.n)) {
                    size_t take = one.n;
                    if (b->n + take > limit) { /* cut at a line end, keeping the text valid */
                        take = limit - b->n;
                        while (take > 0 && one.p[take - 1] != '\n') take--;
                    }
                    buf_add(b, one.p, take);
                    added++;
                }
                free(one.p);
            }
        }
        free(names[i]);
    }
    free(names);
    return added;
}

/* Appends every .c/.h/.py file of dir (not recursive), in name order. */
static void add_sources(buf *b, const char *root, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    DIR *d = opendir(path);
    if (!d) return;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot && (!strcmp(dot, ".c") || !strcmp(dot, ".h") || !strcmp(dot, ".py"))) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", root, dir, names[i]);
        read_into(b, path);
        free(names[i]);
    }
}

/* Deterministic Python 2048 strategies (xorshift-driven variations) until b holds `target` bytes. */
static void add_generated(buf *b, size_t target) {
    static const char *const moves[] = { "\"W\"", "\"A\"", "\"S\"", "\"D\"" };
    static const char *const names[] = { "board", "grid", "cells", "state" };
    static const char *const helpers[] = { "empty_cells", "merge_score", "monotonicity", "corner_bonus", "smoothness" };
    uint64_t x = 0x2048;
    char tmp[2048];
    for (int k = 0; b->n < target; k++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const char *bd = names[x % 4], *h = helpers[(x >> 8) % 5];
        int n = snprintf(tmp, sizeof tmp,
            "def strategy_%d(%s):\n"
            "    \"\"\"Variant %d: weigh %s, then prefer %s.\"\"\"\n"
            "    best, best_move = -1e9, %s\n"
            "    for move in (\"W\", \"A\", \"S\", \"D\"):\n"
            "        nxt = simulate(%s, move)\n"
            "        if nxt == %s:\n"
            "            continue  # the move changes nothing\n"
            "        score = %d * %s(nxt) + %d.%d * max(max(r) for r in nxt)\n"
            "        if score > best:\n"
            "            best, best_move = score, move\n"
            "    return best_move if best > %d else %s\n\n",
            k, bd, k, h, moves[(x >> 16) % 4], moves[(x >> 20) % 4], bd, bd, (int)(x >> 24) % 97 + 1, h,
            (int)(x >> 32) % 10, (int)(x >> 40) % 100, (int)(x >> 44) % 4096, moves[(x >> 50) % 4]);
        buf_add(b, tmp, (size_t)n);
    }
}

/* FNV-1a 64 over the ids as little-endian uint32 (tools/bench_tokenizer.py computes the same). */
static uint64_t ids_hash(const int *ids, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (v >> (8 * k)) & 0xffu;
            h *= 1099511628211ull;
        }
    }
    return h;
}

static double json_num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : -1.0;
}

/* Runs tools/bench_tokenizer.py --json on the corpus and prints the comparison. */
static void compare_python(const char *src, const char *tok_path, const buf *text, int ntok, uint64_t hash,
                           double c_cold, double c_warm, double c_chunks) {
    const char *py = getenv("GRPO2048_PYTHON");
    if (!py || !*py) py = "python3";
    char corpus[] = "/tmp/grpo2048_bench_corpus_XXXXXX";
    int fd = mkstemp(corpus);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f || fwrite(text->p, 1, text->n, f) != text->n || fclose(f) != 0) {
        printf("Hugging Face tokenizers: NOT compared (cannot write a temporary corpus file)\n");
        if (fd >= 0) unlink(corpus);
        return;
    }
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tools/bench_tokenizer.py' --json '%s' '%s' 2>&1", py, src, tok_path, corpus);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    char line[8192];
    cJSON *res = NULL;
    buf out = {0};
    while (p && fgets(line, sizeof line, p)) {
        if (!strncmp(line, "JSON ", 5)) {
            cJSON_Delete(res);
            res = cJSON_Parse(line + 5);
        } else {
            buf_add(&out, line, strlen(line));
        }
    }
    int status = p ? pclose(p) : -1;
    unlink(corpus);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(res, "error");
    if (!res || cJSON_IsString(error) || status != 0) {
        printf("Hugging Face tokenizers: NOT available, no ratio (%s --json with %s: %s)\n",
               "tools/bench_tokenizer.py", py,
               cJSON_IsString(error) ? error->valuestring : out.n ? out.p : "no output");
        cJSON_Delete(res);
        free(out.p);
        return;
    }
    fputs(out.p ? out.p : "", stdout);
    double py_cold = json_num(res, "encode_cold_mbs"), py_warm = json_num(res, "encode_warm_mbs");
    double py_chunks = json_num(res, "encode_chunks_mbs"), py_batch = json_num(res, "encode_batch_mbs");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(res, "ids_fnv1a");
    char mine[32];
    snprintf(mine, sizeof mine, "%016llx", (unsigned long long)hash);
    int same = cJSON_IsString(hs) && !strcmp(hs->valuestring, mine) && (int)json_num(res, "tokens") == ntok;
    printf("\nSame text, same run: grpo2048 vs Hugging Face tokenizers %s (%s)\n",
           cJSON_GetObjectItemCaseSensitive(res, "tokenizers_version")->valuestring,
           cJSON_GetObjectItemCaseSensitive(res, "method")->valuestring);
    printf("  ids: %s (%d tokens here, %d there)\n", same ? "identical" : "DIFFERENT", ntok, (int)json_num(res, "tokens"));
    printf("  whole text, one call, cold cache: %8.2f vs %8.2f MB/s  ratio %.2f\n", c_cold, py_cold, c_cold / py_cold);
    printf("  whole text, one call, warm cache: %8.2f vs %8.2f MB/s  ratio %.2f\n", c_warm, py_warm, c_warm / py_warm);
    printf("  2 KiB calls, warm cache:          %8.2f vs %8.2f MB/s  ratio %.2f\n", c_chunks, py_chunks,
           c_chunks / py_chunks);
    printf("  (tokenizers encode_batch over the 2 KiB pieces, %d threads: %.2f MB/s; grpo2048 single-threaded)\n",
           (int)json_num(res, "batch_threads"), py_batch);
    cJSON_Delete(res);
    free(out.p);
}

int main(int argc, char **argv) {
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    if (!src || !*src) src = ".";
    char tok_path[4096];
    snprintf(tok_path, sizeof tok_path, "%s/../shared/fixtures/hf/qwen3", src);
    const char *text_path = NULL, *write_path = NULL;
    int pos = 0, python = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--write-corpus") && i + 1 < argc) write_path = argv[++i];
        else if (!strcmp(argv[i], "--no-python")) python = 0;
        else if (pos == 0) { snprintf(tok_path, sizeof tok_path, "%s", argv[i]); pos++; }
        else if (pos == 1) { text_path = argv[i]; pos++; }
        else {
            fprintf(stderr, "usage: %s [TOKENIZER] [TEXT_FILE] [--write-corpus PATH] [--no-python]\n", argv[0]);
            return 2;
        }
    }

    buf text = { 0 };
    char what[512];
    if (text_path) {
        if (read_into(&text, text_path) < 0) { fprintf(stderr, "bench_tokenizer: cannot read %s\n", text_path); return 1; }
        snprintf(what, sizeof what, "from %s", text_path);
    } else {
        const char *dir = getenv("GRPO2048_BENCH_CORPUS_DIR");
        if (!dir || !*dir) dir = "/usr/lib/python3.11";
        int files = add_python_tree(&text, dir, STDLIB_BYTES);
        if (files > 0) {
            snprintf(what, sizeof what, "%d Python source files under %s", files, dir);
        } else {
            static const char *const dirs[] = { "model", "game2048", "rewards", "trainer", "tools", "tests/model", "bench" };
            for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && text.n < CORPUS_BYTES / 2; i++)
                add_sources(&text, src, dirs[i]);
            add_generated(&text, CORPUS_BYTES);
            snprintf(what, sizeof what, "repo sources + generated Python (no .py files under %s)", dir);
        }
    }
    if (write_path) {
        FILE *f = fopen(write_path, "wb");
        if (!f || fwrite(text.p, 1, text.n, f) != text.n) { fprintf(stderr, "bench_tokenizer: cannot write %s\n", write_path); return 1; }
        fclose(f);
    }

    char err[512];
    double t0 = now_s();
    tokenizer *t = tokenizer_load(tok_path, err, sizeof err);
    if (!t) { fprintf(stderr, "bench_tokenizer: %s\n", err); return 1; }
    printf("tokenizer %s: vocab %d, loaded in %.3f s\n", tok_path, tokenizer_vocab_size(t), now_s() - t0);
    printf("text: %zu bytes, %s\n", text.n, what);

    int cap = (int)(text.n / 2 + 1024);
    int *ids = malloc(sizeof(int) * (size_t)cap);
    double mb = text.n / 1e6, mbs[2] = {0, 0};
    int n = 0;
    printf("grpo2048 (model/tokenizer.c, one thread):\n");
    for (int pass = 0; pass < 2; pass++) {
        t0 = now_s();
        n = tokenizer_encode(t, text.p, text.n, ids, cap);
        double dt = now_s() - t0;
        if (n < 0 || n > cap) { fprintf(stderr, "bench_tokenizer: encode failed (%d)\n", n); return 1; }
        mbs[pass] = mb / dt;
        printf("  encode, one call, %s cache: %8.2f MB/s  %10.0f tokens/s  (%d tokens, %.2f bytes/token)\n",
               pass ? "warm" : "cold", mb / dt, n / dt, n, (double)text.n / n);
    }
    uint64_t hash = ids_hash(ids, n);
    /* 2 KiB calls, each cut at a newline so pieces are whole lines. */
    t0 = now_s();
    long total = 0;
    for (size_t off = 0; off < text.n;) {
        size_t end = off + 2048 < text.n ? off + 2048 : text.n;
        while (end < text.n && text.p[end - 1] != '\n') end++;
        int k = tokenizer_encode(t, text.p + off, end - off, ids, cap);
        if (k < 0) { fprintf(stderr, "bench_tokenizer: encode failed\n"); return 1; }
        total += k;
        off = end;
    }
    double dt = now_s() - t0, chunk_mbs = mb / dt;
    printf("  encode, 2 KiB calls, warm cache: %8.2f MB/s  %10.0f tokens/s\n", mb / dt, total / dt);
    n = tokenizer_encode(t, text.p, text.n, ids, cap);
    char *out = malloc(text.n + 1);
    t0 = now_s();
    int dl = tokenizer_decode(t, ids, n, 0, out, text.n + 1);
    dt = now_s() - t0;
    printf("  decode: %8.2f MB/s  %10.0f tokens/s  (round trip %s)\n", mb / dt, n / dt,
           (size_t)dl == text.n && memcmp(out, text.p, text.n) == 0 ? "exact" : "differs (NFC-normalized input)");
    free(out);
    if (python) compare_python(src, tok_path, &text, n, hash, mbs[0], mbs[1], chunk_mbs);
    free(ids);
    free(text.p);
    tokenizer_free(t);
    return 0;
}
