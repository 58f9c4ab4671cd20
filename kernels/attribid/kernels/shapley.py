"""Exact Shapley values for the two games attribution needs.

1. The pairwise touch game of the simulator: a journey's conversion probability
   over a subset S of its touches is

       v(S) = b + sum_{i in S} a_i + sum_{i<j in S} s_ij,

   with s_ij = Syn[c_i, c_j] * sqrt(g_i * g_j) for touches of different channels
   (i earlier than j) and 0 otherwise. Its Shapley value is closed form:
   phi_i = a_i + 1/2 * sum_{j != i} s_ij, and the removal effect of a channel
   is every term that involves one of its touches.

2. The channel-set game of data-driven Shapley: a value per channel bitmask,
   Shapley values computed exactly by enumerating the subsets of the present
   channels (``set_shapley``).
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil

#: the largest channel count the bitmask game supports (2**16 set values)
MAX_SET_CHANNELS = 16


@jit_nogil
def _pair_term(syn, ci, cj, gi, gj):
    if ci == cj:
        return 0.0
    return syn[ci, cj] * math.sqrt(gi * gj)


@jit_nogil
def _pairwise_game(offsets, channel, effect, strength, syn, base,
                   touch_phi, shapley, removal, p):
    for j in range(offsets.shape[0] - 1):
        start = offsets[j]
        end = offsets[j + 1]
        total = base[j]
        for i in range(start, end):
            ci = channel[i]
            phi = effect[i]
            removal[j, ci] += effect[i]
            total += effect[i]
            for k in range(start, end):
                if k == i:
                    continue
                if k > i:
                    s = _pair_term(syn, ci, channel[k], strength[i], strength[k])
                else:
                    s = _pair_term(syn, channel[k], ci, strength[k], strength[i])
                phi += 0.5 * s
                if k > i:
                    total += s
                    # a pair counts once in each channel it involves
                    removal[j, ci] += s
                    if channel[k] != ci:
                        removal[j, channel[k]] += s
            touch_phi[i] = phi
            shapley[j, ci] += phi
        p[j] = total


def pairwise_game(offsets: np.ndarray, channel: np.ndarray, effect: np.ndarray,
                  strength: np.ndarray, synergy: np.ndarray, base: np.ndarray,
                  n_channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form values of the pairwise touch game, per journey.

    Returns ``(touch_phi [N], shapley [J, C], removal [J, C], p [J])``: each touch's
    Shapley value, their sum per channel, each channel's removal effect
    ``v(all) - v(all but the channel's touches)``, and ``v(all)``.

    >>> phi, sh, rm, p = pairwise_game(np.array([0, 2]), np.array([0, 1]),
    ...     np.array([0.1, 0.2]), np.ones(2), np.array([[0, 0.04], [0, 0]]),
    ...     np.array([0.05]), 2)
    >>> phi.round(3).tolist(), p.round(3).tolist()
    ([0.12, 0.22], [0.39])
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n_rows = int(offsets[-1])
    channel = np.ascontiguousarray(channel, dtype=np.int32)
    effect = np.ascontiguousarray(effect, dtype=np.float64)
    strength = np.ascontiguousarray(strength, dtype=np.float64)
    synergy = np.ascontiguousarray(synergy, dtype=np.float64)
    base = np.ascontiguousarray(base, dtype=np.float64)
    for name, arr in (("channel", channel), ("effect", effect), ("strength", strength)):
        if arr.shape != (n_rows,):
            raise ValueError(f"{name} must have shape ({n_rows},), got {arr.shape}")
    if base.shape != (offsets.shape[0] - 1,):
        raise ValueError(f"base must have shape ({offsets.shape[0] - 1},), got {base.shape}")
    if synergy.shape != (n_channels, n_channels):
        raise ValueError(f"synergy must be [{n_channels}, {n_channels}], got {synergy.shape}")
    if n_rows and (channel.min() < 0 or channel.max() >= n_channels):
        raise ValueError(f"channel codes must be in [0, {n_channels})")
    if np.any(strength < 0):
        raise ValueError("strength must be >= 0")
    n_j = offsets.shape[0] - 1
    touch_phi = np.zeros(n_rows)
    shapley = np.zeros((n_j, n_channels))
    removal = np.zeros((n_j, n_channels))
    p = np.zeros(n_j)
    _pairwise_game(offsets, channel, effect, strength, synergy, base,
                   touch_phi, shapley, removal, p)
    return touch_phi, shapley, removal, p


@jit_nogil
def _oldest_to_drop(offsets, channel, effect, strength, syn, base, p_max, out):
    for j in range(offsets.shape[0] - 1):
        start = offsets[j]
        end = offsets[j + 1]
        while end - start > 1:
            total = base[j]
            for i in range(start, end):
                total += effect[i]
                for k in range(i + 1, end):
                    total += _pair_term(syn, channel[i], channel[k], strength[i], strength[k])
            if total <= p_max:
                break
            start += 1
        out[j] = start - offsets[j]


def oldest_to_drop(offsets: np.ndarray, channel: np.ndarray, effect: np.ndarray,
                   strength: np.ndarray, synergy: np.ndarray, base: np.ndarray,
                   p_max: float) -> np.ndarray:
    """How many oldest touches each journey must lose for v(all) <= p_max, int64 [J].

    A journey keeps at least its latest touch.

    >>> oldest_to_drop(np.array([0, 3]), np.array([0, 0, 0]), np.full(3, 0.4),
    ...                np.ones(3), np.zeros((1, 1)), np.array([0.1]), 0.95).tolist()
    [1]
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.zeros(offsets.shape[0] - 1, dtype=np.int64)
    _oldest_to_drop(offsets, np.ascontiguousarray(channel, dtype=np.int32),
                    np.ascontiguousarray(effect, dtype=np.float64),
                    np.ascontiguousarray(strength, dtype=np.float64),
                    np.ascontiguousarray(synergy, dtype=np.float64),
                    np.ascontiguousarray(base, dtype=np.float64), float(p_max), out)
    return out


