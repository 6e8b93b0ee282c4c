/*
 * model/llama_power.c: batched power sampling by block-wise Metropolis–Hastings (see llama_power.h for
 * the algorithm, its source and the acceptance ratio).
 *
 * Why a file of its own rather than a mode of llama_generate: generation advances every row at the
 * same position from one shared prompt, while MH chains are ragged — each resamples from its own
 * position t, over its own prompt — and each chain needs two cache rows (current sequence and
 * proposal) with a copy-on-resample discipline. So this file has its own cache and its own forward
 * step (pw_forward: one token per row at per-row positions, plus a one-row prefill), built from the
 * same layer kernels as llama_generate.c (llama_internal.h), and leaves llama_generate.c unchanged.
 *
 * Flow of llama_power_sample:
 *   prefill   each distinct prompt's first P-1 tokens once into its chain's current row (copied to
 *             chains with the same prompt, and to each chain's proposal row);
 *   per stage k (cap = min(k * block_size, max_new)):
 *     extend  every chain still running samples from q up to cap or a stop id (pw_run, current rows);
 *     MH      mcmc_steps rounds: every running chain picks its t, its proposal row is brought into
 *             agreement with its current row up to position P-1+t (only the positions that differ
 *             are copied), all proposals run together (pw_run, proposal rows, ragged), then each
 *             chain accepts (swap rows, copy tokens) or rejects with its own uniform draw;
 *     finish chains whose sequence ends with a stop id.
 * pw_run feeds, per step, one token per unfinished job at that job's position: to sample generated
 * token i it feeds token i-1 (the last prompt token for i = 0) at position P-1+i, so the cache row
 * must hold valid keys/values at positions [0, P-1+i) — the invariant every copy below keeps.
 */
#include "model/llama_power.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/llama_internal.h"
#include "model/llama_rng.h"

double llama_power_log_ratio(double alpha, double logp_new, double logp_old, double logq_new, double logq_old,
                             int len_new, int len_old) {
    /* target pi = p^alpha; proposal q at temperature 1/alpha; position t uniform over the current length */
    return alpha * (logp_new - logp_old) + (logq_old - logq_new) + log((double)len_old) - log((double)len_new);
}

typedef struct {
    int rows;            /* cache rows: 2 per chain */
    int Tmax;            /* positions per cache row */
    int rows_cap;        /* work rows of one forward */
    int nthreads;
    int Pmax;            /* longest prefill (P-1 tokens) */
    float *mem;
    float **kc, **vc;    /* (L) each (rows, Tmax, KD) */
    float *x, *ln, *q, *k, *v, *att, *h1, *h2;   /* (rows_cap, C / QD / KD / F) */
    float *xl;           /* (B, C) */
    float *logits;       /* (B, V) */
    float *scores;       /* (nthreads, rep * Tmax) */
    float *lse;          /* (NH, Pmax) */
    float *att_scratch;  /* (nthreads, llama_attention_scratch_floats(Pmax)) */
} pw_buf;

static void pw_free(pw_buf *pb) {
    free(pb->mem);
    free(pb->kc);
    free(pb->vc);
    memset(pb, 0, sizeof *pb);
}

