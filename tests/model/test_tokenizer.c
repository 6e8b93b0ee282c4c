/*
 * tests/model/test_tokenizer.c: model/tokenizer.c and model/chat_template.c against Hugging Face
 * `tokenizers` reference output.
 *
 * Fixtures (tests/fixtures/tokenizer/, made by tools/make_tokenizer_fixtures.py with tokenizers 0.23):
 *   <name>.jsonl  encode cases {"text","ids"} and decode cases {"decode","skip_special","text"} for
 *                 tiny and tiny_variant (tokenizers in the repo) and gpt2, llama3, qwen3 (real files
 *                 read from $GRPO2048_SOURCE_DIR/../shared/fixtures/hf/<name>/; those parts are
 *                 skipped with a note when the folder is absent);
 *   nfc.jsonl     {"in","out"} pairs of tokenizers' NFC normalizer.
 * Every encode case must match token for token and decode back to its text. Further checks:
 * special-token ids from tokenizer_config.json, the ids-buffer protocol, invalid UTF-8 and NUL
 * bytes round-tripping, long inputs, concurrent encoding, load errors, and the chat templates.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "tests/testing.h"

static char src_dir[4096];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[len] = 0; if (n) *n = (size_t)len; }
    return buf;
}

/* Calls fn on every JSON line of path; returns the number of lines, -1 if the file is missing. */
static int for_each_line(const char *path, void (*fn)(cJSON *, void *), void *ctx) {
    char *text = slurp(path, NULL);
    if (!text) return -1;
    int n = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        CHECK_MSG(j != NULL, "%s: bad JSON line %d", path, n + 1);
        if (j) fn(j, ctx);
        cJSON_Delete(j);
        n++;
    }
    free(text);
    return n;
}

/* ---------------------------------------------------------------------------------------------- */

static void nfc_case(cJSON *j, void *ctx) {
    int *bad = ctx;
    const char *in = cJSON_GetObjectItem(j, "in")->valuestring, *want = cJSON_GetObjectItem(j, "out")->valuestring;
    char *out;
    size_t ol;
    int r = tokenizer_nfc(in, strlen(in), &out, &ol);
    CHECK(r >= 0);
    const char *got = r == 1 ? out : in;
    size_t gl = r == 1 ? ol : strlen(in);
    if (gl != strlen(want) || memcmp(got, want, gl) != 0) {
        if (++*bad <= 5) fprintf(stderr, "NFC mismatch for \"%s\": got \"%.*s\" want \"%s\"\n", in, (int)gl, got, want);
    }
    free(out);
}

static void test_nfc(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/nfc.jsonl", src_dir);
    int bad = 0;
    int n = for_each_line(path, nfc_case, &bad);
    CHECK_MSG(n > 1000, "%s: %d cases", path, n);
    CHECK_MSG(bad == 0, "%d NFC mismatches", bad);
    printf("nfc: %d cases, %d mismatches\n", n, bad);
    /* Quick path: ASCII and text below U+0300 come back unchanged without a copy. */
    char *out = (char *)1;
    size_t ol = 99;
    CHECK_EQ_INT(tokenizer_nfc("abc \xc3\xa9", 6, &out, &ol), 0);
    CHECK(out == NULL && ol == 0);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    tokenizer *t;
    int roundtrip;  /* 1: decode(encode(s)) == s; 2: == NFC(s); 0: not checked (prefix spaces added) */
    int n_encode, n_decode, bad_encode, bad_decode, bad_roundtrip;
} fixture_ctx;

