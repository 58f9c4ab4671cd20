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
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from .journeys import Journeys
from .taxonomy import (
    DEFAULT_CHANNELS, DEVICES, INTERACTIONS, MAX_CHANNELS, PRODUCT_CATEGORIES,
    UNKNOWN_CATEGORY, category_code,
)

TOUCHPOINT_COLUMNS = ("journey_id", "timestamp", "channel", "interaction", "cost")
OPTIONAL_TOUCHPOINT_COLUMNS = ("device", "product_category")
CONVERSION_COLUMNS = ("journey_id", "timestamp", "value")
_NUMERIC = ("timestamp", "cost", "value")
_DEVICE_NAMES = {code: name for name, code in DEVICES.items()}
_INTERACTION_NAMES = {code: name for name, code in INTERACTIONS.items()}


class DataError(ValueError):
    """A malformed input file; the message names the file, line and column."""

    def __init__(self, path: str, line: int | None, column: str | None, message: str,
                 unit: str = "line") -> None:
        where = f"{path}"
        if line is not None:
            where += f", {unit} {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


class _Table:
    """Columns of one file as sequences, and how to name the row a value came from."""

    def __init__(self, path: str, columns: dict[str, Sequence], n_rows: int,
                 line_of: Callable[[int], int], unit: str) -> None:
        self.path, self.columns, self.n_rows = path, columns, n_rows
        self._line_of, self.unit = line_of, unit

    def error(self, row: int, column: str, message: str) -> DataError:
        return DataError(self.path, self._line_of(row), column, message, self.unit)


def _csv_line_of(path: str) -> Callable[[int], int]:
    # rescanning only when an error is reported keeps the fast path free of bookkeeping
    def line_of(row: int) -> int:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            seen = -1
            for record in reader:
                if record:
                    seen += 1
                    if seen == row:
                        return reader.line_num
        return -1
    return line_of


def _split_fast(text: str) -> tuple[list[str], list[str], int] | None:
    """Header fields, every data field in row order, and the row count, of a CSV
    without quoting; None if it has quotes (the csv module reads those)."""
    if '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    head, _, body = text.partition("\n")
    body = body.rstrip("\n")
    if body.startswith("\n") or "\n\n" in body:
        lines = [line for line in body.split("\n") if line]
        body = "\n".join(lines)
    if not body:
        return head.split(","), [], 0
    # one C-level split over the whole body: row ends become field separators
    return head.split(","), body.replace("\n", ",").split(","), body.count("\n") + 1


