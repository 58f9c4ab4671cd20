"""The benchmark: attribid Score against its floors and two peers, in one run on this machine.

    .venv/bin/python -m loadtest.bench            # ~20 min; writes docs/performance.md + .png

Every server is pinned to ``--server-cores`` and the load generator
(``loadtest.driver``: one process, one uvloop event loop, pre-serialized
requests) to ``--client-cores``. Two journey mixes: every journey of ``--steps`` (32)
touchpoints, and the Locust mix (``loadtest.journeys.draw_lengths``: 1-64, mostly 2-8).
The floors, attribid and the peers (MLServer 1.7.1 in ``.venv-peer``, PyTriton 0.7.0 in
``.venv-triton``; a peer whose venv is missing is skipped, and the page says so) all run
the model attribid serves (its int8 variant by default; ``--model-float32`` as the
server's flag). Raw results go to ``runs/bench/results.json``; ``--render-only`` rebuilds
the docs from them.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

from attribid.models.onnx.runtime import load_model
from loadtest import h2load, report
from loadtest.driver import read_requests, write_requests
from loadtest.floors import floor_a
from loadtest.histogram import LatencyHistogram
from loadtest.journeys import generate, score_requests
from loadtest.peer import kserve, launch
from loadtest.targets import Target, attribid_server, echo_server, peer_server, triton_server

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32, 128)
#: open-loop arrival rates as fractions of the closed-loop saturation throughput
RATE_FRACTIONS = (0.25, 0.5, 0.7, 0.9, 1.0, 1.2, 2.0)
#: per-call deadline in open loop: a bidder's budget for the whole answer
OPEN_DEADLINE_S = 0.1
#: open-loop rates on the Locust mix, as fractions of attribid's saturation on it
MIX_RATE_FRACTIONS = (0.5, 0.7, 0.9)
#: a peer's open-loop rate, as a fraction of its own saturation on the same mix
PEER_RATE_FRACTIONS = (0.7,)
#: flags of every attribid server of the run but one (which shows what the spinners change)
ATTRIBID_FLAGS = ("--spin-idle",)
#: the journey mixes: results of the fixed-length one keep their plain keys ("attribid"),
#: the Locust mix's carry this suffix ("attribid_mix")
MIX_SUFFIX = {"fixed": "", "mix": "_mix"}
#: Triton's dynamic batcher: rows per model call and how long a request may wait for more
TRITON_MAX_BATCH, TRITON_QUEUE_DELAY_US = 32, 0


def prepare(out: Path, steps: int, n: int, seed: int) -> dict[str, Any]:
    """Write the request files every target is driven with, per mix; return what they hold.

    ``score{suffix}.bin`` (attribid and the echo floors) and ``peer{suffix}.bin`` (KServe v2,
    both peers) carry the same journeys.
    """
    info: dict[str, Any] = {"journeys": n, "steps": steps, "mixes": {}}
    for mix, suffix in MIX_SUFFIX.items():
        journeys = generate(n, seed=seed, length=steps if mix == "fixed" else None)
        reqs = [r.SerializeToString() for r in score_requests(journeys, seed=seed)]
        write_requests(out / f"score{suffix}.bin", reqs)
        peer_reqs = kserve.infer_requests(journeys, launch.MODEL_NAME)
        write_requests(out / f"peer{suffix}.bin", peer_reqs)
        lens = journeys.lengths()
        info["mixes"][mix] = {
            "mean_touchpoints": float(lens.mean()), "max_touchpoints": int(lens.max()),
            "min_touchpoints": int(lens.min()),
            "score_request_bytes": float(np.mean([len(r) for r in reqs])),
            "peer_request_bytes": float(np.mean([len(r) for r in peer_reqs]))}
    info["score_request_bytes"] = info["mixes"]["fixed"]["score_request_bytes"]
    info["peer_request_bytes"] = info["mixes"]["fixed"]["peer_request_bytes"]
    return info


def served_models(args: argparse.Namespace) -> dict[str, str]:
    """The ONNX file attribid serves under the run's flags (as the server picks it), and the
    float32 file it stands in for (the same file when float32 is served)."""
    served = load_model(args.model or None, prefer_int8=not args.model_float32)
    float32 = load_model(args.model or None, prefer_int8=False)
    return {"path": served.path, "version": served.version, "precision": served.info.precision,
            "float32_path": float32.path}


def peer_check(target: Target, requests: Path, model_path: str) -> dict[str, Any]:
    """One call to a peer, its answer against the served model run in process on the same
    journey (the same file through the same featurizer: they should agree closely)."""
    import grpc

    from loadtest.peer.scoring import PeerScorer

    request = read_requests(requests)[0]
    with grpc.insecure_channel(target.address) as channel:
        reply = channel.unary_unary(target.method)(request, timeout=10.0)
    answer = kserve.decode_response(reply)
    expected, _ = PeerScorer(model_path)(kserve.decode_request(request)["inputs"])
    got = float(np.ravel(answer["conversion"])[0])
    return {"conversion": got, "in_process": float(expected[0]),
            "abs_diff": abs(got - float(expected[0]))}


def measure(target: Target, requests: Path, client_cores: str | None, *, closed: int = 0,
            rate: float = 0.0, duration: float, warmup: float, timeout: float = 1.0,
            parse_fallback: bool = False) -> dict[str, Any]:
    """One driver run against ``target``; adds server/client CPU use and mean batch size."""
    cmd = [sys.executable, "-m", "loadtest.driver", "--target", target.address,
           "--method", target.method, "--requests", str(requests), "--duration", str(duration),
           "--warmup", str(warmup), "--timeout", str(timeout)]
    cmd += ["--closed", str(closed)] if closed else ["--rate", f"{rate:.1f}"]
    cmd += ["--watch-pid", str(target.proc.popen.pid)]
    if parse_fallback:
        cmd.append("--parse-fallback")
    if client_cores:
        cmd = ["taskset", "-c", client_cores, *cmd]
    batch0 = target.batch_counts()
    threads0, calls0 = target.proc.thread_cpu_seconds(), sum(target.score_statuses().values())
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=duration * 4 + 120)
    if done.returncode != 0:
        raise RuntimeError(f"driver failed against {target.name}: {done.stderr[-2000:]}")
    batch1 = target.batch_counts()
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    result["target"] = target.name
    runs = batch1[1] - batch0[1]
    result["mean_batch"] = (batch1[0] - batch0[0]) / runs if runs else None
    # Per call, from the server's own call counter (warm-up calls included on both sides).
    calls = sum(target.score_statuses().values()) - calls0
    threads1 = target.proc.thread_cpu_seconds()
    result["cpu_ms_per_call_main"] = (threads1[0] - threads0[0]) * 1e3 / calls if calls else None
    result["cpu_ms_per_call_other"] = (threads1[1] - threads0[1]) * 1e3 / calls if calls else None
    line = (f"  {target.name:<18} {result['mode']:<6} {result['level']:>8.0f}  "
            f"{result['throughput']:>8.0f}/s  p50 {result['p50'] or float('nan'):7.3f}  "
            f"p99 {result['p99'] or float('nan'):8.3f} ms  cpu srv {result['server_cpu']:.2f} "
            f"cli {result['client_cpu']:.2f}  errors {result['errors']}")
    print(line, flush=True)
    return result


def cross_check(target: Target, out: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same target under h2load (C), at concurrency 1, 32 and 128."""
    if not h2load.available():
        return []
    from loadtest.driver import read_requests
    message = read_requests(out / "score.bin")[0]
    rows = []
    for clients, streams in ((1, 1), (4, 8), (4, 32)):
        before = target.score_statuses()
        row = h2load.run(target.address, target.method, message, out, clients=clients,
                         streams=streams, duration=args.duration, warmup=args.warmup,
                         cores=args.client_cores)
        after = target.score_statuses()
        row["target"] = target.name
        row["server_status"] = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after
                                if after.get(k, 0.0) != before.get(k, 0.0)}
        print(f"  {target.name:<18} h2load {row['level']:>8.0f}  {row['throughput']:>8.0f}/s  "
              f"p50 {row['p50']:7.3f}  p99 {row['p99']:8.3f} ms  server says "
              f"{row['server_status'] or 'n/a'}", flush=True)
        rows.append(row)
    return rows


