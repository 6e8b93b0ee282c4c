/*
 * trainer/config.c: the configuration table and everything generated from it (see config.h).
 *
 * Layout of this file:
 *   1. the key table (`keys[]`): one row per key, with group-heading rows for the docs;
 *   2. small helpers: a growable string buffer, edit distance for "did you mean", number parsing;
 *   3. applying values: one function takes a key's value as text (from YAML, --set or the table's
 *      default) and writes the struct field after checking type and range; a second walks YAML
 *      mappings (sections, dotted keys, the reward-weight map) and tracks duplicate keys;
 *   4. the public entry points: defaults, load_file, set, validate, help, markdown, to_yaml, free.
 *
 * Defaults are written in the same syntax a user would pass to --set and go through the same parser,
 * so the table is the single source of truth for both the struct's initial values and the docs.
 * YAML is read with libyaml's document API (yaml_parser_load); its marks are 0-based and reported
 * 1-based. libyaml does not reject duplicate keys, so the walker does: a literal key repeated in one
 * mapping, and a leaf key set twice through different spellings (nested `rewards: {workers: 1}` and
 * dotted `rewards.workers: 2`).
 */
#include "trainer/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "rewards/rewards.h"

#define CONFIG_ABORT(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

const char *const config_reward_names[CONFIG_NUM_REWARDS] = {
    "function_works", "no_cheating", "strategy_succeeds", "game_progress",
};

const char *const config_default_prompt =
    "Create a new short 2048 strategy using only native Python code.\n"
    "You are given a list of list of numbers for the current board state.\n"
    "Output one action for \"W\", \"A\", \"S\", \"D\" on what is the optimal next step.\n"
    "Output your new short function in backticks using the format below:\n"
    "```python\n"
    "def strategy(board):\n"
    "    return \"W\" # Example\n"
    "```\n"
    "All helper functions should be inside def strategy. Only output the short function `strategy`.";

/* ---------------------------------------------------------------------------------------------- */
/* 1. The key table                                                                                */

typedef enum { T_GROUP, T_BOOL, T_INT, T_FLOAT, T_STRING, T_ENUM, T_WEIGHTS, T_WEIGHT_LIST } key_type;

enum { USE_TRAIN = 1, USE_SFT = 2, USE_BOTH = 3, USE_EVAL = 4 };

enum {
    F_MIN = 1 << 0,        /* value >= min (or > min with F_MIN_EXCL) */
    F_MAX = 1 << 1,        /* value <= max (or < max with F_MAX_EXCL) */
    F_MIN_EXCL = 1 << 2,
    F_MAX_EXCL = 1 << 3,
    F_POW2 = 1 << 4,       /* ints: a power of two */
    F_NULLABLE = 1 << 5,   /* null is allowed: the key's set_offset flag says whether a value was given */
    F_NONEMPTY = 1 << 6,   /* strings: must not be empty */
};

typedef struct {
    const char *name;              /* dotted key; for T_GROUP the heading */
    key_type type;
    size_t offset;                 /* field offset in grpo_config */
    const char *def;               /* default, in --set value syntax (strings verbatim) */
    double min, max;
    unsigned flags;
    const char *const *choices;    /* T_ENUM: NULL-terminated allowed names */
    unsigned use;                  /* USE_TRAIN | USE_SFT */
    const char *help;
    size_t set_offset;             /* F_NULLABLE / T_WEIGHT_LIST: offset of the bool "a value was given" */
    const char *null_means;        /* F_NULLABLE: what null stands for, for help and docs ("= epsilon") */
} key_def;

static const char *const lr_scheduler_choices[] = {"linear", "cosine", "constant", "constant_with_warmup", NULL};
static const char *const device_choices[] = {"auto", "cpu", "cuda", NULL};
static const char *const attn_implementation_choices[] = {"native", "cudnn", NULL};
static const char *const loss_type_choices[] = {"grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo",
                                                 NULL};
static const char *const optim_choices[] = {"adamw_torch_fused", "adamw_torch", NULL};
static const char *const scale_rewards_choices[] = {"group", "batch", "none", NULL};
static const char *const chat_template_choices[] = {"auto", "chatml", "llama3", "plain", NULL};
static const char *const is_level_choices[] = {"token", "sequence", NULL};
static const char *const vllm_is_correction_choices[] = {"auto", "true", "false", NULL};
static const char *const sampler_choices[] = {"standard", "greedy", "power", NULL};
static const char *const vllm_is_mode_choices[] = {"token_truncate", "token_mask", "sequence_truncate", "sequence_mask",
                                                   NULL};

#define OFF(f) offsetof(grpo_config, f)
#define GROUP(title) {title, T_GROUP, 0, NULL, 0, 0, 0, NULL, 0, NULL, 0, NULL}
#define KBOOL(n, f, d, use, help) {n, T_BOOL, OFF(f), d, 0, 0, 0, NULL, use, help, 0, NULL}
#define KINT(n, f, d, lo, hi, fl, use, help) {n, T_INT, OFF(f), d, lo, hi, fl, NULL, use, help, 0, NULL}
#define KFLOAT(n, f, d, lo, hi, fl, use, help) {n, T_FLOAT, OFF(f), d, lo, hi, fl, NULL, use, help, 0, NULL}
#define KSTR(n, f, d, fl, use, help) {n, T_STRING, OFF(f), d, 0, 0, fl, NULL, use, help, 0, NULL}
#define KENUM(n, f, d, ch, use, help) {n, T_ENUM, OFF(f), d, 0, 0, 0, ch, use, help, 0, NULL}
/* nullable numbers: default "null"; setf is the bool field saying a value was given */
#define KNINT(n, f, setf, lo, hi, fl, use, means, help) \
    {n, T_INT, OFF(f), "null", lo, hi, (fl) | F_NULLABLE, NULL, use, help, OFF(setf), means}
#define KNFLOAT(n, f, setf, lo, hi, fl, use, means, help) \
    {n, T_FLOAT, OFF(f), "null", lo, hi, (fl) | F_NULLABLE, NULL, use, help, OFF(setf), means}

