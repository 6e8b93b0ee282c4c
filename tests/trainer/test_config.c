/*
 * tests/trainer/test_config.c: the configuration loader (trainer/config.c).
 *
 * Writes small YAML files into a mkdtemp folder and checks: the defaults; a file applied on top of
 * them; error messages (file:line, key, expectation, "did you mean") for unknown keys, nested unknown
 * keys, each type's wrong values, out-of-range values, YAML syntax errors, a non-mapping top level,
 * duplicate keys and a second document; --set overrides, valid and invalid; the reward-weight map;
 * epsilon_high following epsilon; config_validate's cross-key checks; TRL's algorithm options (nullable
 * numbers, the reward_weights list, the generation layout) and config_format_value; that config_to_yaml
 * loads back to the same values; the help text; and that docs/config.md is what config_write_markdown writes
 * (GRPO2048_UPDATE_DOCS=1 rewrites it instead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testing.h"
#include "trainer/config.h"

static char tmpdir[64];
static char paths[256][128];
static int npaths;

/* Writes text to a new file in tmpdir and returns its path. */
static const char *write_yaml(const char *name, const char *text) {
    if (npaths == 256) { fprintf(stderr, "too many temp files\n"); exit(1); }
    char *p = paths[npaths++];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (!f) { perror(p); exit(1); }
    fputs(text, f);
    fclose(f);
    return p;
}

/* Loads text as a YAML file on top of the defaults; returns the rc and leaves the message in err. */
static int load_text(grpo_config *c, const char *name, const char *text, char *err, size_t errlen) {
    config_defaults(c);
    err[0] = '\0';
    return config_load_file(c, write_yaml(name, text), err, errlen);
}

/* Expects loading text to fail with a message containing `want` (after "DIR/NAME"). */
#define EXPECT_LOAD_ERROR(name, text, want) do { grpo_config _c; char _e[512]; \
    int _rc = load_text(&_c, name, text, _e, sizeof _e); CHECK_EQ_INT(_rc, -1); \
    char _full[700]; snprintf(_full, sizeof _full, "%s/%s%s", tmpdir, name, want); \
    CHECK_MSG(strstr(_e, _full) != NULL, "got \"%s\", want \"%s\"", _e, _full); config_free(&_c); } while (0)

#define EXPECT_SET_ERROR(assign, want) do { grpo_config _c; char _e[512] = ""; config_defaults(&_c); \
    CHECK_EQ_INT(config_set(&_c, assign, _e, sizeof _e), -1); \
    CHECK_MSG(strstr(_e, want) != NULL, "got \"%s\", want \"%s\"", _e, want); config_free(&_c); } while (0)

static void test_defaults(void) {
    grpo_config c;
    config_defaults(&c);
    CHECK(!strcmp(c.model_name_or_path, "model/default"));
    CHECK(!strcmp(c.output_dir, "runs/default"));
    CHECK_NEAR(c.learning_rate, 1e-6, 1e-20);
    CHECK_EQ_INT(c.per_device_train_batch_size, 8);
    CHECK_EQ_INT(c.gradient_accumulation_steps, 1);
    CHECK_EQ_INT(c.num_generations, 8);
    CHECK_EQ_INT(c.max_prompt_length, 512);
    CHECK_EQ_INT(c.max_completion_length, 256);
    CHECK_NEAR(c.temperature, 1.0, 0);
    CHECK_NEAR(c.top_p, 1.0, 0);
    CHECK_EQ_INT(c.top_k, 0);
    CHECK_NEAR(c.beta, 0.0, 0);
    CHECK_NEAR(c.epsilon, 0.2, 0);
    CHECK_NEAR(c.epsilon_high, 0.2, 0);
    CHECK(!c.epsilon_high_set);
    CHECK(!strcmp(c.loss_type, "dapo"));
    CHECK(!strcmp(c.scale_rewards, "group"));
    /* TRL's GRPOConfig defaults of the algorithm options */
    CHECK(!c.delta_set);
    CHECK(!strcmp(c.importance_sampling_level, "token"));
    CHECK_EQ_INT(c.num_iterations, 1);
    CHECK(!c.steps_per_generation_set && !c.generation_batch_size_set);
    CHECK(!c.mask_truncated_completions);
    CHECK_NEAR(c.top_entropy_quantile, 1.0, 0);
    CHECK(!c.reward_weights_set);
    CHECK_NEAR(c.repetition_penalty, 1.0, 0);
    CHECK(!c.min_p_set);
    CHECK(!c.sync_ref_model);
    CHECK_NEAR(c.ref_model_mixup_alpha, 0.6, 0);
    CHECK_EQ_INT(c.ref_model_sync_steps, 512);
    CHECK_EQ_INT(c.eval_steps, 0);
    CHECK_EQ_INT(c.eval_games, 8);
    CHECK_NEAR(c.eval_temperature, 0.0, 0);
    CHECK(!strcmp(c.resume_from_checkpoint, ""));
    int S, GB;
    config_generation_layout(&c, &S, &GB);
    CHECK_EQ_INT(S, 1);
    CHECK_EQ_INT(GB, 8);
    CHECK_EQ_INT(c.max_steps, 100);
    CHECK_NEAR(c.num_train_epochs, 1.0, 0);
    CHECK_NEAR(c.warmup_ratio, 0.0, 0);
    CHECK(!strcmp(c.lr_scheduler_type, "linear"));
    CHECK_NEAR(c.weight_decay, 0.0, 0);
    CHECK_NEAR(c.adam_beta1, 0.9, 0);
    CHECK_NEAR(c.adam_beta2, 0.999, 0);
    CHECK_NEAR(c.adam_epsilon, 1e-8, 0);
    CHECK_NEAR(c.max_grad_norm, 1.0, 0);
    CHECK_EQ_INT(c.seed, 42);
    CHECK(!c.tf32 && !c.bf16);
    CHECK(!strcmp(c.device, "auto"));
    CHECK_EQ_INT(c.logging_steps, 1);
    CHECK_EQ_INT(c.save_steps, 0);
    CHECK_EQ_INT(c.save_total_limit, 0);
    CHECK(!strcmp(c.chat_template, "auto"));
    CHECK(!strcmp(c.system_prompt, ""));
    CHECK(!strcmp(c.prompt, config_default_prompt));
    const char *first = "Create a new short 2048 strategy using only native Python code.\n";
    CHECK(!strncmp(c.prompt, first, strlen(first)));
    CHECK(strstr(c.prompt, "```python\ndef strategy(board):\n    return \"W\" # Example\n```\n") != NULL);
    CHECK(strstr(c.prompt, "Only output the short function `strategy`.") != NULL);
    CHECK(c.prompt[strlen(c.prompt) - 1] == '.');   /* no trailing newline */
    CHECK(!strcmp(c.dataset_path, ""));
    CHECK_EQ_INT(c.max_length, 1024);
    CHECK(!c.init_from_scratch);
    CHECK_NEAR(c.sft_eval_fraction, 0.02, 0);
    CHECK(c.rewards.parallel);
    CHECK_EQ_INT(c.rewards.workers, 0);
    CHECK_NEAR(c.rewards.timeout, 1.0, 0);
    CHECK_EQ_INT(c.rewards.games_per_strategy, 1);
    CHECK_EQ_INT(c.rewards.board_size, 4);
    CHECK_EQ_INT(c.rewards.target, 2048);
    CHECK_NEAR(c.rewards.probability_fours, 0.1, 0);
    CHECK_EQ_INT(c.rewards.max_stuck_moves, 1000);
    CHECK_EQ_INT(c.rewards.memory_limit_mb, 512);
    for (int r = 0; r < CONFIG_NUM_REWARDS; r++) CHECK_NEAR(c.rewards.weights[r], 1.0, 0);
    CHECK(!strcmp(config_reward_names[CONFIG_REWARD_GAME_PROGRESS], "game_progress"));
    CHECK(c.text && c.text[0] == '\0');
    char err[512];
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, NULL, err, sizeof err), 0);
    /* sft needs a dataset */
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), -1);
    CHECK(strstr(err, "dataset_path") != NULL);
    config_free(&c);
}

