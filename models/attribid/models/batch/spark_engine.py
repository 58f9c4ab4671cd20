"""The batch engine on Apache Spark: ``open_spark_journeys`` opens the journeys as
attribid.models.batch.engine's ``open_journeys`` does, with a ``SparkRunner`` in DuckDB's
place, so that both engines run the same plans in the same SQL (their few differences in
``grouped_sql.SPARK``): ``spark.sql`` over temporary views of the touchpoint and
conversion files as Spark reads them (CSV or Parquet, a glob of parts), tables kept in
Spark's cache (memory, then disk). Only the same small aggregates come back to Python,
where the same code solves them (``MarkovChain.from_counts``, ``set_values_of_counts``).
The network runs on the executors (``mapInArrow``), its model's bytes broadcast to them.

Spark is optional (the ``spark`` extra, ``pip install pyspark``): PySpark is imported
when a session is asked for. A DuckDB database file is DuckDB's alone.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from attribid.models.batch.engine import BatchWork, JourneyTables, open_journeys
from attribid.models.batch.grouped_sql import SPARK
from attribid.models.batch.sources import InputSource, check_exists, is_glob, kind_of
from attribid.models.data.tables import DataError, sniff_delimiter

if TYPE_CHECKING:
    from pyspark.core.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

#: where Spark runs unless told: this machine, a thread per core
SPARK_MASTER = "local[*]"
#: shuffle partitions in local mode unless the configuration sets them (Spark's 200 are
#: for a cluster: on one machine each costs a task and buys nothing)
LOCAL_SHUFFLE_PARTITIONS = 4
#: the column of a touchpoint row's place in the files: (file, row id increasing in it)
FILE_ROW = "file_row"
_INSTALL = "pip install pyspark (or pip install 'attribid[spark]')"


class SparkUnavailable(RuntimeError):
    """PySpark is not installed, or Spark (its Java) does not start."""


def refuse_database(path: str) -> None:
    """A DuckDB database file is read by the DuckDB engine only."""
    if not is_glob(path) and kind_of(path) == "database":
        raise DataError(path, None, None, "a DuckDB database file is read by the DuckDB "
                        "engine only: give Spark CSV or Parquet files (or globs of them)")


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While Spark's JVM starts, its standard output is this process's stderr: the JVM and
    the Python workers it forks keep it, so that stdout carries only the command's result."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _sessions() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"--engine spark needs PySpark: {_INSTALL}") from None
    return SparkSession


def spark_session(master: str = SPARK_MASTER) -> SparkSession:
    """The Spark session (a running one, else a new one on ``master``): no UI, no console
    progress, times read in UTC (the loader's rule), few shuffle partitions in local mode."""
    SparkSession = _sessions()
    # executors run this interpreter, which has attribid and its dependencies
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName("attribid")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    try:
        with _stdout_to_stderr():
            session = builder.getOrCreate()
    except Exception as exc:  # PySpark's start-up errors derive from Exception alone
        raise SparkUnavailable(f"Spark did not start on {master} (it needs Java 17 or "
                               f"later on the PATH or in JAVA_HOME): {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    key = "spark.sql.shuffle.partitions"
    if master.startswith("local") and not session.sparkContext.getConf().contains(key):
        session.conf.set(key, str(LOCAL_SHUFFLE_PARTITIONS))
    return session


def _duckdb_type(kind: Any) -> str:
    """A Spark column type in the names ``sources`` reads (VARCHAR, DOUBLE, TIMESTAMP)."""
    name = kind.simpleString().lower()
    if name in ("string", "char", "varchar") or name.startswith(("char(", "varchar(")):
        return "VARCHAR"
    if name.startswith("timestamp"):
        return "TIMESTAMP"
    return name.upper()


class SparkSource:
    """One input (a CSV or Parquet file, or a glob of them) as a Spark view, with its
    columns' types and, per row, its place in the files (``FILE_ROW``)."""

    def __init__(self, session: SparkSession, path: str, table: str) -> None:
        from pyspark.sql import functions as F

        refuse_database(path)
        check_exists(path)
        self.path, self.kind = path, kind_of(path)
        if self.kind == "parquet":
            frame = session.read.option("mergeSchema", "true").parquet(path)
            # Parquet holds typed columns: a timestamp is a number or a time already
            self.time_readings: tuple[bool, ...] = (False,)
        else:
            frame = session.read.csv(path, header=True, sep=self._delimiter(path),
                                     inferSchema=False, quote='"', escape='"',
                                     mode="PERMISSIVE")
            # every value is text: numbers are read first, then ISO-8601 times, per row
            self.time_readings = (True,)
        names = [c.strip() for c in frame.columns]
        # the file's own scan numbers its rows: taken before any other step
        frame = frame.select("*", F.struct(F.col("_metadata.file_path"),
                                           F.monotonically_increasing_id()).alias(FILE_ROW))
        frame = frame.toDF(*names, FILE_ROW)
        self.types = {f.name: _duckdb_type(f.dataType) for f in frame.schema.fields
                      if f.name != FILE_ROW}
        self._view = f"input_{table}"
        frame.createOrReplaceTempView(self._view)

    @staticmethod
    def _delimiter(path: str) -> str:
        import glob

        first = sorted(glob.glob(path))[0] if is_glob(path) else path
        with open(first, encoding="utf-8", errors="replace") as fh:
            return sniff_delimiter(fh.readline())

    def sql(self, types: dict[str, str]) -> str:
        if self.kind != "csv":
            return self._view
        columns = [f"TRY_CAST(trim({SPARK.column(c)}) AS DOUBLE) AS {SPARK.column(c)}"
                   if types.get(c) == "DOUBLE" else SPARK.column(c) for c in self.types]
        return f"(SELECT {', '.join([*columns, FILE_ROW])} FROM {self._view}) AS {self._view}_typed"


@dataclass(frozen=True)
class BroadcastFile:
    """A file's bytes broadcast to the executors, written once per machine where read."""

    data: Broadcast[bytes]
    name: str

    def __call__(self) -> str:
        path = Path(tempfile.gettempdir()) / self.name
        if not path.is_file():
            part = path.with_name(f"{self.name}.{os.getpid()}.part")
            part.write_bytes(self.data.value)
            # whole or not at all: another worker may be writing the same file
            os.replace(part, path)
        return str(path)


class SparkRunner:
    """``SqlRunner`` over a Spark session of its own (``newSession``: its temporary views and
    SQL settings, the shared Spark context); ``owned``: stop Spark on close."""

    name = "Spark"
    dialect = SPARK
    row_order: str | None = FILE_ROW

    def __init__(self, session: SparkSession, owned: bool = False) -> None:
        from pyspark.errors import PySparkException

        self.errors: tuple[type[Exception], ...] = (PySparkException,)
        self._base, self._owned = session, owned
        self._session = session.newSession()
        # the settings made on the session given hold in this one too
        for key, value in session.conf.getAll.items():
            if session.conf.isModifiable(key):
                self._session.conf.set(key, value)
        self._session.conf.set("spark.sql.session.timeZone", "UTC")
        self._cached: list[DataFrame] = []
        self._views: set[str] = set()

    @property
    def con(self) -> SparkSession:
        return self._session

    def source(self, path: str, table: str) -> InputSource:
        source = SparkSource(self._session, path, table)
        self._views.add(f"input_{table}")
        return source

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._session.sql(sql, args=params or None).collect()]

    def table(self, name: str, sql: str) -> None:
        from pyspark import StorageLevel

        frame = self._session.sql(sql).persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(frame)
        frame.createOrReplaceTempView(name)
        self._views.add(name)

    def view(self, name: str, sql: str) -> None:
        self._session.sql(sql).createOrReplaceTempView(name)
        self._views.add(name)

    def drop(self, name: str) -> None:
        self._session.catalog.dropTempView(name)
        self._views.discard(name)

    def map_sorted(self, sql: str, by: tuple[str, ...], work: BatchWork, batch_rows: int,
                   schema: str | None = None) -> Iterator[Any]:
        self._session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        frame = self._session.sql(sql)
        # every row of one by[0] in one partition, the partition sorted: whole, ordered groups
        frame = frame.repartition(by[0]).sortWithinPartitions(*by)
        with warnings.catch_warnings():
            # PySpark checks pandas' version for every map; an Arrow map uses no pandas
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                    FutureWarning)
            out = frame.mapInArrow(work, schema or frame.schema)
        yield from out.toArrow().to_batches()

    def ship(self, path: str) -> Callable[[], str]:
        data = Path(path).read_bytes()
        name = f"attribid-{hashlib.sha256(data).hexdigest()[:16]}{Path(path).suffix}"
        return BroadcastFile(self._session.sparkContext.broadcast(data), name)

    def close(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        for name in self._views:
            self._session.catalog.dropTempView(name)
        self._cached, self._views = [], set()
        if self._owned:
            self._base.stop()


def open_spark_journeys(touchpoints: str | os.PathLike, conversions: str | os.PathLike, *,
                        time_unit: str | None = None, lookback_days: float | None = None,
                        session: SparkSession | None = None,
                        master: str = SPARK_MASTER) -> JourneyTables:
    """``open_journeys`` on Spark: ``session``, or the running one, or a new one on
    ``master`` (stopped when the tables close)."""
    for path in (touchpoints, conversions):
        refuse_database(os.fspath(path))
    owned = False
    if session is None:
        owned = _sessions().getActiveSession() is None
        session = spark_session(master)
    runner = SparkRunner(session, owned)
    try:
        return open_journeys(touchpoints, conversions, time_unit=time_unit,
                             lookback_days=lookback_days, runner=runner)
    except BaseException:
        runner.close()
        raise
