"""What the journeys' paths look like: top paths, path lengths, time to conversion, and
the first-order Markov chain's transition matrix (``attribid paths``).

A path is a journey's channels in time order, repeats kept (``search > email > search``).
Figures are weighted: a row of aggregated paths counts as the journeys it stands for.
``aggregate_paths`` is ChannelAttribution's input format (``path``,
``total_conversions``, ``total_conversion_value``, ``total_null``).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from attribid.models.attribution.classic import MarkovChain
from attribid.models.data.journeys import Journeys
from attribid.models.textgrid import grid, number

#: path-length buckets: (label, lowest length, highest length)
LENGTH_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4", 4, 4), ("5", 5, 5), ("6-10", 6, 10),
    ("11+", 11, math.inf))
#: time-to-conversion buckets in hours: (label, from, to)
TIME_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("< 1 hour", 0, 1), ("1-24 hours", 1, 24), ("1-7 days", 24, 168), ("7-14 days", 168, 336),
    ("14-30 days", 336, 720), ("30-90 days", 720, 2160), (">= 90 days", 2160, math.inf))
FORMATS: tuple[str, ...] = ("table", "markdown", "json", "csv")


@dataclass(frozen=True)
class PathStats:
    """One distinct path and its outcomes."""

    path: tuple[str, ...]
    journeys: float
    conversions: float
    value: float

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.journeys if self.journeys > 0 else 0.0


@dataclass(frozen=True)
class PathReport:
    """Everything ``attribid paths`` prints."""

    journeys: float
    conversions: float
    value: float
    #: every distinct path, most conversions first (then most journeys)
    paths: tuple[PathStats, ...]
    #: (bucket label, journeys, conversions)
    lengths: tuple[tuple[str, float, float], ...]
    #: (bucket label, conversions); None when touches have no times
    time_to_conversion: tuple[tuple[str, float], ...] | None
    #: median hours from first touch to conversion; None without times
    median_hours: float | None
    #: order-1 chain: from-states, to-states, probabilities
    transitions: tuple[list[str], list[str], np.ndarray]


def _weights(journeys: Journeys, weight: np.ndarray | None) -> np.ndarray:
    return np.ones(journeys.n_journeys) if weight is None else np.asarray(weight, np.float64)


def aggregate_paths(journeys: Journeys, weight: np.ndarray | None = None) -> list[PathStats]:
    """Every distinct path with its journeys, conversions and value; most conversions first.

    >>> from attribid.models.data.loader import load_journeys
    >>> j = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> top = aggregate_paths(j)[0]
    >>> top.path, top.journeys, top.conversions, round(top.value, 2)
    (('affiliate', 'search'), 1.0, 1.0, 79.5)
    """
    w = _weights(journeys, weight)
    has = np.flatnonzero(journeys.lengths() > 0)
    # one byte string per journey: its channel codes (at most 16 channels fit a byte)
    codes = journeys.channel.astype(np.uint8 if len(journeys.channels) < 256 else np.uint16)
    raw = codes.tobytes()
    size = codes.itemsize
    keys = [raw[size * journeys.offsets[j]:size * journeys.offsets[j + 1]] for j in has.tolist()]
    index: dict[bytes, int] = {}
    group = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64,
                        count=len(keys))
    n = len(index)
    count = np.bincount(group, weights=w[has], minlength=n)
    conv = np.bincount(group, weights=(w * journeys.converted)[has], minlength=n)
    value = np.bincount(group, weights=(w * journeys.value)[has], minlength=n)
    firsts = np.full(n, -1, dtype=np.int64)
    firsts[group[::-1]] = has[::-1]          # the first journey of each path
    rows = []
    for g in range(n):
        j = int(firsts[g])
        path = tuple(journeys.channels[c] for c in
                     journeys.channel[journeys.offsets[j]:journeys.offsets[j + 1]].tolist())
        rows.append(PathStats(path, float(count[g]), float(conv[g]), float(value[g])))
    rows.sort(key=lambda r: (-r.conversions, -r.journeys, r.path))
    return rows


def path_report(journeys: Journeys, weight: np.ndarray | None = None,
                timed: bool = True) -> PathReport:
    """Paths, length and time-to-conversion distributions and the transition matrix.

    >>> from attribid.models.data.loader import load_journeys
    >>> r = path_report(load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv"))
    >>> r.lengths[1], r.time_to_conversion[1]
    (('2', 3.0, 1.0), ('1-24 hours', 2.0))
    """
    w = _weights(journeys, weight)
    lengths = journeys.lengths()
    conv = journeys.converted & (lengths > 0)
    length_rows = []
    for label, lo, hi in LENGTH_BUCKETS:
        inside = (lengths >= lo) & (lengths <= hi)
        length_rows.append((label, float(w[inside].sum()), float(w[inside & conv].sum())))
    time_rows = None
    median = None
    if timed and conv.any():
        first = journeys.timestamp[journeys.offsets[:-1][conv]]
        hours = (journeys.conversion_time[conv] - first) / 3600.0
        wc = w[conv]
        time_rows = tuple((label, float(wc[(hours >= lo) & (hours < hi)].sum()))
                          for label, lo, hi in TIME_BUCKETS)
        order = np.argsort(hours)
        cum = np.cumsum(wc[order])
        median = float(hours[order][np.searchsorted(cum, cum[-1] / 2)])
    return PathReport(float(w.sum()), float(w[conv].sum()), float((w * journeys.value)[conv].sum()),
                      tuple(aggregate_paths(journeys, weight)), tuple(length_rows), time_rows,
                      median, MarkovChain(journeys, 1).transition_matrix(weight))


def render_paths(report: PathReport, fmt: str = "table", top: int = 20) -> str:
    """The report as ``table``, ``markdown``, ``json`` or ``csv`` (every path, in
    ChannelAttribution's format, which ``attribid attribute --paths`` reads)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("path", "total_conversions", "total_conversion_value", "total_null"))
        for p in report.paths:
            writer.writerow((" > ".join(p.path), _number(p.conversions), _number(p.value),
                             _number(p.journeys - p.conversions)))
        return buf.getvalue()
    if fmt == "json":
        return orjson.dumps(_document(report, top), option=orjson.OPT_INDENT_2).decode() + "\n"
    md = fmt == "markdown"
    head = "### " if md else ""
    rate = report.conversions / report.journeys if report.journeys else math.nan
    lines = [f"{number(report.journeys)} journeys, {number(report.conversions)} conversions "
             f"({number(rate, 2, True)}), value {number(report.value, 2)}, "
             f"{len(report.paths):,} distinct paths", ""]
    shown = report.paths[:top]
    lines += [f"{head}Top {len(shown)} paths by conversions", ""]
    lines += grid(["path", "journeys", "conversions", "conv. rate", "value", "share of conv."],
                   [[" > ".join(p.path), number(p.journeys), number(p.conversions, 0),
                     number(p.conversion_rate, 2, True), number(p.value, 2),
                     number(p.conversions / report.conversions if report.conversions else math.nan,
                          1, True)] for p in shown], md)
    lines += ["", f"{head}Path length (touches)", ""]
    lines += grid(["length", "journeys", "conversions", "conv. rate"],
                   [[label, number(n), number(c), number(c / n if n else math.nan, 2, True)]
                    for label, n, c in report.lengths], md)
    if report.time_to_conversion is not None:
        lines += ["", f"{head}Time from first touch to conversion (median "
                      f"{number(report.median_hours or 0.0, 1)} hours)", ""]
        lines += grid(["time", "conversions", "share"],
                       [[label, number(c), number(c / report.conversions if report.conversions
                                              else math.nan, 1, True)]
                        for label, c in report.time_to_conversion], md)
    rows, cols, matrix = report.transitions
    lines += ["", f"{head}Markov transition matrix (order 1): P(row -> column)", ""]
    lines += grid(["from \\ to", *cols],
                   [[name, *(number(p, 1, True) if p > 0 else "." for p in matrix[k])]
                    for k, name in enumerate(rows)], md)
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _document(report: PathReport, top: int) -> dict[str, Any]:
    rows, cols, matrix = report.transitions
    return {
        "journeys": report.journeys, "conversions": report.conversions, "value": report.value,
        "distinct_paths": len(report.paths),
        "top_paths": [{"path": list(p.path), "journeys": p.journeys, "conversions": p.conversions,
                       "conversion_rate": p.conversion_rate, "value": p.value}
                      for p in report.paths[:top]],
        "path_length": [{"length": label, "journeys": n, "conversions": c}
                        for label, n, c in report.lengths],
        "time_to_conversion": (None if report.time_to_conversion is None else {
            "median_hours": report.median_hours,
            "buckets": [{"time": label, "conversions": c}
                        for label, c in report.time_to_conversion]}),
        "transition_matrix": {"from": rows, "to": cols, "probability": matrix.tolist()},
    }
