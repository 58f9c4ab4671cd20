"""Request validation, in process: each refusal names its field."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.models.errors import InvalidArgument
from attribid.v1 import attribution_pb2 as pb
from attribid.core.validate import RequestValidator

NOW = 1_764_300_000.0
CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def touch(channel="search", t=NOW - 3600, interaction=pb.INTERACTION_CLICK, cost=0.5, device=0):
    return pb.Touchpoint(channel=channel, timestamp_ms=int(t * 1000), interaction=interaction,
                         cost=cost, device=device)


def request(touches, **imp):
    return pb.ScoreRequest(request_id="r", journey=touches, impression=pb.ImpressionContext(**imp))


V = RequestValidator(CHANNELS, max_touchpoints=100, max_journey=4, future_tolerance_s=60)


def test_good_request_becomes_arrays():
    j = V.validate(request([touch("email", NOW - 7200), touch("search")], channel="display",
                           floor_price=0.1), NOW)
    assert j.channel.tolist() == [3, 0] and j.channel.dtype == np.int32
    assert j.timestamp.tolist() == [NOW - 7200, NOW - 3600]
    assert j.ref_time == NOW and j.impression_channel == 1 and not j.truncated


def test_long_journey_keeps_the_newest():
    touches = [touch(CHANNELS[i % 7], NOW - 1000 + i) for i in range(10)]
    j = V.validate(request(touches), NOW)
    assert j.truncated and j.channel.tolist() == [i % 7 for i in range(6, 10)]


@pytest.mark.parametrize("touches, imp, field", [
    ([], {}, "journey"),
    ([touch()] * 101, {}, "journey"),
    ([touch(), touch("tv")], {}, "journey[1].channel"),
    ([touch(t=NOW - 10), touch(t=NOW - 20)], {}, "journey[1].timestamp_ms"),
    ([touch(), touch(t=NOW + 3600)], {}, "journey[1].timestamp_ms"),
    ([touch(t=0)], {}, "journey[0].timestamp_ms"),
    ([touch(), touch(cost=float("nan"))], {}, "journey[1].cost"),
    ([touch(cost=-1.0)], {}, "journey[0].cost"),
    ([touch(cost=float("inf"))], {}, "journey[0].cost"),
    ([touch(interaction=pb.INTERACTION_UNSPECIFIED)], {}, "journey[0].interaction"),
    ([touch(interaction=7)], {}, "journey[0].interaction"),
    ([touch(device=9)], {}, "journey[0].device"),
    ([touch()], {"channel": "radio"}, "impression.channel"),
    ([touch()], {"floor_price": float("nan")}, "impression.floor_price"),
    ([touch()], {"timestamp_ms": int((NOW + 3600) * 1000)}, "impression.timestamp_ms"),
])
def test_refusals_name_the_field(touches, imp, field):
    with pytest.raises(InvalidArgument) as info:
        V.validate(request(touches, **imp), NOW)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


def test_truncated_positions_keep_original_indices():
    touches = [touch(t=NOW - 100 + i) for i in range(10)]
    touches[8] = touch(t=NOW - 100 + 8, cost=-2)
    with pytest.raises(InvalidArgument, match=r"journey\[8\]\.cost"):
        V.validate(request(touches), NOW)
