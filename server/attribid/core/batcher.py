"""Adaptive batching: concurrent calls share one inference run, off the event loop.

A call never waits for company when the inference thread is idle: it is
handed over at once, alone. While a batch runs, new calls queue up, and the
next run takes them all (up to ``max_batch``). So batching adds no latency at
low load and grows with load. ``max_wait_s`` can add a deliberate wait for
fuller batches.

The inference thread is our own, fed through a ``SimpleQueue``, and hands a
finished batch back with one ``call_soon_threadsafe``: an executor would add a
concurrent future, an asyncio future and their chaining per batch, all on the
event loop's thread, which is the server's scarcest resource.

Inference never runs on the event loop's thread, even for a lone call at low
load: while onnxruntime ran there, the loop could take up no new call, so calls
stopped overlapping and batching, and throughput from concurrency 8 up fell.
The queue is bounded; a call whose deadline the queue cannot meet is resolved
with ``Expired`` so the caller can answer with the fallback instead.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


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
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._process = process
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._clock = clock
        self._queue: deque[_Pending[Item, Result]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: SimpleQueue[list[_Pending[Item, Result]] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._infer, name="attribid-inference",
                                        daemon=True)
        self._busy = False
        self._waiting: asyncio.TimerHandle | None = None
        self._started = 0.0
        self.stats = BatchStats()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def expected_wait(self) -> float:
        """Seconds a call submitted now should expect until its result."""
        runs_ahead = len(self._queue) // self.max_batch + (1 if self._busy else 0)
        return (runs_ahead + 1) * self.stats.batch_seconds

    def submit(self, item: Item, expires_at: float = float("inf")) -> "asyncio.Future[Result]":
        """Queue ``item``; its future resolves on the event loop's thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("batcher not started")
        if len(self._queue) >= self.max_queue:
            raise Overloaded(f"{len(self._queue)} calls already queued")
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append(_Pending(item, future, expires_at))
        if not self._busy:
            self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """With the thread idle and calls queued: dispatch now, or once ``max_wait_s`` is up."""
        if not self.max_wait_s or len(self._queue) >= self.max_batch:
            self._dispatch()
        elif self._waiting is None:
            self._waiting = loop.call_later(self.max_wait_s, self._dispatch)

    def _dispatch(self) -> None:
        """On the loop: hand the next batch to the inference thread, if any is live."""
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        if self._busy:
            return
        batch = self._take()
        if batch:
            self._busy = True
            self._started = self._clock()
            self._jobs.put(batch)

    def _infer(self) -> None:
        """The inference thread: run each batch, hand it back to the loop."""
        loop = self._loop
        assert loop is not None
        while (batch := self._jobs.get()) is not None:
            try:
                results: list[Result] | BaseException = self._process([p.item for p in batch])
            except Exception as exc:  # a failed run fails its calls, not the server
                results = exc
            try:
                loop.call_soon_threadsafe(self._finish, batch, results)
            except RuntimeError:  # the loop closed under us: nobody is waiting any more
                return

    def _finish(self, batch: list[_Pending[Item, Result]],
                results: "list[Result] | BaseException") -> None:
        """On the loop: resolve a finished batch's futures, then start the next batch."""
        self._busy = False
        elapsed = self._clock() - self._started
        if isinstance(results, BaseException):
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(results)
        else:
            self.stats.observe(elapsed, len(batch))
            if self._on_batch is not None:
                self._on_batch(len(batch), elapsed)
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)
        if self._queue and self._loop is not None:
            self._schedule(self._loop)

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
        """Finish queued calls and stop, all within ``timeout`` s; returns calls cancelled."""
        deadline = self._clock() + timeout
        while (self._queue or self._busy) and self._clock() < deadline:
            await asyncio.sleep(0.005)
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        cancelled = 0
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.cancel()
                cancelled += 1
        if self._thread.is_alive():
            self._jobs.put(None)
            # A batch still running past the deadline is abandoned, not waited for.
            left = max(0.0, deadline - self._clock())
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, left)
        return cancelled
