"""The classic attribution models: per-journey credit and per-channel totals.

``attribute_journeys`` gives float64 [J, C]: each converting journey's row sums to
1 (its conversion split over channels), every other row is 0. ``credit_totals``
gives each channel's credited conversions and revenue, the figures a report shows;
``totals_for_weights`` computes them again for other journey weights (bootstrap
resamples, or aggregated paths where one row stands for many journeys).

- ``last-click`` / ``first-click``: all credit to the last / first touch's channel.
- ``linear``: each touch 1/n.
- ``time-decay``: touch i weighs 2 ** (-(t_conv - t_i) / half_life); the option
  ``half_life_hours`` (default 168). Only ratios matter, so the kernel measures
  ages from the latest touch: the shares are those of the conversion-time reference.
- ``position-based``: 40 % first, 40 % last, 20 % split over the middle;
  one touch takes 100 %, two touches 50/50.
- ``markov``: the standard Markov model (Anderl et al.; ChannelAttribution's
  ``markov_model``). Removal effects RE_c of an order-K chain (option ``order``,
  default 1) fitted on all journeys; channel c is credited RE_c / sum(RE) of all
  conversions, and RE^value_c / sum(RE^value) of all revenue, where RE^value is the
  removal effect on the chain's expected conversion value. The model is aggregate:
  per journey, every conversion carries the same shares RE / sum(RE).
- ``markov-per-journey``: the same removal effects, but each journey's conversion
  is split over its own channels in proportion to their removal effects.
- ``shapley``: data-driven Shapley values over channel sets
  (``shapley_set_values``), computed exactly per journey over its present channels.

A journey whose present channels all get zero (or negative) weight from
``markov-per-journey`` or ``shapley`` splits its credit evenly among them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.sparse import csc_matrix, identity
from scipy.sparse.linalg import spsolve

from attribid.kernels.classic import (
    RULES, channel_masks, markov_transitions, rule_credit, weighted_presence,
)
from attribid.models.data.journeys import Journeys
from attribid.kernels.shapley import MAX_SET_CHANNELS, set_shapley, subset_sums

METHODS: tuple[str, ...] = (*RULES, "markov", "markov-per-journey", "shapley")
#: methods that need each touch's time (aggregated paths have none)
TIMED_METHODS: tuple[str, ...] = ("time-decay",)
_OPTIONS: dict[str, set[str]] = {
    "time-decay": {"half_life_hours"}, "markov": {"order"}, "markov-per-journey": {"order"},
    "shapley": set(),
}
#: chains with at most this many transient states are solved densely (faster when small)
_DENSE_STATES = 256


@dataclass(frozen=True)
class Totals:
    """Each channel's credited conversions and credited revenue, float64 [C] each."""

    conversions: np.ndarray
    revenue: np.ndarray


@dataclass(frozen=True)
class RemovalEffects:
    """Removal effects of a Markov chain, per channel, and what they are relative to."""

    #: 1 - P(conversion without c) / P(conversion), float64 [C]
    conversion: np.ndarray
    #: 1 - E[value without c] / E[value], float64 [C] (0 when no conversion has a value)
    value: np.ndarray
    #: probability of reaching CONVERSION from START
    probability: float
    #: expected conversion value from START
    expected_value: float


