"""docs/performance.md and its latency-vs-throughput PNG, from the benchmark's results.json.

    .venv/bin/python -m loadtest.bench --render-only   # rebuild from runs/bench/results.json
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

#: what the capability asks for, checked against each run
P99_BUDGET_MS = 10.0
#: concurrency 1: attribid p50 at most floor A+B's p50 + this ...
C1_OVERHEAD_MS = 0.3
#: ... and at most this times the float32 network's own forward pass at batch 1
C1_FLOAT32_FACTOR = 1.5
#: saturation: at least this share of the one-core ceiling, with the model it serves
SAT_SHARE = 0.9
#: saturation throughput at equal or lower p99: at least this times MLServer's ...
PEER_FACTOR = 3.0
#: ... and this times PyTriton's
TRITON_FACTOR = 1.0
#: the peers as the results name them: (result keys of its configurations, label)
PEERS = {"mlserver": (("peer", "peer_batching"), "MLServer 1.7.1"),
         "triton": (("triton",), "PyTriton 0.7.0")}
#: journey mixes: (suffix of their result keys, label)
MIXES = (("", "fixed"), ("_mix", "Locust mix"))
#: the open-loop deadline each call carries (loadtest.bench.OPEN_DEADLINE_S)
OPEN_DEADLINE_MS = 100.0
#: "bounded" at 2x saturation: admitted calls answered within the deadline, give or take
#: the load generator's own delay in taking up a reply (an answer after the client's
#: deadline cannot be received at all) ...
DEADLINE_SLACK = 1.05
#: ... while the network still answers at least this share of the saturation throughput
#: (shedding that answers everything with the fallback would bound latency trivially)
GOODPUT_SHARE = 0.5


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return max(rows, key=lambda r: r["throughput"])


def figures(res: dict[str, Any]) -> dict[str, Any]:
    """The headline figures and checks derived from one run's results."""
    fa = res["floor_a"]
    fa1 = next(r for r in fa if r["batch"] == 1)["median_ms"]
    fa_best = max(fa, key=lambda r: r["journeys_per_s"])
    fb1 = next(r for r in res["floor_b"] if r["level"] == 1)
    at1 = next(r for r in res["attribid"] if r["level"] == 1)
    fb_sat, at_sat = _best(res["floor_b"]), _best(res["attribid"])
    fig: dict[str, Any] = {
        "floor_a_b1_ms": fa1, "floor_a_best": fa_best, "floor_b_c1_p50": fb1["p50"],
        "floor_b_sat": fb_sat["throughput"], "attribid_c1_p50": at1["p50"],
        "attribid_c1_p99": at1["p99"], "attribid_sat": at_sat["throughput"],
        "attribid_sat_p99": at_sat["p99"],
    }
    fig["c1_overhead"] = at1["p50"] - fa1 - fb1["p50"]
    lower = min(fa_best["journeys_per_s"], fb_sat["throughput"])
    fig["sat_share"] = at_sat["throughput"] / lower
    # Each floor had a core to itself for half the work; one core doing both halves
    # at floor cost serves at most this many calls per second.
    fig["serial_ceiling"] = 1.0 / (1.0 / fa_best["journeys_per_s"] + 1.0 / fb_sat["throughput"])
    fig["sat_share_serial"] = at_sat["throughput"] / fig["serial_ceiling"]
    for key in ("floor_ab", "floor_ab_spin", "no_spin"):
        one = next((r for r in res.get(key, []) if r["level"] == 1), None)
        fig[f"{key}_c1_p50"] = one["p50"] if one else None
    if res.get("floor_ab"):
        fig["floor_ab_sat"] = _best(res["floor_ab"])["throughput"]
    fig["c1_limit"] = (fig["floor_ab_c1_p50"] + C1_OVERHEAD_MS
                       if fig.get("floor_ab_c1_p50") is not None else None)
    open70 = next((r for r in res.get("open", []) if r["fraction"] == 0.7), None)
    fig["open70_p99"] = open70["p99"] if open70 else None
    for key, rows in (("open2x", res.get("open", [])), ("reject2x", res.get("open_reject", []))):
        r = next((r for r in rows if r["fraction"] == 2.0), None)
        fig[f"{key}_p99_admitted"] = r.get("p99_admitted") if r else None
        fig[f"{key}_p99_admitted_send"] = r.get("p99_admitted_from_send") if r else None
        fig[f"{key}_admitted_per_s"] = r.get("admitted", 0) / r["duration_s"] if r else None
        fig[f"{key}_sent_per_s"] = r["sent"] / r["duration_s"] if r else None
    fig["peers"] = {}
    for suffix, _ in MIXES:
        for peer, (keys, _label) in PEERS.items():
            cmp = peer_comparison(res, keys, suffix)
            if cmp:
                fig["peers"][peer + suffix] = cmp
    if "mlserver" in fig["peers"]:
        cmp = fig["peers"]["mlserver"]
        fig["peer_sat"], fig["peer_sat_p99"] = cmp["sat"], cmp["sat_p99"]
        fig["peer_sat_target"], fig["attribid_at_peer_p99"] = cmp["target"], cmp["attribid_at_p99"]
        fig["peer_ratio"], fig["peer_c1_p50"] = cmp["ratio"], cmp["c1_p50"]
    open70_mix = next((r for r in res.get("open_mix", []) if r["fraction"] == 0.7), None)
    fig["open70_mix_p99"] = open70_mix["p99"] if open70_mix else None
    f32 = res.get("floor_a_float32") or (
        res["floor_a"] if res.get("meta", {}).get("model", {}).get("precision") == "float32"
        else None)
    fig["floor_a_f32_b1_ms"] = (next(r for r in f32 if r["batch"] == 1)["median_ms"]
                                if f32 else None)
    if res.get("workers2"):
        fig["workers_ratio"] = _best(res["workers2"])["throughput"] / at_sat["throughput"]
    if res.get("no_batching"):
        nb = {r["level"]: r for r in res["no_batching"]}
        at = {r["level"]: r for r in res["attribid"]}
        if 32 in nb and 32 in at:
            fig["batching_gain_c32"] = at[32]["throughput"] / nb[32]["throughput"]
        if 1 in nb and 1 in at and nb[1]["p99"]:
            fig["batching_p99_c1"] = at[1]["p99"] / nb[1]["p99"]
    return fig


