/*
 * tests/trainer/test_grpo.c: the GRPO objective and the optimizer against second implementations.
 *
 * - advantages: hand-computed values (unbiased std, as torch.std).
 * - loss: for each loss_type the value equals a direct transcription of TRL's _compute_loss (per-token
 *   matrix, then TRL's aggregation expression), and dLoss/dlogp equals central finite differences of
 *   that transcription, with old/ref log-probs away from logp so that clipping and KL are exercised.
 * - lr schedules: transformers' formulas at chosen steps; AdamW: one step by hand; clipping.
 */
#include <math.h>
#include <string.h>

#include "tests/testing.h"
#include "trainer/grpo.h"
#include "trainer/optim.h"

enum { B = 3, T = 5 };

/* TRL, transcribed: per_token_loss = -min(coef1*A, clamp(coef1)*A) + beta*kl; aggregate by loss_type. */
static double trl_loss(int type, const double *logp, const float *old, const float *ref, const float *adv,
                       const float *mask, double eps_lo, double eps_hi, double beta, int max_len, int accum,
                       double num_items) {
    double ptl[B][T];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            double c1 = exp(logp[i] - old[i]);
            double c2 = fmin(fmax(c1, 1 - eps_lo), 1 + eps_hi);
            double l = -fmin(c1 * adv[b], c2 * adv[b]);
            if (beta > 0) l += beta * (exp(ref[i] - logp[i]) - (ref[i] - logp[i]) - 1);
            ptl[b][t] = l;
        }
    double total = 0, msum = 0;
    for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) { total += ptl[b][t] * mask[b * T + t]; msum += mask[b * T + t]; }
    switch (type) {
    case LOSS_GRPO: {
        double s = 0;
        for (int b = 0; b < B; b++) {
            double num = 0, den = 0;
            for (int t = 0; t < T; t++) { num += ptl[b][t] * mask[b * T + t]; den += mask[b * T + t]; }
            s += num / fmax(den, 1.0);
        }
        return s / B / accum;
    }
    case LOSS_BNPO: return total / fmax(msum, 1.0) / accum;
    case LOSS_DR_GRPO: return total / (B * (double)max_len) / accum;
    default: return total / num_items;
    }
}

static void test_advantages(void) {
    double r[8] = {1, 2, 3, 4, 5, 5, 5, 5};
    float adv[8];
    double mstd, fzero;
    grpo_advantages(r, 8, 4, SCALE_GROUP, adv, &mstd, &fzero);
    double std1 = sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3.0);
    CHECK_NEAR(adv[0], -1.5 / (std1 + 1e-4), 1e-6);
    CHECK_NEAR(adv[3], 1.5 / (std1 + 1e-4), 1e-6);
    CHECK_NEAR(adv[5], 0.0, 1e-9);
    CHECK_NEAR(mstd, std1 / 2, 1e-12);
    CHECK_NEAR(fzero, 0.5, 1e-12);
    grpo_advantages(r, 8, 4, SCALE_NONE, adv, &mstd, &fzero);
    CHECK_NEAR(adv[0], -1.5, 1e-6);
    grpo_advantages(r, 8, 4, SCALE_BATCH, adv, &mstd, &fzero);
    double m = 30.0 / 8, ss = 0;
    for (int i = 0; i < 8; i++) ss += (r[i] - m) * (r[i] - m);
    CHECK_NEAR(adv[1], -0.5 / (sqrt(ss / 7) + 1e-4), 1e-6);
    double one[1] = {3};
    grpo_advantages(one, 1, 1, SCALE_GROUP, adv, &mstd, &fzero);   /* G = 1: std 0, advantage 0 */
    CHECK_NEAR(adv[0], 0.0, 1e-9);
    CHECK_EQ_INT(grpo_loss_type_from_name("dapo"), LOSS_DAPO);
    CHECK_EQ_INT(grpo_loss_type_from_name("ppo"), -1);
    CHECK_EQ_INT(grpo_scale_from_name("batch"), SCALE_BATCH);
}

