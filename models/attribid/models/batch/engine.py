"""Journeys opened where they lie, for SQL: CSV or Parquet files (globs of parts too), or a
DuckDB database file holding ``touchpoints`` and ``conversions`` tables.

``open_journeys`` reads them into one DuckDB connection under the loader's rules
(attribid.models.data.loader: timestamps in seconds, milliseconds or ISO-8601; channel
names matched in any case; repeated rows counted once; touches after the conversion
and outside the lookback window left out) as two tables the methods query:

- ``touches``: one row per counted touch: ``journey``, ``ts`` (epoch seconds),
  ``channel`` (code into ``channels``), ``interaction``, ``cost``, ``device``,
  ``category``, ``pos`` (1 = oldest), ``n`` (the journey's touches), ``converted``,
  ``value``, ``conv_ts``;
- ``journeys`` (``JourneyTables.per_journey`` makes it when first asked): one row per
  journey with a counted touch: ``journey``, ``n``, ``converted``, ``value``,
  ``first_ts``, ``conv_ts``, ``mask`` (bit c: channel c present).

The tables live in DuckDB's buffer, which spills to its temporary directory; only
aggregates come back to Python. Whatever needs the line scanner's judgement (a malformed
value, whose message names file, line and column; a warning, which names its first
offender's line; channel spellings merged, spelled as first seen) is asked of
``read_journeys``, which reads files whole: clean input never goes there.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from attribid.kernels.taxonomy import (
    DEFAULT_CHANNELS, DEVICES, INTERACTIONS, MAX_CHANNELS, UNKNOWN_CATEGORY, category_code,
)
from attribid.models.data.loader import TIME_UNITS, DataIssue, read_journeys
from attribid.models.data.tables import DataError

#: file suffixes read as a DuckDB database (tables ``touchpoints`` and ``conversions``)
DATABASE_SUFFIXES = (".duckdb", ".ddb", ".db")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: epoch numbers at or above this are milliseconds; milliseconds stop at the second bound
MILLISECONDS_FROM, MILLISECONDS_UNTIL = 1e11, 1e14
_DAY = 86400.0
_TEXT_COLUMNS = ("journey_id", "channel", "interaction", "device", "product_category")


@dataclass(frozen=True)
class JourneyTables:
    """Journeys opened in DuckDB (tables ``touches`` and ``journeys``) and what reading found."""

    con: duckdb.DuckDBPyConnection
    channels: tuple[str, ...]
    #: cost of every touchpoint row, repeats counted once, per channel, float64 [C]
    spend: np.ndarray
    issues: tuple[DataIssue, ...]
    #: journeys with a counted touch, those of them that converted, and their value
    n_journeys: int
    conversions: int
    revenue: float

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one query over the tables (small aggregates only)."""
        return self.con.execute(sql, params or []).fetchall()

    def per_journey(self) -> str:
        """The name of the ``journeys`` table, made on first use (not every method needs it)."""
        self.con.execute("""
            CREATE TEMP TABLE IF NOT EXISTS journeys AS
            SELECT journey, any_value(n) AS n, bool_or(converted) AS converted,
                   any_value(value) AS value, min(ts) AS first_ts, any_value(conv_ts) AS conv_ts,
                   bit_or(CAST(1 AS BIGINT) << channel) AS mask
            FROM touches GROUP BY journey""")
        return "journeys"

    def close(self) -> None:
        self.con.close()


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith(DATABASE_SUFFIXES):
        return "database"
    return "parquet" if lower.endswith(PARQUET_SUFFIXES) else "csv"


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


