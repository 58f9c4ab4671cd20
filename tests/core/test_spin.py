"""The idle spinners: one per core, at idle priority, GIL-free, and they stop.

Every check here reads a property the kernel reports (scheduling policy,
affinity, thread name) or an ordering of events; none measures a CPU share.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from attribid.client import score_request
from attribid.runtime.spin import THREAD_NAME, IdleSpinners, _spin
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from loadtest import procs
from tests.serverproc import InProcessServer


def spinner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("attribid-spin-")]


def settled(thread: threading.Thread, timeout: float = 30.0) -> tuple[int, set[int], str]:
    """(policy, affinity, kernel name) once the thread has set itself up (it does so first)."""
    deadline = time.monotonic() + timeout
    while True:
        tid = thread.native_id
        assert tid is not None
        policy, cores = os.sched_getscheduler(tid), os.sched_getaffinity(tid)
        name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        if policy == os.SCHED_IDLE or time.monotonic() > deadline:
            return policy, cores, name
        time.sleep(0.01)


def test_spinners_run_one_per_core_at_idle_priority_named_for_the_benchmark():
    spinners = IdleSpinners()
    assert spinners.calibrate() >= 1000
    spinners.start()
    try:
        threads = spinner_threads()
        assert len(threads) == len(os.sched_getaffinity(0)) == spinners.running
        for t in threads:
            policy, cores, name = settled(t)
            assert policy == os.SCHED_IDLE
            assert cores == {int(t.name.rsplit("-", 1)[1])}  # its one core
            assert name == THREAD_NAME
            # ... the name the benchmark's CPU figures leave out, and only those threads
            assert procs._is_spinner(Path(f"/proc/self/task/{t.native_id}"))
        assert procs.SPIN_THREAD == THREAD_NAME
        assert not procs._is_spinner(Path(f"/proc/self/task/{threading.main_thread().native_id}"))
    finally:
        spinners.stop(timeout=30.0)
    assert spinners.running == 0 and spinner_threads() == []


def test_the_spin_kernel_lets_other_python_threads_run_while_it_spins():
    # With a switch interval far longer than the test, a thread holding the GIL keeps it
    # until it lets go itself: the main thread can run while the other thread is still
    # spinning only if the kernel released the GIL.
    n = IdleSpinners().calibrate()
    ran_while_spinning: list[bool] = []
    spinning = threading.Event()
    state = {"done": False}

    def spin() -> None:
        spinning.set()
        for _ in range(250):  # about 5 s of spinning, cut short once the main thread ran
            if ran_while_spinning:
                break
            _spin(n)
        state["done"] = True

    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        t = threading.Thread(target=spin, name="gil-check")
        t.start()
        spinning.wait()
        ran_while_spinning.append(not state["done"])
        t.join()
    finally:
        sys.setswitchinterval(interval)
    assert ran_while_spinning == [True]


def test_spinners_pinned_to_a_given_core_only():
    core = min(os.sched_getaffinity(0))
    spinners = IdleSpinners({core})
    spinners.start()
    try:
        assert [t.name for t in spinner_threads()] == [f"attribid-spin-{core}"]
    finally:
        spinners.stop()


def test_a_server_with_spin_idle_runs_idle_spinners_answers_and_stops_them():
    with InProcessServer(spin_idle=True, metrics_port=-1) as srv:
        threads = spinner_threads()
        assert len(threads) == len(os.sched_getaffinity(0))
        assert all(settled(t)[0] == os.SCHED_IDLE for t in threads)
        journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
        with grpc.insecure_channel(srv.address) as ch:
            reply = pb_grpc.AttributionStub(ch).Score(score_request(journey), timeout=10)
        assert reply.credit["search"] == pytest.approx(1.0) and not reply.fallback
        srv.stop(grace=30.0)
    assert srv.stopped and srv.events("stopped")
    assert not any(t.is_alive() for t in threads) and spinner_threads() == []
