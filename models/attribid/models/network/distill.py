"""Exact channel Shapley values of a conversion model, by evaluating it on channel subsets.

The game: players are the channels present in a journey; the value of a set S
is the model's conversion probability for the journey keeping only the touches
of channels in S (featurized again, same reference time). With k channels this
costs 2**k model evaluations per journey, which is what the network's channel
scores learn to replace with one forward pass (the served credit), and what the
evaluation uses to check that the served credit is faithful to the network.

``predict`` is any function from (features [N, T, 64], mask [N, T]) to
probabilities [N]: the PyTorch network during training, onnxruntime otherwise.
"""
from __future__ import annotations

from math import factorial
from typing import Callable

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.network.dataset import (
    DEFAULT_MAX_LEN, featurize_journeys, keep_channels, present_channels, reference_times,
    truncate,
)

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


def subset_values(journeys: Journeys, predict: Predict, max_len: int = DEFAULT_MAX_LEN,
                  batch_rows: int = 4096, ref_time: np.ndarray | None = None,
                  empty_value: np.ndarray | float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model value of every channel subset of every journey.

    Returns (starts int64 [J + 1], present bool [J, C], values float64 [sum 2**k]):
    journey j's subsets are values[starts[j]:starts[j+1]], local subset number s
    having bit i set when the journey's i-th present channel is kept.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> def touches(features, mask):  # a model: each kept touch adds 0.1
    ...     return mask.sum(axis=1) / 10
    >>> starts, present, values = subset_values(js, touches)
    >>> starts.tolist()  # journey 0 has 3 channels: 8 subsets, the empty one first
    [0, 8, 12, 16, 20]
    >>> values[starts[0]:starts[1]].round(2).tolist()
    [0.0, 0.1, 0.1, 0.2, 0.1, 0.2, 0.2, 0.3]
    """
    journeys = truncate(journeys, max_len)
    ref = reference_times(journeys) if ref_time is None else np.asarray(ref_time, np.float64)
    present = present_channels(journeys, max_len)
    k = present.sum(axis=1).astype(np.int64)
    starts = np.zeros(journeys.n_journeys + 1, dtype=np.int64)
    np.cumsum(np.left_shift(1, k), out=starts[1:])
    journey_idx = np.repeat(np.arange(journeys.n_journeys), np.diff(starts))
    local = np.arange(starts[-1]) - starts[journey_idx]
    bits = _channel_bits(present, journey_idx, local)
    copies = keep_channels(journeys, journey_idx, bits)
    copy_ref = ref[journey_idx]
    values = np.empty(copies.n_journeys, dtype=np.float64)
    # Sorting by length keeps padding (and so wasted compute) small in each batch.
    order = np.argsort(copies.lengths(), kind="stable")
    for lo in range(0, order.shape[0], batch_rows):
        idx = order[lo:lo + batch_rows]
        part = copies.subset(idx)
        features, mask = featurize_journeys(part, max_len, ref_time=copy_ref[idx])
        values[idx] = predict(features, mask)
    if empty_value is not None:
        values[starts[:-1]] = empty_value
    return starts, present, values


def shapley_from_values(starts: np.ndarray, present: np.ndarray,
                        values: np.ndarray) -> np.ndarray:
    """Exact Shapley value of each present channel, float64 [J, C] (0 on absent channels).

    >>> starts = np.array([0, 4]); present = np.array([[True, True]])
    >>> shapley_from_values(starts, present, np.array([0.0, 0.2, 0.1, 0.5])).round(3).tolist()
    [[0.3, 0.2]]
    """
    n_journeys, n_channels = present.shape
    k = present.sum(axis=1).astype(np.int64)
    journey_idx = np.repeat(np.arange(n_journeys), np.diff(starts))
    local = np.arange(values.shape[0]) - starts[journey_idx]
    size = _popcount(local)
    k_row = k[journey_idx]
    weights = _shapley_weights(int(k.max(initial=0)))
    phi_local = np.zeros((n_journeys, max(int(k.max(initial=0)), 1)))
    for i in range(phi_local.shape[1]):
        rows = np.flatnonzero((i < k_row) & (((local >> i) & 1) == 0))
        gain = values[rows + (1 << i)] - values[rows]
        w = weights[k_row[rows], size[rows]]
        phi_local[:, i] = np.bincount(journey_idx[rows], weights=w * gain, minlength=n_journeys)
    out = np.zeros((n_journeys, n_channels))
    rank = np.cumsum(present, axis=1) - 1
    jj, cc = np.nonzero(present)
    out[jj, cc] = phi_local[jj, rank[jj, cc]]
    return out


def credit_shares(phi: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive Shapley values normalised over present channels, and which rows are defined.

    A row whose channels all have phi <= 0 has no positive credit to share; it
    is marked undefined (False) and its shares are uniform over present channels.

    >>> s, ok = credit_shares(np.array([[0.3, -0.1, 0.1]]), np.ones((1, 3), bool))
    >>> s.round(2).tolist(), ok.tolist()
    ([[0.75, 0.0, 0.25]], [True])
    """
    pos = np.where(present, np.maximum(phi, 0.0), 0.0)
    total = pos.sum(axis=1, keepdims=True)
    defined = total[:, 0] > 1e-12
    n_present = np.maximum(present.sum(axis=1, keepdims=True), 1)
    uniform = present / n_present
    shares = np.where(defined[:, None], pos / np.maximum(total, 1e-300), uniform)
    return shares, defined


def network_shapley(journeys: Journeys, predict: Predict, max_len: int = DEFAULT_MAX_LEN,
                    ref_time: np.ndarray | None = None,
                    empty_value: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact channel Shapley values [J, C] of ``predict`` and presence [J, C], by brute force.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> def touches(features, mask):  # a model: each kept touch adds 0.1
    ...     return mask.sum(axis=1) / 10
    >>> phi, present = network_shapley(js, touches)
    >>> [js.channels[c] for c in np.flatnonzero(present[0])], phi[0][present[0]].round(3).tolist()
    (['search', 'display', 'direct'], [0.1, 0.1, 0.1])
    """
    starts, present, values = subset_values(journeys, predict, max_len, ref_time=ref_time,
                                            empty_value=empty_value)
    return shapley_from_values(starts, present, values), present


def _channel_bits(present: np.ndarray, journey_idx: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Map local subset numbers to channel bitmasks (bit c = channel code c)."""
    rank = np.cumsum(present, axis=1) - 1
    bits = np.zeros(local.shape[0], dtype=np.int64)
    for c in range(present.shape[1]):
        has = present[journey_idx, c]
        chosen = has & (((local >> np.where(has, rank[journey_idx, c], 0)) & 1) == 1)
        bits |= np.where(chosen, np.int64(1) << c, np.int64(0))
    return bits


def _popcount(x: np.ndarray) -> np.ndarray:
    count = np.zeros_like(x)
    y = x.copy()
    while np.any(y):
        count += y & 1
        y >>= 1
    return count


def _shapley_weights(k_max: int) -> np.ndarray:
    """w[k, s] = s! (k - s - 1)! / k!, the weight of a size-s coalition among k players."""
    w = np.zeros((k_max + 1, k_max + 1))
    for k in range(1, k_max + 1):
        for s in range(k):
            w[k, s] = factorial(s) * factorial(k - s - 1) / factorial(k)
    return w
