"""Protobuf <-> core objects, in one place: the core neither reads nor builds a message.

Requests become plain objects (a ``RawJourney``'s touchpoints become NumPy columns in one
pass); the core validates them, so it is as safe when called without the API.

A ScoreRequest's touchpoints are read off its own serialized bytes by one compiled pass
(``_touch_columns``): reading five attributes of each touchpoint's wrapper cost three times
as much, and it was most of what the event loop spent on a call outside gRPC.
"""
from __future__ import annotations

import math
from operator import attrgetter
from typing import Any

from numba import njit
from numba import types as nb
import numpy as np

from attribid.kernels.config import FLAGS
from attribid.models.campaign.book import (CONFIGURED_FLIGHT_S, AllocationSnapshot, CampaignSpec,
                                           ChannelSpec, OutcomeColumns, OutcomeRow)
from attribid.models.campaign.model import NETWORK
from attribid.models.errors import InvalidArgument
from attribid.core.conversions import Credited, RawConversion
from attribid.core.scoring import Scored
from attribid.core.types import RawJourney
from attribid.v1 import attribution_pb2 as pb


_CHANNEL = attrgetter("channel")
_TIMESTAMP_MS = attrgetter("timestamp_ms")
_INTERACTION = attrgetter("interaction")
_COST = attrgetter("cost")
_DEVICE = attrgetter("device")
#: a ChannelOutcome's numbers, in the order of OutcomeColumns.values
_OUTCOME_VALUES = tuple(attrgetter(name) for name in ("spend", "conversions", "revenue",
                                                      "impressions"))


def score_input(req: pb.ScoreRequest) -> RawJourney:
    """A ScoreRequest as the core's RawJourney (validated by ``RequestValidator``)."""
    imp = req.impression
    fields: dict[str, Any] = dict(
        request_id=req.request_id, campaign_id=req.campaign_id,
        product_category=req.product_category, impression_channel=imp.channel,
        floor_price=imp.floor_price, impression_timestamp_ms=imp.timestamp_ms)
    data = req.SerializeToString()
    ok, ts, interaction, cost, device, which, spans = _touch_columns(np.frombuffer(data, np.uint8))
    if not ok:  # what the compiled pass does not read (a group among unknown fields)
        return journey_input(req.journey, **fields)
    # Each distinct channel name is decoded once (a journey has a handful).
    names = [data[a:b].decode() for a, b in spans.tolist()]
    return RawJourney(channel=list(map(names.__getitem__, which.tolist())), timestamp_ms=ts,
                      interaction=interaction, cost=cost, device=device, **fields)


#: a message's serialized bytes, as ``np.frombuffer`` views them
_BYTES = nb.Array(nb.uint8, 1, "C", readonly=True)


