/*
 * model/cuda/attention_impl.cu: which implementation runs the training attention (config key
 * attn_implementation, transformers' name): our kernels (attention.cu) or cuDNN's fused flash attention
 * (attention_cudnn.c, C over cuDNN's backend API). llama_cuda_attention_forward / _backward ask
 * llama_cuda_attn_try_cudnn_* first; when it returns 0 they run their own kernels.
 *
 * cuDNN is linked only into the real CUDA build, and only when CMake found it (GRPO2048_HAVE_CUDNN); the
 * CPU emulator of CUDA (tests/gpu/emu) builds this file without it, so there cudnn is refused with a
 * message, as it is outside BF16 precision (cuDNN's fused attention takes bf16 tensors).
 */
#include "model/cuda/cuda_common.cuh"

#ifdef GRPO2048_HAVE_CUDNN
#include "model/cuda/attention_cudnn.h"
#endif

extern "C" int llama_cuda_cudnn_version(void) {
#ifdef GRPO2048_HAVE_CUDNN
    return (int)llama_cudnn_attn_version();
#else
    return 0;
#endif
}

extern "C" int llama_cuda_ctx_set_attn_implementation(llama_cuda_ctx *ctx, int impl, char *err, size_t errlen) {
    if (impl == LLAMA_CUDA_ATTN_NATIVE) {
        ctx->attn_impl = impl;   /* the cuDNN state (if any) stays for a later switch back */
        return 0;
    }
    if (impl != LLAMA_CUDA_ATTN_CUDNN) {
        snprintf(err, errlen, "attn_implementation: %d is not LLAMA_CUDA_ATTN_NATIVE (0) or LLAMA_CUDA_ATTN_CUDNN (1)",
                 impl);
        return -1;
    }
    if (ctx->precision != LLAMA_CUDA_BF16) {
        snprintf(err, errlen, "attn_implementation: cudnn needs bf16: true (cuDNN's fused attention takes bfloat16; "
                 "this model computes in %s); use attn_implementation: native", ctx->precision == LLAMA_CUDA_TF32 ?
                 "tf32" : "fp32");
        return -1;
    }
#ifdef GRPO2048_HAVE_CUDNN
    if (!ctx->cudnn && llama_cudnn_attn_create(&ctx->cudnn, ctx, (void *)ctx->stream, err, errlen) != 0) return -1;
    ctx->attn_impl = impl;
    return 0;
#else
#ifdef GRPO2048_CUDA_EMU
    snprintf(err, errlen, "attn_implementation: cudnn is not available on the CPU emulator of CUDA (no cuDNN there); "
             "use attn_implementation: native");
#else
    snprintf(err, errlen, "attn_implementation: cudnn, but this grpo2048 was built without cuDNN (CMake did not find "
             "cudnn.h / libcudnn: set CUDNN_PATH, see docs/gpu.md); use attn_implementation: native");
#endif
    return -1;
#endif
}

extern "C" int llama_cuda_set_attn_implementation(llama_cuda_model *cm, int impl, char *err, size_t errlen) {
    return llama_cuda_ctx_set_attn_implementation(cm->ctx, impl, err, errlen);
}

extern "C" void llama_cuda_attn_counts(const llama_cuda_ctx *ctx, long *cudnn_calls, long *native_calls) {
    if (cudnn_calls) *cudnn_calls = ctx->attn_cudnn_calls;
    if (native_calls) *native_calls = ctx->attn_native_calls;
}

int llama_cuda_attn_try_cudnn_forward(llama_cuda_ctx *ctx, void *out, float *lse, const void *q, const void *k,
                                      const void *v, int B, int T, int NH, int NKV, int HS, int window) {
#ifdef GRPO2048_HAVE_CUDNN
    if (ctx->attn_impl == LLAMA_CUDA_ATTN_CUDNN &&
        llama_cudnn_attn_forward(ctx->cudnn, ctx->act, out, lse, q, k, v, B, T, NH, NKV, HS, window) == 0) {
        ctx->attn_cudnn_calls++;
        return 1;
    }
#endif
    ctx->attn_native_calls++;
    return 0;
}

int llama_cuda_attn_try_cudnn_backward(llama_cuda_ctx *ctx, void *dq, void *dk, void *dv, const void *dout,
                                       const void *q, const void *k, const void *v, const void *out, const float *lse,
                                       int B, int T, int NH, int NKV, int HS, int window) {
#ifdef GRPO2048_HAVE_CUDNN
    if (ctx->attn_impl == LLAMA_CUDA_ATTN_CUDNN &&
        llama_cudnn_attn_backward(ctx->cudnn, ctx->act, dq, dk, dv, dout, q, k, v, out, lse, B, T, NH, NKV, HS,
                                  window) == 0) {
        ctx->attn_cudnn_calls++;
        return 1;
    }
#endif
    ctx->attn_native_calls++;
    return 0;
}

void llama_cuda_attn_impl_free(llama_cuda_ctx *ctx) {
#ifdef GRPO2048_HAVE_CUDNN
    llama_cudnn_attn_free(ctx->cudnn);
#endif
    ctx->cudnn = NULL;
}
