#!/usr/bin/env bash
# tests/tools/make_venv.sh: makes (or refreshes) the Python venv that tools/gguf_to_hf.py,
# tools/get_model.sh and the tools tests (ctest label `tools`) use:
# ${GRPO2048_VENV:-${XDG_CACHE_HOME:-~/.cache}/grpo2048/venv}, with the packages of
# tests/tools/requirements.txt from PyPI. Cached: when the venv's stamp matches the requirements'
# sha256 it does nothing (no network). PYTHON picks the interpreter (default python3; on Debian the
# python3-venv package provides `python3 -m venv`). Prints the venv's python on success.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${GRPO2048_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo2048/venv}"
REQ="$HERE/requirements.txt"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
stamp="$VENV/.grpo2048-requirements"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "make_venv: $PY not found (install python3 and python3-venv)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "make_venv: creating $VENV" >&2
  "$PY" -m venv "$VENV" >&2 || { echo "make_venv: '$PY -m venv $VENV' failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
echo "make_venv: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV" >&2
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2 \
  || { echo "make_venv: pip could not install $REQ into $VENV (is PyPI reachable?)" >&2; exit 1; }
echo "$want" > "$stamp"
echo "$VENV/bin/python"
