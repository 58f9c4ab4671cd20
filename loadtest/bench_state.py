"""What the campaign store costs: ReportOutcomes and Score on memory://, SQLite and Redis.

    .venv/bin/python -m loadtest.bench_state                 # about 3 minutes; runs/bench_state/
    .venv/bin/python -m loadtest.bench_state --out docs      # also its section of docs/performance.md

For each store in turn (``memory://``; ``sqlite:///`` a file in a temporary directory; a
``redis-server`` started for the run, append-only with fsync on every write) one
``attribid serve --state URL`` (default flags) runs in a child process pinned to
``--server-cores`` (Redis too: the store's work is charged to the server's core, as SQLite's
is), and this process, pinned to ``--client-cores``, measures on it:

- Score at ``--rate`` calls a second (open loop, Poisson arrivals, 32-touchpoint journeys,
  ``--deadline-ms`` deadline, latency from each call's scheduled arrival) beside a trickle
  of ``--trickle-per-s`` ReportOutcomes of 10 rows: ``loadtest.interference``'s load and
  trickle. The default rate is 70 % of the Score saturation measured first, on memory://
  (closed loop at concurrency 16, calls answered by the network a second);
- then ReportOutcomes alone, closed loop at concurrency 1 and 8, reports of 10 rows with
  distinct batch ids: rows a second, p50 and p99 of each call.

Every store is measured in the same run, and each figure's ratio to memory://'s is given.
Results go to ``--out`` (``results.json`` and ``table.md``); ``--out docs`` writes the
section of docs/performance.md between this script's markers instead (appended the first
time). Loopback only; every process it starts is stopped by the ``with`` block that started it.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import orjson
import uvloop

from loadtest import durability, interference, procs
from loadtest.interference import Condition

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/attribid.v1.Attribution/"
STORES = ("memory", "sqlite", "redis")
REPORT_ROWS = 10
CONCURRENCY = (1, 8)
#: the section this script writes in docs/performance.md, between these two lines
BEGIN = "<!-- loadtest.bench_state: begin -->"
END = "<!-- loadtest.bench_state: end -->"


class Reports:
    """Serialized ReportOutcomes of ``REPORT_ROWS`` rows, each batch id used once per server."""

    def __init__(self, seed: int, chunk: int = 2000) -> None:
        self.seed, self.chunk, self.made = seed, chunk, 0
        self._pool: list[bytes] = []

    def __call__(self) -> bytes:
        if not self._pool:
            # interference's ids are "interference-{seed}-{k}": a new seed per chunk keeps them new
            self._pool = interference.report_requests(REPORT_ROWS, self.chunk,
                                                      seed=self.seed * 100_000 + self.made)
            self._pool.reverse()
            self.made += 1
        return self._pool.pop()


@dataclass
class Closed:
    """One closed-loop measurement."""

    condition: Condition
    seconds: float = 0.0
    #: ReportOutcomes answered duplicate (none expected: every batch id is new)
    duplicates: int = 0
    #: Score answered by the fallback
    fallback: int = 0

    def per_s(self) -> float:
        return self.condition.calls / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(rpc: Any, next_request: Callable[[], bytes], concurrency: int,
                      seconds: float, name: str, on_reply: Callable[[bytes, Closed], None]) -> Closed:
    """``concurrency`` callers, each sending its next request as soon as the last is answered."""
    out = Closed(Condition(name))
    cond = out.condition
    end = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < end:
            data = next_request()
            sent = time.perf_counter_ns()
            try:
                reply = await rpc(data, timeout=10.0)
            except grpc.aio.AioRpcError as exc:
                cond.errors[exc.code().name] = cond.errors.get(exc.code().name, 0) + 1
                await asyncio.sleep(0.001)  # a refusing server is not spun on
                continue
            cond.latency_us.append((time.perf_counter_ns() - sent) // 1000)
            cond.calls += 1
            on_reply(reply, out)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    out.seconds = time.perf_counter() - began
    return out


def _report_reply(reply: bytes, out: Closed) -> None:
    from attribid.v1 import attribution_pb2 as pb

    if pb.ReportOutcomesResponse.FromString(reply).duplicate:
        out.duplicates += 1


def _score_reply(reply: bytes, out: Closed) -> None:
    from attribid.v1 import attribution_pb2 as pb

    if pb.ScoreResponse.FromString(reply).fallback:
        out.fallback += 1


async def channels(address: str, n: int) -> list[grpc.aio.Channel]:
    out = [grpc.aio.insecure_channel(address, options=[("attribid.conn", k)]) for k in range(n)]
    for ch in out:
        await asyncio.wait_for(ch.channel_ready(), 30)
    return out


async def saturation(address: str, seconds: float) -> float:
    """Score calls a second the network answers, closed loop at concurrency 16."""
    requests = interference.score_requests()
    chans = await channels(address, 2)
    rpcs = [ch.unary_unary(SERVICE + "Score") for ch in chans]
    turn = [0]

    def next_score() -> bytes:
        turn[0] += 1
        return requests[turn[0] % len(requests)]

    async def both(seconds: float) -> Closed:
        halves = await asyncio.gather(*(closed_loop(rpc, next_score, 8, seconds, "saturation",
                                                    _score_reply) for rpc in rpcs))
        total = Closed(Condition("saturation"), seconds=max(h.seconds for h in halves))
        total.condition.calls = sum(h.condition.calls for h in halves)
        total.fallback = sum(h.fallback for h in halves)
        return total

    await both(min(1.0, seconds))  # warm
    done = await both(seconds)
    for ch in chans:
        await ch.close()
    return (done.condition.calls - done.fallback) / done.seconds


async def measure(address: str, args: argparse.Namespace, rate: float, seed: int) -> dict[str, Any]:
    """Score beside a trickle of reports, then ReportOutcomes closed loop, on one server."""
    requests = interference.score_requests()
    score_chans = await channels(address, 2)
    report_chan = (await channels(address, 1))[0]
    score_rpcs = [ch.unary_unary(SERVICE + "Score") for ch in score_chans]
    report_rpc = report_chan.unary_unary(SERVICE + "ReportOutcomes")
    deadline_s = args.deadline_ms / 1000.0
    await interference.score_load(score_rpcs, requests, rate, min(1.0, args.seconds), deadline_s,
                                  Condition("warm"), seed=0)
    score = Condition("score")
    trickle = interference.report_requests(REPORT_ROWS,
                                           int(args.trickle_per_s * args.seconds * 1.5) + 16,
                                           seed=seed)
    stop = asyncio.Event()
    side = asyncio.ensure_future(interference.report_trickle(
        report_rpc, trickle, args.trickle_per_s, stop, score, [0]))
    await interference.score_load(score_rpcs, requests, rate, args.seconds, deadline_s, score,
                                  seed=seed)
    stop.set()
    await side
    result: dict[str, Any] = {
        "score": {"rate": rate, "calls": score.calls, "p50_ms": score.percentile(50),
                  "p99_ms": score.percentile(99), "missed": score.missed,
                  "fallback": score.fallback, "errors": score.errors,
                  "reports": score.reports, "reports_ok": score.reports_ok}}
    reports = Reports(seed + 1)
    await closed_loop(report_rpc, reports, 1, min(0.5, args.seconds), "warm", _report_reply)
    for c in CONCURRENCY:
        done = await closed_loop(report_rpc, reports, c, args.seconds, f"c{c}", _report_reply)
        cond = done.condition
        result[f"reports_c{c}"] = {
            "reports": cond.calls, "rows_per_s": REPORT_ROWS * done.per_s(),
            "p50_ms": cond.percentile(50), "p99_ms": cond.percentile(99),
            "duplicates": done.duplicates, "errors": cond.errors, "seconds": done.seconds}
        print(f"  ReportOutcomes c={c}: {REPORT_ROWS * done.per_s():.0f} rows/s, p50 "
              f"{cond.percentile(50):.2f} ms, p99 {cond.percentile(99):.2f} ms"
              + (f", errors {cond.errors}" if cond.errors else ""), file=sys.stderr, flush=True)
    for ch in (*score_chans, report_chan):
        await ch.close()
    return result


@contextlib.contextmanager
def store_url(kind: str, folder: Path, cores: str | None) -> Iterator[str]:
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{folder}/state.sqlite"
    else:
        with durability.redis_for_run(cores) as url:
            yield url


def refusals(log: Path) -> dict[str, int]:
    """The server's own reasons for the calls it refused ("code: detail", digits as N), counted."""
    import re

    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict) and record.get("event") == "refused":
                    why = f"{record.get('method')} {record.get('code')}: " + re.sub(
                        r"\d+", "N", str(record.get("detail", "")))
                    out[why] = out.get(why, 0) + 1
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def run(args: argparse.Namespace) -> dict[str, Any]:
    procs.pin_self(args.client_cores)
    meta: dict[str, Any] = {
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
        "server_cores": args.server_cores, "client_cores": args.client_cores,
        "seconds": args.seconds, "deadline_ms": args.deadline_ms,
        "trickle_per_s": args.trickle_per_s, "load_before": os.getloadavg(),
        "command": args.command, "niceness": os.nice(0)}
    stores: dict[str, Any] = {}
    rate = args.rate
    with tempfile.TemporaryDirectory(prefix="attribid-bench-state-") as tmp:
        for k, kind in enumerate(STORES):
            with store_url(kind, Path(tmp), args.server_cores) as url:
                print(f"{kind}: starting attribid serve --state {url}", file=sys.stderr, flush=True)
                with durability.serving(url, args.logs / f"server-{kind}.log",
                                        cores=args.server_cores) as server:
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        if not rate:
                            sat = runner.run(saturation(server.address, min(3.0, args.seconds)))
                            meta["saturation_per_s"] = sat
                            rate = max(0.7 * sat, 1.0)
                            print(f"  Score saturation on {kind}: {sat:.0f}/s; measuring at "
                                  f"{rate:.0f}/s", file=sys.stderr, flush=True)
                        stores[kind] = runner.run(measure(server.address, args, rate,
                                                          seed=10 * (k + 1)))
                    s = stores[kind]["score"]
                    print(f"  Score at {rate:.0f}/s beside {args.trickle_per_s:g} reports/s: "
                          f"p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms", file=sys.stderr,
                          flush=True)
                stores[kind]["url"] = url if kind != "sqlite" else "sqlite:///(tmp)/state.sqlite"
                stores[kind]["refusals"] = refusals(args.logs / f"server-{kind}.log")
    meta["rate"] = rate
    meta["load_after"] = os.getloadavg()
    return {"meta": meta, "stores": stores}


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base and base == base and value == value else "n/a"


