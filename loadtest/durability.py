"""kill -9 a server in the middle of a ReportOutcomes stream, restart it on the same store, check.

    .venv/bin/python -m loadtest.durability                        # SQLite file in a temp dir
    .venv/bin/python -m loadtest.durability --state redis          # a redis-server for the run
    .venv/bin/python -m loadtest.durability --state sqlite:////tmp/x.sqlite --format json

One ``attribid serve`` child on 127.0.0.1 with ``--state URL``. A campaign is configured, then
a thread sends ``--reports`` ReportOutcomes (each its own batch id, ``--rows`` rows on the
served channels, spend 1.0 a row, so a campaign's total spend counts its rows), ``--window``
in flight, as fast as the server answers unless paced (``--per-s``). The main thread polls
GetAllocation meanwhile and, once a seeded number of reports has been acknowledged (and a
seeded few milliseconds later), reads the allocation one last time and kill -9's the
server. The store is then read directly (no server running), the server restarted on it, and:

- GetAllocation serves the version the store holds, never older than the last one read
  before the kill; when that version is a published re-solve, the same allocation to the
  bit (spend, shares, expected values, solve time). A version that came from the campaign's
  configuration is solved again on replay with the restarted clock, so only the version is
  comparable then. The servers run with a re-solve lease (``--lease-s``) longer than the
  checks take: the dead server's lease still holds while the restarted one is checked, so it
  serves what the store held, not a re-solve of its own.
- every acknowledged batch, sent again, is ``duplicate``;
- every batch sent but not acknowledged is either ``duplicate`` (it had landed) or counted now
  (a batch the live server refused with a status, e.g. UNAVAILABLE "retry", is one of these:
  a refusal acknowledges nothing, so it is no violation, and the run counts them apart);
- the store's outcome events for the campaign (read before the restart) number exactly
  acknowledged + landed-unacknowledged, and the campaign's total spend as the server holds it
  equals one per row of every batch counted. The server shows that total only through its
  bound on what a campaign accumulates (``attribid.models.campaign.model.MAX_AMOUNT``): a
  last report of spend ``MAX_AMOUNT - E + 0.5`` must be refused (total >= E) and then one of
  ``MAX_AMOUNT - E - 0.5`` accepted (total <= E), E being the expected total.

It prints progress lines on stderr, then a table (or ``--format json``) on stdout, and exits
1 on any violation. Everything it starts (servers, Redis) listens on loopback only and is
stopped by the ``with`` block that started it; it kills no process it did not start.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import grpc
import numpy as np
import orjson

from loadtest import procs
from loadtest.targets import wait_serving

ROOT = Path(__file__).resolve().parent.parent


def campaign_of(run: str) -> str:
    """The run's own campaign: a store used before holds other runs' batches, not this one's."""
    return f"durability-{run}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------------
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@contextlib.contextmanager
def redis_for_run(cores: str | None = None, timeout: float = 20.0) -> Iterator[str]:
    """A redis-server of this run's own on a free loopback port; its URL.

    Append-only file on and fsync on every write (as ``tests.redisproc`` runs it), so what
    Redis acknowledged survives; its files live in a temporary directory removed at the end.
    (``tests.redisproc`` needs pytest, which a load test does not.)
    """
    if not os.path.exists(REDIS_SERVER):
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = procs.free_port()
    with tempfile.TemporaryDirectory(prefix="attribid-redis-") as folder:
        cmd = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
               "--save", "", "--appendonly", "yes", "--appendfsync", "always",
               "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"]
        redis = subprocess.Popen(procs.pinned(cmd, cores), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not _pong(port):
                if redis.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer PING (exit {redis.poll()})")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            redis.kill()
            redis.wait(10)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def serve_command(state: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "attribid.cli.main", "serve", "--address", "127.0.0.1:0",
            "--metrics-port", "-1", "--state", state, *flags]


@contextlib.contextmanager
def serving(state: str, log_path: Path, *flags: str,
            cores: str | None = None) -> Iterator[procs.Proc]:
    """``attribid serve --state STATE`` in a child process, once SERVING; stopped on exit."""
    with procs.started(serve_command(state, *flags), cores, log_path, cwd=str(ROOT)) as proc:
        address = proc.wait_for_address(120)
        wait_serving(address)
        yield proc


# -- the stream -----------------------------------------------------------------------------
@dataclass
class Stream:
    """What the sender thread did, batch by batch (index = batch number)."""

    n: int
    #: "unsent", "sent" (no answer yet), "ok", "duplicate" (first send said duplicate), or a code
    status: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: int = 0
    #: set once the server has been killed: nothing more is sent
    stop: threading.Event = field(default_factory=threading.Event)
    #: batches refused (any code) while the server was still up, by code
    refused_live: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = ["unsent"] * self.n

    def indices(self, *states: str) -> list[int]:
        with self.lock:
            return [i for i, s in enumerate(self.status) if s in states]


def batch_id(run: str, i: int) -> str:
    return f"durability-{run}-{i}"


def report(run: str, i: int, rows: int, channels: tuple[str, ...]) -> Any:
    from attribid.v1 import attribution_pb2 as pb

    return pb.ReportOutcomesRequest(batch_id=batch_id(run, i), campaign_id=campaign_of(run), outcomes=[
        pb.ChannelOutcome(channel=channels[(i + k) % len(channels)], spend=1.0,
                          conversions=float((i + k) % 3 == 0), revenue=0.0, impressions=100.0)
        for k in range(rows)])


def send_stream(address: str, run: str, args: argparse.Namespace, channels: tuple[str, ...],
                stream: Stream) -> None:
    """Send every batch once, ``args.window`` in flight, paced, until the kill."""
    from attribid.v1 import attribution_pb2_grpc as pb_grpc

    slots = threading.Semaphore(args.window)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AttributionStub(channel)
        start = time.monotonic()
        for i in range(stream.n):
            if args.per_s > 0:
                delay = start + i / args.per_s - time.monotonic()
                if delay > 0 and stream.stop.wait(delay):
                    break
            if not _slot(slots, stream.stop):
                break
            with stream.lock:
                stream.status[i] = "sent"
            future = stub.ReportOutcomes.future(report(run, i, args.rows, channels),
                                                timeout=10.0)
            future.add_done_callback(lambda f, i=i: _answered(f, i, stream, slots))
        # Wait for every call in flight to be answered (after a kill: UNAVAILABLE at once).
        deadline = time.monotonic() + 15.0
        while stream.indices("sent") and time.monotonic() < deadline:
            time.sleep(0.01)


def _slot(slots: threading.Semaphore, stop: threading.Event) -> bool:
    """Wait for room in the window; False once the stream is to stop."""
    while not slots.acquire(timeout=0.05):
        if stop.is_set():
            return False
    if stop.is_set():
        slots.release()
        return False
    return True


def _answered(future: Any, i: int, stream: Stream, slots: threading.Semaphore) -> None:
    try:
        reply = future.result()
        status = "duplicate" if reply.duplicate else "ok"
    except grpc.RpcError as exc:
        status = exc.code().name
    with stream.lock:
        stream.status[i] = status
        if status not in ("ok", "duplicate") and not stream.stop.is_set():
            stream.refused_live[status] = stream.refused_live.get(status, 0) + 1
        if status == "ok":
            stream.acked += 1
    slots.release()


# -- the store, read directly ---------------------------------------------------------------
@dataclass
class StoreView:
    outcome_events: int
    version: int
    #: the kind of event the campaign's latest version came from: "configure" or "allocation"
    version_from: str


def read_store(url: str, campaign: str) -> StoreView:
    """The campaign as the store holds it, read through the store interface (no server)."""
    from attribid.state.store import ALLOCATION, CONFIGURE, OUTCOMES, open_store

    store = open_store(url)
    try:
        outcomes, version, origin, after = 0, 0, "", 0
        while True:
            events = store.read(after, 1000)
            for e in events:
                if e.tenant == "default" and e.campaign_id == campaign:
                    if e.kind == OUTCOMES:
                        outcomes += 1
                    elif e.kind in (CONFIGURE, ALLOCATION) and e.version >= version:
                        version, origin = e.version, e.kind
                after = e.seq
            if len(events) < 1000:
                return StoreView(outcomes, version, origin)
    finally:
        store.close()


# -- the run --------------------------------------------------------------------------------
_COMPARED = ("campaign_id", "version", "spend", "share", "revenue", "acquisitions", "exposure",
             "cpa", "objective", "solved_at_ms")


def allocation_dict(a: Any) -> dict[str, Any]:
    return {"campaign_id": a.campaign_id, "version": int(a.version), "spend": dict(a.spend),
            "share": dict(a.share), "revenue": a.revenue, "acquisitions": a.acquisitions,
            "exposure": a.exposure, "cpa": a.cpa, "objective": a.objective,
            "solved_at_ms": int(a.solved_at_ms), "stale": a.stale}


class Checks:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, expected: Any, found: Any, ok: bool) -> None:
        self.rows.append({"check": name, "expected": expected, "found": found, "ok": bool(ok)})
        log(f"check {name}: {'ok' if ok else 'VIOLATION'} (expected {expected}, found {found})")

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.rows)


