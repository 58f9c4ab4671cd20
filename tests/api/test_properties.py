"""Property-based: whatever a caller sends, every RPC answers with a documented status code,
every number in an OK answer is finite, and the server stays healthy and re-solving.

Messages of the right schema with extreme values (int64 extremes, 1e308, inf, nan, -0.0,
huge and unicode/NUL strings, empty everything, duplicates, min > max, end before start),
and raw random bytes, against a server of its own (the campaigns it creates stay there).
The counts by status code per RPC are printed at the end of the run.
"""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribid.api.handlers import SERVICE
from attribid.v1 import attribution_pb2 as pb
from tests.serverproc import InProcessServer

#: the codes the API documents (README, proto); anything else is a bug
DOCUMENTED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED",
              "DEADLINE_EXCEEDED", "UNAVAILABLE", "UNAUTHENTICATED", "PERMISSION_DENIED"}
CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")
#: examples per RPC: well under 30 s for the whole module on this project's machine;
#: PROPERTY_EXAMPLES_SCALE=10 (an environment variable) runs ten times as many
SCALE = float(os.environ.get("PROPERTY_EXAMPLES_SCALE", "1"))
EXAMPLES = {name: max(1, int(n * SCALE)) for name, n in {
    "Score": 250, "ScoreStream": 80, "ReportOutcomes": 250, "GetAllocation": 100,
    "ConfigureCampaign": 300, "ReportConversions": 150, "bytes": 300}.items()}
COUNTS: Counter[tuple[str, str]] = Counter()
SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

NOW_MS = int(time.time() * 1000)
DAY_MS = 86_400_000
INT64 = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -2**63, 2**62, NOW_MS, NOW_MS - 3_600_000,
                                   NOW_MS + 10**9, NOW_MS - 10**12]),
                  st.integers(-2**63, 2**63 - 1))
INT32 = st.one_of(st.sampled_from([0, 1, 2, 3, -1, 4, 2**31 - 1, -2**31]),
                  st.integers(-2**31, 2**31 - 1))
DOUBLE = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 0.5, 100.0, 1e12, 1.0000001e12, 1e308, -1e308,
                                    math.inf, -math.inf, math.nan, 5e-324, -1.0, 1e-300]),
                   st.floats(allow_nan=True, allow_infinity=True))
SOME_TEXT = st.one_of(st.sampled_from(["", "c1", "default", "\x00", "\x00c1", "é" * 10,
                                       "x" * 16384, "\U0001F600" * 5000, "\u202e", " ", "c" * 129]),
                      st.text(max_size=40))
#: campaigns the suite configures, so that reports and scores also reach real campaigns
CAMPAIGNS = ("", "p1", "p2", "p3")


def mostly(valid: st.SearchStrategy[Any], extreme: st.SearchStrategy[Any],
           one_in: int = 8) -> st.SearchStrategy[Any]:
    """``extreme`` about once in ``one_in`` draws, else ``valid``: a message whose every field
    is extreme is refused at its first field, so most fields are valid and a few are not."""
    # (one_of would not do: it merges equal branches)
    return st.sampled_from(range(one_in)).flatmap(lambda k: extreme if k == one_in - 1 else valid)


MONEY = mostly(st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e12, 5e11, 0.01])), DOUBLE)
WEIGHT = mostly(st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, 1.0, 1e6])), DOUBLE)
CHANNEL = mostly(st.sampled_from(CHANNELS), SOME_TEXT)
CAMPAIGN = mostly(st.sampled_from(CAMPAIGNS), SOME_TEXT)
ID = mostly(st.one_of(st.sampled_from(["b1", "b2", "r1"]), st.uuids().map(str)), SOME_TEXT)
RECENT_MS = mostly(st.integers(NOW_MS - 30 * DAY_MS, NOW_MS - 1000), INT64)

#: rows of a repeated field: each of their fields extreme more rarely, or none would pass
ROW_MONEY = mostly(st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e12, 0.01])), DOUBLE, 40)
touchpoints = st.builds(
    pb.Touchpoint, channel=mostly(st.sampled_from(CHANNELS), SOME_TEXT, 40),
    timestamp_ms=mostly(st.integers(NOW_MS - 30 * DAY_MS, NOW_MS - 1000), INT64, 40),
    interaction=mostly(st.sampled_from([1, 2]), INT32, 40), cost=ROW_MONEY,
    device=mostly(st.integers(0, 3), INT32, 40))


def _journey(touches: list[pb.Touchpoint], copies: int, oldest_first: bool) -> list[pb.Touchpoint]:
    journey = touches * copies
    return sorted(journey, key=lambda t: t.timestamp_ms) if oldest_first else journey


journeys = st.builds(_journey, st.lists(touchpoints, max_size=12),
                     mostly(st.just(1), st.sampled_from([40, 300])),
                     mostly(st.just(True), st.just(False)))
