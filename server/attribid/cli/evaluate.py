"""score every attribution model against simulated ground truth

``attribid evaluate [--journeys N --seed S --out DIR --model PATH --world-models DIR]``
simulates each world with a seed the shipped model never trained on, scores
the classic models and the network(s), and writes ``OUT/evaluation.md`` plus
the PNG plots it references (``OUT`` is ``runs/`` unless given: the committed
report is regenerated with ``--out docs``, as its first line says). ``--world-models DIR`` adds, per world, the
network in ``DIR/<world>/attribid.onnx`` (trained on that world only, as a user
would train on their own journeys: ``attribid train-shipped --per-world DIR``).
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from attribid.cli import BAD_INPUT, OK, CommandError, errors_as, progress
from attribid.models.evaluation.suite import run_evaluation, world_model
from attribid.models.onnx.runtime import load_model
from attribid.models.simulation.simulate import WORLDS

#: flags whose defaults are left out of the regenerating command line the report quotes
DEFAULTS = {"worlds": ",".join(WORLDS), "latency_repeats": 200, "fidelity_journeys": 1500}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journeys", type=int, default=20_000, help="journeys per world")
    parser.add_argument("--seed", type=int, default=2026, help="simulation seed")
    parser.add_argument("--out", default="runs",
                        help="directory for evaluation.md and PNGs (default runs; docs holds "
                             "the committed report)")
    parser.add_argument("--model", default=None, help="network to score (default: shipped)")
    parser.add_argument("--world-models", default=None,
                        help="directory with <world>/attribid.onnx trained per world")
    parser.add_argument("--worlds", default=DEFAULTS["worlds"],
                        help="comma-separated worlds (default: all)")
    parser.add_argument("--latency-repeats", type=int, default=DEFAULTS["latency_repeats"],
                        help="calls timed for the serving latency figures")
    parser.add_argument("--fidelity-journeys", type=int, default=DEFAULTS["fidelity_journeys"],
                        help="converting journeys per world checked against exact network Shapley")


def run(args: argparse.Namespace) -> int:
    """Check the inputs, evaluate, write the report; returns the exit code."""
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = [w for w in worlds if w not in WORLDS]
    if unknown or not worlds:
        raise CommandError(f"--worlds: unknown {unknown} (choose from {', '.join(WORLDS)})")
    if args.journeys < 100:
        raise CommandError(f"--journeys: must be >= 100, got {args.journeys}")
    # every model is checked before the minutes of work start
    for name in worlds if args.world_models else []:
        if not world_model(args.world_models, name).is_file():
            raise CommandError(f"--world-models: no {world_model(args.world_models, name)}")
    with errors_as(BAD_INPUT, ValueError, OSError):
        load_model(args.model)
    command = "attribid evaluate " + " ".join(shlex.quote(a) for a in command_line(args))
    path = run_evaluation(Path(args.out), command, worlds, args.journeys, args.seed, args.model,
                          args.world_models, args.fidelity_journeys, args.latency_repeats,
                          log=progress)
    progress(f"wrote {path}")
    return OK


def command_line(args: argparse.Namespace) -> list[str]:
    """The flags that regenerate this run, defaults left out.

    >>> command_line(argparse.Namespace(journeys=600, seed=1, out="d", model=None,
    ...     world_models=None, worlds="recency", latency_repeats=200, fidelity_journeys=1500))
    ['--journeys', '600', '--seed', '1', '--out', 'd', '--worlds', 'recency']
    """
    out = ["--journeys", str(args.journeys), "--seed", str(args.seed), "--out", str(args.out)]
    if args.model:
        out += ["--model", str(args.model)]
    if args.world_models:
        out += ["--world-models", str(args.world_models)]
    for name, default in DEFAULTS.items():
        if getattr(args, name) != default:
            out += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return out
