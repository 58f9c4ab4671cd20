"""Inputs as SQL: a CSV or Parquet file, a glob of parts, or (DuckDB only) a table of a
DuckDB database file; and the one pass that profiles an input (its rows, the checks its
values fail, the unit of its epoch numbers, the distinct values of its name columns), in
the SQL common to DuckDB and Spark (attribid.models.batch.grouped_sql.Dialect).

A CSV is read with its names as text and its numbers as DOUBLE; a timestamp column that
holds ISO-8601 times is read again as text and parsed per row (numbers first).
"""
from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from attribid.models.batch.grouped_sql import DUCKDB, Dialect
from attribid.models.data.loader import TIME_UNITS
from attribid.models.data.tables import DataError

if TYPE_CHECKING:
    from attribid.models.batch.engine import SqlRunner

#: file suffixes read as a DuckDB database (tables ``touchpoints`` and ``conversions``)
DATABASE_SUFFIXES = (".duckdb", ".ddb", ".db")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: epoch numbers at or above this are milliseconds; milliseconds stop at the second bound
MILLISECONDS_FROM, MILLISECONDS_UNTIL = 1e11, 1e14
_TEXT_COLUMNS = ("journey_id", "channel", "interaction", "device", "product_category")


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def kind_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith(DATABASE_SUFFIXES):
        return "database"
    return "parquet" if lower.endswith(PARQUET_SUFFIXES) else "csv"


def is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def check_exists(path: str) -> None:
    """Refuse a path that names no file (or a glob that matches none)."""
    if not is_glob(path) and not os.path.exists(path):
        raise DataError(path, None, None, "cannot open: No such file or directory")
    if is_glob(path) and not glob.glob(path):
        raise DataError(path, None, None, "no file matches")


class InputSource(Protocol):
    """One input as an engine reads it: what ``open_view`` needs of it."""

    path: str
    #: "csv", "parquet" or "database"
    kind: str
    #: column name -> type, in DuckDB's names (VARCHAR, DOUBLE, TIMESTAMP...)
    types: dict[str, str]
    #: the ways to read the timestamp column, tried in turn: False as numbers, True as text
    time_readings: tuple[bool, ...]

    def sql(self, types: dict[str, str]) -> str:
        """The input as a FROM item, a CSV's columns read as ``types``."""
        ...


class Source:
    """One input (file, glob or database table) as DuckDB SQL, with its columns and their
    types."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
        self.path, self.kind = path, kind_of(path)
        check_exists(path)
        # numbers first (fast); an ISO-8601 time makes DuckDB's CSV reader fail: then text
        self.time_readings: tuple[bool, ...] = (False, True) if self.kind == "csv" else (False,)
        if self.kind == "database":
            alias = f"db_{table}"
            con.execute(f"ATTACH {quoted(path)} AS {alias} (READ_ONLY)")
            self._sql = f"{alias}.{table}"
        elif self.kind == "parquet":
            self._sql = f"read_parquet({quoted(path)}, union_by_name = true)"
        else:
            self._sql = ""
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {self.sql({})}").fetchall()
        except duckdb.Error as exc:
            raise NeedsScanner(str(exc).splitlines()[0]) from None
        self.types = {str(name): str(kind) for name, kind, *_ in described}

    def sql(self, types: dict[str, str]) -> str:
        if self._sql:
            return self._sql
        if not types:
            # the header only: every column as text, nothing converted
            return f"read_csv({quoted(self.path)}, header = true, all_varchar = true)"
        spec = ", ".join(f"{quoted(k)}: {quoted(v)}" for k, v in types.items())
        return (f"read_csv({quoted(self.path)}, header = true, types = {{{spec}}}, "
                "union_by_name = true)")

def csv_types(source: InputSource, numeric: dict[str, str],
              time_as_text: bool) -> dict[str, str]:
    """Types for a CSV's columns: names as text, numbers as DOUBLE."""
    types = {c: "VARCHAR" for c in _TEXT_COLUMNS if c in source.types}
    types.update({c: t for c, t in numeric.items() if c in source.types})
    if "timestamp" in source.types:
        types["timestamp"] = "VARCHAR" if time_as_text else "DOUBLE"
    return types