score_requests = st.builds(
    pb.ScoreRequest, request_id=ID, campaign_id=CAMPAIGN, journey=journeys,
    impression=st.one_of(st.none(), st.builds(pb.ImpressionContext, channel=CHANNEL,
                                              floor_price=MONEY,
                                              timestamp_ms=mostly(st.just(0), INT64))),
    product_category=mostly(st.sampled_from(["", "toasters", "coffee_makers"]), SOME_TEXT))
outcomes = st.builds(pb.ChannelOutcome, channel=mostly(st.sampled_from(CHANNELS), SOME_TEXT, 40),
                     spend=ROW_MONEY, conversions=ROW_MONEY, revenue=ROW_MONEY,
                     impressions=ROW_MONEY)
report_requests = st.builds(
    pb.ReportOutcomesRequest, batch_id=ID, campaign_id=CAMPAIGN,
    outcomes=st.builds(lambda rows, copies: rows * copies, st.lists(outcomes, max_size=12),
                       mostly(st.just(1), st.sampled_from([400, 2501]))),
    period_end_ms=mostly(st.one_of(st.just(0), st.integers(NOW_MS - DAY_MS, NOW_MS)), INT64))
constraints = st.builds(pb.ChannelConstraint, name=CHANNEL, min=MONEY, max=MONEY,
                        value_per_conversion=MONEY)
flights = mostly(st.one_of(st.just((0, 0)),
                           st.integers(NOW_MS - DAY_MS, NOW_MS + DAY_MS).flatmap(
                               lambda start: st.tuples(st.just(start), st.integers(
                                   start + 1, start + 30 * DAY_MS)))),
                 st.tuples(INT64, INT64))
configure_requests = st.builds(
    lambda flight, **fields: pb.ConfigureCampaignRequest(
        flight_start_ms=flight[0], flight_end_ms=flight[1], **fields),
    flight=flights, campaign_id=CAMPAIGN,
    budget=mostly(st.one_of(st.floats(0.01, 1e12), st.sampled_from([1000.0, 1e12, 0.01])),
                  DOUBLE),
    objective=st.one_of(st.none(), st.builds(pb.ObjectiveWeights, revenue=WEIGHT,
                                             acquisitions=WEIGHT, exposure=WEIGHT)),
    max_cpa=MONEY,
    channels=mostly(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=7).flatmap(
        lambda names: st.tuples(*(st.builds(pb.ChannelConstraint, name=st.just(n), min=MONEY,
                                            max=MONEY, value_per_conversion=MONEY)
                                  for n in names)).map(list)),
        st.lists(constraints, max_size=8)),
    bid_floor=mostly(st.floats(0.0, 1.0), DOUBLE), bid_cap=mostly(st.floats(0.0, 10.0), DOUBLE),
    attribution=mostly(st.sampled_from(["", "network", "last-click", "time-decay", "reported"]),
                       SOME_TEXT))
allocation_requests = st.builds(pb.GetAllocationRequest, campaign_id=CAMPAIGN)
conversions = st.builds(pb.Conversion, conversion_id=ID, timestamp_ms=mostly(st.just(NOW_MS), INT64),
                        value=ROW_MONEY, journey=journeys)
conversion_requests = st.builds(
    pb.ReportConversionsRequest, batch_id=ID, campaign_id=CAMPAIGN,
    conversions=st.builds(lambda rows, copies: rows * copies, st.lists(conversions, max_size=6),
                          mostly(st.just(1), st.sampled_from([40, 200]))))


