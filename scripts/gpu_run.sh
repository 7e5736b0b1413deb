#!/usr/bin/env bash
# One shot on the GPU machine (the device tool's `run`; benchmarks/README.md gives the exact call): install the
# carried wheels (scripts/gpu_wheels.sh put them in gpu_wheels/) and faceaudit without touching the image's packages,
# then run benchmarks/gpu.py once and leave its JSON and log in $OUT.
#
#     scripts/gpu_run.sh [gpu.py options]        # e.g. --smoke to try this script on a CPU machine
#
# Why not a venv: the image's python3 is itself a venv (/opt/torch/.venv), and `python3 -m venv
# --system-site-packages` would see the base interpreter's site-packages, not torch's. The wheels go into a
# --target folder put first on PYTHONPATH instead (the device README's recipe), so they win over the image's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
SITE=${FACEAUDIT_SITE:-/tmp/faceaudit-site}
PY=${PYTHON:-python3}
log() { echo "[gpu_run] $*" | tee -a "$OUT/gpu_run.log"; }
log "python: $($PY -c 'import sys; print(sys.version.split()[0], sys.executable)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/gpu_run.log"
if ls gpu_wheels/*.whl >/dev/null 2>&1; then
  started=$(date +%s)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" gpu_wheels/*.whl \
    >>"$OUT/gpu_run.log" 2>&1 || { log "installing the wheels failed"; tail -20 "$OUT/gpu_run.log"; exit 1; }
  log "wheels installed in $(( $(date +%s) - started )) s"
else
  log "no gpu_wheels/ carried: using the image's packages only"
fi
# faceaudit itself: from the source tree (PYTHONPATH), with its metadata installed when setuptools can build it.
$PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . >>"$OUT/gpu_run.log" 2>&1 \
  && log "faceaudit installed" || log "faceaudit not installed (its source tree is used)"
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 FACEAUDIT_CACHE=/tmp/faceaudit-cache
$PY -c "import audit.api, duckdb, pandera, pydantic, onnx2torch; print('imports ok')" 2>&1 | tee -a "$OUT/gpu_run.log"
set -o pipefail
timeout "${GPU_BENCH_TIMEOUT:-480}" $PY benchmarks/gpu.py --out "$OUT/gpu.json" "$@" >"$OUT/gpu_stdout.json" \
  2> >(tee "$OUT/gpu_stderr.log" >&2)
rc=$?
log "benchmarks/gpu.py exit status $rc (124: stopped by its time limit; $OUT/gpu.json holds the sections it finished)"
cat "$OUT/gpu.json" 2>/dev/null
exit $rc