static void test_load_file(void) {
    grpo_config c;
    char err[512];
    int rc = load_text(&c, "ok.yaml",
                       "# a comment\n"
                       "model_name_or_path: models/tiny\n"
                       "learning_rate: 5.0e-6\n"
                       "max_steps: 7\n"
                       "tf32: true\n"
                       "loss_type: grpo\n"
                       "system_prompt: 'You are: helpful'\n"
                       "epsilon: 0.3\n"
                       "rewards:\n"
                       "  workers: 3\n"
                       "  timeout: 2\n"
                       "  parallel: false\n"
                       "rewards.board_size: 5\n"
                       "prompt: |\n"
                       "  line one\n"
                       "  line two\n",
                       err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(!strcmp(c.model_name_or_path, "models/tiny"));
    CHECK_NEAR(c.learning_rate, 5e-6, 0);
    CHECK_EQ_INT(c.max_steps, 7);
    CHECK(c.tf32);
    CHECK(!strcmp(c.loss_type, "grpo"));
    CHECK(!strcmp(c.system_prompt, "You are: helpful"));
    CHECK_NEAR(c.epsilon, 0.3, 0);
    CHECK_NEAR(c.epsilon_high, 0.3, 0);   /* follows epsilon while unset */
    CHECK_EQ_INT(c.rewards.workers, 3);
    CHECK_NEAR(c.rewards.timeout, 2.0, 0);
    CHECK(!c.rewards.parallel);
    CHECK_EQ_INT(c.rewards.board_size, 5);
    CHECK(!strcmp(c.prompt, "line one\nline two\n"));
    CHECK_EQ_INT(c.seed, 42);             /* untouched keys keep their defaults */
    /* the config's text: the file, then the --set lines */
    CHECK(strstr(c.text, "# config file: ") != NULL && strstr(c.text, "ok.yaml\n# a comment\nmodel_name") != NULL);
    CHECK_EQ_INT(config_set(&c, "seed=7", err, sizeof err), 0);
    CHECK(strstr(c.text, "line two\n# --set seed=7\n") != NULL);
    CHECK_EQ_INT(c.seed, 7);
    /* a second file applies on top */
    CHECK_EQ_INT(config_load_file(&c, write_yaml("ok2.yaml", "max_steps: 9\n"), err, sizeof err), 0);
    CHECK_EQ_INT(c.max_steps, 9);
    CHECK_EQ_INT(c.rewards.workers, 3);
    config_free(&c);

    /* empty file, empty section, null top level: nothing changes */
    CHECK_EQ_INT(load_text(&c, "empty.yaml", "", err, sizeof err), 0);
    config_free(&c);
    CHECK_EQ_INT(load_text(&c, "empty_section.yaml", "rewards:\n", err, sizeof err), 0);
    CHECK_EQ_INT(c.rewards.workers, 0);
    config_free(&c);
    CHECK_EQ_INT(load_text(&c, "comments.yaml", "# only a comment\n", err, sizeof err), 0);
    config_free(&c);

    /* a missing file */
    config_defaults(&c);
    CHECK_EQ_INT(config_load_file(&c, "/nonexistent/grpo2048.yaml", err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/grpo2048.yaml: cannot open") != NULL);
    config_free(&c);
}

static void test_errors(void) {
    /* unknown keys, with suggestions by edit distance */
    EXPECT_LOAD_ERROR("u1.yaml", "seed: 1\n\nlearning_rat: 1e-5\n",
                      ":3: unknown key 'learning_rat' (did you mean 'learning_rate'?)");
    EXPECT_LOAD_ERROR("u2.yaml", "rewards:\n  parallel: true\n  wokers: 2\n",
                      ":3: unknown key 'rewards.wokers' (did you mean 'rewards.workers'?)");
    EXPECT_LOAD_ERROR("u3.yaml", "workers: 2\n", ":1: unknown key 'workers' (did you mean 'rewards.workers'?)");
    EXPECT_LOAD_ERROR("u4.yaml", "reward:\n  workers: 2\n", ":1: unknown key 'reward' (did you mean 'rewards'?)");
    EXPECT_LOAD_ERROR("u5.yaml", "use_vllm_colocate_mode: true\n", ":1: unknown key 'use_vllm_colocate_mode' (the keys");
    EXPECT_LOAD_ERROR("u6.yaml", "rewards:\n  functions:\n    game_progres: 1\n",
                      ":3: unknown key 'rewards.functions.game_progres' (did you mean 'rewards.functions.game_progress'?)");
    EXPECT_LOAD_ERROR("u7.yaml", "learnign_rate: 1\n", ":1: unknown key 'learnign_rate' (did you mean 'learning_rate'?)");
    /* wrong type, one per type */
    EXPECT_LOAD_ERROR("t1.yaml", "seed: 1\nmax_steps: 2\nx: 1\n", ":3: unknown key 'x'");
    EXPECT_LOAD_ERROR("t2.yaml", "\n\n\n\nmax_steps: abc\n", ":5: key 'max_steps': expected an integer >= -1, got 'abc'");
    EXPECT_LOAD_ERROR("t3.yaml", "max_steps: 1.5\n", ":1: key 'max_steps': expected an integer >= -1, got '1.5'");
    EXPECT_LOAD_ERROR("t4.yaml", "seed: 1\nrewards:\n  games_per_strategy: 1\n  parallel: maybe\n",
                      ":4: key 'rewards.parallel': expected true or false, got 'maybe'");
    EXPECT_LOAD_ERROR("t5.yaml", "learning_rate: fast\n", ":1: key 'learning_rate': expected a number >= 0, got 'fast'");
    EXPECT_LOAD_ERROR("t6.yaml", "learning_rate: .inf\n", ":1: key 'learning_rate': expected a number >= 0, got '.inf'");
    EXPECT_LOAD_ERROR("t7.yaml", "loss_type: ppo\n",
                      ":1: key 'loss_type': expected one of grpo, bnpo, dr_grpo, dapo, cispo, sapo, luspo, vespo, got 'ppo'");
    EXPECT_LOAD_ERROR("t8.yaml", "lr_scheduler_type: cosin\n",
                      ":1: key 'lr_scheduler_type': expected one of linear, cosine, constant, constant_with_warmup, "
                      "got 'cosin' (did you mean 'cosine'?)");
    EXPECT_LOAD_ERROR("t9.yaml", "output_dir: [a, b]\n", ":1: key 'output_dir': expected a non-empty string, got a list");
    EXPECT_LOAD_ERROR("t10.yaml", "output_dir:\n", ":1: key 'output_dir': expected a non-empty string, got an empty value");
    EXPECT_LOAD_ERROR("t11.yaml", "rewards:\n  functions: 3\n",
                      ":2: key 'rewards.functions': expected a mapping of reward function names");
    EXPECT_LOAD_ERROR("t12.yaml", "rewards:\n  functions:\n    no_cheating: lots\n",
                      ":3: key 'rewards.functions.no_cheating': expected a number (the reward weight), got 'lots'");
    EXPECT_LOAD_ERROR("t13.yaml", "rewards: 4\n", ":1: key 'rewards': expected a section");
    EXPECT_LOAD_ERROR("t14.yaml", "tf32: yes please\n", ":1: key 'tf32': expected true or false, got 'yes please'");
    EXPECT_LOAD_ERROR("t15.yaml", "top_k: {a: 1}\n", ":1: key 'top_k': expected an integer >= 0, got a mapping");
    EXPECT_LOAD_ERROR("t16.yaml", "seed: 99999999999999999999\n", ":1: key 'seed': expected an integer >= 0");
    /* out of range */
    EXPECT_LOAD_ERROR("r1.yaml", "max_steps: -2\n", ":1: key 'max_steps': expected an integer >= -1, got '-2'");
    EXPECT_LOAD_ERROR("r2.yaml", "top_p: 0\n", ":1: key 'top_p': expected a number in (0, 1], got '0'");
    EXPECT_LOAD_ERROR("r3.yaml", "top_p: 1.01\n", ":1: key 'top_p': expected a number in (0, 1], got '1.01'");
    EXPECT_LOAD_ERROR("r4.yaml", "temperature: -0.5\n", ":1: key 'temperature': expected a number >= 0, got '-0.5'");
    EXPECT_LOAD_ERROR("r5.yaml", "rewards:\n  board_size: 9\n",
                      ":2: key 'rewards.board_size': expected an integer in 2..8, got '9'");
    EXPECT_LOAD_ERROR("r6.yaml", "rewards:\n  target: 1000\n",
                      ":2: key 'rewards.target': expected a power of two in 4..1073741824, got '1000'");
    EXPECT_LOAD_ERROR("r7.yaml", "rewards:\n  target: 2147483648\n", ":2: key 'rewards.target'");
    EXPECT_LOAD_ERROR("r8.yaml", "rewards:\n  timeout: 0\n", ":2: key 'rewards.timeout': expected a number in (0, 600], got '0'");
    EXPECT_LOAD_ERROR("r9.yaml", "rewards:\n  workers: 1025\n", ":2: key 'rewards.workers': expected an integer in 0..1024, got '1025'");
    EXPECT_LOAD_ERROR("r10.yaml", "rewards.probability_fours: 1.5\n",
                      ":1: key 'rewards.probability_fours': expected a number in [0, 1], got '1.5'");
    EXPECT_LOAD_ERROR("r11.yaml", "warmup_ratio: -0.1\n", ":1: key 'warmup_ratio': expected a number in [0, 1], got '-0.1'");
    EXPECT_LOAD_ERROR("r12.yaml", "num_generations: 1\n", ":1: key 'num_generations': expected an integer in 2..");
    EXPECT_LOAD_ERROR("r13.yaml", "epsilon_high: -1\n", ":1: key 'epsilon_high': expected a number >= 0 or null, got '-1'");
    /* YAML syntax errors, structure errors, duplicates */
    EXPECT_LOAD_ERROR("y1.yaml", "seed: 1\nmax_steps: 2\n  bad: 3\n", ":3: YAML syntax error: mapping values are not allowed");
    EXPECT_LOAD_ERROR("y2.yaml", "seed: 1\nrewards: {workers: 2\nmax_steps: 3\n",
                      ":3: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 2)");
    EXPECT_LOAD_ERROR("y3.yaml", "seed: 'unterminated\n", ":2: YAML syntax error: ");
    EXPECT_LOAD_ERROR("y4.yaml", "- seed\n- 1\n", ":1: expected a mapping of configuration keys");
    EXPECT_LOAD_ERROR("y5.yaml", "just a string\n", ":1: expected a mapping of configuration keys");
    EXPECT_LOAD_ERROR("y6.yaml", "seed: 1\nmax_steps: 2\nseed: 3\n", ":3: duplicate key 'seed' (first at line 1)");
    EXPECT_LOAD_ERROR("y7.yaml", "rewards:\n  workers: 1\nrewards.workers: 2\n",
                      ":3: duplicate key 'rewards.workers' (first at line 2)");
    EXPECT_LOAD_ERROR("y8.yaml", "rewards:\n  workers: 1\nrewards:\n  timeout: 2\n",
                      ":3: duplicate key 'rewards' (first at line 1)");
    EXPECT_LOAD_ERROR("y9.yaml", "seed: 1\n---\nseed: 2\n", ":3: expected a single YAML document");
    EXPECT_LOAD_ERROR("y10.yaml", "rewards:\n  functions: {game_progress: 1}\nrewards.functions.no_cheating: 2\n",
                      ":3: duplicate key 'rewards.functions.no_cheating' (first at line 2)");
    EXPECT_LOAD_ERROR("y11.yaml", "[1, 2]: 3\n", ":1: expected a key name, got a list");

    /* a failed load leaves a valid config (freed without leaks under ASan) */
    grpo_config c;
    char err[512];
    CHECK_EQ_INT(load_text(&c, "partial.yaml", "output_dir: somewhere\nmax_steps: -7\n", err, sizeof err), -1);
    CHECK(!strcmp(c.output_dir, "somewhere"));
    CHECK_EQ_INT(c.max_steps, 100);
    config_free(&c);
    /* err may be NULL */
    config_defaults(&c);
    CHECK_EQ_INT(config_load_file(&c, write_yaml("n.yaml", "x: 1\n"), NULL, 0), -1);
    config_free(&c);
}

static void test_set(void) {
    grpo_config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "rewards.workers=2", err, sizeof err), 0);
    CHECK_EQ_INT(c.rewards.workers, 2);
    CHECK_EQ_INT(config_set(&c, "learning_rate=3e-5", err, sizeof err), 0);
    CHECK_NEAR(c.learning_rate, 3e-5, 0);
    CHECK_EQ_INT(config_set(&c, " max_steps = 12", err, sizeof err), 0);
    CHECK_EQ_INT(c.max_steps, 12);
    CHECK_EQ_INT(config_set(&c, "bf16=true", err, sizeof err), 0);
    CHECK(c.bf16);
    CHECK_EQ_INT(config_set(&c, "rewards.parallel=false", err, sizeof err), 0);
    CHECK(!c.rewards.parallel);
    CHECK_EQ_INT(config_set(&c, "scale_rewards=none", err, sizeof err), 0);
    CHECK(!strcmp(c.scale_rewards, "none"));
    /* strings: unquoted text is verbatim; quoted text uses YAML's escapes */
    CHECK_EQ_INT(config_set(&c, "system_prompt=You are: a #1 player", err, sizeof err), 0);
    CHECK(!strcmp(c.system_prompt, "You are: a #1 player"));
    CHECK_EQ_INT(config_set(&c, "prompt=\"two\\nlines\"", err, sizeof err), 0);
    CHECK(!strcmp(c.prompt, "two\nlines"));
    CHECK_EQ_INT(config_set(&c, "system_prompt='it''s'", err, sizeof err), 0);
    CHECK(!strcmp(c.system_prompt, "it's"));
    CHECK_EQ_INT(config_set(&c, "system_prompt=", err, sizeof err), 0);
    CHECK(!strcmp(c.system_prompt, ""));
    CHECK_EQ_INT(config_set(&c, "dataset_path=data/a=b.jsonl", err, sizeof err), 0);
    CHECK(!strcmp(c.dataset_path, "data/a=b.jsonl"));
    /* one reward weight, then the whole map, then a list */
    CHECK_EQ_INT(config_set(&c, "rewards.functions.game_progress=0.5", err, sizeof err), 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_GAME_PROGRESS], 0.5, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_FUNCTION_WORKS], 1.0, 0);
    CHECK_EQ_INT(config_set(&c, "rewards.functions={strategy_succeeds: 2, no_cheating: -1}", err, sizeof err), 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_FUNCTION_WORKS], 0.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_NO_CHEATING], -1.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_STRATEGY_SUCCEEDS], 2.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_GAME_PROGRESS], 0.0, 0);
    CHECK_EQ_INT(config_set(&c, "rewards.functions=[function_works, game_progress]", err, sizeof err), 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_FUNCTION_WORKS], 1.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_NO_CHEATING], 0.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_GAME_PROGRESS], 1.0, 0);
    /* a whole section as a flow mapping */
    CHECK_EQ_INT(config_set(&c, "rewards={board_size: 3, target: 256}", err, sizeof err), 0);
    CHECK_EQ_INT(c.rewards.board_size, 3);
    CHECK_EQ_INT(c.rewards.target, 256);
    /* the same key twice in --set: the later wins (no duplicate error across overrides) */
    CHECK_EQ_INT(config_set(&c, "seed=1", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "seed=2", err, sizeof err), 0);
    CHECK_EQ_INT(c.seed, 2);
    CHECK(strstr(c.text, "# --set rewards.workers=2\n") != NULL);
    CHECK(strstr(c.text, "# --set seed=2\n") != NULL);
    config_free(&c);

    EXPECT_SET_ERROR("max_steps", "--set 'max_steps': expected key=value");
    EXPECT_SET_ERROR("=3", "--set '=3': expected key=value, got an empty key");
    EXPECT_SET_ERROR("learning_rat=1e-5", "--set 'learning_rat=1e-5': unknown key 'learning_rat' (did you mean 'learning_rate'?)");
    EXPECT_SET_ERROR("rewards.wokers=2", "--set 'rewards.wokers=2': unknown key 'rewards.wokers' (did you mean 'rewards.workers'?)");
    EXPECT_SET_ERROR("max_steps=abc", "--set 'max_steps=abc': key 'max_steps': expected an integer >= -1, got 'abc'");
    EXPECT_SET_ERROR("max_steps=", "--set 'max_steps=': key 'max_steps': expected an integer >= -1, got an empty value");
    EXPECT_SET_ERROR("tf32=maybe", "key 'tf32': expected true or false, got 'maybe'");
    EXPECT_SET_ERROR("device=tpu", "key 'device': expected one of auto, cpu, cuda, got 'tpu'");
    EXPECT_SET_ERROR("top_p=2", "key 'top_p': expected a number in (0, 1], got '2'");
    EXPECT_SET_ERROR("seed=[1, 2", "--set 'seed=[1, 2': invalid value: YAML syntax error");
    EXPECT_SET_ERROR("rewards.functions.speed=1", "unknown key 'rewards.functions.speed'");
    EXPECT_SET_ERROR("rewards.functions={no_cheatin: 1}",
                     "unknown key 'rewards.functions.no_cheatin' (did you mean 'rewards.functions.no_cheating'?)");
    EXPECT_SET_ERROR("rewards.functions.game_progress=x", "key 'rewards.functions.game_progress': expected a number");
    EXPECT_SET_ERROR("prompt=", "key 'prompt': expected a non-empty string");
    EXPECT_SET_ERROR("prompt=\"unterminated", "invalid value: YAML syntax error");

    /* a failed --set changes nothing and adds nothing to the text */
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "rewards.functions={game_progress: 2, no_cheating: x}", err, sizeof err), -1);
    for (int r = 0; r < CONFIG_NUM_REWARDS; r++) CHECK_NEAR(c.rewards.weights[r], 1.0, 0);
    CHECK(c.text[0] == '\0');
    config_free(&c);
}

