"""Validate a ScoreRequest and turn it into numeric arrays (the first step of Score).

Every refusal names the field, e.g. ``journey[3].cost: must be finite and >= 0``.
A journey longer than ``max_journey`` keeps its most recent touchpoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribid.models.errors import InvalidArgument
from attribid.kernels import checks
from attribid.kernels.checks import first_invalid_kernel
from attribid.kernels.taxonomy import category_code
from attribid.v1 import attribution_pb2 as pb

_MAX_DEVICE = max(pb.Device.values())
_MESSAGES = {
    checks.TIMESTAMP_NOT_POSITIVE: ("timestamp_ms", "must be > 0 (epoch ms)"),
    checks.TIMESTAMP_ORDER: ("timestamp_ms", "earlier than {prev}: journeys are oldest first"),
    checks.TIMESTAMP_FUTURE: ("timestamp_ms", "is in the future (after the impression time)"),
    checks.COST: ("cost", "must be finite and >= 0"),
    checks.INTERACTION: ("interaction", "must be INTERACTION_IMPRESSION or INTERACTION_CLICK"),
    checks.DEVICE: ("device", "unknown device value"),
}


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
        # One pass creates the touchpoints' wrappers; the per-field passes below reuse them
        # (iterating the repeated field itself would create them again for every field).
        touches = list(req.journey)
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

        # Channel names must be checked one by one to name the bad one; the
        # numbers are checked by one compiled pass that locates the first offender.
        codes = self._codes
        try:
            channel = np.fromiter((codes[t.channel] for t in touches), np.int32, n)
        except KeyError:
            for i, t in enumerate(touches):
                self._code(t.channel, f"journey[{i}].channel")
            raise
        ts_ms = np.fromiter((t.timestamp_ms for t in touches), np.int64, n)
        interaction = np.fromiter((t.interaction for t in touches), np.int32, n)
        cost = np.fromiter((t.cost for t in touches), np.float64, n)
        device = np.fromiter((t.device for t in touches), np.int32, n)
        latest_ms = (ref_time + self.future_tolerance_s) * 1000.0
        code, i = first_invalid_kernel(ts_ms, cost, interaction, device, latest_ms, _MAX_DEVICE)
        if code != checks.OK:
            field, message = _MESSAGES[code]
            raise InvalidArgument(f"journey[{i}].{field}",
                                  message.format(prev=f"journey[{i - 1}]"))
        offset = n - self.max_journey if n > self.max_journey else 0
        return Journey(
            request_id=req.request_id, campaign_id=req.campaign_id, channel=channel[offset:],
            timestamp=ts_ms[offset:] / 1000.0, interaction=interaction[offset:].astype(np.int8),
            cost=cost[offset:], device=device[offset:].astype(np.int8),
            category=category_code(req.product_category), ref_time=ref_time,
            impression_channel=impression_channel, floor_price=imp.floor_price,
            truncated=offset > 0,
        )