def _read_csv(path: str, required: Sequence[str], optional: Sequence[str]) -> _Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except OSError as exc:
        raise DataError(path, None, None, f"cannot open: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, None, None, f"not UTF-8 text: {exc}") from None
    line_of = _csv_line_of(path)
    fast = _split_fast(text)
    if fast is not None:
        # plain comma-separated text: split it all at once, in C
        header_fields, flat, rows = fast
        header = [h.strip() for h in header_fields]
        width = len(header)
        if len(flat) != width * rows:
            lines = [line for line in text.splitlines()[1:] if line]
            bad = next(k for k, line in enumerate(lines) if line.count(",") != width - 1)
            raise DataError(path, line_of(bad), None, f"expected {width} fields, "
                            f"found {lines[bad].count(',') + 1}")
        data: list[Sequence[str]] = [flat[i::width] for i in range(width)]
    else:
        reader = csv.reader(text.splitlines())
        try:
            header = [h.strip() for h in next(reader)]
            records = [r for r in reader if r]
        except StopIteration:
            header, records = [], []
        except csv.Error as exc:
            raise DataError(path, reader.line_num, None, f"malformed CSV: {exc}") from None
        width, rows = len(header), len(records)
        bad = next((k for k, r in enumerate(records) if len(r) != width), None)
        if bad is not None:
            raise DataError(path, line_of(bad), None,
                            f"expected {width} fields, found {len(records[bad])}")
        data = [list(col) for col in zip(*records)] if records else [[] for _ in header]
    if not header or header == [""]:
        raise DataError(path, 1, None, "empty file: expected a header row")
    for name in required:
        if name not in header:
            raise DataError(path, 1, name, f"missing column (header has {', '.join(header)})")
    columns = {name: data[header.index(name)] for name in (*required, *optional)
               if name in header}
    return _Table(path, columns, rows, line_of, "line")


def _read_parquet(path: str, required: Sequence[str], optional: Sequence[str]) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(path, None, None, "reading Parquet needs pyarrow installed") from None
    table = pq.read_table(path)
    names = table.column_names
    for name in required:
        if name not in names:
            raise DataError(path, None, name, f"missing column (file has {', '.join(names)})")
    columns: dict[str, Sequence] = {}
    for name in (*required, *optional):
        if name in names:
            col = table.column(name)
            kind = str(col.type)
            if kind.startswith("timestamp"):
                micros = col.cast("timestamp[us]").cast("int64").to_numpy(zero_copy_only=False)
                columns[name] = np.asarray(micros, dtype=np.float64) / 1e6
            elif name in _NUMERIC and kind.startswith(("int", "uint", "float", "double")):
                columns[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
            else:
                columns[name] = ["" if v is None else str(v) for v in col.to_pylist()]
    return _Table(path, columns, table.num_rows, lambda row: row + 1, "row")


def _read(path: str, required: Sequence[str], optional: Sequence[str] = ()) -> _Table:
    path = os.fspath(path)
    if path.lower().endswith((".parquet", ".pq")):
        return _read_parquet(path, required, optional)
    return _read_csv(path, required, optional)


def _parse_one_time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _times(table: _Table, column: str) -> np.ndarray:
    values = table.columns[column]
    try:
        out = np.asarray(values, dtype=np.float64)
        if np.all(np.isfinite(out)):
            return out
    except ValueError:
        pass
    out = np.empty(table.n_rows)
    for k, text in enumerate(values):
        try:
            out[k] = _parse_one_time(text) if isinstance(text, str) else float(text)
            if not math.isfinite(out[k]):
                raise ValueError("not finite")
        except (ValueError, TypeError):
            raise table.error(k, column, f"bad timestamp {text!r}: expected epoch seconds "
                              "or ISO-8601 like 2026-01-05T10:00:00Z") from None
    return out


def _non_negative(table: _Table, column: str) -> np.ndarray:
    values = table.columns[column]
    try:
        out = np.asarray(values, dtype=np.float64)
    except ValueError:
        out = np.empty(table.n_rows)
        for k, text in enumerate(values):
            try:
                out[k] = float(text)
            except ValueError:
                raise table.error(k, column, f"not a number: {text!r}") from None
    bad = np.flatnonzero(~np.isfinite(out) | (out < 0))
    if bad.size:
        raise table.error(int(bad[0]), column,
                          f"must be a finite number >= 0, got {values[bad[0]]!r}")
    return out


def _mapped(values: Sequence[str], mapper: Callable[[str], object]) -> list:
    """``[mapper(v) for v in values]``, calling mapper once per distinct value."""
    table = {v: mapper(v) for v in dict.fromkeys(values)}
    return list(map(table.__getitem__, values))


def _codes(values: Sequence[str], mapper: Callable[[str], int], dtype: type) -> np.ndarray:
    table = {v: mapper(v) for v in dict.fromkeys(values)}
    return np.fromiter(map(table.__getitem__, values), dtype=dtype, count=len(values))


def _names(table: _Table, column: str) -> tuple[list[str], list[str]]:
    """The column's values, stripped and non-empty, and its distinct values in order."""
    values = table.columns[column]
    distinct = list(dict.fromkeys(values))
    # strip only when some distinct value needs it: one pass over the rows in the usual case
    if any(not v or v != v.strip() for v in distinct):
        values = _mapped(values, str.strip)
        distinct = list(dict.fromkeys(values))
        if "" in distinct:
            raise table.error(values.index(""), column, "empty value")
    return list(values), distinct


def _interactions(table: _Table) -> np.ndarray:
    values = table.columns["interaction"]
    codes = _codes(values, lambda v: INTERACTIONS.get(v.strip().lower(), 0), np.int8)
    bad = np.flatnonzero(codes == 0)
    if bad.size:
        raise table.error(int(bad[0]), "interaction",
                          f"unknown interaction {values[bad[0]]!r}: expected impression or click")
    return codes


def _channel_order(table: _Table, names: list[str], distinct: list[str],
                   channels: Sequence[str] | None) -> tuple[str, ...]:
    present = set(distinct)
    if channels is None:
        order = [c for c in DEFAULT_CHANNELS if c in present]
        order += sorted(present.difference(DEFAULT_CHANNELS))
    else:
        order = list(channels)
        known = set(order)
        if not present <= known:
            stray = next(k for k, v in enumerate(names) if v not in known)
            raise table.error(stray, "channel", f"channel {names[stray]!r} is not one of "
                              f"{', '.join(order)}")
    if len(order) > MAX_CHANNELS:
        first = names.index(order[MAX_CHANNELS]) if order[MAX_CHANNELS] in present else 0
        raise table.error(first, "channel", f"{len(order)} channels: at most {MAX_CHANNELS} "
                          "are supported")
    return tuple(order)


def _conversions(path: str) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """journey_id -> row, conversion time and value of each conversion row."""
    table = _read(path, CONVERSION_COLUMNS)
    ids, _ = _names(table, "journey_id")
    times = _times(table, "timestamp")
    values = _non_negative(table, "value")
    index: dict[str, int] = {}
    for k, jid in enumerate(ids):
        if index.setdefault(jid, k) != k:
            raise table.error(k, "journey_id", f"journey {jid!r} already converted on "
                              f"{table.unit} {table._line_of(index[jid])}")
    return index, times, values


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
    tp = _read(touchpoints_path, TOUCHPOINT_COLUMNS, OPTIONAL_TOUCHPOINT_COLUMNS)
    ids, distinct_ids = _names(tp, "journey_id")
    timestamp = _times(tp, "timestamp")
    names, distinct_names = _names(tp, "channel")
    interaction = _interactions(tp)
    cost = _non_negative(tp, "cost")
    order = _channel_order(tp, names, distinct_names, channels)
    lookup = {name: code for code, name in enumerate(order)}
    channel = np.fromiter(map(lookup.__getitem__, names), dtype=np.int32, count=tp.n_rows)
    device = np.zeros(tp.n_rows, dtype=np.int8)
    if "device" in tp.columns:
        device = _codes(tp.columns["device"], lambda v: DEVICES.get(v.strip().lower(), 0),
                        np.int8)
    row_category = np.full(tp.n_rows, UNKNOWN_CATEGORY, dtype=np.int32)
    if "product_category" in tp.columns:
        row_category = _codes(tp.columns["product_category"], category_code, np.int32)
    first_seen = {jid: k for k, jid in enumerate(distinct_ids)}
    journey = np.fromiter(map(first_seen.__getitem__, ids), dtype=np.int64, count=tp.n_rows)
    journey_ids = np.array(list(first_seen), dtype=object)

    conv_index, conv_times, conv_values = _conversions(os.fspath(conversions_path))
    n_j = len(first_seen)
    conversion_time = np.full(n_j, np.nan)
    value = np.zeros(n_j)
    for jid, k in conv_index.items():
        j = first_seen.get(jid)
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
