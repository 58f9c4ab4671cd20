"""Start the peers from the project's venv: their settings, their commands, their readiness.

MLServer and PyTriton each run in their own venv (``loadtest/peer/setup_peer.sh``,
``loadtest/peer/setup_triton.sh``); this module only writes MLServer's ``settings.json``
and ``model-settings.json`` into a folder, builds each peer's command and probes it.

>>> cmd = peer_command(Path("/tmp/peer"), Path("m.onnx"), ports=(1, 2, 3), batching=False)  # doctest: +SKIP
>>> triton_command(Path("m.onnx"), (1, 2, 3), Path("/tmp/ws"))[1:3]
['-m', 'loadtest.peer.triton_model']
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
PEER_VENV = ROOT / ".venv-peer"
TRITON_VENV = ROOT / ".venv-triton"
MODEL_NAME = "attribid"
IMPLEMENTATION = "loadtest.peer.runtime.AttribidOnnxRuntime"


def peer_available(venv: Path = PEER_VENV) -> bool:
    """Whether ``setup_peer.sh`` has built the peer's venv."""
    return (venv / "bin" / "mlserver").exists()


def triton_available(venv: Path = TRITON_VENV) -> bool:
    """Whether ``setup_triton.sh`` has built PyTriton's venv (its bundled tritonserver too)."""
    return any(venv.glob("lib/python3*/site-packages/pytriton/tritonserver/bin/tritonserver"))


def triton_command(model: Path, ports: tuple[int, int, int], workspace: Path,
                   max_batch_size: int = 32, max_queue_delay_us: int = 0,
                   venv: Path = TRITON_VENV) -> list[str]:
    """The command serving ``model`` with PyTriton; ``ports`` = (gRPC, HTTP, metrics)."""
    grpc_port, http_port, metrics_port = ports
    return [str(venv / "bin" / "python"), "-m", "loadtest.peer.triton_model",
            "--model", str(model.resolve()), "--grpc-port", str(grpc_port),
            "--http-port", str(http_port), "--metrics-port", str(metrics_port),
            "--workspace", str(workspace), "--max-batch-size", str(max_batch_size),
            "--max-queue-delay-us", str(max_queue_delay_us)]


def peer_command(workdir: Path, model: Path, ports: tuple[int, int, int], batching: bool,
                 max_batch_size: int = 32, max_batch_time_s: float = 0.002,
                 venv: Path = PEER_VENV) -> list[str]:
    """Write the peer's settings into ``workdir``; return the command that serves them.

    ``ports`` = (gRPC, HTTP, metrics), all on 127.0.0.1. Debug off; inference in
    the server process (parallel_workers 0), as attribid runs it; adaptive
    batching on when ``batching`` with ``max_batch_size`` and ``max_batch_time_s``.
    """
    grpc_port, http_port, metrics_port = ports
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {"debug": False, "parallel_workers": 0, "host": "127.0.0.1",
                "grpc_port": grpc_port, "http_port": http_port, "metrics_port": metrics_port,
                "load_models_at_startup": True,
                # MLServer's scratch folders default to the working directory.
                "environments_dir": str(workdir / ".envs"),
                "metrics_dir": str(workdir / ".metrics")}
    model_settings = {"name": MODEL_NAME, "implementation": IMPLEMENTATION,
                      "parameters": {"uri": str(model.resolve()),
                                     "extra": {"intra_op_threads": 1}}}
    if batching:
        model_settings.update(max_batch_size=max_batch_size, max_batch_time=max_batch_time_s)
    (workdir / "settings.json").write_bytes(orjson.dumps(settings))
    (workdir / "model-settings.json").write_bytes(orjson.dumps(model_settings))
    return [str(venv / "bin" / "mlserver"), "start", str(workdir)]


def peer_env() -> dict[str, str]:
    """Environment that lets a peer import its runtime from this repository."""
    return {"PYTHONPATH": str(ROOT)}


def wait_ready(http_port: int, timeout: float = 120.0) -> None:
    """Block until a peer says the model is ready (V2 REST readiness probe, MLServer's or
    Triton's)."""
    url = f"http://127.0.0.1:{http_port}/v2/models/{MODEL_NAME}/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"peer model not ready within {timeout} s ({url})")
