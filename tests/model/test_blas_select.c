/*
 * tests/model/test_blas_select.c: the OpenBLAS kernel-set choice (model/blas_select.c).
 *   - For every kernel set in the table and every CPU level: the choice never needs an instruction
 *     the CPU lacks, never downgrades OpenBLAS's own choice, and upgrades an SSE3 fallback to the
 *     CPU's best level (the case Debian's OpenBLAS 0.3.21 hits on Sapphire Rapids).
 *   - Unknown names (a future OpenBLAS) are left alone.
 *   - On this machine: the preferred set needs at most what the CPU has; a child process started
 *     with OPENBLAS_CORETYPE set to it really runs that set (OpenBLAS accepts the spelling) and its
 *     sgemm agrees with this process's.
 *   - The `grpo2048` binary ($GRPO2048_BIN, set by ctest) re-executes itself with the chosen set and
 *     names it in `grpo2048 --version`.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/blas_select.h"
#include "tests/testing.h"

static const char *names[] = {"Prescott", "Core2", "Nehalem", "Atom", "Barcelona", "Sandybridge", "Bulldozer",
                              "Haswell", "Zen", "Excavator", "SkylakeX", "Cooperlake", "prescott", NULL};

/* The child: prints its kernel set and a checksum of a small sgemm. */
static int child_main(void) {
    enum { N = 67 };
    static float a[N * N], b[N * N], c[N * N];
    for (int i = 0; i < N * N; i++) { a[i] = (float)((i * 7) % 13) / 13.0f; b[i] = (float)((i * 5) % 11) / 11.0f; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double s = 0;
    for (int i = 0; i < N * N; i++) s += c[i];
    printf("%s %.6f\n", openblas_get_corename(), s);
    return 0;
}

int main(int argc, char **argv) {
    if (getenv("TEST_BLAS_SELECT_CHILD")) return child_main();

    /* the pure rule */
    for (int n = 0; names[n]; n++) {
        int have = blas_core_isa(names[n]);
        CHECK_MSG(have != BLAS_ISA_UNKNOWN, "%s should be in the table", names[n]);
        for (int cpu = BLAS_ISA_SSE3; cpu <= BLAS_ISA_AVX512BF16; cpu++) {
            const char *pick = blas_choose_core(names[n], cpu);
            if (cpu <= have) {
                CHECK_MSG(pick == NULL, "detected %s, cpu level %d: kept, got %s", names[n], cpu, pick ? pick : "");
            } else {
                CHECK_MSG(pick != NULL, "detected %s, cpu level %d: upgraded", names[n], cpu);
                if (pick) {
                    CHECK_EQ_INT(blas_core_isa(pick), cpu);
                    CHECK(blas_core_isa(pick) > have);
                }
            }
        }
    }
    CHECK(blas_choose_core("Prescott", BLAS_ISA_AVX512) && !strcmp(blas_choose_core("Prescott", BLAS_ISA_AVX512), "SkylakeX"));
    CHECK(blas_choose_core("Prescott", BLAS_ISA_AVX2) && !strcmp(blas_choose_core("Prescott", BLAS_ISA_AVX2), "Haswell"));
    CHECK(blas_choose_core("SapphireRapids", BLAS_ISA_AVX512BF16) == NULL);
    CHECK(blas_choose_core("Zen4", BLAS_ISA_AVX2) == NULL);
    CHECK(blas_choose_core(NULL, BLAS_ISA_AVX2) == NULL);
    CHECK(blas_choose_core("Haswell", BLAS_ISA_UNKNOWN) == NULL);
    CHECK(blas_core_for_isa(BLAS_ISA_UNKNOWN) == NULL);

    /* this machine */
    int cpu = blas_cpu_isa();
    const char *detected = openblas_get_corename(), *pref = blas_preferred_core();
    printf("cpu level %d, OpenBLAS detected %s (level %d), preferred %s\n", cpu, detected, blas_core_isa(detected),
           pref ? pref : "(keep)");
    CHECK(cpu >= BLAS_ISA_SSE3); /* every x86-64 CPU grpo2048 supports has SSE3 */
    if (pref) CHECK(blas_core_isa(pref) <= cpu);
    const char *run_core = pref ? pref : detected;

    /* a child with OPENBLAS_CORETYPE=run_core reports it and computes the same sgemm (to rounding) */
    char self_out[128] = "", child_out[128] = "";
    for (int pass = 0; pass < 2; pass++) {
        int fd[2];
        if (pipe(fd) != 0) { CHECK(0); break; }
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd[1], 1);
            close(fd[0]);
            setenv("TEST_BLAS_SELECT_CHILD", "1", 1);
            if (pass == 1) setenv("OPENBLAS_CORETYPE", run_core, 1);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        close(fd[1]);
        char *dst = pass ? child_out : self_out;
        ssize_t k = read(fd[0], dst, 127);
        dst[k > 0 ? k : 0] = 0;
        close(fd[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    char core_a[64] = "", core_b[64] = "";
    double sum_a = 0, sum_b = 0;
    CHECK_EQ_INT(sscanf(self_out, "%63s %lf", core_a, &sum_a), 2);
    CHECK_EQ_INT(sscanf(child_out, "%63s %lf", core_b, &sum_b), 2);
    CHECK_MSG(!strcasecmp(core_b, run_core), "OpenBLAS ran %s, asked for %s", core_b, run_core);
    CHECK_NEAR(sum_a, sum_b, 1e-4 * fabs(sum_a));

    /* the binary re-executes itself with the choice and says so in `grpo2048 --version` */
    const char *bin = getenv("GRPO2048_BIN");
    if (bin) {
        char cmd[4096], line[512] = "";
        snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u GRPO2048_BLAS_DETECTED '%s' --version 2>&1", bin);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        char blas_line[512] = "";
        while (p && fgets(line, sizeof line, p))
            if (strstr(line, "OpenBLAS")) snprintf(blas_line, sizeof blas_line, "%s", line);
        if (p) CHECK_EQ_INT(pclose(p), 0);
        printf("grpo2048 --version: %s", blas_line);
        char want[96];
        snprintf(want, sizeof want, ", %s kernels", run_core);
        CHECK_MSG(strstr(blas_line, want) != NULL, "'%s' should name %s", blas_line, want);
    } else {
        printf("GRPO2048_BIN not set: the binary's start-up is not checked\n");
    }
    return TEST_DONE();
}
