"""A journey-level market in which the attribution method fed to the closed loop decides the ROI.

A population of shoppers, each with an organic daily conversion rate (a share of them already
in the market, with a much higher one). Every day each channel's spend buys touches through
its reach curve (``reach * (1 - exp(-spend / saturation))``: diminishing returns) and the
touches land in shoppers' journeys: untargeted channels reach anyone; targeted ones reach
shoppers in proportion to ``readiness ** targeting`` (readiness: the shopper's conversion
probability the day before), and late ones touch in the evening, just before the day's
decision. At the decision each shopper converts with probability

    v(S) = b + sum_i effect[c_i] g_i + sum_{i<k} Syn[c_i, c_k] sqrt(g_i g_k),
    g_i = m(interaction_i) 2 ** (-age_i / half_life)

(the pairwise game of ``attribid.models.simulation.simulate``, closed-form Shapley values in
``attribid.kernels.shapley``). A converter's journey ends; touches older than the window
drop out. So a targeted, late channel with a small effect ("harvesting": brand search,
direct, coupon affiliates) sits last in many converting journeys it did not cause, while an
untargeted early one with a large effect (display, social) creates demand and is rarely last.

The closed loop: every day the day's converting journeys (with, for the set-based methods,
the converting and a sample of non-converting journeys of a rolling window) go through the
attribution method under test; spend, touches and the credited conversions and revenue go to
the real ``CampaignBook``, which re-solves the next day's spend. Every strategy of a seed meets
the same shoppers and the same random draws (common random numbers, ``DayDraws``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from attribid.kernels.allocation import Problem, solve
from attribid.kernels.response import EXPONENTIAL
from attribid.kernels.shapley import oldest_to_drop, pairwise_game
from attribid.kernels.taxonomy import CLICK, IMPRESSION
from attribid.models.attribution.classic import attribute_journeys
from attribid.models.attribution.network_credit import network_credit
from attribid.models.campaign.book import CampaignBook, CampaignSpec, ChannelSpec, OutcomeRow
from attribid.models.campaign.model import TABLE6_PRE_SHARE
from attribid.models.data.journeys import Journeys
from attribid.models.simulation.simulate import CATEGORY_PRICE, CATEGORY_SHARE

CHANNELS: tuple[str, ...] = tuple(TABLE6_PRE_SHARE)
STATIC_SHARE = np.array([TABLE6_PRE_SHARE[c] for c in CHANNELS]) / sum(TABLE6_PRE_SHARE.values())
#: methods a loop can be fed with, spelled as ``--method`` spells them
ATTRIBUTION_METHODS: tuple[str, ...] = ("last-click", "first-click", "linear", "time-decay",
                                        "position-based", "markov", "shapley", "network")
#: methods fitted on a rolling window of converting and non-converting journeys
SET_METHODS: tuple[str, ...] = ("markov", "shapley")
#: splits that ignore outcomes: Table 6's static split and the spend oracle's
FIXED_SPLITS: tuple[str, ...] = ("static", "oracle")
DAY = 86400.0
HOUR = 3600.0
START = 1.7e9
#: hour of the day's conversion decision (every touch of the day comes before it)
DECIDE_HOUR = 23.75
#: hours in which early and late touches land
EARLY_HOURS, LATE_HOURS = (0.0, 20.0), (20.0, 23.5)
#: days of journeys the set-based methods are fitted on
SET_WINDOW_DAYS = 7
#: spread (log-normal sigma) of a conversion's value around the shopper's category price
VALUE_SIGMA = 0.25
#: every loop holds each channel between these shares of the daily budget
MIN_SHARE, MAX_SHARE = 0.01, 0.6
#: daily budget per shopper: reach scales with the shoppers and saturation with the budget,
#: so a market's economics do not depend on its size
BUDGET_PER_SHOPPER = 1.0 / 3.0


@dataclass(frozen=True)
class Market:
    """One market's hidden truth; per-channel tuples follow ``CHANNELS``."""

    name: str
    description: str
    #: channels that mostly harvest demand others created (empty: none does)
    harvesting: tuple[str, ...]
    #: a click's effect on the day's conversion probability (an impression's is scaled down)
    effect: tuple[float, ...]
    click_rate: tuple[float, ...]
    #: most touches a day, as a share of the shoppers
    reach: tuple[float, ...]
    #: spend (as a share of the daily budget) that buys 1 - 1/e of the reach
    saturation: tuple[float, ...]
    #: exponent on readiness when picking whom to touch (0 = anyone)
    targeting: tuple[float, ...]
    #: touches land in the evening, just before the decision
    late: tuple[bool, ...]
    #: (earlier channel, later channel, strength) of each synergy
    synergy: tuple[tuple[str, str, float], ...] = ()
    half_life_hours: float = 72.0
    window_days: int = 14
    impression_weight: float = 0.4
    #: share of shoppers already in the market, and the organic daily rates in and out of it
    in_market: float = 0.15
    base_in: float = 0.05
    base_out: float = 0.002
    #: no shopper's daily conversion probability exceeds this (oldest touches are dropped)
    p_max: float = 0.6

    def synergy_matrix(self) -> np.ndarray:
        """Syn[earlier, later], float64 [C, C]."""
        syn = np.zeros((len(CHANNELS), len(CHANNELS)))
        for a, b, s in self.synergy:
            syn[CHANNELS.index(a), CHANNELS.index(b)] = s
        return syn