static const key_def keys[] = {
    GROUP("Model and output"),
    KSTR("model_name_or_path", model_name_or_path, "model/default", F_NONEMPTY, USE_BOTH | USE_EVAL,
         "Model folder to start from: Hugging Face config.json, model.safetensors (or shards), tokenizer.json."),
    KSTR("output_dir", output_dir, "runs/default", F_NONEMPTY, USE_BOTH | USE_EVAL,
         "Folder for metrics.sqlite and checkpoints."),
    KENUM("device", device, "auto", device_choices, USE_BOTH | USE_EVAL,
          "Where to train: auto = cuda when a GPU is usable, else cpu."),
    KBOOL("tf32", tf32, "false", USE_BOTH | USE_EVAL, "Allow TF32 tensor-core matmuls for float32 (CUDA only)."),
    KBOOL("bf16", bf16, "false", USE_BOTH | USE_EVAL, "Matrix products in bfloat16 with fp32 accumulation (CUDA; the CPU where it has AMX-BF16 or AVX512-BF16, through oneDNN)."),
    KBOOL("gradient_checkpointing", gradient_checkpointing, "true", USE_BOTH,
          "Keep only each decoder layer's input in the forward pass and recompute the layer's activations in "
          "the backward: activation memory ~5-6x smaller (e.g. SmolLM2, Qwen2.5-0.5B) for ~10-20% more train "
          "time; identical results."),
    KENUM("attn_implementation", attn_implementation, "native", attn_implementation_choices, USE_BOTH,
          "Training attention (transformers' key): native = our kernels; cudnn = cuDNN's fused flash attention "
          "(CUDA with bf16: true; shapes cuDNN rejects, sliding windows and generation use native). Unverified on "
          "a GPU yet: docs/gpu.md."),
    KINT("seed", seed, "42", 0, INT_MAX, F_MIN | F_MAX, USE_BOTH | USE_EVAL,
         "Seed of every random stream (initialization, sampling, game seeds, data order)."),

    GROUP("Optimization"),
    KFLOAT("learning_rate", learning_rate, "1e-6", 0, 0, F_MIN, USE_BOTH, "Peak learning rate of AdamW."),
    KENUM("lr_scheduler_type", lr_scheduler_type, "linear", lr_scheduler_choices, USE_BOTH,
          "Learning-rate schedule after warmup (transformers' schedules of the same names)."),
    KFLOAT("warmup_steps", warmup_steps, "0", 0, 0, F_MIN, USE_BOTH,
           "Steps raising the learning rate linearly from 0, as transformers 5: a whole number >= 1 is a step "
           "count (int(value)), a value in [0, 1) a fraction of max_steps (ceil(fraction * max_steps)). "
           "Wins over warmup_ratio when nonzero."),
    KFLOAT("warmup_ratio", warmup_ratio, "0.0", 0, 1, F_MIN | F_MAX, USE_BOTH,
           "Fraction of the optimizer steps spent on warmup (transformers 4's key, removed in transformers 5); "
           "used only while warmup_steps is 0."),
    KENUM("optim", optim, "adamw_torch_fused", optim_choices, USE_BOTH,
          "Optimizer: AdamW (torch.optim.AdamW; the fused and plain variants are the same update). "
          "transformers 5 defaults to adamw_torch_fused."),
    KFLOAT("weight_decay", weight_decay, "0.0", 0, 0, F_MIN, USE_BOTH, "AdamW's decoupled weight decay."),
    KFLOAT("adam_beta1", adam_beta1, "0.9", 0, 1, F_MIN | F_MAX | F_MAX_EXCL, USE_BOTH,
           "AdamW's decay rate of the first moment."),
    KFLOAT("adam_beta2", adam_beta2, "0.999", 0, 1, F_MIN | F_MAX | F_MAX_EXCL, USE_BOTH,
           "AdamW's decay rate of the second moment."),
    KFLOAT("adam_epsilon", adam_epsilon, "1e-8", 0, 0, F_MIN | F_MIN_EXCL, USE_BOTH,
           "AdamW's denominator epsilon."),
    KFLOAT("max_grad_norm", max_grad_norm, "1.0", 0, 0, F_MIN, USE_BOTH,
           "Clip the global gradient L2 norm to this value; 0 = no clipping."),
    KINT("per_device_train_batch_size", per_device_train_batch_size, "8", 1, 1 << 20, F_MIN | F_MAX, USE_BOTH,
         "Sequences per micro-batch (GRPO: completions, so prompts per micro-batch = this / num_generations); per "
         "rank under mpirun, as in TRL (docs/scale.md)."),
    KINT("gradient_accumulation_steps", gradient_accumulation_steps, "1", 1, 1 << 20, F_MIN | F_MAX, USE_BOTH,
         "Micro-batches whose gradients are accumulated into one optimizer step."),
    KINT("max_steps", max_steps, "100", -1, INT_MAX, F_MIN | F_MAX, USE_BOTH,
         "Optimizer steps: train runs this many; sft stops after at most this many, and -1 (transformers' "
         "default) lets num_train_epochs alone set its length. train needs a positive value (its one prompt "
         "has no epochs). 0 is refused."),
    KFLOAT("num_train_epochs", num_train_epochs, "1.0", 0, 0, F_MIN | F_MIN_EXCL, USE_SFT,
           "Passes over the SFT dataset (fractions allowed)."),

    GROUP("Generation and GRPO loss"),
    KINT("num_generations", num_generations, "8", 2, 1 << 20, F_MIN | F_MAX, USE_TRAIN,
         "Completions sampled per prompt (G, the group size); must divide the generation batch, "
         "generation_batch_size (by default per_device_train_batch_size * gradient_accumulation_steps)."),
    KINT("max_prompt_length", max_prompt_length, "512", 1, 1 << 24, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Longest prompt, in tokens."),
    KINT("max_completion_length", max_completion_length, "256", 1, 1 << 24, F_MIN | F_MAX, USE_TRAIN,
         "Most tokens generated per completion."),
    KFLOAT("temperature", temperature, "1.0", 0, 0, F_MIN, USE_TRAIN | USE_EVAL, "Sampling temperature; 0 = greedy."),
    KFLOAT("top_p", top_p, "1.0", 0, 1, F_MIN | F_MIN_EXCL | F_MAX, USE_TRAIN | USE_EVAL,
           "Nucleus sampling: sample from the smallest set of tokens whose probability reaches top_p; 1 = off."),
    KINT("top_k", top_k, "0", 0, INT_MAX, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Sample only from the top_k most likely tokens; 0 = off."),
    KFLOAT("repetition_penalty", repetition_penalty, "1.0", 0, 0, F_MIN | F_MIN_EXCL, USE_TRAIN,
           "Sampling: penalize tokens already in the prompt or completion (HF's repetition penalty); 1 = off."),
    KNFLOAT("min_p", min_p, min_p_set, 0, 1, F_MIN | F_MAX, USE_TRAIN | USE_EVAL, "off",
            "Sampling: drop tokens less likely than min_p times the most likely one; null = off."),
    KFLOAT("epsilon", epsilon, "0.2", 0, 1, F_MIN | F_MAX | F_MAX_EXCL, USE_TRAIN,
           "Clip range: the probability ratio is clipped below at 1 - epsilon (and above at 1 + epsilon_high)."),
    {"epsilon_high", T_FLOAT, OFF(epsilon_high), "null", 0, 0, F_MIN | F_NULLABLE, NULL, USE_TRAIN,
     "Upper clip range, 1 + epsilon_high; null = same as epsilon (DAPO uses 0.28).", OFF(epsilon_high_set),
     "= epsilon"},
    KNFLOAT("delta", delta, delta_set, 1, 0, F_MIN | F_MIN_EXCL, USE_TRAIN, "off",
            "Two-sided clipping (INTELLECT-2): the probability ratio is also capped at delta, so tokens with a "
            "negative advantage cannot move it without bound; null = off. Use a value above 1 + epsilon_high."),
    KENUM("importance_sampling_level", importance_sampling_level, "token", is_level_choices, USE_TRAIN,
          "Importance ratio per token (GRPO), or one per sequence from its mean token log-ratio (GSPO)."),
    KENUM("loss_type", loss_type, "dapo", loss_type_choices, USE_TRAIN,
          "Policy loss (TRL 1.16): grpo (clipped ratio; mean per sequence, then over sequences), bnpo (mean "
          "over the micro-batch's tokens), dr_grpo (sum / (sequences * max_completion_length)), dapo (sum / the "
          "generation's loss tokens * gradient_accumulation_steps / steps_per_generation), cispo (MiniMax-M1: "
          "the ratio capped at epsilon_high and detached, times advantage and log-prob; dapo's normaliser), "
          "sapo (a sigmoid gate instead of the clip; grpo's aggregation), luspo (GSPO scaled by length: sum "
          "per sequence, mean over sequences; use importance_sampling_level sequence), vespo (detached Gamma "
          "weights of the sequence ratio times advantage and log-prob; dapo's normaliser)."),
    KENUM("scale_rewards", scale_rewards, "group", scale_rewards_choices, USE_TRAIN,
          "Divide advantages by the reward standard deviation of the group, of the batch, or not at all; "
          "TRL's booleans work too: true = group, false = none."),
    KBOOL("use_bias_correction_kl", use_bias_correction_kl, "true", USE_TRAIN,
          "Multiply the per-token k3 KL by the importance ratio, which carries gradient (DeepSeek-V3.2's "
          "unbiased KL gradient); changes every beta > 0 gradient, on-policy too."),
    KFLOAT("entropy_coef", entropy_coef, "0.0", 0, 0, 0, USE_TRAIN,
           "Entropy bonus: the loss minus entropy_coef times the mean entropy of the loss tokens (the "
           "top_entropy_quantile tokens when that is < 1), divided by gradient_accumulation_steps; 0 = off."),
    KFLOAT("sapo_temperature_pos", sapo_temperature_pos, "1.0", 0, 0, F_MIN | F_MIN_EXCL, USE_TRAIN,
           "sapo: temperature of the gate sigmoid(t * (ratio - 1)) * 4 / t for tokens with a positive advantage."),
    KFLOAT("sapo_temperature_neg", sapo_temperature_neg, "1.05", 0, 0, F_MIN | F_MIN_EXCL, USE_TRAIN,
           "sapo: the same for tokens with a non-positive advantage."),
    KFLOAT("vespo_k_pos", vespo_k_pos, "2.0", 0, 0, 0, USE_TRAIN,
           "vespo: power k of the Gamma weight exp(lambda) * w^k * exp(-lambda * w) for a non-negative advantage."),
    KFLOAT("vespo_lambda_pos", vespo_lambda_pos, "3.0", 0, 0, 0, USE_TRAIN,
           "vespo: decay lambda of the Gamma weight for a non-negative advantage (at least 1e-4 is used)."),
    KFLOAT("vespo_k_neg", vespo_k_neg, "3.0", 0, 0, 0, USE_TRAIN, "vespo: k for a negative advantage."),
    KFLOAT("vespo_lambda_neg", vespo_lambda_neg, "2.0", 0, 0, 0, USE_TRAIN, "vespo: lambda for a negative advantage."),
    KBOOL("mask_truncated_completions", mask_truncated_completions, "false", USE_TRAIN,
          "Leave completions that reach max_completion_length without a stop token out of the loss (DAPO)."),
    KENUM("vllm_importance_sampling_correction", vllm_importance_sampling_correction, "auto",
          vllm_is_correction_choices, USE_TRAIN,
          "TRL's truncated importance-sampling correction of the mismatch between the generator's log-probabilities "
          "(ours, not vLLM's) and the training forward's: the per-token loss times a clipped or masked ratio "
          "exp(old - sampling); auto = on when training runs at another precision than generation (bf16, tf32), "
          "true / false as TRL (TRL's default is true, for vLLM). Costs no extra forward pass when old "
          "log-probabilities equal the training forward's (num_iterations 1, gradient_accumulation_steps a "
          "multiple of steps_per_generation), one per generation otherwise."),
    KENUM("vllm_importance_sampling_mode", vllm_importance_sampling_mode, "sequence_mask", vllm_is_mode_choices,
          USE_TRAIN,
          "Ratio per token or per sequence (exp of the summed log-ratio); *_truncate clips it to [clip_min, "
          "clip_max], *_mask sets ratios outside that range to 0 (TRL 1.16's default: sequence_mask)."),
    {"vllm_importance_sampling_clip_min", T_FLOAT, OFF(vllm_importance_sampling_clip_min), "null", 0, 0,
     F_MIN | F_NULLABLE, NULL, USE_TRAIN, "Lower bound C_min of the importance-sampling ratio; null = none.",
     OFF(vllm_importance_sampling_clip_min_set), "no lower bound"},
    {"vllm_importance_sampling_clip_max", T_FLOAT, OFF(vllm_importance_sampling_clip_max), "3.0", 0, 0,
     F_MIN | F_MIN_EXCL | F_NULLABLE, NULL, USE_TRAIN, "Upper bound C_max of the importance-sampling ratio; null = none.",
     OFF(vllm_importance_sampling_clip_max_set), "no upper bound"},
    KNFLOAT("vllm_importance_sampling_cap", vllm_importance_sampling_cap, vllm_importance_sampling_cap_set, 0, 0,
            F_MIN | F_MIN_EXCL, USE_TRAIN, "unused",
            "TRL's deprecated name of vllm_importance_sampling_clip_max; when given it replaces clip_max."),
    KFLOAT("top_entropy_quantile", top_entropy_quantile, "1.0", 0, 1, F_MIN | F_MAX, USE_TRAIN,
           "Train only on this top fraction of each micro-batch's completion tokens by entropy (the policy "
           "term; the KL term keeps every token); 1 = every token."),
    KINT("num_iterations", num_iterations, "1", 1, 1 << 20, F_MIN | F_MAX, USE_TRAIN,
         "Optimization passes (mu) over each generation; above 1 the generation is reused and the ratio is "
         "taken against the log-probabilities of the policy that generated it."),
    KNINT("steps_per_generation", steps_per_generation, steps_per_generation_set, 1, 1 << 20, F_MIN | F_MAX,
          USE_TRAIN, "= gradient_accumulation_steps",
          "Micro-batches each generation is split into; null = gradient_accumulation_steps. Give this or "
          "generation_batch_size, not both."),
    KNINT("generation_batch_size", generation_batch_size, generation_batch_size_set, 1, 1 << 24, F_MIN | F_MAX,
          USE_TRAIN, "= per_device_train_batch_size * steps_per_generation",
          "Completions sampled per generation: a multiple of per_device_train_batch_size and of num_generations; "
          "under mpirun, of all ranks together (per_device_train_batch_size * ranks * steps_per_generation, as TRL)."),
    {"reward_weights", T_WEIGHT_LIST, OFF(reward_weights), "null", 0, 0, F_NULLABLE, NULL, USE_TRAIN,
     "Weights of the reward functions in rewards.functions order (function_works, no_cheating, "
     "strategy_succeeds, game_progress), as a list, each in [-1000, 1000]; when given it replaces "
     "rewards.functions' weights.",
     OFF(reward_weights_set), "= rewards.functions"},

    GROUP("Reference model"),
    KFLOAT("beta", beta, "0.0", 0, 0, F_MIN, USE_TRAIN,
           "KL coefficient against a frozen reference model (the initial policy); 0 = no reference model."),
    KBOOL("sync_ref_model", sync_ref_model, "false", USE_TRAIN,
          "Move the reference model towards the policy every ref_model_sync_steps steps (TR-DPO); needs beta > 0."),
    KFLOAT("ref_model_mixup_alpha", ref_model_mixup_alpha, "0.6", 0, 1, F_MIN | F_MAX, USE_TRAIN,
           "Sync: reference = alpha * policy + (1 - alpha) * reference."),
    KINT("ref_model_sync_steps", ref_model_sync_steps, "512", 1, INT_MAX, F_MIN | F_MAX, USE_TRAIN,
         "Sync the reference model every this many optimizer steps."),

    GROUP("Prompts"),
    KENUM("chat_template", chat_template, "auto", chat_template_choices, USE_BOTH | USE_EVAL,
          "Chat format the prompts are rendered with: auto = the one the model's tokenizer files name."),
    KSTR("system_prompt", system_prompt, "", 0, USE_BOTH | USE_EVAL, "System message placed before each prompt; empty = none."),
    KSTR("prompt", prompt, NULL /* config_default_prompt */, F_NONEMPTY, USE_TRAIN | USE_EVAL,
         "User message every GRPO group starts from."),

    GROUP("Supervised fine-tuning"),
    KSTR("dataset_path", dataset_path, "", 0, USE_SFT,
         "JSONL file with one {\"prompt\": ..., \"completion\": ...} object per line (required by sft)."),
    KINT("max_length", max_length, "1024", 1, 1 << 24, F_MIN | F_MAX, USE_SFT,
         "Longest prompt + completion, in tokens."),
    KBOOL("init_from_scratch", init_from_scratch, "false", USE_SFT,
          "Start from random weights shaped by model_name_or_path's config.json instead of its weights."),
    KFLOAT("sft_eval_fraction", sft_eval_fraction, "0.02", 0, 1, F_MIN | F_MAX | F_MAX_EXCL, USE_SFT,
           "Fraction of the dataset held out to compute eval_loss."),

    GROUP("Logging and checkpoints"),
    KINT("logging_steps", logging_steps, "1", 1, INT_MAX, F_MIN | F_MAX, USE_BOTH,
         "Print a progress line every this many steps."),
    KINT("save_steps", save_steps, "0", 0, INT_MAX, F_MIN | F_MAX, USE_BOTH,
         "Save a checkpoint every this many steps; 0 = only at the end."),
    KNINT("save_total_limit", save_total_limit, save_total_limit_set, 0, INT_MAX, F_MIN | F_MAX, USE_BOTH,
          "keep all", "Keep at most this many checkpoints, deleting the oldest; null or 0 = keep all (the final "
          "model in output_dir is never deleted)."),
    KSTR("resume_from_checkpoint", resume_from_checkpoint, "", 0, USE_TRAIN,
         "Continue a run from a checkpoint folder, or from the newest one in output_dir with 'latest' "
         "(same as --resume); empty = start afresh."),

    GROUP("Evaluation during training"),
    KNINT("eval_steps", eval_steps, eval_steps_set, 0, INT_MAX, F_MIN | F_MAX, USE_TRAIN, "never",
          "Evaluate every this many steps (eval_... metrics); null or 0 = never."),
    KINT("eval_games", eval_games, "8", 1, 1000, F_MIN | F_MAX, USE_TRAIN,
         "Games each evaluated completion plays, on fixed seeds (the same at every evaluation)."),
    KFLOAT("eval_temperature", eval_temperature, "0.0", 0, 0, F_MIN, USE_TRAIN,
           "Sampling temperature of evaluation: 0 = one greedy completion; above 0, num_generations "
           "completions sampled with a fixed seed."),

    GROUP("grpo2048 eval"),
    KENUM("sampler", sampler, "standard", sampler_choices, USE_EVAL,
          "How eval samples: standard (temperature, top_p, top_k, min_p: the training sampler), greedy (argmax, "
          "as generate --temperature 0), or power (p^power_alpha by block-wise Metropolis-Hastings, Karan & Du "
          "2025; CPU backend)."),
    KFLOAT("power_alpha", power_alpha, "4.0", 0, 1000, F_MIN | F_MIN_EXCL | F_MAX, USE_EVAL,
           "power: the exponent alpha of the target p^alpha; proposals come from the model at temperature 1/alpha."),
    KINT("mcmc_steps", mcmc_steps, "10", 0, 1 << 20, F_MIN | F_MAX, USE_EVAL,
         "power: Metropolis-Hastings steps after each block (0 = plain sampling at temperature 1/alpha)."),
    KINT("mcmc_block_size", mcmc_block_size, "192", 1, 1 << 24, F_MIN | F_MAX, USE_EVAL,
         "power: tokens generated per block before its MH steps."),
    KINT("max_new_tokens", max_new_tokens, "300", 1, 1 << 24, F_MIN | F_MAX, USE_EVAL,
         "Most tokens generated per sample."),
    KINT("num_samples", num_samples, "1", 1, 1 << 16, F_MIN | F_MAX, USE_EVAL,
         "Samples per problem: the k of pass@k (all samples of a problem play the same games)."),
    KINT("eval_problems", eval_problems, "0", 0, 1 << 24, F_MIN | F_MAX, USE_EVAL,
         "Problem instances: problem i is prompt i mod (number of prompts) with game-seed set i / (number of "
         "prompts); 0 = every prompt once."),
    KINT("per_device_eval_batch_size", per_device_eval_batch_size, "8", 1, 1 << 16, F_MIN | F_MAX, USE_EVAL,
         "Problems sampled at once (their num_samples each advance together on the backend)."),
    KSTR("prompts_file", prompts_file, "", 0, USE_EVAL,
         "JSONL file of problems, one {\"prompt\": TEXT} per line with optional \"board_size\" and \"target\"; "
         "empty = the `prompt` key alone."),

    GROUP("Rewards (the rewards: section)"),
    KBOOL("rewards.parallel", rewards.parallel, "true", USE_TRAIN | USE_EVAL,
          "Score completions in parallel in the worker pool; false = one at a time, printing each "
          "completion's checks and outcome (for debugging)."),
    KBOOL("rewards.overlap", rewards.overlap, "true", USE_TRAIN,
          "Send each completion to the reward pool the moment its row stops (stop token or max_completion_length) "
          "while the other rows keep decoding, so that scoring hides behind generation (metrics reward_time, "
          "reward_wait_time); same jobs, seeds and rewards as false (generate all, then score). Applies to "
          "parallel rewards only."),
    KINT("rewards.workers", rewards.workers, "0", 0, 1024, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Worker processes in the reward pool; 0 = number of CPU cores."),
    KFLOAT("rewards.timeout", rewards.timeout, "1.0", 0, 600, F_MIN | F_MIN_EXCL | F_MAX, USE_TRAIN | USE_EVAL,
           "Wall-clock seconds a strategy may run per game before it is killed."),
    KINT("rewards.games_per_strategy", rewards.games_per_strategy, "1", 1, 1000, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Games each completion's strategy plays (all completions of a group play the same seeds)."),
    KINT("rewards.board_size", rewards.board_size, "4", 2, 8, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Side N of the N x N board."),
    KINT("rewards.target", rewards.target, "2048", 4, 1 << 30, F_MIN | F_MAX | F_POW2, USE_TRAIN | USE_EVAL,
         "Tile value that wins the game."),
    KFLOAT("rewards.probability_fours", rewards.probability_fours, "0.1", 0, 1, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
           "Probability that a spawned tile is a 4 rather than a 2."),
    KINT("rewards.max_stuck_moves", rewards.max_stuck_moves, "1000", 1, INT_MAX, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "A game whose board has not changed for this many moves in a row ends as 'stuck', scored like a timeout."),
    KINT("rewards.memory_limit_mb", rewards.memory_limit_mb, "512", 16, 1 << 20, F_MIN | F_MAX, USE_TRAIN | USE_EVAL,
         "Memory a strategy may allocate beyond its worker's own, in MiB."),
    {"rewards.functions", T_WEIGHTS, OFF(rewards.weights),
     "{function_works: 1.0, no_cheating: 1.0, strategy_succeeds: 1.0, game_progress: 1.0}", 0, 0, 0, NULL,
     USE_TRAIN | USE_EVAL,
     "Weight of each reward function in a completion's reward, each in [-1000, 1000]; a function missing from a given map gets "
     "weight 0 (a list of names gives each weight 1). reward_weights, when given, replaces these.", 0, NULL},
};

#define NUM_KEYS (sizeof keys / sizeof keys[0])

static const key_def *find_key(const char *name) {
    for (size_t i = 0; i < NUM_KEYS; i++)
        if (keys[i].type != T_GROUP && !strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

/* A section is a key-name prefix before a dot ("rewards"). */
static int is_section(const char *name) {
    size_t n = strlen(name);
    if (!n) return 0;
    for (size_t i = 0; i < NUM_KEYS; i++)
        if (keys[i].type != T_GROUP && !strncmp(keys[i].name, name, n) && keys[i].name[n] == '.') return 1;
    return 0;
}

static int reward_index(const char *name) {
    for (int i = 0; i < CONFIG_NUM_REWARDS; i++)
        if (!strcmp(config_reward_names[i], name)) return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* 2. Helpers                                                                                      */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { sb_addn(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_addn(b, big, (size_t)n);
    free(big);
}

static char *xstrdup(const char *s) {
    char *p = strdup(s);
    if (!p) CONFIG_ABORT("out of memory");
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) CONFIG_ABORT("out of memory");
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), for suggestions. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return INT_MAX / 2;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

static const char *leaf_of(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* A close-enough distance: about one edit per four characters, at least one. */
static int close_enough(int dist, const char *typed) {
    int limit = ((int)strlen(typed) + 2) / 4;
    if (limit < 1) limit = 1;
    return dist <= limit;
}

/* Best known name for an unknown dotted key: compares the whole name, and its last part with each
 * key's last part (so a top-level `workers` suggests `rewards.workers`). Returns NULL if none is close. */
static const char *suggest_key(const char *typed, char *buf, size_t buflen) {
    int best = INT_MAX;
    const char *leaf = leaf_of(typed);
    buf[0] = '\0';
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == T_GROUP) continue;
        int d = edit_distance(typed, k->name);
        int dl = edit_distance(leaf, leaf_of(k->name));
        if (dl < d) d = dl;
        if (d < best) { best = d; snprintf(buf, buflen, "%s", k->name); }
        if (k->type == T_WEIGHTS) {
            for (int r = 0; r < CONFIG_NUM_REWARDS; r++) {
                char full[128];
                snprintf(full, sizeof full, "%s.%s", k->name, config_reward_names[r]);
                d = edit_distance(typed, full);
                if (d < best) { best = d; snprintf(buf, buflen, "%s", full); }
            }
        }
    }
    /* sections, e.g. `reward:` for `rewards:` */
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const char *dot = keys[i].type == T_GROUP ? NULL : strchr(keys[i].name, '.');
        if (!dot) continue;
        char sec[64];
        snprintf(sec, sizeof sec, "%.*s", (int)(dot - keys[i].name), keys[i].name);
        int d = edit_distance(typed, sec);
        if (d < best) { best = d; snprintf(buf, buflen, "%s", sec); }
    }
    return best < INT_MAX && close_enough(best, leaf) ? buf : NULL;
}

/* Quotes a user value for a message: 'text', truncated to 60 characters, control characters escaped. */
static void describe_value(char *out, size_t outlen, const char *s, size_t len) {
    if (len == 0) { snprintf(out, outlen, "an empty value"); return; }
    char tmp[96];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < sizeof tmp - 4; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') { tmp[k++] = '\\'; tmp[k++] = 'n'; }
        else if (ch < 0x20 || ch == 0x7f) k += (size_t)snprintf(tmp + k, sizeof tmp - k, "\\x%02x", ch);
        else tmp[k++] = (char)ch;
        if (i + 1 < len && k >= 60) { memcpy(tmp + k, "...", 3); k += 3; break; }
    }
    tmp[k] = '\0';
    snprintf(out, outlen, "'%s'", tmp);
}

/* Decimal integer, optional sign: the YAML 1.2 core schema's int (without octal/hex forms). */
static int parse_int(const char *s, long long *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) return -1;
    *out = v;
    return 0;
}

/* Decimal number: [-+]? (digits [. digits?] | . digits) ([eE] [-+]? digits)?, finite. */
static int parse_float(const char *s, double *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) { p++; digits++; }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) { p++; digits++; }
    }
    if (!digits) return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p) return -1;
    double v = strtod(s, NULL);
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Shortest "%.Ng" that reads back as v, with ".0" added to whole numbers so they read as floats. */
static void format_double(char *out, size_t outlen, double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".eEni")) {
        size_t n = strlen(out);
        if (n + 3 <= outlen) memcpy(out + n, ".0", 3);
    }
}

