"""Concurrency-1 Score latency on one 32-touchpoint journey, next to in-process onnxruntime.

    .venv/bin/python -m loadtest.latency              # starts its own servers, ~45 s
    .venv/bin/python -m loadtest.latency --target 127.0.0.1:50051

All figures come from the same run and the same journey: the server's p50/p99
for a whole Score call (validate, featurize, infer, attribute, bid, over
loopback gRPC), with default flags and with ``--spin-idle``; the model's run
alone on that journey's features (pinned to the server's core, with the
server's thread count); a bare grpc.aio echo server's round trip for the same
message (what any Python gRPC server costs); and that echo server running the
same forward pass on every call (the least a server of this model can do).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import uvloop

from attribid.models.onnx.runtime import load_model, shipped_model_path
from loadtest import driver
from loadtest.floors import feed
from loadtest.journeys import generate, score_requests
from loadtest.targets import attribid_server, echo_server


def onnx_times_ms(model: str, steps: int, threads: int, n: int, seed: int) -> np.ndarray:
    """``n`` timings of one model run (the server's call) on the journey the server is sent."""
    features, mask = feed(1, steps, seed)
    onnx = load_model(model, threads)
    for _ in range(20):
        onnx.run(features, mask)
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        onnx.run(features, mask)
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


@contextlib.contextmanager
def _server(target: str | None, cores: str, flags: tuple[str, ...]) -> Iterator[str]:
    if target:
        yield target
        return
    with tempfile.TemporaryDirectory() as logs, \
            attribid_server(cores, Path(logs), extra=flags) as srv:
        yield srv.address


def _c1(address: str, request: bytes, client: set[int], duration: float) -> driver.Result:
    """Concurrency 1 over one connection, from the client's cores."""
    os.sched_setaffinity(0, client)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(driver.run(address, driver.SCORE_METHOD, [request], concurrency=1,
                                     duration=duration, warmup=1.0, connections=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="", help="a running server; default: start one")
    parser.add_argument("--model", default="", help="the server's ONNX file; default shipped")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="the server's intra-op threads")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of Score calls")
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    cores = {int(c) for c in args.server_cores.split(",")}
    client = {int(c) for c in args.client_cores.split(",")}
    request = score_requests(generate(1, seed=args.seed, length=args.steps))[0]
    message = request.SerializeToString()
    model = args.model or shipped_model_path()
    rows: list[tuple[str, driver.Result]] = []
    for label, flags in (("attribid Score over gRPC", ()),
                         ("attribid Score, --spin-idle", ("--spin-idle",))):
        if args.target and flags:
            continue  # a running server's flags are its own
        with _server(args.target, args.server_cores, flags) as address:
            rows.append((label, _c1(address, message, client, args.duration)))
    with tempfile.TemporaryDirectory() as logs:
        with echo_server(args.server_cores, Path(logs)) as echo:
            bare = _c1(echo.address, message, client, args.duration)
        with echo_server(args.server_cores, Path(logs), model=Path(model)) as ab:
            both = _c1(ab.address, message, client, args.duration)
    # The servers are gone now: the onnxruntime floor gets the server's core to itself.
    os.sched_setaffinity(0, cores)
    onnx = onnx_times_ms(model, args.steps, args.threads, 2000, args.seed)
    p50, p99 = np.percentile(onnx, [50, 99])
    res = rows[0][1]
    print(f"Score, concurrency 1, one {args.steps}-touchpoint journey, {res.ok} calls:")
    print(f"  {'':<40}{'p50 ms':>9}{'p99 ms':>9}")
    for label, r in rows:
        print(f"  {label:<40}{r.p50:>9.3f}{r.p99:>9.3f}")
    print(f"  {'onnxruntime session.run in-process':<40}{p50:>9.3f}{p99:>9.3f}")
    print(f"  {'bare gRPC echo round trip':<40}{bare.p50:>9.3f}{bare.p99:>9.3f}")
    print(f"  {'echo server + the same forward pass':<40}{both.p50:>9.3f}{both.p99:>9.3f}")
    best = min(r.p50 for _, r in rows)
    print(f"  {'best Score - onnxruntime - echo (p50)':<40}{best - p50 - bare.p50:>9.3f}")
    print(f"  {'best Score - echo with forward pass':<40}{best - both.p50:>9.3f}")
    errors = {k: v for _, r in rows for k, v in r.errors.items()}
    if errors:
        print(f"  errors: {errors}")
    return 0 if all(r.ok for _, r in rows) and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
