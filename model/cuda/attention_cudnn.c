/*
 * model/cuda/attention_cudnn.c: causal grouped-query attention for training through cuDNN's fused
 * flash attention, written against cuDNN 9's backend API (cudnn_graph.h: cudnnBackendCreateDescriptor,
 * operation graphs, engine heuristics, execution plans, variant packs). See attention_cudnn.h for the
 * contract; docs/gpu.md for how it is selected (attn_implementation: cudnn) and verified.
 *
 * Why these graphs. cuDNN runs attention as one fused kernel when the operation graph has the shape
 * its runtime-fusion engines recognize. cuDNN's own frontend (NVIDIA/cudnn-frontend, C++) builds that
 * shape from primitive backend operations; we build the same graphs in C, operation by operation, in
 * the frontend's order (its CompositeSDPANode / CompositeSDPABackwardNode, with the causal mask of
 * attn_score_modifiers.h's causal_mask lowered as CompositeDiagonalBandMaskNode lowers it):
 *
 *   forward   S = Q·Kᵀ; S *= scale; mask: S = (row >= col) ? S : -inf; M = max_row S; E = exp(S - M);
 *             Z = sum_row E; lse = M + log Z (output); P = E / Z (bf16); O = P·V (output)
 *   backward  Dsum = sum_row(dO ∘ O) (fp32, in our workspace); S = Q·Kᵀ * scale - lse; mask;
 *             P = exp(S); dV = Pᵀ·dO (summed over each kv head's query heads: a reduction when
 *             NH > NKV); dP = dO·Vᵀ; dS = (dP - Dsum) ∘ P * scale; dK = dSᵀ·Q (reduced likewise);
 *             dQ = dS·K into an fp32 accumulator (our workspace), copied to dq (bf16)
 *
 * cuDNN 9.13+ also has a dedicated CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR (9.17+: _BWD), but its
 * causal mask needs the score-modifier subgraph attributes of 9.21+ ("documentation pending",
 * backward "unpublished" in 9.26's header), while the composite graphs run on every cuDNN 9: we use
 * those. A key/value head feeds NH/NKV query heads by broadcasting over the head dimension (Q is
 * (B, NH, T, HS), K (B, NKV, T, HS)), as the frontend passes grouped-query shapes.
 *
 * Layouts: our activations are row-major (B*T, heads*HS), i.e. the (b, h, t, d) element at
 * b*T*heads*HS + t*heads*HS + h*HS + d: dims (B, heads, T, HS) with strides (T*heads*HS, HS,
 * heads*HS, 1), which cuDNN takes as is (no transposes). Kᵀ and Vᵀ are the same memory with the last
 * two dims and strides swapped; lse is (B, NH, T, 1) with strides (NH*T, T, 1, 1).
 *
 * Plans are cached per (direction, B, T, NH, NKV, HS): building one (heuristics, engine finalization,
 * which may compile a kernel) costs milliseconds to seconds, executing it microseconds. A shape whose
 * graph cuDNN refuses is remembered as refused (one stderr line) and the caller runs the native kernels.
 * All descriptors of a plan live until the plan is evicted (the plan refers to its graph).
 *
 * Unverified on hardware (no GPU session has run it yet): tests/gpu/test_cuda_cudnn_attention.c
 * compares it with the native kernels on a GPU; tools/check_cudnn_compile.sh compiles it anywhere the
 * cuDNN headers are.
 */
#include "model/cuda/attention_cudnn.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_CACHE 32      /* shapes remembered (micro-batches pad to few distinct T) */
#define MAX_DESCS 256      /* descriptors of one plan: tensors, op configs, operations, graph, heuristics, configs */
#define MAX_OPS 32
#define MAX_CONFIGS 16     /* engine configurations tried per graph, best first */

/* Fixed UIDs of the tensors we hand to cuDNN (virtual tensors number from UID_VIRTUAL). */
enum {
    UID_Q = 1, UID_K, UID_V, UID_O, UID_LSE, UID_DO, UID_DQ, UID_DK, UID_DV, UID_DSUM, UID_DQ_ACC,
    UID_SCALE, UID_NEG_INF, UID_ONE, UID_VIRTUAL = 100
};