static void fixture_case(cJSON *j, void *vctx) {
    fixture_ctx *c = vctx;
    cJSON *text = cJSON_GetObjectItem(j, "text");
    cJSON *ids = cJSON_GetObjectItem(j, "ids"), *dec = cJSON_GetObjectItem(j, "decode");
    CHECK(cJSON_IsString(text));
    if (!cJSON_IsString(text)) return;
    const char *s = text->valuestring;
    size_t len = strlen(s);
    if (ids) {
        c->n_encode++;
        int want_n = cJSON_GetArraySize(ids);
        int *want = malloc(sizeof(int) * (size_t)(want_n + 1));
        for (int i = 0; i < want_n; i++) want[i] = cJSON_GetArrayItem(ids, i)->valueint;
        int cap = want_n + 8;
        int *got = malloc(sizeof(int) * (size_t)cap);
        int n = tokenizer_encode(c->t, s, len, got, cap);
        int same = n == want_n && memcmp(got, want, sizeof(int) * (size_t)n) == 0;
        if (!same && ++c->bad_encode <= 5) {
            fprintf(stderr, "%s: encode mismatch for \"%s\"\n  got ", c->name, s);
            for (int i = 0; i < n && i < cap && i < 40; i++) fprintf(stderr, "%d ", got[i]);
            fprintf(stderr, "\n  want ");
            for (int i = 0; i < want_n && i < 40; i++) fprintf(stderr, "%d ", want[i]);
            fprintf(stderr, "\n");
        }
        if (c->roundtrip && n >= 0 && n <= cap) {
            char *norm = NULL;
            size_t nl = len;
            const char *ref = s;
            size_t norm_len;
            if (c->roundtrip == 2 && tokenizer_nfc(s, len, &norm, &norm_len) == 1) { ref = norm; nl = norm_len; }
            char *back = malloc(nl + 16);
            int bl = tokenizer_decode(c->t, got, n, 0, back, nl + 16);
            if ((size_t)bl != nl || memcmp(back, ref, nl) != 0) {
                if (++c->bad_roundtrip <= 5) fprintf(stderr, "%s: decode(encode(s)) != s for \"%s\"\n", c->name, s);
            }
            free(back);
            free(norm);
        }
        free(want);
        free(got);
    } else if (cJSON_IsArray(dec)) {
        c->n_decode++;
        int n = cJSON_GetArraySize(dec);
        int *in = malloc(sizeof(int) * (size_t)(n + 1));
        for (int i = 0; i < n; i++) in[i] = cJSON_GetArrayItem(dec, i)->valueint;
        int skip = cJSON_IsTrue(cJSON_GetObjectItem(j, "skip_special"));
        char *out = malloc(len + 64);
        int ol = tokenizer_decode(c->t, in, n, skip, out, len + 64);
        if (ol < 0 || (size_t)ol != len || memcmp(out, s, len) != 0) {
            if (++c->bad_decode <= 5)
                fprintf(stderr, "%s: decode(skip=%d) mismatch: got \"%.*s\" want \"%s\"\n", c->name, skip,
                        ol < 0 ? 0 : ol, out, s);
        }
        free(out);
        free(in);
    }
}

static void check_fixture(const char *name, tokenizer *t, int roundtrip) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/%s.jsonl", src_dir, name);
    fixture_ctx c = { .name = name, .t = t, .roundtrip = roundtrip };
    double t0 = now_s();
    int n = for_each_line(path, fixture_case, &c);
    CHECK_MSG(n > 300, "%s: %d lines", path, n);
    CHECK_MSG(c.bad_encode == 0, "%s: %d of %d encode cases differ from tokenizers", name, c.bad_encode, c.n_encode);
    CHECK_MSG(c.bad_roundtrip == 0, "%s: %d round trips failed", name, c.bad_roundtrip);
    CHECK_MSG(c.bad_decode == 0, "%s: %d of %d decode cases differ", name, c.bad_decode, c.n_decode);
    printf("%s: %d encode cases (%d differ), %d decode cases (%d differ), %.3f s\n", name, c.n_encode,
           c.bad_encode, c.n_decode, c.bad_decode, now_s() - t0);
}

/* Generic properties every tokenizer must have; exact: decode(encode(s)) == s for ASCII and
 * invalid UTF-8 (false for tokenizers that add prefix spaces). */
