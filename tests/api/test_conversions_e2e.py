"""Conversions with their journeys through the API: credited by the campaign's attribution
(the served network by default), fed to its allocation, idempotent, refused clearly."""
from __future__ import annotations

import math
import time

import grpc
import numpy as np
import pytest

from attribid.client import Client
from attribid.v1 import attribution_pb2 as pb
from tests.serverproc import InProcessServer

HOUR = 3600.0
CHANNELS = ("search", "display", "email")


@pytest.fixture(scope="module")
def server():
    with InProcessServer(resolve_period_s=0.2, max_report_conversions=50) as srv:
        yield srv


def configure(client: Client, campaign_id: str, now: float, attribution: str = "") -> pb.Allocation:
    return client.configure_campaign(pb.ConfigureCampaignRequest(
        campaign_id=campaign_id, budget=2400.0, flight_start_ms=int((now - 10 * HOUR) * 1000),
        flight_end_ms=int((now + 14 * HOUR) * 1000), attribution=attribution,
        channels=[pb.ChannelConstraint(name=n) for n in CHANNELS]), timeout=10)


def spend(client: Client, campaign_id: str, hour_end: float, batch_id: str,
          conversions: dict[str, float] | None = None) -> None:
    """One hour of equal spend on every channel (rows may carry the caller's own split)."""
    conversions = conversions or {}
    reply = client._stub.ReportOutcomes(pb.ReportOutcomesRequest(
        batch_id=batch_id, campaign_id=campaign_id, period_end_ms=int(hour_end * 1000),
        outcomes=[pb.ChannelOutcome(channel=c, spend=30.0, impressions=1000.0,
                                    conversions=conversions.get(c, 0.0),
                                    revenue=100.0 * conversions.get(c, 0.0))
                  for c in CHANNELS]), timeout=10)
    assert not reply.duplicate


def conversion(cid: str, at: float, channels: tuple[str, ...], value: float = 100.0,
               ) -> pb.Conversion:
    journey = [pb.Touchpoint(channel=c, timestamp_ms=int((at - 600 * (len(channels) - i)) * 1000),
                             interaction=pb.INTERACTION_CLICK) for i, c in enumerate(channels)]
    return pb.Conversion(conversion_id=cid, timestamp_ms=int(at * 1000), value=value,
                         journey=journey)


def report(client: Client, campaign_id: str, batch_id: str,
           conversions: list[pb.Conversion]) -> pb.ReportConversionsResponse:
    return client._stub.ReportConversions(pb.ReportConversionsRequest(
        batch_id=batch_id, campaign_id=campaign_id, conversions=conversions), timeout=30)