@njit(nb.Tuple((nb.uint64, nb.int64))(_BYTES, nb.int64, nb.int64), cache=FLAGS["cache"])
def _varint(buf, i, size):
    """The varint at ``buf[i]`` and the index after it; index -1 when cut short."""
    value = np.uint64(0)
    shift = np.uint64(0)
    while i < size and shift < np.uint64(64):
        b = buf[i]
        i += 1
        value |= np.uint64(b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += np.uint64(7)
    return value, np.int64(-1)


@njit(nb.int64(_BYTES, nb.int64, nb.int64, nb.uint64), cache=FLAGS["cache"])
def _skip(buf, i, size, key):
    """The index after the value of field ``key`` at ``buf[i]``; -1 for a group or cut short."""
    wire = key & np.uint64(7)
    if wire == 0:
        _, i = _varint(buf, i, size)
    elif wire == 1:
        i += 8
    elif wire == 2:
        length, i = _varint(buf, i, size)
        if i >= 0:
            i += np.int64(length)
    elif wire == 5:
        i += 4
    else:
        return -1
    return i if i <= size else -1


@njit(nb.Tuple((nb.boolean, nb.int64[::1], nb.int32[::1], nb.float64[::1], nb.int32[::1],
               nb.int64[::1], nb.int64[:, ::1]))(_BYTES), cache=FLAGS["cache"])
def _touch_columns(buf):
    """The touchpoints of a serialized ScoreRequest (field 3, repeated Touchpoint) as columns.

    Returns ``(ok, timestamp_ms, interaction, cost, device, which, spans)``: touchpoint ``k``'s
    channel name is ``buf[spans[which[k]][0]:spans[which[k]][1]]``, one span per distinct
    name. Fields are read as protobuf parses them (an absent one is 0; enums and int32 keep
    the low 32 bits of their varint); unknown fields are skipped. ``ok`` is False for bytes
    this pass does not read (groups, or bytes cut short), for the caller to read the message
    itself.
    """
    size = buf.shape[0]
    fail = (False, np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float64),
            np.empty(0, np.int32), np.empty(0, np.int64), np.empty((0, 2), np.int64))
    # First pass: how many touchpoints.
    n = 0
    i = 0
    while i < size:
        key, i = _varint(buf, i, size)
        if i < 0:
            return fail
        i = _skip(buf, i, size, key)
        if i < 0:
            return fail
        if key == 0x1A:  # field 3, length-delimited
            n += 1
    ts = np.zeros(n, np.int64)
    interaction = np.zeros(n, np.int32)
    cost = np.zeros(n, np.float64)
    cost_bits = cost.view(np.uint64)
    device = np.zeros(n, np.int32)
    which = np.zeros(n, np.int64)
    spans = np.zeros((n + 1, 2), np.int64)
    start = np.zeros(n, np.int64)
    end = np.zeros(n, np.int64)  # a touchpoint without a channel keeps the span (0, 0): ""
    distinct = 0
    k = 0
    i = 0
    while i < size:
        key, i = _varint(buf, i, size)
        if key != 0x1A:
            i = _skip(buf, i, size, key)
            continue
        length, i = _varint(buf, i, size)
        stop = i + np.int64(length)  # within buf: the first pass skipped over it
        while i < stop:
            tag, i = _varint(buf, i, size)
            if i < 0 or i > stop:
                return fail
            if tag == 0x0A:  # 1: channel
                length, i = _varint(buf, i, size)
                if i < 0:
                    return fail
                start[k] = i
                end[k] = i + np.int64(length)
                i = end[k]
            elif tag == 0x10 or tag == 0x18 or tag == 0x28:  # 2, 3, 5: varints
                value, i = _varint(buf, i, size)
                if i < 0:
                    return fail
                if tag == 0x10:
                    ts[k] = np.int64(value)
                elif tag == 0x18:
                    interaction[k] = np.int32(np.uint32(value & np.uint64(0xFFFFFFFF)))
                else:
                    device[k] = np.int32(np.uint32(value & np.uint64(0xFFFFFFFF)))
            elif tag == 0x21:  # 4: cost, a little-endian double
                if i + 8 > stop:
                    return fail
                bits = np.uint64(0)
                for q in range(8):
                    bits |= np.uint64(buf[i + q]) << np.uint64(8 * q)
                cost_bits[k] = bits
                i += 8
            else:
                i = _skip(buf, i, size, tag)
            if i < 0 or i > stop:
                return fail
        # the touchpoint's name: one already seen, or a new span
        a, b = start[k], end[k]
        found = -1
        for d in range(distinct):
            if spans[d, 1] - spans[d, 0] == b - a:
                same = True
                for q in range(b - a):
                    if buf[spans[d, 0] + q] != buf[a + q]:
                        same = False
                        break
                if same:
                    found = d
                    break
        if found < 0:
            spans[distinct, 0] = a
            spans[distinct, 1] = b
            found = distinct
            distinct += 1
        which[k] = found
        k += 1
    return True, ts, interaction, cost, device, which, spans[:distinct].copy()




def journey_input(journey: Any, **fields: Any) -> RawJourney:
    """Repeated Touchpoints as a RawJourney's columns; ``fields`` are its other fields."""
    # One pass creates the touchpoints' wrappers; the per-field passes below reuse them
    # (iterating the repeated field itself would create them again for every field).
    # map() with an attrgetter costs less per touchpoint than a generator expression.
    touches = list(journey)
    n = len(touches)
    return RawJourney(
        channel=list(map(_CHANNEL, touches)),
        timestamp_ms=np.fromiter(map(_TIMESTAMP_MS, touches), np.int64, n),
        interaction=np.fromiter(map(_INTERACTION, touches), np.int32, n),
        cost=np.fromiter(map(_COST, touches), np.float64, n),
        device=np.fromiter(map(_DEVICE, touches), np.int32, n), **fields)


def score_response(scored: Scored, channels: tuple[str, ...], model_version: str) -> pb.ScoreResponse:
    j = scored.journey
    reply = pb.ScoreResponse(
        request_id=j.request_id, conversion_probability=scored.probability,
        impression_bid=scored.impression_bid, model_version=model_version,
        fallback=scored.fallback, fallback_reason=scored.reason, truncated=j.truncated,
        touchpoints_used=int(j.channel.shape[0]),
    )
    # Filling the maps in place costs about half of passing dicts to the constructor.
    credit = reply.credit
    for name, v in zip(channels, scored.credit.tolist()):
        if v > 0.0:
            credit[name] = v
    if scored.bids is not None:
        bid = reply.bid
        for name, v in zip(channels, scored.bids.tolist()):
            bid[name] = v
    return reply


def allocation_message(snap: AllocationSnapshot) -> pb.Allocation:
    return pb.Allocation(
        campaign_id=snap.campaign_id, spend=snap.spend, share=snap.share, revenue=snap.revenue,
        acquisitions=snap.acquisitions, exposure=snap.exposure, cpa=snap.cpa,
        objective=snap.objective, solved_at_ms=int(snap.solved_at * 1000), version=snap.version,
        pacing=snap.pacing, stale=snap.stale, stale_reason=snap.stale_reason,
        attribution=snap.attribution,
    )


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(field, "must be finite")
    return value