def peer_comparison(res: dict[str, Any], keys: tuple[str, ...],
                    suffix: str = "") -> dict[str, Any] | None:
    """A peer against attribid on one mix: the peer's best closed-loop point over ``keys``
    (its configurations), and the most attribid throughput at a p99 no higher than that
    point's; None when the peer did not run on that mix.

    >>> pt = lambda c, t, p99: {"level": c, "throughput": t, "p50": p99 / 2, "p99": p99,
    ...                         "target": "x"}
    >>> res = {"attribid": [pt(1, 300, 3.0), pt(32, 900, 40.0)],
    ...        "triton": [pt(1, 200, 6.0), pt(32, 400, 90.0)]}
    >>> cmp = peer_comparison(res, ("triton",))
    >>> cmp["sat"], cmp["attribid_at_p99"], round(cmp["ratio"], 2)
    (400, 900, 2.25)
    """
    rows = [r for key in keys for r in res.get(key + suffix, [])]
    if not rows or not res.get("attribid" + suffix):
        return None
    sat = _best(rows)
    eligible = [r["throughput"] for r in res["attribid" + suffix]
                if r["p99"] is not None and sat["p99"] is not None and r["p99"] <= sat["p99"]]
    at_p99 = max(eligible, default=0.0)
    ones = [r["p50"] for r in rows if r["level"] == 1 and r["p50"] is not None]
    return {"sat": sat["throughput"], "sat_p99": sat["p99"], "target": sat["target"],
            "sat_level": sat["level"], "attribid_at_p99": at_p99,
            "ratio": at_p99 / sat["throughput"] if sat["throughput"] else float("nan"),
            "sat_ratio": _best(res["attribid" + suffix])["throughput"] / sat["throughput"]
            if sat["throughput"] else float("nan"),
            "c1_p50": min(ones) if ones else None}


