"""No silent wrong answers: what the loader refuses, warns about, notes and detects."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.kernels.csvscan import OK, scan_fields
from attribid.models.data.loader import DataError, read_journeys, read_paths

HEADER = "journey_id,timestamp,channel,interaction,cost"
CONV_HEADER = "journey_id,timestamp,value"
T0 = 1767571200  # 2026-01-05T00:00:00Z


def _files(tmp_path: Path, touches: list[str], conversions: list[str],
           header: str = HEADER, conv_header: str = CONV_HEADER,
           sep: str = ",") -> tuple[Path, Path]:
    tp, cv = tmp_path / "touchpoints.csv", tmp_path / "conversions.csv"
    tp.write_text("\n".join([header.replace(",", sep), *touches]) + "\n")
    cv.write_text("\n".join([conv_header.replace(",", sep), *conversions]) + "\n")
    return tp, cv


def _attribute(capsys: pytest.CaptureFixture[str], tp: Path, cv: Path, *flags: str
               ) -> tuple[int, str, str]:
    code = main(["attribute", "--touchpoints", str(tp), "--conversions", str(cv), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def test_header_only_or_empty_touchpoints_are_errors(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = _files(tmp_path, [], ["x,5,1"])
    code, out, err = _attribute(capsys, tp, cv, "--method", "linear")
    assert code == 2 and out == ""
    assert f"{tp}: no rows after the header" in err
    tp.write_text("")
    code, _, err = _attribute(capsys, tp, cv, "--method", "linear")
    assert code == 2 and "empty file" in err


def test_no_conversions_is_a_warning_and_strict_fails(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = _files(tmp_path, [f"x,{T0},search,click,1"], [])
    code, out, err = _attribute(capsys, tp, cv, "--method", "linear", "--format", "json")
    assert code == 0 and json.loads(out) == {"search": 0.0}
    assert "warning: " in err and "has no conversion rows" in err
    code, out, err = _attribute(capsys, tp, cv, "--method", "linear", "--strict")
    assert code == 2 and out == "" and "--strict: 1 warning(s)" in err


def test_conversions_without_touchpoints_are_counted_and_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = _files(tmp_path, [f"x,{T0},search,click,1"],
                    [f"x,{T0 + 60},5", f"ghost,{T0},7", f"ghost2,{T0},8"])
    code, out, err = _attribute(capsys, tp, cv, "--method", "last-click", "--format", "json")
    assert code == 0 and json.loads(out) == {"search": 1.0}   # stdout: the result only
    assert (f"warning: 2 conversions whose journey has no touchpoint are not credited to any "
            f"channel (first: journey 'ghost', {cv} line 3)") in err
    code, out, err = _attribute(capsys, tp, cv, "--method", "last-click", "--strict")
    assert code == 2 and out == ""


def test_journeys_whose_every_touch_follows_the_conversion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = _files(tmp_path, [f"x,{T0},search,click,1", f"late,{T0 + 100},email,click,1",
                               f"late,{T0 + 200},email,click,1"],
                    [f"x,{T0 + 50},5", f"late,{T0 + 10},7"])
    loaded = read_journeys(tp, cv)
    (issue,) = [i for i in loaded.issues if i.kind == "touches-after-conversion"]
    assert issue.warning and issue.count == 1
    assert issue.message == (f"1 conversion whose every touchpoint comes after the conversion is "
                             f"not credited (first: journey 'late', {cv} line 3)")
    assert loaded.journeys.ids.tolist() == ["x"]
    code, _, err = _attribute(capsys, tp, cv, "--method", "linear", "--strict")
    assert code == 2 and "every touchpoint comes after" in err


def test_repeated_rows_are_counted_once_and_reported(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows = [f"x,{T0},search,click,1", f"x,{T0 + 5},email,click,0.5",
            f"x,{T0},display,impression,0.1", f"x,{T0},search,click,1",
            f"x,{T0 + 5},email,click,0.5", f"y,{T0},search,click,1"]
    tp, cv = _files(tmp_path, rows, [f"x,{T0 + 60},5"])
    loaded = read_journeys(tp, cv)
    (issue,) = [i for i in loaded.issues if i.kind == "duplicate-rows"]
    assert issue.count == 2 and issue.warning
    assert f"(first: journey 'x', {tp} line 5)" in issue.message
    assert loaded.journeys.lengths().tolist() == [3, 1]
    # spend counts each repeated row once too
    assert dict(zip(loaded.journeys.channels, loaded.spend.tolist())) == pytest.approx(
        {"search": 2.0, "display": 0.1, "email": 0.5})
    code, out, _ = _attribute(capsys, tp, cv, "--method", "linear", "--format", "json")
    assert json.loads(out) == pytest.approx({"search": 1 / 3, "display": 1 / 3, "email": 1 / 3})
    # the same time and channel with another cost is another touch
    tp.write_text("\n".join([HEADER, f"x,{T0},search,click,1", f"x,{T0},search,click,2"]) + "\n")
    assert not [i for i in read_journeys(tp, cv).issues if i.kind == "duplicate-rows"]


def test_channel_names_match_in_any_case_first_spelling_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tp, cv = _files(tmp_path, [f"x,{T0},Search,click,1", f"x,{T0 + 1},search,Click,1",
                               f"y,{T0},SEARCH,impression,1", f"y,{T0 + 1},Email,click,1"],
                    [f"x,{T0 + 60},5", f"y,{T0 + 60},5"])
    loaded = read_journeys(tp, cv)
    assert loaded.journeys.channels == ("Search", "Email")   # the default order, as spelled
    (note,) = [i for i in loaded.issues if i.kind == "channel-case"]
    assert not note.warning and "'Search' also as 'search', 'SEARCH'" in note.message
    code, out, err = _attribute(capsys, tp, cv, "--method", "last-click", "--format", "table")
    assert code == 0 and "'Search' also as 'search', 'SEARCH'" in out   # the report says so
    assert "note: channel names that differ only in case" in err
    # the shipped network knows them by their lower-case names
    code, out, _ = _attribute(capsys, tp, cv, "--method", "network", "--format", "json")
    assert code == 0 and sum(json.loads(out).values()) == pytest.approx(2.0)


def test_epoch_milliseconds_are_detected_and_give_the_seconds_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    touches = [("x", 0, "search"), ("x", 3600, "email"), ("y", 0, "display"), ("y", 7200, "search")]
    conversions = [("x", 7200, 10), ("y", 9000, 20)]
    seconds = tmp_path / "s"
    millis = tmp_path / "ms"
    seconds.mkdir(), millis.mkdir()
    tp_s, cv_s = _files(seconds, [f"{j},{T0 + t},{c},click,1" for j, t, c in touches],
                        [f"{j},{T0 + t},{v}" for j, t, v in conversions])
    # touches in milliseconds, conversions in ISO-8601: each file is read on its own
    tp_ms, cv_ms = _files(millis, [f"{j},{(T0 + t) * 1000},{c},click,1" for j, t, c in touches],
                          [f"x,2026-01-05T02:00:00Z,10", f"y,2026-01-05T02:30:00Z,20"])
    a = read_journeys(tp_s, cv_s)
    b = read_journeys(tp_ms, cv_ms)
    np.testing.assert_array_equal(a.journeys.timestamp, b.journeys.timestamp)
    np.testing.assert_array_equal(a.journeys.conversion_time, b.journeys.conversion_time)
    assert [i.kind for i in b.issues] == ["time-unit"]
    assert f"{tp_ms}: epoch timestamps read as milliseconds" in b.issues[0].message
    flags = ["--method", "time-decay", "--half-life", "1", "--format", "json"]
    _, out_s, _ = _attribute(capsys, tp_s, cv_s, *flags)
    _, out_ms, err = _attribute(capsys, tp_ms, cv_ms, *flags)
    assert json.loads(out_ms) == pytest.approx(json.loads(out_s))
    assert sum(json.loads(out_ms).values()) == pytest.approx(2.0)
    assert "read as milliseconds" in err
    # --time-unit says it outright (and so there is nothing to note)
    c = read_journeys(tp_ms, cv_ms, time_unit="ms")
    np.testing.assert_array_equal(c.journeys.timestamp, a.journeys.timestamp)
    assert not c.issues


def test_mixed_time_units_are_an_error_naming_the_line(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, [f"x,{T0 * 1000},search,click,1", f"x,{T0 * 1000 + 5},email,click,1",
                               f"x,{T0},display,click,1"], [f"x,{T0 + 60},5"])
    with pytest.raises(DataError, match=r"line 4, column 'timestamp': epoch seconds and "
                                        r"milliseconds mixed"):
        read_journeys(tp, cv)
    tp.write_text(f"{HEADER}\nx,{T0 * 10**6},search,click,1\n")
    with pytest.raises(DataError, match="too large for epoch seconds or milliseconds"):
        read_journeys(tp, cv)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_files(tmp_path: Path, sep: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["x", str(T0), "search", "click", "1.5"], ["x", str(T0 + 5), "email", "click", "0"]]
    tp, cv = _files(tmp_path, [sep.join(r) for r in rows], [sep.join(["x", str(T0 + 60), "5"])],
                    sep=sep)
    loaded = read_journeys(tp, cv)
    assert loaded.journeys.channels == ("search", "email")
    assert loaded.journeys.cost.tolist() == [1.5, 0.0]
    code, out, _ = _attribute(capsys, tp, cv, "--method", "linear", "--format", "json")
    assert code == 0 and json.loads(out) == {"search": 0.5, "email": 0.5}
    # a quoted value goes through the csv module with the same delimiter
    tp.write_text(tp.read_text().replace("email", '"email"'))
    assert read_journeys(tp, cv).journeys.channels == ("search", "email")
    # the kernel splits on the delimiter it is given
    starts, ends, status = scan_fields(np.frombuffer(b"a;b\nc;d\n", np.uint8), 2, ";")
    assert status == OK and starts.shape == (2, 2)


def test_aggregated_paths_with_either_delimiter(tmp_path: Path) -> None:
    text = "path{s}total_conversions{s}total_conversion_value{s}total_null\n" \
           "Search > email{s}3{s}30{s}2\nemail{s}0{s}0{s}4\n > {s}1{s}1{s}1\n"
    for s in (",", ";"):
        f = tmp_path / f"paths{ord(s)}.csv"
        f.write_text(text.format(s=s))
        loaded = read_paths(f)
        assert loaded.journeys.channels == ("Search", "email")
        assert loaded.weight.tolist() == [3.0, 2.0, 4.0]
        assert loaded.journeys.value.tolist() == [10.0, 0.0, 0.0]
        (issue,) = [i for i in loaded.issues if i.kind == "empty-path"]
        assert issue.count == 1 and "line 4" in issue.message and not loaded.timed


def test_lookback_window_drops_old_touches(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    day = 86400
    tp, cv = _files(tmp_path, [f"x,{T0},display,click,1", f"x,{T0 + 20 * day},search,click,1",
                               f"old,{T0},email,click,1", f"n,{T0},email,click,1",
                               f"n,{T0 + 40 * day},social,click,1"],
                    [f"x,{T0 + 21 * day},10", f"old,{T0 + 40 * day},5"])
    code, out, err = _attribute(capsys, tp, cv, "--method", "first-click", "--format", "json")
    assert json.loads(out)["display"] == 1.0 and json.loads(out)["email"] == 1.0
    code, out, err = _attribute(capsys, tp, cv, "--method", "first-click", "--lookback", "7",
                                "--format", "json")
    assert code == 0
    assert json.loads(out) == {"search": 1.0, "display": 0.0, "social": 0.0, "email": 0.0}
    assert (f"1 conversion with no touchpoint in the 7-day lookback window is not credited "
            f"(first: journey 'old', {cv} line 3)") in err
    # a journey that did not convert keeps the touches within DAYS of its last one
    loaded = read_journeys(tp, cv, lookback_days=7)
    assert loaded.journeys.ids.tolist() == ["x", "n"]
    assert loaded.journeys.lengths().tolist() == [1, 1]
    assert main(["attribute", "--touchpoints", str(tp), "--conversions", str(cv),
                 "--method", "linear", "--lookback", "0"]) == 2


def test_bootstrap_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attribid.models.data.loader import write_journeys
    from attribid.models.simulation.simulate import WORLDS, simulate

    journeys, _ = simulate(WORLDS["balanced"], 3000, seed=2)
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    write_journeys(journeys, tp, cv)
    flags = ["--method", "linear,markov", "--bootstrap", "40", "--seed", "3",
             "--format", "report-json"]
    code, out, _ = _attribute(capsys, tp, cv, *flags)
    assert code == 0
    doc = json.loads(out)
    assert doc["bootstrap"] == {"resamples": 40, "level": 0.95, "seed": 3}
    for method in ("linear", "markov"):
        for name, row in doc["methods"][method]["channels"].items():
            low, high = row["interval"]["conversions"]
            assert low <= row["conversions"] <= high, (method, name)
            if row["conversions"] > 50:
                assert 0 < high - low < 0.5 * row["conversions"], (method, name)
    # the same seed, the same intervals
    assert json.loads(_attribute(capsys, tp, cv, *flags)[1]) == doc
    code, out, _ = _attribute(capsys, tp, cv, "--method", "linear", "--bootstrap", "5",
                              "--format", "csv")
    assert out.splitlines()[0].endswith(",credit_low,credit_high,revenue_low,revenue_high,"
                                        "share_low,share_high")
