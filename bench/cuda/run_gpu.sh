#!/usr/bin/env bash
# bench/cuda/run_gpu.sh: on the GPU machine, in the repository root, with .gpu/ carried: unpacks
# .gpu/grpo2048-gpu.tar.xz (bench/cuda/pack_gpu.sh), finds CUDA's libraries, runs the tests/gpu
# executables (parity with the CPU model), then bench_cuda and bench/cuda/bench_torch.py on the same
# shapes. Logs go to $OUT (the run tool's output folder) when it is set, else /tmp/gpu-logs.
# Arguments: "tests" and/or "bench" (default both); extra bench_cuda flags in BENCH_ARGS.
set -uo pipefail
cd "$(dirname "$0")/../.."
G=/tmp/grpo2048-gpu
LOG="${OUT:-/tmp/gpu-logs}"
mkdir -p "$G" "$LOG"
tar -C "$G" -xJf .gpu/grpo2048-gpu.tar.xz || { echo "run_gpu: .gpu/grpo2048-gpu.tar.xz missing (carry .gpu)"; exit 1; }
cudalibs=$( { ldconfig -p | awk '/libcublas(Lt)?\.so\.13|libcudart\.so\.13/{print $NF}';
             find /usr/local /opt /usr/lib -maxdepth 8 \( -name 'libcublas.so.13*' -o -name 'libcudart.so.13*' \) \
                 2>/dev/null; } | xargs -r -n1 dirname | sort -u | paste -sd:)
export LD_LIBRARY_PATH="$G/lib:${cudalibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# cuDNN 9 (attn_implementation: cudnn) from ONE install: libcudnn.so.9 loads its sub-libraries (libcudnn_graph,
# engines...) by name, so they must come from the same folder (torch's wheel's nvidia/cudnn/lib on the GPU machine)
cudnn_dir=$( { ldconfig -p | awk '/libcudnn_graph\.so\.9/{print $NF}';
                  python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib", "x"))' \
                      2>/dev/null;
              find /usr/local /opt /usr/lib -maxdepth 8 -name 'libcudnn_graph.so.9*' 2>/dev/null; } |
            xargs -r -n1 dirname | head -1)
[ -n "$cudnn_dir" ] && export LD_LIBRARY_PATH="$cudnn_dir:$LD_LIBRARY_PATH"
[ -d "$G/python/lib/python3.11" ] && export PYTHONHOME="$G/python"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOG/device.txt"
what="${*:-tests bench}"
status=0
if [[ "$what" == *tests* ]]; then
    for t in "$G"/bin/test_cuda_*; do
        echo "== $(basename "$t")"
        timeout 600 "$t" > "$LOG/$(basename "$t").log" 2>&1
        rc=$?
        grep -E "passed|SKIP|CHECK failed|error" "$LOG/$(basename "$t").log" | tail -15
        echo "exit $rc"
        [ $rc -eq 0 ] || [ $rc -eq 77 ] || status=1
    done
fi
if [[ "$what" == *bench* ]]; then
    echo "== bench_cuda ${BENCH_ARGS:-}"
    "$G/bin/bench_cuda" ${BENCH_ARGS:-} 2>&1 | tee "$LOG/bench_cuda.txt"
    echo "== bench_torch.py"
    PYTHONUNBUFFERED=1 python3 bench/cuda/bench_torch.py ${BENCH_ARGS:-} --ours "$LOG/bench_cuda.txt" 2>&1 |
        tee "$LOG/bench_torch.txt" | grep -vE "Warning|warn\(" 
fi
exit $status
