#!/usr/bin/env bash
# tools/report_screenshot.sh: opens a `grpo2048 report` page in a real browser (headless Chromium),
# takes a screenshot, and checks that it is not blank: the page renders offline (file://, no network)
# and its inline SVG plots are drawn. Exit status 0 when the screenshot has enough drawn pixels and
# colours, 1 when it looks blank, 2 on a usage error or no browser.
#
#   tools/report_screenshot.sh runs/default/report.html docs/img/report.png [WIDTH HEIGHT]
#
# Chromium is not among tools/setup.sh's packages (CI does not run this script): Debian's `chromium`
# with its libraries is ~80 MB to download and ~300 MB installed, too much for every CI machine for one
# screenshot. This script installs it with apt-get when it is missing (as root, or through sudo);
# GRPO2048_CHROMIUM=/path/to/chrome uses another Chromium or Chrome build instead.
#
# The blank check decodes the PNG with Python's standard library (zlib + the PNG row filters, no
# Pillow needed) and requires at least 2 % of the pixels to differ from the page's most common colour
# and at least 16 distinct colours; a white or single-colour page fails both.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
html=$(realpath "$1")
out=$2
width=${3:-1280}
height=${4:-1000}
[ -f "$html" ] || { echo "report_screenshot: $1: no such file" >&2; exit 2; }

browser=${GRPO2048_CHROMIUM:-}
if [ -z "$browser" ]; then
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
  done
fi
if [ -z "$browser" ]; then
  echo "report_screenshot: installing Debian's chromium (about 80 MB)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser=chromium
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-sandbox: Chromium refuses to run as root with its sandbox; the page is our own file.
# A fresh profile in $tmp, so no user state is read or written.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$tmp/profile" --window-size="$width,$height" --screenshot="$tmp/shot.png" \
  "file://$html" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; echo "report_screenshot: $browser failed" >&2; exit 2; }
[ -s "$tmp/shot.png" ] || { cat "$tmp/log" >&2; echo "report_screenshot: no screenshot written" >&2; exit 2; }

status=0
python3 - "$tmp/shot.png" <<'EOF' || status=$?
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and ctype in (2, 6), "expected 8-bit RGB or RGBA"
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
counts = {}
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = bytes(line[x:x + 3])
        counts[px] = counts.get(px, 0) + 1
    prev = line
total = w * h
background = max(counts.values())
drawn = 1 - background / total
print(f"screenshot {w}x{h}: {len(counts)} colours, {100 * drawn:.1f} % of the pixels drawn")
sys.exit(0 if drawn >= 0.02 and len(counts) >= 16 else 1)
EOF
mkdir -p "$(dirname "$out")"
cp "$tmp/shot.png" "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
echo "wrote $out"
exit $status
