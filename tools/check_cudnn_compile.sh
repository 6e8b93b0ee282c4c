#!/usr/bin/env bash
# tools/check_cudnn_compile.sh: compile-checks the cuDNN attention (attn_implementation: cudnn) on a
# machine without nvcc or a GPU, and, where cuDNN's libraries are present, checks its graphs' operations
# against cuDNN itself. ctest runs it as check_cudnn_compile (label cuda-compile).
#
#   1. gcc -fsyntax-only -Wall -Wextra -Werror of model/cuda/attention_cudnn.c (C, cuDNN 9's backend API)
#      against cudnn.h and CUDA's cuda_runtime_api.h;
#   2. g++ -fsyntax-only of model/cuda/attention_impl.cu with GRPO2048_HAVE_CUDNN=1 (the branch the real
#      CUDA build compiles; the kernel syntax comes from the CUDA emulator's headers, tests/gpu/emu);
#   3. with libcudnn.so.9 and libcudart.so.* found: builds tests/cuda_compile/cudnn_ops_check.c with
#      attention_cudnn.c and runs it (every tensor and operation of the forward and backward graphs is
#      created and finalized by cuDNN on the host, for several shapes; no GPU needed).
# Where the headers are looked for: $CUDNN_INCLUDE / $CUDA_INCLUDE, else a Python environment's
# nvidia/cudnn and nvidia/cu13 (torch's wheels; tools/setup.sh's verify venv at
# ~/.cache/grpo2048/verify-venv has them), else /usr/include and /usr/local/cuda/include.
# Exit 0 when every step that could run passed, 77 (skipped) without the headers, 1 on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

find_dir() {   # find_dir FILE DIR...: the first DIR containing FILE
    local f=$1; shift
    for d in "$@"; do [ -n "$d" ] && [ -f "$d/$f" ] && { echo "$d"; return 0; }; done
    return 1
}
wheels=$(ls -d "$HOME"/.cache/grpo2048/verify-venv/lib/python3*/site-packages/nvidia /usr/lib/python3*/site-packages/nvidia \
         /usr/local/lib/python3*/*-packages/nvidia 2>/dev/null)
cudnn_inc=$(find_dir cudnn_graph.h "${CUDNN_INCLUDE:-}" $(for w in $wheels; do echo "$w/cudnn/include"; done) \
            /usr/include /usr/include/x86_64-linux-gnu /usr/local/cuda/include)
cuda_inc=$(find_dir cuda_runtime_api.h "${CUDA_INCLUDE:-}" $(for w in $wheels; do echo "$w/cu13/include $w/cuda_runtime/include"; done) \
           /usr/local/cuda/include /usr/include)
if [ -z "$cudnn_inc" ] || [ -z "$cuda_inc" ]; then
    echo "check_cudnn_compile: skipped: cudnn_graph.h (${cudnn_inc:-not found}) or cuda_runtime_api.h" \
         "(${cuda_inc:-not found}) missing; set CUDNN_INCLUDE / CUDA_INCLUDE"
    exit 77
fi
echo "check_cudnn_compile: cuDNN headers $cudnn_inc ($(awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", sep, $3; sep="."}' "$cudnn_inc/cudnn_version.h")), CUDA headers $cuda_inc"
CC=${CC:-gcc}
CXX=${CXX:-g++}
flags=(-Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -DGRPO2048_HAVE_CUDNN=1 -I. -I"$cudnn_inc" -I"$cuda_inc")
"$CC" -std=c11 -fsyntax-only "${flags[@]}" model/cuda/attention_cudnn.c || { echo "check_cudnn_compile: FAILED: attention_cudnn.c"; exit 1; }
echo "check_cudnn_compile: attention_cudnn.c compiles (C11, -Wall -Wextra -Werror)"
"$CXX" -std=c++17 -fsyntax-only -x c++ -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas \
    -DGRPO2048_CUDA_EMU=1 -DGRPO2048_HAVE_CUDNN=1 -Itests/gpu/emu/include -I. model/cuda/attention_impl.cu ||
    { echo "check_cudnn_compile: FAILED: attention_impl.cu with GRPO2048_HAVE_CUDNN"; exit 1; }
echo "check_cudnn_compile: attention_impl.cu compiles with GRPO2048_HAVE_CUDNN=1"

cudnn_lib=$(find_dir libcudnn.so.9 "${CUDNN_LIB:-}" "${cudnn_inc%/include}/lib" /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)
cudart_lib=$(for d in "${CUDA_LIB:-}" "${cuda_inc%/include}/lib" /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
                 [ -n "$d" ] && ls "$d"/libcudart.so.* 2>/dev/null | head -1; done | head -1)
if [ -z "$cudnn_lib" ] || [ -z "$cudart_lib" ]; then
    echo "check_cudnn_compile: libcudnn.so.9 or libcudart.so not found: the host check of the graphs is skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CC" -std=c11 -O1 "${flags[@]}" tests/cuda_compile/cudnn_ops_check.c model/cuda/attention_cudnn.c -o "$tmp/ops_check" \
    "$cudnn_lib/libcudnn.so.9" "$cudart_lib" -lm -Wl,-rpath,"$cudnn_lib:$(dirname "$cudart_lib")" ||
    { echo "check_cudnn_compile: FAILED: building the host check"; exit 1; }
LD_LIBRARY_PATH="$cudnn_lib:$(dirname "$cudart_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/ops_check" ||
    { echo "check_cudnn_compile: FAILED: cuDNN refused an operation of the attention graphs (above)"; exit 1; }
echo "check_cudnn_compile: every operation of the forward and backward graphs finalized in cuDNN (host; a GPU checks the rest)"
