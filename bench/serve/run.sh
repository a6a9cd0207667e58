#!/usr/bin/env bash
# Serving load benchmark: CorePlexML's predict route next to a bare HTTP+JSON server and
# `mlflow models serve`, all measured in this one run with the same load generator.
#
#   bash bench/serve/run.sh
#
# Builds release, exports the model (scikit-learn HistGradientBoostingClassifier, 20 features, to
# ONNX), starts the three servers on free loopback ports, loads them level by level (each server in
# turn at concurrency 1, then 8, then 64; single-row requests, closed loop), checks that CorePlexML's prediction log holds one row per
# successful request, and writes bench/serve/results.md. Everything it starts is stopped on exit.
#
# Environment:
#   LEVELS=1,8,64  DURATION=10  WARMUP=2   load levels and seconds per level
#   LOADGEN_THREADS=1                      threads of the load generator's runtime
#   SKIP_MLFLOW=1                          leave MLflow out
#   MLFLOW_VENV=path                       MLflow's virtualenv (default bench/.venv-mlflow)
#   SKIP_BUILD=1                           use the binaries already built (CARGO_TARGET_DIR or target/)
#   RESULTS=path                           where to write the report (default bench/serve/results.md)
#   BENCH_COMMIT=id                        the commit to name in the report when this is no checkout
#
# The load generator runs on the same machine as the server: on a 2-core machine they share the
# cores, and anything else running (a cargo build) makes the numbers noisy.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=bench/serve
LEVELS=${LEVELS:-1,8,64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
RESULTS=${RESULTS:-$here/results.md}
target_dir=${CARGO_TARGET_DIR:-$root/target}

work=$(mktemp -d "${TMPDIR:-/tmp}/coreplex-bench-serve.XXXXXX")
pids=()
cleanup() {
  # A negative id is a process group (MLflow runs uvicorn as a child process).
  for pid in "${pids[@]}"; do
    kill -TERM -- "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "${pid#-}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "== $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# Waits (up to $3 s) for a line matching $2 in file $1 and prints it.
wait_line() {
  local file=$1 pattern=$2 limit=$3 i=0
  while [ $i -lt $((limit * 10)) ]; do
    if grep -q "$pattern" "$file" 2>/dev/null; then grep "$pattern" "$file" | tail -1; return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# How busy the machine is just before the load (other builds skew every number).
cpu_busy() { # percent of CPU time not idle over one second
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

if [ "${SKIP_BUILD:-}" != 1 ]; then
  say "building release"
  cargo build --release -q -p coreplex-cli -p coreplex-bench-serve
fi
coreplex="$target_dir/release/coreplex"
loadgen="$target_dir/release/loadgen"
bare="$target_dir/release/bare-server"

say "exporting the model"
python3 "$here/export_model.py" "$work"
ort=$(scripts/fetch-onnxruntime.sh)
features=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["feature_names"]))' "$work/rows.json")

# --- CorePlexML -------------------------------------------------------------------------------
say "starting coreplex serve"
"$coreplex" serve --listen 127.0.0.1:0 --data-dir "$work/coreplex" --onnxruntime-lib "$ort" \
  >"$work/coreplex.out" 2>"$work/coreplex.err" &
coreplex_pid=$!
pids+=("$coreplex_pid")
line=$(wait_line "$work/coreplex.out" "CorePlexML listening on" 60) || {
  cat "$work/coreplex.err" >&2; die "coreplex did not start"; }
cp_url=${line##* }
key_file="$work/coreplex/admin.key"
key=$(cat "$key_file")
api() { # method path [curl args...]
  local m=$1 p=$2; shift 2
  curl -sS --fail-with-body -X "$m" -H "Authorization: Bearer $key" "$cp_url$p" "$@"
}
project=$(api POST /api/v1/projects -H 'Content-Type: application/json' -d '{"name": "bench-serve"}' | jq -r .id)
printf '{"name": "hgb-20", "task": "binary_classification", "feature_names": %s}' "$features" >"$work/metadata.json"
model=$(api POST "/api/v1/projects/$project/models" \
  -F "metadata=<$work/metadata.json;type=application/json" -F "file=@$work/model.onnx" | jq -r .id)
deployment=$(api POST "/api/v1/projects/$project/deployments" -H 'Content-Type: application/json' \
  -d "{\"name\": \"bench\", \"model_id\": \"$model\"}" | jq -r .id)
[ -n "$deployment" ] && [ "$deployment" != null ] || die "could not deploy the model"
cp_predict="$cp_url/api/v1/deployments/$deployment/predict"
say "coreplex: project $project, model $model, deployment $deployment"

# --- bare server ------------------------------------------------------------------------------
"$bare" --listen 127.0.0.1:0 >"$work/bare.out" 2>"$work/bare.err" &
pids+=($!)
line=$(wait_line "$work/bare.out" "listening on" 10) || die "the bare server did not start"
bare_predict="${line##* }/predict"

# --- MLflow -----------------------------------------------------------------------------------
mlflow_status=""
mlflow_predict=""
if [ "${SKIP_MLFLOW:-}" = 1 ]; then
  mlflow_status="left out (SKIP_MLFLOW=1)"
else
  say "preparing MLflow (its own virtualenv)"
  if venv=$(bash "$here/mlflow_setup.sh" 2>"$work/mlflow-setup.err"); then
    if "$venv/bin/python" "$here/mlflow_model.py" "$work/mlflow-model" 2>"$work/mlflow-model.err"; then
      port=$(free_port)
      # --env-manager local: serve from this virtualenv rather than building another one.
      # Its own process group, so stopping it stops the uvicorn it starts; the virtualenv first on
      # PATH, where `mlflow models serve` looks for uvicorn.
      (cd "$work" && PATH="$venv/bin:$PATH" exec setsid "$venv/bin/mlflow" models serve \
        -m "$work/mlflow-model" --env-manager local -h 127.0.0.1 -p "$port") >"$work/mlflow.out" 2>&1 &
      pids+=("-$!")
      for _ in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$port/ping" >/dev/null 2>&1; then
          mlflow_predict="http://127.0.0.1:$port/invocations"; break
        fi
        sleep 0.2
      done
      mlflow_version=$("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)')
      [ -n "$mlflow_predict" ] && mlflow_status="mlflow $mlflow_version" \
        || mlflow_status="mlflow models serve did not answer /ping within 120 s: $(tail -3 "$work/mlflow.out" | tr '\n' ' ')"
    else
      mlflow_status="could not save the MLflow model: $(tail -3 "$work/mlflow-model.err" | tr '\n' ' ')"
    fi
  else
    mlflow_status="MLflow could not be installed: $(tail -3 "$work/mlflow-setup.err" | tr '\n' ' ')"
  fi
fi
[ -n "$mlflow_predict" ] || say "MLflow: $mlflow_status"

# --- smoke: each server answers the first row, with the same class ----------------------------
first_row=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"rows":[dict(zip(d["feature_names"], d["rows"][0]))]}))' "$work/rows.json")
cp_label=$(curl -sS --fail-with-body -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "$first_row" "$cp_predict" | jq -r '.predictions[0].label')
curl -sS --fail-with-body -H 'Content-Type: application/json' -d "$first_row" "$bare_predict" >/dev/null
expected=$(jq -r '.expected_labels[0]' "$work/rows.json")
[ "$cp_label" = "$expected" ] || die "coreplex predicted $cp_label for the first row, scikit-learn $expected"
if [ -n "$mlflow_predict" ]; then
  mlflow_body=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"dataframe_split":{"columns":d["feature_names"],"data":[d["rows"][0]]}}))' "$work/rows.json")
  ml_label=$(curl -sS --fail-with-body -H 'Content-Type: application/json' -d "$mlflow_body" "$mlflow_predict" \
    | jq -r '.predictions[0]')
  [ "$ml_label" = "$expected" ] || die "mlflow predicted $ml_label for the first row, scikit-learn $expected"
