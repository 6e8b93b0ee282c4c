/*
 * model/tokenizer.c: Hugging Face `tokenizers`-compatible byte-level BPE (see model/tokenizer.h).
 *
 * How the parts fit:
 *   loading   read tokenizer.json with cJSON; check each component (normalizer, pre_tokenizer,
 *             model, decoder) and refuse unsupported ones by name; build
 *               - per-id tables: the token string as written in the file, the raw bytes it
 *                 decodes to (ByteLevel decoding), and its added/special flags;
 *               - hash maps: token string -> id (model vocab, then added tokens on top), raw bytes
 *                 -> model id (only for ignore_merges), and merge pair (left id, right id) ->
 *                 (rank, merged id);
 *               - the pre-tokenizer pipeline: a list of steps (Split regex, Digits, ByteLevel),
 *                 each with a PCRE2 regex compiled with UTF+UCP (JIT when available);
 *               - two added-token sets (matched on raw text / on normalized text), bucketed by
 *                 first byte and sorted longest first;
 *             then read tokenizer_config.json (bos/eos/pad, chat_template) when present.
 *   encoding  mirrors tokenizers' AddedVocabulary::extract_and_normalize + pre-tokenizers + BPE:
 *             (1) split the raw text around non-normalized added tokens (leftmost-longest, with
 *             single_word/lstrip/rstrip as in tokenizers' find_matches); (2) NFC-normalize each
 *             remaining piece and split it around normalized added tokens; (3) run the
 *             pre-tokenizer steps recursively on each piece (a step splits its piece and passes
 *             every part to the next step); (4) BPE each final pre-token. Pre-tokens are kept as
 *             raw bytes: ByteLevel's byte->unicode mapping (GPT-2's bytes_to_unicode) is applied
 *             to the vocabulary instead, so a pre-token byte b starts as symbol byte_id[b].
 *   BPE       tokenizers' Word::merge_all: a min-heap of candidate merges ordered by (rank,
 *             position); pop, skip stale entries, merge, push the new neighbour pairs. Results are
 *             cached per pre-token in a mutex-guarded hash table that is emptied when full.
 *   decoding  concatenate each id's precomputed bytes (special tokens optionally skipped).
 *
 * Differences from tokenizers (0.23, checked on ~120k random strings and a 4 MB corpus with the
 * GPT-2, Llama 3 and Qwen3 files: identical ids apart from the first point):
 *   - \p{L}, \p{N}, \s in pre-tokenizer regexes follow PCRE2's Unicode tables (Unicode 14 in
 *     Debian 12's PCRE2 10.42); tokenizers' Oniguruma knows newer characters, so a character
 *     assigned after Unicode 14 (e.g. U+1C89) may split differently;
 *   - invalid UTF-8 input is encoded (each invalid byte is its own pre-token) where tokenizers
 *     cannot take it; decode keeps invalid UTF-8 bytes where tokenizers writes U+FFFD;
 *   - single_word added tokens use PCRE2's \w (letters, digits, underscore) as "word character";
 *   - a normalized added token whose content is not itself in NFC decodes to its content as
 *     written (tokenizers reports the normalized form);
 *   - encode never runs the post-processor (add_special_tokens=False).
 */
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TK_ASSERT(c) do { if (!(c)) { fprintf(stderr, "%s:%d: tokenizer: assertion failed: %s\n", \
    __FILE__, __LINE__, #c); abort(); } } while (0)

/* Largest id accepted from a file: guards the per-id tables against absurd allocations. */
#define TK_MAX_ID (1 << 24)
/* Pre-tokens longer than this (bytes) are not cached. */
#define TK_CACHE_MAX_KEY 128
#define TK_CACHE_SLOTS (1u << 15)

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------- */
/* Hashing and small containers                                                                    */

/* 64-bit hash of a byte string: 8-byte words mixed by multiply-xorshift, finished with the
 * splitmix64 finalizer (Steele et al., "Fast splittable pseudorandom number generators", 2014). */
static uint64_t tk_hash(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ (w * 0x87C37B91114253D5ull)) * 0x4CF5AD432745937Full;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ (w * 0x87C37B91114253D5ull)) * 0x4CF5AD432745937Full;
    h ^= h >> 30; h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27; h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}

/* Growable byte arena; strings are referenced by offset (stable across reallocation). */
typedef struct { char *p; size_t n, cap; } arena;

static int arena_put(arena *a, const void *s, size_t n, uint32_t *off) {
    if (a->n + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 1 << 16;
        while (a->n + n + 1 > cap) cap *= 2;
        char *p = realloc(a->p, cap);
        if (!p) return -1;
        a->p = p;
        a->cap = cap;
    }
    if (a->n + n + 1 > UINT32_MAX) return -1;
    memcpy(a->p + a->n, s, n);
    a->p[a->n + n] = 0;
    *off = (uint32_t)a->n;
    a->n += n + 1;
    return 0;
}

/* Open-addressing map from byte strings (stored in an arena) to int values. A slot keeps the
 * key's first 8 bytes, so most lookups (tokens are short) never touch the arena: loading spends
 * most of its time in these lookups, bound by cache misses. */
typedef struct { uint64_t head; uint32_t hash, off, len; int32_t val; } smap_slot;

static inline uint64_t key_head(const void *key, size_t n) {
    uint64_t h = 0;
    memcpy(&h, key, n < 8 ? n : 8);
    return h;
}
typedef struct { smap_slot *slots; uint32_t mask, count; } smap;

static int smap_init(smap *m, size_t expected) {
    uint32_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->slots = malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (uint32_t i = 0; i < cap; i++) m->slots[i].val = -1, m->slots[i].len = UINT32_MAX;
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

static smap_slot *smap_find(const smap *m, const char *base, const void *key, size_t n) {
    if (!m->slots) return NULL;
    uint32_t h = (uint32_t)tk_hash(key, n);
    uint64_t head = key_head(key, n);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        smap_slot *s = &m->slots[i];
        if (s->len == UINT32_MAX) return s;
        if (s->hash == h && s->len == n && s->head == head &&
            (n <= 8 || memcmp(base + s->off + 8, (const char *)key + 8, n - 8) == 0))
            return s;
    }
}

static int smap_get(const smap *m, const char *base, const void *key, size_t n) {
    smap_slot *s = smap_find(m, base, key, n);
    return s && s->len != UINT32_MAX ? s->val : -1;
}

/* Sets key (already stored at base+off) -> val, overwriting. Grows at 50% load. */
static int smap_set(smap *m, const char *base, uint32_t off, uint32_t n, int val) {
    if ((m->count + 1) * 2 > m->mask + 1) {
        smap old = *m;
        if (smap_init(m, (size_t)(old.mask + 1)) < 0) { *m = old; return -1; }
        for (uint32_t i = 0; i <= old.mask; i++) {
            smap_slot *o = &old.slots[i];
            if (o->len == UINT32_MAX) continue;
            smap_slot *s = smap_find(m, base, base + o->off, o->len);
            *s = *o;
            m->count++;
        }
        free(old.slots);
    }
    smap_slot *s = smap_find(m, base, base + off, n);
    if (s->len == UINT32_MAX) {
        s->hash = (uint32_t)tk_hash(base + off, n);
        s->head = key_head(base + off, n);
        s->off = off;
        s->len = n;
        m->count++;
    }
    s->val = val;
    return 0;
}

/* Merge map: (left id, right id) -> (rank, merged id), open addressing on the packed pair. */
typedef struct { uint64_t key; uint32_t rank; int32_t id; } mmap_slot;
#define MMAP_EMPTY UINT64_MAX

static inline uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static inline uint32_t pair_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xFF51AFD7ED558CCDull; k ^= k >> 33;   /* MurmurHash3 fmix64 */
    return (uint32_t)k;
}