class MarkovChain:
    """An order-K chain over journeys: transitions counted once, fitted for any weights.

    States are the last ``order`` channels of a path; START leads to the first
    state and each path ends in CONVERSION or NULL, so transition probabilities
    are the observed (weighted) frequencies. Removing channel c sends every
    transition into a state that contains c to NULL. A conversion's value is
    attached to the transition that reaches CONVERSION, so the chain's expected
    value from START weighs each last state by the mean value of its conversions.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 2000, seed=1)
    >>> chain = MarkovChain(j)
    >>> re = chain.removal_effects()
    >>> bool(np.all((re.conversion >= 0) & (re.conversion <= 1))), 0 < re.probability < 1
    (True, True)
    """

    #: per distinct transition, how many journeys made it (a chain ``from_counts`` only)
    counts: np.ndarray

    def __init__(self, journeys: Journeys, order: int = 1) -> None:
        n_channels = len(journeys.channels)
        src, dst, n_states = markov_transitions(journeys.offsets, journeys.channel,
                                                journeys.converted, n_channels, order)
        lengths = journeys.lengths()
        has = lengths > 0
        # a journey of n touches makes n + 1 transitions, in journey order
        self.owner: np.ndarray | None = np.repeat(np.flatnonzero(has), lengths[has] + 1)
        key, inverse = np.unique(src * n_states + dst, return_inverse=True)
        self.inverse = inverse.ravel()
        self.owner_value = journeys.value[self.owner]
        self.n_journeys = journeys.n_journeys
        self._set_keys(journeys.channels, order, n_states, key)

    @classmethod
    def from_counts(cls, channels: tuple[str, ...], order: int, src: np.ndarray,
                    dst: np.ndarray, count: np.ndarray, value: np.ndarray) -> "MarkovChain":
        """A chain from transitions counted elsewhere (e.g. by a database query).

        ``src``, ``dst`` are state codes as ``markov_transitions`` numbers them, each pair
        once; ``count`` how many journeys made it, ``value`` the summed value of those
        journeys on transitions into CONVERSION. Such a chain fits one weighting only:
        the counts as given (``fit(None)``).

        >>> from attribid.models.simulation.simulate import simulate, WORLDS
        >>> j, _ = simulate(WORLDS["balanced"], 500, seed=1)
        >>> s, d, n = markov_transitions(j.offsets, j.channel, j.converted, 7, 1)
        >>> key, inv, cnt = np.unique(s * n + d, return_inverse=True, return_counts=True)
        >>> owner = np.repeat(np.arange(j.n_journeys), j.lengths() + 1)
        >>> val = np.bincount(inv, weights=np.where(d == n - 2, j.value[owner], 0.0))
        >>> c = MarkovChain.from_counts(j.channels, 1, key // n, key % n, cnt, val)
        >>> bool(np.allclose(c.removal_effects().conversion, markov_removal_effects(j)))
        True
        """
        chain = cls.__new__(cls)
        n_states = (len(channels) + 1) ** order + 3
        src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        key, inverse = np.unique(src * n_states + dst, return_inverse=True)
        chain.owner, chain.inverse = None, inverse.ravel()
        chain.owner_value = np.asarray(value, np.float64)
        chain.counts = np.asarray(count, np.float64)
        chain.n_journeys = int(chain.counts[dst >= n_states - 2].sum())
        chain._set_keys(tuple(channels), order, n_states, key)
        return chain

    def _set_keys(self, channels: tuple[str, ...], order: int, n_states: int,
                  key: np.ndarray) -> None:
        """The distinct transitions ``key = src * n_states + dst`` and their states."""
        self.order, self.channels = order, channels
        n_channels = len(channels)
        self.n_states = n_states
        self.start, self.conv, self.null = n_states - 3, n_states - 2, n_states - 1
        self.s, self.d = key // n_states, key % n_states
        self.states = np.unique(self.s)          # transient: every state a path leaves
        self.index = np.full(n_states, -1, dtype=np.int64)
        self.index[self.states] = np.arange(self.states.shape[0])
        # which transient states contain each channel (digit k = channel k steps back)
        base = n_channels + 1
        digits = np.stack([(self.states // base ** k) % base for k in range(order)], axis=1)
        digits[self.states == self.start] = n_channels
        self.digits = digits

    def fit(self, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Transition probabilities and value rates per distinct transition, for ``weight``.

        Returns ``(prob, value_rate)``: P(s -> d) and, on transitions into CONVERSION,
        P(s -> CONVERSION) times the mean value of those conversions.
        """
        n_keys = self.s.shape[0]
        if self.owner is None:
            # counted elsewhere: one weighting only, the counts themselves
            if weight is not None:
                raise ValueError("a chain from counts fits its own counts only (weight=None)")
            count = np.bincount(self.inverse, weights=self.counts, minlength=n_keys)
            value = np.bincount(self.inverse, weights=self.owner_value, minlength=n_keys)
        else:
            w = (np.ones(self.owner.shape[0]) if weight is None
                 else np.asarray(weight)[self.owner])
            count = np.bincount(self.inverse, weights=w, minlength=n_keys)
            value = np.bincount(self.inverse, weights=w * self.owner_value, minlength=n_keys)
        out = np.bincount(self.index[self.s], weights=count, minlength=self.states.shape[0])
        total = out[self.index[self.s]]
        # a state no weighted journey leaves is unreachable: its row stays 0
        prob = np.divide(count, total, out=np.zeros(n_keys), where=total > 0)
        rate = np.divide(value, total, out=np.zeros(n_keys), where=(total > 0) & (self.d == self.conv))
        return prob, rate

    def removal_effects(self, weight: np.ndarray | None = None) -> RemovalEffects:
        """Removal effects on conversions and on value; all 0 when nothing converts."""
        n_channels = len(self.channels)
        if self.s.size == 0:
            return RemovalEffects(np.zeros(n_channels), np.zeros(n_channels), 0.0, 0.0)
        prob, rate = self.fit(weight)
        base = self._absorb(prob, rate, np.zeros(self.states.shape[0], dtype=bool))
        effects = np.zeros((2, n_channels))
        if base[0] > 0.0:
            for c in range(n_channels):
                without = self._absorb(prob, rate, np.any(self.digits == c, axis=1))
                for k in range(2):
                    if base[k] > 0.0:
                        effects[k, c] = max(1.0 - without[k] / base[k], 0.0)
        return RemovalEffects(effects[0], effects[1], float(base[0]), float(base[1]))

    def _absorb(self, prob: np.ndarray, rate: np.ndarray, removed: np.ndarray) -> np.ndarray:
        """(P(conversion), E[value]) from START with the ``removed`` states cut off."""
        index, s, d = self.index, self.s, self.d
        inner = (d != self.conv) & (index[d] >= 0)
        live = ~removed[index[s]]
        q = inner & live & ~removed[np.maximum(index[d], 0)]
        t = self.states.shape[0]
        rhs = np.zeros((t, 2))
        to_conv = (d == self.conv) & live
        np.add.at(rhs[:, 0], index[s[to_conv]], prob[to_conv])
        np.add.at(rhs[:, 1], index[s[to_conv]], rate[to_conv])
        if t <= _DENSE_STATES:
            a = np.eye(t)
            np.add.at(a, (index[s[q]], index[d[q]]), -prob[q])
            x = np.linalg.solve(a, rhs)
        else:
            a_sparse = identity(t, format="csc") - csc_matrix(
                (prob[q], (index[s[q]], index[d[q]])), shape=(t, t))
            x = np.asarray(spsolve(a_sparse, rhs)).reshape(t, 2)
        return x[index[self.start]]

    def state_names(self) -> list[str]:
        """Each transient state's channels, oldest first (``START`` for the start state)."""
        n_channels = len(self.channels)
        names = []
        for state, row in zip(self.states.tolist(), self.digits.tolist()):
            if state == self.start:
                names.append("START")
            else:
                names.append(" > ".join(self.channels[c] for c in reversed(row)
                                        if c != n_channels))
        return names

    def transition_matrix(self, weight: np.ndarray | None = None
                          ) -> tuple[list[str], list[str], np.ndarray]:
        """``(from_states, to_states, P)``: P[i, k] = P(from_states[i] -> to_states[k]).

        The rows are the transient states (START first); the columns are the states
        a path enters, then CONVERSION and NULL.
        """
        prob, _ = self.fit(weight)
        names = self.state_names()
        order = np.argsort([n != "START" for n in names], kind="stable")
        rows = [names[i] for i in order]
        row_of = np.empty(len(names), dtype=np.int64)
        row_of[order] = np.arange(len(names))
        entered = np.unique(self.d[self.index[self.d] >= 0])
        col_of = np.full(self.n_states, -1, dtype=np.int64)
        col_of[entered] = np.arange(entered.shape[0])
        col_of[self.conv], col_of[self.null] = entered.shape[0], entered.shape[0] + 1
        columns = [names[self.index[e]] for e in entered.tolist()] + ["CONVERSION", "NULL"]
        matrix = np.zeros((len(rows), len(columns)))
        keep = col_of[self.d] >= 0
        np.add.at(matrix, (row_of[self.index[self.s[keep]]], col_of[self.d[keep]]), prob[keep])
        return rows, columns, matrix


def markov_removal_effects(journeys: Journeys, order: int = 1) -> np.ndarray:
    """Removal effect of each channel in an order-``order`` Markov chain, float64 [C].

    P = probability of reaching CONVERSION from START (absorbing probabilities, a
    linear solve). The removal effect of c is 1 - P_without_c / P (0 for every
    channel when P = 0), where removing c sends every transition into a state that
    contains c to NULL (see ``MarkovChain``).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 2000, seed=1)
    >>> bool(np.all((markov_removal_effects(j) >= 0) & (markov_removal_effects(j) <= 1)))
    True
    """
    return MarkovChain(journeys, order).removal_effects().conversion


def shapley_set_values(journeys: Journeys, weight: np.ndarray | None = None) -> np.ndarray:
    """Value of each channel set (bitmask index), float64 [2 ** C].

    v(S) = conversion rate of the journeys whose channel set is exactly S. For
    a set no journey has, v(S) = pooled conversion rate of the journeys whose
    channel set is a subset of S (0 if there are none). v(empty set) = 0.
    ``weight`` counts each journey that many times (None: once).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 2000, seed=1)
    >>> v = shapley_set_values(j)
    >>> v.shape, float(v[0])
    ((128,), 0.0)
    """
    masks = journey_masks(journeys)
    return _set_values(masks, journeys.converted,
                       np.ones(journeys.n_journeys) if weight is None else weight,
                       len(journeys.channels))


def journey_masks(journeys: Journeys) -> np.ndarray:
    """Each journey's channel bitmask (bit c: channel c touched), int64 [J].

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> journey_masks(js).shape == (js.n_journeys,)
    True
    """
    n_channels = len(journeys.channels)
    if n_channels > MAX_SET_CHANNELS:
        raise ValueError(f"shapley supports at most {MAX_SET_CHANNELS} channels, "
                         f"got {n_channels}")
    return channel_masks(journeys.offsets, journeys.channel, n_channels)


def _set_values(masks: np.ndarray, converted: np.ndarray, weight: np.ndarray,
                n_channels: int) -> np.ndarray:
    size = 1 << n_channels
    seen = np.bincount(masks, weights=weight, minlength=size)
    conv = np.bincount(masks, weights=weight * converted, minlength=size)
    return set_values_of_counts(seen, conv)


def set_values_of_counts(seen: np.ndarray, conv: np.ndarray) -> np.ndarray:
    """``shapley_set_values`` from each channel set's journeys and conversions, [2 ** C] each.

    >>> set_values_of_counts(np.array([0.0, 4, 0, 2]), np.array([0.0, 1, 0, 2])).tolist()
    [0.0, 0.25, 0.0, 1.0]
    """
    size = seen.shape[0]
    pooled_n, pooled_conv = subset_sums(seen), subset_sums(conv)
    fallback = np.divide(pooled_conv, pooled_n, out=np.zeros(size), where=pooled_n > 0)
    value = np.divide(conv, seen, out=fallback.copy(), where=seen > 0)
    value[0] = 0.0
    return value


def set_shares(sets: np.ndarray, value: np.ndarray, n_channels: int) -> np.ndarray:
    """Each channel set's Shapley shares (rows sum to 1 over its channels), [len(sets), C].

    >>> set_shares(np.array([3]), np.array([0.0, 0.1, 0.3, 0.4]), 2).round(2).tolist()
    [[0.25, 0.75]]
    """
    phi = np.maximum(set_shapley(sets, value, n_channels), 0.0)
    present = ((sets[:, None] >> np.arange(n_channels)) & 1).astype(np.float64)
    total = phi.sum(axis=1, keepdims=True)
    return np.where(total > 0, phi / np.where(total > 0, total, 1.0),
                    present / present.sum(axis=1, keepdims=True))


def _shapley_credit(journeys: Journeys) -> np.ndarray:
    n_channels = len(journeys.channels)
    masks = journey_masks(journeys)
    value = _set_values(masks, journeys.converted, np.ones(journeys.n_journeys), n_channels)
    rows = np.flatnonzero(journeys.converted & (journeys.lengths() > 0))
    sets, inverse = np.unique(masks[rows], return_inverse=True)
    shares = set_shares(sets, value, n_channels)
    out = np.zeros((journeys.n_journeys, n_channels))
    out[rows] = shares[inverse.ravel()]
    return out


def _check(method: str, options: dict[str, Any]) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    unknown = set(options) - _OPTIONS.get(method, set())
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(sorted(unknown))}")


def markov_shares(effects: np.ndarray) -> np.ndarray:
    """Removal effects as shares of all conversions, RE / sum(RE) (0 when all are 0)."""
    total = effects.sum()
    return effects / total if total > 0 else np.zeros_like(effects)


def attribute_journeys(journeys: Journeys, method: str, **options: Any) -> np.ndarray:
    """Credit [J, C] of each converting journey's conversion, by ``method`` (see ``METHODS``).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 500, seed=1)
    >>> credit = attribute_journeys(j, "time-decay", half_life_hours=24)
    >>> bool(np.allclose(credit.sum(1), j.converted))
    True
    """
    _check(method, options)
    n_channels = len(journeys.channels)
    if journeys.n_touchpoints == 0:
        return np.zeros((journeys.n_journeys, n_channels))
    if method in RULES:
        return rule_credit(journeys.offsets, journeys.channel, journeys.timestamp,
                           journeys.converted, n_channels, method,
                           float(options.get("half_life_hours", 168.0)))
    if method in ("markov", "markov-per-journey"):
        effects = markov_removal_effects(journeys, int(options.get("order", 1)))
        if method == "markov-per-journey":
            return weighted_presence(journeys.offsets, journeys.channel, journeys.converted,
                                     effects)
        out = np.zeros((journeys.n_journeys, n_channels))
        out[journeys.converted & (journeys.lengths() > 0)] = markov_shares(effects)
        return out
    return _shapley_credit(journeys)


def credit_totals(journeys: Journeys, method: str, weight: np.ndarray | None = None,
                  **options: Any) -> Totals:
    """Credited conversions and revenue of each channel by ``method``.

    ``weight`` counts journey j ``weight[j]`` times (None: once each).

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 500, seed=1)
    >>> t = credit_totals(j, "markov")
    >>> round(float(t.conversions.sum())) == int(j.converted.sum())
    True
    >>> bool(np.isclose(t.revenue.sum(), j.value.sum()))
    True
    """
    return totals_for_weights(journeys, method, **options)(weight)


def totals_for_weights(journeys: Journeys, method: str, **options: Any
                       ) -> Callable[[np.ndarray | None], Totals]:
    """A function from journey weights to ``Totals``; what does not depend on the
    weights (touch paths, rule credit, chain transitions) is computed once.

    >>> from attribid.models.simulation.simulate import simulate, WORLDS
    >>> j, _ = simulate(WORLDS["balanced"], 500, seed=1)
    >>> totals = totals_for_weights(j, "shapley")
    >>> twice = totals(np.full(j.n_journeys, 2.0))
    >>> bool(np.allclose(twice.conversions, 2 * totals(None).conversions))
    True
    """
    _check(method, options)
    n_channels = len(journeys.channels)
    counted = journeys.converted & (journeys.lengths() > 0)

    def weights(weight: np.ndarray | None) -> np.ndarray:
        w = np.ones(journeys.n_journeys) if weight is None else np.asarray(weight, np.float64)
        if w.shape != (journeys.n_journeys,):
            raise ValueError(f"weight must have shape ({journeys.n_journeys},), got {w.shape}")
        return w

    def from_rows(rows: np.ndarray, w: np.ndarray) -> Totals:
        wc = w * counted
        return Totals(wc @ rows, (wc * journeys.value) @ rows)

    if journeys.n_touchpoints == 0 or method in RULES:
        rows = attribute_journeys(journeys, method, **options)
        return lambda weight: from_rows(rows, weights(weight))
    if method in ("markov", "markov-per-journey"):
        chain = MarkovChain(journeys, int(options.get("order", 1)))

        def markov(weight: np.ndarray | None) -> Totals:
            w = weights(weight)
            effects = chain.removal_effects(w)
            if method == "markov-per-journey":
                return from_rows(weighted_presence(journeys.offsets, journeys.channel,
                                                   journeys.converted, effects.conversion), w)
            wc = w * counted
            return Totals(wc.sum() * markov_shares(effects.conversion),
                          (wc * journeys.value).sum() * markov_shares(effects.value))
        return markov
    masks = journey_masks(journeys)
    sets, inverse = np.unique(masks[counted], return_inverse=True)
    inverse = inverse.ravel()

    def shapley(weight: np.ndarray | None) -> Totals:
        w = weights(weight)
        shares = set_shares(sets, _set_values(masks, journeys.converted, w, n_channels),
                             n_channels)
        per_set = np.bincount(inverse, weights=w[counted], minlength=sets.shape[0])
        per_set_value = np.bincount(inverse, weights=(w * journeys.value)[counted],
                                    minlength=sets.shape[0])
        return Totals(per_set @ shares, per_set_value @ shares)
    return shapley
