"""Journeys from files: touchpoints + conversions (CSV, or Parquet when pyarrow is installed),
or ChannelAttribution's aggregated paths.

touchpoints: ``journey_id,timestamp,channel,interaction,cost`` and optionally
``device`` and ``product_category``; conversions: ``journey_id,timestamp,value``.
Fields are separated by ``,`` (or ``;`` or a tab, read off the header).
A timestamp is epoch seconds, epoch milliseconds or ISO-8601 (UTC when it carries
no offset). Numbers of 1e11 and more are milliseconds (1e11 seconds is the year
5138, 1e11 milliseconds 1973), decided per file and reported; ``time_unit`` fixes
the unit instead. Channel names match whatever their case; the first spelling
seen is kept.

A journey with no conversion row did not convert; touchpoints after a journey's
conversion are dropped, and so are those older than the lookback window when one
is given. A journey left with no touchpoint is left out (no channel can be
credited with it). Rows that repeat an earlier row of the same journey in every
column are counted once.

Any malformed value raises ``DataError`` naming the file, the line and the
column; an empty file, or a touchpoints or paths file with only a header, is
malformed (a conversions file with none is a warning). What reads but
is probably not what the data meant (a conversion without touchpoints, a journey
whose every touch follows its conversion, repeated rows) is a ``DataIssue`` with
its count and the first offending journey and line (``read_journeys``).

Aggregated paths (``read_paths``): columns ``path`` (channels joined by ``>``),
``total_conversions``, and optionally ``total_conversion_value`` and
``total_null``; each row stands for that many journeys.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from .journeys import Journeys
from .tables import DataError, Factor, Table, factor_of, read_table
from attribid.kernels.taxonomy import (
    DEFAULT_CHANNELS, DEVICES, IMPRESSION, INTERACTIONS, MAX_CHANNELS, PRODUCT_CATEGORIES,
    UNKNOWN_CATEGORY, category_code,
)

__all__ = ["DataError", "DataIssue", "LoadedJourneys", "load_journeys", "read_journeys",
           "read_paths", "write_journeys"]

TOUCHPOINT_COLUMNS = ("journey_id", "timestamp", "channel", "interaction", "cost")
OPTIONAL_TOUCHPOINT_COLUMNS = ("device", "product_category")
CONVERSION_COLUMNS = ("journey_id", "timestamp", "value")
PATH_COLUMNS = ("path", "total_conversions")
#: time units a file's epoch numbers can be in, and seconds per unit
TIME_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3}
#: epoch numbers at or above this are milliseconds (the year 5138 in seconds)
MILLISECONDS_FROM = 1e11
#: epoch milliseconds stop here (the year 5138 again)
MILLISECONDS_UNTIL = 1e14
_DEVICE_NAMES = {code: name for name, code in DEVICES.items()}
_INTERACTION_NAMES = {code: name for name, code in INTERACTIONS.items()}
_DAY = 86400.0


@dataclass(frozen=True)
class DataIssue:
    """Something in the input that reads, but is probably not what the data meant.

    A warning (``warning=True``) fails a strict run; a note only says how the data
    was read (e.g. milliseconds detected, channel spellings merged).

    >>> str(DataIssue("duplicate-rows", 2, "2 repeated rows counted once", True))
    'warning: 2 repeated rows counted once'
    """

    #: a short name, e.g. ``conversion-without-touchpoints``
    kind: str
    #: how many rows, journeys or names it concerns
    count: int
    #: a sentence naming the count and the first offender (journey id, file and line)
    message: str
    #: True: a warning (fails --strict); False: a note
    warning: bool

    def __str__(self) -> str:
        return f"{'warning' if self.warning else 'note'}: {self.message}"


@dataclass(frozen=True)
class LoadedJourneys:
    """Journeys as read, with what the reading found."""

    journeys: Journeys
    #: how many journeys each row stands for (aggregated paths); None: one each
    weight: np.ndarray | None
    #: cost of every touchpoint row in the file, per channel, float64 [C]; None: no costs
    spend: np.ndarray | None
    issues: tuple[DataIssue, ...]
    #: True when every touch has a time (not so for aggregated paths)
    timed: bool = True
    #: every touchpoint row's (journey number, channel code, cost), repeats left out: what
    #: ``spend`` sums, kept per journey so that a private report can bound each journey's part
    touch_costs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _parse_one_time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        value = parsed.timestamp()
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _iso_utc_bulk(texts: list[str]) -> np.ndarray | None:
    """Epoch seconds of UTC ISO-8601 texts parsed at once; None if any needs a closer look."""
    cleaned = [t[:-1] if t.endswith("Z") else t[:-6] if t.endswith("+00:00") else t
               for t in texts]
    # other offsets, odd shapes: leave them to datetime.fromisoformat, row by row
    if any(len(t) < 10 or "+" in t[10:] or "-" in t[10:] for t in cleaned):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = np.array(cleaned, dtype="datetime64[us]")
    except (ValueError, Warning):
        return None
    if np.isnat(stamps).any():
        return None
    return stamps.astype(np.int64) / 1e6


def _time_unit(table: Table, column: str, values: np.ndarray, numeric: np.ndarray,
               unit: str | None) -> str:
    """The unit of a column's epoch numbers: ``unit`` if given, else read off their size."""
    if unit is not None:
        if unit not in TIME_UNITS:
            raise ValueError(f"time unit must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
        return unit
    size = np.abs(values)
    big = numeric & (size >= MILLISECONDS_FROM)
    if not big.any():
        return "s"
    small = numeric & ~big
    if small.any():
        # the rarer kind is the odd one out
        k = int(np.argmax(small if big.sum() >= small.sum() else big))
        raise table.error(k, column, f"epoch seconds and milliseconds mixed in one column "
                          f"({table.text(column, k)!r}); give the unit (--time-unit s|ms)")
    huge = numeric & (size >= MILLISECONDS_UNTIL)
    if huge.any():
        k = int(np.argmax(huge))
        raise table.error(k, column, f"timestamp {table.text(column, k)!r} is too large for "
                          "epoch seconds or milliseconds")
    return "ms"


def _times(table: Table, column: str, unit: str | None = None) -> tuple[np.ndarray, str]:
    """Epoch seconds of a timestamp column, and the unit its epoch numbers were in."""
    values, ok = table.numbers(column)
    numeric = ok & np.isfinite(values)
    found = _time_unit(table, column, values, numeric, unit)
    if found != "s":
        values = np.where(numeric, values * TIME_UNITS[found], values)
    redo = np.flatnonzero(~numeric)
    texts = table.texts(column, redo)
    bulk = _iso_utc_bulk(texts) if redo.size else None
    if bulk is not None:
        values[redo] = bulk
        return values, found
    for k, text in zip(redo.tolist(), texts):
        try:
            values[k] = _parse_one_time(text)
        except ValueError:
            raise table.error(k, column, f"bad timestamp {text!r}: expected epoch seconds, "
                              "epoch milliseconds or ISO-8601 like 2026-01-05T10:00:00Z") from None
    return values, found


def _non_negative(table: Table, column: str) -> np.ndarray:
    values, ok = table.numbers(column)
    for k in np.flatnonzero(~ok).tolist():
        text = table.text(column, k)
        try:
            values[k] = float(text)
        except ValueError:
            raise table.error(k, column, f"not a number: {text!r}") from None
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        k = int(bad[0])
        raise table.error(k, column,
                          f"must be a finite number >= 0, got {table.text(column, k)!r}")
    return values


def _names(table: Table, column: str) -> Factor:
    """A text column whose values are stripped and must not be empty."""
    f = table.factor(column)
    stripped = [v.strip() for v in f.distinct]
    if stripped != f.distinct:
        # values that differ only in surrounding spaces are the same name
        merged = factor_of(stripped)
        f = Factor(merged.codes[f.codes], merged.distinct)
    if "" in f.distinct:
        k = int(np.argmax(f.codes == f.distinct.index("")))
        raise table.error(k, column, "empty value")
    return f


def _fold_case(f: Factor) -> tuple[Factor, dict[str, list[str]]]:
    """Names that differ only in case as one, spelled as first seen; and the merges made.

    >>> f, merged = _fold_case(factor_of(["Search", "email", "search", "SEARCH"]))
    >>> f.codes.tolist(), f.distinct, merged
    ([0, 1, 0, 0], ['Search', 'email'], {'Search': ['search', 'SEARCH']})
    """
    keys = [v.casefold() for v in f.distinct]
    if len(set(keys)) == len(keys):
        return f, {}
    first: dict[str, int] = {}
    distinct: list[str] = []
    merged: dict[str, list[str]] = {}
    remap = np.empty(len(keys), dtype=np.int64)
    for k, (name, key) in enumerate(zip(f.distinct, keys)):
        if key in first:
            merged.setdefault(distinct[first[key]], []).append(name)
        else:
            first[key] = len(distinct)
            distinct.append(name)
        remap[k] = first[key]
    return Factor(remap[f.codes], distinct), merged


def _mapped(f: Factor, mapper: Callable[[str], int], dtype: type) -> np.ndarray:
    """``mapper`` of each row's value, called once per distinct value."""
    return np.array([mapper(v) for v in f.distinct], dtype=dtype)[f.codes]


def _interactions(table: Table) -> np.ndarray:
    f = table.factor("interaction")
    codes = _mapped(f, lambda v: INTERACTIONS.get(v.strip().lower(), 0), np.int8)
    if codes.size and not codes.all():
        k = int(np.argmin(codes != 0))
        raise table.error(k, "interaction", f"unknown interaction {table.text('interaction', k)!r}"
                          ": expected impression or click")
    return codes


def _channel_order(table: Table, names: Factor, channels: Sequence[str] | None,
                   limit: int | None = MAX_CHANNELS,
                   row_of: Callable[[int], int] = int) -> tuple[tuple[str, ...], np.ndarray]:
    """The channel list and each distinct name's code in it (names match in any case).

    ``row_of`` maps a position in ``names.codes`` to the table row that holds it.
    """
    folded = {v.casefold(): v for v in names.distinct}
    if channels is None:
        order = [folded[c.casefold()] for c in DEFAULT_CHANNELS if c.casefold() in folded]
        known = {c.casefold() for c in DEFAULT_CHANNELS}
        order += sorted(v for k, v in folded.items() if k not in known)
    else:
        order = list(channels)
        allowed = {c.casefold() for c in order}
        stray = [k for k, v in enumerate(names.distinct) if v.casefold() not in allowed]
        if stray:
            k = int(np.argmax(np.isin(names.codes, stray)))
            raise table.error(row_of(k), "channel", f"channel "
                              f"{names.distinct[names.codes[k]]!r} is not one of {', '.join(order)}")
    if limit is not None and len(order) > limit:
        extra = order[limit]
        k = (int(np.argmax(names.codes == names.distinct.index(extra)))
             if extra in names.distinct else 0)
        raise table.error(row_of(k), "channel", f"{len(order)} channels: at most {limit} "
                          "are supported")
    position = {name.casefold(): code for code, name in enumerate(order)}
    return tuple(order), np.array([position[v.casefold()] for v in names.distinct],
                                  dtype=np.int32)


def _case_note(merged: dict[str, list[str]], what: str) -> DataIssue:
    spelled = "; ".join(f"{kept!r} also as {', '.join(repr(o) for o in others)}"
                        for kept, others in merged.items())
    return DataIssue("channel-case", len(merged),
                     f"{what} names that differ only in case are one channel, spelled as "
                     f"first seen: {spelled}", False)


def _unit_note(table: Table, unit: str) -> DataIssue:
    return DataIssue("time-unit", table.n_rows,
                     f"{table.path}: epoch timestamps read as milliseconds (1e11 or more); "
                     "--time-unit s|ms says otherwise", False)


def _conversions(path: str, unit: str | None, issues: list[DataIssue]
                 ) -> tuple[Table, list[str], np.ndarray, np.ndarray]:
    """Journey id, conversion time and value of each conversion row (one per journey)."""
    # no conversion at all can be true (a flight that sold nothing): a warning, not an error
    table = read_table(path, CONVERSION_COLUMNS, allow_empty=True)
    if table.n_rows == 0:
        issues.append(DataIssue("no-conversions", 0, f"{path} has no conversion rows: no "
                                "channel is credited with anything", True))
    ids = _names(table, "journey_id")
    times, found = _times(table, "timestamp", unit)
    if unit is None and found != "s":
        issues.append(_unit_note(table, found))
    values = _non_negative(table, "value")
    _, first = np.unique(ids.codes, return_index=True)
    if first.shape[0] != table.n_rows:
        repeat = np.ones(table.n_rows, dtype=bool)
        repeat[first] = False
        k = int(np.argmax(repeat))
        jid = ids.distinct[ids.codes[k]]
        raise table.error(k, "journey_id", f"journey {jid!r} already converted on "
                          f"{table.unit} {table.line_of(int(first[ids.codes[k]]))}")
    # codes are in order of first appearance and unique here, so row k has code k
    return table, ids.distinct, times, values


def _repeated_rows(columns: Sequence[np.ndarray], journey: np.ndarray,
                   timestamp: np.ndarray) -> np.ndarray:
    """Rows equal in every column to an earlier row (bool [N]); only same-time rows can be."""
    n = journey.shape[0]
    out = np.zeros(n, dtype=bool)
    order = np.lexsort((timestamp, journey))
    tied = (journey[order][1:] == journey[order][:-1]) & (timestamp[order][1:] == timestamp[order][:-1])
    if not tied.any():
        return out
    member = np.zeros(n, dtype=bool)
    member[1:] |= tied
    member[:-1] |= tied
    # the candidates keep file order within a (journey, time) group: the later copy repeats
    cand = np.sort(order[member])
    keys = [c[cand] for c in reversed(columns)] + [timestamp[cand], journey[cand]]
    sorted_rows = cand[np.lexsort(keys)]
    same = np.ones(sorted_rows.shape[0] - 1, dtype=bool)
    for c in (*columns, timestamp, journey):
        same &= c[sorted_rows][1:] == c[sorted_rows][:-1]
    out[sorted_rows[1:][same]] = True
    return out


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def load_journeys(touchpoints_path: str | os.PathLike, conversions_path: str | os.PathLike,
                  channels: Sequence[str] | None = None) -> Journeys:
    """Read touchpoints and conversions into Journeys, sorted by journey then time.

    Journeys keep the order of their first touchpoint in the file. Channel
    codes follow ``channels`` when given (a name outside it is an error), else
    the default taxonomy's order for the names present, then other names sorted.
    ``read_journeys`` also returns what the reading found (``DataIssue``).

    >>> j = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> j.n_journeys, j.channels[:2]
    (4, ('search', 'display'))
    """
    return read_journeys(touchpoints_path, conversions_path, channels).journeys


def read_journeys(touchpoints_path: str | os.PathLike, conversions_path: str | os.PathLike,
                  channels: Sequence[str] | None = None, *, time_unit: str | None = None,
                  lookback_days: float | None = None) -> LoadedJourneys:
    """Journeys as ``load_journeys`` reads them, with per-channel spend and the issues found.

    ``time_unit`` (``s`` or ``ms``) fixes the unit of epoch numbers (None: by their
    size). ``lookback_days``: touches more than that many days before the journey's
    end (its conversion; for a journey that did not convert, its last touch) do not
    count, as an attribution window.

    >>> r = read_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> [str(i) for i in r.issues if i.warning]  # doctest: +NORMALIZE_WHITESPACE
    ["warning: 1 conversion whose journey has no touchpoint is not credited to any
      channel (first: journey 'z', tests/data/conversions.csv line 4)"]
    """
    if lookback_days is not None and not lookback_days > 0:
        raise ValueError(f"lookback must be > 0 days, got {lookback_days}")
    issues: list[DataIssue] = []
    tp = read_table(touchpoints_path, TOUCHPOINT_COLUMNS)
    ids = _names(tp, "journey_id")
    timestamp, found = _times(tp, "timestamp", time_unit)
    if time_unit is None and found != "s":
        issues.append(_unit_note(tp, found))
    names, merged = _fold_case(_names(tp, "channel"))
    if merged:
        issues.append(_case_note(merged, "channel"))
    interaction = _interactions(tp)
    cost = _non_negative(tp, "cost")
    order, codes = _channel_order(tp, names, channels)
    channel = codes[names.codes]
    device = np.zeros(tp.n_rows, dtype=np.int8)
    if tp.has("device"):
        device = _mapped(tp.factor("device"), lambda v: DEVICES.get(v.strip().lower(), 0),
                         np.int8)
    row_category = np.full(tp.n_rows, UNKNOWN_CATEGORY, dtype=np.int32)
    if tp.has("product_category"):
        row_category = _mapped(tp.factor("product_category"), category_code, np.int32)
    journey = ids.codes
    n_j = len(ids.distinct)
    journey_ids = np.array(ids.distinct, dtype=object)

    repeated = _repeated_rows((channel, interaction, cost, device, row_category), journey,
                              timestamp)
    if repeated.any():
        k = _first(repeated)
        issues.append(DataIssue(
            "duplicate-rows", int(repeated.sum()),
            f"{int(repeated.sum())} touchpoint row(s) repeat an earlier row of the same journey "
            f"in every column and are counted once (first: journey {ids.distinct[journey[k]]!r}, "
            f"{tp.path} {tp.unit} {tp.line_of(k)})", True))
    spend = np.bincount(channel[~repeated], weights=cost[~repeated], minlength=len(order))

    conv_table, conv_ids, conv_times, conv_values = _conversions(
        os.fspath(conversions_path), time_unit, issues)
    position = {jid: j for j, jid in enumerate(ids.distinct)}
    conversion_time = np.full(n_j, np.nan)
    value = np.zeros(n_j)
    conv_row = np.full(n_j, -1, dtype=np.int64)
    orphans = []
    for k, jid in enumerate(conv_ids):
        j = position.get(jid)
        if j is None:
            orphans.append(k)
        else:
            conversion_time[j] = conv_times[k]
            value[j] = conv_values[k]
            conv_row[j] = k
    if orphans:
        k = orphans[0]
        issues.append(DataIssue(
            "conversion-without-touchpoints", len(orphans),
            f"{_count(len(orphans), 'conversion')} whose journey has no touchpoint "
            f"{'is' if len(orphans) == 1 else 'are'} not credited to any channel (first: "
            f"journey {conv_ids[k]!r}, {conv_table.path} {conv_table.unit} {conv_table.line_of(k)})",
            True))
    # a touch after the conversion did not lead to it
    after = timestamp > conversion_time[journey]
    keep = ~after & ~repeated
    older = np.zeros(tp.n_rows, dtype=bool)
    if lookback_days is not None:
        last = np.full(n_j, -np.inf)
        np.maximum.at(last, journey[keep], timestamp[keep])
        end = np.where(np.isnan(conversion_time), last, conversion_time)
        older = keep & (timestamp < end[journey] - lookback_days * _DAY)
        keep &= ~older
    converted_all = ~np.isnan(conversion_time)
    had = np.bincount(journey[~repeated], minlength=n_j) > 0
    kept = np.bincount(journey[keep], minlength=n_j) > 0
    before_none = converted_all & had & ~(np.bincount(journey[~repeated & ~after],
                                                      minlength=n_j) > 0)
    if before_none.any():
        j = _first(before_none)
        issues.append(DataIssue(
            "touches-after-conversion", int(before_none.sum()),
            f"{_count(int(before_none.sum()), 'conversion')} whose every touchpoint comes after "
            f"the conversion {'is' if before_none.sum() == 1 else 'are'} not credited (first: "
            f"journey {ids.distinct[j]!r}, {conv_table.path} {conv_table.unit} "
            f"{conv_table.line_of(int(conv_row[j]))})", True))
    outside = converted_all & had & ~before_none & ~kept
    if outside.any():
        j = _first(outside)
        issues.append(DataIssue(
            "outside-lookback", int(outside.sum()),
            f"{_count(int(outside.sum()), 'conversion')} with no touchpoint in the "
            f"{lookback_days:g}-day lookback window {'is' if outside.sum() == 1 else 'are'} not "
            f"credited (first: journey {ids.distinct[j]!r}, {conv_table.path} {conv_table.unit} "
            f"{conv_table.line_of(int(conv_row[j]))})", True))
    late = after & ~repeated & ~before_none[journey]
    if late.any():
        issues.append(DataIssue(
            "after-conversion", int(late.sum()),
            f"{_count(int(late.sum()), 'touchpoint')} after the journey's conversion "
            f"{'does' if late.sum() == 1 else 'do'} not count for it", False))
    if older.any():
        issues.append(DataIssue(
            "before-lookback", int(older.sum()),
            f"{_count(int(older.sum()), 'touchpoint')} older than the {lookback_days:g}-day "
            f"lookback window {'does' if older.sum() == 1 else 'do'} not count", False))

    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((timestamp[rows], journey[rows]))]
    counts = np.bincount(journey[rows], minlength=n_j)
    alive = np.flatnonzero(counts > 0)
    offsets = np.zeros(alive.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts[alive], out=offsets[1:])
    category = np.full(alive.shape[0], UNKNOWN_CATEGORY, dtype=np.int32)
    # the journey's category: its latest touch that names a known one
    new_index = np.full(n_j, -1, dtype=np.int64)
    new_index[alive] = np.arange(alive.shape[0])
    known = rows[row_category[rows] != UNKNOWN_CATEGORY][::-1]
    owners, first = np.unique(new_index[journey[known]], return_index=True)
    category[owners] = row_category[known[first]]
    journeys = Journeys(
        ids=journey_ids[alive], offsets=offsets, channel=channel[rows],
        timestamp=timestamp[rows], interaction=interaction[rows], cost=cost[rows],
        device=device[rows], category=category,
        converted=~np.isnan(conversion_time[alive]), conversion_time=conversion_time[alive],
        value=value[alive], channels=order)
    return LoadedJourneys(journeys, None, spend, tuple(issues), True,
                          (journey[~repeated], channel[~repeated], cost[~repeated]))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def read_paths(path: str | os.PathLike, sep: str = ">",
               channels: Sequence[str] | None = None) -> LoadedJourneys:
    """Aggregated paths (ChannelAttribution's format) as weighted journeys.

    Each row ``path,total_conversions[,total_conversion_value][,total_null]``
    becomes up to two journeys: one converted, weighing ``total_conversions``
    (value: the row's value per conversion), one not, weighing ``total_null``.
    Touches carry no time or cost, so time-decay, the lookback window and spend
    do not apply.

    >>> import tempfile
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "paths.csv"
    >>> _ = f.write_text("path;total_conversions;total_null\\na > b;2;1\\nb;0;3\\n")
    >>> r = read_paths(f)
    >>> r.journeys.channels, r.weight.tolist(), r.journeys.converted.tolist()
    (('a', 'b'), [2.0, 1.0, 3.0], [True, False, False])
    """
    table = read_table(path, PATH_COLUMNS)
    raw = table.factor("path")
    conv = _non_negative(table, "total_conversions")
    value = _non_negative(table, "total_conversion_value") if table.has(
        "total_conversion_value") else np.zeros(table.n_rows)
    null = _non_negative(table, "total_null") if table.has("total_null") else np.zeros(
        table.n_rows)
    issues: list[DataIssue] = []
    split = [[name.strip() for name in p.split(sep) if name.strip()] for p in raw.distinct]
    empty = np.array([not s for s in split], dtype=bool)[raw.codes]
    if empty.any():
        k = _first(empty)
        issues.append(DataIssue(
            "empty-path", int(empty.sum()),
            f"{_count(int(empty.sum()), 'row')} with no channel in the path left out (first: "
            f"{table.path} {table.unit} {table.line_of(k)})", True))
    names, merged = _fold_case(factor_of([n for s in split for n in s]))
    if merged:
        issues.append(_case_note(merged, "channel"))
    bounds = np.concatenate([[0], np.cumsum([len(s) for s in split])]).astype(np.int64)
    _, first_row = np.unique(raw.codes, return_index=True)
    path_of = np.repeat(np.arange(len(split)), np.diff(bounds))
    # the only limit on channels is the model's; a paths file feeds no model
    order, codes = _channel_order(table, names, channels, None,
                                  lambda k: int(first_row[path_of[k]]))
    flat = codes[names.codes]
    # one journey per (row, outcome) with a positive count
    rows = np.concatenate([np.flatnonzero(~empty & (conv > 0)), np.flatnonzero(~empty & (null > 0))])
    outcome = np.concatenate([np.ones(int((~empty & (conv > 0)).sum()), dtype=bool),
                              np.zeros(int((~empty & (null > 0)).sum()), dtype=bool)])
    order_rows = np.lexsort((~outcome, rows))
    rows, outcome = rows[order_rows], outcome[order_rows]
    distinct = raw.codes[rows]
    lengths = bounds[distinct + 1] - bounds[distinct]
    offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    touch = (np.repeat(bounds[distinct] - offsets[:-1], lengths) + np.arange(offsets[-1]))
    n = int(offsets[-1])
    weight = np.where(outcome, conv[rows], null[rows])
    per_conversion = np.divide(value[rows], conv[rows], out=np.zeros(rows.shape[0]),
                               where=conv[rows] > 0)
    journeys = Journeys(
        ids=np.array([f"row {r + 1}" for r in rows.tolist()], dtype=object),
        offsets=offsets, channel=flat[touch].astype(np.int32), timestamp=np.zeros(n),
        interaction=np.full(n, IMPRESSION, dtype=np.int8), cost=np.zeros(n),
        device=np.zeros(n, dtype=np.int8),
        category=np.full(rows.shape[0], UNKNOWN_CATEGORY, dtype=np.int32), converted=outcome,
        conversion_time=np.where(outcome, 0.0, np.nan),
        value=np.where(outcome, per_conversion, 0.0), channels=order)
    return LoadedJourneys(journeys, weight.astype(np.float64), None, tuple(issues), timed=False)


