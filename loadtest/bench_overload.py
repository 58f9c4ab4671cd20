"""Bursts and twice saturation against ``--max-pending``: what gRPC's own pending bound trades.

    .venv/bin/python -m loadtest.bench_overload                 # about 3 minutes; runs/bench_overload/
    .venv/bin/python -m loadtest.bench_overload --out docs      # also its section of docs/performance.md

For each ``--max-pending`` value in ``--pending`` one ``attribid serve --spin-idle
--max-pending N`` runs pinned to ``--server-cores``; this process, pinned to
``--client-cores``, measures on it:

- bursts: ``--burst`` Score calls sent at once on one connection with 1 s deadlines (what a
  platform client does when its own traffic spikes), ``--bursts`` times: how many were answered
  and how the others ended;
- closed loop at 32 calls in flight over 4 connections (saturation): answers a second and
  calls refused;
- open loop at twice that saturation (Poisson arrivals, 50 ms deadlines): answers from the
  network (not the fallback) a second, their p99 from the scheduled arrival, and how the
  other calls ended.

gRPC refuses calls past the bound before the server's code sees them, which is the only
refusal cheap enough at twice saturation, and its callers see CANCELLED; without a bound the
calls wait inside gRPC until their deadline is nearly gone. Loopback only; every server is
stopped by the ``with`` block that started it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import uvloop

from loadtest.bench import measure
from loadtest.bench_state import measure_and_write
from loadtest.driver import SCORE_METHOD, read_requests, write_requests
from loadtest.journeys import generate, score_requests
from loadtest.procs import pin_self
from loadtest.targets import attribid_server

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench_overload"
BEGIN = f"<!-- loadtest.{NAME}: begin -->"
END = f"<!-- loadtest.{NAME}: end -->"
OPEN_DEADLINE_S = 0.05


async def _burst(address: str, requests: list[bytes], n: int) -> dict[str, int]:
    """``n`` Score calls at once on one connection, 1 s deadlines: how each ended."""
    channel = grpc.aio.insecure_channel(address)
    await asyncio.wait_for(channel.channel_ready(), timeout=10.0)
    rpc = channel.unary_unary(SCORE_METHOD)
    ends: dict[str, int] = {}

    async def one(i: int) -> None:
        try:
            await rpc(requests[i % len(requests)], timeout=1.0)
            end = "OK"
        except grpc.aio.AioRpcError as exc:
            end = exc.code().name
        ends[end] = ends.get(end, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))
    await channel.close()
    return ends


def _one_bound(bound: int, args: argparse.Namespace, requests: Path) -> dict[str, Any]:
    flags = ("--spin-idle", "--max-pending", str(bound))
    row: dict[str, Any] = {"max_pending": bound, "bursts": []}
    msgs = read_requests(requests)
    with attribid_server(args.server_cores, args.logs, extra=flags) as srv:
        for _ in range(args.bursts):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                row["bursts"].append(runner.run(_burst(srv.address, msgs, args.burst)))
        sat = measure(srv, requests, args.client_cores, closed=32, duration=args.seconds,
                      warmup=1.0)
        row["saturation"] = {k: sat[k] for k in ("throughput", "errors", "p99")}
        rate = 2.0 * sat["throughput"]
        over = measure(srv, requests, args.client_cores, rate=rate, duration=args.seconds,
                       warmup=1.0, timeout=OPEN_DEADLINE_S, parse_fallback=True)
        row["twice"] = {"rate": rate, **{k: over[k] for k in (
            "sent", "ok", "fallback", "admitted", "errors", "p99_admitted")}}
    answered = [b.get("OK", 0) for b in row["bursts"]]
    print(f"  --max-pending {bound}: bursts answered {answered} of {args.burst}; saturation "
          f"{sat['throughput']:.0f}/s, errors {sat['errors']}; at 2x "
          f"{over['admitted'] / args.seconds:.0f}/s from the network, errors {over['errors']}",
          flush=True)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    pin_self(args.client_cores)
    out = Path(args.logs).parent
    out.mkdir(parents=True, exist_ok=True)
    journeys = generate(512, seed=args.seed, length=32)
    write_requests(out / "score.bin",
                   [r.SerializeToString() for r in score_requests(journeys, seed=args.seed)])
    rows = [_one_bound(b, args, out / "score.bin") for b in args.pending]
    return {"command": args.command, "rows": rows, "meta": {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(), "load": os.getloadavg()[0],
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "burst": args.burst, "bursts": args.bursts, "seconds": args.seconds,
        "server_cores": args.server_cores, "client_cores": args.client_cores}}


def _ends(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"


def tables(res: dict[str, Any]) -> list[str]:
    m = res["meta"]
    lines = [f"| `--max-pending` | bursts of {m['burst']}: answered | saturation answers/s "
             "(32 in flight) | refused at saturation | at 2x: answers/s from the network | "
             "at 2x: their p99 ms | at 2x: other ends |", "|---:|---|---:|---|---:|---:|---|"]
    for r in res["rows"]:
        answered = ", ".join(str(b.get("OK", 0)) for b in r["bursts"])
        t = r["twice"]
        other = dict(t["errors"])
        if t["fallback"]:
            other["fallback"] = t["fallback"]
        lines.append(
            f"| {r['max_pending'] or '0 (gRPC default)'} | {answered} | "
            f"{r['saturation']['throughput']:,.0f} | {_ends(r['saturation']['errors'])} | "
            f"{t['admitted'] / m['seconds']:,.0f} | {t['p99_admitted']:.1f} | {_ends(other)} |")
    return lines


def section(res: dict[str, Any]) -> str:
    m = res["meta"]
    return "\n".join([
        BEGIN, "## Bursts and twice saturation against `--max-pending`", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m['machine']}, Python {m['python']}, load average {m['load']:.1f} at the "
        f"start, {m['when']}; server on core(s) {m['server_cores']}, load generator on "
        f"{m['client_cores']}. Bursts: {m['burst']} Score calls at once on one connection, "
        f"1 s deadlines, {m['bursts']} times. Saturation: closed loop, 32 in flight, "
        f"{m['seconds']:.0f} s. Twice saturation: open loop at 2x that rate, 50 ms deadlines, "
        f"{m['seconds']:.0f} s; \"other ends\" counts the calls of that window that got no "
        "network answer. gRPC's refusals past the bound reach callers as CANCELLED.", "",
        *tables(res), END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=lambda s: [int(x) for x in s.split(",")],
                        default=[16, 32, 128, 0], help="--max-pending values, comma-separated")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / NAME),
                        help="results folder; 'docs' also rewrites its section of --docs")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild the tables from the saved results.json")
    return measure_and_write(parser.parse_args(argv), NAME, argv, run, tables, section,
                             BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
