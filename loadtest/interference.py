"""Score latency beside heavy neighbours: the largest allowed reports, and unread streams.

    .venv/bin/python -m loadtest.interference               # about 2 minutes
    .venv/bin/python -m loadtest.interference --write-docs  # also its section of docs/performance.md

One ``attribid serve`` (default flags) in a child process on 127.0.0.1. Score runs at a fixed
rate (open loop, Poisson arrivals, 32-touchpoint journeys) with a deadline, in three
conditions taken in turn, round after round:

- alone;
- beside a trickle of ReportOutcomes, each of ``max_report_rows`` rows (the largest report the
  server accepts), a few a second;
- beside ScoreStreams that send and never read their answers (opened when the condition
  starts, so their first burst is measured too, and cancelled when it ends).

The neighbours run in a process of their own (``--neighbour KIND``), so the load generator's
own loop is not slowed by them. Latency is measured from each call's scheduled arrival; a
call that misses its deadline counts as the deadline. It prints p50 and p99 per condition, each p99's ratio to the p99
alone, and what the neighbours did. Every figure is pooled over the rounds.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import grpc
import numpy as np
import orjson
import uvloop

from loadtest import journeys, procs
from loadtest.targets import wait_serving

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/attribid.v1.Attribution/"
CONDITIONS = ("alone", "reports", "streams")
#: the section this script writes in docs/performance.md, between these two lines
BEGIN = "<!-- loadtest.interference: begin -->"
END = "<!-- loadtest.interference: end -->"


@dataclass
class Condition:
    """What one condition measured, pooled over rounds."""

    name: str
    latency_us: array = field(default_factory=lambda: array("q"))
    calls: int = 0
    missed: int = 0
    fallback: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: reports sent and answered OK, and their latency
    reports: int = 0
    reports_ok: int = 0
    report_us: array = field(default_factory=lambda: array("q"))
    #: messages the unread streams got written before the server stopped reading them
    stream_messages: int = 0

    def percentile(self, q: float) -> float:
        """The q-th percentile of Score latency in ms (nearest rank: an observed latency)."""
        us = np.sort(np.frombuffer(self.latency_us, dtype=np.int64))
        if us.size == 0:
            return float("nan")
        return float(us[max(int(np.ceil(q / 100.0 * us.size)) - 1, 0)]) / 1000.0


def score_requests(n: int = 512, seed: int = 7) -> list[bytes]:
    return [r.SerializeToString()
            for r in journeys.score_requests(journeys.generate(n, seed=seed, length=32))]


def report_requests(rows: int, count: int, seed: int = 11) -> list[bytes]:
    """``count`` ReportOutcomes of ``rows`` rows each for the default campaign, distinct batch ids."""
    from attribid.v1 import attribution_pb2 as pb

    rng = np.random.default_rng(seed)
    names = journeys.DEFAULT_CHANNELS
    spend = rng.gamma(2.0, 0.5, rows)
    conversions = rng.poisson(spend / 40.0).astype(float)
    base = pb.ReportOutcomesRequest(outcomes=[
        pb.ChannelOutcome(channel=names[i % len(names)], spend=float(spend[i]),
                          conversions=float(conversions[i]),
                          revenue=float(conversions[i] * 80.0), impressions=float(spend[i] * 300))
        for i in range(rows)])
    out = []
    for k in range(count):
        base.batch_id = f"interference-{seed}-{k}"
        out.append(base.SerializeToString())
    return out


async def _score(rpc, data: bytes, deadline_s: float, scheduled: int, cond: Condition) -> None:
    from attribid.v1 import attribution_pb2 as pb

    try:
        reply = await rpc(data, timeout=deadline_s)
    except grpc.aio.AioRpcError as exc:
        cond.calls += 1
        if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            cond.missed += 1
            cond.latency_us.append(int(deadline_s * 1e6))
        else:
            cond.errors[exc.code().name] = cond.errors.get(exc.code().name, 0) + 1
        return
    cond.calls += 1
    cond.latency_us.append((time.perf_counter_ns() - scheduled) // 1000)
    if pb.ScoreResponse.FromString(reply).fallback:
        cond.fallback += 1


async def score_load(rpcs, requests: list[bytes], rate: float, seconds: float,
                     deadline_s: float, cond: Condition, seed: int) -> None:
    """Open loop: Poisson arrivals at ``rate`` a second for ``seconds``."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter_ns()
    gaps = rng.exponential(1e9 / rate, int(rate * seconds * 1.3) + 16)
    arrivals = (start + np.cumsum(gaps)).astype(np.int64)
    arrivals = arrivals[arrivals < start + int(seconds * 1e9)].tolist()
    tasks = []
    for i, at in enumerate(arrivals):
        delay = (at - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(
            _score(rpcs[i % len(rpcs)], requests[i % len(requests)], deadline_s, at, cond)))
    await asyncio.gather(*tasks)


