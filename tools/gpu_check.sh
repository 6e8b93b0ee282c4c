#!/usr/bin/env bash
# tools/gpu_check.sh: the one command a GPU session runs (one call of at most 8 minutes on one
# H100/H200), or, where there is no GPU, its equivalent on the CPU emulator of CUDA (tests/gpu/emu).
#
#   tools/gpu_check.sh --pack   on the Debian development machine: builds build-gpu/ with nvcc for sm_90
#                               and packs the binaries with the libraries the GPU machine lacks (libyaml,
#                               SQLite, libseccomp, OpenBLAS, cJSON, PCRE2, libpython3.11 and Python's
#                               standard library) into .gpu/grpo2048-gpu.tar.xz (bench/cuda/pack_gpu.sh)
#   tools/gpu_check.sh          on the GPU machine, with .gpu carried:
#                                 run(command="bash tools/gpu_check.sh", carry=[".gpu"], timeout_s=540)
#                               or anywhere else (no GPU: the emulator equivalents)
#
# With a GPU (nvidia-smi lists one) it:
#   1. takes the binaries from .gpu/grpo2048-gpu.tar.xz (built here with nvcc for sm_90), or, without
#      the pack, builds build-gpu/ on the machine (nvcc, sm_90; needs CMake and the Debian libraries);
#   2. runs the gpu-labelled tests (ctest -L gpu: tests/gpu/test_cuda_*, parity with the CPU; with the
#      pack there is no CMake tree on the machine, so the same executables run directly, as ctest would);
#   3. runs bench_cuda (bench/cuda: decode tokens/s, training step MFU, Qwen2.5-0.5B shape, bf16);
#   4. runs 10 GRPO steps of the default policy (configs/default.yaml) with device: cuda, bf16: true, then 5
#      with attn_implementation: cudnn (cuDNN's fused attention; test_cuda_cudnn_attention in step 2 checks
#      it against the CPU and our kernels);
#   4b. under mpirun -np 1 (when the machine has mpirun), 3 GRPO steps with device: cuda: the NCCL
#      gradient all-reduce of data-parallel runs, with one rank (docs/scale.md);
#   5. runs 5 GRPO steps of a Qwen2.5-0.5B-shaped random model (made by `grpo2048 sft` from scratch,
#      1 step on the GPU) with device: cuda, bf16: true;
#   6. prints one summary table.
# Without a GPU it builds ${BUILD_DIR:-build} with the emulator, runs ctest -L cuda-emu, runs 2 GRPO steps
# of the default policy (short completions) on the emulator and on the CPU and compares them, and 2
# steps of a tiny Qwen2-shaped model in bf16; bench_cuda and the full-size runs are GPU-only and are
# reported as skipped.
#
# Every figure lands in ${OUT:-/tmp/grpo2048-gpu-check}: summary.txt (the table), summary.tsv
# (item, status, figure), and each phase's log. Large files (models, checkpoints) go to a scratch folder,
# never to $OUT. Phases share a deadline (GPU_CHECK_SECONDS, default 450 s with a GPU, so that the
# whole call stays within 8 minutes; 1800 s on the emulator); a phase that runs out of time is
# reported as timed out.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "${1:-}" = "--pack" ]; then
    command -v nvcc >/dev/null || { echo "gpu_check --pack: nvcc not found (put CUDA's bin on PATH)"; exit 1; }
    BUILD_DIR="${BUILD_DIR:-build-gpu}" bash bench/cuda/pack_gpu.sh --python || exit 1
    # what the pack was built from, for the summary on the GPU machine (which has no .git)
    echo "commit $(git describe --always --dirty 2>/dev/null || echo '?'), packed $(date -u +%Y-%m-%dT%H:%MZ)" \
        > .gpu/pack-info.txt
    exit 0
fi

OUTDIR="${OUT:-/tmp/grpo2048-gpu-check}"
SCRATCH="${GPU_CHECK_SCRATCH:-/tmp/grpo2048-gpu-check-work}"
mkdir -p "$OUTDIR" "$SCRATCH"
SUMMARY_TSV="$OUTDIR/summary.tsv"
printf 'item\tstatus\tfigures\n' > "$SUMMARY_TSV"

