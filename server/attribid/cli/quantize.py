"""write a model's int8 variant beside it, gated against the float32 model

``attribid quantize [MODEL] [--touchpoints F --conversions F] [--journeys N --seed S]``
quantizes MODEL (a folder holding ``attribid.onnx``, or that file; default: the shipped
model) to ``attribid.int8.onnx`` in the same folder and scores both on the gate's journeys:
the journey files when given, else the simulated check journeys ``attribid train-shipped``
scores its model on (N per world, seed S: the shipped model's by default). The gate's
figures and verdict go into the int8 file's metadata and ``attribid.int8.json``. A failed
gate exits 1; its file stays, marked failed, and the server keeps serving float32.
Needs the ``onnx`` package (the train extra).
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from attribid.cli import BAD_INPUT, FAILED, OK, CommandError, errors_as, progress
from attribid.models.data.loader import DataError, read_journeys
from attribid.models.network.shipped import (CHECK_JOURNEYS, SHIPPED_SEED,
                                             quantize_with_check_journeys)
from attribid.models.onnx import contract
from attribid.models.onnx.parity import ParityBounds
from attribid.models.onnx.runtime import model_folder
from attribid.models.simulation.simulate import WORLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default="",
                        help="folder holding attribid.onnx, or that file (default: shipped)")
    parser.add_argument("--touchpoints", default="", help="gate journeys: touchpoints file")
    parser.add_argument("--conversions", default="", help="gate journeys: conversions file")
    parser.add_argument("--journeys", type=int, default=CHECK_JOURNEYS,
                        help="simulated gate journeys per world (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SHIPPED_SEED,
                        help="seed of the simulated gate journeys (default %(default)s)")
    bounds = ParityBounds()
    parser.add_argument("--max-credit-tvd", type=float, default=bounds.max_credit_tvd,
                        help="channel credit total-variation bound (default %(default)s)")
    parser.add_argument("--max-auc-difference", type=float, default=bounds.max_auc_difference,
                        help="conversion AUC bound (default %(default)s)")


def float32_path(model: str) -> Path:
    """The float32 file MODEL names: a folder's attribid.onnx, or the file itself.

    >>> float32_path("").name
    'attribid.onnx'
    """
    folder = model_folder(model)
    path = folder / contract.MODEL_FILE if folder is not None else Path(model)
    if not path.is_file():
        raise CommandError(f"model: no ONNX file at {path}")
    return path


def run(args: argparse.Namespace) -> int:
    """Quantize, gate, record; returns the exit code (OK when the gate passed)."""
    path = float32_path(args.model)
    if bool(args.touchpoints) != bool(args.conversions):
        raise CommandError("--touchpoints and --conversions: give both or neither")
    if args.journeys < 100:
        raise CommandError(f"--journeys: must be >= 100, got {args.journeys}")
    try:
        bounds = ParityBounds(args.max_credit_tvd, args.max_auc_difference)
    except ValueError as exc:  # "max_credit_tvd: ..." is flag --max-credit-tvd
        name, _, rest = str(exc).partition(":")
        raise CommandError(f"--{name.replace('_', '-')}:{rest}") from None
    if importlib.util.find_spec("onnx") is None:
        raise CommandError("needs onnx: pip install 'attribid[train]'", FAILED)
    from attribid.models.onnx.quantize import quantize_beside

    if args.touchpoints:
        with errors_as(BAD_INPUT, DataError, OSError):
            loaded = read_journeys(args.touchpoints, args.conversions)
        with errors_as(BAD_INPUT, ValueError):
            gate = quantize_beside(path, loaded.journeys, data=f"journeys of {args.touchpoints}",
                                   bounds=bounds, log=progress)
    else:
        gate = quantize_with_check_journeys(path, list(WORLDS), args.seed, args.journeys,
                                            progress, bounds)
    if not gate["passed"]:
        raise CommandError(f"the int8 variant failed its parity gate ({path.parent}): the "
                           f"float32 model stays served", FAILED)
    return OK
