/*
 * tests/trainer/test_grpo.c: the GRPO objective (trainer/grpo.c) against the real TRL, and the optimizer.
 *
 * The fixtures (tests/fixtures/grpo/generation.json and loss.json) are made by tools/make_grpo_fixtures.py,
 * which calls trl 1.16.0's own GRPOTrainer._generate_and_score_completions and _compute_loss on fixed
 * inputs (generation and rewards stubbed) and records torch autograd's gradients:
 * - generation.json: advantages for scale_rewards group / batch / none and TRL's boolean spellings,
 *   num_items_in_batch with and without mask_truncated_completions, and every metric TRL logs there
 *   (reward, reward_std, frac_reward_zero_std, rewards/<f>/mean|std, completions/..., num_tokens);
 * - loss.json: every loss type (grpo, bnpo, dr_grpo, dapo, cispo, sapo, luspo, vespo) × token / sequence
 *   importance sampling × beta 0 / 0.04 × {plain; epsilon_high + delta + top_entropy_quantile} plus
 *   use_bias_correction_kl off and entropy_coef on, off-policy and on-policy (old = logp), with
 *   steps_per_generation 4 != gradient_accumulation_steps 2: the loss, dLoss/dlogp, dLoss/dentropy, the
 *   entropy mask and every metric _compute_loss logs (the same set of names, equal values).
 * - vllm_is.json: TRL's importance-sampling correction (vllm_importance_sampling_correction) for every mode
 *   (token/sequence × truncate/mask) × clip values (None/3, 0.5/2, 0.9/1.1, 0.8/None) × loss types dapo, grpo at
 *   the sequence level, sapo, cispo, vespo (token modes; TRL refuses the sequence modes) and dapo with beta 0.04,
 *   on sampling log-probs that differ from the training forward's (one of them NaN): the ratio, the five
 *   sampling/... metrics of _generate_and_score_completions, and _compute_loss's loss, dLoss/dlogp and metrics.
 * Tolerances: loss and gradients relative error < 1e-5 (TRL computes in float32); metrics equal to float32
 * precision. The largest errors are printed.
 * - a central finite difference of grpo_loss itself agrees with its gradient where no kink is near;
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
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "trl_version");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "1.16.0") != 0) {
        fprintf(stderr, "%s: not made from trl 1.16.0\n", path);
        exit(1);
    }
    return j;
}

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) { fprintf(stderr, "fixture: no '%s'\n", key); exit(1); }
    return v;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    if (!cJSON_IsNumber(v)) { fprintf(stderr, "fixture: '%s' is not a number\n", key); exit(1); }
    return v->valuedouble;
}

/* A JSON array of numbers (or of arrays of numbers, flattened row by row) into out (n values). */
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

static int flatten(const cJSON *a, float *out, int n) {
    double tmp[256];
    int k = flatten_d(a, tmp, n < 256 ? n : 256);
    for (int i = 0; i < k && i < n; i++) out[i] = (float)tmp[i];
    return k;
}

/* relative error against a float32 reference: |x − ref| / max(|ref|, floor) */
static double rel_err(double x, double ref, double floor_) {
    return fabs(x - ref) / fmax(fabs(ref), floor_);
}

static double worst_gen_adv = 0, worst_gen_metric = 0;

