"""Outcomes are kept per period: a late report lands in its own period, a correction adds,
and the fit weighs every period by its own age."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from attribid.kernels import fitting
from attribid.models.campaign import model as cm
from attribid.models.campaign.book import CampaignBook, OutcomeRow
from tests.core.test_campaigns import CHANNELS, DAY, Clock, spec

START = 1.7e9
SEARCH = CHANNELS.index("search")
EMAIL = CHANNELS.index("email")
HALF_LIFE = 3 * DAY


def periods(book: CampaignBook, channel: int) -> list[tuple[float, float, float, float]]:
    """(end, spend, conversions, hours) of each of a channel's periods, as the fit reads them."""
    obs = book.observations("c1")
    return [(o[6], o[1], o[2], o[5]) for o in obs if int(o[0]) == channel]


def daily_book() -> tuple[CampaignBook, Clock]:
    """Three days of spend reported on time, conversions not yet in."""
    clock = Clock(START + 3 * DAY)
    book = CampaignBook(CHANNELS, clock=clock, half_life_s=HALF_LIFE)
    book.configure(spec())
    for d in range(3):
        book.report("c1", f"spend{d}", [OutcomeRow("search", 100.0 * (d + 1), 0, 0, 0),
                                        OutcomeRow("email", 50.0, 0, 0, 0)], START + (d + 1) * DAY)
    return book, clock


def test_a_late_report_lands_in_its_own_period_not_the_latest() -> None:
    book, _ = daily_book()
    # Conversions of day 1 arrive on day 3, reported against day 1's period.
    late = [OutcomeRow("search", 0.0, 7.0, 560.0, 0.0)]
    assert book.report("c1", "conv-day1", late, START + DAY) == (False, 1, 1)
    assert periods(book, SEARCH) == [(START + DAY, 100.0, 7.0, 24.0),
                                     (START + 2 * DAY, 200.0, 0.0, 24.0),
                                     (START + 3 * DAY, 300.0, 0.0, 24.0)]
    assert all(conv == 0 for _, _, conv, _ in periods(book, EMAIL))


def test_a_late_report_for_a_period_never_reported_creates_it_between_the_others() -> None:
    clock = Clock(START + 3 * DAY)
    book = CampaignBook(CHANNELS, clock=clock)
    book.configure(spec())
    book.report("c1", "d1", [OutcomeRow("search", 100.0, 1.0, 0, 0)], START + DAY)
    book.report("c1", "d3", [OutcomeRow("search", 300.0, 3.0, 0, 0)], START + 3 * DAY)
    assert periods(book, SEARCH)[1][3] == 48.0  # day 3's report covers days 2 and 3 so far
    book.report("c1", "d2", [OutcomeRow("search", 200.0, 2.0, 0, 0)], START + 2 * DAY)
    assert periods(book, SEARCH) == [(START + DAY, 100.0, 1.0, 24.0),
                                     (START + 2 * DAY, 200.0, 2.0, 24.0),
                                     (START + 3 * DAY, 300.0, 3.0, 24.0)]


def test_a_correction_of_an_earlier_period_adds_and_a_retry_does_not() -> None:
    book, _ = daily_book()
    first = [OutcomeRow("search", 0.0, 4.0, 320.0, 0.0)]
    correction = [OutcomeRow("search", 10.0, 2.0, 160.0, 0.0)]
    book.report("c1", "conv-day2", first, START + 2 * DAY)
    assert book.report("c1", "conv-day2-fix", correction, START + 2 * DAY)[0] is False
    assert book.report("c1", "conv-day2-fix", correction, START + 2 * DAY)[0] is True
    day2 = periods(book, SEARCH)[1]
    assert day2 == (START + 2 * DAY, 210.0, 6.0, 24.0)  # added to, never replaced
    assert len(periods(book, SEARCH)) == 3
    assert book.observations("c1")[:, 1:5].sum(axis=0).tolist() == [760.0, 6.0, 480.0, 0.0]