static void format_bound(char *out, size_t outlen, double v) { snprintf(out, outlen, "%.15g", v); }

/* The allowed range of a numeric key, as "2..8", ">= 1", "(0, 600]", or "" when unbounded. */
static void describe_range(const key_def *k, char *out, size_t outlen) {
    char lo[32], hi[32];
    format_bound(lo, sizeof lo, k->min);
    format_bound(hi, sizeof hi, k->max);
    int has_min = k->flags & F_MIN, has_max = k->flags & F_MAX;
    if (k->type == T_INT) {
        /* INT_MAX is the int field's own limit, not a meaningful bound: print it as one-sided. */
        if (has_max && k->max >= INT_MAX) has_max = 0;
        if (has_min && has_max) snprintf(out, outlen, "%s..%s", lo, hi);
        else if (has_min) snprintf(out, outlen, ">= %s", lo);
        else if (has_max) snprintf(out, outlen, "<= %s", hi);
        else out[0] = '\0';
        return;
    }
    if (has_min && has_max)
        snprintf(out, outlen, "%s%s, %s%s", k->flags & F_MIN_EXCL ? "(" : "[", lo, hi,
                 k->flags & F_MAX_EXCL ? ")" : "]");
    else if (has_min) snprintf(out, outlen, "%s %s", k->flags & F_MIN_EXCL ? ">" : ">=", lo);
    else if (has_max) snprintf(out, outlen, "%s %s", k->flags & F_MAX_EXCL ? "<" : "<=", hi);
    else out[0] = '\0';
}

