"""What a Score costs as a unary call and as a ScoreStream message: messages a second per core.

    .venv/bin/python -m loadtest.bench_stream                # about 1 minute; runs/bench_stream/
    .venv/bin/python -m loadtest.bench_stream --out docs     # also its section of docs/performance.md

One ``attribid serve`` (default flags) runs in a child process pinned to ``--server-cores``;
this process, pinned to ``--client-cores``, drives it closed loop with the same 32-touchpoint
requests, in rounds that alternate between the two ways (so a drift of the machine's speed
hits both alike):

- unary: ``--in-flight`` Score calls at a time over ``--connections`` connections;
- stream: ``--streams`` ScoreStreams over the same connections, each keeping
  ``--in-flight`` / ``--streams`` messages unanswered (the same number in flight).

For each round: answers a second, the server's CPU (its process tree's user + system time over
the round) and their ratio, answers a second per busy core: the figure that says what a
message costs the server. The median round of each way is reported with the ratio
stream / unary, and where an answer's CPU went: the event loop's thread (gRPC's Python and
Cython, ours) and the server's other threads (inference, gRPC's own), in microseconds per
answer. Loopback only; the server is stopped by the ``with`` block that started it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import uvloop

from loadtest.bench_state import measure_and_write
from loadtest.driver import SCORE_METHOD, _channels
from loadtest.journeys import generate, score_requests
from loadtest.procs import pin_self, tree_cpu_seconds
from loadtest.targets import Target, attribid_server

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench_stream"
BEGIN = f"<!-- loadtest.{NAME}: begin -->"
END = f"<!-- loadtest.{NAME}: end -->"
STREAM_METHOD = SCORE_METHOD.replace("/Score", "/ScoreStream")
WAYS = ("unary", "stream")


async def _unary(channels: list[grpc.aio.Channel], requests: list[bytes], in_flight: int,
                 seconds: float) -> tuple[int, int]:
    """Answers and errors of ``in_flight`` closed-loop Score callers for ``seconds``."""
    rpcs = [ch.unary_unary(SCORE_METHOD) for ch in channels]
    end = time.perf_counter() + seconds
    answered = errors = 0

    async def caller(k: int) -> None:
        nonlocal answered, errors
        rpc, i = rpcs[k % len(rpcs)], k
        while time.perf_counter() < end:
            try:
                await rpc(requests[i % len(requests)], timeout=5.0)
                answered += 1
            except grpc.aio.AioRpcError:
                errors += 1
            i += in_flight

    await asyncio.gather(*(caller(k) for k in range(in_flight)))
    return answered, errors


async def _stream(channels: list[grpc.aio.Channel], requests: list[bytes], streams: int,
                  window: int, seconds: float) -> tuple[int, int]:
    """Answers and errors of ``streams`` ScoreStreams, ``window`` messages unanswered each."""
    end = time.perf_counter() + seconds
    answered = errors = 0

    async def one(k: int) -> None:
        nonlocal answered, errors
        call = channels[k % len(channels)].stream_stream(STREAM_METHOD)(timeout=seconds + 30.0)
        room = asyncio.Semaphore(window)
        sent = 0

        async def write() -> None:
            nonlocal sent
            i = k
            while time.perf_counter() < end:
                await room.acquire()
                await call.write(requests[i % len(requests)])
                sent += 1
                i += streams
            await call.done_writing()

        writer = asyncio.ensure_future(write())
        try:
            async for _ in call:
                answered += 1
                room.release()
        except grpc.aio.AioRpcError:
            errors += 1
        await writer

    await asyncio.gather(*(one(k) for k in range(streams)))
    return answered, errors


def _round(target: Target, way: str, args: argparse.Namespace,
           requests: list[bytes]) -> dict[str, float]:
    async def go() -> tuple[int, int, float, float, float]:
        channels = _channels(target.address, args.connections)
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), timeout=10.0)
        pid = target.proc.popen.pid
        cpu0, loop0, t0 = tree_cpu_seconds(pid), _loop_cpu_seconds(pid), time.perf_counter()
        if way == "unary":
            ok, bad = await _unary(channels, requests, args.in_flight, args.seconds)
        else:
            ok, bad = await _stream(channels, requests, args.streams,
                                    max(1, args.in_flight // args.streams), args.seconds)
        cpu1, loop1, t1 = tree_cpu_seconds(pid), _loop_cpu_seconds(pid), time.perf_counter()
        for ch in channels:
            await ch.close()
        return ok, bad, cpu1 - cpu0, loop1 - loop0, t1 - t0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ok, bad, cpu, loop_cpu, wall = runner.run(go())
    per_s = ok / wall
    return {"answers_per_s": per_s, "errors": bad, "server_cores": cpu / wall,
            "per_core": per_s / (cpu / wall) if cpu > 0 else float("nan"),
            "loop_us": 1e6 * loop_cpu / ok if ok else float("nan"),
            "other_us": 1e6 * (cpu - loop_cpu) / ok if ok else float("nan")}


def _loop_cpu_seconds(pid: int) -> float:
    """User + system CPU so far of the server's event loop: the main thread of ``pid``
    (``attribid serve`` with one worker serves in its own process)."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> dict[str, Any]:
    pin_self(args.client_cores)
    journeys = generate(256, seed=args.seed, length=32)
    requests = [r.SerializeToString() for r in score_requests(journeys, seed=args.seed)]
    rounds: dict[str, list[dict[str, float]]] = {w: [] for w in WAYS}
    with attribid_server(args.server_cores, args.logs) as target:
        for way in WAYS:  # unmeasured: warms both paths
            _round(target, way, argparse.Namespace(**{**vars(args), "seconds": 1.0}), requests)
        for r in range(args.rounds):
            for way in (WAYS if r % 2 == 0 else WAYS[::-1]):
                rounds[way].append(_round(target, way, args, requests))
                last = rounds[way][-1]
                print(f"  round {r + 1} {way:>6}: {last['answers_per_s']:7.0f}/s on "
                      f"{last['server_cores']:.2f} cores = {last['per_core']:7.0f}/s per core "
                      f"(event loop {last['loop_us']:.0f} us, other threads "
                      f"{last['other_us']:.0f} us an answer), {last['errors']} errors", flush=True)
    medians = {w: {k: statistics.median(x[k] for x in rounds[w])
                   for k in ("answers_per_s", "server_cores", "per_core", "loop_us",
                             "other_us")} for w in WAYS}
    return {
        "command": args.command, "rounds": rounds, "median": medians,
        "ratio_per_core": medians["stream"]["per_core"] / medians["unary"]["per_core"],
        "ratio_per_s": medians["stream"]["answers_per_s"] / medians["unary"]["answers_per_s"],
        "meta": {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                 "python": platform.python_version(), "load": os.getloadavg()[0],
                 "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "in_flight": args.in_flight, "streams": args.streams,
                 "connections": args.connections, "seconds": args.seconds,
                 "rounds": args.rounds, "server_cores": args.server_cores,
                 "client_cores": args.client_cores},
    }


