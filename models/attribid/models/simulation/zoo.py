"""A zoo of simulated worlds: several functional forms of the true conversion probability,
each world's parameters drawn from a seed, the true channel credit exact.

API
---
``zoo_world("zoo:FORM:SEED") -> ZooWorld``   drawn (zoo_world.draw_world) and calibrated
``simulate_zoo(world, n_journeys, seed) -> (Journeys, Truth)``   as simulate.simulate
``channel_effects(world, journeys, reference_time) -> (effect [J, C], present [J, C])``
``journey_baseline(world, journeys, intent) -> [J]``
(attribid.models.simulation.zoo_reference has v(S) written out plainly, for the tests)
``named_world(name) -> World | ZooWorld``    a project world (simulate.WORLDS) or a zoo one
``simulate_any(world, n_journeys, seed)``    simulate.simulate or simulate_zoo, by world
``world_summary(world) -> dict``             the world's parameters, JSON-ready

The journeys
------------
Channels follow a random walk (a sticky Markov chain); journeys have up to 64 touches; the
harvesting channels (``world.harvest``) rarely occur inside the walk but close a share of
journeys (``harvest_rate``, raised by the journey's intent as ``intent ** harvest_intent``)
with a visible click, while their effect is small: last-touch methods overrate them.
Each journey has a latent intent (lognormal, mean 1) that multiplies its organic baseline.

The truth
---------
The players are the channels the journey touched; the value of a set S of them is the true
conversion probability of the journey keeping only the touches of channels in S, at its
decision time (``truth.reference_time``), intent fixed (zoo_game describes v). Each touch
i brings a dose ``g_i = m_i * d_i`` (m = 1 for a click, the channel's impression weight
otherwise; d = floor + (1 - floor) 2 ** (-age / half_life[channel])); a channel's dose x_c
is the sum of its touches' and its effect ``e_c = scale * effect[c] * f(x_c)``, with f(x) =
x except in the diminishing form, where f(x) = s (1 - exp(-x / s)) exp(-fatigue *
max(n_c - fatigue_after, 0)) (n_c: the channel's touches). The threshold form keeps
``scale`` out of e_c and uses it as its lift p_hi (zoo_game). ``truth.shapley`` holds the exact
Shapley values (enumeration over the 2**k subsets, k <= 16), ``truth.removal``
v(all) - v(all but c), ``truth.touch_shapley`` each channel's value split over its touches
in proportion to their doses (an apportionment: the players are channels, not touches).
``scale`` is set once per world so that the mean of v(all) over a pilot sample is the
world's ``conversion_rate``.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Any

import numpy as np

from attribid.kernels.taxonomy import CLICK, IMPRESSION, PRODUCT_CATEGORIES
from attribid.models.data.journeys import Journeys
from attribid.models.simulation.simulate import (
    CATEGORY_BASE, CATEGORY_PRICE, CATEGORY_SHARE, DEVICE_FACTOR, DEVICE_SHARE, EPOCH0, WORLDS,
    Truth, World, after_conversion_touches, csr_offsets, channel_walk, simulate,
)
from attribid.models.simulation.zoo_game import channel_game
from attribid.models.simulation.zoo_world import (
    MAX_TOUCHES, ZooWorld, draw_world, split_name, with_scale,
)

_HOUR = 3600.0
#: journeys of the pilot sample that calibrates a world's scale
PILOT_JOURNEYS = 20_000
#: organic baseline per category, relative (mean 1 over the category mix)
_CATEGORY_FACTOR = CATEGORY_BASE / float(CATEGORY_BASE @ CATEGORY_SHARE)


def _journey_layout(world: ZooWorld, rng: np.random.Generator, n: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channels [N] and offsets [J + 1] of the walk plus harvesting closers; intent [J]."""
    sigma = world.intent_sigma
    intent = rng.lognormal(-0.5 * sigma**2, sigma, size=n)
    r = 1.5   # negative binomial shape: mean touches = 1 + r (1 - p) / p
    p = r / (r + world.mean_length - 1.0)
    walk_len = np.minimum(1 + rng.negative_binomial(r, p, size=n), MAX_TOUCHES - 1)
    offsets = csr_offsets(walk_len)
    channel = np.empty(int(offsets[-1]), dtype=np.int32)
    channel_walk(offsets, rng.random(n), rng.random(channel.shape[0]), np.cumsum(world.start),
          np.cumsum(world.transitions, axis=1), channel)
    closes = rng.random(n) < np.minimum(1.0, world.harvest_rate * intent**world.harvest_intent)
    closer = rng.choice(np.array(world.harvest, np.int32), size=int(closes.sum()))
    channel = np.insert(channel, offsets[1:][closes], closer).astype(np.int32)
    return channel, csr_offsets(walk_len + closes), intent


