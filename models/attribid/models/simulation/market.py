"""A simulated market to measure the closed loop against fixed and oracle allocations.

Each market has six channels (Table 6's) with hidden true response curves (conversions per
day against spend per day), a weekly season on every curve's top, log-normal day noise, Poisson
conversions, and a shift halfway (one channel's curve loses part of its top). Every strategy
spends the same budget every day and meets the same random draws (common random numbers:
one uniform per day and channel, turned into a Poisson count by its inverse CDF).

Strategies: Table 6's static pre-optimisation split; the adaptive loop (the real
``attribid.models.campaign.book.CampaignBook``: reports, Thompson sampling, re-solves); the loop's plan
frozen at the end of the learning period ("optimised once, then frozen"); the best fixed split
in hindsight (true curves, whole run); and a per-day oracle (true curves, that day).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from attribid.models.campaign.book import CampaignBook, CampaignSpec, ChannelSpec, OutcomeRow
from attribid.kernels.allocation import Problem, solve
from attribid.models.campaign.model import TABLE6_PRE_SHARE
from attribid.kernels.response import EXPONENTIAL, HILL, values

CHANNELS: tuple[str, ...] = tuple(TABLE6_PRE_SHARE)
#: Table 6's post-optimisation shares: where the default market's optimum sits, roughly
TABLE6_POST_SHARE = np.array([0.387, 0.213, 0.226, 0.128, 0.032, 0.014])
STATIC_SHARE = np.array([TABLE6_PRE_SHARE[c] for c in CHANNELS])
STRATEGIES = ("static", "frozen", "adaptive", "hindsight", "oracle")
DAY = 86400.0
START = 1.7e9


@dataclass(frozen=True)
class Market:
    """How a market's hidden truth is drawn; each seed draws its own curves from it."""

    name: str
    #: optimum shares the true curves are built around (before per-seed perturbation)
    center: tuple[float, ...]
    kind: int = EXPONENTIAL
    #: channel that gets worse halfway, and the fraction of its top it keeps
    shifted: str = "search"
    keep: float = 0.5
    season: float = 0.15
    noise: float = 0.10
    #: per-seed multiplicative spread of shapes and cost per acquisition
    spread: float = 0.3


MARKETS: dict[str, Market] = {
    "table6": Market("table6", tuple(TABLE6_POST_SHARE)),
    "hill": Market("hill", tuple(TABLE6_POST_SHARE), kind=HILL, shifted="social", keep=0.4),
    "near-static": Market("near-static", tuple(STATIC_SHARE), shifted="display", keep=0.5),
}


@dataclass(frozen=True)
class Truth:
    """One seed's hidden market: curves per day, values, season and shift multipliers."""

    kind: np.ndarray  # int64 [C]
    params: np.ndarray  # float64 [C, 3]
    value: np.ndarray  # float64 [C]
    #: multiplier of each channel's top on each day, [days, C]
    top_scale: np.ndarray


