#!/usr/bin/env bash
# tools/setup.sh: installs what grpo2048 needs on a Debian machine (only what is missing) and builds it
# into build/ (or $BUILD_DIR). Extra arguments go to cmake's configure step (e.g. -DGRPO2048_SANITIZE=ON).
# It also makes the Python venv of the tools tests (tests/tools/make_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# gnuplot-nox: `grpo2048 report` draws its plots with it (svg and pngcairo terminals, no X libraries);
# libopenmpi-dev, openmpi-bin: data-parallel runs under mpirun (docs/scale.md)
PACKAGES="build-essential cmake pkg-config libyaml-dev libsqlite3-dev sqlite3 libseccomp-dev python3-dev \
libopenblas-dev libdnnl-dev libcjson-dev libpcre2-dev python3-venv gnuplot-nox libopenmpi-dev openmpi-bin"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# The Python venv of tools/gguf_to_hf.py and its test (ctest label tools; pip from PyPI, cached; a
# failure here makes that test fail). GRPO2048_NO_PYTHON_TOOLS=1 skips both.
if [ "${GRPO2048_NO_PYTHON_TOOLS:-0}" != 1 ]; then
  tests/tools/make_venv.sh >/dev/null || echo "setup: warning: no Python venv for the tools tests (see above)" >&2
fi
