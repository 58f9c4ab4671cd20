"""Campaigns, their outcomes and their allocation: the closed loop, without gRPC.

``configure`` sets a campaign's budget and constraints; ``report`` adds observed outcomes
(idempotent by batch id); a re-solve fits each channel's response curve to the outcomes
(``attribid.kernels.fitting``), draws Thompson samples of every curve, solves the allocation
under them (``attribid.kernels.allocation``) and swaps the result in whole.
``bids_into`` (the Score hot path) reads only the arrays of the current swap.

Exploration is Thompson sampling over the curves' parameters: a channel the plan has starved
keeps a wide posterior, so some draws rate it highly and fund it, and the spend that follows is
the evidence that settles it; it explores less as evidence grows. The plan is the mean of the
plans under ``draws`` draws (8 by default): one draw's plan jumps from solve to solve, and in the
simulated market (docs/market.md) that jitter cost more revenue than the averaged plan.

Curves work on rates (spend and outcomes per hour), so reports of any cadence combine; the
allocation's spend is the planned rate times the flight. The campaign "" always exists: all
channels, 10,000 a day for a year from the book's creation, revenue only, and priors whose
optimum is Table 6's pre-optimisation split (channels absent from Table 6 get a 5 % share).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from attribid.models.errors import FailedPrecondition, InvalidArgument, NotFound
from attribid.models.campaign import model as cm
from attribid.kernels.allocation import Infeasible
from attribid.kernels.bidding import bids_kernel, pacing_multiplier

HOUR = 3600.0
#: the built-in campaign "": its daily budget and its flight from the book's creation
DEFAULT_DAILY_BUDGET = 10_000.0
DEFAULT_CAMPAIGN_FLIGHT_S = 365 * 24 * HOUR
#: flight of a configured campaign that gives no end
CONFIGURED_FLIGHT_S = cm.CONFIGURED_FLIGHT_S
#: batch ids remembered per campaign for idempotency
MAX_BATCH_IDS = 100_000
#: weight of the newest report in the delivery average, and the range a report may move it in
DELIVERY_SMOOTHING = 0.5
DELIVERY_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    min: float
    max: float  # 0 = whole budget
    value_per_conversion: float  # 0 = learn it from reported revenue


@dataclass(frozen=True)
class CampaignSpec:
    campaign_id: str
    budget: float
    flight_start: float  # epoch seconds
    flight_end: float
    weight_revenue: float
    weight_acquisitions: float
    weight_exposure: float
    max_cpa: float  # 0 = none
    channels: tuple[ChannelSpec, ...]  # empty = every book channel with defaults
    bid_floor: float
    bid_cap: float  # 0 = none


@dataclass(frozen=True)
class AllocationSnapshot:
    campaign_id: str
    spend: dict[str, float]
    share: dict[str, float]
    revenue: float
    acquisitions: float
    exposure: float
    cpa: float
    objective: float
    solved_at: float  # epoch seconds
    version: int
    pacing: float


@dataclass(frozen=True)
class OutcomeRow:
    channel: str
    spend: float
    conversions: float
    revenue: float
    impressions: float


@dataclass
class _Campaign:
    spec: CampaignSpec
    model: cm.CampaignModel
    seen: set[str] = field(default_factory=set)
    seen_order: deque[str] = field(default_factory=deque)
    spent: float = 0.0
    #: delivered spend per unit of pacing, relative to the budget's rate (a moving average)
    delivery: float = 1.0
    #: end of the last report's period, epoch s
    reported_to: float | None = None
    pending: int = 0
    version: int = 0
    snapshot: AllocationSnapshot | None = None
    #: (per_conv [C], per_imp [C], params [3]) read by bids_into; replaced, never mutated
    hot: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class CampaignBook:
    """Every campaign of one server: configuration, outcomes, allocation and bids.

    >>> book = CampaignBook(("search", "email"), clock=lambda: 1_000_000.0)
    >>> round(sum(book.allocation("").share.values()), 6)
    1.0
    """

    def __init__(self, channels: Sequence[str], *, clock: Callable[[], float] = time.time,
                 seed: int = 0, resolve_period_s: float = 5.0, min_new_evidence: int = 20,
                 half_life_s: float = 3 * 24 * HOUR, draws: int = 8) -> None:
        self.channels = tuple(channels)
        self._index = {c: i for i, c in enumerate(self.channels)}
        self._clock = clock
        self._rng = np.random.default_rng(seed)
        self.resolve_period_s = float(resolve_period_s)
        self.min_new_evidence = int(min_new_evidence)
        self.half_life_s = float(half_life_s)
        #: Thompson draws averaged per re-solve (1 = plain Thompson sampling, 0 = posterior means)
        self.draws = int(draws)
        self._lock = threading.Lock()
        self._campaigns: dict[str, _Campaign] = {}
        #: campaign id -> hot tuple; a plain dict read on the hot path, entries swapped whole
        self._hot: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        now = clock()
        self.configure(CampaignSpec("", DEFAULT_DAILY_BUDGET * DEFAULT_CAMPAIGN_FLIGHT_S / (24 * HOUR),
                                    now, now + DEFAULT_CAMPAIGN_FLIGHT_S, 1.0, 0.0, 0.0, 0.0, (), 0.0,
                                    0.0))

    # -- configuration -------------------------------------------------------------------
    def warm(self) -> None:
        """Compile and run every kernel once (fit, solve, bid), on a scratch campaign."""
        scratch = CampaignBook(self.channels, clock=self._clock, seed=0)
        rows = [OutcomeRow(c, 10.0, 1.0, 50.0, 1000.0) for c in self.channels]
        scratch.report("", "warm", rows, None)
        scratch.resolve_now("")
        out = np.zeros(len(self.channels))
        scratch.bids_into("", 0.5, np.full(len(self.channels), 1.0 / max(len(self.channels), 1)), out)

    def configure(self, spec: CampaignSpec) -> AllocationSnapshot:
        """Create or replace a campaign; the first allocation uses the curves' posterior means."""
        spec = cm.validate_spec(spec, self._index, self._clock())
        model = cm.CampaignModel(spec, self.channels, self.half_life_s)
        old = self._campaigns.get(spec.campaign_id)
        if old is not None:
            # Replacing a campaign keeps what it has learnt, spent and acknowledged.
            model.adopt(old.model)
        try:
            result = model.solve(None, self._clock())
        except Infeasible as exc:
            raise FailedPrecondition(exc.constraint, str(exc).split(": ", 1)[-1]) from None
        with self._lock:
            camp = _Campaign(spec, model)
            if old is not None:
                camp.version, camp.spent, camp.pending = old.version, old.spent, old.pending
                camp.delivery, camp.reported_to = old.delivery, old.reported_to
                camp.seen, camp.seen_order = old.seen, old.seen_order
            self._install(camp, result)
            self._campaigns[spec.campaign_id] = camp
        assert camp.snapshot is not None
        return camp.snapshot

    # -- outcomes ------------------------------------------------------------------------
    def report(self, campaign_id: str, batch_id: str, rows: Sequence[OutcomeRow],
               period_end: float | None) -> tuple[bool, int, int]:
        """Add one batch of outcomes; returns (duplicate, accepted rows, allocation version)."""
        if not batch_id:
            raise InvalidArgument("batch_id", "required (the idempotency key)")
        camp = self._get(campaign_id)
        end = self._clock() if period_end is None else float(period_end)
        if not math.isfinite(end):
            raise InvalidArgument("period_end", "must be a finite time")
        parsed = cm.validate_rows(rows, self._index, camp.model.members)
        with self._lock:
            if batch_id in camp.seen:
                return True, 0, camp.version
            camp.seen.add(batch_id)
            camp.seen_order.append(batch_id)
            if len(camp.seen_order) > MAX_BATCH_IDS:
                camp.seen.discard(camp.seen_order.popleft())
            camp.model.add(parsed, end)
            spend = float(parsed[:, 1].sum())
            camp.spent += spend
            self._learn_delivery(camp, spend, end)
            camp.pending += len(rows)
            self._refresh_pacing(camp)
            return False, len(rows), camp.version

    # -- allocation ----------------------------------------------------------------------
    def allocation(self, campaign_id: str) -> AllocationSnapshot:
        """The campaign's current allocation."""
        snap = self._get(campaign_id).snapshot
        assert snap is not None
        return snap

    def resolve_now(self, campaign_id: str) -> AllocationSnapshot:
        """Re-fit the curves, draw Thompson samples and re-solve, now."""
        camp = self._get(campaign_id)
        now = self._clock()
        taken = camp.pending  # rows reported while solving stay pending for the next re-solve
        result = camp.model.solve(self._rng if self.draws > 0 else None, now, self.draws)
        with self._lock:
            camp.pending = max(camp.pending - taken, 0)
            self._install(camp, result)
        assert camp.snapshot is not None
        return camp.snapshot

    def pacing(self, campaign_id: str) -> float:
        """The pacing multiplier the campaign's bids carry right now."""
        self._get(campaign_id)
        return float(self._hot[campaign_id][2][0])

    def expected_plan(self, campaign_id: str) -> dict[str, float]:
        """Spend per channel over the flight that is optimal under the curves' posterior means
        (no exploration); the current allocation is left as it is."""
        camp = self._get(campaign_id)
        result = camp.model.solve(None, self._clock())
        return {self.channels[i]: float(result.spend[i]) for i in camp.model.members}

    def bids_into(self, campaign_id: str, conversion_probability: float, credit: np.ndarray,
                  out: np.ndarray) -> None:
        """Each channel's bid for one impression, written into ``out`` (float64 [C])."""
        hot = self._hot.get(campaign_id)
        if hot is None:
            raise NotFound("campaign_id", f"unknown campaign {campaign_id!r}")
        bids_kernel(conversion_probability, credit, hot[0], hot[1], hot[2], out)

    def step(self) -> int:
        """One pass of the background loop; returns how many campaigns were re-solved."""
        now = self._clock()
        solved = 0
        for cid, camp in list(self._campaigns.items()):
            snap = camp.snapshot
            age = now - snap.solved_at if snap else math.inf
            if camp.pending >= self.min_new_evidence or (camp.pending > 0 and age >= self.resolve_period_s):
                self.resolve_now(cid)
                solved += 1
            else:
                with self._lock:
                    self._refresh_pacing(camp)
        return solved

    # -- internals -----------------------------------------------------------------------
    def _get(self, campaign_id: str) -> _Campaign:
        camp = self._campaigns.get(campaign_id)
        if camp is None:
            raise NotFound("campaign_id", f"unknown campaign {campaign_id!r}")
        return camp

    def _learn_delivery(self, camp: _Campaign, spend: float, end: float) -> None:
        """Update how much a unit of pacing delivers, from one report's spend over its period.

        Demand varies (quiet nights, busy middays): pacing divides by what it delivers, so the
        spend rate tracks the rate the budget still needs instead of the demand.
        """
        s = camp.spec
        start = camp.reported_to if camp.reported_to is not None else s.flight_start
        dt = end - start
        pace = float(camp.hot[2][0]) if camp.hot is not None else 0.0
        if dt > 0 and pace > 0:
            expected = s.budget / (s.flight_end - s.flight_start) * dt * pace
            ratio = min(max(spend / expected, DELIVERY_RANGE[0]), DELIVERY_RANGE[1])
            camp.delivery += DELIVERY_SMOOTHING * (ratio - camp.delivery)
        if dt > 0:
            camp.reported_to = end

    def _pacing(self, camp: _Campaign) -> float:
        s = camp.spec
        return pacing_multiplier(self._clock(), s.flight_start, s.flight_end, s.budget, camp.spent,
                                 delivery=camp.delivery)

    def _install(self, camp: _Campaign, result: cm.Solution) -> None:
        camp.version += 1
        pacing = self._pacing(camp)
        names = self.channels
        spend = {names[i]: float(result.spend[i]) for i in camp.model.members}
        budget = camp.spec.budget
        camp.snapshot = AllocationSnapshot(
            campaign_id=camp.spec.campaign_id, spend=spend,
            share={k: v / budget for k, v in spend.items()}, revenue=result.revenue,
            acquisitions=result.acquisitions, exposure=result.exposure, cpa=result.cpa,
            objective=result.objective, solved_at=result.solved_at, version=camp.version,
            pacing=pacing)
        params = np.array([pacing, camp.spec.bid_floor, camp.spec.bid_cap])
        camp.hot = (result.per_conv, result.per_imp, params)
        self._hot[camp.spec.campaign_id] = camp.hot

    def _refresh_pacing(self, camp: _Campaign) -> None:
        if camp.hot is None:
            return
        params = np.array([self._pacing(camp), camp.spec.bid_floor, camp.spec.bid_cap])
        camp.hot = (camp.hot[0], camp.hot[1], params)
        self._hot[camp.spec.campaign_id] = camp.hot