#            search  display social  email   affil.  direct
MARKETS: dict[str, Market] = {m.name: m for m in (
    Market("brand-search", "brand search and direct harvest shoppers already in the market; "
           "display and social create the demand", ("search", "direct"),
           effect=(0.002, 0.014, 0.012, 0.006, 0.004, 0.001),
           click_rate=(1.0, 0.1, 0.25, 0.4, 0.8, 1.0),
           reach=(0.08, 0.4, 0.3, 0.2, 0.05, 0.06),
           saturation=(0.15, 0.3, 0.25, 0.05, 0.08, 0.1),
           targeting=(2.0, 0.0, 0.0, 0.5, 1.0, 2.5),
           late=(True, False, False, False, True, True),
           synergy=(("display", "search", 0.004), ("social", "search", 0.003),
                    ("display", "social", 0.002))),
    Market("coupon-affiliate", "coupon affiliates and direct harvest; generic search is "
           "incremental and late; social creates the demand", ("affiliate", "direct"),
           effect=(0.010, 0.006, 0.014, 0.005, 0.0015, 0.001),
           click_rate=(0.9, 0.1, 0.3, 0.4, 1.0, 1.0),
           reach=(0.1, 0.35, 0.3, 0.2, 0.1, 0.06),
           saturation=(0.2, 0.25, 0.3, 0.05, 0.1, 0.1),
           targeting=(0.5, 0.0, 0.0, 0.5, 2.5, 2.5),
           late=(True, False, False, False, True, True),
           synergy=(("social", "search", 0.004), ("email", "affiliate", 0.002))),
    Market("mixed", "a milder case: direct harvests; search is partly targeted and partly "
           "incremental; display and social feed search through synergies", ("direct",),
           effect=(0.006, 0.009, 0.010, 0.008, 0.006, 0.001),
           click_rate=(0.95, 0.15, 0.3, 0.45, 0.8, 1.0),
           reach=(0.1, 0.35, 0.25, 0.2, 0.06, 0.06),
           saturation=(0.2, 0.3, 0.25, 0.06, 0.1, 0.1),
           targeting=(1.0, 0.0, 0.0, 1.0, 0.5, 2.5),
           late=(True, False, False, False, False, True),
           synergy=(("display", "search", 0.004), ("social", "search", 0.004),
                    ("email", "direct", 0.002)),
           half_life_hours=36.0, window_days=10),
    Market("last-touch", "no harvesting, sparse touches that decay within hours: most converting "
           "journeys hold one touch, and the last touch is the incremental one", (),
           effect=(0.25, 0.10, 0.16, 0.12, 0.20, 0.08),
           click_rate=(0.9, 0.2, 0.4, 0.5, 0.9, 1.0),
           reach=(0.02, 0.08, 0.05, 0.04, 0.02, 0.015),
           saturation=(0.2, 0.3, 0.25, 0.08, 0.1, 0.1),
           targeting=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
           late=(False, False, False, False, False, False),
           half_life_hours=6.0, window_days=1, in_market=0.0, base_out=0.002),
)}


