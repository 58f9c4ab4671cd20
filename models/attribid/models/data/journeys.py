"""Journeys in columnar (CSR) form: the one in-memory shape every batch command uses.

Touchpoints of journey ``j`` are rows ``offsets[j]:offsets[j+1]``, oldest first.
Loading files into this shape lives in ``attribid.models.data.loader``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Journeys:
    """A batch of customer journeys and their outcomes."""

    #: journey ids, [J] (object array of str)
    ids: np.ndarray
    #: int64 [J + 1]; journey j is rows offsets[j]:offsets[j+1]
    offsets: np.ndarray
    #: int32 [N]; index into ``channels``
    channel: np.ndarray
    #: float64 [N]; epoch seconds, non-decreasing within a journey
    timestamp: np.ndarray
    #: int8 [N]; taxonomy.IMPRESSION or taxonomy.CLICK
    interaction: np.ndarray
    #: float64 [N]; >= 0
    cost: np.ndarray
    #: int8 [N]; taxonomy.DEVICES codes, 0 = unknown
    device: np.ndarray
    #: int32 [J]; taxonomy.category_code, UNKNOWN_CATEGORY when absent
    category: np.ndarray
    #: bool [J]
    converted: np.ndarray
    #: float64 [J]; epoch seconds, NaN when not converted
    conversion_time: np.ndarray
    #: float64 [J]; conversion value, 0 when not converted
    value: np.ndarray
    #: channel names, index = code
    channels: tuple[str, ...]

    @property
    def n_journeys(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_touchpoints(self) -> int:
        return int(self.offsets[-1])

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def concat(cls, parts: "list[Journeys]") -> "Journeys":
        """One container holding ``parts`` in order (all over the first part's channels).

        >>> j = Journeys(np.array(["a"], dtype=object), np.array([0, 2]), np.zeros(2, np.int32),
        ...     np.array([1.0, 2.0]), np.ones(2, np.int8), np.zeros(2), np.zeros(2, np.int8),
        ...     np.zeros(1, np.int32), np.array([True]), np.array([3.0]), np.ones(1), ("search",))
        >>> both = Journeys.concat([j, j])
        >>> both.offsets.tolist(), both.timestamp.tolist()
        ([0, 2, 4], [1.0, 2.0, 1.0, 2.0])
        """
        offsets = np.zeros(sum(p.n_journeys for p in parts) + 1, np.int64)
        np.cumsum(np.concatenate([p.lengths() for p in parts]), out=offsets[1:])

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])
        return cls(ids=cat("ids"), offsets=offsets, channel=cat("channel"),
                   timestamp=cat("timestamp"), interaction=cat("interaction"), cost=cat("cost"),
                   device=cat("device"), category=cat("category"), converted=cat("converted"),
                   conversion_time=cat("conversion_time"), value=cat("value"),
                   channels=parts[0].channels)

    def subset(self, index: np.ndarray) -> "Journeys":
        """The journeys at ``index`` (an int array or boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        starts = self.offsets[index]
        ends = self.offsets[index + 1]
        lens = ends - starts
        offsets = np.zeros(index.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        rows = (np.repeat(starts - offsets[:-1], lens) + np.arange(offsets[-1])).astype(np.int64)
        return Journeys(
            ids=self.ids[index], offsets=offsets, channel=self.channel[rows],
            timestamp=self.timestamp[rows], interaction=self.interaction[rows],
            cost=self.cost[rows], device=self.device[rows], category=self.category[index],
            converted=self.converted[index], conversion_time=self.conversion_time[index],
            value=self.value[index], channels=self.channels,
        )

    def reference_times(self, seed: int = 0) -> np.ndarray:
        """The time to score each journey at: float64 [J], epoch seconds.

        A converter's conversion time. A non-converter has no such moment, so its
        observation ends after its last touch by a delay drawn (seeded) from the
        converters' delays between last touch and conversion: the reference then
        has the same distribution in both groups and does not reveal the outcome.
        With no converter the delay is 0.

        >>> j = Journeys(np.array(["a", "b"], dtype=object), np.array([0, 1, 2]),
        ...     np.zeros(2, np.int32), np.array([0.0, 50.0]), np.ones(2, np.int8),
        ...     np.zeros(2), np.zeros(2, np.int8), np.zeros(2, np.int32),
        ...     np.array([True, False]), np.array([30.0, np.nan]), np.zeros(2), ("search",))
        >>> j.reference_times().tolist()
        [30.0, 80.0]
        """
        last = np.full(self.n_journeys, np.nan)
        has = self.lengths() > 0
        last[has] = self.timestamp[self.offsets[1:][has] - 1]
        delays = (self.conversion_time - last)[self.converted & has]
        out = np.where(self.converted, self.conversion_time, last)
        todo = ~self.converted & has
        if delays.size:
            rng = np.random.default_rng(seed)
            out[todo] = last[todo] + rng.choice(delays, size=int(todo.sum()))
        return out