static void test_weights_and_epsilon(void) {
    grpo_config c;
    char err[512];
    /* a given map: missing functions get weight 0 */
    CHECK_EQ_INT(load_text(&c, "w1.yaml", "rewards:\n  functions:\n    function_works: 0.5\n    game_progress: 3\n",
                           err, sizeof err), 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_FUNCTION_WORKS], 0.5, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_NO_CHEATING], 0.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_STRATEGY_SUCCEEDS], 0.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_GAME_PROGRESS], 3.0, 0);
    config_free(&c);
    /* an empty map zeroes every weight, which train refuses */
    CHECK_EQ_INT(load_text(&c, "w2.yaml", "rewards:\n  functions: {}\n", err, sizeof err), 0);
    for (int r = 0; r < CONFIG_NUM_REWARDS; r++) CHECK_NEAR(c.rewards.weights[r], 0.0, 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK(strstr(err, "rewards.functions") != NULL);
    config_free(&c);
    /* a list of names */
    CHECK_EQ_INT(load_text(&c, "w3.yaml", "rewards:\n  functions: [no_cheating]\n", err, sizeof err), 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_NO_CHEATING], 1.0, 0);
    CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_FUNCTION_WORKS], 0.0, 0);
    config_free(&c);
    EXPECT_LOAD_ERROR("w4.yaml", "rewards:\n  functions: {game_progress: 1, game_progress: 2}\n",
                      ":2: duplicate key 'rewards.functions.game_progress'");

    /* epsilon_high follows epsilon until set, and again after null */
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "epsilon=0.25", err, sizeof err), 0);
    CHECK_NEAR(c.epsilon_high, 0.25, 0);
    CHECK_EQ_INT(config_set(&c, "epsilon_high=0.28", err, sizeof err), 0);
    CHECK(c.epsilon_high_set);
    CHECK_EQ_INT(config_set(&c, "epsilon=0.1", err, sizeof err), 0);
    CHECK_NEAR(c.epsilon_high, 0.28, 0);
    CHECK_EQ_INT(config_set(&c, "epsilon_high=null", err, sizeof err), 0);
    CHECK(!c.epsilon_high_set);
    CHECK_NEAR(c.epsilon_high, 0.1, 0);
    config_free(&c);
}

