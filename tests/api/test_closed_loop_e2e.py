"""The closed loop through the API: configure, report outcomes, watch the allocation and bids move."""
from __future__ import annotations

import time

import grpc
import pytest

from attribid.client import Client, score_request
from attribid.v1 import attribution_pb2 as pb
from tests.serverproc import InProcessServer

HOUR = 3600.0


@pytest.fixture(scope="module")
def loop_server():
    with InProcessServer(resolve_period_s=0.2) as srv:
        yield srv


def configure(client, campaign_id, now, **overrides):
    req = pb.ConfigureCampaignRequest(
        campaign_id=campaign_id, budget=2400.0, flight_start_ms=int((now - 10 * HOUR) * 1000),
        flight_end_ms=int((now + 14 * HOUR) * 1000),
        objective=pb.ObjectiveWeights(revenue=1.0),
        channels=[pb.ChannelConstraint(name=n, min=0.0, max=0.0, value_per_conversion=0.0)
                  for n in ("search", "display", "email")])
    for key, value in overrides.items():
        setattr(req, key, value) if not isinstance(value, list) else (
            req.ClearField(key), getattr(req, key).extend(value))
    return client.configure_campaign(req, timeout=10)


def bids(client, campaign_id, now):
    journey = [{"channel": c, "timestamp": now - 3000 + 600 * i, "interaction": "click"}
               for i, c in enumerate(("display", "email", "search"))]
    return client.score(journey, campaign_id=campaign_id, timeout=10).bid


def test_outcomes_move_the_allocation_and_the_bids(loop_server):
    now = time.time()
    with Client(loop_server.address) as client:
        before = configure(client, "kettles", now)
        bids_before = bids(client, "kettles", now)
        # Ten hourly periods: search converts far better per unit of spend than display.
        per_hour = {"search": (30, 6.0, 600.0), "display": (30, 0.3, 30.0), "email": (30, 2.0, 200.0)}
        for h in range(10):
            outcomes = {ch: {"spend": s, "conversions": c, "revenue": r, "impressions": 1000}
                        for ch, (s, c, r) in per_hour.items()}
            request = pb.ReportOutcomesRequest(batch_id=f"hour-{h}", campaign_id="kettles",
                                               period_end_ms=int((now - (9 - h) * HOUR) * 1000),
                                               outcomes=[pb.ChannelOutcome(channel=k, **v)
                                                         for k, v in outcomes.items()])
            reply = client._stub.ReportOutcomes(request, timeout=10)
            assert not reply.duplicate and reply.accepted == 3
        again = client.report_outcomes("kettles", "hour-3", {"search": {"spend": 1e6}}, timeout=10)
        assert again.duplicate and again.accepted == 0  # a retried batch is not counted twice
        deadline = time.monotonic() + 20
        after = client.get_allocation("kettles", timeout=10)
        while after.version == before.version and time.monotonic() < deadline:
            time.sleep(0.1)
            after = client.get_allocation("kettles", timeout=10)
        bids_after = bids(client, "kettles", now)
    assert after.version > before.version and after.solved_at_ms >= before.solved_at_ms
    assert after.share["search"] > before.share["search"]
    assert after.share["display"] < before.share["display"]
    assert sum(after.spend.values()) == pytest.approx(2400.0, rel=1e-3)
    ratio_before = bids_before["search"] / max(bids_before["display"], 1e-12)
    ratio_after = bids_after["search"] / max(bids_after["display"], 1e-12)
    assert ratio_after > ratio_before  # Score's bids follow the allocation
    assert bids_after["social"] == 0.0  # not a channel of this campaign


@pytest.mark.parametrize("overrides, code, field", [
    ({"budget": -5.0}, grpc.StatusCode.INVALID_ARGUMENT, "budget"),
    ({"channels": [pb.ChannelConstraint(name="search", min=50, max=10)]},
     grpc.StatusCode.INVALID_ARGUMENT, "channels[0]"),
    ({"channels": [pb.ChannelConstraint(name="television")]},
     grpc.StatusCode.INVALID_ARGUMENT, "channels[0].name"),
    ({"channels": [pb.ChannelConstraint(name="search", min=2000),
                   pb.ChannelConstraint(name="email", min=2000)]},
     grpc.StatusCode.FAILED_PRECONDITION, "min"),
    ({"budget": float("nan")}, grpc.StatusCode.INVALID_ARGUMENT, "budget"),
])
def test_bad_campaigns_are_refused_naming_the_constraint(loop_server, overrides, code, field):
    with Client(loop_server.address) as client:
        with pytest.raises(grpc.RpcError) as info:
            configure(client, "bad", time.time(), **overrides)
        assert info.value.code() is code
        assert field in info.value.details(), info.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            client.get_allocation("bad", timeout=10)
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND


def test_bad_outcomes_are_refused_naming_the_field(loop_server):
    with Client(loop_server.address) as client:
        configure(client, "toasters", time.time())
        for outcomes, field in (({"search": {"spend": -1.0}}, "outcomes[0].spend"),
                                ({"search": {"revenue": float("nan")}}, "outcomes[0].revenue"),
                                ({"radio": {"spend": 1.0}}, "outcomes[0].channel")):
            with pytest.raises(grpc.RpcError) as info:
                client.report_outcomes("toasters", "b1", outcomes, timeout=10)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith(field), info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            client.report_outcomes("toasters", "", {"search": {"spend": 1.0}}, timeout=10)
        assert info.value.details().startswith("batch_id")
        with pytest.raises(grpc.RpcError) as info:
            client.report_outcomes("nobody", "b1", {"search": {"spend": 1.0}}, timeout=10)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
