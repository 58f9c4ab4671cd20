"""A campaign's recent journeys, converting and not: what the data-driven attributions
(``markov``, ``shapley``) are fitted on when they credit the campaign's conversions.

The rule-based methods and the network credit a conversion from its own journey; the
Markov chain's removal effects and the Shapley set values are properties of a population of
journeys, so they need the journeys that did not convert too. Those come from the caller
(``ReportConversionsRequest.non_converting``), who knows which journeys ended without a
conversion; Score's traffic would not do: it sees each journey once per impression, as a
growing prefix, and a converting journey's prefixes would count as journeys that failed.

Only channel paths are kept (the methods read nothing else), the newest ``size`` of each
kind, so a window costs at most ``size`` * 2 paths of at most the model's window of touches.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np

from attribid.models.attribution.classic import attribute_journeys
from attribid.models.campaign.model import WINDOW_ATTRIBUTIONS
from attribid.models.data.journeys import Journeys

#: journeys of each kind (converting, not converting) a campaign's window keeps by default
WINDOW_JOURNEYS = 20_000


class JourneyWindow:
    """The newest ``size`` converting and ``size`` non-converting channel paths.

    >>> w = JourneyWindow(size=2)
    >>> w.add([np.array([0, 1])], [np.array([1]), np.array([1]), np.array([0])])
    >>> len(w.converting), len(w.idle)
    (1, 2)
    """

    def __init__(self, size: int = WINDOW_JOURNEYS) -> None:
        self.size = int(size)
        self.converting: deque[np.ndarray] = deque(maxlen=self.size)
        self.idle: deque[np.ndarray] = deque(maxlen=self.size)

    def add(self, converting: Sequence[np.ndarray], idle: Sequence[np.ndarray]) -> None:
        self.converting.extend(converting)
        self.idle.extend(idle)

    def copy(self) -> "JourneyWindow":
        out = JourneyWindow(self.size)
        out.add(list(self.converting), list(self.idle))
        return out

    def credit(self, method: str, converting: Sequence[np.ndarray], idle: Sequence[np.ndarray],
               channels: tuple[str, ...]) -> np.ndarray:
        """Shares [len(converting), C] of the batch's converting paths under ``method``,
        fitted on the window with this batch's journeys (converting and not) added.

        >>> w = JourneyWindow()
        >>> w.add([np.array([0])] * 3, [np.array([1])] * 9)  # 0 alone converts, 1 alone never
        >>> w.credit("shapley", [np.array([0, 1])], [], ("search", "display")).round(2).tolist()
        [[1.0, 0.0]]
        """
        if method not in WINDOW_ATTRIBUTIONS:
            raise ValueError(f"method must be one of {', '.join(WINDOW_ATTRIBUTIONS)}")
        paths = [*converting, *self.converting, *idle, *self.idle]
        converted = np.zeros(len(paths), bool)
        converted[:len(converting) + len(self.converting)] = True
        shares = attribute_journeys(_journeys(paths, converted, channels), method)
        return shares[:len(converting)]


def _journeys(paths: Sequence[np.ndarray], converted: np.ndarray,
              channels: tuple[str, ...]) -> Journeys:
    """Channel paths as a ``Journeys`` container (what the classic methods take); only
    channels, order and outcome are set, the rest are placeholders they do not read."""
    n = len(paths)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([p.shape[0] for p in paths], out=offsets[1:])
    total = int(offsets[-1])
    channel = np.concatenate(paths).astype(np.int32) if n else np.empty(0, np.int32)
    return Journeys(
        ids=np.arange(n).astype(str).astype(object), offsets=offsets, channel=channel,
        timestamp=np.arange(total, dtype=np.float64), interaction=np.ones(total, np.int8),
        cost=np.zeros(total), device=np.zeros(total, np.int8), category=np.zeros(n, np.int32),
        converted=converted, conversion_time=np.where(converted, float(total), np.nan),
        value=converted.astype(np.float64), channels=channels)
