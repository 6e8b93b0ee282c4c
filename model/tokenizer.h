/*
 * model/tokenizer.h: byte-level BPE tokenizer compatible with Hugging Face `tokenizers`.
 *
 * Loads a `tokenizer.json` of the kind GPT-2, Qwen2/2.5/3, Llama 3 and SmolLM2 ship (BPE model over
 * GPT-2's byte->unicode alphabet) and encodes/decodes token for token as the `tokenizers` library
 * does with add_special_tokens=False: added tokens are split out first, the rest is NFC-normalized
 * (if the file says so), pre-tokenized (Split regexes, Digits, ByteLevel) and BPE-merged by merge
 * rank. Post-processors (e.g. Llama 3 prepending <|begin_of_text|>) are NOT applied: chat templates
 * (model/chat_template.h) write such tokens explicitly. tokenizer_config.json next to the file
 * supplies the bos/eos/pad tokens and the chat template text.
 *
 * Known differences (see model/tokenizer.c): regex character classes use PCRE2's Unicode 14
 * tables, invalid UTF-8 is encoded/decoded byte for byte rather than rejected/replaced.
 *
 * Thread safety: a loaded tokenizer is read-only apart from an internal merge cache guarded by a
 * mutex, so tokenizer_encode/decode may be called from several threads at once.
 */
#ifndef GRPO2048_TOKENIZER_H
#define GRPO2048_TOKENIZER_H

#include <stddef.h>

typedef struct tokenizer tokenizer;

/* Loads a tokenizer from a folder holding tokenizer.json (and optionally tokenizer_config.json), or
 * from the path of a tokenizer.json (tokenizer_config.json is then looked for in the same folder).
 * Supported: model BPE (or the old type-less form), merges as "a b" strings or ["a","b"] pairs,
 * ignore_merges, unk_token/fuse_unk; normalizer null, NFC or a Sequence of NFC; pre_tokenizer
 * ByteLevel, Split (Regex or String pattern, behavior Isolated, invert false), Digits, or a Sequence
 * of these, with exactly one ByteLevel; decoder ByteLevel; added tokens with lstrip/rstrip/
 * single_word/normalized flags. Anything else (Unigram/WordPiece models, Metaspace, Lowercase,
 * dropout, byte_fallback, subword prefixes...) is an error naming the component.
 * Returns NULL on error with a message in err (errlen bytes, may be 0): unreadable files, malformed
 * JSON, unsupported components, merges naming tokens missing from the vocab, bos/eos/pad tokens in
 * tokenizer_config.json that are not tokens of tokenizer.json. Loading Qwen3's 11 MB file takes
 * about 0.2 s of CPU (cJSON parse, then hash-map building bound by cache misses). */
tokenizer *tokenizer_load(const char *dir_or_file, char *err, size_t errlen);
void tokenizer_free(tokenizer *t);

/* Highest token id + 1 (V), added tokens included. Ids below it may be holes (no token). */
int tokenizer_vocab_size(const tokenizer *t);

/* Encodes len bytes of text into token ids, exactly as Hugging Face tokenizers'
 * encode(text, add_special_tokens=False). Writes at most max_ids ids (ids may be NULL when
 * max_ids is 0) and returns the total number of ids the text encodes to: when that exceeds max_ids,
 * call again with a bigger buffer. Text that is not valid UTF-8 (which `tokenizers` cannot take) is
 * still encoded losslessly: each byte of an invalid sequence becomes its own pre-token. Returns -1
 * on error (out of memory, a regex engine failure such as its match limit, more than INT_MAX ids);
 * tokenizer_encode_err gives the message. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int *ids, int max_ids);
int tokenizer_encode_err(const tokenizer *t, const char *text, size_t len, int *ids, int max_ids,
                         char *err, size_t errlen);

/* Decodes n ids into out (outlen bytes, NUL-terminated when outlen > 0), as tokenizers' decode
 * with the ByteLevel decoder, except that bytes which are not valid UTF-8 are written as they are
 * (tokenizers replaces them with U+FFFD). skip_special != 0 leaves out special added tokens
 * (tokens flagged "special"); other added tokens are written as their content. Returns the length
 * of the full decoded text in bytes (excluding the NUL, snprintf-style: a result >= outlen means
 * out was too small and holds a truncated prefix), or -1 when an id is out of range or names no
 * token. The text may contain NUL bytes (token for byte 0). */
int tokenizer_decode(const tokenizer *t, const int *ids, int n, int skip_special, char *out, size_t outlen);

/* The raw bytes a single token decodes to (its ByteLevel decoding, or an added token's content);
 * *len gets their count. NULL for an invalid id. Useful to stream text during generation. */
const char *tokenizer_token_bytes(const tokenizer *t, int id, size_t *len);

/* Exact token string (as written in tokenizer.json, e.g. "Ġthe" or "<|im_end|>") -> id; added tokens
 * take precedence over the model vocab. -1 if no such token. */
int tokenizer_token_id(const tokenizer *t, const char *token);
/* id -> token string as in tokenizer.json (NUL-terminated, owned by t), NULL if out of range/hole. */
const char *tokenizer_id_to_token(const tokenizer *t, int id);
/* 1 if id is an added token flagged special, else 0. */
int tokenizer_is_special(const tokenizer *t, int id);

/* Ids of tokenizer_config.json's bos_token / eos_token / pad_token; -1 when not given. When
 * tokenizer_config.json gives no eos_token (GPT-2's), the added token "<|endoftext|>" is used if
 * present. */
int tokenizer_eos_id(const tokenizer *t);
int tokenizer_bos_id(const tokenizer *t);
int tokenizer_pad_id(const tokenizer *t);
/* tokenizer_config.json's chat_template (Jinja text; the "default" one when it is a list), or NULL. */
const char *tokenizer_chat_template(const tokenizer *t);

/* NFC of n bytes of valid UTF-8 text (UAX #15 with Unicode 9.0 tables, as Hugging Face tokenizers'
 * NFC normalizer). Returns 0 when the text is already in NFC by a quick check (*out = NULL), 1 with
 * a malloc'ed NUL-terminated normalized copy in *out (*outlen bytes) otherwise, -1 when out of
 * memory. Invalid UTF-8 input is a programming error (not checked). */
int tokenizer_nfc(const char *in, size_t n, char **out, size_t *outlen);

#endif
