"""The API edge in process: messages to core objects, core errors to gRPC status."""
from __future__ import annotations

import math
import re
from pathlib import Path

import grpc
import numpy as np
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from attribid.api import convert
from attribid.api.status import CODES, Refusal
from attribid.kernels.taxonomy import CLICK, DEVICES, IMPRESSION
from attribid.models import errors
from attribid.models.campaign.book import CONFIGURED_FLIGHT_S, DEFAULT_CAMPAIGN_FLIGHT_S
from attribid.v1 import attribution_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]


def test_proto_enums_are_the_core_codes():
    assert (pb.INTERACTION_IMPRESSION, pb.INTERACTION_CLICK) == (IMPRESSION, CLICK)
    proto = {n.removeprefix("DEVICE_").lower(): v for n, v in pb.Device.items()}
    assert proto.pop("unspecified") == DEVICES["unknown"]
    assert proto == {name: v for name, v in DEVICES.items() if name != "unknown"}


def test_score_input_is_one_column_per_field():
    req = pb.ScoreRequest(
        request_id="r", campaign_id="c", product_category="toasters",
        impression=pb.ImpressionContext(channel="display", floor_price=0.25, timestamp_ms=7),
        journey=[pb.Touchpoint(channel="email", timestamp_ms=5, interaction=pb.INTERACTION_CLICK,
                               cost=0.5, device=pb.DEVICE_MOBILE),
                 pb.Touchpoint(channel="tv", timestamp_ms=6, interaction=7, cost=-1.0)])
    raw = convert.score_input(req)
    assert raw.channel == ["email", "tv"]  # names as sent: the validator refuses unknown ones
    assert raw.timestamp_ms.dtype == np.int64 and raw.timestamp_ms.tolist() == [5, 6]
    assert raw.interaction.dtype == np.int32 and raw.interaction.tolist() == [CLICK, 7]
    assert raw.cost.dtype == np.float64 and raw.cost.tolist() == [0.5, -1.0]
    assert raw.device.dtype == np.int32 and raw.device.tolist() == [DEVICES["mobile"], 0]
    assert (raw.request_id, raw.campaign_id, raw.product_category) == ("r", "c", "toasters")
    assert (raw.impression_channel, raw.floor_price, raw.impression_timestamp_ms) == ("display", 0.25, 7)
    assert convert.score_input(pb.ScoreRequest()).timestamp_ms.shape == (0,)


def test_a_configured_campaign_without_an_end_flies_24_hours_as_the_proto_says():
    proto = (ROOT / "protos" / "attribid" / "v1" / "attribution.proto").read_text()
    assert re.search(r"int64 flight_end_ms = 4; +// 0 = 24 hours after the start", proto)
    assert CONFIGURED_FLIGHT_S == 24 * 3600 and DEFAULT_CAMPAIGN_FLIGHT_S == 365 * 24 * 3600
    spec = convert.campaign_spec(pb.ConfigureCampaignRequest(campaign_id="c", budget=1.0), 1000.0)
    assert (spec.flight_start, spec.flight_end) == (1000.0, 1000.0 + CONFIGURED_FLIGHT_S)


def test_outcome_rows_are_passed_on_for_the_book_to_check():
    req = pb.ReportOutcomesRequest(outcomes=[pb.ChannelOutcome(channel="x", spend=float("nan"),
                                                               revenue=-1.0)])
    (row,) = convert.outcome_rows(req)
    assert row.channel == "x" and math.isnan(row.spend) and row.revenue == -1.0
    assert convert.period_end(req) is None
    assert convert.period_end(pb.ReportOutcomesRequest(period_end_ms=1500)) == 1.5


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_core_error_has_its_code_in_the_one_table():
    found = [errors.RequestError, *subclasses(errors.RequestError)]
    assert len(found) >= 8
    for cls in found:
        assert CODES[cls.status] is grpc.StatusCode[cls.status], cls


