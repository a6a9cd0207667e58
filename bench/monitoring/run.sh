#!/usr/bin/env bash
# Drift of a window of N logged predictions × 20 features (default 1,000,000), computed the way the
# server does it, next to exact tests on the raw values in the same run. Prints JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
ORT_DYLIB_PATH=$(scripts/fetch-onnxruntime.sh)
export ORT_DYLIB_PATH
cargo run --release -q -p coreplex-server --example drift_window -- "${1:-1000000}"