class _Source:
    """One input (file, glob or database table) as SQL, with its columns and their types."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
        self.path, self.kind = path, _kind(path)
        if not _is_glob(path) and not os.path.exists(path):
            raise DataError(path, None, None, "cannot open: No such file or directory")
        if _is_glob(path) and not glob.glob(path):
            raise DataError(path, None, None, "no file matches")
        if self.kind == "database":
            alias = f"db_{table}"
            con.execute(f"ATTACH {_quoted(path)} AS {alias} (READ_ONLY)")
            self._sql = f"{alias}.{table}"
        elif self.kind == "parquet":
            self._sql = f"read_parquet({_quoted(path)}, union_by_name = true)"
        else:
            self._sql = ""
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {self.sql({})}").fetchall()
        except duckdb.Error as exc:
            raise _NeedsScanner(str(exc).splitlines()[0]) from None
        self.types = {str(name): str(kind) for name, kind, *_ in described}

    def sql(self, types: dict[str, str]) -> str:
        if self._sql:
            return self._sql
        if not types:
            # the header only: every column as text, nothing converted
            return f"read_csv({_quoted(self.path)}, header = true, all_varchar = true)"
        spec = ", ".join(f"{_quoted(k)}: {_quoted(v)}" for k, v in types.items())
        return (f"read_csv({_quoted(self.path)}, header = true, types = {{{spec}}}, "
                "union_by_name = true)")

    def csv_types(self, numeric: dict[str, str], time_as_text: bool) -> dict[str, str]:
        """DuckDB types for a CSV's columns: names as text, numbers as DOUBLE."""
        types = {c: "VARCHAR" for c in _TEXT_COLUMNS if c in self.types}
        types.update({c: t for c, t in numeric.items() if c in self.types})
        if "timestamp" in self.types:
            types["timestamp"] = "VARCHAR" if time_as_text else "DOUBLE"
        return types


def _time_columns(source: _Source, time_as_text: bool) -> str:
    """``ts_num`` (an epoch number, unit not yet applied) and ``ts_iso`` (seconds) columns."""
    kind = source.types.get("timestamp", "VARCHAR").upper()
    if source.kind == "csv":
        kind = "VARCHAR" if time_as_text else "DOUBLE"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return "CAST(NULL AS DOUBLE) AS ts_num, epoch(\"timestamp\") AS ts_iso"
    if kind in ("VARCHAR", "TEXT"):
        return ("TRY_CAST(trim(\"timestamp\") AS DOUBLE) AS ts_num, "
                "CASE WHEN TRY_CAST(trim(\"timestamp\") AS DOUBLE) IS NULL THEN "
                "epoch(TRY_CAST(trim(\"timestamp\") AS TIMESTAMPTZ)) END AS ts_iso")
    return "CAST(\"timestamp\" AS DOUBLE) AS ts_num, CAST(NULL AS DOUBLE) AS ts_iso"


class UnreadableBySql(DataError):
    """Input the line scanner reads but DuckDB does not: read it with the memory engine."""


class _NeedsScanner(Exception):
    """The input needs the line scanner's word: an error message or a warning's line."""


#: the unit counts every profile takes: epoch numbers of milliseconds' size, of seconds',
#: and too large for either
_UNIT_COUNTS = {
    "big": f"abs(ts_num) >= {MILLISECONDS_FROM}", "small": f"abs(ts_num) < {MILLISECONDS_FROM}",
    "huge": f"abs(ts_num) >= {MILLISECONDS_UNTIL}",
}
_BAD_TIME = "coalesce(ts_num, ts_iso) IS NULL OR NOT isfinite(coalesce(ts_num, ts_iso))"


