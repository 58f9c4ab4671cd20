"""train the attribution network on journeys and export it to ONNX

``attribid train --touchpoints F --conversions F --out DIR [--epochs N --seed S --max-len 64]``
reads the journey files (attribid.models.data.loader's format), trains on CPU and
writes ``DIR/attribid.onnx`` and ``DIR/attribid.json``, then its int8 variant
``DIR/attribid.int8.onnx`` and ``.int8.json`` with the parity gate measured on the
held-out journeys (attribid.models.onnx.quantize). The same seed and data give
the same model. Every field of attribid.models.network.config.TrainConfig is a flag.
Training needs the train extra (PyTorch and onnx).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import time

import numpy as np

from attribid.cli import BAD_INPUT, FAILED, OK, CommandError, errors_as, progress
from attribid.models.data.journeys import Journeys
from attribid.models.data.loader import DataError, read_journeys
from attribid.models.network.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", required=True, help="touchpoints CSV (or Parquet)")
    parser.add_argument("--conversions", required=True, help="conversions CSV (or Parquet)")
    parser.add_argument("--out", required=True, help="directory for attribid.onnx and .json")
    parser.add_argument("--model-version", default="", help="version string (default: derived)")
    add_config_arguments(parser)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field: its default and its ``metadata["help"]``.

    >>> p = argparse.ArgumentParser(); add_config_arguments(p)
    >>> p.parse_args(["--epochs", "2"]).epochs, p.parse_args([]).learning_rate
    (2, 0.002)
    """
    for f in dataclasses.fields(TrainConfig):
        # argparse %-formats help; the default is filled in by argparse itself
        text = f.metadata["help"].replace("%", "%%")
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                            default=f.default, help=f"{text} (default %(default)s)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig named by parsed flags; a bad value is reported by its flag.

    >>> defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    >>> config_from_args(argparse.Namespace(**defaults)) == TrainConfig()
    True
    >>> config_from_args(argparse.Namespace(**{**defaults, "batch_size": 0}))
    Traceback (most recent call last):
    attribid.cli.CommandError: --batch-size: must be >= 1
    """
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**values)
    except ValueError as exc:
        name, sep, rest = str(exc).partition(":")
        flag = "--" + name.replace("_", "-") if sep and name in values else name
        raise CommandError(f"{flag}{sep}{rest}") from None


def require_train_extra() -> None:
    """Fail (exit 1) before any work when PyTorch or onnx is not installed."""
    missing = [name for name in ("torch", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(f"needs {' and '.join(missing)}: pip install 'attribid[train]'", FAILED)


def run(args: argparse.Namespace) -> int:
    """Load, train, export; returns the exit code (bad input raises CommandError)."""
    config = config_from_args(args)
    with errors_as(BAD_INPUT, DataError, OSError):
        loaded = read_journeys(args.touchpoints, args.conversions)
    for issue in loaded.issues:
        progress(f"attribid: {issue}")
    journeys = loaded.journeys
    require_train_extra()
    progress(f"read {journeys.n_journeys:,} journeys ({journeys.n_touchpoints:,} touchpoints, "
             f"{int(journeys.converted.sum()):,} conversions); loading PyTorch")
    # imported here: PyTorch is needed only once the inputs are known to be good
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    started = time.monotonic()
    with errors_as(BAD_INPUT, ValueError):
        net, report = train_network(journeys, config, log=progress)
    version = args.model_version or f"attribid-net-1+seed{config.seed}"
    metadata = build_metadata(journeys.channels, config.max_len, version, report["summary"],
                              report["metrics"], report["base_rate"])
    path = export_model(net, args.out, metadata)
    progress(f"wrote {path} in {time.monotonic() - started:.0f} s")
    from attribid.models.onnx.quantize import quantize_beside

    held_out, label = gate_journeys(journeys, config)
    quantize_beside(path, held_out, data=label, log=progress)
    return OK


def gate_journeys(journeys: Journeys, config: TrainConfig) -> tuple[Journeys, str]:
    """The journeys the int8 gate scores: those ``train_network`` held out (the first draw
    of its seeded generator), or every journey when nothing was held out.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> held, label = gate_journeys(js, TrainConfig(seed=3))
    >>> held.n_journeys, label
    (20, 'held-out journeys: 20 of 200, seed 3')
    """
    n_hold = int(round(config.holdout * journeys.n_journeys))
    if n_hold == 0:
        return journeys, f"training journeys: all {journeys.n_journeys} (none held out)"
    order = np.random.default_rng(config.seed).permutation(journeys.n_journeys)
    rows = np.sort(order[:n_hold])
    return (journeys.subset(rows),
            f"held-out journeys: {n_hold} of {journeys.n_journeys}, seed {config.seed}")