/* ---------------------------------------------------------------------------------------------- */
/* The tokenizer                                                                                   */

typedef enum { STEP_SPLIT, STEP_BYTELEVEL } step_kind;
typedef struct {
    step_kind kind;
    pcre2_code *re;         /* NULL for a ByteLevel step without use_regex */
    int add_prefix_space;   /* ByteLevel only */
} pt_step;

typedef struct {
    uint32_t off, len;      /* content (normalized content for the normalized set) in the arena */
    int id;
    unsigned char lstrip, rstrip, single_word;
} added_tok;

/* Added tokens matched on one kind of text: tokens sorted by (first byte, length descending). */
typedef struct {
    added_tok *toks;
    int n;
    int first[257];         /* toks[first[b] .. first[b+1]) start with byte b */
} added_set;

typedef struct { uint64_t hash; uint32_t koff, klen, ioff, nids; } cache_slot;

struct tokenizer {
    arena a;                 /* every string: token strings, decoded bytes, added contents */
    int n_ids;               /* highest id + 1 */
    uint32_t *tok_off;       /* n_ids: token string offset, UINT32_MAX for a hole */
    uint32_t *tok_len;
    uint32_t *bytes_off;     /* n_ids: decoded bytes */
    uint32_t *bytes_len;
    unsigned char *special;  /* n_ids: 1 for special added tokens */

    smap vocab;              /* token string -> id (added tokens override) */
    smap raw;                /* raw bytes -> model id (ignore_merges only) */
    mmap_slot *merges;
    uint32_t merges_mask;

    int byte_id[256];        /* id of the single-byte symbol, -1 if not in the model vocab */
    int unk_id, fuse_unk, ignore_merges;

    int nfc;
    pt_step steps[8];
    int n_steps;
    added_set raw_set, norm_set;
    pcre2_code *word_re;     /* \w, for single_word added tokens */

    int bos, eos, pad;
    char *chat_template;

    pthread_mutex_t cache_mu;
    cache_slot *cache;
    arena cache_keys;
    int *cache_ids;
    size_t cache_nids, cache_ids_cap;
    uint32_t cache_count;
};

/* GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py): printable Latin-1 bytes map to themselves,
 * the other 68 bytes to U+0100.. in byte order. */
static int byte_to_cp[256];
static int cp_to_byte[0x144];
static pthread_once_t byte_map_once = PTHREAD_ONCE_INIT;

static void byte_map_init(void) {
    int n = 0;
    for (int i = 0; i < 0x144; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = printable ? b : 256 + n++;
        cp_to_byte[byte_to_cp[b]] = b;
    }
}

/* Length of the well-formed UTF-8 prefix of s[0..n) (RFC 3629: no overlongs, no surrogates,
 * at most U+10FFFF), stopping at the first ill-formed sequence. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return i;
        if (i + k >= n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++) if ((s[i + j] & 0xC0) != 0x80) return i;
        i += k + 1;
    }
    return i;
}

/* Decodes one code point of valid UTF-8; returns its byte length. */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if (s[0] < 0xE0) { *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (s[0] < 0xF0) { *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3; }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* Start of the code point that ends at s[end-1] (valid UTF-8). */
static size_t utf8_prev(const unsigned char *s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    return i;
}

/* Rust's char::is_whitespace (Unicode White_Space), used by added tokens' lstrip/rstrip. */
static int is_white_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Decodes a token string into the bytes it stands for: each character through GPT-2's
 * unicode->byte table when every character has an entry, else the string's own UTF-8 bytes
 * (tokenizers' ByteLevel decoder, decode_chain). Writes into out (capacity >= n). Returns the
 * byte count and sets *all_mapped. */
static size_t bytelevel_decode(const char *tok, size_t n, char *out, int *all_mapped) {
    const unsigned char *s = (const unsigned char *)tok;
    size_t k = 0;
    if (utf8_valid_prefix(s, n) != n) { memcpy(out, tok, n); *all_mapped = 0; return n; }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)utf8_next(s + i, &cp);
        if (cp >= 0x144 || cp_to_byte[cp] < 0) { memcpy(out, tok, n); *all_mapped = 0; return n; }
        out[k++] = (char)cp_to_byte[cp];
    }
    *all_mapped = 1;
    return k;
}

/* ---------------------------------------------------------------------------------------------- */
/* Loading                                                                                         */

static char *read_file(const char *path, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(buf, cap);
            if (!p) { free(buf); fclose(f); seterr(err, errlen, "%s: out of memory", path); return NULL; }
            buf = p;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); seterr(err, errlen, "%s: read error", path); return NULL; }
    buf[len] = 0;
    *n = len;
    return buf;
}

static cJSON *parse_json_file(const char *path, char *err, size_t errlen) {
    size_t n;
    char *text = read_file(path, &n, err, errlen);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!j) {
        size_t at = end ? (size_t)(end - text) : 0;
        seterr(err, errlen, "%s: malformed JSON near byte %zu", path, at);
    }
    free(text);
    return j;
}

