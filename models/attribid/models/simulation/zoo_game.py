"""The zoo's game: a journey's true conversion probability on every subset of its channels,
and the exact Shapley values over them by enumeration (Numba).

The players are the channels a journey touched (at most 16). The value of a set S of them is

    v(S) = link(b, z(S)),   z(S) = sum_{c in S} e_c + sum_{terms t inside S} a_t

``e_c`` is channel c's effect in the journey (from the dose of its touches, computed by
attribid.models.simulation.zoo), ``b`` the journey's organic baseline (v of the empty set),
and each interaction term is a pair or triple of channels that counts only when all its
channels are in S (coefficient times the geometric mean of their effects). ``link`` is the
form's (``FORM_CODES``): additive-and-capped ``min(b + z, p_max)``; noisy-OR
``1 - (1 - b) exp(-z)`` (also the diminishing form, whose e_c saturate and tire); logistic
``sigmoid(logit b + z)``; threshold ``b + (1 - b) * p_hi * step(z)`` with a smooth step
rescaled so that step(0) = 0 (p_hi: the share of non-converters the full step converts);
negative ``clip(b + z, 0, p_max)`` (interaction coefficients below 0).

Enumeration costs 2**k values and k 2**k differences for k channels: 1e6 operations at the
most (16 channels), so every journey's truth is exact and none is sampled.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.config import jit_nogil

FORM_CODES: dict[str, int] = {"additive": 0, "noisy-or": 1, "logistic": 2, "threshold": 3,
                              "diminishing": 1, "negative": 4}
MAX_PLAYERS = 16


@jit_nogil
def _link(form, b, z, p_max, threshold, steepness, p_hi):
    if form == 0:
        return min(b + z, p_max)
    if form == 1:
        return 1.0 - (1.0 - b) * math.exp(-z)
    if form == 2:
        return 1.0 / (1.0 + math.exp(-(math.log(b / (1.0 - b)) + z)))
    if form == 3:
        zero = 1.0 / (1.0 + math.exp(steepness * threshold))
        step = 1.0 / (1.0 + math.exp(-steepness * (z - threshold)))
        return b + (1.0 - b) * p_hi * (step - zero) / (1.0 - zero)
    return min(max(b + z, 0.0), p_max)


@jit_nogil
def _link_many(form, base, z, p_max, threshold, steepness, p_hi, out):
    for j in range(base.shape[0]):
        out[j] = _link(form, base[j], z[j], p_max, threshold, steepness, p_hi)


@jit_nogil
def _game(effect, present, base, pairs, pair_coef, triples, triple_coef, form, p_max,
          threshold, steepness, p_hi, shapley, removal, p_all):
    n_channels = effect.shape[1]
    z = np.empty(1 << n_channels)
    count = np.empty(1 << n_channels, dtype=np.int64)
    local = np.empty(n_channels, dtype=np.int64)
    players = np.empty(n_channels, dtype=np.int64)
    weight = np.empty(n_channels + 1)
    for j in range(effect.shape[0]):
        k = 0
        for c in range(n_channels):
            local[c] = -1
            if present[j, c]:
                local[c] = k
                players[k] = c
                k += 1
        size = 1 << k
        z[0] = 0.0
        count[0] = 0
        for i in range(k):
            bit = 1 << i
            e = effect[j, players[i]]
            for s in range(bit):
                z[s | bit] = z[s] + e
                count[s | bit] = count[s] + 1
        for t in range(pairs.shape[0]):
            a, c = local[pairs[t, 0]], local[pairs[t, 1]]
            if a >= 0 and c >= 0:
                term = pair_coef[t] * math.sqrt(effect[j, pairs[t, 0]] * effect[j, pairs[t, 1]])
                mask = (1 << a) | (1 << c)
                for s in range(size):
                    if s & mask == mask:
                        z[s] += term
        for t in range(triples.shape[0]):
            a, c, d = local[triples[t, 0]], local[triples[t, 1]], local[triples[t, 2]]
            if a >= 0 and c >= 0 and d >= 0:
                term = triple_coef[t] * (effect[j, triples[t, 0]] * effect[j, triples[t, 1]]
                                         * effect[j, triples[t, 2]]) ** (1.0 / 3.0)
                mask = (1 << a) | (1 << c) | (1 << d)
                for s in range(size):
                    if s & mask == mask:
                        z[s] += term
        for s in range(size):
            z[s] = _link(form, base[j], z[s], p_max, threshold, steepness, p_hi)
        p_all[j] = z[size - 1]
        # |S|! (k - |S| - 1)! / k! for a coalition S of the other players
        for m in range(k):
            weight[m] = math.exp(math.lgamma(m + 1) + math.lgamma(k - m) - math.lgamma(k + 1))
        for i in range(k):
            bit = 1 << i
            phi = 0.0
            for s in range(size):
                if s & bit == 0:
                    phi += weight[count[s]] * (z[s | bit] - z[s])
            shapley[j, players[i]] = phi
            removal[j, players[i]] = z[size - 1] - z[(size - 1) ^ bit]


def channel_game(effect: np.ndarray, present: np.ndarray, base: np.ndarray, form: str,
                 pairs: np.ndarray, pair_coef: np.ndarray, triples: np.ndarray,
                 triple_coef: np.ndarray, p_max: float = 1.0, threshold: float = 0.0,
                 steepness: float = 1.0, p_hi: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact channel Shapley values [J, C], removal effects [J, C] and v(all) [J].

    ``effect`` float64 [J, C] (e_c; read only where ``present``), ``present`` bool [J, C],
    ``base`` float64 [J] in (0, 1).

    >>> e = np.array([[0.1, 0.2]]); both = np.ones((1, 2), bool)
    >>> phi, rem, p = channel_game(e, both, np.array([0.05]), "additive", np.array([[0, 1]]),
    ...                            np.array([0.5]), np.zeros((0, 3), np.int64), np.zeros(0))
    >>> phi.round(4).tolist(), round(float(p[0]), 4)
    ([[0.1354, 0.2354]], 0.4207)
    """
    if form not in FORM_CODES:
        raise ValueError(f"form must be one of {', '.join(FORM_CODES)}, got {form!r}")
    effect = np.ascontiguousarray(effect, dtype=np.float64)
    present = np.ascontiguousarray(present, dtype=np.bool_)
    base = np.ascontiguousarray(base, dtype=np.float64)
    if effect.ndim != 2 or present.shape != effect.shape or base.shape != (effect.shape[0],):
        raise ValueError("effect and present must be [J, C] and base [J]")
    if effect.shape[1] > MAX_PLAYERS:
        raise ValueError(f"at most {MAX_PLAYERS} channels, got {effect.shape[1]}")
    if np.any((base <= 0) | (base >= 1)):
        raise ValueError("base must be in (0, 1)")
    shapley = np.zeros(effect.shape)
    removal = np.zeros(effect.shape)
    p_all = np.empty(effect.shape[0])
    _game(effect, present, base, np.asarray(pairs, np.int64).reshape(-1, 2),
          np.asarray(pair_coef, np.float64), np.asarray(triples, np.int64).reshape(-1, 3),
          np.asarray(triple_coef, np.float64), FORM_CODES[form], float(p_max),
          float(threshold), float(steepness), float(p_hi), shapley, removal, p_all)
    return shapley, removal, p_all


def link_many(form: str, base: np.ndarray, z: np.ndarray, p_max: float = 1.0,
              threshold: float = 0.0, steepness: float = 1.0, p_hi: float = 1.0) -> np.ndarray:
    """The form's link at each (b, z): float64 [J].

    >>> link_many("logistic", np.array([0.5]), np.array([0.0])).tolist()
    [0.5]
    """
    out = np.empty(np.shape(base))
    _link_many(FORM_CODES[form], np.asarray(base, np.float64), np.asarray(z, np.float64),
               float(p_max), float(threshold), float(steepness), float(p_hi), out)
    return out
