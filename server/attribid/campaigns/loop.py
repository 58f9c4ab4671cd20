"""The allocation loop at serve time: re-solve campaigns in the background, supervised.

A campaign whose re-solve fails is logged once (when it turns stale, and again when it
recovers), counted in ``attribid_resolve_failures_total{campaign}`` at every failed attempt,
and keeps its last allocation marked stale; the other campaigns go on. A pass that fails as
a whole is logged (once, until a pass succeeds again) and counted in
``attribid_allocation_loop_errors_total``; the loop goes on at the next tick. Anything else
that ends the loop's body is logged, counted and the body started again: only
cancellation (the server stopping) ends the loop.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

from attribid.models.errors import MAX_ECHO, RequestError
from attribid.runtime import logs
from attribid.runtime.metrics import Metrics, campaign_label
from attribid.runtime.settings import Settings

if TYPE_CHECKING:  # the server binds before it pays for importing the kernels
    from attribid.models.campaign.book import BookLimits

#: seconds before the loop's body starts again after it ended unexpectedly
RESTART_DELAY_S = 1.0


class Steppable(Protocol):
    """A ``CampaignBook`` or anything that steps several books like one."""

    @property
    def resolve_period_s(self) -> float: ...

    def step(self, *, on_failure: Callable[[str, Exception, bool], None] | None = None,
             on_recovery: Callable[[str], None] | None = None) -> int: ...


def book_limits(settings: Settings) -> "BookLimits":
    """The limits every campaign book of the server is built with, from the settings."""
    from attribid.models.campaign.book import BookLimits

    return BookLimits(max_campaigns=settings.max_campaigns, max_id_bytes=settings.max_id_bytes,
                      max_batch_ids=settings.max_batch_ids,
                      batch_id_retention_s=settings.batch_id_retention_s,
                      max_report_rows=settings.max_report_rows,
                      max_report_conversions=settings.max_report_conversions,
                      attribution_window=settings.attribution_window)


class _Events:
    """What one pass reported from the allocation thread, handled afterwards on the loop's
    thread (metrics are updated from that thread only: attribid.runtime.metrics)."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, Exception, bool]] = []
        self.recovered: list[str] = []

    def failure(self, campaign_id: str, exc: Exception, first: bool) -> None:
        self.failures.append((campaign_id, exc, first))

    def recovery(self, campaign_id: str) -> None:
        self.recovered.append(campaign_id)


async def run_allocation_loop(book: Steppable, metrics: Metrics | None = None, *,
                              restart_delay_s: float = RESTART_DELAY_S,
                              on_pass: Callable[[], Awaitable[None]] | None = None) -> None:
    """Re-solve campaigns with enough new evidence (or any, once a period has passed).

    Runs until cancelled; see the module docstring for what it does with failures.
    ``on_pass()`` is awaited on the loop's thread after every pass.
    """
    log = logs.get()
    while True:
        try:
            await _resolve_forever(book, metrics, on_pass)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("allocation loop ended unexpectedly; restarting", exc_info=exc,
                      extra={"restart_in_s": restart_delay_s})
            if metrics is not None:
                metrics.loop_errors.inc()
            await asyncio.sleep(restart_delay_s)


async def _resolve_forever(book: Steppable, metrics: Metrics | None,
                           on_pass: Callable[[], Awaitable[None]] | None) -> None:
    tick = min(book.resolve_period_s, 0.25)
    loop = asyncio.get_running_loop()
    log = logs.get()
    failing = False  # the last pass failed as a whole: logged once until one succeeds
    # Fits and solves take milliseconds: they run in a thread of their own so the event
    # loop (and Score's latency) never waits for them; results are swapped in whole.
    with ThreadPoolExecutor(1, thread_name_prefix="attribid-allocation") as pool:
        while True:
            await asyncio.sleep(tick)
            events = _Events()
            step = functools.partial(book.step, on_failure=events.failure,
                                     on_recovery=events.recovery)
            try:
                await loop.run_in_executor(pool, step)
            except Exception as exc:
                if metrics is not None:
                    metrics.loop_errors.inc()
                if not failing:
                    log.error("allocation pass failed", exc_info=exc)
                failing = True
            else:
                if failing:
                    log.info("allocation pass recovered")
                failing = False
            _report(events, metrics, log)
            if on_pass is not None:
                await on_pass()


def _report(events: _Events, metrics: Metrics | None, log: "logs.Logger") -> None:
    for campaign_id, exc, first in events.failures:
        if metrics is not None:
            metrics.resolve_failures.labels(campaign_label(campaign_id)).inc()
        if first:
            # A refusal from the model names its field; anything else is a fault: traceback.
            expected = isinstance(exc, RequestError)
            log.error("re-solve failed; allocation stale", exc_info=None if expected else exc,
                      extra={"campaign_id": logs.clip(campaign_id, MAX_ECHO),
                             "error": type(exc).__name__, "detail": logs.clip(str(exc))})
    for campaign_id in events.recovered:
        log.info("re-solve recovered", extra={"campaign_id": logs.clip(campaign_id, MAX_ECHO)})
