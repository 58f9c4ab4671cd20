"""Journeys from files: touchpoints + conversions (CSV, or Parquet when pyarrow is installed).

touchpoints: ``journey_id,timestamp,channel,interaction,cost`` and optionally
``device`` and ``product_category``; conversions: ``journey_id,timestamp,value``.
A timestamp is epoch seconds or ISO-8601 (UTC when it carries no offset).
A journey with no conversion row did not convert; touchpoints after a
journey's conversion are dropped, and a journey left with no touchpoint is
left out (no channel can be credited with it). A conversion row whose journey
has no touchpoint is ignored for the same reason.

Any malformed value raises ``DataError`` naming the file, the line and the column.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from .journeys import Journeys
from .tables import DataError, Factor, Table, factor_of, read_table
from attribid.kernels.taxonomy import (
    DEFAULT_CHANNELS, DEVICES, INTERACTIONS, MAX_CHANNELS, PRODUCT_CATEGORIES,
    UNKNOWN_CATEGORY, category_code,
)

__all__ = ["DataError", "load_journeys", "write_journeys"]

TOUCHPOINT_COLUMNS = ("journey_id", "timestamp", "channel", "interaction", "cost")
OPTIONAL_TOUCHPOINT_COLUMNS = ("device", "product_category")
CONVERSION_COLUMNS = ("journey_id", "timestamp", "value")
_DEVICE_NAMES = {code: name for name, code in DEVICES.items()}
_INTERACTION_NAMES = {code: name for name, code in INTERACTIONS.items()}


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


def _times(table: Table, column: str) -> np.ndarray:
    values, ok = table.numbers(column)
    redo = np.flatnonzero(~ok | ~np.isfinite(values))
    texts = table.texts(column, redo)
    bulk = _iso_utc_bulk(texts) if redo.size else None
    if bulk is not None:
        values[redo] = bulk
        return values
    for k, text in zip(redo.tolist(), texts):
        try:
            values[k] = _parse_one_time(text)
        except ValueError:
            raise table.error(k, column, f"bad timestamp {text!r}: expected epoch seconds "
                              "or ISO-8601 like 2026-01-05T10:00:00Z") from None
    return values


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


def _channel_order(table: Table, names: Factor,
                   channels: Sequence[str] | None) -> tuple[str, ...]:
    present = set(names.distinct)
    if channels is None:
        order = [c for c in DEFAULT_CHANNELS if c in present]
        order += sorted(present.difference(DEFAULT_CHANNELS))
    else:
        order = list(channels)
        stray = [k for k, v in enumerate(names.distinct) if v not in set(order)]
        if stray:
            k = int(np.argmax(np.isin(names.codes, stray)))
            raise table.error(k, "channel", f"channel {names.distinct[names.codes[k]]!r} is "
                              f"not one of {', '.join(order)}")
    if len(order) > MAX_CHANNELS:
        extra = order[MAX_CHANNELS]
        k = int(np.argmax(names.codes == names.distinct.index(extra))) if extra in present else 0
        raise table.error(k, "channel", f"{len(order)} channels: at most {MAX_CHANNELS} "
                          "are supported")
    return tuple(order)


def _conversions(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Journey id, conversion time and value of each conversion row (one per journey)."""
    table = read_table(path, CONVERSION_COLUMNS)
    ids = _names(table, "journey_id")
    times = _times(table, "timestamp")
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
    return ids.distinct, times, values


def load_journeys(touchpoints_path: str | os.PathLike, conversions_path: str | os.PathLike,
                  channels: Sequence[str] | None = None) -> Journeys:
    """Read touchpoints and conversions into Journeys, sorted by journey then time.

    Journeys keep the order of their first touchpoint in the file. Channel
    codes follow ``channels`` when given (a name outside it is an error), else
    the default taxonomy's order for the names present, then other names sorted.

    >>> j = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> j.n_journeys, j.channels[:2]
    (4, ('search', 'display'))
    """
    tp = read_table(touchpoints_path, TOUCHPOINT_COLUMNS)
    ids = _names(tp, "journey_id")
    timestamp = _times(tp, "timestamp")
    names = _names(tp, "channel")
    interaction = _interactions(tp)
    cost = _non_negative(tp, "cost")
    order = _channel_order(tp, names, channels)
    channel = _mapped(names, {name: code for code, name in enumerate(order)}.__getitem__,
                      np.int32)
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

    conv_ids, conv_times, conv_values = _conversions(os.fspath(conversions_path))
    position = {jid: j for j, jid in enumerate(ids.distinct)}
    conversion_time = np.full(n_j, np.nan)
    value = np.zeros(n_j)
    for k, jid in enumerate(conv_ids):
        j = position.get(jid)
        if j is not None:
            conversion_time[j] = conv_times[k]
            value[j] = conv_values[k]
    # a touch after the conversion did not lead to it
    keep = ~(timestamp > conversion_time[journey])
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
    return Journeys(
        ids=journey_ids[alive], offsets=offsets, channel=channel[rows],
        timestamp=timestamp[rows], interaction=interaction[rows], cost=cost[rows],
        device=device[rows], category=category,
        converted=~np.isnan(conversion_time[alive]), conversion_time=conversion_time[alive],
        value=value[alive], channels=order)


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
