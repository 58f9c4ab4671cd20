"""The DuckDB engine against the memory kernels: the same figures from the same journeys,
whatever the files' form (CSV, Parquet, a glob of parts, a DuckDB database)."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.attribution.classic import METHODS, credit_totals
from attribid.models.attribution.paths import path_report
from attribid.models.batch.classic_sql import sql_totals
from attribid.models.batch.engine import JourneyTables, open_journeys
from attribid.models.batch.paths_sql import sql_path_report
from attribid.models.data.loader import DataError, read_journeys, write_journeys
from attribid.models.simulation.files import write_simulation_parts
from attribid.models.simulation.simulate import WORLDS, simulate

#: every method with the options worth crossing (orders above 1 change the states)
CASES: list[tuple[str, dict[str, float | int]]] = [
    *[(m, {}) for m in METHODS if m not in ("markov", "markov-per-journey", "time-decay")],
    ("time-decay", {}), ("time-decay", {"half_life_hours": 6.0}),
    ("markov", {"order": 1}), ("markov", {"order": 3}),
    ("markov-per-journey", {"order": 1}), ("markov-per-journey", {"order": 2}),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Simulated journeys as CSV, with the touches after conversion a log would have."""
    out = tmp_path_factory.mktemp("sim")
    journeys, truth = simulate(WORLDS["synergy"], 2500, seed=21)
    tp, cv = out / "touchpoints.csv", out / "conversions.csv"
    write_journeys(journeys, tp, cv, truth.after_conversion)
    return tp, cv


def _same_totals(tables: JourneyTables, tp: Path, cv: Path, lookback: float | None) -> None:
    loaded = read_journeys(tp, cv, lookback_days=lookback)
    assert tables.channels == loaded.journeys.channels
    assert tables.n_journeys == loaded.journeys.n_journeys
    np.testing.assert_allclose(tables.spend, loaded.spend, rtol=1e-12)
    for method, options in CASES:
        want = credit_totals(loaded.journeys, method, **options)
        got = sql_totals(tables, method, **options)
        np.testing.assert_allclose(got.conversions, want.conversions, atol=1e-9,
                                   err_msg=f"{method} {options}")
        np.testing.assert_allclose(got.revenue, want.revenue, rtol=1e-9, atol=1e-7,
                                   err_msg=f"{method} {options}")


@pytest.mark.parametrize("lookback", [None, 3.0])
def test_every_classic_method_equals_the_memory_kernels(files: tuple[Path, Path],
                                                        lookback: float | None) -> None:
    tp, cv = files
    tables = open_journeys(tp, cv, lookback_days=lookback)
    assert tables.issues == read_journeys(tp, cv, lookback_days=lookback).issues
    _same_totals(tables, tp, cv, lookback)


def test_the_path_report_equals_the_memory_one(files: tuple[Path, Path]) -> None:
    tp, cv = files
    want = path_report(read_journeys(tp, cv).journeys)
    got = sql_path_report(open_journeys(tp, cv))
    assert [p.path for p in got.paths] == [p.path for p in want.paths]
    for g, w in zip(got.paths, want.paths):
        assert (g.journeys, g.conversions) == (w.journeys, w.conversions)
        assert g.value == pytest.approx(w.value, rel=1e-12)
    assert got.lengths == want.lengths
    assert got.time_to_conversion == want.time_to_conversion
    assert got.median_hours == want.median_hours
    assert got.transitions[:2] == want.transitions[:2]
    np.testing.assert_allclose(got.transitions[2], want.transitions[2], atol=1e-12)
    assert (got.journeys, got.conversions) == (want.journeys, want.conversions)


