"""Campaign books kept in step with a store: the closed loop's state, shared and durable.

Every change to a campaign goes through the store's log and comes back from it:

- a write (ConfigureCampaign, ReportOutcomes) is checked against this process's books
  first, so what would be refused is refused before anything is written; then appended to
  the store (the batch id's idempotency decided there, atomically with the append); then
  this process applies the log up to it and answers. Nothing is acknowledged that the store
  has not committed.
- every process applies the log in order (``sync``: after each of its own writes and a few
  times a second from the allocation loop), so every worker and replica holds the same
  campaigns, outcomes and spend; a process that starts replays the whole log before it
  serves (``recover``).
- re-solving is the job of the one process holding the store's lease: it publishes each
  allocation to the store, which gives it the campaign's next version; every process
  (the publisher included) puts it in force when it reads it from the log. A leader that
  dies stops renewing its lease, and another process takes over once it expires.

Score never waits on any of this: it reads the books' current arrays, swapped in whole.
Events carry what applying them needs (a report's period end and the pacing it was
delivered at, a configuration with its defaults filled in), so applying the log gives the
same state in every process and after any restart.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import orjson

from attribid.models.campaign import model as cm
from attribid.models.campaign.book import (AllocationSnapshot, CampaignBook, CampaignSpec,
                                           ChannelSpec, OutcomeColumns, OutcomeRow,
                                           PreparedConversions, PreparedReport, Publish)
from attribid.models.campaign.tenants import TenantBooks, qualified
from attribid.models.errors import MAX_ECHO, InvalidArgument, NotFound, RequestError, Unavailable
from attribid.runtime import logs
from attribid.state.store import (ALLOCATION, CONFIGURE, CONVERSIONS, OUTCOMES, Event, Store,
                                  StoreUnavailable, holder_id)

#: events read from the store at once while applying the log
READ_BATCH = 2000
#: seconds between passes that drop expired idempotency keys from the store
FORGET_EVERY_S = 60.0


@dataclass
class StateStatus:
    """How the replica stands, for metrics and health (read from another thread: plain values)."""

    available: bool = True
    leader: bool = False
    applied: int = 0
    #: events of the log that could not be applied (logged; their campaign is marked stale)
    apply_failures: int = 0


class CampaignState:
    """Every tenant's campaign books, kept in step with ``store``.

    >>> from attribid.state.memory import MemoryStore
    >>> state = CampaignState(MemoryStore(), TenantBooks(("search", "email")))
    >>> state.recover()
    0
    >>> state.report("default", "", "b1", [OutcomeRow("search", 5.0, 1.0, 40.0, 100.0)], None)
    (False, 1, 1)
    >>> state.report("default", "", "b1", [OutcomeRow("search", 5.0, 1.0, 40.0, 100.0)], None)
    (True, 0, 1)
    """

    def __init__(self, store: Store, books: TenantBooks, *, clock: Callable[[], float] = time.time,
                 batch_id_retention_s: float = 7 * 24 * 3600.0, max_batch_ids: int = 1_000_000,
                 lease_s: float = 10.0) -> None:
        self.store = store
        self.books = books
        self.resolve_period_s = books.resolve_period_s
        self.retention_s = float(batch_id_retention_s)
        self.max_batch_ids = int(max_batch_ids)
        self.lease_s = float(lease_s)
        self.holder = holder_id()
        self.status = StateStatus()
        self._clock = clock
        self._apply = threading.RLock()  # one applier at a time, in log order
        self._availability = threading.Lock()  # the store's comings and goings, logged once each
        self._forgot_at = 0.0
        self._lease_at = -math.inf  # monotonic time of the last lease attempt
        self._log = logs.get()
        #: errors of applying this process's own events, by sequence number (its writer raises them)
        self._own_failures: dict[int, RequestError] = {}

    # -- the log -------------------------------------------------------------------------
    def recover(self) -> int:
        """Apply the whole log (before serving); events applied. Each tenant's default
        campaign is recorded in the store the first time the store sees the tenant write."""
        return self.sync()

    def sync(self) -> int:
        """Apply every event this process has not applied yet; how many."""
        done = 0
        with self._apply:
            while True:
                events = self.store.read(self.status.applied, READ_BATCH)
                for event in events:
                    self._apply_event(event)
                    self.status.applied = event.seq
                done += len(events)
                if len(events) < READ_BATCH:
                    return done

    def _apply_event(self, event: Event) -> None:
        book = self.books.of(event.tenant)
        try:
            body = orjson.loads(event.payload)
            if event.kind == CONFIGURE:
                book.apply_configure(_spec(body), event.version, event.seq)
            elif event.kind == OUTCOMES:
                book.apply_report(_prepared(book, event.campaign_id, body), event.seq)
            elif event.kind == CONVERSIONS:
                book.apply_conversions(_conversions(book, event.campaign_id, body), event.seq)
            elif event.kind == ALLOCATION:
                book.install(event.campaign_id, _solution(book, body), event.version,
                             int(body["spec_seq"]), int(body["evidence_seq"]))
        except Exception as exc:  # one bad event must not stop the log: log it, mark it
            self.status.apply_failures += 1
            if isinstance(exc, RequestError):
                self._own_failures[event.seq] = exc
            book.mark_stale(event.campaign_id, exc)
            self._log.error("stored campaign event not applied; campaign stale", extra={
                "campaign_id": logs.clip(qualified(event.tenant, event.campaign_id), MAX_ECHO),
                "seq": event.seq, "kind": event.kind, "error": type(exc).__name__,
                "detail": logs.clip(str(exc))})

    def _applied_own(self, seq: int) -> None:
        """Apply the log through ``seq`` (this process's write); raise what applying it raised."""
        # Under the applier's lock: the allocation loop's thread may apply this very event
        # between a check and a read, and an empty read would then look like a lost event.
        with self._apply:
            while self.status.applied < seq:
                if self.sync() == 0:  # pragma: no cover - the store lost an acknowledged event
                    raise Unavailable("", f"campaign store event {seq} not readable yet: retry")
            exc = self._own_failures.pop(seq, None)
            self._own_failures.clear()
        if exc is not None:
            raise exc

    # -- writes (the writer thread) ------------------------------------------------------
    def _book(self, tenant: str) -> CampaignBook:
        book = self.books.of(tenant)
        if book.spec_seq("") == 0:
            # The tenant's default campaign, created in memory with its book: recorded once,
            # so its flight and spend survive restarts and agree across processes.
            self._append(CONFIGURE, tenant, "", _spec_payload(book.default_spec()))
        return book

    def _append(self, kind: str, tenant: str, campaign_id: str, payload: bytes,
                batch_id: str = "") -> tuple[int, bool]:
        if not self.status.available:
            # Refused at once while the store is known to be away (each attempt would wait
            # out a timeout); the allocation loop's next pass that reaches it lifts this.
            raise Unavailable("", f"campaign store {self.store.url} unavailable: retry with "
                              "the same batch id")
        # Batch ids are keyed by kind: an outcome batch and a conversion batch may share one.
        key = f"{kind}:{batch_id}" if batch_id else ""
        try:
            done = self.store.append(kind, tenant, campaign_id, payload, batch_id=key,
                                     at=self._clock(), retention_s=self.retention_s)
            if not done.duplicate:
                self._applied_own(done.seq)
            else:
                self.sync()
        except StoreUnavailable as exc:
            self._away(exc)
            # A timed-out write may still land: the batch id makes the retry harmless.
            raise Unavailable("", f"campaign store unavailable ({logs.clip(str(exc))}): "
                              "retry with the same batch id") from None
        self._back()
        return done.seq, done.duplicate

    def configure(self, tenant: str, spec: CampaignSpec) -> AllocationSnapshot:
        """Create or replace a campaign, through the store."""
        book = self._book(tenant)
        prepared = book.prepare_configure(spec)
        self._append(CONFIGURE, tenant, prepared.campaign_id, _spec_payload(prepared))
        return book.allocation(prepared.campaign_id)

    def report(self, tenant: str, campaign_id: str, batch_id: str,
               rows: Sequence[OutcomeRow] | OutcomeColumns,
               period_end: float | None) -> tuple[bool, int, int]:
        """Add one batch of outcomes, through the store; (duplicate, accepted rows, version)."""
        book = self._book(tenant)
        try:
            prepared = book.prepare_report(campaign_id, batch_id, rows, period_end)
        except NotFound:
            self._catch_up()  # configured through another process moments ago?
            prepared = book.prepare_report(campaign_id, batch_id, rows, period_end)
        _, duplicate = self._append(OUTCOMES, tenant, campaign_id,
                                    _report_payload(book, prepared), batch_id)
        version = book.allocation(campaign_id).version
        return (True, 0, version) if duplicate else (False, len(prepared.rows), version)

    def check_conversions(self, tenant: str, campaign_id: str, batch_id: str, count: int) -> str:
        """``CampaignBook.check_conversions``, an unknown campaign looked for in the store
        first: the attribution to credit the conversions by."""
        book = self._book(tenant)
        try:
            return book.check_conversions(campaign_id, batch_id, count)
        except NotFound:
            self._catch_up()
            return book.check_conversions(campaign_id, batch_id, count)

    def conversions(self, tenant: str, campaign_id: str, batch_id: str, at: np.ndarray,
                    value: np.ndarray, credit: np.ndarray, paths: Sequence[np.ndarray] = (),
                    idle: Sequence[np.ndarray] = ()) -> tuple[bool, int, int]:
        """Add credited conversions (and, for the window attributions, the journeys that
        join the campaign's window), through the store; (duplicate, accepted, version)."""
        book = self._book(tenant)
        prepared = book.prepare_conversions(campaign_id, batch_id, at, value, credit, paths,
                                            idle)
        _, duplicate = self._append(CONVERSIONS, tenant, campaign_id,
                                    _conversions_payload(book, prepared), batch_id)
        version = book.allocation(campaign_id).version
        return (True, 0, version) if duplicate else (False, int(prepared.at.shape[0]), version)

    def allocation(self, tenant: str, campaign_id: str) -> AllocationSnapshot:
        """The campaign's allocation; an unknown campaign is looked for in the store first."""
        book = self.books.of(tenant)
        try:
            return book.allocation(campaign_id)
        except NotFound:
            self._catch_up()
            return book.allocation(campaign_id)

    def _catch_up(self) -> None:
        try:
            self.sync()
        except StoreUnavailable as exc:
            self._away(exc)

    def _away(self, exc: StoreUnavailable) -> None:
        """The store is unreachable: logged once, whichever thread finds out first."""
        with self._availability:
            if self.status.available:
                self._log.error("campaign store unavailable; serving from the local copy",
                                extra={"state": self.store.url, "detail": logs.clip(str(exc))})
            self.status.available = False

    def _back(self) -> None:
        with self._availability:
            if not self.status.available:
                self._log.info("campaign store available again",
                               extra={"state": self.store.url, "applied": self.status.applied})
            self.status.available = True

    # -- the allocation loop (its thread) ------------------------------------------------
    def step(self, *, on_failure: Callable[[str, Exception, bool], None] | None = None,
             on_recovery: Callable[[str], None] | None = None) -> int:
        """Apply the log, take or renew the lease, and (holding it) re-solve what is due."""
        try:
            self.sync()
            now = time.monotonic()
            # The lease is a write (an fsync with SQLite): taken or renewed a few times per
            # lease period, not on every pass.
            if now - self._lease_at >= self.lease_s / 4:
                self.status.leader = self.store.acquire_lease(self.holder, self.lease_s)
                self._lease_at = now
            now = self._clock()
            if self.status.leader and now - self._forgot_at >= FORGET_EVERY_S:
                self._forgot_at = now
                self.store.forget_batches(now - self.retention_s, self.max_batch_ids)
        except StoreUnavailable as exc:
            self._away(exc)
            self.status.leader = False
            self._lease_at = -math.inf  # try for it again as soon as the store is back
            # Bids keep pacing from the local copy meanwhile.
            return self.books.step(on_failure=on_failure, on_recovery=on_recovery, resolve=False)
        self._back()
        solved = self.books.step(on_failure=on_failure, on_recovery=on_recovery,
                                 resolve=self.status.leader,
                                 publish=self._publisher if self.status.leader else None)
        if solved:
            self.sync()  # what was just published, in force here without waiting a tick
        return solved

    def _publisher(self, tenant: str) -> Publish:
        def publish(campaign_id: str, result: cm.Solution, spec_seq: int,
                    evidence_seq: int) -> object:
            return self.store.publish(tenant, campaign_id,
                                      _solution_payload(self.books.channels, result, spec_seq,
                                                        evidence_seq),
                                      spec_seq=spec_seq, holder=self.holder)
        return publish

    def close(self) -> None:
        """Give up the lease (another process takes over at once) and close the store."""
        try:
            self.store.release_lease(self.holder)
        except StoreUnavailable:
            pass
        self.store.close()


# -- payloads ------------------------------------------------------------------------------
def _spec_payload(spec: CampaignSpec) -> bytes:
    return orjson.dumps(asdict(spec))


def _spec(body: dict[str, Any]) -> CampaignSpec:
    channels = tuple(ChannelSpec(**c) for c in body.pop("channels"))
    return CampaignSpec(channels=channels, **body)


def _report_payload(book: CampaignBook, prepared: PreparedReport) -> bytes:
    names = book.channels
    rows = prepared.rows
    return orjson.dumps({"end": prepared.end, "pace": prepared.pace,
                         "channels": [names[int(i)] for i in rows[:, 0]],
                         "values": rows[:, 1:].tolist()})


def _prepared(book: CampaignBook, campaign_id: str, body: dict[str, Any]) -> PreparedReport:
    index = {c: i for i, c in enumerate(book.channels)}
    channels = body["channels"]
    rows = np.empty((len(channels), 5))
    for i, name in enumerate(channels):
        if name not in index:
            raise InvalidArgument(f"outcomes[{i}].channel", f"channel {name!r} is not served "
                                  "by this model")
        rows[i, 0] = index[name]
    rows[:, 1:] = np.asarray(body["values"], dtype=np.float64).reshape(len(channels), 4)
    end, pace = float(body["end"]), float(body["pace"])
    if not (math.isfinite(end) and math.isfinite(pace)):
        raise InvalidArgument("period_end", "stored report has a non-finite period end or pace")
    return PreparedReport(campaign_id, rows, end, pace)


def _conversions_payload(book: CampaignBook, prepared: PreparedConversions) -> bytes:
    # Only the channels that got credit: a conversion's row is mostly zeros.
    used = np.flatnonzero(prepared.credit.any(axis=0))
    body: dict[str, Any] = {"at": prepared.at.tolist(), "value": prepared.value.tolist(),
                            "channels": [book.channels[int(c)] for c in used],
                            "credit": prepared.credit[:, used].tolist()}
    if prepared.paths or prepared.idle:
        # Paths as codes of the book's channels, named once: the window a restart rebuilds.
        body.update(path_channels=list(book.channels),
                    paths=[p.tolist() for p in prepared.paths],
                    idle=[p.tolist() for p in prepared.idle])
    return orjson.dumps(body)


def _conversions(book: CampaignBook, campaign_id: str, body: dict[str, Any]) -> PreparedConversions:
    index = {c: i for i, c in enumerate(book.channels)}
    at = np.asarray(body["at"], dtype=np.float64)
    value = np.asarray(body["value"], dtype=np.float64)
    credit = np.zeros((at.shape[0], len(book.channels)))
    stored = np.asarray(body["credit"], dtype=np.float64).reshape(at.shape[0], -1)
    for j, name in enumerate(body["channels"]):
        if name not in index:
            raise InvalidArgument("conversions", f"channel {name!r} is not served by this model")
        credit[:, index[name]] = stored[:, j]
    if not (np.isfinite(at).all() and np.isfinite(value).all() and np.isfinite(credit).all()):
        raise InvalidArgument("conversions", "stored conversions are not finite")
    paths: tuple[np.ndarray, ...] = ()
    idle: tuple[np.ndarray, ...] = ()
    if "paths" in body:
        if list(body["path_channels"]) != list(book.channels):
            raise InvalidArgument("conversions", "stored journeys are over other channels "
                                  "than this model's")
        paths = tuple(np.asarray(p, dtype=np.int64) for p in body["paths"])
        idle = tuple(np.asarray(p, dtype=np.int64) for p in body["idle"])
    return PreparedConversions(campaign_id, at, value, credit, paths, idle)


_SCALARS = ("revenue", "acquisitions", "exposure", "cpa", "objective", "solved_at")


def _solution_payload(channels: Sequence[str], result: cm.Solution, spec_seq: int,
                      evidence_seq: int) -> bytes:
    body: dict[str, Any] = {name: getattr(result, name) for name in _SCALARS}
    body.update(channels=list(channels), spend=result.spend.tolist(),
                per_conv=result.per_conv.tolist(), per_imp=result.per_imp.tolist(),
                cpa_dropped=result.cpa_dropped, spec_seq=spec_seq, evidence_seq=evidence_seq)
    return orjson.dumps(body)


def _solution(book: CampaignBook, body: dict[str, Any]) -> cm.Solution:
    if list(body["channels"]) != list(book.channels):
        raise InvalidArgument("channels", "stored allocation is for other channels than this "
                              "model's: kept stale until the next re-solve")
    def array(name: str) -> np.ndarray:
        return np.asarray(body[name], dtype=np.float64)

    def number(name: str) -> float:
        return float(body[name])

    return cm.Solution(spend=array("spend"), revenue=number("revenue"),
                       acquisitions=number("acquisitions"), exposure=number("exposure"),
                       cpa=number("cpa"), objective=number("objective"),
                       solved_at=number("solved_at"), per_conv=array("per_conv"),
                       per_imp=array("per_imp"), cpa_dropped=bool(body["cpa_dropped"]))