static void check_generic(const char *name, tokenizer *t, int exact) {
    /* The ids-buffer protocol: a short buffer gets a prefix and the full count. */
    const char *s = "def strategy(board):\n    return \"W\"  # always up\n";
    int full[64], part[8];
    int n = tokenizer_encode(t, s, strlen(s), full, 64);
    CHECK(n > 8 && n <= 64);
    for (int i = 0; i < 8; i++) part[i] = -7;
    CHECK_EQ_INT(tokenizer_encode(t, s, strlen(s), part, 4), n);
    CHECK(memcmp(part, full, 4 * sizeof(int)) == 0 && part[4] == -7);
    CHECK_EQ_INT(tokenizer_encode(t, s, strlen(s), NULL, 0), n);
    CHECK_EQ_INT(tokenizer_encode(t, "", 0, NULL, 0), 0);

    char small[10];
    int bad_id[2] = { full[0], tokenizer_vocab_size(t) };
    CHECK_EQ_INT(tokenizer_decode(t, bad_id, 2, 0, small, sizeof small), -1);
    bad_id[1] = -1;
    CHECK_EQ_INT(tokenizer_decode(t, bad_id, 2, 0, small, sizeof small), -1);
    if (!exact) {
        printf("%s: generic checks done (vocab %d)\n", name, tokenizer_vocab_size(t));
        return;
    }
    /* decode into a short buffer: truncated, NUL-terminated, full length returned. */
    CHECK_EQ_INT(tokenizer_decode(t, full, n, 0, small, sizeof small), (int)strlen(s));
    CHECK(memcmp(small, s, 9) == 0 && small[9] == 0);
    CHECK_EQ_INT(tokenizer_decode(t, full, n, 0, NULL, 0), (int)strlen(s));

    /* token <-> id, and token bytes agree with decode. */
    for (int i = 0; i < n; i++) {
        const char *tok = tokenizer_id_to_token(t, full[i]);
        CHECK(tok != NULL);
        if (tok) CHECK_EQ_INT(tokenizer_token_id(t, tok), full[i]);
        size_t bl;
        const char *b = tokenizer_token_bytes(t, full[i], &bl);
        char buf[256];
        int dl = tokenizer_decode(t, &full[i], 1, 0, buf, sizeof buf);
        CHECK(b && dl == (int)bl && memcmp(b, buf, bl) == 0);
    }
    CHECK(tokenizer_id_to_token(t, -1) == NULL);
    CHECK(tokenizer_id_to_token(t, tokenizer_vocab_size(t)) == NULL);
    CHECK_EQ_INT(tokenizer_token_id(t, "no such token \x01"), -1);

    /* Bytes that are not UTF-8, and NUL bytes, survive encode -> decode. */
    const char raw[] = "ok \xff\xfe x\xc3 \xe4\xbd \x00\x00 end\xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf";
    size_t rl = sizeof raw - 1;
    int ids[256];
    int m = tokenizer_encode(t, raw, rl, ids, 256);
    CHECK(m > 0 && m <= 256);
    char back[256];
    CHECK_EQ_INT(tokenizer_decode(t, ids, m, 0, back, sizeof back), (int)rl);
    CHECK(memcmp(back, raw, rl) == 0);

    /* Long inputs (long whitespace runs exercise the regex engine's stack). */
    size_t big = 300000;
    char *txt = malloc(big + 1);
    for (size_t i = 0; i < big; i++) txt[i] = i < big / 2 ? ' ' : "def f(x):\n\treturn x  # 2048\n"[i % 28];
    int nb = tokenizer_encode(t, txt, big, NULL, 0);
    CHECK(nb > 0);
    int *bids = malloc(sizeof(int) * (size_t)(nb > 0 ? nb : 1));
    CHECK_EQ_INT(tokenizer_encode(t, txt, big, bids, nb), nb);
    char *bback = malloc(big + 1);
    CHECK_EQ_INT(tokenizer_decode(t, bids, nb, 0, bback, big + 1), (int)big);
    CHECK(memcmp(bback, txt, big) == 0);
    free(txt);
    free(bids);
    free(bback);
    printf("%s: generic checks done (vocab %d)\n", name, tokenizer_vocab_size(t));
}

/* Concurrent encoding gives the same ids as sequential encoding (the merge cache is shared). */
#define TH_MAX 16384
typedef struct { tokenizer *t; const char *text; int *ids; int n; } thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    for (int rep = 0; rep < 3; rep++) a->n = tokenizer_encode(a->t, a->text, strlen(a->text), a->ids, TH_MAX);
    return NULL;
}

static void check_threads(tokenizer *t) {
    static char text[2][20000];
    size_t k = 0;
    for (int i = 0; k + 64 < sizeof text[0]; i++)
        k += (size_t)snprintf(text[0] + k, sizeof text[0] - k, "word%d tile_%d merges=%d\n", i % 97, (i * 7) % 2048, i % 13);
    k = 0;
    for (int i = 0; k + 64 < sizeof text[1]; i++)
        k += (size_t)snprintf(text[1] + k, sizeof text[1] - k, "%d board[%d][%d] = %d; ", i, i % 4, (i / 4) % 4, 1 << (i % 12));
    static int ids[4][TH_MAX], want[2][TH_MAX];
    int wn[2];
    for (int i = 0; i < 2; i++) {
        wn[i] = tokenizer_encode(t, text[i], strlen(text[i]), want[i], TH_MAX);
        CHECK(wn[i] > 1000 && wn[i] <= TH_MAX);
    }
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ t, text[i % 2], ids[i], 0 };
        pthread_create(&th[i], NULL, encode_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(args[i].n, wn[i % 2]);
        CHECK(args[i].n <= TH_MAX && memcmp(ids[i], want[i % 2], sizeof(int) * (size_t)args[i].n) == 0);
    }
}