def tables(results: dict[str, Any]) -> list[str]:
    stores, meta = results["stores"], results["meta"]
    mem = stores["memory"]
    lines = ["| store | rows/s, 1 in flight | p50 ms | p99 ms | rows/s, 8 in flight | p50 ms "
             "| p99 ms | rows/s / memory's (1; 8) | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in STORES:
        s = stores[kind]
        a, b = s["reports_c1"], s["reports_c8"]
        errors: dict[str, int] = {}
        for x in (a, b):
            for code, n in x["errors"].items():
                errors[code] = errors.get(code, 0) + n
        lines.append(
            f"| {kind}:// | {a['rows_per_s']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | "
            f"{b['rows_per_s']:.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | "
            f"{_ratio(a['rows_per_s'], mem['reports_c1']['rows_per_s'])}; "
            f"{_ratio(b['rows_per_s'], mem['reports_c8']['rows_per_s'])} | "
            f"{', '.join(f'{n} {c}' for c, n in errors.items()) or 'none'} |")
    lines += ["", f"| store | Score calls at {meta['rate']:.0f}/s | p50 ms | p99 ms "
              "| p99 / memory's | missed deadline | fallback | reports beside it (OK) |",
              "|---|---|---|---|---|---|---|---|"]
    for kind in STORES:
        s = stores[kind]["score"]
        failed = "".join(f", {n} {code}" for code, n in sorted(s["errors"].items()))
        lines.append(
            f"| {kind}:// | {s['calls']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{_ratio(s['p99_ms'], mem['score']['p99_ms'])} | {s['missed']} | "
            f"{s['fallback']}{failed} | {s['reports']} ({s['reports_ok']}) |")
    reasons = [f"{kind}:// {n} x `{why}`" for kind in STORES
               for why, n in stores[kind].get("refusals", {}).items()]
    if reasons:
        lines += ["", "Refused calls, as the servers logged them (at most "
                  "`--refusal-log-per-s` a second are logged): " + "; ".join(reasons) + ". A "
                  "refusal acknowledges nothing: `attribid.client` retries it with the same "
                  "batch id, and `loadtest.durability` checks that each batch refused so was "
                  "either committed (its retry answered `duplicate`) or counted on its retry."]
    return lines


def section(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rate_how = (f"70 % of the saturation measured first on memory://, "
                f"{meta['saturation_per_s']:.0f}/s: closed loop at concurrency 16, calls the "
                "network answered" if "saturation_per_s" in meta else "given by `--rate`")
    return "\n".join([
        BEGIN,
        "## Campaign state stores: ReportOutcomes, and Score beside reports",
        "",
        f"Measured by `{meta['command']}` (from the repository root, with `.venv/bin/python`), "
        "not by `loadtest.bench`; rerun it alone to refresh this section. Each store in turn "
        "behind one `attribid serve --state URL` with default flags in a child process: "
        "`memory://`, `sqlite:///` a file in a temporary directory, and a `redis-server` "
        "started for the run (append-only file, fsync on every write). Each write is "
        "acknowledged once the store has committed it (SQLite: `synchronous=FULL`). The server "
        f"(and Redis) pinned to core {meta['server_cores']}, the load generator to core "
        f"{meta['client_cores']}. ReportOutcomes: closed loop, {REPORT_ROWS} rows a report, "
        f"every batch id new, {meta['seconds']:g} s per concurrency. Score: open loop at "
        f"{meta['rate']:.0f} calls/s ({rate_how}), Poisson arrivals, 32-touchpoint journeys, "
        f"{meta['deadline_ms']:g} ms deadline, latency from each call's scheduled arrival, a "
        f"missed deadline counted as the deadline, {meta['seconds']:g} s, beside "
        f"{meta['trickle_per_s']:g} ReportOutcomes/s of {REPORT_ROWS} rows to the same server; "
        "measured before the closed-loop reports, on the same server.",
        "",
        f"Run {meta['started']} on {meta['cores']} cores ({meta['cpu']}), Python "
        f"{meta['python']}, niceness {meta['niceness']}. Load average before/after: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in meta['load_after'])} (other work on the machine shows "
        "up here). Ratios are against memory:// in the same run.",
        "",
        *tables(results),
        END,
    ])


def write_section(path: Path, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Put ``text`` in place of the section of ``path`` between ``begin`` and ``end`` (this
    script's by default; appended the first time)."""
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + text + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="per measurement: Score beside reports, and each concurrency")
    parser.add_argument("--out", default="runs/bench_state",
                        help="folder for results.json and table.md; 'docs' = this script's "
                             "section of docs/performance.md")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="Score calls a second (default: 70 %% of the saturation measured "
                             "first on memory://)")
    parser.add_argument("--deadline-ms", type=float, default=50.0, help="Score's deadline")
    parser.add_argument("--trickle-per-s", type=float, default=20.0,
                        help="ReportOutcomes a second beside Score")
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild the table (and with --out docs the section) from the "
                             "saved results.json, measuring nothing")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return measure_and_write(args, "bench_state", argv, run, tables, section)


def measure_and_write(args: argparse.Namespace, name: str, argv: list[str] | None,
                      run: Callable[[argparse.Namespace], dict[str, Any]],
                      tables: Callable[[dict[str, Any]], list[str]],
                      section: Callable[[dict[str, Any]], str],
                      begin: str = BEGIN, end: str = END) -> int:
    """What a ``loadtest.NAME`` benchmark does once its flags are read: measure (or, with
    ``--render-only``, reload the saved results), print the tables, save ``results.json``
    and ``table.md`` under ``--out`` (``runs/NAME`` for ``--out docs``), and with
    ``--out docs`` rewrite its section (``begin``..``end``) of ``--docs``."""
    args.command = " ".join([f"python -m loadtest.{name}",
                             *(sys.argv[1:] if argv is None else argv)])
    to_docs = args.out == "docs"
    out = ROOT / "runs" / name if to_docs else Path(args.out)
    args.logs = out / "logs"
    if args.render_only:
        results = orjson.loads((out / "results.json").read_bytes())
    else:
        results = run(args)
    print("\n".join(tables(results)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "table.md").write_text(section(results) + "\n")
    if to_docs:
        write_section(args.docs, section(results), begin, end)
        print(f"wrote its section of {args.docs}")
    else:
        print(f"wrote {out / 'results.json'} and {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
