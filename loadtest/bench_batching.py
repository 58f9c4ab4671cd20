"""Length-aware batching, measured in process: one run per batch against runs split by length.

    .venv/bin/python -m loadtest.bench_batching                # runs/bench_batching/
    .venv/bin/python -m loadtest.bench_batching --out docs     # its section of docs/performance.md

The served model (``--model-path``, default the shipped one) in one ``Scorer`` with the
server's session options, warmed and timed as the server does at start
(``Scorer.time_runs``: the cost model ``attribid.core.runs`` splits batches by). Batches of
2 to ``--max-batch`` journeys, with lengths drawn from the Locust mix
(``loadtest.journeys.draw_lengths``: mostly 2-8 touches, a tail to 64) and, apart, all of
32 touches. Each batch is scored both ways (one run padded to its longest journey; the
planned runs), alternating which goes first, ``--batches`` batches per mix; the figures are
the mean time per batch and journeys per second of inference-thread time, with the ratio.
The process is pinned to ``--cores`` (0).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson

from attribid.core.runs import ONE_RUN, plan_runs
from attribid.core.scoring import Scorer, _synthetic
from attribid.models.onnx.runtime import load_model
from loadtest import procs
from loadtest.bench_state import cpu_model, write_section
from loadtest.journeys import draw_lengths

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- loadtest.bench_batching: begin -->"
END = "<!-- loadtest.bench_batching: end -->"


def measure(scorer: Scorer, lengths: list[np.ndarray], now: float, seed: int) -> dict:
    """Score each batch of ``lengths`` in one run and in planned runs, alternating order."""
    rng = np.random.default_rng(seed)
    cost = scorer.run_cost
    one = planned = 0.0
    runs = 0
    for i, lens in enumerate(lengths):
        batch = [_synthetic(rng, scorer.n_channels, int(n), now) for n in lens]
        order = (ONE_RUN, cost) if i % 2 == 0 else (cost, ONE_RUN)
        for which in order:
            scorer.run_cost = which
            t0 = time.perf_counter()
            scorer.infer_batch(batch)
            took = time.perf_counter() - t0
            if which is ONE_RUN:
                one += took
            else:
                planned += took
        runs += len(plan_runs(lens, cost))
    scorer.run_cost = cost
    journeys = sum(len(lens) for lens in lengths)
    return {"batches": len(lengths), "journeys": journeys,
            "mean_touches": float(np.mean(np.concatenate(lengths))),
            "runs_per_batch": runs / len(lengths),
            "one_run_ms": one / len(lengths) * 1e3, "planned_ms": planned / len(lengths) * 1e3,
            "one_run_journeys_per_s": journeys / one, "planned_journeys_per_s": journeys / planned,
            "speedup": one / planned}


def table(results: dict) -> list[str]:
    lines = ["| journeys | batches | mean touches | runs a batch | one run, ms a batch | "
             "split by length, ms a batch | journeys/s one run | journeys/s split | speed-up |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['batches']} | {r['mean_touches']:.1f} | "
                     f"{r['runs_per_batch']:.2f} | {r['one_run_ms']:.3f} | {r['planned_ms']:.3f} | "
                     f"{r['one_run_journeys_per_s']:.0f} | {r['planned_journeys_per_s']:.0f} | "
                     f"{r['speedup']:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000, help="batches per journey mix")
    parser.add_argument("--max-batch", type=int, default=6, help="the server's --max-batch")
    parser.add_argument("--model-path", default=None, help="ONNX file (default: shipped)")
    parser.add_argument("--cores", default="0", help="cores to pin this process to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_batching",
                        help="folder for results.json and table.md; 'docs' = this script's "
                             "section of docs/performance.md")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.max_batch < 2:
        parser.error("--batches must be >= 1 and --max-batch >= 2")
    procs.pin_self(args.cores)
    now = time.time()
    load_before = os.getloadavg()
    scorer = Scorer(load_model(args.model_path), args.max_batch, 64)
    scorer.warm(now)
    rng = np.random.default_rng(args.seed)
    sizes = rng.integers(2, args.max_batch + 1, args.batches)
    mixes = {"Locust mix (1-64)": [draw_lengths(rng, int(b)) for b in sizes],
             "all 32 touches": [np.full(int(b), 32) for b in sizes]}
    results = {}
    for name, lengths in mixes.items():
        print(f"{name}: {len(lengths)} batches", file=sys.stderr, flush=True)
        results[name] = measure(scorer, lengths, now, args.seed + 1)
    cost = scorer.run_cost
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "model": scorer.model.info.version, "max_batch": args.max_batch,
            "run_cost": {"overhead_ms": cost.overhead * 1e3, "per_step_us": cost.per_step * 1e6,
                         "per_journey_step_us": cost.per_journey_step * 1e6},
            "load_before": load_before, "load_after": os.getloadavg()}
    text = "\n".join([
        BEGIN,
        "## Length-aware batching (in process)",
        "",
        "Measured by `python -m loadtest.bench_batching --out docs` (from the repository root, "
        "with `.venv/bin/python`); rerun it alone to refresh this section. " +
        " ".join((__doc__ or "").split("\n\n")[1:]).replace("\n", " ").strip(),
        "",
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), Python {meta['python']}, "
        f"model {meta['model']}, batches of 2-{args.max_batch}. The cost model fitted at "
        f"warm-up: {cost.overhead * 1e3:.3f} ms a run + {cost.per_step * 1e6:.2f} us a step + "
        f"{cost.per_journey_step * 1e6:.2f} us a journey-step. Load average before/after: "
        f"{', '.join(f'{v:.2f}' for v in load_before)} / "
        f"{', '.join(f'{v:.2f}' for v in meta['load_after'])}.",
        "",
        *table(results),
        END,
    ])
    if args.out == "docs":
        write_section(ROOT / "docs" / "performance.md", text, BEGIN, END)
        print("wrote its section of docs/performance.md", file=sys.stderr)
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_bytes(orjson.dumps({"meta": meta, "results": results},
                                                         option=orjson.OPT_INDENT_2))
        (out / "table.md").write_text(text + "\n")
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