typedef struct {
    int used, bwd, B, T, NH, NKV, HS;
    int ok;                               /* 1: plan usable; 0: refused (run native) */
    cudnnBackendDescriptor_t descs[MAX_DESCS];
    int ndescs;
    cudnnBackendDescriptor_t plan;        /* == one of descs */
    size_t plan_ws;                       /* the plan's workspace bytes */
    size_t own_ws;                        /* our part before it: Dsum, dQ accumulator (backward) */
} plan_entry;

struct llama_cudnn_attn {
    llama_cuda_ctx *ctx;
    cudaStream_t stream;
    cudnnHandle_t handle;
    plan_entry plans[PLAN_CACHE];
    int next_evict;
    void *ws;                             /* device workspace: own part, then the plan's */
    size_t ws_bytes;
    float scale_host[1], neg_inf_host[1], one_host[1];   /* by-value scalars (variant pack points here) */
};

size_t llama_cudnn_attn_version(void) { return cudnnGetVersion(); }

/* ------------------------------------------------------------------------------------------------
 * A small graph builder: every call records the first failure (status and what failed) and does
 * nothing once one is recorded, so a graph is written as straight-line code and checked once.
 */

typedef struct {
    plan_entry *e;
    cudnnStatus_t st;
    char what[200];
    int64_t next_uid;
    cudnnBackendDescriptor_t ops[MAX_OPS];
    int nops;
} gb;

static void gb_fail(gb *g, cudnnStatus_t st, const char *what) {
    if (g->st != CUDNN_STATUS_SUCCESS) return;
    g->st = st;
    char last[160] = "";
    cudnnGetLastErrorString(last, sizeof last);
    snprintf(g->what, sizeof g->what, "%s: %s%s%.120s", what, cudnnGetErrorString(st), last[0] ? "; " : "", last);
}

static cudnnBackendDescriptor_t gb_new(gb *g, cudnnBackendDescriptorType_t t, const char *what) {
    if (g->st != CUDNN_STATUS_SUCCESS) return NULL;
    if (g->e->ndescs >= MAX_DESCS) {
        gb_fail(g, CUDNN_STATUS_INTERNAL_ERROR, "too many descriptors (MAX_DESCS)");
        return NULL;
    }
    cudnnBackendDescriptor_t d = NULL;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(t, &d);
    if (st != CUDNN_STATUS_SUCCESS) {
        gb_fail(g, st, what);
        return NULL;
    }
    g->e->descs[g->e->ndescs++] = d;
    return d;
}

