/*
 * trainer/gpu_telemetry.c: NVML sampling in a background thread, aggregated per training phase
 * (see gpu_telemetry.h for the contract, docs/metrics.md for the metrics).
 *
 * Loading: dlopen(GRPO2048_NVML_LIBRARY or "libnvidia-ml.so.1"), then dlsym of the functions in
 * trainer/nvml_abi.h. nvmlInit_v2, nvmlShutdown, nvmlErrorString and nvmlDeviceGetHandleByIndex_v2
 * are required; each reading function is optional (a driver that lacks one, or a device that answers
 * NVML_ERROR_NOT_SUPPORTED, just leaves that value absent). The library is never dlclose()d: NVML
 * has threads and handlers of its own, and unloading it under them is a risk with no benefit in a
 * process that samples until it exits (the loader keeps the mapping; it is not a leak).
 *
 * Sampling: take_sample reads the current phase (one relaxed atomic load; the phase a sample counts
 * for is the one current when the sample starts), makes the NVML calls without holding any lock,
 * then adds the readings to that phase's and the overall aggregates under the mutex.
 * gpu_telemetry_step_metrics copies and clears the aggregates under the same mutex, so every sample
 * lands in exactly one step. The sampler sleeps on a condition variable (CLOCK_MONOTONIC) until the
 * next multiple of the period, so stop wakes it at once and the schedule does not drift.
 */
#include "trainer/gpu_telemetry.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/nvml_abi.h"

#define NVML_DEFAULT_LIBRARY "libnvidia-ml.so.1"

/* Function-pointer types from the declarations (NVIDIA's nvml.h when CMake found it), so a wrong
 * signature here is a compile error, not a corrupted stack. nvmlDeviceGetTemperature is marked
 * deprecated by NVML 13's header; naming its type is not a call. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
typedef __typeof__(nvmlInit_v2) *nvml_init_fn;
typedef __typeof__(nvmlShutdown) *nvml_shutdown_fn;
typedef __typeof__(nvmlErrorString) *nvml_error_string_fn;
typedef __typeof__(nvmlDeviceGetHandleByIndex_v2) *nvml_handle_by_index_fn;
typedef __typeof__(nvmlDeviceGetHandleByUUID) *nvml_handle_by_uuid_fn;
typedef __typeof__(nvmlDeviceGetName) *nvml_name_fn;
typedef __typeof__(nvmlDeviceGetUtilizationRates) *nvml_utilization_fn;
typedef __typeof__(nvmlDeviceGetClockInfo) *nvml_clock_fn;
typedef __typeof__(nvmlDeviceGetPowerUsage) *nvml_power_fn;
typedef __typeof__(nvmlDeviceGetTemperature) *nvml_temperature_fn;
typedef __typeof__(nvmlDeviceGetMemoryInfo) *nvml_memory_fn;
#pragma GCC diagnostic pop

/* The sampled values, in output order within a group. */
enum { V_UTIL, V_CLOCK, V_CLOCK_MIN, V_POWER, V_TEMP, V_MEM, V_SAMPLES, V_COUNT };

/* Output groups: overall first, then the phases in the order users read a step. */
#define NUM_GROUPS (1 + GPU_PHASE_COUNT)
static const int group_phase[NUM_GROUPS] = {-1, GPU_PHASE_GENERATION, GPU_PHASE_REWARD, GPU_PHASE_TRAIN,
                                            GPU_PHASE_OTHER};

#define GPU_NAMES(prefix) {prefix "utilization", prefix "sm_clock_mhz", prefix "sm_clock_mhz_min", \
    prefix "power_w", prefix "temperature_c", prefix "memory_used_gb", prefix "samples"}
static const char *const metric_names[NUM_GROUPS][V_COUNT] = {
    GPU_NAMES("gpu/"), GPU_NAMES("gpu/generation/"), GPU_NAMES("gpu/reward/"), GPU_NAMES("gpu/train/"),
    GPU_NAMES("gpu/other/"),
};
static const char model_peak_name[] = "gpu/model_peak_memory_gb";
_Static_assert(NUM_GROUPS * V_COUNT + 1 == GPU_TELEMETRY_MAX_METRICS, "GPU_TELEMETRY_MAX_METRICS");

/* Aggregates of one group over one step. Each value keeps its own count: a reading that failed in
 * a sample does not dilute the mean of the others. */
typedef struct {
    long samples;
    long n_util, n_clock, n_power, n_temp, n_mem;
    double util_sum, clock_sum, clock_min, power_sum, temp_max, mem_max;
} aggregate;

