/*
 * tests/trainer/test_dist_train.c: data-parallel GRPO (`mpirun -np 2 grpo2048 train`) equals one process
 * doing the same global batch, for loss_type grpo, bnpo, dr_grpo and dapo.
 *
 * On the embedded default (configs/default.yaml), 3 steps of 16 completions in 2 groups: one process with
 * per_device_train_batch_size 16 against 2 ranks with 8 each (one group per rank). Required:
 *   - the same rewards and completion lengths at every step, exactly (rank r samples rows [8r, 8r + 8) of
 *     the one-process batch from the same streams, and the default model's generation is bitwise
 *     independent of the batch size up to 32 rows);
 *   - the loss of every step within 1e-6 relative (the ranks' partial losses are summed: another summation
 *     order), and the final weights within 1e-6 relative, norm-wise per tensor (dt_weights_rel says why not
 *     elementwise);
 *   - rank 0 wrote every rank's completions: 8 per step with rank = 1;
 *   - a gradient_accumulation_steps = 2 layout (dr_grpo: 2 micro-batches per rank) matches as well.
 * The largest errors are printed (docs/scale.md quotes them).
 */
#include <sys/stat.h>

#include "tests/trainer/dist_testutil.h"

#define STEPS 3

static char tmp[] = "/tmp/grpo2048-dist-XXXXXX";

/* Runs one process with B = 16 / A and 2 ranks with B = 8 / A under `loss_type`; compares. */
static void compare(const char *loss_type, int accumulation) {
    char one[4200], two[4200], log1[4300], log2[4300], set_loss[64], set_acc[64], set_b1[64], set_b2[64];
    char set_out1[4300], set_out2[4300];
    snprintf(one, sizeof one, "%s/%s-a%d-one", tmp, loss_type, accumulation);
    snprintf(two, sizeof two, "%s/%s-a%d-two", tmp, loss_type, accumulation);
    snprintf(log1, sizeof log1, "%s.log", one);
    snprintf(log2, sizeof log2, "%s.log", two);
    snprintf(set_loss, sizeof set_loss, "loss_type=%s", loss_type);
    snprintf(set_acc, sizeof set_acc, "gradient_accumulation_steps=%d", accumulation);
    snprintf(set_b1, sizeof set_b1, "per_device_train_batch_size=%d", 16 / accumulation);
    snprintf(set_b2, sizeof set_b2, "per_device_train_batch_size=%d", 8 / accumulation);
    snprintf(set_out1, sizeof set_out1, "output_dir=%s", one);
    snprintf(set_out2, sizeof set_out2, "output_dir=%s", two);
    const char *a1[] = {"train", "configs/default.yaml", "--set", "max_steps=3", "--set", "max_completion_length=48",
                        "--set", "save_steps=0", "--set", set_loss, "--set", set_acc, "--set", set_b1, "--set", set_out1,
                        NULL};
    const char *a2[] = {"train", "configs/default.yaml", "--set", "max_steps=3", "--set", "max_completion_length=48",
                        "--set", "save_steps=0", "--set", set_loss, "--set", set_acc, "--set", set_b2, "--set", set_out2,
                        NULL};
    CHECK_EQ_INT(dt_run(0, a1, log1), 0);
    CHECK_EQ_INT(dt_run(2, a2, log2), 0);
    double r1[STEPS], r2[STEPS], l1[STEPS], l2[STEPS], n1[STEPS], n2[STEPS], g1[STEPS], g2[STEPS];
    CHECK_EQ_INT(dt_metric(one, "reward", r1, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(two, "reward", r2, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(one, "loss", l1, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(two, "loss", l2, STEPS), STEPS);
    dt_metric(one, "completions/mean_length", n1, STEPS);
    dt_metric(two, "completions/mean_length", n2, STEPS);
    dt_metric(one, "grad_norm", g1, STEPS);
    dt_metric(two, "grad_norm", g2, STEPS);
    double worst_loss = 0, worst_gn = 0;
    for (int s = 0; s < STEPS; s++) {
        CHECK_MSG(r1[s] == r2[s], "%s: step %d reward %.9g (1 process) vs %.9g (2 ranks)", loss_type, s + 1, r1[s], r2[s]);
        CHECK_MSG(n1[s] == n2[s], "%s: step %d mean length %.9g vs %.9g", loss_type, s + 1, n1[s], n2[s]);
        const double e = dt_rel(l1[s], l2[s], 1e-12);
        CHECK_MSG(e <= 1e-6, "%s: step %d loss %.12g vs %.12g (relative %.3g)", loss_type, s + 1, l1[s], l2[s], e);
        worst_loss = fmax(worst_loss, e);
        worst_gn = fmax(worst_gn, dt_rel(g1[s], g2[s], 1e-12));
    }
    double w[3];
    dt_weights_rel(one, two, "model/default", w);
    CHECK_MSG(w[0] <= 1e-6, "%s: final weights differ by %.3g relative (norm-wise, largest over the tensors)", loss_type,
              w[0]);
    char sql[128];
    snprintf(sql, sizeof sql, "select count(*) from completions where rank = 1");
    CHECK_EQ_INT(dt_query_int(two, sql), 8 * STEPS);
    CHECK_EQ_INT(dt_query_int(two, "select count(*) from completions"), 16 * STEPS);
    CHECK_EQ_INT(dt_query_int(one, "select count(*) from completions where rank = 0"), 16 * STEPS);
    printf("%-8s A=%d: rewards equal %d/%d steps; max relative error: loss %.2e, grad_norm %.2e, weights %.2e "
           "(elementwise %.2e; of the 3 steps' update %.2e)\n", loss_type, accumulation,
           (r1[0] == r2[0]) + (r1[1] == r2[1]) + (r1[2] == r2[2]), STEPS, worst_loss, worst_gn, w[0], w[1], w[2]);
}

int main(void) {
    dt_init();
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    compare("grpo", 1);
    compare("bnpo", 1);
    compare("dr_grpo", 1);
    compare("dapo", 1);
    compare("dr_grpo", 2);
    dt_cleanup(tmp);
    return TEST_DONE();
}
