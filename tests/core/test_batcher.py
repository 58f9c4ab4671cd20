"""The batcher with a real processing function (a recorder of batch sizes)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from attribid.core.batcher import Batcher, Expired, Overloaded


def run(coro):
    return asyncio.run(coro)


class Recorder:
    def __init__(self, seconds=0.0):
        self.sizes: list[int] = []
        self.seconds = seconds
        self.thread_names: set[str] = set()

    def __call__(self, items):
        self.sizes.append(len(items))
        self.thread_names.add(threading.current_thread().name)
        time.sleep(self.seconds)
        return [x * 2 for x in items]


def test_alone_runs_alone_and_concurrent_calls_share_batches():
    async def main():
        rec = Recorder(seconds=0.01)
        b = Batcher(rec, max_batch=8, max_queue=100)
        b.start()
        assert await b.submit(1) == 2
        results = await asyncio.gather(*(b.submit(i) for i in range(20)))
        await b.close(1.0)
        return rec, results

    rec, results = run(main())
    assert results == [i * 2 for i in range(20)]
    assert rec.sizes[0] == 1
    assert max(rec.sizes) == 8 and len(rec.sizes) < 21  # later calls joined batches
    assert all(name.startswith("attribid-inference") for name in rec.thread_names)


def test_full_queue_raises_overloaded():
    async def main():
        b = Batcher(Recorder(seconds=0.05), max_batch=1, max_queue=3)
        b.start()
        futures = [b.submit(i) for i in range(4)]  # one runs at once, three wait
        assert b.depth == 3
        with pytest.raises(Overloaded):
            b.submit(99)
        await asyncio.gather(*futures)
        await b.close(1.0)

    run(main())


def test_calls_that_cannot_make_their_deadline_expire():
    async def main():
        rec = Recorder(seconds=0.05)
        b = Batcher(rec, max_batch=1, max_queue=10)
        b.start()
        first = b.submit(1)
        late = b.submit(2, expires_at=time.monotonic() + 0.01)
        assert await first == 2
        with pytest.raises(Expired):
            await late
        await b.close(1.0)
        return rec

    assert run(main()).sizes == [1]


def test_a_failing_run_fails_its_calls_and_the_batcher_goes_on():
    calls = []

    def process(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return items

    async def main():
        b = Batcher(process, max_batch=4, max_queue=10)
        b.start()
        with pytest.raises(RuntimeError):
            await b.submit(1)
        assert await b.submit(5) == 5
        await b.close(1.0)

    run(main())


def test_max_wait_holds_a_lone_call_for_company_and_a_full_batch_goes_at_once():
    async def main():
        rec = Recorder()
        b = Batcher(rec, max_batch=4, max_queue=100, max_wait_s=0.05)
        b.start()
        first = await asyncio.gather(*(b.submit(i) for i in range(3)))
        await b.close(1.0)
        # A wait far longer than this test: a full batch that waited would never finish.
        full_rec = Recorder()
        full = Batcher(full_rec, max_batch=4, max_queue=100, max_wait_s=3600.0)
        full.start()
        second = await asyncio.wait_for(asyncio.gather(*(full.submit(i) for i in range(4))), 60)
        await full.close(1.0)
        return rec, full_rec, first, second

    rec, full_rec, first, second = run(main())
    assert first == [0, 2, 4] and second == [0, 2, 4, 6]
    # Without the wait the first call would have run alone, as soon as it came.
    assert rec.sizes == [3]  # three calls waited out max_wait together
    assert full_rec.sizes == [4]  # a full batch did not wait


class LeapingClock:
    """Monotonic seconds that leap 1000 s at every read: each deadline passes at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1000.0
        return self.now


def test_close_gives_the_inference_thread_only_what_is_left_of_its_timeout():
    release = threading.Event()

    def stuck(items):
        release.wait()  # a batch that outlives the timeout
        return items

    async def main():
        b = Batcher(stuck, max_batch=1, max_queue=10, clock=LeapingClock())
        b.start()
        running, queued = b.submit(1), b.submit(2)
        # The wait for the queue used up the hour; the join must not get a fresh one.
        cancelled = await asyncio.wait_for(b.close(timeout=3600.0), 60)
        return running, queued, cancelled

    try:
        running, queued, cancelled = run(main())
    finally:
        release.set()
    assert cancelled == 1 and queued.cancelled()
    assert not running.done()  # abandoned, not waited for
