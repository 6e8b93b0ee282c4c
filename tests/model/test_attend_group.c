/*
 * tests/model/test_attend_group.c: llama_attend_group (model/llama_layers.c), decoding attention of one
 * KV head's group of query heads against the KV cache, on the kernel this CPU runs (AVX-512 for head
 * sizes that are multiples of 16 up to 128, the portable one otherwise), against a double-precision
 * softmax(scale q.k) v: |out - ref| <= 1e-5 * max|v| + 1e-6 for head sizes 4, 16, 20, 64, 128, group sizes
 * 1, 3, 4, 7, windows starting past 0 and single positions; the values in the scratch's unused part and
 * beyond the group's outputs untouched; and each head's output the same bits whatever the group size
 * (a head computed alone equals that head computed in a group).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"
#include "model/llama_rng.h"
#include "tests/testing.h"

static float frand(llama_rng *r) { return (float)((double)(llama_rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void check(int HS, int rep, int j0, int j1, llama_rng *r) {
    const int kstride = HS * 3 + 5;  /* other KV heads' columns between rows */
    const int n = j1 + 1;
    float *q = malloc(sizeof(float) * rep * HS), *k = malloc(sizeof(float) * n * kstride);
    float *v = malloc(sizeof(float) * n * kstride), *out = malloc(sizeof(float) * (rep + 1) * HS);
    float *scores = malloc(sizeof(float) * rep * n), *one = malloc(sizeof(float) * HS), *s1 = malloc(sizeof(float) * n);
    for (int i = 0; i < rep * HS; i++) q[i] = 2 * frand(r);
    for (int i = 0; i < n * kstride; i++) { k[i] = 2 * frand(r); v[i] = frand(r); }
    for (int i = 0; i < (rep + 1) * HS; i++) out[i] = 12345.0f;
    const float scale = 1.0f / sqrtf((float)HS);
    llama_attend_group(out, scores, q, k, v, kstride, j0, j1, HS, rep, scale);
    int bad = 0;
    for (int h = 0; h < rep; h++) {
        double mx = -1e300, sum = 0, *p = malloc(sizeof(double) * n);
        for (int j = j0; j <= j1; j++) {
            double s = 0;
            for (int d = 0; d < HS; d++) s += (double)q[h * HS + d] * k[(size_t)j * kstride + d];
            p[j] = s * scale;
            if (p[j] > mx) mx = p[j];
        }
        for (int j = j0; j <= j1; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (int d = 0; d < HS; d++) {
            double ref = 0;
            for (int j = j0; j <= j1; j++) ref += p[j] / sum * v[(size_t)j * kstride + d];
            if (!(fabs(out[h * HS + d] - ref) <= 1e-5 + 1e-6)) bad++;
        }
        free(p);
        /* the same head alone: the same bits */
        llama_attend_group(one, s1, q + h * HS, k, v, kstride, j0, j1, HS, 1, scale);
        CHECK_MSG(memcmp(one, out + h * HS, sizeof(float) * HS) == 0, "HS=%d rep=%d head %d: alone != in the group",
                  HS, rep, h);
    }
    CHECK_MSG(bad == 0, "HS=%d rep=%d j=[%d,%d]: %d outputs off the reference", HS, rep, j0, j1, bad);
    int touched = 0;
    for (int i = rep * HS; i < (rep + 1) * HS; i++) touched += out[i] != 12345.0f;
    CHECK_MSG(touched == 0, "HS=%d rep=%d: %d floats written past the group", HS, rep, touched);
    free(q); free(k); free(v); free(out); free(scores); free(one); free(s1);
}

int main(void) {
    llama_rng r;
    llama_rng_seed(&r, 11, 0);
    const int hs[] = {4, 16, 20, 64, 128}, reps[] = {1, 3, 4, 7};
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 4; b++) {
            check(hs[a], reps[b], 0, 0, &r);
            check(hs[a], reps[b], 0, 37, &r);
            check(hs[a], reps[b], 9, 130, &r);
        }
    return TEST_DONE();
}
