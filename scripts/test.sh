#!/usr/bin/env bash
# Run every test: the Rust workspace (both database backends) and the Python SDK against the real
# server. Installs what is missing first and starts a throw-away PostgreSQL unless
# COREPLEX_TEST_DATABASE_URL points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
python3 -m pip install -q --disable-pip-version-check requests pytest numpy scipy pandas 2>&1 | grep -v "WARNING: Running pip as the 'root' user" >&2 || true
python3 -m pip install -q --disable-pip-version-check -e sdk/python 2>&1 | grep -v "WARNING: Running pip as the 'root' user" >&2 || true
ORT_DYLIB_PATH=$(scripts/fetch-onnxruntime.sh)
export ORT_DYLIB_PATH
if [ -z "${COREPLEX_TEST_DATABASE_URL:-}" ]; then
  COREPLEX_TEST_DATABASE_URL=$(scripts/start-postgres.sh)
  export COREPLEX_TEST_DATABASE_URL
fi
# A one-off build on CI has nothing to reuse: skip the incremental cache (it doubles the disk used).
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi
cargo test --workspace
COREPLEX_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/coreplex" PYTHONPATH="$PWD/sdk/python" python3 -m pytest sdk/python/tests -q
