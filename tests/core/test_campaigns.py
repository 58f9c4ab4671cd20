"""The closed-loop core: configuration, outcomes, re-solves and bids, without gRPC."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Iterator

import numpy as np
import pytest
from prometheus_client import generate_latest

from attribid.campaigns.loop import run_allocation_loop
from attribid.models.campaign.book import CampaignBook, CampaignSpec, ChannelSpec, OutcomeRow
from attribid.models.errors import FailedPrecondition, InvalidArgument, NotFound
from attribid.models.campaign.model import OTHER_SHARE, TABLE6_PRE_SHARE

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")
DAY = 86400.0


class Clock:
    """A settable clock: the book takes time as an injected callable."""

    def __init__(self, t: float = 1.7e9) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def spec(**kw: object) -> CampaignSpec:
    base = CampaignSpec("c1", 7000.0, 1.7e9, 1.7e9 + 7 * DAY, 1.0, 0.0, 0.0, 0.0,
                        (ChannelSpec("search", 0, 0, 80.0), ChannelSpec("email", 0, 0, 80.0)), 0.0, 0.0)
    return dataclasses.replace(base, **kw)


def test_default_campaign_starts_from_table6_shares() -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    snap = book.allocation("")
    prior = np.array([TABLE6_PRE_SHARE.get(c, OTHER_SHARE) for c in CHANNELS])
    np.testing.assert_allclose([snap.share[c] for c in CHANNELS], prior / prior.sum(), rtol=1e-6)
    assert snap.version == 1 and snap.pacing == pytest.approx(1.0)
    out = np.zeros(len(CHANNELS))
    book.bids_into("", 0.2, np.full(7, 1 / 7), out)
    assert np.all(out > 0)


@pytest.mark.parametrize("change,status,field", [
    ({"budget": -1.0}, InvalidArgument, "budget"),
    ({"weight_revenue": float("nan")}, InvalidArgument, "objective.revenue"),
    ({"weight_acquisitions": -1.0}, InvalidArgument, "objective.acquisitions"),
    ({"bid_floor": 2.0, "bid_cap": 1.0}, InvalidArgument, "bid_cap"),
    ({"flight_end": 1.6e9}, InvalidArgument, "flight_end"),
    ({"channels": (ChannelSpec("search", 0, 0, 1), ChannelSpec("email", 50, 10, 1))},
     InvalidArgument, "channels[1].min"),
    ({"channels": (ChannelSpec("search", 0, 0, 1), ChannelSpec("email", 0, 0, 1),
                   ChannelSpec("tv", 0, 0, 1))}, InvalidArgument, "channels[2].name"),
    ({"channels": (ChannelSpec("search", 5000, 0, 1), ChannelSpec("email", 5000, 0, 1))},
     FailedPrecondition, "budget"),
    ({"max_cpa": 0.01}, FailedPrecondition, "max_cpa"),
])
def test_configure_rejects_with_the_field(change: dict, status: type, field: str) -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    with pytest.raises(status) as err:
        book.configure(spec(**change))
    assert err.value.field == field


def test_no_objective_means_revenue() -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    snap = book.configure(spec(weight_revenue=0.0))
    assert snap.objective == pytest.approx(snap.revenue)


def test_report_is_idempotent_and_validated() -> None:
    book = CampaignBook(CHANNELS, clock=Clock(1.7e9 + DAY))
    book.configure(spec())
    rows = [OutcomeRow("search", 500.0, 20.0, 1600.0, 1e4)]
    assert book.report("c1", "b1", rows, None) == (False, 1, 1)
    assert book.report("c1", "b1", rows, None) == (True, 0, 1)
    with pytest.raises(InvalidArgument) as err:
        book.report("c1", "b2", rows + [OutcomeRow("email", -1.0, 0, 0, 0)], None)
    assert err.value.field == "outcomes[1].spend"
    with pytest.raises(InvalidArgument) as err:
        book.report("c1", "b3", [OutcomeRow("display", 1.0, 0, 0, 0)], None)  # not in c1
    assert err.value.field == "outcomes[0].channel"
    with pytest.raises(InvalidArgument) as err:
        book.report("c1", "b4", [OutcomeRow("email", 1.0, float("nan"), 0, 0)], None)
    assert err.value.field == "outcomes[0].conversions"
    with pytest.raises(InvalidArgument, match="batch_id"):
        book.report("c1", "", rows, None)
    with pytest.raises(NotFound):
        book.report("nope", "b1", rows, None)
    with pytest.raises(NotFound):
        book.allocation("nope")
    assert book.report("c1", "b2", rows, None)[1] == 1  # the rejected batch id was not burnt


def run_market(book: CampaignBook, clock: Clock, search_cpa: float, email_cpa: float, days: int) -> None:
    """Report daily outcomes where each channel converts at a constant CPA (linear, no noise)."""
    rng = np.random.default_rng(0)
    for d in range(days):
        clock.t += DAY
        snap = book.allocation("c1")
        # Spend the plan's daily rate, jittered so the curves' saturation is identifiable.
        rows = []
        for ch, cpa in (("search", search_cpa), ("email", email_cpa)):
            x = snap.spend[ch] / 60 * rng.uniform(0.5, 1.5) + 10.0
            conv = x / cpa * (1 - x / 1e5)
            rows.append(OutcomeRow(ch, x, conv, 80.0 * conv, 0.0))
        book.report("c1", f"day{d}", rows, clock.t)
        book.resolve_now("c1")


def test_allocation_moves_to_the_better_channel_and_bids_follow() -> None:
    clock = Clock(1.7e9)
    book = CampaignBook(CHANNELS, clock=clock, seed=1)
    first = book.configure(spec(flight_end=1.7e9 + 60 * DAY, budget=60000.0))
    out0 = np.zeros(7)
    credit = np.zeros(7)
    credit[[0, 3]] = 0.5  # search and email share the credit
    book.bids_into("c1", 0.1, credit, out0)
    run_market(book, clock, search_cpa=60.0, email_cpa=10.0, days=20)
    last = book.allocation("c1")
    assert last.version == first.version + 20
    assert last.share["email"] > first.share["email"] + 0.2
    out = np.zeros(7)
    book.bids_into("c1", 0.1, credit, out)
    assert out[1] == out[2] == 0.0  # channels outside the campaign never bid
    # Bids follow the plan: a channel bids exactly when the plan funds it, and the re-solves
    # moved the bids.
    funded = np.array([last.spend["search"] > 0, last.spend["email"] > 0])
    np.testing.assert_array_equal(out[[0, 3]] > 0, funded)
    assert not np.allclose(out, out0)
    assert 0.5 < last.pacing < 2.0  # spending at about the planned rate: no strong correction


def test_reconfiguring_keeps_evidence_and_batch_ids() -> None:
    clock = Clock(1.7e9 + DAY)
    book = CampaignBook(CHANNELS, clock=clock)
    book.configure(spec())
    rows = [OutcomeRow("email", 900.0, 90.0, 7200.0, 0.0), OutcomeRow("search", 100.0, 1.0, 80.0, 0.0)]
    book.report("c1", "b1", rows, None)
    learnt = book.resolve_now("c1")
    again = book.configure(spec(budget=8000.0))
    assert again.version == learnt.version + 1
    assert book.report("c1", "b1", rows, None)[0]  # still a duplicate
    fresh = CampaignBook(CHANNELS, clock=clock).configure(spec(budget=8000.0))
    assert again.share["email"] > fresh.share["email"]  # the evidence for email was kept


def test_exposure_objective_values_impressions() -> None:
    clock = Clock(1.7e9 + DAY)
    book = CampaignBook(CHANNELS, clock=clock)
    book.configure(spec(weight_exposure=0.01, bid_floor=0.001, bid_cap=0.5))
    book.report("c1", "i", [OutcomeRow("search", 1000.0, 40.0, 3200.0, 2e5),
                            OutcomeRow("email", 1000.0, 40.0, 3200.0, 1e4)], None)
    snap = book.resolve_now("c1")
    assert snap.exposure > 0 and snap.objective > snap.revenue
    out = np.zeros(7)
    book.bids_into("c1", 0.0, np.zeros(7), out)  # no conversion value: exposure alone bids
    assert np.all(out[[0, 3]] > 0) and np.all(out[[0, 3]] <= 0.5)
    assert np.all(out[[1, 2, 4, 5, 6]] == 0)


def test_pacing_learns_a_quiet_delivery() -> None:
    """Hours that deliver half the budget's rate at the current multiplier raise it."""
    start = 1.7e9
    clock = Clock(start)
    book = CampaignBook(CHANNELS, clock=clock)
    book.configure(spec(budget=2400.0, flight_end=start + DAY))
    assert book.pacing("c1") == pytest.approx(1.0)
    spent = 0.0
    for h in range(6):
        spend = 100.0 * 0.5 * book.pacing("c1")  # the budget's rate is 100 an hour
        spent += spend
        clock.t = start + (h + 1) * 3600.0
        book.report("c1", f"h{h}", [OutcomeRow("search", spend, 0.0, 0.0, 0.0)], clock.t)
    on_plan_ratio = (2400.0 - spent) / 18 / 100.0  # needed / nominal rate
    assert book.pacing("c1") > 1.6 * on_plan_ratio


