"""The zoo's v(S) written out plainly, touch by touch, independent of the compiled game
(attribid.models.simulation.zoo_game): the reference the tests check the truth against."""
from __future__ import annotations

import math

import numpy as np

from attribid.kernels.taxonomy import CLICK
from attribid.models.data.journeys import Journeys
from attribid.models.simulation.simulate import Truth
from attribid.models.simulation.zoo_world import ZooWorld

_HOUR = 3600.0


def subset_value(world: ZooWorld, journeys: Journeys, truth: Truth, j: int,
                 keep: set[int]) -> float:
    """v(S) for journey ``j`` keeping the touches of the channel codes in ``keep``.

    A plain reference, touch by touch, independent of the enumeration kernel.

    >>> from attribid.models.simulation.zoo import simulate_zoo, zoo_world
    >>> js, t = simulate_zoo(zoo_world("zoo:threshold:2"), 50, seed=1)
    >>> chans = set(js.channel[js.offsets[0]:js.offsets[1]].tolist())
    >>> bool(np.isclose(subset_value(t.world, js, t, 0, chans), t.p_true[0]))
    True
    """
    lo, hi = int(journeys.offsets[j]), int(journeys.offsets[j + 1])
    dose: dict[int, float] = {}
    count: dict[int, int] = {}
    for i in range(lo, hi):
        c = int(journeys.channel[i])
        if c not in keep:
            continue
        age = max(float(truth.reference_time[j] - journeys.timestamp[i]), 0.0) / _HOUR
        d = world.decay_floor + (1 - world.decay_floor) * 2 ** (-age / world.half_life_hours[c])
        m = 1.0 if journeys.interaction[i] == CLICK else float(world.impression_weight[c])
        dose[c] = dose.get(c, 0.0) + m * d
        count[c] = count.get(c, 0) + 1
    scale = 1.0 if world.form == "threshold" else world.scale
    e = {}
    for c, x in dose.items():
        if world.form == "diminishing":
            s = world.saturation
            x = s * (1 - math.exp(-x / s)) * math.exp(
                -world.fatigue * max(count[c] - world.fatigue_after, 0))
        e[c] = scale * float(world.effect[c]) * x
    z = sum(e.values())
    for (a, c), coef in zip(world.pairs.tolist(), world.pair_coef.tolist()):
        if a in e and c in e:
            z += coef * math.sqrt(e[a] * e[c])
    for (a, c, d), coef in zip(world.triples.tolist(), world.triple_coef.tolist()):
        if a in e and c in e and d in e:
            z += coef * (e[a] * e[c] * e[d]) ** (1 / 3)
    return _reference_link(world, float(truth.p_base[j]), z)


def _reference_link(world: ZooWorld, b: float, z: float) -> float:
    """The form's link, written out again in plain Python (zoo_game has the compiled one)."""
    if world.form == "additive":
        return min(b + z, world.p_max)
    if world.form in ("noisy-or", "diminishing"):
        return 1 - (1 - b) * math.exp(-z)
    if world.form == "logistic":
        return 1 / (1 + (1 - b) / b * math.exp(-z))
    if world.form == "threshold":
        k, t = world.steepness, world.threshold
        zero = 1 / (1 + math.exp(k * t))
        return b + (1 - b) * world.scale * (1 / (1 + math.exp(-k * (z - t))) - zero) / (1 - zero)
    return min(max(b + z, 0.0), world.p_max)
