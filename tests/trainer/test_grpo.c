/*
 * tests/trainer/test_grpo.c: the GRPO objective (trainer/grpo.c) against TRL, and the optimizer.
 *
 * - advantages, reward_std, frac_reward_zero_std: tests/fixtures/grpo/advantages.json;
 * - loss: for each loss_type × importance_sampling_level × {plain; beta, epsilon_high, delta and
 *   top_entropy_quantile together}, the loss value, dLoss/dlogp, the entropy mask and the logged
 *   kl / entropy / clip_ratio values equal tests/fixtures/grpo/loss.json, which
 *   tools/make_grpo_fixtures.py computes with a transcription of TRL's GRPOTrainer code and automatic
 *   differentiation (so the hand-written gradient meets autograd's). The inputs hold padding with
 *   garbage log-probabilities, a fully masked row, a ratio of exactly 1 (a tie of the min), ratios
 *   beyond both clip bounds and beyond delta;
 * - a central finite difference of grpo_loss itself agrees with its gradient where no clip boundary is
 *   near (a check of the C code independent of the fixtures);
 * - lr schedules: transformers' formulas at chosen steps; AdamW: one step by hand; clipping.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tests/testing.h"
#include "trainer/grpo.h"
#include "trainer/optim.h"

static cJSON *load_json(const char *name) {
    const char *root = getenv("GRPO2048_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/grpo/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s (run tools/make_grpo_fixtures.py)\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
    text[n] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) { fprintf(stderr, "%s: not JSON\n", path); exit(1); }
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) { fprintf(stderr, "fixture: '%s' is not a number\n", key); exit(1); }
    return v->valuedouble;
}

/* A JSON array of numbers (or of arrays of numbers, flattened row by row) into out (n values). */
static int flatten(const cJSON *a, float *out, int n) {
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (cJSON_IsArray(e)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, e) { if (k < n) out[k] = (float)x->valuedouble; k++; }
        } else {
            if (k < n) out[k] = (float)e->valuedouble;
            k++;
        }
    }
    return k;
}

static int flatten_d(const cJSON *a, double *out, int n) {
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (cJSON_IsArray(e)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, e) { if (k < n) out[k] = x->valuedouble; k++; }
        } else {
            if (k < n) out[k] = e->valuedouble;
            k++;
        }
    }
    return k;
}

static void test_advantages(void) {
    cJSON *j = load_json("advantages.json");
    const cJSON *c;
    int ncases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "cases")) {
        double r[64], want[64];
        float adv[64];
        int N = flatten_d(cJSON_GetObjectItemCaseSensitive(c, "rewards"), r, 64);
        CHECK_EQ_INT(flatten_d(cJSON_GetObjectItemCaseSensitive(c, "advantages"), want, 64), N);
        int G = (int)num(c, "num_generations");
        const char *scale = cJSON_GetObjectItemCaseSensitive(c, "scale_rewards")->valuestring;
        double rstd, fzero;
        grpo_advantages(r, N, G, (grpo_scale)grpo_scale_from_name(scale), adv, &rstd, &fzero);
        for (int i = 0; i < N; i++)
            CHECK_MSG(fabs(adv[i] - want[i]) <= 1e-6 * fmax(1.0, fabs(want[i])), "%s adv[%d]: %.9g vs TRL %.9g", scale,
                      i, adv[i], want[i]);
        CHECK_NEAR(rstd, num(c, "reward_std"), 1e-12);
        CHECK_NEAR(fzero, num(c, "frac_reward_zero_std"), 1e-12);
        ncases++;
    }
    CHECK_EQ_INT(ncases, 5);
    cJSON_Delete(j);
    CHECK_EQ_INT(grpo_loss_type_from_name("dapo"), LOSS_DAPO);
    CHECK_EQ_INT(grpo_loss_type_from_name("ppo"), -1);
    CHECK_EQ_INT(grpo_scale_from_name("batch"), SCALE_BATCH);
    CHECK_EQ_INT(grpo_is_level_from_name("sequence"), IS_SEQUENCE);
    CHECK_EQ_INT(grpo_is_level_from_name("tokens"), -1);
}

enum { MAXBT = 64 };

typedef struct {
    int B, T;
    float logp[MAXBT], old[MAXBT], ref[MAXBT], ent[MAXBT], mask[MAXBT], adv[8];
} loss_inputs;