static int pw_alloc(pw_buf *pb, const llama_config *c, int B, int Pmax, int Tmax) {
    memset(pb, 0, sizeof *pb);
    size_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, L = c->num_hidden_layers;
    size_t QD = (size_t)c->num_attention_heads * c->head_dim, KD = (size_t)c->num_key_value_heads * c->head_dim;
    size_t rep = (size_t)(c->num_attention_heads / c->num_key_value_heads);
    pb->rows = 2 * B;
    pb->Tmax = Tmax;
    pb->rows_cap = Pmax > B ? Pmax : B;
    pb->nthreads = omp_get_max_threads();
    pb->Pmax = Pmax > 1 ? Pmax : 1;
    size_t cache = (size_t)pb->rows * Tmax * KD, R = (size_t)pb->rows_cap;
    size_t total = 2 * L * cache + R * (C + C + QD + KD + KD + QD + F + F) + (size_t)B * (C + V) +
                   (size_t)pb->nthreads * rep * Tmax + (size_t)c->num_attention_heads * pb->Pmax +
                   (size_t)pb->nthreads * llama_attention_scratch_floats(pb->Pmax);
    pb->mem = malloc(total * sizeof(float));
    pb->kc = malloc(L * sizeof(float *));
    pb->vc = malloc(L * sizeof(float *));
    if (!pb->mem || !pb->kc || !pb->vc) {
        pw_free(pb);
        return -1;
    }
    float *p = pb->mem;
    for (size_t l = 0; l < L; l++) {
        pb->kc[l] = p; p += cache;
        pb->vc[l] = p; p += cache;
    }
    pb->x = p; p += R * C;
    pb->ln = p; p += R * C;
    pb->q = p; p += R * QD;
    pb->k = p; p += R * KD;
    pb->v = p; p += R * KD;
    pb->att = p; p += R * QD;
    pb->h1 = p; p += R * F;
    pb->h2 = p; p += R * F;
    pb->xl = p; p += (size_t)B * C;
    pb->logits = p; p += (size_t)B * V;
    pb->scores = p; p += (size_t)pb->nthreads * rep * Tmax;
    pb->lse = p; p += (size_t)c->num_attention_heads * pb->Pmax;
    pb->att_scratch = p; p += (size_t)pb->nthreads * llama_attention_scratch_floats(pb->Pmax);
    LLAMA_ASSERT((size_t)(p - pb->mem) == total);
    return 0;
}

/* n == 1: R rows, row r feeds tokens[r] at position pos[r] of cache row crow[r]; leaves the next-token
 * logits of each row in pb->logits (R, V). n > 1: a prefill: R must be 1, pos[0] 0, tokens[0..n) at
 * positions [0, n) of cache row crow[0]; no logits. The math is llama_generate.c's gen_step (the same
 * kernels in the same order), with per-row positions. */
