"""Signals and exit codes of `attribid serve`, a process of its own."""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time

import grpc
import numpy as np
import pytest

from attribid.client import score_request
from attribid.runtime import logs
from attribid.runtime.server import serve
from attribid.runtime.settings import Settings
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import ServerProcess, console_command, wait_serving

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def journey(n=8, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.sort(time.time() - 60 - rng.uniform(0, 86400 * 10, n))
    return [{"channel": CHANNELS[rng.integers(0, 7)], "timestamp": float(t),
             "interaction": "click"} for t in ts]


def stub(address):
    return pb_grpc.AttributionStub(grpc.insecure_channel(address))


def test_health_goes_not_serving_to_serving_and_sigterm_drains_a_stream():
    with ServerProcess(command=console_command()) as proc:
        seen = wait_serving(proc.address)
        assert seen[0] == "NOT_SERVING" and seen[-1] == "SERVING", seen
        # A stream in flight when SIGTERM arrives is answered to the end.
        sent_signal = threading.Event()

        def requests():
            for i in range(200):
                if i == 50:
                    proc.signal(signal.SIGTERM)
                    sent_signal.set()
                    proc.wait_event("draining")
                yield score_request(journey(8, seed=i), request_id=str(i))

        replies = list(stub(proc.address).ScoreStream(requests(), timeout=30))
        assert sent_signal.is_set() and len(replies) == 200
        assert all(not r.error.message for r in replies)
        assert proc.wait(30) == 0
        assert proc.events("draining") and proc.events("stopped")
        with pytest.raises(grpc.RpcError):  # and it no longer accepts calls
            stub(proc.address).Score(score_request(journey(2)), timeout=1)


def test_a_second_signal_exits_at_once_with_code_1_and_its_log_line_out():
    # A stream left open keeps the drain waiting for its whole (long) grace period.
    with ServerProcess("--grace-s", "120") as proc:
        wait_serving(proc.address)
        sending: queue.Queue = queue.Queue()
        replies = stub(proc.address).ScoreStream(iter(sending.get, None), timeout=120)
        sending.put(score_request(journey(4), request_id="in-flight"))
        assert next(replies).request_id == "in-flight"
        proc.signal(signal.SIGTERM)
        proc.wait_event("draining")
        proc.signal(signal.SIGINT)
        # Well inside the grace period: the drain was not waited for.
        assert proc.wait(60) == 1
        sending.put(None)
        replies.cancel()
    assert proc.lines[-1]["event"] == "second signal: exiting now"
    assert proc.lines[-1]["signal"] == "SIGINT" and proc.lines[-1]["level"] == "warning"
    assert not proc.events("stopped")


def test_serve_gives_back_the_signal_handlers_it_replaced():
    caught: list[int] = []

    def previous(signum: int, _frame: object) -> None:
        caught.append(signum)

    class StopWhenServing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "serving":
                os.kill(os.getpid(), signal.SIGTERM)

    import uvloop

    signals = (signal.SIGTERM, signal.SIGINT)
    saved = {sig: signal.signal(sig, previous) for sig in signals}
    logger, stopper = logs.get(), StopWhenServing()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(stopper)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            code = runner.run(serve(Settings(address="127.0.0.1:0", metrics_port=-1)))
        assert code == 0 and caught == []  # serve's own handler took the SIGTERM
        assert all(signal.getsignal(sig) is previous for sig in signals)
        os.kill(os.getpid(), signal.SIGTERM)
        assert caught == [signal.SIGTERM]
    finally:
        logger.removeHandler(stopper)
        logger.setLevel(level)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
