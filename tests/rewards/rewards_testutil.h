/*
 * tests/rewards/rewards_testutil.h: helpers shared by the tests of the rewards module (each test is its
 * own executable, so these are static): reading a strategy file from tests/rewards/strategies/, a
 * monotonic clock, and creating a pool with the few settings the tests vary.
 */
#ifndef GRPO2048_REWARDS_TESTUTIL_H
#define GRPO2048_REWARDS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rewards/rewards.h"

static inline double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The path of tests/rewards/strategies/<name>.py (under GRPO2048_SOURCE_DIR when set, else the cwd). */
static inline void tu_strategy_path(const char *name, char *out, size_t n) {
    const char *root = getenv("GRPO2048_SOURCE_DIR");
    snprintf(out, n, "%s%stests/rewards/strategies/%s.py", root ? root : "", root ? "/" : "", name);
}

/* The text of a strategy file (malloc'd; the test aborts when it is missing). */
static inline char *tu_strategy(const char *name) {
    char path[1024];
    tu_strategy_path(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); abort(); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); abort(); }
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The strategy wrapped as a model completion: prose, a ```python fence, the code, a closing fence. */
static inline char *tu_completion(const char *name) {
    char *src = tu_strategy(name);
    size_t n = strlen(src) + 128;
    char *c = malloc(n);
    snprintf(c, n, "Here is my strategy:\n```python\n%s```\nIt keeps tiles in a corner.", src);
    free(src);
    return c;
}

static inline reward_pool *tu_pool(int parallel, int workers, double timeout, uint32_t target, int games) {
    reward_config c;
    reward_config_defaults(&c);
    c.parallel = parallel;
    c.workers = workers;
    c.timeout = timeout;
    c.target = target;
    c.games_per_strategy = games;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    if (!p) { fprintf(stderr, "reward_pool_create: %s\n", err); abort(); }
    return p;
}

#endif
