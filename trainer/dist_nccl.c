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
 *
 * NCCL is dlopen()ed (libnccl.so.2) on the first all-reduce, not linked: grpo2048 then starts on machines
 * without NCCL (one-GPU and CPU runs need none), and only a data-parallel GPU run asks for it, with a
 * message saying where it comes from. nccl.h is still the source of the types and signatures.
 */
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>

#include "trainer/dist.h"

static ncclComm_t comm;
static cudaStream_t stream;
static int ready;

/* the NCCL functions used, from libnccl.so.2 */
static struct {
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    const char *(*get_error_string)(ncclResult_t);
} nccl;

static int nccl_load(char *err, size_t errlen) {
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "data-parallel GPU training needs NCCL, and libnccl.so.2 cannot be loaded (%s): install "
                 "the CUDA toolkit's NCCL or Debian's libnccl2, or add its folder to LD_LIBRARY_PATH", dlerror());
        return -1;
    }
    *(void **)&nccl.get_unique_id = dlsym(h, "ncclGetUniqueId");
    *(void **)&nccl.comm_init_rank = dlsym(h, "ncclCommInitRank");
    *(void **)&nccl.all_reduce = dlsym(h, "ncclAllReduce");
    *(void **)&nccl.comm_destroy = dlsym(h, "ncclCommDestroy");
    *(void **)&nccl.get_error_string = dlsym(h, "ncclGetErrorString");
    if (!nccl.get_unique_id || !nccl.comm_init_rank || !nccl.all_reduce || !nccl.comm_destroy || !nccl.get_error_string) {
        snprintf(err, errlen, "libnccl.so.2 lacks one of ncclGetUniqueId, ncclCommInitRank, ncclAllReduce, "
                 "ncclCommDestroy, ncclGetErrorString (too old a NCCL)");
        return -1;
    }
    return 0;
}

#define CUDA_TRY(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    snprintf(err, errlen, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); return -1; } } while (0)
#define NCCL_TRY(call) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) { \
    snprintf(err, errlen, "%s:%d: %s: %s", __FILE__, __LINE__, #call, nccl.get_error_string(r_)); return -1; } } while (0)

static int nccl_setup(char *err, size_t errlen) {
    const dist_info *d = dist_get();
    if (nccl_load(err, errlen) != 0) return -1;
    ncclUniqueId id;
    if (d->rank == 0) NCCL_TRY(nccl.get_unique_id(&id));
    dist_bcast(&id, sizeof id, 0);
    CUDA_TRY(cudaSetDevice(0));
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    NCCL_TRY(nccl.comm_init_rank(&comm, d->world_size, id, d->rank));
    ready = 1;
    return 0;
}

int dist_nccl_allreduce_sum(float *dev, size_t n, char *err, size_t errlen) {
    if (!ready && nccl_setup(err, errlen) != 0) return -1;
    CUDA_TRY(cudaDeviceSynchronize());
    NCCL_TRY(nccl.all_reduce(dev, dev, n, ncclFloat, ncclSum, comm, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

void dist_nccl_finalize(void) {
    if (!ready) return;
    nccl.comm_destroy(comm);
    cudaStreamDestroy(stream);
    ready = 0;
}
