/*
 * trainer/dist.c: the communicator of data-parallel runs (dist.h): the rank from the launcher's
 * environment, MPI_Init only under an MPI launcher, MPI collectives on host buffers, the gradient
 * all-reduce (MPI on the CPU, NCCL through dist_nccl.c on the GPU), and the job-wide abort.
 */
#include "trainer/dist.h"

#include <cblas.h>
#include <limits.h>
#include <mpi.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* NCCL lives in trainer/dist_nccl.c, linked only into executables built with CUDA (as backend_cuda.c). */
#pragma weak dist_nccl_allreduce_sum
#pragma weak dist_nccl_finalize

static dist_info g_dist = {0, 1, 0, 1, 0, 0};

const dist_info *dist_get(void) { return &g_dist; }
int dist_is_root(void) { return g_dist.rank == 0; }

/* The first of the variables names that is set, parsed as an int >= 0 into *out: 1 found, 0 none set,
 * -1 malformed (message in err). */
static int env_int(const char *const *names, int *out, char *err, size_t errlen) {
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (!v || !*v) continue;
        char *end;
        long x = strtol(v, &end, 10);
        if (*end || x < 0 || x > INT_MAX) {
            snprintf(err, errlen, "environment variable %s='%s': expected a non-negative integer", names[i], v);
            return -1;
        }
        *out = (int)x;
        return 1;
    }
    return 0;
}

int dist_from_env(char *err, size_t errlen) {
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL};
    static const char *const lrank_vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK", NULL};
    static const char *const lsize_vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "LOCAL_WORLD_SIZE", NULL};
    dist_info d = {0, 1, 0, 1, 0, 0};
    int rc;
    if ((rc = env_int(size_vars, &d.world_size, err, errlen)) < 0) return -1;
    d.launched = rc == 1;
    if (env_int(rank_vars, &d.rank, err, errlen) < 0 || env_int(lrank_vars, &d.local_rank, err, errlen) < 0 ||
        env_int(lsize_vars, &d.local_size, err, errlen) < 0)
        return -1;
    if (!d.launched) {   /* not under mpirun: one rank, whatever LOCAL_RANK says about the GPU */
        d.rank = 0;
        d.world_size = 1;
        d.local_size = d.local_rank + 1;
    }
    if (d.world_size < 1 || d.rank >= d.world_size || d.local_size < 1 || d.local_rank >= d.local_size) {
        snprintf(err, errlen, "the MPI launcher's environment says rank %d of %d, local rank %d of %d: expected "
                 "0 <= rank < size and 0 <= local rank < local size", d.rank, d.world_size, d.local_rank, d.local_size);
        return -1;
    }
    /* One GPU per rank: device 0 of this process is the local rank's GPU. */
    if (d.local_size > 1 || d.local_rank > 0) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        char buf[64];
        if (!vis || !*vis) {
            snprintf(buf, sizeof buf, "%d", d.local_rank);
            setenv("CUDA_VISIBLE_DEVICES", buf, 1);
        } else if (strchr(vis, ',')) {
            const char *p = vis;
            for (int i = 0; i < d.local_rank && p; i++) {
                p = strchr(p, ',');
                if (p) p++;
            }
            if (!p) {
                snprintf(err, errlen, "local rank %d needs its own GPU, but CUDA_VISIBLE_DEVICES='%s' lists fewer "
                         "(one process per GPU: start at most as many ranks per node as GPUs, or use device: cpu)",
                         d.local_rank, vis);
                return -1;
            }
            size_t k = strcspn(p, ",");
            if (k >= sizeof buf) k = sizeof buf - 1;
            memcpy(buf, p, k);
            buf[k] = 0;
            setenv("CUDA_VISIBLE_DEVICES", buf, 1);
        }   /* a single device listed: every local rank shares it (the user's choice) */
    }
    /* The node's cores shared between its ranks: OpenMP and OpenBLAS threads (the reward workers are sized
     * by dist_default_workers). An explicit OMP_NUM_THREADS wins. */
    if (d.local_size > 1 && !getenv("OMP_NUM_THREADS")) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int nt = (int)(cores > 0 ? cores : 1) / d.local_size;
        if (nt < 1) nt = 1;
        omp_set_num_threads(nt);
        openblas_set_num_threads(nt);
    }
    g_dist = d;
    return 0;
}

int dist_default_workers(long cores) {
    long w = (cores > 0 ? cores : 1) / g_dist.local_size;
    return w < 1 ? 1 : (int)w;
}

int dist_init(char *err, size_t errlen) {
    if (!g_dist.launched || g_dist.initialized) return 0;
    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    g_dist.initialized = 1;
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != g_dist.rank || size != g_dist.world_size) {
        snprintf(err, errlen, "MPI_Init says rank %d of %d, the launcher's environment rank %d of %d: is this "
                 "grpo2048 built against the MPI of the mpirun that started it?", rank, size, g_dist.rank,
                 g_dist.world_size);
        return -1;
    }
    return 0;
}

void dist_finalize(void) {
    if (!g_dist.initialized) return;
    if (dist_nccl_finalize) dist_nccl_finalize();
    MPI_Finalize();
    g_dist.initialized = 0;
}

void dist_abort(int code, const char *what, const char *fmt, ...) {
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "grpo2048 %s: rank %d of %d (%s, pid %d): %s; aborting the job\n", what, g_dist.rank,
            g_dist.world_size, host, (int)getpid(), msg);
    fflush(stderr);
    if (g_dist.initialized) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);
}

