#!/usr/bin/env bash
# tools/setup.sh: installs what grpo2048 needs on a Debian machine (only what is missing) and builds it
# into build/ (or $BUILD_DIR). Extra arguments go to cmake's configure step (e.g. -DGRPO2048_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES="build-essential cmake pkg-config libyaml-dev libsqlite3-dev sqlite3 libseccomp-dev python3-dev \
libopenblas-dev libcjson-dev libpcre2-dev"
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