static void pw_forward(const llama_model *m, pw_buf *pb, int R, const int *crow, const int *pos, const int *tokens,
                       int n) {
    const llama_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    const int NH = c->num_attention_heads, NKV = c->num_key_value_heads, HS = c->head_dim;
    const int QD = NH * HS, KD = NKV * HS, rep = NH / NKV, Tmax = pb->Tmax, W = c->sliding_window;
    const int rows = R * n;
    const float eps = c->rms_norm_eps, scale = 1.0f / sqrtf((float)HS);
    LLAMA_ASSERT(rows <= pb->rows_cap && (n == 1 || (R == 1 && pos[0] == 0 && n <= pb->Pmax)));

    for (int i = 0; i < rows; i++) memcpy(pb->x + (size_t)i * C, m->w.wte + (size_t)tokens[i] * C, C * sizeof(float));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const llama_layer_weights *lw = &m->w.layers[l];
        llama_rmsnorm_forward(pb->ln, NULL, pb->x, lw->ln1, rows, C, eps);
        llama_matmul_forward(NULL, pb->q, pb->ln, lw->wq, lw->bq, rows, C, QD, 0.0f);
        llama_matmul_forward(NULL, pb->k, pb->ln, lw->wk, lw->bk, rows, C, KD, 0.0f);
        llama_matmul_forward(NULL, pb->v, pb->ln, lw->wv, lw->bv, rows, C, KD, 0.0f);
        if (lw->qn) { /* Qwen3: per-head RMSNorm of q and k */
            llama_rmsnorm_forward(pb->q, NULL, pb->q, lw->qn, rows * NH, HS, eps);
            llama_rmsnorm_forward(pb->k, NULL, pb->k, lw->kn, rows * NKV, HS, eps);
        }
        if (n > 1) {
            llama_rope_forward(m, pb->q, n, NH, 0, n);
            llama_rope_forward(m, pb->k, n, NKV, 0, n);
        } else {
            for (int r = 0; r < R; r++) {
                llama_rope_forward(m, pb->q + (size_t)r * QD, 1, NH, pos[r], 1);
                llama_rope_forward(m, pb->k + (size_t)r * KD, 1, NKV, pos[r], 1);
            }
        }
        for (int i = 0; i < rows; i++) {
            const int r = n > 1 ? 0 : i, p = n > 1 ? i : pos[i];
            size_t at = ((size_t)crow[r] * Tmax + p) * KD;
            memcpy(pb->kc[l] + at, pb->k + (size_t)i * KD, KD * sizeof(float));
            memcpy(pb->vc[l] + at, pb->v + (size_t)i * KD, KD * sizeof(float));
        }
        const float *kc = pb->kc[l], *vc = pb->vc[l];
        if (n > 1) {
            size_t base = (size_t)crow[0] * Tmax * KD;
            llama_attention_forward(pb->att, pb->lse, pb->att_scratch, pb->nthreads, pb->q, kc + base, vc + base, 1, n,
                                    NH, NKV, HS, W);
        } else {
            size_t work = 0;
            for (int r = 0; r < R; r++) work += (size_t)NH * (pos[r] + 1) * HS;
            /* ragged positions: dynamic scheduling balances them; chunks of several tasks when there are
             * thousands (each task is independent, so the result does not depend on the schedule) */
            int chunk = R * NKV / (pb->nthreads * 16);
            if (chunk < 1) chunk = 1;
            #pragma omp parallel for schedule(dynamic, chunk) num_threads(pb->nthreads) if (work >= LLAMA_OMP_MIN_WORK)
            for (int ik = 0; ik < R * NKV; ik++) {
                const int r = ik / NKV, kh = ik % NKV, h0 = kh * rep, p = pos[r];
                size_t base = (size_t)crow[r] * Tmax * KD + (size_t)kh * HS;
                int j0 = (W > 0 && p - W + 1 > 0) ? p - W + 1 : 0;
                llama_attend_group(pb->att + (size_t)r * QD + (size_t)h0 * HS,
                                   pb->scores + (size_t)omp_get_thread_num() * rep * Tmax,
                                   pb->q + (size_t)r * QD + (size_t)h0 * HS, kc + base, vc + base, KD, j0, p, HS, rep,
                                   scale);
            }
        }
        llama_matmul_forward(NULL, pb->x, pb->att, lw->wo, lw->bo, rows, QD, C, 1.0f);
        llama_rmsnorm_forward(pb->ln, NULL, pb->x, lw->ln2, rows, C, eps);
        llama_matmul_forward(NULL, pb->h1, pb->ln, lw->wg, NULL, rows, C, F, 0.0f);
        llama_matmul_forward(NULL, pb->h2, pb->ln, lw->wu, NULL, rows, C, F, 0.0f);
        llama_swiglu_forward(pb->h1, pb->h1, pb->h2, (size_t)rows * F);
        llama_matmul_forward(NULL, pb->x, pb->h1, lw->wd, NULL, rows, F, C, 1.0f);
    }
    if (n > 1) return;
    llama_rmsnorm_forward(pb->xl, NULL, pb->x, m->w.lnf, R, C, eps);
    llama_sgemm(0, 1, R, V, C, pb->xl, C, m->w.lm_head, C, 0.0f, pb->logits, V);
}

