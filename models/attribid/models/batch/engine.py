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
- ``journeys``: one row per journey with a counted touch: ``journey``, ``n``,
  ``converted``, ``value``, ``first_ts``, ``last_ts``, ``conv_ts``, ``mask`` (bit c:
  channel c present), ``first_channel``, ``last_channel``, ``c0``... (touches per channel).

Input with no lookback window and no two rows of a journey at one time (the common case,
checked by hashes, attribid.models.batch.grouped_sql) takes the journey-level plan:
``journeys`` comes from one grouped aggregation over the files, and ``touches``, which
needs a sort, is made only when a method asks for it (``JourneyTables.touches``). Other
input takes the exact plan: ``rows`` (every row coded, in file order), repeats dropped,
``touches`` by window functions, ``journeys`` from it.

The tables live in DuckDB's buffer, which spills to its temporary directory; only
aggregates come back to Python. Whatever needs the line scanner's judgement (a malformed
value, whose message names file, line and column; a warning, which names its first
offender's line; channel spellings merged, spelled as first seen) is asked of
``read_journeys``, which reads files whole: clean input never goes there.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb
import numpy as np

from attribid.kernels.taxonomy import (
    DEFAULT_CHANNELS, DEVICES, INTERACTIONS, MAX_CHANNELS, UNKNOWN_CATEGORY, category_code,
)
from attribid.models.batch.grouped_sql import (
    DUCKDB, Dialect, all_journeys_sql, converted_rows_sql, journeys_sql, journeys_view_sql,
    picked_rows_sql, tie_sql,
)
from attribid.models.batch.sources import (
    BAD_TIME, NeedsScanner, Source, case_sql, epoch_unit, is_glob, kind_of, open_view, quoted,
    seconds_sql,
)
from attribid.models.data.loader import TIME_UNITS, DataIssue, read_journeys
from attribid.models.data.tables import DataError

