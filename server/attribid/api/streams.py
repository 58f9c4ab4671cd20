"""How much of the server ScoreStream messages may take: what is left once other calls are served.

A stream's caller can keep the server busy however little it reads: grpcio's clients grow
their receive windows as data arrives, so the answers to a stream nobody reads keep being
taken in, a little more every second, and a few hundred such streams ask for more than the
server can score. Every stream message being scored holds a slot (a few batches' worth over
all streams, so Score never queues behind more), and is let in at a rate that follows the
event loop's lag: halved in a tick whose timer fired late, since a late loop is what every
other call waits on, and raised by a twentieth in a tick that was on time.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable

#: how often the loop's lag is looked at, and the lag past which streams are slowed
TICK_S = 0.005
MAX_LAG_S = 0.001
#: stream messages a second over all streams: the least they are held to, the most, and
#: where the rate starts (and starts again after a second without a message waiting)
MIN_RATE = 100.0
MAX_RATE = 100_000.0
START_RATE = 1000.0


class StreamShare:
    """``async with share:`` around the scoring of one stream message (on the event loop).

    >>> async def main():
    ...     share = StreamShare(slots=2)
    ...     async with share:
    ...         inside = share.busy
    ...     share.close()
    ...     return inside, share.busy
    >>> asyncio.run(main())
    (1, 0)
    """

    def __init__(self, slots: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.slots = slots
        #: messages let in per second now
        self.rate = START_RATE
        self._tokens = float(slots)
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._clock = clock
        self._ticker: asyncio.Task[None] | None = None
        self.busy = 0

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            await self._admitted()
        except BaseException:
            self._slots.release()
            raise
        self.busy += 1

    async def __aexit__(self, *exc: object) -> None:
        self.busy -= 1
        self._slots.release()

    async def _admitted(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick(),
                                                                  name="attribid-stream-share")
        if self._tokens >= 1.0 and not self._waiting:
            self._tokens -= 1.0
            return
        admitted = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        await admitted

    async def _tick(self) -> None:
        """Refill and steer the rate; ends once nothing has waited for a while."""
        last = self._clock()
        idle = 0
        while idle < 200:  # a second without a message waiting
            await asyncio.sleep(TICK_S)
            now = self._clock()
            elapsed, last = now - last, now
            if elapsed - TICK_S > MAX_LAG_S:
                self.rate = max(MIN_RATE, self.rate / 2)
            else:
                self.rate = min(MAX_RATE, self.rate * 1.05)
            # a burst of at most one tick's messages, and never fewer than the slots
            self._tokens = min(self._tokens + self.rate * elapsed,
                               max(self.rate * TICK_S, float(self.slots)))
            while self._waiting and self._tokens >= 1.0:
                admitted = self._waiting.popleft()
                if not admitted.done():  # a caller gone while waiting takes no token
                    admitted.set_result(None)
                    self._tokens -= 1.0
            idle = idle + 1 if not self._waiting else 0
        self.rate = START_RATE

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