static const char *json_type_name(const cJSON *node) {
    cJSON *ty = cJSON_GetObjectItemCaseSensitive(node, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int json_bool(const cJSON *obj, const char *key, int dflt) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* Compiles a regex for a pre-tokenizer (UTF + UCP, JIT when available). */
static pcre2_code *compile_re(const char *pat, size_t len, uint32_t extra, const char *what, char *err, size_t errlen) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | extra, &ec, &eo, NULL);
    if (!re) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        seterr(err, errlen, "%s: cannot compile regex \"%s\" at offset %zu: %s", what, pat, (size_t)eo, msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* failure (no JIT support) just means interpreted */
    return re;
}

/* GPT-2's pre-tokenization regex, as tokenizers' ByteLevel pre-tokenizer uses with use_regex. */
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int add_step(tokenizer *t, const cJSON *pt, const char *path, char *err, size_t errlen) {
    const char *ty = json_type_name(pt);
    if (!ty) { seterr(err, errlen, "%s: pre_tokenizer without a \"type\"", path); return -1; }
    if (t->n_steps >= (int)(sizeof t->steps / sizeof t->steps[0])) {
        seterr(err, errlen, "%s: too many pre_tokenizer steps (at most %d)", path, (int)(sizeof t->steps / sizeof t->steps[0]));
        return -1;
    }
    pt_step *st = &t->steps[t->n_steps];
    memset(st, 0, sizeof *st);
    char what[512];
    snprintf(what, sizeof what, "%s: pre_tokenizer %s", path, ty);
    if (strcmp(ty, "Sequence") == 0) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        if (!cJSON_IsArray(list)) { seterr(err, errlen, "%s: Sequence without a \"pretokenizers\" list", what); return -1; }
        cJSON *it;
        cJSON_ArrayForEach(it, list) if (add_step(t, it, path, err, errlen) < 0) return -1;
        return 0;
    }
    if (strcmp(ty, "ByteLevel") == 0) {
        st->kind = STEP_BYTELEVEL;
        st->add_prefix_space = json_bool(pt, "add_prefix_space", 1);
        if (json_bool(pt, "use_regex", 1) && !(st->re = compile_re(GPT2_RE, PCRE2_ZERO_TERMINATED, 0, what, err, errlen)))
            return -1;
        t->n_steps++;
        return 0;
    }
    if (strcmp(ty, "Digits") == 0) {
        st->kind = STEP_SPLIT;
        /* tokenizers splits on char::is_numeric (Nd, Nl, No): isolated digits, or contiguous runs. */
        const char *pat = json_bool(pt, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        if (!(st->re = compile_re(pat, PCRE2_ZERO_TERMINATED, 0, what, err, errlen))) return -1;
        t->n_steps++;
        return 0;
    }
    if (strcmp(ty, "Split") == 0) {
        cJSON *beh = cJSON_GetObjectItemCaseSensitive(pt, "behavior");
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0) {
            seterr(err, errlen, "%s: behavior \"%s\" is not supported (expected \"Isolated\")", what,
                   cJSON_IsString(beh) ? beh->valuestring : "?");
            return -1;
        }
        if (json_bool(pt, "invert", 0)) { seterr(err, errlen, "%s: invert=true is not supported", what); return -1; }
        cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        st->kind = STEP_SPLIT;
        if (cJSON_IsString(rx)) st->re = compile_re(rx->valuestring, PCRE2_ZERO_TERMINATED, 0, what, err, errlen);
        else if (cJSON_IsString(lit)) st->re = compile_re(lit->valuestring, PCRE2_ZERO_TERMINATED, PCRE2_LITERAL, what, err, errlen);
        else { seterr(err, errlen, "%s: pattern must be {\"Regex\": ...} or {\"String\": ...}", what); return -1; }
        if (!st->re) return -1;
        t->n_steps++;
        return 0;
    }
    seterr(err, errlen, "%s is not supported (expected ByteLevel, Split, Digits or Sequence)", what);
    return -1;
}

static int load_normalizer(tokenizer *t, const cJSON *nz, const char *path, char *err, size_t errlen) {
    if (!nz || cJSON_IsNull(nz)) return 0;
    const char *ty = json_type_name(nz);
    if (ty && strcmp(ty, "NFC") == 0) { t->nfc = 1; return 0; }
    if (ty && strcmp(ty, "Sequence") == 0) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(nz, "normalizers"), *it;
        if (!cJSON_IsArray(list)) { seterr(err, errlen, "%s: normalizer Sequence without a \"normalizers\" list", path); return -1; }
        cJSON_ArrayForEach(it, list) if (load_normalizer(t, it, path, err, errlen) < 0) return -1;
        return 0;
    }
    seterr(err, errlen, "%s: normalizer \"%s\" is not supported (expected null or NFC)", path, ty ? ty : "?");
    return -1;
}

static int cmp_added(const void *x, const void *y, void *base) {
    const added_tok *a = x, *b = y;
    const char *s = base;
    unsigned char fa = (unsigned char)s[a->off], fb = (unsigned char)s[b->off];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void added_set_index(added_set *s, const char *base) {
    if (s->n > 1) qsort_r(s->toks, (size_t)s->n, sizeof *s->toks, cmp_added, (void *)base);
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < s->n && (unsigned char)base[s->toks[k].off] < b) k++;
        s->first[b] = k;
    }
}

static int load_added(tokenizer *t, const cJSON *list, const char *path, char *err, size_t errlen) {
    int n = cJSON_GetArraySize(list);
    t->raw_set.toks = calloc((size_t)n + 1, sizeof(added_tok));
    t->norm_set.toks = calloc((size_t)n + 1, sizeof(added_tok));
    if (!t->raw_set.toks || !t->norm_set.toks) { seterr(err, errlen, "%s: out of memory", path); return -1; }
    int need_word = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, list) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valuedouble < 0 || id->valuedouble >= t->n_ids) {
            seterr(err, errlen, "%s: added_tokens entry needs an integer \"id\" in [0, %d) and a string \"content\"", path, t->n_ids);
            return -1;
        }
        int tid = id->valueint;
        const char *c = content->valuestring;
        size_t clen = strlen(c);
        int special = json_bool(it, "special", 0);
        uint32_t off;
        if (arena_put(&t->a, c, clen, &off) < 0) { seterr(err, errlen, "%s: out of memory", path); return -1; }
        t->tok_off[tid] = off;
        t->tok_len[tid] = (uint32_t)clen;
        t->special[tid] = (unsigned char)special;
        /* Its decoded bytes: ByteLevel decoding of the content (itself when not byte-level). */
        char *buf = malloc(clen + 1);
        if (!buf) { seterr(err, errlen, "%s: out of memory", path); return -1; }
        int mapped;
        size_t bn = bytelevel_decode(c, clen, buf, &mapped);
        uint32_t boff;
        int bad = arena_put(&t->a, buf, bn, &boff);
        free(buf);
        if (bad < 0) { seterr(err, errlen, "%s: out of memory", path); return -1; }
        t->bytes_off[tid] = boff;
        t->bytes_len[tid] = (uint32_t)bn;
        if (smap_set(&t->vocab, t->a.p, off, (uint32_t)clen, tid) < 0) { seterr(err, errlen, "%s: out of memory", path); return -1; }
        if (clen == 0) continue; /* tokenizers never matches an empty added token */
        added_tok a = { off, (uint32_t)clen, tid, (unsigned char)json_bool(it, "lstrip", 0),
                        (unsigned char)json_bool(it, "rstrip", 0), (unsigned char)json_bool(it, "single_word", 0) };
        need_word |= a.single_word;
        if (json_bool(it, "normalized", !special)) {
            if (t->nfc && utf8_valid_prefix((const unsigned char *)c, clen) == clen) {
                char *nc;
                size_t nl;
                int r = tokenizer_nfc(c, clen, &nc, &nl);
                if (r < 0) { seterr(err, errlen, "%s: out of memory", path); return -1; }
                if (r == 1) {
                    int bad2 = arena_put(&t->a, nc, nl, &a.off);
                    free(nc);
                    if (bad2 < 0) { seterr(err, errlen, "%s: out of memory", path); return -1; }
                    a.len = (uint32_t)nl;
                }
            }
            t->norm_set.toks[t->norm_set.n++] = a;
        } else {
            t->raw_set.toks[t->raw_set.n++] = a;
        }
    }
    if (need_word && !(t->word_re = compile_re("\\w", PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, "single_word", err, errlen)))
        return -1;
    return 0;
}