/* The options added for TRL parity: nullable numbers, the reward_weights list, the generation layout,
 * and their cross-key checks; config_format_value and the key list. */
static void test_trl_options(void) {
    grpo_config c;
    char err[512], buf[256];
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "delta=1.5", err, sizeof err), 0);
    CHECK(c.delta_set);
    CHECK_NEAR(c.delta, 1.5, 0);
    CHECK_EQ_INT(config_format_value(&c, "delta", buf, sizeof buf), 0);
    CHECK(!strcmp(buf, "1.5"));
    CHECK_EQ_INT(config_set(&c, "delta=null", err, sizeof err), 0);
    CHECK(!c.delta_set);
    CHECK_EQ_INT(config_format_value(&c, "delta", buf, sizeof buf), 0);
    CHECK(!strcmp(buf, "null"));
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);   /* an unset nullable is not range-checked */
    CHECK_EQ_INT(config_set(&c, "delta=1", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'delta': expected a number > 1 or null, got '1'") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "steps_per_generation=4", err, sizeof err), 0);
    CHECK(c.steps_per_generation_set);
    CHECK_EQ_INT(config_set(&c, "steps_per_generation=0", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'steps_per_generation': expected an integer in 1..1048576 or null") != NULL, "%s", err);
    int S, GB;
    config_generation_layout(&c, &S, &GB);
    CHECK_EQ_INT(S, 4);
    CHECK_EQ_INT(GB, 32);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "generation_batch_size=16", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "'steps_per_generation' (4) and 'generation_batch_size' (16): give one of them") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "steps_per_generation=null", err, sizeof err), 0);
    config_generation_layout(&c, &S, &GB);
    CHECK_EQ_INT(S, 2);
    CHECK_EQ_INT(GB, 16);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "generation_batch_size=12", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "'generation_batch_size': 12 is not a multiple of per_device_train_batch_size = 8") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "generation_batch_size=24", err, sizeof err), 0);   /* 24 % 8 == 0, 24 % 8 gens */
    CHECK_EQ_INT(config_set(&c, "num_generations=16", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'num_generations': 16 must divide generation_batch_size = 24") != NULL, "%s", err);
    config_free(&c);

    /* reward_weights: a list of four numbers that replaces rewards.functions */
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "reward_weights=[1, 0, 2.5, 0.5]", err, sizeof err), 0);
    CHECK(c.reward_weights_set);
    double w[CONFIG_NUM_REWARDS];
    config_reward_weights(&c, w);
    CHECK_NEAR(w[0], 1, 0);
    CHECK_NEAR(w[1], 0, 0);
    CHECK_NEAR(w[2], 2.5, 0);
    CHECK_NEAR(w[3], 0.5, 0);
    CHECK_NEAR(c.rewards.weights[2], 1.0, 0);   /* rewards.functions itself is unchanged */
    CHECK_EQ_INT(config_format_value(&c, "reward_weights", buf, sizeof buf), 0);
    CHECK(!strcmp(buf, "[1.0, 0.0, 2.5, 0.5]"));
    CHECK_EQ_INT(config_format_value(&c, "rewards.functions", buf, sizeof buf), 0);
    CHECK(!strcmp(buf, "{function_works: 1.0, no_cheating: 1.0, strategy_succeeds: 1.0, game_progress: 1.0}"));
    CHECK_EQ_INT(config_set(&c, "reward_weights=[1, 2]", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'reward_weights': expected a list of 4 numbers") != NULL && strstr(err, "got a list of 2"),
              "%s", err);
    CHECK_EQ_INT(config_set(&c, "reward_weights=[1, 2, x, 3]", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'reward_weights': element 3: expected a number, got 'x'") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "reward_weights=3", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "reward_weights=[0, 0, 0, 0]", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'reward_weights': every reward weight is 0") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "reward_weights=null", err, sizeof err), 0);
    config_reward_weights(&c, w);
    CHECK_NEAR(w[2], 1.0, 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    config_free(&c);
    CHECK_EQ_INT(load_text(&c, "rw.yaml", "reward_weights:\n  - 2\n  - 1\n  - 1\n  - 0\n", err, sizeof err), 0);
    config_reward_weights(&c, w);
    CHECK_NEAR(w[0], 2, 0);
    config_free(&c);

    /* checks across keys */
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "sync_ref_model=true", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'sync_ref_model': true needs beta > 0") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "beta=0.04", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "repetition_penalty=1.1", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "min_p=0.05", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK(c.min_p_set && c.min_p == 0.05 && c.repetition_penalty == 1.1);
    CHECK_EQ_INT(config_set(&c, "repetition_penalty=0", err, sizeof err), -1);   /* must be > 0 */
    CHECK_EQ_INT(config_set(&c, "min_p=1.5", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "min_p=null", err, sizeof err), 0);
    CHECK(!c.min_p_set);
    CHECK_EQ_INT(config_set(&c, "importance_sampling_level=sequence", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "importance_sampling_level=seq", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "top_entropy_quantile=1.5", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "num_iterations=0", err, sizeof err), -1);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_format_value(&c, "importance_sampling_level", buf, sizeof buf), 0);
    CHECK(!strcmp(buf, "sequence"));
    CHECK_EQ_INT(config_format_value(&c, "no_such_key", buf, sizeof buf), -1);
    CHECK_EQ_INT(config_set(&c, "system_prompt=\"two\\nlines\"", err, sizeof err), 0);
    CHECK_EQ_INT(config_format_value(&c, "system_prompt", buf, sizeof buf), 0);
    CHECK_MSG(!strcmp(buf, "two\\nlines"), "%s", buf);
    /* every listed key formats */
    int n = config_num_keys();
    CHECK(n > 60);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(config_format_value(&c, config_key_name(i), buf, sizeof buf), 0);
    CHECK(!strcmp(config_key_name(0), "model_name_or_path"));
    config_free(&c);
}

