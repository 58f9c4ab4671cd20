"""Every number the campaign book keeps is bounded, so no sum or solve turns inf or NaN."""
from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from attribid.kernels.allocation import InvalidProblem, Problem, solve
from attribid.models.campaign.book import (AllocationSnapshot, CampaignBook, CampaignSpec,
                                           ChannelSpec, OutcomeRow)
from attribid.models.campaign.model import MAX_AMOUNT, MAX_WEIGHT, MIN_BUDGET
from attribid.models.errors import FailedPrecondition, InvalidArgument, RequestError

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")
DAY = 86400.0
T0 = 1.7e9


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def spec(**kw: object) -> CampaignSpec:
    base = CampaignSpec("c1", 7000.0, T0, T0 + 7 * DAY, 1.0, 0.0, 0.0, 0.0,
                        (ChannelSpec("search", 0, 0, 80.0), ChannelSpec("email", 0, 0, 80.0)),
                        0.0, 0.0)
    return dataclasses.replace(base, **kw)


def finite(snap: AllocationSnapshot) -> bool:
    numbers = [snap.revenue, snap.acquisitions, snap.exposure, snap.cpa, snap.objective,
               snap.pacing, *snap.spend.values(), *snap.share.values()]
    return all(math.isfinite(v) for v in numbers)


def test_two_huge_rows_of_the_default_campaign_are_refused_and_it_keeps_re_solving() -> None:
    """Two rows of spend 1e308 used to be accepted, sum to inf and kill every later re-solve."""
    book = CampaignBook(CHANNELS, clock=Clock(T0 + DAY), min_new_evidence=1)
    row = OutcomeRow("search", 1e308, 1.0, 1.0, 1.0)
    with pytest.raises(InvalidArgument) as err:
        book.report("", "p", [row, row], None)
    assert err.value.field == "outcomes[0].spend"
    assert "at most 1e+12" in err.value.message
    book.report("", "p", [OutcomeRow("search", 100.0, 2.0, 160.0, 1e4)], None)  # id not burnt
    failures: list[str] = []
    assert book.step(on_failure=lambda cid, exc, first: failures.append(cid)) == 1
    assert failures == [] and book.allocation("").version == 2 and finite(book.allocation(""))


def test_a_report_that_would_pass_a_campaign_total_is_refused_whole() -> None:
    book = CampaignBook(CHANNELS, clock=Clock(T0 + DAY))
    book.configure(spec())
    big = OutcomeRow("email", 6e11, 1.0, 1.0, 1.0)
    with pytest.raises(InvalidArgument) as err:  # within one report: the row that passes it
        book.report("c1", "a", [big, big], None)
    assert err.value.field == "outcomes[1].spend" and "1e+12" in err.value.message
    assert book.report("c1", "b", [big], None) == (False, 1, 1)
    with pytest.raises(InvalidArgument) as err:  # across reports
        book.report("c1", "c", [OutcomeRow("search", 1.0, 5e11, 1.0, 1.0), big], None)
    assert err.value.field == "outcomes[1].spend"
    # Refused whole: nothing of it was recorded, and its batch id is still unused.
    assert book.report("c1", "c", [OutcomeRow("search", 1.0, 5e11, 1.0, 1.0)], None)[:2] == (False, 1)
    with pytest.raises(InvalidArgument) as err:
        book.report("c1", "d", [OutcomeRow("search", 1.0, 6e11, 1.0, 1.0)], None)
    assert err.value.field == "outcomes[0].conversions"
    assert finite(book.resolve_now("c1"))


def test_reconfiguring_keeps_the_campaign_totals() -> None:
    book = CampaignBook(CHANNELS, clock=Clock(T0 + DAY))
    book.configure(spec())
    book.report("c1", "a", [OutcomeRow("email", 9e11, 1.0, 1.0, 1.0)], None)
    book.configure(spec(budget=8000.0))
    with pytest.raises(InvalidArgument, match="total spend"):
        book.report("c1", "b", [OutcomeRow("email", 2e11, 1.0, 1.0, 1.0)], None)


