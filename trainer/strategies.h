/*
 * trainer/strategies.h: the distinct strategies of a run, ranked — shared by `grpo2048 report` (its
 * table), `grpo2048 best` (the .py files) and the end-of-run summary.
 *
 * A completion's strategy is its fenced `def strategy(board):` block (reward_extract_strategy, the
 * trainer's own extraction). Two completions are the same strategy when their *normalized* sources are
 * equal: each line's trailing whitespace removed, lines that are blank or hold only a `#` comment
 * dropped, Windows line ends made "\n". (Comments after code are kept: telling a `#` inside a string
 * from a comment needs a Python tokenizer, and a model that copies a strategy copies its comments too.)
 * A strategy's plays are all the completion rows with that source; it is ranked by its mean reward
 * over them (not its best single play), then by more plays, then by mean max tile, then by the earliest
 * step it appeared at; but the strategies played at least `min_plays` times come first. A completion
 * plays one to a few games, and a strategy played once has its mean decided by one game's luck: in the
 * default 200-step run, 891 of 1,004 distinct strategies were played once, and the top 30 by mean
 * reward were all single plays that happened to win (a move-cycling strategy among them), while
 * strategies played 3+ times rank by evidence. min_plays 1 is the plain ranking by mean reward. Completions without an extractable
 * function are not strategies and are left out; so are rows of outcome `infra_error` (not scored).
 */
#ifndef GRPO2048_STRATEGIES_H
#define GRPO2048_STRATEGIES_H

#include <stddef.h>

#include <sqlite3.h>

typedef struct {
    char *source;          /* the normalized Python source (ends without a newline) */
    int plays;             /* completion rows with this source */
    int wins;              /* of them, outcome 'success' (reached rewards.target) */
    double mean_reward;    /* mean of their `reward` (weighted total) */
    double best_reward;    /* the highest single play */
    double mean_max_tile;  /* mean of their max_tile */
    int first_step;        /* the step it first appeared at */
    char outcome[32];      /* the most frequent outcome among its plays (ties: the first met) */
} strategy_stat;

typedef struct {
    strategy_stat *items;  /* (n,), best first */
    int n;
    int completions;       /* completion rows read (infra_error rows excluded) */
    int with_function;     /* of them, rows whose strategy could be extracted */
    int min_plays;         /* the min_plays it was ranked with */
} strategy_list;

#define STRATEGY_MIN_PLAYS 3   /* the default min_plays of report, best and the summary */

/* Normalizes a strategy's source as described above into out (outlen bytes, NUL-terminated; cut at
 * outlen - 1). Returns the length written. */
size_t strategy_normalize(const char *src, char *out, size_t outlen);

/* Reads run run_id's completion rows from db (a grpo2048 metrics file: table completions with columns
 * step, text, reward, outcome, max_tile) and fills *list with its distinct strategies, best first
 * (those with at least min_plays plays before the others; min_plays < 1 counts as 1).
 * Returns 0, or -1 with a message in err (errlen bytes) naming the failing query. A file without a
 * completions table gives an empty list (0). Free with strategy_list_free. */
int strategy_list_load(sqlite3 *db, int run_id, int min_plays, strategy_list *list, char *err, size_t errlen);

void strategy_list_free(strategy_list *list);

#endif