static void test_generation(void) {
    cJSON *j = load_json("generation.json");
    const cJSON *c;
    int ncases = 0, masked_cases = 0;
    cJSON_ArrayForEach(c, item(j, "cases")) {
        enum { MAXN = 64 };
        double rpf[4 * MAXN], weights[4], rewards[MAXN] = {0}, want_adv[MAXN];
        int len[MAXN], term[MAXN];
        const cJSON *cfg = item(c, "config");
        const int N = flatten_d(item(c, "advantages"), want_adv, MAXN);
        CHECK_EQ_INT(flatten_d(item(c, "rewards_per_func"), rpf, 4 * MAXN), 4 * N);
        CHECK_EQ_INT(flatten_d(item(c, "reward_weights"), weights, 4), 4);
        double tmp[MAXN];
        CHECK_EQ_INT(flatten_d(item(c, "completion_lengths"), tmp, MAXN), N);
        for (int i = 0; i < N; i++) len[i] = (int)tmp[i];
        CHECK_EQ_INT(flatten_d(item(c, "terminated"), tmp, MAXN), N);
        for (int i = 0; i < N; i++) term[i] = (int)tmp[i];
        for (int i = 0; i < N; i++)
            for (int f = 0; f < 4; f++) rewards[i] += weights[f] * rpf[f * N + i];
        const int G = (int)num(cfg, "num_generations");
        const char *scale = item(cfg, "scale_rewards_resolved")->valuestring;
        CHECK(grpo_scale_from_name(scale) >= 0);
        float adv[MAXN];
        double rstd, fzero;
        grpo_advantages(rewards, N, G, (grpo_scale)grpo_scale_from_name(scale), adv, &rstd, &fzero);
        for (int i = 0; i < N; i++) {
            double e = rel_err(adv[i], want_adv[i], 1.0);
            worst_gen_adv = fmax(worst_gen_adv, e);
            CHECK_MSG(e < 1e-5, "%s adv[%d]: %.9g vs TRL %.9g", scale, i, adv[i], want_adv[i]);
        }
        const cJSON *m = item(c, "metrics");
        const int mask_trunc = (int)num(cfg, "mask_truncated_completions");
        masked_cases += mask_trunc;
        grpo_completion_stats cs;
        grpo_completion_stats_of(len, term, N, mask_trunc, &cs);
        CHECK_NEAR(cs.num_items_in_batch, num(c, "num_items_in_batch"), 0);
        const double P = num(c, "prompt_length");
        struct { const char *name; double value; } mine[] = {
            {"reward", grpo_mean(rewards, N)},
            {"reward_std", rstd},
            {"frac_reward_zero_std", fzero},
            {"completions/mean_length", cs.mean_length},
            {"completions/min_length", cs.min_length},
            {"completions/max_length", cs.max_length},
            {"completions/mean_terminated_length", cs.mean_terminated_length},
            {"completions/min_terminated_length", cs.min_terminated_length},
            {"completions/max_terminated_length", cs.max_terminated_length},
            {"completions/clipped_ratio", cs.clipped_ratio},
            {"num_tokens", P * N + cs.mean_length * N},
        };
        const int nm = (int)(sizeof mine / sizeof mine[0]);
        int matched = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, m) {
            double want = e->valuedouble, got = NAN;
            int found = 0;
            for (int k = 0; k < nm; k++) if (!strcmp(mine[k].name, e->string)) { got = mine[k].value; found = 1; }
            static const char *const funcs[4] = {"function_works", "no_cheating", "strategy_succeeds", "game_progress"};
            for (int f = 0; f < 4 && !found; f++) {
                char name[96];
                snprintf(name, sizeof name, "rewards/%s/mean", funcs[f]);
                if (!strcmp(name, e->string)) { got = grpo_mean(rpf + f * N, N); found = 1; }
                snprintf(name, sizeof name, "rewards/%s/std", funcs[f]);
                if (!strcmp(name, e->string)) { got = grpo_std(rpf + f * N, N); found = 1; }
            }
            CHECK_MSG(found, "TRL logs '%s', grpo2048 computes no such generation metric", e->string);
            if (!found) continue;
            matched++;
            double err = rel_err(got, want, 1.0);
            worst_gen_metric = fmax(worst_gen_metric, err);
            CHECK_MSG(err < 1e-6, "%s: %.9g vs TRL %.9g", e->string, got, want);
        }
        CHECK_EQ_INT(matched, nm + 8);
        ncases++;
    }
    CHECK_EQ_INT(ncases, 12);
    CHECK(masked_cases >= 5);
    cJSON_Delete(j);
    CHECK_EQ_INT(grpo_loss_type_from_name("dapo"), LOSS_DAPO);
    CHECK_EQ_INT(grpo_loss_type_from_name("vespo"), LOSS_VESPO);
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
    CHECK_EQ_INT(flatten(item(in, "logp"), x->logp, n), n);
    CHECK_EQ_INT(flatten(item(in, "old_logp"), x->old, n), n);
    CHECK_EQ_INT(flatten(item(in, "ref_logp"), x->ref, n), n);
    CHECK_EQ_INT(flatten(item(in, "entropy"), x->ent, n), n);
    CHECK_EQ_INT(flatten(item(in, "mask"), x->mask, n), n);
    CHECK_EQ_INT(flatten(item(in, "advantages"), x->adv, 8), x->B);
}

