/*
 * trainer/best.c: `grpo2048 best RUN_DIR|FILE.sqlite [--top N] [--out DIR] [--run-id N]` — the best
 * distinct strategies of a run (trainer/strategies.h: deduplicated by normalized source, ranked by mean
 * reward over all their plays) written as Python files that `grpo2048 play --strategy FILE` plays.
 *
 * File i (1 = best) is DIR/best-<i>.py: a comment header (rank, mean reward, plays, wins, mean max
 * tile, first step, the run it came from and how to play it), then the normalized source, which starts
 * with `def strategy(board):`. Each file is written to a temporary name, flushed and renamed. One line
 * per file on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "trainer/strategies.h"
#include "trainer/summary.h"

static const char *const usage_text =
    "usage: grpo2048 best RUN_DIR|FILE.sqlite [--top N] [--out DIR] [--min-plays N] [--run-id N]\n\n"
    "Writes the run's best distinct strategies (same source after dropping blank and comment-only lines and\n"
    "trailing spaces; ranked by mean reward over all their plays, then by plays; those played at least\n"
    "--min-plays times first) as DIR/best-1.py, best-2.py, ... ready for\n"
    "`grpo2048 play --strategy DIR/best-1.py`.\n\n"
    "  --top N        how many (default 5)\n"
    "  --min-plays N  strategies played at least N times rank before the others (default 3; 1 = plain\n"
    "                 ranking by mean reward, where one lucky game puts a strategy first)\n"
    "  --out DIR      where (default RUN_DIR/best; created if missing)\n"
    "  --run-id N     the run (default: the newest in the file)\n";

static int write_strategy(const char *path, const strategy_stat *s, int rank, const char *file, int run_id,
                          char *err, size_t errlen) {
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# grpo2048 best: rank %d of run %d in %s\n", rank, run_id, file);
    fprintf(f, "# mean reward %.4f over %d play%s (%d won, mean max tile %.1f, best single reward %.4f), first "
            "written at step %d\n", s->mean_reward, s->plays, s->plays == 1 ? "" : "s", s->wins, s->mean_max_tile,
            s->best_reward, s->first_step);
    fprintf(f, "# play it: grpo2048 play --strategy %s --games 10\n", path);
    fprintf(f, "%s\n", s->source);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cmd_best(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    int top = 5, want = 0, min_plays = STRATEGY_MIN_PLAYS;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); return 0; }
        if (!strcmp(a, "--top") || !strcmp(a, "--out") || !strcmp(a, "--run-id") || !strcmp(a, "--min-plays")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "grpo2048 best: %s needs a value\n%s", a, usage_text);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) { out = v; continue; }
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1000000) {
                fprintf(stderr, "grpo2048 best: %s %s: expected a whole number >= 1\n", a, v);
                return 2;
            }
            if (!strcmp(a, "--top")) top = (int)n;
            else if (!strcmp(a, "--min-plays")) min_plays = (int)n;
            else want = (int)n;
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "grpo2048 best: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "grpo2048 best: RUN_DIR or FILE.sqlite is required\n%s", usage_text);
        return 2;
    }
    sqlite3 *db;
    char file[4096], dir[4096], err[10000], outdir[4200];
    strategy_list sl = {0};
    int rc = 1;
    if (summary_open(path, &db, file, dir, sizeof file, err, sizeof err) != 0) goto fail;
    const int run_id = summary_pick_run(db, file, want, err, sizeof err);
    if (run_id < 0 || strategy_list_load(db, run_id, min_plays, &sl, err, sizeof err) != 0) goto fail;
    if (sl.n == 0) {
        snprintf(err, sizeof err, "%s: run %d has no completion with a `def strategy(board):` block (%d completions)",
                 file, run_id, sl.completions);
        goto fail;
    }
    snprintf(outdir, sizeof outdir, "%s", out ? out : dir);
    if (!out) strncat(outdir, "/best", sizeof outdir - strlen(outdir) - 1);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: cannot create the folder: %s", outdir, strerror(errno));
        goto fail;
    }
    for (int i = 0; i < sl.n && i < top; i++) {
        char fpath[4400];
        snprintf(fpath, sizeof fpath, "%s/best-%d.py", outdir, i + 1);
        const strategy_stat *s = &sl.items[i];
        if (write_strategy(fpath, s, i + 1, file, run_id, err, sizeof err) != 0) goto fail;
        printf("%s  mean reward %.3f over %d play%s, %d won, mean max tile %.0f\n", fpath, s->mean_reward, s->plays,
               s->plays == 1 ? "" : "s", s->wins, s->mean_max_tile);
    }
    if (top > sl.n) printf("(the run has %d distinct strategies)\n", sl.n);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "grpo2048 best: %s\n", err);
done:
    strategy_list_free(&sl);
    sqlite3_close(db);
    return rc;
}
