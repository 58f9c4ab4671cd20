"""write simulated journeys with their true channel credit

``attribid simulate --world NAME --journeys N --seed S --out DIR`` writes the
journeys (``touchpoints.csv``, ``conversions.csv``: the format ``attribid attribute``
and ``attribid train`` read), their true credit (``truth.csv``, ``truth_journeys.csv``)
and ``world.json``; attribid.models.simulation.files describes each file.
"""
from __future__ import annotations

import argparse

from attribid.cli import OK, CommandError, progress
from attribid.models.simulation.files import write_simulation
from attribid.models.simulation.simulate import WORLDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", choices=sorted(WORLDS), default="balanced",
                        help="which simulated market")
    parser.add_argument("--journeys", type=int, default=10_000, help="number of journeys")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")


def run(args: argparse.Namespace) -> int:
    """Simulate and write the files; returns the exit code.

    >>> import tempfile
    >>> run(argparse.Namespace(world="recency", journeys=50, seed=1,
    ...                        out=tempfile.mkdtemp()))  # doctest: +ELLIPSIS
    wrote 50 journeys (... touchpoints, ... conversions) of world 'recency' to ...
    0
    """
    if args.journeys < 1:
        raise CommandError(f"--journeys: must be >= 1, got {args.journeys}")
    summary = write_simulation(WORLDS[args.world], args.journeys, args.seed, args.out,
                               log=progress)
    print(f"wrote {summary['journeys']} journeys ({summary['touchpoints']} touchpoints, "
          f"{summary['conversions']} conversions) of world {args.world!r} to {args.out}")
    return OK
