"""One campaign's statistical side: priors, observed outcomes, fitted curves and their solve.

Used by ``attribid.models.campaign.book.CampaignBook`` (which owns locking, idempotency and swaps) and by
the market simulation. Rates are per hour: curves map spend per hour to outcomes per hour.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from attribid.models.errors import FailedPrecondition, InvalidArgument
from attribid.kernels import fitting
from attribid.kernels.allocation import Infeasible, Problem, solve
from attribid.kernels.response import EXPONENTIAL, NONE, marginals, values

HOUR = 3600.0
#: flight of a configured campaign that gives no end (the proto's "0 = 24 hours after the start")
CONFIGURED_FLIGHT_S = 24 * HOUR
#: Table 6's pre-optimisation shares: the prior's optimum for a campaign over these channels
TABLE6_PRE_SHARE: dict[str, float] = {
    "search": 0.325, "display": 0.287, "social": 0.184, "email": 0.083,
    "affiliate": 0.068, "direct": 0.053,
}
#: prior share of a channel Table 6 does not list (before renormalising)
OTHER_SHARE = 0.05
#: prior cost per acquisition and per thousand impressions at a channel's prior spend
PRIOR_CPA = 25.0
PRIOR_CPM = 5.0
#: prior value of a conversion when the spec leaves it to the data, and its weight in conversions
PRIOR_VALUE = 100.0
PRIOR_VALUE_WEIGHT = 2.0
#: prior weight of a curve's top, in pseudo-outcomes (weak: a day of data overrides it)
PRIOR_STRENGTH = 2.0
MAX_OBSERVATIONS = 20_000
_E1 = 1.0 - math.exp(-1.0)


def _finite_nonneg(field: str, v: float) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0:
        raise InvalidArgument(field, f"must be a finite number >= 0, got {v}")
    return v


def validate_spec(spec: Any, index: Mapping[str, int], now: float) -> Any:
    """Check a CampaignSpec and fill its defaults: flight 0 = now / 24 h, channels () = all,
    objective weights all 0 = revenue only."""
    budget = float(spec.budget)
    if not math.isfinite(budget) or budget <= 0:
        raise InvalidArgument("budget", f"must be a finite number > 0, got {budget}")
    start = float(spec.flight_start) if spec.flight_start > 0 else now
    end = float(spec.flight_end) if spec.flight_end > 0 else start + CONFIGURED_FLIGHT_S
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise InvalidArgument("flight_end", "must be after flight_start")
    weights = [_finite_nonneg(f"objective.{k}", getattr(spec, f"weight_{k}"))
               for k in ("revenue", "acquisitions", "exposure")]
    if sum(weights) <= 0:
        weights = [1.0, 0.0, 0.0]  # no objective given (all weights 0): revenue, i.e. ROI
    _finite_nonneg("max_cpa", spec.max_cpa)
    floor = _finite_nonneg("bid_floor", spec.bid_floor)
    cap = _finite_nonneg("bid_cap", spec.bid_cap)
    if 0 < cap < floor:
        raise InvalidArgument("bid_cap", f"{cap} is below bid_floor {floor}")
    channels = spec.channels or tuple(type_channel(spec)(c, 0.0, 0.0, 0.0) for c in index)
    seen: set[str] = set()
    for i, ch in enumerate(channels):
        if ch.name not in index:
            raise InvalidArgument(f"channels[{i}].name",
                                  f"unknown channel {ch.name!r}; known: {', '.join(index)}")
        if ch.name in seen:
            raise InvalidArgument(f"channels[{i}].name", f"channel {ch.name!r} listed twice")
        seen.add(ch.name)
        lo = _finite_nonneg(f"channels[{i}].min", ch.min)
        hi = _finite_nonneg(f"channels[{i}].max", ch.max)
        _finite_nonneg(f"channels[{i}].value_per_conversion", ch.value_per_conversion)
        if hi > 0 and lo > hi:
            raise InvalidArgument(f"channels[{i}].min", f"min {lo} > max {hi}")
    total_min = sum(float(c.min) for c in channels)
    if total_min > budget:
        raise FailedPrecondition("budget", f"channel minimums sum to {total_min:g}, "
                                 f"more than the budget {budget:g}")
    return dataclasses.replace(spec, flight_start=start, flight_end=end, channels=tuple(channels),
                               weight_revenue=weights[0], weight_acquisitions=weights[1],
                               weight_exposure=weights[2])


def type_channel(spec: Any) -> Any:
    """The ChannelSpec class that goes with a CampaignSpec instance."""
    from attribid.models.campaign.book import ChannelSpec
    return ChannelSpec


def validate_rows(rows: Sequence[Any], index: Mapping[str, int], members: np.ndarray) -> np.ndarray:
    """OutcomeRows as float64 [n, 5]: channel index, spend, conversions, revenue, impressions.

    Every value is checked before any channel, so a row's bad number is named first.

    >>> from attribid.models.campaign.book import OutcomeRow
    >>> validate_rows([OutcomeRow("search", -1.0, 0, 0, 0)], {"search": 0}, np.array([0]))
    Traceback (most recent call last):
    attribid.models.errors.InvalidArgument: outcomes[0].spend: must be finite and >= 0
    """
    out = np.empty((len(rows), 5))
    for i, r in enumerate(rows):
        for j, name in enumerate(("spend", "conversions", "revenue", "impressions"), start=1):
            v = float(getattr(r, name))
            if not (math.isfinite(v) and v >= 0):
                raise InvalidArgument(f"outcomes[{i}].{name}", "must be finite and >= 0")
            out[i, j] = v
    allowed = set(members.tolist())
    for i, r in enumerate(rows):
        ch = index.get(r.channel)
        if ch is None or ch not in allowed:
            raise InvalidArgument(f"outcomes[{i}].channel", f"{r.channel!r} is not a channel of "
                                  "this campaign")
        out[i, 0] = ch
    return out


@dataclass(frozen=True)
class Solution:
    """A solved allocation over the book's channels (arrays float64 [C], 0 off the campaign)."""

    spend: np.ndarray
    revenue: float
    acquisitions: float
    exposure: float
    cpa: float
    objective: float
    solved_at: float
    #: bid per unit of p_conv * credit, and per impression (see attribid.kernels.bidding)
    per_conv: np.ndarray
    per_imp: np.ndarray
    cpa_dropped: bool = False


