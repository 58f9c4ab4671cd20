"""Journeys -> network inputs, through kernels.featurize only (so training and serving agree).

Also builds the "channel-removed" copies of journeys that credit distillation
evaluates: a copy keeps only the touches of a subset of the journey's channels
and is featurized again from scratch, exactly as a journey without those
touches would be when served.
"""
from __future__ import annotations

import numpy as np

from attribid.kernels.featurize import featurize
from attribid.models.data.journeys import Journeys

DEFAULT_MAX_LEN = 64


def reference_times(journeys: Journeys) -> np.ndarray:
    """The featurizer's reference time per journey: float64 [J] (``Journeys.reference_times``).

    A converted journey is scored at its conversion time; one that did not
    convert at its last touch plus a delay drawn (fixed seed) from the
    converters' delays, so touch ages cannot reveal the outcome. A journey
    with no touch and no conversion gets 0 (it has nothing to featurize).

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> ref = reference_times(js)
    >>> bool(np.all(ref[js.converted] == js.conversion_time[js.converted]))
    True
    """
    return np.nan_to_num(journeys.reference_times(seed=0), nan=0.0)


def featurize_journeys(journeys: Journeys, max_len: int = DEFAULT_MAX_LEN,
                       ref_time: np.ndarray | None = None,
                       steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features float32 [J, T, 64] and mask float32 [J, T] for a batch of journeys.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> features, mask = featurize_journeys(js, 64)
    >>> features.shape, mask.sum(axis=1).tolist()
    ((4, 3, 64), [3.0, 2.0, 2.0, 2.0])
    """
    if ref_time is None:
        ref_time = reference_times(journeys)
    features, mask, _ = featurize(
        journeys.offsets, journeys.channel, journeys.timestamp, journeys.interaction,
        journeys.cost, journeys.device, journeys.category, ref_time, max_len, steps=steps)
    return features, mask


def present_channels(journeys: Journeys, max_len: int = DEFAULT_MAX_LEN) -> np.ndarray:
    """Bool [J, C]: channel c has a touch among the journey's last ``max_len`` touches.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> [js.channels[c] for c in np.flatnonzero(present_channels(js)[0])]
    ['search', 'display', 'direct']
    """
    n_channels = len(journeys.channels)
    lengths = journeys.lengths()
    keep_from = journeys.offsets[1:] - np.minimum(lengths, max_len)
    row_journey = np.repeat(np.arange(journeys.n_journeys), lengths)
    kept = np.arange(journeys.n_touchpoints) >= keep_from[row_journey]
    out = np.zeros((journeys.n_journeys, n_channels), dtype=bool)
    out[row_journey[kept], journeys.channel[kept]] = True
    return out


def truncate(journeys: Journeys, max_len: int) -> Journeys:
    """The same journeys keeping only their most recent ``max_len`` touches.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> js.lengths().tolist(), truncate(js, 2).lengths().tolist()
    ([3, 2, 2, 2], [2, 2, 2, 2])
    """
    lengths = journeys.lengths()
    if lengths.size == 0 or lengths.max(initial=0) <= max_len:
        return journeys
    keep_from = journeys.offsets[1:] - np.minimum(lengths, max_len)
    row_journey = np.repeat(np.arange(journeys.n_journeys), lengths)
    kept = np.arange(journeys.n_touchpoints) >= keep_from[row_journey]
    return _with_rows(journeys, kept)


def keep_channels(journeys: Journeys, journey_idx: np.ndarray, bits: np.ndarray) -> Journeys:
    """Copies of ``journeys[journey_idx]`` keeping only touches whose channel bit is set.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> kept = keep_channels(js, np.array([0]), np.array([0b101]))  # channels 0 and 2
    >>> [js.channels[c] for c in js.channel[:3]], [kept.channels[c] for c in kept.channel]
    (['display', 'search', 'direct'], ['search'])
    """
    base = journeys.subset(np.asarray(journey_idx, dtype=np.int64))
    row_copy = np.repeat(np.arange(base.n_journeys), base.lengths())
    kept = ((np.asarray(bits, dtype=np.int64)[row_copy] >> base.channel.astype(np.int64)) & 1) == 1
    return _with_rows(base, kept)


def _with_rows(journeys: Journeys, kept: np.ndarray) -> Journeys:
    """The journeys with only the touchpoint rows where ``kept`` is True."""
    row_journey = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    counts = np.bincount(row_journey[kept], minlength=journeys.n_journeys)
    offsets = np.zeros(journeys.n_journeys + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Journeys(
        ids=journeys.ids, offsets=offsets, channel=journeys.channel[kept],
        timestamp=journeys.timestamp[kept], interaction=journeys.interaction[kept],
        cost=journeys.cost[kept], device=journeys.device[kept], category=journeys.category,
        converted=journeys.converted, conversion_time=journeys.conversion_time,
        value=journeys.value, channels=journeys.channels,
    )


def single_touches(journeys: Journeys) -> tuple[Journeys, np.ndarray]:
    """Every touchpoint as a one-touch journey, and the index of the journey it came from.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> ones, source = single_touches(js)
    >>> ones.n_journeys == js.n_touchpoints, source.tolist()
    (True, [0, 0, 0, 1, 1, 2, 2, 3, 3])
    """
    source = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    n = journeys.n_touchpoints
    return Journeys(
        ids=journeys.ids[source], offsets=np.arange(n + 1, dtype=np.int64),
        channel=journeys.channel, timestamp=journeys.timestamp,
        interaction=journeys.interaction, cost=journeys.cost, device=journeys.device,
        category=journeys.category[source], converted=journeys.converted[source],
        conversion_time=journeys.conversion_time[source], value=journeys.value[source],
        channels=journeys.channels,
    ), source
