"""What the Score pipeline takes and gives: plain objects and NumPy arrays, no protobuf.

``RawJourney`` is a request as received (any transport fills it; ``attribid.api.convert``
does for gRPC); ``Journey`` is the same request once validated, in the model's codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attribid.kernels.taxonomy import CLICK, DEVICES

#: the highest device code a touchpoint may carry (0 = unknown device)
MAX_DEVICE = max(DEVICES.values())


@dataclass(slots=True)
class RawJourney:
    """One Score request before validation: the touchpoints as columns, oldest first.

    >>> raw = RawJourney.of([("search", 1_700_000_000_000, CLICK, 0.5, 0)])
    >>> raw.channel, raw.timestamp_ms.dtype.name, raw.cost.tolist()
    (['search'], 'int64', [0.5])
    """

    channel: list[str]             # channel names, as sent
    timestamp_ms: np.ndarray       # int64 [n], epoch ms
    interaction: np.ndarray        # int32 [n], taxonomy codes (1 impression, 2 click)
    cost: np.ndarray               # float64 [n]
    device: np.ndarray             # int32 [n], taxonomy codes (0 unknown)
    request_id: str = ""
    campaign_id: str = ""          # "" = the default campaign
    product_category: str = ""     # "" = unknown
    impression_channel: str = ""   # "" = none
    floor_price: float = 0.0
    impression_timestamp_ms: int = 0  # 0 = the server's clock

    @classmethod
    def of(cls, touches: list[tuple[str, int, int, float, int]], **fields: Any) -> "RawJourney":
        """From (channel, timestamp_ms, interaction, cost, device) rows; other fields by name."""
        n = len(touches)
        return cls(
            channel=[t[0] for t in touches],
            timestamp_ms=np.fromiter((t[1] for t in touches), np.int64, n),
            interaction=np.fromiter((t[2] for t in touches), np.int32, n),
            cost=np.fromiter((t[3] for t in touches), np.float64, n),
            device=np.fromiter((t[4] for t in touches), np.int32, n),
            **fields,
        )


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