@pytest.mark.parametrize("change,field,bound", [
    ({"budget": 1e308}, "budget", "1e+12"),
    ({"budget": MAX_AMOUNT * 10}, "budget", "1e+12"),
    ({"budget": MIN_BUDGET / 2}, "budget", "0.01"),
    ({"weight_revenue": MAX_WEIGHT * 2}, "objective.revenue", "1e+06"),
    ({"weight_exposure": 1e300}, "objective.exposure", "1e+06"),
    ({"max_cpa": 1e13}, "max_cpa", "1e+12"),
    ({"bid_floor": 1e13}, "bid_floor", "1e+12"),
    ({"bid_cap": float("inf")}, "bid_cap", ">= 0"),
    ({"channels": (ChannelSpec("search", 1e13, 0, 1),)}, "channels[0].min", "1e+12"),
    ({"channels": (ChannelSpec("search", 0, 1e300, 1),)}, "channels[0].max", "1e+12"),
    ({"channels": (ChannelSpec("search", 0, 0, 1e13),)}, "channels[0].value_per_conversion",
     "1e+12"),
])
def test_configure_refuses_numbers_outside_their_bounds_naming_field_and_bound(
        change: dict, field: str, bound: str) -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    with pytest.raises(InvalidArgument) as err:
        book.configure(spec(**change))
    assert err.value.field == field and bound in err.value.message


@pytest.mark.parametrize("name", ["spend", "conversions", "revenue", "impressions"])
def test_report_refuses_a_row_number_past_the_bound(name: str) -> None:
    book = CampaignBook(CHANNELS, clock=Clock(T0 + DAY))
    values = {"spend": 1.0, "conversions": 1.0, "revenue": 1.0, "impressions": 1.0, name: 2e12}
    with pytest.raises(InvalidArgument) as err:
        book.report("", "r", [OutcomeRow("search", **values)], None)
    assert err.value.field == f"outcomes[0].{name}" and "at most 1e+12" in err.value.message


def test_the_largest_allowed_numbers_give_a_finite_allocation() -> None:
    """budget=1e308 with an exposure weight used to end INTERNAL; the bound itself solves."""
    clock = Clock(T0)
    book = CampaignBook(CHANNELS, clock=clock)
    top = spec(budget=MAX_AMOUNT, weight_revenue=MAX_WEIGHT, weight_acquisitions=MAX_WEIGHT,
               weight_exposure=MAX_WEIGHT, bid_floor=MAX_AMOUNT, bid_cap=MAX_AMOUNT,
               channels=(ChannelSpec("search", 0, MAX_AMOUNT, MAX_AMOUNT),
                         ChannelSpec("email", 0, 0, 0.0)),
               flight_start=T0, flight_end=T0 + 0.001)
    assert finite(book.configure(top))
    clock.t = T0 + 0.002
    row = OutcomeRow("search", MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT, MAX_AMOUNT)
    book.report("c1", "max", [row], None)
    assert finite(book.resolve_now("c1"))
    out = np.zeros(len(CHANNELS))
    book.bids_into("c1", 1.0, np.full(len(CHANNELS), 1.0), out)
    assert np.all(np.isfinite(out))


def test_the_solver_refuses_non_finite_numbers_naming_the_parameter() -> None:
    k = np.full(2, 2)
    curves = np.array([[10.0, 5.0, 0.0], [10.0, 5.0, 0.0]])
    args = (np.ones(2), np.zeros(2), np.full(2, 10.0), k, curves, np.zeros(2, np.int64),
            np.zeros((2, 3)))
    with pytest.raises(InvalidProblem) as err:
        Problem(float("inf"), *args)
    assert err.value.parameter == "budget"
    bad = curves.copy()
    bad[1, 0] = np.nan
    with pytest.raises(InvalidProblem) as err:
        Problem(10.0, args[0], args[1], args[2], k, bad, *args[5:])
    assert err.value.parameter == "conversions.params"
    with pytest.raises(InvalidProblem) as err:  # finite inputs whose product overflows
        Problem(10.0, np.full(2, 1e300), *args[1:], w_revenue=1e10)
    assert err.value.parameter == "value_per_conversion"
    x, _ = solve(Problem(10.0, *args))
    assert np.all(np.isfinite(x))