static grpo_loss_params params_of(const cJSON *a) {
    const cJSON *delta = item(a, "delta");
    grpo_loss_params p;
    grpo_loss_params_default(&p, (int)num(a, "max_completion_length"), (int)num(a, "gradient_accumulation_steps"),
                             (int)num(a, "steps_per_generation"));
    p.type = (grpo_loss_type)grpo_loss_type_from_name(item(a, "loss_type")->valuestring);
    p.level = (grpo_is_level)grpo_is_level_from_name(item(a, "importance_sampling_level")->valuestring);
    p.epsilon_low = (float)num(a, "epsilon");
    p.epsilon_high = (float)num(a, "epsilon_high");
    p.delta = cJSON_IsNumber(delta) ? (float)delta->valuedouble : 0.0f;
    p.beta = (float)num(a, "beta");
    p.use_bias_correction_kl = (int)num(a, "use_bias_correction_kl");
    p.num_items_in_batch = num(a, "num_items_in_batch");
    p.sapo_temperature_pos = (float)num(a, "sapo_temperature_pos");
    p.sapo_temperature_neg = (float)num(a, "sapo_temperature_neg");
    p.vespo_k_pos = (float)num(a, "vespo_k_pos");
    p.vespo_lambda_pos = (float)num(a, "vespo_lambda_pos");
    p.vespo_k_neg = (float)num(a, "vespo_k_neg");
    p.vespo_lambda_neg = (float)num(a, "vespo_lambda_neg");
    p.entropy_coef = (float)num(a, "entropy_coef");
    return p;
}

/* worst errors per loss type, printed at the end */
static double worst_loss[8], worst_grad[8], worst_metric[8];
static int cases_of[8];

