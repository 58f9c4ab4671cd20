"""Journeys opened where they lie, for SQL: CSV or Parquet files (globs of parts too), or a
DuckDB database file holding ``touchpoints`` and ``conversions`` tables.

``open_journeys`` reads them through one ``SqlRunner`` (a DuckDB connection here, a Spark
session in attribid.models.batch.spark_engine: the same SQL, its few differences in the
runner's ``Dialect``) under the loader's rules
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

The tables live in DuckDB's buffer, which spills to its temporary directory (or Spark's
cache, memory then disk); only aggregates come back to Python. Whatever needs the line
scanner's judgement (a malformed value, whose message names file, line and column; a
warning, which names its first offender's line; channel spellings merged, spelled as
first seen) is asked of ``read_journeys``, which reads files whole: clean input never
goes there.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

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
    InputSource, NeedsScanner, Source, bad_time, case_sql, epoch_unit, is_glob, kind_of,
    open_view, quoted, seconds_sql,
)
from attribid.models.data.loader import TIME_UNITS, DataIssue, read_journeys
from attribid.models.data.tables import DataError

_DAY = 86400.0
#: DuckDB's memory before it spills to disk: what bounds a run, whatever the input's size
MEMORY_LIMIT = "512MB"


#: a stream of Arrow record batches in, one out (``SqlRunner.map_sorted``'s work)
BatchWork = Callable[[Iterator[Any]], Iterator[Any]]


class SqlRunner(Protocol):
    """An SQL engine as the plans use it: named tables and views, queries whose results are
    small, and one stream of sorted rows through Python code (the network's)."""

    #: the engine's name in messages
    name: str
    dialect: Dialect
    #: the engine's own errors (a query it cannot run)
    errors: tuple[type[Exception], ...]
    #: a touchpoint row's column giving its place in the files (None: ``rows``' rowid)
    row_order: str | None

    @property
    def con(self) -> Any:
        """The engine's own handle (a DuckDB connection, a Spark session)."""
        ...

    def source(self, path: str, table: str) -> InputSource:
        """An input file (or glob) as SQL; ``table`` names it in a database file."""
        ...

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row of a query (``?`` marks a parameter)."""
        ...

    def table(self, name: str, sql: str) -> None:
        """A query's rows kept under ``name`` (replacing what had that name)."""
        ...

    def view(self, name: str, sql: str) -> None:
        """A query named ``name``, run where it is used."""
        ...

    def drop(self, name: str) -> None:
        """Forget a table or view."""
        ...

    def map_sorted(self, sql: str, by: tuple[str, ...], work: BatchWork, batch_rows: int,
                   schema: str | None = None) -> Iterator[Any]:
        """``work`` over the query's rows sorted by ``by`` as Arrow batches of at most
        ``batch_rows`` rows, all the rows of one ``by[0]`` in the same stream; the Arrow
        batches ``work`` yields (columns ``schema``, Spark's DDL; None: the query's), in no
        particular order."""
        ...

    def ship(self, path: str) -> Callable[[], str]:
        """A file made readable where ``map_sorted``'s work runs: a call that gives its path
        there."""
        ...

    def close(self) -> None:
        ...


@dataclass(frozen=True)
class LocalFile:
    """A file's path where the work runs in this process."""

    path: str

    def __call__(self) -> str:
        return self.path


class DuckDbRunner:
    """``SqlRunner`` over one DuckDB connection (temporary tables and views)."""

    name = "DuckDB"
    dialect = DUCKDB
    errors: tuple[type[Exception], ...] = (duckdb.Error,)
    row_order: str | None = None

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._kinds: dict[str, str] = {}

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self._con

    def source(self, path: str, table: str) -> InputSource:
        return Source(self._con, path, table)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, params or []).fetchall()

    def _create(self, kind: str, name: str, sql: str) -> None:
        self._con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}")
        self._kinds[name] = kind

    def table(self, name: str, sql: str) -> None:
        self._create("TABLE", name, sql)

    def view(self, name: str, sql: str) -> None:
        self._create("VIEW", name, sql)

    def drop(self, name: str) -> None:
        self._con.execute(f"DROP {self._kinds.pop(name)} {name}")

    def map_sorted(self, sql: str, by: tuple[str, ...], work: BatchWork, batch_rows: int,
                   schema: str | None = None) -> Iterator[Any]:
        # one sorted stream: every journey's rows come together, in order
        reader = self._con.sql(f"SELECT * FROM ({sql}) ORDER BY {', '.join(by)}"
                               ).to_arrow_reader(batch_rows)
        yield from work(iter(reader))

    def ship(self, path: str) -> Callable[[], str]:
        return LocalFile(path)

    def close(self) -> None:
        self._con.close()