class CampaignModel:
    """Priors, observations and the solve of one campaign over a book's channels."""

    def __init__(self, spec: Any, channels: Sequence[str], half_life_s: float) -> None:
        self.spec = spec
        self.n_book = len(channels)
        index = {c: i for i, c in enumerate(channels)}
        self.members = np.array([index[c.name] for c in spec.channels], dtype=np.int64)
        self.hours = (spec.flight_end - spec.flight_start) / HOUR
        self.rate_budget = spec.budget / self.hours
        self.lo = np.array([c.min for c in spec.channels], dtype=np.float64) / self.hours
        hi = np.array([c.max if c.max > 0 else spec.budget for c in spec.channels], dtype=np.float64)
        self.hi = hi / self.hours
        self.fixed_value = np.array([c.value_per_conversion for c in spec.channels], dtype=np.float64)
        share = np.array([TABLE6_PRE_SHARE.get(c.name, OTHER_SHARE) for c in spec.channels])
        self.prior_shape = share / share.sum() * self.rate_budget
        self.half_life_s = half_life_s
        self._obs: list[np.ndarray] = []  # rows: channel, spend, conv, rev, imp, dt_hours, end
        self._last_end: dict[int, float] = {}

    def adopt(self, old: "CampaignModel") -> None:
        """Take over the observations of a model this one replaces, for the channels kept."""
        kept = set(self.members.tolist())
        self._obs = [o for o in old._obs if int(o[0]) in kept]
        self._last_end = {c: t for c, t in old._last_end.items() if c in kept}

    def add(self, rows: np.ndarray, end: float) -> None:
        """Record one period's rows (from validate_rows) ending at ``end`` (epoch s)."""
        for r in rows:
            ch = int(r[0])
            last = self._last_end.get(ch, self.spec.flight_start)
            dt = (end - last) / HOUR
            if dt <= 0 and any(o[0] == ch for o in self._obs[-len(self.members) * 4:]):
                # Same period reported again in another batch: merge into the last row.
                o = next(o for o in reversed(self._obs) if o[0] == ch)
                o[1:5] += r[1:5]
                continue
            self._obs.append(np.array([ch, *r[1:5], dt if dt > 0 else 1.0, end]))
            self._last_end[ch] = end
        if len(self._obs) > MAX_OBSERVATIONS:
            del self._obs[: len(self._obs) - MAX_OBSERVATIONS]

    def _posteriors(self, now: float) -> tuple[list[fitting.Posterior], list[fitting.Posterior] | None, np.ndarray]:
        obs = np.array(self._obs) if self._obs else np.empty((0, 7))
        w = 0.5 ** (np.maximum(now - obs[:, 6], 0.0) / self.half_life_s)
        conv, imp = [], []
        value = self.fixed_value.copy()
        for k, ch in enumerate(self.members):
            m = obs[:, 0] == ch
            x, dt, wk = obs[m, 1].copy(), obs[m, 5].copy(), w[m].copy()
            k0 = float(self.prior_shape[k])
            conv.append(fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(k0), prior_top=k0 / PRIOR_CPA / _E1,
                                    prior_shape=k0, prior_strength=PRIOR_STRENGTH, spend=x,
                                    outcome=obs[m, 2].copy(), dt=dt, weight=wk))
            if self.spec.weight_exposure > 0:
                top = 1000.0 * k0 / PRIOR_CPM / (1.0 - math.exp(-0.1))
                imp.append(fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(10 * k0), prior_top=top,
                                       prior_shape=10 * k0, prior_strength=PRIOR_STRENGTH, spend=x,
                                       outcome=obs[m, 4].copy(), dt=dt, weight=wk))
            if value[k] <= 0:
                value[k] = ((PRIOR_VALUE * PRIOR_VALUE_WEIGHT + wk @ obs[m, 3])
                            / (PRIOR_VALUE_WEIGHT + wk @ obs[m, 2]))
        return conv, (imp if imp else None), value

    def _problem(self, conv: list[tuple[float, float]], imp: list[tuple[float, float]] | None,
                 value: np.ndarray, max_cpa: float) -> Problem:
        n = len(self.members)
        ck = np.full(n, EXPONENTIAL, dtype=np.int64)
        cp = np.array([[t, s, 0.0] for t, s in conv])
        mk = np.full(n, EXPONENTIAL if imp else NONE, dtype=np.int64)
        mp = np.array([[t, s, 0.0] for t, s in imp]) if imp else np.zeros((n, 3))
        s = self.spec
        return Problem(self.rate_budget, value, self.lo, self.hi, ck, cp, mk, mp,
                       float(s.weight_revenue), float(s.weight_acquisitions), float(s.weight_exposure),
                       float(max_cpa))

    def solve(self, rng: np.random.Generator | None, now: float, draws: int = 1) -> Solution:
        """Solve under Thompson draws (``rng``) or the posterior point estimate (None).

        With ``draws`` > 1 the plan is the mean of the plans solved under that many draws
        (still feasible: the constraints are convex). Raises Infeasible only for the point
        estimate; a draw that cannot meet the CPA ceiling falls back to the point estimate,
        then to no ceiling (``cpa_dropped``).
        """
        conv_post, imp_post, value = self._posteriors(now)
        point = self._problem([p.point() for p in conv_post],
                              [p.point() for p in imp_post] if imp_post else None, value,
                              self.spec.max_cpa)
        if rng is None:
            x, _ = solve(point)
            return self._solution(x, point, point, now, False)
        xs, dropped = [], False
        for _ in range(max(draws, 1)):
            drawn = self._problem([p.sample(rng) for p in conv_post],
                                  [p.sample(rng) for p in imp_post] if imp_post else None, value,
                                  self.spec.max_cpa)
            for candidate in (drawn, point, dataclasses.replace(point, max_cpa=0.0)):
                try:
                    xs.append(solve(candidate)[0])
                    dropped = dropped or candidate.max_cpa != self.spec.max_cpa
                    break
                except Infeasible:
                    continue
        used = drawn if draws == 1 else point
        return self._solution(np.mean(xs, axis=0), point, used, now, dropped)

    def _solution(self, x: np.ndarray, point: Problem, used: Problem, now: float,
                  dropped: bool) -> Solution:
        conv = values(point.conv_kind, point.conv_params, x)
        imp = values(point.imp_kind, point.imp_params, x)
        revenue = float(point.value_per_conversion @ conv) * self.hours
        acq = float(conv.sum()) * self.hours
        exposure = float(imp.sum()) * self.hours
        spend = float(x.sum()) * self.hours
        s = self.spec
        a, e = used.weights()
        h = a * marginals(used.conv_kind, used.conv_params, x) + e * marginals(used.imp_kind, used.imp_params, x)
        ok = (x > 0) & (h > 0)
        per_conv = np.zeros(self.n_book)
        per_imp = np.zeros(self.n_book)
        per_conv[self.members] = np.where(ok, a / np.where(ok, h, 1.0), 0.0)
        per_imp[self.members] = np.where(ok, e / np.where(ok, h, 1.0), 0.0)
        full = np.zeros(self.n_book)
        full[self.members] = x * self.hours
        return Solution(
            spend=full, revenue=revenue, acquisitions=acq, exposure=exposure,
            cpa=spend / acq if acq > 0 else 0.0,
            objective=s.weight_revenue * revenue + s.weight_acquisitions * acq + s.weight_exposure * exposure,
            solved_at=now, per_conv=per_conv, per_imp=per_imp, cpa_dropped=dropped)
