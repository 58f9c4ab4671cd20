"""The parameters of one zoo world, every one drawn at random from the world's seed.

A zoo world is named ``zoo:FORM:SEED`` (``zoo:noisy-or:7``): the functional form of its true
conversion probability (``FORMS``, described in attribid.models.simulation.zoo) and the seed
that draws everything else. ``RANGES`` lists what is drawn and from where; the tests check
every drawn world against it.

API
---
``FORMS``                                  the functional forms, in the order worlds cycle
``draw_world(form, seed) -> ZooWorld``     every parameter from ``seed``
``parse_world(name) -> ZooWorld``          ``"zoo:FORM:SEED"`` -> the world
``ZooWorld.summary() -> dict``             the parameters as JSON-ready values
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from attribid.kernels.taxonomy import DEFAULT_CHANNELS

#: the functional forms of the true conversion probability
FORMS: tuple[str, ...] = ("additive", "noisy-or", "logistic", "threshold", "diminishing",
                          "negative")
#: the 16-channel taxonomy: the default seven and nine more
WIDE_CHANNELS: tuple[str, ...] = (*DEFAULT_CHANNELS, "paid_social", "video", "ctv", "podcast",
                                  "influencer", "sms", "push", "retargeting", "brand_search")
#: channels a world may make its harvesting channels (visible last touches, little effect)
HARVEST_CANDIDATES: dict[int, tuple[str, ...]] = {
    7: ("direct", "affiliate", "search"),
    16: ("brand_search", "retargeting", "direct", "affiliate"),
}
MAX_TOUCHES = 64
#: what each scalar parameter is drawn from: (low, high); log-uniform where marked
RANGES: dict[str, tuple[float, float]] = {
    "conversion_rate": (0.003, 0.10),     # log-uniform: the share of journeys that convert
    "organic_share": (0.15, 0.55),        # of the conversion rate, the no-touch baseline
    "mean_length": (1.5, 6.0),            # mean touches per journey before harvesting
    "stickiness": (0.3, 0.7),             # P(the next touch stays in the same channel)
    "decay_floor": (0.0, 0.2),
    "half_life_hours": (4.0, 240.0),      # log-uniform, per channel
    "impression_weight": (0.1, 0.9),      # per channel
    "click_rate": (0.05, 0.95),           # per channel
    "harvest_rate": (0.2, 0.6),           # P(a journey ends with a harvesting touch)
    "harvest_intent": (0.0, 0.5),         # how much intent raises that probability
    "harvest_effect": (0.02, 0.15),       # a harvesting channel's effect, relative
    "intent_sigma": (0.2, 0.8),           # lognormal spread of the baseline per journey
    "p_max": (0.6, 0.95),                 # additive and negative: the cap on v
    "threshold": (1.5, 4.0),              # threshold: touch-equivalents needed
    "steepness": (1.5, 4.0),              # threshold: how sharp the step is
    "saturation": (0.5, 2.0),             # diminishing: dose at which a channel saturates
    "fatigue": (0.05, 0.3),               # diminishing: loss per touch beyond fatigue_after
}
LOG_UNIFORM = {"conversion_rate", "half_life_hours"}
#: interaction coefficient ranges per form: (pairs low, high), (triples low, high)
INTERACTIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "additive": ((0.2, 1.0), (0.0, 0.0)),
    "noisy-or": ((0.2, 1.0), (0.0, 0.0)),
    "logistic": ((-0.5, 1.5), (0.5, 2.0)),
    "threshold": ((0.0, 0.0), (0.0, 0.0)),
    "diminishing": ((0.0, 0.5), (0.0, 0.0)),
    "negative": ((-1.2, -0.3), (0.0, 0.0)),
}


@dataclass(frozen=True, eq=False)
class ZooWorld:
    """One zoo world: its form and every drawn parameter (arrays are per channel)."""

    form: str
    seed: int
    channels: tuple[str, ...]
    conversion_rate: float
    organic_share: float
    mean_length: float
    decay_floor: float
    harvest_rate: float
    harvest_intent: float
    intent_sigma: float
    p_max: float
    threshold: float
    steepness: float
    saturation: float
    fatigue: float
    #: touches of one channel after which fatigue sets in (diminishing)
    fatigue_after: int
    #: [C] start of the channel walk; [C, C] next channel given this one
    start: np.ndarray = field(repr=False)
    transitions: np.ndarray = field(repr=False)
    click_rate: np.ndarray = field(repr=False)
    impression_weight: np.ndarray = field(repr=False)
    half_life_hours: np.ndarray = field(repr=False)
    #: [C] each channel's effect per unit of dose, before ``scale``
    effect: np.ndarray = field(repr=False)
    #: channel codes of the harvesting channels
    harvest: tuple[int, ...] = ()
    #: [P, 2] channel pairs and [P] coefficients; [T, 3] triples and [T] coefficients
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64), repr=False)
    pair_coef: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    triples: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64), repr=False)
    triple_coef: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    #: the effect multiplier (threshold: the lift p_hi) that meets ``conversion_rate``
    scale: float = 1.0

    @property
    def name(self) -> str:
        return f"zoo:{self.form}:{self.seed}"

    @property
    def description(self) -> str:
        return (f"{self.form}, {len(self.channels)} channels, conversion rate "
                f"{self.conversion_rate:.2%}, harvesting {', '.join(self.harvest_names)}")

    @property
    def harvest_names(self) -> tuple[str, ...]:
        return tuple(self.channels[c] for c in self.harvest)

    def summary(self) -> dict[str, Any]:
        """Every parameter as JSON-ready values (channel arrays keyed by channel name).

        >>> s = draw_world("logistic", 3).summary()
        >>> s["name"], s["form"], len(s["effect"]) in (7, 16)
        ('zoo:logistic:3', 'logistic', True)
        """
        out: dict[str, Any] = {"name": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("pairs", "triples"):
                value = [[self.channels[c] for c in row] for row in value.tolist()]
            elif f.name == "harvest":
                value = list(self.harvest_names)
            elif f.name == "transitions":
                value = np.round(value, 6).tolist()
            elif isinstance(value, np.ndarray) and value.shape == (len(self.channels),):
                value = dict(zip(self.channels, np.round(value, 6).tolist()))
            elif isinstance(value, np.ndarray):
                value = np.round(value, 6).tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _uniform(rng: np.random.Generator, name: str, size: int | None = None) -> Any:
    lo, hi = RANGES[name]
    if name in LOG_UNIFORM:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))
    return rng.uniform(lo, hi, size=size)


def _interactions(rng: np.random.Generator, form: str, n: int, harvest: tuple[int, ...]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random channel pairs and triples (harvesting channels take part in none)."""
    (p_lo, p_hi), (t_lo, t_hi) = INTERACTIONS[form]
    others = np.array([c for c in range(n) if c not in harvest])
    n_pairs = 0 if p_lo == p_hi == 0 else int(rng.integers(3, 7) if n == 7 else rng.integers(6, 13))
    n_triples = 0 if t_lo == t_hi == 0 else int(rng.integers(1, 4))
    seen: set[tuple[int, ...]] = set()
    pairs: list[tuple[int, ...]] = []
    triples: list[tuple[int, ...]] = []
    while len(pairs) < n_pairs:
        key = tuple(sorted(rng.choice(others, 2, replace=False).tolist()))
        if key not in seen:
            seen.add(key)
            pairs.append(key)
    while len(triples) < n_triples:
        key = tuple(sorted(rng.choice(others, 3, replace=False).tolist()))
        if key not in seen:
            seen.add(key)
            triples.append(key)
    pair_coef = rng.uniform(p_lo, p_hi, size=n_pairs)
    if form == "negative" and n_pairs:
        pair_coef[0] = rng.uniform(0.2, 0.8)   # one complementary pair among the cannibals
    return (np.array(pairs, np.int64).reshape(-1, 2), pair_coef,
            np.array(triples, np.int64).reshape(-1, 3), rng.uniform(t_lo, t_hi, n_triples))


