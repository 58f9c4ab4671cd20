#!/usr/bin/env bash
# Create .venv-peer: MLServer 1.7.1 + onnxruntime, apart from the project's .venv
# (MLServer pins its own FastAPI/pydantic/grpc stack; it never enters .venv).
# The featurizer comes from this repo, installed without dependencies, so the peer
# featurizes exactly as attribid does.
#
#   bash loadtest/peer/setup_peer.sh            # creates ./.venv-peer
#   PEER_VENV=/tmp/peer bash loadtest/peer/setup_peer.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PEER_VENV:-$ROOT/.venv-peer}"
PY="${PY:-python3}"

mkdir -p "$VENV"
# A venv that ignores itself: never committed, whatever the repo's .gitignore says.
printf '*\n' > "$VENV/.gitignore"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
# uvloop < 0.22: MLServer 1.7.1's parallel inference workers call
# asyncio.get_event_loop() at start, which newer uvloop refuses.
"$VENV/bin/pip" install -q "mlserver==1.7.1" "uvloop<0.22" "onnxruntime>=1.19" "numba>=0.60" "numpy>=1.26"
"$VENV/bin/pip" install -q --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import mlserver, onnxruntime, numba; print('peer venv ready:', mlserver.__version__, onnxruntime.__version__, numba.__version__)"
