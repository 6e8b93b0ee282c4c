/*
 * tests/trainer/test_dist_sft.c: data-parallel SFT (`mpirun -np 2 grpo2048 sft`) equals one process doing
 * the same global batch.
 *
 * configs/sft_default.yaml (from scratch, the embedded corpus), 3 steps of 16 examples: one process with
 * per_device_train_batch_size 16 against 2 ranks with 8 each (rank r trains on the r-th 8 of every
 * micro-batch; the loss is divided by the whole step's completion tokens). Required: the loss of every step
 * within 1e-6 relative, the final weights within 1e-6 relative (norm-wise per tensor, see dist_testutil.h),
 * and the checkpoint written by rank 0 after the ranks' weights were compared records world_size 2.
 */
#include "tests/trainer/dist_testutil.h"

#define STEPS 3

static char tmp[] = "/tmp/grpo2048-dist-sft-XXXXXX";

int main(void) {
    dt_init();
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    char one[4200], two[4200], log1[4300], log2[4300], out1[4300], out2[4300];
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(two, sizeof two, "%s/two", tmp);
    snprintf(log1, sizeof log1, "%s.log", one);
    snprintf(log2, sizeof log2, "%s.log", two);
    snprintf(out1, sizeof out1, "output_dir=%s", one);
    snprintf(out2, sizeof out2, "output_dir=%s", two);
    const char *a1[] = {"sft", "configs/sft_default.yaml", "--set", "max_steps=3", "--set", "save_steps=2", "--set",
                        "per_device_train_batch_size=16", "--set", out1, NULL};
    const char *a2[] = {"sft", "configs/sft_default.yaml", "--set", "max_steps=3", "--set", "save_steps=2", "--set",
                        "per_device_train_batch_size=8", "--set", out2, NULL};
    CHECK_EQ_INT(dt_run(0, a1, log1), 0);
    CHECK_EQ_INT(dt_run(2, a2, log2), 0);
    double l1[STEPS], l2[STEPS], t1[STEPS], t2[STEPS], worst = 0;
    CHECK_EQ_INT(dt_metric(one, "loss", l1, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(two, "loss", l2, STEPS), STEPS);
    dt_metric(one, "num_tokens", t1, STEPS);
    dt_metric(two, "num_tokens", t2, STEPS);
    for (int s = 0; s < STEPS; s++) {
        const double e = dt_rel(l1[s], l2[s], 1e-12);
        CHECK_MSG(e <= 1e-6, "step %d loss %.12g (1 process) vs %.12g (2 ranks): relative %.3g", s + 1, l1[s], l2[s], e);
        /* num_tokens counts the padded B×T tokens processed: the ranks' smaller micro-batches pad less */
        CHECK_MSG(t2[s] <= t1[s], "step %d num_tokens %.0f (2 ranks) > %.0f (1 process)", s + 1, t2[s], t1[s]);
        worst = fmax(worst, e);
    }
    double w[3];
    dt_weights_rel(one, two, NULL, w);
    CHECK_MSG(w[0] <= 1e-6, "final weights differ by %.3g relative (norm-wise)", w[0]);
    char state[4400];
    snprintf(state, sizeof state, "%s/checkpoint-2/trainer_state.json", two);
    char *js = dt_slurp(state);
    CHECK_MSG(js && strstr(js, "\"world_size\":\t2"), "%s records world_size 2", state);
    free(js);
    printf("sft: max relative error: loss %.2e, weights %.2e (elementwise %.2e)\n", worst, w[0], w[1]);
    dt_cleanup(tmp);
    return TEST_DONE();
}