def campaign_spec(req: pb.ConfigureCampaignRequest, now: float) -> CampaignSpec:
    """The request in seconds, with the flight's defaults filled; the book checks the rest."""
    start = req.flight_start_ms / 1000.0 if req.flight_start_ms else now
    end = req.flight_end_ms / 1000.0 if req.flight_end_ms else start + CONFIGURED_FLIGHT_S
    if req.flight_start_ms < 0 or req.flight_end_ms < 0:
        raise InvalidArgument("flight_start_ms" if req.flight_start_ms < 0 else "flight_end_ms",
                              "must be >= 0")
    if end <= start:
        raise InvalidArgument("flight_end_ms", "must be after flight_start_ms")
    channels = tuple(
        ChannelSpec(name=c.name, min=_finite(c.min, f"channels[{i}].min"),
                    max=_finite(c.max, f"channels[{i}].max"),
                    value_per_conversion=_finite(c.value_per_conversion,
                                                 f"channels[{i}].value_per_conversion"))
        for i, c in enumerate(req.channels))
    w = req.objective
    return CampaignSpec(
        campaign_id=req.campaign_id, budget=_finite(req.budget, "budget"), flight_start=start,
        flight_end=end, weight_revenue=_finite(w.revenue, "objective.revenue"),
        weight_acquisitions=_finite(w.acquisitions, "objective.acquisitions"),
        weight_exposure=_finite(w.exposure, "objective.exposure"),
        max_cpa=_finite(req.max_cpa, "max_cpa"), channels=channels,
        bid_floor=_finite(req.bid_floor, "bid_floor"), bid_cap=_finite(req.bid_cap, "bid_cap"),
        attribution=req.attribution or NETWORK,
    )


def outcome_columns(req: pb.ReportOutcomesRequest) -> OutcomeColumns:
    """The request's rows as columns, as they are; ``CampaignBook.report`` validates them.

    As in ``score_input``: the rows' wrappers are made once, then one C-level pass per field.

    >>> req = pb.ReportOutcomesRequest(outcomes=[pb.ChannelOutcome(channel="search", spend=2.0)])
    >>> cols = outcome_columns(req)
    >>> cols.channel, cols.values.tolist()
    (['search'], [[2.0, 0.0, 0.0, 0.0]])
    """
    rows = list(req.outcomes)
    n = len(rows)
    values = np.empty((n, len(_OUTCOME_VALUES)))
    for j, get in enumerate(_OUTCOME_VALUES):
        values[:, j] = np.fromiter(map(get, rows), np.float64, n)
    return OutcomeColumns(list(map(_CHANNEL, rows)), values)


def outcome_rows(req: pb.ReportOutcomesRequest) -> list[OutcomeRow]:
    """The request's rows as they are; ``CampaignBook.report`` validates them."""
    return [OutcomeRow(channel=o.channel, spend=o.spend, conversions=o.conversions,
                       revenue=o.revenue, impressions=o.impressions) for o in req.outcomes]


def period_end(req: pb.ReportOutcomesRequest) -> float | None:
    """The report's period end in epoch seconds; None (= now) when unset."""
    return req.period_end_ms / 1000.0 if req.period_end_ms else None


def conversions_input(req: pb.ReportConversionsRequest) -> list[RawConversion]:
    """The request's conversions, each journey scored at its conversion's time (validated
    by ``attribid.core.conversions``).

    >>> req = pb.ReportConversionsRequest(conversions=[pb.Conversion(
    ...     conversion_id="o1", timestamp_ms=5000, value=2.0,
    ...     journey=[pb.Touchpoint(channel="search", timestamp_ms=1000)])])
    >>> (raw,) = conversions_input(req)
    >>> raw.journey.channel, raw.journey.impression_timestamp_ms, raw.value
    (['search'], 5000, 2.0)
    """
    out = []
    for c in req.conversions:
        journey = journey_input(c.journey, campaign_id=req.campaign_id,
                           impression_timestamp_ms=c.timestamp_ms)
        out.append(RawConversion(c.conversion_id, c.timestamp_ms, c.value, journey))
    return out


def idle_input(req: pb.ReportConversionsRequest) -> list[RawJourney]:
    """The request's journeys that ended without converting (validated at the server's clock)."""
    return [journey_input(j.journey, campaign_id=req.campaign_id) for j in req.non_converting]


def conversions_response(duplicate: bool, accepted: int, version: int, attribution: str,
                         credited: Credited | None,
                         channels: tuple[str, ...]) -> pb.ReportConversionsResponse:
    reply = pb.ReportConversionsResponse(duplicate=duplicate, accepted=accepted,
                                         allocation_version=version, attribution=attribution)
    if credited is not None and not duplicate:
        conversions, value = credited.per_channel(channels)
        reply.credited_conversions.update(conversions)
        reply.credited_value.update(value)
    return reply
