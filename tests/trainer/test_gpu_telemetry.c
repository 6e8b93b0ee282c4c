/*
 * tests/trainer/test_gpu_telemetry.c: GPU telemetry (trainer/gpu_telemetry.c) against the fake NVML
 * library tests/trainer/fake_nvml.c (FAKE_NVML_PATH, loaded through GRPO2048_NVML_LIBRARY).
 *
 * Exact checks, sampling by hand with gpu_telemetry_sample_now (no thread, no timing): a scripted
 * trace sampled in known phases gives known per-phase and overall aggregates, in the documented
 * order, reset after each step; a value NVML does not support is absent, not zero; the model's peak
 * memory is reported once per set. Absent metrics and the one-line note when the library is missing,
 * lacks NVML's symbols, nvmlInit fails, or the device does not exist, and the CUDA_VISIBLE_DEVICES
 * mapping (indices, GPU UUIDs, unmappable entries). NVML is shut down on every path. Every name the
 * telemetry emits is a column of the `steps` view (metrics_names[]), and every gpu/ column is
 * emitted. One test with the real sampler thread checks loosely (timing-dependent counts) but
 * exactly the invariant that the phases' samples add up to the overall count, and that stop joins
 * promptly.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/testing.h"
#include "trainer/gpu_telemetry.h"
#include "trainer/metrics.h"

#ifndef FAKE_NVML_PATH
#error "FAKE_NVML_PATH (the fake NVML library built from tests/trainer/fake_nvml.c) must be defined by CMake"
#endif

static char tmpdir[64];

static void reset_env(void) {
    setenv("GRPO2048_NVML_LIBRARY", FAKE_NVML_PATH, 1);
    unsetenv("GRPO2048_FAKE_NVML_INIT");
    unsetenv("GRPO2048_FAKE_NVML_DEVICES");
    unsetenv("GRPO2048_FAKE_NVML_TRACE");
    unsetenv("CUDA_VISIBLE_DEVICES");
}

/* The fake's count of nvmlInit_v2 calls not matched by nvmlShutdown (the library is already loaded
 * by the telemetry, so RTLD_NOLOAD finds the same instance). */
static int fake_init_count(void) {
    void *h = dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_NOLOAD);
    if (!h) return -1;
    int (*fn)(void) = (int (*)(void))dlsym(h, "fake_nvml_init_count");
    int n = fn ? fn() : -1;
    dlclose(h);
    return n;
}

static const char *write_trace(const char *name, const char *text) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

/* The value of metric name in m[0..n), or NaN when absent. */
static double find(const gpu_metric *m, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(m[i].name, name)) return m[i].value;
    return NAN;
}

static int in_metrics_names(const char *name) {
    for (int i = 0; i < metrics_num_names; i++) if (!strcmp(metrics_names[i], name)) return 1;
    return 0;
}

