/*
 * model/llama_power.c: batched power sampling by block-wise Metropolis–Hastings (see llama_power.h for
 * the algorithm, its source and the acceptance ratio).
 *
 * Why a file of its own rather than a mode of llama_generate: generation advances every row at the
 * same position from one shared prompt, while MH chains are ragged — each resamples from its own
 * position t, over its own prompt — and each chain needs two cache rows (current sequence and
 * proposal) with a copy-on-resample discipline. So this file has its own cache discipline over the
 * shared decode step (llama_decode_forward, llama_decode.c: one token per row at per-row positions,
 * plus a one-row prefill), the same step as llama_generate.c's.
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

/* Copies cache positions [from, to) of row src to row dst in every layer (keys and values). */
static void pw_copy_rows(const llama_model *m, llama_decode_buf *pb, int dst, int src, int from, int to) {
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
static void pw_run(const llama_model *m, llama_decode_buf *pb, const llama_power_params *pp, pw_job *jobs, int n, llama_rng *rng,
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
        llama_decode_forward(m, pb, NULL, na, crow, pos, tok, 1);
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

    llama_decode_buf pb;
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
        !st || !jobs || llama_rope_ensure(m, Tmax) || llama_decode_alloc(&pb, c, 2 * B, Tmax, B, B, Pmax - 1)) {
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
            llama_decode_forward(m, &pb, NULL, 1, &cur[b], &zero, prompts[b], n);
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
    if (have_buf) llama_decode_free(&pb);
    free(cur); free(alt); free(agree); free(len); free(running); free(tpos); free(ytok); free(work);
    free(xlp); free(xlq); free(ylp); free(ylq); free(rng); free(st); free(jobs);
    return rc;
}
