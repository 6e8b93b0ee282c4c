/*
 * rewards/extract.c: pulls the strategy's Python source out of a model completion. Runs in the trainer
 * process (no Python involved), before a job is sent to the reward pool.
 *
 * The rule follows extract_function of the public Unsloth 2048 GRPO notebook: the first fenced block
 * (text between the first two ``` fences), a `python` language tag after the opening fence dropped,
 * whitespace stripped. The notebook then cuts everything before the first "def"; we do not: the block
 * must itself start with `def strategy(board):`, so a block that opens with imports or prose is no
 * function (such code would also fail the pool's "exactly one top-level def" check).
 */
#include <string.h>

#include "rewards/rewards.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int reward_extract_strategy(const char *completion, char *out, size_t outlen) {
    static const char fence[] = "```";
    static const char start[] = "def strategy(board):";
    if (!completion) return -1;
    const char *open = strstr(completion, fence);
    if (!open) return -1;
    const char *b = open + 3;
    const char *close = strstr(b, fence);
    if (!close) return -1;

    /* A language tag sits on the fence's own line: ```python or ```py, optionally after spaces. */
    const char *t = b;
    while (t < close && (*t == ' ' || *t == '\t')) t++;
    size_t tag = 0;
    if ((size_t)(close - t) >= 6 && !strncmp(t, "python", 6)) tag = 6;
    else if ((size_t)(close - t) >= 2 && !strncmp(t, "py", 2)) tag = 2;
    if (tag && (t + tag == close || is_space(t[tag]))) b = t + tag;

    const char *e = close;
    while (b < e && is_space(*b)) b++;
    while (e > b && is_space(e[-1])) e--;
    size_t n = (size_t)(e - b);
    if (n < sizeof start - 1 || strncmp(b, start, sizeof start - 1) != 0) return -1;
    if (n + 1 > outlen) return -2;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}
