"""retrain the shipped model from its fixed seed

``attribid train-shipped [--out DIR --journeys N --seed S]`` simulates a mix of
every world (equal shares, seeds derived from S), trains the network on it
exactly as ``attribid train`` would, scores it on fresh simulated journeys of
each world against their true credit, and writes ``DIR/attribid.onnx`` and
``DIR/attribid.json`` (default: the package's models/shipped/), then its int8
variant ``DIR/attribid.int8.onnx`` and ``.int8.json`` with the parity gate measured
on those check journeys (``attribid quantize`` redoes only this step). The defaults
reproduce the committed model (attribid.models.network.shipped).

``--per-world DIR`` instead trains one network per world on that world's
journeys only (``DIR/<world>/attribid.onnx``): what a user gets by training on
their own market's data, and what ``attribid evaluate --world-models DIR`` scores.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attribid.cli import OK, CommandError, progress
from attribid.cli.train import add_config_arguments, config_from_args, require_train_extra
from attribid.models.network.shipped import (SHIPPED_CONFIG, SHIPPED_JOURNEYS, SHIPPED_SEED,
                                             shipped_dir, train_on_worlds)
from attribid.models.simulation.simulate import WORLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output directory (default: models/shipped)")
    parser.add_argument("--journeys", type=int, default=SHIPPED_JOURNEYS,
                        help="simulated training journeys (split equally over the worlds)")
    parser.add_argument("--per-world", default=None,
                        help="train one model per world into DIR/<world>/ instead")
    parser.add_argument("--worlds", default=",".join(WORLDS),
                        help="with --per-world: comma-separated worlds (default: all)")
    add_config_arguments(parser)
    parser.set_defaults(seed=SHIPPED_SEED, **SHIPPED_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Simulate, train, check against truth, export; returns the exit code."""
    config = config_from_args(args)
    if args.journeys < 100:
        raise CommandError(f"--journeys: must be >= 100, got {args.journeys}")
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = [w for w in worlds if w not in WORLDS]
    if args.per_world and (unknown or not worlds):
        raise CommandError(f"--worlds: unknown {unknown} (choose from {', '.join(WORLDS)})")
    require_train_extra()
    if args.per_world:
        for name in worlds:
            train_on_worlds(config, [name], args.journeys, Path(args.per_world) / name,
                            f"attribid-net-1+sim-{name}-seed{config.seed}", log=progress)
        return OK
    out = Path(args.out) if args.out else shipped_dir()
    train_on_worlds(config, list(WORLDS), args.journeys, out,
                    f"attribid-net-1+sim-mix-seed{config.seed}", log=progress)
    return OK