_DAY = 86400.0
#: DuckDB's memory before it spills to disk: what bounds a run, whatever the input's size
MEMORY_LIMIT = "512MB"


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
    #: the SQL the queries are written in
    dialect: Dialect = DUCKDB
    #: what holds the converting journeys' counted touches (journey, ts, channel) without
    #: a sort: ``converted_rows`` (the journey-level plan) or ``touches``
    touch_rows: str = "touches"
    #: makes ``touches`` when first asked (empty: it is there)
    _pending: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one query over the tables (small aggregates only)."""
        return self.con.execute(sql, params or []).fetchall()

    def per_journey(self) -> str:
        """The name of the ``journeys`` table."""
        return "journeys"

    def touches(self) -> str:
        """The name of the ``touches`` table (ordered positions), made on first use: only
        the methods that read order between first and last touch need its sort."""
        while self._pending:
            self._pending.pop()()
        return "touches"

    def close(self) -> None:
        self.con.close()


class UnreadableBySql(DataError):
    """Input the line scanner reads but DuckDB does not: read it with the memory engine."""


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
            if any(is_glob(p) or kind_of(p) == "database" for p in (self.tp_path, self.cv_path)):
                raise DataError(self.tp_path, None, None, why)
            loaded = read_journeys(self.tp_path, self.cv_path, time_unit=self.time_unit,
                                   lookback_days=self.lookback)
            self.scanned = loaded.issues
        return self.scanned

    def read_touchpoints(self) -> None:
        source = Source(self.con, self.tp_path, "touchpoints")
        columns = ["trim(journey_id) AS journey", "trim(channel) AS channel_name",
                   "lower(trim(interaction)) AS interaction", "cost"]
        columns.append("lower(trim(device)) AS device" if "device" in source.types
                       else "CAST(NULL AS VARCHAR) AS device")
        columns.append("product_category" if "product_category" in source.types
                       else "CAST(NULL AS VARCHAR) AS product_category")
        for c in ("channel", "interaction", "cost"):
            if c not in source.types:
                raise NeedsScanner(f"missing column {c}")
        known = ", ".join(quoted(k) for k in INTERACTIONS)
        numeric = {"cost": "DOUBLE"}
        profile, self.spelled = open_view(self.con, source, "tp_raw", columns, numeric, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "empty channel": "channel_name IS NULL OR channel_name = ''",
            "bad timestamp": BAD_TIME,
            "bad interaction": f"interaction IS NULL OR interaction NOT IN ({known})",
            "bad cost": "cost IS NULL OR NOT isfinite(cost) OR cost < 0"},
            ("channel_name", "device", "product_category"))
        self.n_rows = profile["rows"]
        if not self.n_rows:
            raise NeedsScanner("no rows after the header")
        self.tp_unit = epoch_unit(profile, self.time_unit)
        if self.time_unit is None and self.tp_unit != "s":
            self.issues.append(self._unit_note(self.tp_path, self.n_rows))

    def read_conversions(self) -> None:
        source = Source(self.con, self.cv_path, "conversions")
        columns = ["trim(journey_id) AS journey", "value"]
        profile, _ = open_view(self.con, source, "cv_raw", columns, {"value": "DOUBLE"}, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "bad timestamp": BAD_TIME,
            "bad value": "value IS NULL OR NOT isfinite(value) OR value < 0"})
        self.cv_unit = epoch_unit(profile, self.time_unit)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE cv AS SELECT journey, "
                         f"{seconds_sql(self.cv_unit)} AS conv_ts, value FROM cv_raw")
        n, distinct = self.con.execute(
            "SELECT count(*), count(DISTINCT journey) FROM cv").fetchall()[0]
        if n != distinct:
            raise NeedsScanner("a journey converts twice")
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
        self.channel_sql = case_sql("t.channel_name",
                                 [(c, position[c.casefold()]) for c in spellings], -1)
        devices = sorted(self.spelled["device"])
        self.device_sql = case_sql("t.device", [(d, DEVICES.get(d, 0)) for d in devices], 0)
        cats = sorted(self.spelled["product_category"])
        self.category_sql = case_sql("t.product_category", [(k, category_code(k)) for k in cats],
                                  UNKNOWN_CATEGORY)
        return order

    def coded_rows(self) -> None:
        """Table ``rows``: every touch row with its codes, in file order (its ``rowid``)."""
        interaction = case_sql("t.interaction", list(INTERACTIONS.items()), 0)
        # a projection of one scan, so that insertion (file) order is kept: codes by CASE
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE rows AS
            SELECT t.journey, {seconds_sql(self.tp_unit)} AS ts,
                   CAST({self.channel_sql} AS INTEGER) AS channel,
                   CAST({interaction} AS TINYINT) AS interaction, t.cost,
                   CAST({self.device_sql} AS TINYINT) AS device,
                   CAST({self.category_sql} AS INTEGER) AS category
            FROM tp_raw t""")
        self.row_sql = "rowid"

    def coded_view(self) -> None:
        """View ``rows``: every touch row with its codes, read from the files at each use."""
        interaction = case_sql("t.interaction", list(INTERACTIONS.items()), 0)
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW rows AS
            SELECT t.journey, {seconds_sql(self.tp_unit)} AS ts,
                   CAST({self.channel_sql} AS INTEGER) AS channel,
                   CAST({interaction} AS TINYINT) AS interaction, t.cost,
                   CAST({self.device_sql} AS TINYINT) AS device,
                   CAST({self.category_sql} AS INTEGER) AS category, 0 AS row
            FROM tp_raw t""")
        self.row_sql = "row"

    def grouped_journeys(self, n_channels: int) -> bool:
        """Tables ``all_journeys`` (a row per journey of the files), ``picked_rows`` (the
        converting journeys' rows and those of journeys that may hold a tie) and
        ``converted_journeys``, views ``converted_rows`` and ``journeys``, by grouped
        aggregations; False when two rows of a journey share a time, which the exact plan
        must sort out."""
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE all_journeys AS "
                    + all_journeys_sql(DUCKDB, "rows"))
        con.execute("CREATE OR REPLACE TEMP TABLE picked_rows AS " + picked_rows_sql("rows", "cv"))
        if con.execute(tie_sql()).fetchall():
            con.execute("DROP TABLE all_journeys")
            con.execute("DROP TABLE picked_rows")
            con.execute("DROP VIEW rows")
            return False
        con.execute("CREATE OR REPLACE TEMP VIEW converted_rows AS " + converted_rows_sql())
        con.execute("CREATE OR REPLACE TEMP TABLE converted_journeys AS "
                    + journeys_sql(DUCKDB, "converted_rows", n_channels, key="ts"))
        con.execute("CREATE OR REPLACE TEMP VIEW journeys AS " + journeys_view_sql(n_channels))
        return True

    def grouped_checks(self, n_channels: int) -> np.ndarray:
        """The warnings and notes of the journey-level plan (no repeats, no window: only
        orphan conversions, converted journeys with no touch before, touches after), and
        the spend per channel."""
        orphans, seen, rows_seen = self.con.execute("""
            SELECT count(*) FILTER (WHERE a.journey IS NULL), count(a.journey),
                   coalesce(sum(a.rows_all), 0)
            FROM cv LEFT JOIN all_journeys a ON cv.journey = a.journey""").fetchall()[0]
        counted, kept = self.con.execute(
            "SELECT count(*), coalesce(sum(n), 0) FROM converted_journeys").fetchall()[0]
        if orphans or seen > counted:
            self.scanner("warnings")
        if rows_seen > kept:
            self.issues.append(_late_note(int(rows_seen - kept)))
        spend = np.zeros(n_channels)
        for code, cost in self.con.execute(
                "SELECT channel, sum(cost) FROM rows GROUP BY channel").fetchall():
            spend[int(code)] = float(cost)
        return spend

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
                ANTI JOIN (SELECT DISTINCT journey FROM touches) USING (journey)"""
            ).fetchall()[0][0]
        if repeats or orphans or before_none or outside:
            self.scanner("warnings")

    def notes(self) -> None:
        late = self.con.execute("SELECT count(*) FROM rows JOIN cv USING (journey) "
                                "WHERE rows.ts > cv.conv_ts").fetchall()[0][0]
        if late:
            self.issues.append(_late_note(int(late)))
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


