"""The classic attribution models, one entry point: ``attribute_journeys``.

Every method returns float64 [J, C]: each converting journey's row sums to 1
(its conversion split over channels), every other row is 0.

- ``last-click`` / ``first-click``: all credit to the last / first touch's channel.
- ``linear``: each touch 1/n.
- ``time-decay``: touch i weighs 2 ** (-(t_conv - t_i) / half_life); the option
  ``half_life_hours`` (default 168). Only ratios matter, so the kernel measures
  ages from the latest touch: the shares are those of the conversion-time reference.
- ``position-based``: 40 % first, 40 % last, 20 % split over the middle;
  one touch takes 100 %, two touches 50/50.
- ``markov``: removal effects of an order-K chain (option ``order``, default 1)
  fitted on all journeys (``markov_removal_effects``); a journey's credit is its
  present channels' removal effects, normalised.
- ``shapley``: data-driven Shapley values over channel sets
  (``shapley_set_values``), computed exactly per journey over its present channels.

A journey whose present channels all get zero (or negative) weight from
``markov`` or ``shapley`` splits its credit evenly among them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csc_matrix, identity
from scipy.sparse.linalg import spsolve

from attribid.kernels.classic import (
    RULES, channel_masks, markov_transitions, rule_credit, weighted_presence,
)
from attribid.models.data.journeys import Journeys
from attribid.kernels.shapley import MAX_SET_CHANNELS, set_shapley, subset_sums

METHODS: tuple[str, ...] = (*RULES, "markov", "shapley")
_OPTIONS: dict[str, set[str]] = {
    "time-decay": {"half_life_hours"}, "markov": {"order"}, "shapley": set(),
}


def markov_removal_effects(journeys: Journeys, order: int = 1) -> np.ndarray:
    """Removal effect of each channel in an order-``order`` Markov chain, float64 [C].

    States are the last ``order`` channels of a path; START leads to the first
    state and each path ends in CONVERSION or NULL, so transition probabilities
    are observed frequencies. P = probability of reaching CONVERSION from START
    (absorbing probabilities, a sparse linear solve). Removing channel c sends
    every transition into a state that contains c to NULL; its removal effect is
    1 - P_without_c / P (0 for every channel when P = 0).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 2000, seed=1)
    >>> bool(np.all((markov_removal_effects(j) >= 0) & (markov_removal_effects(j) <= 1)))
    True
    """
    n_channels = len(journeys.channels)
    src, dst, n_states = markov_transitions(journeys.offsets, journeys.channel,
                                            journeys.converted, n_channels, order)
    start, conv = n_states - 3, n_states - 2
    if src.size == 0:
        return np.zeros(n_channels)
    key, count = np.unique(src * n_states + dst, return_counts=True)
    s, d = key // n_states, key % n_states
    states = np.unique(s)                      # transient: every state a path leaves
    index = np.full(n_states, -1, dtype=np.int64)
    index[states] = np.arange(states.shape[0])
    prob = count / np.bincount(index[s], weights=count)[index[s]]
    # which transient states contain each channel (digit k = channel k steps back)
    base = n_channels + 1
    digits = np.stack([(states // base ** k) % base for k in range(order)], axis=1)
    digits[states == start] = n_channels

    def conversion_probability(removed: np.ndarray) -> float:
        inner = (d != conv) & (index[d] >= 0)
        live = ~removed[index[s]]
        q = inner & live & ~removed[np.maximum(index[d], 0)]
        t = states.shape[0]
        a = identity(t, format="csc") - csc_matrix(
            (prob[q], (index[s[q]], index[d[q]])), shape=(t, t))
        r = np.zeros(t)
        to_conv = (d == conv) & live
        np.add.at(r, index[s[to_conv]], prob[to_conv])
        return float(np.atleast_1d(spsolve(a, r))[index[start]])

    total = conversion_probability(np.zeros(states.shape[0], dtype=bool))
    effects = np.zeros(n_channels)
    if total <= 0.0:
        return effects
    for c in range(n_channels):
        without = conversion_probability(np.any(digits == c, axis=1))
        effects[c] = max(1.0 - without / total, 0.0)
    return effects


def shapley_set_values(journeys: Journeys) -> np.ndarray:
    """Value of each channel set (bitmask index), float64 [2 ** C].

    v(S) = conversion rate of the journeys whose channel set is exactly S. For
    a set no journey has, v(S) = pooled conversion rate of the journeys whose
    channel set is a subset of S (0 if there are none). v(empty set) = 0.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 2000, seed=1)
    >>> v = shapley_set_values(j)
    >>> v.shape, float(v[0])
    ((128,), 0.0)
    """
    n_channels = len(journeys.channels)
    if n_channels > MAX_SET_CHANNELS:
        raise ValueError(f"shapley supports at most {MAX_SET_CHANNELS} channels, "
                         f"got {n_channels}")
    masks = channel_masks(journeys.offsets, journeys.channel, n_channels)
    size = 1 << n_channels
    seen = np.bincount(masks, minlength=size).astype(np.float64)
    conv = np.bincount(masks, weights=journeys.converted.astype(np.float64), minlength=size)
    pooled_n, pooled_conv = subset_sums(seen), subset_sums(conv)
    fallback = np.divide(pooled_conv, pooled_n, out=np.zeros(size), where=pooled_n > 0)
    value = np.divide(conv, seen, out=fallback.copy(), where=seen > 0)
    value[0] = 0.0
    return value


def _shapley_credit(journeys: Journeys) -> np.ndarray:
    n_channels = len(journeys.channels)
    value = shapley_set_values(journeys)
    masks = channel_masks(journeys.offsets, journeys.channel, n_channels)
    rows = np.flatnonzero(journeys.converted & (journeys.lengths() > 0))
    sets, inverse = np.unique(masks[rows], return_inverse=True)
    phi = np.maximum(set_shapley(sets, value, n_channels), 0.0)
    present = ((sets[:, None] >> np.arange(n_channels)) & 1).astype(np.float64)
    total = phi.sum(axis=1, keepdims=True)
    shares = np.where(total > 0, phi / np.where(total > 0, total, 1.0),
                      present / present.sum(axis=1, keepdims=True))
    out = np.zeros((journeys.n_journeys, n_channels))
    out[rows] = shares[inverse.ravel()]
    return out


def attribute_journeys(journeys: Journeys, method: str, **options: Any) -> np.ndarray:
    """Credit [J, C] of each converting journey's conversion, by ``method`` (see ``METHODS``).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 500, seed=1)
    >>> credit = attribute_journeys(j, "time-decay", half_life_hours=24)
    >>> bool(np.allclose(credit.sum(1), j.converted))
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    unknown = set(options) - _OPTIONS.get(method, set())
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(sorted(unknown))}")
    n_channels = len(journeys.channels)
    if journeys.n_touchpoints == 0:
        return np.zeros((journeys.n_journeys, n_channels))
    if method in RULES:
        return rule_credit(journeys.offsets, journeys.channel, journeys.timestamp,
                           journeys.converted, n_channels, method,
                           float(options.get("half_life_hours", 168.0)))
    if method == "markov":
        effects = markov_removal_effects(journeys, int(options.get("order", 1)))
        return weighted_presence(journeys.offsets, journeys.channel, journeys.converted,
                                 effects)
    return _shapley_credit(journeys)