static void describe_choices(const key_def *k, char *out, size_t outlen) {
    size_t n = 0;
    out[0] = '\0';
    for (const char *const *c = k->choices; *c; c++)
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s", c == k->choices ? "" : ", ", *c);
}

/* What a key accepts, for error messages: "an integer >= 1", "one of a, b", "true or false". */
static void describe_expected(const key_def *k, char *out, size_t outlen) {
    char r[128];
    switch (k->type) {
    case T_BOOL: snprintf(out, outlen, "true or false"); break;
    case T_INT:
        describe_range(k, r, sizeof r);
        if (k->flags & F_POW2) snprintf(out, outlen, "a power of two in %s", r);
        else if (strstr(r, "..")) snprintf(out, outlen, "an integer in %s%s", r, k->flags & F_NULLABLE ? " or null" : "");
        else snprintf(out, outlen, "an integer%s%s%s", r[0] ? " " : "", r, k->flags & F_NULLABLE ? " or null" : "");
        break;
    case T_FLOAT:
        describe_range(k, r, sizeof r);
        /* "a number in [0, 1]", "a number >= 0", "a number" */
        snprintf(out, outlen, "a number%s%s%s", r[0] == '[' || r[0] == '(' ? " in " : r[0] ? " " : "", r,
                 k->flags & F_NULLABLE ? " or null" : "");
        break;
    case T_STRING: snprintf(out, outlen, "%s", k->flags & F_NONEMPTY ? "a non-empty string" : "a string"); break;
    case T_ENUM:
        describe_choices(k, r, sizeof r);
        snprintf(out, outlen, "one of %s", r);
        break;
    case T_WEIGHTS:
        snprintf(out, outlen, "a mapping of reward function names (function_works, no_cheating, "
                              "strategy_succeeds, game_progress) to numbers");
        break;
    case T_WEIGHT_LIST:
        snprintf(out, outlen, "a list of %d numbers (the weights of function_works, no_cheating, "
                              "strategy_succeeds, game_progress) or null", CONFIG_NUM_REWARDS);
        break;
    case T_GROUP: CONFIG_ABORT("group row has no value");
    }
}

static int in_range(const key_def *k, double v) {
    if (k->flags & F_MIN) {
        if (k->flags & F_MIN_EXCL ? !(v > k->min) : !(v >= k->min)) return 0;
    }
    if (k->flags & F_MAX) {
        if (k->flags & F_MAX_EXCL ? !(v < k->max) : !(v <= k->max)) return 0;
    }
    if ((k->flags & F_POW2) && (v < 1 || ((long long)v & ((long long)v - 1)))) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* 3. Applying values                                                                              */

typedef struct {
    char *name;
    int line;
} seen_key;

typedef struct {
    grpo_config *c;
    const char *file;        /* YAML file path, or NULL for --set / defaults */
    const char *assignment;  /* the --set argument when file is NULL */
    char *err;
    size_t errlen;
    seen_key *seen;          /* leaf keys set so far by this file, for duplicate detection */
    int nseen, capseen;
} apply_ctx;

static int fail(apply_ctx *x, int line, const char *fmt, ...) {
    if (!x->err || !x->errlen) return -1;
    int n;
    if (x->file && line > 0) n = snprintf(x->err, x->errlen, "%s:%d: ", x->file, line);
    else if (x->file) n = snprintf(x->err, x->errlen, "%s: ", x->file);
    else n = snprintf(x->err, x->errlen, "--set '%s': ", x->assignment ? x->assignment : "");
    if (n < 0) n = 0;
    if ((size_t)n < x->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int node_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

static int is_null_text(const char *s, size_t len, int plain) {
    return plain && (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"));
}

static void sync_epsilon(grpo_config *c) {
    if (!c->epsilon_high_set) c->epsilon_high = c->epsilon;
    /* TRL's GRPOConfig.__post_init__: the deprecated vllm_importance_sampling_cap replaces clip_max */
    if (c->vllm_importance_sampling_cap_set) {
        c->vllm_importance_sampling_clip_max = c->vllm_importance_sampling_cap;
        c->vllm_importance_sampling_clip_max_set = true;
    }
}

/* The "a value was given" flag of a nullable key (F_NULLABLE or T_WEIGHT_LIST). */
static bool *set_flag(grpo_config *c, const key_def *k) {
    if (!k->set_offset) CONFIG_ABORT("key '%s' has no set flag", k->name);
    return (bool *)((char *)c + k->set_offset);
}
static bool is_set(const grpo_config *c, const key_def *k) {
    return !k->set_offset || *(const bool *)((const char *)c + k->set_offset);
}

/* Records that leaf key `name` was set at `line`; a second setting of it (or of a key containing it,
 * like rewards.functions vs rewards.functions.game_progress) in the same file is a duplicate. */
static int note_seen(apply_ctx *x, const char *name, int line) {
    if (!x->file) return 0;
    size_t n = strlen(name);
    for (int i = 0; i < x->nseen; i++) {
        const char *s = x->seen[i].name;
        size_t m = strlen(s);
        if (!strcmp(s, name) || (m < n && !strncmp(s, name, m) && name[m] == '.') ||
            (n < m && !strncmp(s, name, n) && s[n] == '.'))
            return fail(x, line, "duplicate key '%s' (first at line %d)", name, x->seen[i].line);
    }
    if (x->nseen == x->capseen) {
        int cap = x->capseen ? 2 * x->capseen : 32;
        seen_key *p = realloc(x->seen, (size_t)cap * sizeof *p);
        if (!p) CONFIG_ABORT("out of memory");
        x->seen = p;
        x->capseen = cap;
    }
    x->seen[x->nseen].name = xstrdup(name);
    x->seen[x->nseen].line = line;
    x->nseen++;
    return 0;
}

/* Sets key k from one scalar's text (len bytes; plain = unquoted in YAML, so it may be null). */
static int apply_scalar(apply_ctx *x, const key_def *k, const char *s, size_t len, int plain, int line) {
    char got[128], want[256];
    describe_value(got, sizeof got, s, len);
    if (strlen(s) != len) return fail(x, line, "key '%s': the value contains a NUL character", k->name);
    int null = is_null_text(s, len, plain);
    char *field = (char *)x->c + k->offset;
    switch (k->type) {
    case T_BOOL: {
        int v;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) v = 1;
        else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) v = 0;
        else return fail(x, line, "key '%s': expected true or false, got %s", k->name, got);
        *(bool *)field = v;
        return 0;
    }
    case T_INT: {
        if (null && (k->flags & F_NULLABLE)) {
            *set_flag(x->c, k) = false;
            *(int *)field = 0;
            return 0;
        }
        long long v;
        if (parse_int(s, &v) != 0 || v < INT_MIN || v > INT_MAX || !in_range(k, (double)v)) {
            describe_expected(k, want, sizeof want);
            return fail(x, line, "key '%s': expected %s, got %s", k->name, want, got);
        }
        *(int *)field = (int)v;
        if (k->flags & F_NULLABLE) *set_flag(x->c, k) = true;
        return 0;
    }
    case T_FLOAT: {
        if (null && (k->flags & F_NULLABLE)) {
            /* null: no value (epsilon_high's null means "follow epsilon", kept in sync below) */
            *set_flag(x->c, k) = false;
            *(double *)field = 0.0;
            sync_epsilon(x->c);
            return 0;
        }
        double v;
        if (parse_float(s, &v) != 0 || !in_range(k, v)) {
            describe_expected(k, want, sizeof want);
            return fail(x, line, "key '%s': expected %s, got %s", k->name, want, got);
        }
        *(double *)field = v;
        if (k->flags & F_NULLABLE) *set_flag(x->c, k) = true;
        sync_epsilon(x->c);
        return 0;
    }
    case T_STRING: {
        const char *v = null ? "" : s;
        if ((k->flags & F_NONEMPTY) && !v[0])
            return fail(x, line, "key '%s': expected a non-empty string, got %s", k->name, got);
        char **p = (char **)field;
        free(*p);
        *p = xstrdup(v);
        return 0;
    }
    case T_ENUM: {
        /* TRL's GRPOConfig: scale_rewards True means "group", False "none" */
        if (!strcmp(k->name, "scale_rewards") && plain) {
            if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) s = "group";
            else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) s = "none";
        }
        if (!strcmp(k->name, "vllm_importance_sampling_correction") && plain) {   /* YAML's boolean spellings */
            if (!strcmp(s, "True") || !strcmp(s, "TRUE")) s = "true";
            else if (!strcmp(s, "False") || !strcmp(s, "FALSE")) s = "false";
        }
        for (const char *const *ch = k->choices; *ch; ch++) {
            if (!strcmp(*ch, s)) { *(const char **)field = *ch; return 0; }
        }
        describe_expected(k, want, sizeof want);
        const char *best = NULL;
        int bestd = INT_MAX;
        for (const char *const *ch = k->choices; *ch; ch++) {
            char lower[64];
            size_t i = 0;
            for (; s[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)s[i]);
            lower[i] = '\0';
            int d = strcmp(lower, *ch) ? edit_distance(lower, *ch) : 0;
            if (d < bestd) { bestd = d; best = *ch; }
        }
        if (best && close_enough(bestd, s))
            return fail(x, line, "key '%s': expected %s, got %s (did you mean '%s'?)", k->name, want, got, best);
        return fail(x, line, "key '%s': expected %s, got %s", k->name, want, got);
    }
    case T_WEIGHT_LIST:
        if (null) {
            *set_flag(x->c, k) = false;
            memset(field, 0, sizeof(double) * CONFIG_NUM_REWARDS);
            return 0;
        }
        describe_expected(k, want, sizeof want);   /* a scalar is not a list */
        return fail(x, line, "key '%s': expected %s, got %s", k->name, want, got);
    case T_WEIGHTS:
        describe_expected(k, want, sizeof want);
        return fail(x, line, "key '%s': expected %s, got %s", k->name, want, got);
    case T_GROUP: break;
    }
    CONFIG_ABORT("bad key type");
}

