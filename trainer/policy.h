/*
 * trainer/policy.h: what the trainer's commands share — reading the command line into a config, and
 * loading the policy (model + tokenizer + chat template) named by model_name_or_path.
 */
#ifndef GRPO2048_POLICY_H
#define GRPO2048_POLICY_H

#include <stddef.h>

#include "model/chat_template.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "rewards/rewards.h"
#include "trainer/config.h"
#include "trainer/optim.h"

/* Parses `CONFIG.yaml [--set key=value ...] [--help]` for `command` ("train" or "sft") into c
 * (defaults, then the file, then the --set overrides in order, then config_validate). For "train",
 * `--resume [CHECKPOINT_DIR|latest]` (or --resume=VALUE) sets c->resume_from_checkpoint, "latest"
 * when no folder follows.
 * Returns 0; 1 when --help was printed (the caller exits 0); -1 with a message naming the file,
 * line and key (or --set) on error. On 1 and -1, c has been freed already. */
int policy_parse_args(int argc, char **argv, const char *command, grpo_config *c, char *err, size_t errlen);

typedef struct {
    llama_model model;
    tokenizer *tok;
    chat_format chat;
    int stop_ids[9];          /* end-of-turn id and the model's eos ids: a row stops at any of them */
    int num_stop;
    int pad_id;               /* token written after a row's end (never attended to: right padding) */
} policy;

/* Loads model_name_or_path's config.json + model.safetensors (or, when from_scratch, a random init
 * with std 0.02 and the config's seed), tokenizer.json and the chat template named by c->chat_template.
 * Returns 0 or -1 with a message. */
int policy_load(policy *p, const grpo_config *c, int from_scratch, char *err, size_t errlen);
void policy_free(policy *p);

/* Renders system prompt + user text with the chat template and tokenizes it.
 * Returns a malloc'd (n,) id array with *n set, or NULL with a message. */
int *policy_encode_prompt(const policy *p, const char *system_prompt, const char *user, int *n,
                          char *err, size_t errlen);

/* Tokenizes plain text (no template). Returns malloc'd ids with *n set, or NULL with a message. */
int *policy_encode_text(const policy *p, const char *text, int *n, char *err, size_t errlen);

/* Decodes ids (n,) without special tokens; returns a malloc'd NUL-terminated string. */
char *policy_decode(const policy *p, const int *ids, int n);

/* 1 when id is one of the policy's stop ids. */
int policy_is_stop(const policy *p, int id);

/* The AdamW weight-decay flags of every parameter (num_params,): 1 in matrices, 0 in norms and biases
 * (HF Trainer's no-decay rule, from llama_tensor.decay). malloc'd; NULL when out of memory. */
unsigned char *policy_decay_mask(const llama_model *m);

/* AdamW hyper-parameters from the config (learning_rate, adam_beta1/2, adam_epsilon, weight_decay). */
adamw_hparams policy_adamw_hparams(const grpo_config *c);

/* The reward pool's configuration from the config's rewards section (parallel, workers, timeout,
 * games_per_strategy, board_size, target, probability_fours, max_stuck_moves, memory_limit_mb in MiB ->
 * bytes, the functions' weights). workers 0 becomes this rank's share of the node's cores
 * (dist_default_workers), and 1 when rewards.parallel is false. */
reward_config policy_reward_config(const grpo_config *c);

/* Seconds on a monotonic clock. */
double now_seconds(void);

/* A copy of s (NUL-terminated bytes) that is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * at most U+10FFFF): each ill-formed part becomes one U+FFFD — a byte that cannot start a character,
 * or the longest valid prefix of an incomplete character — as Python's errors="replace" does. For printing decoded completions as JSON (a completion can end inside a
 * character, or be made of byte tokens). malloc'ed (at most 3 x strlen(s) + 1 bytes); NULL when out
 * of memory. */
char *policy_utf8_valid_copy(const char *s);

#endif