@dataclass(frozen=True)
class JourneyTables:
    """Journeys opened by a ``SqlRunner`` (tables ``touches`` and ``journeys``) and what
    reading found."""

    runner: SqlRunner
    channels: tuple[str, ...]
    #: cost of every touchpoint row, repeats counted once, per channel, float64 [C]
    spend: np.ndarray
    issues: tuple[DataIssue, ...]
    #: journeys with a counted touch, those of them that converted, and their value
    n_journeys: int
    conversions: int
    revenue: float
    #: what holds the converting journeys' counted touches (journey, ts, channel) without
    #: a sort: ``converted_rows`` (the journey-level plan) or ``touches``
    touch_rows: str = "touches"
    #: makes ``touches`` when first asked (empty: it is there)
    _pending: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def con(self) -> Any:
        """The engine's handle: a DuckDB connection, or a Spark session."""
        return self.runner.con

    @property
    def dialect(self) -> Dialect:
        """The SQL the queries are written in."""
        return self.runner.dialect

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one query over the tables (small aggregates only)."""
        return self.runner.rows(sql, params)

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
        self.runner.close()


class UnreadableBySql(DataError):
    """Input the line scanner reads but the SQL engine does not: read it with the memory
    engine."""


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

    def __init__(self, runner: SqlRunner, touchpoints: str, conversions: str,
                 time_unit: str | None, lookback_days: float | None) -> None:
        self.runner, self.tp_path, self.cv_path = runner, touchpoints, conversions
        self.dialect = runner.dialect
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
        source = self.runner.source(self.tp_path, "touchpoints")
        columns = ["trim(journey_id) AS journey", "trim(channel) AS channel_name",
                   "lower(trim(interaction)) AS interaction", "cost"]
        columns.append("lower(trim(device)) AS device" if "device" in source.types
                       else "CAST(NULL AS STRING) AS device")
        columns.append("product_category" if "product_category" in source.types
                       else "CAST(NULL AS STRING) AS product_category")
        if self.runner.row_order:
            columns.append(self.runner.row_order)
        for c in ("channel", "interaction", "cost"):
            if c not in source.types:
                raise NeedsScanner(f"missing column {c}")
        known = ", ".join(quoted(k) for k in INTERACTIONS)
        numeric = {"cost": "DOUBLE"}
        profile, self.spelled = open_view(self.runner, source, "tp_raw", columns, numeric, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "empty channel": "channel_name IS NULL OR channel_name = ''",
            "bad timestamp": bad_time(self.dialect),
            "bad interaction": f"interaction IS NULL OR interaction NOT IN ({known})",
            "bad cost": f"cost IS NULL OR NOT {self.dialect.finite('cost')} OR cost < 0"},
            ("channel_name", "device", "product_category"))
        self.n_rows = profile["rows"]
        if not self.n_rows:
            raise NeedsScanner("no rows after the header")
        self.tp_unit = epoch_unit(profile, self.time_unit)
        if self.time_unit is None and self.tp_unit != "s":
            self.issues.append(self._unit_note(self.tp_path, self.n_rows))

    def read_conversions(self) -> None:
        source = self.runner.source(self.cv_path, "conversions")
        columns = ["trim(journey_id) AS journey", "value"]
        profile, _ = open_view(self.runner, source, "cv_raw", columns, {"value": "DOUBLE"}, {
            "empty journey_id": "journey IS NULL OR journey = ''",
            "bad timestamp": bad_time(self.dialect),
            "bad value": f"value IS NULL OR NOT {self.dialect.finite('value')} OR value < 0"})
        self.cv_unit = epoch_unit(profile, self.time_unit)
        self.runner.table("cv", f"SELECT journey, {seconds_sql(self.cv_unit)} AS conv_ts, value "
                                "FROM cv_raw")
        n, distinct = self.runner.rows("SELECT count(*), count(DISTINCT journey) FROM cv")[0]
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
        """Table ``rows``: every touch row with its codes and its place in the files
        (``row``, or the table's ``rowid``: file order)."""
        interaction = case_sql("t.interaction", list(INTERACTIONS.items()), 0)
        order = self.runner.row_order
        # a projection of one scan, so that insertion (file) order is kept: codes by CASE
        self.runner.table("rows", f"""
            SELECT t.journey, {seconds_sql(self.tp_unit)} AS ts,
                   CAST({self.channel_sql} AS INTEGER) AS channel,
                   CAST({interaction} AS TINYINT) AS interaction, t.cost,
                   CAST({self.device_sql} AS TINYINT) AS device,
                   CAST({self.category_sql} AS INTEGER) AS category{
                       f", t.{order} AS row" if order else ""}
            FROM tp_raw t""")
        self.row_sql = "row" if order else "rowid"

    def coded_view(self) -> None:
        """View ``rows``: every touch row with its codes, read from the files at each use."""
        interaction = case_sql("t.interaction", list(INTERACTIONS.items()), 0)
        self.runner.view("rows", f"""
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
        run = self.runner
        run.table("all_journeys", all_journeys_sql(self.dialect, "rows"))
        run.table("picked_rows", picked_rows_sql("rows", "cv"))
        if run.rows(tie_sql()):
            for name in ("all_journeys", "picked_rows", "rows"):
                run.drop(name)
            return False
        run.view("converted_rows", converted_rows_sql())
        run.table("converted_journeys",
                  journeys_sql(self.dialect, "converted_rows", n_channels, key="ts"))
        run.view("journeys", journeys_view_sql(n_channels))
        return True

    def grouped_checks(self, n_channels: int) -> np.ndarray:
        """The warnings and notes of the journey-level plan (no repeats, no window: only
        orphan conversions, converted journeys with no touch before, touches after), and
        the spend per channel."""
        orphans, seen, rows_seen = self.runner.rows("""
            SELECT count(*) FILTER (WHERE a.journey IS NULL), count(a.journey),
                   coalesce(sum(a.rows_all), 0)
            FROM cv LEFT JOIN all_journeys a ON cv.journey = a.journey""")[0]
        counted, kept = self.runner.rows(
            "SELECT count(*), coalesce(sum(n), 0) FROM converted_journeys")[0]
        if orphans or seen > counted:
            self.scanner("warnings")
        if rows_seen > kept:
            self.issues.append(_late_note(int(rows_seen - kept)))
        return self.spend(n_channels)

    def spend(self, n_channels: int) -> np.ndarray:
        """The cost of every touch row per channel."""
        spend = np.zeros(n_channels)
        for code, cost in self.runner.rows("SELECT channel, sum(cost) FROM rows GROUP BY channel"):
            spend[int(code)] = float(cost)
        return spend

    def may_repeat(self) -> bool:
        """Whether two rows of a journey share a time (only those can repeat each other).

        Counted touches tell by their order alone (``tied``); the rows left out (after
        the conversion, before the window) are few and grouped by (journey, time).
        """
        tied = self.runner.rows("SELECT count(*) FILTER (WHERE tied) FROM touches")[0][0]
        left_out = ("SELECT r.journey, r.ts FROM rows r JOIN cv USING (journey) "
                    "WHERE r.ts > cv.conv_ts")
        if self.lookback is not None:
            left_out = (f"SELECT journey, ts FROM (SELECT journey, ts, {self.row_sql} AS row "
                        "FROM rows) AS r ANTI JOIN touches USING (row)")
        ties = self.runner.rows(f"SELECT count(*) FROM ({left_out}) AS o GROUP BY journey, ts "
                                "HAVING count(*) > 1 LIMIT 1")
        return bool(tied or ties)

    def drop_repeats(self) -> int:
        """Rows equal in every column to an earlier row of the journey counted once (the
        earliest kept); returns how many were dropped."""
        self.runner.table("rows", f"""
            SELECT min({self.row_sql}) AS row, journey, ts, channel, interaction, cost, device,
                   category
            FROM rows GROUP BY journey, ts, channel, interaction, cost, device, category""")
        self.row_sql = "row"
        before = self.n_rows
        self.n_rows = int(self.runner.rows("SELECT count(*) FROM rows")[0][0])
        return before - self.n_rows

    def counted_touches(self) -> None:
        """Table ``touches``: rows at or before the conversion and inside the window."""
        self.runner.table("touches", f"""
            WITH kept AS (SELECT r.journey, r.ts, r.channel, r.interaction, r.cost, r.device,
                                 r.category, r.{self.row_sql} AS row, cv.conv_ts,
                                 cv.value AS conv_value
                          FROM rows r LEFT JOIN cv USING (journey)
                          WHERE cv.conv_ts IS NULL OR r.ts <= cv.conv_ts),
                 windowed AS ({_window_filter(self.lookback)})
            SELECT journey, ts, channel, interaction, cost, device, category, row,
                   conv_ts IS NOT NULL AS converted, coalesce(conv_value, 0e0) AS value, conv_ts,
                   row_number() OVER w AS pos, count(*) OVER (PARTITION BY journey) AS n,
                   coalesce(ts = lag(ts) OVER w, false) AS tied
            FROM windowed WINDOW w AS (PARTITION BY journey ORDER BY ts, row)""")

    def warnings(self, repeats: int) -> None:
        """Refer the input to the scanner when a warning needs its first offender's line."""
        orphans, before_none = self.runner.rows("""
            WITH firsts AS (SELECT journey, min(ts) AS first FROM rows GROUP BY journey)
            SELECT count(*) FILTER (WHERE f.journey IS NULL),
                   count(*) FILTER (WHERE f.first > cv.conv_ts)
            FROM cv LEFT JOIN firsts f USING (journey)""")[0]
        outside = 0
        if self.lookback is not None:
            outside = self.runner.rows("""
                SELECT count(*) FROM (SELECT DISTINCT journey FROM rows JOIN cv USING (journey)
                                      WHERE rows.ts <= cv.conv_ts) AS seen
                ANTI JOIN (SELECT DISTINCT journey FROM touches) AS counted USING (journey)"""
            )[0][0]
        if repeats or orphans or before_none or outside:
            self.scanner("warnings")

    def notes(self) -> None:
        late = self.runner.rows("SELECT count(*) FROM rows JOIN cv USING (journey) "
                                "WHERE rows.ts > cv.conv_ts")[0][0]
        if late:
            self.issues.append(_late_note(int(late)))
        if self.lookback is not None:
            older = self.runner.rows(
                "SELECT (SELECT count(*) FROM rows LEFT JOIN cv USING (journey) "
                "WHERE cv.conv_ts IS NULL OR rows.ts <= cv.conv_ts) - "
                "(SELECT count(*) FROM touches)")[0][0]
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
    """The rows of ``kept`` inside the lookback window (every row: no window)."""
    if lookback is None:
        return "SELECT * FROM kept"
    return ("SELECT * FROM (SELECT *, max(ts) OVER (PARTITION BY journey) AS latest FROM kept) "
            f"AS k WHERE ts >= coalesce(conv_ts, latest) - {lookback * _DAY!r}")


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
                  con: duckdb.DuckDBPyConnection | None = None,
                  runner: SqlRunner | None = None) -> JourneyTables:
    """Open touchpoints and conversions as the tables ``touches`` and ``journeys``.

    Each path is a CSV or Parquet file, a glob of them (``parts/*.parquet``), or a DuckDB
    database file. Malformed input raises ``DataError`` naming file, line and column.
    ``runner`` is the SQL engine (default: DuckDB over ``con``, or a new connection).

    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> t.n_journeys, t.conversions, t.channels[:2]
    (4, 2, ('search', 'display'))
    """
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ValueError(f"time unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    if lookback_days is not None and not lookback_days > 0:
        raise ValueError(f"lookback must be > 0 days, got {lookback_days}")
    runner = runner or DuckDbRunner(con or connect())
    reader = _Reader(runner, os.fspath(touchpoints), os.fspath(conversions), time_unit,
                     lookback_days)
    try:
        reader.read_touchpoints()
        reader.read_conversions()
        channels = reader.channel_codes()
    except NeedsScanner as why:
        reader.scanner(str(why))
        # the scanner reads what DuckDB does not (e.g. blank lines): the caller may use it
        raise UnreadableBySql(reader.tp_path, None, None,
                              f"{runner.name} cannot read it: {why}") from None
    if lookback_days is None:
        reader.coded_view()
        if reader.grouped_journeys(len(channels)):
            spend = reader.grouped_checks(len(channels))
            return _tables(reader, channels, spend, "converted_rows", [reader.counted_touches])
    return _exact_plan(reader, channels)


def _exact_plan(reader: _Reader, channels: tuple[str, ...]) -> JourneyTables:
    """Rows coded in file order, repeats dropped, positions by window functions."""
    reader.coded_rows()
    reader.counted_touches()
    repeats = 0
    if reader.may_repeat():
        repeats = reader.drop_repeats()
        reader.counted_touches()
    reader.warnings(repeats)
    reader.notes()
    reader.runner.table("journeys", journeys_sql(reader.dialect, "touches", len(channels)))
    return _tables(reader, channels, reader.spend(len(channels)), "touches", [])


def _tables(reader: _Reader, channels: tuple[str, ...], spend: np.ndarray, touch_rows: str,
            pending: list[Callable[[], None]]) -> JourneyTables:
    n, conv, revenue = reader.runner.rows(
        "SELECT count(*), count(*) FILTER (WHERE converted), "
        "coalesce(sum(value) FILTER (WHERE converted), 0) FROM journeys")[0]
    issues = reader.scanned if reader.scanned is not None else tuple(reader.issues)
    return JourneyTables(reader.runner, channels, spend, tuple(issues), int(n), int(conv),
                         float(revenue), touch_rows, pending)
