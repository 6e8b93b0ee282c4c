/*
 * trainer/config.h: grpo2048's configuration — one table of keys, and everything built from it.
 *
 * Every key (its dotted name, type, default, allowed range, one-line help and the commands that use
 * it) is one row of a table in config.c. The YAML loader (config_load_file), the `--set key=value`
 * overrides (config_set), the `--help` key list (config_print_help), docs/config.md
 * (config_write_markdown) and the effective-config dump (config_to_yaml) all read that table, so they
 * cannot disagree. Key names and defaults are TRL's GRPOConfig / SFTConfig ones where TRL has the
 * concept; the `rewards:` section is grpo2048's own.
 *
 * Values land in a plain struct, grpo_config, with one field per key (the field is named like the key;
 * `rewards.x` keys live in the nested `rewards` struct). Types map as: bool → bool, int → int,
 * float → double, string → malloc'd char * (never NULL after config_defaults), enum → const char *
 * pointing at one of the table's static allowed names (compare with strcmp, never free), and the
 * reward-weight map → rewards.weights[4] in CONFIG_REWARD_* order.
 *
 * Order of application: config_defaults, then config_load_file (any number of files, later ones win),
 * then config_set for each --set in order, then config_validate for the command about to run.
 * User errors come back as -1 plus a message naming the file and 1-based line (or "--set"), the key,
 * and what was expected; misuse of the API (NULL config, unknown command name) aborts with file:line.
 */
#ifndef GRPO2048_CONFIG_H
#define GRPO2048_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Reward functions, in the order of rewards.weights and of the metrics file's columns. */
enum {
    CONFIG_REWARD_FUNCTION_WORKS = 0,     /* the completion holds a strategy that parses and runs */
    CONFIG_REWARD_NO_CHEATING = 1,        /* it imports only allowed modules */
    CONFIG_REWARD_STRATEGY_SUCCEEDS = 2,  /* it reaches the target tile */
    CONFIG_REWARD_GAME_PROGRESS = 3,      /* partial credit for how far the game got */
    CONFIG_NUM_REWARDS = 4
};

/* "function_works", "no_cheating", "strategy_succeeds", "game_progress" (CONFIG_REWARD_* order). */
extern const char *const config_reward_names[CONFIG_NUM_REWARDS];

/* The default `prompt`: the public Unsloth 2048 notebook's prompt, exact text, no trailing newline. */
extern const char *const config_default_prompt;

typedef struct {
    bool parallel;              /* rewards.parallel: false = one job at a time, verbose, for debugging */
    bool overlap;               /* rewards.overlap: score each completion while the other rows still decode */
    int workers;                /* rewards.workers: pool processes; 0 = number of cores */
    double timeout;             /* rewards.timeout: seconds of wall time per game */
    int games_per_strategy;     /* rewards.games_per_strategy: games played by each completion */
    int board_size;             /* rewards.board_size: N of the N×N board */
    int target;                 /* rewards.target: tile that wins, a power of two in 4..2^30 */
    double probability_fours;   /* rewards.probability_fours: chance a spawned tile is a 4 */
    int max_stuck_moves;        /* rewards.max_stuck_moves: moves in a row that change nothing → "stuck" */
    int memory_limit_mb;        /* rewards.memory_limit_mb: MiB a strategy may allocate */
    double weights[CONFIG_NUM_REWARDS]; /* rewards.functions: weight of each reward function */
} grpo_config_rewards;

