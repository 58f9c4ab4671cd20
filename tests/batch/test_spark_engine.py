"""The Spark engine against DuckDB's and the memory kernels: the same plans in the same SQL
give the same figures, on one local Spark session (its JVM started once for the module)."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.attribution.classic import METHODS, credit_totals
from attribid.models.attribution.paths import path_report
from attribid.models.batch.classic_sql import sql_totals
from attribid.models.batch.engine import JourneyTables, open_journeys
from attribid.models.batch.paths_sql import sql_path_report
from attribid.models.data.loader import DataError, read_journeys
from attribid.models.simulation.files import write_simulation_parts
from attribid.models.simulation.simulate import WORLDS
from tests.batch.test_duckdb_engine import files  # noqa: F401  (a fixture)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# PySpark 4.3 warns that it does not yet fully support pandas 3 (the engine uses Arrow)
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning")
#: a test that runs Spark: it needs Java, and the JVM's start and warm-up take a while
needs_java = pytest.mark.skipif(shutil.which("java") is None,
                                reason="Spark needs Java: no java on the PATH")

#: every method once, with the options that change its SQL (order 2: a state of two touches)
SPARK_CASES: list[tuple[str, dict[str, float | int]]] = [
    *[(m, {}) for m in METHODS if m not in ("markov", "time-decay")],
    ("time-decay", {"half_life_hours": 6.0}), ("markov", {"order": 1}), ("markov", {"order": 2}),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from attribid.models.batch.spark_engine import spark_session

    session = spark_session("local[2]")
    # tiny inputs: compiling each query's code and planning its shuffles adaptively cost
    # more than they save (the figures are the same)
    for key, value in (("spark.sql.shuffle.partitions", "2"),
                       ("spark.sql.codegen.wholeStage", "false"),
                       ("spark.sql.adaptive.enabled", "false")):
        session.conf.set(key, value)
    yield session
    session.stop()


def _spark_tables(spark: SparkSession, tp: Path | str, cv: Path | str,
                  lookback: float | None = None) -> JourneyTables:
    from attribid.models.batch.spark_engine import open_spark_journeys

    return open_spark_journeys(tp, cv, lookback_days=lookback, session=spark)


def _same(got: JourneyTables, want: JourneyTables,
          cases: list[tuple[str, dict[str, float | int]]]) -> None:
    assert got.channels == want.channels and got.issues == want.issues
    assert (got.n_journeys, got.conversions) == (want.n_journeys, want.conversions)
    assert got.revenue == pytest.approx(want.revenue, rel=1e-12)
    np.testing.assert_allclose(got.spend, want.spend, rtol=1e-12)
    for method, options in cases:
        a, b = sql_totals(got, method, **options), sql_totals(want, method, **options)
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{method} {options}")
        np.testing.assert_allclose(a.revenue, b.revenue, rtol=1e-9, atol=1e-9,
                                   err_msg=f"{method} {options}")


@needs_java
@pytest.mark.slow
def test_every_classic_method_equals_duckdb_and_the_memory_kernels(
        spark: SparkSession, files: tuple[Path, Path]) -> None:  # noqa: F811
    tp, cv = files
    tables = _spark_tables(spark, tp, cv)
    # the journey-level plan: touches made only when Markov asks
    assert tables.dialect.name == "spark" and tables.touch_rows == "converted_rows"
    _same(tables, open_journeys(tp, cv), SPARK_CASES)
    loaded = read_journeys(tp, cv)
    for method, options in SPARK_CASES:
        want, got = credit_totals(loaded.journeys, method, **options), sql_totals(
            tables, method, **options)
        np.testing.assert_allclose(got.conversions, want.conversions, rtol=1e-9, atol=1e-9,
                                   err_msg=f"{method} {options}")
        np.testing.assert_allclose(got.revenue, want.revenue, rtol=1e-9, atol=1e-7,
                                   err_msg=f"{method} {options}")
    # the path report: the same paths, counts and transitions
    got_paths, want_paths = sql_path_report(tables), path_report(loaded.journeys)
    assert [p.path for p in got_paths.paths] == [p.path for p in want_paths.paths]
    assert got_paths.lengths == want_paths.lengths
    assert got_paths.time_to_conversion == want_paths.time_to_conversion
    assert got_paths.median_hours == want_paths.median_hours
    np.testing.assert_allclose(got_paths.transitions[2], want_paths.transitions[2], atol=1e-12)
    tables.close()


@needs_java
@pytest.mark.slow
def test_the_exact_plan_a_lookback_window_and_ties(
        spark: SparkSession, files: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    tp, cv = files
    windowed = _spark_tables(spark, tp, cv, lookback=3.0)
    assert windowed.touch_rows == "touches"
    _same(windowed, open_journeys(tp, cv, lookback_days=3.0),
          [("last-click", {}), ("time-decay", {}), ("markov", {"order": 1})])
    windowed.close()
    # journey a's first two touches share a second, and a row repeats: file order decides
    tied_tp, tied_cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tied_tp.write_text("journey_id,timestamp,channel,interaction,cost\n" + "\n".join([
        "a,1767600000,search,click,1", "a,1767600000,email,click,2",
        "a,1767600500,display,impression,0.5", "a,1767601000,social,click,1",
        "b,1767600100,email,click,1", "b,1767600200,email,click,1",
        "b,1767600200,email,click,1", "c,1767600000,display,click,3"]) + "\n")
    tied_cv.write_text("journey_id,timestamp,value\na,1767600900,10\nb,1767600900,4\n")
    tied = _spark_tables(spark, tied_tp, tied_cv)
    loaded = read_journeys(tied_tp, tied_cv)
    assert tied.issues == loaded.issues
    # the methods that read the order of the touches, and the journey-level ones
    for method in ("first-click", "last-click", "position-based", "markov"):
        want, got = credit_totals(loaded.journeys, method), sql_totals(tied, method)
        np.testing.assert_allclose(got.conversions, want.conversions, atol=1e-12, err_msg=method)
        np.testing.assert_allclose(got.revenue, want.revenue, atol=1e-9, err_msg=method)
    tied.close()


@needs_java
@pytest.mark.slow
def test_parquet_parts_as_a_glob(spark: SparkSession, tmp_path: Path) -> None:
    write_simulation_parts(WORLDS["balanced"], 900, 4, tmp_path, parts=3)
    tp, cv = tmp_path / "touchpoints/*.parquet", tmp_path / "conversions/*.parquet"
    tables = _spark_tables(spark, str(tp), str(cv))
    assert tables.n_journeys == 900
    _same(tables, open_journeys(tp, cv), [("position-based", {})])
    tables.close()


@needs_java
@pytest.mark.slow
def test_the_network_on_the_executors_equals_duckdbs_stream(
        spark: SparkSession, files: tuple[Path, Path]) -> None:  # noqa: F811
    from attribid.models.batch.network_stream import StreamStats, network_totals

    tp, cv = files
    tables = _spark_tables(spark, tp, cv)
    stats: list[StreamStats] = []
    # small batches: journeys carried from one batch into the next on every executor
    got = network_totals(tables, batch_rows=500, stats=stats)
    want = network_totals(open_journeys(tp, cv))
    np.testing.assert_allclose(got.conversions, want.conversions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.revenue, want.revenue, rtol=1e-5, atol=1e-4)
    assert stats[0].journeys == tables.conversions and stats[0].batches > 1
    assert stats[0].largest_chunk <= 500 + 64
    tables.close()


@needs_java
@pytest.mark.slow
def test_a_malformed_row_names_file_line_and_column(spark: SparkSession, tmp_path: Path) -> None:
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\n"
                  "a,1767600000,search,click,1\nb,yesterday,search,click,1\n")
    cv.write_text("journey_id,timestamp,value\na,1767600100,10\n")
    with pytest.raises(DataError) as err:
        _spark_tables(spark, tp, cv)
    assert f"{tp}, line 3, column 'timestamp'" in str(err.value)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@needs_java
@pytest.mark.slow
def test_the_command_line_gives_duckdbs_json(
        spark: SparkSession, files: tuple[Path, Path],  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = files
    outs = {}
    for engine in ("duckdb", "spark"):
        code, out, err = _cli(capsys, "attribute", "--touchpoints", str(tp), "--conversions",
                              str(cv), "--method", "last-click", "--engine", engine,
                              "--format", "json")
        assert code == 0, err
        outs[engine] = out
    duck, on_spark = json.loads(outs["duckdb"]), json.loads(outs["spark"])
    # the same channels in the same order, the same credit
    assert list(on_spark) == list(duck)
    assert on_spark == pytest.approx(duck, rel=1e-12)


def test_what_spark_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "journeys.duckdb"
    base = ["attribute", "--conversions", str(tmp_path / "c.csv"), "--method", "linear"]
    code, out, err = _cli(capsys, *base, "--touchpoints", str(db), "--engine", "spark")
    assert code == 2 and out == ""
    assert err.startswith("attribid attribute: --touchpoints ") and "--engine duckdb only" in err
    code, _, err = _cli(capsys, *base, "--touchpoints", "t.csv", "--spark-master", "local[2]")
    assert code == 2 and "--spark-master applies to --engine spark only" in err
    code, _, err = _cli(capsys, *base, "--touchpoints", "t.csv", "--engine", "spark",
                        "--duckdb-threads", "2")
    assert code == 2 and "--duckdb-threads applies to --engine duckdb only" in err
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else found(name, *a))
    code, _, err = _cli(capsys, *base, "--touchpoints", "t.csv", "--engine", "spark")
    assert code == 1 and "pip install pyspark" in err
