/*
 * model/blas_select.h: choosing OpenBLAS's kernel set from the CPU's features.
 *
 * Why: an OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from a table of CPU models
 * compiled into it. A CPU newer than the table (Debian 12 ships OpenBLAS 0.3.21; Sapphire Rapids and
 * later Xeons report models it does not list) falls back to the Prescott (SSE3) kernels: measured on a
 * 2-core Xeon with AVX-512 and AMX, 1024^3 sgemm ran at 20 GFLOP/s on 2 threads instead of 94 GFLOP/s
 * with OPENBLAS_CORETYPE=SkylakeX, and a SmolLM2-135M training step 4x slower than it should. OpenBLAS
 * reads OPENBLAS_CORETYPE once, when the library is loaded, so the choice has to be made before the
 * process starts: grpo2048 sets it and re-executes itself (trainer/main.c), as it does for
 * OMP_WAIT_POLICY. A user's own OPENBLAS_CORETYPE always wins.
 *
 * The rule: every kernel set OpenBLAS can pick is ranked by the instruction-set level it needs
 * (SSE3 < AVX < AVX2+FMA < AVX-512 F/BW/DQ/VL < AVX-512 + BF16). When the set OpenBLAS detected needs
 * less than the CPU (and the OS, which must save the wider registers) supports, the best set the CPU
 * can run is chosen instead; never one that needs an instruction the CPU lacks. An unknown detected
 * name (a non-Intel/AMD family, a future name) is left alone.
 */
#ifndef GRPO2048_BLAS_SELECT_H
#define GRPO2048_BLAS_SELECT_H

#include <stddef.h>

/* Instruction-set levels, in increasing order; each includes the ones below. */
enum {
    BLAS_ISA_UNKNOWN = -1,
    BLAS_ISA_SSE3 = 0,      /* Prescott, Core2, Penryn, Nehalem, Atom, Barcelona, ... */
    BLAS_ISA_AVX = 1,       /* Sandybridge, Bulldozer, Piledriver (FMA4 kernels are not assumed) */
    BLAS_ISA_AVX2 = 2,      /* Haswell, Zen, Excavator, Steamroller: AVX2 + FMA3 */
    BLAS_ISA_AVX512 = 3,    /* SkylakeX: AVX-512 F, BW, DQ, VL */
    BLAS_ISA_AVX512BF16 = 4 /* Cooperlake: AVX-512 + AVX512_BF16 (OpenBLAS's sbgemm kernels) */
};

/* The instruction-set level the running CPU and OS support (cpuid and xgetbv through GCC's
 * __builtin_cpu_supports, which checks that the OS saves the AVX / AVX-512 state). */
int blas_cpu_isa(void);

/* The level OpenBLAS kernel set `corename` (as openblas_get_corename() spells it, any case) needs,
 * or BLAS_ISA_UNKNOWN for a name not in the table. */
int blas_core_isa(const char *corename);

/* The OPENBLAS_CORETYPE name for level isa (>= BLAS_ISA_SSE3): "Prescott", "Sandybridge", "Haswell",
 * "SkylakeX", "Cooperlake". */
const char *blas_core_for_isa(int isa);

/* The kernel set to ask for, or NULL to keep OpenBLAS's own choice: NULL when `detected` is unknown or
 * already at least at cpu_isa's level; otherwise blas_core_for_isa(cpu_isa). Pure (for tests): the
 * result never needs a level above cpu_isa. */
const char *blas_choose_core(const char *detected, int cpu_isa);

/* The same for this process: openblas_get_corename() and blas_cpu_isa(). */
const char *blas_preferred_core(void);

/* One line for start-up messages, e.g. "OpenBLAS 0.3.21 (SkylakeX kernels, chosen by grpo2048 from the
 * CPU's features; OpenBLAS detected Prescott)". Writes at most len bytes (NUL-terminated). Reads the
 * environment variable GRPO2048_BLAS_DETECTED that trainer/main.c sets before re-executing. */
void blas_describe(char *buf, size_t len);

#endif