def _journeys(world: ZooWorld, rng: np.random.Generator, n: int
              ) -> tuple[Journeys, np.ndarray, np.ndarray]:
    """The journeys (outcomes not drawn yet), their decision times and intents."""
    channel, offsets, intent = _journey_layout(world, rng, n)
    lengths = np.diff(offsets)
    n_touch = channel.shape[0]
    interaction = np.where(rng.random(n_touch) < world.click_rate[channel], CLICK,
                           IMPRESSION).astype(np.int8)
    device = np.repeat(rng.choice(np.arange(1, 4), size=n, p=DEVICE_SHARE), lengths)
    switch = np.asarray(rng.random(n_touch) < 0.15)
    device[switch] = rng.integers(1, 4, size=int(switch.sum()))
    cost = np.round(np.where(interaction == CLICK, 0.8, 0.004)
                    * rng.lognormal(0.0, 0.4, size=n_touch), 4)
    gaps = np.clip(rng.lognormal(np.log(8 * _HOUR), 1.3, size=n_touch), 60.0, 14 * 24 * _HOUR)
    gaps[offsets[:-1]] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[offsets[:-1]], lengths)
    start = EPOCH0 + np.round(rng.uniform(0.0, 28 * 24 * _HOUR, size=n))
    timestamp = np.round(np.repeat(start, lengths) + elapsed)
    reference = timestamp[offsets[1:] - 1] + np.round(rng.exponential(2 * _HOUR, size=n)) + 1.0
    category = rng.choice(len(PRODUCT_CATEGORIES), size=n, p=CATEGORY_SHARE).astype(np.int32)
    journeys = Journeys(
        ids=np.array([f"j{k:07d}" for k in range(n)], dtype=object), offsets=offsets,
        channel=channel, timestamp=timestamp, interaction=interaction, cost=cost,
        device=device.astype(np.int8), category=category, converted=np.zeros(n, dtype=bool),
        conversion_time=np.full(n, np.nan), value=np.zeros(n), channels=world.channels)
    return journeys, reference, intent


def touch_doses(world: ZooWorld, journeys: Journeys, reference_time: np.ndarray) -> np.ndarray:
    """Each touch's dose g_i = m_i * d_i at its journey's decision time: float64 [N]."""
    row = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    age_h = np.maximum(reference_time[row] - journeys.timestamp, 0.0) / _HOUR
    floor = world.decay_floor
    decay = floor + (1.0 - floor) * np.exp2(-age_h / world.half_life_hours[journeys.channel])
    weight = np.where(journeys.interaction == CLICK, 1.0,
                      world.impression_weight[journeys.channel])
    return np.asarray(weight * decay, dtype=np.float64)