def time_columns(dialect: Dialect, source: InputSource, time_as_text: bool) -> str:
    """``ts_num`` (an epoch number, unit not yet applied) and ``ts_iso`` (seconds) columns."""
    kind = source.types.get("timestamp", "VARCHAR").upper()
    if source.kind == "csv":
        kind = "VARCHAR" if time_as_text else "DOUBLE"
    ts = dialect.column("timestamp")
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"CAST(NULL AS DOUBLE) AS ts_num, {dialect.time_epoch(ts)} AS ts_iso"
    if kind in ("VARCHAR", "TEXT"):
        return (f"TRY_CAST(trim({ts}) AS DOUBLE) AS ts_num, "
                f"CASE WHEN TRY_CAST(trim({ts}) AS DOUBLE) IS NULL THEN "
                f"{dialect.text_epoch(f'trim({ts})')} END AS ts_iso")
    return f"CAST({ts} AS DOUBLE) AS ts_num, CAST(NULL AS DOUBLE) AS ts_iso"


class NeedsScanner(Exception):
    """The input needs the line scanner's word: an error message or a warning's line."""


#: the unit counts every profile takes: epoch numbers of milliseconds' size, of seconds',
#: and too large for either
_UNIT_COUNTS = {
    "big": f"abs(ts_num) >= {MILLISECONDS_FROM}", "small": f"abs(ts_num) < {MILLISECONDS_FROM}",
    "huge": f"abs(ts_num) >= {MILLISECONDS_UNTIL}",
}


def bad_time(dialect: Dialect = DUCKDB) -> str:
    """SQL true when a row's time is missing or not a finite number."""
    return (f"coalesce(ts_num, ts_iso) IS NULL OR NOT "
            f"{dialect.finite('coalesce(ts_num, ts_iso)')}")


def open_view(runner: SqlRunner, source: InputSource, name: str,
              columns: list[str], numeric: dict[str, str], tests: dict[str, str],
              distinct: tuple[str, ...] = ()) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """View ``name`` of the source's rows, values trimmed, and one pass over it: the rows,
    the unit counts, how many rows fail each of ``tests`` (SQL predicates), and the
    distinct values of the ``distinct`` columns."""
    missing = [c for c in ("journey_id", "timestamp", *numeric) if c not in source.types]
    if missing:
        raise NeedsScanner(f"missing column {missing[0]}")
    counts = {"rows": "true", **_UNIT_COUNTS, **tests}
    dialect = runner.dialect
    for time_as_text in source.time_readings:
        types = csv_types(source, numeric, time_as_text) if source.kind == "csv" else {}
        select = ", ".join([*columns, time_columns(dialect, source, time_as_text)])
        runner.view(name, f"SELECT {select} FROM {source.sql(types)}")
        try:
            found = runner.rows("SELECT " + ", ".join(
                [f"count(*) FILTER (WHERE {sql})" for sql in counts.values()]
                + [dialect.distinct_values(c) for c in distinct]) + f" FROM {name}")[0]
            break
        except runner.errors as exc:
            # an ISO-8601 time in a column read as numbers: read it as text instead
            if time_as_text == source.time_readings[-1]:
                raise NeedsScanner(str(exc).splitlines()[0]) from None
    profile = {what: int(n) for what, n in zip(counts, found)}
    bad = [what for what in tests if profile[what]]
    if bad:
        raise NeedsScanner(f"{source.path}: {', '.join(bad)}")
    values = {c: [v for v in found[len(counts) + k] or () if v is not None]
              for k, c in enumerate(distinct)}
    return profile, values


def epoch_unit(profile: dict[str, int], unit: str | None) -> str:
    """The epoch unit of a source's numbers, by their size unless ``unit`` is given."""
    if unit is not None:
        return unit
    if profile["big"] and (profile["small"] or profile["huge"]):
        raise NeedsScanner("epoch seconds and milliseconds mixed, or too large")
    return "ms" if profile["big"] else "s"


def seconds_sql(unit: str) -> str:
    return f"coalesce(ts_num * {TIME_UNITS[unit]!r}, ts_iso)"


def case_sql(column: str, pairs: list[tuple[str, int]], default: int) -> str:
    """SQL mapping a text column to codes (few distinct values: one CASE, no join)."""
    if not pairs:
        return str(default)
    whens = " ".join(f"WHEN {quoted(k)} THEN {v}" for k, v in pairs)
    return f"coalesce(CASE {column} {whens} END, {default})"