/* A trace sampled by hand in known phases: exact aggregates, the order, the reset. */
static void test_exact_aggregates(void) {
    reset_env();
    setenv("GRPO2048_FAKE_NVML_TRACE", write_trace("trace1.txt",
        "# util clock power_mw temp mem_used\n"
        "50 1800 300000 60 2147483648\n"      /* generation */
        "70 1900 350000 62 3221225472\n"      /* generation */
        "10 1200 100000 55 1073741824\n"      /* reward */
        "20 1300 -      58 1073741824\n"      /* reward: power not supported */
        "90 1980 400000 70 4294967296\n"),    /* train */
        1);
    char note[512];
    gpu_telemetry *t = gpu_telemetry_start(0, 0, note, sizeof note);
    CHECK(t != NULL);
    CHECK(gpu_telemetry_available(t));
    CHECK_MSG(!strcmp(note, "GPU telemetry: CUDA device 0 is NVML device 0 (Fake NVML GPU 0), sampled on demand"),
              "note: %s", note);
    CHECK_EQ_INT(fake_init_count(), 1);

    gpu_metric m[GPU_TELEMETRY_MAX_METRICS];
    /* samples taken before the step (start-up) are discarded with cap 0 */
    CHECK_EQ_INT(gpu_telemetry_step_metrics(t, NULL, 0), 0);

    gpu_telemetry_phase(t, GPU_PHASE_GENERATION);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    gpu_telemetry_phase(t, GPU_PHASE_REWARD);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    gpu_telemetry_phase(t, GPU_PHASE_TRAIN);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    int n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);

    static const struct { const char *name; double value; } want[] = {
        {"gpu/utilization", 48}, {"gpu/sm_clock_mhz", 1636}, {"gpu/sm_clock_mhz_min", 1200},
        {"gpu/power_w", 287.5}, {"gpu/temperature_c", 70}, {"gpu/memory_used_gb", 4}, {"gpu/samples", 5},
        {"gpu/generation/utilization", 60}, {"gpu/generation/sm_clock_mhz", 1850},
        {"gpu/generation/sm_clock_mhz_min", 1800}, {"gpu/generation/power_w", 325},
        {"gpu/generation/temperature_c", 62}, {"gpu/generation/memory_used_gb", 3}, {"gpu/generation/samples", 2},
        {"gpu/reward/utilization", 15}, {"gpu/reward/sm_clock_mhz", 1250}, {"gpu/reward/sm_clock_mhz_min", 1200},
        {"gpu/reward/power_w", 100}, {"gpu/reward/temperature_c", 58}, {"gpu/reward/memory_used_gb", 1},
        {"gpu/reward/samples", 2},
        {"gpu/train/utilization", 90}, {"gpu/train/sm_clock_mhz", 1980}, {"gpu/train/sm_clock_mhz_min", 1980},
        {"gpu/train/power_w", 400}, {"gpu/train/temperature_c", 70}, {"gpu/train/memory_used_gb", 4},
        {"gpu/train/samples", 1},
        /* no gpu/other/...: no sample in that phase */
    };
    const int nwant = (int)(sizeof want / sizeof want[0]);
    CHECK_EQ_INT(n, nwant);
    for (int i = 0; i < n && i < nwant; i++) {
        CHECK_MSG(!strcmp(m[i].name, want[i].name), "metric %d is %s, expected %s", i, m[i].name, want[i].name);
        CHECK_MSG(m[i].value == want[i].value, "%s = %.17g, expected %.17g", m[i].name, m[i].value, want[i].value);
    }

    /* reset: the next step starts from nothing */
    CHECK_EQ_INT(gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS), 0);

    /* past the trace's end the fake repeats its last line; phase other */
    gpu_telemetry_phase(t, GPU_PHASE_OTHER);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    gpu_telemetry_set_model_peak_memory(t, (size_t)3 << 29);   /* 1.5 GiB */
    n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);
    CHECK_EQ_INT(n, 2 * 7 + 1);
    CHECK(find(m, n, "gpu/other/utilization") == 90);
    CHECK(find(m, n, "gpu/other/samples") == 1);
    CHECK(find(m, n, "gpu/samples") == 1);
    CHECK(isnan(find(m, n, "gpu/train/samples")));
    CHECK(n > 0 && !strcmp(m[n - 1].name, "gpu/model_peak_memory_gb") && m[n - 1].value == 1.5);
    /* the model peak is reported once per set */
    CHECK_EQ_INT(gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS), 0);

    /* cap truncates, in order */
    gpu_telemetry_sample_now(t);
    CHECK_EQ_INT(gpu_telemetry_step_metrics(t, m, 3), 3);
    CHECK(!strcmp(m[0].name, "gpu/utilization") && !strcmp(m[2].name, "gpu/sm_clock_mhz_min"));

    gpu_telemetry_stop(t);
    CHECK_EQ_INT(fake_init_count(), 0);
}

/* A reading the device never supports is absent; a sample whose every reading fails is not counted. */
static void test_unsupported_values(void) {
    reset_env();
    setenv("GRPO2048_FAKE_NVML_TRACE", write_trace("trace2.txt",
        "40 - - 50 1073741824\n"
        "60 - - 52 1073741824\n"
        "-  - - -  -\n"), 1);
    char note[512];
    gpu_telemetry *t = gpu_telemetry_start(0, 0, note, sizeof note);
    gpu_metric m[GPU_TELEMETRY_MAX_METRICS];
    gpu_telemetry_phase(t, GPU_PHASE_TRAIN);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 1);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 0);   /* every reading failed: no sample */
    int n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);
    CHECK_EQ_INT(n, 2 * 4);
    CHECK(find(m, n, "gpu/utilization") == 50);
    CHECK(find(m, n, "gpu/train/temperature_c") == 52);
    CHECK(find(m, n, "gpu/train/samples") == 2);
    CHECK(isnan(find(m, n, "gpu/power_w")));
    CHECK(isnan(find(m, n, "gpu/sm_clock_mhz")));
    CHECK(isnan(find(m, n, "gpu/sm_clock_mhz_min")));
    CHECK(isnan(find(m, n, "gpu/train/power_w")));
    gpu_telemetry_stop(t);
    CHECK_EQ_INT(fake_init_count(), 0);
}

