#!/usr/bin/env bash
# Make the virtualenv that serves the comparison model with `mlflow models serve`.
#
# MLflow lives in its own virtualenv (default bench/.venv-mlflow, gitignored; override with
# MLFLOW_VENV) so it never touches the Python the tests use. Idempotent: an existing, working
# virtualenv is reused. Prints the virtualenv's path; exits non-zero, saying why, when MLflow cannot
# be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${MLFLOW_VENV:-"$here/../.venv-mlflow"}
if [ -x "$venv/bin/mlflow" ] && "$venv/bin/python" -c "import mlflow, sklearn" 2>/dev/null; then
  (cd "$venv" && pwd)
  exit 0
fi
python3 -m venv "$venv" >&2 || { echo "cannot create a virtualenv at $venv (python3-venv missing?)" >&2; exit 1; }
"$venv/bin/python" -m pip install -q --upgrade pip >&2 || true
if ! "$venv/bin/python" -m pip install -q mlflow scikit-learn >&2; then
  echo "pip could not install mlflow and scikit-learn into $venv" >&2
  exit 1
fi
"$venv/bin/python" -c "import mlflow, sklearn" >&2 || { echo "mlflow does not import in $venv" >&2; exit 1; }
(cd "$venv" && pwd)