/* A TRL user's GRPOConfig YAML (TRL 1.16 spellings) loads without edits, and means what it means in TRL. */
static void test_trl_yaml(void) {
    grpo_config c;
    char err[512];
    CHECK_EQ_INT(load_text(&c, "trl.yaml",
                           "learning_rate: 1.0e-6\n"
                           "per_device_train_batch_size: 4\n"
                           "gradient_accumulation_steps: 2\n"
                           "num_generations: 4\n"
                           "max_completion_length: 128\n"
                           "max_steps: 10\n"
                           "loss_type: cispo\n"
                           "epsilon_high: 5.0\n"
                           "scale_rewards: false\n"
                           "use_bias_correction_kl: false\n"
                           "beta: 0.04\n"
                           "entropy_coef: 0.01\n"
                           "sapo_temperature_pos: 1.0\n"
                           "sapo_temperature_neg: 1.05\n"
                           "vespo_k_pos: 2.0\n"
                           "vespo_lambda_pos: 3.0\n"
                           "vespo_k_neg: 3.0\n"
                           "vespo_lambda_neg: 2.0\n"
                           "warmup_steps: 0.1\n"
                           "optim: adamw_torch\n"
                           "save_total_limit: null\n"
                           "eval_steps: null\n"
                           "gradient_checkpointing: true\n"
                           "logging_steps: 10\n"
                           "bf16: false\n"
                           "mask_truncated_completions: true\n"
                           "top_entropy_quantile: 0.2\n"
                           "importance_sampling_level: sequence\n",
                           err, sizeof err), 0);
    CHECK_MSG(err[0] == 0, "%s", err);
    CHECK(!strcmp(c.loss_type, "cispo"));
    CHECK(!strcmp(c.scale_rewards, "none"));
    CHECK(!c.use_bias_correction_kl);
    CHECK_NEAR(c.entropy_coef, 0.01, 0);
    CHECK(!strcmp(c.optim, "adamw_torch"));
    CHECK(!c.save_total_limit_set && c.save_total_limit == 0);
    CHECK(!c.eval_steps_set && c.eval_steps == 0);
    CHECK_EQ_INT(config_warmup_steps(&c, 10), 1);          /* ceil(0.1 * 10) */
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    config_free(&c);
    /* scale_rewards: TRL's True is "group"; the string forms stay */
    CHECK_EQ_INT(load_text(&c, "trl2.yaml", "scale_rewards: True\nwarmup_steps: 3\nwarmup_ratio: 0.5\n", err, sizeof err), 0);
    CHECK(!strcmp(c.scale_rewards, "group"));
    CHECK_EQ_INT(config_warmup_steps(&c, 100), 3);         /* warmup_steps wins over warmup_ratio */
    CHECK_EQ_INT(config_set(&c, "warmup_steps=0", err, sizeof err), 0);
    CHECK_EQ_INT(config_warmup_steps(&c, 100), 50);        /* then warmup_ratio */
    CHECK_EQ_INT(config_set(&c, "scale_rewards=batch", err, sizeof err), 0);
    CHECK(!strcmp(c.scale_rewards, "batch"));
    CHECK_EQ_INT(config_set(&c, "save_total_limit=2", err, sizeof err), 0);
    CHECK(c.save_total_limit_set && c.save_total_limit == 2);
    /* max_steps -1: sft's epochs; train has none */
    CHECK_EQ_INT(config_set(&c, "max_steps=-1", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "dataset_path=x.jsonl", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'max_steps': -1") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "max_steps=0", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "max_steps=-2", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "optim=sgd", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "loss_type=luspo", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "loss_type=ppo", err, sizeof err), -1);
    config_free(&c);
    config_defaults(&c);
    CHECK(c.use_bias_correction_kl);                       /* TRL's defaults */
    CHECK_NEAR(c.entropy_coef, 0.0, 0);
    CHECK_NEAR(c.sapo_temperature_neg, 1.05, 0);
    CHECK_NEAR(c.vespo_lambda_pos, 3.0, 0);
    CHECK(!strcmp(c.optim, "adamw_torch_fused"));
    CHECK_NEAR(c.warmup_steps, 0.0, 0);
    config_free(&c);
}

static void test_validate(void) {
    grpo_config c;
    char err[512];
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "per_device_train_batch_size=6", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'num_generations': 8 must divide per_device_train_batch_size * "
                          "gradient_accumulation_steps = 6 * 1 = 6") != NULL, "%s", err);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), -1);   /* no dataset_path */
    CHECK_EQ_INT(config_set(&c, "dataset_path=data/sft.jsonl", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), 0);     /* num_generations is not sft's */
    CHECK_EQ_INT(config_set(&c, "gradient_accumulation_steps=4", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);   /* 24 % 8 == 0 */
    /* values written straight into the struct are range-checked too */
    c.top_p = 0;
    CHECK_EQ_INT(config_validate(&c, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "key 'top_p': expected a number in (0, 1], got 0") != NULL);
    c.top_p = 1;
    c.rewards.board_size = 1;
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK(strstr(err, "key 'rewards.board_size'") != NULL);
    c.rewards.board_size = 4;
    c.loss_type = "ppo";
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK(strstr(err, "key 'loss_type'") != NULL);
    config_free(&c);
}