static void test_loss_fixtures(void) {
    cJSON *j = load_json("loss.json");
    const cJSON *inputs = item(j, "inputs");
    const cJSON *c;
    int ncases = 0, zero_grads = 0, nonzero_grads = 0, onpolicy = 0, bias_off = 0, with_bonus = 0, masked = 0;
    cJSON_ArrayForEach(c, item(j, "cases")) {
        const char *which = item(c, "inputs")->valuestring;
        loss_inputs x;
        read_inputs(item(inputs, which), &x);
        const cJSON *a = item(c, "args");
        grpo_loss_params p = params_of(a);
        const int n = x.B * x.T;
        if (!strcmp(which, "onpolicy")) { memcpy(x.old, x.logp, sizeof x.old); onpolicy++; }
        bias_off += p.beta > 0 && !p.use_bias_correction_kl;
        with_bonus += p.entropy_coef != 0.0f;
        char label[160];
        snprintf(label, sizeof label, "case %d (%s %s %s beta=%g delta=%g q=%g coef=%g bc=%d)", ncases, which,
                 item(a, "loss_type")->valuestring, item(a, "importance_sampling_level")->valuestring, (double)p.beta,
                 (double)p.delta, num(a, "top_entropy_quantile"), (double)p.entropy_coef, p.use_bias_correction_kl);
        float emask[MAXBT], dlogp[MAXBT], dent[MAXBT];
        const double q = num(a, "top_entropy_quantile");
        const cJSON *want_mask = item(c, "entropy_mask");
        if (q < 1.0) {
            float wm[MAXBT];
            grpo_entropy_mask(x.ent, x.mask, n, 1.0 - q, emask);
            CHECK_EQ_INT(flatten(want_mask, wm, n), n);
            int same = 1;
            for (int i = 0; i < n; i++) same &= emask[i] == wm[i];
            CHECK_MSG(same, "%s: entropy mask differs from TRL's", label);
            masked++;
        } else {
            CHECK(cJSON_IsNull(want_mask));
        }
        grpo_loss_stats st;
        double loss = grpo_loss(&p, x.B, x.T, x.logp, x.old, p.beta > 0 ? x.ref : NULL, x.adv, x.mask,
                                q < 1.0 ? emask : NULL, x.ent, dlogp, dent, &st);
        const double want = num(c, "loss");
        const int t = (int)p.type;
        cases_of[t]++;
        double e = rel_err(loss, want, 1e-6);
        worst_loss[t] = fmax(worst_loss[t], e);
        CHECK_MSG(e < 1e-5, "%s: loss %.9g vs TRL %.9g", label, loss, want);
        /* gradients: relative to the case's largest TRL gradient (float32 round-off of small entries) */
        double wg[MAXBT], wd[MAXBT], gmax = 0;
        CHECK_EQ_INT(flatten_d(item(c, "dlogp"), wg, n), n);
        for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(wg[i]));
        for (int i = 0; i < n; i++) {
            double ge = fabs(dlogp[i] - wg[i]) / fmax(fmax(fabs(wg[i]), 1e-3 * gmax), 1e-12);
            worst_grad[t] = fmax(worst_grad[t], ge);
            CHECK_MSG(ge < 1e-5, "%s token %d: dlogp %.9g vs TRL autograd %.9g", label, i, dlogp[i], wg[i]);
            if (x.mask[i] != 0.0f) { zero_grads += wg[i] == 0.0; nonzero_grads += wg[i] != 0.0; }
        }
        const cJSON *wdj = item(c, "dentropy");
        if (p.entropy_coef != 0.0f) {
            CHECK_EQ_INT(flatten_d(wdj, wd, n), n);
            for (int i = 0; i < n; i++) {
                double ge = rel_err(dent[i], wd[i], 1e-9);
                worst_grad[t] = fmax(worst_grad[t], ge);
                CHECK_MSG(ge < 1e-5, "%s token %d: dentropy %.9g vs TRL %.9g", label, i, dent[i], wd[i]);
            }
        } else {
            CHECK(cJSON_IsNull(wdj));
        }
        /* the metrics: the same names TRL logs, equal values */
        const int kind = grpo_loss_metric_kind(p.type);
        struct { const char *name; double value; int logged; } mine[] = {
            {"entropy", st.entropy, 1},
            {"kl", st.kl, p.beta > 0},
            {"clip_ratio/low_mean", st.clip_low, kind == 1},
            {"clip_ratio/high_mean", st.clip_high, kind == 1},
            {"clip_ratio/region_mean", st.clip_region, kind == 1},
            {"clip_ratio/low_min", st.clip_low_min, kind == 1},
            {"clip_ratio/high_max", st.clip_high_max, kind == 1},
            {"cispo_clip_ratio", st.cispo_clip, kind == 2},
            {"vespo/phi_seq_mean", st.vespo_phi_mean, kind == 3},
            {"policy_loss", st.policy_loss, p.entropy_coef != 0.0f},
            {"entropy_coef", p.entropy_coef, p.entropy_coef != 0.0f},
        };
        const int nm = (int)(sizeof mine / sizeof mine[0]);
        int expected = 0, matched = 0;
        for (int k = 0; k < nm; k++) expected += mine[k].logged;
        const cJSON *me;
        cJSON_ArrayForEach(me, item(c, "metrics")) {
            int found = 0;
            for (int k = 0; k < nm; k++) {
                if (strcmp(mine[k].name, me->string) != 0) continue;
                found = 1;
                CHECK_MSG(mine[k].logged, "%s: TRL logs %s, grpo2048 would not", label, me->string);
                double err = rel_err(mine[k].value, me->valuedouble, 1.0);
                worst_metric[t] = fmax(worst_metric[t], err);
                CHECK_MSG(err < 1e-6, "%s: %s %.9g vs TRL %.9g", label, me->string, mine[k].value, me->valuedouble);
                matched += mine[k].logged;
            }
            CHECK_MSG(found, "%s: TRL logs '%s', which grpo2048 does not compute", label, me->string);
        }
        CHECK_MSG(matched == expected, "%s: %d of the %d metrics grpo2048 logs are in TRL's log", label, matched, expected);
        double active = 0;
        for (int i = 0; i < n; i++) active += x.mask[i];
        CHECK_NEAR(st.tokens, active, 0);
        ncases++;
    }
    CHECK_EQ_INT(ncases, 192);
    CHECK(onpolicy > 0 && bias_off > 0 && with_bonus > 0 && masked > 0);
    /* the fixtures exercise both clipped (zero-gradient) and unclipped tokens */
    CHECK(zero_grads > 0 && nonzero_grads > 0);
    cJSON_Delete(j);
}

