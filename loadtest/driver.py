"""The load generator: closed-loop or open-loop (Poisson) unary gRPC calls, one process.

Requests are sent pre-serialized (the client pays no protobuf encoding) over a
few HTTP/2 connections, round robin, from one uvloop event loop. Latency is
taken with the monotonic clock in nanoseconds. In open loop it is measured
from each call's *scheduled* arrival time, so a generator that falls behind
shows up as latency instead of hiding it (no coordinated omission).

    python -m loadtest.driver --target 127.0.0.1:50051 --requests runs/req32.bin \\
        --closed 8 --duration 5
    python -m loadtest.driver --target 127.0.0.1:50051 --requests runs/req32.bin \\
        --rate 2000 --duration 5
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import struct
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import numpy as np
import orjson
import uvloop

SCORE_METHOD = "/attribid.v1.Attribution/Score"
#: an open-loop run never holds more calls than this in flight; arrivals past it are dropped
MAX_IN_FLIGHT = 4096


def write_requests(path: Path, messages: list[bytes]) -> None:
    """Store serialized requests, each prefixed by its length (uint32, little endian).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "r.bin"
    >>> write_requests(p, [b"ab", b""]); read_requests(p)
    [b'ab', b'']
    """
    with open(path, "wb") as fh:
        for msg in messages:
            fh.write(struct.pack("<I", len(msg)))
            fh.write(msg)


def read_requests(path: Path) -> list[bytes]:
    """Read requests written by :func:`write_requests`."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    if not out:
        raise ValueError(f"{path}: no requests")
    return out


@dataclass
class Result:
    """What one run measured; latencies in milliseconds."""

    mode: str
    level: float
    duration_s: float
    sent: int = 0
    ok: int = 0
    fallback: int = 0
    dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    throughput: float = 0.0
    p50: float = float("nan")
    p90: float = float("nan")
    p99: float = float("nan")
    p999: float = float("nan")
    max: float = float("nan")
    mean: float = float("nan")
    #: open loop: p99 of how late calls left the generator after their scheduled arrival
    send_lag_p99: float = float("nan")
    #: open loop: p99 latency from the moment the call was actually sent
    p99_from_send: float = float("nan")
    #: answers from the network (not the fallback): their count and p99 from scheduled arrival
    admitted: int = 0
    p99_admitted: float = float("nan")
    p99_admitted_from_send: float = float("nan")
    #: cores busy during the measured window: the generator, and the watched server
    client_cpu: float = float("nan")
    server_cpu: float = float("nan")


class _Recorder:
    """Collects per-call outcomes inside the measurement window."""

    def __init__(self, start_ns: int, end_ns: int, parse_fallback: bool) -> None:
        self.start_ns, self.end_ns = start_ns, end_ns
        self.lat_ns = array("q")
        self.lag_ns = array("q")
        self.from_send_ns = array("q")
        self.admitted_ns = array("q")
        self.admitted_send_ns = array("q")
        self.sent = self.fallback = self.dropped = 0
        self.errors: dict[str, int] = {}
        self.parse_fallback = parse_fallback

    def counts(self, t0: int) -> bool:
        return self.start_ns <= t0 < self.end_ns

    def done(self, t0: int, sent_ns: int, reply: bytes | None,
             code: grpc.StatusCode | None) -> None:
        if not self.counts(t0):
            return
        self.sent += 1
        if code is not None:
            self.errors[code.name] = self.errors.get(code.name, 0) + 1
            return
        now = time.perf_counter_ns()
        self.lat_ns.append(now - t0)
        self.from_send_ns.append(now - sent_ns)
        if self.parse_fallback and reply is not None:
            if _is_fallback(reply):
                self.fallback += 1
            else:
                self.admitted_ns.append(now - t0)
                self.admitted_send_ns.append(now - sent_ns)


def _is_fallback(reply: bytes) -> bool:
    from attribid.v1 import attribution_pb2 as pb
    return pb.ScoreResponse.FromString(reply).fallback


async def _call(rpc, request: bytes, timeout: float, t0: int, rec: _Recorder) -> None:
    sent = time.perf_counter_ns()
    if rec.counts(t0):
        rec.lag_ns.append(sent - t0)
    try:
        reply = await rpc(request, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        rec.done(t0, sent, None, exc.code())
        return
    rec.done(t0, sent, reply, None)


def _channels(target: str, n: int) -> list[grpc.aio.Channel]:
    # A local subchannel pool per channel gives each its own TCP connection, so
    # SO_REUSEPORT can spread them over server processes.
    opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 8 << 20)]
    return [grpc.aio.insecure_channel(target, options=opts + [("attribid.loadtest.conn", k)])
            for k in range(n)]


async def run(target: str, method: str, requests: list[bytes], *, concurrency: int = 0,
              rate: float = 0.0, duration: float = 5.0, warmup: float = 1.0,
              timeout: float = 1.0, connections: int = 4, parse_fallback: bool = False,
              seed: int = 0, watch_pid: int = 0) -> Result:
    """Drive ``target`` closed-loop (``concurrency`` > 0) or open-loop (``rate`` > 0).

    >>> # asyncio.run(run("127.0.0.1:50051", SCORE_METHOD, reqs, concurrency=8))
    """
    if (concurrency > 0) == (rate > 0):
        raise ValueError("give exactly one of concurrency > 0 or rate > 0")
    channels = _channels(target, connections)
    for ch in channels:
        await asyncio.wait_for(ch.channel_ready(), timeout=10.0)
    rpcs = [ch.unary_unary(method) for ch in channels]
    start = time.perf_counter_ns() + int(warmup * 1e9)
    end = start + int(duration * 1e9)
    rec = _Recorder(start, end, parse_fallback)
    sampler = asyncio.ensure_future(_cpu_in_window(start, end, watch_pid))
    if concurrency > 0:
        await _closed(rpcs, requests, concurrency, end, timeout, rec)
    else:
        await _open(rpcs, requests, rate, end, timeout, rec, seed)
    for ch in channels:
        await ch.close()
    res = _summary("closed" if concurrency else "open", concurrency or rate, duration, rec)
    res.client_cpu, res.server_cpu = await sampler
    return res


