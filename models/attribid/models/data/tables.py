"""Columns of one input file, read in bulk, with the file/line/column of any value.

Plain CSV (no quotes) is read by the Numba kernels of ``csvscan`` straight from
bytes; quoted CSV goes through the ``csv`` module and Parquet through pyarrow.
The delimiter is read off the header: ``,``, else ``;``, else a tab. A file with
no row after its header is an error unless the caller allows it.
Every reader offers the same columns: ``factor`` (a text column as codes in
order of first appearance + its distinct values), ``numbers`` (decimal values
and where the fast parse succeeded) and ``text`` (one raw value, for messages).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from attribid.kernels.csvscan import OK, first_mismatch, hash_fields, join_spans, parse_numbers, scan_fields


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


@dataclass(frozen=True)
class Factor:
    """A text column: ``codes`` int64 [rows] into ``distinct`` (first appearance first)."""

    codes: np.ndarray
    distinct: list[str]


def factor_of(values: Sequence[str]) -> Factor:
    """Factor of a list of strings.

    >>> f = factor_of(["b", "a", "b"])
    >>> f.codes.tolist(), f.distinct
    ([0, 1, 0], ['b', 'a'])
    """
    distinct = list(dict.fromkeys(values))
    index = {v: k for k, v in enumerate(distinct)}
    return Factor(np.fromiter(map(index.__getitem__, values), dtype=np.int64,
                              count=len(values)), distinct)


class Table:
    """The columns of one file; ``error`` names the file, line (or row) and column."""

    def __init__(self, path: str, header: Sequence[str], n_rows: int,
                 line_of: Callable[[int], int], unit: str, sep: str = ",") -> None:
        self.path, self.header, self.n_rows = path, list(header), n_rows
        self.line_of, self.unit = line_of, unit
        #: the field delimiter (``,`` for Parquet)
        self.sep = sep

    def has(self, column: str) -> bool:
        return column in self.header

    def error(self, row: int, column: str | None, message: str) -> DataError:
        return DataError(self.path, self.line_of(row), column, message, self.unit)

    def factor(self, column: str) -> Factor:
        raise NotImplementedError

    def numbers(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Values of a number column and where they parsed (False rows: see ``text``)."""
        raise NotImplementedError

    def text(self, column: str, row: int) -> str:
        raise NotImplementedError

    def texts(self, column: str, rows: np.ndarray) -> list[str]:
        """The raw values at ``rows``."""
        return [self.text(column, r) for r in rows.tolist()]