note() { echo "gpu_check: $*"; }
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$SUMMARY_TSV"; }
# seconds a phase may use: its cap, or what is left before the deadline minus what later phases reserve
budget() {
    local cap=$1 reserve=$2 left=$((DEADLINE - SECONDS - $2))
    [ "$left" -lt "$cap" ] && cap=$left
    [ "$cap" -lt 1 ] && cap=1
    echo "$cap"
}
# the summary table: columns padded to their widths (no `column` on every machine)
table() { awk -F'\t' '{ for (i = 1; i <= 2; i++) if (length($i) > w[i]) w[i] = length($i); r[NR] = $0 }
    END { for (n = 1; n <= NR; n++) { split(r[n], f, "\t"); printf "%-*s  %-*s  %s\n", w[1], f[1], w[2], f[2], f[3] } }' "$1"; }
status_of() { case $1 in 0) echo ok ;; 124|137) echo "timed out" ;; 77) echo skipped ;; *) echo "FAILED (exit $1)" ;; esac; }

# Summary figures of a run's metrics.sqlite (Python's sqlite3: the GPU machine has no sqlite3 CLI).
run_figures() {
    python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/metrics.sqlite")
rows = dict()
for step, name, value in db.execute("select step, name, value from metrics where run_id = (select max(run_id) from runs)"):
    rows.setdefault(name, {})[step] = value
def mean(name, skip_first=False):
    v = [x for s, x in sorted(rows.get(name, {}).items()) if not (skip_first and s == 1)]
    return sum(v) / len(v) if v else float("nan")
steps = sorted(rows.get("reward", {}))
first = rows["reward"][steps[0]] if steps else float("nan")
last = rows["reward"][steps[-1]] if steps else float("nan")
print("steps %d; step_time %.2f s (mean, after step 1: %.2f s); generation %.2f s; rewards %.2f s; train %.2f s; "
      "tokens/s %.0f; reward first %.3f last %.3f; loss last %.4g" % (len(steps), mean("step_time"),
      mean("step_time", True), mean("generation_time"), mean("reward_time"), mean("train_time"),
      mean("tokens_per_second"), first, last, rows.get("loss", {}).get(steps[-1], float("nan")) if steps else float("nan")))
EOF
}

# Per-step reward equality and loss agreement of two runs (the emulator against the CPU).
compare_runs() {
    python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
def load(d):
    db = sqlite3.connect(d + "/metrics.sqlite")
    return {(s, n): v for s, n, v in db.execute("select step, name, value from metrics")}
a, b = load(sys.argv[1]), load(sys.argv[2])
steps = sorted({s for s, n in b if n == "reward"})
same = all(a.get((s, "reward")) == b.get((s, "reward")) for s in steps)
worst = max(abs(a[(s, "loss")] - b[(s, "loss")]) / max(abs(b[(s, "loss")]), 1e-30) for s in steps)
print("rewards per step %s the CPU's; loss rel. difference %.2g (max over %d steps)" %
      ("equal" if same else "DIFFER from", worst, len(steps)))
sys.exit(0 if same else 1)
EOF
}

# A model folder: config.json (shape given as JSON fields) + the default policy's tokenizer.
make_model_dir() {
    mkdir -p "$1"
    cp model/default/tokenizer.json model/default/tokenizer_config.json "$1/"
    echo "$2" > "$1/config.json"
}
QWEN05='{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
 "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
 "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true,
 "bos_token_id": 151643, "eos_token_id": 151645, "use_sliding_window": false, "hidden_act": "silu"}'
QWEN_TINY='{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 1024, "hidden_size": 56,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 7, "num_key_value_heads": 1,
 "max_position_embeddings": 512, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true,
 "eos_token_id": 2, "use_sliding_window": false, "hidden_act": "silu"}'

# One JSONL example (the sft that makes a random model saves it; 1 step teaches it nothing).
echo '{"prompt": "Write a 2048 strategy.", "completion": "```python\ndef strategy(board):\n    return \"W\"\n```"}' \
    > "$SCRATCH/one.jsonl"