/* vllm_is.json: grpo_vllm_is_ratio (+ metrics) and grpo_loss_is against TRL's own correction */
static double worst_is_ratio = 0, worst_is_metric = 0, worst_is_loss = 0, worst_is_grad = 0, worst_is_lmetric = 0;

static void test_vllm_is_fixtures(void) {
    cJSON *j = load_json("vllm_is.json");
    const cJSON *in = item(j, "inputs");
    const int N = (int)num(in, "N"), T = (int)num(in, "T"), n = N * T;
    CHECK(n <= MAXBT && N <= 8);
    float old[MAXBT], samp[MAXBT], logp[MAXBT], ent[MAXBT], ref[MAXBT], mask[MAXBT];
    CHECK_EQ_INT(flatten(item(in, "old_logp"), old, n), n);
    CHECK_EQ_INT(flatten(item(in, "logp"), logp, n), n);
    CHECK_EQ_INT(flatten(item(in, "entropy"), ent, n), n);
    CHECK_EQ_INT(flatten(item(in, "ref_logp"), ref, n), n);
    int k = 0, nans = 0;
    const cJSON *row, *e;
    cJSON_ArrayForEach(row, item(in, "sampling_logp")) cJSON_ArrayForEach(e, row) {
        if (k < MAXBT) samp[k] = cJSON_IsNull(e) ? NAN : (float)e->valuedouble;
        nans += cJSON_IsNull(e);
        k++;
    }
    CHECK_EQ_INT(k, n);
    CHECK_EQ_INT(nans, 1);   /* an unscored token: ratio 1, left out of the difference metrics */
    k = 0;
    cJSON_ArrayForEach(e, item(in, "completion_lengths")) {
        for (int t = 0; t < T; t++) mask[k * T + t] = t < e->valueint ? 1.0f : 0.0f;
        k++;
    }
    CHECK_EQ_INT(k, N);
    int ncases = 0, per_mode[4] = {0}, masked_zero = 0, clipped = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(j, "cases")) {
        const cJSON *a = item(c, "args");
        grpo_vllm_is_params ip;
        ip.mode = (grpo_vllm_is_mode)grpo_vllm_is_mode_from_name(item(a, "vllm_importance_sampling_mode")->valuestring);
        CHECK((int)ip.mode >= 0);
        const cJSON *cmin = item(a, "vllm_importance_sampling_clip_min"), *cmax = item(a, "vllm_importance_sampling_clip_max");
        ip.clip_min = cJSON_IsNumber(cmin) ? cmin->valuedouble : NAN;
        ip.clip_max = cJSON_IsNumber(cmax) ? cmax->valuedouble : NAN;
        char label[200];
        snprintf(label, sizeof label, "vllm_is case %d (%s %s %s clip %g..%g beta %g)", ncases,
                 item(a, "loss_type")->valuestring, item(a, "importance_sampling_level")->valuestring,
                 item(a, "vllm_importance_sampling_mode")->valuestring, ip.clip_min, ip.clip_max, num(a, "beta"));
        /* the ratio and the generation's metrics */
        float ratio[MAXBT];
        double want_ratio[MAXBT];
        grpo_vllm_is_acc acc;
        memset(&acc, 0, sizeof acc);
        grpo_vllm_is_ratio(&ip, N, T, old, samp, mask, ratio, &acc);
        CHECK_EQ_INT(flatten_d(item(c, "importance_sampling_ratio"), want_ratio, n), n);
        for (int i = 0; i < n; i++) {
            if (mask[i] == 0.0f && ip.mode <= VLLM_IS_TOKEN_MASK) continue;   /* padding: never read (mask 0) */
            double err = rel_err(ratio[i], want_ratio[i], 1e-6);
            worst_is_ratio = fmax(worst_is_ratio, err);
            CHECK_MSG(err < 1e-5, "%s token %d: ratio %.9g vs TRL %.9g", label, i, ratio[i], want_ratio[i]);
            masked_zero += want_ratio[i] == 0.0;
            clipped += want_ratio[i] == (float)ip.clip_min || want_ratio[i] == (float)ip.clip_max;
        }
        grpo_vllm_is_stats vs;
        grpo_vllm_is_metrics(&acc, &vs);
        struct { const char *name; double v; } gm[] = {
            {"sampling/sampling_logp_difference/mean", vs.logp_diff_mean},
            {"sampling/sampling_logp_difference/max", vs.logp_diff_max},
            {"sampling/importance_sampling_ratio/min", vs.ratio_min},
            {"sampling/importance_sampling_ratio/mean", vs.ratio_mean},
            {"sampling/importance_sampling_ratio/max", vs.ratio_max},
        };
        int seen = 0;
        cJSON_ArrayForEach(e, item(c, "generation_metrics")) {
            int found = 0;
            for (int m = 0; m < 5; m++) {
                if (strcmp(gm[m].name, e->string) != 0) continue;
                found = 1;
                double err = rel_err(gm[m].v, e->valuedouble, 1e-6);
                worst_is_metric = fmax(worst_is_metric, err);
                CHECK_MSG(err < 1e-5, "%s: %s %.9g vs TRL %.9g", label, e->string, gm[m].v, e->valuedouble);
            }
            CHECK_MSG(found, "%s: TRL logs %s, grpo2048 does not", label, e->string);
            seen += found;
        }
        CHECK_EQ_INT(seen, 5);
        /* the loss with the ratio */
        grpo_loss_params p;
        grpo_loss_params_default(&p, (int)num(a, "max_completion_length"), (int)num(a, "gradient_accumulation_steps"),
                                 (int)num(a, "steps_per_generation"));
        p.type = (grpo_loss_type)grpo_loss_type_from_name(item(a, "loss_type")->valuestring);
        p.level = (grpo_is_level)grpo_is_level_from_name(item(a, "importance_sampling_level")->valuestring);
        p.epsilon_low = (float)num(a, "epsilon");
        p.epsilon_high = (float)num(a, "epsilon_high");
        p.beta = (float)num(a, "beta");
        p.num_items_in_batch = num(c, "num_items_in_batch");
        float adv[8], dlogp[MAXBT];
        CHECK_EQ_INT(flatten(item(c, "advantages"), adv, 8), N);
        grpo_loss_stats st;
        const double loss = grpo_loss_is(&p, N, T, logp, old, p.beta > 0 ? ref : NULL, adv, mask, NULL, ent, ratio,
                                         dlogp, NULL, &st);
        /* relative to the size of the summed terms: the same loss with |advantages| (no cancellation between
         * positive and negative advantages, which TRL's float32 sum rounds at ~1e-8 absolute) */
        float aadv[8], dscratch[MAXBT];
        for (int b = 0; b < N; b++) aadv[b] = fabsf(adv[b]);
        grpo_loss_stats st2;
        const double scale = fabs(grpo_loss_is(&p, N, T, logp, old, p.beta > 0 ? ref : NULL, aadv, mask, NULL, ent,
                                               ratio, dscratch, NULL, &st2));
        double err = rel_err(loss, num(c, "loss"), fmax(scale, 1e-6));
        worst_is_loss = fmax(worst_is_loss, err);
        CHECK_MSG(err < 1e-5, "%s: loss %.9g vs TRL %.9g", label, loss, num(c, "loss"));
        double wg[MAXBT], gmax = 0;
        CHECK_EQ_INT(flatten_d(item(c, "dlogp"), wg, n), n);
        for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(wg[i]));
        for (int i = 0; i < n; i++) {
            double ge = fabs(dlogp[i] - wg[i]) / fmax(fmax(fabs(wg[i]), 1e-3 * gmax), 1e-12);
            worst_is_grad = fmax(worst_is_grad, ge);
            CHECK_MSG(ge < 1e-5, "%s token %d: dlogp %.9g vs TRL autograd %.9g", label, i, dlogp[i], wg[i]);
        }
        const int kind = grpo_loss_metric_kind(p.type);
        struct { const char *name; double value; } lm[] = {
            {"entropy", st.entropy}, {"kl", st.kl}, {"clip_ratio/low_mean", st.clip_low},
            {"clip_ratio/high_mean", st.clip_high}, {"clip_ratio/region_mean", st.clip_region},
            {"clip_ratio/low_min", st.clip_low_min}, {"clip_ratio/high_max", st.clip_high_max},
            {"cispo_clip_ratio", st.cispo_clip}, {"vespo/phi_seq_mean", st.vespo_phi_mean},
        };
        int nlm = 0;
        cJSON_ArrayForEach(e, item(c, "metrics")) {
            int found = 0;
            for (int m = 0; m < (int)(sizeof lm / sizeof lm[0]); m++) {
                if (strcmp(lm[m].name, e->string) != 0) continue;
                found = 1;
                double me = rel_err(lm[m].value, e->valuedouble, 1.0);
                worst_is_lmetric = fmax(worst_is_lmetric, me);
                CHECK_MSG(me < 1e-5, "%s: %s %.9g vs TRL %.9g", label, e->string, lm[m].value, e->valuedouble);
            }
            CHECK_MSG(found, "%s: TRL logs '%s', which this test does not compare", label, e->string);
            nlm++;
        }
        CHECK(nlm == 1 + (p.beta > 0) + (kind == 1 ? 5 : kind ? 1 : 0));
        per_mode[ip.mode]++;
        ncases++;
    }
    CHECK_EQ_INT(ncases, 88);
    for (int m = 0; m < 4; m++) CHECK(per_mode[m] >= 16);
    CHECK(masked_zero > 0 && clipped > 0);   /* the fixtures mask and truncate */
    /* mode names */
    CHECK_EQ_INT(grpo_vllm_is_mode_from_name("sequence_mask"), VLLM_IS_SEQUENCE_MASK);
    CHECK_EQ_INT(grpo_vllm_is_mode_from_name("token"), -1);
    cJSON_Delete(j);
}

