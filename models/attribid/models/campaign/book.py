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

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from attribid.models.errors import (MAX_ECHO, MAX_ID_BYTES, FailedPrecondition, InvalidArgument,
                                    NotFound, ResourceExhausted, check_id, quote)
from attribid.models.campaign import model as cm
from attribid.models.campaign.window import WINDOW_JOURNEYS, JourneyWindow
from attribid.kernels.allocation import Infeasible
from attribid.kernels.bidding import bids_kernel, pacing_multiplier

HOUR = 3600.0
#: the built-in campaign "": its daily budget and its flight from the book's creation
DEFAULT_DAILY_BUDGET = 10_000.0
DEFAULT_CAMPAIGN_FLIGHT_S = 365 * 24 * HOUR
#: flight of a configured campaign that gives no end
CONFIGURED_FLIGHT_S = cm.CONFIGURED_FLIGHT_S
#: a report's rows as columns (what the API hands ``report``; a list of OutcomeRow works too)
OutcomeColumns = cm.OutcomeColumns
#: the book's limits by default (``BookLimits``)
MAX_CAMPAIGNS = 1000
MAX_BATCH_IDS = 1_000_000
BATCH_ID_RETENTION_S = 7 * 24 * HOUR
MAX_REPORT_ROWS = 5000
#: weight of the newest report in the delivery average, and the range a report may move it in
DELIVERY_SMOOTHING = 0.5
DELIVERY_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class BookLimits:
    """What one book holds at most; each limit refuses with an error naming the field.

    Idempotency keys (batch ids) are kept for ``batch_id_retention_s`` and at most
    ``max_batch_ids`` of them over all the book's campaigns, the oldest dropped first: a
    retry of a batch older than that counts again.
    """

    #: campaigns, the default campaign "" included (RESOURCE_EXHAUSTED naming campaign_id)
    max_campaigns: int = MAX_CAMPAIGNS
    #: longest campaign_id and batch_id, in UTF-8 bytes (INVALID_ARGUMENT naming the field)
    max_id_bytes: int = MAX_ID_BYTES
    #: idempotency keys kept, over every campaign of the book
    max_batch_ids: int = MAX_BATCH_IDS
    #: how long an idempotency key is kept, in seconds
    batch_id_retention_s: float = BATCH_ID_RETENTION_S
    #: outcome rows in one report (INVALID_ARGUMENT naming outcomes)
    max_report_rows: int = MAX_REPORT_ROWS
    #: conversions in one report of conversions (INVALID_ARGUMENT naming conversions)
    max_report_conversions: int = MAX_REPORT_ROWS
    #: journeys of each kind (converting, not) a campaign keeps for markov and shapley
    attribution_window: int = WINDOW_JOURNEYS

    def __post_init__(self) -> None:
        for name in ("max_campaigns", "max_id_bytes", "max_batch_ids", "max_report_rows",
                     "max_report_conversions", "attribution_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.batch_id_retention_s >= 0:
            raise ValueError(f"batch_id_retention_s: must be >= 0, got {self.batch_id_retention_s}")


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
    #: what credits the campaign's conversions (``model.ATTRIBUTIONS``): "reported" takes
    #: the conversions and revenue of outcome rows; any other method takes them from
    #: ``report_conversions`` and uses only the rows' spend and impressions
    attribution: str = cm.REPORTED


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
    #: the last re-solve failed: this allocation is the one before it, still in force
    stale: bool = False
    #: why it failed (cut to MAX_ECHO characters); "" when not stale
    stale_reason: str = ""
    #: what credited the conversions this allocation learnt from (``CampaignSpec.attribution``)
    attribution: str = cm.REPORTED


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
    #: when the last re-solve failed (book clock), None once one succeeds
    failed_at: float | None = None
    #: store sequence numbers (attribid.state): the configuration in force, the newest
    #: outcomes applied (0 for a book without a store)
    spec_seq: int = 0
    evidence_seq: int = 0
    #: recent journeys for the window attributions (markov, shapley); None until one comes
    window: JourneyWindow | None = None


#: what a book hands its store to publish: (campaign id, solution, spec_seq, evidence_seq)
Publish = Callable[[str, cm.Solution, int, int], object]


@dataclass(frozen=True)
class PreparedReport:
    """A report checked against its campaign, ready to be recorded (``apply_report``)."""

    campaign_id: str
    #: float64 [n, 5] from ``model.validate_rows``
    rows: np.ndarray
    #: end of the report's period, epoch s
    end: float
    #: the pacing the campaign's bids carried when the report was taken (what it delivered at)
    pace: float


@dataclass(frozen=True)
class PreparedConversions:
    """Conversions credited over their journeys and checked against their campaign, ready
    to be recorded (``apply_conversions``)."""

    campaign_id: str
    #: float64 [n]: each conversion's time (epoch s) and value
    at: np.ndarray
    value: np.ndarray
    #: float64 [n, book channels]: each conversion's credit, a row of shares summing to 1
    credit: np.ndarray
    #: for the window attributions: the converting journeys' and the non-converting
    #: journeys' channel paths (int arrays of book channel codes), for the campaign's window
    paths: tuple[np.ndarray, ...] = ()
    idle: tuple[np.ndarray, ...] = ()


def _solved(model: cm.CampaignModel, rng: np.random.Generator | None, now: float,
            draws: int = 1) -> cm.Solution:
    """``model.solve``, with a constraint that cannot hold as FailedPrecondition naming it."""
    try:
        return model.solve(rng, now, draws)
    except Infeasible as exc:
        raise FailedPrecondition(exc.constraint, str(exc).split(": ", 1)[-1]) from None


def _reason(exc: BaseException) -> str:
    """An error as a stale allocation explains itself: short, whatever the error quoted."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 3] + "..."


class CampaignBook:
    """Every campaign of one server: configuration, outcomes, allocation and bids.

    >>> book = CampaignBook(("search", "email"), clock=lambda: 1_000_000.0)
    >>> round(sum(book.allocation("").share.values()), 6)
    1.0
    """

    def __init__(self, channels: Sequence[str], *, clock: Callable[[], float] = time.time,
                 seed: int = 0, resolve_period_s: float = 5.0, min_new_evidence: int = 20,
                 half_life_s: float = 3 * 24 * HOUR, draws: int = 8,
                 limits: BookLimits = BookLimits()) -> None:
        self.channels = tuple(channels)
        self.limits = limits
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
        #: (kind, campaign id, batch id) -> when it was reported (book clock), oldest first;
        #: kind "outcomes" or "conversions": the two kinds of batch may share an id
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        #: campaign id -> hot tuple; a plain dict read on the hot path, entries swapped whole
        self._hot: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        now = clock()
        self.configure(CampaignSpec("", DEFAULT_DAILY_BUDGET * DEFAULT_CAMPAIGN_FLIGHT_S / (24 * HOUR),
                                    now, now + DEFAULT_CAMPAIGN_FLIGHT_S, 1.0, 0.0, 0.0, 0.0, (), 0.0,
                                    0.0))

    def default_spec(self) -> CampaignSpec:
        """The default campaign's configuration as this book created it (flight from then)."""
        return self._get("").spec

    def spec_seq(self, campaign_id: str) -> int:
        """The store event the campaign's configuration came from; 0 = none (not stored)."""
        camp = self._campaigns.get(campaign_id)
        return 0 if camp is None else camp.spec_seq

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
        """Create or replace a campaign; the first allocation uses the curves' posterior means.

        A new campaign past ``limits.max_campaigns`` is refused (ResourceExhausted).
        """
        return self.apply_configure(self.prepare_configure(spec))

    def prepare_configure(self, spec: CampaignSpec) -> CampaignSpec:
        """``spec`` checked and with its defaults filled: what ``configure`` would refuse is
        refused here (a campaign that cannot be solved included), and nothing changes."""
        check_id("campaign_id", spec.campaign_id, self.limits.max_id_bytes)
        self._check_room(spec.campaign_id)  # before the solve: a full book refuses cheaply
        spec = cm.validate_spec(spec, self._index, self._clock())
        _solved(cm.CampaignModel(spec, self.channels, self.half_life_s), None, self._clock())
        return spec

    def apply_configure(self, spec: CampaignSpec, version: int | None = None,
                        spec_seq: int = 0) -> AllocationSnapshot:
        """Create or replace a campaign from a spec ``prepare_configure`` returned; its
        allocation gets ``version`` (None: the next one)."""
        model = cm.CampaignModel(spec, self.channels, self.half_life_s)
        old = self._campaigns.get(spec.campaign_id)
        if old is not None:
            # Replacing a campaign keeps what it has learnt, spent and acknowledged.
            model.adopt(old.model)
        result = _solved(model, None, self._clock())
        with self._lock:
            self._check_room(spec.campaign_id)  # again: another call may have filled the book
            camp = _Campaign(spec, model, spec_seq=spec_seq)
            old = self._campaigns.get(spec.campaign_id)
            if old is not None:
                camp.version, camp.spent, camp.pending = old.version, old.spent, old.pending
                camp.delivery, camp.reported_to = old.delivery, old.reported_to
                camp.evidence_seq = old.evidence_seq
                camp.window = old.window
            self._install(camp, result, version)
            self._campaigns[spec.campaign_id] = camp
        assert camp.snapshot is not None
        return camp.snapshot

    # -- outcomes ------------------------------------------------------------------------
    def check_report(self, batch_id: str, rows: int) -> None:
        """What ``report`` checks before it reads a row: the batch id and the number of rows
        (a caller can refuse an oversized report before converting its rows)."""
        self._check_batch_id(batch_id)
        if rows > self.limits.max_report_rows:
            raise InvalidArgument("outcomes", f"{rows} rows, at most "
                                  f"{self.limits.max_report_rows} in one report")

    def report(self, campaign_id: str, batch_id: str,
               rows: Sequence[OutcomeRow] | OutcomeColumns,
               period_end: float | None) -> tuple[bool, int, int]:
        """Add one batch of outcomes; returns (duplicate, accepted rows, allocation version).

        A refused report changes nothing and keeps its batch id unused. One that would take a
        campaign total past ``model.MAX_AMOUNT`` is refused naming the row and field.
        """
        prepared = self.prepare_report(campaign_id, batch_id, rows, period_end)

        def record(camp: _Campaign) -> int:
            self._record(camp, prepared, 0)  # refuses (records nothing) past a campaign total
            return len(rows)
        return self._once("outcomes", campaign_id, batch_id, record)

    def _check_batch_id(self, batch_id: str) -> None:
        if not batch_id:
            raise InvalidArgument("batch_id", "required (the idempotency key)")
        check_id("batch_id", batch_id, self.limits.max_id_bytes)

    def _once(self, kind: str, campaign_id: str, batch_id: str,
              record: Callable[[_Campaign], int]) -> tuple[bool, int, int]:
        """``record(campaign)`` unless this batch id of ``kind`` was seen (within the
        retention); (duplicate, what record returned, allocation version). A batch that
        ``record`` refuses keeps its id unused."""
        key = (kind, campaign_id, batch_id)
        with self._lock:
            now = self._clock()
            self._forget_old_batches(now)
            camp = self._get(campaign_id)  # the campaign as it is now (it may be replaced)
            if key in self._seen:
                return True, 0, camp.version
            accepted = record(camp)
            self._seen[key] = now
            if len(self._seen) > self.limits.max_batch_ids:
                self._seen.popitem(last=False)
            return False, accepted, camp.version

    def prepare_report(self, campaign_id: str, batch_id: str,
                       rows: Sequence[OutcomeRow] | OutcomeColumns,
                       period_end: float | None) -> PreparedReport:
        """A report checked as ``report`` checks it (all but its batch id's novelty), ready
        for ``apply_report``; nothing changes."""
        self.check_report(batch_id, len(rows))
        camp = self._get(campaign_id)
        end = self._clock() if period_end is None else float(period_end)
        if not math.isfinite(end):
            raise InvalidArgument("period_end", "must be a finite time")
        parsed = cm.validate_rows(rows, self._index, camp.model.members)
        if camp.spec.attribution != cm.REPORTED:
            # The campaign's conversions come credited from report_conversions: the rows'
            # own split (the caller's attribution) is not evidence for it.
            parsed[:, 2:4] = 0.0
        camp.model.check_totals(parsed)
        pace = float(camp.hot[2][0]) if camp.hot is not None else 0.0
        return PreparedReport(campaign_id, parsed, end, pace)

    def apply_report(self, prepared: PreparedReport, evidence_seq: int = 0) -> int:
        """Record a prepared report (no idempotency check: the store made it); the campaign's
        allocation version. Refused (InvalidArgument, nothing recorded) past a total."""
        with self._lock:
            camp = self._get(prepared.campaign_id)
            self._record(camp, prepared, evidence_seq)
            return camp.version

    def _record(self, camp: _Campaign, prepared: PreparedReport, evidence_seq: int) -> None:
        camp.model.add(prepared.rows, prepared.end)
        spend = float(prepared.rows[:, 1].sum())
        camp.spent += spend
        self._learn_delivery(camp, spend, prepared.end, prepared.pace)
        camp.pending += len(prepared.rows)
        camp.evidence_seq = max(camp.evidence_seq, evidence_seq)
        self._refresh_pacing(camp)

    # -- conversions ---------------------------------------------------------------------
    def check_conversions(self, campaign_id: str, batch_id: str, count: int) -> str:
        """What ``report_conversions`` checks before any conversion is read or credited: the
        batch id, the count, and that the campaign takes credited conversions (FailedPrecondition
        for "reported"). Returns the campaign's attribution, the method to credit them by."""
        self._check_batch_id(batch_id)
        if count > self.limits.max_report_conversions:
            raise InvalidArgument("conversions", f"{count} conversions, at most "
                                  f"{self.limits.max_report_conversions} in one report")
        method = self._get(campaign_id).spec.attribution
        if method == cm.REPORTED:
            raise FailedPrecondition("attribution", f"campaign {quote(campaign_id)} takes "
                                     "conversions as reported in ReportOutcomes rows; configure "
                                     "another attribution to report conversions")
        return method

    def prepare_conversions(self, campaign_id: str, batch_id: str, at: np.ndarray,
                            value: np.ndarray, credit: np.ndarray,
                            paths: Sequence[np.ndarray] = (),
                            idle: Sequence[np.ndarray] = ()) -> PreparedConversions:
        """Credited conversions checked as ``report_conversions`` checks them (all but the
        batch id's novelty); nothing changes."""
        self.check_conversions(campaign_id, batch_id, int(np.shape(at)[0]))
        camp = self._get(campaign_id)
        at = np.ascontiguousarray(at, np.float64)
        value = np.ascontiguousarray(value, np.float64)
        credit = np.ascontiguousarray(credit, np.float64)
        n = at.shape[0]
        if value.shape != (n,) or credit.shape != (n, len(self.channels)):
            raise ValueError("at, value and credit must describe the same conversions over "
                             "the book's channels")
        if not (np.isfinite(at).all() and np.isfinite(value).all() and np.isfinite(credit).all()):
            raise InvalidArgument("conversions", "times, values and credit must be finite")
        if (value < 0).any() or (value > cm.MAX_AMOUNT).any():
            i = int(np.flatnonzero((value < 0) | (value > cm.MAX_AMOUNT))[0])
            raise InvalidArgument(f"conversions[{i}].value",
                                  f"must be in [0, {cm.MAX_AMOUNT:g}], got {value[i]:g}")
        if (credit < 0).any():
            raise InvalidArgument("conversions", "credit must be >= 0")
        camp.model.check_credit_totals(float(credit[:, camp.model.members].sum()),
                                       float((credit[:, camp.model.members].T @ value).sum()))
        for name, group in (("paths", paths), ("idle", idle)):
            for p in group:
                if p.size and (p.min() < 0 or p.max() >= len(self.channels)):
                    raise ValueError(f"{name}: channel codes outside the book's channels")
        return PreparedConversions(campaign_id, at, value, credit, tuple(paths), tuple(idle))

    def apply_conversions(self, prepared: PreparedConversions, evidence_seq: int = 0) -> int:
        """Record prepared conversions (no idempotency check: the store made it); the
        campaign's allocation version. Each counts as new evidence for the next re-solve."""
        with self._lock:
            camp = self._get(prepared.campaign_id)
            self._record_conversions(camp, prepared)
            camp.evidence_seq = max(camp.evidence_seq, evidence_seq)
            return camp.version

    def _record_conversions(self, camp: _Campaign, prepared: PreparedConversions) -> None:
        camp.model.add_credit(prepared.at, prepared.credit, prepared.value)
        camp.pending += int(prepared.at.shape[0])
        if prepared.paths or prepared.idle:
            if camp.window is None:
                camp.window = JourneyWindow(self.limits.attribution_window)
            camp.window.add(prepared.paths, prepared.idle)

    def window_credit(self, campaign_id: str, method: str, paths: Sequence[np.ndarray],
                      idle: Sequence[np.ndarray]) -> np.ndarray:
        """Shares [len(paths), C] of converting ``paths`` under a window attribution,
        fitted on the campaign's window of journeys with this batch's added."""
        with self._lock:
            camp = self._get(campaign_id)
            window = (camp.window.copy() if camp.window is not None
                      else JourneyWindow(self.limits.attribution_window))
        return window.credit(method, paths, idle, self.channels)

    def report_conversions(self, campaign_id: str, batch_id: str, at: np.ndarray,
                           value: np.ndarray, credit: np.ndarray,
                           paths: Sequence[np.ndarray] = (),
                           idle: Sequence[np.ndarray] = ()) -> tuple[bool, int, int]:
        """Add credited conversions, idempotent by batch id as ``report``;
        (duplicate, accepted conversions, allocation version)."""
        prepared = self.prepare_conversions(campaign_id, batch_id, at, value, credit, paths,
                                            idle)

        def record(camp: _Campaign) -> int:
            self._record_conversions(camp, prepared)
            return int(prepared.at.shape[0])
        return self._once("conversions", campaign_id, batch_id, record)

    def attribution(self, campaign_id: str) -> str:
        """What credits the campaign's conversions (``CampaignSpec.attribution``)."""
        return self._get(campaign_id).spec.attribution

    # -- allocation ----------------------------------------------------------------------
    def allocation(self, campaign_id: str) -> AllocationSnapshot:
        """The campaign's current allocation."""
        snap = self._get(campaign_id).snapshot
        assert snap is not None
        return snap

    def observations(self, campaign_id: str) -> np.ndarray:
        """What the campaign's next fit reads: one row per channel and reported period
        (``CampaignModel.observations``)."""
        return self._get(campaign_id).model.observations()

    def resolve_now(self, campaign_id: str, publish: Publish | None = None) -> AllocationSnapshot:
        """Re-fit the curves, draw Thompson samples and re-solve, now.

        With ``publish``, the solution goes to it (a store, which hands it back to every
        process through ``install``) instead of being installed here.
        """
        camp = self._get(campaign_id)
        now = self._clock()
        taken = camp.pending  # rows reported while solving stay pending for the next re-solve
        evidence = camp.evidence_seq
        result = _solved(camp.model, self._rng if self.draws > 0 else None, now, self.draws)
        if publish is not None:
            publish(campaign_id, result, camp.spec_seq, evidence)
            with self._lock:
                camp.failed_at = None
                if camp.snapshot is not None and camp.snapshot.stale:
                    camp.snapshot = dataclasses.replace(camp.snapshot, stale=False,
                                                        stale_reason="")
        else:
            with self._lock:
                camp.pending = max(camp.pending - taken, 0)
                self._install(camp, result)
        assert camp.snapshot is not None
        return camp.snapshot

    def install(self, campaign_id: str, result: cm.Solution, version: int, spec_seq: int,
                evidence_seq: int) -> bool:
        """Put in force an allocation a store published: False (nothing changes) when it is
        not newer than the one in force or was solved for another configuration."""
        with self._lock:
            camp = self._get(campaign_id)
            if version <= camp.version or spec_seq != camp.spec_seq:
                return False
            if camp.evidence_seq <= evidence_seq:
                camp.pending = 0
            self._install(camp, result, version)
            return True

    def mark_stale(self, campaign_id: str, exc: BaseException) -> None:
        """Keep the campaign's allocation in force, marked stale with ``exc`` as the reason."""
        camp = self._campaigns.get(campaign_id)
        if camp is not None:
            self._mark_stale(camp, self._clock(), exc)

    def campaign_ids(self) -> tuple[str, ...]:
        """Every campaign of the book, the default campaign "" first."""
        return tuple(self._campaigns)

    def pacing(self, campaign_id: str) -> float:
        """The pacing multiplier the campaign's bids carry right now."""
        self._get(campaign_id)
        return float(self._hot[campaign_id][2][0])

    def expected_plan(self, campaign_id: str) -> dict[str, float]:
        """Spend per channel over the flight that is optimal under the curves' posterior means
        (no exploration); the current allocation is left as it is."""
        camp = self._get(campaign_id)
        result = _solved(camp.model, None, self._clock())
        return {self.channels[i]: float(result.spend[i]) for i in camp.model.members}

    def bids_into(self, campaign_id: str, conversion_probability: float, credit: np.ndarray,
                  out: np.ndarray) -> None:
        """Each channel's bid for one impression, written into ``out`` (float64 [C])."""
        hot = self._hot.get(campaign_id)
        if hot is None:
            raise self._unknown(campaign_id)
        bids_kernel(conversion_probability, credit, hot[0], hot[1], hot[2], out)

    def step(self, *, on_failure: Callable[[str, Exception, bool], None] | None = None,
             on_recovery: Callable[[str], None] | None = None, resolve: bool = True,
             publish: Publish | None = None) -> int:
        """One pass of the background loop; returns how many campaigns were re-solved.

        A campaign whose re-solve fails keeps its allocation, marked ``stale`` with the
        reason, and is tried again once ``resolve_period_s`` has passed; the other campaigns
        go on. ``on_failure(campaign_id, error, first)`` hears of each failure (``first``:
        the campaign was not stale before) and ``on_recovery(campaign_id)`` of a stale
        campaign's next successful re-solve. With ``resolve`` False only the pacing moves
        (a process that does not hold its store's re-solve lease); ``publish`` is
        ``resolve_now``'s.
        """
        now = self._clock()
        solved = 0
        for cid, camp in list(self._campaigns.items()):
            try:
                if resolve and self._due(camp, now):
                    was_stale = camp.failed_at is not None
                    self.resolve_now(cid, publish)
                    solved += 1
                    if was_stale and on_recovery is not None:
                        on_recovery(cid)
                else:
                    with self._lock:
                        self._refresh_pacing(camp)
            except Exception as exc:  # one campaign's failure must not stop the others
                first = camp.failed_at is None
                self._mark_stale(camp, now, exc)
                if on_failure is not None:
                    on_failure(cid, exc, first)
        return solved

    # -- internals -----------------------------------------------------------------------
    def _due(self, camp: _Campaign, now: float) -> bool:
        if camp.pending <= 0:
            return False
        if camp.failed_at is not None:  # a failing campaign is retried once a period
            return now - camp.failed_at >= self.resolve_period_s
        snap = camp.snapshot
        age = now - snap.solved_at if snap else math.inf
        return camp.pending >= self.min_new_evidence or age >= self.resolve_period_s

    def _mark_stale(self, camp: _Campaign, now: float, exc: BaseException) -> None:
        with self._lock:
            camp.failed_at = now
            if camp.snapshot is not None:
                camp.snapshot = dataclasses.replace(camp.snapshot, stale=True,
                                                    stale_reason=_reason(exc))

    def _check_room(self, campaign_id: str) -> None:
        if campaign_id not in self._campaigns and len(self._campaigns) >= self.limits.max_campaigns:
            raise ResourceExhausted("campaign_id", f"{quote(campaign_id)} would be campaign "
                                    f"{len(self._campaigns) + 1}: at most "
                                    f"{self.limits.max_campaigns} campaigns")

    def _forget_old_batches(self, now: float) -> None:
        """Drop idempotency keys older than the retention (oldest first, so it stops early)."""
        seen = self._seen
        horizon = now - self.limits.batch_id_retention_s
        while seen:
            key, at = next(iter(seen.items()))
            if at >= horizon:
                break
            del seen[key]

    def _unknown(self, campaign_id: str) -> Exception:
        # An id longer than any campaign can have is a bad argument, not a missing campaign.
        try:
            check_id("campaign_id", campaign_id, self.limits.max_id_bytes)
        except InvalidArgument as exc:
            return exc
        return NotFound("campaign_id", f"unknown campaign {quote(campaign_id)}")

    def _get(self, campaign_id: str) -> _Campaign:
        camp = self._campaigns.get(campaign_id)
        if camp is None:
            raise self._unknown(campaign_id)
        return camp

    def _learn_delivery(self, camp: _Campaign, spend: float, end: float, pace: float) -> None:
        """Update how much a unit of pacing delivers, from one report's spend over its period.

        Demand varies (quiet nights, busy middays): pacing divides by what it delivers, so the
        spend rate tracks the rate the budget still needs instead of the demand.
        """
        s = camp.spec
        start = camp.reported_to if camp.reported_to is not None else s.flight_start
        dt = end - start
        expected = s.budget / (s.flight_end - s.flight_start) * dt * pace
        if dt > 0 and pace > 0 and expected > 0:  # (a tiny pace times a short period: 0)
            ratio = min(max(spend / expected, DELIVERY_RANGE[0]), DELIVERY_RANGE[1])
            camp.delivery += DELIVERY_SMOOTHING * (ratio - camp.delivery)
        if dt > 0:
            camp.reported_to = end

    def _pacing(self, camp: _Campaign) -> float:
        s = camp.spec
        return pacing_multiplier(self._clock(), s.flight_start, s.flight_end, s.budget, camp.spent,
                                 delivery=camp.delivery)

    def _install(self, camp: _Campaign, result: cm.Solution, version: int | None = None) -> None:
        camp.version = camp.version + 1 if version is None else version
        camp.failed_at = None
        pacing = self._pacing(camp)
        names = self.channels
        spend = {names[i]: float(result.spend[i]) for i in camp.model.members}
        budget = camp.spec.budget
        camp.snapshot = AllocationSnapshot(
            campaign_id=camp.spec.campaign_id, spend=spend,
            share={k: v / budget for k, v in spend.items()}, revenue=result.revenue,
            acquisitions=result.acquisitions, exposure=result.exposure, cpa=result.cpa,
            objective=result.objective, solved_at=result.solved_at, version=camp.version,
            pacing=pacing, attribution=camp.spec.attribution)
        params = np.array([pacing, camp.spec.bid_floor, camp.spec.bid_cap])
        camp.hot = (result.per_conv, result.per_imp, params)
        self._hot[camp.spec.campaign_id] = camp.hot

    def _refresh_pacing(self, camp: _Campaign) -> None:
        if camp.hot is None:
            return
        params = np.array([self._pacing(camp), camp.spec.bid_floor, camp.spec.bid_cap])
        camp.hot = (camp.hot[0], camp.hot[1], params)
        self._hot[camp.spec.campaign_id] = camp.hot