static void gb_set(gb *g, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                   int64_t n, const void *v, const char *what) {
    if (g->st != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t st = cudnnBackendSetAttribute(d, name, type, n, v);
    if (st != CUDNN_STATUS_SUCCESS) gb_fail(g, st, what);
}

static void gb_finalize(gb *g, cudnnBackendDescriptor_t d, const char *what) {
    if (g->st != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t st = cudnnBackendFinalize(d);
    if (st != CUDNN_STATUS_SUCCESS) gb_fail(g, st, what);
}

static void gb_op(gb *g, cudnnBackendDescriptor_t op, const char *what) {
    gb_finalize(g, op, what);
    if (g->st != CUDNN_STATUS_SUCCESS) return;
    if (g->nops >= MAX_OPS) {
        gb_fail(g, CUDNN_STATUS_INTERNAL_ERROR, "too many operations (MAX_OPS)");
        return;
    }
    g->ops[g->nops++] = op;
}

/* A 4-d tensor. uid 0: the next virtual uid and is_virtual; by_value: a host scalar (dims 1,1,1,1). */
static cudnnBackendDescriptor_t gb_tensor(gb *g, int64_t uid, cudnnDataType_t dt, int64_t d0, int64_t d1, int64_t d2,
                                          int64_t d3, int64_t s0, int64_t s1, int64_t s2, int64_t s3, bool by_value) {
    bool is_virtual = uid == 0;
    if (is_virtual) uid = g->next_uid++;
    int64_t dims[4] = {d0, d1, d2, d3}, strides[4] = {s0, s1, s2, s3}, align = 16;
    cudnnBackendDescriptor_t t = gb_new(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor descriptor");
    gb_set(g, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
    gb_set(g, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims, "tensor dimensions");
    gb_set(g, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides, "tensor strides");
    gb_set(g, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    gb_set(g, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    gb_set(g, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor is_virtual");
    if (by_value) gb_set(g, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by_value");
    gb_finalize(g, t, "tensor finalize");
    return t;
}

/* A virtual tensor shaped like (B, H, R, C) packed row-major. */
static cudnnBackendDescriptor_t gb_virt(gb *g, cudnnDataType_t dt, int64_t B, int64_t H, int64_t R, int64_t C) {
    return gb_tensor(g, 0, dt, B, H, R, C, H * R * C, R * C, C, 1, false);
}

/* A host scalar tensor passed by value. */
static cudnnBackendDescriptor_t gb_scalar(gb *g, int64_t uid) {
    return gb_tensor(g, uid, CUDNN_DATA_FLOAT, 1, 1, 1, 1, 1, 1, 1, 1, true);
}

/* y = mode(x [, b [, t]]) elementwise with broadcasting; axis >= 0 for GEN_INDEX. Port names as
 * cudnn_graph.h: X, B (second input), T (third: BINARY_SELECT's predicate), Y. */
static void gb_pointwise(gb *g, cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
                         cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                         int64_t axis) {
    cudnnBackendDescriptor_t pw = gb_new(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise descriptor");
    gb_set(g, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    gb_set(g, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise math precision");
    if (axis >= 0) gb_set(g, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    gb_finalize(g, pw, "pointwise descriptor finalize");
    cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise operation");
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pointwise op");
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "pointwise x");
    if (b) gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "pointwise b");
    if (t) gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, "pointwise t");
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "pointwise y");
    float one = 1.0f;
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha1");
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha2");
    gb_op(g, op, "pointwise operation finalize");
}

/* c = a · b (batched over the first two dims, broadcasting b's heads over a's), fp32 accumulation. */
static void gb_matmul(gb *g, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t mm = gb_new(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul descriptor");
    gb_set(g, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "matmul compute type");
    gb_finalize(g, mm, "matmul descriptor finalize");
    cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul operation");
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, "matmul a");
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "matmul b");
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, "matmul c");
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, "matmul desc");
    gb_op(g, op, "matmul operation finalize");
}

/* y = reduce(x) over the dims where y has size 1 (or over groups of heads: NH -> NKV), fp32. */
static void gb_reduce(gb *g, cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t rd = gb_new(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction descriptor");
    gb_set(g, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "reduction compute type");
    gb_set(g, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction operator");
    gb_finalize(g, rd, "reduction descriptor finalize");
    cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction operation");
    gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd, "reduction desc");
    gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reduction x");
    gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reduction y");
    gb_op(g, op, "reduction operation finalize");
}

/* y = x viewed with y's dims and strides (the frontend's Reshape: used for transposed views). */
static void gb_reshape(gb *g, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, "reshape operation");
    gb_set(g, op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reshape x");
    gb_set(g, op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reshape y");
#if CUDNN_VERSION >= 92200
    /* 9.22 made the mode explicit; the frontend sets view-only (no data movement), what older versions do */
    if (cudnnGetVersion() >= 92200) {
        cudnnBackendReshapeMode_t mode = CUDNN_RESHAPE_VIEW_ONLY;
        gb_set(g, op, CUDNN_ATTR_OPERATION_RESHAPE_MODE, CUDNN_TYPE_RESHAPE_MODE, 1, &mode, "reshape mode");
    }
#endif
    gb_op(g, op, "reshape operation finalize");
}

/* The causal mask of cudnn-frontend's causal_mask (top-left diagonal, right bound 0) as its
 * CompositeDiagonalBandMaskNode lowers it: y = (row >= col) ? x : -inf, x (B, NH, T, T) fp32. */
static cudnnBackendDescriptor_t gb_causal(gb *g, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t neg_inf, int64_t B,
                                          int64_t NH, int64_t T) {
    cudnnBackendDescriptor_t row = gb_virt(g, CUDNN_DATA_INT32, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, NULL, NULL, row, 2);
    cudnnBackendDescriptor_t col = gb_virt(g, CUDNN_DATA_INT32, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, NULL, NULL, col, 3);
    cudnnBackendDescriptor_t keep = gb_virt(g, CUDNN_DATA_BOOLEAN, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, NULL, keep, -1);
    cudnnBackendDescriptor_t y = gb_virt(g, CUDNN_DATA_FLOAT, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, neg_inf, keep, y, -1);
    return y;
}

/* Our (B*T, heads*HS) activations as (B, heads, T, HS); transposed: (B, heads, HS, T). */
static cudnnBackendDescriptor_t gb_act(gb *g, int64_t uid, cudnnDataType_t dt, int64_t B, int64_t heads, int64_t T,
                                       int64_t HS, int transposed) {
    int64_t row = heads * HS;
    if (transposed) return gb_tensor(g, uid, dt, B, heads, HS, T, T * row, HS, 1, row, false);
    return gb_tensor(g, uid, dt, B, heads, T, HS, T * row, HS, row, 1, false);
}

/* The forward graph (see the top of this file). */
static void build_forward(gb *g, int64_t B, int64_t T, int64_t NH, int64_t NKV, int64_t HS) {
    const cudnnDataType_t F = CUDNN_DATA_FLOAT, BF = CUDNN_DATA_BFLOAT16;
    cudnnBackendDescriptor_t q = gb_act(g, UID_Q, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t kt = gb_act(g, UID_K, BF, B, NKV, T, HS, 1);
    cudnnBackendDescriptor_t v = gb_act(g, UID_V, BF, B, NKV, T, HS, 0);
    cudnnBackendDescriptor_t o = gb_act(g, UID_O, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t lse = gb_tensor(g, UID_LSE, F, B, NH, T, 1, NH * T, T, 1, 1, false);
    cudnnBackendDescriptor_t scale = gb_scalar(g, UID_SCALE), neg_inf = gb_scalar(g, UID_NEG_INF);

    cudnnBackendDescriptor_t s = gb_virt(g, F, B, NH, T, T);
    gb_matmul(g, q, kt, s);
    cudnnBackendDescriptor_t ss = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, s, scale, NULL, ss, -1);
    cudnnBackendDescriptor_t sm = gb_causal(g, ss, neg_inf, B, NH, T);
    /* softmax with its statistics (the frontend's CompositeSoftmaxNode) */
    cudnnBackendDescriptor_t mx = gb_virt(g, F, B, NH, T, 1);
    gb_reduce(g, CUDNN_REDUCE_TENSOR_MAX, sm, mx);
    cudnnBackendDescriptor_t sub = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_SUB, F, sm, mx, NULL, sub, -1);
    cudnnBackendDescriptor_t e = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_EXP, F, sub, NULL, NULL, e, -1);
    cudnnBackendDescriptor_t z = gb_virt(g, F, B, NH, T, 1);
    gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, e, z);
    cudnnBackendDescriptor_t logz = gb_virt(g, F, B, NH, T, 1);
    gb_pointwise(g, CUDNN_POINTWISE_LOG, F, z, NULL, NULL, logz, -1);
    gb_pointwise(g, CUDNN_POINTWISE_ADD, F, mx, logz, NULL, lse, -1);
    cudnnBackendDescriptor_t p = gb_virt(g, BF, B, NH, T, T);   /* bmm2's A in the I/O type, as the frontend */
    gb_pointwise(g, CUDNN_POINTWISE_DIV, F, e, z, NULL, p, -1);
    gb_matmul(g, p, v, o);
}

/* The backward graph (see the top of this file). */
static void build_backward(gb *g, int64_t B, int64_t T, int64_t NH, int64_t NKV, int64_t HS) {
    const cudnnDataType_t F = CUDNN_DATA_FLOAT, BF = CUDNN_DATA_BFLOAT16;
    cudnnBackendDescriptor_t q = gb_act(g, UID_Q, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t kt = gb_act(g, UID_K, BF, B, NKV, T, HS, 1);
    cudnnBackendDescriptor_t vt = gb_act(g, UID_V, BF, B, NKV, T, HS, 1);
    cudnnBackendDescriptor_t o = gb_act(g, UID_O, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t dout = gb_act(g, UID_DO, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t lse = gb_tensor(g, UID_LSE, F, B, NH, T, 1, NH * T, T, 1, 1, false);
    cudnnBackendDescriptor_t dq = gb_act(g, UID_DQ, BF, B, NH, T, HS, 0);
    cudnnBackendDescriptor_t dk = gb_act(g, UID_DK, BF, B, NKV, T, HS, 0);
    cudnnBackendDescriptor_t dv = gb_act(g, UID_DV, BF, B, NKV, T, HS, 0);
    cudnnBackendDescriptor_t dsum = gb_tensor(g, UID_DSUM, F, B, NH, T, 1, NH * T, T, 1, 1, false);
    cudnnBackendDescriptor_t dq_acc = gb_tensor(g, UID_DQ_ACC, F, B, NH, T, HS, NH * T * HS, T * HS, HS, 1, false);
    cudnnBackendDescriptor_t scale = gb_scalar(g, UID_SCALE), neg_inf = gb_scalar(g, UID_NEG_INF);
    cudnnBackendDescriptor_t one = gb_scalar(g, UID_ONE);

    /* Dsum = rowsum(dO * O) (the frontend's softmax_sum, kept in the workspace) */
    cudnnBackendDescriptor_t doo = gb_virt(g, F, B, NH, T, HS);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, dout, o, NULL, doo, -1);
    cudnnBackendDescriptor_t rs = gb_virt(g, F, B, NH, T, 1);
    gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, doo, rs);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, rs, one, NULL, dsum, -1);
    /* P = exp(mask(Q K^T * scale - lse)) */
    cudnnBackendDescriptor_t s = gb_virt(g, F, B, NH, T, T);
    gb_matmul(g, q, kt, s);
    cudnnBackendDescriptor_t ss = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, s, scale, NULL, ss, -1);
    cudnnBackendDescriptor_t sl = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_SUB, F, ss, lse, NULL, sl, -1);
    cudnnBackendDescriptor_t sm = gb_causal(g, sl, neg_inf, B, NH, T);
    cudnnBackendDescriptor_t p = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_EXP, F, sm, NULL, NULL, p, -1);
    /* dV = P^T dO (per query head, then summed over each kv head's group) */
    cudnnBackendDescriptor_t pt = gb_tensor(g, 0, BF, B, NH, T, T, NH * T * T, T * T, 1, T, false);
    gb_reshape(g, p, pt);
    if (NH == NKV) {
        gb_matmul(g, pt, dout, dv);
    } else {
        cudnnBackendDescriptor_t dv_full = gb_virt(g, BF, B, NH, T, HS);
        gb_matmul(g, pt, dout, dv_full);
        gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, dv_full, dv);
    }
    /* dS = (dO V^T - Dsum) * P * scale */
    cudnnBackendDescriptor_t dp = gb_virt(g, F, B, NH, T, T);
    gb_matmul(g, dout, vt, dp);
    cudnnBackendDescriptor_t dps = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_SUB, F, dp, dsum, NULL, dps, -1);
    cudnnBackendDescriptor_t dpp = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, dps, p, NULL, dpp, -1);
    cudnnBackendDescriptor_t ds = gb_virt(g, F, B, NH, T, T);
    gb_pointwise(g, CUDNN_POINTWISE_MUL, F, dpp, scale, NULL, ds, -1);
    /* dK = dS^T Q (summed over the group) */
    cudnnBackendDescriptor_t dst = gb_tensor(g, 0, BF, B, NH, T, T, NH * T * T, T * T, 1, T, false);
    gb_reshape(g, ds, dst);
    if (NH == NKV) {
        gb_matmul(g, dst, q, dk);
    } else {
        cudnnBackendDescriptor_t dk_full = gb_virt(g, BF, B, NH, T, HS);
        gb_matmul(g, dst, q, dk_full);
        gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, dk_full, dk);
    }
    /* dQ = dS K: K^T viewed back as K (a virtual tensor of the intermediate type, fp32, as the frontend's
     * reshape_k gets it from its context), fp32 accumulator, then converted into dq */
    cudnnBackendDescriptor_t kk = gb_tensor(g, 0, F, B, NKV, T, HS, T * NKV * HS, HS, NKV * HS, 1, false);
    gb_reshape(g, kt, kk);
    gb_matmul(g, ds, kk, dq_acc);
    gb_pointwise(g, CUDNN_POINTWISE_IDENTITY, F, dq_acc, NULL, NULL, dq, -1);
}

