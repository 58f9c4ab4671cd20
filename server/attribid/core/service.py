"""The Score core: admit -> validate -> (batch: featurize -> infer -> attribute) -> bid.

Admission lives here: a call whose deadline leaves no time for the network, or
that arrives while the queue is full, is answered by the fallback (flagged) or
refused, never left to time out. No gRPC here: callers pass the time left and a
``RawJourney``; a transport admits a call before it converts the request, so a
refusal costs no conversion.

``reload`` replaces the model while serving: the new one is loaded, checked and warmed
beside the old, then swapped in between batches (``Scorer.swap``); calls in flight finish
on the old one, and a model that fails any step never serves.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from attribid.core.batcher import Batcher, Expired, Overloaded
from attribid.models.campaign.tenants import OPEN_TENANT
from attribid.models.errors import LoadShed, TooLate
from attribid.models.onnx.runtime import OnnxModel, load_model
from attribid.runtime import logs
from attribid.runtime.metrics import Metrics
from attribid.core.scoring import Bidder, Scored, Scorer
from attribid.runtime.settings import Settings
from attribid.kernels.taxonomy import CLICK
from attribid.core.types import RawJourney
from attribid.core.validate import Journey, RequestValidator


class CampaignLookup(Bidder, Protocol):
    """What Score needs of the campaigns: bids, and NOT_FOUND for an unknown campaign."""

    def allocation(self, campaign_id: str) -> object: ...


class Tenants(Protocol):
    """Each tenant's campaigns (``attribid.models.campaign.tenants.TenantBooks``)."""

    def of(self, tenant: str) -> CampaignLookup: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """A call let in: when its result stops being useful, and whether the network can make it."""

    expires_at: float  # monotonic seconds; inf = no deadline
    late: bool         # the queue ahead cannot meet the deadline: answer with the fallback


#: a call without a deadline (ScoreStream messages, in-process callers)
UNHURRIED = Admission(float("inf"), False)
#: longest reason a reload reports or logs: a path or error can be as long as a caller likes
MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class ModelReload:
    """What one ``ScoringService.reload`` did.

    >>> ModelReload("v1", "v2", True, "", "/models/attribid.onnx").reloaded
    True
    """

    old_version: str
    #: the version serving afterwards: ``old_version`` when the reload failed
    new_version: str
    reloaded: bool
    #: why the model was not swapped in ("" when it was)
    detail: str
    #: the file loaded, or tried
    model_path: str


@dataclass(slots=True)
class Ticket:
    """One call between ``ScoringService.begin`` and ``finish``."""

    journey: Journey
    book: CampaignLookup
    #: the network's answer, once the batch has run; None when ``scored`` is already known
    future: "asyncio.Future[Scored] | None"
    #: the fallback's answer, given at once (a late call, a full queue)
    scored: Scored | None


