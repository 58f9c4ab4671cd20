"""Speed of the batch data path against floors measured in the same run.

    .venv/bin/python -m loadtest.bench_data [--journeys 200000] [--write docs/data-speed.md]

Floors: the simulator against drawing its uniforms alone; the loader against
reading the file's bytes and counting its lines in one NumPy pass; each classic
model against one NumPy pass over the touches (bincount).
Figures are medians of ``--repeats`` runs after a warm-up that compiles the kernels.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable

import numpy as np

from attribid.models.data.loader import load_journeys, write_journeys
from attribid.models.attribution.classic import METHODS, attribute_journeys
from attribid.models.simulation.simulate import WORLDS, simulate


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read_floor(path: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    np.count_nonzero(np.frombuffer(data, np.uint8) == 10)


def measure(n_journeys: int, repeats: int) -> list[tuple[str, str, float, float, str]]:
    """Rows of (what, size, seconds, floor seconds, floor) for every measured step."""
    rows = []
    simulate(WORLDS["balanced"], 200, seed=0)            # compile the kernels once
    for name, world in WORLDS.items():
        sec = _median_s(lambda: simulate(world, n_journeys, seed=1), repeats)
        journeys, _ = simulate(world, n_journeys, seed=1)
        n = journeys.n_touchpoints
        floor = _median_s(lambda: np.random.default_rng(1).random(3 * n + 2 * n_journeys),
                          repeats)
        rows.append((f"simulate world {name}", f"{n_journeys:,} journeys", sec, floor,
                     "draw its uniforms"))
    journeys, truth = simulate(WORLDS["balanced"], n_journeys, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        tp, cv = os.path.join(tmp, "t.csv"), os.path.join(tmp, "c.csv")
        sec = _median_s(lambda: write_journeys(journeys, tp, cv, truth.after_conversion), 1)
        rows.append(("write_journeys (CSV)", f"{journeys.n_touchpoints:,} touchpoints", sec,
                     float("nan"), "-"))
        sec = _median_s(lambda: load_journeys(tp, cv), repeats)
        floor = _median_s(lambda: _read_floor(tp), repeats)
        rows.append(("load_journeys (CSV)", f"{journeys.n_touchpoints:,} touchpoints", sec,
                     floor, "read bytes + count lines"))
    for method in METHODS:
        attribute_journeys(journeys.subset(np.arange(100)), method)   # compile
        sec = _median_s(lambda: attribute_journeys(journeys, method), repeats)
        floor = _median_s(lambda: np.bincount(journeys.channel, minlength=7), repeats)
        rows.append((f"attribute {method}", f"{n_journeys:,} journeys", sec, floor,
                     "bincount of channels"))
    return rows


def render(rows: list[tuple[str, str, float, float, str]], command: str) -> str:
    """A Markdown report of the rows."""
    lines = [f"<!-- produced by: {command} -->", "# Batch data path: speed",
             "", f"Command: `{command}`", "",
             "| step | size | ms | floor | floor ms | x floor |",
             "|---|---|---:|---|---:|---:|"]
    for what, size, sec, floor, floor_name in rows:
        ratio = f"{sec / floor:.1f}" if floor == floor and floor > 0 else "-"
        floor_ms = f"{floor * 1e3:.1f}" if floor == floor else "-"
        lines.append(f"| {what} | {size} | {sec * 1e3:.1f} | {floor_name} | {floor_ms} "
                     f"| {ratio} |")
    lines += ["", f"Machine: {os.cpu_count()} cores; medians of repeated runs; "
              "the load of other processes on the machine is not controlled."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", default=None, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    command = "python -m loadtest.bench_data " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(measure(args.journeys, args.repeats), command.strip())
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
