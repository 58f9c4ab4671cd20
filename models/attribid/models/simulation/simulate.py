"""Simulated journeys whose true channel credit is known exactly.

API
---
``WORLDS[name] -> World``              frozen knobs: recency, synergy, impression weight, ...
``simulate(world, n_journeys, seed) -> (Journeys, Truth)``
``Truth``                              per journey: ``shapley`` [J, C], ``removal`` [J, C],
                                       ``p_true`` [J], ``p_base`` [J], ``reference_time`` [J];
                                       per touch: ``touch_shapley`` [N]; ``after_conversion``:
                                       the touches a converter had after converting (dropped)
``subset_probability(world, journeys, truth, j, keep) -> float``  v(S) for any subset
``touch_terms(world, journeys, reference_time) -> (a [N], g [N], b [J])``  the terms of v
``true_channel_shares(journeys, truth) -> [C]``   ground-truth credit shares
``attribution_accuracy(pred_shares, true_shares) -> float``  1 - total variation
``journey_accuracy(pred [J, C], truth, converted) -> float``  mean per-journey 1 - TV

The true model
--------------
For journey j with touches S observed up to its decision time ``t_d``
(``truth.reference_time``: the conversion time of a converter, the end of the
observation window otherwise; the same distribution for both, so it does not
reveal the outcome), the conversion probability of any subset S is

    v(S) = b_j + sum_{i in S} a_i + sum_{i<k in S, c_i != c_k} Syn[c_i, c_k] * sqrt(g_i g_k)

    g_i = m(interaction_i) * d_i            m(click) = 1, m(impression) = world.impression_weight
    d_i = floor + (1 - floor) * 2 ** (-(t_d - t_i) / half_life)      (time decay)
    a_i = w[c_i] * g_i                     (channel effect)
    b_j = base[category] * factor[device of the last touch]   (organic baseline, v(empty))

All terms are >= 0, so v grows with S; a journey whose v(all) would exceed
``world.p_max`` loses its oldest touches until it does not, so 0 <= v <= p_max
for every subset by construction. The outcome is Bernoulli(v(all)). Shapley
values are closed form (kernels/shapley.py): phi_i = a_i + 1/2 sum_k s_ik; a
channel's removal effect v(all) - v(all but its touches) sums every term that
involves one of its touches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from attribid.kernels.config import jit_nogil
from attribid.models.data.journeys import Journeys
from attribid.kernels.shapley import oldest_to_drop, pairwise_game
from attribid.kernels.taxonomy import (
    CLICK, DEFAULT_CHANNELS, IMPRESSION, PRODUCT_CATEGORIES,
)

if TYPE_CHECKING:
    from attribid.models.simulation.zoo_world import ZooWorld

CHANNELS = DEFAULT_CHANNELS
_C = len(CHANNELS)
_HOUR = 3600.0
#: 2026-01-05 00:00 UTC: journeys start within the four weeks after it
EPOCH0 = 1767571200.0
MAX_TOUCHES = 30

#: channel effect per click (search, display, social, email, affiliate, direct, offline);
#: direct visits mostly follow earlier marketing, so their own effect is small
CHANNEL_EFFECT = np.array([0.045, 0.040, 0.038, 0.040, 0.030, 0.015, 0.045])
#: P(click) per channel; the rest are impressions
CLICK_RATE = np.array([0.75, 0.08, 0.30, 0.45, 0.60, 1.00, 0.00])
#: cost per click and per thousand impressions, per channel
CPC = np.array([1.20, 0.60, 0.80, 0.05, 0.90, 0.00, 0.00])
CPM = np.array([0.00, 4.00, 6.00, 0.50, 2.00, 0.00, 12.0])
#: where journeys start, and channel -> next channel (rows sum to 1): a funnel
#: from awareness channels (display, social, offline) towards search and direct
START = np.array([0.14, 0.30, 0.24, 0.10, 0.06, 0.04, 0.12])
TRANSITIONS = np.array([
    # search display social email affiliate direct offline
    [0.35, 0.06, 0.05, 0.08, 0.08, 0.34, 0.04],   # from search
    [0.30, 0.30, 0.12, 0.06, 0.06, 0.12, 0.04],   # from display
    [0.26, 0.10, 0.34, 0.10, 0.05, 0.12, 0.03],   # from social
    [0.14, 0.04, 0.06, 0.34, 0.04, 0.36, 0.02],   # from email
    [0.30, 0.06, 0.06, 0.06, 0.30, 0.20, 0.02],   # from affiliate
    [0.22, 0.06, 0.06, 0.16, 0.04, 0.44, 0.02],   # from direct
    [0.34, 0.14, 0.10, 0.04, 0.02, 0.16, 0.20],   # from offline
])
#: synergy between an earlier channel (row) and a later one (column)
SYNERGY = np.zeros((_C, _C))
for (_a, _b), _s in {("display", "search"): 0.040, ("social", "search"): 0.030,
                     ("offline", "search"): 0.030, ("display", "direct"): 0.025,
                     ("email", "direct"): 0.030, ("social", "email"): 0.020,
                     ("display", "social"): 0.020, ("affiliate", "search"): 0.015}.items():
    SYNERGY[CHANNELS.index(_a), CHANNELS.index(_b)] = _s
#: organic conversion rate and average order value per product category
CATEGORY_SHARE = np.array([0.18, 0.14, 0.12, 0.20, 0.10, 0.14, 0.12])
CATEGORY_BASE = np.array([0.030, 0.025, 0.040, 0.028, 0.020, 0.038, 0.018])
CATEGORY_PRICE = np.array([85.0, 70.0, 40.0, 110.0, 130.0, 45.0, 150.0])
#: device codes 1..3 (desktop, mobile, tablet): share and baseline factor
DEVICE_SHARE = np.array([0.45, 0.45, 0.10])
DEVICE_FACTOR = np.array([1.0, 1.25, 0.80, 1.0])   # index = device code; 0 unused


@dataclass(frozen=True)
class World:
    """The knobs of one simulated market."""

    #: name used on the command line
    name: str
    #: hours for a touch's effect to halve
    half_life_hours: float
    #: share of a touch's effect that never decays
    decay_floor: float
    #: effect of an impression relative to a click of the same channel
    impression_weight: float
    #: multiplier on the SYNERGY matrix
    synergy: float
    #: multiplier on CHANNEL_EFFECT
    effect_scale: float = 1.0
    #: multiplier on the organic baseline
    base_scale: float = 1.0
    #: no journey's conversion probability exceeds this
    p_max: float = 0.95
    #: one line on what makes the world different
    description: str = ""

    def __post_init__(self) -> None:
        if self.half_life_hours <= 0:
            raise ValueError("half_life_hours must be > 0")
        if not 0.0 <= self.decay_floor <= 1.0:
            raise ValueError("decay_floor must be in [0, 1]")
        for name in ("impression_weight", "synergy", "effect_scale", "base_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0.0 < self.p_max <= 1.0:
            raise ValueError("p_max must be in (0, 1]")


WORLDS: dict[str, World] = {w.name: w for w in (
    World("recency", half_life_hours=6.0, decay_floor=0.02, impression_weight=0.25,
          synergy=0.3, effect_scale=1.6,
          description="recent touches dominate; little synergy; clicks matter"),
    World("synergy", half_life_hours=120.0, decay_floor=0.3, impression_weight=0.3,
          synergy=3.0, effect_scale=0.6,
          description="slow decay; channel pairs (display->search, email->direct) drive conversions"),
    World("impressions", half_life_hours=48.0, decay_floor=0.1, impression_weight=0.9,
          synergy=0.8,
          description="impressions count nearly as much as clicks: display and offline gain"),
    World("balanced", half_life_hours=36.0, decay_floor=0.1, impression_weight=0.45,
          synergy=1.0,
          description="moderate recency, synergy and impression weight"),
)}


@dataclass(frozen=True)
class Truth:
    """What the simulator knows about each journey (rows align with the Journeys)."""

    #: float64 [J, C]; Shapley values of v over the touches, summed per channel
    shapley: np.ndarray
    #: float64 [J, C]; v(all) - v(all but the channel's touches)
    removal: np.ndarray
    #: float64 [J]; v(all), the probability the outcome was drawn from
    p_true: np.ndarray
    #: float64 [J]; v(empty set), the organic baseline
    p_base: np.ndarray
    #: float64 [J]; decision time: the conversion time, else the end of observation
    reference_time: np.ndarray
    #: float64 [N]; each touch's Shapley value
    touch_shapley: np.ndarray
    #: touches converters had after converting (not part of the journeys)
    after_conversion: Journeys = field(repr=False)
    #: the world simulated (a zoo world: attribid.models.simulation.zoo)
    world: World | ZooWorld = field(repr=False)


@jit_nogil
def channel_walk(offsets, u_start, u_step, start_cdf, trans_cdf, out):
    # channel sequence of each journey: a Markov chain on the pre-drawn uniforms (the zoo
    # walks its own chains with it too)
    for j in range(offsets.shape[0] - 1):
        prev = -1
        for i in range(offsets[j], offsets[j + 1]):
            if prev < 0:
                c = np.searchsorted(start_cdf, u_start[j], side="right")
            else:
                c = np.searchsorted(trans_cdf[prev], u_step[i], side="right")
            c = min(c, start_cdf.shape[0] - 1)
            out[i] = c
            prev = c


def csr_offsets(lengths: np.ndarray) -> np.ndarray:
    """Offsets [J + 1] of journeys of ``lengths`` laid end to end.

    >>> csr_offsets(np.array([2, 0, 3])).tolist()
    [0, 2, 2, 5]
    """
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def touch_terms(world: World, journeys: Journeys,
                reference_time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-touch effect ``a`` [N], synergy strength ``g`` [N] and baseline ``b`` [J].

    >>> j, t = simulate(WORLDS["balanced"], 5, seed=1)
    >>> a, g, b = touch_terms(t.world, j, t.reference_time)
    >>> bool(np.all(a >= 0) and np.all(b > 0))
    True
    """
    row_journey = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    age_h = np.maximum(reference_time[row_journey] - journeys.timestamp, 0.0) / _HOUR
    decay = world.decay_floor + (1.0 - world.decay_floor) * np.exp2(-age_h / world.half_life_hours)
    weight = np.where(journeys.interaction == CLICK, 1.0, world.impression_weight)
    strength = weight * decay
    effect = world.effect_scale * CHANNEL_EFFECT[journeys.channel] * strength
    last = np.maximum(journeys.offsets[1:] - 1, 0)
    device = journeys.device[last] if journeys.n_touchpoints else np.zeros(0, np.int8)
    cat = np.minimum(journeys.category, len(PRODUCT_CATEGORIES) - 1)
    base = world.base_scale * CATEGORY_BASE[cat] * DEVICE_FACTOR[device]
    return effect, strength, base