def closed_sweep(target: Target, requests: Path, args: argparse.Namespace,
                 levels: tuple[int, ...] = CONCURRENCY) -> list[dict[str, Any]]:
    """The levels in turn, ``args.rounds`` times over; each level keeps its best round.

    The same rule as floor A's, for every target alike: this machine's speed drifts
    by tens of percent from one minute to the next, and a slow spell then spoils a
    round, not the figure.
    """
    rounds = [[measure(target, requests, args.client_cores, closed=c, duration=args.duration,
                       warmup=args.warmup) for c in levels] for _ in range(args.rounds)]
    best = []
    for k in range(len(levels)):
        runs = [r[k] for r in rounds]
        pick = max(runs, key=lambda r: r["throughput"])
        best.append(pick | {"rounds": [r["throughput"] for r in runs]})
    return best


def open_sweep(target: Target, requests: Path, args: argparse.Namespace, saturation: float,
               fractions: tuple[float, ...] = RATE_FRACTIONS,
               parse_fallback: bool = True) -> list[dict[str, Any]]:
    """Poisson arrivals at these fractions of ``saturation``, each call with the open deadline.

    ``parse_fallback`` reads attribid's answers for its fallback flag (a peer has none).
    """
    return [measure(target, requests, args.client_cores, rate=f * saturation,
                    duration=args.duration, warmup=args.warmup, timeout=OPEN_DEADLINE_S,
                    parse_fallback=parse_fallback) | {"fraction": f} for f in fractions]


