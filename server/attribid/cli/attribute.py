"""credit conversions to channels with a chosen model

``attribid attribute --touchpoints F --conversions F --method M [--model DIR]
[--half-life H] [--order K] [--format json|csv]`` prints the conversions
credited to each channel: JSON, an object from channel name to credit, or CSV
``channel,credit``. The credits sum to the number of converting journeys that
have a touchpoint at or before their conversion (a conversion with none cannot
be credited to any channel and is not counted).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import os
import sys

import numpy as np
import orjson

from attribid.models.data.journeys import Journeys
from attribid.models.data.loader import DataError, load_journeys
from attribid.models.attribution.classic import METHODS, attribute_journeys

ALL_METHODS = (*METHODS, "network")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", required=True, help="touchpoints file (CSV or Parquet)")
    parser.add_argument("--conversions", required=True, help="conversions file (CSV or Parquet)")
    parser.add_argument("--method", required=True, choices=ALL_METHODS, help="attribution model")
    parser.add_argument("--model", default=None,
                        help="network model (a .onnx file or a directory holding attribid.onnx); "
                             "default: the shipped model")
    parser.add_argument("--half-life", type=float, default=None,
                        help="time-decay half-life in hours (default 168)")
    parser.add_argument("--order", type=int, default=None, help="markov chain order (default 1)")
    parser.add_argument("--format", choices=("json", "csv"), default="json",
                        help="output format")


def _network_credit(journeys: Journeys, model: str | None) -> np.ndarray:
    # imported here: the network (onnxruntime) is only loaded when asked for
    try:
        module = importlib.import_module("attribid.models.attribution.network_credit")
    except ModuleNotFoundError as exc:
        if exc.name != "attribid.models.attribution.network_credit":
            raise
        raise RuntimeError("method 'network' is unavailable: attribid.models.attribution.network_credit "
                           "is not installed") from None
    if model is not None and os.path.isdir(model):
        model = os.path.join(model, "attribid.onnx")
    return np.asarray(module.network_credit(journeys, model), dtype=np.float64)


def _options(args: argparse.Namespace) -> dict[str, float | int]:
    options: dict[str, float | int] = {}
    if args.half_life is not None:
        if args.method != "time-decay":
            raise ValueError("--half-life applies to --method time-decay only")
        if not args.half_life > 0:
            raise ValueError(f"--half-life must be > 0, got {args.half_life}")
        options["half_life_hours"] = args.half_life
    if args.order is not None:
        if args.method != "markov":
            raise ValueError("--order applies to --method markov only")
        if args.order < 1:
            raise ValueError(f"--order must be >= 1, got {args.order}")
        options["order"] = args.order
    if args.model is not None and args.method != "network":
        raise ValueError("--model applies to --method network only")
    return options


def channel_credit(journeys: Journeys, method: str, model: str | None = None,
                   **options: float | int) -> dict[str, float]:
    """Conversions credited to each channel by ``method`` (network included).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 300, seed=1)
    >>> round(sum(channel_credit(j, "linear").values())) == int(j.converted.sum())
    True
    """
    if method == "network":
        credit = _network_credit(journeys, model)
    else:
        credit = attribute_journeys(journeys, method, **options)
    expected = (journeys.n_journeys, len(journeys.channels))
    if credit.shape != expected:
        raise RuntimeError(f"method {method!r} returned shape {credit.shape}, "
                           f"expected {expected}")
    totals = credit[journeys.converted].sum(axis=0)
    return dict(zip(journeys.channels, totals.tolist()))


def run(args: argparse.Namespace) -> int:
    """Load, attribute, print; returns the exit code (2 for bad input)."""
    try:
        options = _options(args)
        journeys = load_journeys(args.touchpoints, args.conversions)
        totals = channel_credit(journeys, args.method, args.model, **options)
    except (DataError, ValueError, RuntimeError) as exc:
        print(f"attribid attribute: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(orjson.dumps(totals).decode() + "\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("channel", "credit"))
        writer.writerows(totals.items())
    sys.stdout.flush()
    return 0