static void test_loss(int type, double beta) {
    float logp[B * T], old[B * T], ref[B * T], mask[B * T], dlogp[B * T];
    float adv[B] = {1.3f, -0.7f, 0.4f};
    unsigned s = 12345u + (unsigned)type;
    for (int i = 0; i < B * T; i++) {
        s = s * 1103515245u + 12345u;
        logp[i] = -0.2f - (float)((s >> 8) % 1000) / 400.0f;
        s = s * 1103515245u + 12345u;
        old[i] = logp[i] + ((float)((s >> 8) % 1000) / 1000.0f - 0.5f) * 0.8f;  /* ratio in ~[0.67, 1.5] */
        s = s * 1103515245u + 12345u;
        ref[i] = logp[i] + ((float)((s >> 8) % 1000) / 1000.0f - 0.5f);
    }
    int lens[B] = {5, 3, 1};
    for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) mask[b * T + t] = t < lens[b];
    const double num_items = 23.0;  /* dapo: the whole accumulated batch's tokens (more than this micro-batch's 9) */
    grpo_loss_params p = {(grpo_loss_type)type, 0.2f, 0.28f, (float)beta, 8, 2, num_items};
    grpo_loss_stats st;
    double loss = grpo_loss(&p, B, T, logp, old, beta > 0 ? ref : NULL, adv, mask, dlogp, &st);
    double lp[B * T];
    for (int i = 0; i < B * T; i++) lp[i] = logp[i];
    double expect = trl_loss(type, lp, old, ref, adv, mask, 0.2, 0.28, beta, 8, 2, num_items);
    CHECK_MSG(fabs(loss - expect) <= 1e-6 * fmax(1.0, fabs(expect)), "type %d beta %g: %.9g vs TRL %.9g", type, beta, loss, expect);
    CHECK_NEAR(st.tokens, 9, 0);
    int clipped_tokens = 0;
    for (int i = 0; i < B * T; i++) {
        double h = 1e-5;
        lp[i] = logp[i] + h;
        double up = trl_loss(type, lp, old, ref, adv, mask, 0.2, 0.28, beta, 8, 2, num_items);
        lp[i] = logp[i] - h;
        double dn = trl_loss(type, lp, old, ref, adv, mask, 0.2, 0.28, beta, 8, 2, num_items);
        lp[i] = logp[i];
        double fd = (up - dn) / (2 * h);
        CHECK_MSG(fabs(fd - dlogp[i]) <= 1e-5 + 1e-4 * fabs(fd), "type %d beta %g token %d: dlogp %.8g vs finite difference %.8g",
                  type, beta, i, dlogp[i], fd);
        if (mask[i] && beta == 0 && dlogp[i] == 0.0f) clipped_tokens++;
    }
    if (beta == 0) CHECK_MSG(clipped_tokens > 0, "the test data should clip some tokens");
    CHECK(st.clip_low + st.clip_high > 0);
}

static void test_schedules_and_adamw(void) {
    CHECK_NEAR(lr_at(SCHED_LINEAR, 1e-3, 0, 100, 0.0), 1e-3, 1e-12);
    CHECK_NEAR(lr_at(SCHED_LINEAR, 1e-3, 50, 100, 0.0), 5e-4, 1e-12);
    CHECK_NEAR(lr_at(SCHED_LINEAR, 1e-3, 0, 100, 0.1), 0.0, 1e-12);     /* warmup starts at 0 (transformers) */
    CHECK_NEAR(lr_at(SCHED_LINEAR, 1e-3, 5, 100, 0.1), 5e-4, 1e-12);
    CHECK_NEAR(lr_at(SCHED_LINEAR, 1e-3, 55, 100, 0.1), 1e-3 * 45.0 / 90.0, 1e-12);
    CHECK_NEAR(lr_at(SCHED_COSINE, 1e-3, 55, 100, 0.1), 1e-3 * 0.5 * (1 + cos(M_PI * 45.0 / 90.0)), 1e-12);
    CHECK_NEAR(lr_at(SCHED_CONSTANT, 1e-3, 99, 100, 0.5), 1e-3, 1e-12);
    CHECK_NEAR(lr_at(SCHED_CONSTANT_WITH_WARMUP, 1e-3, 2, 100, 0.1), 2e-4, 1e-12);
    CHECK_EQ_INT(lr_schedule_from_name("cosine"), SCHED_COSINE);
    CHECK_EQ_INT(lr_schedule_from_name("exp"), -1);

    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.1f, -0.3f, 0.0f};
    unsigned char decay[3] = {1, 0, 1};
    adamw_state s;
    CHECK(adamw_init(&s, 3) == 0);
    adamw_hparams h = {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f};
    adamw_step(&s, &h, p, g, decay);
    /* step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps) = lr·sign(g); decay first: p -= lr·wd·p */
    CHECK_NEAR(p[0], 1.0 - 0.01 * 0.1 * 1.0 - 0.01 * 0.1 / (0.1 + 1e-8), 1e-6);
    CHECK_NEAR(p[1], -2.0 + 0.01 * 0.3 / (0.3 + 1e-8), 1e-6);
    CHECK_NEAR(p[2], 0.5 - 0.01 * 0.1 * 0.5, 1e-7);
    adamw_free(&s);

    float gr[2] = {3.0f, 4.0f};
    double n = clip_grad_norm(gr, 2, 1.0);
    CHECK_NEAR(n, 5.0, 1e-9);
    CHECK_NEAR(gr[0], 3.0 / (5.0 + 1e-6), 1e-6);
    float gr2[2] = {0.3f, 0.4f};
    clip_grad_norm(gr2, 2, 1.0);
    CHECK_NEAR(gr2[0], 0.3, 1e-7);   /* under the limit: unchanged */
}

int main(void) {
    test_advantages();
    for (int type = LOSS_GRPO; type <= LOSS_DAPO; type++) {
        test_loss(type, 0.0);
        test_loss(type, 0.04);
    }
    test_schedules_and_adamw();
    return TEST_DONE();
}