# GRPO run: train_run NAME BIN DEVICE_ARGS SECONDS EXTRA... ; logs to $OUTDIR/NAME.log, run in $SCRATCH/NAME
train_run() {
    local name=$1 bin=$2 secs=$3
    shift 3
    rm -rf "${SCRATCH:?}/$name"
    local t0=$SECONDS
    timeout "$secs" env ${PYENV:-} "$bin" train configs/default.yaml --set output_dir="$SCRATCH/$name" "$@" \
        > "$OUTDIR/$name.log" 2>&1
    local rc=$?
    tr '\r' '\n' < "$OUTDIR/$name.log" | grep -E "device|step [0-9]+/|memory|completed|error|failed" | tail -4
    local fig="wall $((SECONDS - t0)) s"
    if [ -f "$SCRATCH/$name/metrics.sqlite" ]; then
        fig="$fig; $(run_figures "$SCRATCH/$name" 2>&1)"
        cp "$SCRATCH/$name/metrics.sqlite" "$OUTDIR/$name.metrics.sqlite"
    fi
    local mem
    mem=$(grep -o "memory: peak [0-9.]* GiB" "$OUTDIR/$name.log" | tail -1)
    [ -n "$mem" ] && fig="$fig; $mem"
    row "$name" "$(status_of $rc)" "$fig"
    return $rc
}

# ---------------------------------------------------------------------------------------------------
if nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    MODE=gpu
    DEADLINE=$((SECONDS + ${GPU_CHECK_SECONDS:-450}))
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUTDIR/device.txt"
    row device ok "$(head -1 "$OUTDIR/device.txt")"
    # CUDA 13's runtime and cuBLAS, wherever this machine keeps them
    cudalibs=$( { ldconfig -p | awk '/libcublas(Lt)?\.so\.13|libcudart\.so\.13/{print $NF}';
                 find /usr/local /opt /usr/lib -maxdepth 8 \( -name 'libcublas.so.13*' -o -name 'libcudart.so.13*' \) \
                     2>/dev/null; } | xargs -r -n1 dirname | sort -u | paste -sd:)
    export LD_LIBRARY_PATH="${cudalibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # cuDNN 9 (attn_implementation: cudnn) from ONE install: libcudnn.so.9 loads its sub-libraries (libcudnn_graph,
    # engines...) by name, so they must come from the same folder (torch's wheel's nvidia/cudnn/lib on the GPU machine)
    cudnn_dir=$( { ldconfig -p | awk '/libcudnn_graph\.so\.9/{print $NF}';
                  python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib", "x"))' \
                      2>/dev/null;
                  find /usr/local /opt /usr/lib -maxdepth 8 -name 'libcudnn_graph.so.9*' 2>/dev/null; } |
                xargs -r -n1 dirname | head -1)
    [ -n "$cudnn_dir" ] && export LD_LIBRARY_PATH="$cudnn_dir:$LD_LIBRARY_PATH"
    row cudnn "$([ -n "$cudnn_dir" ] && echo ok || echo FAILED)" "${cudnn_dir:-libcudnn_graph.so.9 not found: binaries linked with cuDNN will not start (set LD_LIBRARY_PATH)}"
    if [ -f .gpu/grpo2048-gpu.tar.xz ]; then
        G=/tmp/grpo2048-gpu
        rm -rf "$G" && mkdir -p "$G" && tar -C "$G" -xJf .gpu/grpo2048-gpu.tar.xz
        BIN="$G/bin"
        export LD_LIBRARY_PATH="$G/lib:$LD_LIBRARY_PATH"
        # only grpo2048's embedded CPython gets the packed standard library (not this machine's python3)
        [ -d "$G/python/lib/python3.11" ] && PYENV="PYTHONHOME=$G/python"
        row build ok "binaries from .gpu/grpo2048-gpu.tar.xz (nvcc, sm_90, tools/gpu_check.sh --pack; $(cat .gpu/pack-info.txt 2>/dev/null || echo 'no pack-info.txt'))"
        BUILT=pack
    else
        note "no .gpu/grpo2048-gpu.tar.xz: building build-gpu here (needs CMake, pkg-config and the Debian libraries)"
        t0=$SECONDS
        if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DGRPO2048_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
               -DGRPO2048_CUDA_EMULATOR=OFF > "$OUTDIR/build.log" 2>&1 &&
           cmake --build build-gpu -j"$(nproc)" >> "$OUTDIR/build.log" 2>&1 &&
           cmake --build build-gpu --target bench_cuda >> "$OUTDIR/build.log" 2>&1; then
            row build ok "build-gpu with nvcc, sm_90, in $((SECONDS - t0)) s"
        else
            tail -20 "$OUTDIR/build.log"
            row build FAILED "see build.log; or run tools/gpu_check.sh --pack on the development machine and carry .gpu"
            table "$SUMMARY_TSV" | tee "$OUTDIR/summary.txt"
            exit 1
        fi
        BIN="$ROOT/build-gpu"
        BUILT=cmake
    fi
    CPU_BIN="$BIN/grpo2048"
    CUDA_BIN="$BIN/grpo2048"