typedef struct {
    /* model and output */
    char *model_name_or_path;
    char *output_dir;
    /* optimization (shared by train and sft) */
    double learning_rate;
    int per_device_train_batch_size;    /* completions (train) or sequences (sft) per micro-batch */
    int gradient_accumulation_steps;
    int max_steps;
    double num_train_epochs;
    double warmup_ratio;                /* used only while warmup_steps is 0 */
    double warmup_steps;                /* >= 1: int(value) steps; [0, 1): a fraction of max_steps */
    const char *optim;                  /* "adamw_torch_fused" | "adamw_torch" (the same AdamW) */
    const char *lr_scheduler_type;      /* "linear" | "cosine" | "constant" | "constant_with_warmup" */
    double weight_decay;
    double adam_beta1;
    double adam_beta2;
    double adam_epsilon;
    double max_grad_norm;               /* 0 = no clipping */
    int seed;
    bool tf32;
    bool bf16;
    bool gradient_checkpointing;        /* recompute layer activations in the backward (llama.h) */
    const char *device;                 /* "auto" | "cpu" | "cuda" */
    const char *attn_implementation;    /* "native" | "cudnn" (transformers' key; cudnn: CUDA with bf16 only) */
    int logging_steps;
    int save_steps;                     /* 0 = save only at the end */
    int save_total_limit;               /* 0 = keep every checkpoint (also when null) */
    bool save_total_limit_set;
    char *resume_from_checkpoint;       /* "" = start afresh; "latest" or a checkpoint folder */
    /* GRPO */
    int num_generations;                /* G: completions per prompt */
    int max_prompt_length;              /* tokens */
    int max_completion_length;          /* tokens */
    double temperature;
    double top_p;
    int top_k;                          /* 0 = off */
    double repetition_penalty;          /* 1 = off (values other than 1 are refused: no sampler support) */
    double min_p;                       /* meaningful only when min_p_set */
    bool min_p_set;                     /* min_p was given (not null); refused: no sampler support */
    double beta;
    double epsilon;
    double epsilon_high;                /* always the effective value: follows epsilon unless set */
    bool epsilon_high_set;              /* epsilon_high was given explicitly (not null) */
    double delta;                       /* two-sided clip bound; meaningful only when delta_set */
    bool delta_set;                     /* delta was given (not null) */
    const char *importance_sampling_level; /* "token" | "sequence" */
    const char *loss_type;              /* "grpo" | "bnpo" | "dr_grpo" | "dapo" | "cispo" | "sapo" | "luspo" | "vespo" */
    bool use_bias_correction_kl;        /* k3 KL times the importance ratio (TRL default true) */
    double entropy_coef;                /* entropy bonus coefficient; 0 = off */
    double sapo_temperature_pos, sapo_temperature_neg;
    double vespo_k_pos, vespo_lambda_pos, vespo_k_neg, vespo_lambda_neg;
    const char *scale_rewards;          /* "group" | "batch" | "none" */
    int num_iterations;                 /* μ: optimization passes over each generation */
    int steps_per_generation;           /* meaningful only when steps_per_generation_set */
    bool steps_per_generation_set;
    int generation_batch_size;          /* completions per generation; meaningful only when ..._set */
    bool generation_batch_size_set;
    bool mask_truncated_completions;
    /* TRL's importance-sampling correction of the sampler/trainer mismatch (applied to grpo2048's own generator) */
    const char *vllm_importance_sampling_correction; /* "auto" (on when training runs at another precision than
                                                       generation: bf16 or tf32) | "true" | "false" */
    const char *vllm_importance_sampling_mode; /* "token_truncate" | "token_mask" | "sequence_truncate" | "sequence_mask" */
    double vllm_importance_sampling_clip_min;  /* meaningful only when ..._clip_min_set */
    bool vllm_importance_sampling_clip_min_set;
    double vllm_importance_sampling_clip_max;  /* meaningful only when ..._clip_max_set (TRL default 3.0) */
    bool vllm_importance_sampling_clip_max_set;
    double vllm_importance_sampling_cap;       /* TRL's deprecated alias of clip_max: when set, clip_max = cap */
    bool vllm_importance_sampling_cap_set;
    double top_entropy_quantile;        /* 1 = every token */
    double reward_weights[CONFIG_NUM_REWARDS]; /* meaningful only when reward_weights_set */
    bool reward_weights_set;            /* reward_weights was given (not null): replaces rewards.functions */
    /* reference model */
    bool sync_ref_model;
    double ref_model_mixup_alpha;
    int ref_model_sync_steps;
    /* evaluation during training */
    int eval_steps;                     /* 0 = no evaluation (also when null) */
    bool eval_steps_set;
    int eval_games;                     /* games (fixed seeds) per evaluated completion */
    double eval_temperature;            /* 0 = greedy */
    /* grpo2048 eval (trainer/eval.c) */
    const char *sampler;                /* "standard" | "greedy" | "power" */
    double power_alpha;                 /* alpha of p^alpha (power) */
    int mcmc_steps;                     /* Metropolis-Hastings steps after each block (power) */
    int mcmc_block_size;                /* tokens per block (power) */
    int max_new_tokens;                 /* tokens generated per sample */
    int num_samples;                    /* samples per problem: k of pass@k */
    int eval_problems;                  /* problem instances (prompt x game-seed set); 0 = every prompt once */
    int per_device_eval_batch_size;     /* problems sampled at once */
    char *prompts_file;                 /* JSONL of {"prompt": ...}; "" = the `prompt` key */
    /* prompts */
    const char *chat_template;          /* "auto" | "chatml" | "llama3" | "plain" */
    char *system_prompt;                /* "" = none */
    char *prompt;
    /* SFT */
    char *dataset_path;                 /* "" = not given */
    int max_length;                     /* tokens of prompt + completion */
    bool init_from_scratch;
    double sft_eval_fraction;
    grpo_config_rewards rewards;
    /* The configuration's full text, for the metrics file: each loaded file's text (after a
     * "# config file: PATH" line) and one "# --set KEY=VALUE" line per override, in order. */
    char *text;
} grpo_config;