def checks(fig: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(what is asked, what was measured, met?) for each target of the capability."""
    ab = ""
    if fig.get("floor_ab_c1_p50") is not None:
        ab = (f"; floor A+B (echo server running the forward pass, nothing else) measured "
              f"{_f(fig['floor_ab_c1_p50'])} ms, {_f(fig.get('floor_ab_spin_c1_p50'))} ms with "
              "idle spinners")
    if fig.get("no_spin_c1_p50") is not None:
        ab += f"; attribid without `--spin-idle` {_f(fig['no_spin_c1_p50'])} ms"
    shed, verdicts = [], []
    for key, label in (("open2x", "fallback shedding"), ("reject2x", "`--shed-with reject`")):
        if fig.get(f"{key}_sent_per_s") is None:
            continue
        p99s, goodput = fig.get(f"{key}_p99_admitted_send"), fig[f"{key}_admitted_per_s"]
        shed.append(f"{label}: p99 {_f(fig[f'{key}_p99_admitted'], 1)} ms from scheduled "
                    f"arrival, {_f(p99s, 1)} ms from send; {goodput:.0f}/s answered by the "
                    f"network of {fig[f'{key}_sent_per_s']:.0f}/s sent")
        if p99s is not None and not math.isnan(p99s):
            verdicts.append(p99s <= DEADLINE_SLACK * OPEN_DEADLINE_MS
                            and goodput >= GOODPUT_SHARE * fig["attribid_sat"])
    limit = fig.get("c1_limit")
    out: list[tuple[str, str, bool | None]] = [
        (f"concurrency 1 p50 <= floor A+B's p50 (the served model) + {C1_OVERHEAD_MS} ms",
         f"{_f(fig['attribid_c1_p50'])} ms vs limit {_f(limit)} ms "
         f"(attribid adds {_f(fig['c1_overhead'])} ms over floor A batch 1 + floor B p50{ab})",
         None if limit is None else fig["attribid_c1_p50"] <= limit),
        (f"saturation >= {SAT_SHARE:.0%} of the one-core ceiling "
         "1/(1/floor A best + 1/floor B saturation), with the model it serves",
         f"{fig['attribid_sat']:.0f}/s = {fig['sat_share_serial']:.0%} of "
         f"{fig['serial_ceiling']:.0f}/s, what one core doing both floors' work at floor cost "
         f"could serve; {fig['sat_share']:.0%} of the lower floor",
         fig["sat_share_serial"] >= SAT_SHARE),
        (f"p99 < {P99_BUDGET_MS:.0f} ms at 70 % of saturation (open loop), "
         "fixed-length journeys",
         f"{_f(fig['open70_p99'])} ms", None if fig["open70_p99"] is None
         else fig["open70_p99"] < P99_BUDGET_MS),
        (f"bounded p99 of admitted calls at 2x saturation: calls answered by the network "
         f"finish within the {OPEN_DEADLINE_MS:.0f} ms deadline (p99 from send, "
         f"{DEADLINE_SLACK - 1:.0%} slack for the generator) while the network still answers "
         f">= {GOODPUT_SHARE:.0%} of saturation",
         "; ".join(shed) or "n/a", any(verdicts) if verdicts else None),
    ]
    if "mlserver" in fig["peers"]:
        out.append(_peer_check(fig["peers"]["mlserver"], "MLServer", PEER_FACTOR, "fixed"))
    if fig.get("floor_a_f32_b1_ms"):
        limit32 = C1_FLOAT32_FACTOR * fig["floor_a_f32_b1_ms"]
        out.append((f"concurrency 1 p50 <= {C1_FLOAT32_FACTOR}x the float32 network's "
                    "in-process forward pass at batch 1",
                    f"{_f(fig['attribid_c1_p50'])} ms vs limit {_f(limit32)} ms "
                    f"({fig['attribid_c1_p50'] / fig['floor_a_f32_b1_ms']:.2f}x "
                    f"{_f(fig['floor_a_f32_b1_ms'])} ms)",
                    fig["attribid_c1_p50"] <= limit32))
    if fig.get("open70_mix_p99") is not None:
        out.append((f"p99 < {P99_BUDGET_MS:.0f} ms at 70 % of saturation (open loop), "
                    "Locust mix", f"{_f(fig['open70_mix_p99'])} ms",
                    fig["open70_mix_p99"] < P99_BUDGET_MS))
    if "mlserver_mix" in fig["peers"]:
        out.append(_peer_check(fig["peers"]["mlserver_mix"], "MLServer", PEER_FACTOR,
                               "Locust mix"))
    for key, mix in (("triton", "fixed"), ("triton_mix", "Locust mix")):
        if key in fig["peers"]:
            out.append(_peer_check(fig["peers"][key], "PyTriton", TRITON_FACTOR, mix))
    return out


def _peer_check(cmp: dict[str, Any], name: str, factor: float,
                mix: str) -> tuple[str, str, bool | None]:
    return (f">= {factor:.0f}x {name}'s saturation throughput at equal or lower p99, {mix}",
            f"{cmp['ratio']:.2f}x ({cmp['attribid_at_p99']:.0f}/s vs {cmp['sat']:.0f}/s at "
            f"p99 <= {_f(cmp['sat_p99'], 1)} ms, {cmp['target']} at concurrency "
            f"{cmp['sat_level']:.0f})", cmp["ratio"] >= factor)


def _table(rows: list[dict[str, Any]], level_name: str) -> list[str]:
    per_call = any(r.get("cpu_ms_per_call_main") is not None for r in rows)
    extra = " CPU ms/call: main thread | other threads |" if per_call else ""
    lines = [f"| {level_name} | ok/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | "
             "server CPU | client CPU | mean batch |" + extra,
             "|" + "---|" * (12 if per_call else 10)]
    for r in rows:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        tail = (f" {_f(r.get('cpu_ms_per_call_main'))} | {_f(r.get('cpu_ms_per_call_other'))} |"
                if per_call else "")
        lines.append(f"| {r['level']:.0f} | {r['throughput']:.0f} | {_f(r['p50'])} | "
                     f"{_f(r['p90'])} | {_f(r['p99'])} | {_f(r['p999'])} | {errors} | "
                     f"{r['server_cpu']:.2f} | {r['client_cpu']:.2f} | "
                     f"{_f(r.get('mean_batch'), 1)} |" + tail)
    return lines


def _open_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| x saturation | offered/s | ok/s | p50 ms | p90 ms | p99 ms | fallback | "
             "network answers/s | their p99 ms | "
             "errors | dropped by generator | send lag p99 ms | p99 from send ms | server CPU | "
             "client CPU | mean batch |", "|" + "---|" * 16]
    for r in rows:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        fb = r["fallback"] / r["ok"] if r["ok"] else 0.0
        lines.append(f"| {r['fraction']:.2f} | {r['level']:.0f} | {r['throughput']:.0f} | "
                     f"{_f(r['p50'])} | {_f(r['p90'])} | {_f(r['p99'])} | {fb:.1%} | "
                     f"{r.get('admitted', 0) / r['duration_s']:.0f} | "
                     f"{_f(r.get('p99_admitted'))} | {errors} | "
                     f"{r['dropped']} | {_f(r.get('send_lag_p99'))} | "
                     f"{_f(r.get('p99_from_send'))} | "
                     f"{r['server_cpu']:.2f} | {r['client_cpu']:.2f} | "
                     f"{_f(r.get('mean_batch'), 1)} |")
    return lines


#: the rows of the side-by-side tables: (closed-loop key, open-loop key, label)
SIDE_BY_SIDE = (("floor_ab", "", "floor A+B: echo server + forward pass (batch 1)"),
                ("attribid", "open", "attribid, 1 worker, --spin-idle"),
                ("peer", "peer_open", "MLServer 1.7.1, adaptive batching off"),
                ("peer_batching", "peer_batching_open", "MLServer 1.7.1, adaptive batching on"),
                ("triton", "triton_open", "PyTriton 0.7.0, dynamic batching"))


def _model_line(meta: dict[str, Any]) -> list[str]:
    model = meta.get("model")
    if not model:
        return []
    return ["", f"Model served by attribid and run by the floors and both peers: "
                f"`{Path(model['path']).name}` ({model['precision']}, version "
                f"`{model['version']}`)."]


def _journey_lines(meta: dict[str, Any]) -> list[str]:
    mixes = meta.get("mixes")
    if not mixes:
        return [f"- Journeys of {meta['steps']} touchpoints from `loadtest/journeys.py` "
                f"(seeded, {meta['journeys']} distinct requests, "
                f"{meta['score_request_bytes']:.0f} bytes each on the wire), sent round robin."]
    fixed, mix = mixes["fixed"], mixes.get("mix")
    lines = [f"- Two mixes of journeys from `loadtest/journeys.py` (seeded, {meta['journeys']} "
             "distinct requests each, sent round robin): all of "
             f"{meta['steps']} touchpoints ({fixed['score_request_bytes']:.0f} bytes a Score "
             "request on the wire)"]
    if mix:
        lines[0] += (f", and the Locust mix (`draw_lengths`: {mix['min_touchpoints']}-"
                     f"{mix['max_touchpoints']} touchpoints, mean {mix['mean_touchpoints']:.1f}; "
                     f"{mix['score_request_bytes']:.0f} bytes a request on average)")
    return [lines[0] + "."]


def side_by_side(res: dict[str, Any], fig: dict[str, Any]) -> list[str]:
    """Per mix, one row per server: c=1, saturation, and p99 at 70 % of its own saturation."""
    lines = ["", "## Side by side: the floor, attribid and the peers", "",
             "Every server on the same core, driven by the same load generator with the same "
             "journeys. c=1: closed loop, one call in flight. Saturation: the best point of "
             "the closed-loop sweep. Open loop: Poisson arrivals at 70 % of that server's own "
             f"saturation on the same mix, {res['meta']['open_deadline_ms']:.0f} ms deadline, "
             "latency from each call's scheduled arrival. Errors: gRPC status codes over every "
             "point of the row."]
    for suffix, mix in MIXES:
        if not res.get("attribid" + suffix):
            continue
        lines += ["", f"{mix[0].upper() + mix[1:]} journeys:", "",
                  "| server | c=1 p50 ms | c=1 p99 ms | saturation calls/s | at concurrency | "
                  "p99 at saturation ms | server CPU there | open loop 70 %: offered/s | "
                  "p99 ms | errors |", "|" + "---|" * 10]
        for closed, open_key, label in SIDE_BY_SIDE:
            rows = res.get(closed + suffix)
            if not rows:
                continue
            one = next((r for r in rows if r["level"] == 1), None)
            sat = _best(rows)
            open70 = next((r for r in res.get(open_key + suffix, []) if open_key
                           and r["fraction"] == 0.7), None)
            errors: dict[str, int] = {}
            for r in rows + ([open70] if open70 else []):
                for code, n in r["errors"].items():
                    errors[code] = errors.get(code, 0) + n
            offered = f"{open70['level']:.0f}" if open70 else "n/a"
            codes = ", ".join(f"{k} {v}" for k, v in errors.items()) or "0"
            lines.append(
                f"| {label} | {_f(one['p50'] if one else None)} | "
                f"{_f(one['p99'] if one else None)} | {sat['throughput']:.0f} | "
                f"{sat['level']:.0f} | {_f(sat['p99'])} | {sat['server_cpu']:.2f} | "
                f"{offered} | {_f(open70['p99'] if open70 else None)} | {codes} |")
        for peer, (_keys, label) in PEERS.items():
            cmp = fig["peers"].get(peer + suffix)
            if cmp:
                lines += ["", f"attribid / {label}: {cmp['sat_ratio']:.2f}x its saturation "
                          f"throughput; {cmp['ratio']:.2f}x at equal or lower p99 "
                          f"({cmp['attribid_at_p99']:.0f}/s at p99 <= "
                          f"{_f(cmp['sat_p99'], 1)} ms against {cmp['sat']:.0f}/s)."]
    if res.get("skipped"):
        lines += ["", "Not measured in this run: " + "; ".join(res["skipped"]) + "."]
    return lines


def peer_sections(res: dict[str, Any]) -> list[str]:
    """Each peer's closed-loop sweep and open-loop point per mix, and how the peers ran."""
    meta = res["meta"]
    titles = {"peer": "MLServer 1.7.1, custom runtime, adaptive batching off",
              "peer_batching": "MLServer 1.7.1, adaptive batching on (max_batch_size 32, "
                               "max_batch_time 2 ms)",
              "triton": "PyTriton 0.7.0, Triton's dynamic batcher"}
    lines: list[str] = []
    for key, title in titles.items():
        for suffix, mix in MIXES:
            if not res.get(key + suffix):
                continue
            lines += ["", f"## Peer: {title}, {mix} journeys", "",
                      *_table(res[key + suffix], "concurrency")]
            if res.get(f"{key}_open{suffix}"):
                lines += ["", "Open loop at 70 % of its own saturation above:", "",
                          *_peer_open_table(res[f"{key}_open{suffix}"])]
    if not any(res.get(k) for k in titles):
        return lines
    batcher = meta.get("triton_batcher", {})
    sizes = "; ".join(f"{mix}: {info['peer_request_bytes']:.0f} bytes" for mix, info in
                      meta.get("mixes", {}).items())
    lines += ["", "Both peers featurize with attribid's own featurizer and run the same ONNX "
              "file through `attribid.models.onnx.runtime` (the server's session options, 1 "
              "intra-op thread) in one session (`loadtest/peer/scoring.py`); they attribute "
              "and bid nothing, so they do less work per call than attribid. MLServer runs "
              "inference in the server process (`parallel_workers` 0, debug off). PyTriton "
              "runs Triton's C++ HTTP/gRPC front end (bound to 127.0.0.1) and hands each "
              "batch to the Python model function behind `@batch` over shared memory; its "
              "dynamic batcher takes up to "
              f"{batcher.get('max_batch_size', 'n/a')} requests a call, holding none for more "
              f"than {batcher.get('max_queue_delay_us', 'n/a')} µs. Requests are KServe v2 "
              "`ModelInfer` messages with raw tensor contents, one journey a request, padded "
              "to the longest journey of the mix with its `length`, so either batcher can "
              "stack any of them and a batch is featurized and run padded to its longest "
              f"journey, as attribid's one run is ({sizes or 'n/a'} a request). Their processes "
              "(for PyTriton: the model function, tritonserver and Triton's Python-backend "
              "stub) all run on the server's core and count in its CPU."]
    checks_ = res.get("peer_checks", {})
    if checks_:
        lines += ["", "Each peer's answer to the first request against the served model run "
                  "in process on the same journey: " + "; ".join(
                      f"{k}: conversion {c['conversion']:.6f} vs {c['in_process']:.6f}"
                      for k, c in checks_.items()) + "."]
    return lines


def _peer_open_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| x saturation | offered/s | ok/s | p50 ms | p90 ms | p99 ms | errors | "
             "dropped by generator | send lag p99 ms | p99 from send ms | server CPU | "
             "client CPU |", "|" + "---|" * 12]
    for r in rows:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        lines.append(f"| {r['fraction']:.2f} | {r['level']:.0f} | {r['throughput']:.0f} | "
                     f"{_f(r['p50'])} | {_f(r['p90'])} | {_f(r['p99'])} | {errors} | "
                     f"{r['dropped']} | {_f(r.get('send_lag_p99'))} | "
                     f"{_f(r.get('p99_from_send'))} | {r['server_cpu']:.2f} | "
                     f"{r['client_cpu']:.2f} |")
    return lines