static void read_inputs(const cJSON *in, loss_inputs *x) {
    x->B = (int)num(in, "B");
    x->T = (int)num(in, "T");
    int n = x->B * x->T;
    if (n > MAXBT || x->B > 8) { fprintf(stderr, "fixture too large\n"); exit(1); }
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "logp"), x->logp, n), n);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "old_logp"), x->old, n), n);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "ref_logp"), x->ref, n), n);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "entropy"), x->ent, n), n);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "mask"), x->mask, n), n);
    CHECK_EQ_INT(flatten(cJSON_GetObjectItemCaseSensitive(in, "advantages"), x->adv, 8), x->B);
}

static grpo_loss_params params_of(const cJSON *a) {
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(a, "delta");
    grpo_loss_params p = {
        .type = (grpo_loss_type)grpo_loss_type_from_name(cJSON_GetObjectItemCaseSensitive(a, "loss_type")->valuestring),
        .level = (grpo_is_level)grpo_is_level_from_name(
            cJSON_GetObjectItemCaseSensitive(a, "importance_sampling_level")->valuestring),
        .epsilon_low = (float)num(a, "epsilon"),
        .epsilon_high = (float)num(a, "epsilon_high"),
        .delta = cJSON_IsNumber(delta) ? (float)delta->valuedouble : 0.0f,
        .beta = (float)num(a, "beta"),
        .max_completion_length = (int)num(a, "max_completion_length"),
        .gradient_accumulation_steps = (int)num(a, "gradient_accumulation_steps"),
        .num_items_in_batch = num(a, "num_items_in_batch"),
    };
    return p;
}

static void test_loss_fixtures(void) {
    cJSON *j = load_json("loss.json");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    const cJSON *c;
    int ncases = 0, zero_grads = 0, nonzero_grads = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "cases")) {
        const char *which = cJSON_GetObjectItemCaseSensitive(c, "inputs")->valuestring;
        loss_inputs x;
        read_inputs(cJSON_GetObjectItemCaseSensitive(inputs, which), &x);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, "args");
        grpo_loss_params p = params_of(a);
        const int n = x.B * x.T;
        char label[128];
        snprintf(label, sizeof label, "%s %s beta=%g", which, cJSON_GetObjectItemCaseSensitive(a, "loss_type")->valuestring,
                 (double)p.beta);
        float emask[MAXBT], dlogp[MAXBT];
        const double q = num(a, "top_entropy_quantile");
        const cJSON *want_mask = cJSON_GetObjectItemCaseSensitive(c, "entropy_mask");
        if (q < 1.0) {
            float wm[MAXBT];
            grpo_entropy_mask(x.ent, x.mask, n, 1.0 - q, emask);
            CHECK_EQ_INT(flatten(want_mask, wm, n), n);
            int same = 1;
            for (int i = 0; i < n; i++) same &= emask[i] == wm[i];
            CHECK_MSG(same, "%s: entropy mask differs from TRL's", label);
        } else {
            CHECK(cJSON_IsNull(want_mask));
        }
        grpo_loss_stats st;
        double loss = grpo_loss(&p, x.B, x.T, x.logp, x.old, p.beta > 0 ? x.ref : NULL, x.adv, x.mask,
                                q < 1.0 ? emask : NULL, dlogp, &st);
        double want = num(c, "loss");
        CHECK_MSG(fabs(loss - want) <= 1e-6 * fmax(1.0, fabs(want)), "%s: loss %.9g vs TRL %.9g", label, loss, want);
        double wg[MAXBT];
        CHECK_EQ_INT(flatten_d(cJSON_GetObjectItemCaseSensitive(c, "dlogp"), wg, n), n);
        for (int i = 0; i < n; i++) {
            CHECK_MSG(fabs(dlogp[i] - wg[i]) <= 1e-7 + 1e-5 * fabs(wg[i]), "%s token %d: dlogp %.9g vs TRL autograd %.9g",
                      label, i, dlogp[i], wg[i]);
            if (x.mask[i] != 0.0f) { zero_grads += wg[i] == 0.0; nonzero_grads += wg[i] != 0.0; }
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "metrics");
        CHECK_NEAR(grpo_masked_mean(x.ent, x.mask, n), num(m, "entropy"), 1e-6);
        CHECK_NEAR(st.kl, p.beta > 0 ? num(m, "kl") : 0.0, 1e-7);
        CHECK_NEAR(st.clip_low, num(m, "clip_ratio/low_mean"), 1e-12);
        CHECK_NEAR(st.clip_high, num(m, "clip_ratio/high_mean"), 1e-12);
        CHECK_NEAR(st.clip_region, num(m, "clip_ratio/region_mean"), 1e-12);
        double active = 0;
        for (int i = 0; i < n; i++) active += x.mask[i];
        CHECK_NEAR(st.tokens, active, 0);
        ncases++;
    }
    CHECK_EQ_INT(ncases, 16);
    /* the fixtures exercise both clipped (zero-gradient) and unclipped tokens */
    CHECK(zero_grads > 0 && nonzero_grads > 0);
    cJSON_Delete(j);
}

