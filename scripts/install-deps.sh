#!/usr/bin/env bash
# Install the system packages the build and the tests need, when they are missing (Debian).
# Runs `apt-get update` at most once, and only when something has to be installed.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
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
if ! command -v cargo >/dev/null 2>&1; then
  echo "the Rust toolchain (cargo) is required: see https://rustup.rs" >&2
  exit 1
fi