def plot(res: dict[str, Any], path: Path) -> None:
    """p50 and p99 latency against achieved throughput, one line per target, one row per mix."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("floor_b", "floor B: echo server"),
              ("floor_ab", "floor A+B: echo server + forward pass"),
              ("attribid", "attribid, closed loop"),
              ("open", "attribid, open loop (Poisson)"), ("workers2", "attribid, 2 workers"),
              ("no_batching", "attribid, batching off"), ("peer", "MLServer"),
              ("peer_batching", "MLServer, adaptive batching"),
              ("triton", "PyTriton, dynamic batching")]
    mixes = [(suffix, label) for suffix, label in MIXES
             if res.get("attribid" + suffix)]
    fig, axes = plt.subplots(len(mixes), 2, figsize=(12, 4.6 * len(mixes) + 0.8),
                             sharey=True, squeeze=False)
    for row, (suffix, mix_label) in zip(axes, mixes):
        for ax, key in zip(row, ("p50", "p99")):
            for k, (name, label) in enumerate(series):
                rows = sorted(res.get(name + suffix, []), key=lambda r: r["level"])
                rows = [r for r in rows if r[key] is not None]
                if rows:
                    ax.plot([r["throughput"] for r in rows], [r[key] for r in rows], "o-",
                            label=label, color=f"C{k}")
            if res.get("floor_a") and not suffix:
                best = max(res["floor_a"], key=lambda r: r["journeys_per_s"])
                one = next(r for r in res["floor_a"] if r["batch"] == 1)
                ax.axvline(best["journeys_per_s"], color="grey", ls="--", lw=1,
                           label=f"floor A best: {best['journeys_per_s']:.0f} journeys/s")
                ax.axhline(one["median_ms"], color="grey", ls=":", lw=1,
                           label=f"floor A batch 1: {one['median_ms']:.2f} ms")
            ax.set_xlabel("successful calls per second")
            journeys = (f"{res['meta'].get('steps', 32)}-touchpoint journeys" if not suffix
                        else "journeys of the Locust mix (1-64)")
            ax.set_title(f"{key} latency vs throughput, {journeys}", fontsize=10)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        row[0].set_ylabel("latency, ms (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1 if len(mixes) == 1 else 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: a section another script measures and writes into the same page, kept as it is
_SECTION = re.compile(r"<!-- (loadtest\.[\w.]+): begin -->.*?<!-- \1: end -->", re.S)


def kept_sections(page: str) -> list[str]:
    """Every ``<!-- loadtest.NAME: begin -->`` ... ``end -->`` block of ``page``, in order
    (loadtest.interference, bench_state, bench_conversions and the like write their own).

    >>> kept_sections("x <!-- loadtest.a: begin -->\\nA\\n<!-- loadtest.a: end --> y")
    ['<!-- loadtest.a: begin -->\\nA\\n<!-- loadtest.a: end -->']
    """
    return [m.group(0) for m in _SECTION.finditer(page)]


def render(res: dict[str, Any], md_path: Path, png_path: Path) -> list[str]:
    """Write the report and the plot; return the summary lines printed to the terminal."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    plot(res, png_path)
    fig, meta = figures(res), res["meta"]
    checklist = checks(fig)
    fa_best = fig["floor_a_best"]
    lines = [
        "# Performance: attribid Score against its floors and its peers",
        "",
        f"Generated by `{meta['command'].strip()}` (from the repository root, with",
        "`.venv/bin/python`); every figure below comes from that run. Rebuild this page from the",
        "saved raw results with `.venv/bin/python -m loadtest.bench --render-only`.",
        "",
        f"Run {meta['started_utc']} to {meta.get('finished_utc', '?')} on {meta['cores']} cores "
        f"({meta['cpu']}), Python {meta['python']}. Load average before/after: "
        f"{', '.join(f'{x:.2f}' for x in meta['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in meta.get('load_after', []))} "
        "(other work on the machine shows up here).",
        *_model_line(meta),
        "",
        "## How the load was generated",
        "",
        *_journey_lines(meta),
        f"- Servers pinned to core(s) `{meta['server_cores']}`, the load generator to core(s) "
        f"`{meta['client_cores']}` (`taskset`); the 2-worker run leaves the server unpinned, so "
        "its workers share a core with the load generator. Every process of the run has "
        f"niceness {meta.get('nice', 0)}.",
        "- Load generator: `loadtest/driver.py`, one process, one uvloop event loop, grpc.aio, "
        "pre-serialized requests over 4 HTTP/2 connections, latency on the monotonic clock in ns.",
        "  Closed loop: N calls always in flight. Open loop: Poisson arrivals at a fixed rate, "
        "latency measured from each call's scheduled arrival (no coordinated omission), "
        f"deadline {meta['open_deadline_ms']:.0f} ms per call.",
        f"- Each point: {meta['warmup_s']} s unmeasured warm-up, then {meta['duration_s']} s "
        f"measured. Closed-loop sweeps run {meta.get('rounds', 1)} time(s) per target and each "
        "concurrency keeps its round with the most throughput (every target alike, as floor A "
        "keeps its best round): this machine's speed drifts by tens of percent from minute to "
        "minute. Open-loop points run once. CPU columns are cores busy (1.00 = one core) over the point, from /proc, "
        "leaving out attribid's idle spinners (they only fill idle time, at idle priority). "
        "For attribid, CPU ms per call splits the server's CPU between its main thread (the "
        "event loop: gRPC, validation, responses) and all other threads (inference, gRPC's "
        "own), divided by the calls the server counted.",
        "- The load generator is Python too: where its CPU column nears 1.00 it, not the "
        "server, is the limit of that point.",
        "",
        "## What the capability asks, and what this run shows",
        "",
        "Saturation is the highest throughput of the closed-loop sweep (concurrency 1 to 128) "
        "with the same load generator; the open-loop rates are fractions of attribid's. A "
        "peer comparison takes the peer's best point (MLServer: either batching setting) on "
        "the same journeys and the most attribid throughput with a p99 no higher than that "
        "point's.",
        "",
        "| asked | measured | met |",
        "|---|---|---|",
        *[f"| {a} | {m} | {'yes' if ok else 'no' if ok is not None else 'n/a'} |"
          for a, m, ok in checklist],
        *side_by_side(res, fig),
        "",
        "## Ratios",
        "",
        "| ratio | value |",
        "|---|---|",
        f"| attribid c=1 p50 / floor A batch 1 | {fig['attribid_c1_p50'] / fig['floor_a_b1_ms']:.2f} |",
        f"| attribid c=1 p50 - (floor A batch 1 + floor B c=1 p50), ms | {fig['c1_overhead']:.3f} |",
        f"| attribid saturation / floor A best ({fa_best['journeys_per_s']:.0f}/s at batch "
        f"{fa_best['batch']}) | {fig['attribid_sat'] / fa_best['journeys_per_s']:.2f} |",
        f"| attribid saturation / floor B saturation | {fig['attribid_sat'] / fig['floor_b_sat']:.2f} |",
        f"| attribid saturation / one-core ceiling 1/(1/floor A best + 1/floor B saturation) = "
        f"{fig['serial_ceiling']:.0f}/s | {fig['sat_share_serial']:.2f} |",
    ]
    if fig.get("floor_ab_spin_c1_p50") is not None:
        lines.append(f"| attribid c=1 p50 / floor A+B c=1 p50, both with idle spinners | "
                     f"{fig['attribid_c1_p50'] / fig['floor_ab_spin_c1_p50']:.2f} |")
    if fig.get("floor_ab_c1_p50") is not None and fig.get("no_spin_c1_p50") is not None:
        lines.append(f"| attribid c=1 p50 / floor A+B c=1 p50, both without | "
                     f"{fig['no_spin_c1_p50'] / fig['floor_ab_c1_p50']:.2f} |")
    if fig.get("floor_ab_sat"):
        lines.append(f"| attribid saturation / floor A+B saturation (no batching) | "
                     f"{fig['attribid_sat'] / fig['floor_ab_sat']:.2f} |")
    if fig.get("no_spin_c1_p50") is not None:
        lines.append(f"| attribid c=1 p50 with / without --spin-idle | "
                     f"{fig['attribid_c1_p50'] / fig['no_spin_c1_p50']:.2f} |")
    for suffix, mix in MIXES:
        at1 = next((r for r in res.get("attribid" + suffix, []) if r["level"] == 1), None)
        for peer, (_keys, label) in PEERS.items():
            cmp = fig["peers"].get(peer + suffix)
            if not cmp:
                continue
            lines += [f"| {mix}: attribid saturation / {label} saturation ({cmp['target']}) | "
                      f"{cmp['sat_ratio']:.2f} |",
                      f"| {mix}: attribid throughput at p99 <= {label}'s p99 at its saturation "
                      f"/ {label} saturation | {cmp['ratio']:.2f} |"]
            if cmp.get("c1_p50") and at1 and at1["p50"]:
                lines.append(f"| {mix}: {label} c=1 p50 / attribid c=1 p50 | "
                             f"{cmp['c1_p50'] / at1['p50']:.2f} |")
    if "workers_ratio" in fig:
        lines.append(f"| 2 workers / 1 worker, best throughput | {fig['workers_ratio']:.2f} |")
    if "batching_gain_c32" in fig:
        lines.append(f"| batching on / off, throughput at c=32 | {fig['batching_gain_c32']:.2f} |")
    if "batching_p99_c1" in fig:
        lines.append(f"| batching on / off, p99 at c=1 (low load) | {fig['batching_p99_c1']:.2f} |")
    lines += ["", "![latency vs throughput](performance.png)", "",
              "## Floor A: in-process onnxruntime (`session.run` only, features ready)", "",
              f"Same model, same journeys, {meta['threads']} intra-op thread(s), pinned to the "
              "server's core. Batch sizes take turns over 5 rounds; each row is its best "
              "round (median and p99 of that round), so a burst of other work spoils a round, "
              "not the floor.", "",
              "| batch | median ms | p99 ms | journeys/s |", "|---|---|---|---|"]
    lines += [f"| {r['batch']} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['journeys_per_s']:.0f} |" for r in res["floor_a"]]
    sections = [("floor_b", "Floor B: bare grpc.aio + uvloop echo server (closed loop)"),
                ("floor_ab", "Floor A+B: the echo server running the forward pass (batch 1, "
                             "on its event loop) on every call"),
                ("floor_ab_spin", "Floor A+B with attribid's idle spinners"),
                ("attribid", "attribid Score, 1 worker, --spin-idle (closed loop)"),
                ("no_spin", "attribid Score, 1 worker, default flags (no idle spinners)"),
                ("no_batching", "attribid Score, 1 worker, --spin-idle, batching off: "
                                "--max-batch 1"),
                ("workers2", "attribid Score, --workers 2 --spin-idle (closed loop)")]
    for key, title in sections:
        if res.get(key):
            lines += ["", f"## {title}", "", *_table(res[key], "concurrency")]
        if key == "attribid" and res.get("attribid_mix"):
            lines += ["", "## attribid Score, 1 worker, --spin-idle, Locust mix (closed loop)",
                      "", *_table(res["attribid_mix"], "concurrency")]
        if key == "attribid" and res.get("open"):
            lines += ["", "## attribid Score, open loop (Poisson arrivals, 100 ms deadline)", "",
                      "Rates are fractions of the closed-loop saturation above. `fallback` is "
                      "the share of answers the server flagged as fallback (shed or out of time); "
                      "errors are gRPC status codes; p50-p99 are over answered calls, timed from "
                      "each call's scheduled arrival. `send lag` is how late the generator "
                      "itself sent calls: where it is large, the generator was the limit; "
                      "`p99 from send` leaves that lag out.", "",
                      *_open_table(res["open"])]
            if res.get("open_reject"):
                lines += ["", "The same, with `--shed-with reject` (a call that cannot start "
                          "inference before its deadline is refused with RESOURCE_EXHAUSTED "
                          "before it is read):", "", *_open_table(res["open_reject"])]
            if res.get("open_mix"):
                lines += ["", "The same server on the Locust mix, rates as fractions of its "
                          "closed-loop saturation on that mix:", "",
                          *_open_table(res["open_mix"])]
    if res.get("locust"):
        loc = res["locust"]
        lines += ["", "## Locust against attribid (1 worker)", "",
                  f"The documented headless command: {loc['users']} users, {loc['rate']:.0f} "
                  f"tasks/s for {loc['seconds']:.0f} s, Score : ScoreStream (16 pipelined "
                  "messages) : ReportOutcomes = 20 : 2 : 1, gevent-patched sync gRPC; Locust's "
                  f"exit code {loc['exit_code']} (0 = no failure). Latency at microsecond "
                  "resolution from its request events; Locust itself costs milliseconds per "
                  "call, so these are not the server's figures.", "",
                  "| request | count | failures | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms |",
                  "|" + "---|" * 8]
        lines += [f"| {r['name']} | {r['requests']} | {r['failures']} | {r['rps']:.1f} | "
                  f"{_f(r['p50'])} | {_f(r['p90'])} | {_f(r['p99'])} | {_f(r['p999'])} |"
                  for r in loc["rows"]]
    if res.get("h2load_echo") or res.get("h2load_attribid"):
        lines += ["", "## Cross-check with a C load generator (h2load)", "",
                  "nghttp2's `h2load` on the load generator's core, one 32-touchpoint message "
                  "repeated, `-c` connections x `-m` streams = concurrency. It cannot read gRPC "
                  "status trailers; the server's own call counters (`attribid_rpc_calls`) give "
                  "the status of every call it answered.", "",
                  "| target | concurrency | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | "
                  "server-side status |", "|" + "---|" * 8]
        for r in res.get("h2load_echo", []) + res.get("h2load_attribid", []):
            status = ", ".join(f"{k} {v:.0f}" for k, v in r.get("server_status", {}).items())
            lines.append(f"| {r['target']} | {r['level']:.0f} | {r['throughput']:.0f} | "
                         f"{_f(r['p50'])} | {_f(r['p90'])} | {_f(r['p99'])} | {_f(r['p999'])} | "
                         f"{status or 'n/a'} |")
        if res.get("h2load_echo") and res.get("h2load_attribid"):
            ratio = _best(res["h2load_attribid"])["throughput"] / _best(res["h2load_echo"])["throughput"]
            lines += ["", f"Under h2load, attribid's best throughput is {ratio:.2f} of the echo "
                      "server's."]
    lines += peer_sections(res)
    if res.get("failures"):
        lines += ["", "## Parts of this run that failed", "",
                  *[f"- {failure}" for failure in res["failures"]]]
    kept = "".join("\n" + block + "\n" for block in kept_sections(
        md_path.read_text() if md_path.exists() else ""))
    md_path.write_text("\n".join(lines) + "\n" + kept)
    return [f"{'met' if ok else 'NOT met' if ok is not None else 'n/a':>8}  {a}: {m}"
            for a, m, ok in checklist]
