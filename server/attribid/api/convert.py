"""Protobuf <-> core objects, in one place: the core neither reads nor builds a message.

Requests become plain objects (a ``RawJourney``'s touchpoints become NumPy columns in one
pass); the core validates them, so it is as safe when called without the API.
"""
from __future__ import annotations

import math
from operator import attrgetter
from typing import Any

import numpy as np

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
    return journey_input(
        req.journey, request_id=req.request_id, campaign_id=req.campaign_id,
        product_category=req.product_category, impression_channel=imp.channel,
        floor_price=imp.floor_price, impression_timestamp_ms=imp.timestamp_ms)


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