/* The mask the old code computed: the quantile in double. The fixtures must hold cases where it differs. */
static void entropy_mask_double(const float *entropy, const float *mask, int n, double quantile, float *out) {
    double v[64];
    int k = 0;
    for (int i = 0; i < n; i++) if (mask[i] != 0.0f) v[k++] = entropy[i];
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) { double t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
    double thr = 0;
    if (k) {
        double rank = quantile * (k - 1);
        int lo = (int)floor(rank), hi = (int)ceil(rank);
        thr = v[lo] + (v[hi] - v[lo]) * (rank - lo);
    }
    for (int i = 0; i < n; i++) out[i] = k && mask[i] != 0.0f && entropy[i] >= thr ? 1.0f : 0.0f;
}

/* get_high_entropy_mask on 300 random micro-batches: equal masks, including where float32 matters. */
static void test_entropy_mask_fixtures(void) {
    cJSON *j = load_json("entropy_mask.json");
    const cJSON *c;
    int ncases = 0, double_differs = 0;
    cJSON_ArrayForEach(c, item(j, "cases")) {
        double lens[8], ent[64];
        const int B = flatten_d(item(c, "lens"), lens, 8);
        const int n = flatten_d(item(c, "entropy"), ent, 64);
        const int T = n / B;
        float e[64], m[64], out[64], od[64];
        for (int i = 0; i < n; i++) { e[i] = (float)ent[i]; m[i] = (i % T) < lens[i / T] ? 1.0f : 0.0f; }
        const double q = num(c, "top_entropy_quantile");
        const char *want = item(c, "mask")->valuestring;
        CHECK_EQ_INT((int)strlen(want), n);
        grpo_entropy_mask(e, m, n, 1.0 - q, out);
        entropy_mask_double(e, m, n, 1.0 - q, od);
        int same = 1, same_d = 1;
        for (int i = 0; i < n; i++) { same &= out[i] == (want[i] == '1'); same_d &= od[i] == (want[i] == '1'); }
        CHECK_MSG(same, "entropy-mask case %d: differs from TRL's get_high_entropy_mask", ncases);
        double_differs += !same_d;
        ncases++;
    }
    CHECK_EQ_INT(ncases, 300);
    printf("entropy masks: %d cases equal TRL's; the quantile in double would differ in %d\n", ncases, double_differs);
    CHECK(double_differs > 0);
    cJSON_Delete(j);
}

