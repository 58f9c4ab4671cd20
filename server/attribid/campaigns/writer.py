"""Campaign writes at serve time: one thread of their own, in the order they arrive.

ReportOutcomes and ConfigureCampaign convert, validate and update a campaign's model:
milliseconds of work that would stall every Score call waiting on the event loop. They run
here instead, one at a time, so two writes to one campaign are applied in the order their
calls arrived. The GIL is still shared with the loop, which is why a report's rows are
also bounded in number and converted in one pass (``attribid.api.convert.outcome_columns``).

The thread runs at a lower scheduling priority than the rest of the server (``niceness``
steps): crediting a batch of conversions runs the network in it, and on a busy core Score's
event loop and inference thread should get the CPU first; writes are not waited on by a
bidder's impression.
"""
from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from attribid.models.errors import ResourceExhausted

T = TypeVar("T")

#: writes waiting for the thread beyond which new ones are refused (RESOURCE_EXHAUSTED):
#: each holds its request, up to a whole message, until it runs
MAX_QUEUED = 64


class CampaignWriter:
    """``await writer.run(fn, *args)`` runs ``fn(*args)`` in the writer thread, in call order.

    >>> async def main():
    ...     writer = CampaignWriter()
    ...     try:
    ...         return await asyncio.gather(*(writer.run(pow, 2, n) for n in range(4)))
    ...     finally:
    ...         writer.close()
    >>> asyncio.run(main())
    [1, 2, 4, 8]
    """

    def __init__(self, max_queued: int = MAX_QUEUED, niceness: int = 0) -> None:
        self.max_queued = max_queued
        # Counted on the event loop only (run() is called there): no lock needed.
        self._queued = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="attribid-campaign-writes",
                                        initializer=_lower_priority, initargs=(niceness,))

    @property
    def queued(self) -> int:
        """Writes submitted and not yet finished (the running one included)."""
        return self._queued

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the writer thread; its result, or what it raised.

        Cancelling the caller (its deadline passed) drops a write that has not started;
        one that has started is finished, as a write the caller retries is idempotent.
        """
        if self._queued >= self.max_queued:
            raise ResourceExhausted("", f"{self._queued} campaign writes queued, at most "
                                    f"{self.max_queued}: retry later")
        self._queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._queued -= 1

    def close(self) -> None:
        """Drop writes that have not started; the running one finishes in its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority(steps: int) -> None:
    """Make the calling thread ``steps`` nicer than the process (Linux: a thread's own nice
    value; raising it needs no privilege). Elsewhere, or refused, the thread runs as is."""
    if steps <= 0:
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except (AttributeError, OSError):  # pragma: no cover - no per-thread priorities here
        pass
