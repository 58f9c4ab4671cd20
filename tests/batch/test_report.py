"""The attribution report: its figures on the sample files by hand, and every rendering."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from attribid.cli.main import main
from attribid.models.attribution.channels import ALL_METHODS

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = ["--touchpoints", str(DATA / "touchpoints.csv"), "--conversions",
         str(DATA / "conversions.csv")]
CHANNELS = ["search", "display", "social", "email", "affiliate", "direct", "tv"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_json_figures_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "attribute", *FILES, "--method", "last-click",
                          "--format", "report-json")
    assert code == 0
    doc = json.loads(out)
    # a: display > search > direct, converts for 39.99; c: affiliate > search, 79.5
    rows = doc["methods"]["last-click"]["channels"]
    assert list(rows) == CHANNELS
    search, direct = rows["search"], rows["direct"]
    assert search["conversions"] == 1.0 and search["share"] == 0.5
    assert search["revenue"] == 79.5
    # spend: every touch of the file, the one after a's conversion too (1.2 + 0.9 + 1.1)
    assert search["spend"] == pytest.approx(3.2)
    assert search["roas"] == pytest.approx(79.5 / 3.2) and search["cpa"] == pytest.approx(3.2)
    assert direct["revenue"] == 39.99 and direct["spend"] == 0.0
    assert direct["roas"] is None and direct["cpa"] == 0.0          # no spend: no ROAS
    assert rows["tv"]["cpa"] is None                                   # no conversion: no CPA
    total = doc["methods"]["last-click"]["total"]
    assert total["conversions"] == 2.0 and total["revenue"] == pytest.approx(119.49)
    assert total["spend"] == pytest.approx(3.83)
    assert doc["conversions"] == 2.0 and doc["journeys"] == 4.0
    assert any("journey 'z'" in i for i in doc["issues"])
    assert "journey 'z'" in err


def test_table_is_aligned_and_rounded(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "attribute", *FILES, "--method", "position-based",
                        "--format", "table")
    assert code == 0
    lines = out.splitlines()
    header = next(k for k, line in enumerate(lines) if line.startswith("channel "))
    table = lines[header:header + 2 + len(CHANNELS) + 1]
    # every column ends where its header ends
    ends = [k + 1 for k, ch in enumerate(table[1]) if ch == "-" and
            (k + 1 == len(table[1]) or table[1][k + 1] == " ")]
    for line in table[2:]:
        for end in ends[1:]:
            assert line[end - 1] != " ", line
    search = table[2].split()
    # search: 0.2 of a (39.99) + 0.5 of c (79.5) = 47.75 revenue; CPA 3.20 / 0.7
    assert search == ["search", "0.7", "35.0%", "47.75", "3.20", "14.92", "4.57"]
    assert table[-1].split()[0] == "total"


def test_several_methods_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "attribute", *FILES, "--method", "linear,markov",
                        "--format", "json")
    doc = json.loads(out)
    assert list(doc) == ["linear", "markov"]
    for credit in doc.values():
        assert list(credit) == CHANNELS and sum(credit.values()) == pytest.approx(2.0)
    code, out, _ = _run(capsys, "attribute", *FILES, "--method", "linear,markov",
                        "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["method"] for r in rows] == ["linear"] * 7 + ["markov"] * 7
    assert float(rows[0]["credit"]) == pytest.approx(doc["linear"]["search"])
    assert rows[5]["roas"] == ""            # direct: no spend
    code, out, _ = _run(capsys, "attribute", *FILES, "--method", "linear,markov",
                        "--format", "markdown")
    assert "### Credited conversions (share)" in out and "| channel | spend | linear | markov |" in out
    assert "### ROAS (credited revenue / spend)" in out


def test_method_all_names_methods_as_the_flag_does(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    from attribid.models.data.loader import write_journeys
    from attribid.models.simulation.simulate import WORLDS, simulate

    journeys, _ = simulate(WORLDS["balanced"], 400, seed=1)
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    write_journeys(journeys, tp, cv)
    code, out, _ = _run(capsys, "attribute", "--touchpoints", str(tp), "--conversions", str(cv),
                        "--method", "all", "--format", "json")
    assert code == 0 and list(json.loads(out)) == list(ALL_METHODS)
    # the sample's 'tv' is unknown to the shipped network: 'all' leaves it out and says so
    code, out, err = _run(capsys, "attribute", *FILES, "--method", "all", "--format", "json")
    assert code == 0 and "network" not in json.loads(out)
    assert "network left out of 'all'" in err


def test_flags_that_do_not_apply_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "attribute", *FILES, "--method", "linear", "--half-life", "5")
    assert code == 2 and "--half-life applies to --method time-decay only" in err
    code, _, err = _run(capsys, "attribute", *FILES, "--method", "markov,bogus")
    assert code == 2 and "--method: unknown ['bogus']" in err
    code, _, err = _run(capsys, "attribute", "--paths", str(DATA / "touchpoints.csv"),
                        "--method", "time-decay")
    assert code == 2 and "not available with --paths" in err
    code, _, err = _run(capsys, "attribute", "--method", "linear")
    assert code == 2 and "give --touchpoints and --conversions (or --paths)" in err


def test_paths_command_and_its_round_trip(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "paths", *FILES, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["journeys"] == 4 and doc["conversions"] == 2 and doc["distinct_paths"] == 4
    top = doc["top_paths"][0]
    assert top == {"path": ["affiliate", "search"], "journeys": 1.0, "conversions": 1.0,
                   "conversion_rate": 1.0, "value": 79.5}
    assert doc["time_to_conversion"]["median_hours"] == pytest.approx(2.5)
    matrix = doc["transition_matrix"]
    assert matrix["from"][0] == "START"
    search = matrix["probability"][matrix["from"].index("search")]
    # search is left for direct (journey a), CONVERSION (c) and NULL (d): a third each
    assert search[matrix["to"].index("CONVERSION")] == pytest.approx(1 / 3)
    assert sum(search) == pytest.approx(1.0)
    # csv is ChannelAttribution's format, which attribute --paths reads back
    code, out, _ = _run(capsys, "paths", *FILES, "--format", "csv")
    paths = tmp_path / "paths.csv"
    paths.write_text(out)
    for method in ("linear", "markov", "shapley"):
        _, a, _ = _run(capsys, "attribute", *FILES, "--method", method, "--format", "json")
        _, b, _ = _run(capsys, "attribute", "--paths", str(paths), "--method", method,
                       "--format", "json")
        assert json.loads(b) == pytest.approx({k: v for k, v in json.loads(a).items()}), method
    code, out, _ = _run(capsys, "paths", *FILES, "--format", "table", "--top", "2")
    assert "Top 2 paths by conversions" in out and "Markov transition matrix" in out
