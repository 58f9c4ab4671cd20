"""train the attribution network on journeys and export it to ONNX

``attribid train --touchpoints F --conversions F --out DIR [--epochs N --seed S --max-len 64]``
reads the journey files (kernels.loader format), trains on CPU and writes
``DIR/attribid.onnx`` and ``DIR/attribid.json``. The same seed and data give
the same model.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from attribid.models.data.loader import DataError, load_journeys
from attribid.models.network.dataset import DEFAULT_MAX_LEN
from attribid.models.network.train import TrainConfig

_HELP = {
    "epochs": "passes over the journeys for the conversion head",
    "distill_epochs": "passes with the credit-distillation loss",
    "seed": "random seed (split, weights, dropout, batch order)",
    "max_len": "journeys keep their most recent N touchpoints",
    "batch_size": "journeys per optimisation step",
    "learning_rate": "Adam step size",
    "holdout": "share of journeys held out for the reported metrics",
    "distill_journeys": "at most this many journeys get exact Shapley targets",
    "credit_weight": "weight of the credit loss against the conversion loss",
    "threads": "PyTorch CPU threads",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", required=True, help="touchpoints CSV (or Parquet)")
    parser.add_argument("--conversions", required=True, help="conversions CSV (or Parquet)")
    parser.add_argument("--out", required=True, help="directory for attribid.onnx and .json")
    parser.add_argument("--model-version", default="", help="version string (default: derived)")
    add_config_arguments(parser)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, defaults taken from the dataclass.

    >>> p = argparse.ArgumentParser(); add_config_arguments(p)
    >>> p.parse_args(["--epochs", "2"]).epochs
    2
    """
    for f in dataclasses.fields(TrainConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                            default=f.default,
                            help=f"{_HELP.get(f.name, f.name)} (default %(default)s)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig named by parsed flags.

    >>> config_from_args(argparse.Namespace(**{f.name: f.default for f in
    ...     dataclasses.fields(TrainConfig)})).max_len == DEFAULT_MAX_LEN
    True
    """
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def run(args: argparse.Namespace) -> int:
    """Load, train, export; returns the exit code (2 on bad input).

    >>> # run(parser.parse_args(["--touchpoints", "t.csv", "--conversions", "c.csv", "--out", "m"]))
    """
    try:
        config = config_from_args(args)
        journeys = load_journeys(args.touchpoints, args.conversions)
    except (DataError, ValueError, OSError) as exc:
        print(f"attribid train: {exc}", file=sys.stderr)
        return 2
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    started = time.monotonic()
    try:
        net, report = train_network(journeys, config, log=_log)
    except ValueError as exc:
        print(f"attribid train: {exc}", file=sys.stderr)
        return 2
    version = args.model_version or f"attribid-net-1+seed{config.seed}"
    metadata = build_metadata(journeys.channels, config.max_len, version, report["summary"],
                              report["metrics"], report["base_rate"])
    path = export_model(net, args.out, metadata)
    _log(f"wrote {path} in {time.monotonic() - started:.0f} s")
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
