#!/usr/bin/env bash
# Create .venv-triton: PyTriton 0.7.0 (NVIDIA Triton Inference Server's C++ front end with a
# Python model function) + onnxruntime, apart from the project's .venv.
# The venv comes from Debian's interpreter: Triton's Python-backend stub links the system
# libpython3.11.so, and a venv of another 3.11 build fails to load the model.
# The featurizer and the model loader come from this repo, installed without dependencies,
# so the peer featurizes and loads the model exactly as attribid does.
#
#   bash loadtest/peer/setup_triton.sh          # creates ./.venv-triton
#   TRITON_VENV=/tmp/triton bash loadtest/peer/setup_triton.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${TRITON_VENV:-$ROOT/.venv-triton}"
PY="${TRITON_PY:-/usr/bin/python3}"

mkdir -p "$VENV"
# A venv that ignores itself: never committed, whatever the repo's .gitignore says.
printf '*\n' > "$VENV/.gitignore"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "nvidia-pytriton==0.7.0" "onnxruntime>=1.19" "numba>=0.60" "numpy>=1.26"
"$VENV/bin/pip" install -q --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import pytriton, onnxruntime, numba; from importlib.metadata import version; print('triton venv ready:', version('nvidia-pytriton'), onnxruntime.__version__, numba.__version__)"
