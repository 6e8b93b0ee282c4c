/*
 * trainer/checkpoint.h: checkpoint folders that survive crashes.
 *
 * A checkpoint is a Hugging Face model folder (config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json) plus optimizer.bin (AdamW moments, grpo2048's format) and trainer_state.json
 * (step, seed, the effective config). It is written into DIR.tmp, flushed, and then renamed to DIR, so
 * a crash leaves either the old checkpoint or the new one, never half of one.
 */
#ifndef GRPO2048_CHECKPOINT_H
#define GRPO2048_CHECKPOINT_H

#include <stddef.h>

#include "model/llama.h"
#include "trainer/optim.h"

/* Saves model m (fp32 safetensors), the tokenizer files found in tokenizer_dir (copied as they are),
 * the optimizer state (NULL: none) and trainer_state.json {"global_step", "config"} into dir.
 * Returns 0, or -1 with a message naming the file that failed. */
int checkpoint_save(const char *dir, const llama_model *m, const adamw_state *opt, const char *tokenizer_dir,
                    int step, const char *config_yaml, char *err, size_t errlen);

/* Copies src to dst through dst.tmp + rename. Returns 0, or -1 with a message. */
int copy_file_atomic(const char *src, const char *dst, char *err, size_t errlen);

/* Removes a folder and everything in it (like rm -rf). Returns 0 or -1 (errno set). */
int remove_tree(const char *path);

/* mkdir -p. Returns 0 or -1 with a message. */
int make_dirs(const char *path, char *err, size_t errlen);

#endif
