"""Validate a RawJourney and turn it into the model's codes (the first step of Score).

Every refusal names the field, e.g. ``journey[3].cost: must be finite and >= 0``.
A journey longer than ``max_journey`` keeps its most recent touchpoints.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.models.errors import MAX_ECHO, MAX_ID_BYTES, InvalidArgument, check_id, quote
from attribid.kernels import checks
from attribid.kernels.checks import first_invalid_kernel
from attribid.kernels.taxonomy import category_code
from attribid.core.types import MAX_DEVICE, Journey, RawJourney

__all__ = ["Journey", "RawJourney", "RequestValidator"]

_MESSAGES = {
    checks.TIMESTAMP_NOT_POSITIVE: ("timestamp_ms", "must be > 0 (epoch ms)"),
    checks.TIMESTAMP_ORDER: ("timestamp_ms", "earlier than {prev}: journeys are oldest first"),
    checks.TIMESTAMP_FUTURE: ("timestamp_ms", "is in the future (after the impression time)"),
    checks.COST: ("cost", "must be finite and >= 0"),
    checks.INTERACTION: ("interaction", "must be INTERACTION_IMPRESSION or INTERACTION_CLICK"),
    checks.DEVICE: ("device", "unknown device value"),
}


class RequestValidator:
    """Checks requests against the served model's channels and the server's limits."""

    def __init__(self, channels: tuple[str, ...], max_touchpoints: int, max_journey: int,
                 future_tolerance_s: float, *, max_id_bytes: int = MAX_ID_BYTES) -> None:
        self.channels = channels
        #: longest request_id and campaign_id, in UTF-8 bytes
        self.max_id_bytes = max_id_bytes
        self._codes = {name: i for i, name in enumerate(channels)}
        self.max_touchpoints = max_touchpoints
        self.max_journey = max_journey
        self.future_tolerance_s = future_tolerance_s

    def _code(self, name: str, field: str) -> int:
        code = self._codes.get(name)
        if code is None:
            shown = quote(name)
            if len(repr(name)) > MAX_ECHO:  # cut: the message ends with the echo's marker
                raise InvalidArgument(field, f"unknown channel {shown}")
            known = ", ".join(self.channels)
            raise InvalidArgument(field, f"unknown channel {shown} (known: {known})")
        return code

    def validate(self, raw: RawJourney, now: float) -> Journey:
        """``now`` is the server clock (epoch seconds), the default reference time.

        >>> v = RequestValidator(("search", "email"), 100, 64, 300.0)
        >>> j = v.validate(RawJourney.of([("email", 1_700_000_000_000, 2, 0.5, 0)]), 1.8e9)
        >>> j.channel.tolist(), j.timestamp.tolist()
        ([1], [1700000000.0])
        >>> v.validate(RawJourney.of([("email", 1_700_000_000_000, 2, -1.0, 0)]), 1.8e9)
        Traceback (most recent call last):
        attribid.models.errors.InvalidArgument: journey[0].cost: must be finite and >= 0
        """
        check_id("request_id", raw.request_id, self.max_id_bytes)
        check_id("campaign_id", raw.campaign_id, self.max_id_bytes)
        names = raw.channel
        n = len(names)
        if n == 0:
            raise InvalidArgument("journey", "must hold at least one touchpoint")
        if n > self.max_touchpoints:
            raise InvalidArgument("journey", f"{n} touchpoints, at most {self.max_touchpoints} "
                                  f"accepted (the newest {self.max_journey} are scored)")
        # The compiled check below takes exactly these dtypes, contiguous; converting costs
        # nothing when the columns already are (as the API's converter builds them).
        ts_ms = np.ascontiguousarray(raw.timestamp_ms, np.int64)
        interaction = np.ascontiguousarray(raw.interaction, np.int32)
        cost = np.ascontiguousarray(raw.cost, np.float64)
        device = np.ascontiguousarray(raw.device, np.int32)
        if not (ts_ms.shape == interaction.shape == cost.shape == device.shape == (n,)):
            raise ValueError(f"RawJourney columns must all have {n} entries, one per channel")
        ref_ms = raw.impression_timestamp_ms
        if ref_ms < 0:
            raise InvalidArgument("impression.timestamp_ms", "must be >= 0 (0 = server clock)")
        ref_time = ref_ms / 1000.0 if ref_ms else now
        if ref_ms and ref_time > now + self.future_tolerance_s:
            raise InvalidArgument("impression.timestamp_ms", "is in the future")
        floor_price = raw.floor_price
        if not (math.isfinite(floor_price) and floor_price >= 0):
            raise InvalidArgument("impression.floor_price", "must be finite and >= 0")
        imp_channel = raw.impression_channel
        impression_channel = self._code(imp_channel, "impression.channel") if imp_channel else -1

        # Channel names must be checked one by one to name the bad one; the
        # numbers are checked by one compiled pass that locates the first offender.
        try:
            channel = np.fromiter(map(self._codes.__getitem__, names), np.int32, n)
        except KeyError:
            for i, name in enumerate(names):
                self._code(name, f"journey[{i}].channel")
            raise
        latest_ms = (ref_time + self.future_tolerance_s) * 1000.0
        code, i = first_invalid_kernel(ts_ms, cost, interaction, device, latest_ms, MAX_DEVICE)
        if code != checks.OK:
            field, message = _MESSAGES[code]
            raise InvalidArgument(f"journey[{i}].{field}",
                                  message.format(prev=f"journey[{i - 1}]"))
        offset = n - self.max_journey if n > self.max_journey else 0
        return Journey(
            request_id=raw.request_id, campaign_id=raw.campaign_id, channel=channel[offset:],
            timestamp=ts_ms[offset:] / 1000.0, interaction=interaction[offset:].astype(np.int8),
            cost=cost[offset:], device=device[offset:].astype(np.int8),
            category=category_code(raw.product_category), ref_time=ref_time,
            impression_channel=impression_channel, floor_price=floor_price,
            truncated=offset > 0,
        )
