"""Request validation, in process and without protobuf: each refusal names its field."""
from __future__ import annotations

import numpy as np
import pytest

from attribid.models.errors import InvalidArgument
from attribid.kernels.taxonomy import CLICK
from attribid.core.types import RawJourney
from attribid.core.validate import RequestValidator

NOW = 1_764_300_000.0
CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")
UNSPECIFIED = 0  # no interaction given


def touch(channel="search", t=NOW - 3600, interaction=CLICK, cost=0.5, device=0):
    return (channel, int(t * 1000), interaction, cost, device)


def request(touches, channel="", floor_price=0.0, timestamp_ms=0):
    return RawJourney.of(touches, request_id="r", impression_channel=channel,
                         floor_price=floor_price, impression_timestamp_ms=timestamp_ms)


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
    ([touch(interaction=UNSPECIFIED)], {}, "journey[0].interaction"),
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


def test_columns_of_other_dtypes_are_converted():
    raw = RawJourney(channel=["email", "search"], timestamp_ms=[int((NOW - 60) * 1000), int(NOW * 1000)],
                     interaction=np.array([2, 1], np.int64), cost=[0, 1], device=(0, 3))
    j = V.validate(raw, NOW)
    assert j.cost.dtype == np.float64 and j.cost.tolist() == [0.0, 1.0]
    assert j.device.tolist() == [0, 3] and j.interaction.tolist() == [2, 1]


def test_columns_of_different_lengths_are_a_caller_error():
    raw = request([touch(), touch()])
    raw.cost = raw.cost[:1]
    with pytest.raises(ValueError, match="2 entries"):
        V.validate(raw, NOW)
