/*
 * bench/bench_checkpointing.c: what gradient checkpointing (llama_set_gradient_checkpointing) saves
 * and costs on the CPU model, with random weights: for each mode (off, then on) a fresh child process
 * builds the model, runs one warm-up llama_forward_logprobs + llama_backward_logprobs (which
 * allocates the activation buffers) and `iters` timed ones on B x T random tokens (dlogp = 1/N on
 * every position), and reports
 *   - the activation bytes llama_activation_bytes_ex predicts for the mode,
 *   - RSS after building the model and touching its gradients (parameters + gradients) and the
 *     child's peak RSS (getrusage ru_maxrss, read by the parent from wait4), whose difference is what
 *     the training pass adds (activations, attention scratch),
 *   - forward, backward and step wall time, and the step's CPU time (all threads: with
 *     OMP_NUM_THREADS=1 the figure least disturbed by other processes on a shared machine): the
 *     minimum and the median over iters.
 * One process per mode, so the second mode's peak is not the first one's.
 *
 * Usage: bench_checkpointing [--shape smollm2|qwen2.5-0.5b|tiny] [--b 8] [--t 512] [--iters 2]
 *                            [--mode both|off|on]
 *   smollm2: SmolLM2-135M (L=30, C=576, NH=9, NKV=3, F=1536, V=49152, tied);
 *   qwen2.5-0.5b: Qwen2.5-0.5B (L=24, C=896, NH=14, NKV=2, F=4864, V=151936, tied, q/k/v bias);
 *   tiny: the embedded default policy's shape (configs/default.yaml's model/default).
 * Threads: OMP_NUM_THREADS.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/llama.h"
#include "model/llama_rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of this process (all threads). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* VmRSS of this process in KiB (0 if unreadable). */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kib = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

static int shape_config(llama_config *c, const char *shape) {
    memset(c, 0, sizeof *c);
    c->max_position_embeddings = 8192;
    c->rms_norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->tie_word_embeddings = 1;
    c->bos_token_id = -1;
    c->pad_token_id = -1;
    strcpy(c->architecture, "LlamaForCausalLM");
    if (!strcmp(shape, "smollm2")) {
        c->num_hidden_layers = 30; c->hidden_size = 576; c->num_attention_heads = 9; c->num_key_value_heads = 3;
        c->intermediate_size = 1536; c->vocab_size = 49152;
    } else if (!strcmp(shape, "qwen2.5-0.5b")) {
        strcpy(c->architecture, "Qwen2ForCausalLM");
        c->attention_bias = 1;
        c->num_hidden_layers = 24; c->hidden_size = 896; c->num_attention_heads = 14; c->num_key_value_heads = 2;
        c->intermediate_size = 4864; c->vocab_size = 151936;
    } else if (!strcmp(shape, "tiny")) {
        char err[256];
        if (llama_config_from_json(c, "model/default/config.json", err, sizeof err) != 0) {
            fprintf(stderr, "%s (run from the source root)\n", err);
            return -1;
        }
        return 0;
    } else {
        return -1;
    }
    c->head_dim = c->hidden_size / c->num_attention_heads;
    return 0;
}