def test_a_refusal_naming_a_field_carries_it_and_shed_load_carries_nothing():
    r = Refusal.of(errors.NotFound("campaign_id", "unknown campaign 'x'"))
    assert (r.code, r.message) == (grpc.StatusCode.NOT_FOUND, "campaign_id: unknown campaign 'x'")
    ((key, value),) = r.trailing_metadata()
    status = status_pb2.Status.FromString(value)
    assert key == "grpc-status-details-bin"
    assert (status.code, status.message) == (grpc.StatusCode.NOT_FOUND.value[0], r.message)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == \
        [("campaign_id", "unknown campaign 'x'")]
    shed = Refusal.of(errors.LoadShed("", "server overloaded"))
    assert shed.code is grpc.StatusCode.RESOURCE_EXHAUSTED and shed.trailing_metadata() == ()


def _by_wrappers(req: pb.ScoreRequest):
    """``score_input`` as it reads the touchpoints through their wrappers (its fallback)."""
    imp = req.impression
    return convert.journey_input(
        req.journey, request_id=req.request_id, campaign_id=req.campaign_id,
        product_category=req.product_category, impression_channel=imp.channel,
        floor_price=imp.floor_price, impression_timestamp_ms=imp.timestamp_ms)


def _assert_same_journey(req: pb.ScoreRequest) -> None:
    got, want = convert.score_input(req), _by_wrappers(req)
    assert got.channel == want.channel
    for name in ("timestamp_ms", "interaction", "cost", "device"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.flags.c_contiguous, name
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), name  # NaN and -0.0 bit for bit
    assert repr((got.request_id, got.campaign_id, got.product_category, got.impression_channel,
                 got.floor_price, got.impression_timestamp_ms)) == repr((
        want.request_id, want.campaign_id, want.product_category, want.impression_channel,
        want.floor_price, want.impression_timestamp_ms))  # repr: a NaN floor equals itself


touchpoints = st.builds(
    pb.Touchpoint,
    channel=st.one_of(st.sampled_from(["", "search", "email", "tv", "é€\U0001F600"]), st.text()),
    timestamp_ms=st.integers(-2**63, 2**63 - 1), interaction=st.integers(-2**31, 2**31 - 1),
    cost=st.floats(allow_nan=True, allow_infinity=True), device=st.integers(-2**31, 2**31 - 1))


@settings(max_examples=300, deadline=None, database=None)
@given(journey=st.lists(touchpoints, max_size=20), request_id=st.text(max_size=10),
       floor_price=st.floats(allow_nan=True))
def test_the_compiled_reader_reads_touchpoints_as_their_wrappers_do(journey, request_id,
                                                                    floor_price):
    req = pb.ScoreRequest(request_id=request_id, journey=journey, campaign_id="c",
                          impression=pb.ImpressionContext(channel="x", floor_price=floor_price))
    _assert_same_journey(pb.ScoreRequest.FromString(req.SerializeToString()))


def test_the_compiled_reader_skips_unknown_fields_and_leaves_groups_to_the_wrappers():
    touch = pb.Touchpoint(channel="search", timestamp_ms=5, cost=0.5).SerializeToString()
    unknown = bytes([0x30, 0x05,                    # field 6, varint
                     0x3A, 0x02, 0x61, 0x62,        # field 7, bytes
                     0x45, 1, 2, 3, 4,              # field 8, fixed32
                     0x49, 1, 2, 3, 4, 5, 6, 7, 8,  # field 9, fixed64
                     0x08, 0x01])                   # field 1 (channel) as a varint: unknown
    group = bytes([0x53, 0x08, 0x01, 0x54])         # field 10, a group
    for extra in (unknown, group, unknown + group):
        inner = touch + extra
        data = (bytes([0x18, 0x07])                 # field 3 (journey) as a varint: unknown
                + bytes([0x1A, len(inner)]) + inner
                + pb.ScoreRequest(journey=[pb.Touchpoint(channel="email")]).SerializeToString()
                + bytes([0xF8, 0x07, 0x01]))        # field 127, varint
        req = pb.ScoreRequest.FromString(data)
        assert [t.channel for t in req.journey] == ["search", "email"]
        _assert_same_journey(req)


def test_the_compiled_reader_reads_long_journeys_and_no_journey():
    names = ("search", "display", "email")
    long = pb.ScoreRequest(journey=[pb.Touchpoint(channel=names[i % 3], timestamp_ms=i,
                                                  cost=i / 3) for i in range(5000)])
    for req in (long, pb.ScoreRequest(), pb.ScoreRequest(journey=[pb.Touchpoint()])):
        _assert_same_journey(req)
