/*
 * tests/rewards/rewards_testutil.h: helpers shared by the tests of the rewards module (each test is its
 * own executable, so these are static): reading a strategy file from tests/rewards/strategies/, a
 * monotonic clock, creating a pool with the few settings the tests vary, and looking at processes
 * through /proc (parent, state, executable, environment, open fds, resident memory) to check that
 * nothing is left behind.
 */
#ifndef GRPO2048_REWARDS_TESTUTIL_H
#define GRPO2048_REWARDS_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rewards/rewards.h"

static inline double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The path of tests/rewards/strategies/<name>.py (under GRPO2048_SOURCE_DIR when set, else the cwd). */
static inline void tu_strategy_path(const char *name, char *out, size_t n) {
    const char *root = getenv("GRPO2048_SOURCE_DIR");
    snprintf(out, n, "%s%stests/rewards/strategies/%s.py", root ? root : "", root ? "/" : "", name);
}

/* The text of a strategy file (malloc'd; the test aborts when it is missing). */
static inline char *tu_strategy(const char *name) {
    char path[1024];
    tu_strategy_path(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); abort(); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); abort(); }
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The strategy wrapped as a model completion: prose, a ```python fence, the code, a closing fence. */
static inline char *tu_completion(const char *name) {
    char *src = tu_strategy(name);
    size_t n = strlen(src) + 128;
    char *c = malloc(n);
    snprintf(c, n, "Here is my strategy:\n```python\n%s```\nIt keeps tiles in a corner.", src);
    free(src);
    return c;
}

static inline reward_pool *tu_pool(int parallel, int workers, double timeout, uint32_t target, int games) {
    reward_config c;
    reward_config_defaults(&c);
    c.parallel = parallel;
    c.workers = workers;
    c.timeout = timeout;
    c.target = target;
    c.games_per_strategy = games;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    if (!p) { fprintf(stderr, "reward_pool_create: %s\n", err); abort(); }
    return p;
}

/* ---- processes, from /proc ---- */

typedef struct {
    int pid, ppid;
    char state;              /* R, S, D, Z, X, ... */
} tu_proc;

/* Parent and state of pid; 0 when it is gone. */
static inline int tu_proc_stat(int pid, tu_proc *out) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    out->pid = pid;
    return p && sscanf(p + 1, " %c %d", &out->state, &out->ppid) == 2;
}

/* Every process on the machine: up to max into out; returns how many. */
static inline int tu_procs(tu_proc *out, int max) {
    DIR *d = opendir("/proc");
    if (!d) { perror("/proc"); abort(); }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (tu_proc_stat(atoi(e->d_name), &out[n])) n++;
    }
    closedir(d);
    return n;
}

/* 1 when pid descends from ancestor (following parents through procs[0..n)). */
static inline int tu_descends(const tu_proc *procs, int n, int pid, int ancestor) {
    for (int hops = 0; hops < 64 && pid > 1; hops++) {
        int parent = 0;
        for (int i = 0; i < n; i++)
            if (procs[i].pid == pid) { parent = procs[i].ppid; break; }
        if (parent == ancestor) return 1;
        pid = parent;
    }
    return 0;
}

/* 1 when pid runs the same executable file as this process (a fork that never exec'd: zygote, workers,
 * checkers, job children). */
static inline int tu_same_exe(int pid) {
    char path[64];
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    return stat("/proc/self/exe", &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* 1 when pid's environment as it started (/proc/PID/environ, inherited through every fork) holds the
 * entry var ("NAME=value"). */
static inline int tu_has_env(int pid, const char *var) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t vl = strlen(var);
    for (size_t i = 0; i < n;) {
        if (!strncmp(buf + i, var, vl) && buf[i + vl] == '\0') return 1;
        i += strlen(buf + i) + 1;
    }
    return 0;
}

/* Live (not zombie) processes whose environment holds var, excluding this process; their pids go to
 * pids (up to max). */
static inline int tu_marked(const char *var, int *pids, int max) {
    static tu_proc procs[1 << 15];
    int n = tu_procs(procs, 1 << 15), k = 0;
    for (int i = 0; i < n; i++) {
        if (procs[i].pid == getpid() || procs[i].state == 'Z' || procs[i].state == 'X') continue;
        if (tu_has_env(procs[i].pid, var)) {
            if (k < max) pids[k] = procs[i].pid;
            k++;
        }
    }
    return k;
}

/* Waits up to seconds for no process to carry var; returns how many still do. */
static inline int tu_wait_unmarked(const char *var, double seconds) {
    double t0 = tu_now();
    int pids[8], k;
    while ((k = tu_marked(var, pids, 8)) > 0 && tu_now() - t0 < seconds) usleep(10000);
    return k;
}

/* Open fds of pid (entries of /proc/PID/fd), -1 when unreadable. */
static inline int tu_fd_count(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return pid == getpid() ? n - 1 : n;   /* our own count includes the directory's fd */
}

/* Resident memory of pid in KiB (VmRSS), -1 when unreadable. */
static inline long tu_rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* The environment entry that marks this test's processes ("GRPO2048_TU_MARK=<pid>.<ns>"), after
 * tu_mark_self; "" before. */
static char tu_mark[64];

/* Re-executes this test with a unique marker in its environment (once), so that every process it forks
 * — zygote, workers, checkers, job children, and any that escaped its parent — can be found in /proc by
 * its environment, even after being reparented. Call first thing in main. */
static inline void tu_mark_self(char **argv) {
    const char *m = getenv("GRPO2048_TU_MARK");
    if (m) {
        snprintf(tu_mark, sizeof tu_mark, "GRPO2048_TU_MARK=%s", m);
        return;
    }
    char v[48];
    snprintf(v, sizeof v, "%d.%lld", (int)getpid(), (long long)(tu_now() * 1e9));
    setenv("GRPO2048_TU_MARK", v, 1);
    execv("/proc/self/exe", argv);
    perror("re-executing the test with a marker");
    abort();
}

/* Whether the pool's processes are as they should be between jobs: the zygote (our child), the
 * workers (its children), at most one child per worker (its checker), nothing a zombie, and no other
 * process carrying our marker (a job child that escaped or was left behind). Waits up to `seconds` for
 * that (workers reap their last child just after answering). Returns 1, or 0 with what is wrong in why. */
static inline int tu_pool_clean(const reward_pool *p, double seconds, char *why, size_t whylen) {
    static tu_proc procs[1 << 15];
    int workers[64];
    int nw = reward_pool_worker_pids(p, workers, 64);
    if (nw > 64) nw = 64;
    tu_proc z;
    int zygote = nw > 0 && tu_proc_stat(workers[0], &z) ? z.ppid : -1;
    double t0 = tu_now();
    for (;;) {
        int n = tu_procs(procs, 1 << 15), bad = 0;
        why[0] = '\0';
        for (int i = 0; i < n && !bad; i++) {
            const tu_proc *q = &procs[i];
            if (q->pid == getpid() || !tu_has_env(q->pid, tu_mark)) continue;
            int is_worker = 0, parent_worker = 0;
            for (int w = 0; w < nw; w++) {
                is_worker |= workers[w] == q->pid;
                parent_worker |= workers[w] == q->ppid;
            }
            if (q->state == 'Z' || q->state == 'X') {
                snprintf(why, whylen, "zombie %d (parent %d)", q->pid, q->ppid);
                bad = 1;
            } else if (q->pid == zygote || (is_worker && q->ppid == zygote)) {
                /* the zygote, or a worker */
            } else if (parent_worker) {
                int siblings = 0;
                for (int j = 0; j < n; j++) siblings += procs[j].ppid == q->ppid;
                if (siblings > 1) {
                    snprintf(why, whylen, "worker %d has %d children (its checker at most)", q->ppid, siblings);
                    bad = 1;
                }
            } else {
                snprintf(why, whylen, "stray process %d (parent %d, state %c)", q->pid, q->ppid, q->state);
                bad = 1;
            }
        }
        if (!bad) return 1;
        if (tu_now() - t0 > seconds) return 0;
        usleep(10000);
    }
}

#endif
