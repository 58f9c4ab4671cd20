"""--workers 2: two processes share one port (SO_REUSEPORT) and both serve."""
from __future__ import annotations

import socket
import time
import urllib.request

import grpc
import pytest

from attribid.client import score_request
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import ServerProcess, wait_serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def score_calls(metrics_port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith('attribid_rpc_calls_total{code="OK",method="Score"}'))


@pytest.mark.slow
def test_two_workers_share_the_port_and_both_answer():
    port = free_port()
    with ServerProcess("--workers", "2", "--address", f"127.0.0.1:{port}") as proc:
        deadline = time.monotonic() + 60
        while len(proc.events("listening")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        listening = proc.events("listening")
        assert len(listening) == 2 and len({e["pid"] for e in listening}) == 2
        assert all(e["port"] == port for e in listening)
        wait_serving(f"127.0.0.1:{port}")
        while len(proc.events("serving")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
        for _ in range(24):  # a new connection each time, spread over the workers by the kernel
            with grpc.insecure_channel(f"127.0.0.1:{port}",
                                       options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                pb_grpc.AttributionStub(ch).Score(score_request(journey), timeout=10)
        counts = [score_calls(e["metrics_port"]) for e in listening]
        assert sum(counts) == 24 and min(counts) > 0, counts
        proc.signal()
        assert proc.wait(30) == 0