/* Parses one reward weight (any finite number) for rewards.functions.NAME into *out. */
static int parse_weight(apply_ctx *x, const key_def *k, int r, const yaml_node_t *v, double *out) {
    char full[128], got[128];
    snprintf(full, sizeof full, "%s.%s", k->name, config_reward_names[r]);
    if (v->type != YAML_SCALAR_NODE)
        return fail(x, node_line(v), "key '%s': expected a number (the reward weight), got %s", full, node_kind(v));
    const char *s = (const char *)v->data.scalar.value;
    if (parse_float(s, out) != 0) {
        describe_value(got, sizeof got, s, v->data.scalar.length);
        return fail(x, node_line(v), "key '%s': expected a number (the reward weight), got %s", full, got);
    }
    return 0;
}

static int unknown_key(apply_ctx *x, int line, const char *full) {
    char sug[128];
    if (suggest_key(full, sug, sizeof sug))
        return fail(x, line, "unknown key '%s' (did you mean '%s'?)", full, sug);
    return fail(x, line, "unknown key '%s' (the keys are listed by --help and in docs/config.md)", full);
}

/* rewards.functions: a mapping name → weight (missing names get 0), or a list of names (weight 1). */
static int apply_weights(apply_ctx *x, const key_def *k, yaml_document_t *d, yaml_node_t *v) {
    double *weights = (double *)((char *)x->c + k->offset);
    char want[256], full[192];
    if (v->type == YAML_SCALAR_NODE) {
        return apply_scalar(x, k, (const char *)v->data.scalar.value, v->data.scalar.length,
                            v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, node_line(v));
    }
    int seen[CONFIG_NUM_REWARDS] = {0};
    double w[CONFIG_NUM_REWARDS] = {0};
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(d, *it);
            if (!e || e->type != YAML_SCALAR_NODE) {
                describe_expected(k, want, sizeof want);
                return fail(x, node_line(e), "key '%s': expected %s (or a list of names), got a list of %s",
                            k->name, want, e ? node_kind(e) : "nothing");
            }
            const char *name = (const char *)e->data.scalar.value;
            int r = reward_index(name);
            snprintf(full, sizeof full, "%s.%s", k->name, name);
            if (r < 0) return unknown_key(x, node_line(e), full);
            if (seen[r]) return fail(x, node_line(e), "duplicate reward function '%s' in '%s'", name, k->name);
            seen[r] = 1;
            w[r] = 1.0;
        }
    } else {
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(d, p->key), *vn = yaml_document_get_node(d, p->value);
            if (kn->type != YAML_SCALAR_NODE)
                return fail(x, node_line(kn), "key '%s': expected reward function names as keys, got %s",
                            k->name, node_kind(kn));
            const char *name = (const char *)kn->data.scalar.value;
            int r = reward_index(name);
            snprintf(full, sizeof full, "%s.%s", k->name, name);
            if (r < 0) return unknown_key(x, node_line(kn), full);
            if (seen[r]) return fail(x, node_line(kn), "duplicate key '%s'", full);
            seen[r] = 1;
            if (parse_weight(x, k, r, vn, &w[r]) != 0) return -1;   /* weights stay untouched */
        }
    }
    memcpy(weights, w, sizeof w);
    return 0;
}

/* reward_weights: a list of exactly CONFIG_NUM_REWARDS numbers (null is handled by apply_scalar). */
static int apply_weight_list(apply_ctx *x, const key_def *k, yaml_document_t *d, yaml_node_t *v) {
    char want[256], got[128];
    double w[CONFIG_NUM_REWARDS];
    int n = 0;
    describe_expected(k, want, sizeof want);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, n++) {
        yaml_node_t *e = yaml_document_get_node(d, *it);
        if (n >= CONFIG_NUM_REWARDS)
            return fail(x, node_line(v), "key '%s': expected %s, got a list of %d", k->name, want,
                        (int)(v->data.sequence.items.top - v->data.sequence.items.start));
        if (!e || e->type != YAML_SCALAR_NODE)
            return fail(x, node_line(e), "key '%s': expected %s, got a list holding %s", k->name, want,
                        e ? node_kind(e) : "nothing");
        const char *s = (const char *)e->data.scalar.value;
        if (parse_float(s, &w[n]) != 0) {
            describe_value(got, sizeof got, s, e->data.scalar.length);
            return fail(x, node_line(e), "key '%s': element %d: expected a number, got %s", k->name, n + 1, got);
        }
    }
    if (n != CONFIG_NUM_REWARDS)
        return fail(x, node_line(v), "key '%s': expected %s, got a list of %d", k->name, want, n);
    memcpy((char *)x->c + k->offset, w, sizeof w);
    *set_flag(x->c, k) = true;
    return 0;
}

static int apply_mapping(apply_ctx *x, const char *prefix, yaml_document_t *d, yaml_node_t *map);

/* Applies value node v to dotted key `full` (a key, a section, or one reward weight). */
static int apply_at(apply_ctx *x, const char *full, int key_line, yaml_document_t *d, yaml_node_t *v) {
    const key_def *k = find_key(full);
    if (k) {
        if (note_seen(x, full, key_line) != 0) return -1;
        if (k->type == T_WEIGHTS) return apply_weights(x, k, d, v);
        if (k->type == T_WEIGHT_LIST && v->type == YAML_SEQUENCE_NODE) return apply_weight_list(x, k, d, v);
        if (v->type != YAML_SCALAR_NODE) {
            char want[256];
            describe_expected(k, want, sizeof want);
            return fail(x, node_line(v), "key '%s': expected %s, got %s", full, want, node_kind(v));
        }
        return apply_scalar(x, k, (const char *)v->data.scalar.value, v->data.scalar.length,
                            v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, node_line(v));
    }
    if (is_section(full)) {
        if (v->type == YAML_MAPPING_NODE) return apply_mapping(x, full, d, v);
        if (v->type == YAML_SCALAR_NODE && is_null_text((const char *)v->data.scalar.value, v->data.scalar.length,
                                                        v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
            return 0; /* an empty section */
        return fail(x, node_line(v), "key '%s': expected a section (a mapping of %s.* keys), got %s", full, full,
                    node_kind(v));
    }
    /* rewards.functions.NAME: one weight */
    const char *dot = strrchr(full, '.');
    if (dot) {
        char parent[128];
        snprintf(parent, sizeof parent, "%.*s", (int)(dot - full), full);
        const key_def *pk = find_key(parent);
        int r = reward_index(dot + 1);
        if (pk && pk->type == T_WEIGHTS && r >= 0) {
            if (note_seen(x, full, key_line) != 0) return -1;
            return parse_weight(x, pk, r, v, (double *)((char *)x->c + pk->offset) + r);
        }
    }
    return unknown_key(x, key_line, full);
}

static int apply_mapping(apply_ctx *x, const char *prefix, yaml_document_t *d, yaml_node_t *map) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(d, p->key), *vn = yaml_document_get_node(d, p->value);
        if (kn->type != YAML_SCALAR_NODE)
            return fail(x, node_line(kn), "expected a key name, got %s", node_kind(kn));
        const char *name = (const char *)kn->data.scalar.value;
        char full[256];
        if (prefix[0]) snprintf(full, sizeof full, "%s.%s", prefix, name);
        else snprintf(full, sizeof full, "%s", name);
        if (!name[0]) return fail(x, node_line(kn), "empty key name%s%s", prefix[0] ? " in section " : "", prefix);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(d, q->key);
            if (qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, name))
                return fail(x, node_line(kn), "duplicate key '%s' (first at line %d)", full, node_line(qk));
        }
        if (apply_at(x, full, node_line(kn), d, vn) != 0) return -1;
    }
    return 0;
}

/* Line (1-based) of byte offset off in text, for reader errors that carry only an offset. */
static int line_of_offset(const char *text, size_t len, size_t off) {
    int line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
    return line;
}

/* Loads text as one YAML document into *d. Returns 0 (d->nodes may be empty for an empty document),
 * or -1 via fail() with the parser's problem and line. */
static int load_yaml(apply_ctx *x, const char *text, size_t len, yaml_document_t *d) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) CONFIG_ABORT("out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, d)) {
        int line = parser.error == YAML_READER_ERROR ? line_of_offset(text, len, parser.problem_offset)
                                                      : (int)parser.problem_mark.line + 1;
        const char *pre = x->file ? "" : "invalid value: ";
        if (parser.context)
            fail(x, line, "%sYAML syntax error: %s (%s at line %d)", pre, parser.problem ? parser.problem : "?",
                 parser.context, (int)parser.context_mark.line + 1);
        else
            fail(x, line, "%sYAML syntax error: %s", pre, parser.problem ? parser.problem : "unknown problem");
        yaml_parser_delete(&parser);
        return -1;
    }
    /* a second document is almost always a mistake (a stray `---`): refuse it rather than ignore it */
    if (yaml_document_get_root_node(d)) {
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            int line = (int)parser.problem_mark.line + 1;
            fail(x, line, "YAML syntax error: %s", parser.problem ? parser.problem : "unknown problem");
            yaml_document_delete(d);
            yaml_parser_delete(&parser);
            return -1;
        }
        yaml_node_t *root2 = yaml_document_get_root_node(&extra);
        if (root2) {
            int line = node_line(root2);
            yaml_document_delete(&extra);
            yaml_document_delete(d);
            yaml_parser_delete(&parser);
            return fail(x, line, "expected a single YAML document, found a second one");
        }
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    return 0;
}

static void ctx_free(apply_ctx *x) {
    for (int i = 0; i < x->nseen; i++) free(x->seen[i].name);
    free(x->seen);
}

static void text_append(grpo_config *c, const char *s, size_t n) {
    size_t old = c->text ? strlen(c->text) : 0;
    char *p = realloc(c->text, old + n + 1);
    if (!p) CONFIG_ABORT("out of memory");
    memcpy(p + old, s, n);
    p[old + n] = '\0';
    c->text = p;
}

/* Sets dotted key `key` from value text in --set syntax. String keys take unquoted text verbatim;
 * everything else (and quoted strings) is parsed as a YAML value. */
static int set_value(apply_ctx *x, const char *key, const char *value) {
    const key_def *k = find_key(key);
    size_t vlen = strlen(value);
    if (k && k->type == T_STRING && value[0] != '\'' && value[0] != '"')
        return apply_scalar(x, k, value, vlen, 1, 0);
    yaml_document_t d;
    if (load_yaml(x, value, vlen, &d) != 0) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    int rc;
    if (!root) {
        /* an empty value: an empty plain scalar */
        yaml_document_t e;
        if (!yaml_document_initialize(&e, NULL, NULL, NULL, 1, 1)) CONFIG_ABORT("out of memory");
        int id = yaml_document_add_scalar(&e, NULL, (yaml_char_t *)"", 0, YAML_PLAIN_SCALAR_STYLE);
        if (!id) CONFIG_ABORT("out of memory");
        rc = apply_at(x, key, 0, &e, yaml_document_get_node(&e, id));
        yaml_document_delete(&e);
    } else {
        rc = apply_at(x, key, 0, &d, root);
    }
    yaml_document_delete(&d);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* 4. Public API                                                                                   */

void config_defaults(grpo_config *c) {
    if (!c) CONFIG_ABORT("config_defaults: NULL config");
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == T_STRING) *(char **)((char *)c + k->offset) = xstrdup(k->def ? k->def : config_default_prompt);
    }
    char err[512];
    apply_ctx x = {.c = c, .assignment = "(default)", .err = err, .errlen = sizeof err};
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == T_GROUP || k->type == T_STRING) continue;
        if (set_value(&x, k->name, k->def) != 0) CONFIG_ABORT("bad default for '%s': %s", k->name, err);
    }
    ctx_free(&x);
    c->text = xstrdup("");
}

