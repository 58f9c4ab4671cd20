"""End to end: a real server, in this process, on a free loopback port."""
from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from attribid.client import AsyncClient, Client, score_request
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import InProcessServer

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def journey(n=32, end=None, seed=0):
    rng = np.random.default_rng(seed)
    end = time.time() - 60 if end is None else end
    ts = np.sort(end - rng.uniform(0, 86400 * 10, n))
    return [{"channel": CHANNELS[rng.integers(0, 7)], "timestamp": float(t),
             "interaction": "click" if rng.random() < 0.3 else "impression",
             "cost": float(rng.exponential(0.3)), "device": "mobile"} for t in ts]


def stub(address):
    return pb_grpc.AttributionStub(grpc.insecure_channel(address))


def test_good_call_credits_and_bids(server):
    with Client(server.address, timeout=2.0) as client:
        result = client.score(journey(32), impression={"channel": "display", "floor_price": 0.0},
                              product_category="toasters", request_id="abc")
    assert result.request_id == "abc" and not result.fallback
    assert 0.0 < result.conversion_probability < 1.0
    present = {t["channel"] for t in journey(32)}
    assert set(result.credit) <= present and sum(result.credit.values()) == pytest.approx(1.0, abs=1e-6)
    assert set(result.bid) == set(CHANNELS) and all(b >= 0 for b in result.bid.values())
    assert result.touchpoints_used == 32 and not result.truncated
    assert result.model_version


def test_long_journey_is_truncated_to_the_newest(server):
    with Client(server.address, timeout=2.0) as client:
        result = client.score(journey(100))
    assert result.truncated and result.touchpoints_used == 64


BAD = [
    ("empty journey", lambda j: j[:0], "journey:"),
    ("unknown channel", lambda j: j[:2] + [{**j[2], "channel": "carrier-pigeon"}], "journey[2].channel"),
    ("out of order", lambda j: [j[1], j[0]] + j[2:], "journey[1].timestamp_ms"),
    ("future", lambda j: j + [{**j[-1], "timestamp": time.time() + 86400}], "journey[32].timestamp_ms"),
    ("nan cost", lambda j: j[:5] + [{**j[5], "cost": float("nan")}] + j[6:], "journey[5].cost"),
    ("negative cost", lambda j: [{**j[0], "cost": -0.1}] + j[1:], "journey[0].cost"),
    ("too long", lambda j: j * 20, "journey:"),
]