struct gpu_telemetry {
    int available;                  /* NVML loaded, initialized, device found */
    void *lib;
    nvml_shutdown_fn shutdown;
    nvml_utilization_fn get_utilization;
    nvml_clock_fn get_clock;
    nvml_power_fn get_power;
    nvml_temperature_fn get_temperature;
    nvml_memory_fn get_memory;
    nvmlDevice_t device;

    atomic_int phase;               /* gpu_phase, written by the trainer, read by the sampler */

    pthread_mutex_t mu;             /* guards everything below */
    aggregate overall, phases[GPU_PHASE_COUNT];
    int has_model_peak;
    double model_peak_bytes;
    int stopping;
    pthread_cond_t wake;            /* CLOCK_MONOTONIC */

    int period_ms;
    int thread_running;
    pthread_t thread;
};

static double monotonic_ns(struct timespec *ts) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    return (double)ts->tv_sec * 1e9 + ts->tv_nsec;
}

static void add_reading(aggregate *a, const int ok[5], const double v[5]) {
    a->samples++;
    if (ok[0]) { a->n_util++; a->util_sum += v[0]; }
    if (ok[1]) {
        if (a->n_clock == 0 || v[1] < a->clock_min) a->clock_min = v[1];
        a->n_clock++;
        a->clock_sum += v[1];
    }
    if (ok[2]) { a->n_power++; a->power_sum += v[2]; }
    if (ok[3]) { if (a->n_temp == 0 || v[3] > a->temp_max) a->temp_max = v[3]; a->n_temp++; }
    if (ok[4]) { if (a->n_mem == 0 || v[4] > a->mem_max) a->mem_max = v[4]; a->n_mem++; }
}

/* One sample: utilization %, SM clock MHz, power W, temperature °C, memory used GiB. */
static int take_sample(gpu_telemetry *t) {
    if (!t || !t->available) return 0;
    int phase = atomic_load_explicit(&t->phase, memory_order_relaxed);
    if (phase < 0 || phase >= GPU_PHASE_COUNT) phase = GPU_PHASE_OTHER;
    int ok[5] = {0};
    double v[5] = {0};
    nvmlUtilization_t u;
    unsigned int x;
    nvmlMemory_t mem;
    if (t->get_utilization && t->get_utilization(t->device, &u) == NVML_SUCCESS) { ok[0] = 1; v[0] = u.gpu; }
    if (t->get_clock && t->get_clock(t->device, NVML_CLOCK_SM, &x) == NVML_SUCCESS) { ok[1] = 1; v[1] = x; }
    if (t->get_power && t->get_power(t->device, &x) == NVML_SUCCESS) { ok[2] = 1; v[2] = x / 1000.0; }
    if (t->get_temperature && t->get_temperature(t->device, NVML_TEMPERATURE_GPU, &x) == NVML_SUCCESS) {
        ok[3] = 1;
        v[3] = x;
    }
    if (t->get_memory && t->get_memory(t->device, &mem) == NVML_SUCCESS) {
        ok[4] = 1;
        v[4] = (double)mem.used / (double)(1ull << 30);
    }
    if (!(ok[0] | ok[1] | ok[2] | ok[3] | ok[4])) return 0;
    pthread_mutex_lock(&t->mu);
    add_reading(&t->overall, ok, v);
    add_reading(&t->phases[phase], ok, v);
    pthread_mutex_unlock(&t->mu);
    return 1;
}