int config_load_file(grpo_config *c, const char *path, char *err, size_t errlen) {
    if (!c || !path) CONFIG_ABORT("config_load_file: NULL argument");
    apply_ctx x = {.c = c, .file = path, .err = err, .errlen = errlen};
    FILE *f = fopen(path, "rb");
    if (!f) return fail(&x, 0, "cannot open the config file: %s", strerror(errno));
    sbuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_addn(&b, chunk, n);
    int rerr = ferror(f);
    fclose(f);
    if (b.oom) CONFIG_ABORT("out of memory");
    if (rerr) { free(b.s); return fail(&x, 0, "cannot read the config file"); }
    const char *text = b.s ? b.s : "";
    yaml_document_t d;
    if (load_yaml(&x, text, b.len, &d) != 0) { free(b.s); return -1; }
    yaml_node_t *root = yaml_document_get_root_node(&d);
    int rc = 0;
    if (root && root->type != YAML_MAPPING_NODE &&
        !(root->type == YAML_SCALAR_NODE &&
          is_null_text((const char *)root->data.scalar.value, root->data.scalar.length,
                       root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)))
        rc = fail(&x, node_line(root), "expected a mapping of configuration keys (key: value lines) at the top "
                                       "level, got %s", node_kind(root));
    else if (root && root->type == YAML_MAPPING_NODE)
        rc = apply_mapping(&x, "", &d, root);
    yaml_document_delete(&d);
    ctx_free(&x);
    if (rc == 0) {
        char head[64 + 1024];
        int hn = snprintf(head, sizeof head, "# config file: %s\n", path);
        text_append(c, head, hn < (int)sizeof head ? (size_t)hn : sizeof head - 1);
        text_append(c, text, strlen(text));
        if (b.len && text[b.len - 1] != '\n') text_append(c, "\n", 1);
    }
    free(b.s);
    return rc;
}

int config_set(grpo_config *c, const char *assignment, char *err, size_t errlen) {
    if (!c || !assignment) CONFIG_ABORT("config_set: NULL argument");
    apply_ctx x = {.c = c, .assignment = assignment, .err = err, .errlen = errlen};
    const char *eq = strchr(assignment, '=');
    if (!eq) return fail(&x, 0, "expected key=value (for example rewards.workers=2)");
    const char *ks = assignment, *ke = eq;
    while (ks < ke && isspace((unsigned char)*ks)) ks++;
    while (ke > ks && isspace((unsigned char)ke[-1])) ke--;
    if (ke == ks) return fail(&x, 0, "expected key=value, got an empty key");
    char *key = xstrndup(ks, (size_t)(ke - ks));
    int rc = set_value(&x, key, eq + 1);
    free(key);
    ctx_free(&x);
    if (rc == 0) {
        text_append(c, "# --set ", 8);
        for (const char *p = assignment; *p; p++) {
            if (*p == '\n') text_append(c, "\\n", 2);   /* keep it one comment line */
            else text_append(c, p, 1);
        }
        text_append(c, "\n", 1);
    }
    return rc;
}

static unsigned command_use(const char *command) {
    if (!command) return USE_BOTH | USE_EVAL;
    if (!strcmp(command, "train")) return USE_TRAIN;
    if (!strcmp(command, "sft")) return USE_SFT;
    if (!strcmp(command, "eval")) return USE_EVAL;
    CONFIG_ABORT("unknown command '%s' (expected \"train\", \"sft\" or \"eval\")", command);
}

int config_validate(const grpo_config *c, const char *command, char *err, size_t errlen) {
    if (!c) CONFIG_ABORT("config_validate: NULL config");
    unsigned use = command_use(command);
    char want[256];
    /* every key's own range again, for values written straight into the struct */
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        const char *field = (const char *)c + k->offset;
        char got[128];
        switch (k->type) {
        case T_INT: {
            int v = *(const int *)field;
            if (!is_set(c, k)) break;
            if (!in_range(k, v)) {
                describe_expected(k, want, sizeof want);
                snprintf(err, errlen, "key '%s': expected %s, got %d", k->name, want, v);
                return -1;
            }
            break;
        }
        case T_FLOAT: {
            double v = *(const double *)field;
            if (!is_set(c, k) && strcmp(k->name, "epsilon_high")) break;   /* epsilon_high: its effective value */
            if (!isfinite(v) || !in_range(k, v)) {
                describe_expected(k, want, sizeof want);
                format_double(got, sizeof got, v);
                snprintf(err, errlen, "key '%s': expected %s, got %s", k->name, want, got);
                return -1;
            }
            break;
        }
        case T_STRING: {
            const char *v = *(const char *const *)field;
            if (!v) CONFIG_ABORT("key '%s' is NULL: config_defaults was not called", k->name);
            if ((k->flags & F_NONEMPTY) && !v[0]) {
                snprintf(err, errlen, "key '%s': expected a non-empty string", k->name);
                return -1;
            }
            break;
        }
        case T_ENUM: {
            const char *v = *(const char *const *)field;
            int ok = 0;
            for (const char *const *ch = k->choices; v && *ch; ch++) ok |= !strcmp(*ch, v);
            if (!ok) {
                describe_expected(k, want, sizeof want);
                snprintf(err, errlen, "key '%s': expected %s, got '%s'", k->name, want, v ? v : "(null)");
                return -1;
            }
            break;
        }
        case T_WEIGHTS: {
            const double *w = (const double *)field;
            for (int r = 0; r < CONFIG_NUM_REWARDS; r++) {
                if (!(fabs(w[r]) <= REWARD_MAX_WEIGHT)) {
                    snprintf(err, errlen, "key '%s.%s': expected a finite number in [-%g, %g], got %g", k->name,
                             config_reward_names[r], REWARD_MAX_WEIGHT, REWARD_MAX_WEIGHT, w[r]);
                    return -1;
                }
            }
            break;
        }
        case T_WEIGHT_LIST: {
            const double *w = (const double *)field;
            for (int r = 0; is_set(c, k) && r < CONFIG_NUM_REWARDS; r++) {
                if (!(fabs(w[r]) <= REWARD_MAX_WEIGHT)) {
                    snprintf(err, errlen, "key '%s': element %d: expected a finite number in [-%g, %g], got %g", k->name,
                             r + 1, REWARD_MAX_WEIGHT, REWARD_MAX_WEIGHT, w[r]);
                    return -1;
                }
            }
            break;
        }
        case T_BOOL: case T_GROUP: break;
        }
    }
    /* transformers raises when the requested attention implementation is unavailable; so do we, before any work */
    if (!strcmp(c->attn_implementation, "cudnn") && !strcmp(c->device, "cpu")) {
        snprintf(err, errlen, "key 'attn_implementation': cudnn needs device: cuda (or auto on a machine with a GPU); "
                 "the CPU model has only the native attention");
        return -1;
    }
    if (!strcmp(c->attn_implementation, "cudnn") && !c->bf16) {
        snprintf(err, errlen, "key 'attn_implementation': cudnn needs bf16: true (cuDNN's fused attention takes "
                 "bfloat16 inputs); with fp32 or tf32 use attn_implementation: native");
        return -1;
    }
    if (c->max_steps == 0) {
        snprintf(err, errlen, "key 'max_steps': expected a positive number of steps, or -1 (sft: num_train_epochs "
                 "decides), got 0");
        return -1;
    }
    if (use == USE_TRAIN) {
        const int B = c->per_device_train_batch_size;
        /* TRL's GRPOConfig.__post_init__ and GRPOTrainer.__init__ checks of the importance-sampling correction */
        const bool cmin = c->vllm_importance_sampling_clip_min_set, cmax = c->vllm_importance_sampling_clip_max_set;
        const bool truncate = strstr(c->vllm_importance_sampling_mode, "truncate") != NULL;
        const bool is_on = !strcmp(c->vllm_importance_sampling_correction, "true") ||
                           (!strcmp(c->vllm_importance_sampling_correction, "auto") && (c->bf16 || c->tf32));
        if (cmin && cmax && c->vllm_importance_sampling_clip_min >= c->vllm_importance_sampling_clip_max) {
            snprintf(err, errlen, "keys 'vllm_importance_sampling_clip_min' (%g) and 'vllm_importance_sampling_clip_max' "
                     "(%g): clip_min must be less than clip_max", c->vllm_importance_sampling_clip_min,
                     c->vllm_importance_sampling_clip_max);
            return -1;
        }
        if (strcmp(c->vllm_importance_sampling_correction, "false") != 0 && truncate && !cmin && !cmax) {
            snprintf(err, errlen, "key 'vllm_importance_sampling_mode': %s needs vllm_importance_sampling_clip_min or "
                     "vllm_importance_sampling_clip_max (both are null)", c->vllm_importance_sampling_mode);
            return -1;
        }
        if (is_on && !strcmp(c->loss_type, "vespo")) {
            if (!strncmp(c->vllm_importance_sampling_mode, "sequence", 8)) {
                snprintf(err, errlen, "key 'vllm_importance_sampling_mode': loss_type vespo needs token_truncate or "
                         "token_mask while the importance-sampling correction is on (got %s; as TRL)",
                         c->vllm_importance_sampling_mode);
                return -1;
            }
            if ((cmin && c->vllm_importance_sampling_clip_min > 1.0) || (cmax && c->vllm_importance_sampling_clip_max < 1.0)) {
                snprintf(err, errlen, "keys 'vllm_importance_sampling_clip_min/max': with loss_type vespo the range must "
                         "contain 1 (grpo2048 sums vespo's log-ratios over a micro-batch's own padding, TRL over the "
                         "generation's; they agree only when a ratio of 1 passes unchanged)");
                return -1;
            }
        }
        if (c->max_steps < 0) {
            snprintf(err, errlen, "key 'max_steps': -1 (train for num_train_epochs) means nothing to grpo2048 train, "
                     "whose dataset is one prompt sampled without end; give the number of optimizer steps");
            return -1;
        }
        if (c->steps_per_generation_set && c->generation_batch_size_set) {
            snprintf(err, errlen, "keys 'steps_per_generation' (%d) and 'generation_batch_size' (%d): give one of "
                     "them, not both (each determines the other: generation_batch_size = "
                     "per_device_train_batch_size * steps_per_generation)", c->steps_per_generation,
                     c->generation_batch_size);
            return -1;
        }
        if (c->generation_batch_size_set && c->generation_batch_size % B != 0) {
            snprintf(err, errlen, "key 'generation_batch_size': %d is not a multiple of per_device_train_batch_size "
                     "= %d (a generation is split into micro-batches of that many completions)",
                     c->generation_batch_size, B);
            return -1;
        }
        int gbs;
        config_generation_layout(c, NULL, &gbs);
        if (gbs % c->num_generations != 0) {
            if (c->steps_per_generation_set || c->generation_batch_size_set)
                snprintf(err, errlen, "key 'num_generations': %d must divide generation_batch_size = %d (each "
                         "generation samples that many completions, in groups of num_generations per prompt)",
                         c->num_generations, gbs);
            else
                snprintf(err, errlen,
                         "key 'num_generations': %d must divide per_device_train_batch_size * "
                         "gradient_accumulation_steps = %d * %d = %d (each step samples that many completions, "
                         "in groups of num_generations per prompt)",
                         c->num_generations, B, c->gradient_accumulation_steps, gbs);
            return -1;
        }
        double w[CONFIG_NUM_REWARDS];
        config_reward_weights(c, w);
        int any = 0;
        for (int r = 0; r < CONFIG_NUM_REWARDS; r++) any |= w[r] != 0;
        if (!any) {
            snprintf(err, errlen, "key '%s': every reward weight is 0, so every completion would get the same "
                     "reward; give at least one function a nonzero weight",
                     c->reward_weights_set ? "reward_weights" : "rewards.functions");
            return -1;
        }
        if (c->sync_ref_model && c->beta == 0) {
            snprintf(err, errlen, "key 'sync_ref_model': true needs beta > 0 (with beta = 0 there is no reference "
                                  "model to synchronize)");
            return -1;
        }
    }
    if (use == USE_SFT && !c->dataset_path[0]) {
        snprintf(err, errlen, "key 'dataset_path': sft needs a dataset (a JSONL file with one "
                              "{\"prompt\": ..., \"completion\": ...} object per line)");
        return -1;
    }
    return 0;
}