/* grpo_loss against central differences of itself, on tokens whose ratio is away from every kink. */
static void test_loss_finite_differences(void) {
    cJSON *j = load_json("loss.json");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    const cJSON *c;
    int checked = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "cases")) {
        loss_inputs x;
        read_inputs(cJSON_GetObjectItemCaseSensitive(inputs, cJSON_GetObjectItemCaseSensitive(c, "inputs")->valuestring), &x);
        grpo_loss_params p = params_of(cJSON_GetObjectItemCaseSensitive(c, "args"));
        if (p.level != IS_TOKEN) continue;   /* a sequence's ratio moves with each of its tokens: kinks are shared */
        const int n = x.B * x.T;
        float dlogp[MAXBT], scratch[MAXBT];
        grpo_loss_stats st;
        grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, dlogp, &st);
        for (int i = 0; i < n; i++) {
            if (x.mask[i] == 0.0f) continue;
            double r = exp((double)x.logp[i] - x.old[i]);
            const double h = 1e-3;
            double kinks[3] = {1 - p.epsilon_low, 1 + p.epsilon_high, p.delta > 0 ? p.delta : 1e9};
            int near = fabs(r - 1.0) < 1e-6;
            for (int k = 0; k < 3; k++) near |= fabs(log(r) - log(kinks[k])) < 2 * h;
            if (near) continue;
            float save = x.logp[i];
            x.logp[i] = save + (float)h;
            double up = grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, scratch, &st);
            x.logp[i] = save - (float)h;
            double dn = grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, scratch, &st);
            x.logp[i] = save;
            double h_eff = ((double)(save + (float)h) - (double)(save - (float)h)) / 2;
            double fd = (up - dn) / (2 * h_eff);
            CHECK_MSG(fabs(fd - dlogp[i]) <= 2e-5 + 1e-3 * fabs(fd), "token %d: dlogp %.8g vs finite difference %.8g", i,
                      dlogp[i], fd);
            checked++;
        }
    }
    CHECK(checked > 20);
    cJSON_Delete(j);
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

/* infra_error completions: filled with their group's scored mean, so their advantage is 0 and the
 * scored completions keep their signs; a group with none scored gets 0s. */
static void test_fill_unscored(void) {
    double r[8] = {1.0, 2.0, 6.0, -99.0, /* group 2: nothing scored */ 5.0, 5.0, 5.0, 5.0};
    const unsigned char scored[8] = {1, 1, 1, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(grpo_fill_unscored(r, scored, 8, 4), 5);
    CHECK_NEAR(r[3], 3.0, 1e-12);
    CHECK_NEAR(r[0], 1.0, 0);
    for (int i = 4; i < 8; i++) CHECK_NEAR(r[i], 0.0, 0);
    float adv[8];
    grpo_advantages(r, 8, 4, SCALE_GROUP, adv, NULL, NULL);
    CHECK_NEAR(adv[3], 0.0, 1e-6);
    CHECK(adv[0] < 0 && adv[1] < 0 && adv[2] > 0);
    for (int i = 4; i < 8; i++) CHECK_NEAR(adv[i], 0.0, 1e-6);
    const unsigned char all[4] = {1, 1, 1, 1};
    double q[4] = {1, 2, 3, 4};
    CHECK_EQ_INT(grpo_fill_unscored(q, all, 4, 4), 0);
    CHECK_NEAR(q[3], 4.0, 0);
}

int main(void) {
    test_advantages();
    test_fill_unscored();
    test_loss_fixtures();
    test_loss_finite_differences();
    test_schedules_and_adamw();
    return TEST_DONE();
}