def test_csv_parquet_parts_and_a_database_give_the_same(tmp_path: Path) -> None:
    # one part holds the journeys the CSV files hold (part 0 draws from the seed itself)
    write_simulation_parts(WORLDS["balanced"], 1500, 4, tmp_path / "one", parts=1)
    write_simulation_parts(WORLDS["balanced"], 1500, 4, tmp_path / "many", parts=3)
    journeys, truth = simulate(WORLDS["balanced"], 1500, seed=4)
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    write_journeys(journeys, tp, cv, truth.after_conversion)
    single = open_journeys(tmp_path / "one/touchpoints/part-00000.parquet",
                           tmp_path / "one/conversions/part-00000.parquet")
    csv_tables = open_journeys(tp, cv)
    for method, options in CASES:
        a, b = sql_totals(csv_tables, method, **options), sql_totals(single, method, **options)
        np.testing.assert_allclose(a.conversions, b.conversions, atol=1e-9)
    # three parts read as one glob, and as a DuckDB file made from them, agree with each other
    parts = open_journeys(tmp_path / "many/touchpoints/*.parquet",
                          tmp_path / "many/conversions/*.parquet")
    # every simulated journey has a touch before its conversion: none is left out
    assert parts.n_journeys == 1500
    db = tmp_path / "journeys.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE touchpoints AS SELECT * FROM read_parquet(?)",
                    [str(tmp_path / "many/touchpoints/*.parquet")])
        con.execute("CREATE TABLE conversions AS SELECT * FROM read_parquet(?)",
                    [str(tmp_path / "many/conversions/*.parquet")])
    database = open_journeys(db, db)
    for method, options in CASES:
        a, b = sql_totals(parts, method, **options), sql_totals(database, method, **options)
        np.testing.assert_allclose(a.conversions, b.conversions, atol=1e-9)
        np.testing.assert_allclose(a.revenue, b.revenue, rtol=1e-9)
    # and the parts are other journeys than part 0 alone: the test can tell them apart
    assert parts.n_journeys != single.n_journeys or not np.allclose(
        sql_totals(parts, "linear").conversions, sql_totals(single, "linear").conversions)


@pytest.mark.parametrize("row, column", [
    ("b,1767600000,search,click,abc", "cost"),
    ("b,yesterday,search,click,1", "timestamp"),
    ("b,1767600000,search,swipe,1", "interaction"),
    ("b,1767600000,,click,1", "channel"),
])
def test_a_malformed_row_names_file_line_and_column(tmp_path: Path, row: str,
                                                    column: str) -> None:
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\n"
                  "a,1767600000,search,click,1\na,1767600060,email,click,0.5\n" + row + "\n")
    cv.write_text("journey_id,timestamp,value\na,1767600100,10\n")
    with pytest.raises(DataError) as err:
        open_journeys(tp, cv)
    assert err.value.line == 4 and err.value.column == column
    assert f"{tp}, line 4, column '{column}'" in str(err.value)


def test_warnings_come_with_the_scanners_lines(tmp_path: Path) -> None:
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\n"
                  "a,1767600000,Search,click,1\na,1767600000,Search,click,1\n"
                  "b,1767600000,search,click,2\n")
    cv.write_text("journey_id,timestamp,value\na,1767600100,10\nghost,1767600100,5\n")
    tables = open_journeys(tp, cv)
    assert tables.issues == read_journeys(tp, cv).issues
    assert {i.kind for i in tables.issues} >= {"duplicate-rows", "conversion-without-touchpoints",
                                               "channel-case"}
    # the repeat counted once, both spellings one channel
    assert tables.channels == ("Search",)
    np.testing.assert_allclose(tables.spend, [3.0])


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _flat(doc: dict[str, object]) -> dict[tuple[str, str], float]:
    """``json`` output as (method, channel) -> credit, for one method or several."""
    if all(isinstance(v, dict) for v in doc.values()):
        return {(m, c): float(x) for m, row in doc.items()
                for c, x in row.items()}  # type: ignore[union-attr]
    return {("", c): float(x) for c, x in doc.items()}  # type: ignore[arg-type]


@pytest.mark.parametrize("flags", [["--method", "all"], ["--method", "markov", "--order", "2"],
                                   ["--method", "time-decay", "--half-life", "12",
                                    "--lookback", "2"]])
def test_engine_flag_end_to_end(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                flags: list[str]) -> None:
    tp, cv = files
    base = ["attribute", "--touchpoints", str(tp), "--conversions", str(cv), *flags]
    if flags == ["--method", "all"]:
        # the network is the memory engine's in both runs: compare the classic methods
        base[-1] = ",".join(METHODS)
    results = {}
    for engine in ("duckdb", "memory"):
        code, out, err = _cli(capsys, *base, "--engine", engine, "--format", "json")
        assert code == 0, err
        results[engine] = json.loads(out)
    a, b = _flat(results["duckdb"]), _flat(results["memory"])
    assert a.keys() == b.keys() and len(a) >= 7
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-9), key
    code, out, _ = _cli(capsys, *base, "--engine", "duckdb", "--format", "report-json")
    assert code == 0 and json.loads(out)