else
    MODE=emulator
    DEADLINE=$((SECONDS + ${GPU_CHECK_SECONDS:-1800}))
    note "no GPU (nvidia-smi lists none): running the emulator equivalents; GPU-only parts are skipped"
    row device skipped "no GPU: CPU emulator of CUDA (tests/gpu/emu)"
    B="${BUILD_DIR:-build}"
    t0=$SECONDS
    if cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DGRPO2048_CUDA_EMULATOR=ON > "$OUTDIR/build.log" 2>&1 &&
       cmake --build "$B" -j"${JOBS:-$(nproc)}" >> "$OUTDIR/build.log" 2>&1; then
        row build ok "$B with the CUDA emulator in $((SECONDS - t0)) s"
    else
        tail -20 "$OUTDIR/build.log"
        row build FAILED "see build.log"
        table "$SUMMARY_TSV" | tee "$OUTDIR/summary.txt"
        exit 1
    fi
    BIN="$ROOT/$B"
    BUILT=cmake
    CPU_BIN="$BIN/grpo2048"
    CUDA_BIN="$BIN/grpo2048_emu"
fi

# --- 2. tests -----------------------------------------------------------------------------------------
LABEL=gpu
[ "$MODE" = emulator ] && LABEL=cuda-emu
secs=$(budget 170 270)
t0=$SECONDS
if [ "$BUILT" = cmake ]; then
    note "ctest -L $LABEL (at most $secs s)"
    # -V keeps every test's output in the log (the parity figures below come from it)
    timeout "$secs" ctest --test-dir "${B:-build-gpu}" -L "$LABEL" -V --timeout "$secs" > "$OUTDIR/tests.log" 2>&1
    rc=$?
    grep -E "Test +#|tests passed|tests failed|CHECK failed" "$OUTDIR/tests.log"
    fig=$(grep -E "tests passed" "$OUTDIR/tests.log" | tail -1)
else
    note "tests/gpu executables (the ctest -L gpu set) at most $secs s"
    rc=0; pass=0; fail=0; skip=0
    for t in "$BIN"/test_cuda_*; do
        left=$((t0 + secs - SECONDS)); [ "$left" -lt 5 ] && { rc=124; break; }
        ts=$SECONDS
        timeout "$left" env ${PYENV:-} GRPO2048_BIN="$BIN/grpo2048" GRPO2048_CUDA_BIN="$BIN/grpo2048" \
            GRPO2048_SOURCE_DIR="$ROOT" "$t" > "$OUTDIR/$(basename "$t").log" 2>&1
        trc=$?
        case $trc in 0) pass=$((pass + 1)) ;; 77) skip=$((skip + 1)) ;; *) fail=$((fail + 1)); rc=1 ;; esac
        echo "$(basename "$t"): $(status_of $trc) in $((SECONDS - ts)) s; $(grep -E "passed, .* failed" "$OUTDIR/$(basename "$t").log" | tail -1)"
        grep -E "CHECK failed" "$OUTDIR/$(basename "$t").log" | head -5
    done
    fig="$pass passed, $fail failed, $skip skipped"
    # every test skipping on a machine with a GPU means they saw no device: not a pass
    [ "$rc" -eq 0 ] && [ "$pass" -eq 0 ] && rc=77
fi
row "tests ($LABEL)" "$(status_of $rc)" "$fig; $((SECONDS - t0)) s"
# the parity figures of the trainer test (tests/gpu/test_cuda_train.c: cuda against cpu), for the record
cat "$OUTDIR"/tests.log "$OUTDIR"/test_cuda_train.log 2>/dev/null | sed -E 's/^[0-9]+: //' |
    grep -E "^  (cuda|tf32|sft_|cuda_then|cpu_then|seed)" > "$OUTDIR/train_parity.txt"