static const char *type_name(const key_def *k) {
    switch (k->type) {
    case T_BOOL: return "bool";
    case T_INT: return "int";
    case T_FLOAT: return "float";
    case T_STRING: return "string";
    case T_ENUM: return "enum";
    case T_WEIGHTS: return "map";
    case T_WEIGHT_LIST: return "list";
    case T_GROUP: break;
    }
    return "";
}

/* The allowed values of a key for help and docs: "2..8", "grpo, bnpo, ...", "non-empty", "any". */
static void describe_allowed(const key_def *k, char *out, size_t outlen) {
    switch (k->type) {
    case T_BOOL: snprintf(out, outlen, "true, false"); return;
    case T_ENUM: describe_choices(k, out, outlen); return;
    case T_STRING: snprintf(out, outlen, "%s", k->flags & F_NONEMPTY ? "non-empty" : "any"); return;
    case T_WEIGHTS:
        snprintf(out, outlen, "function_works, no_cheating, strategy_succeeds, game_progress: a number each");
        return;
    case T_WEIGHT_LIST:
        snprintf(out, outlen, "%d numbers, or null", CONFIG_NUM_REWARDS);
        return;
    case T_INT: case T_FLOAT: {
        char r[128];
        describe_range(k, r, sizeof r);
        if (k->flags & F_POW2) snprintf(out, outlen, "power of two, %s", r);
        else snprintf(out, outlen, "%s%s", r[0] ? r : "any", k->flags & F_NULLABLE ? ", or null" : "");
        return;
    }
    case T_GROUP: break;
    }
    out[0] = '\0';
}

/* The default for help and docs; multi-line strings are abbreviated to their first line. */
static void describe_default(const key_def *k, char *out, size_t outlen, int *multiline) {
    *multiline = 0;
    if (k->type == T_STRING) {
        const char *d = k->def ? k->def : config_default_prompt;
        const char *nl = strchr(d, '\n');
        if (nl) {
            *multiline = 1;
            snprintf(out, outlen, "\"%.*s ...\"", (int)(nl - d), d);
        } else {
            snprintf(out, outlen, "\"%s\"", d);
        }
        return;
    }
    if (k->flags & F_NULLABLE && !strcmp(k->def, "null")) {
        snprintf(out, outlen, "null (%s)", k->null_means ? k->null_means : "none");
        return;
    }
    snprintf(out, outlen, "%s", k->def);
}

/* A key's type and allowed values in one phrase for --help: "float in [0, 1]", "int >= 1", "enum: a | b". */
static void describe_type(const key_def *k, char *out, size_t outlen) {
    char r[96];
    switch (k->type) {
    case T_INT: case T_FLOAT:
        describe_range(k, r, sizeof r);
        snprintf(out, outlen, "%s%s%s%s%s", type_name(k), k->flags & F_POW2 ? ", a power of two" : "",
                 r[0] == '[' || r[0] == '(' || strstr(r, "..") ? " in " : r[0] ? " " : "", r,
                 k->flags & F_NULLABLE ? " or null" : "");
        return;
    case T_ENUM: {
        size_t n = (size_t)snprintf(out, outlen, "enum:");
        for (const char *const *c = k->choices; *c && n < outlen; c++)
            n += (size_t)snprintf(out + n, outlen - n, "%s%s", c == k->choices ? " " : " | ", *c);
        return;
    }
    case T_STRING: snprintf(out, outlen, "string%s", k->flags & F_NONEMPTY ? ", non-empty" : ""); return;
    case T_WEIGHTS: snprintf(out, outlen, "map: reward function name -> weight"); return;
    case T_WEIGHT_LIST: snprintf(out, outlen, "list of %d weights or null", CONFIG_NUM_REWARDS); return;
    case T_BOOL: snprintf(out, outlen, "bool"); return;
    case T_GROUP: break;
    }
    out[0] = '\0';
}

/* Prints text word-wrapped to `width` columns, every line indented by `indent` spaces. */
static void print_wrapped(FILE *f, const char *text, int indent, int width) {
    const char *p = text;
    while (*p) {
        int avail = width - indent, len = (int)strlen(p);
        int cut = len;
        if (len > avail) {
            cut = avail;
            while (cut > 0 && p[cut] != ' ') cut--;
            if (cut == 0) { cut = avail; while (p[cut] && p[cut] != ' ') cut++; }
        }
        fprintf(f, "%*s%.*s\n", indent, "", cut, p);
        p += cut;
        while (*p == ' ') p++;
    }
}

void config_print_help(FILE *f, const char *command) {
    unsigned use = command_use(command);
    const char *group = NULL;
    int group_printed = 0, any = 0;
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == T_GROUP) { group = k->name; group_printed = 0; continue; }
        if (!(k->use & use)) continue;
        if (group && !group_printed) { fprintf(f, "%s%s:\n", any ? "\n" : "", group); group_printed = 1; }
        any = 1;
        char type[512], def[1024], line[1600];
        int ml;
        describe_type(k, type, sizeof type);
        describe_default(k, def, sizeof def, &ml);
        snprintf(line, sizeof line, "%s, default %s", type, def);
        if (strlen(line) <= 100 - 33) {
            fprintf(f, "  %-30s %s\n", k->name, line);
        } else {   /* long defaults go on their own line */
            fprintf(f, "  %-30s %s,\n%33sdefault %s\n", k->name, type, "", def);
        }
        print_wrapped(f, k->help, 6, 100);
    }
}

/* Markdown table cell: pipes escaped, everything else as is. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

void config_write_markdown(FILE *f) {
    fputs("# Configuration reference\n\n"
          "<!-- Generated by config_write_markdown() from the key table in trainer/config.c: do not edit.\n"
          "     Regenerate with: GRPO2048_UPDATE_DOCS=1 build/test_config (tests/trainer/test_config.c). -->\n\n"
          "`grpo2048 train CONFIG.yaml` and `grpo2048 sft CONFIG.yaml` read a YAML file of `key: value` lines.\n"
          "Keys of a section are nested under it (`rewards:` then indented `workers: 2`) or written dotted\n"
          "(`rewards.workers: 2`). `--set key=value` overrides a key after the file (dotted names, YAML scalar\n"
          "syntax for the value; e.g. `--set rewards.workers=2`, `--set rewards.functions.game_progress=0.5`),\n"
          "and `grpo2048 train --help` lists the keys a command uses. Key names and defaults follow TRL's\n"
          "`GRPOConfig` / `SFTConfig` where TRL has the concept; the `rewards:` section is grpo2048's own.\n"
          "Unknown keys, wrong types and out-of-range values are errors that name the file, line and key.\n\n"
          "Ranges: `a..b` is an integer range with both ends included; `[a, b]` includes an end, `(a, b)`\n"
          "excludes it.\n",
          f);
    int in_table = 0;
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == T_GROUP) {
            fprintf(f, "\n## %s\n\n", k->name);
            in_table = 0;
            continue;
        }
        if (!in_table) {
            fputs("| Key | Type | Default | Allowed | Used by | Description |\n"
                  "|-----|------|---------|---------|---------|-------------|\n", f);
            in_table = 1;
        }
        char allowed[256], def[1024];
        int ml;
        describe_allowed(k, allowed, sizeof allowed);
        describe_default(k, def, sizeof def, &ml);
        fprintf(f, "| `%s` | %s | ", k->name, type_name(k));
        if (ml) fputs("the 2048 prompt (below)", f);
        else { fputc('`', f); md_cell(f, def); fputc('`', f); }
        fputs(" | ", f);
        md_cell(f, allowed);
        fprintf(f, " | %s%s%s%s%s | ", k->use & USE_TRAIN ? "train" : "", (k->use & USE_TRAIN) && (k->use & USE_SFT) ? ", " : "",
                k->use & USE_SFT ? "sft" : "", (k->use & (USE_TRAIN | USE_SFT)) && (k->use & USE_EVAL) ? ", " : "",
                k->use & USE_EVAL ? "eval" : "");
        md_cell(f, k->help);
        fputs(" |\n", f);
    }
    fputs("\n## Differences from TRL's defaults\n\n"
          "Keys that TRL 1.16.0's `GRPOConfig` / `SFTConfig` (on transformers 5.25's `TrainingArguments`) also has\n"
          "take the same values, with the same meaning, except these deliberate differences:\n\n"
          "| Key | TRL / transformers | grpo2048 | Why |\n"
          "|-----|--------------------|----------|-----|\n"
          "| `max_completion_length` | 512 | 256 | A 2048 strategy fits in far fewer tokens, and every generated token costs CPU time. |\n"
          "| `logging_steps` | 10 | 1 | Every step's metrics are written to metrics.sqlite regardless; `logging_steps` only spaces the progress line. TRL averages its metrics over `logging_steps` steps; grpo2048 stores each step's. |\n"
          "| `bf16` | true (when fp16 is off) | false | bf16 rounds every matrix product's inputs: fp32 keeps results exact, repeatable across machines and comparable with the reference fixtures. Set it for speed: on the GPU, and on CPUs with AMX-BF16 or AVX512-BF16 (2-3x faster training of SmolLM2-135M; `configs/smollm2-135m-*.yaml` do); elsewhere the CPU says it does not apply and stays fp32. |\n"
          "| `max_steps` | -1 (train for `num_train_epochs`) | 100 | `grpo2048 train` samples one prompt without end, so it has no epochs and needs a step count (-1 is refused there; sft accepts it). sft stops at the smaller of `max_steps` and `num_train_epochs`, where transformers lets a positive `max_steps` override the epochs. |\n"
          "| `num_train_epochs` | 3.0 | 1.0 | sft only; one pass over the small SFT corpora grpo2048 ships. |\n"
          "| `save_steps` | 500 | 0 (only at the end) | Small runs; a checkpoint is also written when the run is interrupted. |\n"
          "| `temperature` | > 0 | 0 allowed (greedy) | Greedy sampling for debugging; the training log-probabilities are then taken at temperature 1 (TRL divides the logits by `temperature`, which is 1 by default, so the default runs agree). |\n"
          "| `warmup_ratio` | removed in transformers 5 | kept | Older configs still load; `warmup_steps` (int steps, or a fraction below 1, as transformers 5) wins when nonzero. |\n"
          "| `eval_steps` | evaluates an eval dataset | plays `eval_games` games | grpo2048's evaluation is greedy (or `eval_temperature`) completions on fixed game seeds; the metrics carry TRL's `eval_` prefix. |\n"
          "| `vllm_importance_sampling_correction` | true (applies only with `use_vllm`) | auto | grpo2048's generator is not vLLM, but its log-probabilities differ from the training forward's in the same way once the two run at different precisions; `auto` applies TRL's correction exactly then (`bf16` as applied on the CPU, `tf32`/`bf16` on CUDA) and leaves fp32 runs (the default demo) unchanged, where the whole mismatch is float rounding (~1e-6). `true`/`false` as TRL. The generator returns vLLM's `processed_logprobs` (after penalty, temperature, top-k/top-p), as TRL asks vLLM for. No extra forward pass where TRL's `old_per_token_logps` equal the training forward's (`num_iterations` 1 and `gradient_accumulation_steps` a multiple of `steps_per_generation`); one per generation otherwise, as TRL. `vllm_importance_sampling_cap` (TRL's deprecated name) is accepted and replaces `clip_max`, as TRL. With `loss_type: vespo` the clip range must contain 1. |\n\n"
          "grpo2048-only keys: `max_prompt_length` (a longer prompt is an error; TRL 1.16 has no such key), `device`,\n"
          "`chat_template`, `system_prompt`, `prompt`, `dataset_path`, `init_from_scratch`, `sft_eval_fraction`,\n"
          "`eval_games`, `eval_temperature` and the `rewards:` section. TRL keys grpo2048 does not have (vLLM's own,\n"
          "tools, `use_adaptive_entropy`, `off_policy_mask_threshold`, `multi_objective_aggregation`, ...) are\n"
          "unknown keys, reported as errors rather than ignored.\n", f);
    fputs("\n## The default prompt\n\n"
          "The public Unsloth 2048 notebook's prompt (no trailing newline):\n\n~~~text\n", f);
    fputs(config_default_prompt, f);
    fputs("\n~~~\n\n## Example\n\n```yaml\n"
          "model_name_or_path: models/qwen2.5-0.5b-instruct\n"
          "output_dir: runs/qwen-2048\n"
          "learning_rate: 5.0e-6\n"
          "per_device_train_batch_size: 8\n"
          "num_generations: 8\n"
          "max_steps: 200\n"
          "epsilon_high: 0.28\n"
          "rewards:\n"
          "  workers: 4\n"
          "  timeout: 2.0\n"
          "  functions:\n"
          "    function_works: 1.0\n"
          "    no_cheating: 1.0\n"
          "    strategy_succeeds: 1.0\n"
          "```\n", f);
}

/* A string as YAML: a literal block (|-) for multi-line text that allows one, else double-quoted. */
static void yaml_string(sbuf *b, const char *s, int indent) {
    size_t n = strlen(s);
    int block = strchr(s, '\n') != NULL && s[0] != ' ' && s[0] != '\n' && s[0] != '\t' && s[n - 1] != '\n';
    for (const unsigned char *p = (const unsigned char *)s; block && *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f) block = 0;
    /* trailing spaces on the text's last line would survive, but a last line of only spaces would not */
    if (block) {
        const char *last = strrchr(s, '\n') + 1;
        if (*last == '\0' || strspn(last, " ") == strlen(last)) block = 0;
    }
    if (block) {
        sb_add(b, "|-\n");
        const char *line = s;
        while (line) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            if (len) {
                for (int i = 0; i < indent + 2; i++) sb_add(b, " ");
                sb_addn(b, line, len);
            }
            sb_add(b, "\n");
            line = nl ? nl + 1 : NULL;
        }
        return;
    }
    sb_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_add(b, "\\\""); break;
        case '\\': sb_add(b, "\\\\"); break;
        case '\n': sb_add(b, "\\n"); break;
        case '\t': sb_add(b, "\\t"); break;
        case '\r': sb_add(b, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02x", *p);
            else sb_addn(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"\n");
}