def run(args: argparse.Namespace, state: str, workdir: Path) -> dict[str, Any]:
    from attribid.kernels.taxonomy import DEFAULT_CHANNELS
    from attribid.models.campaign.model import MAX_AMOUNT
    from attribid.v1 import attribution_pb2 as pb
    from attribid.v1 import attribution_pb2_grpc as pb_grpc

    rng = np.random.default_rng(args.seed)
    run_id = f"{args.seed}-{os.getpid()}-{int(time.time())}"
    campaign = campaign_of(run_id)
    channels = tuple(DEFAULT_CHANNELS)
    flags = ("--resolve-period-s", str(args.resolve_period_s),
             "--state-lease-s", str(args.lease_s))
    kill_after = int(rng.integers(max(args.reports // 4, 1), max(3 * args.reports // 4, 2)))
    jitter_s = float(rng.uniform(0.0, 1.0 / args.per_s if args.per_s > 0 else 0.005))
    checks = Checks()
    stream = Stream(args.reports)
    started = time.monotonic()

    log(f"server 1: starting on {state}")
    with serving(state, workdir / "server-1.log", *flags) as first:
        address = first.address
        log(f"server 1: SERVING on {address} (pid {first.popen.pid})")
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AttributionStub(channel)
            configured = stub.ConfigureCampaign(pb.ConfigureCampaignRequest(
                campaign_id=campaign, budget=10_000.0), timeout=30)
            log(f"configured {campaign!r}: version {configured.version}; sending {args.reports} "
                f"reports of {args.rows} rows, kill after {kill_after} acknowledged "
                f"+ {jitter_s * 1000:.1f} ms")
            sender = threading.Thread(target=send_stream, name="reports", daemon=True,
                                      args=(address, run_id, args, channels, stream))
            sender.start()
            last = configured
            deadline = time.monotonic() + args.timeout
            while stream.acked < kill_after:
                if not sender.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the stream ended after {stream.acked} acknowledged "
                                       f"reports, before the kill point {kill_after}: "
                                       f"{sorted(set(stream.status))}")
                last = stub.GetAllocation(pb.GetAllocationRequest(campaign_id=campaign),
                                          timeout=5)
                time.sleep(0.01)
            time.sleep(jitter_s)
            last = stub.GetAllocation(pb.GetAllocationRequest(campaign_id=campaign), timeout=5)
            # Flagged first, so what fails from here on is counted as failed by the kill.
            stream.stop.set()
            first.popen.kill()  # SIGKILL, this pid only: the server is one process
            first.popen.wait(10)
        acked_at_kill = stream.acked
        log(f"server 1: killed (SIGKILL) with {acked_at_kill} acknowledged; last allocation "
            f"read before it: version {last.version}")
    sender.join(30)
    if sender.is_alive():
        raise RuntimeError("the sender thread did not end after the kill")
    acked = stream.indices("ok")
    first_duplicates = stream.indices("duplicate")
    unacked = [i for i, s in enumerate(stream.status) if s not in ("ok", "duplicate", "unsent")]
    unsent = stream.indices("unsent")
    failures = sorted({stream.status[i] for i in unacked})
    log(f"stream: {len(acked)} acknowledged, {len(unacked)} sent and not acknowledged "
        f"({', '.join(failures) or 'none'}; while the server was up: "
        f"{stream.refused_live or 'none'}), {len(unsent)} never sent")
    checks.add("first sends answered duplicate", 0, len(first_duplicates),
               not first_duplicates)

    held = read_store(state, campaign)
    log(f"store: {held.outcome_events} outcome events, version {held.version} "
        f"(from {held.version_from})")

    log("server 2: restarting on the same store")
    with serving(state, workdir / "server-2.log", *flags) as second:
        log(f"server 2: SERVING on {second.address} (pid {second.popen.pid})")
        with grpc.insecure_channel(second.address) as channel:
            stub = pb_grpc.AttributionStub(channel)
            after = stub.GetAllocation(pb.GetAllocationRequest(campaign_id=campaign), timeout=10)
            before_d, after_d = allocation_dict(last), allocation_dict(after)
            checks.add("campaign after restart", campaign, after.campaign_id,
                       after.campaign_id == campaign)
            checks.add("version = the store's", held.version, after.version,
                       after.version == held.version)
            checks.add("version >= last read before kill", f">= {last.version}", after.version,
                       after.version >= last.version)
            exact = after.version == last.version and held.version_from == "allocation"
            if exact:
                differs = [k for k in _COMPARED if before_d[k] != after_d[k]]
                checks.add("allocation = last read before kill (published re-solve)",
                           "identical", "identical" if not differs else f"differs: {differs}",
                           not differs)
            compared = ("allocation identical (a published re-solve of the same version)"
                        if exact else
                        "version only: " + ("a newer allocation was published after the last "
                                            "read" if after.version > last.version else
                                            "the version came from the configuration, solved "
                                            "again on replay"))
            log(f"allocation compared: {compared}")

            def resend(i: int) -> Any:
                return stub.ReportOutcomes(report(run_id, i, args.rows, channels), timeout=10)

            not_dup = [i for i in acked if not resend(i).duplicate]
            checks.add("acknowledged batches duplicate on retry", len(acked),
                       len(acked) - len(not_dup), not not_dup)
            landed, counted_now, odd = [], [], []
            for i in unacked:
                reply = resend(i)
                if reply.duplicate:
                    landed.append(i)
                elif reply.accepted == args.rows:
                    counted_now.append(i)
                else:
                    odd.append(i)
            checks.add("unacknowledged batches: duplicate or counted now", len(unacked),
                       len(landed) + len(counted_now), not odd)
            checks.add("store's outcome events = acknowledged + landed unacknowledged",
                       len(acked) + len(landed), held.outcome_events,
                       held.outcome_events == len(acked) + len(landed))
            expected_total = float(args.rows * (len(acked) + len(landed) + len(counted_now)))
            over = _probe(stub, run_id, "above", MAX_AMOUNT - expected_total + 0.5, channels)
            under = _probe(stub, run_id, "below", MAX_AMOUNT - expected_total - 0.5, channels)
            checks.add("server's total spend >= rows counted (a probe past it refused)",
                       "INVALID_ARGUMENT", over, over == "INVALID_ARGUMENT")
            checks.add("server's total spend <= rows counted (a probe under it accepted)",
                       "OK", under, under == "OK")
    return {
        "state": state.split("://", 1)[0], "state_url": state, "campaign_id": campaign, "reports": args.reports,
        "rows_per_report": args.rows, "seed": args.seed, "kill_after_acknowledged": kill_after,
        "acknowledged": len(acked), "sent_unacknowledged": len(unacked),
        "unacknowledged_codes": failures, "refused_while_up": stream.refused_live,
        "never_sent": len(unsent),
        "landed_unacknowledged": len(landed), "counted_on_retry": len(counted_now),
        "acknowledged_duplicate_on_retry": len(acked) - len(not_dup),
        "all_acknowledged_duplicate": not not_dup and bool(acked),
        "store_outcome_events": held.outcome_events,
        "counts_match": held.outcome_events == len(acked) + len(landed),
        "server_total_spend": expected_total if over == "INVALID_ARGUMENT" and under == "OK"
        else None,
        "allocation_before_kill": before_d, "allocation_after_restart": after_d,
        "store_version": held.version, "store_version_from": held.version_from,
        "allocation_compared": compared, "seconds": round(time.monotonic() - started, 2),
        "checks": checks.rows, "ok": checks.ok,
    }


def _probe(stub: Any, run_id: str, which: str, spend: float, channels: tuple[str, ...]) -> str:
    from attribid.v1 import attribution_pb2 as pb

    request = pb.ReportOutcomesRequest(
        batch_id=f"durability-{run_id}-probe-{which}", campaign_id=campaign_of(run_id),
        outcomes=[pb.ChannelOutcome(channel=channels[0], spend=spend)])
    try:
        stub.ReportOutcomes(request, timeout=10)
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def table(result: dict[str, Any]) -> str:
    lines = ["| check | expected | found | |", "|---|---|---|---|"]
    for r in result["checks"]:
        lines.append(f"| {r['check']} | {r['expected']} | {r['found']} | "
                     f"{'ok' if r['ok'] else 'VIOLATION'} |")
    summary = (f"{result['state']}: {result['reports']} reports of {result['rows_per_report']} "
               f"rows, killed after {result['kill_after_acknowledged']} acknowledged; "
               f"{result['acknowledged']} acknowledged, {result['sent_unacknowledged']} sent and "
               f"not acknowledged ({result['landed_unacknowledged']} had landed, "
               f"{result['counted_on_retry']} counted on retry; refused while the server was "
               f"up: {result['refused_while_up'] or 'none'}), {result['never_sent']} never "
               f"sent; allocation: {result['allocation_compared']}; {result['seconds']} s")
    return "\n".join([summary, "", *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--state", default="",
                        help="store URL (sqlite:///PATH or redis://HOST:PORT/DB), 'sqlite' (a "
                             "file in a temporary directory, the default) or 'redis' (a "
                             "redis-server started for the run)")
    parser.add_argument("--reports", type=int, default=200, help="ReportOutcomes to send")
    parser.add_argument("--rows", type=int, default=3, help="rows per report")
    parser.add_argument("--window", type=int, default=4, help="reports in flight at most")
    parser.add_argument("--per-s", type=float, default=0.0,
                        help="reports sent a second; 0 (the default) = as fast as the window "
                             "allows, so the kill always finds reports in flight")
    parser.add_argument("--seed", type=int, default=1, help="picks the kill moment")
    parser.add_argument("--resolve-period-s", type=float, default=0.1,
                        help="the servers' re-solve period: allocations are published while "
                             "the stream runs")
    parser.add_argument("--lease-s", type=float, default=60.0,
                        help="the servers' re-solve lease: longer than the checks take")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the stream")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--logs", type=Path, default=None,
                        help="folder for the servers' logs (default: the temporary directory)")
    args = parser.parse_args(argv)
    if args.reports < 4 or args.rows < 1 or args.window < 1:
        parser.error("--reports must be >= 4, --rows and --window >= 1")
    if args.state.startswith("memory"):
        parser.error("memory:// keeps nothing across a restart: nothing to check")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="attribid-dur-")))
        state = args.state or "sqlite"
        if state == "sqlite":
            state = f"sqlite:///{workdir}/state.sqlite"
        elif state == "redis":
            state = stack.enter_context(redis_for_run())
        try:
            result = run(args, state, args.logs or workdir)
        except Exception as exc:
            log(f"run failed: {type(exc).__name__}: {exc}")
            if args.format == "json":
                print(orjson.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}).decode())
            return 2
    if args.format == "json":
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(table(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