# --- 3. bench_cuda ---------------------------------------------------------------------------------------
if [ "$MODE" = gpu ]; then
    secs=$(budget 90 180)
    note "bench_cuda ${BENCH_ARGS:---precision bf16 --batches 1,16,64 --new 256} (at most $secs s)"
    t0=$SECONDS
    # shellcheck disable=SC2086
    timeout "$secs" "$BIN/bench_cuda" ${BENCH_ARGS:---precision bf16 --batches 1,16,64 --new 256} \
        > "$OUTDIR/bench_cuda.txt" 2>&1
    rc=$?
    cat "$OUTDIR/bench_cuda.txt"
    row bench_cuda "$(status_of $rc)" "$(grep -E '^\| (decode|train)' "$OUTDIR/bench_cuda.txt" | tr '\n' ' ')($((SECONDS - t0)) s)"
else
    row bench_cuda skipped "GPU only (no GPU)"
fi

# --- 4. the default policy -------------------------------------------------------------------------------
if [ "$MODE" = gpu ]; then
    note "10 GRPO steps of the default policy, device: cuda, bf16"
    train_run default_cuda_bf16 "$CUDA_BIN" "$(budget 80 150)" --set device=cuda --set bf16=true --set max_steps=10
    note "5 GRPO steps of the default policy, device: cuda, bf16, attn_implementation: cudnn"
    train_run default_cuda_bf16_cudnn "$CUDA_BIN" "$(budget 50 100)" --set device=cuda --set bf16=true --set max_steps=5 \
        --set attn_implementation=cudnn
    grep -h "attn_implementation cudnn" "$OUTDIR/default_cuda_bf16_cudnn.log" | sort | uniq -c | head -5
else
    note "2 short GRPO steps of the default policy on the emulator (fp32) and on the CPU"
    SHORT=(--set max_steps=2 --set num_generations=4 --set per_device_train_batch_size=4
           --set max_completion_length=24 --set rewards.timeout=0.5)
    train_run default_cpu "$CPU_BIN" "$(budget 60 120)" --set device=cpu "${SHORT[@]}"
    train_run default_emu "$CUDA_BIN" "$(budget 150 60)" --set device=cuda "${SHORT[@]}"
    if [ -f "$SCRATCH/default_emu/metrics.sqlite" ] && [ -f "$SCRATCH/default_cpu/metrics.sqlite" ]; then
        cmp=$(compare_runs "$SCRATCH/default_emu" "$SCRATCH/default_cpu" 2>&1)
        rc=$?
        row "default: emulator vs cpu" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" "$cmp"
    fi
    row default_cuda_bf16 skipped "GPU only (10 steps of the full default run; the emulator would take an hour)"
    row default_cuda_bf16_cudnn skipped "GPU only (attn_implementation: cudnn; the emulator has no cuDNN)"
fi

# --- 4b. data-parallel: the NCCL gradient all-reduce with one rank (docs/scale.md) ------------------------
# Under mpirun the all-reduce runs even with one rank, so one GPU checks the NCCL bootstrap (ncclUniqueId
# over MPI, ncclCommInitRank) and ncclAllReduce on the device gradients. Needs OpenMPI's mpirun on the GPU
# machine: the pack carries libmpi (grpo2048 links it) but not the mpirun runtime.
if [ "$MODE" = gpu ] && command -v mpirun >/dev/null; then
    note "3 GRPO steps under mpirun -np 1, device: cuda (NCCL all-reduce of the gradients, one rank)"
    rm -rf "${SCRATCH:?}/nccl_np1"
    t0=$SECONDS
    timeout "$(budget 60 100)" env ${PYENV:-} mpirun --allow-run-as-root --oversubscribe -np 1 "$CUDA_BIN" train \
        configs/default.yaml --set output_dir="$SCRATCH/nccl_np1" --set device=cuda --set max_steps=3 \
        --set save_steps=0 > "$OUTDIR/nccl_np1.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && ! grep -q "completed 3 steps" "$OUTDIR/nccl_np1.log" && rc=1
    row "nccl: mpirun -np 1, cuda" "$(status_of $rc)" "wall $((SECONDS - t0)) s"
