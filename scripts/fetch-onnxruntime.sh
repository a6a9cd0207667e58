#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library that `coreplex` loads at start-up.
#
# The library comes from the onnxruntime PyPI wheel (pinned version, checked sha256); only the one
# shared object is kept. No Python is needed at run time. Prints the path of the library.
set -euo pipefail
ORT_VERSION=1.32.0
WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/onnxruntime"
lib="$dest/libonnxruntime.so.${ORT_VERSION}"
if [ -f "$lib" ]; then echo "$lib"; exit 0; fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download "onnxruntime==${ORT_VERSION}" --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$tmp" -q >&2
echo "${WHEEL_SHA256}  $tmp/$WHEEL" | sha256sum -c --quiet - >&2
python3 - "$tmp/$WHEEL" "$lib" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
name = "onnxruntime/capi/" + out.rsplit("/", 1)[1]
with zipfile.ZipFile(wheel) as z, z.open(name) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
shutil.move(out + ".part", out)
PY
echo "$lib"
