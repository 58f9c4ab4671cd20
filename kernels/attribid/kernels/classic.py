"""Numba kernels behind the classic attribution models (attribid.models.attribution.classic).

Journeys arrive in CSR form (``offsets``, per-touch ``channel``/``timestamp``).
Credit rows are written only for converting journeys; each sums to 1.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil

#: rule codes of ``rule_credit``
RULES: dict[str, int] = {
    "last-click": 0, "first-click": 1, "linear": 2, "time-decay": 3, "position-based": 4,
}


@jit_nogil
def position_based_into(channel, start, end, row):
    """Add touches ``start:end``'s position-based (40/20/40) credit to ``row``.

    One touch gets 1, two get 0.5 each; otherwise first and last 0.4 each and the
    middle ones share 0.2. Shared by the classic model and the serving fallback.
    """
    n = end - start
    if n == 1:
        row[channel[start]] += 1.0
    elif n == 2:
        row[channel[start]] += 0.5
        row[channel[end - 1]] += 0.5
    elif n > 2:
        row[channel[start]] += 0.4
        row[channel[end - 1]] += 0.4
        for i in range(start + 1, end - 1):
            row[channel[i]] += 0.2 / (n - 2)


@jit_nogil
def _rule_credit(offsets, channel, timestamp, converted, rule, half_life_s, out):
    for j in range(offsets.shape[0] - 1):
        start = offsets[j]
        end = offsets[j + 1]
        n = end - start
        if not converted[j] or n == 0:
            continue
        if rule == 0:
            out[j, channel[end - 1]] += 1.0
        elif rule == 1:
            out[j, channel[start]] += 1.0
        elif rule == 2:
            for i in range(start, end):
                out[j, channel[i]] += 1.0 / n
        elif rule == 3:
            # weights relative to the latest touch: the same shares, no underflow
            total = 0.0
            for i in range(start, end):
                total += math.exp2(-(timestamp[end - 1] - timestamp[i]) / half_life_s)
            for i in range(start, end):
                w = math.exp2(-(timestamp[end - 1] - timestamp[i]) / half_life_s)
                out[j, channel[i]] += w / total
        else:
            position_based_into(channel, start, end, out[j])


def _check_csr(offsets: np.ndarray, channel: np.ndarray, n_channels: int) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    channel = np.ascontiguousarray(channel, dtype=np.int32)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0:
        raise ValueError("offsets must be 1-D, start at 0")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be non-decreasing")
    if channel.shape != (int(offsets[-1]),):
        raise ValueError(f"channel must have shape ({int(offsets[-1])},), got {channel.shape}")
    if channel.size and (channel.min() < 0 or channel.max() >= n_channels):
        raise ValueError(f"channel codes must be in [0, {n_channels})")
    return offsets, channel


def rule_credit(offsets: np.ndarray, channel: np.ndarray, timestamp: np.ndarray,
                converted: np.ndarray, n_channels: int, rule: str,
                half_life_hours: float = 168.0) -> np.ndarray:
    """Rule-based credit [J, C] (one of ``RULES``) for converting journeys; other rows 0.

    >>> rule_credit(np.array([0, 3]), np.array([0, 1, 2]), np.zeros(3), np.array([True]),
    ...             3, "position-based").tolist()
    [[0.4, 0.2, 0.4]]
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not half_life_hours > 0:
        raise ValueError(f"half_life_hours must be > 0, got {half_life_hours}")
    offsets, channel = _check_csr(offsets, channel, n_channels)
    timestamp = np.ascontiguousarray(timestamp, dtype=np.float64)
    converted = np.ascontiguousarray(converted, dtype=np.bool_)
    if timestamp.shape != channel.shape:
        raise ValueError(f"timestamp must have shape {channel.shape}, got {timestamp.shape}")
    if converted.shape != (offsets.shape[0] - 1,):
        raise ValueError(f"converted must have shape ({offsets.shape[0] - 1},)")
    out = np.zeros((offsets.shape[0] - 1, n_channels))
    _rule_credit(offsets, channel, timestamp, converted, RULES[rule],
                 half_life_hours * 3600.0, out)
    return out


@jit_nogil
def _markov_transitions(offsets, channel, converted, order, n_channels, src, dst):
    # state = the last `order` channels, digit k = channel k steps back (n_channels = none)
    base = n_channels + 1
    top = base ** (order - 1)
    start_state = base ** order
    k = 0
    for j in range(offsets.shape[0] - 1):
        if offsets[j + 1] == offsets[j]:
            continue
        state = 0
        for _ in range(order):
            state = state * base + n_channels
        prev = start_state
        for i in range(offsets[j], offsets[j + 1]):
            # drop the oldest digit, push the new channel as the most recent
            state = (state % top) * base + channel[i] if order > 1 else channel[i]
            src[k] = prev
            dst[k] = state
            k += 1
            prev = state
        src[k] = prev
        dst[k] = start_state + (1 if converted[j] else 2)
        k += 1
    return k


