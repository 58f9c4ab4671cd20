"""The one featurizer: journeys -> [batch, steps, 64] float32, for training and serving.

Journeys arrive flattened (CSR layout): touchpoints of journey ``b`` are rows
``offsets[b]:offsets[b+1]``, oldest first. A journey longer than ``max_len``
keeps its most recent ``max_len`` touchpoints. Rows are left-aligned: step 0 is
the oldest kept touch and padding (all-zero features, mask 0) comes after the
last one, so a causal network's outputs at real steps do not depend on padding.

Feature layout (FEATURE_SPEC_VERSION 1), per touchpoint:

====== ==============================================================
0-15   channel one-hot (channel index < 16)
16-17  interaction one-hot: impression, click
18-21  device one-hot: unknown, desktop, mobile, tablet
22-29  product category one-hot: 7 categories, unknown
30     position / (n - 1)  (0 for a one-touch journey)
31     1 - position / (n - 1)
32     is first touch
33     is last touch
34     log1p(n) / log1p(max_len)
35     log1p(hours since the previous touch) / 5   (0 for the first)
36     log1p(hours from this touch to the reference time) / 5
37-39  exp(-age / half-life) * ln 2 scaled, half-lives 1 h, 24 h, 168 h
40-41  hour of day (UTC) sin, cos
42-43  day of week sin, cos
44     log1p(cost)
45     log1p(cumulative cost up to and including this touch)
46     share of clicks among touches so far (inclusive)
47     same channel as the previous touch
48-63  log1p(count of each channel so far, inclusive) / log1p(max_len)
====== ==============================================================

The reference time is the moment the journey is scored: the impression's time
when serving, the conversion (or end of observation) time when training.
"""
from __future__ import annotations

import math

import numpy as np

from .config import jit_nogil
from .taxonomy import MAX_CHANNELS, CLICK, UNKNOWN_CATEGORY

FEATURE_SPEC_VERSION = 1
N_FEATURES = 64

_HOUR = 3600.0
_DAY = 86400.0
_WEEK = 7 * _DAY
_TWO_PI = 2.0 * math.pi


@jit_nogil
def featurize_kernel(offsets, channel, timestamp, interaction, cost, device,
                     category, ref_time, max_len, out, mask, lengths):
    """The compiled featurizer itself, for validated input: it checks nothing.

    Writes ``out`` [>= J, >= steps, 64], ``mask`` [>= J, steps] and ``lengths`` [>= J] in place
    for the J journeys of ``offsets``. The caller guarantees what ``featurize`` (the checked
    wrapper) would check: offsets int64 from 0, non-decreasing; per-touch arrays of length
    ``offsets[-1]``; channel codes in [0, 16); buffers at least as long as the longest kept
    journey. The server's hot path calls it on journeys its validator has checked.

    >>> out, mask = np.empty((1, 2, 64), np.float32), np.empty((1, 2), np.float32)
    >>> n = np.empty(1, np.int64)
    >>> featurize_kernel(np.array([0, 2]), np.array([0, 3], np.int32), np.array([0.0, 60.0]),
    ...                  np.array([1, 2], np.int8), np.zeros(2), np.zeros(2, np.int8),
    ...                  np.array([7], np.int32), np.array([120.0]), 64, out, mask, n)
    >>> mask.tolist(), n.tolist(), float(out[0, 1, 3])
    ([[1.0, 1.0]], [2], 1.0)
    """
    n_journeys = offsets.shape[0] - 1
    log_max = math.log1p(max_len)
    counts = np.zeros(MAX_CHANNELS, dtype=np.float32)
    for b in range(n_journeys):
        start = offsets[b]
        end = offsets[b + 1]
        if end - start > max_len:
            start = end - max_len
        n = end - start
        lengths[b] = n
        counts[:] = 0.0
        cum_cost = 0.0
        clicks = 0.0
        log_n = math.log1p(n) / log_max
        cat = category[b]
        if cat < 0 or cat > UNKNOWN_CATEGORY:
            cat = UNKNOWN_CATEGORY
        for s in range(out.shape[1]):
            if s >= n:
                for f in range(out.shape[2]):
                    out[b, s, f] = 0.0
                mask[b, s] = 0.0
                continue
            i = start + s
            row = out[b, s]
            row[:] = 0.0
            mask[b, s] = 1.0
            ch = channel[i]
            row[ch] = 1.0
            row[16 + (1 if interaction[i] == CLICK else 0)] = 1.0
            dev = device[i]
            row[18 + (dev if 0 <= dev <= 3 else 0)] = 1.0
            row[22 + cat] = 1.0
            if n > 1:
                row[30] = s / (n - 1)
                row[31] = 1.0 - s / (n - 1)
            row[32] = 1.0 if s == 0 else 0.0
            row[33] = 1.0 if s == n - 1 else 0.0
            row[34] = log_n
            if s > 0:
                gap = max(timestamp[i] - timestamp[i - 1], 0.0) / _HOUR
                row[35] = math.log1p(gap) / 5.0
                row[47] = 1.0 if channel[i - 1] == ch else 0.0
            age = max(ref_time[b] - timestamp[i], 0.0) / _HOUR
            row[36] = math.log1p(age) / 5.0
            row[37] = math.exp(-age * math.log(2.0) / 1.0)
            row[38] = math.exp(-age * math.log(2.0) / 24.0)
            row[39] = math.exp(-age * math.log(2.0) / 168.0)
            t = timestamp[i]
            hod = (t % _DAY) / _DAY
            dow = ((t + 4.0 * _DAY) % _WEEK) / _WEEK  # epoch day 0 was a Thursday
            row[40] = math.sin(_TWO_PI * hod)
            row[41] = math.cos(_TWO_PI * hod)
            row[42] = math.sin(_TWO_PI * dow)
            row[43] = math.cos(_TWO_PI * dow)
            c = cost[i]
            row[44] = math.log1p(c)
            cum_cost += c
            row[45] = math.log1p(cum_cost)
            if interaction[i] == CLICK:
                clicks += 1.0
            row[46] = clicks / (s + 1)
            counts[ch] += 1.0
            for k in range(MAX_CHANNELS):
                if counts[k] > 0.0:
                    row[48 + k] = math.log1p(counts[k]) / log_max


