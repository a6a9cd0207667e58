#!/usr/bin/env bash
# Install the system packages the build and the tests need, when they are missing (Debian).
# Runs `apt-get update` at most once, and only when something has to be installed.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# The trainer vendors LightGBM's C++ sources: bindgen needs libclang, the build needs a C++ compiler.
command -v clang >/dev/null 2>&1 || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ "${1:-}" = "--test" ]; then
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi
# LightGBM needs CMake 3.28 or newer; Debian's is older, PyPI's wheel is current.
cmake_ok() {
  command -v cmake >/dev/null 2>&1 || return 1
  v=$(cmake --version | head -n 1 | awk '{print $3}')
  [ "$(printf '%s\n' 3.28 "$v" | sort -V | head -n 1)" = "3.28" ]
}
if ! cmake_ok; then
  python3 -m pip install -q --disable-pip-version-check cmake >&2
  hash -r
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "the Rust toolchain (cargo) is required: see https://rustup.rs" >&2
  exit 1
fi