/* Without NVML: the object exists, every sampled metric is absent, the note says why in one line. */
static void expect_off(int cuda_device, const char *why_prefix) {
    char note[512] = "";
    gpu_telemetry *t = gpu_telemetry_start(cuda_device, 50, note, sizeof note);
    CHECK(t != NULL);
    CHECK(!gpu_telemetry_available(t));
    CHECK_MSG(!strncmp(note, why_prefix, strlen(why_prefix)), "note '%s' does not start with '%s'", note, why_prefix);
    CHECK(strchr(note, '\n') == NULL);
    gpu_telemetry_phase(t, GPU_PHASE_TRAIN);
    CHECK_EQ_INT(gpu_telemetry_sample_now(t), 0);
    gpu_metric m[GPU_TELEMETRY_MAX_METRICS];
    CHECK_EQ_INT(gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS), 0);
    /* the model's peak memory comes from the CUDA runtime, not NVML: still reported */
    gpu_telemetry_set_model_peak_memory(t, (size_t)1 << 30);
    int n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);
    CHECK(n == 1 && !strcmp(m[0].name, "gpu/model_peak_memory_gb") && m[0].value == 1.0);
    gpu_telemetry_stop(t);
    CHECK(fake_init_count() <= 0);   /* -1: the fake was never loaded */
}

