/*
 * model/blas_select.c: OpenBLAS kernel-set choice from the CPU's features (see blas_select.h).
 */
#include "model/blas_select.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

int blas_cpu_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
#if defined(__GNUC__) && (__GNUC__ >= 12)
        if (__builtin_cpu_supports("avx512bf16")) return BLAS_ISA_AVX512BF16;
#endif
        return BLAS_ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return BLAS_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return BLAS_ISA_AVX;
    if (__builtin_cpu_supports("sse3")) return BLAS_ISA_SSE3;
    return BLAS_ISA_UNKNOWN;
}

/* The kernel sets of OpenBLAS 0.3.x's x86-64 DYNAMIC_ARCH table (driver/others/dynamic.c) and what
 * they need. Newer releases add names (SapphireRapids, Zen4 ...) that are left alone as unknown. */
static const struct { const char *name; int isa; } core_table[] = {
    {"Katmai", BLAS_ISA_SSE3},      {"Coppermine", BLAS_ISA_SSE3}, {"Northwood", BLAS_ISA_SSE3},
    {"Prescott", BLAS_ISA_SSE3},    {"Banias", BLAS_ISA_SSE3},     {"Core2", BLAS_ISA_SSE3},
    {"Penryn", BLAS_ISA_SSE3},      {"Dunnington", BLAS_ISA_SSE3}, {"Nehalem", BLAS_ISA_SSE3},
    {"Atom", BLAS_ISA_SSE3},        {"Athlon", BLAS_ISA_SSE3},     {"Opteron", BLAS_ISA_SSE3},
    {"Opteron_SSE3", BLAS_ISA_SSE3}, {"Barcelona", BLAS_ISA_SSE3}, {"Nano", BLAS_ISA_SSE3},
    {"Bobcat", BLAS_ISA_SSE3},      {"Sandybridge", BLAS_ISA_AVX}, {"Bulldozer", BLAS_ISA_AVX},
    {"Piledriver", BLAS_ISA_AVX},   {"Steamroller", BLAS_ISA_AVX}, {"Excavator", BLAS_ISA_AVX2},
    {"Haswell", BLAS_ISA_AVX2},     {"Zen", BLAS_ISA_AVX2},        {"SkylakeX", BLAS_ISA_AVX512},
    {"Cooperlake", BLAS_ISA_AVX512BF16},
};

int blas_core_isa(const char *corename) {
    if (!corename) return BLAS_ISA_UNKNOWN;
    for (size_t i = 0; i < sizeof core_table / sizeof core_table[0]; i++)
        if (!strcasecmp(corename, core_table[i].name)) return core_table[i].isa;
    return BLAS_ISA_UNKNOWN;
}

const char *blas_core_for_isa(int isa) {
    switch (isa) {
    case BLAS_ISA_SSE3: return "Prescott";
    case BLAS_ISA_AVX: return "Sandybridge";
    case BLAS_ISA_AVX2: return "Haswell";
    case BLAS_ISA_AVX512: return "SkylakeX";
    case BLAS_ISA_AVX512BF16: return "Cooperlake";
    default: return NULL;
    }
}

const char *blas_choose_core(const char *detected, int cpu_isa) {
    int have = blas_core_isa(detected);
    if (have == BLAS_ISA_UNKNOWN || cpu_isa <= have) return NULL;
    return blas_core_for_isa(cpu_isa);
}

const char *blas_preferred_core(void) { return blas_choose_core(openblas_get_corename(), blas_cpu_isa()); }

void blas_describe(char *buf, size_t len) {
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    const char *detected = getenv("GRPO2048_BLAS_DETECTED");
    /* openblas_get_config(): "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64" -> version */
    char version[32] = "";
    if (cfg) sscanf(cfg, "OpenBLAS %31s", version);
    if (detected && *detected && strcasecmp(detected, core))
        snprintf(buf, len, "OpenBLAS %s, %s kernels (chosen from the CPU's features; OpenBLAS's table said %s)",
                 version[0] ? version : "?", core, detected);
    else
        snprintf(buf, len, "OpenBLAS %s, %s kernels", version[0] ? version : "?", core);
}
