"""SIGHUP reloads the model under load without a failed call; --workers groups forward it and
a new group takes over from an old one."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from attribid.client import Client, score_request
from attribid.models.onnx import contract
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.batch.test_onnx_runtime import variant
from tests.serverproc import ServerProcess, wait_serving

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def journey(seed: int):
    now = time.time()
    return [{"channel": CHANNELS[(seed + i) % 7], "timestamp": now - 7200 + 60 * i,
             "interaction": "click"} for i in range(8)]


def model(tmp_path: Path, version: str) -> Path:
    return variant(tmp_path, f"{version}.onnx", meta={contract.META_VERSION: version})


class Load:
    """Score calls from a few threads until stopped (at most ``limit`` each), and health polls.

    Each thread keeps its replies' model versions in order; any failed call is kept.
    """

    def __init__(self, address: str, threads: int = 3, limit: int = 400) -> None:
        self.address = address
        self.limit = limit
        self.stop = threading.Event()
        self.versions: list[list[str]] = [[] for _ in range(threads)]
        self.failures: list[str] = []
        self.health: set[str] = set()
        self._threads = [threading.Thread(target=self._score, args=(i,), daemon=True)
                         for i in range(threads)]
        self._threads.append(threading.Thread(target=self._poll, daemon=True))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)

    @property
    def calls(self) -> int:
        return sum(map(len, self.versions))

    def wait_calls(self, more: int, timeout: float = 60.0) -> None:
        target = self.calls + more
        deadline = time.monotonic() + timeout
        while self.calls < target and time.monotonic() < deadline and not self.stop.is_set():
            time.sleep(0.005)
        assert self.calls >= target, (self.calls, target, self.failures[:3])

    def _score(self, index: int) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.AttributionStub(channel)
            for k in range(self.limit):
                if self.stop.is_set():
                    return
                try:
                    reply = stub.Score(score_request(journey(k)), timeout=10)
                except grpc.RpcError as exc:
                    self.failures.append(f"{exc.code().name}: {exc.details()}")
                    continue
                if reply.fallback:
                    self.failures.append(f"fallback: {reply.fallback_reason}")
                self.versions[index].append(reply.model_version)

    def _poll(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not self.stop.wait(0.02):
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                self.health.add(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


def test_sighup_under_load_swaps_the_model_with_no_failed_call(tmp_path):
    live = tmp_path / "attribid.onnx"
    os.replace(model(tmp_path, "v1"), live)
    with ServerProcess(env={"ATTRIBID_MODEL_PATH": str(live)}) as proc:
        wait_serving(proc.address)
        with Load(proc.address) as load:
            load.wait_calls(60)
            os.replace(model(tmp_path, "v2"), live)  # what a deploy does: rename over the file
            proc.signal(signal.SIGHUP)
            proc.wait_event("model reloaded", 30)
            load.wait_calls(60)
            live.write_bytes(b"half-copied garbage")
            proc.signal(signal.SIGHUP)
            proc.wait_event("model reload failed", 30)
            load.wait_calls(60)
        assert proc.proc is not None and proc.proc.poll() is None  # still running
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert load.failures == []
    assert load.health == {"SERVING"}
    for seen in load.versions:  # each thread: v1 until the swap, v2 from then on
        assert seen == sorted(seen) and set(seen) <= {"v1", "v2"}
    every = [v for seen in load.versions for v in seen]
    assert "v1" in every and every.count("v2") >= 120
    (reloaded,) = proc.events("model reloaded")
    assert (reloaded["old_version"], reloaded["new_version"]) == ("v1", "v2")
    (failed,) = proc.events("model reload failed")
    assert failed["model_version"] == "v2" and "not a loadable ONNX model" in failed["detail"]
    assert len(proc.events("reloading")) == 2 and not proc.events("raw")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_events(proc: ServerProcess, name: str, count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(proc.events(name)) < count:
        assert time.monotonic() < deadline, (name, count, proc.lines[-5:])
        time.sleep(0.02)
    return proc.events(name)


@pytest.mark.slow
def test_workers_reload_on_sighup_and_a_new_group_takes_over_from_the_old(tmp_path):
    live = tmp_path / "attribid.onnx"
    os.replace(model(tmp_path, "v1"), live)
    address = f"127.0.0.1:{free_port()}"
    env = {"ATTRIBID_MODEL_PATH": str(live)}
    old = ServerProcess("--workers", "2", "--address", address, env=env).start()
    new: ServerProcess | None = None
    try:
        wait_events(old, "serving", 2)
        os.replace(model(tmp_path, "v2"), live)
        old.signal(signal.SIGHUP)  # to the parent, which forwards it to each worker
        reloaded = wait_events(old, "model reloaded", 2)
        assert len({line["pid"] for line in old.events("serving")}) == 2
        assert all(line["new_version"] == "v2" for line in reloaded)

        # The takeover: a new group beside the old one, ready once each of its workers has
        # logged "serving" with the new group's start id; then the old group drains.
        with Client(address, timeout=10) as client:  # its default retry policy
            assert client.score(journey(0)).model_version == "v2"
            new = ServerProcess("--workers", "2", "--address", address, "--take-over",
                                env=env).start()
            serving = wait_events(new, "serving", 2)
            start_ids = {line["start_id"] for line in serving}
            assert len(start_ids) == 1 and start_ids.isdisjoint(
                line["start_id"] for line in old.events("serving"))
            old.signal(signal.SIGTERM)
            answered = 0
            while old.proc is not None and old.proc.poll() is None and answered < 2000:
                client.score(journey(answered))  # raises on a failed call
                answered += 1
            assert old.wait(30) == 0
            for k in range(20):  # the new group alone answers, on the same address
                client.score(journey(k))
        assert len(old.events("stopped")) == 2
    finally:
        for proc in (old, new):
            if proc is not None:
                proc.__exit__()