class ScoringService:
    def __init__(self, settings: Settings, scorer: Scorer, books: Tenants, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.scorer = scorer
        self.books = books
        self.metrics = metrics
        self._clock = clock
        self._wallclock = wallclock
        self._margin = settings.deadline_margin_ms / 1000.0
        self._reject = settings.shed_with == "reject"
        self.validator = RequestValidator(scorer.channels, settings.max_touchpoints,
                                          scorer.max_len, settings.future_tolerance_s,
                                          max_id_bytes=settings.max_id_bytes)
        self.batcher: Batcher = Batcher(
            scorer.infer_batch, max_batch=settings.max_batch, max_queue=settings.max_queue,
            max_wait_s=settings.max_wait_us / 1e6, on_batch=self._observe_batch, clock=clock)
        #: the file a reload reads when it names none: the served model's
        self.model_path = scorer.model.info.path
        self._reloading = asyncio.Lock()
        self._log = logs.get()

    def _observe_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.inference.observe(seconds)

    def start(self) -> None:
        self.batcher.start()

    def warm(self) -> None:
        """Compile the validation kernels before the first call (the scorer and the campaign
        books warm their own)."""
        now = self._wallclock()
        channels = self.scorer.channels
        raw = RawJourney.of([(channels[i % self.scorer.n_channels], int((now - 3600 + i) * 1000),
                              CLICK, 0.1, 0) for i in range(3)])
        journey = self.validator.validate(raw, now)
        self.scorer.fallback(journey, "warm-up")

    async def reload(self, model_path: str = "") -> ModelReload:
        """Load ``model_path`` ("" = the file the served model came from) into a new session,
        check and warm it off the event loop, and serve it from the next batch on.

        A file that cannot be loaded, or a model with other channels or another journey
        length (``Scorer.check``), is logged ("model reload failed") and the served model
        stays; success logs "model reloaded" with both versions. Reloads run one at a time.
        """
        async with self._reloading:
            path = model_path or self.model_path
            old = self.scorer.model.info.version
            started = self._clock()
            try:
                model = await asyncio.get_running_loop().run_in_executor(
                    None, self._prepare, path)
                self.scorer.swap(model)
            except Exception as exc:  # any failure leaves the served model serving
                detail = _clip(str(exc) or type(exc).__name__)
                self._log.error("model reload failed", extra={
                    "model_path": _clip(path), "model_version": old, "detail": detail})
                return ModelReload(old, old, False, detail, path)
            self.model_path = model.info.path
            self._log.info("model reloaded", extra={
                "old_version": old, "new_version": model.info.version,
                "model_path": _clip(model.info.path),
                "seconds": round(self._clock() - started, 3)})
            return ModelReload(old, model.info.version, True, "", model.info.path)

    def _prepare(self, path: str) -> OnnxModel:
        """Load, check and warm a model (runs in a worker thread, beside the inference thread)."""
        model = load_model(path, self.settings.intra_op_threads,
                           prefer_int8=not self.settings.model_float32)
        self.scorer.prepare(model, self._wallclock())
        return model

    def admit(self, time_left: float | None) -> Admission:
        """Let a call in or turn it away; ``time_left`` is its remaining deadline in seconds.

        Raises TooLate when the deadline has passed, and LoadShed (``--shed-with reject``)
        when inference cannot start in time.
        """
        # Calls that cannot be served in time are turned away before any work on
        # them: past saturation a cheap refusal is what keeps admitted calls fast.
        if time_left is None:
            return UNHURRIED
        if time_left <= 0:
            raise TooLate("", "deadline passed before scoring started")
        late = self.batcher.expected_wait() > time_left - self._margin
        if late and self._reject:
            raise LoadShed("", "server overloaded: inference cannot start before the "
                           "deadline")
        return Admission(self._clock() + time_left - self._margin, late)

    async def score(self, raw: RawJourney, time_left: float | None,
                    tenant: str = OPEN_TENANT) -> Scored:
        """Admit and score one request; ``time_left`` is the caller's remaining deadline in s."""
        return await self.score_admitted(raw, self.admit(time_left), tenant)

    async def score_admitted(self, raw: RawJourney, admission: Admission = UNHURRIED,
                             tenant: str = OPEN_TENANT) -> Scored:
        """Score one request that ``admit`` let in, bidding from ``tenant``'s campaigns."""
        ticket = self.begin(raw, admission, tenant)
        future = ticket.future
        if future is not None:
            try:
                await future
            except Expired:
                pass  # finish answers it
        return self.finish(ticket)

    def begin(self, raw: RawJourney, admission: Admission = UNHURRIED,
              tenant: str = OPEN_TENANT) -> Ticket:
        """The first half of ``score_admitted``, without awaiting: validate, check the
        campaign, and queue the journey for the network (or answer it by the fallback).

        Raises what ``score_admitted`` raises before it waits (InvalidArgument, NotFound,
        LoadShed); once the ticket's future is done, ``finish`` gives the answer.
        """
        book = self.books.of(tenant)
        journey = self.validator.validate(raw, self._wallclock())
        book.allocation(journey.campaign_id)  # NotFound for an unknown campaign
        if admission.late:
            return Ticket(journey, book, None, self.scorer.fallback(journey, "deadline"))
        try:
            future = self.batcher.submit(journey, admission.expires_at)
        except Overloaded as exc:
            if self._reject:
                raise LoadShed("", f"server overloaded: {exc}") from None
            return Ticket(journey, book, None, self.scorer.fallback(journey, "overloaded"))
        self.metrics.queue_depth.set(self.batcher.depth)
        return Ticket(journey, book, future, None)

    def finish(self, ticket: Ticket) -> Scored:
        """The answer of a ticket whose future is done (or that has none): bids included.

        Raises LoadShed (``--shed-with reject``) when the deadline passed in the queue, and
        whatever failed the batch.
        """
        scored = ticket.scored
        if scored is None:
            assert ticket.future is not None
            try:
                scored = ticket.future.result()
            except Expired:
                if self._reject:
                    raise LoadShed("", "server overloaded: inference could not start "
                                   "before the deadline") from None
                scored = self.scorer.fallback(ticket.journey, "deadline")
        if scored.fallback:
            self.metrics.fallbacks.labels(scored.reason).inc()
        self._bid(scored, ticket.book)
        return scored

    def _bid(self, scored: Scored, book: CampaignLookup) -> None:
        j = scored.journey
        bids = np.zeros(self.scorer.n_channels)
        book.bids_into(j.campaign_id, scored.probability, scored.credit, bids)
        scored.bids = bids
        if j.impression_channel >= 0:
            bid = float(bids[j.impression_channel])
            scored.impression_bid = bid if bid >= j.floor_price and bid > 0 else 0.0


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."
