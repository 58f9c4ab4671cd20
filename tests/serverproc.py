"""Start a real `attribid serve` process on a free loopback port, for end-to-end tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``with ServerProcess(*flags) as s: s.address`` - waits for the "listening" log line."""

    def __init__(self, *flags: str, env: dict[str, str] | None = None) -> None:
        self.flags = list(flags)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.lines: list[dict] = []
        self._listening = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        cmd = [sys.executable, "-m", "attribid.cli.main", "serve", "--address", "127.0.0.1:0",
               "--metrics-port", "0", *self.flags]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(timeout):
            self.kill()
            raise RuntimeError(f"server did not start: {self.lines[-5:]}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "raw", "text": raw.rstrip()}
            self.lines.append(line)
            if line.get("event") == "listening":
                self.port = line["port"]
                self.metrics_port = line["metrics_port"]
                self._listening.set()
        self.proc.stderr.close()

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines if line.get("event") == name]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._reader.join(5)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_serving(address: str, timeout: float = 60.0) -> list[str]:
    """Poll health until SERVING; returns the statuses seen, in order, without repeats."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0).status
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            except grpc.RpcError as exc:
                name = f"error:{exc.code().name}"
            if not seen or seen[-1] != name:
                seen.append(name)
            if name == "SERVING":
                return seen
            time.sleep(0.01)
    raise TimeoutError(f"not SERVING after {timeout} s; saw {seen}")