async def _cpu_in_window(start_ns: int, end_ns: int, watch_pid: int) -> tuple[float, float]:
    """Cores busy in the measured window: this process, and ``watch_pid``'s process tree."""
    from loadtest.procs import tree_cpu_seconds

    def sample() -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return own.ru_utime + own.ru_stime, tree_cpu_seconds(watch_pid) if watch_pid else 0.0

    await asyncio.sleep(max(start_ns - time.perf_counter_ns(), 0) / 1e9)
    t0, (c0, s0) = time.perf_counter_ns(), sample()
    await asyncio.sleep(max(end_ns - time.perf_counter_ns(), 0) / 1e9)
    t1, (c1, s1) = time.perf_counter_ns(), sample()
    span = (t1 - t0) / 1e9
    return (c1 - c0) / span, ((s1 - s0) / span if watch_pid else float("nan"))


async def _closed(rpcs, requests, concurrency, end_ns, timeout, rec) -> None:
    async def worker(k: int) -> None:
        rpc = rpcs[k % len(rpcs)]
        i = k
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= end_ns:
                return
            await _call(rpc, requests[i % len(requests)], timeout, t0, rec)
            i += concurrency

    await asyncio.gather(*(worker(k) for k in range(concurrency)))


async def _open(rpcs, requests, rate, end_ns, timeout, rec, seed) -> None:
    rng = np.random.default_rng(seed)
    now = time.perf_counter_ns()
    n = int((end_ns - now) / 1e9 * rate * 1.2) + 16
    arrivals = now + np.cumsum(rng.exponential(1e9 / rate, n)).astype(np.int64)
    arrivals = arrivals[arrivals < end_ns].tolist()
    tasks: set[asyncio.Task] = set()
    i = 0
    while i < len(arrivals):
        now = time.perf_counter_ns()
        # Launch every arrival that is due; sleep until the next one otherwise.
        while i < len(arrivals) and arrivals[i] <= now:
            if len(tasks) >= MAX_IN_FLIGHT:
                rec.dropped += int(rec.counts(arrivals[i]))
            else:
                task = asyncio.ensure_future(
                    _call(rpcs[i % len(rpcs)], requests[i % len(requests)], timeout, arrivals[i], rec))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        if i < len(arrivals):
            await asyncio.sleep(max(arrivals[i] - time.perf_counter_ns(), 0) / 1e9)
    if tasks:
        await asyncio.gather(*list(tasks))


def _summary(mode: str, level: float, duration: float, rec: _Recorder) -> Result:
    res = Result(mode=mode, level=float(level), duration_s=duration, sent=rec.sent,
                 ok=len(rec.lat_ns), fallback=rec.fallback, dropped=rec.dropped,
                 errors=dict(rec.errors))
    res.throughput = res.ok / duration
    if res.ok:
        lat = np.frombuffer(rec.lat_ns, dtype=np.int64) / 1e6
        res.p50, res.p90, res.p99, res.p999 = (float(v) for v in
                                               np.percentile(lat, [50, 90, 99, 99.9]))
        res.max, res.mean = float(lat.max()), float(lat.mean())
    if mode == "open" and rec.lag_ns:
        res.send_lag_p99 = float(np.percentile(np.frombuffer(rec.lag_ns, dtype=np.int64), 99)) / 1e6
    if rec.admitted_ns:
        res.admitted = len(rec.admitted_ns)
        res.p99_admitted = float(
            np.percentile(np.frombuffer(rec.admitted_ns, dtype=np.int64), 99)) / 1e6
        res.p99_admitted_from_send = float(
            np.percentile(np.frombuffer(rec.admitted_send_ns, dtype=np.int64), 99)) / 1e6
    if mode == "open" and rec.from_send_ns:
        res.p99_from_send = float(
            np.percentile(np.frombuffer(rec.from_send_ns, dtype=np.int64), 99)) / 1e6
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port (loopback only)")
    parser.add_argument("--requests", required=True, type=Path,
                        help="file of serialized requests (write_requests)")
    parser.add_argument("--method", default=SCORE_METHOD)
    parser.add_argument("--closed", type=int, default=0, help="closed loop: calls in flight")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: Poisson arrivals/s")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--timeout", type=float, default=1.0, help="per-call deadline, seconds")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--watch-pid", type=int, default=0,
                        help="report the CPU use of this process tree (the server) too")
    parser.add_argument("--parse-fallback", action="store_true",
                        help="decode ScoreResponse and count fallback answers")
    args = parser.parse_args(argv)
    host = args.target.rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        parser.error(f"--target: loopback addresses only, got {host!r}")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(
            args.target, args.method, read_requests(args.requests), concurrency=args.closed,
            rate=args.rate, duration=args.duration, warmup=args.warmup, timeout=args.timeout,
            connections=args.connections, parse_fallback=args.parse_fallback,
            watch_pid=args.watch_pid))
    sys.stdout.write(orjson.dumps(asdict(result), option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
