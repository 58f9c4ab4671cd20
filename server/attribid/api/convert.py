"""Protobuf <-> core objects, in one place, so the core never touches messages it returns."""
from __future__ import annotations

import math

from attribid.models.campaign.book import AllocationSnapshot, CampaignSpec, ChannelSpec, OutcomeRow
from attribid.models.errors import InvalidArgument
from attribid.core.scoring import Scored
from attribid.v1 import attribution_pb2 as pb

DEFAULT_FLIGHT_S = 86400.0


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
        pacing=snap.pacing,
    )


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(field, "must be finite")
    return value


def campaign_spec(req: pb.ConfigureCampaignRequest, now: float) -> CampaignSpec:
    start = req.flight_start_ms / 1000.0 if req.flight_start_ms else now
    end = req.flight_end_ms / 1000.0 if req.flight_end_ms else start + DEFAULT_FLIGHT_S
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
    )


def outcome_rows(req: pb.ReportOutcomesRequest) -> list[OutcomeRow]:
    rows = []
    for i, o in enumerate(req.outcomes):
        values = {}
        for name in ("spend", "conversions", "revenue", "impressions"):
            v = getattr(o, name)
            if not (math.isfinite(v) and v >= 0):
                raise InvalidArgument(f"outcomes[{i}].{name}", "must be finite and >= 0")
            values[name] = v
        rows.append(OutcomeRow(channel=o.channel, **values))
    return rows
