/*
 * trainer/main.c: the grpo2048 command line — one binary, one subcommand per job.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/blas_select.h"

int cmd_train(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_play(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_best(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "grpo2048: GRPO fine-tuning of a causal language model to write 2048-game strategies.\n\n"
            "usage: grpo2048 COMMAND [ARGS]\n\n"
            "commands:\n"
            "  train CONFIG.yaml [--set key=value ...] [--resume [CHECKPOINT_DIR|latest]]\n"
            "                                            GRPO training (metrics in OUTPUT_DIR/metrics.sqlite)\n"
            "  sft CONFIG.yaml [--set key=value ...]     supervised fine-tuning on a prompt/completion JSONL\n"
            "  play --strategy FILE.py [--games N] [--seed S] [--size N] [--target T] [--timeout SEC]\n"
            "       [--memory MIB] [--max-stuck-moves N]\n"
            "                                            play a strategy through the reward sandbox (JSON lines)\n"
            "  generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--seed S] [--logprobs]\n"
            "                                            sample a completion (JSON)\n"
            "  tokenize --model DIR TEXT                 token ids and pieces (JSON)\n"
            "  runs [DIR]                                the runs in DIR's metrics files: status, steps, rewards\n"
            "  report RUN_DIR|FILE.sqlite [--out FILE.html] [--png DIR]\n"
            "                                            one HTML page: plots, best strategies, config\n"
            "  best RUN_DIR|FILE.sqlite [--top N] [--out DIR]\n"
            "                                            the best distinct strategies as .py files for play\n"
            "  --version                                 build, BLAS library and the kernel set it runs\n\n"
            "`grpo2048 COMMAND --help` describes each command.\n");
}

/* Settings that libraries read once, when they are loaded (before main), so grpo2048 sets them and
 * re-executes itself once; a user's own setting of either variable always wins.
 * - OMP_WAIT_POLICY=passive: OpenMP threads that spin while waiting are a disaster on a shared
 *   machine: when another process holds a core, every small parallel region (a decode step has
 *   dozens) waits a whole scheduler slice for the descheduled thread. Measured with one core busy
 *   elsewhere: generation 7-22 s per step with libgomp's default spinning, 0.3 s with passive.
 * - OPENBLAS_CORETYPE: when OpenBLAS's CPU table is older than the CPU it falls back to SSE3 kernels
 *   (4-8x slower matrix products); model/blas_select.c picks the best kernel set the CPU's features
 *   allow. GRPO2048_BLAS_DETECTED keeps OpenBLAS's own choice for the start-up line. */
static void ensure_runtime_env(char **argv) {
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        changed = 1;
    }
    if (!getenv("OPENBLAS_CORETYPE") && !getenv("GRPO2048_BLAS_DETECTED")) {
        const char *core = blas_preferred_core();
        if (core) {
            setenv("GRPO2048_BLAS_DETECTED", openblas_get_corename(), 1);
            setenv("OPENBLAS_CORETYPE", core, 1);
            changed = 1;
        }
    }
    if (changed) execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the defaults */
}

int main(int argc, char **argv) {
    ensure_runtime_env(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        char blas[256];
        blas_describe(blas, sizeof blas);
        printf("grpo2048 (built %s)\nblas: %s\n", __DATE__, blas);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "sft")) return cmd_sft(argc - 2, argv + 2);
    if (!strcmp(cmd, "play")) return cmd_play(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "runs")) return cmd_runs(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "best")) return cmd_best(argc - 2, argv + 2);
    fprintf(stderr, "grpo2048: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
