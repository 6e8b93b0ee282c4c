#!/usr/bin/env bash
# bench/cuda/pack_gpu.sh: builds grpo2048 with the CUDA backend on this (Debian) machine and packs what
# the GPU machine lacks into .gpu/grpo2048-gpu.tar.xz: the CUDA test binaries, bench_cuda, grpo2048,
# and the shared libraries they load that are neither glibc's nor CUDA's (OpenBLAS, gfortran, gomp,
# cJSON, PCRE2, libyaml, SQLite, libseccomp, libpython3.11, libstdc++). With --python it also packs
# Python 3.11's standard library (the reward workers embed CPython; `grpo2048 train` needs it).
# The GPU machine has CUDA 13 (cudart, cuBLAS) and a newer glibc, so the binaries run there as built.
# Run from anywhere; then `run` with carry [".gpu"] and `bash bench/cuda/run_gpu.sh` (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BUILD_DIR:-build-gpu}"
OUT=.gpu
with_python=0
[ "${1:-}" = "--python" ] && with_python=1
grep -qs '^/.gpu/$' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo /.gpu/ >> .git/info/exclude; }
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGRPO2048_CUDA=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target grpo2048 bench_cuda \
    $(cd tests/gpu && ls test_*.c | sed 's/\.c$//')
rm -rf "$OUT/stage"
mkdir -p "$OUT/stage/bin" "$OUT/stage/lib"
cp "$BUILD/grpo2048" "$BUILD/bench_cuda" "$OUT/stage/bin/"
for t in tests/gpu/test_*.c; do cp "$BUILD/$(basename "$t" .c)" "$OUT/stage/bin/"; done
for b in "$OUT"/stage/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux-x86-64|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*)\.so' |
    while read -r lib; do cp -L "$lib" "$OUT/stage/lib/"; done
if [ "$with_python" = 1 ]; then
    mkdir -p "$OUT/stage/python/lib"
    tar -C /usr/lib --exclude='__pycache__' --exclude='python3.11/test' --exclude='python3.11/idlelib' \
        --exclude='python3.11/tkinter' --exclude='python3.11/ensurepip' --exclude='python3.11/lib2to3' \
        --exclude='python3.11/config-3.11-x86_64-linux-gnu' -cf - python3.11 | tar -C "$OUT/stage/python/lib" -xf -
fi
tar -C "$OUT/stage" -cJf "$OUT/grpo2048-gpu.tar.xz" .
rm -rf "$OUT/stage"
echo "packed $(du -h "$OUT/grpo2048-gpu.tar.xz" | cut -f1) into $OUT/grpo2048-gpu.tar.xz (the run tool carries at most 64 MiB)"