@dataclass(frozen=True)
class Population:
    """One seed's shoppers: organic daily rate, category and mean order value, [N] each."""

    base: np.ndarray
    category: np.ndarray
    price: np.ndarray

    @classmethod
    def draw(cls, market: Market, shoppers: int, seed: int) -> "Population":
        rng = np.random.default_rng((seed, 0))
        in_market = rng.random(shoppers) < market.in_market
        base = np.where(in_market, market.base_in, market.base_out) * rng.lognormal(
            -0.045, 0.3, shoppers)
        category = rng.choice(len(CATEGORY_SHARE), size=shoppers, p=CATEGORY_SHARE).astype(np.int32)
        return cls(base, category, CATEGORY_PRICE[category])

    @property
    def size(self) -> int:
        return int(self.base.shape[0])


@dataclass(frozen=True)
class DayDraws:
    """One day's uniforms, shared by every strategy of a seed (common random numbers)."""

    count: np.ndarray   # [C]: rounds a fractional touch count
    pick: np.ndarray    # [C, N]: whom a channel touches (weighted sampling keys)
    hour: np.ndarray    # [C, N]
    click: np.ndarray   # [C, N]
    convert: np.ndarray  # [N]
    value: np.ndarray   # [N]: log-normal multiplier of the order value
    sample: np.ndarray  # [N]: which non-converting journeys the set-based methods see

    @classmethod
    def draw(cls, seed: int, day: int, shoppers: int) -> "DayDraws":
        rng = np.random.default_rng((seed, 1, day))
        c = len(CHANNELS)
        return cls(rng.random(c), rng.random((c, shoppers)), rng.random((c, shoppers)),
                   rng.random((c, shoppers)), rng.random(shoppers),
                   rng.lognormal(-VALUE_SIGMA**2 / 2, VALUE_SIGMA, shoppers), rng.random(shoppers))


@dataclass(frozen=True)
class DayOutcome:
    """What one day produced: the journeys to attribute and the truth about them."""

    #: journeys of today's converters that had a touch (value = order value)
    converters: Journeys
    #: a sample of today's non-converting journeys (about one snapshot per journey)
    non_converters: Journeys
    #: true incremental credit of each converting journey, float64 [n, C]: Shapley value / v
    truth: np.ndarray
    touches: np.ndarray   # [C]
    revenue: float
    expected_revenue: float
    conversions: int