/* ------------------------------------------------------------------------------------------------
 * Plans
 */

static void entry_release(plan_entry *e) {
    for (int i = e->ndescs - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(e->descs[i]);
    e->ndescs = 0;
    e->plan = NULL;
}

/* Operation graph -> heuristics (mode A, then the fallback list) -> the first engine configuration
 * whose execution plan finalizes. */
static void gb_plan(gb *g, cudnnHandle_t handle) {
    plan_entry *e = g->e;
    cudnnBackendDescriptor_t graph = gb_new(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    gb_set(g, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->nops, g->ops, "graph ops");
    gb_set(g, graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
    gb_finalize(g, graph, "operation graph finalize");
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    char first_failure[200] = "";
    for (int m = 0; m < 2 && g->st == CUDNN_STATUS_SUCCESS && !e->plan; m++) {
        cudnnBackendDescriptor_t heur = gb_new(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "engine heuristics");
        gb_set(g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph,
               "heuristics graph");
        gb_set(g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[m], "heuristics mode");
        if (g->st != CUDNN_STATUS_SUCCESS) return;
        /* a mode that has nothing for this graph: note it and ask the next one */
        int64_t count = 0;
        cudnnStatus_t st = cudnnBackendFinalize(heur);
        if (st == CUDNN_STATUS_SUCCESS)
            st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                          NULL);
        if (st != CUDNN_STATUS_SUCCESS) {
            if (!first_failure[0]) {
                char last[120] = "";
                cudnnGetLastErrorString(last, sizeof last);
                snprintf(first_failure, sizeof first_failure, "heuristics mode %d: %s%s%s", (int)modes[m],
                         cudnnGetErrorString(st), last[0] ? "; " : "", last);
            }
            continue;
        }
        if (count > MAX_CONFIGS) count = MAX_CONFIGS;
        cudnnBackendDescriptor_t cfgs[MAX_CONFIGS];
        for (int64_t i = 0; i < count; i++) cfgs[i] = gb_new(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config");
        if (g->st != CUDNN_STATUS_SUCCESS) return;
        int64_t got = 0;
        if (count > 0) {
            st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                          &got, cfgs);
            if (st != CUDNN_STATUS_SUCCESS) {
                gb_fail(g, st, "heuristics results");
                return;
            }
        }
        for (int64_t i = 0; i < got && !e->plan; i++) {
            cudnnBackendDescriptor_t plan = gb_new(g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "execution plan");
            gb_set(g, plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "plan handle");
            gb_set(g, plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i],
                   "plan engine config");
            if (g->st != CUDNN_STATUS_SUCCESS) return;
            st = cudnnBackendFinalize(plan);   /* an engine that cannot run this graph: try the next */
            if (st != CUDNN_STATUS_SUCCESS) {
                if (!first_failure[0]) {
                    char last[120] = "";
                    cudnnGetLastErrorString(last, sizeof last);
                    snprintf(first_failure, sizeof first_failure, "%s%s%s", cudnnGetErrorString(st),
                             last[0] ? "; " : "", last);
                }
                continue;
            }
            int64_t ws = 0, n = 0;
            st = cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws);
            if (st != CUDNN_STATUS_SUCCESS) {
                gb_fail(g, st, "plan workspace size");
                return;
            }
            e->plan = plan;
            e->plan_ws = (size_t)(ws > 0 ? ws : 0);
        }
    }
    if (g->st == CUDNN_STATUS_SUCCESS && !e->plan) {
        g->st = CUDNN_STATUS_NOT_SUPPORTED;
        snprintf(g->what, sizeof g->what, "no engine configuration finalized%s%.150s",
                 first_failure[0] ? " (first: " : "", first_failure[0] ? first_failure : "");
        if (first_failure[0]) strncat(g->what, ")", sizeof g->what - strlen(g->what) - 1);
    }
}

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* The cached plan for this shape, built on first use; NULL when refused (noted once). */
static plan_entry *get_plan(llama_cudnn_attn *a, int bwd, int B, int T, int NH, int NKV, int HS) {
    for (int i = 0; i < PLAN_CACHE; i++) {
        plan_entry *e = &a->plans[i];
        if (e->used && e->bwd == bwd && e->B == B && e->T == T && e->NH == NH && e->NKV == NKV && e->HS == HS)
            return e->ok ? e : NULL;
    }
    int slot = -1;
    for (int i = 0; i < PLAN_CACHE && slot < 0; i++)
        if (!a->plans[i].used) slot = i;
    if (slot < 0) {   /* full: evict round-robin (the stream must not still use the plan) */
        slot = a->next_evict;
        a->next_evict = (a->next_evict + 1) % PLAN_CACHE;
        cudaStreamSynchronize(a->stream);
        entry_release(&a->plans[slot]);
    }
    plan_entry *e = &a->plans[slot];
    memset(e, 0, sizeof *e);
    e->used = 1;
    e->bwd = bwd;
    e->B = B; e->T = T; e->NH = NH; e->NKV = NKV; e->HS = HS;
    gb g;
    memset(&g, 0, sizeof g);
    g.e = e;
    g.st = CUDNN_STATUS_SUCCESS;
    g.next_uid = UID_VIRTUAL;
    if (bwd) build_backward(&g, B, T, NH, NKV, HS);
    else build_forward(&g, B, T, NH, NKV, HS);
    gb_plan(&g, a->handle);
    if (g.st != CUDNN_STATUS_SUCCESS) {
        entry_release(e);
        e->ok = 0;
        fprintf(stderr, "grpo2048: attn_implementation cudnn: cuDNN %zu cannot run the %s attention for B=%d T=%d "
                "heads=%d kv_heads=%d head_dim=%d (%s); the native attention runs this shape\n",
                (size_t)cudnnGetVersion(), bwd ? "backward" : "forward", B, T, NH, NKV, HS, g.what);
        return NULL;
    }
    e->own_ws = bwd ? align256((size_t)B * NH * T * sizeof(float)) + align256((size_t)B * NH * T * HS * sizeof(float))
                    : 0;
    e->ok = 1;
    return e;
}