static void yaml_key_value(sbuf *b, const grpo_config *c, const key_def *k, int indent) {
    const char *field = (const char *)c + k->offset;
    char num[64];
    for (int i = 0; i < indent; i++) sb_add(b, " ");
    sb_printf(b, "%s:%s", leaf_of(k->name), k->type == T_WEIGHTS ? "" : " ");
    switch (k->type) {
    case T_BOOL: sb_add(b, *(const bool *)field ? "true\n" : "false\n"); break;
    case T_INT:
        if (!is_set(c, k)) sb_add(b, "null\n");
        else sb_printf(b, "%d\n", *(const int *)field);
        break;
    case T_FLOAT:
        format_double(num, sizeof num, *(const double *)field);
        if (!is_set(c, k) && !strcmp(k->name, "epsilon_high")) sb_printf(b, "null  # = epsilon: %s\n", num);
        else if (!is_set(c, k)) sb_add(b, "null\n");
        else sb_printf(b, "%s\n", num);
        break;
    case T_WEIGHT_LIST: {
        const double *w = (const double *)field;
        if (!is_set(c, k)) { sb_add(b, "null\n"); break; }
        sb_add(b, "[");
        for (int r = 0; r < CONFIG_NUM_REWARDS; r++) {
            format_double(num, sizeof num, w[r]);
            sb_printf(b, "%s%s", r ? ", " : "", num);
        }
        sb_add(b, "]\n");
        break;
    }
    case T_STRING: yaml_string(b, *(char *const *)field, indent); break;
    case T_ENUM: sb_printf(b, "%s\n", *(const char *const *)field); break;
    case T_WEIGHTS: {
        sb_add(b, "\n");
        const double *w = (const double *)field;
        for (int r = 0; r < CONFIG_NUM_REWARDS; r++) {
            format_double(num, sizeof num, w[r]);
            for (int i = 0; i < indent + 2; i++) sb_add(b, " ");
            sb_printf(b, "%s: %s\n", config_reward_names[r], num);
        }
        break;
    }
    case T_GROUP: break;
    }
}

char *config_to_yaml(const grpo_config *c) {
    if (!c) CONFIG_ABORT("config_to_yaml: NULL config");
    sbuf b = {0};
    sb_add(&b, "# grpo2048 effective configuration: every key with its value\n");
    for (size_t i = 0; i < NUM_KEYS; i++)
        if (keys[i].type != T_GROUP && !strchr(keys[i].name, '.')) yaml_key_value(&b, c, &keys[i], 0);
    /* sections, in the order they first appear */
    for (size_t i = 0; i < NUM_KEYS; i++) {
        const char *dot = keys[i].type == T_GROUP ? NULL : strchr(keys[i].name, '.');
        if (!dot) continue;
        size_t sl = (size_t)(dot - keys[i].name);
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (keys[j].type != T_GROUP && !strncmp(keys[j].name, keys[i].name, sl + 1)) first = 0;
        if (!first) continue;
        sb_printf(&b, "%.*s:\n", (int)sl, keys[i].name);
        for (size_t j = i; j < NUM_KEYS; j++)
            if (keys[j].type != T_GROUP && !strncmp(keys[j].name, keys[i].name, sl + 1))
                yaml_key_value(&b, c, &keys[j], 2);
    }
    if (b.oom) { free(b.s); return NULL; }
    return b.s;
}

int config_warmup_steps(const grpo_config *c, int total) {
    if (c->warmup_steps >= 1.0) return (int)c->warmup_steps;
    if (c->warmup_steps > 0.0) return (int)ceil(total * c->warmup_steps);
    return (int)ceil(total * c->warmup_ratio);
}

void config_generation_layout(const grpo_config *c, int *steps_per_generation, int *generation_batch_size) {
    if (!c) CONFIG_ABORT("config_generation_layout: NULL config");
    int B = c->per_device_train_batch_size > 0 ? c->per_device_train_batch_size : 1;
    int S, GB;
    if (c->generation_batch_size_set) {
        GB = c->generation_batch_size;
        S = GB / B;
    } else {
        S = c->steps_per_generation_set ? c->steps_per_generation : c->gradient_accumulation_steps;
        GB = B * S;
    }
    if (steps_per_generation) *steps_per_generation = S;
    if (generation_batch_size) *generation_batch_size = GB;
}

void config_reward_weights(const grpo_config *c, double w[CONFIG_NUM_REWARDS]) {
    if (!c) CONFIG_ABORT("config_reward_weights: NULL config");
    memcpy(w, c->reward_weights_set ? c->reward_weights : c->rewards.weights, sizeof(double) * CONFIG_NUM_REWARDS);
}

int config_num_keys(void) {
    int n = 0;
    for (size_t i = 0; i < NUM_KEYS; i++) n += keys[i].type != T_GROUP;
    return n;
}

const char *config_key_name(int i) {
    for (size_t j = 0; j < NUM_KEYS; j++) {
        if (keys[j].type == T_GROUP) continue;
        if (i-- == 0) return keys[j].name;
    }
    CONFIG_ABORT("config_key_name(%d): out of range (%d keys)", i, config_num_keys());
}

int config_format_value(const grpo_config *c, const char *key, char *buf, size_t n) {
    if (!c || !key || !buf) CONFIG_ABORT("config_format_value: NULL argument");
    const key_def *k = find_key(key);
    if (!k) return -1;
    sbuf b = {0};
    const char *field = (const char *)c + k->offset;
    char num[64];
    switch (k->type) {
    case T_BOOL: sb_add(&b, *(const bool *)field ? "true" : "false"); break;
    case T_INT:
        if (!is_set(c, k)) sb_add(&b, "null");
        else sb_printf(&b, "%d", *(const int *)field);
        break;
    case T_FLOAT:
        if (!is_set(c, k)) { sb_add(&b, "null"); break; }
        format_double(num, sizeof num, *(const double *)field);
        sb_add(&b, num);
        break;
    case T_STRING:
        for (const char *p = *(char *const *)field; *p; p++) {
            if (*p == '\n') sb_add(&b, "\\n");
            else if (*p == '\\') sb_add(&b, "\\\\");
            else sb_addn(&b, p, 1);
        }
        break;
    case T_ENUM: sb_add(&b, *(const char *const *)field); break;
    case T_WEIGHTS: case T_WEIGHT_LIST: {
        const double *w = (const double *)field;
        if (!is_set(c, k)) { sb_add(&b, "null"); break; }
        sb_add(&b, k->type == T_WEIGHTS ? "{" : "[");
        for (int r = 0; r < CONFIG_NUM_REWARDS; r++) {
            format_double(num, sizeof num, w[r]);
            if (k->type == T_WEIGHTS) sb_printf(&b, "%s%s: %s", r ? ", " : "", config_reward_names[r], num);
            else sb_printf(&b, "%s%s", r ? ", " : "", num);
        }
        sb_add(&b, k->type == T_WEIGHTS ? "}" : "]");
        break;
    }
    case T_GROUP: break;
    }
    if (b.oom) CONFIG_ABORT("out of memory");
    snprintf(buf, n, "%s", b.s ? b.s : "");
    free(b.s);
    return 0;
}

void config_free(grpo_config *c) {
    if (!c) return;
    for (size_t i = 0; i < NUM_KEYS; i++)
        if (keys[i].type == T_STRING) free(*(char **)((char *)c + keys[i].offset));
    free(c->text);
    memset(c, 0, sizeof *c);
}