async def report_trickle(rpc, reports: list[bytes], per_s: float, stop: asyncio.Event,
                         cond: Condition, next_report: list[int]) -> None:
    async def one(data: bytes) -> None:
        sent = time.perf_counter_ns()
        try:
            await rpc(data, timeout=30)
        except grpc.aio.AioRpcError:
            return
        cond.reports_ok += 1
        cond.report_us.append((time.perf_counter_ns() - sent) // 1000)

    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.ensure_future(one(reports[next_report[0] % len(reports)])))
        next_report[0] += 1
        cond.reports += 1
        try:
            await asyncio.wait_for(stop.wait(), 1.0 / per_s)
        except asyncio.TimeoutError:
            pass
    await asyncio.gather(*tasks)


async def unread_streams(channels, n: int, data: bytes, stop: asyncio.Event,
                         cond: Condition) -> None:
    """``n`` ScoreStreams that write ``data`` as fast as they may and never read."""
    calls = [channels[k % len(channels)].stream_stream(
        SERVICE + "ScoreStream", request_serializer=None, response_deserializer=None)()
        for k in range(n)]

    async def flood(call) -> None:
        while True:
            await call.write(data)
            cond.stream_messages += 1

    floods = [asyncio.ensure_future(flood(c)) for c in calls]
    await stop.wait()
    for task in floods:
        task.cancel()
    for call in calls:
        call.cancel()
    await asyncio.gather(*floods, return_exceptions=True)


