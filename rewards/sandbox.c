/*
 * rewards/sandbox.c: confines a job's child before it runs any strategy code (and a worker's checker
 * before it parses any source).
 *
 * sandbox_enter runs in the freshly forked child (single-threaded, forked from a worker) in this fixed
 * order; each step relies on the ones before it:
 *
 *   1. setpgid(0, 0)             own process group, so the worker's killpg reaches exactly this job.
 *   2. PR_SET_PDEATHSIG(SIGKILL) dies with the worker; getppid() is checked afterwards to close the
 *                                race where the worker died before the prctl.
 *   3. the result pipe moves to fd SANDBOX_RESULT_FD (3) and every other fd is closed (close_range),
 *                                so nothing inherited (the worker's socket to the trainer) can be reached.
 *                                (The checker also keeps its request pipe, read-only, on fd 4.)
 *   4. rlimits                   RLIMIT_AS = address-space size at the fork + memory_limit (MemoryError
 *                                instead of swapping; skipped under AddressSanitizer, which reserves
 *                                terabytes of shadow address space), RLIMIT_CPU (a backstop for the
 *                                worker's wall clock), RLIMIT_FSIZE 0, RLIMIT_CORE 0, RLIMIT_NPROC 0 (no
 *                                new processes for a non-root user; root ignores it, seccomp does not),
 *                                RLIMIT_NOFILE = result fd + 1 (no new fds), RLIMIT_MEMLOCK 0.
 *   5. PR_SET_DUMPABLE 0, then   not dumpable: no core dump, and no process of the same user can ptrace
 *      drop capabilities         it or read its /proc/PID/mem or environ; a worker running as root keeps
 *                                no capability (capset with empty sets), so the allowed system calls
 *                                carry no privilege (e.g. raising rlimits).
 *   6. PR_SET_NO_NEW_PRIVS       required for an unprivileged seccomp filter; no setuid gains.
 *   7. seccomp filter, described next.
 *
 * The filter is an allow-list: default action EPERM. An allow-list fails closed on system calls we did
 * not think of (io_uring, bpf, userfaultfd, the mount API, calls added by future kernels), and EPERM
 * rather than a kill makes the Python runtime's harmless probes fail as ordinary OSErrors. On top:
 *   - allowed: memory (mmap/mprotect without PROT_EXEC, munmap, mremap, brk, madvise), read/close/fstat/
 *     lseek, fcntl with F_GETFD/F_SETFD/F_GETFL/F_DUPFD(_CLOEXEC) and F_SETFL without O_ASYNC (no
 *     F_SETOWN, F_SETSIG, F_NOTIFY, F_SETLEASE, F_SETPIPE_SZ: the kernel would signal other processes
 *     for it), write/writev on the answer fd only, futex, clocks and sleeps, signal handling and
 *     signals to itself (kill/tkill/tgkill whose target is its own pid), getrandom, getpid & co., exit;
 *   - EACCES: the path-based file calls (open, openat, creat, stat, newfstatat — whose AT_EMPTY_PATH
 *     still looks a non-empty path up —, mkdir, unlink, rename, readlink ...) so `open()` and the import
 *     of a module that is not already loaded fail cleanly with a Python PermissionError /
 *     ModuleNotFoundError;
 *   - SCMP_ACT_KILL_PROCESS: new processes or threads (fork, vfork, clone, clone3), execve/execveat,
 *     sockets (socket, socketpair, connect, bind, listen, accept), ptrace, process_vm_*, signals to any
 *     other process (kill/tkill/tgkill with another pid, rt_*sigqueueinfo, pidfd_*), mount-like and
 *     other host-changing calls. These are never legitimate in a strategy, so they end the job at once
 *     and are reported as "crash: signal 31" (SIGSYS) rather than silently failing;
 *   - a system call of another architecture (int 0x80, x32) kills the process.
 * Syscall names unknown on the build architecture are skipped (resolved at run time).
 *
 * Cost: building the filter with libseccomp (resolving ~170 names, generating BPF) takes ~0.4 ms, more
 * than the rest of a job's set-up. So sandbox_prepare builds it once, in the zygote, and exports the
 * classic-BPF program; each child copies it and only has to fill in its own pid. The pid rules are built
 * against SENTINEL_PID (above any pid_max), which libseccomp emits as the constant of BPF_JMP|BPF_JEQ|
 * BPF_K instructions (the low word of a 64-bit argument compare; the high word is compared with 0);
 * sandbox_enter replaces exactly those constants with getpid() and checks that it found as many as the
 * template had. The write rule names SANDBOX_RESULT_FD, the same in every child.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rewards/pool_internal.h"

#define SB_FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static const char *const allow_calls[] = {
    "read", "readv", "pread64", "preadv", "close", "fstat", "lseek",
    "munmap", "mremap", "brk", "madvise", "futex",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "getrusage",
    "times", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigpending",
    "rt_sigsuspend", "rt_sigtimedwait", "pause", "restart_syscall", "sched_yield", "getrandom",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
    "getpgrp", "uname", "sysinfo", "exit", "exit_group",
};

static const char *const eacces_calls[] = {
    "open", "openat", "openat2", "creat", "stat", "lstat", "statx", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "chown", "lchown",
    "fchownat", "truncate", "mknod", "mknodat", "chdir", "getcwd", "utime", "utimes", "utimensat",
    "futimesat", "statfs", "getxattr", "lgetxattr", "listxattr", "llistxattr", "setxattr", "lsetxattr",
    "removexattr", "lremovexattr", "inotify_init", "inotify_init1", "memfd_create", "name_to_handle_at",
    "open_by_handle_at", "uselib",
};

static const char *const kill_calls[] = {
    "fork", "vfork", "clone", "clone3", "execve", "execveat", "socket", "socketpair", "connect", "bind",
    "listen", "accept", "accept4", "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "mount",
    "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree", "fsopen", "fsmount",
    "fsconfig", "fspick", "mount_setattr", "reboot", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "swapon", "swapoff", "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "personality", "iopl", "ioperm", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "sethostname", "setdomainname", "kcmp",
};

/* Adds rule (action, syscall name, conditions); a name unknown on this architecture is skipped. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                    const struct scmp_arg_cmp *cmp, char *err, size_t errlen) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;
    int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (rc < 0) SB_FAIL("seccomp rule for %s: %s", name, strerror(-rc));
    return 0;
}

#define SENTINEL_PID 0x7ffffff0u   /* > PID_MAX_LIMIT (2^22): never a real pid */