def _late_note(late: int) -> DataIssue:
    return DataIssue("after-conversion", late, f"{_count(late, 'touchpoint')} after the "
                     f"journey's conversion {'does' if late == 1 else 'do'} not count for it",
                     False)


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


def connect(memory_limit: str = MEMORY_LIMIT, threads: int | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for ``open_journeys``: past ``memory_limit`` its tables and
    sorts spill to ``temp_directory`` (default: a folder of the system's temporary one,
    never the working directory); ``threads`` None lets DuckDB use every core."""
    # without the ICU extension DuckDB reads a time with no offset as UTC, as the loader does
    config: dict[str, Any] = {
        "preserve_insertion_order": True, "memory_limit": memory_limit,
        "temp_directory": temp_directory or os.path.join(
            tempfile.gettempdir(), f"attribid-duckdb-{os.getpid()}"),
    }
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    # DuckDB's own progress bar would print to stdout, which carries the command's result
    con.execute("SET enable_progress_bar = false")
    return con


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
    except NeedsScanner as why:
        reader.scanner(str(why))
        # the scanner reads what DuckDB does not (e.g. blank lines): the caller may use it
        raise UnreadableBySql(reader.tp_path, None, None, f"DuckDB cannot read it: {why}") from None
    if lookback_days is None:
        reader.coded_view()
        if reader.grouped_journeys(len(channels)):
            spend = reader.grouped_checks(len(channels))
            return _tables(reader, channels, spend, "converted_rows", [reader.counted_touches])
    return _exact_plan(reader, channels)


def _exact_plan(reader: _Reader, channels: tuple[str, ...]) -> JourneyTables:
    """Rows coded in file order, repeats dropped, positions by window functions."""
    con = reader.con
    reader.coded_rows()
    reader.counted_touches()
    repeats = 0
    if reader.may_repeat():
        repeats = reader.drop_repeats()
        reader.counted_touches()
    reader.warnings(repeats)
    reader.notes()
    con.execute("CREATE OR REPLACE TEMP TABLE journeys AS "
                + journeys_sql(DUCKDB, "touches", len(channels)))
    spend = np.zeros(len(channels))
    spent = con.execute("SELECT channel, sum(cost) FROM rows GROUP BY channel").fetchall()
    for code, cost in spent:
        spend[int(code)] = float(cost)
    return _tables(reader, channels, spend, "touches", [])


def _tables(reader: _Reader, channels: tuple[str, ...], spend: np.ndarray, touch_rows: str,
            pending: list[Callable[[], None]]) -> JourneyTables:
    n, conv, revenue = reader.con.execute(
        "SELECT count(*), count(*) FILTER (converted), "
        "coalesce(sum(value) FILTER (converted), 0) FROM journeys").fetchall()[0]
    issues = reader.scanned if reader.scanned is not None else tuple(reader.issues)
    return JourneyTables(reader.con, channels, spend, tuple(issues), int(n), int(conv),
                         float(revenue), DUCKDB, touch_rows, pending)
