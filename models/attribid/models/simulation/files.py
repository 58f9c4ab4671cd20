"""A simulated run written to files: the journeys, their true credit, the world's summary.

- ``touchpoints.csv``, ``conversions.csv``: the journeys, in the format the loader
  reads (touches converters had after converting are included, as real logs would
  have them; the loader drops them);
- ``truth.csv``: ``journey_id,channel,shapley,removal`` for each channel a journey touched;
- ``truth_journeys.csv``: ``journey_id,p_true,p_base,reference_time``;
- ``world.json``: the world's knobs, the seed and a summary (true channel shares).
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attribid.models.data.loader import write_journeys
from attribid.models.progress import counter
from attribid.models.simulation.simulate import World, simulate, true_channel_shares


def write_simulation(world: World, n_journeys: int, seed: int, out: str | Path,
                     log: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Simulate ``n_journeys`` of ``world`` and write the files into ``out`` (created if missing).

    Returns the summary written to ``world.json``; ``log`` gets a line per step.

    >>> import tempfile
    >>> from attribid.models.simulation.simulate import WORLDS
    >>> out = Path(tempfile.mkdtemp())
    >>> summary = write_simulation(WORLDS["recency"], 50, 1, out)
    >>> summary["journeys"], sorted(p.name for p in out.iterdir())[:2]
    (50, ['conversions.csv', 'touchpoints.csv'])
    """
    out = Path(out)
    with counter(4, desc="simulate", unit="step") as steps:
        log(f"simulating {n_journeys:,} journeys of world {world.name!r}")
        journeys, truth = simulate(world, n_journeys, seed)
        steps.update()
        out.mkdir(parents=True, exist_ok=True)
        log(f"writing {out / 'touchpoints.csv'} and {out / 'conversions.csv'}")
        write_journeys(journeys, out / "touchpoints.csv", out / "conversions.csv",
                       extra_touchpoints=truth.after_conversion)
        steps.update()
        log(f"writing the true credit: {out / 'truth.csv'}, {out / 'truth_journeys.csv'}")
        _write_truth(out / "truth.csv", journeys.ids, journeys.channels, truth.shapley,
                     truth.removal)
        steps.update()
        with open(out / "truth_journeys.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(("journey_id", "p_true", "p_base", "reference_time"))
            writer.writerows(zip(journeys.ids.tolist(), truth.p_true.tolist(),
                                 truth.p_base.tolist(), truth.reference_time.tolist()))
        steps.update()
    shares = true_channel_shares(journeys, truth)
    summary = {
        "world": dataclasses.asdict(world), "seed": seed,
        "journeys": journeys.n_journeys, "touchpoints": journeys.n_touchpoints,
        "conversions": int(journeys.converted.sum()),
        "conversion_rate": float(journeys.converted.mean()),
        "channels": list(journeys.channels),
        "true_channel_shares": dict(zip(journeys.channels, shares.round(6).tolist())),
    }
    with open(out / "world.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return summary


def _write_truth(path: Path, ids: np.ndarray, channels: tuple[str, ...],
                 shapley: np.ndarray, removal: np.ndarray) -> None:
    rows, cols = np.nonzero((shapley != 0) | (removal != 0))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("journey_id", "channel", "shapley", "removal"))
        writer.writerows(zip(ids[rows].tolist(), [channels[c] for c in cols.tolist()],
                             shapley[rows, cols].tolist(), removal[rows, cols].tolist()))