class ListTable(Table):
    """Columns held as lists of strings (or float arrays, from typed Parquet columns)."""

    def __init__(self, path: str, columns: dict[str, Sequence], n_rows: int,
                 line_of: Callable[[int], int], unit: str, sep: str = ",") -> None:
        super().__init__(path, list(columns), n_rows, line_of, unit, sep)
        self.columns = columns

    def factor(self, column: str) -> Factor:
        values = self.columns[column]
        if isinstance(values, np.ndarray):
            values = [str(v) for v in values.tolist()]
        return factor_of(values)

    def numbers(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.columns[column]
        try:
            return np.asarray(values, dtype=np.float64), np.ones(self.n_rows, dtype=bool)
        except ValueError:
            pass
        out = np.full(self.n_rows, np.nan)
        ok = np.zeros(self.n_rows, dtype=bool)
        for k, text in enumerate(values):
            try:
                out[k] = float(text)
                ok[k] = True
            except ValueError:
                pass
        return out, ok

    def text(self, column: str, row: int) -> str:
        return str(self.columns[column][row])


class BytesTable(Table):
    """A plain CSV read as bytes: field spans from ``csvscan``, values decoded on demand."""

    def __init__(self, path: str, header: Sequence[str], body: bytes, starts: np.ndarray,
                 ends: np.ndarray, line_of: Callable[[int], int], sep: str = ",") -> None:
        super().__init__(path, header, starts.shape[1], line_of, "line", sep)
        self.body, self.buf = body, np.frombuffer(body, dtype=np.uint8)
        self.starts, self.ends = starts, ends

    def _span(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        c = self.header.index(column)
        return np.ascontiguousarray(self.starts[c]), np.ascontiguousarray(self.ends[c])

    def _decode(self, start: int, end: int, column: str, row: int) -> str:
        try:
            return self.body[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(row, column, "not UTF-8 text") from None

    def factor(self, column: str) -> Factor:
        starts, ends = self._span(column)
        hashes = hash_fields(self.buf, starts, ends)
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        if first_mismatch(self.buf, starts, ends, first[inverse]) >= 0:
            # two different values share a hash: fall back to comparing strings
            return factor_of([self._decode(s, e, column, k)
                              for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist()))])
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        rows = first[order]
        if rows.size == 0:
            return Factor(np.zeros(0, dtype=np.int64), [])
        try:
            distinct = join_spans(self.buf, starts[rows], ends[rows]).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            distinct = [self._decode(int(starts[k]), int(ends[k]), column, int(k))
                        for k in rows.tolist()]
        return Factor(rank[inverse].astype(np.int64), distinct)

    def numbers(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self._span(column)
        values, ok = parse_numbers(self.buf, starts, ends)
        rest = np.flatnonzero(~ok)
        if rest.size:
            # outside the exact fast path (e.g. 17 significant digits): NumPy's float parse,
            # in one call; if any text is no number at all, the caller looks row by row
            try:
                values[rest] = np.asarray(self.texts(column, rest), dtype=np.float64)
                ok[rest] = True
            except ValueError:
                pass
        return values, ok

    def text(self, column: str, row: int) -> str:
        c = self.header.index(column)
        return self.body[self.starts[c, row]:self.ends[c, row]].decode("utf-8", errors="replace")

    def texts(self, column: str, rows: np.ndarray) -> list[str]:
        if rows.size == 0:
            return []
        starts, ends = self._span(column)
        joined = join_spans(self.buf, starts[rows], ends[rows])
        return joined.decode("utf-8", errors="replace").split("\n")


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: ``,`` if it has one, else ``;``, else a tab.

    >>> sniff_delimiter("path;total_conversions"), sniff_delimiter("a,b;c")
    (';', ',')
    """
    for sep in (",", ";", "\t"):
        if sep in header:
            return sep
    return ","


def csv_line_of(path: str, sep: str = ",") -> Callable[[int], int]:
    """row index (blank lines skipped) -> line number, by rescanning only when asked."""
    def line_of(row: int) -> int:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=sep)
            next(reader, None)
            seen = -1
            for record in reader:
                if record:
                    seen += 1
                    if seen == row:
                        return reader.line_num
        return -1
    return line_of


def _read_bytes_csv(path: str, data: bytes) -> BytesTable | None:
    """The fast reader; None when the file needs the general one (quotes, bad rows)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head, newline, _ = data.partition(b"\n")
    if not newline or b'"' in head:
        return None
    try:
        text = head.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None
    sep = sniff_delimiter(text)
    header = [h.strip() for h in text.split(sep)]
    body = data[len(head) + 1:]
    starts, ends, status = scan_fields(np.frombuffer(body, dtype=np.uint8), len(header), sep)
    if status != OK:
        return None
    return BytesTable(path, header, body, starts, ends, csv_line_of(path, sep), sep)


def _read_text_csv(path: str, data: bytes) -> ListTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, None, None, f"not UTF-8 text: {exc}") from None
    sep = sniff_delimiter(text.partition("\n")[0])
    line_of = csv_line_of(path, sep)
    reader = csv.reader(text.splitlines(), delimiter=sep)
    try:
        header = [h.strip() for h in next(reader)]
        records = [r for r in reader if r]
    except StopIteration:
        header, records = [], []
    except csv.Error as exc:
        raise DataError(path, reader.line_num, None, f"malformed CSV: {exc}") from None
    if not header or header == [""]:
        raise DataError(path, 1, None, "empty file: expected a header row")
    width = len(header)
    bad = next((k for k, r in enumerate(records) if len(r) != width), None)
    if bad is not None:
        raise DataError(path, line_of(bad), None,
                        f"expected {width} fields, found {len(records[bad])}")
    data_cols = [list(col) for col in zip(*records)] if records else [[] for _ in header]
    return ListTable(path, dict(zip(header, data_cols)), len(records), line_of, "line", sep)


def _read_parquet(path: str) -> ListTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(path, None, None, "reading Parquet needs pyarrow installed") from None
    table = pq.read_table(path)
    columns: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        kind = str(col.type)
        if kind.startswith("timestamp"):
            micros = col.cast("timestamp[us]").cast("int64").to_numpy(zero_copy_only=False)
            columns[name] = np.asarray(micros, dtype=np.float64) / 1e6
        elif kind.startswith(("int", "uint", "float", "double")):
            columns[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        else:
            columns[name] = ["" if v is None else str(v) for v in col.to_pylist()]
    return ListTable(path, columns, table.num_rows, lambda row: row + 1, "row")


def read_table(path: str | os.PathLike, required: Sequence[str],
               allow_empty: bool = False) -> Table:
    """The file at ``path`` (CSV, or Parquet by its suffix) with ``required`` columns checked.

    A file with no row after its header is an error unless ``allow_empty``.

    >>> t = read_table("tests/data/conversions.csv", ["journey_id", "value"])
    >>> t.n_rows, t.factor("journey_id").distinct
    (3, ['a', 'c', 'z'])
    """
    path = os.fspath(path)
    if path.lower().endswith((".parquet", ".pq")):
        table: Table = _read_parquet(path)
        unit_line = None
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise DataError(path, None, None, f"cannot open: {exc.strerror}") from None
        table = _read_bytes_csv(path, data) or _read_text_csv(path, data)
        unit_line = 1
    for name in required:
        if not table.has(name):
            raise DataError(path, unit_line, name,
                            f"missing column (header has {', '.join(table.header)})")
    if table.n_rows == 0 and not allow_empty:
        # an export that lost its rows would otherwise read as "no journeys, no credit"
        raise DataError(path, None, None, "no rows after the header")
    return table
