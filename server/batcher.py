"""Adaptive batching: concurrent calls share one inference run, off the event loop.

A call never waits for company when the inference thread is idle: it runs at
once, alone. While a batch runs, new calls queue up, and the next run takes
them all (up to ``max_batch``). So batching adds no latency at low load and
grows with load. ``max_wait_s`` can add a deliberate wait for fuller batches.

With ``inline_when_idle``, a call that arrives alone (its caller knows of no
other call in progress), when nothing runs or waits, and more than ``QUIET_S``
after the last arrival or completion, runs on the caller's
thread: at low load that saves two thread hand-offs (each a wake-up the OS may
delay). Under load calls follow each other closely and take the thread path,
so they still batch and the event loop keeps accepting calls.
The queue is bounded; a call whose deadline the queue cannot meet is resolved
with ``Expired`` so the caller can answer with the fallback instead.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


#: a call this long after the last arrival or completion counts as alone (seconds)
QUIET_S = 200e-6


class Overloaded(Exception):
    """The queue is full."""


class Expired(Exception):
    """The call's deadline passed (or could not be met) before inference started."""


@dataclass(slots=True)
class _Pending(Generic[Item, Result]):
    item: Item
    future: "asyncio.Future[Result]"
    expires_at: float  # monotonic seconds; inf = no deadline


@dataclass
class BatchStats:
    #: exponentially weighted seconds per batch run, seeded by warm-up
    batch_seconds: float = 1e-3
    runs: int = 0
    last_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=256))

    def observe(self, seconds: float, size: int) -> None:
        self.batch_seconds += 0.1 * (seconds - self.batch_seconds)
        self.runs += 1
        self.last_sizes.append(size)


class Batcher(Generic[Item, Result]):
    """``await batcher.submit(item, expires_at)`` -> the result of ``process([... item ...])``."""

    def __init__(self, process: Callable[[Sequence[Item]], list[Result]], *, max_batch: int,
                 max_queue: int, max_wait_s: float = 0.0,
                 on_batch: Callable[[int, float], None] | None = None,
                 inline_when_idle: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._process = process
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._clock = clock
        self._queue: deque[_Pending[Item, Result]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="attribid-inference")
        self._busy = False
        self.inline_when_idle = inline_when_idle
        self._last_event = -float("inf")
        self.stats = BatchStats()

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="attribid-batcher")

    @property
    def depth(self) -> int:
        return len(self._queue)

    def expected_wait(self) -> float:
        """Seconds a call submitted now should expect until its result."""
        runs_ahead = len(self._queue) // self.max_batch + (1 if self._busy else 0)
        return (runs_ahead + 1) * self.stats.batch_seconds

    def submit(self, item: Item, expires_at: float = float("inf"),
               alone: bool = True) -> "asyncio.Future[Result]":
        """Queue ``item``; ``alone`` says the caller knows of no other call in progress."""
        if self._wakeup is None:
            raise RuntimeError("batcher not started")
        now = self._clock()
        quiet = now - self._last_event >= QUIET_S
        self._last_event = now
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        if self.inline_when_idle and alone and quiet and not self._busy and not self._queue:
            self._run_inline(item, future)
            return future
        if len(self._queue) >= self.max_queue:
            raise Overloaded(f"{len(self._queue)} calls already queued")
        self._queue.append(_Pending(item, future, expires_at))
        self._wakeup.set()
        return future

    def _run_inline(self, item: Item, future: "asyncio.Future[Result]") -> None:
        started = self._clock()
        try:
            result = self._process([item])[0]
        except Exception as exc:
            future.set_exception(exc)
            return
        self._last_event = self._clock()
        elapsed = self._last_event - started
        self.stats.observe(elapsed, 1)
        if self._on_batch is not None:
            self._on_batch(1, elapsed)
        future.set_result(result)

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.max_wait_s and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            if not batch:
                continue
            self._busy = True
            started = self._clock()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._process, [p.item for p in batch])
            except Exception as exc:  # a failed run fails its calls, not the server
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            finally:
                self._busy = False
            self._last_event = self._clock()
            elapsed = self._last_event - started
            self.stats.observe(elapsed, len(batch))
            if self._on_batch is not None:
                self._on_batch(len(batch), elapsed)
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)

    def _take(self) -> list[_Pending[Item, Result]]:
        """Up to max_batch live calls; calls that cannot finish in time get Expired."""
        now = self._clock()
        horizon = now + self.stats.batch_seconds
        batch: list[_Pending[Item, Result]] = []
        while self._queue and len(batch) < self.max_batch:
            p = self._queue.popleft()
            if p.future.done():  # the caller gave up (cancelled)
                continue
            if p.expires_at < horizon:
                p.future.set_exception(Expired())
                continue
            batch.append(p)
        return batch

    async def close(self, timeout: float) -> int:
        """Finish queued calls (up to ``timeout`` s), then stop; returns calls cancelled."""
        deadline = self._clock() + timeout
        while (self._queue or self._busy) and self._clock() < deadline:
            await asyncio.sleep(0.005)
        cancelled = 0
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.cancel()
                cancelled += 1
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
        return cancelled