def _open_view(con: duckdb.DuckDBPyConnection, source: _Source, name: str,
               columns: list[str], numeric: dict[str, str], tests: dict[str, str],
               distinct: tuple[str, ...] = ()) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """View ``name`` of the source's rows, values trimmed, and one pass over it: the rows,
    the unit counts, how many rows fail each of ``tests`` (SQL predicates), and the
    distinct values of the ``distinct`` columns."""
    missing = [c for c in ("journey_id", "timestamp", *numeric) if c not in source.types]
    if missing:
        raise _NeedsScanner(f"missing column {missing[0]}")
    counts = {"rows": "true", **_UNIT_COUNTS, **tests}
    for time_as_text in (False, True):
        types = source.csv_types(numeric, time_as_text) if source.kind == "csv" else {}
        select = ", ".join([*columns, _time_columns(source, time_as_text)])
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {select} "
                    f"FROM {source.sql(types)}")
        try:
            found = con.execute("SELECT " + ", ".join(
                [f"count(*) FILTER ({sql})" for sql in counts.values()]
                + [f"list(DISTINCT {c})" for c in distinct]) + f" FROM {name}").fetchall()[0]
            break
        except duckdb.Error as exc:
            # an ISO-8601 time in a column read as numbers: read it as text instead
            if time_as_text or source.kind != "csv":
                raise _NeedsScanner(str(exc).splitlines()[0]) from None
    profile = {what: int(n) for what, n in zip(counts, found)}
    bad = [what for what in tests if profile[what]]
    if bad:
        raise _NeedsScanner(f"{source.path}: {', '.join(bad)}")
    values = {c: [v for v in found[len(counts) + k] or () if v is not None]
              for k, c in enumerate(distinct)}
    return profile, values


def _unit(profile: dict[str, int], unit: str | None) -> str:
    """The epoch unit of a source's numbers, by their size unless ``unit`` is given."""
    if unit is not None:
        return unit
    if profile["big"] and (profile["small"] or profile["huge"]):
        raise _NeedsScanner("epoch seconds and milliseconds mixed, or too large")
    return "ms" if profile["big"] else "s"


def _seconds(unit: str) -> str:
    return f"coalesce(ts_num * {TIME_UNITS[unit]!r}, ts_iso)"


def _case(column: str, pairs: list[tuple[str, int]], default: int) -> str:
    """SQL mapping a text column to codes (few distinct values: one CASE, no join)."""
    if not pairs:
        return str(default)
    whens = " ".join(f"WHEN {_quoted(k)} THEN {v}" for k, v in pairs)
    return f"coalesce(CASE {column} {whens} END, {default})"


