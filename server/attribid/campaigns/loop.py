"""The allocation loop at serve time: re-solve campaigns in the background."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the server binds before it pays for importing the kernels
    from attribid.models.campaign.book import CampaignBook
    from attribid.models.campaign.tenants import TenantBooks


async def run_allocation_loop(book: "CampaignBook | TenantBooks") -> None:
    """Re-solve campaigns with enough new evidence (or any, once a period has passed)."""
    tick = min(book.resolve_period_s, 0.25)
    loop = asyncio.get_running_loop()
    # Fits and solves take milliseconds: they run in a thread of their own so the event
    # loop (and Score's latency) never waits for them; results are swapped in whole.
    with ThreadPoolExecutor(1, thread_name_prefix="attribid-allocation") as pool:
        while True:
            await asyncio.sleep(tick)
            await loop.run_in_executor(pool, book.step)
