/*
 * trainer/dist_nccl.c: the GPU gradient all-reduce of data-parallel runs (trainer/dist.h) with NCCL.
 *
 * Compiled into the executables built with CUDA (CMakeLists.txt adds it to grpo2048 as a source file,
 * as trainer/backend_cuda.c), so the trainer library needs neither CUDA nor NCCL; dist.c refers to the
 * two entry points weakly. As llm.c's multi-GPU trainer: rank 0 makes an ncclUniqueId, MPI_Bcast gives
 * it to every rank, each rank joins the communicator with ncclCommInitRank on its own GPU (device 0 of
 * the process: dist_from_env set CUDA_VISIBLE_DEVICES to the local rank's GPU), and the gradients are
 * summed in place with ncclAllReduce on a stream of this file. The model computes on its own stream, so
 * the device is synchronized before the all-reduce (the last backward pass must be finished) and the
 * stream after it (the clip that follows reads the sums). Every CUDA and NCCL call is checked; an error
 * returns -1 with the call, its error string and the file:line, and the caller aborts the job.
 */
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>

#include "trainer/dist.h"

static ncclComm_t comm;
static cudaStream_t stream;
static int ready;

#define CUDA_TRY(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    snprintf(err, errlen, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); return -1; } } while (0)
#define NCCL_TRY(call) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) { \
    snprintf(err, errlen, "%s:%d: %s: %s", __FILE__, __LINE__, #call, ncclGetErrorString(r_)); return -1; } } while (0)

static int nccl_setup(char *err, size_t errlen) {
    const dist_info *d = dist_get();
    ncclUniqueId id;
    if (d->rank == 0) NCCL_TRY(ncclGetUniqueId(&id));
    dist_bcast(&id, sizeof id, 0);
    CUDA_TRY(cudaSetDevice(0));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    NCCL_TRY(ncclCommInitRank(&comm, d->world_size, id, d->rank));
    ready = 1;
    return 0;
}

int dist_nccl_allreduce_sum(float *dev, size_t n, char *err, size_t errlen) {
    if (!ready && nccl_setup(err, errlen) != 0) return -1;
    CUDA_TRY(cudaDeviceSynchronize());
    NCCL_TRY(ncclAllReduce(dev, dev, n, ncclFloat, ncclSum, comm, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

void dist_nccl_finalize(void) {
    if (!ready) return;
    ncclCommDestroy(comm);
    cudaStreamDestroy(stream);
    ready = 0;
}