/* One mode in this (child) process: prints its line, returns 0 or 1. */
static int run_mode(const llama_config *c, int ckpt, int B, int T, int iters) {
    llama_model m;
    if (llama_init_random(&m, c, 1, 0.02f) != 0) {
        fprintf(stderr, "llama_init_random failed\n");
        return 1;
    }
    llama_set_gradient_checkpointing(&m, ckpt);
    size_t N = (size_t)B * T;
    int *tok = malloc(sizeof(int) * N);
    float *logp = malloc(sizeof(float) * N), *dlogp = malloc(sizeof(float) * N);
    llama_rng r;
    llama_rng_seed(&r, 7, 0);
    for (size_t i = 0; i < N; i++) {
        tok[i] = (int)(llama_rng_next(&r) % (uint64_t)c->vocab_size);
        dlogp[i] = 1.0f / (float)N;
    }
    llama_zero_grad(&m); /* touches the gradient pages, so that the baseline holds parameters and gradients */
    long rss_model = rss_kib();
    double *tf = malloc(sizeof(double) * iters), *tb = malloc(sizeof(double) * iters);
    double *ts = malloc(sizeof(double) * iters), *tc = malloc(sizeof(double) * iters);
    for (int it = -1; it < iters; it++) { /* it = -1: warm-up (allocates) */
        double c0 = cpu_now(), t0 = now();
        if (llama_forward_logprobs(&m, tok, B, T, logp, NULL) != 0) {
            fprintf(stderr, "forward: %s\n", m.err);
            return 1;
        }
        double t1 = now();
        llama_backward_logprobs(&m, dlogp);
        double t2 = now(), c2 = cpu_now();
        if (it >= 0) {
            tc[it] = c2 - c0;
            tf[it] = t1 - t0;
            tb[it] = t2 - t1;
            ts[it] = t2 - t0;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("checkpointing %-3s: activations %.1f MiB (llama_activation_bytes_ex); RSS after init %.1f MiB, "
           "peak %.1f MiB (+%.1f MiB)\n", ckpt ? "on" : "off", llama_activation_bytes_ex(c, N, ckpt) / 1048576.0,
           rss_model / 1024.0, ru.ru_maxrss / 1024.0, (ru.ru_maxrss - rss_model) / 1024.0);
    qsort(tf, iters, sizeof(double), cmp_double);
    qsort(tb, iters, sizeof(double), cmp_double);
    qsort(ts, iters, sizeof(double), cmp_double);
    qsort(tc, iters, sizeof(double), cmp_double);
    printf("checkpointing %-3s: ms min / median of %d: forward %.1f / %.1f, backward %.1f / %.1f, "
           "step %.1f / %.1f; step CPU time %.1f / %.1f\n", ckpt ? "on" : "off", iters, 1e3 * tf[0],
           1e3 * tf[iters / 2], 1e3 * tb[0], 1e3 * tb[iters / 2], 1e3 * ts[0], 1e3 * ts[iters / 2], 1e3 * tc[0],
           1e3 * tc[iters / 2]);
    fflush(stdout);
    free(tf);
    free(tb);
    free(ts);
    free(tc);
    free(tok);
    free(logp);
    free(dlogp);
    llama_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    const char *shape = "smollm2", *mode = "both";
    int B = 8, T = 512, iters = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape")) shape = argv[i + 1];
        else if (!strcmp(argv[i], "--b")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--t")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--shape smollm2|qwen2.5-0.5b|tiny] [--b 8] [--t 512] [--iters 2] "
                    "[--mode both|off|on]\n", argv[0]);
            return 2;
        }
    }
    llama_config c;
    if (shape_config(&c, shape) != 0 || B < 1 || T < 1 || iters < 1) {
        fprintf(stderr, "bad arguments (shape '%s', b %d, t %d, iters %d)\n", shape, B, T, iters);
        return 2;
    }
    printf("shape %s: L=%d C=%d NH=%d NKV=%d F=%d V=%d; B x T = %d x %d; %d timed iterations; %d OpenMP threads\n",
           shape, c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
           c.intermediate_size, c.vocab_size, B, T, iters, omp_get_max_threads());
    fflush(stdout);
    int modes[2], nm = 0;
    if (strcmp(mode, "on")) modes[nm++] = 0;
    if (strcmp(mode, "off")) modes[nm++] = 1;
    long peak[2] = {0, 0};
    for (int k = 0; k < nm; k++) {
        pid_t pid = fork(); /* before any OpenMP thread exists in this process */
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(run_mode(&c, modes[k], B, T, iters));
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "the %s run failed\n", modes[k] ? "on" : "off");
            return 1;
        }
        peak[modes[k]] = ru.ru_maxrss;
    }
    if (nm == 2)
        printf("peak RSS: %.1f MiB off, %.1f MiB on: %.1f MiB saved\n", peak[0] / 1024.0, peak[1] / 1024.0,
               (peak[0] - peak[1]) / 1024.0);
    return 0;
}
