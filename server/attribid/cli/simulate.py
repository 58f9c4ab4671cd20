"""write simulated journeys with their true channel credit

``attribid simulate --world NAME --journeys N --seed S --out DIR`` writes the
journeys (``touchpoints.csv``, ``conversions.csv``: the format ``attribid attribute``
and ``attribid train`` read), their true credit (``truth.csv``, ``truth_journeys.csv``)
and ``world.json``; attribid.models.simulation.files describes each file.
``--format parquet --parts N`` writes N Parquet parts of each instead
(``touchpoints/part-00000.parquet`` ...), simulated and written one at a time, so a run
of any size needs the memory of one part; ``attribid attribute --touchpoints
'DIR/touchpoints/*.parquet'`` reads them all.

``--world`` is one of the project's worlds (recency, synergy, impressions, balanced) or a
zoo world ``zoo:FORM:SEED`` (``zoo:noisy-or:7``): FORM the functional form of the true
conversion probability (additive, noisy-or, logistic, threshold, diminishing, negative),
SEED the seed that draws all its parameters; ``--seed`` draws the journeys
(attribid.models.simulation.zoo).
"""
from __future__ import annotations

import argparse

from attribid.cli import BAD_INPUT, OK, CommandError, errors_as, progress
from attribid.models.simulation.files import write_simulation, write_simulation_parts
from attribid.models.simulation.simulate import WORLDS
from attribid.models.simulation.zoo import named_world
from attribid.models.simulation.zoo_world import FORMS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", default="balanced",
                        help=f"which simulated market: {', '.join(sorted(WORLDS))}, or a zoo "
                             f"world zoo:FORM:SEED with FORM one of {', '.join(FORMS)}")
    parser.add_argument("--journeys", type=int, default=10_000, help="number of journeys")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="csv: one file each; parquet: --parts files each (needs pyarrow)")
    parser.add_argument("--parts", type=int, default=None,
                        help="Parquet parts, each simulated and written alone (default 1)")


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
    try:
        world = named_world(args.world)
    except ValueError as exc:
        raise CommandError(f"--world: {exc}") from None
    # a Namespace made by hand before these flags existed means CSV
    file_format, parts = getattr(args, "format", "csv"), getattr(args, "parts", None)
    if parts is not None and file_format != "parquet":
        raise CommandError("--parts applies to --format parquet only")
    if file_format == "parquet":
        parts = 1 if parts is None else parts
        if not 1 <= parts <= args.journeys:
            raise CommandError(f"--parts: must be in [1, --journeys], got {parts}")
        with errors_as(BAD_INPUT, ValueError):
            summary = write_simulation_parts(world, args.journeys, args.seed,
                                             args.out, parts, log=progress)
    else:
        summary = write_simulation(world, args.journeys, args.seed, args.out,
                                   log=progress)
    print(f"wrote {summary['journeys']} journeys ({summary['touchpoints']} touchpoints, "
          f"{summary['conversions']} conversions) of world {args.world!r} to {args.out}")
    return OK