@jit_nogil
def _set_shapley(mask, n_channels, value, out):
    # players = the bits of mask; weights |T|! (n-|T|-1)! / n! by subset size
    players = np.empty(n_channels, dtype=np.int64)
    n = 0
    for c in range(n_channels):
        if mask & (1 << c):
            players[n] = c
            n += 1
    weight = np.empty(max(n, 1))
    for t in range(n):
        weight[t] = math.exp(math.lgamma(t + 1) + math.lgamma(n - t) - math.lgamma(n + 1))
    for q in range(n):
        out[players[q]] = 0.0
    # enumerate subsets of the present players by their local index bits
    for local in range(1 << n):
        sub = 0
        size = 0
        for q in range(n):
            if local & (1 << q):
                sub |= 1 << players[q]
                size += 1
        for q in range(n):
            if not (local & (1 << q)):
                c = players[q]
                out[c] += weight[size] * (value[sub | (1 << c)] - value[sub])


@jit_nogil
def _set_shapley_many(masks, n_channels, value, out):
    for r in range(masks.shape[0]):
        _set_shapley(masks[r], n_channels, value, out[r])


def set_shapley(masks: np.ndarray, value: np.ndarray, n_channels: int) -> np.ndarray:
    """Exact Shapley values of the channel-set game ``value`` for each coalition in ``masks``.

    ``value`` is float64 [2**n_channels] indexed by bitmask (bit c = channel c);
    row r of the result holds each present channel's Shapley value within the
    game restricted to ``masks[r]`` (absent channels are 0).

    >>> v = np.array([0.0, 0.1, 0.2, 0.5])   # {}, {0}, {1}, {0,1}
    >>> set_shapley(np.array([3]), v, 2).round(3).tolist()
    [[0.2, 0.3]]
    """
    if not 1 <= n_channels <= MAX_SET_CHANNELS:
        raise ValueError(f"n_channels must be in [1, {MAX_SET_CHANNELS}], got {n_channels}")
    value = np.ascontiguousarray(value, dtype=np.float64)
    if value.shape != (1 << n_channels,):
        raise ValueError(f"value must have shape ({1 << n_channels},), got {value.shape}")
    masks = np.ascontiguousarray(masks, dtype=np.int64)
    if masks.ndim != 1:
        raise ValueError("masks must be 1-D")
    if masks.size and (masks.min() < 0 or masks.max() >= (1 << n_channels)):
        raise ValueError(f"masks must be in [0, {1 << n_channels})")
    out = np.zeros((masks.shape[0], n_channels))
    _set_shapley_many(masks, n_channels, value, out)
    return out


@jit_nogil
def _subset_sums(x):
    # zeta transform over bitmasks: after pass b, x[m] sums all m' that differ in bits <= b
    bit = 1
    while bit < x.shape[0]:
        for m in range(x.shape[0]):
            if m & bit:
                x[m] += x[m ^ bit]
        bit <<= 1


def subset_sums(values: np.ndarray) -> np.ndarray:
    """``out[S] = sum of values[T] over every T that is a subset of S`` (bitmask index).

    >>> subset_sums(np.array([1.0, 2.0, 3.0, 4.0])).tolist()
    [1.0, 3.0, 4.0, 10.0]
    """
    out = np.array(values, dtype=np.float64)
    if out.ndim != 1 or out.shape[0] & (out.shape[0] - 1) or out.shape[0] == 0:
        raise ValueError("values must be 1-D with a power-of-two length")
    _subset_sums(out)
    return out
