"""Journeys in columnar (CSR) form: the one in-memory shape every batch command uses.

Touchpoints of journey ``j`` are rows ``offsets[j]:offsets[j+1]``, oldest first.
Loading files into this shape lives in ``attribid.kernels.loader``.
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
