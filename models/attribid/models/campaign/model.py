"""One campaign's statistical side: priors, observed outcomes, fitted curves and their solve.

Used by ``attribid.models.campaign.book.CampaignBook`` (which owns locking, idempotency and swaps) and by
the market simulation. Rates are per hour: curves map spend per hour to outcomes per hour.
"""
from __future__ import annotations

import dataclasses
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Mapping, Sequence

import numpy as np

from attribid.models.errors import FailedPrecondition, InvalidArgument, quote
from attribid.kernels import fitting
from attribid.kernels.allocation import Infeasible, InvalidProblem, Problem, solve
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
#: periods a campaign keeps for the fit, over all its channels; the oldest are dropped first
MAX_OBSERVATIONS = 20_000
_E1 = 1.0 - math.exp(-1.0)


#: Bounds of every number a campaign keeps, so that every sum and product the model and the
#: solver form stays finite in float64. Amounts of money and counts: a budget, a channel's
#: min and max, a value per conversion, a CPA ceiling, a bid floor and cap, and each outcome
#: row's spend, conversions, revenue and impressions are at most MAX_AMOUNT; so is what a
#: campaign accumulates over its life (each of spend, conversions, revenue, impressions).
MAX_AMOUNT = 1e12
#: smallest budget a campaign may have (over its whole flight)
MIN_BUDGET = 0.01
#: largest objective weight (weights are relative: only their ratios matter)
MAX_WEIGHT = 1e6
#: the outcome columns of a row, in validate_rows' order (after the channel index)
OUTCOME_FIELDS = ("spend", "conversions", "revenue", "impressions")
#: what credits a campaign's conversions (ConfigureCampaignRequest.attribution): the served
#: network, a rule over each journey, or the caller's own split in ReportOutcomes rows
NETWORK = "network"
REPORTED = "reported"
RULE_ATTRIBUTIONS = ("last-click", "first-click", "linear", "time-decay", "position-based")
#: fitted on a window of the campaign's journeys, converting and not (campaign.window)
WINDOW_ATTRIBUTIONS = ("markov", "shapley")
ATTRIBUTIONS = (NETWORK, *RULE_ATTRIBUTIONS, *WINDOW_ATTRIBUTIONS, REPORTED)


def _bounded(field: str, v: float, top: float = MAX_AMOUNT,
             negative: str = "must be a finite number >= 0, got {v}") -> float:
    v = float(v)
    if not (math.isfinite(v) and v >= 0):
        raise InvalidArgument(field, negative.format(v=v))
    if v > top:
        raise InvalidArgument(field, f"must be at most {top:g}, got {v:g}")
    return v