def subset_probability(world: World, journeys: Journeys, truth: Truth, j: int,
                       keep: np.ndarray) -> float:
    """v(S): the true conversion probability of journey ``j`` keeping touches ``keep``.

    ``keep`` is a bool mask over the journey's touches (oldest first). A plain
    reference implementation, independent of the closed-form kernel.

    >>> js, t = simulate(WORLDS["synergy"], 3, seed=2)
    >>> n = int(js.lengths()[0])
    >>> bool(np.isclose(subset_probability(t.world, js, t, 0, np.ones(n, bool)), t.p_true[0]))
    True
    """
    a, g, b = touch_terms(world, journeys, truth.reference_time)
    lo, hi = int(journeys.offsets[j]), int(journeys.offsets[j + 1])
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (hi - lo,):
        raise ValueError(f"keep must have shape ({hi - lo},), got {keep.shape}")
    syn = world.synergy * SYNERGY
    idx = [lo + k for k in range(hi - lo) if keep[k]]
    total = float(b[j]) + float(sum(a[i] for i in idx))
    for x, i in enumerate(idx):
        for k in idx[x + 1:]:
            ci, ck = journeys.channel[i], journeys.channel[k]
            if ci != ck:
                total += syn[ci, ck] * float(np.sqrt(g[i] * g[k]))
    return total