/* Reads the "model" object: vocab, merges and flags; fills the per-id tables for model tokens. */
static int load_model(tokenizer *t, const cJSON *model, const cJSON *added, const char *path, char *err, size_t errlen) {
    const char *ty = json_type_name(model);
    if (!cJSON_IsObject(model)) { seterr(err, errlen, "%s: no \"model\" object", path); return -1; }
    if (ty && strcmp(ty, "BPE") != 0) {
        seterr(err, errlen, "%s: model type \"%s\" is not supported (expected BPE)", path, ty);
        return -1;
    }
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        seterr(err, errlen, "%s: model needs a \"vocab\" object and a \"merges\" list (BPE)", path);
        return -1;
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0)) {
        seterr(err, errlen, "%s: BPE dropout is not supported (expected null)", path);
        return -1;
    }
    if (json_bool(model, "byte_fallback", 0)) { seterr(err, errlen, "%s: BPE byte_fallback=true is not supported", path); return -1; }
    static const char *const affixes[] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (int i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && v->valuestring[0] == 0)) {
            seterr(err, errlen, "%s: BPE %s is not supported (expected null or \"\")", path, affixes[i]);
            return -1;
        }
    }
    t->fuse_unk = json_bool(model, "fuse_unk", 0);
    t->ignore_merges = json_bool(model, "ignore_merges", 0);

    /* Ids: highest of vocab and added tokens. */
    int max_id = -1, n_vocab = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= TK_MAX_ID || it->valuedouble != (double)it->valueint) {
            seterr(err, errlen, "%s: vocab entry \"%s\" needs an integer id in [0, %d)", path, it->string, TK_MAX_ID);
            return -1;
        }
        if (it->valueint > max_id) max_id = it->valueint;
        n_vocab++;
    }
    cJSON_ArrayForEach(it, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < TK_MAX_ID && id->valueint > max_id) max_id = id->valueint;
    }
    t->n_ids = max_id + 1;
    size_t nid = (size_t)t->n_ids + 1;
    t->tok_off = malloc(nid * sizeof *t->tok_off);
    t->tok_len = calloc(nid, sizeof *t->tok_len);
    t->bytes_off = calloc(nid, sizeof *t->bytes_off);
    t->bytes_len = calloc(nid, sizeof *t->bytes_len);
    t->special = calloc(nid, 1);
    if (!t->tok_off || !t->tok_len || !t->bytes_off || !t->bytes_len || !t->special ||
        smap_init(&t->vocab, (size_t)n_vocab + (size_t)cJSON_GetArraySize(added) + 16) < 0) {
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (size_t i = 0; i < nid; i++) t->tok_off[i] = UINT32_MAX;
    cJSON_ArrayForEach(it, vocab) {
        size_t len = strlen(it->string);
        uint32_t off;
        if (arena_put(&t->a, it->string, len, &off) < 0 || smap_set(&t->vocab, t->a.p, off, (uint32_t)len, it->valueint) < 0) {
            seterr(err, errlen, "%s: out of memory", path);
            return -1;
        }
        t->tok_off[it->valueint] = off;
        t->tok_len[it->valueint] = (uint32_t)len;
    }
    for (int b = 0; b < 256; b++) {
        char s[3];
        int cp = byte_to_cp[b], n = 0;
        if (cp < 0x80) s[n++] = (char)cp;
        else { s[n++] = (char)(0xC0 | (cp >> 6)); s[n++] = (char)(0x80 | (cp & 0x3F)); }
        t->byte_id[b] = smap_get(&t->vocab, t->a.p, s, (size_t)n);
    }
    t->unk_id = -1;
    v = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(v)) {
        t->unk_id = smap_get(&t->vocab, t->a.p, v->valuestring, strlen(v->valuestring));
        if (t->unk_id < 0) { seterr(err, errlen, "%s: unk_token \"%s\" is not in the vocab", path, v->valuestring); return -1; }
    }

    /* Merges: rank = position (lines starting with "#version" skipped, as tokenizers does); a
     * later duplicate pair overrides an earlier one (tokenizers collects them into a HashMap). */
    int nm = cJSON_GetArraySize(merges);
    uint32_t cap = 16;
    while (cap < (uint32_t)nm * 2u) cap *= 2;
    t->merges = malloc((size_t)cap * sizeof *t->merges);
    if (!t->merges) { seterr(err, errlen, "%s: out of memory", path); return -1; }
    for (uint32_t i = 0; i < cap; i++) t->merges[i].key = MMAP_EMPTY;
    t->merges_mask = cap - 1;
    char *cat = NULL;
    size_t cat_cap = 0;
    uint32_t rank = 0;
    int rc = -1;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring;
            if (strncmp(s, "#version", 8) == 0) continue;
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                seterr(err, errlen, "%s: merge %u \"%s\" must be two tokens separated by one space", path, rank + 1, s);
                goto out;
            }
            a = s; la = (size_t)(sp - s); b = sp + 1; lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring; la = strlen(a);
            b = it->child->next->valuestring; lb = strlen(b);
        } else {
            seterr(err, errlen, "%s: merge %u must be \"a b\" or [\"a\", \"b\"]", path, rank + 1);
            goto out;
        }
        if (la + lb + 1 > cat_cap) {
            cat_cap = (la + lb + 1) * 2;
            char *p = realloc(cat, cat_cap);
            if (!p) { seterr(err, errlen, "%s: out of memory", path); goto out; }
            cat = p;
        }
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        int ia = smap_get(&t->vocab, t->a.p, a, la), ib = smap_get(&t->vocab, t->a.p, b, lb);
        int inew = smap_get(&t->vocab, t->a.p, cat, la + lb);
        if (ia < 0 || ib < 0 || inew < 0) {
            const char *miss = ia < 0 ? a : ib < 0 ? b : cat;
            size_t ml = ia < 0 ? la : ib < 0 ? lb : la + lb;
            seterr(err, errlen, "%s: merge %u needs token \"%.*s\", which is not in the vocab", path, rank + 1, (int)ml, miss);
            goto out;
        }
        uint64_t key = pair_key(ia, ib);
        for (uint32_t i = pair_hash(key) & t->merges_mask;; i = (i + 1) & t->merges_mask) {
            mmap_slot *s = &t->merges[i];
            if (s->key == MMAP_EMPTY || s->key == key) {
                s->key = key;
                s->rank = rank;
                s->id = inew;
                break;
            }
        }
        rank++;
    }
    rc = 0;