def validate_spec(spec: Any, index: Mapping[str, int], now: float) -> Any:
    """Check a CampaignSpec and fill its defaults: flight 0 = now / 24 h, channels () = all,
    objective weights all 0 = revenue only.

    Every amount is bounded (MIN_BUDGET, MAX_AMOUNT, MAX_WEIGHT), so nothing the campaign
    computes from them overflows; a number outside is refused naming its field and the bound.

    >>> from attribid.models.campaign.book import CampaignSpec
    >>> validate_spec(CampaignSpec("c", 1e308, 0, 0, 1, 0, 0, 0, (), 0, 0), {"search": 0}, 1e9)
    Traceback (most recent call last):
    attribid.models.errors.InvalidArgument: budget: must be in [0.01, 1e+12], got 1e+308
    """
    budget = float(spec.budget)
    if not math.isfinite(budget) or budget <= 0:
        raise InvalidArgument("budget", f"must be a finite number > 0, got {budget}")
    if not MIN_BUDGET <= budget <= MAX_AMOUNT:
        raise InvalidArgument("budget", f"must be in [{MIN_BUDGET:g}, {MAX_AMOUNT:g}], got "
                              f"{budget:g}")
    start = float(spec.flight_start) if spec.flight_start > 0 else now
    end = float(spec.flight_end) if spec.flight_end > 0 else start + CONFIGURED_FLIGHT_S
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise InvalidArgument("flight_end", "must be after flight_start")
    weights = [_bounded(f"objective.{k}", getattr(spec, f"weight_{k}"), MAX_WEIGHT)
               for k in ("revenue", "acquisitions", "exposure")]
    if sum(weights) <= 0:
        weights = [1.0, 0.0, 0.0]  # no objective given (all weights 0): revenue, i.e. ROI
    _bounded("max_cpa", spec.max_cpa)
    floor = _bounded("bid_floor", spec.bid_floor)
    cap = _bounded("bid_cap", spec.bid_cap)
    if 0 < cap < floor:
        raise InvalidArgument("bid_cap", f"{cap:g} is below bid_floor {floor:g}")
    channels = spec.channels or tuple(type_channel(spec)(c, 0.0, 0.0, 0.0) for c in index)
    seen: set[str] = set()
    for i, ch in enumerate(channels):
        if ch.name not in index:
            raise InvalidArgument(f"channels[{i}].name",
                                  f"unknown channel {quote(ch.name)}; known: {', '.join(index)}")
        if ch.name in seen:
            raise InvalidArgument(f"channels[{i}].name", f"channel {quote(ch.name)} listed twice")
        seen.add(ch.name)
        lo = _bounded(f"channels[{i}].min", ch.min)
        hi = _bounded(f"channels[{i}].max", ch.max)
        _bounded(f"channels[{i}].value_per_conversion", ch.value_per_conversion)
        if hi > 0 and lo > hi:
            raise InvalidArgument(f"channels[{i}].min", f"min {lo:g} > max {hi:g}")
    total_min = sum(float(c.min) for c in channels)
    if total_min > budget:
        raise FailedPrecondition("budget", f"channel minimums sum to {total_min:g}, "
                                 f"more than the budget {budget:g}")
    attribution = getattr(spec, "attribution", REPORTED)
    if attribution not in ATTRIBUTIONS:
        raise InvalidArgument("attribution", f"unknown method {quote(attribution)}; choose from "
                              f"{', '.join(ATTRIBUTIONS)}")
    return dataclasses.replace(spec, flight_start=start, flight_end=end, channels=tuple(channels),
                               weight_revenue=weights[0], weight_acquisitions=weights[1],
                               weight_exposure=weights[2])


def type_channel(spec: Any) -> Any:
    """The ChannelSpec class that goes with a CampaignSpec instance."""
    from attribid.models.campaign.book import ChannelSpec
    return ChannelSpec


@dataclass(frozen=True, slots=True)
class OutcomeColumns:
    """A report's rows as columns: each row's channel name, and float64 [n, 4] of its spend,
    conversions, revenue and impressions (OUTCOME_FIELDS order), as the API converts them.

    >>> from attribid.models.campaign.book import OutcomeRow
    >>> cols = OutcomeColumns.of([OutcomeRow("search", 1.0, 2.0, 3.0, 4.0)])
    >>> len(cols), cols.channel, cols.values.tolist()
    (1, ['search'], [[1.0, 2.0, 3.0, 4.0]])
    """

    channel: Sequence[str]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.channel)

    @classmethod
    def of(cls, rows: Sequence[Any]) -> "OutcomeColumns":
        """Columns of OutcomeRow-like objects (attributes channel, spend, ...)."""
        values = np.empty((len(rows), len(OUTCOME_FIELDS)))
        for j, name in enumerate(OUTCOME_FIELDS):
            values[:, j] = [float(getattr(r, name)) for r in rows]
        return cls([r.channel for r in rows], values)


