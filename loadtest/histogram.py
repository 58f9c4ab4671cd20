"""Latency at microsecond resolution (Locust rounds times under 100 ms to whole ms).

>>> h = LatencyHistogram()
>>> for ms in (0.2504, 0.2506, 1.0, 3.0): h.record("Score", ms)
>>> h.percentiles("Score")[50] >= 0.250
True
"""
from __future__ import annotations

import csv
from array import array
from pathlib import Path

import numpy as np

#: reported percentiles
QUANTILES = (50.0, 90.0, 99.0, 99.9)


class LatencyHistogram:
    """Per-name samples in whole microseconds; percentiles and a 1 µs-bin histogram."""

    def __init__(self) -> None:
        self._us: dict[str, array] = {}

    def record(self, name: str, millis: float) -> None:
        """Add one latency of ``millis`` milliseconds under ``name``."""
        self._us.setdefault(name, array("q")).append(int(round(millis * 1000.0)))

    def names(self) -> list[str]:
        return sorted(self._us)

    def count(self, name: str | None = None) -> int:
        """Samples under ``name``, or under every name."""
        if name is None:
            return sum(len(v) for v in self._us.values())
        return len(self._us.get(name, ()))

    def _values(self, name: str | None) -> np.ndarray:
        if name is None:
            parts = [np.frombuffer(v, dtype=np.int64) for v in self._us.values()]
            return np.concatenate(parts) if parts else np.empty(0, np.int64)
        return np.frombuffer(self._us.get(name, array("q")), dtype=np.int64)

    def percentiles(self, name: str | None = None) -> dict[float, float]:
        """{50: ms, 90: ms, 99: ms, 99.9: ms} over ``name`` (every name when None).

        Uses the nearest-rank definition, so each figure is a latency that was observed.

        >>> h = LatencyHistogram(); [h.record("a", v) for v in (1.0, 2.0, 3.0, 4.0)] and None
        >>> h.percentiles("a")[50]
        2.0
        """
        us = np.sort(self._values(name))
        if us.size == 0:
            return {q: float("nan") for q in QUANTILES}
        ranks = np.ceil(np.array(QUANTILES) / 100.0 * us.size).astype(np.int64) - 1
        return {q: float(us[max(r, 0)]) / 1000.0 for q, r in zip(QUANTILES, ranks)}

    def write_csv(self, path: Path) -> None:
        """Write ``name,latency_us,count`` rows: one per occupied 1 µs bin."""
        with open(path, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["name", "latency_us", "count"])
            for name in self.names():
                values, counts = np.unique(self._values(name), return_counts=True)
                out.writerows((name, int(v), int(c)) for v, c in zip(values, counts))

    def summary_lines(self) -> list[str]:
        """One printable line per name (and one for all), p50/p90/p99/p99.9 in ms."""
        lines = [f"{'name':<22}{'count':>9}" + "".join(f"{'p' + format(q, 'g'):>11}" for q in QUANTILES)]
        for name in [*self.names(), None]:
            pct = self.percentiles(name)
            lines.append(f"{name or 'all':<22}{self.count(name):>9}"
                         + "".join(f"{pct[q]:>9.3f}ms" for q in QUANTILES))
        return lines