/* Fills *c with every key's default (c's previous contents are overwritten, not freed: call
 * config_free first when reusing a loaded config). Aborts only when out of memory. */
void config_defaults(grpo_config *c);

/* Applies the YAML file at path on top of *c: its top level must be a mapping of keys; sections
 * (`rewards:`) are nested mappings, and dotted keys (`rewards.workers: 2`) are accepted too. A key may
 * appear once per file. Appends the file's text to c->text.
 * Returns 0, or -1 with a message in err, e.g.
 *   "configs/x.yaml:12: unknown key 'learning_rat' (did you mean 'learning_rate'?)",
 *   "configs/x.yaml:5: key 'max_steps': expected an integer >= 1, got 'abc'",
 *   "configs/x.yaml:3: YAML syntax error: ...", "configs/x.yaml:9: duplicate key 'seed' (first at line 2)".
 * On error *c may hold some of the file's values (it stays valid for config_free). */
int config_load_file(grpo_config *c, const char *path, char *err, size_t errlen);

/* Applies one "key=value" override, the key dotted (rewards.workers=2, or
 * rewards.functions.game_progress=2 for one reward weight). The value uses YAML scalar syntax
 * ('single', "double\n" quoting; a flow mapping {function_works: 1} or list for rewards.functions);
 * for string keys an unquoted value is taken verbatim (so it may contain ': ' or '#').
 * Appends "# --set ASSIGNMENT" to c->text. Returns 0, or -1 with a message starting
 * "--set 'ASSIGNMENT': ". */
int config_set(grpo_config *c, const char *assignment, char *err, size_t errlen);

/* Cross-key checks for command ("train", "sft" or "eval"; NULL = only the per-key ranges), plus every key's
 * range again (so values written straight into the struct are checked too). For "train":
 * num_generations must divide per_device_train_batch_size * gradient_accumulation_steps and at least one
 * reward weight must be nonzero; for "sft": dataset_path must be given. Returns 0 or -1 with a message. */
int config_validate(const grpo_config *c, const char *command, char *err, size_t errlen);

/* Prints the keys used by command ("train", "sft", "eval", or NULL for all): name, type and allowed values,
 * default, and help, two lines per key. */
void config_print_help(FILE *f, const char *command);

/* Writes docs/config.md: every key's name, type, default, allowed values, commands and help, as
 * Markdown tables per section, then the default prompt. */
void config_write_markdown(FILE *f);

/* Returns a malloc'd YAML document with every key and its effective value (strings quoted so the text
 * loads back to the same values), or NULL when out of memory. */
char *config_to_yaml(const grpo_config *c);

/* The generation layout of GRPOConfig.__post_init__ (TRL): steps_per_generation defaults to
 * gradient_accumulation_steps; generation_batch_size = per_device_train_batch_size × steps_per_generation,
 * or, when generation_batch_size is given, steps_per_generation = generation_batch_size /
 * per_device_train_batch_size. Either pointer may be NULL. Valid after config_validate(c, "train"). */
void config_generation_layout(const grpo_config *c, int *steps_per_generation, int *generation_batch_size);

/* Warmup length in optimizer steps for a run of total steps, as transformers 5's get_warmup_steps:
 * warmup_steps >= 1 → int(warmup_steps); 0 < warmup_steps < 1 → ceil(total · warmup_steps); warmup_steps
 * 0 → ceil(total · warmup_ratio) (transformers 4's warmup_ratio). */
int config_warmup_steps(const grpo_config *c, int total);

/* The weight of each reward function (CONFIG_REWARD_* order): reward_weights when it is set, else
 * rewards.functions. */
void config_reward_weights(const grpo_config *c, double w[CONFIG_NUM_REWARDS]);

/* The keys, for comparing two configurations: config_num_keys() keys, named config_key_name(0 ..
 * n-1) (dotted names, in table order). config_format_value writes key's value in c as one line of
 * text (numbers in their shortest exact form, "null" for an unset nullable key, strings as they are
 * with newlines written \n, enums by name, maps and lists in YAML flow syntax) into buf (n bytes).
 * Returns 0, or -1 when the key is unknown. */
int config_num_keys(void);
const char *config_key_name(int i);
int config_format_value(const grpo_config *c, const char *key, char *buf, size_t n);

/* Frees the strings in *c (not the enum names, which are static) and zeroes it. */
void config_free(grpo_config *c);

#endif
