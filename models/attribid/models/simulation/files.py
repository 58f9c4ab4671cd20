"""A simulated run written to files: the journeys, their true credit, the world's summary.

- ``touchpoints.csv``, ``conversions.csv``: the journeys, in the format the loader
  reads (touches converters had after converting are included, as real logs would
  have them; the loader drops them);
- ``truth.csv``: ``journey_id,channel,shapley,removal`` for each channel a journey touched;
- ``truth_journeys.csv``: ``journey_id,p_true,p_base,reference_time``;
- ``world.json``: the world's knobs, the seed and a summary (true channel shares).

``write_simulation_parts`` writes the same as Parquet parts instead
(``touchpoints/part-00000.parquet`` ..., likewise ``conversions/``, ``truth/`` and
``truth_journeys/``), one part simulated and written at a time, so that memory follows
the size of a part, not of the whole run; the truth stays exact (each part's own).
Part 0 draws from ``seed`` itself, so one part holds the same journeys as the CSV files.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attribid.kernels.taxonomy import DEVICES, INTERACTIONS, PRODUCT_CATEGORIES
from attribid.models.data.journeys import Journeys
from attribid.models.data.loader import write_journeys
from attribid.models.progress import bar, counter
from attribid.models.simulation.simulate import Truth, World, true_channel_shares
from attribid.models.simulation.zoo import ZooWorld, simulate_any, world_summary

#: the folders of a run written in parts, one Parquet file per part in each
PART_FOLDERS: tuple[str, ...] = ("touchpoints", "conversions", "truth", "truth_journeys")


def write_simulation(world: World | ZooWorld, n_journeys: int, seed: int, out: str | Path,
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
        journeys, truth = simulate_any(world, n_journeys, seed)
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
        "world": world_summary(world), "seed": seed,
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


def part_seed(seed: int, part: int) -> int:
    """The seed part ``part`` draws from: ``seed`` for part 0, independent streams after.

    >>> part_seed(7, 0), part_seed(7, 1) == part_seed(7, 2)
    (7, False)
    """
    if part == 0:
        return seed
    return int(np.random.SeedSequence([seed, part]).generate_state(1, np.uint64)[0] >> 1)


def _renamed(journeys: Journeys, ids: np.ndarray) -> Journeys:
    return dataclasses.replace(journeys, ids=ids)


def _dictionary(codes: np.ndarray, names: list[str]) -> Any:
    import pyarrow as pa

    # a column of few distinct names: stored once each, the rows as small codes
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, np.int32)),
                                          pa.array(names, pa.string()))


def _touch_table(journeys: Journeys) -> Any:
    import pyarrow as pa

    lengths = journeys.lengths()
    interactions = {code: name for name, code in INTERACTIONS.items()}
    devices = {code: name for name, code in DEVICES.items()}
    n_int, n_dev = max(interactions) + 1, max(devices) + 1
    category = np.repeat(journeys.category, lengths)
    return pa.table({
        "journey_id": pa.array(np.repeat(journeys.ids, lengths).tolist(), pa.string()),
        "timestamp": pa.array(journeys.timestamp, pa.float64()),
        "channel": _dictionary(journeys.channel, list(journeys.channels)),
        "interaction": _dictionary(journeys.interaction,
                                   [interactions.get(k, "") for k in range(n_int)]),
        "cost": pa.array(journeys.cost, pa.float64()),
        "device": _dictionary(journeys.device, [devices.get(k, "unknown") for k in range(n_dev)]),
        "product_category": _dictionary(category, [*PRODUCT_CATEGORIES, ""]),
    })


def _write_part(out: Path, part: int, journeys: Journeys, truth: Truth) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"part-{part:05d}.parquet"
    touches = pa.concat_tables([_touch_table(journeys), _touch_table(truth.after_conversion)])
    pq.write_table(touches, out / "touchpoints" / name)
    conv = np.flatnonzero(journeys.converted)
    pq.write_table(pa.table({
        "journey_id": pa.array(journeys.ids[conv].tolist(), pa.string()),
        "timestamp": pa.array(journeys.conversion_time[conv], pa.float64()),
        "value": pa.array(journeys.value[conv], pa.float64())}), out / "conversions" / name)
    rows, cols = np.nonzero((truth.shapley != 0) | (truth.removal != 0))
    pq.write_table(pa.table({
        "journey_id": pa.array(journeys.ids[rows].tolist(), pa.string()),
        "channel": _dictionary(cols, list(journeys.channels)),
        "shapley": pa.array(truth.shapley[rows, cols], pa.float64()),
        "removal": pa.array(truth.removal[rows, cols], pa.float64())}), out / "truth" / name)
    pq.write_table(pa.table({
        "journey_id": pa.array(journeys.ids.tolist(), pa.string()),
        "p_true": pa.array(truth.p_true, pa.float64()),
        "p_base": pa.array(truth.p_base, pa.float64()),
        "reference_time": pa.array(truth.reference_time, pa.float64())}),
        out / "truth_journeys" / name)


def write_simulation_parts(world: World | ZooWorld, n_journeys: int, seed: int, out: str | Path,
                           parts: int, log: Callable[[str], None] = lambda text: None
                           ) -> dict[str, Any]:
    """Simulate ``n_journeys`` of ``world`` in ``parts`` Parquet parts under ``out``.

    Returns the summary written to ``world.json`` (true shares over every part).

    >>> import tempfile
    >>> from attribid.models.simulation.simulate import WORLDS
    >>> out = Path(tempfile.mkdtemp())
    >>> summary = write_simulation_parts(WORLDS["recency"], 50, 1, out, parts=2)
    >>> summary["journeys"], sorted(p.name for p in (out / "touchpoints").iterdir())
    (50, ['part-00000.parquet', 'part-00001.parquet'])
    """
    if not 1 <= parts <= n_journeys:
        raise ValueError(f"parts must be in [1, {n_journeys}], got {parts}")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError("writing Parquet needs pyarrow installed (the parquet extra)") from None
    out = Path(out)
    for folder in PART_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n_journeys, parts + 1).round().astype(np.int64)
    width = max(7, len(str(n_journeys - 1)))
    n_touch = n_conv = 0
    shares = np.zeros(0)
    channels: tuple[str, ...] = ()
    log(f"simulating {n_journeys:,} journeys of world {world.name!r} in {parts} part(s) "
        f"under {out}")
    for part in bar(range(parts), total=parts, desc="simulate", unit="part"):
        start, size = int(bounds[part]), int(bounds[part + 1] - bounds[part])
        journeys, truth = simulate_any(world, size, part_seed(seed, part))
        ids = np.array([f"j{start + k:0{width}d}" for k in range(size)], dtype=object)
        truth = dataclasses.replace(truth, after_conversion=_renamed(
            truth.after_conversion, ids[_owners(journeys, truth.after_conversion)]))
        journeys = _renamed(journeys, ids)
        _write_part(out, part, journeys, truth)
        n_touch += journeys.n_touchpoints
        n_conv += int(journeys.converted.sum())
        channels = journeys.channels
        # each converter's true split, summed: the shares of the whole run at the end
        split = np.maximum(truth.shapley[journeys.converted], 0.0)
        total = split.sum(axis=1, keepdims=True)
        part_sum = np.divide(split, total, out=np.zeros_like(split), where=total > 0).sum(0)
        shares = part_sum if shares.size == 0 else shares + part_sum
    summary = {
        "world": world_summary(world), "seed": seed, "parts": parts,
        "journeys": n_journeys, "touchpoints": n_touch, "conversions": n_conv,
        "conversion_rate": n_conv / n_journeys, "channels": list(channels),
        "true_channel_shares": dict(zip(channels, (shares / shares.sum() if shares.sum() > 0
                                                   else shares).round(6).tolist())),
    }
    with open(out / "world.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return summary


def _owners(journeys: Journeys, extra: Journeys) -> np.ndarray:
    """Each extra journey's position among ``journeys`` (matched by id)."""
    position = {jid: k for k, jid in enumerate(journeys.ids.tolist())}
    return np.array([position[jid] for jid in extra.ids.tolist()], dtype=np.int64)