def validate_rows(rows: Sequence[Any] | OutcomeColumns, index: Mapping[str, int],
                  members: np.ndarray) -> np.ndarray:
    """OutcomeRows (or their columns) as float64 [n, 5]: channel index, spend, conversions,
    revenue, impressions.

    Every value is checked before any channel, so a row's bad number is named first; each is
    a finite number in [0, MAX_AMOUNT]. The checks are whole-array: a report of thousands of
    rows costs a few array operations, not a Python loop per row.

    >>> from attribid.models.campaign.book import OutcomeRow
    >>> validate_rows([OutcomeRow("search", 1e13, 0, 0, 0)], {"search": 0}, np.array([0]))
    Traceback (most recent call last):
    attribid.models.errors.InvalidArgument: outcomes[0].spend: must be at most 1e+12, got 1e+13
    """
    cols = rows if isinstance(rows, OutcomeColumns) else OutcomeColumns.of(rows)
    n = len(cols)
    values = np.asarray(cols.values, dtype=np.float64).reshape(n, len(OUTCOME_FIELDS))
    # NaN fails both comparisons and infinity the second: one mask finds every bad number.
    bad = ~((values >= 0) & (values <= MAX_AMOUNT))
    if bad.any():
        i, j = divmod(int(np.argmax(bad)), len(OUTCOME_FIELDS))  # the first in row order
        _bounded(f"outcomes[{i}].{OUTCOME_FIELDS[j]}", values[i, j],
                 negative="must be finite and >= 0")
    channel = np.fromiter(map(index.get, cols.channel, repeat(-1)), np.int64, n)
    allowed = np.zeros(len(index) + 1, dtype=bool)  # the last slot: index -1, unknown names
    allowed[members] = True
    ok = allowed[channel]
    if not ok.all():
        i = int(np.argmin(ok))
        raise InvalidArgument(f"outcomes[{i}].channel", f"{quote(cols.channel[i])} is not a "
                              "channel of this campaign")
    out = np.empty((n, 5))
    out[:, 0] = channel
    out[:, 1:] = values
    return out


def merge_period(rows: np.ndarray) -> np.ndarray:
    """Rows of one period (from validate_rows) summed per channel, in the order of each
    channel's first row: what ``CampaignModel.add`` would make of them row by row.

    >>> merge_period(np.array([[1, 1, 0, 0, 0], [0, 2, 0, 0, 0], [1, 3, 1, 0, 0.5]])).tolist()
    [[1.0, 4.0, 1.0, 0.0, 0.5], [0.0, 2.0, 0.0, 0.0, 0.0]]
    """
    channel = rows[:, 0].astype(np.int64)
    names, first = np.unique(channel, return_index=True)
    if len(names) == len(channel):
        return rows
    order = names[np.argsort(first)]
    out = np.empty((len(order), rows.shape[1]))
    out[:, 0] = order
    size = int(names[-1]) + 1
    for j in range(1, rows.shape[1]):
        # bincount adds in row order, as merging row by row does
        out[:, j] = np.bincount(channel, weights=rows[:, j], minlength=size)[order]
    return out