out:
    free(cat);
    return rc;
}

/* Per-id decoded bytes; for ignore_merges, the raw-bytes -> model id map. Called after the model
 * vocab is loaded and before added tokens override entries. */
static int build_bytes(tokenizer *t, int raw_map, const char *path, char *err, size_t errlen) {
    char *buf = NULL;
    size_t cap = 0;
    if (raw_map && smap_init(&t->raw, (size_t)t->n_ids + 16) < 0) goto oom;
    for (int id = 0; id < t->n_ids; id++) {
        if (t->tok_off[id] == UINT32_MAX) continue;
        uint32_t len = t->tok_len[id];
        if (len + 1 > cap) {
            cap = (size_t)len * 2 + 16;
            free(buf);
            if (!(buf = malloc(cap))) goto oom;
        }
        int mapped;
        size_t n = bytelevel_decode(t->a.p + t->tok_off[id], len, buf, &mapped);
        uint32_t off;
        if (arena_put(&t->a, buf, n, &off) < 0) goto oom;
        t->bytes_off[id] = off;
        t->bytes_len[id] = (uint32_t)n;
        if (raw_map && mapped && smap_get(&t->raw, t->a.p, buf, n) < 0 &&
            smap_set(&t->raw, t->a.p, off, (uint32_t)n, id) < 0)
            goto oom;
    }
    free(buf);
    return 0;
oom:
    free(buf);
    seterr(err, errlen, "%s: out of memory", path);
    return -1;
}

/* bos/eos/pad in tokenizer_config.json: a string, {"content": ...}, or null. */
static int config_token(tokenizer *t, const cJSON *cfg, const char *key, const char *path, int *out, char *err, size_t errlen) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) return 0;
    int id = smap_get(&t->vocab, t->a.p, v->valuestring, strlen(v->valuestring));
    if (id < 0) {
        seterr(err, errlen, "%s: %s \"%s\" is not a token of tokenizer.json", path, key, v->valuestring);
        return -1;
    }
    *out = id;
    return 0;
}

static int load_config(tokenizer *t, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) return 0; /* optional */
    cJSON *cfg = parse_json_file(path, err, errlen);
    if (!cfg) return -1;
    int rc = -1;
    if (!cJSON_IsObject(cfg)) { seterr(err, errlen, "%s: expected a JSON object", path); goto out; }
    if (config_token(t, cfg, "bos_token", path, &t->bos, err, errlen) < 0 ||
        config_token(t, cfg, "eos_token", path, &t->eos, err, errlen) < 0 ||
        config_token(t, cfg, "pad_token", path, &t->pad, err, errlen) < 0)
        goto out;
    cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *tmpl = NULL;
    if (cJSON_IsString(ct)) tmpl = ct->valuestring;
    else if (cJSON_IsArray(ct)) {
        cJSON *it;
        cJSON_ArrayForEach(it, ct) {
            cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name"), *tx = cJSON_GetObjectItemCaseSensitive(it, "template");
            if (!cJSON_IsString(tx)) continue;
            if (!tmpl || (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0)) tmpl = tx->valuestring;
        }
    }
    if (tmpl && !(t->chat_template = strdup(tmpl))) { seterr(err, errlen, "%s: out of memory", path); goto out; }
    rc = 0;
out:
    cJSON_Delete(cfg);
    return rc;
}

tokenizer *tokenizer_load(const char *dir_or_file, char *err, size_t errlen) {
    TK_ASSERT(dir_or_file);
    pthread_once(&byte_map_once, byte_map_init);
    struct stat st;
    if (stat(dir_or_file, &st) != 0) {
        seterr(err, errlen, "%s: no such tokenizer folder or tokenizer.json (%s)", dir_or_file, strerror(errno));
        return NULL;
    }
    size_t dl = strlen(dir_or_file);
    char *json_path = malloc(dl + 32), *cfg_path = malloc(dl + 32);
    tokenizer *t = calloc(1, sizeof *t);
    cJSON *root = NULL;
    if (!json_path || !cfg_path || !t) { seterr(err, errlen, "out of memory"); goto fail_early; }
    if (S_ISDIR(st.st_mode)) {
        snprintf(json_path, dl + 32, "%s/tokenizer.json", dir_or_file);
        snprintf(cfg_path, dl + 32, "%s/tokenizer_config.json", dir_or_file);
    } else {
        memcpy(json_path, dir_or_file, dl + 1);
        const char *slash = strrchr(dir_or_file, '/');
        if (slash) snprintf(cfg_path, dl + 32, "%.*s/tokenizer_config.json", (int)(slash - dir_or_file), dir_or_file);
        else snprintf(cfg_path, dl + 32, "tokenizer_config.json");
    }
    pthread_mutex_init(&t->cache_mu, NULL);
    t->bos = t->eos = t->pad = -1;

    root = parse_json_file(json_path, err, errlen);
    if (!root) goto fail;
    if (!cJSON_IsObject(root)) { seterr(err, errlen, "%s: expected a JSON object", json_path); goto fail; }
    cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) {
        seterr(err, errlen, "%s: \"added_tokens\" must be a list", json_path);
        goto fail;
    }
    if (load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), json_path, err, errlen) < 0) goto fail;
    cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pt || cJSON_IsNull(pt)) {
        seterr(err, errlen, "%s: pre_tokenizer is null; a byte-level BPE needs a ByteLevel pre_tokenizer", json_path);
        goto fail;
    }
    if (add_step(t, pt, json_path, err, errlen) < 0) goto fail;
    if (t->n_steps == 0) {
        seterr(err, errlen, "%s: the pre_tokenizer must end with exactly one ByteLevel step", json_path);
        goto fail;
    }
    for (int i = 0; i < t->n_steps; i++) {
        if ((t->steps[i].kind == STEP_BYTELEVEL) != (i == t->n_steps - 1)) {
            seterr(err, errlen, "%s: the pre_tokenizer must end with exactly one ByteLevel step", json_path);
            goto fail;
        }
    }
    cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *dty = json_type_name(dec);
    if (!dty || strcmp(dty, "ByteLevel") != 0) {
        seterr(err, errlen, "%s: decoder \"%s\" is not supported (expected ByteLevel)", json_path, dty ? dty : "null");
        goto fail;
    }
    if (load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), added, json_path, err, errlen) < 0) goto fail;
    if (build_bytes(t, t->ignore_merges, json_path, err, errlen) < 0) goto fail;
    if (added && load_added(t, added, json_path, err, errlen) < 0) goto fail;
    cJSON_Delete(root);
    root = NULL;
    added_set_index(&t->raw_set, t->a.p);
    added_set_index(&t->norm_set, t->a.p);
    if (load_config(t, cfg_path, err, errlen) < 0) goto fail;
    if (t->eos < 0) {
        int id = smap_get(&t->vocab, t->a.p, "<|endoftext|>", 13);
        if (id >= 0 && t->special[id]) t->eos = id;
    }
    free(json_path);
    free(cfg_path);
    return t;