/* attn_implementation (transformers' key): native by default; cudnn parses from YAML and --set, and
 * validation refuses it where it cannot run (the CPU, fp32/tf32), naming the key and what it needs. */
static void test_attn_implementation(void) {
    grpo_config c;
    char err[512];
    config_defaults(&c);
    CHECK(!strcmp(c.attn_implementation, "native"));
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    config_free(&c);
    EXPECT_SET_ERROR("attn_implementation=flash_attention_2",
                     "key 'attn_implementation': expected one of native, cudnn, got 'flash_attention_2'");
    EXPECT_LOAD_ERROR("attn.yaml", "attn_implementation: sdpa\n",
                      ":1: key 'attn_implementation': expected one of native, cudnn, got 'sdpa'");
    CHECK_EQ_INT(load_text(&c, "attn_ok.yaml", "attn_implementation: cudnn\nbf16: true\ndevice: cuda\n", err,
                           sizeof err), 0);
    CHECK(!strcmp(c.attn_implementation, "cudnn"));
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "dataset_path=data/sft.jsonl", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "device=auto", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);    /* auto: decided by the backend */
    CHECK_EQ_INT(config_set(&c, "device=cpu", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'attn_implementation': cudnn needs device: cuda") != NULL, "%s", err);
    CHECK_EQ_INT(config_validate(&c, "sft", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "device=cuda", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "bf16=false", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "tf32=true", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), -1);
    CHECK_MSG(strstr(err, "key 'attn_implementation': cudnn needs bf16: true") != NULL, "%s", err);
    CHECK_EQ_INT(config_set(&c, "attn_implementation=native", err, sizeof err), 0);
    CHECK_EQ_INT(config_validate(&c, "train", err, sizeof err), 0);
    /* it survives config_to_yaml -> load */
    CHECK_EQ_INT(config_set(&c, "attn_implementation=cudnn", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(&c, "bf16=true", err, sizeof err), 0);
    char *yaml = config_to_yaml(&c);
    CHECK(yaml && strstr(yaml, "attn_implementation: cudnn") != NULL);
    grpo_config d;
    CHECK_EQ_INT(load_text(&d, "attn_rt.yaml", yaml ? yaml : "", err, sizeof err), 0);
    CHECK(!strcmp(d.attn_implementation, "cudnn"));
    free(yaml);
    config_free(&d);
    config_free(&c);
}

/* Every key survives config_to_yaml → config_load_file unchanged. */
static void test_roundtrip(void) {
    grpo_config a, b;
    char err[512];
    config_defaults(&a);
    const char *sets[] = {
        "learning_rate=1.2345678901234567e-7", "seed=123", "tf32=true", "device=cpu", "loss_type=dr_grpo",
        "system_prompt=\"tab\\there, \\\"quotes\\\", back\\\\slash, \\x01 ctl, caf\\u00e9\"",
        "output_dir=runs/with space",
        "prompt=\"multi\\nline\\n  indented\\n\\nblank above, trailing spaces  \"",
        "epsilon=0.15", "rewards.functions={game_progress: 0.1, no_cheating: 1e-3}", "rewards.timeout=0.25",
        "rewards.target=65536", "max_grad_norm=0", "warmup_ratio=0.1", "chat_template=llama3",
        "delta=1.75", "generation_batch_size=24", "reward_weights=[0.25, 1, 2, -1]", "num_iterations=3",
        "importance_sampling_level=sequence", "top_entropy_quantile=0.2", "resume_from_checkpoint=latest",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK_MSG(config_set(&a, sets[i], err, sizeof err) == 0, "%s", err);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {   /* a string that needs double quotes, and epsilon_high explicitly set */
            CHECK_EQ_INT(config_set(&a, "prompt=\"  leading spaces\\nthen\\n\"", err, sizeof err), 0);
            CHECK_EQ_INT(config_set(&a, "epsilon_high=0.3", err, sizeof err), 0);
        }
        char *y = config_to_yaml(&a);
        CHECK(y != NULL);
        if (!y) break;
        config_defaults(&b);
        int rc = config_load_file(&b, write_yaml(pass ? "rt2.yaml" : "rt1.yaml", y), err, sizeof err);
        CHECK_MSG(rc == 0, "%s\n%s", err, y);
        CHECK(!strcmp(a.prompt, b.prompt));
        CHECK(!strcmp(a.system_prompt, b.system_prompt));
        CHECK(!strcmp(a.output_dir, b.output_dir));
        CHECK(!strcmp(a.model_name_or_path, b.model_name_or_path));
        CHECK(!strcmp(a.dataset_path, b.dataset_path));
        CHECK(a.learning_rate == b.learning_rate);
        CHECK(a.epsilon == b.epsilon && a.epsilon_high == b.epsilon_high && a.epsilon_high_set == b.epsilon_high_set);
        CHECK(a.seed == b.seed && a.tf32 == b.tf32 && a.max_grad_norm == b.max_grad_norm);
        CHECK(!strcmp(a.device, b.device) && !strcmp(a.loss_type, b.loss_type) && !strcmp(a.chat_template, b.chat_template));
        CHECK(a.rewards.timeout == b.rewards.timeout && a.rewards.target == b.rewards.target);
        CHECK(!memcmp(a.rewards.weights, b.rewards.weights, sizeof a.rewards.weights));
        CHECK(a.delta == b.delta && a.delta_set == b.delta_set && a.min_p_set == b.min_p_set);
        CHECK(a.generation_batch_size == b.generation_batch_size && a.generation_batch_size_set == b.generation_batch_size_set);
        CHECK(a.steps_per_generation_set == b.steps_per_generation_set && a.num_iterations == b.num_iterations);
        CHECK(a.reward_weights_set == b.reward_weights_set && !memcmp(a.reward_weights, b.reward_weights, sizeof a.reward_weights));
        CHECK(!strcmp(a.resume_from_checkpoint, b.resume_from_checkpoint));
        CHECK(a.top_entropy_quantile == b.top_entropy_quantile);
        /* and the dump of the reloaded config is identical */
        char *y2 = config_to_yaml(&b);
        CHECK(y2 && !strcmp(y, y2));
        free(y2);
        free(y);
        config_free(&b);
    }
    config_free(&a);
}

static void test_help_and_docs(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f, "train");
    fclose(f);
    CHECK(strstr(buf, "  learning_rate ") != NULL);
    CHECK(strstr(buf, "  rewards.workers ") != NULL);
    CHECK(strstr(buf, "  loss_type                      enum: grpo | bnpo | dr_grpo | dapo | cispo | sapo | luspo | vespo,\n"
                             "                                 default dapo\n") != NULL);
    CHECK(strstr(buf, "dataset_path") == NULL);   /* sft only */
    free(buf);
    f = open_memstream(&buf, &len);
    config_print_help(f, "sft");
    fclose(f);
    CHECK(strstr(buf, "dataset_path") != NULL);
    CHECK(strstr(buf, "  rewards.workers ") == NULL && strstr(buf, "  num_generations ") == NULL);
    free(buf);

    f = open_memstream(&buf, &len);
    config_write_markdown(f);
    fclose(f);
    const char *names[] = {"model_name_or_path", "num_generations", "epsilon_high", "rewards.functions",
                           "rewards.memory_limit_mb", "sft_eval_fraction", "save_total_limit"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char cell[96];
        snprintf(cell, sizeof cell, "| `%s` |", names[i]);
        CHECK_MSG(strstr(buf, cell) != NULL, "%s missing from the markdown", names[i]);
    }
    CHECK(strstr(buf, config_default_prompt) != NULL);
    /* the docs' example config loads and validates */
    const char *ex = strstr(buf, "```yaml\n");
    const char *ex_end = ex ? strstr(ex + 8, "```") : NULL;
    CHECK(ex && ex_end);
    if (ex && ex_end) {
        char *yaml = strndup(ex + 8, (size_t)(ex_end - ex - 8));
        grpo_config c;
        char err[512];
        CHECK_MSG(load_text(&c, "example.yaml", yaml, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(config_validate(&c, "train", err, sizeof err) == 0, "%s", err);
        CHECK_NEAR(c.rewards.weights[CONFIG_REWARD_GAME_PROGRESS], 0.0, 0);
        config_free(&c);
        free(yaml);
    }

    /* docs/config.md must be what the table generates */
    const char *src = getenv("GRPO2048_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/config.md", src && src[0] ? src : ".");
    const char *update = getenv("GRPO2048_UPDATE_DOCS");
    if (update && update[0] == '1') {
        FILE *o = fopen(path, "w");
        CHECK_MSG(o != NULL, "cannot write %s", path);
        if (o) { fwrite(buf, 1, len, o); fclose(o); printf("wrote %s\n", path); }
    } else {
        FILE *in = fopen(path, "rb");
        CHECK_MSG(in != NULL, "%s is missing (regenerate with GRPO2048_UPDATE_DOCS=1)", path);
        if (in) {
            char *disk = malloc(len + 2);
            size_t n = fread(disk, 1, len + 1, in);
            fclose(in);
            CHECK_MSG(n == len && !memcmp(disk, buf, len),
                      "%s is out of date with trainer/config.c's key table (regenerate with GRPO2048_UPDATE_DOCS=1)", path);
            free(disk);
        }
    }
    free(buf);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/grpo2048_config_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_defaults();
    test_load_file();
    test_errors();
    test_set();
    test_weights_and_epsilon();
    test_trl_yaml();
    test_validate();
    test_attn_implementation();
    test_trl_options();
    test_roundtrip();
    test_help_and_docs();
    for (int i = 0; i < npaths; i++) unlink(paths[i]);
    rmdir(tmpdir);
    return TEST_DONE();
}
