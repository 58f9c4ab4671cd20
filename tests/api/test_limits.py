"""Over gRPC: bounded numbers, a re-solve loop that survives a failing campaign (stale in
GetAllocation), the limits of memory and the refusal log."""
from __future__ import annotations

import math
import re
import time
import urllib.request
from typing import Any, Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2

from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import InProcessServer

#: small limits, so each is reached in a few calls
LIMITS = dict(max_campaigns=4, max_report_rows=10, refusal_log_per_s=3, resolve_period_s=0.05)


@pytest.fixture(scope="module")
def srv() -> Iterator[InProcessServer]:
    with InProcessServer(**LIMITS) as s:
        yield s


@pytest.fixture
def stub(srv: InProcessServer) -> Iterator[pb_grpc.AttributionStub]:
    with grpc.insecure_channel(srv.address) as channel:
        yield pb_grpc.AttributionStub(channel)


def refused(call: Callable[..., Any], request: Any) -> tuple[grpc.StatusCode, str, str]:
    """(code, message, the field its BadRequest names) of a refused call."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    status = rpc_status.from_call(info.value)
    assert status is not None and len(status.details) == 1
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    return info.value.code(), info.value.details(), bad.field_violations[0].field


def metric(srv: InProcessServer, series: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics",
                                  timeout=5).read().decode()
    found = re.search(rf"^{re.escape(series)} (\S+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


def campaign(cid: str, **kw: Any) -> pb.ConfigureCampaignRequest:
    now_ms = int(time.time() * 1000)
    fields: dict[str, Any] = dict(campaign_id=cid, budget=7000.0, flight_start_ms=now_ms - 3_600_000,
                                  flight_end_ms=now_ms + 7 * 86_400_000,
                                  channels=[pb.ChannelConstraint(name="search"),
                                            pb.ChannelConstraint(name="email")])
    return pb.ConfigureCampaignRequest(**{**fields, **kw})


def outcome(channel: str = "search", **kw: float) -> pb.ChannelOutcome:
    return pb.ChannelOutcome(channel=channel, **{"spend": 50.0, "conversions": 2.0,
                                                 "revenue": 160.0, "impressions": 1e3, **kw})


def test_two_huge_rows_are_refused_and_the_server_keeps_re_solving(stub, srv) -> None:
    """The report that used to freeze every campaign: refused, and re-solves go on."""
    code, message, field = refused(stub.ReportOutcomes, pb.ReportOutcomesRequest(
        batch_id="p", campaign_id="", outcomes=[outcome(spend=1e308), outcome(spend=1e308)]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and field == "outcomes[0].spend"
    assert "at most 1e+12" in message
    before = stub.GetAllocation(pb.GetAllocationRequest(campaign_id=""), timeout=5).version
    reply = stub.ReportOutcomes(pb.ReportOutcomesRequest(batch_id="p", outcomes=[outcome()]),
                                timeout=5)
    assert reply.accepted == 1 and not reply.duplicate  # the refused batch id was not burnt
    assert wait_for(lambda: stub.GetAllocation(pb.GetAllocationRequest(), timeout=5).version
                    > before)


def test_a_huge_budget_is_refused_and_the_largest_allowed_one_solves(stub) -> None:
    for exposure in (0.0, 0.01):
        code, message, field = refused(stub.ConfigureCampaign, campaign(
            "big", budget=1e308, objective=pb.ObjectiveWeights(revenue=1.0, exposure=exposure)))
        assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "budget") and "1e+12" in message
    alloc = stub.ConfigureCampaign(campaign("big", budget=1e12, objective=pb.ObjectiveWeights(
        revenue=1.0, exposure=0.01)), timeout=10)
    assert all(math.isfinite(v) for v in (alloc.revenue, alloc.objective, alloc.exposure,
                                          alloc.cpa, alloc.pacing, *alloc.spend.values()))


def test_a_failing_campaign_is_stale_in_get_allocation_and_the_others_go_on(
        stub, srv, monkeypatch: pytest.MonkeyPatch) -> None:
    from attribid.models.campaign import model as cm

    stub.ConfigureCampaign(campaign("sick"), timeout=10)
    stub.ConfigureCampaign(campaign("well"), timeout=10)
    solve = cm.CampaignModel.solve

    def failing(self: cm.CampaignModel, *args: Any, **kw: Any) -> cm.Solution:
        if self.spec.campaign_id == "sick":
            raise RuntimeError("diverged")
        return solve(self, *args, **kw)

    monkeypatch.setattr(cm.CampaignModel, "solve", failing)
    mark = len(srv.lines)
    for cid in ("sick", "well"):
        stub.ReportOutcomes(pb.ReportOutcomesRequest(batch_id="s1", campaign_id=cid,
                                                     outcomes=[outcome()]), timeout=5)
    assert wait_for(lambda: stub.GetAllocation(pb.GetAllocationRequest(campaign_id="sick"),
                                               timeout=5).stale)
    sick = stub.GetAllocation(pb.GetAllocationRequest(campaign_id="sick"), timeout=5)
    assert sick.stale_reason == "RuntimeError: diverged" and sick.version == 1
    assert wait_for(lambda: stub.GetAllocation(pb.GetAllocationRequest(campaign_id="well"),
                                               timeout=5).version == 2)
    assert not stub.GetAllocation(pb.GetAllocationRequest(campaign_id="well"), timeout=5).stale
    assert wait_for(lambda: metric(srv, 'attribid_resolve_failures_total{campaign="sick"}') >= 2)
    failed = [line for line in srv.lines[mark:]
              if line["event"] == "re-solve failed; allocation stale"]
    assert len(failed) == 1 and failed[0]["campaign_id"] == "sick"  # logged once, as JSON
    with grpc.insecure_channel(srv.address) as channel:  # one campaign's failure: still serving
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    monkeypatch.undo()
    assert wait_for(lambda: not stub.GetAllocation(pb.GetAllocationRequest(campaign_id="sick"),
                                                   timeout=5).stale)
    healed = stub.GetAllocation(pb.GetAllocationRequest(campaign_id="sick"), timeout=5)
    assert healed.stale_reason == "" and healed.version == 2


def test_campaign_count_id_length_and_rows_per_report_are_limited(stub, srv) -> None:
    for cid in ("", "big", "sick", "well", "c1", "c2"):  # whichever earlier tests left
        try:
            stub.ConfigureCampaign(campaign(cid), timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    code, message, field = refused(stub.ConfigureCampaign, campaign("one-too-many"))
    assert (code, field) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "campaign_id")
    assert "at most 4 campaigns" in message
    huge = "x" * 16384  # used to come back RESOURCE_EXHAUSTED: the echo overflowed the trailers
    for call, request, name in (
            (stub.GetAllocation, pb.GetAllocationRequest(campaign_id=huge), "campaign_id"),
            (stub.ReportOutcomes, pb.ReportOutcomesRequest(batch_id="b" * 129,
                                                           outcomes=[outcome()]), "batch_id"),
            (stub.Score, pb.ScoreRequest(campaign_id=huge), "campaign_id"),
            (stub.Score, pb.ScoreRequest(request_id="r" * 200), "request_id")):
        code, message, field = refused(call, request)
        assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, name)
        assert "at most 128" in message and len(message) < 100
    code, message, field = refused(stub.ReportOutcomes, pb.ReportOutcomesRequest(
        batch_id="many", outcomes=[outcome()] * 11))
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "outcomes")
    assert "at most 10" in message


def test_refusals_are_counted_and_only_a_few_a_second_are_logged(stub, srv) -> None:
    series = 'attribid_refusals_total{code="NOT_FOUND",method="GetAllocation"}'
    before = metric(srv, series)
    mark = len(srv.lines)
    started = time.monotonic()
    for _ in range(30):
        code, _message, _field = refused(stub.GetAllocation, pb.GetAllocationRequest(
            campaign_id="nobody-" + "n" * 100))
        assert code is grpc.StatusCode.NOT_FOUND
    windows = math.ceil(time.monotonic() - started) + 1  # rate windows the calls can span
    assert metric(srv, series) == before + 30  # every refusal counted

    def logged() -> list[dict[str, Any]]:
        return [line for line in srv.lines[mark:]
                if line["event"] == "refused" and line["method"] == "GetAllocation"]

    def suppressed() -> int:
        return sum(line["suppressed"].get("GetAllocation", 0) for line in srv.lines[mark:]
                   if line["event"] == "refusals suppressed")

    # The lines held back are reported in a summary at the end of their second.
    assert wait_for(lambda: len(logged()) + suppressed() == 30, timeout=5)
    assert 1 <= len(logged()) <= 3 * windows
    assert all(len(line["detail"]) < 250 for line in logged())