/* grpo_loss against central differences of itself, on tokens whose ratio is away from every kink. */
static void test_loss_finite_differences(void) {
    cJSON *j = load_json("loss.json");
    const cJSON *inputs = item(j, "inputs");
    const cJSON *c;
    int checked = 0;
    cJSON_ArrayForEach(c, item(j, "cases")) {
        loss_inputs x;
        const char *which = item(c, "inputs")->valuestring;
        read_inputs(item(inputs, which), &x);
        grpo_loss_params p = params_of(item(c, "args"));
        /* a sequence's ratio moves with each of its tokens (kinks are shared); cispo and vespo detach a
         * ratio-dependent weight, so their autograd gradient is not the derivative of the loss */
        if (p.level != IS_TOKEN || p.type == LOSS_CISPO || p.type == LOSS_VESPO || !strcmp(which, "onpolicy")) continue;
        const int n = x.B * x.T;
        float dlogp[MAXBT], scratch[MAXBT], dent[MAXBT];
        grpo_loss_stats st;
        grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, x.ent, dlogp, dent, &st);
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
            double up = grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, x.ent, scratch, dent, &st);
            x.logp[i] = save - (float)h;
            double dn = grpo_loss(&p, x.B, x.T, x.logp, x.old, x.ref, x.adv, x.mask, NULL, x.ent, scratch, dent, &st);
            x.logp[i] = save;
            double h_eff = ((double)(save + (float)h) - (double)(save - (float)h)) / 2;
            double fd = (up - dn) / (2 * h_eff);
            CHECK_MSG(fabs(fd - dlogp[i]) <= 2e-5 + 1e-3 * fabs(fd), "token %d: dlogp %.8g vs finite difference %.8g", i,
                      dlogp[i], fd);
            checked++;
        }
    }
    CHECK(checked > 100);
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
    test_generation();
    test_fill_unscored();
    test_loss_fixtures();
    test_entropy_mask_fixtures();
    printf("largest relative errors against trl 1.16.0: generation advantages %.2e, generation metrics %.2e\n",
           worst_gen_adv, worst_gen_metric);
    static const char *const names[8] = {"grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"};
    for (int t = 0; t < 8; t++)
        printf("  %-8s %3d cases: loss %.2e, gradient %.2e, metrics %.2e\n", names[t], cases_of[t], worst_loss[t],
               worst_grad[t], worst_metric[t]);
    test_vllm_is_fixtures();
    printf("  vllm importance sampling (88 cases): ratio %.2e, sampling/ metrics %.2e, loss %.2e (of the terms' "
           "size), gradient %.2e, "
           "loss metrics %.2e\n", worst_is_ratio, worst_is_metric, worst_is_loss, worst_is_grad, worst_is_lmetric);
    test_loss_finite_differences();
    test_schedules_and_adamw();
    return TEST_DONE();
}
