"""write simulated journeys with their true channel credit

``attribid simulate --world NAME --journeys N --seed S --out DIR`` writes

- ``touchpoints.csv``, ``conversions.csv``: the journeys, in the format
  ``attribid attribute`` and ``attribid train`` read (touches converters had
  after converting are included, as real logs would have them; the loader drops them);
- ``truth.csv``: ``journey_id,channel,shapley,removal`` for each channel a journey touched;
- ``truth_journeys.csv``: ``journey_id,p_true,p_base,reference_time``;
- ``world.json``: the world's knobs, the seed and a summary (true channel shares).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys

import numpy as np

from attribid.models.data.loader import write_journeys
from attribid.models.simulation.simulate import WORLDS, simulate, true_channel_shares


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", choices=sorted(WORLDS), default="balanced",
                        help="which simulated market")
    parser.add_argument("--journeys", type=int, default=10_000, help="number of journeys")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")


def _write_truth(path: str, ids: np.ndarray, channels: tuple[str, ...],
                 shapley: np.ndarray, removal: np.ndarray) -> None:
    rows, cols = np.nonzero((shapley != 0) | (removal != 0))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("journey_id", "channel", "shapley", "removal"))
        writer.writerows(zip(ids[rows].tolist(), [channels[c] for c in cols.tolist()],
                             shapley[rows, cols].tolist(), removal[rows, cols].tolist()))


def run(args: argparse.Namespace) -> int:
    """Simulate and write the files; returns the exit code.

    >>> import tempfile
    >>> run(argparse.Namespace(world="recency", journeys=50, seed=1,
    ...                        out=tempfile.mkdtemp()))  # doctest: +ELLIPSIS
    wrote 50 journeys (... touchpoints, ... conversions) of world 'recency' to ...
    0
    """
    if args.journeys < 1:
        print("attribid simulate: --journeys must be >= 1", file=sys.stderr)
        return 2
    world = WORLDS[args.world]
    journeys, truth = simulate(world, args.journeys, args.seed)
    os.makedirs(args.out, exist_ok=True)
    write_journeys(journeys, os.path.join(args.out, "touchpoints.csv"),
                   os.path.join(args.out, "conversions.csv"),
                   extra_touchpoints=truth.after_conversion)
    _write_truth(os.path.join(args.out, "truth.csv"), journeys.ids, journeys.channels,
                 truth.shapley, truth.removal)
    with open(os.path.join(args.out, "truth_journeys.csv"), "w", newline="",
              encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("journey_id", "p_true", "p_base", "reference_time"))
        writer.writerows(zip(journeys.ids.tolist(), truth.p_true.tolist(),
                             truth.p_base.tolist(), truth.reference_time.tolist()))
    shares = true_channel_shares(journeys, truth)
    summary = {
        "world": dataclasses.asdict(world), "seed": args.seed,
        "journeys": journeys.n_journeys, "touchpoints": journeys.n_touchpoints,
        "conversions": int(journeys.converted.sum()),
        "conversion_rate": float(journeys.converted.mean()),
        "channels": list(journeys.channels),
        "true_channel_shares": dict(zip(journeys.channels, shares.round(6).tolist())),
    }
    with open(os.path.join(args.out, "world.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    print(f"wrote {journeys.n_journeys} journeys ({journeys.n_touchpoints} touchpoints, "
          f"{summary['conversions']} conversions) of world {world.name!r} to {args.out}")
    return 0
