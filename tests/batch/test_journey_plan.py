"""The journey-level plan (grouped aggregations, no sort) and the exact plan (rows in file
order, window functions) agree with the memory kernels, ties in time included."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attribid.models.attribution.classic import METHODS, credit_totals
from attribid.models.batch.classic_sql import sql_totals
from attribid.models.batch.engine import connect, open_journeys
from attribid.models.data.loader import read_journeys


def _files(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    tp, cv = tmp_path / "t.csv", tmp_path / "c.csv"
    tp.write_text("journey_id,timestamp,channel,interaction,cost\n" + "\n".join(rows) + "\n")
    cv.write_text("journey_id,timestamp,value\na,1767600900,10\nb,1767600900,4\n")
    return tp, cv


@pytest.mark.parametrize("tied", [False, True])
def test_both_plans_give_the_kernels_credit(tmp_path: Path, tied: bool) -> None:
    # journey a's first two touches share a second when tied: file order breaks the tie
    second = "1767600000" if tied else "1767600001"
    tp, cv = _files(tmp_path, [
        "a,1767600000,search,click,1", f"a,{second},email,click,2",
        "a,1767600500,display,impression,0.5", "a,1767601000,social,click,1",
        "b,1767600100,email,click,1", "b,1767600200,email,click,1",
        "c,1767600000,display,click,3"])
    tables = open_journeys(tp, cv)
    # the journey-level plan leaves touches to be made; the exact plan has made it
    assert bool(tables._pending) is not tied
    loaded = read_journeys(tp, cv)
    assert tables.issues == loaded.issues
    np.testing.assert_allclose(tables.spend, loaded.spend)
    for method in METHODS:
        want = credit_totals(loaded.journeys, method)
        got = sql_totals(tables, method)
        np.testing.assert_allclose(got.conversions, want.conversions, atol=1e-12, err_msg=method)
        np.testing.assert_allclose(got.revenue, want.revenue, atol=1e-9, err_msg=method)


def test_one_thread_gives_the_same_credit(tmp_path: Path) -> None:
    tp, cv = _files(tmp_path, ["a,1767600000,search,click,1", "a,1767600060,email,click,2",
                               "b,1767600100,display,click,1"])
    one = open_journeys(tp, cv, con=connect(threads=1))
    assert one.con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
    np.testing.assert_allclose(sql_totals(one, "linear").conversions,
                               sql_totals(open_journeys(tp, cv), "linear").conversions)