static void *sampler_main(void *arg) {
    gpu_telemetry *t = arg;
    struct timespec next;
    const long period_ns = (long)t->period_ms * 1000000L;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        pthread_mutex_unlock(&t->mu);
        take_sample(t);
        /* the next multiple of the period after now: a late wake-up skips ticks rather than bursting */
        struct timespec now;
        const double now_ns = monotonic_ns(&now);
        do {
            next.tv_nsec += period_ns;
            while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
        } while ((double)next.tv_sec * 1e9 + next.tv_nsec <= now_ns);
        pthread_mutex_lock(&t->mu);
        while (!t->stopping && pthread_cond_timedwait(&t->wake, &t->mu, &next) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* The NVML device that CUDA device cuda_device is: CUDA_VISIBLE_DEVICES renumbers CUDA's devices,
 * NVML ignores it. Integer entries are NVML (PCI-order) indices, GPU-<uuid> entries are looked up by
 * UUID; anything else (MIG-<uuid>) cannot be mapped. Returns 0 with *dev and a description of the
 * device in what, or -1 with the reason in what. */
static int find_device(void *lib, nvml_handle_by_index_fn by_index, nvml_error_string_fn error_string,
                       int cuda_device, nvmlDevice_t *dev, char *what, size_t whatlen) {
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    char entry[128] = "";
    if (visible) {
        const char *p = visible;
        for (int i = 0;; i++) {
            while (*p == ' ') p++;
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            while (n > 0 && p[n - 1] == ' ') n--;
            if (i == cuda_device) {
                if (n == 0 || n >= sizeof entry) break;
                memcpy(entry, p, n);
                entry[n] = '\0';
                break;
            }
            if (!end) break;
            p = end + 1;
        }
        if (!entry[0]) {
            snprintf(what, whatlen, "CUDA_VISIBLE_DEVICES=\"%.60s\" has no entry for CUDA device %d", visible,
                     cuda_device);
            return -1;
        }
    }
    nvmlReturn_t rc;
    if (!visible || isdigit((unsigned char)entry[0])) {
        char *endp = NULL;
        const long index = visible ? strtol(entry, &endp, 10) : cuda_device;
        if (visible && *endp) {
            snprintf(what, whatlen, "cannot map CUDA_VISIBLE_DEVICES entry \"%s\" to an NVML device", entry);
            return -1;
        }
        rc = by_index((unsigned int)index, dev);
        if (rc != NVML_SUCCESS) {
            snprintf(what, whatlen, "NVML has no device %ld (CUDA device %d): %s", index, cuda_device,
                     error_string(rc));
            return -1;
        }
        snprintf(what, whatlen, "NVML device %ld", index);
        return 0;
    }
    nvml_handle_by_uuid_fn by_uuid = (nvml_handle_by_uuid_fn)dlsym(lib, "nvmlDeviceGetHandleByUUID");
    if (strncmp(entry, "GPU-", 4) != 0 || !by_uuid) {
        snprintf(what, whatlen, "cannot map CUDA_VISIBLE_DEVICES entry \"%s\" to an NVML device", entry);
        return -1;
    }
    rc = by_uuid(entry, dev);
    if (rc != NVML_SUCCESS) {
        snprintf(what, whatlen, "NVML has no device %s (CUDA device %d): %s", entry, cuda_device, error_string(rc));
        return -1;
    }
    snprintf(what, whatlen, "NVML device %s", entry);
    return 0;
}

/* Loads NVML and finds the device; on failure writes the reason to note and leaves t unavailable. */
static void open_nvml(gpu_telemetry *t, int cuda_device, char *note, size_t notelen) {
    const char *env = getenv("GRPO2048_NVML_LIBRARY");
    const char *path = env && env[0] ? env : NVML_DEFAULT_LIBRARY;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(note, notelen, "GPU telemetry: off: cannot load %s (%s)", path, e ? e : "?");
        return;
    }
    nvml_init_fn init = (nvml_init_fn)dlsym(lib, "nvmlInit_v2");
    nvml_shutdown_fn shutdown = (nvml_shutdown_fn)dlsym(lib, "nvmlShutdown");
    nvml_error_string_fn error_string = (nvml_error_string_fn)dlsym(lib, "nvmlErrorString");
    nvml_handle_by_index_fn by_index = (nvml_handle_by_index_fn)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    if (!init || !shutdown || !error_string || !by_index) {
        snprintf(note, notelen, "GPU telemetry: off: %s lacks %s", path,
                 !init ? "nvmlInit_v2" : !shutdown ? "nvmlShutdown" : !error_string ? "nvmlErrorString"
                                                                     : "nvmlDeviceGetHandleByIndex_v2");
        return;
    }
    nvmlReturn_t rc = init();
    if (rc != NVML_SUCCESS) {
        snprintf(note, notelen, "GPU telemetry: off: nvmlInit_v2 failed: %s", error_string(rc));
        return;
    }
    char what[256];
    if (find_device(lib, by_index, error_string, cuda_device, &t->device, what, sizeof what) != 0) {
        shutdown();
        snprintf(note, notelen, "GPU telemetry: off: %s", what);
        return;
    }
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = "";
    nvml_name_fn get_name = (nvml_name_fn)dlsym(lib, "nvmlDeviceGetName");
    if (!get_name || get_name(t->device, name, sizeof name) != NVML_SUCCESS) snprintf(name, sizeof name, "?");
    name[sizeof name - 1] = '\0';
    t->lib = lib;
    t->shutdown = shutdown;
    t->get_utilization = (nvml_utilization_fn)dlsym(lib, "nvmlDeviceGetUtilizationRates");
    t->get_clock = (nvml_clock_fn)dlsym(lib, "nvmlDeviceGetClockInfo");
    t->get_power = (nvml_power_fn)dlsym(lib, "nvmlDeviceGetPowerUsage");
    t->get_temperature = (nvml_temperature_fn)dlsym(lib, "nvmlDeviceGetTemperature");
    t->get_memory = (nvml_memory_fn)dlsym(lib, "nvmlDeviceGetMemoryInfo");
    t->available = 1;
    if (t->period_ms > 0)
        snprintf(note, notelen, "GPU telemetry: CUDA device %d is %s (%s), sampled every %d ms", cuda_device, what,
                 name, t->period_ms);
    else
        snprintf(note, notelen, "GPU telemetry: CUDA device %d is %s (%s), sampled on demand", cuda_device, what,
                 name);
}

gpu_telemetry *gpu_telemetry_start(int cuda_device, int period_ms, char *note, size_t notelen) {
    char scratch[8];
    if (!note || !notelen) { note = scratch; notelen = sizeof scratch; }
    gpu_telemetry *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(note, notelen, "GPU telemetry: off: out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->phase, GPU_PHASE_OTHER);
    t->period_ms = period_ms > 0 ? period_ms : 0;
    open_nvml(t, cuda_device, note, notelen);
    if (t->available && t->period_ms > 0) {
        int rc = pthread_create(&t->thread, NULL, sampler_main, t);
        if (rc != 0) {
            t->available = 0;
            t->shutdown();
            snprintf(note, notelen, "GPU telemetry: off: cannot start the sampler thread: %s", strerror(rc));
        } else {
            t->thread_running = 1;
        }
    }
    return t;
}

int gpu_telemetry_available(const gpu_telemetry *t) { return t && t->available; }

void gpu_telemetry_phase(gpu_telemetry *t, gpu_phase phase) {
    if (t && phase >= 0 && phase < GPU_PHASE_COUNT) atomic_store_explicit(&t->phase, phase, memory_order_relaxed);
}

int gpu_telemetry_sample_now(gpu_telemetry *t) { return take_sample(t); }

void gpu_telemetry_set_model_peak_memory(gpu_telemetry *t, size_t peak_bytes) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->has_model_peak = 1;
    t->model_peak_bytes = (double)peak_bytes;
    pthread_mutex_unlock(&t->mu);
}

int gpu_telemetry_step_metrics(gpu_telemetry *t, gpu_metric *out, int cap) {
    if (!t) return 0;
    aggregate groups[NUM_GROUPS];
    pthread_mutex_lock(&t->mu);
    groups[0] = t->overall;
    for (int g = 1; g < NUM_GROUPS; g++) groups[g] = t->phases[group_phase[g]];
    memset(&t->overall, 0, sizeof t->overall);
    memset(t->phases, 0, sizeof t->phases);
    const int has_peak = t->has_model_peak;
    const double peak = t->model_peak_bytes;
    t->has_model_peak = 0;
    pthread_mutex_unlock(&t->mu);

    int n = 0;
#define EMIT(name_, value_) do { if (n < cap) out[n++] = (gpu_metric){(name_), (value_)}; } while (0)
    for (int g = 0; g < NUM_GROUPS; g++) {
        const aggregate *a = &groups[g];
        const char *const *name = metric_names[g];
        if (a->samples == 0) continue;
        if (a->n_util) EMIT(name[V_UTIL], a->util_sum / a->n_util);
        if (a->n_clock) {
            EMIT(name[V_CLOCK], a->clock_sum / a->n_clock);
            EMIT(name[V_CLOCK_MIN], a->clock_min);
        }
        if (a->n_power) EMIT(name[V_POWER], a->power_sum / a->n_power);
        if (a->n_temp) EMIT(name[V_TEMP], a->temp_max);
        if (a->n_mem) EMIT(name[V_MEM], a->mem_max);
        EMIT(name[V_SAMPLES], (double)a->samples);
    }
    if (has_peak) EMIT(model_peak_name, peak / (double)(1ull << 30));
#undef EMIT
    return n;
}

void gpu_telemetry_stop(gpu_telemetry *t) {
    if (!t) return;
    if (t->thread_running) {
        pthread_mutex_lock(&t->mu);
        t->stopping = 1;
        pthread_cond_signal(&t->wake);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    if (t->available) t->shutdown();
    /* t->lib stays loaded (see the top of this file) */
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
