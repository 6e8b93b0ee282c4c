/*
 * bench/bench_tokenizer.c: tokenizer throughput (model/tokenizer.c) on Python-like text.
 *
 * Usage: bench_tokenizer [TOKENIZER] [TEXT_FILE] [--write-corpus PATH]
 *   TOKENIZER  folder or tokenizer.json; default $GRPO2048_SOURCE_DIR/../shared/fixtures/hf/qwen3
 *              (GRPO2048_SOURCE_DIR defaults to ".").
 *   TEXT_FILE  text to encode; default: the repo's C/Python sources (model/, game2048/, rewards/,
 *              trainer/, tools/, tests/, bench/) followed by generated Python 2048 strategies, 4 MiB
 *              in all. --write-corpus saves that text so tools/bench_tokenizer.py can time Hugging
 *              Face tokenizers on the same bytes.
 * Prints: load time; MB/s (1 MB = 1e6 bytes) and tokens/s encoding the whole text in one call with a
 * cold merge cache, again with a warm cache, in 2 KiB calls (prompt-sized), and decoding.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/tokenizer.h"

#define CORPUS_BYTES (4u << 20)

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

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

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

int main(int argc, char **argv) {
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    if (!src || !*src) src = ".";
    char tok_path[4096];
    snprintf(tok_path, sizeof tok_path, "%s/../shared/fixtures/hf/qwen3", src);
    const char *text_path = NULL, *write_path = NULL;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--write-corpus") && i + 1 < argc) write_path = argv[++i];
        else if (pos == 0) { snprintf(tok_path, sizeof tok_path, "%s", argv[i]); pos++; }
        else if (pos == 1) { text_path = argv[i]; pos++; }
        else { fprintf(stderr, "usage: %s [TOKENIZER] [TEXT_FILE] [--write-corpus PATH]\n", argv[0]); return 2; }
    }

    buf text = { 0 };
    if (text_path) {
        if (read_into(&text, text_path) < 0) { fprintf(stderr, "bench_tokenizer: cannot read %s\n", text_path); return 1; }
    } else {
        static const char *const dirs[] = { "model", "game2048", "rewards", "trainer", "tools", "tests/model", "bench" };
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && text.n < CORPUS_BYTES / 2; i++) add_sources(&text, src, dirs[i]);
        add_generated(&text, CORPUS_BYTES);
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
    printf("text: %zu bytes%s%s\n", text.n, text_path ? " from " : " (repo sources + generated Python)",
           text_path ? text_path : "");

    int cap = (int)(text.n / 2 + 1024);
    int *ids = malloc(sizeof(int) * (size_t)cap);
    double mb = text.n / 1e6;
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        t0 = now_s();
        n = tokenizer_encode(t, text.p, text.n, ids, cap);
        double dt = now_s() - t0;
        if (n < 0 || n > cap) { fprintf(stderr, "bench_tokenizer: encode failed (%d)\n", n); return 1; }
        printf("encode, one call, %s cache: %8.2f MB/s  %10.0f tokens/s  (%d tokens, %.2f bytes/token)\n",
               pass ? "warm" : "cold", mb / dt, n / dt, n, (double)text.n / n);
    }
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
    double dt = now_s() - t0;
    printf("encode, 2 KiB calls, warm cache: %8.2f MB/s  %10.0f tokens/s\n", mb / dt, total / dt);
    n = tokenizer_encode(t, text.p, text.n, ids, cap);
    char *out = malloc(text.n + 1);
    t0 = now_s();
    int dl = tokenizer_decode(t, ids, n, 0, out, text.n + 1);
    dt = now_s() - t0;
    printf("decode: %8.2f MB/s  %10.0f tokens/s  (round trip %s)\n", mb / dt, n / dt,
           (size_t)dl == text.n && memcmp(out, text.p, text.n) == 0 ? "exact" : "DIFFERS (NFC or invalid input?)");
    free(out);
    free(ids);
    free(text.p);
    tokenizer_free(t);
    return 0;
}
