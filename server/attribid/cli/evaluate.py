"""score every attribution model against simulated ground truth

``attribid evaluate [--journeys N --seed S --out docs/ --model PATH --world-models DIR]``
simulates each world with a seed the shipped model never trained on, scores
the classic models and the network(s), and writes ``OUT/evaluation.md`` plus
the PNG plots it references. ``--world-models DIR`` adds, per world, the
network in ``DIR/<world>/attribid.onnx`` (trained on that world only, as a user
would train on their own journeys: ``attribid train-shipped --per-world DIR``).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from attribid.models.evaluation.evaluate import WorldResult, evaluate_world, serving_latency
from attribid.models.evaluation.report import write_report
from attribid.models.onnx.runtime import load_model
from attribid.models.simulation.simulate import WORLDS, simulate

SHIPPED = "network"
PER_WORLD = "network (this world)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journeys", type=int, default=20_000, help="journeys per world")
    parser.add_argument("--seed", type=int, default=2026, help="simulation seed")
    parser.add_argument("--out", default="docs", help="directory for evaluation.md and PNGs")
    parser.add_argument("--model", default=None, help="network to score (default: shipped)")
    parser.add_argument("--world-models", default=None,
                        help="directory with <world>/attribid.onnx trained per world")
    parser.add_argument("--worlds", default=",".join(WORLDS),
                        help="comma-separated worlds (default: all)")
    parser.add_argument("--latency-repeats", type=int, default=200,
                        help="calls timed for the serving latency figures")
    parser.add_argument("--fidelity-journeys", type=int, default=1500,
                        help="converting journeys per world checked against exact network Shapley")


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the report; returns the exit code.

    >>> # run(parser.parse_args(["--journeys", "2000", "--out", "/tmp/eval"]))
    """
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = [w for w in worlds if w not in WORLDS]
    if unknown or args.journeys < 100:
        print(f"attribid evaluate: --worlds: unknown {unknown}" if unknown else
              "attribid evaluate: --journeys must be >= 100", file=sys.stderr)
        return 2
    started = time.monotonic()
    results: list[WorldResult] = []
    for name in worlds:
        networks: dict[str, str | None] = {SHIPPED: args.model}
        if args.world_models:
            path = Path(args.world_models) / name / "attribid.onnx"
            if not path.is_file():
                print(f"attribid evaluate: --world-models: no {path}", file=sys.stderr)
                return 2
            networks[PER_WORLD] = str(path)
        t0 = time.monotonic()
        results.append(evaluate_world(WORLDS[name], args.journeys, args.seed, networks,
                                      args.fidelity_journeys))
        print(f"{name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    model = load_model(args.model)
    journeys, truth = simulate(WORLDS[worlds[0]], min(args.journeys, 5000), args.seed + 1)
    repeats = max(args.latency_repeats, 5)
    latency = {"batch 1 (ms per call)": serving_latency(model, journeys, truth, 1, repeats),
               "batch 64 (ms per call)": serving_latency(model, journeys, truth, 64, repeats)}
    latency["batch 64 (ms per journey)"] = latency["batch 64 (ms per call)"] / 64
    command = "attribid evaluate " + " ".join(shlex.quote(a) for a in _argv(args))
    write_report(Path(args.out), command, results, model, latency, journeys, truth,
                 seconds=time.monotonic() - started, world_models=args.world_models)
    print(f"wrote {Path(args.out) / 'evaluation.md'}", file=sys.stderr)
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    out = ["--journeys", str(args.journeys), "--seed", str(args.seed), "--out", str(args.out)]
    if args.model:
        out += ["--model", str(args.model)]
    if args.world_models:
        out += ["--world-models", str(args.world_models)]
    if args.worlds != ",".join(WORLDS):
        out += ["--worlds", args.worlds]
    if args.latency_repeats != 200:
        out += ["--latency-repeats", str(args.latency_repeats)]
    if args.fidelity_journeys != 1500:
        out += ["--fidelity-journeys", str(args.fidelity_journeys)]
    return out
