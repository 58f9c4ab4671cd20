"""The servers a benchmark drives: attribid, the echo floor and the peers (MLServer, PyTriton).

Each ``*_server`` context manager starts its server pinned to the given cores,
waits until it answers, and yields a :class:`Target`; leaving the block stops it.
"""
from __future__ import annotations

import contextlib
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.driver import SCORE_METHOD
from loadtest.peer import launch
from loadtest.procs import Proc, free_port, started

ROOT = Path(__file__).resolve().parents[1]
PEER_METHOD = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Target:
    """A running server: where to send which method, and how to read its CPU and metrics."""

    name: str
    address: str
    method: str
    proc: Proc
    metrics_urls: tuple[str, ...] = ()
    #: the Prometheus counters of (journeys, model runs): attribid's, or Triton's
    #: (rows inferred, executions of the model function)
    batch_metrics: tuple[str, str] = ("attribid_batch_size_sum", "attribid_batch_size_count")

    def batch_counts(self) -> tuple[float, float]:
        """(journeys, model runs) so far, summed over workers; (0, 0) if unknown."""
        total = runs = 0.0
        rows, execs = self.batch_metrics
        for url in self.metrics_urls:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2.0) as resp:
                    for line in resp.read().decode().splitlines():
                        name = line.split("{", 1)[0].split(" ", 1)[0]
                        if name == rows:
                            total += float(line.rsplit(" ", 1)[1])
                        elif name == execs:
                            runs += float(line.rsplit(" ", 1)[1])
        return total, runs


    def score_statuses(self) -> dict[str, float]:
        """Score calls so far by gRPC status code, summed over workers (attribid only)."""
        out: dict[str, float] = {}
        for url in self.metrics_urls:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2.0) as resp:
                    for line in resp.read().decode().splitlines():
                        if line.startswith("attribid_rpc_calls_total") and 'method="Score"' in line:
                            code = line.split('code="', 1)[1].split('"', 1)[0]
                            out[code] = out.get(code, 0.0) + float(line.rsplit(" ", 1)[1])
        return out


def wait_serving(address: str, timeout: float = 120.0) -> None:
    """Block until grpc.health.v1 reports SERVING at ``address``."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.05)
    raise TimeoutError(f"{address} not SERVING within {timeout} s")


@contextlib.contextmanager
def attribid_server(cores: str | None, logdir: Path, workers: int = 1,
                    extra: tuple[str, ...] = ()) -> Iterator[Target]:
    """``attribid serve`` on 127.0.0.1 (a fixed free port when ``workers`` > 1)."""
    port = free_port() if workers > 1 else 0
    cmd = [sys.executable, "-m", "attribid.cli.main", "serve", "--address", f"127.0.0.1:{port}",
           "--metrics-port", "0", "--workers", str(workers), *extra]
    # The log's name tells the runs apart by their flags (a path's slashes made safe).
    tag = f"attribid-w{workers}" + re.sub(r"[^A-Za-z0-9.]+", "_", "".join(extra))
    with started(cmd, cores, logdir / f"{tag}.log", cwd=str(ROOT)) as proc:
        address = proc.wait_for_address(120.0)
        # Each worker warms on its own: wait until every one has said "serving".
        deadline = time.monotonic() + 180.0
        while len(_events(proc.log, "serving")) < workers:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise RuntimeError(f"attribid did not reach SERVING; see {proc.log}")
            time.sleep(0.1)
        wait_serving(address)
        urls = tuple(f"http://127.0.0.1:{r['metrics_port']}/metrics"
                     for r in _events(proc.log, "listening") if r.get("metrics_port"))
        yield Target(f"attribid-w{workers}", address, SCORE_METHOD, proc, urls)


def _events(log: Path, name: str) -> list[dict]:
    """JSON log records of event ``name``."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            record = orjson.loads(line)
            if isinstance(record, dict) and record.get("event") == name:
                out.append(record)
    return out


@contextlib.contextmanager
def echo_server(cores: str | None, logdir: Path, model: Path | None = None,
                spin_idle: bool = False) -> Iterator[Target]:
    """Floor B: the bare grpc.aio + uvloop server; with ``model``, floor A+B."""
    cmd = [sys.executable, "-m", "loadtest.echo_server", "--address", "127.0.0.1:0"]
    name = "echo"
    if model is not None:
        cmd += ["--model", str(model)]
        name = "echo+onnx"
    if spin_idle:
        cmd.append("--spin-idle")
        name += "+spin"
    with started(cmd, cores, logdir / f"{name}.log", cwd=str(ROOT)) as proc:
        address = proc.wait_for_address(60.0)
        yield Target(name, address, SCORE_METHOD, proc)


@contextlib.contextmanager
def peer_server(cores: str | None, logdir: Path, model: Path, batching: bool,
                max_batch_size: int = 32, max_batch_time_s: float = 0.002) -> Iterator[Target]:
    """The MLServer 1.7.1 peer (needs .venv-peer) serving ``model``."""
    ports = (free_port(), free_port(), free_port())
    tag = "peer-batching" if batching else "peer"
    cmd = launch.peer_command(logdir / tag, model, ports, batching,
                              max_batch_size, max_batch_time_s)
    with started(cmd, cores, logdir / f"{tag}.log", env=launch.peer_env(),
                 cwd=str(logdir / tag)) as proc:
        launch.wait_ready(ports[1])
        yield Target(tag, f"127.0.0.1:{ports[0]}", PEER_METHOD, proc)


@contextlib.contextmanager
def triton_server(cores: str | None, logdir: Path, model: Path, max_batch_size: int = 32,
                  max_queue_delay_us: int = 0) -> Iterator[Target]:
    """The PyTriton 0.7.0 peer (needs .venv-triton) serving ``model``, on 127.0.0.1 only.

    Its process tree (the Python model function, tritonserver and Triton's Python-backend
    stub) runs on ``cores``; CPU figures count all of it.
    """
    ports = (free_port(), free_port(), free_port())
    cmd = launch.triton_command(model, ports, logdir / f"triton-workspace-{ports[0]}",
                                max_batch_size, max_queue_delay_us)
    with started(cmd, cores, logdir / "triton.log", env=launch.peer_env(),
                 cwd=str(ROOT)) as proc:
        proc.wait_for_address(180.0)
        launch.wait_ready(ports[1])
        yield Target("triton", f"127.0.0.1:{ports[0]}", PEER_METHOD, proc,
                     (f"http://127.0.0.1:{ports[2]}/metrics",),
                     ("nv_inference_count", "nv_inference_exec_count"))