@dataclass
class ChannelPeriods:
    """One channel's reported periods, their ends ascending; each period holds the sum of
    every report that ended there (spend, conversions, revenue, impressions).

    A period runs from the end before it (``base`` for the first) to its own end, so the
    periods, and every fit made of them, are the same whatever order reports arrive in.

    >>> p = ChannelPeriods(base=0.0)
    >>> for end, spend in ((7200.0, 2.0), (3600.0, 1.0), (7200.0, 0.5)):
    ...     p.add(end, np.array([spend, 0.0, 0.0, 0.0]))
    True
    True
    True
    >>> p.ends, [float(v[0]) for v in p.sums], p.hours().tolist()
    ([3600.0, 7200.0], [1.0, 2.5], [1.0, 1.0])
    """

    #: where the first kept period starts: the flight start, or the end of the newest
    #: period dropped to keep within MAX_OBSERVATIONS
    base: float
    #: whether periods were dropped (a report ending at or before ``base`` is then outside
    #: the periods the fit keeps)
    dropped: bool = False
    ends: list[float] = field(default_factory=list)
    sums: list[np.ndarray] = field(default_factory=list)
    #: credited conversions later than the newest period, (time, conversions, value) each
    #: float64 [k]: they join the period that ends at or after them once it is reported
    waiting: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, end: float, values: np.ndarray) -> bool:
        """Add one report's sums to the period ending at ``end``, creating it if new;
        False (nothing kept) when that period is older than the ones kept."""
        if self.dropped and end <= self.base:
            return False
        i = bisect_left(self.ends, end)
        if i < len(self.ends) and self.ends[i] == end:
            self.sums[i] = self.sums[i] + values  # a new array: copies share none
        else:
            self.ends.insert(i, end)
            self.sums.insert(i, np.array(values, dtype=np.float64))
        if self.waiting and end >= min(float(w[0].min()) for w in self.waiting):
            waiting, self.waiting = self.waiting, []
            for at, conversions, value in waiting:
                self.credit(at, conversions, value)
        return True

    def credit(self, at: np.ndarray, conversions: np.ndarray, value: np.ndarray) -> None:
        """Add credited conversions and value, each to the period that holds its time ``at``
        (the first that ends at or after it); later than every period, they wait for the
        period that will hold them. Before the periods kept (``dropped``), they are dropped.

        >>> p = ChannelPeriods(base=0.0)
        >>> p.add(10.0, np.zeros(4)), p.add(20.0, np.zeros(4))
        (True, True)
        >>> p.credit(np.array([5.0, 15.0, 25.0]), np.array([1.0, 0.5, 2.0]), np.ones(3))
        >>> [float(v[1]) for v in p.sums], len(p.waiting)
        ([1.0, 0.5], 1)
        >>> p.add(30.0, np.array([3.0, 0, 0, 0])), [float(v[1]) for v in p.sums], p.waiting
        (True, [1.0, 0.5, 2.0], [])
        """
        keep = at > self.base if self.dropped else np.ones(at.shape, bool)
        index = np.searchsorted(np.asarray(self.ends, np.float64), at, side="left")
        later = keep & (index >= len(self.ends))
        if later.any():
            self.waiting.append((at[later], conversions[later], value[later]))
        held = keep & ~later
        if held.any():
            n = len(self.ends)
            conv = np.bincount(index[held], weights=conversions[held], minlength=n)
            val = np.bincount(index[held], weights=value[held], minlength=n)
            for i in np.flatnonzero((conv != 0) | (val != 0)).tolist():
                self.sums[i] = self.sums[i] + np.array([0.0, conv[i], val[i], 0.0])

    def drop_oldest(self) -> None:
        self.base = self.ends.pop(0)
        del self.sums[0]
        self.dropped = True

    def hours(self) -> np.ndarray:
        """Each period's length in hours; a first period that ends at or before ``base``
        (outcomes reported for before the flight) counts as one hour."""
        ends = np.asarray(self.ends, dtype=np.float64)
        dt = np.diff(ends, prepend=self.base) / HOUR
        dt[dt <= 0] = 1.0
        return dt

    def copy(self) -> "ChannelPeriods":
        return ChannelPeriods(self.base, self.dropped, list(self.ends), list(self.sums),
                              list(self.waiting))


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
        #: per book channel index: its periods (a channel gets one on its first report)
        self._periods: dict[int, ChannelPeriods] = {}
        self._n_periods = 0
        #: what the campaign has accumulated over its life, OUTCOME_FIELDS order (<= MAX_AMOUNT)
        self.totals = np.zeros(len(OUTCOME_FIELDS))

    def adopt(self, old: "CampaignModel") -> None:
        """Take over the observations of a model this one replaces, for the channels kept."""
        kept = set(self.members.tolist())
        self._periods = {c: p.copy() for c, p in old._periods.items() if c in kept}
        self._n_periods = sum(len(p.ends) for p in self._periods.values())
        self.totals = old.totals.copy()

    def check_totals(self, rows: np.ndarray) -> np.ndarray:
        """The campaign's totals with ``rows`` (from validate_rows) added; InvalidArgument
        naming the first row and field that would take a total past MAX_AMOUNT."""
        # Each row is at most MAX_AMOUNT, so these running sums are finite for any row count.
        running = self.totals + np.cumsum(rows[:, 1:5], axis=0)
        over = running > MAX_AMOUNT
        if over.any():
            i, j = (int(k) for k in np.argwhere(over)[0])
            name = OUTCOME_FIELDS[j]
            raise InvalidArgument(f"outcomes[{i}].{name}",
                                  f"would bring the campaign's total {name} to "
                                  f"{running[i, j]:g}, more than {MAX_AMOUNT:g} (the most a "
                                  "campaign accumulates)")
        return running[-1] if len(rows) else self.totals.copy()

    def add(self, rows: np.ndarray, end: float) -> None:
        """Record one report's rows (from validate_rows) for the period ending at ``end`` (epoch s).

        Each channel keeps its outcomes per period: a report lands in the period with its own
        end, created if new, wherever it falls (a late report for a period before the latest
        goes there, not into the latest), and is added to what that period holds (a second
        report for the same period and channel, under a new batch id, is a correction that
        adds; it replaces nothing). A period runs from the channel's previous period end (the
        flight start for its first). Refused whole (InvalidArgument, nothing recorded) when a
        total would pass MAX_AMOUNT.

        >>> from attribid.models.campaign.book import CampaignSpec, ChannelSpec
        >>> m = CampaignModel(CampaignSpec("c", 100.0, 0.0, 4 * HOUR, 1, 0, 0, 0,
        ...                                (ChannelSpec("search", 0, 0, 1.0),), 0, 0),
        ...                   ("search",), 3 * 24 * HOUR)
        >>> m.add(np.array([[0, 10.0, 0, 0, 0]]), 1 * HOUR)
        >>> m.add(np.array([[0, 20.0, 0, 0, 0]]), 2 * HOUR)
        >>> m.add(np.array([[0, 0.0, 3.0, 0, 0]]), 1 * HOUR)  # late conversions of hour 1
        >>> m.observations()[:, 1:3].tolist()
        [[10.0, 3.0], [20.0, 0.0]]
        """
        self.totals = self.check_totals(rows)
        # A period's rows of one channel are summed first: one pass per channel, whatever the rows.
        for r in merge_period(rows):
            ch = int(r[0])
            periods = self._periods.get(ch)
            if periods is None:
                periods = self._periods[ch] = ChannelPeriods(base=float(self.spec.flight_start))
            before = len(periods.ends)
            periods.add(end, r[1:5])
            self._n_periods += len(periods.ends) - before
        while self._n_periods > MAX_OBSERVATIONS:
            # the oldest period of all channels goes first (ties: any of them)
            oldest = min((p for p in self._periods.values() if p.ends), key=lambda p: p.ends[0])
            oldest.drop_oldest()
            self._n_periods -= 1

    def check_credit_totals(self, conversions: float, value: float) -> np.ndarray:
        """The campaign's totals with credited ``conversions`` and ``value`` added;
        InvalidArgument naming the field past MAX_AMOUNT."""
        totals = self.totals + np.array([0.0, conversions, value, 0.0])
        for j, name in ((1, "conversions"), (2, "value")):
            if totals[j] > MAX_AMOUNT:
                raise InvalidArgument("conversions", f"would bring the campaign's total {name} "
                                      f"to {totals[j]:g}, more than {MAX_AMOUNT:g} (the most a "
                                      "campaign accumulates)")
        return totals

    def add_credit(self, at: np.ndarray, credit: np.ndarray, value: np.ndarray) -> None:
        """Record credited conversions: ``credit`` float64 [n, book channels] (each row a
        conversion's shares), ``value`` [n] each conversion's value, ``at`` [n] its time.
        Each channel of the campaign gets its shares in the period that holds each
        conversion (``ChannelPeriods.credit``); a channel with no period yet keeps them
        waiting for its first. Credit to channels outside the campaign is not kept.
        """
        self.totals = self.check_credit_totals(float(credit[:, self.members].sum()),
                                               float((credit[:, self.members].T @ value).sum()))
        for ch in self.members.tolist():
            shares = credit[:, ch]
            if not shares.any():
                continue
            periods = self._periods.get(ch)
            if periods is None:
                periods = self._periods[ch] = ChannelPeriods(base=float(self.spec.flight_start))
            periods.credit(at, shares, shares * value)

    def observations(self) -> np.ndarray:
        """The fit's input: float64 [n, 7], one row per channel and period (channel index,
        spend, conversions, revenue, impressions, period hours, period end), channels in
        book order, each channel's periods by end."""
        blocks = []
        for ch in sorted(self._periods):
            p = self._periods[ch]
            if not p.ends:
                continue
            block = np.empty((len(p.ends), 7))
            block[:, 0] = ch
            block[:, 1:5] = np.array(p.sums)
            block[:, 5] = p.hours()
            block[:, 6] = p.ends
            blocks.append(block)
        return np.concatenate(blocks) if blocks else np.empty((0, 7))

    def _posteriors(self, now: float) -> tuple[list[fitting.Posterior], list[fitting.Posterior] | None, np.ndarray]:
        obs = self.observations()
        # Each period is weighed by its own age: outcomes reported late for an old period
        # count as old, where they belong.
        w = 0.5 ** (np.maximum(now - obs[:, 6], 0.0) / self.half_life_s)
        conv, imp = [], []
        value = self.fixed_value.copy()
        for k, ch in enumerate(self.members):
            m = obs[:, 0] == ch
            x, dt, wk = obs[m, 1].copy(), obs[m, 5].copy(), w[m].copy()
            k0 = float(self.prior_shape[k])
            try:
                conv.append(fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(k0),
                                        prior_top=k0 / PRIOR_CPA / _E1, prior_shape=k0,
                                        prior_strength=PRIOR_STRENGTH, spend=x,
                                        outcome=obs[m, 2].copy(), dt=dt, weight=wk))
                if self.spec.weight_exposure > 0:
                    top = 1000.0 * k0 / PRIOR_CPM / (1.0 - math.exp(-0.1))
                    imp.append(fitting.fit(EXPONENTIAL, 0.0, fitting.shape_grid(10 * k0),
                                           prior_top=top, prior_shape=10 * k0,
                                           prior_strength=PRIOR_STRENGTH, spend=x,
                                           outcome=obs[m, 4].copy(), dt=dt, weight=wk))
            except ValueError as exc:  # the fit's own checks: numbers it cannot take
                raise FailedPrecondition("outcomes", f"channel {quote(self.spec.channels[k].name)}"
                                         f" cannot be fitted: {exc}") from None
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
        then to no ceiling (``cpa_dropped``). Numbers the solver cannot take, or a plan
        whose expected outcomes are not finite, raise FailedPrecondition naming the
        parameter: never a solution with inf or NaN in it.
        """
        try:
            return self._solve(rng, now, draws)
        except InvalidProblem as exc:
            raise FailedPrecondition(exc.parameter, f"{exc.message} (the campaign cannot be "
                                     "solved with these numbers)") from None

    def _solve(self, rng: np.random.Generator | None, now: float, draws: int) -> Solution:
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
                except (Infeasible, InvalidProblem):
                    continue
        if not xs:
            raise FailedPrecondition("max_cpa", "no draw of the curves gave a feasible plan")
        used = drawn if draws == 1 else point
        return self._solution(np.mean(xs, axis=0), point, used, now, dropped)

    def _solution(self, x: np.ndarray, point: Problem, used: Problem, now: float,
                  dropped: bool) -> Solution:
        # Overflow shows up as inf in the checks below, refused there: no warnings meanwhile.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._checked_solution(x, point, used, now, dropped)

    def _checked_solution(self, x: np.ndarray, point: Problem, used: Problem, now: float,
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
        # A nearly flat curve prices its next unit of spend near 1 / 0: bids stay finite.
        per_conv[self.members] = np.minimum(np.where(ok, a / np.where(ok, h, 1.0), 0.0), MAX_AMOUNT)
        per_imp[self.members] = np.minimum(np.where(ok, e / np.where(ok, h, 1.0), 0.0), MAX_AMOUNT)
        full = np.zeros(self.n_book)
        full[self.members] = x * self.hours
        cpa = spend / acq if acq > 0 else 0.0
        objective = (s.weight_revenue * revenue + s.weight_acquisitions * acq
                     + s.weight_exposure * exposure)
        scalars = (revenue, acq, exposure, spend, cpa, objective)
        if not (all(math.isfinite(v) for v in scalars) and np.all(np.isfinite(full))
                and np.all(np.isfinite(per_conv)) and np.all(np.isfinite(per_imp))):
            raise FailedPrecondition("budget", "the plan's expected outcomes are not finite "
                                     "numbers (the campaign's numbers are too extreme)")
        return Solution(
            spend=full, revenue=revenue, acquisitions=acq, exposure=exposure, cpa=cpa,
            objective=objective, solved_at=now, per_conv=per_conv, per_imp=per_imp,
            cpa_dropped=dropped)
