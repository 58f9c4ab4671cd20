"""Refusals carry a google.rpc.BadRequest naming the field; reflection answers as v1 and v1alpha."""
from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from attribid.api import reflection
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.AttributionStub(channel)


def refusal(call, request) -> tuple[grpc.RpcError, error_details_pb2.BadRequest.FieldViolation]:
    """The error a call raises and the one field violation its status details carry."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    status = rpc_status.from_call(info.value)  # also checks code and message agree with the call's
    assert status is not None, "no google.rpc.Status in the trailers"
    assert len(status.details) == 1 and status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    assert len(bad.field_violations) == 1
    return info.value, bad.field_violations[0]


def touch(cost: float = 0.5) -> pb.Touchpoint:
    return pb.Touchpoint(channel="search", timestamp_ms=int((time.time() - 600) * 1000),
                         interaction=pb.INTERACTION_CLICK, cost=cost)


def test_bad_score_names_the_field_in_the_details(stub):
    error, violation = refusal(stub.Score, pb.ScoreRequest(journey=[touch(-1.0)]))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "journey[0].cost: must be finite and >= 0"  # the message as it was
    assert (violation.field, violation.description) == ("journey[0].cost", "must be finite and >= 0")


def test_bad_report_outcomes_names_the_field_in_the_details(stub):
    request = pb.ReportOutcomesRequest(batch_id="details-1", outcomes=[
        pb.ChannelOutcome(channel="search", spend=1.0),
        pb.ChannelOutcome(channel="email", spend=float("nan"))])
    error, violation = refusal(stub.ReportOutcomes, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "outcomes[1].spend: must be finite and >= 0"
    assert violation.field == "outcomes[1].spend"
    error, violation = refusal(stub.ReportOutcomes, pb.ReportOutcomesRequest(campaign_id="nobody"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and violation.field == "batch_id"


def test_bad_configure_campaign_names_the_field_in_the_details(stub):
    error, violation = refusal(stub.ConfigureCampaign,
                               pb.ConfigureCampaignRequest(campaign_id="details", budget=-5.0))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violation.field == "budget" and error.details() == f"budget: {violation.description}"
    error, violation = refusal(stub.ConfigureCampaign, pb.ConfigureCampaignRequest(
        campaign_id="details", budget=100.0, channels=[pb.ChannelConstraint(name="television")]))
    assert violation.field == "channels[0].name" and "television" in violation.description


def test_unknown_campaign_is_not_found_naming_campaign_id(stub):
    for call, request in ((stub.GetAllocation, pb.GetAllocationRequest(campaign_id="nope")),
                          (stub.Score, pb.ScoreRequest(campaign_id="nope", journey=[touch()]))):
        error, violation = refusal(call, request)
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert violation.field == "campaign_id" and "nope" in violation.description


def listed(replies) -> set[str]:
    return {s.name for r in replies for s in r.list_services_response.service}


def test_reflection_v1alpha_and_v1_both_list_the_service(server):
    with grpc.insecure_channel(server.address) as channel:
        old = list(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        # A v1 client: v1 messages on the v1 method, as grpcurl and other languages send them.
        request, response = reflection.v1_messages()
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=request.SerializeToString, response_deserializer=response.FromString)
        new = list(info(iter([request(list_services=""),
                              request(file_containing_symbol=reflection.V1_SERVICE_NAME)]),
                        timeout=10))
    for names in (listed(old), listed(new)):
        assert {"attribid.v1.Attribution", "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection",
                "grpc.reflection.v1.ServerReflection"} <= names
    assert all(type(r).DESCRIPTOR.full_name == "grpc.reflection.v1.ServerReflectionResponse"
               for r in new)
    # and v1 describes itself, so a v1 client can look its own service up
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in new[1].file_descriptor_response.file_descriptor_proto]
    assert [f.package for f in files] == ["grpc.reflection.v1"]
    assert [m.name for m in files[0].service[0].method] == ["ServerReflectionInfo"]


def test_a_refusal_quoting_a_huge_name_still_reaches_the_client(stub):
    """Message and details together must fit a client's trailing metadata limit (8 KiB)."""
    request = pb.ScoreRequest(journey=[touch()])
    request.journey[0].channel = "x" * 20_000
    error, violation = refusal(stub.Score, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("journey[0].channel: unknown channel 'xxx")
    assert error.details().endswith(" chars)") and len(error.details()) <= 1000
    assert violation.field == "journey[0].channel"
