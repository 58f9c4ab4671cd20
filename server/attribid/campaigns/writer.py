"""Campaign writes at serve time: one thread of their own, in the order they arrive.

ReportOutcomes and ConfigureCampaign convert, validate and update a campaign's model:
milliseconds of work that would stall every Score call waiting on the event loop. They run
here instead, one at a time, so two writes to one campaign are applied in the order their
calls arrived. The GIL is still shared with the loop, which is why a report's rows are
also bounded in number and converted in one pass (``attribid.api.convert.outcome_columns``).
"""
from __future__ import annotations

import asyncio
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

    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self.max_queued = max_queued
        # Counted on the event loop only (run() is called there): no lock needed.
        self._queued = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="attribid-campaign-writes")

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
