"""How much of the server ScoreStream messages may take: what is left once other calls are served.

A stream's caller can keep the server busy however little it reads: grpcio's clients grow
their receive windows as data arrives, so the answers to a stream nobody reads keep being
taken in, a little more every second, and a few hundred such streams ask for more than the
server can score. Every stream message being scored holds a slot (a few batches' worth over
all streams, so Score never queues behind more), and is let in at a rate that follows the
event loop's lag: halved in a tick whose timer fired late while the server was busy, since a
late loop is what every other call waits on, and raised by a twentieth in any other tick. A
timer late while the server's threads were not running (the machine busy with other work) is
not the streams' doing: slowing them then would only leave the server idle.

Within one stream, ``Pipe`` carries its messages from the reader to the writer in order,
a window of them at most unanswered.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Callable, Generic, TypeVar

#: how often the loop's lag is looked at, and the lag past which streams are slowed
TICK_S = 0.005
MAX_LAG_S = 0.001
#: a late tick slows streams when the server's threads used at least this share of its time
BUSY_SHARE = 0.8
#: stream messages a second over all streams: the least they are held to, the most, and
#: where the rate starts (and starts again after a second without a message waiting)
MIN_RATE = 100.0
MAX_RATE = 100_000.0
START_RATE = 1000.0

T = TypeVar("T")


class StreamShare:
    """Lets stream messages in to be scored (on the event loop): ``admit()`` at no cost while a
    slot and a token are free, else ``await wait()``; then ``hold(future)`` keeps the slot
    until the message's future is done (``hold(None)``: it needed none after all).

    A slot is freed by its future being done, not by a release call: the batcher resolves
    futures oldest first, so the held ones are swept from the front, and only a message that
    waits asks to be woken (by the oldest future), so a message costs no callback of its own.

    >>> async def main():
    ...     share = StreamShare(slots=2)
    ...     done = asyncio.get_running_loop().create_future()
    ...     admitted = share.admit(), share.admit(), share.admit()
    ...     share.hold(done)
    ...     share.hold(None)
    ...     held = share.busy
    ...     done.set_result(None)
    ...     share.close()
    ...     return admitted, held, share.busy
    >>> asyncio.run(main())
    ((True, True, False), 1, 0)
    """

    def __init__(self, slots: int, *, clock: Callable[[], float] = time.monotonic,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.slots = slots
        #: messages let in per second now
        self.rate = START_RATE
        self._tokens = float(slots)
        self._waiting: deque[asyncio.Future[None]] = deque()
        #: futures of the messages being scored, oldest first
        self._held: deque[asyncio.Future[Any]] = deque()
        #: messages let in whose future is not held yet
        self._reserved = 0
        #: the oldest held future will wake the waiting when it is done
        self._armed = False
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._ticker: asyncio.Task[None] | None = None

    @property
    def busy(self) -> int:
        """Slots taken: messages let in and not yet scored."""
        self._room()
        return len(self._held) + self._reserved

    def _room(self) -> bool:
        held = self._held
        while held and held[0].done():
            held.popleft()
        return len(held) + self._reserved < self.slots

    def admit(self) -> bool:
        """Take a slot and a token now, if both are free and nobody is waiting for them."""
        ticker = self._ticker
        if ticker is None or ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick(),
                                                                  name="attribid-stream-share")
        if self._waiting or self._tokens < 1.0 or not self._room():
            return False
        self._tokens -= 1.0
        self._reserved += 1
        return True

    async def wait(self) -> None:
        """Wait for a slot and a token (in turn with the other waiting messages)."""
        admitted = asyncio.get_running_loop().create_future()
        self._waiting.append(admitted)
        self._admit_waiting()
        try:
            await admitted
        except BaseException:
            if admitted.done() and not admitted.cancelled():  # let in, but gone: its slot back
                self._reserved -= 1
                self._admit_waiting()
            raise

    def hold(self, future: "asyncio.Future[Any] | None") -> None:
        """The slot of a message let in is held until ``future`` is done (None: freed now)."""
        self._reserved -= 1
        if future is not None and not future.done():
            self._held.append(future)
        if self._waiting:
            self._admit_waiting()

    def _admit_waiting(self) -> None:
        waiting = self._waiting
        while waiting and self._tokens >= 1.0 and self._room():
            admitted = waiting.popleft()
            if not admitted.done():  # a caller gone while waiting takes no token
                admitted.set_result(None)
                self._tokens -= 1.0
                self._reserved += 1
        if waiting and not self._armed and self._held and not self._room():
            self._armed = True
            self._held[0].add_done_callback(self._freed)

    def _freed(self, _future: object) -> None:
        self._armed = False
        self._admit_waiting()

    async def _tick(self) -> None:
        """Refill and steer the rate; ends once nothing has waited for a while."""
        last, last_cpu = self._clock(), self._cpu_clock()
        idle = 0
        while idle < 200:  # a second without a message waiting
            await asyncio.sleep(TICK_S)
            now, cpu = self._clock(), self._cpu_clock()
            elapsed, last = now - last, now
            busy, last_cpu = cpu - last_cpu, cpu
            if elapsed - TICK_S > MAX_LAG_S and busy >= BUSY_SHARE * elapsed:
                self.rate = max(MIN_RATE, self.rate / 2)
            else:
                self.rate = min(MAX_RATE, self.rate * 1.05)
            # a burst of at most one tick's messages, and never fewer than the slots
            self._tokens = min(self._tokens + self.rate * elapsed,
                               max(self.rate * TICK_S, float(self.slots)))
            self._admit_waiting()
            idle = idle + 1 if not self._waiting else 0
        self.rate = START_RATE

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()


class Pipe(Generic[T]):
    """A stream's messages from its reader to its writer, in order, at most ``window``
    unanswered: the reader takes ``room()`` before it reads a message and ``put``s what it
    made of it; the writer ``get``s them and calls ``answered()`` once each answer is written.

    Each side waits on a future of its own only when it has to (no queue, no semaphore).

    >>> async def main():
    ...     pipe = Pipe(window=1)
    ...     await pipe.room()
    ...     pipe.put("a")
    ...     blocked = asyncio.ensure_future(pipe.room())
    ...     await asyncio.sleep(0)
    ...     first = await pipe.get(), blocked.done()
    ...     pipe.answered()
    ...     await blocked
    ...     return first
    >>> asyncio.run(main())
    ('a', False)
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.items: deque[T] = deque()
        self._unanswered = 0
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    async def room(self) -> None:
        while self._unanswered >= self.window:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        self._unanswered += 1

    def put(self, item: T) -> None:
        self.items.append(item)
        writer = self._writer
        if writer is not None and not writer.done():
            writer.set_result(None)

    async def get(self) -> T:
        items = self.items
        while not items:
            self._writer = asyncio.get_running_loop().create_future()
            try:
                await self._writer
            finally:
                self._writer = None
        return items.popleft()

    def answered(self) -> None:
        self._unanswered -= 1
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
