/*
 * trainer/nvml_abi.h: the few NVML types, constants and functions grpo2048's GPU telemetry uses
 * (trainer/gpu_telemetry.c) and the test library implements (tests/trainer/fake_nvml.c).
 *
 * NVML (libnvidia-ml.so.1) comes with the NVIDIA driver, not with the toolkit's runtime, and
 * grpo2048 must build and run where there is neither: gpu_telemetry.c never links it, it dlopen()s
 * the library at run time and looks these functions up with dlsym(). Their prototypes are declared
 * here only so that the function-pointer types can be written as __typeof__(nvmlInit_v2) and the
 * test library's definitions are checked against them.
 *
 * Where CMake finds the real nvml.h (the CUDA toolkit's include folder, or -DGRPO2048_NVML_INCLUDE_DIR,
 * e.g. from PyPI's nvidia-nvml-dev) it is included instead (GRPO2048_HAVE_NVML_H), so that both files
 * are compiled against NVIDIA's own declarations. Otherwise the declarations below are used; they
 * were copied by hand from nvml.h of nvidia-nvml-dev 13.5.37 (NVML_API_VERSION 13) and are the same
 * ABI in every NVML since the _v2 entry points appeared (driver 319): same names, same enum values,
 * same struct layouts (checked by the static assertions at the end).
 * nvmlDeviceGetTemperature is marked deprecated in NVML 13 (nvmlDeviceGetTemperatureV replaces it)
 * but the driver's library still exports it, and it is the one call every driver has.
 */
#ifndef GRPO2048_NVML_ABI_H
#define GRPO2048_NVML_ABI_H

#ifdef GRPO2048_HAVE_NVML_H
#include <nvml.h>
#else

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef enum nvmlReturn_enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

typedef enum nvmlClockType_enum {
    NVML_CLOCK_GRAPHICS = 0,
    NVML_CLOCK_SM = 1,
    NVML_CLOCK_MEM = 2,
    NVML_CLOCK_VIDEO = 3,
    NVML_CLOCK_COUNT
} nvmlClockType_t;

typedef enum nvmlTemperatureSensors_enum {
    NVML_TEMPERATURE_GPU = 0,
    NVML_TEMPERATURE_GPU_MAX = 1,
    NVML_TEMPERATURE_COUNT
} nvmlTemperatureSensors_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu;      /* % of the last sample period (1/6 s to 1 s) in which a kernel ran */
    unsigned int memory;   /* % of it in which device memory was read or written */
} nvmlUtilization_t;

typedef struct nvmlMemory_st {
    unsigned long long total, free, used;   /* bytes */
} nvmlMemory_t;

#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t result);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization);
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power);   /* milliwatts */
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);

#endif /* GRPO2048_HAVE_NVML_H */

/* The layout both sides rely on, whichever header declared it. */
_Static_assert(sizeof(nvmlReturn_t) == 4 && NVML_SUCCESS == 0 && NVML_ERROR_NOT_SUPPORTED == 3, "nvmlReturn_t");
_Static_assert(sizeof(nvmlClockType_t) == 4 && NVML_CLOCK_SM == 1, "nvmlClockType_t");
_Static_assert(sizeof(nvmlTemperatureSensors_t) == 4 && NVML_TEMPERATURE_GPU == 0, "nvmlTemperatureSensors_t");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t: two unsigned ints");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t (v1): total, free, used");

#endif