def channel_effects(world: ZooWorld, journeys: Journeys,
                    reference_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's effect e_c in each journey [J, C], and which channels are present."""
    n_channels = len(world.channels)
    row = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    dose = np.zeros((journeys.n_journeys, n_channels))
    count = np.zeros((journeys.n_journeys, n_channels))
    np.add.at(dose, (row, journeys.channel), touch_doses(world, journeys, reference_time))
    np.add.at(count, (row, journeys.channel), 1.0)
    if world.form == "diminishing":
        s = world.saturation
        tired = np.maximum(count - world.fatigue_after, 0.0)
        dose = s * (1.0 - np.exp(-dose / s)) * np.exp(-world.fatigue * tired)
    scale = 1.0 if world.form == "threshold" else world.scale
    return scale * world.effect[None, :] * dose, count > 0


def journey_baseline(world: ZooWorld, journeys: Journeys, intent: np.ndarray) -> np.ndarray:
    """The organic baseline b_j (v of the empty set): float64 [J] in (0, 0.5]."""
    last = journeys.offsets[1:] - 1
    factor = _CATEGORY_FACTOR[journeys.category] * DEVICE_FACTOR[journeys.device[last]]
    b0 = world.organic_share * world.conversion_rate
    return np.clip(b0 * factor * intent, 1e-6, 0.5)


def _game_args(world: ZooWorld) -> dict[str, float]:
    p_hi = world.scale if world.form == "threshold" else 1.0
    return {"p_max": world.p_max if world.form in ("additive", "negative") else 1.0,
            "threshold": world.threshold, "steepness": world.steepness, "p_hi": p_hi}


def _calibrated(world: ZooWorld) -> ZooWorld:
    """``world`` with the scale whose pilot mean of v(all) is its conversion rate."""
    rng = np.random.default_rng([world.seed, 7919])
    journeys, reference, intent = _journeys(world, rng, PILOT_JOURNEYS)
    base = journey_baseline(world, journeys, intent)

    def mean_p(scale: float) -> float:
        w = with_scale(world, scale)
        effect, present = channel_effects(w, journeys, reference)
        _, _, p = channel_game(effect, present, base, w.form, w.pairs, w.pair_coef, w.triples,
                               w.triple_coef, **_game_args(w))
        return float(p.mean())

    if world.form == "threshold":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = math.log(1e-4), math.log(1e3)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        value = mid if world.form == "threshold" else math.exp(mid)
        if mean_p(value) < world.conversion_rate:
            lo = mid
        else:
            hi = mid
    mid = 0.5 * (lo + hi)
    return with_scale(world, mid if world.form == "threshold" else math.exp(mid))


@lru_cache(maxsize=64)
def zoo_world(name: str) -> ZooWorld:
    """The zoo world named ``zoo:FORM:SEED``, drawn and calibrated (cached per name).

    >>> w = zoo_world("zoo:noisy-or:7")
    >>> w.name, w.form, w.scale > 0
    ('zoo:noisy-or:7', 'noisy-or', True)
    """
    form, seed = split_name(name)
    return _calibrated(draw_world(form, seed))


def simulate_zoo(world: ZooWorld, n_journeys: int, seed: int) -> tuple[Journeys, Truth]:
    """Draw ``n_journeys`` journeys of ``world``; the same seed gives the same data.

    >>> js, truth = simulate_zoo(zoo_world("zoo:logistic:1"), 500, seed=3)
    >>> js.n_journeys, bool(np.allclose(truth.shapley.sum(1), truth.p_true - truth.p_base))
    (500, True)
    """
    if n_journeys < 1:
        raise ValueError(f"n_journeys must be >= 1, got {n_journeys}")
    rng = np.random.default_rng(seed)
    journeys, reference, intent = _journeys(world, rng, int(n_journeys))
    base = journey_baseline(world, journeys, intent)
    effect, present = channel_effects(world, journeys, reference)
    shapley, removal, p = channel_game(effect, present, base, world.form, world.pairs,
                                       world.pair_coef, world.triples, world.triple_coef,
                                       **_game_args(world))
    converted = rng.random(journeys.n_journeys) < p
    value = np.where(converted, np.round(CATEGORY_PRICE[journeys.category]
                                         * rng.lognormal(0.0, 0.25, size=converted.shape[0]),
                                         2), 0.0)
    journeys = Journeys(
        ids=journeys.ids, offsets=journeys.offsets, channel=journeys.channel,
        timestamp=journeys.timestamp, interaction=journeys.interaction, cost=journeys.cost,
        device=journeys.device, category=journeys.category, converted=converted,
        conversion_time=np.where(converted, reference, np.nan), value=value,
        channels=world.channels)
    truth = Truth(shapley=shapley, removal=removal, p_true=p, p_base=base,
                  reference_time=reference,
                  touch_shapley=_touch_split(world, journeys, reference, shapley),
                  after_conversion=after_conversion_touches(rng, journeys), world=world)
    return journeys, truth


def _touch_split(world: ZooWorld, journeys: Journeys, reference: np.ndarray,
                 shapley: np.ndarray) -> np.ndarray:
    """Each channel's Shapley value split over its touches by dose: float64 [N]."""
    row = np.repeat(np.arange(journeys.n_journeys), journeys.lengths())
    dose = touch_doses(world, journeys, reference)
    total = np.zeros(shapley.shape)
    np.add.at(total, (row, journeys.channel), dose)
    return np.asarray(shapley[row, journeys.channel] * dose / total[row, journeys.channel])


def named_world(name: str) -> World | ZooWorld:
    """A world by name: one of simulate.WORLDS, or ``zoo:FORM:SEED``.

    >>> named_world("recency").name, named_world("zoo:additive:4").name
    ('recency', 'zoo:additive:4')
    """
    if name in WORLDS:
        return WORLDS[name]
    if name.startswith("zoo:"):
        return zoo_world(name)
    raise ValueError(f"unknown world {name!r}: one of {', '.join(WORLDS)}, or zoo:FORM:SEED")


def simulate_any(world: World | ZooWorld, n_journeys: int, seed: int
                 ) -> tuple[Journeys, Truth]:
    """``simulate_zoo`` for a zoo world, ``simulate.simulate`` for the others."""
    if isinstance(world, ZooWorld):
        return simulate_zoo(world, n_journeys, seed)
    return simulate(world, n_journeys, seed)


def world_summary(world: World | ZooWorld) -> dict[str, Any]:
    """The world's parameters as JSON-ready values.

    >>> world_summary(named_world("recency"))["name"]
    'recency'
    >>> world_summary(zoo_world("zoo:negative:1"))["form"]
    'negative'
    """
    return world.summary() if isinstance(world, ZooWorld) else dataclasses.asdict(world)