fail:
    cJSON_Delete(root);
fail_early:
    free(json_path);
    free(cfg_path);
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_steps; i++) pcre2_code_free(t->steps[i].re);
    pcre2_code_free(t->word_re);
    free(t->a.p);
    free(t->tok_off);
    free(t->tok_len);
    free(t->bytes_off);
    free(t->bytes_len);
    free(t->special);
    free(t->vocab.slots);
    free(t->raw.slots);
    free(t->merges);
    free(t->raw_set.toks);
    free(t->norm_set.toks);
    free(t->chat_template);
    free(t->cache);
    free(t->cache_keys.p);
    free(t->cache_ids);
    pthread_mutex_destroy(&t->cache_mu);
    free(t);
}

/* ---------------------------------------------------------------------------------------------- */
/* Encoding                                                                                        */

typedef struct { int id, prev, next, alive; } bpe_sym;
typedef struct { uint32_t rank, pos; int id; } bpe_merge;

typedef struct {
    const tokenizer *t;
    int *ids;
    int max;
    long long n;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    bpe_sym *syms;
    size_t syms_cap;
    bpe_merge *heap;
    size_t heap_cap;
    int *tmp_ids;
    size_t tmp_cap;
    char *err;
    size_t errlen;
    int failed;
} enc_state;

static void emit(enc_state *e, int id) {
    if (e->n < e->max) e->ids[e->n] = id;
    e->n++;
}

static int fail_oom(enc_state *e) {
    if (!e->failed) seterr(e->err, e->errlen, "tokenizer_encode: out of memory");
    e->failed = 1;
    return -1;
}

static inline const mmap_slot *merge_get(const tokenizer *t, int a, int b) {
    uint64_t key = pair_key(a, b);
    for (uint32_t i = pair_hash(key) & t->merges_mask;; i = (i + 1) & t->merges_mask) {
        const mmap_slot *s = &t->merges[i];
        if (s->key == key) return s;
        if (s->key == MMAP_EMPTY) return NULL;
    }
}

static inline int merge_less(const bpe_merge *a, const bpe_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(enc_state *e, size_t *n, bpe_merge m) {
    if (*n == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        bpe_merge *p = realloc(e->heap, cap * sizeof *p);
        if (!p) return fail_oom(e);
        e->heap = p;
        e->heap_cap = cap;
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!merge_less(&m, &e->heap[up])) break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i] = m;
    return 0;
}

static bpe_merge heap_pop(enc_state *e, size_t *n) {
    bpe_merge top = e->heap[0], last = e->heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!merge_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (*n) e->heap[i] = last;
    return top;
}