def _channel_order(spellings: list[str]) -> tuple[str, ...] | None:
    """The loader's channel order for the names found; None when spellings differ in case
    (the scanner keeps the first spelling seen) or there are too many."""
    folded = {v.casefold(): v for v in spellings}
    if len(folded) != len(spellings) or len(folded) > MAX_CHANNELS:
        return None
    order = [folded[c.casefold()] for c in DEFAULT_CHANNELS if c.casefold() in folded]
    known = {c.casefold() for c in DEFAULT_CHANNELS}
    return tuple(order + sorted(v for k, v in folded.items() if k not in known))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class _Reader:
    """The steps of ``open_journeys`` over one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, touchpoints: str, conversions: str,
                 time_unit: str | None, lookback_days: float | None) -> None:
        self.con, self.tp_path, self.cv_path = con, touchpoints, conversions
        self.time_unit, self.lookback = time_unit, lookback_days
        self.issues: list[DataIssue] = []
        self.scanned: tuple[DataIssue, ...] | None = None

    def scanner(self, why: str) -> tuple[DataIssue, ...]:
        """What the line scanner finds (it raises DataError on a malformed value)."""
        if self.scanned is None:
            if any(_is_glob(p) or _kind(p) == "database" for p in (self.tp_path, self.cv_path)):
                raise DataError(self.tp_path, None, None, why)
            loaded = read_journeys(self.tp_path, self.cv_path, time_unit=self.time_unit,
                                   lookback_days=self.lookback)
            self.scanned = loaded.issues
        return self.scanned

    def read_touchpoints(self) -> None:
        source = _Source(self.con, self.tp_path, "touchpoints")
        columns = ["trim(journey_id) AS journey", "trim(channel) AS channel_name",
                   "lower(trim(interaction)) AS interaction", "cost"]
        columns.append("lower(trim(device)) AS device" if "device" in source.types
                       else "CAST(NULL AS VARCHAR) AS device")
        columns.append("product_category" if "product_category" in source.types
                       else "CAST(NULL AS VARCHAR) AS product_category")
        for c in ("channel", "interaction", "cost"):
            if c not in source.types:
                raise _NeedsScanner(f"missing column {c}")
        known = ", ".join(_quoted(k) for k in INTERACTIONS)
        profile, self.spelled = _open_view(self.con, source, "tp_raw", columns, {"cost": "DOUBLE"}, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "empty channel": "channel_name IS NULL OR channel_name = ''",
            "bad timestamp": _BAD_TIME,
            "bad interaction": f"interaction IS NULL OR interaction NOT IN ({known})",
            "bad cost": "cost IS NULL OR NOT isfinite(cost) OR cost < 0"},
            ("channel_name", "device", "product_category"))
        self.n_rows = profile["rows"]
        if not self.n_rows:
            raise _NeedsScanner("no rows after the header")
        self.tp_unit = _unit(profile, self.time_unit)
        if self.time_unit is None and self.tp_unit != "s":
            self.issues.append(self._unit_note(self.tp_path, self.n_rows))

    def read_conversions(self) -> None:
        source = _Source(self.con, self.cv_path, "conversions")
        profile, _ = _open_view(self.con, source, "cv_raw", ["trim(journey_id) AS journey", "value"],
                             {"value": "DOUBLE"}, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "bad timestamp": _BAD_TIME,
            "bad value": "value IS NULL OR NOT isfinite(value) OR value < 0"})
        self.cv_unit = _unit(profile, self.time_unit)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE cv AS SELECT journey, "
                         f"{_seconds(self.cv_unit)} AS conv_ts, value FROM cv_raw")
        n, distinct = self.con.execute(
            "SELECT count(*), count(DISTINCT journey) FROM cv").fetchall()[0]
        if n != distinct:
            raise _NeedsScanner("a journey converts twice")
        if n == 0:
            # a warning, not an error: the scanner's message names the file
            self.scanner("no conversions")
        if self.time_unit is None and self.cv_unit != "s":
            self.issues.append(self._unit_note(self.cv_path, int(n)))

    def _unit_note(self, path: str, rows: int) -> DataIssue:
        return DataIssue("time-unit", rows, f"{path}: epoch timestamps read as milliseconds "
                         "(1e11 or more); --time-unit s|ms says otherwise", False)

    def channel_codes(self) -> tuple[str, ...]:
        """The channel order, and the code of every spelling of a channel, device, category."""
        spellings = sorted(self.spelled["channel_name"])
        order = _channel_order(spellings)
        if order is None:
            # merged spellings: the scanner's issues name them; its order is the loader's
            self.scanner("channel names differ only in case")
            order = _scanned_order(self.tp_path, self.cv_path, self.time_unit, self.lookback)
        position = {name.casefold(): code for code, name in enumerate(order)}
        self.channel_sql = _case("t.channel_name", [(c, position[c.casefold()]) for c in spellings], -1)
        devices = sorted(self.spelled["device"])
        self.device_sql = _case("t.device", [(d, DEVICES.get(d, 0)) for d in devices], 0)
        cats = sorted(self.spelled["product_category"])
        self.category_sql = _case("t.product_category", [(k, category_code(k)) for k in cats],
                                  UNKNOWN_CATEGORY)
        return order

    def coded_rows(self) -> None:
        """Table ``rows``: every touch row with its codes, in file order (its ``rowid``)."""
        interaction = _case("t.interaction", list(INTERACTIONS.items()), 0)
        # a projection of one scan, so that insertion (file) order is kept: codes by CASE
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE rows AS
            SELECT t.journey, {_seconds(self.tp_unit)} AS ts,
                   CAST({self.channel_sql} AS INTEGER) AS channel,
                   CAST({interaction} AS TINYINT) AS interaction, t.cost,
                   CAST({self.device_sql} AS TINYINT) AS device,
                   CAST({self.category_sql} AS INTEGER) AS category
            FROM tp_raw t""")
        self.row_sql = "rowid"

    def may_repeat(self) -> bool:
        """Whether two rows of a journey share a time (only those can repeat each other).

        Counted touches tell by their order alone (``tied``); the rows left out (after
        the conversion, before the window) are few and grouped by (journey, time).
        """
        tied = self.con.execute("SELECT count(*) FILTER (tied) FROM touches").fetchall()[0][0]
        left_out = ("SELECT r.journey, r.ts FROM rows r JOIN cv USING (journey) "
                    "WHERE r.ts > cv.conv_ts")
        if self.lookback is not None:
            left_out = (f"SELECT journey, ts FROM (SELECT journey, ts, {self.row_sql} AS row "
                        "FROM rows) ANTI JOIN touches USING (row)")
        ties = self.con.execute(f"SELECT count(*) FROM ({left_out}) GROUP BY journey, ts "
                                "HAVING count(*) > 1 LIMIT 1").fetchall()
        return bool(tied or ties)

    def drop_repeats(self) -> int:
        """Rows equal in every column to an earlier row of the journey counted once (the
        earliest kept); returns how many were dropped."""
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE rows AS
            SELECT min({self.row_sql}) AS row, journey, ts, channel, interaction, cost, device,
                   category
            FROM rows GROUP BY journey, ts, channel, interaction, cost, device, category""")
        self.row_sql = "row"
        before = self.n_rows
        self.n_rows = int(self.con.execute("SELECT count(*) FROM rows").fetchall()[0][0])
        return before - self.n_rows

    def counted_touches(self) -> None:
        """Table ``touches``: rows at or before the conversion and inside the window."""
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE touches AS
            WITH kept AS (SELECT r.journey, r.ts, r.channel, r.interaction, r.cost, r.device,
                                 r.category, r.{self.row_sql} AS row, cv.conv_ts,
                                 cv.value AS conv_value
                          FROM rows r LEFT JOIN cv USING (journey)
                          WHERE cv.conv_ts IS NULL OR r.ts <= cv.conv_ts),
                 windowed AS (SELECT * FROM kept {_window_filter(self.lookback)})
            SELECT journey, ts, channel, interaction, cost, device, category, row,
                   conv_ts IS NOT NULL AS converted, coalesce(conv_value, 0.0) AS value, conv_ts,
                   row_number() OVER w AS pos, count(*) OVER (PARTITION BY journey) AS n,
                   coalesce(ts = lag(ts) OVER w, false) AS tied
            FROM windowed WINDOW w AS (PARTITION BY journey ORDER BY ts, row)""")

    def warnings(self, repeats: int) -> None:
        """Refer the input to the scanner when a warning needs its first offender's line."""
        orphans, before_none = self.con.execute("""
            WITH firsts AS (SELECT journey, min(ts) AS first FROM rows GROUP BY journey)
            SELECT count(*) FILTER (f.journey IS NULL), count(*) FILTER (f.first > cv.conv_ts)
            FROM cv LEFT JOIN firsts f USING (journey)""").fetchall()[0]
        outside = 0
        if self.lookback is not None:
            outside = self.con.execute("""
                SELECT count(*) FROM (SELECT DISTINCT journey FROM rows JOIN cv USING (journey)
                                      WHERE rows.ts <= cv.conv_ts)
                ANTI JOIN (SELECT DISTINCT journey FROM touches) USING (journey)""").fetchall()[0][0]
        if repeats or orphans or before_none or outside:
            self.scanner("warnings")

    def notes(self) -> None:
        late = self.con.execute("SELECT count(*) FROM rows JOIN cv USING (journey) "
                                "WHERE rows.ts > cv.conv_ts").fetchall()[0][0]
        if late:
            self.issues.append(DataIssue(
                "after-conversion", int(late), f"{_count(int(late), 'touchpoint')} after the "
                f"journey's conversion {'does' if late == 1 else 'do'} not count for it", False))
        if self.lookback is not None:
            older = self.con.execute(
                "SELECT (SELECT count(*) FROM rows LEFT JOIN cv USING (journey) "
                "WHERE cv.conv_ts IS NULL OR rows.ts <= cv.conv_ts) - "
                "(SELECT count(*) FROM touches)").fetchall()[0][0]
            if older:
                self.issues.append(DataIssue(
                    "before-lookback", int(older), f"{_count(int(older), 'touchpoint')} older "
                    f"than the {self.lookback:g}-day lookback window "
                    f"{'does' if older == 1 else 'do'} not count", False))


