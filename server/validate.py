"""Validate a ScoreRequest and turn it into numeric arrays (the first step of Score).

Every refusal names the field, e.g. ``journey[3].cost: must be finite and >= 0``.
A journey longer than ``max_journey`` keeps its most recent touchpoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribid.errors import InvalidArgument
from attribid.kernels.taxonomy import category_code
from attribid.v1 import attribution_pb2 as pb

_VALID_INTERACTIONS = (pb.INTERACTION_IMPRESSION, pb.INTERACTION_CLICK)
_MAX_DEVICE = max(pb.Device.values())


@dataclass(slots=True)
class Journey:
    """A validated request: what the featurizer and bidder need, nothing else."""

    request_id: str
    campaign_id: str
    channel: np.ndarray        # int32 [n], model channel codes
    timestamp: np.ndarray      # float64 [n], epoch seconds
    interaction: np.ndarray    # int8 [n]
    cost: np.ndarray           # float64 [n]
    device: np.ndarray         # int8 [n]
    category: int
    ref_time: float            # epoch seconds the journey is scored at
    impression_channel: int    # model channel code, -1 for none
    floor_price: float
    truncated: bool


class RequestValidator:
    """Checks requests against the served model's channels and the server's limits."""

    def __init__(self, channels: tuple[str, ...], max_touchpoints: int, max_journey: int,
                 future_tolerance_s: float) -> None:
        self.channels = channels
        self._codes = {name: i for i, name in enumerate(channels)}
        self.max_touchpoints = max_touchpoints
        self.max_journey = max_journey
        self.future_tolerance_s = future_tolerance_s

    def _code(self, name: str, field: str) -> int:
        code = self._codes.get(name)
        if code is None:
            known = ", ".join(self.channels)
            raise InvalidArgument(field, f"unknown channel {name!r} (known: {known})")
        return code

    def validate(self, req: pb.ScoreRequest, now: float) -> Journey:
        """``now`` is the server clock (epoch seconds), the default reference time."""
        touches = req.journey
        n = len(touches)
        if n == 0:
            raise InvalidArgument("journey", "must hold at least one touchpoint")
        if n > self.max_touchpoints:
            raise InvalidArgument("journey", f"{n} touchpoints, at most {self.max_touchpoints} "
                                  f"accepted (the newest {self.max_journey} are scored)")
        imp = req.impression
        ref_ms = imp.timestamp_ms
        if ref_ms < 0:
            raise InvalidArgument("impression.timestamp_ms", "must be >= 0 (0 = server clock)")
        ref_time = ref_ms / 1000.0 if ref_ms else now
        if ref_ms and ref_time > now + self.future_tolerance_s:
            raise InvalidArgument("impression.timestamp_ms", "is in the future")
        if not (math.isfinite(imp.floor_price) and imp.floor_price >= 0):
            raise InvalidArgument("impression.floor_price", "must be finite and >= 0")
        impression_channel = self._code(imp.channel, "impression.channel") if imp.channel else -1

        keep = touches[n - self.max_journey:] if n > self.max_journey else touches
        offset = n - len(keep)
        # Channel names must be checked one by one to name the bad one; the
        # numeric checks below are vectorised and locate the first offender.
        codes = self._codes
        try:
            channel = np.fromiter((codes[t.channel] for t in keep), np.int32, len(keep))
        except KeyError:
            for i, t in enumerate(keep):
                self._code(t.channel, f"journey[{offset + i}].channel")
            raise
        ts_ms = np.fromiter((t.timestamp_ms for t in touches), np.int64, n)
        interaction = np.fromiter((t.interaction for t in keep), np.int32, len(keep))
        cost = np.fromiter((t.cost for t in keep), np.float64, len(keep))
        device = np.fromiter((t.device for t in keep), np.int32, len(keep))

        bad = np.flatnonzero(ts_ms <= 0)
        if bad.size:
            raise InvalidArgument(f"journey[{bad[0]}].timestamp_ms", "must be > 0 (epoch ms)")
        bad = np.flatnonzero(np.diff(ts_ms) < 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise InvalidArgument(f"journey[{i}].timestamp_ms",
                                  f"earlier than journey[{i - 1}]: journeys are oldest first")
        if ts_ms[-1] / 1000.0 > ref_time + self.future_tolerance_s:
            i = int(np.flatnonzero(ts_ms / 1000.0 > ref_time + self.future_tolerance_s)[0])
            raise InvalidArgument(f"journey[{i}].timestamp_ms",
                                  "is in the future (after the impression time)")
        bad = np.flatnonzero(~(np.isfinite(cost) & (cost >= 0)))
        if bad.size:
            raise InvalidArgument(f"journey[{offset + bad[0]}].cost", "must be finite and >= 0")
        bad = np.flatnonzero((interaction != _VALID_INTERACTIONS[0]) & (interaction != _VALID_INTERACTIONS[1]))
        if bad.size:
            raise InvalidArgument(f"journey[{offset + bad[0]}].interaction",
                                  "must be INTERACTION_IMPRESSION or INTERACTION_CLICK")
        bad = np.flatnonzero((device < 0) | (device > _MAX_DEVICE))
        if bad.size:
            raise InvalidArgument(f"journey[{offset + bad[0]}].device", "unknown device value")
        return Journey(
            request_id=req.request_id, campaign_id=req.campaign_id, channel=channel,
            timestamp=ts_ms[offset:] / 1000.0, interaction=interaction.astype(np.int8),
            cost=cost, device=device.astype(np.int8),
            category=category_code(req.product_category), ref_time=ref_time,
            impression_channel=impression_channel, floor_price=imp.floor_price,
            truncated=offset > 0,
        )
