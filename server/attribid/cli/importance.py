"""rank what drives the network's conversion predictions and credit (feature groups)

``attribid importance --touchpoints F --conversions F [--model DIR] [--journeys N]
[--bootstrap B] [--out DIR]`` shuffles each feature group (channel, recency, position,
interaction, device, time of day, cost, product category) among the journeys' touches
and measures how much the network's conversion AUC and its credit move, per channel,
with the spread and rank stability over B bootstrap resamples
(attribid.models.attribution.importance). It prints the table (``--format table`` on a
terminal, ``json`` otherwise, or ``markdown``) and writes ``DIR/importance.png``
(``DIR``: ``runs/`` unless given). The PNG needs matplotlib (the train extra).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import orjson

from attribid.cli import BAD_INPUT, FAILED, OK, CommandError, errors_as, progress
from attribid.models.data.loader import DataError, read_journeys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", required=True, help="touchpoints file (CSV or Parquet)")
    parser.add_argument("--conversions", required=True, help="conversions file (CSV or Parquet)")
    parser.add_argument("--model", default=None,
                        help="network model (a .onnx file or a directory); default: shipped")
    parser.add_argument("--journeys", type=int, default=5000,
                        help="journeys sampled from the files (default 5000)")
    parser.add_argument("--bootstrap", type=int, default=20, help="resamples (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and shuffling seed")
    parser.add_argument("--out", default="runs", help="directory for importance.png")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default=None,
                        help="output format (default: table on a terminal, else json)")


def run(args: argparse.Namespace) -> int:
    if args.journeys < 10:
        raise CommandError(f"--journeys must be >= 10, got {args.journeys}")
    if args.bootstrap < 0:
        raise CommandError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError("the PNG needs matplotlib: pip install 'attribid[train]'", FAILED)
    from attribid.models.attribution.importance import (
        importance_document, importance_table, permutation_importance, plot_importance,
    )
    from attribid.models.onnx.runtime import load_model

    with errors_as(BAD_INPUT, DataError, OSError):
        loaded = read_journeys(args.touchpoints, args.conversions)
    for issue in loaded.issues:
        progress(f"attribid: {issue}")
    journeys = loaded.journeys
    if journeys.n_journeys > args.journeys:
        pick = np.sort(np.random.default_rng(args.seed).choice(journeys.n_journeys,
                                                                args.journeys, replace=False))
        journeys = journeys.subset(pick)
    with errors_as(BAD_INPUT, ValueError, OSError):
        model = load_model(args.model)
        imp = permutation_importance(journeys, model, args.bootstrap, args.seed, log=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_importance(imp, out / "importance.png")
    progress(f"wrote {out / 'importance.png'}")
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(orjson.dumps(importance_document(imp), option=orjson.OPT_INDENT_2)
                         .decode() + "\n")
    else:
        sys.stdout.write(importance_table(imp, markdown=fmt == "markdown"))
    return OK