def test_pacing_zero_after_the_flight() -> None:
    clock = Clock(1.7e9)
    book = CampaignBook(CHANNELS, clock=clock)
    book.configure(spec())
    clock.t = 1.7e9 + 8 * DAY
    book.step()
    out = np.ones(7)
    book.bids_into("c1", 0.5, np.full(7, 1 / 7), out)
    assert np.all(out == 0)


def test_step_resolves_on_enough_evidence() -> None:
    clock = Clock(1.7e9 + DAY)
    book = CampaignBook(CHANNELS, clock=clock, min_new_evidence=2, resolve_period_s=1e9)
    book.configure(spec())
    book.report("c1", "a", [OutcomeRow("search", 100.0, 3.0, 240.0, 0.0)], None)
    assert book.step() == 0  # one row: below the evidence threshold, period not over
    book.report("c1", "b", [OutcomeRow("email", 100.0, 9.0, 720.0, 0.0)], None)
    assert book.step() == 1
    assert book.allocation("c1").version == 2


def test_background_loop_resolves_and_cancels() -> None:
    clock = Clock(1.7e9 + DAY)
    book = CampaignBook(CHANNELS, clock=clock, min_new_evidence=1, resolve_period_s=0.01)
    book.configure(spec())
    book.report("c1", "a", [OutcomeRow("search", 100.0, 3.0, 240.0, 0.0)], None)

    async def main() -> int:
        task = asyncio.create_task(run_allocation_loop(book))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if book.allocation("c1").version > 1:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return book.allocation("c1").version

    assert asyncio.run(main()) == 2


