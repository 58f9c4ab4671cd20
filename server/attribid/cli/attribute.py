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
import sys

import orjson

from attribid.cli import BAD_INPUT, OK, CommandError, errors_as
from attribid.models.attribution.channels import ALL_METHODS, channel_credit
from attribid.models.data.loader import DataError, load_journeys


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


def options(args: argparse.Namespace) -> dict[str, float | int]:
    """The method's options from the flags; a flag that does not apply to the method is refused.

    >>> options(argparse.Namespace(method="markov", order=2, half_life=None, model=None))
    {'order': 2}
    """
    chosen: dict[str, float | int] = {}
    if args.half_life is not None:
        if args.method != "time-decay":
            raise CommandError("--half-life applies to --method time-decay only")
        if not args.half_life > 0:
            raise CommandError(f"--half-life must be > 0, got {args.half_life}")
        chosen["half_life_hours"] = args.half_life
    if args.order is not None:
        if args.method != "markov":
            raise CommandError("--order applies to --method markov only")
        if args.order < 1:
            raise CommandError(f"--order must be >= 1, got {args.order}")
        chosen["order"] = args.order
    if args.model is not None and args.method != "network":
        raise CommandError("--model applies to --method network only")
    return chosen


def run(args: argparse.Namespace) -> int:
    """Load, attribute, print; returns the exit code (bad input raises CommandError)."""
    chosen = options(args)
    with errors_as(BAD_INPUT, DataError, OSError):
        journeys = load_journeys(args.touchpoints, args.conversions)
    # the network refuses a model file it cannot use, or journeys with channels it does not know
    with errors_as(BAD_INPUT, ValueError, OSError):
        totals = channel_credit(journeys, args.method, args.model, **chosen)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(totals).decode() + "\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("channel", "credit"))
        writer.writerows(totals.items())
    sys.stdout.flush()
    return OK