class Shoppers:
    """The population's open journeys, stepped one day at a time under a given spend."""

    def __init__(self, market: Market, population: Population, budget: float) -> None:
        self.market, self.population = market, population
        m, n = market, population.size
        self.top = np.array(m.reach) * n
        self.scale = np.array(m.saturation) * budget
        self.effect = np.array(m.effect)
        self.syn = m.synergy_matrix()
        self.readiness = population.base.copy()
        self.owner = np.zeros(0, np.int64)
        self.channel = np.zeros(0, np.int32)
        self.time = np.zeros(0)
        self.interaction = np.zeros(0, np.int8)
        self.cost = np.zeros(0)

    def touches_bought(self, spend: np.ndarray, draws: DayDraws) -> np.ndarray:
        """Touches per channel, int [C], from the reach curves (diminishing returns)."""
        mean = self.top * -np.expm1(-np.maximum(spend, 0.0) / self.scale)
        return np.minimum(np.floor(mean + draws.count), self.population.size).astype(np.int64)

    def step(self, day: int, spend: np.ndarray, draws: DayDraws) -> DayOutcome:
        """Place the day's touches, decide conversions, close converters' journeys."""
        m, n = self.market, self.population.size
        count = self.touches_bought(spend, draws)
        for c, k in enumerate(count):
            if k:
                self._add_touches(day, c, int(k), spend[c] / k, draws)
        order = np.lexsort((self.time, self.owner))
        self._keep(order)
        decide = START + day * DAY + DECIDE_HOUR * HOUR
        offsets, a, g = self._game_terms(decide)
        drop = oldest_to_drop(offsets, self.channel, a, g, self.syn, self.population.base, m.p_max)
        if drop.any():
            first = np.repeat(offsets[:-1] + drop, np.diff(offsets))
            keep = np.flatnonzero(np.arange(self.owner.shape[0]) >= first)
            self._keep(keep)
            offsets, a, g = self._game_terms(decide)
        _, shapley, _, p = pairwise_game(offsets, self.channel, a, g, self.syn,
                                         self.population.base, len(CHANNELS))
        p = np.minimum(p, m.p_max)
        converted = draws.convert < p
        value = self.population.price * draws.value
        has = np.diff(offsets) > 0
        credited = converted & has
        sampled = ~converted & has & (draws.sample < 1.0 / m.window_days)
        truth = shapley[credited] / p[credited, None]
        outcome = DayOutcome(
            self._journeys(credited, day, decide, value), self._journeys(sampled, day, decide, None),
            truth, count.astype(np.float64), float(value[converted].sum()),
            float((p * self.population.price).sum()), int(converted.sum()))
        self.readiness = p
        alive = ~converted[self.owner] & (self.time >= decide - m.window_days * DAY)
        self._keep(np.flatnonzero(alive))
        return outcome

    def _add_touches(self, day: int, c: int, k: int, cost: float, draws: DayDraws) -> None:
        kappa = self.market.targeting[c]
        key = -np.log(draws.pick[c]) / (self.readiness ** kappa if kappa else 1.0)
        who = np.argpartition(key, k - 1)[:k] if k < key.shape[0] else np.arange(key.shape[0])
        lo, hi = LATE_HOURS if self.market.late[c] else EARLY_HOURS
        hour = lo + (hi - lo) * draws.hour[c, who]
        click = draws.click[c, who] < self.market.click_rate[c]
        self.owner = np.concatenate([self.owner, who.astype(np.int64)])
        self.channel = np.concatenate([self.channel, np.full(k, c, np.int32)])
        self.time = np.concatenate([self.time, START + day * DAY + np.round(hour * HOUR)])
        self.interaction = np.concatenate(
            [self.interaction, np.where(click, CLICK, IMPRESSION).astype(np.int8)])
        self.cost = np.concatenate([self.cost, np.full(k, round(cost, 4))])

    def _keep(self, rows: np.ndarray) -> None:
        self.owner, self.channel, self.time = self.owner[rows], self.channel[rows], self.time[rows]
        self.interaction, self.cost = self.interaction[rows], self.cost[rows]

    def _game_terms(self, decide: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR offsets over every shopper, each touch's effect ``a`` and strength ``g``."""
        m = self.market
        offsets = np.zeros(self.population.size + 1, np.int64)
        np.cumsum(np.bincount(self.owner, minlength=self.population.size), out=offsets[1:])
        weight = np.where(self.interaction == CLICK, 1.0, m.impression_weight)
        g = weight * np.exp2(-(decide - self.time) / HOUR / m.half_life_hours)
        return offsets, self.effect[self.channel] * g, g

    def _journeys(self, shoppers: np.ndarray, day: int, decide: float,
                  value: np.ndarray | None) -> Journeys:
        """The open journeys of the ``shoppers`` mask; converted when ``value`` is given."""
        rows = np.flatnonzero(shoppers[self.owner])
        who = np.flatnonzero(shoppers)
        offsets = np.zeros(who.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(self.owner[rows], minlength=shoppers.shape[0])[who], out=offsets[1:])
        k = who.shape[0]
        converted = value is not None
        return Journeys(
            ids=np.array([f"d{day}s{j}" for j in who], dtype=object), offsets=offsets,
            channel=self.channel[rows], timestamp=self.time[rows],
            interaction=self.interaction[rows], cost=self.cost[rows],
            device=np.ones(rows.shape[0], np.int8), category=self.population.category[who],
            converted=np.full(k, converted),
            conversion_time=np.full(k, decide if converted else np.nan),
            value=np.round(value[who], 2) if value is not None else np.zeros(k), channels=CHANNELS)


def true_curves(market: Market, population: Population, budget: float) -> np.ndarray:
    """Each channel's expected incremental conversions a day against spend, as EXPONENTIAL
    curve parameters [C, 3] (top, scale, 0).

    A touch adds ``effect * m * decay`` to its shopper's probability on every later day of the
    window while the journey is open; the top sums that over the window, with the chance the
    shopper has converted (at the mean organic rate of whom the channel reaches) and the hour
    the channel touches. Synergies and saturation are left out: the oracle is near, not exactly
    at, the best split.
    """
    m, base = market, population.base
    params = np.zeros((len(CHANNELS), 3))
    for c in range(len(CHANNELS)):
        kappa = m.targeting[c]
        # the mean organic rate of whom the channel reaches, weighted as it picks them
        reached = (float(np.sum(base ** (kappa + 1)) / np.sum(base ** kappa)) if kappa
                   else float(base.mean()))
        lo, hi = LATE_HOURS if m.late[c] else EARLY_HOURS
        age0 = DECIDE_HOUR - (lo + hi) / 2
        days = np.arange(m.window_days)
        horizon = np.sum(np.exp2(-(age0 + 24 * days) / m.half_life_hours) * (1 - reached) ** days)
        weight = m.click_rate[c] + (1 - m.click_rate[c]) * m.impression_weight
        params[c] = (m.reach[c] * population.size * m.effect[c] * weight * horizon,
                     m.saturation[c] * budget, 0.0)
    return params


def oracle_split(market: Market, population: Population, budget: float) -> np.ndarray:
    """The daily split that maximises expected incremental revenue under ``true_curves``."""
    c = len(CHANNELS)
    value = np.full(c, float(population.price.mean()))
    problem = Problem(budget, value, np.full(c, MIN_SHARE * budget), np.full(c, MAX_SHARE * budget),
                      np.full(c, EXPONENTIAL, np.int64), true_curves(market, population, budget),
                      np.zeros(c, np.int64), np.zeros((c, 3)))
    spend, _ = solve(problem)
    return np.asarray(spend, dtype=np.float64)


Credit = Callable[[DayOutcome, list[DayOutcome]], np.ndarray]


def credit_function(method: str, model_path: str | None = None) -> Credit:
    """``(today, window) -> credit [n converters, C]`` for ``method`` (or ``"truth"``).

    ``window`` holds the previous days' outcomes, oldest first (the set-based methods fit on
    them and today's journeys; the others read today's converters only).
    """
    if method == "truth":
        return lambda today, window: today.truth
    if method == "network":
        if not model_path:
            raise ValueError("network: needs a trained model (model_path)")
        return lambda today, window: network_credit(today.converters, model_path)
    if method in SET_METHODS:
        def fitted(today: DayOutcome, window: list[DayOutcome]) -> np.ndarray:
            parts = [today.converters, today.non_converters]
            for past in window[-(SET_WINDOW_DAYS - 1):]:
                parts += [past.converters, past.non_converters]
            return attribute_journeys(Journeys.concat(parts), method)[:today.converters.n_journeys]
        return fitted
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method must be one of {', '.join(ATTRIBUTION_METHODS)}, truth, "
                         f"got {method!r}")
    return lambda today, window: attribute_journeys(today.converters, method)


