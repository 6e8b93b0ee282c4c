#!/usr/bin/env bash
# tests/tools/run_python_test.sh SCRIPT [ARGS...]: runs a Python test of tests/tools with the venv's
# python (${GRPO2048_VENV:-~/.cache/grpo2048/venv}, made by tools/setup.sh through
# tests/tools/make_venv.sh). A missing venv FAILS the test, so CI cannot pass without running it;
# only GRPO2048_NO_PYTHON_TOOLS=1 skips it (exit 77, ctest's SKIP_RETURN_CODE).
set -u
if [ "${GRPO2048_NO_PYTHON_TOOLS:-0}" = 1 ]; then
  echo "skipped: GRPO2048_NO_PYTHON_TOOLS=1"
  exit 77
fi
VENV="${GRPO2048_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo2048/venv}"
PY="$VENV/bin/python"
if ! "$PY" -c "import gguf, numpy, safetensors" 2>/dev/null; then
  echo "FAIL: $PY with gguf, numpy and safetensors is missing."
  echo "---> HINT: run tools/setup.sh (or tests/tools/make_venv.sh; it needs python3-venv and PyPI),"
  echo "     set GRPO2048_VENV to such a venv, or set GRPO2048_NO_PYTHON_TOOLS=1 to skip the Python tools tests."
  exit 1
fi
exec "$PY" "$@"
