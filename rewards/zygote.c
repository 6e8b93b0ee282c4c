/*
 * rewards/zygote.c: the zygote — the one process the trainer forks for the reward pool, and the parent
 * of every worker.
 *
 * reward_pool_create runs before the trainer has threads, so the zygote starts as a clean
 * single-threaded copy of a small process. It builds the seccomp template and probes the sandbox once
 * (sandbox.c), starts CPython once (pyrunner_init), then forks the workers. Replacing a dead worker later is again a fork of the zygote, never of the trainer: by then
 * the trainer has OpenMP/BLAS/CUDA threads (whose locks a fork would freeze) and gigabytes of weights
 * (which a forked worker would pin copy-on-write while the trainer updates them).
 *
 * Control protocol (seqpacket socket `ctl`, one message = one rw_ctl_msg): at start-up the zygote sends
 * one reply per initial worker (status 0, pid, the trainer's end of the worker's socket attached with
 * SCM_RIGHTS), or a single status -1 with the error. Afterwards each RW_CTL_SPAWN request gets one
 * reply. EOF on ctl means the pool is being destroyed: the zygote SIGKILLs and reaps its workers (whose
 * job children die with them through PR_SET_PDEATHSIG) and exits.
 *
 * Process hygiene: the zygote takes PR_SET_PDEATHSIG(SIGKILL) (checked against the trainer's pid to
 * close the race), its own process group (a terminal's Ctrl-C goes to the trainer, which decides), all
 * signal dispositions reset, fds 0/1 on /dev/null, fd 2 kept for diagnostics, everything else closed,
 * and the environment scrubbed (scrub_environment: the trainer's variables zeroed, the block in
 * memory included) before CPython starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Python.h>

#include "rewards/pool_internal.h"

#define CTL_FD 3   /* the zygote's control socket, and each worker's job socket, live on fd 3 */

#define Z_FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static void send_status(int ctl, int status, int pid, int fd, const char *error) {
    rw_ctl_msg m;
    memset(&m, 0, sizeof m);
    m.status = status;
    m.pid = pid;
    snprintf(m.error, sizeof m.error, "%s", error ? error : "");
    (void)rw_send_msg_fd(ctl, &m, sizeof m, fd);
}

/* The CPUs this process may run on (sched_getaffinity), filled once in zygote_main. */
static int allowed_cpus[CPU_SETSIZE];
static int n_allowed;

/* The allowed CPU with the fewest of the n live workers (cpus[i]: worker i's CPU), or -1 when there
 * is at most one CPU (nothing to choose). */
static int pick_cpu(const int *cpus, int n) {
    if (n_allowed < 2) return -1;
    int best = allowed_cpus[0], best_count = -1;
    for (int k = 0; k < n_allowed; k++) {
        int c = allowed_cpus[k], count = 0;
        for (int i = 0; i < n; i++) count += cpus[i] == c;
        if (best_count < 0 || count < best_count) { best = c; best_count = count; }
    }
    return best;
}

/* Forks one worker, pinned to cpu (and with it every child it forks) unless cpu < 0; returns its pid
 * (and sends the trainer its socket), or -1 (error sent).
 *
 * Why pinned: the worker plays each move of its child's games (a pipe round trip per move). With worker
 * and child on one CPU a round trip is two context switches there (~3 µs on a 2-vCPU VM); left to
 * float, the two often sit on different CPUs and every move pays a cross-CPU wake-up, 10-25 µs when the
 * other virtual CPU is idle (bench/bench_exchange.c). Workers are spread over the allowed CPUs, the
 * least used first. */
static pid_t spawn_worker(const reward_config *cfg, int cpu) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        char e[128];
        snprintf(e, sizeof e, "zygote: socketpair: %s", strerror(errno));
        send_status(CTL_FD, -1, 0, -1, e);
        return -1;
    }
    pid_t zygote = getpid();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            (void)sched_setaffinity(0, sizeof set, &set);   /* a failure only costs speed */
        }
        /* The worker's job socket replaces the control socket on fd 3; nothing else is inherited. */
        if (dup2(sv[1], CTL_FD) != CTL_FD) _exit(2);
        rw_close_fds_from(CTL_FD + 1, -1);
        worker_main(CTL_FD, cfg, zygote);
    }
    PyOS_AfterFork_Parent();
    close(sv[1]);
    if (pid < 0) {
        char e[128];
        snprintf(e, sizeof e, "zygote: fork: %s", strerror(errno));
        close(sv[0]);
        send_status(CTL_FD, -1, 0, -1, e);
        return -1;
    }
    send_status(CTL_FD, 0, pid, sv[0], NULL);
    close(sv[0]);
    return pid;
}