def test_a_model_the_solver_cannot_take_is_a_failed_precondition_not_a_value_error() -> None:
    """The campaign model turns the solver's refusal into a RequestError naming the parameter."""
    from attribid.models.campaign import model as cm

    checked = cm.validate_spec(spec(), {c: i for i, c in enumerate(CHANNELS)}, T0)
    m = cm.CampaignModel(checked, CHANNELS, 3 * DAY)
    m.fixed_value = np.array([1e300, 1e300])  # past any bound validate_spec allows
    m.spec = dataclasses.replace(m.spec, weight_revenue=1e10)
    with pytest.raises(FailedPrecondition) as err:
        m.solve(None, T0 + DAY)
    assert err.value.field == "value_per_conversion"


# Extreme numbers a caller can send, in bounds (most of the time) and out.
INSIDE = [0.0, -0.0, 5e-324, 1e-300, MIN_BUDGET, 1.0, 80.0, 1e6, 1e11, MAX_AMOUNT]
OUTSIDE = [MAX_AMOUNT * (1 + 1e-15), 1e13, 1e308, math.inf, -math.inf, math.nan, -1.0]
TIMES = [0.0, 1.0, T0, T0 + 0.001, T0 + DAY, T0 + 400 * DAY, 9.2e15, -9.2e15]


def test_random_extreme_traffic_never_breaks_the_book() -> None:
    """Configure, report, re-solve and bid with extreme numbers: only refusals naming a
    field, every allocation and bid finite, and no re-solve ever fails."""
    rng = random.Random(10)
    pick = rng.choice
    clock = Clock(T0)
    book = CampaignBook(CHANNELS, clock=clock, min_new_evidence=1, resolve_period_s=0.0,
                        draws=2)
    failures: list[tuple[str, Exception]] = []
    channels_of: dict[str, tuple[str, ...]] = {"": CHANNELS}

    def num() -> float:
        return pick(INSIDE) if rng.random() < 0.95 else pick(OUTSIDE)

    def option() -> float:  # a setting that is mostly left at 0
        return 0.0 if rng.random() < 0.6 else num()

    refused = accepted = 0
    for i in range(300):
        clock.t += pick([0.0, 0.001, 60.0, 3600.0, DAY, 1e7])
        cid = pick(["", "c1", "c2"])
        try:
            if i % 4 == 0 and cid:
                names = rng.sample(CHANNELS, rng.randint(0, 3))
                start = pick(TIMES + [clock.t] * 4)
                end = pick([0.0, pick(TIMES),
                            start + pick([0.001, 1.0, 3600.0, DAY, 1e9, 9e15])])
                book.configure(CampaignSpec(
                    cid, num(), start, end, option(), option(), option(), option(),
                    tuple(ChannelSpec(c, option(), option(), option()) for c in names),
                    option(), option()))
                channels_of[cid] = tuple(names) or CHANNELS
            else:
                rows = [OutcomeRow(pick(channels_of.get(cid, CHANNELS)), num(), num(), num(),
                                   num()) for _ in range(rng.randint(1, 4))]
                book.report(cid, f"b{i}", rows, pick([None] * 5 + TIMES + [clock.t]))
            accepted += 1
        except RequestError as exc:
            assert exc.field and len(str(exc)) < 500
            refused += 1
        book.step(on_failure=lambda c, exc, first: failures.append((c, exc)))
        for c in ("", "c1", "c2"):
            try:
                snap = book.allocation(c)
            except RequestError:
                continue
            assert finite(snap), snap
            out = np.zeros(len(CHANNELS))
            book.bids_into(c, rng.random(), np.full(len(CHANNELS), 1 / len(CHANNELS)), out)
            assert np.all(np.isfinite(out)), (c, out)
    assert failures == []
    assert accepted > 30 and refused > 30