elif [ "$MODE" = gpu ]; then
    row "nccl: mpirun -np 1, cuda" skipped "no mpirun on the GPU machine (install openmpi-bin there)"
else
    row "nccl: mpirun -np 1, cuda" skipped "GPU only"
fi

# --- 5. a Qwen2.5-0.5B-shaped random model ----------------------------------------------------------------
if [ "$MODE" = gpu ]; then
    note "a Qwen2.5-0.5B-shaped random model: sft from scratch (1 step) makes it, then 5 GRPO steps, cuda bf16"
    make_model_dir "$SCRATCH/qwen05-init" "$QWEN05"
    t0=$SECONDS
    timeout "$(budget 90 70)" env ${PYENV:-} "$CUDA_BIN" sft configs/sft_default.yaml \
        --set model_name_or_path="$SCRATCH/qwen05-init" --set dataset_path="$SCRATCH/one.jsonl" \
        --set output_dir="$SCRATCH/qwen05" --set max_steps=1 --set per_device_train_batch_size=1 \
        --set sft_eval_fraction=0 --set device=cuda --set bf16=true --set chat_template=chatml \
        > "$OUTDIR/qwen05_make.log" 2>&1
    rc=$?
    row "qwen05: random init (sft 1 step)" "$(status_of $rc)" "$((SECONDS - t0)) s"
    if [ $rc -eq 0 ]; then
        train_run qwen05_cuda_bf16 "$CUDA_BIN" "$(budget 200 0)" --set model_name_or_path="$SCRATCH/qwen05" \
            --set device=cuda --set bf16=true --set max_steps=5
    fi
    rm -rf "${SCRATCH:?}/qwen05" "${SCRATCH:?}/qwen05_cuda_bf16"   # 2-10 GB of weights and checkpoints
else
    note "a tiny Qwen2-shaped random model (GQA 7:1, biases, tied), 2 GRPO steps on the emulator in bf16"
    make_model_dir "$SCRATCH/qwen-tiny-init" "$QWEN_TINY"
    t0=$SECONDS
    "$CUDA_BIN" sft configs/sft_default.yaml --set model_name_or_path="$SCRATCH/qwen-tiny-init" \
        --set dataset_path="$SCRATCH/one.jsonl" --set output_dir="$SCRATCH/qwen-tiny" --set max_steps=1 \
        --set per_device_train_batch_size=1 --set sft_eval_fraction=0 --set device=cuda --set bf16=true \
        --set chat_template=chatml > "$OUTDIR/qwen_tiny_make.log" 2>&1
    row "qwen-tiny: random init (sft 1 step, emulator)" "$(status_of $?)" "$((SECONDS - t0)) s"
    train_run qwen_tiny_emu_bf16 "$CUDA_BIN" "$(budget 120 0)" --set model_name_or_path="$SCRATCH/qwen-tiny" \
        --set device=cuda --set bf16=true --set max_steps=2 --set num_generations=4 \
        --set per_device_train_batch_size=4 --set max_completion_length=16 --set rewards.timeout=0.5
    row qwen05_cuda_bf16 skipped "GPU only (5 steps of the Qwen2.5-0.5B shape)"
fi

# --- 6. summary -------------------------------------------------------------------------------------------
echo
echo "== grpo2048 gpu_check ($MODE mode, $(date -u +%Y-%m-%dT%H:%MZ), $SECONDS s) — figures in $OUTDIR"
{
    echo "grpo2048 gpu_check: $MODE mode, $(date -u +%Y-%m-%dT%H:%MZ), $SECONDS s, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    table "$SUMMARY_TSV"
    [ -s "$OUTDIR/train_parity.txt" ] && { echo; echo "trainer parity, cuda vs cpu (tests/gpu/test_cuda_train.c):"; cat "$OUTDIR/train_parity.txt"; }
} | tee "$OUTDIR/summary.txt"
awk -F'\t' '$2 ~ /FAILED|timed out/ || ($1 ~ /^tests/ && $2 == "skipped") { bad = 1 } END { exit bad }' \
    "$SUMMARY_TSV" || exit 1
exit 0