def test_the_fit_sees_each_period_with_its_own_age(monkeypatch: pytest.MonkeyPatch) -> None:
    book, clock = daily_book()
    book.report("c1", "conv-day1", [OutcomeRow("search", 0.0, 7.0, 560.0, 0.0)], START + DAY)
    seen: list[dict[str, Any]] = []
    real = fitting.fit

    def recording(*args: Any, **kw: Any) -> fitting.Posterior:
        seen.append({k: np.array(v) for k, v in kw.items() if isinstance(v, np.ndarray)})
        return real(*args, **kw)

    monkeypatch.setattr(cm.fitting, "fit", recording)
    book.resolve_now("c1")
    search = seen[0]  # the campaign's channels in spec order: search first
    ends = np.array([START + DAY, START + 2 * DAY, START + 3 * DAY])
    np.testing.assert_array_equal(search["spend"], [100.0, 200.0, 300.0])
    np.testing.assert_array_equal(search["outcome"], [7.0, 0.0, 0.0])
    np.testing.assert_array_equal(search["dt"], [24.0, 24.0, 24.0])
    np.testing.assert_allclose(search["weight"], 0.5 ** ((clock.t - ends) / HALF_LIFE))
    assert search["weight"][0] < search["weight"][2]  # the late outcomes weigh as day 1's


def test_the_fit_is_the_same_whatever_order_the_reports_arrive_in() -> None:
    reports = [("d1", [OutcomeRow("search", 100.0, 0, 0, 0), OutcomeRow("email", 40.0, 0, 0, 0)],
                START + DAY),
               ("d2", [OutcomeRow("search", 200.0, 3.0, 240.0, 0)], START + 2 * DAY),
               ("c1", [OutcomeRow("search", 0.0, 5.0, 400.0, 0), OutcomeRow("email", 0, 2, 160, 0)],
                START + DAY),
               ("d3", [OutcomeRow("email", 90.0, 1.0, 80.0, 0)], START + 3 * DAY)]
    fits = []
    for order in itertools.permutations(reports):
        book = CampaignBook(CHANNELS, clock=Clock(START + 3 * DAY), draws=0)  # point estimate
        book.configure(spec())
        for batch, rows, end in order:
            book.report("c1", batch, rows, end)
        fits.append((book.observations("c1"), book.resolve_now("c1").spend))
    for obs, plan in fits[1:]:
        np.testing.assert_array_equal(obs, fits[0][0])
        assert plan == pytest.approx(fits[0][1], rel=1e-9)
    # Merged into the latest period instead, the same conversions would give another plan.
    merged = CampaignBook(CHANNELS, clock=Clock(START + 3 * DAY), draws=0)
    merged.configure(spec())
    for batch, rows, end in reports:
        merged.report("c1", batch, rows, START + 3 * DAY if batch == "c1" else end)
    other = merged.resolve_now("c1").spend
    assert other != pytest.approx(fits[0][1], rel=1e-6)


def test_the_oldest_periods_go_first_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cm, "MAX_OBSERVATIONS", 4)
    index = {c: i for i, c in enumerate(CHANNELS)}
    model = cm.CampaignModel(cm.validate_spec(spec(), index, START), CHANNELS, HALF_LIFE)
    for d in range(6):
        model.add(np.array([[SEARCH, 10.0 * (d + 1), 0, 0, 0]]), START + (d + 1) * DAY)
    kept = model.observations()
    assert kept[:, 6].tolist() == [START + d * DAY for d in (3, 4, 5, 6)]
    assert kept[:, 5].tolist() == [24.0] * 4  # the first kept period still covers its own day
    # A report for a dropped period is counted in the totals but no longer fitted.
    model.add(np.array([[SEARCH, 0.0, 9.0, 0, 0]]), START + DAY)
    np.testing.assert_array_equal(model.observations(), kept)
    assert model.totals[1] == 9.0