def featurize(offsets: np.ndarray, channel: np.ndarray, timestamp: np.ndarray,
              interaction: np.ndarray, cost: np.ndarray, device: np.ndarray,
              category: np.ndarray, ref_time: np.ndarray, max_len: int,
              out: np.ndarray | None = None, mask: np.ndarray | None = None,
              lengths: np.ndarray | None = None,
              steps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Featurize a batch of journeys, checking every input; returns (features, mask, lengths).

    ``steps`` (default: the longest kept journey) sets the padded length; pass
    ``out``/``mask``/``lengths`` buffers to avoid allocating on a hot path.

    >>> f, m, n = featurize(np.array([0, 2]), np.array([0, 3]), np.array([0.0, 60.0]),
    ...                     np.array([1, 2]), np.zeros(2), np.zeros(2, np.int8),
    ...                     np.array([7]), np.array([120.0]), 64)
    >>> f.shape, m.tolist(), n.tolist()
    ((1, 2, 64), [[1.0, 1.0]], [2])
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError("offsets must be 1-D with at least one element")
    n_journeys = offsets.shape[0] - 1
    n_rows = int(offsets[-1])
    if np.any(np.diff(offsets) < 0) or offsets[0] != 0:
        raise ValueError("offsets must start at 0 and be non-decreasing")
    channel = np.ascontiguousarray(channel, dtype=np.int32)
    timestamp = np.ascontiguousarray(timestamp, dtype=np.float64)
    interaction = np.ascontiguousarray(interaction, dtype=np.int8)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    device = np.ascontiguousarray(device, dtype=np.int8)
    category = np.ascontiguousarray(category, dtype=np.int32)
    ref_time = np.ascontiguousarray(ref_time, dtype=np.float64)
    for name, arr in (("channel", channel), ("timestamp", timestamp),
                      ("interaction", interaction), ("cost", cost), ("device", device)):
        if arr.shape != (n_rows,):
            raise ValueError(f"{name} must have shape ({n_rows},), got {arr.shape}")
    for name, arr in (("category", category), ("ref_time", ref_time)):
        if arr.shape != (n_journeys,):
            raise ValueError(f"{name} must have shape ({n_journeys},), got {arr.shape}")
    if n_rows and (channel.min() < 0 or channel.max() >= MAX_CHANNELS):
        raise ValueError(f"channel indices must be in [0, {MAX_CHANNELS})")
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    if steps is None:
        steps = int(min(max(np.diff(offsets).max(initial=0), 1), max_len))
    if out is None:
        out = np.empty((n_journeys, steps, N_FEATURES), dtype=np.float32)
    if mask is None:
        mask = np.empty((n_journeys, steps), dtype=np.float32)
    if lengths is None:
        lengths = np.empty(n_journeys, dtype=np.int64)
    longest = int(min(np.diff(offsets).max(initial=0), max_len))
    if out.shape[0] < n_journeys or out.shape[2] != N_FEATURES or out.shape[1] < longest:
        raise ValueError(f"out must be [>= {n_journeys}, >= {longest}, {N_FEATURES}]")
    if mask.shape[0] < n_journeys or mask.shape[1] != out.shape[1]:
        raise ValueError("mask must be [journeys, steps] like out")
    featurize_kernel(offsets, channel, timestamp, interaction, cost, device,
                     category, ref_time, max_len, out, mask, lengths)
    return out[:n_journeys], mask[:n_journeys], lengths[:n_journeys]