def tables(res: dict[str, Any]) -> list[str]:
    m = res["meta"]
    lines = ["| way | answers/s | server cores busy | answers/s per core | event loop CPU per "
             "answer | other threads' CPU per answer |", "|---|---:|---:|---:|---:|---:|"]
    for way in WAYS:
        x = res["median"][way]
        label = ("unary Score" if way == "unary" else
                 f"ScoreStream ({m['streams']} streams, {m['in_flight'] // m['streams']} "
                 "messages unanswered each)")
        # results saved before the split was measured have no loop_us
        split = (f"{x['loop_us']:.0f} us | {x['other_us']:.0f} us" if "loop_us" in x
                 else "- | -")
        lines.append(f"| {label} | {x['answers_per_s']:,.0f} | {x['server_cores']:.2f} | "
                     f"{x['per_core']:,.0f} | {split} |")
    lines += ["", f"ScoreStream / unary: {res['ratio_per_core']:.2f}x the answers per core, "
              f"{res['ratio_per_s']:.2f}x the answers a second."]
    return lines


def section(res: dict[str, Any]) -> str:
    m = res["meta"]
    return "\n".join([
        BEGIN, "## ScoreStream against unary Score: answers per core", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m['machine']}, Python {m['python']}, load average {m['load']:.1f} at the "
        f"start, {m['when']}. One `attribid serve` (default flags) pinned to core(s) "
        f"{m['server_cores']}, the load generator to {m['client_cores']}; 32-touchpoint "
        f"journeys; {m['in_flight']} Scores in flight either way over {m['connections']} "
        f"connections; {m['rounds']} rounds of {m['seconds']:.0f} s per way, alternating, "
        "medians shown. Server cores busy: the server's user + system CPU time over the round "
        "divided by its length (it can exceed 1 when the server's threads run beside each "
        "other: the spare core is the load generator's). Event loop: the CPU time of the "
        "server's main thread (gRPC's own Python and Cython, and ours) per answer; other "
        "threads: the rest (inference, gRPC's threads).", "",
        *tables(res), END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / NAME),
                        help="results folder; 'docs' also rewrites its section of --docs")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild the tables from the saved results.json")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.in_flight < args.streams:
        parser.error("--streams: at least 1 and at most --in-flight")
    return measure_and_write(args, NAME, argv, run, tables, section, BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