# ---------------------------------------------------------------- a re-solve that fails

@pytest.fixture
def failing_c2(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Re-solves of campaign c2 raise while ``switch[0]`` is True (the others solve as usual)."""
    from attribid.models.campaign import model as cm

    switch = [False]
    solve = cm.CampaignModel.solve

    def sometimes(self: cm.CampaignModel, *args: object, **kw: object) -> cm.Solution:
        if switch[0] and self.spec.campaign_id == "c2":
            raise RuntimeError("curve fit diverged")
        return solve(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cm.CampaignModel, "solve", sometimes)
    return switch


def two_campaigns(clock: Clock, failing: list[bool], **kw: object) -> CampaignBook:
    """Campaigns c1 and c2, configured; from then on c2's solves fail."""
    book = CampaignBook(CHANNELS, clock=clock, min_new_evidence=1, **kw)  # type: ignore[arg-type]
    book.configure(spec())
    book.configure(spec(campaign_id="c2"))
    failing[0] = True
    return book


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The attribid logger's records (info and up) while the test runs."""
    from attribid.runtime import logs

    lines: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lines.append  # type: ignore[method-assign]
    logger = logs.get()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def report_both(book: CampaignBook, batch: str) -> None:
    for cid in ("c1", "c2"):
        book.report(cid, batch, [OutcomeRow("search", 100.0, 3.0, 240.0, 0.0)], None)


def test_a_failing_campaign_goes_stale_the_others_go_on_and_it_recovers(
        failing_c2: list[bool]) -> None:
    clock = Clock(1.7e9 + DAY)
    book = two_campaigns(clock, failing_c2, resolve_period_s=60.0)
    report_both(book, "a")
    failures: list[tuple[str, str, bool]] = []
    recovered: list[str] = []

    def step() -> int:
        return book.step(on_failure=lambda c, exc, first: failures.append((c, str(exc), first)),
                         on_recovery=recovered.append)

    assert step() == 1  # c1 re-solved, c2 failed: the step itself did not raise
    assert book.allocation("c1").version == 2 and not book.allocation("c1").stale
    stale = book.allocation("c2")
    assert stale.stale and stale.version == 1
    assert stale.stale_reason == "RuntimeError: curve fit diverged"
    assert failures == [("c2", "curve fit diverged", True)]
    out = np.zeros(7)
    book.bids_into("c2", 0.1, np.full(7, 1 / 7), out)  # the stale allocation still bids
    assert out[0] > 0
    assert step() == 0 and len(failures) == 1  # not retried before a re-solve period
    clock.t += 61.0
    assert step() == 0 and failures[-1] == ("c2", "curve fit diverged", False)  # retried
    failing_c2[0] = False
    clock.t += 61.0
    assert step() == 1 and recovered == ["c2"]
    snap = book.allocation("c2")
    assert not snap.stale and snap.stale_reason == "" and snap.version == 2


def test_the_loop_survives_a_failing_campaign_logs_it_once_and_counts_each_failure(
        failing_c2: list[bool], records: list[logging.LogRecord]) -> None:
    from attribid.runtime.metrics import Metrics

    clock = Clock(1.7e9 + DAY)
    book = two_campaigns(clock, failing_c2, resolve_period_s=0.0)
    metrics = Metrics.create()

    async def main() -> None:
        task = asyncio.create_task(run_allocation_loop(book, metrics))
        try:
            for n in range(1, 6):  # c1 keeps re-solving while c2 keeps failing
                report_both(book, f"b{n}")
                for _ in range(200):
                    await asyncio.sleep(0.01)
                    if book.allocation("c1").version > n:
                        break
            failing_c2[0] = False
            report_both(book, "after")
            for _ in range(200):
                await asyncio.sleep(0.01)
                if not book.allocation("c2").stale and book.allocation("c2").version > 1:
                    break
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    lines = records
    assert book.allocation("c1").version >= 6
    assert book.allocation("c2").version == 2 and not book.allocation("c2").stale
    failed = [r for r in lines if r.getMessage() == "re-solve failed; allocation stale"]
    assert len(failed) == 1 and failed[0].campaign_id == "c2"  # type: ignore[attr-defined]
    assert failed[0].exc_info is not None  # an unexpected error: its traceback is logged
    assert [r.campaign_id for r in lines  # type: ignore[attr-defined]
            if r.getMessage() == "re-solve recovered"] == ["c2"]
    exported = generate_latest(metrics.registry).decode()
    failures = re.search(r'^attribid_resolve_failures_total\{campaign="c2"\} (\S+)$', exported, re.M)
    assert failures is not None and float(failures.group(1)) >= 2
    assert 'campaign="c1"' not in exported


class CrashingBook(CampaignBook):
    """A book whose first ``crashes`` passes raise, and whose period cannot be read once."""

    def __init__(self, *args: object, crashes: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.crashes = crashes
        self.period_reads = 0

    @property  # type: ignore[override]
    def resolve_period_s(self) -> float:
        self.period_reads += 1
        if self.period_reads == 1:
            raise RuntimeError("period unreadable")  # ends the loop's body: it restarts
        return 0.01

    @resolve_period_s.setter
    def resolve_period_s(self, value: float) -> None:
        pass

    def step(self, **kw: object) -> int:  # type: ignore[override]
        if self.crashes > 0:
            self.crashes -= 1
            raise RuntimeError("pass crashed")
        return super().step(**kw)  # type: ignore[arg-type]


def test_the_loop_restarts_after_a_crash_and_goes_on_after_failed_passes(
        records: list[logging.LogRecord]) -> None:
    from attribid.runtime.metrics import Metrics

    book = CrashingBook(CHANNELS, clock=Clock(1.7e9 + DAY), min_new_evidence=1, crashes=3)
    book.configure(spec())
    book.report("c1", "a", [OutcomeRow("search", 100.0, 3.0, 240.0, 0.0)], None)
    metrics = Metrics.create()

    async def main() -> None:
        task = asyncio.create_task(run_allocation_loop(book, metrics, restart_delay_s=0.01))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if book.allocation("c1").version > 1:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    events = [r.getMessage() for r in records]
    assert book.allocation("c1").version == 2  # re-solved in the end
    assert events.count("allocation loop ended unexpectedly; restarting") == 1
    assert events.count("allocation pass failed") == 1  # three failed passes, logged once
    assert events.count("allocation pass recovered") == 1
    exported = generate_latest(metrics.registry).decode()
    assert "attribid_allocation_loop_errors_total 4.0" in exported  # a restart, 3 failed passes
