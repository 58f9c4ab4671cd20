"""Load shedding in the Score core, with the real model, scorer and batcher (no sockets)."""
from __future__ import annotations

import asyncio
import time

import pytest

from attribid.api.convert import score_input
from attribid.core.types import RawJourney
from attribid.runtime.server import _build_core
from attribid.models.errors import LoadShed
from attribid.runtime.metrics import Metrics
from attribid.core.service import ScoringService
from attribid.runtime.settings import Settings
from attribid.v1 import attribution_pb2 as pb


@pytest.fixture(scope="module")
def core():
    return _build_core(Settings(state="memory://"), Metrics.create())


def request(n: int = 4) -> RawJourney:
    now = time.time()
    return score_input(pb.ScoreRequest(request_id="r", journey=[
        pb.Touchpoint(channel="search", timestamp_ms=int((now - 3600 + i) * 1000),
                      interaction=pb.INTERACTION_CLICK, cost=0.5) for i in range(n)]))


def service(core, **settings) -> ScoringService:
    return ScoringService(Settings(**settings), core.service.scorer, core.books, Metrics.create())


def test_reject_mode_refuses_unread_a_call_that_cannot_be_served_in_time(core):
    async def main():
        # A margin far above the deadlines sent makes the decision deterministic.
        svc = service(core, shed_with="reject", deadline_margin_ms=500)
        svc.start()
        try:
            with pytest.raises(LoadShed, match="before the deadline"):
                await svc.score(score_input(pb.ScoreRequest()), 0.2)  # invalid, and refused before reading
            return await svc.score(request(), 5.0)
        finally:
            await svc.batcher.close(1.0)

    assert not asyncio.run(main()).fallback


def test_fallback_mode_answers_the_fallback_when_the_deadline_is_too_close(core):
    async def main():
        svc = service(core, deadline_margin_ms=500)
        svc.start()
        try:
            return await svc.score(request(), 0.2)
        finally:
            await svc.batcher.close(1.0)

    scored = asyncio.run(main())
    assert scored.fallback and scored.reason == "deadline"
    assert scored.credit.sum() == pytest.approx(1.0)


def test_a_full_queue_is_shed_as_the_mode_says(core):
    async def main():
        out = {}
        for mode in ("fallback", "reject"):
            svc = service(core, shed_with=mode, max_queue=1, max_batch=1)
            svc.start()
            try:
                # One call runs, one waits, the third finds the queue full.
                calls = [asyncio.ensure_future(svc.score(request(), None)) for _ in range(3)]
                out[mode] = await asyncio.gather(*calls, return_exceptions=True)
            finally:
                await svc.batcher.close(1.0)
        return out

    out = asyncio.run(main())
    assert [s.fallback for s in out["fallback"]] == [False, False, True]
    assert out["fallback"][2].reason == "overloaded"
    assert isinstance(out["reject"][2], LoadShed)
    assert not out["reject"][0].fallback and not out["reject"][1].fallback