def _number_text(values: np.ndarray) -> list[str]:
    # whole numbers print without a fraction; others keep every digit (round trip exact)
    if values.size and np.all(values == np.round(values)) and np.abs(values).max() < 2**53:
        return [str(v) for v in values.astype(np.int64).tolist()]
    return [repr(v) for v in values.tolist()]


def _touch_rows(journeys: Journeys) -> list[tuple[str, ...]]:
    lengths = journeys.lengths()
    ids = np.repeat(journeys.ids, lengths).tolist()
    cats = [PRODUCT_CATEGORIES[c] if 0 <= c < len(PRODUCT_CATEGORIES) else ""
            for c in journeys.category.tolist()]
    return list(zip(
        ids, _number_text(journeys.timestamp),
        [journeys.channels[c] for c in journeys.channel.tolist()],
        [_INTERACTION_NAMES[i] for i in journeys.interaction.tolist()],
        _number_text(journeys.cost),
        [_DEVICE_NAMES.get(d, "unknown") for d in journeys.device.tolist()],
        np.repeat(np.array(cats, dtype=object), lengths).tolist()))


def write_journeys(journeys: Journeys, touchpoints_path: str | os.PathLike,
                   conversions_path: str | os.PathLike,
                   extra_touchpoints: Journeys | None = None) -> None:
    """Write journeys in the format ``load_journeys`` reads.

    ``extra_touchpoints`` (same channel list) are appended to the touchpoints
    file, e.g. touches after a conversion that a loader must drop.

    >>> import tempfile, os
    >>> j = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> d = tempfile.mkdtemp()
    >>> write_journeys(j, os.path.join(d, "t.csv"), os.path.join(d, "c.csv"))
    >>> load_journeys(os.path.join(d, "t.csv"), os.path.join(d, "c.csv")).n_touchpoints
    9
    """
    with open(touchpoints_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow((*TOUCHPOINT_COLUMNS, *OPTIONAL_TOUCHPOINT_COLUMNS))
        writer.writerows(_touch_rows(journeys))
        if extra_touchpoints is not None:
            if extra_touchpoints.channels != journeys.channels:
                raise ValueError("extra_touchpoints must use the same channels")
            writer.writerows(_touch_rows(extra_touchpoints))
    conv = np.flatnonzero(journeys.converted)
    with open(conversions_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CONVERSION_COLUMNS)
        writer.writerows(zip(journeys.ids[conv].tolist(),
                             _number_text(journeys.conversion_time[conv]),
                             _number_text(journeys.value[conv])))