def test_paths_engine_flag_end_to_end(files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = files
    outs = {}
    for engine in ("duckdb", "memory"):
        code, out, err = _cli(capsys, "paths", "--touchpoints", str(tp), "--conversions",
                              str(cv), "--engine", engine, "--format", "json", "--top", "5")
        assert code == 0, err
        outs[engine] = json.loads(out)
    duck, memory = outs["duckdb"], outs["memory"]
    assert [p["path"] for p in duck["top_paths"]] == [p["path"] for p in memory["top_paths"]]
    assert duck["path_length"] == memory["path_length"]
    assert duck["time_to_conversion"] == memory["time_to_conversion"]
    np.testing.assert_allclose(duck["transition_matrix"]["probability"],
                               memory["transition_matrix"]["probability"], atol=1e-12)


def test_a_bad_file_exits_2_under_either_engine(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\na,1767600000,search,click,-1\n")
    cv.write_text("journey_id,timestamp,value\na,1767600100,10\n")
    for engine in ("duckdb", "memory"):
        code, out, err = _cli(capsys, "attribute", "--touchpoints", str(tp), "--conversions",
                              str(cv), "--method", "linear", "--engine", engine)
        assert code == 2 and out == ""
        assert f"{tp}, line 2, column 'cost'" in err


def test_the_network_stream_is_bounded_by_its_batch(files: tuple[Path, Path]) -> None:
    from attribid.models.attribution.channels import method_totals
    from attribid.models.batch.network_stream import StreamStats, network_totals, stream_journeys

    tp, cv = files
    tables = open_journeys(tp, cv)
    loaded = read_journeys(tp, cv).journeys
    converted = loaded.subset(np.flatnonzero(loaded.converted))
    max_len, batch_rows = 4, 50
    chunks = list(stream_journeys(tables, max_len, batch_rows))
    # every chunk within one batch plus one carried journey, the journeys whole and once each
    assert max(c.n_touchpoints for c in chunks) <= batch_rows + max_len
    truncated = np.minimum(converted.lengths(), max_len)
    assert sum(c.n_touchpoints for c in chunks) == int(truncated.sum())
    assert len(chunks) >= int(truncated.sum()) // (batch_rows + max_len)
    ids = np.concatenate([c.ids for c in chunks])
    assert sorted(ids.tolist()) == sorted(converted.ids.tolist())
    lengths = dict(zip(converted.ids.tolist(), truncated.tolist()))
    for chunk in chunks:
        assert dict(zip(chunk.ids.tolist(), chunk.lengths().tolist())).items() <= lengths.items()
    # the streamed credit is the memory engine's, whatever the batch
    want = method_totals(loaded, "network")(None)
    stats: list[StreamStats] = []
    got = network_totals(tables, batch_rows=300, stats=stats)
    np.testing.assert_allclose(got.conversions, want.conversions, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.revenue, want.revenue, rtol=1e-5, atol=1e-3)
    assert stats[0].journeys == converted.n_journeys and stats[0].batches > 1
    assert stats[0].largest_chunk <= 300 + 64


def test_simulate_parquet_parts_on_the_command_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    code, said, err = _cli(capsys, "simulate", "--world", "recency", "--journeys", "900",
                           "--seed", "3", "--format", "parquet", "--parts", "3", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in (out / "truth").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    summary = json.loads((out / "world.json").read_text())
    assert summary["parts"] == 3 and summary["journeys"] == 900
    assert sum(summary["true_channel_shares"].values()) == pytest.approx(1.0, abs=1e-5)
    code, said, err = _cli(capsys, "attribute", "--touchpoints", str(out / "touchpoints/*.parquet"),
                           "--conversions", str(out / "conversions/*.parquet"),
                           "--method", "linear", "--format", "json")
    assert code == 0, err
    assert sum(json.loads(said).values()) == pytest.approx(summary["conversions"])
    code, _, err = _cli(capsys, "simulate", "--journeys", "10", "--parts", "2", "--out",
                        str(tmp_path / "csv"))
    assert code == 2 and "--parts applies to --format parquet only" in err


def test_the_connection_spills_and_keeps_stdout_clean() -> None:
    from attribid.models.batch.engine import connect

    con = connect(memory_limit="256MB")
    progress, limit, temp = con.execute(
        "SELECT current_setting('enable_progress_bar'), current_setting('memory_limit'), "
        "current_setting('temp_directory')").fetchall()[0]
    # a progress bar on stdout would break --format json for long queries
    assert progress is False
    assert limit.endswith("MiB") and float(limit.split()[0]) < 256
    assert not temp.startswith(".") and "attribid-duckdb" in temp