@pytest.fixture(scope="module")
def srv():
    with InProcessServer(resolve_period_s=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def channel(srv):
    with grpc.insecure_channel(srv.address, options=[
            ("grpc.max_receive_message_length", 8 << 20)]) as ch:
        yield ch


def non_finite(message: Message, where: str = "") -> list[str]:
    """Every double or float in ``message`` (nested, maps and lists too) that is not finite."""
    found = []
    for field, value in message.ListFields():
        name = f"{where}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            if entry.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
                found += [f"{name}[{k!r}]" for k, v in value.items() if not math.isfinite(v)]
            elif entry.message_type is not None:
                for k, v in value.items():
                    found += non_finite(v, f"{name}[{k!r}].")
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            values = value if field.is_repeated else [value]
            found += [name for v in values if not math.isfinite(v)]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            values = value if field.is_repeated else [value]
            for i, v in enumerate(values):
                found += non_finite(v, f"{name}[{i}].")
    return found


def unary(channel: grpc.Channel, rpc: str, request: Any) -> tuple[str, Message | None]:
    method = SERVICE.methods_by_name[rpc]
    reply_cls = getattr(pb, method.output_type.name)
    call = channel.unary_unary(f"/{SERVICE.full_name}/{rpc}",
                               request_serializer=None, response_deserializer=reply_cls.FromString)
    data = request if isinstance(request, bytes) else request.SerializeToString()
    try:
        return "OK", call(data, timeout=20)
    except grpc.RpcError as exc:
        return exc.code().name, None


def check(rpc: str, code: str, reply: Message | None) -> None:
    COUNTS[(rpc, code)] += 1
    assert code in DOCUMENTED, f"{rpc}: {code}"
    if reply is not None:
        assert non_finite(reply) == [], f"{rpc}: non-finite {non_finite(reply)} in {reply}"


@settings(max_examples=EXAMPLES["ConfigureCampaign"], **SETTINGS)
@given(request=configure_requests)
def test_configure_campaign_answers_a_documented_code(channel, request):
    code, reply = unary(channel, "ConfigureCampaign", request)
    check("ConfigureCampaign", code, reply)


@settings(max_examples=EXAMPLES["ReportOutcomes"], **SETTINGS)
@given(request=report_requests)
def test_report_outcomes_answers_a_documented_code(channel, request):
    code, reply = unary(channel, "ReportOutcomes", request)
    check("ReportOutcomes", code, reply)


@settings(max_examples=EXAMPLES["ReportConversions"], **SETTINGS)
@given(request=conversion_requests)
def test_report_conversions_answers_a_documented_code(channel, request):
    code, reply = unary(channel, "ReportConversions", request)
    check("ReportConversions", code, reply)


@settings(max_examples=EXAMPLES["Score"], **SETTINGS)
@given(request=score_requests)
def test_score_answers_a_documented_code(channel, request):
    code, reply = unary(channel, "Score", request)
    check("Score", code, reply)


@settings(max_examples=EXAMPLES["GetAllocation"], **SETTINGS)
@given(request=allocation_requests)
def test_get_allocation_answers_a_documented_code(channel, request):
    code, reply = unary(channel, "GetAllocation", request)
    check("GetAllocation", code, reply)


@settings(max_examples=EXAMPLES["ScoreStream"], **SETTINGS)
@given(requests=st.lists(st.one_of(score_requests.map(lambda r: r.SerializeToString()),
                                   st.binary(max_size=64)), min_size=0, max_size=6))
def test_score_stream_answers_documented_codes_in_band_and_at_the_end(channel, requests):
    call = channel.stream_stream(f"/{SERVICE.full_name}/ScoreStream", request_serializer=None,
                                 response_deserializer=pb.ScoreResponse.FromString)
    replies = []
    try:
        for reply in call(iter(requests), timeout=20):
            replies.append(reply)
        code = "OK"
    except grpc.RpcError as exc:
        code = exc.code().name
    check("ScoreStream", code, None)
    for reply in replies:
        in_band = grpc.StatusCode.OK.name
        if reply.error.code:
            in_band = next(c.name for c in grpc.StatusCode if c.value[0] == reply.error.code)
        check("ScoreStream.message", in_band, reply)


@settings(max_examples=EXAMPLES["bytes"], **SETTINGS)
@given(rpc=st.sampled_from([m.name for m in SERVICE.methods if not m.client_streaming]),
       data=st.one_of(st.binary(max_size=256), st.sampled_from([b"", b"\x00", b"\xff" * 64])))
def test_raw_bytes_get_a_documented_code(channel, rpc, data):
    code, reply = unary(channel, rpc, data)
    check(f"{rpc} (bytes)", code, reply)


def test_the_server_is_healthy_and_still_re_solving_afterwards(srv, channel, capsys):
    with grpc.insecure_channel(srv.address) as fresh:
        health = health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    configure = pb.ConfigureCampaignRequest(campaign_id="after", budget=1000.0)
    code, first = unary(channel, "ConfigureCampaign", configure)
    assert code == "OK" and first is not None
    rows = [pb.ChannelOutcome(channel=c, spend=10.0, conversions=1.0, revenue=50.0,
                              impressions=1000.0) for c in CHANNELS] * 5
    code, _ = unary(channel, "ReportOutcomes", pb.ReportOutcomesRequest(
        batch_id="after-1", campaign_id="after", outcomes=rows))
    assert code == "OK"
    deadline = time.monotonic() + 30
    version = first.version
    while version <= first.version and time.monotonic() < deadline:
        time.sleep(0.1)
        code, now = unary(channel, "GetAllocation", pb.GetAllocationRequest(campaign_id="after"))
        assert code == "OK" and now is not None
        version = now.version
    assert version > first.version, "the allocation loop no longer re-solves"
    # the default campaign too
    code, _ = unary(channel, "Score", pb.ScoreRequest(journey=[pb.Touchpoint(
        channel="search", timestamp_ms=int((time.time() - 60) * 1000),
        interaction=pb.INTERACTION_CLICK, cost=0.1)]))
    assert code == "OK"
    report = " ".join(f"{rpc}={dict(sorted((c, n) for (r, c), n in COUNTS.items() if r == rpc))}"
                      for rpc in sorted({r for r, _ in COUNTS}))
    with capsys.disabled():  # one line in the test report, to quote
        print(f"\nstatus codes by RPC: {report}")
    assert not [k for k in COUNTS if k[1] in ("INTERNAL", "UNKNOWN")], report
