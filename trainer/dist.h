/*
 * trainer/dist.h: data-parallel training over processes, GPUs and nodes — the communicator.
 *
 * `mpirun -np N grpo2048 train|sft CONFIG.yaml` starts N ranks; each loads the same policy, trains on its
 * share of every step's batch, and takes the same optimizer step (docs/scale.md). MPI (Debian's OpenMPI)
 * launches, places and coordinates the processes and does the CPU collectives (MPI_Allreduce, MPI_Bcast,
 * MPI_Allgather); NCCL does the GPU gradient all-reduce, its ncclUniqueId made by rank 0 and broadcast over
 * MPI (as llm.c's multi-GPU trainer does). Nothing home-made on the wire.
 *
 * Lifetime, and why in this order:
 *   1. dist_from_env   before anything else: rank, world size, local rank and local size from the
 *                      launcher's environment (OpenMPI's OMPI_COMM_WORLD_*, MPICH/Hydra's PMI_* and
 *                      MPI_LOCAL*), so a rank can size its reward pool (its share of the node's cores),
 *                      take its share of the BLAS/OpenMP threads, and pick its GPU (CUDA_VISIBLE_DEVICES
 *                      set to the local rank's device) before MPI_Init;
 *   2. the reward pool forks its workers (rewards/pool.c) — before MPI_Init, because MPI_Init starts
 *      threads (OpenMPI's PMIx/ORTE progress threads) and opens sockets and shared memory, and a fork
 *      after it copies one thread of a multi-threaded process (locks held by the others stay held) and the
 *      MPI state into children that must never use it (OpenMPI warns about fork after MPI_Init for this
 *      reason). The pool's workers never call MPI;
 *   3. dist_init       MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread calls MPI) — only when the
 *                      process was launched by an MPI launcher. Without mpirun nothing changes: no MPI_Init,
 *                      world size 1, every collective below returns at once. (Not a singleton MPI_Init:
 *                      OpenMPI's singleton init forks an orted daemon and opens sockets for nothing, which
 *                      costs start-up time and fails in sandboxes without networking.)
 *   4. collectives     at a few points of train.c / sft.c, in the same order on every rank;
 *   5. dist_finalize   MPI_Finalize at the end of the command.
 *
 * Failure: a rank that cannot go on calls dist_abort, which prints "rank R of N (host, pid): reason" and
 * MPI_Abort()s the whole job, so the other ranks do not wait forever in a collective; a rank that dies
 * (a signal, SIGKILL, OOM killer) is noticed by mpirun, which kills the others and names the rank.
 * MPI errors are fatal (MPI_ERRORS_ARE_FATAL, the default on MPI_COMM_WORLD): the collectives here
 * return nothing to check.
 */
#ifndef GRPO2048_DIST_H
#define GRPO2048_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank;         /* 0..world_size-1 (MPI_COMM_WORLD rank) */
    int world_size;   /* ranks in the job; 1 without mpirun */
    int local_rank;   /* rank among the ranks of this node (OMPI_COMM_WORLD_LOCAL_RANK, LOCAL_RANK) */
    int local_size;   /* ranks on this node */
    int launched;     /* 1 when started by an MPI launcher (then dist_init calls MPI_Init) */
    int initialized;  /* 1 after MPI_Init, 0 after MPI_Finalize */
} dist_info;

/* The process's rank information (one per process). Before dist_from_env: a single rank. */
const dist_info *dist_get(void);

/* 1 when this process is rank 0 (the one that writes metrics.sqlite and checkpoints, and prints). */
int dist_is_root(void);

/* Reads the launcher's environment into dist_get() (see the top of this file); when launched with more
 * than one rank on the node it also (a) sets OMP_NUM_THREADS-equivalent limits: omp_set_num_threads and
 * openblas_set_num_threads to max(1, cores / local_size) unless OMP_NUM_THREADS is set, and (b) maps the
 * GPU: CUDA_VISIBLE_DEVICES = the local rank (or the local_rank-th entry of a comma-separated
 * CUDA_VISIBLE_DEVICES), so that device 0 of each rank is its own GPU. Returns 0, or -1 with a message
 * in err: a malformed rank variable, rank >= size, or more local ranks than listed GPUs. */