/* Looks the pre-token up in the cache; on a hit appends its ids to e and returns 1. */
static int cache_lookup(enc_state *e, const unsigned char *s, size_t n, uint64_t h) {
    tokenizer *t = (tokenizer *)e->t; /* the cache is the only mutable state, guarded by cache_mu */
    int hit = 0;
    pthread_mutex_lock(&t->cache_mu);
    if (t->cache) {
        for (uint32_t i = (uint32_t)h & (TK_CACHE_SLOTS - 1);; i = (i + 1) & (TK_CACHE_SLOTS - 1)) {
            cache_slot *c = &t->cache[i];
            if (c->klen == 0) break;
            if (c->hash == h && c->klen == n && memcmp(t->cache_keys.p + c->koff, s, n) == 0) {
                for (uint32_t k = 0; k < c->nids; k++) emit(e, t->cache_ids[c->ioff + k]);
                hit = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&t->cache_mu);
    return hit;
}

static void cache_store(enc_state *e, const unsigned char *s, size_t n, uint64_t h, const int *ids, size_t nids) {
    tokenizer *t = (tokenizer *)e->t;
    pthread_mutex_lock(&t->cache_mu);
    if (!t->cache) {
        t->cache = calloc(TK_CACHE_SLOTS, sizeof *t->cache);
        t->cache_ids_cap = TK_CACHE_SLOTS * 4;
        t->cache_ids = malloc(t->cache_ids_cap * sizeof *t->cache_ids);
        if (!t->cache || !t->cache_ids) {
            free(t->cache); free(t->cache_ids);
            t->cache = NULL; t->cache_ids = NULL;
            goto out;
        }
    }
    if (t->cache_count >= TK_CACHE_SLOTS / 2 || t->cache_nids + nids > t->cache_ids_cap) {
        memset(t->cache, 0, TK_CACHE_SLOTS * sizeof *t->cache); /* full: start over */
        t->cache_count = 0;
        t->cache_nids = 0;
        t->cache_keys.n = 0;
    }
    uint32_t i = (uint32_t)h & (TK_CACHE_SLOTS - 1);
    for (;; i = (i + 1) & (TK_CACHE_SLOTS - 1)) {
        cache_slot *c = &t->cache[i];
        if (c->klen == 0) break;
        if (c->hash == h && c->klen == n && memcmp(t->cache_keys.p + c->koff, s, n) == 0) goto out; /* another thread */
    }
    uint32_t koff;
    if (arena_put(&t->cache_keys, s, n, &koff) < 0) goto out;
    cache_slot *c = &t->cache[i];
    c->hash = h;
    c->koff = koff;
    c->klen = (uint32_t)n;
    c->ioff = (uint32_t)t->cache_nids;
    c->nids = (uint32_t)nids;
    memcpy(t->cache_ids + t->cache_nids, ids, nids * sizeof *ids);
    t->cache_nids += nids;
    t->cache_count++;
out:
    pthread_mutex_unlock(&t->cache_mu);
}

/* BPE of one pre-token (raw bytes s[0..n)), appending its ids: tokenizers' BPE::tokenize_with_cache
 * -> merge_word -> Word::merge_all (models/bpe/model.rs, word.rs). */
static int bpe_piece(enc_state *e, const unsigned char *s, size_t n) {
    const tokenizer *t = e->t;
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int id = smap_get(&t->raw, t->a.p, s, n);
        if (id >= 0) { emit(e, id); return 0; }
    }
    if (n == 1 && t->byte_id[s[0]] >= 0) { emit(e, t->byte_id[s[0]]); return 0; }
    uint64_t h = 0;
    int cacheable = n <= TK_CACHE_MAX_KEY;
    if (cacheable) {
        h = tk_hash(s, n);
        if (cache_lookup(e, s, n, h)) return 0;
    }
    if (n > e->syms_cap) {
        size_t cap = n < 64 ? 64 : n * 2;
        bpe_sym *p = realloc(e->syms, cap * sizeof *p);
        if (!p) return fail_oom(e);
        e->syms = p;
        e->syms_cap = cap;
    }
    /* Initial symbols: one per byte; bytes missing from the vocab become unk (fused when
     * fuse_unk) or are dropped when there is no unk token. */
    bpe_sym *sy = e->syms;
    int m = 0, pending_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[s[i]];
        if (id >= 0) {
            if (pending_unk) { sy[m].id = t->unk_id; m++; pending_unk = 0; }
            sy[m].id = id;
            m++;
        } else if (t->unk_id >= 0) {
            if (pending_unk && !t->fuse_unk) { sy[m].id = t->unk_id; m++; }
            pending_unk = 1;
        }
    }
    if (pending_unk) { sy[m].id = t->unk_id; m++; }
    for (int i = 0; i < m; i++) { sy[i].prev = i - 1; sy[i].next = i + 1 < m ? i + 1 : -1; sy[i].alive = 1; }

    size_t hn = 0;
    for (int i = 0; i + 1 < m; i++) {
        const mmap_slot *ms = merge_get(t, sy[i].id, sy[i + 1].id);
        if (ms && heap_push(e, &hn, (bpe_merge){ ms->rank, (uint32_t)i, ms->id }) < 0) return -1;
    }
    while (hn) {
        bpe_merge top = heap_pop(e, &hn);
        bpe_sym *cur = &sy[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        bpe_sym *right = &sy[cur->next];
        const mmap_slot *ms = merge_get(t, cur->id, right->id);
        if (!ms || ms->id != top.id) continue; /* stale */
        cur->id = top.id;
        right->alive = 0;
        cur->next = right->next;
        if (right->next >= 0) sy[right->next].prev = (int)top.pos;
        if (cur->prev >= 0) {
            ms = merge_get(t, sy[cur->prev].id, cur->id);
            if (ms && heap_push(e, &hn, (bpe_merge){ ms->rank, (uint32_t)cur->prev, ms->id }) < 0) return -1;
        }
        if (cur->next >= 0) {
            ms = merge_get(t, cur->id, sy[cur->next].id);
            if (ms && heap_push(e, &hn, (bpe_merge){ ms->rank, top.pos, ms->id }) < 0) return -1;
        }
    }
    size_t k = 0;
    if (cacheable && (size_t)m > e->tmp_cap) {
        size_t cap = (size_t)m * 2;
        int *p = realloc(e->tmp_ids, cap * sizeof *p);
        if (!p) return fail_oom(e);
        e->tmp_ids = p;
        e->tmp_cap = cap;
    }
    for (int i = 0; i < m; i++) {
        if (!sy[i].alive) continue;
        emit(e, sy[i].id);
        if (cacheable) e->tmp_ids[k++] = sy[i].id;
    }
    if (cacheable) cache_store(e, s, n, h, e->tmp_ids, k);
    return 0;
}

static int pretokenize(enc_state *e, int step, const unsigned char *s, size_t n);

/* One pcre2_match, retrying with a growing JIT stack when the default 32 KiB one is too small. */
static int re_match(enc_state *e, const pcre2_code *re, const unsigned char *s, size_t n, size_t off, size_t *ms, size_t *me) {
    for (;;) {
        int rc = pcre2_match(re, s, n, off, PCRE2_NO_UTF_CHECK, e->md, e->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && (!e->jstack || !e->mctx)) {
            e->mctx = pcre2_match_context_create(NULL);
            e->jstack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
            if (!e->mctx || !e->jstack) return fail_oom(e);
            pcre2_jit_stack_assign(e->mctx, NULL, e->jstack);
            continue;
        }
        if (rc < 0) {
            char msg[256];
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
            seterr(e->err, e->errlen, "tokenizer_encode: pre-tokenizer regex failed on a %zu-byte piece: %s", n, msg);
            e->failed = 1;
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        *ms = ov[0];
        *me = ov[1];
        return 1;
    }
}

/* Split with behavior Isolated (tokenizers' NormalizedString::split): matches and the gaps
 * between them each become a piece; empty pieces are dropped. */
static int re_split(enc_state *e, int step, const pcre2_code *re, const unsigned char *s, size_t n) {
    size_t off = 0, prev = 0;
    while (off <= n) {
        size_t ms, me;
        int r = re_match(e, re, s, n, off, &ms, &me);
        if (r < 0) return -1;
        if (r == 0) break;
        if (ms > prev && pretokenize(e, step + 1, s + prev, ms - prev) < 0) return -1;
        if (me > ms && pretokenize(e, step + 1, s + ms, me - ms) < 0) return -1;
        prev = me;
        if (me > ms) off = me;
        else {
            if (me >= n) break;
            off = me + 1;
            while (off < n && (s[off] & 0xC0) == 0x80) off++;
        }
    }
    if (prev < n && pretokenize(e, step + 1, s + prev, n - prev) < 0) return -1;
    return 0;
}

/* Runs pre-tokenizer steps step.. on a piece of valid UTF-8; after the last step, BPE. */
static int pretokenize(enc_state *e, int step, const unsigned char *s, size_t n) {
    const tokenizer *t = e->t;
    if (n == 0) return 0;
    if (step == t->n_steps) return bpe_piece(e, s, n);
    const pt_step *st = &t->steps[step];
    if (st->kind == STEP_BYTELEVEL && st->add_prefix_space && s[0] != ' ') {
        unsigned char *p = malloc(n + 1);
        if (!p) return fail_oom(e);
        p[0] = ' ';
        memcpy(p + 1, s, n);
        int r = st->re ? re_split(e, step, st->re, p, n + 1) : pretokenize(e, step + 1, p, n + 1);
        free(p);
        return r;
    }
    if (!st->re) return pretokenize(e, step + 1, s, n);
    return re_split(e, step, st->re, s, n);
}

typedef struct { size_t start, end; int id; } seg;

static int push_seg(enc_state *e, seg **segs, size_t *cap, long *ns, size_t a, size_t b, int id) {
    if ((size_t)*ns == *cap) {
        size_t c2 = *cap ? *cap * 2 : 16;
        seg *p = realloc(*segs, c2 * sizeof *p);
        if (!p) return fail_oom(e);
        *segs = p;
        *cap = c2;
    }
    (*segs)[(*ns)++] = (seg){ a, b, id };
    return 0;
}

/* Is the character ending at s[end-1] / starting at s[start] a word character (\w)? */
static int word_char_at(const tokenizer *t, const unsigned char *s, size_t n, size_t at, pcre2_match_data *md) {
    return pcre2_match(t->word_re, s, n, at, PCRE2_NO_UTF_CHECK, md, NULL) >= 0;
}

/* tokenizers' AddedVocabulary::find_matches on s[0..n): leftmost-longest non-overlapping matches of
 * the set's tokens, single_word filtering, then lstrip/rstrip widening over Unicode white space.
 * Appends each gap (id -1) and token piece to *segs (grown as needed). Returns the number of
 * segments or -1 (out of memory). single_word looks at characters only when s[0..n) is
 * valid UTF-8 around the match (it always is for text handed to this function's callers). */
static long find_added(enc_state *e, const added_set *set, const unsigned char *s, size_t n, seg **segs, size_t *cap) {
    const tokenizer *t = e->t;
    long ns = 0;
    size_t start_off = 0, i = 0;
    while (set->n && i < n) {
        int lo = set->first[s[i]], hi = set->first[s[i] + 1];
        const added_tok *hit = NULL;
        for (int k = lo; k < hi; k++) {
            const added_tok *a = &set->toks[k];
            if (a->len <= n - i && memcmp(t->a.p + a->off, s + i, a->len) == 0) { hit = a; break; }
        }
        if (!hit) { i++; continue; }
        size_t start = i, stop = i + hit->len;
        i = stop;
        if (hit->single_word) {
            int start_space = start == 0 || !word_char_at(t, s, n, utf8_prev(s, start), e->md);
            int stop_space = stop == n || !word_char_at(t, s, n, stop, e->md);
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t ns2 = start;
            while (ns2 > 0) {
                size_t p = utf8_prev(s, ns2);
                uint32_t cp;
                utf8_next(s + p, &cp);
                if (!is_white_space(cp)) break;
                ns2 = p;
            }
            start = ns2 > start_off ? ns2 : start_off;
        }
        if (hit->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = utf8_next(s + stop, &cp);
                if (!is_white_space(cp)) break;
                stop += (size_t)l;
            }
            i = stop;
        }
        if (start_off < start && push_seg(e, segs, cap, &ns, start_off, start, -1) < 0) return -1;
        if (push_seg(e, segs, cap, &ns, start, stop, hit->id) < 0) return -1;
        start_off = stop;
    }
    if (start_off < n && push_seg(e, segs, cap, &ns, start_off, n, -1) < 0) return -1;
    return ns;
}

/* A gap of valid UTF-8 between raw added tokens: normalize, split out normalized added tokens,
 * pre-tokenize and BPE. */
static int encode_valid(enc_state *e, const unsigned char *s, size_t n) {
    const tokenizer *t = e->t;
    char *norm = NULL;
    if (t->nfc) {
        size_t nl;
        int r = tokenizer_nfc((const char *)s, n, &norm, &nl);
        if (r < 0) return fail_oom(e);
        if (r == 1) { s = (const unsigned char *)norm; n = nl; }
    }
    int rc = 0;
    if (t->norm_set.n == 0) {
        rc = pretokenize(e, 0, s, n);
    } else {
        seg *segs = NULL;
        size_t cap = 0;
        long ns = find_added(e, &t->norm_set, s, n, &segs, &cap);
        if (ns < 0) rc = -1;
        for (long k = 0; k < ns && rc == 0; k++) {
            if (segs[k].id >= 0) emit(e, segs[k].id);
            else rc = pretokenize(e, 0, s + segs[k].start, segs[k].end - segs[k].start);
        }
        free(segs);
    }
    free(norm);
    return rc;
}

int tokenizer_encode_err(const tokenizer *t, const char *text, size_t len, int *ids, int max_ids, char *err, size_t errlen) {
    TK_ASSERT(t && (text || len == 0) && max_ids >= 0 && (ids || max_ids == 0));
    enc_state e = { .t = t, .ids = ids, .max = max_ids, .err = err, .errlen = errlen };
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) { seterr(err, errlen, "tokenizer_encode: out of memory"); return -1; }
    const unsigned char *s = (const unsigned char *)text;
    seg *segs = NULL;
    size_t cap = 0;
    int rc = 0;
    long ns = find_added(&e, &t->raw_set, s, len, &segs, &cap);
    if (ns < 0) rc = -1;
    for (long k = 0; k < ns && rc == 0; k++) {
        if (segs[k].id >= 0) { emit(&e, segs[k].id); continue; }
        size_t i = segs[k].start, end = segs[k].end;
        while (i < end && rc == 0) {
            size_t v = utf8_valid_prefix(s + i, end - i);
            if (v) { rc = encode_valid(&e, s + i, v); i += v; }
            else { rc = bpe_piece(&e, s + i, 1); i++; } /* an invalid byte: its own pre-token */
        }
    }
    free(segs);
    free(e.syms);
    free(e.heap);
    free(e.tmp_ids);
    pcre2_match_data_free(e.md);
    pcre2_match_context_free(e.mctx);
    pcre2_jit_stack_free(e.jstack);
    if (rc < 0 || e.failed) return -1;
    if (e.n > INT_MAX) { seterr(err, errlen, "tokenizer_encode: more than INT_MAX ids"); return -1; }
    return (int)e.n;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int *ids, int max_ids) {
    return tokenizer_encode_err(t, text, len, ids, max_ids, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Decoding and lookups                                                                            */

int tokenizer_decode(const tokenizer *t, const int *ids, int n, int skip_special, char *out, size_t outlen) {
    TK_ASSERT(t && n >= 0 && (ids || n == 0) && (out || outlen == 0));
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX) return -1;
        if (skip_special && t->special[id]) continue;
        size_t bl = t->bytes_len[id];
        if (total < outlen) {
            size_t room = outlen - 1 - total;
            memcpy(out + total, t->a.p + t->bytes_off[id], bl < room ? bl : room);
        }
        total += bl;
        if (total > INT_MAX) return -1;
    }
    if (outlen) out[total < outlen ? total : outlen - 1] = 0;
    return (int)total;
}