/* Environment variables the zygote keeps: none that CPython needs (it starts isolated from the
 * environment), only the marker by which the tests find their processes in /proc. */
static const char *const kept_env[] = {"GRPO2048_TU_MARK="};

/* Scrubs the environment the zygote inherited from the trainer (API keys and tokens travel there):
 * every variable not in kept_env is zeroed in place — the original block, which /proc/PID/environ and
 * a strategy with raw memory access would read, included — and environ is rebuilt from the kept ones,
 * so CPython's os.environ (built from it at start-up) holds nothing else. */
static void scrub_environment(void) {
    static char *keep[8];
    static char copies[8][256];
    int nk = 0;
    for (char **e = environ; e && *e; e++) {
        int kept = 0;
        for (size_t k = 0; k < sizeof kept_env / sizeof *kept_env; k++)
            if (!strncmp(*e, kept_env[k], strlen(kept_env[k])) && nk < 8 && strlen(*e) < sizeof copies[0]) {
                snprintf(copies[nk], sizeof copies[nk], "%s", *e);
                keep[nk] = copies[nk];
                nk++;
                kept = 1;
            }
        if (!kept) explicit_bzero(*e, strlen(*e));
    }
    static char *env[9];
    for (int i = 0; i < nk; i++) env[i] = keep[i];
    env[nk] = NULL;
    environ = env;
}

static void zygote_main(int ctl, const reward_config *cfg, int nworkers, pid_t trainer) __attribute__((noreturn));
static void zygote_main(int ctl, const reward_config *cfg, int nworkers, pid_t trainer) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != trainer) _exit(0);
    setpgid(0, 0);
    rw_reset_signals();
    signal(SIGPIPE, SIG_IGN);   /* a vanished peer shows up as EPIPE, never as a signal */
    /* SIGINT/SIGTERM are the trainer's to handle (it finishes the step, checkpoints and tears the pool
     * down); `pkill -f grpo2048` or `kill -- -PGID` must not take the pool away under it. The zygote
     * still dies with the trainer through PR_SET_PDEATHSIG, and workers and jobs inherit SIG_IGN. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    if (ctl != CTL_FD) {
        if (dup2(ctl, CTL_FD) != CTL_FD) _exit(2);
        close(ctl);
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (fcntl(2, F_GETFD) < 0) dup2(null, 2);
        if (null > 2 && null != CTL_FD) close(null);
    }
    rw_close_fds_from(CTL_FD + 1, -1);
    scrub_environment();

    char err[RW_ERROR_LEN];
    /* Workers keep game seeds in MADV_WIPEONFORK memory (Linux 4.14): without it, no worker could hide
     * them from its children. */
    void *wp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (wp == MAP_FAILED || madvise(wp, 4096, MADV_WIPEONFORK) != 0) {
        snprintf(err, sizeof err, "the kernel lacks madvise(MADV_WIPEONFORK) (Linux >= 4.14 is needed): %s",
                 strerror(errno));
        send_status(CTL_FD, -1, 0, -1, err);
        _exit(1);
    }
    munmap(wp, 4096);
    if (sandbox_prepare(err, sizeof err) != 0 || sandbox_probe(err, sizeof err) != 0 ||
        pyrunner_init(err, sizeof err) != 0) {
        send_status(CTL_FD, -1, 0, -1, err);
        _exit(1);
    }

    cpu_set_t mine;
    CPU_ZERO(&mine);
    n_allowed = 0;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &mine)) allowed_cpus[n_allowed++] = c;
    int cap = nworkers > 0 ? nworkers * 2 : 2, n = 0;
    pid_t *pids = malloc((size_t)cap * sizeof *pids);
    int *cpus = malloc((size_t)cap * sizeof *cpus);
    if (!pids || !cpus) { send_status(CTL_FD, -1, 0, -1, "zygote: out of memory"); _exit(1); }
    for (int i = 0; i < nworkers; i++) {
        int cpu = pick_cpu(cpus, n);
        pid_t pid = spawn_worker(cfg, cpu);
        if (pid < 0) _exit(1);
        cpus[n] = cpu;
        pids[n++] = pid;
    }
    for (;;) {
        rw_ctl_msg m;
        int fd;
        int r = rw_recv_msg_fd(CTL_FD, &m, sizeof m, &fd);
        if (fd >= 0) close(fd);
        if (r <= 0) break;   /* EOF (or a broken trainer): shut down */
        if (m.cmd != RW_CTL_SPAWN) continue;
        /* Reap workers that died since the last request; they are why the trainer asks. */
        for (int i = 0; i < n;) {
            if (waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
                --n;
                pids[i] = pids[n];
                cpus[i] = cpus[n];
            } else {
                i++;
            }
        }
        if (n == cap) {
            pid_t *np = realloc(pids, (size_t)cap * 2 * sizeof *pids);
            if (np) pids = np;
            int *nc = np ? realloc(cpus, (size_t)cap * 2 * sizeof *cpus) : NULL;
            if (nc) cpus = nc;
            if (!np || !nc) { send_status(CTL_FD, -1, 0, -1, "zygote: out of memory"); continue; }
            cap *= 2;
        }
        int cpu = pick_cpu(cpus, n);
        pid_t pid = spawn_worker(cfg, cpu);
        if (pid > 0) {
            cpus[n] = cpu;
            pids[n++] = pid;
        }
    }
    for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {}
    _exit(0);
}