int dist_from_env(char *err, size_t errlen);

/* The reward workers a rank starts when rewards.workers is 0: its share of the node's cores,
 * max(1, cores / local_size). */
int dist_default_workers(long cores);

/* MPI_Init_thread(MPI_THREAD_FUNNELED) when launched by MPI (else nothing) and checks that MPI's rank
 * and size are the environment's. Returns 0, or -1 with a message (MPI's size differs from the launcher
 * variables' — e.g. a binary built against another MPI than the mpirun used). */
int dist_init(char *err, size_t errlen);

/* MPI_Finalize (when dist_init called MPI_Init). */
void dist_finalize(void);

/* Ends the whole job: prints "grpo2048 <what>: rank R of N (host, pid P): <reason>" on stderr and calls
 * MPI_Abort(MPI_COMM_WORLD, code) when MPI is initialized, else exit(code). Never returns. */
void dist_abort(int code, const char *what, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

typedef enum { DIST_SUM, DIST_MAX, DIST_MIN } dist_op;

/* In-place all-reduce over every rank of x (n,) float32 (MPI_FLOAT) / float64 (MPI_DOUBLE) with op.
 * Every rank must call it with the same n. World size 1: nothing. Counts beyond INT_MAX go in chunks. */
void dist_allreduce_f32(float *x, size_t n, dist_op op);
void dist_allreduce_f64(double *x, size_t n, dist_op op);

/* 1 on every rank when flag != 0 on any rank (a logical OR: a stop signal seen by one rank stops all). */
int dist_any(int flag);

/* Rank root's bytes (n) to every rank (MPI_Bcast). */
void dist_bcast(void *buf, size_t n, int root);

/* Every rank's `n` bytes of send, concatenated in rank order into recv (world_size × n bytes) on every
 * rank (MPI_Allgather). World size 1: a copy. */
void dist_allgather(const void *send, size_t n, void *recv);

/* The strings strs[0..n) of every rank, in rank order, on every rank: out (world_size × n,) receives
 * malloc'd copies (NULL entries stay NULL). Returns 0, or -1 when out of memory. */
int dist_allgather_strings(const char *const *strs, int n, char **out);

/* A 64-bit FNV-1a hash of x (n floats' bytes), compared over the ranks: returns 0 when every rank holds the
 * same bytes, else -1 with a message naming the ranks' hashes' range. Used to check that the ranks' weights
 * (identical optimizer steps on identical all-reduced gradients) never drift. */
int dist_check_same(const float *x, size_t n, const char *what, char *err, size_t errlen);

/* The gradient all-reduce: grads (n,) summed over the ranks in place. on_device: grads is a CUDA device
 * pointer, reduced with NCCL (ncclAllReduce, ncclSum, on the device's own stream, communicator made on first
 * use with an ncclUniqueId broadcast from rank 0 over MPI); else a host pointer, reduced with MPI_Allreduce.
 * Without mpirun: nothing. Under mpirun it runs even with one rank (`mpirun -np 1` checks the NCCL path on a
 * one-GPU machine). Returns 0, or -1 with a message (on_device in a binary built without CUDA/NCCL, NCCL
 * not loadable, or an NCCL error). */
int dist_allreduce_grads(float *grads, size_t n, int on_device, char *err, size_t errlen);

/* NCCL's part of dist_allreduce_grads (trainer/dist_nccl.c, linked into executables built with CUDA;
 * referenced weakly so the trainer library itself needs neither CUDA nor NCCL). */
int dist_nccl_allreduce_sum(float *dev, size_t n, char *err, size_t errlen);
void dist_nccl_finalize(void);

#endif