@dataclass(frozen=True)
class LoopResult:
    """One strategy on one seed, per day: float64 [days, C] or [days]."""

    spend: np.ndarray
    touches: np.ndarray
    revenue: np.ndarray
    expected_revenue: np.ndarray
    conversions: np.ndarray
    #: conversions the loop's method credited to each channel (0 for the fixed splits)
    credited: np.ndarray
    #: true incremental credit of the same converting journeys
    true_credit: np.ndarray

    @property
    def roi(self) -> float:
        return float(self.revenue.sum() / self.spend.sum())


def _spec(budget: float, days: int, value: float) -> CampaignSpec:
    return CampaignSpec("sim", budget * days, START, START + days * DAY, 1.0, 0.0, 0.0, 0.0,
                        tuple(ChannelSpec(ch, MIN_SHARE * budget * days, MAX_SHARE * budget * days,
                                          value) for ch in CHANNELS), 0.0, 0.0)


def run_loop(market: Market, population: Population, draws: list[DayDraws], strategy: str,
             budget: float, seed: int, model_path: str | None = None) -> LoopResult:
    """Run ``strategy`` (a method feeding the CampaignBook, or a fixed split) over ``draws``."""
    days, c = len(draws), len(CHANNELS)
    shoppers = Shoppers(market, population, budget)
    book: CampaignBook | None = None
    credit: Credit | None = None
    if strategy == "static":
        fixed = STATIC_SHARE * budget
    elif strategy == "oracle":
        fixed = oracle_split(market, population, budget)
    else:
        credit = credit_function(strategy, model_path)
        clock = [START]
        book = CampaignBook(CHANNELS, clock=lambda: clock[0], seed=seed, half_life_s=7 * DAY)
        book.configure(_spec(budget, days, float(population.price.mean())))
    out: dict[str, np.ndarray] = {
        k: np.zeros((days, c)) for k in ("spend", "touches", "credited", "true_credit")}
    out.update({k: np.zeros(days) for k in ("revenue", "expected_revenue", "conversions")})
    window: list[DayOutcome] = []
    for d in range(days):
        if book is None:
            spend = fixed
        else:
            snap = book.allocation("sim")
            spend = np.array([snap.spend[ch] for ch in CHANNELS]) / days
        today = shoppers.step(d, spend, draws[d])
        out["spend"][d], out["touches"][d] = spend, today.touches
        out["revenue"][d], out["expected_revenue"][d] = today.revenue, today.expected_revenue
        out["conversions"][d] = today.conversions
        out["true_credit"][d] = today.truth.sum(axis=0)
        if book is not None and credit is not None:
            rows = credit(today, window)
            conv, value = rows.sum(axis=0), today.converters.value @ rows
            out["credited"][d] = conv
            clock[0] = START + (d + 1) * DAY
            book.report("sim", f"day{d}", [
                OutcomeRow(ch, float(spend[i]), float(conv[i]), float(value[i]),
                           float(today.touches[i])) for i, ch in enumerate(CHANNELS)], clock[0])
            book.resolve_now("sim")
        window = (window + [today])[-SET_WINDOW_DAYS:]
    return LoopResult(**out)