/* Grows the workspace to hold e's own part and its plan's. 0, or -1 (out of device memory: noted). */
static int ensure_ws(llama_cudnn_attn *a, plan_entry *e) {
    size_t need = e->own_ws + align256(e->plan_ws);
    if (need <= a->ws_bytes) return 0;
    char err[240];
    void *p = NULL;
    if (llama_cuda_malloc(a->ctx, &p, need, "cuDNN attention workspace", err, sizeof err) != 0) {
        fprintf(stderr, "grpo2048: attn_implementation cudnn: %s; the native attention runs this call\n", err);
        return -1;
    }
    cudaStreamSynchronize(a->stream);
    llama_cuda_mfree(a->ctx, a->ws, a->ws_bytes);
    a->ws = p;
    a->ws_bytes = need;
    return 0;
}

/* Runs e's plan with the (uid, pointer) pairs given. 0, or -1 (noted; the shape is then refused). */
static int execute(llama_cudnn_attn *a, plan_entry *e, int n, const int64_t *uids, void *const *ptrs) {
    cudnnBackendDescriptor_t vp = NULL;
    void *plan_ws = (char *)a->ws + e->own_ws;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &plan_ws);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(vp);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(a->handle, e->plan, vp);
    if (vp) cudnnBackendDestroyDescriptor(vp);
    if (st == CUDNN_STATUS_SUCCESS) return 0;
    char last[160] = "";
    cudnnGetLastErrorString(last, sizeof last);
    fprintf(stderr, "grpo2048: attn_implementation cudnn: executing the %s plan for B=%d T=%d failed (%s%s%s); the "
            "native attention runs this shape from now on\n", e->bwd ? "backward" : "forward", e->B, e->T,
            cudnnGetErrorString(st), last[0] ? "; " : "", last);
    cudaStreamSynchronize(a->stream);
    entry_release(e);
    e->ok = 0;
    return -1;
}

