/*
 * trainer/strategies.c: the distinct strategies of a run, ranked (see strategies.h).
 *
 * All the run's completion rows are read once (a 200-step default run has 3,200), each row's strategy
 * extracted and normalized, the rows sorted by normalized source so equal sources are adjacent, and
 * each run of equal sources folded into one strategy_stat; then the stats are sorted by rank.
 */
#include "trainer/strategies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/rewards.h"

#define STRATEGY_MAX_SOURCE (64 * 1024)   /* bytes of strategy source kept (a completion is far shorter) */

size_t strategy_normalize(const char *src, char *out, size_t outlen) {
    if (!outlen) return 0;
    size_t n = 0;
    const char *p = src ? src : "";
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        const char *first = p;
        while (first < e && (*first == ' ' || *first == '\t')) first++;
        if (first < e && *first != '#') {   /* a line with code */
            if (n && n < outlen - 1) out[n++] = '\n';
            size_t len = (size_t)(e - p);
            if (len > outlen - 1 - n) len = outlen - 1 - n;
            memcpy(out + n, p, len);
            n += len;
        }
        p = eol ? eol + 1 : end;
    }
    out[n] = '\0';
    return n;
}

typedef struct {
    char *source;
    int step;
    double reward;
    double max_tile;
    char outcome[32];
} play_row;

static int by_source(const void *a, const void *b) {
    const play_row *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    return c ? c : x->step - y->step;
}

static int by_rank(const void *a, const void *b) {
    const strategy_stat *x = a, *y = b;
    if (x->mean_reward != y->mean_reward) return x->mean_reward > y->mean_reward ? -1 : 1;
    if (x->plays != y->plays) return y->plays - x->plays;
    if (x->mean_max_tile != y->mean_max_tile) return x->mean_max_tile > y->mean_max_tile ? -1 : 1;
    if (x->first_step != y->first_step) return x->first_step - y->first_step;
    return strcmp(x->source, y->source);
}

/* Folds rows[0..n) (equal sources) into *s; takes ownership of rows[0].source. */
static void fold(play_row *rows, int n, strategy_stat *s) {
    memset(s, 0, sizeof *s);
    s->source = rows[0].source;
    s->plays = n;
    s->first_step = rows[0].step;
    s->best_reward = rows[0].reward;
    double sum = 0, tiles = 0;
    int best_count = 0;
    for (int i = 0; i < n; i++) {
        sum += rows[i].reward;
        tiles += rows[i].max_tile;
        if (rows[i].reward > s->best_reward) s->best_reward = rows[i].reward;
        if (!strcmp(rows[i].outcome, "success")) s->wins++;
        if (i > 0) free(rows[i].source);
        int count = 0;
        for (int j = 0; j < n; j++) count += !strcmp(rows[j].outcome, rows[i].outcome);
        if (count > best_count) {
            best_count = count;
            snprintf(s->outcome, sizeof s->outcome, "%s", rows[i].outcome);
        }
    }
    s->mean_reward = sum / n;
    s->mean_max_tile = tiles / n;
}

int strategy_list_load(sqlite3 *db, int run_id, int min_plays, strategy_list *list, char *err, size_t errlen) {
    memset(list, 0, sizeof *list);
    list->min_plays = min_plays < 1 ? 1 : min_plays;
    sqlite3_stmt *st;
    static const char *const sql =
        "SELECT step, text, reward, outcome, max_tile FROM completions WHERE run_id = ? "
        "AND coalesce(outcome, '') <> 'infra_error' ORDER BY step, idx";
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'completions'", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the completions: %s", sqlite3_errmsg(db));
        return -1;
    }
    const int has_table = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!has_table) return 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the completions (%s): %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int(st, 1, run_id);
    play_row *rows = NULL;
    int n = 0, cap = 0, rc;
    char *code = malloc(STRATEGY_MAX_SOURCE), *norm = malloc(STRATEGY_MAX_SOURCE);
    if (!code || !norm) goto oom;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list->completions++;
        const char *text = (const char *)sqlite3_column_text(st, 1);
        if (!text || reward_extract_strategy(text, code, STRATEGY_MAX_SOURCE) != 0) continue;
        list->with_function++;
        strategy_normalize(code, norm, STRATEGY_MAX_SOURCE);
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            play_row *r = realloc(rows, sizeof *rows * (size_t)cap);
            if (!r) goto oom;
            rows = r;
        }
        play_row *r = &rows[n];
        if (!(r->source = strdup(norm))) goto oom;
        n++;
        r->step = sqlite3_column_int(st, 0);
        r->reward = sqlite3_column_double(st, 2);
        const char *o = (const char *)sqlite3_column_text(st, 3);
        snprintf(r->outcome, sizeof r->outcome, "%s", o ? o : "");
        r->max_tile = sqlite3_column_double(st, 4);
    }
    sqlite3_finalize(st);
    st = NULL;
    free(code);
    free(norm);
    code = norm = NULL;
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading the completions: %s", sqlite3_errmsg(db));
        for (int i = 0; i < n; i++) free(rows[i].source);
        free(rows);
        return -1;
    }
    if (n == 0) { free(rows); return 0; }
    qsort(rows, (size_t)n, sizeof *rows, by_source);
    list->items = calloc((size_t)n, sizeof *list->items);
    if (!list->items) goto oom;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && !strcmp(rows[j].source, rows[i].source)) j++;
        fold(rows + i, j - i, &list->items[list->n++]);
        i = j;
    }
    free(rows);
    qsort(list->items, (size_t)list->n, sizeof *list->items, by_rank);
    /* a stable partition: the strategies with enough plays first, each part still in rank order */
    strategy_stat *ranked = malloc(sizeof *ranked * (size_t)list->n);
    if (!ranked) goto oom_items;
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < list->n; i++)
            if ((list->items[i].plays >= list->min_plays) == (pass == 0)) ranked[k++] = list->items[i];
    free(list->items);
    list->items = ranked;
    return 0;
oom_items:
    strategy_list_free(list);
    snprintf(err, errlen, "reading the completions: out of memory");
    return -1;
oom:
    sqlite3_finalize(st);
    free(code);
    free(norm);
    for (int i = 0; i < n; i++) free(rows[i].source);
    free(rows);
    free(list->items);
    memset(list, 0, sizeof *list);
    snprintf(err, errlen, "reading the completions: out of memory");
    return -1;
}

void strategy_list_free(strategy_list *list) {
    if (!list) return;
    for (int i = 0; i < list->n; i++) free(list->items[i].source);
    free(list->items);
    memset(list, 0, sizeof *list);
}
