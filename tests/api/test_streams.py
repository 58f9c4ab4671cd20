"""ScoreStream fairness: a stream whose caller does not read stops being read, and only that
stream; however many such streams there are, other callers are still served."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from attribid.api.servicer import STREAM_WINDOW
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc

STREAM = "/attribid.v1.Attribution/ScoreStream"


def request(i: int = 0) -> pb.ScoreRequest:
    now_ms = int((time.time() - 600) * 1000)
    return pb.ScoreRequest(request_id=str(i), journey=[
        pb.Touchpoint(channel=("search", "display", "email")[k % 3], timestamp_ms=now_ms + k,
                      interaction=pb.INTERACTION_CLICK, cost=0.1) for k in range(32)])


class Context:
    """What ScoreStream asks of its gRPC context when the call is let in."""

    def invocation_metadata(self) -> tuple:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort(self, code: grpc.StatusCode, details: str, metadata: tuple = ()) -> None:
        raise AssertionError(f"aborted: {code} {details}")


def test_a_stream_whose_answers_are_not_taken_reads_no_more_than_its_window(server):
    """The servicer on the server's loop: after one answer is taken, reading stops at the window."""
    servicer = server.server._servicer
    pulled = []

    async def requests():
        for i in range(10 * STREAM_WINDOW):
            pulled.append(i)
            yield request(i)

    async def main() -> tuple[int, str]:
        answers = servicer.ScoreStream(requests(), Context())
        first = await answers.__anext__()
        await asyncio.sleep(0.5)  # time for a reader that does not stop to read on
        read = len(pulled)
        await answers.aclose()
        return read, first.request_id

    read, first = server.call(main)
    assert first == "0" and read == STREAM_WINDOW


#: a client that keeps its receive windows at HTTP/2's 64 KiB (grpcio grows them by probing,
#: so that the server's answers to a stream nobody reads pile up in the client's memory)
FIXED_WINDOWS = [("grpc.http2.bdp_probe", 0)]


def test_unread_streams_stop_being_read_and_score_is_still_served(server):
    """8 streams that send and never read: each is read a bounded amount, and no Score call
    beside them is answered by the overload fallback (was: 8 x 256 stream messages flooded
    the inference queue, Score fell back "overloaded", and the server took in megabytes)."""
    streams = 8

    async def main() -> tuple[list[int], list[pb.ScoreResponse]]:
        channels = [grpc.aio.insecure_channel(server.address, options=FIXED_WINDOWS)
                    for _ in range(4)]
        written = [0] * streams
        calls = []

        async def flood(k: int) -> None:
            call = channels[k % 4].stream_stream(STREAM, request_serializer=None,
                                                 response_deserializer=None)()
            calls.append(call)
            data = request(k).SerializeToString()
            while True:
                await call.write(data)
                written[k] += 1

        floods = [asyncio.ensure_future(flood(k)) for k in range(streams)]
        stub = pb_grpc.AttributionStub(channels[0])
        scores = []
        # Score while the streams fill up, until no stream has been read further for a while
        last, quiet = -1, 0
        while quiet < 10:
            scores.append(await stub.Score(request(), timeout=10))
            now = sum(written)
            quiet = quiet + 1 if now == last else 0
            last = now
            await asyncio.sleep(0.02)
        for task in floods:
            task.cancel()
        for call in calls:
            call.cancel()
        await asyncio.gather(*floods, return_exceptions=True)
        for channel in channels:
            await channel.close()
        return written, scores

    written, scores = asyncio.run(main())
    reply = len(scores[0].SerializeToString())
    # each stream: the window, and what HTTP/2's 64 KiB windows hold each way
    bound = STREAM_WINDOW + 65536 // reply + 65536 // len(request().SerializeToString()) + 16
    assert 0 < min(written) and max(written) <= bound, (written, bound)
    assert [s.fallback_reason for s in scores if s.fallback] == []


def test_a_reading_stream_is_served_beside_unread_ones(server):
    async def main() -> list[pb.ScoreResponse]:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stuck = [channel.stream_stream(STREAM, request_serializer=None,
                                           response_deserializer=None)() for _ in range(5)]
            data = request().SerializeToString()

            async def flood(call) -> None:
                while True:
                    await call.write(data)

            floods = [asyncio.ensure_future(flood(c)) for c in stuck]
            await asyncio.sleep(0.3)
            stub = pb_grpc.AttributionStub(channel)
            replies = [r async for r in stub.ScoreStream(iter(request(i) for i in range(300)),
                                                         timeout=30)]
            for task in floods:
                task.cancel()
            for call in stuck:
                call.cancel()
            await asyncio.gather(*floods, return_exceptions=True)
            return replies

    replies = asyncio.run(main())
    assert [r.request_id for r in replies] == [str(i) for i in range(300)]
    assert all(not r.error.message and sum(r.credit.values()) == pytest.approx(1, abs=1e-6)
               for r in replies)


class SteppedClock:
    """A clock that moves ``step`` seconds at every reading."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("cpu_step, slowed", [(0.0, False), (0.012, True)])
def test_streams_are_slowed_by_a_late_loop_only_while_the_server_was_busy(cpu_step, slowed):
    """Every tick 7 ms late: halved when the server's threads ran all that time (its own
    work made the loop late), raised when they did not (the machine was busy elsewhere)."""
    from attribid.api.streams import START_RATE, StreamShare

    async def main() -> float:
        share = StreamShare(slots=4, clock=SteppedClock(0.012), cpu_clock=SteppedClock(cpu_step))
        assert share.admit()
        await asyncio.sleep(0.1)
        share.close()
        return share.rate

    rate = asyncio.run(main())
    assert (rate < START_RATE) if slowed else (rate > START_RATE)


def test_a_message_waiting_for_a_slot_is_let_in_when_the_oldest_is_scored():
    from attribid.api.streams import StreamShare

    async def main() -> tuple[bool, bool, int]:
        loop = asyncio.get_running_loop()
        share = StreamShare(slots=1)
        scored = loop.create_future()
        assert share.admit()
        share.hold(scored)
        waiting = asyncio.ensure_future(share.wait())
        await asyncio.sleep(0)
        before = waiting.done()
        scored.set_result(None)  # no release call: the future being done frees the slot
        await asyncio.wait_for(waiting, 1.0)
        share.hold(None)
        share.close()
        return before, waiting.done(), share.busy

    assert asyncio.run(main()) == (False, True, 0)
