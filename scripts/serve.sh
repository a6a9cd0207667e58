#!/usr/bin/env bash
# Install what is missing, build, and start the server with its embedded defaults
# (SQLite and artifacts in ./coreplex-data, listening on 127.0.0.1:8080). Extra arguments go to
# `coreplex serve`, e.g. `scripts/serve.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
lib=$(scripts/fetch-onnxruntime.sh)
cargo build --release -p coreplex-cli
exec target/release/coreplex serve --onnxruntime-lib "$lib" "$@"