def _window_filter(lookback: float | None) -> str:
    """The lookback window as a QUALIFY clause (empty: no window)."""
    if lookback is None:
        return ""
    return ("QUALIFY ts >= coalesce(conv_ts, max(ts) OVER (PARTITION BY journey)) "
            f"- {lookback * _DAY!r}")


def _scanned_order(touchpoints: str, conversions: str, time_unit: str | None,
                   lookback: float | None) -> tuple[str, ...]:
    return read_journeys(touchpoints, conversions, time_unit=time_unit,
                         lookback_days=lookback).journeys.channels


def connect(memory_limit: str | None = None, threads: int | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for ``open_journeys``; limits left to DuckDB when not given."""
    # without the ICU extension DuckDB reads a time with no offset as UTC, as the loader does
    config: dict[str, Any] = {"preserve_insertion_order": True}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    if temp_directory:
        config["temp_directory"] = temp_directory
    return duckdb.connect(":memory:", config=config)


def open_journeys(touchpoints: str | os.PathLike, conversions: str | os.PathLike, *,
                  time_unit: str | None = None, lookback_days: float | None = None,
                  con: duckdb.DuckDBPyConnection | None = None) -> JourneyTables:
    """Open touchpoints and conversions as the tables ``touches`` and ``journeys``.

    Each path is a CSV or Parquet file, a glob of them (``parts/*.parquet``), or a DuckDB
    database file. Malformed input raises ``DataError`` naming file, line and column.

    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> t.n_journeys, t.conversions, t.channels[:2]
    (4, 2, ('search', 'display'))
    """
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ValueError(f"time unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    if lookback_days is not None and not lookback_days > 0:
        raise ValueError(f"lookback must be > 0 days, got {lookback_days}")
    con = con or connect()
    reader = _Reader(con, os.fspath(touchpoints), os.fspath(conversions), time_unit, lookback_days)
    try:
        reader.read_touchpoints()
        reader.read_conversions()
        channels = reader.channel_codes()
    except _NeedsScanner as why:
        reader.scanner(str(why))
        # the scanner reads what DuckDB does not (e.g. blank lines): the caller may use it
        raise UnreadableBySql(reader.tp_path, None, None, f"DuckDB cannot read it: {why}") from None
    reader.coded_rows()
    reader.counted_touches()
    repeats = 0
    if reader.may_repeat():
        repeats = reader.drop_repeats()
        reader.counted_touches()
    reader.warnings(repeats)
    reader.notes()
    con.execute("DROP TABLE IF EXISTS journeys")
    spend = np.zeros(len(channels))
    for code, cost in con.execute("SELECT channel, sum(cost) FROM rows GROUP BY channel").fetchall():
        spend[int(code)] = float(cost)
    # a journey's first touch stands for the journey
    n, conv, revenue = con.execute(
        "SELECT count(*), count(*) FILTER (converted), "
        "coalesce(sum(value) FILTER (converted), 0) FROM touches WHERE pos = 1").fetchall()[0]
    issues = reader.scanned if reader.scanned is not None else tuple(reader.issues)
    return JourneyTables(con, channels, spend, tuple(issues), int(n), int(conv), float(revenue))