/* What the fused graphs support at all (checked before asking cuDNN). */
static int shape_supported(int act_dt, int B, int T, int NH, int NKV, int HS, int window) {
    return act_dt == LLAMA_CUDA_DT_BF16 && window <= 0 && B > 0 && T > 0 && NKV > 0 && NH % NKV == 0 && HS % 8 == 0 &&
           HS <= 256;
}

static void set_scalars(llama_cudnn_attn *a, int HS) {
    a->scale_host[0] = 1.0f / sqrtf((float)HS);
    /* the frontend masks with the lowest float before cuDNN 9.10 and -inf since (get_negative_inf_value) */
    a->neg_inf_host[0] = cudnnGetVersion() < 91000 ? -FLT_MAX : -INFINITY;
    a->one_host[0] = 1.0f;
}

int llama_cudnn_attn_forward(llama_cudnn_attn *a, int act_dt, void *out, float *lse, const void *q, const void *k,
                             const void *v, int B, int T, int NH, int NKV, int HS, int window) {
    if (!a || !shape_supported(act_dt, B, T, NH, NKV, HS, window)) return 1;
    plan_entry *e = get_plan(a, 0, B, T, NH, NKV, HS);
    if (!e || ensure_ws(a, e) != 0) return 1;
    set_scalars(a, HS);
    const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_LSE, UID_SCALE, UID_NEG_INF};
    void *const ptrs[] = {(void *)q, (void *)k, (void *)v, out, lse, a->scale_host, a->neg_inf_host};
    return execute(a, e, 7, uids, ptrs) == 0 ? 0 : 1;
}

