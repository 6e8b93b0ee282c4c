/*
 * rewards/wire.c: the I/O helpers every process of the reward pool uses (trainer, zygote, worker,
 * child): full reads and writes that survive EINTR and short transfers, one-message fd passing over
 * AF_UNIX seqpacket sockets (SCM_RIGHTS), closing inherited fds, resetting signals after fork, and the
 * monotonic clock. Nothing here allocates (except rw_close_fds_from's /proc fallback for kernels
 * without close_range), so the helpers are safe in a freshly forked child.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rewards/pool_internal.h"

double rw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rw_write_all(int fd, const void *buf, size_t n, int is_socket) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rw_read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) {
            if (got == 0) return 0;
            errno = EPROTO;
            return -1;
        }
        got += (size_t)r;
    }
    return 1;
}

int rw_send_msg_fd(int sock, const void *msg, size_t len, int fd) {
    struct iovec iov = {(void *)msg, len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    memset(&ctrl, 0, sizeof ctrl);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd >= 0) {
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = sizeof ctrl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    for (;;) {
        ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if ((size_t)w != len) {
            errno = EPROTO;
            return -1;
        }
        return 0;
    }
}

int rw_recv_msg_fd(int sock, void *msg, size_t len, int *fd) {
    struct iovec iov = {msg, len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl.buf;
    mh.msg_controllen = sizeof ctrl.buf;
    *fd = -1;
    ssize_t r;
    do {
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
    if (r == 0) return 0;
    if ((size_t)r != len || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (*fd >= 0) close(*fd);
        *fd = -1;
        errno = EPROTO;
        return -1;
    }
    return 1;
}

void rw_close_fds_from(int from, int keep) {
    if (keep < from) keep = -1;
    /* close_range (Linux 5.9) closes whole ranges in one call; no allocation, no /proc needed. */
#ifdef SYS_close_range
    int ok;
    if (keep < 0) {
        ok = syscall(SYS_close_range, (unsigned)from, ~0u, 0) == 0;
    } else {
        ok = (keep == from || syscall(SYS_close_range, (unsigned)from, (unsigned)keep - 1, 0) == 0) &&
             syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0;
    }
    if (ok) return;
#endif
    /* Older kernels: list /proc/self/fd (the directory's own fd is skipped), else close blindly. */
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int dfd = dirfd(d);
        struct dirent *e;
        int fds[256], nfds = 0;
        /* Collect first, close after: closing while reading the directory would change it. */
        for (;;) {
            nfds = 0;
            rewinddir(d);
            while ((e = readdir(d)) && nfds < 256) {
                int fd = atoi(e->d_name);
                if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
                if (fd >= from && fd != keep && fd != dfd) fds[nfds++] = fd;
            }
            for (int i = 0; i < nfds; i++) close(fds[i]);
            if (nfds < 256) break;
        }
        closedir(d);
        return;
    }
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 65536;
    for (long fd = from; fd < max; fd++)
        if (fd != keep) close((int)fd);
}

void rw_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &sa, NULL);   /* fails harmlessly for the signals glibc reserves */
    }
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* SipHash-2-4 (Aumasson and Bernstein) of one 64-bit word under a fixed 128-bit key. */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3) do { \
        v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
        v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); } while (0)

uint64_t rw_python_seed(uint64_t game_seed) {
    const uint64_t k0 = 0x6772706f32303438ull, k1 = 0x7079746872616e64ull;   /* "grpo2048", "pythrand" */
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t m = game_seed, b = (uint64_t)8 << 56;
    v3 ^= m;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= m;
    v3 ^= b;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++) SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

size_t reward_escape_text(char *dst, size_t dstlen, const char *src, size_t srclen) {
    if (!dst || dstlen == 0) return 0;
    size_t o = 0;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < srclen;) {
        unsigned char c = (unsigned char)src[i];
        char esc[5];
        size_t el = 0, take = 1;
        if (c == '\\') { esc[0] = '\\'; esc[1] = '\\'; el = 2; }
        else if (c == '\n') { esc[0] = '\\'; esc[1] = 'n'; el = 2; }
        else if (c == '\r') { esc[0] = '\\'; esc[1] = 'r'; el = 2; }
        else if (c == '\t') { esc[0] = '\\'; esc[1] = 't'; el = 2; }
        else if (c < 0x20 || c == 0x7f) { esc[0] = '\\'; esc[1] = 'x'; esc[2] = hex[c >> 4]; esc[3] = hex[c & 15]; el = 4; }
        else if (c < 0x80) { esc[0] = (char)c; el = 1; }
        else {
            /* A well-formed UTF-8 sequence (no overlong forms, no surrogates) is kept unless it encodes a
             * C1 control (U+0080..U+009F: 8-bit terminal controls) or a bidirectional override
             * (U+202A..U+202E, U+2066..U+2069); anything else is escaped byte by byte. */
            size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
            uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
            int ok = len > 0 && i + len <= srclen;
            for (size_t k = 1; ok && k < len; k++) {
                unsigned char d = (unsigned char)src[i + k];
                if ((d & 0xc0) != 0x80) ok = 0;
                cp = (cp << 6) | (d & 0x3f);
            }
            if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                       (cp >= 0xd800 && cp <= 0xdfff)))
                ok = 0;
            if (ok && ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)))
                ok = 0;
            if (ok) {
                memcpy(esc, src + i, len);
                el = take = len;
            } else {
                esc[0] = '\\'; esc[1] = 'x'; esc[2] = hex[c >> 4]; esc[3] = hex[c & 15]; el = 4;
            }
        }
        if (o + el >= dstlen) break;   /* whole escapes only */
        memcpy(dst + o, esc, el);
        o += el;
        i += take;
    }
    dst[o] = '\0';
    return o;
}
