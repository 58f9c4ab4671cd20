"""What ReportConversions costs the server: conversions/s and latency, and Score beside it.

    .venv/bin/python -m loadtest.bench_conversions             # ~3 min; runs/bench_conversions/
    .venv/bin/python -m loadtest.bench_conversions --out docs  # also its docs/performance.md section

For each store in turn (``memory://``; ``sqlite:///`` a file in a temporary directory, the
default kind of store) one ``attribid serve --state URL`` (default flags) runs in a child
process pinned to ``--server-cores``, with two campaigns configured on it: one credited by the
served network (``attribution: "network"``, the default) and one by ``last-click``, each with
one period of spend reported, so that every conversion lands in it. This process, pinned to
``--client-cores``, measures on it:

- Score at ``--rate`` calls a second (open loop, Poisson arrivals, 32-touchpoint journeys,
  ``--deadline-ms`` deadline, latency from each call's scheduled arrival), alone and beside a
  trickle of ``--trickle-per-s`` ReportConversions of ``TRICKLE_CONVERSIONS`` conversions
  (journeys of the Locust mix) to the network-credited campaign, the two conditions taken in
  turn, ``ROUNDS`` rounds each. The default rate is 70 % of the Score saturation measured
  first on the same server (``loadtest.bench_state.saturation``);
- then ReportConversions alone, closed loop at 1 and 4 in flight, batches of 1, 50 and 500
  conversions, journeys of the Locust mix (1-64 touchpoints, most 2-8:
  ``loadtest.journeys.draw_lengths``) and of 32 touchpoints, for each campaign in turn (the
  two attributions measured back to back): conversions a second, p50 and p99 of each call.

Every batch id is new. Results go to ``--out`` (``results.json`` and ``table.md``); ``--out
docs`` writes the section of docs/performance.md between this script's markers instead
(appended the first time). Loopback only; every process it starts is stopped by the
``with`` block that started it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import grpc
import numpy as np
import uvloop

from loadtest import bench_state, durability, interference, journeys, procs
from loadtest.bench_state import Closed, closed_loop
from loadtest.interference import Condition

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/attribid.v1.Attribution/"
STORES = ("memory", "sqlite")
ATTRIBUTIONS = ("network", "last-click")
#: journeys: "mix" = the Locust mix of 1-64 touchpoints; "32" = 32 touchpoints each
JOURNEYS = ("mix", "32")
BATCHES = (1, 50, 500)
CONCURRENCY = (1, 4)
TRICKLE_CONVERSIONS = 50
ROUNDS = 4
#: distinct conversions drawn per kind of journey; batches are slices of them
POOL = 2000
#: distinct request bodies per batch size (each sent again under new batch ids)
BODIES = 8
#: the section this script writes in docs/performance.md, between these two lines
BEGIN = "<!-- loadtest.bench_conversions: begin -->"
END = "<!-- loadtest.bench_conversions: end -->"
HOUR = 3600.0


def campaign_of(attribution: str) -> str:
    return f"bench-{attribution}"


def conversion_pool(kind: str, seed: int) -> list[Any]:
    """``POOL`` conversions with journeys of ``kind``, each converting 1 s after its last touch."""
    from attribid.v1 import attribution_pb2 as pb

    drawn = journeys.generate(POOL, seed=seed, length=None if kind == "mix" else int(kind))
    out = []
    for k, req in enumerate(journeys.score_requests(drawn, seed=seed)):
        out.append(pb.Conversion(conversion_id=f"c{seed}-{k}",
                                 timestamp_ms=req.journey[-1].timestamp_ms + 1000,
                                 value=float(20 + k % 160), journey=req.journey))
    return out


def bodies(pool: list[Any], campaign_id: str, size: int) -> list[bytes]:
    """``BODIES`` serialized ReportConversionsRequests of ``size`` conversions, no batch id."""
    from attribid.v1 import attribution_pb2 as pb

    out = []
    for b in range(BODIES):
        start = (b * size) % len(pool)
        picked = [pool[(start + i) % len(pool)] for i in range(size)]
        out.append(pb.ReportConversionsRequest(campaign_id=campaign_id,
                                               conversions=picked).SerializeToString())
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Batches:
    """Requests made from ``bodies`` in turn, each under a new batch id (field 1, prepended:
    a protobuf message may carry its fields in any order)."""

    def __init__(self, bodies: list[bytes], prefix: str) -> None:
        self.bodies, self.prefix, self.made = bodies, prefix, 0

    def __call__(self) -> bytes:
        self.made += 1
        bid = f"{self.prefix}-{self.made}".encode()
        return b"\x0a" + _varint(len(bid)) + bid + self.bodies[self.made % len(self.bodies)]

    def take(self, n: int) -> list[bytes]:
        return [self() for _ in range(n)]


def _on_reply(size: int, short: list[int]) -> Callable[[bytes, Closed], None]:
    from attribid.v1 import attribution_pb2 as pb

    def check(reply: bytes, out: Closed) -> None:
        got = pb.ReportConversionsResponse.FromString(reply)
        if got.duplicate:
            out.duplicates += 1
        elif got.accepted != size:
            short[0] += 1
    return check


async def unary(channel: grpc.aio.Channel, method: str, request: Any, reply_type: Any) -> Any:
    rpc = channel.unary_unary(SERVICE + method, request_serializer=type(request).SerializeToString,
                              response_deserializer=reply_type.FromString)
    return await rpc(request, timeout=30)


async def set_up(channel: grpc.aio.Channel, now: float) -> None:
    """A campaign per attribution over the default channels, each with one period of spend
    ending now (after every journey drawn), so each conversion lands in a period."""
    from attribid.v1 import attribution_pb2 as pb

    for attribution in ATTRIBUTIONS:
        cid = campaign_of(attribution)
        alloc = await unary(channel, "ConfigureCampaign", pb.ConfigureCampaignRequest(
            campaign_id=cid, budget=10_000.0, flight_start_ms=int((now - 10 * HOUR) * 1000),
            flight_end_ms=int((now + 14 * HOUR) * 1000), attribution=attribution,
            channels=[pb.ChannelConstraint(name=n) for n in journeys.DEFAULT_CHANNELS]),
            pb.Allocation)
        assert alloc.attribution == attribution, (alloc.attribution, attribution)
        await unary(channel, "ReportOutcomes", pb.ReportOutcomesRequest(
            batch_id=f"spend-{cid}", campaign_id=cid, outcomes=[
                pb.ChannelOutcome(channel=n, spend=100.0, impressions=30_000.0)
                for n in journeys.DEFAULT_CHANNELS]), pb.ReportOutcomesResponse)


async def score_beside(address: str, args: argparse.Namespace, rate: float, trickle: Batches,
                       seed: int) -> dict[str, Any]:
    """Score alone and beside the trickle, ``ROUNDS`` rounds of each in turn."""
    requests = interference.score_requests()
    score_chans = await bench_state.channels(address, 2)
    report_chan = (await bench_state.channels(address, 1))[0]
    score_rpcs = [ch.unary_unary(SERVICE + "Score") for ch in score_chans]
    report_rpc = report_chan.unary_unary(SERVICE + "ReportConversions")
    deadline_s = args.deadline_ms / 1000.0
    per_round = args.score_seconds / ROUNDS
    await interference.score_load(score_rpcs, requests, rate, min(1.0, per_round), deadline_s,
                                  Condition("warm"), seed=0)
    alone, beside = Condition("alone"), Condition("trickle")
    sent = [0]
    batches = trickle.take(int(args.trickle_per_s * args.score_seconds * 1.5) + 16)
    for r in range(ROUNDS):
        await interference.score_load(score_rpcs, requests, rate, per_round, deadline_s, alone,
                                      seed=seed + 2 * r)
        stop = asyncio.Event()
        side = asyncio.ensure_future(interference.report_trickle(
            report_rpc, batches, args.trickle_per_s, stop, beside, sent))
        await interference.score_load(score_rpcs, requests, rate, per_round, deadline_s, beside,
                                      seed=seed + 2 * r + 1)
        stop.set()
        await side
    for ch in (*score_chans, report_chan):
        await ch.close()
    out: dict[str, Any] = {"rate": rate}
    for cond in (alone, beside):
        out[cond.name] = {"calls": cond.calls, "p50_ms": cond.percentile(50),
                          "p99_ms": cond.percentile(99), "missed": cond.missed,
                          "fallback": cond.fallback, "errors": cond.errors}
    report_ms = np.sort(np.frombuffer(beside.report_us, dtype=np.int64)) / 1000.0
    out["trickle"].update({
        "batches": beside.reports, "batches_ok": beside.reports_ok,
        "conversions_per_batch": TRICKLE_CONVERSIONS, "per_s": args.trickle_per_s,
        "batch_p50_ms": float(report_ms[len(report_ms) // 2]) if len(report_ms) else None,
        "batch_p99_ms": (float(report_ms[max(int(np.ceil(0.99 * len(report_ms))) - 1, 0)])
                         if len(report_ms) else None)})
    a, b = out["alone"]["p99_ms"], out["trickle"]["p99_ms"]
    out["p99_ratio"] = b / a if a and a == a and b == b else None
    return out


async def measure(server: procs.Proc, args: argparse.Namespace, rate: float,
                  pools: dict[str, list[Any]], store: str, seed: int) -> dict[str, Any]:
    """Score with and without the trickle, then ReportConversions closed loop, on one server."""
    address = server.address
    chan = grpc.aio.insecure_channel(address, options=[
        ("grpc.max_send_message_length", 8 << 20)])
    await asyncio.wait_for(chan.channel_ready(), 30)
    await set_up(chan, args.now)
    net = campaign_of("network")
    rpc = chan.unary_unary(SERVICE + "ReportConversions")
    made = {(kind, size, a): bodies(pools[kind], campaign_of(a), size)
            for kind in JOURNEYS for size in BATCHES for a in ATTRIBUTIONS}
    # warm each path (the network's forward pass at every batch size) before measuring anything
    for a in ATTRIBUTIONS:
        for size in BATCHES:
            short = [0]
            await closed_loop(rpc, Batches(made[("mix", size, a)], f"{store}-warm-{a}-{size}"),
                              1, min(0.3, args.seconds), "warm", _on_reply(size, short))
    trickle = Batches(bodies(pools["mix"], net, TRICKLE_CONVERSIONS), f"{store}-trickle")
    result: dict[str, Any] = {"score": await score_beside(address, args, rate, trickle, seed)}
    s = result["score"]
    print(f"  Score at {rate:.0f}/s: p99 {s['alone']['p99_ms']:.2f} ms alone, "
          f"{s['trickle']['p99_ms']:.2f} ms beside {args.trickle_per_s:g} ReportConversions/s "
          f"of {TRICKLE_CONVERSIONS} ({s['trickle']['batches_ok']}/{s['trickle']['batches']} "
          "OK)", file=sys.stderr, flush=True)
    runs: dict[str, Any] = {}
    for kind in JOURNEYS:
        for size in BATCHES:
            for c in CONCURRENCY:
                for a in ATTRIBUTIONS:
                    name = f"{a}/{kind}/b{size}/c{c}"
                    short = [0]
                    cpu = server.cpu_seconds()
                    done = await closed_loop(rpc, Batches(made[(kind, size, a)],
                                                          f"{store}-{name}"),
                                             c, args.seconds, name, _on_reply(size, short))
                    cpu = server.cpu_seconds() - cpu
                    cond = done.condition
                    counted = size * cond.calls
                    runs[name] = {
                        "attribution": a, "journeys": kind, "batch": size, "in_flight": c,
                        "calls": cond.calls, "conversions_per_s": size * done.per_s(),
                        "p50_ms": cond.percentile(50), "p99_ms": cond.percentile(99),
                        "duplicates": done.duplicates, "short": short[0],
                        "errors": cond.errors, "seconds": done.seconds,
                        "server_cpu_s": cpu,
                        "server_cpu_us_per_conversion": 1e6 * cpu / counted if counted else None,
                        "request_bytes": len(made[(kind, size, a)][0])}
                    print(f"  {name}: {size * done.per_s():.0f} conversions/s, "
                          f"p50 {cond.percentile(50):.2f} ms, p99 {cond.percentile(99):.2f} ms "
                          f"({cond.calls} calls)"
                          + (f", errors {cond.errors}" if cond.errors else ""),
                          file=sys.stderr, flush=True)
    result["conversions"] = runs
    await chan.close()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    procs.pin_self(args.client_cores)
    meta: dict[str, Any] = {
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(), "cpu": bench_state.cpu_model(),
        "python": platform.python_version(), "server_cores": args.server_cores,
        "client_cores": args.client_cores, "seconds": args.seconds,
        "score_seconds": args.score_seconds, "deadline_ms": args.deadline_ms,
        "trickle_per_s": args.trickle_per_s, "load_before": os.getloadavg(),
        "command": args.command, "niceness": os.nice(0)}
    pools = {kind: conversion_pool(kind, seed=100 + k) for k, kind in enumerate(JOURNEYS)}
    meta["mean_touchpoints"] = {kind: float(np.mean([len(c.journey) for c in pool]))
                                for kind, pool in pools.items()}
    args.now = time.time()  # after every journey drawn: the spend period ends here
    stores: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="attribid-bench-conversions-") as tmp:
        for k, kind in enumerate(STORES):
            with bench_state.store_url(kind, Path(tmp), args.server_cores) as url:
                print(f"{kind}: starting attribid serve --state {url}", file=sys.stderr, flush=True)
                log = args.logs / f"server-{kind}.log"
                with durability.serving(url, log, cores=args.server_cores) as server:
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        rate, sat = args.rate, None
                        if not rate:  # each server's own: a store may slow Score down
                            sat = runner.run(bench_state.saturation(server.address,
                                                                    min(3.0, args.score_seconds)))
                            rate = max(0.7 * sat, 1.0)
                            print(f"  Score saturation on {kind}: {sat:.0f}/s; measuring at "
                                  f"{rate:.0f}/s", file=sys.stderr, flush=True)
                        stores[kind] = runner.run(measure(server, args, rate, pools, kind,
                                                          seed=10 * (k + 1)))
                        stores[kind]["score"]["saturation_per_s"] = sat
                    # None while it runs: an exit code here means it died under the load
                    stores[kind]["server_exit"] = server.popen.poll()
                stores[kind]["url"] = url if kind != "sqlite" else "sqlite:///(tmp)/state.sqlite"
                stores[kind]["refusals"] = bench_state.refusals(log)
    meta["rate"] = args.rate or None
    meta["load_after"] = os.getloadavg()
    return {"meta": meta, "stores": stores}


def _ms(x: float) -> str:
    return f"{x:.2f}" if x == x else "n/a"


def _errors(*runs: dict[str, Any]) -> str:
    errors: dict[str, int] = {}
    for r in runs:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
        for what in ("duplicates", "short"):
            if r.get(what):
                errors[what] = errors.get(what, 0) + r[what]
    return ", ".join(f"{n} {c}" for c, n in errors.items()) or "none"


def tables(results: dict[str, Any]) -> list[str]:
    stores, meta = results["stores"], results["meta"]
    mean = meta.get("mean_touchpoints", {})
    label = {"mix": f"1-64 (mix, mean {mean.get('mix', float('nan')):.1f})", "32": "32"}
    lines = ["| store | touchpoints | batch | in flight | network: conversions/s (calls) "
             "| p50 ms | p99 ms | server CPU µs a conversion | last-click: conversions/s "
             "(calls) | p50 ms | p99 ms | server CPU µs a conversion | network's share of "
             "the CPU | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cpu(x: dict[str, Any]) -> str:
        v = x.get("server_cpu_us_per_conversion")
        return f"{v:.0f}" if v is not None else "n/a"
    for kind in STORES:
        runs = stores[kind]["conversions"]
        for j in JOURNEYS:
            for size in BATCHES:
                for c in CONCURRENCY:
                    n, r = runs[f"network/{j}/b{size}/c{c}"], runs[f"last-click/{j}/b{size}/c{c}"]
                    nc, rc = (n.get("server_cpu_us_per_conversion"),
                              r.get("server_cpu_us_per_conversion"))
                    share = f"{1 - rc / nc:.0%}" if nc and rc is not None else "n/a"
                    lines.append(
                        f"| {kind}:// | {label[j]} | {size} | {c} "
                        f"| {n['conversions_per_s']:.0f} ({n['calls']}) | {_ms(n['p50_ms'])} "
                        f"| {_ms(n['p99_ms'])} | {cpu(n)} "
                        f"| {r['conversions_per_s']:.0f} ({r['calls']}) | {_ms(r['p50_ms'])} "
                        f"| {_ms(r['p99_ms'])} | {cpu(r)} | {share} | {_errors(n, r)} |")
    lines += ["", "| store | Score saturation/s | Score calls/s | calls alone; beside "
              "| p50 ms alone "
              "| p99 ms alone | p50 ms beside | p99 ms beside | p99 beside / alone "
              "| missed deadline, fallback (alone; beside) | ReportConversions beside: sent (OK) "
              "| their p50 / p99 ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in STORES:
        s = stores[kind]["score"]
        sat = f"{s['saturation_per_s']:.0f}" if s.get("saturation_per_s") else "not measured"
        a, b, t = s["alone"], s["trickle"], s["trickle"]

        def bad(x: dict[str, Any]) -> str:
            return f"{x['missed']}, {x['fallback']}" + "".join(
                f", {n} {code}" for code, n in sorted(x["errors"].items()))
        ratio = f"{s['p99_ratio']:.2f}" if s.get("p99_ratio") else "n/a"
        lat = (f"{t['batch_p50_ms']:.1f} / {t['batch_p99_ms']:.1f}"
               if t.get("batch_p50_ms") is not None else "n/a")
        lines.append(
            f"| {kind}:// | {sat} | {s['rate']:.0f} | {a['calls']}; {b['calls']} | {_ms(a['p50_ms'])} | {_ms(a['p99_ms'])} "
            f"| {_ms(b['p50_ms'])} | {_ms(b['p99_ms'])} | {ratio} | {bad(a)}; {bad(b)} "
            f"| {t['batches']} ({t['batches_ok']}) | {lat} |")
    reasons = [f"{kind}:// {n} x `{why}`" for kind in STORES
               for why, n in stores[kind].get("refusals", {}).items()]
    if reasons:
        lines += ["", "Refused calls, as the servers logged them (at most "
                  "`--refusal-log-per-s` a second are logged): " + "; ".join(reasons) + "."]
    return lines


def section(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rate_how = (f"{meta['rate']:.0f} calls/s, given by `--rate`" if meta.get("rate") else
                "70 % of the Score saturation measured first on the same server: closed loop "
                "at concurrency 16, calls the network answered a second")
    return "\n".join([
        BEGIN,
        "## ReportConversions: what crediting conversions costs, and Score beside it",
        "",
        f"Measured by `{meta['command']}` (from the repository root, with `.venv/bin/python`), "
        "not by `loadtest.bench`; rerun it alone to refresh this section. Each store in turn "
        "behind one `attribid serve --state URL` with default flags in a child process: "
        "`memory://`, then `sqlite:///` a file in a temporary directory (the default kind of "
        "store). Two campaigns on it over the 7 default channels, one credited by the served "
        "network (`attribution: \"network\"`, the default: a forward pass per journey, 256 "
        "at a time, in the campaign-writes thread) and one by `last-click`, each with one "
        "period of spend reported first so that every conversion lands in it. The server "
        f"pinned to core {meta['server_cores']}, the load generator to core "
        f"{meta['client_cores']}. ReportConversions: closed loop, every batch id new, "
        f"{meta['seconds']:g} s per row and attribution (the two attributions measured back "
        "to back), each conversion 1 s after its journey's last touch; journeys of the Locust "
        "mix (`loadtest.journeys.draw_lengths`: lognormal, most 2-8 touchpoints, up to 64) "
        "or of 32 touchpoints. A call's latency runs from its send to its answer, which "
        "comes once the store has committed the batch. Server CPU is the server process's "
        "user + system time over the measurement (every thread), per conversion counted; "
        "the network's share is 1 - last-click's CPU a conversion / the network's: the part "
        "of the cost that the forward pass (with its featurizing) adds. A p99 over fewer than "
        "100 calls is the slowest call. Score: open loop at "
        f"{rate_how}, Poisson arrivals, 32-touchpoint journeys, "
        f"{meta['deadline_ms']:g} ms deadline, latency from each call's scheduled arrival, a "
        f"missed deadline counted as the deadline; alone and beside {meta['trickle_per_s']:g} "
        f"ReportConversions/s of {TRICKLE_CONVERSIONS} network-credited conversions (Locust "
        f"mix) to the same server, in turn, {ROUNDS} rounds of "
        f"{meta['score_seconds'] / ROUNDS:g} s each; measured before the closed loops, on the "
        "same server, after every path was warmed.",
        "",
        f"Run {meta['started']} on {meta['cores']} cores ({meta['cpu']}), Python "
        f"{meta['python']}, niceness {meta['niceness']}. Load average before/after: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in meta['load_after'])} (other work on the machine shows "
        "up here).",
        "",
        *tables(results),
        END,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.5,
                        help="per closed-loop ReportConversions measurement")
    parser.add_argument("--score-seconds", type=float, default=8.0,
                        help="Score per condition (alone, beside the trickle), over the rounds")
    parser.add_argument("--out", default="runs/bench_conversions",
                        help="folder for results.json and table.md; 'docs' = this script's "
                             "section of docs/performance.md")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="Score calls a second (default: 70 %% of the saturation measured "
                             "first on each server)")
    parser.add_argument("--deadline-ms", type=float, default=50.0, help="Score's deadline")
    parser.add_argument("--trickle-per-s", type=float, default=10.0,
                        help=f"ReportConversions of {TRICKLE_CONVERSIONS} a second beside Score")
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild the table (and with --out docs the section) from the "
                             "saved results.json, measuring nothing")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return bench_state.measure_and_write(args, "bench_conversions", argv, run, tables, section,
                                         BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