/* Copies cache positions [from, to) of row src to row dst in every layer (keys and values). */
static void pw_copy_rows(const llama_model *m, pw_buf *pb, int dst, int src, int from, int to) {
    if (to <= from) return;
    const size_t KD = (size_t)m->cfg.num_key_value_heads * m->cfg.head_dim;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
        memcpy(pb->kc[l] + ((size_t)dst * pb->Tmax + from) * KD, pb->kc[l] + ((size_t)src * pb->Tmax + from) * KD,
               (size_t)(to - from) * KD * sizeof(float));
        memcpy(pb->vc[l] + ((size_t)dst * pb->Tmax + from) * KD, pb->vc[l] + ((size_t)src * pb->Tmax + from) * KD,
               (size_t)(to - from) * KD * sizeof(float));
    }
}

/* One sequence being sampled by pw_run: tokens seq[next ..] up to cap (exclusive) or a stop id, in cache
 * row `row`; seq[0 .. next) are given (the feed of index next is seq[next-1], or last_prompt when next is 0). */
typedef struct {
    int chain, row, next, cap, last_prompt, P;
    int *seq;
    float *lp, *lq;      /* (max_new) log p and log q of each sampled token */
    int forced;          /* 1: seq[next .. cap) are given; only their log p and log q are computed */
    int done;
} pw_job;

static int pw_is_stop(const llama_model *m, const llama_power_params *pp, int tok) {
    if (pp->stop_ids) {
        for (int i = 0; i < pp->num_stop; i++) if (pp->stop_ids[i] == tok) return 1;
        return 0;
    }
    for (int i = 0; i < m->cfg.num_eos; i++) if (m->cfg.eos_token_ids[i] == tok) return 1;
    return 0;
}

/* Draws a token from q = softmax(alpha * z) with rng (or, when forced >= 0, takes that token without a
 * draw); *lp = log softmax(z)[tok], *lq = log q(tok). */
static int pw_sample(const float *z, int V, double alpha, llama_rng *rng, int forced, float *lp, float *lq) {
    float mx = z[0];
    for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
    double sp = 0.0, sq = 0.0;
    for (int v = 0; v < V; v++) {
        double d = (double)z[v] - mx;
        sp += exp(d);
        sq += exp(alpha * d);
    }
    double u = forced >= 0 ? 0.0 : llama_rng_uniform(rng) * sq, acc = 0.0;
    int tok = forced, last = 0;
    for (int v = 0; v < V && forced < 0; v++) {
        double w = exp(alpha * ((double)z[v] - mx));
        if (w == 0.0) continue;
        acc += w;
        last = v;
        if (u < acc) { tok = v; break; }
    }
    if (tok < 0) tok = last; /* u within rounding of the total */
    double d = (double)z[tok] - mx;
    *lp = (float)(d - log(sp));
    *lq = (float)(alpha * d - log(sq));
    return tok;
}

/* Runs the jobs to completion, all unfinished ones one token per step. Adds the sampled tokens to
 * stats[chain].tokens. work (3 * n ints) is scratch. */
static void pw_run(const llama_model *m, pw_buf *pb, const llama_power_params *pp, pw_job *jobs, int n, llama_rng *rng,
                   llama_power_stats *stats, int *work) {
    int *crow = work, *pos = work + n, *tok = work + 2 * n;
    int *act = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    LLAMA_ASSERT(act != NULL);
    int na = 0;
    for (int j = 0; j < n; j++) {
        jobs[j].done = jobs[j].next >= jobs[j].cap;
        if (!jobs[j].done) act[na++] = j;
    }
    const int V = m->cfg.vocab_size;
    const double alpha = pp->alpha;
    while (na > 0) {
        for (int a = 0; a < na; a++) {
            const pw_job *jb = &jobs[act[a]];
            crow[a] = jb->row;
            pos[a] = jb->P - 1 + jb->next;
            tok[a] = jb->next == 0 ? jb->last_prompt : jb->seq[jb->next - 1];
        }
        pw_forward(m, pb, na, crow, pos, tok, 1);
        #pragma omp parallel for schedule(dynamic, 1) if ((size_t)na * V >= LLAMA_OMP_MIN_WORK)
        for (int a = 0; a < na; a++) {
            pw_job *jb = &jobs[act[a]];
            const int i = jb->next;
            jb->seq[i] = pw_sample(pb->logits + (size_t)a * V, V, alpha, &rng[jb->chain], jb->forced ? jb->seq[i] : -1,
                                   &jb->lp[i], &jb->lq[i]);
        }
        int kept = 0;
        for (int a = 0; a < na; a++) {
            pw_job *jb = &jobs[act[a]];
            if (!jb->forced) stats[jb->chain].tokens++;
            const int t = jb->seq[jb->next++];
            if (jb->next >= jb->cap || (!jb->forced && pw_is_stop(m, pp, t))) jb->done = 1;
            else act[kept++] = act[a];
        }
        na = kept;
    }
    free(act);
}