static void test_without_nvml(void) {
    reset_env();
    setenv("GRPO2048_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    expect_off(0, "GPU telemetry: off: cannot load /nonexistent/libnvidia-ml.so.1 (");

    reset_env();
    setenv("GRPO2048_NVML_LIBRARY", "libm.so.6", 1);   /* loads, but is not NVML */
    expect_off(0, "GPU telemetry: off: libm.so.6 lacks nvmlInit_v2");

    reset_env();
    setenv("GRPO2048_FAKE_NVML_INIT", "9", 1);          /* NVML_ERROR_DRIVER_NOT_LOADED */
    expect_off(0, "GPU telemetry: off: nvmlInit_v2 failed: Driver Not Loaded");

    reset_env();
    expect_off(3, "GPU telemetry: off: NVML has no device 3 (CUDA device 3): Invalid Argument");

    reset_env();
    setenv("GRPO2048_FAKE_NVML_TRACE", "/nonexistent/trace", 1);   /* the fake's nvmlInit fails */
    expect_off(0, "GPU telemetry: off: nvmlInit_v2 failed: Unknown Error");

    /* a CPU run: every call accepts NULL */
    gpu_telemetry_phase(NULL, GPU_PHASE_TRAIN);
    gpu_telemetry_set_model_peak_memory(NULL, 1);
    CHECK_EQ_INT(gpu_telemetry_sample_now(NULL), 0);
    CHECK_EQ_INT(gpu_telemetry_step_metrics(NULL, NULL, 0), 0);
    CHECK(!gpu_telemetry_available(NULL));
    gpu_telemetry_stop(NULL);
}

static void expect_note(int cuda_device, const char *visible, const char *want) {
    setenv("CUDA_VISIBLE_DEVICES", visible, 1);
    char note[512] = "";
    gpu_telemetry *t = gpu_telemetry_start(cuda_device, 0, note, sizeof note);
    CHECK_MSG(!strcmp(note, want), "CUDA_VISIBLE_DEVICES=%s, CUDA device %d: note '%s', expected '%s'", visible,
              cuda_device, note, want);
    gpu_telemetry_stop(t);
    CHECK_EQ_INT(fake_init_count(), 0);
}

/* NVML ignores CUDA_VISIBLE_DEVICES; the telemetry maps CUDA's index through it. */
static void test_visible_devices(void) {
    reset_env();
    setenv("GRPO2048_FAKE_NVML_DEVICES", "4", 1);
    expect_note(1, "2, 3", "GPU telemetry: CUDA device 1 is NVML device 3 (Fake NVML GPU 3), sampled on demand");
    expect_note(0, "GPU-00000000-0000-0000-0000-000000000002",
                "GPU telemetry: CUDA device 0 is NVML device GPU-00000000-0000-0000-0000-000000000002 (Fake NVML GPU 2), "
                "sampled on demand");
    expect_note(0, "GPU-ffffffff", "GPU telemetry: off: NVML has no device GPU-ffffffff (CUDA device 0): Not Found");
    expect_note(0, "MIG-1234", "GPU telemetry: off: cannot map CUDA_VISIBLE_DEVICES entry \"MIG-1234\" to an NVML device");
    expect_note(1, "0", "GPU telemetry: off: CUDA_VISIBLE_DEVICES=\"0\" has no entry for CUDA device 1");
    expect_note(0, "", "GPU telemetry: off: CUDA_VISIBLE_DEVICES=\"\" has no entry for CUDA device 0");
    unsetenv("CUDA_VISIBLE_DEVICES");
}

/* Every name the telemetry emits is a column of `steps`, and every gpu/ column is emitted. */
static void test_names_are_columns(void) {
    reset_env();
    char note[512];
    gpu_telemetry *t = gpu_telemetry_start(0, 0, note, sizeof note);
    for (int p = 0; p < GPU_PHASE_COUNT; p++) {
        gpu_telemetry_phase(t, (gpu_phase)p);
        gpu_telemetry_sample_now(t);
    }
    gpu_telemetry_set_model_peak_memory(t, 12345);
    gpu_metric m[GPU_TELEMETRY_MAX_METRICS];
    const int n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);
    CHECK_EQ_INT(n, GPU_TELEMETRY_MAX_METRICS);
    for (int i = 0; i < n; i++) CHECK_MSG(in_metrics_names(m[i].name), "%s is not in metrics_names[]", m[i].name);
    int columns = 0;
    for (int i = 0; i < metrics_num_names; i++) {
        if (strncmp(metrics_names[i], "gpu/", 4)) continue;
        columns++;
        CHECK_MSG(!isnan(find(m, n, metrics_names[i])), "column %s is never emitted", metrics_names[i]);
    }
    CHECK_EQ_INT(columns, GPU_TELEMETRY_MAX_METRICS);
    gpu_telemetry_stop(t);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The real sampler thread (5 ms period), with the fake's built-in readings: loose counts, exact sums. */
static void test_sampler_thread(void) {
    reset_env();
    char note[512];
    gpu_telemetry *t = gpu_telemetry_start(0, 5, note, sizeof note);
    CHECK(gpu_telemetry_available(t));
    CHECK_MSG(strstr(note, "sampled every 5 ms") != NULL, "note: %s", note);
    gpu_telemetry_phase(t, GPU_PHASE_GENERATION);
    usleep(150 * 1000);
    gpu_telemetry_phase(t, GPU_PHASE_TRAIN);
    usleep(150 * 1000);
    gpu_metric m[GPU_TELEMETRY_MAX_METRICS];
    int n = gpu_telemetry_step_metrics(t, m, GPU_TELEMETRY_MAX_METRICS);
    const double all = find(m, n, "gpu/samples"), gen = find(m, n, "gpu/generation/samples"),
                 train = find(m, n, "gpu/train/samples"), other = find(m, n, "gpu/other/samples");
    /* 300 ms at 5 ms is 60 samples; a loaded or sanitized machine may manage far fewer */
    CHECK_MSG(all >= 4, "%g samples", all);
    CHECK_MSG(gen >= 1 && train >= 1, "generation %g, train %g samples", gen, train);
    CHECK_EQ_INT(all, gen + train + (isnan(other) ? 0 : other));
    CHECK(isnan(find(m, n, "gpu/reward/samples")));
    const double util = find(m, n, "gpu/utilization"), clock_min = find(m, n, "gpu/sm_clock_mhz_min");
    CHECK(util >= 0 && util <= 100);
    CHECK(clock_min >= 1000 && clock_min <= find(m, n, "gpu/sm_clock_mhz"));
    const double t0 = seconds_now();
    gpu_telemetry_stop(t);
    CHECK_MSG(seconds_now() - t0 < 1.0, "stop took %.3f s", seconds_now() - t0);
    CHECK_EQ_INT(fake_init_count(), 0);

    /* start and stop at once, repeatedly: no hang, no leak */
    for (int i = 0; i < 20; i++) gpu_telemetry_stop(gpu_telemetry_start(0, 1, note, sizeof note));
    CHECK_EQ_INT(fake_init_count(), 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_gpu_telemetry_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_exact_aggregates();
    test_unsupported_values();
    test_without_nvml();
    test_visible_devices();
    test_names_are_columns();
    test_sampler_thread();
    char path[128];
    snprintf(path, sizeof path, "%s/trace1.txt", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/trace2.txt", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return TEST_DONE();
}