fi

# --- load ---------------------------------------------------------------------------------------
busy=$(cpu_busy)
if [ "$busy" -gt 10 ]; then
  say "warning: the machine was ${busy}% busy just before the load; numbers will be noisy"
fi
results="$work/results.jsonl"
# One load generator run per level, so that between levels CorePlexML's prediction log can be
# flushed and the time that takes recorded: a log writer that kept up drains in milliseconds; one
# that fell behind shows here (and, once its bounded queue is full, in throughput and latency).
# The servers take turns level by level (bare, CorePlexML, MLflow at concurrency 1, then at 8, …),
# so that a slow drift of the machine's speed over the minutes of the run does not favour one server.
run_level() { # label url format concurrency [bearer file]
  local label=$1 url=$2 format=$3 c=$4 bearer=${5:-} drain
  say "loading $label at concurrency $c (${WARMUP}s warm-up + ${DURATION}s)"
  "$loadgen" --label "$label" --url "$url" --rows "$work/rows.json" --format "$format" \
    ${bearer:+--bearer-file "$bearer"} --concurrency "$c" --duration "$DURATION" \
    --warmup "$WARMUP" --threads "$LOADGEN_THREADS" >>"$results"
  if [ "$label" = coreplex ]; then
    # Listing the log flushes its queue first; the listing itself (one row) is cheap.
    drain=$(curl -sS -o /dev/null --fail -w '%{time_total}' -H "Authorization: Bearer $key" \
      "$cp_url/api/v1/deployments/$deployment/predictions?limit=1")
    printf '{"target": "coreplex", "concurrency": %s, "log_drain_s": %s}\n' "$c" "$drain" >>"$results"
  fi
}
for c in ${LEVELS//,/ }; do
  run_level bare "$bare_predict" rows "$c"
  run_level coreplex "$cp_predict" rows "$c" "$key_file"
  if [ -n "$mlflow_predict" ]; then
    run_level mlflow "$mlflow_predict" mlflow "$c"
  fi
done

# --- the prediction log lost nothing ------------------------------------------------------------
# Successful requests the load generator counted (warm-up and tail included) plus the smoke request,
# against the rows the log holds: first through the API (which flushes the queue), then in the
# database itself after a clean shutdown.
sent_ok=$(jq -s '[.[] | select(.target == "coreplex" and .summary == true) | .ok_total] | add' "$results")
expected_rows=$((sent_ok + 1))
api_rows=$(api GET "/api/v1/deployments/$deployment/metrics?window_minutes=60" \
  | jq '[.windows[-1].variants[].requests] | add')
kill -TERM "$coreplex_pid"
wait "$coreplex_pid" 2>/dev/null || true
db_rows=$(python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("SELECT count(*) FROM predictions WHERE deployment_id=?", (sys.argv[2],)).fetchone()[0])' \
  "$work/coreplex/coreplex.db" "$deployment")

# --- report --------------------------------------------------------------------------------------
python3 "$here/report.py" --results "$results" --out "$RESULTS" \
  --expected-rows "$expected_rows" --api-rows "$api_rows" --db-rows "$db_rows" \
  --mlflow-status "$mlflow_status" --levels "$LEVELS" --duration "$DURATION" --warmup "$WARMUP" \
  --loadgen-threads "$LOADGEN_THREADS" --busy-before "$busy"