def refused(client: Client, request: pb.ReportConversionsRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        client._stub.ReportConversions(request, timeout=30)
    return caught.value


def observations(server: InProcessServer, campaign_id: str) -> np.ndarray:
    return server.server.core.books.of("default").observations(campaign_id)


def test_conversions_credited_to_one_channel_move_its_share_up(server) -> None:
    now = time.time()
    with Client(server.address) as client:
        before = configure(client, "mugs", now)
        assert before.attribution == "network"
        for h in range(10):
            end = now - (9 - h) * HOUR
            # The rows claim display converts: the caller's own split, not this campaign's.
            spend(client, "mugs", end, f"spend-{h}", conversions={"display": 5.0})
            batch = [conversion(f"o{h}-{k}", end - 900, ("search",) * (1 + k % 3))
                     for k in range(12)]
            batch.append(conversion(f"o{h}-e", end - 900, ("email", "display")))
            reply = report(client, "mugs", f"conv-{h}", batch)
            assert not reply.duplicate and reply.accepted == 13
            assert reply.attribution == "network"
            credited = dict(reply.credited_conversions)
            assert math.isclose(sum(credited.values()), 13.0, rel_tol=1e-6)
            assert math.isclose(credited["search"], 12.0, rel_tol=1e-6)  # its only channel
            assert math.isclose(sum(reply.credited_value.values()), 1300.0, rel_tol=1e-6)
        deadline = time.monotonic() + 30
        after = client.get_allocation("mugs", timeout=10)
        while after.version == before.version and time.monotonic() < deadline:
            time.sleep(0.1)
            after = client.get_allocation("mugs", timeout=10)
    assert after.attribution == "network" and after.version > before.version
    assert after.share["search"] > before.share["search"] + 0.1
    assert after.share["search"] > max(after.share["display"], after.share["email"])
    obs = observations(server, "mugs")
    display = obs[obs[:, 0] == CHANNELS.index("display")]
    # display's evidence is the credit it got from journeys, never the rows' 5 a period
    assert display[:, 2].max() < 1.0


def test_a_retried_batch_changes_nothing(server) -> None:
    now = time.time()
    with Client(server.address) as client:
        configure(client, "retry", now)
        spend(client, "retry", now - HOUR, "s1")
        batch = [conversion("a", now - 2 * HOUR, ("search", "email"))]
        first = report(client, "retry", "c1", batch)
        seen = observations(server, "retry").copy()
        again = report(client, "retry", "c1", batch)
        assert not first.duplicate and first.accepted == 1
        assert again.duplicate and again.accepted == 0 and not again.credited_conversions
        np.testing.assert_array_equal(observations(server, "retry"), seen)
        # a conversion batch and an outcome batch may share an id: each counted once
        spend(client, "retry", now - 0.5 * HOUR, "c1")


def test_conversions_land_in_the_period_that_holds_them(server) -> None:
    now = time.time()
    search = CHANNELS.index("search")
    with Client(server.address) as client:
        configure(client, "periods", now, attribution="last-click")
        for h in (1, 2, 3):
            spend(client, "periods", now - (4 - h) * HOUR, f"s{h}")
        late = conversion("late", now - 2.5 * HOUR, ("display", "search"))  # in period 2
        ahead = conversion("ahead", now - 0.2 * HOUR, ("email", "search"))  # after period 3
        reply = report(client, "periods", "c", [late, ahead])
        assert dict(reply.credited_conversions) == {"search": 2.0}  # last click: all search
        rows = observations(server, "periods")
        rows = rows[rows[:, 0] == search]
        assert rows[:, 2].tolist() == [0.0, 1.0, 0.0]  # the second waits for its period
        spend(client, "periods", now, "s4")
        rows = observations(server, "periods")
        rows = rows[rows[:, 0] == search]
        assert rows[:, 2].tolist() == [0.0, 1.0, 0.0, 1.0]
        assert rows[:, 3].tolist() == [0.0, 100.0, 0.0, 100.0]


@pytest.mark.parametrize("method, expected", [
    ("last-click", {"search": 1.0}),
    ("first-click", {"display": 1.0}),
    ("linear", {"display": 0.5, "search": 0.5}),
    ("position-based", {"display": 0.5, "search": 0.5}),
])
def test_rule_attributions_credit_as_their_rule(server, method, expected) -> None:
    now = time.time()
    with Client(server.address) as client:
        assert configure(client, f"rule-{method}", now, method).attribution == method
        reply = report(client, f"rule-{method}", "b", [conversion("x", now - 60,
                                                                  ("display", "search"))])
    assert reply.attribution == method
    assert {k: round(v, 9) for k, v in reply.credited_conversions.items()} == expected


def test_bad_conversions_are_refused_naming_the_field(server) -> None:
    now = time.time()
    with Client(server.address) as client:
        configure(client, "bad", now)
        configure(client, "own-split", now, attribution="reported")

        def request(*conversions: pb.Conversion, campaign: str = "bad",
                    batch: str = "b") -> pb.ReportConversionsRequest:
            return pb.ReportConversionsRequest(batch_id=batch, campaign_id=campaign,
                                               conversions=list(conversions))

        ok = conversion("ok", now - 60, ("search",))
        cases = {
            "conversions[1].journey[0].channel": request(ok, conversion("x", now - 60, ("tv",))),
            "conversions[0].value": request(conversion("x", now - 60, ("search",), math.nan)),
            "conversions[0].timestamp_ms": request(pb.Conversion(
                conversion_id="x", journey=ok.journey)),
            "conversions[0].journey": request(pb.Conversion(conversion_id="x",
                                                            timestamp_ms=int(now * 1000))),
            "conversions": request(*[ok] * 51),
            "batch_id": request(ok, batch=""),
        }
        after = pb.Conversion(conversion_id="early", timestamp_ms=int((now - 3600) * 1000),
                              journey=ok.journey)  # its journey's touch is after it
        err = refused(client, request(after))
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith("conversions[0].journey[0].timestamp_ms")
        for field, req in cases.items():
            err = refused(client, req)
            assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
            assert err.details().startswith(field + ":"), (field, err.details())
        err = refused(client, request(ok, campaign="own-split"))
        assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert err.details().startswith("attribution:")
        err = refused(client, request(ok, campaign="nowhere"))
        assert err.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            configure(client, "odd", now, attribution="astrology")
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("attribution:")
        # nothing refused was counted: the batch id is still free
        reply = report(client, "bad", "b", [ok])
        assert not reply.duplicate and reply.accepted == 1


def test_the_client_reports_conversions_from_plain_data(server) -> None:
    import asyncio

    from attribid.client import AsyncClient

    now = time.time()
    journey = [{"channel": "display", "timestamp": now - 7200, "interaction": "impression"},
               {"channel": "search", "timestamp": now - 600, "interaction": "click"}]
    with Client(server.address, timeout=10) as client:
        configure(client, "plain", now, attribution="linear")
        reply = client.report_conversions("plain", "p1", [
            {"conversion_id": "o1", "timestamp": now - 60, "value": 40.0, "journey": journey}])
    assert reply.accepted == 1 and dict(reply.credited_value) == {"display": 20.0, "search": 20.0}

    async def again() -> pb.ReportConversionsResponse:
        async with AsyncClient(server.address, timeout=10) as client:
            return await client.report_conversions("plain", "p1", [
                {"conversion_id": "o1", "timestamp": now - 60, "value": 40.0,
                 "journey": journey}])
    assert asyncio.run(again()).duplicate


def test_window_attributions_fit_on_the_campaigns_journeys_converting_and_not(server) -> None:
    now = time.time()

    def idle(*channels: str) -> pb.NonConvertingJourney:
        return pb.NonConvertingJourney(journey=conversion("-", now - 60, channels).journey)

    with Client(server.address) as client:
        configure(client, "shap", now, attribution="shapley")
        configure(client, "chain", now, attribution="markov")
        # display alone never converts, search alone does: Shapley gives search the credit
        # of journeys that touch both; the chain's removal effects favour search too.
        for campaign in ("shap", "chain"):
            warm = client._stub.ReportConversions(pb.ReportConversionsRequest(
                batch_id="warm", campaign_id=campaign,
                conversions=[conversion(f"s{k}", now - 60, ("search",)) for k in range(5)],
                non_converting=[idle("display") for _ in range(20)]), timeout=30)
            assert warm.accepted == 5 and dict(warm.credited_conversions) == {"search": 5.0}
        both = report(client, "shap", "both", [conversion("b", now - 30, ("display", "search"))])
        chain = report(client, "chain", "both", [conversion("b", now - 30, ("display", "search"))])
        err = refused(client, pb.ReportConversionsRequest(
            batch_id="x", campaign_id="shap", non_converting=[idle("tv")]))
    assert both.attribution == "shapley" and chain.attribution == "markov"
    shares = dict(both.credited_conversions)
    assert shares["search"] > 0.9 and shares.get("display", 0.0) < 0.1
    chained = dict(chain.credited_conversions)
    assert math.isclose(sum(chained.values()), 1.0, rel_tol=1e-9)
    assert chained["search"] > 3 * chained.get("display", 0.0)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("non_converting[0].journey[0].channel")
    window = server.server.core.books.of("default")._get("shap").window
    assert len(window.converting) == 6 and len(window.idle) == 20


def test_network_credit_of_a_batch_is_each_journeys_own_whatever_its_neighbours() -> None:
    """Conversions are credited in runs of similar lengths: a journey's credit must not
    depend on which others share its batch, nor on their order."""
    from attribid.core.conversions import CREDIT_BATCH, network_credit
    from attribid.core.scoring import Scorer, _synthetic
    from attribid.models.onnx.runtime import load_model

    now = time.time()
    rng = np.random.default_rng(5)
    scorer = Scorer(load_model(None), 6, 64)
    journeys = [_synthetic(rng, scorer.n_channels, int(n), now)
                for n in rng.integers(1, 65, CREDIT_BATCH + 40)]
    together = network_credit(scorer, journeys)
    for k in (0, 7, CREDIT_BATCH + 3):
        alone = network_credit(scorer, [journeys[k]])[0]
        np.testing.assert_allclose(together[k], alone, atol=1e-6)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-9)
