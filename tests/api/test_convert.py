"""The API edge in process: messages to core objects, core errors to gRPC status."""
from __future__ import annotations

import math
import re
from pathlib import Path

import grpc
import numpy as np
from google.rpc import error_details_pb2, status_pb2

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
