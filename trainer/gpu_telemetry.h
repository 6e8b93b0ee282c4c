/*
 * trainer/gpu_telemetry.h: what the GPU did during each training step, from NVML, for metrics.sqlite.
 *
 * A background thread samples the training GPU through NVML (utilization, SM clock, power,
 * temperature, memory used) every period_ms (GPU_TELEMETRY_PERIOD_MS = 100, i.e. 10 Hz). The trainer
 * marks what it is doing with gpu_telemetry_phase (generation, reward, train, other); each sample
 * counts for the phase that was current when it was taken. At the end of each step
 * gpu_telemetry_step_metrics hands back the step's aggregates (per phase and overall: mean
 * utilization, mean and minimum SM clock, mean power, maximum temperature, maximum memory used,
 * sample count) and starts the next step's from zero. The names are in docs/metrics.md
 * ("GPU telemetry"): gpu/utilization, gpu/generation/utilization, ...
 *
 * NVML is loaded at run time (dlopen of libnvidia-ml.so.1, or of the file named by the environment
 * variable GRPO2048_NVML_LIBRARY), so grpo2048 runs where there is no NVIDIA driver. Without NVML —
 * the library cannot be loaded, nvmlInit fails, the device is not found — gpu_telemetry_start still
 * returns an object whose step metrics simply lack the sampled values (they are absent, never zero),
 * and its note says why in one line. A value NVML does not support on the device (power under MIG,
 * say) is absent in the same way. Every function accepts t = NULL (a CPU run) and then does nothing
 * and reports nothing.
 *
 * The CUDA device index is that of the CUDA runtime; NVML numbers devices by PCI bus order and
 * ignores CUDA_VISIBLE_DEVICES, so the index is mapped through CUDA_VISIBLE_DEVICES (its integer
 * entries, or its GPU-<uuid> entries by UUID). The note names the NVML device that is sampled.
 *
 * Threads: gpu_telemetry_phase is one atomic store (cheap enough around every kernel-heavy call);
 * the aggregates are under a mutex shared by the sampler and gpu_telemetry_step_metrics;
 * gpu_telemetry_stop joins the sampler before it frees anything. Start the telemetry after the
 * reward pool has forked its workers (the pool must fork before any thread exists).
 */
#ifndef GRPO2048_GPU_TELEMETRY_H
#define GRPO2048_GPU_TELEMETRY_H

#include <stddef.h>

/* The sampling period the trainer uses: 10 Hz. (NVML's utilization is itself an average over the
 * driver's last sample period, 1/6 s to 1 s depending on the GPU.) */
#define GPU_TELEMETRY_PERIOD_MS 100

/* What the trainer is doing; samples are attributed to the current phase. */
typedef enum {
    GPU_PHASE_OTHER = 0,    /* anything not below: logging, checkpoints, evaluation's bookkeeping, start-up */
    GPU_PHASE_GENERATION,   /* sampling completions (llama_generate) */
    GPU_PHASE_REWARD,       /* scoring them in the reward pool (the GPU is mostly idle) */
    GPU_PHASE_TRAIN,        /* forward/backward passes, gradient clipping, AdamW, reference sync */
    GPU_PHASE_COUNT
} gpu_phase;

/* The most metrics gpu_telemetry_step_metrics can return: 7 values × (overall + GPU_PHASE_COUNT
 * phases) + gpu/model_peak_memory_gb. */
#define GPU_TELEMETRY_MAX_METRICS (7 * (1 + GPU_PHASE_COUNT) + 1)

typedef struct {
    const char *name;   /* static string, e.g. "gpu/train/utilization" */
    double value;
} gpu_metric;

typedef struct gpu_telemetry gpu_telemetry;

/* Starts telemetry for CUDA device cuda_device: loads NVML, finds the device, and, when period_ms >
 * 0, starts the sampler thread (period_ms = 0: no thread; samples are then taken only by
 * gpu_telemetry_sample_now, which is what the tests do). Writes one line to note (no newline) saying
 * what is sampled ("GPU telemetry: CUDA device 0 is NVML device 0 (NVIDIA H100 80GB HBM3), sampled
 * every 100 ms") or why nothing is ("GPU telemetry: off: cannot load libnvidia-ml.so.1 (...)").
 * Returns the object, also when NVML is unavailable or the thread cannot be created
 * (gpu_telemetry_available then says 0, and gpu/model_peak_memory_gb still works); NULL only when
 * out of memory. */
gpu_telemetry *gpu_telemetry_start(int cuda_device, int period_ms, char *note, size_t notelen);

/* 1 when NVML sampling works (the sampled gpu/... metrics will be there), 0 otherwise or t NULL. */
int gpu_telemetry_available(const gpu_telemetry *t);

/* Marks the start of a phase; it lasts until the next mark. Lock-free. */
void gpu_telemetry_phase(gpu_telemetry *t, gpu_phase phase);

/* Takes one sample now, in the calling thread, attributed to the current phase (the test hook; the
 * sampler thread calls the same code). Returns 1 when a sample was recorded, 0 when NVML is
 * unavailable or every reading of this sample failed. */
int gpu_telemetry_sample_now(gpu_telemetry *t);

/* The peak device memory of the model (llama_cuda_get_memory's peak_bytes), set by the CUDA backend
 * code when it has it; reported once, by the next gpu_telemetry_step_metrics, as
 * gpu/model_peak_memory_gb. Independent of NVML. */
void gpu_telemetry_set_model_peak_memory(gpu_telemetry *t, size_t peak_bytes);

/* Writes up to cap of the metrics gathered since the last call (or since start) to out, in a fixed
 * order (overall, then generation, reward, train, other; see docs/metrics.md), and resets the
 * aggregates. A phase without samples in the interval has no metrics, nor does a value that no
 * sample could read. Returns the number written; 0 for t = NULL. out may be NULL with cap 0 (to
 * discard what was gathered, e.g. during start-up). */
int gpu_telemetry_step_metrics(gpu_telemetry *t, gpu_metric *out, int cap);

/* Stops and joins the sampler, shuts NVML down, unloads it and frees t. NULL is a no-op. */
void gpu_telemetry_stop(gpu_telemetry *t);

#endif