int llama_power_sample(llama_model *m, const int *const *prompts, const int *P, int B, int max_new,
                       const llama_power_params *pp, const uint64_t *seeds, int *out, int *out_len, float *out_logp,
                       llama_power_stats *stats, char *err, size_t errlen) {
    const llama_config *c = &m->cfg;
    LLAMA_ASSERT(m->state != NULL);
    if (!prompts || !P || !pp || !seeds || !out || !out_len || B < 1 || max_new < 1) {
        snprintf(err, errlen, "llama_power_sample: NULL argument, B=%d < 1 or max_new=%d < 1", B, max_new);
        return -1;
    }
    if (!(pp->alpha > 0.0f) || !isfinite(pp->alpha) || pp->mcmc_steps < 0 || pp->block_size < 1 ||
        (pp->stop_ids && pp->num_stop < 0)) {
        snprintf(err, errlen, "llama_power_sample: needs alpha > 0, mcmc_steps >= 0, block_size >= 1 (got %g, %d, %d)",
                 (double)pp->alpha, pp->mcmc_steps, pp->block_size);
        return -1;
    }
    int Pmax = 0;
    for (int b = 0; b < B; b++) {
        if (!prompts[b] || P[b] < 1) {
            snprintf(err, errlen, "llama_power_sample: chain %d: empty prompt", b);
            return -1;
        }
        if ((long long)P[b] + max_new > c->max_position_embeddings) {
            snprintf(err, errlen, "llama_power_sample: chain %d: P=%d + max_new=%d exceeds max_position_embeddings %d", b,
                     P[b], max_new, c->max_position_embeddings);
            return -1;
        }
        for (int i = 0; i < P[b]; i++)
            if (prompts[b][i] < 0 || prompts[b][i] >= c->vocab_size) {
                snprintf(err, errlen, "llama_power_sample: chain %d: prompt[%d]=%d is not in [0, vocab_size %d)", b, i,
                         prompts[b][i], c->vocab_size);
                return -1;
            }
        if (P[b] > Pmax) Pmax = P[b];
    }
    const int init = pp->init_tokens != NULL;
    for (int b = 0; init && b < B; b++) {
        const int L = pp->init_len ? pp->init_len[b] : 0;
        const int *x = pp->init_tokens + (size_t)b * max_new;
        int bad = L < 1 || L > max_new;
        for (int i = 0; !bad && i < L; i++)
            bad = x[i] < 0 || x[i] >= c->vocab_size || (i < L - 1 && pw_is_stop(m, pp, x[i]));
        if (!bad && L < max_new && !pw_is_stop(m, pp, x[L - 1])) bad = 1;
        if (bad) {
            snprintf(err, errlen, "llama_power_sample: chain %d: init sequence of %d tokens is not a complete completion "
                     "(1..max_new=%d ids in [0, %d), a stop id only at the end, and there unless it has max_new tokens)",
                     b, L, max_new, c->vocab_size);
            return -1;
        }
    }
    const int Tmax = Pmax + max_new;
    llama_power_params prm = *pp;
    if (!prm.log_ratio) prm.log_ratio = llama_power_log_ratio;

    pw_buf pb;
    const size_t BM = (size_t)B * max_new;
    int *cur = malloc(sizeof(int) * B), *alt = malloc(sizeof(int) * B), *agree = malloc(sizeof(int) * B);
    int *len = malloc(sizeof(int) * B), *running = malloc(sizeof(int) * B), *tpos = malloc(sizeof(int) * B);
    int *ytok = malloc(sizeof(int) * BM), *work = malloc(sizeof(int) * 3 * (size_t)B);
    float *xlp = malloc(sizeof(float) * BM), *xlq = malloc(sizeof(float) * BM);
    float *ylp = malloc(sizeof(float) * BM), *ylq = malloc(sizeof(float) * BM);
    llama_rng *rng = malloc(sizeof(llama_rng) * B);
    llama_power_stats *st = calloc((size_t)B, sizeof *st);
    pw_job *jobs = malloc(sizeof(pw_job) * B);
    int rc = -1;
    int have_buf = 0;
    if (!cur || !alt || !agree || !len || !running || !tpos || !ytok || !work || !xlp || !xlq || !ylp || !ylq || !rng ||
        !st || !jobs || llama_rope_ensure(m, Tmax) || pw_alloc(&pb, c, B, Pmax - 1, Tmax)) {
        snprintf(err, errlen, "llama_power_sample: out of memory (B=%d chains, %d positions)", B, Tmax);
        goto done;
    }
    have_buf = 1;
    for (size_t i = 0; i < BM; i++) { out[i] = -1; xlp[i] = 0.0f; xlq[i] = 0.0f; }

    /* prefill: positions [0, P-1) of each distinct prompt once, copied to the chains that share it */
    for (int b = 0; b < B; b++) {
        cur[b] = b;
        alt[b] = B + b;
        len[b] = 0;
        running[b] = 1;
        llama_rng_seed(&rng[b], seeds[b], 0);
        const int n = P[b] - 1;
        agree[b] = n;
        if (n < 1) continue;
        int same = -1;
        for (int e = 0; e < b && same < 0; e++)
            if (prompts[e] == prompts[b] && P[e] == P[b]) same = e;
        if (same >= 0) pw_copy_rows(m, &pb, cur[b], cur[same], 0, n);
        else {
            int zero = 0;
            pw_forward(m, &pb, 1, &cur[b], &zero, prompts[b], n);
        }
        pw_copy_rows(m, &pb, alt[b], cur[b], 0, n);
    }

    if (init) {
        /* given sequences: their keys/values and log-probabilities through the same decode path */
        for (int b = 0; b < B; b++) {
            memcpy(out + (size_t)b * max_new, pp->init_tokens + (size_t)b * max_new, sizeof(int) * pp->init_len[b]);
            jobs[b] = (pw_job){.chain = b, .row = cur[b], .next = 0, .cap = pp->init_len[b],
                               .last_prompt = prompts[b][P[b] - 1], .P = P[b], .seq = out + (size_t)b * max_new,
                               .lp = xlp + (size_t)b * max_new, .lq = xlq + (size_t)b * max_new, .forced = 1};
        }
        pw_run(m, &pb, &prm, jobs, B, rng, st, work);
        for (int b = 0; b < B; b++) len[b] = pp->init_len[b];
    }
    const int stages = init ? 1 : (max_new + prm.block_size - 1) / prm.block_size;
    for (int k = 1; k <= stages; k++) {
        const int cap = k == stages ? max_new : k * prm.block_size;
        /* 1. extend every running chain from its length to cap with q (init: they are complete) */
        int nj = 0;
        for (int b = 0; b < B; b++) {
            if (!running[b]) continue;
            jobs[nj++] = (pw_job){.chain = b, .row = cur[b], .next = len[b], .cap = init ? len[b] : cap,
                                  .last_prompt = prompts[b][P[b] - 1], .P = P[b], .seq = out + (size_t)b * max_new,
                                  .lp = xlp + (size_t)b * max_new, .lq = xlq + (size_t)b * max_new, .forced = init};
        }
        if (nj == 0) break;
        pw_run(m, &pb, &prm, jobs, nj, rng, st, work);
        for (int j = 0; j < nj; j++) len[jobs[j].chain] = jobs[j].next;

        /* 2. mcmc_steps Metropolis–Hastings rounds over the running chains, all proposals batched */
        for (int s = 0; s < prm.mcmc_steps; s++) {
            nj = 0;
            for (int b = 0; b < B; b++) {
                if (!running[b]) continue;
                int t = (int)(llama_rng_uniform(&rng[b]) * len[b]);
                if (t >= len[b]) t = len[b] - 1;
                tpos[b] = t;
                /* the proposal row must hold the current row's keys/values at [0, P-1+t) */
                pw_copy_rows(m, &pb, alt[b], cur[b], agree[b], P[b] - 1 + t);
                if (agree[b] < P[b] - 1 + t) agree[b] = P[b] - 1 + t;
                int *y = ytok + (size_t)b * max_new;
                memcpy(y, out + (size_t)b * max_new, sizeof(int) * (size_t)t);
                jobs[nj++] = (pw_job){.chain = b, .row = alt[b], .next = t, .cap = cap, .last_prompt = prompts[b][P[b] - 1],
                                      .P = P[b], .seq = y, .lp = ylp + (size_t)b * max_new, .lq = ylq + (size_t)b * max_new};
            }
            pw_run(m, &pb, &prm, jobs, nj, rng, st, work);
            for (int j = 0; j < nj; j++) {
                const int b = jobs[j].chain, t = tpos[b], ylen = jobs[j].next;
                const size_t o = (size_t)b * max_new;
                double lp_new = 0, lp_old = 0, lq_new = 0, lq_old = 0;
                for (int i = t; i < ylen; i++) { lp_new += ylp[o + i]; lq_new += ylq[o + i]; }
                for (int i = t; i < len[b]; i++) { lp_old += xlp[o + i]; lq_old += xlq[o + i]; }
                const double lr = prm.log_ratio(prm.alpha, lp_new, lp_old, lq_new, lq_old, ylen, len[b]);
                const double u = llama_rng_uniform(&rng[b]);
                st[b].proposals++;
                /* both rows now agree on [0, P+t): the proposal re-fed token t-1 at position P-1+t */
                agree[b] = P[b] + t;
                if (lr >= 0.0 || u < exp(lr)) {
                    st[b].accepted++;
                    int tmp = cur[b]; cur[b] = alt[b]; alt[b] = tmp;
                    for (int i = t; i < ylen; i++) {
                        out[o + i] = ytok[o + i];
                        xlp[o + i] = ylp[o + i];
                        xlq[o + i] = ylq[o + i];
                    }
                    for (int i = ylen; i < len[b]; i++) { out[o + i] = -1; xlp[o + i] = 0.0f; xlq[o + i] = 0.0f; }
                    len[b] = ylen;
                }
            }
        }
        /* 3. a sequence that ends with a stop id is complete */
        for (int b = 0; b < B; b++)
            if (running[b] && (len[b] >= max_new || pw_is_stop(m, &prm, out[(size_t)b * max_new + len[b] - 1])))
                running[b] = 0;
    }
    for (int b = 0; b < B; b++) {
        out_len[b] = len[b];
        if (out_logp) memcpy(out_logp + (size_t)b * max_new, xlp + (size_t)b * max_new, sizeof(float) * max_new);
        if (stats) stats[b] = st[b];
    }
    rc = 0;
done:
    if (have_buf) pw_free(&pb);
    free(cur); free(alt); free(agree); free(len); free(running); free(tpos); free(ytok); free(work);
    free(xlp); free(xlq); free(ylp); free(ylq); free(rng); free(st); free(jobs);
    return rc;
}
