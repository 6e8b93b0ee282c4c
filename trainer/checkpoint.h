/*
 * trainer/checkpoint.h: checkpoint folders that survive crashes, and reading them back to resume.
 *
 * A checkpoint OUTPUT_DIR/checkpoint-N is a Hugging Face model folder (config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json) plus optimizer.bin (AdamW moments and step count, grpo2048's
 * format) and trainer_state.json:
 *   {"format": "grpo2048 checkpoint", "version": 2, "kind": "grpo"|"sft", "global_step": N,
 *    "run_id": the metrics run it belongs to, "num_input_tokens_seen": tokens so far (TRL num_tokens),
 *    "has_generation": a buffered generation (generation.bin; in a data-parallel run also
 *    generation.rank<k>.bin of rank k, written by trainer/train.c) is part of the state,
 *    "has_ref_model": the reference model (ref_model/, config.json + model.safetensors) is part of it,
 *    "config_values": {key: value as config_format_value writes it}, "config": the effective YAML}.
 * The caller may add files of its own (generation.bin, ref_model/) through a callback. Everything is
 * written into DIR.tmp, each file flushed, then DIR.tmp is renamed to DIR, so a crash at any moment
 * leaves either the previous checkpoint or the new one, never half of one; trainer_state.json is
 * written last, so a folder without it is not a checkpoint.
 */
#ifndef GRPO2048_CHECKPOINT_H
#define GRPO2048_CHECKPOINT_H

#include <stddef.h>

#include "model/llama.h"
#include "trainer/config.h"
#include "trainer/optim.h"

typedef struct {
    const char *kind;              /* "grpo" or "sft" */
    int global_step;               /* optimizer steps done */
    int run_id;                    /* the metrics run (0 = none) */
    double num_input_tokens_seen;  /* prompt + completion tokens so far */
    int has_generation;            /* the extra callback writes generation.bin */
    int has_ref_model;             /* the extra callback writes ref_model/ */
    const char *config_yaml;       /* effective configuration text (NULL = "") */
    const grpo_config *config;     /* for config_values (NULL = none) */
    int world_size;                /* data-parallel ranks that trained it (trainer/dist.h); 0 is written as 1 */
} checkpoint_info;

/* Writes extra files into tmp_dir (the folder being assembled). Returns 0 or -1 with a message. */
typedef int (*checkpoint_extra_fn)(const char *tmp_dir, void *ctx, char *err, size_t errlen);

/* Saves model m (fp32 safetensors), the tokenizer files found in tokenizer_dir (copied as they are),
 * the optimizer state (NULL: none), whatever extra(ctx) writes (extra may be NULL) and
 * trainer_state.json into dir, atomically as described above. Returns 0, or -1 with a message naming
 * the file that failed. */
int checkpoint_save(const char *dir, const llama_model *m, const adamw_state *opt, const char *tokenizer_dir,
                    const checkpoint_info *info, checkpoint_extra_fn extra, void *ctx, char *err, size_t errlen);

/* trainer_state.json read back. */
typedef struct {
    char kind[16];
    int global_step, run_id;
    double num_input_tokens_seen;
    int has_generation, has_ref_model;
    int world_size;                /* ranks that trained it; 1 when trainer_state.json has no "world_size" */
    char *config_yaml;             /* malloc'd */
    int nvalues;
    char **keys, **values;         /* (nvalues,) malloc'd config_values */
} checkpoint_state;

/* Reads dir/trainer_state.json and checks that the files the state names exist and are not empty
 * (config.json, model.safetensors, optimizer.bin, and generation.bin / ref_model/ when listed).
 * Returns 0, or -1 with a message saying what is wrong: not a folder, not a checkpoint (no
 * trainer_state.json), written by an older grpo2048, a malformed field, a missing or empty file. */
int checkpoint_read_state(const char *dir, checkpoint_state *st, char *err, size_t errlen);
void checkpoint_state_free(checkpoint_state *st);

/* The stored text of config key `key`, or NULL when the checkpoint does not list it. */
const char *checkpoint_state_value(const checkpoint_state *st, const char *key);

/* Refuses a checkpoint whose model is not the architecture of model_dir's: compares the two
 * config.json files' architecture and every shape field (vocab, hidden, intermediate, layers, heads,
 * key/value heads, head_dim, tied embeddings, attention bias, rope theta, rms eps). Returns 0, or -1
 * with a message naming the first field that differs and both values. */
int checkpoint_check_architecture(const char *ckpt_dir, const char *model_dir, char *err, size_t errlen);

/* Compares the values st recorded for the keys in must_match (NULL-terminated) with c's: returns 0,
 * or -1 with a message naming each differing key, the checkpoint's value and the config's. When
 * `changed` is not NULL it receives (changedlen bytes) "key: old -> new" for every other key whose
 * value differs, "; "-separated (keys in `ignore`, NULL-terminated, are skipped). */
int checkpoint_check_config(const checkpoint_state *st, const grpo_config *c, const char *const *must_match,
                            const char *const *ignore, char *changed, size_t changedlen, char *err, size_t errlen);

/* The steps of the complete checkpoints (checkpoint-N folders holding trainer_state.json) in
 * output_dir, ascending, into steps (at most max); returns how many there are (may exceed max), 0 when
 * the folder does not exist. */
int checkpoint_list(const char *output_dir, int *steps, int max);

/* Writes output_dir/checkpoint-N of the newest complete checkpoint into out. Returns 0, or -1 with a
 * message when there is none. */
int checkpoint_find_latest(const char *output_dir, char *out, size_t outlen, char *err, size_t errlen);

/* save_total_limit: deletes the oldest checkpoints in output_dir until at most `limit` remain (limit
 * 0 = keep all); never deletes checkpoint-`keep_step`. Returns the number deleted. */
int checkpoint_rotate(const char *output_dir, int limit, int keep_step);

/* Copies src to dst through dst.tmp + rename. Returns 0, or -1 with a message. */
int copy_file_atomic(const char *src, const char *dst, char *err, size_t errlen);

/* Writes len bytes to path through path.tmp, fsync and rename. Returns 0, or -1 with a message. */
int write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Removes a folder and everything in it (like rm -rf). Returns 0 or -1 (errno set). */
int remove_tree(const char *path);

/* Copies every tokenizer file src_dir has (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, chat_template.jinja, chat_template.json, added_tokens.json, vocab.json,
 * merges.txt, tokenizer.model) into dst_dir, each atomically; a file missing in src_dir is skipped, one
 * that is already the same file is left alone. Returns how many src_dir has, or -1 with a message. */
int copy_tokenizer_files(const char *src_dir, const char *dst_dir, char *err, size_t errlen);

/* mkdir -p. Returns 0 or -1 with a message. */
int make_dirs(const char *path, char *err, size_t errlen);

/* One writer per output folder: creates output_dir (mkdir -p) and takes an exclusive advisory lock
 * (flock) on output_dir/.lock, writing this process's pid into it. The lock lives as long as the
 * returned fd (close-on-exec; the kernel drops it when the process dies, however it dies), so keep the
 * fd open for the whole run. Returns the fd (≥ 0), or -1 with a message: the folder cannot be created,
 * or another process holds the lock ("<output_dir> is in use by another grpo2048 run (pid N); ..."). */
int run_lock_acquire(const char *output_dir, char *err, size_t errlen);

#endif
