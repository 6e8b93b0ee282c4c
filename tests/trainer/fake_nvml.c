/*
 * tests/trainer/fake_nvml.c: a stand-in for libnvidia-ml.so.1 that tests/trainer/test_gpu_telemetry.c
 * loads through GRPO2048_NVML_LIBRARY. It exports the NVML functions trainer/gpu_telemetry.c uses,
 * with NVML's names and prototypes (trainer/nvml_abi.h, or NVIDIA's nvml.h when CMake found it, so
 * the definitions below are checked against the real declarations), and answers deterministically:
 *
 *   GRPO2048_FAKE_NVML_INIT=N     nvmlInit_v2 returns nvmlReturn_t N (e.g. 9, Driver Not Loaded)
 *   GRPO2048_FAKE_NVML_DEVICES=N  N devices (default 1): index i, UUID GPU-00000000-0000-0000-0000-00000000000i,
 *                                 name "Fake NVML GPU i"
 *   GRPO2048_FAKE_NVML_TRACE=FILE the readings: one line per sample, five columns
 *                                    utilization_%  sm_clock_mhz  power_mw  temperature_c  memory_used_bytes
 *                                 ('#' starts a comment; '-' in a column makes that call return
 *                                 NVML_ERROR_NOT_SUPPORTED). The k-th call (from nvmlInit_v2, 0-based)
 *                                 of each reading function answers from line k, the last line once
 *                                 past the end. Without a trace, line k is a fixed function of k
 *                                 (see trace_value).
 * The environment is read by nvmlInit_v2, which also restarts the call counts. Reading functions
 * called without a successful nvmlInit_v2 return NVML_ERROR_UNINITIALIZED, as NVML does.
 * fake_nvml_init_count() (not NVML) is the number of nvmlInit_v2 calls not yet matched by nvmlShutdown.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/nvml_abi.h"

#define FAKE_MAX_DEVICES 8
#define FAKE_MAX_LINES 4096
enum { C_UTIL, C_CLOCK, C_POWER, C_TEMP, C_MEM, C_COUNT };

struct nvmlDevice_st { unsigned int index; };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static unsigned int num_devices;
static struct nvmlDevice_st devices[FAKE_MAX_DEVICES];
static int trace_lines;                                   /* 0: no trace file, use trace_value */
static long long trace[FAKE_MAX_LINES][C_COUNT];          /* -1: not supported */
static long calls[C_COUNT];

int fake_nvml_init_count(void);
int fake_nvml_init_count(void) {
    pthread_mutex_lock(&mu);
    int n = init_count;
    pthread_mutex_unlock(&mu);
    return n;
}

static int load_trace(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "fake_nvml: cannot open trace %s\n", path); return -1; }
    char line[512];
    trace_lines = 0;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        if (trace_lines == FAKE_MAX_LINES) { fprintf(stderr, "fake_nvml: %s: too many lines\n", path); fclose(f); return -1; }
        for (int c = 0; c < C_COUNT; c++) {
            if (!tok) { fprintf(stderr, "fake_nvml: %s: line %d has fewer than 5 columns\n", path, trace_lines + 1); fclose(f); return -1; }
            trace[trace_lines][c] = strcmp(tok, "-") ? strtoll(tok, NULL, 10) : -1;
            tok = strtok_r(NULL, " \t\r\n", &save);
        }
        trace_lines++;
    }
    fclose(f);
    if (trace_lines == 0) { fprintf(stderr, "fake_nvml: %s: no lines\n", path); return -1; }
    return 0;
}

/* Without a trace file: line k. */
static long long trace_value(int column, long k) {
    switch (column) {
    case C_UTIL: return (k * 37) % 101;
    case C_CLOCK: return 1000 + 10 * (k % 100);
    case C_POWER: return 100000 + 1000 * (k % 300);
    case C_TEMP: return 40 + k % 30;
    default: return (1 + k % 16) * (1ll << 28);
    }
}