def draw_truth(m: Market, days: int, budget: float, rng: np.random.Generator) -> Truth:
    """Curves whose optimum is near ``m.center`` (perturbed), plus season and shift."""
    c = len(CHANNELS)
    center = np.array(m.center) / np.sum(m.center)
    scale = center * budget * np.exp(rng.normal(0, m.spread, c))
    cpa = 20.0 * np.exp(rng.normal(0, m.spread, c))
    value = rng.uniform(80.0, 120.0, c)
    if m.kind == HILL:
        slope = rng.uniform(0.6, 1.0, c)
        top = 2 * scale / cpa  # conversions at spend = half are scale / cpa
        params = np.column_stack([top, scale, slope])
    else:
        top = scale / cpa / (1 - math.exp(-1.0))
        params = np.column_stack([top, scale, np.zeros(c)])
    day = np.arange(days)
    season = 1.0 + m.season * np.sin(2 * np.pi * day / 7.0 + rng.uniform(0, 2 * np.pi))
    top_scale = np.repeat(season[:, None], c, axis=1)
    top_scale[days // 2:, CHANNELS.index(m.shifted)] *= m.keep
    return Truth(np.full(c, m.kind, dtype=np.int64), params, value, top_scale)


def _problem(truth: Truth, budget: float, top_scale: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Problem:
    params = truth.params.copy()
    params[:, 0] *= top_scale
    c = len(CHANNELS)
    return Problem(budget, truth.value, lo, hi, truth.kind, params, np.zeros(c, np.int64), np.zeros((c, 3)))


def expected_conversions(truth: Truth, day: int, spend: np.ndarray) -> np.ndarray:
    """True mean conversions per channel on ``day`` at ``spend`` (before noise)."""
    params = truth.params.copy()
    params[:, 0] *= truth.top_scale[day]
    return values(truth.kind, params, spend)


@dataclass(frozen=True)
class SeedResult:
    """One seed: per strategy and day, spend [S, days, C], realised and expected revenue [S, days]."""

    spend: np.ndarray
    revenue: np.ndarray
    expected: np.ndarray
    pacing: np.ndarray  # the loop's pacing multiplier each day [days]
    bound_violations: int
    budget_violations: int


def run_seed(m: Market, seed: int, *, days: int = 60, budget: float = 10_000.0, learn: int = 10,
             min_share: float = 0.01, max_share: float = 0.6, draws: int = 8) -> SeedResult:
    """Simulate every strategy on one seed of market ``m``.

    ``draws`` is the loop's Thompson draws per re-solve (0 = no exploration: posterior means).
    """
    rng = np.random.default_rng(seed)
    truth = draw_truth(m, days, budget, rng)
    c = len(CHANNELS)
    u = rng.uniform(size=(days, c))  # common random numbers for every strategy
    eps = np.exp(rng.normal(-m.noise**2 / 2, m.noise, size=(days, c)))
    lo, hi = np.full(c, min_share * budget), np.full(c, max_share * budget)
    hindsight, _ = solve(_problem(truth, budget, truth.top_scale.mean(axis=0), lo, hi))
    static = STATIC_SHARE / STATIC_SHARE.sum() * budget
    clock = [START]
    book = CampaignBook(CHANNELS, clock=lambda: clock[0], seed=seed, half_life_s=7 * DAY, draws=draws)
    book.configure(CampaignSpec(
        "sim", budget * days, START, START + days * DAY, 1.0, 0.0, 0.0, 0.0,
        tuple(ChannelSpec(ch, min_share * budget * days, max_share * budget * days, float(v))
              for ch, v in zip(CHANNELS, truth.value)), 0.0, 0.0))
    spend = np.zeros((len(STRATEGIES), days, c))
    revenue = np.zeros((len(STRATEGIES), days))
    expected = np.zeros((len(STRATEGIES), days))
    pacing = np.zeros(days)
    frozen = static
    bound_v = budget_v = 0
    for d in range(days):
        snap = book.allocation("sim")
        pacing[d] = snap.pacing
        plan = np.array([snap.spend[ch] for ch in CHANNELS]) / days
        if d == learn:
            point = book.expected_plan("sim")
            frozen = np.array([point[ch] for ch in CHANNELS]) / days
        oracle, _ = solve(_problem(truth, budget, truth.top_scale[d], lo, hi))
        plans = {"static": static, "frozen": plan if d < learn else frozen, "adaptive": plan,
                 "hindsight": hindsight, "oracle": oracle}
        bound_v += int(np.any(plan < lo * (1 - 1e-9)) or np.any(plan > hi * (1 + 1e-9)))
        budget_v += int(plan.sum() > budget * (1 + 1e-9))
        for s, name in enumerate(STRATEGIES):
            mean = expected_conversions(truth, d, plans[name])
            conv = poisson.ppf(u[d], mean * eps[d])
            spend[s, d] = plans[name]
            revenue[s, d] = truth.value @ conv
            expected[s, d] = truth.value @ mean
        conv = poisson.ppf(u[d], expected_conversions(truth, d, plan) * eps[d])
        clock[0] = START + (d + 1) * DAY
        book.report("sim", f"day{d}", [OutcomeRow(ch, float(plan[i]), float(conv[i]),
                                                  float(truth.value[i] * conv[i]), 0.0)
                                       for i, ch in enumerate(CHANNELS)], clock[0])
        book.resolve_now("sim")
    return SeedResult(spend, revenue, expected, pacing, bound_v, budget_v)


def pacing_day(seed: int, *, controlled: bool, budget: float = 10_000.0, swing: float = 0.6,
               level_sd: float = 0.25) -> np.ndarray:
    """Cumulative spend at the end of each hour of a one-day flight, as a share of the budget.

    Delivery follows the day's demand (a sine with a midday peak, ``swing`` deep, times a
    log-normal level for the day): hour h spends ``budget / 24 * demand_h * pacing``. With
    ``controlled`` the pacing multiplier is the CampaignBook's, refreshed by hourly spend
    reports; without it the multiplier stays 1 (bids ignore spend so far).
    """
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    shape = 1.0 + swing * np.sin(2 * np.pi * (hours - 6) / 24 + rng.normal(0, 0.3))
    demand = shape / shape.mean() * np.exp(rng.normal(-level_sd**2 / 2, level_sd))
    clock = [START]
    book = CampaignBook(CHANNELS, clock=lambda: clock[0], seed=seed)
    book.configure(CampaignSpec("day", budget, START, START + DAY, 1.0, 0.0, 0.0, 0.0, (), 0.0, 0.0))
    share = np.array([book.allocation("day").share[ch] for ch in CHANNELS])
    spent = np.zeros(24)
    total = 0.0
    for h in hours:
        pace = book.pacing("day") if controlled else 1.0
        x = budget / 24 * demand[h] * pace
        total += x
        spent[h] = total / budget
        clock[0] = START + (h + 1) * 3600.0
        book.report("day", f"h{h}", [OutcomeRow(ch, float(x * share[i]), 0.0, 0.0, 0.0)
                                     for i, ch in enumerate(CHANNELS)], clock[0])
    return spent