@pytest.mark.parametrize("name, mutate, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_invalid_argument_naming_the_field(server, name, mutate, field):
    s = stub(server.address)
    with pytest.raises(grpc.RpcError) as info:
        s.Score(score_request(mutate(journey(32))), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(field), info.value.details()
    # and the server keeps serving
    assert not s.Score(score_request(journey(4)), timeout=5).fallback


def test_oversized_message_is_resource_exhausted(server):
    s = stub(server.address)
    big = score_request(journey(8))
    big.request_id = "x" * (2 << 20)
    with pytest.raises(grpc.RpcError) as info:
        s.Score(big, timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert s.Score(score_request(journey(4)), timeout=5).conversion_probability > 0


def test_unknown_campaign_is_not_found(server):
    with pytest.raises(grpc.RpcError) as info:
        stub(server.address).Score(score_request(journey(4), campaign_id="nope"), timeout=5)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND and "nope" in info.value.details()


def test_score_stream_answers_every_message_in_order(server):
    async def main():
        requests = [score_request(journey(1 + i % 40, seed=i), request_id=str(i)) for i in range(500)]
        requests[17].journey[0].cost = -1.0  # one bad message is answered in-band
        async with AsyncClient(server.address) as client:
            return [r async for r in client.score_stream(iter(requests), timeout=60)]

    replies = asyncio.run(main())
    assert [r.request_id for r in replies] == [str(i) for i in range(500)]
    assert replies[17].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "journey[0].cost" in replies[17].error.message
    good = [r for i, r in enumerate(replies) if i != 17]
    assert all(not r.error.message and sum(r.credit.values()) == pytest.approx(1, abs=1e-6) for r in good)


def test_reflection_lists_the_service(server):
    channel = grpc.insecure_channel(server.address)
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "attribid.v1.Attribution" in names and "grpc.health.v1.Health" in names


def test_metrics_count_calls_by_method_and_code(server):
    s = stub(server.address)
    s.Score(score_request(journey(3)), timeout=5)
    with pytest.raises(grpc.RpcError):
        s.Score(score_request([]), timeout=5)
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    assert 'attribid_rpc_calls_total{code="OK",method="Score"}' in body
    assert 'attribid_rpc_calls_total{code="INVALID_ARGUMENT",method="Score"}' in body
    assert "attribid_inference_seconds_bucket" in body and "attribid_batch_size_bucket" in body


def test_errors_are_logged_as_json_lines(server):
    with pytest.raises(grpc.RpcError):
        stub(server.address).Score(score_request([]), timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not server.events("refused"):
        time.sleep(0.01)
    refused = server.events("refused")
    assert refused and refused[-1]["code"] == "INVALID_ARGUMENT" and refused[-1]["level"] == "warning"
    assert not server.events("call")  # no line per successful call by default


def test_async_client(server):
    async def main():
        async with AsyncClient(server.address, timeout=2.0) as client:
            return await asyncio.gather(*(client.score(journey(8, seed=i)) for i in range(16)))

    results = asyncio.run(main())
    assert all(sum(r.credit.values()) == pytest.approx(1, abs=1e-6) for r in results)


def test_deadline_too_short_for_the_network_gets_the_flagged_fallback():
    # A margin far above any deadline we send forces the decision deterministically.
    with InProcessServer(deadline_margin_ms=500) as srv:
        with Client(srv.address) as client:
            quick = client.score(journey(16), timeout=0.4)
            roomy = client.score(journey(16), timeout=5.0)
    assert quick.fallback and quick.fallback_reason == "deadline"
    assert sum(quick.credit.values()) == pytest.approx(1.0)
    assert not roomy.fallback


def test_with_shed_with_reject_a_call_that_cannot_be_served_in_time_is_refused_unlogged():
    with InProcessServer(deadline_margin_ms=500, shed_with="reject") as srv:
        s = stub(srv.address)
        with pytest.raises(grpc.RpcError) as info:
            s.Score(score_request(journey(16)), timeout=0.4)
        roomy = s.Score(score_request(journey(16)), timeout=5.0)
        body = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics",
                                      timeout=5).read().decode()
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "before the deadline" in info.value.details()
    assert not roomy.fallback
    # Shed calls are counted, not logged one line each.
    assert 'attribid_rpc_calls_total{code="RESOURCE_EXHAUSTED",method="Score"} 1.0' in body
    assert not srv.events("refused")


def test_a_hopeless_deadline_is_answered_by_fallback_or_deadline_exceeded(server):
    # grpc's timers are coarser than a microsecond, so either answer may win the race;
    # what must never happen is a network answer after the deadline or no answer at all.
    s = stub(server.address)
    for _ in range(20):
        try:
            reply = s.Score(score_request(journey(8)), timeout=1e-6)
        except grpc.RpcError as exc:
            assert exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        else:
            assert reply.fallback and reply.fallback_reason == "deadline"


class SteppedClock:
    """Monotonic seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("drain_s, left_for_batcher", [(3.0, 7.0), (12.0, 0.0)])
def test_stop_hands_each_step_what_the_steps_before_it_left_of_one_grace(drain_s,
                                                                         left_for_batcher):
    clock = SteppedClock()
    srv = InProcessServer(clock=clock, metrics_port=-1).start()
    grpc_server, batcher = srv.server._server, srv.server.core.service.batcher
    given: dict[str, float] = {}
    grpc_stop, batcher_close = grpc_server.stop, batcher.close

    async def stop(grace):
        given["drain"] = grace
        clock.now += drain_s  # the in-flight calls took this long to finish
        return await grpc_stop(grace)

    async def close(timeout):
        given["batcher"] = timeout
        clock.now += 0.5
        return await batcher_close(timeout)

    grpc_server.stop, batcher.close = stop, close
    srv.stop(grace=10.0)
    assert srv.stopped
    assert given == {"drain": 10.0, "batcher": left_for_batcher}
    (line,) = srv.events("stopped")
    assert line["seconds"] == drain_s + 0.5
