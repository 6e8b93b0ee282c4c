/*
 * tests/testing.h: the few macros every grpo2048 test uses. A test is a plain executable: it prints
 * one line per failed check with file:line, and its exit status is the number of failures (capped),
 * or 77 (ctest's skip code) from SKIP().
 */
#ifndef GRPO2048_TESTING_H
#define GRPO2048_TESTING_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int testing_failures = 0;
static int testing_checks = 0;

#define CHECK(cond) do { testing_checks++; if (!(cond)) { testing_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_MSG(cond, ...) do { testing_checks++; if (!(cond)) { testing_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); testing_checks++; \
    if (_a != _b) { testing_failures++; fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", \
    __FILE__, __LINE__, #a, #b, _a, _b); } } while (0)

#define CHECK_NEAR(a, b, tol) do { double _a = (double)(a), _b = (double)(b); testing_checks++; \
    if (!(fabs(_a - _b) <= (tol))) { testing_failures++; fprintf(stderr, \
    "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, (double)(tol), _a, _b); } } while (0)

#define SKIP(...) do { printf("SKIP: "); printf(__VA_ARGS__); printf("\n"); exit(77); } while (0)

/* Call at the end of main(): prints "N passed, N failed" and returns the exit status. */
#define TEST_DONE() (printf("\n%s: %d passed, %d failed\n", __FILE__, testing_checks - testing_failures, \
    testing_failures), testing_failures > 100 ? 100 : testing_failures)

#endif