def _with_rows(journeys: Journeys, keep: np.ndarray) -> Journeys:
    """The journeys with only the touch rows in ``keep`` (a bool mask over rows)."""
    row_journey = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    lengths = np.bincount(row_journey[keep], minlength=journeys.n_journeys)
    return Journeys(
        ids=journeys.ids, offsets=csr_offsets(lengths), channel=journeys.channel[keep],
        timestamp=journeys.timestamp[keep], interaction=journeys.interaction[keep],
        cost=journeys.cost[keep], device=journeys.device[keep], category=journeys.category,
        converted=journeys.converted, conversion_time=journeys.conversion_time,
        value=journeys.value, channels=journeys.channels)


def _touches(rng: np.random.Generator, offsets: np.ndarray, channel: np.ndarray,
             primary_device: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interaction, device and cost of each touch."""
    n = channel.shape[0]
    interaction = np.where(rng.random(n) < CLICK_RATE[channel], CLICK, IMPRESSION).astype(np.int8)
    device = np.repeat(primary_device, np.diff(offsets)).astype(np.int8)
    switch = np.asarray(rng.random(n) < 0.15)
    device[switch] = rng.integers(1, 4, size=int(switch.sum()), dtype=np.int8)
    noise = rng.lognormal(0.0, 0.3, size=n)
    cost = np.where(interaction == CLICK, CPC[channel], CPM[channel] / 1000.0) * noise
    return interaction, device, np.round(cost, 4)


def after_conversion_touches(rng: np.random.Generator, journeys: Journeys) -> Journeys:
    """Post-purchase touches (receipt emails, retargeting) of some converters."""
    count = np.where(journeys.converted & (rng.random(journeys.n_journeys) < 0.25),
                     rng.integers(1, 3, size=journeys.n_journeys), 0)
    offsets = csr_offsets(count)
    n = int(offsets[-1])
    owner = np.repeat(np.arange(journeys.n_journeys), count)
    channel = np.where(rng.random(n) < 0.6, CHANNELS.index("email"),
                       CHANNELS.index("display")).astype(np.int32)
    gaps = rng.lognormal(np.log(12 * _HOUR), 1.0, size=n)
    timestamp = journeys.conversion_time[owner] + np.round(np.maximum(gaps, 1.0))
    primary = np.ones(journeys.n_journeys, dtype=np.int8)
    interaction, device, cost = _touches(rng, offsets, channel, primary)
    return Journeys(
        ids=journeys.ids, offsets=offsets, channel=channel, timestamp=timestamp,
        interaction=interaction, cost=cost, device=device, category=journeys.category,
        converted=journeys.converted, conversion_time=journeys.conversion_time,
        value=journeys.value, channels=journeys.channels)


def simulate(world: World, n_journeys: int, seed: int) -> tuple[Journeys, Truth]:
    """Draw ``n_journeys`` journeys from ``world``; the same seed gives the same data.

    >>> journeys, truth = simulate(WORLDS["recency"], 1000, seed=7)
    >>> journeys.n_journeys, truth.shapley.shape
    (1000, (1000, 7))
    >>> bool(np.allclose(truth.shapley.sum(1), truth.p_true - truth.p_base))
    True
    """
    if n_journeys < 1:
        raise ValueError(f"n_journeys must be >= 1, got {n_journeys}")
    rng = np.random.default_rng(seed)
    J = int(n_journeys)
    lengths = np.minimum(1 + rng.negative_binomial(2, 0.4, size=J), MAX_TOUCHES)
    offsets = csr_offsets(lengths)
    n = int(offsets[-1])
    channel = np.empty(n, dtype=np.int32)
    channel_walk(offsets, rng.random(J), rng.random(n), np.cumsum(START),
          np.cumsum(TRANSITIONS, axis=1), channel)
    primary = rng.choice(np.arange(1, 4), size=J, p=DEVICE_SHARE)
    interaction, device, cost = _touches(rng, offsets, channel, primary)
    category = rng.choice(len(PRODUCT_CATEGORIES), size=J, p=CATEGORY_SHARE).astype(np.int32)
    # time since the journey's first touch: cumulative gaps, restarted per journey
    gaps = np.clip(rng.lognormal(np.log(8 * _HOUR), 1.3, size=n), 60.0, 14 * 24 * _HOUR)
    gaps[offsets[:-1][lengths > 0]] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[offsets[:-1]], lengths)
    start = EPOCH0 + np.round(rng.uniform(0.0, 28 * 24 * _HOUR, size=J))
    timestamp = np.round(np.repeat(start, lengths) + elapsed)
    last_time = timestamp[offsets[1:] - 1]
    reference = last_time + np.round(rng.exponential(2 * _HOUR, size=J)) + 1.0
    journeys = Journeys(
        ids=np.array([f"j{k:07d}" for k in range(J)], dtype=object), offsets=offsets,
        channel=channel, timestamp=timestamp, interaction=interaction, cost=cost,
        device=device, category=category, converted=np.zeros(J, dtype=bool),
        conversion_time=np.full(J, np.nan), value=np.zeros(J), channels=CHANNELS)
    syn = world.synergy * SYNERGY
    effect, strength, base = touch_terms(world, journeys, reference)
    # saturated journeys lose their oldest touches until v(all) <= p_max
    drop = oldest_to_drop(journeys.offsets, journeys.channel, effect, strength, syn, base,
                          world.p_max)
    if drop.any():
        first_kept = np.repeat(journeys.offsets[:-1] + drop, journeys.lengths())
        keep = np.arange(journeys.n_touchpoints) >= first_kept
        journeys = _with_rows(journeys, keep)
        effect, strength, base = effect[keep], strength[keep], base
    phi, shapley, removal, p = pairwise_game(
        journeys.offsets, journeys.channel, effect, strength, syn, base, _C)
    converted = rng.random(J) < p
    value = np.where(converted, np.round(
        CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.25, size=J), 2), 0.0)
    journeys = Journeys(
        ids=journeys.ids, offsets=journeys.offsets, channel=journeys.channel,
        timestamp=journeys.timestamp, interaction=journeys.interaction, cost=journeys.cost,
        device=journeys.device, category=category, converted=converted,
        conversion_time=np.where(converted, reference, np.nan), value=value,
        channels=CHANNELS)
    truth = Truth(shapley=shapley, removal=removal, p_true=p, p_base=base,
                  reference_time=reference, touch_shapley=phi,
                  after_conversion=after_conversion_touches(rng, journeys), world=world)
    return journeys, truth


def _row_shares(x: np.ndarray) -> np.ndarray:
    total = x.sum(axis=1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x, dtype=np.float64), where=total > 0)


def true_channel_shares(journeys: Journeys, truth: Truth) -> np.ndarray:
    """Ground-truth credit shares over channels, float64 [C] summing to 1.

    Each converting journey j carries one conversion, split over channels in
    proportion to ``truth.shapley[j]`` (its channels' Shapley values of v, the
    organic baseline v(empty) excluded); the shares are those splits summed
    over converting journeys, divided by the number of converting journeys.

    >>> j, t = simulate(WORLDS["balanced"], 2000, seed=3)
    >>> s = true_channel_shares(j, t)
    >>> s.shape, round(float(s.sum()), 9)
    ((7,), 1.0)
    """
    rows = _row_shares(np.maximum(truth.shapley[journeys.converted], 0.0))
    total = rows.sum(axis=0)
    return total / total.sum() if total.sum() > 0 else total


def _check_shares(name: str, x: np.ndarray, ndim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return x


def attribution_accuracy(pred_shares: np.ndarray, true_shares: np.ndarray) -> float:
    """1 - total variation distance between two channel share vectors (each normalised).

    >>> attribution_accuracy(np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5]))
    0.5
    """
    p = _check_shares("pred_shares", pred_shares, 1)
    q = _check_shares("true_shares", true_shares, 1)
    if p.shape != q.shape:
        raise ValueError(f"pred_shares {p.shape} and true_shares {q.shape} differ in shape")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("share vectors must have a positive sum")
    return float(1.0 - 0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def journey_accuracy(pred: np.ndarray, truth: Truth, converted_mask: np.ndarray) -> float:
    """Mean over converting journeys of 1 - TV(pred row shares, true row shares).

    Rows are normalised to sum to 1; an all-zero predicted row scores 0.5
    (its TV to any distribution is taken as 0.5: half the mass unexplained).

    >>> j, t = simulate(WORLDS["balanced"], 500, seed=4)
    >>> journey_accuracy(t.shapley, t, j.converted)
    1.0
    """
    pred = _check_shares("pred", pred, 2)
    mask = np.asarray(converted_mask, dtype=bool)
    if pred.shape != truth.shapley.shape:
        raise ValueError(f"pred must have shape {truth.shapley.shape}, got {pred.shape}")
    if mask.shape != (pred.shape[0],):
        raise ValueError(f"converted_mask must have shape ({pred.shape[0]},)")
    if not mask.any():
        raise ValueError("converted_mask selects no journey")
    p = _row_shares(pred[mask])
    q = _row_shares(np.maximum(truth.shapley[mask], 0.0))
    tv = 0.5 * np.abs(p - q).sum(axis=1)
    return float(np.mean(1.0 - tv))