def markov_transitions(offsets: np.ndarray, channel: np.ndarray, converted: np.ndarray,
                       n_channels: int, order: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Every state transition of every journey: ``(src, dst, n_states)``.

    States ``0 .. (C+1)**order - 1`` encode the last ``order`` channels (digit
    value C = no channel yet); then START, CONVERSION and NULL follow.

    >>> s, d, n = markov_transitions(np.array([0, 2]), np.array([1, 0]), np.array([True]), 2, 1)
    >>> s.tolist(), d.tolist(), n
    ([3, 1, 0], [1, 0, 4], 6)
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if (n_channels + 1) ** order > 2 ** 40:
        raise ValueError(f"order {order} with {n_channels} channels has too many states")
    offsets, channel = _check_csr(offsets, channel, n_channels)
    converted = np.ascontiguousarray(converted, dtype=np.bool_)
    if converted.shape != (offsets.shape[0] - 1,):
        raise ValueError(f"converted must have shape ({offsets.shape[0] - 1},)")
    size = int(offsets[-1]) + int(np.count_nonzero(np.diff(offsets)))
    src = np.empty(size, dtype=np.int64)
    dst = np.empty(size, dtype=np.int64)
    k = _markov_transitions(offsets, channel, converted, order, n_channels, src, dst)
    return src[:k], dst[:k], (n_channels + 1) ** order + 3


@jit_nogil
def _channel_masks(offsets, channel, out):
    for j in range(offsets.shape[0] - 1):
        m = 0
        for i in range(offsets[j], offsets[j + 1]):
            m |= 1 << channel[i]
        out[j] = m


def channel_masks(offsets: np.ndarray, channel: np.ndarray, n_channels: int) -> np.ndarray:
    """Bitmask of the channels each journey touched, int64 [J].

    >>> channel_masks(np.array([0, 2, 3]), np.array([0, 2, 1]), 3).tolist()
    [5, 2]
    """
    if n_channels > 62:
        raise ValueError("at most 62 channels fit a bitmask")
    offsets, channel = _check_csr(offsets, channel, n_channels)
    out = np.empty(offsets.shape[0] - 1, dtype=np.int64)
    _channel_masks(offsets, channel, out)
    return out


@jit_nogil
def _weighted_presence(offsets, channel, converted, weight, out):
    for j in range(offsets.shape[0] - 1):
        if not converted[j] or offsets[j + 1] == offsets[j]:
            continue
        for i in range(offsets[j], offsets[j + 1]):
            out[j, channel[i]] = max(weight[channel[i]], 0.0)
        total = 0.0
        for c in range(out.shape[1]):
            total += out[j, c]
        if total > 0.0:
            for c in range(out.shape[1]):
                out[j, c] /= total
        else:
            # no present channel has a positive weight: split evenly among them
            count = 0
            for i in range(offsets[j], offsets[j + 1]):
                if out[j, channel[i]] == 0.0:
                    out[j, channel[i]] = -1.0
                    count += 1
            for c in range(out.shape[1]):
                out[j, c] = 1.0 / count if out[j, c] < 0.0 else 0.0


def weighted_presence(offsets: np.ndarray, channel: np.ndarray, converted: np.ndarray,
                      weight: np.ndarray) -> np.ndarray:
    """Credit [J, C]: each converting journey's present channels, in proportion to ``weight``.

    Negative weights count as 0; a journey whose present channels all weigh 0
    splits evenly among them.

    >>> weighted_presence(np.array([0, 2]), np.array([0, 2]), np.array([True]),
    ...                   np.array([0.3, 0.5, 0.1])).round(2).tolist()
    [[0.75, 0.0, 0.25]]
    """
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if weight.ndim != 1 or not np.all(np.isfinite(weight)):
        raise ValueError("weight must be a finite 1-D array")
    offsets, channel = _check_csr(offsets, channel, weight.shape[0])
    converted = np.ascontiguousarray(converted, dtype=np.bool_)
    if converted.shape != (offsets.shape[0] - 1,):
        raise ValueError(f"converted must have shape ({offsets.shape[0] - 1},)")
    out = np.zeros((offsets.shape[0] - 1, weight.shape[0]))
    _weighted_presence(offsets, channel, converted, weight, out)
    return out