def run_seed(market: Market, seed: int, strategies: tuple[str, ...], *, shoppers: int = 3000,
             days: int = 30, model_path: str | None = None) -> dict[str, LoopResult]:
    """Every strategy on one seed: the same shoppers and draws for all (common random numbers).

    >>> r = run_seed(MARKETS["brand-search"], 1, ("static", "last-click"), shoppers=200, days=3)
    >>> sorted(r), r["static"].spend.shape, bool(r["static"].roi > 0)
    (['last-click', 'static'], (3, 6), True)
    """
    population = Population.draw(market, shoppers, seed)
    draws = [DayDraws.draw(seed, d, shoppers) for d in range(days)]
    budget = shoppers * BUDGET_PER_SHOPPER
    return {s: run_loop(market, population, draws, s, budget, seed, model_path) for s in strategies}


def warmup_journeys(market: Market, journeys: int, *, shoppers: int = 3000,
                    seed: int = 1_000_003, max_days: int = 365) -> Journeys:
    """At least ``journeys`` journeys (converters and sampled non-converters) of ``market``
    under the static split, on a seed no compared run uses: what a user has before training.

    >>> js = warmup_journeys(MARKETS["last-touch"], 50, shoppers=300)
    >>> js.n_journeys >= 50, bool(js.converted.any())
    (True, True)
    """
    population = Population.draw(market, shoppers, seed)
    budget = shoppers * BUDGET_PER_SHOPPER
    sim = Shoppers(market, population, budget)
    parts: list[Journeys] = []
    total = 0
    for d in range(max_days):
        today = sim.step(d, STATIC_SHARE * budget, DayDraws.draw(seed, d, shoppers))
        parts += [today.converters, today.non_converters]
        total += today.converters.n_journeys + today.non_converters.n_journeys
        if total >= journeys:
            break
    return Journeys.concat(parts)


def train_market_network(market: Market, journeys: Journeys, out_dir: Path, *, epochs: int = 4,
                         distill_epochs: int = 3, distill_journeys: int = 3000,
                         log: Callable[[str], None] = lambda text: None) -> Path:
    """Train the attribution network on one market's warm-up journeys and export it as
    ``attribid train`` does; returns the model's folder (needs the train extra)."""
    # imported here: PyTorch is needed only when the network is among the methods
    from attribid.models.network.config import TrainConfig
    from attribid.models.network.export import build_metadata, export_model
    from attribid.models.network.train import train_network

    config = TrainConfig(epochs=epochs, distill_epochs=distill_epochs,
                         distill_journeys=distill_journeys)
    net, report = train_network(journeys, config, log=log)
    metadata = build_metadata(journeys.channels, config.max_len, f"journey-market-{market.name}",
                              report["summary"], report["metrics"], report["base_rate"])
    export_model(net, out_dir, metadata)
    return out_dir