const char *tokenizer_token_bytes(const tokenizer *t, int id, size_t *len) {
    TK_ASSERT(t && len);
    if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX) { *len = 0; return NULL; }
    *len = t->bytes_len[id];
    return t->a.p + t->bytes_off[id];
}

int tokenizer_vocab_size(const tokenizer *t) { TK_ASSERT(t); return t->n_ids; }

int tokenizer_token_id(const tokenizer *t, const char *token) {
    TK_ASSERT(t && token);
    return smap_get(&t->vocab, t->a.p, token, strlen(token));
}

const char *tokenizer_id_to_token(const tokenizer *t, int id) {
    TK_ASSERT(t);
    if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX) return NULL;
    return t->a.p + t->tok_off[id];
}

int tokenizer_is_special(const tokenizer *t, int id) {
    TK_ASSERT(t);
    return id >= 0 && id < t->n_ids && t->special[id];
}

int tokenizer_eos_id(const tokenizer *t) { TK_ASSERT(t); return t->eos; }
int tokenizer_bos_id(const tokenizer *t) { TK_ASSERT(t); return t->bos; }
int tokenizer_pad_id(const tokenizer *t) { TK_ASSERT(t); return t->pad; }
const char *tokenizer_chat_template(const tokenizer *t) { TK_ASSERT(t); return t->chat_template; }