static tokenizer *load_timed(const char *path, const char *name) {
    char err[512] = "";
    double t0 = now_s();
    tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK_MSG(t != NULL, "%s: %s", path, err);
    if (t) printf("%s: loaded in %.3f s\n", name, now_s() - t0);
    return t;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_tiny(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/tiny", src_dir);
    tokenizer *t = load_timed(path, "tiny");
    if (!t) return;
    CHECK_EQ_INT(tokenizer_vocab_size(t), 512);
    CHECK_EQ_INT(tokenizer_token_id(t, "<|endoftext|>"), 0);
    CHECK_EQ_INT(tokenizer_token_id(t, "<|im_start|>"), 1);
    CHECK_EQ_INT(tokenizer_token_id(t, "<|im_end|>"), 2);
    CHECK_EQ_INT(tokenizer_eos_id(t), 2);
    CHECK_EQ_INT(tokenizer_pad_id(t), 0);
    CHECK_EQ_INT(tokenizer_bos_id(t), -1);
    CHECK(tokenizer_is_special(t, 1) && !tokenizer_is_special(t, 3));
    CHECK(tokenizer_chat_template(t) && strstr(tokenizer_chat_template(t), "<|im_start|>"));
    check_fixture("tiny", t, 1);
    check_generic("tiny", t, 1);
    check_threads(t);

    /* The chat templates on the tiny tokenizer (ChatML). */
    chat_format f;
    char err[256];
    CHECK_EQ_INT(chat_format_from_name("auto", t, &f, err, sizeof err), 0);
    CHECK_EQ_INT(f, CHAT_CHATML);
    CHECK_EQ_INT(chat_end_of_turn_id(CHAT_CHATML, t), 2);
    CHECK_EQ_INT(chat_end_of_turn_id(CHAT_PLAIN, t), 2);
    CHECK_EQ_INT(chat_end_of_turn_id(CHAT_LLAMA3, t), 2); /* no <|eot_id|>: falls back to eos */
    char prompt[256];
    int pl = chat_render_prompt(CHAT_CHATML, NULL, "Play.", prompt, sizeof prompt);
    int ids[64];
    int n = tokenizer_encode(t, prompt, (size_t)pl, ids, 64);
    CHECK(n > 5 && ids[0] == 1 && ids[n - 1] != 2);
    int ends = 0;
    for (int i = 0; i < n; i++) ends += ids[i] == 2;
    CHECK_EQ_INT(ends, 1);
    tokenizer_free(t);

    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/tiny_variant/tokenizer.json", src_dir);
    t = load_timed(path, "tiny_variant");
    if (!t) return;
    CHECK_EQ_INT(tokenizer_eos_id(t), 0); /* no tokenizer_config.json: <|endoftext|> */
    check_fixture("tiny_variant", t, 0);
    check_generic("tiny_variant", t, 0);
    tokenizer_free(t);
}

static void test_real(const char *hf) {
    static const struct { const char *name; int vocab, bos, eos, pad; chat_format fmt; int eot; } real[] = {
        { "gpt2", 50257, -1, 50256, -1, CHAT_PLAIN, 50256 },
        { "llama3", 128256, 128000, 128009, -1, CHAT_LLAMA3, 128009 },
        { "qwen3", 151669, -1, 151645, 151643, CHAT_CHATML, 151645 },
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", hf, real[i].name);
        if (access(path, R_OK) != 0) {
            printf("note: %s absent, %s checks skipped\n", path, real[i].name);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", hf, real[i].name);
        tokenizer *t = load_timed(path, real[i].name);
        if (!t) continue;
        CHECK_EQ_INT(tokenizer_vocab_size(t), real[i].vocab);
        CHECK_EQ_INT(tokenizer_bos_id(t), real[i].bos);
        CHECK_EQ_INT(tokenizer_eos_id(t), real[i].eos);
        CHECK_EQ_INT(tokenizer_pad_id(t), real[i].pad);
        chat_format f = CHAT_PLAIN;
        char err[256];
        CHECK_EQ_INT(chat_format_from_name("auto", t, &f, err, sizeof err), 0);
        CHECK_EQ_INT(f, real[i].fmt);
        CHECK_EQ_INT(chat_end_of_turn_id(f, t), real[i].eot);
        int qwen = strcmp(real[i].name, "qwen3") == 0;
        check_fixture(real[i].name, t, qwen ? 2 : 1);
        check_generic(real[i].name, t, 1);
        if (strcmp(real[i].name, "qwen3") == 0) {
            CHECK_EQ_INT(tokenizer_token_id(t, "<think>"), 151667);
            CHECK(!tokenizer_is_special(t, 151667) && tokenizer_is_special(t, 151644));
            /* The rendered ChatML prompt tokenizes with one id per special token. */
            char prompt[512];
            int pl = chat_render_prompt(CHAT_CHATML, "You are a helpful assistant.", "Write a 2048 strategy.", prompt, sizeof prompt);
            int ids[128];
            int n = tokenizer_encode(t, prompt, (size_t)pl, ids, 128);
            CHECK(n > 10 && n <= 128 && ids[0] == 151644 && ids[n - 1] == 198);
            check_threads(t);
        }
        if (strcmp(real[i].name, "llama3") == 0) {
            char prompt[512];
            int pl = chat_render_prompt(CHAT_LLAMA3, NULL, "  hi  ", prompt, sizeof prompt);
            int ids[64];
            int n = tokenizer_encode(t, prompt, (size_t)pl, ids, 64);
            /* <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n hi <|eot_id|> <|start_header_id|> assistant <|end_header_id|> \n\n */
            CHECK_EQ_INT(n, 11);
            CHECK(ids[0] == 128000 && ids[1] == 128006 && ids[3] == 128007 && ids[6] == 128009 && ids[10] == 271);
        }
        tokenizer_free(t);
    }
}

/* ---------------------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void expect_load_error(const char *dir, const char *json, const char *needle) {
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, json);
    tokenizer *t = tokenizer_load(dir, err, sizeof err);
    CHECK_MSG(t == NULL && strstr(err, needle) != NULL, "want error containing \"%s\", got \"%s\"", needle, err);
    tokenizer_free(t);
}

static void test_errors(void) {
    char err[512] = "";
    CHECK(tokenizer_load("/nonexistent/tokenizer/dir", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/tokenizer/dir") != NULL);
    CHECK(tokenizer_load("/nonexistent", NULL, 0) == NULL);

    char dir[] = "/tmp/grpo2048_tok_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *ok_model = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}";
    char json[2048];
    expect_load_error(dir, "{\"model\": ", "malformed JSON");
    snprintf(json, sizeof json, "{\"pre_tokenizer\":{\"type\":\"Metaspace\"},\"decoder\":{\"type\":\"ByteLevel\"},%s}", ok_model);
    expect_load_error(dir, json, "Metaspace");
    expect_load_error(dir, "{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                           "\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "Unigram");
    snprintf(json, sizeof json, "{\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
                                "\"decoder\":{\"type\":\"ByteLevel\"},%s}", ok_model);
    expect_load_error(dir, json, "Lowercase");
    snprintf(json, sizeof json, "{\"pre_tokenizer\":null,\"decoder\":{\"type\":\"ByteLevel\"},%s}", ok_model);
    expect_load_error(dir, json, "ByteLevel");
    snprintf(json, sizeof json, "{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"WordPiece\"},%s}", ok_model);
    expect_load_error(dir, json, "WordPiece");
    expect_load_error(dir, "{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                           "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", "\"ab\"");
    expect_load_error(dir, "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"},"
                           "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"vocab\":{},\"merges\":[]}}", "regex");

    /* A config naming a token the tokenizer lacks. */
    snprintf(json, sizeof json, "{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},%s}", ok_model);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, json);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    write_file(path, "{\"eos_token\": {\"content\": \"</s>\"}}");
    err[0] = 0;
    tokenizer *t = tokenizer_load(dir, err, sizeof err);
    CHECK_MSG(t == NULL && strstr(err, "</s>") && strstr(err, "eos_token"), "got \"%s\"", err);
    tokenizer_free(t);
    /* Valid config: the small tokenizer works, unknown bytes are dropped (no unk token). */
    write_file(path, "{\"eos_token\": \"ab\", \"bos_token\": null, \"chat_template\": [{\"name\":\"x\",\"template\":\"X\"},"
                     "{\"name\":\"default\",\"template\":\"D\"}]}");
    t = tokenizer_load(dir, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) {
        CHECK_EQ_INT(tokenizer_eos_id(t), 2);
        CHECK_EQ_INT(tokenizer_bos_id(t), -1);
        CHECK(tokenizer_chat_template(t) && strcmp(tokenizer_chat_template(t), "D") == 0);
        int ids[8];
        CHECK_EQ_INT(tokenizer_encode(t, "abba", 4, ids, 8), 3);
        CHECK(ids[0] == 2 && ids[1] == 1 && ids[2] == 0);
        CHECK_EQ_INT(tokenizer_encode(t, "a b", 3, ids, 8), 2); /* the space is not in the vocab: dropped */
        CHECK(ids[0] == 0 && ids[1] == 1);
        tokenizer_free(t);
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
}

static void test_chat_render(void) {
    char out[512];
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi\nthere<|im_end|>\n<|im_start|>assistant\n";
    CHECK_EQ_INT(chat_render_prompt(CHAT_CHATML, "Be brief.", "Hi\nthere", out, sizeof out), (int)strlen(want));
    CHECK(strcmp(out, want) == 0);
    want = "<|im_start|>user\n  x  <|im_end|>\n<|im_start|>assistant\n";
    CHECK_EQ_INT(chat_render_prompt(CHAT_CHATML, NULL, "  x  ", out, sizeof out), (int)strlen(want));
    CHECK(strcmp(out, want) == 0);
    want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    CHECK_EQ_INT(chat_render_prompt(CHAT_LLAMA3, " Be brief.\n", "\tHi\n\n", out, sizeof out), (int)strlen(want));
    CHECK(strcmp(out, want) == 0);
    want = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    CHECK_EQ_INT(chat_render_prompt(CHAT_LLAMA3, NULL, "Hi", out, sizeof out), (int)strlen(want));
    CHECK(strcmp(out, want) == 0);
    CHECK_EQ_INT(chat_render_prompt(CHAT_PLAIN, NULL, "just this", out, sizeof out), 9);
    CHECK(strcmp(out, "just this") == 0);
    CHECK_EQ_INT(chat_render_prompt(CHAT_PLAIN, "", "u", out, sizeof out), 1);
    CHECK_EQ_INT(chat_render_prompt(CHAT_PLAIN, "sys", "u", out, sizeof out), 6);
    CHECK(strcmp(out, "sys\n\nu") == 0);
    /* Too small: truncated, NUL-terminated, full length returned. */
    char small[8];
    int need = chat_render_prompt(CHAT_CHATML, NULL, "Hello", small, sizeof small);
    CHECK_EQ_INT(need, (int)strlen("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"));
    CHECK(strcmp(small, "<|im_st") == 0);
    CHECK_EQ_INT(chat_render_prompt(CHAT_CHATML, NULL, "Hello", NULL, 0), need);

    chat_format f = CHAT_PLAIN;
    char err[256] = "";
    CHECK_EQ_INT(chat_format_from_name("ChatML", NULL, &f, err, sizeof err), 0);
    CHECK_EQ_INT(f, CHAT_CHATML);
    CHECK_EQ_INT(chat_format_from_name("llama3", NULL, &f, err, sizeof err), 0);
    CHECK_EQ_INT(f, CHAT_LLAMA3);
    CHECK_EQ_INT(chat_format_from_name("plain", NULL, &f, err, sizeof err), 0);
    CHECK_EQ_INT(f, CHAT_PLAIN);
    CHECK_EQ_INT(chat_format_from_name("vicuna", NULL, &f, err, sizeof err), -1);
    CHECK(strstr(err, "vicuna") != NULL);
    CHECK_EQ_INT(chat_format_from_name("auto", NULL, &f, err, sizeof err), -1);
    CHECK(strcmp(chat_format_name(CHAT_LLAMA3), "llama3") == 0);
}

int main(void) {
    const char *env = getenv("GRPO2048_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", env && *env ? env : ".");
    char hf[4200];
    snprintf(hf, sizeof hf, "%s/../shared/fixtures/hf", src_dir);

    test_nfc();
    test_chat_render();
    test_errors();
    test_tiny();
    test_real(hf);
    return TEST_DONE();
}