def locust_run(target: Target, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The documented Locust command, headless for a set time and rate, against ``target``."""
    prefix = out / "locust"
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"),
           "--headless", "--host", target.address, "-u", "10", "-r", "10",
           "-t", f"{int(args.locust_seconds)}s", "--rate", str(args.locust_rate),
           "--csv", str(prefix), "--html", str(out / "locust.html")]
    if args.client_cores:
        cmd = ["taskset", "-c", args.client_cores, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          timeout=args.locust_seconds + 120)
    stats = {row["Name"]: row for row in
             csv.DictReader(Path(f"{prefix}_stats.csv").read_text().splitlines())}
    hist = LatencyHistogram()
    for row in csv.DictReader(Path(f"{prefix}_us_histogram.csv").read_text().splitlines()):
        for _ in range(int(row["count"])):
            hist.record(row["name"], int(row["latency_us"]) / 1000.0)
    rows = []
    for name in hist.names():
        pct = hist.percentiles(name)
        st = stats.get(name, {})
        rows.append({"name": name, "requests": int(st.get("Request Count", 0)),
                     "failures": int(st.get("Failure Count", 0)),
                     "rps": float(st.get("Requests/s", 0.0)),
                     "p50": pct[50.0], "p90": pct[90.0], "p99": pct[99.0], "p999": pct[99.9]})
    print(f"  locust: exit {done.returncode}, " + ", ".join(
        f"{r['name']} {r['requests']} req p99 {r['p99']:.3f} ms" for r in rows), flush=True)
    return {"exit_code": done.returncode, "seconds": args.locust_seconds,
            "rate": args.locust_rate, "users": 10, "rows": rows}


def run_all(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    logs = out / "logs"
    res: dict[str, Any] = {"meta": _meta(args), "failures": [], "skipped": []}
    res["meta"].update(prepare(out, args.steps, 512, args.seed))
    models = served_models(args)
    res["meta"]["model"] = models
    model = Path(models["path"])
    score = out / "score.bin"
    served_flags = (*(("--model-path", args.model) if args.model else ()),
                    *(("--model-float32",) if args.model_float32 else ()))

    def guarded(name: str, step: Callable[[], None]) -> None:
        # A failed optional part is reported, not allowed to lose the rest of the run.
        try:
            step()
        except Exception as exc:  # noqa: BLE001
            res["failures"].append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  {name} FAILED: {exc}", flush=True)

    print(f"floor A: in-process onnxruntime, {models['precision']} ({model.name})", flush=True)
    os.sched_setaffinity(0, _cores(args.server_cores))
    res["floor_a"] = [asdict(r) for r in floor_a(str(model), args.steps, args.threads, 1.0)]
    if models["float32_path"] != models["path"]:
        # The float32 network's own forward pass at batch 1: what the round trip is held to.
        res["floor_a_float32"] = [asdict(r) for r in floor_a(
            models["float32_path"], args.steps, args.threads, 0.5, batches=(1,))]
    os.sched_setaffinity(0, _cores(args.client_cores))
    print("floor B: bare grpc.aio + uvloop echo server", flush=True)
    with echo_server(args.server_cores, logs) as echo:
        res["floor_b"] = closed_sweep(echo, score, args)
        guarded("h2load echo", lambda: res.update(h2load_echo=cross_check(echo, out, args)))

    def floor_ab() -> None:
        with echo_server(args.server_cores, logs, model=model) as ab:
            res["floor_ab"] = closed_sweep(ab, score, args, (1, 8, 32))
        with echo_server(args.server_cores, logs, model=model, spin_idle=True) as ab:
            res["floor_ab_spin"] = closed_sweep(ab, score, args, (1, 32))

    print("floor A+B: the echo server running onnxruntime (batch 1) on every call", flush=True)
    guarded("floor A+B", floor_ab)

    print(f"attribid, 1 worker ({' '.join(ATTRIBID_FLAGS)})", flush=True)
    with attribid_server(args.server_cores, logs, extra=(*ATTRIBID_FLAGS, *served_flags)) as srv:
        res["attribid"] = closed_sweep(srv, score, args)
        guarded("h2load attribid",
                lambda: res.update(h2load_attribid=cross_check(srv, out, args)))
        sat = max(r["throughput"] for r in res["attribid"])
        guarded("open loop", lambda: res.update(open=open_sweep(srv, score, args, sat)))
        print("attribid on the Locust mix of journey lengths", flush=True)

        def mix() -> None:
            res["attribid_mix"] = closed_sweep(srv, out / "score_mix.bin", args)
            sat_mix = max(r["throughput"] for r in res["attribid_mix"])
            res["open_mix"] = open_sweep(srv, out / "score_mix.bin", args, sat_mix,
                                         MIX_RATE_FRACTIONS)

        guarded("attribid mix", mix)
        print("Locust, headless, against the same server", flush=True)
        guarded("locust", lambda: res.update(locust=locust_run(srv, out, args)))

    def no_spin() -> None:
        with attribid_server(args.server_cores, logs, extra=served_flags) as srv:
            res["no_spin"] = closed_sweep(srv, score, args, (1, 32))

    def reject_2x() -> None:
        sat = max(r["throughput"] for r in res["attribid"])
        flags = (*ATTRIBID_FLAGS, *served_flags, "--shed-with", "reject")
        with attribid_server(args.server_cores, logs, extra=flags) as srv:
            res["open_reject"] = open_sweep(srv, score, args, sat, (0.7, 2.0))

    def no_batching() -> None:
        flags = (*ATTRIBID_FLAGS, *served_flags, "--max-batch", "1")
        with attribid_server(args.server_cores, logs, extra=flags) as srv:
            res["no_batching"] = closed_sweep(srv, score, args, (1, 32))

    def workers2() -> None:
        with attribid_server(None, logs, workers=2, extra=(*ATTRIBID_FLAGS, *served_flags)) as srv:
            res["workers2"] = closed_sweep(srv, score, args, (1, 32, 128))

    if not args.peers_only:
        print("attribid, 1 worker, default flags (no idle spinners)", flush=True)
        guarded("no spinners", no_spin)
        print("attribid, 1 worker, --shed-with reject, open loop", flush=True)
        guarded("reject at 2x", reject_2x)
        print("attribid, 1 worker, batching off (--max-batch 1)", flush=True)
        guarded("batching off", no_batching)
        print("attribid, 2 workers (both cores; the load generator shares one)", flush=True)
        guarded("2 workers", workers2)
    run_peers(args, out, model, res, guarded)
    res["meta"]["load_after"] = os.getloadavg()
    res["meta"]["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return res


def peer_sweeps(target: Target, key: str, out: Path, args: argparse.Namespace,
                res: dict[str, Any]) -> None:
    """A peer on both mixes: the closed-loop sweep, then open loop at its own saturation's
    ``PEER_RATE_FRACTIONS``; results under ``key`` + the mix's suffix."""
    for suffix in MIX_SUFFIX.values():
        requests = out / f"peer{suffix}.bin"
        res[key + suffix] = closed_sweep(target, requests, args)
        sat = max(r["throughput"] for r in res[key + suffix])
        res[f"{key}_open{suffix}"] = open_sweep(target, requests, args, sat,
                                                PEER_RATE_FRACTIONS, parse_fallback=False)


def run_peers(args: argparse.Namespace, out: Path, model: Path, res: dict[str, Any],
              guarded: Callable[[str, Callable[[], None]], None]) -> None:
    """MLServer (adaptive batching off, on) and PyTriton, each only when its venv is there."""
    checks = res.setdefault("peer_checks", {})
    if args.skip_peer:
        res["skipped"].append("MLServer 1.7.1: left out by --skip-peer")
    elif not launch.peer_available():
        res["skipped"].append("MLServer 1.7.1: no `.venv-peer` "
                              "(make it with `bash loadtest/peer/setup_peer.sh`)")
    else:
        for batching in (False, True):
            key = "peer_batching" if batching else "peer"
            print(f"peer: MLServer 1.7.1, adaptive batching {'on' if batching else 'off'}",
                  flush=True)

            def peer(key: str = key, batching: bool = batching) -> None:
                with peer_server(args.server_cores, out / "logs", model, batching) as target:
                    checks[key] = peer_check(target, out / "peer.bin", str(model))
                    peer_sweeps(target, key, out, args, res)

            guarded(key, peer)
    if args.skip_triton:
        res["skipped"].append("PyTriton 0.7.0: left out by --skip-triton")
    elif not launch.triton_available():
        res["skipped"].append("PyTriton 0.7.0: no `.venv-triton` "
                              "(make it with `bash loadtest/peer/setup_triton.sh`)")
    else:
        print(f"peer: PyTriton 0.7.0, dynamic batching (max_batch_size {TRITON_MAX_BATCH}, "
              f"max_queue_delay {TRITON_QUEUE_DELAY_US} µs)", flush=True)

        def triton() -> None:
            with triton_server(args.server_cores, out / "logs", model, TRITON_MAX_BATCH,
                               TRITON_QUEUE_DELAY_US) as target:
                checks["triton"] = peer_check(target, out / "peer.bin", str(model))
                peer_sweeps(target, "triton", out, args, res)

        guarded("triton", triton)
    res["meta"]["triton_batcher"] = {"max_batch_size": TRITON_MAX_BATCH,
                                     "max_queue_delay_us": TRITON_QUEUE_DELAY_US}
    for name, check in checks.items():
        print(f"  {name}: conversion {check['conversion']:.6f}, in process "
              f"{check['in_process']:.6f}", flush=True)


def _cores(spec: str | None) -> set[int]:
    return {int(c) for c in spec.split(",")} if spec else set(range(os.cpu_count() or 1))


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "server_cores": args.server_cores, "client_cores": args.client_cores,
            "duration_s": args.duration, "warmup_s": args.warmup, "threads": args.threads,
            "rounds": args.rounds,
            "open_deadline_ms": OPEN_DEADLINE_S * 1000, "load_before": os.getloadavg(),
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "command": "python -m loadtest.bench " + " ".join(sys.argv[1:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--model", default="",
                        help="ONNX file or folder, as the server's --model-path; default the "
                             "shipped model (its int8 variant when its parity gate passed)")
    parser.add_argument("--model-float32", action="store_true",
                        help="serve (and measure the floors and peers with) float32, as the "
                             "server's flag")
    parser.add_argument("--steps", type=int, default=32, help="touchpoints per journey")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime intra-op threads for floor A (the server's default)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--rounds", type=int, default=2,
                        help="closed-loop sweeps per target; each level keeps its best round")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds per point")
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--locust-seconds", type=float, default=10.0)
    parser.add_argument("--locust-rate", type=float, default=200.0, help="Locust tasks/s")
    parser.add_argument("--skip-peer", action="store_true", help="leave out MLServer")
    parser.add_argument("--skip-triton", action="store_true", help="leave out PyTriton")
    parser.add_argument("--peers-only", action="store_true",
                        help="floors, attribid (1 worker, both mixes) and the peers; leave out "
                             "the other attribid variants (no spinners, reject, batching off, "
                             "2 workers)")
    parser.add_argument("--nice", type=int, default=0,
                        help="scheduling niceness for this run and every process it starts "
                             "(negative needs root; keeps other work on the machine from "
                             "skewing the figures)")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild the docs from --out/results.json")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    if args.render_only:
        results = orjson.loads(results_path.read_bytes())
    else:
        results = run_all(args, args.out)
        results_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    summary = report.render(results, args.docs / "performance.md", args.docs / "performance.png")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