static MPI_Op mpi_op(dist_op op) { return op == DIST_MAX ? MPI_MAX : op == DIST_MIN ? MPI_MIN : MPI_SUM; }

static void allreduce(void *x, size_t n, size_t size, MPI_Datatype t, dist_op op) {
    if (!g_dist.initialized || g_dist.world_size == 1) return;
    char *p = x;
    while (n > 0) {
        int k = n > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, p, k, t, mpi_op(op), MPI_COMM_WORLD);
        p += (size_t)k * size;
        n -= (size_t)k;
    }
}

void dist_allreduce_f32(float *x, size_t n, dist_op op) { allreduce(x, n, sizeof(float), MPI_FLOAT, op); }
void dist_allreduce_f64(double *x, size_t n, dist_op op) { allreduce(x, n, sizeof(double), MPI_DOUBLE, op); }

int dist_any(int flag) {
    if (!g_dist.initialized || g_dist.world_size == 1) return flag != 0;
    int v = flag != 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

void dist_bcast(void *buf, size_t n, int root) {
    if (!g_dist.initialized || g_dist.world_size == 1) return;
    char *p = buf;
    while (n > 0) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        MPI_Bcast(p, k, MPI_BYTE, root, MPI_COMM_WORLD);
        p += k;
        n -= (size_t)k;
    }
}

void dist_allgather(const void *send, size_t n, void *recv) {
    if (!g_dist.initialized || g_dist.world_size == 1) {
        memmove(recv, send, n);
        return;
    }
    if (n > (size_t)INT_MAX) dist_abort(1, "dist", "dist_allgather of %zu bytes (at most INT_MAX)", n);
    MPI_Allgather(send, (int)n, MPI_BYTE, recv, (int)n, MPI_BYTE, MPI_COMM_WORLD);
}

int dist_allgather_strings(const char *const *strs, int n, char **out) {
    const int W = g_dist.initialized ? g_dist.world_size : 1;
    /* lengths (+1, 0 for NULL) then one MPI_Allgatherv of the concatenated bytes */
    int *len = malloc(sizeof(int) * (size_t)n * W), *counts = malloc(sizeof(int) * W), *displs = malloc(sizeof(int) * W);
    int rc = -1;
    char *send = NULL, *recv = NULL;
    if (!len || !counts || !displs) goto done;
    int *mine = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    if (!mine) goto done;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strs[i] ? strlen(strs[i]) + 1 : 0;
        if (l > (size_t)INT_MAX / 2) l = (size_t)INT_MAX / 2;
        mine[i] = (int)l;
        total += l;
    }
    dist_allgather(mine, sizeof(int) * (size_t)n, len);
    free(mine);
    if (total > (size_t)INT_MAX) goto done;
    send = malloc(total + 1);
    if (!send) goto done;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const int l = len[(size_t)g_dist.rank * n + i];
        if (l > 0) {
            memcpy(send + off, strs[i], (size_t)l - 1);
            send[off + l - 1] = 0;
        }
        off += (size_t)l;
    }
    long long all = 0;
    for (int r = 0; r < W; r++) {
        long long c = 0;
        for (int i = 0; i < n; i++) c += len[(size_t)r * n + i];
        if (all + c > INT_MAX) goto done;
        counts[r] = (int)c;
        displs[r] = (int)all;
        all += c;
    }
    recv = malloc((size_t)all + 1);
    if (!recv) goto done;
    if (g_dist.initialized && W > 1)
        MPI_Allgatherv(send, counts[g_dist.rank], MPI_BYTE, recv, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
    else
        memcpy(recv, send, (size_t)all);
    size_t p = 0;
    for (int k = 0; k < n * W; k++) {
        out[k] = NULL;
        if (len[k] > 0) {
            out[k] = malloc((size_t)len[k]);
            if (!out[k]) {
                for (int j = 0; j < k; j++) { free(out[j]); out[j] = NULL; }
                goto done;
            }
            memcpy(out[k], recv + p, (size_t)len[k]);
            out[k][len[k] - 1] = 0;
        }
        p += (size_t)len[k];
    }
    rc = 0;
done:
    free(len); free(counts); free(displs); free(send); free(recv);
    return rc;
}

int dist_check_same(const float *x, size_t n, const char *what, char *err, size_t errlen) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a, 64-bit */
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) { h ^= b[i]; h *= 1099511628211ull; }
    if (!g_dist.initialized || g_dist.world_size == 1) return 0;
    unsigned long long lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (lo == hi) return 0;
    snprintf(err, errlen, "the ranks' %s differ (FNV-1a hashes from %016llx to %016llx; this rank %016llx): the "
             "ranks no longer take identical steps", what, lo, hi, (unsigned long long)h);
    return -1;
}

int dist_allreduce_grads(float *grads, size_t n, int on_device, char *err, size_t errlen) {
    if (!g_dist.initialized) return 0;   /* under mpirun (even -np 1) the collective runs: NCCL is exercised */
    if (on_device) {
        if (!dist_nccl_allreduce_sum) {
            snprintf(err, errlen, "the gradients are on the GPU, but this grpo2048 was built without NCCL (build with "
                     "CUDA: docs/scale.md), or use device: cpu");
            return -1;
        }
        return dist_nccl_allreduce_sum(grads, n, err, errlen);
    }
    dist_allreduce_f32(grads, n, DIST_SUM);
    return 0;
}