int llama_cudnn_attn_backward(llama_cudnn_attn *a, int act_dt, void *dq, void *dk, void *dv, const void *dout,
                              const void *q, const void *k, const void *v, const void *out, const float *lse, int B,
                              int T, int NH, int NKV, int HS, int window) {
    if (!a || !shape_supported(act_dt, B, T, NH, NKV, HS, window)) return 1;
    plan_entry *e = get_plan(a, 1, B, T, NH, NKV, HS);
    if (!e || ensure_ws(a, e) != 0) return 1;
    set_scalars(a, HS);
    char *dsum = (char *)a->ws, *dq_acc = dsum + align256((size_t)B * NH * T * sizeof(float));
    /* the dQ accumulator starts at zero (before cuDNN 9.6 the frontend had to clear it; clearing it
     * always costs one memset and holds for every version) */
    if (cudaMemsetAsync(dq_acc, 0, (size_t)B * NH * T * HS * sizeof(float), a->stream) != cudaSuccess) {
        fprintf(stderr, "grpo2048: attn_implementation cudnn: cudaMemsetAsync failed: %s\n",
                cudaGetErrorString(cudaGetLastError()));
        abort();
    }
    const int64_t uids[] = {UID_Q,  UID_K,    UID_V,      UID_O,     UID_DO,      UID_LSE, UID_DQ,
                            UID_DK, UID_DV,   UID_DSUM,   UID_DQ_ACC, UID_SCALE,  UID_NEG_INF, UID_ONE};
    void *const ptrs[] = {(void *)q, (void *)k, (void *)v, (void *)out, (void *)dout, (void *)lse, dq,
                          dk,        dv,        dsum,      dq_acc,      a->scale_host, a->neg_inf_host, a->one_host};
    return execute(a, e, 14, uids, ptrs) == 0 ? 0 : 1;
}

