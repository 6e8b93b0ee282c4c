/*
 * tests/model/test_llama_threads.c: the multi-threaded code paths against the single-threaded ones.
 *
 * The other model tests use models too small to cross the parallelism thresholds (and run with one
 * thread so that a loaded machine cannot slow their thousands of tiny passes). Here a mid-size model
 * (Qwen3: q_norm/k_norm, V=2048, C=128, F=352, L=2, NH=4, NKV=2, HS=32, tied) is big enough that
 * llama_sgemm splits its products by rows, by columns and into per-row sgemv blocks, and attention /
 * norms (the per-head q/k norms included) / SwiGLU run as OpenMP loops. With 1, 2 and 3 threads (3: uneven blocks):
 *   - forward logp within 2e-5 and every gradient within 1e-4 (relative to the tensor's largest
 *     entry) of the 1-thread results; repeated runs at a fixed thread count are bitwise identical;
 *   - greedy generation (G=3: per-row sgemv; G=8: batched sgemm) gives the same tokens, logp
 *     within 1e-4.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testing.h"
#include "tests/model/llama_test_util.h"

enum { B = 4, T = 80, P = 70, NEW = 24 };

int main(void) {
    llama_config c = tiny_config("Qwen3ForCausalLM", 1, 0);
    c.vocab_size = 2048;
    c.hidden_size = 128;
    c.intermediate_size = 352;
    c.head_dim = 32;
    c.max_position_embeddings = 256;
    c.num_eos = 0;
    llama_model m;
    CHECK(llama_init_random(&m, &c, 21, 0.02f) == 0);
    randomize_params(&m, 21, 0.1f);
    int *tok = malloc(sizeof(int) * B * T);
    float *w = malloc(sizeof(float) * B * T);
    random_tokens(tok, B * T, c.vocab_size, 21);
    llama_rng r;
    llama_rng_seed(&r, 21, 5);
    for (int i = 0; i < B * T; i++) w[i] = (float)llama_rng_normal(&r) * (i % 3 != 0);

    float *lp[4], *grads[4];
    int *gen[4][2];
    float *glp[4][2];
    int len[16];
    char err[256];
    int threads[4] = {1, 2, 3, 2};
    llama_sampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    for (int k = 0; k < 4; k++) {
        omp_set_num_threads(threads[k]);
        lp[k] = malloc(sizeof(float) * B * T);
        grads[k] = malloc(sizeof(float) * m.num_params);
        CHECK(llama_forward_logprobs(&m, tok, B, T, lp[k], NULL) == 0);
        llama_zero_grad(&m);
        llama_backward_logprobs(&m, w);
        memcpy(grads[k], m.grads, sizeof(float) * m.num_params);
        int Gs[2] = {3, 8};
        for (int gi = 0; gi < 2; gi++) {
            gen[k][gi] = malloc(sizeof(int) * Gs[gi] * NEW);
            glp[k][gi] = malloc(sizeof(float) * Gs[gi] * NEW);
            CHECK(llama_generate_ex(&m, tok, P, Gs[gi], NEW, &greedy, 1, gen[k][gi], len, glp[k][gi], err,
                                    sizeof err) == 0);
        }
    }
    for (int k = 1; k < 3; k++) {
        double dl = 0.0, worst = 0.0;
        for (int i = 0; i < B * T; i++) dl = fmax(dl, fabs(lp[k][i] - lp[0][i]));
        for (int ti = 0; ti < m.num_tensors; ti++) {
            const llama_tensor *t = &m.tensors[ti];
            size_t off = (size_t)(t->data - m.params);
            double gmax = 0.0, dmax = 0.0;
            for (size_t j = 0; j < t->numel; j++) {
                gmax = fmax(gmax, fabs(grads[0][off + j]));
                dmax = fmax(dmax, fabs(grads[k][off + j] - grads[0][off + j]));
            }
            worst = fmax(worst, dmax / (gmax + 1e-12));
        }
        int same3 = memcmp(gen[k][0], gen[0][0], sizeof(int) * 3 * NEW) == 0;
        int same8 = memcmp(gen[k][1], gen[0][1], sizeof(int) * 8 * NEW) == 0;
        double gl = 0.0;
        for (int i = 0; i < 3 * NEW; i++) gl = fmax(gl, fabs(glp[k][0][i] - glp[0][0][i]));
        for (int i = 0; i < 8 * NEW; i++) gl = fmax(gl, fabs(glp[k][1][i] - glp[0][1][i]));
        printf("%d threads vs 1: max |logp diff| %.2e, max gradient diff / tensor max %.2e, "
               "greedy tokens %s/%s, generation logp diff %.2e\n",
               threads[k], dl, worst, same3 ? "same" : "DIFFER", same8 ? "same" : "DIFFER", gl);
        CHECK(dl < 2e-5);
        CHECK(worst < 1e-4);
        CHECK(same3 && same8);
        CHECK(gl < 1e-4);
    }
    /* a fixed thread count is bitwise repeatable (runs 1 and 3 both used 2 threads) */
    CHECK(memcmp(lp[1], lp[3], sizeof(float) * B * T) == 0);
    CHECK(memcmp(grads[1], grads[3], sizeof(float) * m.num_params) == 0);
    CHECK(memcmp(glp[1][1], glp[3][1], sizeof(float) * 8 * NEW) == 0);
    for (int k = 0; k < 4; k++) {
        free(lp[k]);
        free(grads[k]);
        for (int gi = 0; gi < 2; gi++) { free(gen[k][gi]); free(glp[k][gi]); }
    }
    free(tok);
    free(w);
    llama_free(&m);
    return TEST_DONE();
}