int zygote_start(const reward_config *cfg, int nworkers, pid_t *zygote_pid, int *ctl, int *fds, int *pids,
                 char *err, size_t errlen) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        Z_FAIL("reward pool: socketpair: %s", strerror(errno));
    pid_t trainer = getpid();
    fflush(NULL);   /* no buffered output may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        Z_FAIL("reward pool: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(sv[0]);
        zygote_main(sv[1], cfg, nworkers, trainer);
    }
    close(sv[1]);
    for (int i = 0; i < nworkers; i++) fds[i] = -1;
    for (int i = 0; i < nworkers; i++) {
        rw_ctl_msg m;
        int fd;
        int r = rw_recv_msg_fd(sv[0], &m, sizeof m, &fd);
        if (r == 1 && m.status == 0 && fd >= 0) {
            fds[i] = fd;
            pids[i] = m.pid;
            continue;
        }
        if (fd >= 0) close(fd);
        if (r == 1) snprintf(err, errlen, "reward pool: %s", m.error);
        else snprintf(err, errlen, "reward pool: the zygote exited during start-up (%s)",
                      r == 0 ? "no reply" : strerror(errno));
        for (int j = 0; j < i; j++) close(fds[j]);
        zygote_stop(sv[0], pid);
        return -1;
    }
    *zygote_pid = pid;
    *ctl = sv[0];
    return 0;
}

int zygote_spawn(int ctl, int *fd, int *pid, char *err, size_t errlen) {
    rw_ctl_msg m;
    memset(&m, 0, sizeof m);
    m.cmd = RW_CTL_SPAWN;
    if (rw_send_msg_fd(ctl, &m, sizeof m, -1) != 0) Z_FAIL("reward pool: the zygote is gone (%s)", strerror(errno));
    int r = rw_recv_msg_fd(ctl, &m, sizeof m, fd);
    if (r != 1) Z_FAIL("reward pool: the zygote is gone (%s)", r == 0 ? "EOF" : strerror(errno));
    if (m.status != 0 || *fd < 0) {
        if (*fd >= 0) close(*fd);
        Z_FAIL("reward pool: cannot start a worker: %s", m.error);
    }
    *pid = m.pid;
    return 0;
}

void zygote_stop(int ctl, pid_t zygote_pid) {
    close(ctl);
    while (waitpid(zygote_pid, NULL, 0) < 0 && errno == EINTR) {}
}