static struct sock_filter *filter_insns;   /* the template, built in the zygote */
static unsigned short filter_len;
static int filter_pid_slots;               /* instructions that carry SENTINEL_PID */

int sandbox_prepare(char *err, size_t errlen) {
    const int result_fd = SANDBOX_RESULT_FD;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) SB_FAIL("seccomp_init failed");
    int rc = 0;
    rc |= seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    rc |= seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);   /* binary tree: fewer insns per call */
    if (rc) { seccomp_release(ctx); SB_FAIL("seccomp_attr_set failed"); }
#define RULE(act, name, n, ...) do { const struct scmp_arg_cmp c_[] = {__VA_ARGS__}; \
        if (add_rule(ctx, act, name, n, n ? c_ : NULL, err, errlen)) { seccomp_release(ctx); return -1; } } while (0)
#define RULE0(act, name) do { if (add_rule(ctx, act, name, 0, NULL, err, errlen)) { seccomp_release(ctx); return -1; } } while (0)
    for (size_t i = 0; i < sizeof allow_calls / sizeof *allow_calls; i++) RULE0(SCMP_ACT_ALLOW, allow_calls[i]);
    for (size_t i = 0; i < sizeof eacces_calls / sizeof *eacces_calls; i++)
        RULE0(SCMP_ACT_ERRNO(EACCES), eacces_calls[i]);
    for (size_t i = 0; i < sizeof kill_calls / sizeof *kill_calls; i++) RULE0(SCMP_ACT_KILL_PROCESS, kill_calls[i]);

    /* Output goes to the result pipe only. */
    RULE(SCMP_ACT_ALLOW, "write", 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)result_fd));
    RULE(SCMP_ACT_ALLOW, "writev", 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)result_fd));
    /* Memory, but never executable: nothing legitimate maps code once the interpreter runs. */
    RULE(SCMP_ACT_ALLOW, "mmap", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    RULE(SCMP_ACT_ALLOW, "mprotect", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* glibc's fstat is newfstatat(fd, "", st, AT_EMPTY_PATH) — but AT_EMPTY_PATH with a non-empty
     * path is an ordinary lookup, and a filter cannot read the path. So every newfstatat is refused
     * like open (EACCES); the plain fstat system call above serves fds. */
    RULE0(SCMP_ACT_ERRNO(EACCES), "newfstatat");
    /* fcntl: only the commands CPython uses on its own fds. F_SETOWN(_EX) + F_SETSIG + O_ASYNC would
     * make the kernel signal any process on the strategy's behalf (SIGKILL to the trainer) when an fd
     * becomes ready; F_NOTIFY and F_SETLEASE deliver signals too; F_SETPIPE_SZ resizes the worker's
     * pipes. All of those, and every other command, fail with EPERM. */
    RULE(SCMP_ACT_ALLOW, "fcntl", 1, SCMP_A1(SCMP_CMP_EQ, F_GETFD));
    RULE(SCMP_ACT_ALLOW, "fcntl", 1, SCMP_A1(SCMP_CMP_EQ, F_SETFD));
    RULE(SCMP_ACT_ALLOW, "fcntl", 1, SCMP_A1(SCMP_CMP_EQ, F_GETFL));
    RULE(SCMP_ACT_ALLOW, "fcntl", 1, SCMP_A1(SCMP_CMP_EQ, F_DUPFD));
    RULE(SCMP_ACT_ALLOW, "fcntl", 1, SCMP_A1(SCMP_CMP_EQ, F_DUPFD_CLOEXEC));
    RULE(SCMP_ACT_ALLOW, "fcntl", 2, SCMP_A1(SCMP_CMP_EQ, F_SETFL), SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
    /* Signals: to itself only (os.kill(os.getpid(), s), abort()'s tgkill); anyone else ends the job. */
    scmp_datum_t me = (scmp_datum_t)SENTINEL_PID;
    RULE(SCMP_ACT_ALLOW, "kill", 1, SCMP_A0(SCMP_CMP_EQ, me));
    RULE(SCMP_ACT_KILL_PROCESS, "kill", 1, SCMP_A0(SCMP_CMP_NE, me));
    RULE(SCMP_ACT_ALLOW, "tkill", 1, SCMP_A0(SCMP_CMP_EQ, me));
    RULE(SCMP_ACT_KILL_PROCESS, "tkill", 1, SCMP_A0(SCMP_CMP_NE, me));
    RULE(SCMP_ACT_ALLOW, "tgkill", 2, SCMP_A0(SCMP_CMP_EQ, me), SCMP_A1(SCMP_CMP_EQ, me));
    RULE(SCMP_ACT_KILL_PROCESS, "tgkill", 1, SCMP_A0(SCMP_CMP_NE, me));
    RULE(SCMP_ACT_KILL_PROCESS, "tgkill", 1, SCMP_A1(SCMP_CMP_NE, me));
#undef RULE
#undef RULE0
    /* Export the BPF program through a pipe (libseccomp 2.5 writes it to an fd). */
    int p[2];
    if (pipe(p) != 0) { seccomp_release(ctx); SB_FAIL("pipe: %s", strerror(errno)); }
    rc = seccomp_export_bpf(ctx, p[1]);
    seccomp_release(ctx);
    close(p[1]);
    static struct sock_filter buf[BPF_MAXINSNS];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(p[0], (char *)buf + got, sizeof buf - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(p[0]);
    if (rc < 0) SB_FAIL("seccomp_export_bpf: %s", strerror(-rc));
    if (got == 0 || got % sizeof *buf || got == sizeof buf) SB_FAIL("seccomp_export_bpf: bad program size %zu", got);
    filter_insns = buf;
    filter_len = (unsigned short)(got / sizeof *buf);
    filter_pid_slots = 0;
    for (unsigned i = 0; i < filter_len; i++)
        if (buf[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && buf[i].k == SENTINEL_PID) filter_pid_slots++;
    if (filter_pid_slots == 0) SB_FAIL("seccomp template: the pid rules were not found in the program");
    return 0;
}

/* Loads the template with our pid filled in. */
static int load_filter(pid_t self, char *err, size_t errlen) {
    if (!filter_insns) SB_FAIL("sandbox_prepare was not called");
    int found = 0;
    for (unsigned i = 0; i < filter_len; i++) {
        if (filter_insns[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && filter_insns[i].k == SENTINEL_PID) {
            filter_insns[i].k = (uint32_t)self;   /* our copy of the template (we are a forked child) */
            found++;
        }
    }
    if (found != filter_pid_slots) SB_FAIL("seccomp template: %d pid slots, expected %d", found, filter_pid_slots);
    struct sock_fprog prog = {filter_len, filter_insns};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        SB_FAIL("prctl(PR_SET_SECCOMP): %s", strerror(errno));
    return 0;
}



size_t sandbox_address_space(int statm_fd) {
    int fd = statm_fd >= 0 ? statm_fd : open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[128];
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    if (statm_fd < 0) close(fd);
    if (r <= 0) return 0;
    size_t pages = 0;
    ssize_t i = 0;
    for (; i < r && buf[i] >= '0' && buf[i] <= '9'; i++) pages = pages * 10 + (size_t)(buf[i] - '0');
    if (i == 0) return 0;
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static int set_limit(int resource, rlim_t value, const char *name, char *err, size_t errlen) {
    struct rlimit rl = {value, value};
    struct rlimit old;
    /* A limit can only be lowered without privilege: never ask for more than the current hard limit. */
    if (getrlimit(resource, &old) == 0 && old.rlim_max != RLIM_INFINITY && old.rlim_max < value)
        rl.rlim_cur = rl.rlim_max = old.rlim_max;
    if (setrlimit(resource, &rl) != 0) SB_FAIL("setrlimit(%s): %s", name, strerror(errno));
    return 0;
}

int sandbox_enter(const sandbox_limits *l, char *err, size_t errlen) {
    /* 1. Own process group: the worker kills the whole group on its deadline. */
    if (setpgid(0, 0) != 0) SB_FAIL("setpgid: %s", strerror(errno));

    /* 2. Die with the worker; if it is already gone (we were reparented), stop here. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) SB_FAIL("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != l->parent) SB_FAIL("the worker exited before the job started");

    /* 3. The result pipe on SANDBOX_RESULT_FD (and a checker's request pipe on SANDBOX_INPUT_FD), every
     *    other fd closed. */
    if (l->input_fd >= 0 && l->input_fd != SANDBOX_INPUT_FD) SB_FAIL("the input fd must be on fd %d", SANDBOX_INPUT_FD);
    if (l->result_fd != SANDBOX_RESULT_FD) {
        if (l->result_fd == SANDBOX_INPUT_FD && l->input_fd >= 0) SB_FAIL("result and input fds collide");
        if (dup2(l->result_fd, SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD) SB_FAIL("dup2: %s", strerror(errno));
        close(l->result_fd);
    }
    if (l->input_fd >= 0) {
        for (int fd = 0; fd < SANDBOX_RESULT_FD; fd++) close(fd);
        rw_close_fds_from(SANDBOX_INPUT_FD + 1, -1);
    } else {
        rw_close_fds_from(0, SANDBOX_RESULT_FD);
    }
    int nofile = (l->input_fd >= 0 ? SANDBOX_INPUT_FD : SANDBOX_RESULT_FD) + 1;

    /* 4. Resource limits. */
#ifndef GRPO2048_SANITIZE
    if (l->memory_limit) {
        size_t now = l->as_base ? l->as_base : sandbox_address_space(-1);
        if (!now) SB_FAIL("cannot read /proc/self/statm for RLIMIT_AS");
        if (set_limit(RLIMIT_AS, (rlim_t)(now + l->memory_limit), "RLIMIT_AS", err, errlen)) return -1;
    }
#endif
    rlim_t cpu = (rlim_t)ceil(l->cpu_seconds);
    if (cpu < 1) cpu = 1;
    if (set_limit(RLIMIT_CPU, cpu, "RLIMIT_CPU", err, errlen)) return -1;
    if (set_limit(RLIMIT_FSIZE, 0, "RLIMIT_FSIZE", err, errlen)) return -1;
    if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err, errlen)) return -1;
    if (set_limit(RLIMIT_NPROC, 0, "RLIMIT_NPROC", err, errlen)) return -1;
    if (set_limit(RLIMIT_NOFILE, (rlim_t)nofile, "RLIMIT_NOFILE", err, errlen)) return -1;
    if (set_limit(RLIMIT_MEMLOCK, 0, "RLIMIT_MEMLOCK", err, errlen)) return -1;

    /* 5. Not dumpable: no core, and no process of the same user may ptrace it or read its /proc files
     *    (memory, environment); then no capabilities (a no-op for an unprivileged worker). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) SB_FAIL("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) != 0) SB_FAIL("capset: %s", strerror(errno));

    /* 6. No privilege gains through exec (and the precondition of an unprivileged filter). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) SB_FAIL("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));

    /* 7. The system-call filter. */
    return load_filter(getpid(), err, errlen);
}

int sandbox_probe(char *err, size_t errlen) {
    int p[2];
    if (pipe(p) != 0) SB_FAIL("sandbox probe: pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        SB_FAIL("sandbox probe: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(p[0]);
        if (p[1] != SANDBOX_RESULT_FD) {
            if (dup2(p[1], SANDBOX_RESULT_FD) != SANDBOX_RESULT_FD) _exit(5);
            close(p[1]);
        }
        char msg[200] = "";
        sandbox_limits l = {SANDBOX_RESULT_FD, -1, parent, 2.0, (size_t)64 << 20, 0};
        if (sandbox_enter(&l, msg, sizeof msg) == 0) {
            /* The filter must be live: opening a file fails with EACCES. */
            int fd = open("/dev/null", O_RDONLY);
            if (fd >= 0 || errno != EACCES)
                snprintf(msg, sizeof msg, "open() inside the sandbox %s", fd >= 0 ? "succeeded" : strerror(errno));
            else
                snprintf(msg, sizeof msg, "ok");
        }
        (void)rw_write_all(SANDBOX_RESULT_FD, msg, strlen(msg), 0);
        _exit(0);
    }
    close(p[1]);
    char msg[201];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(p[0], msg + got, sizeof msg - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    msg[got] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (strcmp(msg, "ok") != 0)
        SB_FAIL("the job sandbox does not work on this host: %s", got ? msg : "the probe died");
    return 0;
}