/* The next reading of column c (and counts the call): NVML_SUCCESS with *v, or an error. */
static nvmlReturn_t next_value(nvmlDevice_t device, int column, long long *v) {
    pthread_mutex_lock(&mu);
    nvmlReturn_t rc = NVML_SUCCESS;
    if (init_count <= 0) rc = NVML_ERROR_UNINITIALIZED;
    else if (!device || device->index >= num_devices) rc = NVML_ERROR_INVALID_ARGUMENT;
    else {
        const long k = calls[column]++;
        *v = trace_lines ? trace[k < trace_lines ? k : trace_lines - 1][column] : trace_value(column, k);
        if (*v < 0) rc = NVML_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

nvmlReturn_t nvmlInit_v2(void) {
    const char *e = getenv("GRPO2048_FAKE_NVML_INIT");
    if (e && atoi(e) != 0) return (nvmlReturn_t)atoi(e);
    pthread_mutex_lock(&mu);
    nvmlReturn_t rc = NVML_SUCCESS;
    const char *nd = getenv("GRPO2048_FAKE_NVML_DEVICES");
    num_devices = nd ? (unsigned int)atoi(nd) : 1;
    if (num_devices > FAKE_MAX_DEVICES) num_devices = FAKE_MAX_DEVICES;
    for (unsigned int i = 0; i < FAKE_MAX_DEVICES; i++) devices[i].index = i;
    memset(calls, 0, sizeof calls);
    const char *tr = getenv("GRPO2048_FAKE_NVML_TRACE");
    trace_lines = 0;
    if (tr && tr[0] && load_trace(tr) != 0) rc = NVML_ERROR_UNKNOWN;
    if (rc == NVML_SUCCESS) init_count++;
    pthread_mutex_unlock(&mu);
    return rc;
}

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&mu);
    nvmlReturn_t rc = init_count > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    if (init_count > 0) init_count--;
    pthread_mutex_unlock(&mu);
    return rc;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&mu);
    nvmlReturn_t rc = init_count <= 0 ? NVML_ERROR_UNINITIALIZED
                      : index >= num_devices || !device ? NVML_ERROR_INVALID_ARGUMENT : NVML_SUCCESS;
    if (rc == NVML_SUCCESS) *device = &devices[index];
    pthread_mutex_unlock(&mu);
    return rc;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    pthread_mutex_lock(&mu);
    nvmlReturn_t rc = init_count <= 0 ? NVML_ERROR_UNINITIALIZED : !uuid || !device ? NVML_ERROR_INVALID_ARGUMENT
                                                                                   : NVML_ERROR_NOT_FOUND;
    for (unsigned int i = 0; rc == NVML_ERROR_NOT_FOUND && i < num_devices; i++) {
        char u[64];
        snprintf(u, sizeof u, "GPU-00000000-0000-0000-0000-00000000000%u", i);
        if (!strcmp(u, uuid)) { *device = &devices[i]; rc = NVML_SUCCESS; }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    if (!device || !name || length == 0) return NVML_ERROR_INVALID_ARGUMENT;
    if ((unsigned int)snprintf(name, length, "Fake NVML GPU %u", device->index) >= length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    long long v = 0;
    nvmlReturn_t rc = next_value(device, C_UTIL, &v);
    if (rc == NVML_SUCCESS) { utilization->gpu = (unsigned int)v; utilization->memory = (unsigned int)(v / 2); }
    return rc;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock) {
    if (type != NVML_CLOCK_SM) return NVML_ERROR_INVALID_ARGUMENT;   /* the only clock the tests expect */
    long long v = 0;
    nvmlReturn_t rc = next_value(device, C_CLOCK, &v);
    if (rc == NVML_SUCCESS) *clock = (unsigned int)v;
    return rc;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    long long v = 0;
    nvmlReturn_t rc = next_value(device, C_POWER, &v);
    if (rc == NVML_SUCCESS) *power = (unsigned int)v;
    return rc;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType, unsigned int *temp) {
    if (sensorType != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
    long long v = 0;
    nvmlReturn_t rc = next_value(device, C_TEMP, &v);
    if (rc == NVML_SUCCESS) *temp = (unsigned int)v;
    return rc;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    long long v = 0;
    nvmlReturn_t rc = next_value(device, C_MEM, &v);
    if (rc == NVML_SUCCESS) {
        memory->total = 80ull << 30;
        memory->used = (unsigned long long)v;
        memory->free = memory->total > memory->used ? memory->total - memory->used : 0;
    }
    return rc;
}
