"""Start the MLServer peer from the project's venv: write its settings, build its command.

MLServer runs in its own venv (``loadtest/peer/setup_peer.sh`` makes it); this
module only writes ``settings.json`` and ``model-settings.json`` into a folder
and says how to start and probe it.

>>> cmd = peer_command(Path("/tmp/peer"), Path("m.onnx"), ports=(1, 2, 3), batching=False)  # doctest: +SKIP
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
PEER_VENV = ROOT / ".venv-peer"
MODEL_NAME = "attribid"
IMPLEMENTATION = "loadtest.peer.runtime.AttribidOnnxRuntime"


def peer_available(venv: Path = PEER_VENV) -> bool:
    """Whether ``setup_peer.sh`` has built the peer's venv."""
    return (venv / "bin" / "mlserver").exists()


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
    """Environment that lets MLServer import the runtime from this repository."""
    return {"PYTHONPATH": str(ROOT)}


def wait_ready(http_port: int, timeout: float = 120.0) -> None:
    """Block until the peer says the model is ready (V2 REST readiness probe)."""
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
    raise TimeoutError(f"MLServer model not ready within {timeout} s ({url})")
