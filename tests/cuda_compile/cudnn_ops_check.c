/*
 * tests/cuda_compile/cudnn_ops_check.c: a host-only check of model/cuda/attention_cudnn.c against the
 * cuDNN library itself, for machines without a GPU (tools/check_cudnn_compile.sh builds and runs it when
 * libcudnn.so.9 and libcudart are found). For each shape it builds the forward and backward graphs'
 * tensors and operations through cuDNN's backend API and finalizes every one of them
 * (llama_cudnn_attn_check_ops): cuDNN then validates each attribute's name, type and value and each
 * operation's shapes. What needs a GPU (the operation graph with its handle, engine heuristics, plans,
 * execution, the numbers) is tests/gpu/test_cuda_cudnn_attention.c's.
 *
 * It also checks that llama_cudnn_attn_create reports a cuDNN that cannot start (no GPU) as an error
 * naming attn_implementation. Exit 0 when everything passes, 1 otherwise (the failures printed).
 */
#include <cuda_runtime_api.h>
#include <cudnn_version.h>
#include <stdio.h>
#include <string.h>

#include "model/cuda/attention_cudnn.h"

/* attention_cudnn.c allocates its workspace through the model's counted allocator (cuda_ctx.cu); this
 * program never reaches an allocation, but links one: plain cudaMalloc / cudaFree. */
int llama_cuda_malloc(llama_cuda_ctx *ctx, void **p, size_t bytes, const char *what, char *err, size_t errlen) {
    (void)ctx;
    if (cudaMalloc(p, bytes) != cudaSuccess) {
        snprintf(err, errlen, "cudaMalloc of %zu bytes for %s failed", bytes, what);
        return -1;
    }
    return 0;
}

void llama_cuda_mfree(llama_cuda_ctx *ctx, void *p, size_t bytes) {
    (void)ctx;
    (void)bytes;
    if (p) cudaFree(p);
}

int main(void) {
    /* B, T, NH, NKV, HS: multi-head, grouped-query 3:1 and 7:1 (Qwen2.5-0.5B: 14:2, HS 64), MQA, odd T,
     * head sizes 64 and 128 */
    static const int shapes[][5] = {
        {2, 64, 4, 4, 64}, {2, 37, 6, 2, 64}, {1, 300, 14, 2, 64}, {3, 17, 8, 1, 128}, {1, 128, 9, 3, 32},
    };
    printf("cuDNN %zu (compiled against %d)\n", llama_cudnn_attn_version(), CUDNN_VERSION);
    int bad = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        char msg[300];
        int rc = llama_cudnn_attn_check_ops(s[0], s[1], s[2], s[3], s[4], msg, sizeof msg);
        printf("  B=%d T=%d NH=%d NKV=%d HS=%d: %s%s\n", s[0], s[1], s[2], s[3], s[4], rc ? "FAILED: " : "ok, ", msg);
        bad |= rc != 0;
    }
    /* the handle: without a GPU cudnnCreate fails, and llama_cudnn_attn_create must say so (with a GPU it
     * succeeds and the state is freed again) */
    llama_cudnn_attn *a = NULL;
    char err[400] = "";
    int rc = llama_cudnn_attn_create(&a, NULL, NULL, err, sizeof err);
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
    printf("  llama_cudnn_attn_create with %d device(s): %s\n", devices, rc ? err : "ok");
    if (devices == 0 && (rc != -1 || a != NULL || !strstr(err, "attn_implementation: cudnn: cuDNN did not start"))) {
        printf("FAILED: without a GPU llama_cudnn_attn_create must fail with a message naming attn_implementation\n");
        bad = 1;
    }
    llama_cudnn_attn_free(a);
    return bad;
}