int llama_cudnn_attn_check_ops(int B, int T, int NH, int NKV, int HS, char *err, size_t errlen) {
    int nops[2] = {0, 0};
    for (int bwd = 0; bwd < 2; bwd++) {
        plan_entry *e = (plan_entry *)calloc(1, sizeof *e);
        if (!e) {
            snprintf(err, errlen, "out of host memory");
            return -1;
        }
        gb g;
        memset(&g, 0, sizeof g);
        g.e = e;
        g.st = CUDNN_STATUS_SUCCESS;
        g.next_uid = UID_VIRTUAL;
        if (bwd) build_backward(&g, B, T, NH, NKV, HS);
        else build_forward(&g, B, T, NH, NKV, HS);
        entry_release(e);
        free(e);
        if (g.st != CUDNN_STATUS_SUCCESS) {
            snprintf(err, errlen, "%s graph, B=%d T=%d NH=%d NKV=%d HS=%d: %s", bwd ? "backward" : "forward", B, T, NH,
                     NKV, HS, g.what);
            return -1;
        }
        nops[bwd] = g.nops;
    }
    snprintf(err, errlen, "forward %d operations, backward %d operations finalized", nops[0], nops[1]);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Life cycle
 */

int llama_cudnn_attn_create(llama_cudnn_attn **out, llama_cuda_ctx *ctx, void *stream, char *err, size_t errlen) {
    *out = NULL;
    llama_cudnn_attn *a = (llama_cudnn_attn *)calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "attn_implementation: cudnn: out of host memory");
        return -1;
    }
    a->ctx = ctx;
    a->stream = (cudaStream_t)stream;
    cudnnStatus_t st = cudnnCreate(&a->handle);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetStream(a->handle, a->stream);
    if (st != CUDNN_STATUS_SUCCESS) {
        char last[160] = "";
        cudnnGetLastErrorString(last, sizeof last);
        snprintf(err, errlen, "attn_implementation: cudnn: cuDNN did not start (%s%s%.160s; built against %d, loaded "
                 "%zu): docs/gpu.md, cuDNN attention", cudnnGetErrorString(st), last[0] ? "; " : "", last,
                 CUDNN_VERSION, (size_t)cudnnGetVersion());
        if (a->handle) cudnnDestroy(a->handle);
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void llama_cudnn_attn_free(llama_cudnn_attn *a) {
    if (!a) return;
    cudaStreamSynchronize(a->stream);
    for (int i = 0; i < PLAN_CACHE; i++) entry_release(&a->plans[i]);
    llama_cuda_mfree(a->ctx, a->ws, a->ws_bytes);
    cudnnDestroy(a->handle);
    free(a);
}