async def neighbour(kind: str, address: str, args: argparse.Namespace) -> dict[str, object]:
    """Run one condition's neighbours until stdin closes; what they did."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    cond = Condition(kind)
    if kind == "reports":
        reports = report_requests(args.report_rows, int(args.reports_per_s * args.seconds * 2) + 8,
                                  seed=args.seed)
        channels = [grpc.aio.insecure_channel(address, options=[
            ("grpc.max_send_message_length", 8 << 20)])]
        work = report_trickle(channels[0].unary_unary(SERVICE + "ReportOutcomes"), reports,
                              args.reports_per_s, stop, cond, [0])
    else:
        channels = [grpc.aio.insecure_channel(address, options=[("attribid.conn", k)])
                    for k in range(4)]
        work = unread_streams(channels, args.streams, score_requests(1)[0], stop, cond)
    for ch in channels:
        await asyncio.wait_for(ch.channel_ready(), 30)

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print("ready", flush=True)
    await work
    for ch in channels:
        await ch.close()
    report_ms = np.sort(np.frombuffer(cond.report_us, dtype=np.int64)) / 1000.0
    return {"reports": cond.reports, "reports_ok": cond.reports_ok,
            "report_p50_ms": float(report_ms[len(report_ms) // 2]) if len(report_ms) else None,
            "stream_messages": cond.stream_messages}


def start_neighbour(kind: str, address: str, args: argparse.Namespace,
                    seed: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "loadtest.interference", "--neighbour", kind,
           "--address", address, "--report-rows", str(args.report_rows),
           "--reports-per-s", str(args.reports_per_s), "--streams", str(args.streams),
           "--seconds", str(args.seconds), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"neighbour {kind} did not start")
    return proc


def stop_neighbour(proc: subprocess.Popen[bytes], cond: Condition) -> None:
    out, _ = proc.communicate(timeout=60)  # closes its stdin: it stops and reports
    done = orjson.loads(out.strip().splitlines()[-1])
    cond.reports += done["reports"]
    cond.reports_ok += done["reports_ok"]
    if done["report_p50_ms"] is not None:
        cond.report_us.append(int(done["report_p50_ms"] * 1000))
    cond.stream_messages += done["stream_messages"]


async def measure(address: str, args: argparse.Namespace) -> dict[str, Condition]:
    results = {name: Condition(name) for name in CONDITIONS}
    requests = score_requests()
    score_channels = [grpc.aio.insecure_channel(address, options=[("attribid.conn", k)])
                      for k in range(2)]
    for ch in score_channels:
        await asyncio.wait_for(ch.channel_ready(), 30)
    rpcs = [ch.unary_unary(SERVICE + "Score") for ch in score_channels]
    # warm the connections and the server's paths
    await score_load(rpcs, requests, args.rate, 1.0, args.deadline_ms / 1000, Condition("warm"), 0)
    loop = asyncio.get_running_loop()
    for r in range(args.rounds):
        for name in CONDITIONS:
            cond = results[name]
            side = None
            if name != "alone":
                side = await loop.run_in_executor(None, start_neighbour, name, address, args,
                                                  100 * r + 1)
            await score_load(rpcs, requests, args.rate, args.seconds, args.deadline_ms / 1000,
                             cond, seed=100 * r + CONDITIONS.index(name))
            if side is not None:
                await loop.run_in_executor(None, stop_neighbour, side, cond)
            await asyncio.sleep(args.pause)  # what a condition left behind settles
            print(f"round {r + 1}/{args.rounds} {name}: p99 {cond.percentile(99):.2f} ms so far",
                  file=sys.stderr, flush=True)
    for ch in score_channels:
        await ch.close()
    return results


def table(results: dict[str, Condition], args: argparse.Namespace) -> list[str]:
    alone = results["alone"].percentile(99)
    lines = ["| condition | Score calls | p50 ms | p99 ms | p99 / p99 alone | missed deadline "
             "| fallback | beside it |", "|---|---|---|---|---|---|---|---|"]
    for name in CONDITIONS:
        c = results[name]
        beside = "nothing"
        if name == "reports":
            rp = np.sort(np.frombuffer(c.report_us, dtype=np.int64)) / 1000.0
            p50 = f"{rp[len(rp) // 2]:.1f}" if len(rp) else "n/a"
            beside = (f"{c.reports} reports of {args.report_rows} rows "
                      f"({args.reports_per_s:g}/s), {c.reports_ok} OK, each in {p50} ms (median "
                      "of the rounds' medians)")
        elif name == "streams":
            beside = (f"{args.streams} ScoreStreams sending, never reading: "
                      f"{c.stream_messages} messages written in all")
        errors = "".join(f", {n} {code}" for code, n in sorted(c.errors.items()))
        lines.append(f"| {name} | {c.calls} | {c.percentile(50):.2f} | {c.percentile(99):.2f} | "
                     f"{c.percentile(99) / alone:.2f} | {c.missed} ({100 * c.missed / max(c.calls, 1):.1f} %) "
                     f"| {c.fallback}{errors} | {beside} |")
    return lines


def section(lines: list[str], args: argparse.Namespace, started: str,
            loads: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    command = "python -m loadtest.interference" + (f" --nice {args.nice}" if args.nice else "") + (
        " --write-docs" if args.write_docs else "")
    return "\n".join([
        BEGIN,
        "## Score beside the largest reports and unread streams",
        "",
        f"Measured by `{command}` (from the repository root, with `.venv/bin/python`), not by "
        "`loadtest.bench`; rerun it alone to refresh this section. One `attribid serve` with "
        "default flags in a child process, unpinned, on the same 2 cores as the load generator. "
        f"Score at {args.rate:g} calls/s (open loop, Poisson arrivals, 32-touchpoint journeys, "
        f"{args.deadline_ms:g} ms deadline; latency from each call's scheduled arrival, a call "
        f"that missed its deadline counted as the deadline), {args.seconds:g} s per condition, "
        f"the three conditions in turn over {args.rounds} rounds, pooled. The reports go to the "
        f"default campaign, {args.report_rows} rows each: `max_report_rows`, the largest report "
        "the server accepts. The streams open when their condition starts (their first burst "
        "is measured) and are cancelled when it ends.",
        "",
        f"Run {started} on {os.cpu_count()} cores, Python {sys.version.split()[0]}, every "
        f"process of the run at niceness {os.nice(0)}. Load "
        f"average before/after: {', '.join(f'{x:.2f}' for x in loads[0])} / "
        f"{', '.join(f'{x:.2f}' for x in loads[1])} (other work on the machine shows up here).",
        "",
        *lines,
        "",
        "Reports are converted (one pass into NumPy columns), validated and applied in the "
        "server's campaign-writes thread, off the event loop, and a full garbage collection "
        "no longer scans what start-up built (`gc.freeze()`). A stream whose answers are not "
        "taken stops being read once its window of answers waits to be written "
        "(`attribid.api.servicer.STREAM_WINDOW`); grpcio clients grow their receive windows "
        "even when nobody reads, so such streams keep asking for work, and stream messages are "
        "let in at a rate that follows the event loop's lag and never more than two batches at "
        "once over all streams (`attribid.api.streams`).",
        END,
    ])


def write_docs(path: Path, text: str) -> None:
    """Put ``text`` in place of this script's section of ``path`` (appended the first time)."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="Score calls a second")
    parser.add_argument("--deadline-ms", type=float, default=50.0, help="Score's deadline")
    parser.add_argument("--seconds", type=float, default=8.0, help="per condition and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between conditions")
    parser.add_argument("--report-rows", type=int, default=0,
                        help="rows per report (default: the server's max_report_rows)")
    parser.add_argument("--reports-per-s", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=200, help="unread ScoreStreams")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace this script's section of docs/performance.md")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of this run and every process it starts (negative needs "
                             "root; keeps other work on the machine from disturbing the run)")
    parser.add_argument("--neighbour", choices=("reports", "streams"),
                        help=argparse.SUPPRESS)  # a condition's neighbours, in their own process
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=11, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.report_rows:
        from attribid.runtime.settings import Settings

        args.report_rows = Settings().max_report_rows
    if args.neighbour:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            done = runner.run(neighbour(args.neighbour, args.address, args))
        print(orjson.dumps(done).decode(), flush=True)
        return 0
    if args.nice:
        os.nice(args.nice)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    log = ROOT / "runs" / "interference" / "server.log"
    cmd = [sys.executable, "-m", "attribid.cli.main", "serve", "--address", "127.0.0.1:0",
           "--metrics-port", "-1"]
    with procs.started(cmd, None, log, cwd=str(ROOT)) as server:
        address = server.wait_for_address(120)
        wait_serving(address)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure(address, args))
    lines = table(results, args)
    print("\n".join(lines))
    alone, reports, streams = (results[n].percentile(99) for n in CONDITIONS)
    print(f"p99 ratio: reports {reports / alone:.2f}, streams {streams / alone:.2f} "
          f"(asked: reports <= 2)")
    if args.write_docs:
        write_docs(args.docs, section(lines, args, started, (load_before, os.getloadavg())))
        print(f"wrote its section of {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
