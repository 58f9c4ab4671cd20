"""The idle spinners: one per core, at idle priority, GIL-free, and they stop."""
from __future__ import annotations

import os
import threading
import time

import grpc
import pytest

from attribid.client import score_request
from attribid.runtime.spin import CHUNK_S, THREAD_NAME, IdleSpinners
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from loadtest.procs import tree_cpu_seconds
from tests.serverproc import ServerProcess, wait_serving


def _cpu_seconds(tid: int) -> float:
    with open(f"/proc/self/task/{tid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_spinners_run_one_per_core_at_idle_priority_without_holding_the_gil():
    spinners = IdleSpinners()
    assert spinners.calibrate() >= 1000
    spinners.start()
    try:
        threads = [t for t in threading.enumerate() if t.name.startswith("attribid-spin-")]
        assert len(threads) == len(os.sched_getaffinity(0)) == spinners.running
        time.sleep(0.05)
        for t in threads:
            assert os.sched_getscheduler(t.native_id) == os.SCHED_IDLE
            with open(f"/proc/self/task/{t.native_id}/comm") as fh:
                assert fh.read().strip() == THREAD_NAME
            core = int(t.name.rsplit("-", 1)[1])
            assert os.sched_getaffinity(t.native_id) == {core}
        # They spin: their CPU time grows while this thread sleeps.
        before = sum(_cpu_seconds(t.native_id) for t in threads)
        time.sleep(0.3)
        assert sum(_cpu_seconds(t.native_id) for t in threads) - before > 0.05
        # Without the GIL: Python work on this thread runs nearly all the time it
        # asks for (a spinner holding the GIL would take it for half of each 5 ms).
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        while time.perf_counter() - wall0 < 0.4:
            sum(range(1000))
        assert (time.thread_time() - cpu0) / (time.perf_counter() - wall0) > 0.6
    finally:
        t0 = time.perf_counter()
        spinners.stop(timeout=2.0)
        stopped_in = time.perf_counter() - t0
    assert spinners.running == 0
    assert stopped_in < 10 * CHUNK_S + 0.5


def test_spinners_pinned_to_a_given_core_only():
    core = min(os.sched_getaffinity(0))
    spinners = IdleSpinners({core})
    spinners.start()
    try:
        assert [t.name for t in threading.enumerate() if t.name.startswith("attribid-spin-")] \
            == [f"attribid-spin-{core}"]
    finally:
        spinners.stop()


def _process_cpu_seconds(pid: int) -> float:
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@pytest.mark.slow
def test_a_server_with_spin_idle_keeps_its_cores_busy_answers_and_exits_cleanly():
    with ServerProcess("--spin-idle") as proc:
        wait_serving(proc.address)
        journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
        with grpc.insecure_channel(proc.address) as ch:
            reply = pb_grpc.AttributionStub(ch).Score(score_request(journey), timeout=10)
        assert reply.credit["search"] == pytest.approx(1.0) and not reply.fallback
        before = _process_cpu_seconds(proc.proc.pid)
        time.sleep(0.5)
        # Idle, yet busy: the spinners ran (a server without them idles near zero).
        assert _process_cpu_seconds(proc.proc.pid) - before > 0.2
        # ... and the benchmark's CPU figures, which leave the spinners out, see idle.
        work0 = tree_cpu_seconds(proc.proc.pid)
        time.sleep(0.5)
        assert tree_cpu_seconds(proc.proc.pid) - work0 < 0.1
        proc.signal()
        assert proc.wait(30) == 0