def _transitions(rng: np.random.Generator, n: int, stickiness: float,
                 harvest: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A random channel walk; harvesting channels are rare inside it (they mostly close)."""
    rare = np.ones(n)
    rare[list(harvest)] = 0.15
    start = rng.dirichlet(np.ones(n)) * rare
    rows = rng.dirichlet(np.full(n, 0.6), size=n) * rare
    rows = (1.0 - stickiness) * rows / rows.sum(axis=1, keepdims=True) + stickiness * np.eye(n)
    return start / start.sum(), rows / rows.sum(axis=1, keepdims=True)


def draw_world(form: str, seed: int) -> ZooWorld:
    """The world of ``form`` drawn from ``seed``, before calibration (``scale`` = 1).

    attribid.models.simulation.zoo.zoo_world calibrates ``scale``; use that one to simulate.

    >>> w = draw_world("threshold", 1)
    >>> w.name, w.form, len(w.channels) in (7, 16), w.scale
    ('zoo:threshold:1', 'threshold', True, 1.0)
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([seed, FORMS.index(form)])
    n = 7 if rng.random() < 0.5 else 16
    channels = DEFAULT_CHANNELS if n == 7 else WIDE_CHANNELS
    n_harvest = 1 if n == 7 else 2
    names = rng.choice(np.array(HARVEST_CANDIDATES[n]), n_harvest, replace=False).tolist()
    harvest = tuple(sorted(channels.index(h) for h in names))
    scalars = {name: float(_uniform(rng, name)) for name in (
        "conversion_rate", "organic_share", "mean_length", "decay_floor", "harvest_rate",
        "harvest_intent", "intent_sigma", "p_max", "threshold", "steepness", "saturation",
        "fatigue")}
    start, transitions = _transitions(rng, n, float(_uniform(rng, "stickiness")), harvest)
    effect = rng.lognormal(0.0, 0.6, size=n)
    effect /= effect.mean()
    effect[list(harvest)] *= _uniform(rng, "harvest_effect", size=n_harvest)
    click_rate = _uniform(rng, "click_rate", size=n)
    click_rate[list(harvest)] = np.maximum(click_rate[list(harvest)], 0.8)  # visible: clicks
    pairs, pair_coef, triples, triple_coef = _interactions(rng, form, n, harvest)
    return ZooWorld(
        form=form, seed=seed, channels=channels, **scalars,
        fatigue_after=int(rng.integers(2, 5)), start=start, transitions=transitions,
        click_rate=click_rate, impression_weight=_uniform(rng, "impression_weight", size=n),
        half_life_hours=_uniform(rng, "half_life_hours", size=n), effect=effect,
        harvest=harvest, pairs=pairs, pair_coef=pair_coef, triples=triples,
        triple_coef=triple_coef)


def with_scale(world: ZooWorld, scale: float) -> ZooWorld:
    """The same world with its calibrated ``scale``."""
    return replace(world, scale=float(scale))


def split_name(name: str) -> tuple[str, int]:
    """``"zoo:FORM:SEED"`` -> (form, seed); a ValueError says what is wrong.

    >>> split_name("zoo:noisy-or:7")
    ('noisy-or', 7)
    """
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != "zoo" or parts[1] not in FORMS or not parts[2].isdigit():
        raise ValueError(f"a zoo world is zoo:FORM:SEED with FORM one of {', '.join(FORMS)} "
                         f"and SEED >= 0, got {name!r}")
    return parts[1], int(parts[2])
