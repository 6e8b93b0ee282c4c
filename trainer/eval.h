/*
 * trainer/eval.h: `grpo2048 eval CONFIG.yaml [--set key=value ...]` — how good is a policy at writing
 * 2048 strategies, sampled in one of three ways (standard, greedy, power), and the pieces of it that
 * tests call directly. The command itself is in trainer/eval.c (see its top comment for the flow).
 */
#ifndef GRPO2048_EVAL_H
#define GRPO2048_EVAL_H

#include <stddef.h>

/* The unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
 * Code", arXiv 2107.03374, eq. 1 and its numerically stable product form in figure 3):
 *   pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)
 * for n samples of which c are correct, 1 <= k <= n, 0 <= c <= n (1 when n - c < k). Aborts with
 * file:line on arguments out of range. */
double eval_pass_at_k(int n, int c, int k);

/* One problem source: a prompt and, when >= 1, its own board size and target (else the config's). */
typedef struct {
    char *prompt;
    int board_size;   /* 0 = rewards.board_size */
    int target;       /* 0 = rewards.target */
} eval_prompt;

/* Reads a JSONL prompts file: one JSON object per non-empty line with a non-empty string "prompt" and
 * optional integers "board_size" (2..8) and "target" (a power of two in 4..2^30); other keys are
 * ignored (so a dataset with more columns works). Returns a malloc'd array with *n >= 1 prompts, or
 * NULL with a message naming path:line and what was expected. Free with eval_free_prompts. */
eval_prompt *eval_load_prompts(const char *path, int *n, char *err, size_t errlen);
void eval_free_prompts(eval_prompt *p, int n);

/* `grpo2048 eval` (argv after the command name). Returns the exit status: 0, 2 for a usage or config
 * error, 1 for a failure while running. */
int cmd_eval(int argc, char **argv);

#endif
