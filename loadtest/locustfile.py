"""Locust load test for attribid: Score, a share of ScoreStream, a trickle of ReportOutcomes.

Headless, for a set time and rate, writing Locust's CSV and HTML reports and a
microsecond latency histogram (run from the repository root):

    .venv/bin/locust -f loadtest/locustfile.py --headless --host 127.0.0.1:50051 \\
        -u 20 -r 20 -t 30s --rate 400 --csv runs/locust --html runs/locust.html

``--rate`` is the total task rate (tasks/s over all users; a ScoreStream task
sends ``--stream-messages`` messages). Only loopback hosts are accepted.
gRPC runs gevent-cooperatively (``grpc.experimental.gevent``) and a client
interceptor fires one Locust request event per unary call.
"""
from __future__ import annotations

import time
from itertools import count
from pathlib import Path
from typing import Any, Callable

import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import numpy as np  # noqa: E402
from locust import User, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from attribid.v1 import attribution_pb2_grpc as pb_grpc  # noqa: E402
from loadtest.histogram import LatencyHistogram  # noqa: E402
from loadtest.journeys import generate, outcome_request, score_requests  # noqa: E402

#: microsecond-resolution latencies of every request event in this run
HISTOGRAM = LatencyHistogram()
_POOL: dict[str, Any] = {}
_SEQ = count()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--rate", type=float, default=200.0,
                        help="total task rate over all users, tasks/s")
    parser.add_argument("--journeys", type=int, default=2000, help="distinct journeys to send")
    parser.add_argument("--seed", type=int, default=7, help="journey generator seed")
    parser.add_argument("--deadline-ms", type=float, default=1000.0, help="per-call deadline")
    parser.add_argument("--stream-messages", type=int, default=16,
                        help="messages per ScoreStream task")


@events.test_start.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    host = (environment.host or "").split("://")[-1]
    name = host.rsplit(":", 1)[0].strip("[]")
    if not (name.startswith("127.") or name in ("localhost", "::1")):
        raise SystemExit(f"--host: loopback addresses only (host:port), got {environment.host!r}")
    opts = environment.parsed_options
    _POOL["requests"] = score_requests(generate(opts.journeys, seed=opts.seed), seed=opts.seed)


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float,
            exception: BaseException | None, **_: Any) -> None:
    if exception is None:
        HISTOGRAM.record(name, response_time)


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    print("\nlatency at microsecond resolution (successful requests):")
    for line in HISTOGRAM.summary_lines():
        print("  " + line)
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix:
        HISTOGRAM.write_csv(Path(f"{prefix}_us_histogram.csv"))


class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Fires a Locust request event (timed with perf_counter) for every unary call."""

    def __init__(self, environment: Environment) -> None:
        self._env = environment

    def intercept_unary_unary(self, continuation: Callable, client_call_details: Any,
                              request: Any) -> Any:
        name = client_call_details.method.rsplit("/", 1)[-1]
        start = time.perf_counter()
        exception: BaseException | None = None
        length = 0
        response = continuation(client_call_details, request)
        try:
            length = response.result().ByteSize()
        except grpc.RpcError as exc:
            exception = exc
        self._env.events.request.fire(
            request_type="grpc", name=name, response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length, exception=exception, context=None)
        return response


class AttribidUser(User):
    """One platform client: mostly Score, some ScoreStream, a trickle of ReportOutcomes."""

    def wait_time(self) -> float:
        # Pace each user so all users together run --rate tasks per second.
        opts = self.environment.parsed_options
        users = max(self.environment.runner.user_count if self.environment.runner else 1, 1)
        period = users / opts.rate
        elapsed = time.perf_counter() - self._last
        wait = max(period - elapsed, 0.0)
        self._last = time.perf_counter() + wait
        return wait

    def on_start(self) -> None:
        self._last = time.perf_counter()
        self._rng = np.random.default_rng(next(_SEQ))
        host = self.environment.host.split("://")[-1]
        self._channel = grpc.intercept_channel(grpc.insecure_channel(host),
                                               LocustInterceptor(self.environment))
        self._stub = pb_grpc.AttributionStub(self._channel)
        self._timeout = self.environment.parsed_options.deadline_ms / 1000.0

    def on_stop(self) -> None:
        self._channel.close()

    def _next_requests(self, n: int) -> list[Any]:
        pool = _POOL["requests"]
        start = int(self._rng.integers(0, len(pool)))
        return [pool[(start + k) % len(pool)] for k in range(n)]

    @task(20)
    def score(self) -> None:
        self._stub.Score.future(self._next_requests(1)[0], timeout=self._timeout).exception()

    @task(2)
    def score_stream(self) -> None:
        # Pipelined: every message goes out as fast as the stream takes it; each
        # reply is timed from its own request's send.
        sent: list[float] = []
        reqs = self._next_requests(self.environment.parsed_options.stream_messages)

        def feed() -> Any:
            for req in reqs:
                sent.append(time.perf_counter())
                yield req

        fire = self.environment.events.request.fire
        try:
            for k, reply in enumerate(self._stub.ScoreStream(feed(), timeout=self._timeout * 4)):
                error = RuntimeError(reply.error.message) if reply.HasField("error") else None
                fire(request_type="grpc", name="ScoreStream", response_length=reply.ByteSize(),
                     response_time=(time.perf_counter() - sent[k]) * 1000.0,
                     exception=error, context=None)
        except grpc.RpcError as exc:
            fire(request_type="grpc", name="ScoreStream", response_time=0.0,
                 response_length=0, exception=exc, context=None)

    @task(1)
    def report_outcomes(self) -> None:
        batch = f"lt-{id(self)}-{int(self._rng.integers(1 << 62))}"
        self._stub.ReportOutcomes.future(outcome_request(self._rng, batch),
                                         timeout=self._timeout).exception()
