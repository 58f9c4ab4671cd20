"""Loading journeys from files: the format, its errors, and the round trip."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from attribid.models.data.loader import DataError, load_journeys, write_journeys
from attribid.kernels.taxonomy import CLICK, DEVICES, IMPRESSION, UNKNOWN_CATEGORY
from attribid.cli import simulate as simulate_command
from attribid.models.simulation.simulate import WORLDS, simulate

DATA = Path(__file__).resolve().parents[1] / "data"
HEADER = "journey_id,timestamp,channel,interaction,cost"
CONV_HEADER = "journey_id,timestamp,value"


def _files(tmp_path: Path, touch_lines: list[str], conv_lines: list[str] = (),
           header: str = HEADER, conv_header: str = CONV_HEADER) -> tuple[Path, Path]:
    tp, cv = tmp_path / "touchpoints.csv", tmp_path / "conversions.csv"
    tp.write_text("\n".join([header, *touch_lines]) + "\n")
    cv.write_text("\n".join([conv_header, *conv_lines]) + "\n")
    return tp, cv


def test_sample_files_load_as_worked_out_by_hand() -> None:
    j = load_journeys(DATA / "touchpoints.csv", DATA / "conversions.csv")
    # order of first appearance; 'z' has a conversion but no touchpoint
    assert j.ids.tolist() == ["a", "b", "c", "d"]
    assert j.channels == ("search", "display", "social", "email", "affiliate", "direct", "tv")
    # a: the 2026-01-06 email came after the 12:30 conversion and is dropped
    assert j.lengths().tolist() == [3, 2, 2, 2]
    names = [j.channels[c] for c in j.channel]
    assert names == ["display", "search", "direct", "social", "email",
                     "affiliate", "search", "tv", "search"]
    # 2026-01-05T10:00:00Z = 1767571200 + 10 h
    assert j.timestamp[0] == 1767571200 + 10 * 3600
    assert j.interaction.tolist()[:3] == [IMPRESSION, CLICK, CLICK]
    assert j.device.tolist()[:3] == [DEVICES["mobile"], DEVICES["mobile"], DEVICES["desktop"]]
    assert j.category.tolist() == [2, 1, UNKNOWN_CATEGORY, 0]   # toasters, blenders, -, coffee
    assert j.converted.tolist() == [True, False, True, False]
    assert j.conversion_time[0] == 1767571200 + 12.5 * 3600
    assert j.value.tolist() == [39.99, 0.0, 79.5, 0.0]


def test_round_trip_write_then_load(tmp_path: Path) -> None:
    journeys, truth = simulate(WORLDS["impressions"], 3000, seed=4)
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    write_journeys(journeys, tp, cv, extra_touchpoints=truth.after_conversion)
    back = load_journeys(tp, cv)
    assert truth.after_conversion.n_touchpoints > 0
    for name in ("ids", "offsets", "channel", "timestamp", "interaction", "cost", "device",
                 "category", "converted", "value"):
        np.testing.assert_array_equal(getattr(back, name), getattr(journeys, name), name)
    np.testing.assert_array_equal(back.conversion_time, journeys.conversion_time)
    assert back.channels == journeys.channels


def test_simulate_command_writes_loadable_files(tmp_path: Path) -> None:
    import argparse
    args = argparse.Namespace(world="synergy", journeys=400, seed=3, out=str(tmp_path))
    assert simulate_command.run(args) == 0
    j = load_journeys(tmp_path / "touchpoints.csv", tmp_path / "conversions.csv")
    expected, truth = simulate(WORLDS["synergy"], 400, seed=3)
    np.testing.assert_array_equal(j.channel, expected.channel)
    summary = json.loads((tmp_path / "world.json").read_text())
    assert summary["conversions"] == int(expected.converted.sum())
    rows = (tmp_path / "truth.csv").read_text().splitlines()
    assert rows[0] == "journey_id,channel,shapley,removal"
    first = [r.split(",") for r in rows[1:] if r.startswith(f"{expected.ids[0]},")]
    got = {r[1]: float(r[2]) for r in first}
    want = {expected.channels[c]: truth.shapley[0, c]
            for c in np.flatnonzero(truth.shapley[0])}
    assert got == pytest.approx(want, rel=1e-12)


def test_touches_sorted_by_time_and_iso_offsets_converted(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["x,2026-01-05T12:00:00+02:00,search,click,1",
                               "x,1767571200,display,impression,0"])
    j = load_journeys(tp, cv)
    # 12:00+02:00 is 10:00 UTC, after the epoch-seconds touch at 00:00 UTC
    assert j.timestamp.tolist() == [1767571200.0, 1767571200.0 + 10 * 3600]
    assert [j.channels[c] for c in j.channel] == ["display", "search"]
    assert not j.converted[0]


def test_given_channels_fix_the_codes(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["x,1,email,click,0", "x,2,search,click,0"])
    j = load_journeys(tp, cv, channels=("email", "search", "tv"))
    assert j.channels == ("email", "search", "tv") and j.channel.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"line 3, column 'channel': channel 'search' is not"):
        load_journeys(tp, cv, channels=("email",))


@pytest.mark.parametrize("line, column, message", [
    ("x,yesterday,search,click,1", "timestamp", "bad timestamp 'yesterday'"),
    ("x,nan,search,click,1", "timestamp", "bad timestamp 'nan'"),
    ("x,5,search,hover,1", "interaction", "unknown interaction 'hover'"),
    ("x,5,search,click,-1", "cost", "must be a finite number >= 0, got '-1'"),
    ("x,5,search,click,NaN", "cost", "must be a finite number >= 0, got 'NaN'"),
    ("x,5,search,click,cheap", "cost", "not a number: 'cheap'"),
    ("x,5, ,click,1", "channel", "empty value"),
    (",5,search,click,1", "journey_id", "empty value"),
])
def test_bad_touchpoint_names_file_line_column(tmp_path: Path, line: str, column: str,
                                               message: str) -> None:
    tp, cv = _files(tmp_path, ["ok,1,search,click,1", "ok,2,email,click,0", line])
    with pytest.raises(DataError) as info:
        load_journeys(tp, cv)
    text = str(info.value)
    assert text.startswith(f"{tp}, line 4, column '{column}': ")
    assert message in text
    assert info.value.line == 4 and info.value.column == column


def test_missing_column_is_named(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["x,1,search,click"], header="journey_id,timestamp,channel,"
                                                           "interaction")
    with pytest.raises(DataError, match=re.escape(f"{tp}, line 1, column 'cost': missing")):
        load_journeys(tp, cv)
    tp, cv = _files(tmp_path, ["x,1,search,click,1"], ["x,2"], conv_header="journey_id,timestamp")
    with pytest.raises(DataError, match=re.escape(f"{cv}, line 1, column 'value': missing")):
        load_journeys(tp, cv)


def test_wrong_field_count_and_blank_lines(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["x,1,search,click,1", "", "x,2,search,click,1,extra"])
    with pytest.raises(DataError, match=re.escape(f"{tp}, line 4: expected 5 fields, found 6")):
        load_journeys(tp, cv)


def test_quoted_csv_reports_the_physical_line(tmp_path: Path) -> None:
    # a quoted field spanning two lines shifts every later line number by one
    tp, cv = _files(tmp_path, ['"x\ny",1,search,click,1', 'q,2,"search",click,-3'])
    with pytest.raises(DataError, match=re.escape(f"{tp}, line 4, column 'cost'")):
        load_journeys(tp, cv)


def test_bad_conversion_rows(tmp_path: Path) -> None:
    touches = ["x,1,search,click,1"]
    for rows, column, message in (
            (["x,10,-5"], "value", "must be a finite number >= 0"),
            (["x,soon,5"], "timestamp", "bad timestamp 'soon'"),
            (["x,10,5", "x,11,6"], "journey_id", "journey 'x' already converted on line 2")):
        tp, cv = _files(tmp_path, touches, rows)
        with pytest.raises(DataError) as info:
            load_journeys(tp, cv)
        assert str(info.value).startswith(f"{cv}, line {len(rows) + 1}, column '{column}'")
        assert message in str(info.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot open"):
        load_journeys(tmp_path / "nope.csv", tmp_path / "nope2.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_journeys(tmp_path / "empty.csv", tmp_path / "empty.csv")


def test_journey_whose_touches_all_follow_its_conversion_is_left_out(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["x,100,search,click,1", "y,5,email,click,0"], ["x,50,10"])
    j = load_journeys(tp, cv)
    assert j.ids.tolist() == ["y"] and not j.converted.any()


def test_reference_times_do_not_reveal_the_outcome() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 4000, seed=8)
    ref = journeys.reference_times(seed=1)
    last = journeys.timestamp[journeys.offsets[1:] - 1]
    conv = journeys.converted
    np.testing.assert_array_equal(ref[conv], journeys.conversion_time[conv])
    delays_conv = ref[conv] - last[conv]
    delays_other = ref[~conv] - last[~conv]
    # every non-converter's delay is one of the converters' delays, drawn evenly
    assert set(delays_other.tolist()) <= set(delays_conv.tolist())
    assert abs(np.median(delays_other) - np.median(delays_conv)) < 0.2 * np.median(delays_conv)


def test_parquet_files_load_like_csv(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    journeys, _ = simulate(WORLDS["recency"], 300, seed=6)
    write_journeys(journeys, tmp_path / "t.csv", tmp_path / "c.csv")
    # the same rows, typed: timestamps as a timestamp column, costs as doubles
    tp = load_journeys(tmp_path / "t.csv", tmp_path / "c.csv")
    rows = np.repeat(np.arange(tp.n_journeys), tp.lengths())
    table = pa.table({
        "journey_id": tp.ids[rows].tolist(),
        "timestamp": pa.array((tp.timestamp * 1e6).astype("int64")).cast(
            pa.timestamp("us", tz="UTC")),
        "channel": [tp.channels[c] for c in tp.channel],
        "interaction": ["click" if i == CLICK else "impression" for i in tp.interaction],
        "cost": tp.cost})
    pq.write_table(table, tmp_path / "t.parquet")
    conv = np.flatnonzero(tp.converted)
    pq.write_table(pa.table({"journey_id": tp.ids[conv].tolist(),
                             "timestamp": tp.conversion_time[conv],
                             "value": tp.value[conv]}), tmp_path / "c.parquet")
    back = load_journeys(tmp_path / "t.parquet", tmp_path / "c.parquet")
    for name in ("ids", "offsets", "channel", "timestamp", "interaction", "cost", "converted"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tp, name), name)
    bad = pa.table({"journey_id": ["x"], "timestamp": [float("nan")], "value": [1.0]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet, row 1, column 'timestamp'"):
        load_journeys(tmp_path / "t.parquet", tmp_path / "bad.parquet")


def test_scan_fields_matches_the_csv_module() -> None:
    import csv
    from attribid.kernels.csvscan import FIELD_COUNT, OK, QUOTED, scan_fields
    rng = np.random.default_rng(2)
    alphabet = np.array(list("ab12 .\t-"))
    lines = []
    for _ in range(300):
        if rng.random() < 0.05:
            lines.append("")                                  # blank line
            continue
        fields = ["".join(rng.choice(alphabet, size=rng.integers(0, 5))) for _ in range(3)]
        lines.append(",".join(fields))
    text = "\r\n".join(lines) + "\n"            # CRLF lines, a last LF
    buf = np.frombuffer(text.encode(), np.uint8)
    starts, ends, status = scan_fields(buf, 3)
    assert status == OK
    records = [r for r in csv.reader(text.splitlines()) if r]
    got = [[text.encode()[s:e].decode() for s, e in zip(starts[:, k], ends[:, k])]
           for k in range(starts.shape[1])]
    assert got == [[f.strip(" \t") for f in r] for r in records]
    assert scan_fields(np.frombuffer(b'a,"b"\n', np.uint8), 2)[2] == QUOTED
    assert scan_fields(np.frombuffer(b"a,b\nc\n", np.uint8), 2)[2] == FIELD_COUNT
    assert scan_fields(np.frombuffer(b"", np.uint8), 2)[0].shape == (2, 0)


def test_parse_numbers_equals_float_exactly() -> None:
    from attribid.kernels.csvscan import parse_numbers
    rng = np.random.default_rng(4)
    texts = ([repr(v) for v in rng.lognormal(0, 4, 3000).tolist()]
             + [f"{v:.4f}" for v in rng.random(2000).tolist()]
             + [str(v) for v in rng.integers(-2**52, 2**52, 2000).tolist()]
             + ["0", "-0", "+7", ".5", "5.", "1e22", "1e-22", "1E+3", "007.10", "1e23",
                "12345678901234567890", "nan", "inf", "", ".", "-", "1e", "e1", "1.2.3",
                "0x10", "1_0", "--1", "9007199254740993"])
    joined = ",".join(texts).encode()
    lengths = np.array([len(t.encode()) for t in texts])
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    values, ok = parse_numbers(np.frombuffer(joined, np.uint8), starts, starts + lengths)
    for text, v, good in zip(texts, values.tolist(), ok.tolist()):
        if good:
            assert v == float(text) and math.copysign(1, v) == math.copysign(1, float(text)), text
    # the fast path covers short decimals; long or odd ones are left to float()
    assert all(ok[len(texts) - 23:len(texts) - 14])
    assert not any(ok[len(texts) - 14:])


def test_fast_and_general_csv_readers_agree(tmp_path: Path) -> None:
    journeys, truth = simulate(WORLDS["balanced"], 800, seed=21)
    write_journeys(journeys, tmp_path / "t.csv", tmp_path / "c.csv", truth.after_conversion)
    text = (tmp_path / "t.csv").read_text()
    # one quoted value sends the same content through the csv module
    first_id = journeys.ids[0]
    quoted = text.replace(f"\n{first_id},", f'\n"{first_id}",', 1)
    (tmp_path / "q.csv").write_text(quoted.replace("\n", "\r\n"))
    fast = load_journeys(tmp_path / "t.csv", tmp_path / "c.csv")
    general = load_journeys(tmp_path / "q.csv", tmp_path / "c.csv")
    for name in ("ids", "offsets", "channel", "timestamp", "interaction", "cost", "device",
                 "category", "converted", "value"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), name)


def test_spaces_around_values_and_bad_bytes(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, [" x ,1, search ,click,1", "x,2,search, Click ,0"])
    j = load_journeys(tp, cv)
    assert j.ids.tolist() == ["x"] and j.channels == ("search",)
    assert j.interaction.tolist() == [CLICK, CLICK]
    raw = (HEADER + "\nx,1,se\xe9arch,click,1\n").encode("latin-1")
    (tmp_path / "bad.csv").write_bytes(raw)
    with pytest.raises(DataError, match=r"bad\.csv.*not UTF-8"):
        load_journeys(tmp_path / "bad.csv", cv)


def test_first_mismatch_guards_hash_codes() -> None:
    from attribid.kernels.csvscan import first_mismatch, hash_fields, join_spans
    buf = np.frombuffer(b"abc,abd,abc,ab", np.uint8)
    starts, ends = np.array([0, 4, 8, 12]), np.array([3, 7, 11, 14])
    h = hash_fields(buf, starts, ends)
    assert len(set(h.tolist())) == 3 and h[0] == h[2]
    assert first_mismatch(buf, starts, ends, np.array([0, 1, 0, 3])) == -1
    assert first_mismatch(buf, starts, ends, np.array([0, 0, 0, 3])) == 1   # forced clash
    assert first_mismatch(buf, starts, ends, np.array([0, 1, 0, 0])) == 3   # shorter span
    assert join_spans(buf, starts, ends) == b"abc\nabd\nabc\nab"


@pytest.mark.parametrize("extra", [[], ["x,2026-01-05T12:00:00+02:00,email,click,0"]])
def test_iso_timestamps_in_bulk_and_row_by_row_agree(tmp_path: Path, extra: list[str]) -> None:
    from datetime import datetime, timezone
    stamps = ["2026-01-05T10:00:00Z", "2026-01-05T10:00:01+00:00", "2026-01-05 10:00:02",
              "2026-01-05T10:00:03.250Z", "1767607204", "2026-02-01"]
    tp, cv = _files(tmp_path, [f"x,{s},search,click,0" for s in stamps] + extra)
    j = load_journeys(tp, cv)
    expected = []
    for s in stamps + [e.split(",")[1] for e in extra]:
        try:
            expected.append(float(s))
        except ValueError:
            d = datetime.fromisoformat(s)
            expected.append((d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp())
    np.testing.assert_array_equal(j.timestamp, sorted(expected))
